#include "wfm/flow/Trainer.h"

#include "TrainTask.h"

#include "wfm/AtomicFile.h"
#include "wfm/Error.h"
#include "wfm/Log.h"
#include "wfm/Platform.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/GaussianDataset.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace fs = std::filesystem;

namespace wfm::flow {

const char* const kCheckpointFormat = "wfm-checkpoint-1";

namespace {



double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace

c10::Device resolveDevice(const std::string& spec)
{
    return parseDevice(spec.empty() ? "auto" : spec);
}

// --- Checkpoint archives -----------------------------------------------------------------------

std::string resolveCheckpointFile(const std::string& runDirOrFile)
{
    std::error_code ec;
    if (fs::is_directory(runDirOrFile, ec)) {
        return checkpointPath(runDirOrFile);
    }
    return runDirOrFile;
}

/// Opens a checkpoint archive on `device`. Throws CheckpointError naming the file.
void openArchive(torch::serialize::InputArchive& a, const std::string& file, const c10::Device& device)
{
    std::error_code ec;
    if (!fs::exists(file, ec)) {
        throw CheckpointError("checkpoint '" + file + "' does not exist");
    }
    try {
        a.load_from(file, device);
    } catch (const c10::Error& e) {
        std::string what = e.what_without_backtrace();
        throw CheckpointError("checkpoint '" + file + "' is damaged or not a WFM checkpoint ("
            + what.substr(0, what.find('\n')) + ")");
    }
    c10::IValue format;
    if (!a.try_read("format", format) || !format.isString() || format.toStringRef() != kCheckpointFormat) {
        throw CheckpointError("checkpoint '" + file + "' is not a WFM checkpoint (missing format '"
            + std::string(kCheckpointFormat) + "')");
    }
}

TrainConfig configFromArchive(torch::serialize::InputArchive& a, const std::string& file)
{
    return TrainConfig::fromJsonString(readString(a, "config", file), file + " (config)");
}

std::int64_t readInt(torch::serialize::InputArchive& a, const std::string& key, const std::string& file)
{
    c10::IValue v;
    if (!a.try_read(key, v) || !v.isInt()) {
        throw CheckpointError("checkpoint '" + file + "': missing entry '" + key + "'");
    }
    return v.toInt();
}

void loadModule(torch::serialize::InputArchive& a, const std::string& key, torch::nn::Module& m,
    const std::string& file)
{
    torch::serialize::InputArchive sub;
    if (!a.try_read(key, sub)) {
        throw CheckpointError("checkpoint '" + file + "': missing '" + key + "' weights");
    }
    try {
        m.load(sub);
    } catch (const c10::Error& e) {
        std::string what = e.what_without_backtrace();
        throw CheckpointError("checkpoint '" + file + "': '" + key
            + "' weights do not fit the configured model (" + what.substr(0, what.find('\n')) + ")");
    }
}

// --- ProcessGroup ------------------------------------------------------------------------------

ProcessGroup ProcessGroup::fromEnvironment()
{
    ProcessGroup g;
    auto readEnv = [](const char* name, int fallback) {
        const char* v = std::getenv(name);
        if (!v || !*v) {
            return fallback;
        }
        char* end = nullptr;
        const long x = std::strtol(v, &end, 10);
        if (!end || *end != '\0' || x < 0) {
            throw ConfigError(std::string("environment variable ") + name + "='" + v
                + "' is not a non-negative integer");
        }
        return static_cast<int>(x);
    };
    g.worldSize = std::max(1, readEnv("WORLD_SIZE", 1));
    g.rank = readEnv("RANK", 0);
    if (g.worldSize > 1) {
        throw ConfigError("WORLD_SIZE=" + std::to_string(g.worldSize)
            + ": this build trains in one process (no c10d process group is compiled in); unset "
              "WORLD_SIZE or run one process per machine");
    }
    return g;
}

void ProcessGroup::synchronizeGradients(const std::vector<torch::Tensor>&) const
{
    // One process: nothing to average. A c10d build all-reduces every gradient here and divides
    // by worldSize.
}

// --- Trainer ------------------------------------------------------------------------------------

std::string checkpointPath(const std::string& runDir)
{
    return (fs::path(runDir) / "checkpoint.pt").string();
}

ModelKind resolveModelKind(const TrainConfig& config)
{
    if (config.kind != ModelKind::Auto) {
        return config.kind;
    }
    return data::isGaussianSpec(config.data.spec) ? ModelKind::Gaussians : ModelKind::Clouds;
}

struct Trainer::OptimState
{
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    std::shared_ptr<torch::nn::Module> ema;
};

Trainer::Trainer()
    : m_optim(std::make_unique<OptimState>())
{
}

Trainer::Trainer(TrainConfig config, std::string runDir)
    : m_config(std::move(config))
    , m_runDir(std::move(runDir))
    , m_optim(std::make_unique<OptimState>())
{
    m_config.validate();
    if (!m_runDir.empty()) {
        std::error_code ec;
        if (fs::exists(checkpointPath(m_runDir), ec)) {
            throw ConfigError("run folder '" + m_runDir
                + "' already holds a checkpoint: resume it (--resume) or choose another folder");
        }
    }
    setUp(false);
}

Trainer::~Trainer() = default;

void Trainer::setUp(bool resuming)
{
    m_group = ProcessGroup::fromEnvironment();
    initThreads(m_config.train.threads);
    const ModelKind kind = resolveModelKind(m_config);
    m_task = kind == ModelKind::Gaussians ? makeGaussianTask(m_config, m_group)
                                          : makeCloudTask(m_config, m_group);
    auto net = m_task->net();
    auto& opt = *m_optim;
    if (m_config.optim.emaDecay > 0) {
        opt.ema = m_task->cloneNet();
        for (auto& p : opt.ema->parameters()) {
            p.set_requires_grad(false);
        }
    }
    const auto& o = m_config.optim;
    if (o.optimizer == OptimizerKind::Adam) {
        opt.optimizer = std::make_unique<torch::optim::Adam>(net->parameters(),
            torch::optim::AdamOptions(o.lr).betas({ o.beta1, o.beta2 }).weight_decay(o.weightDecay));
    } else {
        opt.optimizer = std::make_unique<torch::optim::AdamW>(net->parameters(),
            torch::optim::AdamWOptions(o.lr).betas({ o.beta1, o.beta2 }).weight_decay(o.weightDecay));
    }
    if (!m_runDir.empty() && m_group.isWriter()) {
        std::error_code ec;
        fs::create_directories(m_runDir, ec);
        if (ec) {
            throw Error("cannot create run folder '" + m_runDir + "': " + ec.message());
        }
        writeFileAtomically((fs::path(m_runDir) / "config.json").string(), m_config.toJsonString() + "\n");
        const std::string log = (fs::path(m_runDir) / "log.csv").string();
        if (!resuming || !fs::exists(log, ec)) {
            writeFileAtomically(log, "step,loss,lr,seconds\n");
        }
    }
}

std::unique_ptr<Trainer> Trainer::resume(const std::string& runDir, std::int64_t steps, const std::string& device)
{
    const std::string file = checkpointPath(runDir);
    torch::serialize::InputArchive probe;
    openArchive(probe, file, c10::Device(c10::kCPU));
    TrainConfig config = configFromArchive(probe, file);
    if (steps > 0) {
        config.train.steps = steps;
    }
    if (!device.empty()) {
        config.train.device = device;
    }
    std::unique_ptr<Trainer> t(new Trainer());
    t->m_config = config;
    t->m_runDir = runDir;
    t->setUp(true);
    const c10::Device dev = t->m_task->device();
    torch::serialize::InputArchive a;
    openArchive(a, file, dev);
    auto& opt = *t->m_optim;
    loadModule(a, "model", *t->m_task->net(), file);
    if (opt.ema) {
        c10::IValue dummy;
        torch::serialize::InputArchive sub;
        if (a.try_read("ema", sub)) {
            loadModule(a, "ema", *opt.ema, file);
        } else {
            // A run that had no EMA continues with EMA starting from the current weights.
            auto src = t->m_task->net()->parameters();
            auto dst = opt.ema->parameters();
            torch::NoGradGuard ng;
            for (size_t i = 0; i < src.size(); ++i) {
                dst[i].copy_(src[i]);
            }
        }
    }
    {
        torch::serialize::InputArchive sub;
        if (!a.try_read("optimizer", sub)) {
            throw CheckpointError("checkpoint '" + file + "': missing optimiser state");
        }
        try {
            opt.optimizer->load(sub);
        } catch (const c10::Error& e) {
            std::string what = e.what_without_backtrace();
            throw CheckpointError("checkpoint '" + file + "': optimiser state does not fit ("
                + what.substr(0, what.find('\n')) + ")");
        }
    }
    const std::int64_t step = readInt(a, "step", file);
    t->m_step = step;
    c10::IValue secs;
    if (a.try_read("trained_seconds", secs) && secs.isDouble()) {
        t->m_trainedSeconds = secs.toDouble();
    }
    // Keep the log rows up to the checkpoint's step (a crash may have logged further).
    const std::string log = (fs::path(runDir) / "log.csv").string();
    std::ifstream in(log);
    if (in) {
        std::string line;
        std::string kept;
        bool header = true;
        while (std::getline(in, line)) {
            if (header) {
                kept += line + "\n";
                header = false;
                continue;
            }
            const long long s = std::atoll(line.c_str());
            if (s <= step) {
                kept += line + "\n";
            }
        }
        in.close();
        writeFileAtomically(log, kept);
    }
    return t;
}

ModelKind Trainer::kind() const
{
    return m_task->kind();
}

std::int64_t Trainer::parameterCount() const
{
    std::int64_t n = 0;
    for (const auto& p : m_task->net()->parameters()) {
        n += p.numel();
    }
    return n;
}

const std::vector<std::string>& Trainer::labelNames() const
{
    return m_task->labelNames();
}

const data::PointCloudDataset& Trainer::trainClouds() const
{
    return m_task->trainClouds();
}

const data::PointCloudDataset& Trainer::testClouds() const
{
    return m_task->testClouds();
}

void Trainer::pause()
{
    m_paused = true;
}

void Trainer::resume()
{
    {
        std::lock_guard<std::mutex> lock(m_pauseMutex);
        m_paused = false;
    }
    m_pauseCv.notify_all();
}

void Trainer::stop()
{
    {
        std::lock_guard<std::mutex> lock(m_pauseMutex);
        m_stop = true;
    }
    m_pauseCv.notify_all();
}

std::string Trainer::saveCheckpoint()
{
    WFM_CHECK(!m_runDir.empty(), "saveCheckpoint: this trainer has no run folder");
    auto& opt = *m_optim;
    torch::serialize::OutputArchive a;
    writeString(a, "format", kCheckpointFormat);
    writeString(a, "config", m_config.toJsonString());
    writeString(a, "kind", modelKindName(m_task->kind()));
    a.write("step", c10::IValue(static_cast<int64_t>(m_step.load())));
    a.write("trained_seconds", c10::IValue(m_trainedSeconds));
    {
        torch::serialize::OutputArchive m;
        m_task->net()->save(m);
        a.write("model", m);
    }
    if (opt.ema) {
        torch::serialize::OutputArchive e;
        opt.ema->save(e);
        a.write("ema", e);
    }
    {
        torch::serialize::OutputArchive o;
        opt.optimizer->save(o);
        a.write("optimizer", o);
    }
    m_task->saveState(a);
    std::ostringstream os;
    a.save_to(os);
    const std::string path = checkpointPath(m_runDir);
    writeFileAtomically(path, os.str());
    m_lastCheckpoint = path;
    return path;
}

void Trainer::writeLogLine(std::int64_t step, double loss, double lr, double seconds)
{
    if (m_runDir.empty() || !m_group.isWriter()) {
        return;
    }
    std::ofstream out((fs::path(m_runDir) / "log.csv").string(), std::ios::app);
    out << step << ',' << std::setprecision(9) << loss << ',' << lr << ',' << std::setprecision(6)
        << seconds << '\n';
}

std::shared_ptr<CloudGenerator> Trainer::cloudGenerator() const
{
    auto& opt = *m_optim;
    return m_task->cloudGenerator(opt.ema, m_step.load());
}

std::shared_ptr<GaussianGenerator> Trainer::gaussianGenerator() const
{
    return m_task->gaussianGenerator(m_optim->ema, m_step.load());
}

std::int64_t Trainer::trainCount() const
{
    return m_task->trainCount();
}

std::int64_t Trainer::testCount() const
{
    return m_task->testCount();
}

TrainResult Trainer::run(const ProgressCallback& progress)
{
    auto& opt = *m_optim;
    auto net = m_task->net();
    auto params = net->parameters();
    std::vector<torch::Tensor> emaParams = opt.ema ? opt.ema->parameters() : std::vector<torch::Tensor>();
    const std::int64_t total = m_config.train.steps;
    if (m_config.train.mixedPrecision && !mixedPrecisionSupported(m_task->device())) {
        log::warn("mixed precision needs CUDA or a CPU with bfloat16 units (AMX, AVX-512 BF16); "
                  "training in float32");
    }
    TrainResult result;
    TrainProgress report;
    report.totalSteps = total;
    double smoothed = std::numeric_limits<double>::quiet_NaN();
    double stepTimeAvg = 0.0;
    const double sessionStart = now();
    double pausedTime = 0.0;
    const double trainedBefore = m_trainedSeconds;
    bool stopped = false;

    auto emit = [&](std::int64_t step, double loss, double lr, const StepTimings& tm) {
        report.step = step;
        report.loss = loss;
        report.smoothedLoss = smoothed;
        report.lr = lr;
        report.itemsPerSecond = stepTimeAvg > 0 ? m_task->itemsPerStep() / stepTimeAvg : 0.0;
        report.elapsedSeconds = now() - sessionStart - pausedTime;
        report.etaSeconds = stepTimeAvg * static_cast<double>(total - step);
        report.timings = tm;
        report.paused = m_paused.load();
        if (progress) {
            progress(report);
        }
    };

    std::int64_t s = m_step.load();
    double lastLoss = 0.0;
    double lastLr = 0.0;
    StepTimings lastTimings;
    for (; s < total; ++s) {
        if (m_paused.load()) {
            const double p0 = now();
            emit(s, lastLoss, lastLr, lastTimings);
            std::unique_lock<std::mutex> lock(m_pauseMutex);
            m_pauseCv.wait(lock, [&] { return !m_paused.load() || m_stop.load(); });
            pausedTime += now() - p0;
        }
        if (m_stop.load()) {
            stopped = true;
            break;
        }
        const double t0 = now();
        const double lr = learningRate(m_config.optim, s, total);
        for (auto& group : opt.optimizer->param_groups()) {
            if (m_config.optim.optimizer == OptimizerKind::Adam) {
                static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
            } else {
                static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
            }
        }
        const auto stepId = static_cast<std::uint64_t>(s);
        auto gen = at::make_generator<at::CPUGeneratorImpl>(mixSeed(m_config.train.seed, 2 * stepId + 1));
        torch::manual_seed(mixSeed(m_config.train.seed, 2 * stepId + 2));
        net->train();
        opt.optimizer->zero_grad();
        StepTimings tm;
        torch::Tensor loss = m_task->loss(s, gen, &tm);
        const double tb = now();
        loss.backward();
        m_group.synchronizeGradients(params);
        if (m_config.optim.gradClip > 0) {
            torch::nn::utils::clip_grad_norm_(params, m_config.optim.gradClip);
        }
        opt.optimizer->step();
        if (opt.ema) {
            torch::NoGradGuard ng;
            const double d = std::min(m_config.optim.emaDecay, (1.0 + s) / (10.0 + s));
            for (size_t i = 0; i < params.size(); ++i) {
                emaParams[i].mul_(d).add_(params[i].detach(), 1.0 - d);
            }
        }
        const double value = loss.item<double>();
        const double t1 = now();
        tm.model += t1 - tb;
        tm.total = t1 - t0;
        if (!std::isfinite(value)) {
            throw Error("training diverged: the loss is " + std::to_string(value) + " at step "
                + std::to_string(s + 1) + " (lower optim.lr or set optim.grad_clip)");
        }
        m_step = s + 1;
        smoothed = std::isnan(smoothed) ? value : 0.98 * smoothed + 0.02 * value;
        stepTimeAvg = stepTimeAvg == 0 ? tm.total : 0.9 * stepTimeAvg + 0.1 * tm.total;
        lastLoss = value;
        lastLr = lr;
        lastTimings = tm;
        m_trainedSeconds = trainedBefore + (t1 - sessionStart - pausedTime);
        if ((s + 1) % m_config.train.logEvery == 0 || s + 1 == total) {
            writeLogLine(s + 1, value, lr, m_trainedSeconds);
            emit(s + 1, value, lr, tm);
        }
        if (!m_runDir.empty() && m_group.isWriter() && m_config.train.checkpointEvery > 0
            && (s + 1) % m_config.train.checkpointEvery == 0 && s + 1 < total) {
            saveCheckpoint();
        }
    }
    if (!m_runDir.empty() && m_group.isWriter()) {
        result.checkpoint = saveCheckpoint();
    }
    result.step = m_step.load();
    result.completed = result.step >= total;
    result.stopped = stopped;
    result.lastLoss = lastLoss;
    result.seconds = now() - sessionStart - pausedTime;
    if (stopped) {
        emit(result.step, lastLoss, lastLr, lastTimings);
    }
    return result;
}

// --- Loading -----------------------------------------------------------------------------------

TrainConfig readCheckpointConfig(const std::string& runDirOrFile)
{
    const std::string file = resolveCheckpointFile(runDirOrFile);
    torch::serialize::InputArchive a;
    openArchive(a, file, c10::Device(c10::kCPU));
    TrainConfig c = configFromArchive(a, file);
    c.kind = parseModelKind(readString(a, "kind", file));
    return c;
}

GeneratorCheckpoint openGeneratorCheckpoint(
    const std::string& runDirOrFile, ModelKind expected, const std::string& device)
{
    GeneratorCheckpoint c;
    c.file = resolveCheckpointFile(runDirOrFile);
    torch::serialize::InputArchive probe;
    openArchive(probe, c.file, c10::Device(c10::kCPU));
    c.config = configFromArchive(probe, c.file);
    const ModelKind kind = parseModelKind(readString(probe, "kind", c.file));
    if (kind != expected) {
        throw ConfigError("checkpoint '" + c.file + "' holds a " + modelKindName(kind) + " model, not "
            + (expected == ModelKind::Gaussians ? "Gaussians" : "point clouds"));
    }
    c.device = resolveDevice(device.empty() ? c.config.train.device : device);
    if (c.device.is_cpu()) {
        c.archive = std::move(probe);
    } else {
        openArchive(c.archive, c.file, c.device);
    }
    return c;
}

std::vector<std::string> GeneratorCheckpoint::labelNames()
{
    std::vector<std::string> names;
    std::istringstream is(readString(archive, "label_names", file));
    std::string line;
    while (std::getline(is, line)) {
        names.push_back(line);
    }
    return names;
}

bool GeneratorCheckpoint::loadWeights(torch::nn::Module& net, torch::nn::Module& ema)
{
    net.to(device);
    loadModule(archive, "model", net, file);
    torch::serialize::InputArchive sub;
    if (!archive.try_read("ema", sub)) {
        return false;
    }
    ema.to(device);
    loadModule(archive, "ema", ema, file);
    return true;
}

std::shared_ptr<CloudGenerator> loadCloudGenerator(const std::string& runDirOrFile, const std::string& device)
{
    GeneratorCheckpoint c = openGeneratorCheckpoint(runDirOrFile, ModelKind::Clouds, device);
    const TrainConfig& config = c.config;
    model::SetTransformer net(config.model);
    model::SetTransformer ema(config.model);
    if (!c.loadWeights(*net, *ema)) {
        ema = model::SetTransformer(nullptr);
    }
    data::Normalization norm;
    data::SourceNoise noise;
    try {
        norm = data::Normalization::fromJsonString(readString(c.archive, "normalization", c.file));
        const std::string noiseJson = readString(c.archive, "noise", c.file);
        if (config.source.kind == data::NoiseKind::Clouds) {
            auto sources = norm.apply(data::loadPointClouds(config.source.spec));
            noise = data::SourceNoise::fromClouds(sources, data::CloudPairing::ByIndex);
        } else {
            noise = data::SourceNoise::fromJsonString(noiseJson);
        }
    } catch (const ConfigError& e) {
        throw CheckpointError("checkpoint '" + c.file + "': " + e.what());
    }
    torch::Tensor sizes;
    if (!c.archive.try_read("train_sizes", sizes)) {
        throw CheckpointError("checkpoint '" + c.file + "': missing entry 'train_sizes'");
    }
    return std::make_shared<CloudGenerator>(config, net, ema, norm, noise, sizes.to(torch::kCPU),
        c.labelNames(), readInt(c.archive, "step", c.file));
}

} // namespace wfm::flow
