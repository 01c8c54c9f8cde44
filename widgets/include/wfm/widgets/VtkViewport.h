#pragma once

#include <QImage>
#include <QOpenGLWidget>
#include <QSize>

#include <memory>

class vtkRenderer;
class vtkRenderWindow;

namespace wfm {

class Scene;

/// A VTK render view hosted in a QOpenGLWidget (VTK 9.1, Qt 6; see shared/VTK_QT6.md).
///
/// VTK renders into its own framebuffer inside Qt's context; paintGL blits the result into the
/// widget's framebuffer. Mouse, wheel and key events are forwarded to a VTK interactor:
/// - 3-D mode: trackball camera (left drag rotates, middle/shift+left pans, right drag and
///   wheel zoom).
/// - 2-D mode: parallel projection looking down -z, no rotation (left/middle drag pans,
///   right drag and wheel zoom).
/// `r` resets the camera in both modes. The background follows the widget palette (light or
/// dark); attached scenes are told the matching text colour.
///
/// Before creating a QApplication, call VtkViewport::setDefaultSurfaceFormat().
/// Only the GUI thread may use this class.
class VtkViewport : public QOpenGLWidget
{
    Q_OBJECT
public:
    explicit VtkViewport(QWidget* parent = nullptr);
    ~VtkViewport() override;

    /// Sets the default QSurfaceFormat VTK needs (OpenGL 3.2 core, depth 24, stencil 8,
    /// no multisampling: VTK does its own). Call before constructing the QApplication.
    static void setDefaultSurfaceFormat();

    /// The renderer scenes add their props to. Owned by the viewport.
    vtkRenderer* renderer() const;
    /// The VTK render window (a vtkGenericOpenGLRenderWindow driven by this widget).
    vtkRenderWindow* renderWindow() const;

    /// Fits the camera to the visible props, looking down -z (2-D) or from a fixed oblique
    /// direction (3-D), and schedules a render.
    void resetCamera();

    /// 2-D mode: parallel projection, pan/zoom interaction without rotation. 3-D mode:
    /// perspective projection with trackball interaction. Resets the camera when the mode
    /// changes and emits modeChanged.
    void set2DMode(bool twoD);
    bool is2DMode() const;

    /// Schedules a render of the scene in the next paint (cheap; several calls merge).
    void requestRender();

    /// Renders the current scene offscreen at `size` device pixels (the widget's own pixel size
    /// when empty) and returns it; the on-screen view is unchanged. Point sizes and line widths
    /// scale with the image (relative to the widget's size). With `transparent`, the background
    /// gets alpha 0 and translucent geometry its coverage as alpha (the scene is rendered twice,
    /// over black and over white); the image is then ARGB32_Premultiplied, otherwise RGB32.
    /// Works for a widget that was never shown (it creates the GL context on demand). Returns a
    /// null image when no OpenGL context can be created. Sizes are clamped to [1, 16384].
    QImage grabImage(QSize size = {}, bool transparent = false);

    /// Number of VTK renders performed so far (for tests and frame-rate measurements).
    quint64 renderCount() const;

    /// Background colour currently used (from the palette).
    QColor backgroundColour() const;
    /// Text colour for annotations drawn over the background.
    QColor foregroundColour() const;
    /// Device pixels per logical pixel of the image being rendered: the device pixel ratio on
    /// screen, the ratio of the requested size to the widget's size inside grabImage.
    double pixelScale() const;

    QSize sizeHint() const override;

Q_SIGNALS:
    /// Emitted after set2DMode changed the mode.
    void modeChanged(bool twoD);

protected:
    void initializeGL() override;
    void resizeGL(int w, int h) override;
    void paintGL() override;

    void changeEvent(QEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;
    void keyPressEvent(QKeyEvent* event) override;
    void keyReleaseEvent(QKeyEvent* event) override;
    void enterEvent(QEnterEvent* event) override;
    void leaveEvent(QEvent* event) override;

private:
    friend class Scene;
    /// Makes the GL context current (without disturbing VTK's state cache) so that VTK
    /// objects can release their GL resources; false when there is no context yet.
    bool makeVtkContextCurrent();
    /// Forwards a mouse button event to the VTK interactor (ignored for unmapped buttons).
    void forwardButtonEvent(QMouseEvent* event, unsigned long vtkEventId, int repeatCount);
    void registerScene(Scene* scene);
    void unregisterScene(Scene* scene);

    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace wfm
