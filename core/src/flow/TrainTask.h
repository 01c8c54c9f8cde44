#pragma once

#include "wfm/flow/GaussianGenerator.h"
#include "wfm/flow/Generate.h"
#include "wfm/flow/TrainConfig.h"
#include "wfm/flow/TrainStep.h"

#include <torch/nn/module.h>
#include <torch/serialize/archive.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wfm::flow {

struct ProcessGroup;

/// The kind-specific half of training: data, normalisation, noise, network and the loss of one
/// step. The Trainer owns the generic half (optimiser, schedule, EMA, checkpoints, control).
class TrainTask
{
public:
    virtual ~TrainTask() = default;

    virtual ModelKind kind() const = 0;
    /// The network being trained.
    virtual std::shared_ptr<torch::nn::Module> net() = 0;
    /// A fresh network of the same architecture (for the EMA copy and loading).
    virtual std::shared_ptr<torch::nn::Module> cloneNet() = 0;
    /// Loss of step `step` (0-based), batch drawn from (seed, rank, step); forward only.
    virtual torch::Tensor loss(std::int64_t step, torch::Generator& gen, StepTimings* timings) = 0;
    /// Distributions per step (the batch size).
    virtual std::int64_t itemsPerStep() const = 0;
    /// Writes normalisation, noise, sizes and label names into the checkpoint.
    virtual void saveState(torch::serialize::OutputArchive& archive) const = 0;
    virtual const std::vector<std::string>& labelNames() const = 0;
    virtual const data::PointCloudDataset& trainClouds() const = 0;
    virtual const data::PointCloudDataset& testClouds() const = 0;
    virtual c10::Device device() const = 0;
    /// A generator over deep copies of the current raw weights and of `ema` (may be null).
    virtual std::shared_ptr<CloudGenerator> cloudGenerator(
        const std::shared_ptr<torch::nn::Module>& ema, std::int64_t step) const;
    virtual std::shared_ptr<GaussianGenerator> gaussianGenerator(
        const std::shared_ptr<torch::nn::Module>& ema, std::int64_t step) const;
    /// Number of training / held-out distributions.
    virtual std::int64_t trainCount() const = 0;
    virtual std::int64_t testCount() const = 0;
};

/// Point clouds with the set transformer. `config.model.dim` / numLabels / condDim are filled
/// from the data (the caller's config is updated).
std::unique_ptr<TrainTask> makeCloudTask(TrainConfig& config, const ProcessGroup& group);
/// Gaussians with the Gaussian MLP.
std::unique_ptr<TrainTask> makeGaussianTask(TrainConfig& config, const ProcessGroup& group);

/// Resolves ModelKind::Auto from the data spec.
ModelKind resolveModelKind(const TrainConfig& config);

/// Stateless 64-bit mix of (a, b) (SplitMix64 finaliser), for per-step seeds.
std::uint64_t mixSeed(std::uint64_t a, std::uint64_t b);

/// Checkpoint archives (Trainer.cpp).
extern const char* const kCheckpointFormat;
/// DIR/checkpoint.pt for a folder, else the path itself.
std::string resolveCheckpointFile(const std::string& runDirOrFile);
/// Opens a checkpoint on `device`. Throws CheckpointError naming the file.
void openArchive(torch::serialize::InputArchive& a, const std::string& file, const c10::Device& device);
TrainConfig configFromArchive(torch::serialize::InputArchive& a, const std::string& file);
std::int64_t readInt(torch::serialize::InputArchive& a, const std::string& key, const std::string& file);
/// Loads sub-archive `key` into `m`. Throws CheckpointError.
void loadModule(torch::serialize::InputArchive& a, const std::string& key, torch::nn::Module& m,
    const std::string& file);
/// parseDevice() with "" meaning "auto".
c10::Device resolveDevice(const std::string& spec);

/// Checkpoint string entries.
void writeString(torch::serialize::OutputArchive& a, const std::string& key, const std::string& value);
std::string readString(torch::serialize::InputArchive& a, const std::string& key, const std::string& file);

/// A checkpoint opened to build a generator: its file, config, target device and the archive
/// read onto that device.
struct GeneratorCheckpoint
{
    std::string file;
    TrainConfig config;
    c10::Device device = c10::Device(c10::kCPU);
    torch::serialize::InputArchive archive;
    /// The "label_names" entry, one name per line.
    std::vector<std::string> labelNames();
    /// Loads "model" into `net` and, when the checkpoint has one, "ema" into `ema` (both moved
    /// to the device first); returns whether there was an EMA copy.
    bool loadWeights(torch::nn::Module& net, torch::nn::Module& ema);
};
/// Opens the checkpoint of a run folder (or file) for a generator of kind `expected` on
/// `device` ("" = the run's train.device). Throws CheckpointError naming the file, ConfigError
/// for a checkpoint of another kind.
GeneratorCheckpoint openGeneratorCheckpoint(
    const std::string& runDirOrFile, ModelKind expected, const std::string& device);

} // namespace wfm::flow
