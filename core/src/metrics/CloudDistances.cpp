#include "wfm/metrics/CloudDistances.h"

#include "wfm/Error.h"
#include "wfm/Parallel.h"
#include "wfm/ot/ExactOT.h"
#include "wfm/ot/Sinkhorn.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

namespace wfm::metrics {
namespace {

// Entries of a squared-distance block formed at once by tensor code. CPU: blocks of ~1 MB stay
// in the caches and avoid a fresh page-faulting allocation per block (measured: 2^18 entries ran
// 1.7x faster than 2^22 for 512-point clouds); CUDA: large blocks keep the GPU busy.
constexpr std::int64_t kCpuBlockEntries = std::int64_t { 1 } << 18;
constexpr std::int64_t kCudaBlockEntries = std::int64_t { 1 } << 27;
// Pairs handed to the exact solver at once (it spreads them over threads with parallelFor);
// the batch of coordinates it copies is tiny next to the solve.
constexpr std::int64_t kExactPairsPerBlock = 256;

std::int64_t blockEntries(const torch::Tensor& t)
{
    return t.is_cuda() ? kCudaBlockEntries : kCpuBlockEntries;
}

c10::IntArrayRef sizesOf(const torch::Tensor& t)
{
    return t.defined() ? t.sizes() : c10::IntArrayRef {};
}

/// A validated batch of clouds: points [K,N,d] and weights [K,N] (normalised, points' dtype and
/// device).
struct Clouds
{
    torch::Tensor points;
    torch::Tensor weights;
};

Clouds checkClouds(
    const torch::Tensor& points, const torch::Tensor& weights, const char* pName, const char* wName)
{
    Clouds c;
    c.weights = validateClouds(points, weights, pName, wName);
    c.points = points.detach();
    return c;
}

void checkPair(const Clouds& a, const Clouds& b, const char* aName, const char* bName)
{
    WFM_CHECK(a.points.scalar_type() == b.points.scalar_type(), aName, " is ",
        a.points.scalar_type(), " but ", bName, " is ", b.points.scalar_type());
    WFM_CHECK(a.points.device() == b.points.device(), aName, " is on ", a.points.device(), " but ",
        bName, " is on ", b.points.device());
    WFM_CHECK(a.points.size(2) == b.points.size(2), aName, " and ", bName,
        " must have the same point dimension, got ", a.points.sizes(), " and ", b.points.sizes());
}

void checkAligned(const Clouds& a, const Clouds& b)
{
    checkPair(a, b, "x", "y");
    WFM_CHECK(a.points.size(0) == b.points.size(0),
        "x and y must hold the same number of clouds, got ", a.points.sizes(), " and ",
        b.points.sizes());
}

void checkEmdOptions(const EmdOptions& o)
{
    if (o.entropic) {
        WFM_CHECK(
            std::isfinite(o.eps) && o.eps > 0, "EmdOptions.eps must be positive, got ", o.eps);
        WFM_CHECK(o.iterations >= 1, "EmdOptions.iterations must be >= 1, got ", o.iterations);
    }
}

/// Aligned Chamfer distances of validated clouds by tensor operations: [B] float64 on the device.
torch::Tensor chamferTensor(const torch::Tensor& x, const torch::Tensor& wx, const torch::Tensor& y,
    const torch::Tensor& wy, std::int64_t rowChunk)
{
    const std::int64_t b = x.size(0);
    const std::int64_t n = x.size(1);
    const std::int64_t m = y.size(1);
    const auto f64 = x.options().dtype(torch::kDouble);
    if (b == 0) {
        return torch::zeros({ 0 }, f64);
    }
    const double inf = std::numeric_limits<double>::infinity();
    // |x|^2 + |y|^2 - 2 x.y loses about eps * |x|^2 to cancellation; centring each pair on x's
    // weighted mean makes |x|^2 the cloud's spread rather than its distance from the origin.
    const torch::Tensor centre = (wx.unsqueeze(2) * x).sum(1, true);
    const torch::Tensor xs = x - centre;
    const torch::Tensor ys = y - centre;
    // +inf norms make every distance to a padded point +inf, so padding drops out of both minima
    // without a separate mask pass over the [B,rows,M] block.
    const torch::Tensor x2 = (xs * xs).sum(2).masked_fill_(wx <= 0, inf);
    const torch::Tensor y2 = (ys * ys).sum(2).masked_fill_(wy <= 0, inf).unsqueeze(1);
    const torch::Tensor ysT = ys.transpose(1, 2);

    std::int64_t rows = rowChunk > 0
        ? rowChunk
        : std::max<std::int64_t>(1, blockEntries(x) / std::max<std::int64_t>(1, b * m));
    rows = std::min(rows, n);
    torch::Tensor colMin = torch::full({ b, m }, inf, x.options());
    torch::Tensor rowTerm = torch::zeros({ b }, f64);
    for (std::int64_t r0 = 0; r0 < n; r0 += rows) {
        const std::int64_t r1 = std::min(n, r0 + rows);
        torch::Tensor d = x2.slice(1, r0, r1).unsqueeze(2) + y2;
        d.baddbmm_(xs.slice(1, r0, r1), ysT, /*beta=*/1.0, /*alpha=*/-2.0);
        const torch::Tensor rowMin = d.amin(2).clamp_min_(0.0).to(torch::kDouble);
        const torch::Tensor w = wx.slice(1, r0, r1).to(torch::kDouble);
        // Padded rows have an infinite minimum; select before multiplying (0 * inf = NaN).
        rowTerm += (w * torch::where(w > 0, rowMin, torch::zeros_like(rowMin))).sum(1);
        colMin = torch::minimum(colMin, d.amin(1));
    }
    const torch::Tensor cm = colMin.clamp_min_(0.0).to(torch::kDouble);
    const torch::Tensor w = wy.to(torch::kDouble);
    return rowTerm + (w * torch::where(w > 0, cm, torch::zeros_like(cm))).sum(1);
}

// GCC vectorises the running minima (`m = v < m ? v : m`) only when it may ignore NaN and signed
// zeros; the loop kernel's inputs are finite (validated, padding compacted away, no infinite
// sentinels), so this changes no result. Measured: 1.6x faster for 512-point clouds in 3-D.
#if defined(__GNUC__) && !defined(__clang__)
#define WFM_MINIMA_VECTORISE __attribute__((optimize("finite-math-only", "no-signed-zeros")))
#else
#define WFM_MINIMA_VECTORISE
#endif

/// CD of one pair by direct loops. x [n,d] row-major with weights wx [n] (zero rows skipped);
/// yT [d,stride] holding the m live points of y as columns 0..m-1 (transposed, compacted) with
/// weights wy [m] > 0; dist and colMin are scratch of m entries. D > 0 fixes the dimension at
/// compile time (D == 0: runtime d).
template <typename T, int D>
WFM_MINIMA_VECTORISE double chamferPairLoop(const T* __restrict x, const T* __restrict wx,
    std::int64_t n, const T* __restrict yT, std::int64_t stride, const T* __restrict wy,
    std::int64_t m, std::int64_t dRuntime, T* __restrict dist, T* __restrict colMin)
{
    const std::int64_t d = D > 0 ? D : dRuntime;
    const T big = std::numeric_limits<T>::max();
    std::fill(colMin, colMin + m, big);
    double rowTerm = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        if (!(wx[i] > 0)) {
            continue;
        }
        const T* xi = x + i * d;
        T rowMin = big;
        if constexpr (D > 0) {
            for (std::int64_t j = 0; j < m; ++j) {
                T s = 0;
                for (int k = 0; k < D; ++k) {
                    const T t = xi[k] - yT[k * stride + j];
                    s += t * t;
                }
                rowMin = s < rowMin ? s : rowMin;
                colMin[j] = s < colMin[j] ? s : colMin[j];
            }
        } else {
            std::fill(dist, dist + m, T(0));
            for (std::int64_t k = 0; k < d; ++k) {
                const T xk = xi[k];
                const T* yk = yT + k * stride;
                for (std::int64_t j = 0; j < m; ++j) {
                    const T t = xk - yk[j];
                    dist[j] += t * t;
                }
            }
            for (std::int64_t j = 0; j < m; ++j) {
                const T s = dist[j];
                rowMin = s < rowMin ? s : rowMin;
                colMin[j] = s < colMin[j] ? s : colMin[j];
            }
        }
        rowTerm += static_cast<double>(wx[i]) * static_cast<double>(rowMin);
    }
    double colTerm = 0.0;
    for (std::int64_t j = 0; j < m; ++j) {
        colTerm += static_cast<double>(wy[j]) * static_cast<double>(colMin[j]);
    }
    return rowTerm + colTerm;
}

template <typename T>
using PairLoopFn = double (*)(const T*, const T*, std::int64_t, const T*, std::int64_t, const T*,
    std::int64_t, std::int64_t, T*, T*);

template <typename T>
PairLoopFn<T> pairLoopFor(std::int64_t d)
{
    switch (d) {
    case 1:
        return &chamferPairLoop<T, 1>;
    case 2:
        return &chamferPairLoop<T, 2>;
    case 3:
        return &chamferPairLoop<T, 3>;
    default:
        return &chamferPairLoop<T, 0>;
    }
}

/// CD(X[p_k], Y[q_k]) by the loop kernel for the index lists p, q (int64 CPU): [K] float64 CPU.
template <typename T>
torch::Tensor chamferLoopPairs(
    const Clouds& a, const Clouds& b, const torch::Tensor& p, const torch::Tensor& q)
{
    const std::int64_t n = a.points.size(1);
    const std::int64_t m = b.points.size(1);
    const std::int64_t d = a.points.size(2);
    const torch::Tensor x = a.points.to(torch::kCPU).contiguous();
    const torch::Tensor wx = a.weights.to(torch::kCPU).contiguous();
    // y's live points first (stable order), transposed to [Q,d,M], so the kernel runs over
    // exactly the m_q live columns with no masking.
    const torch::Tensor wyAll = b.weights.to(torch::kCPU);
    const torch::Tensor order = std::get<1>(torch::sort(
        (wyAll <= 0).to(torch::kInt), /*stable=*/true, /*dim=*/1, /*descending=*/false));
    const torch::Tensor wy = wyAll.gather(1, order).contiguous();
    const torch::Tensor yT = b.points.to(torch::kCPU)
                                 .gather(1, order.unsqueeze(2).expand({ -1, -1, d }))
                                 .transpose(1, 2)
                                 .contiguous();
    const torch::Tensor live = (wyAll > 0).sum(1).to(torch::kLong).contiguous();
    const torch::Tensor pc = p.to(torch::kCPU, torch::kLong).contiguous();
    const torch::Tensor qc = q.to(torch::kCPU, torch::kLong).contiguous();
    const std::int64_t count = pc.size(0);
    torch::Tensor out = torch::empty({ count }, torch::kDouble);
    const T* px = x.data_ptr<T>();
    const T* pwx = wx.data_ptr<T>();
    const T* pyT = yT.data_ptr<T>();
    const T* pwy = wy.data_ptr<T>();
    const std::int64_t* pl = live.data_ptr<std::int64_t>();
    const std::int64_t* pi = pc.data_ptr<std::int64_t>();
    const std::int64_t* qi = qc.data_ptr<std::int64_t>();
    double* po = out.data_ptr<double>();
    const PairLoopFn<T> kernel = pairLoopFor<T>(d);
    wfm::parallelFor(count, [&](std::int64_t begin, std::int64_t end) {
        std::vector<T> dist(static_cast<std::size_t>(m));
        std::vector<T> colMin(static_cast<std::size_t>(m));
        for (std::int64_t k = begin; k < end; ++k) {
            const std::int64_t u = pi[k];
            const std::int64_t v = qi[k];
            po[k] = kernel(px + u * n * d, pwx + u * n, n, pyT + v * d * m, m, pwy + v * m, pl[v],
                d, dist.data(), colMin.data());
        }
    });
    return out;
}

torch::Tensor chamferLoop(
    const Clouds& a, const Clouds& b, const torch::Tensor& p, const torch::Tensor& q)
{
    return a.points.scalar_type() == torch::kDouble ? chamferLoopPairs<double>(a, b, p, q)
                                                    : chamferLoopPairs<float>(a, b, p, q);
}

bool useLoop(const Clouds& a, const ChamferOptions& o)
{
    switch (o.backend) {
    case ChamferBackend::Loop:
        return true;
    case ChamferBackend::Tensor:
        return false;
    case ChamferBackend::Auto:
        break;
    }
    return a.points.is_cpu();
}

void checkChamferOptions(const ChamferOptions& o)
{
    WFM_CHECK(o.rowChunk >= 0, "ChamferOptions.rowChunk must be >= 0, got ", o.rowChunk);
}

/// Aligned entropic costs of validated clouds: [B] float64 on the device.
torch::Tensor entropicKernel(const torch::Tensor& x, const torch::Tensor& wx,
    const torch::Tensor& y, const torch::Tensor& wy, double eps, int iterations)
{
    if (x.size(0) == 0) {
        return torch::zeros({ 0 }, x.options().dtype(torch::kDouble));
    }
    ot::SinkhornOptions opt;
    opt.setEps(eps, ot::EpsMode::Relative).setIterations(iterations);
    // float32 so that SinkhornBackend::Auto picks the fused kernel (it runs in float32 anyway).
    const ot::SinkhornResult r = ot::sinkhorn(
        x.to(torch::kFloat), y.to(torch::kFloat), wx.to(torch::kFloat), wy.to(torch::kFloat), opt);
    return r.cost.to(x.device(), torch::kDouble);
}

/// Aligned exact W2^2 of validated clouds: [B] float64 CPU.
torch::Tensor exactKernel(const torch::Tensor& x, const torch::Tensor& wx, const torch::Tensor& y,
    const torch::Tensor& wy)
{
    if (x.size(0) == 0) {
        return torch::zeros({ 0 }, torch::kDouble);
    }
    // Renormalised in float64: float32 weights can miss the solver's 1e-6 mass tolerance.
    auto toDouble = [](const torch::Tensor& w) {
        const torch::Tensor wd = w.to(torch::kCPU, torch::kDouble);
        return wd / wd.sum(1, true);
    };
    return ot::exactEmdBatched(x.to(torch::kCPU, torch::kDouble), y.to(torch::kCPU, torch::kDouble),
        toDouble(wx), toDouble(wy));
}

using AlignedFn = std::function<torch::Tensor(
    const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>;
/// Distances of the pairs (X[p_k], Y[q_k]) for index lists p, q (int64 CPU): [K] float64 CPU.
using PairFn = std::function<torch::Tensor(
    const Clouds&, const Clouds&, const torch::Tensor&, const torch::Tensor&)>;

/// A PairFn applying `aligned` to gathered blocks of pairsPerBlock pairs.
PairFn blockedPairs(std::int64_t pairsPerBlock, AlignedFn aligned)
{
    return [pairsPerBlock, aligned = std::move(aligned)](
               const Clouds& a, const Clouds& b, const torch::Tensor& p, const torch::Tensor& q) {
        const std::int64_t count = p.size(0);
        torch::Tensor out = torch::empty({ count }, torch::kDouble);
        const auto device = a.points.device();
        for (std::int64_t k0 = 0; k0 < count; k0 += pairsPerBlock) {
            const std::int64_t k1 = std::min(count, k0 + pairsPerBlock);
            const torch::Tensor pi = p.slice(0, k0, k1).to(device);
            const torch::Tensor qi = q.slice(0, k0, k1).to(device);
            out.slice(0, k0, k1).copy_(
                aligned(a.points.index_select(0, pi), a.weights.index_select(0, pi),
                    b.points.index_select(0, qi), b.weights.index_select(0, qi)));
        }
        return out;
    };
}

/// All pairs (p,q) of a P x Q grid: [P,Q] float64 CPU.
torch::Tensor fullMatrix(const Clouds& a, const Clouds& b, const PairFn& pairs)
{
    const std::int64_t np = a.points.size(0);
    const std::int64_t nq = b.points.size(0);
    const auto i64 = torch::TensorOptions().dtype(torch::kLong);
    const torch::Tensor p = torch::arange(np, i64).repeat_interleave(nq);
    const torch::Tensor q = torch::arange(nq, i64).repeat({ np });
    return pairs(a, b, p, q).view({ np, nq });
}

/// Unordered pairs p < q of one set, mirrored: [P,P] float64 CPU with a zero diagonal.
torch::Tensor selfMatrix(const Clouds& a, const PairFn& pairs)
{
    const std::int64_t np = a.points.size(0);
    torch::Tensor out = torch::zeros({ np, np }, torch::kDouble);
    if (np < 2) {
        return out;
    }
    const torch::Tensor idx = torch::triu_indices(np, np, 1);
    const torch::Tensor p = idx[0].contiguous();
    const torch::Tensor q = idx[1].contiguous();
    const torch::Tensor v = pairs(a, a, p, q);
    out.index_put_({ p, q }, v);
    out.index_put_({ q, p }, v);
    return out;
}

PairFn chamferPairs(const Clouds& a, const Clouds& b, const ChamferOptions& o)
{
    if (useLoop(a, o)) {
        return chamferLoop;
    }
    const std::int64_t nm = a.points.size(1) * b.points.size(1);
    const std::int64_t perBlock = std::max<std::int64_t>(1, blockEntries(a.points) / nm);
    const std::int64_t rowChunk = o.rowChunk;
    return blockedPairs(perBlock,
        [rowChunk](const torch::Tensor& x, const torch::Tensor& wx, const torch::Tensor& y,
            const torch::Tensor& wy) { return chamferTensor(x, wx, y, wy, rowChunk).cpu(); });
}

std::int64_t emdPairsPerBlock(const Clouds& a, const Clouds& b, const EmdOptions& o)
{
    if (!o.entropic) {
        return kExactPairsPerBlock;
    }
    // The fused kernels keep only the coordinates and potentials (linear in N + M); the tensor
    // path (devices without a fused kernel) materialises a few [B,N,M] tensors.
    const auto dev = a.points.device();
    const bool fused = dev.is_cpu() || dev.is_cuda();
    const std::int64_t per
        = fused ? a.points.size(1) + b.points.size(1) : a.points.size(1) * b.points.size(1);
    return std::max<std::int64_t>(1, blockEntries(a.points) / per);
}

PairFn emdPairs(const Clouds& a, const Clouds& b, const EmdOptions& o)
{
    if (o.entropic) {
        return blockedPairs(emdPairsPerBlock(a, b, o),
            [o](const torch::Tensor& x, const torch::Tensor& wx, const torch::Tensor& y,
                const torch::Tensor& wy) {
                return entropicKernel(x, wx, y, wy, o.eps, o.iterations).to(torch::kCPU);
            });
    }
    return blockedPairs(emdPairsPerBlock(a, b, o), exactKernel);
}

} // namespace

torch::Tensor validateClouds(const torch::Tensor& points, const torch::Tensor& weights,
    const std::string& pName, const std::string& wName)
{
    WFM_CHECK(points.defined() && points.dim() == 3, pName, " must be points [K,N,d], got ",
        sizesOf(points));
    WFM_CHECK(points.scalar_type() == torch::kFloat || points.scalar_type() == torch::kDouble,
        pName, " must be float32 or float64, got ", points.scalar_type());
    const std::int64_t k = points.size(0);
    const std::int64_t n = points.size(1);
    WFM_CHECK(n > 0, pName, " has empty clouds (N = 0), got ", points.sizes());
    WFM_CHECK(points.size(2) > 0, pName, " has dimension 0, got ", points.sizes());
    WFM_CHECK(k == 0 || torch::isfinite(points).all().item<bool>(), pName, " contains NaN or inf");
    if (!weights.defined()) {
        return torch::full({ k, n }, 1.0 / static_cast<double>(n), points.options());
    }
    WFM_CHECK(weights.dim() == 2 && weights.size(0) == k && weights.size(1) == n, wName,
        " must be [", k, ",", n, "] to match ", pName, ", got ", weights.sizes());
    WFM_CHECK(
        weights.is_floating_point(), wName, " must be floating point, got ", weights.scalar_type());
    if (k == 0) {
        return weights.detach().to(points.options());
    }
    return ot::validateWeights(weights.detach().to(points.device()), points, wName.c_str());
}

torch::Tensor chamferDistance(const torch::Tensor& x, const torch::Tensor& wx,
    const torch::Tensor& y, const torch::Tensor& wy, const ChamferOptions& options)
{
    torch::NoGradGuard noGrad;
    checkChamferOptions(options);
    const Clouds a = checkClouds(x, wx, "x", "wx");
    const Clouds b = checkClouds(y, wy, "y", "wy");
    checkAligned(a, b);
    if (useLoop(a, options)) {
        const torch::Tensor idx = torch::arange(a.points.size(0), torch::kLong);
        return chamferLoop(a, b, idx, idx).to(a.points.device());
    }
    return chamferTensor(a.points, a.weights, b.points, b.weights, options.rowChunk);
}

torch::Tensor chamferMatrix(const torch::Tensor& X, const torch::Tensor& wX, const torch::Tensor& Y,
    const torch::Tensor& wY, const ChamferOptions& options)
{
    torch::NoGradGuard noGrad;
    checkChamferOptions(options);
    const Clouds a = checkClouds(X, wX, "X", "wX");
    const Clouds b = checkClouds(Y, wY, "Y", "wY");
    checkPair(a, b, "X", "Y");
    return fullMatrix(a, b, chamferPairs(a, b, options));
}

torch::Tensor chamferMatrix(
    const torch::Tensor& X, const torch::Tensor& wX, const ChamferOptions& options)
{
    torch::NoGradGuard noGrad;
    checkChamferOptions(options);
    const Clouds a = checkClouds(X, wX, "X", "wX");
    return selfMatrix(a, chamferPairs(a, a, options));
}

torch::Tensor emdDistance(const torch::Tensor& x, const torch::Tensor& wx, const torch::Tensor& y,
    const torch::Tensor& wy, const EmdOptions& options)
{
    torch::NoGradGuard noGrad;
    checkEmdOptions(options);
    const Clouds a = checkClouds(x, wx, "x", "wx");
    const Clouds b = checkClouds(y, wy, "y", "wy");
    checkAligned(a, b);
    if (options.entropic) {
        return entropicKernel(
            a.points, a.weights, b.points, b.weights, options.eps, options.iterations);
    }
    return exactKernel(a.points, a.weights, b.points, b.weights);
}

torch::Tensor emdMatrix(const torch::Tensor& X, const torch::Tensor& wX, const torch::Tensor& Y,
    const torch::Tensor& wY, const EmdOptions& options)
{
    torch::NoGradGuard noGrad;
    checkEmdOptions(options);
    const Clouds a = checkClouds(X, wX, "X", "wX");
    const Clouds b = checkClouds(Y, wY, "Y", "wY");
    checkPair(a, b, "X", "Y");
    return fullMatrix(a, b, emdPairs(a, b, options));
}

torch::Tensor emdMatrix(const torch::Tensor& X, const torch::Tensor& wX, const EmdOptions& options)
{
    torch::NoGradGuard noGrad;
    checkEmdOptions(options);
    const Clouds a = checkClouds(X, wX, "X", "wX");
    return selfMatrix(a, emdPairs(a, a, options));
}

torch::Tensor entropicCost(const torch::Tensor& x, const torch::Tensor& wx, const torch::Tensor& y,
    const torch::Tensor& wy, double eps, int iterations)
{
    return emdDistance(
        x, wx, y, wy, EmdOptions {}.setEntropic(true).setEps(eps).setIterations(iterations));
}

} // namespace wfm::metrics
