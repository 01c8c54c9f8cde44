// GalleryView: 300 thumbnails populate lazily (only what is seen is drawn), scroll fluidly, and
// show the data (label colours, not blank). Under Xvfb.

#include "wfm/widgets/GalleryView.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QImage>
#include <QScrollBar>
#include <QtTest>

#include <cmath>
#include <random>

namespace {

/// `count` rings of 128 points in 2-D, labels alternating 0 / 1.
wfm::CloudSnapshot rings(int count, int dim = 2)
{
    wfm::CloudSnapshot s;
    s.count = count;
    s.maxPoints = 128;
    s.dim = dim;
    s.points.resize(static_cast<size_t>(count) * s.maxPoints * dim);
    s.weights.assign(static_cast<size_t>(count) * s.maxPoints, 1.0f / s.maxPoints);
    s.labelNames = { "circle", "ellipse" };
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(0.5f, 1.5f);
    for (int k = 0; k < count; ++k) {
        const float a = u(rng), b = k % 2 ? u(rng) * 0.5f : a;
        for (int i = 0; i < s.maxPoints; ++i) {
            const float t = 6.2831853f * i / s.maxPoints;
            float* p = s.points.data() + (static_cast<size_t>(k) * s.maxPoints + i) * dim;
            p[0] = a * std::cos(t);
            p[1] = b * std::sin(t);
            if (dim > 2) {
                p[2] = 0.3f * std::sin(3 * t);
            }
        }
        s.labels.push_back(k % 2);
    }
    return s;
}

} // namespace

class TestGalleryView : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void populatesAndScrolls();
    void gaussians();
};

void TestGalleryView::populatesAndScrolls()
{
    wfm::GalleryView view;
    view.resize(800, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QElapsedTimer clock;
    clock.start();
    view.setClouds(rings(300));
    QApplication::processEvents();
    const qint64 populateMs = clock.elapsed();
    QCOMPARE(view.count(), 300);
    QTRY_VERIFY(view.renderedCount() > 0);
    QTest::qWait(100);
    const int firstScreen = view.renderedCount();
    // Lazy: only about one screenful is drawn (7 columns x 5 rows here), not all 300.
    QVERIFY2(firstScreen < 120, qPrintable(QString::number(firstScreen)));

    // Scroll through the whole gallery, one step per frame, timing each repaint.
    QScrollBar* bar = view.verticalScrollBar();
    QVERIFY(bar->maximum() > 0);
    QElapsedTimer frame;
    qint64 worstMs = 0;
    int steps = 0;
    for (int v = 0; v <= bar->maximum(); v += 40) {
        frame.restart();
        bar->setValue(v);
        view.viewport()->repaint();
        worstMs = std::max(worstMs, frame.elapsed());
        ++steps;
    }
    bar->setValue(bar->maximum());
    view.viewport()->repaint();
    qInfo("populate %lld ms, first screen %d thumbnails, %d scroll steps, worst step %lld ms, drawn %d", populateMs,
        firstScreen, steps, worstMs, view.renderedCount());
    QCOMPARE(view.renderedCount(), 300); // everything was seen once
    QVERIFY2(worstMs < 250, "scrolling is not fluid");
    // Scrolling back is free: thumbnails are cached.
    frame.restart();
    bar->setValue(0);
    view.viewport()->repaint();
    QVERIFY(frame.elapsed() < 100);
    QCOMPARE(view.renderedCount(), 300);

    const QImage shot = view.grab().toImage();
    const QString path = QDir::temp().filePath(QStringLiteral("wfm-gallery.png"));
    shot.save(path);
    qInfo("screenshot %s", qPrintable(path));
    int blue = 0, orange = 0;
    for (int y = 0; y < shot.height(); y += 2) {
        for (int x = 0; x < shot.width(); x += 2) {
            const QColor c = shot.pixelColor(x, y);
            blue += c.blue() > 150 && c.red() < 80;
            orange += c.red() > 200 && c.green() > 90 && c.green() < 160 && c.blue() < 60;
        }
    }
    QVERIFY(blue > 100);
    QVERIFY(orange > 100);
}

void TestGalleryView::gaussians()
{
    wfm::GaussianSnapshot g;
    g.count = 50;
    g.dim = 2;
    for (int k = 0; k < g.count; ++k) {
        g.means.insert(g.means.end(), { static_cast<float>(k), 0.0f });
        const float a = 1.0f + k * 0.05f, b = 0.3f;
        g.covariances.insert(g.covariances.end(), { a, b, b, 0.5f });
        g.labels.push_back(k % 3);
    }
    wfm::GalleryView view;
    view.resize(400, 300);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.setGaussians(g);
    QCOMPARE(view.count(), 50);
    QTRY_VERIFY(view.renderedCount() > 0);
    const QImage icon = view.model()->index(0, 0).data(Qt::DecorationRole).value<QImage>();
    QVERIFY(!icon.isNull());
    int coloured = 0;
    for (int y = 0; y < icon.height(); ++y) {
        for (int x = 0; x < icon.width(); ++x) {
            coloured += qAlpha(icon.pixel(x, y)) > 60;
        }
    }
    QVERIFY(coloured > 200);
}

QTEST_MAIN(TestGalleryView)
#include "tst_galleryview.moc"
