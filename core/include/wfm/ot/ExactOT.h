#pragma once

#include <torch/types.h>

namespace wfm::ot {

/// Result of an exact (unregularised) optimal transport solve.
struct ExactResult
{
    /// sum_ij P_ij C_ij, in the units of the cost times the mass (so with weights summing to 1
    /// it is the OT cost; for exactEmd it is W_2^2).
    double cost = 0;
    /// [N,M] float64 CPU optimal plan with marginals a and b (rows/columns of zero-weight points
    /// are 0); undefined when the plan was not requested.
    torch::Tensor plan;
};

/// Whether this build has the exact solver (it needs the LEMON headers).
bool exactTransportAvailable();

/// Exact optimal transport (earth mover's distance) for a general cost matrix, solved as a
/// min-cost flow with LEMON's network simplex.
///   cost [N,M], a [N], b [M]: any device, float32 or float64 (copied to CPU float64).
///   Weights are non-negative and sum to the same positive total (relative tolerance 1e-6;
///   the plan's rows sum to a, its columns to b rescaled to a's total); zero-weight points are
///   removed before solving and get zero rows/columns in the plan.
/// Memory and time grow with N*M (fine up to a few thousand points per side).
/// Throws ConfigError naming the argument for wrong shapes, non-finite values, negative weights
/// or unequal totals; wfm::Error when the build lacks LEMON.
ExactResult exactTransport(const torch::Tensor& cost, const torch::Tensor& a,
    const torch::Tensor& b, bool computePlan = true);

/// Exact W_2^2 between two weighted point clouds: cost C_ij = |x_i - y_j|^2.
///   x [N,d], y [M,d]; a [N], b [M] (undefined = uniform 1/N, 1/M).
/// Throws as exactTransport.
ExactResult exactEmd(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a = {},
    const torch::Tensor& b = {}, bool computePlan = true);

/// exactEmd for each pair of a padded batch, in parallel (at::parallel_for over pairs).
///   x [B,N,d], y [B,M,d]; a [B,N], b [B,M] with zeros marking padding (undefined = uniform).
/// Returns [B] float64 CPU costs. Every pair must have positive, equal total mass.
/// Throws as exactTransport.
torch::Tensor exactEmdBatched(const torch::Tensor& x, const torch::Tensor& y,
    const torch::Tensor& a = {}, const torch::Tensor& b = {});

/// Exact optimal assignment (linear sum assignment, minimisation) with a shortest augmenting
/// path (Jonker-Volgenant style Hungarian) solver in double precision, O(N^3).
///   cost [N,N] -> int64 [N], or [B,N,N] -> int64 [B,N] (pairs solved in parallel),
/// with perm[i] = the column assigned to row i, minimising sum_i C[i, perm[i]].
/// Any device and float32/float64; the result is on the CPU.
/// Throws ConfigError for a non-square or non-finite cost.
torch::Tensor exactAssignment(const torch::Tensor& cost);

} // namespace wfm::ot
