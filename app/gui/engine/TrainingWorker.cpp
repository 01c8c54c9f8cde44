#include "engine/TrainingWorker.h"

#include "engine/ModelPrivate.h"
#include "wfm/Error.h"
#include "wfm/Platform.h"
#include "wfm/flow/TrainConfig.h"
#include "wfm/flow/Trainer.h"

#include <QElapsedTimer>

#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <mutex>

namespace wfm::gui {

struct TrainingWorker::Private
{
    std::mutex mutex; ///< guards `trainer` against the control calls
    flow::Trainer* trainer = nullptr;
    std::atomic<bool> stopRequested { false };
    std::atomic<bool> pauseRequested { false };
};

TrainingWorker::TrainingWorker()
    : d(std::make_unique<Private>())
{
}

TrainingWorker::~TrainingWorker() = default;

void TrainingWorker::requestPause()
{
    std::lock_guard<std::mutex> lock(d->mutex);
    d->pauseRequested = true;
    if (d->trainer) {
        d->trainer->pause();
    }
}

void TrainingWorker::requestResume()
{
    std::lock_guard<std::mutex> lock(d->mutex);
    d->pauseRequested = false;
    if (d->trainer) {
        d->trainer->resume();
    }
}

void TrainingWorker::requestStop()
{
    std::lock_guard<std::mutex> lock(d->mutex);
    d->stopRequested = true;
    if (d->trainer) {
        d->trainer->stop();
    }
}

namespace {

ModelPtr snapshotModel(const flow::Trainer& trainer)
{
    if (trainer.kind() == flow::ModelKind::Gaussians) {
        return makeModel(nullptr, trainer.gaussianGenerator());
    }
    return makeModel(trainer.cloudGenerator(), nullptr);
}

QString errorText(const std::exception& e)
{
    if (const auto* c = dynamic_cast<const c10::Error*>(&e)) {
        return QString::fromStdString(c->what_without_backtrace());
    }
    return QString::fromLocal8Bit(e.what());
}

} // namespace

void TrainingWorker::start(const QString& configJson, const QString& runDir)
{
    const std::string json = configJson.toStdString();
    const std::string dir = runDir.toStdString();
    auto make = [json, dir] {
        const flow::TrainConfig config = flow::TrainConfig::fromJsonString(json, "training form");
        return std::make_unique<flow::Trainer>(config, dir);
    };
    try {
        runTrainer(make());
    } catch (const std::exception& e) {
        Q_EMIT trainingFailed(errorText(e));
    }
}

void TrainingWorker::resumeRun(const QString& runDir, qint64 steps, const QString& device)
{
    try {
        runTrainer(flow::Trainer::resume(runDir.toStdString(), steps, device.toStdString()));
    } catch (const std::exception& e) {
        Q_EMIT trainingFailed(errorText(e));
    }
}

void TrainingWorker::runTrainer(std::unique_ptr<flow::Trainer> trainer)
{
    const flow::TrainConfig& c = trainer->config();
    RunInfo info;
    info.runDir = QString::fromStdString(trainer->runDir());
    info.kind = QString::fromStdString(flow::modelKindName(trainer->kind()));
    info.device = QString::fromStdString(deviceName(parseDevice(c.train.device)));
    info.trainCount = trainer->trainCount();
    info.testCount = trainer->testCount();
    info.parameters = trainer->parameterCount();
    info.startStep = trainer->step();
    info.totalSteps = c.train.steps;
    info.sampleEvery = c.train.sampleEvery;
    {
        std::lock_guard<std::mutex> lock(d->mutex);
        d->trainer = trainer.get();
        if (d->pauseRequested) {
            trainer->pause();
        }
        if (d->stopRequested) {
            trainer->stop();
        }
    }
    Q_EMIT runStarted(info);

    ProgressInfo pending;
    QElapsedTimer sinceReport;
    sinceReport.start();
    const std::int64_t sampleEvery = c.train.sampleEvery;
    std::int64_t lastPreview = trainer->step();
    auto flush = [&](const flow::TrainProgress& p) {
        pending.step = p.step;
        pending.totalSteps = p.totalSteps;
        pending.loss = p.loss;
        pending.smoothedLoss = p.smoothedLoss;
        pending.lr = p.lr;
        pending.itemsPerSecond = p.itemsPerSecond;
        pending.elapsedSeconds = p.elapsedSeconds;
        pending.etaSeconds = p.etaSeconds;
        pending.paused = p.paused;
        Q_EMIT progressChanged(pending);
        pending.losses.clear();
        pending.smoothed.clear();
        sinceReport.restart();
    };
    flow::TrainProgress last;
    bool haveLast = false;
    flow::TrainResult result;
    try {
        result = trainer->run([&](const flow::TrainProgress& p) {
            if (!p.paused && p.step > 0 && std::isfinite(p.loss)
                && (pending.losses.isEmpty() || pending.losses.back().x() < p.step)) {
                pending.losses.push_back(QPointF(static_cast<double>(p.step), p.loss));
                pending.smoothed.push_back(QPointF(static_cast<double>(p.step), p.smoothedLoss));
            }
            last = p;
            haveLast = true;
            if (p.paused || p.step >= p.totalSteps || sinceReport.elapsed() >= 100) {
                flush(p);
            }
            // Weights for a live preview: copied here, between steps, sampled elsewhere.
            if (sampleEvery > 0 && p.step / sampleEvery > lastPreview / sampleEvery && p.step < p.totalSteps) {
                lastPreview = p.step;
                Q_EMIT previewModelReady(snapshotModel(*trainer));
            }
        });
    } catch (const std::exception& e) {
        {
            std::lock_guard<std::mutex> lock(d->mutex);
            d->trainer = nullptr;
        }
        Q_EMIT trainingFailed(errorText(e));
        return;
    }
    if (haveLast && (!pending.losses.isEmpty() || last.step != pending.step)) {
        flush(last);
    }
    ModelPtr model;
    try {
        model = snapshotModel(*trainer);
    } catch (const std::exception&) {
    }
    {
        std::lock_guard<std::mutex> lock(d->mutex);
        d->trainer = nullptr;
    }
    RunOutcome out;
    out.step = result.step;
    out.completed = result.completed;
    out.stopped = result.stopped;
    out.lastLoss = result.lastLoss;
    out.seconds = result.seconds;
    out.checkpoint = QString::fromStdString(result.checkpoint);
    Q_EMIT runFinished(out, model);
}

} // namespace wfm::gui
