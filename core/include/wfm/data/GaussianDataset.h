#pragma once

#include "wfm/data/PointCloudDataset.h"
#include "wfm/data/SourceNoise.h"

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

/// Families of Gaussians N(m, S) for Bures-Wasserstein flow matching (DESIGN.md, "Gaussians"):
/// the dataset type, its split, normalisation, batch sampler, the source distributions (t = 0,
/// "noise") and the built-in synthetic families with their mean-covariance relationships.
///
/// Conventions (as PointCloudDataset.h): CPU tensors, means / covariances float32, labels and
/// indices int64; every random choice of the dataset side comes from data::Rng with an explicit
/// seed, so a seed means the same data on every platform. Noise sampling draws from a
/// torch::Generator (like SourceNoise).
namespace wfm::data {

struct GaussianSplit;

/// A family of M Gaussians in R^d, optionally with a discrete label per Gaussian.
///
/// Invariants (checked by validate()): means [M,d] float32 finite; covariances [M,d,d] float32
/// finite, symmetric and positive definite; labels undefined or [M] int64 in
/// [0, labelNames.size()). Copies share tensor storage.
struct GaussianDataset
{
    torch::Tensor means;       ///< [M,d] float32
    torch::Tensor covariances; ///< [M,d,d] float32 SPD
    torch::Tensor labels;      ///< [M] int64, or undefined
    std::vector<std::string> labelNames; ///< names of the labels 0..L-1 (with labels only)
    std::string name;          ///< short name ("gaussian-spiral", a file's stem)
    std::string source;        ///< the data spec it was loaded with

    std::int64_t count() const { return means.defined() ? means.size(0) : 0; }
    std::int64_t dim() const { return means.defined() ? means.size(1) : 0; }
    bool hasLabels() const { return labels.defined(); }
    std::int64_t numLabels() const { return static_cast<std::int64_t>(labelNames.size()); }

    /// The Gaussians at `indices` (any order, repeats allowed) with their labels.
    /// Throws ConfigError for an index out of range.
    GaussianDataset subset(const std::vector<std::int64_t>& indices) const;

    /// Deep copy.
    GaussianDataset clone() const;

    /// Random train/test partition, deterministic given the seed and identical in its choice of
    /// rows to PointCloudDataset::split for the same labels: stratified by label (each label's
    /// rows shuffled with Rng(seed, 0x5EB17), round(testFraction * count) to the test set),
    /// otherwise round(testFraction * M) of all rows. Indices increase within each part.
    /// Throws ConfigError unless testFraction is in [0, 1).
    GaussianSplit split(double testFraction, std::uint64_t seed) const;

    /// Throws DatasetError "WHAT: problem", naming the field (means, covariances, labels) and the
    /// first offending row, unless the invariants hold: shapes and dtypes, non-finite values,
    /// a non-symmetric covariance (|S - S^T| > 1e-5 max |S|), a covariance that is not positive
    /// definite (smallest eigenvalue <= 0, computed in float64), labels out of range or without
    /// names.
    void validate(const std::string& what) const;

    /// Multi-line text: count, dimension, labels with counts, mean covariance trace and the range
    /// of covariance eigenvalues, memory.
    std::string summaryText() const;

    /// Moment matching: Gaussian k is the weighted mean m_k = sum_i w_i x_i and the weighted
    /// covariance S_k = sum_i w_i (x_i - m_k)(x_i - m_k)^T + ridge I of the live points of cloud k
    /// (weights sum to 1, as PointCloudDataset stores them; computed in float64). Labels, names and
    /// the source are carried over. Throws ConfigError for an empty dataset or ridge < 0 (with
    /// ridge = 0 a cloud with fewer than d+1 affinely independent points gives a singular S).
    static GaussianDataset fromPointClouds(const PointCloudDataset& clouds, double ridge = 1e-6);
};

/// The two parts of GaussianDataset::split().
struct GaussianSplit
{
    GaussianDataset train;
    GaussianDataset test;
    std::vector<std::int64_t> trainIndices; ///< rows of the original dataset, increasing
    std::vector<std::int64_t> testIndices;  ///< rows of the original dataset, increasing
};

// ------------------------------------------------------------------------------------------
// Built-in families, reachable as `builtin:NAME?key=value&...`. Each is a pure function of its
// options (Gaussian k drawn from Rng(seed, k)). Common options: count (default 1000), seed (0).
// ------------------------------------------------------------------------------------------

/// `gaussian-spiral` (d = 2, the reference's test case). Gaussian k has a position s ~ U[0,1]
/// along the Archimedean spiral c(theta) = r(theta) (cos theta, sin theta),
/// r = kSpiralR0 + kSpiralGrowth * theta, theta = kSpiralTheta0 + s (kSpiralTheta1 - kSpiralTheta0);
/// its mean is c(theta) plus isotropic N(0, noise^2) jitter (option `noise`, default 0); its
/// covariance has its major axis along the spiral's unit tangent at theta, with standard
/// deviations sigma_major(s) = kSpiralMajor0 + s (kSpiralMajor1 - kSpiralMajor0) (growing along
/// the spiral) and sigma_minor = kSpiralMinorRatio * sigma_major.
inline constexpr double kSpiralR0 = 0.3;
inline constexpr double kSpiralGrowth = 0.25;
inline constexpr double kSpiralTheta0 = 1.5707963267948966;  ///< pi / 2
inline constexpr double kSpiralTheta1 = 12.566370614359172;  ///< 4 pi
inline constexpr double kSpiralMajor0 = 0.06;
inline constexpr double kSpiralMajor1 = 0.3;
inline constexpr double kSpiralMinorRatio = 0.3;

/// The spiral's point, unit tangent and axis lengths at position s in [0,1].
struct GaussianSpiralPoint
{
    double x = 0, y = 0;   ///< c(theta(s))
    double tx = 0, ty = 0; ///< unit tangent (direction of increasing s)
    double majorStd = 0;   ///< sigma_major(s)
    double minorStd = 0;   ///< sigma_minor(s)
};
GaussianSpiralPoint gaussianSpiralAt(double s);

/// `gaussian-ring3d` (d = 3): means on the circle of radius kRingRadius in the xy-plane at angle
/// phi ~ U[0, 2 pi) (plus isotropic jitter `noise`, default 0). The ellipsoid's axes:
/// kRingStd[0] along the tangent e_t = (-sin phi, cos phi, 0); kRingStd[1] along
/// u = cos(phi/2) e_r + sin(phi/2) e_z and kRingStd[2] along w = -sin(phi/2) e_r + cos(phi/2) e_z
/// (e_r = (cos phi, sin phi, 0)): the cross-section turns by half a turn once round the ring, a
/// Moebius twist, continuous since an ellipsoid is symmetric under axis flips.
inline constexpr double kRingRadius = 2.0;
inline constexpr double kRingStd[3] = { 0.35, 0.18, 0.06 };

/// Covariance [3,3] float64 of gaussian-ring3d at angle phi.
torch::Tensor gaussianRing3dCovariance(double phi);

/// `gaussian-eig8` (d = 8): means m ~ N(0, I_8); covariance S(m) = V(m) diag(lambda(m)) V(m)^T,
/// a deterministic function of the mean (the same for every seed):
///   lambda_k(m) = kEig8Base * exp(-kEig8Decay k + kEig8Gain tanh(m_k)),  k = 0..7
///   V(m) = Q0 C(m),  C(m) = (I - K)^(-1) (I + K)  (Cayley transform, orthogonal),
///   K = kEig8Twist (m a^T - a m^T),  a = (1, ..., 1) / sqrt(8),
/// with Q0 a fixed random orthogonal matrix (Rng(kEig8BasisSeed), QR of a Gaussian matrix with
/// the signs fixed). So both the spectrum and the eigenvectors depend on the mean.
inline constexpr double kEig8Base = 0.2;
inline constexpr double kEig8Decay = 0.35;
inline constexpr double kEig8Gain = 0.6;
inline constexpr double kEig8Twist = 0.3;
inline constexpr std::uint64_t kEig8BasisSeed = 0xE16E8ULL;

/// lambda(m) [M,8] float64 for means [M,8] (any floating dtype), in the index order k above.
torch::Tensor gaussianEig8Eigenvalues(const torch::Tensor& means);
/// S(m) [M,8,8] float64 for means [M,8].
torch::Tensor gaussianEig8Covariances(const torch::Tensor& means);

/// Names of the built-in Gaussian families: gaussian-eig8, gaussian-ring3d, gaussian-spiral.
std::vector<std::string> gaussianBuiltinNames();
/// Whether `name` is one of gaussianBuiltinNames().
bool isGaussianBuiltin(const std::string& name);
/// Option keys of a family with their defaults as text. Throws ConfigError for an unknown name.
std::map<std::string, std::string> gaussianBuiltinOptions(const std::string& name);

/// Builds a built-in family (validated, name = the family, source = "builtin:NAME").
/// Throws ConfigError for an unknown name or option key (listing the valid ones), a malformed
/// value, count < 1 or noise < 0.
GaussianDataset makeGaussianBuiltin(
    const std::string& name, const std::map<std::string, std::string>& options = {});

// ------------------------------------------------------------------------------------------
// Specs and files
// ------------------------------------------------------------------------------------------

/// True for `builtin:gaussian-*` specs and for `npz:PATH` / `PATH.npz` archives that exist and
/// hold a `means` member. Never throws (false for malformed specs or unreadable files).
bool isGaussianSpec(const std::string& spec);

/// Loads the Gaussians a data spec names, validated, with source = the spec:
///  - builtin:gaussian-*[?options]: makeGaussianBuiltin;
///  - npz:PATH / PATH.npz with `means` [M,d] and `covariances` [M,d,d] (floating), optional
///    `labels` [M] (integer, 0..L-1) and `label_names` (a numpy unicode array or uint8
///    '\n'-joined UTF-8, as DataSpec.h; default "0".."L-1"); other members are ignored;
///  - any other spec: data::loadPointClouds(spec), then fromPointClouds (moment matching).
/// Throws ConfigError for a malformed spec or options, DatasetError naming the file, the field
/// and the problem for unreadable or invalid data.
GaussianDataset loadGaussians(const std::string& spec);

/// Writes `data` (validated first) as a compressed .npz loadGaussians reads back: means,
/// covariances (float32), labels (int64) and label_names (uint8, '\n'-joined) when labelled.
/// Replaced atomically. Throws DatasetError for invalid data or a build without .npz support,
/// ConfigError for a label name containing '\n', wfm::Error when writing fails.
void writeGaussianNpz(const std::string& path, const GaussianDataset& data);

// ------------------------------------------------------------------------------------------
// Normalisation
// ------------------------------------------------------------------------------------------

/// Affine normalisation of Gaussians fitted on the training means: m -> (m - c) / s and
/// S -> S / s^2 (the push-forward of N(m,S) by x -> (x - c) / s), stored in checkpoints.
/// Kinds (Normalization::Kind names): None; GlobalMinMax (c = centre of the bounding box of the
/// means, s = half its longest side); Standardize (c = mean of the means,
/// s = sqrt(mean |m - c|^2 / d)). PerCloud is not defined for Gaussians (ConfigError).
/// A degenerate scale (all means equal) is taken as 1.
struct GaussianNormalization
{
    using Kind = Normalization::Kind;

    Kind kind = Kind::None;
    std::vector<double> center; ///< [d] (GlobalMinMax, Standardize); empty for None
    double scale = 1.0;

    /// Throws ConfigError for an empty dataset or Kind::PerCloud.
    static GaussianNormalization fit(const GaussianDataset& train, Kind kind);

    /// (means [...,d], covs [...,d,d]) -> normalised copies; any floating dtype and device.
    /// Throws ConfigError if d does not match the fitted centre or the shapes disagree.
    std::pair<torch::Tensor, torch::Tensor> apply(
        const torch::Tensor& means, const torch::Tensor& covs) const;
    /// Inverse of apply(): m * s + c, S * s^2.
    std::pair<torch::Tensor, torch::Tensor> invert(
        const torch::Tensor& means, const torch::Tensor& covs) const;
    /// Copy of `data` with apply() on its tensors.
    GaussianDataset apply(const GaussianDataset& data) const;

    /// {"kind": "standardize", "center": [...], "scale": s} (Normalization's format).
    std::string toJsonString() const;
    /// Throws ConfigError for malformed JSON, per_cloud, or a bad scale / centre.
    static GaussianNormalization fromJsonString(const std::string& text);
};

// ------------------------------------------------------------------------------------------
// Batches
// ------------------------------------------------------------------------------------------

/// One batch drawn by GaussianBatchSampler.
struct GaussianBatch
{
    torch::Tensor means;       ///< [B,d] float32
    torch::Tensor covariances; ///< [B,d,d] float32
    torch::Tensor labels;      ///< [B] int64, or undefined
    torch::Tensor indices;     ///< [B] int64 rows of the dataset
};

/// Draws batches uniformly with replacement; batch s is a pure function of (seed, s) (rows from
/// Rng(seed, s)), so state()/setState() resume the identical stream, as BatchSampler.
class GaussianBatchSampler
{
public:
    /// Throws ConfigError for an empty dataset or batchSize < 1.
    GaussianBatchSampler(const GaussianDataset& data, int batchSize, std::uint64_t seed);

    GaussianBatch next();
    GaussianBatch batchAt(std::uint64_t s) const;

    std::uint64_t state() const { return m_step; }
    void setState(std::uint64_t step) { m_step = step; }
    int batchSize() const { return m_batchSize; }
    std::uint64_t seed() const { return m_seed; }
    const GaussianDataset& dataset() const { return m_data; }

private:
    GaussianDataset m_data;
    int m_batchSize;
    std::uint64_t m_seed;
    std::uint64_t m_step = 0;
};

// ------------------------------------------------------------------------------------------
// Source distributions (t = 0)
// ------------------------------------------------------------------------------------------

/// Kinds of Gaussian source noise.
enum class GaussianNoiseKind {
    /// The reference's default, fitted on the (normalised) training set: means
    /// m = mu + sigma (.) g, g ~ N(0, I), with mu and sigma the per-coordinate mean and
    /// (population) standard deviation of the training means; covariances from a Wishart
    /// distribution S = (c / n) sum_{j<n} z_j z_j^T, z_j ~ N(0, I_d), with n = ceil(dof * d)
    /// degrees of freedom (dof default 5, the reference's degrees_of_freedom_scale) and c the
    /// average diagonal entry of the training covariances (the reference's cov_scale), so
    /// E[S] = c I; then + 1e-6 c I so every draw is SPD.
    Wishart,
    /// Means N(0, I); covariances the Wishart above with c = 1.
    StandardNormal,
    /// User-given source Gaussians (a second dataset), by index or drawn at random.
    Gaussians
};

/// "wishart", "standard_normal", "gaussians".
std::string gaussianNoiseKindName(GaussianNoiseKind kind);
/// Inverse of gaussianNoiseKindName ("normal" also means StandardNormal). Throws ConfigError
/// listing the valid names.
GaussianNoiseKind parseGaussianNoiseKind(const std::string& name);

/// A fitted Gaussian source distribution.
class GaussianNoise
{
public:
    GaussianNoise() = default;

    /// Fits Wishart or StandardNormal on `train` (only its dimension for StandardNormal).
    /// dof >= 1 scales the degrees of freedom n = ceil(dof * d) (>= d, so S is nonsingular).
    /// Throws ConfigError for Gaussians (use fromGaussians), an empty dataset or dof < 1.
    static GaussianNoise fit(GaussianNoiseKind kind, const GaussianDataset& train, double dof = 5.0);
    /// StandardNormal noise in dimension d >= 1.
    static GaussianNoise standardNormal(std::int64_t dim, double dof = 5.0);
    /// Wishart noise with explicit parameters: meanCenter, meanStd [d] (std >= 0), covScale > 0.
    static GaussianNoise wishart(const torch::Tensor& meanCenter, const torch::Tensor& meanStd,
        double covScale, double dof = 5.0);
    /// User-given sources (validated; normalise them like the targets first).
    /// Throws ConfigError for an empty dataset, DatasetError for an invalid one.
    static GaussianNoise fromGaussians(const GaussianDataset& sources, CloudPairing pairing);

    GaussianNoiseKind kind() const { return m_kind; }
    std::int64_t dim() const { return m_dim; }
    double dof() const { return m_dof; }
    /// Degrees of freedom n = ceil(dof * d) of the Wishart draws.
    std::int64_t degreesOfFreedom() const;
    torch::Tensor meanCenter() const { return m_meanCenter; } ///< [d] float32
    torch::Tensor meanStd() const { return m_meanStd; }       ///< [d] float32
    double covScale() const { return m_covScale; }
    CloudPairing pairing() const { return m_pairing; }
    const GaussianDataset& sources() const { return m_sources; }

    /// Draws B source Gaussians: (means [B,d], covariances [B,d,d]) float32 CPU, covariances
    /// symmetric positive definite. `indices` [B] int64 are the target rows (used by
    /// Gaussians/ByIndex only; may be undefined otherwise). Order of the draws: means g [B,d],
    /// then z [B,n,d] (Wishart, StandardNormal); the source rows [B] (Gaussians/Random).
    /// Throws ConfigError for batchSize < 0 or a ByIndex index out of range / missing indices.
    std::pair<torch::Tensor, torch::Tensor> sample(
        std::int64_t batchSize, const torch::Tensor& indices, torch::Generator& generator) const;

    /// JSON text with the kind, dimension and parameters (Gaussians: the pairing, the sources'
    /// spec, count and dimension, not the tensors).
    std::string toJsonString() const;
    /// Inverse of toJsonString(). For Gaussians pass the (normalised) sources; without them the
    /// spec is reloaded with loadGaussians() (unnormalised!). Throws ConfigError for malformed
    /// JSON or sources whose count / dimension differ from the stored ones.
    static GaussianNoise fromJsonString(
        const std::string& text, const GaussianDataset* sources = nullptr);

private:
    GaussianNoiseKind m_kind = GaussianNoiseKind::StandardNormal;
    std::int64_t m_dim = 0;
    double m_dof = 5.0;
    torch::Tensor m_meanCenter;
    torch::Tensor m_meanStd;
    double m_covScale = 1.0;
    CloudPairing m_pairing = CloudPairing::Random;
    GaussianDataset m_sources;
};

} // namespace wfm::data
