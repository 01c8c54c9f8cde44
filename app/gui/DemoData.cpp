#include "DemoData.h"

#include <cmath>
#include <random>

namespace wfm::demo {
namespace {

constexpr double kPi = 3.14159265358979323846;

void put(CloudSnapshot& s, int cloud, int i, double x, double y, double z)
{
    float* p = s.points.data() + (static_cast<size_t>(cloud) * s.maxPoints + i) * s.dim;
    p[0] = static_cast<float>(x);
    p[1] = static_cast<float>(y);
    p[2] = static_cast<float>(z);
}

} // namespace

CloudSnapshot shapeFamily(int pointsPerShape, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    std::normal_distribution<double> normal(0.0, 1.0);

    CloudSnapshot s;
    s.count = 3;
    s.maxPoints = pointsPerShape;
    s.dim = 3;
    s.points.assign(static_cast<size_t>(s.count) * s.maxPoints * s.dim, 0.0f);
    s.weights.assign(static_cast<size_t>(s.count) * s.maxPoints, 1.0f);
    s.labels = { 0, 1, 2 };
    s.labelNames = { "torus", "sphere", "trefoil" };

    // Torus (R = 1, r = 0.35) around the z axis, centred at x = -2.6; uniform on the surface by
    // rejection on the area element (R + r cos v).
    constexpr double R = 1.0;
    constexpr double r = 0.35;
    for (int i = 0; i < pointsPerShape;) {
        const double u = 2.0 * kPi * uni(rng);
        const double v = 2.0 * kPi * uni(rng);
        if (uni(rng) * (R + r) > R + r * std::cos(v)) {
            continue;
        }
        put(s, 0, i++, -2.6 + (R + r * std::cos(v)) * std::cos(u), (R + r * std::cos(v)) * std::sin(u),
            r * std::sin(v));
    }
    // Unit sphere at the origin: normalised Gaussian vectors.
    for (int i = 0; i < pointsPerShape; ++i) {
        double x = normal(rng);
        double y = normal(rng);
        double z = normal(rng);
        const double n = std::sqrt(x * x + y * y + z * z) + 1e-12;
        put(s, 1, i, x / n, y / n, z / n);
    }
    // Trefoil knot (scaled 0.38) with a thin random tube, centred at x = +2.6.
    for (int i = 0; i < pointsPerShape; ++i) {
        const double t = 2.0 * kPi * uni(rng);
        const double x = std::sin(t) + 2.0 * std::sin(2.0 * t);
        const double y = std::cos(t) - 2.0 * std::cos(2.0 * t);
        const double z = -std::sin(3.0 * t);
        put(s, 2, i, 2.6 + 0.38 * x + 0.05 * normal(rng), 0.38 * y + 0.05 * normal(rng),
            0.38 * z + 0.05 * normal(rng));
    }
    return s;
}

GaussianSnapshot gaussians2D(int count, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    GaussianSnapshot s;
    s.count = count;
    s.dim = 2;
    s.labelNames = { "class A", "class B", "class C" };
    for (int g = 0; g < count; ++g) {
        const double mx = -4.0 + 8.0 * uni(rng);
        const double my = -3.0 + 6.0 * uni(rng);
        const double angle = kPi * uni(rng);
        const double major = 0.3 + 0.5 * uni(rng);
        const double minor = major * (0.25 + 0.6 * uni(rng));
        const double c = std::cos(angle);
        const double sn = std::sin(angle);
        // S = R diag(major^2, minor^2) R^T.
        const double a = c * c * major * major + sn * sn * minor * minor;
        const double b = c * sn * (major * major - minor * minor);
        const double d = sn * sn * major * major + c * c * minor * minor;
        s.means.insert(s.means.end(), { static_cast<float>(mx), static_cast<float>(my) });
        s.covariances.insert(s.covariances.end(),
            { static_cast<float>(a), static_cast<float>(b), static_cast<float>(b), static_cast<float>(d) });
        s.labels.push_back(g % 3);
    }
    return s;
}

GaussianSnapshot ellipsoids3D(int count, double phase, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    GaussianSnapshot s;
    s.count = count;
    s.dim = 3;
    const double c = std::cos(phase);
    const double sn = std::sin(phase);
    for (int g = 0; g < count; ++g) {
        const double t = 2.0 * kPi * g / count + 0.25 * phase;
        const double radius = 4.0 + 0.8 * (uni(rng) - 0.5);
        const double height = 1.5 * (uni(rng) - 0.5);
        s.means.insert(s.means.end(), { static_cast<float>(radius * std::cos(t)),
                                          static_cast<float>(radius * std::sin(t)), static_cast<float>(height) });
        // Random covariance B B^T + 0.01 I, then rotated about z by the phase.
        double b[3][3];
        for (auto& row : b) {
            for (double& x : row) {
                x = 0.35 * (uni(rng) - 0.5);
            }
        }
        double m[3][3];
        for (int i = 0; i < 3; ++i) {
            for (int j = 0; j < 3; ++j) {
                m[i][j] = (i == j ? 0.01 : 0.0);
                for (int k = 0; k < 3; ++k) {
                    m[i][j] += b[i][k] * b[j][k];
                }
            }
        }
        const double rot[3][3] = { { c, -sn, 0.0 }, { sn, c, 0.0 }, { 0.0, 0.0, 1.0 } };
        for (int i = 0; i < 3; ++i) {
            for (int j = 0; j < 3; ++j) {
                double v = 0.0;
                for (int k = 0; k < 3; ++k) {
                    for (int l = 0; l < 3; ++l) {
                        v += rot[i][k] * m[k][l] * rot[j][l];
                    }
                }
                s.covariances.push_back(static_cast<float>(v));
            }
        }
    }
    return s;
}

CloudSnapshot correspondencePair(int points, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    CloudSnapshot s;
    s.count = 2;
    s.maxPoints = points;
    s.dim = 2;
    s.points.assign(static_cast<size_t>(s.count) * s.maxPoints * s.dim, 0.0f);
    s.weights.assign(static_cast<size_t>(s.count) * s.maxPoints, 1.0f);
    s.labels = { 0, 1 };
    s.labelNames = { "source", "mapped" };
    for (int i = 0; i < points; ++i) {
        const double x = 0.8 * normal(rng);
        const double y = 0.8 * normal(rng);
        // Swirl: rotate by an angle that decays with the radius, then shift right.
        const double rr = std::hypot(x, y);
        const double a = 1.6 * std::exp(-0.6 * rr * rr);
        const double mx = std::cos(a) * x - std::sin(a) * y + 4.0;
        const double my = std::sin(a) * x + std::cos(a) * y;
        float* p0 = s.points.data() + static_cast<size_t>(i) * 2;
        float* p1 = s.points.data() + (static_cast<size_t>(points) + i) * 2;
        p0[0] = static_cast<float>(x);
        p0[1] = static_cast<float>(y);
        p1[0] = static_cast<float>(mx);
        p1[1] = static_cast<float>(my);
    }
    return s;
}

} // namespace wfm::demo
