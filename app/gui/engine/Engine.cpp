#include "engine/Engine.h"

#include "engine/ModelPrivate.h"
#include "wfm/Error.h"
#include "wfm/Platform.h"
#include "wfm/data/BuiltinFamilies.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/GaussianDataset.h"
#include "wfm/flow/Evaluate.h"
#include "wfm/flow/Integrator.h"
#include "wfm/flow/TrainConfig.h"
#include "wfm/flow/Trainer.h"
#include "wfm/io/Readers.h"
#include "wfm/metrics/SetMetrics.h"
#include "wfm/ot/BuresWasserstein.h"
#include "wfm/ot/Sinkhorn.h"
#include "wfm/ot/TransportMap.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace wfm::gui {

namespace {

std::string str(const QString& s)
{
    return s.toStdString();
}

QString qstr(const std::string& s)
{
    return QString::fromStdString(s);
}

QStringList qstrList(const std::vector<std::string>& v)
{
    QStringList out;
    for (const auto& s : v) {
        out << qstr(s);
    }
    return out;
}

std::vector<float> toFloats(const torch::Tensor& t)
{
    const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    const float* p = c.data_ptr<float>();
    return std::vector<float>(p, p + c.numel());
}

std::vector<std::int64_t> toLabels(const torch::Tensor& t)
{
    if (!t.defined()) {
        return {};
    }
    const torch::Tensor c = t.detach().to(torch::kCPU, torch::kInt64).contiguous();
    std::vector<std::int64_t> v(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel());
    // Null labels (guidance off) are shown without label colours.
    if (std::any_of(v.begin(), v.end(), [](std::int64_t l) { return l < 0; })) {
        return {};
    }
    return v;
}

CloudSnapshot cloudSnapshot(const torch::Tensor& points, const torch::Tensor& weights,
    const torch::Tensor& labels, const std::vector<std::string>& names)
{
    CloudSnapshot s;
    s.count = static_cast<int>(points.size(0));
    s.maxPoints = static_cast<int>(points.size(1));
    s.dim = static_cast<int>(points.size(2));
    s.points = toFloats(points);
    s.weights = toFloats(weights);
    s.labels = toLabels(labels);
    if (!s.labels.empty()) {
        s.labelNames = names;
    }
    return s;
}

GaussianSnapshot gaussianSnapshot(const torch::Tensor& means, const torch::Tensor& covariances,
    const torch::Tensor& labels, const std::vector<std::string>& names)
{
    GaussianSnapshot s;
    s.count = static_cast<int>(means.size(0));
    s.dim = static_cast<int>(means.size(1));
    s.means = toFloats(means);
    s.covariances = toFloats(covariances);
    s.labels = toLabels(labels);
    if (!s.labels.empty()) {
        s.labelNames = names;
    }
    return s;
}

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

QString errorMessage(const std::exception& e)
{
    if (const auto* c = dynamic_cast<const c10::Error*>(&e)) {
        return qstr(c->what_without_backtrace());
    }
    return QString::fromLocal8Bit(e.what());
}

void prepareProcess(int argc, char** argv)
{
    wfm::ensureBlasKernel(argc, argv);
}

void initEngine()
{
    wfm::initThreads();
    wfm::io::registerReaders();
}

QStringList builtinSpecs()
{
    QStringList out;
    try {
        for (const auto& n : data::builtinNames()) {
            out << QStringLiteral("builtin:") + qstr(n);
        }
        for (const auto& n : data::gaussianBuiltinNames()) {
            const QString name = qstr(n);
            out << QStringLiteral("builtin:")
                    + (name.startsWith(QLatin1String("gaussian-")) ? name : QStringLiteral("gaussian-") + name);
        }
    } catch (const std::exception&) {
    }
    if (out.isEmpty()) {
        out = QStringList { QStringLiteral("builtin:rings"), QStringLiteral("builtin:shapes3d"),
            QStringLiteral("builtin:letters"), QStringLiteral("builtin:tissue"),
            QStringLiteral("builtin:gaussian-spiral"), QStringLiteral("builtin:gaussian-ring3d"),
            QStringLiteral("builtin:gaussian-eig8") };
    }
    out.removeDuplicates();
    return out;
}

QString specForPath(const QString& path)
{
    const QFileInfo info(path);
    const QString p = info.absoluteFilePath();
    const QString ext = info.suffix().toLower();
    const QString name = info.fileName().toLower();
    if (info.isDir()) {
        // A folder of IDX files (MNIST layout) is the only folder format.
        return QStringLiteral("idx:") + p;
    }
    if (ext == QLatin1String("npz") || ext == QLatin1String("npy")) {
        return p;
    }
    if (ext == QLatin1String("h5ad")) {
        return QStringLiteral("h5ad:") + p;
    }
    if (ext == QLatin1String("csv") || ext == QLatin1String("tsv")) {
        return QStringLiteral("csv:") + p;
    }
    if (ext == QLatin1String("png")) {
        return QStringLiteral("png:") + p;
    }
    if (name.contains(QLatin1String("-idx")) || ext == QLatin1String("idx") || name.endsWith(QLatin1String("ubyte"))
        || name.endsWith(QLatin1String("ubyte.gz"))) {
        return QStringLiteral("idx:") + p;
    }
    static const QStringList meshes { QStringLiteral("obj"), QStringLiteral("ply"), QStringLiteral("stl"),
        QStringLiteral("off"), QStringLiteral("gltf"), QStringLiteral("glb"), QStringLiteral("fbx"),
        QStringLiteral("dae"), QStringLiteral("3ds") };
    if (meshes.contains(ext)) {
        return QStringLiteral("mesh:") + p;
    }
    return p;
}

QVector<DeviceChoice> deviceChoices()
{
    QVector<DeviceChoice> out;
    out.push_back({ QStringLiteral("auto"), QStringLiteral("Automatic (first GPU, else CPU)") });
    try {
        out.push_back({ QStringLiteral("cpu"), qstr(deviceName(c10::Device(c10::kCPU))) });
        const int n = cudaDeviceCount();
        for (int i = 0; i < n; ++i) {
            out.push_back({ QStringLiteral("cuda:%1").arg(i),
                qstr(deviceName(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)))) });
        }
    } catch (const std::exception&) {
    }
    return out;
}

LoadedData loadData(const QString& specText, int previewCount, int galleryCount)
{
    const auto t0 = std::chrono::steady_clock::now();
    LoadedData out;
    out.spec = specText.trimmed();
    const std::string spec = str(out.spec);
    if (spec.empty()) {
        throw ConfigError("no data spec given");
    }
    if (data::isGaussianSpec(spec)) {
        const data::GaussianDataset g = data::loadGaussians(spec);
        out.gaussian = true;
        out.count = g.count();
        out.dim = static_cast<int>(g.dim());
        out.labelNames = qstrList(g.labelNames);
        out.summary = qstr(g.summaryText());
        const std::int64_t n = std::min<std::int64_t>(g.count(), 400);
        out.gaussians = gaussianSnapshot(g.means.slice(0, 0, n), g.covariances.slice(0, 0, n),
            g.hasLabels() ? g.labels.slice(0, 0, n) : torch::Tensor(), g.labelNames);
    } else {
        const data::PointCloudDataset d = data::loadPointClouds(spec);
        out.count = d.count();
        out.dim = static_cast<int>(d.dim());
        out.labelNames = qstrList(d.labelNames);
        out.summary = qstr(d.summary().toText());
        const std::int64_t n = std::min<std::int64_t>(d.count(), std::max(1, previewCount));
        std::vector<std::int64_t> idx;
        for (std::int64_t k = 0; k < n; ++k) {
            // Spread the preview over the dataset so several labels show.
            idx.push_back(k * d.count() / n);
        }
        const data::PointCloudDataset sub = d.subset(idx);
        out.clouds = cloudSnapshot(sub.points, sub.weights, sub.labels, sub.labelNames);
        if (galleryCount > 0) {
            // The gallery shows the first samples, in dataset order.
            std::vector<std::int64_t> first;
            for (std::int64_t k = 0; k < std::min<std::int64_t>(d.count(), galleryCount); ++k) {
                first.push_back(k);
            }
            const data::PointCloudDataset g = d.subset(first);
            out.gallery = cloudSnapshot(g.points, g.weights, g.labels, g.labelNames);
        }
    }
    out.seconds = secondsSince(t0);
    return out;
}

TrainForm defaultTrainForm()
{
    const flow::TrainConfig c;
    TrainForm f;
    f.spec = qstr(c.data.spec);
    f.kind = qstr(flow::modelKindName(c.kind));
    f.steps = c.train.steps;
    f.batch = c.train.batch;
    f.lr = c.optim.lr;
    f.width = static_cast<int>(c.model.width);
    f.blocks = static_cast<int>(c.model.blocks);
    f.heads = static_cast<int>(c.model.heads);
    f.minibatch = qstr(flow::minibatchCostName(c.flow.minibatch));
    f.map = qstr(ot::mapKindName(c.flow.map));
    f.device = qstr(c.train.device);
    f.logEvery = c.train.logEvery;
    f.sampleEvery = c.train.sampleEvery;
    f.checkpointEvery = c.train.checkpointEvery;
    f.seed = c.train.seed;
    return f;
}

TrainForm trainFormFromFile(const QString& path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        throw ConfigError(str(path) + ": " + str(file.errorString()));
    }
    return trainFormFromJson(QString::fromUtf8(file.readAll()), path);
}

QString defaultConfigJson()
{
    return qstr(flow::TrainConfig().toJsonString());
}

TrainForm trainFormFromJson(const QString& json, const QString& what)
{
    const flow::TrainConfig c = flow::TrainConfig::fromJsonString(str(json), str(what));
    TrainForm f;
    f.baseJson = qstr(c.toJsonString());
    f.spec = qstr(c.data.spec);
    f.kind = qstr(flow::modelKindName(c.kind));
    f.steps = c.train.steps;
    f.batch = c.train.batch;
    f.lr = c.optim.lr;
    f.width = static_cast<int>(c.model.width);
    f.blocks = static_cast<int>(c.model.blocks);
    f.heads = static_cast<int>(c.model.heads);
    if (!c.gaussianModelJson.empty() && c.kind == flow::ModelKind::Gaussians) {
        const auto g = nlohmann::json::parse(c.gaussianModelJson);
        f.width = g.value("width", f.width);
        f.blocks = g.value("blocks", f.blocks);
    }
    f.minibatch = qstr(flow::minibatchCostName(c.flow.minibatch));
    f.map = qstr(ot::mapKindName(c.flow.map));
    f.device = qstr(c.train.device);
    f.logEvery = c.train.logEvery;
    f.sampleEvery = c.train.sampleEvery;
    f.checkpointEvery = c.train.checkpointEvery;
    f.seed = c.train.seed;
    return f;
}

QString configJsonFromForm(const TrainForm& f)
{
    nlohmann::json j = nlohmann::json::parse(
        f.baseJson.isEmpty() ? flow::TrainConfig().toJsonString() : str(f.baseJson));
    j["kind"] = str(f.kind);
    j["data"]["spec"] = str(f.spec);
    j["train"]["steps"] = f.steps;
    j["train"]["batch"] = f.batch;
    j["train"]["device"] = str(f.device);
    j["train"]["log_every"] = f.logEvery;
    j["train"]["sample_every"] = f.sampleEvery;
    j["train"]["checkpoint_every"] = f.checkpointEvery;
    j["train"]["seed"] = f.seed;
    j["optim"]["lr"] = f.lr;
    j["model"]["width"] = f.width;
    j["model"]["blocks"] = f.blocks;
    j["model"]["heads"] = f.heads;
    // Keep the MLP no wider than needed for small test models.
    if (j["model"].contains("mlpWidth") && j["model"]["mlpWidth"].get<int>() > 2 * f.width) {
        j["model"]["mlpWidth"] = 2 * f.width;
    }
    if (!j.contains("gaussian_model") || !j["gaussian_model"].is_object()) {
        j["gaussian_model"] = nlohmann::json::object();
    }
    j["gaussian_model"]["width"] = f.width;
    j["gaussian_model"]["blocks"] = f.blocks;
    j["flow"]["minibatch"] = str(f.minibatch);
    j["flow"]["map"] = str(f.map);
    const flow::TrainConfig c = flow::TrainConfig::fromJsonString(j.dump(), "training form");
    c.validate();
    return qstr(c.toJsonString());
}

QStringList minibatchCostNames()
{
    return { QStringLiteral("none"), QStringLiteral("chamfer"), QStringLiteral("entropic"), QStringLiteral("bures") };
}

QStringList mapKindNames()
{
    return { QStringLiteral("rounded"), QStringLiteral("argmax"), QStringLiteral("sampled"), QStringLiteral("barycentric") };
}

QStringList integratorNames()
{
    return { QStringLiteral("euler"), QStringLiteral("midpoint"), QStringLiteral("heun") };
}

ModelInfo modelInfo(const Model& model)
{
    ModelInfo info;
    const flow::TrainConfig* c = nullptr;
    if (model.clouds) {
        info.dim = static_cast<int>(model.clouds->dim());
        info.step = model.clouds->step();
        info.labelNames = qstrList(model.clouds->labelNames());
        c = &model.clouds->config();
    } else if (model.gaussians) {
        info.gaussian = true;
        info.dim = static_cast<int>(model.gaussians->dim());
        info.step = model.gaussians->step();
        info.labelNames = qstrList(model.gaussians->labelNames());
        c = &model.gaussians->config();
    }
    if (c) {
        info.defaultSteps = c->generate.steps;
        info.defaultGuidance = c->generate.guidance;
        info.integrator = qstr(flow::integratorName(c->generate.integrator));
    }
    return info;
}

ModelPtr loadModel(const QString& runDir)
{
    const std::string dir = str(runDir);
    const flow::TrainConfig c = flow::readCheckpointConfig(dir);
    if (c.kind == flow::ModelKind::Gaussians) {
        return makeModel(nullptr, flow::loadGaussianGenerator(dir, "cpu"));
    }
    return makeModel(flow::loadCloudGenerator(dir, "cpu"), nullptr);
}

QString runConfigJson(const QString& runDir)
{
    return qstr(flow::readCheckpointConfig(str(runDir)).toJsonString());
}

Samples generate(const Model& model, const GenerateOptions& o)
{
    // Background tasks run on pool threads, whose intra-op thread count starts at LibTorch's
    // default (one, in Debian's build).
    wfm::initThreads();
    flow::GenerateRequest r;
    r.count = std::max(1, o.count);
    r.label = o.label;
    r.guidance = o.guidance;
    if (!o.integrator.isEmpty()) {
        r.integrator = flow::parseIntegrator(str(o.integrator));
    }
    r.steps = std::max(0, o.steps);
    r.trajectory = o.trajectory;
    r.seed = o.seed;
    Samples s;
    if (model.clouds) {
        const flow::GeneratedClouds g = model.clouds->generate(r);
        const auto& names = model.clouds->labelNames();
        s.clouds = cloudSnapshot(g.points, g.weights, g.labels, names);
        if (g.trajectory.defined()) {
            const std::int64_t frames = g.trajectory.size(0);
            s.cloudFrames.reserve(static_cast<size_t>(frames));
            for (std::int64_t t = 0; t < frames; ++t) {
                s.cloudFrames.push_back(cloudSnapshot(g.trajectory[t], g.weights, g.labels, names));
            }
        }
        s.modelStep = model.clouds->step();
        s.seconds = g.seconds;
    } else if (model.gaussians) {
        const flow::GeneratedGaussians g = model.gaussians->generate(r);
        const auto& names = model.gaussians->labelNames();
        s.gaussian = true;
        s.gaussians = gaussianSnapshot(g.means, g.covariances, g.labels, names);
        if (g.trajectoryMeans.defined()) {
            const std::int64_t frames = g.trajectoryMeans.size(0);
            for (std::int64_t t = 0; t < frames; ++t) {
                s.gaussianFrames.push_back(
                    gaussianSnapshot(g.trajectoryMeans[t], g.trajectoryCovariances[t], g.labels, names));
            }
        }
        s.modelStep = model.gaussians->step();
        s.seconds = g.seconds;
    } else {
        throw ConfigError("no model to generate from");
    }
    return s;
}

Samples geodesic(const LoadedData& data, int i, int j, int frames)
{
    wfm::initThreads();
    const auto t0 = std::chrono::steady_clock::now();
    frames = std::max(2, frames);
    Samples out;
    out.overlay = true;
    const std::vector<std::string> names { "start", "end", "t" };
    if (data.gaussian) {
        const GaussianSnapshot& g = data.gaussians;
        WFM_CHECK(i >= 0 && j >= 0 && i < g.count && j < g.count, "geodesic: indices ", i, ", ", j,
            " must be in [0, ", g.count, ")");
        const std::int64_t d = g.dim;
        const torch::Tensor means = torch::from_blob(const_cast<float*>(g.means.data()), { g.count, g.dim }, torch::kFloat32)
                                        .to(torch::kFloat64);
        const torch::Tensor covs = torch::from_blob(const_cast<float*>(g.covariances.data()), { g.count, g.dim, g.dim },
            torch::kFloat32).to(torch::kFloat64);
        const torch::Tensor m0 = means.slice(0, i, i + 1), m1 = means.slice(0, j, j + 1);
        const torch::Tensor S0 = covs.slice(0, i, i + 1), S1 = covs.slice(0, j, j + 1);
        const torch::Tensor labels = torch::tensor(std::vector<std::int64_t> { 0, 1, 2 }, torch::kInt64);
        for (int f = 0; f < frames; ++f) {
            const double t = static_cast<double>(f) / (frames - 1);
            const ot::bw::Geodesic p = ot::bw::geodesic(m0, S0, m1, S1, t);
            const torch::Tensor m = torch::cat({ m0, m1, p.mean }).to(torch::kFloat32);
            const torch::Tensor S = torch::cat({ S0, S1, p.cov }).to(torch::kFloat32);
            out.gaussianFrames.push_back(gaussianSnapshot(m, S.reshape({ 3, d, d }), labels, names));
        }
        out.gaussian = true;
        out.gaussians = out.gaussianFrames.back();
    } else {
        const CloudSnapshot& c = data.clouds;
        WFM_CHECK(i >= 0 && j >= 0 && i < c.count && j < c.count, "geodesic: indices ", i, ", ", j,
            " must be in [0, ", c.count, ") (the clouds shown)");
        auto live = [&](int k) {
            // Live points fill the first slots of a row.
            const std::int64_t n = c.liveCount(k);
            return torch::from_blob(const_cast<float*>(c.cloud(k)), { n, static_cast<std::int64_t>(c.dim) }, torch::kFloat32)
                .clone();
        };
        const torch::Tensor x = live(i);
        const torch::Tensor y = live(j);
        const torch::Tensor a = torch::full({ x.size(0) }, 1.0 / x.size(0), torch::kFloat32);
        const torch::Tensor b = torch::full({ y.size(0) }, 1.0 / y.size(0), torch::kFloat32);
        const ot::DisplacementInterpolation path = ot::displacementInterpolation(
            x, y, a, b, ot::SinkhornOptions().setEps(0.002).setIterations(200), ot::MapKind::Rounded);
        const std::int64_t n = std::max(x.size(0), y.size(0));
        auto padded = [&](const torch::Tensor& p) {
            return torch::constant_pad_nd(p, { 0, 0, 0, n - p.size(0) });
        };
        auto mask = [&](std::int64_t live) {
            torch::Tensor w = torch::zeros({ n }, torch::kFloat32);
            w.slice(0, 0, live).fill_(1.0f / static_cast<float>(live));
            return w;
        };
        const torch::Tensor weights = torch::stack({ mask(x.size(0)), mask(y.size(0)), mask(x.size(0)) });
        const torch::Tensor labels = torch::tensor(std::vector<std::int64_t> { 0, 1, 2 }, torch::kInt64);
        for (int f = 0; f < frames; ++f) {
            const double t = static_cast<double>(f) / (frames - 1);
            const torch::Tensor xt = path.at(t);
            const torch::Tensor points = torch::stack({ padded(x), padded(y), padded(xt) });
            out.cloudFrames.push_back(cloudSnapshot(points, weights, labels, names));
        }
        out.clouds = out.cloudFrames.back();
    }
    out.seconds = secondsSince(t0);
    return out;
}

namespace {

MetricRow metricRow(const metrics::SetMetricsResult& r, const QString& label = {})
{
    return { qstr(r.distance), label, r.nna, r.cov, r.mmd };
}

} // namespace

Evaluation evaluate(const Model& model, const EvaluateOptions& o)
{
    wfm::initThreads();
    flow::EvaluateOptions eo;
    eo.maxReference = std::max(2, o.maxReference);
    eo.chamferPoints = o.chamferPoints;
    eo.emdPoints = std::max(1, o.emdPoints);
    eo.emd = o.emdPoints > 0 ? flow::EmdMode::Exact : flow::EmdMode::None;
    eo.seed = o.seed;
    Evaluation out;
    if (model.gaussians) {
        const flow::TrainConfig& config = model.gaussians->config();
        const flow::GaussianEvaluation e = flow::evaluateGaussians(*model.gaussians,
            flow::heldOutGaussians(config), config.data.spec + " (held-out split)", eo);
        out.gaussian = true;
        out.reference = qstr(config.data.spec)
            + QStringLiteral(" (held-out split, %1 of %2)").arg(e.reference.count()).arg(e.heldOutCount);
        out.rows.push_back(metricRow(e.buresWasserstein));
        out.realGaussians = gaussianSnapshot(e.reference.means, e.reference.covariances,
            e.reference.hasLabels() ? e.reference.labels : torch::Tensor(), e.reference.labelNames);
        out.generatedGaussians = gaussianSnapshot(e.generated.means, e.generated.covariances, e.generated.labels,
            model.gaussians->labelNames());
        out.seconds = e.seconds;
        return out;
    }
    WFM_CHECK(model.clouds != nullptr, "no model to evaluate");
    const flow::TrainConfig& config = model.clouds->config();
    const flow::CloudEvaluation e = flow::evaluateClouds(*model.clouds, flow::heldOutClouds(config),
        config.data.spec + " (held-out split)", eo);
    out.reference = qstr(config.data.spec)
        + QStringLiteral(" (held-out split, %1 of %2)").arg(e.reference.count()).arg(e.heldOutCount);
    out.rows.push_back(metricRow(e.chamfer));
    if (e.emd) {
        out.rows.push_back(metricRow(*e.emd));
    }
    for (const auto& [name, r] : e.perLabel) {
        out.rows.push_back(metricRow(r, qstr(name)));
    }
    if (e.niche) {
        out.hasNiche = true;
        out.nicheReal = e.niche->report.realAccuracy;
        out.nicheGenerated = e.niche->report.generatedAccuracy;
        out.nicheChance = e.niche->report.chance;
    }
    const auto& ref = e.reference;
    out.realClouds = cloudSnapshot(ref.points, ref.weights, ref.hasLabels() ? ref.labels : torch::Tensor(), ref.labelNames);
    out.generatedClouds = cloudSnapshot(e.generated.points, e.generated.weights, e.generated.labels,
        model.clouds->labelNames());
    out.seconds = e.seconds;
    return out;
}

void writeSamplesNpz(const Samples& s, const QString& path)
{
    if (s.gaussian) {
        const auto& g = s.gaussians;
        data::GaussianDataset d;
        d.means = torch::from_blob(const_cast<float*>(g.means.data()), { g.count, g.dim }, torch::kFloat32).clone();
        d.covariances = torch::from_blob(const_cast<float*>(g.covariances.data()), { g.count, g.dim, g.dim },
            torch::kFloat32).clone();
        if (!g.labels.empty()) {
            d.labels = torch::tensor(g.labels, torch::kInt64);
            d.labelNames = g.labelNames;
        }
        data::writeGaussianNpz(str(path), d);
        return;
    }
    const auto& c = s.clouds;
    WFM_CHECK(c.count > 0, "no samples to write");
    const torch::Tensor points = torch::from_blob(const_cast<float*>(c.points.data()),
        { c.count, c.maxPoints, c.dim }, torch::kFloat32).clone();
    const torch::Tensor weights = torch::from_blob(const_cast<float*>(c.weights.data()),
        { c.count, c.maxPoints }, torch::kFloat32).clone();
    data::PointCloudDataset d = data::PointCloudDataset::fromPadded(points, weights, str(path));
    if (!c.labels.empty() && !c.labelNames.empty()) {
        d.labels = torch::tensor(c.labels, torch::kInt64);
        d.labelNames = c.labelNames;
    }
    data::writePointCloudNpz(str(path), d);
}

} // namespace wfm::gui
