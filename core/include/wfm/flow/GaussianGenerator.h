#pragma once

#include "wfm/data/GaussianDataset.h"
#include "wfm/flow/Generate.h"
#include "wfm/flow/TrainConfig.h"
#include "wfm/model/GaussianMlp.h"

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

/// Generation of Gaussians from a trained Bures-Wasserstein flow (wfm/flow/GaussianFlow.h):
/// means by Euler / RK2 steps, covariances by congruences that keep them positive definite.
namespace wfm::flow {

/// Generated Gaussians, in data units.
struct GeneratedGaussians
{
    torch::Tensor means;                 ///< [K,d] float32 CPU
    torch::Tensor covariances;           ///< [K,d,d] float32 CPU, symmetric positive definite
    torch::Tensor labels;                ///< [K] int64 (-2 = null) or undefined
    torch::Tensor trajectoryMeans;       ///< [T+1,K,d] when requested
    torch::Tensor trajectoryCovariances; ///< [T+1,K,d,d] when requested
    double seconds = 0.0;
};

/// A trained Gaussian model ready to generate (network, normalisation, noise, label names).
/// GenerateRequest's count, label(s), guidance, integrator (Euler or midpoint; Heun as well),
/// steps, trajectory, seed and ema apply; points and sizes do not.
class GaussianGenerator
{
public:
    GaussianGenerator(TrainConfig config, model::GaussianMlp net, model::GaussianMlp ema,
        data::GaussianNormalization normalization, data::GaussianNoise noise,
        std::vector<std::string> labelNames, std::int64_t step);

    GeneratedGaussians generate(const GenerateRequest& request) const;

    const TrainConfig& config() const { return m_config; }
    const std::vector<std::string>& labelNames() const { return m_labelNames; }
    std::int64_t dim() const;
    std::int64_t step() const { return m_step; }
    c10::Device device() const;

private:
    TrainConfig m_config;
    model::GaussianMlp m_net;
    model::GaussianMlp m_ema; ///< may be null
    data::GaussianNormalization m_normalization;
    data::GaussianNoise m_noise;
    std::vector<std::string> m_labelNames;
    std::int64_t m_step = 0;
};

/// Loads a Gaussian generator from a run folder or checkpoint file. Throws CheckpointError
/// naming the file, ConfigError for a point-cloud run.
std::shared_ptr<GaussianGenerator> loadGaussianGenerator(
    const std::string& runDirOrFile, const std::string& device = {});

/// The Gaussian dataset a config trains on (Gaussian specs directly, point-cloud specs
/// moment-matched).
data::GaussianDataset loadConfigGaussians(const TrainConfig& config);

} // namespace wfm::flow
