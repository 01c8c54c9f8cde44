#pragma once

#include "engine/Engine.h"

#include <QFutureWatcher>
#include <QWidget>

class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace wfm {
class GalleryView;
}

namespace wfm::gui {

/// Data: a SPEC line edit, the built-in families, open file / folder, recent specs (QSettings),
/// loading in a background task with a busy indicator, and a summary of what was loaded.
class DataPanel : public QWidget
{
    Q_OBJECT
public:
    explicit DataPanel(QWidget* parent = nullptr);
    ~DataPanel() override;

    /// Starts loading `spec` in the background. A load started while another runs replaces it
    /// (the older result is dropped when it arrives).
    void load(const QString& spec);
    /// Abandons the running load: the panel is free again and its result will be ignored (the
    /// engine's readers cannot be interrupted, so the task itself runs to its end).
    void cancelLoad();
    bool isLoading() const;
    /// The last dataset loaded (empty spec when none).
    const LoadedData& data() const { return m_data; }
    QString spec() const;

    /// Computes the geodesic between shown distributions i and j in the background.
    void computeGeodesic(int i, int j);

    /// Thumbnails of the first samples of the loaded data.
    wfm::GalleryView* gallery() const { return m_gallery; }

Q_SIGNALS:
    void geodesicReady(const wfm::gui::Samples& samples, const QString& what);
    void dataLoaded(const wfm::gui::LoadedData& data);
    void loadFailed(const QString& message);
    void loadingChanged(bool loading);

private:
    void openFile();
    void openFolder();
    void finished(QFutureWatcher<LoadedData>* watcher, quint64 id);
    void setBusy(bool busy);
    void addRecent(const QString& spec);
    void refreshRecent();

    QLineEdit* m_spec = nullptr;
    QPushButton* m_load = nullptr;
    QPushButton* m_cancel = nullptr;
    QListWidget* m_builtins = nullptr;
    QComboBox* m_recent = nullptr;
    QProgressBar* m_busy = nullptr;
    QPlainTextEdit* m_summary = nullptr;
    QSpinBox* m_geoFrom = nullptr;
    QSpinBox* m_geoTo = nullptr;
    QPushButton* m_geodesic = nullptr;
    wfm::GalleryView* m_gallery = nullptr;
    QFutureWatcher<Samples> m_geoWatcher;
    quint64 m_loadId = 0; ///< id of the load whose result is wanted
    bool m_loading = false;
    LoadedData m_data;
    QString m_loadingSpec;
};

} // namespace wfm::gui
