#pragma once

#include "engine/Engine.h"

#include <QObject>
#include <QString>

#include <memory>

namespace wfm::flow {
class Trainer;
}

namespace wfm::gui {

/// Owns a wfm::flow::Trainer and runs it; lives on a worker QThread (see TrainingController).
/// start()/resumeRun() block that thread until the run ends; pause/resume/stop are thread-safe
/// and take effect between steps. Progress is reported at most ~10 times a second (losses of the
/// steps in between are batched), and every `sample_every` steps a snapshot of the weights is
/// handed out (previewModelReady) for the GUI to sample from in a background task.
class TrainingWorker : public QObject
{
    Q_OBJECT
public:
    TrainingWorker();
    ~TrainingWorker() override;

    /// Thread-safe controls.
    void requestPause();
    void requestResume();
    void requestStop();

public Q_SLOTS:
    /// A new run from a complete config JSON into `runDir` (empty: no files).
    void start(const QString& configJson, const QString& runDir);
    /// Continues the run in `runDir`; steps > 0 replaces the total, device non-empty the device.
    void resumeRun(const QString& runDir, qint64 steps, const QString& device);

Q_SIGNALS:
    void runStarted(const wfm::gui::RunInfo& info);
    void progressChanged(const wfm::gui::ProgressInfo& progress);
    void previewModelReady(const wfm::gui::ModelPtr& model);
    void runFinished(const wfm::gui::RunOutcome& outcome, const wfm::gui::ModelPtr& model);
    void trainingFailed(const QString& message);

private:
    void runTrainer(std::unique_ptr<flow::Trainer> trainer);

    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace wfm::gui
