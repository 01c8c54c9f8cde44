#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Idx.h"
#include "wfm/data/ImageClouds.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <fstream>
#include <string>

using wfm::ConfigError;
using wfm::DatasetError;
using namespace wfm::data;

namespace {

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

void writeRaw(const std::string& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string readRaw(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return { std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>() };
}

/// Writes IDX fixtures with Python's struct / gzip / numpy (an independent writer):
///  images.idx3 (+ .gz): 7 images 5x4 uint8, image i has ink (255) at pixel (i % 5, i % 4) and
///  at (0,0) when i is even; labels.idx1 (+ .gz): i % 3; i16.idx: int16 [2,3] = -300..;
///  f32.idx: float32 [4] = 0.5 * k - 1; f64.idx: float64 [2] = 1e10, -2.5.
const char* kFixtureScript = R"PY(
import gzip, struct, numpy as np
def idx(path, code, arr, dtype):
    a = np.asarray(arr).astype(dtype)
    with open(path, 'wb') as f:
        f.write(bytes([0, 0, code, a.ndim]))
        for d in a.shape:
            f.write(struct.pack('>I', d))
        f.write(a.tobytes())
imgs = np.zeros((7, 5, 4), np.uint8)
for i in range(7):
    imgs[i, i % 5, i % 4] = 255
    if i % 2 == 0:
        imgs[i, 0, 0] = 200
labels = np.array([i % 3 for i in range(7)], np.uint8)
idx('images.idx3', 0x08, imgs, '>u1')
idx('labels.idx1', 0x08, labels, '>u1')
idx('i16.idx', 0x0B, np.arange(6).reshape(2, 3) * 100 - 300, '>i2')
idx('f32.idx', 0x0D, np.arange(4) * 0.5 - 1, '>f4')
idx('f64.idx', 0x0E, [1e10, -2.5], '>f8')
for n in ['images.idx3', 'labels.idx1']:
    with open(n, 'rb') as f, gzip.open(n + '.gz', 'wb') as g:
        g.write(f.read())
import os
os.makedirs('fashion-copy', exist_ok=True)
for n, a in [('train-images-idx3-ubyte.gz', imgs), ('train-labels-idx1-ubyte.gz', labels)]:
    raw = bytes([0, 0, 8, a.ndim]) + b''.join(struct.pack('>I', d) for d in a.shape) + a.tobytes()
    with gzip.open(os.path.join('fashion-copy', n), 'wb') as g:
        g.write(raw)
)PY";

} // namespace

class TestIdx : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::string path(const char* name) const { return (m_dir.path() + "/" + name).toStdString(); }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        QString log;
        QCOMPARE(wfm::test::runPython(m_dir.path(), QString::fromUtf8(kFixtureScript), log), 0);
    }

    void readsPythonWrittenArrays()
    {
        const torch::Tensor imgs = readIdx(path("images.idx3"));
        QCOMPARE(imgs.scalar_type(), torch::kByte);
        QCOMPARE(imgs.sizes().vec(), (std::vector<std::int64_t> { 7, 5, 4 }));
        QCOMPARE(imgs[3][3][3].item<int>(), 255);
        QCOMPARE(imgs[2][0][0].item<int>(), 200);
        QVERIFY(torch::equal(imgs, readIdx(path("images.idx3.gz"))));
        const torch::Tensor i16 = readIdx(path("i16.idx"));
        QCOMPARE(i16.scalar_type(), torch::kShort);
        QVERIFY(torch::equal(i16, (torch::arange(6).reshape({ 2, 3 }) * 100 - 300).to(torch::kShort)));
        const torch::Tensor f32 = readIdx(path("f32.idx"));
        QVERIFY(torch::equal(f32, torch::arange(4, torch::kFloat) * 0.5 - 1));
        const torch::Tensor f64 = readIdx(path("f64.idx"));
        QCOMPARE(f64[0].item<double>(), 1e10);
        QCOMPARE(f64[1].item<double>(), -2.5);
    }

    void imageToCloudFrame()
    {
        // 2 rows x 4 columns: ink at (row 0, col 0) and (row 1, col 3).
        const std::uint8_t px[8] = { 255, 0, 0, 0, 0, 0, 0, 200 };
        Rng rng(0);
        const std::vector<float> c = imageToCloud(px, 2, 4, {}, rng);
        QCOMPARE(c.size(), std::size_t(4));
        // m = max(2,4) = 4: x = (2c + 1 - 4) / 4, y = (2 - 2r - 1) / 4.
        QCOMPARE(c[0], -0.75f);
        QCOMPARE(c[1], 0.25f);
        QCOMPARE(c[2], 0.75f);
        QCOMPARE(c[3], -0.25f);
        // Threshold 0.8: 200/255 = 0.78 is background.
        ImageCloudOptions high;
        high.threshold = 0.8;
        QCOMPARE(imageToCloud(px, 2, 4, high, rng).size(), std::size_t(2));
        // A blank image still gives its brightest pixels (all of them).
        const std::uint8_t blank[4] = { 0, 0, 0, 0 };
        QCOMPARE(imageToCloud(blank, 2, 2, {}, rng).size(), std::size_t(8));
        // Jitter stays within half a pixel; max points subsample.
        std::vector<std::uint8_t> full(100, 255);
        ImageCloudOptions j;
        j.jitter = 1.0;
        j.maxPoints = 10;
        const std::vector<float> jc = imageToCloud(full.data(), 10, 10, j, rng);
        QCOMPARE(jc.size(), std::size_t(20));
        for (const float v : jc) {
            QVERIFY(v >= -1.0f && v <= 1.0f);
        }
        EXPECT_THROW_MSG(ConfigError, imageToCloud(px, 2, 4, ImageCloudOptions { 1.5 }, rng), "threshold");
    }

    void otsuSeparatesTwoLevels()
    {
        std::vector<std::uint8_t> px(100, 30);
        std::fill(px.begin(), px.begin() + 40, 180);
        const int t = otsuThreshold(px.data(), px.size());
        QVERIFY2(t >= 30 && t < 180, std::to_string(t).c_str());
        ImageCloudOptions o;
        o.otsu = true;
        Rng rng(1);
        QCOMPARE(imageToCloud(px.data(), 10, 10, o, rng).size(), std::size_t(80));
    }

    void specWithLabelsAndCount()
    {
        const PointCloudDataset d
            = loadPointClouds("idx:" + path("images.idx3.gz") + "?labels=" + path("labels.idx1")
                + "&count=5");
        QCOMPARE(d.count(), std::int64_t(5));
        QCOMPARE(d.dim(), std::int64_t(2));
        QVERIFY(d.hasLabels());
        QCOMPARE(d.labels[4].item<std::int64_t>(), std::int64_t(1));
        QCOMPARE(d.labelNames, (std::vector<std::string> { "0", "1", "2" }));
        // Image 1: a single ink pixel at (1,1) of 5x4; image 0: (0,0) and (0,0) -> one pixel.
        QCOMPARE(d.size(1), std::int64_t(1));
        QCOMPARE(d.size(0), std::int64_t(1));
        QCOMPARE(d.size(2), std::int64_t(2));
        const torch::Tensor p = d.cloud(1);
        QCOMPARE(p[0][0].item<float>(), float((2 * 1 + 1 - 4) / 5.0));
        QCOMPARE(p[0][1].item<float>(), float((5 - 2 * 1 - 1) / 5.0));
        // The sibling label file is found without labels=.
        const PointCloudDataset auto_ = loadPointClouds("idx:" + path("images.idx3"));
        QVERIFY(auto_.hasLabels());
        QCOMPARE(auto_.count(), std::int64_t(7));
    }

    void folderWithFashionNames()
    {
        const PointCloudDataset d = loadPointClouds("idx:" + path("fashion-copy") + "?split=train");
        QCOMPARE(d.count(), std::int64_t(7));
        QCOMPARE(d.labelNames.size(), std::size_t(10));
        QCOMPARE(d.labelNames[0], std::string("T-shirt/top"));
        EXPECT_THROW_MSG(ConfigError, loadPointClouds("idx:" + path("fashion-copy") + "?split=test"),
            "no IDX images", "t10k-images-idx3-ubyte");
        EXPECT_THROW_MSG(ConfigError, loadPointClouds("idx:" + path("fashion-copy") + "?bogus=1"),
            "unknown option 'bogus'");
        EXPECT_THROW_MSG(ConfigError,
            loadPointClouds("idx:" + path("fashion-copy") + "?threshold=2"), "threshold");
    }

    void realFashionMnistTestSplit()
    {
        if (!QFile::exists(QString::fromUtf8(kFashionDir))) {
            QSKIP("dataset-fashion-mnist is not installed");
        }
        QElapsedTimer timer;
        timer.start();
        const PointCloudDataset d
            = loadPointClouds(std::string("idx:") + kFashionDir + "?split=test");
        qInfo("Fashion-MNIST test split: %lld clouds, Nmax %lld, %lld ms", (long long)d.count(),
            (long long)d.maxPoints(), (long long)timer.elapsed());
        QCOMPARE(d.count(), std::int64_t(10000));
        QCOMPARE(d.numLabels(), std::int64_t(10));
        QCOMPARE(d.labelNames[9], std::string("Ankle boot"));
        const auto s = d.summary();
        for (const auto c : s.labelCounts) {
            QCOMPARE(c, std::int64_t(1000));
        }
        QVERIFY(s.minSize >= 1 && s.maxSize <= 784);
        QVERIFY(d.points.abs().max().item<float>() <= 1.0f);
    }

    void hostileFiles()
    {
        const std::string good = readRaw(path("images.idx3"));
        const std::string bad = path("bad.idx");
        // Wrong magic.
        writeRaw(bad, std::string("\x01\x02\x08\x03", 4) + good.substr(4));
        EXPECT_THROW_MSG(DatasetError, readIdx(bad), bad, "bad magic");
        // Dims whose product overflows 64 bits.
        std::string overflow("\x00\x00\x08\x04", 4);
        for (int i = 0; i < 4; ++i) {
            overflow += std::string("\xff\xff\xff\xff", 4);
        }
        writeRaw(bad, overflow);
        EXPECT_THROW_MSG(DatasetError, readIdx(bad), bad, "overflows");
        // Dims that exceed the file.
        std::string big = good;
        big[4] = '\x7f';
        writeRaw(bad, big);
        EXPECT_THROW_MSG(DatasetError, readIdx(bad), bad, "truncated IDX data");
        // Truncated header and empty file.
        writeRaw(bad, good.substr(0, 9));
        EXPECT_THROW_MSG(DatasetError, readIdx(bad), bad, "truncated IDX header");
        writeRaw(bad, "");
        EXPECT_THROW_MSG(DatasetError, readIdx(bad), bad, "empty");
        // Truncated and corrupt gzip.
        const std::string gz = readRaw(path("images.idx3.gz"));
        writeRaw(bad, gz.substr(0, gz.size() / 2));
        EXPECT_THROW_MSG(DatasetError, readIdx(bad), bad, "gzip");
        std::string corrupt = gz;
        for (std::size_t i = 12; i < corrupt.size() - 8; ++i) {
            corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
        }
        writeRaw(bad, corrupt);
        EXPECT_THROW_MSG(DatasetError, readIdx(bad), bad);
        // Gzip of a header that claims a huge array fails before inflating anything big.
        // Missing file; label count mismatch; labels that are not 1-D.
        EXPECT_THROW_MSG(DatasetError, readIdx(path("missing.idx")), "missing.idx", "cannot open");
        EXPECT_THROW_MSG(DatasetError,
            loadPointClouds("idx:" + path("images.idx3") + "?labels=" + path("i16.idx")),
            "i16.idx", "expected labels [N]");
        EXPECT_THROW_MSG(DatasetError,
            loadPointClouds("idx:" + path("labels.idx1") + "?labels=" + path("labels.idx1")),
            "labels.idx1", "expected images [N,H,W] of uint8");
    }

    void schemeIsListed()
    {
        const auto schemes = dataSchemes();
        QVERIFY(schemes.count("idx") == 1);
        QVERIFY(schemes.at("idx").find("split") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestIdx)
#include "tst_idx.moc"
