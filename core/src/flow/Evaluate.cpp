#include "wfm/flow/Evaluate.h"

#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/flow/GaussianFlow.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace wfm::flow {
namespace {

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<std::int64_t> firstIndices(std::int64_t count, std::int64_t cap)
{
    std::vector<std::int64_t> idx(static_cast<std::size_t>(cap > 0 ? std::min(count, cap) : count));
    std::iota(idx.begin(), idx.end(), std::int64_t(0));
    return idx;
}

/// The request shared by both kinds: count, integration, seed, weights.
GenerateRequest baseRequest(std::int64_t count, const EvaluateOptions& o)
{
    GenerateRequest r;
    r.count = count;
    r.steps = o.steps;
    r.integrator = o.integrator;
    r.guidance = o.guidance;
    r.seed = o.seed;
    r.ema = o.ema;
    r.mixedPrecision = o.mixedPrecision;
    return r;
}

/// The opening both evaluations share: the dimensions agree, and `out` gets the reference's
/// name, its size and its first maxReference rows (at least one).
template <class Evaluation, class Generator, class Dataset>
void takeReference(Evaluation& out, const Generator& generator, const Dataset& reference,
    const std::string& referenceName, const EvaluateOptions& o)
{
    if (reference.dim() != generator.dim()) {
        throw ConfigError("reference data '" + referenceName + "' has dimension " + std::to_string(reference.dim())
            + ", the model " + std::to_string(generator.dim()));
    }
    out.referenceName = referenceName;
    out.heldOutCount = reference.count();
    out.reference = reference.subset(firstIndices(reference.count(), o.maxReference));
    WFM_CHECK(out.reference.count() >= 1, "evaluate: reference data '", referenceName, "' is empty");
}

} // namespace

std::string emdModeName(EmdMode mode)
{
    switch (mode) {
    case EmdMode::Exact:
        return "exact";
    case EmdMode::Entropic:
        return "entropic";
    case EmdMode::None:
        return "none";
    }
    return "none";
}

EmdMode parseEmdMode(const std::string& name)
{
    for (EmdMode m : { EmdMode::Exact, EmdMode::Entropic, EmdMode::None }) {
        if (name == emdModeName(m)) {
            return m;
        }
    }
    throw ConfigError("unknown EMD mode '" + name + "' (valid: exact, entropic, none)");
}

bool isNicheSpec(const std::string& spec)
{
    return spec.rfind("builtin:tissue", 0) == 0 || spec.rfind("h5ad:", 0) == 0 || spec.rfind("csv:", 0) == 0;
}

data::PointCloudDataset heldOutClouds(const TrainConfig& config)
{
    auto test = data::loadPointClouds(config.data.spec).split(config.data.testFraction, config.data.splitSeed).test;
    if (test.count() == 0) {
        throw ConfigError("the run has no held-out split of '" + config.data.spec
            + "' (data.test_fraction = " + std::to_string(config.data.testFraction) + "): give reference data");
    }
    return test;
}

data::GaussianDataset heldOutGaussians(const TrainConfig& config)
{
    auto test = loadConfigGaussians(config).split(config.data.testFraction, config.data.splitSeed).test;
    if (test.count() == 0) {
        throw ConfigError("the run has no held-out split of '" + config.data.spec
            + "' (data.test_fraction = " + std::to_string(config.data.testFraction) + "): give reference data");
    }
    return test;
}

std::pair<torch::Tensor, torch::Tensor> subsampleClouds(
    const torch::Tensor& points, const torch::Tensor& weights, std::int64_t m, std::uint64_t seed)
{
    WFM_CHECK(points.dim() == 3 && weights.dim() == 2 && points.size(0) == weights.size(0)
            && points.size(1) == weights.size(1),
        "subsampleClouds: points ", points.sizes(), " and weights ", weights.sizes(), " do not match");
    WFM_CHECK(m >= 1, "subsampleClouds: m must be >= 1 (got ", m, ")");
    const std::int64_t K = points.size(0);
    const std::int64_t d = points.size(2);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const torch::Tensor live = (weights > 0).sum(1).to(torch::kLong);
    const std::int64_t N = K > 0 ? std::min<std::int64_t>(m, live.max().item<std::int64_t>()) : 0;
    torch::Tensor P = torch::zeros({ K, N, d }, torch::kFloat);
    torch::Tensor W = torch::zeros({ K, N }, torch::kFloat);
    const torch::Tensor src = points.to(torch::kCPU).to(torch::kFloat);
    const torch::Tensor srcW = weights.to(torch::kCPU);
    for (std::int64_t k = 0; k < K; ++k) {
        // Live points are wherever the weight is positive (not necessarily the first slots).
        const torch::Tensor liveIdx = (srcW[k] > 0).nonzero().view(-1);
        const std::int64_t n = liveIdx.numel();
        const std::int64_t take = std::min(n, N);
        if (take == 0) {
            continue;
        }
        const torch::Tensor pick = liveIdx.index_select(0, at::randperm(n, gen, torch::kLong).narrow(0, 0, take));
        P[k].narrow(0, 0, take).copy_(src[k].index_select(0, pick));
        W[k].narrow(0, 0, take).fill_(1.0f / static_cast<float>(take));
    }
    return { P, W };
}

CloudEvaluation evaluateClouds(const CloudGenerator& generator, const data::PointCloudDataset& reference,
    const std::string& referenceName, const EvaluateOptions& o)
{
    WFM_CHECK(o.chamferPoints >= 1 && (o.emd == EmdMode::None || o.emdPoints >= 1),
        "evaluate: the metrics need at least one point per cloud");
    const auto t0 = std::chrono::steady_clock::now();
    torch::NoGradGuard noGrad;
    const TrainConfig& config = generator.config();
    CloudEvaluation out;
    takeReference(out, generator, reference, referenceName, o);
    const data::PointCloudDataset& ref = out.reference;
    const std::int64_t R = ref.count();
    const std::int64_t K = o.count > 0 ? o.count : R;

    // Sizes, labels and conditions follow the reference, cycled; generated clouds need no more
    // points than the metrics use.
    GenerateRequest req = baseRequest(K, o);
    out.labelled = !generator.labelNames().empty() && ref.hasLabels() && ref.labelNames == generator.labelNames();
    const std::int64_t metricPoints = std::max(o.chamferPoints, o.emd == EmdMode::None ? 0 : o.emdPoints);
    for (std::int64_t k = 0; k < K; ++k) {
        req.sizes.push_back(std::min(ref.size(k % R), metricPoints));
        if (out.labelled) {
            req.labels.push_back(ref.labels[k % R].item<std::int64_t>());
        }
    }
    if (ref.hasCond()) {
        req.cond = ref.cond.index_select(0, torch::arange(K, torch::kLong).remainder(R));
    }
    out.generatedSizes = req.sizes;
    out.steps = req.steps > 0 ? req.steps : config.generate.steps;
    out.integrator = req.integrator.value_or(config.generate.integrator);
    out.guidance = std::isnan(o.guidance) ? config.generate.guidance : o.guidance;
    const auto g0 = std::chrono::steady_clock::now();
    out.generated = generator.generate(req);
    out.generationSeconds = secondsSince(g0);
    const GeneratedClouds& g = out.generated;

    const auto [gp, gw] = subsampleClouds(g.points, g.weights, o.chamferPoints, o.seed * 2 + 1);
    const auto [rp, rw] = subsampleClouds(ref.points, ref.weights, o.chamferPoints, o.seed * 2 + 2);
    out.chamfer = metrics::evaluateClouds(gp, gw, rp, rw, metrics::Distance::Chamfer);
    if (o.emd != EmdMode::None) {
        const auto [ge, gew] = subsampleClouds(g.points, g.weights, o.emdPoints, o.seed * 2 + 3);
        const auto [re, rew] = subsampleClouds(ref.points, ref.weights, o.emdPoints, o.seed * 2 + 4);
        out.emd = metrics::evaluateClouds(ge, gew, re, rew,
            o.emd == EmdMode::Exact ? metrics::Distance::Emd : metrics::Distance::EntropicEmd);
    }
    if (out.labelled) {
        // Per label: generated clouds of that label against reference clouds of that label.
        double sum = 0.0;
        int count = 0;
        for (std::int64_t l = 0; l < static_cast<std::int64_t>(generator.labelNames().size()); ++l) {
            const torch::Tensor gi = (g.labels == l).nonzero().view(-1);
            const torch::Tensor ri = (ref.labels == l).nonzero().view(-1);
            if (gi.numel() < 1 || ri.numel() < 1 || gi.numel() + ri.numel() < 3) {
                continue;
            }
            const auto r = metrics::evaluateClouds(gp.index_select(0, gi), gw.index_select(0, gi),
                rp.index_select(0, ri), rw.index_select(0, ri), metrics::Distance::Chamfer);
            out.perLabel.emplace_back(generator.labelNames()[static_cast<std::size_t>(l)], r);
            sum += r.nna;
            ++count;
        }
        if (count > 0) {
            out.meanPerLabelNna = sum / count;
        }
    }
    const bool niche = o.niche == NicheMode::On || (o.niche == NicheMode::Auto && isNicheSpec(config.data.spec));
    if (niche && out.labelled) {
        // A classifier trained on the run's real training niches predicts the centre's type;
        // compare its accuracy on reference niches and on generated niches of the same types.
        const auto train = data::loadPointClouds(config.data.spec).split(config.data.testFraction, config.data.splitSeed).train;
        const auto clf = metrics::NicheClassifier::train(train);
        NicheEvaluation n;
        n.report = metrics::evaluateGeneratedNiches(clf, ref, g.points, g.weights, g.labels);
        n.classifierTrainAccuracy = clf.trainAccuracy();
        out.niche = n;
    }
    out.seconds = secondsSince(t0);
    return out;
}

GaussianEvaluation evaluateGaussians(const GaussianGenerator& generator,
    const data::GaussianDataset& reference, const std::string& referenceName, const EvaluateOptions& o)
{
    const auto t0 = std::chrono::steady_clock::now();
    torch::NoGradGuard noGrad;
    const TrainConfig& config = generator.config();
    GaussianEvaluation out;
    takeReference(out, generator, reference, referenceName, o);
    const data::GaussianDataset& ref = out.reference;
    const std::int64_t R = ref.count();
    const std::int64_t K = o.count > 0 ? o.count : R;
    GenerateRequest req = baseRequest(K, o);
    if (!generator.labelNames().empty() && ref.hasLabels() && ref.labelNames == generator.labelNames()) {
        for (std::int64_t k = 0; k < K; ++k) {
            req.labels.push_back(ref.labels[k % R].item<std::int64_t>());
        }
    }
    out.steps = req.steps > 0 ? req.steps : config.generate.steps;
    out.integrator = req.integrator.value_or(config.generate.integrator);
    const auto g0 = std::chrono::steady_clock::now();
    out.generated = generator.generate(req);
    out.generationSeconds = secondsSince(g0);
    const torch::Tensor covs = out.generated.covariances.to(torch::kDouble);
    const torch::Tensor eig = torch::linalg_eigvalsh(covs, "L");
    out.minEigenvalue = eig.min().item<double>();
    out.allPositiveDefinite = out.minEigenvalue > 0;
    out.buresWasserstein = metrics::evaluateGaussians(out.generated.means.to(torch::kDouble), covs,
        ref.means.to(torch::kDouble), ref.covariances.to(torch::kDouble));
    // The known mean-covariance relationship of a built-in family, on generated and reference data.
    out.relationshipGenerated
        = builtinRelationshipErrors(config.data.spec, out.generated.means, out.generated.covariances);
    if (!out.relationshipGenerated.empty()) {
        out.relationshipReference = builtinRelationshipErrors(config.data.spec, ref.means, ref.covariances);
    }
    out.seconds = secondsSince(t0);
    return out;
}

} // namespace wfm::flow
