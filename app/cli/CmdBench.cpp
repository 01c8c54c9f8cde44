// wfm bench: performance figures as JSON (machine, library versions and sizes included).
//   wfm bench ot        fused kernels and the tensor-operation reference side by side
//   wfm bench ot --scaling   time and peak memory against N and B (one child process per size)

#include "Cli.h"

#include "wfm/AtomicFile.h"
#include "wfm/BuildInfo.h"
#include "wfm/Error.h"
#include "wfm/Platform.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/PointCloudDataset.h"
#include "wfm/data/SourceNoise.h"
#include "wfm/flow/TrainStep.h"
#include "wfm/flow/Trainer.h"
#include "wfm/model/SetTransformer.h"
#include "wfm/ot/Sinkhorn.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <sstream>
#include <unistd.h>

namespace wfm::cli {
namespace {

struct BenchArgs
{
    std::string what;
    int batch = 4;
    int points = 1024;
    int dim = 3;
    int iters = 200;
    double eps = 0.002;
    int repeat = 3;
    std::string device = "auto";
    std::string path = "both";
    bool scaling = false;
    std::string scalingPoints = "256,512,1024,2048,4096,8192,16384";
    std::string scalingBatches = "1,4";
    int scalingIters = 20;
    long long tensorLimitMb = 8192;
    std::string out;
    // train-step
    int width = 128;
    int blocks = 4;
    int heads = 4;
    int mlp = 512;
    int steps = 5;
    int warmup = 1;
    std::string minibatch = "chamfer";
    std::string map = "rounded";
    std::string data;
    bool mixed = false;
    // generate
    std::string run;
    int num = 64;
    int genSteps = 100;
    int genPoints = 0;
    std::string integrator = "midpoint";
};

nlohmann::json environment(const c10::Device& device)
{
    nlohmann::json env;
    env["device"] = deviceName(device);
    env["cpu"] = cpuModelName();
    env["threads"] = at::get_num_threads();
    env["torch"] = torchVersionString();
    env["wfm"] = WFM_VERSION_STRING;
    env["compiler"] = WFM_CXX_COMPILER;
    env["simd"] = ot::fusedCpuSimdLevel();
    env["blas"] = blasKernelDescription();
    return env;
}

void sync(const c10::Device& device)
{
    if (device.is_cuda()) {
        torch::cuda::synchronize();
    }
}

/// Times ot::sinkhorn (the solver time `wfm ot` reports): best and median of `repeat` runs.
nlohmann::json timeSolver(const torch::Tensor& x, const torch::Tensor& y, ot::SinkhornOptions opt,
    int repeat, const c10::Device& device)
{
    const long long rssBefore = currentRssBytes();
    std::vector<double> times;
    ot::SinkhornResult r;
    // One untimed warm-up (allocator, CUDA context, thread pool).
    {
        auto w = opt;
        w.maxIterations = std::min(2, opt.maxIterations);
        ot::sinkhorn(x, y, torch::Tensor(), torch::Tensor(), w);
        sync(device);
    }
    for (int k = 0; k < repeat; ++k) {
        sync(device);
        const double t0 = nowSeconds();
        r = ot::sinkhorn(x, y, torch::Tensor(), torch::Tensor(), opt);
        sync(device);
        times.push_back(nowSeconds() - t0);
    }
    // The same call with no iteration: eps (largest cost), set-up, cost and marginal passes.
    std::vector<double> fixed;
    for (int k = 0; k < repeat; ++k) {
        auto z = opt;
        z.maxIterations = 0;
        z.tolerance = 0;
        sync(device);
        const double t0 = nowSeconds();
        ot::sinkhorn(x, y, torch::Tensor(), torch::Tensor(), z);
        sync(device);
        fixed.push_back(nowSeconds() - t0);
    }
    std::sort(times.begin(), times.end());
    std::sort(fixed.begin(), fixed.end());
    nlohmann::json j;
    j["seconds_without_iterations"] = fixed.front();
    j["seconds"] = times.front();
    j["seconds_median"] = times[times.size() / 2];
    j["seconds_all"] = times;
    j["backend"] = r.fused ? "fused" : "tensor";
    const double pairIters = static_cast<double>(x.size(0)) * opt.maxIterations;
    j["pair_iterations_per_s"] = pairIters / times.front();
    j["entries_per_s"] = pairIters * 2.0 * static_cast<double>(x.size(1)) * static_cast<double>(y.size(1))
        / times.front();
    j["cost"] = tensorToJson(r.cost.cpu());
    j["marginal_error_max"] = r.marginalError.max().item<double>();
    j["peak_rss_mb"] = static_cast<double>(peakRssBytes()) / 1048576.0;
    j["rss_before_mb"] = static_cast<double>(rssBefore) / 1048576.0;
    j["extra_peak_mb"] = static_cast<double>(peakRssBytes() - rssBefore) / 1048576.0;
    return j;
}

std::vector<int> parseList(const std::string& s)
{
    std::vector<int> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        try {
            v.push_back(std::stoi(item));
        } catch (const std::exception&) {
            throw UsageError("bad number '" + item + "' in list '" + s + "'");
        }
    }
    return v;
}

std::string selfExe()
{
    std::array<char, 4096> buf {};
    const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    return n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : std::string("wfm");
}

/// Runs one size in a child process so that its peak memory is its own.
nlohmann::json runChild(const BenchArgs& a, int B, int N, const std::string& path)
{
    std::ostringstream cmd;
    cmd << "'" << selfExe() << "' bench ot --batch " << B << " --points " << N << " --dim " << a.dim
        << " --iters " << a.scalingIters << " --eps " << a.eps << " --repeat 1 --device " << a.device
        << " --path " << path << " 2>&1";
    FILE* pipe = popen(cmd.str().c_str(), "r");
    if (!pipe) {
        throw Error("bench: cannot start " + cmd.str());
    }
    std::string output;
    std::array<char, 4096> buf {};
    while (fgets(buf.data(), static_cast<int>(buf.size()), pipe)) {
        output += buf.data();
    }
    const int rc = pclose(pipe);
    const auto brace = output.rfind("\n{");
    const auto start = output.rfind('{', 0) == 0 ? 0 : (brace == std::string::npos ? std::string::npos : brace + 1);
    if (rc != 0 || start == std::string::npos) {
        nlohmann::json fail;
        fail["error"] = output.substr(0, 400);
        return fail;
    }
    return nlohmann::json::parse(output.substr(start));
}

int runOt(const BenchArgs& a)
{
    const auto device = parseDevice(a.device);
    if (a.path != "both" && a.path != "fused" && a.path != "tensor") {
        throw UsageError("--path must be both, fused or tensor");
    }
    nlohmann::json out;
    out["benchmark"] = a.scaling ? "ot-scaling" : "ot";
    out["environment"] = environment(device);

    if (a.scaling) {
        nlohmann::json rows = nlohmann::json::array();
        for (int B : parseList(a.scalingBatches)) {
            for (int N : parseList(a.scalingPoints)) {
                nlohmann::json row;
                row["batch"] = B;
                row["points"] = N;
                row["iters"] = a.scalingIters;
                auto fusedRun = runChild(a, B, N, "fused");
                if (fusedRun.contains("fused")) {
                    auto& f = fusedRun["fused"];
                    row["fused_seconds_per_iter"] = f["seconds"].get<double>() / a.scalingIters;
                    row["fused_extra_peak_mb"] = f["extra_peak_mb"];
                } else {
                    row["fused_error"] = fusedRun.value("error", std::string("?"));
                }
                // The tensor path keeps a few [B,N,N] arrays: skip it where it cannot fit.
                const double tensorMb = 5.0 * B * static_cast<double>(N) * N * 4.0 / 1048576.0;
                if (tensorMb <= static_cast<double>(a.tensorLimitMb)) {
                    auto tensorRun = runChild(a, B, N, "tensor");
                    if (tensorRun.contains("tensor")) {
                        auto& t = tensorRun["tensor"];
                        row["tensor_seconds_per_iter"] = t["seconds"].get<double>() / a.scalingIters;
                        row["tensor_extra_peak_mb"] = t["extra_peak_mb"];
                    } else {
                        row["tensor_error"] = tensorRun.value("error", std::string("?"));
                    }
                } else {
                    row["tensor_skipped"] = "needs about " + std::to_string(static_cast<long long>(tensorMb)) + " MB";
                }
                rows.push_back(row);
                std::fprintf(stderr, "bench ot --scaling: B=%d N=%d done\n", B, N);
            }
        }
        out["rows"] = rows;
    } else {
        auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
        torch::manual_seed(0);
        auto x = torch::randn({ a.batch, a.points, a.dim }).to(opts);
        auto y = torch::randn({ a.batch, a.points, a.dim }).to(opts);
        out["sizes"] = { { "batch", a.batch }, { "n", a.points }, { "m", a.points }, { "d", a.dim },
            { "iters", a.iters }, { "eps", a.eps }, { "eps_mode", "relative" }, { "dtype", "float32" } };
        ot::SinkhornOptions opt;
        opt.eps = a.eps;
        opt.maxIterations = a.iters;
        if (a.path == "both" || a.path == "fused") {
            opt.backend = ot::SinkhornBackend::Fused;
            out["fused"] = timeSolver(x, y, opt, a.repeat, device);
        }
        if (a.path == "both" || a.path == "tensor") {
            opt.backend = ot::SinkhornBackend::Tensor;
            out["tensor"] = timeSolver(x, y, opt, std::max(1, a.path == "both" ? 1 : a.repeat), device);
        }
        if (out.contains("fused") && out.contains("tensor")) {
            out["speedup"] = out["tensor"]["seconds"].get<double>() / out["fused"]["seconds"].get<double>();
            auto cf = out["fused"]["cost"], ct = out["tensor"]["cost"];
            double worst = 0;
            for (size_t k = 0; k < cf.size(); ++k) {
                const double f = cf[k].get<double>(), t = ct[k].get<double>();
                worst = std::max(worst, std::abs(f - t) / std::max(1e-30, std::abs(t)));
            }
            out["cost_max_relative_difference"] = worst;
        }
    }
    printJson(out);
    if (!a.out.empty()) {
        FILE* f = std::fopen(a.out.c_str(), "w");
        if (!f) {
            throw Error("bench: cannot write " + a.out);
        }
        const std::string s = out.dump(2) + "\n";
        std::fwrite(s.data(), 1, s.size(), f);
        std::fclose(f);
    }
    return 0;
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

/// One point-cloud flow-matching training step (noise, minibatch OT, inner OT + map, set
/// transformer forward/backward, Adam) at the given size, timed part by part.
int runTrainStep(const BenchArgs& a)
{
    const auto device = parseDevice(a.device);
    std::string spec = a.data;
    if (spec.empty()) {
        const int lo = std::max(1, a.points / 2);
        if (a.dim == 2) {
            spec = "builtin:rings?count=256&min=" + std::to_string(lo) + "&max=" + std::to_string(a.points);
        } else if (a.dim == 3) {
            spec = "builtin:shapes3d?count=256&min=" + std::to_string(lo) + "&max=" + std::to_string(a.points);
        } else {
            throw UsageError("bench train-step: --dim must be 2 or 3 for the built-in data (or give --data)");
        }
    }
    auto raw = data::loadPointClouds(spec);
    auto norm = data::Normalization::fit(raw, data::Normalization::Kind::GlobalMinMax);
    auto ds = norm.apply(raw);
    auto noise = data::SourceNoise::fit(data::NoiseKind::CholNormal, ds);
    data::BatchSampler sampler(ds, a.batch, 0);

    model::SetTransformerOptions mo;
    mo.setDim(ds.dim()).setWidth(a.width).setBlocks(a.blocks).setHeads(a.heads).setMlpWidth(a.mlp);
    torch::manual_seed(0);
    model::SetTransformer net(mo);
    net->to(device);
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(2e-4));

    flow::StepOptions so;
    so.minibatch = a.minibatch == "none" ? flow::MinibatchCost::None : flow::MinibatchCost::Chamfer;
    if (a.minibatch != "none" && a.minibatch != "chamfer") {
        throw UsageError("bench train-step: --minibatch must be chamfer or none");
    }
    so.innerOt.setEps(a.eps).setIterations(a.iters);
    so.map = ot::parseMapKind(a.map);
    so.mixedPrecision = a.mixed;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(0);

    std::vector<double> total, mb, inner, model, losses;
    const long long rssBefore = currentRssBytes();
    for (int s = 0; s < a.warmup + a.steps; ++s) {
        auto batch = sampler.next();
        flow::StepBatch sb;
        sb.weights = batch.weights.to(device);
        sb.target = batch.points.to(device);
        // Noise on every slot (as the reference), so minibatch re-pairing can move it freely.
        sb.source = noise.sample(torch::ones_like(batch.weights), batch.indices, gen).to(device);
        flow::StepTimings tm;
        const double loss = flow::trainStep(net, opt, sb, so, gen, &tm);
        if (s >= a.warmup) {
            total.push_back(tm.total);
            mb.push_back(tm.minibatchOt);
            inner.push_back(tm.innerOt);
            model.push_back(tm.model);
            losses.push_back(loss);
        }
    }
    nlohmann::json out;
    out["benchmark"] = "train-step";
    out["environment"] = environment(device);
    out["sizes"] = { { "batch", a.batch }, { "points_max", a.points }, { "dim", ds.dim() },
        { "width", a.width }, { "blocks", a.blocks }, { "heads", a.heads }, { "mlp", a.mlp },
        { "iters", a.iters }, { "eps", a.eps }, { "minibatch", a.minibatch }, { "map", a.map }, { "mixed_precision", so.mixedPrecision && flow::mixedPrecisionSupported(device) },
        { "data", spec }, { "parameters", net->parameterCount() } };
    out["step_seconds"] = median(total);
    out["step_seconds_all"] = total;
    out["minibatch_ot_seconds"] = median(mb);
    out["inner_ot_seconds"] = median(inner);
    out["model_seconds"] = median(model);
    const double step = median(total);
    out["ot_share"] = step > 0 ? (median(mb) + median(inner)) / step : 0.0;
    out["losses"] = losses;
    out["peak_rss_mb"] = static_cast<double>(peakRssBytes()) / 1048576.0;
    out["extra_peak_mb"] = static_cast<double>(peakRssBytes() - rssBefore) / 1048576.0;
    printJson(out);
    if (!a.out.empty()) {
        FILE* f = std::fopen(a.out.c_str(), "w");
        if (!f) {
            throw Error("bench: cannot write " + a.out);
        }
        const std::string text = out.dump(2) + "\n";
        std::fwrite(text.data(), 1, text.size(), f);
        std::fclose(f);
    }
    return 0;
}

int runGenerateBench(const BenchArgs& a)
{
    if (a.run.empty()) {
        throw UsageError("bench generate: --run DIR is required");
    }
    if (a.num < 1 || a.genSteps < 1 || a.repeat < 1) {
        throw UsageError("bench generate: --num, --gen-steps and --repeat must be positive");
    }
    const auto kind = flow::readCheckpointConfig(a.run).kind;
    flow::GenerateRequest req;
    req.count = a.num;
    req.steps = a.genSteps;
    req.integrator = flow::parseIntegrator(a.integrator);
    req.points = a.genPoints;
    req.mixedPrecision = a.mixed;
    std::vector<double> seconds;
    nlohmann::json out;
    double guidance = 1.0;
    bool mixed = false;
    const std::string dev = a.device == "auto" ? "" : a.device;
    if (kind == flow::ModelKind::Gaussians) {
        auto gen = flow::loadGaussianGenerator(a.run, dev);
        guidance = gen->config().generate.guidance;
        for (int r = 0; r < a.repeat; ++r) {
            req.seed = static_cast<std::uint64_t>(r);
            seconds.push_back(gen->generate(req).seconds);
        }
        out["environment"] = environment(gen->device());
        out["kind"] = "gaussians";
    } else {
        auto gen = flow::loadCloudGenerator(a.run, dev);
        guidance = gen->config().generate.guidance;
        mixed = a.mixed && flow::mixedPrecisionSupported(gen->device());
        int64_t pointsUsed = 0;
        for (int r = 0; r < a.repeat; ++r) {
            req.seed = static_cast<std::uint64_t>(r);
            auto g = gen->generate(req);
            seconds.push_back(g.seconds);
            pointsUsed = (g.weights > 0).sum().item<int64_t>();
        }
        out["environment"] = environment(gen->device());
        out["kind"] = "clouds";
        out["mean_points_per_cloud"] = static_cast<double>(pointsUsed) / a.num;
    }
    out["benchmark"] = "generate";
    out["run"] = a.run;
    out["count"] = a.num;
    out["steps"] = a.genSteps;
    out["integrator"] = a.integrator;
    out["guidance"] = guidance;
    out["mixed_precision"] = mixed;
    out["velocity_evaluations"] = a.genSteps * flow::evaluationsPerStep(*req.integrator);
    out["seconds_all"] = seconds;
    const double best = *std::min_element(seconds.begin(), seconds.end());
    out["seconds"] = median(seconds);
    out["clouds_per_second"] = a.num / median(seconds);
    out["best_clouds_per_second"] = a.num / best;
    printJson(out);
    if (!a.out.empty()) {
        writeFileAtomically(a.out, out.dump(2) + "\n");
    }
    return 0;
}

} // namespace

Runner addBenchCommand(CLI::App& app)
{
    auto a = std::make_shared<BenchArgs>();
    auto* cmd = app.add_subcommand("bench", "Benchmarks printed as JSON: ot, train-step, generate");
    cmd->add_option("what", a->what, "ot, train-step or generate")->required();
    cmd->add_option("--batch", a->batch, "Pairs per batch")->capture_default_str();
    cmd->add_option("--points", a->points, "Points per cloud (N = M)")->capture_default_str();
    cmd->add_option("--dim", a->dim, "Dimension")->capture_default_str();
    cmd->add_option("--iters", a->iters, "Sinkhorn iterations")->capture_default_str();
    cmd->add_option("--eps", a->eps, "Relative eps")->capture_default_str();
    cmd->add_option("--repeat", a->repeat, "Timed repetitions (best and median reported)")->capture_default_str();
    cmd->add_option("--device", a->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
    cmd->add_option("--path", a->path, "both, fused or tensor")->capture_default_str();
    cmd->add_flag("--scaling", a->scaling, "Time and peak memory against N and B (child process per size)");
    cmd->add_option("--scaling-points", a->scalingPoints, "N values for --scaling")->capture_default_str();
    cmd->add_option("--scaling-batches", a->scalingBatches, "B values for --scaling")->capture_default_str();
    cmd->add_option("--scaling-iters", a->scalingIters, "Iterations per size for --scaling")->capture_default_str();
    cmd->add_option("--tensor-limit-mb", a->tensorLimitMb, "Skip the tensor path above this estimated memory")->capture_default_str();
    cmd->add_option("--out", a->out, "Also write the JSON (indented) to this file");
    cmd->add_option("--width", a->width, "train-step: model width")->capture_default_str();
    cmd->add_option("--blocks", a->blocks, "train-step: transformer blocks")->capture_default_str();
    cmd->add_option("--heads", a->heads, "train-step: attention heads")->capture_default_str();
    cmd->add_option("--mlp", a->mlp, "train-step: MLP width")->capture_default_str();
    cmd->add_option("--steps", a->steps, "train-step: timed steps (median reported)")->capture_default_str();
    cmd->add_option("--warmup", a->warmup, "train-step: untimed steps first")->capture_default_str();
    cmd->add_option("--minibatch", a->minibatch, "train-step: chamfer or none")->capture_default_str();
    cmd->add_option("--map", a->map, "train-step: rounded, argmax, sampled or barycentric")->capture_default_str();
    cmd->add_flag("--mixed", a->mixed, "train-step, generate: bfloat16 autocast for the model (CUDA, or CPUs with AMX / AVX-512 BF16)");
    cmd->add_option("--data", a->data, "train-step: dataset SPEC (default: built-in clouds of --points/2 to --points points)");
    cmd->add_option("--run", a->run, "generate: run folder");
    cmd->add_option("--num", a->num, "generate: samples per repetition")->capture_default_str();
    cmd->add_option("--gen-steps", a->genSteps, "generate: integration steps")->capture_default_str();
    cmd->add_option("--integrator", a->integrator, "generate: euler, midpoint or heun")->capture_default_str();
    cmd->add_option("--gen-points", a->genPoints, "generate: points per cloud (0 = sizes drawn from the training data)")->capture_default_str();
    return [a]() {
        if (a->what == "train-step") {
            return runTrainStep(*a);
        }
        if (a->what == "generate") {
            return runGenerateBench(*a);
        }
        if (a->what != "ot") {
            throw UsageError("bench: unknown benchmark '" + a->what + "' (available: ot, train-step, generate)");
        }
        if (a->batch < 1 || a->points < 1 || a->dim < 1 || a->iters < 1 || a->repeat < 1) {
            throw UsageError("bench: sizes, iterations and repeat must be positive");
        }
        return runOt(*a);
    };
}

} // namespace wfm::cli
