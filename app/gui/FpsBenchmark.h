#pragma once

#include <QJsonObject>

namespace wfm::gui {

/// `wfm-studio --bench-fps`: frame rates of the viewport animating 100k points (a CloudScene whose
/// positions change every frame) and 500 ellipsoids (a GaussianScene, 3-D, changing every frame),
/// each rendered synchronously into an 800x600 window for `seconds`; plus the OpenGL renderer.
/// Start-up time is measured by the caller (main). Needs a display (Xvfb is fine).
QJsonObject runFpsBenchmark(double seconds);

} // namespace wfm::gui
