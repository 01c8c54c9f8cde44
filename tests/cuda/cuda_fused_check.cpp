// CUDA check of the fused Sinkhorn kernels (wfm::ot::kernels::cuda, contract in
// core/src/ot/FusedKernels.h) against an independent float64 reference built from materialised
// torch CUDA tensors: C = |x_i - y_j|^2 [B,N,M], torch::logsumexp iterations, plan sums, argmax,
// Gumbel-max with the contract's counter-based noise, top-k. Random problems with padding (at
// the end and scattered), variable live sizes, empty pairs, far-apart clouds, clouds far from
// the origin, points sorted along an axis, warm starts; d in {1,2,3,5}, relative eps 0.01 / 0.002 /
// 0.001, 10 and 200 iterations. Prints one line per check and ends with "N passed, M failed"; exit
// code 0 only when nothing failed. Built only where LibTorch has CUDA; uses only torch API present
// in both LibTorch 1.13 and 2.x. With -DWFM_CUDA_CHECK_ON_CPU it runs on the CPU instead, with
// smaller problems, against the emulated kernels of bench/gpu/emu/EmulatedCudaEntryPoints.cpp (a
// check of this program on machines without a GPU).

#include "../../core/src/ot/FusedKernels.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace {

namespace kern = wfm::ot::kernels;

#if defined(WFM_CUDA_CHECK_ON_CPU)
constexpr auto kDevice = torch::kCPU;
void synchronize() { }
#else
constexpr auto kDevice = torch::kCUDA;
void synchronize()
{
    torch::cuda::synchronize();
}
#endif

constexpr double kInf = std::numeric_limits<double>::infinity();
/// |pot - ref| / max C after 10 and after 200 iterations (float32 kernels against float64;
/// float32 rounding of the potentials alone is ~6e-8 max C per half-iteration).
constexpr double kPotentialTol10 = 2e-5;
constexpr double kPotentialTol200 = 1e-4;
/// Relative error of plan sums computed from given potentials (float64 sums of float32 exps).
constexpr double kSumTol = 5e-6;
/// Relative error of a top-k value (float32 output of a float64 value).
constexpr double kValueTol = 1e-6;
/// Slack when checking that a chosen column attains a float64 maximum.
constexpr double kArgTol = 1e-9;

int gPassed = 0;
int gFailed = 0;

void report(bool ok, const std::string& what, const std::string& detail)
{
    (ok ? gPassed : gFailed) += 1;
    std::printf("%s %s: %s\n", ok ? "PASS" : "FAIL", what.c_str(), detail.c_str());
    std::fflush(stdout);
}

std::string fmt(const char* f, double a, double b = 0, double c = 0)
{
    char buf[256];
    std::snprintf(buf, sizeof buf, f, a, b, c);
    return buf;
}

struct Case
{
    std::string name;
    int B, N, M, d;
    double relEps;
    int iterations;
    bool scattered = false; ///< padding anywhere, not only at the end
    double separation = 0.0; ///< y moved along the first axis
    double offset = 0.0; ///< both clouds moved far from the origin
    bool warmStart = false; ///< start from random potentials
    bool emptyPairs = false; ///< pair 0: no live y; pair 1: no live x; pair 2: one live x
    bool sorted = false; ///< points sorted by their first coordinate (monotone log P along j)
};

/// A problem in float64 on the GPU (reference) and its float32 raw view (kernels).
struct Data
{
    int B, N, M, d;
    torch::Tensor x, y, loga, logb, maskX, maskY, C, eps, maxC; // float64
    torch::Tensor xf, yf, logaf, logbf, epsf; // float32, contiguous
    kern::Problem problem;
};

torch::Tensor liveMask(int B, int n, bool scattered, int forceB, int forceLive, bool force2,
    int force2B, int force2Live)
{
    auto mask = torch::zeros({ B, n }, torch::kBool);
    for (int b = 0; b < B; ++b) {
        int live = n - int(torch::randint(0, std::max(1, int(0.4 * n)), { 1 }).item<int64_t>());
        if (b == B - 1) {
            live = n; // one pair without padding
        }
        if (b == forceB) {
            live = forceLive;
        }
        if (force2 && b == force2B) {
            live = force2Live;
        }
        auto idx = scattered ? torch::randperm(n, torch::kLong) : torch::arange(n, torch::kLong);
        auto row = torch::zeros({ n }, torch::kBool);
        if (live > 0) {
            row.index_fill_(0, idx.slice(0, 0, live), true);
        }
        mask[b].copy_(row);
    }
    return mask;
}

Data makeData(const Case& c)
{
    const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
    Data s;
    s.B = c.B;
    s.N = c.N;
    s.M = c.M;
    s.d = c.d;
    auto x = torch::randn({ c.B, c.N, c.d }, f64) + c.offset;
    auto y = 0.7 * torch::randn({ c.B, c.M, c.d }, f64) + 0.4 * torch::rand({ c.B, c.M, c.d }, f64)
        + c.offset;
    if (c.separation != 0.0) {
        y.select(2, 0).add_(c.separation);
    }
    if (c.sorted) {
        auto ox = std::get<1>(x.select(2, 0).sort(1));
        auto oy = std::get<1>(y.select(2, 0).sort(1));
        x = x.gather(1, ox.unsqueeze(2).expand({ c.B, c.N, c.d }));
        y = y.gather(1, oy.unsqueeze(2).expand({ c.B, c.M, c.d }));
    }
    // Round the coordinates to float32 first: both sides see the same points.
    x = x.to(torch::kFloat).to(torch::kDouble);
    y = y.to(torch::kFloat).to(torch::kDouble);
    auto maskX = liveMask(c.B, c.N, c.scattered, c.emptyPairs ? 1 : -1, 0, c.emptyPairs, 2, 1);
    auto maskY = liveMask(c.B, c.M, c.scattered, c.emptyPairs ? 0 : -1, 0, false, -1, 0);
    auto logw = [&](const torch::Tensor& mask, int n) {
        auto w = (torch::rand({ c.B, n }, f64) + 0.2) * mask.to(torch::kDouble);
        auto total = w.sum(1, true).clamp_min(1e-300);
        auto lw = torch::log(w / total);
        return torch::where(mask, lw, torch::full_like(lw, -kInf))
            .to(torch::kFloat)
            .to(torch::kDouble);
    };
    auto loga = logw(maskX, c.N);
    auto logb = logw(maskY, c.M);
    const auto dev = torch::Device(kDevice);
    s.x = x.to(dev);
    s.y = y.to(dev);
    s.loga = loga.to(dev);
    s.logb = logb.to(dev);
    s.maskX = maskX.to(dev);
    s.maskY = maskY.to(dev);
    s.C = (s.x.unsqueeze(2) - s.y.unsqueeze(1)).pow(2).sum(3); // [B,N,M]
    auto pairMask = s.maskX.unsqueeze(2).logical_and(s.maskY.unsqueeze(1));
    s.maxC = torch::where(pairMask, s.C, torch::zeros_like(s.C)).amax({ 1, 2 });
    s.maxC = torch::where(s.maxC > 0, s.maxC, torch::ones_like(s.maxC));
    s.eps = (c.relEps * s.maxC).to(torch::kFloat).to(torch::kDouble); // what the kernels see
    s.xf = s.x.to(torch::kFloat).contiguous();
    s.yf = s.y.to(torch::kFloat).contiguous();
    s.logaf = s.loga.to(torch::kFloat).contiguous();
    s.logbf = s.logb.to(torch::kFloat).contiguous();
    s.epsf = s.eps.to(torch::kFloat).contiguous();
    auto& p = s.problem;
    p.x = s.xf.data_ptr<float>();
    p.y = s.yf.data_ptr<float>();
    p.loga = s.logaf.data_ptr<float>();
    p.logb = s.logbf.data_ptr<float>();
    p.eps = s.epsf.data_ptr<float>();
    p.B = c.B;
    p.N = c.N;
    p.M = c.M;
    p.d = c.d;
    return s;
}

/// The float64 reference iterations (g update, then f update; padded / empty rows get 0).
void referenceIterate(const Data& s, torch::Tensor& f, torch::Tensor& g, int iterations)
{
    auto e = s.eps.view({ -1, 1, 1 });
    for (int it = 0; it < iterations; ++it) {
        g = -s.eps.view({ -1, 1 })
            * torch::logsumexp(s.loga.unsqueeze(2) + (f.unsqueeze(2) - s.C) / e, { 1 });
        g = torch::where(s.maskY.logical_and(torch::isfinite(g)), g, torch::zeros_like(g));
        f = -s.eps.view({ -1, 1 })
            * torch::logsumexp(s.logb.unsqueeze(1) + (g.unsqueeze(1) - s.C) / e, { 2 });
        f = torch::where(s.maskX.logical_and(torch::isfinite(f)), f, torch::zeros_like(f));
    }
}

torch::Tensor logPlan(const Data& s, const torch::Tensor& f, const torch::Tensor& g)
{
    auto f64 = f.to(torch::kDouble);
    auto g64 = g.to(torch::kDouble);
    return s.loga.unsqueeze(2) + s.logb.unsqueeze(1)
        + (f64.unsqueeze(2) + g64.unsqueeze(1) - s.C) / s.eps.view({ -1, 1, 1 });
}

/// The contract's sampling noise, written out from its specification.
double gumbel(std::uint64_t seed, std::int64_t b, std::int64_t i, std::int64_t j)
{
    std::uint64_t z = seed ^ (std::uint64_t(b) * 0x9E3779B97F4A7C15ull)
        ^ (std::uint64_t(i) * 0xC2B2AE3D27D4EB4Full) ^ (std::uint64_t(j) * 0x165667B19E3779F9ull);
    z += 0x9E3779B97F4A7C15ull; // splitmix64: advance by the golden increment, then mix
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = (double(z >> 40) + 0.5) / 16777216.0;
    return -std::log(-std::log(u));
}

/// max over live entries of |a - ref| / maxC of the pair, and whether padded entries are 0.
std::pair<double, bool> potentialError(
    const Data& s, const torch::Tensor& pot, const torch::Tensor& ref, const torch::Tensor& mask)
{
    auto p64 = pot.to(torch::kDouble);
    auto err = (p64 - ref).abs() / s.maxC.view({ -1, 1 });
    err = torch::where(mask, err, torch::zeros_like(err));
    const bool finite = torch::isfinite(p64).all().item<bool>();
    const bool padZero
        = torch::where(mask, torch::zeros_like(p64), p64).abs().max().item<double>() == 0.0;
    return { finite ? err.max().item<double>() : kInf, padZero };
}

void checkIterate(const Case& c, const Data& s, torch::Tensor& fOut, torch::Tensor& gOut)
{
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(kDevice);
    torch::Tensor f0 = torch::zeros({ c.B, c.N }, f32);
    torch::Tensor g0 = torch::zeros({ c.B, c.M }, f32);
    if (c.warmStart) {
        f0 = (0.3 * s.maxC.view({ -1, 1 }) * torch::rand({ c.B, c.N }, f32.dtype(torch::kDouble)))
                 .to(torch::kFloat);
        g0 = (-0.2 * s.maxC.view({ -1, 1 }) * torch::rand({ c.B, c.M }, f32.dtype(torch::kDouble)))
                 .to(torch::kFloat);
        f0 = torch::where(s.maskX, f0, torch::zeros_like(f0)).contiguous();
        g0 = torch::where(s.maskY, g0, torch::zeros_like(g0)).contiguous();
    }
    torch::Tensor fRef = f0.to(torch::kDouble);
    torch::Tensor gRef = g0.to(torch::kDouble);
    referenceIterate(s, fRef, gRef, c.iterations);

    torch::Tensor f = f0.clone();
    torch::Tensor g = g0.clone();
    const auto t0 = std::chrono::steady_clock::now();
    kern::cuda::iterate(s.problem, f.data_ptr<float>(), g.data_ptr<float>(), c.iterations, nullptr);
    synchronize();
    const double ms
        = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const auto [ef, padF] = potentialError(s, f, fRef, s.maskX);
    const auto [eg, padG] = potentialError(s, g, gRef, s.maskY);
    const double tol = c.iterations <= 10 ? kPotentialTol10 : kPotentialTol200;
    report(ef <= tol && eg <= tol && padF && padG, "iterate " + c.name,
        fmt("max|f-ref|/maxC=%.2e max|g-ref|/maxC=%.2e (tol %.0e)", ef, eg, tol)
            + ((padF && padG) ? "" : " PADDED POTENTIALS NOT ZERO") + fmt(", %.1f ms", ms));
    fOut = f;
    gOut = g;
}

void checkPlanPasses(const Case& c, const Data& s, const torch::Tensor& f, const torch::Tensor& g)
{
    const auto dev = torch::Device(kDevice);
    const auto i64 = torch::TensorOptions().dtype(torch::kLong).device(dev);
    const auto d64 = torch::TensorOptions().dtype(torch::kDouble).device(dev);
    const std::uint64_t seed = 0xC0FFEEull + std::uint64_t(c.N);

    auto lp = logPlan(s, f, g); // [B,N,M]
    auto P = torch::exp(lp);
    auto massRef = P.sum(2);
    auto costRef = (P * s.C).sum(2);
    auto wyRef = torch::bmm(P, s.y);

    // Poisoned outputs: every element must be written.
    auto mass = torch::full({ c.B, c.N }, std::nan(""), d64);
    auto cost = torch::full({ c.B, c.N }, std::nan(""), d64);
    auto wy = torch::full({ c.B, c.N, c.d }, std::nan(""), d64.dtype(torch::kFloat));
    auto am = torch::full({ c.B, c.N }, -7, i64);
    auto sm = torch::full({ c.B, c.N }, -7, i64);
    kern::RowOutputs out;
    out.mass = mass.data_ptr<double>();
    out.cost = cost.data_ptr<double>();
    out.weightedY = wy.data_ptr<float>();
    out.argmax = am.data_ptr<int64_t>();
    out.sampled = sm.data_ptr<int64_t>();
    out.seed = seed;
    kern::cuda::rowPass(s.problem, f.data_ptr<float>(), g.data_ptr<float>(), out, nullptr);
    synchronize();

    auto rel = [](const torch::Tensor& a, const torch::Tensor& ref, const torch::Tensor& scale,
                   const torch::Tensor& mask) {
        auto e = (a.to(torch::kDouble) - ref).abs() / scale.clamp_min(1e-300);
        e = torch::where(mask, e, torch::zeros_like(e));
        return torch::isfinite(e).all().item<bool>() ? e.max().item<double>() : kInf;
    };
    const double eMass = rel(mass, massRef, massRef, s.maskX);
    const double eCost = rel(cost, costRef, costRef, s.maskX);
    auto yScale = s.y.abs().amax({ 1, 2 }).view({ -1, 1, 1 }) * massRef.unsqueeze(2);
    const double eW = rel(wy, wyRef, yScale, s.maskX.unsqueeze(2).expand({ c.B, c.N, c.d }));
    auto padX = s.maskX.logical_not();
    const bool padOk = mass.masked_select(padX).abs().sum().item<double>() == 0.0
        && cost.masked_select(padX).abs().sum().item<double>() == 0.0
        && wy.masked_select(padX.unsqueeze(2).expand({ c.B, c.N, c.d })).abs().sum().item<float>()
            == 0.0f
        && (am.masked_select(padX) == -1).all().item<bool>()
        && (sm.masked_select(padX) == -1).all().item<bool>();
    report(eMass <= kSumTol && eCost <= kSumTol && eW <= kSumTol && padOk, "rowPass sums " + c.name,
        fmt("mass rel err %.2e, cost rel err %.2e, weightedY err %.2e", eMass, eCost, eW)
            + (padOk ? "" : " PADDED ROWS WRONG"));

    // argmax / sampled: the chosen column must attain the float64 maximum of log P (+ noise).
    std::vector<double> noise(std::size_t(c.B) * c.N * c.M);
    for (int b = 0; b < c.B; ++b) {
        for (int i = 0; i < c.N; ++i) {
            for (int j = 0; j < c.M; ++j) {
                noise[(std::size_t(b) * c.N + i) * c.M + j] = gumbel(seed, b, i, j);
            }
        }
    }
    auto G = torch::from_blob(noise.data(), { c.B, c.N, c.M }, torch::kDouble).clone().to(dev);
    auto key = lp + G;
    auto rowHasLive = torch::isfinite(lp).any(2).logical_and(s.maskX);
    auto check = [&](const torch::Tensor& chosen, const torch::Tensor& values) {
        auto inRange = chosen.ge(0).logical_and(chosen.lt(c.M));
        auto got = values.gather(2, chosen.clamp(0, c.M - 1).unsqueeze(2)).squeeze(2);
        auto best = std::get<0>(values.max(2));
        auto ok = inRange.logical_and(got >= best - kArgTol * (1.0 + best.abs()));
        auto bad = rowHasLive.logical_and(ok.logical_not()).sum().item<int64_t>();
        bad += s.maskX.logical_and(rowHasLive.logical_not())
                   .logical_and(chosen != -1)
                   .sum()
                   .item<int64_t>();
        return bad;
    };
    const int64_t badArg = check(am, lp);
    const int64_t badSample = check(sm, key);
    report(badArg == 0 && badSample == 0, "rowPass argmax/sampled " + c.name,
        std::to_string(badArg) + " argmax and " + std::to_string(badSample)
            + " sampled rows off the maximum");

    auto cm = torch::full({ c.B, c.M }, std::nan(""), d64);
    kern::cuda::colMass(
        s.problem, f.data_ptr<float>(), g.data_ptr<float>(), cm.data_ptr<double>(), nullptr);
    synchronize();
    auto colRef = P.sum(1);
    const double eCol = rel(cm, colRef, colRef, s.maskY);
    const bool colPad = cm.masked_select(s.maskY.logical_not()).abs().sum().item<double>() == 0.0;
    report(eCol <= kSumTol && colPad, "colMass " + c.name,
        fmt("rel err %.2e", eCol) + (colPad ? "" : " PADDED COLUMNS NOT ZERO"));

    for (int k : { 1, 7, 32 }) {
        if (k > c.M) {
            continue;
        }
        auto vals = torch::full({ c.B, c.N, k }, std::nan(""), d64.dtype(torch::kFloat));
        auto idx = torch::full({ c.B, c.N, k }, -7, i64);
        kern::cuda::topK(s.problem, f.data_ptr<float>(), g.data_ptr<float>(), k,
            vals.data_ptr<float>(), idx.data_ptr<int64_t>(), nullptr);
        synchronize();
        auto refVals = std::get<0>(torch::topk(lp, k, 2)); // descending, -inf where fewer live
        auto liveRow = s.maskX.unsqueeze(2).expand({ c.B, c.N, k });
        auto finiteRef = torch::isfinite(refVals).logical_and(liveRow);
        // Values: float32 of the float64 value; -inf where the reference has none.
        auto vErr = (vals.to(torch::kDouble) - refVals).abs() / (1.0 + refVals.abs());
        vErr = torch::where(finiteRef, vErr, torch::zeros_like(vErr));
        const double eVal
            = torch::isfinite(vErr).all().item<bool>() ? vErr.max().item<double>() : kInf;
        const int64_t badEmpty = finiteRef.logical_not()
                                     .logical_and(torch::isfinite(vals).logical_or(idx != -1))
                                     .sum()
                                     .item<int64_t>();
        // Indices: each must carry the q-th value (exact ties may swap equal values), distinct.
        auto gotAtIdx = lp.gather(2, idx.clamp(0, c.M - 1));
        auto idxOk
            = idx.ge(0)
                  .logical_and(idx.lt(c.M))
                  .logical_and((gotAtIdx - refVals).abs() <= kArgTol * (1.0 + refVals.abs()));
        int64_t badIdx = finiteRef.logical_and(idxOk.logical_not()).sum().item<int64_t>();
        if (k > 1) {
            auto same = idx.slice(2, 1, k) == idx.slice(2, 0, k - 1);
            badIdx += same.logical_and(finiteRef.slice(2, 1, k)).sum().item<int64_t>();
        }
        report(eVal <= kValueTol && badEmpty == 0 && badIdx == 0,
            "topK k=" + std::to_string(k) + " " + c.name,
            fmt("value rel err %.2e, ", eVal) + std::to_string(badIdx) + " wrong indices, "
                + std::to_string(badEmpty) + " wrong empty slots");
    }
}

} // namespace

/// The largest live cost of each pair against the float64 cost of the float32 coordinates the
/// kernel sees (0 where a side is empty).
void checkMaxCost(const Case& c, const Data& s)
{
    const auto pairMask = s.maskX.unsqueeze(2).logical_and(s.maskY.unsqueeze(1));
    const auto C = (s.xf.to(torch::kDouble).unsqueeze(2) - s.yf.to(torch::kDouble).unsqueeze(1)).pow(2).sum(3);
    const auto ref = torch::where(pairMask, C, torch::zeros_like(C)).amax({ 1, 2 });
    auto out = torch::full({ c.B }, -1.0f, torch::TensorOptions().dtype(torch::kFloat).device(kDevice));
    kern::Problem p = s.problem;
    p.eps = nullptr; // not read
    kern::cuda::maxCost(p, out.data_ptr<float>(), nullptr);
    synchronize();
    const auto o = out.to(torch::kDouble);
    const double err = ((o - ref).abs() / ref.clamp_min(1e-300)).max().item<double>();
    const bool zeros = torch::equal(o.masked_select(ref == 0), ref.masked_select(ref == 0));
    char buf[128];
    std::snprintf(buf, sizeof buf, "max rel err %.2e", err);
    report(err <= 2e-6 && zeros, "maxCost " + c.name, buf);
}

int main()
{
#if !defined(WFM_CUDA_CHECK_ON_CPU)
    if (!torch::cuda::is_available()) {
        std::printf("SKIP: no CUDA device (these checks need one)\n0 passed, 0 failed\n");
        return 0;
    }
#endif
    const auto t0 = std::chrono::steady_clock::now();
    torch::manual_seed(20240611);
    std::vector<Case> cases;
    //            name                                   B  N     M     d  relEps  iters
    cases.push_back({ "d3 eps.002 it10", 4, 500, 470, 3, 0.002, 10 });
    cases.push_back({ "d3 eps.002 it200 N2048", 2, 2048, 2048, 3, 0.002, 200 });
    cases.push_back({ "d3 eps.001 it200 scattered", 3, 700, 650, 3, 0.001, 200, true });
    cases.push_back({ "d3 eps.01 it200", 3, 600, 900, 3, 0.01, 200 });
    cases.push_back({ "d2 eps.002 it200", 3, 900, 1000, 2, 0.002, 200 });
    cases.push_back({ "d2 eps.001 it10 scattered", 2, 300, 257, 2, 0.001, 10, true });
    cases.push_back({ "d2 eps.01 it200", 2, 400, 350, 2, 0.01, 200 });
    cases.push_back({ "d5 eps.002 it200", 3, 600, 550, 5, 0.002, 200 });
    cases.push_back({ "d5 eps.01 it10 scattered", 2, 300, 330, 5, 0.01, 10, true });
    cases.push_back({ "d5 eps.001 it200", 2, 400, 380, 5, 0.001, 200 });
    cases.push_back({ "d1 eps.002 it200", 2, 300, 280, 1, 0.002, 200 });
    cases.push_back(
        { "d3 eps.001 it200 far apart warm", 2, 500, 450, 3, 0.001, 200, false, 6.0, 0.0, true });
    cases.push_back({ "d3 eps.002 it10 offset 300", 2, 400, 380, 3, 0.002, 10, false, 0.0, 300.0 });
    cases.push_back({ "d2 eps.002 it200 empty pairs", 4, 260, 300, 2, 0.002, 200, false, 0.0, 0.0,
        false, true });
    cases.push_back({ "d3 eps.001 it200 sorted far apart warm", 2, 600, 700, 3, 0.001, 200, false,
        4.0, 0.0, true, false, true });
    for (Case c : cases) {
#if defined(WFM_CUDA_CHECK_ON_CPU)
        // Emulated kernels are slow: a quarter of the points, at most 30 iterations.
        c.N = std::max(8, c.N / 4);
        c.M = std::max(8, c.M / 4);
        c.iterations = std::min(c.iterations, 30);
#endif
        const Data s = makeData(c);
        torch::Tensor f, g;
        checkMaxCost(c, s);
        checkIterate(c, s, f, g);
        checkPlanPasses(c, s, f, g);
    }
    const double secs
        = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("time %.1f s\n%d passed, %d failed\n", secs, gPassed, gFailed);
    return gFailed == 0 ? 0 : 1;
}
