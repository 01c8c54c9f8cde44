#include "wfm/Error.h"
#include "wfm/data/BuiltinFamilies.h"
#include "wfm/data/DataSpec.h"
#include "wfm/io/Letters.h"
#include "wfm/io/Readers.h"

#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <string>

using wfm::ConfigError;

class TestLetters : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
#if !WFM_IO_HAVE_FREETYPE
        QSKIP("this build has no FreeType");
#endif
        wfm::io::registerReaders();
        if (wfm::io::findFonts("/usr/share/fonts").empty()) {
            QSKIP("no fonts installed");
        }
    }

#if WFM_IO_HAVE_FREETYPE
    void onePerFontAndLetter()
    {
        QElapsedTimer timer;
        timer.start();
        const auto d = wfm::data::loadPointClouds("builtin:letters");
        qInfo("letters: %lld clouds from %zu font files, %lld ms", (long long)d.count(),
            wfm::io::findFonts("/usr/share/fonts").size(), (long long)timer.elapsed());
        QCOMPARE(d.numLabels(), std::int64_t(26));
        QCOMPARE(d.labelNames[0], std::string("A"));
        QCOMPARE(d.labelNames[25], std::string("Z"));
        QVERIFY(d.count() >= 26 * 2); // DejaVu and Liberation at least
        QCOMPARE(d.count() % 26, std::int64_t(0));
        const auto s = d.summary();
        for (const auto c : s.labelCounts) {
            QCOMPARE(c, d.count() / 26);
        }
        QVERIFY(d.points.abs().max().item<float>() <= 1.0f);
        QCOMPARE(d.name, std::string("letters"));
        // An "I" is tall and narrow: its x extent is smaller than its y extent.
        const torch::Tensor i = d.cloud(8);
        QCOMPARE(d.labels[8].item<std::int64_t>(), std::int64_t(8));
        const double w = (i.select(1, 0).max() - i.select(1, 0).min()).item<double>();
        const double h = (i.select(1, 1).max() - i.select(1, 1).min()).item<double>();
        QVERIFY2(h > 2 * w, (std::to_string(w) + " " + std::to_string(h)).c_str());
    }

    void countSeedAndPoints()
    {
        const auto a = wfm::data::loadPointClouds("builtin:letters?count=40&seed=3&size=24&points=50");
        QCOMPARE(a.count(), std::int64_t(26 * 40));
        QVERIFY(a.maxPoints() <= 50);
        const auto b = wfm::data::loadPointClouds("builtin:letters?count=40&seed=3&size=24&points=50");
        QVERIFY(torch::equal(a.points, b.points));
        const auto c = wfm::data::loadPointClouds("builtin:letters?count=40&seed=4&size=24&points=50");
        QVERIFY(!torch::equal(a.points, c.points));
    }

    void errors()
    {
        QTemporaryDir empty;
        EXPECT_THROW_MSG(ConfigError,
            wfm::data::loadPointClouds("builtin:letters?fonts=" + empty.path().toStdString()),
            "no scalable fonts", empty.path().toStdString());
        EXPECT_THROW_MSG(ConfigError, wfm::data::loadPointClouds("builtin:letters?size=2"), "size");
        EXPECT_THROW_MSG(ConfigError, wfm::data::loadPointClouds("builtin:letters?colour=red"),
            "unknown option 'colour'");
        const auto names = wfm::data::builtinNames();
        QVERIFY(std::find(names.begin(), names.end(), "letters") != names.end());
    }
#endif
};

QTEST_GUILESS_MAIN(TestLetters)
#include "tst_letters.moc"
