#include "wfm/data/Niches.h"

#include "wfm/Error.h"
#include "wfm/data/CsvTable.h"

#include <torch/torch.h>

#include <Eigen/Dense>
#include <nanoflann.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

namespace wfm::data {
namespace {

std::int64_t parseInt(const std::string& what, const std::string& key, const std::string& text)
{
    std::int64_t v = 0;
    const auto res = std::from_chars(text.data(), text.data() + text.size(), v);
    if (res.ec != std::errc() || res.ptr != text.data() + text.size()) {
        throw ConfigError(what + ": option '" + key + "' must be an integer, got '" + text + "'");
    }
    return v;
}

bool parseBool(const std::string& what, const std::string& key, const std::string& text)
{
    if (text == "1" || text == "true" || text == "yes" || text == "on") {
        return true;
    }
    if (text == "0" || text == "false" || text == "no" || text == "off" || text.empty()) {
        return false;
    }
    throw ConfigError(what + ": option '" + key + "' must be 0 or 1, got '" + text + "'");
}

std::vector<std::string> splitList(const std::string& text)
{
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find(',', start), text.size());
        std::string item = text.substr(start, end - start);
        if (!item.empty()) {
            out.push_back(item);
        }
        start = end + 1;
    }
    return out;
}

std::string joinNames(const std::vector<std::string>& names, std::size_t limit = 40)
{
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < limit; ++i) {
        out += (i ? ", " : "") + names[i];
    }
    if (names.size() > limit) {
        out += detail::concat(", ... (", names.size(), " in all)");
    }
    return out;
}

/// nanoflann adaptor over a row-major [n,s] block of doubles.
struct PointBlock
{
    const std::vector<double>* xyz = nullptr;
    std::size_t dim = 2;
    std::size_t kdtree_get_point_count() const { return xyz->size() / dim; }
    double kdtree_get_pt(std::size_t i, std::size_t d) const { return (*xyz)[i * dim + d]; }
    template <class BBox>
    bool kdtree_get_bbox(BBox&) const
    {
        return false;
    }
};

using KdTree = nanoflann::KDTreeSingleIndexAdaptor<nanoflann::L2_Simple_Adaptor<double, PointBlock>,
    PointBlock, -1, std::size_t>;

/// Flips each column of `loadings` (and of `scores`) so its largest-magnitude entry is positive.
void flipSigns(torch::Tensor& loadings, torch::Tensor& scores)
{
    const torch::Tensor idx = loadings.abs().argmax(0);                          // [p]
    const torch::Tensor pick = loadings.gather(0, idx.unsqueeze(0)).squeeze(0); // [p]
    const torch::Tensor sign = torch::where(pick < 0, -torch::ones_like(pick), torch::ones_like(pick));
    loadings = loadings * sign.unsqueeze(0);
    scores = scores * sign.unsqueeze(0).to(scores.scalar_type());
}

/// Top-p eigenpairs (descending) of a symmetric double matrix [n,n].
void topEigen(const torch::Tensor& sym, std::int64_t p, torch::Tensor& vectors, torch::Tensor& values)
{
    const std::int64_t n = sym.size(0);
    const torch::Tensor s = sym.to(torch::kDouble).contiguous();
    Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> m(
        s.data_ptr<double>(), n, n);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(m);
    if (solver.info() != Eigen::Success) {
        throw Error("pcaScores: eigen-decomposition did not converge");
    }
    vectors = torch::empty({ n, p }, torch::kDouble);
    values = torch::empty({ p }, torch::kDouble);
    auto* v = vectors.data_ptr<double>();
    for (std::int64_t j = 0; j < p; ++j) {
        const Eigen::Index col = n - 1 - j; // ascending order in Eigen
        values[j] = std::max(0.0, solver.eigenvalues()(col));
        for (std::int64_t i = 0; i < n; ++i) {
            v[i * p + j] = solver.eigenvectors()(i, col);
        }
    }
}

/// Orthonormal basis of the columns of y [n,l] (thin Householder QR, double).
torch::Tensor orthonormalize(const torch::Tensor& y)
{
    const torch::Tensor yd = y.to(torch::kDouble).contiguous();
    const std::int64_t n = yd.size(0);
    const std::int64_t l = yd.size(1);
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m
        = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
            yd.data_ptr<double>(), n, l);
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(m);
    const Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(n, l);
    torch::Tensor out = torch::empty({ n, l }, torch::kDouble);
    auto* o = out.data_ptr<double>();
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = 0; j < l; ++j) {
            o[i * l + j] = q(i, j);
        }
    }
    return out;
}

/// Sorted distinct non-missing texts -> ids (missing -> -1).
torch::Tensor factorize(const std::vector<std::string>& texts, std::vector<std::string>& names)
{
    std::set<std::string> distinct;
    for (const std::string& t : texts) {
        if (!isCsvMissing(t)) {
            distinct.insert(t);
        }
    }
    names.assign(distinct.begin(), distinct.end());
    torch::Tensor ids = torch::empty({ static_cast<std::int64_t>(texts.size()) }, torch::kLong);
    auto* p = ids.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < texts.size(); ++i) {
        if (isCsvMissing(texts[i])) {
            p[i] = -1;
        } else {
            p[i] = std::lower_bound(names.begin(), names.end(), texts[i]) - names.begin();
        }
    }
    return ids;
}

const std::vector<std::string> kNicheKeys
    = { "k", "rep", "pcs", "norm", "centers", "include_center", "max_centers", "seed" };

} // namespace

void CellTable::validate(const std::string& what) const
{
    if (!positions.defined() || positions.dim() != 2 || positions.size(1) < 1
        || positions.size(1) > 3) {
        throw DatasetError(what + ": cell positions must be [C,2] or [C,3]");
    }
    const std::int64_t C = positions.size(0);
    if (C < 1) {
        throw DatasetError(what + ": no cells");
    }
    if (!torch::isfinite(positions).all().item<bool>()) {
        throw DatasetError(what + ": non-finite cell positions");
    }
    if (sections.defined()) {
        if (sections.dim() != 1 || sections.size(0) != C) {
            throw DatasetError(detail::concat(what, ": sections must be [", C, "], got ", sections.sizes()));
        }
        const auto S = static_cast<std::int64_t>(sectionNames.size());
        if ((sections < 0).any().item<bool>() || (sections >= S).any().item<bool>()) {
            throw DatasetError(detail::concat(what, ": section ids out of range [0,", S, ")"));
        }
    }
    if (expression.defined() && (expression.dim() != 2 || expression.size(0) != C)) {
        throw DatasetError(detail::concat(what, ": expression must be [", C, ",G], got ", expression.sizes()));
    }
    for (const auto& [name, rep] : representations) {
        if (rep.dim() != 2 || rep.size(0) != C) {
            throw DatasetError(detail::concat(what, ": representation '", name, "' must be [", C,
                ",f], got ", rep.sizes()));
        }
    }
    if (cellTypes.defined()) {
        if (cellTypes.dim() != 1 || cellTypes.size(0) != C) {
            throw DatasetError(detail::concat(what, ": cell types must be [", C, "], got ", cellTypes.sizes()));
        }
        const auto T = static_cast<std::int64_t>(typeNames.size());
        if ((cellTypes < -1).any().item<bool>() || (cellTypes >= T).any().item<bool>()) {
            throw DatasetError(detail::concat(what, ": cell type ids out of range [-1,", T, ")"));
        }
    }
}

std::map<std::string, std::string> nicheOptionDefaults()
{
    return { { "k", "16" }, { "rep", "pca" }, { "pcs", "16" }, { "norm", "log1p" }, { "centers", "" },
        { "include_center", "0" }, { "max_centers", "0" }, { "seed", "0" } };
}

NicheOptions parseNicheOptions(const std::map<std::string, std::string>& options, const std::string& what)
{
    NicheOptions o;
    auto get = [&](const char* key) -> const std::string* {
        const auto it = options.find(key);
        return it == options.end() ? nullptr : &it->second;
    };
    if (const auto* v = get("k")) {
        const std::int64_t k = parseInt(what, "k", *v);
        WFM_CHECK(k >= 1 && k <= 100000, what, ": k must be in [1, 100000], got ", k);
        o.k = static_cast<int>(k);
    }
    if (const auto* v = get("rep")) {
        WFM_CHECK(!v->empty(), what, ": option 'rep' is empty");
        o.rep = *v;
    }
    if (const auto* v = get("pcs")) {
        const std::int64_t p = parseInt(what, "pcs", *v);
        WFM_CHECK(p >= 1 && p <= 10000, what, ": pcs must be in [1, 10000], got ", p);
        o.pcs = static_cast<int>(p);
    }
    if (const auto* v = get("norm")) {
        if (*v == "log1p") {
            o.norm = ExpressionNorm::Log1p;
        } else if (*v == "none") {
            o.norm = ExpressionNorm::None;
        } else {
            throw ConfigError(what + ": norm must be log1p or none, got '" + *v + "'");
        }
    }
    if (const auto* v = get("centers")) {
        o.centers = splitList(*v);
    }
    if (const auto* v = get("include_center")) {
        o.includeCenter = parseBool(what, "include_center", *v);
    }
    if (const auto* v = get("max_centers")) {
        o.maxCenters = parseInt(what, "max_centers", *v);
        WFM_CHECK(o.maxCenters >= 0, what, ": max_centers must be >= 0, got ", o.maxCenters);
    }
    if (const auto* v = get("seed")) {
        std::uint64_t s = 0;
        const auto res = std::from_chars(v->data(), v->data() + v->size(), s);
        WFM_CHECK(res.ec == std::errc() && res.ptr == v->data() + v->size(), what,
            ": seed must be a non-negative integer, got '", *v, "'");
        o.seed = s;
    }
    return o;
}

void checkNicheKeys(const std::map<std::string, std::string>& options,
    const std::vector<std::string>& readerKeys, const std::string& scheme)
{
    std::vector<std::string> valid = readerKeys;
    valid.insert(valid.end(), kNicheKeys.begin(), kNicheKeys.end());
    for (const auto& [key, value] : options) {
        if (std::find(valid.begin(), valid.end(), key) == valid.end()) {
            std::vector<std::string> sorted = valid;
            std::sort(sorted.begin(), sorted.end());
            throw ConfigError(scheme + ": unknown option '" + key + "' (valid: " + joinNames(sorted) + ")");
        }
    }
}

torch::Tensor spatialNeighbors(const torch::Tensor& positions, const torch::Tensor& sections,
    const torch::Tensor& centers, int k, bool includeCenter)
{
    WFM_CHECK(positions.defined() && positions.dim() == 2 && positions.size(1) >= 1,
        "spatialNeighbors: positions must be [C,s]");
    WFM_CHECK(k >= 1, "spatialNeighbors: k must be >= 1, got ", k);
    const std::int64_t C = positions.size(0);
    const auto dim = static_cast<std::size_t>(positions.size(1));
    WFM_CHECK(!sections.defined() || (sections.dim() == 1 && sections.size(0) == C),
        "spatialNeighbors: sections must be [", C, "]");
    WFM_CHECK(centers.defined() && centers.dim() == 1, "spatialNeighbors: centers must be [M]");
    const torch::Tensor ctr = centers.to(torch::kLong).contiguous();
    const std::int64_t M = ctr.size(0);
    const auto* cp = ctr.data_ptr<std::int64_t>();
    for (std::int64_t m = 0; m < M; ++m) {
        WFM_CHECK(cp[m] >= 0 && cp[m] < C, "spatialNeighbors: centre index ", cp[m], " out of range [0,", C, ")");
    }
    const torch::Tensor pos = positions.to(torch::kDouble).contiguous();
    const auto* pp = pos.data_ptr<double>();
    const torch::Tensor sec = sections.defined() ? sections.to(torch::kLong).contiguous()
                                                 : torch::zeros({ C }, torch::kLong);
    const auto* sp = sec.data_ptr<std::int64_t>();

    // One tree per section; members[s] maps tree indices back to cells.
    std::map<std::int64_t, std::vector<std::int64_t>> members;
    for (std::int64_t c = 0; c < C; ++c) {
        members[sp[c]].push_back(c);
    }
    struct SectionTree
    {
        std::vector<double> xyz;
        PointBlock block;
        std::unique_ptr<KdTree> tree;
        const std::vector<std::int64_t>* cells = nullptr;
    };
    std::map<std::int64_t, SectionTree> trees;
    for (const auto& [s, cells] : members) {
        SectionTree& t = trees[s];
        t.cells = &cells;
        t.xyz.resize(cells.size() * dim);
        for (std::size_t i = 0; i < cells.size(); ++i) {
            for (std::size_t d = 0; d < dim; ++d) {
                t.xyz[i * dim + d] = pp[static_cast<std::size_t>(cells[i]) * dim + d];
            }
        }
        t.block.xyz = &t.xyz;
        t.block.dim = dim;
        t.tree = std::make_unique<KdTree>(static_cast<int>(dim), t.block,
            nanoflann::KDTreeSingleIndexAdaptorParams(16));
        t.tree->buildIndex();
    }

    torch::Tensor out = torch::full({ M, k }, -1, torch::kLong);
    auto* op = out.data_ptr<std::int64_t>();
    at::parallel_for(0, M, 64, [&](std::int64_t begin, std::int64_t end) {
        // Ask for k + 1 so the centre (or one point beyond the k-th) is always in the result.
        const std::size_t want = static_cast<std::size_t>(k) + 1;
        std::vector<std::size_t> idx(want);
        std::vector<double> dist(want);
        std::vector<std::pair<double, std::int64_t>> found;
        for (std::int64_t m = begin; m < end; ++m) {
            const std::int64_t c = cp[m];
            const SectionTree& t = trees.at(sp[c]);
            const std::size_t n = t.tree->knnSearch(pp + static_cast<std::size_t>(c) * dim,
                std::min(want, t.cells->size()), idx.data(), dist.data());
            found.clear();
            for (std::size_t i = 0; i < n; ++i) {
                const std::int64_t cell = (*t.cells)[idx[i]];
                if (cell != c) {
                    found.emplace_back(dist[i], cell);
                }
            }
            std::sort(found.begin(), found.end());
            std::int64_t j = 0;
            if (includeCenter) {
                op[m * k + j++] = c;
            }
            for (std::size_t i = 0; i < found.size() && j < k; ++i) {
                op[m * k + j++] = found[i].second;
            }
        }
    });
    return out;
}

torch::Tensor normalizeLog1p(const torch::Tensor& x, const std::string& what, double targetSum)
{
    WFM_CHECK(x.defined() && x.dim() == 2, "normalizeLog1p: x must be [C,G]");
    const torch::Tensor xd = x.to(torch::kDouble);
    if (!torch::isfinite(xd).all().item<bool>()) {
        throw DatasetError(what + ": expression holds non-finite values");
    }
    if ((xd < 0).any().item<bool>()) {
        throw DatasetError(what + ": expression holds negative values; log1p normalisation needs "
                                  "counts (use norm=none for normalised data)");
    }
    const torch::Tensor total = xd.sum(1, /*keepdim=*/true);
    const torch::Tensor scale = torch::where(total > 0, targetSum / total, torch::zeros_like(total));
    return torch::log1p(xd * scale).to(torch::kFloat);
}

PcaResult pcaScores(const torch::Tensor& x, const PcaOptions& o)
{
    WFM_CHECK(x.defined() && x.dim() == 2 && x.size(0) >= 1 && x.size(1) >= 1,
        "pcaScores: x must be a non-empty [C,G] matrix");
    WFM_CHECK(o.components >= 1, "pcaScores: components must be >= 1, got ", o.components);
    const std::int64_t C = x.size(0);
    const std::int64_t G = x.size(1);
    const std::int64_t p = std::min<std::int64_t>({ o.components, C, G });
    const double denom = static_cast<double>(std::max<std::int64_t>(C - 1, 1));
    PcaResult r;
    torch::Tensor loadings;
    torch::Tensor scores;
    torch::Tensor values;
    if (std::min(C, G) <= o.exactMaxDim) {
        const torch::Tensor xd = x.to(torch::kDouble);
        const torch::Tensor xc = xd - xd.mean(0, /*keepdim=*/true);
        torch::Tensor vecs;
        if (G <= C) {
            topEigen(torch::matmul(xc.t(), xc), p, vecs, values); // V, S^2
            loadings = vecs;
            scores = torch::matmul(xc, vecs);
        } else {
            topEigen(torch::matmul(xc, xc.t()), p, vecs, values); // U, S^2
            const torch::Tensor s = values.sqrt();
            scores = vecs * s.unsqueeze(0);
            loadings = torch::matmul(xc.t(), vecs) / s.clamp_min(1e-300).unsqueeze(0);
        }
    } else {
        // Randomised SVD (Halko et al. 2011, Alg. 4.4) on the implicitly centred matrix.
        const torch::Tensor xf = x.to(torch::kFloat);
        const torch::Tensor mu = xf.mean(0, /*keepdim=*/true);
        const torch::Tensor xc = xf - mu;
        const std::int64_t l = std::min<std::int64_t>(p + o.oversample, std::min(C, G));
        Rng rng(o.seed, 0x9CA);
        torch::Tensor omega = torch::empty({ G, l }, torch::kFloat);
        auto* om = omega.data_ptr<float>();
        for (std::int64_t i = 0; i < G * l; ++i) {
            om[i] = static_cast<float>(rng.normal());
        }
        torch::Tensor q = orthonormalize(torch::matmul(xc, omega));
        for (int it = 0; it < o.powerIterations; ++it) {
            const torch::Tensor z = orthonormalize(torch::matmul(xc.t(), q.to(torch::kFloat)));
            q = orthonormalize(torch::matmul(xc, z.to(torch::kFloat)));
        }
        const torch::Tensor b = torch::matmul(q.t().to(torch::kFloat), xc).to(torch::kDouble); // [l,G]
        torch::Tensor ub;
        topEigen(torch::matmul(b, b.t()), p, ub, values);
        const torch::Tensor s = values.sqrt();
        scores = torch::matmul(q, ub) * s.unsqueeze(0);
        loadings = torch::matmul(b.t(), ub) / s.clamp_min(1e-300).unsqueeze(0);
    }
    flipSigns(loadings, scores);
    r.scores = scores.to(torch::kFloat).contiguous();
    r.loadings = loadings.to(torch::kFloat).contiguous();
    r.variance = values / denom;
    return r;
}

torch::Tensor cellFeatures(const CellTable& cells, const NicheOptions& o, const std::string& what)
{
    if (o.rep == "pca" || o.rep == "raw" || o.rep == "X") {
        if (!cells.expression.defined()) {
            throw DatasetError(what + ": rep=" + o.rep + " needs expression values, and there are none");
        }
        torch::Tensor x = cells.expression;
        if (o.rep != "pca") {
            if (!torch::isfinite(x).all().item<bool>()) {
                throw DatasetError(what + ": expression holds non-finite values");
            }
            return x.to(torch::kFloat).contiguous();
        }
        x = o.norm == ExpressionNorm::Log1p ? normalizeLog1p(x, what) : x.to(torch::kFloat);
        if (!torch::isfinite(x).all().item<bool>()) {
            throw DatasetError(what + ": expression holds non-finite values");
        }
        PcaOptions po;
        po.components = o.pcs;
        po.seed = o.seed;
        return pcaScores(x, po).scores;
    }
    const auto it = cells.representations.find(o.rep);
    if (it == cells.representations.end()) {
        std::vector<std::string> names = { "pca", "raw" };
        for (const auto& [n, t] : cells.representations) {
            names.push_back(n);
        }
        throw ConfigError(what + ": unknown representation rep=" + o.rep + " (valid: " + joinNames(names) + ")");
    }
    if (!torch::isfinite(it->second).all().item<bool>()) {
        throw DatasetError(what + ": representation '" + o.rep + "' holds non-finite values");
    }
    return it->second.to(torch::kFloat).contiguous();
}

NicheSet buildNiches(const CellTable& cells, const NicheOptions& o, const std::string& what)
{
    cells.validate(what);
    WFM_CHECK(o.k >= 1, what, ": k must be >= 1, got ", o.k);
    if (!cells.cellTypes.defined()) {
        throw DatasetError(what + ": cells have no cell types (the niche label)");
    }
    const std::int64_t C = cells.count();
    const torch::Tensor types = cells.cellTypes.to(torch::kLong).contiguous();
    const auto* tp = types.data_ptr<std::int64_t>();
    std::vector<char> allowed(cells.typeNames.size(), o.centers.empty() ? 1 : 0);
    for (const std::string& name : o.centers) {
        const auto it = std::find(cells.typeNames.begin(), cells.typeNames.end(), name);
        if (it == cells.typeNames.end()) {
            throw ConfigError(what + ": unknown centre type '" + name + "' (valid: "
                + joinNames(cells.typeNames) + ")");
        }
        allowed[static_cast<std::size_t>(it - cells.typeNames.begin())] = 1;
    }
    std::vector<std::int64_t> centers;
    for (std::int64_t c = 0; c < C; ++c) {
        if (tp[c] >= 0 && allowed[static_cast<std::size_t>(tp[c])]) {
            centers.push_back(c);
        }
    }
    if (o.maxCenters > 0 && static_cast<std::int64_t>(centers.size()) > o.maxCenters) {
        // Partial Fisher-Yates: the first maxCenters entries are a uniform subset.
        Rng rng(o.seed, 0xCE47);
        for (std::int64_t i = 0; i < o.maxCenters; ++i) {
            const auto j = i + static_cast<std::int64_t>(rng.below(centers.size() - static_cast<std::size_t>(i)));
            std::swap(centers[static_cast<std::size_t>(i)], centers[static_cast<std::size_t>(j)]);
        }
        centers.resize(static_cast<std::size_t>(o.maxCenters));
        std::sort(centers.begin(), centers.end());
    }
    const torch::Tensor features = cellFeatures(cells, o, what); // [C,f]
    const torch::Tensor nb = spatialNeighbors(cells.positions, cells.sections,
        torch::tensor(centers, torch::kLong), o.k, o.includeCenter);
    // Drop centres without any neighbour (a section holding one cell).
    const torch::Tensor keep = (nb >= 0).any(1);
    NicheSet out;
    const torch::Tensor keptIdx = keep.nonzero().squeeze(1);
    const auto* kp = keptIdx.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < keptIdx.size(0); ++i) {
        out.centers.push_back(centers[static_cast<std::size_t>(kp[i])]);
    }
    if (out.centers.empty()) {
        throw DatasetError(what + ": no cell qualifies as a niche centre (no typed cell of the "
                                  "requested types with a neighbour in its section)");
    }
    out.neighbors = nb.index_select(0, keptIdx).contiguous();
    const torch::Tensor valid = out.neighbors >= 0;
    const torch::Tensor gathered
        = features.index_select(0, out.neighbors.clamp_min(0).reshape({ -1 }))
              .reshape({ out.neighbors.size(0), out.neighbors.size(1), features.size(1) });
    out.data = PointCloudDataset::fromPadded(
        gathered * valid.unsqueeze(2).to(torch::kFloat), valid.to(torch::kFloat), what);
    out.data.labels = types.index_select(0, torch::tensor(out.centers, torch::kLong)).contiguous();
    out.data.labelNames = cells.typeNames;
    out.data.name = cells.name;
    return out;
}

CellTable readCsvCells(const std::string& path, const std::map<std::string, std::string>& options)
{
    auto opt = [&](const char* key, const char* def) {
        const auto it = options.find(key);
        return it == options.end() ? std::string(def) : it->second;
    };
    const CsvTable table = CsvTable::read(path);
    if (table.rowCount() == 0) {
        throw DatasetError(path + ": no data rows");
    }
    auto column = [&](const std::string& key, const std::string& name) -> std::size_t {
        const int c = table.columnIndex(name);
        if (c < 0) {
            throw ConfigError(path + ": " + key + "=" + name + ": no such column (columns: "
                + joinNames(table.columnNames()) + ")");
        }
        return static_cast<std::size_t>(c);
    };
    const auto C = static_cast<std::int64_t>(table.rowCount());
    std::set<std::size_t> used;
    std::vector<std::string> coordKeys = { "x", "y", "z" };
    std::vector<std::size_t> coordCols;
    for (const std::string& key : coordKeys) {
        const std::string name = opt(key.c_str(), key == "z" ? "" : key.c_str());
        if (!name.empty()) {
            coordCols.push_back(column(key, name));
        }
    }
    WFM_CHECK(!coordCols.empty(), path, ": no coordinate columns (x=, y=)");
    auto numericMatrix = [&](const std::vector<std::size_t>& cols, const char* role) {
        torch::Tensor m = torch::empty({ C, static_cast<std::int64_t>(cols.size()) }, torch::kFloat);
        auto* p = m.data_ptr<float>();
        for (std::size_t j = 0; j < cols.size(); ++j) {
            const std::vector<double> v = table.numbers(cols[j]);
            for (std::size_t r = 0; r < v.size(); ++r) {
                if (!std::isfinite(v[r])) {
                    throw DatasetError(detail::concat(path, ":", table.lineOfRow(r), ": ", role,
                        " column '", table.columnNames()[cols[j]], "' is missing or not finite"));
                }
                p[r * cols.size() + j] = static_cast<float>(v[r]);
            }
        }
        return m;
    };
    CellTable cells;
    cells.positions = numericMatrix(coordCols, "coordinate");
    used.insert(coordCols.begin(), coordCols.end());
    const std::string sectionName = opt("section", "");
    if (!sectionName.empty()) {
        const std::size_t c = column("section", sectionName);
        used.insert(c);
        cells.sections = factorize(table.strings(c), cells.sectionNames);
        if ((cells.sections < 0).any().item<bool>()) {
            const auto r = (cells.sections < 0).nonzero()[0][0].item<std::int64_t>();
            throw DatasetError(detail::concat(path, ":", table.lineOfRow(static_cast<std::size_t>(r)),
                ": section column '", sectionName, "' is empty"));
        }
    }
    const std::string labelName = opt("label", "cell_type");
    const std::size_t lc = column("label", labelName);
    used.insert(lc);
    cells.cellTypes = factorize(table.strings(lc), cells.typeNames);
    const std::string features = opt("features", "auto");
    std::vector<std::size_t> featureCols;
    if (features == "auto") {
        for (std::size_t c = 0; c < table.columnCount(); ++c) {
            const std::string& n = table.columnNames()[c];
            if (used.count(c) || n == "index" || n == "cell_id" || n == "cell" || n == "barcode") {
                continue;
            }
            if (table.isNumeric(c)) {
                featureCols.push_back(c);
            }
        }
        if (featureCols.empty()) {
            throw DatasetError(path + ": no numeric expression columns besides coordinates, section and label");
        }
    } else {
        for (const std::string& n : splitList(features)) {
            featureCols.push_back(column("features", n));
        }
        WFM_CHECK(!featureCols.empty(), path, ": features= lists no columns");
    }
    cells.expression = numericMatrix(featureCols, "feature");
    for (const std::size_t c : featureCols) {
        cells.geneNames.push_back(table.columnNames()[c]);
    }
    cells.name = std::filesystem::path(path).stem().string();
    return cells;
}

PointCloudDataset loadCsvNiches(const std::string& path, const std::map<std::string, std::string>& options)
{
    checkNicheKeys(options, { "x", "y", "z", "section", "label", "features" }, "csv");
    const NicheOptions o = parseNicheOptions(options, "csv:" + path);
    const CellTable cells = readCsvCells(path, options);
    NicheSet set = buildNiches(cells, o, path);
    set.data.name = cells.name;
    return set.data;
}

} // namespace wfm::data
