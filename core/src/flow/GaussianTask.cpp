// The Gaussian half of training (Bures-Wasserstein flow matching) and Gaussian generation.

#include "TrainTask.h"

#include "wfm/Error.h"
#include "wfm/Platform.h"
#include "wfm/flow/GaussianFlow.h"
#include "wfm/flow/Trainer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

namespace wfm::flow {

data::GaussianDataset loadConfigGaussians(const TrainConfig& config)
{
    return data::loadGaussians(config.data.spec);
}

namespace {

data::GaussianNoiseKind gaussianNoiseKind(const TrainConfig& c)
{
    return data::parseGaussianNoiseKind(c.source.gaussianKind);
}

class GaussianTask final : public TrainTask
{
public:
    GaussianTask(TrainConfig& config, const ProcessGroup& group)
        : m_config(config)
        , m_device(parseDevice(config.train.device))
    {
        WFM_CHECK(config.data.normalization != data::Normalization::Kind::PerCloud,
            "data.normalization 'per_cloud' is not defined for Gaussians (use global_minmax, "
            "standardize or none)");
        auto all = loadConfigGaussians(config);
        auto split = all.split(config.data.testFraction, config.data.splitSeed);
        WFM_CHECK(split.train.count() >= 1, "data '", config.data.spec, "': the training split is empty");
        m_train = split.train;
        m_test = split.test;
        m_normalization = data::GaussianNormalization::fit(m_train, config.data.normalization);
        m_normTrain = m_normalization.apply(m_train);
        const auto kind = gaussianNoiseKind(config);
        if (kind == data::GaussianNoiseKind::Gaussians) {
            auto sources = data::loadGaussians(config.source.spec);
            if (sources.dim() != m_train.dim()) {
                throw ConfigError("source.spec '" + config.source.spec + "' has dimension "
                    + std::to_string(sources.dim()) + ", the data " + std::to_string(m_train.dim()));
            }
            if (config.source.pairing == data::CloudPairing::ByIndex) {
                WFM_CHECK(sources.count() == all.count(), "source.spec '", config.source.spec, "' has ",
                    sources.count(), " Gaussians; pairing by index needs one per data Gaussian (",
                    all.count(), ")");
                sources = sources.subset(split.trainIndices);
            }
            m_noise = data::GaussianNoise::fromGaussians(m_normalization.apply(sources), config.source.pairing);
        } else {
            m_noise = data::GaussianNoise::fit(kind, m_normTrain, config.source.dof);
        }
        m_labelNames = m_train.labelNames;
        auto options = gaussianModelOptions(config);
        options.dim = m_train.dim();
        options.numLabels = m_train.numLabels();
        options.validate();
        config.gaussianModelJson = options.toJsonString();
        m_step.minibatchOt = config.flow.minibatch != MinibatchCost::None;
        m_step.euclideanLoss = config.flow.euclideanLoss;
        m_step.labelDropout = config.flow.labelDropout;
        m_step.mixedPrecision = config.train.mixedPrecision;
        torch::manual_seed(mixSeed(config.train.seed, 0xC0FFEE));
        m_net = model::GaussianMlp(options);
        m_net->to(m_device);
        m_sampler = std::make_unique<data::GaussianBatchSampler>(m_normTrain, config.train.batch,
            mixSeed(config.train.seed, static_cast<std::uint64_t>(group.rank)));
    }

    ModelKind kind() const override { return ModelKind::Gaussians; }
    std::shared_ptr<torch::nn::Module> net() override { return m_net.ptr(); }
    std::shared_ptr<torch::nn::Module> cloneNet() override { return m_net->clone(); }

    torch::Tensor loss(std::int64_t step, torch::Generator& gen, StepTimings* timings) override
    {
        const auto t0 = std::chrono::steady_clock::now();
        auto b = m_sampler->batchAt(static_cast<std::uint64_t>(step));
        auto [m0, S0] = m_noise.sample(b.means.size(0), b.indices, gen);
        GaussianStepBatch batch;
        batch.means = b.means.to(m_device);
        batch.covariances = b.covariances.to(m_device);
        batch.sourceMeans = m0.to(m_device);
        batch.sourceCovariances = S0.to(m_device);
        if (b.labels.defined()) {
            batch.labels = b.labels.to(m_device);
        }
        auto loss = gaussianStepLoss(m_net, batch, m_step, gen);
        if (timings) {
            timings->model += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        return loss;
    }

    std::int64_t itemsPerStep() const override { return m_config.train.batch; }

    void saveState(torch::serialize::OutputArchive& a) const override
    {
        writeString(a, "normalization", m_normalization.toJsonString());
        writeString(a, "noise", m_noise.toJsonString());
        std::string names;
        for (const auto& n : m_labelNames) {
            names += n + "\n";
        }
        writeString(a, "label_names", names);
    }

    const std::vector<std::string>& labelNames() const override { return m_labelNames; }
    const data::PointCloudDataset& trainClouds() const override { return m_noClouds; }
    const data::PointCloudDataset& testClouds() const override { return m_noClouds; }
    std::int64_t trainCount() const override { return m_train.count(); }
    std::int64_t testCount() const override { return m_test.count(); }
    c10::Device device() const override { return m_device; }

    std::shared_ptr<GaussianGenerator> gaussianGenerator(
        const std::shared_ptr<torch::nn::Module>& ema, std::int64_t step) const override
    {
        auto copy = [](const std::shared_ptr<torch::nn::Module>& n) {
            return model::GaussianMlp(std::dynamic_pointer_cast<model::GaussianMlpImpl>(n->clone()));
        };
        model::GaussianMlp emaCopy { nullptr };
        if (ema) {
            emaCopy = copy(ema);
        }
        return std::make_shared<GaussianGenerator>(m_config, copy(m_net.ptr()), emaCopy,
            m_normalization, m_noise, m_labelNames, step);
    }

private:
    TrainConfig& m_config;
    c10::Device m_device;
    data::GaussianDataset m_train;
    data::GaussianDataset m_test;
    data::GaussianDataset m_normTrain;
    data::GaussianNormalization m_normalization;
    data::GaussianNoise m_noise;
    std::vector<std::string> m_labelNames;
    GaussianStepOptions m_step;
    model::GaussianMlp m_net { nullptr };
    std::unique_ptr<data::GaussianBatchSampler> m_sampler;
    data::PointCloudDataset m_noClouds;
};

} // namespace

std::unique_ptr<TrainTask> makeGaussianTask(TrainConfig& config, const ProcessGroup& group)
{
    return std::make_unique<GaussianTask>(config, group);
}

// --- GaussianGenerator -------------------------------------------------------------------------

GaussianGenerator::GaussianGenerator(TrainConfig config, model::GaussianMlp net, model::GaussianMlp ema,
    data::GaussianNormalization normalization, data::GaussianNoise noise,
    std::vector<std::string> labelNames, std::int64_t step)
    : m_config(std::move(config))
    , m_net(std::move(net))
    , m_ema(std::move(ema))
    , m_normalization(std::move(normalization))
    , m_noise(std::move(noise))
    , m_labelNames(std::move(labelNames))
    , m_step(step)
{
    m_net->eval();
    if (!m_ema.is_empty()) {
        m_ema->eval();
    }
}

std::int64_t GaussianGenerator::dim() const
{
    return m_net->options().dim;
}

c10::Device GaussianGenerator::device() const
{
    return m_net->parameters().front().device();
}

GeneratedGaussians GaussianGenerator::generate(const GenerateRequest& r) const
{
    const auto t0 = std::chrono::steady_clock::now();
    torch::NoGradGuard noGrad;
    WFM_CHECK(r.count >= 1, "generate: count must be >= 1 (got ", r.count, ")");
    WFM_CHECK(r.labels.empty() || static_cast<std::int64_t>(r.labels.size()) == r.count,
        "generate: ", r.labels.size(), " labels given for ", r.count, " Gaussians");
    const int64_t K = r.count;
    const int64_t L = static_cast<int64_t>(m_labelNames.size());
    const int steps = r.steps > 0 ? r.steps : m_config.generate.steps;
    const Integrator integrator = r.integrator.value_or(m_config.generate.integrator);
    const double guidance = std::isnan(r.guidance) ? m_config.generate.guidance : r.guidance;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(r.seed);
    torch::Tensor labels;
    if (L > 0) {
        labels = torch::empty({ K }, torch::kLong);
        auto acc = labels.accessor<int64_t, 1>();
        for (int64_t k = 0; k < K; ++k) {
            int64_t lab = r.labels.empty() ? r.label : r.labels[k];
            if (lab == GenerateRequest::kRandomLabel) {
                lab = at::randint(L, { 1 }, gen, torch::kLong).item<int64_t>();
            }
            WFM_CHECK(lab == GenerateRequest::kNullLabel || (lab >= 0 && lab < L),
                "generate: label ", lab, " out of range [0, ", L, ")");
            acc[k] = lab;
        }
    } else {
        WFM_CHECK(r.labels.empty() && (r.label == GenerateRequest::kRandomLabel || r.label == GenerateRequest::kNullLabel),
            "generate: the model was trained without labels");
    }
    torch::Tensor indices;
    if (m_noise.kind() == data::GaussianNoiseKind::Gaussians) {
        indices = torch::arange(K, torch::kLong).remainder(m_noise.sources().count());
    }
    auto [m0, S0] = m_noise.sample(K, indices, gen);
    const auto dev = device();
    model::GaussianMlp net = (r.ema && !m_ema.is_empty()) ? m_ema : m_net;
    torch::Tensor labForNet;
    bool guided = false;
    if (labels.defined()) {
        auto lab = labels.to(dev);
        labForNet = torch::where(lab == GenerateRequest::kNullLabel, torch::full_like(lab, L), lab);
        guided = guidance != 1.0 && (lab != GenerateRequest::kNullLabel).all().item<bool>();
    }
    GaussianVelocityFn v = [&](const torch::Tensor& m, const torch::Tensor& S, const torch::Tensor& t) {
        if (guided) {
            return model::guidedGaussianVelocity(net, m, S, t, labForNet, guidance);
        }
        return net->forward(m, S, t, labForNet);
    };
    auto traj = integrateGaussians(v, m0.to(dev), S0.to(dev), steps, integrator, r.trajectory);
    GeneratedGaussians g;
    auto [m, S] = m_normalization.invert(traj.means, traj.covariances);
    g.means = m.to(torch::kCPU).to(torch::kFloat);
    g.covariances = S.to(torch::kCPU).to(torch::kFloat);
    g.labels = labels;
    if (r.trajectory) {
        auto [tm, tS] = m_normalization.invert(traj.trajectoryMeans, traj.trajectoryCovariances);
        g.trajectoryMeans = tm.to(torch::kCPU).to(torch::kFloat);
        g.trajectoryCovariances = tS.to(torch::kCPU).to(torch::kFloat);
    }
    g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return g;
}

std::shared_ptr<GaussianGenerator> loadGaussianGenerator(const std::string& runDirOrFile, const std::string& device)
{
    GeneratorCheckpoint c = openGeneratorCheckpoint(runDirOrFile, ModelKind::Gaussians, device);
    const TrainConfig& config = c.config;
    const auto options = gaussianModelOptions(config);
    model::GaussianMlp net(options);
    model::GaussianMlp ema(options);
    if (!c.loadWeights(*net, *ema)) {
        ema = model::GaussianMlp(nullptr);
    }
    data::GaussianNormalization norm;
    data::GaussianNoise noise;
    try {
        norm = data::GaussianNormalization::fromJsonString(readString(c.archive, "normalization", c.file));
        const std::string noiseJson = readString(c.archive, "noise", c.file);
        if (gaussianNoiseKind(config) == data::GaussianNoiseKind::Gaussians) {
            auto sources = norm.apply(data::loadGaussians(config.source.spec));
            noise = data::GaussianNoise::fromGaussians(sources, data::CloudPairing::ByIndex);
        } else {
            noise = data::GaussianNoise::fromJsonString(noiseJson);
        }
    } catch (const ConfigError& e) {
        throw CheckpointError("checkpoint '" + c.file + "': " + e.what());
    }
    return std::make_shared<GaussianGenerator>(
        config, net, ema, norm, noise, c.labelNames(), readInt(c.archive, "step", c.file));
}

} // namespace wfm::flow
