#pragma once

#include "wfm/data/GaussianDataset.h"
#include "wfm/data/PointCloudDataset.h"
#include "wfm/flow/GaussianGenerator.h"
#include "wfm/flow/Generate.h"
#include "wfm/metrics/NicheClassifier.h"
#include "wfm/metrics/SetMetrics.h"

#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

/// Evaluation of a trained run against reference data: generate as many samples as the
/// reference has (sizes, labels and conditions follow it), then the set metrics (1-NNA, COV,
/// MMD) under Chamfer and EMD for clouds or Bures-Wasserstein for Gaussians, per-label 1-NNA,
/// niche label accuracy and the built-in Gaussian families' known relationships. Shared by
/// `wfm evaluate` and the desktop app's Evaluate tab.
namespace wfm::flow {

/// How the EMD metrics are computed.
enum class EmdMode {
    Exact,    ///< network simplex
    Entropic, ///< Sinkhorn
    None,     ///< skipped
};
/// "exact", "entropic", "none" and back; parseEmdMode throws ConfigError listing the names.
std::string emdModeName(EmdMode mode);
EmdMode parseEmdMode(const std::string& name);

/// Whether niche label accuracy is reported.
enum class NicheMode {
    Auto, ///< for niche data (builtin:tissue, h5ad:, csv:) with matching labels
    On,   ///< whenever the reference and the model share labels
    Off,
};

struct EvaluateOptions
{
    /// Generated samples; 0 = as many as the reference (after maxReference).
    std::int64_t count = 0;
    /// Use only the first n reference samples; 0 = all.
    std::int64_t maxReference = 0;
    /// Integration; steps 0, no integrator and NaN guidance = the run's generate settings.
    int steps = 0;
    std::optional<Integrator> integrator;
    double guidance = std::numeric_limits<double>::quiet_NaN();
    /// Points per cloud for the Chamfer and EMD metrics (seeded uniform subsets).
    std::int64_t chamferPoints = 512;
    std::int64_t emdPoints = 256;
    EmdMode emd = EmdMode::Exact;
    NicheMode niche = NicheMode::Auto;
    std::uint64_t seed = 0;
    bool ema = true;
    bool mixedPrecision = false;
};

/// Niche label accuracy (see metrics::evaluateGeneratedNiches) and the classifier's fit.
struct NicheEvaluation
{
    metrics::NicheAccuracyReport report;
    double classifierTrainAccuracy = 0.0;
};

struct CloudEvaluation
{
    std::string referenceName;
    data::PointCloudDataset reference; ///< the clouds compared against (after maxReference)
    std::int64_t heldOutCount = 0;     ///< reference clouds before maxReference
    GeneratedClouds generated;
    std::vector<std::int64_t> generatedSizes;
    int steps = 0;
    Integrator integrator = Integrator::Midpoint;
    double guidance = 1.0;
    bool labelled = false; ///< generated with the reference's labels
    metrics::SetMetricsResult chamfer;
    std::optional<metrics::SetMetricsResult> emd;
    /// Chamfer metrics of each label's generated clouds against its reference clouds (labels
    /// with fewer than 3 clouds in all are left out), and the mean of their 1-NNA.
    std::vector<std::pair<std::string, metrics::SetMetricsResult>> perLabel;
    std::optional<double> meanPerLabelNna;
    std::optional<NicheEvaluation> niche;
    double generationSeconds = 0.0;
    double seconds = 0.0;
};

struct GaussianEvaluation
{
    std::string referenceName;
    data::GaussianDataset reference;
    std::int64_t heldOutCount = 0;
    GeneratedGaussians generated;
    int steps = 0;
    Integrator integrator = Integrator::Midpoint;
    metrics::SetMetricsResult buresWasserstein;
    bool allPositiveDefinite = false;
    double minEigenvalue = 0.0;
    /// Built-in families only (builtinRelationshipErrors): generated and reference.
    std::map<std::string, double> relationshipGenerated;
    std::map<std::string, double> relationshipReference;
    double generationSeconds = 0.0;
    double seconds = 0.0;
};

/// The held-out split of a run's data (data.spec, test_fraction, split_seed). Throws
/// ConfigError when the split is empty.
data::PointCloudDataset heldOutClouds(const TrainConfig& config);
data::GaussianDataset heldOutGaussians(const TrainConfig& config);

/// Whether a data SPEC holds cellular niches (builtin:tissue, h5ad:, csv:).
bool isNicheSpec(const std::string& spec);

/// Evaluates `generator` against `reference` (named `referenceName` in reports). Niche accuracy
/// trains its classifier on the run's training split. Throws ConfigError for a dimension
/// mismatch.
CloudEvaluation evaluateClouds(const CloudGenerator& generator, const data::PointCloudDataset& reference,
    const std::string& referenceName, const EvaluateOptions& options);
GaussianEvaluation evaluateGaussians(const GaussianGenerator& generator,
    const data::GaussianDataset& reference, const std::string& referenceName, const EvaluateOptions& options);

/// At most m live points of each cloud, a seeded uniform subset without replacement, packed
/// into the first slots with uniform weights: ([K,N',d], [K,N']) float32 with
/// N' = min(m, largest cloud).
std::pair<torch::Tensor, torch::Tensor> subsampleClouds(
    const torch::Tensor& points, const torch::Tensor& weights, std::int64_t m, std::uint64_t seed);

} // namespace wfm::flow
