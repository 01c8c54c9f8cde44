// `wfm render`, run as a child process: PNG of a dataset (not blank, the data's label colours),
// MP4 of a geodesic and of a generation with exactly fps * seconds frames (ffprobe -count_frames),
// usage errors, and the clear error without any display when starting Xvfb is turned off. The
// child needs no display of the test's: without DISPLAY it starts its own Xvfb.

#include <QColor>
#include <QDir>
#include <QFile>
#include <QImage>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

namespace {

constexpr int kTimeoutMs = 55'000;

struct Result
{
    int code = -1;
    QString out;
    QString err;
};

Result runWfm(const QStringList& args, const QProcessEnvironment& env = QProcessEnvironment::systemEnvironment())
{
    QProcess p;
    p.setProgram(QStringLiteral(WFM_PATH));
    p.setArguments(args);
    p.setProcessEnvironment(env);
    p.start();
    Result r;
    if (!p.waitForFinished(kTimeoutMs)) {
        p.kill();
        p.waitForFinished();
        r.err = QStringLiteral("timed out");
        return r;
    }
    r.out = QString::fromLocal8Bit(p.readAllStandardOutput());
    r.err = QString::fromLocal8Bit(p.readAllStandardError());
    r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2;
    return r;
}

/// Frames ffprobe decodes from `path` (-count_frames), or -1.
int decodedFrames(const QString& path)
{
    QProcess p;
    p.start(QStringLiteral("ffprobe"), { QStringLiteral("-v"), QStringLiteral("error"), QStringLiteral("-count_frames"),
                                           QStringLiteral("-select_streams"), QStringLiteral("v:0"),
                                           QStringLiteral("-show_entries"), QStringLiteral("stream=nb_read_frames"),
                                           QStringLiteral("-of"), QStringLiteral("csv=p=0"), path });
    if (!p.waitForFinished(30'000) || p.exitCode() != 0) {
        return -1;
    }
    bool ok = false;
    const int n = QString::fromLatin1(p.readAllStandardOutput()).trimmed().toInt(&ok);
    return ok ? n : -1;
}

double hueDistance(double a, double b)
{
    const double d = std::abs(a - b);
    return std::min(d, 1.0 - d);
}

int countHue(const QImage& image, const QColor& reference)
{
    int n = 0;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            const QColor c = QColor::fromRgb(image.pixel(x, y));
            n += c.hsvSaturationF() > 0.35 && hueDistance(c.hsvHueF(), reference.hsvHueF()) < 0.035;
        }
    }
    return n;
}

double greyVariance(const QImage& image)
{
    double sum = 0.0, sum2 = 0.0;
    const double n = static_cast<double>(image.width()) * image.height();
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            const double g = qGray(image.pixel(x, y));
            sum += g;
            sum2 += g * g;
        }
    }
    const double mean = sum / n;
    return sum2 / n - mean * mean;
}

bool haveFfmpeg()
{
    return !QStandardPaths::findExecutable(QStringLiteral("ffmpeg")).isEmpty()
        && !QStandardPaths::findExecutable(QStringLiteral("ffprobe")).isEmpty();
}

} // namespace

class TestRender : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void pngOfData();
    void mp4OfGeodesic();
    void mp4OfGeneration();
    void usageErrors();
    void noDisplayIsAClearError();

private:
    QTemporaryDir m_dir;
};

void TestRender::pngOfData()
{
    const QString png = m_dir.filePath(QStringLiteral("rings.png"));
    const Result r = runWfm({ QStringLiteral("render"), QStringLiteral("--data"), QStringLiteral("builtin:rings?count=40"),
        QStringLiteral("--out"), png, QStringLiteral("--size"), QStringLiteral("480x360") });
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(r.out.contains(QLatin1String("\"kind\": \"gallery\"")));
    const QImage image(png);
    QCOMPARE(image.size(), QSize(480, 360));
    QVERIFY2(greyVariance(image) > 50.0, "the picture is blank");
    // builtin:rings has two labels: blue (circle) and orange (ellipse) in the categorical palette.
    QVERIFY(countHue(image, QColor(0x1f, 0x77, 0xb4)) > 200);
    QVERIFY(countHue(image, QColor(0xff, 0x7f, 0x0e)) > 200);
}

void TestRender::mp4OfGeodesic()
{
    if (!haveFfmpeg()) {
        QSKIP("ffmpeg / ffprobe not installed");
    }
    const QString mp4 = m_dir.filePath(QStringLiteral("geodesic.mp4"));
    const Result r = runWfm({ QStringLiteral("render"), QStringLiteral("--data"), QStringLiteral("builtin:rings?count=40"),
        QStringLiteral("--geodesic"), QStringLiteral("0,3"), QStringLiteral("--out"), mp4, QStringLiteral("--size"),
        QStringLiteral("320x240"), QStringLiteral("--fps"), QStringLiteral("10"), QStringLiteral("--seconds"),
        QStringLiteral("1.5") });
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QCOMPARE(decodedFrames(mp4), 15);
    // Written atomically: no temporary file is left next to it.
    QCOMPARE(QDir(m_dir.path()).entryList({ QStringLiteral(".*.part") }, QDir::Hidden | QDir::Files).size(), 0);
}

void TestRender::mp4OfGeneration()
{
    if (!haveFfmpeg()) {
        QSKIP("ffmpeg / ffprobe not installed");
    }
    // A very small run: 10 steps of a 1-block model, generation with 8 midpoint steps.
    const QString config = m_dir.filePath(QStringLiteral("tiny.json"));
    QFile f(config);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"({"data":{"spec":"builtin:rings?count=40","subsample_points":32},"flow":{"iterations":20},
"generate":{"steps":8},"model":{"width":32,"blocks":1,"heads":2,"mlpWidth":32,"dropout":0.0,"attentionDropout":0.0},
"train":{"batch":4,"steps":10,"log_every":5,"sample_every":0,"checkpoint_every":10,"device":"cpu"}})");
    f.close();
    const QString run = m_dir.filePath(QStringLiteral("run"));
    const Result t = runWfm({ QStringLiteral("train"), QStringLiteral("--config"), config, QStringLiteral("--out"), run,
        QStringLiteral("--quiet") });
    QVERIFY2(t.code == 0, qPrintable(t.err));
    const QString mp4 = m_dir.filePath(QStringLiteral("generation.mp4"));
    const Result r = runWfm({ QStringLiteral("render"), QStringLiteral("--run"), run, QStringLiteral("--generate"),
        QStringLiteral("2"), QStringLiteral("--out"), mp4, QStringLiteral("--size"), QStringLiteral("320x240"),
        QStringLiteral("--fps"), QStringLiteral("6"), QStringLiteral("--seconds"), QStringLiteral("2") });
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(r.out.contains(QLatin1String("\"kind\": \"generation\"")));
    QCOMPARE(decodedFrames(mp4), 12);
    const QString png = m_dir.filePath(QStringLiteral("generated.png"));
    const Result p = runWfm({ QStringLiteral("render"), QStringLiteral("--run"), run, QStringLiteral("--generate"),
        QStringLiteral("2"), QStringLiteral("--out"), png, QStringLiteral("--size"), QStringLiteral("320x240") });
    QVERIFY2(p.code == 0, qPrintable(p.err));
    QVERIFY(greyVariance(QImage(png)) > 20.0);
}

void TestRender::usageErrors()
{
    const QString out = m_dir.filePath(QStringLiteral("x.png"));
    QCOMPARE(runWfm({ QStringLiteral("render"), QStringLiteral("--data"), QStringLiteral("builtin:rings"),
                 QStringLiteral("--out"), m_dir.filePath(QStringLiteral("x.txt")) })
                 .code,
        2);
    QCOMPARE(runWfm({ QStringLiteral("render"), QStringLiteral("--out"), out }).code, 2);
    QCOMPARE(runWfm({ QStringLiteral("render"), QStringLiteral("--data"), QStringLiteral("builtin:rings"),
                 QStringLiteral("--generate"), QStringLiteral("3"), QStringLiteral("--out"), out })
                 .code,
        2);
    QCOMPARE(runWfm({ QStringLiteral("render"), QStringLiteral("--data"), QStringLiteral("builtin:rings"),
                 QStringLiteral("--geodesic"), QStringLiteral("1"), QStringLiteral("--out"), out })
                 .code,
        2);
    QCOMPARE(runWfm({ QStringLiteral("render"), QStringLiteral("--data"), QStringLiteral("builtin:rings"),
                 QStringLiteral("--size"), QStringLiteral("big"), QStringLiteral("--out"), out })
                 .code,
        2);
    QVERIFY(!QFile::exists(out));
}

void TestRender::noDisplayIsAClearError()
{
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.remove(QStringLiteral("DISPLAY"));
    env.remove(QStringLiteral("WAYLAND_DISPLAY"));
    const QString out = m_dir.filePath(QStringLiteral("nodisplay.png"));
    const Result r = runWfm({ QStringLiteral("render"), QStringLiteral("--data"), QStringLiteral("builtin:rings?count=8"),
                                QStringLiteral("--out"), out, QStringLiteral("--xvfb"), QStringLiteral("never") },
        env);
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains(QLatin1String("no display and no offscreen OpenGL context")), qPrintable(r.err));
    QVERIFY(r.err.contains(QLatin1String("Xvfb")));
    QVERIFY(!QFile::exists(out));
}

QTEST_GUILESS_MAIN(TestRender)
#include "tst_render.moc"
