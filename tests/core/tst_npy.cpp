#include "wfm/AtomicFile.h"
#include "wfm/Error.h"
#include "wfm/data/Npy.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include <sys/stat.h>

using wfm::data::NpzArchive;

namespace {

using wfm::test::kPython;
using wfm::test::runPython;

std::string readAll(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return { std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>() };
}

void writeRaw(const std::string& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// An NPY v1.0 file with a hand-written header dict (padded as numpy pads it) and raw data.
std::string handMadeNpy(const std::string& dict, const std::string& data)
{
    std::string header = dict;
    const std::size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>((header.size() >> 8) & 0xff);
    return out + header + data;
}

/// Values for a round trip: distinct, exactly representable, with negatives where the dtype
/// has them.
torch::Tensor sampleTensor(torch::ScalarType type, const std::vector<std::int64_t>& shape)
{
    const std::int64_t count
        = std::accumulate(shape.begin(), shape.end(), std::int64_t { 1 }, std::multiplies<>());
    torch::Tensor base = torch::arange(count, torch::kDouble);
    switch (type) {
    case torch::kBool:
        base = (base.remainder(3) == 1);
        break;
    case torch::kByte:
        base = (base * 37).remainder(256);
        break;
    case torch::kChar:
        base = (base * 37).remainder(256) - 128;
        break;
    case torch::kFloat:
    case torch::kDouble:
        base = (base - count / 2.0) * 0.37 + 1e-3 * base.pow(2);
        break;
    default:
        base = (base - count / 2) * 1031;
        break;
    }
    return base.to(type).reshape(shape);
}

/// Calls fn, which must throw E; returns its message (or an empty string with `threw` false).
template <typename E> std::string messageOf(const std::function<void()>& fn, bool& threw)
{
    threw = false;
    try {
        fn();
    } catch (const E& e) {
        threw = true;
        return e.what();
    } catch (const std::exception& e) {
        return std::string("wrong exception type: ") + e.what();
    }
    return "no exception";
}

} // namespace

class TestNpy : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void roundTrip_data();
    void roundTrip();
    void roundTripNonContiguous();
    void headerLayout();
    void writeRejectsUnsupportedDtype();

    void readsNumpyFiles();
    void numpyReadsOurFiles();

    void readErrors_data();
    void readErrors();
    void npzErrors();
    void requireArrayNamesTheMembers();

    void atomicWrite();
    void atomicWriterWithoutCommitLeavesNothing();
    void atomicWriteFailureNamesThePath();

private:
    std::string path(const char* name) const { return (m_dir.path() + "/" + name).toStdString(); }
    bool pythonReady(QString& why) const;

    QTemporaryDir m_dir;
    bool m_numpy = false;
    QString m_numpyProblem;
};

void TestNpy::initTestCase()
{
    QVERIFY(m_dir.isValid());
    // numpy is a required test dependency (scripts/setup installs python3-numpy).
    if (!QFileInfo::exists(kPython)) {
        m_numpyProblem = kPython + " is missing (scripts/setup installs python3 and python3-numpy)";
        return;
    }
    QString log;
    const int rc = runPython(m_dir.path(), QStringLiteral("import numpy\n"), log);
    if (rc != 0) {
        m_numpyProblem = kPython
            + " cannot import numpy (scripts/setup installs python3-numpy): " + log.trimmed();
        return;
    }
    m_numpy = true;
}

bool TestNpy::pythonReady(QString& why) const
{
    why = m_numpyProblem;
    return m_numpy;
}

void TestNpy::roundTrip_data()
{
    QTest::addColumn<int>("dtype");
    QTest::addColumn<QList<qint64>>("shape");
    const std::vector<std::pair<const char*, torch::ScalarType>> types {
        { "float32", torch::kFloat },
        { "float64", torch::kDouble },
        { "int64", torch::kLong },
        { "int32", torch::kInt },
        { "int16", torch::kShort },
        { "int8", torch::kChar },
        { "uint8", torch::kByte },
        { "bool", torch::kBool },
    };
    const std::vector<std::pair<const char*, QList<qint64>>> shapes {
        { "0-d", {} },
        { "empty", { 0 } },
        { "vector", { 7 } },
        { "matrix", { 3, 5 } },
        { "empty-middle", { 2, 0, 3 } },
        { "cube", { 2, 3, 4 } },
        { "5-d", { 1, 2, 1, 3, 2 } },
    };
    for (const auto& [tname, type] : types) {
        for (const auto& [sname, shape] : shapes) {
            QTest::addRow("%s %s", tname, sname) << static_cast<int>(type) << shape;
        }
    }
}

void TestNpy::roundTrip()
{
    QFETCH(int, dtype);
    QFETCH(QList<qint64>, shape);
    const auto type = static_cast<torch::ScalarType>(dtype);
    const std::vector<std::int64_t> dims(shape.begin(), shape.end());
    const torch::Tensor t = sampleTensor(type, dims);

    const std::string file = path("roundtrip.npy");
    wfm::data::writeNpy(file, t);
    const torch::Tensor back = wfm::data::readNpy(file);
    QCOMPARE(back.scalar_type(), type);
    QCOMPARE(back.sizes().vec(), t.sizes().vec());
    QVERIFY(torch::equal(back, t));

    // The in-memory pair gives the same bytes and values.
    const std::string bytes = wfm::data::serializeNpy(t);
    QCOMPARE(bytes, readAll(file));
    QVERIFY(torch::equal(wfm::data::parseNpy(bytes, "memory"), t));
}

void TestNpy::roundTripNonContiguous()
{
    torch::manual_seed(7);
    const torch::Tensor base = torch::randn({ 4, 6, 3 }, torch::kDouble);
    const torch::Tensor view = base.permute({ 2, 0, 1 }).slice(2, 1, 5, 2); // [3,4,2], strided
    QVERIFY(!view.is_contiguous());
    const std::string file = path("strided.npy");
    wfm::data::writeNpy(file, view);
    QVERIFY(torch::equal(wfm::data::readNpy(file), view));
}

void TestNpy::headerLayout()
{
    // numpy's layout: version 1.0, data aligned to 64 bytes, header ends in '\n'.
    const std::string bytes = wfm::data::serializeNpy(torch::zeros({ 3, 2 }, torch::kFloat));
    QCOMPARE(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    const std::size_t headerLength = static_cast<unsigned char>(bytes[8])
        | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    QCOMPARE((10 + headerLength) % 64, std::size_t { 0 });
    QCOMPARE(bytes[10 + headerLength - 1], '\n');
    QCOMPARE(bytes.size(), 10 + headerLength + 6 * sizeof(float));
    const std::string header = bytes.substr(10, headerLength);
    QVERIFY2(header.find("'descr': '<f4'") != std::string::npos, header.c_str());
    QVERIFY2(header.find("'shape': (3, 2)") != std::string::npos, header.c_str());
    QVERIFY2(header.find("'fortran_order': False") != std::string::npos, header.c_str());
}

void TestNpy::writeRejectsUnsupportedDtype()
{
    bool threw = false;
    const std::string msg = messageOf<wfm::ConfigError>(
        [&] { wfm::data::writeNpy(path("half.npy"), torch::zeros({ 2 }, torch::kHalf)); }, threw);
    QVERIFY2(threw, msg.c_str());
    QVERIFY(!QFileInfo::exists(QString::fromStdString(path("half.npy"))));
}

void TestNpy::readsNumpyFiles()
{
    QString why;
    if (!pythonReady(why)) {
        QFAIL(qPrintable(why));
    }
    const QString script = QStringLiteral(R"PY(
import numpy as np
from numpy.lib import format as fmt
def save(name, arr, dt):
    arr = np.asarray(arr).astype(dt, order='K')
    assert arr.dtype.str == dt, (name, arr.dtype.str, dt)
    np.save(name, arr)
    with open(name, 'rb') as f:
        assert ("'descr': '%s'" % dt).encode() in f.read(128), name
save('f32.npy', (np.arange(12) * 0.5).reshape(3, 4), '<f4')
save('f64.npy', ((np.arange(6) - 2.5) / 3).reshape(2, 3), '<f8')
save('i64.npy', np.arange(-5, 5), '<i8')
save('i32.npy', np.arange(-4, 4).reshape(2, 2, 2), '<i4')
save('i16.npy', np.arange(-300, 300, 100), '<i2')
save('i8.npy', np.arange(-3, 3), '|i1')
save('u8.npy', np.arange(250, 256), '|u1')
save('bool.npy', [True, False, True, True], '|b1')
save('be_f8.npy', np.arange(6).reshape(2, 3) + 0.25, '>f8')
save('be_f4.npy', np.arange(5) * -1.5, '>f4')
save('be_i8.npy', np.arange(-3, 3) * 10**12, '>i8')
save('be_i4.npy', np.arange(-3, 3) * 1000, '>i4')
save('be_i2.npy', np.arange(-3, 3) * 300, '>i2')
np.save('fortran.npy', np.asfortranarray(np.arange(24, dtype='<f8').reshape(2, 3, 4)))
np.save('fortran_i4.npy', np.asfortranarray(np.arange(6, dtype='<i4').reshape(2, 3)))
np.save('scalar.npy', np.array(3.5))
np.save('empty.npy', np.zeros((0, 3), dtype='<f4'))
np.save('c8.npy', np.zeros(3, dtype='<c8'))
for version in [(2, 0), (3, 0)]:
    with open('v%d.npy' % version[0], 'wb') as f:
        fmt.write_array(f, np.arange(7, dtype='<i8') * 3, version=version)
np.savez('plain.npz', a=np.arange(5.0), b=np.arange(6, dtype=np.int64).reshape(2, 3))
np.savez_compressed('packed.npz', a=np.tile(np.arange(10.0), 100),
                    mask=np.arange(12).reshape(3, 4) % 2 == 0)
print('ok')
)PY");
    QString log;
    const int rc = runPython(m_dir.path(), script, log);
    QVERIFY2(rc == 0 && log.contains("ok"), qPrintable(log));

    auto read = [&](const char* name) { return wfm::data::readNpy(path(name)); };
    auto expectEqual = [](const torch::Tensor& got, const torch::Tensor& want, const char* what) {
        QVERIFY2(got.scalar_type() == want.scalar_type(), what);
        QVERIFY2(got.sizes() == want.sizes(), what);
        QVERIFY2(torch::equal(got, want), what);
    };
    const auto f64 = torch::kDouble;
    expectEqual(read("f32.npy"), (torch::arange(12, torch::kFloat) * 0.5).reshape({ 3, 4 }), "f32");
    expectEqual(read("f64.npy"), ((torch::arange(6, f64) - 2.5) / 3).reshape({ 2, 3 }), "f64");
    expectEqual(read("i64.npy"), torch::arange(-5, 5, torch::kLong), "i64");
    expectEqual(read("i32.npy"), torch::arange(-4, 4, torch::kInt).reshape({ 2, 2, 2 }), "i32");
    expectEqual(read("i16.npy"), torch::arange(-300, 300, 100, torch::kShort), "i16");
    expectEqual(read("i8.npy"), torch::arange(-3, 3, torch::kChar), "i8");
    expectEqual(read("u8.npy"), torch::arange(250, 256, torch::kLong).to(torch::kByte), "u8");
    expectEqual(read("bool.npy"),
        torch::tensor({ true, false, true, true }, torch::TensorOptions().dtype(torch::kBool)),
        "bool");
    expectEqual(read("be_f8.npy"), torch::arange(6, f64).reshape({ 2, 3 }) + 0.25, "be_f8");
    expectEqual(read("be_f4.npy"), torch::arange(5, torch::kFloat) * -1.5, "be_f4");
    expectEqual(read("be_i8.npy"),
        torch::arange(-3, 3, torch::kLong) * std::int64_t { 1'000'000'000'000 }, "be_i8");
    expectEqual(read("be_i4.npy"), torch::arange(-3, 3, torch::kInt) * 1000, "be_i4");
    expectEqual(read("be_i2.npy"), torch::arange(-3, 3, torch::kShort) * 300, "be_i2");
    expectEqual(read("fortran.npy"), torch::arange(24, f64).reshape({ 2, 3, 4 }), "fortran");
    QVERIFY(read("fortran.npy").is_contiguous());
    expectEqual(
        read("fortran_i4.npy"), torch::arange(6, torch::kInt).reshape({ 2, 3 }), "fortran_i4");
    const torch::Tensor scalar = read("scalar.npy");
    QCOMPARE(scalar.dim(), 0);
    QCOMPARE(scalar.item<double>(), 3.5);
    expectEqual(read("empty.npy"), torch::zeros({ 0, 3 }, torch::kFloat), "empty");
    expectEqual(read("v2.npy"), torch::arange(7, torch::kLong) * 3, "v2");
    expectEqual(read("v3.npy"), torch::arange(7, torch::kLong) * 3, "v3");
    QCOMPARE(int(readAll(path("v2.npy"))[6]), 2);
    QCOMPARE(int(readAll(path("v3.npy"))[6]), 3);

    // The Fortran file really is Fortran-ordered (so the test above exercises the permute).
    QVERIFY(readAll(path("fortran.npy")).find("'fortran_order': True") != std::string::npos);

    bool threw = false;
    const std::string msg = messageOf<wfm::DatasetError>([&] { read("c8.npy"); }, threw);
    QVERIFY2(threw, msg.c_str());
    QVERIFY2(msg.find("'<c8'") != std::string::npos, msg.c_str());
    QVERIFY2(msg.find(path("c8.npy")) != std::string::npos, msg.c_str());

    const NpzArchive plain = wfm::data::readNpz(path("plain.npz"));
    QCOMPARE(plain.size(), std::size_t { 2 });
    expectEqual(plain.at("a"), torch::arange(5, f64), "npz a");
    expectEqual(plain.at("b"), torch::arange(6, torch::kLong).reshape({ 2, 3 }), "npz b");

    const NpzArchive packed = wfm::data::readNpz(path("packed.npz"));
    QCOMPARE(packed.size(), std::size_t { 2 });
    expectEqual(packed.at("a"), torch::arange(10, f64).repeat({ 100 }), "npz_compressed a");
    expectEqual(packed.at("mask"),
        torch::arange(12, torch::kLong).reshape({ 3, 4 }).remainder(2) == 0, "npz_compressed mask");
    // The compressed archive is really deflated (much smaller than the 8 kB of doubles).
    QVERIFY(QFileInfo(QString::fromStdString(path("packed.npz"))).size() < 4000);
}

void TestNpy::numpyReadsOurFiles()
{
    QString why;
    if (!pythonReady(why)) {
        QFAIL(qPrintable(why));
    }
    wfm::data::writeNpy(
        path("ours_f32.npy"), (torch::arange(12, torch::kFloat) * 0.5).reshape({ 3, 4 }));
    wfm::data::writeNpy(
        path("ours_f64.npy"), torch::arange(6, torch::kDouble).reshape({ 3, 2 }) / 7);
    wfm::data::writeNpy(path("ours_i64.npy"),
        torch::arange(-5, 5, torch::kLong) * std::int64_t { 1'000'000'000'000 });
    wfm::data::writeNpy(path("ours_i32.npy"), torch::arange(-4, 4, torch::kInt));
    wfm::data::writeNpy(
        path("ours_u8.npy"), torch::arange(250, 256, torch::kLong).to(torch::kByte));
    wfm::data::writeNpy(path("ours_bool.npy"), torch::arange(5, torch::kLong).remainder(2) == 0);
    wfm::data::writeNpy(path("ours_scalar.npy"), torch::tensor(2.25, torch::kDouble));
    wfm::data::writeNpy(path("ours_empty.npy"), torch::zeros({ 0, 4 }, torch::kFloat));
    wfm::data::writeNpy(path("ours_t.npy"), torch::arange(6, torch::kDouble).reshape({ 2, 3 }).t());
    const NpzArchive arrays {
        { "x", torch::arange(20, torch::kFloat).reshape({ 4, 5 }) },
        { "w", torch::full({ 4 }, 0.25, torch::kDouble) },
        { "labels", torch::arange(4, torch::kLong) },
        { "scalar", torch::tensor(7, torch::kLong) },
    };
    wfm::data::writeNpz(path("ours_plain.npz"), arrays, false);
    wfm::data::writeNpz(path("ours_packed.npz"), arrays, true);
    wfm::data::writeNpz(path("ours_none.npz"), {}, true);

    const QString script = QStringLiteral(R"PY(
import sys, zipfile
import numpy as np
def check(name, want):
    got = np.load(name)
    if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
        print('MISMATCH', name, got.dtype, got.shape, got, 'want', want.dtype, want.shape, want)
        sys.exit(1)
check('ours_f32.npy', (np.arange(12, dtype=np.float32) * 0.5).reshape(3, 4))
check('ours_f64.npy', np.arange(6, dtype=np.float64).reshape(3, 2) / 7)
check('ours_i64.npy', np.arange(-5, 5, dtype=np.int64) * 10**12)
check('ours_i32.npy', np.arange(-4, 4, dtype=np.int32))
check('ours_u8.npy', np.arange(250, 256).astype(np.uint8))
check('ours_bool.npy', np.arange(5) % 2 == 0)
check('ours_scalar.npy', np.array(2.25))
check('ours_empty.npy', np.zeros((0, 4), dtype=np.float32))
check('ours_t.npy', np.arange(6, dtype=np.float64).reshape(2, 3).T.copy())
for name, method in [('ours_plain.npz', zipfile.ZIP_STORED), ('ours_packed.npz', zipfile.ZIP_DEFLATED)]:
    with np.load(name) as z:
        if sorted(z.files) != ['labels', 'scalar', 'w', 'x']:
            print('MEMBERS', name, z.files); sys.exit(1)
        want = {'x': np.arange(20, dtype=np.float32).reshape(4, 5), 'w': np.full(4, 0.25),
                'labels': np.arange(4, dtype=np.int64), 'scalar': np.array(7, dtype=np.int64)}
        for k, v in want.items():
            if z[k].dtype != v.dtype or z[k].shape != v.shape or not np.array_equal(z[k], v):
                print('MISMATCH', name, k, z[k], v); sys.exit(1)
    with zipfile.ZipFile(name) as zf:
        methods = {i.compress_type for i in zf.infolist()}
        if methods != {method}:
            print('COMPRESSION', name, methods); sys.exit(1)
with np.load('ours_none.npz') as z:
    if len(z.files) != 0:
        print('EMPTY', z.files); sys.exit(1)
print('ok')
)PY");
    QString log;
    const int rc = runPython(m_dir.path(), script, log);
    QVERIFY2(rc == 0 && log.contains("ok"), qPrintable(log));

    // And we read our own archives back.
    for (const char* name : { "ours_plain.npz", "ours_packed.npz" }) {
        const NpzArchive back = wfm::data::readNpz(path(name));
        QCOMPARE(back.size(), arrays.size());
        for (const auto& [key, value] : arrays) {
            QVERIFY2(torch::equal(back.at(key), value), key.c_str());
        }
    }
    QVERIFY(wfm::data::readNpz(path("ours_none.npz")).empty());
}

void TestNpy::readErrors_data()
{
    QTest::addColumn<QByteArray>("contents");
    QTest::addColumn<QString>("expected");

    const std::string f4x10 = wfm::data::serializeNpy(torch::arange(10, torch::kFloat));
    auto bytes
        = [](const std::string& s) { return QByteArray(s.data(), static_cast<int>(s.size())); };

    QTest::newRow("empty file") << QByteArray() << "empty";
    QTest::newRow("bad magic") << QByteArray("PK\x03\x04 not an npy file at all") << "bad magic";
    QTest::newRow("magic only") << QByteArray("\x93NUMPY", 6) << "truncated";
    QTest::newRow("version 9") << bytes(std::string("\x93NUMPY\x09\x00\x10\x00", 10)
        + std::string(16, ' ')) << "version 9.0";
    QTest::newRow("truncated header")
        << bytes(std::string("\x93NUMPY\x01\x00\xc8\x00", 10) + "{'descr': '<f4', ")
        << "truncated NPY header";
    QTest::newRow("unparsable dict")
        << bytes(handMadeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, }", ""))
        << "unparsable";
    QTest::newRow("missing key") << bytes(handMadeNpy("{'descr': '<f4', 'shape': (3,), }", ""))
                                 << "fortran_order";
    QTest::newRow("negative dimension")
        << bytes(handMadeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", ""))
        << "non-negative";
    QTest::newRow("unsupported dtype <c8") << bytes(handMadeNpy(
        "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0')))
                                           << "unsupported dtype '<c8'";
    QTest::newRow("unsupported dtype <U3") << bytes(handMadeNpy(
        "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", std::string(12, '\0')))
                                           << "unsupported dtype '<U3'";
    QTest::newRow("structured dtype") << bytes(handMadeNpy(
        "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,), }", std::string(4, '\0')))
                                      << "unsupported dtype";
    QTest::newRow("truncated data") << bytes(f4x10.substr(0, f4x10.size() - 5)) << "truncated";
    QTest::newRow("huge shape") << bytes(handMadeNpy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }",
        std::string(64, '\0'))) << "needs 8000000000000000000 bytes";
    QTest::newRow("overflowing shape") << bytes(
        handMadeNpy("{'descr': '<f8', 'fortran_order': False, 'shape': "
                    "(4294967296, 4294967296, 4294967296), }",
            std::string(64, '\0'))) << "overflows";
    QTest::newRow("overflowing byte count") << bytes(handMadeNpy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }", ""))
                                            << "overflows";
}

void TestNpy::readErrors()
{
    QFETCH(QByteArray, contents);
    QFETCH(QString, expected);
    const std::string file = path("broken.npy");
    writeRaw(file, contents.toStdString());

    bool threw = false;
    std::string msg = messageOf<wfm::DatasetError>([&] { wfm::data::readNpy(file); }, threw);
    QVERIFY2(threw, msg.c_str());
    QVERIFY2(msg.find(file) == 0, msg.c_str());
    QVERIFY2(msg.find(expected.toStdString()) != std::string::npos, msg.c_str());
    QVERIFY2(msg.find('\n') == std::string::npos, msg.c_str());

    // The in-memory parser reports the same problem under the given name.
    msg = messageOf<wfm::DatasetError>(
        [&] { wfm::data::parseNpy(contents.toStdString(), "archive.npz:m.npy"); }, threw);
    QVERIFY2(threw, msg.c_str());
    QVERIFY2(msg.find("archive.npz:m.npy: ") == 0, msg.c_str());
    QVERIFY2(msg.find(expected.toStdString()) != std::string::npos, msg.c_str());
}

void TestNpy::npzErrors()
{
    bool threw = false;
    const std::string missing = path("does-not-exist.npy");
    std::string msg = messageOf<wfm::DatasetError>([&] { wfm::data::readNpy(missing); }, threw);
    QVERIFY2(threw, msg.c_str());
    QVERIFY2(msg.find(missing) == 0 && msg.find("No such file") != std::string::npos, msg.c_str());

    msg = messageOf<wfm::DatasetError>(
        [&] { wfm::data::readNpy(m_dir.path().toStdString()); }, threw);
    QVERIFY2(threw, msg.c_str());

    const std::string missingNpz = path("does-not-exist.npz");
    msg = messageOf<wfm::DatasetError>([&] { wfm::data::readNpz(missingNpz); }, threw);
    QVERIFY2(threw, msg.c_str());
    QVERIFY2(msg.find(missingNpz) == 0, msg.c_str());

    const std::string notZip = path("not-a-zip.npz");
    writeRaw(notZip, "this is not a zip archive, just some text of reasonable length");
    msg = messageOf<wfm::DatasetError>([&] { wfm::data::readNpz(notZip); }, threw);
    QVERIFY2(threw, msg.c_str());
    QVERIFY2(msg.find(notZip) == 0, msg.c_str());

    // A valid archive with a broken member: the message names the archive and the member.
    const std::string good = path("good.npz");
    wfm::data::writeNpz(good, { { "x", torch::arange(64, torch::kDouble) } }, false);
    std::string archive = readAll(good);
    const std::size_t at = archive.find("'descr': '<f8'");
    QVERIFY(at != std::string::npos);
    archive.replace(at, 14, "'descr': '<c8'"); // stored member: patch the header in place
    const std::string patched = path("patched.npz");
    writeRaw(patched, archive);
    msg = messageOf<wfm::DatasetError>([&] { wfm::data::readNpz(patched); }, threw);
    QVERIFY2(threw, msg.c_str());
    // libzip checks the CRC of stored members, so either the CRC or the dtype is reported.
    QVERIFY2(msg.find(patched + ":x.npy") == 0, msg.c_str());
}

void TestNpy::requireArrayNamesTheMembers()
{
    const NpzArchive arrays { { "b", torch::zeros({ 1 }) }, { "a", torch::ones({ 2 }) },
        { "c", torch::zeros({ 3 }) } };
    QVERIFY(torch::equal(wfm::data::requireArray(arrays, "a", "f.npz"), torch::ones({ 2 })));
    bool threw = false;
    std::string msg = messageOf<wfm::DatasetError>(
        [&] { wfm::data::requireArray(arrays, "points", "f.npz"); }, threw);
    QVERIFY2(threw, msg.c_str());
    QCOMPARE(msg, std::string("f.npz: array 'points' is missing (has: a, b, c)"));
    msg = messageOf<wfm::DatasetError>([&] { wfm::data::requireArray({}, "x", "e.npz"); }, threw);
    QVERIFY2(threw, msg.c_str());
    QCOMPARE(msg, std::string("e.npz: array 'x' is missing (has: none)"));
}

void TestNpy::atomicWrite()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string file = (dir.path() + "/out.bin").toStdString();
    std::string payload(100'000, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<char>(i * 131 % 251);
    }
    wfm::writeFileAtomically(file, payload);
    QCOMPARE(readAll(file), payload);
    wfm::writeFileAtomically(file, "replaced");
    QCOMPARE(readAll(file), std::string("replaced"));
    // Only the target remains: no temporary files left behind.
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden), QStringList { "out.bin" });

    // Permissions follow the umask like an ordinary file (not mkstemp's 0600).
    const mode_t mask = ::umask(0);
    ::umask(mask);
    struct stat info
    {
    };
    QCOMPARE(::stat(file.c_str(), &info), 0);
    QCOMPARE(static_cast<unsigned>(info.st_mode & 0777), static_cast<unsigned>(0666 & ~mask));
}

void TestNpy::atomicWriterWithoutCommitLeavesNothing()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string file = (dir.path() + "/kept.txt").toStdString();
    wfm::writeFileAtomically(file, "old contents");
    {
        wfm::AtomicFileWriter writer(file);
        writer.write("new contents that never get committed");
        QVERIFY(QFileInfo::exists(QString::fromStdString(writer.tempPath())));
    }
    QCOMPARE(readAll(file), std::string("old contents"));
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden), QStringList { "kept.txt" });

    wfm::AtomicFileWriter writer(file);
    writer.write("committed");
    writer.commit();
    QCOMPARE(readAll(file), std::string("committed"));
    bool threw = false;
    const std::string msg = messageOf<wfm::Error>([&] { writer.write("again"); }, threw);
    QVERIFY2(threw, msg.c_str());
}

void TestNpy::atomicWriteFailureNamesThePath()
{
    const std::string file = path("no-such-folder/out.npy");
    bool threw = false;
    std::string msg = messageOf<wfm::Error>([&] { wfm::writeFileAtomically(file, "x"); }, threw);
    QVERIFY2(threw, msg.c_str());
    QVERIFY2(msg.find(file) != std::string::npos, msg.c_str());
    QVERIFY2(msg.find("No such file or directory") != std::string::npos, msg.c_str());

    msg = messageOf<wfm::Error>([&] { wfm::data::writeNpy(file, torch::zeros({ 2 })); }, threw);
    QVERIFY2(threw && msg.find(file) != std::string::npos, msg.c_str());
}

QTEST_GUILESS_MAIN(TestNpy)
#include "tst_npy.moc"
