// The training loop and generation: config round trips and strict errors, the learning-rate
// schedule against closed forms, learning on a tiny dataset, exact resume from a checkpoint,
// pause/stop from another thread, integrators against closed-form flows, an oracle velocity
// field that carries noise onto the target, generation from a checkpoint, and evaluation
// against the held-out split.

#include "TestSupport.h"

#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/flow/Evaluate.h"
#include "wfm/flow/GaussianFlow.h"
#include "wfm/flow/Generate.h"
#include "wfm/flow/TrainConfig.h"
#include "wfm/flow/Trainer.h"
#include "wfm/metrics/SetMetrics.h"

#include <QTemporaryDir>
#include <QtTest>

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace wfm;

namespace {

/// A small, fast config on a tiny family of 2-D rings.
flow::TrainConfig tinyConfig(std::int64_t steps)
{
    flow::TrainConfig c;
    c.data.spec = "builtin:rings?count=24&min=12&max=20&seed=3";
    c.data.testFraction = 0.25;
    c.model.setWidth(32).setBlocks(2).setHeads(2).setMlpWidth(64).setDropout(0.1);
    c.flow.iterations = 50;
    c.optim.lr = 2e-3;
    c.optim.schedule = flow::LrSchedule::Cosine;
    c.optim.warmupSteps = 5;
    c.optim.gradClip = 1.0;
    c.optim.emaDecay = 0.99;
    c.train.steps = steps;
    c.train.batch = 8;
    c.train.seed = 11;
    c.train.device = "cpu";
    c.train.logEvery = 1;
    c.train.checkpointEvery = 0;
    c.generate.steps = 8;
    return c;
}

std::vector<std::string> readLines(const std::string& path)
{
    std::ifstream in(path);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(line);
    }
    return lines;
}

/// The loss column of log.csv.
std::vector<std::string> lossColumn(const std::string& path)
{
    std::vector<std::string> out;
    auto lines = readLines(path);
    for (size_t i = 1; i < lines.size(); ++i) {
        std::istringstream is(lines[i]);
        std::string step, loss;
        std::getline(is, step, ',');
        std::getline(is, loss, ',');
        out.push_back(step + ":" + loss);
    }
    return out;
}

} // namespace

class TestTrainer : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(1); }

    void configRoundTripsWithEveryDefault()
    {
        flow::TrainConfig c = tinyConfig(123);
        c.flow.minibatch = flow::MinibatchCost::Bures;
        c.flow.map = ot::MapKind::Barycentric;
        c.optim.optimizer = flow::OptimizerKind::AdamW;
        c.generate.integrator = flow::Integrator::Heun;
        c.source.kind = data::NoiseKind::Uniform;
        const std::string text = c.toJsonString();
        const auto back = flow::TrainConfig::fromJsonString(text);
        QCOMPARE(back.toJsonString(), text);
        QCOMPARE(back.train.steps, std::int64_t(123));
        QVERIFY(back.flow.minibatch == flow::MinibatchCost::Bures);
        QVERIFY(back.model == c.model);
        // Defaults: every section present.
        const std::string d = flow::TrainConfig().toJsonString();
        for (const char* key : { "\"data\"", "\"source\"", "\"model\"", "\"flow\"", "\"optim\"",
                 "\"train\"", "\"generate\"", "\"ema_decay\"", "\"grad_clip\"", "\"label_dropout\"" }) {
            QVERIFY2(d.find(key) != std::string::npos, key);
        }
        // Missing keys keep defaults.
        const auto partial = flow::TrainConfig::fromJsonString(R"({"train": {"steps": 7}})");
        QCOMPARE(partial.train.steps, std::int64_t(7));
        QCOMPARE(partial.train.batch, flow::TrainConfig().train.batch);
    }

    void configErrorsNameTheKey()
    {
        EXPECT_THROW_MSG(ConfigError, flow::TrainConfig::fromJsonString(R"({"train": {"stepz": 3}})", "c.json"),
            "c.json", "train.stepz", "unknown key");
        EXPECT_THROW_MSG(ConfigError, flow::TrainConfig::fromJsonString(R"({"optim": {"lr": "fast"}})", "c.json"),
            "optim.lr", "number");
        EXPECT_THROW_MSG(ConfigError, flow::TrainConfig::fromJsonString(R"({"optim": {"lr": -1}})", "c.json"),
            "optim.lr", "> 0");
        EXPECT_THROW_MSG(ConfigError, flow::TrainConfig::fromJsonString(R"({"flow": {"map": "nearest"}})"),
            "flow.map");
        EXPECT_THROW_MSG(ConfigError, flow::TrainConfig::fromJsonString(R"({"model": {"width": 30, "heads": 4}})"),
            "model");
        EXPECT_THROW_MSG(ConfigError, flow::TrainConfig::fromJsonString("{not json"), "not valid JSON");
        EXPECT_THROW_MSG(ConfigError, flow::TrainConfig::fromJsonString(R"({"source": {"kind": "clouds"}})"),
            "source.spec");
    }

    void learningRateScheduleMatchesClosedForms()
    {
        flow::OptimConfig o;
        o.lr = 1e-3;
        o.warmupSteps = 10;
        o.finalLrFactor = 0.1;
        const std::int64_t total = 110;
        o.schedule = flow::LrSchedule::Constant;
        QCOMPARE(flow::learningRate(o, 0, total), 1e-4); // warm-up 1/10
        QCOMPARE(flow::learningRate(o, 9, total), 1e-3);
        QCOMPARE(flow::learningRate(o, 60, total), 1e-3);
        o.schedule = flow::LrSchedule::Exponential;
        QVERIFY(std::abs(flow::learningRate(o, 10, total) - 1e-3) < 1e-15);
        QVERIFY(std::abs(flow::learningRate(o, 60, total) - 1e-3 * std::pow(0.1, 0.5)) < 1e-15);
        QVERIFY(std::abs(flow::learningRate(o, 110, total) - 1e-4) < 1e-15);
        o.schedule = flow::LrSchedule::Cosine;
        QVERIFY(std::abs(flow::learningRate(o, 60, total) - 1e-3 * (0.1 + 0.9 * 0.5)) < 1e-15);
        QVERIFY(std::abs(flow::learningRate(o, 110, total) - 1e-4) < 1e-15);
    }

    // Euler is first order, midpoint and Heun second order on dx/dt = -c x (x(1) = x0 e^-c).
    void integratorsConvergeAtTheirOrder()
    {
        const double c = 1.3;
        auto x0 = torch::randn({ 2, 5, 3 }, torch::kDouble);
        auto mask = torch::ones({ 2, 5 }, torch::kDouble);
        auto exact = x0 * std::exp(-c);
        flow::CloudVelocityFn v = [&](const torch::Tensor& x, const torch::Tensor&) { return -c * x; };
        for (auto integ : { flow::Integrator::Euler, flow::Integrator::Midpoint, flow::Integrator::Heun }) {
            const double e1 = (flow::integrateClouds(v, x0, mask, 20, integ) - exact).abs().max().item<double>();
            const double e2 = (flow::integrateClouds(v, x0, mask, 40, integ) - exact).abs().max().item<double>();
            const double order = std::log2(e1 / e2);
            const double expected = integ == flow::Integrator::Euler ? 1.0 : 2.0;
            QVERIFY2(std::abs(order - expected) < 0.15,
                qPrintable(QString::fromStdString(flow::integratorName(integ)) + " order " + QString::number(order)));
        }
        // Time-dependent field: dx/dt = t (x(1) = x0 + 1/2): midpoint and Heun are exact.
        flow::CloudVelocityFn vt = [&](const torch::Tensor& x, const torch::Tensor& t) {
            return t.view({ -1, 1, 1 }).expand_as(x).clone();
        };
        for (auto integ : { flow::Integrator::Midpoint, flow::Integrator::Heun }) {
            auto y = flow::integrateClouds(vt, x0, mask, 3, integ);
            QVERIFY((y - (x0 + 0.5)).abs().max().item<double>() < 1e-12);
        }
    }

    // The exact conditional flow of a one-cloud dataset, v(x, t) = (T(x0) - x) / (1 - t) with T the
    // matching of the start points, carries the noise exactly onto the target; padding stays 0
    // and the trajectory starts at the noise.
    void oracleFlowReproducesTheTarget()
    {
        auto y = torch::randn({ 1, 6, 2 }, torch::kDouble);
        auto x0 = torch::randn({ 1, 8, 2 }, torch::kDouble);
        auto mask = torch::zeros({ 1, 8 }, torch::kDouble);
        mask.narrow(1, 0, 6).fill_(1);
        auto target = torch::zeros({ 1, 8, 2 }, torch::kDouble);
        target.narrow(1, 0, 6).copy_(y.flip(1)); // any bijection works as T
        for (auto integ : { flow::Integrator::Euler, flow::Integrator::Midpoint }) {
            flow::CloudVelocityFn v = [&](const torch::Tensor& x, const torch::Tensor& t) {
                return (target - x) / (1 - t.view({ -1, 1, 1 }));
            };
            torch::Tensor traj;
            auto out = flow::integrateClouds(v, x0, mask, 10, integ, &traj);
            QVERIFY((out - target).abs().max().item<double>() < 1e-12);
            QCOMPARE(traj.sizes(), (torch::IntArrayRef { 11, 1, 8, 2 }));
            auto live0 = x0 * mask.unsqueeze(2);
            QVERIFY((traj[0] - live0).abs().max().item<double>() == 0.0);
            QVERIFY(traj.narrow(2, 6, 2).abs().max().item<double>() == 0.0);
        }
    }

    void trainingDrivesTheLossDown()
    {
        auto c = tinyConfig(300);
        c.data.spec = "builtin:rings?count=4&min=16&max=16&seed=2";
        c.data.testFraction = 0;
        c.model.setDropout(0.0);
        c.flow.minibatch = flow::MinibatchCost::None;
        flow::Trainer t(c, "");
        std::vector<double> losses;
        auto r = t.run([&](const flow::TrainProgress& p) { losses.push_back(p.loss); });
        QVERIFY(r.completed);
        QCOMPARE(r.step, std::int64_t(300));
        QCOMPARE(static_cast<int>(losses.size()), 300);
        double first = 0, last = 0;
        for (int i = 0; i < 20; ++i) {
            first += losses[i] / 20;
            last += losses[losses.size() - 1 - i] / 20;
        }
        QVERIFY2(last < 0.5 * first, qPrintable(QString("first %1 last %2").arg(first).arg(last)));
    }

    // A run stopped at step 10 and resumed from its checkpoint logs exactly the losses of an
    // uninterrupted run.
    void resumeReproducesTheLosses()
    {
        QTemporaryDir dir;
        const std::string a = dir.filePath("a").toStdString();
        const std::string b = dir.filePath("b").toStdString();
        auto c = tinyConfig(20);
        c.flow.minibatch = flow::MinibatchCost::Chamfer;
        {
            flow::Trainer t(c, a);
            t.run();
        }
        {
            flow::Trainer t(c, b);
            auto r = t.run([&](const flow::TrainProgress& p) {
                if (p.step == 10) {
                    t.stop();
                }
            });
            QVERIFY(r.stopped);
            QCOMPARE(r.step, std::int64_t(10));
        }
        EXPECT_THROW_MSG(ConfigError, flow::Trainer(c, b), "already holds a checkpoint");
        {
            auto t = flow::Trainer::resume(b);
            QCOMPARE(t->step(), std::int64_t(10));
            auto r = t->run();
            QVERIFY(r.completed);
        }
        const auto la = lossColumn(a + "/log.csv");
        const auto lb = lossColumn(b + "/log.csv");
        QCOMPARE(static_cast<int>(la.size()), 20);
        QCOMPARE(static_cast<int>(lb.size()), 20);
        for (size_t i = 0; i < la.size(); ++i) {
            QCOMPARE(QString::fromStdString(lb[i]), QString::fromStdString(la[i]));
        }
        // Both runs end with the same weights, so they generate the same clouds.
        flow::GenerateRequest req;
        req.count = 3;
        req.seed = 4;
        auto ga = flow::loadCloudGenerator(a)->generate(req);
        auto gb = flow::loadCloudGenerator(b)->generate(req);
        QVERIFY(torch::equal(ga.points, gb.points));
    }

    void pauseResumeAndStopFromAnotherThread()
    {
        auto c = tinyConfig(100000);
        flow::Trainer t(c, "");
        std::atomic<bool> finished { false };
        flow::TrainResult result;
        std::thread worker([&] {
            result = t.run();
            finished = true;
        });
        while (t.step() < 3) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        t.pause();
        std::this_thread::sleep_for(std::chrono::milliseconds(200)); // let the current step end
        const auto held = t.step();
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        QCOMPARE(t.step(), held);
        t.resume();
        while (t.step() < held + 2) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        const auto t0 = std::chrono::steady_clock::now();
        t.stop();
        worker.join();
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        QVERIFY(finished.load());
        QVERIFY(result.stopped);
        QVERIFY(!result.completed);
        QVERIFY2(waited < 1.0, qPrintable(QString::number(waited)));
    }

    void generatorProducesCloudsInDataUnits()
    {
        QTemporaryDir dir;
        const std::string run = dir.filePath("run").toStdString();
        auto c = tinyConfig(5);
        flow::Trainer t(c, run);
        t.run();
        auto live = t.cloudGenerator();
        auto loaded = flow::loadCloudGenerator(run);
        QCOMPARE(loaded->labelNames(), (std::vector<std::string> { "circle", "ellipse" }));
        flow::GenerateRequest req;
        req.count = 5;
        req.seed = 9;
        req.trajectory = true;
        req.steps = 4;
        auto g1 = live->generate(req);
        auto g2 = loaded->generate(req);
        QVERIFY(torch::allclose(g1.points, g2.points, 1e-6, 1e-6));
        QCOMPARE(g1.points.size(0), std::int64_t(5));
        QCOMPARE(g1.trajectory.sizes(), (torch::IntArrayRef { 5, 5, g1.points.size(1), 2 }));
        QVERIFY(torch::allclose(g1.trajectory[4], g1.points));
        // Sizes come from the training clouds; padding is 0 and weights are uniform on live points.
        const auto trainSizes = t.trainClouds().sizes;
        for (int64_t k = 0; k < 5; ++k) {
            const auto n = (g1.weights[k] > 0).sum().item<int64_t>();
            QVERIFY((trainSizes == n).any().item<bool>());
            QVERIFY(std::abs(g1.weights[k].sum().item<double>() - 1.0) < 1e-6);
            QVERIFY(g1.points[k].narrow(0, n, g1.points.size(1) - n).abs().sum().item<double>() == 0.0);
            QVERIFY(torch::isfinite(g1.points).all().item<bool>());
            const auto lab = g1.labels[k].item<int64_t>();
            QVERIFY(lab == 0 || lab == 1);
        }
        // Fixed size and label; unconditional; labels by name.
        req.points = 7;
        req.label = flow::resolveLabel("ellipse", loaded->labelNames());
        req.trajectory = false;
        auto g3 = loaded->generate(req);
        QCOMPARE(g3.points.size(1), std::int64_t(7));
        QVERIFY((g3.labels == 1).all().item<bool>());
        req.label = flow::GenerateRequest::kNullLabel;
        QVERIFY(torch::isfinite(loaded->generate(req).points).all().item<bool>());
        QCOMPARE(flow::resolveLabel("1", loaded->labelNames()), std::int64_t(1));
        EXPECT_THROW_MSG(ConfigError, flow::resolveLabel("square", loaded->labelNames()), "square", "circle");
        // Guidance 1 is the conditional field.
        req.label = 0;
        req.guidance = 1.0;
        auto c1 = loaded->generate(req);
        req.guidance = 2.5;
        auto c2 = loaded->generate(req);
        QVERIFY(!torch::equal(c1.points, c2.points));
    }

    // Seeded subsets: live points only (wherever they sit in the row), no repeats, uniform
    // weights, every point a point of its cloud; the same seed gives the same subset.
    void subsampleKeepsLivePoints()
    {
        auto points = torch::randn({ 3, 10, 2 });
        auto weights = torch::zeros({ 3, 10 });
        weights[0].fill_(0.1f);
        weights[1].index_fill_(0, torch::tensor({ 1, 4, 8 }, torch::kLong), 1.0f / 3); // padding in between
        weights[2].narrow(0, 0, 6).fill_(1.0f / 6);
        const auto [P, W] = flow::subsampleClouds(points, weights, 5, 4);
        QCOMPARE(P.sizes(), (torch::IntArrayRef { 3, 5, 2 }));
        const std::int64_t expected[3] = { 5, 3, 5 };
        for (std::int64_t k = 0; k < 3; ++k) {
            const auto n = (W[k] > 0).sum().item<std::int64_t>();
            QCOMPARE(n, expected[k]);
            QVERIFY(std::abs(W[k].sum().item<double>() - 1.0) < 1e-6);
            std::set<std::int64_t> used;
            for (std::int64_t i = 0; i < n; ++i) {
                // The index of the original live point it copies.
                const auto hit = ((points[k] - P[k][i]).abs().sum(1) == 0).logical_and(weights[k] > 0).nonzero().view(-1);
                QCOMPARE(hit.numel(), std::int64_t(1));
                QVERIFY(used.insert(hit.item<std::int64_t>()).second);
            }
        }
        const auto again = flow::subsampleClouds(points, weights, 5, 4);
        QVERIFY(torch::equal(again.first, P));
    }

    // Evaluation against the held-out split: sizes and labels follow the reference, the
    // metrics equal SetMetrics on the same subsets, per-label rows cover every label present,
    // and comparing the held-out set with itself is perfect coverage with 1-NNA at most 1/2.
    void evaluationFollowsTheReference()
    {
        QTemporaryDir dir;
        const std::string run = dir.filePath("run").toStdString();
        flow::Trainer t(tinyConfig(5), run);
        t.run();
        auto gen = flow::loadCloudGenerator(run);
        const auto ref = flow::heldOutClouds(gen->config());
        QCOMPARE(ref.count(), std::int64_t(6));
        flow::EvaluateOptions o;
        o.chamferPoints = 10;
        o.emdPoints = 8;
        o.seed = 3;
        const auto e = flow::evaluateClouds(*gen, ref, "held-out", o);
        QVERIFY(e.labelled);
        QCOMPARE(e.generated.points.size(0), ref.count());
        for (std::int64_t k = 0; k < ref.count(); ++k) {
            QCOMPARE((e.generated.weights[k] > 0).sum().item<std::int64_t>(), std::min<std::int64_t>(ref.size(k), 10));
            QCOMPARE(e.generated.labels[k].item<std::int64_t>(), ref.labels[k].item<std::int64_t>());
        }
        const auto [gp, gw] = flow::subsampleClouds(e.generated.points, e.generated.weights, 10, 7);
        const auto [rp, rw] = flow::subsampleClouds(ref.points, ref.weights, 10, 8);
        const auto direct = metrics::evaluateClouds(gp, gw, rp, rw, metrics::Distance::Chamfer);
        QCOMPARE(e.chamfer.nna, direct.nna);
        QCOMPARE(e.chamfer.mmd, direct.mmd);
        QVERIFY(e.emd.has_value() && e.emd->distance == "emd");
        std::set<std::string> present;
        for (std::int64_t k = 0; k < ref.count(); ++k) {
            present.insert(ref.labelNames[static_cast<std::size_t>(ref.labels[k].item<std::int64_t>())]);
        }
        double sum = 0;
        for (const auto& [name, r] : e.perLabel) {
            QVERIFY(present.count(name) == 1);
            QCOMPARE(r.generated + r.reference, 2 * ((ref.labels == static_cast<std::int64_t>(
                std::find(ref.labelNames.begin(), ref.labelNames.end(), name) - ref.labelNames.begin())).sum().item<std::int64_t>()));
            sum += r.nna;
        }
        QVERIFY(!e.perLabel.empty());
        QVERIFY(std::abs(*e.meanPerLabelNna - sum / e.perLabel.size()) < 1e-12);
        QVERIFY(!e.niche.has_value()); // rings are not niche data
        // Reference against itself: every reference cloud is covered.
        const auto [sp, sw] = flow::subsampleClouds(ref.points, ref.weights, 10, 8);
        const auto self = metrics::evaluateClouds(sp, sw, sp, sw, metrics::Distance::Chamfer);
        QCOMPARE(self.cov, 1.0);
        QVERIFY(self.nna <= 0.5 + 1e-12);
        // A model of another dimension is refused with the name of the reference.
        auto shapes = data::loadPointClouds("builtin:shapes3d?count=2&min=8&max=8");
        EXPECT_THROW_MSG(ConfigError, flow::evaluateClouds(*gen, shapes, "shapes", o), "shapes", "dimension");
    }

    // Niche data: evaluation (which generates under NoGradGuard) still fits the niche
    // classifier, and reports its accuracy on real and generated niches.
    void nicheEvaluationFitsTheClassifier()
    {
        QTemporaryDir dir;
        const std::string run = dir.filePath("run").toStdString();
        auto c = tinyConfig(3);
        c.data.spec = "builtin:tissue?cells=400&genes=16&k=6&pcs=4";
        c.data.normalization = data::Normalization::Kind::Standardize;
        flow::Trainer t(c, run);
        t.run();
        auto gen = flow::loadCloudGenerator(run);
        flow::EvaluateOptions o;
        o.chamferPoints = 6;
        o.emd = flow::EmdMode::None;
        const auto e = flow::evaluateClouds(*gen, flow::heldOutClouds(gen->config()), "tissue", o);
        QVERIFY(e.niche.has_value());
        const auto& r = e.niche->report;
        QCOMPARE(r.realCount, e.reference.count());
        QCOMPARE(r.generatedCount, e.reference.count());
        QVERIFY(r.realAccuracy >= 0 && r.realAccuracy <= 1 && r.generatedAccuracy >= 0 && r.generatedAccuracy <= 1);
        QVERIFY2(r.realAccuracy > r.chance, qPrintable(QString("real %1, chance %2").arg(r.realAccuracy).arg(r.chance)));
        o.niche = flow::NicheMode::Off;
        QVERIFY(!flow::evaluateClouds(*gen, flow::heldOutClouds(gen->config()), "tissue", o).niche.has_value());
    }

    // A Gaussian run through the same loop: the spec selects the model, the loss falls, generated
    // covariances are positive definite, a checkpoint reproduces the live generator, and resume
    // continues with the uninterrupted losses.
    void gaussianRunsShareTheLoop()
    {
        QTemporaryDir dir;
        flow::TrainConfig c;
        c.data.spec = "builtin:gaussian-spiral?count=200&seed=1";
        c.gaussianModelJson = R"({"width": 64, "blocks": 2})";
        c.optim.lr = 2e-3;
        c.optim.emaDecay = 0.9;
        c.train.steps = 150;
        c.train.batch = 32;
        c.train.device = "cpu";
        c.train.logEvery = 1;
        c.train.checkpointEvery = 0;
        c.generate.steps = 10;
        const std::string a = dir.filePath("a").toStdString();
        std::vector<double> losses;
        {
            flow::Trainer t(c, a);
            QVERIFY(t.kind() == flow::ModelKind::Gaussians);
            QCOMPARE(t.trainCount() + t.testCount(), std::int64_t(200));
            EXPECT_THROW_MSG(ConfigError, t.cloudGenerator(), "gaussians");
            t.run([&](const flow::TrainProgress& p) { losses.push_back(p.loss); });
            double first = 0, last = 0;
            for (int i = 0; i < 15; ++i) {
                first += losses[i] / 15;
                last += losses[losses.size() - 1 - i] / 15;
            }
            // Wishart noise leaves most of the loss irreducible; it must still fall.
            QVERIFY2(last < first, qPrintable(QString("first %1 last %2").arg(first).arg(last)));
            flow::GenerateRequest req;
            req.count = 20;
            req.trajectory = true;
            auto live = t.gaussianGenerator()->generate(req);
            auto loaded = flow::loadGaussianGenerator(a)->generate(req);
            QVERIFY(torch::allclose(live.means, loaded.means, 1e-5, 1e-5));
            QCOMPARE(live.trajectoryCovariances.sizes(), (torch::IntArrayRef { 11, 20, 2, 2 }));
            auto eig = torch::linalg_eigvalsh(live.trajectoryCovariances.to(torch::kDouble), "L");
            QVERIFY(eig.min().item<double>() > 0);
            EXPECT_THROW_MSG(ConfigError, flow::loadCloudGenerator(a), "not point clouds");
        }
        // Stop at 70 and resume: same losses as the first 150.
        const std::string b = dir.filePath("b").toStdString();
        {
            flow::Trainer t(c, b);
            t.run([&](const flow::TrainProgress& p) {
                if (p.step == 70) {
                    t.stop();
                }
            });
        }
        flow::Trainer::resume(b)->run();
        const auto la = lossColumn(a + "/log.csv");
        const auto lb = lossColumn(b + "/log.csv");
        QCOMPARE(la.size(), lb.size());
        for (size_t i = 0; i < la.size(); ++i) {
            QCOMPARE(QString::fromStdString(lb[i]), QString::fromStdString(la[i]));
        }
    }

    // Every minibatch cost re-pairs sources with the optimal assignment of its cost matrix.
    void minibatchCostsPairOptimally()
    {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
        flow::StepBatch b;
        b.target = torch::randn({ 4, 6, 2 }, gen);
        b.source = b.target.index_select(0, torch::tensor({ 2, 0, 3, 1 })) * 1.01 + 0.01;
        b.weights = torch::full({ 4, 6 }, 1.0 / 6);
        for (auto cost : { flow::MinibatchCost::Chamfer, flow::MinibatchCost::Entropic, flow::MinibatchCost::Bures }) {
            auto perm = flow::minibatchPairing(b, cost);
            // target i's own copy is source j with [2,0,3,1][j] = i.
            QCOMPARE(perm[0].item<int64_t>(), std::int64_t(1));
            QCOMPARE(perm[1].item<int64_t>(), std::int64_t(3));
            QCOMPARE(perm[2].item<int64_t>(), std::int64_t(0));
            QCOMPARE(perm[3].item<int64_t>(), std::int64_t(2));
            QCOMPARE(flow::parseMinibatchCost(flow::minibatchCostName(cost)), cost);
        }
        QVERIFY(torch::equal(flow::minibatchPairing(b, flow::MinibatchCost::None), torch::arange(4)));
    }

    // Continuous conditioning vectors are learned and required at generation.
    void continuousConditionsReachTheModel()
    {
        QTemporaryDir dir;
        std::vector<torch::Tensor> clouds;
        for (int k = 0; k < 12; ++k) {
            clouds.push_back(torch::randn({ 10, 2 }) * 0.1 + static_cast<double>(k % 3));
        }
        auto ds = data::PointCloudDataset::fromClouds(clouds);
        ds.cond = torch::arange(12, torch::kFloat).remainder(3).unsqueeze(1).repeat({ 1, 2 });
        const std::string file = dir.filePath("c.npz").toStdString();
        data::writePointCloudNpz(file, ds);
        auto c = tinyConfig(3);
        c.data.spec = "npz:" + file;
        c.data.testFraction = 0;
        const std::string run = dir.filePath("run").toStdString();
        flow::Trainer t(c, run);
        QCOMPARE(t.config().model.condDim, std::int64_t(2));
        t.run();
        auto g = flow::loadCloudGenerator(run);
        flow::GenerateRequest req;
        req.count = 2;
        EXPECT_THROW_MSG(ConfigError, g->generate(req), "conditioned", "2");
        req.cond = torch::ones({ 2, 2 });
        QVERIFY(torch::isfinite(g->generate(req).points).all().item<bool>());
        req.cond = torch::ones({ 2, 3 });
        EXPECT_THROW_MSG(ConfigError, g->generate(req), "cond must be [2,2]");
    }

    void damagedCheckpointsGiveClearErrors()
    {
        QTemporaryDir dir;
        const std::string missing = dir.filePath("nothing").toStdString();
        EXPECT_THROW_MSG(CheckpointError, flow::Trainer::resume(missing), "checkpoint.pt", "does not exist");
        const std::string junk = dir.filePath("junk.pt").toStdString();
        {
            std::ofstream out(junk);
            out << "this is not a checkpoint";
        }
        EXPECT_THROW_MSG(CheckpointError, flow::loadCloudGenerator(junk), "junk.pt");
        // A truncated real checkpoint.
        const std::string run = dir.filePath("run").toStdString();
        flow::Trainer t(tinyConfig(2), run);
        t.run();
        const std::string ck = flow::checkpointPath(run);
        std::ifstream in(ck, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::string cut = dir.filePath("cut.pt").toStdString();
        std::ofstream(cut, std::ios::binary).write(bytes.data(), bytes.size() / 2);
        EXPECT_THROW_MSG(CheckpointError, flow::loadCloudGenerator(cut), "cut.pt");
    }
};

QTEST_GUILESS_MAIN(TestTrainer)
#include "tst_trainer.moc"
