#include "wfm/flow/TrainStep.h"

#include "wfm/Error.h"
#include "wfm/metrics/CloudDistances.h"
#include "wfm/ot/ExactOT.h"

#include <torch/torch.h>

#include <chrono>

namespace wfm::flow {
namespace {

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void sync(const torch::Tensor& t)
{
    if (t.is_cuda()) {
        torch::cuda::synchronize();
    }
}

} // namespace

torch::Tensor minibatchPairing(const StepBatch& batch, MinibatchCost cost)
{
    const int64_t B = batch.target.size(0);
    if (cost == MinibatchCost::None || B < 2) {
        return torch::arange(B, torch::kLong);
    }
    // D[i,j] = Chamfer(target_i, source_j); the assignment gives target i its source perm[i].
    auto D = metrics::chamferMatrix(batch.target, batch.weights, batch.source, batch.weights);
    return ot::exactAssignment(D);
}

FlowTargets flowTargets(const StepBatch& batch, const StepOptions& options, torch::Generator& gen,
    StepTimings* timings)
{
    torch::NoGradGuard noGrad;
    WFM_CHECK(batch.target.dim() == 3 && batch.source.sizes() == batch.target.sizes(),
        "flowTargets: source ", batch.source.sizes(), " and target ", batch.target.sizes(),
        " must both be [B,n,d]");
    const int64_t B = batch.target.size(0);
    double t0 = now();
    auto source = batch.source;
    auto perm = minibatchPairing(batch, options.minibatch);
    if (options.minibatch != MinibatchCost::None) {
        // Source perm[i] goes with target i. Sources carry their own drawn noise on every slot,
        // so re-pairing keeps target i's mask: padded slots are zeroed again.
        source = source.index_select(0, perm.to(source.device()));
        source = source * (batch.weights > 0).unsqueeze(2).to(source.scalar_type());
    }
    sync(source);
    double t1 = now();
    auto result = ot::sinkhorn(source, batch.target, batch.weights, batch.weights, options.innerOt);
    auto mapped = ot::transportMap(source, batch.target, batch.weights, batch.weights, result,
        options.map, static_cast<std::uint64_t>(at::randint(int64_t(1) << 62, { 1 }, gen, torch::kLong).item<int64_t>()));
    sync(mapped);
    double t2 = now();
    if (timings) {
        timings->minibatchOt += t1 - t0;
        timings->innerOt += t2 - t1;
    }
    FlowTargets ft;
    ft.t = at::rand({ B }, gen, torch::TensorOptions().dtype(source.scalar_type())).to(source.device());
    auto tt = ft.t.view({ B, 1, 1 });
    ft.xt = (1 - tt) * source + tt * mapped;
    ft.u = mapped - source;
    return ft;
}

torch::Tensor flowMatchingLoss(const torch::Tensor& v, const torch::Tensor& u, const torch::Tensor& w)
{
    return ((v - u).pow(2).sum(2) * w).sum(1).mean();
}

double trainStep(model::SetTransformer& model, torch::optim::Optimizer& optimizer,
    const StepBatch& batch, const StepOptions& options, torch::Generator& gen, StepTimings* timings)
{
    const double t0 = now();
    auto ft = flowTargets(batch, options, gen, timings);
    const double t1 = now();
    model->train();
    optimizer.zero_grad();
    auto v = model->forward(ft.xt, ft.t, batch.weights, batch.labels, batch.cond);
    auto loss = flowMatchingLoss(v, ft.u, batch.weights);
    loss.backward();
    optimizer.step();
    const double value = loss.item<double>();
    const double t2 = now();
    if (timings) {
        timings->model += t2 - t1;
        timings->total += t2 - t0;
    }
    return value;
}

} // namespace wfm::flow
