#include "LatencyBenchmark.h"

#include "DataPanel.h"
#include "MainWindow.h"
#include "TrainingController.h"
#include "TrainingPanel.h"
#include "engine/Engine.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QThread>
#include <QTimer>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <vector>

namespace wfm::gui {

namespace {

bool waitUntil(const std::function<bool()>& done, int ms)
{
    QElapsedTimer clock;
    clock.start();
    while (!done() && clock.elapsed() < ms) {
        QApplication::processEvents(QEventLoop::AllEvents, 20);
    }
    return done();
}

} // namespace

QJsonObject runLatencyBenchmark(double seconds, const QString& spec, const QString& configPath)
{
    QTemporaryDir dir;
    if (!dir.isValid()) {
        throw std::runtime_error("--bench-latency: cannot create a temporary run folder");
    }
    MainWindow window(false);
    window.setInteractive(false);
    window.resize(1400, 900);
    window.show();

    DataPanel* data = window.dataPanel();
    QString loadError;
    QObject::connect(data, &DataPanel::loadFailed, &window, [&loadError](const QString& m) { loadError = m; });
    data->load(spec);
    if (!waitUntil([&] { return !data->isLoading(); }, 120'000) || !loadError.isEmpty() || data->data().count == 0) {
        throw std::runtime_error("--bench-latency: could not load " + spec.toStdString() + ": " + loadError.toStdString());
    }

    TrainingPanel* t = window.trainingPanel();
    TrainForm form = configPath.isEmpty() ? t->form() : trainFormFromFile(configPath);
    form.spec = data->spec();
    form.steps = 1'000'000; // stopped after the measurement
    form.device = QStringLiteral("cpu");
    form.logEvery = 10;
    form.sampleEvery = 100;
    form.checkpointEvery = 1'000'000;
    t->setForm(form);
    t->setRunDir(dir.filePath(QStringLiteral("run")));
    qint64 lastStep = 0;
    qint64 firstStep = -1;
    QElapsedTimer stepClock;
    double firstStepAt = 0.0;
    double lastStepAt = 0.0;
    TrainingController* controller = t->controller();
    QObject::connect(controller, &TrainingController::progressChanged, &window, [&](const ProgressInfo& p) {
        if (firstStep < 0) {
            firstStep = p.step;
            firstStepAt = stepClock.nsecsElapsed() / 1e9;
        }
        lastStep = p.step;
        lastStepAt = stepClock.nsecsElapsed() / 1e9;
    });
    window.showPanel(1);
    stepClock.start();
    if (!t->startTraining()) {
        throw std::runtime_error("--bench-latency: the training did not start");
    }
    // The first report means the data and model are set up; measure from there.
    if (!waitUntil([&] { return firstStep >= 0 || !controller->isRunning(); }, 300'000) || !controller->isRunning()) {
        throw std::runtime_error("--bench-latency: the training stopped before its first report");
    }

    std::vector<double> lateness;
    QElapsedTimer clock;
    QTimer probe;
    probe.setInterval(10);
    probe.setTimerType(Qt::PreciseTimer);
    qint64 last = -1;
    QObject::connect(&probe, &QTimer::timeout, &window, [&] {
        const qint64 now = clock.nsecsElapsed();
        if (last >= 0) {
            lateness.push_back(std::max(0.0, (now - last) / 1e6 - 10.0));
        }
        last = now;
    });
    const qint64 stepAtStart = lastStep;
    const double timeAtStart = lastStepAt;
    clock.start();
    probe.start();
    waitUntil([&] { return !controller->isRunning(); }, static_cast<int>(seconds * 1000.0));
    probe.stop();
    const bool ranThrough = controller->isRunning();
    const qint64 steps = lastStep - stepAtStart;
    const double stepSeconds = lastStepAt - timeAtStart;
    QElapsedTimer stopClock;
    stopClock.start();
    t->stopTraining();
    waitUntil([&] { return !controller->isRunning(); }, 60'000);
    const double stopMs = stopClock.nsecsElapsed() / 1e6;
    if (!ranThrough || lateness.empty()) {
        throw std::runtime_error("--bench-latency: the training ended during the measurement");
    }

    std::sort(lateness.begin(), lateness.end());
    auto pct = [&](double p) { return lateness[std::min(lateness.size() - 1, static_cast<size_t>(p * lateness.size()))]; };
    const char* nice = std::getenv("WFM_TRAINING_NICE");
    QJsonObject o;
    o[QStringLiteral("benchmark")] = QStringLiteral("event-loop-latency-while-training");
    o[QStringLiteral("data")] = spec;
    o[QStringLiteral("config")] = configPath.isEmpty() ? QStringLiteral("form defaults") : configPath;
    o[QStringLiteral("seconds")] = clock.nsecsElapsed() / 1e9;
    o[QStringLiteral("ticks")] = static_cast<qint64>(lateness.size());
    o[QStringLiteral("timer_ms")] = 10;
    o[QStringLiteral("lateness_p50_ms")] = pct(0.5);
    o[QStringLiteral("lateness_p90_ms")] = pct(0.9);
    o[QStringLiteral("lateness_p99_ms")] = pct(0.99);
    o[QStringLiteral("lateness_max_ms")] = lateness.back();
    o[QStringLiteral("training_steps")] = steps;
    o[QStringLiteral("training_steps_per_second")] = stepSeconds > 0 ? steps / stepSeconds : 0.0;
    o[QStringLiteral("stop_ms")] = stopMs;
    o[QStringLiteral("worker_nice_increment")] = nice != nullptr && *nice != 0 ? std::atoi(nice) : 0;
    o[QStringLiteral("cpu_threads")] = QThread::idealThreadCount();
    return o;
}

} // namespace wfm::gui
