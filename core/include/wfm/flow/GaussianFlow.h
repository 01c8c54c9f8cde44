#pragma once

#include "wfm/flow/Integrator.h"
#include "wfm/model/GaussianMlp.h"

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

/// Bures-Wasserstein flow matching on Gaussians (DESIGN.md, "Gaussians"): training targets along
/// the McCann geodesic, minibatch OT pairing, the loss, one training step's loss, generation and
/// the relationship metrics of the built-in families.
///
/// Time runs from t = 0 (source / noise N(m0,S0)) to t = 1 (data N(m1,S1)). Along the geodesic
/// (wfm/ot/BuresWasserstein.h): m_t = (1-t) m0 + t m1, S_t = M_t S0 M_t, M_t = (1-t) I + t A,
/// and the velocity field v_t(x) = dm + W_t (x - m_t) with dm = m1 - m0, W_t = (A - I) M_t^(-1),
/// so d/dt m_t = dm and d/dt S_t = W_t S_t + S_t W_t.
namespace wfm::flow {

/// Training targets for a batch of source/data pairs.
struct GaussianTargets
{
    torch::Tensor t;     ///< [B] times in [0,1]
    torch::Tensor means; ///< [B,d] m_t
    torch::Tensor covs;  ///< [B,d,d] S_t (symmetric PSD)
    torch::Tensor dm;    ///< [B,d] dm* = m1 - m0
    torch::Tensor W;     ///< [B,d,d] W* = W_t (symmetric)
};

/// Targets at t ~ U[0,1] per pair, drawn from `generator` (one torch::rand of [B] float64).
/// m0, m1 [B,d]; S0, S1 [B,d,d] (S0 nonsingular: the noise always is); float32 or float64, all
/// the same dtype; results in that dtype. Computed under NoGradGuard (targets carry no graph).
/// Throws ConfigError for mismatched shapes or dtypes.
GaussianTargets gaussianFlowTargets(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1, torch::Generator& generator);

/// As above at the given times t [B] (or 0-dim), each in [0,1].
GaussianTargets gaussianFlowTargets(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1, const torch::Tensor& t);

/// Minibatch OT between sources and targets: the exact assignment (ot::exactAssignment) on the
/// [B,B] matrix C[i][j] = W2^2(N(m1_i,S1_i), N(m0_j,S0_j)). Returns perm [B] int64 (CPU): target
/// i is paired with source perm[i] (so sources are re-ordered by index_select(0, perm)).
torch::Tensor gaussianMinibatchPairing(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1);

/// Flow-matching loss, the batch mean of the squared L2(N(m_t,S_t)) norm of the velocity error:
///   E_{x ~ N(m_t,S_t)} |(dm - dm*) + (W - W*)(x - m_t)|^2 = |dm - dm*|^2 + tr(S_t (W - W*)^2)
/// (the cross term vanishes as E[x - m_t] = 0, and E[y^T D^2 y] = tr(D^2 S_t) for symmetric D).
/// euclidean = true uses |dm - dm*|^2 + |W - W*|_F^2 instead. pred.W must be symmetric.
/// Differentiable in pred. Throws ConfigError for mismatched shapes.
torch::Tensor gaussianFlowLoss(
    const model::GaussianVelocity& pred, const GaussianTargets& targets, bool euclidean = false);

/// Options of one training step.
struct GaussianStepOptions
{
    bool minibatchOt = true;   ///< re-pair sources by gaussianMinibatchPairing
    bool euclideanLoss = false; ///< Frobenius instead of the L2(N_t) loss
    double labelDropout = 0.1; ///< probability of replacing a label by the null label
    bool mixedPrecision = false; ///< bfloat16 autocast for the forward (see StepOptions)
};

/// One training batch: data (t = 1) and sources (t = 0), same B and d.
struct GaussianStepBatch
{
    torch::Tensor means;             ///< [B,d] data
    torch::Tensor covariances;       ///< [B,d,d] data
    torch::Tensor sourceMeans;       ///< [B,d]
    torch::Tensor sourceCovariances; ///< [B,d,d]
    torch::Tensor labels;            ///< [B] int64 of the data, or undefined
};

/// The loss of one training step (no backward, no optimiser): pairing (if on), targets
/// (t ~ U[0,1] from `generator`), label dropout (if the model is conditional: each label replaced
/// by the null label numLabels with probability labelDropout, one torch::rand of [B] from
/// `generator` after the times; undefined labels mean all null), forward, loss. Labels are
/// ignored for an unconditional model. Tensors are moved to the model's device and dtype.
/// Throws ConfigError for mismatched shapes or labelDropout outside [0,1].
torch::Tensor gaussianStepLoss(model::GaussianMlp& model, const GaussianStepBatch& batch,
    const GaussianStepOptions& options, torch::Generator& generator);

/// Velocity field for generation: (m [K,d], S [K,d,d], t [K]) -> (dm, W symmetric).
using GaussianVelocityFn = std::function<model::GaussianVelocity(
    const torch::Tensor& m, const torch::Tensor& S, const torch::Tensor& t)>;

/// Result of integrateGaussians.
struct GaussianTrajectory
{
    torch::Tensor means;                 ///< [K,d] at t = 1
    torch::Tensor covariances;           ///< [K,d,d] at t = 1
    torch::Tensor trajectoryMeans;       ///< [T+1,K,d] (only with keepTrajectory)
    torch::Tensor trajectoryCovariances; ///< [T+1,K,d,d] (only with keepTrajectory)
};

/// Integrates dm/dt = dm(m,S,t), dS/dt = W S + S W from (m0, S0) at t = 0 to t = 1 in `steps`
/// steps of h = 1/steps. The covariance moves by congruences S <- G S G with symmetric G, so
/// every S stays symmetric positive semi-definite (and definite whenever G is nonsingular):
///  - Euler:    (dm, W) = v(m,S,t); m += h dm; G = I + h W (DESIGN.md's step: G S G =
///              S + h (W S + S W) + O(h^2), the sign matching d/dt S_t = W S + S W for t running
///              from noise to data). First order.
///  - Midpoint: (dm1,W1) = v(m,S,t); half state m + h/2 dm1, E(h/2 W1) S E(h/2 W1);
///              (dm2,W2) = v(half, t + h/2); m += h dm2; G = E(h W2) with
///              E(X) = I + X + X^2/2 (the second-order truncation of exp(X), always positive
///              definite since 1 + x + x^2/2 > 0): the exponential midpoint rule, second order.
///              (I + hW2 would cost the method its second order: its h^2 term is W S W instead of
///              (W^2 S + 2 W S W + S W^2)/2.)
///  - Heun:     (dm1,W1) = v(m,S,t); predictor m + h dm1, E(h W1) S E(h W1); (dm2,W2) at t + h;
///              m += h/2 (dm1 + dm2); G = E(h (W1 + W2)/2). Second order.
/// Each S is symmetrised after each step. m0 [K,d], S0 [K,d,d] (any floating dtype / device; the
/// field is called with tensors of that dtype and device, t as [K] of it).
/// Throws ConfigError for steps < 1 or bad shapes, and if the field returns bad shapes.
GaussianTrajectory integrateGaussians(const GaussianVelocityFn& velocity, const torch::Tensor& m0,
    const torch::Tensor& S0, int steps, Integrator integrator = Integrator::Midpoint,
    bool keepTrajectory = false);

/// Relationship errors of generated Gaussians (means [G,d], covs [G,d,d], in data units: invert
/// the normalisation first) against the mean-covariance relationship of a built-in family
/// (wfm/data/GaussianDataset.h); `builtinName` may be "gaussian-spiral" or a spec
/// "builtin:gaussian-spiral?...". All values are means over the G Gaussians:
///  - gaussian-spiral: "mean_distance" (distance of the mean to the spiral curve),
///    "orientation_error_deg" (angle between the major axis and the spiral's tangent at the
///    nearest curve point, in [0, 90]), "size_rel_error" (|sigma_major - sigma_major(s*)| /
///    sigma_major(s*) at that point).
///  - gaussian-ring3d: "mean_distance" (to the circle), "orientation_error_deg" (major axis vs the
///    tangent at the mean's angle), "twist_error_deg" (middle axis vs u(phi)), "size_rel_error"
///    (relative error of the three axis standard deviations, Euclidean norm).
///  - gaussian-eig8: "eigenvalue_rel_error" (|sort(eig S) - sort(lambda(m))| / |lambda(m)|),
///    "covariance_rel_error" (|S - S(m)|_F / |S(m)|_F).
/// Returns an empty map for any other name. Throws ConfigError for a built-in's wrong dimension.
std::map<std::string, double> builtinRelationshipErrors(
    const std::string& builtinName, const torch::Tensor& means, const torch::Tensor& covs);

} // namespace wfm::flow
