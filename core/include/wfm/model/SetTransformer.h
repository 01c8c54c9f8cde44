#pragma once

#include "wfm/model/Attention.h"

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace wfm::model {

/// Options of the point-cloud velocity field (the reference's masked pre-LN set transformer).
/// Defaults are the reference's: width 512, 6 blocks, 4 heads, MLP 512, dropout 0.1.
struct SetTransformerOptions
{
    SetTransformerOptions() = default;
    explicit SetTransformerOptions(int64_t dim)
        : dim(dim)
    {
    }

    /// d, the point dimension (input and output).
    int64_t dim = 0;
    /// E, the embedding width; must be a multiple of heads.
    int64_t width = 512;
    int64_t blocks = 6;
    int64_t heads = 4;
    /// Hidden width of each block's MLP.
    int64_t mlpWidth = 512;
    /// Dropout after the MLP's first layer (train() mode only).
    double dropout = 0.1;
    /// Dropout on the attention probabilities (train() mode only).
    double attentionDropout = 0.1;
    /// Discrete classes (0 = none). Labels are 0..numLabels-1; the extra index numLabels is the
    /// "null" label of classifier-free guidance, embedded as the zero one-hot (as the reference).
    int64_t numLabels = 0;
    /// Width c of a continuous conditioning vector [B,c] (0 = none), embedded by a Linear(c->E).
    int64_t condDim = 0;
    /// F, the number of Fourier frequencies of the time embedding: omega_k = k pi / F, k < F,
    /// features [cos(omega t), sin(omega t)]. 0 = the reference: omega_k = 2 pi k / E for
    /// k < floor(E/2).
    int64_t timeFrequencies = 0;
    /// LayerNorm epsilon (Flax default, as the reference).
    double layerNormEps = 1e-6;
    /// Variance scale of the output head's initialisation (fan_in, truncated normal), so the
    /// initial velocity field is nearly zero.
    double headInitScale = 1e-5;
    /// Attention implementation: Auto picks Chunked for large B*H*N*N.
    AttentionImpl attention = AttentionImpl::Auto;
    /// Query rows per attention chunk (0 = automatic).
    int64_t chunkSize = 0;
    /// One attention-dropout mask per block shared by the batch and the heads (Flax's default,
    /// as the reference) instead of independent masks.
    bool broadcastAttentionDropout = true;

    SetTransformerOptions& setDim(int64_t v) { dim = v; return *this; }
    SetTransformerOptions& setWidth(int64_t v) { width = v; return *this; }
    SetTransformerOptions& setBlocks(int64_t v) { blocks = v; return *this; }
    SetTransformerOptions& setHeads(int64_t v) { heads = v; return *this; }
    SetTransformerOptions& setMlpWidth(int64_t v) { mlpWidth = v; return *this; }
    /// Sets both the MLP and the attention dropout.
    SetTransformerOptions& setDropout(double v) { dropout = v; attentionDropout = v; return *this; }
    SetTransformerOptions& setMlpDropout(double v) { dropout = v; return *this; }
    SetTransformerOptions& setAttentionDropout(double v) { attentionDropout = v; return *this; }
    SetTransformerOptions& setNumLabels(int64_t v) { numLabels = v; return *this; }
    SetTransformerOptions& setCondDim(int64_t v) { condDim = v; return *this; }
    SetTransformerOptions& setTimeFrequencies(int64_t v) { timeFrequencies = v; return *this; }
    SetTransformerOptions& setLayerNormEps(double v) { layerNormEps = v; return *this; }
    SetTransformerOptions& setHeadInitScale(double v) { headInitScale = v; return *this; }
    SetTransformerOptions& setAttention(AttentionImpl v) { attention = v; return *this; }
    SetTransformerOptions& setChunkSize(int64_t v) { chunkSize = v; return *this; }
    SetTransformerOptions& setBroadcastAttentionDropout(bool v)
    {
        broadcastAttentionDropout = v;
        return *this;
    }

    /// The number of time frequencies actually used (timeFrequencies or E/2).
    int64_t effectiveTimeFrequencies() const;

    /// Throws ConfigError if a value is out of range (dim < 1, width not a multiple of heads,
    /// dropout outside [0,1), ...).
    void validate() const;

    /// A flat JSON object with every field, e.g. {"dim":3,"width":512,...,"attention":"auto"}.
    std::string toJsonString() const;
    /// Parses toJsonString()'s format (a flat JSON object; missing fields keep their defaults,
    /// unknown fields are an error) and validates the result. With dimUnset, dim may be 0 (a
    /// config whose dimension comes from the data later). Throws ConfigError.
    static SetTransformerOptions fromJsonString(const std::string& json, bool dimUnset = false);

    bool operator==(const SetTransformerOptions& other) const;
};

/// One pre-LayerNorm block of the set transformer:
///   h = x + c;  x = x + MHA(LN(h));  x = x + W2 LeakyReLU_0.01(Dropout(W1 LN(x)))
/// with c [B,E] the time (+ label, + condition) embedding.
class SetTransformerBlockImpl : public torch::nn::Cloneable<SetTransformerBlockImpl>
{
public:
    explicit SetTransformerBlockImpl(const SetTransformerOptions& options);

    void reset() override;

    /// x [B,N,E], c [B,E], keyMask [B,N] bool (undefined = all live) -> [B,N,E].
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c,
        const torch::Tensor& keyMask = {});

    SetTransformerOptions options;
    torch::nn::LayerNorm attentionNorm { nullptr };
    MultiheadAttention attention { nullptr };
    torch::nn::LayerNorm mlpNorm { nullptr };
    torch::nn::Linear mlpIn { nullptr };
    torch::nn::Linear mlpOut { nullptr };
};
TORCH_MODULE(SetTransformerBlock);

/// The velocity field v_theta(x_t, t, label) on point clouds: a set transformer without
/// positional encoding (permutation equivariant), masked so that padded points have no
/// influence at all on live outputs. Time convention (DESIGN.md): t = 0 noise, t = 1 data.
///
/// Layout (mirrors the reference AttentionNN): per-point Linear(d->E); time Fourier features
/// -> Linear(2F->E); label one-hot -> Linear(numLabels->E) (null label = zero one-hot, giving
/// the bias only); condition Linear(c->E); blocks (SetTransformerBlock) each adding the summed
/// embedding before its attention LayerNorm; final LayerNorm -> Linear(E->d). Weights are
/// lecun-normal (truncated), biases zero, the head with variance scale headInitScale.
class SetTransformerImpl : public torch::nn::Cloneable<SetTransformerImpl>
{
public:
    explicit SetTransformerImpl(const SetTransformerOptions& options);

    void reset() override;

    /// Velocity of every point.
    ///   x: [B,N,d] positions (float32 or float64; padded coordinates may be anything, NaN too);
    ///   t: [B] (or a scalar) times in [0,1];
    ///   mask: [B,N] bool (true = live) or weights (live where > 0); undefined = all live;
    ///   labels: [B] int64 in [0, numLabels] (numLabels = null label); undefined = all null.
    ///           Must be undefined when numLabels == 0;
    ///   cond: [B,condDim] continuous condition, required when condDim > 0.
    /// Returns [B,N,d]; rows of padded points are exactly 0, and a cloud without live points
    /// gives all zeros. Throws ConfigError on shape, dtype or range problems.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
        const torch::Tensor& mask = {}, const torch::Tensor& labels = {},
        const torch::Tensor& cond = {});

    /// Number of scalar parameters.
    int64_t parameterCount() const;

    const SetTransformerOptions& options() const { return m_options; }

    torch::nn::Linear pointEmbedding { nullptr };
    torch::nn::Linear timeEmbedding { nullptr };
    torch::nn::Linear labelEmbedding { nullptr }; ///< null unless numLabels > 0
    torch::nn::Linear condEmbedding { nullptr };  ///< null unless condDim > 0
    torch::nn::ModuleList blocks { nullptr };
    torch::nn::LayerNorm headNorm { nullptr };
    torch::nn::Linear head { nullptr };

private:
    SetTransformerOptions m_options;
    torch::Tensor m_frequencies; ///< [F] buffer "timeFrequencies"
};
TORCH_MODULE(SetTransformer);

/// Classifier-free guidance: v = v_u + gamma (v_c - v_u), with v_c the velocity for `labels`
/// and v_u for the null label, computed in one forward pass over the batch concatenated with
/// its null-label copy ([2B,N,d]). gamma = 1 gives v_c, gamma = 0 gives v_u (reference
/// gamma 1.5). Shapes as SetTransformerImpl::forward; labels must be defined and the model
/// conditional (numLabels > 0); a continuous `cond` (condDim > 0) is shared by both halves.
/// Throws ConfigError otherwise.
torch::Tensor guidedVelocity(SetTransformer& model, const torch::Tensor& x, const torch::Tensor& t,
    const torch::Tensor& mask, const torch::Tensor& labels, double guidanceScale,
    const torch::Tensor& cond = {});

} // namespace wfm::model
