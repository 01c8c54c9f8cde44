#pragma once

#include <torch/types.h>

#include <string>

namespace wfm::ot {

/// How the entropic regularisation eps is given.
enum class EpsMode {
    Relative, ///< eps = value * max_ij C_ij over the live points of each pair (reference default)
    Absolute, ///< eps = value, in the units of the squared-Euclidean cost
};

/// Which implementation runs the Sinkhorn iterations.
enum class SinkhornBackend {
    Auto,   ///< fused kernel when one exists for the device and dtype, else tensor operations
    Tensor, ///< log-sum-exp over materialised [B,N,M] tensors (the reference path)
    Fused,  ///< fused kernel (CPU SIMD or CUDA): costs from coordinates on the fly, linear memory
};

/// Options of the log-domain Sinkhorn solver. Defaults are the reference's (eps 0.002 relative
/// to the max cost, 200 iterations).
struct SinkhornOptions
{
    double eps = 0.002;
    EpsMode epsMode = EpsMode::Relative;
    /// Iteration count (tolerance == 0) or cap (tolerance > 0).
    int maxIterations = 200;
    /// > 0: stop once every pair's marginal error is below it (checked every checkEvery).
    double tolerance = 0.0;
    int checkEvery = 10;
    /// Also return the [B,N,M] plan (memory quadratic in the cloud size).
    bool computePlan = false;
    SinkhornBackend backend = SinkhornBackend::Auto;

    SinkhornOptions& setEps(double v, EpsMode m = EpsMode::Relative)
    {
        eps = v;
        epsMode = m;
        return *this;
    }
    SinkhornOptions& setIterations(int v) { maxIterations = v; return *this; }
    SinkhornOptions& setTolerance(double v) { tolerance = v; return *this; }
    SinkhornOptions& setPlan(bool v) { computePlan = v; return *this; }
    SinkhornOptions& setBackend(SinkhornBackend v) { backend = v; return *this; }
};

/// Result of a batched Sinkhorn solve. The plan is
///   P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps),  C_ij = |x_i - y_j|^2,
/// with f, g in the units of the cost. Padded points (zero weight) have f = 0 / g = 0 and no mass.
struct SinkhornResult
{
    torch::Tensor f;             ///< [B,N] source potential
    torch::Tensor g;             ///< [B,M] target potential
    torch::Tensor eps;           ///< [B] absolute eps used for each pair (float64)
    torch::Tensor cost;          ///< [B] transport cost sum_ij P_ij C_ij, entropy excluded (float64)
    torch::Tensor marginalError; ///< [B] sum_i |(P1)_i - a_i| + sum_j |(P^T 1)_j - b_j| (float64)
    int iterations = 0;          ///< iterations run (the same for the whole batch)
    torch::Tensor plan;          ///< [B,N,M] when requested, else undefined
    bool fused = false;          ///< whether a fused kernel ran
};

/// Batched log-domain Sinkhorn between weighted point clouds.
///   x [B,N,d] or [N,d], y [B,M,d] or [M,d] (same dtype, float32 or float64, any device);
///   a [B,N], b [B,M] non-negative weights, each row summing to 1 (undefined tensors mean
///   uniform weights); zero weight marks padding, so clouds of different sizes share a batch.
/// Unbatched inputs give results with B = 1.
/// Throws ConfigError on shape, dtype, device or weight problems (negative, zero-sum, NaN).
SinkhornResult sinkhorn(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornOptions& options = {});

/// Squared-Euclidean cost matrices [B,N,M] (clamped at 0).
torch::Tensor squaredDistances(const torch::Tensor& x, const torch::Tensor& y);

/// Uniform weights [B,N] for clouds [B,N,d].
torch::Tensor uniformWeights(const torch::Tensor& x);

/// Checks that weights are finite, non-negative and sum to 1 per row (within 1e-4), with a
/// message naming `what`; returns them normalised (in the same dtype as `points`).
torch::Tensor validateWeights(const torch::Tensor& weights, const torch::Tensor& points,
    const char* what);

/// log P_ij of a solved problem, [B,N,M], -inf where either point is padding.
torch::Tensor logPlan(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& result);

/// The instruction set the fused CPU kernels use on this machine ("avx512", "avx2", "portable").
std::string fusedCpuSimdLevel();

} // namespace wfm::ot
