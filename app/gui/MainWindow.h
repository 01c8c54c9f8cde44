#pragma once

#include <QMainWindow>
#include <QString>

#include <memory>

namespace wfm {

class VtkViewport;

/// Built-in demo contents (until the engine is wired in).
enum class DemoScene
{
    Shapes, ///< torus, sphere and trefoil point clouds in 3-D, coloured by label
    Gaussians, ///< a 2-D Gaussian mixture as filled 2-sigma ellipses
    Ellipsoids, ///< 3-D Gaussians as translucent ellipsoids, animated
    Correspondence ///< a 2-D cloud and its image under a swirl, correspondence colours
};

/// Parses a demo scene name ("shapes", "gaussians", "ellipsoids", "correspondence").
bool parseDemoScene(const QString& name, DemoScene* scene);

/// The WFM Studio main window: the VTK viewport as central widget, File (export screenshot,
/// quit) and View (reset camera, 2-D/3-D) menus, a Demo menu and a status bar. The window
/// geometry is kept in QSettings when `persistGeometry` is set.
class MainWindow : public QMainWindow
{
    Q_OBJECT
public:
    explicit MainWindow(bool persistGeometry = true, QWidget* parent = nullptr);
    ~MainWindow() override;

    VtkViewport* viewport() const;

    /// Shows one of the built-in demos (switching the view to 2-D or 3-D to match).
    void showDemo(DemoScene scene);
    /// Starts or stops the animation of the ellipsoid demo.
    void setAnimating(bool on);

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void exportScreenshot();
    void advanceAnimation();

    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace wfm
