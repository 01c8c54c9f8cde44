#include "wfm/Error.h"
#include "wfm/data/BuiltinFamilies.h"
#include "wfm/data/CsvTable.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Niches.h"
#include "wfm/data/Npy.h"
#include "wfm/data/Tissue.h"

#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <set>

using namespace wfm::data;

namespace {

constexpr double kPcaTolerance = 2e-3;      // float32 scores vs numpy float64 SVD
constexpr double kRandomizedTolerance = 1e-2;

/// Brute-force k nearest neighbours within the section, sorted by (distance, index).
std::vector<std::vector<std::int64_t>> bruteForce(const torch::Tensor& pos, const torch::Tensor& sec,
    const std::vector<std::int64_t>& centers, int k, bool includeCenter)
{
    const torch::Tensor p = pos.to(torch::kDouble);
    const std::int64_t C = pos.size(0);
    std::vector<std::vector<std::int64_t>> out;
    for (const std::int64_t c : centers) {
        std::vector<std::pair<double, std::int64_t>> cand;
        const torch::Tensor d = (p - p[c]).pow(2).sum(1);
        for (std::int64_t j = 0; j < C; ++j) {
            if (j == c || (sec.defined() && sec[j].item<std::int64_t>() != sec[c].item<std::int64_t>())) {
                continue;
            }
            cand.emplace_back(d[j].item<double>(), j);
        }
        std::sort(cand.begin(), cand.end());
        std::vector<std::int64_t> row;
        if (includeCenter) {
            row.push_back(c);
        }
        for (std::size_t i = 0; i < cand.size() && static_cast<int>(row.size()) < k; ++i) {
            row.push_back(cand[i].second);
        }
        while (static_cast<int>(row.size()) < k) {
            row.push_back(-1);
        }
        out.push_back(row);
    }
    return out;
}

void writeText(const QString& path, const std::string& text)
{
    std::ofstream out(path.toStdString(), std::ios::binary);
    out << text;
}

} // namespace

class TestNiches : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void knnMatchesBruteForce_data();
    void knnMatchesBruteForce();
    void knnSmallSectionPads();
    void pcaMatchesNumpy();
    void randomizedPcaMatchesExact();
    void tissueIsDeterministic();
    void tissueHasStructure();
    void builtinTissueSpec();
    void nicheOptions();
    void csvParses();
    void csvHostile_data();
    void csvHostile();
    void csvScheme();
};

void TestNiches::knnMatchesBruteForce_data()
{
    QTest::addColumn<int>("cells");
    QTest::addColumn<int>("dim");
    QTest::addColumn<int>("sections");
    QTest::addColumn<int>("k");
    QTest::addColumn<bool>("includeCenter");
    QTest::newRow("2d one section") << 400 << 2 << 1 << 8 << false;
    QTest::newRow("2d three sections") << 600 << 2 << 3 << 12 << false;
    QTest::newRow("3d two sections, centre") << 500 << 3 << 2 << 6 << true;
    QTest::newRow("k=1") << 200 << 2 << 2 << 1 << false;
}

void TestNiches::knnMatchesBruteForce()
{
    QFETCH(int, cells);
    QFETCH(int, dim);
    QFETCH(int, sections);
    QFETCH(int, k);
    QFETCH(bool, includeCenter);
    torch::manual_seed(7);
    const torch::Tensor pos = torch::rand({ cells, dim }) * 100;
    const torch::Tensor sec = sections > 1 ? torch::randint(0, sections, { cells }, torch::kLong) : torch::Tensor();
    std::vector<std::int64_t> centers;
    for (int c = 0; c < cells; c += 3) {
        centers.push_back(c);
    }
    const torch::Tensor nb = spatialNeighbors(pos, sec, torch::tensor(centers), k, includeCenter);
    QCOMPARE(nb.size(0), static_cast<std::int64_t>(centers.size()));
    QCOMPARE(nb.size(1), static_cast<std::int64_t>(k));
    const auto ref = bruteForce(pos, sec, centers, k, includeCenter);
    for (std::size_t m = 0; m < centers.size(); ++m) {
        for (int j = 0; j < k; ++j) {
            QCOMPARE(nb[static_cast<std::int64_t>(m)][j].item<std::int64_t>(), ref[m][static_cast<std::size_t>(j)]);
        }
    }
}

void TestNiches::knnSmallSectionPads()
{
    // Section 1 holds three cells: with k = 5 and the centre excluded, two neighbours and padding.
    const torch::Tensor pos = torch::tensor({ 0.f, 0.f, 1.f, 0.f, 2.f, 0.f, 3.f, 0.f, 0.f, 1.f, 5.f, 5.f, 6.f, 5.f, 7.f, 5.f })
                                  .reshape({ 8, 2 });
    const torch::Tensor sec = torch::tensor({ 0, 0, 0, 0, 0, 1, 1, 1 }, torch::kLong);
    const torch::Tensor nb = spatialNeighbors(pos, sec, torch::tensor({ 5, 0 }, torch::kLong), 5, false);
    QCOMPARE(nb[0][0].item<std::int64_t>(), std::int64_t { 6 });
    QCOMPARE(nb[0][1].item<std::int64_t>(), std::int64_t { 7 });
    QCOMPARE(nb[0][2].item<std::int64_t>(), std::int64_t { -1 });
    QCOMPARE(nb[1][4].item<std::int64_t>(), std::int64_t { -1 }); // section 0 has 4 other cells
    // Niches from it: the centre of a one-cell section is dropped; sizes follow the padding.
    CellTable cells;
    cells.positions = pos;
    cells.sections = sec;
    cells.sectionNames = { "a", "b" };
    cells.representations["f"] = pos.clone();
    cells.cellTypes = torch::tensor({ 0, 1, 0, 1, 0, 1, 0, 1 }, torch::kLong);
    cells.typeNames = { "t0", "t1" };
    NicheOptions o;
    o.k = 5;
    o.rep = "f";
    const NicheSet set = buildNiches(cells, o, "test");
    QCOMPARE(set.data.count(), std::int64_t { 8 });
    QCOMPARE(set.data.sizes[5].item<std::int64_t>(), std::int64_t { 2 });
    QCOMPARE(set.data.sizes[0].item<std::int64_t>(), std::int64_t { 4 });
    QVERIFY(torch::equal(set.data.labels, cells.cellTypes));
    EXPECT_THROW_MSG(wfm::ConfigError, spatialNeighbors(pos, sec, torch::tensor({ 9 }, torch::kLong), 2, false),
        "out of range");
}

void TestNiches::pcaMatchesNumpy()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    torch::manual_seed(3);
    // Counts with structure: two groups of cells with different means.
    torch::Tensor rates = torch::rand({ 1, 40 }) * 3;
    rates = rates.repeat({ 300, 1 });
    rates.slice(0, 0, 150).slice(1, 0, 10).mul_(8);
    const torch::Tensor counts = torch::poisson(rates);
    writeNpy((dir.path() + "/counts.npy").toStdString(), counts);
    const QString script = QStringLiteral(R"(
import numpy as np
x = np.load('counts.npy').astype(np.float64)
tot = x.sum(1, keepdims=True)
x = np.log1p(np.where(tot > 0, x * 1e4 / np.where(tot > 0, tot, 1), 0))
xc = x - x.mean(0)
u, s, vt = np.linalg.svd(xc, full_matrices=False)
p = 6
v = vt[:p].T
sc = u[:, :p] * s[:p]
idx = np.abs(v).argmax(0)
sign = np.sign(v[idx, np.arange(p)])
np.save('scores.npy', (sc * sign).astype(np.float64))
np.save('var.npy', (s[:p] ** 2 / (x.shape[0] - 1)))
)");
    QString log;
    QCOMPARE(wfm::test::runPython(dir.path(), script, log), 0);
    const torch::Tensor ref = readNpy((dir.path() + "/scores.npy").toStdString()).to(torch::kFloat);
    const torch::Tensor refVar = readNpy((dir.path() + "/var.npy").toStdString());
    PcaOptions po;
    po.components = 6;
    const PcaResult r = pcaScores(normalizeLog1p(counts, "test"), po);
    QCOMPARE(r.scores.sizes(), ref.sizes());
    const double err = (r.scores - ref).abs().max().item<double>() / ref.abs().max().item<double>();
    QVERIFY2(err < kPcaTolerance, qPrintable(QString::number(err)));
    QVERIFY(torch::allclose(r.variance, refVar, 1e-4, 1e-6));
    // Loadings are orthonormal.
    const torch::Tensor gram = torch::matmul(r.loadings.t(), r.loadings);
    QVERIFY(torch::allclose(gram, torch::eye(6), 1e-4, 1e-4));
}

void TestNiches::randomizedPcaMatchesExact()
{
    torch::manual_seed(5);
    // Low-rank signal plus small noise: a decaying spectrum.
    const torch::Tensor x = torch::matmul(torch::randn({ 500, 5 }) * torch::tensor({ 10.f, 8.f, 6.f, 4.f, 3.f }),
                                torch::randn({ 5, 120 }))
        + 0.05 * torch::randn({ 500, 120 });
    PcaOptions exact;
    exact.components = 4;
    PcaOptions randomized = exact;
    randomized.exactMaxDim = 0;
    const PcaResult a = pcaScores(x, exact);
    const PcaResult b = pcaScores(x, randomized);
    const double err = (a.scores - b.scores).abs().max().item<double>() / a.scores.abs().max().item<double>();
    QVERIFY2(err < kRandomizedTolerance, qPrintable(QString::number(err)));
}

void TestNiches::tissueIsDeterministic()
{
    TissueOptions o;
    o.cells = 1500;
    o.seed = 11;
    const SimulatedTissue a = simulateTissue(o);
    const SimulatedTissue b = simulateTissue(o);
    QVERIFY(torch::equal(a.cells.positions, b.cells.positions));
    QVERIFY(torch::equal(a.cells.expression, b.cells.expression));
    QVERIFY(torch::equal(a.cells.cellTypes, b.cells.cellTypes));
    o.seed = 12;
    const SimulatedTissue c = simulateTissue(o);
    QVERIFY(!torch::equal(a.cells.expression, c.cells.expression));
    QCOMPARE(a.cells.expression.size(1), std::int64_t { 64 });
    QCOMPARE(a.cells.sectionNames.size(), std::size_t { 2 });
    QCOMPARE(a.cells.typeNames.size(), std::size_t { 8 });
    QVERIFY((a.cells.expression >= 0).all().item<bool>());
    QVERIFY(torch::equal(a.cells.expression, a.cells.expression.round()));
}

void TestNiches::tissueHasStructure()
{
    TissueOptions o;
    o.cells = 4000;
    const SimulatedTissue t = simulateTissue(o);
    const torch::Tensor types = t.cells.cellTypes;
    const torch::Tensor dom = t.domains;
    // Domain mixtures: endothelial cells concentrate in the vascular domain, L2 neurons in layer 1.
    auto fraction = [&](std::int64_t type, std::int64_t domain) {
        const torch::Tensor in = dom == domain;
        return (types.masked_select(in) == type).to(torch::kDouble).mean().item<double>();
    };
    QVERIFY(fraction(7, 4) > 0.3);
    QVERIFY(fraction(7, 0) < 0.15);
    QVERIFY(fraction(0, 0) > 0.35);
    QVERIFY(fraction(0, 3) < 0.1);
    // Marker programmes: type t's marker block is higher in type t than in the other cells.
    const torch::Tensor x = t.cells.expression;
    for (int type = 0; type < 8; ++type) {
        const torch::Tensor block = x.slice(1, type * 8, type * 8 + 8).sum(1);
        const double in = block.masked_select(types == type).mean().item<double>();
        const double out = block.masked_select(types != type).mean().item<double>();
        QVERIFY2(in > 2.5 * out, qPrintable(QStringLiteral("type %1: %2 vs %3").arg(type).arg(in).arg(out)));
    }
    // Niches are homotypic far beyond chance.
    NicheOptions no;
    no.k = 8;
    const NicheSet set = buildNiches(t.cells, no, "tissue");
    const torch::Tensor nbTypes = types.index_select(0, set.neighbors.reshape({ -1 })).reshape(set.neighbors.sizes());
    const double same = (nbTypes == set.data.labels.unsqueeze(1)).to(torch::kDouble).mean().item<double>();
    QVERIFY2(same > 0.4, qPrintable(QString::number(same)));
    // Positions stay within their section's square.
    QVERIFY((t.cells.positions >= 0).all().item<bool>() && (t.cells.positions <= 1000).all().item<bool>());
}

void TestNiches::builtinTissueSpec()
{
    const PointCloudDataset d = loadPointClouds("builtin:tissue?cells=1200&k=8&pcs=6&seed=2");
    QCOMPARE(d.count(), std::int64_t { 1200 });
    QCOMPARE(d.dim(), std::int64_t { 6 });
    QCOMPARE(d.maxPoints(), std::int64_t { 8 });
    QCOMPARE(d.labelNames, tissueTypeNames());
    const PointCloudDataset again = loadPointClouds("builtin:tissue?cells=1200&k=8&pcs=6&seed=2");
    QVERIFY(torch::equal(d.points, again.points));
    const auto names = builtinNames();
    QVERIFY(std::find(names.begin(), names.end(), "tissue") != names.end());
    const PointCloudDataset sub
        = loadPointClouds("builtin:tissue?cells=1200&k=4&pcs=4&centers=endothelial,microglia&max_centers=50");
    QCOMPARE(sub.count(), std::int64_t { 50 });
    QVERIFY(((sub.labels == 6) | (sub.labels == 7)).all().item<bool>());
    EXPECT_THROW_MSG(wfm::ConfigError, loadPointClouds("builtin:tissue?cells=1200&centers=neuron"),
        "unknown centre type 'neuron'", "endothelial");
    EXPECT_THROW_MSG(wfm::ConfigError, loadPointClouds("builtin:tissue?depth=3"), "unknown option 'depth'");
}

void TestNiches::nicheOptions()
{
    const NicheOptions o = parseNicheOptions(
        { { "k", "9" }, { "rep", "X_pca" }, { "pcs", "5" }, { "norm", "none" }, { "centers", "a,b" },
            { "include_center", "1" }, { "max_centers", "10" }, { "seed", "4" } },
        "t");
    QCOMPARE(o.k, 9);
    QCOMPARE(o.rep, std::string("X_pca"));
    QCOMPARE(o.pcs, 5);
    QVERIFY(o.norm == ExpressionNorm::None);
    QCOMPARE(o.centers, (std::vector<std::string> { "a", "b" }));
    QVERIFY(o.includeCenter);
    QCOMPARE(o.maxCenters, std::int64_t { 10 });
    QCOMPARE(o.seed, std::uint64_t { 4 });
    EXPECT_THROW_MSG(wfm::ConfigError, parseNicheOptions({ { "k", "0" } }, "t"), "k must be");
    EXPECT_THROW_MSG(wfm::ConfigError, parseNicheOptions({ { "norm", "zscore" } }, "t"), "norm");
    EXPECT_THROW_MSG(wfm::ConfigError, parseNicheOptions({ { "pcs", "x" } }, "t"), "pcs", "integer");
}

void TestNiches::csvParses()
{
    const std::string text = "\xEF\xBB\xBF# comment\n"
                             "id,\"name, full\",value\r\n"
                             "1,\"a \"\"quoted\"\" one\",2.5\r\n"
                             "\n"
                             "2,\"multi\nline\",NA\n"
                             "3, plain ,-1e3";
    const CsvTable t = CsvTable::parse(text, "mem.csv");
    QCOMPARE(t.columnCount(), std::size_t { 3 });
    QCOMPARE(t.rowCount(), std::size_t { 3 });
    QCOMPARE(t.columnNames()[1], std::string("name, full"));
    QCOMPARE(t.strings(1)[0], std::string("a \"quoted\" one"));
    QCOMPARE(t.strings(1)[1], std::string("multi\nline"));
    QCOMPARE(t.strings(1)[2], std::string("plain"));
    QVERIFY(t.isNumeric(2));
    QVERIFY(!t.isNumeric(1));
    const auto v = t.numbers(2);
    QCOMPARE(v[0], 2.5);
    QVERIFY(std::isnan(v[1]));
    QCOMPARE(v[2], -1000.0);
    QCOMPARE(t.lineOfRow(0), std::size_t { 3 });
    QCOMPARE(t.lineOfRow(1), std::size_t { 5 });
    QCOMPARE(t.lineOfRow(2), std::size_t { 7 });
    const CsvTable tabs = CsvTable::parse("a\tb\n1\t2\n", "mem.tsv");
    QCOMPARE(tabs.delimiter(), '\t');
    QCOMPARE(tabs.numbers(1)[0], 2.0);
    EXPECT_THROW_MSG(wfm::DatasetError, t.numbers(1), "mem.csv:3", "'name, full'", "not a number");
}

void TestNiches::csvHostile_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("expected");
    QTest::newRow("unterminated") << QByteArray("a,b\n1,\"open\n2,3\n") << "mem.csv:2: unterminated";
    QTest::newRow("after quote") << QByteArray("a,b\n1,\"x\"y\n") << "mem.csv:2: unexpected text after a closing quote";
    QTest::newRow("stray quote") << QByteArray("a,b\n1,x\"y\n") << "mem.csv:2: stray quote";
    QTest::newRow("too many") << QByteArray("a,b\n1,2\n1,2,3\n") << "mem.csv:3: expected 2 fields";
    QTest::newRow("too few") << QByteArray("a,b,c\n1,2\n") << "mem.csv:2: expected 3 fields";
    QTest::newRow("duplicate") << QByteArray("a,b,a\n1,2,3\n") << "duplicate column name 'a'";
    QTest::newRow("empty name") << QByteArray("a,,b\n1,2,3\n") << "header column 2 has an empty name";
    QTest::newRow("empty file") << QByteArray("\n# only a comment\n") << "empty file";
    QTest::newRow("nul") << QByteArray("a,b\n1,2\n3,\0\n", 12) << "mem.csv:3: NUL byte";
}

void TestNiches::csvHostile()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, expected);
    EXPECT_THROW_MSG(wfm::DatasetError,
        CsvTable::parse(std::string_view(text.constData(), static_cast<std::size_t>(text.size())), "mem.csv"),
        expected.toStdString());
}

void TestNiches::csvScheme()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    TissueOptions to;
    to.cells = 600;
    to.genes = 16;
    const SimulatedTissue t = simulateTissue(to);
    // Write the cells as CSV: id, x, y, slice, type, gene columns.
    std::string csv = "cell_id,x,y,slice,type";
    for (std::int64_t g = 0; g < 16; ++g) {
        csv += ",g" + std::to_string(g);
    }
    csv += "\n";
    const auto pos = t.cells.positions.accessor<float, 2>();
    const auto ex = t.cells.expression.accessor<float, 2>();
    for (std::int64_t c = 0; c < 600; ++c) {
        std::ostringstream row;
        row.precision(9);
        row << "c" << c << "," << pos[c][0] << "," << pos[c][1] << ",\"s" << t.cells.sections[c].item<std::int64_t>()
            << "\"," << t.cells.typeNames[static_cast<std::size_t>(t.cells.cellTypes[c].item<std::int64_t>())];
        for (std::int64_t g = 0; g < 16; ++g) {
            row << "," << ex[c][g];
        }
        csv += row.str() + "\n";
    }
    const QString path = dir.path() + "/cells.csv";
    writeText(path, csv);
    const PointCloudDataset d = loadPointClouds("csv:" + path.toStdString() + "?section=slice&label=type&k=6&pcs=4");
    QCOMPARE(d.count(), std::int64_t { 600 });
    QCOMPARE(d.dim(), std::int64_t { 4 });
    QCOMPARE(d.name, std::string("cells"));
    // Same niches as built from the cell table directly (type names sort differently: compare names).
    NicheOptions no;
    no.k = 6;
    no.pcs = 4;
    const NicheSet ref = buildNiches(t.cells, no, "ref");
    QVERIFY(torch::allclose(d.points.abs(), ref.data.points.abs(), 1e-3, 1e-3));
    for (std::int64_t i = 0; i < 600; i += 37) {
        QCOMPARE(d.labelNames[static_cast<std::size_t>(d.labels[i].item<std::int64_t>())],
            ref.data.labelNames[static_cast<std::size_t>(ref.data.labels[i].item<std::int64_t>())]);
    }
    // Explicit feature list and raw features.
    const PointCloudDataset raw
        = loadPointClouds("csv:" + path.toStdString() + "?section=slice&label=type&k=3&rep=raw&features=g0,g1");
    QCOMPARE(raw.dim(), std::int64_t { 2 });
    EXPECT_THROW_MSG(wfm::ConfigError, loadPointClouds("csv:" + path.toStdString() + "?label=kind"),
        "label=kind", "no such column", "cell_id, x, y");
    EXPECT_THROW_MSG(wfm::ConfigError, loadPointClouds("csv:" + path.toStdString() + "?radius=3"),
        "unknown option 'radius'");
    // A non-numeric coordinate names its line.
    writeText(dir.path() + "/bad.csv", "x,y,cell_type,g\n1,2,a,3\n1,oops,b,4\n");
    EXPECT_THROW_MSG(wfm::DatasetError, loadPointClouds("csv:" + (dir.path() + "/bad.csv").toStdString()),
        "bad.csv:3", "'y'", "not a number");
}

QTEST_GUILESS_MAIN(TestNiches)
#include "tst_niches.moc"
