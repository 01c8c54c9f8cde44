#pragma once

#include "wfm/model/SetTransformer.h"
#include "wfm/ot/Sinkhorn.h"
#include "wfm/ot/TransportMap.h"

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace torch::optim {
class Optimizer;
}

namespace wfm::flow {

/// How sources are re-paired with targets inside a batch before the inner OT.
enum class MinibatchCost {
    None,     ///< keep the drawn pairing
    Chamfer,  ///< B x B Chamfer distances (reference default)
    Entropic, ///< B x B entropic OT costs (Sinkhorn with the inner eps and iterations)
    Bures,    ///< B x B Bures-Wasserstein distances between moment-matched Gaussians
};

/// "none", "chamfer", "entropic", "bures".
std::string minibatchCostName(MinibatchCost cost);
/// Inverse of minibatchCostName(). Throws ConfigError listing the valid names.
MinibatchCost parseMinibatchCost(const std::string& name);

/// Settings of one point-cloud flow-matching step (DESIGN.md, "The method in one page").
struct StepOptions
{
    MinibatchCost minibatch = MinibatchCost::Chamfer;
    ot::SinkhornOptions innerOt = ot::SinkhornOptions().setEps(0.002).setIterations(200);
    ot::MapKind map = ot::MapKind::Rounded;
    /// Probability that a label is replaced by the null label (classifier-free guidance).
    double labelDropout = 0.0;
    /// bfloat16 autocast for the model's forward pass (the OT stays in float32). On CUDA, and on
    /// CPUs with bfloat16 matrix units (AMX / AVX-512 BF16); elsewhere it is ignored.
    bool mixedPrecision = false;
};

/// Whether bfloat16 autocast pays on `device`: CUDA, or a CPU with AMX-BF16 / AVX-512 BF16.
bool mixedPrecisionSupported(const torch::Device& device);

/// bfloat16 autocast for `device` while in scope (nothing when `enable` is false or
/// mixedPrecisionSupported(device) is not); restores the previous state on exit.
class AutocastGuard
{
public:
    AutocastGuard(bool enable, const torch::Device& device);
    ~AutocastGuard();
    AutocastGuard(const AutocastGuard&) = delete;
    AutocastGuard& operator=(const AutocastGuard&) = delete;

private:
    bool m_cuda = false;
    bool m_cpu = false;
};

/// Wall-clock split of one step, seconds.
struct StepTimings
{
    double minibatchOt = 0;
    double innerOt = 0; ///< Sinkhorn and the map
    double model = 0;   ///< forward, backward, optimiser
    double total = 0;
};

/// Inputs of one step: targets (data) and sources (noise or source clouds) with the same mask.
struct StepBatch
{
    torch::Tensor target;  ///< [B,n,d]
    torch::Tensor source;  ///< [B,n,d] drawn on every slot (as the reference), so minibatch
                           ///< re-pairing may give any source to any target; masked by weights
    torch::Tensor weights; ///< [B,n]
    torch::Tensor labels;  ///< [B] or undefined
    torch::Tensor cond;    ///< [B,c] or undefined
};

/// Re-pairs sources with targets by the optimal assignment of the B x B minibatch cost
/// (the reference solves this with Sinkhorn + greedy rounding; for B <= a few hundred the exact
/// assignment is cheaper and exact). Returns perm [B]:
/// target i is paired with source perm[i].
/// Entropic and Bures costs use `innerOt`'s eps and iterations.
torch::Tensor minibatchPairing(const StepBatch& batch, MinibatchCost cost,
    const ot::SinkhornOptions& innerOt = ot::SinkhornOptions().setEps(0.002).setIterations(200));

/// Flow-matching targets for a batch: times t [B] ~ U[0,1], x_t = (1 - t) x0 + t T(x0) and the
/// velocity u = T(x0) - x0, where T is the inner-OT map from source x0 to target
/// (t = 0 is the source, t = 1 the data).
struct FlowTargets
{
    torch::Tensor t;  ///< [B]
    torch::Tensor xt; ///< [B,n,d]
    torch::Tensor u;  ///< [B,n,d]
};
FlowTargets flowTargets(const StepBatch& batch, const StepOptions& options, torch::Generator& gen,
    StepTimings* timings = nullptr);

/// Weighted flow-matching loss: mean over the batch of sum_i w_i |v_i - u_i|^2.
torch::Tensor flowMatchingLoss(const torch::Tensor& v, const torch::Tensor& u, const torch::Tensor& w);

/// The loss of `model` on `batch` (forward only, no backward): flow targets, label dropout
/// (labels replaced by the null label numLabels with probability options.labelDropout), forward,
/// flowMatchingLoss. Timings: minibatch and inner OT as flowTargets; the forward goes to `model`.
torch::Tensor stepLoss(model::SetTransformer& model, const StepBatch& batch,
    const StepOptions& options, torch::Generator& gen, StepTimings* timings = nullptr);

/// Labels with each entry replaced by `nullLabel` with probability p (drawn from gen).
torch::Tensor dropLabels(const torch::Tensor& labels, std::int64_t nullLabel, double p,
    torch::Generator& gen);

/// One optimisation step of `model` on `batch`; returns the loss and fills `timings`.
double trainStep(model::SetTransformer& model, torch::optim::Optimizer& optimizer,
    const StepBatch& batch, const StepOptions& options, torch::Generator& gen,
    StepTimings* timings = nullptr);

} // namespace wfm::flow
