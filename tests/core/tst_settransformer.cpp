// The velocity-field network: masked multi-head attention (Chunked against Naive and against a
// reference that only ever sees the live keys, finite differences with dropout), and the set
// transformer (permutation equivariance, padding invariance, initialisation, conditioning,
// classifier-free guidance, options JSON, a small overfitting run, and peak memory).

#include "wfm/Error.h"
#include "wfm/model/Attention.h"
#include "wfm/model/SetTransformer.h"

#include <QtTest>

#include <torch/torch.h>

#include <malloc.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

using namespace wfm::model;

namespace {

constexpr double kTightTol = 1e-11;  // float64, same maths in a different order
constexpr double kFdTol = 1e-6;      // float64 central differences with h = 1e-6
constexpr double kFloatTol = 2e-5;   // float32 re-association

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

double maxAbsDiff(const torch::Tensor& a, const torch::Tensor& b)
{
    return (a - b).abs().max().item<double>();
}

double maxAbs(const torch::Tensor& a)
{
    return a.abs().max().item<double>();
}

/// Key masks [B,N] with the given numbers of live points (live points first).
torch::Tensor prefixMask(int64_t N, std::vector<int64_t> counts)
{
    auto m = torch::zeros({ static_cast<int64_t>(counts.size()), N }, torch::kBool);
    for (size_t b = 0; b < counts.size(); ++b) {
        m[static_cast<int64_t>(b)].narrow(0, 0, counts[b]).fill_(true);
    }
    return m;
}

/// Independent truth: per cloud, attention over the live keys only (gathered, no -inf
/// masking), with an optional scaled dropout mask over the full key axis; a cloud without live
/// keys gives zeros. q, k, v [B,N,H,D]; dropFull [B|1, H|1, N, N] or undefined.
torch::Tensor referenceAttention(const torch::Tensor& q, const torch::Tensor& k,
    const torch::Tensor& v, const torch::Tensor& mask, const torch::Tensor& dropFull = {})
{
    const int64_t B = q.size(0), N = q.size(1), H = q.size(2), D = q.size(3);
    std::vector<torch::Tensor> outs;
    for (int64_t b = 0; b < B; ++b) {
        const auto idx = mask[b].nonzero().reshape({ -1 });
        if (idx.numel() == 0) {
            outs.push_back(torch::zeros({ N, H, D }, q.options()));
            continue;
        }
        const auto qb = q[b].permute({ 1, 0, 2 });                        // [H,N,D]
        const auto kb = k[b].index_select(0, idx).permute({ 1, 0, 2 });   // [H,n,D]
        const auto vb = v[b].index_select(0, idx).permute({ 1, 0, 2 });
        auto a = torch::softmax(torch::matmul(qb, kb.transpose(1, 2)) / std::sqrt(double(D)), -1);
        if (dropFull.defined()) {
            const auto db = dropFull[dropFull.size(0) == 1 ? 0 : b]; // [H|1,N,N]
            a = a * db.index_select(2, idx);
        }
        outs.push_back(torch::matmul(a, vb).permute({ 1, 0, 2 }));
    }
    return torch::stack(outs);
}

struct Qkv
{
    torch::Tensor q, k, v;
};

Qkv randomQkv(int64_t B, int64_t N, int64_t H, int64_t D, uint64_t seed)
{
    torch::manual_seed(seed);
    Qkv r { torch::randn({ B, N, H, D }, kF64), torch::randn({ B, N, H, D }, kF64),
        torch::randn({ B, N, H, D }, kF64) };
    r.q.set_requires_grad(true);
    r.k.set_requires_grad(true);
    r.v.set_requires_grad(true);
    return r;
}

/// Output and gradients of sum(out * w) for one implementation.
struct AttnResult
{
    torch::Tensor out, dq, dk, dv;
};

template <typename F>
AttnResult runAttention(const Qkv& in, const torch::Tensor& w, F&& fn)
{
    const auto out = fn(in.q, in.k, in.v);
    const auto grads = torch::autograd::grad({ (out * w).sum() }, { in.q, in.k, in.v });
    return { out.detach(), grads[0], grads[1], grads[2] };
}

/// A small double-precision model with a non-negligible head (so differences are visible).
SetTransformer smallModel(SetTransformerOptions o, uint64_t seed = 7)
{
    torch::manual_seed(seed);
    SetTransformer m(o);
    m->to(torch::kDouble);
    lecunNormal_(m->head->weight, 1.0);
    return m;
}

SetTransformerOptions smallOptions()
{
    return SetTransformerOptions(3)
        .setWidth(24)
        .setBlocks(2)
        .setHeads(3)
        .setMlpWidth(32)
        .setDropout(0.0)
        .setAttention(AttentionImpl::Chunked)
        .setChunkSize(5);
}

/// Peak resident set since the last clearPeak(), from /proc/self/status (kB -> bytes).
int64_t procStatusBytes(const char* field)
{
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::string key = std::string(field) + ":";
    while (std::getline(in, line)) {
        if (line.rfind(key, 0) == 0) {
            std::istringstream is(line.substr(key.size()));
            int64_t kb = 0;
            is >> kb;
            return kb * 1024;
        }
    }
    return -1;
}

bool clearPeak()
{
    std::ofstream out("/proc/self/clear_refs");
    out << "5"; // resets VmHWM to the current RSS
    out.flush();
    return static_cast<bool>(out);
}

/// Peak RSS growth (bytes) during one forward + backward.
template <typename F>
int64_t peakGrowth(F&& fn)
{
    malloc_trim(0);
    if (!clearPeak()) {
        return -1;
    }
    const int64_t base = procStatusBytes("VmRSS");
    fn();
    return procStatusBytes("VmHWM") - base;
}

} // namespace

class TestSetTransformer : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void chunkedMatchesNaive_data();
    void chunkedMatchesNaive();
    void chunkedDropoutMatchesReference_data();
    void chunkedDropoutMatchesReference();
    void chunkedGradientFiniteDifferences();
    void projectedAttentionMatchesNaive_data();
    void projectedAttentionMatchesNaive();
    void attentionArguments();

    void optionsJsonRoundTrip();
    void parameterCount_data();
    void parameterCount();
    void initialisation();
    void permutationEquivariance();
    void paddingInvariance();
    void fullyPaddedCloud();
    void modelChunkedMatchesNaive();
    void modelGradientFiniteDifferences();
    void labelConditioning();
    void continuousConditioning();
    void guidance();
    void cloneIsIndependent();
    void invalidArguments();
    void overfitsFixedTarget();
    void chunkedUsesLessMemory();
    void stepCost();
};

void TestSetTransformer::initTestCase()
{
    // Large blocks go straight to mmap and back to the system on free, so RSS follows the live
    // heap and the peak-memory comparisons measure the tensors, not allocator caching.
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

// --- attention ----------------------------------------------------------------------------------

void TestSetTransformer::chunkedMatchesNaive_data()
{
    QTest::addColumn<qint64>("chunk");
    QTest::newRow("chunk 1") << qint64(1);
    QTest::newRow("chunk 5 (non-divisor)") << qint64(5);
    QTest::newRow("chunk 16 (non-divisor)") << qint64(16);
    QTest::newRow("chunk 37 (= N)") << qint64(37);
    QTest::newRow("chunk 64 (> N)") << qint64(64);
    QTest::newRow("chunk auto") << qint64(0);
}

void TestSetTransformer::chunkedMatchesNaive()
{
    QFETCH(qint64, chunk);
    const int64_t B = 4, N = 37, H = 3, D = 4;
    const auto in = randomQkv(B, N, H, D, 11);
    const auto mask = prefixMask(N, { 37, 20, 1, 0 }); // full, partial, single key, no key
    // Scatter the live points: a permutation of the second cloud's mask.
    mask[1] = mask[1].index_select(0, torch::randperm(N));
    const auto w = torch::randn({ B, N, H, D }, kF64);

    const auto ref = runAttention(in, w, [&](auto q, auto k, auto v) {
        return referenceAttention(q, k, v, mask);
    });
    const auto naive = runAttention(in, w, [&](auto q, auto k, auto v) {
        return multiHeadAttention(q, k, v, mask, AttentionOptions().setImpl(AttentionImpl::Naive));
    });
    const auto chunked = runAttention(in, w, [&](auto q, auto k, auto v) {
        return multiHeadAttention(q, k, v, mask,
            AttentionOptions().setImpl(AttentionImpl::Chunked).setChunkSize(chunk));
    });
    for (const auto* r : { &naive, &chunked }) {
        QVERIFY(maxAbsDiff(r->out, ref.out) < kTightTol);
        QVERIFY(maxAbsDiff(r->dq, ref.dq) < kTightTol);
        QVERIFY(maxAbsDiff(r->dk, ref.dk) < kTightTol);
        QVERIFY(maxAbsDiff(r->dv, ref.dv) < kTightTol);
    }
    // The key-less cloud: zeros, and no gradient at all.
    QCOMPARE(maxAbs(chunked.out[3]), 0.0);
    QCOMPARE(maxAbs(chunked.dq[3]) + maxAbs(chunked.dk[3]) + maxAbs(chunked.dv[3]), 0.0);
    // Padded keys have no influence: zero gradient w.r.t. their k and v.
    QCOMPARE(maxAbs(chunked.dk[2].narrow(0, 1, N - 1)), 0.0);
    QCOMPARE(maxAbs(chunked.dv[2].narrow(0, 1, N - 1)), 0.0);
    QVERIFY(maxAbs(chunked.dv[2][0]) > 0.0);

    // Without a mask: every key live.
    const auto all = torch::ones({ B, N }, torch::kBool);
    const auto refAll = runAttention(in, w, [&](auto q, auto k, auto v) {
        return referenceAttention(q, k, v, all);
    });
    const auto chunkedAll = runAttention(in, w, [&](auto q, auto k, auto v) {
        return multiHeadAttention(q, k, v, torch::Tensor(),
            AttentionOptions().setImpl(AttentionImpl::Chunked).setChunkSize(chunk));
    });
    QVERIFY(maxAbsDiff(chunkedAll.out, refAll.out) < kTightTol);
    QVERIFY(maxAbsDiff(chunkedAll.dk, refAll.dk) < kTightTol);
}

void TestSetTransformer::chunkedDropoutMatchesReference_data()
{
    QTest::addColumn<qint64>("chunkRows");
    QTest::addColumn<bool>("broadcast");
    QTest::newRow("chunk 3, broadcast") << qint64(3) << true;
    QTest::newRow("chunk 7, per head") << qint64(7) << false;
    QTest::newRow("chunk 19 (= N), broadcast") << qint64(19) << true;
}

void TestSetTransformer::chunkedDropoutMatchesReference()
{
    QFETCH(qint64, chunkRows);
    QFETCH(bool, broadcast);
    const int64_t chunk = chunkRows;
    const int64_t B = 3, N = 19, H = 2, D = 3, seed = 1234;
    const double p = 0.3;
    const auto in = randomQkv(B, N, H, D, 5);
    const auto mask = prefixMask(N, { 19, 11, 4 });
    const auto w = torch::randn({ B, N, H, D }, kF64);
    // The masks the chunks draw, assembled over the full row range.
    std::vector<torch::Tensor> rows;
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
        rows.push_back(attentionDropoutMask(seed, r0, std::min(chunk, N - r0), N, B, H, p,
            broadcast, kF64));
    }
    const auto dropFull = torch::cat(rows, 2);
    // Kept entries are 1/(1-p), dropped ones 0, about p of them dropped.
    const auto kept = (dropFull > 0).to(torch::kDouble);
    QVERIFY(maxAbs(dropFull * kept - kept / (1.0 - p)) < 1e-15);
    const double dropRate = 1.0 - kept.mean().item<double>();
    QVERIFY2(std::abs(dropRate - p) < 0.12, qPrintable(QString::number(dropRate)));

    const auto ref = runAttention(in, w, [&](auto q, auto k, auto v) {
        return referenceAttention(q, k, v, mask, dropFull);
    });
    const auto opts = AttentionOptions()
                          .setImpl(AttentionImpl::Chunked)
                          .setChunkSize(chunk)
                          .setDropout(p)
                          .setSeed(seed)
                          .setBroadcastDropout(broadcast);
    const auto chunked = runAttention(in, w, [&](auto q, auto k, auto v) {
        return multiHeadAttention(q, k, v, mask, opts, /*training=*/true);
    });
    QVERIFY(maxAbsDiff(chunked.out, ref.out) < kTightTol);
    QVERIFY(maxAbsDiff(chunked.dq, ref.dq) < kTightTol);
    QVERIFY(maxAbsDiff(chunked.dk, ref.dk) < kTightTol);
    QVERIFY(maxAbsDiff(chunked.dv, ref.dv) < kTightTol);
    // Dropout really acted, and evaluation mode turns it off.
    const auto plain = referenceAttention(in.q, in.k, in.v, mask).detach();
    QVERIFY(maxAbsDiff(chunked.out, plain) > 1e-3);
    torch::NoGradGuard noGrad;
    QVERIFY(maxAbsDiff(multiHeadAttention(in.q, in.k, in.v, mask, opts, false), plain) < kTightTol);
    // Naive draws the same masks when one chunk covers all rows.
    if (chunk >= N) {
        auto naiveOpts = opts;
        naiveOpts.setImpl(AttentionImpl::Naive);
        QVERIFY(maxAbsDiff(multiHeadAttention(in.q, in.k, in.v, mask, naiveOpts, true), ref.out)
            < kTightTol);
    }
}

void TestSetTransformer::chunkedGradientFiniteDifferences()
{
    // gradcheck: analytic backward (with recomputation and regenerated dropout masks) against
    // central differences of the forward, for every entry of q, k and v.
    const int64_t B = 2, N = 7, H = 2, D = 3;
    const auto in = randomQkv(B, N, H, D, 21);
    const auto mask = prefixMask(N, { 7, 5 });
    const auto w = torch::randn({ B, N, H, D }, kF64);
    const auto opts = AttentionOptions()
                          .setImpl(AttentionImpl::Chunked)
                          .setChunkSize(3)
                          .setDropout(0.25)
                          .setSeed(99)
                          .setBroadcastDropout(false);
    auto f = [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
        return (multiHeadAttention(q, k, v, mask, opts, true) * w).sum().item<double>();
    };
    const auto an = runAttention(in, w, [&](auto q, auto k, auto v) {
        return multiHeadAttention(q, k, v, mask, opts, true);
    });
    torch::NoGradGuard noGrad;
    const double h = 1e-6;
    double worst = 0.0;
    for (int which = 0; which < 3; ++which) {
        auto base = (which == 0 ? in.q : which == 1 ? in.k : in.v).detach().clone();
        const auto& analytic = which == 0 ? an.dq : which == 1 ? an.dk : an.dv;
        auto flat = base.view({ -1 });
        for (int64_t i = 0; i < flat.numel(); ++i) {
            const double x0 = flat[i].item<double>();
            flat[i] = x0 + h;
            const double fp = f(which == 0 ? base : in.q.detach(), which == 1 ? base : in.k.detach(),
                which == 2 ? base : in.v.detach());
            flat[i] = x0 - h;
            const double fm = f(which == 0 ? base : in.q.detach(), which == 1 ? base : in.k.detach(),
                which == 2 ? base : in.v.detach());
            flat[i] = x0;
            worst = std::max(worst,
                std::abs((fp - fm) / (2 * h) - analytic.reshape({ -1 })[i].item<double>()));
        }
    }
    QVERIFY2(worst < kFdTol, qPrintable(QString::number(worst)));
}

void TestSetTransformer::projectedAttentionMatchesNaive_data()
{
    QTest::addColumn<qint64>("chunkRows");
    QTest::addColumn<double>("dropout");
    QTest::newRow("chunk 3") << qint64(3) << 0.0;
    QTest::newRow("chunk 8 of 13, masked") << qint64(8) << 0.0;
    QTest::newRow("chunk 13 (= N), dropout") << qint64(13) << 0.3;
}

void TestSetTransformer::projectedAttentionMatchesNaive()
{
    // The fused projection + chunked attention node (recomputing Q, K, V in backward) against
    // the stock linear + naive attention: outputs and gradients w.r.t. x, W and b.
    QFETCH(qint64, chunkRows);
    QFETCH(double, dropout);
    const int64_t B = 3, N = 13, E = 12, H = 3;
    torch::manual_seed(31);
    const auto x0 = torch::randn({ B, N, E }, kF64);
    const auto W0 = torch::randn({ 3 * E, E }, kF64) / std::sqrt(double(E));
    const auto b0 = torch::randn({ 3 * E }, kF64);
    const auto mask = prefixMask(N, { 13, 6, 0 });
    const auto w = torch::randn({ B, N, H, E / H }, kF64);
    std::vector<std::vector<torch::Tensor>> results;
    for (const auto impl : { AttentionImpl::Naive, AttentionImpl::Chunked }) {
        const auto x = x0.clone().set_requires_grad(true);
        const auto W = W0.clone().set_requires_grad(true);
        const auto b = b0.clone().set_requires_grad(true);
        const auto opts = AttentionOptions()
                              .setImpl(impl)
                              .setChunkSize(chunkRows)
                              .setDropout(dropout)
                              .setSeed(5);
        const auto o = projectedSelfAttention(x, W, b, H, mask, opts, true);
        const auto g = torch::autograd::grad({ (o * w).sum() }, { x, W, b });
        results.push_back({ o.detach(), g[0], g[1], g[2] });
    }
    // Independent truth for the outputs: the split projection through referenceAttention.
    if (dropout == 0.0) {
        const auto qkv = (torch::matmul(x0, W0.t()) + b0).view({ B, N, 3, H, E / H });
        const auto ref = referenceAttention(qkv.select(2, 0), qkv.select(2, 1), qkv.select(2, 2),
            mask);
        QVERIFY(maxAbsDiff(results[1][0], ref) < kTightTol);
    }
    QVERIFY(maxAbs(results[0][0]) > 0.1);
    for (size_t i = 0; i < 4; ++i) {
        QVERIFY2(maxAbsDiff(results[0][i], results[1][i]) < kTightTol,
            qPrintable(QString("tensor %1: %2").arg(i).arg(maxAbsDiff(results[0][i], results[1][i]))));
    }
}

void TestSetTransformer::attentionArguments()
{
    const auto q = torch::randn({ 2, 5, 2, 3 });
    QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, multiHeadAttention(q, q, q.narrow(1, 0, 4), {}));
    QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, multiHeadAttention(q[0], q[0], q[0], {}));
    QVERIFY_THROWS_EXCEPTION(wfm::ConfigError,
        multiHeadAttention(q, q, q, torch::ones({ 2, 4 }, torch::kBool)));
    QVERIFY_THROWS_EXCEPTION(wfm::ConfigError,
        multiHeadAttention(q, q, q, {}, AttentionOptions().setDropout(1.0), true));
    QVERIFY(attentionImplFromString(attentionImplName(AttentionImpl::Chunked)) == AttentionImpl::Chunked);
    QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, attentionImplFromString("flash"));
    // Auto: Naive below the threshold, Chunked above; the automatic chunk stays in [16, N].
    const auto cpu = torch::Device(torch::kCPU);
    QVERIFY(resolveAttentionImpl(AttentionOptions(), 16, 4, 256, cpu) == AttentionImpl::Naive);
    QVERIFY(resolveAttentionImpl(AttentionOptions(), 16, 4, 2048, cpu) == AttentionImpl::Chunked);
    QCOMPARE(resolveChunkSize(AttentionOptions(), 16, 4, 2048), int64_t(128));
    QCOMPARE(resolveChunkSize(AttentionOptions(), 1, 1, 100), int64_t(100));
    QCOMPARE(resolveChunkSize(AttentionOptions().setChunkSize(500), 1, 1, 100), int64_t(100));
}

// --- set transformer ----------------------------------------------------------------------------

void TestSetTransformer::optionsJsonRoundTrip()
{
    const auto o = SetTransformerOptions(5)
                       .setWidth(96)
                       .setBlocks(3)
                       .setHeads(6)
                       .setMlpWidth(80)
                       .setMlpDropout(0.15)
                       .setAttentionDropout(1.0 / 3.0)
                       .setNumLabels(7)
                       .setCondDim(4)
                       .setTimeFrequencies(12)
                       .setLayerNormEps(1e-5)
                       .setHeadInitScale(2.5e-6)
                       .setAttention(AttentionImpl::Naive)
                       .setChunkSize(33)
                       .setBroadcastAttentionDropout(false);
    const auto back = SetTransformerOptions::fromJsonString(o.toJsonString());
    QVERIFY(back == o);
    QCOMPARE(back.toJsonString(), o.toJsonString());
    QVERIFY(!(back == SetTransformerOptions(5)));
    // Defaults are the reference's; missing fields keep them; whitespace is fine.
    const auto d = SetTransformerOptions::fromJsonString(" { \"dim\" : 3 } ");
    QCOMPARE(d.width, int64_t(512));
    QCOMPARE(d.blocks, int64_t(6));
    QCOMPARE(d.heads, int64_t(4));
    QCOMPARE(d.mlpWidth, int64_t(512));
    QCOMPARE(d.dropout, 0.1);
    QCOMPARE(d.layerNormEps, 1e-6);
    QVERIFY(d.attention == AttentionImpl::Auto);
    for (const char* bad : { "", "{", "{\"dim\":3", "{\"dim\":3}x", "{\"dim\":\"3\"}",
             "{\"dim\":3.5}", "{\"dim\":3,\"colour\":1}", "{\"dim\":3,\"dim\":4}",
             "{\"dim\":0}", "{\"dim\":3,\"width\":10,\"heads\":4}",
             "{\"dim\":3,\"attention\":\"fast\"}", "{\"dim\":3,\"dropout\":1}" }) {
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, SetTransformerOptions::fromJsonString(bad));
    }
}

void TestSetTransformer::parameterCount_data()
{
    QTest::addColumn<qint64>("d");
    QTest::addColumn<qint64>("E");
    QTest::addColumn<qint64>("L");
    QTest::addColumn<qint64>("mlp");
    QTest::addColumn<qint64>("labels");
    QTest::addColumn<qint64>("cond");
    QTest::newRow("reference size") << qint64(3) << qint64(512) << qint64(6) << qint64(512)
                                    << qint64(0) << qint64(0);
    QTest::newRow("labels + cond") << qint64(2) << qint64(48) << qint64(2) << qint64(40)
                                   << qint64(10) << qint64(5);
}

void TestSetTransformer::parameterCount()
{
    QFETCH(qint64, d);
    QFETCH(qint64, E);
    QFETCH(qint64, L);
    QFETCH(qint64, mlp);
    QFETCH(qint64, labels);
    QFETCH(qint64, cond);
    const SetTransformer m(SetTransformerOptions(d).setWidth(E).setBlocks(L).setMlpWidth(mlp)
                               .setNumLabels(labels)
                               .setCondDim(cond));
    const int64_t F = E / 2;
    int64_t expected = (d * E + E) + (2 * F * E + E) + L * (2 * E + 3 * E * E + 3 * E + E * E + E
                           + 2 * E + E * mlp + mlp + mlp * E + E)
        + 2 * E + (E * d + d);
    if (labels > 0) {
        expected += labels * E + E;
    }
    if (cond > 0) {
        expected += cond * E + E;
    }
    QCOMPARE(m->parameterCount(), expected);
}

void TestSetTransformer::initialisation()
{
    torch::manual_seed(3);
    const int64_t E = 256;
    SetTransformer m(SetTransformerOptions(3).setWidth(E).setBlocks(1).setMlpWidth(128));
    // Lecun-normal: variance 1/fan_in, truncated at 2 sd of the untruncated normal.
    auto checkLecun = [](const torch::Tensor& w, double scale) {
        const double var = scale / double(w.size(1));
        const double sd = std::sqrt(var) / 0.87962566103423978;
        const double measured = w.var().item<double>();
        QVERIFY2(std::abs(measured / var - 1.0) < 0.15,
            qPrintable(QString("variance %1 vs %2").arg(measured).arg(var)));
        QVERIFY(maxAbs(w) <= 2.0 * sd * (1 + 1e-6));
        QVERIFY(maxAbs(w) > 1.5 * sd); // truncated, not clipped to a smaller range
    };
    for (const auto& item : m->named_parameters()) {
        const auto& name = item.key();
        const auto& p = item.value();
        if (name.find("Norm") != std::string::npos) {
            QCOMPARE(maxAbs(p - (name.find("weight") != std::string::npos ? 1.0 : 0.0)), 0.0);
        } else if (name.find("bias") != std::string::npos) {
            QCOMPARE(maxAbs(p), 0.0);
        } else if (name == "head.weight") {
            checkLecun(p, 1e-5);
        } else if (p.numel() >= 2048) {
            checkLecun(p, 1.0);
        }
    }
    // The reference time frequencies: 2 pi k / E, k < E/2.
    const auto freqs = m->named_buffers()["timeFrequencies"];
    QCOMPARE(freqs.numel(), E / 2);
    QVERIFY(maxAbs(freqs.to(torch::kDouble) - torch::arange(E / 2, kF64) * (2 * M_PI / E)) < 1e-5);

    // Near-zero head: the initial field is tiny, while the same network with a unit-scale head
    // is O(1) (LayerNorm output has unit variance per point).
    const auto x = torch::randn({ 2, 50, 3 });
    const auto t = torch::rand({ 2 });
    m->eval();
    torch::NoGradGuard noGrad;
    const double initial = m->forward(x, t).abs().max().item<double>();
    lecunNormal_(m->head->weight, 1.0);
    const double unitHead = m->forward(x, t).abs().max().item<double>();
    QVERIFY2(initial < 2e-2, qPrintable(QString::number(initial)));
    QVERIFY2(unitHead > 100.0 * initial, qPrintable(QString::number(unitHead)));
}

void TestSetTransformer::permutationEquivariance()
{
    auto m = smallModel(smallOptions().setNumLabels(2));
    m->eval();
    torch::manual_seed(1);
    const int64_t B = 2, N = 23;
    const auto x = torch::randn({ B, N, 3 }, kF64);
    const auto t = torch::rand({ B }, kF64);
    auto mask = prefixMask(N, { 23, 15 });
    const auto labels = torch::tensor({ 1, 0 }, torch::kLong);
    torch::NoGradGuard noGrad;
    const auto v = m->forward(x, t, mask, labels);
    QVERIFY(maxAbs(v) > 0.1);
    for (int trial = 0; trial < 3; ++trial) {
        const auto perm = torch::randperm(N);
        const auto vp = m->forward(x.index_select(1, perm), t, mask.index_select(1, perm), labels);
        QVERIFY(maxAbsDiff(vp, v.index_select(1, perm)) < kTightTol);
    }
    // Each cloud sees only itself: a different partner in the batch changes nothing.
    const auto v0 = m->forward(x.narrow(0, 0, 1), t.narrow(0, 0, 1), mask.narrow(0, 0, 1),
        labels.narrow(0, 0, 1));
    QVERIFY(maxAbsDiff(v0, v.narrow(0, 0, 1)) < kTightTol);
}

void TestSetTransformer::paddingInvariance()
{
    const int64_t B = 2, N = 20;
    torch::manual_seed(2);
    const auto x = torch::randn({ B, N, 3 }, kF64);
    const auto t = torch::rand({ B }, kF64);
    const auto mask = prefixMask(N, { 20, 13 });
    // Garbage in the padding: huge, infinite and NaN coordinates.
    auto xg = x.clone();
    xg[1].narrow(0, 13, 7).copy_(1e30 * torch::randn({ 7, 3 }, kF64));
    xg[1][14][0] = std::nan("");
    xg[1][16][2] = INFINITY;
    xg[1][18][1] = -INFINITY;

    for (const bool training : { false, true }) {
        auto m = smallModel(smallOptions().setDropout(training ? 0.2 : 0.0));
        m->train(training);
        std::vector<torch::Tensor> vs, gs;
        for (const auto& in : { x, xg }) {
            const auto xi = in.clone().set_requires_grad(true);
            torch::manual_seed(77); // the same dropout masks for both
            const auto v = m->forward(xi, t, mask);
            m->zero_grad();
            (v * v).sum().backward();
            vs.push_back(v.detach());
            gs.push_back(m->head->weight.grad().clone());
            QVERIFY(torch::isfinite(v).all().item<bool>());
            // No gradient flows to padded coordinates; live ones get a finite gradient.
            QCOMPARE(maxAbs(xi.grad()[1].narrow(0, 13, 7)), 0.0);
            QVERIFY(torch::isfinite(xi.grad()).all().item<bool>());
            for (const auto& p : m->parameters()) {
                QVERIFY(torch::isfinite(p.grad()).all().item<bool>());
            }
        }
        QCOMPARE(maxAbsDiff(vs[0], vs[1]), 0.0); // bit-identical
        QCOMPARE(maxAbsDiff(gs[0], gs[1]), 0.0);
        QCOMPARE(maxAbs(vs[0][1].narrow(0, 13, 7)), 0.0); // padded rows exactly 0
    }

    // Appending padded points (a larger N) leaves live outputs unchanged; weights work as a
    // mask as well.
    auto m = smallModel(smallOptions());
    m->eval();
    torch::NoGradGuard noGrad;
    const auto v = m->forward(x, t, mask);
    const auto xl = torch::cat({ x, 1e6 * torch::randn({ B, 9, 3 }, kF64) }, 1);
    const auto maskl = torch::cat({ mask, torch::zeros({ B, 9 }, torch::kBool) }, 1);
    const auto vl = m->forward(xl, t, maskl);
    QVERIFY(maxAbsDiff(vl.narrow(1, 0, N), v) < kTightTol);
    QCOMPARE(maxAbs(vl.narrow(1, N, 9)), 0.0);
    const auto weights = maskl.to(torch::kDouble) / maskl.sum(1, true).to(torch::kDouble);
    QCOMPARE(maxAbsDiff(m->forward(xl, t, weights), vl), 0.0);
    // The unpadded second cloud alone equals its padded version.
    const auto alone = m->forward(x[1].narrow(0, 0, 13).unsqueeze(0), t.narrow(0, 1, 1));
    QVERIFY(maxAbsDiff(alone[0], v[1].narrow(0, 0, 13)) < kTightTol);
}

void TestSetTransformer::fullyPaddedCloud()
{
    for (const auto impl : { AttentionImpl::Naive, AttentionImpl::Chunked }) {
        auto m = smallModel(smallOptions().setAttention(impl).setDropout(0.1));
        m->train();
        const int64_t N = 11;
        auto x = torch::randn({ 2, N, 3 }, kF64);
        x[0][3][1] = std::nan("");
        x = x.set_requires_grad(true);
        const auto mask = prefixMask(N, { 0, 6 });
        const auto v = m->forward(x, torch::rand({ 2 }, kF64), mask);
        QCOMPARE(maxAbs(v[0]), 0.0);
        QVERIFY(torch::isfinite(v).all().item<bool>());
        QVERIFY(maxAbs(v[1].narrow(0, 0, 6)) > 0.0);
        (v * v).sum().backward();
        QCOMPARE(maxAbs(x.grad()[0]), 0.0);
        for (const auto& p : m->parameters()) {
            QVERIFY(torch::isfinite(p.grad()).all().item<bool>());
        }
    }
}

void TestSetTransformer::modelChunkedMatchesNaive()
{
    const int64_t B = 3, N = 17;
    torch::manual_seed(4);
    const auto x0 = torch::randn({ B, N, 3 }, kF64);
    const auto t = torch::rand({ B }, kF64);
    const auto mask = prefixMask(N, { 17, 9, 2 });
    const auto labels = torch::tensor({ 0, 2, 1 }, torch::kLong);

    // (chunk, training): with dropout both draw the same masks when one chunk covers N.
    for (const auto& [chunk, training] : { std::pair<int64_t, bool> { 4, false },
             std::pair<int64_t, bool> { 6, false }, std::pair<int64_t, bool> { 32, true } }) {
        std::vector<torch::Tensor> outs, xGrads, pGrads;
        for (const auto impl : { AttentionImpl::Naive, AttentionImpl::Chunked }) {
            auto m = smallModel(smallOptions()
                                    .setNumLabels(2)
                                    .setDropout(training ? 0.2 : 0.0)
                                    .setAttention(impl)
                                    .setChunkSize(chunk));
            m->train(training);
            const auto x = x0.clone().set_requires_grad(true);
            torch::manual_seed(123);
            const auto v = m->forward(x, t, mask, labels);
            (v * torch::sin(x0)).sum().backward();
            outs.push_back(v.detach());
            xGrads.push_back(x.grad());
            std::vector<torch::Tensor> g;
            for (const auto& p : m->parameters()) {
                g.push_back(p.grad().reshape({ -1 }));
            }
            pGrads.push_back(torch::cat(g));
        }
        QVERIFY(maxAbs(outs[0]) > 0.1);
        QVERIFY(maxAbsDiff(outs[0], outs[1]) < kTightTol);
        QVERIFY(maxAbsDiff(xGrads[0], xGrads[1]) < kTightTol);
        QVERIFY(maxAbsDiff(pGrads[0], pGrads[1]) < 1e-10);
    }
}

void TestSetTransformer::modelGradientFiniteDifferences()
{
    // End-to-end gradcheck in training mode (attention dropout, fused dropout + LeakyReLU,
    // chunked attention with the fused projection): analytic gradients of sum(v * w) against
    // central differences, the dropout masks fixed by reseeding before every forward.
    auto m = smallModel(smallOptions().setNumLabels(2).setDropout(0.25).setChunkSize(4));
    m->train();
    torch::manual_seed(41);
    const int64_t B = 2, N = 9;
    const auto x = torch::randn({ B, N, 3 }, kF64).set_requires_grad(true);
    const auto t = torch::rand({ B }, kF64);
    const auto mask = prefixMask(N, { 9, 6 });
    const auto labels = torch::tensor({ 1, 2 }, torch::kLong);
    const auto w = torch::randn({ B, N, 3 }, kF64);
    auto objective = [&]() {
        torch::manual_seed(2024);
        return (m->forward(x, t, mask, labels) * w).sum();
    };
    m->zero_grad();
    objective().backward();
    // Probe entries of every parameter tensor and of the input.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> probes; // (tensor, its gradient)
    for (const auto& p : m->parameters()) {
        probes.emplace_back(p, p.grad().clone());
    }
    probes.emplace_back(x, x.grad().clone());
    torch::NoGradGuard noGrad;
    const double h = 1e-6;
    double worst = 0.0;
    int checked = 0;
    torch::manual_seed(3);
    for (auto& [tensor, grad] : probes) {
        auto flat = tensor.view({ -1 });
        const auto picks = torch::randint(flat.numel(), { 3 }, torch::kLong);
        for (int64_t j = 0; j < picks.numel(); ++j) {
            const int64_t i = picks[j].item<int64_t>();
            const double x0 = flat[i].item<double>();
            flat[i] = x0 + h;
            const double fp = objective().item<double>();
            flat[i] = x0 - h;
            const double fm = objective().item<double>();
            flat[i] = x0;
            worst = std::max(worst, std::abs((fp - fm) / (2 * h) - grad.reshape({ -1 })[i].item<double>()));
            ++checked;
        }
    }
    QVERIFY(checked > 60);
    QVERIFY2(worst < 1e-5, qPrintable(QString::number(worst)));
}

void TestSetTransformer::labelConditioning()
{
    auto m = smallModel(smallOptions().setNumLabels(3));
    m->eval();
    torch::manual_seed(8);
    const int64_t N = 9;
    const auto x = torch::randn({ 1, N, 3 }, kF64).expand({ 4, N, 3 }).contiguous();
    const auto t = torch::full({ 4 }, 0.3, kF64);
    const auto labels = torch::tensor({ 0, 1, 2, 3 }, torch::kLong); // 3 = null
    torch::NoGradGuard noGrad;
    const auto v = m->forward(x, t, {}, labels);
    for (int a = 0; a < 4; ++a) {
        for (int b = a + 1; b < 4; ++b) {
            QVERIFY(maxAbsDiff(v[a], v[b]) > 1e-3);
        }
    }
    // No labels = the null label.
    QCOMPARE(maxAbsDiff(m->forward(x, t, {}, {})[0], v[3]), 0.0);
    // The null label is the zero one-hot: it sees the label embedding's bias only.
    auto& W = m->labelEmbedding->weight;
    const auto saved = W.clone();
    W.copy_(torch::randn_like(W));
    const auto v2 = m->forward(x, t, {}, labels);
    QCOMPARE(maxAbsDiff(v2[3], v[3]), 0.0);
    QVERIFY(maxAbsDiff(v2[0], v[0]) > 1e-3);
    // With a zero embedding matrix every label equals the null label.
    W.zero_();
    const auto v3 = m->forward(x, t, {}, labels);
    for (int a = 0; a < 3; ++a) {
        QCOMPARE(maxAbsDiff(v3[a], v[3]), 0.0);
    }
    W.copy_(saved);
    // The time embedding acts too.
    QVERIFY(maxAbsDiff(m->forward(x, torch::full({ 4 }, 0.8, kF64), {}, labels), v) > 1e-3);
}

void TestSetTransformer::continuousConditioning()
{
    auto m = smallModel(smallOptions().setCondDim(4));
    m->eval();
    torch::manual_seed(9);
    const auto x = torch::randn({ 2, 8, 3 }, kF64);
    const auto t = torch::rand({ 2 }, kF64);
    const auto c = torch::randn({ 2, 4 }, kF64);
    torch::NoGradGuard noGrad;
    const auto v = m->forward(x, t, {}, {}, c);
    QVERIFY(maxAbsDiff(m->forward(x, t, {}, {}, c * 2.0), v) > 1e-3);
    // Linear in the condition: [x, cond] enters as c_emb = W cond + b.
    auto& W = m->condEmbedding->weight;
    const auto zero = m->forward(x, t, {}, {}, torch::zeros_like(c));
    W.zero_();
    QCOMPARE(maxAbsDiff(m->forward(x, t, {}, {}, c), zero), 0.0);
    QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, m->forward(x, t));
}

void TestSetTransformer::guidance()
{
    auto m = smallModel(smallOptions().setNumLabels(4));
    m->eval();
    torch::manual_seed(10);
    const int64_t B = 3, N = 12;
    const auto x = torch::randn({ B, N, 3 }, kF64);
    const auto t = torch::rand({ B }, kF64);
    const auto mask = prefixMask(N, { 12, 7, 10 });
    const auto labels = torch::tensor({ 2, 0, 3 }, torch::kLong);
    torch::NoGradGuard noGrad;
    const auto vc = m->forward(x, t, mask, labels);
    const auto vu = m->forward(x, t, mask, torch::full({ B }, 4, torch::kLong));
    QVERIFY(maxAbsDiff(vc, vu) > 1e-3);
    QVERIFY(maxAbsDiff(guidedVelocity(m, x, t, mask, labels, 1.0), vc) < kTightTol);
    QVERIFY(maxAbsDiff(guidedVelocity(m, x, t, mask, labels, 0.0), vu) < kTightTol);
    QVERIFY(maxAbsDiff(guidedVelocity(m, x, t, mask, labels, 1.5), vu + 1.5 * (vc - vu))
        < kTightTol);
    QCOMPARE(maxAbs(guidedVelocity(m, x, t, mask, labels, 1.5)[1].narrow(0, 7, 5)), 0.0);
    auto unconditional = smallModel(smallOptions());
    QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, guidedVelocity(unconditional, x, t, mask, labels, 1.5));
    QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, guidedVelocity(m, x, t, mask, {}, 1.5));
}

void TestSetTransformer::cloneIsIndependent()
{
    auto m = smallModel(smallOptions().setNumLabels(2));
    m->eval();
    auto copy = std::dynamic_pointer_cast<SetTransformerImpl>(m->clone());
    QVERIFY(copy);
    QVERIFY(copy->options() == m->options());
    const auto x = torch::randn({ 2, 6, 3 }, kF64);
    const auto t = torch::rand({ 2 }, kF64);
    torch::NoGradGuard noGrad;
    QCOMPARE(maxAbsDiff(copy->forward(x, t), m->forward(x, t)), 0.0);
    copy->head->weight.add_(torch::randn_like(copy->head->weight));
    QVERIFY(maxAbsDiff(copy->forward(x, t), m->forward(x, t)) > 1e-3);
}

void TestSetTransformer::invalidArguments()
{
    auto m = smallModel(smallOptions().setNumLabels(2));
    const auto x = torch::randn({ 2, 6, 3 }, kF64);
    const auto t = torch::rand({ 2 }, kF64);
    using wfm::ConfigError;
    QVERIFY_THROWS_EXCEPTION(ConfigError, m->forward(torch::randn({ 2, 6, 2 }, kF64), t));
    QVERIFY_THROWS_EXCEPTION(ConfigError, m->forward(x.to(torch::kFloat), t));
    QVERIFY_THROWS_EXCEPTION(ConfigError, m->forward(x, torch::rand({ 3 }, kF64)));
    QVERIFY_THROWS_EXCEPTION(ConfigError, m->forward(x, t, torch::ones({ 2, 5 }, torch::kBool)));
    QVERIFY_THROWS_EXCEPTION(ConfigError, m->forward(x, t, {}, torch::tensor({ 0, 3 })));
    QVERIFY_THROWS_EXCEPTION(ConfigError, m->forward(x, t, {}, torch::tensor({ -1, 0 })));
    QVERIFY_THROWS_EXCEPTION(ConfigError, m->forward(x, t, {}, torch::tensor({ 0.0, 1.0 })));
    QVERIFY_THROWS_EXCEPTION(ConfigError, m->forward(x, t, {}, {}, torch::zeros({ 2, 1 })));
    QVERIFY_THROWS_EXCEPTION(ConfigError, (void)SetTransformer(SetTransformerOptions(3).setWidth(30)));
    QVERIFY_THROWS_EXCEPTION(ConfigError, (void)SetTransformer(SetTransformerOptions()));
    // A scalar time is broadcast over the batch.
    torch::NoGradGuard noGrad;
    m->eval();
    QCOMPARE(maxAbsDiff(m->forward(x, torch::tensor(0.25, kF64)),
                 m->forward(x, torch::full({ 2 }, 0.25, kF64))),
        0.0);
}

void TestSetTransformer::overfitsFixedTarget()
{
    torch::manual_seed(12);
    SetTransformer m(SetTransformerOptions(2)
                         .setWidth(32)
                         .setBlocks(2)
                         .setHeads(2)
                         .setMlpWidth(64)
                         .setDropout(0.0)
                         .setAttention(AttentionImpl::Chunked)
                         .setChunkSize(7));
    m->train();
    const int64_t B = 4, N = 16;
    const auto x = torch::randn({ B, N, 2 });
    const auto t = torch::rand({ B });
    const auto mask = prefixMask(N, { 16, 12, 16, 9 });
    // A smooth, cloud-dependent target field.
    const auto A = torch::tensor({ { 0.0, -1.0 }, { 1.0, 0.0 } });
    const auto target = (torch::matmul(x, A) + 0.5 * torch::sin(2.0 * x)
        + t.view({ B, 1, 1 }) * x.mean(1, true)) * mask.unsqueeze(-1);
    const auto w = mask.to(torch::kFloat) / mask.sum(1, true).to(torch::kFloat);
    torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
    auto lossOf = [&]() {
        const auto v = m->forward(x, t, mask);
        return ((v - target).square().sum(-1) * w).sum(1).mean();
    };
    const double initial = lossOf().item<double>();
    double last = initial;
    for (int step = 0; step < 300; ++step) {
        opt.zero_grad();
        auto loss = lossOf();
        loss.backward();
        opt.step();
        last = loss.item<double>();
    }
    QVERIFY2(last < initial / 10.0, qPrintable(QString("%1 -> %2").arg(initial).arg(last)));
}

void TestSetTransformer::chunkedUsesLessMemory()
{
    // B=2, N=2048, E=128, 2 heads, 2 blocks, training mode: Naive keeps [2,2,2048,2048]
    // scores/probabilities (32 MiB each in float32) per block; Chunked keeps O(B*N*E).
    const int64_t B = 2, N = 2048;
    torch::manual_seed(13);
    const auto x = torch::randn({ B, N, 3 });
    const auto t = torch::rand({ B });
    const auto mask = prefixMask(N, { 2048, 1500 });
    int64_t growth[2] = { 0, 0 };
    int i = 0;
    for (const auto impl : { AttentionImpl::Chunked, AttentionImpl::Naive }) {
        SetTransformer m(SetTransformerOptions(3)
                             .setWidth(128)
                             .setHeads(2)
                             .setBlocks(2)
                             .setMlpWidth(128)
                             .setAttention(impl)
                             .setChunkSize(128));
        m->train();
        growth[i++] = peakGrowth([&] {
            const auto v = m->forward(x, t, mask);
            (v * v).sum().backward();
        });
    }
    QVERIFY2(growth[0] > 0 && growth[1] > 0, "could not read /proc/self/status");
    qInfo("peak RSS growth of one forward+backward: chunked %.1f MiB, naive %.1f MiB",
        double(growth[0]) / (1 << 20), double(growth[1]) / (1 << 20));
    QVERIFY2(3 * growth[0] < growth[1], "chunked attention should need < 1/3 of naive's memory");
}

void TestSetTransformer::stepCost()
{
    // One training forward+backward with Chunked attention: time and peak RSS growth. By default
    // a small size; WFM_SETTRANSFORMER_STEP="B,N,E,blocks,heads[,threads[,chunk]]" runs another
    // one, e.g. the reference "16,2048,512,6,4,2" (d = 3, MLP = E; chunk 0 = automatic). The bound is linear in B*N*E*blocks
    // (3.5 GiB at the reference size; blocks + 1 counts the embedding and head) plus three chunk
    // buffers, so the reference size has to fit in 4 GiB.
    int64_t B = 4, N = 512, E = 64, L = 2, H = 2, threads = 0, chunkRows = 0;
    if (const char* env = std::getenv("WFM_SETTRANSFORMER_STEP")) {
        char sep;
        std::istringstream is(env);
        is >> B >> sep >> N >> sep >> E >> sep >> L >> sep >> H;
        QVERIFY2(is && B > 0 && N > 0 && E > 0 && L > 0 && H > 0, env);
        if (is >> sep >> threads && threads > 0) {
            torch::set_num_threads(static_cast<int>(threads));
        }
        is >> sep >> chunkRows;
    }
    torch::manual_seed(14);
    SetTransformer m(SetTransformerOptions(3).setWidth(E).setBlocks(L).setHeads(H).setMlpWidth(E)
                         .setAttention(AttentionImpl::Chunked)
                         .setChunkSize(chunkRows));
    m->train();
    const auto x = torch::randn({ B, N, 3 });
    const auto t = torch::rand({ B });
    const auto mask = torch::rand({ B, N }) < 0.9;
    const auto tick = std::chrono::steady_clock::now();
    double loss = 0.0;
    const int64_t growth = peakGrowth([&] {
        const auto v = m->forward(x, t, mask);
        const auto l = (v * v).sum();
        l.backward();
        loss = l.item<double>();
    });
    const double seconds
        = std::chrono::duration<double>(std::chrono::steady_clock::now() - tick).count();
    QVERIFY(std::isfinite(loss));
    for (const auto& p : m->parameters()) {
        QVERIFY(torch::isfinite(p.grad()).all().item<bool>());
    }
    const int64_t chunk = resolveChunkSize(AttentionOptions().setChunkSize(chunkRows), B, H, N);
    const double reference = 16.0 * 2048 * 512 * 7;
    const double bound = 3.5 * (1 << 30) * (double(B) * N * E * (L + 1)) / reference
        + 3.0 * 4 * B * H * N * chunk + 32.0 * (1 << 20);
    qInfo("step B=%lld N=%lld E=%lld blocks=%lld heads=%lld chunk=%lld threads=%d: %.2f s, "
          "peak RSS growth %.1f MiB (bound %.1f MiB), process peak RSS %.1f MiB, %lld parameters",
        (long long)B, (long long)N, (long long)E, (long long)L, (long long)H, (long long)chunk,
        torch::get_num_threads(), seconds, double(growth) / (1 << 20), bound / (1 << 20),
        double(procStatusBytes("VmHWM")) / (1 << 20), (long long)m->parameterCount());
    QVERIFY(growth > 0);
    QVERIFY(double(growth) < bound);
}

QTEST_GUILESS_MAIN(TestSetTransformer)
#include "tst_settransformer.moc"
