#include "wfm/metrics/NicheClassifier.h"

#include "wfm/Error.h"

#include <torch/torch.h>

#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

namespace wfm::metrics {

struct NicheClassifier::Model
{
    torch::nn::Sequential net { nullptr };
    torch::Tensor mean;  // [F]
    torch::Tensor scale; // [F]
    std::vector<std::string> labelNames;
    std::int64_t dim = 0;
    double trainAccuracy = 0.0;
};

namespace {

void checkCloudShapes(const torch::Tensor& points, const torch::Tensor& weights, const char* fn)
{
    WFM_CHECK(points.defined() && points.dim() == 3, fn, ": points must be [B,N,d], got ",
        points.defined() ? points.sizes() : torch::IntArrayRef {});
    WFM_CHECK(weights.defined() && weights.dim() == 2 && weights.size(0) == points.size(0)
            && weights.size(1) == points.size(1),
        fn, ": weights must be [", points.size(0), ",", points.size(1), "]");
}

} // namespace

torch::Tensor nicheSummary(const torch::Tensor& points, const torch::Tensor& weights)
{
    checkCloudShapes(points, weights, "nicheSummary");
    const std::int64_t B = points.size(0);
    const std::int64_t N = points.size(1);
    const std::int64_t d = points.size(2);
    const torch::Tensor x = points.detach().to(torch::kCPU, torch::kDouble);
    torch::Tensor w = weights.detach().to(torch::kCPU, torch::kDouble).clamp_min(0);
    const torch::Tensor total = w.sum(1, /*keepdim=*/true);
    WFM_CHECK(B == 0 || (total > 0).all().item<bool>(), "nicheSummary: a cloud has no positive weight");
    w = w / total;
    const torch::Tensor mean = (w.unsqueeze(2) * x).sum(1);                   // [B,d]
    const torch::Tensor xc = (x - mean.unsqueeze(1)) * (w.unsqueeze(2) > 0);  // padding -> 0
    const torch::Tensor cov = torch::bmm((xc * w.unsqueeze(2)).transpose(1, 2), xc); // [B,d,d]
    const torch::Tensor tri = torch::triu_indices(d, d, 0, torch::kLong);
    const torch::Tensor upper = cov.index({ torch::indexing::Slice(), tri[0], tri[1] });
    // Mean pairwise distance, in chunks so B * N^2 stays bounded.
    torch::Tensor mpd = torch::empty({ B }, torch::kDouble);
    const std::int64_t chunk = std::max<std::int64_t>(1, (std::int64_t { 1 } << 24) / std::max<std::int64_t>(1, N * N));
    for (std::int64_t b0 = 0; b0 < B; b0 += chunk) {
        const std::int64_t b1 = std::min(B, b0 + chunk);
        const torch::Tensor xs = x.slice(0, b0, b1);
        const torch::Tensor ws = w.slice(0, b0, b1);
        const torch::Tensor dist = torch::cdist(xs, xs); // [b,N,N]
        mpd.slice(0, b0, b1).copy_((dist * ws.unsqueeze(2) * ws.unsqueeze(1)).sum({ 1, 2 }));
    }
    return torch::cat({ mean, upper, mpd.unsqueeze(1) }, 1).to(torch::kFloat);
}

NicheClassifier NicheClassifier::train(const data::PointCloudDataset& data, const NicheClassifierOptions& o)
{
    // Fitting needs gradients even when the caller evaluates under a NoGradGuard.
    torch::AutoGradMode enableGrad(true);
    WFM_CHECK(data.hasLabels(), "NicheClassifier::train: the dataset has no labels");
    WFM_CHECK(data.count() >= 2, "NicheClassifier::train: need at least 2 niches");
    WFM_CHECK(o.hidden >= 0 && o.epochs >= 1 && o.lr > 0 && o.weightDecay >= 0,
        "NicheClassifier::train: invalid options");
    const torch::Tensor labels = data.labels.to(torch::kLong);
    const std::int64_t L = data.numLabels();
    WFM_CHECK((torch::bincount(labels, {}, L) > 0).sum().item<std::int64_t>() >= 2,
        "NicheClassifier::train: need at least two distinct labels");
    torch::manual_seed(o.seed);
    auto model = std::make_shared<Model>();
    model->labelNames = data.labelNames;
    model->dim = data.dim();
    const torch::Tensor feats = nicheSummary(data.points, data.weights);
    model->mean = feats.mean(0);
    model->scale = feats.std(0).clamp_min(1e-6);
    const torch::Tensor z = (feats - model->mean) / model->scale;
    const std::int64_t F = z.size(1);
    torch::nn::Sequential net;
    if (o.hidden > 0) {
        net->push_back(torch::nn::Linear(F, o.hidden));
        net->push_back(torch::nn::ReLU());
        net->push_back(torch::nn::Linear(o.hidden, L));
    } else {
        net->push_back(torch::nn::Linear(F, L));
    }
    model->net = net;
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(o.lr).weight_decay(o.weightDecay));
    net->train();
    for (int e = 0; e < o.epochs; ++e) {
        opt.zero_grad();
        const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(z), labels);
        loss.backward();
        opt.step();
    }
    net->eval();
    {
        torch::NoGradGuard guard;
        model->trainAccuracy = (net->forward(z).argmax(1) == labels).to(torch::kDouble).mean().item<double>();
    }
    NicheClassifier c;
    c.m = std::move(model);
    return c;
}

torch::Tensor NicheClassifier::probabilities(const torch::Tensor& points, const torch::Tensor& weights) const
{
    WFM_CHECK(m != nullptr, "NicheClassifier: not trained");
    checkCloudShapes(points, weights, "NicheClassifier");
    WFM_CHECK(points.size(2) == m->dim, "NicheClassifier: points have dimension ", points.size(2),
        ", the classifier was trained on ", m->dim);
    torch::NoGradGuard guard;
    const torch::Tensor z = (nicheSummary(points, weights) - m->mean) / m->scale;
    return torch::softmax(m->net->forward(z), 1);
}

torch::Tensor NicheClassifier::predict(const torch::Tensor& points, const torch::Tensor& weights) const
{
    return probabilities(points, weights).argmax(1);
}

double NicheClassifier::accuracy(const torch::Tensor& points, const torch::Tensor& weights, const torch::Tensor& labels) const
{
    WFM_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == points.size(0),
        "NicheClassifier::accuracy: labels must be [", points.size(0), "]");
    if (labels.size(0) == 0) {
        return std::numeric_limits<double>::quiet_NaN();
    }
    const torch::Tensor pred = predict(points, weights);
    return (pred == labels.to(torch::kCPU, torch::kLong)).to(torch::kDouble).mean().item<double>();
}

double NicheClassifier::accuracy(const data::PointCloudDataset& data) const
{
    WFM_CHECK(data.hasLabels(), "NicheClassifier::accuracy: the dataset has no labels");
    return accuracy(data.points, data.weights, data.labels);
}

const std::vector<std::string>& NicheClassifier::labelNames() const
{
    WFM_CHECK(m != nullptr, "NicheClassifier: not trained");
    return m->labelNames;
}

std::int64_t NicheClassifier::dim() const { return m ? m->dim : 0; }

double NicheClassifier::trainAccuracy() const { return m ? m->trainAccuracy : 0.0; }

std::string NicheAccuracyReport::toText() const
{
    std::ostringstream os;
    os << std::fixed << std::setprecision(3) << "niche accuracy: real " << realAccuracy << ", generated "
       << generatedAccuracy << " (chance " << chance << "; " << realCount << " real / "
       << generatedCount << " generated niches)";
    return os.str();
}

NicheAccuracyReport evaluateGeneratedNiches(const NicheClassifier& classifier,
    const data::PointCloudDataset& heldOut, const torch::Tensor& generatedPoints,
    const torch::Tensor& generatedWeights, const torch::Tensor& requestedLabels)
{
    const auto L = static_cast<std::int64_t>(classifier.labelNames().size());
    WFM_CHECK(requestedLabels.defined() && requestedLabels.dim() == 1
            && generatedPoints.defined() && requestedLabels.size(0) == generatedPoints.size(0),
        "evaluateGeneratedNiches: requestedLabels must be [G] for G generated niches");
    const torch::Tensor req = requestedLabels.to(torch::kCPU, torch::kLong);
    WFM_CHECK(req.numel() == 0 || (req.min().item<std::int64_t>() >= 0 && req.max().item<std::int64_t>() < L),
        "evaluateGeneratedNiches: requested labels must be in [0,", L, ")");
    NicheAccuracyReport r;
    r.realCount = heldOut.count();
    r.generatedCount = req.size(0);
    r.realAccuracy = classifier.accuracy(heldOut);
    if (heldOut.count() > 0) {
        r.chance = torch::bincount(heldOut.labels, {}, L).max().item<double>() / static_cast<double>(heldOut.count());
    }
    const torch::Tensor pred = classifier.predict(generatedPoints, generatedWeights);
    const torch::Tensor hit = (pred == req).to(torch::kDouble);
    r.generatedAccuracy = req.numel() ? hit.mean().item<double>() : std::numeric_limits<double>::quiet_NaN();
    r.generatedPerLabel.assign(static_cast<std::size_t>(L), std::numeric_limits<double>::quiet_NaN());
    for (std::int64_t l = 0; l < L; ++l) {
        const torch::Tensor mask = req == l;
        const std::int64_t n = mask.sum().item<std::int64_t>();
        if (n > 0) {
            r.generatedPerLabel[static_cast<std::size_t>(l)] = hit.masked_select(mask).mean().item<double>();
        }
    }
    return r;
}

} // namespace wfm::metrics
