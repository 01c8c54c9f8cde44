#include "wfm/Error.h"
#include "wfm/data/BuiltinFamilies.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Npy.h"
#include "wfm/data/PointCloudDataset.h"
#include "wfm/data/SourceNoise.h"

#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <cmath>
#include <functional>
#include <numbers>
#include <set>
#include <string>
#include <vector>

using wfm::data::CloudPairing;
using wfm::data::NoiseKind;
using wfm::data::PointCloudDataset;
using wfm::data::SourceNoise;

namespace {

using wfm::test::kPython;
using wfm::test::runPython;
constexpr double kSigmas = 5.0;      // statistical tolerance in standard errors
constexpr double kStatsTol = 1e-6;   // float32 Cholesky statistics
constexpr double kEps = 1e-6;        // the reference's diagonal floor and covariance jitter

/// Weights [B,n] with live prefixes of the given sizes (uniform).
torch::Tensor maskWeights(const std::vector<std::int64_t>& sizes, std::int64_t n)
{
    torch::Tensor w = torch::zeros({ static_cast<std::int64_t>(sizes.size()), n });
    for (std::size_t b = 0; b < sizes.size(); ++b) {
        w[static_cast<std::int64_t>(b)].narrow(0, 0, sizes[b]).fill_(1.0 / static_cast<double>(sizes[b]));
    }
    return w;
}

/// E|mu + sigma Z| for Z ~ N(0,1) (folded normal mean).
double foldedMean(double mu, double sigma)
{
    const double phi = 0.5 * std::erfc(mu / (sigma * std::sqrt(2.0))); // Phi(-mu/sigma)
    return sigma * std::sqrt(2.0 / std::numbers::pi) * std::exp(-mu * mu / (2 * sigma * sigma))
        + mu * (1.0 - 2.0 * phi);
}

} // namespace

class TestSourceNoise : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void cholStatsClosedForm();
    void matchesReferenceImplementation();
    void cholNormalSecondMomentsClosedForm();
    void cholNormalPerCloudCovariance();

    void masksAndDeterminism_data();
    void masksAndDeterminism();
    void standardNormalMoments();
    void uniformOnTrainingBox();
    void cloudsByIndex();
    void cloudsRandom();

    void jsonRoundTrip_data();
    void jsonRoundTrip();
    void cloudsJsonReloadsSpec();
    void errors();
    void fitsDefaultShapes3d();

private:
    std::string path(const char* name) const { return (m_dir.path() + "/" + name).toStdString(); }
    QTemporaryDir m_dir;
};

void TestSourceNoise::initTestCase()
{
    QVERIFY(m_dir.isValid());
    torch::manual_seed(77);
}

void TestSourceNoise::cholStatsClosedForm()
{
    // Clouds {+-a R e1, +-b R e2}: zero mean, covariance R diag(a^2/2, b^2/2) R^T exactly (uniform
    // weights 1/4, no padding). Cholesky of a 2x2 SPD matrix in closed form:
    // L11 = sqrt(S11), L21 = S21 / L11, L22 = sqrt(S22 - L21^2).
    const std::vector<std::array<double, 3>> params { { 1.0, 0.5, 0.0 }, { 2.0, 0.3, 0.7 },
        { 0.4, 1.2, -1.1 }, { 1.5, 1.5, 2.0 }, { 0.8, 0.2, 3.0 } };
    std::vector<torch::Tensor> clouds;
    std::vector<std::array<double, 3>> Ls;
    for (const auto& [a, b, th] : params) {
        const double c = std::cos(th);
        const double s = std::sin(th);
        torch::Tensor pts = torch::tensor({ a * c, a * s, -a * c, -a * s, -b * s, b * c, b * s, -b * c },
            torch::kDouble)
                                .reshape({ 4, 2 });
        clouds.push_back(pts);
        const double l1 = a * a / 2;
        const double l2 = b * b / 2;
        const double S11 = c * c * l1 + s * s * l2 + kEps;
        const double S21 = c * s * (l1 - l2);
        const double S22 = s * s * l1 + c * c * l2 + kEps;
        const double L11 = std::sqrt(S11);
        const double L21 = S21 / L11;
        Ls.push_back({ L11, L21, std::sqrt(S22 - L21 * L21) });
    }
    const PointCloudDataset d = PointCloudDataset::fromClouds(clouds);
    const SourceNoise n = SourceNoise::fit(NoiseKind::CholNormal, d);
    QVERIFY(n.kind() == NoiseKind::CholNormal);
    QCOMPARE(n.scale(), 2.0);
    const double K = static_cast<double>(params.size());
    std::array<double, 3> mean {};
    std::array<double, 3> var {};
    for (const auto& L : Ls) {
        for (int i = 0; i < 3; ++i) {
            mean[static_cast<std::size_t>(i)] += L[static_cast<std::size_t>(i)] / K;
        }
    }
    for (const auto& L : Ls) {
        for (std::size_t i = 0; i < 3; ++i) {
            var[i] += (L[i] - mean[i]) * (L[i] - mean[i]) / K; // population variance
        }
    }
    const torch::Tensor Lm = n.cholMean().to(torch::kDouble);
    const torch::Tensor Ls2 = n.cholStd().to(torch::kDouble);
    QVERIFY(std::abs(Lm[0][0].item<double>() - mean[0]) < kStatsTol);
    QVERIFY(std::abs(Lm[1][0].item<double>() - mean[1]) < kStatsTol);
    QVERIFY(std::abs(Lm[1][1].item<double>() - mean[2]) < kStatsTol);
    QCOMPARE(Lm[0][1].item<double>(), 0.0);
    QVERIFY(std::abs(Ls2[0][0].item<double>() - std::sqrt(var[0])) < kStatsTol);
    QVERIFY(std::abs(Ls2[1][0].item<double>() - std::sqrt(var[1])) < kStatsTol);
    QVERIFY(std::abs(Ls2[1][1].item<double>() - std::sqrt(var[2])) < kStatsTol);
    QCOMPARE(Ls2[0][1].item<double>(), 0.0);
}

void TestSourceNoise::matchesReferenceImplementation()
{
    // The reference recipe (chol_stats and sample_noise of peer_wfm_step.py, the PyTorch
    // re-implementation of the JAX reference), run by python on the same padded data with the
    // same seed. Debian's python3-torch and libtorch are the same build, so torch.Generator
    // streams agree and the noise must match to rounding, not just in distribution.
    if (!QFileInfo::exists(kPython)) {
        QFAIL("/usr/bin/python3 is missing (scripts/setup installs python3-torch and numpy)");
    }
    const PointCloudDataset d = wfm::data::makeBuiltin(
        "shapes3d", { { "count", "40" }, { "min", "30" }, { "max", "90" }, { "seed", "4" } });
    wfm::data::writeNpz(path("ref_in.npz"), { { "X", d.points }, { "W", d.weights } });
    constexpr std::uint64_t kSeed = 2024;
    constexpr std::int64_t kB = 6;
    const QString script = QStringLiteral(R"PY(
import numpy as np, torch
z = np.load('ref_in.npz')
X, W = torch.from_numpy(z['X']), torch.from_numpy(z['W'])

def chol_stats(X, W):
    X = X.double()
    sw = W.double().clamp(min=1e-6)
    sw = sw / sw.sum(1, keepdim=True)
    mean = (X * sw[..., None]).sum(1)
    Xc = X - mean[:, None, :]
    cov = torch.einsum("bij,bik,bi->bjk", Xc, Xc, sw)
    cov = 0.5 * (cov + cov.transpose(1, 2)) + 1e-6 * torch.eye(X.shape[-1], dtype=X.dtype)
    L = torch.linalg.cholesky(cov)
    return L.mean(0).float(), L.std(0, unbiased=False).float()

def sample_noise(B, N, d, kind, chol_mean, chol_std, gen, df_scale=2.0):
    if kind == "normal":
        return torch.randn(B, N, d, generator=gen)
    lower = torch.tril(torch.ones(d, d))
    L = chol_mean + torch.randn(B, d, d, generator=gen) * chol_std * lower
    idx = torch.arange(d)
    L[:, idx, idx] = L[:, idx, idx].abs() + 1e-6
    g = torch.randn(B, N, d, generator=gen)
    return torch.matmul(g, L.transpose(1, 2)) * df_scale

m, s = chol_stats(X, W)
gen = torch.Generator().manual_seed(%1)
noise = sample_noise(%2, X.shape[1], X.shape[2], "chol_normal", m, s, gen)
np.savez('ref_out.npz', mean=m.numpy(), std=s.numpy(), noise=noise.numpy(),
         version=np.frombuffer(torch.__version__.encode(), dtype=np.uint8))
)PY")
                               .arg(kSeed)
                               .arg(kB);
    QString log;
    QVERIFY2(runPython(m_dir.path(), script, log) == 0, qPrintable(log));
    const auto ref = wfm::data::readNpz(path("ref_out.npz"));
    const SourceNoise n = SourceNoise::fit(NoiseKind::CholNormal, d);
    QVERIFY(torch::allclose(n.cholMean(), ref.at("mean"), 1e-6, 1e-7));
    QVERIFY(torch::allclose(n.cholStd(), ref.at("std"), 1e-6, 1e-7));
    // Any mask: the reference draws every slot, we zero the padded ones.
    const torch::Tensor w = d.weights.narrow(0, 0, kB);
    const torch::Tensor x = n.sample(w, torch::arange(kB), kSeed);
    const torch::Tensor live = (w > 0).unsqueeze(-1).expand_as(x);
    const torch::Tensor refNoise = ref.at("noise");
    const torch::Tensor v = ref.at("version").contiguous();
    const std::string version(reinterpret_cast<const char*>(v.data_ptr()), static_cast<std::size_t>(v.numel()));
    const double err = (x - refNoise).masked_select(live).abs().max().item<double>();
    QVERIFY2(err < 1e-5,
        qPrintable(QString("max |C++ - python| = %1 (python torch %2, libtorch %3)")
                       .arg(err)
                       .arg(QString::fromStdString(version))
                       .arg(TORCH_VERSION)));
    QCOMPARE(x.masked_select(~live).abs().max().item<double>(), 0.0);
    qInfo("chol_normal vs the python reference: max |difference| %.3g (python torch %s)", err,
        version.c_str());
}

void TestSourceNoise::cholNormalSecondMomentsClosedForm()
{
    // L = [[a, 0], [b, c]] with a = |0.8 + 0.1 Z1| + eps, b = 0.3 + 0.2 Z2, c = |0.5 + 0.05 Z3| + eps
    // (Lbar[0][0] negative: the diagonal's absolute value is what counts).
    // E[x x^T] = scale^2 E[L L^T] = scale^2 [[E a^2, E a E b], [., E b^2 + E c^2]].
    const torch::Tensor Lbar = torch::tensor({ { -0.8f, 0.f }, { 0.3f, 0.5f } });
    const torch::Tensor S = torch::tensor({ { 0.1f, 0.f }, { 0.2f, 0.05f } });
    const double scale = 2.0;
    const SourceNoise n = SourceNoise::cholNormal(Lbar, S, scale);
    const double Ea = foldedMean(-0.8f, 0.1f) + kEps;
    const double Ec = foldedMean(0.5f, 0.05f) + kEps;
    const double Ea2 = 0.8f * 0.8f + 0.1f * 0.1f + 2 * kEps * (Ea - kEps) + kEps * kEps;
    const double Ec2 = 0.5f * 0.5f + 0.05f * 0.05f + 2 * kEps * (Ec - kEps) + kEps * kEps;
    const double Eb = 0.3f;
    const double Eb2 = 0.3f * 0.3f + 0.2f * 0.2f;
    const double expected[3] = { scale * scale * Ea2, scale * scale * Ea * Eb,
        scale * scale * (Eb2 + Ec2) };

    constexpr std::int64_t kB = 4000;
    constexpr std::int64_t kN = 64;
    const torch::Tensor x = n.sample(torch::full({ kB, kN }, 1.0f / kN), torch::Tensor(), 99)
                                .to(torch::kDouble);
    // Per-cloud second moments, then their mean and standard error over clouds.
    const torch::Tensor m = torch::einsum("bni,bnj->bij", { x, x }) / kN; // [B,2,2]
    const torch::Tensor entries = torch::stack({ m.select(1, 0).select(1, 0),
                                                   m.select(1, 1).select(1, 0),
                                                   m.select(1, 1).select(1, 1) },
        1); // [B,3]
    const torch::Tensor avg = entries.mean(0);
    const torch::Tensor se = entries.std(0) / std::sqrt(static_cast<double>(kB));
    for (int i = 0; i < 3; ++i) {
        const double got = avg[i].item<double>();
        const double tol = kSigmas * se[i].item<double>();
        QVERIFY2(std::abs(got - expected[i]) < tol,
            qPrintable(QString("entry %1: %2 vs %3 (tol %4)").arg(i).arg(got).arg(expected[i]).arg(tol)));
    }
    // Zero mean.
    const torch::Tensor cm = x.mean(1); // [B,2]
    const torch::Tensor mse = cm.std(0) / std::sqrt(static_cast<double>(kB));
    QVERIFY((cm.mean(0).abs() < kSigmas * mse).all().item<bool>());
}

void TestSourceNoise::cholNormalPerCloudCovariance()
{
    // With S = 0 every cloud has covariance scale^2 L L^T with L = Lbar, diagonal made positive.
    const torch::Tensor Lbar = torch::tensor({ { 0.7f, 0.f, 0.f }, { -0.4f, -0.5f, 0.f }, { 0.2f, 0.1f, 0.3f } });
    const SourceNoise n = SourceNoise::cholNormal(Lbar, torch::zeros({ 3, 3 }), 1.5);
    torch::Tensor L = Lbar.to(torch::kDouble).clone();
    L.diagonal().copy_(L.diagonal().abs() + kEps);
    const torch::Tensor cov = 1.5 * 1.5 * L.mm(L.t());
    constexpr std::int64_t kN = 40000;
    const torch::Tensor x = n.sample(torch::full({ 2, kN }, 1.0f / kN), torch::Tensor(), 5).to(torch::kDouble);
    for (std::int64_t b = 0; b < 2; ++b) {
        const torch::Tensor emp = x[b].t().mm(x[b]) / kN;
        // Entry-wise standard error of a Gaussian second moment: sqrt((S_ii S_jj + S_ij^2) / n).
        const torch::Tensor se
            = ((cov.diagonal().unsqueeze(1) * cov.diagonal().unsqueeze(0) + cov * cov) / kN).sqrt();
        QVERIFY2(((emp - cov).abs() < kSigmas * se).all().item<bool>(),
            qPrintable(QString("cloud %1").arg(b)));
    }
}

void TestSourceNoise::masksAndDeterminism_data()
{
    QTest::addColumn<int>("kind");
    QTest::newRow("chol_normal") << static_cast<int>(NoiseKind::CholNormal);
    QTest::newRow("standard_normal") << static_cast<int>(NoiseKind::StandardNormal);
    QTest::newRow("uniform") << static_cast<int>(NoiseKind::Uniform);
    QTest::newRow("clouds") << static_cast<int>(NoiseKind::Clouds);
}

void TestSourceNoise::masksAndDeterminism()
{
    QFETCH(int, kind);
    const PointCloudDataset train
        = wfm::data::makeBuiltin("rings", { { "count", "30" }, { "max", "100" }, { "seed", "1" } });
    const SourceNoise n = static_cast<NoiseKind>(kind) == NoiseKind::Clouds
        ? SourceNoise::fromClouds(train, CloudPairing::Random)
        : SourceNoise::fit(static_cast<NoiseKind>(kind), train);
    QCOMPARE(n.dim(), 2);
    // Live slots anywhere in the row (not only a prefix).
    torch::Tensor w = maskWeights({ 5, 17, 1, 12 }, 17);
    w[3][0] = 0.0f;
    w[3][15] = 0.1f;
    const torch::Tensor idx = torch::tensor({ 0, 3, 7, 29 }, torch::kLong);
    const torch::Tensor a = n.sample(w, idx, 11);
    QCOMPARE(a.sizes(), (torch::IntArrayRef { 4, 17, 2 }));
    QCOMPARE(a.scalar_type(), torch::kFloat);
    const torch::Tensor live = (w > 0).unsqueeze(-1).expand_as(a);
    QCOMPARE(a.masked_select(~live).abs().max().item<double>(), 0.0);
    QVERIFY((a.masked_select(live) != 0).all().item<bool>());
    // Same seed, same noise; the generator overload agrees with the seed overload.
    QVERIFY(torch::equal(a, n.sample(w, idx, 11)));
    torch::Generator gen = at::detail::createCPUGenerator(11);
    QVERIFY(torch::equal(a, n.sample(w, idx, gen)));
    // The generator advances: the next draw differs; another seed differs.
    QVERIFY(!torch::equal(a, n.sample(w, idx, gen)));
    QVERIFY(!torch::equal(a, n.sample(w, idx, 12)));
}

void TestSourceNoise::standardNormalMoments()
{
    const SourceNoise n = SourceNoise::standardNormal(3);
    constexpr std::int64_t kB = 50;
    constexpr std::int64_t kN = 2000;
    const torch::Tensor x = n.sample(torch::ones({ kB, kN }), torch::Tensor(), 3).to(torch::kDouble).reshape({ -1, 3 });
    const double count = static_cast<double>(x.size(0));
    QVERIFY((x.mean(0).abs() < kSigmas / std::sqrt(count)).all().item<bool>());
    const torch::Tensor cov = x.t().mm(x) / count;
    QVERIFY(((cov - torch::eye(3, torch::kDouble)).abs() < kSigmas * std::sqrt(2.0 / count)).all().item<bool>());
}

void TestSourceNoise::uniformOnTrainingBox()
{
    const PointCloudDataset train
        = wfm::data::makeBuiltin("rings", { { "count", "25" }, { "max", "80" } });
    // Brute-force box of the live points.
    double lo[2] = { 1e9, 1e9 };
    double hi[2] = { -1e9, -1e9 };
    for (std::int64_t k = 0; k < train.count(); ++k) {
        const torch::Tensor c = train.cloud(k);
        for (int j = 0; j < 2; ++j) {
            lo[j] = std::min(lo[j], c.select(1, j).min().item<double>());
            hi[j] = std::max(hi[j], c.select(1, j).max().item<double>());
        }
    }
    const SourceNoise n = SourceNoise::fit(NoiseKind::Uniform, train);
    for (int j = 0; j < 2; ++j) {
        QCOMPARE(n.lower()[j].item<double>(), lo[j]);
        QCOMPARE(n.upper()[j].item<double>(), hi[j]);
    }
    constexpr std::int64_t kCount = 40000;
    const torch::Tensor x = n.sample(torch::ones({ 4, kCount / 4 }), torch::Tensor(), 8).reshape({ -1, 2 });
    for (int j = 0; j < 2; ++j) {
        const torch::Tensor c = x.select(1, j).to(torch::kDouble);
        QVERIFY(c.min().item<double>() >= lo[j] - 1e-6 && c.max().item<double>() <= hi[j] + 1e-6);
        // Each quarter of the range holds a quarter of the points.
        const double q = (c < lo[j] + 0.25 * (hi[j] - lo[j])).sum().item<double>();
        const double sd = std::sqrt(kCount * 0.25 * 0.75);
        QVERIFY2(std::abs(q - kCount * 0.25) < kSigmas * sd, qPrintable(QString::number(q)));
    }
}

void TestSourceNoise::cloudsByIndex()
{
    const PointCloudDataset src = wfm::data::makeBuiltin(
        "rings", { { "count", "8" }, { "min", "10" }, { "max", "30" }, { "seed", "3" } });
    const SourceNoise n = SourceNoise::fromClouds(src, CloudPairing::ByIndex);
    // Targets with 12 and 40 live slots: fewer and more than any source cloud sizes.
    const torch::Tensor idx = torch::tensor({ 2, 5, 2 }, torch::kLong);
    const torch::Tensor w = maskWeights({ 8, 40, 31 }, 40);
    const torch::Tensor x = n.sample(w, idx, 4);
    for (std::int64_t b = 0; b < 3; ++b) {
        const std::int64_t k = idx[b].item<std::int64_t>();
        const torch::Tensor cloud = src.cloud(k);
        const std::int64_t m = cloud.size(0);
        const std::int64_t live = (w[b] > 0).sum().item<std::int64_t>();
        std::set<std::int64_t> rows;
        std::vector<int> uses(static_cast<std::size_t>(m), 0);
        for (std::int64_t i = 0; i < live; ++i) {
            const torch::Tensor dist = (cloud - x[b][i]).abs().sum(1);
            const std::int64_t r = dist.argmin().item<std::int64_t>();
            QCOMPARE(dist[r].item<float>(), 0.0f); // a point of the paired source cloud
            rows.insert(r);
            ++uses[static_cast<std::size_t>(r)];
        }
        if (m >= live) {
            QCOMPARE(static_cast<std::int64_t>(rows.size()), live); // without replacement
        } else {
            QCOMPARE(static_cast<std::int64_t>(rows.size()), m); // every source point used
        }
    }
    EXPECT_THROW_MSG(wfm::ConfigError, n.sample(w, torch::tensor({ 0, 8, 1 }), 1), "out of range");
    EXPECT_THROW_MSG(wfm::ConfigError, n.sample(w, torch::Tensor(), 1), "indices");
}

void TestSourceNoise::cloudsRandom()
{
    // Source clouds that are constant (cloud k = all points at (k, -k)): each batch entry must
    // come from a single cloud, and the clouds are drawn uniformly.
    std::vector<torch::Tensor> clouds;
    for (int k = 0; k < 5; ++k) {
        clouds.push_back(torch::tensor({ static_cast<float>(k), static_cast<float>(-k) }).repeat({ 3 + k, 1 }));
    }
    const SourceNoise n = SourceNoise::fromClouds(PointCloudDataset::fromClouds(clouds), CloudPairing::Random);
    constexpr std::int64_t kB = 2000;
    const torch::Tensor x = n.sample(torch::full({ kB, 4 }, 0.25f), torch::Tensor(), 21);
    std::vector<double> counts(5, 0.0);
    for (std::int64_t b = 0; b < kB; ++b) {
        const float k = x[b][0][0].item<float>();
        QVERIFY(torch::equal(x[b].select(1, 0), torch::full({ 4 }, k)));
        QVERIFY(torch::equal(x[b].select(1, 1), torch::full({ 4 }, -k)));
        counts[static_cast<std::size_t>(k)] += 1;
    }
    const double sd = std::sqrt(kB * 0.2 * 0.8);
    for (const double c : counts) {
        QVERIFY2(std::abs(c - kB * 0.2) < kSigmas * sd, qPrintable(QString::number(c)));
    }
}

void TestSourceNoise::jsonRoundTrip_data()
{
    masksAndDeterminism_data();
}

void TestSourceNoise::jsonRoundTrip()
{
    QFETCH(int, kind);
    const PointCloudDataset train
        = wfm::data::makeBuiltin("shapes3d", { { "count", "12" }, { "max", "300" } });
    const bool clouds = static_cast<NoiseKind>(kind) == NoiseKind::Clouds;
    const SourceNoise n = clouds ? SourceNoise::fromClouds(train, CloudPairing::ByIndex)
                                 : SourceNoise::fit(static_cast<NoiseKind>(kind), train);
    const std::string text = n.toJsonString();
    const SourceNoise r = SourceNoise::fromJsonString(text, clouds ? &train : nullptr);
    QVERIFY(r.kind() == n.kind());
    QCOMPARE(r.dim(), n.dim());
    const torch::Tensor w = train.weights.narrow(0, 0, 5);
    const torch::Tensor idx = torch::arange(5);
    // Bitwise-identical noise after the round trip (float32 parameters survive JSON exactly).
    QVERIFY(torch::equal(n.sample(w, idx, 31), r.sample(w, idx, 31)));
    QCOMPARE(r.toJsonString(), text);
}

void TestSourceNoise::cloudsJsonReloadsSpec()
{
    const PointCloudDataset src = wfm::data::loadPointClouds("builtin:rings?count=6&seed=8");
    const SourceNoise n = SourceNoise::fromClouds(src, CloudPairing::Random);
    const SourceNoise r = SourceNoise::fromJsonString(n.toJsonString()); // reloads the spec
    QCOMPARE(r.sources().source, std::string("builtin:rings?count=6&seed=8"));
    QVERIFY(r.pairing() == CloudPairing::Random);
    const torch::Tensor w = maskWeights({ 9, 4 }, 9);
    QVERIFY(torch::equal(n.sample(w, torch::Tensor(), 3), r.sample(w, torch::Tensor(), 3)));
    // A source dataset of another size is refused.
    const PointCloudDataset other = wfm::data::loadPointClouds("builtin:rings?count=5");
    EXPECT_THROW_MSG(wfm::ConfigError, SourceNoise::fromJsonString(n.toJsonString(), &other), "6");
}

void TestSourceNoise::errors()
{
    const PointCloudDataset train = wfm::data::makeBuiltin("rings", { { "count", "5" } });
    EXPECT_THROW_MSG(wfm::ConfigError, SourceNoise::fit(NoiseKind::Clouds, train), "fromClouds");
    EXPECT_THROW_MSG(wfm::ConfigError, SourceNoise::fit(NoiseKind::CholNormal, train, 0.0), "scale");
    EXPECT_THROW_MSG(wfm::ConfigError, SourceNoise::fromJsonString("{\"kind\": \"pink\", \"dim\": 2}"),
        "pink", "chol_normal");
    EXPECT_THROW_MSG(wfm::ConfigError, SourceNoise::fromJsonString("[1, 2"), "JSON");
    EXPECT_THROW_MSG(wfm::ConfigError,
        SourceNoise::fromJsonString("{\"kind\": \"chol_normal\", \"dim\": 2, \"scale\": 2, "
                                    "\"chol_mean\": [[1, 0]], \"chol_std\": [[0, 0], [0, 0]]}"),
        "chol_mean");
    EXPECT_THROW_MSG(wfm::ConfigError, SourceNoise::standardNormal(2).sample(torch::ones({ 3 }), {}, 1),
        "[B,n]");
    QVERIFY(wfm::data::parseNoiseKind("normal") == NoiseKind::StandardNormal);
    for (const auto k : { NoiseKind::CholNormal, NoiseKind::StandardNormal, NoiseKind::Uniform, NoiseKind::Clouds }) {
        QVERIFY(wfm::data::parseNoiseKind(wfm::data::noiseKindName(k)) == k);
    }
}

void TestSourceNoise::fitsDefaultShapes3d()
{
    // The default 3-D family: 1200 clouds of up to 2048 points. The fit runs in chunks and the
    // statistics are those of rotated shapes: a mean factor with positive diagonal and a
    // non-zero spread.
    const PointCloudDataset d = wfm::data::loadPointClouds("builtin:shapes3d");
    const auto t0 = std::chrono::steady_clock::now();
    const SourceNoise n = SourceNoise::fit(NoiseKind::CholNormal, d);
    const auto t1 = std::chrono::steady_clock::now();
    const torch::Tensor x = n.sample(d.weights.narrow(0, 0, 16), torch::arange(16), 1);
    const auto t2 = std::chrono::steady_clock::now();
    QVERIFY((n.cholMean().diagonal() > 0).all().item<bool>());
    QVERIFY((n.cholStd().diagonal() > 0).all().item<bool>());
    QVERIFY(torch::isfinite(x).all().item<bool>());
    qInfo("chol_normal fit on builtin:shapes3d: %.3f s; sample 16 x %lld: %.4f s",
        std::chrono::duration<double>(t1 - t0).count(), static_cast<long long>(d.maxPoints()),
        std::chrono::duration<double>(t2 - t1).count());
}

QTEST_GUILESS_MAIN(TestSourceNoise)
#include "tst_sourcenoise.moc"
