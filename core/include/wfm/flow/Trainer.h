#pragma once

#include "wfm/flow/GaussianGenerator.h"
#include "wfm/flow/Generate.h"
#include "wfm/flow/TrainConfig.h"
#include "wfm/flow/TrainStep.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

/// The training loop (DESIGN.md, "Data flow"): data -> split -> normalisation -> source noise ->
/// steps of flow matching with Adam/AdamW, a learning-rate schedule, gradient clipping and EMA
/// weights, checkpoints written atomically, progress reported through a callback, and pause /
/// resume / stop from another thread. The same loop trains point clouds and Gaussians.
///
/// Determinism: step s draws its batch, noise, times, label dropout and dropout masks from
/// generators seeded with (seed, s) only, so a run resumed from a checkpoint at step s continues
/// with exactly the losses of an uninterrupted run (on the CPU; CUDA kernels may differ in the
/// last bits).
///
/// Run folder (when given): DIR/config.json (every setting), DIR/checkpoint.pt (model, EMA,
/// optimiser, config, normalisation, noise, training sizes, label names, step; written
/// atomically), DIR/log.csv (step,loss,lr,seconds).
namespace wfm::flow {

/// One progress report.
struct TrainProgress
{
    std::int64_t step = 0;       ///< steps completed
    std::int64_t totalSteps = 0;
    double loss = 0.0;           ///< loss of the last step
    double smoothedLoss = 0.0;   ///< exponential moving average of the loss (factor 0.98)
    double lr = 0.0;             ///< learning rate of the last step
    double itemsPerSecond = 0.0; ///< clouds (or Gaussians) per second, recent average
    double elapsedSeconds = 0.0; ///< training time in this session (pauses excluded)
    double etaSeconds = 0.0;     ///< estimated time to the last step
    StepTimings timings;         ///< split of the last step
    bool paused = false;
};

/// How run() ended.
struct TrainResult
{
    std::int64_t step = 0;     ///< steps completed
    bool completed = false;    ///< all configured steps done
    bool stopped = false;      ///< stop() was called
    double lastLoss = 0.0;
    double seconds = 0.0;
    std::string checkpoint;    ///< path of the last checkpoint written ("" without a run folder)
};

/// The one place where multi-process training plugs in (DESIGN.md, "Scale"): rank and world size
/// from the torchrun variables, a gradient all-reduce after backward, and the decision of who
/// writes files. This build runs one process; WORLD_SIZE > 1 is refused with a clear error.
struct ProcessGroup
{
    int rank = 0;
    int worldSize = 1;
    /// From RANK / WORLD_SIZE (absent = single process). Throws ConfigError for WORLD_SIZE > 1.
    static ProcessGroup fromEnvironment();
    bool isWriter() const { return rank == 0; }
    /// Averages gradients over the ranks (no-op for one process).
    void synchronizeGradients(const std::vector<torch::Tensor>& parameters) const;
};

class TrainTask; // the kind-specific part (clouds or Gaussians), internal

class Trainer
{
public:
    using ProgressCallback = std::function<void(const TrainProgress&)>;

    /// Prepares a new run: loads and splits the data, fits the normalisation and the source noise,
    /// builds the model and the optimiser on the configured device. With a non-empty runDir,
    /// creates it and writes config.json (an existing checkpoint there is an error: use resume).
    /// Throws ConfigError / DatasetError for bad settings or data.
    Trainer(TrainConfig config, std::string runDir);
    /// Reopens DIR/checkpoint.pt and continues from its step. `steps` > 0 replaces the total step
    /// count (to train longer); `device` non-empty replaces the device. Throws CheckpointError
    /// naming the file for a missing or damaged checkpoint.
    static std::unique_ptr<Trainer> resume(
        const std::string& runDir, std::int64_t steps = 0, const std::string& device = {});
    ~Trainer();

    Trainer(const Trainer&) = delete;
    Trainer& operator=(const Trainer&) = delete;

    /// Trains until the configured step count or stop(). Calls `progress` every log period and at
    /// the end (from this thread). Writes checkpoints every checkpoint period and at the end
    /// (also after stop()). Exceptions from the step propagate (the last checkpoint stays).
    TrainResult run(const ProgressCallback& progress = {});

    /// Thread-safe controls; take effect between steps.
    void pause();
    void resume();
    void stop();
    bool isPaused() const { return m_paused.load(); }
    bool isStopRequested() const { return m_stop.load(); }

    /// Steps completed.
    std::int64_t step() const { return m_step.load(); }
    const TrainConfig& config() const { return m_config; }
    /// Clouds or Gaussians (Auto resolved).
    ModelKind kind() const;
    const std::string& runDir() const { return m_runDir; }
    /// Model parameter count.
    std::int64_t parameterCount() const;
    /// Label names of the data ("" entries never; empty without labels).
    const std::vector<std::string>& labelNames() const;

    /// Writes DIR/checkpoint.pt now (atomically). Returns its path. Throws if there is no run folder.
    std::string saveCheckpoint();

    /// A generator holding a copy of the current weights (EMA and raw), safe to use from another
    /// thread while training continues. Clouds only (throws ConfigError for Gaussian runs).
    std::shared_ptr<CloudGenerator> cloudGenerator() const;
    /// The same for Gaussian runs (throws ConfigError for point-cloud runs).
    std::shared_ptr<GaussianGenerator> gaussianGenerator() const;
    /// Number of training / held-out distributions.
    std::int64_t trainCount() const;
    std::int64_t testCount() const;

    /// Training and held-out clouds in data units (point-cloud runs; empty for Gaussian runs).
    const data::PointCloudDataset& trainClouds() const;
    const data::PointCloudDataset& testClouds() const;

    /// Internal: the kind-specific task.
    TrainTask& task() { return *m_task; }

private:
    Trainer();
    void setUp(bool resuming);
    void writeLogLine(std::int64_t step, double loss, double lr, double seconds);

    TrainConfig m_config;
    std::string m_runDir;
    ProcessGroup m_group;
    std::unique_ptr<TrainTask> m_task;
    std::atomic<std::int64_t> m_step { 0 };
    std::atomic<bool> m_paused { false };
    std::atomic<bool> m_stop { false };
    std::mutex m_pauseMutex;
    std::condition_variable m_pauseCv;
    double m_trainedSeconds = 0.0; ///< over all sessions (stored in checkpoints)
    std::string m_lastCheckpoint;
    struct OptimState; ///< optimiser and EMA copy (keeps torch::optim out of this header)
    std::unique_ptr<OptimState> m_optim;
};

/// The file name of the checkpoint in a run folder: "checkpoint.pt".
std::string checkpointPath(const std::string& runDir);

/// Loads a point-cloud generator from a run folder (or a checkpoint file) onto `device`
/// ("" = the device in the config when available, else the CPU). Throws CheckpointError naming
/// the file, ConfigError for a Gaussian run.
std::shared_ptr<CloudGenerator> loadCloudGenerator(const std::string& runDirOrFile,
    const std::string& device = {});

/// The config and model kind stored in a checkpoint (cheap: no weights are built).
TrainConfig readCheckpointConfig(const std::string& runDirOrFile);

} // namespace wfm::flow
