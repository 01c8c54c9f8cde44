// wfm train: trains a flow on a dataset SPEC into a run folder; wfm config: prints settings.

#include "Cli.h"

#include "wfm/Error.h"
#include "wfm/Platform.h"
#include "wfm/flow/TrainConfig.h"
#include "wfm/flow/Trainer.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

namespace wfm::cli {
namespace {

std::atomic<bool> g_interrupted { false };

extern "C" void onInterrupt(int)
{
    g_interrupted = true;
}

struct TrainArgs
{
    std::string spec;
    std::string out;
    std::string config;
    std::string kind;
    std::int64_t steps = 0;
    int batch = 0;
    double lr = 0;
    std::string device;
    std::int64_t seed = -1;
    bool resume = false;
    bool quiet = false;
};

std::string formatDuration(double s)
{
    if (!std::isfinite(s) || s < 0) {
        return "?";
    }
    const long long t = static_cast<long long>(s + 0.5);
    char buf[64];
    if (t >= 3600) {
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t / 60) % 60);
    } else if (t >= 60) {
        std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%llds", t);
    }
    return buf;
}

int runTrain(const TrainArgs& args)
{
    if (args.out.empty()) {
        throw UsageError("train: --out DIR is required");
    }
    std::unique_ptr<flow::Trainer> trainer;
    if (args.resume) {
        if (!args.spec.empty() || !args.config.empty() || args.batch > 0 || args.lr > 0 || args.seed >= 0
            || !args.kind.empty()) {
            throw UsageError("train --resume continues the run in --out with its stored settings; "
                             "only --steps and --device may change");
        }
        trainer = flow::Trainer::resume(args.out, args.steps, args.device);
    } else {
        flow::TrainConfig config;
        if (!args.config.empty()) {
            config = flow::TrainConfig::fromFile(args.config);
        }
        if (!args.spec.empty()) {
            config.data.spec = args.spec;
        } else if (args.config.empty()) {
            throw UsageError("train: --data SPEC (or --config with data.spec) is required");
        }
        if (!args.kind.empty()) {
            config.kind = flow::parseModelKind(args.kind);
        }
        if (args.steps > 0) {
            config.train.steps = args.steps;
        }
        if (args.batch > 0) {
            config.train.batch = args.batch;
        }
        if (args.lr > 0) {
            config.optim.lr = args.lr;
        }
        if (!args.device.empty()) {
            config.train.device = args.device;
        }
        if (args.seed >= 0) {
            config.train.seed = static_cast<std::uint64_t>(args.seed);
        }
        config.validate();
        trainer = std::make_unique<flow::Trainer>(config, args.out);
    }
    const auto& c = trainer->config();
    if (!args.quiet) {
        std::cerr << "wfm train: " << flow::modelKindName(trainer->kind()) << " on '" << c.data.spec
                  << "' (" << trainer->trainCount() << " train / "
                  << trainer->testCount() << " test), " << trainer->parameterCount()
                  << " parameters, device " << deviceName(parseDevice(c.train.device)) << ", from step "
                  << trainer->step() << " to " << c.train.steps << std::endl;
    }

    // Ctrl-C stops between steps and keeps a checkpoint.
    g_interrupted = false;
    auto previous = std::signal(SIGINT, onInterrupt);
    std::signal(SIGTERM, onInterrupt);
    std::atomic<bool> done { false };
    std::thread watcher([&] {
        while (!done.load()) {
            if (g_interrupted.load()) {
                trainer->stop();
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    flow::TrainResult result;
    try {
        result = trainer->run([&](const flow::TrainProgress& p) {
            if (args.quiet) {
                return;
            }
            char line[256];
            std::snprintf(line, sizeof line,
                "step %lld/%lld  loss %.5g (avg %.5g)  lr %.3g  %.1f items/s  ot %.0f%%  eta %s",
                static_cast<long long>(p.step), static_cast<long long>(p.totalSteps), p.loss,
                p.smoothedLoss, p.lr, p.itemsPerSecond,
                p.timings.total > 0 ? 100.0 * (p.timings.minibatchOt + p.timings.innerOt) / p.timings.total : 0.0,
                formatDuration(p.etaSeconds).c_str());
            std::cerr << line << std::endl;
        });
    } catch (...) {
        done = true;
        watcher.join();
        std::signal(SIGINT, previous);
        throw;
    }
    done = true;
    watcher.join();
    std::signal(SIGINT, previous);

    nlohmann::json out;
    out["run"] = args.out;
    out["kind"] = flow::modelKindName(trainer->kind());
    out["step"] = result.step;
    out["steps"] = c.train.steps;
    out["completed"] = result.completed;
    out["stopped"] = result.stopped;
    out["last_loss"] = result.lastLoss;
    out["seconds"] = result.seconds;
    out["checkpoint"] = result.checkpoint;
    out["parameters"] = trainer->parameterCount();
    printJson(out);
    return result.stopped && g_interrupted.load() ? 130 : 0;
}

struct ConfigArgs
{
    bool defaults = false;
    std::string check;
};

int runConfig(const ConfigArgs& args)
{
    if (args.defaults == !args.check.empty()) {
        throw UsageError("config: give exactly one of --defaults and --check FILE");
    }
    if (args.defaults) {
        std::cout << flow::TrainConfig().toJsonString() << std::endl;
        return 0;
    }
    // A run folder or checkpoint prints its stored config; a JSON file is validated.
    std::error_code ec;
    if (std::filesystem::is_directory(args.check, ec) || args.check.size() > 3
            && args.check.compare(args.check.size() - 3, 3, ".pt") == 0) {
        std::cout << flow::readCheckpointConfig(args.check).toJsonString() << std::endl;
        return 0;
    }
    std::cout << flow::TrainConfig::fromFile(args.check).toJsonString() << std::endl;
    return 0;
}

} // namespace

Runner addTrainCommand(CLI::App& app)
{
    auto a = std::make_shared<TrainArgs>();
    auto* cmd = app.add_subcommand("train",
        "Train a Wasserstein flow on a dataset SPEC; writes DIR/config.json, DIR/checkpoint.pt, DIR/log.csv");
    cmd->add_option("--data", a->spec, "Dataset SPEC: builtin:NAME[?k=v&...], npy:PATH, npz:PATH, ...");
    cmd->add_option("--out", a->out, "Run folder")->required();
    cmd->add_option("--config", a->config, "Config JSON (see 'wfm config --defaults'); flags override it");
    cmd->add_option("--kind", a->kind, "auto (from the data), clouds or gaussians");
    cmd->add_option("--steps", a->steps, "Total training steps");
    cmd->add_option("--batch", a->batch, "Distributions per step");
    cmd->add_option("--lr", a->lr, "Peak learning rate");
    cmd->add_option("--device", a->device, "auto, cpu, cuda or cuda:N");
    cmd->add_option("--seed", a->seed, "Random seed");
    cmd->add_flag("--resume", a->resume, "Continue the run in --out from its checkpoint");
    cmd->add_flag("--quiet", a->quiet, "No progress lines on stderr");
    return [a]() { return runTrain(*a); };
}

Runner addConfigCommand(CLI::App& app)
{
    auto a = std::make_shared<ConfigArgs>();
    auto* cmd = app.add_subcommand("config", "Print the default training config, or check a config file / run");
    cmd->add_flag("--defaults", a->defaults, "Print every setting with its default value");
    cmd->add_option("--check", a->check, "Validate a config JSON (or print a run folder's stored config)");
    return [a]() { return runConfig(*a); };
}

} // namespace wfm::cli
