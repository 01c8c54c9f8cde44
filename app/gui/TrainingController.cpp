#include "TrainingController.h"

#include "engine/TrainingWorker.h"

#include <QDeadlineTimer>
#include <QMetaObject>
#include <QThread>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

namespace {

/// Optionally lowers the calling thread's scheduling priority so that the GUI thread wins the
/// cores when both want them: on Linux the thread's nice value goes up by WFM_TRAINING_NICE
/// (default 0: unchanged); the threads it starts later (LibTorch's OpenMP team, the fused OT
/// workers) inherit it. Off by default: on a quiet machine the event loop stays responsive
/// anyway (p99 lateness 7.8 ms at nice 0, 5.1 ms at +10; bench/results/gui-2026-11-28), and on a
/// busy one a lowered worker starves, which delays the response to Stop.
void lowerCurrentThreadPriority()
{
    const char* env = std::getenv("WFM_TRAINING_NICE");
    const int increment = env != nullptr && *env != 0 ? std::atoi(env) : 0;
    if (increment <= 0) {
        return;
    }
#if defined(__linux__)
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    errno = 0;
    const int current = ::getpriority(PRIO_PROCESS, tid);
    if (errno == 0) {
        (void)::setpriority(PRIO_PROCESS, tid, std::min(19, current + increment));
    }
#else
    QThread::currentThread()->setPriority(QThread::LowPriority);
#endif
}

} // namespace

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
    // Runs in the new thread (started is emitted there), before the worker's first job.
    connect(m_thread, &QThread::started, worker, [] { lowerCurrentThreadPriority(); }, Qt::DirectConnection);
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
