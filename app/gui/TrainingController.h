#pragma once

#include "engine/Engine.h"

#include <QObject>
#include <QPointer>
#include <QString>

class QThread;

namespace wfm::gui {

class TrainingWorker;

/// Lives on the GUI thread; each run gets a fresh TrainingWorker on its own QThread. Signals of
/// the worker arrive here queued and are forwarded. On destruction a running training is
/// stopped (checkpoint kept) and the thread joined.
class TrainingController : public QObject
{
    Q_OBJECT
public:
    explicit TrainingController(QObject* parent = nullptr);
    ~TrainingController() override;

    bool isRunning() const;
    bool isPaused() const { return m_paused; }

    /// Starts a new run (no effect while one runs).
    void start(const QString& configJson, const QString& runDir);
    /// Continues the run in `runDir`.
    void resume(const QString& runDir, qint64 steps, const QString& device);

    void pause();
    void resumeTraining();
    void requestStop();
    /// Requests a stop and waits up to `timeoutMs` for the thread to finish. True when it did.
    bool stopAndWait(int timeoutMs);

Q_SIGNALS:
    void runStarted(const wfm::gui::RunInfo& info);
    void progressChanged(const wfm::gui::ProgressInfo& progress);
    void previewModelReady(const wfm::gui::ModelPtr& model);
    void runFinished(const wfm::gui::RunOutcome& outcome, const wfm::gui::ModelPtr& model);
    void trainingFailed(const QString& message);
    void runningChanged(bool running);
    void pausedChanged(bool paused);

private:
    TrainingWorker* createWorker();

    QThread* m_thread = nullptr;
    QPointer<TrainingWorker> m_worker;
    bool m_running = false;
    bool m_paused = false;
};

} // namespace wfm::gui
