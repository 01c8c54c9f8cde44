#pragma once
// The X server `wfm render` draws through. Debian's VTK 9.1 creates its OpenGL contexts with GLX
// (vtkXOpenGLRenderWindow; no EGL or OSMesa back-end), so even offscreen rendering needs an X
// server: the one in DISPLAY, or a private Xvfb started for the duration of the command.

#include <string>

namespace wfm::cli {

class XDisplay
{
public:
    XDisplay() = default;
    ~XDisplay();
    XDisplay(const XDisplay&) = delete;
    XDisplay& operator=(const XDisplay&) = delete;

    /// Makes DISPLAY name a reachable X server: keeps a working DISPLAY; otherwise, when
    /// `allowXvfb` and the Xvfb program is on PATH, starts a private Xvfb and sets DISPLAY to it.
    /// Returns false with a one-line explanation in error() when there is neither.
    bool ensure(bool allowXvfb);
    /// What ensure() found: "DISPLAY=:0", "private Xvfb :5", ...
    const std::string& description() const { return m_description; }
    const std::string& error() const { return m_error; }

    /// Whether an X server answers at `name` (XOpenDisplay).
    static bool reachable(const std::string& name);

private:
    bool startXvfb(const std::string& program);

    int m_pid = -1;
    std::string m_description;
    std::string m_error;
};

} // namespace wfm::cli
