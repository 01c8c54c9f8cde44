// AVX2 + FMA instantiation of the fused Sinkhorn kernels (8 float lanes, blend-masked tails,
// exponent-field arithmetic for the 2^n of exp2). Compiled with -mavx2 -mfma: no LibTorch, no
// std templates; everything but avx2Kernels() has internal linkage.

#define WFM_FUSED_CPU_KERNEL_BODY
#include "ot/cpu/FusedCpuImpl.h"

#include <immintrin.h>

#include <cstdint>

namespace {

struct VAvx2
{
    static constexpr int W = 8;
    using F = __m256;
    using I = __m256i;
    using M = __m256; // all-ones lanes

    static F zero() { return _mm256_setzero_ps(); }
    static F set1(float a) { return _mm256_set1_ps(a); }
    static F load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
    static F add(F a, F b) { return _mm256_add_ps(a, b); }
    static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
    static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
    static F div(F a, F b) { return _mm256_div_ps(a, b); }
    static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
    static F max(F a, F b) { return _mm256_max_ps(a, b); }

    /// 2^x for x clamped to [-125, 127] (never subnormal, never past the exponent range):
    /// adding 1.5 * 2^23 rounds x to the nearest integer n in the low mantissa bits, which
    /// shifted by 23 are exactly the increment of the exponent field of 2^r's polynomial.
    static F exp2(F x)
    {
        const F magic = _mm256_set1_ps(12582912.0f);
        x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-125.0f)), _mm256_set1_ps(127.0f));
        const F u = _mm256_add_ps(x, magic);
        const F r = _mm256_sub_ps(x, _mm256_sub_ps(u, magic));
        const I e = _mm256_slli_epi32(_mm256_castps_si256(u), 23);
        return _mm256_castsi256_ps(
            _mm256_add_epi32(_mm256_castps_si256(exp2Poly<VAvx2>(r)), e));
    }

    static M tailMask(int rem)
    {
        return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(rem), iota()));
    }
    static F maskAdd(F acc, M m, F v) { return _mm256_add_ps(acc, _mm256_and_ps(m, v)); }
    static M gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
    static unsigned bits(M m) { return unsigned(_mm256_movemask_ps(m)); }
    static F select(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }

    static I iload(const std::int32_t* p)
    {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    }
    static void istore(int* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
    static I iset1(int a) { return _mm256_set1_epi32(a); }
    static I iadd(I a, I b) { return _mm256_add_epi32(a, b); }
    static I imul(I a, I b) { return _mm256_mullo_epi32(a, b); }
    static I ixor(I a, I b) { return _mm256_xor_si256(a, b); }
    static I iand(I a, I b) { return _mm256_and_si256(a, b); }
    static I ior(I a, I b) { return _mm256_or_si256(a, b); }
    template <int n>
    static I isrl(I a)
    {
        return _mm256_srli_epi32(a, n);
    }
    static I iselect(M m, I a, I b)
    {
        return _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
    }
    static I iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
    static F ltof(I a) { return _mm256_cvtepi32_ps(a); }
    static I fasi(F a) { return _mm256_castps_si256(a); }
    static F iasf(I a) { return _mm256_castsi256_ps(a); }
};

// Two rows per tile: 16 ymm registers leave room for two accumulators and their temporaries.
constexpr KernelSet kAvx2 = KernelsFor<VAvx2, 2>::table();

} // namespace

namespace wfm::ot::kernels::cpu::detail {

const KernelSet& avx2Kernels()
{
    return kAvx2;
}

} // namespace wfm::ot::kernels::cpu::detail
