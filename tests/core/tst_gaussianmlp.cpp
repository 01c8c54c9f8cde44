// Tests of the Gaussian velocity network (wfm/model/GaussianMlp.h): options JSON, shapes, an
// exactly symmetric W, dependence on the lower triangle only, near-zero initial output, label
// handling (null label, range checks), classifier-free guidance against separate forwards, the
// parameter count by hand, clone() independence, gradients reaching every parameter and the
// forward under bfloat16 autocast.
#include "wfm/Error.h"
#include "wfm/flow/TrainStep.h"
#include "wfm/model/GaussianMlp.h"

#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

using wfm::ConfigError;
using wfm::model::GaussianMlp;
using wfm::model::GaussianMlpOptions;
using wfm::model::GaussianVelocity;
namespace flow = wfm::flow;

namespace {

constexpr double kExact = 1e-6; // float32 agreement of two evaluations of the same function

GaussianMlp smallModel(int64_t d, int64_t labels = 0, double headInit = 1e-4)
{
    torch::manual_seed(1);
    return GaussianMlp(GaussianMlpOptions(d).setWidth(32).setBlocks(2).setNumLabels(labels)
                           .setHeadInitScale(headInit));
}

std::pair<torch::Tensor, torch::Tensor> randomGaussians(int64_t B, int64_t d)
{
    const torch::Tensor m = torch::randn({ B, d });
    const torch::Tensor L = torch::randn({ B, d, d });
    return { m, L.matmul(L.transpose(1, 2)) + 0.1 * torch::eye(d) };
}

double maxDiff(const torch::Tensor& a, const torch::Tensor& b)
{
    return (a - b).abs().max().item<double>();
}

} // namespace

class TestGaussianMlp : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::set_num_threads(2); }
    void optionsJson();
    void optionErrors();
    void shapesAndSymmetry_data();
    void shapesAndSymmetry();
    void lowerTriangleOnly();
    void nearZeroInit();
    void labels();
    void guidance();
    void parameterCount();
    void cloneIsIndependent();
    void gradientsReachEveryParameter();
    void mixedPrecisionForward();
};

void TestGaussianMlp::optionsJson()
{
    GaussianMlpOptions o(5);
    o.setWidth(48).setBlocks(3).setNumLabels(4).setTimeFrequencies(6).setDropout(0.25)
        .setHeadInitScale(0.5).setLayerNormEps(1e-5);
    const GaussianMlpOptions r = GaussianMlpOptions::fromJsonString(o.toJsonString());
    QVERIFY(r == o);
    const GaussianMlpOptions partial = GaussianMlpOptions::fromJsonString(R"({"dim":3})");
    QCOMPARE(partial.dim, int64_t { 3 });
    QCOMPARE(partial.width, int64_t { 512 });
    QCOMPARE(partial.blocks, int64_t { 4 });
    EXPECT_THROW_MSG(ConfigError, GaussianMlpOptions::fromJsonString(R"({"dim":3,"heads":2})"), "heads");
    EXPECT_THROW_MSG(ConfigError, GaussianMlpOptions::fromJsonString(R"({"dim":"x"})"), "dim");
    EXPECT_THROW_MSG(ConfigError, GaussianMlpOptions::fromJsonString("{"), "JSON");
}

void TestGaussianMlp::optionErrors()
{
    EXPECT_THROW_MSG(ConfigError, GaussianMlpOptions(0).validate(), "dim");
    EXPECT_THROW_MSG(ConfigError, GaussianMlpOptions(2).setWidth(0).validate(), "width");
    EXPECT_THROW_MSG(ConfigError, GaussianMlpOptions(2).setDropout(1.0).validate(), "dropout");
    EXPECT_THROW_MSG(ConfigError, GaussianMlpOptions(2).setNumLabels(-1).validate(), "numLabels");
    EXPECT_THROW_MSG(ConfigError, GaussianMlpOptions(2).setTimeFrequencies(0).validate(),
        "timeFrequencies");
    EXPECT_THROW_MSG(ConfigError, (void)GaussianMlp(GaussianMlpOptions(0)), "dim");
}

void TestGaussianMlp::shapesAndSymmetry_data()
{
    QTest::addColumn<int>("d");
    QTest::newRow("d1") << 1;
    QTest::newRow("d2") << 2;
    QTest::newRow("d3") << 3;
    QTest::newRow("d8") << 8;
}

void TestGaussianMlp::shapesAndSymmetry()
{
    QFETCH(int, d);
    GaussianMlp model = smallModel(d, 0, 1.0);
    const auto [m, S] = randomGaussians(5, d);
    const GaussianVelocity v = model->forward(m, S, torch::rand({ 5 }));
    QCOMPARE(v.dm.sizes(), (torch::IntArrayRef { 5, d }));
    QCOMPARE(v.W.sizes(), (torch::IntArrayRef { 5, d, d }));
    QVERIFY(torch::equal(v.W, v.W.transpose(1, 2)));
    QVERIFY(torch::isfinite(v.W).all().item<bool>());
    // A scalar t equals a constant [B] t.
    const GaussianVelocity s = model->forward(m, S, torch::tensor(0.3f));
    const GaussianVelocity f = model->forward(m, S, torch::full({ 5 }, 0.3f));
    QVERIFY(maxDiff(s.W, f.W) < kExact);
    // Rows are independent: a batch of one gives row 2 of the batch.
    const GaussianVelocity one = model->forward(m.narrow(0, 2, 1), S.narrow(0, 2, 1), torch::full({ 1 }, 0.3f));
    QVERIFY(maxDiff(one.dm[0], f.dm[2]) < kExact);
    EXPECT_THROW_MSG(ConfigError, model->forward(m, S.narrow(0, 0, 4), torch::rand({ 5 })), "covariances");
    EXPECT_THROW_MSG(ConfigError, model->forward(m, S, torch::rand({ 4 })), "t must be");
    EXPECT_THROW_MSG(ConfigError, model->forward(m.to(torch::kDouble), S.to(torch::kDouble), torch::rand({ 5 })),
        "model is");
}

void TestGaussianMlp::lowerTriangleOnly()
{
    // The network reads tril(S): changing only the strict upper triangle changes nothing,
    // changing an entry of the lower triangle does.
    GaussianMlp model = smallModel(3, 0, 1.0);
    const auto [m, S] = randomGaussians(4, 3);
    const torch::Tensor t = torch::rand({ 4 });
    torch::Tensor upper = S.clone();
    upper.select(1, 0).select(1, 2).add_(5.0);
    QVERIFY(maxDiff(model->forward(m, S, t).W, model->forward(m, upper, t).W) == 0.0);
    torch::Tensor lower = S.clone();
    lower.select(1, 2).select(1, 0).add_(5.0);
    QVERIFY(maxDiff(model->forward(m, S, t).W, model->forward(m, lower, t).W) > 1e-4);
}

void TestGaussianMlp::nearZeroInit()
{
    GaussianMlp model = smallModel(4);
    const auto [m, S] = randomGaussians(16, 4);
    const GaussianVelocity v = model->forward(m, S, torch::rand({ 16 }));
    QVERIFY(v.dm.abs().max().item<double>() < 0.05);
    QVERIFY(v.W.abs().max().item<double>() < 0.05);
    QVERIFY(v.dm.abs().max().item<double>() > 0.0);
}

void TestGaussianMlp::labels()
{
    GaussianMlp model = smallModel(2, 3, 1.0);
    const auto [m, S] = randomGaussians(4, 2);
    const torch::Tensor t = torch::rand({ 4 });
    const GaussianVelocity none = model->forward(m, S, t);
    const GaussianVelocity null = model->forward(m, S, t, torch::full({ 4 }, 3, torch::kLong));
    QVERIFY(maxDiff(none.W, null.W) == 0.0);
    const GaussianVelocity lab = model->forward(m, S, t, torch::tensor({ 0, 1, 2, 0 }, torch::kLong));
    QVERIFY(maxDiff(none.W, lab.W) > 1e-5);
    EXPECT_THROW_MSG(ConfigError, model->forward(m, S, t, torch::tensor({ 0, 4, 0, 0 }, torch::kLong)),
        "labels must be in [0, 3]");
    EXPECT_THROW_MSG(ConfigError, model->forward(m, S, t, torch::tensor({ 0, 1 }, torch::kLong)), "labels");
    GaussianMlp plain = smallModel(2);
    EXPECT_THROW_MSG(ConfigError, plain->forward(m, S, t, torch::zeros({ 4 }, torch::kLong)),
        "unconditional");
}

void TestGaussianMlp::guidance()
{
    GaussianMlp model = smallModel(3, 2, 1.0);
    model->eval();
    const auto [m, S] = randomGaussians(5, 3);
    const torch::Tensor t = torch::rand({ 5 });
    const torch::Tensor lab = torch::tensor({ 0, 1, 1, 0, 1 }, torch::kLong);
    const GaussianVelocity c = model->forward(m, S, t, lab);
    const GaussianVelocity u = model->forward(m, S, t, torch::full({ 5 }, 2, torch::kLong));
    const GaussianVelocity g1 = wfm::model::guidedGaussianVelocity(model, m, S, t, lab, 1.0);
    const GaussianVelocity g0 = wfm::model::guidedGaussianVelocity(model, m, S, t, lab, 0.0);
    const GaussianVelocity g = wfm::model::guidedGaussianVelocity(model, m, S, t, lab, 1.5);
    QVERIFY(maxDiff(g1.dm, c.dm) < kExact);
    QVERIFY(maxDiff(g0.W, u.W) < kExact);
    QVERIFY(maxDiff(g.W, u.W + 1.5 * (c.W - u.W)) < kExact);
    QVERIFY(maxDiff(g.dm, u.dm + 1.5 * (c.dm - u.dm)) < kExact);
    QVERIFY(torch::equal(g.W, g.W.transpose(1, 2)));
    GaussianMlp plain = smallModel(3);
    EXPECT_THROW_MSG(ConfigError, wfm::model::guidedGaussianVelocity(plain, m, S, t, lab, 1.5), "numLabels");
    EXPECT_THROW_MSG(ConfigError, wfm::model::guidedGaussianVelocity(model, m, S, t, {}, 1.5), "labels");
}

void TestGaussianMlp::parameterCount()
{
    const int64_t d = 2, E = 16, L = 3, F = 8, T = 3;
    GaussianMlp model(GaussianMlpOptions(d).setWidth(E).setBlocks(2).setNumLabels(L).setTimeFrequencies(F));
    const int64_t perBlock = 2 * E + (E * E + E) * 2;
    const int64_t expected = (d + T) * E + E // input
        + 2 * F * E + E                     // time
        + L * E + E                         // labels
        + 2 * perBlock                      // blocks
        + 2 * E                             // head norm
        + E * d + d + E * T + T;            // heads
    QCOMPARE(model->parameterCount(), expected);
}

void TestGaussianMlp::cloneIsIndependent()
{
    GaussianMlp model = smallModel(2, 0, 1.0);
    auto copy = std::dynamic_pointer_cast<wfm::model::GaussianMlpImpl>(model->clone());
    QVERIFY(copy != nullptr);
    const auto [m, S] = randomGaussians(3, 2);
    const torch::Tensor t = torch::rand({ 3 });
    QVERIFY(maxDiff(copy->forward(m, S, t).W, model->forward(m, S, t).W) == 0.0);
    {
        torch::NoGradGuard g;
        copy->covHead->bias.add_(1.0);
    }
    QVERIFY(maxDiff(copy->forward(m, S, t).W, model->forward(m, S, t).W) > 0.5);
    QCOMPARE(copy->options().dim, int64_t { 2 });
}

void TestGaussianMlp::gradientsReachEveryParameter()
{
    GaussianMlp model = smallModel(3, 2, 1.0);
    const auto [m, S] = randomGaussians(6, 3);
    const GaussianVelocity v
        = model->forward(m, S, torch::rand({ 6 }), torch::tensor({ 0, 1, 2, 0, 1, 2 }, torch::kLong));
    (v.dm.pow(2).sum() + v.W.pow(2).sum()).backward();
    for (const auto& p : model->named_parameters()) {
        QVERIFY2(p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0,
            p.key().c_str());
    }
}

QTEST_GUILESS_MAIN(TestGaussianMlp)
// Under bfloat16 autocast the forward runs (layer norms take bfloat16 activations) and agrees
// with float32 to bfloat16 accuracy; W stays exactly symmetric. Without bfloat16 units the
// guard is off and the result is bit-identical.
void TestGaussianMlp::mixedPrecisionForward()
{
    GaussianMlp net = smallModel(3, 2, 1.0);
    const auto [m, S] = randomGaussians(16, 3);
    const torch::Tensor t = torch::rand({ 16 });
    const torch::Tensor labels = torch::randint(0, 3, { 16 }, torch::kLong);
    const GaussianVelocity ref = net->forward(m, S, t, labels);
    GaussianVelocity mixed;
    {
        flow::AutocastGuard guard(true, torch::Device(torch::kCPU));
        mixed = net->forward(m, S, t, labels);
    }
    QVERIFY(torch::equal(mixed.W, mixed.W.transpose(1, 2)));
    const torch::Tensor dm = mixed.dm.to(torch::kFloat), W = mixed.W.to(torch::kFloat);
    if (!flow::mixedPrecisionSupported(torch::Device(torch::kCPU))) {
        QVERIFY(torch::equal(dm, ref.dm) && torch::equal(W, ref.W));
        return;
    }
    const double scale = std::max(ref.dm.abs().max().item<double>(), ref.W.abs().max().item<double>());
    QVERIFY2(maxDiff(dm, ref.dm) < 0.05 * scale, qPrintable(QString::number(maxDiff(dm, ref.dm) / scale)));
    QVERIFY2(maxDiff(W, ref.W) < 0.05 * scale, qPrintable(QString::number(maxDiff(W, ref.W) / scale)));
    QVERIFY(maxDiff(dm, ref.dm) > 0.0); // the arithmetic did change
}

#include "tst_gaussianmlp.moc"
