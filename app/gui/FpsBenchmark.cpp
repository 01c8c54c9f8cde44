#include "FpsBenchmark.h"

#include "wfm/Snapshot.h"
#include "wfm/widgets/CloudScene.h"
#include "wfm/widgets/GaussianScene.h"
#include "wfm/widgets/VtkViewport.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QOpenGLContext>
#include <QOpenGLFunctions>
#include <QThread>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

namespace wfm::gui {

namespace {

/// Renders frames of `update` (called with the frame number before each render) into `view`
/// for `seconds`; returns frames per second and the frame-time percentiles.
QJsonObject measure(VtkViewport& view, double seconds, const std::function<void(int)>& update)
{
    // Warm-up: the first frame builds the GL resources.
    auto renderOnce = [&view] {
        // The app's own path: request a render, let the event loop paint (paintGL renders and
        // blits); a frame counts once VTK has rendered it.
        const quint64 n = view.renderCount();
        view.requestRender();
        QElapsedTimer guard;
        guard.start();
        while (view.renderCount() == n && guard.elapsed() < 5000) {
            QApplication::processEvents(QEventLoop::AllEvents);
        }
    };
    update(0);
    renderOnce();
    std::vector<double> times;
    QElapsedTimer total, frame;
    total.start();
    int f = 1;
    const quint64 before = view.renderCount();
    while (total.elapsed() < seconds * 1000.0) {
        frame.start();
        update(f++);
        renderOnce();
        times.push_back(frame.nsecsElapsed() / 1e6);
    }
    const double elapsed = total.nsecsElapsed() / 1e9;
    std::sort(times.begin(), times.end());
    auto pct = [&](double p) { return times.empty() ? 0.0 : times[std::min(times.size() - 1, static_cast<size_t>(p * times.size()))]; };
    QJsonObject o;
    o[QStringLiteral("frames")] = static_cast<int>(times.size());
    o[QStringLiteral("vtk_renders")] = static_cast<qint64>(view.renderCount() - before);
    o[QStringLiteral("seconds")] = elapsed;
    o[QStringLiteral("fps")] = times.size() / elapsed;
    o[QStringLiteral("frame_ms_p50")] = pct(0.5);
    o[QStringLiteral("frame_ms_p95")] = pct(0.95);
    return o;
}

QString cpuModel()
{
    QFile f(QStringLiteral("/proc/cpuinfo"));
    if (f.open(QIODevice::ReadOnly)) {
        for (const QByteArray& line : f.readAll().split('\n')) {
            if (line.startsWith("model name")) {
                return QString::fromLatin1(line.mid(line.indexOf(':') + 1)).trimmed();
            }
        }
    }
    return {};
}

} // namespace

QJsonObject runFpsBenchmark(double seconds)
{
    VtkViewport view;
    view.resize(800, 600);
    view.show();
    for (int i = 0; i < 10; ++i) {
        QApplication::processEvents(QEventLoop::AllEvents, 20);
    }
    QJsonObject out;
    view.makeCurrent();
    if (QOpenGLContext* ctx = QOpenGLContext::currentContext()) {
        auto* gl = ctx->functions();
        out[QStringLiteral("gl_renderer")] = QString::fromLatin1(reinterpret_cast<const char*>(gl->glGetString(GL_RENDERER)));
        out[QStringLiteral("gl_version")] = QString::fromLatin1(reinterpret_cast<const char*>(gl->glGetString(GL_VERSION)));
    }
    view.doneCurrent();
    out[QStringLiteral("cpu")] = cpuModel();
    out[QStringLiteral("cpu_threads")] = QThread::idealThreadCount();
    out[QStringLiteral("window")] = QStringLiteral("800x600");

    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    {
        // 100k points of one 3-D cloud; every frame moves them (a trajectory-like rotation
        // plus breathing), so the whole vertex buffer is re-uploaded.
        CloudSnapshot base;
        base.count = 1;
        base.maxPoints = 100'000;
        base.dim = 3;
        base.points.resize(300'000);
        for (float& v : base.points) {
            v = normal(rng);
        }
        base.weights.assign(100'000, 1e-5f);
        CloudScene scene;
        scene.setPointSize(3);
        scene.attach(&view);
        view.set2DMode(false);
        CloudSnapshot frame = base;
        scene.setClouds(frame, { 0 });
        view.resetCamera();
        out[QStringLiteral("points_100k")] = measure(view, seconds, [&](int f) {
            const float a = 0.02f * f, c = std::cos(a), s = std::sin(a), k = 1.0f + 0.1f * std::sin(0.1f * f);
            for (size_t i = 0; i < 100'000; ++i) {
                const float* p = base.points.data() + 3 * i;
                float* q = frame.points.data() + 3 * i;
                q[0] = k * (c * p[0] + s * p[2]);
                q[1] = k * p[1];
                q[2] = k * (-s * p[0] + c * p[2]);
            }
            scene.setClouds(frame, { 0 });
        });
        scene.detach();
    }
    {
        // 500 translucent 3-D ellipsoids (instanced glyphs) whose means and covariances change
        // every frame.
        GaussianSnapshot base;
        base.count = 500;
        base.dim = 3;
        for (int k = 0; k < 500; ++k) {
            base.means.insert(base.means.end(), { 4 * normal(rng), 4 * normal(rng), 4 * normal(rng) });
            float m[9];
            for (float& v : m) {
                v = 0.3f * normal(rng);
            }
            for (int i = 0; i < 3; ++i) {
                for (int j = 0; j < 3; ++j) {
                    float sum = i == j ? 0.02f : 0.0f;
                    for (int l = 0; l < 3; ++l) {
                        sum += m[i * 3 + l] * m[j * 3 + l];
                    }
                    base.covariances.push_back(sum);
                }
            }
            base.labels.push_back(k % 5);
        }
        GaussianScene scene;
        scene.attach(&view);
        GaussianSnapshot frame = base;
        scene.setGaussians(frame);
        view.resetCamera();
        out[QStringLiteral("ellipsoids_500")] = measure(view, seconds, [&](int f) {
            const float t = 0.05f * f;
            for (int k = 0; k < 500; ++k) {
                const float w = 1.0f + 0.3f * std::sin(t + k);
                for (int i = 0; i < 3; ++i) {
                    frame.means[3 * k + i] = base.means[3 * k + i] + 0.5f * std::sin(t + i + k);
                }
                for (int i = 0; i < 9; ++i) {
                    frame.covariances[9 * k + i] = w * base.covariances[9 * k + i];
                }
            }
            scene.setGaussians(frame);
        });
        scene.detach();
    }
    return out;
}

} // namespace wfm::gui
