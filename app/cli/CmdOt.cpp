// wfm ot: optimal transport between two point clouds (or batches of them).

#include "Cli.h"

#include "wfm/Error.h"
#include "wfm/Platform.h"
#include "wfm/data/Npy.h"
#include "wfm/ot/ExactOT.h"
#include "wfm/ot/Sinkhorn.h"
#include "wfm/ot/TransportMap.h"

#include <torch/torch.h>

#include <memory>

namespace wfm::cli {
namespace {

struct OtArgs
{
    std::string source, target, sourceWeights, targetWeights;
    std::string method = "sinkhorn";
    double eps = 0.002;
    std::string epsMode = "relative";
    int iters = 200;
    double tol = 0.0;
    std::string plan;
    std::string mapOut;
    std::string mapKind = "rounded";
    std::string device = "auto";
    std::string backend = "auto";
    std::string dtype = "float32";
};

torch::Tensor readWeights(const std::string& path, const torch::Tensor& points, bool batched)
{
    torch::Tensor w = readFloatArray(path, "weights");
    const int64_t B = points.size(0), N = points.size(1);
    if (!batched) {
        if (w.dim() != 1 || w.size(0) != N) {
            throw DatasetError(path + ": weights must have shape [" + std::to_string(N)
                + "] to match the points");
        }
        w = w.unsqueeze(0);
    } else if (w.dim() != 2 || w.size(0) != B || w.size(1) != N) {
        throw DatasetError(path + ": weights must have shape [" + std::to_string(B) + ","
            + std::to_string(N) + "] to match the points");
    }
    w = w.to(torch::kDouble);
    if ((w < 0).any().item<bool>()) {
        throw DatasetError(path + ": weights contain negative values");
    }
    auto sums = w.sum(1);
    if ((sums <= 0).any().item<bool>()) {
        throw DatasetError(path + ": weights sum to zero (for at least one cloud)");
    }
    // Weights that do not sum to one are normalised: only their proportions matter.
    return w / sums.unsqueeze(1);
}

int run(const OtArgs& args)
{
    if (args.method != "sinkhorn" && args.method != "exact") {
        throw UsageError("--method must be sinkhorn or exact, got '" + args.method + "'");
    }
    if (args.epsMode != "relative" && args.epsMode != "absolute") {
        throw UsageError("--eps-mode must be relative or absolute, got '" + args.epsMode + "'");
    }
    if (args.dtype != "float32" && args.dtype != "float64") {
        throw UsageError("--dtype must be float32 or float64");
    }
    if (!(args.eps > 0)) {
        throw UsageError("--eps must be positive");
    }
    if (args.iters < 0) {
        throw UsageError("--iters must be >= 0");
    }
    auto x = readFloatArray(args.source, "source points");
    auto y = readFloatArray(args.target, "target points");
    if (x.dim() != 2 && x.dim() != 3) {
        throw DatasetError(args.source + ": source points must be [N,d] or [B,N,d], got "
            + std::to_string(x.dim()) + "-d array");
    }
    if (y.dim() != x.dim()) {
        throw DatasetError(args.target + ": target points must have the same rank as "
            + args.source + " ([N,d] or [B,N,d])");
    }
    const bool batched = x.dim() == 3;
    if (!batched) {
        x = x.unsqueeze(0);
        y = y.unsqueeze(0);
    }
    if (x.size(2) != y.size(2)) {
        throw DatasetError("dimension mismatch: " + args.source + " has d=" + std::to_string(x.size(2))
            + " but " + args.target + " has d=" + std::to_string(y.size(2)));
    }
    if (x.size(0) != y.size(0)) {
        throw DatasetError("batch mismatch: " + args.source + " has " + std::to_string(x.size(0))
            + " clouds but " + args.target + " has " + std::to_string(y.size(0)));
    }
    if (x.size(1) == 0 || y.size(1) == 0) {
        throw DatasetError((x.size(1) == 0 ? args.source : args.target) + ": empty point cloud");
    }
    torch::Tensor a = args.sourceWeights.empty() ? torch::Tensor() : readWeights(args.sourceWeights, x, batched);
    torch::Tensor b = args.targetWeights.empty() ? torch::Tensor() : readWeights(args.targetWeights, y, batched);

    const auto device = parseDevice(args.device);
    const auto dtype = args.dtype == "float64" ? torch::kDouble : torch::kFloat;
    x = x.to(device, dtype);
    y = y.to(device, dtype);
    if (a.defined()) {
        a = a.to(device, dtype);
    }
    if (b.defined()) {
        b = b.to(device, dtype);
    }

    nlohmann::json out;
    out["method"] = args.method;
    out["device"] = deviceName(device);
    out["batch"] = x.size(0);
    out["n"] = x.size(1);
    out["m"] = y.size(1);
    out["d"] = x.size(2);

    if (args.method == "exact") {
        const double t0 = nowSeconds();
        std::vector<double> costs;
        std::vector<torch::Tensor> plans;
        for (int64_t k = 0; k < x.size(0); ++k) {
            auto r = ot::exactEmd(x[k], y[k], a.defined() ? a[k] : torch::Tensor(),
                b.defined() ? b[k] : torch::Tensor(), !args.plan.empty());
            costs.push_back(r.cost);
            if (!args.plan.empty()) {
                plans.push_back(r.plan);
            }
        }
        out["seconds"] = nowSeconds() - t0;
        out["cost"] = batched ? nlohmann::json(costs) : nlohmann::json(costs[0]);
        out["iterations"] = 0;
        out["marginal_error"] = 0.0;
        if (!args.plan.empty()) {
            auto P = torch::stack(plans);
            data::writeNpy(args.plan, batched ? P : P.squeeze(0));
            out["plan"] = args.plan;
        }
        printJson(out);
        return 0;
    }

    ot::SinkhornOptions opt;
    opt.eps = args.eps;
    opt.epsMode = args.epsMode == "absolute" ? ot::EpsMode::Absolute : ot::EpsMode::Relative;
    opt.maxIterations = args.iters;
    opt.tolerance = args.tol;
    opt.computePlan = !args.plan.empty();
    if (args.backend == "tensor") {
        opt.backend = ot::SinkhornBackend::Tensor;
    } else if (args.backend == "fused") {
        opt.backend = ot::SinkhornBackend::Fused;
    } else if (args.backend != "auto") {
        throw UsageError("--backend must be auto, tensor or fused");
    }
    const auto mapKind = ot::parseMapKind(args.mapKind);

    if (device.is_cuda()) {
        torch::cuda::synchronize();
    }
    const double t0 = nowSeconds();
    auto r = ot::sinkhorn(x, y, a, b, opt);
    if (device.is_cuda()) {
        torch::cuda::synchronize();
    }
    const double seconds = nowSeconds() - t0;

    auto costs = r.cost.cpu();
    out["seconds"] = seconds;
    out["cost"] = batched ? tensorToJson(costs) : nlohmann::json(costs[0].item<double>());
    out["iterations"] = r.iterations;
    auto me = r.marginalError.cpu();
    out["marginal_error"] = batched ? tensorToJson(me) : nlohmann::json(me[0].item<double>());
    out["eps"] = batched ? tensorToJson(r.eps.cpu()) : nlohmann::json(r.eps[0].item<double>());
    out["eps_mode"] = args.epsMode;
    out["backend"] = r.fused ? "fused" : "tensor";
    if (!args.plan.empty()) {
        data::writeNpy(args.plan, batched ? r.plan.cpu() : r.plan.cpu().squeeze(0));
        out["plan"] = args.plan;
    }
    if (!args.mapOut.empty()) {
        auto T = ot::transportMap(x, y, a, b, r, mapKind);
        data::writeNpy(args.mapOut, batched ? T.cpu() : T.cpu().squeeze(0));
        out["map"] = args.mapOut;
        out["map_kind"] = args.mapKind;
    }
    printJson(out);
    return 0;
}

} // namespace

Runner addOtCommand(CLI::App& app)
{
    auto args = std::make_shared<OtArgs>();
    auto* cmd = app.add_subcommand("ot", "Optimal transport between point clouds (.npy, [N,d] or [B,N,d])");
    cmd->add_option("--source", args->source, "Source points A.npy, [N,d] or [B,N,d]")->required();
    cmd->add_option("--target", args->target, "Target points B.npy, [M,d] or [B,M,d]")->required();
    cmd->add_option("--source-weights", args->sourceWeights, "Source weights a.npy, [N] or [B,N] (default uniform; 0 = padding)");
    cmd->add_option("--target-weights", args->targetWeights, "Target weights b.npy, [M] or [B,M]");
    cmd->add_option("--method", args->method, "sinkhorn (entropic, log-domain) or exact (network simplex EMD)")->capture_default_str();
    cmd->add_option("--eps", args->eps, "Entropic regularisation")->capture_default_str();
    cmd->add_option("--eps-mode", args->epsMode, "relative (eps x max cost of each pair) or absolute")->capture_default_str();
    cmd->add_option("--iters", args->iters, "Sinkhorn iterations (the cap when --tol is given)")->capture_default_str();
    cmd->add_option("--tol", args->tol, "Stop when the L1 marginal error is below this (0 = fixed iterations)")->capture_default_str();
    cmd->add_option("--plan", args->plan, "Write the transport plan to this .npy ([N,M] or [B,N,M])");
    cmd->add_option("--map", args->mapOut, "Write the map T(x) of the source points to this .npy");
    cmd->add_option("--map-kind", args->mapKind, "rounded, argmax, sampled or barycentric")->capture_default_str();
    cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
    cmd->add_option("--backend", args->backend, "auto, fused (kernels, linear memory) or tensor (reference)")->capture_default_str();
    cmd->add_option("--dtype", args->dtype, "float32 or float64 computation")->capture_default_str();
    return [args]() { return run(*args); };
}

} // namespace wfm::cli
