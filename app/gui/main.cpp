// WFM Studio: the desktop app.
//   wfm-studio [--demo] [--scene NAME] [--animate]
//   wfm-studio --screenshot FILE [--size WxH] [--scene NAME] [--transparent]
// Exit codes: 0 success, 1 rendering or writing the screenshot failed, 2 usage error.

#include "ImageExport.h"
#include "MainWindow.h"
#include "wfm/widgets/VtkViewport.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QTextStream>

#include <cstdio>

int main(int argc, char* argv[])
{
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
    parser.addOptions({ demoOption, sceneOption, animateOption, screenshotOption, sizeOption, transparentOption });
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

    wfm::MainWindow window;
    window.show();
    if (parser.isSet(animateOption)) {
        window.setAnimating(true);
    } else if (parser.isSet(demoOption) || parser.isSet(sceneOption)) {
        window.showDemo(scene);
    }
    return QApplication::exec();
}
