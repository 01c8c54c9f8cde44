#pragma once

#include "engine/Engine.h"

#include <QWidget>

class QChartView;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QLineSeries;
class QLogValueAxis;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QValueAxis;

namespace wfm::gui {

class TrainingController;

/// Training: the form of the key settings (presets from resources/configs, Load config…),
/// the run folder, Start / Pause / Resume / Stop, Resume run…, and a live loss chart
/// (log-scale, raw and smoothed). Owns the TrainingController.
class TrainingPanel : public QWidget
{
    Q_OBJECT
public:
    explicit TrainingPanel(QWidget* parent = nullptr);
    ~TrainingPanel() override;

    TrainingController* controller() const { return m_controller; }

    /// The data spec training uses (set when data is loaded).
    void setDataSpec(const QString& spec, bool gaussian);
    TrainForm form() const;
    void setForm(const TrainForm& form);
    /// Run folder (empty: a fresh folder under the app's data location).
    void setRunDir(const QString& dir);
    QString runDir() const;

    /// Starts a new run with the form's settings. Returns false (and says why) when the form is
    /// invalid or a run is active.
    bool startTraining();
    void togglePause();
    void stopTraining();
    /// Continues the run in `dir` (from its checkpoint).
    bool resumeRun(const QString& dir);

    /// Takes every setting from a complete config JSON (All settings…): the form's fields and
    /// the rest. Returns "" or the engine's error (naming the section.key).
    QString applyConfigJson(const QString& json);
    /// "" when `json` is a valid training config (as the form would run it), else the error.
    static QString validateConfigJson(const QString& json);

    /// Number of points of the raw loss series (for tests).
    int lossPointCount() const;
    /// The run folder of the last run started.
    QString lastRunDir() const { return m_lastRunDir; }

Q_SIGNALS:
    void statusMessage(const QString& message);
    void errorOccurred(const QString& title, const QString& message);

private:
    void loadPreset(int index);
    void loadConfigFile();
    void editAllSettings();
    void chooseRunDir();
    void chooseResumeRun();
    void onRunStarted(const wfm::gui::RunInfo& info);
    void onProgress(const wfm::gui::ProgressInfo& p);
    void onFinished(const wfm::gui::RunOutcome& outcome);
    void onFailed(const QString& message);
    void updateButtons();
    void clearChart();

    TrainingController* m_controller = nullptr;
    QString m_baseJson;
    QLineEdit* m_spec = nullptr;
    QComboBox* m_preset = nullptr;
    QComboBox* m_kind = nullptr;
    QSpinBox* m_steps = nullptr;
    QSpinBox* m_batch = nullptr;
    QDoubleSpinBox* m_lr = nullptr;
    QSpinBox* m_width = nullptr;
    QSpinBox* m_blocks = nullptr;
    QSpinBox* m_heads = nullptr;
    QComboBox* m_minibatch = nullptr;
    QComboBox* m_map = nullptr;
    QComboBox* m_device = nullptr;
    QSpinBox* m_logEvery = nullptr;
    QSpinBox* m_sampleEvery = nullptr;
    QSpinBox* m_checkpointEvery = nullptr;
    QSpinBox* m_seed = nullptr;
    QLineEdit* m_runDir = nullptr;
    QPushButton* m_start = nullptr;
    QPushButton* m_pause = nullptr;
    QPushButton* m_stop = nullptr;
    QPushButton* m_resumeRun = nullptr;
    QProgressBar* m_progress = nullptr;
    QLabel* m_stats = nullptr;
    QChartView* m_chartView = nullptr;
    QLineSeries* m_loss = nullptr;
    QLineSeries* m_smoothed = nullptr;
    QValueAxis* m_axisX = nullptr;
    QLogValueAxis* m_axisY = nullptr;
    double m_minLoss = 0.0;
    double m_maxLoss = 0.0;
    QString m_lastRunDir;
};

} // namespace wfm::gui
