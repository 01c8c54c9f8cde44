#include "wfm/Platform.h"

#include "wfm/Error.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#ifdef WFM_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace wfm {

int cudaDeviceCount()
{
    return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
}

c10::Device parseDevice(const std::string& spec)
{
    if (spec.empty() || spec == "auto") {
        return cudaDeviceCount() > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
    }
    if (spec == "cpu") {
        return c10::Device(c10::kCPU);
    }
    if (spec.rfind("cuda", 0) == 0) {
        int index = 0;
        if (spec.size() > 4) {
            WFM_CHECK(spec[4] == ':' && spec.size() > 5, "device '", spec,
                "' is not one of auto, cpu, cuda, cuda:N");
            try {
                index = std::stoi(spec.substr(5));
            } catch (const std::exception&) {
                throw ConfigError("device '" + spec + "': the CUDA index is not a number");
            }
        }
        const int n = cudaDeviceCount();
        WFM_CHECK(n > 0, "device '", spec,
            "': no CUDA device is available (this build or machine has none)");
        WFM_CHECK(index >= 0 && index < n, "device '", spec, "': only ", n,
            " CUDA device(s) present");
        return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
    throw ConfigError("device '" + spec + "' is not one of auto, cpu, cuda, cuda:N");
}

std::string cpuModelName()
{
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            auto pos = line.find(':');
            if (pos != std::string::npos) {
                return line.substr(pos + 2);
            }
        }
    }
    return "unknown CPU";
}

std::string deviceName(const c10::Device& device)
{
    if (device.is_cuda()) {
#ifdef WFM_HAVE_CUDA
        const auto* prop = at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index());
        char mem[64];
        std::snprintf(mem, sizeof mem, " (%.1f GiB)",
            static_cast<double>(prop->totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
        return "CUDA " + std::to_string(device.index() < 0 ? 0 : device.index()) + ": "
            + prop->name + mem;
#else
        return "CUDA " + std::to_string(device.index());
#endif
    }
    return "CPU: " + cpuModelName() + " (" + std::to_string(at::get_num_threads()) + " threads)";
}

void initThreads(int threads)
{
    if (threads <= 0) {
        threads = static_cast<int>(std::thread::hardware_concurrency());
        if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
            const int n = std::atoi(omp);
            if (n > 0) {
                threads = n;
            }
        }
    }
    if (threads <= 0) {
        threads = 1;
    }
    at::set_num_threads(threads);
}

namespace {

bool cpuHasAvx512()
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

} // namespace

void ensureBlasKernel(int argc, char** argv)
{
    (void)argc;
    if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("WFM_NO_BLAS_REEXEC")) {
        return;
    }
    if (!cpuHasAvx512()) {
        return;
    }
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    setenv("WFM_BLAS_REEXEC", "1", 1);
    std::vector<char> self(4096);
    const ssize_t n = readlink("/proc/self/exe", self.data(), self.size() - 1);
    if (n <= 0) {
        return;
    }
    self[static_cast<size_t>(n)] = '\0';
    execv(self.data(), argv);
    // execv only returns on failure: carry on with the auto-detected kernel.
}

std::string blasKernelDescription()
{
    const char* core = std::getenv("OPENBLAS_CORETYPE");
    if (core) {
        return std::string("OpenBLAS core ") + core
            + (std::getenv("WFM_BLAS_REEXEC") ? " (set by wfm)" : " (set by the user)");
    }
    return "OpenBLAS auto-detected core";
}

std::string torchVersionString()
{
    return "LibTorch " TORCH_VERSION;
}

} // namespace wfm
