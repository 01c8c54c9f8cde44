#pragma once

#include <cstdint>
#include <functional>

namespace wfm {

/// Runs body(begin, end) over [0, count) split into contiguous ranges on up to `threads`
/// std::threads (0 = LibTorch's intra-op thread count). The engine uses this instead of
/// at::parallel_for, which runs serially in code not compiled with -fopenmp (Debian's LibTorch
/// uses the OpenMP backend). The first exception thrown by a range is rethrown.
void parallelFor(std::int64_t count, const std::function<void(std::int64_t, std::int64_t)>& body,
    int threads = 0);

} // namespace wfm
