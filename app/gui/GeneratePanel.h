#pragma once

#include "engine/Engine.h"

#include <QFutureWatcher>
#include <QTimer>
#include <QWidget>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QSlider;
class QSpinBox;
class QToolButton;

namespace wfm {
class GalleryView;
}

namespace wfm::gui {

/// Generate: count, label, guidance, integrator, steps and seed; generation (with trajectory)
/// runs in a background task; a timeline (play / pause, loop, speed, scrub) walks the
/// trajectory, from noise (t = 0) to data (t = 1). Samples export to .npz, .ply (point clouds)
/// or .csv here; videos are exported by the main window (they need the view).
class GeneratePanel : public QWidget
{
    Q_OBJECT
public:
    explicit GeneratePanel(QWidget* parent = nullptr);
    ~GeneratePanel() override;

    /// The model to generate from (from training or a run folder).
    void setModel(const ModelPtr& model, const QString& origin);
    ModelPtr model() const { return m_model; }

    void setCount(int count);
    void setSteps(int steps);
    /// Starts a generation in the background; false when there is no model or one is running.
    bool generate();
    bool isGenerating() const;

    /// Shows `samples` (e.g. a geodesic) on the timeline, from its first frame.
    void setSamples(const Samples& samples, const QString& what);
    const Samples& samples() const { return m_samples; }
    int frameCount() const { return m_samples.frameCount(); }
    int currentFrame() const;
    void setFrame(int frame);
    void setPlaying(bool playing);
    bool isPlaying() const { return m_timer.isActive(); }
    /// Writes the final samples to `path` in the format its suffix names (npz, ply, csv; see
    /// writeSamples), atomically. Reports success by statusMessage and failure (unknown suffix,
    /// PLY of Gaussians, nothing to write, an unwritable path) by errorOccurred; returns whether
    /// the file was written.
    bool exportSamplesTo(const QString& path);
    /// Thumbnails of the last generated samples.
    wfm::GalleryView* gallery() const { return m_gallery; }

Q_SIGNALS:
    /// Frame `frame` of `samples` should be shown (-1: the final samples, no trajectory).
    void frameChanged(const wfm::gui::Samples& samples, int frame);
    void samplesReady(const wfm::gui::Samples& samples);
    void exportVideoRequested();
    void statusMessage(const QString& message);
    void errorOccurred(const QString& title, const QString& message);

private:
    void finished();
    void loadRun();
    void exportSamples();
    void advance();
    void updateControls();

    ModelPtr m_model;
    Samples m_samples;
    QFutureWatcher<Samples> m_watcher;
    QTimer m_timer;
    wfm::GalleryView* m_gallery = nullptr;
    QLabel* m_modelLabel = nullptr;
    QSpinBox* m_count = nullptr;
    QComboBox* m_label = nullptr;
    QDoubleSpinBox* m_guidance = nullptr;
    QComboBox* m_integrator = nullptr;
    QSpinBox* m_steps = nullptr;
    QSpinBox* m_seed = nullptr;
    QPushButton* m_generate = nullptr;
    QToolButton* m_play = nullptr;
    QCheckBox* m_loop = nullptr;
    QComboBox* m_speed = nullptr;
    QSlider* m_slider = nullptr;
    QLabel* m_frameLabel = nullptr;
    QPushButton* m_exportVideo = nullptr;
    QPushButton* m_exportSamples = nullptr;
};

} // namespace wfm::gui
