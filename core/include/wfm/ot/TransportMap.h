#pragma once

#include "wfm/ot/Sinkhorn.h"

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>

namespace wfm::ot {

/// How a Sinkhorn plan becomes a map T(x_i) of the source points.
enum class MapKind {
    Rounded,     ///< greedy rounded matching: a bijection on live points (reference default)
    Argmax,      ///< T(x_i) = y_{argmax_j P_ij}
    Sampled,     ///< T(x_i) = y_j with j drawn from P_i. / sum_j P_ij
    Barycentric, ///< entropic map T(x_i) = sum_j P_ij y_j / sum_j P_ij
};

/// "rounded", "argmax", "sampled", "barycentric". Throws ConfigError for other names.
MapKind parseMapKind(const std::string& name);
std::string mapKindName(MapKind kind);

/// Greedy rounded matching of one score matrix (e.g. a log-plan): repeatedly takes the largest
/// entry among free rows and free columns (ties: smallest flat index i*M+j), assigns it and
/// removes its row and column — the reference's `rounded_matching` — in O(N M log) time via
/// per-row candidate lists and a lazy max-heap instead of N global argmax passes.
///   rowCount N, colCount M; live rows/columns given by rowLive/colLive (nullptr = all live);
///   candidates(i, k, values, indices) fills the k best (value, j) of row i among all columns
///     (sorted descending, ties by smaller j; -inf / -1 padding) — the initial candidate lists;
///   rowScores(i, scores) fills all M scores of row i (used when a row's candidates run out).
/// Returns, per row, the matched column; -1 for dead rows. Every live row is matched while
/// free live columns remain; live rows left over (more live rows than columns) take their
/// row maximum, so the matching is a bijection exactly when the live counts are equal.
std::vector<std::int64_t> greedyRoundedMatching(int rowCount, int colCount,
    const std::vector<bool>& rowLive, const std::vector<bool>& colLive, int candidatesPerRow,
    const std::function<void(int, int, double*, std::int64_t*)>& candidates,
    const std::function<void(int, double*)>& rowScores);

/// Batched greedy rounded matching of score matrices [B,N,M] (any device; -inf entries and
/// rows/columns with zero weight are excluded). Returns [B,N] int64, -1 for padded rows.
torch::Tensor roundedMatching(const torch::Tensor& scores, const torch::Tensor& rowWeights,
    const torch::Tensor& colWeights);

/// Target index per source point [B,N] (int64; -1 for padded rows) for the Rounded, Argmax
/// and Sampled maps of a solved Sinkhorn problem (inputs as given to sinkhorn(); batched).
/// Uses the fused kernels when the result came from them (no N x M plan), else the log-plan.
torch::Tensor assignment(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& result, MapKind kind, std::uint64_t seed = 0);

/// The map T(x) [B,N,d] (or [N,d] for unbatched input): y at the assigned index, or the
/// barycentric projection. Padded rows map to themselves.
torch::Tensor transportMap(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& result, MapKind kind, std::uint64_t seed = 0);

/// McCann's displacement interpolation between two weighted clouds along the entropic OT map:
/// x_t = (1 - t) x + t T(x), T from sinkhorn(x, y, a, b, options) and `kind`. Unbatched:
/// x [n,d], y [m,d], a [n], b [m] (see sinkhorn() for the weights).
struct DisplacementInterpolation
{
    torch::Tensor source;     ///< x [n,d]
    torch::Tensor mapped;     ///< T(x) [n,d]
    torch::Tensor assignment; ///< [n] target index of each source point; undefined for Barycentric
    /// x_t [n,d] for t in [0, 1].
    torch::Tensor at(double t) const;
};
DisplacementInterpolation displacementInterpolation(const torch::Tensor& x, const torch::Tensor& y,
    const torch::Tensor& a, const torch::Tensor& b, const SinkhornOptions& options, MapKind kind = MapKind::Rounded);

} // namespace wfm::ot
