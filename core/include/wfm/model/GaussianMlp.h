#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace wfm::model {

/// Options of the Gaussian velocity field (DESIGN.md, "Gaussians": an MLP over
/// [m, lower triangle of S], time and label, predicting (dm, W)).
struct GaussianMlpOptions
{
    GaussianMlpOptions() = default;
    explicit GaussianMlpOptions(int64_t dim)
        : dim(dim)
    {
    }

    /// d, the dimension of the Gaussians.
    int64_t dim = 0;
    /// Hidden width of the residual stream.
    int64_t width = 512;
    /// Number of residual blocks.
    int64_t blocks = 4;
    /// Discrete classes (0 = none). Labels are 0..numLabels-1; index numLabels is the null label
    /// of classifier-free guidance, embedded as the zero one-hot (as SetTransformer).
    int64_t numLabels = 0;
    /// F, Fourier frequencies of the time embedding: omega_k = k pi, k < F, features
    /// [cos(omega t), sin(omega t)] (t in [0,1]).
    int64_t timeFrequencies = 8;
    /// Dropout after each block's activation (train() mode only).
    double dropout = 0.0;
    /// Variance scale of the heads' initialisation (so the initial field is nearly zero).
    double headInitScale = 1e-4;
    /// LayerNorm epsilon.
    double layerNormEps = 1e-6;

    GaussianMlpOptions& setDim(int64_t v) { dim = v; return *this; }
    GaussianMlpOptions& setWidth(int64_t v) { width = v; return *this; }
    GaussianMlpOptions& setBlocks(int64_t v) { blocks = v; return *this; }
    GaussianMlpOptions& setNumLabels(int64_t v) { numLabels = v; return *this; }
    GaussianMlpOptions& setTimeFrequencies(int64_t v) { timeFrequencies = v; return *this; }
    GaussianMlpOptions& setDropout(double v) { dropout = v; return *this; }
    GaussianMlpOptions& setHeadInitScale(double v) { headInitScale = v; return *this; }
    GaussianMlpOptions& setLayerNormEps(double v) { layerNormEps = v; return *this; }

    /// Throws ConfigError naming the field if a value is out of range.
    void validate() const;
    /// A flat JSON object with every field: {"dim":2,"width":512,...}.
    std::string toJsonString() const;
    /// Parses toJsonString()'s format (missing fields keep their defaults; unknown fields are an
    /// error) and validates. Throws ConfigError.
    static GaussianMlpOptions fromJsonString(const std::string& json);

    bool operator==(const GaussianMlpOptions& other) const;
};

/// The predicted (or target) velocity of a Gaussian: v(x) = dm + W (x - m).
struct GaussianVelocity
{
    torch::Tensor dm; ///< [B,d] velocity of the mean
    torch::Tensor W;  ///< [B,d,d] symmetric; d/dt S = W S + S W
};

/// The Gaussian velocity field v_theta(m, S, t, label). Time convention (DESIGN.md): t = 0 noise,
/// t = 1 data.
///
/// Layout: input features [m, tril(S)] (d + d(d+1)/2, lower triangle row by row) -> Linear(width);
/// time Fourier features -> Linear(width), label one-hot -> Linear(width) (null label = zero
/// one-hot, giving the bias only), summed into c; `blocks` residual blocks
/// h <- h + Linear(Dropout(SiLU(Linear(LayerNorm(h + c))))); final LayerNorm; two heads:
/// Linear(width -> d) for dm and Linear(width -> d(d+1)/2) for the lower triangle of W, mirrored
/// to a symmetric W. Weights lecun-normal, biases zero, the heads with variance scale
/// headInitScale.
class GaussianMlpImpl : public torch::nn::Cloneable<GaussianMlpImpl>
{
public:
    explicit GaussianMlpImpl(const GaussianMlpOptions& options);

    void reset() override;

    /// m [B,d], S [B,d,d] (dtype of the model), t [B] or a scalar, labels [B] int64 in
    /// [0, numLabels] (numLabels = null) or undefined (= all null); must be undefined when
    /// numLabels == 0. Returns dm [B,d] and a symmetric W [B,d,d].
    /// Throws ConfigError on shape, dtype or range problems.
    GaussianVelocity forward(const torch::Tensor& m, const torch::Tensor& S, const torch::Tensor& t,
        const torch::Tensor& labels = {});

    int64_t parameterCount() const;
    const GaussianMlpOptions& options() const { return m_options; }

    torch::nn::Linear inputEmbedding { nullptr };
    torch::nn::Linear timeEmbedding { nullptr };
    torch::nn::Linear labelEmbedding { nullptr }; ///< null unless numLabels > 0
    torch::nn::ModuleList norms { nullptr };
    torch::nn::ModuleList hidden { nullptr };
    torch::nn::ModuleList outputs { nullptr };
    torch::nn::LayerNorm headNorm { nullptr };
    torch::nn::Linear meanHead { nullptr };
    torch::nn::Linear covHead { nullptr };

private:
    GaussianMlpOptions m_options;
    torch::Tensor m_frequencies; ///< [F] buffer
    torch::Tensor m_trilRows;    ///< [d(d+1)/2] int64 buffer
    torch::Tensor m_trilCols;    ///< [d(d+1)/2] int64 buffer
    torch::Tensor m_symIndex;    ///< [d*d] int64 buffer: tril index of entry (i,j)
};
TORCH_MODULE(GaussianMlp);

/// Classifier-free guidance: v = v_u + gamma (v_c - v_u) for both dm and W, with one forward pass
/// over the batch concatenated with its null-label copy. gamma = 1 gives v_c. labels must be
/// defined and the model conditional. Throws ConfigError otherwise.
GaussianVelocity guidedGaussianVelocity(GaussianMlp& model, const torch::Tensor& m,
    const torch::Tensor& S, const torch::Tensor& t, const torch::Tensor& labels, double gamma);

} // namespace wfm::model
