#include "wfm/data/PointCloudDataset.h"

#include "wfm/Error.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>

namespace wfm::data {
namespace {

// ---- random numbers ----

std::uint64_t splitMix64(std::uint64_t& x)
{
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/// Bijective 64-bit mix (the SplitMix64 finaliser).
std::uint64_t mix64(std::uint64_t z)
{
    std::uint64_t x = z;
    return splitMix64(x);
}

constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// ---- tensor helpers ----

torch::Tensor cpuFloat(const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat).contiguous(); }

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

/// Mask [K,N] of the live slots of a dataset (slot i < sizes[k]).
torch::Tensor liveMask(const PointCloudDataset& d)
{
    return torch::arange(d.maxPoints(), torch::kLong).unsqueeze(0) < d.sizes.unsqueeze(1);
}

std::int64_t bytesOf(const torch::Tensor& t)
{
    return t.defined() ? static_cast<std::int64_t>(t.numel() * t.element_size()) : 0;
}

[[noreturn]] void datasetFail(const std::string& what, const std::string& problem)
{
    throw DatasetError(what + ": " + problem);
}

/// First row of a [K] bool tensor that is true, or -1.
std::int64_t firstTrue(const torch::Tensor& rows)
{
    const torch::Tensor nz = rows.nonzero();
    return nz.numel() == 0 ? -1 : nz[0][0].item<std::int64_t>();
}

std::string formatBytes(std::int64_t bytes)
{
    std::ostringstream os;
    os << std::fixed << std::setprecision(1);
    if (bytes >= (std::int64_t { 1 } << 30)) {
        os << static_cast<double>(bytes) / (1 << 30) << " GiB";
    } else if (bytes >= (1 << 20)) {
        os << static_cast<double>(bytes) / (1 << 20) << " MiB";
    } else if (bytes >= (1 << 10)) {
        os << static_cast<double>(bytes) / (1 << 10) << " KiB";
    } else {
        os << bytes << " B";
    }
    return os.str();
}

} // namespace

// ================================ Rng ================================

Rng::Rng(std::uint64_t seed, std::uint64_t stream)
{
    std::uint64_t x = mix64(seed ^ mix64(stream + 0x632BE59BD9B4E019ULL));
    for (auto& s : m_s) {
        s = splitMix64(x);
    }
}

std::uint64_t Rng::nextU64()
{
    const std::uint64_t result = rotl(m_s[1] * 5, 7) * 9;
    const std::uint64_t t = m_s[1] << 17;
    m_s[2] ^= m_s[0];
    m_s[3] ^= m_s[1];
    m_s[1] ^= m_s[2];
    m_s[0] ^= m_s[3];
    m_s[2] ^= t;
    m_s[3] = rotl(m_s[3], 45);
    return result;
}

double Rng::uniform() { return static_cast<double>(nextU64() >> 11) * 0x1.0p-53; }

std::uint64_t Rng::below(std::uint64_t n)
{
    WFM_CHECK(n > 0, "Rng::below: n must be positive");
    // Lemire's nearly divisionless method.
    unsigned __int128 m = static_cast<unsigned __int128>(nextU64()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
        const std::uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            m = static_cast<unsigned __int128>(nextU64()) * n;
            low = static_cast<std::uint64_t>(m);
        }
    }
    return static_cast<std::uint64_t>(m >> 64);
}

std::int64_t Rng::between(std::int64_t lo, std::int64_t hi)
{
    WFM_CHECK(lo <= hi, "Rng::between: empty range [", lo, ", ", hi, "]");
    const auto span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
    if (span == std::numeric_limits<std::uint64_t>::max()) {
        return static_cast<std::int64_t>(nextU64());
    }
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + below(span + 1));
}

double Rng::normal()
{
    if (m_hasSpare) {
        m_hasSpare = false;
        return m_spare;
    }
    double u = 0.0;
    double v = 0.0;
    double s = 0.0;
    do {
        u = 2.0 * uniform() - 1.0;
        v = 2.0 * uniform() - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    m_spare = v * f;
    m_hasSpare = true;
    return u * f;
}

// ================================ summary ================================

std::string DatasetSummary::toText() const
{
    std::ostringstream os;
    os << "clouds: " << count << "\n"
       << "dim: " << dim << "\n"
       << "points per cloud: min " << minSize << ", mean " << std::fixed << std::setprecision(1)
       << meanSize << ", max " << maxSize << " (padded to " << maxPoints << ")\n"
       << "total points: " << totalPoints << "\n";
    if (!labelNames.empty()) {
        os << "labels (" << labelNames.size() << "):";
        for (std::size_t i = 0; i < labelNames.size(); ++i) {
            os << (i == 0 ? " " : ", ") << labelNames[i] << " "
               << (i < labelCounts.size() ? labelCounts[i] : 0);
        }
        os << "\n";
    } else if (condDim > 0) {
        os << "conditioning: vectors of " << condDim << "\n";
    } else {
        os << "labels: none\n";
    }
    os << "memory: " << formatBytes(memoryBytes) << "\n";
    return os.str();
}

// ================================ PointCloudDataset ================================

PointCloudDataset PointCloudDataset::fromClouds(const std::vector<torch::Tensor>& clouds)
{
    WFM_CHECK(!clouds.empty(), "fromClouds: no clouds");
    const std::int64_t K = static_cast<std::int64_t>(clouds.size());
    std::int64_t d = -1;
    std::int64_t nmax = 0;
    for (std::int64_t k = 0; k < K; ++k) {
        const torch::Tensor& c = clouds[static_cast<std::size_t>(k)];
        WFM_CHECK(c.defined() && c.dim() == 2, "fromClouds: cloud ", k, " must be [n,d]");
        WFM_CHECK(c.size(0) >= 1, "fromClouds: cloud ", k, " is empty");
        WFM_CHECK(d < 0 || c.size(1) == d, "fromClouds: cloud ", k, " has dimension ", c.size(1),
            ", cloud 0 has ", d);
        d = c.size(1);
        nmax = std::max(nmax, c.size(0));
    }
    PointCloudDataset out;
    out.points = torch::zeros({ K, nmax, d }, torch::kFloat);
    out.weights = torch::zeros({ K, nmax }, torch::kFloat);
    out.sizes = torch::empty({ K }, torch::kLong);
    auto* sz = out.sizes.data_ptr<std::int64_t>();
    for (std::int64_t k = 0; k < K; ++k) {
        const torch::Tensor c = cpuFloat(clouds[static_cast<std::size_t>(k)]);
        const std::int64_t n = c.size(0);
        out.points[k].narrow(0, 0, n).copy_(c);
        out.weights[k].narrow(0, 0, n).fill_(1.0 / static_cast<double>(n));
        sz[k] = n;
    }
    return out;
}

PointCloudDataset PointCloudDataset::fromPadded(
    const torch::Tensor& points, const torch::Tensor& weights, const std::string& what)
{
    WFM_CHECK(points.defined() && points.dim() == 3, what, ": points must be [K,N,d], got ",
        points.defined() ? points.sizes() : torch::IntArrayRef {});
    WFM_CHECK(weights.defined() && weights.dim() == 2 && weights.size(0) == points.size(0)
            && weights.size(1) == points.size(1),
        what, ": weights must be [K,N] = [", points.size(0), ",", points.size(1), "], got ",
        weights.defined() ? weights.sizes() : torch::IntArrayRef {});
    const torch::Tensor p = cpuFloat(points);
    const torch::Tensor w = weights.to(torch::kCPU, torch::kDouble).contiguous();
    const std::int64_t K = p.size(0);
    const std::int64_t N = p.size(1);
    const std::int64_t d = p.size(2);
    const auto* wp = w.data_ptr<double>();
    std::vector<std::int64_t> sizes(static_cast<std::size_t>(K), 0);
    for (std::int64_t k = 0; k < K; ++k) {
        for (std::int64_t i = 0; i < N; ++i) {
            const double wi = wp[k * N + i];
            if (!std::isfinite(wi) || wi < 0.0) {
                datasetFail(what,
                    detail::concat("cloud ", k, ": weight ", i, " is ", wi,
                        " (weights must be finite and >= 0; 0 marks padding)"));
            }
            sizes[static_cast<std::size_t>(k)] += wi > 0.0 ? 1 : 0;
        }
        if (sizes[static_cast<std::size_t>(k)] == 0) {
            datasetFail(what, detail::concat("cloud ", k, " has no point with positive weight"));
        }
    }
    const std::int64_t nmax = K == 0 ? 0 : *std::max_element(sizes.begin(), sizes.end());
    PointCloudDataset out;
    out.points = torch::zeros({ K, nmax, d }, torch::kFloat);
    out.weights = torch::zeros({ K, nmax }, torch::kFloat);
    out.sizes = longTensor(sizes);
    const auto* src = p.data_ptr<float>();
    auto* dst = out.points.data_ptr<float>();
    auto* dw = out.weights.data_ptr<float>();
    for (std::int64_t k = 0; k < K; ++k) {
        double total = 0.0;
        for (std::int64_t i = 0; i < N; ++i) {
            total += wp[k * N + i];
        }
        std::int64_t j = 0;
        for (std::int64_t i = 0; i < N; ++i) {
            const double wi = wp[k * N + i];
            if (wi > 0.0) {
                std::memcpy(dst + (k * nmax + j) * d, src + (k * N + i) * d, sizeof(float) * d);
                dw[k * nmax + j] = static_cast<float>(wi / total);
                ++j;
            }
        }
    }
    return out;
}

PointCloudDataset PointCloudDataset::fromPacked(
    const torch::Tensor& points, const torch::Tensor& sizes, const std::string& what)
{
    WFM_CHECK(points.defined() && points.dim() == 2, what, ": packed points must be [total,d], got ",
        points.defined() ? points.sizes() : torch::IntArrayRef {});
    WFM_CHECK(sizes.defined() && sizes.dim() == 1, what, ": sizes must be [K], got ",
        sizes.defined() ? sizes.sizes() : torch::IntArrayRef {});
    WFM_CHECK(!sizes.is_floating_point() && !sizes.is_complex() && sizes.scalar_type() != torch::kBool,
        what, ": sizes must be integers, got ", sizes.scalar_type());
    const std::vector<std::int64_t> n = toVector(sizes);
    std::int64_t total = 0;
    for (std::size_t k = 0; k < n.size(); ++k) {
        if (n[k] < 1) {
            datasetFail(what, detail::concat("cloud ", k, " has size ", n[k], " (must be >= 1)"));
        }
        total += n[k];
    }
    if (total != points.size(0)) {
        datasetFail(what,
            detail::concat("sizes add up to ", total, " but there are ", points.size(0),
                " points"));
    }
    const torch::Tensor p = cpuFloat(points);
    const std::int64_t K = static_cast<std::int64_t>(n.size());
    const std::int64_t d = p.size(1);
    const std::int64_t nmax = K == 0 ? 0 : *std::max_element(n.begin(), n.end());
    PointCloudDataset out;
    out.points = torch::zeros({ K, nmax, d }, torch::kFloat);
    out.weights = torch::zeros({ K, nmax }, torch::kFloat);
    out.sizes = longTensor(n);
    std::int64_t offset = 0;
    for (std::int64_t k = 0; k < K; ++k) {
        const std::int64_t nk = n[static_cast<std::size_t>(k)];
        out.points[k].narrow(0, 0, nk).copy_(p.narrow(0, offset, nk));
        out.weights[k].narrow(0, 0, nk).fill_(1.0 / static_cast<double>(nk));
        offset += nk;
    }
    return out;
}

std::int64_t PointCloudDataset::size(std::int64_t k) const
{
    WFM_CHECK(k >= 0 && k < count(), "cloud index ", k, " out of range [0, ", count(), ")");
    return sizes[k].item<std::int64_t>();
}

torch::Tensor PointCloudDataset::cloud(std::int64_t k) const
{
    return points[k].narrow(0, 0, size(k));
}

PointCloudDataset PointCloudDataset::clone() const
{
    PointCloudDataset out = *this;
    auto deep = [](const torch::Tensor& t) { return t.defined() ? t.clone() : t; };
    out.points = deep(points);
    out.weights = deep(weights);
    out.sizes = deep(sizes);
    out.labels = deep(labels);
    out.cond = deep(cond);
    return out;
}

PointCloudDataset PointCloudDataset::subset(const std::vector<std::int64_t>& indices) const
{
    const std::int64_t K = count();
    for (const std::int64_t i : indices) {
        WFM_CHECK(i >= 0 && i < K, "subset: index ", i, " out of range [0, ", K, ")");
    }
    const torch::Tensor idx = longTensor(indices);
    PointCloudDataset out;
    out.name = name;
    out.source = source;
    out.labelNames = labelNames;
    out.sizes = sizes.index_select(0, idx);
    const std::int64_t nmax = indices.empty() ? 0 : out.sizes.max().item<std::int64_t>();
    out.points = points.index_select(0, idx).narrow(1, 0, nmax).contiguous();
    out.weights = weights.index_select(0, idx).narrow(1, 0, nmax).contiguous();
    if (labels.defined()) {
        out.labels = labels.index_select(0, idx);
    }
    if (cond.defined()) {
        out.cond = cond.index_select(0, idx);
    }
    return out;
}

SplitIndices stratifiedSplit(std::int64_t count, const torch::Tensor& labels, double testFraction, std::uint64_t seed)
{
    WFM_CHECK(std::isfinite(testFraction) && testFraction >= 0.0 && testFraction < 1.0,
        "split: the test fraction must be in [0, 1), got ", testFraction);
    // Groups of rows to split separately: one per label, or all rows.
    std::vector<std::vector<std::int64_t>> groups;
    if (labels.defined()) {
        WFM_CHECK(labels.numel() == count, "split: ", labels.numel(), " labels for ", count, " rows");
        const std::vector<std::int64_t> lab = toVector(labels);
        std::int64_t maxLabel = -1;
        for (const std::int64_t l : lab) {
            WFM_CHECK(l >= 0, "split: negative label ", l);
            maxLabel = std::max(maxLabel, l);
        }
        groups.resize(static_cast<std::size_t>(maxLabel + 1));
        for (std::int64_t k = 0; k < count; ++k) {
            groups[static_cast<std::size_t>(lab[static_cast<std::size_t>(k)])].push_back(k);
        }
    } else {
        groups.emplace_back(static_cast<std::size_t>(count));
        std::iota(groups[0].begin(), groups[0].end(), std::int64_t { 0 });
    }
    Rng rng(seed, 0x5EB17ULL);
    SplitIndices out;
    for (auto& g : groups) {
        // Fisher-Yates shuffle of the group, then its first nTest rows go to the test set.
        for (std::size_t i = g.size(); i > 1; --i) {
            std::swap(g[i - 1], g[rng.below(i)]);
        }
        const auto nTest = static_cast<std::ptrdiff_t>(std::llround(testFraction * static_cast<double>(g.size())));
        out.test.insert(out.test.end(), g.begin(), g.begin() + nTest);
        out.train.insert(out.train.end(), g.begin() + nTest, g.end());
    }
    std::sort(out.train.begin(), out.train.end());
    std::sort(out.test.begin(), out.test.end());
    return out;
}

DatasetSplit PointCloudDataset::split(double testFraction, std::uint64_t seed) const
{
    SplitIndices idx = stratifiedSplit(count(), labels, testFraction, seed);
    DatasetSplit out;
    out.trainIndices = std::move(idx.train);
    out.testIndices = std::move(idx.test);
    out.train = subset(out.trainIndices);
    out.test = subset(out.testIndices);
    return out;
}

DatasetSummary PointCloudDataset::summary() const
{
    DatasetSummary s;
    s.count = count();
    s.dim = dim();
    s.maxPoints = maxPoints();
    if (s.count > 0) {
        const torch::Tensor sz = sizes.to(torch::kLong);
        s.minSize = sz.min().item<std::int64_t>();
        s.maxSize = sz.max().item<std::int64_t>();
        s.totalPoints = sz.sum().item<std::int64_t>();
        s.meanSize = static_cast<double>(s.totalPoints) / static_cast<double>(s.count);
    }
    s.labelNames = labelNames;
    if (labels.defined()) {
        s.labelCounts.assign(labelNames.size(), 0);
        for (const std::int64_t l : toVector(labels)) {
            if (l >= 0 && l < static_cast<std::int64_t>(s.labelCounts.size())) {
                ++s.labelCounts[static_cast<std::size_t>(l)];
            }
        }
    }
    s.condDim = condDim();
    s.memoryBytes = bytesOf(points) + bytesOf(weights) + bytesOf(sizes) + bytesOf(labels)
        + bytesOf(cond);
    return s;
}

void PointCloudDataset::validate(const std::string& what) const
{
    auto fail = [&](const std::string& problem) { datasetFail(what, problem); };
    if (!points.defined() || points.dim() != 3) {
        fail("points must be a [K,N,d] tensor");
    }
    if (points.scalar_type() != torch::kFloat) {
        fail(detail::concat("points must be float32, got ", points.scalar_type()));
    }
    const std::int64_t K = count();
    const std::int64_t N = maxPoints();
    if (dim() < 1) {
        fail("points have dimension 0");
    }
    if (!weights.defined() || weights.dim() != 2 || weights.size(0) != K || weights.size(1) != N
        || weights.scalar_type() != torch::kFloat) {
        fail(detail::concat("weights must be float32 [", K, ",", N, "]"));
    }
    if (!sizes.defined() || sizes.dim() != 1 || sizes.size(0) != K
        || sizes.scalar_type() != torch::kLong) {
        fail(detail::concat("sizes must be int64 [", K, "]"));
    }
    const torch::Tensor p = points.cpu();
    const torch::Tensor w = weights.cpu();
    const torch::Tensor sz = sizes.cpu();
    if (K > 0) {
        if (std::int64_t k = firstTrue(sz < 1); k >= 0) {
            fail(detail::concat("cloud ", k, " is empty"));
        }
        if (std::int64_t k = firstTrue(sz > N); k >= 0) {
            fail(detail::concat("cloud ", k, " has size ", sz[k].item<std::int64_t>(),
                " > padded size ", N));
        }
        PointCloudDataset view;
        view.points = p;
        view.sizes = sz;
        const torch::Tensor live = liveMask(view);
        const torch::Tensor finite = torch::isfinite(p).all(2);
        if (std::int64_t k = firstTrue((live & ~finite).any(1)); k >= 0) {
            const std::int64_t i = firstTrue(live[k] & ~finite[k]);
            fail(detail::concat("cloud ", k, ", point ", i, " has a non-finite coordinate"));
        }
        if (std::int64_t k = firstTrue((~live & (p != 0).any(2)).any(1)); k >= 0) {
            fail(detail::concat("cloud ", k, " has non-zero padding coordinates"));
        }
        if (std::int64_t k = firstTrue((live & ~(w > 0)).any(1)); k >= 0) {
            fail(detail::concat("cloud ", k, " has a live point with weight <= 0 or NaN"));
        }
        if (std::int64_t k = firstTrue((~live & (w != 0)).any(1)); k >= 0) {
            fail(detail::concat("cloud ", k, " has non-zero padding weights"));
        }
        const torch::Tensor sums = w.to(torch::kDouble).sum(1);
        if (std::int64_t k = firstTrue((sums - 1.0).abs() > 1e-4); k >= 0) {
            fail(detail::concat("cloud ", k, " has weights summing to ", sums[k].item<double>(),
                " (must be 1)"));
        }
    }
    if (labels.defined() && cond.defined()) {
        fail("has both discrete labels and conditioning vectors");
    }
    if (labels.defined()) {
        if (labels.dim() != 1 || labels.size(0) != K || labels.scalar_type() != torch::kLong) {
            fail(detail::concat("labels must be int64 [", K, "]"));
        }
        if (labelNames.empty()) {
            fail("labels come without label names");
        }
        const torch::Tensor l = labels.cpu();
        const auto L = static_cast<std::int64_t>(labelNames.size());
        if (std::int64_t k = firstTrue((l < 0) | (l >= L)); k >= 0) {
            fail(detail::concat("cloud ", k, " has label ", l[k].item<std::int64_t>(),
                ", out of range [0, ", L, ")"));
        }
    } else if (!labelNames.empty()) {
        fail("has label names but no labels");
    }
    if (cond.defined()) {
        if (cond.dim() != 2 || cond.size(0) != K || cond.scalar_type() != torch::kFloat) {
            fail(detail::concat("conditioning vectors must be float32 [", K, ",c]"));
        }
        if (std::int64_t k = firstTrue(~torch::isfinite(cond.cpu()).all(1)); k >= 0) {
            fail(detail::concat("cloud ", k, " has a non-finite conditioning value"));
        }
    }
}

// ================================ Normalization ================================

namespace {

/// Live points of a dataset, packed: [total,d] float64.
torch::Tensor livePoints(const PointCloudDataset& d)
{
    return d.points.cpu().to(torch::kDouble).index({ liveMask(d).cpu() });
}

void checkPointsAndWeights(const torch::Tensor& points, const torch::Tensor& weights)
{
    WFM_CHECK(points.defined() && points.dim() >= 2, "normalization: points must be [..., N, d]");
    WFM_CHECK(points.is_floating_point(), "normalization: points must be floating point, got ",
        points.scalar_type());
    WFM_CHECK(weights.defined() && weights.dim() == points.dim() - 1
            && weights.sizes() == points.sizes().slice(0, points.dim() - 1),
        "normalization: weights must be [..., N] matching points ", points.sizes(), ", got ",
        weights.defined() ? weights.sizes() : torch::IntArrayRef {});
}

} // namespace

Normalization Normalization::fit(const PointCloudDataset& train, Kind kind)
{
    WFM_CHECK(train.count() > 0, "normalization: cannot fit on an empty dataset");
    Normalization n;
    n.kind = kind;
    if (kind == Kind::None || kind == Kind::PerCloud) {
        return n;
    }
    const torch::Tensor x = livePoints(train);
    WFM_CHECK(x.size(0) > 0, "normalization: the dataset has no live points");
    const std::int64_t d = x.size(1);
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
    n.center.resize(static_cast<std::size_t>(d));
    const auto* cp = c.contiguous().data_ptr<double>();
    std::copy(cp, cp + d, n.center.begin());
    return n;
}

torch::Tensor Normalization::apply(const torch::Tensor& points, const torch::Tensor& weights) const
{
    checkPointsAndWeights(points, weights);
    const torch::Tensor live = (weights > 0).unsqueeze(-1);
    switch (kind) {
    case Kind::None:
        return points.clone();
    case Kind::PerCloud: {
        const torch::Tensor x = torch::where(live, points, torch::zeros_like(points));
        const torch::Tensor w = torch::where(weights > 0, weights, torch::zeros_like(weights));
        const torch::Tensor wsum = w.sum(-1, true).clamp_min(1e-30);
        const torch::Tensor c = (w.unsqueeze(-1) * x).sum(-2, true) / wsum.unsqueeze(-1);
        const torch::Tensor r = torch::where(live, (x - c).norm(2, { -1 }, true),
            torch::zeros_like(x.narrow(-1, 0, 1)));
        torch::Tensor radius = std::get<0>(r.max(-2, true));
        radius = torch::where(radius > 0, radius, torch::ones_like(radius));
        return torch::where(live, (x - c) / radius, points);
    }
    case Kind::GlobalMinMax:
    case Kind::Standardize: {
        WFM_CHECK(static_cast<std::int64_t>(center.size()) == points.size(-1),
            "normalization: fitted for dimension ", center.size(), ", points have ",
            points.size(-1));
        const torch::Tensor c = torch::tensor(center, torch::kDouble)
                                    .to(points.device(), points.scalar_type());
        return torch::where(live, (points - c) / scale, points);
    }
    }
    return points.clone();
}

torch::Tensor Normalization::invert(const torch::Tensor& points, const torch::Tensor& weights) const
{
    checkPointsAndWeights(points, weights);
    if (kind == Kind::None || kind == Kind::PerCloud) {
        return points.clone();
    }
    WFM_CHECK(static_cast<std::int64_t>(center.size()) == points.size(-1),
        "normalization: fitted for dimension ", center.size(), ", points have ", points.size(-1));
    const torch::Tensor live = (weights > 0).unsqueeze(-1);
    const torch::Tensor c
        = torch::tensor(center, torch::kDouble).to(points.device(), points.scalar_type());
    return torch::where(live, points * scale + c, points);
}

PointCloudDataset Normalization::apply(const PointCloudDataset& data) const
{
    PointCloudDataset out = data;
    if (data.count() > 0) {
        out.points = apply(data.points, data.weights).contiguous();
    }
    return out;
}

std::string Normalization::kindName(Kind k)
{
    switch (k) {
    case Kind::None:
        return "none";
    case Kind::GlobalMinMax:
        return "global_minmax";
    case Kind::PerCloud:
        return "per_cloud";
    case Kind::Standardize:
        return "standardize";
    }
    return "none";
}

Normalization::Kind Normalization::parseKind(const std::string& name)
{
    for (const Kind k : { Kind::None, Kind::GlobalMinMax, Kind::PerCloud, Kind::Standardize }) {
        if (name == kindName(k)) {
            return k;
        }
    }
    if (name == "minmax") {
        return Kind::GlobalMinMax;
    }
    throw ConfigError("unknown normalization '" + name
        + "' (valid: none, global_minmax (or minmax), per_cloud, standardize)");
}

std::string Normalization::toJsonString() const
{
    nlohmann::json j;
    j["kind"] = kindName(kind);
    j["center"] = center;
    j["scale"] = scale;
    return j.dump();
}

Normalization Normalization::fromJsonString(const std::string& text)
{
    Normalization n;
    try {
        const nlohmann::json j = nlohmann::json::parse(text);
        WFM_CHECK(j.is_object(), "normalization JSON must be an object");
        n.kind = parseKind(j.at("kind").get<std::string>());
        n.center = j.value("center", std::vector<double> {});
        n.scale = j.value("scale", 1.0);
    } catch (const nlohmann::json::exception& e) {
        throw ConfigError(std::string("normalization JSON: ") + e.what());
    }
    WFM_CHECK(std::isfinite(n.scale) && n.scale > 0.0, "normalization JSON: scale must be > 0, got ",
        n.scale);
    for (const double c : n.center) {
        WFM_CHECK(std::isfinite(c), "normalization JSON: non-finite centre");
    }
    if (n.kind == Kind::GlobalMinMax || n.kind == Kind::Standardize) {
        WFM_CHECK(!n.center.empty(), "normalization JSON: '", kindName(n.kind),
            "' needs a centre");
    }
    return n;
}

// ================================ BatchSampler ================================

BatchSampler::BatchSampler(
    const PointCloudDataset& data, int batchSize, std::uint64_t seed, int subsamplePoints)
    : m_data(data)
    , m_batchSize(batchSize)
    , m_seed(seed)
    , m_subsample(subsamplePoints)
{
    WFM_CHECK(data.count() > 0, "batch sampler: the dataset is empty");
    WFM_CHECK(batchSize >= 1, "batch sampler: batch size must be >= 1, got ", batchSize);
    WFM_CHECK(subsamplePoints >= 0, "batch sampler: subsample size must be >= 0, got ",
        subsamplePoints);
    WFM_CHECK(data.points.dim() == 3 && data.weights.dim() == 2 && data.sizes.dim() == 1,
        "batch sampler: malformed dataset (call validate())");
    m_data.points = cpuFloat(data.points);
    m_data.weights = cpuFloat(data.weights);
    m_data.sizes = data.sizes.to(torch::kCPU, torch::kLong).contiguous();
}

Batch BatchSampler::next() { return batchAt(m_step++); }

Batch BatchSampler::batchAt(std::uint64_t s) const
{
    Rng rng(m_seed, s);
    const std::int64_t B = m_batchSize;
    const std::int64_t K = m_data.count();
    const std::int64_t N = m_data.maxPoints();
    const std::int64_t d = m_data.dim();
    const auto* sizes = m_data.sizes.data_ptr<std::int64_t>();

    std::vector<std::int64_t> idx(static_cast<std::size_t>(B));
    for (auto& i : idx) {
        i = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(K)));
    }
    // Point rows chosen per batch entry (all live rows unless subsampled).
    std::vector<std::vector<std::int64_t>> rows(static_cast<std::size_t>(B));
    std::int64_t n = 0;
    for (std::int64_t b = 0; b < B; ++b) {
        const std::int64_t nk = sizes[idx[static_cast<std::size_t>(b)]];
        auto& r = rows[static_cast<std::size_t>(b)];
        r.resize(static_cast<std::size_t>(nk));
        std::iota(r.begin(), r.end(), std::int64_t { 0 });
        if (m_subsample > 0 && nk > m_subsample) {
            // Partial Fisher-Yates: the first m entries become a uniform m-subset.
            for (std::int64_t i = 0; i < m_subsample; ++i) {
                const std::int64_t j
                    = i + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(nk - i)));
                std::swap(r[static_cast<std::size_t>(i)], r[static_cast<std::size_t>(j)]);
            }
            r.resize(static_cast<std::size_t>(m_subsample));
            std::sort(r.begin(), r.end());
        }
        n = std::max(n, static_cast<std::int64_t>(r.size()));
    }

    Batch out;
    out.indices = longTensor(idx);
    out.points = torch::zeros({ B, n, d }, torch::kFloat);
    out.weights = torch::zeros({ B, n }, torch::kFloat);
    const auto* src = m_data.points.data_ptr<float>();
    const auto* srcW = m_data.weights.data_ptr<float>();
    auto* dst = out.points.data_ptr<float>();
    auto* dstW = out.weights.data_ptr<float>();
    for (std::int64_t b = 0; b < B; ++b) {
        const std::int64_t k = idx[static_cast<std::size_t>(b)];
        const auto& r = rows[static_cast<std::size_t>(b)];
        double total = 0.0;
        for (const std::int64_t i : r) {
            total += srcW[k * N + i];
        }
        for (std::size_t j = 0; j < r.size(); ++j) {
            const std::int64_t i = r[j];
            std::memcpy(dst + (b * n + static_cast<std::int64_t>(j)) * d, src + (k * N + i) * d,
                sizeof(float) * d);
            dstW[b * n + static_cast<std::int64_t>(j)] = static_cast<float>(srcW[k * N + i] / total);
        }
    }
    if (m_data.labels.defined()) {
        out.labels = m_data.labels.index_select(0, out.indices);
    }
    if (m_data.cond.defined()) {
        out.cond = m_data.cond.index_select(0, out.indices);
    }
    return out;
}

} // namespace wfm::data
