// Maps from a Sinkhorn plan: greedy rounded matching (against the literal reference loop),
// argmax, sampled and barycentric maps, on the tensor path and the fused kernels.

#include "wfm/Error.h"
#include "wfm/ot/Sinkhorn.h"
#include "wfm/ot/TransportMap.h"

#include <QtTest>

#include <torch/torch.h>

#include <random>

using namespace wfm::ot;

namespace {

/// The reference algorithm, literally: N global-argmax passes (ties: smallest flat index).
std::vector<int64_t> naiveGreedy(torch::Tensor S, const std::vector<bool>& rowLive,
    const std::vector<bool>& colLive)
{
    S = S.clone().to(torch::kDouble);
    const int64_t N = S.size(0), M = S.size(1);
    for (int64_t i = 0; i < N; ++i) {
        if (!rowLive[static_cast<size_t>(i)]) {
            S[i].fill_(-INFINITY);
        }
    }
    for (int64_t j = 0; j < M; ++j) {
        if (!colLive[static_cast<size_t>(j)]) {
            S.select(1, j).fill_(-INFINITY);
        }
    }
    std::vector<int64_t> out(static_cast<size_t>(N), -1);
    auto acc = S.accessor<double, 2>();
    while (true) {
        double best = -INFINITY;
        int64_t bi = -1, bj = -1;
        for (int64_t i = 0; i < N; ++i) {
            for (int64_t j = 0; j < M; ++j) {
                if (acc[i][j] > best) {
                    best = acc[i][j];
                    bi = i;
                    bj = j;
                }
            }
        }
        if (bi < 0) {
            break;
        }
        out[static_cast<size_t>(bi)] = bj;
        for (int64_t j = 0; j < M; ++j) {
            acc[bi][j] = -INFINITY;
        }
        for (int64_t i = 0; i < N; ++i) {
            acc[i][bj] = -INFINITY;
        }
    }
    return out;
}

bool isBijectionOnLive(const torch::Tensor& assign, const torch::Tensor& a, const torch::Tensor& b)
{
    auto as = assign.cpu();
    auto live = (a.cpu() > 0);
    auto colLive = (b.cpu() > 0);
    std::vector<int> hits(static_cast<size_t>(b.size(0)), 0);
    for (int64_t i = 0; i < as.size(0); ++i) {
        const auto j = as[i].item<int64_t>();
        if (!live[i].item<bool>()) {
            if (j != -1) {
                return false;
            }
            continue;
        }
        if (j < 0 || j >= b.size(0) || !colLive[j].item<bool>()) {
            return false;
        }
        hits[static_cast<size_t>(j)]++;
    }
    for (int64_t j = 0; j < b.size(0); ++j) {
        if (colLive[j].item<bool>() && hits[static_cast<size_t>(j)] != 1) {
            return false;
        }
    }
    return true;
}

torch::Tensor maskedUniform(int64_t B, int64_t N, const std::vector<int64_t>& live)
{
    auto w = torch::zeros({ B, N });
    for (int64_t b = 0; b < B; ++b) {
        w[b].slice(0, 0, live[static_cast<size_t>(b)]) = 1.0 / static_cast<double>(live[static_cast<size_t>(b)]);
    }
    return w;
}

} // namespace

class TestTransportMap : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(99); }

    void greedyEqualsReferenceLoop_data()
    {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("m");
        QTest::addColumn<bool>("ties");
        QTest::newRow("5x5") << 5 << 5 << false;
        QTest::newRow("40x40") << 40 << 40 << false;
        QTest::newRow("30x50") << 30 << 50 << false;
        QTest::newRow("ties 25x25") << 25 << 25 << true;
        QTest::newRow("ties 60x60") << 60 << 60 << true;
    }
    void greedyEqualsReferenceLoop()
    {
        QFETCH(int, n);
        QFETCH(int, m);
        QFETCH(bool, ties);
        for (int trial = 0; trial < 5; ++trial) {
            auto S = ties ? torch::randint(0, 6, { 1, n, m }).to(torch::kDouble)
                          : torch::randn({ 1, n, m }, torch::kDouble);
            auto wa = torch::ones({ 1, n });
            auto wb = torch::ones({ 1, m });
            // Some dead rows and columns.
            wa[0][n - 1] = 0;
            wb[0][0] = 0;
            std::vector<bool> rl(static_cast<size_t>(n), true), cl(static_cast<size_t>(m), true);
            rl[static_cast<size_t>(n - 1)] = false;
            cl[0] = false;
            auto fast = roundedMatching(S, wa, wb)[0];
            auto ref = naiveGreedy(S[0], rl, cl);
            for (int i = 0; i < n; ++i) {
                if (ref[static_cast<size_t>(i)] >= 0) {
                    QCOMPARE(fast[i].item<int64_t>(), ref[static_cast<size_t>(i)]);
                }
            }
        }
    }

    void roundedIsBijection_data()
    {
        QTest::addColumn<int>("backend");
        QTest::newRow("tensor") << 0;
        QTest::newRow("fused") << 1;
    }
    void roundedIsBijection()
    {
        QFETCH(int, backend);
        const std::vector<int64_t> live { 64, 40, 7 };
        auto x = torch::randn({ 3, 64, 3 });
        auto y = torch::randn({ 3, 64, 3 }) + 1.0;
        auto w = maskedUniform(3, 64, live);
        SinkhornOptions opt;
        opt.setEps(0.002).setIterations(200).setBackend(backend == 0 ? SinkhornBackend::Tensor : SinkhornBackend::Fused);
        auto r = sinkhorn(x, y, w, w, opt);
        auto as = assignment(x, y, w, w, r, MapKind::Rounded);
        QCOMPARE(as.sizes(), torch::IntArrayRef({ 3, 64 }));
        for (int64_t k = 0; k < 3; ++k) {
            QVERIFY2(isBijectionOnLive(as[k], w[k], w[k]), qPrintable(QString("pair %1").arg(k)));
        }
        // Padded rows map to themselves.
        auto T = transportMap(x, y, w, w, r, MapKind::Rounded);
        QVERIFY(torch::equal(T[2].slice(0, 7), x[2].slice(0, 7)));
    }

    // A translated copy: the rounded map recovers the identity correspondence.
    void roundedRecoversTranslation()
    {
        auto x = torch::randn({ 1, 50, 2 });
        auto v = torch::tensor({ 0.3f, -0.2f });
        auto y = x + v;
        for (auto be : { SinkhornBackend::Tensor, SinkhornBackend::Fused }) {
            SinkhornOptions opt;
            opt.setEps(1e-4).setIterations(1000).setBackend(be);
            auto r = sinkhorn(x, y, {}, {}, opt);
            auto T = transportMap(x, y, {}, {}, r, MapKind::Rounded);
            QVERIFY(torch::allclose(T, y, 1e-5, 1e-5));
        }
    }

    void fusedAndTensorAgree()
    {
        auto x = torch::randn({ 2, 40, 3 });
        auto y = torch::randn({ 2, 35, 3 }) * 1.5;
        auto a = maskedUniform(2, 40, { 40, 25 });
        auto b = maskedUniform(2, 35, { 35, 30 });
        SinkhornOptions opt;
        opt.setEps(0.01).setIterations(300);
        auto rt = sinkhorn(x, y, a, b, SinkhornOptions(opt).setBackend(SinkhornBackend::Tensor));
        auto rf = sinkhorn(x, y, a, b, SinkhornOptions(opt).setBackend(SinkhornBackend::Fused));
        // Barycentric maps agree.
        auto Tt = transportMap(x, y, a, b, rt, MapKind::Barycentric);
        auto Tf = transportMap(x, y, a, b, rf, MapKind::Barycentric);
        QVERIFY2(torch::allclose(Tt, Tf, 1e-3, 1e-3),
            qPrintable(QString("max diff %1").arg((Tt - Tf).abs().max().item<double>())));
        // Argmax agrees with the argmax of the materialised plan.
        auto lp = logPlan(x, y, a, b, rt);
        auto ref = lp.argmax(2).masked_fill(a <= 0, -1);
        auto am = assignment(x, y, a, b, rf, MapKind::Argmax);
        const double agree = (am == ref).to(torch::kDouble).mean().item<double>();
        QVERIFY2(agree > 0.97, qPrintable(QString("argmax agreement %1").arg(agree)));
        QCOMPARE(am[1].slice(0, 25).eq(-1).all().item<bool>(), true);
    }

    // The barycentric map is the plan-weighted mean of the targets.
    void barycentricEqualsPlanMean()
    {
        auto x = torch::randn({ 1, 20, 2 }, torch::kDouble);
        auto y = torch::randn({ 1, 30, 2 }, torch::kDouble);
        SinkhornOptions opt;
        opt.setEps(0.05).setIterations(100).setPlan(true).setBackend(SinkhornBackend::Tensor);
        auto r = sinkhorn(x, y, {}, {}, opt);
        auto T = transportMap(x, y, {}, {}, r, MapKind::Barycentric);
        auto P = r.plan;
        auto expected = torch::bmm(P, y) / P.sum(2, true);
        QVERIFY(torch::allclose(T, expected, 1e-10, 1e-10));
    }

    void sampledFollowsPlan_data()
    {
        QTest::addColumn<int>("backend");
        QTest::newRow("tensor") << 0;
        QTest::newRow("fused") << 1;
    }
    // Frequencies of sampled targets match the rows of the plan (chi-square-like bound).
    void sampledFollowsPlan()
    {
        QFETCH(int, backend);
        auto x = torch::randn({ 1, 3, 2 });
        auto y = torch::randn({ 1, 4, 2 });
        SinkhornOptions opt;
        opt.setEps(0.5).setIterations(200).setPlan(true).setBackend(backend == 0 ? SinkhornBackend::Tensor : SinkhornBackend::Fused);
        auto r = sinkhorn(x, y, {}, {}, opt);
        auto P = r.plan[0].to(torch::kDouble);
        auto rows = P / P.sum(1, true);
        const int trials = 4000;
        auto counts = torch::zeros({ 3, 4 }, torch::kDouble);
        for (int s = 0; s < trials; ++s) {
            auto as = assignment(x, y, {}, {}, r, MapKind::Sampled, static_cast<uint64_t>(s) * 7919ULL + 1);
            for (int i = 0; i < 3; ++i) {
                counts[i][as[0][i].item<int64_t>()] += 1;
            }
        }
        auto freq = counts / trials;
        // Binomial standard error is at most 0.5/sqrt(4000) ~ 0.008; allow 5 sigma.
        const double worst = (freq - rows).abs().max().item<double>();
        QVERIFY2(worst < 0.04, qPrintable(QString("frequency error %1").arg(worst)));
    }

    void mapKindNames()
    {
        for (auto k : { MapKind::Rounded, MapKind::Argmax, MapKind::Sampled, MapKind::Barycentric }) {
            QCOMPARE(parseMapKind(mapKindName(k)), k);
        }
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, parseMapKind("nearest"));
    }

    // Displacement interpolation of a shuffled, translated copy: the assignment inverts the
    // shuffle, x_t = x + t v exactly, the endpoints are x and a permutation of y, and with
    // unequal sizes every source point still lands on a target point.
    void displacementInterpolationOfATranslation()
    {
        auto x = torch::randn({ 40, 3 });
        auto v = torch::tensor({ 0.25f, -0.5f, 0.1f });
        auto perm = torch::randperm(40, torch::kLong);
        auto y = (x + v).index_select(0, perm);
        auto a = torch::full({ 40 }, 1.0f / 40);
        const auto opt = SinkhornOptions().setEps(1e-4).setIterations(1000);
        const auto path = displacementInterpolation(x, y, a, a, opt, MapKind::Rounded);
        QCOMPARE(path.assignment.sizes(), (torch::IntArrayRef { 40 }));
        QVERIFY(torch::equal(perm.index_select(0, path.assignment), torch::arange(40, torch::kLong)));
        QVERIFY(torch::equal(path.at(0.0), x));
        QVERIFY(torch::allclose(path.at(1.0), x + v, 1e-5, 1e-5));
        QVERIFY(torch::allclose(path.at(0.3), x + 0.3 * v, 1e-5, 1e-5));
        // 25 targets for 40 sources: every image is one of the targets.
        auto y2 = torch::randn({ 25, 3 });
        auto b2 = torch::full({ 25 }, 1.0f / 25);
        const auto p2 = displacementInterpolation(x, y2, a, b2, opt, MapKind::Rounded);
        for (int64_t i = 0; i < 40; ++i) {
            const auto j = p2.assignment[i].item<int64_t>();
            QVERIFY(j >= 0 && j < 25);
            QVERIFY(torch::equal(p2.mapped[i], y2[j]));
        }
        // The barycentric map has no assignment; its images are plan means.
        const auto pb = displacementInterpolation(x, y, a, a, opt, MapKind::Barycentric);
        QVERIFY(!pb.assignment.defined());
        const double blur = (pb.at(1.0) - (x + v)).abs().max().item<double>();
        QVERIFY2(blur < 2e-2, qPrintable(QString("barycentric error %1").arg(blur)));
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, displacementInterpolation(x, torch::randn({ 5, 2 }), a,
            torch::full({ 5 }, 0.2f), opt, MapKind::Rounded));
    }
};

QTEST_GUILESS_MAIN(TestTransportMap)
#include "tst_transportmap.moc"
