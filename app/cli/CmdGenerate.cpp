// wfm generate: samples from a trained run; wfm evaluate: sample quality against held-out data.

#include "Cli.h"

#include "wfm/AtomicFile.h"
#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Npy.h"
#include "wfm/data/GaussianDataset.h"
#include "wfm/flow/GaussianFlow.h"
#include "wfm/flow/GaussianGenerator.h"
#include "wfm/flow/Generate.h"
#include "wfm/flow/Trainer.h"
#include "wfm/metrics/NicheClassifier.h"
#include "wfm/metrics/SetMetrics.h"

#include <torch/torch.h>

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
        const double minEig = torch::linalg::eigvalsh(result.covariances.to(torch::kDouble), "L").min().item<double>();
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
};

/// Niche datasets (tissue, AnnData, CSV) get the label-accuracy metric by default.
bool isNicheSpec(const std::string& spec)
{
    return spec.rfind("builtin:tissue", 0) == 0 || spec.rfind("h5ad:", 0) == 0 || spec.rfind("csv:", 0) == 0;
}

/// At most m live points per cloud, chosen uniformly without replacement (seeded); uniform weights.
std::pair<torch::Tensor, torch::Tensor> subsample(
    const torch::Tensor& points, const torch::Tensor& weights, std::int64_t m, std::uint64_t seed)
{
    const int64_t K = points.size(0);
    const int64_t d = points.size(2);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    auto live = (weights > 0).sum(1).to(torch::kLong);
    const int64_t N = std::min<int64_t>(m, live.max().item<int64_t>());
    auto P = torch::zeros({ K, N, d }, torch::kFloat);
    auto W = torch::zeros({ K, N }, torch::kFloat);
    for (int64_t k = 0; k < K; ++k) {
        const int64_t n = live[k].item<int64_t>();
        const int64_t take = std::min(n, N);
        auto idx = at::randperm(n, gen, torch::kLong).narrow(0, 0, take);
        P[k].narrow(0, 0, take).copy_(points[k].index_select(0, idx));
        W[k].narrow(0, 0, take).fill_(1.0f / static_cast<float>(take));
    }
    return { P, W };
}

nlohmann::json metricsJson(const metrics::SetMetricsResult& r)
{
    return { { "distance", r.distance }, { "nna", r.nna }, { "cov", r.cov }, { "mmd", r.mmd },
        { "generated", r.generated }, { "reference", r.reference } };
}

int runEvaluateGaussians(const EvaluateArgs& a)
{
    const double t0 = nowSeconds();
    auto gen = flow::loadGaussianGenerator(a.run, a.device);
    const auto& config = gen->config();
    data::GaussianDataset ref;
    std::string refName;
    if (a.spec.empty()) {
        auto all = flow::loadConfigGaussians(config);
        ref = all.split(config.data.testFraction, config.data.splitSeed).test;
        refName = config.data.spec + " (held-out split)";
        if (ref.count() == 0) {
            throw ConfigError("run '" + a.run + "' has no held-out split (data.test_fraction = 0): pass --data SPEC");
        }
    } else {
        ref = data::loadGaussians(a.spec);
        refName = a.spec;
    }
    if (ref.dim() != gen->dim()) {
        throw ConfigError("reference data has dimension " + std::to_string(ref.dim()) + ", the model "
            + std::to_string(gen->dim()));
    }
    const int64_t R = ref.count();
    const int64_t K = a.num > 0 ? a.num : R;
    flow::GenerateRequest req;
    req.count = K;
    req.steps = a.steps;
    if (!a.integrator.empty()) {
        req.integrator = flow::parseIntegrator(a.integrator);
    }
    req.guidance = a.guidance;
    req.seed = a.seed;
    const bool labelled = !gen->labelNames().empty() && ref.hasLabels() && ref.labelNames == gen->labelNames();
    if (labelled) {
        for (int64_t k = 0; k < K; ++k) {
            req.labels.push_back(ref.labels[k % R].item<int64_t>());
        }
    }
    const double g0 = nowSeconds();
    auto g = gen->generate(req);
    const double genSeconds = nowSeconds() - g0;
    auto covs = g.covariances.to(torch::kDouble);
    const auto eig = torch::linalg::eigvalsh(covs, "L");
    const bool allPd = (eig.min() > 0).item<bool>();
    nlohmann::json out;
    out["run"] = a.run;
    out["kind"] = "gaussians";
    out["reference"] = refName;
    out["generated"] = K;
    out["reference_count"] = R;
    out["dim"] = ref.dim();
    out["steps"] = req.steps > 0 ? req.steps : config.generate.steps;
    out["integrator"] = flow::integratorName(req.integrator.value_or(config.generate.integrator));
    out["generation_seconds"] = genSeconds;
    out["all_covariances_pd"] = allPd;
    out["min_eigenvalue"] = eig.min().item<double>();
    out["metrics"] = { { "bures_wasserstein",
        metricsJson(metrics::evaluateGaussians(g.means.to(torch::kDouble), covs,
            ref.means.to(torch::kDouble), ref.covariances.to(torch::kDouble))) } };
    // The known mean-covariance relationship of a built-in family, on generated and held-out data.
    const auto relGen = flow::builtinRelationshipErrors(config.data.spec, g.means, g.covariances);
    if (!relGen.empty()) {
        out["relationship_generated"] = relGen;
        out["relationship_reference"] = flow::builtinRelationshipErrors(config.data.spec, ref.means, ref.covariances);
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
    if (a.maxPoints < 1 || a.emdPoints < 1) {
        throw UsageError("evaluate: --max-points and --emd-points must be >= 1");
    }
    if (flow::readCheckpointConfig(a.run).kind == flow::ModelKind::Gaussians) {
        return runEvaluateGaussians(a);
    }
    const double t0 = nowSeconds();
    auto gen = flow::loadCloudGenerator(a.run, a.device);
    const auto& config = gen->config();
    // Reference: the held-out split of the run's data, or a whole other dataset.
    data::PointCloudDataset ref;
    std::string refName;
    if (a.spec.empty()) {
        auto all = data::loadPointClouds(config.data.spec);
        ref = all.split(config.data.testFraction, config.data.splitSeed).test;
        refName = config.data.spec + " (held-out split)";
        if (ref.count() == 0) {
            throw ConfigError("run '" + a.run + "' has no held-out split (data.test_fraction = 0): pass --data SPEC");
        }
    } else {
        ref = data::loadPointClouds(a.spec);
        refName = a.spec;
    }
    if (ref.dim() != gen->dim()) {
        throw ConfigError("reference data has dimension " + std::to_string(ref.dim()) + ", the model "
            + std::to_string(gen->dim()));
    }
    const int64_t R = ref.count();
    const int64_t K = a.num > 0 ? a.num : R;
    flow::GenerateRequest req;
    req.count = K;
    req.steps = a.steps;
    if (!a.integrator.empty()) {
        req.integrator = flow::parseIntegrator(a.integrator);
    }
    req.guidance = a.guidance;
    req.seed = a.seed;
    // Sizes (and labels, for a conditional model) follow the reference set, cycled.
    const bool labelled = !gen->labelNames().empty() && ref.hasLabels()
        && ref.labelNames == gen->labelNames();
    // Generated clouds need no more points than the metrics use.
    const int64_t metricPoints = std::max(a.maxPoints, a.emd == "none" ? 0 : a.emdPoints);
    for (int64_t k = 0; k < K; ++k) {
        req.sizes.push_back(std::min(ref.size(k % R), metricPoints));
        if (labelled) {
            req.labels.push_back(ref.labels[k % R].item<int64_t>());
        }
    }
    if (ref.hasCond()) {
        req.cond = ref.cond.index_select(0, torch::arange(K, torch::kLong).remainder(R));
    }
    const double g0 = nowSeconds();
    auto g = gen->generate(req);
    const double genSeconds = nowSeconds() - g0;

    nlohmann::json out;
    out["run"] = a.run;
    out["reference"] = refName;
    out["generated"] = K;
    out["reference_count"] = R;
    out["generated_sizes"] = { { "min", *std::min_element(req.sizes.begin(), req.sizes.end()) },
        { "max", *std::max_element(req.sizes.begin(), req.sizes.end()) } };
    out["sizes"] = { { "min", ref.sizes.min().item<int64_t>() }, { "max", ref.sizes.max().item<int64_t>() },
        { "mean", ref.sizes.to(torch::kDouble).mean().item<double>() } };
    out["steps"] = req.steps > 0 ? req.steps : config.generate.steps;
    out["integrator"] = flow::integratorName(req.integrator.value_or(config.generate.integrator));
    out["guidance"] = std::isnan(a.guidance) ? config.generate.guidance : a.guidance;
    out["generation_seconds"] = genSeconds;
    out["metric_points"] = { { "chamfer", a.maxPoints }, { "emd", a.emdPoints } };

    auto [gp, gw] = subsample(g.points, g.weights, a.maxPoints, a.seed * 2 + 1);
    auto [rp, rw] = subsample(ref.points, ref.weights, a.maxPoints, a.seed * 2 + 2);
    nlohmann::json metrics = nlohmann::json::object();
    metrics["chamfer"] = metricsJson(metrics::evaluateClouds(gp, gw, rp, rw, metrics::Distance::Chamfer));
    if (a.emd != "none") {
        auto [ge, gew] = subsample(g.points, g.weights, a.emdPoints, a.seed * 2 + 3);
        auto [re, rew] = subsample(ref.points, ref.weights, a.emdPoints, a.seed * 2 + 4);
        const auto dist = a.emd == "exact" ? metrics::Distance::Emd : metrics::Distance::EntropicEmd;
        metrics["emd"] = metricsJson(metrics::evaluateClouds(ge, gew, re, rew, dist));
    }
    out["metrics"] = metrics;
    if (labelled) {
        // Per label: generated clouds of that label against held-out clouds of that label (CD).
        nlohmann::json per = nlohmann::json::object();
        double sum = 0;
        int count = 0;
        auto genLabels = g.labels;
        for (int64_t l = 0; l < static_cast<int64_t>(gen->labelNames().size()); ++l) {
            auto gi = (genLabels == l).nonzero().view(-1);
            auto ri = (ref.labels == l).nonzero().view(-1);
            if (gi.numel() < 1 || ri.numel() < 1 || gi.numel() + ri.numel() < 3) {
                continue;
            }
            auto r = metrics::evaluateClouds(gp.index_select(0, gi), gw.index_select(0, gi),
                rp.index_select(0, ri), rw.index_select(0, ri), metrics::Distance::Chamfer);
            per[gen->labelNames()[l]] = metricsJson(r);
            sum += r.nna;
            ++count;
        }
        out["per_label_chamfer"] = per;
        out["mean_per_label_nna_chamfer"] = count > 0 ? sum / count : 0.0;
    }
    const bool niche = a.niche == "on" || (a.niche == "auto" && isNicheSpec(config.data.spec));
    if (niche && labelled) {
        // A classifier trained on the real training niches predicts the centre's type; compare
        // its accuracy on held-out real niches and on generated niches of the requested types.
        auto all = data::loadPointClouds(config.data.spec);
        auto train = all.split(config.data.testFraction, config.data.splitSeed).train;
        auto clf = metrics::NicheClassifier::train(train);
        auto report = metrics::evaluateGeneratedNiches(clf, ref, g.points, g.weights, g.labels);
        out["niche_label_accuracy"] = { { "real", report.realAccuracy },
            { "generated", report.generatedAccuracy }, { "chance", report.chance },
            { "real_count", report.realCount }, { "generated_count", report.generatedCount },
            { "classifier_train_accuracy", clf.trainAccuracy() } };
    }
    out["seconds"] = nowSeconds() - t0;
    const std::string text = out.dump(2) + "\n";
    writeFileAtomically(a.out, text);
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
    cmd->add_option("--steps", a->steps, "Integration steps");
    cmd->add_option("--integrator", a->integrator, "euler, midpoint or heun");
    cmd->add_option("--guidance", a->guidance, "Guidance scale");
    cmd->add_option("--max-points", a->maxPoints, "Points per cloud for the Chamfer metrics (random subsample)");
    cmd->add_option("--emd-points", a->emdPoints, "Points per cloud for the EMD metrics (random subsample)");
    cmd->add_option("--emd", a->emd, "exact (network simplex), entropic or none");
    cmd->add_option("--niche", a->niche, "Niche label accuracy: auto (tissue, h5ad, csv data), on or off");
    cmd->add_option("--seed", a->seed, "Random seed");
    cmd->add_option("--device", a->device, "auto, cpu, cuda or cuda:N");
    return [a]() { return runEvaluate(*a); };
}

} // namespace wfm::cli
