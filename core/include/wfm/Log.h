#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace wfm::log {

enum class Level { Debug, Info, Warn, Error };

/// Receives every message at or above the threshold. The CLI's sink writes to stderr;
/// the GUI's forwards to the log dock through a queued signal. Sinks may be called from
/// any thread.
using Sink = std::function<void(Level, std::string_view)>;

/// Replaces the sink (an empty function restores the default stderr sink).
void setSink(Sink sink);
void setThreshold(Level level);
Level threshold();

void write(Level level, std::string_view message);
inline void debug(std::string_view m) { write(Level::Debug, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void warn(std::string_view m) { write(Level::Warn, m); }
inline void error(std::string_view m) { write(Level::Error, m); }

const char* levelName(Level level);

} // namespace wfm::log
