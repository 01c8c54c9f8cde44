#pragma once

#include <c10/core/Device.h>

#include <string>

namespace wfm {

/// Parses a device name: "auto" (the first CUDA device when there is one, else the CPU),
/// "cpu", "cuda" or "cuda:N". Throws ConfigError for anything else, or for a CUDA device
/// that this build or machine does not have.
c10::Device parseDevice(const std::string& spec);

/// Human-readable name of a device ("CPU: Intel(R) Xeon(R) ... (2 threads)",
/// "CUDA 0: NVIDIA H100 80GB HBM3 (79.1 GiB)").
std::string deviceName(const c10::Device& device);

/// Number of CUDA devices LibTorch sees (0 when built without CUDA).
int cudaDeviceCount();

/// Sets LibTorch's intra-op threads (0 = the number of cores). Debian's LibTorch defaults to
/// one thread.
void initThreads(int threads = 0);

/// On a CPU with AVX-512 and OPENBLAS_CORETYPE unset, re-executes the program once with
/// OPENBLAS_CORETYPE=SkylakeX so that Debian's OpenBLAS 0.3.21 (which does not recognise
/// recent Xeons and picks its SSE3 kernels) uses its AVX-512 kernels. Call first in main();
/// returns only when no re-exec happened. WFM_NO_BLAS_REEXEC=1 disables it.
void ensureBlasKernel(int argc, char** argv);

/// The OpenBLAS kernel in use ("SkylakeX (OPENBLAS_CORETYPE)", "auto-detected", "not OpenBLAS").
std::string blasKernelDescription();

/// "LibTorch 1.13.1", the CPU model, SIMD level of the fused kernels and so on, for reports.
std::string torchVersionString();
std::string cpuModelName();

} // namespace wfm
