// Drives the real WFM Studio main window (under Xvfb): load a built-in dataset, train a tiny
// model on the CPU while measuring the event loop's latency, generate with a trajectory, scrub
// the timeline, export a PNG and an MP4 and check them, and stop a long run promptly.

#include "DataPanel.h"
#include "EvaluatePanel.h"
#include "GeneratePanel.h"
#include "MainWindow.h"
#include "TrainingController.h"
#include "TrainingPanel.h"
#include "engine/Engine.h"
#include "wfm/widgets/GalleryView.h"
#include "wfm/widgets/VtkViewport.h"

#include <QAction>
#include <QComboBox>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QMimeData>
#include <QUrl>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QImage>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSet>
#include <QSignalSpy>
#include <QSlider>
#include <QTableWidget>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

using namespace wfm;

namespace {

constexpr int kLoadTimeoutMs = 30'000;
constexpr int kTrainTimeoutMs = 60'000;
constexpr int kGenerateTimeoutMs = 30'000;
/// Event-loop latency bound while training runs (the issue expects < 100 ms; CI machines with
/// 2 cores shared by LibTorch's threads get a generous margin).
constexpr double kMaxLatencyP99Ms = 500.0;
/// A stop request must end the run within this time (one step of a tiny model plus the
/// checkpoint write).
constexpr qint64 kMaxStopMs = 1500;

template <typename T>
T* child(QObject* parent, const char* name)
{
    T* w = parent->findChild<T*>(QLatin1String(name));
    if (!w) {
        qFatal("widget %s not found", name);
    }
    return w;
}

void selectData(QComboBox* c, const QString& value)
{
    int i = c->findData(value);
    if (i < 0) {
        i = c->findText(value);
    }
    QVERIFY2(i >= 0, qPrintable(value));
    c->setCurrentIndex(i);
}

struct ImageStats
{
    double greyVariance = 0.0;
    int saturatedPixels = 0;
};

ImageStats imageStats(const QImage& image)
{
    ImageStats s;
    double sum = 0.0;
    double sum2 = 0.0;
    const qint64 n = static_cast<qint64>(image.width()) * image.height();
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            const QColor c = image.pixelColor(x, y);
            const double g = 0.299 * c.red() + 0.587 * c.green() + 0.114 * c.blue();
            sum += g;
            sum2 += g * g;
            s.saturatedPixels += c.hsvSaturationF() > 0.35 && c.valueF() > 0.3;
        }
    }
    const double mean = sum / static_cast<double>(n);
    s.greyVariance = sum2 / static_cast<double>(n) - mean * mean;
    return s;
}

/// Frames in a video, decoded by ffprobe (-1 when ffprobe fails).
int countFrames(const QString& path)
{
    QProcess p;
    p.start(QStringLiteral("ffprobe"), { QStringLiteral("-v"), QStringLiteral("error"), QStringLiteral("-select_streams"),
                                           QStringLiteral("v:0"), QStringLiteral("-count_frames"), QStringLiteral("-show_entries"),
                                           QStringLiteral("stream=nb_read_frames"), QStringLiteral("-of"),
                                           QStringLiteral("csv=p=0"), path });
    if (!p.waitForFinished(30'000) || p.exitCode() != 0) {
        return -1;
    }
    bool ok = false;
    const int n = QString::fromLocal8Bit(p.readAllStandardOutput()).trimmed().toInt(&ok);
    return ok ? n : -1;
}

} // namespace

class TestStudioWindow : public QObject
{
    Q_OBJECT
public:
    /// QTEST_MAIN calls this before creating the QApplication.
    static void initMain() { VtkViewport::setDefaultSurfaceFormat(); }

private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();
    void loadData();
    void geodesicTransportLines();
    void trainTinyModel();
    void generateAndScrub();
    void exportPng();
    void exportMp4();
    void galleriesAndEvaluate();
    void stopIsPrompt();
    void gaussianRun();
    void dropFile();
    void closeDuringTraining();

private:
    /// Saves a picture of the window as NAME.png in $WFM_STUDIO_SCREENSHOTS, when set.
    void screenshot(const char* name);
    void setTinyModel(qint64 steps, const QString& runDir);

    std::unique_ptr<MainWindow> m_window;
    QTemporaryDir m_dir;
};

void TestStudioWindow::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(m_dir.isValid());
    gui::initEngine();
    m_window = std::make_unique<MainWindow>(false);
    m_window->setInteractive(false);
    m_window->resize(1300, 850);
    m_window->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
}

void TestStudioWindow::cleanupTestCase()
{
    m_window.reset();
}

void TestStudioWindow::loadData()
{
    gui::DataPanel* data = m_window->dataPanel();
    QSignalSpy loaded(data, &gui::DataPanel::dataLoaded);
    QSignalSpy failed(data, &gui::DataPanel::loadFailed);
    QSignalSpy busy(data, &gui::DataPanel::loadingChanged);
    child<QLineEdit>(data, "dataSpec")->setText(QStringLiteral("builtin:rings?count=40"));
    QTest::mouseClick(child<QPushButton>(data, "loadData"), Qt::LeftButton);
    QCOMPARE(busy.count(), 1); // the busy indicator went on
    QVERIFY(loaded.wait(kLoadTimeoutMs));
    QCOMPARE(failed.count(), 0);
    QCOMPARE(data->data().count, 40);
    screenshot("data");
    QVERIFY(data->data().dim >= 2);
    QVERIFY(data->data().clouds.count > 0);
    QVERIFY(!child<QPlainTextEdit>(data, "dataSummary")->toPlainText().isEmpty());
    // The training form follows the data.
    QCOMPARE(child<QLineEdit>(m_window->trainingPanel(), "trainSpec")->text(), QStringLiteral("builtin:rings?count=40"));

    // A bad spec is reported, not fatal.
    data->load(QStringLiteral("builtin:no-such-family"));
    QVERIFY(failed.wait(kLoadTimeoutMs));
    QCOMPARE(data->data().count, 40);

    // A cancelled load frees the panel at once and its late result is dropped.
    const int loadedBefore = loaded.count();
    data->load(QStringLiteral("builtin:letters"));
    QVERIFY(data->isLoading());
    QTest::mouseClick(child<QPushButton>(data, "cancelLoad"), Qt::LeftButton);
    QVERIFY(!data->isLoading());
    QTest::qWait(1500);
    QCOMPARE(loaded.count(), loadedBefore);
    QCOMPARE(data->data().count, 40);
}

void TestStudioWindow::geodesicTransportLines()
{
    gui::DataPanel* data = m_window->dataPanel();
    QSignalSpy ready(data, &gui::DataPanel::geodesicReady);
    data->computeGeodesic(0, 1);
    QVERIFY(ready.wait(kGenerateTimeoutMs));
    gui::GeneratePanel* g = m_window->generatePanel();
    g->setFrame(g->frameCount() / 2);
    VtkViewport* view = m_window->viewport();
    const QImage plain = view->grabImage(QSize(400, 300));
    auto* lines = m_window->findChild<QAction*>(QStringLiteral("transportLines"));
    auto* correspondence = m_window->findChild<QAction*>(QStringLiteral("colourByCorrespondence"));
    QVERIFY(lines && correspondence);
    lines->setChecked(true);
    const QImage withLines = view->grabImage(QSize(400, 300));
    QVERIFY(withLines != plain);
    // Lines are grey: the picture gains unsaturated, non-background pixels.
    auto greyInk = [](const QImage& image) {
        int n = 0;
        const QColor bg = QColor::fromRgb(image.pixel(0, 0));
        for (int y = 0; y < image.height(); ++y) {
            for (int x = 0; x < image.width(); ++x) {
                const QColor c = QColor::fromRgb(image.pixel(x, y));
                n += c.hsvSaturationF() < 0.15 && std::abs(c.value() - bg.value()) > 25;
            }
        }
        return n;
    };
    QVERIFY2(greyInk(withLines) > greyInk(plain) + 200, qPrintable(QStringLiteral("%1 vs %2").arg(greyInk(withLines)).arg(greyInk(plain))));
    correspondence->setChecked(true);
    const QImage coloured = view->grabImage(QSize(400, 300));
    QVERIFY(coloured != withLines);
    screenshot("geodesic-lines");
    lines->setChecked(false);
    correspondence->setChecked(false);
    QVERIFY(view->grabImage(QSize(400, 300)) == plain);
}

void TestStudioWindow::setTinyModel(qint64 steps, const QString& runDir)
{
    gui::TrainingPanel* t = m_window->trainingPanel();
    child<QSpinBox>(t, "steps")->setValue(static_cast<int>(steps));
    child<QSpinBox>(t, "batch")->setValue(4);
    child<QSpinBox>(t, "width")->setValue(16);
    child<QSpinBox>(t, "blocks")->setValue(1);
    child<QSpinBox>(t, "heads")->setValue(2);
    child<QSpinBox>(t, "logEvery")->setValue(1);
    child<QSpinBox>(t, "sampleEvery")->setValue(10);
    child<QSpinBox>(t, "checkpointEvery")->setValue(1000);
    selectData(child<QComboBox>(t, "device"), QStringLiteral("cpu"));
    child<QLineEdit>(t, "runDir")->setText(runDir);
}

void TestStudioWindow::trainTinyModel()
{
    m_window->showPanel(1);
    gui::TrainingPanel* t = m_window->trainingPanel();
    const QString runDir = m_dir.filePath(QStringLiteral("run"));
    setTinyModel(20, runDir);
    gui::TrainingController* controller = t->controller();
    QSignalSpy finished(controller, &gui::TrainingController::runFinished);
    QSignalSpy failed(controller, &gui::TrainingController::trainingFailed);

    // Event-loop latency: a 10 ms timer's lateness while the run is active.
    std::vector<double> lateness;
    QElapsedTimer clock;
    QTimer probe;
    probe.setInterval(10);
    probe.setTimerType(Qt::PreciseTimer);
    qint64 last = -1;
    connect(&probe, &QTimer::timeout, this, [&] {
        const qint64 now = clock.nsecsElapsed();
        if (last >= 0 && controller->isRunning()) {
            lateness.push_back(std::max(0.0, (now - last) / 1e6 - 10.0));
        }
        last = now;
    });
    clock.start();
    probe.start();

    QElapsedTimer runClock;
    runClock.start();
    QTest::mouseClick(child<QPushButton>(t, "startTraining"), Qt::LeftButton);
    QVERIFY(controller->isRunning());
    QVERIFY(finished.wait(kTrainTimeoutMs) || !failed.isEmpty());
    probe.stop();
    if (!failed.isEmpty()) {
        QFAIL(qPrintable(failed.front().front().toString()));
    }
    const auto outcome = finished.front().front().value<gui::RunOutcome>();
    QVERIFY(outcome.completed);
    QCOMPARE(outcome.step, qint64(20));
    QVERIFY(QFileInfo::exists(QDir(runDir).filePath(QStringLiteral("checkpoint.pt"))));
    QVERIFY2(t->lossPointCount() >= 10, qPrintable(QString::number(t->lossPointCount())));
    QVERIFY(m_window->generatePanel()->model() != nullptr);

    QVERIFY(!lateness.empty());
    std::sort(lateness.begin(), lateness.end());
    const double p99 = lateness[std::min(lateness.size() - 1, static_cast<size_t>(0.99 * lateness.size()))];
    const double worst = lateness.back();
    screenshot("training");
    qInfo("training 20 steps took %lld ms; event-loop lateness over %zu ticks: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
        static_cast<long long>(runClock.elapsed()), lateness.size(), lateness[lateness.size() / 2], p99, worst);
    QVERIFY2(p99 < kMaxLatencyP99Ms, qPrintable(QString::number(p99)));
}

void TestStudioWindow::generateAndScrub()
{
    m_window->showPanel(2);
    gui::GeneratePanel* g = m_window->generatePanel();
    QVERIFY(g->model());
    g->setCount(4);
    g->setSteps(10);
    QSignalSpy ready(g, &gui::GeneratePanel::samplesReady);
    QTest::mouseClick(child<QPushButton>(g, "generate"), Qt::LeftButton);
    QVERIFY(ready.wait(kGenerateTimeoutMs));
    QCOMPARE(g->frameCount(), 11);
    QCOMPARE(g->samples().clouds.count, 4);
    QCOMPARE(g->currentFrame(), 10);

    // The samples export to .npz and read back as a dataset.
    const QString npz = m_dir.filePath(QStringLiteral("samples.npz"));
    gui::writeSamplesNpz(g->samples(), npz);
    const gui::LoadedData back = gui::loadData(npz, 4);
    QCOMPARE(back.count, qint64(4));
    QCOMPARE(back.dim, g->samples().clouds.dim);

    // Scrubbing to t = 0 shows the noise: the view renders again and looks different.
    VtkViewport* view = m_window->viewport();
    const QImage atEnd = view->grabImage(QSize(320, 240));
    const quint64 renders = view->renderCount();
    child<QSlider>(g, "timeline")->setValue(0);
    QCOMPARE(g->currentFrame(), 0);
    QTRY_VERIFY_WITH_TIMEOUT(view->renderCount() > renders, 5000);
    const QImage atStart = view->grabImage(QSize(320, 240));
    QVERIFY(atStart != atEnd);

    // Play advances the timeline; pause holds it.
    g->setPlaying(true);
    QTRY_VERIFY_WITH_TIMEOUT(g->currentFrame() > 2, 5000);
    g->setPlaying(false);
    const int held = g->currentFrame();
    QTest::qWait(150);
    QCOMPARE(g->currentFrame(), held);
    g->setFrame(g->frameCount() - 1);
}

void TestStudioWindow::exportPng()
{
    const QString path = m_dir.filePath(QStringLiteral("view.png"));
    QCOMPARE(m_window->exportImage(path, QSize(640, 480)), QString());
    QImage image(path);
    QCOMPARE(image.size(), QSize(640, 480));
    const ImageStats s = imageStats(image);
    qInfo("PNG: grey variance %.1f, %d saturated (data-coloured) pixels", s.greyVariance, s.saturatedPixels);
    QVERIFY2(s.greyVariance > 20.0, qPrintable(QString::number(s.greyVariance)));
    QVERIFY2(s.saturatedPixels > 100, qPrintable(QString::number(s.saturatedPixels)));

    screenshot("generate");
}

void TestStudioWindow::screenshot(const char* name)
{
    if (const QByteArray dir = qgetenv("WFM_STUDIO_SCREENSHOTS"); !dir.isEmpty()) {
        QCoreApplication::processEvents();
        m_window->grab().save(QDir(QString::fromLocal8Bit(dir)).filePath(QLatin1String(name) + QStringLiteral(".png")));
    }
}

void TestStudioWindow::galleriesAndEvaluate()
{
    // The data gallery holds the first samples; the generate gallery the generated ones.
    QCOMPARE(m_window->dataPanel()->gallery()->count(), 40);
    QCOMPARE(m_window->generatePanel()->gallery()->count(), m_window->generatePanel()->samples().clouds.count);

    m_window->showPanel(3);
    gui::EvaluatePanel* e = m_window->evaluatePanel();
    QSignalSpy done(e, &gui::EvaluatePanel::evaluated);
    QSignalSpy failed(e, &gui::EvaluatePanel::errorOccurred);
    QElapsedTimer clock;
    clock.start();
    QTest::mouseClick(child<QPushButton>(e, "evaluate"), Qt::LeftButton);
    QVERIFY(e->isEvaluating());
    QVERIFY(done.wait(kGenerateTimeoutMs) || !failed.isEmpty());
    if (!failed.isEmpty()) {
        QFAIL(qPrintable(failed.front().at(1).toString()));
    }
    const gui::Evaluation& r = e->result();
    // Chamfer and EMD over all clouds, then Chamfer per label (one row per label, each named).
    QVERIFY(r.rows.size() >= 2);
    QCOMPARE(r.rows[0].distance, QStringLiteral("chamfer"));
    QCOMPARE(r.rows[1].distance, QStringLiteral("emd"));
    QSet<QString> perLabel;
    for (int i = 2; i < r.rows.size(); ++i) {
        const QString prefix = QStringLiteral("chamfer · ");
        QVERIFY2(r.rows[i].distance.startsWith(prefix), qPrintable(r.rows[i].distance));
        const QString label = r.rows[i].distance.mid(prefix.size());
        const auto& names = r.realClouds.labelNames;
        QVERIFY2(std::find(names.begin(), names.end(), label.toStdString()) != names.end(), qPrintable(label));
        perLabel.insert(label);
    }
    QCOMPARE(perLabel.size(), r.rows.size() - 2);
    QVERIFY(!r.realClouds.labelNames.empty() && !perLabel.isEmpty());
    for (const gui::MetricRow& m : r.rows) {
        QVERIFY(std::isfinite(m.nna) && m.nna >= 0.0 && m.nna <= 1.0);
        QVERIFY(std::isfinite(m.cov) && m.cov >= 0.0 && m.cov <= 1.0);
        QVERIFY(std::isfinite(m.mmd) && m.mmd >= 0.0);
    }
    QCOMPARE(e->table()->rowCount(), r.rows.size());
    QVERIFY(r.realClouds.count > 0);
    QCOMPARE(r.generatedClouds.count, r.realClouds.count);
    qInfo("evaluate: %d held-out clouds in %lld ms, CD 1-NNA %.3f, EMD 1-NNA %.3f", r.realClouds.count,
        static_cast<long long>(clock.elapsed()), r.rows[0].nna, r.rows[1].nna);
    screenshot("evaluate");
}

void TestStudioWindow::exportMp4()
{
    if (QStandardPaths::findExecutable(QStringLiteral("ffmpeg")).isEmpty()
        || QStandardPaths::findExecutable(QStringLiteral("ffprobe")).isEmpty()) {
        QSKIP("ffmpeg / ffprobe not installed");
    }
    const QString path = m_dir.filePath(QStringLiteral("flow.mp4"));
    QElapsedTimer clock;
    clock.start();
    QCOMPARE(m_window->exportVideo(path, QSize(321, 241), 10, false), QString());
    qInfo("MP4 of %d frames written in %lld ms", m_window->generatePanel()->frameCount(),
        static_cast<long long>(clock.elapsed()));
    QVERIFY(QFileInfo(path).size() > 1000);
    QCOMPARE(countFrames(path), m_window->generatePanel()->frameCount());
    // The last frame shows the samples, not a blank picture.
    const QString last = m_dir.filePath(QStringLiteral("last-frame.png"));
    QCOMPARE(QProcess::execute(QStringLiteral("ffmpeg"), { QStringLiteral("-v"), QStringLiteral("error"), QStringLiteral("-y"),
                 QStringLiteral("-i"), path, QStringLiteral("-vf"),
                 QStringLiteral("select=eq(n\\,%1)").arg(m_window->generatePanel()->frameCount() - 1),
                 QStringLiteral("-fps_mode"), QStringLiteral("passthrough"), QStringLiteral("-frames:v"), QStringLiteral("1"), last }),
        0);
    const ImageStats frame = imageStats(QImage(last));
    qInfo("MP4 last frame: grey variance %.1f, %d saturated pixels", frame.greyVariance, frame.saturatedPixels);
    QVERIFY(frame.greyVariance > 20.0);
    QVERIFY(frame.saturatedPixels > 20);
    // No temporary file is left next to it.
    QCOMPARE(QDir(m_dir.path()).entryList({ QStringLiteral(".*.part") }, QDir::Files | QDir::Hidden).size(), 0);

    const QString gif = m_dir.filePath(QStringLiteral("flow.gif"));
    QCOMPARE(m_window->exportVideo(gif, QSize(160, 120), 10, false), QString());
    QCOMPARE(countFrames(gif), m_window->generatePanel()->frameCount());
}

void TestStudioWindow::stopIsPrompt()
{
    gui::TrainingPanel* t = m_window->trainingPanel();
    const QString runDir = m_dir.filePath(QStringLiteral("long-run"));
    setTinyModel(1'000'000, runDir);
    gui::TrainingController* controller = t->controller();
    QSignalSpy started(controller, &gui::TrainingController::runStarted);
    QSignalSpy progress(controller, &gui::TrainingController::progressChanged);
    QSignalSpy finished(controller, &gui::TrainingController::runFinished);
    QVERIFY(t->startTraining());
    QVERIFY(started.wait(kTrainTimeoutMs));
    QTRY_VERIFY_WITH_TIMEOUT(progress.count() >= 2, 10'000);

    // Pause holds the step count; resume continues.
    t->togglePause();
    QTRY_VERIFY_WITH_TIMEOUT(controller->isPaused(), 5000);
    const qint64 pausedAt = progress.back().front().value<gui::ProgressInfo>().step;
    QTest::qWait(300);
    QCOMPARE(progress.back().front().value<gui::ProgressInfo>().step, pausedAt);
    t->togglePause();

    QTest::qWait(300);
    QElapsedTimer clock;
    clock.start();
    t->stopTraining();
    QVERIFY(finished.wait(10'000));
    const qint64 ms = clock.elapsed();
    qInfo("stop took %lld ms", static_cast<long long>(ms));
    const auto outcome = finished.front().front().value<gui::RunOutcome>();
    QVERIFY(outcome.stopped);
    QVERIFY(outcome.step > pausedAt);
    QVERIFY(QFileInfo::exists(QDir(runDir).filePath(QStringLiteral("checkpoint.pt"))));
    QVERIFY2(ms < kMaxStopMs, qPrintable(QString::number(ms)));
}

void TestStudioWindow::gaussianRun()
{
    // A Gaussian dataset trains the Bures-Wasserstein model; generation gives ellipse trajectories.
    gui::DataPanel* data = m_window->dataPanel();
    QSignalSpy loaded(data, &gui::DataPanel::dataLoaded);
    data->load(QStringLiteral("builtin:gaussian-spiral?count=200"));
    QVERIFY(loaded.wait(kLoadTimeoutMs));
    QVERIFY(data->data().gaussian);
    QCOMPARE(data->data().gaussians.count, 200);
    QSignalSpy geodesic(data, &gui::DataPanel::geodesicReady);
    data->computeGeodesic(3, 150);
    QVERIFY(geodesic.wait(kGenerateTimeoutMs));
    QCOMPARE(m_window->generatePanel()->frameCount(), 51);
    QCOMPARE(m_window->generatePanel()->samples().gaussians.count, 3);

    gui::TrainingPanel* t = m_window->trainingPanel();
    setTinyModel(15, m_dir.filePath(QStringLiteral("gaussian-run")));
    selectData(child<QComboBox>(t, "minibatch"), QStringLiteral("bures"));
    QSignalSpy finished(t->controller(), &gui::TrainingController::runFinished);
    QSignalSpy failed(t->controller(), &gui::TrainingController::trainingFailed);
    QVERIFY(t->startTraining());
    QVERIFY(finished.wait(kTrainTimeoutMs) || !failed.isEmpty());
    if (!failed.isEmpty()) {
        QFAIL(qPrintable(failed.front().front().toString()));
    }
    QVERIFY(finished.front().front().value<gui::RunOutcome>().completed);

    gui::GeneratePanel* g = m_window->generatePanel();
    g->setCount(5);
    g->setSteps(8);
    QSignalSpy ready(g, &gui::GeneratePanel::samplesReady);
    QVERIFY(g->generate());
    QVERIFY(ready.wait(kGenerateTimeoutMs));
    QVERIFY(g->samples().gaussian);
    QCOMPARE(g->samples().gaussians.count, 5);
    QCOMPARE(g->frameCount(), 9);
    g->setFrame(0);
    QCOMPARE(g->currentFrame(), 0);
    const QString png = m_dir.filePath(QStringLiteral("gaussians.png"));
    QCOMPARE(m_window->exportImage(png, QSize(400, 300)), QString());
    QVERIFY(imageStats(QImage(png)).greyVariance > 5.0);
}

void TestStudioWindow::dropFile()
{
    // A file dropped on the window is loaded as data (here the samples exported above).
    const QString npz = m_dir.filePath(QStringLiteral("samples.npz"));
    QVERIFY(QFileInfo::exists(npz));
    QMimeData mime;
    mime.setUrls({ QUrl::fromLocalFile(npz) });
    QDragEnterEvent enter(QPoint(50, 50), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(m_window.get(), &enter);
    QVERIFY(enter.isAccepted());
    QSignalSpy loaded(m_window->dataPanel(), &gui::DataPanel::dataLoaded);
    QDropEvent drop(QPointF(50, 50), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(m_window.get(), &drop);
    QVERIFY(loaded.wait(kLoadTimeoutMs));
    QCOMPARE(m_window->dataPanel()->data().count, qint64(4));
    QCOMPARE(m_window->dataPanel()->data().spec, QFileInfo(npz).absoluteFilePath());

    // Geodesic between two of the clouds shown: start, end and the interpolant on the timeline.
    QSignalSpy geodesic(m_window->dataPanel(), &gui::DataPanel::geodesicReady);
    m_window->dataPanel()->computeGeodesic(0, 1);
    QVERIFY(geodesic.wait(kGenerateTimeoutMs));
    gui::GeneratePanel* g = m_window->generatePanel();
    QCOMPARE(g->frameCount(), 51);
    QVERIFY(g->samples().overlay);
    QCOMPARE(g->samples().cloudFrames.front().count, 3);
    QCOMPARE(g->currentFrame(), 0);
    g->setFrame(25);
    const QString png = m_dir.filePath(QStringLiteral("geodesic.png"));
    QCOMPARE(m_window->exportImage(png, QSize(400, 300)), QString());
    QVERIFY(imageStats(QImage(png)).saturatedPixels > 50);
    screenshot("geodesic");
}

void TestStudioWindow::closeDuringTraining()
{
    // Closing while training runs stops the run (without asking here: not interactive), keeps a
    // checkpoint and closes the window once the worker is done.
    gui::TrainingPanel* t = m_window->trainingPanel();
    m_window->dataPanel()->load(QStringLiteral("builtin:rings?count=40"));
    QSignalSpy loaded(m_window->dataPanel(), &gui::DataPanel::dataLoaded);
    QVERIFY(loaded.wait(kLoadTimeoutMs));
    const QString runDir = m_dir.filePath(QStringLiteral("closed-run"));
    setTinyModel(1'000'000, runDir);
    selectData(child<QComboBox>(t, "minibatch"), QStringLiteral("chamfer"));
    QSignalSpy started(t->controller(), &gui::TrainingController::runStarted);
    QVERIFY(t->startTraining());
    QVERIFY(started.wait(kTrainTimeoutMs));
    QTest::qWait(200);
    QElapsedTimer clock;
    clock.start();
    m_window->close();
    QTRY_VERIFY_WITH_TIMEOUT(!m_window->isVisible(), 10'000);
    qInfo("window closed %lld ms after the request", static_cast<long long>(clock.elapsed()));
    QVERIFY(!t->controller()->isRunning());
    QVERIFY(QFileInfo::exists(QDir(runDir).filePath(QStringLiteral("checkpoint.pt"))));
}

QTEST_MAIN(TestStudioWindow)
#include "tst_studiowindow.moc"
