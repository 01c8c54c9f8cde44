#include "ot/FusedSinkhorn.h"

#include "ot/FusedKernels.h"
#include "wfm/Error.h"

#include <torch/torch.h>

#ifdef WFM_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <limits>

namespace wfm::ot::fused {
namespace {

/// float32 contiguous copies of a problem and its raw view.
struct Buffers
{
    torch::Tensor x, y, loga, logb, eps;
    kernels::Problem problem;
};

Buffers makeBuffers(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const torch::Tensor& eps)
{
    Buffers buf;
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(x.device());
    buf.x = x.to(f32).contiguous();
    buf.y = y.to(f32).contiguous();
    auto logw = [&](const torch::Tensor& w) {
        auto wd = w.to(torch::kDouble);
        auto lw = torch::where(wd > 0, torch::log(wd),
            torch::full_like(wd, -std::numeric_limits<double>::infinity()));
        return lw.to(f32).contiguous();
    };
    buf.loga = logw(a);
    buf.logb = logw(b);
    if (eps.defined()) {
        buf.eps = eps.to(f32).contiguous();
    }
    auto& p = buf.problem;
    p.x = buf.x.data_ptr<float>();
    p.y = buf.y.data_ptr<float>();
    p.loga = buf.loga.data_ptr<float>();
    p.logb = buf.logb.data_ptr<float>();
    p.eps = buf.eps.defined() ? buf.eps.data_ptr<float>() : nullptr;
    p.B = static_cast<int>(x.size(0));
    p.N = static_cast<int>(x.size(1));
    p.M = static_cast<int>(y.size(1));
    p.d = static_cast<int>(x.size(2));
    return buf;
}

#ifdef WFM_HAVE_CUDA
void* currentStream(const torch::Tensor& t)
{
    return static_cast<void*>(c10::cuda::getCurrentCUDAStream(t.device().index()).stream());
}
#endif

void runIterations(const Buffers& buf, torch::Tensor& f, torch::Tensor& g, int iterations)
{
    if (iterations <= 0) {
        return;
    }
    if (buf.x.is_cuda()) {
#ifdef WFM_HAVE_CUDA
        c10::cuda::CUDAGuard guard(buf.x.device());
        kernels::cuda::iterate(buf.problem, f.data_ptr<float>(), g.data_ptr<float>(), iterations,
            currentStream(buf.x));
#endif
        return;
    }
    kernels::cpu::iterate(buf.problem, f.data_ptr<float>(), g.data_ptr<float>(), iterations,
        at::get_num_threads());
}

RowPass runRowPass(const Buffers& buf, const torch::Tensor& f, const torch::Tensor& g,
    const RowPassRequest& req)
{
    const auto dev = buf.x.device();
    const int64_t B = buf.problem.B, N = buf.problem.N, d = buf.problem.d;
    RowPass out;
    kernels::RowOutputs ro;
    auto f64 = torch::TensorOptions().dtype(torch::kDouble).device(dev);
    auto i64 = torch::TensorOptions().dtype(torch::kLong).device(dev);
    if (req.mass) {
        out.mass = torch::zeros({ B, N }, f64);
        ro.mass = out.mass.data_ptr<double>();
    }
    if (req.cost) {
        out.cost = torch::zeros({ B, N }, f64);
        ro.cost = out.cost.data_ptr<double>();
    }
    if (req.weightedY) {
        out.weightedY = torch::zeros({ B, N, d }, f64.dtype(torch::kFloat));
        ro.weightedY = out.weightedY.data_ptr<float>();
    }
    if (req.argmax) {
        out.argmax = torch::full({ B, N }, -1, i64);
        ro.argmax = out.argmax.data_ptr<int64_t>();
    }
    if (req.sampled) {
        out.sampled = torch::full({ B, N }, -1, i64);
        ro.sampled = out.sampled.data_ptr<int64_t>();
        ro.seed = req.seed;
    }
    if (dev.is_cuda()) {
#ifdef WFM_HAVE_CUDA
        c10::cuda::CUDAGuard guard(dev);
        kernels::cuda::rowPass(buf.problem, f.data_ptr<float>(), g.data_ptr<float>(), ro,
            currentStream(buf.x));
#endif
    } else {
        kernels::cpu::rowPass(buf.problem, f.data_ptr<float>(), g.data_ptr<float>(), ro,
            at::get_num_threads());
    }
    return out;
}

torch::Tensor runColMass(const Buffers& buf, const torch::Tensor& f, const torch::Tensor& g)
{
    auto mass = torch::zeros({ buf.problem.B, buf.problem.M },
        torch::TensorOptions().dtype(torch::kDouble).device(buf.x.device()));
    if (buf.x.is_cuda()) {
#ifdef WFM_HAVE_CUDA
        c10::cuda::CUDAGuard guard(buf.x.device());
        kernels::cuda::colMass(buf.problem, f.data_ptr<float>(), g.data_ptr<float>(),
            mass.data_ptr<double>(), currentStream(buf.x));
#endif
    } else {
        kernels::cpu::colMass(buf.problem, f.data_ptr<float>(), g.data_ptr<float>(),
            mass.data_ptr<double>(), at::get_num_threads());
    }
    return mass;
}

torch::Tensor potential(const torch::Tensor& t, int64_t B, int64_t n, const torch::Device& dev)
{
    return t.to(torch::TensorOptions().dtype(torch::kFloat).device(dev)).reshape({ B, n }).contiguous();
}

torch::Tensor marginalError(const Buffers& buf, const torch::Tensor& f, const torch::Tensor& g,
    const torch::Tensor& a, const torch::Tensor& b)
{
    RowPassRequest req;
    req.mass = true;
    auto rows = runRowPass(buf, f, g, req);
    auto cols = runColMass(buf, f, g);
    return (rows.mass - a.to(torch::kDouble)).abs().sum(1)
        + (cols - b.to(torch::kDouble)).abs().sum(1);
}

} // namespace

bool available(const torch::Tensor& x)
{
    const bool dtypeOk = x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble;
    if (x.is_cpu()) {
        return dtypeOk;
    }
#ifdef WFM_HAVE_CUDA
    if (x.is_cuda()) {
        return dtypeOk;
    }
#endif
    return false;
}

bool preferred(const torch::Tensor& x)
{
    return available(x) && x.scalar_type() == torch::kFloat;
}

torch::Tensor maxLiveCost(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b)
{
    auto buf = makeBuffers(x, y, a, b, torch::Tensor());
    auto out = torch::zeros({ x.size(0) }, torch::TensorOptions().dtype(torch::kFloat).device(x.device()));
    if (x.is_cuda()) {
#ifdef WFM_HAVE_CUDA
        c10::cuda::CUDAGuard guard(x.device());
        kernels::cuda::maxCost(buf.problem, out.data_ptr<float>(), currentStream(buf.x));
#endif
    } else {
        kernels::cpu::maxCost(buf.problem, out.data_ptr<float>(), at::get_num_threads());
    }
    return out.to(torch::kDouble);
}

SinkhornResult solve(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const torch::Tensor& eps, const SinkhornOptions& opt)
{
    auto buf = makeBuffers(x, y, a, b, eps);
    const auto dev = x.device();
    auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(dev);
    auto f = torch::zeros({ x.size(0), x.size(1) }, f32);
    auto g = torch::zeros({ y.size(0), y.size(1) }, f32);

    int done = 0;
    if (opt.tolerance > 0) {
        const int chunk = std::max(1, opt.checkEvery);
        while (done < opt.maxIterations) {
            const int n = std::min(chunk, opt.maxIterations - done);
            runIterations(buf, f, g, n);
            done += n;
            if (marginalError(buf, f, g, a, b).max().item<double>() < opt.tolerance) {
                break;
            }
        }
    } else {
        runIterations(buf, f, g, opt.maxIterations);
        done = opt.maxIterations;
    }

    SinkhornResult r;
    r.fused = true;
    r.iterations = done;
    r.eps = eps;
    RowPassRequest req;
    req.mass = true;
    req.cost = true;
    auto rows = runRowPass(buf, f, g, req);
    auto cols = runColMass(buf, f, g);
    r.cost = rows.cost.sum(1);
    r.marginalError = (rows.mass - a.to(torch::kDouble)).abs().sum(1)
        + (cols - b.to(torch::kDouble)).abs().sum(1);
    r.f = f.to(x.scalar_type());
    r.g = g.to(x.scalar_type());
    if (opt.computePlan) {
        auto C = squaredDistances(x, y);
        auto lw = [](const torch::Tensor& w) {
            return torch::where(w > 0, torch::log(w),
                torch::full_like(w, -std::numeric_limits<double>::infinity()));
        };
        auto e = eps.to(x.scalar_type()).view({ -1, 1, 1 });
        r.plan = (lw(a).unsqueeze(2) + lw(b).unsqueeze(1)
            + (r.f.unsqueeze(2) + r.g.unsqueeze(1) - C) / e)
                     .exp();
    }
    return r;
}

RowPass rowPass(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& r, const RowPassRequest& request)
{
    auto buf = makeBuffers(x, y, a, b, r.eps);
    auto f = potential(r.f, x.size(0), x.size(1), x.device());
    auto g = potential(r.g, y.size(0), y.size(1), x.device());
    return runRowPass(buf, f, g, request);
}

torch::Tensor colMass(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& a,
    const torch::Tensor& b, const SinkhornResult& r)
{
    auto buf = makeBuffers(x, y, a, b, r.eps);
    auto f = potential(r.f, x.size(0), x.size(1), x.device());
    auto g = potential(r.g, y.size(0), y.size(1), x.device());
    return runColMass(buf, f, g);
}

std::pair<torch::Tensor, torch::Tensor> topK(const torch::Tensor& x, const torch::Tensor& y,
    const torch::Tensor& a, const torch::Tensor& b, const SinkhornResult& r, int k)
{
    auto buf = makeBuffers(x, y, a, b, r.eps);
    auto f = potential(r.f, x.size(0), x.size(1), x.device());
    auto g = potential(r.g, y.size(0), y.size(1), x.device());
    const auto dev = x.device();
    auto values = torch::empty({ x.size(0), x.size(1), k }, torch::TensorOptions().dtype(torch::kFloat).device(dev));
    auto indices = torch::empty({ x.size(0), x.size(1), k }, torch::TensorOptions().dtype(torch::kLong).device(dev));
    if (dev.is_cuda()) {
#ifdef WFM_HAVE_CUDA
        c10::cuda::CUDAGuard guard(dev);
        kernels::cuda::topK(buf.problem, f.data_ptr<float>(), g.data_ptr<float>(), k,
            values.data_ptr<float>(), indices.data_ptr<int64_t>(), currentStream(buf.x));
#endif
    } else {
        kernels::cpu::topK(buf.problem, f.data_ptr<float>(), g.data_ptr<float>(), k,
            values.data_ptr<float>(), indices.data_ptr<int64_t>(), at::get_num_threads());
    }
    return { values.cpu(), indices.cpu() };
}

} // namespace wfm::ot::fused

namespace wfm::ot {

std::string fusedCpuSimdLevel()
{
    return kernels::cpu::simdLevel();
}

} // namespace wfm::ot
