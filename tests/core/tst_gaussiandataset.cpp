// Tests of the Gaussian dataset side (wfm/data/GaussianDataset.h): the built-in families against
// their defining geometry (finite-difference tangents, eigen-decompositions), moment matching
// against brute-force loops, .npz round trips and files written by numpy, validation errors that
// name the field and row, the split against PointCloudDataset::split, normalisation, the batch
// sampler and the source noise (Wishart moments in closed form).
#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/GaussianDataset.h"
#include "wfm/data/Npy.h"
#include "wfm/data/PointCloudDataset.h"

#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

using wfm::ConfigError;
using wfm::DatasetError;
using wfm::data::GaussianDataset;
using wfm::data::GaussianNoise;
using wfm::data::GaussianNoiseKind;
using wfm::data::GaussianNormalization;

namespace {

constexpr double kFloatTol = 1e-5;   // float32 storage of O(1) quantities
constexpr double kSigmas = 5.0;      // statistical tolerance in standard errors

double maxAbs(const torch::Tensor& a, const torch::Tensor& b)
{
    return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

GaussianDataset smallDataset(std::int64_t M, std::int64_t d, std::uint64_t seed, int labels = 0)
{
    torch::manual_seed(static_cast<std::int64_t>(seed));
    GaussianDataset g;
    g.means = torch::randn({ M, d });
    const torch::Tensor L = torch::randn({ M, d, d }, torch::kDouble);
    g.covariances = (L.matmul(L.transpose(1, 2)) / d + 0.1 * torch::eye(d, torch::kDouble))
                        .to(torch::kFloat);
    if (labels > 0) {
        g.labels = torch::arange(M, torch::kLong).remainder(labels);
        for (int l = 0; l < labels; ++l) {
            g.labelNames.push_back("class" + std::to_string(l));
        }
    }
    return g;
}

} // namespace

class TestGaussianDataset : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void spiralGeometry();
    void ring3dGeometry();
    void eig8Relationship();
    void builtinDeterminism_data();
    void builtinDeterminism();
    void builtinErrors();

    void momentMatchingBruteForce();
    void npzRoundTrip();
    void npzWrittenByNumpy();
    void specs();
    void validationErrors();

    void splitStratified();
    void normalization();
    void batchSampler();

    void wishartMoments();
    void noiseKinds();
    void noiseJson();

private:
    std::string path(const char* name) const { return (m_dir.path() + "/" + name).toStdString(); }
    QTemporaryDir m_dir;
};

void TestGaussianDataset::initTestCase()
{
    QVERIFY(m_dir.isValid());
    torch::set_num_threads(2);
}

void TestGaussianDataset::spiralGeometry()
{
    const GaussianDataset g = wfm::data::makeGaussianBuiltin("gaussian-spiral", { { "count", "200" } });
    QCOMPARE(g.count(), 200);
    QCOMPARE(g.dim(), 2);
    QVERIFY(!g.hasLabels());
    QCOMPARE(g.source, std::string("builtin:gaussian-spiral"));
    // Every Gaussian: its mean is on the spiral at some s; its major axis is along the curve's
    // direction there, estimated by a central difference of positions (independent of the
    // analytic tangent), with std growing along s.
    const torch::Tensor m = g.means.to(torch::kDouble);
    const auto [ev, V] = torch::linalg_eigh(g.covariances.to(torch::kDouble), "L");
    std::vector<wfm::data::GaussianSpiralPoint> curve;
    for (int i = 0; i <= 20000; ++i) {
        curve.push_back(wfm::data::gaussianSpiralAt(i / 20000.0));
    }
    for (std::int64_t k = 0; k < g.count(); ++k) {
        // Recover s by a fine search along the curve.
        const double mx = m[k][0].item<double>(), my = m[k][1].item<double>();
        double bestS = 0, best = 1e30;
        for (int i = 0; i <= 20000; ++i) {
            const auto& p = curve[static_cast<std::size_t>(i)];
            const double dd = std::hypot(p.x - mx, p.y - my);
            if (dd < best) {
                best = dd;
                bestS = i / 20000.0;
            }
        }
        QVERIFY2(best < 2e-3, qPrintable(QString("mean %1 is %2 off the spiral").arg(k).arg(best)));
        const double eps = 1e-6;
        const auto a = wfm::data::gaussianSpiralAt(std::max(0.0, bestS - eps));
        const auto b = wfm::data::gaussianSpiralAt(std::min(1.0, bestS + eps));
        double tx = b.x - a.x, ty = b.y - a.y;
        const double n = std::hypot(tx, ty);
        tx /= n;
        ty /= n;
        const double cosAngle = std::abs(V[k][0][1].item<double>() * tx + V[k][1][1].item<double>() * ty);
        QVERIFY2(cosAngle > std::cos(1.0 * M_PI / 180.0),
            qPrintable(QString("Gaussian %1: major axis %2 deg off the tangent").arg(k).arg(
                std::acos(std::min(1.0, cosAngle)) * 180 / M_PI)));
        const double major = std::sqrt(ev[k][1].item<double>());
        const double minor = std::sqrt(ev[k][0].item<double>());
        const double expected = wfm::data::kSpiralMajor0
            + bestS * (wfm::data::kSpiralMajor1 - wfm::data::kSpiralMajor0);
        QVERIFY(std::abs(major - expected) < 2e-3);
        QVERIFY(std::abs(minor / major - wfm::data::kSpiralMinorRatio) < 1e-3);
    }
}

void TestGaussianDataset::ring3dGeometry()
{
    const GaussianDataset g = wfm::data::makeGaussianBuiltin("gaussian-ring3d", { { "count", "100" }, { "seed", "4" } });
    QCOMPARE(g.dim(), 3);
    const torch::Tensor m = g.means.to(torch::kDouble);
    const auto [ev, V] = torch::linalg_eigh(g.covariances.to(torch::kDouble), "L");
    for (std::int64_t k = 0; k < g.count(); ++k) {
        const double x = m[k][0].item<double>(), y = m[k][1].item<double>();
        QVERIFY(std::abs(std::hypot(x, y) - wfm::data::kRingRadius) < 1e-5);
        QVERIFY(std::abs(m[k][2].item<double>()) < 1e-6);
        // Eigenvalues are the squared stds; the major axis is horizontal and orthogonal to the
        // radius (the tangent); the other two axes lie in the plane spanned by e_r and e_z.
        for (int i = 0; i < 3; ++i) {
            QVERIFY(std::abs(ev[k][2 - i].item<double>() - std::pow(wfm::data::kRingStd[i], 2)) < kFloatTol);
        }
        const double radial = (V[k][0][2].item<double>() * x + V[k][1][2].item<double>() * y)
            / std::hypot(x, y);
        QVERIFY(std::abs(radial) < 1e-4);
        QVERIFY(std::abs(V[k][2][2].item<double>()) < 1e-4);
    }
    // The twist: at phi = 0 the middle axis is radial (x), at phi = pi it is vertical (z).
    const torch::Tensor S0 = wfm::data::gaussianRing3dCovariance(0.0);
    const torch::Tensor Spi = wfm::data::gaussianRing3dCovariance(M_PI);
    QVERIFY(std::abs(S0[0][0].item<double>() - std::pow(wfm::data::kRingStd[1], 2)) < 1e-12);
    QVERIFY(std::abs(Spi[2][2].item<double>() - std::pow(wfm::data::kRingStd[1], 2)) < 1e-12);
    QVERIFY(std::abs(Spi[0][0].item<double>() - std::pow(wfm::data::kRingStd[2], 2)) < 1e-12);
}

void TestGaussianDataset::eig8Relationship()
{
    const GaussianDataset g = wfm::data::makeGaussianBuiltin("gaussian-eig8", { { "count", "64" } });
    QCOMPARE(g.dim(), 8);
    const torch::Tensor lambda = wfm::data::gaussianEig8Eigenvalues(g.means);
    // The spectrum of S is lambda(m) (sorted), by an independent eigen-solve.
    const torch::Tensor ev = torch::linalg_eigvalsh(g.covariances.to(torch::kDouble), "L");
    const torch::Tensor sorted = std::get<0>(lambda.sort(1));
    QVERIFY(((ev - sorted).abs() / sorted).max().item<double>() < 1e-5);
    // Hand value of lambda for one mean.
    const torch::Tensor m = torch::tensor({ 0.5, -1.0, 0.0, 2.0, 0.1, 0.2, -0.3, 3.0 }, torch::kDouble)
                                .unsqueeze(0);
    const torch::Tensor l = wfm::data::gaussianEig8Eigenvalues(m);
    for (int k = 0; k < 8; ++k) {
        const double want = wfm::data::kEig8Base
            * std::exp(-wfm::data::kEig8Decay * k + wfm::data::kEig8Gain * std::tanh(m[0][k].item<double>()));
        QVERIFY(std::abs(l[0][k].item<double>() - want) < 1e-12 * want);
    }
    // Eigenvectors depend on the mean: two means with equal tanh pattern but different
    // directions give different covariances (V(m) is not constant).
    const torch::Tensor S = wfm::data::gaussianEig8Covariances(torch::cat({ m, m * 0.0 }, 0));
    QVERIFY((S[0] - S[0].t()).abs().max().item<double>() < 1e-12);
    const torch::Tensor S2 = wfm::data::gaussianEig8Covariances(m.flip(1));
    QVERIFY((S[0] - S2[0]).abs().max().item<double>() > 1e-3);
}

void TestGaussianDataset::builtinDeterminism_data()
{
    QTest::addColumn<QString>("name");
    for (const auto& n : wfm::data::gaussianBuiltinNames()) {
        QTest::newRow(n.c_str()) << QString::fromStdString(n);
    }
}

void TestGaussianDataset::builtinDeterminism()
{
    QFETCH(QString, name);
    const std::string n = name.toStdString();
    const auto a = wfm::data::makeGaussianBuiltin(n, { { "count", "40" }, { "seed", "7" } });
    const auto b = wfm::data::makeGaussianBuiltin(n, { { "count", "40" }, { "seed", "7" } });
    const auto c = wfm::data::makeGaussianBuiltin(n, { { "count", "40" }, { "seed", "8" } });
    QVERIFY(torch::equal(a.means, b.means));
    QVERIFY(torch::equal(a.covariances, b.covariances));
    QVERIFY(!torch::equal(a.means, c.means));
    // A prefix of a larger draw is the smaller draw (Gaussian k comes from Rng(seed, k)).
    const auto big = wfm::data::makeGaussianBuiltin(n, { { "count", "80" }, { "seed", "7" } });
    QVERIFY(torch::equal(big.means.narrow(0, 0, 40), a.means));
    a.validate("test");
    QVERIFY(wfm::data::isGaussianSpec("builtin:" + n + "?count=3"));
    const GaussianDataset viaSpec = wfm::data::loadGaussians("builtin:" + n + "?count=40&seed=7");
    QVERIFY(torch::equal(viaSpec.means, a.means));
    QCOMPARE(viaSpec.source, "builtin:" + n + "?count=40&seed=7");
}

void TestGaussianDataset::builtinErrors()
{
    EXPECT_THROW_MSG(ConfigError, wfm::data::makeGaussianBuiltin("gaussian-nope"), "gaussian-nope",
        "gaussian-spiral");
    EXPECT_THROW_MSG(ConfigError,
        wfm::data::makeGaussianBuiltin("gaussian-spiral", { { "colour", "red" } }), "colour",
        "count");
    EXPECT_THROW_MSG(ConfigError,
        wfm::data::makeGaussianBuiltin("gaussian-eig8", { { "noise", "0.1" } }), "noise");
    EXPECT_THROW_MSG(ConfigError,
        wfm::data::makeGaussianBuiltin("gaussian-spiral", { { "count", "abc" } }), "count", "abc");
    EXPECT_THROW_MSG(ConfigError,
        wfm::data::makeGaussianBuiltin("gaussian-spiral", { { "count", "0" } }), "count");
    EXPECT_THROW_MSG(ConfigError,
        wfm::data::makeGaussianBuiltin("gaussian-ring3d", { { "noise", "-1" } }), "noise");
    EXPECT_THROW_MSG(ConfigError, wfm::data::loadGaussians("builtin:gaussian-x"), "gaussian-x");
}

void TestGaussianDataset::momentMatchingBruteForce()
{
    torch::manual_seed(3);
    const std::int64_t K = 5, N = 9, d = 3;
    torch::Tensor pts = torch::randn({ K, N, d });
    torch::Tensor w = torch::rand({ K, N }) + 0.1;
    w.index_put_({ 1, torch::indexing::Slice(5, N) }, 0.0); // cloud 1 has 5 live points
    w.index_put_({ 3, 0 }, 0.0);                            // a hole in the middle of cloud 3
    wfm::data::PointCloudDataset clouds = wfm::data::PointCloudDataset::fromPadded(pts, w, "t");
    clouds.labels = torch::tensor({ 0, 1, 0, 1, 1 }, torch::kLong);
    clouds.labelNames = { "a", "b" };
    const double ridge = 1e-3;
    const GaussianDataset g = GaussianDataset::fromPointClouds(clouds, ridge);
    g.validate("moments");
    QCOMPARE(g.labelNames, clouds.labelNames);
    QVERIFY(torch::equal(g.labels, clouds.labels));
    const torch::Tensor P = pts.to(torch::kDouble);
    const torch::Tensor Wt = w.to(torch::kDouble);
    for (std::int64_t k = 0; k < K; ++k) {
        double total = 0;
        std::vector<double> mean(d, 0.0);
        for (std::int64_t i = 0; i < N; ++i) {
            const double wi = Wt[k][i].item<double>();
            total += wi;
            for (std::int64_t a = 0; a < d; ++a) {
                mean[a] += wi * P[k][i][a].item<double>();
            }
        }
        for (auto& v : mean) {
            v /= total;
        }
        for (std::int64_t a = 0; a < d; ++a) {
            QVERIFY(std::abs(g.means[k][a].item<double>() - mean[a]) < kFloatTol);
            for (std::int64_t b = 0; b < d; ++b) {
                double c = 0;
                for (std::int64_t i = 0; i < N; ++i) {
                    c += Wt[k][i].item<double>() * (P[k][i][a].item<double>() - mean[a])
                        * (P[k][i][b].item<double>() - mean[b]);
                }
                c = c / total + (a == b ? ridge : 0.0);
                QVERIFY2(std::abs(g.covariances[k][a][b].item<double>() - c) < kFloatTol,
                    qPrintable(QString("cloud %1 entry %2,%3").arg(k).arg(a).arg(b)));
            }
        }
    }
    EXPECT_THROW_MSG(ConfigError, GaussianDataset::fromPointClouds(clouds, -1.0), "ridge");
}

void TestGaussianDataset::npzRoundTrip()
{
    GaussianDataset g = smallDataset(12, 3, 5, 3);
    g.labelNames = { "alpha", "béta", "gamma" };
    const std::string file = path("roundtrip.npz");
    wfm::data::writeGaussianNpz(file, g);
    QVERIFY(wfm::data::isGaussianSpec(file));
    QVERIFY(wfm::data::isGaussianSpec("npz:" + file));
    const GaussianDataset r = wfm::data::loadGaussians(file);
    QVERIFY(torch::equal(r.means, g.means));
    QVERIFY(torch::equal(r.covariances, g.covariances));
    QVERIFY(torch::equal(r.labels, g.labels));
    QCOMPARE(r.labelNames, g.labelNames);
    QCOMPARE(r.name, std::string("roundtrip"));
    QCOMPARE(r.source, file);
    // An npz with point clouds is not a Gaussian spec but loads by moment matching.
    const wfm::data::PointCloudDataset pc
        = wfm::data::PointCloudDataset::fromClouds({ torch::randn({ 6, 2 }), torch::randn({ 9, 2 }) });
    wfm::data::writePointCloudNpz(path("clouds.npz"), pc);
    QVERIFY(!wfm::data::isGaussianSpec(path("clouds.npz")));
    const GaussianDataset mm = wfm::data::loadGaussians(path("clouds.npz"));
    QCOMPARE(mm.count(), 2);
    QVERIFY(maxAbs(mm.means[1], pc.cloud(1).mean(0)) < kFloatTol);
    QVERIFY(!wfm::data::isGaussianSpec(path("missing.npz")));
    QVERIFY(!wfm::data::isGaussianSpec("builtin:rings"));
}

void TestGaussianDataset::npzWrittenByNumpy()
{
    QString log;
    if (wfm::test::runPython(m_dir.path(), QStringLiteral("import numpy\n"), log) != 0) {
        QSKIP("numpy not available");
    }
    const QString script = QStringLiteral(R"PY(
import numpy as np
rng = np.random.default_rng(0)
M, d = 7, 2
A = rng.standard_normal((M, d, d))
S = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(d)
m = rng.standard_normal((M, d))
np.savez('numpy_unicode.npz', means=m, covariances=S, labels=np.array([0, 1, 1, 0, 2, 2, 1], dtype=np.int32),
         label_names=np.array(['small', 'medium', 'größer']), extra=np.array(['ignored']))
np.savez_compressed('numpy_plain.npz', means=m.astype(np.float32), covariances=S.astype(np.float32))
np.savez('numpy_badcov.npz', means=m, covariances=S[:, :1, :])
np.savez('numpy_nocov.npz', means=m)
S2 = S.copy(); S2[3] = -S2[3]
np.savez('numpy_notpd.npz', means=m, covariances=S2)
np.savetxt('truth.txt', np.concatenate([m.reshape(-1), S.reshape(-1)]))
)PY");
    QVERIFY2(wfm::test::runPython(m_dir.path(), script, log) == 0, qPrintable(log));
    const GaussianDataset g = wfm::data::loadGaussians(path("numpy_unicode.npz"));
    QCOMPARE(g.count(), 7);
    QCOMPARE(g.labelNames, (std::vector<std::string> { "small", "medium", "größer" }));
    QCOMPARE(g.labels[4].item<std::int64_t>(), 2);
    QFile truthFile(QString::fromStdString(path("truth.txt")));
    QVERIFY(truthFile.open(QIODevice::ReadOnly));
    std::vector<double> truth;
    for (const QByteArray& line : truthFile.readAll().split('\n')) {
        if (!line.trimmed().isEmpty()) {
            truth.push_back(line.trimmed().toDouble());
        }
    }
    QCOMPARE(truth.size(), std::size_t { 7 * 2 + 7 * 4 });
    const torch::Tensor t = torch::tensor(truth, torch::kDouble);
    QVERIFY(maxAbs(g.means.reshape({ -1 }), t.narrow(0, 0, 14)) < 1e-6);
    QVERIFY(maxAbs(g.covariances.reshape({ -1 }), t.narrow(0, 14, 28)) < 1e-5);
    const GaussianDataset plain = wfm::data::loadGaussians("npz:" + path("numpy_plain.npz"));
    QVERIFY(!plain.hasLabels());
    QVERIFY(maxAbs(plain.means, g.means) < 1e-6);

    EXPECT_THROW_MSG(DatasetError, wfm::data::loadGaussians(path("numpy_badcov.npz")),
        "numpy_badcov.npz", "covariances");
    EXPECT_THROW_MSG(DatasetError, wfm::data::loadGaussians(path("numpy_nocov.npz")),
        "numpy_nocov.npz", "'covariances' is missing");
    EXPECT_THROW_MSG(DatasetError, wfm::data::loadGaussians(path("numpy_notpd.npz")),
        "numpy_notpd.npz", "covariances", "row 3", "positive definite");
}

void TestGaussianDataset::specs()
{
    // Point-cloud specs are moment-matched; labels come along.
    const GaussianDataset r = wfm::data::loadGaussians("builtin:rings?count=20&seed=1");
    const wfm::data::PointCloudDataset pc = wfm::data::loadPointClouds("builtin:rings?count=20&seed=1");
    QCOMPARE(r.count(), 20);
    QCOMPARE(r.labelNames, pc.labelNames);
    QVERIFY(torch::equal(r.labels, pc.labels));
    QVERIFY(maxAbs(r.means[4], pc.cloud(4).mean(0)) < kFloatTol);
    QCOMPARE(r.source, std::string("builtin:rings?count=20&seed=1"));
    EXPECT_THROW_MSG(ConfigError, wfm::data::loadGaussians(path("x.npz") + "?count=3"), "count");
    EXPECT_THROW_MSG(DatasetError, wfm::data::loadGaussians(path("absent.npz")), "absent.npz");
    QVERIFY(!r.summaryText().empty());
    QVERIFY(r.summaryText().find("gaussians: 20") != std::string::npos);
}

void TestGaussianDataset::validationErrors()
{
    const GaussianDataset good = smallDataset(6, 2, 9, 2);
    good.validate("ok");
    {
        GaussianDataset g = good.clone();
        g.means[2][1] = std::nan("");
        EXPECT_THROW_MSG(DatasetError, g.validate("data"), "data", "means", "row 2");
    }
    {
        GaussianDataset g = good.clone();
        g.covariances[4][0][1] = g.covariances[4][0][1] + 1.0;
        EXPECT_THROW_MSG(DatasetError, g.validate("data"), "covariances", "row 4", "symmetric");
    }
    {
        GaussianDataset g = good.clone();
        g.covariances[1] = torch::tensor({ 1.0f, 2.0f, 2.0f, 1.0f }).reshape({ 2, 2 });
        EXPECT_THROW_MSG(DatasetError, g.validate("data"), "covariances", "row 1", "positive definite");
    }
    {
        GaussianDataset g = good.clone();
        g.covariances[0][1][1] = std::numeric_limits<float>::infinity();
        EXPECT_THROW_MSG(DatasetError, g.validate("data"), "covariances", "row 0", "non-finite");
    }
    {
        GaussianDataset g = good.clone();
        g.labels[5] = 7;
        EXPECT_THROW_MSG(DatasetError, g.validate("data"), "labels", "row 5");
    }
    {
        GaussianDataset g = good.clone();
        g.covariances = g.covariances.narrow(0, 0, 5);
        EXPECT_THROW_MSG(DatasetError, g.validate("data"), "covariances", "[6,2,2]");
    }
    {
        GaussianDataset g = good.clone();
        g.means = g.means.to(torch::kDouble);
        EXPECT_THROW_MSG(DatasetError, g.validate("data"), "means", "float32");
    }
    EXPECT_THROW_MSG(ConfigError, good.subset({ 0, 6 }), "index 6");
}

void TestGaussianDataset::splitStratified()
{
    GaussianDataset g = smallDataset(60, 2, 11);
    std::vector<std::int64_t> lab;
    for (int i = 0; i < 60; ++i) {
        lab.push_back(i < 30 ? 0 : (i < 50 ? 1 : 2));
    }
    g.labels = torch::tensor(lab, torch::kLong);
    g.labelNames = { "a", "b", "c" };
    const auto s = g.split(0.2, 42);
    QCOMPARE(s.testIndices.size(), std::size_t { 12 });
    QCOMPARE(s.trainIndices.size(), std::size_t { 48 });
    std::map<std::int64_t, int> perLabel;
    for (const auto i : s.testIndices) {
        ++perLabel[lab[static_cast<std::size_t>(i)]];
    }
    QCOMPARE(perLabel[0], 6);
    QCOMPARE(perLabel[1], 4);
    QCOMPARE(perLabel[2], 2);
    std::set<std::int64_t> all(s.trainIndices.begin(), s.trainIndices.end());
    all.insert(s.testIndices.begin(), s.testIndices.end());
    QCOMPARE(all.size(), std::size_t { 60 });
    QVERIFY(torch::equal(s.test.means[3], g.means[s.testIndices[3]]));
    QVERIFY(torch::equal(s.train.labels, g.labels.index_select(0, torch::tensor(s.trainIndices))));
    // Deterministic, seed-dependent, and row for row the same as the point-cloud split.
    QCOMPARE(g.split(0.2, 42).testIndices, s.testIndices);
    QVERIFY(g.split(0.2, 43).testIndices != s.testIndices);
    std::vector<torch::Tensor> clouds(60, torch::zeros({ 1, 2 }));
    wfm::data::PointCloudDataset pc = wfm::data::PointCloudDataset::fromClouds(clouds);
    pc.labels = g.labels;
    pc.labelNames = g.labelNames;
    QCOMPARE(pc.split(0.2, 42).testIndices, s.testIndices);
    EXPECT_THROW_MSG(ConfigError, g.split(1.0, 0), "test fraction");
}

void TestGaussianDataset::normalization()
{
    const GaussianDataset g = wfm::data::makeGaussianBuiltin("gaussian-spiral", { { "count", "300" } });
    using Kind = GaussianNormalization::Kind;
    const auto st = GaussianNormalization::fit(g, Kind::Standardize);
    const auto [m, S] = st.apply(g.means, g.covariances);
    QVERIFY(m.to(torch::kDouble).mean(0).abs().max().item<double>() < 1e-5);
    QVERIFY(std::abs(m.to(torch::kDouble).pow(2).mean().item<double>() - 1.0) < 1e-5);
    QVERIFY(maxAbs(S * (st.scale * st.scale), g.covariances) < 1e-5);
    const auto [mi, Si] = st.invert(m, S);
    QVERIFY(maxAbs(mi, g.means) < 1e-5);
    QVERIFY(maxAbs(Si, g.covariances) < 1e-6);
    const auto mm = GaussianNormalization::fit(g, Kind::GlobalMinMax);
    const auto nm = mm.apply(g);
    QVERIFY(std::abs(nm.means.abs().max().item<double>() - 1.0) < 1e-5);
    nm.validate("normalised");
    const auto back = GaussianNormalization::fromJsonString(mm.toJsonString());
    QVERIFY(back.kind == Kind::GlobalMinMax);
    QCOMPARE(back.center, mm.center);
    QCOMPARE(back.scale, mm.scale);
    const auto none = GaussianNormalization::fit(g, Kind::None);
    QVERIFY(torch::equal(none.apply(g.means, g.covariances).first, g.means));
    EXPECT_THROW_MSG(ConfigError, GaussianNormalization::fit(g, Kind::PerCloud), "per_cloud");
    EXPECT_THROW_MSG(ConfigError,
        GaussianNormalization::fromJsonString(R"({"kind":"per_cloud","center":[],"scale":1})"),
        "per_cloud");
    EXPECT_THROW_MSG(ConfigError, st.apply(torch::zeros({ 2, 3 }), torch::zeros({ 2, 3, 3 })),
        "dimension");
}

void TestGaussianDataset::batchSampler()
{
    const GaussianDataset g = smallDataset(30, 2, 13, 3);
    wfm::data::GaussianBatchSampler a(g, 8, 99);
    wfm::data::GaussianBatchSampler b(g, 8, 99);
    const auto b0 = a.next();
    const auto b1 = a.next();
    QCOMPARE(a.state(), std::uint64_t { 2 });
    QVERIFY(torch::equal(b0.indices, b.next().indices));
    b.setState(1);
    QVERIFY(torch::equal(b1.indices, b.next().indices));
    QVERIFY(torch::equal(a.batchAt(1).indices, b1.indices));
    QVERIFY(!torch::equal(b0.indices, b1.indices));
    QVERIFY(torch::equal(b1.means, g.means.index_select(0, b1.indices)));
    QVERIFY(torch::equal(b1.covariances, g.covariances.index_select(0, b1.indices)));
    QVERIFY(torch::equal(b1.labels, g.labels.index_select(0, b1.indices)));
    wfm::data::GaussianBatchSampler c(g, 8, 100);
    QVERIFY(!torch::equal(c.next().indices, b0.indices));
    EXPECT_THROW_MSG(ConfigError, wfm::data::GaussianBatchSampler(g, 0, 1), "batch size");
}

void TestGaussianDataset::wishartMoments()
{
    // Data with means spread per coordinate and covariances of average diagonal c.
    GaussianDataset g = smallDataset(50, 3, 17);
    g.means = g.means * torch::tensor({ 1.0f, 2.0f, 0.5f }) + torch::tensor({ 3.0f, -1.0f, 0.0f });
    const GaussianNoise n = GaussianNoise::fit(GaussianNoiseKind::Wishart, g, 2.0);
    QCOMPARE(n.degreesOfFreedom(), std::int64_t { 6 });
    const double c = g.covariances.to(torch::kDouble).diagonal(0, 1, 2).mean().item<double>();
    QVERIFY(std::abs(n.covScale() - c) < 1e-9 * c);
    const torch::Tensor dm = g.means.to(torch::kDouble);
    QVERIFY(maxAbs(n.meanCenter(), dm.mean(0)) < 1e-5);
    QVERIFY(maxAbs(n.meanStd(), (dm - dm.mean(0)).pow(2).mean(0).sqrt()) < 1e-5);

    torch::Generator gen = at::detail::createCPUGenerator(5);
    const std::int64_t B = 20000;
    const auto [m, S] = n.sample(B, {}, gen);
    QCOMPARE(m.sizes(), (torch::IntArrayRef { B, 3 }));
    QCOMPARE(S.sizes(), (torch::IntArrayRef { B, 3, 3 }));
    QVERIFY(torch::linalg_eigvalsh(S.to(torch::kDouble), "L").min().item<double>() > 0.0);
    QVERIFY(torch::equal(S, S.transpose(1, 2)));
    // E[S] = c I (+ the 1e-6 c ridge); Var(S_ij) = c^2 (1 + delta_ij) / n for a Wishart.
    const torch::Tensor meanS = S.to(torch::kDouble).mean(0);
    const double nu = static_cast<double>(n.degreesOfFreedom());
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
            const double want = i == j ? c * (1 + 1e-6) : 0.0;
            const double se = c * std::sqrt((1.0 + (i == j)) / nu / B);
            QVERIFY2(std::abs(meanS[i][j].item<double>() - want) < kSigmas * se,
                qPrintable(QString("E[S](%1,%2)").arg(i).arg(j)));
        }
    }
    const torch::Tensor mm = m.to(torch::kDouble);
    const torch::Tensor center = n.meanCenter().to(torch::kDouble);
    const torch::Tensor sd = n.meanStd().to(torch::kDouble);
    QVERIFY(((mm.mean(0) - center).abs() / (sd / std::sqrt(B))).max().item<double>() < kSigmas);
    QVERIFY(((mm.std(0) / sd) - 1.0).abs().max().item<double>() < 0.03);
    // Same generator seed, same draws.
    torch::Generator gen2 = at::detail::createCPUGenerator(5);
    const auto [m2, S2] = n.sample(B, {}, gen2);
    QVERIFY(torch::equal(m, m2));
    QVERIFY(torch::equal(S, S2));
}

void TestGaussianDataset::noiseKinds()
{
    QVERIFY(wfm::data::parseGaussianNoiseKind("wishart") == GaussianNoiseKind::Wishart);
    QVERIFY(wfm::data::parseGaussianNoiseKind("standard_normal") == GaussianNoiseKind::StandardNormal);
    QVERIFY(wfm::data::parseGaussianNoiseKind("gaussians") == GaussianNoiseKind::Gaussians);
    EXPECT_THROW_MSG(ConfigError, wfm::data::parseGaussianNoiseKind("chol"), "chol", "wishart");

    const GaussianNoise sn = GaussianNoise::standardNormal(2);
    torch::Generator gen = at::detail::createCPUGenerator(1);
    const auto [m, S] = sn.sample(8000, {}, gen);
    QVERIFY(m.to(torch::kDouble).mean(0).abs().max().item<double>() < kSigmas / std::sqrt(8000.0));
    QVERIFY(maxAbs(S.to(torch::kDouble).mean(0), torch::eye(2, torch::kDouble)) < 0.03);

    const GaussianDataset src = smallDataset(5, 2, 21);
    const GaussianNoise byIndex = GaussianNoise::fromGaussians(src, wfm::data::CloudPairing::ByIndex);
    const torch::Tensor idx = torch::tensor({ 4, 0, 4 }, torch::kLong);
    const auto [bm, bS] = byIndex.sample(3, idx, gen);
    QVERIFY(torch::equal(bm, src.means.index_select(0, idx)));
    QVERIFY(torch::equal(bS, src.covariances.index_select(0, idx)));
    EXPECT_THROW_MSG(ConfigError, byIndex.sample(1, torch::tensor({ 5 }, torch::kLong), gen),
        "index 5");
    EXPECT_THROW_MSG(ConfigError, byIndex.sample(2, {}, gen), "indices");
    const GaussianNoise random = GaussianNoise::fromGaussians(src, wfm::data::CloudPairing::Random);
    const auto [rm, rS] = random.sample(200, {}, gen);
    std::set<std::vector<float>> seen;
    for (std::int64_t b = 0; b < 200; ++b) {
        bool found = false;
        for (std::int64_t k = 0; k < 5; ++k) {
            if (torch::equal(rm[b], src.means[k]) && torch::equal(rS[b], src.covariances[k])) {
                found = true;
                seen.insert({ rm[b][0].item<float>() });
            }
        }
        QVERIFY(found);
    }
    QCOMPARE(seen.size(), std::size_t { 5 });
    EXPECT_THROW_MSG(ConfigError, GaussianNoise::fit(GaussianNoiseKind::Gaussians, src), "fromGaussians");
    EXPECT_THROW_MSG(ConfigError, GaussianNoise::fit(GaussianNoiseKind::Wishart, src, 0.5), "degrees");
}

void TestGaussianDataset::noiseJson()
{
    const GaussianDataset g = smallDataset(20, 3, 23);
    const GaussianNoise n = GaussianNoise::fit(GaussianNoiseKind::Wishart, g, 3.0);
    const GaussianNoise r = GaussianNoise::fromJsonString(n.toJsonString());
    QVERIFY(r.kind() == GaussianNoiseKind::Wishart);
    QCOMPARE(r.dof(), 3.0);
    QCOMPARE(r.covScale(), n.covScale());
    QVERIFY(torch::equal(r.meanCenter(), n.meanCenter()));
    torch::Generator g1 = at::detail::createCPUGenerator(2);
    torch::Generator g2 = at::detail::createCPUGenerator(2);
    QVERIFY(torch::equal(n.sample(4, {}, g1).second, r.sample(4, {}, g2).second));
    const GaussianNoise sn = GaussianNoise::fromJsonString(GaussianNoise::standardNormal(4).toJsonString());
    QVERIFY(sn.kind() == GaussianNoiseKind::StandardNormal);
    QCOMPARE(sn.dim(), std::int64_t { 4 });

    // Gaussians reload their spec when no sources are passed.
    GaussianDataset src = wfm::data::loadGaussians("builtin:gaussian-spiral?count=10");
    const GaussianNoise gs = GaussianNoise::fromGaussians(src, wfm::data::CloudPairing::Random);
    const GaussianNoise gr = GaussianNoise::fromJsonString(gs.toJsonString());
    QVERIFY(gr.kind() == GaussianNoiseKind::Gaussians);
    QVERIFY(torch::equal(gr.sources().means, src.means));
    const GaussianDataset other = smallDataset(3, 2, 1);
    EXPECT_THROW_MSG(ConfigError, GaussianNoise::fromJsonString(gs.toJsonString(), &other), "10");
    EXPECT_THROW_MSG(ConfigError, GaussianNoise::fromJsonString("{\"kind\":\"wishart\"}"), "JSON");
    EXPECT_THROW_MSG(ConfigError, GaussianNoise::fromJsonString("not json"), "JSON");
}

QTEST_GUILESS_MAIN(TestGaussianDataset)
#include "tst_gaussiandataset.moc"
