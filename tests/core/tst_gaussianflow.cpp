// Tests of Bures-Wasserstein flow matching on Gaussians (wfm/flow/GaussianFlow.h):
//  - targets against an independent construction of the McCann geodesic (A from eigh here) and
//    d/dt S_t = W S + S W by finite differences;
//  - the loss against a hand computation on a 2x2 case and a Monte Carlo estimate of the
//    L2(N_t) norm of the velocity error; zero at the exact targets;
//  - minibatch pairing against brute force over all permutations;
//  - generation with the closed-form conditional field as oracle: it carries the source onto the
//    target, Euler with first order and midpoint / Heun with second order (error ratios);
//  - PSD preserved along generation for random symmetric fields with large W;
//  - the training step (determinism, label dropout) and a short training run whose loss falls;
//  - the relationship metrics of the built-in families.
#include "wfm/Error.h"
#include "wfm/data/GaussianDataset.h"
#include "wfm/flow/GaussianFlow.h"
#include "wfm/model/GaussianMlp.h"
#include "wfm/ot/BuresWasserstein.h"

#include <QElapsedTimer>
#include <QtTest>

#include "TestSupport.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

using wfm::ConfigError;
using wfm::flow::GaussianTargets;
using wfm::flow::Integrator;
using wfm::model::GaussianVelocity;
namespace bw = wfm::ot::bw;

Q_DECLARE_METATYPE(wfm::flow::Integrator)

namespace {

constexpr double kTol64 = 1e-9; // float64 identities

torch::Tensor symSqrt(const torch::Tensor& S)
{
    auto [e, V] = torch::linalg_eigh(S, "L");
    return (V * e.clamp_min(0).sqrt().unsqueeze(-2)).matmul(V.transpose(-1, -2));
}

torch::Tensor symInvSqrt(const torch::Tensor& S)
{
    auto [e, V] = torch::linalg_eigh(S, "L");
    return (V * e.rsqrt().unsqueeze(-2)).matmul(V.transpose(-1, -2));
}

/// Random SPD [B,d,d] float64 with eigenvalues in about [0.2, 3].
torch::Tensor randomSpd(int64_t B, int64_t d)
{
    const torch::Tensor L = torch::randn({ B, d, d }, torch::kDouble);
    return L.matmul(L.transpose(1, 2)) / d + 0.2 * torch::eye(d, torch::kDouble);
}

double relErr(const torch::Tensor& a, const torch::Tensor& b)
{
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item<double>();
}

} // namespace

class TestGaussianFlow : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void targetsFollowGeodesic();
    void lossHand2x2();
    void lossIsL2NormOfVelocityError();
    void pairingBruteForce();
    void oracleConvergence_data();
    void oracleConvergence();
    void psdPreservedForLargeFields_data();
    void psdPreservedForLargeFields();
    void stepLoss();
    void trainingLossFalls();
    void relationshipMetrics();
    void errors();
};

void TestGaussianFlow::initTestCase()
{
    torch::set_num_threads(2);
    torch::manual_seed(2024);
}

void TestGaussianFlow::targetsFollowGeodesic()
{
    const int64_t B = 5, d = 3;
    const torch::Tensor m0 = torch::randn({ B, d }, torch::kDouble);
    const torch::Tensor m1 = torch::randn({ B, d }, torch::kDouble);
    const torch::Tensor S0 = randomSpd(B, d), S1 = randomSpd(B, d);
    // Independent construction: A = S1^1/2 (S1^1/2 S0 S1^1/2)^-1/2 S1^1/2.
    const torch::Tensor r1 = symSqrt(S1);
    const torch::Tensor A = r1.matmul(symInvSqrt(r1.matmul(S0).matmul(r1))).matmul(r1);
    const torch::Tensor t = torch::tensor({ 0.0, 0.25, 0.5, 0.8, 1.0 }, torch::kDouble);
    const GaussianTargets g = wfm::flow::gaussianFlowTargets(m0, S0, m1, S1, t);
    const torch::Tensor I = torch::eye(d, torch::kDouble);
    const torch::Tensor Mt = (1 - t).view({ B, 1, 1 }) * I + t.view({ B, 1, 1 }) * A;
    QVERIFY(relErr(g.covs, Mt.matmul(S0).matmul(Mt)) < kTol64);
    QVERIFY(relErr(g.means, (1 - t).unsqueeze(1) * m0 + t.unsqueeze(1) * m1) < kTol64);
    QVERIFY(relErr(g.dm, m1 - m0) < kTol64);
    QVERIFY(relErr(g.covs[0], S0[0]) < kTol64);
    QVERIFY(relErr(g.covs[4], S1[4]) < 1e-8);
    QVERIFY(torch::equal(g.W, g.W.transpose(1, 2)));
    // d/dt S_t = W S_t + S_t W by central differences (S_t is quadratic in t: exact up to round-off).
    const double h = 1e-3;
    const torch::Tensor tm = torch::tensor({ 0.1, 0.25, 0.5, 0.8, 0.9 }, torch::kDouble);
    const GaussianTargets c = wfm::flow::gaussianFlowTargets(m0, S0, m1, S1, tm);
    const GaussianTargets p = wfm::flow::gaussianFlowTargets(m0, S0, m1, S1, tm + h);
    const GaussianTargets q = wfm::flow::gaussianFlowTargets(m0, S0, m1, S1, tm - h);
    const torch::Tensor fd = (p.covs - q.covs) / (2 * h);
    QVERIFY(relErr(c.W.matmul(c.covs) + c.covs.matmul(c.W), fd) < 1e-7);
    // Random times: U[0,1] from the generator, deterministic given its seed, float32 kept.
    torch::Generator g1 = at::detail::createCPUGenerator(3);
    torch::Generator g2 = at::detail::createCPUGenerator(3);
    const GaussianTargets r1f = wfm::flow::gaussianFlowTargets(
        m0.to(torch::kFloat), S0.to(torch::kFloat), m1.to(torch::kFloat), S1.to(torch::kFloat), g1);
    const GaussianTargets r2f = wfm::flow::gaussianFlowTargets(
        m0.to(torch::kFloat), S0.to(torch::kFloat), m1.to(torch::kFloat), S1.to(torch::kFloat), g2);
    QVERIFY(r1f.W.scalar_type() == torch::kFloat);
    QVERIFY(torch::equal(r1f.t, r2f.t));
    QVERIFY((r1f.t >= 0).all().item<bool>() && (r1f.t <= 1).all().item<bool>());
}

void TestGaussianFlow::lossHand2x2()
{
    // One pair, d = 2: dm error a = (1, -2), W error D = [[1, 2], [2, -1]], S_t = [[2, 1], [1, 3]].
    // D^2 = [[5, 0], [0, 5]], tr(S_t D^2) = 5 * (2 + 3) = 25; |a|^2 = 5: loss 30.
    // Frobenius: |D|_F^2 = 1 + 4 + 4 + 1 = 10: Euclidean loss 15.
    GaussianTargets tg;
    tg.dm = torch::tensor({ 0.5, 0.5 }, torch::kDouble).view({ 1, 2 });
    tg.W = torch::tensor({ 0.1, 0.2, 0.2, 0.3 }, torch::kDouble).view({ 1, 2, 2 });
    tg.covs = torch::tensor({ 2.0, 1.0, 1.0, 3.0 }, torch::kDouble).view({ 1, 2, 2 });
    GaussianVelocity pred;
    pred.dm = tg.dm + torch::tensor({ 1.0, -2.0 }, torch::kDouble).view({ 1, 2 });
    pred.W = tg.W + torch::tensor({ 1.0, 2.0, 2.0, -1.0 }, torch::kDouble).view({ 1, 2, 2 });
    QCOMPARE(wfm::flow::gaussianFlowLoss(pred, tg).item<double>(), 30.0);
    QCOMPARE(wfm::flow::gaussianFlowLoss(pred, tg, true).item<double>(), 15.0);
    // Batch mean: a second, exact pair halves it.
    GaussianTargets two = tg;
    two.dm = torch::cat({ tg.dm, tg.dm });
    two.W = torch::cat({ tg.W, tg.W });
    two.covs = torch::cat({ tg.covs, tg.covs });
    GaussianVelocity p2 { torch::cat({ pred.dm, tg.dm }), torch::cat({ pred.W, tg.W }) };
    QCOMPARE(wfm::flow::gaussianFlowLoss(p2, two).item<double>(), 15.0);
    // Zero at the exact targets of a real geodesic.
    const torch::Tensor S0 = randomSpd(4, 3), S1 = randomSpd(4, 3);
    const GaussianTargets real = wfm::flow::gaussianFlowTargets(torch::randn({ 4, 3 }, torch::kDouble), S0,
        torch::randn({ 4, 3 }, torch::kDouble), S1, torch::rand({ 4 }, torch::kDouble));
    QCOMPARE(wfm::flow::gaussianFlowLoss({ real.dm, real.W }, real).item<double>(), 0.0);
}

void TestGaussianFlow::lossIsL2NormOfVelocityError()
{
    // E_{x ~ N(m_t,S_t)} |(dm - dm*) + (W - W*)(x - m_t)|^2 by Monte Carlo.
    const int64_t d = 3;
    const torch::Tensor St = randomSpd(1, d);
    GaussianTargets tg;
    tg.dm = torch::randn({ 1, d }, torch::kDouble);
    tg.W = torch::randn({ 1, d, d }, torch::kDouble);
    tg.W = (tg.W + tg.W.transpose(1, 2)) / 2;
    tg.covs = St;
    GaussianVelocity pred;
    pred.dm = tg.dm + torch::randn({ 1, d }, torch::kDouble);
    torch::Tensor E = torch::randn({ 1, d, d }, torch::kDouble);
    pred.W = tg.W + (E + E.transpose(1, 2)) / 2;
    const int64_t N = 400000;
    const torch::Tensor L = torch::linalg_cholesky(St[0]);
    const torch::Tensor y = torch::randn({ N, d }, torch::kDouble).matmul(L.t()); // x - m_t
    const torch::Tensor err = (pred.dm - tg.dm) + y.matmul((pred.W - tg.W)[0]);
    const torch::Tensor sq = err.pow(2).sum(1);
    const double mc = sq.mean().item<double>();
    const double se = sq.std().item<double>() / std::sqrt(static_cast<double>(N));
    const double loss = wfm::flow::gaussianFlowLoss(pred, tg).item<double>();
    QVERIFY2(std::abs(mc - loss) < 5 * se, qPrintable(QString("MC %1 +- %2, loss %3").arg(mc).arg(se).arg(loss)));
}

void TestGaussianFlow::pairingBruteForce()
{
    const int64_t B = 6, d = 2;
    const torch::Tensor m0 = torch::randn({ B, d }, torch::kDouble) * 2;
    const torch::Tensor m1 = torch::randn({ B, d }, torch::kDouble) * 2;
    const torch::Tensor S0 = randomSpd(B, d), S1 = randomSpd(B, d);
    const torch::Tensor perm = wfm::flow::gaussianMinibatchPairing(m0, S0, m1, S1);
    QCOMPARE(perm.sizes(), (torch::IntArrayRef { B }));
    // Cost matrix from one bw::distanceSquared per pair, then every permutation by brute force.
    std::vector<std::vector<double>> C(B, std::vector<double>(B));
    for (int64_t i = 0; i < B; ++i) {
        for (int64_t j = 0; j < B; ++j) {
            C[i][j] = bw::distanceSquared(m0[j], S0[j], m1[i], S1[i]).item<double>();
        }
    }
    auto cost = [&](const std::vector<int64_t>& p) {
        double c = 0;
        for (int64_t i = 0; i < B; ++i) {
            c += C[i][p[static_cast<std::size_t>(i)]];
        }
        return c;
    };
    std::vector<int64_t> order(B);
    std::iota(order.begin(), order.end(), 0);
    double best = 1e300;
    do {
        best = std::min(best, cost(order));
    } while (std::next_permutation(order.begin(), order.end()));
    const std::vector<int64_t> chosen(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + B);
    QVERIFY(std::abs(cost(chosen) - best) < 1e-9 * best);
    std::vector<int64_t> seen(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + B);
    std::sort(seen.begin(), seen.end());
    for (int64_t i = 0; i < B; ++i) {
        QCOMPARE(seen[static_cast<std::size_t>(i)], i);
    }
}

void TestGaussianFlow::oracleConvergence_data()
{
    QTest::addColumn<Integrator>("integrator");
    QTest::addColumn<double>("order");
    QTest::newRow("euler") << Integrator::Euler << 1.0;
    QTest::newRow("midpoint") << Integrator::Midpoint << 2.0;
    QTest::newRow("heun") << Integrator::Heun << 2.0;
}

void TestGaussianFlow::oracleConvergence()
{
    // The closed-form conditional field of fixed pairs (t = 0 source, t = 1 target) carries each
    // source onto its target; the error at t = 1 shrinks like h^order.
    QFETCH(Integrator, integrator);
    QFETCH(double, order);
    torch::manual_seed(11);
    const int64_t K = 4, d = 3;
    const torch::Tensor m0 = torch::randn({ K, d }, torch::kDouble);
    const torch::Tensor m1 = torch::randn({ K, d }, torch::kDouble);
    const torch::Tensor S0 = randomSpd(K, d), S1 = randomSpd(K, d);
    // The oracle ignores the state: dm and W along the geodesic of each pair, run at the
    // non-uniform speed tau(t) = sin(pi t / 2) (tau(0) = 0, tau(1) = 1), so that the exact solution
    // is N(m_tau(t), S_tau(t)) and no step is exact by construction.
    const wfm::flow::GaussianVelocityFn oracle
        = [&](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& t) {
              const torch::Tensor tau = torch::sin(t * (M_PI / 2)).clamp(0.0, 1.0);
              const torch::Tensor speed = torch::cos(t * (M_PI / 2)) * (M_PI / 2);
              const bw::Velocity v = bw::velocity(m0, S0, m1, S1, tau);
              return GaussianVelocity { v.dm * speed.unsqueeze(1), v.W * speed.view({ K, 1, 1 }) };
          };
    auto error = [&](int steps) {
        const auto r = wfm::flow::integrateGaussians(oracle, m0, S0, steps, integrator);
        return std::max(relErr(r.covariances, S1), relErr(r.means, m1));
    };
    const double e1 = error(16), e2 = error(32), e3 = error(64);
    const double ratio = std::log2(e2 / e3);
    QVERIFY2(std::abs(ratio - order) < 0.25,
        qPrintable(QString("errors %1 %2 %3, observed order %4").arg(e1).arg(e2).arg(e3).arg(ratio)));
    QVERIFY(std::abs(std::log2(e1 / e2) - order) < 0.35);
    QVERIFY(e3 < (order > 1.5 ? 1e-3 : 5e-2));
    // At constant speed (W_t = (A - I) M_t^-1), the Euler congruence is exact:
    // (I + h W_t) M_t = M_t + h (A - I) = M_(t+h). The second-order schemes converge.
    const wfm::flow::GaussianVelocityFn geodesic
        = [&](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& t) {
              const bw::Velocity v = bw::velocity(m0, S0, m1, S1, t);
              return GaussianVelocity { v.dm, v.W };
          };
    const auto exact = wfm::flow::integrateGaussians(geodesic, m0, S0, 7, integrator);
    const double geoErr = std::max(relErr(exact.covariances, S1), relErr(exact.means, m1));
    QVERIFY2(geoErr < (integrator == Integrator::Euler ? 1e-12 : 2e-2), qPrintable(QString::number(geoErr)));
    // Trajectory: [T+1,K,...], starting at the source and ending at the result.
    const auto tr = wfm::flow::integrateGaussians(oracle, m0, S0, 8, integrator, true);
    QCOMPARE(tr.trajectoryMeans.sizes(), (torch::IntArrayRef { 9, K, d }));
    QCOMPARE(tr.trajectoryCovariances.sizes(), (torch::IntArrayRef { 9, K, d, d }));
    QVERIFY(relErr(tr.trajectoryCovariances[0], S0) < 1e-15);
    QVERIFY(torch::equal(tr.trajectoryCovariances[8], tr.covariances));
    // Along the way the trajectory stays close to the geodesic (here at t = 1/2).
    const GaussianTargets half = wfm::flow::gaussianFlowTargets(
        m0, S0, m1, S1, torch::full({ K }, std::sin(M_PI / 4), torch::kDouble));
    QVERIFY(relErr(tr.trajectoryCovariances[4], half.covs) < 0.1);
}

void TestGaussianFlow::psdPreservedForLargeFields_data()
{
    oracleConvergence_data();
}

void TestGaussianFlow::psdPreservedForLargeFields()
{
    QFETCH(Integrator, integrator);
    torch::manual_seed(5);
    const int64_t K = 64, d = 4;
    const torch::Tensor m0 = torch::randn({ K, d }, torch::kDouble);
    const torch::Tensor S0 = randomSpd(K, d);
    // A state- and time-dependent random symmetric field with |h W| up to a few units per step.
    const torch::Tensor base = torch::randn({ K, d, d }, torch::kDouble) * 6;
    const wfm::flow::GaussianVelocityFn field
        = [&](const torch::Tensor& m, const torch::Tensor&, const torch::Tensor& t) {
              torch::Tensor W = base * torch::cos(7 * t).view({ K, 1, 1 })
                  + torch::tanh(m).unsqueeze(2) * torch::tanh(m).unsqueeze(1) * 3;
              return GaussianVelocity { -m, (W + W.transpose(1, 2)) * 0.5 };
          };
    const int steps = 8;
    const auto tr = wfm::flow::integrateGaussians(field, m0, S0, steps, integrator, true);
    const torch::Tensor all = tr.trajectoryCovariances.reshape({ -1, d, d });
    QVERIFY(torch::isfinite(all).all().item<bool>());
    QVERIFY(torch::equal(all, all.transpose(1, 2)));
    const torch::Tensor ev = torch::linalg_eigvalsh(all, "L");
    const torch::Tensor rel = ev.select(1, 0) / ev.select(1, d - 1).abs().clamp_min(1e-300);
    QVERIFY2((rel >= -1e-12).all().item<bool>(),
        qPrintable(QString("min relative eigenvalue %1").arg(rel.min().item<double>())));
    // After one step (condition numbers still moderate) every covariance is definite for the
    // second-order schemes (G = I + X + X^2/2 > 0) ...
    const torch::Tensor first = torch::linalg_eigvalsh(tr.trajectoryCovariances[1], "L");
    if (integrator != Integrator::Euler) {
        QVERIFY(first.min().item<double>() > 0);
    }
    // ... while the additive step S + h (W S + S W) of the same field leaves the cone: the test
    // field is large enough to matter.
    const GaussianVelocity v0 = field(m0, S0, torch::zeros({ K }, torch::kDouble));
    const double h = 1.0 / steps;
    const torch::Tensor additive = S0 + h * (v0.W.matmul(S0) + S0.matmul(v0.W));
    QVERIFY(torch::linalg_eigvalsh(additive, "L").min().item<double>() < 0);
}

void TestGaussianFlow::stepLoss()
{
    const auto data = wfm::data::makeGaussianBuiltin("gaussian-spiral", { { "count", "64" } });
    torch::manual_seed(3);
    wfm::model::GaussianMlp model(wfm::model::GaussianMlpOptions(2).setWidth(32).setBlocks(1).setNumLabels(2));
    const auto noise = wfm::data::GaussianNoise::fit(wfm::data::GaussianNoiseKind::Wishart, data);
    torch::Generator g = at::detail::createCPUGenerator(1);
    auto [sm, sS] = noise.sample(16, {}, g);
    wfm::flow::GaussianStepBatch batch { data.means.narrow(0, 0, 16), data.covariances.narrow(0, 0, 16), sm, sS,
        torch::arange(16, torch::kLong).remainder(2) };
    wfm::flow::GaussianStepOptions opts;
    torch::Generator a = at::detail::createCPUGenerator(9);
    torch::Generator b = at::detail::createCPUGenerator(9);
    const double la = wfm::flow::gaussianStepLoss(model, batch, opts, a).item<double>();
    const double lb = wfm::flow::gaussianStepLoss(model, batch, opts, b).item<double>();
    QCOMPARE(la, lb);
    QVERIFY(std::isfinite(la) && la > 0);
    // Dropping every label equals passing none.
    opts.labelDropout = 1.0;
    torch::Generator c = at::detail::createCPUGenerator(9);
    const double all = wfm::flow::gaussianStepLoss(model, batch, opts, c).item<double>();
    wfm::flow::GaussianStepBatch unl = batch;
    unl.labels = torch::Tensor();
    torch::Generator e = at::detail::createCPUGenerator(9);
    QCOMPARE(all, wfm::flow::gaussianStepLoss(model, unl, opts, e).item<double>());
    // The loss reaches the parameters.
    model->zero_grad();
    torch::Generator f = at::detail::createCPUGenerator(9);
    wfm::flow::gaussianStepLoss(model, batch, opts, f).backward();
    QVERIFY(model->covHead->weight.grad().abs().sum().item<double>() > 0);
    // Minibatch OT lowers the mean BW^2 between pairs.
    const torch::Tensor perm = wfm::flow::gaussianMinibatchPairing(sm, sS, batch.means, batch.covariances);
    const double paired = bw::distanceSquared(sm.index_select(0, perm), sS.index_select(0, perm),
        batch.means, batch.covariances).mean().item<double>();
    const double random = bw::distanceSquared(sm, sS, batch.means, batch.covariances).mean().item<double>();
    QVERIFY(paired <= random);
}

void TestGaussianFlow::trainingLossFalls()
{
    // A learnable regression: every data Gaussian N(m, S) of the (standardised) spiral has its own
    // source N(m / 2, 0.05 I) (GaussianNoise::fromGaussians, paired by index, no minibatch OT).
    // Paths of different pairs never meet at the same time, so the conditional field is a
    // function of (m_t, S_t, t) and the loss can fall far below its initial value (with random
    // noise it keeps the irreducible variance of the coupling).
    QElapsedTimer timer;
    timer.start();
    const auto raw = wfm::data::makeGaussianBuiltin("gaussian-spiral", { { "count", "400" }, { "seed", "1" } });
    const auto norm = wfm::data::GaussianNormalization::fit(raw, wfm::data::GaussianNormalization::Kind::Standardize);
    const auto data = norm.apply(raw);
    wfm::data::GaussianDataset sources = data.clone();
    sources.means = data.means * 0.5;
    sources.covariances = (0.05 * torch::eye(2)).expand({ data.count(), 2, 2 }).contiguous();
    const auto noise = wfm::data::GaussianNoise::fromGaussians(sources, wfm::data::CloudPairing::ByIndex);
    torch::manual_seed(7);
    wfm::model::GaussianMlp model(wfm::model::GaussianMlpOptions(2).setWidth(64).setBlocks(2));
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(2e-3));
    wfm::data::GaussianBatchSampler sampler(data, 64, 3);
    torch::Generator gen = at::detail::createCPUGenerator(4);
    wfm::flow::GaussianStepOptions options;
    options.minibatchOt = false;
    std::vector<double> losses;
    const int kSteps = 200;
    for (int s = 0; s < kSteps; ++s) {
        const auto b = sampler.next();
        auto [sm, sS] = noise.sample(b.means.size(0), b.indices, gen);
        const wfm::flow::GaussianStepBatch batch { b.means, b.covariances, sm, sS, {} };
        opt.zero_grad();
        torch::Tensor loss = wfm::flow::gaussianStepLoss(model, batch, options, gen);
        loss.backward();
        opt.step();
        losses.push_back(loss.item<double>());
    }
    auto avg = [&](int from, int to) {
        return std::accumulate(losses.begin() + from, losses.begin() + to, 0.0) / (to - from);
    };
    const double first = avg(0, 20), last = avg(kSteps - 50, kSteps);
    qInfo("training: first-20 mean loss %.4f, last-50 mean %.4f (%lld ms)", first, last,
        static_cast<long long>(timer.elapsed()));
    QVERIFY2(last < 0.2 * first, qPrintable(QString("loss %1 -> %2").arg(first).arg(last)));

    // Generation from the sources lands near the spiral, with SPD covariances.
    model->eval();
    torch::NoGradGuard noGrad;
    const wfm::flow::GaussianVelocityFn fn
        = [&](const torch::Tensor& m, const torch::Tensor& S, const torch::Tensor& t) {
              return model->forward(m, S, t);
          };
    const auto out = wfm::flow::integrateGaussians(fn, sources.means, sources.covariances, 50, Integrator::Midpoint);
    QVERIFY(torch::linalg_eigvalsh(out.covariances.to(torch::kDouble), "L").min().item<double>() > 0);
    const auto [gm, gS] = norm.invert(out.means, out.covariances);
    const auto [nm, nS] = norm.invert(sources.means, sources.covariances);
    const auto e0 = wfm::flow::builtinRelationshipErrors("gaussian-spiral", nm, nS);
    const auto e1 = wfm::flow::builtinRelationshipErrors("gaussian-spiral", gm, gS);
    qInfo("spiral relationship: sources distance %.3f orientation %.1f deg; generated %.3f, %.1f deg",
        e0.at("mean_distance"), e0.at("orientation_error_deg"), e1.at("mean_distance"),
        e1.at("orientation_error_deg"));
    QVERIFY(e1.at("mean_distance") < 0.3 * e0.at("mean_distance"));
    QVERIFY(e1.at("orientation_error_deg") < 0.5 * e0.at("orientation_error_deg"));
}

void TestGaussianFlow::relationshipMetrics()
{
    for (const std::string name : { "gaussian-spiral", "gaussian-ring3d", "gaussian-eig8" }) {
        const auto g = wfm::data::makeGaussianBuiltin(name, { { "count", "100" } });
        const auto e = wfm::flow::builtinRelationshipErrors("builtin:" + name + "?count=100", g.means, g.covariances);
        QVERIFY(!e.empty());
        for (const auto& [k, v] : e) {
            const double tol = k.find("_deg") != std::string::npos ? 0.1 : (k == "mean_distance" ? 2e-3 : 1e-3);
            QVERIFY2(v < tol, qPrintable(QString::fromStdString(name + " " + k) + QString(" = %1").arg(v)));
        }
    }
    // Rotating every spiral ellipse by 30 degrees gives a 30 degree orientation error.
    const auto g = wfm::data::makeGaussianBuiltin("gaussian-spiral", { { "count", "50" } });
    const double a = 30.0 * M_PI / 180.0;
    const torch::Tensor R = torch::tensor({ std::cos(a), -std::sin(a), std::sin(a), std::cos(a) }).view({ 2, 2 });
    const torch::Tensor rotated = R.matmul(g.covariances).matmul(R.t());
    const auto e = wfm::flow::builtinRelationshipErrors("gaussian-spiral", g.means, rotated);
    QVERIFY(std::abs(e.at("orientation_error_deg") - 30.0) < 0.2);
    QVERIFY(e.at("size_rel_error") < 1e-3);
    // Scaling the eig8 covariances by 1.1 is a 10 % eigenvalue error.
    const auto h = wfm::data::makeGaussianBuiltin("gaussian-eig8", { { "count", "20" } });
    const auto he = wfm::flow::builtinRelationshipErrors("gaussian-eig8", h.means, h.covariances * 1.1);
    QVERIFY(std::abs(he.at("eigenvalue_rel_error") - 0.1) < 1e-4);
    QVERIFY(std::abs(he.at("covariance_rel_error") - 0.1) < 1e-4);
    // Ring: a mean moved off the circle by 0.5 in z.
    const auto r = wfm::data::makeGaussianBuiltin("gaussian-ring3d", { { "count", "10" } });
    torch::Tensor moved = r.means.clone();
    moved.select(1, 2).add_(0.5);
    QVERIFY(std::abs(wfm::flow::builtinRelationshipErrors("gaussian-ring3d", moved, r.covariances).at("mean_distance") - 0.5) < 1e-5);
    QVERIFY(wfm::flow::builtinRelationshipErrors("rings", g.means, g.covariances).empty());
    EXPECT_THROW_MSG(ConfigError, wfm::flow::builtinRelationshipErrors("gaussian-eig8", g.means, g.covariances), "[G,8]");
}

void TestGaussianFlow::errors()
{
    const torch::Tensor m = torch::zeros({ 3, 2 });
    const torch::Tensor S = torch::eye(2).expand({ 3, 2, 2 }).contiguous();
    EXPECT_THROW_MSG(ConfigError, wfm::flow::gaussianFlowTargets(m, S, m.narrow(0, 0, 2), S, torch::rand({ 3 })),
        "data covariances");
    EXPECT_THROW_MSG(ConfigError, wfm::flow::gaussianFlowTargets(m.narrow(0, 0, 2), S, m, S, torch::rand({ 3 })),
        "source means");
    EXPECT_THROW_MSG(ConfigError, wfm::flow::gaussianFlowTargets(m, S, m, S.to(torch::kDouble), torch::rand({ 3 })),
        "dtype");
    const wfm::flow::GaussianVelocityFn bad = [](const torch::Tensor& mm, const torch::Tensor&, const torch::Tensor&) {
        return GaussianVelocity { mm, torch::zeros({ 1, 1 }) };
    };
    EXPECT_THROW_MSG(ConfigError, wfm::flow::integrateGaussians(bad, m, S, 2), "velocity field returned");
    EXPECT_THROW_MSG(ConfigError, wfm::flow::integrateGaussians(bad, m, S, 0), "steps");
    GaussianVelocity p { torch::zeros({ 3, 2 }), torch::zeros({ 3, 3, 3 }) };
    GaussianTargets t;
    t.dm = torch::zeros({ 3, 2 });
    t.W = torch::zeros({ 3, 2, 2 });
    EXPECT_THROW_MSG(ConfigError, wfm::flow::gaussianFlowLoss(p, t), "do not match");
    wfm::model::GaussianMlp model(wfm::model::GaussianMlpOptions(3).setWidth(8).setBlocks(1));
    torch::Generator g = at::detail::createCPUGenerator(1);
    EXPECT_THROW_MSG(ConfigError,
        wfm::flow::gaussianStepLoss(model, { m, S, m, S, {} }, {}, g), "dimension");
    wfm::flow::GaussianStepOptions o;
    o.labelDropout = 2;
    EXPECT_THROW_MSG(ConfigError, wfm::flow::gaussianStepLoss(model, { m, S, m, S, {} }, o, g), "labelDropout");
}

QTEST_GUILESS_MAIN(TestGaussianFlow)
#include "tst_gaussianflow.moc"
