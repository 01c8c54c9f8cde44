#pragma once
// Shared pieces of the `wfm` command line: command registration, JSON output, input checks.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <functional>
#include <string>

namespace wfm::cli {

/// A usage problem (bad flag combination or value): exit code 2.
class UsageError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// Each command adds itself as a subcommand and returns the function that runs it.
using Runner = std::function<int()>;
Runner addOtCommand(CLI::App& app);
Runner addBuresCommand(CLI::App& app);
Runner addBenchCommand(CLI::App& app);
Runner addInspectCommand(CLI::App& app);
Runner addTrainCommand(CLI::App& app);
Runner addConfigCommand(CLI::App& app);
Runner addGenerateCommand(CLI::App& app);
Runner addEvaluateCommand(CLI::App& app);

/// Prints one JSON object on stdout.
void printJson(const nlohmann::json& j);

/// Reads an .npy file as float64/float32 points, checking shape and finiteness; errors name the file.
torch::Tensor readFloatArray(const std::string& path, const std::string& role);

/// Tensor -> JSON (nested lists), for small results.
nlohmann::json tensorToJson(const torch::Tensor& t);

/// Seconds since an arbitrary origin (steady clock).
double nowSeconds();

/// Peak resident memory of this process in bytes (getrusage), and current RSS.
long long peakRssBytes();
long long currentRssBytes();

} // namespace wfm::cli
