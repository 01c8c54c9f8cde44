#pragma once
// Benchmark and test hooks of the CUDA fused Sinkhorn kernels (not used by the engine): the
// kernel variants of the d = 2, 3 hot loop and a counter of the blocks that took the exact
// (fallback) path. Torch-free, like FusedKernels.h.

#include "ot/FusedKernels.h"

namespace wfm::ot::kernels::cuda::tuning {

/// Number of variants of the d = 2, 3 Sinkhorn kernel (rows per thread, polynomial exp2 share).
int variantCount();
/// Name of variant v, e.g. "rows4-poly1of16".
const char* variantName(int v);
/// The variant cuda::iterate uses.
int defaultVariant();

/// cuda::iterate with a chosen variant; when fallbackCounter (a device pointer) is not null, each
/// block that recomputed rows on the exact path adds 1 to it.
void iterate(const Problem& p, float* f, float* g, int iterations, void* stream, int variant,
    unsigned* fallbackCounter);

} // namespace wfm::ot::kernels::cuda::tuning
