#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace wfm::model {

/// How scaled dot-product attention is computed.
enum class AttentionImpl {
    /// Chunked when B*H*N*N exceeds AttentionOptions::autoThreshold, else Naive. On CUDA with
    /// LibTorch >= 2, at::scaled_dot_product_attention (fused kernels; its dropout is
    /// elementwise and drawn from the CUDA generator, not the reproducible masks below).
    Auto,
    /// Stock autograd ops: the [B,H,N,N] scores and probabilities are kept for backward.
    Naive,
    /// Memory-efficient: query rows are processed in chunks; backward recomputes each chunk's
    /// probabilities from Q, K and the saved per-row log-sum-exp (FlashAttention-style), so the
    /// memory is O(B*H*N*chunk) + O(B*N*H*D) instead of O(B*H*N*N).
    Chunked,
};

/// "auto", "naive", "chunked".
std::string attentionImplName(AttentionImpl impl);
/// Inverse of attentionImplName(). Throws ConfigError for an unknown name.
AttentionImpl attentionImplFromString(const std::string& name);

/// Options of multiHeadAttention().
struct AttentionOptions
{
    AttentionImpl impl = AttentionImpl::Auto;
    /// Query rows per chunk for Chunked; 0 = automatic (about kAutoChunkElements score
    /// entries per chunk, at least 16 rows).
    int64_t chunkSize = 0;
    /// Auto picks Chunked when B*H*N*N is larger than this (2^24 entries: 64 MiB of float32
    /// probabilities per block).
    int64_t autoThreshold = int64_t(1) << 24;
    /// Dropout probability on the attention probabilities (applied only when training).
    double dropout = 0.0;
    /// true: one [N,N] dropout mask shared by the whole batch and all heads (Flax's default,
    /// as in the reference); false: an independent mask per cloud and head.
    bool broadcastDropout = true;
    /// Seed of the dropout masks; unset: drawn from LibTorch's default CPU generator (so
    /// torch::manual_seed makes a run reproducible).
    std::optional<int64_t> seed;

    AttentionOptions& setImpl(AttentionImpl v) { impl = v; return *this; }
    AttentionOptions& setChunkSize(int64_t v) { chunkSize = v; return *this; }
    AttentionOptions& setAutoThreshold(int64_t v) { autoThreshold = v; return *this; }
    AttentionOptions& setDropout(double v) { dropout = v; return *this; }
    AttentionOptions& setBroadcastDropout(bool v) { broadcastDropout = v; return *this; }
    AttentionOptions& setSeed(int64_t v) { seed = v; return *this; }
};

/// Score entries per chunk targeted by the automatic chunk size (2^24: 64 MiB in float32).
inline constexpr int64_t kAutoChunkElements = int64_t(1) << 24;

/// Masked multi-head scaled dot-product attention
///   O = softmax(Q K^T / sqrt(D) + log(mask)) V,
/// with keys where keyMask is false excluded exactly (their probability is 0, so they have no
/// influence on any output; their values must be finite, since 0 * NaN is NaN).
///   q, k, v: [B,N,H,D] (the layout a projection gives after a view; float32 or float64);
///   keyMask: [B,N] bool, true = live key; undefined = all keys live.
/// Returns [B,N,H,D] contiguous (a view gives [B,N,H*D]). A cloud without any live key gets
/// all-zero outputs (and zero gradients), never NaN.
///
/// Dropout (when `training` and options.dropout > 0) multiplies the probabilities by
/// keep/(1-p) masks from attentionDropoutMask(): for Naive one draw covering rows [0,N), for
/// Chunked one draw per chunk (rows [r0, r0+C)); the Chunked backward regenerates the same
/// masks from the seed, so forward and backward agree exactly. Naive and Chunked draw
/// identical masks when the chunk covers all rows.
/// Throws ConfigError on shape, dtype or option problems.
torch::Tensor multiHeadAttention(const torch::Tensor& q, const torch::Tensor& k,
    const torch::Tensor& v, const torch::Tensor& keyMask, const AttentionOptions& options = {},
    bool training = false);

/// Self-attention with its joint Q/K/V projection: [Q|K|V] = x W^T + b split into heads, then
/// multiHeadAttention(). x [B,N,E], weight [3E,E], bias [3E] -> [B,N,H,D] (H = heads).
/// The Chunked path fuses the projection into its autograd node: it keeps x (instead of Q, K
/// and V) for backward and recomputes the projection there, so a block keeps one [B,N,E]
/// tensor for its attention input instead of three. Same semantics, masks and dropout as
/// multiHeadAttention(). Throws ConfigError on shape, dtype or option problems.
torch::Tensor projectedSelfAttention(const torch::Tensor& x, const torch::Tensor& weight,
    const torch::Tensor& bias, int64_t heads, const torch::Tensor& keyMask,
    const AttentionOptions& options = {}, bool training = false);

/// The implementation multiHeadAttention() uses for these sizes (Naive or Chunked, never Auto).
/// With LibTorch >= 2 on CUDA, Auto runs at::scaled_dot_product_attention instead of either.
AttentionImpl resolveAttentionImpl(const AttentionOptions& options, int64_t batch, int64_t heads,
    int64_t points, const torch::Device& device);

/// The query rows per chunk that Chunked uses for these sizes.
int64_t resolveChunkSize(const AttentionOptions& options, int64_t batch, int64_t heads,
    int64_t points);

/// The scaled dropout mask keep/(1-p) for query rows [rowStart, rowStart+rows) against
/// `cols` keys: [1,1,rows,cols] when broadcast, else [B,H,rows,cols]. Deterministic in
/// (seed, rowStart): drawn from a CPU generator seeded with a mix of both, then moved to
/// `options`' device and dtype.
torch::Tensor attentionDropoutMask(int64_t seed, int64_t rowStart, int64_t rows, int64_t cols,
    int64_t batch, int64_t heads, double p, bool broadcast, const torch::TensorOptions& options);

/// Options of MultiheadAttention: self-attention of width embedDim split into heads.
struct MultiheadAttentionOptions
{
    MultiheadAttentionOptions(int64_t embedDim, int64_t heads)
        : embedDim(embedDim)
        , heads(heads)
    {
    }
    int64_t embedDim;
    int64_t heads;
    /// Attention implementation, chunking and dropout (dropout applies in train() mode).
    AttentionOptions attention;

    MultiheadAttentionOptions& setAttention(const AttentionOptions& v) { attention = v; return *this; }
    MultiheadAttentionOptions& setDropout(double v) { attention.dropout = v; return *this; }
    MultiheadAttentionOptions& setImpl(AttentionImpl v) { attention.impl = v; return *this; }
    MultiheadAttentionOptions& setChunkSize(int64_t v) { attention.chunkSize = v; return *this; }
};

/// Masked multi-head self-attention: a joint Linear(E -> 3E) for Q, K, V, the attention
/// (projectedSelfAttention()), and Linear(E -> E) on the merged heads. Weights lecun-normal (truncated), biases zero, as
/// the reference (Flax MultiHeadDotProductAttention defaults).
class MultiheadAttentionImpl : public torch::nn::Cloneable<MultiheadAttentionImpl>
{
public:
    explicit MultiheadAttentionImpl(const MultiheadAttentionOptions& options);

    void reset() override;

    /// x [B,N,E], keyMask [B,N] bool (true = live; undefined = all live) -> [B,N,E].
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keyMask = {});

    MultiheadAttentionOptions options;
    torch::nn::Linear inProjection { nullptr };
    torch::nn::Linear outProjection { nullptr };
};
TORCH_MODULE(MultiheadAttention);

/// Lecun-normal initialisation as Flax does it, with a scale (variance scaling, fan_in,
/// truncated normal): values from N(0, s^2) truncated to [-2s, 2s] with
/// s = sqrt(scale / fan_in) / 0.87962566103423978 (so the variance is scale / fan_in).
/// weight: [out, in] (fan_in = in). Modifies the tensor in place (without autograd).
void lecunNormal_(torch::Tensor weight, double scale = 1.0);

} // namespace wfm::model
