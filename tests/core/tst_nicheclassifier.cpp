#include "wfm/Error.h"
#include "wfm/data/Tissue.h"
#include "wfm/metrics/NicheClassifier.h"

#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <cmath>

using namespace wfm;

namespace {

constexpr double kSummaryTolerance = 1e-5;

/// Niches of a small simulated tissue, split 75 / 25.
data::DatasetSplit tissueSplit()
{
    data::TissueOptions o;
    o.cells = 3000;
    o.k = 16;
    o.pcs = 8;
    o.seed = 1;
    return data::makeTissue(o).split(0.25, 7);
}

double majorityFraction(const data::PointCloudDataset& d)
{
    return torch::bincount(d.labels, {}, d.numLabels()).max().item<double>() / static_cast<double>(d.count());
}

} // namespace

class TestNicheClassifier : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { m_split = tissueSplit(); }
    void summaryIsPermutationInvariant();
    void accurateOnTissue();
    void chanceOnShuffledLabels();
    void generatedReport();
    void rejectsBadInput();

private:
    data::DatasetSplit m_split;
};

void TestNicheClassifier::summaryIsPermutationInvariant()
{
    // Two points (0,0) and (2,0) with weights 1/4, 3/4, plus padding.
    const torch::Tensor pts = torch::tensor({ 0.f, 0.f, 2.f, 0.f, 9.f, 9.f }).reshape({ 1, 3, 2 });
    const torch::Tensor w = torch::tensor({ 0.25f, 0.75f, 0.f }).reshape({ 1, 3 });
    const torch::Tensor s = metrics::nicheSummary(pts, w);
    QCOMPARE(s.size(1), std::int64_t { 2 + 3 + 1 });
    // mean (1.5, 0); cov xx = 0.25*2.25 + 0.75*0.25 = 0.75; xy = yy = 0; mpd = 2 * 2 * 0.25 * 0.75.
    const torch::Tensor expected = torch::tensor({ 1.5f, 0.f, 0.75f, 0.f, 0.f, 0.75f }).reshape({ 1, 6 });
    QVERIFY(torch::allclose(s, expected, kSummaryTolerance, kSummaryTolerance));
    torch::manual_seed(0);
    const torch::Tensor x = torch::randn({ 4, 10, 3 });
    const torch::Tensor wx = torch::rand({ 4, 10 }) + 0.1;
    const torch::Tensor perm = torch::randperm(10);
    const torch::Tensor a = metrics::nicheSummary(x, wx);
    const torch::Tensor b = metrics::nicheSummary(x.index_select(1, perm), wx.index_select(1, perm));
    QVERIFY(torch::allclose(a, b, kSummaryTolerance, kSummaryTolerance));
}

void TestNicheClassifier::accurateOnTissue()
{
    const data::DatasetSplit& split = m_split;
    const metrics::NicheClassifier clf = metrics::NicheClassifier::train(split.train);
    const double acc = clf.accuracy(split.test);
    const double chance = majorityFraction(split.test);
    qInfo("held-out accuracy %.3f (majority class %.3f, train %.3f)", acc, chance, clf.trainAccuracy());
    QVERIFY2(acc > 0.5 && acc > 2.0 * chance, qPrintable(QString::number(acc)));
    QCOMPARE(clf.labelNames(), data::tissueTypeNames());
    // Logistic regression also learns the structure.
    metrics::NicheClassifierOptions lin;
    lin.hidden = 0;
    const double linAcc = metrics::NicheClassifier::train(split.train, lin).accuracy(split.test);
    QVERIFY2(linAcc > 1.8 * chance, qPrintable(QString::number(linAcc)));
}

void TestNicheClassifier::chanceOnShuffledLabels()
{
    const data::DatasetSplit& split = m_split;
    torch::manual_seed(9);
    data::PointCloudDataset shuffled = split.train;
    shuffled.labels = split.train.labels.index_select(0, torch::randperm(split.train.count()));
    const metrics::NicheClassifier clf = metrics::NicheClassifier::train(shuffled);
    const double acc = clf.accuracy(split.test);
    const double chance = majorityFraction(split.test);
    qInfo("shuffled-label accuracy %.3f (majority class %.3f)", acc, chance);
    QVERIFY2(acc < chance + 0.08, qPrintable(QString::number(acc)));
}

void TestNicheClassifier::generatedReport()
{
    const data::DatasetSplit& split = m_split;
    const metrics::NicheClassifier clf = metrics::NicheClassifier::train(split.train);
    // "Generated" = real held-out niches with their true labels: both accuracies agree.
    const metrics::NicheAccuracyReport same = metrics::evaluateGeneratedNiches(
        clf, split.test, split.test.points, split.test.weights, split.test.labels);
    QCOMPARE(same.generatedAccuracy, same.realAccuracy);
    QCOMPARE(same.generatedCount, split.test.count());
    QVERIFY(same.toText().find("niche accuracy: real") != std::string::npos);
    // Requested labels that do not match the clouds: accuracy drops.
    const torch::Tensor wrong = (split.test.labels + 3).remainder(8);
    const metrics::NicheAccuracyReport bad
        = metrics::evaluateGeneratedNiches(clf, split.test, split.test.points, split.test.weights, wrong);
    QVERIFY(bad.generatedAccuracy < 0.5 * same.generatedAccuracy);
    QCOMPARE(bad.generatedPerLabel.size(), std::size_t { 8 });
}

void TestNicheClassifier::rejectsBadInput()
{
    const data::DatasetSplit& split = m_split;
    data::PointCloudDataset unlabeled = split.train;
    unlabeled.labels = torch::Tensor();
    EXPECT_THROW_MSG(ConfigError, metrics::NicheClassifier::train(unlabeled), "no labels");
    metrics::NicheClassifierOptions quick;
    quick.epochs = 5;
    const metrics::NicheClassifier clf = metrics::NicheClassifier::train(split.train, quick);
    EXPECT_THROW_MSG(ConfigError, clf.predict(torch::zeros({ 2, 4, 3 }), torch::ones({ 2, 4 })), "dimension 3");
    EXPECT_THROW_MSG(ConfigError,
        metrics::evaluateGeneratedNiches(clf, split.test, split.test.points, split.test.weights,
            torch::full({ split.test.count() }, 8, torch::kLong)),
        "requested labels");
}

QTEST_GUILESS_MAIN(TestNicheClassifier)
#include "tst_nicheclassifier.moc"
