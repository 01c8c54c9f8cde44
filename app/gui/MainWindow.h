#pragma once

#include <QMainWindow>
#include <QSize>
#include <QString>

#include <array>
#include <memory>

namespace wfm {

class CloudScene;
class VtkViewport;

namespace gui {
class DataPanel;
class EvaluatePanel;
class GeneratePanel;
class TrainingPanel;
struct LoadedData;
struct Samples;
}

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

/// The WFM Studio main window: the VTK viewport as central widget; a dock with the Data,
/// Training and Generate panels; File (open data, export screenshot / video / samples, quit),
/// View (reset camera, 2-D/3-D, transport lines, Colour by) and Demo menus; a status bar. Files
/// dropped on the window are loaded as data. Closing during training asks, then stops the run
/// (keeping its checkpoint). The window geometry is kept in QSettings when `persistGeometry` is
/// set.
///
/// View > Colour by (one choice, kept while data, samples and frames change): Label
/// (colourByLabel), Correspondence (colourByCorrespondence: in a geodesic, each moving point by
/// where it started; label colours elsewhere) or one entry per data coordinate, "x", "y", "z" up
/// to 3 dimensions and "Feature 1" ... "Feature d" beyond (colourByFeature0, colourByFeature1,
/// ...): each shown point by that coordinate, in data units, through the sequential colour map
/// with a scalar bar. The range spans the shown data, or every frame of shown samples, so that
/// a colour keeps its value along the timeline. The coordinate entries follow the dimension of
/// the clouds shown; a chosen coordinate the new data lacks falls back to Label. The
/// correspondence demo keeps its correspondence colours unless a coordinate is chosen.
class MainWindow : public QMainWindow
{
    Q_OBJECT
public:
    explicit MainWindow(bool persistGeometry = true, QWidget* parent = nullptr);
    ~MainWindow() override;

    VtkViewport* viewport() const;
    /// The point clouds drawn in the viewport (colour mode and point colours, for tests).
    const CloudScene& cloudScene() const;

    /// Shows one of the built-in demos (switching the view to 2-D or 3-D to match).
    void showDemo(DemoScene scene);
    /// Starts or stops the animation of the ellipsoid demo.
    void setAnimating(bool on);

    gui::DataPanel* dataPanel() const;
    gui::TrainingPanel* trainingPanel() const;
    gui::GeneratePanel* generatePanel() const;
    gui::EvaluatePanel* evaluatePanel() const;
    /// Shows the Data (0), Training (1) or Generate (2) tab.
    void showPanel(int index);

    /// Renders the view at `size` (empty: the view's size) to a PNG (atomic). Returns "" or an error.
    QString exportImage(const QString& path, QSize size = {});
    /// Renders every frame of the current generation's trajectory offscreen at `size` and encodes
    /// it with ffmpeg (MP4 or GIF by suffix), atomically, with a progress dialog when
    /// `showProgress`. Returns "" or an error.
    QString exportVideo(const QString& path, QSize size, int fps, bool showProgress = true);
    /// Interactive (default): errors open a message box and closing during training asks first.
    /// Otherwise (tests, scripted screenshots) errors go to the status bar only and closing
    /// stops the training without asking.
    void setInteractive(bool interactive);

    /// Coordinates the view shows of data with more than 3 (View > Shown coordinates; default
    /// the first three). Redraws what is shown. Entries outside the data's range fall back to
    /// their position.
    void setShownCoordinates(const std::array<int, 3>& axes);
    std::array<int, 3> shownCoordinates() const;

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void exportScreenshot();
    void exportVideoInteractive();
    void advanceAnimation();
    void showData(const gui::LoadedData& data);
    void showSamples(const gui::Samples& samples, int frame);
    void showError(const QString& title, const QString& message);
    /// Rebuilds the coordinate entries of View > Colour by for `dim`-dimensional clouds.
    void setFeatureCount(int dim);
    /// The coordinate chosen in View > Colour by, or -1 (Label, Correspondence).
    int chosenFeature() const;
    void colourChoiceToggled(bool on);
    /// Redraws the shown clouds after the colour choice changed.
    void recolour();
    /// Label or coordinate colours (or the correspondence demo's) for the clouds just shown.
    void applyColourChoice();
    /// View > Shown coordinates: three lists of the data's coordinates.
    void chooseShownCoordinates();

    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace wfm
