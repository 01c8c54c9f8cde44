#pragma once

#include "wfm/data/PointCloudDataset.h"
#include "wfm/data/SourceNoise.h"
#include "wfm/flow/Integrator.h"
#include "wfm/flow/TrainConfig.h"
#include "wfm/model/SetTransformer.h"

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <memory>
#include <string>
#include <vector>

/// Generation of point clouds: integrate dx/dt = v(x, t) from source noise at t = 0 to data at
/// t = 1 (DESIGN.md), with Euler, midpoint or Heun steps, classifier-free guidance and the whole
/// trajectory on request.
namespace wfm::flow {

/// v(x, t): x [K,N,d] (padded), t [K] -> [K,N,d].
using CloudVelocityFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

/// Integrates from t = 0 to 1 in `steps` equal steps. Padded slots (mask false / weight 0) stay
/// exactly 0. With `trajectory` non-null it receives [steps+1,K,N,d] (entry 0 = x0, last = the
/// result). Runs under NoGradGuard. Throws ConfigError for steps < 1 or shape mismatches.
torch::Tensor integrateClouds(const CloudVelocityFn& velocity, const torch::Tensor& x0,
    const torch::Tensor& mask, int steps, Integrator integrator, torch::Tensor* trajectory = nullptr);

/// What to generate.
struct GenerateRequest
{
    std::int64_t count = 16;
    /// Points per cloud; 0 = sizes drawn from the training clouds' sizes. `sizes` overrides both.
    std::int64_t points = 0;
    std::vector<std::int64_t> sizes;
    /// Label of every cloud (0..L-1), kRandomLabel (drawn uniformly) or
    /// kNullLabel (the unconditional field). `labels` (one per cloud) overrides it.
    std::int64_t label = kRandomLabel;
    std::vector<std::int64_t> labels;
    /// Continuous conditioning vectors [K,c] for a model trained with `cond` (required then).
    torch::Tensor cond;
    /// Guidance scale; NaN = the run's config (generate.guidance). Applied to chunks whose clouds
    /// all have a real label; null-label clouds use the unconditional field.
    double guidance = std::numeric_limits<double>::quiet_NaN();
    /// Integrator and steps; steps 0 = the run's config.
    std::optional<Integrator> integrator;
    int steps = 0;
    bool trajectory = false;
    std::uint64_t seed = 0;
    /// Clouds integrated together (memory bound); 0 = automatic.
    std::int64_t chunk = 0;
    /// Use the EMA weights when the run has them.
    bool ema = true;
    /// Evaluate the velocity field under bfloat16 autocast (see StepOptions::mixedPrecision;
    /// ignored where mixedPrecisionSupported() is false). The state is integrated in float32.
    bool mixedPrecision = false;

    static constexpr std::int64_t kRandomLabel = -1;
    static constexpr std::int64_t kNullLabel = -2;
};

/// Generated clouds, in data units (the run's normalisation inverted).
struct GeneratedClouds
{
    torch::Tensor points;     ///< [K,N,d] float32 CPU, padding 0
    torch::Tensor weights;    ///< [K,N] float32, uniform on live points
    torch::Tensor labels;     ///< [K] int64 (the requested labels; -1 = null), undefined without labels
    torch::Tensor trajectory; ///< [T+1,K,N,d] float32 CPU when requested
    double seconds = 0.0;
};

/// A trained point-cloud model ready to generate: network (eval mode), normalisation, source
/// noise, training sizes and label names. Loaded from a checkpoint or snapshotted by the Trainer;
/// independent of it (safe to use from another thread).
class CloudGenerator
{
public:
    CloudGenerator(TrainConfig config, model::SetTransformer net, model::SetTransformer ema,
        data::Normalization normalization, data::SourceNoise noise, torch::Tensor trainSizes,
        std::vector<std::string> labelNames, std::int64_t step);

    GeneratedClouds generate(const GenerateRequest& request) const;

    const TrainConfig& config() const { return m_config; }
    const data::Normalization& normalization() const { return m_normalization; }
    const std::vector<std::string>& labelNames() const { return m_labelNames; }
    std::int64_t dim() const;
    std::int64_t step() const { return m_step; }
    c10::Device device() const;

private:
    TrainConfig m_config;
    model::SetTransformer m_net;
    model::SetTransformer m_ema; ///< may be null
    data::Normalization m_normalization;
    data::SourceNoise m_noise;
    torch::Tensor m_trainSizes;
    std::vector<std::string> m_labelNames;
    std::int64_t m_step = 0;
};

/// Resolves a label given by name or index against `names`. Throws ConfigError listing the names.
std::int64_t resolveLabel(const std::string& nameOrIndex, const std::vector<std::string>& names);

} // namespace wfm::flow
