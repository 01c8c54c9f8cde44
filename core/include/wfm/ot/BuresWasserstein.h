#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

/// Bures-Wasserstein geometry: optimal transport between Gaussians N(m, S).
///
/// Time runs from t = 0 (source N(m0, S0)) to t = 1 (target N(m1, S1)), as everywhere in WFM
/// (DESIGN.md, "Gaussians"). Formulas (Takatsu 2011; Bhatia, Jain & Lim 2019, eqs. 1-3;
/// McCann 1997 for the interpolation):
///   W2^2 = |m0 - m1|^2 + tr S0 + tr S1 - 2 tr (S1^(1/2) S0 S1^(1/2))^(1/2)
///   A    = S1^(1/2) (S1^(1/2) S0 S1^(1/2))^(-1/2) S1^(1/2)     Monge map x -> A x + m1 - A m0
///   m_t  = (1-t) m0 + t m1,  S_t = M_t S0 M_t,  M_t = (1-t) I + t A
///   v_t(x) = dm + W_t (x - m_t),  dm = m1 - m0,  W_t = (A - I) M_t^(-1)  (symmetric),
///   and d/dt S_t = W_t S_t + S_t W_t.
///
/// Conventions shared by every function here:
///  - Means are [M,d] and covariances [M,d,d], batched over the leading M; unbatched [d] / [d,d]
///    are accepted. A batch of size 1 broadcasts against a batch of size M. Results are batched
///    when any input is, and squeezed back otherwise.
///  - float32 or float64 (all inputs the same dtype), any device. Everything is computed in
///    float64 on the input's device; results come back in the input dtype.
///  - Covariances are symmetrised ((S + S^T) / 2) before use, negative eigenvalues (round-off) are
///    clipped at 0, and every covariance or matrix returned is symmetrised. Inputs are NOT
///    otherwise validated (that would cost an eigendecomposition and a device sync per call):
///    call validateCovariance() / validateMeans() where the data come from a user.
///  - Eigendecompositions are not meant to be differentiated (their gradients blow up at repeated
///    eigenvalues); use these functions for targets and metrics, under torch::NoGradGuard.
///  - Shape, dtype and device mismatches throw wfm::ConfigError naming the argument.
///  - On CUDA the eigendecompositions run in chunks of 4096 matrices (cuSOLVER's batched solver
///    fails on batches of 65536) and agree with the CPU to about 1e-9 relative in float64 (H100,
///    PyTorch 2.11); a solver failure falls back to the CPU with one warning through wfm::log.
namespace wfm::ot::bw {

/// Relative cutoff of the pseudo-inverse square root in mongeMap(): eigenvalues of
/// C = S1^(1/2) S0 S1^(1/2) below rcond * max eigenvalue count as zero. By input dtype, since a
/// float32 covariance carries rounding noise of about 1e-7 of its largest eigenvalue.
inline constexpr double kMapRcondFloat64 = 1e-11;
inline constexpr double kMapRcondFloat32 = 1e-6;

/// Symmetric positive semi-definite square root of S, [M,d,d] or [d,d] (or any [..., d, d]),
/// through a symmetric eigendecomposition of (S + S^T)/2 with eigenvalues clipped below at
/// minEigenvalue (>= 0). The result is symmetric, in the input's dtype and shape.
/// Throws ConfigError if S is not a float32/float64 [..., d, d] tensor or minEigenvalue < 0.
torch::Tensor sqrtm(const torch::Tensor& S, double minEigenvalue = 0.0);

/// Regularised inverse square root of S ([..., d, d]): V diag(max(l, minEigenvalue)^(-1/2)) V^T
/// for (S + S^T)/2 = V diag(l) V^T. Eigenvalues below the floor are treated as the floor, so for
/// a singular S the null directions get the (large but finite) value minEigenvalue^(-1/2), not
/// 0 as a Moore-Penrose pseudo-inverse would. Throws ConfigError if minEigenvalue <= 0.
torch::Tensor invSqrtm(const torch::Tensor& S, double minEigenvalue = 1e-12);

/// Squared Bures-Wasserstein distance W2^2 between N(m0,S0) and N(m1,S1): [M] (a scalar for
/// unbatched inputs), clamped at 0. m0, m1 [M,d]; S0, S1 [M,d,d]. Symmetric in its two
/// Gaussians; valid for singular covariances.
torch::Tensor distanceSquared(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1);

/// W2 = sqrt of distanceSquared(): [M].
torch::Tensor distance(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1);

/// All pairwise squared distances W2^2(N(m0_p,S0_p), N(m1_q,S1_q)): [P,Q] for m0 [P,d],
/// S0 [P,d,d], m1 [Q,d], S1 [Q,d,d] (for minibatch OT costs and set metrics). An unbatched side
/// ([d], [d,d]) is squeezed from the result. Computed with batched eigenvalue solves over blocks of
/// pairs (S1^(1/2) once per target), memory bounded independently of P*Q.
torch::Tensor pairwiseDistanceSquared(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1);

/// Linear part A [M,d,d] of the optimal map between N(., S0) and N(., S1): symmetric PSD, with
/// A S0 A = S1 whenever a Monge map exists, and the map itself is x -> A x + m1 - A m0.
/// The inverse square root of C = S1^(1/2) S0 S1^(1/2) is a pseudo-inverse (eigenvalues below
/// kMapRcond* x max eigenvalue count as zero), so singular covariances give finite results:
///  - S0 nonsingular (any PSD S1, also singular): a Monge map exists; A S0 A = S1 and A is
///    singular on the null space of S1 (mass collapses onto the support of the target).
///  - S0 singular: a map from the support of S0 exists only when rank C = rank S1. In general
///    x -> A x + m1 - A m0 is the barycentric projection E[y | x] of the optimal coupling on the
///    support of S0; it pushes N(m0,S0) to N(m1, S1 - R) with the residual
///    R = S1^(1/2) (I - P) S1^(1/2) >= 0 (P: projector onto the range of C), and the optimal
///    coupling is y = A x + m1 - A m0 + xi with independent xi ~ N(0, R). Off the support of S0,
///    A is the minimum-norm choice (its values there do not move any mass).
torch::Tensor mongeMap(const torch::Tensor& S0, const torch::Tensor& S1);

/// A point of a Bures-Wasserstein geodesic.
struct Geodesic
{
    torch::Tensor mean; ///< [M,d] m_t
    torch::Tensor cov;  ///< [M,d,d] S_t (symmetric PSD)
};

/// McCann interpolant between N(m0,S0) (t = 0) and N(m1,S1) (t = 1), t in [0,1]:
/// m_t = (1-t) m0 + t m1, S_t = M_t S0 M_t + t^2 R with M_t = (1-t) I + t A (A = mongeMap(S0,S1))
/// and the residual R of mongeMap() (zero whenever a Monge map exists, e.g. S0 nonsingular), so
/// the curve is the constant-speed W2 geodesic and hits both ends for any PSD pair:
/// W2(N_0, N_t) = t W2(N_0, N_1). Throws ConfigError if t is outside [0,1].
Geodesic geodesic(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1, double t);

/// As above with one time per Gaussian: t [M] (or a 0-dim tensor), any floating dtype, on the
/// inputs' device, every entry in [0,1] (checked, which syncs with the device).
Geodesic geodesic(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1, const torch::Tensor& t);

/// Geodesic from a precomputed map A = mongeMap(S0, S1) [M,d,d]: m_t as above and
/// S_t = M_t S0 M_t, the push-forward of N(m0,S0) by the interpolated map. It equals geodesic()
/// whenever a Monge map exists (A S0 A = S1); for a singular S0 without one it ends at
/// N(m1, A S0 A) instead of N(m1, S1). t: [M] or 0-dim tensor, in [0,1].
Geodesic geodesicFromMap(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& A, const torch::Tensor& t);

/// Velocity field of the geodesic at time t: v_t(x) = dm + W_t (x - m_t).
struct Velocity
{
    torch::Tensor dm; ///< [M,d] m1 - m0
    torch::Tensor W;  ///< [M,d,d] symmetric W_t
};

/// Velocity of geodesic() at time t in [0,1]: dm = m1 - m0 and W_t = (A - I) M_t^(-1), computed
/// in the eigenbasis of A (A and M_t commute), so W_t is exactly symmetric. M_t^(-1) is a
/// pseudo-inverse: where (1-t) + t a_i vanishes (t = 1 on the null space of A, i.e. a singular
/// target) that direction of W_t is 0 rather than the -1/(1-t) limit, so W stays finite.
/// Where geodesic() carries a residual R (singular S0 without a Monge map), W_t is instead the
/// minimum-norm symmetric solution of W S_t + S_t W = d/dt S_t (eigenbasis of S_t), finite also
/// at t = 0, where the exact field diverges like 1/t on the directions S0 lacks.
/// In all cases d/dt S_t = W_t S_t + S_t W_t for t in (0,1) and the mean moves with dm.
/// Throws ConfigError if t is outside [0,1].
Velocity velocity(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1, double t);

/// As above with one time per Gaussian: t [M] (or 0-dim), every entry in [0,1].
Velocity velocity(const torch::Tensor& m0, const torch::Tensor& S0, const torch::Tensor& m1,
    const torch::Tensor& S1, const torch::Tensor& t);

/// Velocity of geodesicFromMap() from a precomputed A [M,d,d]: dm = m1 - m0,
/// W_t = (A - I) M_t^(-1) (pseudo-inverse as in velocity()). t: [M] or 0-dim, in [0,1].
Velocity velocityFromMap(const torch::Tensor& m0, const torch::Tensor& m1, const torch::Tensor& A,
    const torch::Tensor& t);

/// Throws wfm::ConfigError, naming `what` and the first offending batch index, unless S is a
/// finite float32/float64 covariance [d,d] or batch [M,d,d] with d >= 1 that is
///  - symmetric: max |S - S^T| <= tol * max |S| (per matrix), and
///  - positive semi-definite: min eigenvalue >= -tol * max(1, |max eigenvalue|).
/// Syncs with the device. Empty batches (M = 0) pass.
void validateCovariance(const torch::Tensor& S, const std::string& what, double tol = 1e-6);

/// Throws wfm::ConfigError, naming `what` and the first offending index, unless m is a finite
/// float32/float64 mean [d] or batch [M,d] with d >= 1 and, when d >= 0 is given, size(-1) == d.
void validateMeans(const torch::Tensor& m, int64_t d, const std::string& what);

} // namespace wfm::ot::bw
