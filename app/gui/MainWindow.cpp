#include "MainWindow.h"

#include "DemoData.h"
#include "ExportDialog.h"
#include "ImageExport.h"
#include "wfm/widgets/CloudScene.h"
#include "wfm/widgets/GaussianScene.h"
#include "wfm/widgets/VtkViewport.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeySequence>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>

#include <cmath>

namespace wfm {

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
    QAction* mode2D = nullptr;
    QAction* animate = nullptr;
    QMetaObject::Connection animation;
    QElapsedTimer animationClock;
    double phase = 0.0;
    int framesSinceReport = 0;
    qint64 lastReportMs = 0;
    DemoScene demo = DemoScene::Shapes;
    bool demoShown = false;
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

    QMenu* file = menuBar()->addMenu(tr("&File"));
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

    statusBar()->showMessage(tr("No data loaded. Try the Demo menu or start with --demo."));

    if (d->persistGeometry) {
        QSettings settings;
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
    // Scenes detach from the viewport before it is destroyed with the window's children.
    d->clouds.detach();
    d->gaussians.detach();
}

VtkViewport* MainWindow::viewport() const
{
    return d->viewport;
}

void MainWindow::showDemo(DemoScene scene)
{
    d->demo = scene;
    d->demoShown = true;
    if (scene != DemoScene::Ellipsoids) {
        d->animate->setChecked(false);
    }
    switch (scene) {
    case DemoScene::Shapes: {
        const CloudSnapshot shapes = demo::shapeFamily();
        d->gaussians.clear();
        d->clouds.setClouds(shapes, { 0, 1, 2 });
        d->clouds.colourByLabel();
        d->viewport->set2DMode(false);
        statusBar()->showMessage(tr("Demo: %1 points on a torus, a sphere and a trefoil knot").arg(d->clouds.pointCount()));
        break;
    }
    case DemoScene::Gaussians: {
        d->clouds.clear();
        d->gaussians.setGaussians(demo::gaussians2D());
        d->viewport->set2DMode(true);
        statusBar()->showMessage(tr("Demo: %1 Gaussians, 2-sigma ellipses").arg(d->gaussians.count()));
        break;
    }
    case DemoScene::Ellipsoids: {
        d->clouds.clear();
        d->phase = 0.0;
        d->gaussians.setGaussians(demo::ellipsoids3D(60, d->phase));
        d->viewport->set2DMode(false);
        statusBar()->showMessage(tr("Demo: %1 Gaussians, 2-sigma ellipsoids (Demo > Animate)").arg(d->gaussians.count()));
        break;
    }
    case DemoScene::Correspondence: {
        const CloudSnapshot pair = demo::correspondencePair();
        d->gaussians.clear();
        d->clouds.setClouds(pair, { 0, 1 });
        d->clouds.setCorrespondenceColours(pair, 0);
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
    if (d->persistGeometry) {
        QSettings settings;
        settings.setValue(QStringLiteral("mainWindow/geometry"), saveGeometry());
    }
    disconnect(d->animation);
    QMainWindow::closeEvent(event);
}

} // namespace wfm
