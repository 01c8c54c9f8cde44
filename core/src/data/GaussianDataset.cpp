#include "wfm/data/GaussianDataset.h"

#include "NpzArchive.h"

#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Npy.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>

namespace wfm::data {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kSymmetryTol = 1e-5; // relative asymmetry a float32 covariance may carry
constexpr double kNoiseJitter = 1e-6; // relative ridge on Wishart draws

std::vector<std::int64_t> toVector(const torch::Tensor& t)
{
    const torch::Tensor c = t.to(torch::kCPU, torch::kLong).contiguous();
    const auto* p = c.data_ptr<std::int64_t>();
    return { p, p + c.numel() };
}

torch::Tensor longTensor(const std::vector<std::int64_t>& v)
{
    return torch::tensor(v, torch::kLong).reshape({ static_cast<std::int64_t>(v.size()) });
}

std::int64_t firstTrue(const torch::Tensor& rows)
{
    const torch::Tensor nz = rows.reshape({ -1 }).nonzero();
    return nz.numel() == 0 ? -1 : nz[0][0].item<std::int64_t>();
}

torch::Tensor symmetrize(const torch::Tensor& S) { return (S + S.transpose(-1, -2)) * 0.5; }


// ---- builtin option parsing ----

struct OptionReader
{
    std::string family;
    const std::map<std::string, std::string>& options;

    const std::string* find(const char* key) const
    {
        const auto it = options.find(key);
        return it == options.end() ? nullptr : &it->second;
    }
    [[noreturn]] void bad(const char* key, const std::string& v, const char* expected) const
    {
        throw ConfigError("builtin:" + family + ": option '" + key + "' must be " + expected
            + ", got '" + v + "'");
    }
    std::int64_t integer(const char* key, std::int64_t def) const
    {
        const std::string* v = find(key);
        if (v == nullptr) {
            return def;
        }
        std::size_t used = 0;
        std::int64_t out = 0;
        try {
            out = std::stoll(*v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != v->size()) {
            bad(key, *v, "an integer");
        }
        return out;
    }
    std::uint64_t unsignedInt(const char* key, std::uint64_t def) const
    {
        const std::string* v = find(key);
        if (v == nullptr) {
            return def;
        }
        std::size_t used = 0;
        std::uint64_t out = 0;
        try {
            out = std::stoull(*v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != v->size() || (*v)[0] == '-') {
            bad(key, *v, "a non-negative integer");
        }
        return out;
    }
    double number(const char* key, double def) const
    {
        const std::string* v = find(key);
        if (v == nullptr) {
            return def;
        }
        std::size_t used = 0;
        double out = 0;
        try {
            out = std::stod(*v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != v->size() || !std::isfinite(out)) {
            bad(key, *v, "a finite number");
        }
        return out;
    }
};

GaussianDataset readGaussianNpz(const std::string& path)
{
    const auto members = npz::readNpzMembers(path, { "means", "covariances", "labels", "label_names" });
    auto array = [&](const std::string& key, bool required) -> torch::Tensor {
        const auto it = members.find(key);
        if (it == members.end()) {
            if (required) {
                std::string has;
                for (const auto& [k, v] : members) {
                    has += (has.empty() ? "" : ", ") + k;
                }
                throw DatasetError(path + ": array '" + key
                    + "' is missing (a Gaussian archive holds means [M,d] and covariances "
                      "[M,d,d]; has: "
                    + has + ")");
            }
            return {};
        }
        return parseNpy(it->second, path + ":" + key + ".npy");
    };
    const torch::Tensor means = array("means", true);
    const torch::Tensor covs = array("covariances", true);
    if (!means.is_floating_point() || means.dim() != 2 || means.size(0) < 1 || means.size(1) < 1) {
        throw DatasetError(detail::concat(path, ": 'means' must be a non-empty floating array [M,d], got ",
            means.scalar_type(), " ", means.sizes()));
    }
    const std::int64_t M = means.size(0);
    const std::int64_t d = means.size(1);
    if (!covs.is_floating_point() || covs.dim() != 3 || covs.size(0) != M || covs.size(1) != d
        || covs.size(2) != d) {
        throw DatasetError(detail::concat(path, ": 'covariances' must be a floating array [", M, ",",
            d, ",", d, "] like 'means' ", means.sizes(), ", got ", covs.scalar_type(), " ",
            covs.sizes()));
    }
    GaussianDataset data;
    data.means = means.to(torch::kFloat).contiguous();
    data.covariances = covs.to(torch::kFloat).contiguous();
    const torch::Tensor labels = array("labels", false);
    if (labels.defined()) {
        if (labels.is_floating_point() || labels.scalar_type() == torch::kBool || labels.dim() != 1
            || labels.size(0) != M) {
            throw DatasetError(detail::concat(path, ": 'labels' must be an integer array [", M,
                "], got ", labels.scalar_type(), " ", labels.sizes()));
        }
        data.labels = labels.to(torch::kLong).contiguous();
        const auto it = members.find("label_names");
        if (it != members.end()) {
            data.labelNames = npz::parseLabelNames(it->second, path + ":label_names.npy");
        } else {
            const std::int64_t maxLabel = data.labels.max().item<std::int64_t>();
            for (std::int64_t l = 0; l <= maxLabel; ++l) {
                data.labelNames.push_back(std::to_string(l));
            }
        }
    }
    data.name = npz::stemOf(path);
    return data;
}

} // namespace

// ================================ GaussianDataset ================================

GaussianDataset GaussianDataset::subset(const std::vector<std::int64_t>& indices) const
{
    const std::int64_t M = count();
    for (const std::int64_t i : indices) {
        WFM_CHECK(i >= 0 && i < M, "subset: index ", i, " out of range [0, ", M, ")");
    }
    const torch::Tensor idx = longTensor(indices);
    GaussianDataset out;
    out.name = name;
    out.source = source;
    out.labelNames = labelNames;
    out.means = means.index_select(0, idx).contiguous();
    out.covariances = covariances.index_select(0, idx).contiguous();
    if (labels.defined()) {
        out.labels = labels.index_select(0, idx);
    }
    return out;
}

GaussianDataset GaussianDataset::clone() const
{
    GaussianDataset out = *this;
    auto deep = [](const torch::Tensor& t) { return t.defined() ? t.clone() : t; };
    out.means = deep(means);
    out.covariances = deep(covariances);
    out.labels = deep(labels);
    return out;
}

GaussianSplit GaussianDataset::split(double testFraction, std::uint64_t seed) const
{
    // The point-cloud split, so a family and its moment-matched Gaussians split row for row.
    SplitIndices idx = stratifiedSplit(count(), labels, testFraction, seed);
    GaussianSplit out;
    out.trainIndices = std::move(idx.train);
    out.testIndices = std::move(idx.test);
    out.train = subset(out.trainIndices);
    out.test = subset(out.testIndices);
    return out;
}

void GaussianDataset::validate(const std::string& what) const
{
    auto fail = [&](const std::string& problem) { throw DatasetError(what + ": " + problem); };
    if (!means.defined() || means.dim() != 2 || means.scalar_type() != torch::kFloat) {
        fail(detail::concat("means must be a float32 [M,d] tensor, got ",
            means.defined() ? detail::concat(means.scalar_type(), " ", means.sizes()) : "none"));
    }
    const std::int64_t M = count();
    const std::int64_t d = dim();
    if (d < 1) {
        fail("means have dimension 0");
    }
    if (!covariances.defined() || covariances.dim() != 3 || covariances.size(0) != M
        || covariances.size(1) != d || covariances.size(2) != d
        || covariances.scalar_type() != torch::kFloat) {
        fail(detail::concat("covariances must be a float32 [", M, ",", d, ",", d, "] tensor, got ",
            covariances.defined()
                ? detail::concat(covariances.scalar_type(), " ", covariances.sizes())
                : "none"));
    }
    if (M > 0) {
        const torch::Tensor m = means.cpu();
        const torch::Tensor S = covariances.cpu().to(torch::kDouble);
        if (const std::int64_t k = firstTrue(~torch::isfinite(m).all(1)); k >= 0) {
            fail(detail::concat("means: row ", k, " has a non-finite value"));
        }
        if (const std::int64_t k = firstTrue(~torch::isfinite(S).flatten(1).all(1)); k >= 0) {
            fail(detail::concat("covariances: row ", k, " has a non-finite value"));
        }
        const torch::Tensor asym = (S - S.transpose(1, 2)).abs().flatten(1).amax(1);
        const torch::Tensor mag = S.abs().flatten(1).amax(1);
        if (const std::int64_t k = firstTrue(asym > kSymmetryTol * mag); k >= 0) {
            fail(detail::concat("covariances: row ", k, " is not symmetric (max |S - S^T| = ",
                asym[k].item<double>(), ")"));
        }
        const torch::Tensor lo = std::get<0>(torch::linalg_eigvalsh(symmetrize(S), "L").min(1));
        if (const std::int64_t k = firstTrue(~(lo > 0)); k >= 0) {
            fail(detail::concat("covariances: row ", k,
                " is not positive definite (smallest eigenvalue ", lo[k].item<double>(), ")"));
        }
    }
    if (labels.defined()) {
        if (labels.dim() != 1 || labels.size(0) != M || labels.scalar_type() != torch::kLong) {
            fail(detail::concat("labels must be int64 [", M, "]"));
        }
        if (labelNames.empty()) {
            fail("labels come without label names");
        }
        const torch::Tensor l = labels.cpu();
        const auto L = static_cast<std::int64_t>(labelNames.size());
        if (const std::int64_t k = firstTrue((l < 0) | (l >= L)); k >= 0) {
            fail(detail::concat("labels: row ", k, " has label ", l[k].item<std::int64_t>(),
                ", out of range [0, ", L, ")"));
        }
    } else if (!labelNames.empty()) {
        fail("has label names but no labels");
    }
}

std::string GaussianDataset::summaryText() const
{
    std::ostringstream os;
    os << "gaussians: " << count() << "\n"
       << "dim: " << dim() << "\n";
    if (count() > 0 && covariances.defined()) {
        const torch::Tensor S = covariances.to(torch::kDouble);
        const torch::Tensor ev = torch::linalg_eigvalsh(symmetrize(S), "L");
        os << std::setprecision(4) << "mean covariance trace: "
           << S.diagonal(0, 1, 2).sum(1).mean().item<double>() << "\n"
           << "covariance eigenvalues: min " << ev.min().item<double>() << ", max "
           << ev.max().item<double>() << "\n";
    }
    if (labels.defined()) {
        std::vector<std::int64_t> counts(labelNames.size(), 0);
        for (const std::int64_t l : toVector(labels)) {
            if (l >= 0 && l < static_cast<std::int64_t>(counts.size())) {
                ++counts[static_cast<std::size_t>(l)];
            }
        }
        os << "labels (" << labelNames.size() << "):";
        for (std::size_t i = 0; i < labelNames.size(); ++i) {
            os << (i == 0 ? " " : ", ") << labelNames[i] << " " << counts[i];
        }
        os << "\n";
    } else {
        os << "labels: none\n";
    }
    auto bytes = [](const torch::Tensor& t) {
        return t.defined() ? static_cast<std::int64_t>(t.numel() * t.element_size()) : 0;
    };
    os << "memory: " << (bytes(means) + bytes(covariances) + bytes(labels)) << " B\n";
    return os.str();
}

GaussianDataset GaussianDataset::fromPointClouds(const PointCloudDataset& clouds, double ridge)
{
    WFM_CHECK(clouds.count() > 0, "fromPointClouds: the point-cloud dataset is empty");
    WFM_CHECK(std::isfinite(ridge) && ridge >= 0.0, "fromPointClouds: ridge must be >= 0, got ",
        ridge);
    const torch::Tensor x = clouds.points.to(torch::kCPU, torch::kDouble);  // [K,N,d]
    const torch::Tensor w = clouds.weights.to(torch::kCPU, torch::kDouble); // [K,N], 0 = padding
    const torch::Tensor wn = w / w.sum(1, true).clamp_min(1e-300);
    const torch::Tensor m = (wn.unsqueeze(-1) * x).sum(1);                  // [K,d]
    const torch::Tensor xc = (x - m.unsqueeze(1)) * wn.sqrt().unsqueeze(-1);
    torch::Tensor S = xc.transpose(1, 2).matmul(xc);
    const std::int64_t d = clouds.dim();
    S = symmetrize(S) + ridge * torch::eye(d, S.options());
    GaussianDataset out;
    out.means = m.to(torch::kFloat).contiguous();
    out.covariances = S.to(torch::kFloat).contiguous();
    if (clouds.labels.defined()) {
        out.labels = clouds.labels.to(torch::kCPU, torch::kLong).contiguous();
        out.labelNames = clouds.labelNames;
    }
    out.name = clouds.name;
    out.source = clouds.source;
    return out;
}

// ================================ built-in families ================================

GaussianSpiralPoint gaussianSpiralAt(double s)
{
    const double theta = kSpiralTheta0 + s * (kSpiralTheta1 - kSpiralTheta0);
    const double r = kSpiralR0 + kSpiralGrowth * theta;
    GaussianSpiralPoint p;
    p.x = r * std::cos(theta);
    p.y = r * std::sin(theta);
    // d/dtheta [r (cos, sin)] = r' (cos, sin) + r (-sin, cos)
    const double tx = kSpiralGrowth * std::cos(theta) - r * std::sin(theta);
    const double ty = kSpiralGrowth * std::sin(theta) + r * std::cos(theta);
    const double n = std::hypot(tx, ty);
    p.tx = tx / n;
    p.ty = ty / n;
    p.majorStd = kSpiralMajor0 + s * (kSpiralMajor1 - kSpiralMajor0);
    p.minorStd = kSpiralMinorRatio * p.majorStd;
    return p;
}

torch::Tensor gaussianRing3dCovariance(double phi)
{
    const double c = std::cos(phi), s = std::sin(phi);
    const double ch = std::cos(phi / 2), sh = std::sin(phi / 2);
    const double et[3] = { -s, c, 0.0 };
    const double u[3] = { ch * c, ch * s, sh };
    const double w[3] = { -sh * c, -sh * s, ch };
    torch::Tensor S = torch::zeros({ 3, 3 }, torch::kDouble);
    auto* p = S.data_ptr<double>();
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
            p[i * 3 + j] = kRingStd[0] * kRingStd[0] * et[i] * et[j]
                + kRingStd[1] * kRingStd[1] * u[i] * u[j] + kRingStd[2] * kRingStd[2] * w[i] * w[j];
        }
    }
    return S;
}

namespace {

const torch::Tensor& eig8Basis()
{
    static const torch::Tensor q0 = [] {
        Rng rng(kEig8BasisSeed);
        torch::Tensor g = torch::empty({ 8, 8 }, torch::kDouble);
        auto* p = g.data_ptr<double>();
        for (int i = 0; i < 64; ++i) {
            p[i] = rng.normal();
        }
        auto [q, r] = torch::linalg_qr(g);
        return (q * torch::sign(r.diagonal()).unsqueeze(0)).contiguous();
    }();
    return q0;
}

} // namespace

torch::Tensor gaussianEig8Eigenvalues(const torch::Tensor& means)
{
    WFM_CHECK(means.defined() && means.dim() == 2 && means.size(1) == 8,
        "gaussian-eig8: means must be [M,8], got ", means.defined() ? means.sizes() : torch::IntArrayRef {});
    const torch::Tensor m = means.to(torch::kCPU, torch::kDouble);
    const torch::Tensor k = torch::arange(8, torch::kDouble).unsqueeze(0);
    return kEig8Base * torch::exp(-kEig8Decay * k + kEig8Gain * torch::tanh(m));
}

torch::Tensor gaussianEig8Covariances(const torch::Tensor& means)
{
    const torch::Tensor lambda = gaussianEig8Eigenvalues(means); // checks the shape
    const torch::Tensor m = means.to(torch::kCPU, torch::kDouble);
    const std::int64_t M = m.size(0);
    const torch::Tensor a = torch::full({ 8 }, 1.0 / std::sqrt(8.0), torch::kDouble);
    const torch::Tensor outer = m.unsqueeze(2) * a.view({ 1, 1, 8 });
    const torch::Tensor K = kEig8Twist * (outer - outer.transpose(1, 2));
    const torch::Tensor I = torch::eye(8, torch::kDouble).expand({ M, 8, 8 });
    const torch::Tensor C = torch::linalg_solve(I - K, I + K);
    const torch::Tensor V = eig8Basis().unsqueeze(0).matmul(C);
    return symmetrize((V * lambda.unsqueeze(1)).matmul(V.transpose(1, 2)));
}

std::vector<std::string> gaussianBuiltinNames()
{
    return { "gaussian-eig8", "gaussian-ring3d", "gaussian-spiral" };
}

bool isGaussianBuiltin(const std::string& name)
{
    const auto names = gaussianBuiltinNames();
    return std::find(names.begin(), names.end(), name) != names.end();
}

std::map<std::string, std::string> gaussianBuiltinOptions(const std::string& name)
{
    if (name == "gaussian-spiral" || name == "gaussian-ring3d") {
        return { { "count", "1000" }, { "seed", "0" }, { "noise", "0" } };
    }
    if (name == "gaussian-eig8") {
        return { { "count", "1000" }, { "seed", "0" } };
    }
    std::string valid;
    for (const auto& n : gaussianBuiltinNames()) {
        valid += (valid.empty() ? "" : ", ") + n;
    }
    throw ConfigError("unknown Gaussian family '" + name + "' (valid: " + valid + ")");
}

GaussianDataset makeGaussianBuiltin(
    const std::string& name, const std::map<std::string, std::string>& options)
{
    const auto valid = gaussianBuiltinOptions(name); // throws for unknown names
    for (const auto& [key, value] : options) {
        if (valid.count(key) == 0) {
            std::string keys;
            for (const auto& [k, v] : valid) {
                keys += (keys.empty() ? "" : ", ") + k;
            }
            throw ConfigError(
                "builtin:" + name + ": unknown option '" + key + "' (valid: " + keys + ")");
        }
    }
    const OptionReader opt { name, options };
    const std::int64_t M = opt.integer("count", 1000);
    const std::uint64_t seed = opt.unsignedInt("seed", 0);
    const double noise = valid.count("noise") != 0 ? opt.number("noise", 0.0) : 0.0;
    WFM_CHECK(M >= 1, "builtin:", name, ": option 'count' must be >= 1, got ", M);
    WFM_CHECK(noise >= 0.0, "builtin:", name, ": option 'noise' must be >= 0, got ", noise);

    GaussianDataset out;
    if (name == "gaussian-spiral") {
        out.means = torch::empty({ M, 2 }, torch::kDouble);
        out.covariances = torch::empty({ M, 2, 2 }, torch::kDouble);
        auto* mp = out.means.data_ptr<double>();
        auto* sp = out.covariances.data_ptr<double>();
        for (std::int64_t k = 0; k < M; ++k) {
            Rng rng(seed, static_cast<std::uint64_t>(k));
            const GaussianSpiralPoint p = gaussianSpiralAt(rng.uniform());
            mp[2 * k] = p.x + (noise > 0 ? noise * rng.normal() : 0.0);
            mp[2 * k + 1] = p.y + (noise > 0 ? noise * rng.normal() : 0.0);
            const double a2 = p.majorStd * p.majorStd, b2 = p.minorStd * p.minorStd;
            // a^2 t t^T + b^2 n n^T with n = (-ty, tx)
            sp[4 * k] = a2 * p.tx * p.tx + b2 * p.ty * p.ty;
            sp[4 * k + 1] = (a2 - b2) * p.tx * p.ty;
            sp[4 * k + 2] = sp[4 * k + 1];
            sp[4 * k + 3] = a2 * p.ty * p.ty + b2 * p.tx * p.tx;
        }
    } else if (name == "gaussian-ring3d") {
        out.means = torch::empty({ M, 3 }, torch::kDouble);
        out.covariances = torch::empty({ M, 3, 3 }, torch::kDouble);
        auto* mp = out.means.data_ptr<double>();
        for (std::int64_t k = 0; k < M; ++k) {
            Rng rng(seed, static_cast<std::uint64_t>(k));
            const double phi = 2.0 * kPi * rng.uniform();
            mp[3 * k] = kRingRadius * std::cos(phi) + (noise > 0 ? noise * rng.normal() : 0.0);
            mp[3 * k + 1] = kRingRadius * std::sin(phi) + (noise > 0 ? noise * rng.normal() : 0.0);
            mp[3 * k + 2] = noise > 0 ? noise * rng.normal() : 0.0;
            out.covariances[k].copy_(gaussianRing3dCovariance(phi));
        }
    } else { // gaussian-eig8
        out.means = torch::empty({ M, 8 }, torch::kDouble);
        auto* mp = out.means.data_ptr<double>();
        for (std::int64_t k = 0; k < M; ++k) {
            Rng rng(seed, static_cast<std::uint64_t>(k));
            for (int i = 0; i < 8; ++i) {
                mp[8 * k + i] = rng.normal();
            }
        }
        out.covariances = gaussianEig8Covariances(out.means);
    }
    out.means = out.means.to(torch::kFloat).contiguous();
    out.covariances = symmetrize(out.covariances).to(torch::kFloat).contiguous();
    out.name = name;
    out.source = "builtin:" + name;
    out.validate(out.source);
    return out;
}

// ================================ specs and files ================================

bool isGaussianSpec(const std::string& spec)
{
    try {
        const DataSpec s = parseDataSpec(spec);
        if (s.scheme == "builtin") {
            return s.path.rfind("gaussian-", 0) == 0;
        }
        if (s.scheme == "npz") {
            return npz::npzHasMember(s.path, "means");
        }
    } catch (const std::exception&) {
        return false;
    }
    return false;
}

GaussianDataset loadGaussians(const std::string& specText)
{
    const DataSpec spec = parseDataSpec(specText);
    GaussianDataset data;
    if (spec.scheme == "builtin" && spec.path.rfind("gaussian-", 0) == 0) {
        data = makeGaussianBuiltin(spec.path, spec.options);
    } else if (spec.scheme == "npz" && npz::npzHasMember(spec.path, "means")) {
        if (!spec.options.empty()) {
            throw ConfigError("data spec '" + specText + "': unknown option '"
                + spec.options.begin()->first + "' (npz: takes no options)");
        }
        data = readGaussianNpz(spec.path);
    } else {
        data = GaussianDataset::fromPointClouds(loadPointClouds(spec));
    }
    data.source = specText;
    data.validate(specText);
    return data;
}

void writeGaussianNpz(const std::string& path, const GaussianDataset& data)
{
    data.validate("writeGaussianNpz(" + path + ")");
    NpzArchive arrays;
    arrays["means"] = data.means.contiguous();
    arrays["covariances"] = data.covariances.contiguous();
    if (data.hasLabels()) {
        arrays["labels"] = data.labels;
        std::string joined;
        for (const std::string& n : data.labelNames) {
            WFM_CHECK(n.find('\n') == std::string::npos, "writeGaussianNpz: label name '", n,
                "' contains a newline");
            joined += n + "\n";
        }
        torch::Tensor bytes = torch::empty({ static_cast<std::int64_t>(joined.size()) }, torch::kByte);
        std::memcpy(bytes.data_ptr(), joined.data(), joined.size());
        arrays["label_names"] = bytes;
    }
    writeNpz(path, arrays, /*compress=*/true);
}

// ================================ normalisation ================================

GaussianNormalization GaussianNormalization::fit(const GaussianDataset& train, Kind kind)
{
    WFM_CHECK(kind != Kind::PerCloud,
        "Gaussian normalization: per_cloud is not defined for Gaussians (use none, "
        "global_minmax or standardize)");
    WFM_CHECK(train.count() > 0, "Gaussian normalization: cannot fit on an empty dataset");
    GaussianNormalization n;
    n.kind = kind;
    if (kind == Kind::None) {
        return n;
    }
    const torch::Tensor x = train.means.to(torch::kCPU, torch::kDouble);
    torch::Tensor c;
    double s = 1.0;
    if (kind == Kind::GlobalMinMax) {
        const torch::Tensor lo = std::get<0>(x.min(0));
        const torch::Tensor hi = std::get<0>(x.max(0));
        c = (lo + hi) / 2.0;
        s = ((hi - lo) / 2.0).max().item<double>();
    } else {
        c = x.mean(0);
        s = std::sqrt((x - c).pow(2).sum().item<double>() / static_cast<double>(x.numel()));
    }
    if (!(s > 0.0) || !std::isfinite(s)) {
        s = 1.0;
    }
    n.scale = s;
    const torch::Tensor cc = c.contiguous();
    n.center.assign(cc.data_ptr<double>(), cc.data_ptr<double>() + cc.numel());
    return n;
}

namespace {
void checkGaussianPair(const torch::Tensor& means, const torch::Tensor& covs, std::size_t d)
{
    WFM_CHECK(means.defined() && means.dim() >= 1 && means.is_floating_point(),
        "Gaussian normalization: means must be a floating [..., d] tensor");
    WFM_CHECK(covs.defined() && covs.dim() == means.dim() + 1 && covs.is_floating_point()
            && covs.size(-1) == means.size(-1) && covs.size(-2) == means.size(-1),
        "Gaussian normalization: covariances must be [..., d, d] matching means ", means.sizes(),
        ", got ", covs.defined() ? covs.sizes() : torch::IntArrayRef {});
    WFM_CHECK(d == 0 || static_cast<std::int64_t>(d) == means.size(-1),
        "Gaussian normalization: fitted for dimension ", d, ", means have ", means.size(-1));
}
} // namespace

std::pair<torch::Tensor, torch::Tensor> GaussianNormalization::apply(
    const torch::Tensor& means, const torch::Tensor& covs) const
{
    checkGaussianPair(means, covs, center.size());
    if (kind == Kind::None || center.empty()) {
        return { means.clone(), covs.clone() };
    }
    const torch::Tensor c
        = torch::tensor(center, torch::kDouble).to(means.device(), means.scalar_type());
    return { (means - c) / scale, covs / (scale * scale) };
}

std::pair<torch::Tensor, torch::Tensor> GaussianNormalization::invert(
    const torch::Tensor& means, const torch::Tensor& covs) const
{
    checkGaussianPair(means, covs, center.size());
    if (kind == Kind::None || center.empty()) {
        return { means.clone(), covs.clone() };
    }
    const torch::Tensor c
        = torch::tensor(center, torch::kDouble).to(means.device(), means.scalar_type());
    return { means * scale + c, covs * (scale * scale) };
}

GaussianDataset GaussianNormalization::apply(const GaussianDataset& data) const
{
    GaussianDataset out = data;
    if (data.count() > 0) {
        auto [m, S] = apply(data.means, data.covariances);
        out.means = m.contiguous();
        out.covariances = S.contiguous();
    }
    return out;
}

std::string GaussianNormalization::toJsonString() const
{
    nlohmann::json j;
    j["kind"] = Normalization::kindName(kind);
    j["center"] = center;
    j["scale"] = scale;
    return j.dump();
}

GaussianNormalization GaussianNormalization::fromJsonString(const std::string& text)
{
    const Normalization base = Normalization::fromJsonString(text);
    WFM_CHECK(base.kind != Kind::PerCloud,
        "Gaussian normalization JSON: per_cloud is not defined for Gaussians");
    GaussianNormalization n;
    n.kind = base.kind;
    n.center = base.center;
    n.scale = base.scale;
    return n;
}

// ================================ batches ================================

GaussianBatchSampler::GaussianBatchSampler(
    const GaussianDataset& data, int batchSize, std::uint64_t seed)
    : m_data(data)
    , m_batchSize(batchSize)
    , m_seed(seed)
{
    WFM_CHECK(data.count() > 0, "Gaussian batch sampler: the dataset is empty");
    WFM_CHECK(batchSize >= 1, "Gaussian batch sampler: batch size must be >= 1, got ", batchSize);
    m_data.means = data.means.to(torch::kCPU, torch::kFloat).contiguous();
    m_data.covariances = data.covariances.to(torch::kCPU, torch::kFloat).contiguous();
    if (data.labels.defined()) {
        m_data.labels = data.labels.to(torch::kCPU, torch::kLong).contiguous();
    }
}

GaussianBatch GaussianBatchSampler::next() { return batchAt(m_step++); }

GaussianBatch GaussianBatchSampler::batchAt(std::uint64_t s) const
{
    Rng rng(m_seed, s);
    std::vector<std::int64_t> idx(static_cast<std::size_t>(m_batchSize));
    for (auto& i : idx) {
        i = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(m_data.count())));
    }
    GaussianBatch out;
    out.indices = longTensor(idx);
    out.means = m_data.means.index_select(0, out.indices);
    out.covariances = m_data.covariances.index_select(0, out.indices);
    if (m_data.labels.defined()) {
        out.labels = m_data.labels.index_select(0, out.indices);
    }
    return out;
}

// ================================ noise ================================

std::string gaussianNoiseKindName(GaussianNoiseKind kind)
{
    switch (kind) {
    case GaussianNoiseKind::Wishart:
        return "wishart";
    case GaussianNoiseKind::StandardNormal:
        return "standard_normal";
    case GaussianNoiseKind::Gaussians:
        return "gaussians";
    }
    return "standard_normal";
}

GaussianNoiseKind parseGaussianNoiseKind(const std::string& name)
{
    for (const auto k :
        { GaussianNoiseKind::Wishart, GaussianNoiseKind::StandardNormal, GaussianNoiseKind::Gaussians }) {
        if (name == gaussianNoiseKindName(k)) {
            return k;
        }
    }
    if (name == "normal") {
        return GaussianNoiseKind::StandardNormal;
    }
    throw ConfigError("unknown Gaussian noise '" + name
        + "' (valid: wishart, standard_normal (or normal), gaussians)");
}

GaussianNoise GaussianNoise::fit(GaussianNoiseKind kind, const GaussianDataset& train, double dof)
{
    WFM_CHECK(kind != GaussianNoiseKind::Gaussians,
        "Gaussian noise: 'gaussians' is not fitted; build it with GaussianNoise::fromGaussians");
    WFM_CHECK(train.count() > 0, "Gaussian noise: cannot fit on an empty dataset");
    if (kind == GaussianNoiseKind::StandardNormal) {
        return standardNormal(train.dim(), dof);
    }
    const torch::Tensor m = train.means.to(torch::kCPU, torch::kDouble);
    const torch::Tensor S = train.covariances.to(torch::kCPU, torch::kDouble);
    const torch::Tensor center = m.mean(0);
    const torch::Tensor std = (m - center).pow(2).mean(0).sqrt();
    double c = S.diagonal(0, 1, 2).mean().item<double>();
    if (!(c > 0.0) || !std::isfinite(c)) {
        c = 1.0;
    }
    return wishart(center, std, c, dof);
}

GaussianNoise GaussianNoise::standardNormal(std::int64_t dim, double dof)
{
    WFM_CHECK(dim >= 1, "Gaussian noise: dimension must be >= 1, got ", dim);
    GaussianNoise n = wishart(torch::zeros({ dim }, torch::kDouble), torch::ones({ dim }, torch::kDouble),
        1.0, dof);
    n.m_kind = GaussianNoiseKind::StandardNormal;
    return n;
}

GaussianNoise GaussianNoise::wishart(
    const torch::Tensor& meanCenter, const torch::Tensor& meanStd, double covScale, double dof)
{
    WFM_CHECK(meanCenter.defined() && meanCenter.dim() == 1 && meanCenter.size(0) >= 1,
        "Gaussian noise: meanCenter must be [d]");
    WFM_CHECK(meanStd.defined() && meanStd.dim() == 1 && meanStd.size(0) == meanCenter.size(0),
        "Gaussian noise: meanStd must be [", meanCenter.size(0), "]");
    WFM_CHECK(torch::isfinite(meanCenter).all().item<bool>()
            && torch::isfinite(meanStd).all().item<bool>() && (meanStd >= 0).all().item<bool>(),
        "Gaussian noise: meanCenter must be finite and meanStd finite and >= 0");
    WFM_CHECK(std::isfinite(covScale) && covScale > 0.0, "Gaussian noise: covScale must be > 0, got ",
        covScale);
    WFM_CHECK(std::isfinite(dof) && dof >= 1.0,
        "Gaussian noise: the degrees-of-freedom scale must be >= 1, got ", dof);
    GaussianNoise n;
    n.m_kind = GaussianNoiseKind::Wishart;
    n.m_dim = meanCenter.size(0);
    n.m_meanCenter = meanCenter.to(torch::kCPU, torch::kFloat).contiguous();
    n.m_meanStd = meanStd.to(torch::kCPU, torch::kFloat).contiguous();
    n.m_covScale = covScale;
    n.m_dof = dof;
    return n;
}

GaussianNoise GaussianNoise::fromGaussians(const GaussianDataset& sources, CloudPairing pairing)
{
    WFM_CHECK(sources.count() > 0, "Gaussian noise: the source dataset is empty");
    sources.validate(sources.source.empty() ? "source Gaussians" : sources.source);
    GaussianNoise n;
    n.m_kind = GaussianNoiseKind::Gaussians;
    n.m_dim = sources.dim();
    n.m_pairing = pairing;
    n.m_sources = sources;
    return n;
}

std::int64_t GaussianNoise::degreesOfFreedom() const
{
    return std::max<std::int64_t>(
        m_dim, static_cast<std::int64_t>(std::ceil(m_dof * static_cast<double>(m_dim) - 1e-9)));
}

std::pair<torch::Tensor, torch::Tensor> GaussianNoise::sample(
    std::int64_t B, const torch::Tensor& indices, torch::Generator& gen) const
{
    WFM_CHECK(B >= 0, "Gaussian noise: batch size must be >= 0, got ", B);
    WFM_CHECK(m_dim >= 1, "Gaussian noise: not fitted (dimension 0)");
    const std::int64_t d = m_dim;
    if (m_kind == GaussianNoiseKind::Gaussians) {
        torch::Tensor rows;
        if (m_pairing == CloudPairing::ByIndex) {
            WFM_CHECK(indices.defined() && indices.dim() == 1 && indices.size(0) == B,
                "Gaussian noise: pairing by index needs indices [", B, "]");
            rows = indices.to(torch::kCPU, torch::kLong);
            if (B > 0) {
                const std::int64_t lo = rows.min().item<std::int64_t>();
                const std::int64_t hi = rows.max().item<std::int64_t>();
                WFM_CHECK(lo >= 0 && hi < m_sources.count(), "Gaussian noise: index ",
                    lo < 0 ? lo : hi, " out of range of the ", m_sources.count(),
                    " source Gaussians (pairing by index)");
            }
        } else {
            rows = torch::randint(m_sources.count(), { B }, gen, torch::kLong);
        }
        return { m_sources.means.index_select(0, rows).to(torch::kFloat).contiguous(),
            m_sources.covariances.index_select(0, rows).to(torch::kFloat).contiguous() };
    }
    const auto opts = torch::TensorOptions().dtype(torch::kDouble);
    const torch::Tensor g = torch::randn({ B, d }, gen, opts);
    const torch::Tensor means
        = m_meanCenter.to(torch::kDouble).unsqueeze(0) + m_meanStd.to(torch::kDouble).unsqueeze(0) * g;
    const std::int64_t n = degreesOfFreedom();
    const torch::Tensor z = torch::randn({ B, n, d }, gen, opts);
    torch::Tensor S = z.transpose(1, 2).matmul(z) * (m_covScale / static_cast<double>(n));
    S = symmetrize(S) + (kNoiseJitter * m_covScale) * torch::eye(d, opts);
    return { means.to(torch::kFloat).contiguous(), S.to(torch::kFloat).contiguous() };
}

std::string GaussianNoise::toJsonString() const
{
    nlohmann::json j;
    j["kind"] = gaussianNoiseKindName(m_kind);
    j["dim"] = m_dim;
    if (m_kind == GaussianNoiseKind::Gaussians) {
        j["pairing"] = m_pairing == CloudPairing::ByIndex ? "by_index" : "random";
        j["source"] = m_sources.source;
        j["count"] = m_sources.count();
    } else {
        auto vec = [](const torch::Tensor& t) {
            const torch::Tensor c = t.to(torch::kDouble).contiguous();
            return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
        };
        j["dof"] = m_dof;
        j["mean_center"] = vec(m_meanCenter);
        j["mean_std"] = vec(m_meanStd);
        j["cov_scale"] = m_covScale;
    }
    return j.dump();
}

GaussianNoise GaussianNoise::fromJsonString(const std::string& text, const GaussianDataset* sources)
{
    try {
        const nlohmann::json j = nlohmann::json::parse(text);
        WFM_CHECK(j.is_object(), "Gaussian noise JSON must be an object");
        const GaussianNoiseKind kind = parseGaussianNoiseKind(j.at("kind").get<std::string>());
        const auto dim = j.at("dim").get<std::int64_t>();
        WFM_CHECK(dim >= 1, "Gaussian noise JSON: dim must be >= 1, got ", dim);
        if (kind == GaussianNoiseKind::Gaussians) {
            const std::string pairing = j.at("pairing").get<std::string>();
            WFM_CHECK(pairing == "by_index" || pairing == "random",
                "Gaussian noise JSON: pairing must be by_index or random, got '", pairing, "'");
            const auto count = j.at("count").get<std::int64_t>();
            const GaussianDataset loaded
                = sources != nullptr ? *sources : loadGaussians(j.at("source").get<std::string>());
            WFM_CHECK(loaded.count() == count && loaded.dim() == dim,
                "Gaussian noise JSON: the source Gaussians have ", loaded.count(), " x d=",
                loaded.dim(), ", the checkpoint expects ", count, " x d=", dim);
            return fromGaussians(loaded,
                pairing == "by_index" ? CloudPairing::ByIndex : CloudPairing::Random);
        }
        const auto center = j.at("mean_center").get<std::vector<double>>();
        const auto stdv = j.at("mean_std").get<std::vector<double>>();
        WFM_CHECK(static_cast<std::int64_t>(center.size()) == dim
                && static_cast<std::int64_t>(stdv.size()) == dim,
            "Gaussian noise JSON: mean_center and mean_std must have ", dim, " entries");
        GaussianNoise n = wishart(torch::tensor(center, torch::kDouble),
            torch::tensor(stdv, torch::kDouble), j.at("cov_scale").get<double>(),
            j.at("dof").get<double>());
        n.m_kind = kind;
        return n;
    } catch (const nlohmann::json::exception& e) {
        throw ConfigError(std::string("Gaussian noise JSON: ") + e.what());
    }
}

} // namespace wfm::data
