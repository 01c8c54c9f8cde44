#include "wfm/widgets/VtkViewport.h"

#include "wfm/widgets/Scene.h"

#include <QEvent>
#include <QKeyEvent>
#include <QLoggingCategory>
#include <QMouseEvent>
#include <QOpenGLContext>
#include <QOpenGLExtraFunctions>
#include <QSurfaceFormat>
#include <QWheelEvent>

#include <vtkCallbackCommand.h>
#include <vtkCamera.h>
#include <vtkCommand.h>
#include <vtkGenericOpenGLRenderWindow.h>
#include <vtkGenericRenderWindowInteractor.h>
#include <vtkInteractorStyleTrackballCamera.h>
#include <vtkNew.h>
#include <vtkObjectFactory.h>
#include <vtkOpenGLFramebufferObject.h>
#include <vtkOpenGLState.h>
#include <vtkRenderer.h>
#include <vtkUnsignedCharArray.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

Q_LOGGING_CATEGORY(lcViewport, "wfm.viewport")

namespace wfm {
namespace {

/// Trackball camera whose only key is `r` (reset camera): the stock keys ('e'/'q' exit,
/// 'w' wireframe, '3' stereo, 'f' fly-to...) make no sense inside an application.
class TrackballStyle : public vtkInteractorStyleTrackballCamera
{
public:
    static TrackballStyle* New();
    vtkTypeMacro(TrackballStyle, vtkInteractorStyleTrackballCamera);

    std::function<void()> onReset;

    void OnChar() override
    {
        const char key = this->Interactor ? this->Interactor->GetKeyCode() : 0;
        if ((key == 'r' || key == 'R') && onReset) {
            onReset();
        }
    }
};
vtkStandardNewMacro(TrackballStyle);

/// 2-D interaction: left or middle drag pans, right drag and wheel zoom; never rotates.
class PanZoomStyle : public TrackballStyle
{
public:
    static PanZoomStyle* New();
    vtkTypeMacro(PanZoomStyle, TrackballStyle);

    void OnLeftButtonDown() override
    {
        const int* pos = this->Interactor->GetEventPosition();
        this->FindPokedRenderer(pos[0], pos[1]);
        if (!this->CurrentRenderer) {
            return;
        }
        this->GrabFocus(this->EventCallbackCommand);
        this->StartPan();
    }
};
vtkStandardNewMacro(PanZoomStyle);

constexpr int kMaxImageSide = 16384;

} // namespace

struct VtkViewport::Private
{
    explicit Private(VtkViewport* owner)
        : q(owner)
    {
    }

    VtkViewport* q;
    vtkNew<vtkGenericOpenGLRenderWindow> window;
    vtkNew<vtkRenderer> renderer;
    vtkNew<vtkGenericRenderWindowInteractor> interactor;
    vtkNew<TrackballStyle> trackball;
    vtkNew<PanZoomStyle> panZoom;

    QSurface* surface = nullptr;
    QMetaObject::Connection contextConnection;
    std::array<unsigned long, 3> windowObservers {};
    bool initialized = false;
    bool renderInPaint = true;
    bool inPaint = false;
    bool grabbing = false;
    bool twoD = false;
    double grabScale = 0.0; // > 0 while grabImage renders
    quint64 renders = 0;
    std::vector<Scene*> scenes;
    QColor background;
    QColor foreground;

    QSize pixelSize() const
    {
        const double dpr = q->devicePixelRatioF();
        return { std::max(1, static_cast<int>(std::lround(q->width() * dpr))),
            std::max(1, static_cast<int>(std::lround(q->height() * dpr))) };
    }

    void onMakeCurrent(vtkObject*, unsigned long, void*)
    {
        // Never QOpenGLWidget::makeCurrent() here: it rebinds Qt's FBO behind vtkOpenGLState's
        // back while VTK is building its own framebuffers (the black-picture trap).
        if (QOpenGLContext* ctx = q->context()) {
            ctx->makeCurrent(surface);
        }
    }

    void onIsCurrent(vtkObject*, unsigned long, void* callData)
    {
        *static_cast<bool*>(callData) = q->context() && QOpenGLContext::currentContext() == q->context();
    }

    void onFrame(vtkObject*, unsigned long, void*)
    {
        // VTK's display framebuffer now holds the picture; paintGL only has to blit it.
        renderInPaint = false;
        ++renders;
        if (!inPaint && !grabbing) {
            q->update();
        }
    }

    void onInteractorRender(vtkObject*, unsigned long, void*)
    {
        // The interactor's own renders are off: merge them into the next paint.
        q->requestRender();
    }

    void cleanupGL()
    {
        if (!initialized) {
            return;
        }
        q->makeCurrent();
        window->Finalize();
        window->SetReadyForRendering(false);
        for (unsigned long id : windowObservers) {
            window->RemoveObserver(id);
        }
        windowObservers = {};
        initialized = false;
        surface = nullptr;
    }

    void applyPalette()
    {
        const QPalette& pal = q->palette();
        background = pal.color(QPalette::Base);
        foreground = pal.color(QPalette::Text);
        renderer->SetBackground(background.redF(), background.greenF(), background.blueF());
        for (Scene* s : scenes) {
            s->applyTheme(foreground, background);
        }
    }

    void applyPixelScale()
    {
        const double scale = q->pixelScale();
        for (Scene* s : scenes) {
            s->applyPixelScale(scale);
        }
    }

    /// Zooms the (perspective) camera so that the 8 corners of `bounds` project into the part
    /// of the view the overlays leave free (view x in [-1, 1 - 2 overlay]) with a small margin.
    /// The projection centre sits at view x = -overlay (SetWindowCenter), the middle of that part;
    /// Zoom scales about it, nearly linearly, so two passes land within a percent.
    void fitProjectedBounds(const double bounds[6], double overlay)
    {
        constexpr double kFill = 0.94;
        for (int pass = 0; pass < 2; ++pass) {
            double hx = 1e-9;
            double hy = 1e-9;
            for (int corner = 0; corner < 8; ++corner) {
                renderer->SetWorldPoint(bounds[corner & 1], bounds[2 + ((corner >> 1) & 1)],
                    bounds[4 + ((corner >> 2) & 1)], 1.0);
                renderer->WorldToView();
                const double* v = renderer->GetViewPoint();
                hx = std::max(hx, std::abs(v[0] + overlay));
                hy = std::max(hy, std::abs(v[1]));
            }
            renderer->GetActiveCamera()->Zoom(kFill * std::min((1.0 - overlay) / hx, 1.0 / hy));
        }
    }

    void resetCamera()
    {
        vtkCamera* camera = renderer->GetActiveCamera();
        double bounds[6];
        renderer->ComputeVisiblePropBounds(bounds);
        if (!(bounds[0] <= bounds[1] && bounds[2] <= bounds[3] && bounds[4] <= bounds[5])) {
            bounds[0] = bounds[2] = bounds[4] = -1.0;
            bounds[1] = bounds[3] = bounds[5] = 1.0;
        }
        const double cx = 0.5 * (bounds[0] + bounds[1]);
        const double cy = 0.5 * (bounds[2] + bounds[3]);
        const double cz = 0.5 * (bounds[4] + bounds[5]);
        camera->SetFocalPoint(cx, cy, cz);
        // Overlays on the right (a scalar bar) keep their strip: the projection centre moves
        // right by that share, which puts the focal point in the middle of the rest, and the
        // fit uses the narrower width.
        double overlay = 0.0;
        for (const Scene* s : scenes) {
            if (s->isVisible()) {
                overlay = std::max(overlay, std::clamp(s->rightOverlayFraction(), 0.0, 0.5));
            }
        }
        camera->SetWindowCenter(overlay, 0.0);
        if (twoD) {
            camera->SetPosition(cx, cy, cz + 1.0);
            camera->SetViewUp(0.0, 1.0, 0.0);
            renderer->ResetCamera(bounds);
            // Fit the xy extent tightly (ResetCamera fits the bounding sphere).
            const QSize px = pixelSize();
            const double aspect = (1.0 - overlay) * static_cast<double>(px.width()) / px.height();
            const double halfW = std::max(0.5 * (bounds[1] - bounds[0]), 1e-9);
            const double halfH = std::max(0.5 * (bounds[3] - bounds[2]), 1e-9);
            camera->SetParallelScale(1.08 * std::max(halfH, halfW / aspect));
        } else {
            // Oblique view from the front right, z up.
            camera->SetPosition(cx + 1.0, cy - 1.6, cz + 1.0);
            camera->SetViewUp(0.0, 0.0, 1.0);
            renderer->ResetCamera(bounds);
            fitProjectedBounds(bounds, overlay);
        }
        renderer->ResetCameraClippingRange(bounds);
    }
};

VtkViewport::VtkViewport(QWidget* parent)
    : QOpenGLWidget(parent)
    , d(std::make_unique<Private>(this))
{
    setUpdateBehavior(QOpenGLWidget::NoPartialUpdate);
    setMouseTracking(true);
    setFocusPolicy(Qt::StrongFocus);
    setMinimumSize(64, 64);

    d->window->AddRenderer(d->renderer);
    d->window->SetReadyForRendering(false);
    d->window->SetFrameBlitModeToNoBlit();
    // VTK's own MSAA halves software frame rates; points are sprites and lines are smooth enough.
    d->window->SetMultiSamples(0);

    d->interactor->SetRenderWindow(d->window);
    d->window->SetInteractor(d->interactor);
    d->trackball->onReset = [this] { resetCamera(); };
    d->panZoom->onReset = [this] { resetCamera(); };
    d->interactor->SetInteractorStyle(d->trackball);
    d->interactor->EnableRenderOff();
    d->interactor->AddObserver(vtkCommand::RenderEvent, d.get(), &Private::onInteractorRender);
    d->interactor->Initialize();

    d->renderer->GetActiveCamera()->ParallelProjectionOff();
    d->applyPalette();
    d->resetCamera();
}

VtkViewport::~VtkViewport()
{
    for (Scene* s : d->scenes) {
        s->forgetViewport();
    }
    d->scenes.clear();
    makeCurrent();
    d->cleanupGL();
    doneCurrent();
    if (d->contextConnection) {
        disconnect(d->contextConnection);
    }
}

void VtkViewport::setDefaultSurfaceFormat()
{
    QSurfaceFormat format;
    format.setRenderableType(QSurfaceFormat::OpenGL);
    format.setVersion(3, 2);
    format.setProfile(QSurfaceFormat::CoreProfile);
    format.setSwapBehavior(QSurfaceFormat::DoubleBuffer);
    format.setRedBufferSize(8);
    format.setGreenBufferSize(8);
    format.setBlueBufferSize(8);
    format.setDepthBufferSize(24);
    format.setStencilBufferSize(8);
    format.setSamples(0);
    QSurfaceFormat::setDefaultFormat(format);
}

vtkRenderer* VtkViewport::renderer() const
{
    return d->renderer;
}

vtkRenderWindow* VtkViewport::renderWindow() const
{
    return d->window;
}

void VtkViewport::resetCamera()
{
    d->resetCamera();
    requestRender();
}

void VtkViewport::set2DMode(bool twoD)
{
    if (twoD == d->twoD) {
        return;
    }
    d->twoD = twoD;
    d->renderer->GetActiveCamera()->SetParallelProjection(twoD);
    if (twoD) {
        d->interactor->SetInteractorStyle(d->panZoom);
    } else {
        d->interactor->SetInteractorStyle(d->trackball);
    }
    resetCamera();
    Q_EMIT modeChanged(twoD);
}

bool VtkViewport::is2DMode() const
{
    return d->twoD;
}

void VtkViewport::requestRender()
{
    d->renderInPaint = true;
    update();
}

quint64 VtkViewport::renderCount() const
{
    return d->renders;
}

QColor VtkViewport::backgroundColour() const
{
    return d->background;
}

QColor VtkViewport::foregroundColour() const
{
    return d->foreground;
}

double VtkViewport::pixelScale() const
{
    return d->grabScale > 0.0 ? d->grabScale : devicePixelRatioF();
}

QSize VtkViewport::sizeHint() const
{
    return { 800, 600 };
}

QImage VtkViewport::grabImage(QSize size, bool transparent)
{
    if (!d->initialized) {
        // Creates the context (also for a widget that was never shown) and runs initializeGL.
        (void)grabFramebuffer();
    }
    if (!d->initialized) {
        qCWarning(lcViewport) << "grabImage: no OpenGL context";
        return {};
    }
    if (size.isEmpty()) {
        size = d->pixelSize();
    }
    const int w = std::clamp(size.width(), 1, kMaxImageSide);
    const int h = std::clamp(size.height(), 1, kMaxImageSide);

    makeCurrent();
    vtkOpenGLState* state = d->window->GetState();
    state->Reset();
    state->Push();
    state->vtkglDepthFunc(GL_LEQUAL);

    const int* current = d->window->GetSize();
    const int oldW = current[0];
    const int oldH = current[1];
    double oldBackground[3];
    d->renderer->GetBackground(oldBackground);
    // Sizes in logical pixels scale with the image, so an export looks like the view.
    const double logicalArea = std::max(1.0, static_cast<double>(width()) * height());
    d->grabScale = std::sqrt(static_cast<double>(w) * h / logicalArea);
    d->applyPixelScale();
    d->window->SetSize(w, h);

    const auto renderAndRead = [&](vtkUnsignedCharArray* pixels) {
        d->grabbing = true;
        d->window->Render();
        d->grabbing = false;
        return d->window->GetRGBACharPixelData(0, 0, w - 1, h - 1, 0, pixels) != 0
            && pixels->GetNumberOfTuples() == static_cast<vtkIdType>(w) * h;
    };
    vtkNew<vtkUnsignedCharArray> pixels;
    vtkNew<vtkUnsignedCharArray> onWhite;
    bool ok = false;
    if (transparent) {
        // VTK's alpha channel is not the coverage once translucent geometry went through its
        // order-independent translucency pass, so derive coverage by difference matting:
        // over black a pixel is P (premultiplied colour), over white P + (1 - alpha).
        d->renderer->SetBackground(0.0, 0.0, 0.0);
        ok = renderAndRead(pixels);
        d->renderer->SetBackground(1.0, 1.0, 1.0);
        ok = ok && renderAndRead(onWhite);
    } else {
        ok = renderAndRead(pixels);
    }

    d->window->SetSize(oldW, oldH);
    d->renderer->SetBackground(oldBackground);
    d->grabScale = 0.0;
    d->applyPixelScale();
    state->Pop();
    requestRender();

    if (!ok) {
        qCWarning(lcViewport) << "grabImage: reading pixels failed";
        return {};
    }
    const QImage::Format format = transparent ? QImage::Format_ARGB32_Premultiplied : QImage::Format_RGB32;
    QImage image(w, h, format);
    const unsigned char* black = pixels->GetPointer(0);
    const unsigned char* white = transparent ? onWhite->GetPointer(0) : nullptr;
    for (int y = 0; y < h; ++y) {
        // VTK's rows run bottom-up.
        auto* line = reinterpret_cast<QRgb*>(image.scanLine(h - 1 - y));
        const size_t row = static_cast<size_t>(y) * w * 4;
        for (int x = 0; x < w; ++x) {
            const unsigned char* b = black + row + 4 * static_cast<size_t>(x);
            if (!transparent) {
                line[x] = qRgb(b[0], b[1], b[2]);
                continue;
            }
            const unsigned char* wt = white + row + 4 * static_cast<size_t>(x);
            const int through = (std::max(0, wt[0] - b[0]) + std::max(0, wt[1] - b[1]) + std::max(0, wt[2] - b[2]) + 1) / 3;
            const int alpha = std::clamp(255 - through, 0, 255);
            line[x] = qRgba(std::min<int>(b[0], alpha), std::min<int>(b[1], alpha), std::min<int>(b[2], alpha), alpha);
        }
    }
    return image;
}

void VtkViewport::initializeGL()
{
    d->surface = context()->surface();
    if (d->contextConnection) {
        disconnect(d->contextConnection);
    }
    d->contextConnection = connect(
        context(), &QOpenGLContext::aboutToBeDestroyed, this, [this] { d->cleanupGL(); },
        Qt::DirectConnection);

    d->windowObservers[0]
        = d->window->AddObserver(vtkCommand::WindowMakeCurrentEvent, d.get(), &Private::onMakeCurrent);
    d->windowObservers[1]
        = d->window->AddObserver(vtkCommand::WindowIsCurrentEvent, d.get(), &Private::onIsCurrent);
    d->windowObservers[2]
        = d->window->AddObserver(vtkCommand::WindowFrameEvent, d.get(), &Private::onFrame);

    d->window->SetForceMaximumHardwareLineWidth(1);
    d->window->SetReadyForRendering(true);
    d->window->SetOwnContext(0);
    d->window->OpenGLInitContext();
    d->initialized = true;
    d->renderInPaint = true;
}

void VtkViewport::resizeGL(int, int)
{
    const QSize px = d->pixelSize();
    d->interactor->UpdateSize(px.width(), px.height());
    d->applyPixelScale();
    d->renderInPaint = true;
}

void VtkViewport::paintGL()
{
    if (!d->initialized) {
        return;
    }
    vtkOpenGLState* state = d->window->GetState();
    state->Reset();
    state->Push();
    state->vtkglDepthFunc(GL_LEQUAL);

    if (d->renderInPaint) {
        d->inPaint = true;
        d->window->Render();
        d->inPaint = false;
        d->renderInPaint = false;
    }

    makeCurrent();
    QOpenGLExtraFunctions* f = context()->extraFunctions();
    const QSize px = d->pixelSize();
    f->glBindFramebuffer(GL_DRAW_FRAMEBUFFER, defaultFramebufferObject());
    const GLenum drawBuffer = GL_COLOR_ATTACHMENT0;
    f->glDrawBuffers(1, &drawBuffer);
    const bool scissor = f->glIsEnabled(GL_SCISSOR_TEST);
    if (scissor) {
        state->vtkglDisable(GL_SCISSOR_TEST);
        f->glDisable(GL_SCISSOR_TEST);
    }

    if (vtkOpenGLFramebufferObject* fbo = d->window->GetRenderFramebuffer()) {
        const int* rb = fbo->GetLastSize();
        d->window->BlitDisplayFramebuffer(0, 0, 0, rb[0], rb[1], 0, 0, px.width(), px.height(),
            GL_COLOR_BUFFER_BIT, GL_LINEAR);
    }

    // VTK leaves alpha 0 in the background; Qt would composite that as transparent.
    GLboolean mask[4];
    GLfloat clear[4];
    GLint viewport[4];
    f->glGetBooleanv(GL_COLOR_WRITEMASK, mask);
    f->glGetFloatv(GL_COLOR_CLEAR_VALUE, clear);
    f->glGetIntegerv(GL_VIEWPORT, viewport);
    f->glColorMask(GL_FALSE, GL_FALSE, GL_FALSE, GL_TRUE);
    f->glClearColor(0.0f, 0.0f, 0.0f, 1.0f);
    f->glViewport(0, 0, px.width(), px.height());
    f->glClear(GL_COLOR_BUFFER_BIT);
    f->glColorMask(mask[0], mask[1], mask[2], mask[3]);
    f->glClearColor(clear[0], clear[1], clear[2], clear[3]);
    f->glViewport(viewport[0], viewport[1], viewport[2], viewport[3]);

    if (scissor) {
        state->vtkglEnable(GL_SCISSOR_TEST);
        f->glEnable(GL_SCISSOR_TEST);
    }
    state->Pop();
}

void VtkViewport::changeEvent(QEvent* event)
{
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::StyleChange) {
        d->applyPalette();
        requestRender();
    }
    QOpenGLWidget::changeEvent(event);
}

namespace {

void setEventInformation(vtkRenderWindowInteractor* iren, QPointF position, double dpr,
    Qt::KeyboardModifiers modifiers, int repeat)
{
    const QPointF p = position * dpr;
    iren->SetEventInformationFlipY(static_cast<int>(std::lround(p.x())),
        static_cast<int>(std::lround(p.y())), (modifiers & Qt::ControlModifier) ? 1 : 0,
        (modifiers & Qt::ShiftModifier) ? 1 : 0, 0, repeat);
    iren->SetAltKey((modifiers & Qt::AltModifier) ? 1 : 0);
}

unsigned long pressEventFor(Qt::MouseButton button)
{
    switch (button) {
    case Qt::LeftButton:
        return vtkCommand::LeftButtonPressEvent;
    case Qt::MiddleButton:
        return vtkCommand::MiddleButtonPressEvent;
    case Qt::RightButton:
        return vtkCommand::RightButtonPressEvent;
    default:
        return vtkCommand::NoEvent;
    }
}

unsigned long releaseEventFor(Qt::MouseButton button)
{
    switch (button) {
    case Qt::LeftButton:
        return vtkCommand::LeftButtonReleaseEvent;
    case Qt::MiddleButton:
        return vtkCommand::MiddleButtonReleaseEvent;
    case Qt::RightButton:
        return vtkCommand::RightButtonReleaseEvent;
    default:
        return vtkCommand::NoEvent;
    }
}

} // namespace

void VtkViewport::forwardButtonEvent(QMouseEvent* event, unsigned long vtkEventId, int repeatCount)
{
    if (vtkEventId == vtkCommand::NoEvent) {
        event->ignore();
        return;
    }
    setEventInformation(d->interactor, event->position(), devicePixelRatioF(), event->modifiers(), repeatCount);
    d->interactor->InvokeEvent(vtkEventId, event);
    event->accept();
}

void VtkViewport::mousePressEvent(QMouseEvent* event)
{
    forwardButtonEvent(event, pressEventFor(event->button()), 0);
}

void VtkViewport::mouseDoubleClickEvent(QMouseEvent* event)
{
    forwardButtonEvent(event, pressEventFor(event->button()), 1);
}

void VtkViewport::mouseReleaseEvent(QMouseEvent* event)
{
    forwardButtonEvent(event, releaseEventFor(event->button()), 0);
}

void VtkViewport::mouseMoveEvent(QMouseEvent* event)
{
    setEventInformation(d->interactor, event->position(), devicePixelRatioF(), event->modifiers(), 0);
    d->interactor->InvokeEvent(vtkCommand::MouseMoveEvent, event);
    event->accept();
}

void VtkViewport::wheelEvent(QWheelEvent* event)
{
    const int delta = event->angleDelta().y();
    if (delta == 0) {
        event->ignore();
        return;
    }
    setEventInformation(d->interactor, event->position(), devicePixelRatioF(), event->modifiers(), 0);
    d->interactor->InvokeEvent(
        delta > 0 ? vtkCommand::MouseWheelForwardEvent : vtkCommand::MouseWheelBackwardEvent, event);
    event->accept();
}

void VtkViewport::keyPressEvent(QKeyEvent* event)
{
    const QString text = event->text();
    const char key = text.size() == 1 && text.at(0).unicode() < 128 ? text.at(0).toLatin1() : 0;
    const QByteArray keysym = key ? QByteArray(1, key) : QByteArray("None");
    const Qt::KeyboardModifiers m = event->modifiers();
    d->interactor->SetKeyEventInformation((m & Qt::ControlModifier) ? 1 : 0,
        (m & Qt::ShiftModifier) ? 1 : 0, key, event->isAutoRepeat() ? 1 : 0, keysym.constData());
    d->interactor->SetAltKey((m & Qt::AltModifier) ? 1 : 0);
    d->interactor->InvokeEvent(vtkCommand::KeyPressEvent, event);
    if (key) {
        d->interactor->InvokeEvent(vtkCommand::CharEvent, event);
    }
    event->accept();
}

void VtkViewport::keyReleaseEvent(QKeyEvent* event)
{
    const QString text = event->text();
    const char key = text.size() == 1 && text.at(0).unicode() < 128 ? text.at(0).toLatin1() : 0;
    const QByteArray keysym = key ? QByteArray(1, key) : QByteArray("None");
    const Qt::KeyboardModifiers m = event->modifiers();
    d->interactor->SetKeyEventInformation((m & Qt::ControlModifier) ? 1 : 0,
        (m & Qt::ShiftModifier) ? 1 : 0, key, event->isAutoRepeat() ? 1 : 0, keysym.constData());
    d->interactor->InvokeEvent(vtkCommand::KeyReleaseEvent, event);
    event->accept();
}

void VtkViewport::enterEvent(QEnterEvent* event)
{
    d->interactor->InvokeEvent(vtkCommand::EnterEvent, event);
    QOpenGLWidget::enterEvent(event);
}

void VtkViewport::leaveEvent(QEvent* event)
{
    d->interactor->InvokeEvent(vtkCommand::LeaveEvent, event);
    QOpenGLWidget::leaveEvent(event);
}

bool VtkViewport::makeVtkContextCurrent()
{
    if (!d->initialized || !context()) {
        return false;
    }
    return context()->makeCurrent(d->surface);
}

void VtkViewport::registerScene(Scene* scene)
{
    if (std::find(d->scenes.begin(), d->scenes.end(), scene) == d->scenes.end()) {
        d->scenes.push_back(scene);
    }
}

void VtkViewport::unregisterScene(Scene* scene)
{
    d->scenes.erase(std::remove(d->scenes.begin(), d->scenes.end(), scene), d->scenes.end());
}

} // namespace wfm
