#pragma once

#include "wfm/data/PointCloudDataset.h"
#include "wfm/data/SourceNoise.h"
#include "wfm/flow/Integrator.h"
#include "wfm/flow/TrainStep.h"
#include "wfm/model/GaussianMlp.h"
#include "wfm/model/SetTransformer.h"

#include <cstdint>
#include <string>

/// Every setting of a training run, as one value that is written to DIR/config.json (defaults
/// included) and stored in each checkpoint, so a run folder says exactly how it was made.
///
/// JSON layout (snake_case sections; the model section uses the options' own field names):
///   {"kind": "clouds",
///    "data":  {"spec", "test_fraction", "split_seed", "normalization", "subsample_points"},
///    "source":{"kind", "scale", "spec", "pairing", "gaussian_kind", "dof"},
///    "model": {SetTransformerOptions fields; "dim" is filled from the data},
///    "gaussian_model": {GaussianMlpOptions fields},
///    "flow":  {"minibatch", "eps", "iterations", "map", "label_dropout", "euclidean_loss"},
///    "optim": {"optimizer", "lr", "beta1", "beta2", "weight_decay", "schedule", "warmup_steps",
///              "final_lr_factor", "grad_clip", "ema_decay"},
///    "train": {"steps", "batch", "seed", "device", "threads", "mixed_precision",
///              "checkpoint_every", "log_every", "sample_every"},
///    "generate": {"integrator", "steps", "guidance"}}
/// Reading is strict: unknown keys and wrong types are ConfigErrors naming the key; missing keys
/// keep their defaults.
namespace wfm::flow {

/// Which family of distributions a run models.
enum class ModelKind {
    Auto,     ///< decided from the data spec: Gaussian specs -> Gaussians, else clouds
    Clouds,   ///< point clouds, set transformer (DESIGN.md "Point clouds")
    Gaussians ///< Gaussians along Bures-Wasserstein geodesics (point-cloud specs moment-matched)
};
std::string modelKindName(ModelKind kind); ///< "auto", "clouds", "gaussians"
ModelKind parseModelKind(const std::string& name);

enum class OptimizerKind { Adam, AdamW };
enum class LrSchedule {
    Constant,    ///< lr
    Exponential, ///< lr * f^(p), p = progress after warm-up in [0,1], f = final_lr_factor
    Cosine       ///< lr * (f + (1 - f) (1 + cos(pi p)) / 2)
};
std::string lrScheduleName(LrSchedule s); ///< "constant", "exponential", "cosine"
LrSchedule parseLrSchedule(const std::string& name);

struct DataConfig
{
    std::string spec = "builtin:rings";
    double testFraction = 0.1;
    std::uint64_t splitSeed = 0;
    data::Normalization::Kind normalization = data::Normalization::Kind::GlobalMinMax;
    /// Points per cloud per step (0 = all): clouds with more live points are subsampled.
    int subsamplePoints = 0;
};

struct SourceConfig
{
    data::NoiseKind kind = data::NoiseKind::CholNormal;
    /// Multiplies CholNormal samples (reference: 2).
    double scale = 2.0;
    /// Source clouds (kind = clouds): a data spec, normalised with the targets' normalisation.
    std::string spec;
    data::CloudPairing pairing = data::CloudPairing::Random;
    /// Gaussian runs: "wishart" (reference), "standard_normal" or "gaussians" (source
    /// Gaussians from `spec`, paired by `pairing`).
    std::string gaussianKind = "wishart";
    /// Gaussian runs: Wishart degrees of freedom per dimension (reference: 5).
    double dof = 5.0;
};

struct FlowConfig
{
    MinibatchCost minibatch = MinibatchCost::Chamfer;
    double eps = 0.002;    ///< inner Sinkhorn eps, relative to each pair's largest cost
    int iterations = 200;  ///< inner Sinkhorn iterations
    ot::MapKind map = ot::MapKind::Rounded;
    /// Probability of replacing a label by the null label in training (classifier-free guidance).
    double labelDropout = 0.1;
    /// Gaussians: Euclidean velocity loss instead of the L2(N_t) norm.
    bool euclideanLoss = false;
};

struct OptimConfig
{
    OptimizerKind optimizer = OptimizerKind::Adam;
    double lr = 2e-4;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double weightDecay = 0.0;
    LrSchedule schedule = LrSchedule::Exponential;
    std::int64_t warmupSteps = 0;
    double finalLrFactor = 0.5;
    double gradClip = 0.0; ///< maximal global gradient norm (0 = off)
    double emaDecay = 0.999; ///< 0 = no EMA (generation uses the raw weights)
};

struct RunConfig
{
    std::int64_t steps = 10000;
    int batch = 16;
    std::uint64_t seed = 0;
    std::string device = "auto"; ///< auto, cpu, cuda, cuda:N
    int threads = 0;             ///< CPU threads (0 = the core count)
    bool mixedPrecision = false; ///< bfloat16 autocast on CUDA (ignored on the CPU)
    std::int64_t checkpointEvery = 1000;
    std::int64_t logEvery = 50;
    std::int64_t sampleEvery = 500; ///< GUI preview period (steps)
};

struct GenerateConfig
{
    Integrator integrator = Integrator::Midpoint;
    int steps = 100;
    double guidance = 1.5;
};

struct TrainConfig
{
    ModelKind kind = ModelKind::Auto;
    DataConfig data;
    SourceConfig source;
    model::SetTransformerOptions model = model::SetTransformerOptions(0);
    /// Gaussian MLP options as their own JSON text (empty = defaults).
    std::string gaussianModelJson;
    FlowConfig flow;
    OptimConfig optim;
    RunConfig train;
    GenerateConfig generate;

    /// Pretty-printed JSON with every setting.
    std::string toJsonString() const;
    /// Strict parse (see the file comment). Throws ConfigError naming `what` (a file name) and
    /// the key.
    static TrainConfig fromJsonString(const std::string& text, const std::string& what = "config");
    /// Reads a JSON file. Throws ConfigError naming the file.
    static TrainConfig fromFile(const std::string& path);
    /// Range checks (steps >= 1, batch >= 1, lr > 0, 0 <= dropout < 1, ...). Throws ConfigError.
    void validate() const;

    /// The inner-OT / map options of one training step.
    StepOptions stepOptions() const;
};

/// The Gaussian MLP options of `config` (gaussian_model); dim is 0 when the config leaves it to
/// the data. Throws ConfigError for unknown keys or bad values.
model::GaussianMlpOptions gaussianModelOptions(const TrainConfig& config);

/// The learning rate at `step` (0-based): linear warm-up from lr/warmup to lr over warmupSteps,
/// then the schedule over the remaining steps of `totalSteps`.
double learningRate(const OptimConfig& optim, std::int64_t step, std::int64_t totalSteps);

} // namespace wfm::flow
