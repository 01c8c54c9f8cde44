// One point-cloud flow-matching step: loss against a hand computation, the conditional flow
// targets against a closed form, minibatch re-pairing against brute force, and learning.

#include "wfm/flow/TrainStep.h"

#include <QtTest>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <vector>

using namespace wfm;

class TestTrainStep : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(5); }

    // mean_b sum_i w_bi |v_bi - u_bi|^2, written out element by element.
    void lossEqualsHandComputation()
    {
        auto v = torch::randn({ 3, 4, 2 }, torch::kDouble);
        auto u = torch::randn({ 3, 4, 2 }, torch::kDouble);
        auto w = torch::tensor({ { 0.25, 0.25, 0.25, 0.25 }, { 0.5, 0.5, 0.0, 0.0 }, { 1.0, 0.0, 0.0, 0.0 } },
            torch::kDouble);
        double expected = 0;
        for (int b = 0; b < 3; ++b) {
            for (int i = 0; i < 4; ++i) {
                double sq = 0;
                for (int k = 0; k < 2; ++k) {
                    const double e = v[b][i][k].item<double>() - u[b][i][k].item<double>();
                    sq += e * e;
                }
                expected += w[b][i].item<double>() * sq;
            }
        }
        expected /= 3.0;
        QVERIFY(std::abs(flow::flowMatchingLoss(v, u, w).item<double>() - expected) < 1e-12);
    }

    // Source = target shifted by a constant: the rounded map pairs each point with its own
    // copy, so u = the shift on live points and x_t lies on the straight line at time t.
    void flowTargetsOfATranslation()
    {
        const int B = 2, n = 30;
        auto target = torch::randn({ B, n, 2 });
        auto shift = torch::tensor({ 0.4f, -0.3f });
        auto w = torch::full({ B, n }, 1.0f / n);
        w[1].slice(0, 20).zero_();
        w[1].slice(0, 0, 20).fill_(1.0f / 20);
        flow::StepBatch batch;
        batch.target = target * (w > 0).unsqueeze(2);
        batch.source = (target - shift) * (w > 0).unsqueeze(2);
        batch.weights = w;
        flow::StepOptions opt;
        opt.minibatch = flow::MinibatchCost::None;
        opt.innerOt.setEps(1e-3).setIterations(20000).setTolerance(1e-4); // converged plan
        auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
        auto ft = flow::flowTargets(batch, opt, gen);
        auto live = (w > 0).unsqueeze(2).expand({ B, n, 2 });
        auto uLive = ft.u.masked_select(live).view({ -1, 2 });
        QVERIFY2(torch::allclose(uLive, shift.expand_as(uLive), 1e-5, 1e-5),
            qPrintable(QString("max error %1, rows off %2").arg((uLive - shift).abs().max().item<double>()).arg(((uLive - shift).abs().amax(1) > 1e-4).sum().item<int64_t>())));
        auto expectedXt = batch.source + ft.t.view({ B, 1, 1 }) * shift;
        QVERIFY(torch::allclose(ft.xt.masked_select(live), expectedXt.masked_select(live), 1e-5, 1e-5));
        QVERIFY((ft.t >= 0).all().item<bool>() && (ft.t <= 1).all().item<bool>());
        QCOMPARE(ft.u.masked_select(~live).abs().sum().item<double>(), 0.0);
    }

    // The minibatch pairing minimises the total Chamfer cost: brute force over permutations.
    void minibatchPairingIsOptimal()
    {
        const int B = 5, n = 12;
        flow::StepBatch batch;
        batch.target = torch::randn({ B, n, 2 }) * 2.0;
        batch.source = torch::randn({ B, n, 2 });
        batch.weights = torch::full({ B, n }, 1.0f / n);
        auto perm = flow::minibatchPairing(batch, flow::MinibatchCost::Chamfer);
        auto chamfer = [&](int i, int j) {
            auto d = (batch.target[i].unsqueeze(1) - batch.source[j].unsqueeze(0)).pow(2).sum(2).to(torch::kDouble);
            return (std::get<0>(d.min(1)).mean() + std::get<0>(d.min(0)).mean()).item<double>();
        };
        std::vector<int> p { 0, 1, 2, 3, 4 };
        double best = std::numeric_limits<double>::infinity();
        do {
            double c = 0;
            for (int i = 0; i < B; ++i) {
                c += chamfer(i, p[static_cast<size_t>(i)]);
            }
            best = std::min(best, c);
        } while (std::next_permutation(p.begin(), p.end()));
        double got = 0;
        for (int i = 0; i < B; ++i) {
            got += chamfer(i, static_cast<int>(perm[i].item<int64_t>()));
        }
        QVERIFY2(std::abs(got - best) < 1e-6 * best, qPrintable(QString("%1 vs %2").arg(got).arg(best)));
    }

    // A few hundred steps on one fixed cloud pair drive the loss well down.
    void lossFallsOnATinyProblem()
    {
        model::SetTransformerOptions mo;
        mo.setDim(2).setWidth(32).setBlocks(2).setHeads(2).setMlpWidth(64).setDropout(0.0);
        model::SetTransformer net(mo);
        torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(3e-3));
        auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
        auto target = torch::randn({ 1, 16, 2 }) * 0.5 + 1.0;
        auto w = torch::full({ 4, 16 }, 1.0f / 16);
        flow::StepOptions so;
        so.innerOt.setEps(0.01).setIterations(100);
        double first = 0, last = 0;
        const int steps = 300;
        for (int s = 0; s < steps; ++s) {
            flow::StepBatch b;
            b.target = target.expand({ 4, 16, 2 }).contiguous();
            b.source = at::randn({ 4, 16, 2 }, gen);
            b.weights = w;
            const double loss = flow::trainStep(net, opt, b, so, gen);
            QVERIFY(std::isfinite(loss));
            if (s < 20) {
                first += loss / 20;
            }
            if (s >= steps - 20) {
                last += loss / 20;
            }
        }
        QVERIFY2(last < 0.5 * first, qPrintable(QString("loss %1 -> %2").arg(first).arg(last)));
    }

    // bfloat16 autocast changes the forward's arithmetic, not its result beyond bfloat16
    // rounding: the loss and the gradient agree with float32 to bfloat16 accuracy. Where the
    // CPU has no bfloat16 units the switch is off and the results are bit-identical.
    void mixedPrecisionAgreesWithFloat32_data()
    {
        QTest::addColumn<int>("impl");
        QTest::newRow("one-piece attention") << static_cast<int>(model::AttentionImpl::Naive);
        QTest::newRow("chunked attention") << static_cast<int>(model::AttentionImpl::Chunked);
    }

    void mixedPrecisionAgreesWithFloat32()
    {
        QFETCH(int, impl);
        model::SetTransformerOptions mo;
        mo.setDim(3).setWidth(64).setBlocks(2).setHeads(4).setMlpWidth(128).setDropout(0.0).setNumLabels(3);
        mo.setAttention(static_cast<model::AttentionImpl>(impl)).setChunkSize(16);
        torch::manual_seed(21);
        model::SetTransformer net(mo);
        auto data = at::make_generator<at::CPUGeneratorImpl>(3);
        flow::StepBatch b;
        b.target = at::randn({ 6, 40, 3 }, data);
        b.source = at::randn({ 6, 40, 3 }, data);
        b.weights = torch::full({ 6, 40 }, 1.0f / 40);
        b.weights[2].slice(0, 25).zero_();
        b.weights[2].slice(0, 0, 25).fill_(1.0f / 25);
        b.labels = torch::tensor({ 0, 1, 2, 0, 1, 2 }, torch::kLong);

        auto lossAndGrad = [&](bool mixed) {
            flow::StepOptions so;
            so.innerOt.setEps(0.01).setIterations(50);
            so.mixedPrecision = mixed;
            auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
            net->zero_grad();
            auto loss = flow::stepLoss(net, b, so, gen);
            loss.backward();
            std::vector<torch::Tensor> grads;
            for (const auto& p : net->parameters()) {
                grads.push_back(p.grad().flatten().clone());
            }
            return std::make_pair(loss.item<double>(), torch::cat(grads));
        };
        const auto [loss32, grad32] = lossAndGrad(false);
        const auto [lossMixed, gradMixed] = lossAndGrad(true);
        QCOMPARE(grad32.scalar_type(), torch::kFloat);
        QCOMPARE(gradMixed.scalar_type(), torch::kFloat);
        if (!flow::mixedPrecisionSupported(torch::Device(torch::kCPU))) {
            QCOMPARE(lossMixed, loss32);
            QVERIFY(torch::equal(gradMixed, grad32));
            return;
        }
        // bfloat16 keeps 8 significant bits: a relative error of a few 1e-3 per product.
        QVERIFY2(std::abs(lossMixed - loss32) < 2e-2 * loss32,
            qPrintable(QString("loss %1 (float32) vs %2 (bfloat16)").arg(loss32).arg(lossMixed)));
        QVERIFY2(lossMixed != loss32, "autocast did not change the arithmetic");
        const double cosine = (grad32 * gradMixed).sum().item<double>()
            / (grad32.norm().item<double>() * gradMixed.norm().item<double>());
        QVERIFY2(cosine > 0.995, qPrintable(QString("gradient cosine %1").arg(cosine)));
        const double relative = ((grad32 - gradMixed).norm() / grad32.norm()).item<double>();
        QVERIFY2(relative < 0.1, qPrintable(QString("gradient relative error %1").arg(relative)));
        // Autocast is scoped: nothing leaks out of the step.
        QVERIFY(!at::autocast::is_cpu_enabled());
    }
};

QTEST_GUILESS_MAIN(TestTrainStep)
#include "tst_trainstep.moc"
