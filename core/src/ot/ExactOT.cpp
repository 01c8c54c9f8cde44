// Complexity and limits: exact OT runs LEMON's network simplex on the complete bipartite graph,
// N*M arcs at ~75 bytes each; fine up to a few thousand points per side (measured, one core:
// 2000 x 2000 in 0.8 s / +300 MB, 3000 x 3000 in 2 s / +600 MB). Assignment: O(N^3), no graph.
#include "wfm/ot/ExactOT.h"

#include "wfm/Error.h"
#include "wfm/Parallel.h"

#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#ifdef WFM_HAVE_LEMON
#include <lemon/network_simplex.h>
#include <lemon/static_graph.h>
#endif

namespace wfm::ot {
namespace {

// Weight totals of the two sides must agree to this relative tolerance.
constexpr double kMassTolerance = 1e-6;

/// Validates and converts a floating tensor to a contiguous CPU float64 tensor.
torch::Tensor toCpuDouble(const torch::Tensor& t, const char* name)
{
    WFM_CHECK(t.defined(), name, " is undefined");
    WFM_CHECK(t.is_floating_point(), name, " must be float32 or float64, got ",
        c10::toString(t.scalar_type()));
    torch::Tensor c = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
    WFM_CHECK(c.numel() == 0 || torch::isfinite(c).all().item<bool>(), name,
        " has non-finite values (NaN or inf)");
    return c;
}

torch::Tensor toWeights(const torch::Tensor& t, const char* name)
{
    torch::Tensor w = toCpuDouble(t, name);
    WFM_CHECK(w.numel() == 0 || (w >= 0).all().item<bool>(), name, " has negative weights");
    return w;
}

void checkMasses(double sa, double sb, const std::string& where)
{
    WFM_CHECK(
        sa > 0 && sb > 0, where, "weights must have a positive total, got a: ", sa, ", b: ", sb);
    WFM_CHECK(std::abs(sa - sb) <= kMassTolerance * std::max(sa, sb), where,
        "weights a and b must have equal totals, got ", sa, " and ", sb);
}

#ifdef WFM_HAVE_LEMON

// Why integer supplies: LEMON's network simplex needs the supplies to sum to exactly zero and
// updates flows by repeated additions and subtractions along tree cycles. With double supplies
// the totals rarely cancel exactly (the problem then reads as infeasible or leaves mass on the
// artificial arcs) and rounding accumulates into tiny negative or leftover flows. Scaling the
// masses to integers summing to exactly kTotalUnits (largest-remainder rounding on each side)
// makes every pivot exact; the quantisation error is below one unit, i.e. < 2^-50 of the total
// mass per point, which is far below the 1e-9 relative accuracy we promise. Costs stay double.
using FlowValue = std::int64_t;
constexpr FlowValue kTotalUnits = FlowValue { 1 } << 50;

/// Integer masses proportional to `w` that sum to exactly kTotalUnits.
std::vector<FlowValue> toUnits(const std::vector<double>& w)
{
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    const auto n = w.size();
    std::vector<FlowValue> units(n);
    std::vector<double> fraction(n);
    FlowValue assigned = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double q = w[i] / total * static_cast<double>(kTotalUnits);
        const double f = std::floor(q);
        units[i] = static_cast<FlowValue>(f);
        fraction[i] = q - f;
        assigned += units[i];
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t { 0 });
    std::sort(order.begin(), order.end(),
        [&](std::size_t i, std::size_t j) { return fraction[i] > fraction[j]; });
    // |remainder| < n: hand out the missing units by largest fraction (or take back surplus
    // units, which rounding in q can create, from the smallest fractions).
    FlowValue remainder = kTotalUnits - assigned;
    for (std::size_t k = 0; remainder > 0; k = (k + 1) % n) {
        ++units[order[k]];
        --remainder;
    }
    for (std::size_t k = n; remainder < 0;) {
        k = (k == 0 ? n : k) - 1;
        if (units[order[k]] > 0) {
            --units[order[k]];
            ++remainder;
        }
    }
    return units;
}

/// Arc list (i, n + j) of the complete bipartite digraph, in source order, without storing it.
class BipartiteArcIterator
{
public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::pair<int, int>;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = value_type;

    BipartiteArcIterator(std::int64_t k, int n, int m)
        : m_k(k)
        , m_n(n)
        , m_m(m)
    {
    }
    value_type operator*() const
    {
        return { static_cast<int>(m_k / m_m), m_n + static_cast<int>(m_k % m_m) };
    }
    BipartiteArcIterator& operator++()
    {
        ++m_k;
        return *this;
    }
    BipartiteArcIterator operator++(int)
    {
        auto old = *this;
        ++m_k;
        return old;
    }
    bool operator==(const BipartiteArcIterator& o) const { return m_k == o.m_k; }
    bool operator!=(const BipartiteArcIterator& o) const { return m_k != o.m_k; }

private:
    std::int64_t m_k;
    int m_n;
    int m_m;
};

#endif // WFM_HAVE_LEMON

/// Solves one problem over the points with positive weight.
///   costAt(i, j): the original cost between row i and column j (indices into a and b).
///   plan: [n, m] row-major output (zero-filled by the caller) or nullptr.
/// Returns sum_ij P_ij C_ij with P's rows summing to a (b is rescaled to a's total).
template <typename CostFn>
double solveWeighted(
    const double* a, std::int64_t n, const double* b, std::int64_t m, CostFn costAt, double* plan)
{
#ifdef WFM_HAVE_LEMON
    std::vector<std::int64_t> rows;
    std::vector<std::int64_t> cols;
    std::vector<double> wa;
    std::vector<double> wb;
    for (std::int64_t i = 0; i < n; ++i) {
        if (a[i] > 0) {
            rows.push_back(i);
            wa.push_back(a[i]);
        }
    }
    for (std::int64_t j = 0; j < m; ++j) {
        if (b[j] > 0) {
            cols.push_back(j);
            wb.push_back(b[j]);
        }
    }
    const double massA = std::accumulate(wa.begin(), wa.end(), 0.0);
    const int nn = static_cast<int>(rows.size());
    const int mm = static_cast<int>(cols.size());
    const std::int64_t arcCount = static_cast<std::int64_t>(nn) * mm;

    // Costs go to LEMON shifted and scaled to [0, 1]: the plan is unchanged (every feasible
    // plan moves the same mass), LEMON's big-M artificial cost ((max cost + 1) * nodes) assumes
    // non-negative costs, and with a unit range the reduced costs it compares keep full
    // relative precision whatever the units of the input.
    std::vector<double> arcCost(static_cast<std::size_t>(arcCount));
    double lo = std::numeric_limits<double>::infinity();
    double hi = -lo;
    for (int i = 0; i < nn; ++i) {
        for (int j = 0; j < mm; ++j) {
            const double c = costAt(rows[i], cols[j]);
            arcCost[static_cast<std::size_t>(i) * mm + j] = c;
            lo = std::min(lo, c);
            hi = std::max(hi, c);
        }
    }
    const double range = hi - lo;
    for (double& c : arcCost) {
        c = range > 0 ? (c - lo) / range : 0.0;
    }

    lemon::StaticDigraph graph;
    graph.build(nn + mm, BipartiteArcIterator(0, nn, mm), BipartiteArcIterator(arcCount, nn, mm));
    lemon::StaticDigraph::ArcMap<double> costMap(graph);
    for (std::int64_t k = 0; k < arcCount; ++k) {
        costMap[lemon::StaticDigraph::arc(static_cast<int>(k))]
            = arcCost[static_cast<std::size_t>(k)];
    }
    std::vector<double>().swap(arcCost);
    lemon::StaticDigraph::NodeMap<FlowValue> supply(graph);
    const std::vector<FlowValue> ua = toUnits(wa);
    const std::vector<FlowValue> ub = toUnits(wb);
    for (int i = 0; i < nn; ++i) {
        supply[lemon::StaticDigraph::node(i)] = ua[static_cast<std::size_t>(i)];
    }
    for (int j = 0; j < mm; ++j) {
        supply[lemon::StaticDigraph::node(nn + j)] = -ub[static_cast<std::size_t>(j)];
    }

    lemon::NetworkSimplex<lemon::StaticDigraph, FlowValue, double> simplex(graph);
    simplex.costMap(costMap).supplyMap(supply);
    const auto status = simplex.run();
    if (status != decltype(simplex)::OPTIMAL) {
        throw Error(detail::concat("exact OT: the network simplex did not reach an optimum (",
            status == decltype(simplex)::INFEASIBLE ? "infeasible" : "unbounded", ")"));
    }

    const double unitMass = massA / static_cast<double>(kTotalUnits);
    double total = 0.0;
    for (std::int64_t k = 0; k < arcCount; ++k) {
        const FlowValue f = simplex.flow(lemon::StaticDigraph::arc(static_cast<int>(k)));
        if (f == 0) {
            continue;
        }
        const std::int64_t i = rows[static_cast<std::size_t>(k / mm)];
        const std::int64_t j = cols[static_cast<std::size_t>(k % mm)];
        const double mass = static_cast<double>(f) * unitMass;
        total += mass * costAt(i, j);
        if (plan != nullptr) {
            plan[i * m + j] = mass;
        }
    }
    return total;
#else
    (void)a, (void)n, (void)b, (void)m, (void)costAt, (void)plan;
    throw Error("exact OT needs LEMON, which this build lacks (install liblemon-dev and "
                "reconfigure)");
#endif
}

void checkProblemSize(std::int64_t n, std::int64_t m)
{
    // LEMON indexes arcs with int; keep the arcs plus its artificial arcs and nodes within
    // range.
    WFM_CHECK(n * m + 4 * (n + m) < std::int64_t { INT_MAX }, "exact OT problem too large: ", n,
        " x ", m, " points (at most ~2^31 pairs)");
}

/// Squared Euclidean distance between row i of x [n,d] and row j of y [m,d].
struct SquaredEuclidean
{
    const double* x;
    const double* y;
    std::int64_t d;
    double operator()(std::int64_t i, std::int64_t j) const
    {
        const double* p = x + i * d;
        const double* q = y + j * d;
        double s = 0.0;
        for (std::int64_t k = 0; k < d; ++k) {
            const double t = p[k] - q[k];
            s += t * t;
        }
        return s;
    }
};

torch::Tensor uniformWeights(std::int64_t n, double total)
{
    return torch::full({ n }, total / static_cast<double>(n), torch::kDouble);
}

// Why not LEMON for assignments: a dense square assignment is a transport problem with
// all-equal masses, which makes the network simplex highly degenerate (N-1 of its 2N-1 basic
// arcs carry zero flow, so many pivots move nothing) and costs an N^2-arc graph. The shortest
// augmenting path method works on the cost matrix directly in O(N^3) with a small constant,
// needs no mass scaling, is exact in the sense of LP duality, and returns the permutation
// itself.

/// Linear sum assignment of the row-major n x n matrix `c`; perm[i] = column of row i.
/// Shortest augmenting paths with dual potentials u (rows) and v (columns): each row is
/// inserted by a Dijkstra-like search over reduced costs c_ij - u_i - v_j >= 0, then the
/// alternating path to the first free column is flipped.
void solveAssignment(const double* c, std::int64_t n, std::int64_t* perm)
{
    const double inf = std::numeric_limits<double>::infinity();
    const auto sz = static_cast<std::size_t>(n);
    // Column index n is a virtual column holding the row being inserted.
    std::vector<double> u(sz, 0.0), v(sz + 1, 0.0), minSlack(sz + 1);
    std::vector<std::int64_t> rowOfCol(sz + 1, -1), previousCol(sz + 1, -1);
    std::vector<char> visited(sz + 1);
    for (std::int64_t row = 0; row < n; ++row) {
        rowOfCol[sz] = row;
        std::int64_t col = n;
        std::fill(minSlack.begin(), minSlack.end(), inf);
        std::fill(visited.begin(), visited.end(), 0);
        do {
            visited[static_cast<std::size_t>(col)] = 1;
            const std::int64_t i = rowOfCol[static_cast<std::size_t>(col)];
            const double* ci = c + i * n;
            double delta = inf;
            std::int64_t next = -1;
            for (std::int64_t j = 0; j < n; ++j) {
                if (visited[static_cast<std::size_t>(j)]) {
                    continue;
                }
                const double slack
                    = ci[j] - u[static_cast<std::size_t>(i)] - v[static_cast<std::size_t>(j)];
                if (slack < minSlack[static_cast<std::size_t>(j)]) {
                    minSlack[static_cast<std::size_t>(j)] = slack;
                    previousCol[static_cast<std::size_t>(j)] = col;
                }
                if (minSlack[static_cast<std::size_t>(j)] < delta) {
                    delta = minSlack[static_cast<std::size_t>(j)];
                    next = j;
                }
            }
            // Shift the potentials so the tightest column becomes reachable at zero slack.
            for (std::size_t j = 0; j <= sz; ++j) {
                if (visited[j]) {
                    u[static_cast<std::size_t>(rowOfCol[j])] += delta;
                    v[j] -= delta;
                } else {
                    minSlack[j] -= delta;
                }
            }
            col = next;
        } while (rowOfCol[static_cast<std::size_t>(col)] != -1);
        // Flip the alternating path back to the virtual column.
        while (col != n) {
            const std::int64_t prev = previousCol[static_cast<std::size_t>(col)];
            rowOfCol[static_cast<std::size_t>(col)] = rowOfCol[static_cast<std::size_t>(prev)];
            col = prev;
        }
    }
    for (std::int64_t j = 0; j < n; ++j) {
        perm[rowOfCol[static_cast<std::size_t>(j)]] = j;
    }
}

} // namespace

bool exactTransportAvailable()
{
#ifdef WFM_HAVE_LEMON
    return true;
#else
    return false;
#endif
}

ExactResult exactTransport(
    const torch::Tensor& cost, const torch::Tensor& a, const torch::Tensor& b, bool computePlan)
{
    WFM_CHECK(cost.defined() && cost.dim() == 2, "cost must be [N,M], got ",
        cost.defined() ? cost.sizes() : c10::IntArrayRef {});
    const std::int64_t n = cost.size(0);
    const std::int64_t m = cost.size(1);
    WFM_CHECK(n > 0 && m > 0, "cost must be non-empty, got ", cost.sizes());
    WFM_CHECK(a.defined() && a.dim() == 1 && a.size(0) == n, "a must be [", n, "], got ",
        a.defined() ? a.sizes() : c10::IntArrayRef {});
    WFM_CHECK(b.defined() && b.dim() == 1 && b.size(0) == m, "b must be [", m, "], got ",
        b.defined() ? b.sizes() : c10::IntArrayRef {});
    const torch::Tensor c = toCpuDouble(cost, "cost");
    const torch::Tensor wa = toWeights(a, "a");
    const torch::Tensor wb = toWeights(b, "b");
    checkMasses(wa.sum().item<double>(), wb.sum().item<double>(), "");
    checkProblemSize(n, m);

    ExactResult result;
    double* plan = nullptr;
    if (computePlan) {
        result.plan = torch::zeros({ n, m }, torch::kDouble);
        plan = result.plan.data_ptr<double>();
    }
    const double* cp = c.data_ptr<double>();
    result.cost = solveWeighted(
        wa.data_ptr<double>(), n, wb.data_ptr<double>(), m,
        [cp, m](std::int64_t i, std::int64_t j) { return cp[i * m + j]; }, plan);
    return result;
}

ExactResult exactEmd(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, bool computePlan)
{
    WFM_CHECK(x.defined() && x.dim() == 2, "x must be [N,d], got ",
        x.defined() ? x.sizes() : c10::IntArrayRef {});
    WFM_CHECK(y.defined() && y.dim() == 2, "y must be [M,d], got ",
        y.defined() ? y.sizes() : c10::IntArrayRef {});
    WFM_CHECK(x.size(1) == y.size(1), "x and y must have the same dimension, got ", x.sizes(),
        " and ", y.sizes());
    const std::int64_t n = x.size(0);
    const std::int64_t m = y.size(0);
    WFM_CHECK(n > 0 && m > 0, "x and y must be non-empty, got ", x.sizes(), " and ", y.sizes());
    const torch::Tensor xd = toCpuDouble(x, "x");
    const torch::Tensor yd = toCpuDouble(y, "y");

    torch::Tensor wa;
    torch::Tensor wb;
    if (a.defined()) {
        WFM_CHECK(a.dim() == 1 && a.size(0) == n, "a must be [", n, "], got ", a.sizes());
        wa = toWeights(a, "a");
    }
    if (b.defined()) {
        WFM_CHECK(b.dim() == 1 && b.size(0) == m, "b must be [", m, "], got ", b.sizes());
        wb = toWeights(b, "b");
    }
    // An undefined side is uniform with the other side's total (1 when both are undefined).
    if (!wa.defined()) {
        wa = uniformWeights(n, wb.defined() ? wb.sum().item<double>() : 1.0);
    }
    if (!wb.defined()) {
        wb = uniformWeights(m, wa.sum().item<double>());
    }
    checkMasses(wa.sum().item<double>(), wb.sum().item<double>(), "");
    checkProblemSize(n, m);

    ExactResult result;
    double* plan = nullptr;
    if (computePlan) {
        result.plan = torch::zeros({ n, m }, torch::kDouble);
        plan = result.plan.data_ptr<double>();
    }
    const SquaredEuclidean dist { xd.data_ptr<double>(), yd.data_ptr<double>(), xd.size(1) };
    result.cost = solveWeighted(wa.data_ptr<double>(), n, wb.data_ptr<double>(), m, dist, plan);
    return result;
}

torch::Tensor exactEmdBatched(
    const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a, const torch::Tensor& b)
{
    WFM_CHECK(x.defined() && x.dim() == 3, "x must be [B,N,d], got ",
        x.defined() ? x.sizes() : c10::IntArrayRef {});
    WFM_CHECK(y.defined() && y.dim() == 3, "y must be [B,M,d], got ",
        y.defined() ? y.sizes() : c10::IntArrayRef {});
    WFM_CHECK(x.size(0) == y.size(0) && x.size(2) == y.size(2),
        "x and y must have the same batch size and dimension, got ", x.sizes(), " and ", y.sizes());
    const std::int64_t batch = x.size(0);
    const std::int64_t n = x.size(1);
    const std::int64_t m = y.size(1);
    const std::int64_t d = x.size(2);
    WFM_CHECK(n > 0 && m > 0, "x and y must have points, got ", x.sizes(), " and ", y.sizes());
    const torch::Tensor xd = toCpuDouble(x, "x");
    const torch::Tensor yd = toCpuDouble(y, "y");

    torch::Tensor wa;
    torch::Tensor wb;
    if (a.defined()) {
        WFM_CHECK(a.dim() == 2 && a.size(0) == batch && a.size(1) == n, "a must be [", batch, ",",
            n, "], got ", a.sizes());
        wa = toWeights(a, "a");
    }
    if (b.defined()) {
        WFM_CHECK(b.dim() == 2 && b.size(0) == batch && b.size(1) == m, "b must be [", batch, ",",
            m, "], got ", b.sizes());
        wb = toWeights(b, "b");
    }
    if (!wa.defined()) {
        const torch::Tensor total
            = wb.defined() ? wb.sum(1, true) : torch::ones({ batch, 1 }, torch::kDouble);
        wa = (total / static_cast<double>(n)).expand({ batch, n }).contiguous();
    }
    if (!wb.defined()) {
        wb = (wa.sum(1, true) / static_cast<double>(m)).expand({ batch, m }).contiguous();
    }
    // Validate every pair up front: nothing below may throw except a solver failure.
    const torch::Tensor sa = wa.sum(1);
    const torch::Tensor sb = wb.sum(1);
    for (std::int64_t p = 0; p < batch; ++p) {
        checkMasses(sa[p].item<double>(), sb[p].item<double>(), detail::concat("pair ", p, ": "));
    }
    checkProblemSize(n, m);

    torch::Tensor costs = torch::zeros({ batch }, torch::kDouble);
    double* out = costs.data_ptr<double>();
    const double* xp = xd.data_ptr<double>();
    const double* yp = yd.data_ptr<double>();
    const double* ap = wa.data_ptr<double>();
    const double* bp = wb.data_ptr<double>();
    wfm::parallelFor(batch, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t p = begin; p < end; ++p) {
            const SquaredEuclidean dist { xp + p * n * d, yp + p * m * d, d };
            out[p] = solveWeighted(ap + p * n, n, bp + p * m, m, dist, nullptr);
        }
    });
    return costs;
}

torch::Tensor exactAssignment(const torch::Tensor& cost)
{
    WFM_CHECK(cost.defined() && (cost.dim() == 2 || cost.dim() == 3),
        "cost must be [N,N] or [B,N,N], got ", cost.defined() ? cost.sizes() : c10::IntArrayRef {});
    const bool batched = cost.dim() == 3;
    const std::int64_t n = cost.size(-1);
    WFM_CHECK(cost.size(-2) == n, "cost must be square, got ", cost.sizes());
    const torch::Tensor c = toCpuDouble(batched ? cost : cost.unsqueeze(0), "cost");
    const std::int64_t batch = c.size(0);

    torch::Tensor perm = torch::empty({ batch, n }, torch::kLong);
    if (n > 0 && batch > 0) {
        const double* cp = c.data_ptr<double>();
        std::int64_t* pp = perm.data_ptr<std::int64_t>();
        wfm::parallelFor(batch, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t p = begin; p < end; ++p) {
                solveAssignment(cp + p * n * n, n, pp + p * n);
            }
        });
    }
    return batched ? perm : perm.squeeze(0);
}

} // namespace wfm::ot
