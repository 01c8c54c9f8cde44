// Batched log-domain Sinkhorn: against exact OT, closed forms and invariants, on both the
// tensor-operation path and the fused kernels.

#include "wfm/Error.h"
#include "wfm/ot/ExactOT.h"
#include "wfm/ot/Sinkhorn.h"

#include <QtTest>

#include <torch/torch.h>

using namespace wfm::ot;

namespace {

constexpr double kMarginalTol = 1e-3;    // L1 marginal error after convergence
constexpr double kPathAgreement = 2e-3;  // relative cost difference fused vs tensor (float32)

torch::Tensor randomWeights(int64_t B, int64_t N, const std::vector<int64_t>& live, torch::Dtype dt)
{
    auto w = torch::zeros({ B, N }, torch::kDouble);
    for (int64_t b = 0; b < B; ++b) {
        auto part = torch::rand({ live[static_cast<size_t>(b)] }, torch::kDouble) + 0.2;
        w[b].slice(0, 0, live[static_cast<size_t>(b)]) = part / part.sum();
    }
    return w.to(dt);
}

SinkhornBackend backendFromIndex(int k)
{
    return k == 0 ? SinkhornBackend::Tensor : SinkhornBackend::Fused;
}

} // namespace

class TestSinkhorn : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(1234); }

    void translationClosedForm_data()
    {
        QTest::addColumn<int>("backend");
        QTest::newRow("tensor") << 0;
        QTest::newRow("fused") << 1;
    }
    // Y = X + v: the identity coupling is optimal, so the cost tends to |v|^2 as eps -> 0.
    void translationClosedForm()
    {
        QFETCH(int, backend);
        auto x = torch::randn({ 1, 64, 3 }, torch::kDouble);
        auto v = torch::tensor({ 2.0, -1.0, 0.5 }, torch::kDouble);
        auto y = x + v;
        SinkhornOptions opt;
        opt.setEps(1e-4, EpsMode::Relative).setIterations(2000).setBackend(backendFromIndex(backend));
        opt.tolerance = 1e-6;
        auto dt = backend == 1 ? torch::kFloat : torch::kDouble;
        auto r = sinkhorn(x.to(dt), y.to(dt), {}, {}, opt);
        const double expected = v.pow(2).sum().item<double>();
        QVERIFY2(std::abs(r.cost[0].item<double>() - expected) < 0.01 * expected,
            qPrintable(QString("cost %1 vs |v|^2 %2").arg(r.cost[0].item<double>()).arg(expected)));
    }

    void approachesExactEmd_data()
    {
        QTest::addColumn<int>("backend");
        QTest::newRow("tensor") << 0;
        QTest::newRow("fused") << 1;
    }
    // The entropic cost decreases towards the exact EMD as eps shrinks, and is never below it.
    void approachesExactEmd()
    {
        QFETCH(int, backend);
        auto x = torch::randn({ 40, 2 }, torch::kDouble);
        auto y = torch::randn({ 50, 2 }, torch::kDouble) * 0.7 + 1.0;
        auto a = torch::rand({ 40 }, torch::kDouble) + 0.1;
        a = a / a.sum();
        const double exact = exactEmd(x, y, a, {}).cost;
        double previousGap = 1e30;
        for (double eps : { 0.05, 0.01, 0.002 }) {
            SinkhornOptions opt;
            opt.setEps(eps).setIterations(5000).setTolerance(1e-5).setBackend(backendFromIndex(backend));
            auto r = sinkhorn(x.to(torch::kFloat), y.to(torch::kFloat), a.to(torch::kFloat), {}, opt);
            const double gap = r.cost.item<double>() - exact;
            QVERIFY2(gap > -1e-3 * exact, qPrintable(QString("entropic cost below exact: gap %1").arg(gap)));
            QVERIFY2(gap < previousGap + 1e-4 * exact, qPrintable(QString("gap grew at eps %1").arg(eps)));
            previousGap = gap;
        }
        QVERIFY2(previousGap < 0.01 * exact,
            qPrintable(QString("at eps 0.002 the gap %1 is over 1% of %2").arg(previousGap).arg(exact)));
    }

    void marginalsHold_data()
    {
        QTest::addColumn<int>("backend");
        QTest::newRow("tensor") << 0;
        QTest::newRow("fused") << 1;
    }
    void marginalsHold()
    {
        QFETCH(int, backend);
        auto x = torch::randn({ 3, 30, 3 });
        auto y = torch::randn({ 3, 25, 3 });
        auto a = randomWeights(3, 30, { 30, 20, 7 }, torch::kFloat);
        auto b = randomWeights(3, 25, { 25, 25, 11 }, torch::kFloat);
        SinkhornOptions opt;
        opt.setEps(0.05).setIterations(3000).setTolerance(1e-4).setPlan(true).setBackend(backendFromIndex(backend));
        auto r = sinkhorn(x, y, a, b, opt);
        QVERIFY(r.iterations < 3000);
        auto P = r.plan.to(torch::kDouble);
        const double rowErr = (P.sum(2) - a.to(torch::kDouble)).abs().sum(1).max().item<double>();
        const double colErr = (P.sum(1) - b.to(torch::kDouble)).abs().sum(1).max().item<double>();
        QVERIFY2(rowErr < kMarginalTol && colErr < kMarginalTol,
            qPrintable(QString("row %1 col %2").arg(rowErr).arg(colErr)));
        QVERIFY(r.marginalError.max().item<double>() < kMarginalTol);
        // Padding carries no mass.
        QCOMPARE(P.masked_select((a.to(torch::kDouble) == 0).unsqueeze(2).expand_as(P)).abs().sum().item<double>(), 0.0);
        QCOMPARE(P.masked_select((b.to(torch::kDouble) == 0).unsqueeze(1).expand_as(P)).abs().sum().item<double>(), 0.0);
        // Reported cost equals sum P C from the plan.
        auto C = squaredDistances(x.to(torch::kDouble), y.to(torch::kDouble));
        auto cost = (P * C).sum({ 1, 2 });
        QVERIFY(torch::allclose(cost, r.cost, 1e-4, 1e-6));
    }

    void paddingChangesNothing_data()
    {
        QTest::addColumn<int>("backend");
        QTest::newRow("tensor") << 0;
        QTest::newRow("fused") << 1;
    }
    // A cloud padded with far-away zero-weight points gives the same potentials and cost.
    void paddingChangesNothing()
    {
        QFETCH(int, backend);
        auto x = torch::randn({ 1, 20, 2 });
        auto y = torch::randn({ 1, 15, 2 });
        SinkhornOptions opt;
        opt.setEps(0.01).setIterations(100).setBackend(backendFromIndex(backend));
        auto r0 = sinkhorn(x, y, {}, {}, opt);
        auto xp = torch::cat({ x, torch::full({ 1, 5, 2 }, 100.0) }, 1);
        auto yp = torch::cat({ y, torch::full({ 1, 9, 2 }, -50.0) }, 1);
        auto ap = torch::cat({ torch::full({ 1, 20 }, 1.0 / 20), torch::zeros({ 1, 5 }) }, 1);
        auto bp = torch::cat({ torch::full({ 1, 15 }, 1.0 / 15), torch::zeros({ 1, 9 }) }, 1);
        auto r1 = sinkhorn(xp, yp, ap, bp, opt);
        QVERIFY(torch::allclose(r0.cost, r1.cost, 1e-5, 1e-7));
        QVERIFY(torch::allclose(r0.f, r1.f.slice(1, 0, 20), 1e-4, 1e-5));
        QVERIFY(torch::allclose(r0.g, r1.g.slice(1, 0, 15), 1e-4, 1e-5));
        QCOMPARE(r1.f.slice(1, 20).abs().sum().item<double>(), 0.0);
        QCOMPARE(r1.g.slice(1, 15).abs().sum().item<double>(), 0.0);
    }

    void batchedEqualsOneByOne_data()
    {
        QTest::addColumn<int>("backend");
        QTest::newRow("tensor") << 0;
        QTest::newRow("fused") << 1;
    }
    void batchedEqualsOneByOne()
    {
        QFETCH(int, backend);
        const std::vector<int64_t> liveA { 12, 30, 5, 22 }, liveB { 18, 9, 30, 22 };
        auto x = torch::randn({ 4, 30, 3 });
        auto y = torch::randn({ 4, 30, 3 }) * 2.0;
        auto a = randomWeights(4, 30, liveA, torch::kFloat);
        auto b = randomWeights(4, 30, liveB, torch::kFloat);
        SinkhornOptions opt;
        opt.setEps(0.005).setIterations(150).setBackend(backendFromIndex(backend));
        auto rb = sinkhorn(x, y, a, b, opt);
        for (int64_t k = 0; k < 4; ++k) {
            const auto na = liveA[static_cast<size_t>(k)], nb = liveB[static_cast<size_t>(k)];
            auto r = sinkhorn(x[k].slice(0, 0, na), y[k].slice(0, 0, nb), a[k].slice(0, 0, na),
                b[k].slice(0, 0, nb), opt);
            QVERIFY2(std::abs(r.cost.item<double>() - rb.cost[k].item<double>())
                    <= 1e-5 * std::abs(r.cost.item<double>()) + 1e-7,
                qPrintable(QString("pair %1: %2 vs %3").arg(k).arg(r.cost.item<double>()).arg(rb.cost[k].item<double>())));
            QVERIFY(torch::allclose(r.f, rb.f[k].slice(0, 0, na), 1e-4, 1e-5));
            QCOMPARE(rb.eps[k].item<double>(), r.eps.item<double>());
        }
    }

    // Relative eps e equals absolute eps e * max cost of the pair.
    void relativeEqualsAbsolute()
    {
        auto x = torch::randn({ 1, 25, 2 }, torch::kDouble);
        auto y = torch::randn({ 1, 25, 2 }, torch::kDouble);
        const double maxC = squaredDistances(x, y).max().item<double>();
        SinkhornOptions rel;
        rel.setEps(0.01, EpsMode::Relative).setIterations(50).setBackend(SinkhornBackend::Tensor);
        SinkhornOptions abs = rel;
        abs.setEps(0.01 * maxC, EpsMode::Absolute);
        auto r1 = sinkhorn(x, y, {}, {}, rel);
        auto r2 = sinkhorn(x, y, {}, {}, abs);
        QVERIFY(torch::allclose(r1.eps, r2.eps, 1e-12, 0));
        QVERIFY(torch::allclose(r1.cost, r2.cost, 1e-10, 0));
    }

    void fusedMatchesTensor_data()
    {
        QTest::addColumn<int>("d");
        QTest::addColumn<double>("eps");
        QTest::newRow("d2 eps0.01") << 2 << 0.01;
        QTest::newRow("d3 eps0.002") << 3 << 0.002;
        QTest::newRow("d5 eps0.002") << 5 << 0.002;
    }
    // The fused kernels and the tensor-operation reference agree on the solver's outputs.
    void fusedMatchesTensor()
    {
        QFETCH(int, d);
        QFETCH(double, eps);
        auto x = torch::randn({ 3, 70, d });
        auto y = torch::randn({ 3, 55, d }) + 0.5;
        auto a = randomWeights(3, 70, { 70, 40, 13 }, torch::kFloat);
        auto b = randomWeights(3, 55, { 55, 55, 31 }, torch::kFloat);
        SinkhornOptions opt;
        opt.setEps(eps).setIterations(200);
        auto rt = sinkhorn(x, y, a, b, SinkhornOptions(opt).setBackend(SinkhornBackend::Tensor));
        auto rf = sinkhorn(x, y, a, b, SinkhornOptions(opt).setBackend(SinkhornBackend::Fused));
        QVERIFY(rf.fused);
        QVERIFY(!rt.fused);
        auto rel = ((rf.cost - rt.cost).abs() / rt.cost.abs()).max().item<double>();
        QVERIFY2(rel < kPathAgreement, qPrintable(QString("cost relative difference %1").arg(rel)));
        const double scale = rt.eps.max().item<double>();
        auto fDiff = (rf.f - rt.f).abs().max().item<double>() / scale;
        QVERIFY2(fDiff < 0.05, qPrintable(QString("potential difference %1 eps").arg(fDiff)));
        QVERIFY(torch::allclose(rf.marginalError, rt.marginalError, 0.05, 1e-4));
    }

    void smallEpsIsStable_data()
    {
        QTest::addColumn<int>("backend");
        QTest::newRow("tensor") << 0;
        QTest::newRow("fused") << 1;
    }
    // Relative eps 1e-3 in float32: finite potentials, cost and marginals.
    void smallEpsIsStable()
    {
        QFETCH(int, backend);
        auto x = torch::randn({ 2, 200, 3 }) * 5.0;
        auto y = torch::randn({ 2, 180, 3 }) * 5.0 + 3.0;
        SinkhornOptions opt;
        opt.setEps(1e-3).setIterations(200).setBackend(backendFromIndex(backend));
        auto r = sinkhorn(x, y, {}, {}, opt);
        QVERIFY(torch::isfinite(r.f).all().item<bool>());
        QVERIFY(torch::isfinite(r.g).all().item<bool>());
        QVERIFY(torch::isfinite(r.cost).all().item<bool>());
        QVERIFY(torch::isfinite(r.marginalError).all().item<bool>());
        QVERIFY(r.marginalError.max().item<double>() < 0.5);
    }

    void badInputThrows()
    {
        auto x = torch::randn({ 10, 2 });
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, sinkhorn(x, torch::randn({ 10, 3 }), {}, {}));
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, sinkhorn(x, torch::randn({ 10, 2 }, torch::kDouble), {}, {}));
        auto bad = x.clone();
        bad[3][1] = std::numeric_limits<float>::quiet_NaN();
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, sinkhorn(bad, x, {}, {}));
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, sinkhorn(x, x, -torch::ones({ 10 }) / 10, {}));
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, sinkhorn(x, x, torch::zeros({ 10 }), {}));
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, sinkhorn(x, x, torch::ones({ 9 }) / 9, {}));
        SinkhornOptions opt;
        opt.eps = -1;
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, sinkhorn(x, x, {}, {}, opt));
    }
};

QTEST_GUILESS_MAIN(TestSinkhorn)
#include "tst_sinkhorn.moc"
