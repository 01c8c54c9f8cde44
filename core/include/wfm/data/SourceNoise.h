#pragma once

#include "wfm/data/PointCloudDataset.h"

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

/// Source distributions (t = 0, "noise") of point-cloud flow matching: DESIGN.md, "Point
/// clouds", step 1. A SourceNoise is fitted once on the (normalised) training set, stored in the
/// checkpoint as JSON, and draws one source cloud per target cloud with the target's mask.
namespace wfm::data {

/// Kinds of source noise.
enum class NoiseKind {
    /// The reference default ('chol_normal'): per cloud a random Cholesky factor
    /// L = Lbar + tril(Z * S), Z ~ N(0,1) elementwise, with Lbar and S the elementwise mean and
    /// (population) standard deviation of the Cholesky factors of the training clouds'
    /// covariances (+ 1e-6 I); the diagonal of L becomes |L_kk| + 1e-6; points x = scale * L g,
    /// g ~ N(0, I), zero mean; scale 2 as in the reference.
    CholNormal,
    StandardNormal, ///< every coordinate N(0, 1)
    Uniform,        ///< uniform on the bounding box of the training data's live points
    Clouds          ///< user-given source clouds (a second dataset), paired or drawn at random
};

/// How NoiseKind::Clouds picks the source cloud of batch entry b.
enum class CloudPairing {
    ByIndex, ///< source cloud indices[b] (the source dataset has one cloud per target cloud)
    Random   ///< a source cloud drawn uniformly at random (with replacement)
};

/// "chol_normal", "standard_normal", "uniform", "clouds".
std::string noiseKindName(NoiseKind kind);
/// Inverse of noiseKindName (also accepts "normal" for StandardNormal). Throws ConfigError
/// listing the valid names.
NoiseKind parseNoiseKind(const std::string& name);

/// A fitted source distribution. Copies share the source clouds' tensors.
///
/// sample() draws on the CPU from a torch::Generator (or a fresh one seeded with `seed`) and
/// returns the result on the weights' device, so a seed gives the same noise on every device.
/// Order of the draws (CholNormal): Z [B,d,d] first, then g [B,n,d], as the reference does.
class SourceNoise
{
public:
    /// Standard normal noise of dimension 0 (set one with a factory below).
    SourceNoise() = default;

    /// Fits `kind` (CholNormal, StandardNormal or Uniform) on `train`. CholNormal mirrors the
    /// reference's chol_stats: weighted covariances with every weight, padding included,
    /// floored at 1e-6 and renormalised (padded points sit at 0, so they pull each covariance
    /// very slightly towards the origin, exactly as in the reference), + 1e-6 I, Cholesky,
    /// elementwise mean and population std over clouds, in float64, stored as float32.
    /// `scale` multiplies CholNormal samples (reference: 2). Throws ConfigError for Clouds (use
    /// fromClouds), an empty dataset or a scale <= 0.
    static SourceNoise fit(NoiseKind kind, const PointCloudDataset& train, double scale = 2.0);

    /// Standard normal noise in dimension d >= 1.
    static SourceNoise standardNormal(std::int64_t dim);
    /// CholNormal noise from explicit parameters: cholMean, cholStd [d,d] (upper parts ignored),
    /// scale > 0.
    static SourceNoise cholNormal(
        const torch::Tensor& cholMean, const torch::Tensor& cholStd, double scale = 2.0);
    /// Uniform noise on the box [lower, upper] ([d] each, lower <= upper).
    static SourceNoise uniform(const torch::Tensor& lower, const torch::Tensor& upper);
    /// Source clouds: `sources` (validated) are used as they are (normalise them like the
    /// targets first). For batch entry b with k live target slots, k points of the chosen source
    /// cloud (m live points) fill them: k of the m drawn without replacement when m >= k, else
    /// all m (in random order) followed by k - m drawn with replacement.
    /// Throws ConfigError for an empty dataset; DatasetError for an invalid one.
    static SourceNoise fromClouds(const PointCloudDataset& sources, CloudPairing pairing);

    NoiseKind kind() const { return m_kind; }
    std::int64_t dim() const { return m_dim; }
    double scale() const { return m_scale; }
    torch::Tensor cholMean() const { return m_cholMean; } ///< [d,d] float32 (CholNormal)
    torch::Tensor cholStd() const { return m_cholStd; }   ///< [d,d] float32 (CholNormal)
    torch::Tensor lower() const { return m_lower; }       ///< [d] float32 (Uniform)
    torch::Tensor upper() const { return m_upper; }       ///< [d] float32 (Uniform)
    CloudPairing pairing() const { return m_pairing; }
    const PointCloudDataset& sources() const { return m_sources; } ///< (Clouds)

    /// Source points [B,n,d] float32 for target weights [B,n] (weights > 0: live) and target
    /// dataset rows `indices` [B] int64 (used by CloudPairing::ByIndex only; may be undefined
    /// otherwise). Padded slots are 0. Throws ConfigError for bad shapes or a ByIndex index out
    /// of range of the source clouds.
    torch::Tensor sample(
        const torch::Tensor& weights, const torch::Tensor& indices, torch::Generator& generator) const;
    /// As above with a fresh CPU generator seeded with `seed`.
    torch::Tensor sample(
        const torch::Tensor& weights, const torch::Tensor& indices, std::uint64_t seed) const;

    /// JSON text with the kind, dimension and parameters (float32 values written exactly).
    /// Clouds store the pairing, the source dataset's `source` spec, count and dimension, not the
    /// points.
    std::string toJsonString() const;
    /// Inverse of toJsonString(). For Clouds, pass the (normalised) source dataset in `sources`;
    /// without it the spec is reloaded with loadPointClouds(). Its count and dimension must match
    /// the stored ones. Throws ConfigError for malformed JSON or mismatched sources.
    static SourceNoise fromJsonString(
        const std::string& text, const PointCloudDataset* sources = nullptr);

private:
    NoiseKind m_kind = NoiseKind::StandardNormal;
    std::int64_t m_dim = 0;
    double m_scale = 1.0;
    torch::Tensor m_cholMean;
    torch::Tensor m_cholStd;
    torch::Tensor m_lower;
    torch::Tensor m_upper;
    CloudPairing m_pairing = CloudPairing::Random;
    PointCloudDataset m_sources;
};

} // namespace wfm::data
