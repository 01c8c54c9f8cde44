#include "wfm/Parallel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace wfm {

void parallelFor(std::int64_t count, const std::function<void(std::int64_t, std::int64_t)>& body,
    int threads)
{
    if (count <= 0) {
        return;
    }
    if (threads <= 0) {
        threads = at::get_num_threads();
    }
    const std::int64_t n = std::max<std::int64_t>(1, std::min<std::int64_t>(threads, count));
    if (n == 1) {
        body(0, count);
        return;
    }
    std::exception_ptr error;
    std::mutex errorMutex;
    auto run = [&](std::int64_t k) {
        const std::int64_t begin = count * k / n, end = count * (k + 1) / n;
        try {
            body(begin, end);
        } catch (...) {
            std::lock_guard lock(errorMutex);
            if (!error) {
                error = std::current_exception();
            }
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(n - 1));
    for (std::int64_t k = 1; k < n; ++k) {
        pool.emplace_back(run, k);
    }
    run(0);
    for (auto& t : pool) {
        t.join();
    }
    if (error) {
        std::rethrow_exception(error);
    }
}

} // namespace wfm
