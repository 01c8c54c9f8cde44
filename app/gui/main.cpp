// WFM Studio: the desktop app.
//   wfm-studio [--demo] [--scene NAME] [--animate] [--data SPEC]
//   wfm-studio --screenshot FILE [--size WxH] [--scene NAME] [--transparent]
//   wfm-studio --window-screenshot FILE [--data SPEC] [--train-steps N [--config FILE]]
//              [--generate K] [--geodesic I,J[,T]] [--panel N]
// Exit codes: 0 success, 1 rendering or writing the screenshot failed, 2 usage error.

#include "DataPanel.h"
#include "EvaluatePanel.h"
#include "GeneratePanel.h"
#include "FpsBenchmark.h"
#include "LatencyBenchmark.h"
#include "ImageExport.h"
#include "MainWindow.h"
#include "TrainingController.h"
#include "TrainingPanel.h"
#include "engine/Engine.h"
#include "wfm/widgets/VtkViewport.h"

#include <QAction>
#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTextStream>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

int main(int argc, char* argv[])
{
    QElapsedTimer startClock; // start-up time to the first frame (--bench-fps)
    startClock.start();
    wfm::gui::prepareProcess(argc, argv);
    // VTK needs an OpenGL 3.2 core context without multisampling; set before QApplication.
    wfm::VtkViewport::setDefaultSurfaceFormat();
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("WFM"));
    QApplication::setApplicationName(QStringLiteral("WFM Studio"));
    QApplication::setApplicationVersion(QStringLiteral("0.1.0"));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Wasserstein Flow Matching studio"));
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption demoOption(QStringLiteral("demo"), QStringLiteral("Show a built-in demo."));
    const QCommandLineOption sceneOption(QStringLiteral("scene"),
        QStringLiteral("Demo to show: shapes (default), gaussians, ellipsoids, correspondence."),
        QStringLiteral("name"), QStringLiteral("shapes"));
    const QCommandLineOption screenshotOption(QStringLiteral("screenshot"),
        QStringLiteral("Render the demo offscreen to a PNG file and exit."), QStringLiteral("file"));
    const QCommandLineOption sizeOption(QStringLiteral("size"),
        QStringLiteral("Screenshot size in pixels (default 1600x1200)."), QStringLiteral("WxH"),
        QStringLiteral("1600x1200"));
    const QCommandLineOption animateOption(QStringLiteral("animate"),
        QStringLiteral("Show the ellipsoid demo animated (frame rate in the status bar)."));
    const QCommandLineOption transparentOption(QStringLiteral("transparent"),
        QStringLiteral("Screenshot with a transparent background."));
    const QCommandLineOption dataOption(QStringLiteral("data"),
        QStringLiteral("Load a dataset SPEC at start (e.g. builtin:rings?count=200)."), QStringLiteral("spec"));
    const QCommandLineOption windowShotOption(QStringLiteral("window-screenshot"),
        QStringLiteral("Show the whole window (after loading --data), save it as PNG and exit."),
        QStringLiteral("file"));
    const QCommandLineOption panelOption(QStringLiteral("panel"),
        QStringLiteral("Panel to show: 0 data, 1 training, 2 generate, 3 evaluate."), QStringLiteral("n"), QStringLiteral("0"));
    const QCommandLineOption trainOption(QStringLiteral("train-steps"),
        QStringLiteral("With --window-screenshot: train this many steps on --data first (CPU)."), QStringLiteral("n"));
    const QCommandLineOption configOption(QStringLiteral("config"),
        QStringLiteral("With --train-steps: training config JSON (e.g. resources/configs/shapes3d.json)."),
        QStringLiteral("file"));
    const QCommandLineOption generateOption(QStringLiteral("generate"),
        QStringLiteral("With --window-screenshot: generate this many samples after training."), QStringLiteral("k"));
    const QCommandLineOption benchOption(QStringLiteral("bench-fps"),
        QStringLiteral("Print JSON: start-up time to the first frame of the main window, and frame rates "
                       "animating 100k points and 500 ellipsoids (800x600)."));
    const QCommandLineOption benchSecondsOption(QStringLiteral("bench-seconds"),
        QStringLiteral("With --bench-fps: seconds per measurement (default 5)."), QStringLiteral("s"),
        QStringLiteral("5"));
    const QCommandLineOption latencyOption(QStringLiteral("bench-latency"),
        QStringLiteral("Print JSON: the event loop's latency (a 10 ms timer's lateness) while a CPU training "
                       "run of SPEC (with --config, else the form's defaults) goes on for --bench-seconds."),
        QStringLiteral("spec"));
    const QCommandLineOption linesOption(QStringLiteral("transport-lines"),
        QStringLiteral("With --geodesic: show the transport lines x -> T(x)."));
    const QCommandLineOption correspondenceOption(QStringLiteral("correspondence"),
        QStringLiteral("With --geodesic: colour points by correspondence."));
    const QCommandLineOption evaluateOption(QStringLiteral("evaluate"),
        QStringLiteral("With --window-screenshot and --train-steps: evaluate the model against N held-out "
                       "distributions and show the Evaluate panel."),
        QStringLiteral("n"));
    const QCommandLineOption geodesicOption(QStringLiteral("geodesic"),
        QStringLiteral("With --window-screenshot: show the geodesic between shown distributions I and J at time T "
                       "(default 0.5)."),
        QStringLiteral("I,J[,T]"));
    parser.addOptions({ demoOption, sceneOption, animateOption, screenshotOption, sizeOption, transparentOption,
        dataOption, windowShotOption, panelOption, trainOption, configOption, generateOption, geodesicOption,
        evaluateOption, linesOption, correspondenceOption, benchOption, benchSecondsOption, latencyOption });
    parser.process(app);

    QTextStream err(stderr);
    wfm::DemoScene scene = wfm::DemoScene::Shapes;
    if (!wfm::parseDemoScene(parser.value(sceneOption), &scene)) {
        err << "wfm-studio: unknown demo scene '" << parser.value(sceneOption) << "'\n";
        return 2;
    }

    if (parser.isSet(screenshotOption)) {
        const std::optional<QSize> size = wfm::parseImageSize(parser.value(sizeOption));
        if (!size) {
            err << "wfm-studio: --size must be WIDTHxHEIGHT (1..16384), got '" << parser.value(sizeOption) << "'\n";
            return 2;
        }
        wfm::MainWindow window(false);
        window.setInteractive(false);
        // Laid out and given a GL context, but never mapped on screen.
        window.setAttribute(Qt::WA_DontShowOnScreen);
        window.show();
        window.showDemo(scene);
        QApplication::processEvents();
        const QImage image = window.viewport()->grabImage(*size, parser.isSet(transparentOption));
        const QString error = wfm::savePngAtomically(image, parser.value(screenshotOption));
        if (!error.isEmpty()) {
            err << "wfm-studio: " << error << "\n";
            return 1;
        }
        return 0;
    }

    wfm::gui::initEngine();

    if (parser.isSet(benchOption)) {
        QJsonObject result;
        {
            // Start-up: process start to the first VTK frame of the main window on screen.
            wfm::MainWindow window(false);
            window.setInteractive(false);
            window.resize(1400, 900);
            window.show();
            while (window.viewport()->renderCount() == 0 && startClock.elapsed() < 60'000) {
                QApplication::processEvents(QEventLoop::AllEvents, 5);
            }
            result[QStringLiteral("startup_to_first_frame_ms")] = static_cast<double>(startClock.nsecsElapsed()) / 1e6;
        }
        const QJsonObject fps = wfm::gui::runFpsBenchmark(parser.value(benchSecondsOption).toDouble());
        for (auto it = fps.begin(); it != fps.end(); ++it) {
            result[it.key()] = it.value();
        }
        result[QStringLiteral("qpa_platform")] = QGuiApplication::platformName();
        QTextStream(stdout) << QJsonDocument(result).toJson(QJsonDocument::Indented);
        return 0;
    }

    if (parser.isSet(latencyOption)) {
        try {
            const QJsonObject result = wfm::gui::runLatencyBenchmark(parser.value(benchSecondsOption).toDouble(),
                parser.value(latencyOption), parser.value(configOption));
            QTextStream(stdout) << QJsonDocument(result).toJson(QJsonDocument::Indented);
            return 0;
        } catch (const std::exception& e) {
            err << "wfm-studio: " << wfm::gui::errorMessage(e) << "\n";
            return 1;
        }
    }

    if (parser.isSet(windowShotOption)) {
        wfm::MainWindow window(false);
        window.setInteractive(false);
        window.resize(1400, 900);
        window.show();
        window.showPanel(parser.value(panelOption).toInt());
        if (parser.isSet(dataOption)) {
            window.dataPanel()->load(parser.value(dataOption));
            QElapsedTimer clock;
            clock.start();
            while ((window.dataPanel()->isLoading() || clock.elapsed() < 500) && clock.elapsed() < 60'000) {
                QApplication::processEvents(QEventLoop::AllEvents, 50);
            }
        } else if (parser.isSet(demoOption)) {
            window.showDemo(scene);
        }
        auto waitUntil = [](const std::function<bool()>& done, int ms) {
            QElapsedTimer clock;
            clock.start();
            while (!done() && clock.elapsed() < ms) {
                QApplication::processEvents(QEventLoop::AllEvents, 50);
            }
            return done();
        };
        if (parser.isSet(trainOption)) {
            wfm::gui::TrainingPanel* t = window.trainingPanel();
            if (parser.isSet(configOption)) {
                try {
                    wfm::gui::TrainForm form = wfm::gui::trainFormFromFile(parser.value(configOption));
                    form.spec = window.dataPanel()->spec().isEmpty() ? form.spec : window.dataPanel()->spec();
                    t->setForm(form);
                } catch (const std::exception& e) {
                    err << "wfm-studio: " << wfm::gui::errorMessage(e) << "\n";
                    return 2;
                }
            }
            wfm::gui::TrainForm form = t->form();
            form.steps = parser.value(trainOption).toLongLong();
            form.device = QStringLiteral("cpu");
            form.logEvery = std::max<qint64>(1, form.steps / 200);
            form.sampleEvery = std::max<qint64>(1, form.steps / 5);
            t->setForm(form);
            bool finished = false;
            QObject::connect(t->controller(), &wfm::gui::TrainingController::runningChanged, &window,
                [&finished](bool running) { finished = !running; });
            window.showPanel(1);
            if (!t->startTraining() || !waitUntil([&] { return finished; }, 3'600'000)) {
                err << "wfm-studio: training did not finish\n";
                return 1;
            }
            if (parser.isSet(generateOption) && window.generatePanel()->model()) {
                window.generatePanel()->setCount(parser.value(generateOption).toInt());
                bool ready = false;
                QObject::connect(window.generatePanel(), &wfm::gui::GeneratePanel::samplesReady, &window,
                    [&ready] { ready = true; });
                window.generatePanel()->generate();
                waitUntil([&] { return ready; }, 600'000);
            }
            window.showPanel(parser.value(panelOption).toInt());
            if (parser.isSet(evaluateOption) && window.generatePanel()->model()) {
                wfm::gui::EvaluatePanel* e = window.evaluatePanel();
                e->setMaxReference(parser.value(evaluateOption).toInt());
                window.showPanel(3);
                if (e->evaluate()) {
                    waitUntil([e] { return !e->isEvaluating(); }, 600'000);
                }
            }
        }
        if (parser.isSet(geodesicOption)) {
            const QStringList parts = parser.value(geodesicOption).split(QLatin1Char(','));
            if (parts.size() < 2) {
                err << "wfm-studio: --geodesic takes I,J[,T]\n";
                return 2;
            }
            bool ready = false;
            QObject::connect(window.dataPanel(), &wfm::gui::DataPanel::geodesicReady, &window, [&ready] { ready = true; });
            window.dataPanel()->computeGeodesic(parts[0].toInt(), parts[1].toInt());
            waitUntil([&] { return ready; }, 600'000);
            for (const auto& [option, name] : { std::pair { &linesOption, "transportLines" },
                     std::pair { &correspondenceOption, "colourByCorrespondence" } }) {
                if (parser.isSet(*option)) {
                    if (auto* action = window.findChild<QAction*>(QLatin1String(name))) {
                        action->setChecked(true);
                    }
                }
            }
            const double t = parts.size() > 2 ? parts[2].toDouble() : 0.5;
            wfm::gui::GeneratePanel* g = window.generatePanel();
            g->setFrame(static_cast<int>(std::lround(t * (g->frameCount() - 1))));
        }
        for (int i = 0; i < 20; ++i) {
            QApplication::processEvents(QEventLoop::AllEvents, 20);
        }
        const QString error = wfm::savePngAtomically(window.grab().toImage(), parser.value(windowShotOption));
        if (!error.isEmpty()) {
            err << "wfm-studio: " << error << "\n";
            return 1;
        }
        return 0;
    }

    wfm::MainWindow window;
    window.show();
    if (parser.isSet(animateOption)) {
        window.setAnimating(true);
    } else if (parser.isSet(dataOption)) {
        window.dataPanel()->load(parser.value(dataOption));
    } else if (parser.isSet(demoOption) || parser.isSet(sceneOption)) {
        window.showDemo(scene);
    }
    return QApplication::exec();
}
