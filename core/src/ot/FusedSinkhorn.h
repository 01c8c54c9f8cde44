#pragma once
// Tensor-level front of the fused Sinkhorn kernels (CPU SIMD, CUDA): converts tensors to the
// raw layout of FusedKernels.h, dispatches by device and computes the solver's outputs
// (cost, marginal error, maps) from the potentials without materialising the plan.

#include "wfm/ot/Sinkhorn.h"

#include <torch/types.h>

#include <cstdint>

namespace wfm::ot::fused {

/// Whether a fused kernel can run on x's device and dtype (float32 natively; float64 is
/// converted to float32).
bool available(const torch::Tensor& x);

/// Whether SinkhornBackend::Auto picks the fused kernel for x (float32 on CPU or CUDA).
bool preferred(const torch::Tensor& x);

/// max_ij |x_i - y_j|^2 over the live points (weight > 0) of each pair, [B] float64, from the
/// coordinates without an N x M array (0 where a side has no live point).
torch::Tensor maxLiveCost(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b);

/// Solves with the fused kernels. x [B,N,d], y [B,M,d], a [B,N], b [B,M] validated, eps [B]
/// absolute (float64).
SinkhornResult solve(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const torch::Tensor& eps, const SinkhornOptions& options);

/// Outputs of one pass over the rows of the plan given potentials (see kernels::RowOutputs).
struct RowPass
{
    torch::Tensor mass;      ///< [B,N] float64
    torch::Tensor cost;      ///< [B,N] float64
    torch::Tensor weightedY; ///< [B,N,d] float32
    torch::Tensor argmax;    ///< [B,N] int64
    torch::Tensor sampled;   ///< [B,N] int64
};

struct RowPassRequest
{
    bool mass = false;
    bool cost = false;
    bool weightedY = false;
    bool argmax = false;
    bool sampled = false;
    std::uint64_t seed = 0;
};

RowPass rowPass(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& r, const RowPassRequest& request);

/// Column masses [B,M] (float64).
torch::Tensor colMass(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& r);

/// k best log P_ij per row: values [B,N,k] float32, indices [B,N,k] int64 (CPU tensors).
std::pair<torch::Tensor, torch::Tensor> topK(const torch::Tensor& x, const torch::Tensor& y,
    const torch::Tensor& a, const torch::Tensor& b, const SinkhornResult& r, int k);

} // namespace wfm::ot::fused
