#pragma once

#include <QColor>
#include <QPointer>

#include <memory>

class vtkProp;

namespace wfm {

class VtkViewport;

/// Base of the classes that own VTK props and show them in a VtkViewport.
///
/// A scene is attached to at most one viewport at a time; attaching adds its props to the
/// viewport's renderer, detaching (or destroying the scene) removes them. A viewport that is
/// destroyed first simply forgets its scenes. Data setters of derived classes work whether or
/// not the scene is attached and schedule a render when it is.
class Scene
{
public:
    Scene();
    virtual ~Scene();

    Scene(const Scene&) = delete;
    Scene& operator=(const Scene&) = delete;

    /// Adds the scene's props to `viewport`'s renderer (detaching from a previous viewport
    /// first). Passing nullptr detaches.
    void attach(VtkViewport* viewport);
    /// Removes the scene's props from its viewport, if any.
    void detach();
    /// The viewport the scene is attached to, or nullptr.
    VtkViewport* viewport() const;

    /// Shows or hides the whole scene.
    void setVisible(bool visible);
    bool isVisible() const;

protected:
    /// Registers a prop owned by the derived class (call once per prop, in the constructor).
    void registerProp(vtkProp* prop);
    /// Whether a registered prop has content to show; it is visible when this is true and the
    /// scene is visible.
    void setPropShown(vtkProp* prop, bool shown);

    /// Called on attach and whenever the viewport's palette changes: `foreground` is the text
    /// colour for annotations, `background` the view's background. Default: nothing.
    virtual void applyTheme(const QColor& foreground, const QColor& background);
    /// Called on attach and whenever the number of device pixels per logical pixel of the
    /// rendered image changes (high-DPI screens, grabImage at another resolution): sizes given
    /// in logical pixels (points, lines) are multiplied by `scale`. Default: nothing.
    virtual void applyPixelScale(double scale);

    /// Schedules a render of the viewport, if attached.
    void requestRender();

    /// Share of the viewport's width, on the right, that the scene's overlays (a scalar bar)
    /// cover while shown; the viewport's camera reset fits the data into the rest. Default: 0.
    virtual double rightOverlayFraction() const;

private:
    friend class VtkViewport;
    void updateVisibility();
    /// Called by a viewport that is being destroyed.
    void forgetViewport();

    struct Props;
    std::unique_ptr<Props> m_props;
    QPointer<VtkViewport> m_viewport;
    bool m_visible = true;
};

} // namespace wfm
