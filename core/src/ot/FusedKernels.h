#pragma once
// Raw-pointer interface of the fused Sinkhorn kernels (CPU SIMD and CUDA).
// Torch-free so that the SIMD translation units (compiled with -mavx512f / -mavx2) and the
// CUDA sources never include LibTorch; FusedSinkhorn.cpp converts tensors and dispatches.
//
// Conventions (all arrays row-major, contiguous, float32 unless noted):
//   x [B,N,d], y [B,M,d]; loga [B,N], logb [B,M] = log of the weights, -inf marks padding;
//   eps [B] absolute entropic regularisation of each pair (cost units);
//   f [B,N], g [B,M] dual potentials in cost units; the plan is
//     log P_ij = loga_i + logb_j + (f_i + g_j - C_ij) / eps,   C_ij = |x_i - y_j|^2.
//   Padded rows/columns get potential 0 and take part in nothing.
// One Sinkhorn iteration = the g update (g_j = -eps LSE_i(loga_i + (f_i - C_ij)/eps)) followed
// by the f update (f_i = -eps LSE_j(logb_j + (g_j - C_ij)/eps)), the reference's order.
// A row or column whose LSE is -inf (all counterparts padded) gets potential 0.

#include <cstdint>

namespace wfm::ot::kernels {

struct Problem
{
    const float* x = nullptr;
    const float* y = nullptr;
    const float* loga = nullptr;
    const float* logb = nullptr;
    const float* eps = nullptr;
    int B = 0;
    int N = 0;
    int M = 0;
    int d = 0;
};

/// Optional outputs of a pass over the rows of the (never materialised) plan; null pointers
/// are skipped.
struct RowOutputs
{
    double* mass = nullptr;        ///< [B,N] sum_j P_ij
    double* cost = nullptr;        ///< [B,N] sum_j P_ij C_ij
    float* weightedY = nullptr;    ///< [B,N,d] sum_j P_ij y_j (divide by mass for the barycentric map)
    std::int64_t* argmax = nullptr;  ///< [B,N] argmax_j log P_ij (-1 for padded rows)
    std::int64_t* sampled = nullptr; ///< [B,N] j drawn with probability P_ij / sum_j P_ij (-1 padded)
    std::uint64_t seed = 0;        ///< seed of the counter-based generator used for `sampled`
};

namespace cpu {

/// Which instruction set the CPU kernels use on this machine ("avx512", "avx2", "portable").
const char* simdLevel();

/// Runs `iterations` Sinkhorn iterations in place on f and g. Multi-threaded over pairs and
/// rows (threads = LibTorch's intra-op thread count, passed in).
void iterate(const Problem& p, float* f, float* g, int iterations, int threads);

/// One pass over the rows computing the requested RowOutputs.
void rowPass(const Problem& p, const float* f, const float* g, const RowOutputs& out, int threads);

/// Column masses [B,M] sum_i P_ij (for the marginal error).
void colMass(const Problem& p, const float* f, const float* g, double* mass, int threads);

/// The k largest log P_ij of every live row with their column indices, sorted descending
/// (ties: smaller j first); rows with fewer than k live columns pad with -inf / -1.
void topK(const Problem& p, const float* f, const float* g, int k, float* values,
    std::int64_t* indices, int threads);

/// out [B] = max |x_i - y_j|^2 over the live points of each pair (0 where a side has none),
/// computed from the coordinates (no N x M array); p.eps is not read.
void maxCost(const Problem& p, float* out, int threads);

} // namespace cpu

namespace cuda {

/// Same contracts as cpu::, on device pointers, on the given cudaStream_t (as void*).
void iterate(const Problem& p, float* f, float* g, int iterations, void* stream);
void rowPass(const Problem& p, const float* f, const float* g, const RowOutputs& out, void* stream);
void colMass(const Problem& p, const float* f, const float* g, double* mass, void* stream);
void topK(const Problem& p, const float* f, const float* g, int k, float* values,
    std::int64_t* indices, void* stream);
void maxCost(const Problem& p, float* out, void* stream);

} // namespace cuda
} // namespace wfm::ot::kernels
