// wfm bures: Bures-Wasserstein distance, Monge map and geodesic between two Gaussians.

#include "Cli.h"

#include "wfm/Error.h"
#include "wfm/ot/BuresWasserstein.h"

#include <torch/torch.h>

#include <memory>

namespace wfm::cli {
namespace {

struct BuresArgs
{
    std::string mean0, cov0, mean1, cov1;
    double t = -1.0;
    bool hasT = false;
};

int run(const BuresArgs& args)
{
    auto m0 = readFloatArray(args.mean0, "mean").to(torch::kDouble);
    auto S0 = readFloatArray(args.cov0, "covariance").to(torch::kDouble);
    auto m1 = readFloatArray(args.mean1, "mean").to(torch::kDouble);
    auto S1 = readFloatArray(args.cov1, "covariance").to(torch::kDouble);
    auto checkPair = [](const torch::Tensor& m, const std::string& mf, const torch::Tensor& S,
                         const std::string& sf) {
        if (m.dim() != 1 && m.dim() != 2) {
            throw DatasetError(mf + ": mean must be [d] or [K,d]");
        }
        const int64_t d = m.size(-1);
        if (S.dim() != m.dim() + 1 || S.size(-1) != d || S.size(-2) != d
            || (m.dim() == 2 && S.size(0) != m.size(0))) {
            throw DatasetError(sf + ": covariance must be [" + std::to_string(d) + ","
                + std::to_string(d) + "] (or [K,d,d]) to match " + mf);
        }
        ot::bw::validateCovariance(S, sf);
    };
    checkPair(m0, args.mean0, S0, args.cov0);
    checkPair(m1, args.mean1, S1, args.cov1);
    if (m0.sizes() != m1.sizes()) {
        throw DatasetError("dimension mismatch: " + args.mean0 + " and " + args.mean1
            + " have different shapes");
    }
    if (args.hasT && !(args.t >= 0.0 && args.t <= 1.0)) {
        throw UsageError("--t must lie in [0,1]");
    }
    nlohmann::json out;
    out["w2"] = tensorToJson(ot::bw::distance(m0, S0, m1, S1));
    out["A"] = tensorToJson(ot::bw::mongeMap(S0, S1));
    if (args.hasT) {
        auto geo = ot::bw::geodesic(m0, S0, m1, S1, args.t);
        out["t"] = args.t;
        out["mean_t"] = tensorToJson(geo.mean);
        out["cov_t"] = tensorToJson(geo.cov);
        auto vel = ot::bw::velocity(m0, S0, m1, S1, args.t);
        out["velocity_mean"] = tensorToJson(vel.dm);
        out["velocity_W"] = tensorToJson(vel.W);
    }
    printJson(out);
    return 0;
}

} // namespace

Runner addBuresCommand(CLI::App& app)
{
    auto args = std::make_shared<BuresArgs>();
    auto* cmd = app.add_subcommand("bures", "Bures-Wasserstein distance, Monge map and geodesic between Gaussians");
    cmd->add_option("--mean0", args->mean0, "Source mean m0.npy, [d] (or [K,d])")->required();
    cmd->add_option("--cov0", args->cov0, "Source covariance S0.npy, [d,d] (or [K,d,d])")->required();
    cmd->add_option("--mean1", args->mean1, "Target mean m1.npy")->required();
    cmd->add_option("--cov1", args->cov1, "Target covariance S1.npy")->required();
    auto* t = cmd->add_option("--t", args->t, "Time in [0,1]: also print the geodesic point (mean_t, cov_t) and velocity");
    return [args, t]() {
        args->hasT = t->count() > 0;
        return run(*args);
    };
}

} // namespace wfm::cli
