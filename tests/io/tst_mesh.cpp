#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Npy.h"
#include "wfm/io/Mesh.h"
#include "wfm/io/Readers.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

using wfm::ConfigError;
using wfm::DatasetError;
namespace fs = std::filesystem;

namespace {

void writeText(const std::string& path, const std::string& text)
{
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
}

/// Two triangles with areas 1 and 3, far apart along x.
const char* kTwoTrianglesOff = "OFF\n6 2 0\n0 0 0\n1 0 0\n0 2 0\n10 0 0\n13 0 0\n10 2 0\n"
                               "3 0 1 2\n3 3 4 5\n";

/// The cube [-0.5,0.5]^3 as six quads (assimp triangulates them).
const char* kCubeObj = "v -0.5 -0.5 -0.5\nv 0.5 -0.5 -0.5\nv 0.5 0.5 -0.5\nv -0.5 0.5 -0.5\n"
                       "v -0.5 -0.5 0.5\nv 0.5 -0.5 0.5\nv 0.5 0.5 0.5\nv -0.5 0.5 0.5\n"
                       "f 1 4 3 2\nf 5 6 7 8\nf 1 2 6 5\nf 2 3 7 6\nf 3 4 8 7\nf 4 1 5 8\n";

const char* kTetraOff = "OFF\n4 4 6\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n"
                        "3 1 2 3\n";

/// PLY (ascii and binary) and binary STL written by numpy, independently of assimp: the same
/// right triangle (0,0,0) (2,0,0) (0,2,0) in the plane z = 1.
const char* kFixtureScript = R"PY(
import numpy as np, struct
v = np.array([[0, 0, 1], [2, 0, 1], [0, 2, 1]], np.float32)
hdr = ('ply\nformat {}\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n'
       'element face 1\nproperty list uchar int vertex_indices\nend_header\n')
with open('tri_ascii.ply', 'w') as f:
    f.write(hdr.format('ascii 1.0'))
    for p in v:
        f.write('%g %g %g\n' % tuple(p))
    f.write('3 0 1 2\n')
with open('tri_binary.ply', 'wb') as f:
    f.write(hdr.format('binary_little_endian 1.0').encode())
    f.write(v.astype('<f4').tobytes())
    f.write(struct.pack('<B3i', 3, 0, 1, 2))
with open('tri.stl', 'wb') as f:
    f.write(b'\0' * 80)
    f.write(struct.pack('<I', 1))
    f.write(np.array([0, 0, 1], '<f4').tobytes() + v.astype('<f4').tobytes() + b'\0\0')
pts = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
with open('cloud.ply', 'w') as f:
    f.write('ply\nformat ascii 1.0\nelement vertex 500\nproperty float x\nproperty float y\n'
            'property float z\nend_header\n')
    for p in pts:
        f.write('%.6f %.6f %.6f\n' % tuple(p))
np.savetxt('cloud.xyz', pts[:100], fmt='%.6f')
)PY";

} // namespace

class TestMesh : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::string path(const std::string& name) const { return m_dir.path().toStdString() + "/" + name; }

private Q_SLOTS:
    void initTestCase()
    {
#if !WFM_IO_HAVE_ASSIMP
        QSKIP("this build has no assimp");
#endif
        QVERIFY(m_dir.isValid());
        wfm::io::registerReaders();
        QString log;
        QCOMPARE(wfm::test::runPython(m_dir.path(), QString::fromUtf8(kFixtureScript), log), 0);
    }

#if WFM_IO_HAVE_ASSIMP
    void readerIsListed()
    {
        const auto readers = wfm::io::availableReaders();
        QVERIFY(std::any_of(readers.begin(), readers.end(),
            [](const std::string& r) { return r.rfind("mesh (assimp ", 0) == 0; }));
        QVERIFY(wfm::data::dataSchemes().count("mesh") == 1);
    }

    void samplingIsUniformByArea()
    {
        writeText(path("two.off"), kTwoTrianglesOff);
        const wfm::io::TriangleMesh mesh = wfm::io::readMesh(path("two.off"));
        QCOMPARE(mesh.triangleCount(), std::int64_t(2));
        const std::int64_t n = 20000;
        const torch::Tensor p = wfm::io::sampleSurface(mesh, n, 7);
        QCOMPARE(p.sizes().vec(), (std::vector<std::int64_t> { n, 3 }));
        const double small = (p.select(1, 0) < 5).sum().item<double>();
        // Binomial(n, 1/4): mean 5000, sd 61; allow 5 sd.
        const double sd = std::sqrt(n * 0.25 * 0.75);
        QVERIFY2(std::abs(small - 0.25 * n) < 5 * sd, std::to_string(small).c_str());
        // Inside the triangles: x >= corner, y >= 0, z = 0, and within the hypotenuse.
        const torch::Tensor a = p.index({ p.select(1, 0) < 5 });
        QVERIFY((a.select(1, 0) + a.select(1, 1) / 2 <= 1 + 1e-5).all().item<bool>());
        QVERIFY((p.select(1, 2) == 0).all().item<bool>());
        // Uniform within a triangle: the mean of triangle A is its centroid (1/3, 2/3).
        const torch::Tensor mean = a.mean(0);
        QVERIFY(std::abs(mean[0].item<double>() - 1.0 / 3) < 0.02);
        QVERIFY(std::abs(mean[1].item<double>() - 2.0 / 3) < 0.03);
        // Deterministic for a seed.
        QVERIFY(torch::equal(p, wfm::io::sampleSurface(mesh, n, 7)));
        QVERIFY(!torch::equal(p, wfm::io::sampleSurface(mesh, n, 8)));
    }

    void cubeFacesFromQuads()
    {
        writeText(path("cube.obj"), kCubeObj);
        const wfm::io::TriangleMesh mesh = wfm::io::readMesh(path("cube.obj"));
        QCOMPARE(mesh.triangleCount(), std::int64_t(12));
        const std::int64_t n = 12000;
        const torch::Tensor p = wfm::io::sampleSurface(mesh, n, 1);
        const torch::Tensor linf = std::get<0>(p.abs().max(1));
        QVERIFY(((linf - 0.5).abs() < 1e-5).all().item<bool>());
        // Each of the six faces gets 1/6 of the points (binomial bound, 5 sd).
        const double sd = std::sqrt(n * (1.0 / 6) * (5.0 / 6));
        for (int axis = 0; axis < 3; ++axis) {
            for (const double side : { -0.5, 0.5 }) {
                const double c = ((p.select(1, axis) - side).abs() < 1e-5).sum().item<double>();
                QVERIFY2(std::abs(c - n / 6.0) < 5 * sd, std::to_string(c).c_str());
            }
        }
    }

    void independentWriters()
    {
        for (const char* name : { "tri_ascii.ply", "tri_binary.ply", "tri.stl" }) {
            const wfm::io::TriangleMesh m = wfm::io::readMesh(path(name));
            QVERIFY2(m.triangleCount() == 1, name);
            const torch::Tensor p = wfm::io::sampleSurface(m, 500, 0);
            QVERIFY2(((p.select(1, 2) - 1).abs() < 1e-6).all().item<bool>(), name);
            QVERIFY2((p.select(1, 0) + p.select(1, 1) <= 2 + 1e-5).all().item<bool>(), name);
        }
        // Point-only files are clouds: PLY vertices, OBJ 'v' lines, .xyz text.
        const torch::Tensor ply = wfm::io::meshToCloud(path("cloud.ply"), { 1000 });
        QCOMPARE(ply.size(0), std::int64_t(500));
        const torch::Tensor sub = wfm::io::meshToCloud(path("cloud.ply"), { 200 });
        QCOMPARE(sub.size(0), std::int64_t(200));
        const torch::Tensor xyz = wfm::io::meshToCloud(path("cloud.xyz"), { 1000 });
        QCOMPARE(xyz.size(0), std::int64_t(100));
        QVERIFY(torch::allclose(xyz, ply.slice(0, 0, 100), 1e-5, 1e-5));
        writeText(path("verts.obj"), "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n");
        QCOMPARE(wfm::io::meshToCloud(path("verts.obj"), { 10 }).size(0), std::int64_t(4));
    }

    void gluedOffHeaderAndFps()
    {
        writeText(path("glued.off"), "OFF4 4 6\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n"
                                     "3 0 2 3\n3 1 2 3\n");
        QCOMPARE(wfm::io::readMesh(path("glued.off")).triangleCount(), std::int64_t(4));
        wfm::io::MeshSamplingOptions fps;
        fps.points = 64;
        fps.fps = true;
        const torch::Tensor f = wfm::io::meshToCloud(path("glued.off"), fps);
        QCOMPARE(f.size(0), std::int64_t(64));
        const torch::Tensor r = wfm::io::meshToCloud(path("glued.off"), { 64 });
        // Farthest-point samples are spread: their closest pair is farther apart.
        auto minGap = [](const torch::Tensor& x) {
            torch::Tensor d = torch::cdist(x, x);
            d.fill_diagonal_(1e9);
            return d.min().item<double>();
        };
        QVERIFY(minGap(f) > minGap(r));
    }

    void folderLabelsAndSplit()
    {
        const std::string root = path("modelnet");
        writeText(root + "/chair/train/chair_0001.off", kTetraOff);
        writeText(root + "/chair/train/chair_0002.off", kTwoTrianglesOff);
        writeText(root + "/chair/test/chair_0100.off", kTetraOff);
        writeText(root + "/table/train/table_0001.obj", kCubeObj);
        writeText(root + "/table/test/table_0100.obj", kCubeObj);
        const auto train = wfm::data::loadPointClouds("mesh:" + root + "?split=train&points=32");
        QCOMPARE(train.count(), std::int64_t(3));
        QCOMPARE(train.maxPoints(), std::int64_t(32));
        QCOMPARE(train.labelNames, (std::vector<std::string> { "chair", "table" }));
        QCOMPARE(train.labels[2].item<std::int64_t>(), std::int64_t(1));
        const auto all = wfm::data::loadPointClouds("mesh:" + root + "?points=16");
        QCOMPARE(all.count(), std::int64_t(5));
        EXPECT_THROW_MSG(ConfigError, wfm::data::loadPointClouds("mesh:" + root + "?split=val"),
            "split");
        EXPECT_THROW_MSG(ConfigError, wfm::data::loadPointClouds("mesh:" + root + "?nope=1"),
            "unknown option 'nope'");
        // ShapeNetCore layout with a taxonomy.
        const std::string sn = path("shapenet");
        writeText(sn + "/02691156/m1/models/model_normalized.obj", kCubeObj);
        writeText(sn + "/02691156/m2/models/model_normalized.obj", kCubeObj);
        writeText(sn + "/03001627/m3/models/model_normalized.obj", kCubeObj);
        writeText(sn + "/taxonomy.json",
            R"([{"synsetId": "02691156", "name": "airplane,aeroplane,plane"},
                {"synsetId": "03001627", "name": "chair"}])");
        const auto shapes = wfm::data::loadPointClouds("mesh:" + sn + "?points=8");
        QCOMPARE(shapes.count(), std::int64_t(3));
        QCOMPARE(shapes.labelNames, (std::vector<std::string> { "airplane", "chair" }));
    }

    void cacheHitAndInvalidation()
    {
        const std::string root = path("cached");
        writeText(root + "/a/x.off", kTetraOff);
        writeText(root + "/b/y.obj", kCubeObj);
        wfm::io::MeshSamplingOptions o;
        o.points = 100;
        const auto first = wfm::io::readMeshes(root, o);
        const std::string cacheFile = wfm::io::meshCachePath(root, o);
        QVERIFY2(cacheFile.find("/cached/.wfm-cache/mesh-") != std::string::npos, cacheFile.c_str());
        QVERIFY(fs::exists(cacheFile));
        // A hit returns what the cache holds: plant a marker dataset there.
        auto marker = first.clone();
        marker.points.mul_(0).add_(42);
        marker.points.mul_(marker.weights.gt(0).unsqueeze(2));
        wfm::data::writePointCloudNpz(cacheFile, marker);
        QElapsedTimer timer;
        timer.start();
        const auto hit = wfm::io::readMeshes(root, o);
        QCOMPARE(hit.cloud(0)[0][0].item<float>(), 42.0f);
        QCOMPARE(hit.labelNames, first.labelNames);
        // Touching a source changes its mtime: new key, fresh samples.
        fs::last_write_time(root + "/a/x.off",
            fs::last_write_time(root + "/a/x.off") + std::chrono::seconds(5));
        const std::string newCache = wfm::io::meshCachePath(root, o);
        QVERIFY(newCache != cacheFile);
        const auto fresh = wfm::io::readMeshes(root, o);
        QVERIFY(torch::equal(fresh.points, first.points));
        QVERIFY(fs::exists(newCache));
        QVERIFY(!fs::exists(cacheFile)); // the stale entry is gone
        // Changing the contents (size) too.
        writeText(root + "/a/x.off", kTwoTrianglesOff);
        QVERIFY(wfm::io::meshCachePath(root, o) != newCache);
        QVERIFY(!torch::equal(wfm::io::readMeshes(root, o).points, first.points));
        // Different options, different entry.
        o.seed = 3;
        QVERIFY(wfm::io::meshCachePath(root, o) != wfm::io::meshCachePath(root, { 100 }));
    }

    void cacheFallsBackToXdg()
    {
        const std::string root = path("readonly");
        writeText(root + "/m.off", kTetraOff);
        // A regular file where the cache folder would go: the folder cannot be created.
        writeText(root + "/.wfm-cache", "not a folder");
        const std::string xdg = path("xdg");
        qputenv("XDG_CACHE_HOME", QByteArray::fromStdString(xdg));
        const std::string cacheFile = wfm::io::meshCachePath(root, {});
        QVERIFY2(cacheFile.rfind(xdg + "/wfm-studio/mesh-", 0) == 0, cacheFile.c_str());
        const auto d = wfm::io::readMeshes(root, {});
        QCOMPARE(d.count(), std::int64_t(1));
        QVERIFY(fs::exists(cacheFile));
        qunsetenv("XDG_CACHE_HOME");
    }

    void hostileMeshes()
    {
        auto expectBad = [&](const std::string& name, const std::string& text, const char* problem) {
            writeText(path(name), text);
            EXPECT_THROW_MSG(DatasetError, wfm::io::readMesh(path(name)), name, problem);
        };
        expectBad("empty.off", "", "empty file");
        expectBad("billion.off", "OFF\n1000000000 1 0\n0 0 0\n", "too many");
        expectBad("hugefaces.off", "OFF\n3 2000000000 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "too many");
        expectBad("negative.off", "OFF\n-3 1 0\n0 0 0\n", "negative");
        expectBad("notoff.off", "hello\n3 1 0\n", "not an OFF file");
        expectBad("huge.ply",
            "ply\nformat binary_little_endian 1.0\nelement vertex 4000000000\nproperty float x\n"
            "property float y\nproperty float z\nend_header\n",
            "too many");
        expectBad("nan.off", "OFF\n3 1 0\n0 0 0\nnan 0 0\n0 1 0\n3 0 1 2\n", "non-finite");
        expectBad("nan.xyz", "0 0 0\n1 inf 0\n", "non-finite");
        expectBad("bad.xyz", "0 0 0\n1 zwei 0\n", "line 2");
        expectBad("garbage.obj", std::string("\x01\x02\x03 binary junk\n", 17), "");
        writeText(path("range.off"), "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n");
        try {
            wfm::io::readMesh(path("range.off"));
            QFAIL("out-of-range index accepted");
        } catch (const DatasetError& e) {
            QVERIFY2(std::string(e.what()).find("range.off") != std::string::npos, e.what());
        }
        // A mesh without area cannot be sampled.
        writeText(path("flat.off"), "OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n");
        EXPECT_THROW_MSG(DatasetError, wfm::io::meshToCloud(path("flat.off"), {}), "flat.off",
            "positive area");
        EXPECT_THROW_MSG(DatasetError, wfm::data::loadPointClouds("mesh:" + path("nothing-here")),
            "no such file");
    }
#endif
};

QTEST_GUILESS_MAIN(TestMesh)
#include "tst_mesh.moc"
