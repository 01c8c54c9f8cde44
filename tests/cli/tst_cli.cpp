// The `wfm` command-line contract: JSON results against closed forms and brute force, and
// clear one-line errors with the right exit codes for bad input.

#include "TestSupport.h"

#include <QtTest>

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace {

struct Result
{
    int code = -1;
    QByteArray out;
    QByteArray err;
    QJsonObject json() const { return QJsonDocument::fromJson(out).object(); }
};

Result runWfm(const QStringList& args)
{
    QProcess p;
    p.start(QStringLiteral(WFM_CLI_PATH), args);
    if (!p.waitForFinished(120'000)) {
        p.kill();
        return {};
    }
    return { p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2, p.readAllStandardOutput(),
        p.readAllStandardError() };
}

/// Independent minimal .npy writer (format 1.0, little-endian float64 or float32, C order).
void writeNpy(const QString& path, const std::vector<double>& values, const std::vector<int>& shape,
    bool f32 = false)
{
    QString shapeStr = "(";
    for (size_t k = 0; k < shape.size(); ++k) {
        shapeStr += QString::number(shape[k]) + (shape.size() == 1 || k + 1 < shape.size() ? "," : "");
    }
    shapeStr += ")";
    QByteArray header = QString("{'descr': '%1', 'fortran_order': False, 'shape': %2, }")
                            .arg(f32 ? "<f4" : "<f8", shapeStr)
                            .toLatin1();
    while ((10 + header.size() + 1) % 64 != 0) {
        header += ' ';
    }
    header += '\n';
    QByteArray bytes("\x93NUMPY\x01\x00", 8);
    const quint16 len = static_cast<quint16>(header.size());
    bytes.append(static_cast<char>(len & 0xff));
    bytes.append(static_cast<char>(len >> 8));
    bytes += header;
    for (double v : values) {
        if (f32) {
            const float f = static_cast<float>(v);
            bytes.append(reinterpret_cast<const char*>(&f), sizeof f);
        } else {
            bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
        }
    }
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(bytes);
}

} // namespace

class TestCli : public QObject
{
    Q_OBJECT

    QTemporaryDir m_dir;
    QString path(const QString& name) const { return m_dir.filePath(name); }

private Q_SLOTS:
    void initTestCase() { QVERIFY(m_dir.isValid()); }

    void versionAndHelp()
    {
        auto v = runWfm({ "--version" });
        QCOMPARE(v.code, 0);
        QVERIFY(v.out.startsWith("wfm "));
        auto h = runWfm({ "help" });
        QCOMPARE(h.code, 0);
        QVERIFY(h.out.contains("ot") && h.out.contains("bures") && h.out.contains("bench"));
        auto ho = runWfm({ "help", "ot" });
        QCOMPARE(ho.code, 0);
        QVERIFY(ho.out.contains("--eps-mode"));
        auto hh = runWfm({ "ot", "--help" });
        QCOMPARE(hh.code, 0);
        QVERIFY(hh.out.contains("--source"));
    }

    // One point to one point: the cost is the squared distance, whatever eps.
    void otSinglePoints()
    {
        writeNpy(path("p.npy"), { 1.0, 2.0, 3.0 }, { 1, 3 });
        writeNpy(path("q.npy"), { -1.0, 0.0, 5.0 }, { 1, 3 });
        for (QString method : { "sinkhorn", "exact" }) {
            auto r = runWfm({ "ot", "--source", path("p.npy"), "--target", path("q.npy"), "--method", method });
            QCOMPARE(r.code, 0);
            const auto j = r.json();
            QVERIFY2(std::abs(j.value("cost").toDouble() - 12.0) < 1e-5, qPrintable(QString::number(j.value("cost").toDouble())));
            QVERIFY(j.contains("iterations") && j.contains("marginal_error") && j.contains("seconds"));
        }
    }

    // Exact OT between uniform 5-point clouds equals brute force over permutations; Sinkhorn
    // at small eps is close above it.
    void otExactMatchesBruteForce()
    {
        const std::vector<double> xs { 0, 0, 1, 0.2, 2, 1, 0.5, 3, -1, 1 };
        const std::vector<double> ys { 0.1, 1, 2, 2, -0.5, 0, 1, 1, 3, 0.3 };
        writeNpy(path("x.npy"), xs, { 5, 2 });
        writeNpy(path("y.npy"), ys, { 5, 2 }, true);
        std::vector<int> perm { 0, 1, 2, 3, 4 };
        double best = std::numeric_limits<double>::infinity();
        do {
            double c = 0;
            for (int i = 0; i < 5; ++i) {
                const int j = perm[static_cast<size_t>(i)];
                const double y0 = static_cast<float>(ys[2 * j]), y1 = static_cast<float>(ys[2 * j + 1]);
                c += std::pow(xs[2 * i] - y0, 2) + std::pow(xs[2 * i + 1] - y1, 2);
            }
            best = std::min(best, c / 5.0);
        } while (std::next_permutation(perm.begin(), perm.end()));
        auto e = runWfm({ "ot", "--source", path("x.npy"), "--target", path("y.npy"), "--method", "exact" });
        QCOMPARE(e.code, 0);
        // y is stored as float32 and read back exactly; the exact cost matches brute force.
        QVERIFY(std::abs(e.json().value("cost").toDouble() - best) < 1e-6 * best);
        auto s = runWfm({ "ot", "--source", path("x.npy"), "--target", path("y.npy"), "--eps", "0.001",
            "--iters", "2000", "--dtype", "float64" });
        QCOMPARE(s.code, 0);
        const double sc = s.json().value("cost").toDouble();
        QVERIFY2(sc >= best - 1e-6 && sc < best * 1.01, qPrintable(QString("%1 vs %2").arg(sc).arg(best)));
    }

    void otBatchedGivesLists()
    {
        std::vector<double> x(2 * 4 * 2), y(2 * 4 * 2);
        for (size_t k = 0; k < x.size(); ++k) {
            x[k] = std::sin(0.7 * static_cast<double>(k));
            y[k] = std::cos(0.3 * static_cast<double>(k)) + 0.5;
        }
        writeNpy(path("bx.npy"), x, { 2, 4, 2 });
        writeNpy(path("by.npy"), y, { 2, 4, 2 });
        writeNpy(path("bw.npy"), { 0.5, 0.5, 0, 0, 0.25, 0.25, 0.25, 0.25 }, { 2, 4 });
        auto r = runWfm({ "ot", "--source", path("bx.npy"), "--target", path("by.npy"),
            "--source-weights", path("bw.npy"), "--plan", path("plan.npy"), "--eps", "0.05", "--tol", "1e-4", "--iters", "5000" });
        QCOMPARE(r.code, 0);
        const auto j = r.json();
        QVERIFY(j.value("cost").isArray());
        QCOMPARE(j.value("cost").toArray().size(), 2);
        QVERIFY(j.value("iterations").toInt() < 5000);
        QVERIFY(QFile::exists(path("plan.npy")));
        // The plan file is [2,4,4] float32: header + 32 floats.
        QFile f(path("plan.npy"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray all = f.readAll();
        QVERIFY(all.contains("(2, 4, 4)"));
    }

    void badInput_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("mentions");
        QTest::newRow("missing file") << QStringList { "ot", "--source", "NOFILE.npy", "--target", "y.npy" } << 1 << "NOFILE.npy";
        QTest::newRow("dimension mismatch") << QStringList { "ot", "--source", "x.npy", "--target", "d3.npy" } << 1 << "dimension";
        QTest::newRow("nan") << QStringList { "ot", "--source", "nan.npy", "--target", "y.npy" } << 1 << "nan.npy";
        QTest::newRow("negative weights") << QStringList { "ot", "--source", "x.npy", "--target", "y.npy", "--source-weights", "neg.npy" } << 1 << "neg.npy";
        QTest::newRow("zero-sum weights") << QStringList { "ot", "--source", "x.npy", "--target", "y.npy", "--source-weights", "zero.npy" } << 1 << "zero.npy";
        QTest::newRow("wrong weight shape") << QStringList { "ot", "--source", "x.npy", "--target", "y.npy", "--source-weights", "w3.npy" } << 1 << "w3.npy";
        QTest::newRow("not npy") << QStringList { "ot", "--source", "junk.npy", "--target", "y.npy" } << 1 << "junk.npy";
        QTest::newRow("bad method") << QStringList { "ot", "--source", "x.npy", "--target", "y.npy", "--method", "magic" } << 2 << "method";
        QTest::newRow("unknown flag") << QStringList { "ot", "--source", "x.npy", "--target", "y.npy", "--frobnicate" } << 2 << "frobnicate";
        QTest::newRow("bad device") << QStringList { "ot", "--source", "x.npy", "--target", "y.npy", "--device", "tpu" } << 1 << "tpu";
        QTest::newRow("non-symmetric covariance") << QStringList { "bures", "--mean0", "m.npy", "--cov0", "nonsym.npy", "--mean1", "m.npy", "--cov1", "id.npy" } << 1 << "nonsym.npy";
        QTest::newRow("indefinite covariance") << QStringList { "bures", "--mean0", "m.npy", "--cov0", "id.npy", "--mean1", "m.npy", "--cov1", "indef.npy" } << 1 << "indef.npy";
        QTest::newRow("covariance shape") << QStringList { "bures", "--mean0", "m.npy", "--cov0", "d3id.npy", "--mean1", "m.npy", "--cov1", "id.npy" } << 1 << "d3id.npy";
    }
    void badInput()
    {
        QFETCH(QStringList, args);
        QFETCH(int, code);
        QFETCH(QString, mentions);
        writeNpy(path("x.npy"), { 0, 0, 1, 1, 2, 0 }, { 3, 2 });
        writeNpy(path("y.npy"), { 1, 0, 0, 1, 2, 2 }, { 3, 2 });
        writeNpy(path("d3.npy"), { 1, 0, 0, 0, 1, 2 }, { 2, 3 });
        writeNpy(path("nan.npy"), { 0, std::numeric_limits<double>::quiet_NaN(), 1, 1, 2, 0 }, { 3, 2 });
        writeNpy(path("neg.npy"), { 0.5, 0.7, -0.2 }, { 3 });
        writeNpy(path("zero.npy"), { 0, 0, 0 }, { 3 });
        writeNpy(path("w3.npy"), { 0.25, 0.25, 0.25, 0.25 }, { 4 });
        writeNpy(path("m.npy"), { 0, 0 }, { 2 });
        writeNpy(path("id.npy"), { 1, 0, 0, 1 }, { 2, 2 });
        writeNpy(path("nonsym.npy"), { 1, 0.5, 0, 1 }, { 2, 2 });
        writeNpy(path("indef.npy"), { 1, 2, 2, 1 }, { 2, 2 });
        writeNpy(path("d3id.npy"), { 1, 0, 0, 0, 1, 0, 0, 0, 1 }, { 3, 3 });
        QFile junk(path("junk.npy"));
        QVERIFY(junk.open(QIODevice::WriteOnly));
        junk.write("this is not a numpy file at all");
        junk.close();
        QStringList full;
        for (const auto& a : args) {
            full << (a.endsWith(".npy") && a != "NOFILE.npy" ? path(a) : a);
        }
        auto r = runWfm(full);
        QCOMPARE(r.code, code);
        QVERIFY2(QString::fromUtf8(r.err).contains(mentions, Qt::CaseInsensitive),
            qPrintable("stderr: " + QString::fromUtf8(r.err)));
        QVERIFY2(r.err.trimmed().count('\n') == 0, "error must be one line");
        QVERIFY(r.out.isEmpty());
    }

    // 1-D Gaussians: W2 = sqrt((m0 - m1)^2 + (s0 - s1)^2) and the geodesic midpoint.
    void buresClosedForm()
    {
        writeNpy(path("m0.npy"), { 1.0 }, { 1 });
        writeNpy(path("s0.npy"), { 4.0 }, { 1, 1 });
        writeNpy(path("m1.npy"), { -2.0 }, { 1 });
        writeNpy(path("s1.npy"), { 9.0 }, { 1, 1 });
        auto r = runWfm({ "bures", "--mean0", path("m0.npy"), "--cov0", path("s0.npy"), "--mean1",
            path("m1.npy"), "--cov1", path("s1.npy"), "--t", "0.5" });
        QCOMPARE(r.code, 0);
        const auto j = r.json();
        QVERIFY(std::abs(j.value("w2").toDouble() - std::sqrt(9.0 + 1.0)) < 1e-9);
        QVERIFY(std::abs(j.value("A").toArray()[0].toArray()[0].toDouble() - 1.5) < 1e-9);
        QVERIFY(std::abs(j.value("mean_t").toArray()[0].toDouble() + 0.5) < 1e-9);
        // sigma_t = 2.5, so var = 6.25
        QVERIFY(std::abs(j.value("cov_t").toArray()[0].toArray()[0].toDouble() - 6.25) < 1e-9);
    }

    // inspect reports what a SPEC loads; counts come from the requested family size.
    void inspectBuiltin()
    {
        auto r = runWfm({ "inspect", "--data", "builtin:rings?count=50&seed=3" });
        QCOMPARE(r.code, 0);
        const auto j = r.json();
        QCOMPARE(j.value("count").toInt(), 50);
        QCOMPARE(j.value("dim").toInt(), 2);
        const auto labels = j.value("labels").toObject();
        QCOMPARE(labels.value("circle").toInt() + labels.value("ellipse").toInt(), 50);
        const auto sizes = j.value("sizes").toObject();
        QVERIFY(sizes.value("min").toInt() >= 40 && sizes.value("max").toInt() <= 400);
        auto bad = runWfm({ "inspect", "--data", "builtin:nope" });
        QCOMPARE(bad.code, 1);
        QVERIFY(bad.err.contains("nope"));
        auto badScheme = runWfm({ "inspect", "--data", "ftp:thing" });
        QCOMPARE(badScheme.code, 1);
        QVERIFY(badScheme.err.contains("ftp"));
    }

    void benchOtPrintsBothPaths()
    {
        auto r = runWfm({ "bench", "ot", "--batch", "2", "--points", "64", "--iters", "20", "--repeat", "1" });
        QCOMPARE(r.code, 0);
        const auto j = r.json();
        QVERIFY(j.contains("fused") && j.contains("tensor") && j.contains("environment"));
        QVERIFY(j.value("cost_max_relative_difference").toDouble() < 1e-3);
        QVERIFY(j.value("fused").toObject().value("seconds").toDouble() > 0);
    }

    // The io schemes (registered at start-up) and the core idx scheme work through inspect.
    void inspectReaderSchemes()
    {
        // scripts/setup installs Debian's dataset-fashion-mnist.
        auto r = runWfm({ "inspect", "--data", "idx:/usr/share/datasets/fashion-mnist?split=test&count=100" });
        QCOMPARE(r.code, 0);
        QCOMPARE(r.json().value("count").toInt(), 100);
        QCOMPARE(r.json().value("dim").toInt(), 2);
        QFile off(m_dir.path() + QStringLiteral("/tetra.off"));
        QVERIFY(off.open(QIODevice::WriteOnly));
        off.write("OFF\n4 4 6\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n");
        off.close();
        auto m = runWfm({ "inspect", "--data", "mesh:" + off.fileName() + "?points=64&cache=0" });
        QCOMPARE(m.code, 0);
        QCOMPARE(m.json().value("dim").toInt(), 3);
        QCOMPARE(m.json().value("count").toInt(), 1);
    }

    // wfm config --defaults prints every setting; a config file with a typo is refused with the
    // key named; train -> generate -> evaluate round trip on a tiny run, arrays read by numpy.
    void trainGenerateEvaluate()
    {
        auto d = runWfm({ "config", "--defaults" });
        QCOMPARE(d.code, 0);
        const auto defaults = QJsonDocument::fromJson(d.out).object();
        for (const char* key : { "data", "source", "model", "flow", "optim", "train", "generate" }) {
            QVERIFY2(defaults.contains(QLatin1String(key)), key);
        }
        QFile bad(path("bad.json"));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write(R"({"train": {"stepz": 5}})");
        bad.close();
        auto b = runWfm({ "train", "--config", path("bad.json"), "--data", "builtin:rings?count=8", "--out", path("badrun") });
        QCOMPARE(b.code, 1);
        QVERIFY2(b.err.contains("bad.json") && b.err.contains("train.stepz"), b.err.constData());
        QVERIFY(!QFile::exists(path("badrun/checkpoint.pt")));

        QFile cfg(path("tiny.json"));
        QVERIFY(cfg.open(QIODevice::WriteOnly));
        cfg.write(R"({"model": {"width": 16, "blocks": 1, "heads": 2, "mlpWidth": 32},
                      "flow": {"iterations": 20}, "train": {"log_every": 2, "device": "cpu"},
                      "data": {"test_fraction": 0.25}})");
        cfg.close();
        const QString run = path("run");
        auto t = runWfm({ "train", "--config", path("tiny.json"), "--data", "builtin:rings?count=16&min=10&max=14",
            "--out", run, "--steps", "6", "--batch", "4", "--seed", "3" });
        QCOMPARE(t.code, 0);
        QVERIFY(t.err.contains("step 6/6"));
        QCOMPARE(t.json().value("step").toInt(), 6);
        QVERIFY(QFile::exists(run + "/checkpoint.pt") && QFile::exists(run + "/config.json"));
        QFile log(run + "/log.csv");
        QVERIFY(log.open(QIODevice::ReadOnly));
        QCOMPARE(log.readAll().count('\n'), 4); // header + steps 2, 4, 6
        // Resume to 8 steps.
        auto r = runWfm({ "train", "--out", run, "--resume", "--steps", "8" });
        QCOMPARE(r.code, 0);
        QCOMPARE(r.json().value("step").toInt(), 8);
        auto again = runWfm({ "train", "--data", "builtin:rings?count=16", "--out", run });
        QCOMPARE(again.code, 1);
        QVERIFY(again.err.contains("already holds a checkpoint"));

        auto g = runWfm({ "generate", "--run", run, "--num", "3", "--steps", "4", "--points", "9",
            "--label", "ellipse", "--trajectory", "--out", path("gen.npz") });
        QCOMPARE(g.code, 0);
        QString pylog;
        const QString script = QStringLiteral(
            "import numpy as np\n"
            "z = np.load('%1')\n"
            "assert z['points'].shape == (3, 9, 2), z['points'].shape\n"
            "assert z['weights'].shape == (3, 9) and np.allclose(z['weights'].sum(1), 1)\n"
            "assert (z['labels'] == 1).all()\n"
            "assert z['trajectory'].shape == (5, 3, 9, 2)\n"
            "assert np.allclose(z['trajectory'][-1], z['points'], atol=1e-5)\n"
            "assert np.isfinite(z['points']).all()\n").arg(path("gen.npz"));
        QCOMPARE(wfm::test::runPython(m_dir.path(), script, pylog), 0);
        auto badLabel = runWfm({ "generate", "--run", run, "--label", "square", "--out", path("x.npz") });
        QCOMPARE(badLabel.code, 1);
        QVERIFY(badLabel.err.contains("square") && badLabel.err.contains("circle"));
        auto badRun = runWfm({ "generate", "--run", path("nothing"), "--out", path("x.npz") });
        QCOMPARE(badRun.code, 1);
        QVERIFY(badRun.err.contains("checkpoint"));

        auto e = runWfm({ "evaluate", "--run", run, "--steps", "4", "--emd-points", "16", "--max-points", "16",
            "--out", path("eval.json") });
        QCOMPARE(e.code, 0);
        const auto ej = e.json();
        // As many as the held-out split (a quarter of each label, rounded) holds.
        QCOMPARE(ej.value("generated").toInt(), ej.value("reference_count").toInt());
        QVERIFY(ej.value("reference_count").toInt() >= 4 && ej.value("reference_count").toInt() <= 5);
        const auto m = ej.value("metrics").toObject();
        for (const char* dist : { "chamfer", "emd" }) {
            const auto o = m.value(QLatin1String(dist)).toObject();
            QVERIFY2(o.value("nna").toDouble() >= 0 && o.value("nna").toDouble() <= 1, dist);
            QVERIFY(o.value("cov").toDouble() > 0 && o.value("mmd").toDouble() > 0);
        }
        QVERIFY(QFile::exists(path("eval.json")));
        // The first 3 reference clouds only, raw weights, no EMD; the reference count says so.
        auto e3 = runWfm({ "evaluate", "--run", run, "--steps", "4", "--max-points", "16", "--emd", "none",
            "--max-reference", "3", "--raw", "--out", path("eval3.json") });
        QCOMPARE(e3.code, 0);
        const auto e3j = e3.json();
        QCOMPARE(e3j.value("reference_count").toInt(), 3);
        QCOMPARE(e3j.value("generated").toInt(), 3);
        QCOMPARE(e3j.value("reference_available").toInt(), ej.value("reference_count").toInt());
        QCOMPARE(e3j.value("weights").toString(), QStringLiteral("raw"));
        QVERIFY(!e3j.value("metrics").toObject().contains("emd"));
        auto badNiche = runWfm({ "evaluate", "--run", run, "--niche", "maybe", "--out", path("x.json") });
        QCOMPARE(badNiche.code, 2);
        QVERIFY(badNiche.err.contains("--niche"));
    }

    // Gaussian runs: the data spec selects the model; generate writes means and covariances.
    void gaussianRun()
    {
        QFile cfg(path("g.json"));
        QVERIFY(cfg.open(QIODevice::WriteOnly));
        cfg.write(R"({"gaussian_model": {"width": 32, "blocks": 2}, "train": {"device": "cpu", "log_every": 5}})");
        cfg.close();
        const QString run = path("grun");
        auto t = runWfm({ "train", "--config", path("g.json"), "--data", "builtin:gaussian-spiral?count=60",
            "--out", run, "--steps", "10", "--batch", "8" });
        QCOMPARE(t.code, 0);
        QCOMPARE(t.json().value("kind").toString(), QStringLiteral("gaussians"));
        auto g = runWfm({ "generate", "--run", run, "--num", "5", "--steps", "6", "--trajectory", "--out", path("g.npz") });
        QCOMPARE(g.code, 0);
        QVERIFY(g.json().value("min_eigenvalue").toDouble() > 0);
        QString pylog;
        const QString script = QStringLiteral(
            "import numpy as np\n"
            "z = np.load('%1')\n"
            "assert z['means'].shape == (5, 2) and z['covariances'].shape == (5, 2, 2)\n"
            "assert z['trajectory_means'].shape == (7, 5, 2)\n"
            "assert z['trajectory_covariances'].shape == (7, 5, 2, 2)\n"
            "c = z['covariances'].astype(np.float64)\n"
            "assert np.allclose(c, c.transpose(0, 2, 1), atol=1e-6)\n"
            "assert (np.linalg.eigvalsh(z['trajectory_covariances'].astype(np.float64)) > 0).all()\n").arg(path("g.npz"));
        QCOMPARE(wfm::test::runPython(m_dir.path(), script, pylog), 0);
        auto e = runWfm({ "evaluate", "--run", run, "--steps", "6", "--out", path("geval.json") });
        QCOMPARE(e.code, 0);
        const auto bw = e.json().value("metrics").toObject().value("bures_wasserstein").toObject();
        QVERIFY(bw.value("nna").toDouble() >= 0 && bw.value("nna").toDouble() <= 1);
        QVERIFY(e.json().value("all_covariances_pd").toBool());
        QVERIFY(e.json().contains("relationship_generated"));
        auto points = runWfm({ "generate", "--run", run, "--points", "5", "--out", path("x.npz") });
        QCOMPARE(points.code, 2);
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
