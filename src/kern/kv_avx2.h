/*
 * kv_avx2.h - 8 values of a KV cache row (F32, F16 or Q8_0) as floats, for the AVX2 attention
 * kernels (attn_avx2.c, attn_tile_avx2.c).  c, the element index, is a multiple of 8, so a Q8_0
 * chunk never straddles two blocks.  Include only from files compiled with -mavx2 -mfma -mf16c.
 */
#ifndef SEEK_KERN_KV_AVX2_H
#define SEEK_KERN_KV_AVX2_H

#include "quants.h"
#include "simd_avx2.h"

static inline __m256 kv_ld_f32(const void *row, int64_t c) { return _mm256_loadu_ps((const float *)row + c); }
static inline __m256 kv_ld_f16(const void *row, int64_t c) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const f16_t *)row + c)));
}
/* int8 values times their block's scale */
static inline __m256 kv_ld_q8_0(const void *row, int64_t c) {
    const block_q8_0 *b = (const block_q8_0 *)row + c / QK8_0;
    const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b->qs + c % QK8_0))));
    return _mm256_mul_ps(_mm256_set1_ps(f16f(b->d)), q);
}

#endif
