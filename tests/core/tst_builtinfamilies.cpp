#include "wfm/Error.h"
#include "wfm/data/BuiltinFamilies.h"
#include "wfm/data/DataSpec.h"

#include <QtTest>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

using wfm::data::PointCloudDataset;
using wfm::data::ShapeClass;

namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kSurfaceTol = 2e-6; // float32 coordinates of O(1) points
constexpr double kSigmas = 4.5;      // statistical tolerance in binomial standard deviations

/// |observed - n p| within kSigmas binomial standard deviations (+ an absolute slack for the
/// reference value's own error, as a fraction of n).
bool binomialOk(double observed, double n, double p, double slack, QString& why)
{
    const double sd = std::sqrt(n * p * (1.0 - p));
    const double dev = std::abs(observed - n * p);
    why = QStringLiteral("observed %1, expected %2 (sd %3)").arg(observed).arg(n * p).arg(sd);
    return dev <= kSigmas * sd + slack * n;
}

bool sameDataset(const PointCloudDataset& a, const PointCloudDataset& b)
{
    return a.points.sizes() == b.points.sizes() && torch::equal(a.points, b.points)
        && torch::equal(a.weights, b.weights) && torch::equal(a.labels, b.labels);
}

/// Exact conic through noise-free 2-D points: coefficients (A,B,C,D,E,F) of
/// A x^2 + B xy + C y^2 + D x + E y + F = 0 (the null vector of the design matrix), with the
/// relative residual (smallest / largest singular value).
struct Conic
{
    double A, B, C, D, E, F, residual;
};

Conic fitConic(const torch::Tensor& pts)
{
    const torch::Tensor p = pts.to(torch::kDouble);
    // Centre and scale first for conditioning; map the result back afterwards.
    const torch::Tensor m = p.mean(0);
    const double s = (p - m).abs().max().item<double>();
    const torch::Tensor q = (p - m) / s;
    const torch::Tensor x = q.select(1, 0);
    const torch::Tensor y = q.select(1, 1);
    const torch::Tensor M = torch::stack({ x * x, x * y, y * y, x, y, torch::ones_like(x) }, 1);
    const auto [U, S, Vh] = torch::linalg_svd(M, false);
    const torch::Tensor v = Vh[5];
    // In original coordinates: X = m + s q.
    const double a = v[0].item<double>() / (s * s);
    const double b = v[1].item<double>() / (s * s);
    const double c = v[2].item<double>() / (s * s);
    const double d = v[3].item<double>() / s;
    const double e = v[4].item<double>() / s;
    const double f = v[5].item<double>();
    const double mx = m[0].item<double>();
    const double my = m[1].item<double>();
    Conic k;
    k.A = a;
    k.B = b;
    k.C = c;
    k.D = d - 2 * a * mx - b * my;
    k.E = e - 2 * c * my - b * mx;
    k.F = f + a * mx * mx + b * mx * my + c * my * my - d * mx - e * my;
    k.residual = S[5].item<double>() / S[0].item<double>();
    return k;
}

/// Centre, semi-axes (major first) and major-axis angle of an ellipse conic.
struct Ellipse
{
    double cx, cy, a, b, angle;
};

Ellipse ellipseOf(const Conic& k)
{
    // Centre: gradient zero. [2A B; B 2C] c = -[D; E].
    const double det = 4 * k.A * k.C - k.B * k.B;
    const double cx = (-2 * k.C * k.D + k.B * k.E) / det;
    const double cy = (-2 * k.A * k.E + k.B * k.D) / det;
    const double Fc = k.A * cx * cx + k.B * cx * cy + k.C * cy * cy + k.D * cx + k.E * cy + k.F;
    // Quadratic form Q = [A B/2; B/2 C]; (x-c)^T Q (x-c) = -Fc.
    const double tr = k.A + k.C;
    const double disc = std::sqrt((k.A - k.C) * (k.A - k.C) + k.B * k.B);
    const double l1 = (tr - disc) / 2; // smaller |eigenvalue| -> major axis (same sign as tr)
    const double l2 = (tr + disc) / 2;
    Ellipse e;
    e.cx = cx;
    e.cy = cy;
    double lmin = l1;
    double lmax = l2;
    if (std::abs(l1) > std::abs(l2)) {
        std::swap(lmin, lmax);
    }
    e.a = std::sqrt(-Fc / lmin);
    e.b = std::sqrt(-Fc / lmax);
    // Eigenvector of Q for lmin: (B/2, lmin - A) or (lmin - C, B/2).
    double vx = k.B / 2;
    double vy = lmin - k.A;
    if (std::abs(vx) + std::abs(vy) < 1e-12) {
        vx = lmin - k.C;
        vy = k.B / 2;
    }
    e.angle = std::atan2(vy, vx);
    return e;
}

/// Arc-length fraction of the ellipse (a cos t, b sin t) with |cos t| > cos(pi/4), by the
/// midpoint rule on the speed sqrt(a^2 sin^2 t + b^2 cos^2 t).
double endArcFraction(double a, double b)
{
    constexpr int kSteps = 200000;
    double ends = 0.0;
    double total = 0.0;
    for (int i = 0; i < kSteps; ++i) {
        const double t = 2 * kPi * (i + 0.5) / kSteps;
        const double v = std::sqrt(a * a * std::sin(t) * std::sin(t) + b * b * std::cos(t) * std::cos(t));
        total += v;
        if (std::abs(std::cos(t)) > std::cos(kPi / 4)) {
            ends += v;
        }
    }
    return ends / total;
}

/// Residual of the canonical surface equations for a point (0 on the surface).
double surfaceResidual(ShapeClass shape, double x, double y, double z)
{
    using namespace wfm::data;
    const double rho = std::sqrt(x * x + y * y);
    switch (shape) {
    case ShapeClass::Sphere:
        return std::abs(std::sqrt(x * x + y * y + z * z) - kSphereRadius);
    case ShapeClass::Torus:
        return std::abs(std::sqrt((rho - kTorusMajor) * (rho - kTorusMajor) + z * z) - kTorusMinor);
    case ShapeClass::Box:
        return std::abs(std::max({ std::abs(x) / kBoxHalf[0], std::abs(y) / kBoxHalf[1],
                            std::abs(z) / kBoxHalf[2] })
            - 1.0);
    case ShapeClass::Cylinder: {
        // Distance to the closed cylinder's surface for a point assumed on or near it.
        const double side = std::abs(rho - kCylinderRadius) + std::max(0.0, std::abs(z) - kCylinderHalfHeight);
        const double cap = std::abs(std::abs(z) - kCylinderHalfHeight) + std::max(0.0, rho - kCylinderRadius);
        return std::min(side, cap);
    }
    case ShapeClass::Cone: {
        const double h = kConeHalfHeight;
        const double side = std::abs(rho - kConeRadius * (h - z) / (2 * h))
            + std::max(0.0, std::abs(z) - h);
        const double base = std::abs(z + h) + std::max(0.0, rho - kConeRadius);
        return std::min(side, base);
    }
    case ShapeClass::RoundedCube:
        return std::abs(std::pow(std::abs(x), kRoundedCubeExponent)
            + std::pow(std::abs(y), kRoundedCubeExponent) + std::pow(std::abs(z), kRoundedCubeExponent)
            - 1.0);
    }
    return 1e9;
}

} // namespace

class TestBuiltinFamilies : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void namesAndDescriptions();
    void deterministicGivenSeed_data();
    void deterministicGivenSeed();
    void sizesAndLabels_data();
    void sizesAndLabels();
    void defaultsBuildQuickly();
    void optionErrors();

    void ringsAreCirclesAndEllipses();
    void ellipsesAreUniformByArcLength();

    void surfacesSatisfyTheirEquations_data();
    void surfacesSatisfyTheirEquations();
    void boxFacesProportionalToArea();
    void primitivesProportionalToArea();
    void roundedCubeUniformByArea();
    void shapes3dSpheresAreScaledAndCentred();
};

void TestBuiltinFamilies::namesAndDescriptions()
{
    auto names = wfm::data::builtinNames();
    // Core families other files register (builtin:tissue, Tissue.h) follow the two defined here.
    QVERIFY(std::find(names.begin(), names.end(), "tissue") != names.end());
    names.resize(2);
    QCOMPARE(names, (std::vector<std::string> { "rings", "shapes3d" }));
    for (const auto& n : names) {
        QVERIFY(!wfm::data::builtinDescription(n).empty());
        const auto opts = wfm::data::builtinOptions(n);
        for (const char* key : { "count", "seed", "min", "max", "noise" }) {
            QVERIFY2(opts.count(key) == 1, key);
        }
    }
    QCOMPARE(wfm::data::builtinOptions("rings").at("count"), std::string("2000"));
    QCOMPARE(wfm::data::builtinOptions("shapes3d").at("count"), std::string("1200"));
    QCOMPARE(wfm::data::shapeClassNames().size(), std::size_t { wfm::data::kShapeClassCount });
}

void TestBuiltinFamilies::deterministicGivenSeed_data()
{
    QTest::addColumn<QString>("family");
    QTest::newRow("rings") << "rings";
    QTest::newRow("shapes3d") << "shapes3d";
}

void TestBuiltinFamilies::deterministicGivenSeed()
{
    QFETCH(QString, family);
    const std::string f = family.toStdString();
    const auto a = wfm::data::makeBuiltin(f, { { "count", "30" }, { "seed", "5" }, { "max", "300" } });
    const auto b = wfm::data::makeBuiltin(f, { { "count", "30" }, { "seed", "5" }, { "max", "300" } });
    const auto c = wfm::data::makeBuiltin(f, { { "count", "30" }, { "seed", "6" }, { "max", "300" } });
    QVERIFY(sameDataset(a, b));
    QVERIFY(!torch::equal(a.sizes, c.sizes) || !torch::equal(a.points, c.points));
    // Cloud k depends on (seed, k) only: a shorter family is a prefix.
    const auto p = wfm::data::makeBuiltin(f, { { "count", "10" }, { "seed", "5" }, { "max", "300" } });
    for (std::int64_t k = 0; k < 10; ++k) {
        QVERIFY(torch::equal(p.cloud(k), a.cloud(k)));
    }
    // The default seed is 0.
    const auto d0 = wfm::data::makeBuiltin(f, { { "count", "3" }, { "max", "300" } });
    const auto s0 = wfm::data::makeBuiltin(f, { { "count", "3" }, { "seed", "0" }, { "max", "300" } });
    QVERIFY(sameDataset(d0, s0));
}

void TestBuiltinFamilies::sizesAndLabels_data()
{
    QTest::addColumn<QString>("family");
    QTest::addColumn<int>("count");
    QTest::addColumn<int>("lo");
    QTest::addColumn<int>("hi");
    QTest::addColumn<int>("dim");
    QTest::newRow("rings-defaults") << "rings" << 2000 << 40 << 400 << 2;
    QTest::newRow("rings-narrow") << "rings" << 600 << 17 << 23 << 2;
    QTest::newRow("shapes3d-small") << "shapes3d" << 1200 << 20 << 60 << 3;
}

void TestBuiltinFamilies::sizesAndLabels()
{
    QFETCH(QString, family);
    QFETCH(int, count);
    QFETCH(int, lo);
    QFETCH(int, hi);
    QFETCH(int, dim);
    const auto d = wfm::data::makeBuiltin(family.toStdString(),
        { { "count", std::to_string(count) }, { "seed", "11" }, { "min", std::to_string(lo) },
            { "max", std::to_string(hi) } });
    d.validate(family.toStdString());
    QCOMPARE(d.count(), count);
    QCOMPARE(d.dim(), dim);
    QVERIFY(d.sizes.min().item<std::int64_t>() >= lo);
    QVERIFY(d.sizes.max().item<std::int64_t>() <= hi);
    // Both ends of the size range occur (uniform sizes, many clouds).
    QCOMPARE(d.sizes.min().item<std::int64_t>(), static_cast<std::int64_t>(lo));
    QCOMPARE(d.sizes.max().item<std::int64_t>(), static_cast<std::int64_t>(hi));
    QVERIFY(d.hasLabels());
    const auto L = static_cast<std::int64_t>(d.labelNames.size());
    QCOMPARE(L, dim == 2 ? 2 : 6);
    // Classes drawn uniformly: counts ~ Binomial(count, 1/L).
    const auto counts = d.summary().labelCounts;
    for (std::int64_t l = 0; l < L; ++l) {
        QString why;
        QVERIFY2(binomialOk(static_cast<double>(counts[static_cast<std::size_t>(l)]), count,
                     1.0 / static_cast<double>(L), 0.0, why),
            qPrintable(why));
    }
}

void TestBuiltinFamilies::defaultsBuildQuickly()
{
    const auto t0 = std::chrono::steady_clock::now();
    const auto d = wfm::data::loadPointClouds("builtin:shapes3d");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    QCOMPARE(d.count(), 1200);
    QVERIFY(d.maxPoints() <= 2048 && d.maxPoints() >= 2000);
    QVERIFY(d.sizes.min().item<std::int64_t>() >= 256);
    QCOMPARE(d.labelNames, wfm::data::shapeClassNames());
    qInfo("builtin:shapes3d (1200 clouds, %lld points) built and validated in %.2f s",
        static_cast<long long>(d.sizes.sum().item<std::int64_t>()), s);
}

void TestBuiltinFamilies::optionErrors()
{
    auto fails = [](const std::string& name, const std::map<std::string, std::string>& opts,
                     const std::string& part) {
        try {
            wfm::data::makeBuiltin(name, opts);
        } catch (const wfm::ConfigError& e) {
            return std::string(e.what()).find(part) != std::string::npos;
        }
        return false;
    };
    QVERIFY(fails("rings", { { "count", "0" } }, "count must be >= 1"));
    QVERIFY(fails("rings", { { "min", "0" } }, "min must be >= 1"));
    QVERIFY(fails("rings", { { "noise", "-1" } }, "noise"));
    QVERIFY(fails("rings", { { "noise", "abc" } }, "noise"));
    QVERIFY(fails("shapes3d", { { "seed", "-3" } }, "seed"));
    QVERIFY(fails("shapes3d", { { "count", "12x" } }, "count"));
    QVERIFY(fails("shapes3d", { { "radius", "1" } }, "valid: count, max, min, noise, seed"));
    QVERIFY(fails("cubes", {}, "valid: rings, shapes3d"));
}

void TestBuiltinFamilies::ringsAreCirclesAndEllipses()
{
    // Without noise every cloud lies exactly on its conic; fit it and check the parameters.
    const auto d = wfm::data::makeBuiltin("rings", { { "count", "200" }, { "noise", "0" } });
    int circles = 0;
    for (std::int64_t k = 0; k < d.count(); ++k) {
        const Conic c = fitConic(d.cloud(k));
        QVERIFY2(c.residual < 1e-5, qPrintable(QString::number(c.residual)));
        QVERIFY(c.B * c.B - 4 * c.A * c.C < 0); // an ellipse
        const Ellipse e = ellipseOf(c);
        QVERIFY(std::abs(e.cx) <= 2.0 + 1e-4 && std::abs(e.cy) <= 2.0 + 1e-4);
        const bool circle = d.labels[k].item<std::int64_t>() == 0;
        if (circle) {
            ++circles;
            QVERIFY2(std::abs(e.a - e.b) < 1e-3 * e.a, qPrintable(QString("%1 %2").arg(e.a).arg(e.b)));
            QVERIFY(e.a >= 0.3 - 1e-4 && e.a <= 1.5 + 1e-4);
        } else {
            QVERIFY(e.a >= 0.5 - 1e-4 && e.a <= 1.5 + 1e-4);
            QVERIFY(e.b >= 0.3 - 1e-4);
            const double ratio = e.b / e.a;
            QVERIFY2(ratio >= 0.3 - 1e-4 && ratio <= 0.7 + 1e-4, qPrintable(QString::number(ratio)));
        }
    }
    QVERIFY(circles > 0 && circles < d.count());
    // With the default noise (2% of the radius) the fitted circle's radial spread is ~2%.
    const auto noisy = wfm::data::makeBuiltin("rings", { { "count", "40" }, { "min", "400" } });
    for (std::int64_t k = 0; k < noisy.count(); ++k) {
        if (noisy.labels[k].item<std::int64_t>() != 0) {
            continue;
        }
        // Least-squares (Kasa) circle fit: x^2 + y^2 + D x + E y + F = 0.
        const torch::Tensor p = noisy.cloud(k).to(torch::kDouble);
        const torch::Tensor M = torch::cat({ p, torch::ones({ p.size(0), 1 }, torch::kDouble) }, 1);
        const torch::Tensor rhs = -(p * p).sum(1, true);
        const torch::Tensor sol = torch::linalg_solve(M.t().mm(M), M.t().mm(rhs)).squeeze(1);
        const torch::Tensor centre = -sol.narrow(0, 0, 2) / 2;
        const torch::Tensor r = (p - centre).norm(2, { 1 });
        const double rel = (r.std() / r.mean()).item<double>();
        QVERIFY2(rel > 0.015 && rel < 0.025, qPrintable(QString::number(rel)));
    }
}

void TestBuiltinFamilies::ellipsesAreUniformByArcLength()
{
    // Fraction of points near the ends of the major axis (|cos t| > cos 45deg) against the
    // arc-length fraction from quadrature; an angle-uniform sampler would give 1/2.
    const auto d = wfm::data::makeBuiltin(
        "rings", { { "count", "24" }, { "noise", "0" }, { "min", "4000" }, { "max", "4000" }, { "seed", "9" } });
    double observed = 0.0;
    double expected = 0.0;
    double variance = 0.0;
    int ellipses = 0;
    for (std::int64_t k = 0; k < d.count(); ++k) {
        if (d.labels[k].item<std::int64_t>() != 1) {
            continue;
        }
        ++ellipses;
        const torch::Tensor p = d.cloud(k).to(torch::kDouble);
        const Ellipse e = ellipseOf(fitConic(p));
        const double ca = std::cos(e.angle);
        const double sa = std::sin(e.angle);
        const torch::Tensor dx = p.select(1, 0) - e.cx;
        const torch::Tensor dy = p.select(1, 1) - e.cy;
        const torch::Tensor u = (ca * dx + sa * dy) / e.a; // cos t
        const torch::Tensor v = (-sa * dx + ca * dy) / e.b; // sin t
        const torch::Tensor cosT = u / (u * u + v * v).sqrt();
        const double n = static_cast<double>(p.size(0));
        const double frac = endArcFraction(e.a, e.b);
        observed += (cosT.abs() > std::cos(kPi / 4)).sum().item<double>();
        expected += n * frac;
        variance += n * frac * (1 - frac);
    }
    QVERIFY(ellipses >= 5);
    const double sd = std::sqrt(variance);
    QVERIFY2(std::abs(observed - expected) < kSigmas * sd,
        qPrintable(QString("observed %1 expected %2 sd %3").arg(observed).arg(expected).arg(sd)));
}

void TestBuiltinFamilies::surfacesSatisfyTheirEquations_data()
{
    QTest::addColumn<int>("shape");
    const auto names = wfm::data::shapeClassNames();
    for (int s = 0; s < wfm::data::kShapeClassCount; ++s) {
        QTest::newRow(names[static_cast<std::size_t>(s)].c_str()) << s;
    }
}

void TestBuiltinFamilies::surfacesSatisfyTheirEquations()
{
    QFETCH(int, shape);
    const auto cls = static_cast<ShapeClass>(shape);
    const torch::Tensor p = wfm::data::sampleShapeSurface(cls, 5000, 17).to(torch::kDouble);
    QCOMPARE(p.size(0), 5000);
    QCOMPARE(p.size(1), 3);
    const auto a = p.accessor<double, 2>();
    double worst = 0.0;
    for (std::int64_t i = 0; i < p.size(0); ++i) {
        worst = std::max(worst, surfaceResidual(cls, a[i][0], a[i][1], a[i][2]));
    }
    QVERIFY2(worst < kSurfaceTol * 4, qPrintable(QString::number(worst)));
    // Centred (surfaces symmetric about the origin, except the cone along z).
    const torch::Tensor m = p.mean(0);
    QVERIFY(m[0].abs().item<double>() < 0.05 && m[1].abs().item<double>() < 0.05);
    QVERIFY(torch::equal(wfm::data::sampleShapeSurface(cls, 50, 3), wfm::data::sampleShapeSurface(cls, 50, 3)));
    QVERIFY(!torch::equal(wfm::data::sampleShapeSurface(cls, 50, 3), wfm::data::sampleShapeSurface(cls, 50, 4)));
}

void TestBuiltinFamilies::boxFacesProportionalToArea()
{
    using wfm::data::kBoxHalf;
    constexpr int kN = 60000;
    const torch::Tensor p = wfm::data::sampleShapeSurface(ShapeClass::Box, kN, 5).to(torch::kDouble);
    const auto a = p.accessor<double, 2>();
    // Faces normal to axis i (both signs): area 2 * 4 * prod of the other half-extents.
    const double areas[3] = { kBoxHalf[1] * kBoxHalf[2], kBoxHalf[0] * kBoxHalf[2], kBoxHalf[0] * kBoxHalf[1] };
    const double total = areas[0] + areas[1] + areas[2];
    double faces[6] = {};
    double upperHalf = 0.0; // within the +x face, points with y > 0 (half its area)
    double onPlusX = 0.0;
    for (std::int64_t i = 0; i < kN; ++i) {
        int axis = 0;
        double best = -1.0;
        for (int j = 0; j < 3; ++j) {
            const double r = std::abs(a[i][j]) / kBoxHalf[j];
            if (r > best) {
                best = r;
                axis = j;
            }
        }
        faces[2 * axis + (a[i][axis] > 0 ? 1 : 0)] += 1;
        if (axis == 0 && a[i][0] > 0) {
            onPlusX += 1;
            upperHalf += a[i][1] > 0 ? 1 : 0;
        }
    }
    for (int f = 0; f < 6; ++f) {
        QString why;
        QVERIFY2(binomialOk(faces[f], kN, areas[f / 2] / total / 2.0, 0.0, why),
            qPrintable(QString("face %1: ").arg(f) + why));
    }
    QString why;
    QVERIFY2(binomialOk(upperHalf, onPlusX, 0.5, 0.0, why), qPrintable(why));
}

void TestBuiltinFamilies::primitivesProportionalToArea()
{
    using namespace wfm::data;
    constexpr int kN = 40000;
    QString why;
    {
        // Cylinder: side 2 pi r 2h vs caps 2 pi r^2.
        const torch::Tensor p = sampleShapeSurface(ShapeClass::Cylinder, kN, 6).to(torch::kDouble);
        const double side = 2 * kPi * kCylinderRadius * 2 * kCylinderHalfHeight;
        const double caps = 2 * kPi * kCylinderRadius * kCylinderRadius;
        const double onCaps
            = ((p.select(1, 2).abs() - kCylinderHalfHeight).abs() < 1e-6).sum().item<double>();
        QVERIFY2(binomialOk(onCaps, kN, caps / (side + caps), 0.0, why), qPrintable("cylinder " + why));
        // On the side, z is uniform: fraction with z > h/2 is 1/4 of the side.
        const torch::Tensor sideZ = p.select(1, 2).masked_select(
            (p.select(1, 2).abs() - kCylinderHalfHeight).abs() >= 1e-6);
        QVERIFY2(binomialOk((sideZ > kCylinderHalfHeight / 2).sum().item<double>(),
                     static_cast<double>(sideZ.numel()), 0.25, 0.0, why),
            qPrintable("cylinder side " + why));
    }
    {
        // Cone: lateral pi R s vs base pi R^2; on the side, the part above z = 0 (the upper
        // half of the height, a similar cone of half the size) has 1/4 of the lateral area.
        const torch::Tensor p = sampleShapeSurface(ShapeClass::Cone, kN, 7).to(torch::kDouble);
        const double slant = std::sqrt(kConeRadius * kConeRadius + 4 * kConeHalfHeight * kConeHalfHeight);
        const double side = kPi * kConeRadius * slant;
        const double base = kPi * kConeRadius * kConeRadius;
        const torch::Tensor z = p.select(1, 2);
        const double onBase = ((z + kConeHalfHeight).abs() < 1e-6).sum().item<double>();
        QVERIFY2(binomialOk(onBase, kN, base / (side + base), 0.0, why), qPrintable("cone " + why));
        const double upper = (z > 0).sum().item<double>();
        QVERIFY2(binomialOk(upper, kN, 0.25 * side / (side + base), 0.0, why),
            qPrintable("cone upper " + why));
    }
    {
        // Torus: outer half (cos v > 0, i.e. rho > R) holds (pi R + 2 r) / (2 pi R) of the area.
        const torch::Tensor p = sampleShapeSurface(ShapeClass::Torus, kN, 8).to(torch::kDouble);
        const torch::Tensor rho = p.narrow(1, 0, 2).norm(2, { 1 });
        const double outer = (rho > kTorusMajor).sum().item<double>();
        const double frac = (kPi * kTorusMajor + 2 * kTorusMinor) / (2 * kPi * kTorusMajor);
        QVERIFY2(binomialOk(outer, kN, frac, 0.0, why), qPrintable("torus " + why));
    }
    {
        // Sphere: Archimedes, z uniform on [-1, 1].
        const torch::Tensor p = sampleShapeSurface(ShapeClass::Sphere, kN, 9).to(torch::kDouble);
        QVERIFY2(binomialOk((p.select(1, 2) > 0.6).sum().item<double>(), kN, 0.2, 0.0, why),
            qPrintable("sphere " + why));
    }
}

void TestBuiltinFamilies::roundedCubeUniformByArea()
{
    // Reference areas by quadrature of the graph z = (1 - x^4 - y^4)^(1/4) over the (x, y)
    // square, midpoint rule: dA = sqrt(1 + z_x^2 + z_y^2) dx dy with z_x = -x^3 / z^3.
    //  - A_top: the part where |z| is the largest coordinate (1/6 of the surface by symmetry);
    //  - A_c:   the part with z >= c.
    const double p = wfm::data::kRoundedCubeExponent;
    constexpr int kGrid = 1600;
    const double h = 2.0 / kGrid;
    const double c = 0.95;
    double top = 0.0;
    double cap = 0.0;
    for (int i = 0; i < kGrid; ++i) {
        const double x = -1 + (i + 0.5) * h;
        for (int j = 0; j < kGrid; ++j) {
            const double y = -1 + (j + 0.5) * h;
            const double rest = 1 - std::pow(std::abs(x), p) - std::pow(std::abs(y), p);
            if (rest <= 0) {
                continue;
            }
            const double z = std::pow(rest, 1 / p);
            const double zx = std::pow(std::abs(x), p - 1) / std::pow(z, p - 1);
            const double zy = std::pow(std::abs(y), p - 1) / std::pow(z, p - 1);
            const double dA = std::sqrt(1 + zx * zx + zy * zy) * h * h;
            if (std::abs(x) <= z && std::abs(y) <= z) {
                top += dA;
            }
            if (z >= c) {
                cap += dA;
            }
        }
    }
    const double frac = 2 * cap / (6 * top); // |z| >= c: both caps
    constexpr int kN = 100000;
    const torch::Tensor s
        = wfm::data::sampleShapeSurface(ShapeClass::RoundedCube, kN, 10).to(torch::kDouble);
    const double observed = (s.select(1, 2).abs() >= c).sum().item<double>();
    QString why;
    // Slack 2e-3 of n for the quadrature's boundary error.
    QVERIFY2(binomialOk(observed, kN, frac, 2e-3, why), qPrintable(why));
    // A plain radial projection (no rejection) would put a visibly different share there.
    qInfo("rounded cube: area fraction with |z| >= %.2f is %.4f, sampled %.4f", c, frac, observed / kN);
}

void TestBuiltinFamilies::shapes3dSpheresAreScaledAndCentred()
{
    const auto d = wfm::data::makeBuiltin("shapes3d", { { "count", "120" }, { "max", "400" } });
    int spheres = 0;
    for (std::int64_t k = 0; k < d.count(); ++k) {
        const torch::Tensor p = d.cloud(k).to(torch::kDouble);
        const torch::Tensor r = p.norm(2, { 1 });
        if (d.labels[k].item<std::int64_t>() == static_cast<std::int64_t>(ShapeClass::Sphere)) {
            ++spheres;
            // A sphere of radius = scale in [0.5, 1.5] about the origin (rotation changes nothing).
            const double s = r.mean().item<double>();
            QVERIFY(s >= 0.5 - 1e-6 && s <= 1.5 + 1e-6);
            QVERIFY((r - s).abs().max().item<double>() < 1e-5);
        }
        if (d.labels[k].item<std::int64_t>() == static_cast<std::int64_t>(ShapeClass::Box)) {
            // Rotation and scale keep distances: the farthest point is a corner at
            // scale * |half extents|, so the radius ratio max/min lies in [1, |h| / min h].
            const double ratio = (r.max() / r.min()).item<double>();
            QVERIFY(ratio <= std::sqrt(1.0 + 0.49 + 0.16) / 0.4 + 1e-4);
        }
    }
    QVERIFY(spheres > 5);
}

QTEST_GUILESS_MAIN(TestBuiltinFamilies)
#include "tst_builtinfamilies.moc"
