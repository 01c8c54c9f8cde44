#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Npy.h"
#include "wfm/data/PointCloudDataset.h"

#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

using wfm::data::Batch;
using wfm::data::BatchSampler;
using wfm::data::DatasetSplit;
using wfm::data::Normalization;
using wfm::data::PointCloudDataset;

namespace {

using wfm::test::kPython;
using wfm::test::runPython;

constexpr double kFloatTol = 1e-5;     // float32 round-trip tolerance (relative to data scale)
constexpr double kSigmas = 5.0;        // statistical tolerance in standard deviations

/// K random clouds in d dimensions with sizes in [lo, hi] (fixed seed), labels k % L when L > 0.
PointCloudDataset randomDataset(int K, int d, int lo, int hi, int L, std::uint64_t seed)
{
    wfm::data::Rng rng(seed);
    std::vector<torch::Tensor> clouds;
    for (int k = 0; k < K; ++k) {
        const auto n = rng.between(lo, hi);
        torch::Tensor c = torch::empty({ n, d }, torch::kDouble);
        auto a = c.accessor<double, 2>();
        for (std::int64_t i = 0; i < n; ++i) {
            for (int j = 0; j < d; ++j) {
                a[i][j] = rng.normal() * (1.0 + j) + 3.0 * j - 1.0;
            }
        }
        clouds.push_back(c);
    }
    PointCloudDataset data = PointCloudDataset::fromClouds(clouds);
    if (L > 0) {
        std::vector<std::int64_t> labels(static_cast<std::size_t>(K));
        for (int k = 0; k < K; ++k) {
            labels[static_cast<std::size_t>(k)] = k % L;
        }
        data.labels = torch::tensor(labels, torch::kLong);
        for (int l = 0; l < L; ++l) {
            data.labelNames.push_back("class" + std::to_string(l));
        }
    }
    return data;
}

bool sameBatch(const Batch& a, const Batch& b)
{
    return torch::equal(a.points, b.points) && torch::equal(a.weights, b.weights)
        && torch::equal(a.indices, b.indices)
        && (a.labels.defined() == b.labels.defined()
            && (!a.labels.defined() || torch::equal(a.labels, b.labels)));
}

} // namespace

class TestPointCloudDataset : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void fromCloudsLayout();
    void fromPaddedCompactsAndNormalises();
    void fromPackedChecksSizes();
    void validateRejects_data();
    void validateRejects();
    void subsetPicksRowsAndTrims();
    void summaryCounts();

    void splitIsDeterministicPartition_data();
    void splitIsDeterministicPartition();
    void splitRejectsBadFraction();

    void normalizationRoundTrip_data();
    void normalizationRoundTrip();
    void globalMinMaxBox();
    void standardizeMoments();
    void perCloudUnitRadius();
    void normalizationJson();

    void samplerDeterministicAndResumable();
    void samplerDrawsUniformly();
    void samplerSubsamples();
    void samplerKeepsGivenWeights();

    void parseSpecs();
    void parseSpecErrors_data();
    void parseSpecErrors();
    void builtinSpecErrors();
    void npzRoundTrip_data();
    void npzRoundTrip();
    void npyLoads();
    void npzFromNumpy();
    void npzErrors();
    void registeredScheme();

private:
    std::string path(const char* name) const { return (m_dir.path() + "/" + name).toStdString(); }
    QTemporaryDir m_dir;
    QString m_pythonProblem;
};

void TestPointCloudDataset::initTestCase()
{
    QVERIFY(m_dir.isValid());
    torch::manual_seed(1234);
    if (!QFileInfo::exists(kPython)) {
        m_pythonProblem = kPython + " is missing (scripts/setup installs python3-numpy)";
        return;
    }
    QString log;
    if (runPython(m_dir.path(), QStringLiteral("import numpy\n"), log) != 0) {
        m_pythonProblem = kPython + " cannot import numpy: " + log.trimmed();
    }
}

void TestPointCloudDataset::fromCloudsLayout()
{
    const torch::Tensor a = torch::randn({ 3, 2 }, torch::kDouble);
    const torch::Tensor b = torch::randn({ 5, 2 });
    const PointCloudDataset d = PointCloudDataset::fromClouds({ a, b });
    QCOMPARE(d.count(), 2);
    QCOMPARE(d.dim(), 2);
    QCOMPARE(d.maxPoints(), 5);
    QCOMPARE(d.points.scalar_type(), torch::kFloat);
    QVERIFY(torch::equal(d.sizes, torch::tensor({ 3, 5 }, torch::kLong)));
    QVERIFY(torch::allclose(d.cloud(0), a.to(torch::kFloat)));
    QVERIFY(torch::equal(d.cloud(1), b));
    QVERIFY(torch::equal(d.points[0].narrow(0, 3, 2), torch::zeros({ 2, 2 })));
    const torch::Tensor w0 = torch::tensor({ 1.f / 3, 1.f / 3, 1.f / 3, 0.f, 0.f });
    QVERIFY(torch::allclose(d.weights[0], w0));
    QVERIFY(torch::allclose(d.weights[1], torch::full({ 5 }, 0.2f)));
    d.validate("fromClouds");
    EXPECT_THROW_MSG(wfm::ConfigError, PointCloudDataset::fromClouds({ a, torch::zeros({ 2, 3 }) }),
        "cloud 1", "dimension 3");
    EXPECT_THROW_MSG(wfm::ConfigError, PointCloudDataset::fromClouds({ torch::zeros({ 0, 2 }) }),
        "cloud 0 is empty");
}

void TestPointCloudDataset::fromPaddedCompactsAndNormalises()
{
    // Cloud 0: live slots 1 and 3 (weights 1 and 3); cloud 1: all three live (uniform 2s).
    const torch::Tensor p = torch::arange(2 * 4 * 2, torch::kFloat).reshape({ 2, 4, 2 }) + 1;
    const torch::Tensor w = torch::tensor({ { 0.f, 1.f, 0.f, 3.f }, { 2.f, 2.f, 2.f, 0.f } });
    const PointCloudDataset d = PointCloudDataset::fromPadded(p, w, "padded");
    QCOMPARE(d.maxPoints(), 3);
    QVERIFY(torch::equal(d.sizes, torch::tensor({ 2, 3 }, torch::kLong)));
    QVERIFY(torch::equal(d.cloud(0), torch::stack({ p[0][1], p[0][3] })));
    QVERIFY(torch::equal(d.points[0][2], torch::zeros({ 2 })));
    QVERIFY(torch::allclose(d.weights[0], torch::tensor({ 0.25f, 0.75f, 0.f })));
    QVERIFY(torch::allclose(d.weights[1], torch::full({ 3 }, 1.f / 3)));
    d.validate("padded");
    EXPECT_THROW_MSG(wfm::DatasetError,
        PointCloudDataset::fromPadded(p, torch::tensor({ { 0.f, 0.f, 0.f, 0.f }, { 1.f, 1.f, 1.f, 1.f } }), "F.npz"),
        "F.npz", "cloud 0");
    EXPECT_THROW_MSG(wfm::DatasetError,
        PointCloudDataset::fromPadded(p, torch::tensor({ { 1.f, -1.f, 0.f, 0.f }, { 1.f, 1.f, 1.f, 1.f } }), "F.npz"),
        "F.npz", "cloud 0", "weight 1");
}

void TestPointCloudDataset::fromPackedChecksSizes()
{
    const torch::Tensor p = torch::arange(12, torch::kFloat).reshape({ 6, 2 });
    const PointCloudDataset d
        = PointCloudDataset::fromPacked(p, torch::tensor({ 1, 3, 2 }, torch::kInt), "packed");
    QCOMPARE(d.count(), 3);
    QVERIFY(torch::equal(d.cloud(0), p.narrow(0, 0, 1)));
    QVERIFY(torch::equal(d.cloud(1), p.narrow(0, 1, 3)));
    QVERIFY(torch::equal(d.cloud(2), p.narrow(0, 4, 2)));
    d.validate("packed");
    EXPECT_THROW_MSG(wfm::DatasetError,
        PointCloudDataset::fromPacked(p, torch::tensor({ 1, 3, 3 }), "P.npz"), "P.npz", "add up to 7",
        "6 points");
    EXPECT_THROW_MSG(wfm::DatasetError,
        PointCloudDataset::fromPacked(p, torch::tensor({ 6, 0 }), "P.npz"), "P.npz", "cloud 1");
}

void TestPointCloudDataset::validateRejects_data()
{
    QTest::addColumn<QString>("corruption");
    QTest::addColumn<QString>("expected");
    QTest::newRow("nan") << "nan" << "cloud 2, point 1 has a non-finite";
    QTest::newRow("inf") << "inf" << "cloud 2, point 1 has a non-finite";
    QTest::newRow("empty") << "empty" << "cloud 1 is empty";
    QTest::newRow("label-high") << "label-high" << "cloud 3 has label 5";
    QTest::newRow("label-negative") << "label-negative" << "cloud 0 has label -1";
    QTest::newRow("no-names") << "no-names" << "without label names";
    QTest::newRow("padding-coordinate") << "padding-coordinate" << "non-zero padding coordinates";
    QTest::newRow("padding-weight") << "padding-weight" << "non-zero padding weights";
    QTest::newRow("weight-sum") << "weight-sum" << "summing to";
    QTest::newRow("size-too-big") << "size-too-big" << "padded size";
    QTest::newRow("labels-and-cond") << "labels-and-cond" << "both";
}

void TestPointCloudDataset::validateRejects()
{
    QFETCH(QString, corruption);
    QFETCH(QString, expected);
    // Sizes 4, 7, 10, 5, with cloud 0 the only one padded at slot 9.
    PointCloudDataset d = PointCloudDataset::fromClouds({ torch::randn({ 4, 3 }),
        torch::randn({ 7, 3 }), torch::randn({ 10, 3 }), torch::randn({ 5, 3 }) });
    d.labels = torch::tensor({ 0, 1, 2, 1 }, torch::kLong);
    d.labelNames = { "a", "b", "c" };
    d.validate("clean"); // the uncorrupted dataset passes
    const std::string c = corruption.toStdString();
    if (c == "nan") {
        d.points[2][1][0] = std::nanf("");
    } else if (c == "inf") {
        d.points[2][1][2] = INFINITY;
    } else if (c == "empty") {
        d.sizes[1] = 0;
        d.points[1].zero_();
        d.weights[1].zero_();
    } else if (c == "label-high") {
        d.labels[3] = 5;
    } else if (c == "label-negative") {
        d.labels[0] = -1;
    } else if (c == "no-names") {
        d.labelNames.clear();
    } else if (c == "padding-coordinate") {
        d.points[0][9][1] = 1.0f;
    } else if (c == "padding-weight") {
        d.weights[0][9] = 0.5f;
    } else if (c == "weight-sum") {
        d.weights[3][0] = 0.5f;
    } else if (c == "size-too-big") {
        d.sizes[2] = 11;
    } else if (c == "labels-and-cond") {
        d.cond = torch::zeros({ 4, 2 });
    }
    EXPECT_THROW_MSG(wfm::DatasetError, d.validate("my-data.npz"), "my-data.npz",
        expected.toStdString());
}

void TestPointCloudDataset::subsetPicksRowsAndTrims()
{
    const PointCloudDataset d = randomDataset(6, 2, 3, 12, 3, 7);
    const std::vector<std::int64_t> idx { 4, 1, 4 };
    const PointCloudDataset s = d.subset(idx);
    QCOMPARE(s.count(), 3);
    std::int64_t nmax = 0;
    for (std::size_t i = 0; i < idx.size(); ++i) {
        const auto k = static_cast<std::int64_t>(i);
        QVERIFY(torch::equal(s.cloud(k), d.cloud(idx[i])));
        QCOMPARE(s.labels[k].item<std::int64_t>(), d.labels[idx[i]].item<std::int64_t>());
        nmax = std::max(nmax, d.size(idx[i]));
    }
    QCOMPARE(s.maxPoints(), nmax);
    QCOMPARE(s.labelNames, d.labelNames);
    s.validate("subset");
    EXPECT_THROW_MSG(wfm::ConfigError, d.subset({ 0, 6 }), "index 6");
}

void TestPointCloudDataset::summaryCounts()
{
    const PointCloudDataset d = randomDataset(10, 3, 2, 9, 3, 11);
    const auto s = d.summary();
    QCOMPARE(s.count, 10);
    QCOMPARE(s.dim, 3);
    std::int64_t lo = 1 << 30;
    std::int64_t hi = 0;
    std::int64_t total = 0;
    for (std::int64_t k = 0; k < 10; ++k) {
        lo = std::min(lo, d.size(k));
        hi = std::max(hi, d.size(k));
        total += d.size(k);
    }
    QCOMPARE(s.minSize, lo);
    QCOMPARE(s.maxSize, hi);
    QCOMPARE(s.totalPoints, total);
    QCOMPARE(s.meanSize, total / 10.0);
    QCOMPARE(s.labelCounts, (std::vector<std::int64_t> { 4, 3, 3 })); // k % 3 for k < 10
    QCOMPARE(s.memoryBytes, 10 * hi * 3 * 4 + 10 * hi * 4 + 10 * 8 + 10 * 8);
    const std::string text = s.toText();
    QVERIFY2(text.find("class0 4") != std::string::npos, text.c_str());
    QVERIFY2(text.find("clouds: 10") != std::string::npos, text.c_str());
}

void TestPointCloudDataset::splitIsDeterministicPartition_data()
{
    QTest::addColumn<int>("labels");
    QTest::addColumn<double>("fraction");
    QTest::newRow("unlabelled-20%") << 0 << 0.2;
    QTest::newRow("labelled-20%") << 4 << 0.2;
    QTest::newRow("labelled-35%") << 3 << 0.35;
    QTest::newRow("labelled-0%") << 3 << 0.0;
}

void TestPointCloudDataset::splitIsDeterministicPartition()
{
    QFETCH(int, labels);
    QFETCH(double, fraction);
    // Unequal groups: labels k % L for 57 clouds, then relabel a block to skew them.
    PointCloudDataset d = randomDataset(57, 2, 2, 6, labels, 3);
    if (labels > 0) {
        d.labels.narrow(0, 0, 12).fill_(0);
    }
    const DatasetSplit a = d.split(fraction, 99);
    const DatasetSplit b = d.split(fraction, 99);
    QCOMPARE(a.trainIndices, b.trainIndices);
    QCOMPARE(a.testIndices, b.testIndices);
    // Partition of 0..K-1.
    std::vector<std::int64_t> all = a.trainIndices;
    all.insert(all.end(), a.testIndices.begin(), a.testIndices.end());
    std::sort(all.begin(), all.end());
    QCOMPARE(static_cast<std::int64_t>(all.size()), d.count());
    for (std::int64_t k = 0; k < d.count(); ++k) {
        QCOMPARE(all[static_cast<std::size_t>(k)], k);
    }
    QVERIFY(std::is_sorted(a.testIndices.begin(), a.testIndices.end()));
    // The parts hold the right clouds.
    for (std::size_t i = 0; i < a.testIndices.size(); ++i) {
        QVERIFY(torch::equal(a.test.cloud(static_cast<std::int64_t>(i)), d.cloud(a.testIndices[i])));
    }
    QCOMPARE(a.train.count() + a.test.count(), d.count());
    // Proportions: per label (stratified) or overall.
    if (labels > 0) {
        for (int l = 0; l < labels; ++l) {
            const auto nl = (d.labels == l).sum().item<std::int64_t>();
            const auto tl = a.test.count() == 0 ? 0 : (a.test.labels == l).sum().item<std::int64_t>();
            QCOMPARE(tl, static_cast<std::int64_t>(std::llround(fraction * nl)));
        }
    } else {
        QCOMPARE(a.test.count(), static_cast<std::int64_t>(std::llround(fraction * d.count())));
    }
    // Another seed gives another partition (when there is something to split).
    if (fraction > 0) {
        const DatasetSplit c = d.split(fraction, 100);
        QVERIFY(c.testIndices != a.testIndices);
    }
}

void TestPointCloudDataset::splitRejectsBadFraction()
{
    const PointCloudDataset d = randomDataset(5, 2, 2, 3, 0, 1);
    EXPECT_THROW_MSG(wfm::ConfigError, d.split(1.0, 0), "test fraction");
    EXPECT_THROW_MSG(wfm::ConfigError, d.split(-0.1, 0), "test fraction");
}

void TestPointCloudDataset::normalizationRoundTrip_data()
{
    QTest::addColumn<int>("kind");
    QTest::newRow("none") << static_cast<int>(Normalization::Kind::None);
    QTest::newRow("global_minmax") << static_cast<int>(Normalization::Kind::GlobalMinMax);
    QTest::newRow("standardize") << static_cast<int>(Normalization::Kind::Standardize);
}

void TestPointCloudDataset::normalizationRoundTrip()
{
    QFETCH(int, kind);
    const PointCloudDataset train = randomDataset(20, 3, 5, 30, 0, 21);
    const Normalization n = Normalization::fit(train, static_cast<Normalization::Kind>(kind));
    // Apply to other data with sentinel padding, which must come back untouched.
    PointCloudDataset other = randomDataset(8, 3, 4, 25, 0, 22);
    torch::Tensor pts = other.points.clone();
    const torch::Tensor pad = (other.weights == 0).unsqueeze(-1).expand_as(pts);
    pts.masked_fill_(pad, 7.25f);
    const torch::Tensor y = n.apply(pts, other.weights);
    QVERIFY(torch::equal(y.masked_select(pad), pts.masked_select(pad)));
    const torch::Tensor back = n.invert(y, other.weights);
    const double err = (back - pts).abs().max().item<double>();
    QVERIFY2(err <= kFloatTol * 10, qPrintable(QString::number(err)));
    QVERIFY(torch::equal(back.masked_select(pad), pts.masked_select(pad)));
    if (kind != static_cast<int>(Normalization::Kind::None)) {
        QVERIFY((y - pts).abs().max().item<double>() > 0.1); // it did something
    }
}

void TestPointCloudDataset::globalMinMaxBox()
{
    const PointCloudDataset train = randomDataset(30, 2, 5, 40, 0, 5);
    const Normalization n = Normalization::fit(train, Normalization::Kind::GlobalMinMax);
    const PointCloudDataset y = n.apply(train);
    const torch::Tensor live = train.weights > 0;
    const torch::Tensor x = train.points.to(torch::kDouble).index({ live });
    const torch::Tensor z = y.points.to(torch::kDouble).index({ live });
    QVERIFY(z.abs().max().item<double>() <= 1.0 + kFloatTol);
    // The longest axis of the raw box (axis 1: std 2 vs 1) touches both -1 and +1.
    const auto ext = (std::get<0>(x.max(0)) - std::get<0>(x.min(0)));
    const int longest = ext[1].item<double>() > ext[0].item<double>() ? 1 : 0;
    QVERIFY(std::abs(z.select(1, longest).max().item<double>() - 1.0) < kFloatTol);
    QVERIFY(std::abs(z.select(1, longest).min().item<double>() + 1.0) < kFloatTol);
    // Same scale on all axes: distances shrink by one factor.
    const double s = ext.max().item<double>() / 2.0;
    QVERIFY(std::abs(n.scale - s) < 1e-9 * s);
    const torch::Tensor dx = x[0] - x[17];
    const torch::Tensor dz = z[0] - z[17];
    QVERIFY(torch::allclose(dz * s, dx, 1e-5, 1e-5));
    // Padding stays zero.
    QVERIFY(torch::equal(y.points.masked_select((~live).unsqueeze(-1).expand_as(y.points)),
        torch::zeros({ (~live).sum().item<std::int64_t>() * 2 })));
}

void TestPointCloudDataset::standardizeMoments()
{
    const PointCloudDataset train = randomDataset(25, 3, 5, 40, 0, 8);
    const Normalization n = Normalization::fit(train, Normalization::Kind::Standardize);
    const torch::Tensor live = train.weights > 0;
    const torch::Tensor z = n.apply(train).points.to(torch::kDouble).index({ live });
    // Pooled over points (each once) and coordinates: mean 0 per axis, scalar variance 1.
    QVERIFY(z.mean(0).abs().max().item<double>() < 1e-5);
    QVERIFY(std::abs(z.pow(2).mean().item<double>() - 1.0) < 1e-5);
}

void TestPointCloudDataset::perCloudUnitRadius()
{
    PointCloudDataset d = randomDataset(6, 2, 3, 15, 0, 4);
    // Make cloud 2's weights non-uniform: the centre is the weighted mean.
    const std::int64_t n2 = d.size(2);
    torch::Tensor w2 = torch::arange(1, n2 + 1, torch::kFloat);
    d.weights[2].narrow(0, 0, n2).copy_(w2 / w2.sum());
    const Normalization n = Normalization::fit(d, Normalization::Kind::PerCloud);
    QVERIFY(n.center.empty());
    const torch::Tensor y = n.apply(d.points, d.weights);
    for (std::int64_t k = 0; k < d.count(); ++k) {
        const std::int64_t nk = d.size(k);
        const torch::Tensor c = y[k].narrow(0, 0, nk).to(torch::kDouble);
        const torch::Tensor w = d.weights[k].narrow(0, 0, nk).to(torch::kDouble);
        QVERIFY((c * w.unsqueeze(1)).sum(0).abs().max().item<double>() < kFloatTol);
        QVERIFY(std::abs(c.norm(2, { 1 }).max().item<double>() - 1.0) < kFloatTol);
        QVERIFY(torch::equal(y[k].narrow(0, nk, d.maxPoints() - nk),
            torch::zeros({ d.maxPoints() - nk, 2 })));
    }
    // invert() is the identity: outputs stay in normalised units.
    QVERIFY(torch::equal(n.invert(y, d.weights), y));
}

void TestPointCloudDataset::normalizationJson()
{
    const PointCloudDataset train = randomDataset(10, 3, 5, 20, 0, 9);
    for (const auto kind : { Normalization::Kind::None, Normalization::Kind::GlobalMinMax,
             Normalization::Kind::PerCloud, Normalization::Kind::Standardize }) {
        const Normalization n = Normalization::fit(train, kind);
        const Normalization m = Normalization::fromJsonString(n.toJsonString());
        QVERIFY(m.kind == n.kind);
        QCOMPARE(m.center, n.center); // exact: JSON keeps doubles to round-trip precision
        QCOMPARE(m.scale, n.scale);
        QVERIFY(torch::equal(m.apply(train.points, train.weights), n.apply(train.points, train.weights)));
    }
    QVERIFY(Normalization::parseKind("minmax") == Normalization::Kind::GlobalMinMax);
    EXPECT_THROW_MSG(wfm::ConfigError, Normalization::fromJsonString("{\"kind\": \"cubic\"}"),
        "cubic", "standardize");
    EXPECT_THROW_MSG(wfm::ConfigError, Normalization::fromJsonString("{not json"), "JSON");
    EXPECT_THROW_MSG(wfm::ConfigError,
        Normalization::fromJsonString("{\"kind\": \"standardize\", \"center\": [0], \"scale\": 0}"),
        "scale");
    const Normalization n = Normalization::fit(train, Normalization::Kind::Standardize);
    EXPECT_THROW_MSG(wfm::ConfigError, n.apply(torch::zeros({ 2, 4, 2 }), torch::ones({ 2, 4 })),
        "dimension 3");
}

void TestPointCloudDataset::samplerDeterministicAndResumable()
{
    const PointCloudDataset d = randomDataset(40, 2, 5, 60, 4, 13);
    BatchSampler s1(d, 8, 42, 16);
    BatchSampler s2(d, 8, 42, 16);
    std::vector<Batch> stream;
    for (int i = 0; i < 8; ++i) {
        stream.push_back(s1.next());
        QVERIFY(sameBatch(stream.back(), s2.next()));
    }
    QCOMPARE(s1.state(), std::uint64_t { 8 });
    // Different seeds give different streams.
    BatchSampler other(d, 8, 43, 16);
    QVERIFY(!torch::equal(other.next().indices, stream[0].indices));
    // Resume from a saved state in a fresh sampler.
    BatchSampler resumed(d, 8, 42, 16);
    resumed.setState(5);
    for (int i = 5; i < 8; ++i) {
        QVERIFY(sameBatch(resumed.next(), stream[static_cast<std::size_t>(i)]));
    }
    QVERIFY(sameBatch(s1.batchAt(3), stream[3]));
    // Labels follow the drawn rows.
    QVERIFY(torch::equal(stream[0].labels, d.labels.index_select(0, stream[0].indices)));
    EXPECT_THROW_MSG(wfm::ConfigError, BatchSampler(d, 0, 1), "batch size");
}

void TestPointCloudDataset::samplerDrawsUniformly()
{
    // K = 10 clouds, 4000 draws: each count ~ Binomial(4000, 0.1).
    const PointCloudDataset d = randomDataset(10, 2, 3, 5, 0, 2);
    BatchSampler s(d, 16, 7);
    std::vector<int> counts(10, 0);
    for (int i = 0; i < 250; ++i) {
        const Batch b = s.next();
        for (std::int64_t j = 0; j < 16; ++j) {
            ++counts[static_cast<std::size_t>(b.indices[j].item<std::int64_t>())];
        }
    }
    const double mean = 400.0;
    const double sd = std::sqrt(4000 * 0.1 * 0.9);
    for (int c : counts) {
        QVERIFY2(std::abs(c - mean) < kSigmas * sd, qPrintable(QString::number(c)));
    }
}

void TestPointCloudDataset::samplerSubsamples()
{
    const PointCloudDataset d = randomDataset(30, 3, 4, 50, 0, 17);
    constexpr int kSub = 20;
    BatchSampler s(d, 12, 5, kSub);
    std::int64_t sawSubsampled = 0;
    for (int it = 0; it < 10; ++it) {
        const Batch b = s.next();
        std::int64_t largest = 0;
        for (std::int64_t j = 0; j < 12; ++j) {
            const std::int64_t k = b.indices[j].item<std::int64_t>();
            const std::int64_t nk = d.size(k);
            const std::int64_t m = std::min<std::int64_t>(nk, kSub);
            largest = std::max(largest, m);
            const torch::Tensor w = b.weights[j];
            // Exactly m live slots first, uniform weights 1/m, zero padding.
            QCOMPARE((w > 0).sum().item<std::int64_t>(), m);
            QVERIFY(torch::allclose(w.narrow(0, 0, m), torch::full({ m }, 1.0f / m)));
            QVERIFY(torch::equal(b.points[j].narrow(0, m, b.points.size(1) - m),
                torch::zeros({ b.points.size(1) - m, 3 })));
            // Every live point is a distinct live point of cloud k (brute-force membership).
            const torch::Tensor src = d.cloud(k);
            std::set<std::int64_t> used;
            for (std::int64_t i = 0; i < m; ++i) {
                const torch::Tensor dist = (src - b.points[j][i]).abs().sum(1);
                const std::int64_t row = dist.argmin().item<std::int64_t>();
                QCOMPARE(dist[row].item<float>(), 0.0f);
                QVERIFY(used.insert(row).second);
            }
            sawSubsampled += nk > kSub ? 1 : 0;
        }
        QCOMPARE(b.points.size(1), largest); // trimmed to the largest live size
    }
    QVERIFY(sawSubsampled > 0);
}

void TestPointCloudDataset::samplerKeepsGivenWeights()
{
    // One cloud of 6 points with weights 1..6 (normalised); subsampling 3 renormalises the kept.
    const torch::Tensor p = torch::arange(12, torch::kFloat).reshape({ 1, 6, 2 });
    const torch::Tensor w = torch::arange(1, 7, torch::kFloat).reshape({ 1, 6 });
    const PointCloudDataset d = PointCloudDataset::fromPadded(p, w, "w");
    BatchSampler s(d, 4, 3, 3);
    for (int it = 0; it < 5; ++it) {
        const Batch b = s.next();
        for (std::int64_t j = 0; j < 4; ++j) {
            double total = 0.0;
            for (std::int64_t i = 0; i < 3; ++i) {
                total += b.points[j][i][0].item<float>() / 2.0 + 1.0; // original weight
            }
            for (std::int64_t i = 0; i < 3; ++i) {
                const double expected = (b.points[j][i][0].item<float>() / 2.0 + 1.0) / total;
                QVERIFY(std::abs(b.weights[j][i].item<float>() - expected) < 1e-6);
            }
        }
    }
}

void TestPointCloudDataset::parseSpecs()
{
    auto s = wfm::data::parseDataSpec("builtin:rings?count=50&seed=3");
    QCOMPARE(s.scheme, std::string("builtin"));
    QCOMPARE(s.path, std::string("rings"));
    QCOMPARE(s.options.size(), std::size_t { 2 });
    QCOMPARE(s.options.at("count"), std::string("50"));
    QCOMPARE(s.options.at("seed"), std::string("3"));
    s = wfm::data::parseDataSpec("npz:/data/a:b.npz");
    QCOMPARE(s.scheme, std::string("npz"));
    QCOMPARE(s.path, std::string("/data/a:b.npz"));
    QVERIFY(s.options.empty());
    s = wfm::data::parseDataSpec("/tmp/clouds.NPY");
    QCOMPARE(s.scheme, std::string("npy"));
    QCOMPARE(s.path, std::string("/tmp/clouds.NPY"));
    s = wfm::data::parseDataSpec("builtin:shapes3d");
    QCOMPARE(s.path, std::string("shapes3d"));
    QVERIFY(s.options.empty());
}

void TestPointCloudDataset::parseSpecErrors_data()
{
    QTest::addColumn<QString>("spec");
    QTest::addColumn<QString>("expected");
    QTest::newRow("empty") << "" << "empty";
    QTest::newRow("no-scheme") << "clouds.txt" << "no scheme";
    QTest::newRow("unknown-scheme") << "hdf:x.h5" << "unknown scheme 'hdf' (valid: builtin, csv, idx, npy, npz";
    QTest::newRow("empty-name") << "builtin:?count=1" << "empty dataset name";
    QTest::newRow("empty-path") << "npz:" << "empty path";
    QTest::newRow("no-equals") << "builtin:rings?count" << "not key=value";
    QTest::newRow("empty-key") << "builtin:rings?=3" << "empty key";
    QTest::newRow("empty-pair") << "builtin:rings?count=3&&seed=1" << "empty option";
    QTest::newRow("trailing-amp") << "builtin:rings?count=3&" << "empty option";
    QTest::newRow("repeated") << "builtin:rings?seed=1&seed=2" << "given twice";
}

void TestPointCloudDataset::parseSpecErrors()
{
    QFETCH(QString, spec);
    QFETCH(QString, expected);
    const std::string s = spec.toStdString();
    EXPECT_THROW_MSG(wfm::ConfigError, wfm::data::parseDataSpec(s), "'" + s + "'",
        expected.toStdString());
}

void TestPointCloudDataset::builtinSpecErrors()
{
    EXPECT_THROW_MSG(wfm::ConfigError, wfm::data::loadPointClouds("builtin:donuts"), "donuts",
        "rings", "shapes3d");
    EXPECT_THROW_MSG(wfm::ConfigError, wfm::data::loadPointClouds("builtin:rings?colour=red"),
        "colour", "count", "seed", "min", "max");
    EXPECT_THROW_MSG(wfm::ConfigError, wfm::data::loadPointClouds("builtin:rings?count=ten"),
        "count", "ten");
    EXPECT_THROW_MSG(wfm::ConfigError, wfm::data::loadPointClouds("builtin:rings?min=50&max=10"),
        "min");
    EXPECT_THROW_MSG(wfm::ConfigError, wfm::data::loadPointClouds("npz:x.npz?normalize=1"),
        "normalize", "no options");
    const PointCloudDataset d = wfm::data::loadPointClouds("builtin:rings?count=7&seed=2");
    QCOMPARE(d.count(), 7);
    QCOMPARE(d.source, std::string("builtin:rings?count=7&seed=2"));
    QCOMPARE(d.name, std::string("rings"));
}

void TestPointCloudDataset::npzRoundTrip_data()
{
    QTest::addColumn<bool>("packed");
    QTest::addColumn<bool>("withCond");
    QTest::newRow("padded+labels") << false << false;
    QTest::newRow("packed+labels") << true << false;
    QTest::newRow("padded+cond") << false << true;
    QTest::newRow("packed+cond") << true << true;
}

void TestPointCloudDataset::npzRoundTrip()
{
    if (!wfm::data::npzSupported()) {
        QFAIL("this build lacks libzip (.npz support), a required dependency");
    }
    QFETCH(bool, packed);
    QFETCH(bool, withCond);
    PointCloudDataset d = randomDataset(9, 3, 2, 17, 3, 31);
    d.labelNames = { "α-cell", "two words", "c" };
    if (withCond) {
        d.labels = torch::Tensor();
        d.labelNames.clear();
        d.cond = torch::randn({ 9, 4 });
    }
    const std::string file = path(packed ? "rt_packed.npz" : "rt_padded.npz");
    wfm::data::writePointCloudNpz(
        file, d, packed ? wfm::data::NpzLayout::Packed : wfm::data::NpzLayout::Padded);
    const PointCloudDataset r = wfm::data::loadPointClouds("npz:" + file);
    QVERIFY(torch::equal(r.points, d.points));
    QVERIFY(torch::allclose(r.weights, d.weights, 1e-6, 1e-7));
    QVERIFY(torch::equal(r.sizes, d.sizes));
    QCOMPARE(r.hasLabels(), !withCond);
    if (!withCond) {
        QVERIFY(torch::equal(r.labels, d.labels));
        QCOMPARE(r.labelNames, d.labelNames);
    } else {
        QVERIFY(torch::equal(r.cond, d.cond));
    }
    QCOMPARE(r.name, std::string(packed ? "rt_packed" : "rt_padded"));
    QCOMPARE(r.source, "npz:" + file);
    // Non-uniform weights: the padded layout keeps them; the packed one refuses.
    d.weights[0].narrow(0, 0, 2).copy_(torch::tensor({ 0.25f, 0.75f }));
    d.weights[0].narrow(0, 2, d.maxPoints() - 2).zero_();
    d.points[0].narrow(0, 2, d.maxPoints() - 2).zero_();
    d.sizes[0] = 2;
    if (packed) {
        EXPECT_THROW_MSG(wfm::ConfigError,
            wfm::data::writePointCloudNpz(file, d, wfm::data::NpzLayout::Packed), "uniform");
    } else {
        wfm::data::writePointCloudNpz(file, d);
        const PointCloudDataset r2 = wfm::data::loadPointClouds(file);
        QVERIFY(torch::equal(r2.sizes, d.sizes));
        QVERIFY(torch::allclose(r2.weights[0].narrow(0, 0, 2), torch::tensor({ 0.25f, 0.75f })));
        QVERIFY(torch::equal(r2.cloud(0), d.cloud(0)));
    }
}

void TestPointCloudDataset::npyLoads()
{
    const torch::Tensor a = torch::randn({ 4, 6, 2 }, torch::kDouble);
    const std::string file = path("clouds.npy");
    wfm::data::writeNpy(file, a);
    const PointCloudDataset d = wfm::data::loadPointClouds("npy:" + file);
    QCOMPARE(d.count(), 4);
    QVERIFY(torch::equal(d.points, a.to(torch::kFloat)));
    QVERIFY(torch::allclose(d.weights, torch::full({ 4, 6 }, 1.0f / 6)));
    QVERIFY(!d.hasLabels());
    wfm::data::writeNpy(path("flat.npy"), torch::randn({ 4, 6 }));
    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("flat.npy")), "flat.npy",
        "[K,N,d]");
    torch::Tensor bad = a.clone();
    bad[2][3][1] = NAN;
    wfm::data::writeNpy(path("nan.npy"), bad);
    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("nan.npy")), "nan.npy",
        "cloud 2, point 3");
    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("missing.npy")), "missing.npy");
}

void TestPointCloudDataset::npzFromNumpy()
{
    if (!m_pythonProblem.isEmpty()) {
        QFAIL(qPrintable(m_pythonProblem));
    }
    // Files as a numpy user writes them: unicode label names ('<U..'), an object array and a
    // string member we do not need, padding interleaved in the weights, int32 labels.
    const QString script = QStringLiteral(R"PY(
import numpy as np
pts = np.arange(2 * 4 * 2, dtype=np.float64).reshape(2, 4, 2)
w = np.array([[0, 1, 0, 1], [1, 1, 1, 0]], dtype=np.float32)
np.savez('unicode.npz', points=pts, weights=w, labels=np.array([1, 0], dtype=np.int32),
         label_names=np.array(['néant', 'gamma ray']),
         meta=np.array([{'a': 1}], dtype=object), comment=np.array('free text'))
np.savez_compressed('bytes.npz', points=np.arange(10, dtype=np.float32).reshape(5, 2),
         sizes=np.array([2, 3]), labels=np.array([0, 2]),
         label_names=np.frombuffer('x\ny\nz\n'.encode(), dtype=np.uint8))
np.savez('prefix.npz', points=np.ones((2, 3, 2)), sizes=np.array([3, 1]))
np.savez('badlabel.npz', points=np.ones((2, 3, 2)), labels=np.array([0, 3]),
         label_names=np.array(['a', 'b']))
np.savez('nopoints.npz', pts=np.ones((2, 3, 2)))
np.savez('strnames.npz', points=np.ones((2, 3, 2)), labels=np.array([0, 1]),
         label_names=np.array([1.5, 2.5]))
)PY");
    QString log;
    QVERIFY2(runPython(m_dir.path(), script, log) == 0, qPrintable(log));

    const PointCloudDataset u = wfm::data::loadPointClouds(path("unicode.npz"));
    QCOMPARE(u.count(), 2);
    QVERIFY(torch::equal(u.sizes, torch::tensor({ 2, 3 }, torch::kLong)));
    QVERIFY(torch::equal(u.cloud(0), torch::tensor({ { 2.f, 3.f }, { 6.f, 7.f } })));
    QCOMPARE(u.labelNames, (std::vector<std::string> { "néant", "gamma ray" }));
    QVERIFY(torch::equal(u.labels, torch::tensor({ 1, 0 }, torch::kLong)));

    const PointCloudDataset b = wfm::data::loadPointClouds("npz:" + path("bytes.npz"));
    QCOMPARE(b.labelNames, (std::vector<std::string> { "x", "y", "z" }));
    QVERIFY(torch::equal(b.cloud(1), torch::arange(4, 10, torch::kFloat).reshape({ 3, 2 })));

    const PointCloudDataset p = wfm::data::loadPointClouds(path("prefix.npz"));
    QVERIFY(torch::equal(p.sizes, torch::tensor({ 3, 1 }, torch::kLong)));
    QCOMPARE(p.labelNames.size(), std::size_t { 0 });

    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("badlabel.npz")),
        "badlabel.npz", "cloud 1 has label 3");
    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("nopoints.npz")),
        "nopoints.npz", "'points' is missing");
    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("strnames.npz")),
        "strnames.npz", "label names");
}

void TestPointCloudDataset::npzErrors()
{
    if (!wfm::data::npzSupported()) {
        QFAIL("this build lacks libzip (.npz support), a required dependency");
    }
    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("absent.npz")), "absent.npz");
    wfm::data::writeNpz(path("mismatch.npz"),
        { { "points", torch::ones({ 2, 3, 2 }) }, { "weights", torch::ones({ 2, 4 }) } });
    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("mismatch.npz")),
        "mismatch.npz", "'weights' must be [2,3]");
    wfm::data::writeNpz(path("packed_nosizes.npz"), { { "points", torch::ones({ 6, 2 }) } });
    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("packed_nosizes.npz")),
        "packed_nosizes.npz", "needs 'sizes'");
    wfm::data::writeNpz(path("floatlabels.npz"),
        { { "points", torch::ones({ 2, 3, 2 }) }, { "labels", torch::zeros({ 2 }) } });
    EXPECT_THROW_MSG(wfm::DatasetError, wfm::data::loadPointClouds(path("floatlabels.npz")),
        "floatlabels.npz", "'labels' must be an integer array");
}

void TestPointCloudDataset::registeredScheme()
{
    wfm::data::registerDataScheme(
        "toy",
        [](const wfm::data::DataSpec& spec) {
            const auto n = std::stoll(spec.options.at("n"));
            std::vector<torch::Tensor> clouds;
            for (std::int64_t k = 0; k < n; ++k) {
                clouds.push_back(torch::full({ k + 1, 2 }, static_cast<float>(k)));
            }
            return PointCloudDataset::fromClouds(clouds);
        },
        "toy:NAME?n=K test clouds");
    const PointCloudDataset d = wfm::data::loadPointClouds("toy:abc?n=3");
    QCOMPARE(d.count(), 3);
    QCOMPARE(d.source, std::string("toy:abc?n=3"));
    QCOMPARE(d.name, std::string("abc"));
    QVERIFY(wfm::data::dataSchemes().count("toy") == 1);
    EXPECT_THROW_MSG(wfm::ConfigError,
        wfm::data::registerDataScheme("npz", [](const wfm::data::DataSpec&) { return PointCloudDataset {}; }, ""),
        "reserved");
}

QTEST_GUILESS_MAIN(TestPointCloudDataset)
#include "tst_pointclouddataset.moc"
