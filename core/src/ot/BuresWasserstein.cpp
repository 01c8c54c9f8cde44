#include "wfm/ot/BuresWasserstein.h"

#include "wfm/Error.h"
#include "wfm/Log.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <initializer_list>
#include <string>
#include <tuple>
#include <vector>

namespace wfm::ot::bw {
namespace {

using torch::Tensor;

// Smallest positive value used to keep rsqrt / division finite before a mask zeroes the entry
// (inf * 0 would give NaN).
constexpr double kTiny = 1e-300;
// Relative size of the residual R (trace against tr S1) above which velocity() switches to the
// Lyapunov solve. Round-off leaves R at about (1e-16 * cond)^2 of tr S1 when a map exists.
constexpr double kResidualRel = 1e-12;
// Relative cutoffs of the pseudo-inverses in the velocity: (1-t) + t a_i against max(1, max a),
// and mu_i + mu_j against max mu (Lyapunov). Both only catch exact zeros up to round-off.
constexpr double kVelocityRcond = 1e-12;
constexpr double kLyapunovRcond = 1e-12;
// Number of float64 entries of the [block, Q, d, d] stack that pairwiseDistanceSquared() builds at
// once (32 MiB).
constexpr int64_t kPairwiseBudget = int64_t(1) << 22;

Tensor sym(const Tensor& S)
{
    return 0.5 * (S + S.transpose(-1, -2));
}

// V diag(values) V^T, symmetrised. V [..., d, d] (eigenvectors in columns), values [..., d].
Tensor fromEigen(const Tensor& V, const Tensor& values)
{
    return sym(torch::matmul(V * values.unsqueeze(-2), V.transpose(-1, -2)));
}

// cuSOLVER's batched symmetric eigensolver (cusolverDnXsyevBatched, PyTorch 2.11 / CUDA 13 on an
// H100) fails with CUSOLVER_STATUS_INTERNAL_ERROR on large batches: 65536 float64 matrices of 2 x 2
// or 8 x 8 failed every time, 32768 and fewer did not. On CUDA the batch is therefore split into
// chunks of kCudaEigenBatch matrices (no measurable cost: a 256 x 256 pairwise d = 8 took 5.8 ms),
// and a failure that still happens is retried on the CPU (warning once) rather than ending a
// training run.
constexpr int64_t kCudaEigenBatch = 4096;

void warnCpuFallback(const c10::Error& e)
{
    static std::atomic<bool> warned { false };
    if (!warned.exchange(true)) {
        std::string what = e.what();
        what = what.substr(0, std::min(what.find('\n'), what.find('`')));
        wfm::log::warn("Bures-Wasserstein: the device's eigensolver failed (" + what
            + "); computing eigendecompositions on the CPU where that happens");
    }
}

// Runs f (eigenvalues only, or eigenvalues and vectors) on a CUDA batch in chunks, falling back to
// the CPU for a chunk whose solve throws.
template <typename F>
std::vector<Tensor> cudaEigen(const Tensor& X, F&& f)
{
    const auto d = X.size(-1);
    const Tensor flat = X.reshape({ -1, d, d });
    std::vector<std::vector<Tensor>> parts;
    for (int64_t i = 0; i < flat.size(0); i += kCudaEigenBatch) {
        const Tensor chunk = flat.slice(0, i, std::min(flat.size(0), i + kCudaEigenBatch));
        try {
            parts.push_back(f(chunk));
        } catch (const c10::Error& e) {
            warnCpuFallback(e);
            std::vector<Tensor> r = f(chunk.cpu());
            for (Tensor& t : r) {
                t = t.to(X.device());
            }
            parts.push_back(std::move(r));
        }
    }
    std::vector<Tensor> out;
    if (parts.empty()) {
        out = f(flat); // empty batch
    } else {
        for (size_t k = 0; k < parts.front().size(); ++k) {
            std::vector<Tensor> pieces;
            for (const auto& p : parts) {
                pieces.push_back(p[k]);
            }
            out.push_back(torch::cat(pieces, 0));
        }
    }
    // Restore the leading dimensions: eigenvalues [..., d], eigenvectors [..., d, d].
    auto lead = X.sizes().vec();
    lead.pop_back();
    out[0] = out[0].reshape(lead);
    if (out.size() > 1) {
        out[1] = out[1].reshape(X.sizes());
    }
    return out;
}

// Symmetric eigendecomposition of a symmetric float64 [..., d, d]: eigenvalues ascending.
// at::linalg_eigh has the same spelling in LibTorch 1.13 and 2.x (torch::linalg::eigh needs the
// uplo argument in 1.13).
std::tuple<Tensor, Tensor> eighSym(const Tensor& S)
{
    const Tensor X = sym(S);
    if (!X.is_cuda()) {
        return at::linalg_eigh(X, "L");
    }
    auto r = cudaEigen(X, [](const Tensor& c) {
        auto [l, V] = at::linalg_eigh(c, "L");
        return std::vector<Tensor> { l, V };
    });
    return { r[0], r[1] };
}

// Eigenvalues (ascending) of a symmetric float64 [..., d, d], chunked likewise on CUDA.
Tensor eigvalsSym(const Tensor& S)
{
    const Tensor X = sym(S);
    if (!X.is_cuda()) {
        return at::linalg_eigvalsh(X, "L");
    }
    return cudaEigen(X, [](const Tensor& c) {
        return std::vector<Tensor> { at::linalg_eigvalsh(c, "L") };
    })[0];
}

// PSD square root of a float64 [..., d, d], eigenvalues clipped below at floor (>= 0).
Tensor sqrtm64(const Tensor& S, double floor = 0.0)
{
    auto [lambda, V] = eighSym(S);
    return fromEigen(V, lambda.clamp_min(floor).sqrt());
}

Tensor identityLike(const Tensor& S)
{
    return torch::eye(S.size(-1), S.options());
}

Tensor batchTrace(const Tensor& S)
{
    return S.diagonal(0, -2, -1).sum(-1);
}

bool isFloat(const Tensor& x)
{
    return x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64;
}

void checkFloat(const Tensor& x, const char* fn, const char* name)
{
    WFM_CHECK(x.defined(), fn, ": ", name, " is undefined");
    WFM_CHECK(isFloat(x), fn, ": ", name, " must be float32 or float64, got ", x.scalar_type());
}

// One argument of a batched call: a [d] / [M,d] mean (baseDim 1) or a [d,d] / [M,d,d] matrix
// (baseDim 2).
struct Arg
{
    const Tensor* x;
    int baseDim;
    const char* name;
};

struct Prepared
{
    std::vector<Tensor> x; // float64, each [M, ...] (expanded where broadcast)
    Tensor t;              // float64 [M] when a time was given
    int64_t M = 1;
    int64_t d = 0;
    bool batched = false;
    torch::ScalarType dtype = torch::kFloat64;
};

// Checks shapes, dtypes and devices, converts to float64 on the inputs' device and broadcasts the
// batch dimension. `t` (optional) is a 0-dim or [M] time tensor in [0,1].
Prepared prepare(const char* fn, std::initializer_list<Arg> args, const Tensor* t = nullptr)
{
    Prepared p;
    const Arg& first = *args.begin();
    checkFloat(*first.x, fn, first.name);
    p.dtype = first.x->scalar_type();
    const auto device = first.x->device();
    p.d = first.x->dim() >= 1 ? first.x->size(-1) : 0;
    int64_t M = -1;
    auto joinBatch = [&](int64_t size, const char* name) {
        if (size == 1) {
            return;
        }
        WFM_CHECK(M < 0 || M == size, fn, ": batch size of ", name, " (", size,
            ") does not match the other arguments (", M, ")");
        M = size;
    };
    for (const Arg& a : args) {
        const Tensor& x = *a.x;
        checkFloat(x, fn, a.name);
        WFM_CHECK(x.scalar_type() == p.dtype, fn, ": ", a.name, " is ", x.scalar_type(), " but ",
            first.name, " is ", p.dtype, " (all inputs must share a dtype)");
        WFM_CHECK(x.device() == device, fn, ": ", a.name, " is on ", x.device(), " but ",
            first.name, " is on ", device);
        const bool isMatrix = a.baseDim == 2;
        WFM_CHECK(x.dim() == a.baseDim || x.dim() == a.baseDim + 1, fn, ": ", a.name, " must be ",
            isMatrix ? "[d,d] or [M,d,d]" : "[d] or [M,d]", ", got ", x.sizes());
        WFM_CHECK(x.size(-1) == p.d && (!isMatrix || x.size(-2) == p.d), fn, ": ", a.name,
            " has shape ", x.sizes(), " but d = ", p.d, " (from ", first.name, ")");
        if (x.dim() == a.baseDim + 1) {
            p.batched = true;
            joinBatch(x.size(0), a.name);
        }
    }
    WFM_CHECK(p.d >= 1, fn, ": the dimension d must be at least 1");
    if (t != nullptr) {
        WFM_CHECK(t->defined() && t->is_floating_point(), fn, ": t must be a floating tensor");
        WFM_CHECK(t->device() == device, fn, ": t is on ", t->device(), " but ", first.name,
            " is on ", device);
        WFM_CHECK(t->dim() <= 1, fn, ": t must be 0-dim or [M], got ", t->sizes());
        if (t->dim() == 1) {
            p.batched = true;
            joinBatch(t->size(0), "t");
        }
    }
    p.M = M < 0 ? 1 : M;
    for (const Arg& a : args) {
        Tensor x = a.x->to(torch::kFloat64);
        if (x.dim() == a.baseDim) {
            x = x.unsqueeze(0);
        }
        std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
        shape[0] = p.M;
        p.x.push_back(x.expand(shape));
    }
    if (t != nullptr) {
        Tensor tt = t->to(torch::kFloat64).reshape({ -1 });
        const bool outside = (tt.lt(0.0) | tt.gt(1.0) | tt.isnan()).any().item<bool>();
        WFM_CHECK(!outside, fn, ": t must lie in [0, 1]");
        p.t = tt.expand({ p.M });
    }
    return p;
}

Tensor finish(const Tensor& r, const Prepared& p)
{
    Tensor out = r.to(p.dtype);
    return p.batched ? out : out.squeeze(0);
}

// A 0-dim float64 time tensor on the device of `like`.
Tensor scalarTime(double t, const Tensor& like, const char* fn)
{
    WFM_CHECK(t >= 0.0 && t <= 1.0, fn, ": t must lie in [0, 1], got ", t);
    WFM_CHECK(like.defined(), fn, ": m0 is undefined");
    return torch::full({}, t, torch::TensorOptions().dtype(torch::kFloat64).device(like.device()));
}

double mapRcond(torch::ScalarType dtype)
{
    return dtype == torch::kFloat32 ? kMapRcondFloat32 : kMapRcondFloat64;
}

// The optimal map and its residual, float64 [M,d,d] each, plus hasResidual [M] (bool).
struct MapParts
{
    Tensor A;
    Tensor R;
    Tensor hasResidual;
};

MapParts computeMap(const Tensor& S0, const Tensor& S1, double rcond)
{
    const Tensor S1h = sqrtm64(S1);
    auto [lambda, V] = eighSym(torch::matmul(torch::matmul(S1h, S0), S1h));
    const Tensor lambdaMax = std::get<0>(lambda.max(-1, true)).clamp_min(0.0);
    const Tensor keep = lambda.gt(rcond * lambdaMax).to(torch::kFloat64);
    // A = S1^(1/2) C^(+1/2) S1^(1/2) = B diag(lambda^(-1/2)) B^T with B = S1^(1/2) V: exactly
    // symmetric and PSD by construction. The dropped columns of B span S1^(1/2) (I - P).
    const Tensor B = torch::matmul(S1h, V);
    const Tensor Bt = B.transpose(-1, -2);
    MapParts parts;
    parts.A = sym(torch::matmul(B * (lambda.clamp_min(kTiny).rsqrt() * keep).unsqueeze(-2), Bt));
    parts.R = sym(torch::matmul(B * (1.0 - keep).unsqueeze(-2), Bt));
    parts.hasResidual = batchTrace(parts.R).gt(kResidualRel * batchTrace(S1).clamp_min(kTiny));
    return parts;
}

// S_t = M_t S0 M_t (+ t^2 R), t [M].
Tensor interpolateCov(const Tensor& S0, const Tensor& A, const Tensor* R, const Tensor& t)
{
    const Tensor tt = t.view({ -1, 1, 1 });
    const Tensor Mt = (1.0 - tt) * identityLike(A) + tt * A;
    Tensor St = torch::matmul(torch::matmul(Mt, S0), Mt);
    if (R != nullptr) {
        St = St + tt * tt * *R;
    }
    return sym(St);
}

Tensor interpolateMean(const Tensor& m0, const Tensor& m1, const Tensor& t)
{
    const Tensor tt = t.view({ -1, 1 });
    return (1.0 - tt) * m0 + tt * m1;
}

// W_t = (A - I) M_t^(+) in the eigenbasis of A: eigenvalues (a - 1) / ((1-t) + t a), 0 where the
// denominator vanishes.
Tensor velocityMatrixFromMap(const Tensor& A, const Tensor& t)
{
    auto [a, U] = eighSym(A);
    a = a.clamp_min(0.0);
    const Tensor tt = t.view({ -1, 1 });
    const Tensor den = (1.0 - tt) + tt * a;
    const Tensor tol = kVelocityRcond * std::get<0>(a.max(-1, true)).clamp_min(1.0);
    const Tensor keep = den.gt(tol).to(torch::kFloat64);
    return fromEigen(U, (a - 1.0) / torch::maximum(den, tol) * keep);
}

// Minimum-norm symmetric W with W S + S W = dS, S symmetric PSD [K,d,d].
Tensor solveLyapunov(const Tensor& S, const Tensor& dS)
{
    auto [mu, U] = eighSym(S);
    mu = mu.clamp_min(0.0);
    const Tensor Ut = U.transpose(-1, -2);
    const Tensor G = torch::matmul(torch::matmul(Ut, sym(dS)), U);
    const Tensor den = mu.unsqueeze(-1) + mu.unsqueeze(-2);
    const Tensor tol
        = (kLyapunovRcond * std::get<0>(mu.max(-1, true))).clamp_min(kTiny).unsqueeze(-1);
    const Tensor keep = den.gt(tol).to(torch::kFloat64);
    return sym(torch::matmul(torch::matmul(U, G / torch::maximum(den, tol) * keep), Ut));
}

Geodesic geodesicImpl(const Prepared& p)
{
    const Tensor &m0 = p.x[0], &S0 = p.x[1], &m1 = p.x[2], &S1 = p.x[3];
    const MapParts parts = computeMap(S0, S1, mapRcond(p.dtype));
    Geodesic g;
    g.mean = finish(interpolateMean(m0, m1, p.t), p);
    g.cov = finish(interpolateCov(S0, parts.A, &parts.R, p.t), p);
    return g;
}

Velocity velocityImpl(const Prepared& p)
{
    const Tensor &m0 = p.x[0], &S0 = p.x[1], &m1 = p.x[2], &S1 = p.x[3];
    const MapParts parts = computeMap(S0, S1, mapRcond(p.dtype));
    Tensor W = velocityMatrixFromMap(parts.A, p.t);
    if (parts.hasResidual.any().item<bool>()) {
        // No Monge map for these pairs (singular S0): the geodesic carries t^2 R, which a
        // congruence by M_t cannot produce, so solve the Lyapunov equation for its velocity.
        const Tensor idx = parts.hasResidual.nonzero().squeeze(1);
        const Tensor A = parts.A.index_select(0, idx);
        const Tensor S0k = S0.index_select(0, idx);
        const Tensor R = parts.R.index_select(0, idx);
        const Tensor tk = p.t.index_select(0, idx);
        const Tensor tt = tk.view({ -1, 1, 1 });
        const Tensor I = identityLike(A);
        const Tensor Mt = (1.0 - tt) * I + tt * A;
        const Tensor St = interpolateCov(S0k, A, &R, tk);
        const Tensor AmI = A - I;
        const Tensor dSt = torch::matmul(torch::matmul(AmI, S0k), Mt)
            + torch::matmul(torch::matmul(Mt, S0k), AmI) + 2.0 * tt * R;
        W = W.index_copy(0, idx, solveLyapunov(St, dSt));
    }
    Velocity v;
    v.dm = finish(m1 - m0, p);
    v.W = finish(W, p);
    return v;
}

// Normalises one side of pairwiseDistanceSquared(): float64 [P,d] and [P,d,d].
void prepareSide(const char* fn, const Tensor& m, const Tensor& S, const char* mName,
    const char* sName, Tensor& mOut, Tensor& sOut, bool& batched)
{
    const Prepared p = prepare(fn, { { &m, 1, mName }, { &S, 2, sName } });
    mOut = p.x[0];
    sOut = p.x[1];
    batched = p.batched;
}

void checkMatrixArg(const Tensor& S, const char* fn, const char* name)
{
    checkFloat(S, fn, name);
    WFM_CHECK(S.dim() >= 2 && S.size(-1) == S.size(-2) && S.size(-1) >= 1, fn, ": ", name,
        " must be a square [..., d, d] matrix with d >= 1, got ", S.sizes());
}

std::string indexed(const std::string& what, bool batched, int64_t i)
{
    return batched ? what + "[" + std::to_string(i) + "]" : what;
}

// First index i with bad[i] true, or -1. bad: bool [M].
int64_t firstTrue(const Tensor& bad)
{
    const Tensor idx = bad.nonzero();
    return idx.size(0) == 0 ? -1 : idx[0][0].item<int64_t>();
}

} // namespace

torch::Tensor sqrtm(const torch::Tensor& S, double minEigenvalue)
{
    checkMatrixArg(S, "sqrtm", "S");
    WFM_CHECK(minEigenvalue >= 0.0, "sqrtm: minEigenvalue must be >= 0, got ", minEigenvalue);
    return sqrtm64(S.to(torch::kFloat64), minEigenvalue).to(S.scalar_type());
}

torch::Tensor invSqrtm(const torch::Tensor& S, double minEigenvalue)
{
    checkMatrixArg(S, "invSqrtm", "S");
    WFM_CHECK(minEigenvalue > 0.0, "invSqrtm: minEigenvalue must be > 0, got ", minEigenvalue);
    auto [lambda, V] = eighSym(S.to(torch::kFloat64));
    return fromEigen(V, lambda.clamp_min(minEigenvalue).rsqrt()).to(S.scalar_type());
}

torch::Tensor distanceSquared(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1)
{
    const Prepared p = prepare("distanceSquared",
        { { &m0, 1, "m0" }, { &S0, 2, "S0" }, { &m1, 1, "m1" }, { &S1, 2, "S1" } });
    const Tensor &a0 = p.x[0], &C0 = p.x[1], &a1 = p.x[2], &C1 = p.x[3];
    const Tensor S1h = sqrtm64(C1);
    const Tensor C = sym(torch::matmul(torch::matmul(S1h, C0), S1h));
    const Tensor cross = eigvalsSym(C).clamp_min(0.0).sqrt().sum(-1);
    const Tensor d2 = (a0 - a1).square().sum(-1) + batchTrace(C0) + batchTrace(C1) - 2.0 * cross;
    return finish(d2.clamp_min(0.0), p);
}

torch::Tensor distance(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1)
{
    return distanceSquared(m0, S0, m1, S1).sqrt();
}

torch::Tensor pairwiseDistanceSquared(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1)
{
    const char* fn = "pairwiseDistanceSquared";
    // Cross-check dtype, device and d over all four (the batch sizes P and Q are independent).
    checkFloat(m0, fn, "m0");
    checkFloat(m1, fn, "m1");
    WFM_CHECK(m1.scalar_type() == m0.scalar_type(), fn, ": m1 is ", m1.scalar_type(),
        " but m0 is ", m0.scalar_type(), " (all inputs must share a dtype)");
    WFM_CHECK(m1.device() == m0.device(), fn, ": m1 is on ", m1.device(), " but m0 is on ",
        m0.device());
    Tensor a0, C0, a1, C1;
    bool batched0 = false, batched1 = false;
    prepareSide(fn, m0, S0, "m0", "S0", a0, C0, batched0);
    prepareSide(fn, m1, S1, "m1", "S1", a1, C1, batched1);
    const int64_t d = a0.size(-1);
    WFM_CHECK(a1.size(-1) == d, fn, ": m1/S1 have d = ", a1.size(-1), " but m0/S0 have d = ", d);
    const int64_t P = a0.size(0), Q = a1.size(0);

    const Tensor S1h = sqrtm64(C1).unsqueeze(0);                               // [1,Q,d,d]
    const Tensor base = (a0.unsqueeze(1) - a1.unsqueeze(0)).square().sum(-1) // [P,Q]
        + batchTrace(C0).unsqueeze(1) + batchTrace(C1).unsqueeze(0);
    const int64_t block = std::max<int64_t>(1, kPairwiseBudget / std::max<int64_t>(1, Q * d * d));
    std::vector<Tensor> cross;
    for (int64_t p0 = 0; p0 < P; p0 += block) {
        const int64_t p1 = std::min(P, p0 + block);
        const Tensor S0b = C0.slice(0, p0, p1).unsqueeze(1); // [b,1,d,d]
        const Tensor C = sym(torch::matmul(torch::matmul(S1h, S0b), S1h));
        cross.push_back(eigvalsSym(C).clamp_min(0.0).sqrt().sum(-1));
    }
    Tensor d2 = P == 0 ? base : base - 2.0 * torch::cat(cross, 0);
    d2 = d2.clamp_min(0.0).to(m0.scalar_type());
    if (!batched1) {
        d2 = d2.squeeze(1);
    }
    if (!batched0) {
        d2 = d2.squeeze(0);
    }
    return d2;
}

torch::Tensor mongeMap(const torch::Tensor& S0, const torch::Tensor& S1)
{
    const Prepared p = prepare("mongeMap", { { &S0, 2, "S0" }, { &S1, 2, "S1" } });
    return finish(computeMap(p.x[0], p.x[1], mapRcond(p.dtype)).A, p);
}

Geodesic geodesic(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1, double t)
{
    return geodesic(m0, S0, m1, S1, scalarTime(t, m0, "geodesic"));
}

Geodesic geodesic(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1, const torch::Tensor& t)
{
    return geodesicImpl(prepare("geodesic",
        { { &m0, 1, "m0" }, { &S0, 2, "S0" }, { &m1, 1, "m1" }, { &S1, 2, "S1" } }, &t));
}

Geodesic geodesicFromMap(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& A, const torch::Tensor& t)
{
    const Prepared p = prepare("geodesicFromMap",
        { { &m0, 1, "m0" }, { &S0, 2, "S0" }, { &m1, 1, "m1" }, { &A, 2, "A" } }, &t);
    Geodesic g;
    g.mean = finish(interpolateMean(p.x[0], p.x[2], p.t), p);
    g.cov = finish(interpolateCov(p.x[1], sym(p.x[3]), nullptr, p.t), p);
    return g;
}

Velocity velocity(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1, double t)
{
    return velocity(m0, S0, m1, S1, scalarTime(t, m0, "velocity"));
}

Velocity velocity(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1, const torch::Tensor& t)
{
    return velocityImpl(prepare("velocity",
        { { &m0, 1, "m0" }, { &S0, 2, "S0" }, { &m1, 1, "m1" }, { &S1, 2, "S1" } }, &t));
}

Velocity velocityFromMap(const torch::Tensor& m0, const torch::Tensor& m1, const torch::Tensor& A,
    const torch::Tensor& t)
{
    const Prepared p
        = prepare("velocityFromMap", { { &m0, 1, "m0" }, { &m1, 1, "m1" }, { &A, 2, "A" } }, &t);
    Velocity v;
    v.dm = finish(p.x[1] - p.x[0], p);
    v.W = finish(velocityMatrixFromMap(p.x[2], p.t), p);
    return v;
}

void validateCovariance(const torch::Tensor& S, const std::string& what, double tol)
{
    WFM_CHECK(S.defined(), what, " is undefined");
    WFM_CHECK(isFloat(S), what, " must be float32 or float64, got ", S.scalar_type());
    WFM_CHECK(S.dim() == 2 || S.dim() == 3, what, " must be a covariance [d,d] or [M,d,d], got ",
        S.sizes());
    WFM_CHECK(S.size(-1) == S.size(-2), what, " must be square, got ", S.sizes());
    WFM_CHECK(S.size(-1) >= 1, what, " must have d >= 1, got ", S.sizes());
    const bool batched = S.dim() == 3;
    Tensor X = S.to(torch::kFloat64);
    if (!batched) {
        X = X.unsqueeze(0);
    }
    if (X.size(0) == 0) {
        return;
    }
    int64_t bad = firstTrue(torch::logical_not(torch::isfinite(X).flatten(1).all(1)));
    WFM_CHECK(bad < 0, indexed(what, batched, bad), " has non-finite entries (NaN or inf)");

    const Tensor asym = (X - X.transpose(-1, -2)).abs().flatten(1).amax(1);
    const Tensor scale = X.abs().flatten(1).amax(1);
    bad = firstTrue(asym.gt(tol * scale));
    WFM_CHECK(bad < 0, indexed(what, batched, bad), " is not symmetric (max |S - S^T| = ",
        asym[bad].item<double>(), ", allowed ", tol * scale[bad].item<double>(), ")");

    const Tensor lambda = eigvalsSym(X);
    const Tensor lmin = lambda.select(-1, 0);
    const Tensor lmax = lambda.select(-1, -1);
    bad = firstTrue(lmin.lt(-tol * lmax.abs().clamp_min(1.0)));
    WFM_CHECK(bad < 0, indexed(what, batched, bad),
        " is not positive semi-definite (smallest eigenvalue ", lmin[bad].item<double>(),
        ", largest ", lmax[bad].item<double>(), ")");
}

void validateMeans(const torch::Tensor& m, int64_t d, const std::string& what)
{
    WFM_CHECK(m.defined(), what, " is undefined");
    WFM_CHECK(isFloat(m), what, " must be float32 or float64, got ", m.scalar_type());
    WFM_CHECK(m.dim() == 1 || m.dim() == 2, what, " must be a mean [d] or [M,d], got ", m.sizes());
    WFM_CHECK(m.size(-1) >= 1, what, " must have d >= 1, got ", m.sizes());
    WFM_CHECK(d < 0 || m.size(-1) == d, what, " must have d = ", d, ", got ", m.sizes());
    const bool batched = m.dim() == 2;
    const Tensor X = batched ? m : m.unsqueeze(0);
    if (X.size(0) == 0) {
        return;
    }
    const int64_t bad = firstTrue(torch::logical_not(torch::isfinite(X).all(1)));
    WFM_CHECK(bad < 0, indexed(what, batched, bad), " has non-finite entries (NaN or inf)");
}

} // namespace wfm::ot::bw
