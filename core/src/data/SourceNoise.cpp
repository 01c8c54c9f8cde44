#include "wfm/data/SourceNoise.h"

#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace wfm::data {
namespace {

constexpr double kCovJitter = 1e-6;    // added to each covariance before Cholesky (reference)
constexpr double kWeightFloor = 1e-6;  // weights are floored at this before the covariance
constexpr double kDiagFloor = 1e-6;    // |L_kk| + this keeps sampled factors nonsingular

nlohmann::json tensorToJson(const torch::Tensor& t)
{
    const torch::Tensor c = t.to(torch::kCPU, torch::kDouble).contiguous();
    const auto* p = c.data_ptr<double>();
    if (c.dim() == 1) {
        return std::vector<double>(p, p + c.numel());
    }
    nlohmann::json rows = nlohmann::json::array();
    for (std::int64_t i = 0; i < c.size(0); ++i) {
        rows.push_back(std::vector<double>(p + i * c.size(1), p + (i + 1) * c.size(1)));
    }
    return rows;
}

torch::Tensor vectorFromJson(const nlohmann::json& j, std::int64_t d, const char* key)
{
    const auto v = j.at(key).get<std::vector<double>>();
    WFM_CHECK(static_cast<std::int64_t>(v.size()) == d, "source noise JSON: '", key, "' must have ",
        d, " entries, got ", v.size());
    return torch::tensor(v, torch::kDouble).to(torch::kFloat);
}

torch::Tensor matrixFromJson(const nlohmann::json& j, std::int64_t d, const char* key)
{
    const auto rows = j.at(key).get<std::vector<std::vector<double>>>();
    WFM_CHECK(static_cast<std::int64_t>(rows.size()) == d, "source noise JSON: '", key,
        "' must be ", d, "x", d);
    std::vector<double> flat;
    for (const auto& r : rows) {
        WFM_CHECK(static_cast<std::int64_t>(r.size()) == d, "source noise JSON: '", key,
            "' must be ", d, "x", d);
        flat.insert(flat.end(), r.begin(), r.end());
    }
    return torch::tensor(flat, torch::kDouble).reshape({ d, d }).to(torch::kFloat);
}

void checkFinite(const torch::Tensor& t, const char* what)
{
    WFM_CHECK(torch::isfinite(t).all().item<bool>(), "source noise: ", what,
        " has non-finite values");
}

} // namespace

std::string noiseKindName(NoiseKind kind)
{
    switch (kind) {
    case NoiseKind::CholNormal:
        return "chol_normal";
    case NoiseKind::StandardNormal:
        return "standard_normal";
    case NoiseKind::Uniform:
        return "uniform";
    case NoiseKind::Clouds:
        return "clouds";
    }
    return "standard_normal";
}

NoiseKind parseNoiseKind(const std::string& name)
{
    for (const NoiseKind k :
        { NoiseKind::CholNormal, NoiseKind::StandardNormal, NoiseKind::Uniform, NoiseKind::Clouds }) {
        if (name == noiseKindName(k)) {
            return k;
        }
    }
    if (name == "normal") {
        return NoiseKind::StandardNormal;
    }
    throw ConfigError("unknown source noise '" + name
        + "' (valid: chol_normal, standard_normal (or normal), uniform, clouds)");
}

SourceNoise SourceNoise::fit(NoiseKind kind, const PointCloudDataset& train, double scale)
{
    WFM_CHECK(kind != NoiseKind::Clouds,
        "source noise: 'clouds' is not fitted; build it with SourceNoise::fromClouds");
    WFM_CHECK(train.count() > 0, "source noise: cannot fit on an empty dataset");
    WFM_CHECK(std::isfinite(scale) && scale > 0.0, "source noise: scale must be > 0, got ", scale);
    const std::int64_t d = train.dim();
    if (kind == NoiseKind::StandardNormal) {
        return standardNormal(d);
    }
    if (kind == NoiseKind::Uniform) {
        const torch::Tensor live
            = torch::arange(train.maxPoints()).unsqueeze(0) < train.sizes.cpu().unsqueeze(1);
        const torch::Tensor pts = train.points.cpu().index({ live });
        return uniform(std::get<0>(pts.min(0)), std::get<0>(pts.max(0)));
    }
    // CholNormal: the reference's chol_stats, in float64, in chunks of clouds to bound memory.
    constexpr std::int64_t kChunk = 256;
    std::vector<torch::Tensor> factors;
    for (std::int64_t start = 0; start < train.count(); start += kChunk) {
        const std::int64_t len = std::min(kChunk, train.count() - start);
        const torch::Tensor X = train.points.narrow(0, start, len).to(torch::kCPU, torch::kDouble);
        torch::Tensor sw
            = train.weights.narrow(0, start, len).to(torch::kCPU, torch::kDouble).clamp_min(kWeightFloor);
        sw = sw / sw.sum(1, true);
        const torch::Tensor mean = (X * sw.unsqueeze(-1)).sum(1);
        const torch::Tensor Xc = X - mean.unsqueeze(1);
        torch::Tensor cov = torch::bmm((Xc * sw.unsqueeze(-1)).transpose(1, 2), Xc);
        cov = 0.5 * (cov + cov.transpose(1, 2))
            + kCovJitter * torch::eye(d, torch::kDouble).unsqueeze(0);
        try {
            factors.push_back(torch::linalg_cholesky(cov));
        } catch (const c10::Error&) {
            throw DatasetError(
                "source noise: a training cloud's covariance is not positive definite (Cholesky "
                "failed); are there non-finite coordinates?");
        }
    }
    const torch::Tensor L = torch::cat(factors);
    const torch::Tensor Lmean = L.mean(0);
    const torch::Tensor Lstd = (L - Lmean).pow(2).mean(0).sqrt(); // population std
    return cholNormal(Lmean.to(torch::kFloat), Lstd.to(torch::kFloat), scale);
}

SourceNoise SourceNoise::standardNormal(std::int64_t dim)
{
    WFM_CHECK(dim >= 1, "source noise: dimension must be >= 1, got ", dim);
    SourceNoise n;
    n.m_kind = NoiseKind::StandardNormal;
    n.m_dim = dim;
    return n;
}

SourceNoise SourceNoise::cholNormal(
    const torch::Tensor& cholMean, const torch::Tensor& cholStd, double scale)
{
    WFM_CHECK(cholMean.defined() && cholMean.dim() == 2 && cholMean.size(0) == cholMean.size(1)
            && cholMean.size(0) >= 1,
        "source noise: the Cholesky mean must be [d,d]");
    WFM_CHECK(cholStd.defined() && cholStd.sizes() == cholMean.sizes(),
        "source noise: the Cholesky std must be [d,d] like the mean");
    WFM_CHECK(std::isfinite(scale) && scale > 0.0, "source noise: scale must be > 0, got ", scale);
    SourceNoise n;
    n.m_kind = NoiseKind::CholNormal;
    n.m_dim = cholMean.size(0);
    n.m_scale = scale;
    n.m_cholMean = torch::tril(cholMean.to(torch::kCPU, torch::kFloat)).contiguous();
    n.m_cholStd = torch::tril(cholStd.to(torch::kCPU, torch::kFloat)).contiguous();
    checkFinite(n.m_cholMean, "the Cholesky mean");
    checkFinite(n.m_cholStd, "the Cholesky std");
    WFM_CHECK((n.m_cholStd >= 0).all().item<bool>(), "source noise: negative Cholesky std");
    return n;
}

SourceNoise SourceNoise::uniform(const torch::Tensor& lower, const torch::Tensor& upper)
{
    WFM_CHECK(lower.defined() && lower.dim() == 1 && lower.size(0) >= 1,
        "source noise: the lower corner must be [d]");
    WFM_CHECK(upper.defined() && upper.sizes() == lower.sizes(),
        "source noise: the upper corner must be [d] like the lower one");
    SourceNoise n;
    n.m_kind = NoiseKind::Uniform;
    n.m_dim = lower.size(0);
    n.m_lower = lower.to(torch::kCPU, torch::kFloat).contiguous();
    n.m_upper = upper.to(torch::kCPU, torch::kFloat).contiguous();
    checkFinite(n.m_lower, "the lower corner");
    checkFinite(n.m_upper, "the upper corner");
    WFM_CHECK((n.m_lower <= n.m_upper).all().item<bool>(),
        "source noise: lower corner above the upper one");
    return n;
}

SourceNoise SourceNoise::fromClouds(const PointCloudDataset& sources, CloudPairing pairing)
{
    WFM_CHECK(sources.count() > 0, "source noise: the source cloud dataset is empty");
    sources.validate("source clouds" + (sources.source.empty() ? "" : " " + sources.source));
    SourceNoise n;
    n.m_kind = NoiseKind::Clouds;
    n.m_dim = sources.dim();
    n.m_pairing = pairing;
    n.m_sources = sources;
    n.m_sources.points = sources.points.contiguous();
    return n;
}

torch::Tensor SourceNoise::sample(
    const torch::Tensor& weights, const torch::Tensor& indices, torch::Generator& generator) const
{
    WFM_CHECK(m_dim >= 1, "source noise: not initialised (dimension 0)");
    WFM_CHECK(weights.defined() && weights.dim() == 2, "source noise: weights must be [B,n], got ",
        weights.defined() ? weights.sizes() : torch::IntArrayRef {});
    const std::int64_t B = weights.size(0);
    const std::int64_t n = weights.size(1);
    const std::int64_t d = m_dim;
    const torch::Tensor live = (weights.to(torch::kCPU) > 0);
    const auto fopt = torch::TensorOptions().dtype(torch::kFloat);
    torch::Tensor x;
    switch (m_kind) {
    case NoiseKind::StandardNormal:
        x = torch::randn({ B, n, d }, generator, fopt);
        break;
    case NoiseKind::Uniform:
        x = torch::rand({ B, n, d }, generator, fopt) * (m_upper - m_lower) + m_lower;
        break;
    case NoiseKind::CholNormal: {
        // Reference sample_noise: L = Lbar + Z * S * tril(1); diag -> |diag| + 1e-6;
        // x = scale * L g.
        const torch::Tensor Z = torch::randn({ B, d, d }, generator, fopt);
        torch::Tensor L = m_cholMean + Z * m_cholStd * torch::tril(torch::ones({ d, d }, fopt));
        torch::Tensor diag = L.diagonal(0, 1, 2);
        diag.copy_(diag.abs() + kDiagFloor);
        const torch::Tensor g = torch::randn({ B, n, d }, generator, fopt);
        x = torch::matmul(g, L.transpose(1, 2)) * m_scale;
        break;
    }
    case NoiseKind::Clouds: {
        const std::int64_t K = m_sources.count();
        torch::Tensor src;
        if (m_pairing == CloudPairing::ByIndex) {
            WFM_CHECK(indices.defined() && indices.dim() == 1 && indices.size(0) == B,
                "source noise: paired source clouds need indices [", B, "]");
            src = indices.to(torch::kCPU, torch::kLong);
            WFM_CHECK(B == 0 || ((src >= 0) & (src < K)).all().item<bool>(),
                "source noise: a target index is out of range of the ", K, " source clouds");
        } else {
            src = torch::randint(K, { B }, generator, torch::kLong);
        }
        x = torch::zeros({ B, n, d }, fopt);
        const auto* s = src.data_ptr<std::int64_t>();
        for (std::int64_t b = 0; b < B; ++b) {
            const torch::Tensor slots = live[b].nonzero().squeeze(1);
            const std::int64_t k = slots.size(0);
            if (k == 0) {
                continue;
            }
            const torch::Tensor cloud = m_sources.cloud(s[b]);
            const std::int64_t m = cloud.size(0);
            torch::Tensor rows = torch::randperm(m, generator, torch::kLong);
            if (m >= k) {
                rows = rows.narrow(0, 0, k);
            } else {
                rows = torch::cat({ rows, torch::randint(m, { k - m }, generator, torch::kLong) });
            }
            x[b].index_put_({ slots }, cloud.index_select(0, rows));
        }
        break;
    }
    }
    x = torch::where(live.unsqueeze(-1), x, torch::zeros_like(x));
    return x.to(weights.device());
}

torch::Tensor SourceNoise::sample(
    const torch::Tensor& weights, const torch::Tensor& indices, std::uint64_t seed) const
{
    torch::Generator gen = at::detail::createCPUGenerator(seed);
    return sample(weights, indices, gen);
}

std::string SourceNoise::toJsonString() const
{
    nlohmann::json j;
    j["kind"] = noiseKindName(m_kind);
    j["dim"] = m_dim;
    switch (m_kind) {
    case NoiseKind::StandardNormal:
        break;
    case NoiseKind::CholNormal:
        j["scale"] = m_scale;
        j["chol_mean"] = tensorToJson(m_cholMean);
        j["chol_std"] = tensorToJson(m_cholStd);
        break;
    case NoiseKind::Uniform:
        j["lower"] = tensorToJson(m_lower);
        j["upper"] = tensorToJson(m_upper);
        break;
    case NoiseKind::Clouds:
        j["pairing"] = m_pairing == CloudPairing::ByIndex ? "by_index" : "random";
        j["source"] = m_sources.source;
        j["count"] = m_sources.count();
        break;
    }
    return j.dump();
}

SourceNoise SourceNoise::fromJsonString(const std::string& text, const PointCloudDataset* sources)
{
    try {
        const nlohmann::json j = nlohmann::json::parse(text);
        WFM_CHECK(j.is_object(), "source noise JSON must be an object");
        const NoiseKind kind = parseNoiseKind(j.at("kind").get<std::string>());
        const auto d = j.at("dim").get<std::int64_t>();
        WFM_CHECK(d >= 1, "source noise JSON: dim must be >= 1, got ", d);
        switch (kind) {
        case NoiseKind::StandardNormal:
            return standardNormal(d);
        case NoiseKind::CholNormal:
            return cholNormal(matrixFromJson(j, d, "chol_mean"), matrixFromJson(j, d, "chol_std"),
                j.at("scale").get<double>());
        case NoiseKind::Uniform:
            return uniform(vectorFromJson(j, d, "lower"), vectorFromJson(j, d, "upper"));
        case NoiseKind::Clouds: {
            const auto pairingName = j.at("pairing").get<std::string>();
            WFM_CHECK(pairingName == "by_index" || pairingName == "random",
                "source noise JSON: pairing must be by_index or random, got '", pairingName, "'");
            const auto count = j.at("count").get<std::int64_t>();
            PointCloudDataset loaded;
            if (sources == nullptr) {
                loaded = loadPointClouds(j.at("source").get<std::string>());
                sources = &loaded;
            }
            WFM_CHECK(sources->count() == count && sources->dim() == d,
                "source noise JSON: the source clouds have ", sources->count(), " clouds in ",
                sources->dim(), "-D, the checkpoint expects ", count, " in ", d, "-D");
            return fromClouds(*sources,
                pairingName == "by_index" ? CloudPairing::ByIndex : CloudPairing::Random);
        }
        }
    } catch (const nlohmann::json::exception& e) {
        throw ConfigError(std::string("source noise JSON: ") + e.what());
    }
    throw ConfigError("source noise JSON: unknown kind");
}

} // namespace wfm::data
