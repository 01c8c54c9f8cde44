#pragma once
// A small host emulation of the CUDA execution model, enough to run the kernels of
// core/src/ot/cuda/FusedSinkhornKernels.cuh on a machine without a GPU: every thread of a block is
// a std::thread, __syncthreads is a std::barrier, dynamic shared memory is one buffer per block,
// and blocks run one after the other. Math is the host's (exact exp2f where the GPU uses
// ex2.approx), so results agree with the GPU to float tolerance, not bit for bit. Include this
// before the kernel header; compile with -DWFM_CUDA_EMULATION -std=c++20 -pthread.

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#ifndef WFM_CUDA_EMULATION
#define WFM_CUDA_EMULATION 1
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define WFM_HD inline
#define WFM_KERNEL(threads, minBlocks) void
#define WFM_DYNAMIC_SMEM(name) unsigned char* name = ::wfm::emu::sharedMemory()

struct dim3
{
    unsigned x = 1, y = 1, z = 1;
};

struct alignas(16) float4
{
    float x, y, z, w;
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

namespace wfm::emu {

/// The state one block's threads share.
struct Block
{
    explicit Block(unsigned threads, std::size_t smemBytes)
        : barrier(static_cast<std::ptrdiff_t>(threads))
        , smem(static_cast<unsigned char*>(
              ::operator new[](smemBytes > 0 ? smemBytes : 1, std::align_val_t(16))))
    {
        // Exactly the requested size (AddressSanitizer then catches overruns), poisoned: kernels
        // must not read what they did not write.
        for (std::size_t q = 0; q < smemBytes; ++q) {
            smem[q] = 0xA5;
        }
    }
    ~Block() { ::operator delete[](smem, std::align_val_t(16)); }
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;

    std::barrier<> barrier;
    unsigned char* smem;
    std::atomic<int> vote { 0 };
};

inline thread_local Block* currentBlock = nullptr;

inline unsigned char* sharedMemory() { return currentBlock->smem; }

/// __syncthreads_or / _and: barrier, reset by thread 0, barrier, vote, barrier, read. The
/// leading barrier keeps a fast thread from voting before the slow ones read the last result.
inline int syncVote(int predicate, bool all)
{
    Block& b = *currentBlock;
    b.barrier.arrive_and_wait();
    if (threadIdx.x == 0) {
        b.vote.store(0);
    }
    b.barrier.arrive_and_wait();
    if (all ? predicate == 0 : predicate != 0) {
        b.vote.store(1);
    }
    b.barrier.arrive_and_wait();
    const int v = b.vote.load();
    return all ? int(v == 0) : v;
}

/// Runs kernel(args...) over grid blocks of `threads` threads with smemBytes of shared memory.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), int grid, int threads, std::size_t smemBytes,
    Args... args)
{
    for (int blk = 0; blk < grid; ++blk) {
        Block block(static_cast<unsigned>(threads), smemBytes);
        std::vector<std::thread> pool;
        pool.reserve(static_cast<std::size_t>(threads));
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                threadIdx.x = static_cast<unsigned>(t);
                blockIdx.x = static_cast<unsigned>(blk);
                blockDim.x = static_cast<unsigned>(threads);
                gridDim.x = static_cast<unsigned>(grid);
                currentBlock = &block;
                kernel(args...);
            });
        }
        for (auto& th : pool) {
            th.join();
        }
    }
}

/// The Launcher of FusedSinkhornKernels.cuh on host memory.
class Launcher
{
public:
    template <class... Params, class... Args>
    void launch(void (*kernel)(Params...), int grid, int threads, std::size_t smem, Args... args)
    {
        if (grid <= 0) {
            return;
        }
        if (smem > maxSmemBytes()) {
            throw std::runtime_error("emulated launch: too much shared memory");
        }
        ++launches;
        ::wfm::emu::launch(kernel, grid, threads, smem, args...);
    }
    void disableDependentLaunch() { }
    /// Kernels run one after the other here, so a dependent launch is a plain one.
    template <class... Params, class... Args>
    void launchDependent(void (*kernel)(Params...), int grid, int threads, std::size_t smem,
        Args... args)
    {
        launch(kernel, grid, threads, smem, args...);
    }
    float* allocFloats(std::size_t n)
    {
        auto* p = new float[n > 0 ? n : 1];
        for (std::size_t q = 0; q < n; ++q) {
            p[q] = std::nanf(""); // poison: scratch must be written before it is read
        }
        return p;
    }
    void release(float* p) noexcept { delete[] p; }
    std::size_t maxSmemBytes() const { return 227 * 1024; }

    long launches = 0;
};

} // namespace wfm::emu

inline void __syncthreads() { ::wfm::emu::currentBlock->barrier.arrive_and_wait(); }
inline int __syncthreads_or(int p) { return ::wfm::emu::syncVote(p, false); }
inline int __syncthreads_and(int p) { return ::wfm::emu::syncVote(p, true); }
inline unsigned atomicAdd(unsigned* p, unsigned v)
{
    return std::atomic_ref<unsigned>(*p).fetch_add(v);
}
