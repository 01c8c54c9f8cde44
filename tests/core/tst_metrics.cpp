// Tests of the evaluation metrics (wfm::metrics): Chamfer distance against a brute-force double
// loop (padding, unequal sizes, weights), its invariances and the chunked path; the pair matrices
// against loops of the aligned functions; exact EMD against brute force over permutations
// (Birkhoff: for equal-size uniform clouds the optimum is a permutation); the entropic cost
// against the exact one and its entropic bound; 1-NNA, COV and MMD on hand-computed examples,
// separated sets, copies and random splits of one i.i.d. sample; Bures-Wasserstein set metrics on
// identical and translated sets; JSON output; argument validation.
#include "wfm/Error.h"
#include "wfm/metrics/CloudDistances.h"
#include "wfm/metrics/SetMetrics.h"
#include "wfm/ot/ExactOT.h"

#include <QtTest>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace metrics = wfm::metrics;
using torch::Tensor;

namespace {

/// Chamfer against the float64 brute force, relative to the value (float64: round-off of the
/// |x|^2 + |y|^2 - 2 x.y expansion; float32: single-precision rounding of O(1) coordinates).
constexpr double kChamferTolF64 = 1e-11;
constexpr double kChamferTolF32 = 2e-5;
/// Absolute zero tolerance of CD(x, x) for O(1) float64 coordinates.
constexpr double kZeroTolF64 = 1e-12;
/// Exact EMD against brute force over permutations (LP optimum in float64).
constexpr double kEmdTol = 1e-10;
/// Entropic costs from the float32 fused kernel against each other and the exact cost.
constexpr double kEntropicRelTol = 1e-4;
/// Bures-Wasserstein W2 of identical Gaussians: sqrt of the round-off of W2^2 (~1e-16 * trace).
constexpr double kBwZeroTol = 1e-6;
constexpr double kBwTol = 1e-9;

torch::ScalarType dtypeOf(bool isDouble)
{
    return isDouble ? torch::kFloat64 : torch::kFloat32;
}

/// Random padded clouds: K clouds of up to N points in d dimensions, each with a random number
/// (>= 1) of live points at random positions and random positive weights summing to 1. Padded
/// points get far-away junk coordinates, which must not matter.
struct Clouds
{
    Tensor x; ///< [K,N,d]
    Tensor w; ///< [K,N]
};

Clouds randomClouds(std::int64_t k, std::int64_t n, std::int64_t d, torch::ScalarType dtype,
    bool pad = true, double shift = 0.0)
{
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    Tensor x = torch::randn({ k, n, d }, f64) + shift;
    Tensor w = torch::rand({ k, n }, f64) + 0.1;
    if (pad) {
        for (std::int64_t c = 0; c < k; ++c) {
            const std::int64_t live = torch::randint(1, n + 1, { 1 }).item<std::int64_t>();
            const Tensor dead = torch::randperm(n).slice(0, live);
            w[c].index_fill_(0, dead, 0.0);
            // Junk inside the live points' range: it would change the minima if not excluded.
            x[c].index_copy_(0, dead, shift + torch::randn({ n - live, d }, f64));
        }
    }
    w = w / w.sum(1, true);
    return { x.to(dtype), w.to(dtype) };
}

/// CD by the definition, in float64 over the live points only.
double bruteChamfer(const Tensor& x, const Tensor& wx, const Tensor& y, const Tensor& wy)
{
    const Tensor xd = x.to(torch::kFloat64).contiguous();
    const Tensor yd = y.to(torch::kFloat64).contiguous();
    Tensor a = wx.to(torch::kFloat64);
    Tensor b = wy.to(torch::kFloat64);
    a = a / a.sum();
    b = b / b.sum();
    const auto px = xd.accessor<double, 2>();
    const auto py = yd.accessor<double, 2>();
    const auto pa = a.accessor<double, 1>();
    const auto pb = b.accessor<double, 1>();
    const std::int64_t n = xd.size(0);
    const std::int64_t m = yd.size(0);
    const std::int64_t d = xd.size(1);
    auto sq = [&](std::int64_t i, std::int64_t j) {
        double s = 0;
        for (std::int64_t k = 0; k < d; ++k) {
            const double t = px[i][k] - py[j][k];
            s += t * t;
        }
        return s;
    };
    const double inf = std::numeric_limits<double>::infinity();
    double total = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        if (pa[i] <= 0) {
            continue;
        }
        double best = inf;
        for (std::int64_t j = 0; j < m; ++j) {
            if (pb[j] > 0) {
                best = std::min(best, sq(i, j));
            }
        }
        total += pa[i] * best;
    }
    for (std::int64_t j = 0; j < m; ++j) {
        if (pb[j] <= 0) {
            continue;
        }
        double best = inf;
        for (std::int64_t i = 0; i < n; ++i) {
            if (pa[i] > 0) {
                best = std::min(best, sq(i, j));
            }
        }
        total += pb[j] * best;
    }
    return total;
}

/// min over permutations p of (1/N) sum_i |x_i - y_p(i)|^2 for x, y [N,d] (uniform weights).
double bruteEmdUniform(const Tensor& x, const Tensor& y)
{
    const Tensor xd = x.to(torch::kFloat64).contiguous();
    const Tensor yd = y.to(torch::kFloat64).contiguous();
    const auto px = xd.accessor<double, 2>();
    const auto py = yd.accessor<double, 2>();
    const std::int64_t n = xd.size(0);
    const std::int64_t d = xd.size(1);
    std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
    std::iota(perm.begin(), perm.end(), std::int64_t { 0 });
    double best = std::numeric_limits<double>::infinity();
    do {
        double s = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            for (std::int64_t k = 0; k < d; ++k) {
                const double t = px[i][k] - py[perm[static_cast<std::size_t>(i)]][k];
                s += t * t;
            }
        }
        best = std::min(best, s / static_cast<double>(n));
    } while (std::next_permutation(perm.begin(), perm.end()));
    return best;
}

/// |a_i - b_j| for 1-D points: the distance matrix of a tiny hand-computed example.
Tensor lineDistances(const std::vector<double>& a, const std::vector<double>& b)
{
    const Tensor ta = torch::tensor(a, torch::kFloat64);
    const Tensor tb = torch::tensor(b, torch::kFloat64);
    return (ta.unsqueeze(1) - tb.unsqueeze(0)).abs();
}

/// Single-point clouds [K,1,1] at the given positions.
Tensor lineClouds(const std::vector<double>& a)
{
    return torch::tensor(a, torch::kFloat64).view({ -1, 1, 1 });
}

metrics::ChamferOptions backendOptions(bool loop)
{
    return metrics::ChamferOptions {}.setBackend(
        loop ? metrics::ChamferBackend::Loop : metrics::ChamferBackend::Tensor);
}

double relErr(double value, double truth)
{
    return std::abs(value - truth) / std::max(1.0, std::abs(truth));
}

/// Runs fn, expecting wfm::ConfigError whose message contains `name`.
void expectConfigError(const std::function<void()>& fn, const std::string& name)
{
    try {
        fn();
    } catch (const wfm::ConfigError& e) {
        const std::string msg = e.what();
        QVERIFY2(msg.find(name) != std::string::npos,
            qPrintable(QString("message does not name '%1': %2")
                           .arg(QString::fromStdString(name), QString::fromStdString(msg))));
        return;
    } catch (const std::exception& e) {
        QFAIL(qPrintable(QString("expected wfm::ConfigError naming '%1', got another exception: %2")
                             .arg(QString::fromStdString(name), e.what())));
    }
    QFAIL(qPrintable(QString("expected wfm::ConfigError naming '%1', nothing thrown")
                         .arg(QString::fromStdString(name))));
}

/// Random SPD covariances [K,d,d]: A A^T + 0.2 I.
Tensor randomCovs(std::int64_t k, std::int64_t d)
{
    const Tensor a = torch::randn({ k, d, d }, torch::kFloat64) * 0.5;
    return a.matmul(a.transpose(1, 2)) + 0.2 * torch::eye(d, torch::kFloat64);
}

} // namespace

class TestMetrics : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void chamferBruteForce_data();
    void chamferBruteForce();
    void chamferSymmetricAndZero();
    void chamferInvariances();
    void chamferChunked();
    void chamferMatrixMatchesAligned();
    void emdBruteForce_data();
    void emdBruteForce();
    void emdMatrixMatchesAligned();
    void entropicAgainstExact_data();
    void entropicAgainstExact();
    void oneNNAHandExamples_data();
    void oneNNAHandExamples();
    void oneNNASeparatedSets();
    void oneNNARandomSplits();
    void coverageAndMmdHandExamples();
    void identicalSets();
    void gaussianSets_data();
    void gaussianSets();
    void json();
    void validation();
    void cudaMatchesCpu();
};

void TestMetrics::chamferBruteForce_data()
{
    QTest::addColumn<bool>("isDouble");
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("m");
    QTest::addColumn<int>("d");
    QTest::addColumn<bool>("loop");
    for (const bool loop : { true, false }) {
        const char* b = loop ? "loop" : "tensor";
        QTest::addRow("%s f64 7x5 d1", b) << true << 7 << 5 << 1 << loop;
        QTest::addRow("%s f64 6x9 d2", b) << true << 6 << 9 << 2 << loop;
        QTest::addRow("%s f64 11x4 d3", b) << true << 11 << 4 << 3 << loop;
        QTest::addRow("%s f64 20x17 d5", b) << true << 20 << 17 << 5 << loop;
        QTest::addRow("%s f32 7x5 d2", b) << false << 7 << 5 << 2 << loop;
        QTest::addRow("%s f32 12x10 d3", b) << false << 12 << 10 << 3 << loop;
        QTest::addRow("%s f32 9x19 d4", b) << false << 9 << 19 << 4 << loop;
    }
}

void TestMetrics::chamferBruteForce()
{
    QFETCH(bool, isDouble);
    QFETCH(int, n);
    QFETCH(int, m);
    QFETCH(int, d);
    QFETCH(bool, loop);
    torch::manual_seed(11 + n * 31 + m * 7 + d);
    const metrics::ChamferOptions opt = backendOptions(loop);
    const auto dtype = dtypeOf(isDouble);
    const std::int64_t b = 6;
    // Different centres for x and y so that the two directions differ.
    const Clouds x = randomClouds(b, n, d, dtype, true, 0.0);
    const Clouds y = randomClouds(b, m, d, dtype, true, 0.7);
    const Tensor cd = metrics::chamferDistance(x.x, x.w, y.x, y.w, opt);
    QVERIFY(cd.sizes().vec() == (std::vector<std::int64_t> { b }));
    QCOMPARE(cd.scalar_type(), torch::kFloat64);
    const double tol = isDouble ? kChamferTolF64 : kChamferTolF32;
    for (std::int64_t k = 0; k < b; ++k) {
        const double truth = bruteChamfer(x.x[k], x.w[k], y.x[k], y.w[k]);
        const double got = cd[k].item<double>();
        QVERIFY2(relErr(got, truth) < tol,
            qPrintable(QString("pair %1: %2 vs brute force %3").arg(k).arg(got).arg(truth)));
    }
    // Undefined weights are uniform.
    const Tensor uniform = metrics::chamferDistance(x.x, {}, y.x, {}, opt);
    for (std::int64_t k = 0; k < b; ++k) {
        const double truth
            = bruteChamfer(x.x[k], torch::ones({ n }, dtype), y.x[k], torch::ones({ m }, dtype));
        QVERIFY(relErr(uniform[k].item<double>(), truth) < tol);
    }
}

void TestMetrics::chamferSymmetricAndZero()
{
    torch::manual_seed(3);
    const Clouds x = randomClouds(5, 9, 3, torch::kFloat64, true, 2.0);
    const Clouds y = randomClouds(5, 6, 3, torch::kFloat64, true, -1.0);
    // Identical clouds, also with the padding laid out differently, far from the origin (where
    // the |x|^2 + |y|^2 - 2 x.y expansion would cancel badly without centring).
    const Clouds z = randomClouds(5, 9, 3, torch::kFloat64, true, 1000.0);
    const Tensor perm = torch::randperm(9);
    for (const bool loop : { true, false }) {
        const metrics::ChamferOptions opt = backendOptions(loop);
        const Tensor xy = metrics::chamferDistance(x.x, x.w, y.x, y.w, opt);
        const Tensor yx = metrics::chamferDistance(y.x, y.w, x.x, x.w, opt);
        QVERIFY(
            (xy - yx).abs().max().item<double>() < kChamferTolF64 * xy.abs().max().item<double>());
        QVERIFY((xy > 0).all().item<bool>());

        const Tensor zz = metrics::chamferDistance(z.x, z.w, z.x, z.w, opt);
        const Tensor zp = metrics::chamferDistance(
            z.x, z.w, z.x.index_select(1, perm), z.w.index_select(1, perm), opt);
        if (loop) {
            // Direct differences of equal coordinates are exactly 0.
            QCOMPARE(zz.abs().max().item<double>(), 0.0);
            QCOMPARE(zp.abs().max().item<double>(), 0.0);
        } else {
            QVERIFY2(zz.abs().max().item<double>() < kZeroTolF64,
                qPrintable(QString("CD(x,x) = %1").arg(zz.abs().max().item<double>())));
            QVERIFY(zp.abs().max().item<double>() < kZeroTolF64);
        }
    }
}

void TestMetrics::chamferInvariances()
{
    torch::manual_seed(5);
    for (const bool loop : { true, false }) {
        for (const bool isDouble : { true, false }) {
            const metrics::ChamferOptions opt = backendOptions(loop);
            const auto dtype = dtypeOf(isDouble);
            const double tol = isDouble ? kChamferTolF64 : kChamferTolF32;
            const Clouds x = randomClouds(4, 8, 2, dtype);
            const Clouds y = randomClouds(4, 5, 2, dtype, true, 0.5);
            const Tensor ref = metrics::chamferDistance(x.x, x.w, y.x, y.w, opt);
            const double scale = ref.abs().max().item<double>();

            // Permuting the points (with their weights) of either cloud.
            const Tensor px = torch::randperm(8);
            const Tensor py = torch::randperm(5);
            const Tensor perm = metrics::chamferDistance(x.x.index_select(1, px),
                x.w.index_select(1, px), y.x.index_select(1, py), y.w.index_select(1, py), opt);
            QVERIFY((perm - ref).abs().max().item<double>() < tol * scale);

            // Appending padded points with arbitrary coordinates.
            const Tensor junkX = torch::randn({ 4, 3, 2 }).to(dtype) * 7.0;
            const Tensor junkY = torch::randn({ 4, 6, 2 }).to(dtype) - 3.0;
            const Tensor padded = metrics::chamferDistance(torch::cat({ junkX, x.x }, 1),
                torch::cat({ torch::zeros({ 4, 3 }, dtype), x.w }, 1),
                torch::cat({ y.x, junkY }, 1),
                torch::cat({ y.w, torch::zeros({ 4, 6 }, dtype) }, 1), opt);
            QVERIFY((padded - ref).abs().max().item<double>() < tol * scale);
        }
    }
}

void TestMetrics::chamferChunked()
{
    torch::manual_seed(7);
    const Clouds x = randomClouds(3, 13, 3, torch::kFloat64);
    const Clouds y = randomClouds(3, 8, 3, torch::kFloat64, true, 0.3);
    auto tensorChunk = [](std::int64_t rows) {
        return metrics::ChamferOptions {}
            .setBackend(metrics::ChamferBackend::Tensor)
            .setRowChunk(rows);
    };
    const Tensor whole = metrics::chamferDistance(x.x, x.w, y.x, y.w, tensorChunk(13));
    for (const std::int64_t chunk : { 1, 2, 5, 12 }) {
        const Tensor chunked = metrics::chamferDistance(x.x, x.w, y.x, y.w, tensorChunk(chunk));
        QVERIFY2((chunked - whole).abs().max().item<double>() < 1e-14,
            qPrintable(QString("rowChunk %1").arg(chunk)));
    }
    // The automatic chunking (blocks of ~256K entries): 1000 x 800 points need several row
    // blocks; it agrees with one block and with the loop kernel.
    const Clouds big = randomClouds(2, 1000, 3, torch::kFloat32);
    const Clouds big2 = randomClouds(2, 800, 3, torch::kFloat32, true, 0.1);
    const Tensor automatic = metrics::chamferDistance(big.x, big.w, big2.x, big2.w, tensorChunk(0));
    const Tensor single = metrics::chamferDistance(big.x, big.w, big2.x, big2.w, tensorChunk(1000));
    const Tensor loop = metrics::chamferDistance(big.x, big.w, big2.x, big2.w);
    const double scale = single.max().item<double>();
    QVERIFY2((automatic - single).abs().max().item<double>() < 1e-12 * scale,
        qPrintable(
            QString("%1 vs %2").arg(automatic[0].item<double>()).arg(single[0].item<double>())));
    QVERIFY((loop - single).abs().max().item<double>() < kChamferTolF32 * scale);
    // The matrix path chunks too.
    const Tensor mChunked = metrics::chamferMatrix(x.x, x.w, y.x, y.w, tensorChunk(3));
    const Tensor mWhole = metrics::chamferMatrix(x.x, x.w, y.x, y.w, tensorChunk(0));
    QVERIFY((mChunked - mWhole).abs().max().item<double>() < 1e-14);
}

void TestMetrics::chamferMatrixMatchesAligned()
{
    torch::manual_seed(9);
    const Clouds a = randomClouds(5, 7, 2, torch::kFloat64);
    const Clouds b = randomClouds(4, 9, 2, torch::kFloat64, true, 0.4);
    for (const bool loop : { true, false }) {
        const metrics::ChamferOptions opt = backendOptions(loop);
        const Tensor m = metrics::chamferMatrix(a.x, a.w, b.x, b.w, opt);
        QVERIFY(m.sizes().vec() == (std::vector<std::int64_t> { 5, 4 }));
        QVERIFY(m.device().is_cpu());
        for (std::int64_t p = 0; p < 5; ++p) {
            for (std::int64_t q = 0; q < 4; ++q) {
                const double aligned = metrics::chamferDistance(a.x.slice(0, p, p + 1),
                    a.w.slice(0, p, p + 1), b.x.slice(0, q, q + 1), b.w.slice(0, q, q + 1), opt)
                                           .item<double>();
                QVERIFY(relErr(m[p][q].item<double>(), aligned) < 1e-13);
                QVERIFY(
                    relErr(aligned, bruteChamfer(a.x[p], a.w[p], b.x[q], b.w[q])) < kChamferTolF64);
            }
        }
        // Within one set: symmetric, zero diagonal, off-diagonal entries as the definition.
        const Tensor s = metrics::chamferMatrix(a.x, a.w, opt);
        QVERIFY(s.sizes().vec() == (std::vector<std::int64_t> { 5, 5 }));
        QVERIFY(torch::equal(s, s.t()));
        QVERIFY(torch::equal(s.diagonal(), torch::zeros({ 5 }, torch::kFloat64)));
        for (std::int64_t p = 0; p < 5; ++p) {
            for (std::int64_t q = 0; q < 5; ++q) {
                if (p != q) {
                    QVERIFY(
                        relErr(s[p][q].item<double>(), bruteChamfer(a.x[p], a.w[p], a.x[q], a.w[q]))
                        < kChamferTolF64);
                }
            }
        }
    }
}

void TestMetrics::emdBruteForce_data()
{
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("d");
    QTest::addColumn<int>("padding");
    QTest::newRow("n4 d1") << 4 << 1 << 0;
    QTest::newRow("n5 d2") << 5 << 2 << 0;
    QTest::newRow("n6 d3 padded") << 6 << 3 << 2;
}

void TestMetrics::emdBruteForce()
{
    QVERIFY2(wfm::ot::exactTransportAvailable(), "this build lacks LEMON (exact EMD)");
    QFETCH(int, n);
    QFETCH(int, d);
    QFETCH(int, padding);
    torch::manual_seed(100 + n + d);
    const std::int64_t b = 4;
    const std::int64_t total = n + padding;
    const Tensor x = torch::randn({ b, n, d }, torch::kFloat64);
    const Tensor y = torch::randn({ b, n, d }, torch::kFloat64) + 0.3;
    // Padded layout: live points first in x, last in y, junk coordinates in the padding.
    const Tensor junk = 40.0 + torch::randn({ b, padding, d }, torch::kFloat64);
    const Tensor live = torch::full({ b, n }, 1.0 / n, torch::kFloat64);
    const Tensor dead = torch::zeros({ b, padding }, torch::kFloat64);
    const Tensor xp = torch::cat({ x, junk }, 1);
    const Tensor wx = torch::cat({ live, dead }, 1);
    const Tensor yp = torch::cat({ junk, y }, 1);
    const Tensor wy = torch::cat({ dead, live }, 1);
    QCOMPARE(xp.size(1), total);
    const Tensor emd = metrics::emdDistance(xp, wx, yp, wy);
    QVERIFY(emd.sizes().vec() == (std::vector<std::int64_t> { b }));
    for (std::int64_t k = 0; k < b; ++k) {
        const double truth = bruteEmdUniform(x[k], y[k]);
        QVERIFY2(relErr(emd[k].item<double>(), truth) < kEmdTol,
            qPrintable(QString("pair %1: %2 vs %3").arg(k).arg(emd[k].item<double>()).arg(truth)));
    }
    // float32 inputs give the same optimum up to the rounding of the coordinates.
    const Tensor emd32 = metrics::emdDistance(xp.to(torch::kFloat32), wx.to(torch::kFloat32),
        yp.to(torch::kFloat32), wy.to(torch::kFloat32));
    QVERIFY((emd32 - emd).abs().max().item<double>() < 1e-5);
}

void TestMetrics::emdMatrixMatchesAligned()
{
    torch::manual_seed(13);
    const Clouds a = randomClouds(4, 6, 2, torch::kFloat64);
    const Clouds b = randomClouds(3, 7, 2, torch::kFloat64, true, 0.5);
    for (const bool entropic : { false, true }) {
        const metrics::EmdOptions opt = metrics::EmdOptions {}.setEntropic(entropic).setEps(0.01);
        const Tensor m = metrics::emdMatrix(a.x, a.w, b.x, b.w, opt);
        QVERIFY(m.sizes().vec() == (std::vector<std::int64_t> { 4, 3 }));
        const double tol = entropic ? kEntropicRelTol : 1e-12;
        for (std::int64_t p = 0; p < 4; ++p) {
            for (std::int64_t q = 0; q < 3; ++q) {
                const double aligned = metrics::emdDistance(a.x.slice(0, p, p + 1),
                    a.w.slice(0, p, p + 1), b.x.slice(0, q, q + 1), b.w.slice(0, q, q + 1), opt)
                                           .item<double>();
                QVERIFY2(relErr(m[p][q].item<double>(), aligned) < tol,
                    qPrintable(QString("entropic %1 (%2,%3): %4 vs %5")
                                   .arg(entropic)
                                   .arg(p)
                                   .arg(q)
                                   .arg(m[p][q].item<double>())
                                   .arg(aligned)));
            }
        }
        const Tensor s = metrics::emdMatrix(a.x, a.w, opt);
        QVERIFY(torch::equal(s, s.t()));
        QVERIFY(torch::equal(s.diagonal(), torch::zeros({ 4 }, torch::kFloat64)));
        for (std::int64_t p = 0; p < 4; ++p) {
            for (std::int64_t q = p + 1; q < 4; ++q) {
                const double aligned = metrics::emdDistance(a.x.slice(0, p, p + 1),
                    a.w.slice(0, p, p + 1), a.x.slice(0, q, q + 1), a.w.slice(0, q, q + 1), opt)
                                           .item<double>();
                QVERIFY(relErr(s[p][q].item<double>(), aligned) < tol);
            }
        }
    }
    // entropicCost is the entropic emdDistance.
    const Tensor ec
        = metrics::entropicCost(a.x.slice(0, 0, 3), a.w.slice(0, 0, 3), b.x, b.w, 0.01, 200);
    const Tensor ed = metrics::emdDistance(a.x.slice(0, 0, 3), a.w.slice(0, 0, 3), b.x, b.w,
        metrics::EmdOptions {}.setEntropic(true).setEps(0.01));
    QVERIFY((ec - ed).abs().max().item<double>() < 1e-12);
}

void TestMetrics::entropicAgainstExact_data()
{
    QTest::addColumn<double>("eps");
    QTest::addColumn<int>("iterations");
    QTest::newRow("eps 0.05") << 0.05 << 500;
    QTest::newRow("eps 0.01") << 0.01 << 2000;
    QTest::newRow("eps 0.002") << 0.002 << 5000;
}

void TestMetrics::entropicAgainstExact()
{
    QFETCH(double, eps);
    QFETCH(int, iterations);
    torch::manual_seed(17);
    const std::int64_t b = 5;
    const std::int64_t n = 8;
    const Clouds x = randomClouds(b, n, 2, torch::kFloat32, false);
    const Clouds y = randomClouds(b, n, 2, torch::kFloat32, false, 0.5);
    const Tensor exact = metrics::emdDistance(x.x, x.w, y.x, y.w);
    const Tensor ent = metrics::entropicCost(x.x, x.w, y.x, y.w, eps, iterations);
    // Largest squared distance per pair: eps is relative to it.
    const Tensor maxC = (x.x.unsqueeze(2) - y.x.unsqueeze(1)).pow(2).sum(-1).amax({ 1, 2 });
    for (std::int64_t k = 0; k < b; ++k) {
        const double e = exact[k].item<double>();
        const double s = ent[k].item<double>();
        const double epsAbs = eps * maxC[k].item<double>();
        // <P_eps, C> - W2^2 <= eps * KL(P_0 | a x b) <= eps * log N for the converged plan.
        const double bound = epsAbs * std::log(static_cast<double>(n));
        QVERIFY2(s >= e * (1.0 - kEntropicRelTol),
            qPrintable(QString("pair %1: entropic %2 < exact %3").arg(k).arg(s).arg(e)));
        QVERIFY2(s <= e + bound + kEntropicRelTol * e,
            qPrintable(QString("pair %1: entropic %2 > exact %3 + bound %4")
                           .arg(k)
                           .arg(s)
                           .arg(e)
                           .arg(bound)));
    }
}

void TestMetrics::oneNNAHandExamples_data()
{
    QTest::addColumn<std::vector<double>>("gen");
    QTest::addColumn<std::vector<double>>("ref");
    QTest::addColumn<double>("expected");
    // g0 -> g1 (ok), g1 -> g0 (1 < 1.2, ok), g4.5 -> r5 (no), g8 -> r9 (no),
    // r2.2 -> g1 (no), r5 -> g4.5 (no), r9 -> r9.5 (ok), r9.5 -> r9 (ok): 4/8.
    QTest::newRow("4+4 line") << std::vector<double> { 0, 1, 4.5, 8 }
                              << std::vector<double> { 2.2, 5, 9, 9.5 } << 0.5;
    // g0 -> g0.5 (ok), g0.5 -> g0 (ok), g3 -> g4 (ok), g4 -> g3 (ok), r6 -> r6.5 (ok),
    // r6.5 -> r6 (ok), r10 -> r6.5 (ok), r20 -> r10 (ok): separated halves, 8/8.
    QTest::newRow("4+4 separated")
        << std::vector<double> { 0, 0.5, 3, 4 } << std::vector<double> { 6, 6.5, 10, 20 } << 1.0;
    // Tie: g2 is at distance 2 from g0 and from r4, scoring 1/2. g0 -> g2 (ok), r4 -> g2 (no),
    // r9 -> r4 (ok): (1 + 0.5 + 0 + 1) / 4.
    QTest::newRow("2+2 tie") << std::vector<double> { 0, 2 } << std::vector<double> { 4, 9 }
                             << 0.625;
    // Unequal sizes: g0, g1, g2 find each other (3 ok), r10 -> g2 (no): 3/4.
    QTest::newRow("3+1") << std::vector<double> { 0, 1, 2 } << std::vector<double> { 10 } << 0.75;
    // Copies: each sample's nearest neighbour is its twin in the other set: 0.
    QTest::newRow("copies") << std::vector<double> { 0, 3, 7 } << std::vector<double> { 0, 3, 7 }
                            << 0.0;
}

void TestMetrics::oneNNAHandExamples()
{
    QFETCH(std::vector<double>, gen);
    QFETCH(std::vector<double>, ref);
    QFETCH(double, expected);
    const double nna = metrics::oneNNAccuracy(
        lineDistances(gen, gen), lineDistances(ref, ref), lineDistances(gen, ref));
    QCOMPARE(nna, expected);
    // The same sets as single-point clouds: CD = 2 (a-b)^2 and W2^2 = (a-b)^2 keep the ordering.
    const Tensor g = lineClouds(gen);
    const Tensor r = lineClouds(ref);
    QCOMPARE(metrics::evaluateClouds(g, {}, r, {}, metrics::Distance::Chamfer).nna, expected);
    QCOMPARE(metrics::evaluateClouds(g, {}, r, {}, metrics::Distance::Emd).nna, expected);
}

void TestMetrics::oneNNASeparatedSets()
{
    torch::manual_seed(19);
    const Clouds g = randomClouds(10, 12, 3, torch::kFloat32);
    const Clouds r = randomClouds(14, 9, 3, torch::kFloat32, true, 25.0);
    for (const auto kind :
        { metrics::Distance::Chamfer, metrics::Distance::Emd, metrics::Distance::EntropicEmd }) {
        const metrics::SetMetricsResult res = metrics::evaluateClouds(g.x, g.w, r.x, r.w, kind);
        QCOMPARE(res.nna, 1.0);
        QCOMPARE(res.generated, std::int64_t { 10 });
        QCOMPARE(res.reference, std::int64_t { 14 });
        QCOMPARE(res.distance, metrics::distanceName(kind));
    }
}

void TestMetrics::oneNNARandomSplits()
{
    // One i.i.d. sample of 80 clouds split at random into two halves of 40: the leave-one-out
    // nearest neighbour of each cloud is fixed by the sample, and lands in the same half with
    // probability 39/79, so the mean 1-NNA over random splits is close to 0.494.
    torch::manual_seed(23);
    const std::int64_t total = 80;
    const std::int64_t half = total / 2;
    const Clouds s = randomClouds(total, 10, 2, torch::kFloat64);
    const Tensor d = metrics::chamferMatrix(s.x, s.w);
    std::mt19937_64 rng(29);
    std::vector<std::int64_t> order(static_cast<std::size_t>(total));
    std::iota(order.begin(), order.end(), std::int64_t { 0 });
    const int splits = 20;
    double sum = 0;
    for (int k = 0; k < splits; ++k) {
        std::shuffle(order.begin(), order.end(), rng);
        const Tensor idx = torch::tensor(order, torch::kLong);
        const Tensor gi = idx.slice(0, 0, half);
        const Tensor ri = idx.slice(0, half);
        sum += metrics::oneNNAccuracy(d.index_select(0, gi).index_select(1, gi),
            d.index_select(0, ri).index_select(1, ri), d.index_select(0, gi).index_select(1, ri));
    }
    const double mean = sum / splits;
    QVERIFY2(std::abs(mean - 0.5) < 0.05, qPrintable(QString("mean 1-NNA %1").arg(mean)));
}

void TestMetrics::coverageAndMmdHandExamples()
{
    // Nearest references: g0 -> r1, g1 -> r1, g2 -> r3, so COV = 2/4; column minima
    // 2, 0.5, 3, 0.25, so MMD = 5.75 / 4.
    const Tensor dgr = torch::tensor(
        { 4.0, 1.0, 3.0, 5.0, 2.0, 0.5, 6.0, 7.0, 9.0, 8.0, 7.0, 0.25 }, torch::kFloat64)
                           .view({ 3, 4 });
    QCOMPARE(metrics::coverage(dgr), 0.5);
    QCOMPARE(metrics::minimumMatchingDistance(dgr), 1.4375);
    // float32 matrices are read the same way.
    QCOMPARE(metrics::coverage(dgr.to(torch::kFloat32)), 0.5);

    // A tie in a row goes to the lowest reference index: g0 -> r0 (not r1), g1 -> r1: COV 2/3;
    // column minima 1, 0, 2: MMD 1.
    const Tensor tie
        = torch::tensor({ 1.0, 1.0, 2.0, 3.0, 0.0, 3.0 }, torch::kFloat64).view({ 2, 3 });
    QCOMPARE(metrics::coverage(tie), 2.0 / 3.0);
    QCOMPARE(metrics::minimumMatchingDistance(tie), 1.0);

    // The 4+4 line example: nearest references 0 -> 2.2, 1 -> 2.2, 4.5 -> 5, 8 -> 9 (COV 3/4);
    // reference minima 1.2, 0.5, 1, 1.5 (MMD 1.05).
    const std::vector<double> g { 0, 1, 4.5, 8 };
    const std::vector<double> r { 2.2, 5, 9, 9.5 };
    const metrics::SetMetricsResult res = metrics::evaluateDistances(
        lineDistances(g, g), lineDistances(r, r), lineDistances(g, r), "line");
    QCOMPARE(res.cov, 0.75);
    QVERIFY(std::abs(res.mmd - 1.05) < 1e-15);
    QCOMPARE(res.nna, 0.5);
    QCOMPARE(res.distance, std::string("line"));
    QCOMPARE(res.generated, std::int64_t { 4 });
    QCOMPARE(res.reference, std::int64_t { 4 });
}

void TestMetrics::identicalSets()
{
    torch::manual_seed(31);
    const Clouds s = randomClouds(12, 10, 3, torch::kFloat64);
    for (const auto kind : { metrics::Distance::Chamfer, metrics::Distance::Emd }) {
        const metrics::SetMetricsResult res = metrics::evaluateClouds(s.x, s.w, s.x, s.w, kind);
        QCOMPARE(res.cov, 1.0);
        QVERIFY2(std::abs(res.mmd) < kZeroTolF64, qPrintable(QString("MMD %1").arg(res.mmd)));
        // Every sample's nearest neighbour is its copy in the other set.
        QCOMPARE(res.nna, 0.0);
    }
}

void TestMetrics::gaussianSets_data()
{
    QTest::addColumn<int>("d");
    QTest::newRow("d2") << 2;
    QTest::newRow("d3") << 3;
}

void TestMetrics::gaussianSets()
{
    QFETCH(int, d);
    torch::manual_seed(37 + d);
    // Means on a grid of spacing 10, so every Gaussian's nearest neighbour across a translation by
    // |t| = 1 is its own translate.
    const std::int64_t k = 9;
    const Tensor means = torch::zeros({ k, d }, torch::kFloat64);
    for (std::int64_t i = 0; i < k; ++i) {
        means[i][0] = 10.0 * static_cast<double>(i % 3);
        means[i][1] = 10.0 * static_cast<double>(i / 3);
    }
    const Tensor covs = randomCovs(k, d);
    const metrics::SetMetricsResult same = metrics::evaluateGaussians(means, covs, means, covs);
    QCOMPARE(same.cov, 1.0);
    QVERIFY2(same.mmd < kBwZeroTol, qPrintable(QString("MMD %1").arg(same.mmd)));
    QCOMPARE(same.distance, std::string("bures_wasserstein"));

    Tensor t = torch::randn({ d }, torch::kFloat64);
    t = t / t.norm(); // |t| = 1
    const double scale = 1.7;
    const metrics::SetMetricsResult moved
        = metrics::evaluateGaussians(means + scale * t, covs, means, covs);
    QCOMPARE(moved.cov, 1.0);
    QVERIFY2(std::abs(moved.mmd - scale) < kBwTol,
        qPrintable(QString("MMD %1, translation %2").arg(moved.mmd).arg(scale)));
    // Each Gaussian's nearest neighbour is its translate in the other set.
    QCOMPARE(moved.nna, 0.0);
    QCOMPARE(moved.generated, k);

    // Far apart: the sets separate and MMD is the W2 distance from each reference to the nearest
    // generated Gaussian (closed form with equal covariances: the mean offset).
    const metrics::SetMetricsResult far
        = metrics::evaluateGaussians(means + 1000.0, covs, means, covs);
    QCOMPARE(far.nna, 1.0);
    // float32 inputs agree.
    const metrics::SetMetricsResult moved32
        = metrics::evaluateGaussians((means + scale * t).to(torch::kFloat32),
            covs.to(torch::kFloat32), means.to(torch::kFloat32), covs.to(torch::kFloat32));
    QVERIFY(std::abs(moved32.mmd - scale) < 1e-3);
    QCOMPARE(moved32.cov, 1.0);
}

void TestMetrics::json()
{
    metrics::SetMetricsResult r;
    r.nna = 0.625;
    r.cov = 0.5;
    r.mmd = 1.4375;
    r.generated = 3;
    r.reference = 4;
    r.distance = "chamfer";
    QCOMPARE(metrics::toJsonString(r),
        std::string(
            R"({"distance":"chamfer","generated":3,"reference":4,"nna":0.625,"cov":0.5,"mmd":1.4375})"));
    // Shortest round-trip form, NaN as null, escaped strings.
    r.mmd = 0.1;
    r.nna = std::numeric_limits<double>::quiet_NaN();
    r.distance = "a\"b\\c\n";
    QCOMPARE(metrics::toJsonString(r),
        std::string(
            R"({"distance":"a\"b\\c\u000a","generated":3,"reference":4,"nna":null,"cov":0.5,"mmd":0.1})"));
    // Round trip of an arbitrary double.
    r.mmd = 1.0 / 3.0;
    const std::string s = metrics::toJsonString(r);
    const auto pos = s.find("\"mmd\":") + 6;
    QCOMPARE(std::stod(s.substr(pos, s.size() - pos - 1)), 1.0 / 3.0);
}

void TestMetrics::validation()
{
    torch::manual_seed(41);
    const Clouds a = randomClouds(3, 5, 2, torch::kFloat64);
    const Clouds b = randomClouds(3, 4, 2, torch::kFloat64);

    // Shapes and dims.
    expectConfigError([&] { metrics::chamferDistance(a.x[0], a.w[0], b.x[0], b.w[0]); }, "x");
    expectConfigError(
        [&] { metrics::chamferDistance(a.x, a.w, b.x.slice(0, 0, 2), b.w.slice(0, 0, 2)); },
        "same number of clouds");
    expectConfigError(
        [&] {
            metrics::chamferDistance(a.x, a.w, torch::randn({ 3, 4, 3 }, torch::kFloat64), {});
        },
        "same point dimension");
    expectConfigError([&] { metrics::chamferDistance(a.x, a.w.slice(1, 0, 4), b.x, b.w); }, "wx");
    expectConfigError(
        [&] { metrics::chamferDistance(a.x, a.w, b.x.to(torch::kFloat32), b.w); }, "y is Float");
    expectConfigError(
        [&] {
            metrics::chamferMatrix(torch::zeros({ 2, 0, 2 }, torch::kFloat64), {}, b.x, b.w);
        },
        "X has empty clouds");
    expectConfigError(
        [&] {
            metrics::chamferDistance(
                a.x, a.w, b.x, b.w, metrics::ChamferOptions {}.setRowChunk(-1));
        },
        "rowChunk");
    expectConfigError(
        [&] { metrics::chamferDistance(a.x.to(torch::kInt), {}, b.x.to(torch::kInt), {}); }, "x");

    // NaN and bad weights.
    Tensor nan = a.x.clone();
    nan[1][2][0] = std::numeric_limits<double>::quiet_NaN();
    expectConfigError([&] { metrics::chamferDistance(nan, a.w, b.x, b.w); }, "x contains NaN");
    expectConfigError([&] { metrics::emdMatrix(b.x, b.w, nan, a.w); }, "Y contains NaN");
    Tensor wNan = b.w.clone();
    wNan[0][0] = std::numeric_limits<double>::quiet_NaN();
    expectConfigError([&] { metrics::chamferDistance(a.x, a.w, b.x, wNan); }, "wy");
    expectConfigError([&] { metrics::emdDistance(a.x, a.w * 2.0, b.x, b.w); }, "wx");
    expectConfigError([&] { metrics::emdDistance(a.x, -a.w, b.x, b.w); }, "wx");
    expectConfigError(
        [&] {
            metrics::emdMatrix(
                a.x, a.w, b.x, b.w, metrics::EmdOptions {}.setEntropic(true).setEps(0));
        },
        "eps");
    expectConfigError(
        [&] {
            metrics::emdMatrix(a.x, a.w, metrics::EmdOptions {}.setEntropic(true).setIterations(0));
        },
        "iterations");

    // Set metrics: shapes, empty sets, NaN.
    const Tensor dgr = torch::rand({ 3, 4 }, torch::kFloat64);
    const Tensor dgg = torch::rand({ 3, 3 }, torch::kFloat64);
    const Tensor drr = torch::rand({ 4, 4 }, torch::kFloat64);
    expectConfigError([&] { metrics::oneNNAccuracy(dgg, dgg, dgr); }, "Drr");
    expectConfigError([&] { metrics::oneNNAccuracy(drr, drr, dgr); }, "Dgg");
    expectConfigError([&] { metrics::oneNNAccuracy(dgg, drr, dgr[0]); }, "Dgr");
    expectConfigError(
        [&] {
            metrics::coverage(torch::zeros({ 0, 4 }, torch::kFloat64));
        },
        "Dgr is empty");
    expectConfigError(
        [&] {
            metrics::minimumMatchingDistance(torch::zeros({ 3, 0 }, torch::kFloat64));
        },
        "Dgr is empty");
    Tensor dNan = dgr.clone();
    dNan[2][1] = std::numeric_limits<double>::quiet_NaN();
    expectConfigError([&] { metrics::coverage(dNan); }, "Dgr contains NaN");
    expectConfigError([&] { metrics::oneNNAccuracy(dgg, drr, dNan); }, "Dgr contains NaN");
    expectConfigError(
        [&] {
            metrics::evaluateClouds(
                a.x.slice(0, 0, 0), a.w.slice(0, 0, 0), b.x, b.w, metrics::Distance::Chamfer);
        },
        "genPoints is an empty set");
    expectConfigError(
        [&] { metrics::evaluateClouds(a.x, a.w, nan, {}, metrics::Distance::Emd); }, "refPoints");
    expectConfigError(
        [&] {
            metrics::evaluateClouds(a.x, wNan.slice(1, 0, 5), b.x, b.w, metrics::Distance::Emd);
        },
        "genWeights");
    expectConfigError(
        [&] {
            metrics::evaluateClouds(a.x, a.w, torch::randn({ 2, 4, 3 }, torch::kFloat64), {},
                metrics::Distance::Chamfer);
        },
        "same point dimension");

    const Tensor means = torch::randn({ 4, 2 }, torch::kFloat64);
    const Tensor covs = randomCovs(4, 2);
    expectConfigError(
        [&] {
            metrics::evaluateGaussians(
                means, covs, torch::randn({ 4, 3 }, torch::kFloat64), randomCovs(4, 3));
        },
        "refMeans");
    expectConfigError(
        [&] { metrics::evaluateGaussians(means, covs.slice(0, 0, 3), means, covs); }, "genCovs");
    Tensor mNan = means.clone();
    mNan[1][1] = std::numeric_limits<double>::quiet_NaN();
    expectConfigError([&] { metrics::evaluateGaussians(means, covs, mNan, covs); }, "refMeans");
    expectConfigError(
        [&] { metrics::evaluateGaussians(means.slice(0, 0, 0), covs.slice(0, 0, 0), means, covs); },
        "genMeans is an empty set");
    Tensor notPsd = covs.clone();
    notPsd[0] = -torch::eye(2, torch::kFloat64);
    expectConfigError([&] { metrics::evaluateGaussians(means, covs, means, notPsd); }, "refCovs");
}

void TestMetrics::cudaMatchesCpu()
{
    if (!torch::cuda::is_available()) {
        QSKIP("no CUDA device");
    }
    torch::manual_seed(43);
    const Clouds a = randomClouds(6, 40, 3, torch::kFloat32);
    const Clouds b = randomClouds(5, 30, 3, torch::kFloat32, true, 0.2);
    const Tensor cpu = metrics::chamferMatrix(a.x, a.w, b.x, b.w);
    const Tensor gpu = metrics::chamferMatrix(a.x.cuda(), a.w.cuda(), b.x.cuda(), b.w.cuda());
    QVERIFY(gpu.device().is_cpu());
    QVERIFY(
        (gpu - cpu).abs().max().item<double>() < kChamferTolF32 * cpu.abs().max().item<double>());
    const metrics::EmdOptions opt = metrics::EmdOptions {}.setEntropic(true);
    const Tensor ecpu = metrics::emdMatrix(a.x, a.w, b.x, b.w, opt);
    const Tensor egpu = metrics::emdMatrix(a.x.cuda(), a.w.cuda(), b.x.cuda(), b.w.cuda(), opt);
    QVERIFY((egpu - ecpu).abs().max().item<double>() < 1e-3 * ecpu.abs().max().item<double>());
    const Tensor aligned = metrics::chamferDistance(a.x.cuda(), a.w.cuda(), a.x.cuda(), a.w.cuda());
    QVERIFY(aligned.is_cuda());
    QVERIFY(aligned.abs().max().item<double>() < 1e-4);
}

QTEST_GUILESS_MAIN(TestMetrics)
#include "tst_metrics.moc"
