#include "TrainingController.h"

#include "engine/TrainingWorker.h"

#include <QDeadlineTimer>
#include <QMetaObject>
#include <QThread>

namespace wfm::gui {

TrainingController::TrainingController(QObject* parent)
    : QObject(parent)
{
    qRegisterMetaType<wfm::gui::RunInfo>();
    qRegisterMetaType<wfm::gui::ProgressInfo>();
    qRegisterMetaType<wfm::gui::ModelPtr>();
    qRegisterMetaType<wfm::gui::RunOutcome>();
}

TrainingController::~TrainingController()
{
    stopAndWait(-1);
}

bool TrainingController::isRunning() const
{
    return m_running;
}

TrainingWorker* TrainingController::createWorker()
{
    if (m_thread) {
        // The previous run's thread has finished its work; join it before starting anew.
        m_thread->quit();
        m_thread->wait();
        delete m_thread;
        m_thread = nullptr;
    }
    m_thread = new QThread;
    m_thread->setObjectName(QStringLiteral("wfm-training"));
    auto* worker = new TrainingWorker;
    worker->moveToThread(m_thread);
    connect(m_thread, &QThread::finished, worker, &QObject::deleteLater);
    connect(worker, &TrainingWorker::runStarted, this, &TrainingController::runStarted);
    connect(worker, &TrainingWorker::progressChanged, this, [this](const ProgressInfo& p) {
        if (p.paused != m_paused) {
            m_paused = p.paused;
            Q_EMIT pausedChanged(m_paused);
        }
        Q_EMIT progressChanged(p);
    });
    connect(worker, &TrainingWorker::previewModelReady, this, &TrainingController::previewModelReady);
    connect(worker, &TrainingWorker::runFinished, this, [this](const RunOutcome& o, const ModelPtr& m) {
        m_running = false;
        m_paused = false;
        Q_EMIT runningChanged(false);
        Q_EMIT runFinished(o, m);
    });
    connect(worker, &TrainingWorker::trainingFailed, this, [this](const QString& message) {
        m_running = false;
        m_paused = false;
        Q_EMIT runningChanged(false);
        Q_EMIT trainingFailed(message);
    });
    m_worker = worker;
    m_thread->start();
    return worker;
}

void TrainingController::start(const QString& configJson, const QString& runDir)
{
    if (m_running) {
        return;
    }
    TrainingWorker* worker = createWorker();
    m_running = true;
    m_paused = false;
    Q_EMIT runningChanged(true);
    QMetaObject::invokeMethod(worker, [worker, configJson, runDir] { worker->start(configJson, runDir); },
        Qt::QueuedConnection);
}

void TrainingController::resume(const QString& runDir, qint64 steps, const QString& device)
{
    if (m_running) {
        return;
    }
    TrainingWorker* worker = createWorker();
    m_running = true;
    m_paused = false;
    Q_EMIT runningChanged(true);
    QMetaObject::invokeMethod(worker, [worker, runDir, steps, device] { worker->resumeRun(runDir, steps, device); },
        Qt::QueuedConnection);
}

void TrainingController::pause()
{
    if (m_worker && m_running) {
        m_worker->requestPause();
    }
}

void TrainingController::resumeTraining()
{
    if (m_worker && m_running) {
        m_worker->requestResume();
    }
}

void TrainingController::requestStop()
{
    if (m_worker && m_running) {
        m_worker->requestStop();
    }
}

bool TrainingController::stopAndWait(int timeoutMs)
{
    if (!m_thread) {
        return true;
    }
    if (m_worker) {
        m_worker->requestStop();
    }
    m_thread->quit();
    const bool done = timeoutMs < 0 ? m_thread->wait() : m_thread->wait(QDeadlineTimer(timeoutMs));
    if (done) {
        delete m_thread;
        m_thread = nullptr;
        if (m_running) {
            m_running = false;
            Q_EMIT runningChanged(false);
        }
    }
    return done;
}

} // namespace wfm::gui
