#include "wfm/widgets/ColourMaps.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace wfm::colours {
namespace {

// Ten well-separated hues of medium lightness, readable on white and on dark grey.
constexpr std::array<QRgb, 10> kCategorical = {
    0xff1f77b4, // blue
    0xffff7f0e, // orange
    0xff2ca02c, // green
    0xffd62728, // red
    0xff9467bd, // purple
    0xff8c564b, // brown
    0xffe377c2, // pink
    0xff17becf, // cyan
    0xffbcbd22, // olive
    0xff7f7f7f, // grey
};

// Control points of the viridis map at t = 0, 1/9, ..., 1; linear interpolation in between.
constexpr std::array<QRgb, 10> kSequential = {
    0xff440154, 0xff482878, 0xff3e4989, 0xff31688e, 0xff26828e,
    0xff1f9e89, 0xff35b779, 0xff6ece58, 0xffb5de2b, 0xfffde725,
};

double clamp01(double t)
{
    if (!(t >= 0.0)) { // also catches NaN
        return 0.0;
    }
    return std::min(t, 1.0);
}

} // namespace

int categoricalCount()
{
    return static_cast<int>(kCategorical.size());
}

QColor categorical(std::int64_t index)
{
    const auto n = static_cast<std::int64_t>(kCategorical.size());
    const std::int64_t k = ((index % n) + n) % n;
    return QColor::fromRgb(kCategorical[static_cast<size_t>(k)]);
}

QColor sequential(double t)
{
    const double x = clamp01(t) * (kSequential.size() - 1);
    const auto i = std::min(static_cast<size_t>(x), kSequential.size() - 2);
    const double f = x - static_cast<double>(i);
    const QColor a = QColor::fromRgb(kSequential[i]);
    const QColor b = QColor::fromRgb(kSequential[i + 1]);
    return QColor::fromRgbF(static_cast<float>(a.redF() + f * (b.redF() - a.redF())),
        static_cast<float>(a.greenF() + f * (b.greenF() - a.greenF())),
        static_cast<float>(a.blueF() + f * (b.blueF() - a.blueF())));
}

QColor position2D(double u, double v)
{
    const double x = clamp01(u) - 0.5;
    const double y = clamp01(v) - 0.5;
    const double radius = std::min(1.0, std::hypot(x, y) / 0.5);
    double hue = std::atan2(y, x) / (2.0 * M_PI);
    if (hue < 0.0) {
        hue += 1.0;
    }
    // Saturation grows from zero at the centre (where the hue is undefined, so the map stays
    // continuous there) outwards; value stays high enough to show on a light background.
    const double saturation = 0.9 * std::pow(radius, 0.75);
    const double value = 0.72 + 0.13 * radius;
    return QColor::fromHsvF(static_cast<float>(std::min(hue, 0.9999)),
        static_cast<float>(saturation), static_cast<float>(value));
}

QColor position3D(double u, double v, double w)
{
    const auto channel = [](double t) { return static_cast<float>(0.1 + 0.8 * clamp01(t)); };
    return QColor::fromRgbF(channel(u), channel(v), channel(w));
}

} // namespace wfm::colours
