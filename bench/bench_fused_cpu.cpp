// Fused CPU Sinkhorn kernels: 200 iterations of B = 4, N = M = 1024, d = 3 at eps = 0.002 x
// max cost (per pair), per instruction-set path and thread count; one pair of 100,000 points
// (time per iteration, peak RSS growth); the materialised PyTorch log-sum-exp loop as the
// baseline. The machine is shared: run with --benchmark_repetitions and read the *_min rows.
//
//   bench_fused_cpu --benchmark_repetitions=5 --benchmark_filter=Iterate

#include "../core/src/ot/cpu/FusedCpuImpl.h"

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include <malloc.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

namespace fk = wfm::ot::kernels;
namespace fd = wfm::ot::kernels::cpu::detail;

namespace {

struct Batch
{
    int B, N, M, d;
    torch::Tensor x, y, loga, logb, eps;

    fk::Problem problem() const
    {
        fk::Problem p;
        p.x = x.data_ptr<float>();
        p.y = y.data_ptr<float>();
        p.loga = loga.data_ptr<float>();
        p.logb = logb.data_ptr<float>();
        p.eps = eps.data_ptr<float>();
        p.B = B;
        p.N = N;
        p.M = M;
        p.d = d;
        return p;
    }
};

/// Gaussian source, shifted and stretched Gaussian target, uniform weights, eps = epsRel x the
/// largest squared distance of each pair (exact for small N * M, else over a 2000 x 2000 subset).
Batch makeBatch(int B, int N, int M, int d, double epsRel)
{
    torch::manual_seed(1);
    Batch bt { B, N, M, d, {}, {}, {}, {}, {} };
    bt.x = torch::randn({ B, N, d });
    bt.y = torch::randn({ B, M, d }) * 1.5 + 1.0;
    bt.loga = torch::full({ B, N }, -std::log(float(N)));
    bt.logb = torch::full({ B, M }, -std::log(float(M)));
    const int sn = std::min(N, 2000);
    const int sm = std::min(M, 2000);
    auto maxC = torch::cdist(bt.x.slice(1, 0, sn), bt.y.slice(1, 0, sm)).pow(2).amax({ 1, 2 });
    bt.eps = (maxC * epsRel).contiguous();
    return bt;
}

const Batch& batch1024()
{
    static const Batch bt = makeBatch(4, 1024, 1024, 3, 0.002);
    return bt;
}

long peakRssKb()
{
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

void resetPeakRss()
{
    std::ofstream reset("/proc/self/clear_refs");
    reset << "5";
}

/// state.range(0): path (0 portable, 1 AVX2, 2 AVX-512); range(1): threads. 200 iterations
/// from zero potentials per benchmark iteration.
void BM_Iterate200(benchmark::State& state)
{
    const auto isa = fd::Isa(state.range(0));
    if (!fd::isaSupported(isa)) {
        state.SkipWithError("instruction set not supported on this CPU");
        return;
    }
    fd::setIsaOverride(isa);
    const Batch& bt = batch1024();
    const int threads = int(state.range(1));
    std::vector<float> f(std::size_t(bt.B * bt.N));
    std::vector<float> g(std::size_t(bt.B * bt.M));
    for (auto _ : state) {
        std::fill(f.begin(), f.end(), 0.0f);
        std::fill(g.begin(), g.end(), 0.0f);
        fk::cpu::iterate(bt.problem(), f.data(), g.data(), 200, threads);
        benchmark::DoNotOptimize(f.data());
    }
    state.SetLabel(fk::cpu::simdLevel());
    fd::clearIsaOverride();
    state.counters["pairs_x_N_x_M_per_s"] = benchmark::Counter(
        double(bt.B) * bt.N * bt.M * 400.0, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Iterate200)
    ->ArgsProduct({ { 0, 1, 2 }, { 1, 2 } })
    ->ArgNames({ "isa", "threads" })
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->ComputeStatistics("min", [](const std::vector<double>& v) {
        return *std::min_element(v.begin(), v.end());
    });

/// One pair of 100,000 points in 3-D: one iteration per benchmark iteration (potentials warmed
/// by a first call, which also gives the peak RSS growth of a cold call, in MB).
void BM_LargePair(benchmark::State& state)
{
    const int n = int(state.range(0));
    const int threads = int(state.range(1));
    static const Batch bt = makeBatch(1, n, n, 3, 0.002);
    std::vector<float> f(std::size_t(n), 0.0f);
    std::vector<float> g(std::size_t(n), 0.0f);
    malloc_trim(0); // freed memory of earlier runs would hide the growth
    resetPeakRss();
    const long before = peakRssKb();
    fk::cpu::iterate(bt.problem(), f.data(), g.data(), 1, threads);
    state.counters["rss_growth_MB"] = double(peakRssKb() - before) / 1024.0;
    for (auto _ : state) {
        fk::cpu::iterate(bt.problem(), f.data(), g.data(), 1, threads);
        benchmark::DoNotOptimize(f.data());
    }
    state.SetLabel(fk::cpu::simdLevel());
}
BENCHMARK(BM_LargePair)
    ->Args({ 100000, 2 })
    ->Args({ 100000, 1 })
    ->ArgNames({ "n", "threads" })
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->ComputeStatistics("min", [](const std::vector<double>& v) {
        return *std::min_element(v.begin(), v.end());
    });

/// The single passes on the converged B = 4, N = M = 1024 batch: rowPass with every output,
/// colMass, topK (k = 8); state.range(0) = threads.
void BM_Passes(benchmark::State& state)
{
    const Batch& bt = batch1024();
    const int threads = int(state.range(0));
    static std::vector<float> f;
    static std::vector<float> g;
    if (f.empty()) {
        f.assign(std::size_t(bt.B * bt.N), 0.0f);
        g.assign(std::size_t(bt.B * bt.M), 0.0f);
        fk::cpu::iterate(bt.problem(), f.data(), g.data(), 200, 2);
    }
    const long rows = long(bt.B) * bt.N;
    const auto n = static_cast<std::size_t>(rows);
    std::vector<double> mass(n);
    std::vector<double> cost(n);
    std::vector<double> colMass(static_cast<std::size_t>(bt.B * bt.M));
    std::vector<float> weighted(n * 3);
    std::vector<std::int64_t> argmax(n);
    std::vector<std::int64_t> sampled(n);
    std::vector<float> topValues(n * 8);
    std::vector<std::int64_t> topIndices(n * 8);
    const int which = int(state.range(1));
    for (auto _ : state) {
        fk::RowOutputs out;
        if (which == 0) {
            out.mass = mass.data();
            out.cost = cost.data();
            out.weightedY = weighted.data();
        } else if (which == 1) {
            out.argmax = argmax.data();
        } else if (which == 2) {
            out.sampled = sampled.data();
            out.seed = 5;
        }
        if (which <= 2) {
            fk::cpu::rowPass(bt.problem(), f.data(), g.data(), out, threads);
        } else if (which == 3) {
            fk::cpu::colMass(bt.problem(), f.data(), g.data(), colMass.data(), threads);
        } else {
            fk::cpu::topK(bt.problem(), f.data(), g.data(), 8, topValues.data(),
                topIndices.data(), threads);
        }
    }
    static const char* names[] = { "mass+cost+weightedY", "argmax", "sampled", "colMass",
        "topK8" };
    state.SetLabel(names[which]);
}
BENCHMARK(BM_Passes)
    ->ArgsProduct({ { 1, 2 }, { 0, 1, 2, 3, 4 } })
    ->ArgNames({ "threads", "pass" })
    ->Unit(benchmark::kMillisecond)
    ->Repetitions(3)
    ->ComputeStatistics("min", [](const std::vector<double>& v) {
        return *std::min_element(v.begin(), v.end());
    });

/// The PyTorch baseline on the same batch: materialised cost, torch::logsumexp, float32.
/// 20 iterations per benchmark iteration (x10 for the 200-iteration figure).
void BM_TorchLse20(benchmark::State& state)
{
    const Batch& bt = batch1024();
    const int previous = at::get_num_threads();
    at::set_num_threads(int(state.range(0)));
    const auto C = torch::cdist(bt.x, bt.y).pow(2);
    const auto e3 = bt.eps.view({ bt.B, 1, 1 });
    const auto e2 = bt.eps.view({ bt.B, 1 });
    for (auto _ : state) {
        auto f = torch::zeros({ bt.B, bt.N });
        auto g = torch::zeros({ bt.B, bt.M });
        for (int it = 0; it < 20; ++it) {
            g = -e2 * torch::logsumexp(bt.loga.unsqueeze(2) + (f.unsqueeze(2) - C) / e3, 1);
            f = -e2 * torch::logsumexp(bt.logb.unsqueeze(1) + (g.unsqueeze(1) - C) / e3, 2);
        }
        benchmark::DoNotOptimize(f.data_ptr<float>());
    }
    at::set_num_threads(previous);
}
BENCHMARK(BM_TorchLse20)
    ->Arg(2)
    ->ArgName("threads")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->ComputeStatistics("min", [](const std::vector<double>& v) {
        return *std::min_element(v.begin(), v.end());
    });

} // namespace

BENCHMARK_MAIN();
