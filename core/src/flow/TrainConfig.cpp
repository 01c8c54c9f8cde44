#include "wfm/flow/TrainConfig.h"

#include "wfm/Error.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <numbers>
#include <sstream>

namespace wfm::flow {
namespace {

using json = nlohmann::json;

/// Strict reader of one JSON object section: every key must be known.
class Section
{
public:
    Section(const json& j, std::string path, std::string what)
        : m_j(j)
        , m_path(std::move(path))
        , m_what(std::move(what))
    {
        if (!m_j.is_object()) {
            fail("", "must be a JSON object");
        }
    }

    template <typename T>
    void get(const char* key, T& out)
    {
        m_known.emplace_back(key);
        const auto it = m_j.find(key);
        if (it == m_j.end()) {
            return;
        }
        try {
            if constexpr (std::is_same_v<T, bool>) {
                if (!it->is_boolean()) {
                    fail(key, "must be true or false");
                }
            } else if constexpr (std::is_integral_v<T>) {
                if (!it->is_number_integer()) {
                    fail(key, "must be an integer");
                }
                if constexpr (std::is_unsigned_v<T>) {
                    if (it->is_number_integer() && !it->is_number_unsigned() && it->get<long long>() < 0) {
                        fail(key, "must not be negative");
                    }
                }
            } else if constexpr (std::is_floating_point_v<T>) {
                if (!it->is_number()) {
                    fail(key, "must be a number");
                }
            } else {
                if (!it->is_string()) {
                    fail(key, "must be a string");
                }
            }
            out = it->get<T>();
        } catch (const json::exception& e) {
            fail(key, e.what());
        }
    }

    /// A string key converted by `parse` (whose ConfigError gets the key prefixed).
    template <typename T>
    void getEnum(const char* key, T& out, const std::function<T(const std::string&)>& parse)
    {
        std::string text;
        bool present = m_j.contains(key);
        get(key, text);
        if (!present) {
            return;
        }
        try {
            out = parse(text);
        } catch (const ConfigError& e) {
            fail(key, e.what());
        }
    }

    /// Marks `key` as valid without reading it (sub-sections read separately).
    void known(const char* key) { m_known.emplace_back(key); }

    void finish()
    {
        for (const auto& [key, value] : m_j.items()) {
            if (std::find(m_known.begin(), m_known.end(), key) == m_known.end()) {
                std::string valid;
                for (const auto& k : m_known) {
                    valid += (valid.empty() ? "" : ", ") + k;
                }
                fail(key, "unknown key (valid: " + valid + ")");
            }
        }
    }

    [[noreturn]] void fail(const std::string& key, const std::string& problem) const
    {
        std::string where = m_path;
        if (!key.empty()) {
            where += (where.empty() ? "" : ".") + key;
        }
        throw ConfigError(m_what + ": " + (where.empty() ? "" : "'" + where + "' ") + problem);
    }

private:
    const json& m_j;
    std::string m_path;
    std::string m_what;
    std::vector<std::string> m_known;
};

std::string minibatchName(MinibatchCost c)
{
    return minibatchCostName(c);
}

} // namespace

std::string modelKindName(ModelKind kind)
{
    switch (kind) {
    case ModelKind::Auto:
        return "auto";
    case ModelKind::Clouds:
        return "clouds";
    case ModelKind::Gaussians:
        return "gaussians";
    }
    return "auto";
}

ModelKind parseModelKind(const std::string& name)
{
    for (ModelKind k : { ModelKind::Auto, ModelKind::Clouds, ModelKind::Gaussians }) {
        if (name == modelKindName(k)) {
            return k;
        }
    }
    throw ConfigError("unknown model kind '" + name + "' (valid: auto, clouds, gaussians)");
}

std::string lrScheduleName(LrSchedule s)
{
    switch (s) {
    case LrSchedule::Constant:
        return "constant";
    case LrSchedule::Exponential:
        return "exponential";
    case LrSchedule::Cosine:
        return "cosine";
    }
    return "constant";
}

LrSchedule parseLrSchedule(const std::string& name)
{
    for (LrSchedule s : { LrSchedule::Constant, LrSchedule::Exponential, LrSchedule::Cosine }) {
        if (name == lrScheduleName(s)) {
            return s;
        }
    }
    throw ConfigError("unknown schedule '" + name + "' (valid: constant, exponential, cosine)");
}

namespace {

std::string optimizerName(OptimizerKind k)
{
    return k == OptimizerKind::Adam ? "adam" : "adamw";
}

OptimizerKind parseOptimizer(const std::string& name)
{
    if (name == "adam") {
        return OptimizerKind::Adam;
    }
    if (name == "adamw") {
        return OptimizerKind::AdamW;
    }
    throw ConfigError("unknown optimizer '" + name + "' (valid: adam, adamw)");
}

data::CloudPairing parsePairing(const std::string& name)
{
    if (name == "random") {
        return data::CloudPairing::Random;
    }
    if (name == "by_index") {
        return data::CloudPairing::ByIndex;
    }
    throw ConfigError("unknown pairing '" + name + "' (valid: random, by_index)");
}

} // namespace

std::string TrainConfig::toJsonString() const
{
    json j;
    j["kind"] = modelKindName(kind);
    j["data"] = { { "spec", data.spec }, { "test_fraction", data.testFraction },
        { "split_seed", data.splitSeed },
        { "normalization", data::Normalization::kindName(data.normalization) },
        { "subsample_points", data.subsamplePoints } };
    j["source"] = { { "kind", data::noiseKindName(source.kind) }, { "scale", source.scale },
        { "spec", source.spec },
        { "pairing", source.pairing == data::CloudPairing::Random ? "random" : "by_index" },
        { "gaussian_kind", source.gaussianKind }, { "dof", source.dof } };
    j["model"] = json::parse(model.toJsonString());
    j["gaussian_model"] = gaussianModelJson.empty() ? json::object() : json::parse(gaussianModelJson);
    j["flow"] = { { "minibatch", minibatchName(flow.minibatch) }, { "eps", flow.eps },
        { "iterations", flow.iterations }, { "map", ot::mapKindName(flow.map) },
        { "label_dropout", flow.labelDropout }, { "euclidean_loss", flow.euclideanLoss } };
    j["optim"] = { { "optimizer", optimizerName(optim.optimizer) }, { "lr", optim.lr },
        { "beta1", optim.beta1 }, { "beta2", optim.beta2 }, { "weight_decay", optim.weightDecay },
        { "schedule", lrScheduleName(optim.schedule) }, { "warmup_steps", optim.warmupSteps },
        { "final_lr_factor", optim.finalLrFactor }, { "grad_clip", optim.gradClip },
        { "ema_decay", optim.emaDecay } };
    j["train"] = { { "steps", train.steps }, { "batch", train.batch }, { "seed", train.seed },
        { "device", train.device }, { "threads", train.threads },
        { "mixed_precision", train.mixedPrecision }, { "checkpoint_every", train.checkpointEvery },
        { "log_every", train.logEvery }, { "sample_every", train.sampleEvery } };
    j["generate"] = { { "integrator", integratorName(generate.integrator) },
        { "steps", generate.steps }, { "guidance", generate.guidance } };
    return j.dump(2);
}

TrainConfig TrainConfig::fromJsonString(const std::string& text, const std::string& what)
{
    json j;
    try {
        j = json::parse(text);
    } catch (const json::parse_error& e) {
        throw ConfigError(what + ": not valid JSON (" + e.what() + ")");
    }
    TrainConfig c;
    Section top(j, "", what);
    top.getEnum<ModelKind>("kind", c.kind, parseModelKind);
    auto section = [&](const char* key, const std::function<void(Section&)>& body) {
        top.known(key);
        if (!j.contains(key)) {
            return;
        }
        Section s(j.at(key), key, what);
        body(s);
        s.finish();
    };
    section("data", [&](Section& s) {
        s.get("spec", c.data.spec);
        s.get("test_fraction", c.data.testFraction);
        s.get("split_seed", c.data.splitSeed);
        s.getEnum<data::Normalization::Kind>(
            "normalization", c.data.normalization, data::Normalization::parseKind);
        s.get("subsample_points", c.data.subsamplePoints);
    });
    section("source", [&](Section& s) {
        s.getEnum<data::NoiseKind>("kind", c.source.kind, data::parseNoiseKind);
        s.get("scale", c.source.scale);
        s.get("spec", c.source.spec);
        s.getEnum<data::CloudPairing>("pairing", c.source.pairing, parsePairing);
        s.get("gaussian_kind", c.source.gaussianKind);
        s.get("dof", c.source.dof);
    });
    if (j.contains("model")) {
        try {
            c.model = model::SetTransformerOptions::fromJsonString(j.at("model").dump(), true);
        } catch (const ConfigError& e) {
            throw ConfigError(what + ": 'model' " + e.what());
        }
    }
    top.known("model");
    top.known("gaussian_model");
    if (j.contains("gaussian_model")) {
        if (!j.at("gaussian_model").is_object()) {
            throw ConfigError(what + ": 'gaussian_model' must be a JSON object");
        }
        c.gaussianModelJson = j.at("gaussian_model").empty() ? "" : j.at("gaussian_model").dump();
    }
    section("flow", [&](Section& s) {
        s.getEnum<MinibatchCost>("minibatch", c.flow.minibatch, parseMinibatchCost);
        s.get("eps", c.flow.eps);
        s.get("iterations", c.flow.iterations);
        s.getEnum<ot::MapKind>("map", c.flow.map, ot::parseMapKind);
        s.get("label_dropout", c.flow.labelDropout);
        s.get("euclidean_loss", c.flow.euclideanLoss);
    });
    section("optim", [&](Section& s) {
        s.getEnum<OptimizerKind>("optimizer", c.optim.optimizer, parseOptimizer);
        s.get("lr", c.optim.lr);
        s.get("beta1", c.optim.beta1);
        s.get("beta2", c.optim.beta2);
        s.get("weight_decay", c.optim.weightDecay);
        s.getEnum<LrSchedule>("schedule", c.optim.schedule, parseLrSchedule);
        s.get("warmup_steps", c.optim.warmupSteps);
        s.get("final_lr_factor", c.optim.finalLrFactor);
        s.get("grad_clip", c.optim.gradClip);
        s.get("ema_decay", c.optim.emaDecay);
    });
    section("train", [&](Section& s) {
        s.get("steps", c.train.steps);
        s.get("batch", c.train.batch);
        s.get("seed", c.train.seed);
        s.get("device", c.train.device);
        s.get("threads", c.train.threads);
        s.get("mixed_precision", c.train.mixedPrecision);
        s.get("checkpoint_every", c.train.checkpointEvery);
        s.get("log_every", c.train.logEvery);
        s.get("sample_every", c.train.sampleEvery);
    });
    section("generate", [&](Section& s) {
        s.getEnum<Integrator>("integrator", c.generate.integrator, parseIntegrator);
        s.get("steps", c.generate.steps);
        s.get("guidance", c.generate.guidance);
    });
    top.finish();
    if (!c.gaussianModelJson.empty()) {
        try {
            (void)gaussianModelOptions(c);
        } catch (const ConfigError& e) {
            throw ConfigError(what + ": 'gaussian_model' " + e.what());
        }
    }
    try {
        c.validate();
    } catch (const ConfigError& e) {
        throw ConfigError(what + ": " + e.what());
    }
    return c;
}

TrainConfig TrainConfig::fromFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw ConfigError("cannot open config file '" + path + "'");
    }
    std::ostringstream os;
    os << in.rdbuf();
    return fromJsonString(os.str(), path);
}

void TrainConfig::validate() const
{
    auto check = [](bool ok, const std::string& msg) {
        if (!ok) {
            throw ConfigError(msg);
        }
    };
    check(!data.spec.empty(), "'data.spec' must not be empty");
    check(data.testFraction >= 0 && data.testFraction < 1, "'data.test_fraction' must be in [0, 1)");
    check(data.subsamplePoints >= 0, "'data.subsample_points' must be >= 0");
    check(source.scale > 0 && std::isfinite(source.scale), "'source.scale' must be > 0");
    check(source.kind != data::NoiseKind::Clouds || !source.spec.empty(),
        "'source.spec' is required when 'source.kind' is \"clouds\"");
    check(source.gaussianKind == "wishart" || source.gaussianKind == "standard_normal"
            || source.gaussianKind == "gaussians",
        "'source.gaussian_kind' must be wishart, standard_normal or gaussians");
    check(source.dof >= 1, "'source.dof' must be >= 1");
    check(source.gaussianKind != "gaussians" || !source.spec.empty(),
        "'source.spec' is required when 'source.gaussian_kind' is \"gaussians\"");
    check(flow.eps > 0 && std::isfinite(flow.eps), "'flow.eps' must be > 0");
    check(flow.iterations >= 1, "'flow.iterations' must be >= 1");
    check(flow.labelDropout >= 0 && flow.labelDropout < 1, "'flow.label_dropout' must be in [0, 1)");
    check(optim.lr > 0 && std::isfinite(optim.lr), "'optim.lr' must be > 0");
    check(optim.beta1 >= 0 && optim.beta1 < 1, "'optim.beta1' must be in [0, 1)");
    check(optim.beta2 >= 0 && optim.beta2 < 1, "'optim.beta2' must be in [0, 1)");
    check(optim.weightDecay >= 0, "'optim.weight_decay' must be >= 0");
    check(optim.warmupSteps >= 0, "'optim.warmup_steps' must be >= 0");
    check(optim.finalLrFactor > 0 && optim.finalLrFactor <= 1,
        "'optim.final_lr_factor' must be in (0, 1]");
    check(optim.gradClip >= 0, "'optim.grad_clip' must be >= 0 (0 = off)");
    check(optim.emaDecay >= 0 && optim.emaDecay < 1, "'optim.ema_decay' must be in [0, 1)");
    check(train.steps >= 1, "'train.steps' must be >= 1");
    check(train.batch >= 1, "'train.batch' must be >= 1");
    check(train.threads >= 0, "'train.threads' must be >= 0");
    check(train.checkpointEvery >= 0, "'train.checkpoint_every' must be >= 0 (0 = at the end only)");
    check(train.logEvery >= 1, "'train.log_every' must be >= 1");
    check(train.sampleEvery >= 0, "'train.sample_every' must be >= 0");
    check(generate.steps >= 1, "'generate.steps' must be >= 1");
    check(std::isfinite(generate.guidance), "'generate.guidance' must be finite");
}

// The configured Gaussian MLP options; dim (and numLabels) come from the data, so a config may
// leave them out: a placeholder dim lets the options validate before the data is loaded.
model::GaussianMlpOptions gaussianModelOptions(const TrainConfig& c)
{
    if (c.gaussianModelJson.empty()) {
        return model::GaussianMlpOptions();
    }
    auto j = json::parse(c.gaussianModelJson);
    const bool noDim = !j.contains("dim") || (j["dim"].is_number_integer() && j["dim"].get<long long>() == 0);
    if (noDim) {
        j["dim"] = 1;
    }
    auto o = model::GaussianMlpOptions::fromJsonString(j.dump());
    if (noDim) {
        o.dim = 0;
    }
    return o;
}

StepOptions TrainConfig::stepOptions() const
{
    StepOptions o;
    o.minibatch = flow.minibatch;
    o.innerOt = ot::SinkhornOptions().setEps(flow.eps).setIterations(flow.iterations);
    o.map = flow.map;
    o.labelDropout = flow.labelDropout;
    o.mixedPrecision = train.mixedPrecision;
    return o;
}

double learningRate(const OptimConfig& optim, std::int64_t step, std::int64_t totalSteps)
{
    if (step < optim.warmupSteps) {
        return optim.lr * static_cast<double>(step + 1) / static_cast<double>(optim.warmupSteps);
    }
    const double span = static_cast<double>(std::max<std::int64_t>(1, totalSteps - optim.warmupSteps));
    const double p = std::clamp(static_cast<double>(step - optim.warmupSteps) / span, 0.0, 1.0);
    const double f = optim.finalLrFactor;
    switch (optim.schedule) {
    case LrSchedule::Constant:
        return optim.lr;
    case LrSchedule::Exponential:
        return optim.lr * std::pow(f, p);
    case LrSchedule::Cosine:
        return optim.lr * (f + (1 - f) * 0.5 * (1 + std::cos(std::numbers::pi * p)));
    }
    return optim.lr;
}

} // namespace wfm::flow
