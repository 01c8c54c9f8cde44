#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/io/Images.h"
#include "wfm/io/Readers.h"

#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <fstream>
#include <string>

using wfm::ConfigError;
using wfm::DatasetError;

namespace {

/// PNG fixtures written with Python's zlib (no imaging library), an independent encoder:
///  letters/a/dark_on_light.png  8x6 grey, white paper, black 2x2 square at rows 1-2, cols 3-4
///  letters/a/light_on_dark.png  8x6 grey, black paper, white 2x2 square at the same place
///  letters/b/alpha.png          8x6 RGBA, transparent, an opaque red 1x3 bar at row 5, cols 0-2
///  letters/b/rgb.png            4x4 RGB, white, one blue pixel at (0, 3)
///  truncated.png                the first half of rgb.png
const char* kFixtureScript = R"PY(
import zlib, struct, os
def png(path, w, h, color_type, rows):
    def chunk(t, d):
        c = struct.pack('>I', len(d)) + t + d
        return c + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    raw = b''.join(b'\x00' + bytes(r) for r in rows)
    data = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, color_type, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    return data
def grey(bg, fg):
    rows = [[bg] * 8 for _ in range(6)]
    for r in (1, 2):
        for c in (3, 4):
            rows[r][c] = fg
    return rows
png('letters/a/dark_on_light.png', 8, 6, 0, grey(255, 0))
png('letters/a/light_on_dark.png', 8, 6, 0, grey(0, 255))
rgba = [[0, 0, 0, 0] * 8 for _ in range(6)]
for c in range(3):
    rgba[5][4 * c:4 * c + 4] = [255, 0, 0, 255]
png('letters/b/alpha.png', 8, 6, 6, rgba)
rgb = [[255, 255, 255] * 4 for _ in range(4)]
rgb[0][9:12] = [0, 0, 255]
d = png('letters/b/rgb.png', 4, 4, 2, rgb)
with open('truncated.png', 'wb') as f:
    f.write(d[:len(d) // 2])
with open('notpng.png', 'wb') as f:
    f.write(b'GIF89a not a png')
)PY";

} // namespace

class TestImages : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::string path(const std::string& name) const { return m_dir.path().toStdString() + "/" + name; }

private Q_SLOTS:
    void initTestCase()
    {
#if !WFM_IO_HAVE_PNG
        QSKIP("this build has no libpng");
#endif
        QVERIFY(m_dir.isValid());
        wfm::io::registerReaders();
        QString log;
        QCOMPARE(wfm::test::runPython(m_dir.path(), QString::fromUtf8(kFixtureScript), log), 0);
    }

#if WFM_IO_HAVE_PNG
    void readsGreyAlphaAndColour()
    {
        const auto dark = wfm::io::readPngGray(path("letters/a/dark_on_light.png"));
        QCOMPARE(dark.height, std::int64_t(6));
        QCOMPARE(dark.width, std::int64_t(8));
        QCOMPARE(int(dark.pixels[1 * 8 + 3]), 0);
        QCOMPARE(int(dark.pixels[0]), 255);
        QVERIFY(wfm::io::hasBrightBorder(dark));
        const auto alpha = wfm::io::readPngGray(path("letters/b/alpha.png"));
        QVERIFY(alpha.fromAlpha);
        QCOMPARE(int(alpha.pixels[5 * 8 + 1]), 255);
        QCOMPARE(int(alpha.pixels[0]), 0);
        const auto rgb = wfm::io::readPngGray(path("letters/b/rgb.png"));
        QVERIFY(!rgb.fromAlpha);
        QVERIFY(rgb.pixels[3] < 100);
    }

    void sameCloudForBothPolarities()
    {
        // invert=auto: dark ink on light paper and light ink on dark paper give the same cloud.
        const auto a = wfm::data::loadPointClouds("png:" + path("letters/a/dark_on_light.png"));
        const auto b = wfm::data::loadPointClouds("png:" + path("letters/a/light_on_dark.png"));
        QCOMPARE(a.size(0), std::int64_t(4));
        QVERIFY(torch::equal(a.points, b.points));
        // Pixel (1,3) of 6x8: x = (2*3 + 1 - 8) / 8, y = (6 - 2 - 1) / 8.
        QCOMPARE(a.cloud(0)[0][0].item<float>(), -1.0f / 8);
        QCOMPARE(a.cloud(0)[0][1].item<float>(), 3.0f / 8);
        // invert=0 on dark ink: everything but the square.
        const auto plain
            = wfm::data::loadPointClouds("png:" + path("letters/a/dark_on_light.png") + "?invert=0");
        QCOMPARE(plain.size(0), std::int64_t(48 - 4));
    }

    void folderWithLabels()
    {
        const auto d = wfm::data::loadPointClouds("png:" + path("letters") + "?threshold=otsu");
        QCOMPARE(d.count(), std::int64_t(4));
        QCOMPARE(d.labelNames, (std::vector<std::string> { "a", "b" }));
        QCOMPARE(d.labels.sum().item<std::int64_t>(), std::int64_t(2));
        // alpha.png (sorted first in b/): the bar of 3 pixels.
        QCOMPARE(d.size(2), std::int64_t(3));
        QCOMPARE(d.size(3), std::int64_t(1));
        const auto two = wfm::data::loadPointClouds("png:" + path("letters") + "?count=2&points=2");
        QCOMPARE(two.count(), std::int64_t(2));
        QCOMPARE(two.maxPoints(), std::int64_t(2));
        EXPECT_THROW_MSG(ConfigError, wfm::data::loadPointClouds("png:" + path("letters") + "?invert=maybe"),
            "invert");
    }

    void hostileFiles()
    {
        EXPECT_THROW_MSG(DatasetError, wfm::io::readPngGray(path("truncated.png")), "truncated.png");
        EXPECT_THROW_MSG(DatasetError, wfm::io::readPngGray(path("notpng.png")), "notpng.png");
        EXPECT_THROW_MSG(DatasetError, wfm::io::readPngGray(path("missing.png")), "missing.png",
            "no such file");
        EXPECT_THROW_MSG(DatasetError, wfm::data::loadPointClouds("png:" + path("empty-dir-x")),
            "no such file");
    }
#endif
};

QTEST_GUILESS_MAIN(TestImages)
#include "tst_images.moc"
