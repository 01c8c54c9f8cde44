// Standalone check of the CUDA fused Sinkhorn kernels against a float64 CPU reference, without
// LibTorch. Two builds of the same source:
//   on a GPU:     nvcc -std=c++17 -O3 -arch=sm_90 --use_fast_math bench/gpu/check_fused_kernels.cu
//                      core/src/ot/cuda/FusedSinkhorn.cu -I core/src -o check_fused
//   without one:  g++ -std=c++20 -O2 -pthread -x c++ -DWFM_CUDA_EMULATION
//                      bench/gpu/check_fused_kernels.cu -I core/src -I bench/gpu -o check_fused_emu
// The second runs the very kernel code under bench/gpu/emu/CudaEmulation.h (threads + barriers).
// Every Sinkhorn kernel variant is checked. Prints one line per check, then "N passed, M failed";
// exit code 0 only when nothing failed. Option --quick runs a smaller set.

#if defined(WFM_CUDA_EMULATION)
#include "emu/CudaEmulation.h"
#include "ot/cuda/FusedSinkhornKernels.cuh"
#else
#include "ot/FusedKernels.h"
#include "ot/cuda/FusedSinkhornTuning.h"
#include <cuda_runtime.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using wfm::ot::kernels::Problem;
using wfm::ot::kernels::RowOutputs;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr float kInfF = std::numeric_limits<float>::infinity();

int gPassed = 0;
int gFailed = 0;

void report(bool ok, const std::string& what, const std::string& detail)
{
    (ok ? gPassed : gFailed) += 1;
    std::printf("%s %s: %s\n", ok ? "PASS" : "FAIL", what.c_str(), detail.c_str());
    std::fflush(stdout);
}

// ------------------------------------------------------------------------------------------------
// Problems.

struct Case
{
    std::string name;
    int B, N, M, d;
    double relEps;
    int iterations;
    bool scatteredPadding = false; ///< padding anywhere instead of at the end
    double separation = 0.0; ///< y shifted by this along the first axis
    double offset = 0.0; ///< both clouds moved far from the origin
    bool warmStart = false; ///< start from perturbed potentials instead of zeros
    bool emptyPair = false; ///< pair 0 has no live y, pair 1 no live x, pair 2 one live x
    bool sorted = false; ///< points sorted by their first coordinate (monotone log P along j)
};

struct Host
{
    int B = 0, N = 0, M = 0, d = 0;
    std::vector<float> x, y, loga, logb, eps, f0, g0;
    std::vector<double> maxC;
};

double sqDist(const Host& h, int b, int i, int j)
{
    double c = 0.0;
    for (int k = 0; k < h.d; ++k) {
        const double v = double(h.x[(std::size_t(b) * h.N + i) * h.d + k])
            - double(h.y[(std::size_t(b) * h.M + j) * h.d + k]);
        c += v * v;
    }
    return c;
}

Host makeProblem(const Case& c, std::uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    Host h;
    h.B = c.B;
    h.N = c.N;
    h.M = c.M;
    h.d = c.d;
    h.x.resize(std::size_t(c.B) * c.N * c.d);
    h.y.resize(std::size_t(c.B) * c.M * c.d);
    for (std::size_t q = 0; q < h.x.size(); ++q) {
        h.x[q] = float(normal(rng) + c.offset);
    }
    for (std::size_t q = 0; q < h.y.size(); ++q) {
        const int k = int(q % c.d);
        h.y[q]
            = float(0.7 * normal(rng) + 0.4 * unif(rng) + c.offset + (k == 0 ? c.separation : 0));
    }
    if (c.sorted) {
        auto sortPoints = [&](std::vector<float>& pts, int n) {
            for (int b = 0; b < c.B; ++b) {
                std::vector<std::vector<float>> rows(n);
                for (int q = 0; q < n; ++q) {
                    const float* p = pts.data() + (std::size_t(b) * n + q) * c.d;
                    rows[q].assign(p, p + c.d);
                }
                std::sort(rows.begin(), rows.end());
                for (int q = 0; q < n; ++q) {
                    std::copy(rows[q].begin(), rows[q].end(),
                        pts.begin() + (std::size_t(b) * n + q) * c.d);
                }
            }
        };
        sortPoints(h.x, c.N);
        sortPoints(h.y, c.M);
    }
    auto weights = [&](int n, int live, bool scattered, std::vector<float>& lw, int b) {
        std::vector<int> order(n);
        for (int q = 0; q < n; ++q) {
            order[q] = q;
        }
        if (scattered) {
            std::shuffle(order.begin(), order.end(), rng);
        }
        std::vector<double> w(n, 0.0);
        double s = 0.0;
        for (int q = 0; q < live; ++q) {
            w[order[q]] = 0.2 + unif(rng);
            s += w[order[q]];
        }
        for (int q = 0; q < n; ++q) {
            lw[std::size_t(b) * n + q] = w[q] > 0 ? float(std::log(w[q] / s)) : -kInfF;
        }
    };
    h.loga.resize(std::size_t(c.B) * c.N);
    h.logb.resize(std::size_t(c.B) * c.M);
    for (int b = 0; b < c.B; ++b) {
        int nLive = c.N - int(unif(rng) * 0.4 * c.N);
        int mLive = c.M - int(unif(rng) * 0.4 * c.M);
        if (b == c.B - 1) {
            nLive = c.N; // one pair without padding
            mLive = c.M;
        }
        if (c.emptyPair && b == 0) {
            mLive = 0;
        }
        if (c.emptyPair && b == 1) {
            nLive = 0;
        }
        if (c.emptyPair && b == 2) {
            nLive = 1;
        }
        weights(c.N, nLive, c.scatteredPadding, h.loga, b);
        weights(c.M, mLive, c.scatteredPadding, h.logb, b);
    }
    h.eps.resize(c.B);
    h.maxC.resize(c.B);
    for (int b = 0; b < c.B; ++b) {
        double mc = 0.0;
        for (int i = 0; i < c.N; ++i) {
            if (!(h.loga[std::size_t(b) * c.N + i] > -kInfF)) {
                continue;
            }
            for (int j = 0; j < c.M; ++j) {
                if (h.logb[std::size_t(b) * c.M + j] > -kInfF) {
                    mc = std::max(mc, sqDist(h, b, i, j));
                }
            }
        }
        h.maxC[b] = mc > 0 ? mc : 1.0;
        h.eps[b] = float(c.relEps * h.maxC[b]);
    }
    h.f0.assign(std::size_t(c.B) * c.N, 0.0f);
    h.g0.assign(std::size_t(c.B) * c.M, 0.0f);
    if (c.warmStart) {
        for (int b = 0; b < c.B; ++b) {
            for (int i = 0; i < c.N; ++i) {
                if (h.loga[std::size_t(b) * c.N + i] > -kInfF) {
                    h.f0[std::size_t(b) * c.N + i] = float(0.3 * h.maxC[b] * unif(rng));
                }
            }
            for (int j = 0; j < c.M; ++j) {
                if (h.logb[std::size_t(b) * c.M + j] > -kInfF) {
                    h.g0[std::size_t(b) * c.M + j] = float(-0.2 * h.maxC[b] * unif(rng));
                }
            }
        }
    }
    return h;
}

// ------------------------------------------------------------------------------------------------
// float64 reference.

/// Runs body(q) for q in [0, n) on all hardware threads.
template <class Body> void parallelFor(int n, Body body)
{
    const int workers = int(std::max(1u, std::min(32u, std::thread::hardware_concurrency())));
    std::vector<std::thread> pool;
    for (int w = 0; w < workers; ++w) {
        pool.emplace_back([&, w] {
            for (int q = w; q < n; q += workers) {
                body(q);
            }
        });
    }
    for (auto& t : pool) {
        t.join();
    }
}

/// log-sum-exp over `count` values produced by value(q) (-inf values allowed).
template <class Value> double logSumExp(int count, Value value)
{
    double m = -kInf;
    for (int q = 0; q < count; ++q) {
        m = std::max(m, value(q));
    }
    if (!(m > -kInf)) {
        return -kInf;
    }
    double s = 0.0;
    for (int q = 0; q < count; ++q) {
        s += std::exp(value(q) - m);
    }
    return m + std::log(s);
}

void refIterate(const Host& h, std::vector<double>& f, std::vector<double>& g, int iterations)
{
    for (int it = 0; it < iterations; ++it) {
        parallelFor(h.B * h.M, [&](int q) {
            const int b = q / h.M, j = q % h.M;
            const double eps = h.eps[b];
            double& gj = g[std::size_t(b) * h.M + j];
            if (!(h.logb[std::size_t(b) * h.M + j] > -kInfF)) {
                gj = 0.0;
                return;
            }
            const double l = logSumExp(h.N, [&](int i) {
                const double la = h.loga[std::size_t(b) * h.N + i];
                return la > -kInf ? la + (f[std::size_t(b) * h.N + i] - sqDist(h, b, i, j)) / eps
                                  : -kInf;
            });
            gj = l > -kInf ? -eps * l : 0.0;
        });
        parallelFor(h.B * h.N, [&](int q) {
            const int b = q / h.N, i = q % h.N;
            const double eps = h.eps[b];
            double& fi = f[std::size_t(b) * h.N + i];
            if (!(h.loga[std::size_t(b) * h.N + i] > -kInfF)) {
                fi = 0.0;
                return;
            }
            const double l = logSumExp(h.M, [&](int j) {
                const double lb = h.logb[std::size_t(b) * h.M + j];
                return lb > -kInf ? lb + (g[std::size_t(b) * h.M + j] - sqDist(h, b, i, j)) / eps
                                  : -kInf;
            });
            fi = l > -kInf ? -eps * l : 0.0;
        });
    }
}

double refLogP(
    const Host& h, const std::vector<float>& f, const std::vector<float>& g, int b, int i, int j)
{
    const double la = h.loga[std::size_t(b) * h.N + i];
    const double lb = h.logb[std::size_t(b) * h.M + j];
    if (!(la > -kInf) || !(lb > -kInf)) {
        return -kInf;
    }
    return la + lb
        + (double(f[std::size_t(b) * h.N + i]) + double(g[std::size_t(b) * h.M + j])
              - sqDist(h, b, i, j))
        / double(h.eps[b]);
}

/// The sampling noise of the contract, written out independently of the kernel header.
double refGumbel(std::uint64_t seed, std::int64_t b, std::int64_t i, std::int64_t j)
{
    std::uint64_t z = seed ^ (std::uint64_t(b) * 0x9E3779B97F4A7C15ull)
        ^ (std::uint64_t(i) * 0xC2B2AE3D27D4EB4Full) ^ (std::uint64_t(j) * 0x165667B19E3779F9ull);
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = (double(z >> 40) + 0.5) / 16777216.0;
    return -std::log(-std::log(u));
}

// ------------------------------------------------------------------------------------------------
// Back-ends: the emulated kernels on host memory, or the CUDA entry points on a device.

#if defined(WFM_CUDA_EMULATION)
namespace det = wfm::ot::kernels::cuda::detail;

struct Backend
{
    const Host& h;
    Problem p;
    explicit Backend(const Host& host)
        : h(host)
    {
        p.x = h.x.data();
        p.y = h.y.data();
        p.loga = h.loga.data();
        p.logb = h.logb.data();
        p.eps = h.eps.data();
        p.B = h.B;
        p.N = h.N;
        p.M = h.M;
        p.d = h.d;
    }
    static int variants() { return det::kLseVariantCount; }
    static const char* variantName(int v) { return det::kLseVariants[v].name; }
    unsigned iterate(std::vector<float>& f, std::vector<float>& g, int iterations, int variant)
    {
        wfm::emu::Launcher l;
        unsigned fallbacks = 0;
        det::runIterate(l, p, f.data(), g.data(), iterations, variant, &fallbacks);
        return fallbacks;
    }
    void rowPass(const std::vector<float>& f, const std::vector<float>& g,
        std::vector<double>& mass, std::vector<double>& cost, std::vector<float>& wy,
        std::vector<std::int64_t>& am, std::vector<std::int64_t>& sm, std::uint64_t seed)
    {
        wfm::emu::Launcher l;
        RowOutputs o;
        o.mass = mass.data();
        o.cost = cost.data();
        o.weightedY = wy.data();
        o.argmax = am.data();
        o.sampled = sm.data();
        o.seed = seed;
        det::runRowPass(l, p, f.data(), g.data(), o);
    }
    void colMass(const std::vector<float>& f, const std::vector<float>& g, std::vector<double>& m)
    {
        wfm::emu::Launcher l;
        det::runColMass(l, p, f.data(), g.data(), m.data());
    }
    void topK(const std::vector<float>& f, const std::vector<float>& g, int k,
        std::vector<float>& v, std::vector<std::int64_t>& idx)
    {
        wfm::emu::Launcher l;
        det::runTopK(l, p, f.data(), g.data(), k, v.data(), idx.data());
    }
    void maxCost(std::vector<float>& out)
    {
        wfm::emu::Launcher l;
        det::runMaxCost(l, p, out.data());
    }
};
#else
namespace tun = wfm::ot::kernels::cuda::tuning;

void cudaCheck(cudaError_t e, const char* what)
{
    if (e != cudaSuccess) {
        std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
        std::exit(2);
    }
}

template <class T> struct DeviceArray
{
    T* ptr = nullptr;
    std::size_t n = 0;
    explicit DeviceArray(std::size_t count)
        : n(count)
    {
        cudaCheck(cudaMalloc(&ptr, std::max<std::size_t>(1, n) * sizeof(T)), "cudaMalloc");
        // Poison: every output element must be written.
        cudaCheck(cudaMemset(ptr, 0xCD, std::max<std::size_t>(1, n) * sizeof(T)), "cudaMemset");
    }
    DeviceArray(const std::vector<T>& v)
        : DeviceArray(v.size())
    {
        upload(v);
    }
    ~DeviceArray() { cudaFree(ptr); }
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;
    void upload(const std::vector<T>& v)
    {
        cudaCheck(cudaMemcpy(ptr, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "H2D");
    }
    void download(std::vector<T>& v) const
    {
        v.resize(n);
        cudaCheck(cudaDeviceSynchronize(), "kernel");
        cudaCheck(cudaMemcpy(v.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost), "D2H");
    }
};

struct Backend
{
    const Host& h;
    DeviceArray<float> x, y, loga, logb, eps;
    Problem p;
    explicit Backend(const Host& host)
        : h(host)
        , x(host.x)
        , y(host.y)
        , loga(host.loga)
        , logb(host.logb)
        , eps(host.eps)
    {
        p.x = x.ptr;
        p.y = y.ptr;
        p.loga = loga.ptr;
        p.logb = logb.ptr;
        p.eps = eps.ptr;
        p.B = h.B;
        p.N = h.N;
        p.M = h.M;
        p.d = h.d;
    }
    static int variants() { return tun::variantCount(); }
    static const char* variantName(int v) { return tun::variantName(v); }
    unsigned iterate(std::vector<float>& f, std::vector<float>& g, int iterations, int variant)
    {
        DeviceArray<float> df(f), dg(g);
        DeviceArray<unsigned> counter(1);
        cudaCheck(cudaMemset(counter.ptr, 0, sizeof(unsigned)), "cudaMemset");
        tun::iterate(p, df.ptr, dg.ptr, iterations, nullptr, variant, counter.ptr);
        df.download(f);
        dg.download(g);
        std::vector<unsigned> c;
        counter.download(c);
        return c[0];
    }
    void rowPass(const std::vector<float>& f, const std::vector<float>& g,
        std::vector<double>& mass, std::vector<double>& cost, std::vector<float>& wy,
        std::vector<std::int64_t>& am, std::vector<std::int64_t>& sm, std::uint64_t seed)
    {
        DeviceArray<float> df(f), dg(g);
        DeviceArray<double> dm(mass.size()), dc(cost.size());
        DeviceArray<float> dw(wy.size());
        DeviceArray<std::int64_t> da(am.size()), ds(sm.size());
        RowOutputs o;
        o.mass = dm.ptr;
        o.cost = dc.ptr;
        o.weightedY = dw.ptr;
        o.argmax = da.ptr;
        o.sampled = ds.ptr;
        o.seed = seed;
        wfm::ot::kernels::cuda::rowPass(p, df.ptr, dg.ptr, o, nullptr);
        dm.download(mass);
        dc.download(cost);
        dw.download(wy);
        da.download(am);
        ds.download(sm);
    }
    void colMass(const std::vector<float>& f, const std::vector<float>& g, std::vector<double>& m)
    {
        DeviceArray<float> df(f), dg(g);
        DeviceArray<double> dm(m.size());
        wfm::ot::kernels::cuda::colMass(p, df.ptr, dg.ptr, dm.ptr, nullptr);
        dm.download(m);
    }
    void topK(const std::vector<float>& f, const std::vector<float>& g, int k,
        std::vector<float>& v, std::vector<std::int64_t>& idx)
    {
        DeviceArray<float> df(f), dg(g);
        DeviceArray<float> dv(v.size());
        DeviceArray<std::int64_t> di(idx.size());
        wfm::ot::kernels::cuda::topK(p, df.ptr, dg.ptr, k, dv.ptr, di.ptr, nullptr);
        dv.download(v);
        di.download(idx);
    }
    void maxCost(std::vector<float>& out)
    {
        DeviceArray<float> dm(out.size());
        wfm::ot::kernels::cuda::maxCost(p, dm.ptr, nullptr);
        dm.download(out);
    }
};
#endif

std::string fmt(const char* f, double a, double b = 0, double c = 0)
{
    char buf[256];
    std::snprintf(buf, sizeof buf, f, a, b, c);
    return buf;
}

// ------------------------------------------------------------------------------------------------
// Checks.

/// Max over live entries of |pot - ref| / maxC of the pair; padded entries must be exactly 0.
double potentialError(const Host& h, const std::vector<float>& pot, const std::vector<double>& ref,
    const std::vector<float>& logw, int n, bool& paddingOk)
{
    double worst = 0.0;
    for (int b = 0; b < h.B; ++b) {
        for (int q = 0; q < n; ++q) {
            const std::size_t o = std::size_t(b) * n + q;
            if (!(logw[o] > -kInfF)) {
                paddingOk = paddingOk && pot[o] == 0.0f;
                continue;
            }
            const double e = std::abs(double(pot[o]) - ref[o]) / h.maxC[b];
            worst = std::isfinite(double(pot[o])) ? std::max(worst, e) : kInf;
        }
    }
    return worst;
}

/// The largest live cost of each pair against a float64 brute force (0 for a pair with an
/// empty side).
void checkMaxCost(const Case& c, const Host& h)
{
    Backend be(h);
    std::vector<float> out(std::size_t(h.B), -1.0f);
    be.maxCost(out);
    double worst = 0.0;
    for (int b = 0; b < h.B; ++b) {
        double ref = 0.0;
        for (int i = 0; i < h.N; ++i) {
            for (int j = 0; j < h.M && h.loga[std::size_t(b) * h.N + i] > -kInfF; ++j) {
                if (h.logb[std::size_t(b) * h.M + j] > -kInfF) {
                    ref = std::max(ref, sqDist(h, b, i, j));
                }
            }
        }
        const double e = ref > 0 ? std::abs(double(out[b]) - ref) / ref : std::abs(double(out[b]));
        worst = std::isfinite(double(out[b])) ? std::max(worst, e) : kInf;
    }
    report(worst <= 2e-6, "maxCost " + c.name, fmt("max rel err %.2e", worst));
}

void checkIterate(const Case& c, const Host& h, std::vector<float>& fOut, std::vector<float>& gOut,
    bool allVariants)
{
    std::vector<double> fr(h.f0.begin(), h.f0.end()), gr(h.g0.begin(), h.g0.end());
    refIterate(h, fr, gr, c.iterations);
    // Float32 kernels: errors of a few 1e-7 maxC per half-iteration, growing at most linearly.
    const double tol = c.iterations <= 10 ? 1e-5 : 5e-5;
    Backend be(h);
    const int defaultVariant =
#if defined(WFM_CUDA_EMULATION)
        det::kDefaultLseVariant;
#else
        tun::defaultVariant();
#endif
    const bool generic = h.d != 2 && h.d != 3;
    for (int v = 0; v < Backend::variants(); ++v) {
        if ((!allVariants || generic) && v != defaultVariant) {
            continue;
        }
        std::vector<float> f = h.f0, g = h.g0;
        const unsigned fallbacks = be.iterate(f, g, c.iterations, v);
        bool padOk = true;
        const double ef = potentialError(h, f, fr, h.loga, h.N, padOk);
        const double eg = potentialError(h, g, gr, h.logb, h.M, padOk);
        const bool ok = ef <= tol && eg <= tol && padOk;
        report(ok,
            "iterate " + c.name + " [" + (generic ? "generic-d" : Backend::variantName(v)) + "]",
            fmt("max|f-ref|/maxC=%.2e max|g-ref|/maxC=%.2e (tol %.0e)", ef, eg, tol)
                + (padOk ? "" : " PADDING NOT ZERO")
                + " fallback blocks=" + std::to_string(fallbacks));
        if (v == defaultVariant) {
            fOut = f;
            gOut = g;
        }
    }
}

void checkPlanPasses(
    const Case& c, const Host& h, const std::vector<float>& f, const std::vector<float>& g)
{
    Backend be(h);
    const std::size_t BN = std::size_t(h.B) * h.N;
    const std::uint64_t seed = 0x5EED0000ull + std::uint64_t(h.N);
    std::vector<double> mass(BN), cost(BN);
    std::vector<float> wy(BN * h.d);
    std::vector<std::int64_t> am(BN), sm(BN);
    be.rowPass(f, g, mass, cost, wy, am, sm, seed);
    double eMass = 0, eCost = 0, eW = 0;
    int badArg = 0, badSample = 0, badPad = 0;
    std::vector<double> lp(h.M);
    for (int b = 0; b < h.B; ++b) {
        for (int i = 0; i < h.N; ++i) {
            const std::size_t o = std::size_t(b) * h.N + i;
            if (!(h.loga[o] > -kInfF)) {
                bool z = mass[o] == 0 && cost[o] == 0 && am[o] == -1 && sm[o] == -1;
                for (int k = 0; k < h.d; ++k) {
                    z = z && wy[o * h.d + k] == 0.0f;
                }
                badPad += !z;
                continue;
            }
            double m = 0, cs = 0, best = -kInf, bestKey = -kInf;
            std::vector<double> w(h.d, 0.0);
            double ymax = 1e-30;
            for (int j = 0; j < h.M; ++j) {
                lp[j] = refLogP(h, f, g, b, i, j);
                if (!(lp[j] > -kInf)) {
                    continue;
                }
                const double p = std::exp(lp[j]);
                m += p;
                cs += p * sqDist(h, b, i, j);
                for (int k = 0; k < h.d; ++k) {
                    const double yk = h.y[(std::size_t(b) * h.M + j) * h.d + k];
                    w[k] += p * yk;
                    ymax = std::max(ymax, std::abs(yk));
                }
                best = std::max(best, lp[j]);
                bestKey = std::max(bestKey, lp[j] + refGumbel(seed, b, i, j));
            }
            eMass = std::max(eMass, std::abs(mass[o] - m) / std::max(m, 1e-300));
            eCost = std::max(eCost, std::abs(cost[o] - cs) / std::max(cs, 1e-300));
            for (int k = 0; k < h.d; ++k) {
                eW = std::max(
                    eW, std::abs(double(wy[o * h.d + k]) - w[k]) / std::max(m * ymax, 1e-300));
            }
            // Chosen columns must attain the maximum (up to float64 rounding of the formula).
            const double tolKey = 1e-9 * (1.0 + std::abs(best));
            if (best > -kInf) {
                badArg += !(am[o] >= 0 && am[o] < h.M && lp[am[o]] >= best - tolKey);
                badSample += !(sm[o] >= 0 && sm[o] < h.M
                    && lp[sm[o]] + refGumbel(seed, b, i, sm[o]) >= bestKey - tolKey);
            } else {
                badArg += am[o] != -1;
                badSample += sm[o] != -1;
            }
        }
    }
    const double tolRel = 2e-6;
    report(eMass <= tolRel && eCost <= tolRel && eW <= tolRel && badPad == 0,
        "rowPass sums " + c.name,
        fmt("mass rel err %.2e, cost rel err %.2e, weightedY err %.2e", eMass, eCost, eW)
            + (badPad ? " PADDED ROWS WRONG" : ""));
    report(badArg == 0 && badSample == 0, "rowPass argmax/sampled " + c.name,
        std::to_string(badArg) + " argmax and " + std::to_string(badSample)
            + " sampled rows off the maximum");

    std::vector<double> cm(std::size_t(h.B) * h.M);
    be.colMass(f, g, cm);
    double eCol = 0;
    int badColPad = 0;
    for (int b = 0; b < h.B; ++b) {
        for (int j = 0; j < h.M; ++j) {
            const std::size_t o = std::size_t(b) * h.M + j;
            if (!(h.logb[o] > -kInfF)) {
                badColPad += cm[o] != 0.0;
                continue;
            }
            double s = 0;
            for (int i = 0; i < h.N; ++i) {
                const double l = refLogP(h, f, g, b, i, j);
                s += l > -kInf ? std::exp(l) : 0.0;
            }
            eCol = std::max(eCol, std::abs(cm[o] - s) / std::max(s, 1e-300));
        }
    }
    report(eCol <= tolRel && badColPad == 0, "colMass " + c.name,
        fmt("rel err %.2e", eCol) + (badColPad ? " PADDED COLUMNS NOT ZERO" : ""));

    for (int k : { 1, 5, 32 }) {
        std::vector<float> v(BN * k);
        std::vector<std::int64_t> idx(BN * k);
        be.topK(f, g, k, v, idx);
        int bad = 0;
        double eVal = 0;
        for (int b = 0; b < h.B; ++b) {
            for (int i = 0; i < h.N; ++i) {
                const std::size_t o = std::size_t(b) * h.N + i;
                std::vector<std::pair<double, int>> all;
                if (h.loga[o] > -kInfF) {
                    for (int j = 0; j < h.M; ++j) {
                        const double l = refLogP(h, f, g, b, i, j);
                        if (l > -kInf) {
                            all.push_back({ -l, j });
                        }
                    }
                }
                std::sort(all.begin(), all.end());
                for (int q = 0; q < k; ++q) {
                    const float got = v[o * k + q];
                    const std::int64_t gj = idx[o * k + q];
                    if (q >= int(all.size())) {
                        bad += !(got == -kInfF && gj == -1);
                        continue;
                    }
                    const double want = -all[q].first;
                    eVal = std::max(eVal, std::abs(double(got) - want) / (1.0 + std::abs(want)));
                    const double tolKey = 1e-9 * (1.0 + std::abs(want));
                    // The index must carry the q-th value (exact ties may swap equal values).
                    bad += !(gj >= 0 && gj < h.M
                        && std::abs(refLogP(h, f, g, b, i, int(gj)) - want) <= tolKey
                        && (q == 0 || gj != idx[o * k + q - 1]));
                }
            }
        }
        report(bad == 0 && eVal <= 1e-6, "topK k=" + std::to_string(k) + " " + c.name,
            fmt("value rel err %.2e, ", eVal) + std::to_string(bad) + " wrong entries");
    }
}

#if defined(WFM_CUDA_EMULATION)
/// Host-side unit checks of the pieces that the GPU computes with special tricks.
void checkHelpers()
{
    // Polynomial exp2 with the shift folded into the rounding constant: relative error over a
    // sweep of shifts and arguments, and the clamped ends.
    double worst = 0;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-124.0f, 124.0f);
    for (float n : { 0.0f, 1.0f, -3.0f, 57.0f, -700.0f, 1234.0f, -2097152.0f, 2097152.0f }) {
        const det::RowShift s = det::makeRowShift(n);
        for (int q = 0; q < 200000; ++q) {
            const float t = n + u(rng);
            const double want = std::exp2(double(t) - double(n));
            const double got = det::polyExp2Shifted(t, s);
            worst = std::max(worst, std::abs(got - want) / want);
        }
    }
    const det::RowShift s0 = det::makeRowShift(10.0f);
    const bool clampOk = det::polyExp2Shifted(-1e30f, s0) > 0.0f
        && det::polyExp2Shifted(-1e30f, s0) < 1e-37f && det::polyExp2Shifted(1e30f, s0) > 1e37f
        && std::isfinite(det::polyExp2Shifted(1e30f, s0))
        && det::polyExp2Shifted(-kInfF, s0) < 1e-37f;
    report(worst < 3e-7 && clampOk, "polynomial exp2",
        fmt("max rel err %.2e over shifts up to 2^21", worst) + (clampOk ? "" : " CLAMP WRONG"));

    // The hash and the uniform against the independent formula above, and the Gumbel bound.
    int mismatch = 0;
    double gmax = -kInf, umin = 1, umax = 0;
    for (int q = 0; q < 100000; ++q) {
        const std::uint64_t seed = 0x1234567ull * q;
        const std::int64_t b = q % 7, i = q * 31 % 1001, j = q * 17 % 4099;
        mismatch += det::gumbelNoise(seed, b, i, j) != refGumbel(seed, b, i, j);
        const double uu = det::counterUniform(seed, b, i, j);
        umin = std::min(umin, uu);
        umax = std::max(umax, uu);
        gmax = std::max(gmax, det::gumbelNoise(seed, b, i, j));
    }
    const double gTop = -std::log(-std::log1p(-0.5 / 16777216.0));
    report(mismatch == 0 && umin > 0 && umax < 1 && gTop < det::kGumbelBound,
        "counter-based Gumbel noise",
        std::to_string(mismatch)
            + fmt(" mismatches; u in [%.3g, 1-%.3g]; largest possible noise %.4f", umin, 1 - umax,
                gTop));
    // Argument checks of the entry points (host side, before any launch).
    {
        wfm::emu::Launcher l;
        std::vector<float> x(6, 0.0f), lw(2, 0.0f), e(1, 1.0f), f(2, 0.0f), g(2, 0.0f);
        std::vector<float> vals(2, 1.0f);
        std::vector<std::int64_t> idx(2, 5);
        Problem p;
        p.x = x.data();
        p.y = x.data();
        p.loga = lw.data();
        p.logb = lw.data();
        p.eps = e.data();
        p.B = 1;
        p.N = 2;
        p.M = 2;
        p.d = 3;
        auto throws = [](auto&& fn) {
            try {
                fn();
            } catch (const std::invalid_argument&) {
                return true;
            }
            return false;
        };
        Problem bad = p;
        bad.d = 0;
        const bool ok
            = throws([&] { det::runTopK(l, p, f.data(), g.data(), 33, vals.data(), idx.data()); })
            && throws([&] { det::runTopK(l, p, f.data(), g.data(), -1, vals.data(), idx.data()); })
            && throws([&] { det::runIterate(l, bad, f.data(), g.data(), 1, 0, nullptr); })
            && throws([&] { det::runIterate(l, p, nullptr, g.data(), 1, 0, nullptr); })
            && throws([&] {
                   det::runIterate(l, p, f.data(), g.data(), 1, det::kLseVariantCount, nullptr);
               })
            && throws([&] { det::runColMass(l, p, f.data(), nullptr, nullptr); });
        det::runTopK(l, p, f.data(), g.data(), 0, vals.data(), idx.data()); // k = 0: nothing
        det::runIterate(l, p, f.data(), g.data(), 0, 0, nullptr); // no iterations: nothing
        report(ok && l.launches == 0 && vals[0] == 1.0f && idx[0] == 5, "argument checks",
            ok ? "bad sizes, k, variants and null pointers throw std::invalid_argument; no-ops "
                 "launch nothing"
               : "an invalid call did not throw");
    }
    std::printf(
        "     splitmix64 reference values: G(seed=42,b=1,i=2,j=3) = %.17g, u(0,0,0,0) = %.17g\n",
        det::gumbelNoise(42, 1, 2, 3), det::counterUniform(0, 0, 0, 0));
}
#endif

} // namespace

int main(int argc, char** argv)
{
    // --quick: the small cases; --tiny: two small cases for compute-sanitizer.
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const bool tiny = argc > 1 && std::strcmp(argv[1], "--tiny") == 0;
    const auto t0 = std::chrono::steady_clock::now();
#if defined(WFM_CUDA_EMULATION)
    std::printf("fused Sinkhorn kernels under host emulation (bench/gpu/emu)\n");
    checkHelpers();
#else
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
        std::printf("no CUDA device\n0 passed, 1 failed\n");
        return 1;
    }
    std::printf("fused Sinkhorn kernels on %s\n", prop.name);
#endif
    std::vector<Case> cases;
    if (tiny) {
        cases.push_back({ "tiny d3 eps.001 it3 far apart warm", 2, 150, 140, 3, 0.001, 3, true, 6.0,
            0.0, true });
        cases.push_back({ "tiny d5 eps.002 it3 empty pairs", 4, 40, 70, 5, 0.002, 3, false, 0.0,
            0.0, false, true });
        cases.push_back({ "tiny d2 eps.001 it2 two tiles far apart warm", 1, 530, 600, 2, 0.001, 2,
            false, 6.0, 0.0, true });
    } else {
        //            name                         B  N    M    d  relEps iters
        cases.push_back({ "d3 eps.002 it10", 3, 150, 133, 3, 0.002, 10 });
        cases.push_back({ "d2 eps.01 it10 scattered", 2, 97, 140, 2, 0.01, 10, true });
        cases.push_back({ "d5 eps.002 it10 generic", 2, 130, 70, 5, 0.002, 10 });
        cases.push_back(
            { "d3 eps.001 it10 far apart warm", 2, 120, 110, 3, 0.001, 10, false, 6.0, 0.0, true });
        cases.push_back({ "d3 eps.002 it8 offset 300 empty pairs", 4, 70, 90, 3, 0.002, 8, false,
            0.0, 300.0, false, true });
        cases.push_back({ "d2 eps.001 it6 sorted points far apart warm", 2, 300, 700, 2, 0.001, 6,
            false, 4.0, 0.0, true, false, true });
    }
    if (!quick && !tiny) {
        cases.push_back({ "d3 eps.002 it40 N600 (tiles)", 1, 600, 530, 3, 0.002, 40 });
        cases.push_back({ "d2 eps.001 it60", 2, 200, 180, 2, 0.001, 60 });
        cases.push_back({ "d1 eps.01 it20 generic", 2, 60, 50, 1, 0.01, 20 });
#if !defined(WFM_CUDA_EMULATION)
        cases.push_back({ "d3 eps.002 it200 N1100", 2, 1100, 1000, 3, 0.002, 200 });
        cases.push_back({ "d3 eps.001 it200 N700 scattered", 3, 700, 650, 3, 0.001, 200, true });
        cases.push_back({ "d2 eps.002 it200 N900", 2, 900, 1000, 2, 0.002, 200 });
        cases.push_back({ "d5 eps.01 it200 generic", 2, 500, 450, 5, 0.01, 200 });
#endif
    }
    std::uint64_t seed = 1000;
    for (const Case& c : cases) {
        const Host h = makeProblem(c, seed++);
        std::vector<float> f, g;
        checkMaxCost(c, h);
        checkIterate(c, h, f, g, true);
        checkPlanPasses(c, h, f, g);
    }
    const double secs
        = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("time %.1f s\n%d passed, %d failed\n", secs, gPassed, gFailed);
    return gFailed == 0 ? 0 : 1;
}
