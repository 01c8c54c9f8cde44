#pragma once

#include <QColor>

#include <cstdint>

namespace wfm::colours {

/// Number of distinct colours of the categorical palette (they repeat after that).
int categoricalCount();

/// Colour `index` of a categorical palette for labels (10 well-separated colours, cycled;
/// negative indices are folded onto the palette too).
QColor categorical(std::int64_t index);

/// Perceptually uniform sequential colour map (viridis-like, dark blue to yellow);
/// `t` is clamped to [0, 1].
QColor sequential(double t);

/// Smooth colour of a 2-D position given in normalised coordinates (u, v in [0, 1], clamped):
/// hue follows the angle around the centre (0.5, 0.5) and saturation the distance from it (grey
/// at the centre), so nearby positions get similar colours and distant ones clearly different
/// colours. Continuous everywhere.
QColor position2D(double u, double v);

/// Smooth colour of a 3-D position in normalised coordinates (each in [0, 1], clamped):
/// red, green and blue follow u, v and w within a range that stays visible on white and black.
QColor position3D(double u, double v, double w);

} // namespace wfm::colours
