#include "wfm/ot/Sinkhorn.h"

#include "ot/FusedSinkhorn.h"
#include "wfm/Error.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace wfm::ot {
namespace {

constexpr double kWeightSumTolerance = 1e-4;
// Entries processed at once when a quantity is reduced over N x M without keeping the matrix.
constexpr int64_t kChunkEntries = int64_t(1) << 22;

struct Batched
{
    torch::Tensor x, y, a, b;
    bool squeeze = false;
};

Batched prepare(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b)
{
    WFM_CHECK(x.defined() && y.defined(), "sinkhorn: source and target points are required");
    WFM_CHECK(x.dim() == 2 || x.dim() == 3, "sinkhorn: source points must be [N,d] or [B,N,d], got ",
        x.sizes());
    WFM_CHECK(y.dim() == x.dim(), "sinkhorn: source ", x.sizes(), " and target ", y.sizes(),
        " must both be batched or both unbatched");
    WFM_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble,
        "sinkhorn: points must be float32 or float64, got ", x.scalar_type());
    WFM_CHECK(y.scalar_type() == x.scalar_type(), "sinkhorn: source is ", x.scalar_type(),
        " but target is ", y.scalar_type());
    WFM_CHECK(x.device() == y.device(), "sinkhorn: source on ", x.device(), " but target on ",
        y.device());
    Batched p;
    p.squeeze = x.dim() == 2;
    p.x = p.squeeze ? x.unsqueeze(0) : x;
    p.y = p.squeeze ? y.unsqueeze(0) : y;
    WFM_CHECK(p.x.size(0) == p.y.size(0), "sinkhorn: batch sizes differ: ", p.x.size(0), " vs ",
        p.y.size(0));
    WFM_CHECK(p.x.size(2) == p.y.size(2), "sinkhorn: dimension mismatch: source d=", p.x.size(2),
        ", target d=", p.y.size(2));
    WFM_CHECK(p.x.size(1) > 0 && p.y.size(1) > 0, "sinkhorn: empty point cloud");
    WFM_CHECK(torch::isfinite(p.x).all().item<bool>(), "sinkhorn: source points contain NaN or inf");
    WFM_CHECK(torch::isfinite(p.y).all().item<bool>(), "sinkhorn: target points contain NaN or inf");
    auto batchWeights = [&](const torch::Tensor& w, const torch::Tensor& pts, const char* what) {
        if (!w.defined()) {
            return uniformWeights(pts);
        }
        torch::Tensor wb = p.squeeze && w.dim() == 1 ? w.unsqueeze(0) : w;
        return validateWeights(wb.to(pts.device()), pts, what);
    };
    p.a = batchWeights(a, p.x, "source weights");
    p.b = batchWeights(b, p.y, "target weights");
    return p;
}

torch::Tensor logOrMinusInf(const torch::Tensor& w)
{
    auto lw = torch::log(w);
    return torch::where(w > 0, lw, torch::full_like(lw, -std::numeric_limits<double>::infinity()));
}

/// max_ij C_ij over live pairs, per pair, without keeping an N x M matrix for large clouds.
torch::Tensor maxLiveCost(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b)
{
    const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
    const int64_t rowsPerChunk = std::max<int64_t>(1, kChunkEntries / std::max<int64_t>(1, M * B));
    auto colLive = (b > 0).unsqueeze(1); // [B,1,M]
    // Reduced in the input dtype (no float64 copy of each chunk), accumulated in float64.
    torch::Tensor best = torch::zeros({ B }, x.options().dtype(torch::kDouble));
    for (int64_t r0 = 0; r0 < N; r0 += rowsPerChunk) {
        const int64_t r1 = std::min(N, r0 + rowsPerChunk);
        auto C = squaredDistances(x.slice(1, r0, r1), y);
        auto live = (a.slice(1, r0, r1) > 0).unsqueeze(2) & colLive;
        C.masked_fill_(~live, 0.0);
        best = torch::maximum(best, C.amax({ 1, 2 }).to(torch::kDouble));
    }
    return best;
}

/// eps of each pair [B] (float64); a relative eps scales the largest live cost, found by the
/// fused kernel when the solve runs fused (one pass, no N x M chunks) and by tensor operations
/// otherwise.
torch::Tensor pairEps(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornOptions& opt, bool useFused)
{
    WFM_CHECK(std::isfinite(opt.eps) && opt.eps > 0, "sinkhorn: eps must be positive, got ", opt.eps);
    if (opt.epsMode == EpsMode::Absolute) {
        return torch::full({ x.size(0) }, opt.eps, x.options().dtype(torch::kDouble));
    }
    auto maxC = useFused ? fused::maxLiveCost(x, y, a, b) : maxLiveCost(x, y, a, b);
    // A pair whose points all coincide has max cost 0: any positive eps gives the same plan.
    maxC = torch::where(maxC > 0, maxC, torch::ones_like(maxC));
    return maxC * opt.eps;
}

/// LSE over the last axis of pot[..., None, :] - K, with -inf rows mapped to 0.
torch::Tensor lseLast(const torch::Tensor& K)
{
    auto m = std::get<0>(K.max(-1, true));
    auto finite = torch::isfinite(m);
    m = torch::where(finite, m, torch::zeros_like(m));
    auto s = (K - m).exp_().sum(-1).log_().add_(m.squeeze(-1));
    return s;
}

SinkhornResult tensorSinkhorn(const Batched& p, const torch::Tensor& eps, const SinkhornOptions& opt)
{
    const auto dtype = p.x.scalar_type();
    auto C = squaredDistances(p.x, p.y); // [B,N,M]
    auto epsT = eps.to(dtype).view({ -1, 1, 1 });
    auto Ce = C / epsT;
    auto loga = logOrMinusInf(p.a);
    auto logb = logOrMinusInf(p.b);
    auto fe = torch::zeros_like(loga); // f / eps
    auto ge = torch::zeros_like(logb); // g / eps
    auto liveA = p.a > 0, liveB = p.b > 0;

    auto marginalError = [&]() {
        auto logP = loga.unsqueeze(2) + logb.unsqueeze(1) + fe.unsqueeze(2) + ge.unsqueeze(1) - Ce;
        auto P = logP.exp().to(torch::kDouble);
        return (P.sum(2) - p.a.to(torch::kDouble)).abs().sum(1)
            + (P.sum(1) - p.b.to(torch::kDouble)).abs().sum(1);
    };

    int it = 0;
    while (it < opt.maxIterations) {
        // g_j / eps = -LSE_i(loga_i + f_i/eps - C_ij/eps)
        auto lg = lseLast((loga + fe).unsqueeze(2).sub(Ce).transpose(1, 2));
        ge = torch::where(liveB & torch::isfinite(lg), -lg, torch::zeros_like(lg));
        auto lf = lseLast((logb + ge).unsqueeze(1).sub(Ce));
        fe = torch::where(liveA & torch::isfinite(lf), -lf, torch::zeros_like(lf));
        ++it;
        if (opt.tolerance > 0 && (it % std::max(1, opt.checkEvery) == 0)) {
            if (marginalError().max().item<double>() < opt.tolerance) {
                break;
            }
        }
    }

    SinkhornResult r;
    r.iterations = it;
    r.eps = eps;
    r.f = fe * epsT.view({ -1, 1 });
    r.g = ge * epsT.view({ -1, 1 });
    auto logP = loga.unsqueeze(2) + logb.unsqueeze(1) + fe.unsqueeze(2) + ge.unsqueeze(1) - Ce;
    auto P = logP.exp();
    r.cost = (P.to(torch::kDouble) * C.to(torch::kDouble)).sum({ 1, 2 });
    r.marginalError = (P.to(torch::kDouble).sum(2) - p.a.to(torch::kDouble)).abs().sum(1)
        + (P.to(torch::kDouble).sum(1) - p.b.to(torch::kDouble)).abs().sum(1);
    if (opt.computePlan) {
        r.plan = P;
    }
    return r;
}

} // namespace

torch::Tensor uniformWeights(const torch::Tensor& x)
{
    WFM_CHECK(x.dim() == 3, "uniformWeights: points must be [B,N,d], got ", x.sizes());
    return torch::full({ x.size(0), x.size(1) }, 1.0 / static_cast<double>(x.size(1)), x.options());
}

torch::Tensor validateWeights(const torch::Tensor& w, const torch::Tensor& points, const char* what)
{
    WFM_CHECK(w.dim() == 2 && w.size(0) == points.size(0) && w.size(1) == points.size(1), what,
        " must be [", points.size(0), ",", points.size(1), "] to match the points, got ", w.sizes());
    auto wd = w.to(torch::kDouble);
    WFM_CHECK(torch::isfinite(wd).all().item<bool>(), what, " contain NaN or inf");
    WFM_CHECK((wd >= 0).all().item<bool>(), what, " contain negative values");
    auto sums = wd.sum(1);
    WFM_CHECK((sums > 0).all().item<bool>(), what, " sum to zero for some cloud");
    const double maxDev = (sums - 1.0).abs().max().item<double>();
    WFM_CHECK(maxDev <= kWeightSumTolerance, what, " must sum to 1 per cloud (off by ", maxDev, ")");
    return (wd / sums.unsqueeze(1)).to(points.scalar_type());
}

torch::Tensor squaredDistances(const torch::Tensor& x, const torch::Tensor& y)
{
    auto x2 = (x * x).sum(-1);
    auto y2 = (y * y).sum(-1);
    auto D = torch::baddbmm(x2.unsqueeze(2) + y2.unsqueeze(1), x, y.transpose(1, 2), /*beta=*/1.0, /*alpha=*/-2.0);
    return D.clamp_min_(0.0);
}

torch::Tensor logPlan(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& r)
{
    auto p = prepare(x, y, a, b);
    const auto dtype = p.x.scalar_type();
    auto epsT = r.eps.to(dtype).view({ -1, 1, 1 });
    auto C = squaredDistances(p.x, p.y);
    auto f = r.f.to(dtype).reshape({ p.x.size(0), p.x.size(1) });
    auto g = r.g.to(dtype).reshape({ p.y.size(0), p.y.size(1) });
    auto lp = logOrMinusInf(p.a).unsqueeze(2) + logOrMinusInf(p.b).unsqueeze(1)
        + (f.unsqueeze(2) + g.unsqueeze(1) - C) / epsT;
    return p.squeeze ? lp.squeeze(0) : lp;
}

SinkhornResult sinkhorn(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornOptions& opt)
{
    torch::NoGradGuard noGrad;
    WFM_CHECK(opt.maxIterations >= 0, "sinkhorn: iterations must be >= 0, got ", opt.maxIterations);
    WFM_CHECK(opt.tolerance >= 0 && std::isfinite(opt.tolerance),
        "sinkhorn: tolerance must be >= 0, got ", opt.tolerance);
    auto p = prepare(x, y, a, b);

    bool useFused = false;
    switch (opt.backend) {
    case SinkhornBackend::Tensor:
        break;
    case SinkhornBackend::Fused:
        WFM_CHECK(fused::available(p.x), "sinkhorn: no fused kernel for ", p.x.device(), " / ",
            p.x.scalar_type(), " in this build");
        useFused = true;
        break;
    case SinkhornBackend::Auto:
        useFused = fused::preferred(p.x);
        break;
    }

    auto eps = pairEps(p.x, p.y, p.a, p.b, opt, useFused);
    SinkhornResult r;
    if (useFused) {
        r = fused::solve(p.x, p.y, p.a, p.b, eps, opt);
    } else {
        r = tensorSinkhorn(p, eps, opt);
    }
    if (p.squeeze) {
        r.f = r.f.squeeze(0);
        r.g = r.g.squeeze(0);
        if (r.plan.defined()) {
            r.plan = r.plan.squeeze(0);
        }
    }
    return r;
}

} // namespace wfm::ot
