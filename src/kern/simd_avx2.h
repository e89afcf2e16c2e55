/*
 * simd_avx2.h - small AVX2 building blocks shared by the AVX2 kernel files (quants_avx2.c,
 * actq_avx2.c, ops_avx2.c, ...): horizontal sums, a vector exp, unaligned loads, the u8 x i8
 * multiply-add chain and the unpacking of nibbles and bit planes.  Include only from files compiled with -mavx2 -mfma -mf16c.
 */
#ifndef SEEK_KERN_SIMD_AVX2_H
#define SEEK_KERN_SIMD_AVX2_H

#include <immintrin.h>
#include <string.h>

#include "../base/base.h"

static inline float f16f(f16_t h) { return _cvtsh_ss(h); }

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax_ps(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* exp(x): x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2 (ln2 split in two parts so
 * n ln2 is exact), e^r by its degree-7 Taylor/minimax polynomial in Horner form, and 2^n put into
 * the exponent bits.  Within about 2 ulp of expf over the clamped range [-87.3, 88.7]; x below
 * the range gives e^-87.3 (about 1e-38), not 0. */
static inline __m256 exp_ps(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = x - n ln2, ln2 = 0.693359375 - 2.12194440e-4 (the first part has few mantissa bits) */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    /* e^r = 1 + r + r^2 (1/2 + r (1/6 + r (1/24 + r (1/120 + r (1/720 + r / 5040))))) */
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* times 2^n: n + 127 into the exponent field (n is within -126..128 after the clamp; 2^128
     * cannot occur since 88.7 / ln2 < 128) */
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline int hsum_epi32_128(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

static inline int hsum_epi32(__m256i v) {
    return hsum_epi32_128(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

/* The first n (1..8) lanes of v to y[0..n-1]; nothing past them is written (the batched kernels'
 * panels of fewer than 8 rows). */
static inline void store_lanes(float *y, __m256 v, int n) {
    if (n == 8) {
        _mm256_storeu_ps(y, v);
    } else {
        float out[8];
        _mm256_storeu_ps(out, v);
        memcpy(y, out, (size_t)n * sizeof(float));
    }
}

static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/* The 6-bit scales and mins of a Q4_K/Q5_K superblock as 16 bytes, sc 0..7 then m 0..7 (what
 * kq_k4_unpack_scales computes with scalar code, here in 8 vector instructions: the scalar form
 * cost about 30 per superblock, a fifth of the whole Q4_K dot).  Reads 16 bytes at `scales`: the
 * 12 scale bytes and 4 of what follows them in the block (qh or qs), which are ignored. */
static inline __m128i k4_scale_bytes(const uint8_t *scales) {
    const __m128i v = load128(scales);                                /* a0 a1 a2 . */
    const __m128i lo = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* a0 a2 a1 a2 */
    const __m128i hi = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* a0 a0 a1 a1 */
    /* lanes: a0 & 3f | a2 & 0f | (a0 >> 6 & 03) << 4 | a1 & 3f | a2 >> 4 & 0f | (a1 >> 6 & 03) << 4 */
    const __m128i low = _mm_and_si128(_mm_srlv_epi32(lo, _mm_setr_epi32(0, 0, 0, 4)),
                                      _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i top = _mm_and_si128(_mm_srli_epi32(hi, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(low, top);
}

/* Unsigned bytes u times signed bytes s, summed in groups of 4 into 8 int32 lanes. */
static inline __m256i dot_u8i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* 16 bytes of nibbles -> 32 bytes 0..15: low nibbles are weights 0..15, high nibbles 16..31. */
static inline __m256i unpack_nibbles16(const uint8_t *qs) {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m128i b = load128(qs);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m4), _mm_and_si128(b, m4));
}

/* The 32 bits of qh (little-endian u32) -> 32 bytes, 0xff where bit j is set. */
static inline __m256i expand_bits32(const uint8_t *qh) {
    uint32_t u;
    memcpy(&u, qh, 4);
    /* byte j of the result takes byte j/8 of u, then tests bit j%8 */
    const __m256i pick = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                           0x0101010101010101LL, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)u), pick);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

#endif
