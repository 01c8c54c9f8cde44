#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

/// Families of point clouds: the dataset type, its train/test split, its normalisation and the
/// batch sampler the training loop draws from (DESIGN.md, "Point clouds", step 1).
///
/// Conventions shared by everything here:
///  - CPU tensors; points are float32, weights float32, sizes / labels / indices int64.
///  - A cloud k of n_k points occupies the first n_k slots of its row ("live" points); the rest
///    of the row is padding with coordinates 0 and weight 0. The weights are the mask.
///  - Every random choice comes from Rng below, seeded explicitly, so results are identical on
///    every platform and build for the same seed.
namespace wfm::data {

/// Small deterministic random generator (xoshiro256** seeded through SplitMix64). Used for the
/// synthetic families, splits and batch draws so that a seed means the same stream everywhere
/// (std:: distributions differ between standard libraries). Not thread safe; not cryptographic.
class Rng
{
public:
    /// Generator for (seed, stream): different streams of one seed are independent.
    explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0);

    /// Next raw 64-bit value.
    std::uint64_t nextU64();
    /// Uniform double in [0, 1) with 53 random bits.
    double uniform();
    /// Uniform double in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    /// Uniform integer in [0, n), without modulo bias. n must be > 0.
    std::uint64_t below(std::uint64_t n);
    /// Uniform integer in [lo, hi] (inclusive). Requires lo <= hi.
    std::int64_t between(std::int64_t lo, std::int64_t hi);
    /// Standard normal deviate (Marsaglia polar method; the spare value is cached).
    double normal();

private:
    std::array<std::uint64_t, 4> m_s {};
    double m_spare = 0.0;
    bool m_hasSpare = false;
};

/// Summary of a dataset, for `wfm inspect` and the GUI's data panel.
struct DatasetSummary
{
    std::int64_t count = 0;     ///< number of clouds K
    std::int64_t dim = 0;       ///< point dimension d
    std::int64_t maxPoints = 0; ///< padded size Nmax
    std::int64_t minSize = 0;   ///< smallest live size
    double meanSize = 0.0;      ///< mean live size
    std::int64_t maxSize = 0;   ///< largest live size
    std::int64_t totalPoints = 0;          ///< sum of live sizes
    std::vector<std::string> labelNames;   ///< empty without discrete labels
    std::vector<std::int64_t> labelCounts; ///< clouds per label, same order as labelNames
    std::int64_t condDim = 0;              ///< width c of the conditioning vectors, 0 if none
    std::int64_t memoryBytes = 0;          ///< bytes held by the dataset's tensors
    /// Multi-line human-readable text ("clouds: 2000\ndim: 2\n...").
    std::string toText() const;
};

struct DatasetSplit;

/// A family of K point clouds in R^d, padded to Nmax points.
///
/// Invariants (checked by validate()): points [K,Nmax,d] float32; weights [K,Nmax] float32 with
/// positive weights summing to 1 on the first sizes[k] slots and 0 after; padded coordinates 0;
/// sizes [K] int64 >= 1; either no conditioning, discrete labels [K] int64 in
/// [0, labelNames.size()), or continuous conditioning vectors cond [K,c] float32 (not both).
/// Copies share tensor storage (as torch::Tensor does); use clone() for an independent copy.
struct PointCloudDataset
{
    torch::Tensor points;  ///< [K,Nmax,d] float32, padding 0
    torch::Tensor weights; ///< [K,Nmax] float32, per-cloud weights (uniform 1/n_k unless given)
    torch::Tensor sizes;   ///< [K] int64 live sizes n_k
    torch::Tensor labels;  ///< [K] int64 discrete labels, or undefined
    std::vector<std::string> labelNames; ///< names of the labels 0..L-1 (with labels only)
    torch::Tensor cond;    ///< [K,c] float32 continuous conditioning vectors, or undefined
    std::string name;      ///< short name ("rings", a file's stem)
    std::string source;    ///< where it came from (the data spec it was loaded with)

    /// Builds a dataset from live clouds [n_k,d] (any floating dtype, all the same d, n_k >= 1)
    /// with uniform weights 1/n_k. Throws ConfigError for empty input, a wrong rank, a mismatched
    /// d or an empty cloud.
    static PointCloudDataset fromClouds(const std::vector<torch::Tensor>& clouds);

    /// Builds a dataset from padded points [K,N,d] and weights [K,N] (weights > 0 mark live
    /// points, anywhere in the row; they are moved to the front in their order, and each cloud's
    /// weights are divided by their sum). Padded coordinates become 0. Throws DatasetError naming
    /// `what` for negative or non-finite weights or a cloud without positive weight, ConfigError
    /// for shape mismatches.
    static PointCloudDataset fromPadded(
        const torch::Tensor& points, const torch::Tensor& weights, const std::string& what);

    /// Builds a dataset from packed points [total,d] and sizes [K] (clouds stored one after the
    /// other), with uniform weights. Throws DatasetError naming `what` unless every size is >= 1
    /// and they add up to `total`.
    static PointCloudDataset fromPacked(
        const torch::Tensor& points, const torch::Tensor& sizes, const std::string& what);

    std::int64_t count() const { return points.defined() ? points.size(0) : 0; }
    std::int64_t dim() const { return points.defined() ? points.size(2) : 0; }
    std::int64_t maxPoints() const { return points.defined() ? points.size(1) : 0; }
    bool hasLabels() const { return labels.defined(); }
    std::int64_t numLabels() const { return static_cast<std::int64_t>(labelNames.size()); }
    bool hasCond() const { return cond.defined(); }
    std::int64_t condDim() const { return cond.defined() ? cond.size(1) : 0; }
    /// Live size of cloud k. Throws ConfigError if k is out of range.
    std::int64_t size(std::int64_t k) const;
    /// Live points of cloud k: [n_k,d] (a view into `points`).
    torch::Tensor cloud(std::int64_t k) const;

    /// Deep copy (no storage shared with this one).
    PointCloudDataset clone() const;

    /// The clouds at `indices` (any order, repeats allowed), with their labels / cond; the padding
    /// is trimmed to the largest live size among them. Throws ConfigError for an index out of
    /// range.
    PointCloudDataset subset(const std::vector<std::int64_t>& indices) const;

    /// Random train/test partition: deterministic given the seed. With discrete labels it is
    /// stratified: each label's clouds are shuffled and round(testFraction * count) of them go to
    /// the test set; otherwise round(testFraction * K) of all clouds. Indices within each part are
    /// in increasing order. testFraction in [0, 1); throws ConfigError otherwise.
    DatasetSplit split(double testFraction, std::uint64_t seed) const;

    /// Counts, sizes, label counts and memory; cheap (no pass over the points).
    DatasetSummary summary() const;

    /// Throws DatasetError, naming `what` and the first offending cloud, unless the invariants
    /// above hold and every live coordinate is finite. Checks: tensor shapes and dtypes, empty
    /// clouds, sizes beyond Nmax, non-finite coordinates, weights that are not positive on live
    /// points, zero on padding and summing to 1 (within 1e-4), padding coordinates not 0, labels
    /// out of range or without names, conditioning vectors with a wrong shape or non-finite values.
    void validate(const std::string& what) const;
};

/// Rows of a stratified train/test split, each list increasing.
struct SplitIndices
{
    std::vector<std::int64_t> train;
    std::vector<std::int64_t> test;
};

/// Splits rows 0..count-1: the rows of each label (labels [count] int64 >= 0, or all rows when
/// undefined) are shuffled by a Fisher-Yates pass seeded with `seed`, and the first
/// round(testFraction * group size) of each group go to the test set. Point clouds and
/// Gaussians split with it, so the same labels and seed give the same rows. Throws ConfigError
/// for a fraction outside [0, 1) or negative labels.
SplitIndices stratifiedSplit(std::int64_t count, const torch::Tensor& labels, double testFraction, std::uint64_t seed);

/// The two parts of PointCloudDataset::split().
struct DatasetSplit
{
    PointCloudDataset train;
    PointCloudDataset test;
    std::vector<std::int64_t> trainIndices; ///< rows of the original dataset, increasing
    std::vector<std::int64_t> testIndices;  ///< rows of the original dataset, increasing
};

/// Affine normalisation of the coordinates, fitted on the training set and stored in
/// checkpoints, so that generated clouds can be mapped back to data units.
///
/// Kinds:
///  - None: identity.
///  - GlobalMinMax: x -> (x - c) / s with c the centre of the bounding box of all live training
///    points and s half its longest side, so the box maps into [-1,1]^d with the same scale on
///    every axis (shapes keep their aspect) and the extreme points along the longest side touch
///    -1 and +1.
///  - Standardize: x -> (x - m) / s with m the mean of all live training points (each point
///    counts once) and s the scalar standard deviation sqrt(mean_i |x_i - m|^2 / d).
///  - PerCloud: each cloud is centred at its weighted mean and scaled so that its farthest live
///    point lies at distance 1. Nothing global is stored: invert() is the identity, so generated
///    clouds come back in normalised units (centred, unit radius).
/// Padding (weight 0) is never changed. A degenerate scale (all points equal) is taken as 1.
struct Normalization
{
    enum class Kind { None, GlobalMinMax, PerCloud, Standardize };

    Kind kind = Kind::None;
    std::vector<double> center; ///< [d] c or m (GlobalMinMax, Standardize); empty otherwise
    double scale = 1.0;         ///< s (GlobalMinMax, Standardize); 1 otherwise

    /// Fits `kind` on the live points of `train`. Throws ConfigError for an empty dataset.
    static Normalization fit(const PointCloudDataset& train, Kind kind);

    /// Normalised copy of points [..., N, d] with weights [..., N] (weights > 0: live); padding
    /// is copied unchanged. Any device and floating dtype. Throws ConfigError if d does not
    /// match the fitted centre or the shapes disagree.
    torch::Tensor apply(const torch::Tensor& points, const torch::Tensor& weights) const;

    /// Inverse of apply() (identity for None and PerCloud); padding unchanged.
    torch::Tensor invert(const torch::Tensor& points, const torch::Tensor& weights) const;

    /// Copy of `data` with apply() on its points (labels, weights and names kept).
    PointCloudDataset apply(const PointCloudDataset& data) const;

    /// JSON object text: {"kind": "global_minmax", "center": [...], "scale": s}.
    std::string toJsonString() const;
    /// Inverse of toJsonString(). Throws ConfigError for malformed text, an unknown kind or
    /// a non-positive / non-finite scale.
    static Normalization fromJsonString(const std::string& text);

    /// "none", "global_minmax", "per_cloud", "standardize".
    static std::string kindName(Kind kind);
    /// Inverse of kindName(); also accepts "minmax". Throws ConfigError listing the valid names.
    static Kind parseKind(const std::string& name);
};

/// One batch drawn by BatchSampler.
struct Batch
{
    torch::Tensor points;  ///< [B,n,d] float32, padding 0 (n = largest live size in the batch)
    torch::Tensor weights; ///< [B,n] float32, each row sums to 1
    torch::Tensor labels;  ///< [B] int64, or undefined when the dataset has no labels
    torch::Tensor cond;    ///< [B,c] float32, or undefined when the dataset has no cond
    torch::Tensor indices; ///< [B] int64 rows of the dataset
};

/// Draws batches of clouds uniformly with replacement, as the reference does.
///
/// Batch number s (counting from 0) is a pure function of (seed, s): state() is the number of
/// batches drawn so far, and setState(s) makes the next call to next() return batch s, so a
/// checkpoint that stores the state resumes the identical stream.
/// With subsamplePoints = m > 0, each drawn cloud with more than m live points is subsampled to
/// m points chosen uniformly without replacement (kept in their original order) and their
/// weights are renormalised to sum 1. The batch is trimmed to the largest live size it contains.
/// The sampler holds its own (storage-sharing) copy of the dataset.
class BatchSampler
{
public:
    /// Throws ConfigError for an empty dataset, batchSize < 1 or subsamplePoints < 0.
    BatchSampler(
        const PointCloudDataset& data, int batchSize, std::uint64_t seed, int subsamplePoints = 0);

    /// The next batch.
    Batch next();
    /// Batch number s without changing the state.
    Batch batchAt(std::uint64_t s) const;

    /// Number of batches drawn so far.
    std::uint64_t state() const { return m_step; }
    /// Makes next() continue with batch number `step`.
    void setState(std::uint64_t step) { m_step = step; }

    int batchSize() const { return m_batchSize; }
    std::uint64_t seed() const { return m_seed; }
    int subsamplePoints() const { return m_subsample; }
    const PointCloudDataset& dataset() const { return m_data; }

private:
    PointCloudDataset m_data;
    int m_batchSize;
    std::uint64_t m_seed;
    int m_subsample;
    std::uint64_t m_step = 0;
};

} // namespace wfm::data
