#include "wfm/ot/TransportMap.h"

#include "ot/FusedSinkhorn.h"
#include "wfm/Error.h"
#include "wfm/Parallel.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>

namespace wfm::ot {
namespace {

constexpr int kCandidatesPerRow = 16;
constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

struct HeapEntry
{
    double value;
    int row;
    bool operator<(const HeapEntry& o) const
    {
        // std::priority_queue pops the largest: larger value first, then the smaller row.
        if (value != o.value) {
            return value < o.value;
        }
        return row > o.row;
    }
};

/// Per-pair views needed to recompute log P_ij on the CPU in double precision.
struct PairScores
{
    const float* x;
    const float* y;
    const double* loga;
    const double* logb;
    const double* f;
    const double* g;
    double eps;
    int M;
    int d;

    double entry(int i, int j) const
    {
        const float* xi = x + static_cast<size_t>(i) * d;
        const float* yj = y + static_cast<size_t>(j) * d;
        double c = 0;
        for (int k = 0; k < d; ++k) {
            const double diff = static_cast<double>(xi[k]) - yj[k];
            c += diff * diff;
        }
        return logb[j] == kMinusInf ? kMinusInf : loga[i] + logb[j] + (f[i] + g[j] - c) / eps;
    }

    void row(int i, double* out) const
    {
        const float* xi = x + static_cast<size_t>(i) * d;
        for (int j = 0; j < M; ++j) {
            const float* yj = y + static_cast<size_t>(j) * d;
            double c = 0;
            for (int k = 0; k < d; ++k) {
                const double diff = static_cast<double>(xi[k]) - yj[k];
                c += diff * diff;
            }
            out[j] = logb[j] == kMinusInf ? kMinusInf
                                          : loga[i] + logb[j] + (f[i] + g[j] - c) / eps;
        }
    }
};

torch::Tensor logWeights(const torch::Tensor& w)
{
    auto wd = w.to(torch::kDouble).cpu();
    return torch::where(wd > 0, torch::log(wd), torch::full_like(wd, kMinusInf)).contiguous();
}

struct Prepared
{
    torch::Tensor x, y, a, b;
    bool squeeze = false;
};

Prepared batch(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b)
{
    Prepared p;
    p.squeeze = x.dim() == 2;
    p.x = p.squeeze ? x.unsqueeze(0) : x;
    p.y = p.squeeze ? y.unsqueeze(0) : y;
    WFM_CHECK(p.x.dim() == 3 && p.y.dim() == 3, "transport map: points must be [B,N,d]");
    auto w = [&](const torch::Tensor& t, const torch::Tensor& pts, const char* what) {
        if (!t.defined()) {
            return uniformWeights(pts);
        }
        auto tb = p.squeeze && t.dim() == 1 ? t.unsqueeze(0) : t;
        return validateWeights(tb.to(pts.device()), pts, what);
    };
    p.a = w(a, p.x, "source weights");
    p.b = w(b, p.y, "target weights");
    return p;
}

std::vector<bool> liveMask(const torch::Tensor& w1d)
{
    auto acc = w1d.accessor<double, 1>();
    std::vector<bool> live(static_cast<size_t>(w1d.size(0)));
    for (int64_t i = 0; i < w1d.size(0); ++i) {
        live[static_cast<size_t>(i)] = acc[i] > 0;
    }
    return live;
}

} // namespace

MapKind parseMapKind(const std::string& name)
{
    if (name == "rounded") {
        return MapKind::Rounded;
    }
    if (name == "argmax") {
        return MapKind::Argmax;
    }
    if (name == "sampled") {
        return MapKind::Sampled;
    }
    if (name == "barycentric") {
        return MapKind::Barycentric;
    }
    throw ConfigError("map '" + name + "' is not one of rounded, argmax, sampled, barycentric");
}

std::string mapKindName(MapKind kind)
{
    switch (kind) {
    case MapKind::Rounded:
        return "rounded";
    case MapKind::Argmax:
        return "argmax";
    case MapKind::Sampled:
        return "sampled";
    case MapKind::Barycentric:
        return "barycentric";
    }
    return "?";
}

std::vector<std::int64_t> greedyRoundedMatching(int rowCount, int colCount,
    const std::vector<bool>& rowLive, const std::vector<bool>& colLive, int candidatesPerRow,
    const std::function<void(int, int, double*, std::int64_t*)>& candidates,
    const std::function<void(int, double*)>& rowScores)
{
    const int N = rowCount, M = colCount;
    const int K = std::max(1, std::min(candidatesPerRow, M));
    auto isRowLive = [&](int i) { return rowLive.empty() || rowLive[static_cast<size_t>(i)]; };
    auto isColLive = [&](int j) { return colLive.empty() || colLive[static_cast<size_t>(j)]; };

    std::vector<std::int64_t> match(static_cast<size_t>(N), -1);
    std::vector<char> colFree(static_cast<size_t>(M), 0);
    int freeCols = 0;
    for (int j = 0; j < M; ++j) {
        colFree[static_cast<size_t>(j)] = isColLive(j) ? 1 : 0;
        freeCols += colFree[static_cast<size_t>(j)];
    }

    // Candidate lists: (value, column), sorted descending; cursor per row.
    std::vector<std::vector<std::pair<double, int>>> lists(static_cast<size_t>(N));
    std::vector<int> cursor(static_cast<size_t>(N), 0);
    std::vector<double> vbuf(static_cast<size_t>(K));
    std::vector<std::int64_t> ibuf(static_cast<size_t>(K));
    std::vector<double> scores;

    std::priority_queue<HeapEntry> heap;
    auto refill = [&](int i) {
        // Recompute the row over the free columns and keep its K best.
        scores.resize(static_cast<size_t>(M));
        rowScores(i, scores.data());
        auto& list = lists[static_cast<size_t>(i)];
        list.clear();
        for (int j = 0; j < M; ++j) {
            if (colFree[static_cast<size_t>(j)] && scores[static_cast<size_t>(j)] != kMinusInf
                && !std::isnan(scores[static_cast<size_t>(j)])) {
                list.emplace_back(scores[static_cast<size_t>(j)], j);
            }
        }
        auto cmp = [](const auto& l, const auto& r) {
            return l.first != r.first ? l.first > r.first : l.second < r.second;
        };
        if (static_cast<int>(list.size()) > K) {
            std::partial_sort(list.begin(), list.begin() + K, list.end(), cmp);
            list.resize(static_cast<size_t>(K));
        } else {
            std::sort(list.begin(), list.end(), cmp);
        }
        cursor[static_cast<size_t>(i)] = 0;
    };
    // Advances row i to its best still-free candidate and pushes it; false when the row has
    // no free live column left at all.
    auto pushRow = [&](int i) {
        auto& list = lists[static_cast<size_t>(i)];
        int& c = cursor[static_cast<size_t>(i)];
        while (c < static_cast<int>(list.size()) && !colFree[static_cast<size_t>(list[c].second)]) {
            ++c;
        }
        if (c >= static_cast<int>(list.size())) {
            if (freeCols == 0) {
                return false;
            }
            refill(i);
            if (list.empty()) {
                return false;
            }
        }
        heap.push({ list[static_cast<size_t>(c)].first, i });
        return true;
    };

    for (int i = 0; i < N; ++i) {
        if (!isRowLive(i)) {
            continue;
        }
        candidates(i, K, vbuf.data(), ibuf.data());
        auto& list = lists[static_cast<size_t>(i)];
        for (int k = 0; k < K; ++k) {
            if (ibuf[static_cast<size_t>(k)] >= 0 && vbuf[static_cast<size_t>(k)] != kMinusInf) {
                list.emplace_back(vbuf[static_cast<size_t>(k)],
                    static_cast<int>(ibuf[static_cast<size_t>(k)]));
            }
        }
        pushRow(i);
    }

    std::vector<int> leftover;
    while (!heap.empty()) {
        const HeapEntry top = heap.top();
        heap.pop();
        const int i = top.row;
        auto& list = lists[static_cast<size_t>(i)];
        const int j = list[static_cast<size_t>(cursor[static_cast<size_t>(i)])].second;
        if (colFree[static_cast<size_t>(j)]) {
            match[static_cast<size_t>(i)] = j;
            colFree[static_cast<size_t>(j)] = 0;
            --freeCols;
            continue;
        }
        if (!pushRow(i)) {
            leftover.push_back(i);
        }
    }
    // Live rows without a free column left (more live rows than live columns, or rows whose
    // scores are all -inf): the row maximum over live columns.
    for (int i = 0; i < N; ++i) {
        if (isRowLive(i) && match[static_cast<size_t>(i)] < 0) {
            scores.resize(static_cast<size_t>(M));
            rowScores(i, scores.data());
            int best = -1;
            double bestV = kMinusInf;
            for (int j = 0; j < M; ++j) {
                if (isColLive(j) && (best < 0 || scores[static_cast<size_t>(j)] > bestV)) {
                    best = j;
                    bestV = scores[static_cast<size_t>(j)];
                }
            }
            match[static_cast<size_t>(i)] = best;
        }
    }
    return match;
}

torch::Tensor roundedMatching(const torch::Tensor& scores, const torch::Tensor& rowWeights,
    const torch::Tensor& colWeights)
{
    WFM_CHECK(scores.dim() == 3, "roundedMatching: scores must be [B,N,M], got ", scores.sizes());
    const int64_t B = scores.size(0), N = scores.size(1), M = scores.size(2);
    auto S = scores.to(torch::kDouble).cpu().contiguous();
    auto wa = rowWeights.defined() ? rowWeights.to(torch::kDouble).cpu()
                                   : torch::ones({ B, N }, torch::kDouble);
    auto wb = colWeights.defined() ? colWeights.to(torch::kDouble).cpu()
                                   : torch::ones({ B, M }, torch::kDouble);
    auto out = torch::full({ B, N }, -1, torch::kLong);
    const int K = static_cast<int>(std::min<int64_t>(kCandidatesPerRow, M));
    wfm::parallelFor(B, [&](int64_t b0, int64_t b1) {
        std::vector<std::pair<double, int64_t>> row(static_cast<size_t>(M));
        for (int64_t bi = b0; bi < b1; ++bi) {
            const double* Sb = S.data_ptr<double>() + bi * N * M;
            auto rowLive = liveMask(wa[bi]);
            auto colLive = liveMask(wb[bi]);
            auto m = greedyRoundedMatching(static_cast<int>(N), static_cast<int>(M), rowLive,
                colLive, K,
                [&](int i, int k, double* v, std::int64_t* idx) {
                    // The k best live columns, ties by smaller j (the reference's flat order).
                    for (int64_t j = 0; j < M; ++j) {
                        row[static_cast<size_t>(j)] = { colLive[static_cast<size_t>(j)] ? Sb[i * M + j] : kMinusInf, j };
                    }
                    std::partial_sort(row.begin(), row.begin() + k, row.end(), [](const auto& l, const auto& r) {
                        return l.first != r.first ? l.first > r.first : l.second < r.second;
                    });
                    for (int q = 0; q < k; ++q) {
                        v[q] = row[static_cast<size_t>(q)].first;
                        idx[q] = row[static_cast<size_t>(q)].first == kMinusInf ? -1 : row[static_cast<size_t>(q)].second;
                    }
                },
                [&](int i, double* scoreRow) {
                    for (int64_t j = 0; j < M; ++j) {
                        scoreRow[j] = colLive[static_cast<size_t>(j)] ? Sb[i * M + j] : kMinusInf;
                    }
                });
            auto o = out[bi];
            auto acc = o.accessor<int64_t, 1>();
            for (int64_t i = 0; i < N; ++i) {
                acc[i] = m[static_cast<size_t>(i)];
            }
        }
    });
    return out.to(scores.device());
}

torch::Tensor assignment(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& result, MapKind kind, std::uint64_t seed)
{
    torch::NoGradGuard noGrad;
    WFM_CHECK(kind != MapKind::Barycentric, "assignment: the barycentric map has no assignment");
    auto p = batch(x, y, a, b);
    const int64_t B = p.x.size(0), N = p.x.size(1), M = p.y.size(1);
    const int64_t d = p.x.size(2);
    const bool fused = result.fused && fused::available(p.x);

    if (kind == MapKind::Argmax || kind == MapKind::Sampled) {
        if (fused) {
            fused::RowPassRequest req;
            req.argmax = kind == MapKind::Argmax;
            req.sampled = kind == MapKind::Sampled;
            req.seed = seed;
            auto rp = fused::rowPass(p.x, p.y, p.a, p.b, result, req);
            auto r = kind == MapKind::Argmax ? rp.argmax : rp.sampled;
            return p.squeeze ? r.squeeze(0) : r;
        }
        auto lp = logPlan(p.x, p.y, p.a, p.b, result).reshape({ B, N, M });
        torch::Tensor idx;
        if (kind == MapKind::Argmax) {
            idx = lp.argmax(2);
        } else {
            auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
            auto probs = torch::softmax(lp.to(torch::kDouble).cpu(), 2).reshape({ B * N, M });
            probs = torch::where(torch::isfinite(probs), probs, torch::zeros_like(probs));
            // Padded rows have no mass: give them a dummy distribution, masked below.
            auto dead = probs.sum(1) <= 0;
            probs.index_put_({ dead, 0 }, 1.0);
            idx = at::multinomial(probs, 1, false, gen).reshape({ B, N }).to(p.x.device());
        }
        idx = idx.masked_fill(p.a <= 0, -1);
        return p.squeeze ? idx.squeeze(0) : idx;
    }

    // Rounded matching.
    torch::Tensor out;
    if (!fused) {
        auto lp = logPlan(p.x, p.y, p.a, p.b, result).reshape({ B, N, M });
        out = roundedMatching(lp, p.a, p.b);
    } else {
        const int K = static_cast<int>(std::min<int64_t>(kCandidatesPerRow, M));
        auto [topV, topI] = fused::topK(p.x, p.y, p.a, p.b, result, K);
        auto xc = p.x.to(torch::kFloat).cpu().contiguous();
        auto yc = p.y.to(torch::kFloat).cpu().contiguous();
        auto la = logWeights(p.a), lb = logWeights(p.b);
        auto f = result.f.to(torch::kDouble).cpu().reshape({ B, N }).contiguous();
        auto g = result.g.to(torch::kDouble).cpu().reshape({ B, M }).contiguous();
        auto eps = result.eps.to(torch::kDouble).cpu().contiguous();
        auto wa = p.a.to(torch::kDouble).cpu(), wb = p.b.to(torch::kDouble).cpu();
        out = torch::full({ B, N }, -1, torch::kLong);
        wfm::parallelFor(B, [&](int64_t b0, int64_t b1) {
            for (int64_t bi = b0; bi < b1; ++bi) {
                PairScores ps { xc.data_ptr<float>() + bi * N * d, yc.data_ptr<float>() + bi * M * d,
                    la.data_ptr<double>() + bi * N, lb.data_ptr<double>() + bi * M,
                    f.data_ptr<double>() + bi * N, g.data_ptr<double>() + bi * M,
                    eps.data_ptr<double>()[bi], static_cast<int>(M), static_cast<int>(d) };
                const float* tv = topV.data_ptr<float>() + bi * N * K;
                const int64_t* ti = topI.data_ptr<int64_t>() + bi * N * K;
                auto m = greedyRoundedMatching(static_cast<int>(N), static_cast<int>(M),
                    liveMask(wa[bi]), liveMask(wb[bi]), K,
                    [&](int i, int k, double* v, std::int64_t* idx) {
                        // The kernel picks the candidates in float32; they are re-scored in
                        // double so that they order exactly like the refills.
                        std::vector<std::pair<double, int64_t>> cand;
                        for (int q = 0; q < k; ++q) {
                            const int64_t j = ti[static_cast<int64_t>(i) * K + q];
                            if (j >= 0 && tv[static_cast<int64_t>(i) * K + q] != -INFINITY) {
                                cand.emplace_back(ps.entry(i, static_cast<int>(j)), j);
                            }
                        }
                        std::sort(cand.begin(), cand.end(), [](const auto& l, const auto& r) {
                            return l.first != r.first ? l.first > r.first : l.second < r.second;
                        });
                        for (int q = 0; q < k; ++q) {
                            const bool has = q < static_cast<int>(cand.size());
                            v[q] = has ? cand[static_cast<size_t>(q)].first : kMinusInf;
                            idx[q] = has ? cand[static_cast<size_t>(q)].second : -1;
                        }
                    },
                    [&](int i, double* row) { ps.row(i, row); });
                auto row = out[bi];
                auto acc = row.accessor<int64_t, 1>();
                for (int64_t i = 0; i < N; ++i) {
                    acc[i] = m[static_cast<size_t>(i)];
                }
            }
        });
        out = out.to(p.x.device());
    }
    return p.squeeze ? out.squeeze(0) : out;
}

torch::Tensor transportMap(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& result, MapKind kind, std::uint64_t seed)
{
    torch::NoGradGuard noGrad;
    auto p = batch(x, y, a, b);
    const int64_t B = p.x.size(0), N = p.x.size(1), M = p.y.size(1), d = p.x.size(2);
    auto live = (p.a > 0).unsqueeze(2);
    torch::Tensor T;
    if (kind == MapKind::Barycentric) {
        torch::Tensor num, den;
        if (result.fused && fused::available(p.x)) {
            fused::RowPassRequest req;
            req.mass = true;
            req.weightedY = true;
            auto rp = fused::rowPass(p.x, p.y, p.a, p.b, result, req);
            num = rp.weightedY.to(p.x.scalar_type());
            den = rp.mass.to(p.x.scalar_type());
        } else {
            auto P = logPlan(p.x, p.y, p.a, p.b, result).reshape({ B, N, M }).exp();
            num = torch::bmm(P, p.y);
            den = P.sum(2);
        }
        T = num / den.clamp_min(1e-300).unsqueeze(2);
    } else {
        auto idx = assignment(p.x, p.y, p.a, p.b, result, kind, seed).reshape({ B, N });
        auto safe = idx.clamp_min(0).unsqueeze(2).expand({ B, N, d });
        T = p.y.gather(1, safe);
    }
    T = torch::where(live, T, p.x);
    return p.squeeze ? T.squeeze(0) : T;
}

torch::Tensor DisplacementInterpolation::at(double t) const
{
    return torch::lerp(source, mapped, t);
}

DisplacementInterpolation displacementInterpolation(const torch::Tensor& x, const torch::Tensor& y,
    const torch::Tensor& a, const torch::Tensor& b, const SinkhornOptions& options, MapKind kind)
{
    WFM_CHECK(x.dim() == 2 && y.dim() == 2 && x.size(1) == y.size(1),
        "displacementInterpolation: clouds must be [n,d] and [m,d], got ", x.sizes(), " and ", y.sizes());
    torch::NoGradGuard noGrad;
    const SinkhornResult plan = sinkhorn(x, y, a, b, options);
    DisplacementInterpolation out;
    out.source = x;
    if (kind == MapKind::Barycentric) {
        out.mapped = transportMap(x, y, a, b, plan, kind).reshape(x.sizes());
    } else {
        out.assignment = assignment(x, y, a, b, plan, kind).reshape({ x.size(0) });
        out.mapped = y.index_select(0, out.assignment.clamp_min(0));
        out.mapped = torch::where((a > 0).unsqueeze(1), out.mapped, x);
    }
    return out;
}

} // namespace wfm::ot
