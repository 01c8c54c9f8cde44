// The public CUDA entry points of ot/FusedKernels.h (wfm::ot::kernels::cuda) implemented on host
// memory by running the real kernel code under the thread emulation (CudaEmulation.h). Lets the
// LibTorch check tests/cuda/cuda_fused_check.cpp run on a machine without a GPU:
//   g++ -std=c++20 -O2 -pthread -Wno-unknown-pragmas -DWFM_CUDA_CHECK_ON_CPU
//       tests/cuda/cuda_fused_check.cpp bench/gpu/emu/EmulatedCudaEntryPoints.cpp
//       -I core/src -I bench/gpu -isystem <torch include dirs> -ltorch -ltorch_cpu -lc10
// (the stream argument is ignored; everything runs synchronously).

#include "emu/CudaEmulation.h"
#include "ot/cuda/FusedSinkhornKernels.cuh"

namespace wfm::ot::kernels::cuda {

namespace det = detail;

void iterate(const Problem& p, float* f, float* g, int iterations, void*)
{
    emu::Launcher l;
    det::runIterate(l, p, f, g, iterations, det::kDefaultLseVariant, nullptr);
}

void rowPass(const Problem& p, const float* f, const float* g, const RowOutputs& out, void*)
{
    emu::Launcher l;
    det::runRowPass(l, p, f, g, out);
}

void colMass(const Problem& p, const float* f, const float* g, double* mass, void*)
{
    emu::Launcher l;
    det::runColMass(l, p, f, g, mass);
}

void topK(const Problem& p, const float* f, const float* g, int k, float* values,
    std::int64_t* indices, void*)
{
    emu::Launcher l;
    det::runTopK(l, p, f, g, k, values, indices);
}

void maxCost(const Problem& p, float* out, void*)
{
    emu::Launcher l;
    det::runMaxCost(l, p, out);
}

} // namespace wfm::ot::kernels::cuda
