// The wfm-studio executable's headless screenshot mode, run as a child process (needs a display:
// ctest runs it under xvfb-run). Checks the PNG it writes, its exit codes and that a failed run
// leaves no partial file.

#include <QColor>
#include <QDir>
#include <QFileInfo>
#include <QImage>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

namespace {

constexpr int kTimeoutMs = 90'000;

int runStudio(const QStringList& args, QString* errors = nullptr)
{
    QProcess p;
    p.setProgram(QStringLiteral(WFM_STUDIO_PATH));
    p.setArguments(args);
    p.start();
    if (!p.waitForFinished(kTimeoutMs)) {
        p.kill();
        p.waitForFinished();
        return -1;
    }
    if (errors) {
        *errors = QString::fromLocal8Bit(p.readAllStandardError());
    }
    return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2;
}

double hueDistance(double a, double b)
{
    const double d = std::abs(a - b);
    return std::min(d, 1.0 - d);
}

/// Pixels whose hue is within 0.035 of `reference` (saturated enough to be a label colour).
int countHue(const QImage& image, const QColor& reference)
{
    int n = 0;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            const QColor c = QColor::fromRgba(image.pixel(x, y));
            n += c.alpha() == 255 && c.hsvSaturationF() > 0.35 && hueDistance(c.hsvHueF(), reference.hsvHueF()) < 0.035;
        }
    }
    return n;
}

} // namespace

class TestStudio : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void screenshotOfDemo_data();
    void screenshotOfDemo();
    void transparentScreenshot();
    void badArguments();
    void unwritablePathFails();
};

void TestStudio::screenshotOfDemo_data()
{
    QTest::addColumn<QString>("scene");
    QTest::addColumn<QString>("size");
    QTest::newRow("shapes") << "shapes" << "640x480";
    QTest::newRow("gaussians") << "gaussians" << "900x500";
    QTest::newRow("ellipsoids") << "ellipsoids" << "500x500";
    QTest::newRow("correspondence") << "correspondence" << "800x400";
}

void TestStudio::screenshotOfDemo()
{
    QFETCH(QString, scene);
    QFETCH(QString, size);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString png = dir.filePath(QStringLiteral("shot.png"));
    QString errors;
    QCOMPARE(runStudio({ QStringLiteral("--screenshot"), png, QStringLiteral("--size"), size,
                 QStringLiteral("--scene"), scene },
                 &errors),
        0);
    QImage image(png);
    QVERIFY2(!image.isNull(), qPrintable(errors));
    const QStringList wh = size.split(QLatin1Char('x'));
    QCOMPARE(image.size(), QSize(wh[0].toInt(), wh[1].toInt()));
    // Not blank: many pixels differ from the corner (background) colour.
    const QRgb bg = image.pixel(0, 0);
    int drawn = 0;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            const QRgb p = image.pixel(x, y);
            drawn += std::abs(qRed(p) - qRed(bg)) + std::abs(qGreen(p) - qGreen(bg)) + std::abs(qBlue(p) - qBlue(bg)) > 40;
        }
    }
    QVERIFY2(drawn > image.width() * image.height() / 50, qPrintable(QString::number(drawn)));
    if (scene == QLatin1String("shapes")) {
        // The three label colours (blue, orange, green of the categorical palette).
        for (const QColor c : { QColor(0x1f77b4), QColor(0xff7f0e), QColor(0x2ca02c) }) {
            QVERIFY2(countHue(image, c) > 500, qPrintable(c.name()));
        }
    }
    // No temporary files are left next to the PNG.
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden), QStringList { QStringLiteral("shot.png") });
}

void TestStudio::transparentScreenshot()
{
    QTemporaryDir dir;
    const QString png = dir.filePath(QStringLiteral("t.png"));
    QCOMPARE(runStudio({ QStringLiteral("--screenshot"), png, QStringLiteral("--size"), QStringLiteral("400x300"),
                 QStringLiteral("--transparent") }),
        0);
    QImage image(png);
    QVERIFY(!image.isNull());
    QVERIFY(image.hasAlphaChannel());
    QCOMPARE(qAlpha(image.pixel(0, 0)), 0);
    QVERIFY(countHue(image, QColor(0xff7f0e)) > 100);
}

void TestStudio::badArguments()
{
    QTemporaryDir dir;
    const QString png = dir.filePath(QStringLiteral("x.png"));
    QString errors;
    QCOMPARE(runStudio({ QStringLiteral("--screenshot"), png, QStringLiteral("--size"), QStringLiteral("12by5") }, &errors), 2);
    QVERIFY(errors.contains(QStringLiteral("--size")));
    QCOMPARE(runStudio({ QStringLiteral("--screenshot"), png, QStringLiteral("--size"), QStringLiteral("0x100") }), 2);
    QCOMPARE(runStudio({ QStringLiteral("--screenshot"), png, QStringLiteral("--scene"), QStringLiteral("nope") }), 2);
    QVERIFY(!QFileInfo::exists(png));
}

void TestStudio::unwritablePathFails()
{
    QTemporaryDir dir;
    const QString png = dir.filePath(QStringLiteral("missing-folder/x.png"));
    QString errors;
    QCOMPARE(runStudio({ QStringLiteral("--screenshot"), png, QStringLiteral("--size"), QStringLiteral("64x64") }, &errors), 1);
    QVERIFY(errors.contains(QStringLiteral("missing-folder")));
    QVERIFY(!QFileInfo::exists(png));
}

QTEST_GUILESS_MAIN(TestStudio)
#include "tst_studio.moc"
