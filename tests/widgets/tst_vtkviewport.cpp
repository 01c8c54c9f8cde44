// GUI tests of the VTK viewport and its scenes. They need a display: run under Xvfb
// (ctest does, through xvfb-run). Set WFM_TEST_SCREENSHOT_DIR to keep the rendered pictures.

#include "wfm/Error.h"
#include "wfm/Snapshot.h"
#include "wfm/widgets/CloudScene.h"
#include "wfm/widgets/ColourMaps.h"
#include "wfm/widgets/GaussianScene.h"
#include "wfm/widgets/VtkViewport.h"

#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QImage>
#include <QMouseEvent>
#include <QtTest>

#include <vtkCamera.h>
#include <vtkPropCollection.h>
#include <vtkRenderer.h>

#include <cmath>
#include <functional>
#include <memory>

using namespace wfm;

namespace {

/// A pixel counts as drawn when some channel differs from the background by more than this.
constexpr int kBackgroundTolerance = 24;
/// Hue distance (fraction of the colour wheel) within which a shaded sprite matches its label.
constexpr double kHueTolerance = 0.035;

constexpr double kPi = 3.14159265358979323846;

/// Two 2-D clouds with labels 0 and 1: a 12x12 grid left and right of the origin, one isolated
/// point each (-2.6, 1.6) / (2.6, -1.6), and padding points far away that must not be drawn.
CloudSnapshot twoClouds()
{
    CloudSnapshot s;
    s.count = 2;
    s.maxPoints = 12 * 12 + 1 + 5;
    s.dim = 2;
    s.points.assign(static_cast<size_t>(s.count) * s.maxPoints * s.dim, 0.0f);
    s.weights.assign(static_cast<size_t>(s.count) * s.maxPoints, 0.0f);
    s.labels = { 0, 1 };
    s.labelNames = { "left", "right" };
    for (int k = 0; k < 2; ++k) {
        const double x0 = k == 0 ? -2.0 : 0.5;
        int i = 0;
        auto put = [&](double x, double y, float w) {
            float* p = s.points.data() + (static_cast<size_t>(k) * s.maxPoints + i) * 2;
            p[0] = static_cast<float>(x);
            p[1] = static_cast<float>(y);
            s.weights[static_cast<size_t>(k) * s.maxPoints + i] = w;
            ++i;
        };
        for (int a = 0; a < 12; ++a) {
            for (int b = 0; b < 12; ++b) {
                put(x0 + 1.5 * a / 11.0, -1.0 + 2.0 * b / 11.0, 1.0f);
            }
        }
        put(k == 0 ? -2.6 : 2.6, k == 0 ? 1.6 : -1.6, 1.0f);
        for (int pad = 0; pad < 5; ++pad) {
            put(100.0 + pad, 100.0, 0.0f);
        }
    }
    return s;
}

/// One 2-D Gaussian with a rotated, elongated covariance.
GaussianSnapshot oneGaussian2D()
{
    GaussianSnapshot g;
    g.count = 1;
    g.dim = 2;
    g.means = { 1.0f, -0.5f };
    g.covariances = { 2.0f, 0.8f, 0.8f, 0.6f };
    return g;
}

/// One 3-D Gaussian whose covariance has no axis-aligned eigenvectors.
GaussianSnapshot oneGaussian3D()
{
    GaussianSnapshot g;
    g.count = 1;
    g.dim = 3;
    g.means = { 0.5f, 0.25f, -0.3f };
    // B B^T with B lower triangular and generic.
    const double b[3][3] = { { 1.2, 0.0, 0.0 }, { 0.7, 0.5, 0.0 }, { -0.4, 0.3, 0.6 } };
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
            double v = 0.0;
            for (int k = 0; k < 3; ++k) {
                v += b[i][k] * b[j][k];
            }
            g.covariances.push_back(static_cast<float>(v));
        }
    }
    return g;
}

/// `count` 3-D Gaussians on a ring; `phase` rotates every covariance about z.
GaussianSnapshot manyEllipsoids(int count, double phase)
{
    GaussianSnapshot g;
    g.count = count;
    g.dim = 3;
    for (int k = 0; k < count; ++k) {
        const double t = 2.0 * kPi * k / count;
        g.means.insert(g.means.end(), { static_cast<float>(6.0 * std::cos(t + 0.1 * phase)),
                                          static_cast<float>(6.0 * std::sin(t + 0.1 * phase)),
                                          static_cast<float>(0.5 * std::sin(3.0 * t)) });
        const double a = 0.05 + 0.03 * (k % 3);
        const double bb = 0.01 + 0.005 * (k % 5);
        // diag(a, bb, bb) rotated about z by phase + t.
        const double cc = std::cos(phase + t);
        const double ss = std::sin(phase + t);
        const float m00 = static_cast<float>(cc * cc * a + ss * ss * bb);
        const float m01 = static_cast<float>(cc * ss * (a - bb));
        const float m11 = static_cast<float>(ss * ss * a + cc * cc * bb);
        g.covariances.insert(g.covariances.end(),
            { m00, m01, 0.0f, m01, m11, 0.0f, 0.0f, 0.0f, static_cast<float>(bb) });
        g.labels.push_back(k % 4);
    }
    return g;
}

bool isBackground(QRgb pixel, const QColor& background)
{
    return std::abs(qRed(pixel) - background.red()) <= kBackgroundTolerance
        && std::abs(qGreen(pixel) - background.green()) <= kBackgroundTolerance
        && std::abs(qBlue(pixel) - background.blue()) <= kBackgroundTolerance;
}

int countDrawn(const QImage& image, const QColor& background)
{
    int n = 0;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            n += isBackground(image.pixel(x, y), background) ? 0 : 1;
        }
    }
    return n;
}

double hueDistance(double a, double b)
{
    const double d = std::abs(a - b);
    return std::min(d, 1.0 - d);
}

bool matchesHue(const QColor& pixel, const QColor& reference)
{
    return pixel.hsvSaturationF() > 0.35 && pixel.valueF() > 0.25
        && hueDistance(pixel.hsvHueF(), reference.hsvHueF()) < kHueTolerance;
}

int countHue(const QImage& image, const QColor& reference)
{
    int n = 0;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            n += matchesHue(QColor::fromRgb(image.pixel(x, y)), reference) ? 1 : 0;
        }
    }
    return n;
}

/// Image pixel (top-left origin) of a world point, for an image of the render window's size.
QPoint toPixel(vtkRenderer* renderer, double x, double y, double z, int imageHeight)
{
    renderer->SetWorldPoint(x, y, z, 1.0);
    renderer->WorldToDisplay();
    const double* p = renderer->GetDisplayPoint();
    return { static_cast<int>(std::floor(p[0])), imageHeight - 1 - static_cast<int>(std::floor(p[1])) };
}

void keep(const QImage& image, const QString& name)
{
    const QByteArray dir = qgetenv("WFM_TEST_SCREENSHOT_DIR");
    if (!dir.isEmpty()) {
        image.save(QDir(QString::fromLocal8Bit(dir)).filePath(QStringLiteral("wfm_viewport_%1.png").arg(name)));
    }
}

/// Zooms a 2-D view out so that shapes fitted to the view have room around them.
void zoomOut(VtkViewport* view, double factor = 1.7)
{
    vtkCamera* camera = view->renderer()->GetActiveCamera();
    camera->SetParallelScale(camera->GetParallelScale() * factor);
    view->requestRender();
}

/// Sends a left/right drag of `steps` moves from `from` to `to`.
void drag(QWidget* w, QPoint from, QPoint to, Qt::MouseButton button = Qt::LeftButton, int steps = 10)
{
    const auto send = [w](QEvent::Type type, QPointF pos, Qt::MouseButton b, Qt::MouseButtons bs) {
        QMouseEvent e(type, pos, w->mapToGlobal(pos), b, bs, Qt::NoModifier);
        QCoreApplication::sendEvent(w, &e);
    };
    send(QEvent::MouseButtonPress, from, button, button);
    for (int i = 1; i <= steps; ++i) {
        const QPointF p = QPointF(from) + (QPointF(to) - QPointF(from)) * (static_cast<double>(i) / steps);
        send(QEvent::MouseMove, p, Qt::NoButton, button);
    }
    send(QEvent::MouseButtonRelease, to, button, Qt::NoButton);
}

} // namespace

class TestVtkViewport : public QObject
{
    Q_OBJECT
public:
    /// QTEST_MAIN calls this before creating the QApplication.
    static void initMain() { VtkViewport::setDefaultSurfaceFormat(); }

private Q_SLOTS:
    void init();
    void cleanup();

    void cloudRendersInShownWindow();
    void grabImageSizes_data();
    void grabImageSizes();
    void grabImageTransparent();
    void grabImageOfHiddenViewport();
    void twoDModeUsesParallelProjection();
    void mouseDragRotatesIn3DAndPansIn2D();
    void ellipseCoversTwoSigmaRegion();
    void ellipsoidSilhouetteIsMarginalEllipse_data();
    void ellipsoidSilhouetteIsMarginalEllipse();
    void surfaceCoverageMatchesOpacity_data();
    void surfaceCoverageMatchesOpacity();
    void correspondenceColoursFollowSourcePoints();
    void scalarColouringUsesSequentialMap();
    void paletteSetsBackground();
    void invalidInputThrowsAndKeepsScene();
    void sceneOutlivesViewport();
    void animateFiveHundredEllipsoids_data();
    void animateFiveHundredEllipsoids();

private:
    std::unique_ptr<VtkViewport> m_view;
};

void TestVtkViewport::init()
{
    m_view = std::make_unique<VtkViewport>();
    m_view->resize(640, 480);
    m_view->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_view.get()));
}

void TestVtkViewport::cleanup()
{
    m_view.reset();
}

void TestVtkViewport::cloudRendersInShownWindow()
{
    CloudScene scene;
    scene.attach(m_view.get());
    const CloudSnapshot snap = twoClouds();
    scene.setClouds(snap, { 0, 1 });
    QCOMPARE(scene.pointCount(), 2 * (12 * 12 + 1));
    scene.setPointSize(12.0);
    m_view->set2DMode(true);

    const QImage image = m_view->grabFramebuffer();
    keep(image, QStringLiteral("window_clouds"));
    QVERIFY(!image.isNull());
    const QColor bg = m_view->backgroundColour();
    // Corner pixel is background; a fair share of the picture is drawn (2 x 145 sprites of 12 px).
    QVERIFY(isBackground(image.pixel(2, image.height() / 2), bg));
    const int drawn = countDrawn(image, bg);
    QVERIFY2(drawn > 5000, qPrintable(QStringLiteral("only %1 drawn pixels").arg(drawn)));
    // Both label colours appear with plenty of pixels.
    const int blue = countHue(image, CloudScene::labelColour(0));
    const int orange = countHue(image, CloudScene::labelColour(1));
    QVERIFY2(blue > 2000 && orange > 2000, qPrintable(QStringLiteral("label pixels %1 / %2").arg(blue).arg(orange)));
    // The isolated points are drawn where the renderer projects them, in their label colour,
    // and the padding points (far away, weight 0) did not widen the view.
    const QPoint left = toPixel(m_view->renderer(), -2.6, 1.6, 0.0, image.height());
    const QPoint right = toPixel(m_view->renderer(), 2.6, -1.6, 0.0, image.height());
    QVERIFY(image.rect().contains(left) && image.rect().contains(right));
    QVERIFY(matchesHue(QColor::fromRgb(image.pixel(left)), CloudScene::labelColour(0)));
    QVERIFY(matchesHue(QColor::fromRgb(image.pixel(right)), CloudScene::labelColour(1)));
    // Sprites are round: (2, 2) px off the centre of a 12 px sprite is drawn, but the corners
    // of its bounding square, (5, 5) px off (7 px from the centre), are not.
    // (Sizes are in logical pixels: scale the offsets on high-DPI screens.)
    const int dpr = static_cast<int>(std::lround(m_view->devicePixelRatioF()));
    for (const QPoint off : { QPoint(2, 2), QPoint(-2, 2), QPoint(2, -2), QPoint(-2, -2) }) {
        QVERIFY(!isBackground(image.pixel(left + off * dpr), bg));
    }
    for (const QPoint off : { QPoint(5, 5), QPoint(-5, 5), QPoint(5, -5), QPoint(-5, -5) }) {
        QVERIFY(isBackground(image.pixel(left + off * dpr), bg));
    }
}

void TestVtkViewport::grabImageSizes_data()
{
    QTest::addColumn<QSize>("size");
    QTest::newRow("800x600") << QSize(800, 600);
    QTest::newRow("1234x345") << QSize(1234, 345);
    QTest::newRow("1600x1200") << QSize(1600, 1200);
    QTest::newRow("widget size") << QSize();
}

void TestVtkViewport::grabImageSizes()
{
    QFETCH(QSize, size);
    CloudScene scene;
    scene.attach(m_view.get());
    scene.setClouds(twoClouds(), { 0, 1 });
    m_view->set2DMode(true);
    const quint64 before = m_view->renderCount();

    const QImage image = m_view->grabImage(size);
    keep(image, QStringLiteral("grab_%1x%2").arg(image.width()).arg(image.height()));
    const QSize expected = size.isEmpty() ? m_view->size() * m_view->devicePixelRatio() : size;
    QCOMPARE(image.size(), expected);
    QVERIFY(m_view->renderCount() > before);
    const QColor bg = m_view->backgroundColour();
    QVERIFY(isBackground(image.pixel(0, 0), bg));
    const double drawnShare = static_cast<double>(countDrawn(image, bg)) / (image.width() * image.height());
    QVERIFY2(drawnShare > 0.01, qPrintable(QString::number(drawnShare)));
    QVERIFY(countHue(image, CloudScene::labelColour(0)) > 200);
    QVERIFY(countHue(image, CloudScene::labelColour(1)) > 200);
    // The on-screen view is intact after the offscreen render.
    const QImage screen = m_view->grabFramebuffer();
    QCOMPARE(screen.size(), m_view->size() * m_view->devicePixelRatio());
    QVERIFY(countDrawn(screen, bg) > 3000);
}

void TestVtkViewport::grabImageTransparent()
{
    CloudScene clouds;
    clouds.attach(m_view.get());
    clouds.setClouds(twoClouds(), { 0, 1 });
    GaussianScene gaussians;
    gaussians.attach(m_view.get());
    GaussianSnapshot g = oneGaussian2D();
    g.means = { 0.0f, 1.9f }; // above the grids: a fill-only region
    g.covariances = { 0.05f, 0.0f, 0.0f, 0.01f };
    gaussians.setGaussians(g);
    m_view->set2DMode(true);

    const QImage opaque = m_view->grabImage();
    const QImage image = m_view->grabImage({}, true);
    keep(image, QStringLiteral("grab_transparent"));
    QVERIFY(image.hasAlphaChannel());
    QCOMPARE(qAlpha(image.pixel(0, 0)), 0);
    QCOMPARE(qAlpha(image.pixel(image.width() - 1, image.height() - 1)), 0);
    QCOMPARE(qAlpha(opaque.pixel(0, 0)), 255);
    // An opaque sprite keeps alpha 255 and its colour.
    const QPoint left = toPixel(m_view->renderer(), -2.6, 1.6, 0.0, image.height());
    QCOMPARE(qAlpha(image.pixel(left)), 255);
    QVERIFY(matchesHue(QColor::fromRgb(image.pixel(left)), CloudScene::labelColour(0)));
    // A point of the ellipse fill (opacity 0.3) is translucent: alpha about 0.3 * 255.
    const QPoint fill = toPixel(m_view->renderer(), 0.2, 1.9, 0.0, image.height());
    const int alpha = qAlpha(image.pixel(fill));
    QVERIFY2(std::abs(alpha - 77) <= 12, qPrintable(QString::number(alpha)));
}

void TestVtkViewport::grabImageOfHiddenViewport()
{
    // A viewport that was never shown still renders offscreen.
    VtkViewport hidden;
    hidden.resize(400, 300);
    CloudScene scene;
    scene.attach(&hidden);
    scene.setClouds(twoClouds(), { 0, 1 });
    hidden.set2DMode(true);
    const QImage image = hidden.grabImage(QSize(640, 360));
    keep(image, QStringLiteral("grab_hidden"));
    QCOMPARE(image.size(), QSize(640, 360));
    QVERIFY(countHue(image, CloudScene::labelColour(0)) > 200);
    QVERIFY(countHue(image, CloudScene::labelColour(1)) > 200);
}

void TestVtkViewport::twoDModeUsesParallelProjection()
{
    QSignalSpy spy(m_view.get(), &VtkViewport::modeChanged);
    vtkCamera* camera = m_view->renderer()->GetActiveCamera();
    QVERIFY(!m_view->is2DMode());
    QVERIFY(!camera->GetParallelProjection());
    m_view->set2DMode(true);
    QVERIFY(m_view->is2DMode());
    QVERIFY(camera->GetParallelProjection());
    // Looking straight down -z with y up.
    const double* dir = camera->GetDirectionOfProjection();
    QVERIFY(std::abs(dir[2] + 1.0) < 1e-9);
    const double* up = camera->GetViewUp();
    QVERIFY(std::abs(up[1] - 1.0) < 1e-9);
    m_view->set2DMode(true); // no change, no signal
    m_view->set2DMode(false);
    QVERIFY(!camera->GetParallelProjection());
    QCOMPARE(spy.count(), 2);
    QCOMPARE(spy.at(0).at(0).toBool(), true);
    QCOMPARE(spy.at(1).at(0).toBool(), false);
}

void TestVtkViewport::mouseDragRotatesIn3DAndPansIn2D()
{
    CloudScene scene;
    scene.attach(m_view.get());
    scene.setClouds(twoClouds(), { 0, 1 });
    vtkCamera* camera = m_view->renderer()->GetActiveCamera();
    (void)m_view->grabFramebuffer();

    // 3-D: a horizontal left drag rotates the camera about the focal point.
    double before[3];
    camera->GetDirectionOfProjection(before);
    const quint64 rendersBefore = m_view->renderCount();
    drag(m_view.get(), QPoint(320, 240), QPoint(420, 240));
    QCoreApplication::processEvents();
    (void)m_view->grabFramebuffer();
    double after[3];
    camera->GetDirectionOfProjection(after);
    const double dot = before[0] * after[0] + before[1] * after[1] + before[2] * after[2];
    QVERIFY2(dot < 0.99, qPrintable(QString::number(dot)));
    // The interactor's renders were merged into paints instead of one per mouse move.
    QVERIFY(m_view->renderCount() - rendersBefore <= 4);

    // 2-D: the same drag pans (focal point moves left, view direction stays -z).
    m_view->set2DMode(true);
    (void)m_view->grabFramebuffer();
    double focal[3];
    camera->GetFocalPoint(focal);
    drag(m_view.get(), QPoint(320, 240), QPoint(420, 240));
    (void)m_view->grabFramebuffer();
    const double* dir = camera->GetDirectionOfProjection();
    QVERIFY(std::abs(dir[2] + 1.0) < 1e-9);
    double moved[3];
    camera->GetFocalPoint(moved);
    QVERIFY2(moved[0] < focal[0] - 0.1, qPrintable(QStringLiteral("%1 -> %2").arg(focal[0]).arg(moved[0])));
    QVERIFY(std::abs(moved[1] - focal[1]) < 1e-6);

    // Wheel zooms in: the parallel scale shrinks.
    const double scale = camera->GetParallelScale();
    QWheelEvent wheel(QPointF(320, 240), m_view->mapToGlobal(QPointF(320, 240)), QPoint(), QPoint(0, 120),
        Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
    QCoreApplication::sendEvent(m_view.get(), &wheel);
    QVERIFY(camera->GetParallelScale() < scale);

    // 'r' restores the fitted view.
    QTest::keyClick(m_view.get(), Qt::Key_R);
    QVERIFY(std::abs(camera->GetParallelScale() - scale) < 1e-9);
}

void TestVtkViewport::ellipseCoversTwoSigmaRegion()
{
    GaussianScene scene;
    scene.attach(m_view.get());
    const GaussianSnapshot g = oneGaussian2D();
    scene.setGaussians(g);
    QCOMPARE(scene.count(), 1);
    QVERIFY(!scene.drawsEllipsoids());
    QCOMPARE(scene.sigmaLevel(), 2.0);
    m_view->set2DMode(true);
    zoomOut(m_view.get());
    const QImage image = m_view->grabFramebuffer();
    keep(image, QStringLiteral("ellipse"));
    const QColor bg = m_view->backgroundColour();

    // Independent truth: the 2-sigma set is {m + 2 L u : |u| <= 1} for any L with L L^T = S;
    // use the Cholesky factor (the scene uses an eigen-decomposition).
    const double s00 = g.covariances[0];
    const double s01 = g.covariances[1];
    const double s11 = g.covariances[3];
    const double l00 = std::sqrt(s00);
    const double l10 = s01 / l00;
    const double l11 = std::sqrt(s11 - l10 * l10);
    const auto at = [&](double radius, double angle) {
        const double u = radius * std::cos(angle);
        const double v = radius * std::sin(angle);
        const double x = g.means[0] + 2.0 * l00 * u;
        const double y = g.means[1] + 2.0 * (l10 * u + l11 * v);
        return toPixel(m_view->renderer(), x, y, 0.0, image.height());
    };
    int inside = 0;
    int outside = 0;
    for (int k = 0; k < 16; ++k) {
        const double angle = 2.0 * kPi * k / 16.0 + 0.1;
        const QPoint in = at(0.85, angle);
        const QPoint out = at(1.2, angle);
        QVERIFY(image.rect().contains(in) && image.rect().contains(out));
        if (!isBackground(image.pixel(in), bg)) {
            ++inside;
        }
        if (isBackground(image.pixel(out), bg)) {
            ++outside;
        }
        // The fill is the label colour blended with the background: same hue, paler.
        const QColor fill = QColor::fromRgb(image.pixel(in));
        QVERIFY(fill.hsvSaturationF() > 0.1);
        QVERIFY(hueDistance(fill.hsvHueF(), colours::categorical(0).hsvHueF()) < kHueTolerance);
    }
    QCOMPARE(inside, 16);
    QCOMPARE(outside, 16);
    // The centre marker is drawn.
    const QPoint centre = toPixel(m_view->renderer(), g.means[0], g.means[1], 0.0, image.height());
    QVERIFY(!isBackground(image.pixel(centre), bg));

    // A level of 1 sigma shrinks the ellipse: radius 0.85 of 2 sigma (1.7 sigma) is now outside.
    scene.setSigmaLevel(1.0);
    const QImage one = m_view->grabFramebuffer();
    keep(one, QStringLiteral("ellipse_1sigma"));
    for (int k = 0; k < 8; ++k) {
        QVERIFY(isBackground(one.pixel(at(0.85, 2.0 * kPi * k / 8.0 + 0.1)), bg));
        QVERIFY(!isBackground(one.pixel(at(0.4, 2.0 * kPi * k / 8.0 + 0.1)), bg));
    }
}

void TestVtkViewport::ellipsoidSilhouetteIsMarginalEllipse_data()
{
    QTest::addColumn<int>("method");
    QTest::newRow("glyph") << static_cast<int>(GaussianScene::EllipsoidMethod::Glyph);
    QTest::newRow("mesh") << static_cast<int>(GaussianScene::EllipsoidMethod::Mesh);
}

void TestVtkViewport::ellipsoidSilhouetteIsMarginalEllipse()
{
    // Seen along -z with parallel projection, the 2-sigma ellipsoid of S projects onto the
    // 2-sigma ellipse of the xy marginal (the top-left 2x2 block of S).
    QFETCH(int, method);
    GaussianScene scene;
    scene.setEllipsoidMethod(static_cast<GaussianScene::EllipsoidMethod>(method));
    scene.attach(m_view.get());
    const GaussianSnapshot g = oneGaussian3D();
    scene.setGaussians(g);
    QVERIFY(scene.drawsEllipsoids());
    m_view->set2DMode(true);
    zoomOut(m_view.get());
    const QImage image = m_view->grabFramebuffer();
    keep(image, QStringLiteral("ellipsoid_%1").arg(method == 0 ? "glyph" : "mesh"));
    const QColor bg = m_view->backgroundColour();

    const double s00 = g.covariances[0];
    const double s01 = g.covariances[1];
    const double s11 = g.covariances[4];
    const double l00 = std::sqrt(s00);
    const double l10 = s01 / l00;
    const double l11 = std::sqrt(s11 - l10 * l10);
    const auto at = [&](double radius, double angle) {
        const double u = radius * std::cos(angle);
        const double v = radius * std::sin(angle);
        return toPixel(m_view->renderer(), g.means[0] + 2.0 * l00 * u,
            g.means[1] + 2.0 * (l10 * u + l11 * v), 0.0, image.height());
    };
    for (int k = 0; k < 16; ++k) {
        const double angle = 2.0 * kPi * k / 16.0 + 0.05;
        QVERIFY(image.rect().contains(at(1.15, angle)));
        QVERIFY2(!isBackground(image.pixel(at(0.85, angle)), bg), qPrintable(QStringLiteral("inside, k=%1").arg(k)));
        QVERIFY2(isBackground(image.pixel(at(1.15, angle)), bg), qPrintable(QStringLiteral("outside, k=%1").arg(k)));
    }
}

void TestVtkViewport::surfaceCoverageMatchesOpacity_data()
{
    QTest::addColumn<int>("method");
    QTest::addColumn<int>("dim");
    QTest::addColumn<double>("opacity");
    for (double o : { 0.2, 0.45, 0.8 }) {
        QTest::addRow("glyph %.2f", o) << static_cast<int>(GaussianScene::EllipsoidMethod::Glyph) << 3 << o;
        QTest::addRow("mesh %.2f", o) << static_cast<int>(GaussianScene::EllipsoidMethod::Mesh) << 3 << o;
        QTest::addRow("ellipse %.2f", o) << static_cast<int>(GaussianScene::EllipsoidMethod::Glyph) << 2 << o;
    }
}

void TestVtkViewport::surfaceCoverageMatchesOpacity()
{
    // With the transparent export, alpha is the coverage: one front-facing layer of opacity o
    // (ellipsoids are drawn without back faces) must give alpha o, whichever method draws it.
    QFETCH(int, method);
    QFETCH(int, dim);
    QFETCH(double, opacity);
    GaussianScene scene;
    scene.setEllipsoidMethod(static_cast<GaussianScene::EllipsoidMethod>(method));
    scene.setFillOpacity(opacity);
    QCOMPARE(scene.fillOpacity(), opacity);
    scene.attach(m_view.get());
    GaussianSnapshot g;
    g.count = 1;
    g.dim = dim;
    g.means.assign(static_cast<size_t>(dim), 0.0f);
    g.covariances.assign(static_cast<size_t>(dim * dim), 0.0f);
    for (int i = 0; i < dim; ++i) {
        g.covariances[static_cast<size_t>(i * dim + i)] = 1.0f;
    }
    scene.setGaussians(g);
    m_view->set2DMode(true);
    const QImage image = m_view->grabImage({}, true);
    // Halfway between the centre marker and the rim.
    const QPoint p = toPixel(m_view->renderer(), 1.0, 0.3, 0.0, image.height());
    const double alpha = qAlpha(image.pixel(p)) / 255.0;
    QVERIFY2(std::abs(alpha - opacity) < 0.03, qPrintable(QString::number(alpha)));
}

void TestVtkViewport::correspondenceColoursFollowSourcePoints()
{
    CloudScene scene;
    scene.attach(m_view.get());
    // Cloud 0: four corners and the centre of a square; cloud 1: the same points moved.
    CloudSnapshot s;
    s.count = 2;
    s.maxPoints = 6;
    s.dim = 2;
    s.points = { 0, 0, 1, 0, 0, 1, 1, 1, 0.5f, 0.5f, 9, 9, //
        5, 5, 7, 6, 5, 8, 8, 8, 6, 6, 9, 9 };
    s.weights = { 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1 };
    s.labels = { 0, 1 };

    scene.setCloud(s, 0);
    scene.setCorrespondenceColours(s, 0);
    QCOMPARE(scene.colourMode(), CloudScene::ColourMode::Correspondence);
    std::vector<QColor> source;
    for (int i = 0; i < scene.pointCount(); ++i) {
        source.push_back(scene.pointColour(i));
    }
    QCOMPARE(static_cast<int>(source.size()), 5);
    // Colours follow ColourMaps::position2D of the position normalised to the bounding box.
    QCOMPARE(source[0].rgb(), colours::position2D(0.0, 0.0).rgb());
    QCOMPARE(source[3].rgb(), colours::position2D(1.0, 1.0).rgb());
    QCOMPARE(source[4].rgb(), colours::position2D(0.5, 0.5).rgb());
    // Distinct corners get clearly distinct colours.
    for (int a = 0; a < 4; ++a) {
        for (int b = a + 1; b < 4; ++b) {
            const int diff = std::abs(source[a].red() - source[b].red()) + std::abs(source[a].green() - source[b].green())
                + std::abs(source[a].blue() - source[b].blue());
            QVERIFY2(diff > 60, qPrintable(QStringLiteral("%1 vs %2: %3").arg(a).arg(b).arg(diff)));
        }
    }
    // The mapped cloud keeps the colours by index, whatever its positions (the mode survives
    // setCloud); its point 5 has no live source point and is grey.
    scene.setCloud(s, 1);
    QCOMPARE(scene.pointCount(), 6);
    for (int i = 0; i < 5; ++i) {
        QCOMPARE(scene.pointColour(i).rgb(), source[static_cast<size_t>(i)].rgb());
    }
    QCOMPARE(scene.pointColour(5).hsvSaturation(), 0);
    // An explicit matching: point i of the shown cloud came from source point 3 - i.
    scene.setCorrespondenceColours(s, 0, { 3, 2, 1, 0 });
    for (int i = 0; i < 4; ++i) {
        QCOMPARE(scene.pointColour(i).rgb(), source[static_cast<size_t>(3 - i)].rgb());
    }
    QCOMPARE(scene.pointColour(4).hsvSaturation(), 0); // beyond the matching
    QVERIFY_THROWS_EXCEPTION(ConfigError, scene.setCorrespondenceColours(s, 0, { 6 }));

    // Rendered, the sprite of a corner shows its colour.
    scene.setCorrespondenceColours(s, 0);
    scene.setPointSize(14.0);
    m_view->set2DMode(true);
    const QImage image = m_view->grabFramebuffer();
    keep(image, QStringLiteral("correspondence"));
    const QPoint p = toPixel(m_view->renderer(), 7, 6, 0.0, image.height());
    QVERIFY(hueDistance(QColor::fromRgb(image.pixel(p)).hsvHueF(), source[1].hsvHueF()) < kHueTolerance);
}

void TestVtkViewport::scalarColouringUsesSequentialMap()
{
    CloudScene scene;
    scene.attach(m_view.get());
    const CloudSnapshot s = twoClouds();
    scene.setCloud(s, 1);
    std::vector<float> values(static_cast<size_t>(s.count) * s.maxPoints, 0.0f);
    for (int i = 0; i < s.maxPoints; ++i) {
        values[static_cast<size_t>(s.maxPoints + i)] = static_cast<float>(i);
    }
    // Values of padding and of cloud 0 are ignored for the range: it is [0, 144].
    values[static_cast<size_t>(s.maxPoints + s.maxPoints - 1)] = 1e6f;
    values[0] = -1e6f;
    scene.colourByScalar(values, QStringLiteral("index"));
    QCOMPARE(scene.colourMode(), CloudScene::ColourMode::Scalar);
    QCOMPARE(scene.pointColour(0).rgb(), colours::sequential(0.0).rgb());
    QCOMPARE(scene.pointColour(144).rgb(), colours::sequential(1.0).rgb());
    QCOMPARE(scene.pointColour(72).rgb(), colours::sequential(0.5).rgb());
    // Explicit range.
    scene.colourByScalar(values, QStringLiteral("index"), { 0.0, 288.0 });
    QCOMPARE(scene.pointColour(144).rgb(), colours::sequential(0.5).rgb());

    m_view->set2DMode(true);
    const QImage image = m_view->grabFramebuffer();
    keep(image, QStringLiteral("scalar"));
    // The scalar bar occupies the right edge: its yellow top end is drawn there.
    int yellow = 0;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = image.width() * 88 / 100; x < image.width(); ++x) {
            yellow += hueDistance(QColor::fromRgb(image.pixel(x, y)).hsvHueF(), colours::sequential(1.0).hsvHueF()) < 0.03
                    && QColor::fromRgb(image.pixel(x, y)).hsvSaturationF() > 0.5
                ? 1
                : 0;
        }
    }
    QVERIFY2(yellow > 50, qPrintable(QString::number(yellow)));

    // A wrong size throws and keeps the colours.
    QVERIFY_THROWS_EXCEPTION(ConfigError, scene.colourByScalar({ 1.0f }, QStringLiteral("bad")));
    QCOMPARE(scene.pointColour(144).rgb(), colours::sequential(0.5).rgb());
    // Back to labels.
    scene.colourByLabel();
    QCOMPARE(scene.pointColour(0).rgb(), CloudScene::labelColour(1).rgb());
}

void TestVtkViewport::paletteSetsBackground()
{
    QPalette dark = m_view->palette();
    dark.setColor(QPalette::Base, QColor(30, 32, 36));
    dark.setColor(QPalette::Text, QColor(230, 230, 230));
    m_view->setPalette(dark);
    QCOMPARE(m_view->backgroundColour(), QColor(30, 32, 36));
    QCOMPARE(m_view->foregroundColour(), QColor(230, 230, 230));
    double rgb[3];
    m_view->renderer()->GetBackground(rgb);
    QVERIFY(std::abs(rgb[0] - 30 / 255.0) < 1e-6);
    CloudScene scene;
    scene.attach(m_view.get());
    scene.setClouds(twoClouds(), { 0, 1 });
    m_view->set2DMode(true);
    const QImage image = m_view->grabFramebuffer();
    keep(image, QStringLiteral("dark"));
    const QRgb corner = image.pixel(1, 1);
    QVERIFY(std::abs(qRed(corner) - 30) <= 2 && std::abs(qBlue(corner) - 36) <= 2);
    // The legend (entry text in the label colours) stands out in the top-right corner.
    int light = 0;
    for (int y = 0; y < image.height() / 5; ++y) {
        for (int x = image.width() * 3 / 4; x < image.width(); ++x) {
            light += qGray(image.pixel(x, y)) > 150 ? 1 : 0;
        }
    }
    QVERIFY2(light > 20, qPrintable(QString::number(light)));
}

void TestVtkViewport::invalidInputThrowsAndKeepsScene()
{
    CloudScene clouds;
    clouds.attach(m_view.get());
    const CloudSnapshot s = twoClouds();
    clouds.setCloud(s, 0);
    QVERIFY_THROWS_EXCEPTION(ConfigError, clouds.setCloud(s, 2));
    QVERIFY_THROWS_EXCEPTION(ConfigError, clouds.setClouds(s, { 0, -1 }));
    CloudSnapshot broken = s;
    broken.weights.pop_back();
    QVERIFY_THROWS_EXCEPTION(ConfigError, clouds.setCloud(broken, 0));
    QCOMPARE(clouds.pointCount(), 145);
    QVERIFY_THROWS_EXCEPTION(ConfigError, clouds.setPointSize(0.0));

    GaussianScene gaussians;
    gaussians.attach(m_view.get());
    gaussians.setGaussians(oneGaussian2D());
    GaussianSnapshot bad = oneGaussian2D();
    bad.covariances = { 1.0f, 2.0f, 2.0f, 1.0f }; // eigenvalues 3 and -1
    QVERIFY_THROWS_EXCEPTION(ConfigError, gaussians.setGaussians(bad));
    bad.covariances = { 1.0f, 0.5f, 0.0f, 1.0f }; // not symmetric
    QVERIFY_THROWS_EXCEPTION(ConfigError, gaussians.setGaussians(bad));
    bad.covariances = { 1.0f, 0.0f, 0.0f }; // wrong size
    QVERIFY_THROWS_EXCEPTION(ConfigError, gaussians.setGaussians(bad));
    QVERIFY_THROWS_EXCEPTION(ConfigError, gaussians.setSigmaLevel(0.0));
    QCOMPARE(gaussians.count(), 1);
    // A singular (rank-1) covariance is fine: a degenerate ellipse (a segment).
    GaussianSnapshot flat = oneGaussian2D();
    flat.covariances = { 1.0f, 1.0f, 1.0f, 1.0f };
    gaussians.setGaussians(flat);
    QCOMPARE(gaussians.count(), 1);
}

void TestVtkViewport::sceneOutlivesViewport()
{
    CloudScene scene;
    const int propsBefore = m_view->renderer()->GetViewProps()->GetNumberOfItems();
    scene.attach(m_view.get());
    QCOMPARE(scene.viewport(), m_view.get());
    QVERIFY(m_view->renderer()->GetViewProps()->GetNumberOfItems() > propsBefore);
    scene.setClouds(twoClouds(), { 0, 1 });
    (void)m_view->grabFramebuffer();
    scene.detach();
    QCOMPARE(m_view->renderer()->GetViewProps()->GetNumberOfItems(), propsBefore);
    QCOMPARE(scene.viewport(), nullptr);
    scene.attach(m_view.get());
    (void)m_view->grabFramebuffer();
    m_view.reset(); // the viewport goes first
    QCOMPARE(scene.viewport(), nullptr);
    scene.setCloud(twoClouds(), 0); // still usable, detached
    QCOMPARE(scene.pointCount(), 145);
    init(); // a fresh viewport for cleanup()
    scene.attach(m_view.get());
    m_view->set2DMode(true);
    QVERIFY(countHue(m_view->grabFramebuffer(), CloudScene::labelColour(0)) > 500);
}

void TestVtkViewport::animateFiveHundredEllipsoids_data()
{
    QTest::addColumn<int>("method");
    QTest::addColumn<int>("dim");
    QTest::newRow("3-D glyph") << static_cast<int>(GaussianScene::EllipsoidMethod::Glyph) << 3;
    QTest::newRow("3-D mesh") << static_cast<int>(GaussianScene::EllipsoidMethod::Mesh) << 3;
    QTest::newRow("2-D ellipses") << static_cast<int>(GaussianScene::EllipsoidMethod::Glyph) << 2;
}

void TestVtkViewport::animateFiveHundredEllipsoids()
{
    QFETCH(int, method);
    QFETCH(int, dim);
    constexpr int kCount = 500;
    constexpr int kFrames = 30;
    m_view->resize(800, 600);
    GaussianScene scene;
    scene.setEllipsoidMethod(static_cast<GaussianScene::EllipsoidMethod>(method));
    scene.attach(m_view.get());
    const auto frame = [&](int f) {
        GaussianSnapshot g = manyEllipsoids(kCount, 0.05 * f);
        if (dim == 2) {
            GaussianSnapshot flat;
            flat.count = g.count;
            flat.dim = 2;
            for (int k = 0; k < g.count; ++k) {
                flat.means.insert(flat.means.end(), { g.means[3 * k], g.means[3 * k + 1] });
                const float* c = g.covariances.data() + 9 * k;
                flat.covariances.insert(flat.covariances.end(), { c[0], c[1], c[3], c[4] });
            }
            flat.labels = g.labels;
            return flat;
        }
        return g;
    };
    scene.setGaussians(frame(0));
    m_view->resetCamera();
    const QImage first = m_view->grabFramebuffer();

    // The application's loop: new data, then wait until that frame reached the screen
    // (render in paintGL, blit, Qt's composition).
    QSignalSpy swapped(m_view.get(), &QOpenGLWidget::frameSwapped);
    QElapsedTimer updateClock;
    qint64 updateNs = 0;
    const quint64 rendersBefore = m_view->renderCount();
    QElapsedTimer clock;
    clock.start();
    for (int f = 1; f <= kFrames; ++f) {
        const GaussianSnapshot g = frame(f);
        updateClock.start();
        scene.setGaussians(g);
        updateNs += updateClock.nsecsElapsed();
        QVERIFY(swapped.wait(10'000));
    }
    const double seconds = static_cast<double>(clock.nsecsElapsed()) * 1e-9;
    const quint64 renders = m_view->renderCount() - rendersBefore;
    qInfo("%s: %d Gaussians, %d frames in %.2f s = %.1f frames/s (scene update %.2f ms/frame)",
        QTest::currentDataTag(), kCount, kFrames, seconds, kFrames / seconds,
        static_cast<double>(updateNs) * 1e-6 / kFrames);
    QCOMPARE(renders, static_cast<quint64>(kFrames)); // one render per frame, none merged away
    const QImage last = m_view->grabFramebuffer();
    keep(last, QStringLiteral("animated_%1").arg(QString::fromLatin1(QTest::currentDataTag()).replace(QLatin1Char(' '), QLatin1Char('_'))));
    QCOMPARE(scene.count(), kCount);
    QVERIFY(countDrawn(last, m_view->backgroundColour()) > 5000);
    QVERIFY(first != last); // the animation moved things
}

QTEST_MAIN(TestVtkViewport)
#include "tst_vtkviewport.moc"
