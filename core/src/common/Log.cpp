#include "wfm/Log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace wfm::log {
namespace {

std::mutex& sinkMutex()
{
    static std::mutex m;
    return m;
}

Sink& currentSink()
{
    static Sink s;
    return s;
}

std::atomic<Level> g_threshold { Level::Info };

} // namespace

void setSink(Sink sink)
{
    std::lock_guard lock(sinkMutex());
    currentSink() = std::move(sink);
}

void setThreshold(Level level) { g_threshold.store(level); }

Level threshold() { return g_threshold.load(); }

const char* levelName(Level level)
{
    switch (level) {
    case Level::Debug:
        return "debug";
    case Level::Info:
        return "info";
    case Level::Warn:
        return "warning";
    case Level::Error:
        return "error";
    }
    return "?";
}

void write(Level level, std::string_view message)
{
    if (static_cast<int>(level) < static_cast<int>(g_threshold.load())) {
        return;
    }
    std::lock_guard lock(sinkMutex());
    if (currentSink()) {
        currentSink()(level, message);
        return;
    }
    std::fprintf(stderr, "wfm %s: %.*s\n", levelName(level), static_cast<int>(message.size()),
        message.data());
}

} // namespace wfm::log
