#include "wfm/metrics/SetMetrics.h"

#include "wfm/Error.h"
#include "wfm/metrics/CloudDistances.h"
#include "wfm/ot/BuresWasserstein.h"

#include <torch/torch.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

namespace wfm::metrics {
namespace {

c10::IntArrayRef sizesOf(const torch::Tensor& t)
{
    return t.defined() ? t.sizes() : c10::IntArrayRef {};
}

/// A checked distance matrix as contiguous CPU float64.
torch::Tensor checkMatrix(const torch::Tensor& d, const char* name)
{
    WFM_CHECK(d.defined() && d.dim() == 2, name, " must be a distance matrix [rows,cols], got ",
        sizesOf(d));
    WFM_CHECK(d.is_floating_point(), name, " must be floating point, got ", d.scalar_type());
    WFM_CHECK(d.size(0) > 0 && d.size(1) > 0, name, " is empty (", d.sizes(),
        "): both sets need at least one sample");
    torch::Tensor c = d.detach().to(torch::kCPU, torch::kDouble).contiguous();
    WFM_CHECK(torch::isfinite(c).all().item<bool>(), name, " contains NaN or inf");
    return c;
}

/// Nearest-neighbour bookkeeping with ties: the running minimum and how many candidates of the
/// sample's own set and of the other set attain it.
struct Nearest
{
    double best = std::numeric_limits<double>::infinity();
    std::int64_t same = 0;
    std::int64_t other = 0;

    void offer(double v, bool sameSet)
    {
        if (v < best) {
            best = v;
            same = 0;
            other = 0;
        }
        if (v == best) {
            (sameSet ? same : other) += 1;
        }
    }
    /// Expected correctness under a uniform choice among the tied nearest neighbours.
    double credit() const
    {
        const std::int64_t n = same + other;
        return n == 0 ? 0.0 : static_cast<double>(same) / static_cast<double>(n);
    }
};

void appendNumber(std::string& out, double v)
{
    if (!std::isfinite(v)) {
        out += "null";
        return;
    }
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, res.ptr);
}

void appendString(std::string& out, const std::string& s)
{
    out += '"';
    for (const char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\u%04x", u);
            out += buf;
        } else {
            out += ch;
        }
    }
    out += '"';
}

} // namespace

std::string distanceName(Distance distance)
{
    switch (distance) {
    case Distance::Chamfer:
        return "chamfer";
    case Distance::Emd:
        return "emd";
    case Distance::EntropicEmd:
        return "entropic_emd";
    }
    throw ConfigError("unknown metrics::Distance value");
}

double oneNNAccuracy(const torch::Tensor& Dgg, const torch::Tensor& Drr, const torch::Tensor& Dgr)
{
    const torch::Tensor gg = checkMatrix(Dgg, "Dgg");
    const torch::Tensor rr = checkMatrix(Drr, "Drr");
    const torch::Tensor gr = checkMatrix(Dgr, "Dgr");
    const std::int64_t g = gr.size(0);
    const std::int64_t r = gr.size(1);
    WFM_CHECK(gg.size(0) == g && gg.size(1) == g, "Dgg must be [", g, ",", g, "] to match Dgr ",
        gr.sizes(), ", got ", gg.sizes());
    WFM_CHECK(rr.size(0) == r && rr.size(1) == r, "Drr must be [", r, ",", r, "] to match Dgr ",
        gr.sizes(), ", got ", rr.sizes());
    const auto pg = gg.accessor<double, 2>();
    const auto pr = rr.accessor<double, 2>();
    const auto pgr = gr.accessor<double, 2>();

    double correct = 0.0;
    for (std::int64_t i = 0; i < g; ++i) {
        Nearest nn;
        for (std::int64_t j = 0; j < g; ++j) {
            if (j != i) {
                nn.offer(pg[i][j], true);
            }
        }
        for (std::int64_t j = 0; j < r; ++j) {
            nn.offer(pgr[i][j], false);
        }
        correct += nn.credit();
    }
    for (std::int64_t j = 0; j < r; ++j) {
        Nearest nn;
        for (std::int64_t k = 0; k < r; ++k) {
            if (k != j) {
                nn.offer(pr[j][k], true);
            }
        }
        for (std::int64_t i = 0; i < g; ++i) {
            nn.offer(pgr[i][j], false);
        }
        correct += nn.credit();
    }
    return correct / static_cast<double>(g + r);
}

double coverage(const torch::Tensor& Dgr)
{
    const torch::Tensor gr = checkMatrix(Dgr, "Dgr");
    const std::int64_t g = gr.size(0);
    const std::int64_t r = gr.size(1);
    const auto p = gr.accessor<double, 2>();
    std::vector<char> matched(static_cast<std::size_t>(r), 0);
    for (std::int64_t i = 0; i < g; ++i) {
        std::int64_t best = 0;
        for (std::int64_t j = 1; j < r; ++j) {
            if (p[i][j] < p[i][best]) {
                best = j;
            }
        }
        matched[static_cast<std::size_t>(best)] = 1;
    }
    std::int64_t count = 0;
    for (const char m : matched) {
        count += m;
    }
    return static_cast<double>(count) / static_cast<double>(r);
}

double minimumMatchingDistance(const torch::Tensor& Dgr)
{
    const torch::Tensor gr = checkMatrix(Dgr, "Dgr");
    return gr.amin(0).mean().item<double>();
}

SetMetricsResult evaluateDistances(const torch::Tensor& Dgg, const torch::Tensor& Drr,
    const torch::Tensor& Dgr, const std::string& distance)
{
    SetMetricsResult res;
    res.nna = oneNNAccuracy(Dgg, Drr, Dgr);
    res.cov = coverage(Dgr);
    res.mmd = minimumMatchingDistance(Dgr);
    res.generated = Dgr.size(0);
    res.reference = Dgr.size(1);
    res.distance = distance;
    return res;
}

SetMetricsResult evaluateClouds(const torch::Tensor& genPoints, const torch::Tensor& genWeights,
    const torch::Tensor& refPoints, const torch::Tensor& refWeights, Distance distance,
    const EmdOptions& emdOptions)
{
    const torch::Tensor gw = validateClouds(genPoints, genWeights, "genPoints", "genWeights");
    const torch::Tensor rw = validateClouds(refPoints, refWeights, "refPoints", "refWeights");
    WFM_CHECK(
        genPoints.size(0) > 0, "genPoints is an empty set (no clouds), got ", genPoints.sizes());
    WFM_CHECK(
        refPoints.size(0) > 0, "refPoints is an empty set (no clouds), got ", refPoints.sizes());
    WFM_CHECK(genPoints.size(2) == refPoints.size(2),
        "genPoints and refPoints must have the same point dimension, got ", genPoints.sizes(),
        " and ", refPoints.sizes());
    WFM_CHECK(genPoints.scalar_type() == refPoints.scalar_type(), "genPoints is ",
        genPoints.scalar_type(), " but refPoints is ", refPoints.scalar_type());
    WFM_CHECK(genPoints.device() == refPoints.device(), "genPoints is on ", genPoints.device(),
        " but refPoints is on ", refPoints.device());

    torch::Tensor dgg;
    torch::Tensor drr;
    torch::Tensor dgr;
    if (distance == Distance::Chamfer) {
        dgg = chamferMatrix(genPoints, gw);
        drr = chamferMatrix(refPoints, rw);
        dgr = chamferMatrix(genPoints, gw, refPoints, rw);
    } else {
        EmdOptions o = emdOptions;
        o.entropic = distance == Distance::EntropicEmd;
        dgg = emdMatrix(genPoints, gw, o);
        drr = emdMatrix(refPoints, rw, o);
        dgr = emdMatrix(genPoints, gw, refPoints, rw, o);
    }
    return evaluateDistances(dgg, drr, dgr, distanceName(distance));
}

SetMetricsResult evaluateGaussians(const torch::Tensor& genMeans, const torch::Tensor& genCovs,
    const torch::Tensor& refMeans, const torch::Tensor& refCovs)
{
    torch::NoGradGuard noGrad;
    WFM_CHECK(genMeans.defined() && genMeans.dim() == 2, "genMeans must be [G,d], got ",
        sizesOf(genMeans));
    WFM_CHECK(refMeans.defined() && refMeans.dim() == 2, "refMeans must be [R,d], got ",
        sizesOf(refMeans));
    const std::int64_t g = genMeans.size(0);
    const std::int64_t r = refMeans.size(0);
    const std::int64_t d = genMeans.size(1);
    WFM_CHECK(g > 0, "genMeans is an empty set (no Gaussians), got ", genMeans.sizes());
    WFM_CHECK(r > 0, "refMeans is an empty set (no Gaussians), got ", refMeans.sizes());
    ot::bw::validateMeans(genMeans, -1, "genMeans");
    ot::bw::validateMeans(refMeans, d, "refMeans");
    WFM_CHECK(genCovs.defined() && genCovs.dim() == 3 && genCovs.size(0) == g
            && genCovs.size(1) == d && genCovs.size(2) == d,
        "genCovs must be [", g, ",", d, ",", d, "] to match genMeans, got ", sizesOf(genCovs));
    WFM_CHECK(refCovs.defined() && refCovs.dim() == 3 && refCovs.size(0) == r
            && refCovs.size(1) == d && refCovs.size(2) == d,
        "refCovs must be [", r, ",", d, ",", d, "] to match refMeans, got ", sizesOf(refCovs));
    ot::bw::validateCovariance(genCovs, "genCovs");
    ot::bw::validateCovariance(refCovs, "refCovs");
    const auto dtype = genMeans.scalar_type();
    const auto device = genMeans.device();
    WFM_CHECK(genCovs.scalar_type() == dtype && refMeans.scalar_type() == dtype
            && refCovs.scalar_type() == dtype,
        "genMeans, genCovs, refMeans and refCovs must share one dtype, got ", dtype, ", ",
        genCovs.scalar_type(), ", ", refMeans.scalar_type(), ", ", refCovs.scalar_type());
    WFM_CHECK(
        genCovs.device() == device && refMeans.device() == device && refCovs.device() == device,
        "genMeans, genCovs, refMeans and refCovs must be on one device, got ", device, ", ",
        genCovs.device(), ", ", refMeans.device(), ", ", refCovs.device());

    // W2 rather than W2^2 so that MMD is in units of length; orderings are unchanged.
    auto w2 = [](const torch::Tensor& m0, const torch::Tensor& s0, const torch::Tensor& m1,
                  const torch::Tensor& s1) {
        return ot::bw::pairwiseDistanceSquared(m0, s0, m1, s1)
            .to(torch::kCPU, torch::kDouble)
            .clamp_min(0.0)
            .sqrt();
    };
    return evaluateDistances(w2(genMeans, genCovs, genMeans, genCovs),
        w2(refMeans, refCovs, refMeans, refCovs), w2(genMeans, genCovs, refMeans, refCovs),
        "bures_wasserstein");
}

std::string toJsonString(const SetMetricsResult& result)
{
    std::string out = "{\"distance\":";
    appendString(out, result.distance);
    out += ",\"generated\":" + std::to_string(result.generated);
    out += ",\"reference\":" + std::to_string(result.reference);
    out += ",\"nna\":";
    appendNumber(out, result.nna);
    out += ",\"cov\":";
    appendNumber(out, result.cov);
    out += ",\"mmd\":";
    appendNumber(out, result.mmd);
    out += '}';
    return out;
}

} // namespace wfm::metrics
