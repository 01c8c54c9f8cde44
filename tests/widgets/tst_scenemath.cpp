// The maths behind the scenes: the 3x3 symmetric eigen-solver used for ellipsoids, rotation
// quaternions for glyph orientation, and the colour maps.

#include "wfm/widgets/ColourMaps.h"
#include "wfm/widgets/SymmetricEigen3.h"

#include <QtTest>

#include <array>
#include <cmath>
#include <random>

using namespace wfm;

namespace {

constexpr double kEigenTolerance = 1e-12; // relative to the largest |entry|
constexpr double kOrthoTolerance = 1e-12;

using Mat3 = std::array<std::array<double, 3>, 3>;

Mat3 fromRowMajor(const std::array<double, 9>& a)
{
    return { { { a[0], a[1], a[2] }, { a[3], a[4], a[5] }, { a[6], a[7], a[8] } } };
}

double maxAbs(const Mat3& m)
{
    double s = 0.0;
    for (const auto& row : m) {
        for (double x : row) {
            s = std::max(s, std::abs(x));
        }
    }
    return s;
}

double det(const Mat3& e)
{
    return e[0][0] * (e[1][1] * e[2][2] - e[1][2] * e[2][1]) - e[0][1] * (e[1][0] * e[2][2] - e[1][2] * e[2][0])
        + e[0][2] * (e[1][0] * e[2][1] - e[1][1] * e[2][0]);
}

/// Rotates v by the unit quaternion q = (w, x, y, z): v' = q v q*.
std::array<double, 3> rotate(const std::array<double, 4>& q, const std::array<double, 3>& v)
{
    const double w = q[0];
    const std::array<double, 3> u = { q[1], q[2], q[3] };
    // v' = v + 2w (u x v) + 2 u x (u x v)
    const std::array<double, 3> c1 = { u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0] };
    const std::array<double, 3> c2 = { u[1] * c1[2] - u[2] * c1[1], u[2] * c1[0] - u[0] * c1[2], u[0] * c1[1] - u[1] * c1[0] };
    return { v[0] + 2 * w * c1[0] + 2 * c2[0], v[1] + 2 * w * c1[1] + 2 * c2[1], v[2] + 2 * w * c1[2] + 2 * c2[2] };
}

double colourDistance(const QColor& a, const QColor& b)
{
    return std::abs(a.redF() - b.redF()) + std::abs(a.greenF() - b.greenF()) + std::abs(a.blueF() - b.blueF());
}

} // namespace

class TestSceneMath : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void eigenReconstructs_data();
    void eigenReconstructs();
    void eigenOfKnownMatrices();
    void quaternionMatchesRotation_data();
    void quaternionMatchesRotation();
    void categoricalPalette();
    void sequentialMap();
    void positionMapsAreSmoothAndDistinct();
};

void TestSceneMath::eigenReconstructs_data()
{
    QTest::addColumn<int>("seed");
    QTest::addColumn<double>("scale");
    QTest::addColumn<int>("rank");
    for (int seed = 1; seed <= 6; ++seed) {
        QTest::addRow("full rank, seed %d", seed) << seed << 1.0 << 3;
    }
    QTest::newRow("tiny scale") << 7 << 1e-8 << 3;
    QTest::newRow("huge scale") << 8 << 1e8 << 3;
    QTest::newRow("rank 2") << 9 << 1.0 << 2;
    QTest::newRow("rank 1") << 10 << 1.0 << 1;
}

void TestSceneMath::eigenReconstructs()
{
    // A = B B^T with B random 3 x rank: symmetric PSD of the given rank. Check A = V L V^T,
    // V orthonormal with det +1, values sorted, and the rank's zero eigenvalues.
    QFETCH(int, seed);
    QFETCH(double, scale);
    QFETCH(int, rank);
    std::mt19937 rng(static_cast<unsigned>(seed));
    std::normal_distribution<double> normal(0.0, 1.0);
    double b[3][3] = {};
    for (auto& row : b) {
        for (int k = 0; k < rank; ++k) {
            row[k] = normal(rng) * std::sqrt(scale);
        }
    }
    std::array<double, 9> a {};
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
            for (int k = 0; k < 3; ++k) {
                a[i * 3 + j] += b[i][k] * b[j][k];
            }
        }
    }
    const Mat3 m = fromRowMajor(a);
    const SymmetricEigen3 e = symmetricEigen3(a);
    const double tol = kEigenTolerance * maxAbs(m) * 10;
    QVERIFY(e.values[0] >= e.values[1] && e.values[1] >= e.values[2]);
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
            double r = 0.0;
            double dotij = 0.0;
            for (int k = 0; k < 3; ++k) {
                r += e.vectors[i][k] * e.values[k] * e.vectors[j][k];
                dotij += e.vectors[k][i] * e.vectors[k][j];
            }
            QVERIFY2(std::abs(r - m[i][j]) <= tol, qPrintable(QStringLiteral("A[%1][%2]").arg(i).arg(j)));
            QVERIFY(std::abs(dotij - (i == j ? 1.0 : 0.0)) <= kOrthoTolerance);
        }
    }
    QVERIFY(std::abs(det(e.vectors) - 1.0) <= kOrthoTolerance);
    for (int k = rank; k < 3; ++k) {
        QVERIFY(std::abs(e.values[static_cast<size_t>(k)]) <= tol);
    }
    // Trace is preserved.
    QVERIFY(std::abs(e.values[0] + e.values[1] + e.values[2] - (a[0] + a[4] + a[8])) <= tol);
}

void TestSceneMath::eigenOfKnownMatrices()
{
    // Diagonal, unsorted.
    SymmetricEigen3 e = symmetricEigen3({ 2, 0, 0, 0, 5, 0, 0, 0, 1 });
    QCOMPARE(e.values[0], 5.0);
    QCOMPARE(e.values[1], 2.0);
    QCOMPARE(e.values[2], 1.0);
    QCOMPARE(std::abs(e.vectors[1][0]), 1.0);
    // [[2,1,0],[1,2,0],[0,0,7]]: eigenvalues 7, 3, 1; the 3 belongs to (1,1,0)/sqrt 2.
    e = symmetricEigen3({ 2, 1, 0, 1, 2, 0, 0, 0, 7 });
    QVERIFY(std::abs(e.values[0] - 7.0) < 1e-14);
    QVERIFY(std::abs(e.values[1] - 3.0) < 1e-14);
    QVERIFY(std::abs(e.values[2] - 1.0) < 1e-14);
    QVERIFY(std::abs(std::abs(e.vectors[0][1]) - std::sqrt(0.5)) < 1e-14);
    QVERIFY(std::abs(e.vectors[0][1] - e.vectors[1][1]) < 1e-14);
    // Repeated eigenvalue (identity * 3) and the zero matrix.
    e = symmetricEigen3({ 3, 0, 0, 0, 3, 0, 0, 0, 3 });
    for (double v : e.values) {
        QCOMPARE(v, 3.0);
    }
    e = symmetricEigen3({ 0, 0, 0, 0, 0, 0, 0, 0, 0 });
    for (double v : e.values) {
        QCOMPARE(v, 0.0);
    }
    QCOMPARE(det(e.vectors), 1.0);
}

void TestSceneMath::quaternionMatchesRotation_data()
{
    QTest::addColumn<int>("seed");
    for (int seed = 1; seed <= 8; ++seed) {
        QTest::addRow("seed %d", seed) << seed;
    }
}

void TestSceneMath::quaternionMatchesRotation()
{
    // Rotations from eigenvectors of random symmetric matrices, plus the near-180-degree cases
    // of the branches of the conversion.
    QFETCH(int, seed);
    std::mt19937 rng(static_cast<unsigned>(seed));
    std::normal_distribution<double> normal(0.0, 1.0);
    std::array<double, 9> a {};
    for (int i = 0; i < 3; ++i) {
        for (int j = i; j < 3; ++j) {
            a[i * 3 + j] = a[j * 3 + i] = normal(rng);
        }
    }
    std::vector<Mat3> rotations = { symmetricEigen3(a).vectors };
    rotations.push_back({ { { 1, 0, 0 }, { 0, -1, 0 }, { 0, 0, -1 } } }); // 180 about x
    rotations.push_back({ { { -1, 0, 0 }, { 0, 1, 0 }, { 0, 0, -1 } } }); // 180 about y
    rotations.push_back({ { { -1, 0, 0 }, { 0, -1, 0 }, { 0, 0, 1 } } }); // 180 about z
    for (const Mat3& r : rotations) {
        const auto q = rotationToQuaternion(r);
        QVERIFY(std::abs(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3] - 1.0) < 1e-12);
        for (int c = 0; c < 3; ++c) {
            std::array<double, 3> unit {};
            unit[static_cast<size_t>(c)] = 1.0;
            const auto v = rotate(q, unit);
            for (int row = 0; row < 3; ++row) {
                QVERIFY(std::abs(v[static_cast<size_t>(row)] - r[static_cast<size_t>(row)][static_cast<size_t>(c)]) < 1e-12);
            }
        }
    }
}

void TestSceneMath::categoricalPalette()
{
    const int n = colours::categoricalCount();
    QCOMPARE(n, 10);
    for (int i = 0; i < n; ++i) {
        QCOMPARE(colours::categorical(i + n), colours::categorical(i));
        QCOMPARE(colours::categorical(i - n), colours::categorical(i));
        for (int j = i + 1; j < n; ++j) {
            QVERIFY2(colourDistance(colours::categorical(i), colours::categorical(j)) > 0.25,
                qPrintable(QStringLiteral("%1 vs %2").arg(i).arg(j)));
        }
    }
}

void TestSceneMath::sequentialMap()
{
    // Ends of viridis; luminance increases monotonically; clamped outside [0, 1].
    QCOMPARE(colours::sequential(0.0), QColor(0x44, 0x01, 0x54));
    QCOMPARE(colours::sequential(1.0), QColor(0xfd, 0xe7, 0x25));
    QCOMPARE(colours::sequential(-3.0), colours::sequential(0.0));
    QCOMPARE(colours::sequential(7.0), colours::sequential(1.0));
    QCOMPARE(colours::sequential(std::nan("")), colours::sequential(0.0));
    double previous = -1.0;
    for (int i = 0; i <= 100; ++i) {
        const QColor c = colours::sequential(i / 100.0);
        const double l = 0.2126 * c.redF() + 0.7152 * c.greenF() + 0.0722 * c.blueF();
        QVERIFY(l >= previous - 1e-3);
        previous = l;
    }
}

void TestSceneMath::positionMapsAreSmoothAndDistinct()
{
    // Smooth: a step of 0.01 changes the colour by little (away from the centre, where hue is
    // undefined but saturation vanishes). Distinct: far-apart positions differ clearly.
    for (int i = 0; i <= 50; ++i) {
        for (int j = 0; j <= 50; ++j) {
            const double u = i / 50.0;
            const double v = j / 50.0;
            QVERIFY(colourDistance(colours::position2D(u, v), colours::position2D(u + 0.01, v)) < 0.12);
            QVERIFY(colourDistance(colours::position2D(u, v), colours::position2D(u, v + 0.01)) < 0.12);
            QVERIFY(colourDistance(colours::position3D(u, v, 0.3), colours::position3D(u + 0.01, v, 0.3)) < 0.03);
        }
    }
    const QColor corners[] = { colours::position2D(0, 0), colours::position2D(1, 0), colours::position2D(0, 1),
        colours::position2D(1, 1), colours::position2D(0.5, 0.5) };
    for (int a = 0; a < 5; ++a) {
        for (int b = a + 1; b < 5; ++b) {
            QVERIFY2(colourDistance(corners[a], corners[b]) > 0.3, qPrintable(QStringLiteral("%1 vs %2").arg(a).arg(b)));
        }
    }
    QVERIFY(colourDistance(colours::position3D(0, 0, 0), colours::position3D(1, 1, 1)) > 2.0);
}

QTEST_GUILESS_MAIN(TestSceneMath)
#include "tst_scenemath.moc"
