#include "wfm/flow/GaussianFlow.h"

#include "wfm/Error.h"
#include "wfm/data/GaussianDataset.h"
#include "wfm/flow/TrainStep.h"
#include "wfm/ot/BuresWasserstein.h"
#include "wfm/ot/ExactOT.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace wfm::flow {

namespace bw = wfm::ot::bw;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kRadToDeg = 180.0 / kPi;

torch::IntArrayRef shapeOf(const torch::Tensor& t)
{
    return t.defined() ? t.sizes() : torch::IntArrayRef {};
}

/// Checks m0/m1 [B,d] and S0/S1 [B,d,d] of one floating dtype; returns (B, d).
std::pair<int64_t, int64_t> checkPairs(const char* fn, const torch::Tensor& m0,
    const torch::Tensor& S0, const torch::Tensor& m1, const torch::Tensor& S1)
{
    WFM_CHECK(m1.defined() && m1.dim() == 2 && m1.size(1) >= 1, fn, ": data means must be [B,d], got ",
        shapeOf(m1));
    const int64_t B = m1.size(0), d = m1.size(1);
    WFM_CHECK(S1.defined() && S1.dim() == 3 && S1.size(0) == B && S1.size(1) == d && S1.size(2) == d,
        fn, ": data covariances must be [", B, ",", d, ",", d, "], got ", shapeOf(S1));
    WFM_CHECK(m0.defined() && m0.dim() == 2 && m0.size(0) == B && m0.size(1) == d, fn,
        ": source means must be [", B, ",", d, "], got ", shapeOf(m0));
    WFM_CHECK(S0.defined() && S0.dim() == 3 && S0.size(0) == B && S0.size(1) == d && S0.size(2) == d,
        fn, ": source covariances must be [", B, ",", d, ",", d, "], got ", shapeOf(S0));
    WFM_CHECK(m0.is_floating_point() && m0.scalar_type() == S0.scalar_type()
            && m0.scalar_type() == m1.scalar_type() && m0.scalar_type() == S1.scalar_type(),
        fn, ": means and covariances must share one floating dtype, got ", m0.scalar_type(), ", ",
        S0.scalar_type(), ", ", m1.scalar_type(), ", ", S1.scalar_type());
    return { B, d };
}

torch::Tensor symmetrize(const torch::Tensor& S) { return (S + S.transpose(-1, -2)) * 0.5; }

/// E(X) = I + X + X^2 / 2 for symmetric X [K,d,d]: symmetric positive definite (its eigenvalues
/// are 1 + x + x^2/2 >= 1/2), equal to exp(X) up to O(X^3).
torch::Tensor expTaylor2(const torch::Tensor& X)
{
    const auto I = torch::eye(X.size(-1), X.options());
    return I + X + 0.5 * X.matmul(X);
}

torch::Tensor congruence(const torch::Tensor& G, const torch::Tensor& S)
{
    return symmetrize(G.matmul(S).matmul(G));
}

std::string familyOf(const std::string& name)
{
    std::string n = name;
    if (n.rfind("builtin:", 0) == 0) {
        n = n.substr(8);
    }
    const std::size_t q = n.find('?');
    return q == std::string::npos ? n : n.substr(0, q);
}

/// Angle in degrees in [0, 90] between the lines spanned by unit vectors a, b [G,d].
torch::Tensor lineAngleDeg(const torch::Tensor& a, const torch::Tensor& b)
{
    return torch::acos((a * b).sum(1).abs().clamp_max(1.0)) * kRadToDeg;
}

} // namespace

// ---- targets, pairing, loss ----

GaussianTargets gaussianFlowTargets(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1, const torch::Tensor& t)
{
    const auto [B, d] = checkPairs("gaussianFlowTargets", m0, S0, m1, S1);
    WFM_CHECK(t.defined() && (t.dim() == 0 || (t.dim() == 1 && t.size(0) == B)),
        "gaussianFlowTargets: t must be [", B, "] or 0-dim, got ", shapeOf(t));
    torch::NoGradGuard noGrad;
    const torch::Tensor tt = t.to(m0.device(), torch::kDouble);
    const torch::Tensor A = bw::mongeMap(S0, S1);
    const bw::Geodesic geo = bw::geodesicFromMap(m0, S0, m1, A, tt);
    const bw::Velocity vel = bw::velocityFromMap(m0, m1, A, tt);
    GaussianTargets out;
    out.t = (tt.dim() == 0 ? tt.expand({ B }) : tt).to(m0.scalar_type()).contiguous();
    out.means = geo.mean.reshape({ B, d });
    out.covs = geo.cov.reshape({ B, d, d });
    out.dm = vel.dm.reshape({ B, d });
    out.W = vel.W.reshape({ B, d, d });
    return out;
}

GaussianTargets gaussianFlowTargets(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1, torch::Generator& generator)
{
    const auto [B, d] = checkPairs("gaussianFlowTargets", m0, S0, m1, S1);
    (void)d;
    const torch::Tensor t = torch::rand({ B }, generator, torch::kDouble);
    return gaussianFlowTargets(m0, S0, m1, S1, t);
}

torch::Tensor gaussianMinibatchPairing(const torch::Tensor& m0, const torch::Tensor& S0,
    const torch::Tensor& m1, const torch::Tensor& S1)
{
    checkPairs("gaussianMinibatchPairing", m0, S0, m1, S1);
    torch::NoGradGuard noGrad;
    // Rows: targets, columns: sources, so perm[i] is the source of target i.
    const torch::Tensor cost = bw::pairwiseDistanceSquared(m1, S1, m0, S0);
    return ot::exactAssignment(cost.reshape({ m1.size(0), m0.size(0) }));
}

torch::Tensor gaussianFlowLoss(
    const model::GaussianVelocity& pred, const GaussianTargets& targets, bool euclidean)
{
    WFM_CHECK(pred.dm.defined() && pred.W.defined() && targets.dm.defined() && targets.W.defined()
            && pred.dm.sizes() == targets.dm.sizes() && pred.W.sizes() == targets.W.sizes(),
        "gaussianFlowLoss: predictions dm ", shapeOf(pred.dm), " / W ", shapeOf(pred.W),
        " do not match the targets ", shapeOf(targets.dm), " / ", shapeOf(targets.W));
    WFM_CHECK(pred.dm.dim() == 2 && pred.W.dim() == 3, "gaussianFlowLoss: dm must be [B,d] and W [B,d,d]");
    const auto opts = pred.dm.options();
    const torch::Tensor dmErr = pred.dm - targets.dm.to(opts);
    const torch::Tensor D = pred.W - targets.W.to(opts);
    const torch::Tensor meanTerm = dmErr.pow(2).sum(1);
    torch::Tensor covTerm;
    if (euclidean) {
        covTerm = D.pow(2).sum({ 1, 2 });
    } else {
        WFM_CHECK(targets.covs.defined() && targets.covs.sizes() == pred.W.sizes(),
            "gaussianFlowLoss: the targets need S_t [B,d,d] for the L2(N_t) loss");
        // tr(S_t D^2) = sum_ij (S_t)_ij (D^2)_ji, and D^2 is symmetric.
        covTerm = (targets.covs.to(opts) * D.matmul(D)).sum({ 1, 2 });
    }
    return (meanTerm + covTerm).mean();
}

torch::Tensor gaussianStepLoss(model::GaussianMlp& model, const GaussianStepBatch& batch,
    const GaussianStepOptions& options, torch::Generator& generator)
{
    WFM_CHECK(options.labelDropout >= 0.0 && options.labelDropout <= 1.0,
        "gaussianStepLoss: labelDropout must be in [0,1], got ", options.labelDropout);
    const auto [B, d] = checkPairs("gaussianStepLoss", batch.sourceMeans, batch.sourceCovariances,
        batch.means, batch.covariances);
    WFM_CHECK(d == model->options().dim, "gaussianStepLoss: the batch has dimension ", d,
        ", the model ", model->options().dim);
    const auto& w = model->meanHead->weight;
    const auto opts = w.options();
    torch::Tensor m1 = batch.means.to(opts), S1 = batch.covariances.to(opts);
    torch::Tensor m0 = batch.sourceMeans.to(opts), S0 = batch.sourceCovariances.to(opts);
    if (options.minibatchOt && B > 1) {
        const torch::Tensor perm = gaussianMinibatchPairing(m0, S0, m1, S1).to(w.device());
        m0 = m0.index_select(0, perm);
        S0 = S0.index_select(0, perm);
    }
    const GaussianTargets targets = gaussianFlowTargets(m0, S0, m1, S1, generator);
    torch::Tensor labels;
    const int64_t L = model->options().numLabels;
    if (L > 0) {
        if (batch.labels.defined()) {
            WFM_CHECK(batch.labels.dim() == 1 && batch.labels.size(0) == B,
                "gaussianStepLoss: labels must be [", B, "], got ", batch.labels.sizes());
            labels = batch.labels.to(torch::kCPU, torch::kLong);
        } else {
            labels = torch::full({ B }, L, torch::kLong);
        }
        if (options.labelDropout > 0.0) {
            const torch::Tensor drop = torch::rand({ B }, generator, torch::kDouble) < options.labelDropout;
            labels = torch::where(drop, torch::full_like(labels, L), labels);
        }
        labels = labels.to(w.device());
    }
    model::GaussianVelocity pred;
    {
        AutocastGuard autocast(options.mixedPrecision, targets.means.device());
        pred = model->forward(targets.means, targets.covs, targets.t, labels);
    }
    pred.dm = pred.dm.to(targets.means.scalar_type());
    pred.W = pred.W.to(targets.means.scalar_type());
    return gaussianFlowLoss(pred, targets, options.euclideanLoss);
}

// ---- generation ----

GaussianTrajectory integrateGaussians(const GaussianVelocityFn& velocity, const torch::Tensor& m0,
    const torch::Tensor& S0, int steps, Integrator integrator, bool keepTrajectory)
{
    WFM_CHECK(steps >= 1, "integrateGaussians: steps must be >= 1, got ", steps);
    WFM_CHECK(static_cast<bool>(velocity), "integrateGaussians: empty velocity field");
    WFM_CHECK(m0.defined() && m0.dim() == 2 && m0.is_floating_point(),
        "integrateGaussians: means must be a floating [K,d] tensor, got ", shapeOf(m0));
    const int64_t K = m0.size(0), d = m0.size(1);
    WFM_CHECK(S0.defined() && S0.dim() == 3 && S0.size(0) == K && S0.size(1) == d && S0.size(2) == d
            && S0.scalar_type() == m0.scalar_type(),
        "integrateGaussians: covariances must be [", K, ",", d, ",", d, "] of the means' dtype, got ",
        shapeOf(S0));
    const double h = 1.0 / steps;
    auto eval = [&](const torch::Tensor& m, const torch::Tensor& S, double t) {
        model::GaussianVelocity v = velocity(m, S, torch::full({ K }, t, m.options()));
        WFM_CHECK(v.dm.defined() && v.dm.sizes() == m.sizes() && v.W.defined()
                && v.W.sizes() == S.sizes(),
            "integrateGaussians: the velocity field returned dm ", shapeOf(v.dm), " and W ",
            shapeOf(v.W), " for means ", m.sizes());
        v.dm = v.dm.to(m.options());
        v.W = symmetrize(v.W.to(m.options()));
        return v;
    };
    const auto I = torch::eye(d, m0.options());
    torch::Tensor m = m0.clone();
    torch::Tensor S = symmetrize(S0);
    std::vector<torch::Tensor> trajM, trajS;
    if (keepTrajectory) {
        trajM.reserve(static_cast<std::size_t>(steps) + 1);
        trajS.reserve(static_cast<std::size_t>(steps) + 1);
        trajM.push_back(m);
        trajS.push_back(S);
    }
    for (int k = 0; k < steps; ++k) {
        const double t = k * h;
        const model::GaussianVelocity v1 = eval(m, S, t);
        switch (integrator) {
        case Integrator::Euler:
            m = m + h * v1.dm;
            S = congruence(I + h * v1.W, S);
            break;
        case Integrator::Midpoint: {
            const torch::Tensor mh = m + (0.5 * h) * v1.dm;
            const torch::Tensor Sh = congruence(expTaylor2((0.5 * h) * v1.W), S);
            const model::GaussianVelocity v2 = eval(mh, Sh, t + 0.5 * h);
            m = m + h * v2.dm;
            S = congruence(expTaylor2(h * v2.W), S);
            break;
        }
        case Integrator::Heun: {
            const torch::Tensor mp = m + h * v1.dm;
            const torch::Tensor Sp = congruence(expTaylor2(h * v1.W), S);
            const model::GaussianVelocity v2 = eval(mp, Sp, t + h);
            m = m + (0.5 * h) * (v1.dm + v2.dm);
            S = congruence(expTaylor2((0.5 * h) * (v1.W + v2.W)), S);
            break;
        }
        }
        if (keepTrajectory) {
            trajM.push_back(m);
            trajS.push_back(S);
        }
    }
    GaussianTrajectory out;
    out.means = m;
    out.covariances = S;
    if (keepTrajectory) {
        out.trajectoryMeans = torch::stack(trajM, 0);
        out.trajectoryCovariances = torch::stack(trajS, 0);
    }
    return out;
}

// ---- relationship metrics ----

std::map<std::string, double> builtinRelationshipErrors(
    const std::string& builtinName, const torch::Tensor& means, const torch::Tensor& covs)
{
    const std::string family = familyOf(builtinName);
    if (!data::isGaussianBuiltin(family)) {
        return {};
    }
    const int64_t dim = family == "gaussian-spiral" ? 2 : family == "gaussian-ring3d" ? 3 : 8;
    WFM_CHECK(means.defined() && means.dim() == 2 && means.size(1) == dim,
        "builtinRelationshipErrors: ", family, " needs means [G,", dim, "], got ", shapeOf(means));
    const int64_t G = means.size(0);
    WFM_CHECK(covs.defined() && covs.dim() == 3 && covs.size(0) == G && covs.size(1) == dim
            && covs.size(2) == dim,
        "builtinRelationshipErrors: ", family, " needs covariances [", G, ",", dim, ",", dim,
        "], got ", shapeOf(covs));
    std::map<std::string, double> out;
    if (G == 0) {
        return out;
    }
    torch::NoGradGuard noGrad;
    const torch::Tensor m = means.to(torch::kCPU, torch::kDouble);
    const torch::Tensor S = symmetrize(covs.to(torch::kCPU, torch::kDouble));
    auto [evals, evecs] = torch::linalg_eigh(S, "L"); // ascending
    evals = evals.clamp_min(0.0);

    if (family == "gaussian-spiral") {
        // Nearest point of a dense sampling of the curve (spacing ~1e-3 in arc length).
        constexpr int64_t kGrid = 20001;
        torch::Tensor curve = torch::empty({ kGrid, 2 }, torch::kDouble);
        torch::Tensor tangent = torch::empty({ kGrid, 2 }, torch::kDouble);
        std::vector<double> major(static_cast<std::size_t>(kGrid));
        auto* cp = curve.data_ptr<double>();
        auto* tp = tangent.data_ptr<double>();
        for (int64_t i = 0; i < kGrid; ++i) {
            const auto p = data::gaussianSpiralAt(static_cast<double>(i) / (kGrid - 1));
            cp[2 * i] = p.x;
            cp[2 * i + 1] = p.y;
            tp[2 * i] = p.tx;
            tp[2 * i + 1] = p.ty;
            major[static_cast<std::size_t>(i)] = p.majorStd;
        }
        std::vector<int64_t> nearest(static_cast<std::size_t>(G));
        torch::Tensor dist = torch::empty({ G }, torch::kDouble);
        for (int64_t start = 0; start < G; start += 256) {
            const int64_t n = std::min<int64_t>(256, G - start);
            const torch::Tensor d2 = torch::cdist(m.narrow(0, start, n), curve).pow(2);
            auto [best, arg] = d2.min(1);
            dist.narrow(0, start, n).copy_(best.sqrt());
            for (int64_t i = 0; i < n; ++i) {
                nearest[static_cast<std::size_t>(start + i)] = arg[i].item<int64_t>();
            }
        }
        const torch::Tensor idx = torch::tensor(nearest, torch::kLong);
        const torch::Tensor majorAxis = evecs.select(2, 1); // eigenvector of the largest eigenvalue
        const torch::Tensor angle = lineAngleDeg(majorAxis, tangent.index_select(0, idx));
        const torch::Tensor expected = torch::tensor(major, torch::kDouble).index_select(0, idx);
        const torch::Tensor sizeErr = (evals.select(1, 1).sqrt() - expected).abs() / expected;
        out["mean_distance"] = dist.mean().item<double>();
        out["orientation_error_deg"] = angle.mean().item<double>();
        out["size_rel_error"] = sizeErr.mean().item<double>();
    } else if (family == "gaussian-ring3d") {
        const torch::Tensor x = m.select(1, 0), y = m.select(1, 1), z = m.select(1, 2);
        const torch::Tensor rho = torch::sqrt(x * x + y * y);
        const torch::Tensor dist = torch::sqrt((rho - data::kRingRadius).pow(2) + z * z);
        const torch::Tensor phi = torch::atan2(y, x);
        const torch::Tensor c = torch::cos(phi), s = torch::sin(phi);
        const torch::Tensor ch = torch::cos(phi / 2), sh = torch::sin(phi / 2);
        const torch::Tensor et = torch::stack({ -s, c, torch::zeros_like(c) }, 1);
        const torch::Tensor u = torch::stack({ ch * c, ch * s, sh }, 1);
        const torch::Tensor orient = lineAngleDeg(evecs.select(2, 2), et);
        const torch::Tensor twist = lineAngleDeg(evecs.select(2, 1), u);
        const torch::Tensor stds = evals.flip(1).sqrt(); // descending
        const torch::Tensor expected
            = torch::tensor({ data::kRingStd[0], data::kRingStd[1], data::kRingStd[2] }, torch::kDouble);
        const torch::Tensor sizeErr = (stds - expected).norm(2, { 1 }) / expected.norm();
        out["mean_distance"] = dist.mean().item<double>();
        out["orientation_error_deg"] = orient.mean().item<double>();
        out["twist_error_deg"] = twist.mean().item<double>();
        out["size_rel_error"] = sizeErr.mean().item<double>();
    } else { // gaussian-eig8
        const torch::Tensor predicted
            = std::get<0>(data::gaussianEig8Eigenvalues(m).sort(1, /*descending=*/true));
        const torch::Tensor got = evals.flip(1);
        out["eigenvalue_rel_error"]
            = ((got - predicted).norm(2, { 1 }) / predicted.norm(2, { 1 })).mean().item<double>();
        const torch::Tensor Sm = data::gaussianEig8Covariances(m);
        out["covariance_rel_error"]
            = ((S - Sm).flatten(1).norm(2, { 1 }) / Sm.flatten(1).norm(2, { 1 })).mean().item<double>();
    }
    return out;
}

} // namespace wfm::flow
