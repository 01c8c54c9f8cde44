// Fused CPU Sinkhorn: run-time choice of the instruction set, the per-half-iteration column
// preparation (O(N + M) per pair), threading over (pair, row block) work items, and the portable
// instantiation of the kernels of FusedCpuImpl.h.

#define WFM_FUSED_CPU_KERNEL_BODY
#include "ot/cpu/FusedCpuImpl.h"

#include "wfm/Error.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

namespace {

/// 4 float lanes as a GCC/Clang generic vector: compiled for the baseline instruction set (SSE2
/// on x86-64, NEON on AArch64), no run-time requirement beyond it.
struct VPortable
{
    static constexpr int W = 4;
    using F = float __attribute__((vector_size(16)));
    using I = std::uint32_t __attribute__((vector_size(16)));
    using S = std::int32_t __attribute__((vector_size(16)));
    using M = S; // all-ones lanes

    static F zero() { return F {}; }
    static F set1(float a) { return F {} + a; }
    static F load(const float* p)
    {
        F v;
        std::memcpy(&v, p, sizeof(v));
        return v;
    }
    static void store(float* p, F v) { std::memcpy(p, &v, sizeof(v)); }
    static F add(F a, F b) { return a + b; }
    static F sub(F a, F b) { return a - b; }
    static F mul(F a, F b) { return a * b; }
    static F div(F a, F b) { return a / b; }
    static F fma(F a, F b, F c) { return a * b + c; }
    static F max(F a, F b) { return select(a > b, a, b); }

    /// 2^x as in the AVX2 path: clamp to [-125, 127], round with the 1.5 * 2^23 trick, add n
    /// to the exponent field of the polynomial's value.
    static F exp2(F x)
    {
        const F magic = set1(12582912.0f);
        x = max(x, set1(-125.0f));
        x = select(x < set1(127.0f), x, set1(127.0f));
        const F u = x + magic;
        const F r = x - (u - magic);
        const I e = fasi(u) << 23;
        return iasf(fasi(exp2Poly<VPortable>(r)) + e);
    }

    static M tailMask(int rem) { return M(iota()) < rem; }
    static F maskAdd(F acc, M m, F v) { return acc + iasf(fasi(v) & I(m)); }
    static M gt(F a, F b) { return a > b; }
    static unsigned bits(M m)
    {
        unsigned b = 0;
        for (int l = 0; l < W; ++l) {
            b |= unsigned(m[l] != 0) << l;
        }
        return b;
    }
    // Bitwise blends: GCC lowers the vector ?: lane by lane for vectors wider than the target's.
    static F select(M m, F a, F b) { return iasf((fasi(a) & I(m)) | (fasi(b) & ~I(m))); }

    static I iload(const std::int32_t* p)
    {
        I v;
        std::memcpy(&v, p, sizeof(v));
        return v;
    }
    static void istore(int* p, I v) { std::memcpy(p, &v, sizeof(v)); }
    static I iset1(int a) { return I {} + std::uint32_t(a); }
    static I iadd(I a, I b) { return a + b; }
    static I imul(I a, I b) { return a * b; }
    static I ixor(I a, I b) { return a ^ b; }
    static I iand(I a, I b) { return a & b; }
    static I ior(I a, I b) { return a | b; }
    template <int n>
    static I isrl(I a)
    {
        return a >> n;
    }
    static I iselect(M m, I a, I b) { return (a & I(m)) | (b & ~I(m)); }
    static I iota() { return I { 0, 1, 2, 3 }; }
    static F ltof(I a) { return __builtin_convertvector(S(a), F); }
    static I fasi(F a) { return (I)a; } // same-size vector casts reinterpret the bits
    static F iasf(I a) { return (F)a; }
};

const wfm::ot::kernels::cpu::detail::KernelSet kPortable = KernelsFor<VPortable, 1>::table();

} // namespace

namespace wfm::ot::kernels::cpu {
namespace detail {

const KernelSet& portableKernels()
{
    return kPortable;
}

namespace {

Isa detectIsa()
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return Isa::Avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return Isa::Avx2;
    }
#endif
    return Isa::Portable;
}

Isa bestIsa()
{
    static const Isa best = detectIsa();
    return best;
}

std::atomic<int> g_override { -1 };

const char* isaName(Isa isa)
{
    switch (isa) {
    case Isa::Avx512:
        return "avx512";
    case Isa::Avx2:
        return "avx2";
    case Isa::Portable:
        break;
    }
    return "portable";
}

const KernelSet& kernels()
{
    switch (activeIsa()) {
    case Isa::Avx512:
        return avx512Kernels();
    case Isa::Avx2:
        return avx2Kernels();
    case Isa::Portable:
        break;
    }
    return portableKernels();
}

} // namespace

bool isaSupported(Isa isa)
{
    return int(isa) <= int(bestIsa()) && int(isa) >= 0;
}

Isa activeIsa()
{
    const int o = g_override.load(std::memory_order_relaxed);
    return o >= 0 ? Isa(o) : bestIsa();
}

void setIsaOverride(Isa isa)
{
    WFM_CHECK(isaSupported(isa), "instruction set '", isaName(isa),
        "' is not supported by this CPU (best: ", isaName(bestIsa()), ")");
    g_override.store(int(isa), std::memory_order_relaxed);
}

void clearIsaOverride()
{
    g_override.store(-1, std::memory_order_relaxed);
}

} // namespace detail

namespace {

using namespace detail;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

/// One side (x or y) of one pair: where its arrays start and which entries are live.
struct Side
{
    const float* raw = nullptr;
    const float* logw = nullptr;
    int length = 0;
    std::vector<std::int32_t> live;
};

/// A side prepared as the columns of a half-pass (see detail::Columns).
struct ColumnStore
{
    std::vector<float> h;
    std::vector<float> coords;
    std::vector<std::int32_t> index;
    Columns view;
};

struct PairData
{
    int b = 0;
    float eps = 0.0f;
    std::vector<float> center;
    Side x;
    Side y;
    ColumnStore colX;
    ColumnStore colY;
    bool active() const { return !x.live.empty() && !y.live.empty(); }
};

struct Item
{
    int pair;
    int r0;
    int r1;
};

void checkProblem(const Problem& p)
{
    WFM_CHECK(p.B >= 0 && p.N >= 0 && p.M >= 0, "fused Sinkhorn: negative size B=", p.B,
        " N=", p.N, " M=", p.M);
    if (p.B == 0 || (p.N == 0 && p.M == 0)) {
        return;
    }
    WFM_CHECK(p.d >= 1, "fused Sinkhorn: dimension must be >= 1, got ", p.d);
    WFM_CHECK((p.N == 0 || (p.x && p.loga)) && (p.M == 0 || (p.y && p.logb)) && p.eps,
        "fused Sinkhorn: missing input arrays");
}

/// Live lists and centres of every pair. The centre (mean of the live points of both sides) is
/// subtracted before the expanded cost |p|^2 + |q|^2 - 2 p.q is formed in float32, which
/// keeps the cancellation small when the clouds sit far from the origin.
std::vector<PairData> preparePairs(const Problem& p)
{
    std::vector<PairData> pairs(std::size_t(p.B));
    const int d = p.d;
    for (int b = 0; b < p.B; ++b) {
        PairData& pd = pairs[std::size_t(b)];
        pd.b = b;
        pd.eps = p.eps[b];
        pd.x.raw = p.x ? p.x + long(b) * p.N * d : nullptr;
        pd.x.logw = p.loga ? p.loga + long(b) * p.N : nullptr;
        pd.x.length = p.N;
        pd.y.raw = p.y ? p.y + long(b) * p.M * d : nullptr;
        pd.y.logw = p.logb ? p.logb + long(b) * p.M : nullptr;
        pd.y.length = p.M;
        std::vector<double> sum(std::size_t(d), 0.0);
        for (Side* s : { &pd.x, &pd.y }) {
            for (int i = 0; i < s->length; ++i) {
                if (s->logw[i] > kNegInf) {
                    s->live.push_back(i);
                    for (int k = 0; k < d; ++k) {
                        sum[std::size_t(k)] += double(s->raw[long(i) * d + k]);
                    }
                }
            }
        }
        const std::size_t count = pd.x.live.size() + pd.y.live.size();
        pd.center.assign(std::size_t(d), 0.0f);
        for (int k = 0; k < d && count > 0; ++k) {
            pd.center[std::size_t(k)] = float(sum[std::size_t(k)] / double(count));
        }
        if (pd.active()) {
            WFM_CHECK(std::isfinite(pd.eps) && pd.eps > 0.0f,
                "fused Sinkhorn: eps must be positive and finite, got ", pd.eps, " for pair ", b);
        }
    }
    return pairs;
}

/// Allocates a column store (padding entries: h = -inf, coordinates 0, index 0).
void allocColumns(const PairData& pd, const Side& s, int d, ColumnStore& cs)
{
    const int n = int(s.live.size());
    const int nPad = (n + kColumnPad - 1) / kColumnPad * kColumnPad;
    cs.h.assign(std::size_t(nPad), kNegInf);
    cs.coords.assign(std::size_t(nPad) * std::size_t(d), 0.0f);
    cs.index.assign(std::size_t(nPad), 0);
    std::copy(s.live.begin(), s.live.end(), cs.index.begin());
    Columns& v = cs.view;
    v.h = cs.h.data();
    v.coords = cs.coords.data();
    v.index = cs.index.data();
    v.n = n;
    v.nPad = nPad;
    v.d = d;
    v.coordScale = float(2.0 * kLog2e / double(pd.eps));
    v.raw = s.raw;
    v.logw = s.logw;
}

/// Fills live columns [j0, j1) of a store from the side's current potential pot (O(d) each).
void fillColumns(const PairData& pd, const Side& s, const float* pot, int d, ColumnStore& cs,
    int j0, int j1)
{
    const double eps = double(pd.eps);
    const float scale = cs.view.coordScale;
    const long nPad = cs.view.nPad;
    for (int jj = j0; jj < j1; ++jj) {
        const int j = s.live[std::size_t(jj)];
        double n2 = 0.0;
        for (int k = 0; k < d; ++k) {
            const float c = s.raw[long(j) * d + k] - pd.center[std::size_t(k)];
            n2 += double(c) * double(c);
            cs.coords[std::size_t(k * nPad + jj)] = c * scale;
        }
        cs.h[std::size_t(jj)]
            = float(kLog2e * (double(s.logw[j]) + (double(pot[j]) - n2) / eps));
    }
}

/// Bounds used by topK's float pre-filter.
void columnBounds(ColumnStore& cs)
{
    const Columns& v = cs.view;
    float hMax = 0.0f;
    double qMax = 0.0;
    for (int j = 0; j < v.n; ++j) {
        hMax = std::max(hMax, std::abs(cs.h[std::size_t(j)]));
        double q2 = 0.0;
        for (int k = 0; k < v.d; ++k) {
            const double c = cs.coords[std::size_t(long(k) * v.nPad + j)];
            q2 += c * c;
        }
        qMax = std::max(qMax, q2);
    }
    cs.view.hAbsMax = hMax;
    cs.view.coordNormMax = float(std::sqrt(qMax));
}

/// Per-worker scratch buffers (see detail::Scratch).
struct ScratchBuffer
{
    std::vector<float> floats;
    std::vector<double> doubles;
    std::vector<std::int64_t> ints;
    Scratch view;

    ScratchBuffer(int d, int k)
        : floats(std::size_t(kMaxRowBlock * d + d * kColumnPad))
        , doubles(std::size_t(d + 2 + k))
        , ints(std::size_t(k))
    {
        view.rowCoords = floats.data();
        view.lanes = floats.data() + kMaxRowBlock * d;
        view.acc = doubles.data();
        view.topValues = doubles.data() + d + 2;
        view.topIndices = ints.data();
    }
};

/// The worker threads of one public call. LibTorch's at::parallel_for runs serially in this
/// library (its OpenMP path is compiled into the caller only under -fopenmp, which wfm_core is
/// not built with), so the kernels use `threads` workers of their own: threads - 1 std::threads
/// started once per call and parked on a barrier between the phases of the call (one phase per
/// half-iteration). Items are handed out dynamically, since the cores may be shared; each item's
/// result depends only on its own rows, so results do not depend on the thread count.
class Team
{
public:
    explicit Team(int workers)
        : m_workers(std::max(1, workers))
        , m_start(m_workers)
        , m_done(m_workers)
    {
        for (int w = 1; w < m_workers; ++w) {
            m_threads.emplace_back([this, w] { loop(w); });
        }
    }
    ~Team()
    {
        if (!m_threads.empty()) {
            m_stop = true;
            m_start.arrive_and_wait();
            for (std::thread& t : m_threads) {
                t.join();
            }
        }
    }
    Team(const Team&) = delete;
    Team& operator=(const Team&) = delete;

    int size() const { return m_workers; }

    /// Calls fn(item, worker) for item in [0, nItems); returns when all are done.
    template <class Fn>
    void run(int nItems, const Fn& fn)
    {
        if (m_workers == 1 || nItems <= 1) {
            for (int i = 0; i < nItems; ++i) {
                fn(i, 0);
            }
            return;
        }
        m_fn = &fn;
        m_call = [](const void* f, int item, int worker) {
            (*static_cast<const Fn*>(f))(item, worker);
        };
        m_items = nItems;
        m_next.store(0, std::memory_order_relaxed);
        m_start.arrive_and_wait();
        work(0);
        m_done.arrive_and_wait();
    }

private:
    void loop(int w)
    {
        for (;;) {
            m_start.arrive_and_wait();
            if (m_stop) {
                return;
            }
            work(w);
            m_done.arrive_and_wait();
        }
    }
    // noexcept: a throwing item would leave the other workers waiting at the barrier forever;
    // the kernels do not throw, and a bug that makes one should terminate, not hang.
    void work(int w) noexcept
    {
        for (int i = m_next.fetch_add(1, std::memory_order_relaxed); i < m_items;
             i = m_next.fetch_add(1, std::memory_order_relaxed)) {
            m_call(m_fn, i, w);
        }
    }

    int m_workers;
    std::barrier<> m_start;
    std::barrier<> m_done;
    std::vector<std::thread> m_threads;
    const void* m_fn = nullptr;
    void (*m_call)(const void*, int, int) = nullptr;
    int m_items = 0;
    std::atomic<int> m_next { 0 };
    bool m_stop = false;
};

/// Below this many (row, column) evaluations per pass a thread hand-off costs more than it
/// saves.
constexpr double kMinParallelWork = 32768.0;
constexpr int kMaxThreads = 256;

/// Workers for a pass over the rows of one side: `threads` unless the pass is tiny.
int teamSize(const std::vector<PairData>& pairs, int threads)
{
    double work = 0.0;
    for (const PairData& pd : pairs) {
        if (pd.active()) {
            work += double(pd.x.live.size()) * double(pd.y.live.size());
        }
    }
    return work < kMinParallelWork ? 1 : std::clamp(threads, 1, kMaxThreads);
}

std::vector<ScratchBuffer> makeScratch(int workers, int d, int k)
{
    std::vector<ScratchBuffer> scratch;
    scratch.reserve(std::size_t(workers));
    for (int w = 0; w < workers; ++w) {
        scratch.emplace_back(d, k);
    }
    return scratch;
}

/// (pair, row block) items over the live rows of one side of every active pair. Blocks are
/// small enough that even B = 1 gives every worker several items.
std::vector<Item> rowItems(const std::vector<PairData>& pairs, bool ySide, int threads)
{
    long total = 0;
    for (const PairData& pd : pairs) {
        total += long((ySide ? pd.y : pd.x).live.size());
    }
    const long target = std::max<long>(1, total / std::max(1, 8 * threads));
    const int block = int(std::clamp<long>((target + 3) / 4 * 4, 4, kMaxRowBlock));
    std::vector<Item> items;
    for (int b = 0; b < int(pairs.size()); ++b) {
        const PairData& pd = pairs[std::size_t(b)];
        const int n = int((ySide ? pd.y : pd.x).live.size());
        for (int r = 0; r < n; r += block) {
            items.push_back({ b, r, std::min(n, r + block) });
        }
    }
    return items;
}

/// Fills the column stores of one side of every active pair from the potentials pot [B, L].
void fillAll(std::vector<PairData>& pairs, bool ySide, const float* pot, int d, Team& team)
{
    constexpr int kBlock = 8192;
    std::vector<Item> items;
    long total = 0;
    for (int b = 0; b < int(pairs.size()); ++b) {
        PairData& pd = pairs[std::size_t(b)];
        if (!pd.active()) {
            continue;
        }
        const Side& s = ySide ? pd.y : pd.x;
        (ySide ? pd.colY : pd.colX).view.pot = pot + long(pd.b) * s.length;
        const int n = int(s.live.size());
        total += n;
        for (int r = 0; r < n; r += kBlock) {
            items.push_back({ b, r, std::min(n, r + kBlock) });
        }
    }
    const auto fill = [&](int i, int) {
        const Item& it = items[std::size_t(i)];
        PairData& pd = pairs[std::size_t(it.pair)];
        const Side& s = ySide ? pd.y : pd.x;
        fillColumns(pd, s, pot + long(pd.b) * s.length, d, ySide ? pd.colY : pd.colX, it.r0,
            it.r1);
    };
    if (total >= 4 * kBlock) {
        team.run(int(items.size()), fill);
    } else {
        // Small problems: waking the workers costs more than the O(n d) work.
        for (int i = 0; i < int(items.size()); ++i) {
            fill(i, 0);
        }
    }
}

Rows rowsOf(const PairData& pd, bool ySide, const float* pot, int d)
{
    const Side& s = ySide ? pd.y : pd.x;
    Rows r;
    r.raw = s.raw;
    r.logw = s.logw;
    r.pot = pot + long(pd.b) * s.length;
    r.center = pd.center.data();
    r.index = s.live.data();
    r.n = int(s.live.size());
    r.d = d;
    r.eps = pd.eps;
    r.pair = pd.b;
    return r;
}

/// Sets the potentials of padded entries (and of every entry of a pair with an empty side) to 0.
void zeroDeadPotentials(const std::vector<PairData>& pairs, float* pot, bool ySide)
{
    for (const PairData& pd : pairs) {
        const Side& s = ySide ? pd.y : pd.x;
        float* q = pot + long(pd.b) * s.length;
        for (int i = 0; i < s.length; ++i) {
            if (!pd.active() || !(s.logw[i] > kNegInf)) {
                q[i] = 0.0f;
            }
        }
    }
}

/// Row items of the active pairs (rows of a pair with an empty opposite side keep the defaults).
std::vector<Item> passItems(const std::vector<PairData>& pairs, bool ySide, int threads)
{
    std::vector<Item> items = rowItems(pairs, ySide, threads);
    items.erase(std::remove_if(items.begin(), items.end(),
                    [&](const Item& it) { return !pairs[std::size_t(it.pair)].active(); }),
        items.end());
    return items;
}

} // namespace

const char* simdLevel()
{
    return isaName(activeIsa());
}

void iterate(const Problem& p, float* f, float* g, int iterations, int threads)
{
    checkProblem(p);
    WFM_CHECK(iterations >= 0, "fused Sinkhorn: negative iteration count ", iterations);
    if (p.B == 0 || p.N == 0 || p.M == 0) {
        // Every row or every column is missing: all LSEs are -inf, all potentials 0.
        std::fill(f, f + long(p.B) * p.N, 0.0f);
        std::fill(g, g + long(p.B) * p.M, 0.0f);
        return;
    }
    const int d = p.d;
    std::vector<PairData> pairs = preparePairs(p);
    zeroDeadPotentials(pairs, f, false);
    zeroDeadPotentials(pairs, g, true);
    if (iterations == 0) {
        return;
    }
    for (PairData& pd : pairs) {
        if (pd.active()) {
            allocColumns(pd, pd.x, d, pd.colX);
            allocColumns(pd, pd.y, d, pd.colY);
        }
    }
    Team team(teamSize(pairs, threads));
    const std::vector<Item> itemsX = passItems(pairs, false, team.size());
    const std::vector<Item> itemsY = passItems(pairs, true, team.size());
    std::vector<ScratchBuffer> scratch = makeScratch(team.size(), d, 1);
    const KernelSet& ks = kernels();
    for (int it = 0; it < iterations; ++it) {
        // g_j = -eps LSE_i(loga_i + (f_i - C_ij) / eps), then f from the new g.
        fillAll(pairs, false, f, d, team);
        team.run(int(itemsY.size()), [&](int i, int w) {
            const Item& item = itemsY[std::size_t(i)];
            const PairData& pd = pairs[std::size_t(item.pair)];
            ks.lse(rowsOf(pd, true, g, d), pd.colX.view, item.r0, item.r1,
                g + long(pd.b) * p.M, scratch[std::size_t(w)].view);
        });
        fillAll(pairs, true, g, d, team);
        team.run(int(itemsX.size()), [&](int i, int w) {
            const Item& item = itemsX[std::size_t(i)];
            const PairData& pd = pairs[std::size_t(item.pair)];
            ks.lse(rowsOf(pd, false, f, d), pd.colY.view, item.r0, item.r1,
                f + long(pd.b) * p.N, scratch[std::size_t(w)].view);
        });
    }
}

namespace {

/// Shared set-up of the single passes: pairs, and the column stores of one side filled from
/// that side's potential.
std::vector<PairData> preparePass(const Problem& p, bool columnsAreY, const float* colPot,
    bool bounds, int threads, std::unique_ptr<Team>& team)
{
    std::vector<PairData> pairs = preparePairs(p);
    for (PairData& pd : pairs) {
        if (pd.active()) {
            ColumnStore& cs = columnsAreY ? pd.colY : pd.colX;
            allocColumns(pd, columnsAreY ? pd.y : pd.x, p.d, cs);
        }
    }
    team = std::make_unique<Team>(teamSize(pairs, threads));
    fillAll(pairs, columnsAreY, colPot, p.d, *team);
    if (bounds) {
        for (PairData& pd : pairs) {
            if (pd.active()) {
                columnBounds(columnsAreY ? pd.colY : pd.colX);
            }
        }
    }
    return pairs;
}

void massPass(const Problem& p, const float* f, const float* g, bool ySide,
    const MassOutputs& outAll, int threads)
{
    const bool colsY = !ySide;
    std::unique_ptr<Team> team;
    std::vector<PairData> pairs = preparePass(p, colsY, colsY ? g : f, false, threads, team);
    const std::vector<Item> items = passItems(pairs, ySide, team->size());
    std::vector<ScratchBuffer> scratch = makeScratch(team->size(), p.d, 1);
    const KernelSet& ks = kernels();
    const int L = ySide ? p.M : p.N;
    team->run(int(items.size()), [&](int i, int w) {
        const Item& item = items[std::size_t(i)];
        const PairData& pd = pairs[std::size_t(item.pair)];
        MassOutputs out;
        const long off = long(pd.b) * L;
        out.mass = outAll.mass ? outAll.mass + off : nullptr;
        out.cost = outAll.cost ? outAll.cost + off : nullptr;
        out.weighted = outAll.weighted ? outAll.weighted + off * p.d : nullptr;
        ks.mass(rowsOf(pd, ySide, ySide ? g : f, p.d), colsY ? pd.colY.view : pd.colX.view,
            item.r0, item.r1, out, scratch[std::size_t(w)].view);
    });
}

} // namespace

void rowPass(const Problem& p, const float* f, const float* g, const RowOutputs& out, int threads)
{
    checkProblem(p);
    const long rows = long(p.B) * p.N;
    if (out.mass) {
        std::fill(out.mass, out.mass + rows, 0.0);
    }
    if (out.cost) {
        std::fill(out.cost, out.cost + rows, 0.0);
    }
    if (out.weightedY) {
        std::fill(out.weightedY, out.weightedY + rows * p.d, 0.0f);
    }
    if (out.argmax) {
        std::fill(out.argmax, out.argmax + rows, -1);
    }
    if (out.sampled) {
        std::fill(out.sampled, out.sampled + rows, -1);
    }
    if (rows == 0 || p.M == 0) {
        return;
    }
    if (out.mass || out.cost || out.weightedY) {
        massPass(p, f, g, false, MassOutputs { out.mass, out.cost, out.weightedY }, threads);
    }
    if (!out.argmax && !out.sampled) {
        return;
    }
    std::unique_ptr<Team> team;
    std::vector<PairData> pairs = preparePass(p, true, g, out.argmax != nullptr, threads, team);
    const std::vector<Item> items = passItems(pairs, false, team->size());
    std::vector<ScratchBuffer> scratch = makeScratch(team->size(), p.d, 1);
    const KernelSet& ks = kernels();
    std::vector<float> best(out.argmax ? std::size_t(rows) : 0);
    team->run(int(items.size()), [&](int i, int w) {
        const Item& item = items[std::size_t(i)];
        const PairData& pd = pairs[std::size_t(item.pair)];
        const Rows r = rowsOf(pd, false, f, p.d);
        const long off = long(pd.b) * p.N;
        if (out.argmax) {
            ks.topK(r, pd.colY.view, item.r0, item.r1, 1, best.data() + off, out.argmax + off,
                scratch[std::size_t(w)].view);
        }
        if (out.sampled) {
            ks.sample(r, pd.colY.view, item.r0, item.r1, out.seed, out.sampled + off,
                scratch[std::size_t(w)].view);
        }
    });
}

void colMass(const Problem& p, const float* f, const float* g, double* mass, int threads)
{
    checkProblem(p);
    std::fill(mass, mass + long(p.B) * p.M, 0.0);
    if (p.B == 0 || p.N == 0 || p.M == 0) {
        return;
    }
    // The column pass is the g-style pass: rows = y, columns = x with potential f.
    massPass(p, f, g, true, MassOutputs { mass, nullptr, nullptr }, threads);
}

void topK(const Problem& p, const float* f, const float* g, int k, float* values,
    std::int64_t* indices, int threads)
{
    checkProblem(p);
    WFM_CHECK(k >= 1, "fused Sinkhorn topK: k must be >= 1, got ", k);
    const long rows = long(p.B) * p.N;
    std::fill(values, values + rows * k, kNegInf);
    std::fill(indices, indices + rows * k, -1);
    if (rows == 0 || p.M == 0) {
        return;
    }
    std::unique_ptr<Team> team;
    std::vector<PairData> pairs = preparePass(p, true, g, true, threads, team);
    const std::vector<Item> items = passItems(pairs, false, team->size());
    std::vector<ScratchBuffer> scratch = makeScratch(team->size(), p.d, k);
    const KernelSet& ks = kernels();
    team->run(int(items.size()), [&](int i, int w) {
        const Item& item = items[std::size_t(i)];
        const PairData& pd = pairs[std::size_t(item.pair)];
        const long off = long(pd.b) * p.N;
        ks.topK(rowsOf(pd, false, f, p.d), pd.colY.view, item.r0, item.r1, k,
            values + off * k, indices + off * k, scratch[std::size_t(w)].view);
    });
}

namespace {

/// max_q |xr - c_q|^2 over n columns stored as d runs of n coordinates. Fixed-width blocks of
/// lanes with lane-wise maxima (no reduction in the inner loops), so the compiler vectorises it.
float rowMaxCost(const float* xr, int d, const float* c, int n)
{
    constexpr int kLanes = 16;
    float lanes[kLanes] = {};
    int q0 = 0;
    for (; q0 + kLanes <= n; q0 += kLanes) {
        float acc[kLanes] = {};
        for (int k = 0; k < d; ++k) {
            const float xk = xr[k];
            const float* ck = c + std::size_t(k) * std::size_t(n) + std::size_t(q0);
            for (int l = 0; l < kLanes; ++l) {
                const float t = xk - ck[l];
                acc[l] += t * t;
            }
        }
        for (int l = 0; l < kLanes; ++l) {
            lanes[l] = lanes[l] > acc[l] ? lanes[l] : acc[l];
        }
    }
    float best = 0.0f;
    for (int l = 0; l < kLanes; ++l) {
        best = std::max(best, lanes[l]);
    }
    for (; q0 < n; ++q0) {
        float acc = 0.0f;
        for (int k = 0; k < d; ++k) {
            const float t = xr[k] - c[std::size_t(k) * std::size_t(n) + std::size_t(q0)];
            acc += t * t;
        }
        best = std::max(best, acc);
    }
    return best;
}

} // namespace

void maxCost(const Problem& p, float* out, int threads)
{
    WFM_CHECK(p.B >= 0 && p.N >= 0 && p.M >= 0 && p.d >= 1, "fused Sinkhorn maxCost: bad sizes B=",
        p.B, " N=", p.N, " M=", p.M, " d=", p.d);
    std::fill(out, out + p.B, 0.0f);
    if (p.B == 0 || p.N == 0 || p.M == 0) {
        return;
    }
    WFM_CHECK(p.x && p.y && p.loga && p.logb, "fused Sinkhorn maxCost: missing input arrays");
    const int d = p.d;
    const double work = double(p.N) * double(p.M) * double(p.B);
    Team team(work < kMinParallelWork ? 1 : std::clamp(threads, 1, kMaxThreads));
    // Rows are visited in decreasing order of an upper bound of their largest cost,
    // (|x_i - c| + R)^2 with c the centre of the live columns and R their radius, and the scan
    // stops once the bound cannot beat the best cost found: the result is the brute-force
    // maximum (the bound has a margin for float32 rounding), usually after a few rows.
    constexpr double kRoundingMargin = 1.0 + 1e-6;
    for (int b = 0; b < p.B; ++b) {
        const float* logb = p.logb + long(b) * p.M;
        const float* y = p.y + long(b) * p.M * d;
        std::vector<int> live;
        for (int j = 0; j < p.M; ++j) {
            if (logb[j] > kNegInf) {
                live.push_back(j);
            }
        }
        const int n = int(live.size());
        if (n == 0) {
            continue;
        }
        // Live columns as structure of arrays (d runs of n coordinates), their centre and radius.
        std::vector<float> c(std::size_t(n) * std::size_t(d));
        std::vector<double> centre(std::size_t(d), 0.0);
        for (int k = 0; k < d; ++k) {
            for (int q = 0; q < n; ++q) {
                const float v = y[long(live[std::size_t(q)]) * d + k];
                c[std::size_t(k) * std::size_t(n) + std::size_t(q)] = v;
                centre[std::size_t(k)] += v;
            }
            centre[std::size_t(k)] /= n;
        }
        double radius = 0.0;
        for (int q = 0; q < n; ++q) {
            double s2 = 0.0;
            for (int k = 0; k < d; ++k) {
                const double t = double(c[std::size_t(k) * std::size_t(n) + std::size_t(q)]) - centre[std::size_t(k)];
                s2 += t * t;
            }
            radius = std::max(radius, std::sqrt(s2));
        }
        const float* loga = p.loga + long(b) * p.N;
        const float* x = p.x + long(b) * p.N * d;
        std::vector<std::pair<double, int>> rows; // (bound, row), largest bound first
        for (int r = 0; r < p.N; ++r) {
            if (loga[r] > kNegInf) {
                double s2 = 0.0;
                for (int k = 0; k < d; ++k) {
                    const double t = double(x[long(r) * d + k]) - centre[std::size_t(k)];
                    s2 += t * t;
                }
                const double reach = std::sqrt(s2) + radius;
                rows.emplace_back(reach * reach * kRoundingMargin, r);
            }
        }
        std::sort(rows.begin(), rows.end(), [](const auto& u, const auto& v) { return u.first > v.first; });
        // Chunks of rows in bound order, evaluated by the team; chunks grow while the bound
        // keeps the scan going.
        float best = 0.0f;
        std::size_t pos = 0;
        std::size_t chunk = std::size_t(4 * team.size());
        std::vector<float> partial;
        while (pos < rows.size() && rows[pos].first > double(best)) {
            const std::size_t end = std::min(rows.size(), pos + chunk);
            const int pieces = int(std::min<std::size_t>(end - pos, std::size_t(team.size()) * 4));
            partial.assign(std::size_t(pieces), 0.0f);
            team.run(pieces, [&](int i, int) {
                float m = 0.0f;
                for (std::size_t r = pos + std::size_t(i); r < end; r += std::size_t(pieces)) {
                    m = std::max(m, rowMaxCost(x + long(rows[r].second) * d, d, c.data(), n));
                }
                partial[std::size_t(i)] = m;
            });
            for (float m : partial) {
                best = std::max(best, m);
            }
            pos = end;
            chunk = std::min<std::size_t>(chunk * 2, 4096);
        }
        out[b] = best;
    }
}

} // namespace wfm::ot::kernels::cpu
