// Fused CPU Sinkhorn kernels (core/src/ot/cpu) against an independent float64 reference built
// from materialised tensors (C = squared distances, torch::logsumexp), on every instruction-set
// path this machine supports.

#include "../../core/src/ot/cpu/FusedCpuImpl.h"
#include "wfm/Error.h"

#include <QtTest>

#include <torch/torch.h>

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace fk = wfm::ot::kernels;
namespace fd = wfm::ot::kernels::cpu::detail;

namespace {

// Potentials: the float32 exponents h_j + <x_i, y'_j> have magnitude ~ max C / eps (log2 units)
// and relative rounding 6e-8, so each update is off by ~1e-7 max C (independent of eps); the
// Sinkhorn map is non-expansive in the sup norm, so this grows at most linearly with the
// iteration count. Worst measured (all paths, all cases below): 7e-8 max C after <= 5
// iterations, 3.6e-6 max C after 200 (the portable path, without FMA); bounds ~4x above.
constexpr double kPotTolCostFew = 5e-7;    ///< |f - f_ref| / max C, <= 5 iterations
constexpr double kPotTolCostMany = 1.5e-5; ///< ... up to 200 iterations
constexpr double kPotTolEps = 1e-4;        ///< plus this many eps (exp2/log2 approximations)
// Plan sums (mass, cost, weightedY, colMass), relative: each P_ij carries the rounding of its
// float32 exponent, ~6e-8 x (max C / eps) x ln 2. Worst measured 3.3e-5 at eps = 0.001 max C.
constexpr double kPlanRelTolPerExponent = 1.5e-7; ///< x max C / eps
constexpr double kPlanRelTolFloor = 1e-6;
constexpr double kTopKValueTol = 1e-9;     ///< topK values are ranked and reported from float64
constexpr double kPotTolShiftedEps = 2e-3;  ///< potentials ~3000 eps off balance, 2 iterations
constexpr double kLogMassTolShifted = 3e-3; ///< log mass with potentials ~6000 eps off balance
constexpr double kSamplingSigmas = 5.0;    ///< binomial z-score bound for sampled frequencies

std::vector<fd::Isa> supportedIsas()
{
    std::vector<fd::Isa> out;
    for (fd::Isa isa : { fd::Isa::Portable, fd::Isa::Avx2, fd::Isa::Avx512 }) {
        if (fd::isaSupported(isa)) {
            out.push_back(isa);
        }
    }
    return out;
}

const char* isaName(fd::Isa isa)
{
    return isa == fd::Isa::Avx512 ? "avx512" : isa == fd::Isa::Avx2 ? "avx2" : "portable";
}

/// Forces one path for the lifetime of the guard.
struct IsaGuard
{
    explicit IsaGuard(fd::Isa isa) { fd::setIsaOverride(isa); }
    ~IsaGuard() { fd::clearIsaOverride(); }
    IsaGuard(const IsaGuard&) = delete;
    IsaGuard& operator=(const IsaGuard&) = delete;
};

/// A random padded batch: float32 arrays for the kernels, float64 copies and the materialised
/// cost for the reference.
struct Batch
{
    int B = 0;
    int N = 0;
    int M = 0;
    int d = 0;
    torch::Tensor x, y, loga, logb, eps;          // float32
    torch::Tensor xd, yd, lad, lbd, epsd, C;      // float64, C [B,N,M]
    torch::Tensor liveX, liveY;                   // bool [B,N], [B,M]

    fk::Problem problem() const
    {
        fk::Problem p;
        p.x = x.data_ptr<float>();
        p.y = y.data_ptr<float>();
        p.loga = loga.data_ptr<float>();
        p.logb = logb.data_ptr<float>();
        p.eps = eps.data_ptr<float>();
        p.B = B;
        p.N = N;
        p.M = M;
        p.d = d;
        return p;
    }
};

/// liveCounts[b] live entries per side (-1: random in [1, L]); interior: padding scattered
/// instead of at the end; offset moves both clouds away from the origin.
Batch makeBatch(int B, int N, int M, int d, double epsRel, std::uint64_t seed, bool interior,
    double offset = 0.0, std::vector<int> liveN = {}, std::vector<int> liveM = {})
{
    torch::manual_seed(seed);
    Batch bt;
    bt.B = B;
    bt.N = N;
    bt.M = M;
    bt.d = d;
    auto opt = torch::TensorOptions().dtype(torch::kFloat32);
    bt.x = torch::randn({ B, N, d }, opt) + offset;
    bt.y = torch::randn({ B, M, d }, opt) * 0.8 + 0.7 + offset;
    auto makeLive = [&](int L, const std::vector<int>& counts) {
        auto live = torch::zeros({ B, L }, torch::kBool);
        for (int b = 0; b < B; ++b) {
            int n = b < int(counts.size()) ? counts[std::size_t(b)]
                                           : (b == 0 ? L : 1 + int(torch::randint(L, { 1 }).item<int64_t>()));
            auto row = torch::zeros({ L }, torch::kBool);
            if (n > 0) {
                if (interior) {
                    row.index_fill_(0, torch::randperm(L).slice(0, 0, n), true);
                } else {
                    row.slice(0, 0, n).fill_(true);
                }
            }
            live[b] = row;
        }
        return live;
    };
    bt.liveX = makeLive(N, liveN);
    bt.liveY = makeLive(M, liveM);
    auto weights = [&](const torch::Tensor& live, int L) {
        auto w = (torch::rand({ B, L }, torch::kFloat64) + 0.5) * live.to(torch::kFloat64);
        w = w / w.sum(1, true).clamp_min(1e-300);
        return torch::log(w).to(torch::kFloat32); // log 0 = -inf marks padding
    };
    bt.loga = weights(bt.liveX, N).contiguous();
    bt.logb = weights(bt.liveY, M).contiguous();
    bt.xd = bt.x.to(torch::kFloat64);
    bt.yd = bt.y.to(torch::kFloat64);
    bt.lad = bt.loga.to(torch::kFloat64);
    bt.lbd = bt.logb.to(torch::kFloat64);
    bt.C = (bt.xd.unsqueeze(2) - bt.yd.unsqueeze(1)).pow(2).sum(-1);
    auto both = bt.liveX.unsqueeze(2) & bt.liveY.unsqueeze(1);
    auto maxC = torch::where(both, bt.C, torch::zeros_like(bt.C)).amax({ 1, 2 });
    bt.eps = (maxC.clamp_min(1e-3) * epsRel).to(torch::kFloat32).contiguous();
    bt.epsd = bt.eps.to(torch::kFloat64);
    return bt;
}

double maxCost(const Batch& bt)
{
    auto both = bt.liveX.unsqueeze(2) & bt.liveY.unsqueeze(1);
    return torch::where(both, bt.C, torch::zeros_like(bt.C)).max().item<double>();
}

/// Reference Sinkhorn in float64: g = -eps LSE_i(loga + (f - C)/eps), then f likewise.
void referenceIterate(const Batch& bt, torch::Tensor& f, torch::Tensor& g, int iterations)
{
    auto e3 = bt.epsd.view({ bt.B, 1, 1 });
    auto e2 = bt.epsd.view({ bt.B, 1 });
    for (int it = 0; it < iterations; ++it) {
        auto gn = -e2 * torch::logsumexp(bt.lad.unsqueeze(2) + (f.unsqueeze(2) - bt.C) / e3, 1);
        g = torch::where(bt.liveY & torch::isfinite(gn), gn, torch::zeros_like(gn));
        auto fn = -e2 * torch::logsumexp(bt.lbd.unsqueeze(1) + (g.unsqueeze(1) - bt.C) / e3, 2);
        f = torch::where(bt.liveX & torch::isfinite(fn), fn, torch::zeros_like(fn));
    }
}

torch::Tensor referenceLogPlan(const Batch& bt, const torch::Tensor& f, const torch::Tensor& g)
{
    auto e3 = bt.epsd.view({ bt.B, 1, 1 });
    return bt.lad.unsqueeze(2) + bt.lbd.unsqueeze(1)
        + (f.to(torch::kFloat64).unsqueeze(2) + g.to(torch::kFloat64).unsqueeze(1) - bt.C) / e3;
}

/// max over live entries of |a - b| / scale (scale [B] broadcast over the rest).
double maxScaledDiff(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& live,
    const torch::Tensor& scale)
{
    auto diff = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs();
    auto s = scale.to(torch::kFloat64);
    while (s.dim() < diff.dim()) {
        s = s.unsqueeze(-1);
    }
    diff = diff / s;
    auto l = live;
    while (l.dim() < diff.dim()) {
        l = l.unsqueeze(-1);
    }
    return torch::where(l.expand_as(diff), diff, torch::zeros_like(diff)).max().item<double>();
}

bool allZeroWhereDead(const torch::Tensor& v, const torch::Tensor& live)
{
    auto l = live;
    while (l.dim() < v.dim()) {
        l = l.unsqueeze(-1);
    }
    auto dead = (~l).expand_as(v);
    return (v.masked_select(dead) == 0).all().item<bool>();
}

struct Potentials
{
    torch::Tensor f, g; // float32
};

Potentials runIterate(const Batch& bt, int iterations, int threads, Potentials start = {})
{
    Potentials p;
    p.f = start.f.defined() ? start.f.clone() : torch::zeros({ bt.B, bt.N });
    p.g = start.g.defined() ? start.g.clone() : torch::zeros({ bt.B, bt.M });
    fk::cpu::iterate(bt.problem(), p.f.data_ptr<float>(), p.g.data_ptr<float>(), iterations,
        threads);
    return p;
}

struct PassResult
{
    torch::Tensor mass, cost, weighted, argmax, sampled, colMass;
};

PassResult runPasses(const Batch& bt, const Potentials& pot, int threads, std::uint64_t seed = 7)
{
    PassResult r;
    r.mass = torch::full({ bt.B, bt.N }, -1.0, torch::kFloat64);
    r.cost = torch::full({ bt.B, bt.N }, -1.0, torch::kFloat64);
    r.weighted = torch::full({ bt.B, bt.N, bt.d }, -1.0f);
    r.argmax = torch::full({ bt.B, bt.N }, -7, torch::kInt64);
    r.sampled = torch::full({ bt.B, bt.N }, -7, torch::kInt64);
    r.colMass = torch::full({ bt.B, bt.M }, -1.0, torch::kFloat64);
    fk::RowOutputs out;
    out.mass = r.mass.data_ptr<double>();
    out.cost = r.cost.data_ptr<double>();
    out.weightedY = r.weighted.data_ptr<float>();
    out.argmax = r.argmax.data_ptr<int64_t>();
    out.sampled = r.sampled.data_ptr<int64_t>();
    out.seed = seed;
    fk::cpu::rowPass(bt.problem(), pot.f.data_ptr<float>(), pot.g.data_ptr<float>(), out, threads);
    fk::cpu::colMass(bt.problem(), pot.f.data_ptr<float>(), pot.g.data_ptr<float>(),
        r.colMass.data_ptr<double>(), threads);
    return r;
}

std::pair<torch::Tensor, torch::Tensor> runTopK(const Batch& bt, const Potentials& pot, int k,
    int threads)
{
    auto values = torch::zeros({ bt.B, bt.N, k });
    auto indices = torch::zeros({ bt.B, bt.N, k }, torch::kInt64);
    fk::cpu::topK(bt.problem(), pot.f.data_ptr<float>(), pot.g.data_ptr<float>(), k,
        values.data_ptr<float>(), indices.data_ptr<int64_t>(), threads);
    return { values, indices };
}

/// The uniform the kernels draw for (seed, b, i, j), re-derived from the documented formula.
double referenceUniform(std::uint64_t seed, int b, int i, int j)
{
    auto fmix = [](std::uint32_t h) {
        h ^= h >> 16;
        h *= 0x85ebca6bu;
        h ^= h >> 13;
        h *= 0xc2b2ae35u;
        return h ^ (h >> 16);
    };
    const std::uint64_t key = fd::sampleRowKey(seed, b, i);
    std::uint32_t h = std::uint32_t(j) * 0x9E3779B9u + std::uint32_t(key);
    h = fmix(fmix(h) ^ std::uint32_t(key >> 32));
    return (double(h >> 9) + 0.5) / 8388608.0;
}

long peakRssKb()
{
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

} // namespace

class TestFusedCpu : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void isaSelection();
    void iterateMatchesReference_data();
    void iterateMatchesReference();
    void passesMatchReference_data();
    void passesMatchReference();
    void topKMatchesSortedReference_data();
    void topKMatchesSortedReference();
    void badShiftGuessIsRecomputed();
    void degeneratePairs();
    void maxCostMatchesBruteForce();
    void sampledFrequencies();
    void sampledMatchesGumbelReference();
    void threadCountIndependent();
    void memoryLinear();
};

void TestFusedCpu::initTestCase()
{
    QStringList names;
    for (fd::Isa isa : supportedIsas()) {
        names << isaName(isa);
    }
    qInfo("paths checked on this CPU: %s (intra-op threads %d)", qPrintable(names.join(", ")),
        at::get_num_threads());
}

void TestFusedCpu::isaSelection()
{
    QVERIFY(fd::isaSupported(fd::Isa::Portable));
    const std::string automatic = fk::cpu::simdLevel();
    QCOMPARE(automatic, std::string(isaName(fd::activeIsa())));
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        QCOMPARE(std::string(fk::cpu::simdLevel()), std::string(isaName(isa)));
    }
    QCOMPARE(std::string(fk::cpu::simdLevel()), automatic);
    // The best supported path is the automatic one.
    QCOMPARE(std::string(isaName(supportedIsas().back())), automatic);
    if (!fd::isaSupported(fd::Isa::Avx512)) {
        bool thrown = false;
        try {
            fd::setIsaOverride(fd::Isa::Avx512);
        } catch (const wfm::ConfigError&) {
            thrown = true;
        }
        QVERIFY(thrown);
    }
}

void TestFusedCpu::iterateMatchesReference_data()
{
    QTest::addColumn<int>("B");
    QTest::addColumn<int>("N");
    QTest::addColumn<int>("M");
    QTest::addColumn<int>("d");
    QTest::addColumn<double>("epsRel");
    QTest::addColumn<int>("iterations");
    QTest::addColumn<bool>("interior");
    QTest::addColumn<double>("offset");
    int seed = 0;
    auto row = [&](int B, int N, int M, int d, double e, int it, bool interior, double offset) {
        QTest::addRow("B%d N%d M%d d%d eps%g it%d%s%s#%d", B, N, M, d, e, it,
            interior ? " scattered" : "", offset != 0 ? " offset" : "", seed++)
            << B << N << M << d << e << it << interior << offset;
    };
    for (int d : { 1, 2, 3, 5 }) {
        for (double e : { 0.1, 0.01, 0.002, 0.001 }) {
            row(1, 37, 53, d, e, 3, false, 0.0);
            row(3, 45, 29, d, e, 200, d % 2 == 1, 0.0);
        }
    }
    row(3, 41, 67, 3, 0.001, 200, true, 20.0);  // clouds far from the origin
    row(1, 33, 90, 2, 0.002, 200, false, -8.0);
    row(3, 150, 70, 3, 0.01, 20, true, 0.0);    // several row blocks per pair
    row(2, 20, 4500, 3, 0.002, 5, false, 0.0);  // several column chunks, g rows per pair > 64
    row(1, 60, 300, 7, 0.01, 30, false, 0.0);   // generic d in the hot loop
}

void TestFusedCpu::iterateMatchesReference()
{
    QFETCH(int, B);
    QFETCH(int, N);
    QFETCH(int, M);
    QFETCH(int, d);
    QFETCH(double, epsRel);
    QFETCH(int, iterations);
    QFETCH(bool, interior);
    QFETCH(double, offset);
    const Batch bt = makeBatch(B, N, M, d, epsRel, 1000 + std::uint64_t(N * 7 + M + d), interior,
        offset);
    torch::Tensor fr = torch::zeros({ B, N }, torch::kFloat64);
    torch::Tensor gr = torch::zeros({ B, M }, torch::kFloat64);
    referenceIterate(bt, fr, gr, iterations);
    const double cmax = maxCost(bt);
    const double tolCost = iterations > 5 ? kPotTolCostMany : kPotTolCostFew;
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        const Potentials p = runIterate(bt, iterations, 2);
        QVERIFY2(torch::isfinite(p.f).all().item<bool>() && torch::isfinite(p.g).all().item<bool>(),
            isaName(isa));
        const auto bound = bt.epsd * kPotTolEps + tolCost * cmax;
        const double ratio = std::max(maxScaledDiff(p.f, fr, bt.liveX, bound),
            maxScaledDiff(p.g, gr, bt.liveY, bound));
        const auto ones = torch::ones({ B }, torch::kFloat64);
        const double errCost = std::max(maxScaledDiff(p.f, fr, bt.liveX, ones),
                                   maxScaledDiff(p.g, gr, bt.liveY, ones))
            / cmax;
        qInfo("%-8s max |potential - reference| = %.3g max C (%.2f of the bound)", isaName(isa),
            errCost, ratio);
        QVERIFY2(ratio <= 1.0,
            qPrintable(QStringLiteral("%1: potential error %2 x tolerance").arg(isaName(isa)).arg(
                ratio)));
        QVERIFY2(allZeroWhereDead(p.f, bt.liveX) && allZeroWhereDead(p.g, bt.liveY),
            "padded entries must have potential 0");
    }
}

void TestFusedCpu::passesMatchReference_data()
{
    QTest::addColumn<int>("B");
    QTest::addColumn<int>("N");
    QTest::addColumn<int>("M");
    QTest::addColumn<int>("d");
    QTest::addColumn<double>("epsRel");
    QTest::addColumn<int>("iterations");
    QTest::addRow("d1 eps0.1") << 3 << 31 << 47 << 1 << 0.1 << 30;
    QTest::addRow("d2 eps0.01") << 3 << 52 << 38 << 2 << 0.01 << 50;
    QTest::addRow("d3 eps0.002") << 3 << 44 << 61 << 3 << 0.002 << 100;
    QTest::addRow("d5 eps0.001") << 1 << 39 << 35 << 5 << 0.001 << 100;
    QTest::addRow("d3 unconverged") << 3 << 40 << 50 << 3 << 0.002 << 1;
    QTest::addRow("d3 chunks") << 2 << 130 << 4500 << 3 << 0.01 << 5;
}

/// rowPass (mass, cost, weightedY, argmax), colMass against the float64 plan built from the same
/// (float) potentials.
void TestFusedCpu::passesMatchReference()
{
    QFETCH(int, B);
    QFETCH(int, N);
    QFETCH(int, M);
    QFETCH(int, d);
    QFETCH(double, epsRel);
    QFETCH(int, iterations);
    const Batch bt = makeBatch(B, N, M, d, epsRel, 77 + std::uint64_t(N + M), true);
    torch::Tensor fr = torch::zeros({ B, N }, torch::kFloat64);
    torch::Tensor gr = torch::zeros({ B, M }, torch::kFloat64);
    referenceIterate(bt, fr, gr, iterations);
    const Potentials pot { fr.to(torch::kFloat32).contiguous(), gr.to(torch::kFloat32).contiguous() };
    const auto logP = referenceLogPlan(bt, pot.f, pot.g);
    const auto P = torch::exp(logP);
    const auto mass = P.sum(2);
    const auto cost = (P * bt.C).sum(2);
    const auto weighted = torch::matmul(P, bt.yd);
    const auto colMass = P.sum(1);
    const auto a = torch::exp(bt.lad);
    // Scale of the coordinates for weightedY: mass * max |y|.
    const double yScale = bt.yd.abs().max().item<double>();
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        const PassResult r = runPasses(bt, pot, 2);
        const char* name = isaName(isa);
        auto relErr = [](const torch::Tensor& ours, const torch::Tensor& ref,
                          const torch::Tensor& live) {
            auto e = (ours.to(torch::kFloat64) - ref).abs() / (ref.abs() + 1e-300);
            return torch::where(live, e, torch::zeros_like(e)).max().item<double>();
        };
        const double relMass = relErr(r.mass, mass, bt.liveX);
        const double relCost = relErr(r.cost, cost, bt.liveX);
        const double relCol = relErr(r.colMass, colMass, bt.liveY);
        auto wErr = (r.weighted.to(torch::kFloat64) - weighted).abs()
            / (mass.unsqueeze(2) * yScale + 1e-300);
        const double relW
            = torch::where(bt.liveX.unsqueeze(2).expand_as(wErr), wErr, torch::zeros_like(wErr))
                  .max()
                  .item<double>();
        qInfo("%-8s relative errors: mass %.2g, cost %.2g, weightedY %.2g, colMass %.2g", name,
            relMass, relCost, relW, relCol);
        const double tol = kPlanRelTolPerExponent / epsRel + kPlanRelTolFloor;
        QVERIFY2(relMass <= tol && relCost <= tol && relW <= tol && relCol <= tol,
            qPrintable(QStringLiteral("%1: tolerance %2").arg(name).arg(tol)));
        // The reference ended with an f update: the row masses are the weights a_i (up to the
        // float32 rounding of f).
        auto marg = torch::where(bt.liveX, (r.mass - a).abs() / a, torch::zeros_like(a));
        QVERIFY(marg.max().item<double>() < 1e-3);
        // argmax: the reference's largest log P_ij at our index (exact up to float64 ties).
        auto lp = torch::where(torch::isfinite(logP), logP, torch::full_like(logP, -1e300));
        auto refMax = std::get<0>(lp.max(2));
        auto ours = lp.gather(2, r.argmax.clamp_min(0).unsqueeze(2)).squeeze(2);
        auto argErr = torch::where(bt.liveX, (refMax - ours).abs(), torch::zeros_like(refMax));
        QVERIFY2(argErr.max().item<double>()
                <= kTopKValueTol * (1 + refMax.abs().max().item<double>()),
            name);
        QVERIFY(torch::equal(r.argmax.masked_select(bt.liveX),
            std::get<1>(lp.max(2)).masked_select(bt.liveX)));
        // Live rows pick live columns; padded rows/columns take part in nothing.
        auto pickedLive = bt.liveY.gather(1, r.sampled.clamp_min(0));
        QVERIFY((pickedLive | ~bt.liveX).all().item<bool>());
        QVERIFY((r.sampled.masked_select(bt.liveX) >= 0).all().item<bool>());
        QVERIFY((r.argmax.masked_select(~bt.liveX) == -1).all().item<bool>());
        QVERIFY((r.sampled.masked_select(~bt.liveX) == -1).all().item<bool>());
        QVERIFY(allZeroWhereDead(r.mass, bt.liveX) && allZeroWhereDead(r.cost, bt.liveX)
            && allZeroWhereDead(r.weighted, bt.liveX) && allZeroWhereDead(r.colMass, bt.liveY));
        // Every live column receives mass.
        QVERIFY((r.colMass.masked_select(bt.liveY) > 0).all().item<bool>());
    }
}

void TestFusedCpu::topKMatchesSortedReference_data()
{
    QTest::addColumn<int>("d");
    QTest::addColumn<double>("epsRel");
    QTest::addColumn<int>("k");
    QTest::addColumn<int>("M");
    QTest::addRow("d2 k1") << 2 << 0.01 << 1 << 40;
    QTest::addRow("d3 k5") << 3 << 0.002 << 5 << 57;
    QTest::addRow("d5 k32") << 5 << 0.001 << 32 << 70;
    QTest::addRow("d3 k32 > live columns") << 3 << 0.1 << 32 << 20;
    QTest::addRow("d3 k8 chunks") << 3 << 0.002 << 8 << 4500;
}

void TestFusedCpu::topKMatchesSortedReference()
{
    QFETCH(int, d);
    QFETCH(double, epsRel);
    QFETCH(int, k);
    QFETCH(int, M);
    const int B = 3;
    const int N = 36;
    const Batch bt = makeBatch(B, N, M, d, epsRel, 4242 + std::uint64_t(k * M), true);
    torch::Tensor fr = torch::zeros({ B, N }, torch::kFloat64);
    torch::Tensor gr = torch::zeros({ B, M }, torch::kFloat64);
    referenceIterate(bt, fr, gr, 40);
    const Potentials pot { fr.to(torch::kFloat32).contiguous(), gr.to(torch::kFloat32).contiguous() };
    const auto logP = referenceLogPlan(bt, pot.f, pot.g);
    // Reference: stable sort of -logP (descending values, ties by smaller j).
    const auto sorted = torch::sort(-logP.nan_to_num(), /*stable=*/true, 2, false);
    auto refVal = -std::get<0>(sorted);
    auto refIdx = std::get<1>(sorted);
    auto acc = [](const torch::Tensor& t) { return t.accessor<double, 3>(); };
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        auto [values, indices] = runTopK(bt, pot, k, 2);
        auto v = values.accessor<float, 3>();
        auto ix = indices.accessor<int64_t, 3>();
        auto rv = acc(refVal);
        auto ri = refIdx.accessor<int64_t, 3>();
        auto liveX = bt.liveX.accessor<bool, 2>();
        auto liveYCount = bt.liveY.sum(1);
        for (int b = 0; b < B; ++b) {
            const int liveM = int(liveYCount[b].item<int64_t>());
            for (int i = 0; i < N; ++i) {
                for (int q = 0; q < k; ++q) {
                    if (!liveX[b][i] || q >= liveM) {
                        QVERIFY2(std::isinf(v[b][i][q]) && v[b][i][q] < 0 && ix[b][i][q] == -1,
                            "rows and slots without a live column pad with -inf / -1");
                        continue;
                    }
                    const double ref = rv[b][i][q];
                    QVERIFY2(std::abs(double(v[b][i][q]) - ref)
                            <= std::abs(ref) * 1e-6 + kTopKValueTol,
                        qPrintable(QStringLiteral("%1 b%2 i%3 q%4: %5 vs %6")
                                       .arg(isaName(isa)).arg(b).arg(i).arg(q)
                                       .arg(double(v[b][i][q])).arg(ref)));
                    QVERIFY2(ix[b][i][q] == ri[b][i][q],
                        qPrintable(QStringLiteral("%1 b%2 i%3 q%4: index %5 vs %6")
                                       .arg(isaName(isa)).arg(b).arg(i).arg(q)
                                       .arg(ix[b][i][q]).arg(ri[b][i][q])));
                }
            }
        }
    }
}

/// Warm starts far from the balance of each row (potentials shifted by thousands of eps) make
/// the single-pass shift useless; the kernels must notice and recompute those rows exactly.
void TestFusedCpu::badShiftGuessIsRecomputed()
{
    const Batch bt = makeBatch(2, 40, 50, 3, 0.002, 99, false);
    torch::Tensor fr = torch::zeros({ 2, 40 }, torch::kFloat64);
    torch::Tensor gr = torch::zeros({ 2, 50 }, torch::kFloat64);
    referenceIterate(bt, fr, gr, 30);
    Potentials start { fr.to(torch::kFloat32).contiguous(), gr.to(torch::kFloat32).contiguous() };
    // The plan is invariant to f + c, g - c; the g update does not read g, f is rebuilt from g.
    const auto shift = bt.eps.view({ 2, 1 }) * 3000.0f;
    start.f = (start.f + shift * bt.liveX.to(torch::kFloat32)).contiguous();
    start.g = (start.g - shift * 2 * bt.liveY.to(torch::kFloat32)).contiguous();
    torch::Tensor f2 = start.f.to(torch::kFloat64);
    torch::Tensor g2 = start.g.to(torch::kFloat64);
    referenceIterate(bt, f2, g2, 2);
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        const Potentials p = runIterate(bt, 2, 2, start);
        const double err = std::max(maxScaledDiff(p.f, f2, bt.liveX, bt.epsd),
            maxScaledDiff(p.g, g2, bt.liveY, bt.epsd));
        qInfo("%-8s shifted start: max |potential - reference| = %.3g eps", isaName(isa), err);
        QVERIFY2(err <= kPotTolShiftedEps,
            qPrintable(QStringLiteral("%1: %2 eps").arg(isaName(isa)).arg(err)));
        // Potentials whose plan has mass ~ a_i e^-200 (far below float32): the exact-shift path
        // reports it in double.
        Potentials unbalanced { start.f,
            (start.g + (shift - bt.eps.view({ 2, 1 }) * 200.0f) * bt.liveY.to(torch::kFloat32))
                .contiguous() };
        const PassResult r = runPasses(bt, unbalanced, 1);
        const auto logP = referenceLogPlan(bt, unbalanced.f, unbalanced.g);
        const auto refLogMass = torch::logsumexp(logP, 2);
        auto err2 = torch::where(bt.liveX, (torch::log(r.mass) - refLogMass).abs(),
            torch::zeros_like(refLogMass));
        QVERIFY2(err2.max().item<double>() < kLogMassTolShifted,
            qPrintable(QStringLiteral("%1: log mass err %2").arg(isaName(isa)).arg(
                err2.max().item<double>())));
    }
}

/// A pair with no live rows, one with no live columns, one ordinary; B = 1 with one live point.
void TestFusedCpu::degeneratePairs()
{
    const Batch bt = makeBatch(3, 12, 9, 2, 0.01, 5, true, 0.0, { 0, 12, 7 }, { 9, 0, 4 });
    const Potentials start { torch::full({ 3, 12 }, 3.0f), torch::full({ 3, 9 }, -2.0f) };
    torch::Tensor fr = start.f.to(torch::kFloat64);
    torch::Tensor gr = start.g.to(torch::kFloat64);
    referenceIterate(bt, fr, gr, 20);
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        const Potentials p = runIterate(bt, 20, 2, start);
        QVERIFY((p.f[0] == 0).all().item<bool>() && (p.f[1] == 0).all().item<bool>());
        QVERIFY((p.g[0] == 0).all().item<bool>() && (p.g[1] == 0).all().item<bool>());
        const auto bound = bt.epsd * kPotTolEps + kPotTolCostMany * maxCost(bt);
        QVERIFY(maxScaledDiff(p.f, fr, bt.liveX, bound) <= 1.0);
        QVERIFY(maxScaledDiff(p.g, gr, bt.liveY, bound) <= 1.0);
        const PassResult r = runPasses(bt, p, 2);
        QVERIFY((r.mass[1] == 0).all().item<bool>() && (r.argmax[1] == -1).all().item<bool>()
            && (r.sampled[1] == -1).all().item<bool>());
        QVERIFY((r.colMass[0] == 0).all().item<bool>());
        QVERIFY((r.mass[2].masked_select(bt.liveX[2]) > 0).all().item<bool>());
        auto [values, indices] = runTopK(bt, p, 3, 2);
        QVERIFY((indices[0] == -1).all().item<bool>() && (indices[1] == -1).all().item<bool>());
        QVERIFY((indices[2].masked_select(bt.liveX[2].unsqueeze(1).expand({ 12, 3 })) >= 0)
                    .all()
                    .item<bool>());
    }
    // One point against one point: f + g = C exactly at the fixed point (log weights 0).
    const Batch one = makeBatch(1, 1, 1, 3, 0.05, 11, false);
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        const Potentials p = runIterate(one, 3, 1);
        const double c = one.C.item<double>();
        QVERIFY(std::abs(double(p.f.item<float>() + p.g.item<float>()) - c) <= 1e-5 * (1 + c));
        // Each g update from f = 0 gives g = C.
        QVERIFY(std::abs(double(p.g.item<float>()) - c) <= 1e-5 * (1 + c));
    }
}

/// The largest live cost of each pair (the scale of a relative eps) against the float64
/// materialised cost: scattered padding, a pair without live columns, one without live rows,
/// clouds far from the origin, dimensions 1 to 5, thread counts 1 and 3.
void TestFusedCpu::maxCostMatchesBruteForce()
{
    struct Case
    {
        int B, N, M, d;
        double offset;
        std::vector<int> liveN, liveM;
    };
    const std::vector<Case> cases = {
        { 3, 130, 70, 3, 0.0, {}, {} },
        { 4, 65, 200, 2, 250.0, { 65, 0, 30, 1 }, { 0, 200, 17, 1 } },
        { 2, 33, 41, 5, 0.0, {}, {} },
        { 2, 300, 1, 1, 0.0, {}, {} },
    };
    std::uint64_t seed = 40;
    for (const Case& c : cases) {
        const Batch bt = makeBatch(c.B, c.N, c.M, c.d, 0.01, seed++, true, c.offset, c.liveN, c.liveM);
        auto both = bt.liveX.unsqueeze(2) & bt.liveY.unsqueeze(1);
        const auto ref = torch::where(both, bt.C, torch::zeros_like(bt.C)).amax({ 1, 2 });
        for (int threads : { 1, 3 }) {
            auto out = torch::full({ c.B }, -1.0f);
            fk::cpu::maxCost(bt.problem(), out.data_ptr<float>(), threads);
            const auto err = ((out.to(torch::kFloat64) - ref).abs() / ref.clamp_min(1e-300)).max().item<double>();
            QVERIFY2(err <= 2e-6, qPrintable(QString("d=%1 threads=%2: relative error %3").arg(c.d).arg(threads).arg(err)));
            for (int b = 0; b < c.B; ++b) {
                if (ref[b].item<double>() == 0.0) {
                    QCOMPARE(out[b].item<float>(), 0.0f);
                }
            }
        }
    }
}

/// Empirical frequencies of the Gumbel-max draws over many seeds match P_ij / sum_j P_ij.
void TestFusedCpu::sampledFrequencies()
{
    const Batch bt = makeBatch(2, 3, 6, 2, 0.3, 21, false, 0.0, { 3, 2 }, { 6, 5 });
    torch::Tensor fr = torch::zeros({ 2, 3 }, torch::kFloat64);
    torch::Tensor gr = torch::zeros({ 2, 6 }, torch::kFloat64);
    referenceIterate(bt, fr, gr, 50);
    const Potentials pot { fr.to(torch::kFloat32).contiguous(), gr.to(torch::kFloat32).contiguous() };
    const auto P = torch::exp(referenceLogPlan(bt, pot.f, pot.g));
    const auto cond = P / P.sum(2, true).clamp_min(1e-300);
    constexpr int kSeeds = 12000;
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        auto counts = torch::zeros({ 2, 3, 6 }, torch::kFloat64);
        auto c = counts.accessor<double, 3>();
        auto out = torch::zeros({ 2, 3 }, torch::kInt64);
        fk::RowOutputs ro;
        ro.sampled = out.data_ptr<int64_t>();
        for (int s = 0; s < kSeeds; ++s) {
            ro.seed = std::uint64_t(s) * 0x1234567ULL + 3;
            fk::cpu::rowPass(bt.problem(), pot.f.data_ptr<float>(), pot.g.data_ptr<float>(), ro, 1);
            auto o = out.accessor<int64_t, 2>();
            for (int b = 0; b < 2; ++b) {
                for (int i = 0; i < 3; ++i) {
                    if (o[b][i] >= 0) {
                        c[b][i][o[b][i]] += 1.0;
                    }
                }
            }
        }
        auto freq = counts / double(kSeeds);
        auto sigma = torch::sqrt(cond * (1 - cond) / double(kSeeds)) + 0.5 / kSeeds;
        auto z = ((freq - cond).abs() / sigma);
        z = torch::where(bt.liveX.unsqueeze(2).expand_as(z), z, torch::zeros_like(z));
        QVERIFY2(z.max().item<double>() <= kSamplingSigmas,
            qPrintable(QStringLiteral("%1: z = %2").arg(isaName(isa)).arg(z.max().item<double>())));
        // Padded rows draw nothing, padded columns are never drawn.
        QCOMPARE(counts[1][2].sum().item<double>(), 0.0);
        QCOMPARE(counts.select(2, 5)[1].sum().item<double>(), 0.0);
        QVERIFY(cond.min().item<double>() >= 0.0);
    }
}

/// The draw is the argmax of log P_ij + G_ij with G_ij = -log(-log U(seed, b, i, j)); a float64
/// evaluation of the same keys picks the same columns except at float32 near-ties.
void TestFusedCpu::sampledMatchesGumbelReference()
{
    const Batch bt = makeBatch(3, 60, 80, 3, 0.05, 31, true);
    torch::Tensor fr = torch::zeros({ 3, 60 }, torch::kFloat64);
    torch::Tensor gr = torch::zeros({ 3, 80 }, torch::kFloat64);
    referenceIterate(bt, fr, gr, 30);
    const Potentials pot { fr.to(torch::kFloat32).contiguous(), gr.to(torch::kFloat32).contiguous() };
    const auto logP = referenceLogPlan(bt, pot.f, pot.g);
    const std::uint64_t seed = 0xfeedULL;
    auto lp = logP.accessor<double, 3>();
    auto liveX = bt.liveX.accessor<bool, 2>();
    auto liveY = bt.liveY.accessor<bool, 2>();
    std::vector<int64_t> ref(3 * 60, -1);
    for (int b = 0; b < 3; ++b) {
        for (int i = 0; i < 60; ++i) {
            if (!liveX[b][i]) {
                continue;
            }
            double best = -std::numeric_limits<double>::infinity();
            for (int j = 0; j < 80; ++j) {
                if (!liveY[b][j]) {
                    continue;
                }
                const double key = lp[b][i][j] - std::log(-std::log(referenceUniform(seed, b, i, j)));
                if (key > best) {
                    best = key;
                    ref[std::size_t(b * 60 + i)] = j;
                }
            }
        }
    }
    std::vector<torch::Tensor> perIsa;
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        const PassResult r = runPasses(bt, pot, 2, seed);
        int agree = 0;
        int live = 0;
        auto s = r.sampled.accessor<int64_t, 2>();
        for (int b = 0; b < 3; ++b) {
            for (int i = 0; i < 60; ++i) {
                if (liveX[b][i]) {
                    ++live;
                    agree += s[b][i] == ref[std::size_t(b * 60 + i)];
                } else {
                    QCOMPARE(s[b][i], int64_t(-1));
                }
            }
        }
        QVERIFY2(agree >= live - 1, qPrintable(QStringLiteral("%1: %2 of %3 rows agree")
                                                  .arg(isaName(isa)).arg(agree).arg(live)));
        // Deterministic: the same seed gives the same draws, another seed other draws.
        QVERIFY(torch::equal(runPasses(bt, pot, 1, seed).sampled, r.sampled));
        QVERIFY(!torch::equal(runPasses(bt, pot, 2, seed + 1).sampled, r.sampled));
        perIsa.push_back(r.sampled);
    }
}

void TestFusedCpu::threadCountIndependent()
{
    if (at::get_num_threads() < 2) {
        at::set_num_threads(2);
    }
    const Batch bt = makeBatch(3, 150, 130, 3, 0.002, 8, true);
    for (fd::Isa isa : supportedIsas()) {
        IsaGuard guard(isa);
        const Potentials p1 = runIterate(bt, 15, 1);
        const Potentials p2 = runIterate(bt, 15, 2);
        QVERIFY2(torch::equal(p1.f, p2.f) && torch::equal(p1.g, p2.g), isaName(isa));
        const PassResult r1 = runPasses(bt, p1, 1);
        const PassResult r2 = runPasses(bt, p1, 2);
        QVERIFY(torch::equal(r1.mass, r2.mass) && torch::equal(r1.cost, r2.cost)
            && torch::equal(r1.weighted, r2.weighted) && torch::equal(r1.argmax, r2.argmax)
            && torch::equal(r1.sampled, r2.sampled) && torch::equal(r1.colMass, r2.colMass));
        auto t1 = runTopK(bt, p1, 6, 1);
        auto t2 = runTopK(bt, p1, 6, 2);
        QVERIFY(torch::equal(t1.first, t2.first) && torch::equal(t1.second, t2.second));
    }
}

/// One pair with N = M = 20000 in 3-D: an N x M float array would be 1.6 GB; the kernels need
/// O(N + M) extra memory.
void TestFusedCpu::memoryLinear()
{
    const int n = 20000;
    torch::manual_seed(3);
    auto x = torch::rand({ 1, n, 3 });
    auto y = torch::rand({ 1, n, 3 });
    auto lw = torch::full({ 1, n }, -std::log(float(n)));
    auto eps = torch::full({ 1 }, 0.01f);
    auto f = torch::zeros({ 1, n });
    auto g = torch::zeros({ 1, n });
    auto mass = torch::zeros({ 1, n }, torch::kFloat64);
    fk::Problem p;
    p.x = x.data_ptr<float>();
    p.y = y.data_ptr<float>();
    p.loga = lw.data_ptr<float>();
    p.logb = lw.data_ptr<float>();
    p.eps = eps.data_ptr<float>();
    p.B = 1;
    p.N = n;
    p.M = n;
    p.d = 3;
    malloc_trim(0); // return memory freed by earlier tests, which would hide the growth
    {
        std::ofstream reset("/proc/self/clear_refs");
        reset << "5"; // resets VmHWM to the current RSS
    }
    const long before = peakRssKb();
    fk::cpu::iterate(p, f.data_ptr<float>(), g.data_ptr<float>(), 1, 2);
    fk::RowOutputs out;
    out.mass = mass.data_ptr<double>();
    fk::cpu::rowPass(p, f.data_ptr<float>(), g.data_ptr<float>(), out, 2);
    const long after = peakRssKb();
    qInfo("peak RSS growth for N = M = %d: %ld kB", n, after - before);
    QVERIFY(before > 0);
    QVERIFY2(after - before < 30 * 1024, "more than 30 MB extra memory");
    auto relMass = ((mass - lw.exp().to(torch::kFloat64)).abs() / lw.exp().to(torch::kFloat64));
    QVERIFY(relMass.max().item<double>() < 1e-4); // f was just updated: row marginals exact
}

QTEST_GUILESS_MAIN(TestFusedCpu)
#include "tst_fusedcpu.moc"
