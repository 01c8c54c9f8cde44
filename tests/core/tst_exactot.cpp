#include "wfm/Error.h"
#include "wfm/ot/ExactOT.h"

#include <QtTest>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

using wfm::ot::ExactResult;

namespace {

// LP optimum vs independent truth, relative to the cost scale.
constexpr double kRelTol = 1e-9;
// Marginals of the returned plan vs the input weights (integer flow quantisation is ~1e-15).
constexpr double kMarginalTol = 1e-12;

using Matrix = std::vector<std::vector<double>>;

torch::Tensor toTensor(const Matrix& m)
{
    const auto rows = static_cast<std::int64_t>(m.size());
    const auto cols = static_cast<std::int64_t>(m.empty() ? 0 : m[0].size());
    torch::Tensor t = torch::empty({ rows, cols }, torch::kDouble);
    for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t j = 0; j < cols; ++j) {
            t[i][j] = m[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
        }
    }
    return t;
}

torch::Tensor toTensor(const std::vector<double>& v)
{
    return torch::tensor(v, torch::kDouble);
}

Matrix randomMatrix(std::mt19937_64& rng, int rows, int cols, bool ties)
{
    std::uniform_real_distribution<double> real(-1.0, 3.0);
    std::uniform_int_distribution<int> small(0, 3);
    Matrix m(static_cast<std::size_t>(rows), std::vector<double>(static_cast<std::size_t>(cols)));
    for (auto& row : m) {
        for (double& c : row) {
            c = ties ? small(rng) : real(rng);
        }
    }
    return m;
}

/// Minimum of sum_i C[i, p(i)] over all permutations (brute force).
double bruteForceAssignment(const Matrix& c)
{
    std::vector<int> perm(c.size());
    std::iota(perm.begin(), perm.end(), 0);
    double best = std::numeric_limits<double>::infinity();
    do {
        double s = 0;
        for (std::size_t i = 0; i < c.size(); ++i) {
            s += c[i][static_cast<std::size_t>(perm[i])];
        }
        best = std::min(best, s);
    } while (std::next_permutation(perm.begin(), perm.end()));
    return best;
}

/// Minimum of sum P_ij C_ij over all non-negative integer matrices with row sums r and column
/// sums s (exhaustive). The transportation polytope with integer margins has integer vertices,
/// so this is the LP optimum.
double bruteForceTransport(const Matrix& c, std::vector<int> r, std::vector<int> s)
{
    const std::size_t n = r.size();
    const std::size_t m = s.size();
    double best = std::numeric_limits<double>::infinity();
    std::function<void(std::size_t, std::size_t, double)> fill
        = [&](std::size_t i, std::size_t j, double acc) {
              if (i == n) {
                  if (std::all_of(s.begin(), s.end(), [](int v) { return v == 0; })) {
                      best = std::min(best, acc);
                  }
                  return;
              }
              if (j == m - 1) {
                  // The last cell of a row takes what the row has left.
                  const int f = r[i];
                  if (f > s[j]) {
                      return;
                  }
                  r[i] -= f;
                  s[j] -= f;
                  fill(i + 1, 0, acc + f * c[i][j]);
                  r[i] += f;
                  s[j] += f;
                  return;
              }
              for (int f = 0; f <= std::min(r[i], s[j]); ++f) {
                  r[i] -= f;
                  s[j] -= f;
                  fill(i, j + 1, acc + f * c[i][j]);
                  r[i] += f;
                  s[j] += f;
              }
          };
    fill(0, 0, 0.0);
    return best;
}

/// 1-D truth: for a convex cost of x - y the monotone (north-west corner on sorted points)
/// coupling is optimal.
double monotoneCoupling1d(
    std::vector<double> x, std::vector<double> a, std::vector<double> y, std::vector<double> b)
{
    auto sortBy = [](std::vector<double>& pts, std::vector<double>& w) {
        std::vector<std::size_t> idx(pts.size());
        std::iota(idx.begin(), idx.end(), std::size_t { 0 });
        std::sort(
            idx.begin(), idx.end(), [&](std::size_t i, std::size_t j) { return pts[i] < pts[j]; });
        std::vector<double> p2, w2;
        for (std::size_t i : idx) {
            p2.push_back(pts[i]);
            w2.push_back(w[i]);
        }
        pts = p2;
        w = w2;
    };
    sortBy(x, a);
    sortBy(y, b);
    double cost = 0;
    std::size_t i = 0;
    std::size_t j = 0;
    while (i < x.size() && j < y.size()) {
        const double mass = std::min(a[i], b[j]);
        cost += mass * (x[i] - y[j]) * (x[i] - y[j]);
        a[i] -= mass;
        b[j] -= mass;
        // Advance the side that ran out (both when both did, up to rounding).
        const bool doneA = a[i] <= 1e-15;
        const bool doneB = b[j] <= 1e-15;
        if (doneA) {
            ++i;
        }
        if (doneB) {
            ++j;
        }
    }
    return cost;
}

std::vector<double> randomWeights(std::mt19937_64& rng, int n, double zeroFraction = 0.0)
{
    std::uniform_real_distribution<double> u(0.05, 1.0);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    std::vector<double> w(static_cast<std::size_t>(n));
    for (double& v : w) {
        v = coin(rng) < zeroFraction ? 0.0 : u(rng);
    }
    if (std::all_of(w.begin(), w.end(), [](double v) { return v == 0; })) {
        w[0] = 1.0;
    }
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    for (double& v : w) {
        v /= total;
    }
    return w;
}

torch::Tensor squaredDistances(const torch::Tensor& x, const torch::Tensor& y)
{
    return (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1);
}

bool closeRel(double got, double want, double scale)
{
    return std::abs(got - want) <= kRelTol * std::max(1.0, std::abs(scale));
}

template <typename E>
bool throwsWith(const std::function<void()>& fn, const char* needle, std::string& message)
{
    try {
        fn();
    } catch (const E& e) {
        message = e.what();
        return message.find(needle) != std::string::npos;
    } catch (const std::exception& e) {
        message = std::string("wrong exception type: ") + e.what();
        return false;
    }
    message = "no exception";
    return false;
}

} // namespace

class TestExactOT : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void assignmentMatchesBruteForce_data();
    void assignmentMatchesBruteForce();
    void assignmentBatchedAndDegenerate();

    void uniformTransportEqualsAssignment_data();
    void uniformTransportEqualsAssignment();
    void transportMatchesExhaustiveLp_data();
    void transportMatchesExhaustiveLp();
    void oneDimensionalMonotoneCoupling_data();
    void oneDimensionalMonotoneCoupling();
    void planIsAFeasibleCoupling();
    void invariantToPermutingPoints();
    void paddingChangesNothing();
    void batchedEqualsOneByOne();
    void float32InputsAndScaleInvariance();

    void badInputsThrow();
};

void TestExactOT::initTestCase()
{
    QVERIFY2(wfm::ot::exactTransportAvailable(),
        "this build has no LEMON (install liblemon-dev and reconfigure)");
}

void TestExactOT::assignmentMatchesBruteForce_data()
{
    QTest::addColumn<int>("n");
    QTest::addColumn<bool>("ties");
    for (int n = 1; n <= 7; ++n) {
        QTest::addRow("n=%d real", n) << n << false;
        QTest::addRow("n=%d ties", n) << n << true;
    }
}

void TestExactOT::assignmentMatchesBruteForce()
{
    QFETCH(int, n);
    QFETCH(bool, ties);
    const int seeds = n <= 5 ? 60 : 20;
    for (int seed = 0; seed < seeds; ++seed) {
        std::mt19937_64 rng(1000 * n + seed + (ties ? 500 : 0));
        const Matrix c = randomMatrix(rng, n, n, ties);
        const torch::Tensor perm = wfm::ot::exactAssignment(toTensor(c));
        QCOMPARE(perm.scalar_type(), torch::kLong);
        QCOMPARE(perm.sizes().vec(), std::vector<std::int64_t>({ n }));
        // A permutation ...
        std::vector<int> seen(static_cast<std::size_t>(n), 0);
        double cost = 0;
        for (int i = 0; i < n; ++i) {
            const auto j = perm[i].item<std::int64_t>();
            QVERIFY(j >= 0 && j < n);
            ++seen[static_cast<std::size_t>(j)];
            cost += c[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
        }
        QVERIFY(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
        // ... of minimal cost.
        const double truth = bruteForceAssignment(c);
        QVERIFY2(closeRel(cost, truth, truth),
            qPrintable(QString("seed %1: %2 vs brute force %3").arg(seed).arg(cost).arg(truth)));
    }
}

void TestExactOT::assignmentBatchedAndDegenerate()
{
    std::mt19937_64 rng(42);
    const int batch = 6;
    const int n = 6;
    torch::Tensor costs = torch::empty({ batch, n, n }, torch::kDouble);
    std::vector<Matrix> mats;
    for (int b = 0; b < batch; ++b) {
        mats.push_back(randomMatrix(rng, n, n, b % 2 == 0));
        costs[b] = toTensor(mats.back());
    }
    const torch::Tensor perms = wfm::ot::exactAssignment(costs.to(torch::kFloat));
    QCOMPARE(perms.sizes().vec(), std::vector<std::int64_t>({ batch, n }));
    for (int b = 0; b < batch; ++b) {
        double cost = 0;
        for (int i = 0; i < n; ++i) {
            cost += mats[static_cast<std::size_t>(b)][static_cast<std::size_t>(i)]
                        [static_cast<std::size_t>(perms[b][i].item<std::int64_t>())];
        }
        // float32 input: compare with a float32-sized tolerance.
        QVERIFY(std::abs(cost - bruteForceAssignment(mats[static_cast<std::size_t>(b)])) < 1e-5);
    }
    // All-equal costs (every permutation optimal) and the trivial sizes.
    const torch::Tensor flat = wfm::ot::exactAssignment(torch::ones({ 5, 5 }, torch::kDouble));
    QCOMPARE(std::get<0>(flat.sort()).equal(torch::arange(5, torch::kLong)), true);
    QCOMPARE(wfm::ot::exactAssignment(torch::zeros({ 0, 0 })).numel(), std::int64_t { 0 });
    QCOMPARE(wfm::ot::exactAssignment(torch::full({ 1, 1 }, 3.0)).item<std::int64_t>(),
        std::int64_t { 0 });
    // Anti-diagonal optimum.
    const torch::Tensor anti = 1.0 - torch::eye(4, torch::kDouble).flip({ 1 });
    QVERIFY(wfm::ot::exactAssignment(anti).equal(torch::tensor({ 3, 2, 1, 0 }, torch::kLong)));
}

void TestExactOT::uniformTransportEqualsAssignment_data()
{
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("d");
    QTest::newRow("n=5 d=1") << 5 << 1;
    QTest::newRow("n=8 d=2") << 8 << 2;
    QTest::newRow("n=20 d=3") << 20 << 3;
    QTest::newRow("n=64 d=2") << 64 << 2;
    QTest::newRow("n=150 d=5") << 150 << 5;
}

void TestExactOT::uniformTransportEqualsAssignment()
{
    QFETCH(int, n);
    QFETCH(int, d);
    // Birkhoff: with uniform weights on equal sizes an optimal plan is a permutation / n.
    for (int seed = 0; seed < 5; ++seed) {
        auto gen = torch::make_generator<at::CPUGeneratorImpl>(100 + seed);
        const torch::Tensor x = at::randn({ n, d }, gen, torch::kDouble);
        const torch::Tensor y = at::randn({ n, d }, gen, torch::kDouble) + 0.5;
        const torch::Tensor c = squaredDistances(x, y);
        const torch::Tensor perm = wfm::ot::exactAssignment(c);
        const double assignment
            = c.gather(1, perm.unsqueeze(1)).sum().item<double>() / static_cast<double>(n);

        const ExactResult emd = wfm::ot::exactEmd(x, y);
        QVERIFY2(closeRel(emd.cost, assignment, assignment),
            qPrintable(QString("%1 vs %2").arg(emd.cost, 0, 'g', 17).arg(assignment, 0, 'g', 17)));
        const torch::Tensor uniform = torch::full({ n }, 1.0 / n, torch::kDouble);
        const ExactResult general = wfm::ot::exactTransport(c, uniform, uniform);
        QVERIFY(closeRel(general.cost, assignment, assignment));
        QVERIFY(closeRel((general.plan * c).sum().item<double>(), general.cost, general.cost));
    }
}

void TestExactOT::transportMatchesExhaustiveLp_data()
{
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("m");
    QTest::addColumn<int>("total");
    QTest::addColumn<bool>("ties");
    QTest::newRow("2x2 total 5") << 2 << 2 << 5 << false;
    QTest::newRow("3x3 total 7") << 3 << 3 << 7 << false;
    QTest::newRow("3x3 total 7 ties") << 3 << 3 << 7 << true;
    QTest::newRow("2x4 total 8") << 2 << 4 << 8 << false;
    QTest::newRow("4x3 total 9") << 4 << 3 << 9 << false;
    QTest::newRow("4x3 total 9 ties") << 4 << 3 << 9 << true;
    QTest::newRow("1x4 total 6") << 1 << 4 << 6 << false;
}

void TestExactOT::transportMatchesExhaustiveLp()
{
    QFETCH(int, n);
    QFETCH(int, m);
    QFETCH(int, total);
    QFETCH(bool, ties);
    for (int seed = 0; seed < 25; ++seed) {
        std::mt19937_64 rng(7000 + 37 * n + 11 * m + seed + (ties ? 1 : 0));
        const Matrix c = randomMatrix(rng, n, m, ties);
        // Random integer margins with the given total (zeros allowed).
        auto margins = [&](int k) {
            std::vector<int> v(static_cast<std::size_t>(k), 0);
            std::uniform_int_distribution<int> pick(0, k - 1);
            for (int u = 0; u < total; ++u) {
                ++v[static_cast<std::size_t>(pick(rng))];
            }
            return v;
        };
        const std::vector<int> r = margins(n);
        const std::vector<int> s = margins(m);
        const double truth = bruteForceTransport(c, r, s) / total;
        std::vector<double> a(r.begin(), r.end());
        std::vector<double> b(s.begin(), s.end());
        for (double& v : a) {
            v /= total;
        }
        for (double& v : b) {
            v /= total;
        }
        const ExactResult res = wfm::ot::exactTransport(toTensor(c), toTensor(a), toTensor(b));
        QVERIFY2(closeRel(res.cost, truth, 3.0),
            qPrintable(QString("seed %1: %2 vs exhaustive %3").arg(seed).arg(res.cost).arg(truth)));
    }
}

void TestExactOT::oneDimensionalMonotoneCoupling_data()
{
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("m");
    QTest::newRow("3x2") << 3 << 2;
    QTest::newRow("5x7") << 5 << 7;
    QTest::newRow("12x9") << 12 << 9;
    QTest::newRow("40x55") << 40 << 55;
}

void TestExactOT::oneDimensionalMonotoneCoupling()
{
    QFETCH(int, n);
    QFETCH(int, m);
    for (int seed = 0; seed < 10; ++seed) {
        std::mt19937_64 rng(300 + seed + 17 * n);
        std::normal_distribution<double> g(0.0, 1.0);
        std::vector<double> x(static_cast<std::size_t>(n));
        std::vector<double> y(static_cast<std::size_t>(m));
        for (double& v : x) {
            v = g(rng);
        }
        for (double& v : y) {
            v = 2.0 * g(rng) + 1.0;
        }
        const std::vector<double> a = randomWeights(rng, n);
        const std::vector<double> b = randomWeights(rng, m);
        const double truth = monotoneCoupling1d(x, a, y, b);
        const ExactResult res = wfm::ot::exactEmd(
            toTensor(x).unsqueeze(1), toTensor(y).unsqueeze(1), toTensor(a), toTensor(b));
        QVERIFY2(closeRel(res.cost, truth, truth),
            qPrintable(QString("seed %1: %2 vs monotone %3")
                           .arg(seed)
                           .arg(res.cost, 0, 'g', 17)
                           .arg(truth, 0, 'g', 17)));
    }
}

void TestExactOT::planIsAFeasibleCoupling()
{
    std::mt19937_64 rng(5);
    for (int trial = 0; trial < 10; ++trial) {
        const int n = 7 + trial;
        const int m = 11 - trial / 2;
        const torch::Tensor a = toTensor(randomWeights(rng, n, 0.2)) * 3.0; // total mass 3
        const torch::Tensor b = toTensor(randomWeights(rng, m, 0.2)) * 3.0;
        auto gen = torch::make_generator<at::CPUGeneratorImpl>(trial);
        const torch::Tensor c = at::rand({ n, m }, gen, torch::kDouble) * 10.0 - 2.0;
        const ExactResult res = wfm::ot::exactTransport(c, a, b);
        QCOMPARE(res.plan.scalar_type(), torch::kDouble);
        QVERIFY(res.plan.device().is_cpu());
        QCOMPARE(res.plan.sizes().vec(), std::vector<std::int64_t>({ n, m }));
        QVERIFY((res.plan >= 0).all().item<bool>());
        QVERIFY((res.plan.sum(1) - a).abs().max().item<double>() < kMarginalTol);
        QVERIFY((res.plan.sum(0) - b).abs().max().item<double>() < kMarginalTol);
        // Zero-weight rows and columns carry nothing.
        QVERIFY(res.plan.index({ a == 0 }).abs().sum().item<double>() == 0.0);
        QVERIFY(res.plan.t().index({ b == 0 }).abs().sum().item<double>() == 0.0);
        QVERIFY(closeRel((res.plan * c).sum().item<double>(), res.cost, res.cost));
        // A basic optimal solution has at most n + m - 1 non-zero entries.
        QVERIFY((res.plan > 0).sum().item<std::int64_t>() <= n + m - 1);
        // Without the plan the cost is the same.
        const ExactResult costOnly = wfm::ot::exactTransport(c, a, b, false);
        QVERIFY(!costOnly.plan.defined());
        QVERIFY(closeRel(costOnly.cost, res.cost, res.cost));
    }
}

void TestExactOT::invariantToPermutingPoints()
{
    std::mt19937_64 rng(9);
    auto gen = torch::make_generator<at::CPUGeneratorImpl>(9);
    const int n = 25;
    const int m = 18;
    const torch::Tensor x = at::randn({ n, 3 }, gen, torch::kDouble);
    const torch::Tensor y = at::randn({ m, 3 }, gen, torch::kDouble);
    const torch::Tensor a = toTensor(randomWeights(rng, n));
    const torch::Tensor b = toTensor(randomWeights(rng, m));
    const ExactResult base = wfm::ot::exactEmd(x, y, a, b);
    for (int trial = 0; trial < 5; ++trial) {
        const torch::Tensor pi = at::randperm(n, gen, torch::kLong);
        const torch::Tensor pj = at::randperm(m, gen, torch::kLong);
        const ExactResult perm
            = wfm::ot::exactEmd(x.index({ pi }), y.index({ pj }), a.index({ pi }), b.index({ pj }));
        QVERIFY(closeRel(perm.cost, base.cost, base.cost));
        // Swapping the roles of the clouds transposes the problem: same cost.
        QVERIFY(closeRel(wfm::ot::exactEmd(y, x, b, a, false).cost, base.cost, base.cost));
    }
}

void TestExactOT::paddingChangesNothing()
{
    std::mt19937_64 rng(11);
    auto gen = torch::make_generator<at::CPUGeneratorImpl>(11);
    const int n = 12;
    const int m = 15;
    const torch::Tensor x = at::randn({ n, 2 }, gen, torch::kDouble);
    const torch::Tensor y = at::randn({ m, 2 }, gen, torch::kDouble);
    const torch::Tensor a = toTensor(randomWeights(rng, n));
    const torch::Tensor b = toTensor(randomWeights(rng, m));
    const ExactResult base = wfm::ot::exactEmd(x, y, a, b);

    // Padded points far away (they would dominate the cost if they were used).
    const torch::Tensor xp = torch::cat({ x, at::randn({ 5, 2 }, gen, torch::kDouble) * 100 });
    const torch::Tensor yp = torch::cat({ at::randn({ 3, 2 }, gen, torch::kDouble) * 100, y });
    const torch::Tensor ap = torch::cat({ a, torch::zeros({ 5 }, torch::kDouble) });
    const torch::Tensor bp = torch::cat({ torch::zeros({ 3 }, torch::kDouble), b });
    const ExactResult padded = wfm::ot::exactEmd(xp, yp, ap, bp);
    QVERIFY(closeRel(padded.cost, base.cost, base.cost));
    QCOMPARE(padded.plan.sizes().vec(), std::vector<std::int64_t>({ n + 5, m + 3 }));
    QCOMPARE(padded.plan.slice(0, n).abs().sum().item<double>(), 0.0);
    QCOMPARE(padded.plan.slice(1, 0, 3).abs().sum().item<double>(), 0.0);
    const torch::Tensor inner = padded.plan.slice(0, 0, n).slice(1, 3);
    QVERIFY(closeRel((inner * squaredDistances(x, y)).sum().item<double>(), base.cost, base.cost));
}

void TestExactOT::batchedEqualsOneByOne()
{
    std::mt19937_64 rng(13);
    auto gen = torch::make_generator<at::CPUGeneratorImpl>(13);
    const int batch = 7;
    const int n = 16;
    const int m = 12;
    const int d = 3;
    const torch::Tensor x = at::randn({ batch, n, d }, gen, torch::kDouble);
    const torch::Tensor y = at::randn({ batch, m, d }, gen, torch::kDouble) * 1.5;
    torch::Tensor a = torch::zeros({ batch, n }, torch::kDouble);
    torch::Tensor b = torch::zeros({ batch, m }, torch::kDouble);
    for (int p = 0; p < batch; ++p) {
        // Pair p keeps the first n - p source and m - p / 2 target points; the rest is padding.
        const int nLive = n - p;
        const int mLive = m - p / 2;
        a[p].slice(0, 0, nLive) = toTensor(randomWeights(rng, nLive));
        b[p].slice(0, 0, mLive) = toTensor(randomWeights(rng, mLive));
    }
    const torch::Tensor costs = wfm::ot::exactEmdBatched(x, y, a, b);
    QCOMPARE(costs.scalar_type(), torch::kDouble);
    QCOMPARE(costs.sizes().vec(), std::vector<std::int64_t>({ batch }));
    for (int p = 0; p < batch; ++p) {
        const int nLive = n - p;
        const int mLive = m - p / 2;
        const double single = wfm::ot::exactEmd(x[p].slice(0, 0, nLive), y[p].slice(0, 0, mLive),
            a[p].slice(0, 0, nLive), b[p].slice(0, 0, mLive), false)
                                  .cost;
        QVERIFY2(closeRel(costs[p].item<double>(), single, single),
            qPrintable(
                QString("pair %1: %2 vs %3").arg(p).arg(costs[p].item<double>()).arg(single)));
    }
    // Undefined weights mean uniform over all points.
    const torch::Tensor uniform = wfm::ot::exactEmdBatched(x, y);
    for (int p = 0; p < batch; ++p) {
        const double single = wfm::ot::exactEmd(x[p], y[p], {}, {}, false).cost;
        QVERIFY(closeRel(uniform[p].item<double>(), single, single));
    }
}

void TestExactOT::float32InputsAndScaleInvariance()
{
    auto gen = torch::make_generator<at::CPUGeneratorImpl>(17);
    const torch::Tensor x = at::randn({ 30, 2 }, gen, torch::kDouble);
    const torch::Tensor y = at::randn({ 30, 2 }, gen, torch::kDouble);
    const double base = wfm::ot::exactEmd(x, y).cost;
    // float32 coordinates: the same problem up to float32 rounding of the inputs.
    const torch::Tensor xf = x.to(torch::kFloat);
    const torch::Tensor yf = y.to(torch::kFloat);
    const double f32 = wfm::ot::exactEmd(xf, yf).cost;
    const double f32Truth = wfm::ot::exactEmd(xf.to(torch::kDouble), yf.to(torch::kDouble)).cost;
    QVERIFY(closeRel(f32, f32Truth, f32Truth));
    QVERIFY(std::abs(f32 - base) < 1e-5 * base);
    // W2^2 scales with the square of a common scale factor, even for tiny or huge units.
    for (const double s : { 1e-6, 1e3 }) {
        const double scaled = wfm::ot::exactEmd(x * s, y * s).cost;
        QVERIFY2(std::abs(scaled / (s * s) - base) <= kRelTol * base,
            qPrintable(QString("scale %1: %2 vs %3")
                           .arg(s)
                           .arg(scaled / (s * s), 0, 'g', 17)
                           .arg(base, 0, 'g', 17)));
    }
    // Translating both clouds changes nothing; translating one adds |shift|^2 when the
    // means agree (here: after centring both).
    const torch::Tensor xc = x - x.mean(0);
    const torch::Tensor yc = y - y.mean(0);
    const double centred = wfm::ot::exactEmd(xc, yc).cost;
    const torch::Tensor shift = torch::tensor({ 3.0, -4.0 }, torch::kDouble);
    QVERIFY(closeRel(wfm::ot::exactEmd(xc + shift, yc + shift).cost, centred, centred));
    QVERIFY(closeRel(wfm::ot::exactEmd(xc, yc + shift).cost, centred + 25.0, centred + 25.0));
}

void TestExactOT::badInputsThrow()
{
    const torch::Tensor c = torch::rand({ 3, 4 }, torch::kDouble);
    const torch::Tensor a = torch::full({ 3 }, 1.0 / 3, torch::kDouble);
    const torch::Tensor b = torch::full({ 4 }, 0.25, torch::kDouble);
    const torch::Tensor x = torch::randn({ 3, 2 }, torch::kDouble);
    const torch::Tensor y = torch::randn({ 4, 2 }, torch::kDouble);
    std::string msg;
    auto expect = [&](const std::function<void()>& fn, const char* needle) {
        const bool ok = throwsWith<wfm::ConfigError>(fn, needle, msg);
        if (!ok) {
            qWarning("expected ConfigError mentioning '%s', got: %s", needle, msg.c_str());
        }
        return ok;
    };
    auto with = [](const torch::Tensor& t, std::vector<at::indexing::TensorIndex> index, double v) {
        torch::Tensor out = t.clone();
        out.index_put_(index, v);
        return out;
    };
    using namespace wfm::ot;
    QVERIFY(expect([&] { exactTransport(c[0], a, b); }, "cost"));
    QVERIFY(expect([&] { exactTransport(c, b, b); }, "a must be [3]"));
    QVERIFY(expect([&] { exactTransport(c, a, a); }, "b must be [4]"));
    QVERIFY(expect([&] { exactTransport(c.to(torch::kLong), a, b); }, "cost must be float32"));
    QVERIFY(expect([&] { exactTransport(with(c, { 1, 2 }, NAN), a, b); }, "cost has non-finite"));
    QVERIFY(expect([&] { exactTransport(with(c, { 0, 0 }, INFINITY), a, b); }, "non-finite"));
    QVERIFY(expect([&] { exactTransport(c, with(a, { 0 }, -0.1), b); }, "a has negative"));
    QVERIFY(expect([&] { exactTransport(c, a, with(b, { 1 }, NAN)); }, "b has non-finite"));
    QVERIFY(expect([&] { exactTransport(c, a * 2, b); }, "equal totals"));
    QVERIFY(expect([&] { exactTransport(c, a * 0, b * 0); }, "positive total"));
    QVERIFY(expect([&] { exactEmd(x, y.slice(1, 0, 1)); }, "same dimension"));
    QVERIFY(expect([&] { exactEmd(x[0], y); }, "x must be [N,d]"));
    QVERIFY(expect([&] { exactEmd(x, y, a.slice(0, 0, 2)); }, "a must be [3]"));
    QVERIFY(expect([&] { exactEmd(x, y, a * 2, b); }, "equal totals"));
    QVERIFY(expect([&] { exactEmdBatched(x, y); }, "x must be [B,N,d]"));
    QVERIFY(expect(
        [&] {
            exactEmdBatched(x.unsqueeze(0), y.unsqueeze(0), a.unsqueeze(0), b.unsqueeze(0) * 2);
        },
        "pair 0: weights a and b must have equal totals"));
    QVERIFY(expect([&] { exactEmdBatched(x.unsqueeze(0), y.unsqueeze(0), a, b.unsqueeze(0)); },
        "a must be [1,3]"));
    QVERIFY(expect([&] { exactAssignment(c); }, "square"));
    QVERIFY(expect([&] { exactAssignment(c[0]); }, "[N,N] or [B,N,N]"));
    QVERIFY(expect([&] { exactAssignment(with(torch::eye(3), { 0, 1 }, NAN)); }, "non-finite"));
}

QTEST_GUILESS_MAIN(TestExactOT)
#include "tst_exactot.moc"
