#include "MainWindow.h"

#include "DataPanel.h"
#include "DemoData.h"
#include "ExportDialog.h"
#include "EvaluatePanel.h"
#include "GeneratePanel.h"
#include "ImageExport.h"
#include "SampleLayout.h"
#include "TrainingController.h"
#include "TrainingPanel.h"
#include "VideoExport.h"
#include "engine/Engine.h"
#include "wfm/widgets/CloudScene.h"
#include "wfm/widgets/GaussianScene.h"
#include "wfm/widgets/LinesScene.h"
#include "wfm/widgets/VtkViewport.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QFutureWatcher>
#include <QKeySequence>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressDialog>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QtConcurrent/QtConcurrentRun>
#include <QUrl>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace wfm {

namespace {

/// Name of coordinate `a` of `dim`-dimensional data, as View > Colour by and the scalar bar show it.
QString featureName(int a, int dim)
{
    if (dim <= 3) {
        return QString(QLatin1Char("xyz"[a]));
    }
    return MainWindow::tr("Feature %1").arg(a + 1);
}

/// Per coordinate, [min, max] over the live points of every snapshot of `over` with the
/// dimension of the first ({0, 0} where there is none).
std::vector<std::pair<double, double>> coordinateRanges(const std::vector<const CloudSnapshot*>& over)
{
    if (over.empty() || over.front()->dim <= 0) {
        return {};
    }
    const int dim = over.front()->dim;
    std::vector<float> lo(static_cast<size_t>(dim), std::numeric_limits<float>::infinity());
    std::vector<float> hi(static_cast<size_t>(dim), -std::numeric_limits<float>::infinity());
    for (const CloudSnapshot* s : over) {
        if (s->dim != dim) {
            continue;
        }
        const size_t cells = static_cast<size_t>(s->count) * static_cast<size_t>(s->maxPoints);
        for (size_t p = 0; p < cells; ++p) {
            if (!(s->weights[p] > 0.0f)) {
                continue;
            }
            const float* x = s->points.data() + p * static_cast<size_t>(dim);
            for (int a = 0; a < dim; ++a) {
                if (std::isfinite(x[a])) {
                    lo[static_cast<size_t>(a)] = std::min(lo[static_cast<size_t>(a)], x[a]);
                    hi[static_cast<size_t>(a)] = std::max(hi[static_cast<size_t>(a)], x[a]);
                }
            }
        }
    }
    std::vector<std::pair<double, double>> ranges(static_cast<size_t>(dim), { 0.0, 0.0 });
    for (size_t a = 0; a < ranges.size(); ++a) {
        if (lo[a] <= hi[a]) {
            ranges[a] = { lo[a], hi[a] };
        }
    }
    return ranges;
}

} // namespace

bool parseDemoScene(const QString& name, DemoScene* scene)
{
    const QString n = name.trimmed().toLower();
    if (n == QLatin1String("shapes")) {
        *scene = DemoScene::Shapes;
    } else if (n == QLatin1String("gaussians")) {
        *scene = DemoScene::Gaussians;
    } else if (n == QLatin1String("ellipsoids")) {
        *scene = DemoScene::Ellipsoids;
    } else if (n == QLatin1String("correspondence")) {
        *scene = DemoScene::Correspondence;
    } else {
        return false;
    }
    return true;
}

struct MainWindow::Private
{
    bool persistGeometry = true;
    VtkViewport* viewport = nullptr;
    CloudScene clouds;
    GaussianScene gaussians;
    LinesScene lines; ///< transport lines x -> T(x) of a geodesic
    QAction* transportLines = nullptr;
    // View > Colour by: one exclusive choice.
    QMenu* colourMenu = nullptr;
    QActionGroup* colourBy = nullptr;
    /// Coordinate chosen for colours in the last session, applied once data has it (-1: none).
    int pendingFeature = -1;
    /// The status bar's text while data loads (cleared when the load ends).
    QString loadingMessage;
    /// Coordinates shown of data with more than 3, and the menu entry that chooses them.
    std::array<int, 3> axes { 0, 1, 2 };
    QAction* chooseAxes = nullptr;
    QAction* colourLabel = nullptr;
    QAction* correspondence = nullptr;
    std::vector<QAction*> features; ///< one per coordinate of the clouds shown
    bool updatingColourMenu = false;
    /// The clouds shown, in data units (before the grid layout), and per coordinate the range
    /// of the colour map (the shown data, or every frame of the shown samples).
    CloudSnapshot colourSource;
    std::vector<std::pair<double, double>> featureRanges;
    enum class Showing
    {
        Nothing,
        Demo,
        Data,
        Samples
    };
    Showing showing = Showing::Nothing;
    bool correspondenceDemo = false;
    QAction* mode2D = nullptr;
    QAction* animate = nullptr;
    QMetaObject::Connection animation;
    QElapsedTimer animationClock;
    double phase = 0.0;
    int framesSinceReport = 0;
    qint64 lastReportMs = 0;
    DemoScene demo = DemoScene::Shapes;
    bool demoShown = false;

    QTabWidget* tabs = nullptr;
    gui::DataPanel* data = nullptr;
    gui::TrainingPanel* training = nullptr;
    gui::GeneratePanel* generate = nullptr;
    gui::EvaluatePanel* evaluate = nullptr;
    QFutureWatcher<gui::Samples> preview;
    gui::ModelPtr pendingPreview; ///< newest weights waiting for the running preview to end
    bool interactive = true;
    bool closing = false;
    /// Grid of the shown generation (fixed over its trajectory so motion stays visible).
    GridLayout grid;
    qint64 gridSerial = -1;
    qint64 samplesSerial = 0;
};

MainWindow::MainWindow(bool persistGeometry, QWidget* parent)
    : QMainWindow(parent)
    , d(std::make_unique<Private>())
{
    d->persistGeometry = persistGeometry;
    setWindowTitle(tr("WFM Studio"));

    d->viewport = new VtkViewport(this);
    setCentralWidget(d->viewport);
    d->clouds.attach(d->viewport);
    d->gaussians.attach(d->viewport);
    d->lines.attach(d->viewport);

    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* openAction = file->addAction(tr("&Open data…"));
    openAction->setShortcut(QKeySequence::Open);
    connect(openAction, &QAction::triggered, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open data"),
            QSettings().value(QStringLiteral("data/lastDir"), QDir::homePath()).toString());
        if (!path.isEmpty()) {
            QSettings().setValue(QStringLiteral("data/lastDir"), QFileInfo(path).absolutePath());
            showPanel(0);
            d->data->load(gui::specForPath(path));
        }
    });
    QAction* videoAction = file->addAction(tr("Export &video…"));
    videoAction->setShortcut(QKeySequence(tr("Ctrl+Shift+E")));
    connect(videoAction, &QAction::triggered, this, &MainWindow::exportVideoInteractive);
    QAction* exportAction = file->addAction(tr("&Export screenshot…"));
    exportAction->setShortcut(QKeySequence(tr("Ctrl+E")));
    connect(exportAction, &QAction::triggered, this, &MainWindow::exportScreenshot);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"));
    quit->setShortcut(QKeySequence::Quit);
    quit->setMenuRole(QAction::QuitRole);
    connect(quit, &QAction::triggered, this, &QWidget::close);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    QAction* reset = view->addAction(tr("&Reset camera"));
    reset->setShortcut(QKeySequence(tr("Ctrl+R")));
    connect(reset, &QAction::triggered, d->viewport, &VtkViewport::resetCamera);
    view->addSeparator();
    auto* modes = new QActionGroup(this);
    d->mode2D = view->addAction(tr("&2D"));
    QAction* mode3D = view->addAction(tr("&3D"));
    d->mode2D->setCheckable(true);
    mode3D->setCheckable(true);
    modes->addAction(d->mode2D);
    modes->addAction(mode3D);
    mode3D->setChecked(true);
    connect(d->mode2D, &QAction::triggered, this, [this] { d->viewport->set2DMode(true); });
    connect(mode3D, &QAction::triggered, this, [this] { d->viewport->set2DMode(false); });
    view->addSeparator();
    d->transportLines = view->addAction(tr("&Transport lines"));
    d->transportLines->setObjectName(QStringLiteral("transportLines"));
    d->transportLines->setToolTip(tr("In a geodesic: lines from each point x of the start to its image T(x)"));
    d->transportLines->setCheckable(true);
    d->transportLines->setShortcut(QKeySequence(tr("Ctrl+L")));
    d->colourMenu = view->addMenu(tr("&Colour by"));
    d->colourMenu->setObjectName(QStringLiteral("colourByMenu"));
    d->colourMenu->setToolTipsVisible(true);
    d->colourBy = new QActionGroup(this);
    d->colourBy->setExclusionPolicy(QActionGroup::ExclusionPolicy::Exclusive);
    d->colourLabel = d->colourMenu->addAction(tr("&Label"));
    d->colourLabel->setObjectName(QStringLiteral("colourByLabel"));
    d->colourLabel->setToolTip(tr("Colour each cloud by its label, with a legend"));
    d->correspondence = d->colourMenu->addAction(tr("&Correspondence"));
    d->correspondence->setObjectName(QStringLiteral("colourByCorrespondence"));
    d->correspondence->setToolTip(tr("In a geodesic: colour each moving point by where it started (the start "
                                     "and the interpolant are shown, the end is hidden)"));
    for (QAction* a : { d->colourLabel, d->correspondence }) {
        a->setCheckable(true);
        d->colourBy->addAction(a);
        connect(a, &QAction::toggled, this, &MainWindow::colourChoiceToggled);
    }
    d->colourLabel->setChecked(true);
    d->colourMenu->addSeparator();
    d->chooseAxes = view->addAction(tr("Shown &coordinates…"));
    d->chooseAxes->setObjectName(QStringLiteral("chooseShownCoordinates"));
    d->chooseAxes->setToolTip(tr("For data with more than 3 coordinates (e.g. niches in PC space): which three "
                                 "the 3-D view shows"));
    d->chooseAxes->setEnabled(false);
    connect(d->chooseAxes, &QAction::triggered, this, &MainWindow::chooseShownCoordinates);
    auto redrawGeodesic = [this] {
        if (d->generate->samples().overlay) {
            d->gridSerial = -1; // re-apply colours
            showSamples(d->generate->samples(), d->generate->currentFrame());
        }
    };
    connect(d->transportLines, &QAction::toggled, this, redrawGeodesic);
    connect(d->viewport, &VtkViewport::modeChanged, this, [this, mode3D](bool twoD) {
        d->mode2D->setChecked(twoD);
        mode3D->setChecked(!twoD);
    });

    QMenu* demo = menuBar()->addMenu(tr("&Demo"));
    const std::pair<QString, DemoScene> demos[] = {
        { tr("3-D &shapes (point clouds)"), DemoScene::Shapes },
        { tr("2-D &Gaussian mixture"), DemoScene::Gaussians },
        { tr("3-D &ellipsoids"), DemoScene::Ellipsoids },
        { tr("&Correspondence colours"), DemoScene::Correspondence },
    };
    for (const auto& [text, scene] : demos) {
        const DemoScene which = scene;
        connect(demo->addAction(text), &QAction::triggered, this, [this, which] { showDemo(which); });
    }
    demo->addSeparator();
    d->animate = demo->addAction(tr("&Animate ellipsoids"));
    d->animate->setCheckable(true);
    connect(d->animate, &QAction::toggled, this, &MainWindow::setAnimating);

    statusBar()->showMessage(tr("No data loaded. Pick a dataset in the Data panel, drop a file, or try the Demo menu."));

    // Panels: Data, Training, Generate in one dock beside the view.
    d->tabs = new QTabWidget(this);
    d->tabs->setObjectName(QStringLiteral("panels"));
    d->data = new gui::DataPanel(d->tabs);
    d->training = new gui::TrainingPanel(d->tabs);
    d->generate = new gui::GeneratePanel(d->tabs);
    d->tabs->addTab(d->data, tr("&Data"));
    d->tabs->addTab(d->training, tr("&Training"));
    d->tabs->addTab(d->generate, tr("&Generate"));
    d->evaluate = new gui::EvaluatePanel(d->generate, d->tabs);
    d->tabs->addTab(d->evaluate, tr("&Evaluate"));
    auto* dock = new QDockWidget(tr("Workflow"), this);
    dock->setObjectName(QStringLiteral("workflowDock"));
    dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    dock->setWidget(d->tabs);
    dock->setMinimumWidth(430);
    addDockWidget(Qt::LeftDockWidgetArea, dock);
    setAcceptDrops(true);

    connect(d->data, &gui::DataPanel::dataLoaded, this, &MainWindow::showData);
    connect(d->data, &gui::DataPanel::geodesicReady, this, [this](const gui::Samples& s, const QString& what) {
        d->generate->setSamples(s, what);
    });
    connect(d->data, &gui::DataPanel::loadFailed, this, [this](const QString& m) { showError(tr("Load data"), m); });
    connect(d->data, &gui::DataPanel::loadingChanged, this, [this](bool loading) {
        if (loading) {
            d->loadingMessage = tr("Loading %1 …").arg(d->data->spec());
            statusBar()->showMessage(d->loadingMessage);
        } else if (statusBar()->currentMessage() == d->loadingMessage) {
            // Finished, failed or cancelled: the panel says which; the bar no longer claims a load.
            statusBar()->clearMessage();
        }
    });
    connect(d->training, &gui::TrainingPanel::statusMessage, this, [this](const QString& m) { statusBar()->showMessage(m); });
    connect(d->training, &gui::TrainingPanel::errorOccurred, this, &MainWindow::showError);
    connect(d->generate, &gui::GeneratePanel::statusMessage, this, [this](const QString& m) { statusBar()->showMessage(m, 8000); });
    connect(d->generate, &gui::GeneratePanel::errorOccurred, this, &MainWindow::showError);
    connect(d->generate, &gui::GeneratePanel::frameChanged, this, &MainWindow::showSamples);
    connect(d->generate, &gui::GeneratePanel::samplesReady, this, [this] { ++d->samplesSerial; });
    connect(d->evaluate, &gui::EvaluatePanel::statusMessage, this, [this](const QString& m) { statusBar()->showMessage(m, 8000); });
    connect(d->evaluate, &gui::EvaluatePanel::errorOccurred, this, &MainWindow::showError);
    connect(d->generate, &gui::GeneratePanel::exportVideoRequested, this, &MainWindow::exportVideoInteractive);

    gui::TrainingController* controller = d->training->controller();
    connect(controller, &gui::TrainingController::runFinished, this,
        [this](const gui::RunOutcome& o, const gui::ModelPtr& model) {
            if (model) {
                d->generate->setModel(model, tr("trained, %1").arg(QDir::toNativeSeparators(d->training->lastRunDir())));
            }
            if (d->closing) {
                close();
            }
        });
    connect(controller, &gui::TrainingController::trainingFailed, this, [this] {
        if (d->closing) {
            close();
        }
    });
    // Live samples: every sample_every steps the worker hands out a copy of the weights; a few
    // samples are generated in a background task (the newest weights win when one is running).
    auto startPreview = [this](const gui::ModelPtr& model) {
        gui::GenerateOptions o;
        o.count = 4;
        o.steps = 20;
        o.trajectory = false;
        d->preview.setFuture(QtConcurrent::run([model, o] {
            try {
                return gui::generate(*model, o);
            } catch (const std::exception& e) {
                gui::Samples failed;
                failed.error = gui::errorMessage(e);
                return failed;
            }
        }));
    };
    connect(controller, &gui::TrainingController::previewModelReady, this, [this, startPreview](const gui::ModelPtr& m) {
        if (d->preview.isRunning()) {
            d->pendingPreview = m;
        } else {
            startPreview(m);
        }
    });
    connect(&d->preview, &QFutureWatcher<gui::Samples>::finished, this, [this, startPreview] {
        const gui::Samples s = d->preview.result();
        if (!s.error.isEmpty()) {
            statusBar()->showMessage(tr("Live samples failed: %1").arg(s.error), 5000);
        } else if (d->training->controller()->isRunning() && d->generate->frameCount() == 0) {
            // Live samples show while training runs and no generated trajectory is being watched.
            ++d->samplesSerial;
            showSamples(s, -1);
            statusBar()->showMessage(tr("Live samples at step %1").arg(s.modelStep), 3000);
        }
        if (d->pendingPreview) {
            const gui::ModelPtr next = std::move(d->pendingPreview);
            d->pendingPreview.reset();
            startPreview(next);
        }
    });

    if (d->persistGeometry) {
        QSettings settings;
        // Colour choice of the last session: labels, correspondence or "feature:N" (restored
        // when data with at least N + 1 coordinates is shown).
        const QString colour = settings.value(QStringLiteral("view/colourBy")).toString();
        if (colour == QLatin1String("correspondence")) {
            d->correspondence->setChecked(true);
        } else if (colour.startsWith(QLatin1String("feature:"))) {
            d->pendingFeature = colour.mid(8).toInt();
        }
        const QByteArray geometry = settings.value(QStringLiteral("mainWindow/geometry")).toByteArray();
        if (geometry.isEmpty() || !restoreGeometry(geometry)) {
            resize(1100, 800);
        }
    } else {
        resize(1100, 800);
    }
}

MainWindow::~MainWindow()
{
    disconnect(d->animation);
    d->training->controller()->stopAndWait(-1);
    d->preview.waitForFinished();
    // Scenes detach from the viewport before it is destroyed with the window's children.
    d->clouds.detach();
    d->gaussians.detach();
}

VtkViewport* MainWindow::viewport() const
{
    return d->viewport;
}

const CloudScene& MainWindow::cloudScene() const
{
    return d->clouds;
}

void MainWindow::setFeatureCount(int dim)
{
    dim = std::max(0, dim);
    d->chooseAxes->setEnabled(dim > 3);
    if (dim == static_cast<int>(d->features.size())) {
        return;
    }
    const int chosen = chosenFeature();
    // No redraws while the entries change: the caller shows the new clouds next.
    d->updatingColourMenu = true;
    for (QAction* a : d->features) {
        d->colourBy->removeAction(a);
        delete a;
    }
    d->features.clear();
    for (int a = 0; a < dim; ++a) {
        QAction* action = d->colourMenu->addAction(featureName(a, dim));
        action->setObjectName(QStringLiteral("colourByFeature%1").arg(a));
        action->setToolTip(tr("Colour each point by its coordinate %1 (data units), with a scalar bar")
                               .arg(featureName(a, dim)));
        action->setCheckable(true);
        action->setData(a);
        d->colourBy->addAction(action);
        connect(action, &QAction::toggled, this, &MainWindow::colourChoiceToggled);
        d->features.push_back(action);
    }
    if (chosen >= 0) {
        // The same coordinate if the new data has it, else labels.
        (chosen < dim ? d->features[static_cast<size_t>(chosen)] : d->colourLabel)->setChecked(true);
    } else if (d->pendingFeature >= 0 && d->pendingFeature < dim && d->colourLabel->isChecked()) {
        // The coordinate chosen in the last session, once data has it.
        d->features[static_cast<size_t>(d->pendingFeature)]->setChecked(true);
        d->pendingFeature = -1;
    }
    d->updatingColourMenu = false;
}

int MainWindow::chosenFeature() const
{
    for (size_t a = 0; a < d->features.size(); ++a) {
        if (d->features[a]->isChecked()) {
            return static_cast<int>(a);
        }
    }
    return -1;
}

void MainWindow::colourChoiceToggled(bool on)
{
    if (d->updatingColourMenu) {
        return;
    }
    if (on) {
        recolour();
        return;
    }
    // Unchecking the chosen entry in code leaves none chosen: back to labels. (When another
    // entry is chosen, the group unchecks this one first; that one already reports checked.)
    const QList<QAction*> entries = d->colourBy->actions();
    if (std::none_of(entries.begin(), entries.end(), [](const QAction* a) { return a->isChecked(); })) {
        d->colourLabel->setChecked(true);
    }
}

void MainWindow::recolour()
{
    if (d->showing == Private::Showing::Samples && d->generate->samples().overlay) {
        // A geodesic shows other clouds with correspondence colours: draw it again.
        d->gridSerial = -1; // re-apply colours
        showSamples(d->generate->samples(), d->generate->currentFrame());
    } else {
        applyColourChoice();
    }
}

void MainWindow::setShownCoordinates(const std::array<int, 3>& axes)
{
    if (axes == d->axes) {
        return;
    }
    d->axes = axes;
    if (d->showing == Private::Showing::Data) {
        showData(d->data->data());
    } else if (d->showing == Private::Showing::Samples && !d->generate->samples().gaussian) {
        d->gridSerial = -1; // a new grid for the new coordinates
        showSamples(d->generate->samples(), d->generate->currentFrame());
        d->viewport->resetCamera();
    }
}

std::array<int, 3> MainWindow::shownCoordinates() const
{
    return d->axes;
}

void MainWindow::chooseShownCoordinates()
{
    const int dim = d->colourSource.dim;
    if (dim <= 3) {
        return;
    }
    QDialog dialog(this);
    dialog.setWindowTitle(tr("Shown coordinates"));
    auto* form = new QFormLayout(&dialog);
    std::array<QComboBox*, 3> boxes {};
    for (int a = 0; a < 3; ++a) {
        auto* box = new QComboBox(&dialog);
        box->setObjectName(QStringLiteral("axis%1").arg(QLatin1Char("xyz"[a])));
        for (int f = 0; f < dim; ++f) {
            box->addItem(featureName(f, dim), f);
        }
        box->setCurrentIndex(std::clamp(d->axes[static_cast<size_t>(a)], 0, dim - 1));
        form->addRow(tr("%1 axis").arg(QLatin1Char("xyz"[a])), box);
        boxes[static_cast<size_t>(a)] = box;
    }
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
    connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    form->addRow(buttons);
    if (dialog.exec() != QDialog::Accepted) {
        return;
    }
    setShownCoordinates({ boxes[0]->currentData().toInt(), boxes[1]->currentData().toInt(), boxes[2]->currentData().toInt() });
}

void MainWindow::applyColourChoice()
{
    const CloudSnapshot& c = d->colourSource;
    if (c.count == 0 || d->clouds.pointCount() == 0) {
        return;
    }
    const int feature = chosenFeature();
    if (feature >= 0 && feature < c.dim) {
        const size_t cells = static_cast<size_t>(c.count) * static_cast<size_t>(c.maxPoints);
        std::vector<float> values(cells);
        for (size_t p = 0; p < cells; ++p) {
            values[p] = c.points[p * static_cast<size_t>(c.dim) + static_cast<size_t>(feature)];
        }
        const auto range = static_cast<size_t>(feature) < d->featureRanges.size()
            ? d->featureRanges[static_cast<size_t>(feature)]
            : std::pair { 0.0, 0.0 };
        d->clouds.colourByScalar(values, featureName(feature, c.dim), range);
    } else if (d->correspondenceDemo) {
        d->clouds.setCorrespondenceColours(c, 0);
    } else if (d->clouds.colourMode() != CloudScene::ColourMode::Label) {
        d->clouds.colourByLabel();
    }
}

void MainWindow::showDemo(DemoScene scene)
{
    d->demo = scene;
    d->demoShown = true;
    d->showing = Private::Showing::Demo;
    d->correspondenceDemo = false;
    d->colourSource = {};
    if (scene != DemoScene::Ellipsoids) {
        d->animate->setChecked(false);
    }
    switch (scene) {
    case DemoScene::Shapes: {
        const CloudSnapshot shapes = demo::shapeFamily();
        d->gaussians.clear();
        d->colourSource = shapes;
        d->featureRanges = coordinateRanges({ &shapes });
        setFeatureCount(shapes.dim);
        d->clouds.setClouds(shapes, { 0, 1, 2 });
        applyColourChoice();
        d->viewport->set2DMode(false);
        statusBar()->showMessage(tr("Demo: %1 points on a torus, a sphere and a trefoil knot").arg(d->clouds.pointCount()));
        break;
    }
    case DemoScene::Gaussians: {
        d->clouds.clear();
        d->lines.clear();
        d->gaussians.setGaussians(demo::gaussians2D());
        d->viewport->set2DMode(true);
        statusBar()->showMessage(tr("Demo: %1 Gaussians, 2-sigma ellipses").arg(d->gaussians.count()));
        break;
    }
    case DemoScene::Ellipsoids: {
        d->clouds.clear();
        d->lines.clear();
        d->phase = 0.0;
        d->gaussians.setGaussians(demo::ellipsoids3D(60, d->phase));
        d->viewport->set2DMode(false);
        statusBar()->showMessage(tr("Demo: %1 Gaussians, 2-sigma ellipsoids (Demo > Animate)").arg(d->gaussians.count()));
        break;
    }
    case DemoScene::Correspondence: {
        const CloudSnapshot pair = demo::correspondencePair();
        d->gaussians.clear();
        // Correspondence colours unless a coordinate is chosen.
        d->correspondenceDemo = true;
        d->colourSource = pair;
        d->featureRanges = coordinateRanges({ &pair });
        setFeatureCount(pair.dim);
        d->clouds.setClouds(pair, { 0, 1 });
        applyColourChoice();
        d->viewport->set2DMode(true);
        statusBar()->showMessage(tr("Demo: a cloud (left) and its image under a swirl (right); equal colours mark matched points"));
        break;
    }
    }
    d->viewport->resetCamera();
}

void MainWindow::setAnimating(bool on)
{
    if (on && d->demo != DemoScene::Ellipsoids) {
        showDemo(DemoScene::Ellipsoids);
    }
    if (d->animate->isChecked() != on) {
        d->animate->setChecked(on);
        return; // toggled() calls back
    }
    if (on) {
        d->animationClock.start();
        d->lastReportMs = 0;
        d->framesSinceReport = 0;
        // One data update per frame shown: advance whenever the previous frame reached the screen.
        disconnect(d->animation);
        d->animation = connect(d->viewport, &QOpenGLWidget::frameSwapped, this, &MainWindow::advanceAnimation);
        advanceAnimation();
    } else {
        disconnect(d->animation);
    }
}

void MainWindow::advanceAnimation()
{
    d->phase += 0.03;
    d->gaussians.setGaussians(demo::ellipsoids3D(60, d->phase));
    ++d->framesSinceReport;
    const qint64 now = d->animationClock.elapsed();
    if (now - d->lastReportMs >= 1000) {
        const double fps = 1000.0 * d->framesSinceReport / static_cast<double>(now - d->lastReportMs);
        statusBar()->showMessage(tr("Animating %1 ellipsoids: %2 frames/s").arg(d->gaussians.count()).arg(fps, 0, 'f', 1));
        d->lastReportMs = now;
        d->framesSinceReport = 0;
    }
}

void MainWindow::exportScreenshot()
{
    const double dpr = d->viewport->devicePixelRatioF();
    const QSize viewSize(static_cast<int>(std::lround(d->viewport->width() * dpr)),
        static_cast<int>(std::lround(d->viewport->height() * dpr)));
    ExportDialog dialog(viewSize, this);
    if (dialog.exec() != QDialog::Accepted) {
        return;
    }
    QSettings settings;
    const QString lastDir = settings.value(QStringLiteral("export/lastDir"), QDir::homePath()).toString();
    QString path = QFileDialog::getSaveFileName(this, tr("Export screenshot"),
        QDir(lastDir).filePath(QStringLiteral("wfm-screenshot.png")), tr("PNG images (*.png)"));
    if (path.isEmpty()) {
        return;
    }
    if (QFileInfo(path).suffix().isEmpty()) {
        path += QStringLiteral(".png");
    }
    settings.setValue(QStringLiteral("export/lastDir"), QFileInfo(path).absolutePath());
    const QImage image = d->viewport->grabImage(dialog.imageSize(), dialog.transparent());
    const QString error = savePngAtomically(image, path);
    if (!error.isEmpty()) {
        QMessageBox::warning(this, tr("Export screenshot"), tr("Could not save the screenshot:\n%1").arg(error));
        return;
    }
    statusBar()->showMessage(tr("Saved %1 (%2 x %3)").arg(QDir::toNativeSeparators(path)).arg(image.width()).arg(image.height()), 5000);
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    gui::TrainingController* controller = d->training->controller();
    if (controller->isRunning()) {
        if (!d->closing) {
            if (d->interactive
                && QMessageBox::question(this, tr("Training is running"),
                       tr("Stop the training and quit? The last checkpoint is kept.\n\nRun folder: %1")
                           .arg(QDir::toNativeSeparators(d->training->lastRunDir())),
                       QMessageBox::Yes | QMessageBox::Cancel, QMessageBox::Cancel)
                    != QMessageBox::Yes) {
                event->ignore();
                return;
            }
            d->closing = true;
            statusBar()->showMessage(tr("Stopping the training (writing the checkpoint)…"));
            controller->requestStop();
        }
        // The window closes once the worker reports the run ended (runFinished calls close()).
        event->ignore();
        return;
    }
    if (d->persistGeometry) {
        QSettings settings;
        settings.setValue(QStringLiteral("mainWindow/geometry"), saveGeometry());
        const int feature = chosenFeature();
        settings.setValue(QStringLiteral("view/colourBy"),
            feature >= 0                    ? QStringLiteral("feature:%1").arg(feature)
                : d->correspondence->isChecked() ? QStringLiteral("correspondence")
                                                 : QStringLiteral("label"));
    }
    disconnect(d->animation);
    QMainWindow::closeEvent(event);
}

gui::DataPanel* MainWindow::dataPanel() const
{
    return d->data;
}

gui::TrainingPanel* MainWindow::trainingPanel() const
{
    return d->training;
}

gui::EvaluatePanel* MainWindow::evaluatePanel() const
{
    return d->evaluate;
}

gui::GeneratePanel* MainWindow::generatePanel() const
{
    return d->generate;
}

void MainWindow::showPanel(int index)
{
    d->tabs->setCurrentIndex(index);
}

void MainWindow::setInteractive(bool interactive)
{
    d->interactive = interactive;
}

void MainWindow::showError(const QString& title, const QString& message)
{
    statusBar()->showMessage(QStringLiteral("%1: %2").arg(title, message.section(QLatin1Char('\n'), 0, 0)), 10000);
    if (d->interactive && isVisible() && !testAttribute(Qt::WA_DontShowOnScreen)) {
        QMessageBox::warning(this, title, message);
    }
}

void MainWindow::showData(const gui::LoadedData& data)
{
    d->lines.clear();
    d->animate->setChecked(false);
    d->demoShown = false;
    d->training->setDataSpec(data.spec, data.gaussian);
    d->gridSerial = -1;
    d->showing = Private::Showing::Data;
    d->correspondenceDemo = false;
    d->colourSource = {};
    if (data.gaussian) {
        d->clouds.clear();
        d->lines.clear();
        d->gaussians.setGaussians(data.gaussians);
        d->viewport->set2DMode(data.dim <= 2);
    } else {
        d->gaussians.clear();
        const CloudSnapshot view = selectCoordinates(data.clouds, d->axes);
        const CloudSnapshot shown = arrangeInGrid(view, gridFor(view));
        std::vector<int> all(static_cast<size_t>(shown.count));
        for (int k = 0; k < shown.count; ++k) {
            all[static_cast<size_t>(k)] = k;
        }
        d->colourSource = data.clouds;
        d->featureRanges = coordinateRanges({ &data.clouds });
        setFeatureCount(data.clouds.dim);
        d->clouds.setClouds(shown, all);
        applyColourChoice();
        d->viewport->set2DMode(data.dim <= 2);
    }
    d->viewport->resetCamera();
    QStringList labels = data.labelNames;
    if (labels.size() > 8) {
        labels = labels.mid(0, 8) << QStringLiteral("…");
    }
    statusBar()->showMessage(tr("%1: %2 %3 in %4-D%5 (loaded in %6 s)")
                                 .arg(data.spec)
                                 .arg(data.count)
                                 .arg(data.gaussian ? tr("Gaussians") : tr("clouds"))
                                 .arg(data.dim)
                                 .arg(labels.isEmpty() ? QString() : tr(", labels ") + labels.join(QStringLiteral(", ")))
                                 .arg(data.seconds, 0, 'f', 2));
}

void MainWindow::showSamples(const gui::Samples& s, int frame)
{
    d->animate->setChecked(false);
    d->demoShown = false;
    d->showing = Private::Showing::Samples;
    d->correspondenceDemo = false;
    const bool newSamples = d->gridSerial != d->samplesSerial;
    if (s.gaussian) {
        d->colourSource = {};
        const GaussianSnapshot& g = frame >= 0 && frame < static_cast<int>(s.gaussianFrames.size())
            ? s.gaussianFrames[static_cast<size_t>(frame)]
            : s.gaussians;
        d->clouds.clear();
        d->lines.clear();
        try {
            d->gaussians.setGaussians(g);
        } catch (const std::exception& e) {
            statusBar()->showMessage(QString::fromLocal8Bit(e.what()), 5000);
            return;
        }
        if (newSamples) {
            d->gridSerial = d->samplesSerial;
            d->viewport->set2DMode(g.dim <= 2);
            d->viewport->resetCamera();
        }
        return;
    }
    const CloudSnapshot& c = frame >= 0 && frame < static_cast<int>(s.cloudFrames.size())
        ? s.cloudFrames[static_cast<size_t>(frame)]
        : s.clouds;
    if (c.count == 0) {
        return;
    }
    if (newSamples) {
        const CloudSnapshot end = selectCoordinates(s.clouds, d->axes);
        const CloudSnapshot start = s.cloudFrames.empty() ? CloudSnapshot {} : selectCoordinates(s.cloudFrames.front(), d->axes);
        d->grid = gridFor(end, s.cloudFrames.empty() ? nullptr : &start);
        // Coordinate colours keep one range over the whole trajectory.
        std::vector<const CloudSnapshot*> frames { &c };
        if (s.clouds.count > 0) {
            frames.push_back(&s.clouds);
        }
        for (const CloudSnapshot& f : s.cloudFrames) {
            frames.push_back(&f);
        }
        d->featureRanges = coordinateRanges(frames);
    }
    const CloudSnapshot view = selectCoordinates(c, d->axes);
    const CloudSnapshot shown = s.overlay ? view : arrangeInGrid(view, d->grid);
    std::vector<int> all(static_cast<size_t>(shown.count));
    for (int k = 0; k < shown.count; ++k) {
        all[static_cast<size_t>(k)] = k;
    }
    d->gaussians.clear();
    // A geodesic's frames hold start (0), end (1) and the interpolant (2); point i of the
    // interpolant moves from point i of the start to T(x_i), which is point i of the last frame's
    // interpolant.
    const bool geodesic = s.overlay && shown.count == 3 && !s.cloudFrames.empty();
    const bool byCorrespondence = geodesic && d->correspondence->isChecked();
    d->colourSource = c;
    setFeatureCount(c.dim);
    d->clouds.setClouds(shown, byCorrespondence ? std::vector<int> { 0, 2 } : all);
    if (geodesic && d->transportLines->isChecked()) {
        const CloudSnapshot last = selectCoordinates(s.cloudFrames.back(), d->axes);
        const int n = view.liveCount(0);
        const size_t span = static_cast<size_t>(n) * view.dim;
        const float* x = view.cloud(0);
        const float* tx = last.cloud(2);
        d->lines.setSegments(std::vector<float>(x, x + span), std::vector<float>(tx, tx + span), view.dim);
    } else {
        d->lines.clear();
    }
    if (byCorrespondence) {
        d->clouds.setCorrespondenceColours(shown, 0);
    } else {
        applyColourChoice();
    }
    if (newSamples) {
        d->gridSerial = d->samplesSerial;
        d->viewport->set2DMode(c.dim <= 2);
        d->viewport->resetCamera();
    }
}

QString MainWindow::exportImage(const QString& path, QSize size)
{
    const QImage image = d->viewport->grabImage(size, false);
    return savePngAtomically(image, path);
}

QString MainWindow::exportVideo(const QString& path, QSize size, int fps, bool showProgress)
{
    const gui::Samples samples = d->generate->samples();
    const int frames = samples.frameCount();
    if (frames < 1) {
        return tr("nothing to export: generate samples with a trajectory first");
    }
    if (size.isEmpty()) {
        const double dpr = d->viewport->devicePixelRatioF();
        size = QSize(static_cast<int>(std::lround(d->viewport->width() * dpr)),
            static_cast<int>(std::lround(d->viewport->height() * dpr)));
    }
    VideoWriter writer;
    if (!writer.open(path, size, fps)) {
        return writer.error();
    }
    const bool wasPlaying = d->generate->isPlaying();
    d->generate->setPlaying(false);
    const int shownFrame = d->generate->currentFrame();
    std::unique_ptr<QProgressDialog> progress;
    if (showProgress) {
        progress = std::make_unique<QProgressDialog>(tr("Rendering %1 frames…").arg(frames), tr("Cancel"), 0, frames, this);
        progress->setWindowModality(Qt::WindowModal);
        progress->setMinimumDuration(300);
    }
    QString error;
    for (int f = 0; f < frames; ++f) {
        if (progress) {
            progress->setValue(f);
            if (progress->wasCanceled()) {
                error = tr("cancelled");
                break;
            }
        }
        showSamples(samples, f);
        const QImage image = d->viewport->grabImage(writer.size(), false);
        if (image.isNull()) {
            error = tr("rendering frame %1 failed").arg(f);
            break;
        }
        if (!writer.writeFrame(image)) {
            error = writer.error();
            break;
        }
    }
    if (error.isEmpty()) {
        if (progress) {
            progress->setLabelText(tr("Encoding…"));
        }
        if (!writer.finish()) {
            error = writer.error();
        }
    } else {
        writer.cancel();
    }
    if (progress) {
        progress->setValue(frames);
    }
    showSamples(samples, shownFrame);
    d->generate->setPlaying(wasPlaying);
    return error;
}

void MainWindow::exportVideoInteractive()
{
    if (d->generate->frameCount() < 2) {
        showError(tr("Export video"), tr("Generate samples first: the video shows their trajectory from noise to data."));
        return;
    }
    const double dpr = d->viewport->devicePixelRatioF();
    const QSize viewSize(static_cast<int>(std::lround(d->viewport->width() * dpr)),
        static_cast<int>(std::lround(d->viewport->height() * dpr)));
    ExportDialog dialog(viewSize, this);
    dialog.setWindowTitle(tr("Video size"));
    if (dialog.exec() != QDialog::Accepted) {
        return;
    }
    QSettings settings;
    const QString lastDir = settings.value(QStringLiteral("export/lastDir"), QDir::homePath()).toString();
    QString path = QFileDialog::getSaveFileName(this, tr("Export video"),
        QDir(lastDir).filePath(QStringLiteral("wfm-generation.mp4")), tr("MP4 video (*.mp4);;GIF animation (*.gif)"));
    if (path.isEmpty()) {
        return;
    }
    if (QFileInfo(path).suffix().isEmpty()) {
        path += QStringLiteral(".mp4");
    }
    settings.setValue(QStringLiteral("export/lastDir"), QFileInfo(path).absolutePath());
    const QString error = exportVideo(path, dialog.imageSize(), 25, true);
    if (!error.isEmpty()) {
        showError(tr("Export video"), error);
        return;
    }
    statusBar()->showMessage(tr("Saved %1").arg(QDir::toNativeSeparators(path)), 5000);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event)
{
    if (event->mimeData()->hasUrls()) {
        event->acceptProposedAction();
    }
}

void MainWindow::dropEvent(QDropEvent* event)
{
    const QList<QUrl> urls = event->mimeData()->urls();
    if (urls.isEmpty() || !urls.front().isLocalFile()) {
        return;
    }
    showPanel(0);
    d->data->load(gui::specForPath(urls.front().toLocalFile()));
    event->acceptProposedAction();
}

} // namespace wfm
