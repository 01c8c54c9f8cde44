#pragma once

#include "engine/Engine.h"

#include <QFutureWatcher>
#include <QWidget>

class QLabel;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace wfm {
class GalleryView;
}

namespace wfm::gui {

class GeneratePanel;

/// Evaluate: metrics of the current model (the Generate tab's) against the held-out split of
/// its run's data, computed in a background task: 1-NNA, COV and MMD under Chamfer and EMD
/// (clouds) or Bures-Wasserstein (Gaussians), niche label accuracy for niche data; the real
/// and the generated sets side by side as thumbnail galleries.
class EvaluatePanel : public QWidget
{
    Q_OBJECT
public:
    explicit EvaluatePanel(GeneratePanel* generate, QWidget* parent = nullptr);
    ~EvaluatePanel() override;

    /// Starts an evaluation; false when there is no model or one is running.
    bool evaluate();
    bool isEvaluating() const;
    void setMaxReference(int count);
    const Evaluation& result() const { return m_result; }
    QTableWidget* table() const { return m_table; }

Q_SIGNALS:
    void evaluated(const wfm::gui::Evaluation& evaluation);
    void statusMessage(const QString& message);
    void errorOccurred(const QString& title, const QString& message);

protected:
    void showEvent(QShowEvent* event) override;

private:
    void finished();
    void updateControls();

    GeneratePanel* m_generate = nullptr;
    QFutureWatcher<Evaluation> m_watcher;
    Evaluation m_result;
    QSpinBox* m_count = nullptr;
    QSpinBox* m_points = nullptr;
    QPushButton* m_run = nullptr;
    QLabel* m_reference = nullptr;
    QTableWidget* m_table = nullptr;
    wfm::GalleryView* m_real = nullptr;
    wfm::GalleryView* m_generated = nullptr;
};

} // namespace wfm::gui
