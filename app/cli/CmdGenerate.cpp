// wfm generate: samples from a trained run; wfm evaluate: sample quality against held-out data.

#include "Cli.h"

#include "wfm/AtomicFile.h"
#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Npy.h"
#include "wfm/data/GaussianDataset.h"
#include "wfm/flow/Evaluate.h"
#include "wfm/flow/GaussianGenerator.h"
#include "wfm/flow/Generate.h"
#include "wfm/flow/TrainStep.h"
#include "wfm/flow/Trainer.h"
#include "wfm/metrics/SetMetrics.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>

namespace wfm::cli {
namespace {

struct GenerateArgs
{
    std::string run;
    std::string out;
    std::int64_t num = 16;
    int steps = 0;
    std::string integrator;
    std::string label;
    double guidance = std::numeric_limits<double>::quiet_NaN();
    std::int64_t points = 0;
    bool trajectory = false;
    std::uint64_t seed = 0;
    std::string device;
    bool raw = false;
    bool mixed = false;
    std::string cond;
};

flow::GenerateRequest makeRequest(const GenerateArgs& a, const std::vector<std::string>& labelNames)
{
    flow::GenerateRequest r;
    r.count = a.num;
    r.points = a.points;
    r.steps = a.steps;
    if (!a.integrator.empty()) {
        r.integrator = flow::parseIntegrator(a.integrator);
    }
    r.guidance = a.guidance;
    r.trajectory = a.trajectory;
    r.seed = a.seed;
    r.ema = !a.raw;
    r.mixedPrecision = a.mixed;
    if (a.label == "none" || a.label == "null") {
        r.label = flow::GenerateRequest::kNullLabel;
    } else if (a.label.empty() || a.label == "random") {
        r.label = flow::GenerateRequest::kRandomLabel;
    } else {
        r.label = flow::resolveLabel(a.label, labelNames);
    }
    return r;
}

int runGenerate(const GenerateArgs& a)
{
    if (a.num < 1) {
        throw UsageError("generate: --num must be >= 1");
    }
    if (a.points < 0 || a.steps < 0) {
        throw UsageError("generate: --points and --steps must be >= 0");
    }
    if (flow::readCheckpointConfig(a.run).kind == flow::ModelKind::Gaussians) {
        if (a.points > 0) {
            throw UsageError("generate: --points applies to point-cloud runs; this run models Gaussians");
        }
        auto gen = flow::loadGaussianGenerator(a.run, a.device);
        auto request = makeRequest(a, gen->labelNames());
        auto result = gen->generate(request);
        data::NpzArchive arrays;
        arrays["means"] = result.means;
        arrays["covariances"] = result.covariances;
        arrays["labels"] = result.labels.defined() ? result.labels : torch::full({ a.num }, -1, torch::kLong);
        if (a.trajectory) {
            arrays["trajectory_means"] = result.trajectoryMeans;
            arrays["trajectory_covariances"] = result.trajectoryCovariances;
        }
        data::writeNpz(a.out, arrays, /*compress=*/true);
        // Every covariance must come out positive definite: report the smallest eigenvalue.
        const double minEig = torch::linalg_eigvalsh(result.covariances.to(torch::kDouble), "L").min().item<double>();
        nlohmann::json out;
        out["out"] = a.out;
        out["kind"] = "gaussians";
        out["count"] = a.num;
        out["dim"] = result.means.size(1);
        out["steps"] = request.steps > 0 ? request.steps : gen->config().generate.steps;
        out["integrator"] = flow::integratorName(request.integrator.value_or(gen->config().generate.integrator));
        out["min_eigenvalue"] = minEig;
        out["seconds"] = result.seconds;
        out["device"] = gen->device().str();
        out["trained_steps"] = gen->step();
        printJson(out);
        return 0;
    }
    auto gen = flow::loadCloudGenerator(a.run, a.device);
    auto request = makeRequest(a, gen->labelNames());
    if (!a.cond.empty()) {
        request.cond = readFloatArray(a.cond, "--cond").to(torch::kFloat);
        if (request.cond.dim() == 1) {
            request.cond = request.cond.unsqueeze(0).expand({ a.num, request.cond.size(0) }).contiguous();
        }
    }
    auto result = gen->generate(request);
    data::NpzArchive arrays;
    arrays["points"] = result.points;
    arrays["weights"] = result.weights;
    if (result.labels.defined()) {
        arrays["labels"] = result.labels;
    } else {
        arrays["labels"] = torch::full({ a.num }, -1, torch::kLong);
    }
    if (result.trajectory.defined()) {
        arrays["trajectory"] = result.trajectory;
    }
    data::writeNpz(a.out, arrays, /*compress=*/true);
    nlohmann::json out;
    out["out"] = a.out;
    out["kind"] = "clouds";
    out["count"] = a.num;
    out["points"] = result.points.size(1);
    out["dim"] = result.points.size(2);
    out["steps"] = request.steps > 0 ? request.steps : gen->config().generate.steps;
    out["integrator"] = flow::integratorName(request.integrator.value_or(gen->config().generate.integrator));
    out["seconds"] = result.seconds;
    out["clouds_per_second"] = a.num / std::max(result.seconds, 1e-9);
    out["device"] = gen->device().str();
    out["trained_steps"] = gen->step();
    printJson(out);
    return 0;
}

// --- evaluate ----------------------------------------------------------------------------------

struct EvaluateArgs
{
    std::string run;
    std::string spec;
    std::string out;
    std::int64_t num = 0;
    int steps = 0;
    std::string integrator;
    double guidance = std::numeric_limits<double>::quiet_NaN();
    std::int64_t maxPoints = 512;
    std::int64_t emdPoints = 256;
    std::string emd = "exact";
    std::uint64_t seed = 0;
    std::string device;
    std::string niche = "auto";
    bool raw = false;
    bool mixed = false;
    std::int64_t maxReference = 0;
};

nlohmann::json metricsJson(const metrics::SetMetricsResult& r)
{
    return { { "distance", r.distance }, { "nna", r.nna }, { "cov", r.cov }, { "mmd", r.mmd },
        { "generated", r.generated }, { "reference", r.reference } };
}

flow::EvaluateOptions evaluateOptions(const EvaluateArgs& a)
{
    flow::EvaluateOptions o;
    o.count = a.num;
    o.maxReference = a.maxReference;
    o.steps = a.steps;
    if (!a.integrator.empty()) {
        o.integrator = flow::parseIntegrator(a.integrator);
    }
    o.guidance = a.guidance;
    o.chamferPoints = a.maxPoints;
    o.emdPoints = a.emdPoints;
    o.emd = flow::parseEmdMode(a.emd);
    o.niche = a.niche == "on" ? flow::NicheMode::On : a.niche == "off" ? flow::NicheMode::Off : flow::NicheMode::Auto;
    o.seed = a.seed;
    o.ema = !a.raw;
    o.mixedPrecision = a.mixed;
    return o;
}

int runEvaluateGaussians(const EvaluateArgs& a)
{
    const double t0 = nowSeconds();
    auto gen = flow::loadGaussianGenerator(a.run, a.device);
    const bool heldOut = a.spec.empty();
    const auto ref = heldOut ? flow::heldOutGaussians(gen->config()) : data::loadGaussians(a.spec);
    const std::string refName = heldOut ? gen->config().data.spec + " (held-out split)" : a.spec;
    const auto e = flow::evaluateGaussians(*gen, ref, refName, evaluateOptions(a));
    nlohmann::json out;
    out["run"] = a.run;
    out["kind"] = "gaussians";
    out["reference"] = e.referenceName;
    out["generated"] = e.generated.means.size(0);
    out["reference_count"] = e.reference.count();
    out["dim"] = e.reference.dim();
    out["steps"] = e.steps;
    out["integrator"] = flow::integratorName(e.integrator);
    out["weights"] = a.raw ? "raw" : "ema";
    out["generation_seconds"] = e.generationSeconds;
    out["all_covariances_pd"] = e.allPositiveDefinite;
    out["min_eigenvalue"] = e.minEigenvalue;
    out["metrics"] = { { "bures_wasserstein", metricsJson(e.buresWasserstein) } };
    if (!e.relationshipGenerated.empty()) {
        out["relationship_generated"] = e.relationshipGenerated;
        out["relationship_reference"] = e.relationshipReference;
    }
    out["seconds"] = nowSeconds() - t0;
    writeFileAtomically(a.out, out.dump(2) + "\n");
    printJson(out);
    return 0;
}

int runEvaluate(const EvaluateArgs& a)
{
    if (a.out.empty()) {
        throw UsageError("evaluate: --out R.json is required");
    }
    if (a.emd != "exact" && a.emd != "entropic" && a.emd != "none") {
        throw UsageError("evaluate: --emd must be exact, entropic or none");
    }
    if (a.niche != "auto" && a.niche != "on" && a.niche != "off") {
        throw UsageError("evaluate: --niche must be auto, on or off");
    }
    if (a.maxPoints < 1 || a.emdPoints < 1 || a.maxReference < 0) {
        throw UsageError("evaluate: --max-points and --emd-points must be >= 1, --max-reference >= 0");
    }
    if (flow::readCheckpointConfig(a.run).kind == flow::ModelKind::Gaussians) {
        return runEvaluateGaussians(a);
    }
    const double t0 = nowSeconds();
    auto gen = flow::loadCloudGenerator(a.run, a.device);
    // Reference: the held-out split of the run's data, or a whole other dataset.
    const bool heldOut = a.spec.empty();
    const auto ref = heldOut ? flow::heldOutClouds(gen->config()) : data::loadPointClouds(a.spec);
    const std::string refName = heldOut ? gen->config().data.spec + " (held-out split)" : a.spec;
    const auto e = flow::evaluateClouds(*gen, ref, refName, evaluateOptions(a));

    nlohmann::json out;
    out["run"] = a.run;
    out["reference"] = e.referenceName;
    out["generated"] = e.generated.points.size(0);
    out["reference_count"] = e.reference.count();
    out["reference_available"] = e.heldOutCount;
    out["generated_sizes"] = { { "min", *std::min_element(e.generatedSizes.begin(), e.generatedSizes.end()) },
        { "max", *std::max_element(e.generatedSizes.begin(), e.generatedSizes.end()) } };
    out["sizes"] = { { "min", e.reference.sizes.min().item<int64_t>() }, { "max", e.reference.sizes.max().item<int64_t>() },
        { "mean", e.reference.sizes.to(torch::kDouble).mean().item<double>() } };
    out["steps"] = e.steps;
    out["integrator"] = flow::integratorName(e.integrator);
    out["guidance"] = e.guidance;
    out["weights"] = a.raw ? "raw" : "ema";
    out["mixed_precision"] = a.mixed && flow::mixedPrecisionSupported(gen->device());
    out["generation_seconds"] = e.generationSeconds;
    out["metric_points"] = { { "chamfer", a.maxPoints }, { "emd", a.emdPoints } };
    nlohmann::json metrics = nlohmann::json::object();
    metrics["chamfer"] = metricsJson(e.chamfer);
    if (e.emd) {
        metrics["emd"] = metricsJson(*e.emd);
    }
    out["metrics"] = metrics;
    if (e.labelled) {
        nlohmann::json per = nlohmann::json::object();
        for (const auto& [name, r] : e.perLabel) {
            per[name] = metricsJson(r);
        }
        out["per_label_chamfer"] = per;
        out["mean_per_label_nna_chamfer"] = e.meanPerLabelNna.value_or(0.0);
    }
    if (e.niche) {
        const auto& r = e.niche->report;
        out["niche_label_accuracy"] = { { "real", r.realAccuracy }, { "generated", r.generatedAccuracy },
            { "chance", r.chance }, { "real_count", r.realCount }, { "generated_count", r.generatedCount },
            { "classifier_train_accuracy", e.niche->classifierTrainAccuracy } };
    }
    out["seconds"] = nowSeconds() - t0;
    writeFileAtomically(a.out, out.dump(2) + "\n");
    printJson(out);
    return 0;
}

} // namespace

Runner addGenerateCommand(CLI::App& app)
{
    auto a = std::make_shared<GenerateArgs>();
    auto* cmd = app.add_subcommand("generate",
        "Generate distributions from a trained run; writes points [K,N,d], weights [K,N], labels [K] (+ trajectory)");
    cmd->add_option("--run", a->run, "Run folder (or checkpoint file)")->required();
    cmd->add_option("--out", a->out, "Output .npz")->required();
    cmd->add_option("--num", a->num, "Number of samples K");
    cmd->add_option("--steps", a->steps, "Integration steps T (default: the run's config)");
    cmd->add_option("--integrator", a->integrator, "euler, midpoint or heun");
    cmd->add_option("--label", a->label, "Label name or index, 'random' (default) or 'none' (unconditional)");
    cmd->add_option("--guidance", a->guidance, "Classifier-free guidance scale (default: the run's config)");
    cmd->add_option("--points", a->points, "Points per cloud (default: sizes drawn from the training data)");
    cmd->add_flag("--trajectory", a->trajectory, "Also write the whole trajectory [T+1,K,N,d]");
    cmd->add_option("--seed", a->seed, "Random seed");
    cmd->add_option("--device", a->device, "auto, cpu, cuda or cuda:N");
    cmd->add_flag("--raw", a->raw, "Use the raw weights instead of the EMA weights");
    cmd->add_flag("--mixed", a->mixed, "bfloat16 autocast for the velocity field (CUDA, or CPUs with AMX / AVX-512 BF16)");
    cmd->add_option("--cond", a->cond, "Conditioning vectors .npy [K,c] (or [c] for all) for a model trained with cond");
    return [a]() { return runGenerate(*a); };
}

Runner addEvaluateCommand(CLI::App& app)
{
    auto a = std::make_shared<EvaluateArgs>();
    auto* cmd = app.add_subcommand("evaluate",
        "Generate as many samples as the held-out split has and report 1-NNA, COV and MMD under CD and EMD");
    cmd->add_option("--run", a->run, "Run folder (or checkpoint file)")->required();
    cmd->add_option("--out", a->out, "Output JSON")->required();
    cmd->add_option("--data", a->spec, "Reference dataset SPEC (default: the run's held-out split)");
    cmd->add_option("--num", a->num, "Generated samples (default: the reference count)");
    cmd->add_option("--max-reference", a->maxReference, "Compare with the first N reference samples only (0 = all)");
    cmd->add_option("--steps", a->steps, "Integration steps");
    cmd->add_option("--integrator", a->integrator, "euler, midpoint or heun");
    cmd->add_option("--guidance", a->guidance, "Guidance scale");
    cmd->add_option("--max-points", a->maxPoints, "Points per cloud for the Chamfer metrics (random subsample)");
    cmd->add_option("--emd-points", a->emdPoints, "Points per cloud for the EMD metrics (random subsample)");
    cmd->add_option("--emd", a->emd, "exact (network simplex), entropic or none");
    cmd->add_option("--niche", a->niche, "Niche label accuracy: auto (tissue, h5ad, csv data), on or off");
    cmd->add_option("--seed", a->seed, "Random seed");
    cmd->add_option("--device", a->device, "auto, cpu, cuda or cuda:N");
    cmd->add_flag("--raw", a->raw, "Use the raw weights instead of the EMA weights");
    cmd->add_flag("--mixed", a->mixed, "bfloat16 autocast for the velocity field (CUDA, or CPUs with AMX / AVX-512 BF16)");
    return [a]() { return runEvaluate(*a); };
}

} // namespace wfm::cli
