#pragma once
// Private half of the fused CPU Sinkhorn kernels (see ../FusedKernels.h for the contract).
//
// FusedCpu.cpp prepares, once per half-iteration and pair, the "columns" of the pass (the side
// whose potential is held fixed) in log2 units and transposed (structure-of-arrays) layout, cuts
// the live rows into blocks of at most kMaxRowBlock and hands each (pair, row block) to one of the
// per-instruction-set kernel sets below. The kernels never see tensors or std containers.
//
// This header is included by translation units compiled with -mavx512f / -mavx2. To keep
// AVX-512 code out of functions the linker could pick for other callers (ODR), it declares only
// plain structs, enums, constants, non-inline functions and two `static` (internal-linkage)
// helpers; the kernel bodies in the second half (compiled only where WFM_FUSED_CPU_KERNEL_BODY
// is defined) live in an anonymous namespace and use no std templates.

#include "../FusedKernels.h"

#include <cstdint>

namespace wfm::ot::kernels::cpu::detail {

/// Instruction-set paths; every machine has Portable.
enum class Isa : int { Portable = 0, Avx2 = 1, Avx512 = 2 };

/// Rows of one work item (live rows, in order of the live list).
constexpr int kMaxRowBlock = 64;
/// Columns per cache block; the float per-lane partial sums are folded into double after each.
constexpr int kColumnChunk = 2048;
/// Column arrays are padded to a multiple of this (the widest vector).
constexpr int kColumnPad = 16;
/// A single-pass row sum outside [2^-kShiftMargin, 2^kShiftMargin] (relative to the shift
/// guessed from the previous potential) is recomputed with the exact maximum as the shift.
constexpr int kShiftMargin = 60;

/// The fixed side of a half-pass, prepared by FusedCpu.cpp. With c the pair's centre,
/// s = 2 log2(e) / eps and q_j the live points of this side:
///   h[j] = log2(e) * (logw_j + (pot_j - |q_j - c|^2) / eps)        (j < n; -inf for n <= j < nPad)
///   coords[k * nPad + j] = s * (q_j - c)_k                          (0 for j >= n)
/// so that for a row point p (centred pc = p - c)
///   log2(e) * (logw_j + (pot_j - |p - q_j|^2) / eps) = h[j] + <pc, coords_j> - log2(e) |pc|^2 / eps.
struct Columns
{
    const float* h = nullptr;             ///< [nPad]
    const float* coords = nullptr;        ///< [d * nPad]
    const std::int32_t* index = nullptr;  ///< [nPad] original index of each live column (0 in padding)
    int n = 0;                            ///< live columns
    int nPad = 0;                         ///< n rounded up to kColumnPad
    int d = 0;
    float coordScale = 0.0f;              ///< s
    float hAbsMax = 0.0f;                 ///< max_j |h[j]| over live columns
    float coordNormMax = 0.0f;            ///< max_j |coords_j| over live columns
    // Original arrays of the pair (for exact float64 re-evaluation of log P_ij).
    const float* raw = nullptr;           ///< [L, d] coordinates
    const float* logw = nullptr;          ///< [L]
    const float* pot = nullptr;           ///< [L]
};

/// The updated side of a half-pass (or the rows of rowPass/topK).
struct Rows
{
    const float* raw = nullptr;           ///< [L, d] coordinates of the pair
    const float* logw = nullptr;          ///< [L]
    const float* pot = nullptr;           ///< [L] current potential: the shift guess, the plan's f
    const float* center = nullptr;        ///< [d] the pair's centre c
    const std::int32_t* index = nullptr;  ///< [n] original index of each live row
    int n = 0;
    int d = 0;
    float eps = 0.0f;                     ///< absolute entropic regularisation of the pair
    int pair = 0;                         ///< b (hashed into the sampling noise)
};

/// Per-worker scratch (allocated by FusedCpu.cpp for each worker of a call).
struct Scratch
{
    float* rowCoords = nullptr;           ///< [kMaxRowBlock * d] centred row coordinates (>= 2 d)
    float* lanes = nullptr;               ///< [d * kColumnPad] per-lane accumulators
    double* acc = nullptr;                ///< [d + 2] row accumulators
    double* topValues = nullptr;          ///< [k]
    std::int64_t* topIndices = nullptr;   ///< [k]
};

/// Requested per-row sums of KernelSet::mass (null pointers are skipped), by original row.
struct MassOutputs
{
    double* mass = nullptr;               ///< [L] sum_j P_ij
    double* cost = nullptr;               ///< [L] sum_j P_ij |p_i - q_j|^2
    float* weighted = nullptr;            ///< [L, d] sum_j P_ij q_j
};

/// Row-range entry points of one instruction set. Rows [r0, r1) of rows.index, r1 - r0 at most
/// kMaxRowBlock; outputs are indexed by the original row index.
struct KernelSet
{
    /// The Sinkhorn update pot_i = |p_i - c|^2 - eps ln2 log2sum_j 2^(h_j + <p_i - c, coords_j>)
    /// (0 when no column is live), written to out (may alias rows.pot).
    void (*lse)(const Rows& rows, const Columns& cols, int r0, int r1, float* out,
        const Scratch& scratch);
    /// Row sums of the plan P_ij = w_i exp((pot_i + colpot_j - C_ij) / eps) w_j.
    void (*mass)(const Rows& rows, const Columns& cols, int r0, int r1, const MassOutputs& out,
        const Scratch& scratch);
    /// The k largest log P_ij per row, exact in float64, ties by the smaller original column.
    void (*topK)(const Rows& rows, const Columns& cols, int r0, int r1, int k, float* values,
        std::int64_t* indices, const Scratch& scratch);
    /// Gumbel-max draw of a column per row: argmax_j log P_ij + G(seed, b, i, j).
    void (*sample)(const Rows& rows, const Columns& cols, int r0, int r1, std::uint64_t seed,
        std::int64_t* out, const Scratch& scratch);
};

const KernelSet& portableKernels();
const KernelSet& avx2Kernels();
const KernelSet& avx512Kernels();

/// True when this CPU (and OS) can run the given path.
bool isaSupported(Isa isa);
/// The path the public functions use now: the override if set, else the best supported one.
Isa activeIsa();
/// Test/benchmark hook: force a path (throws wfm::ConfigError when unsupported).
void setIsaOverride(Isa isa);
/// Back to automatic selection.
void clearIsaOverride();

/// 64-bit finaliser (splitmix64 constants); static so that each translation unit has its own.
static inline std::uint64_t mix64(std::uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/// Key of row i of pair b for the sampling noise: the uniform of column j is
/// U_ij = ((fmix32(fmix32(j * 0x9E3779B9 + lo) ^ hi) >> 9) + 0.5) / 2^23, lo/hi the halves of this.
static inline std::uint64_t sampleRowKey(std::uint64_t seed, int b, int i)
{
    std::uint64_t k = mix64(seed ^ (0x9E3779B97F4A7C15ULL * (std::uint64_t(b) + 1)));
    return mix64(k + 0xD1B54A32D192ED03ULL * (std::uint64_t(i) + 1));
}

} // namespace wfm::ot::kernels::cpu::detail

#ifdef WFM_FUSED_CPU_KERNEL_BODY
// ------------------------------------------------------------------------------------------------
// Kernel bodies, written once over a vector type V and instantiated per instruction set by
// FusedCpu_avx512.cpp, FusedCpu_avx2.cpp and FusedCpu.cpp (portable). V provides:
//   W; F (W floats), I (W int32), M (lane mask); zero, set1, load, store, add, sub, mul, fma(a,b,c)
//   = a*b+c, max, div, exp2 (clamped below, never subnormal), tailMask(r) (lanes < r),
//   maskAdd(acc, m, v), gt(a, b), bits(m), select(m, a, b); on int lanes iload, istore, iset1,
//   iadd, imul (low 32 bits), ixor, iand, ior, isrl<n> (logical), iselect(m, a, b), iota, ltof
//   (int32 -> float) and the bit casts fasi (float -> int) / iasf (int -> float).
namespace {

using namespace wfm::ot::kernels::cpu::detail;

constexpr double kLog2e = 1.4426950408889634074;
constexpr double kLn2 = 0.69314718055994530942;

inline int minInt(int a, int b) { return a < b ? a : b; }

// Horner coefficients of the minimax degree-5 polynomial for 2^r on [-1/2, 1/2]
// (relative error 7.5e-8, below float32 rounding).
constexpr float kExp2C0 = 1.0000000716546822f;
constexpr float kExp2C1 = 0.6931469670647331f;
constexpr float kExp2C2 = 0.24022119723848476f;
constexpr float kExp2C3 = 0.05550713273542586f;
constexpr float kExp2C4 = 0.00967554133421605f;
constexpr float kExp2C5 = 0.0013276471979478776f;

// The same for 2^r on [0, 1) (relative error 7.5e-8), for paths that reduce with floor.
constexpr float kExp2U0 = 0.9999999250635297f;
constexpr float kExp2U1 = 0.6931530732000754f;
constexpr float kExp2U2 = 0.24015361704533508f;
constexpr float kExp2U3 = 0.05582631805004022f;
constexpr float kExp2U4 = 0.008989340094708692f;
constexpr float kExp2U5 = 0.001877576673370389f;

template <class V>
inline typename V::F exp2PolyUnit(typename V::F r)
{
    using F = typename V::F;
    F p = V::fma(V::set1(kExp2U5), r, V::set1(kExp2U4));
    p = V::fma(p, r, V::set1(kExp2U3));
    p = V::fma(p, r, V::set1(kExp2U2));
    p = V::fma(p, r, V::set1(kExp2U1));
    return V::fma(p, r, V::set1(kExp2U0));
}

template <class V>
inline typename V::F exp2Poly(typename V::F r)
{
    using F = typename V::F;
    F p = V::fma(V::set1(kExp2C5), r, V::set1(kExp2C4));
    p = V::fma(p, r, V::set1(kExp2C3));
    p = V::fma(p, r, V::set1(kExp2C2));
    p = V::fma(p, r, V::set1(kExp2C1));
    return V::fma(p, r, V::set1(kExp2C0));
}

/// Natural-log series ln m = 2 atanh(s), s = (m-1)/(m+1), for x = 2^e m, m in [sqrt(1/2), sqrt 2)
/// (|s| <= 0.172, truncation error 3e-8), returned in log2 units.
template <class V>
inline typename V::F log2Approx(typename V::F x)
{
    using F = typename V::F;
    using I = typename V::I;
    I b = V::fasi(x);
    I e = V::iadd(V::template isrl<23>(b), V::iset1(-127));
    F m = V::iasf(V::ior(V::iand(b, V::iset1(0x007fffff)), V::iset1(0x3f800000)));
    auto big = V::gt(m, V::set1(1.41421356f));
    m = V::select(big, V::mul(m, V::set1(0.5f)), m);
    e = V::iselect(big, V::iadd(e, V::iset1(1)), e);
    F one = V::set1(1.0f);
    F s = V::div(V::sub(m, one), V::add(m, one));
    F z = V::mul(s, s);
    F series = V::fma(z, V::set1(1.0f / 9.0f), V::set1(1.0f / 7.0f));
    series = V::fma(series, z, V::set1(1.0f / 5.0f));
    series = V::fma(series, z, V::set1(1.0f / 3.0f));
    series = V::fma(series, z, one);
    F lnm = V::mul(V::mul(s, series), V::set1(2.0f));
    return V::fma(lnm, V::set1(float(kLog2e)), V::ltof(e));
}

/// murmur3's 32-bit finaliser, lane-wise.
template <class V>
inline typename V::I fmix32(typename V::I h)
{
    h = V::ixor(h, V::template isrl<16>(h));
    h = V::imul(h, V::iset1(int(0x85ebca6bu)));
    h = V::ixor(h, V::template isrl<13>(h));
    h = V::imul(h, V::iset1(int(0xc2b2ae35u)));
    return V::ixor(h, V::template isrl<16>(h));
}

template <class V>
inline double reduceAdd(typename V::F v)
{
    float lanes[V::W];
    V::store(lanes, v);
    double s = 0.0;
    for (int l = 0; l < V::W; ++l) {
        s += double(lanes[l]);
    }
    return s;
}

template <class V>
inline float reduceMax(typename V::F v)
{
    float lanes[V::W];
    V::store(lanes, v);
    float m = lanes[0];
    for (int l = 1; l < V::W; ++l) {
        m = lanes[l] > m ? lanes[l] : m;
    }
    return m;
}

/// Per-row constants shared by the kernels: centred coordinates (into xs), |pc|^2 and the shift
/// guess log2(e) (|pc|^2 - pot_i) / eps (the previous log2-sum of the row).
struct RowInfo
{
    int i;
    double norm2;
    float shift;
};

inline RowInfo rowInfo(const Rows& rows, int r, float* xs)
{
    const int d = rows.d;
    const int i = rows.index[r];
    double n2 = 0.0;
    for (int k = 0; k < d; ++k) {
        const float v = rows.raw[long(i) * d + k] - rows.center[k];
        xs[k] = v;
        n2 += double(v) * double(v);
    }
    const double shift = (n2 - double(rows.pot[i])) * kLog2e / double(rows.eps);
    return { i, n2, float(shift) };
}

/// t_j = h_j + <xs, coords_j> for one vector of columns starting at j (generic d).
template <class V, int D>
inline typename V::F dotColumns(const Columns& cols, const float* xs, int d, int j)
{
    typename V::F t = V::load(cols.h + j);
    const int dd = D > 0 ? D : d;
    for (int k = 0; k < dd; ++k) {
        t = V::fma(V::set1(xs[k]), V::load(cols.coords + long(k) * cols.nPad + j), t);
    }
    return t;
}

/// Exact log2-sum of one row: max pass, then a sum pass shifted by the max.
template <class V, int D>
double exactLog2Sum(const Columns& cols, const float* xs, int d)
{
    using F = typename V::F;
    const int n = cols.n;
    F mv = V::set1(-__builtin_inff());
    for (int j = 0; j < n; j += V::W) {
        mv = V::max(mv, dotColumns<V, D>(cols, xs, d, j)); // padding has h = -inf
    }
    const float m = reduceMax<V>(mv);
    if (!(m > -__builtin_inff()) || m == __builtin_inff() || m != m) {
        return double(m);
    }
    const F sv = V::set1(m);
    double total = 0.0;
    for (int c0 = 0; c0 < n; c0 += kColumnChunk) {
        const int c1 = minInt(n, c0 + kColumnChunk);
        F acc = V::zero();
        int j = c0;
        for (; j + V::W <= c1; j += V::W) {
            acc = V::add(acc, V::exp2(V::sub(dotColumns<V, D>(cols, xs, d, j), sv)));
        }
        if (j < c1) {
            acc = V::maskAdd(acc, V::tailMask(c1 - j),
                V::exp2(V::sub(dotColumns<V, D>(cols, xs, d, j), sv)));
        }
        total += reduceAdd<V>(acc);
    }
    return double(m) + __builtin_log2(total);
}

/// Single-pass shifted sums of R rows over columns [c0, c1) (the hot loop). xs holds the R rows'
/// centred coordinates (stride d), shift their shifts; the sums are added to out.
template <class V, int D, int R>
inline void tileSums(const Columns& cols, const float* xs, int d, const float* shift, int c0,
    int c1, double* out)
{
    using F = typename V::F;
    const long nPad = cols.nPad;
    F acc[R];
    F sh[R];
    for (int r = 0; r < R; ++r) {
        acc[r] = V::zero();
        sh[r] = V::set1(shift[r]);
    }
    if constexpr (D > 0) {
        F xv[R][D];
        for (int r = 0; r < R; ++r) {
            for (int k = 0; k < D; ++k) {
                xv[r][k] = V::set1(xs[r * d + k]);
            }
        }
        int j = c0;
        for (; j + V::W <= c1; j += V::W) {
            const F hv = V::load(cols.h + j);
            F yv[D];
            for (int k = 0; k < D; ++k) {
                yv[k] = V::load(cols.coords + k * nPad + j);
            }
            for (int r = 0; r < R; ++r) {
                F t = hv;
                for (int k = 0; k < D; ++k) {
                    t = V::fma(xv[r][k], yv[k], t);
                }
                acc[r] = V::add(acc[r], V::exp2(V::sub(t, sh[r])));
            }
        }
        if (j < c1) {
            const auto mask = V::tailMask(c1 - j);
            const F hv = V::load(cols.h + j);
            for (int r = 0; r < R; ++r) {
                F t = hv;
                for (int k = 0; k < D; ++k) {
                    t = V::fma(xv[r][k], V::load(cols.coords + k * nPad + j), t);
                }
                acc[r] = V::maskAdd(acc[r], mask, V::exp2(V::sub(t, sh[r])));
            }
        }
    } else {
        int j = c0;
        for (; j < c1; j += V::W) {
            F t[R];
            const F hv = V::load(cols.h + j);
            for (int r = 0; r < R; ++r) {
                t[r] = hv;
            }
            for (int k = 0; k < d; ++k) {
                const F yv = V::load(cols.coords + k * nPad + j);
                for (int r = 0; r < R; ++r) {
                    t[r] = V::fma(V::set1(xs[r * d + k]), yv, t[r]);
                }
            }
            if (j + V::W <= c1) {
                for (int r = 0; r < R; ++r) {
                    acc[r] = V::add(acc[r], V::exp2(V::sub(t[r], sh[r])));
                }
            } else {
                const auto mask = V::tailMask(c1 - j);
                for (int r = 0; r < R; ++r) {
                    acc[r] = V::maskAdd(acc[r], mask, V::exp2(V::sub(t[r], sh[r])));
                }
            }
        }
    }
    for (int r = 0; r < R; ++r) {
        out[r] += reduceAdd<V>(acc[r]);
    }
}

template <class V, int D, int R>
void lseRows(const Rows& rows, const Columns& cols, int r0, int r1, float* out,
    const Scratch& scratch)
{
    const int d = rows.d;
    const int nr = r1 - r0;
    float* xs = scratch.rowCoords;
    double norm2[kMaxRowBlock];
    float shift[kMaxRowBlock];
    double sums[kMaxRowBlock];
    int idx[kMaxRowBlock];
    for (int r = 0; r < nr; ++r) {
        const RowInfo info = rowInfo(rows, r0 + r, xs + r * d);
        idx[r] = info.i;
        norm2[r] = info.norm2;
        shift[r] = info.shift;
        sums[r] = 0.0;
    }
    if (cols.n == 0) {
        for (int r = 0; r < nr; ++r) {
            out[idx[r]] = 0.0f;
        }
        return;
    }
    // Column blocks outside, row tiles inside: a block of coords + h stays in L1 for all rows.
    for (int c0 = 0; c0 < cols.n; c0 += kColumnChunk) {
        const int c1 = minInt(cols.n, c0 + kColumnChunk);
        int r = 0;
        for (; r + R <= nr; r += R) {
            tileSums<V, D, R>(cols, xs + r * d, d, shift + r, c0, c1, sums + r);
        }
        for (; r < nr; ++r) {
            tileSums<V, D, 1>(cols, xs + r * d, d, shift + r, c0, c1, sums + r);
        }
    }
    const double lo = __builtin_ldexp(1.0, -kShiftMargin);
    const double hi = __builtin_ldexp(1.0, kShiftMargin);
    const double eps = double(rows.eps);
    for (int r = 0; r < nr; ++r) {
        double l2;
        if (sums[r] >= lo && sums[r] <= hi) {
            l2 = double(shift[r]) + __builtin_log2(sums[r]);
        } else {
            // The guess was far off (first iteration, warm start from elsewhere): exact row.
            l2 = exactLog2Sum<V, D>(cols, xs + r * d, d);
        }
        out[idx[r]] = float(norm2[r] - eps * kLn2 * l2);
    }
}

/// Row sums of the plan with one shift sigma (log2 units); returns false when the sum left the
/// safe range (caller retries with the exact maximum). Accumulates sum 2^(t - sigma) into
/// res[0], its cost weights into res[1] and the coordinate weights into res[2 + k].
template <class V, int D>
bool massRowShifted(const Columns& cols, float* xs, int d, float sigma, bool wantCost,
    bool wantWeighted, float* lanes, double* res)
{
    using F = typename V::F;
    const long nPad = cols.nPad;
    const int n = cols.n;
    const F sv = V::set1(sigma);
    const float s = cols.coordScale;
    float* xq = xs + d; // the row point in the scaled column units
    for (int k = 0; k < d; ++k) {
        xq[k] = xs[k] * s;
    }
    for (int k = 0; k < d + 2; ++k) {
        res[k] = 0.0;
    }
    for (int c0 = 0; c0 < n; c0 += kColumnChunk) {
        const int c1 = minInt(n, c0 + kColumnChunk);
        F accM = V::zero();
        F accC = V::zero();
        if (wantWeighted) {
            for (int k = 0; k < d; ++k) {
                V::store(lanes + k * V::W, V::zero());
            }
        }
        for (int j = c0; j < c1; j += V::W) {
            F e = V::exp2(V::sub(dotColumns<V, D>(cols, xs, d, j), sv));
            if (j + V::W > c1) {
                e = V::select(V::tailMask(c1 - j), e, V::zero());
            }
            accM = V::add(accM, e);
            if (wantCost) {
                F c = V::zero();
                for (int k = 0; k < d; ++k) {
                    const F diff = V::sub(V::load(cols.coords + k * nPad + j),
                        V::set1(xq[k]));
                    c = V::fma(diff, diff, c);
                }
                accC = V::fma(e, c, accC);
            }
            if (wantWeighted) {
                for (int k = 0; k < d; ++k) {
                    float* l = lanes + k * V::W;
                    V::store(l, V::fma(e, V::load(cols.coords + k * nPad + j), V::load(l)));
                }
            }
        }
        res[0] += reduceAdd<V>(accM);
        res[1] += reduceAdd<V>(accC);
        if (wantWeighted) {
            for (int k = 0; k < d; ++k) {
                res[2 + k] += reduceAdd<V>(V::load(lanes + k * V::W));
            }
        }
    }
    const double lo = __builtin_ldexp(1.0, -kShiftMargin);
    const double hi = __builtin_ldexp(1.0, kShiftMargin);
    return res[0] >= lo && res[0] <= hi;
}

template <class V, int D>
void massRows(const Rows& rows, const Columns& cols, int r0, int r1, const MassOutputs& out,
    const Scratch& scratch)
{
    const int d = rows.d;
    float* xs = scratch.rowCoords;
    double* res = scratch.acc; // [d + 2]
    const double s = double(cols.coordScale);
    for (int r = r0; r < r1; ++r) {
        const RowInfo info = rowInfo(rows, r, xs);
        const int i = info.i;
        const bool wantCost = out.cost != nullptr;
        const bool wantW = out.weighted != nullptr;
        double scale = 0.0; // 2^(sigma - shift) * w_i
        if (cols.n > 0) {
            float sigma = info.shift;
            if (!massRowShifted<V, D>(cols, xs, d, sigma, wantCost, wantW, scratch.lanes, res)) {
                // Potentials far from this row's balance: shift by the exact maximum instead.
                typename V::F mv = V::set1(-__builtin_inff());
                for (int j = 0; j < cols.n; j += V::W) {
                    mv = V::max(mv, dotColumns<V, D>(cols, xs, d, j));
                }
                sigma = reduceMax<V>(mv);
                massRowShifted<V, D>(cols, xs, d, sigma, wantCost, wantW, scratch.lanes, res);
            }
            scale = __builtin_exp2(double(sigma) - double(info.shift))
                * __builtin_exp(double(rows.logw[i]));
        } else {
            for (int k = 0; k < d + 2; ++k) {
                res[k] = 0.0;
            }
        }
        const double mass = scale * res[0];
        if (out.mass) {
            out.mass[i] = mass;
        }
        if (out.cost) {
            out.cost[i] = scale * res[1] / (s * s);
        }
        if (out.weighted) {
            for (int k = 0; k < d; ++k) {
                out.weighted[long(i) * d + k]
                    = float(scale * res[2 + k] / s + mass * double(rows.center[k]));
            }
        }
    }
}

/// log P_ij in float64 from the original arrays (the same formula as the reference).
inline double exactLogPlan(const Rows& rows, const Columns& cols, int i, int j)
{
    const int d = rows.d;
    const float* p = rows.raw + long(i) * d;
    const float* q = cols.raw + long(j) * d;
    double c = 0.0;
    for (int k = 0; k < d; ++k) {
        const double diff = double(p[k]) - double(q[k]);
        c += diff * diff;
    }
    return double(rows.logw[i]) + double(cols.logw[j])
        + (double(rows.pot[i]) + double(cols.pot[j]) - c) / double(rows.eps);
}

template <class V, int D>
void topKRows(const Rows& rows, const Columns& cols, int r0, int r1, int k, float* values,
    std::int64_t* indices, const Scratch& scratch)
{
    using F = typename V::F;
    const int d = rows.d;
    float* xs = scratch.rowCoords;
    double* tv = scratch.topValues;
    std::int64_t* ti = scratch.topIndices;
    const double eps = double(rows.eps);
    for (int r = r0; r < r1; ++r) {
        const RowInfo info = rowInfo(rows, r, xs);
        const int i = info.i;
        // log P_ij = base + ln2 * t_ij, t_ij = h_j + <pc, coords_j> in float32. The float filter
        // admits everything within `slack` of the current k-th value (a bound on the float error
        // of t, relative to the magnitudes involved); admitted columns are ranked in float64.
        const double base = double(rows.logw[i]) + (double(rows.pot[i]) - info.norm2) / eps;
        const double bound = double(cols.hAbsMax)
            + __builtin_sqrt(info.norm2) * double(cols.coordNormMax);
        const double slack = 1e-3 + (2.0 * d + 16.0) * 1.2e-7 * bound;
        int count = 0;
        float thr = -__builtin_inff();
        for (int j = 0; j < cols.n; j += V::W) {
            const F t = dotColumns<V, D>(cols, xs, d, j);
            unsigned bits = V::bits(V::gt(t, V::set1(thr)));
            if (j + V::W > cols.n) {
                bits &= (1u << (cols.n - j)) - 1u;
            }
            while (bits != 0u) {
                const int lane = __builtin_ctz(bits);
                bits &= bits - 1u;
                const int jj = cols.index[j + lane];
                const double v = exactLogPlan(rows, cols, i, jj);
                if (count == k && !(v > tv[k - 1])) {
                    continue; // equal values keep the smaller (earlier) column
                }
                int pos = count < k ? count : k - 1;
                while (pos > 0 && tv[pos - 1] < v) {
                    tv[pos] = tv[pos - 1];
                    ti[pos] = ti[pos - 1];
                    --pos;
                }
                tv[pos] = v;
                ti[pos] = jj;
                if (count < k) {
                    ++count;
                }
                if (count == k) {
                    thr = float((tv[k - 1] - base) * kLog2e - slack);
                }
            }
        }
        for (int q = 0; q < k; ++q) {
            values[long(i) * k + q] = q < count ? float(tv[q]) : -__builtin_inff();
            indices[long(i) * k + q] = q < count ? ti[q] : -1;
        }
    }
}

template <class V, int D>
void sampleRows(const Rows& rows, const Columns& cols, int r0, int r1, std::uint64_t seed,
    std::int64_t* out, const Scratch& scratch)
{
    using F = typename V::F;
    using I = typename V::I;
    const int d = rows.d;
    float* xs = scratch.rowCoords;
    for (int r = r0; r < r1; ++r) {
        const RowInfo info = rowInfo(rows, r, xs);
        const int i = info.i;
        if (cols.n == 0) {
            out[i] = -1;
            continue;
        }
        const std::uint64_t key = sampleRowKey(seed, rows.pair, i);
        const I lo = V::iset1(int(std::uint32_t(key)));
        const I hiKey = V::iset1(int(std::uint32_t(key >> 32)));
        // Key_ij = t_ij - log2(-log2 U_ij): Gumbel-max in log2 units (the constant log2 ln 2 and
        // the row terms drop out of the argmax).
        F best = V::set1(-__builtin_inff());
        I bestJ = V::iset1(0);
        I lane = V::iota();
        for (int j = 0; j < cols.n; j += V::W) {
            const F t = dotColumns<V, D>(cols, xs, d, j);
            I h = V::iadd(V::imul(V::iload(cols.index + j), V::iset1(int(0x9E3779B9u))), lo);
            h = fmix32<V>(h);
            h = fmix32<V>(V::ixor(h, hiKey));
            const F u = V::fma(V::ltof(V::template isrl<9>(h)), V::set1(1.0f / 8388608.0f),
                V::set1(1.0f / 16777216.0f));
            const F e = V::sub(V::set1(0.0f), log2Approx<V>(u));
            F keyv = V::sub(t, log2Approx<V>(e));
            if (j + V::W > cols.n) {
                keyv = V::select(V::tailMask(cols.n - j), keyv, V::set1(-__builtin_inff()));
            }
            const auto better = V::gt(keyv, best);
            best = V::select(better, keyv, best);
            bestJ = V::iselect(better, V::iadd(lane, V::iset1(j)), bestJ);
        }
        float bv[V::W];
        int bj[V::W];
        V::store(bv, best);
        V::istore(bj, bestJ);
        int pick = -1;
        for (int l = 0; l < V::W; ++l) {
            if (bv[l] > -__builtin_inff()
                && (pick < 0 || bv[l] > bv[pick] || (bv[l] == bv[pick] && bj[l] < bj[pick]))) {
                pick = l;
            }
        }
        out[i] = pick < 0 ? -1 : cols.index[bj[pick]];
    }
}

/// The kernel set of V with d = 1, 2, 3 specialised and R rows per tile in the hot loop.
template <class V, int R>
struct KernelsFor
{
    static void lse(const Rows& rows, const Columns& cols, int r0, int r1, float* out,
        const Scratch& s)
    {
        switch (rows.d) {
        case 1:
            lseRows<V, 1, R>(rows, cols, r0, r1, out, s);
            break;
        case 2:
            lseRows<V, 2, R>(rows, cols, r0, r1, out, s);
            break;
        case 3:
            lseRows<V, 3, R>(rows, cols, r0, r1, out, s);
            break;
        default:
            lseRows<V, 0, R>(rows, cols, r0, r1, out, s);
            break;
        }
    }
    static void mass(const Rows& rows, const Columns& cols, int r0, int r1, const MassOutputs& out,
        const Scratch& s)
    {
        switch (rows.d) {
        case 2:
            massRows<V, 2>(rows, cols, r0, r1, out, s);
            break;
        case 3:
            massRows<V, 3>(rows, cols, r0, r1, out, s);
            break;
        default:
            massRows<V, 0>(rows, cols, r0, r1, out, s);
            break;
        }
    }
    static void topK(const Rows& rows, const Columns& cols, int r0, int r1, int k, float* values,
        std::int64_t* indices, const Scratch& s)
    {
        switch (rows.d) {
        case 2:
            topKRows<V, 2>(rows, cols, r0, r1, k, values, indices, s);
            break;
        case 3:
            topKRows<V, 3>(rows, cols, r0, r1, k, values, indices, s);
            break;
        default:
            topKRows<V, 0>(rows, cols, r0, r1, k, values, indices, s);
            break;
        }
    }
    static void sample(const Rows& rows, const Columns& cols, int r0, int r1, std::uint64_t seed,
        std::int64_t* out, const Scratch& s)
    {
        switch (rows.d) {
        case 2:
            sampleRows<V, 2>(rows, cols, r0, r1, seed, out, s);
            break;
        case 3:
            sampleRows<V, 3>(rows, cols, r0, r1, seed, out, s);
            break;
        default:
            sampleRows<V, 0>(rows, cols, r0, r1, seed, out, s);
            break;
        }
    }
    static constexpr KernelSet table() { return KernelSet { &lse, &mass, &topK, &sample }; }
};

} // namespace
#endif // WFM_FUSED_CPU_KERNEL_BODY
