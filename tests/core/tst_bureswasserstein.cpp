// Tests of the Bures-Wasserstein module (wfm::ot::bw) against closed forms (1-D, commuting and
// rotated-commuting covariances), defining identities (A S0 A = S1 with A symmetric PSD, which
// determines A uniquely for nonsingular S0; inverse maps; the cost of the Monge map), the geodesic
// property W2(N_0, N_t) = t W2(N_0, N_1), finite differences of the geodesic against the velocity,
// and brute-force loops for the batched and pairwise entry points.
#include "wfm/Error.h"
#include "wfm/ot/BuresWasserstein.h"

#include <QtTest>

#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <vector>

namespace bw = wfm::ot::bw;
using torch::Tensor;

Q_DECLARE_METATYPE(at::Tensor)

namespace {

constexpr auto kF64 = torch::kFloat64;

/// Tolerances by input dtype. Inputs are drawn in float64 and rounded to the tested dtype; the
/// truth is computed in float64 from the rounded inputs, so the errors below are the module's own
/// (float32: rounding of the results to float32, amplified by the conditioning, <= 10 here).
/// Measured maxima on this machine (Debian LibTorch 1.13, OpenBLAS): float64 7e-14, float32 1e-7
/// (matrices) and 1e-6 (finite differences); the tolerances leave a margin of 20 or more.
struct Tolerances
{
    double matrix;   ///< max-abs error of matrices and means, relative to max(1, max |truth|)
    double distance; ///< absolute error of W2^2 (values of order 1 to 10)
    double fdStep;   ///< central finite-difference step in t (S_t is quadratic in t: no truncation)
    double fd;       ///< error of d/dt S_t against W S + S W, relative as for matrix
};
constexpr Tolerances kTolFloat64 { 1e-11, 1e-11, 1e-2, 1e-11 };
constexpr Tolerances kTolFloat32 { 2e-6, 2e-6, 5e-2, 2e-5 };

/// Tolerance of the clipped-eigenvalue paths (singular covariances) in float64: the square root
/// of a round-off eigenvalue (~1e-16 of the largest) is ~1e-8 (measured up to 1.3e-7).
constexpr double kSingularTol = 1e-6;
/// Smallest eigenvalue allowed of a covariance that must be PSD, relative to the largest.
constexpr double kPsdTol = 1e-12;

const Tolerances& tolFor(torch::ScalarType dtype)
{
    return dtype == torch::kFloat32 ? kTolFloat32 : kTolFloat64;
}

torch::ScalarType dtypeOf(bool isDouble)
{
    return isDouble ? torch::kFloat64 : torch::kFloat32;
}

double maxAbs(const Tensor& x)
{
    return x.numel() == 0 ? 0.0 : x.to(kF64).abs().max().item<double>();
}

/// Max-abs difference relative to max(1, max |want|).
double relErr(const Tensor& got, const Tensor& want)
{
    return maxAbs(got.to(kF64) - want.to(kF64)) / std::max(1.0, maxAbs(want));
}

bool allFinite(const Tensor& x)
{
    return torch::isfinite(x).all().item<bool>();
}

#define VERIFY_CLOSE(got, want, tol)                                                           \
    do {                                                                                       \
        const double err_ = relErr((got), (want));                                             \
        QVERIFY2(err_ <= (tol),                                                                \
            qPrintable(QStringLiteral("%1 vs %2: error %3 > tolerance %4")                     \
                           .arg(QLatin1String(#got), QLatin1String(#want))                     \
                           .arg(err_)                                                          \
                           .arg(tol)));                                                        \
    } while (false)

/// Runs f and returns the message of the wfm::ConfigError it throws ("" if none).
QString configErrorOf(const std::function<void()>& f)
{
    try {
        f();
    } catch (const wfm::ConfigError& e) {
        return QString::fromUtf8(e.what());
    }
    return {};
}

Tensor sym(const Tensor& S)
{
    return 0.5 * (S + S.transpose(-1, -2));
}

/// Uniformly random orthogonal matrices [M,d,d] (QR of Gaussians with the sign fix).
Tensor randomOrthogonal(int64_t M, int64_t d)
{
    auto [Q, R] = at::linalg_qr(torch::randn({ M, d, d }, kF64), "reduced");
    return Q * R.diagonal(0, -2, -1).sign().unsqueeze(-2);
}

/// Random SPD [M,d,d] with eigenvalues uniform in [lo, hi] and random eigenvectors.
Tensor randomSpd(int64_t M, int64_t d, double lo = 0.3, double hi = 3.0)
{
    const Tensor Q = randomOrthogonal(M, d);
    const Tensor l = lo + (hi - lo) * torch::rand({ M, d }, kF64);
    return sym(torch::matmul(Q * l.unsqueeze(-2), Q.transpose(-1, -2)));
}

/// Random PSD [M,d,d] of rank r (B B^T with B [M,d,r]); r = 0 gives zeros.
Tensor randomPsdRank(int64_t M, int64_t d, int64_t r)
{
    if (r == 0) {
        return torch::zeros({ M, d, d }, kF64);
    }
    const Tensor B = torch::randn({ M, d, r }, kF64) / std::sqrt(double(r));
    return sym(torch::matmul(B, B.transpose(-1, -2)));
}

/// Rounds to the tested dtype and back, so the float64 truth sees exactly the tested inputs.
Tensor rounded(const Tensor& x, torch::ScalarType dtype)
{
    return x.to(dtype).to(kF64);
}

Tensor eyeLike(const Tensor& S)
{
    return torch::eye(S.size(-1), S.options());
}

Tensor batchTrace(const Tensor& S)
{
    return S.diagonal(0, -2, -1).sum(-1);
}

/// Smallest eigenvalue of each symmetric matrix relative to max(1, largest |eigenvalue|).
double minRelativeEigenvalue(const Tensor& S)
{
    const Tensor l = at::linalg_eigvalsh(sym(S.to(kF64)), "L");
    const Tensor scale = l.abs().amax(-1).clamp_min(1.0);
    return (l.select(-1, 0) / scale).min().item<double>();
}

/// Asymmetry max |S - S^T|.
double asymmetry(const Tensor& S)
{
    return maxAbs(S - S.transpose(-1, -2));
}

/// A random problem of M Gaussian pairs in dimension d, inputs in `dtype` and their float64 copies.
struct Problem
{
    Tensor m0, S0, m1, S1;         // tested inputs (dtype)
    Tensor m0d, S0d, m1d, S1d;     // the same values in float64
};

Problem makeProblem(int64_t M, int64_t d, torch::ScalarType dtype)
{
    Problem p;
    p.m0d = rounded(torch::randn({ M, d }, kF64), dtype);
    p.m1d = rounded(torch::randn({ M, d }, kF64), dtype);
    p.S0d = rounded(randomSpd(M, d), dtype);
    p.S1d = rounded(randomSpd(M, d), dtype);
    p.m0 = p.m0d.to(dtype);
    p.m1 = p.m1d.to(dtype);
    p.S0 = p.S0d.to(dtype);
    p.S1 = p.S1d.to(dtype);
    return p;
}

void addDimensionDtypeRows()
{
    QTest::addColumn<int>("d");
    QTest::addColumn<bool>("isDouble");
    for (const int d : { 1, 2, 3, 5, 8 }) {
        for (const bool isDouble : { false, true }) {
            QTest::addRow("d=%d %s", d, isDouble ? "float64" : "float32") << d << isDouble;
        }
    }
}

constexpr int64_t kBatch = 6;

} // namespace

class TestBuresWasserstein : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        torch::set_num_threads(1);
    }

    void init()
    {
        torch::manual_seed(qEnvironmentVariableIntValue("BW_SEED") + 20240611);
    }

    // --- matrix functions ---------------------------------------------------------------------

    void sqrtmAndInvSqrtm_data() { addDimensionDtypeRows(); }
    void sqrtmAndInvSqrtm()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        const Tolerances& tol = tolFor(dtype);
        const Tensor Sd = rounded(randomSpd(kBatch, d), dtype);
        const Tensor S = Sd.to(dtype);

        const Tensor R = bw::sqrtm(S);
        QCOMPARE(R.scalar_type(), dtype);
        QCOMPARE(R.sizes(), S.sizes());
        QCOMPARE(asymmetry(R), 0.0);
        VERIFY_CLOSE(torch::matmul(R.to(kF64), R.to(kF64)), Sd, tol.matrix);
        QVERIFY(minRelativeEigenvalue(R) >= 0.0);

        const Tensor Ri = bw::invSqrtm(S);
        QCOMPARE(asymmetry(Ri), 0.0);
        const Tensor Rid = Ri.to(kF64);
        VERIFY_CLOSE(torch::matmul(torch::matmul(Rid, Sd), Rid), eyeLike(Sd).expand_as(Sd),
            tol.matrix * 10);
        VERIFY_CLOSE(torch::matmul(Rid, R.to(kF64)), eyeLike(Sd).expand_as(Sd), tol.matrix * 10);

        // Unbatched in, unbatched out.
        const Tensor R0 = bw::sqrtm(S[0]);
        QCOMPARE(R0.dim(), 2);
        VERIFY_CLOSE(R0, R[0], tol.matrix);
    }

    void sqrtmClipsAndInvSqrtmFloors()
    {
        const Tensor Q = randomOrthogonal(1, 3)[0];
        auto rotate = [&](std::vector<double> l) {
            const Tensor L = torch::tensor(l, kF64);
            return torch::matmul(Q * L.unsqueeze(0), Q.t());
        };
        // Indefinite input: the negative eigenvalue is clipped at 0, or at minEigenvalue.
        VERIFY_CLOSE(bw::sqrtm(rotate({ 4.0, -1.0, 0.25 })), rotate({ 2.0, 0.0, 0.5 }), 1e-12);
        VERIFY_CLOSE(bw::sqrtm(rotate({ 4.0, -1.0, 0.25 }), 0.09), rotate({ 2.0, 0.3, 0.5 }), 1e-12);
        // Singular input: the floor replaces the zero eigenvalue (1e-12 -> 1e6 by default).
        const Tensor Ri = bw::invSqrtm(rotate({ 4.0, 0.0, 0.25 }));
        QVERIFY(allFinite(Ri));
        const double largest = at::linalg_eigvalsh(Ri, "L").max().item<double>();
        QVERIFY2(std::abs(largest / 1e6 - 1.0) < 1e-9, qPrintable(QString::number(largest)));
        VERIFY_CLOSE(bw::invSqrtm(rotate({ 4.0, 0.0, 0.25 }), 1e-4), rotate({ 0.5, 100.0, 2.0 }),
            1e-12);
        // A non-symmetric input is symmetrised first.
        const Tensor S = rotate({ 1.0, 2.0, 3.0 });
        const Tensor skew = torch::tensor({ 0.0, 0.1, 0.0, -0.1, 0.0, 0.2, 0.0, -0.2, 0.0 }, kF64)
                                .view({ 3, 3 });
        VERIFY_CLOSE(bw::sqrtm(S + skew), bw::sqrtm(S), 1e-12);
        // 1 x 1 and diagonal inputs with repeated eigenvalues.
        VERIFY_CLOSE(bw::sqrtm(torch::full({ 1, 1 }, 9.0, kF64)), torch::full({ 1, 1 }, 3.0, kF64),
            1e-15);
        VERIFY_CLOSE(bw::sqrtm(4.0 * torch::eye(5, kF64)), 2.0 * torch::eye(5, kF64), 1e-14);
    }

    // --- Monge map ----------------------------------------------------------------------------

    void mongeMap_data() { addDimensionDtypeRows(); }
    void mongeMap()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        const Tolerances& tol = tolFor(dtype);
        const Problem p = makeProblem(kBatch, d, dtype);

        const Tensor A = bw::mongeMap(p.S0, p.S1);
        QCOMPARE(A.scalar_type(), dtype);
        QCOMPARE(A.sizes(), p.S0.sizes());
        const Tensor Ad = A.to(kF64);
        // A S0 A = S1 with A symmetric PSD: these determine A uniquely when S0 is nonsingular.
        VERIFY_CLOSE(torch::matmul(torch::matmul(Ad, p.S0d), Ad), p.S1d, tol.matrix);
        QCOMPARE(asymmetry(A), 0.0);
        QVERIFY(minRelativeEigenvalue(A) >= -kPsdTol);
        // The inverse map, and the identity from a Gaussian to itself.
        const Tensor Ainv = bw::mongeMap(p.S1, p.S0).to(kF64);
        VERIFY_CLOSE(torch::matmul(Ad, Ainv), eyeLike(Ad).expand_as(Ad), tol.matrix * 10);
        VERIFY_CLOSE(bw::mongeMap(p.S0, p.S0), eyeLike(Ad).expand_as(Ad), tol.matrix);
        // Scaling: N(0, S) -> N(0, c^2 S) is x -> c x.
        VERIFY_CLOSE(bw::mongeMap(p.S0d, 6.25 * p.S0d), 2.5 * eyeLike(Ad).expand_as(Ad),
            kTolFloat64.matrix);
    }

    // --- closed forms -------------------------------------------------------------------------

    void closedFormOneDimensional_data()
    {
        QTest::addColumn<bool>("isDouble");
        QTest::addRow("float32") << false;
        QTest::addRow("float64") << true;
    }
    void closedFormOneDimensional()
    {
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        const Tolerances& tol = tolFor(dtype);
        const int64_t M = 10;
        const Tensor m0 = rounded(3.0 * torch::randn({ M, 1 }, kF64), dtype);
        const Tensor m1 = rounded(3.0 * torch::randn({ M, 1 }, kF64), dtype);
        const Tensor s0 = 0.2 + 2.0 * torch::rand({ M }, kF64);
        const Tensor s1 = 0.2 + 2.0 * torch::rand({ M }, kF64);
        const Tensor v0 = rounded(s0 * s0, dtype), v1 = rounded(s1 * s1, dtype);
        const Tensor sd0 = v0.sqrt(), sd1 = v1.sqrt(); // standard deviations of the rounded inputs
        const Tensor S0 = v0.view({ M, 1, 1 }).to(dtype), S1 = v1.view({ M, 1, 1 }).to(dtype);

        const Tensor want = (m0 - m1).squeeze(1).square() + (sd0 - sd1).square();
        VERIFY_CLOSE(bw::distanceSquared(m0.to(dtype), S0, m1.to(dtype), S1), want, tol.distance);
        VERIFY_CLOSE(bw::distance(m0.to(dtype), S0, m1.to(dtype), S1), want.sqrt(), tol.distance);
        VERIFY_CLOSE(bw::mongeMap(S0, S1).view({ M }), sd1 / sd0, tol.matrix);

        for (const double t : { 0.0, 0.3, 0.7, 1.0 }) {
            const bw::Geodesic g = bw::geodesic(m0.to(dtype), S0, m1.to(dtype), S1, t);
            const Tensor st = (1.0 - t) * sd0 + t * sd1;
            VERIFY_CLOSE(g.mean, (1.0 - t) * m0 + t * m1, tol.matrix);
            VERIFY_CLOSE(g.cov.view({ M }), st.square(), tol.matrix);
            const bw::Velocity v = bw::velocity(m0.to(dtype), S0, m1.to(dtype), S1, t);
            VERIFY_CLOSE(v.dm, m1 - m0, tol.matrix);
            VERIFY_CLOSE(v.W.view({ M }), (sd1 - sd0) / st, tol.matrix * 10);
        }
    }

    void closedFormCommuting_data() { addDimensionDtypeRows(); }
    void closedFormCommuting()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        const Tolerances& tol = tolFor(dtype);
        const int64_t M = kBatch;
        const Tensor m0 = rounded(torch::randn({ M, d }, kF64), dtype);
        const Tensor m1 = rounded(torch::randn({ M, d }, kF64), dtype);
        const Tensor l0 = 0.1 + 3.0 * torch::rand({ M, d }, kF64);
        const Tensor l1 = 0.1 + 3.0 * torch::rand({ M, d }, kF64);

        // Simultaneously diagonal: W2^2 = |dm|^2 + sum (sqrt l0 - sqrt l1)^2, A = diag sqrt(l1/l0).
        {
            const Tensor a = rounded(l0, dtype), b = rounded(l1, dtype);
            const Tensor S0 = torch::diag_embed(a).to(dtype), S1 = torch::diag_embed(b).to(dtype);
            const Tensor want
                = (m0 - m1).square().sum(-1) + (a.sqrt() - b.sqrt()).square().sum(-1);
            VERIFY_CLOSE(bw::distanceSquared(m0.to(dtype), S0, m1.to(dtype), S1), want,
                tol.distance * 10);
            VERIFY_CLOSE(
                bw::mongeMap(S0, S1), torch::diag_embed((b / a).sqrt()), tol.matrix * 10);
        }
        // The same pairs rotated by a common random rotation: same distance, A = Q diag Q^T.
        {
            const Tensor Q = randomOrthogonal(M, d);
            const Tensor Qt = Q.transpose(-1, -2);
            const Tensor S0d = rounded(sym(torch::matmul(Q * l0.unsqueeze(-2), Qt)), dtype);
            const Tensor S1d = rounded(sym(torch::matmul(Q * l1.unsqueeze(-2), Qt)), dtype);
            // Rounding to float32 perturbs the spectra; the truth uses the float64 spectra, so
            // allow for that perturbation (a few float32 ulps of the entries) in float32.
            const double extra = dtype == torch::kFloat32 ? 1e-6 : 0.0;
            const Tensor want
                = (m0 - m1).square().sum(-1) + (l0.sqrt() - l1.sqrt()).square().sum(-1);
            VERIFY_CLOSE(bw::distanceSquared(m0.to(dtype), S0d.to(dtype), m1.to(dtype),
                             S1d.to(dtype)),
                want, tol.distance * 10 + extra);
            const Tensor Awant = sym(torch::matmul(Q * (l1 / l0).sqrt().unsqueeze(-2), Qt));
            VERIFY_CLOSE(bw::mongeMap(S0d.to(dtype), S1d.to(dtype)), Awant,
                tol.matrix * 10 + extra);
        }
    }

    void distanceEqualsMongeCost_data() { addDimensionDtypeRows(); }
    void distanceEqualsMongeCost()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        const Tolerances& tol = tolFor(dtype);
        const Problem p = makeProblem(kBatch, d, dtype);

        const Tensor d2 = bw::distanceSquared(p.m0, p.S0, p.m1, p.S1);
        QCOMPARE(d2.scalar_type(), dtype);
        QCOMPARE(d2.sizes(), (std::vector<int64_t> { kBatch }));
        // E|A x + b - x|^2 under N(m0,S0) with b = m1 - A m0, in closed form.
        const Tensor A = bw::mongeMap(p.S0d, p.S1d);
        const Tensor AmI = A - eyeLike(A);
        const Tensor cost = batchTrace(torch::matmul(torch::matmul(AmI, p.S0d), AmI))
            + (p.m1d - p.m0d).square().sum(-1);
        VERIFY_CLOSE(d2, cost, tol.distance * 10);
        // Symmetric in its arguments, zero on the diagonal, distance = sqrt.
        VERIFY_CLOSE(bw::distanceSquared(p.m1, p.S1, p.m0, p.S0), d2, tol.distance * 10);
        VERIFY_CLOSE(bw::distanceSquared(p.m0, p.S0, p.m0, p.S0), torch::zeros({ kBatch }, kF64),
            tol.distance * 10);
        VERIFY_CLOSE(bw::distance(p.m0, p.S0, p.m1, p.S1), d2.to(kF64).sqrt(), tol.distance * 10);
        // Translation alone moves the distance by |dm|^2.
        VERIFY_CLOSE(bw::distanceSquared(p.m0, p.S0, p.m1, p.S0), (p.m1d - p.m0d).square().sum(-1),
            tol.distance * 10);
    }

    // --- geodesic and velocity ----------------------------------------------------------------

    void geodesicEndpointsAndPsd_data() { addDimensionDtypeRows(); }
    void geodesicEndpointsAndPsd()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        const Tolerances& tol = tolFor(dtype);
        const Problem p = makeProblem(kBatch, d, dtype);

        const bw::Geodesic g0 = bw::geodesic(p.m0, p.S0, p.m1, p.S1, 0.0);
        const bw::Geodesic g1 = bw::geodesic(p.m0, p.S0, p.m1, p.S1, 1.0);
        QCOMPARE(g0.cov.scalar_type(), dtype);
        VERIFY_CLOSE(g0.mean, p.m0d, tol.matrix);
        VERIFY_CLOSE(g0.cov, p.S0d, tol.matrix);
        VERIFY_CLOSE(g1.mean, p.m1d, tol.matrix);
        VERIFY_CLOSE(g1.cov, p.S1d, tol.matrix);
        const Tensor A = bw::mongeMap(p.S0, p.S1);
        for (int k = 0; k <= 10; ++k) {
            const double t = k / 10.0;
            const bw::Geodesic g = bw::geodesic(p.m0, p.S0, p.m1, p.S1, t);
            QCOMPARE(asymmetry(g.cov), 0.0);
            QVERIFY2(minRelativeEigenvalue(g.cov) >= -kPsdTol, qPrintable(QString::number(t)));
            // The precomputed-map variant gives the same curve (a Monge map exists here).
            const Tensor tt = torch::full({ kBatch }, t, dtype);
            const bw::Geodesic gm = bw::geodesicFromMap(p.m0, p.S0, p.m1, A, tt);
            VERIFY_CLOSE(gm.mean, g.mean, tol.matrix);
            VERIFY_CLOSE(gm.cov, g.cov, tol.matrix * 10);
        }
        // Per-Gaussian times equal the scalar calls.
        const Tensor ts = torch::linspace(0.0, 1.0, kBatch, kF64);
        const bw::Geodesic gt = bw::geodesic(p.m0, p.S0, p.m1, p.S1, ts);
        for (int64_t i = 0; i < kBatch; ++i) {
            const bw::Geodesic gi = bw::geodesic(p.m0, p.S0, p.m1, p.S1, ts[i].item<double>());
            VERIFY_CLOSE(gt.mean[i], gi.mean[i], tol.matrix);
            VERIFY_CLOSE(gt.cov[i], gi.cov[i], tol.matrix);
        }
    }

    void velocityMatchesFiniteDifference_data() { addDimensionDtypeRows(); }
    void velocityMatchesFiniteDifference()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        const Tolerances& tol = tolFor(dtype);
        const Problem p = makeProblem(kBatch, d, dtype);
        const Tensor A = bw::mongeMap(p.S0d, p.S1d);
        const Tensor I = eyeLike(A);

        for (const double t : { 0.1, 0.5, 0.9 }) {
            const double h = tol.fdStep;
            const bw::Geodesic gp = bw::geodesic(p.m0, p.S0, p.m1, p.S1, t + h);
            const bw::Geodesic gm = bw::geodesic(p.m0, p.S0, p.m1, p.S1, t - h);
            const bw::Geodesic g = bw::geodesic(p.m0, p.S0, p.m1, p.S1, t);
            const bw::Velocity v = bw::velocity(p.m0, p.S0, p.m1, p.S1, t);
            QCOMPARE(v.W.scalar_type(), dtype);
            QCOMPARE(asymmetry(v.W), 0.0);
            const Tensor dS = (gp.cov.to(kF64) - gm.cov.to(kF64)) / (2.0 * h);
            const Tensor dm = (gp.mean.to(kF64) - gm.mean.to(kF64)) / (2.0 * h);
            const Tensor W = v.W.to(kF64), St = g.cov.to(kF64);
            VERIFY_CLOSE(v.dm, p.m1d - p.m0d, tol.matrix);
            VERIFY_CLOSE(dm, v.dm, tol.fd);
            VERIFY_CLOSE(torch::matmul(W, St) + torch::matmul(St, W), dS, tol.fd);
            // The explicit formula W_t = (A - I) M_t^(-1) with a general inverse.
            const Tensor Wref = torch::matmul(A - I, at::linalg_inv((1.0 - t) * I + t * A));
            VERIFY_CLOSE(v.W, Wref, tol.matrix * 100);
            // From a precomputed map, with per-Gaussian times.
            const bw::Velocity vm = bw::velocityFromMap(
                p.m0, p.m1, A.to(dtype), torch::full({ kBatch }, t, kF64));
            VERIFY_CLOSE(vm.W, v.W, tol.matrix * 100);
            VERIFY_CLOSE(vm.dm, v.dm, tol.matrix);
        }
        // Endpoints: W_0 = A - I, and at t = 1 (A nonsingular) W_1 = I - A^(-1).
        VERIFY_CLOSE(bw::velocity(p.m0, p.S0, p.m1, p.S1, 0.0).W, A - I, tol.matrix * 10);
        VERIFY_CLOSE(
            bw::velocity(p.m0, p.S0, p.m1, p.S1, 1.0).W, I - at::linalg_inv(A), tol.matrix * 100);
    }

    void geodesicProperty_data() { addDimensionDtypeRows(); }
    void geodesicProperty()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        // W2 itself (not squared) of order 1: the float32 error of W2^2 over 2 W2.
        const double tol = dtype == torch::kFloat32 ? 2e-6 : 1e-11;
        const Problem p = makeProblem(kBatch, d, dtype);
        const Tensor w = bw::distance(p.m0, p.S0, p.m1, p.S1).to(kF64);
        for (const double t : { 0.25, 0.5, 0.8 }) {
            const bw::Geodesic g = bw::geodesic(p.m0, p.S0, p.m1, p.S1, t);
            VERIFY_CLOSE(bw::distance(p.m0, p.S0, g.mean, g.cov), t * w, tol);
            VERIFY_CLOSE(bw::distance(g.mean, g.cov, p.m1, p.S1), (1.0 - t) * w, tol);
        }
    }

    // --- singular covariances -----------------------------------------------------------------

    void singularCovariances_data()
    {
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("rank0");
        QTest::addColumn<int>("rank1");
        for (const int d : { 1, 3, 5 }) {
            QTest::addRow("d=%d S0 rank %d", d, d - 1) << d << d - 1 << d;
            QTest::addRow("d=%d S1 rank %d", d, d - 1) << d << d << d - 1;
            if (d > 1) {
                QTest::addRow("d=%d both rank %d", d, d - 1) << d << d - 1 << d - 1;
                QTest::addRow("d=%d ranks 1 and %d", d, d - 2) << d << 1 << d - 2;
            }
        }
    }
    void singularCovariances()
    {
        QFETCH(int, d);
        QFETCH(int, rank0);
        QFETCH(int, rank1);
        const int64_t M = 4;
        const Tensor m0 = torch::randn({ M, d }, kF64), m1 = torch::randn({ M, d }, kF64);
        const Tensor S0 = rank0 == d ? randomSpd(M, d) : randomPsdRank(M, d, rank0);
        const Tensor S1 = rank1 == d ? randomSpd(M, d) : randomPsdRank(M, d, rank1);

        const Tensor A = bw::mongeMap(S0, S1);
        const Tensor d2 = bw::distanceSquared(m0, S0, m1, S1);
        QVERIFY(allFinite(A));
        QVERIFY(allFinite(d2));
        QCOMPARE(asymmetry(A), 0.0);
        QVERIFY(minRelativeEigenvalue(A) >= -kPsdTol);
        // tr(S0 A) = tr (S1^1/2 S0 S1^1/2)^1/2: the cross term of the coupling y = A x + ... + xi.
        const Tensor crossCost = batchTrace(S0) + batchTrace(S1)
            - 2.0 * batchTrace(torch::matmul(S0, A)) + (m1 - m0).square().sum(-1);
        VERIFY_CLOSE(d2, crossCost, kSingularTol);
        if (rank0 == d) {
            // Nonsingular source: A is a Monge map also onto a singular target.
            VERIFY_CLOSE(torch::matmul(torch::matmul(A, S0), A), S1, kSingularTol);
        }
        if (rank0 == d && rank1 < d) {
            // At t = 1, M_1 = A is singular on the null space N of S1: the pseudo-inverse gives
            // W_1 N = 0 there (documented) instead of the diverging -N / (1 - t).
            const Tensor N = std::get<1>(at::linalg_eigh(S1, "L")).narrow(-1, 0, d - rank1);
            const Tensor W1 = bw::velocity(m0, S0, m1, S1, 1.0).W;
            VERIFY_CLOSE(torch::matmul(W1, N), torch::zeros_like(N), kSingularTol);
        }

        // The geodesic hits both ends, stays PSD, and is a geodesic. Compared in squares: W2 of
        // nearby singular Gaussians carries the square root of the round-off of W2^2.
        for (const double t : { 0.0, 0.25, 0.5, 0.75, 1.0 }) {
            const bw::Geodesic g = bw::geodesic(m0, S0, m1, S1, t);
            QVERIFY(allFinite(g.cov));
            QCOMPARE(asymmetry(g.cov), 0.0);
            QVERIFY(minRelativeEigenvalue(g.cov) >= -kPsdTol);
            if (t == 0.0) {
                VERIFY_CLOSE(g.cov, S0, kSingularTol);
            }
            if (t == 1.0) {
                VERIFY_CLOSE(g.cov, S1, kSingularTol);
            }
            VERIFY_CLOSE(bw::distanceSquared(m0, S0, g.mean, g.cov), t * t * d2, kSingularTol);
            VERIFY_CLOSE(
                bw::distanceSquared(g.mean, g.cov, m1, S1), (1.0 - t) * (1.0 - t) * d2, kSingularTol);
            const bw::Velocity v = bw::velocity(m0, S0, m1, S1, t);
            QVERIFY2(allFinite(v.W), qPrintable(QString::number(t)));
            QCOMPARE(asymmetry(v.W), 0.0);
        }
        // Inside (0,1) the velocity still matches the finite difference of the geodesic.
        for (const double t : { 0.3, 0.6 }) {
            const double h = 1e-3;
            const Tensor dS = (bw::geodesic(m0, S0, m1, S1, t + h).cov
                                  - bw::geodesic(m0, S0, m1, S1, t - h).cov)
                / (2.0 * h);
            const Tensor St = bw::geodesic(m0, S0, m1, S1, t).cov;
            const Tensor W = bw::velocity(m0, S0, m1, S1, t).W;
            VERIFY_CLOSE(torch::matmul(W, St) + torch::matmul(St, W), dS, kSingularTol);
        }
        // float32 inputs: finite results too.
        const auto f = torch::kFloat32;
        QVERIFY(allFinite(bw::mongeMap(S0.to(f), S1.to(f))));
        QVERIFY(allFinite(bw::distanceSquared(m0.to(f), S0.to(f), m1.to(f), S1.to(f))));
        for (const double t : { 0.0, 0.5, 1.0 }) {
            QVERIFY(allFinite(bw::velocity(m0.to(f), S0.to(f), m1.to(f), S1.to(f), t).W));
            QVERIFY(allFinite(bw::geodesic(m0.to(f), S0.to(f), m1.to(f), S1.to(f), t).cov));
        }
    }

    void singularCommuting()
    {
        // Simultaneously diagonal with zeros in each: W2^2 = |dm|^2 + sum (sqrt l0 - sqrt l1)^2.
        for (const bool rotate : { false, true }) {
            const Tensor l0 = torch::tensor({ 2.0, 0.0, 1.5, 0.0, 0.7 }, kF64);
            const Tensor l1 = torch::tensor({ 0.0, 3.0, 0.5, 0.0, 0.7 }, kF64);
            const Tensor Q = rotate ? randomOrthogonal(1, 5)[0] : torch::eye(5, kF64);
            const Tensor S0 = sym(torch::matmul(Q * l0.unsqueeze(0), Q.t()));
            const Tensor S1 = sym(torch::matmul(Q * l1.unsqueeze(0), Q.t()));
            const Tensor m0 = torch::tensor({ 1.0, 0.0, -1.0, 2.0, 0.5 }, kF64);
            const Tensor m1 = torch::tensor({ 0.0, 0.5, -1.0, 1.0, 0.5 }, kF64);
            const double want
                = (m0 - m1).square().sum().item<double>() + (l0.sqrt() - l1.sqrt()).square().sum().item<double>();
            const Tensor d2 = bw::distanceSquared(m0, S0, m1, S1);
            QCOMPARE(d2.dim(), 0);
            QVERIFY2(std::abs(d2.item<double>() - want) < kSingularTol,
                qPrintable(QString("%1 vs %2").arg(d2.item<double>()).arg(want)));
            // Both ends of the geodesic are hit although neither covariance is invertible.
            VERIFY_CLOSE(bw::geodesic(m0, S0, m1, S1, 1.0).cov, S1, kSingularTol);
            VERIFY_CLOSE(bw::geodesic(m0, S0, m1, S1, 0.0).cov, S0, kSingularTol);
            // On the common support the map is diag sqrt(l1/l0).
            const Tensor A = bw::mongeMap(S0, S1);
            const Tensor e2 = Q.select(1, 2), e4 = Q.select(1, 4);
            QVERIFY(std::abs(torch::dot(e2, torch::mv(A, e2)).item<double>() - std::sqrt(1.0 / 3.0))
                < kSingularTol);
            QVERIFY(std::abs(torch::dot(e4, torch::mv(A, e4)).item<double>() - 1.0) < kSingularTol);
            // Zero source: point mass to a Gaussian, S_t = t^2 S1 and W2^2 = tr S1 = 4.2.
            const Tensor Z = torch::zeros({ 5, 5 }, kF64);
            VERIFY_CLOSE(bw::geodesic(m0, Z, m1, S1, 0.4).cov, 0.16 * S1, kSingularTol);
            QVERIFY(std::abs(bw::distanceSquared(m0, Z, m0, S1).item<double>() - 4.2)
                < kSingularTol);
            // Its velocity: S_t = t^2 S1 needs W_t = I / t on the support of S1.
            const Tensor W = bw::velocity(m0, Z, m1, S1, 0.4).W;
            VERIFY_CLOSE(torch::matmul(W, S1), S1 / 0.4, kSingularTol);
        }
    }

    // --- batching -----------------------------------------------------------------------------

    void batchedEqualsOneByOne_data() { addDimensionDtypeRows(); }
    void batchedEqualsOneByOne()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        const Tolerances& tol = tolFor(dtype);
        Problem p = makeProblem(kBatch, d, dtype);
        // One singular source in the batch (the Lyapunov branch of velocity()) next to regular ones.
        p.S0d[2] = rounded(randomPsdRank(1, d, d - 1)[0], dtype);
        p.S0 = p.S0d.to(dtype);
        const Tensor ts = torch::tensor({ 0.0, 0.2, 0.5, 0.7, 0.95, 1.0 }, kF64);

        const Tensor d2 = bw::distanceSquared(p.m0, p.S0, p.m1, p.S1);
        const Tensor A = bw::mongeMap(p.S0, p.S1);
        const bw::Geodesic g = bw::geodesic(p.m0, p.S0, p.m1, p.S1, ts);
        const bw::Velocity v = bw::velocity(p.m0, p.S0, p.m1, p.S1, ts);
        for (int64_t i = 0; i < kBatch; ++i) {
            const double t = ts[i].item<double>();
            const Tensor di = bw::distanceSquared(p.m0[i], p.S0[i], p.m1[i], p.S1[i]);
            QCOMPARE(di.dim(), 0);
            VERIFY_CLOSE(d2[i], di, tol.distance);
            VERIFY_CLOSE(A[i], bw::mongeMap(p.S0[i], p.S1[i]), tol.matrix);
            const bw::Geodesic gi = bw::geodesic(p.m0[i], p.S0[i], p.m1[i], p.S1[i], t);
            QCOMPARE(gi.cov.dim(), 2);
            VERIFY_CLOSE(g.mean[i], gi.mean, tol.matrix);
            VERIFY_CLOSE(g.cov[i], gi.cov, tol.matrix);
            const bw::Velocity vi = bw::velocity(p.m0[i], p.S0[i], p.m1[i], p.S1[i], t);
            QCOMPARE(vi.W.dim(), 2);
            VERIFY_CLOSE(v.dm[i], vi.dm, tol.matrix);
            VERIFY_CLOSE(v.W[i], vi.W, tol.matrix);
        }
        // A shared unbatched source broadcasts against a batch of targets.
        const Tensor shared = bw::distanceSquared(p.m0[0], p.S0[0], p.m1, p.S1);
        QCOMPARE(shared.sizes(), (std::vector<int64_t> { kBatch }));
        for (int64_t i = 0; i < kBatch; ++i) {
            VERIFY_CLOSE(shared[i], bw::distanceSquared(p.m0[0], p.S0[0], p.m1[i], p.S1[i]),
                tol.distance);
        }
        // An unbatched problem with a batch of times gives a batch along the curve.
        const bw::Geodesic along = bw::geodesic(p.m0[1], p.S0[1], p.m1[1], p.S1[1], ts);
        QCOMPARE(along.cov.sizes(), (std::vector<int64_t> { kBatch, d, d }));
        VERIFY_CLOSE(along.cov[3], bw::geodesic(p.m0[1], p.S0[1], p.m1[1], p.S1[1], 0.7).cov,
            tol.matrix);
    }

    void pairwiseEqualsLoop_data() { addDimensionDtypeRows(); }
    void pairwiseEqualsLoop()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        const auto dtype = dtypeOf(isDouble);
        const Tolerances& tol = tolFor(dtype);
        const int64_t P = 5, Q = 4;
        const Problem a = makeProblem(P, d, dtype);
        const Problem b = makeProblem(Q, d, dtype);
        const Tensor D = bw::pairwiseDistanceSquared(a.m0, a.S0, b.m1, b.S1);
        QCOMPARE(D.scalar_type(), dtype);
        QCOMPARE(D.sizes(), (std::vector<int64_t> { P, Q }));
        for (int64_t i = 0; i < P; ++i) {
            for (int64_t j = 0; j < Q; ++j) {
                VERIFY_CLOSE(D[i][j], bw::distanceSquared(a.m0[i], a.S0[i], b.m1[j], b.S1[j]),
                    tol.distance);
            }
        }
        // Unbatched sides are squeezed.
        const Tensor row = bw::pairwiseDistanceSquared(a.m0[2], a.S0[2], b.m1, b.S1);
        QCOMPARE(row.sizes(), (std::vector<int64_t> { Q }));
        VERIFY_CLOSE(row, D[2], tol.distance);
        const Tensor col = bw::pairwiseDistanceSquared(a.m0, a.S0, b.m1[1], b.S1[1]);
        QCOMPARE(col.sizes(), (std::vector<int64_t> { P }));
        VERIFY_CLOSE(col, D.select(1, 1), tol.distance);
    }

    void pairwiseInBlocks()
    {
        // Large enough (P Q d^2 > 2^22) that the pairs are processed in several blocks.
        const int64_t P = 300, Q = 64, d = 16;
        const Tensor m0 = torch::randn({ P, d }, kF64), m1 = torch::randn({ Q, d }, kF64);
        const Tensor S0 = randomSpd(P, d), S1 = randomSpd(Q, d);
        const Tensor D = bw::pairwiseDistanceSquared(m0, S0, m1, S1);
        QCOMPARE(D.sizes(), (std::vector<int64_t> { P, Q }));
        const Tensor rows = torch::randint(P, { 24 }, torch::kLong);
        const Tensor cols = torch::randint(Q, { 24 }, torch::kLong);
        const Tensor want = bw::distanceSquared(
            m0.index_select(0, rows), S0.index_select(0, rows), m1.index_select(0, cols),
            S1.index_select(0, cols));
        VERIFY_CLOSE(D.index({ rows, cols }), want, kTolFloat64.distance);
        VERIFY_CLOSE(D[P - 1], bw::distanceSquared(m0[P - 1], S0[P - 1], m1, S1),
            kTolFloat64.distance);
    }

    // --- robustness ---------------------------------------------------------------------------

    void highDimension_data()
    {
        QTest::addColumn<int>("d");
        QTest::addColumn<bool>("isDouble");
        QTest::addColumn<double>("conditionNumber");
        QTest::addColumn<double>("tolerance");
        // Measured: 8e-12, 1.5e-7 and 7e-14.
        QTest::addRow("d=16 float64 cond 1e6") << 16 << true << 1e6 << 1e-9;
        QTest::addRow("d=16 float32 cond 1e2") << 16 << false << 1e2 << 3e-6;
        QTest::addRow("d=24 float64 cond 1e3") << 24 << true << 1e3 << 1e-11;
    }
    void highDimension()
    {
        QFETCH(int, d);
        QFETCH(bool, isDouble);
        QFETCH(double, conditionNumber);
        QFETCH(double, tolerance);
        const auto dtype = dtypeOf(isDouble);
        const int64_t M = 3;
        // Log-uniform spectrum from 1/cond to 1.
        const Tensor Q = randomOrthogonal(M, d);
        const Tensor l = torch::pow(conditionNumber, -torch::rand({ M, d }, kF64));
        const Tensor S0d = rounded(sym(torch::matmul(Q * l.unsqueeze(-2), Q.transpose(-1, -2))), dtype);
        const Tensor S1d = rounded(randomSpd(M, d), dtype);
        const Tensor m = torch::zeros({ M, d }, dtype);
        const Tensor A = bw::mongeMap(S0d.to(dtype), S1d.to(dtype)).to(kF64);
        QVERIFY(allFinite(A));
        VERIFY_CLOSE(torch::matmul(torch::matmul(A, S0d), A), S1d, tolerance);
        const bw::Velocity v = bw::velocity(m, S0d.to(dtype), m, S1d.to(dtype), 0.5);
        QVERIFY(allFinite(v.W));
        const Tensor I = eyeLike(A);
        VERIFY_CLOSE(v.W, torch::matmul(A - I, at::linalg_inv(0.5 * (I + A))), tolerance * 10);
        // Identity covariances (all eigenvalues repeated): A = I, W = 0, distance = |dm|^2.
        const Tensor Id = torch::eye(d, dtype).expand({ M, d, d });
        VERIFY_CLOSE(bw::mongeMap(Id, Id), Id, tolFor(dtype).matrix);
        VERIFY_CLOSE(bw::velocity(m, Id, m, Id, 0.3).W, torch::zeros({ M, d, d }, kF64),
            tolFor(dtype).matrix);
    }

    // --- validation and argument errors -------------------------------------------------------

    void validateCovarianceRejects_data()
    {
        QTest::addColumn<Tensor>("S");
        QTest::addColumn<QString>("expected");
        torch::manual_seed(7);
        const Tensor good = randomSpd(4, 3);
        auto withBad = [&](int64_t i, const Tensor& bad) {
            Tensor S = good.clone();
            S[i] = bad;
            return S;
        };
        Tensor nonsym = good[0].clone();
        nonsym[0][1] += 0.1;
        QTest::addRow("non-symmetric") << withBad(2, nonsym) << QStringLiteral("cov[2] is not symmetric");
        const Tensor indefinite = torch::diag(torch::tensor({ 1.0, -0.5, 2.0 }, kF64));
        QTest::addRow("indefinite") << withBad(1, indefinite)
                                    << QStringLiteral("cov[1] is not positive semi-definite");
        Tensor nan = good[3].clone();
        nan[1][1] = std::nan("");
        QTest::addRow("NaN") << withBad(3, nan) << QStringLiteral("cov[3] has non-finite");
        Tensor inf = good[0].clone();
        inf[2][0] = INFINITY;
        QTest::addRow("inf") << withBad(0, inf) << QStringLiteral("cov[0] has non-finite");
        QTest::addRow("unbatched indefinite")
            << indefinite << QStringLiteral("cov is not positive semi-definite");
        QTest::addRow("non-square") << torch::ones({ 4, 3, 2 }, kF64) << QStringLiteral("cov must be square");
        QTest::addRow("1-D") << torch::ones({ 3 }, kF64) << QStringLiteral("cov must be a covariance");
        QTest::addRow("4-D") << torch::ones({ 2, 2, 3, 3 }, kF64)
                             << QStringLiteral("cov must be a covariance");
        QTest::addRow("integer") << torch::eye(3, torch::kLong) << QStringLiteral("cov must be float32");
        QTest::addRow("d = 0") << torch::ones({ 2, 0, 0 }, kF64) << QStringLiteral("cov must have d >= 1");
        // Just past the tolerances: relative asymmetry 1e-5, eigenvalue -1e-5 (|max| = 1).
        Tensor slightlyAsym = torch::eye(2, kF64);
        slightlyAsym[0][1] = 1e-5;
        QTest::addRow("asymmetry above tol") << slightlyAsym << QStringLiteral("cov is not symmetric");
        // The symmetry tolerance is relative: 1e-3 of a 1e-8 scale is rejected.
        Tensor smallAsym = 1e-8 * torch::eye(2, kF64);
        smallAsym[0][1] = 1e-11;
        QTest::addRow("relative asymmetry at small scale")
            << smallAsym << QStringLiteral("cov is not symmetric");
        QTest::addRow("eigenvalue below -tol")
            << torch::diag(torch::tensor({ 1.0, -1e-5 }, kF64))
            << QStringLiteral("cov is not positive semi-definite");
    }
    void validateCovarianceRejects()
    {
        QFETCH(Tensor, S);
        QFETCH(QString, expected);
        const QString msg = configErrorOf([&] { bw::validateCovariance(S, "cov"); });
        QVERIFY2(msg.contains(expected), qPrintable(msg));
    }

    void validateCovarianceAccepts()
    {
        const auto ok = [](const Tensor& S) {
            return configErrorOf([&] { bw::validateCovariance(S, "cov"); });
        };
        QCOMPARE(ok(randomSpd(5, 4)), QString());
        QCOMPARE(ok(randomSpd(5, 4).to(torch::kFloat32)), QString());
        QCOMPARE(ok(randomSpd(1, 3)[0]), QString());
        QCOMPARE(ok(randomPsdRank(5, 4, 2)), QString());               // singular PSD
        QCOMPARE(ok(randomPsdRank(5, 8, 3).to(torch::kFloat32)), QString()); // with float32 noise
        QCOMPARE(ok(torch::zeros({ 3, 3 }, kF64)), QString());
        QCOMPARE(ok(torch::diag(torch::tensor({ 1.0, -1e-7 }, kF64))), QString()); // round-off
        QCOMPARE(ok(torch::full({ 1, 1 }, 2.0, kF64)), QString());
        QCOMPARE(ok(torch::zeros({ 0, 3, 3 }, kF64)), QString());
        // A scale of 1e-8 is fine when the matrix is symmetric, and the symmetry tolerance is
        // relative: an asymmetry of 1e-4 in entries of 1e4 (relative 1e-8) passes.
        QCOMPARE(ok(1e-8 * randomSpd(2, 3)), QString());
        Tensor big = 1e4 * randomSpd(1, 3)[0];
        big[0][2] += 1e-4;
        QCOMPARE(ok(big), QString());
    }

    void validateMeans()
    {
        const auto err = [](const Tensor& m, int64_t d) {
            return configErrorOf([&] { bw::validateMeans(m, d, "mu"); });
        };
        QCOMPARE(err(torch::randn({ 4, 3 }, kF64), 3), QString());
        QCOMPARE(err(torch::randn({ 3 }, torch::kFloat32), 3), QString());
        QCOMPARE(err(torch::randn({ 4, 3 }, kF64), -1), QString());
        QVERIFY(err(torch::randn({ 4, 3 }, kF64), 2).contains("mu must have d = 2"));
        QVERIFY(err(torch::randn({ 4, 3, 1 }, kF64), 3).contains("mu must be a mean"));
        QVERIFY(err(torch::ones({ 4, 3 }, torch::kInt), 3).contains("mu must be float32"));
        Tensor m = torch::randn({ 4, 3 }, kF64);
        m[2][1] = std::nan("");
        QVERIFY(err(m, 3).contains("mu[2] has non-finite"));
        QVERIFY(err(m[2], 3).contains("mu has non-finite"));
    }

    void argumentErrors()
    {
        const Tensor m = torch::zeros({ 3, 2 }, kF64), S = torch::eye(2, kF64).expand({ 3, 2, 2 });
        const auto expectError = [](const std::function<void()>& f, const char* needle) {
            const QString msg = configErrorOf(f);
            return msg.contains(QLatin1String(needle)) ? QString() : QStringLiteral("'%1' lacks '%2'").arg(msg, needle);
        };
        QCOMPARE(expectError([&] { bw::distanceSquared(m, S, torch::zeros({ 3, 4 }, kF64), S); },
                     "m1 has shape"),
            QString());
        QCOMPARE(expectError([&] { bw::distanceSquared(m, S, m, torch::eye(3, kF64)); }, "S1"),
            QString());
        QCOMPARE(expectError([&] { bw::distanceSquared(m, S, torch::zeros({ 4, 2 }, kF64), S); },
                     "batch size of m1"),
            QString());
        QCOMPARE(expectError([&] { bw::distanceSquared(m, S, m.to(torch::kFloat32), S); },
                     "m1 is Float"),
            QString());
        QCOMPARE(expectError([&] { bw::mongeMap(torch::ones({ 2, 3 }, kF64), S); }, "S0"),
            QString());
        QCOMPARE(expectError([&] { bw::geodesic(m, S, m, S, 1.5); }, "t must lie in [0, 1]"),
            QString());
        QCOMPARE(expectError([&] { bw::velocity(m, S, m, S, -0.1); }, "t must lie in [0, 1]"),
            QString());
        QCOMPARE(expectError([&] {
            bw::velocity(m, S, m, S, torch::tensor({ 0.5, 1.2, 0.0 }, kF64));
        }, "t must lie in [0, 1]"),
            QString());
        QCOMPARE(expectError([&] {
            bw::geodesic(m, S, m, S, torch::tensor({ 0.5, 0.2 }, kF64));
        }, "batch size of t"),
            QString());
        QCOMPARE(expectError([&] { bw::sqrtm(S, -1.0); }, "minEigenvalue"), QString());
        QCOMPARE(expectError([&] { bw::invSqrtm(S, 0.0); }, "minEigenvalue"), QString());
        QCOMPARE(expectError([&] { bw::sqrtm(torch::ones({ 2, 3 }, kF64)); }, "square"), QString());
        QCOMPARE(expectError([&] {
            bw::pairwiseDistanceSquared(m, S, torch::zeros({ 5, 3 }, kF64),
                torch::eye(3, kF64).expand({ 5, 3, 3 }));
        }, "d = 3"),
            QString());
    }

    void cudaMatchesCpu()
    {
        if (!torch::cuda::is_available()) {
            QSKIP("no CUDA device");
        }
        const Problem p = makeProblem(kBatch, 5, torch::kFloat32);
        const torch::Device cuda(torch::kCUDA);
        const Tensor ts = torch::rand({ kBatch }, kF64);
        const Tensor d2 = bw::distanceSquared(p.m0.to(cuda), p.S0.to(cuda), p.m1.to(cuda), p.S1.to(cuda));
        QVERIFY(d2.is_cuda());
        VERIFY_CLOSE(d2.cpu(), bw::distanceSquared(p.m0, p.S0, p.m1, p.S1), kTolFloat32.distance);
        const bw::Velocity v = bw::velocity(p.m0.to(cuda), p.S0.to(cuda), p.m1.to(cuda), p.S1.to(cuda), ts.to(cuda));
        VERIFY_CLOSE(v.W.cpu(), bw::velocity(p.m0, p.S0, p.m1, p.S1, ts).W, kTolFloat32.matrix);
    }
};

QTEST_GUILESS_MAIN(TestBuresWasserstein)
#include "tst_bureswasserstein.moc"
