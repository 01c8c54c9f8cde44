// wfm render: pictures (PNG) and videos (MP4, GIF) of a dataset's gallery, a geodesic between two
// of its distributions, or a trained run's generation trajectory, rendered offscreen by the same
// VTK scenes as WFM Studio. The engine is reached through the GUI's torch-free layer
// (app/gui/engine/Engine.h); pictures are written by ImageExport, videos by the ffmpeg program.

#include "Render.h"
#include "XDisplay.h"

#include "ImageExport.h"
#include "SampleLayout.h"
#include "VideoExport.h"
#include "engine/Engine.h"
#include "wfm/widgets/CloudScene.h"
#include "wfm/widgets/GaussianScene.h"
#include "wfm/widgets/LinesScene.h"
#include "wfm/widgets/VtkViewport.h"

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <vtkCamera.h>
#include <vtkRenderer.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>

namespace wfm::cli {

namespace {

struct RenderOptions
{
    std::string data;
    std::string run;
    std::string geodesic;
    int generate = 0;
    std::string out;
    std::string size = "1280x720";
    int fps = 25;
    double seconds = 4.0;
    int count = 16;
    std::uint64_t seed = 0;
    std::string xvfb = "auto";
    bool lines = false;
};

class RenderUsage : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

enum class Output
{
    Png,
    Video
};

/// Clouds of `a` followed by those of `b` (same maxPoints and dim), for fitting the camera to both.
CloudSnapshot concat(const CloudSnapshot& a, const CloudSnapshot& b)
{
    if (a.count == 0 || a.maxPoints != b.maxPoints || a.dim != b.dim) {
        return b;
    }
    CloudSnapshot c = a;
    c.count = a.count + b.count;
    c.points.insert(c.points.end(), b.points.begin(), b.points.end());
    c.weights.insert(c.weights.end(), b.weights.begin(), b.weights.end());
    if (!a.labels.empty() && !b.labels.empty()) {
        c.labels.insert(c.labels.end(), b.labels.begin(), b.labels.end());
    } else {
        c.labels.clear();
    }
    return c;
}

GaussianSnapshot concat(const GaussianSnapshot& a, const GaussianSnapshot& b)
{
    if (a.count == 0 || a.dim != b.dim) {
        return b;
    }
    GaussianSnapshot c = a;
    c.count = a.count + b.count;
    c.means.insert(c.means.end(), b.means.begin(), b.means.end());
    c.covariances.insert(c.covariances.end(), b.covariances.begin(), b.covariances.end());
    if (!a.labels.empty() && !b.labels.empty()) {
        c.labels.insert(c.labels.end(), b.labels.begin(), b.labels.end());
    } else {
        c.labels.clear();
    }
    return c;
}

GaussianSnapshot firstGaussians(const GaussianSnapshot& g, int n)
{
    GaussianSnapshot out = g;
    n = std::clamp(n, 1, g.count);
    out.count = n;
    out.means.resize(static_cast<size_t>(n) * g.dim);
    out.covariances.resize(static_cast<size_t>(n) * g.dim * g.dim);
    if (!out.labels.empty()) {
        out.labels.resize(static_cast<size_t>(n));
    }
    return out;
}

std::vector<int> allIndices(int n)
{
    std::vector<int> all(static_cast<size_t>(std::max(0, n)));
    for (int k = 0; k < n; ++k) {
        all[static_cast<size_t>(k)] = k;
    }
    return all;
}

/// What is rendered: a sequence of frames (one for a gallery) of clouds or Gaussians.
struct Content
{
    std::string kind; ///< gallery, geodesic, generation
    gui::Samples samples; ///< frames (geodesic, generation); final samples (gallery: the data)
    bool arrangeGrid = true;
    GridLayout grid;
    bool transportLines = false; ///< geodesic: lines from x to T(x)
};

/// Draws the content's frames into a viewport.
class Renderer
{
public:
    Renderer(const Content& content, QSize size)
        : m_content(content)
        , m_size(size)
    {
        m_view.setAttribute(Qt::WA_DontShowOnScreen);
        m_view.resize(size);
        m_view.show();
        QApplication::processEvents();
        m_clouds.attach(&m_view);
        m_gaussians.attach(&m_view);
        const gui::Samples& s = content.samples;
        m_twoD = (s.gaussian ? s.gaussians.dim : s.clouds.dim) <= 2;
        m_view.set2DMode(m_twoD);
        // Fit the camera to the first and the last frame together (noise and data may differ in
        // extent), then keep it.
        if (s.gaussian) {
            const GaussianSnapshot& first = s.gaussianFrames.empty() ? s.gaussians : s.gaussianFrames.front();
            m_gaussians.setGaussians(&first == &s.gaussians ? s.gaussians : concat(first, s.gaussians));
        } else {
            const CloudSnapshot& first = s.cloudFrames.empty() ? s.clouds : s.cloudFrames.front();
            const CloudSnapshot both = &first == &s.clouds ? s.clouds : concat(arranged(first), arranged(s.clouds));
            m_clouds.setClouds(&first == &s.clouds ? arranged(s.clouds) : both,
                allIndices(&first == &s.clouds ? s.clouds.count : both.count));
            m_clouds.colourByLabel();
        }
        m_view.resetCamera();
        if (content.transportLines && !s.gaussian && !s.cloudFrames.empty() && s.clouds.count == 3) {
            // Frames hold start (0), end (1) and the interpolant (2); the last interpolant is T(x).
            const CloudSnapshot& c = s.cloudFrames.front();
            const size_t span = static_cast<size_t>(c.liveCount(0)) * c.dim;
            const float* x = c.cloud(0);
            const float* tx = s.cloudFrames.back().cloud(2);
            m_lines.attach(&m_view);
            m_lines.setSegments(std::vector<float>(x, x + span), std::vector<float>(tx, tx + span), c.dim);
        }
    }

    int trajectoryLength() const { return m_content.samples.frameCount(); }

    /// Shows trajectory frame `frame` (-1: the final samples) and renders it.
    QImage render(int frame, double azimuth = 0.0)
    {
        const gui::Samples& s = m_content.samples;
        if (s.gaussian) {
            const GaussianSnapshot& g = frame >= 0 && frame < static_cast<int>(s.gaussianFrames.size())
                ? s.gaussianFrames[static_cast<size_t>(frame)]
                : s.gaussians;
            m_gaussians.setGaussians(g);
        } else {
            const CloudSnapshot& c = frame >= 0 && frame < static_cast<int>(s.cloudFrames.size())
                ? s.cloudFrames[static_cast<size_t>(frame)]
                : s.clouds;
            const CloudSnapshot shown = arranged(c);
            m_clouds.setClouds(shown, allIndices(shown.count));
        }
        if (azimuth != 0.0 && !m_twoD) {
            m_view.renderer()->GetActiveCamera()->Azimuth(azimuth);
        }
        return m_view.grabImage(m_size, false);
    }

private:
    CloudSnapshot arranged(const CloudSnapshot& c) const
    {
        return m_content.arrangeGrid ? arrangeInGrid(c, m_content.grid) : c;
    }

    const Content& m_content;
    QSize m_size;
    VtkViewport m_view;
    CloudScene m_clouds;
    GaussianScene m_gaussians;
    LinesScene m_lines;
    bool m_twoD = true;
};

std::pair<int, int> parsePair(const std::string& text)
{
    const size_t comma = text.find(',');
    if (comma == std::string::npos) {
        throw RenderUsage("--geodesic takes I,J (two indices of the data's gallery), got '" + text + "'");
    }
    try {
        size_t used = 0;
        const int i = std::stoi(text.substr(0, comma), &used);
        const std::string rest = text.substr(comma + 1);
        size_t used2 = 0;
        const int j = std::stoi(rest, &used2);
        if (used2 != rest.size() || i < 0 || j < 0) {
            throw std::invalid_argument("bad");
        }
        return { i, j };
    } catch (const std::exception&) {
        throw RenderUsage("--geodesic takes I,J (two non-negative indices), got '" + text + "'");
    }
}

/// The data spec of a run folder's config.
std::string runDataSpec(const std::string& run)
{
    const QString text = gui::runConfigJson(QString::fromStdString(run));
    const nlohmann::json j = nlohmann::json::parse(text.toStdString());
    if (!j.contains("data") || !j["data"].contains("spec")) {
        throw std::runtime_error(run + ": the run's config names no data spec; give --data");
    }
    return j["data"]["spec"].get<std::string>();
}

Content buildContent(const RenderOptions& o, Output output, int videoFrames)
{
    Content c;
    const auto geodesic = o.geodesic.empty() ? std::optional<std::pair<int, int>>() : parsePair(o.geodesic);
    if (geodesic) {
        const std::string spec = o.data.empty() ? runDataSpec(o.run) : o.data;
        const auto [i, j] = *geodesic;
        const gui::LoadedData data = gui::loadData(QString::fromStdString(spec), std::max({ o.count, i + 1, j + 1 }));
        // A picture shows the midpoint (frames 0, 0.5, 1); a video one frame per video frame.
        c.samples = gui::geodesic(data, i, j, output == Output::Png ? 3 : std::max(2, videoFrames));
        c.kind = "geodesic";
        c.arrangeGrid = false;
        c.transportLines = o.lines;
        return c;
    }
    if (!o.run.empty()) {
        const gui::ModelPtr model = gui::loadModel(QString::fromStdString(o.run));
        gui::GenerateOptions g;
        g.count = o.generate > 0 ? o.generate : o.count;
        g.trajectory = output == Output::Video;
        g.seed = o.seed;
        c.samples = gui::generate(*model, g);
        c.kind = "generation";
        if (!c.samples.gaussian) {
            c.grid = gridFor(c.samples.clouds, c.samples.cloudFrames.empty() ? nullptr : &c.samples.cloudFrames.front());
        }
        c.arrangeGrid = !c.samples.gaussian;
        return c;
    }
    const gui::LoadedData data = gui::loadData(QString::fromStdString(o.data), o.count);
    c.kind = "gallery";
    c.samples.gaussian = data.gaussian;
    if (data.gaussian) {
        c.samples.gaussians = firstGaussians(data.gaussians, o.count);
        c.arrangeGrid = false;
    } else {
        c.samples.clouds = data.clouds;
        c.grid = gridFor(data.clouds);
    }
    return c;
}

int runRender(const RenderOptions& o)
{
    const auto t0 = std::chrono::steady_clock::now();
    // Checks that need no display or engine first, so usage errors come at once.
    if (o.data.empty() == o.run.empty()) {
        throw RenderUsage("give exactly one of --data SPEC and --run DIR");
    }
    if (o.generate > 0 && o.run.empty()) {
        throw RenderUsage("--generate K needs --run DIR (a trained run)");
    }
    if (o.generate > 0 && !o.geodesic.empty()) {
        throw RenderUsage("--geodesic and --generate exclude each other");
    }
    if (!o.geodesic.empty()) {
        parsePair(o.geodesic);
    }
    const QString out = QString::fromStdString(o.out);
    const QString suffix = QFileInfo(out).suffix().toLower();
    if (suffix != QLatin1String("png") && suffix != QLatin1String("mp4") && suffix != QLatin1String("gif")) {
        throw RenderUsage("--out must end in .png, .mp4 or .gif, got '" + o.out + "'");
    }
    const Output output = suffix == QLatin1String("png") ? Output::Png : Output::Video;
    const std::optional<QSize> size = parseImageSize(QString::fromStdString(o.size));
    if (!size) {
        throw RenderUsage("--size must be WIDTHxHEIGHT (1..16384), got '" + o.size + "'");
    }
    if (o.fps < 1 || o.fps > 240) {
        throw RenderUsage("--fps must be in [1, 240]");
    }
    if (!(o.seconds > 0.0) || o.seconds > 3600.0) {
        throw RenderUsage("--seconds must be in (0, 3600]");
    }
    if (o.count < 1) {
        throw RenderUsage("--count must be at least 1");
    }
    if (o.xvfb != "auto" && o.xvfb != "never") {
        throw RenderUsage("--xvfb must be auto or never");
    }
    const int videoFrames = std::max(1, static_cast<int>(std::lround(o.fps * o.seconds)));
    if (output == Output::Video && !VideoWriter::available()) {
        throw std::runtime_error("the ffmpeg program was not found (install Debian's ffmpeg package); "
                                 "PNG output needs no ffmpeg");
    }
    if (!QFileInfo(QFileInfo(out).absolutePath()).isDir()) {
        throw std::runtime_error(o.out + ": the folder does not exist");
    }

    XDisplay display;
    if (!display.ensure(o.xvfb == "auto")) {
        throw std::runtime_error(display.error());
    }
    // QOpenGLWidget needs a windowing platform (the "offscreen" one has no OpenGL widgets).
    qputenv("QT_QPA_PLATFORM", "xcb");
    if (qEnvironmentVariableIsEmpty("XDG_RUNTIME_DIR")) {
        // Qt warns on every start without one (servers, containers); give it a private folder.
        const QString runtime = QDir::temp().filePath(QStringLiteral("runtime-wfm-%1").arg(::getuid()));
        QDir().mkpath(runtime);
        QFile::setPermissions(runtime, QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);
        qputenv("XDG_RUNTIME_DIR", QFile::encodeName(runtime));
    }
    VtkViewport::setDefaultSurfaceFormat();
    static int argc = 1;
    static char name[] = "wfm";
    static char* argv[] = { name, nullptr };
    QApplication app(argc, argv);

    const Content content = buildContent(o, output, videoFrames);
    const double prepared = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Renderer renderer(content, *size);
    int written = 0;
    if (output == Output::Png) {
        const int mid = content.samples.frameCount() / 2;
        const QImage image = renderer.render(content.kind == "geodesic" ? mid : -1);
        const QString error = savePngAtomically(image, out);
        if (!error.isEmpty()) {
            throw std::runtime_error(error.toStdString());
        }
        written = 1;
    } else {
        VideoWriter writer;
        if (!writer.open(out, *size, o.fps)) {
            throw std::runtime_error(writer.error().toStdString());
        }
        const int length = renderer.trajectoryLength();
        for (int f = 0; f < videoFrames; ++f) {
            // Trajectory frames spread evenly over the video (a gallery turns the camera in 3-D).
            const int frame = length > 0
                ? (videoFrames > 1 ? static_cast<int>(std::lround(static_cast<double>(f) * (length - 1) / (videoFrames - 1)))
                                   : length - 1)
                : -1;
            const QImage image = renderer.render(frame, length > 0 || f == 0 ? 0.0 : 360.0 / videoFrames);
            if (image.isNull()) {
                writer.cancel();
                throw std::runtime_error("rendering frame " + std::to_string(f)
                    + " failed: no OpenGL context could be created on " + display.description());
            }
            if (!writer.writeFrame(image)) {
                writer.cancel();
                throw std::runtime_error(writer.error().toStdString());
            }
        }
        if (!writer.finish()) {
            throw std::runtime_error(writer.error().toStdString());
        }
        written = writer.framesWritten();
    }
    const gui::Samples& s = content.samples;
    nlohmann::json j;
    j["command"] = "render";
    j["kind"] = content.kind;
    j["out"] = QFileInfo(out).absoluteFilePath().toStdString();
    j["format"] = suffix.toStdString();
    j["width"] = output == Output::Png ? size->width() : size->width() & ~1;
    j["height"] = output == Output::Png ? size->height() : size->height() & ~1;
    j["frames"] = written;
    if (output == Output::Video) {
        j["fps"] = o.fps;
    }
    j["distributions"] = s.gaussian ? s.gaussians.count : s.clouds.count;
    j["trajectory_frames"] = s.frameCount();
    j["display"] = display.description();
    j["prepare_seconds"] = prepared;
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << j.dump(2) << std::endl;
    return 0;
}

} // namespace

std::function<int()> addRenderCommand(CLI::App& app)
{
    auto o = std::make_shared<RenderOptions>();
    auto* cmd = app.add_subcommand("render",
        "Render a dataset's gallery, a geodesic or a run's generation offscreen to PNG, MP4 or GIF");
    cmd->add_option("--data", o->data, "Data SPEC: a gallery of its first samples (or the geodesic's data)");
    cmd->add_option("--run", o->run, "Trained run folder: its generated samples (or, with --geodesic, its data)");
    cmd->add_option("--geodesic", o->geodesic, "I,J: the OT (displacement) interpolation between gallery samples I and J");
    cmd->add_option("--generate", o->generate, "K: the generation trajectory of K samples (with --run)");
    cmd->add_option("--out", o->out, "Output file: .png (a picture), .mp4 (H.264) or .gif (via ffmpeg)")->required();
    cmd->add_option("--size", o->size, "Image / video size WxH")->capture_default_str();
    cmd->add_option("--fps", o->fps, "Video frames per second")->capture_default_str();
    cmd->add_option("--seconds", o->seconds, "Video length; the video has fps*seconds frames")->capture_default_str();
    cmd->add_option("--count", o->count, "Samples in a gallery or generation without --generate")->capture_default_str();
    cmd->add_option("--seed", o->seed, "Generation seed")->capture_default_str();
    cmd->add_flag("--lines", o->lines, "With --geodesic: draw the transport lines x -> T(x)");
    cmd->add_option("--xvfb", o->xvfb,
           "Without a reachable DISPLAY: auto (start a private Xvfb when installed) or never")
        ->capture_default_str();
    cmd->footer("Needs an X server (DISPLAY) or the Xvfb program: this VTK renders through GLX.");
    return [o]() -> int {
        try {
            return runRender(*o);
        } catch (const RenderUsage& e) {
            std::cerr << "wfm: " << e.what() << std::endl;
            return 2;
        } catch (const std::exception& e) {
            std::cerr << "wfm: error: " << gui::errorMessage(e).toStdString() << std::endl;
            return 1;
        }
    };
}

} // namespace wfm::cli
