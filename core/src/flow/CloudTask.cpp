// The point-cloud half of training: dataset, split, normalisation, source noise, set transformer.

#include "TrainTask.h"

#include "wfm/Error.h"
#include "wfm/Platform.h"
#include "wfm/data/DataSpec.h"
#include "wfm/flow/Trainer.h"

#include <torch/torch.h>

namespace wfm::flow {

std::uint64_t mixSeed(std::uint64_t a, std::uint64_t b)
{
    std::uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void writeString(torch::serialize::OutputArchive& a, const std::string& key, const std::string& value)
{
    a.write(key, c10::IValue(value));
}

std::string readString(torch::serialize::InputArchive& a, const std::string& key, const std::string& file)
{
    c10::IValue v;
    if (!a.try_read(key, v) || !v.isString()) {
        throw CheckpointError("checkpoint '" + file + "': missing entry '" + key + "'");
    }
    return v.toStringRef();
}

namespace {

class CloudTask final : public TrainTask
{
public:
    CloudTask(TrainConfig& config, const ProcessGroup& group)
        : m_config(config)
        , m_device(parseDevice(config.train.device))
    {
        auto all = data::loadPointClouds(config.data.spec);
        auto split = all.split(config.data.testFraction, config.data.splitSeed);
        WFM_CHECK(split.train.count() >= 1, "data '", config.data.spec, "': the training split is empty");
        m_train = split.train;
        m_test = split.test;
        m_normalization = data::Normalization::fit(m_train, config.data.normalization);
        m_normTrain = m_normalization.apply(m_train);
        if (config.source.kind == data::NoiseKind::Clouds) {
            auto sources = data::loadPointClouds(config.source.spec);
            if (sources.dim() != m_train.dim()) {
                throw ConfigError("source.spec '" + config.source.spec + "' has dimension "
                    + std::to_string(sources.dim()) + ", the data " + std::to_string(m_train.dim()));
            }
            if (config.source.pairing == data::CloudPairing::ByIndex) {
                // Pair by index of the training rows in the full dataset.
                WFM_CHECK(sources.count() == all.count(), "source.spec '", config.source.spec,
                    "' has ", sources.count(), " clouds; pairing by index needs one per data cloud (",
                    all.count(), ")");
                sources = sources.subset(split.trainIndices);
            }
            m_noise = data::SourceNoise::fromClouds(m_normalization.apply(sources), config.source.pairing);
        } else {
            m_noise = data::SourceNoise::fit(config.source.kind, m_normTrain, config.source.scale);
        }
        m_labelNames = m_train.labelNames;
        config.model.dim = m_train.dim();
        config.model.numLabels = m_train.numLabels();
        config.model.condDim = m_train.condDim();
        config.model.validate();
        m_options = config.stepOptions();
        torch::manual_seed(mixSeed(config.train.seed, 0xC0FFEE));
        m_net = model::SetTransformer(config.model);
        m_net->to(m_device);
        m_sampler = std::make_unique<data::BatchSampler>(m_normTrain, config.train.batch,
            mixSeed(config.train.seed, static_cast<std::uint64_t>(group.rank)),
            config.data.subsamplePoints);
    }

    ModelKind kind() const override { return ModelKind::Clouds; }
    std::shared_ptr<torch::nn::Module> net() override { return m_net.ptr(); }
    std::shared_ptr<torch::nn::Module> cloneNet() override
    {
        auto copy = std::dynamic_pointer_cast<model::SetTransformerImpl>(m_net->clone());
        return copy;
    }

    torch::Tensor loss(std::int64_t step, torch::Generator& gen, StepTimings* timings) override
    {
        auto b = m_sampler->batchAt(static_cast<std::uint64_t>(step));
        StepBatch batch;
        batch.weights = b.weights.to(m_device);
        batch.target = b.points.to(m_device);
        batch.source = m_noise.sample(b.weights, b.indices, gen).to(m_device);
        if (b.labels.defined()) {
            batch.labels = b.labels.to(m_device);
        }
        if (b.cond.defined()) {
            batch.cond = b.cond.to(m_device);
        }
        return stepLoss(m_net, batch, m_options, gen, timings);
    }

    std::int64_t itemsPerStep() const override { return m_config.train.batch; }

    void saveState(torch::serialize::OutputArchive& a) const override
    {
        writeString(a, "normalization", m_normalization.toJsonString());
        writeString(a, "noise", m_noise.toJsonString());
        a.write("train_sizes", m_train.sizes);
        std::string names;
        for (const auto& n : m_labelNames) {
            names += n + "\n";
        }
        writeString(a, "label_names", names);
    }

    const std::vector<std::string>& labelNames() const override { return m_labelNames; }
    const data::PointCloudDataset& trainClouds() const override { return m_train; }
    std::int64_t trainCount() const override { return m_train.count(); }
    std::int64_t testCount() const override { return m_test.count(); }
    const data::PointCloudDataset& testClouds() const override { return m_test; }
    c10::Device device() const override { return m_device; }

    std::shared_ptr<CloudGenerator> cloudGenerator(
        const std::shared_ptr<torch::nn::Module>& ema, std::int64_t step) const override
    {
        auto copy = [](const model::SetTransformer& n) {
            return model::SetTransformer(std::dynamic_pointer_cast<model::SetTransformerImpl>(n->clone()));
        };
        model::SetTransformer emaCopy { nullptr };
        if (ema) {
            emaCopy = copy(model::SetTransformer(std::dynamic_pointer_cast<model::SetTransformerImpl>(ema)));
        }
        return std::make_shared<CloudGenerator>(m_config, copy(m_net), emaCopy, m_normalization,
            m_noise, m_train.sizes, m_labelNames, step);
    }
    const data::Normalization& normalization() const { return m_normalization; }
    const data::SourceNoise& noise() const { return m_noise; }

private:
    TrainConfig& m_config;
    c10::Device m_device;
    data::PointCloudDataset m_train;
    data::PointCloudDataset m_test;
    data::PointCloudDataset m_normTrain;
    data::Normalization m_normalization;
    data::SourceNoise m_noise;
    std::vector<std::string> m_labelNames;
    StepOptions m_options;
    model::SetTransformer m_net { nullptr };
    std::unique_ptr<data::BatchSampler> m_sampler;
};

} // namespace

std::shared_ptr<CloudGenerator> TrainTask::cloudGenerator(
    const std::shared_ptr<torch::nn::Module>&, std::int64_t) const
{
    throw ConfigError("this run models " + modelKindName(kind()) + ", not point clouds");
}

std::shared_ptr<GaussianGenerator> TrainTask::gaussianGenerator(
    const std::shared_ptr<torch::nn::Module>&, std::int64_t) const
{
    throw ConfigError("this run models " + modelKindName(kind()) + ", not Gaussians");
}

std::unique_ptr<TrainTask> makeCloudTask(TrainConfig& config, const ProcessGroup& group)
{
    return std::make_unique<CloudTask>(config, group);
}

} // namespace wfm::flow
