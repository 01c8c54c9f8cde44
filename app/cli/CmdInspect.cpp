// wfm inspect: what a data SPEC loads (count, sizes, dimension, labels, memory), as JSON.

#include "Cli.h"

#include "wfm/data/BuiltinFamilies.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/GaussianDataset.h"
#include "wfm/data/PointCloudDataset.h"

#include <torch/torch.h>

#include <memory>

namespace wfm::cli {
namespace {

struct InspectArgs
{
    std::string spec;
    bool listBuiltins = false;
};

int run(const InspectArgs& args)
{
    if (args.listBuiltins) {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& name : data::builtinNames()) {
            out[name] = data::builtinDescription(name);
        }
        for (const auto& name : data::gaussianBuiltinNames()) {
            out[name] = "Gaussians (mean + covariance); options: " + [&] {
                std::string keys;
                for (const auto& [k, v] : data::gaussianBuiltinOptions(name)) {
                    keys += (keys.empty() ? "" : ", ") + k + "=" + v;
                }
                return keys;
            }();
        }
        printJson({ { "builtins", out } });
        return 0;
    }
    if (args.spec.empty()) {
        throw UsageError("inspect: --data SPEC is required (or --builtins)");
    }
    const double t0 = nowSeconds();
    if (data::isGaussianSpec(args.spec)) {
        auto g = data::loadGaussians(args.spec);
        nlohmann::json out;
        out["spec"] = args.spec;
        out["kind"] = "gaussians";
        out["count"] = g.count();
        out["dim"] = g.dim();
        nlohmann::json labels = nlohmann::json::object();
        for (int64_t k = 0; k < g.numLabels(); ++k) {
            labels[g.labelNames[k]] = (g.labels == k).sum().item<int64_t>();
        }
        out["labels"] = labels;
        out["memory_bytes"] = g.means.nbytes() + g.covariances.nbytes();
        out["load_seconds"] = nowSeconds() - t0;
        printJson(out);
        return 0;
    }
    auto ds = data::loadPointClouds(args.spec);
    const double seconds = nowSeconds() - t0;
    const auto s = ds.summary();
    nlohmann::json out;
    out["spec"] = args.spec;
    out["kind"] = "point-clouds";
    out["count"] = s.count;
    out["dim"] = s.dim;
    out["max_points"] = s.maxPoints;
    out["sizes"] = { { "min", s.minSize }, { "mean", s.meanSize }, { "max", s.maxSize },
        { "total", s.totalPoints } };
    nlohmann::json labels = nlohmann::json::object();
    for (size_t k = 0; k < s.labelNames.size(); ++k) {
        labels[s.labelNames[k]] = s.labelCounts[k];
    }
    out["labels"] = labels;
    out["cond_dim"] = s.condDim;
    out["memory_bytes"] = s.memoryBytes;
    out["load_seconds"] = seconds;
    printJson(out);
    return 0;
}

} // namespace

Runner addInspectCommand(CLI::App& app)
{
    auto args = std::make_shared<InspectArgs>();
    auto* cmd = app.add_subcommand("inspect", "Load a dataset SPEC and print what it holds (count, sizes, dimension, labels, memory)");
    cmd->add_option("--data", args->spec, "builtin:NAME[?key=value&...], npy:PATH or npz:PATH");
    cmd->add_flag("--builtins", args->listBuiltins, "List the built-in dataset families");
    return [args]() { return run(*args); };
}

} // namespace wfm::cli
