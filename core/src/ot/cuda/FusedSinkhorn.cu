// CUDA entry points of the fused Sinkhorn kernels (contract: ot/FusedKernels.h). The kernels and
// their orchestration live in FusedSinkhornKernels.cuh; this file supplies the launcher (stream,
// launch-error checks, stream-ordered scratch) and the public functions. No LibTorch here.

#include "ot/FusedKernels.h"
#include "ot/cuda/FusedSinkhornKernels.cuh"
#include "ot/cuda/FusedSinkhornTuning.h"

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace wfm::ot::kernels::cuda {
namespace {

[[noreturn]] void throwCuda(cudaError_t e, const char* what)
{
    throw std::runtime_error(std::string("fused Sinkhorn (CUDA): ") + what + ": "
        + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

void check(cudaError_t e, const char* what)
{
    if (e != cudaSuccess) {
        throwCuda(e, what);
    }
}

/// Launches on one stream and turns every launch error into std::runtime_error.
class CudaLauncher
{
public:
    explicit CudaLauncher(void* stream)
        : m_stream(static_cast<cudaStream_t>(stream))
    {
    }

    template <class... Params, class... Args>
    void launch(void (*kernel)(Params...), int grid, int threads, std::size_t smem, Args... args)
    {
        if (grid <= 0) {
            return;
        }
        if (smem > 48 * 1024) {
            check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                      static_cast<int>(smem)),
                "cudaFuncSetAttribute");
        }
        kernel<<<static_cast<unsigned>(grid), static_cast<unsigned>(threads), smem, m_stream>>>(
            args...);
        check(cudaGetLastError(), "kernel launch");
    }

    /// launch() as a programmatic dependent of the stream's previous kernel (sm_90 and newer;
    /// WFM_CUDA_SINKHORN_PDL=0 turns it off): the kernel's blocks may start while the previous
    /// kernel drains and must wait (griddepcontrol.wait) before reading what it wrote.
    template <class... Params, class... Args>
    void launchDependent(void (*kernel)(Params...), int grid, int threads, std::size_t smem,
        Args... args)
    {
        if (grid <= 0) {
            return;
        }
        if (!dependentLaunchEnabled()) {
            launch(kernel, grid, threads, smem, args...);
            return;
        }
        if (smem > 48 * 1024) {
            check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                      static_cast<int>(smem)),
                "cudaFuncSetAttribute");
        }
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(static_cast<unsigned>(grid));
        cfg.blockDim = dim3(static_cast<unsigned>(threads));
        cfg.dynamicSmemBytes = smem;
        cfg.stream = m_stream;
        cudaLaunchAttribute attr[1];
        attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
        check(cudaLaunchKernelEx(&cfg, kernel, args...), "cudaLaunchKernelEx");
    }

    /// Stream-ordered scratch (cudaMallocAsync); plain cudaMalloc where memory pools are missing.
    float* allocFloats(std::size_t n)
    {
        void* p = nullptr;
        const std::size_t bytes = n * sizeof(float) > 0 ? n * sizeof(float) : sizeof(float);
        const cudaError_t e = cudaMallocAsync(&p, bytes, m_stream);
        if (e == cudaSuccess) {
            m_async = true;
            return static_cast<float*>(p);
        }
        if (e != cudaErrorNotSupported) {
            throwCuda(e, "cudaMallocAsync");
        }
        (void)cudaGetLastError();
        check(cudaMalloc(&p, bytes), "cudaMalloc");
        m_async = false;
        return static_cast<float*>(p);
    }

    void release(float* p) noexcept
    {
        if (p == nullptr) {
            return;
        }
        if (m_async) {
            (void)cudaFreeAsync(p, m_stream);
        } else {
            (void)cudaStreamSynchronize(m_stream);
            (void)cudaFree(p);
        }
    }

    std::size_t maxSmemBytes()
    {
        if (m_maxSmem == 0) {
            int device = 0;
            int bytes = 0;
            check(cudaGetDevice(&device), "cudaGetDevice");
            check(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
                "cudaDeviceGetAttribute");
            m_maxSmem = static_cast<std::size_t>(bytes);
        }
        return m_maxSmem;
    }

    /// launchDependent() launches plainly from now on.
    void disableDependentLaunch() { m_pdl = 0; }

private:
    bool dependentLaunchEnabled()
    {
        if (m_pdl < 0) {
            const char* v = std::getenv("WFM_CUDA_SINKHORN_PDL");
            int device = 0;
            int major = 0;
            check(cudaGetDevice(&device), "cudaGetDevice");
            check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                "cudaDeviceGetAttribute");
            m_pdl = major >= 9 && !(v != nullptr && std::string(v) == "0") ? 1 : 0;
        }
        return m_pdl == 1;
    }

    cudaStream_t m_stream;
    int m_pdl = -1;
    bool m_async = true;
    std::size_t m_maxSmem = 0;
};

/// The kernel variant named by WFM_CUDA_SINKHORN_VARIANT (a benchmarking knob, read once; see
/// bench/gpu/README.md), or -1: chosen by size.
int requestedVariant()
{
    static const int variant = [] {
        const char* v = std::getenv("WFM_CUDA_SINKHORN_VARIANT");
        if (v == nullptr || *v == 0) {
            return -1;
        }
        for (int k = 0; k < detail::kLseVariantCount; ++k) {
            if (std::string(v) == detail::kLseVariants[k].name) {
                return k;
            }
        }
        throw std::invalid_argument(std::string("WFM_CUDA_SINKHORN_VARIANT: unknown kernel variant ") + v);
    }();
    return variant;
}

int multiprocessors()
{
    int device = 0;
    int sms = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
        "cudaDeviceGetAttribute");
    return sms;
}

} // namespace

void iterate(const Problem& p, float* f, float* g, int iterations, void* stream)
{
    CudaLauncher l(stream);
    int variant = requestedVariant();
    if (variant < 0) {
        // Grids with fewer blocks than SMs under the default kernel (one pair of 2048 points is
        // 4 blocks) take the 2-rows kernel with plain launches: twice the blocks, and dependent
        // launches do not pay off for it (bench/results/gpu-h100-2026-11-28).
        if (detail::isSmallGrid(p, multiprocessors())) {
            variant = detail::kSmallGridLseVariant;
            l.disableDependentLaunch();
        } else {
            variant = detail::kDefaultLseVariant;
        }
    }
    detail::runIterate(l, p, f, g, iterations, variant, nullptr);
}

void rowPass(const Problem& p, const float* f, const float* g, const RowOutputs& out, void* stream)
{
    CudaLauncher l(stream);
    detail::runRowPass(l, p, f, g, out);
}

void colMass(const Problem& p, const float* f, const float* g, double* mass, void* stream)
{
    CudaLauncher l(stream);
    detail::runColMass(l, p, f, g, mass);
}

void topK(const Problem& p, const float* f, const float* g, int k, float* values,
    std::int64_t* indices, void* stream)
{
    CudaLauncher l(stream);
    detail::runTopK(l, p, f, g, k, values, indices);
}

void maxCost(const Problem& p, float* out, void* stream)
{
    CudaLauncher l(stream);
    detail::runMaxCost(l, p, out);
}

namespace tuning {

int variantCount() { return detail::kLseVariantCount; }

const char* variantName(int v)
{
    return v >= 0 && v < detail::kLseVariantCount ? detail::kLseVariants[v].name : "unknown";
}

int defaultVariant() { return detail::kDefaultLseVariant; }

void iterate(const Problem& p, float* f, float* g, int iterations, void* stream, int variant,
    unsigned* fallbackCounter)
{
    CudaLauncher l(stream);
    detail::runIterate(l, p, f, g, iterations, variant, fallbackCounter);
}

} // namespace tuning
} // namespace wfm::ot::kernels::cuda
