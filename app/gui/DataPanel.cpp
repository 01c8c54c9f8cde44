#include "DataPanel.h"

#include "wfm/widgets/GalleryView.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

namespace wfm::gui {

namespace {
constexpr int kPreviewClouds = 6;
constexpr int kGalleryClouds = 400;
constexpr int kMaxRecent = 10;
const char* kRecentKey = "data/recent";
}

DataPanel::DataPanel(QWidget* parent)
    : QWidget(parent)
{
    qRegisterMetaType<wfm::gui::LoadedData>();
    auto* layout = new QVBoxLayout(this);

    auto* specRow = new QHBoxLayout;
    m_spec = new QLineEdit(this);
    m_spec->setObjectName(QStringLiteral("dataSpec"));
    m_spec->setPlaceholderText(QStringLiteral("builtin:rings?count=500, npz:FILE, mesh:FILE, h5ad:FILE, ..."));
    m_spec->setToolTip(tr("Data SPEC, as the CLI's --data takes it. Enter loads it."));
    m_load = new QPushButton(tr("Load"), this);
    m_load->setObjectName(QStringLiteral("loadData"));
    specRow->addWidget(m_spec, 1);
    specRow->addWidget(m_load);
    layout->addLayout(specRow);

    auto* openRow = new QHBoxLayout;
    auto* openFileButton = new QPushButton(tr("Open file…"), this);
    auto* openFolderButton = new QPushButton(tr("Open folder…"), this);
    openRow->addWidget(openFileButton);
    openRow->addWidget(openFolderButton);
    layout->addLayout(openRow);

    m_recent = new QComboBox(this);
    m_recent->setObjectName(QStringLiteral("recentData"));
    m_recent->setToolTip(tr("Recently loaded data"));
    layout->addWidget(new QLabel(tr("Recent:"), this));
    layout->addWidget(m_recent);

    layout->addWidget(new QLabel(tr("Built-in families (double-click to load):"), this));
    m_builtins = new QListWidget(this);
    m_builtins->setObjectName(QStringLiteral("builtinList"));
    m_builtins->addItems(builtinSpecs());
    m_builtins->setMaximumHeight(150);
    layout->addWidget(m_builtins);

    auto* busyRow = new QHBoxLayout;
    m_busy = new QProgressBar(this);
    m_busy->setRange(0, 0);
    m_busy->setVisible(false);
    m_busy->setFormat(tr("Loading…"));
    m_cancel = new QPushButton(tr("Cancel"), this);
    m_cancel->setObjectName(QStringLiteral("cancelLoad"));
    m_cancel->setVisible(false);
    busyRow->addWidget(m_busy, 1);
    busyRow->addWidget(m_cancel);
    layout->addLayout(busyRow);

    m_summary = new QPlainTextEdit(this);
    m_summary->setObjectName(QStringLiteral("dataSummary"));
    m_summary->setReadOnly(true);
    m_summary->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_summary->setPlaceholderText(tr("No data loaded"));
    layout->addWidget(m_summary, 1);

    m_gallery = new wfm::GalleryView(this);
    m_gallery->setObjectName(QStringLiteral("dataGallery"));
    m_gallery->setToolTip(tr("The first samples of the data (up to 400; thumbnails are drawn as they scroll into view). "
                             "Geodesics use the clouds shown in the 3-D view, numbered row by row."));
    layout->addWidget(m_gallery, 2);

    auto* geoRow = new QHBoxLayout;
    m_geoFrom = new QSpinBox(this);
    m_geoFrom->setObjectName(QStringLiteral("geodesicFrom"));
    m_geoTo = new QSpinBox(this);
    m_geoTo->setObjectName(QStringLiteral("geodesicTo"));
    m_geoTo->setValue(1);
    m_geodesic = new QPushButton(tr("Geodesic"), this);
    m_geodesic->setObjectName(QStringLiteral("geodesic"));
    m_geodesic->setToolTip(tr("Wasserstein geodesic between two of the distributions shown (numbered from 0, "
                              "row by row): play or scrub it on the Generate tab's timeline"));
    m_geodesic->setEnabled(false);
    geoRow->addWidget(new QLabel(tr("From"), this));
    geoRow->addWidget(m_geoFrom);
    geoRow->addWidget(new QLabel(tr("to"), this));
    geoRow->addWidget(m_geoTo);
    geoRow->addWidget(m_geodesic, 1);
    layout->addLayout(geoRow);

    connect(m_load, &QPushButton::clicked, this, [this] { load(m_spec->text()); });
    connect(m_spec, &QLineEdit::returnPressed, this, [this] { load(m_spec->text()); });
    connect(m_builtins, &QListWidget::itemActivated, this, [this](QListWidgetItem* item) {
        m_spec->setText(item->text());
        load(item->text());
    });
    connect(m_builtins, &QListWidget::currentTextChanged, m_spec, &QLineEdit::setText);
    connect(openFileButton, &QPushButton::clicked, this, &DataPanel::openFile);
    connect(openFolderButton, &QPushButton::clicked, this, &DataPanel::openFolder);
    connect(m_recent, &QComboBox::activated, this, [this](int index) {
        if (index > 0) {
            const QString spec = m_recent->itemText(index);
            m_spec->setText(spec);
            load(spec);
        }
    });
    connect(m_cancel, &QPushButton::clicked, this, &DataPanel::cancelLoad);
    connect(m_geodesic, &QPushButton::clicked, this, [this] { computeGeodesic(m_geoFrom->value(), m_geoTo->value()); });
    connect(&m_geoWatcher, &QFutureWatcher<Samples>::finished, this, [this] {
        m_geodesic->setEnabled(true);
        const Samples s = m_geoWatcher.result();
        if (!s.error.isEmpty()) {
            Q_EMIT loadFailed(tr("Geodesic: %1").arg(s.error));
            return;
        }
        Q_EMIT geodesicReady(s, tr("Geodesic %1 → %2 (%3 s)").arg(m_geoFrom->value()).arg(m_geoTo->value()).arg(s.seconds, 0, 'f', 2));
    });
    refreshRecent();
}

DataPanel::~DataPanel()
{
    m_geoWatcher.waitForFinished();
}

void DataPanel::computeGeodesic(int i, int j)
{
    if (m_data.spec.isEmpty() || m_geoWatcher.isRunning()) {
        return;
    }
    m_geoFrom->setValue(i);
    m_geoTo->setValue(j);
    m_geodesic->setEnabled(false);
    const LoadedData data = m_data;
    m_geoWatcher.setFuture(QtConcurrent::run([data, i, j] {
        try {
            return geodesic(data, i, j, 51);
        } catch (const std::exception& e) {
            Samples failed;
            failed.error = errorMessage(e);
            return failed;
        }
    }));
}

QString DataPanel::spec() const
{
    return m_spec->text().trimmed();
}

bool DataPanel::isLoading() const
{
    return m_loading;
}

void DataPanel::setBusy(bool busy)
{
    if (busy == m_loading) {
        return;
    }
    m_loading = busy;
    m_busy->setVisible(busy);
    m_cancel->setVisible(busy);
    Q_EMIT loadingChanged(busy);
}

void DataPanel::cancelLoad()
{
    if (!m_loading) {
        return;
    }
    ++m_loadId; // the running task's result is now stale
    setBusy(false);
    m_summary->setPlainText(tr("Loading %1 was cancelled").arg(m_loadingSpec));
}

void DataPanel::load(const QString& specText)
{
    const QString spec = specText.trimmed();
    if (spec.isEmpty()) {
        return;
    }
    m_spec->setText(spec);
    m_loadingSpec = spec;
    m_summary->setPlainText(tr("Loading %1 …").arg(spec));
    const quint64 id = ++m_loadId;
    setBusy(true);
    // One watcher per load (jobs tagged with ids): a newer load or a cancel makes older results stale.
    auto* watcher = new QFutureWatcher<LoadedData>(this);
    connect(watcher, &QFutureWatcher<LoadedData>::finished, this, [this, watcher, id] { finished(watcher, id); });
    watcher->setFuture(QtConcurrent::run([spec] {
        try {
            return loadData(spec, kPreviewClouds, kGalleryClouds);
        } catch (const std::exception& e) {
            LoadedData failed;
            failed.spec = spec;
            failed.error = errorMessage(e);
            return failed;
        }
    }));
}

void DataPanel::finished(QFutureWatcher<LoadedData>* watcher, quint64 id)
{
    watcher->deleteLater();
    if (id != m_loadId) {
        return; // cancelled or replaced by a newer load
    }
    setBusy(false);
    LoadedData result = watcher->result();
    if (!result.error.isEmpty()) {
        const QString message = tr("Could not load %1:\n%2").arg(m_loadingSpec, result.error);
        m_summary->setPlainText(message);
        Q_EMIT loadFailed(message);
        return;
    }
    m_data = std::move(result);
    const int shown = m_data.gaussian ? m_data.gaussians.count : m_data.clouds.count;
    m_geoFrom->setRange(0, std::max(0, shown - 1));
    m_geoTo->setRange(0, std::max(0, shown - 1));
    m_geoTo->setValue(std::min(1, shown - 1));
    m_geodesic->setEnabled(shown >= 2);
    QString text = m_data.summary;
    text += tr("\nloaded in %1 s").arg(m_data.seconds, 0, 'f', 2);
    m_summary->setPlainText(QStringLiteral("%1\n%2").arg(m_data.spec, text));
    addRecent(m_data.spec);
    if (m_data.gaussian) {
        m_gallery->setGaussians(m_data.gaussians);
    } else {
        m_gallery->setClouds(m_data.gallery);
    }
    Q_EMIT dataLoaded(m_data);
}

void DataPanel::openFile()
{
    QSettings settings;
    const QString dir = settings.value(QStringLiteral("data/lastDir"), QDir::homePath()).toString();
    const QString path = QFileDialog::getOpenFileName(this, tr("Open data"), dir,
        tr("Data (*.npz *.npy *.obj *.ply *.stl *.off *.gltf *.glb *.h5ad *.csv *.png *-ubyte *-ubyte.gz *.idx);;All files (*)"));
    if (path.isEmpty()) {
        return;
    }
    settings.setValue(QStringLiteral("data/lastDir"), QFileInfo(path).absolutePath());
    load(specForPath(path));
}

void DataPanel::openFolder()
{
    QSettings settings;
    const QString dir = settings.value(QStringLiteral("data/lastDir"), QDir::homePath()).toString();
    const QString path = QFileDialog::getExistingDirectory(this, tr("Open data folder"), dir);
    if (path.isEmpty()) {
        return;
    }
    settings.setValue(QStringLiteral("data/lastDir"), path);
    load(specForPath(path));
}

void DataPanel::addRecent(const QString& spec)
{
    QSettings settings;
    QStringList recent = settings.value(QLatin1String(kRecentKey)).toStringList();
    recent.removeAll(spec);
    recent.prepend(spec);
    while (recent.size() > kMaxRecent) {
        recent.removeLast();
    }
    settings.setValue(QLatin1String(kRecentKey), recent);
    refreshRecent();
}

void DataPanel::refreshRecent()
{
    m_recent->clear();
    m_recent->addItem(tr("(choose)"));
    m_recent->addItems(QSettings().value(QLatin1String(kRecentKey)).toStringList());
}

} // namespace wfm::gui
