#pragma once
// Device code of the fused Sinkhorn kernels (contract: ot/FusedKernels.h) and the host-side
// orchestration that launches it, written once over a Launcher so that the same code runs on a
// GPU (FusedSinkhorn.cu) and, for checks on machines without one, under the thread emulation of
// bench/gpu/emu/CudaEmulation.h. No CUDA runtime call and no LibTorch in here.
//
// The Sinkhorn update (rows A, columns B; for the g update A = y, B = x):
//   pot_i = -eps LSE_j(logw_j + (pot_j - |a_i - b_j|^2) / eps)
//         = |a_i - c|^2 - eps ln2 log2 sum_j 2^(H_j + <a_i - c, Y_j>),
//   H_j = log2e (logw_j + (pot_j - |b_j - c|^2) / eps),   Y_j = 2 log2e (b_j - c) / eps,
// with c the pair's centre (mean of its live points; the cost is translation invariant and the
// centring keeps |a - c|^2 / eps, the size of the cancelling terms, small). The inner loop is d
// FMAs + one exp2 + one add per entry. The exp2 runs with the row's previous log-sum as shift n
// (from its current potential), so there is no max pass: sum_j 2^(t_ij - n). If that sum leaves
// [2^-80, 2^100] (bad shift: first iterations, a jump of the potentials) the block recomputes
// the flagged rows: an exact max pass (FMAs only), then the shifted pass again with the max as
// shift. A fixed fraction of the exp2 evaluations
// runs as a polynomial on the FMA pipes (as FlashAttention-3 does) to go past the rate of the
// special-function unit.

#include "ot/FusedKernels.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define WFM_HD __host__ __device__ __forceinline__
#define WFM_KERNEL(threads, minBlocks) __global__ void __launch_bounds__(threads, minBlocks)
#define WFM_DYNAMIC_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
#elif !defined(WFM_CUDA_EMULATION)
#error "FusedSinkhornKernels.cuh needs nvcc or the emulation header bench/gpu/emu/CudaEmulation.h"
#endif

namespace wfm::ot::kernels::cuda::detail {

constexpr float kLog2eF = 1.44269504088896340736f;
constexpr float kLn2F = 0.69314718055994530942f;
constexpr double kLog2eD = 1.4426950408889634074;
constexpr float kInfF = std::numeric_limits<float>::infinity();
constexpr double kInfD = std::numeric_limits<double>::infinity();

/// Accepted range of the shifted sum sum_j 2^(t_ij - n): above 2^-80 the largest term is a
/// normal float well above the flush-to-zero limit even with 2^17 columns, so the terms within
/// 2^-24 of it are all represented; below 2^100 nothing overflowed (a polynomial term clamped
/// at its top is 2^125 and lands outside too).
constexpr float kShiftedSumMin = 0x1p-80f;
constexpr float kShiftedSumMax = 0x1p100f;
/// 1.5 * 2^23: adding it to |t| < 2^22 rounds t to an integer held in the low mantissa bits.
constexpr float kRoundMagic = 12582912.0f;
/// Shifts are clamped to +-2^21 so that kRoundMagic - n stays an exact float in [2^23, 2^24).
constexpr float kMaxShift = 2097152.0f;
/// Upper bound of the Gumbel noise -log(-log u) for u <= 1 - 2^-25 (it is 17.33).
constexpr double kGumbelBound = 17.5;


// Minimax (relative error 7.5e-8) degree-5 polynomial for 2^f on [-1/2, 1/2], Horner order.
constexpr float kExp2P0 = 1.0000000716546848f;
constexpr float kExp2P1 = 0.69314696706476038f;
constexpr float kExp2P2 = 0.24022119723840211f;
constexpr float kExp2P3 = 0.055507132734983196f;
constexpr float kExp2P4 = 0.0096755413344443934f;
constexpr float kExp2P5 = 0.0013276471992410971f;

WFM_HD int minInt(int a, int b) { return a < b ? a : b; }

WFM_HD std::uint32_t floatBits(float v)
{
#if defined(__CUDA_ARCH__)
    return __float_as_uint(v);
#else
    std::uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    return u;
#endif
}

WFM_HD float bitsFloat(std::uint32_t u)
{
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float v;
    std::memcpy(&v, &u, sizeof v);
    return v;
#endif
}

/// Programmatic dependent launch (sm_90): waits until the previous kernel of the stream has
/// finished and its writes are visible, then lets the next kernel start its blocks. A no-op when
/// the kernel was launched without the attribute, on older GPUs and under the emulation.
WFM_HD void waitForPreviousKernel()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// Per-row constants of the shifted exp2: 2^(t - n) for the row's integer shift n.
struct RowShift
{
    float negShift = 0.0f; ///< -n
    float magic = kRoundMagic; ///< 1.5 * 2^23 - n
    float lo = -125.0f; ///< n - 125
    float hi = 125.0f; ///< n + 125
};

WFM_HD RowShift makeRowShift(float n)
{
    RowShift s;
    s.negShift = -n;
    s.magic = kRoundMagic - n;
    s.lo = n - 125.0f;
    s.hi = n + 125.0f;
    return s;
}

/// 2^(t - n) on the FMA pipes (no special-function unit): t is clamped to n +- 125, rounded
/// to k with the magic constant (which carries -n, so the shift costs nothing), the fraction
/// t - k in [-1/2, 1/2] goes through the polynomial and k - n is added to the exponent bits.
/// Relative error about 1.5e-7; results within [2^-125.5, 2^125.5].
WFM_HD float polyExp2Shifted(float t, const RowShift& s)
{
    t = fminf(fmaxf(t, s.lo), s.hi);
    const float r = t + s.magic; // 1.5 * 2^23 + (round(t) - n), exact
    const float f = t - (r - s.magic); // t - round(t), exact
    float p = fmaf(kExp2P5, f, kExp2P4);
    p = fmaf(p, f, kExp2P3);
    p = fmaf(p, f, kExp2P2);
    p = fmaf(p, f, kExp2P1);
    p = fmaf(p, f, kExp2P0);
    // The low bits of r hold round(t) - n (two's complement, |.| <= 125); << 23 moves them into
    // the exponent field and drops the magic's own bits.
    return bitsFloat(floatBits(p) + (floatBits(r) << 23));
}

/// splitmix64 (Steele, Lea, Flood 2014): the state is advanced by the golden-ratio increment,
/// then mixed; splitmix64(k) is the first output of a generator seeded with k.
WFM_HD std::uint64_t splitmix64(std::uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// Counter-based uniform in (0, 1) of (seed, pair b, row i, column j): the top 24 bits of
/// splitmix64(seed ^ b*0x9E3779B97F4A7C15 ^ i*0xC2B2AE3D27D4EB4F ^ j*0x165667B19E3779F9),
/// plus 1/2, over 2^24.
WFM_HD double counterUniform(std::uint64_t seed, std::int64_t b, std::int64_t i, std::int64_t j)
{
    const std::uint64_t key = seed ^ (std::uint64_t(b) * 0x9E3779B97F4A7C15ull)
        ^ (std::uint64_t(i) * 0xC2B2AE3D27D4EB4Full) ^ (std::uint64_t(j) * 0x165667B19E3779F9ull);
    return (double(splitmix64(key) >> 40) + 0.5) * (1.0 / 16777216.0);
}

/// Gumbel noise -log(-log u) of counterUniform, in float64 (accurate log, unaffected by
/// --use_fast_math).
WFM_HD double gumbelNoise(std::uint64_t seed, std::int64_t b, std::int64_t i, std::int64_t j)
{
    return -log(-log(counterUniform(seed, b, i, j)));
}

// ------------------------------------------------------------------------------------------------
// Pair centres.

/// c_b = mean of the live points of x_b and y_b (0 when there is none). One block per pair.
template <int Threads>
WFM_KERNEL(Threads, 1) centerKernel(Problem p, float* centers)
{
    WFM_DYNAMIC_SMEM(smemRaw);
    double* sSum = reinterpret_cast<double*>(smemRaw); // [Threads]
    int* sCount = reinterpret_cast<int*>(sSum + Threads); // [Threads]
    const int tid = threadIdx.x;
    const int b = blockIdx.x;
    const std::int64_t xOff = std::int64_t(b) * p.N;
    const std::int64_t yOff = std::int64_t(b) * p.M;
    for (int k = 0; k < p.d; ++k) {
        double s = 0.0;
        int count = 0;
        for (int q = tid; q < p.N + p.M; q += Threads) {
            if (q < p.N) {
                if (p.loga[xOff + q] > -kInfF) {
                    s += p.x[(xOff + q) * p.d + k];
                    ++count;
                }
            } else if (p.logb[yOff + q - p.N] > -kInfF) {
                s += p.y[(yOff + q - p.N) * p.d + k];
                ++count;
            }
        }
        sSum[tid] = s;
        sCount[tid] = count;
        __syncthreads();
        for (int w = Threads / 2; w > 0; w /= 2) {
            if (tid < w) {
                sSum[tid] += sSum[tid + w];
                sCount[tid] += sCount[tid + w];
            }
            __syncthreads();
        }
        if (tid == 0) {
            centers[std::int64_t(b) * p.d + k]
                = sCount[0] > 0 ? float(sSum[0] / double(sCount[0])) : 0.0f;
        }
        __syncthreads();
    }
}

// ------------------------------------------------------------------------------------------------
// Sinkhorn half-iteration.

/// One half-iteration: rows A take the new potential, columns B are summed over.
struct HalfArgs
{
    const float* rowX = nullptr; ///< [B, NA, d]
    const float* rowLogw = nullptr; ///< [B, NA]
    float* rowPot = nullptr; ///< [B, NA] read (shift) and overwritten
    const float* colX = nullptr; ///< [B, NB, d]
    const float* colLogw = nullptr; ///< [B, NB]
    const float* colPot = nullptr; ///< [B, NB]
    const float* eps = nullptr; ///< [B]
    const float* center = nullptr; ///< [B, d]
    int NA = 0;
    int NB = 0;
    int d = 0;
    int rowBlocks = 0; ///< blocks per pair
    unsigned* fallbacks = nullptr; ///< optional: count of blocks that took the exact path
};

/// Dynamic shared memory of lseKernel: Y [d][Tile], H [Tile], flags [Threads] and, for the
/// run-time d version (D == 0), the rows [d][Threads] and the centre [d].
inline std::size_t lseSmemBytes(int D, int d, int threads, int tile)
{
    const std::size_t dd = std::size_t(D > 0 ? D : d);
    std::size_t floats = dd * tile + tile + threads;
    if (D == 0) {
        floats += dd * threads + dd;
    }
    return floats * sizeof(float);
}

/// The update of ot/FusedKernels.h for the rows of one block. D > 0: compile-time dimension, R
/// rows per thread held in registers; D == 0: run-time d, one row per thread held in shared
/// memory. The block streams tiles of (H_j, Y_j) through shared memory (structure of arrays,
/// float4 reads, every lane reading the same address). Poly = how many of the R x 4 entries of
/// each 4-column step use the polynomial exp2.
template <int D, int R, int Threads, int Tile, int Poly>
WFM_KERNEL(Threads, 4) lseKernel(HalfArgs a)
{
    static_assert(Threads % 32 == 0 && Tile % 4 == 0, "tile shape");
    static_assert(D > 0 || R == 1, "run-time d uses one row per thread");
    static_assert(Poly >= 0 && Poly <= 4 * R, "polynomial share");
    constexpr int DR = D > 0 ? D : 1; // register array extent
    WFM_DYNAMIC_SMEM(smemRaw);
    const int d = D > 0 ? D : a.d;
    float* sY = reinterpret_cast<float*>(smemRaw); // [d][Tile]
    float* sH = sY + d * Tile; // [Tile]
    int* sFlag = reinterpret_cast<int*>(sH + Tile); // [Threads]
    float* sX = reinterpret_cast<float*>(sFlag + Threads); // [d][Threads], D == 0 only
    float* sC = sX + d * Threads; // [d], D == 0 only

    // Launched as a programmatic dependent (runIterate): the potentials and the pair centres
    // come from the previous kernels, so wait for them before reading or writing anything.
    waitForPreviousKernel();
    const int tid = threadIdx.x;
    const int b = blockIdx.x / a.rowBlocks;
    const int rowBase = (blockIdx.x - b * a.rowBlocks) * (Threads * R);
    const float eps = a.eps[b];
    const float scale = kLog2eF / eps; // base-2 exponent units per cost unit
    const float yScale = 2.0f * scale;
    const float epsLn2 = eps * kLn2F;
    const float* center = a.center + std::int64_t(b) * d;
    const std::int64_t rowOff = std::int64_t(b) * a.NA;
    const std::int64_t colOff = std::int64_t(b) * a.NB;

    float cReg[DR];
    if constexpr (D > 0) {
#pragma unroll
        for (int k = 0; k < DR; ++k) {
            cReg[k] = center[k];
        }
    } else {
        cReg[0] = 0.0f;
        for (int k = tid; k < d; k += Threads) {
            sC[k] = center[k];
        }
        __syncthreads();
    }

    // Rows: centred coordinates, |a_i - c|^2 and the shift n = round(log2-sum of the row under
    // its current potential) = round((|a_i - c|^2 - pot_i) log2e / eps).
    float xr[R][DR];
    float nr2[R];
    RowShift shift[R];
    unsigned liveMask = 0; // bit r: row r of this thread is live
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int i = rowBase + r * Threads + tid;
        const bool live = i < a.NA && a.rowLogw[rowOff + i] > -kInfF;
        liveMask |= unsigned(live) << r;
        float s2 = 0.0f;
        float n = 0.0f;
        if constexpr (D > 0) {
#pragma unroll
            for (int k = 0; k < DR; ++k) {
                const float v = live ? a.rowX[(rowOff + i) * DR + k] - cReg[k] : 0.0f;
                xr[r][k] = v;
                s2 = fmaf(v, v, s2);
            }
        } else {
            xr[r][0] = 0.0f;
            for (int k = 0; k < d; ++k) {
                const float v = live ? a.rowX[(rowOff + i) * d + k] - sC[k] : 0.0f;
                sX[k * Threads + tid] = v;
                s2 = fmaf(v, v, s2);
            }
        }
        nr2[r] = s2;
        if (live) {
            n = fminf(fmaxf(rintf((s2 - a.rowPot[rowOff + i]) * scale), -kMaxShift), kMaxShift);
        }
        shift[r] = makeRowShift(n);
    }
    if (!__syncthreads_or(int(liveMask != 0))) {
        // No live row in this block: padded rows get potential 0.
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int i = rowBase + r * Threads + tid;
            if (i < a.NA) {
                a.rowPot[rowOff + i] = 0.0f;
            }
        }
        return;
    }
    // Lanes of a warp whose rows all sit out a pass skip the arithmetic together (set per pass
    // from sFlag).
    int warpLive = 1;
    const int warpBase = tid & ~31;

    // Stages columns [j0, j0 + Tile) (padding: H = -inf, Y = 0); returns whether one is live.
    // Compile-time d: each thread issues the loads of kStageBatch columns before using any of
    // them (indices clamped into the pair, so the loads need no branch), one memory round trip
    // per batch instead of two per column.
    auto stageBatched = [&](int j0) -> int {
        constexpr int kStageBatch = 4;
        static_assert(D == 0 || Tile % (Threads * kStageBatch) == 0, "stage batches");
        int mine = 0;
#pragma unroll 1
        for (int base = 0; base < Tile; base += Threads * kStageBatch) {
            float lw[kStageBatch];
            float pot[kStageBatch];
            float yv[kStageBatch][DR];
#pragma unroll
            for (int u = 0; u < kStageBatch; ++u) {
                const int j = j0 + base + u * Threads + tid;
                const std::int64_t jc = colOff + (j < a.NB ? j : a.NB - 1);
                lw[u] = a.colLogw[jc];
                pot[u] = a.colPot[jc];
#pragma unroll
                for (int k = 0; k < DR; ++k) {
                    yv[u][k] = a.colX[jc * DR + k];
                }
            }
#pragma unroll
            for (int u = 0; u < kStageBatch; ++u) {
                const int jj = base + u * Threads + tid;
                const bool ok = j0 + jj < a.NB && lw[u] > -kInfF;
                float s2 = 0.0f;
#pragma unroll
                for (int k = 0; k < DR; ++k) {
                    const float v = ok ? yv[u][k] - cReg[k] : 0.0f;
                    s2 = fmaf(v, v, s2);
                    sY[k * Tile + jj] = v * yScale;
                }
                sH[jj] = ok ? fmaf(pot[u] - s2, scale, lw[u] * kLog2eF) : -kInfF;
                mine |= int(ok);
            }
        }
        return mine;
    };
    auto stage = [&](int j0) -> int {
        if constexpr (D > 0) {
            return stageBatched(j0);
        }
        int mine = 0;
        for (int jj = tid; jj < Tile; jj += Threads) {
            const int j = j0 + jj;
            float h = -kInfF;
            const bool ok = j < a.NB && a.colLogw[colOff + j] > -kInfF;
            if (ok) {
                const float* yj = a.colX + (colOff + j) * d;
                float s2 = 0.0f;
#pragma unroll
                for (int k = 0; k < (D > 0 ? D : d); ++k) {
                    const float v = yj[k] - (D > 0 ? cReg[D > 0 ? k : 0] : sC[k]);
                    s2 = fmaf(v, v, s2);
                    sY[k * Tile + jj] = v * yScale;
                }
                h = fmaf(a.colPot[colOff + j] - s2, scale, a.colLogw[colOff + j] * kLog2eF);
                mine = 1;
            } else {
#pragma unroll
                for (int k = 0; k < (D > 0 ? D : d); ++k) {
                    sY[k * Tile + jj] = 0.0f;
                }
            }
            sH[jj] = h;
        }
        return mine;
    };

    // t_q = H_{j+q} + <a_i - c, Y_{j+q}> for q = 0..3.
    auto dot4 = [&](int r, int jj, float (&t)[4]) {
        const float4 h4 = *reinterpret_cast<const float4*>(sH + jj);
        t[0] = h4.x;
        t[1] = h4.y;
        t[2] = h4.z;
        t[3] = h4.w;
#pragma unroll
        for (int k = 0; k < (D > 0 ? D : d); ++k) {
            const float4 y4 = *reinterpret_cast<const float4*>(sY + k * Tile + jj);
            const float xk = D > 0 ? xr[r][D > 0 ? k : 0] : sX[k * Threads + tid];
            t[0] = fmaf(xk, y4.x, t[0]);
            t[1] = fmaf(xk, y4.y, t[1]);
            t[2] = fmaf(xk, y4.z, t[2]);
            t[3] = fmaf(xk, y4.w, t[3]);
        }
    };

    // Shifted pass: s_r = sum_j 2^(t_rj - n_r) with four accumulators per row (one per column
    // lane), for the rows in `rows` (bit mask; a warp whose lanes have none skips the work).
    auto shiftedPass = [&](unsigned rows, float (&sum)[R]) {
        float acc[R][4];
#pragma unroll
        for (int r = 0; r < R; ++r) {
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                acc[r][q] = 0.0f;
            }
        }
        sFlag[tid] = int(rows != 0);
        for (int j0 = 0; j0 < a.NB; j0 += Tile) {
            __syncthreads(); // the previous tile is consumed (and sFlag written)
            if (j0 == 0) {
                warpLive = 0;
                for (int q = 0; q < 32; ++q) {
                    warpLive |= sFlag[warpBase + q];
                }
            }
            if (!__syncthreads_or(stage(j0)) || !warpLive) {
                continue;
            }
            const int len = minInt(Tile, a.NB - j0);
#pragma unroll 2
            for (int jj = 0; jj < len; jj += 4) {
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    float t[4];
                    dot4(r, jj, t);
                    // Entry (r, q) uses the polynomial when q * R + r < Poly; r and q are
                    // constants after unrolling, so each entry compiles to one of the two paths.
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        acc[r][q] += q * R + r < Poly ? polyExp2Shifted(t[q], shift[r])
                                                      : exp2f(t[q] + shift[r].negShift);
                    }
                }
            }
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
            sum[r] = (acc[r][0] + acc[r][1]) + (acc[r][2] + acc[r][3]);
        }
    };

    float sum[R];
    shiftedPass(liveMask, sum);
    float log2Sum[R];
    unsigned redoMask = 0; // bit r: row r needs the exact path
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const bool bad = !(sum[r] >= kShiftedSumMin && sum[r] <= kShiftedSumMax);
        redoMask |= unsigned(bad && ((liveMask >> r) & 1u)) << r;
        log2Sum[r] = -shift[r].negShift + log2f(sum[r]);
    }

    if (__syncthreads_or(int(redoMask != 0))) {
        // Rare path (a bad shift: first iterations, a jump of the potentials): the exact max
        // of each flagged row (FMAs only), then the shifted pass again with n = round(max),
        // which puts the sum in [2^-1/2, NB 2^1/2]. The other rows of the block wait.
        if (tid == 0 && a.fallbacks != nullptr) {
            atomicAdd(a.fallbacks, 1u);
        }
        float mx[R];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            mx[r] = -kInfF;
        }
        for (int j0 = 0; j0 < a.NB; j0 += Tile) {
            __syncthreads();
            if (!__syncthreads_or(stage(j0)) || redoMask == 0) {
                continue;
            }
            const int len = minInt(Tile, a.NB - j0);
            for (int jj = 0; jj < len; jj += 4) {
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    float t[4];
                    dot4(r, jj, t);
                    mx[r] = fmaxf(mx[r], fmaxf(fmaxf(t[0], t[1]), fmaxf(t[2], t[3])));
                }
            }
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if ((redoMask >> r) & 1u) {
                shift[r] = makeRowShift(fminf(fmaxf(rintf(mx[r]), -kMaxShift), kMaxShift));
            }
        }
        shiftedPass(redoMask, sum);
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if ((redoMask >> r) & 1u) {
                // No live column (max -inf): the log-sum is -inf and the potential 0.
                log2Sum[r] = mx[r] > -kInfF ? -shift[r].negShift + log2f(sum[r]) : -kInfF;
            }
        }
    }

#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int i = rowBase + r * Threads + tid;
        if (i < a.NA) {
            a.rowPot[rowOff + i]
                = ((liveMask >> r) & 1u) && log2Sum[r] > -kInfF ? nr2[r] - log2Sum[r] * epsLn2
                                                                 : 0.0f;
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Passes over the plan (row sums, argmax, sampling, top-k), in float64.

/// Rows A, columns B of log P_ij = logw_i + logw_j + (pot_i + pot_j - |a_i - b_j|^2) / eps.
struct PlanArgs
{
    const float* rowX = nullptr;
    const float* rowLogw = nullptr;
    const float* rowPot = nullptr;
    const float* colX = nullptr;
    const float* colLogw = nullptr;
    const float* colPot = nullptr;
    const float* eps = nullptr;
    int NA = 0;
    int NB = 0;
    int d = 0;
    int rowBlocks = 0;
    double* mass = nullptr; ///< [B, NA]
    double* cost = nullptr; ///< [B, NA]
    float* weighted = nullptr; ///< [B, NA, d]
    std::int64_t* argmax = nullptr; ///< [B, NA]
    std::int64_t* sampled = nullptr; ///< [B, NA]
    std::uint64_t seed = 0;
    int k = 0; ///< top-k: entries per row written
    float* topValues = nullptr; ///< [B, NA, k]
    std::int64_t* topIndices = nullptr; ///< [B, NA, k]
};

/// Shared memory of the plan kernels (doubles): columns [d][Tile], column terms [Tile] and, for
/// run-time d, the rows [d][Threads] and weighted sums [d][Threads].
inline std::size_t planSmemBytes(int D, int d, int threads, int tile)
{
    const std::size_t dd = std::size_t(D > 0 ? D : d);
    std::size_t doubles = dd * tile + tile;
    if (D == 0) {
        doubles += 2 * dd * threads;
    }
    return doubles * sizeof(double);
}

/// Common part of the plan kernels: loads the row, then streams column tiles and calls
/// visit(j, e, C, yj) for every live column j of a live row, in increasing j; e = log P_ij
/// (natural log) and C = |a_i - b_j|^2 in float64, yj(k) the column's coordinates.
template <int D, int Threads, int Tile, class Visit>
__device__ inline void forEachPlanEntry(const PlanArgs& a, unsigned char* smemRaw, int b, int i,
    bool live, Visit&& visit)
{
    constexpr int DR = D > 0 ? D : 1;
    const int d = D > 0 ? D : a.d;
    double* sCol = reinterpret_cast<double*>(smemRaw); // [d][Tile]
    double* sQ = sCol + d * Tile; // [Tile]: logw_j + pot_j / eps
    double* sX = sQ + Tile; // [d][Threads], D == 0 only
    const int tid = threadIdx.x;
    const double invEps = 1.0 / double(a.eps[b]);
    const std::int64_t rowOff = std::int64_t(b) * a.NA;
    const std::int64_t colOff = std::int64_t(b) * a.NB;
    double xr[DR];
    double rowTerm = -kInfD;
    if (live) {
        rowTerm = double(a.rowLogw[rowOff + i]) + double(a.rowPot[rowOff + i]) * invEps;
    }
#pragma unroll
    for (int k = 0; k < (D > 0 ? D : d); ++k) {
        const double v = live ? double(a.rowX[(rowOff + i) * d + k]) : 0.0;
        if constexpr (D > 0) {
            xr[D > 0 ? k : 0] = v;
        } else {
            sX[k * Threads + tid] = v;
        }
    }
    if constexpr (D == 0) {
        xr[0] = 0.0;
    }
    for (int j0 = 0; j0 < a.NB; j0 += Tile) {
        __syncthreads();
        int mine = 0;
        for (int jj = tid; jj < Tile; jj += Threads) {
            const int j = j0 + jj;
            double q = -kInfD;
            if (j < a.NB && a.colLogw[colOff + j] > -kInfF) {
                q = double(a.colLogw[colOff + j]) + double(a.colPot[colOff + j]) * invEps;
                mine = 1;
            }
            sQ[jj] = q;
#pragma unroll
            for (int k = 0; k < (D > 0 ? D : d); ++k) {
                sCol[k * Tile + jj] = j < a.NB ? double(a.colX[(colOff + j) * d + k]) : 0.0;
            }
        }
        if (!__syncthreads_or(mine) || !live) {
            continue;
        }
        const int len = minInt(Tile, a.NB - j0);
        for (int jj = 0; jj < len; ++jj) {
            const double q = sQ[jj];
            if (!(q > -kInfD)) {
                continue;
            }
            double c = 0.0;
#pragma unroll
            for (int k = 0; k < (D > 0 ? D : d); ++k) {
                const double xk = D > 0 ? xr[D > 0 ? k : 0] : sX[k * Threads + tid];
                const double diff = xk - sCol[k * Tile + jj];
                c = fma(diff, diff, c);
            }
            const double e = (rowTerm + q) - c * invEps;
            visit(j0 + jj, e, c, [&](int k) { return sCol[k * Tile + jj]; });
        }
    }
}

/// Row sums of the plan (mass, cost, weighted columns), argmax and Gumbel-max sample.
template <int D, int Threads, int Tile>
WFM_KERNEL(Threads, 1) planRowKernel(PlanArgs a)
{
    constexpr int DR = D > 0 ? D : 1;
    WFM_DYNAMIC_SMEM(smemRaw);
    const int d = D > 0 ? D : a.d;
    double* sW = reinterpret_cast<double*>(smemRaw) + std::size_t(d) * Tile + Tile
        + std::size_t(d) * Threads; // [d][Threads], D == 0 only
    const int tid = threadIdx.x;
    const int b = blockIdx.x / a.rowBlocks;
    const int i = (blockIdx.x - b * a.rowBlocks) * Threads + tid;
    const std::int64_t rowOff = std::int64_t(b) * a.NA;
    const bool live = i < a.NA && a.rowLogw[rowOff + i] > -kInfF;
    const bool wantCost = a.cost != nullptr;
    const bool wantWeighted = a.weighted != nullptr;
    const bool wantSample = a.sampled != nullptr;

    // Online sums relative to the running max m (natural log): value = acc * e^m. The rescale
    // factor is float64, so rescaling at every new maximum (sorted input) compounds nothing.
    double m = -kInfD;
    double mass = 0.0;
    double cost = 0.0;
    double w[DR];
#pragma unroll
    for (int k = 0; k < (D > 0 ? D : d); ++k) {
        if constexpr (D > 0) {
            w[D > 0 ? k : 0] = 0.0;
        } else {
            sW[k * Threads + tid] = 0.0;
        }
    }
    if constexpr (D == 0) {
        w[0] = 0.0;
    }
    std::int64_t best = -1;
    double bestKey = -kInfD;
    std::int64_t drawn = -1;

    forEachPlanEntry<D, Threads, Tile>(a, smemRaw, b, i, live,
        [&](int j, double e, double c, auto&& yj) {
            if (e > m) {
                const double sc = m > -kInfD ? exp(m - e) : 0.0;
                mass *= sc;
                cost *= sc;
#pragma unroll
                for (int k = 0; k < (D > 0 ? D : d); ++k) {
                    if constexpr (D > 0) {
                        w[D > 0 ? k : 0] *= sc;
                    } else {
                        sW[k * Threads + tid] *= sc;
                    }
                }
                m = e;
                best = j;
            }
            if (!(m > -kInfD)) {
                return;
            }
            const double pr = double(exp2f(float((e - m) * kLog2eD)));
            mass += pr;
            if (wantCost) {
                cost = fma(pr, c, cost);
            }
            if (wantWeighted) {
#pragma unroll
                for (int k = 0; k < (D > 0 ? D : d); ++k) {
                    if constexpr (D > 0) {
                        w[D > 0 ? k : 0] = fma(pr, yj(k), w[D > 0 ? k : 0]);
                    } else {
                        sW[k * Threads + tid] = fma(pr, yj(k), sW[k * Threads + tid]);
                    }
                }
            }
            if (wantSample && e + kGumbelBound > bestKey) {
                // The noise is below kGumbelBound: only columns that can still win draw it.
                const double key = e + gumbelNoise(a.seed, b, i, j);
                if (key > bestKey) {
                    bestKey = key;
                    drawn = j;
                }
            }
        });

    if (i >= a.NA) {
        return;
    }
    const double scale = m > -kInfD ? exp(m) : 0.0;
    if (a.mass != nullptr) {
        a.mass[rowOff + i] = live ? mass * scale : 0.0;
    }
    if (wantCost) {
        a.cost[rowOff + i] = live ? cost * scale : 0.0;
    }
    if (wantWeighted) {
#pragma unroll
        for (int k = 0; k < (D > 0 ? D : d); ++k) {
            const double v = D > 0 ? w[D > 0 ? k : 0] : sW[k * Threads + tid];
            a.weighted[(rowOff + i) * d + k] = live ? float(v * scale) : 0.0f;
        }
    }
    if (a.argmax != nullptr) {
        a.argmax[rowOff + i] = live ? best : -1;
    }
    if (wantSample) {
        a.sampled[rowOff + i] = live ? drawn : -1;
    }
}

/// The k <= K largest log P_ij of each row, sorted descending, ties by the smaller column
/// (compared in float64, written as float32). The list lives in registers (unrolled insertion).
template <int D, int K, int Threads, int Tile>
WFM_KERNEL(Threads, 1) topKKernel(PlanArgs a)
{
    WFM_DYNAMIC_SMEM(smemRaw);
    const int tid = threadIdx.x;
    const int b = blockIdx.x / a.rowBlocks;
    const int i = (blockIdx.x - b * a.rowBlocks) * Threads + tid;
    const std::int64_t rowOff = std::int64_t(b) * a.NA;
    const bool live = i < a.NA && a.rowLogw[rowOff + i] > -kInfF;
    double tv[K];
    int tj[K];
#pragma unroll
    for (int q = 0; q < K; ++q) {
        tv[q] = -kInfD;
        tj[q] = -1;
    }
    forEachPlanEntry<D, Threads, Tile>(a, smemRaw, b, i, live,
        [&](int j, double e, double, auto&&) {
            if (!(e > tv[K - 1])) {
                return;
            }
            // Insert after every kept value >= e (those have smaller j): slot q takes the old
            // q-1 if e beats it, e if e beats only the old q, else keeps its value.
#pragma unroll
            for (int q = K - 1; q > 0; --q) {
                const bool up = e > tv[q - 1];
                const bool here = e > tv[q];
                tv[q] = up ? tv[q - 1] : (here ? e : tv[q]);
                tj[q] = up ? tj[q - 1] : (here ? j : tj[q]);
            }
            if (e > tv[0]) {
                tv[0] = e;
                tj[0] = j;
            }
        });
    if (i >= a.NA) {
        return;
    }
#pragma unroll
    for (int q = 0; q < K; ++q) {
        if (q < a.k) {
            const std::int64_t o = (rowOff + i) * a.k + q;
            a.topValues[o] = live && tj[q] >= 0 ? float(tv[q]) : -kInfF;
            a.topIndices[o] = live ? std::int64_t(tj[q]) : -1;
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Largest live cost of each pair (the scale of a relative eps), without an N x M array.

/// Shared memory of maxCostBlocksKernel: columns [d][Tile] and live flags [Tile] (floats), the
/// block's maxima [Threads].
inline std::size_t maxCostSmemBytes(int d, int threads, int tile)
{
    return (std::size_t(d) * tile + tile + threads) * sizeof(float);
}

/// The largest of the Threads threads' values v (through sMax [Threads]); valid in thread 0.
template <int Threads>
__device__ inline float blockMaxTo0(float* sMax, float v)
{
    const int tid = threadIdx.x;
    sMax[tid] = v;
    __syncthreads();
    for (int w = Threads / 2; w > 0; w /= 2) {
        if (tid < w) {
            sMax[tid] = fmaxf(sMax[tid], sMax[tid + w]);
        }
        __syncthreads();
    }
    return sMax[0];
}

/// blockMax[b * rowBlocks + rb] = max |x_i - y_j|^2 over the live rows i of the block's
/// Threads rows of x_b and every live column j of y_b (0 when there is none). One row per
/// thread; the columns stream through shared memory. Computed as the sum of squared
/// differences, so the value is the float32 rounding of the exact cost (no cancellation).
template <int D, int Threads, int Tile>
WFM_KERNEL(Threads, 1) maxCostBlocksKernel(Problem p, int rowBlocks, float* blockMax)
{
    WFM_DYNAMIC_SMEM(smemRaw);
    const int d = D > 0 ? D : p.d;
    float* sCols = reinterpret_cast<float*>(smemRaw); // [d][Tile]
    float* sLive = sCols + std::size_t(d) * Tile; // [Tile]
    float* sMax = sLive + Tile; // [Threads]
    const int tid = threadIdx.x;
    const int b = blockIdx.x / rowBlocks;
    const int rb = blockIdx.x - b * rowBlocks;
    const int i = rb * Threads + tid;
    const std::int64_t xOff = std::int64_t(b) * p.N;
    const std::int64_t yOff = std::int64_t(b) * p.M;
    const bool rowLive = i < p.N && p.loga[xOff + i] > -kInfF;
    const float* xi = p.x + (xOff + (i < p.N ? i : 0)) * d;
    float best = 0.0f;
    for (int j0 = 0; j0 < p.M; j0 += Tile) {
        const int n = p.M - j0 < Tile ? p.M - j0 : Tile;
        for (int q = tid; q < n; q += Threads) {
            const std::int64_t j = yOff + j0 + q;
            const bool live = p.logb[j] > -kInfF;
            sLive[q] = live ? 1.0f : 0.0f;
            for (int k = 0; k < d; ++k) {
                sCols[std::size_t(k) * Tile + q] = p.y[j * d + k];
            }
        }
        __syncthreads();
        if (rowLive) {
            if constexpr (D > 0) {
                float r[D];
                for (int k = 0; k < D; ++k) {
                    r[k] = xi[k];
                }
                for (int q = 0; q < n; ++q) {
                    float c = 0.0f;
                    for (int k = 0; k < D; ++k) {
                        const float t = r[k] - sCols[k * Tile + q];
                        c = fmaf(t, t, c);
                    }
                    best = fmaxf(best, c * sLive[q]);
                }
            } else {
                for (int q = 0; q < n; ++q) {
                    float c = 0.0f;
                    for (int k = 0; k < d; ++k) {
                        const float t = xi[k] - sCols[std::size_t(k) * Tile + q];
                        c = fmaf(t, t, c);
                    }
                    best = fmaxf(best, c * sLive[q]);
                }
            }
        }
        __syncthreads();
    }
    best = blockMaxTo0<Threads>(sMax, best);
    if (tid == 0) {
        blockMax[std::int64_t(b) * rowBlocks + rb] = best;
    }
}

/// out[b] = max over the row blocks of pair b. One block per pair.
template <int Threads>
WFM_KERNEL(Threads, 1) maxCostReduceKernel(const float* blockMax, int rowBlocks, float* out)
{
    WFM_DYNAMIC_SMEM(smemRaw);
    float* sMax = reinterpret_cast<float*>(smemRaw); // [Threads]
    const int tid = threadIdx.x;
    const int b = blockIdx.x;
    float best = 0.0f;
    for (int q = tid; q < rowBlocks; q += Threads) {
        best = fmaxf(best, blockMax[std::int64_t(b) * rowBlocks + q]);
    }
    best = blockMaxTo0<Threads>(sMax, best);
    if (tid == 0) {
        out[b] = best;
    }
}

// ------------------------------------------------------------------------------------------------
// Host orchestration over a Launcher L:
//   l.launch(kernel, gridBlocks, threads, smemBytes, args...)   throws on a launch error
//   l.launchDependent(...)                                       the same, as a programmatic
//                                                                dependent of the previous kernel
//   l.allocFloats(n) / l.release(ptr)                            scratch on the device
//   l.maxSmemBytes()                                             per-block opt-in limit

/// A variant of the Sinkhorn kernel for d = 2, 3: rows per thread and polynomial share.
///
/// Cost model (per SM sub-partition, one warp instruction issued per clock, the exp2 unit
/// taking 8 clocks per warp instruction): for d = 3 an entry costs 3 FFMA + FADD (shift) +
/// MUFU.EX2 + FADD (sum) + 1/R shared loads; a polynomial entry replaces FADD + MUFU by about
/// 11 FMA-pipe instructions. Rows 4, 1 polynomial entry in 16 (the default): about 113 issue
/// clocks against 120 exp2 clocks per 16 entries, so the kernel stays exp2-bound about 6% below
/// the all-MUFU time (128 clocks); more polynomial entries make it issue-bound. At 1.98 GHz
/// and 132 SMs that is ~24 ms for B = 64, N = M = 2048, 200 iterations, before the launch
/// gaps, tile staging and the 97% block balance (2 blocks per SM at rows 4).
struct LseVariant
{
    int rows;
    int poly;
    int tile; ///< columns staged in shared memory at a time
    const char* name;
};

constexpr int kLseThreads = 128;
constexpr int kLseGenericTile = 64;
constexpr LseVariant kLseVariants[] = {
    { 4, 0, 512, "rows4-mufu" },
    { 4, 1, 512, "rows4-poly1of16" },
    { 4, 2, 512, "rows4-poly2of16" },
    { 2, 0, 512, "rows2-mufu" },
    { 2, 1, 512, "rows2-poly1of8" },
    { 4, 1, 2048, "rows4-poly1of16-tile2048" },
    { 4, 2, 2048, "rows4-poly2of16-tile2048" },
    { 4, 3, 2048, "rows4-poly3of16-tile2048" },
    { 4, 2, 1024, "rows4-poly2of16-tile1024" },
};
constexpr int kLseVariantCount = int(sizeof(kLseVariants) / sizeof(kLseVariants[0]));
// Measured on an H100 (B=64, N=M=2048, d=3, 200 iterations; bench/results/gpu-h100-2026-11-28):
// with the half-iterations launched as programmatic dependents, 4 rows per thread and a 2048-
// column tile took 35.7 ms against 55.9 ms for rows2-poly1of8, the fastest without them (39.0 ms).
constexpr int kDefaultLseVariant = 5;
/// For grids the default kernel would not fill: rows2-poly1of8 with plain launches (the
/// 2026-11-27 configuration: 0.21 ms per iteration for B = 1, N = M = 4096 on an H100, against
/// 0.29 ms for the default kernel with dependent launches).
constexpr int kSmallGridLseVariant = 4;

/// Whether the default kernel's larger half-iteration grid has fewer blocks than the GPU has
/// SMs (B = 64, N = M = 2048 is 256 blocks on an H100's 132 SMs and keeps the default: 38 ms
/// against 41 ms with the 2-rows kernel).
inline bool isSmallGrid(const Problem& p, int multiprocessors)
{
    const int rowsPerBlock = kLseThreads * kLseVariants[kDefaultLseVariant].rows;
    const int longest = p.N > p.M ? p.N : p.M;
    const long long blocks = (long long)p.B * ((longest + rowsPerBlock - 1) / rowsPerBlock);
    return blocks < (long long)multiprocessors;
}

using LseKernelFn = void (*)(HalfArgs);
using PlanKernelFn = void (*)(PlanArgs);

template <int D>
LseKernelFn lseKernelFor(int variant)
{
    constexpr int T = kLseThreads;
    switch (variant) {
    case 0:
        return &lseKernel<D, 4, T, 512, 0>;
    case 1:
        return &lseKernel<D, 4, T, 512, 1>;
    case 2:
        return &lseKernel<D, 4, T, 512, 2>;
    case 3:
        return &lseKernel<D, 2, T, 512, 0>;
    case 4:
        return &lseKernel<D, 2, T, 512, 1>;
    case 5:
        return &lseKernel<D, 4, T, 2048, 1>;
    case 6:
        return &lseKernel<D, 4, T, 2048, 2>;
    case 7:
        return &lseKernel<D, 4, T, 2048, 3>;
    default:
        return &lseKernel<D, 4, T, 1024, 2>;
    }
}

inline void checkProblem(const Problem& p, const char* what)
{
    if (p.B < 0 || p.N < 0 || p.M < 0 || p.d < 1) {
        throw std::invalid_argument(std::string("fused Sinkhorn (CUDA) ") + what
            + ": bad sizes B=" + std::to_string(p.B) + " N=" + std::to_string(p.N)
            + " M=" + std::to_string(p.M) + " d=" + std::to_string(p.d));
    }
    const bool any = p.B > 0 && (p.N > 0 || p.M > 0);
    if (any && (p.eps == nullptr || (p.N > 0 && (p.x == nullptr || p.loga == nullptr))
                   || (p.M > 0 && (p.y == nullptr || p.logb == nullptr)))) {
        throw std::invalid_argument(std::string("fused Sinkhorn (CUDA) ") + what
            + ": null input pointer");
    }
}

inline void checkPotentials(const Problem& p, const void* f, const void* g, const char* what)
{
    if (p.B > 0 && ((p.N > 0 && f == nullptr) || (p.M > 0 && g == nullptr))) {
        throw std::invalid_argument(std::string("fused Sinkhorn (CUDA) ") + what
            + ": null potential pointer");
    }
}

inline int blocksFor(int B, int rows, int rowsPerBlock, int& rowBlocks, const char* what)
{
    rowBlocks = (rows + rowsPerBlock - 1) / rowsPerBlock;
    const long long grid = (long long)B * rowBlocks;
    if (grid > 0x7fffffffLL) {
        throw std::invalid_argument(std::string("fused Sinkhorn (CUDA) ") + what
            + ": problem too large for one launch");
    }
    return int(grid);
}

template <class L>
void checkSmem(L& l, std::size_t bytes, int d, const char* what)
{
    if (bytes > l.maxSmemBytes()) {
        throw std::invalid_argument(std::string("fused Sinkhorn (CUDA) ") + what + ": d = "
            + std::to_string(d) + " needs " + std::to_string(bytes)
            + " bytes of shared memory per block, more than the device allows");
    }
}

/// Device scratch released on scope exit.
template <class L>
class Scratch
{
public:
    Scratch(L& l, std::size_t floats) : m_l(l), m_ptr(l.allocFloats(floats)) {}
    ~Scratch() { m_l.release(m_ptr); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    float* get() const { return m_ptr; }

private:
    L& m_l;
    float* m_ptr;
};

template <class L>
void runIterate(L& l, const Problem& p, float* f, float* g, int iterations, int variant,
    unsigned* fallbacks)
{
    checkProblem(p, "iterate");
    checkPotentials(p, f, g, "iterate");
    if (iterations <= 0 || p.B == 0 || (p.N == 0 && p.M == 0)) {
        return;
    }
    if (variant < 0 || variant >= kLseVariantCount) {
        throw std::invalid_argument("fused Sinkhorn (CUDA): unknown kernel variant");
    }
    Scratch<L> centers(l, std::size_t(p.B) * p.d);
    l.launch(&centerKernel<256>, p.B, 256, 256 * (sizeof(double) + sizeof(int)), p,
        centers.get());

    LseKernelFn kernel = nullptr;
    int rowsPerThread = 1;
    int tile = kLseVariants[variant].tile;
    int D = p.d;
    if (p.d == 2) {
        kernel = lseKernelFor<2>(variant);
        rowsPerThread = kLseVariants[variant].rows;
    } else if (p.d == 3) {
        kernel = lseKernelFor<3>(variant);
        rowsPerThread = kLseVariants[variant].rows;
    } else {
        kernel = &lseKernel<0, 1, kLseThreads, kLseGenericTile, 0>;
        tile = kLseGenericTile;
        D = 0;
    }
    const std::size_t smem = lseSmemBytes(D, p.d, kLseThreads, tile);
    checkSmem(l, smem, p.d, "iterate");

    HalfArgs gArgs; // g update: rows y, columns x
    gArgs.rowX = p.y;
    gArgs.rowLogw = p.logb;
    gArgs.rowPot = g;
    gArgs.colX = p.x;
    gArgs.colLogw = p.loga;
    gArgs.colPot = f;
    gArgs.NA = p.M;
    gArgs.NB = p.N;
    HalfArgs fArgs; // f update: rows x, columns y
    fArgs.rowX = p.x;
    fArgs.rowLogw = p.loga;
    fArgs.rowPot = f;
    fArgs.colX = p.y;
    fArgs.colLogw = p.logb;
    fArgs.colPot = g;
    fArgs.NA = p.N;
    fArgs.NB = p.M;
    for (HalfArgs* h : { &gArgs, &fArgs }) {
        h->eps = p.eps;
        h->center = centers.get();
        h->d = p.d;
        h->fallbacks = fallbacks;
    }
    const int rowsPerBlock = kLseThreads * rowsPerThread;
    const int gGrid = blocksFor(p.B, p.M, rowsPerBlock, gArgs.rowBlocks, "iterate");
    const int fGrid = blocksFor(p.B, p.N, rowsPerBlock, fArgs.rowBlocks, "iterate");
    // Each half-iteration may start its blocks while the previous one drains (programmatic
    // dependent launch where the launcher supports it); lseKernel waits before touching the
    // potentials.
    for (int it = 0; it < iterations; ++it) {
        if (gGrid > 0) {
            l.launchDependent(kernel, gGrid, kLseThreads, smem, gArgs);
        }
        if (fGrid > 0) {
            l.launchDependent(kernel, fGrid, kLseThreads, smem, fArgs);
        }
    }
}

constexpr int kMaxCostThreads = 128;
constexpr int kMaxCostTile = 512;

/// out[b] = max |x_i - y_j|^2 over the live points of pair b (0 without a live pair);
/// p.eps is not read.
template <class L>
void runMaxCost(L& l, const Problem& p, float* out)
{
    if (p.B < 0 || p.N < 0 || p.M < 0 || p.d < 1) {
        throw std::invalid_argument("fused Sinkhorn (CUDA) maxCost: bad sizes B="
            + std::to_string(p.B) + " N=" + std::to_string(p.N) + " M=" + std::to_string(p.M)
            + " d=" + std::to_string(p.d));
    }
    if (p.B == 0) {
        return;
    }
    if (out == nullptr || (p.N > 0 && (p.x == nullptr || p.loga == nullptr))
        || (p.M > 0 && (p.y == nullptr || p.logb == nullptr))) {
        throw std::invalid_argument("fused Sinkhorn (CUDA) maxCost: null pointer");
    }
    int rowBlocks = 0;
    const int grid = blocksFor(p.B, p.N > 0 ? p.N : 1, kMaxCostThreads, rowBlocks, "maxCost");
    const std::size_t smem = maxCostSmemBytes(p.d, kMaxCostThreads, kMaxCostTile);
    checkSmem(l, smem, p.d, "maxCost");
    Scratch<L> blockMax(l, std::size_t(grid));
    auto kernel = p.d == 2 ? &maxCostBlocksKernel<2, kMaxCostThreads, kMaxCostTile>
        : p.d == 3         ? &maxCostBlocksKernel<3, kMaxCostThreads, kMaxCostTile>
                           : &maxCostBlocksKernel<0, kMaxCostThreads, kMaxCostTile>;
    l.launch(kernel, grid, kMaxCostThreads, smem, p, rowBlocks, blockMax.get());
    l.launch(&maxCostReduceKernel<kMaxCostThreads>, p.B, kMaxCostThreads,
        kMaxCostThreads * sizeof(float), static_cast<const float*>(blockMax.get()), rowBlocks, out);
}

constexpr int kPlanThreads = 128;
constexpr int kPlanTile = 128;
constexpr int kPlanGenericThreads = 64;
constexpr int kPlanGenericTile = 64;

/// Launch shape of the plan kernels for dimension d: D (0 = run-time), threads, tile.
struct PlanShape
{
    int D;
    int threads;
    int tile;
};

inline PlanShape planShape(int d)
{
    if (d == 2 || d == 3) {
        return { d, kPlanThreads, kPlanTile };
    }
    return { 0, kPlanGenericThreads, kPlanGenericTile };
}

inline PlanArgs planArgs(const Problem& p, const float* f, const float* g, bool rowsAreX)
{
    PlanArgs a;
    a.rowX = rowsAreX ? p.x : p.y;
    a.rowLogw = rowsAreX ? p.loga : p.logb;
    a.rowPot = rowsAreX ? f : g;
    a.colX = rowsAreX ? p.y : p.x;
    a.colLogw = rowsAreX ? p.logb : p.loga;
    a.colPot = rowsAreX ? g : f;
    a.eps = p.eps;
    a.NA = rowsAreX ? p.N : p.M;
    a.NB = rowsAreX ? p.M : p.N;
    a.d = p.d;
    return a;
}

template <class L>
void launchPlanRows(L& l, const Problem& p, PlanArgs a, const char* what)
{
    const PlanShape s = planShape(p.d);
    const std::size_t smem = planSmemBytes(s.D, p.d, s.threads, s.tile);
    checkSmem(l, smem, p.d, what);
    const int grid = blocksFor(p.B, a.NA, s.threads, a.rowBlocks, what);
    if (grid == 0) {
        return;
    }
    PlanKernelFn kernel = s.D == 2 ? &planRowKernel<2, kPlanThreads, kPlanTile>
        : s.D == 3                 ? &planRowKernel<3, kPlanThreads, kPlanTile>
                                   : &planRowKernel<0, kPlanGenericThreads, kPlanGenericTile>;
    l.launch(kernel, grid, s.threads, smem, a);
}

template <class L>
void runRowPass(L& l, const Problem& p, const float* f, const float* g, const RowOutputs& out)
{
    checkProblem(p, "rowPass");
    checkPotentials(p, f, g, "rowPass");
    if (out.mass == nullptr && out.cost == nullptr && out.weightedY == nullptr
        && out.argmax == nullptr && out.sampled == nullptr) {
        return;
    }
    PlanArgs a = planArgs(p, f, g, true);
    a.mass = out.mass;
    a.cost = out.cost;
    a.weighted = out.weightedY;
    a.argmax = out.argmax;
    a.sampled = out.sampled;
    a.seed = out.seed;
    launchPlanRows(l, p, a, "rowPass");
}

template <class L>
void runColMass(L& l, const Problem& p, const float* f, const float* g, double* mass)
{
    checkProblem(p, "colMass");
    checkPotentials(p, f, g, "colMass");
    if (mass == nullptr) {
        return;
    }
    PlanArgs a = planArgs(p, f, g, false);
    a.mass = mass;
    launchPlanRows(l, p, a, "colMass");
}

template <int D, int Threads, int Tile>
PlanKernelFn topKKernelFor(int k)
{
    if (k <= 4) {
        return &topKKernel<D, 4, Threads, Tile>;
    }
    if (k <= 8) {
        return &topKKernel<D, 8, Threads, Tile>;
    }
    if (k <= 16) {
        return &topKKernel<D, 16, Threads, Tile>;
    }
    return &topKKernel<D, 32, Threads, Tile>;
}

template <class L>
void runTopK(L& l, const Problem& p, const float* f, const float* g, int k, float* values,
    std::int64_t* indices)
{
    checkProblem(p, "topK");
    checkPotentials(p, f, g, "topK");
    if (k < 0 || k > 32) {
        throw std::invalid_argument("fused Sinkhorn (CUDA) topK: k must be in [0, 32], got "
            + std::to_string(k));
    }
    if (k == 0) {
        return;
    }
    if (p.B > 0 && p.N > 0 && (values == nullptr || indices == nullptr)) {
        throw std::invalid_argument("fused Sinkhorn (CUDA) topK: null output pointer");
    }
    PlanArgs a = planArgs(p, f, g, true);
    a.k = k;
    a.topValues = values;
    a.topIndices = indices;
    const PlanShape s = planShape(p.d);
    const std::size_t smem = planSmemBytes(s.D, p.d, s.threads, s.tile);
    checkSmem(l, smem, p.d, "topK");
    const int grid = blocksFor(p.B, a.NA, s.threads, a.rowBlocks, "topK");
    if (grid == 0) {
        return;
    }
    PlanKernelFn kernel = s.D == 2 ? topKKernelFor<2, kPlanThreads, kPlanTile>(k)
        : s.D == 3                 ? topKKernelFor<3, kPlanThreads, kPlanTile>(k)
                                   : topKKernelFor<0, kPlanGenericThreads, kPlanGenericTile>(k);
    l.launch(kernel, grid, s.threads, smem, a);
}

} // namespace wfm::ot::kernels::cuda::detail
