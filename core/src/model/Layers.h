#pragma once

// Internal: building blocks the set transformer and the Gaussian MLP share (initialisation,
// the time and label embeddings, layer norm under autocast).

#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

#include <cstdint>

namespace wfm::model::layers {

/// Linear layer with LeCun-normal weights scaled by `initScale` and zero bias.
torch::nn::Linear makeLinear(std::int64_t in, std::int64_t out, double initScale = 1.0);

/// Fourier features of the times: t [B] or a scalar (broadcast to B) -> [B, 2F]
/// = [cos(omega t), sin(omega t)] for the F frequencies `omega`, in `options`' dtype/device.
torch::Tensor timeFeatures(const torch::Tensor& t, std::int64_t B, const torch::Tensor& omega,
    const torch::TensorOptions& options);

/// One-hot rows [B, L] of integer labels in [0, L] where L (the null label) is the zero row, as
/// the reference; all-zero rows for undefined labels. Throws ConfigError naming `model` for a
/// wrong shape, a non-integer dtype or a label out of range.
torch::Tensor labelOneHot(const torch::Tensor& labels, std::int64_t B, std::int64_t L,
    const torch::TensorOptions& options, const char* model);

/// Layer norm in its parameters' precision: under bfloat16 autocast the linear layers return
/// bfloat16, which LibTorch's CPU layer norm does not take with float32 parameters.
torch::Tensor normalize(torch::nn::LayerNorm& norm, const torch::Tensor& x);

} // namespace wfm::model::layers
