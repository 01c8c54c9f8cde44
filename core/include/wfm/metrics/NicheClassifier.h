#pragma once

#include "wfm/data/PointCloudDataset.h"

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

/// Niche label accuracy (DESIGN.md, "Metrics"): a classifier trained on real niches predicts the
/// centre cell's type from a niche (a point cloud in feature space); its accuracy on generated
/// niches of requested types, compared with its accuracy on held-out real niches, measures how
/// much type-specific structure the generator reproduces.
///
/// The classifier sees permutation-invariant summaries of each cloud (nicheSummary()): the
/// weighted mean, the upper triangle of the weighted covariance and the mean pairwise distance,
/// standardised with the training statistics, and feeds them to a multinomial logistic regression
/// (hidden = 0) or a one-hidden-layer ReLU MLP, trained full batch with Adam and weight decay.
namespace wfm::metrics {

/// Training settings of NicheClassifier.
struct NicheClassifierOptions
{
    int hidden = 64;            ///< hidden width; 0 = multinomial logistic regression
    int epochs = 300;           ///< full-batch Adam steps
    double lr = 1e-2;           ///< Adam learning rate
    double weightDecay = 1e-3;  ///< L2 penalty (Adam weight_decay)
    std::uint64_t seed = 0;     ///< seeds torch's global generator for the initial weights
};

/// Permutation-invariant niche summaries: points [B,N,d], weights [B,N] (weights > 0: live;
/// normalised here). Returns [B, d + d(d+1)/2 + 1] float32: weighted mean, weighted covariance
/// upper triangle (row-major, diagonal included), mean pairwise distance sum_ij w_i w_j |x_i - x_j|.
/// Throws ConfigError for mismatched shapes or a row without positive weight.
torch::Tensor nicheSummary(const torch::Tensor& points, const torch::Tensor& weights);

/// A trained niche classifier (CPU). Copies share the model.
class NicheClassifier
{
public:
    /// Trains on `data` (needs discrete labels; each cloud's weights are used). Throws ConfigError
    /// for a dataset without labels, with fewer than two labels present, or bad options.
    static NicheClassifier train(const data::PointCloudDataset& data, const NicheClassifierOptions& options = {});

    /// Predicted label of each cloud: points [B,N,d] (d = the training dimension), weights [B,N].
    /// Returns [B] int64. Throws ConfigError for a wrong dimension or shapes.
    torch::Tensor predict(const torch::Tensor& points, const torch::Tensor& weights) const;

    /// Class probabilities [B,L] float32 (L = labelNames().size()).
    torch::Tensor probabilities(const torch::Tensor& points, const torch::Tensor& weights) const;

    /// Fraction of clouds whose predicted label equals `labels` [B] (int64), in [0,1].
    double accuracy(const torch::Tensor& points, const torch::Tensor& weights, const torch::Tensor& labels) const;
    /// Accuracy on a labelled dataset (same label names as the training set).
    double accuracy(const data::PointCloudDataset& data) const;

    const std::vector<std::string>& labelNames() const;
    std::int64_t dim() const;
    /// Accuracy on the training set at the end of training.
    double trainAccuracy() const;

private:
    struct Model;
    std::shared_ptr<Model> m;
};

/// Accuracies of one evaluation.
struct NicheAccuracyReport
{
    double realAccuracy = 0.0;      ///< on the held-out real niches
    double generatedAccuracy = 0.0; ///< on the generated niches w.r.t. their requested labels
    double chance = 0.0;            ///< largest label frequency among the held-out real niches
    std::int64_t realCount = 0;
    std::int64_t generatedCount = 0;
    std::vector<double> generatedPerLabel; ///< accuracy per requested label (NaN when none)
    /// One line: "niche accuracy: real 0.83, generated 0.61 (chance 0.27; 400 / 256 niches)".
    std::string toText() const;
};

/// Evaluates generated niches: generatedPoints [G,N,d] and generatedWeights [G,N] in the same
/// units as the real niches (undo the training normalisation first), requestedLabels [G] int64
/// the labels the generator was conditioned on, heldOut real niches the classifier did not see.
/// Throws ConfigError for mismatched shapes or labels out of range.
NicheAccuracyReport evaluateGeneratedNiches(const NicheClassifier& classifier,
    const data::PointCloudDataset& heldOut, const torch::Tensor& generatedPoints,
    const torch::Tensor& generatedWeights, const torch::Tensor& requestedLabels);

} // namespace wfm::metrics
