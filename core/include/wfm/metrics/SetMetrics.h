#pragma once

#include "wfm/metrics/CloudDistances.h"

#include <torch/types.h>

#include <cstdint>
#include <string>

/// Set-level sample quality metrics over a generated set S_g (|S_g| = G) and a reference set S_r
/// (|S_r| = R) of distributions, computed from distance matrices so that the same code serves
/// Chamfer, EMD and Bures-Wasserstein (DESIGN.md, "Metrics"; definitions as in Achlioptas et al.
/// 2018, "Learning Representations and Generative Models for 3D Point Clouds", and Yang et al.
/// 2019, "PointFlow", Sec. 5.2).
///
/// Distance matrices: Dgg [G,G] (generated vs generated), Drr [R,R] (reference vs reference) and
/// Dgr [G,R] (entry (i,j) = d(g_i, r_j)); any floating dtype and device (read once into CPU
/// float64). Only the ordering of the entries matters to 1-NNA and COV; MMD averages the values.
/// Dgg and Drr are read by rows and their diagonals are ignored, so they need not be symmetric.
/// Every function throws wfm::ConfigError naming the argument when a matrix is undefined, not 2-D,
/// of inconsistent shape, empty (G = 0 or R = 0) or holds NaN or inf.
namespace wfm::metrics {

/// Which distance between clouds evaluateClouds() uses.
enum class Distance {
    Chamfer,     ///< chamferMatrix(): CD, units of squared length
    Emd,         ///< emdMatrix() exact: W2^2 with the squared-Euclidean ground cost
    EntropicEmd, ///< emdMatrix() entropic: Sinkhorn transport cost, approximates W2^2
};

/// "chamfer", "emd", "entropic_emd".
std::string distanceName(Distance distance);

/// 1-nearest-neighbour two-sample accuracy (1-NNA, Lopez-Paz & Oquab 2017; PointFlow Sec. 5.2),
/// in [0,1]: every sample of S_g u S_r is classified by its nearest neighbour among all the
/// OTHER samples (leave-one-out), and the result is the fraction of samples whose nearest
/// neighbour lies in their own set. 0.5 is ideal (the sets are indistinguishable); 1 means
/// separated sets; well below 0.5 means the generated samples sit on top of reference samples
/// (memorisation, e.g. 0 when S_g is a copy of S_r).
/// Ties: when several neighbours share the minimal distance (exact equality), the sample scores
/// the fraction of them that lie in its own set, i.e. the expected accuracy under a uniformly
/// random choice among the tied neighbours. This is deterministic and favours neither set.
double oneNNAccuracy(const torch::Tensor& Dgg, const torch::Tensor& Drr, const torch::Tensor& Dgr);

/// Coverage (COV), in [0,1]: every generated sample is matched to its nearest reference sample
/// (argmin_j Dgr[i,j]; ties go to the lowest index j), and COV is the fraction of reference samples
/// matched at least once. Dgr [G,R].
double coverage(const torch::Tensor& Dgr);

/// Minimum matching distance (MMD): the mean over reference samples of the distance to their
/// nearest generated sample, (1/R) sum_j min_i Dgr[i,j], in the units of the matrix. Dgr [G,R].
double minimumMatchingDistance(const torch::Tensor& Dgr);

/// Set metrics of one evaluation.
struct SetMetricsResult
{
    double nna = 0.0;           ///< 1-NNA in [0,1] (0.5 ideal)
    double cov = 0.0;           ///< coverage in [0,1]
    double mmd = 0.0;           ///< minimum matching distance, in the units of `distance`
    std::int64_t generated = 0; ///< G
    std::int64_t reference = 0; ///< R
    std::string distance;       ///< distanceName(), "bures_wasserstein", or the caller's name
};

/// All three metrics from precomputed matrices (see oneNNAccuracy()); `distance` is stored as is.
SetMetricsResult evaluateDistances(const torch::Tensor& Dgg, const torch::Tensor& Drr,
    const torch::Tensor& Dgr, const std::string& distance);

/// Metrics between generated clouds genPoints [G,N,d] / genWeights [G,N] and reference clouds
/// refPoints [R,M,d] / refWeights [R,M] (the conventions of CloudDistances.h: zero weight is
/// padding, undefined weights are uniform, same dtype, device and d on both sides). Computes the
/// within-set matrices once per unordered pair and Dgr in full. For Distance::EntropicEmd the
/// eps and iterations come from emdOptions (its `entropic` flag is ignored; `distance` decides).
/// MMD is in the units of the distance: squared length for Chamfer, W2^2 for (entropic) EMD.
/// Throws ConfigError naming the argument (genPoints, genWeights, refPoints, refWeights) for
/// wrong shapes, empty sets, NaN/inf or bad weights.
SetMetricsResult evaluateClouds(const torch::Tensor& genPoints, const torch::Tensor& genWeights,
    const torch::Tensor& refPoints, const torch::Tensor& refWeights, Distance distance,
    const EmdOptions& emdOptions = {});

/// Metrics between generated Gaussians N(genMeans_i, genCovs_i) (genMeans [G,d], genCovs
/// [G,d,d]) and reference Gaussians (refMeans [R,d], refCovs [R,d,d]) under the Bures-Wasserstein
/// distance W2 (NOT squared: the square root of wfm::ot::bw::pairwiseDistanceSquared), so MMD is
/// in units of length (a set translated by t has MMD |t| against the original when the means are
/// spread further apart than 2|t|); 1-NNA and COV depend only on the ordering, which W2 and W2^2
/// share. Inputs are validated (finite means, symmetric PSD covariances within 1e-6) and must
/// share dtype (float32/float64) and device. distance = "bures_wasserstein".
/// Throws ConfigError naming the argument (genMeans, genCovs, refMeans, refCovs).
SetMetricsResult evaluateGaussians(const torch::Tensor& genMeans, const torch::Tensor& genCovs,
    const torch::Tensor& refMeans, const torch::Tensor& refCovs);

/// One-line JSON object:
/// {"distance":"chamfer","generated":G,"reference":R,"nna":..,"cov":..,"mmd":..}
/// Numbers in the shortest form that reads back to the same double; NaN/inf become null.
std::string toJsonString(const SetMetricsResult& result);

} // namespace wfm::metrics
