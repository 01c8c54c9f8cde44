#include "wfm/flow/TrainStep.h"

#include "wfm/Error.h"
#include "wfm/metrics/CloudDistances.h"
#include "wfm/ot/BuresWasserstein.h"
#include "wfm/ot/ExactOT.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

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

bool mixedPrecisionSupported(const torch::Device& device)
{
    if (device.is_cuda()) {
        return true;
    }
#if defined(__x86_64__) || defined(__i386__)
    // bfloat16 matrix products on the CPU go through oneDNN; without BF16 units they are slower
    // than float32, so autocast is only worth it with AMX-BF16 (CPUID 7.0 EDX bit 22) or
    // AVX-512 BF16 (CPUID 7.1 EAX bit 5).
    if (!at::hasMKLDNN()) {
        return false;
    }
    unsigned a = 0, b = 0, c = 0, d = 0;
    bool amx = false, avx512bf16 = false;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        amx = (d >> 22) & 1u;
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        avx512bf16 = (a >> 5) & 1u;
    }
    return amx || avx512bf16;
#else
    return false;
#endif
}

AutocastGuard::AutocastGuard(bool enable, const torch::Device& device)
{
    if (!enable || !mixedPrecisionSupported(device)) {
        return;
    }
    if (device.is_cuda()) {
        m_cuda = true;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
        at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
        at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
        at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
        at::autocast::set_enabled(true);
#endif
    } else {
        m_cpu = true;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
        at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
        at::autocast::set_autocast_enabled(at::kCPU, true);
#else
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        at::autocast::set_cpu_enabled(true);
#endif
    }
}

AutocastGuard::~AutocastGuard()
{
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    if (m_cuda) {
        at::autocast::set_autocast_enabled(at::kCUDA, false);
    }
    if (m_cpu) {
        at::autocast::set_autocast_enabled(at::kCPU, false);
    }
#else
    if (m_cuda) {
        at::autocast::set_enabled(false);
    }
    if (m_cpu) {
        at::autocast::set_cpu_enabled(false);
    }
#endif
    if (m_cuda || m_cpu) {
        at::autocast::clear_cache();
    }
}

std::string minibatchCostName(MinibatchCost cost)
{
    switch (cost) {
    case MinibatchCost::None:
        return "none";
    case MinibatchCost::Chamfer:
        return "chamfer";
    case MinibatchCost::Entropic:
        return "entropic";
    case MinibatchCost::Bures:
        return "bures";
    }
    return "none";
}

MinibatchCost parseMinibatchCost(const std::string& name)
{
    for (MinibatchCost c : { MinibatchCost::None, MinibatchCost::Chamfer, MinibatchCost::Entropic,
             MinibatchCost::Bures }) {
        if (name == minibatchCostName(c)) {
            return c;
        }
    }
    throw ConfigError("unknown minibatch cost '" + name + "' (valid: none, chamfer, entropic, bures)");
}

namespace {

/// Weighted means [B,d] and covariances [B,d,d] (float64) of padded clouds.
std::pair<torch::Tensor, torch::Tensor> cloudMoments(const torch::Tensor& x, const torch::Tensor& w)
{
    auto xd = x.to(torch::kDouble);
    auto wd = w.to(torch::kDouble);
    wd = wd / wd.sum(1, true);
    auto m = (xd * wd.unsqueeze(2)).sum(1);
    auto c = xd - m.unsqueeze(1);
    auto S = torch::matmul((c * wd.unsqueeze(2)).transpose(1, 2), c);
    return { m, S };
}

} // namespace

torch::Tensor minibatchPairing(const StepBatch& batch, MinibatchCost cost, const ot::SinkhornOptions& innerOt)
{
    const int64_t B = batch.target.size(0);
    if (cost == MinibatchCost::None || B < 2) {
        return torch::arange(B, torch::kLong);
    }
    // D[i,j] = cost(target_i, source_j); the assignment gives target i its source perm[i].
    torch::Tensor D;
    switch (cost) {
    case MinibatchCost::Chamfer:
        D = metrics::chamferMatrix(batch.target, batch.weights, batch.source, batch.weights);
        break;
    case MinibatchCost::Entropic:
        D = metrics::emdMatrix(batch.target, batch.weights, batch.source, batch.weights,
            metrics::EmdOptions().setEntropic(true).setEps(innerOt.eps).setIterations(innerOt.maxIterations));
        break;
    case MinibatchCost::Bures: {
        auto [mt, St] = cloudMoments(batch.target, batch.weights);
        auto [ms, Ss] = cloudMoments(batch.source, batch.weights);
        D = ot::bw::pairwiseDistanceSquared(mt, St, ms, Ss);
        break;
    }
    case MinibatchCost::None:
        break;
    }
    return ot::exactAssignment(D.to(torch::kCPU).to(torch::kDouble));
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
    auto perm = minibatchPairing(batch, options.minibatch, options.innerOt);
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

torch::Tensor dropLabels(const torch::Tensor& labels, std::int64_t nullLabel, double p,
    torch::Generator& gen)
{
    if (!labels.defined() || p <= 0) {
        return labels;
    }
    auto u = at::rand({ labels.size(0) }, gen, torch::kDouble).to(labels.device());
    return torch::where(u < p, torch::full_like(labels, nullLabel), labels);
}

torch::Tensor stepLoss(model::SetTransformer& model, const StepBatch& batch,
    const StepOptions& options, torch::Generator& gen, StepTimings* timings)
{
    auto ft = flowTargets(batch, options, gen, timings);
    const double t1 = now();
    auto labels = dropLabels(batch.labels, model->options().numLabels, options.labelDropout, gen);
    torch::Tensor v;
    {
        AutocastGuard autocast(options.mixedPrecision, ft.xt.device());
        v = model->forward(ft.xt, ft.t, batch.weights, labels, batch.cond);
    }
    auto loss = flowMatchingLoss(v.to(ft.u.scalar_type()), ft.u, batch.weights);
    if (timings) {
        sync(loss);
        timings->model += now() - t1;
    }
    return loss;
}

double trainStep(model::SetTransformer& model, torch::optim::Optimizer& optimizer,
    const StepBatch& batch, const StepOptions& options, torch::Generator& gen, StepTimings* timings)
{
    const double t0 = now();
    model->train();
    optimizer.zero_grad();
    StepTimings local;
    auto loss = stepLoss(model, batch, options, gen, &local);
    const double t1 = t0 + local.minibatchOt + local.innerOt;
    if (timings) {
        timings->minibatchOt += local.minibatchOt;
        timings->innerOt += local.innerOt;
    }
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
