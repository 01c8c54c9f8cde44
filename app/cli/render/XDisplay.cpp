#include "XDisplay.h"

#include <X11/Xlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace wfm::cli {

namespace {

std::string findOnPath(const std::string& name)
{
    const char* path = std::getenv("PATH");
    std::string all = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= all.size()) {
        const size_t end = all.find(':', start);
        const std::string dir = all.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!dir.empty()) {
            const std::string candidate = dir + "/" + name;
            if (::access(candidate.c_str(), X_OK) == 0) {
                return candidate;
            }
        }
        if (end == std::string::npos) {
            break;
        }
        start = end + 1;
    }
    return {};
}

} // namespace

XDisplay::~XDisplay()
{
    if (m_pid > 0) {
        ::kill(m_pid, SIGTERM);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
    }
}

bool XDisplay::reachable(const std::string& name)
{
    Display* display = XOpenDisplay(name.c_str());
    if (!display) {
        return false;
    }
    XCloseDisplay(display);
    return true;
}

bool XDisplay::ensure(bool allowXvfb)
{
    const char* env = std::getenv("DISPLAY");
    const std::string current = env ? env : "";
    if (!current.empty() && reachable(current)) {
        m_description = "DISPLAY=" + current;
        return true;
    }
    const std::string why = current.empty() ? "DISPLAY is not set" : "the X server at DISPLAY=" + current + " does not answer";
    const std::string xvfb = allowXvfb ? findOnPath("Xvfb") : std::string();
    if (!xvfb.empty()) {
        if (startXvfb(xvfb)) {
            return true;
        }
        m_error = why + ", and starting Xvfb failed: " + m_error;
        return false;
    }
    m_error = "no display and no offscreen OpenGL context: " + why
        + (allowXvfb ? ", and the Xvfb program is not on PATH" : ", and starting Xvfb was turned off (--xvfb never)")
        + ". This VTK renders through GLX (no EGL/OSMesa offscreen back-end), so it needs an X server: "
          "set DISPLAY, run under xvfb-run, or install Xvfb (Debian package xvfb).";
    return false;
}

bool XDisplay::startXvfb(const std::string& program)
{
    int fds[2];
    if (::pipe(fds) != 0) {
        m_error = std::strerror(errno);
        return false;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        m_error = std::strerror(errno);
        ::close(fds[0]);
        ::close(fds[1]);
        return false;
    }
    if (pid == 0) {
        ::close(fds[0]);
        const int devNull = ::open("/dev/null", O_RDWR);
        if (devNull >= 0) {
            ::dup2(devNull, 0);
            ::dup2(devNull, 1);
            ::dup2(devNull, 2);
        }
        const std::string fd = std::to_string(fds[1]);
        ::execl(program.c_str(), "Xvfb", "-displayfd", fd.c_str(), "-screen", "0", "1920x1200x24", "-nolisten",
            "tcp", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(fds[1]);
    m_pid = pid;
    // Xvfb writes the display number it chose, then a newline, once it accepts connections.
    std::string number;
    pollfd p { fds[0], POLLIN, 0 };
    while (number.find('\n') == std::string::npos) {
        if (::poll(&p, 1, 15'000) <= 0) {
            break;
        }
        char buffer[32];
        const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n <= 0) {
            break;
        }
        number.append(buffer, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    while (!number.empty() && (number.back() == '\n' || number.back() == '\r')) {
        number.pop_back();
    }
    if (number.empty()) {
        m_error = "Xvfb did not report a display within 15 s";
        return false;
    }
    const std::string name = ":" + number;
    ::setenv("DISPLAY", name.c_str(), 1);
    if (!reachable(name)) {
        m_error = "Xvfb started but " + name + " does not answer";
        return false;
    }
    m_description = "private Xvfb " + name;
    return true;
}

} // namespace wfm::cli
