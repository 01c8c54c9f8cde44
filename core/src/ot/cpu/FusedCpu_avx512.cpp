// AVX-512 instantiation of the fused Sinkhorn kernels (16 float lanes, masked tails,
// vscalefps for the 2^n of exp2). Compiled with -mavx512f/dq/bw/vl: no LibTorch, no std
// templates; everything but avx512Kernels() has internal linkage.

#define WFM_FUSED_CPU_KERNEL_BODY
#include "ot/cpu/FusedCpuImpl.h"

#include <immintrin.h>

#include <cstdint>

// GCC 12 reports its own _mm512_undefined_ps() placeholders inside the unmasked intrinsics
// (max, roundscale, scalef) as maybe-uninitialised; the full-mask instructions never read them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

struct VAvx512
{
    static constexpr int W = 16;
    using F = __m512;
    using I = __m512i;
    using M = __mmask16;

    static F zero() { return _mm512_setzero_ps(); }
    static F set1(float a) { return _mm512_set1_ps(a); }
    static F load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
    static F add(F a, F b) { return _mm512_add_ps(a, b); }
    static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
    static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
    static F div(F a, F b) { return _mm512_div_ps(a, b); }
    static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
    static F max(F a, F b) { return _mm512_max_ps(a, b); }

    /// 2^x: x clamped below at -125 so that no result is subnormal; vreduceps gives the
    /// fraction r = x - floor(x) in one instruction, a polynomial 2^r, and vscalefps multiplies
    /// by 2^floor(x) itself (overflow gives +inf, which the callers' range check catches).
    static F exp2(F x)
    {
        x = _mm512_max_ps(x, _mm512_set1_ps(-125.0f));
        const F r = _mm512_reduce_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        return _mm512_scalef_ps(exp2PolyUnit<VAvx512>(r), x);
    }

    static M tailMask(int rem) { return M((1u << rem) - 1u); }
    static F maskAdd(F acc, M m, F v) { return _mm512_mask_add_ps(acc, m, acc, v); }
    static M gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
    static unsigned bits(M m) { return unsigned(m); }
    static F select(M m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }

    static I iload(const std::int32_t* p) { return _mm512_loadu_si512(p); }
    static void istore(int* p, I v) { _mm512_storeu_si512(p, v); }
    static I iset1(int a) { return _mm512_set1_epi32(a); }
    static I iadd(I a, I b) { return _mm512_add_epi32(a, b); }
    static I imul(I a, I b) { return _mm512_mullo_epi32(a, b); }
    static I ixor(I a, I b) { return _mm512_xor_si512(a, b); }
    static I iand(I a, I b) { return _mm512_and_si512(a, b); }
    static I ior(I a, I b) { return _mm512_or_si512(a, b); }
    template <int n>
    static I isrl(I a)
    {
        return _mm512_srli_epi32(a, n);
    }
    static I iselect(M m, I a, I b) { return _mm512_mask_blend_epi32(m, b, a); }
    static I iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
    static F ltof(I a) { return _mm512_cvtepi32_ps(a); }
    static I fasi(F a) { return _mm512_castps_si512(a); }
    static F iasf(I a) { return _mm512_castsi512_ps(a); }
};

// Four rows per tile share each load of h and the coordinates.
constexpr KernelSet kAvx512 = KernelsFor<VAvx512, 4>::table();

} // namespace

namespace wfm::ot::kernels::cpu::detail {

const KernelSet& avx512Kernels()
{
    return kAvx512;
}

} // namespace wfm::ot::kernels::cpu::detail
