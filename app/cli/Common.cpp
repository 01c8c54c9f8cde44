#include "Cli.h"

#include "wfm/Error.h"
#include "wfm/data/Npy.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sys/resource.h>
#include <unistd.h>

namespace wfm::cli {

void printJson(const nlohmann::json& j)
{
    std::cout << j.dump() << std::endl;
}

torch::Tensor readFloatArray(const std::string& path, const std::string& role)
{
    torch::Tensor t = data::readNpy(path);
    if (t.scalar_type() != torch::kFloat && t.scalar_type() != torch::kDouble) {
        if (t.scalar_type() == torch::kLong || t.scalar_type() == torch::kInt) {
            t = t.to(torch::kDouble);
        } else {
            throw DatasetError(path + ": " + role + " must be a float32, float64 or integer array, got "
                + std::string(c10::toString(t.scalar_type())));
        }
    }
    if (t.numel() > 0 && !torch::isfinite(t).all().item<bool>()) {
        throw DatasetError(path + ": " + role + " contains NaN or inf");
    }
    return t;
}

nlohmann::json tensorToJson(const torch::Tensor& t)
{
    auto c = t.to(torch::kDouble).cpu().contiguous();
    if (c.dim() == 0) {
        return c.item<double>();
    }
    nlohmann::json arr = nlohmann::json::array();
    for (int64_t i = 0; i < c.size(0); ++i) {
        arr.push_back(tensorToJson(c[i]));
    }
    return arr;
}

double nowSeconds()
{
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

long long peakRssBytes()
{
    rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<long long>(ru.ru_maxrss) * 1024LL;
}

long long currentRssBytes()
{
    std::ifstream in("/proc/self/statm");
    long long pages = 0, resident = 0;
    in >> pages >> resident;
    return resident * static_cast<long long>(sysconf(_SC_PAGESIZE));
}

} // namespace wfm::cli
