/*
 * quants_avx2.c - AVX2 + FMA + F16C kernels: dot products of every hot weight type with its
 * activation format, fast activation quantizers (Q8_0, Q8_1, Q8_K) and float conversions.
 *
 * What it is: the x86-64 fast path, compiled with -mavx2 -mfma -mf16c -mbmi2 and called only
 * after dispatch.c saw those features (kern_isa_ops / kern_best).  Each function computes the
 * same value as its scalar reference in quants_ref.c: the integer parts are exact, only the
 * order of the float additions differs.  The quantizers produce bit-identical blocks.
 * What it is not: a place for matrix logic (matmul.c) or for types nobody runs hot.
 *
 * The integer dot of one (sub-)block uses the byte multiply-add chain
 *     maddubs(u8 a, i8 b) -> i16 pairs a0*b0 + a1*b1,  madd(i16, i16) -> i32 pairs,
 * then one float multiply by the block's scales.  maddubs saturates its i16 sums, so every use
 * below keeps |a0*b0 + a1*b1| <= 32767: weights are 0..63 unsigned, or the sign trick
 * (|x|, y * sign(x)) with activations in -127..127, which every quantizer here guarantees.
 *
 * Glossary: nb = blocks in the row, d = combined float scale, y = activation block.
 */
#include <immintrin.h>
#include <string.h>

#include "kern.h"
#include "quants.h"
#include "simd_avx2.h"

/* ---- helpers ----------------------------------------------------------------------- */


/* Signed x signed bytes via |x| * (y * sign(x)); y must not hold -128. */
static inline __m256i dot_i8i8(__m256i x, __m256i y) {
    return dot_u8i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}



/* For K types with 16 sub-blocks of 16: the int16 scale vector for 32-weight chunk k, low
 * 128-bit lane = scale of sub-block 2k, high lane = scale of sub-block 2k+1.  sc8 holds the
 * 16 signed byte scales. */
static inline __m256i chunk_scales(__m128i sc8, int k) {
    const __m128i half = _mm_set_epi64x(0x0101010101010101LL, 0);
    __m128i idx = _mm_add_epi8(_mm_set1_epi8((char)(2 * k)), half);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, idx));
}

/* v >> k on 16-bit lanes for a run-time k (callers mask each byte afterwards). */
static inline __m256i srl16(__m256i v, int k) { return _mm256_srl_epi16(v, _mm_cvtsi32_si128(k)); }

/* ---- float types ------------------------------------------------------------------- */

/* Loaders for the float weight types: 8 weights from index i as floats, or one weight. */
typedef __m256 (*load8_fn)(const void *x, int64_t i);
typedef float (*load1_fn)(const void *x, int64_t i);

static inline __m256 load_f16x8(const f16_t *p) { return _mm256_cvtph_ps(load128(p)); }
/* bfloat16 is the top half of a float: widen to 32 bits and shift left by 16. */
static inline __m256 load_bf16x8(const bf16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
}

static inline __m256 ld8_f32(const void *x, int64_t i) { return _mm256_loadu_ps((const float *)x + i); }
static inline float ld1_f32(const void *x, int64_t i) { return ((const float *)x)[i]; }
static inline __m256 ld8_f16(const void *x, int64_t i) { return load_f16x8((const f16_t *)x + i); }
static inline float ld1_f16(const void *x, int64_t i) { return f16f(((const f16_t *)x)[i]); }
static inline __m256 ld8_bf16(const void *x, int64_t i) { return load_bf16x8((const bf16_t *)x + i); }
static inline float ld1_bf16(const void *x, int64_t i) { return bf16_to_f32(((const bf16_t *)x)[i]); }

/* dot(x, y) over n elements with four independent accumulators, 32 per step, then 8, then a
 * scalar tail; x's element type is given by its loaders, which inline to plain code. */
static inline __attribute__((always_inline)) float dot_float_row(int64_t n, const void *x, const float *y,
                                                                  load8_fn ld8, load1_fn ld1) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(ld8(x, i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(ld8(x, i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(ld8(x, i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(ld8(x, i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(ld8(x, i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += ld1(x, i) * y[i]; /* scalar tail */
    return sum;
}

static void vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_float_row(n, vx, vy, ld8_f32, ld1_f32);
}

static void vec_dot_f16_f32(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_float_row(n, vx, vy, ld8_f16, ld1_f16);
}

static void vec_dot_bf16_f32(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_float_row(n, vx, vy, ld8_bf16, ld1_bf16);
}

static void to_float_f16(const void *vx, float *y, int64_t n) {
    const f16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16x8(x + i));
    for (; i < n; i++) y[i] = f16f(x[i]);
}

/* y += a * x for the KV cache types: the attention's sum over cached V rows */
static void axpy_f32(int64_t n, float *y, float a, const void *vx) {
    const float *x = vx;
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

static void axpy_f16(int64_t n, float *y, float a, const void *vx) {
    const f16_t *x = vx;
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_f16x8(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * f16f(x[i]);
}

static void axpy_q8_0(int64_t n, float *y, float a, const void *vx) {
    const block_q8_0 *x = vx;
    for (int64_t b = 0; b < n / QK8_0; b++, y += QK8_0) {
        const __m256 ad = _mm256_set1_ps(a * f16f(x[b].d));
        for (int j = 0; j < QK8_0; j += 8) {
            __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].qs + j))));
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(ad, q, _mm256_loadu_ps(y + j)));
        }
    }
}

static void dot_q8_0_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = vx;
    const float *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK8_0; b++, y += QK8_0) {
        __m256 p = _mm256_setzero_ps();
        for (int j = 0; j < QK8_0; j += 8) {
            __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].qs + j))));
            p = _mm256_fmadd_ps(q, _mm256_loadu_ps(y + j), p);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16f(x[b].d)), p, acc);
    }
    *s = hsum_ps(acc);
}

static void to_float_bf16(const void *vx, float *y, int64_t n) {
    const bf16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_bf16x8(x + i));
    for (; i < n; i++) y[i] = bf16_to_f32(x[i]);
}

/* ---- legacy 32-weight blocks ------------------------------------------------------- */

/* Q4_0: sum over blocks of dx*dy * sum_j (q_j - 8) * y_j. */
static void vec_dot_q4_0_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i qx = _mm256_sub_epi8(unpack_nibbles16(x[i].qs), eight);
        __m256i p = dot_i8i8(qx, load256(y[i].qs));
        __m256 d = _mm256_set1_ps(f16f(x[i].d) * f16f(y[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum_ps(acc);
}

/* Q4_1: x = dx*q + m, so dot = dx*dy * sum(q*y) + m * (dy * sum(y)) = ... + m * y.s. */
static void vec_dot_q4_1_q8_1(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        __m256i p = dot_u8i8(unpack_nibbles16(x[i].qs), load256(y[i].qs));
        __m256 d = _mm256_set1_ps(f16f(x[i].d) * f16f(y[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
        summ += f16f(x[i].m) * f16f(y[i].s);
    }
    *s = hsum_ps(acc) + summ;
}

/* Q5_0: q = nibble | (bit << 4), x = d * (q - 16). */
static void vec_dot_q5_0_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i hi = _mm256_and_si256(expand_bits32(x[i].qh), b4);
        __m256i qx = _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles16(x[i].qs), hi), b4);
        __m256i p = dot_i8i8(qx, load256(y[i].qs));
        __m256 d = _mm256_set1_ps(f16f(x[i].d) * f16f(y[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum_ps(acc);
}

/* Q5_1: q = nibble | (bit << 4) in 0..31, x = d*q + m. */
static void vec_dot_q5_1_q8_1(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        __m256i hi = _mm256_and_si256(expand_bits32(x[i].qh), b4);
        __m256i p = dot_u8i8(_mm256_or_si256(unpack_nibbles16(x[i].qs), hi), load256(y[i].qs));
        __m256 d = _mm256_set1_ps(f16f(x[i].d) * f16f(y[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
        summ += f16f(x[i].m) * f16f(y[i].s);
    }
    *s = hsum_ps(acc) + summ;
}

/* Q8_0 x Q8_0: signed bytes both sides. */
static void vec_dot_q8_0_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) { /* two chains hide the FMA latency */
        __m256i p0 = dot_i8i8(load256(x[i].qs), load256(y[i].qs));
        __m256i p1 = dot_i8i8(load256(x[i + 1].qs), load256(y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16f(x[i].d) * f16f(y[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16f(x[i + 1].d) * f16f(y[i + 1].d)),
                               _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        __m256i p = dot_i8i8(load256(x[i].qs), load256(y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16f(x[i].d) * f16f(y[i].d)), _mm256_cvtepi32_ps(p), acc0);
    }
    *s = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- K types (x Q8_K) -------------------------------------------------------------- */

/* The 6-bit scales and mins of Q4_K/Q5_K: bytes 0..7 = scales, 8..15 = mins (k4_scale_bytes,
 * simd_avx2.h, all in registers). */
static inline __m128i unpack_scales_k4(const uint8_t *scales) { return k4_scale_bytes(scales); }

/* sum_j mins[j] * (bsums[2j] + bsums[2j+1]) for the 8 sub-blocks of 32 of Q4_K/Q5_K; sm as
 * returned by unpack_scales_k4. */
static inline int mins_dot_bsums8(__m128i sm, const int16_t *bsums) {
    __m128i m = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
    __m128i pairs = _mm_hadd_epi16(load128(bsums), load128(bsums + 8));
    return hsum_epi32_128(_mm_madd_epi16(m, pairs));
}

/* Scale j (0..7) of the 16 words in sc16 (both lanes = the 8 scales) in every word. */
static inline __m256i bcast_word(__m256i sc16, int j) {
    return _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(0x0100 + 0x0202 * j)));
}

/*
 * Q4_K: x = d*sc_j*q - dmin*m_j over sub-blocks j of 32, so per super-block
 *   dot = yd*d * sum_j sc_j * sum(q*y) - yd*dmin * sum_j m_j * (sum of y over sub-block j),
 * the last sums being Q8_K's bsums.  Chunk c of qs (32 bytes) holds sub-block 2c in its low
 * nibbles and 2c+1 in its high nibbles.  Hot spot: most models' FFN weights.
 */
static void vec_dot_q4_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    float acc_m = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sm = unpack_scales_k4(x[i].scales);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const float d = y[i].d * f16f(x[i].d);
        const float dmin = y[i].d * f16f(x[i].dmin);
        acc_m += dmin * (float)mins_dot_bsums8(sm, y[i].bsums);

        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i b = load256(q4 + 32 * c);
            __m256i lo = _mm256_and_si256(b, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(q8 + 64 * c)),
                                           bcast_word(sc16, 2 * c));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(q8 + 64 * c + 32)),
                                           bcast_word(sc16, 2 * c + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc) - acc_m;
}

/* Q5_K: Q4_K plus a fifth bit: bit 2c of qh[l] -> weight 64c+l, bit 2c+1 -> 64c+32+l. */
static void vec_dot_q5_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float acc_m = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sm = unpack_scales_k4(x[i].scales);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const float d = y[i].d * f16f(x[i].d);
        const float dmin = y[i].d * f16f(x[i].dmin);
        acc_m += dmin * (float)mins_dot_bsums8(sm, y[i].bsums);

        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i hb = load256(x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            /* hb has been shifted right by 2c; bit 0 / bit 1 of each byte are this chunk's */
            __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, one), 4);
            __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4);
            hb = _mm256_srli_epi16(hb, 2);
            __m256i b = load256(q4 + 32 * c);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(b, m4), h0);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), h1);
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(q8 + 64 * c)),
                                           bcast_word(sc16, 2 * c));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(q8 + 64 * c + 32)),
                                           bcast_word(sc16, 2 * c + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc) - acc_m;
}

/*
 * Q6_K: x = d * sc_i * (q - 32) over sub-blocks i of 16, q in 0..63.  The -32 is taken out with
 * the bsums: sum(sc_i * (q-32) * y) = sum(sc_i * q * y) - 32 * sum_i sc_i * bsums[i].
 * Chunk k (32 weights) covers sub-blocks 2k and 2k+1; bit layout in quants.h.
 */
static void vec_dot_q6_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m3 = _mm256_set1_epi8(0x03);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sc8 = load128(x[i].scales);
        const int8_t *q8 = y[i].qs;
        /* 32 * sum_i sc_i * bsums[i], subtracted lane-wise at the end */
        __m256i bias = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), load256(y[i].bsums));
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = load256(x[i].ql + 64 * h);
            __m256i ql1 = load256(x[i].ql + 64 * h + 32);
            __m256i qh = load256(x[i].qh + 32 * h);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                   _mm256_and_si256(qh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            for (int j = 0; j < 4; j++) {
                int k = 4 * h + j;
                __m256i p = _mm256_maddubs_epi16(q[j], load256(q8 + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, chunk_scales(sc8, k)));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(bias, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * f16f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/*
 * Q3_K: x = d * (sc_i - 32) * (q - 4*!hbit).  With q' = q | hbit << 2 in 0..7 the weight is
 * q' - 4, and the -4 is taken out with the bsums as in Q6_K.  Chunk k = 4h + s (half h, shift
 * s) is bits 2s..2s+1 of qs[32h + l] and bit k of hmask[l].
 */
static void vec_dot_q3_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(0x03);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const kq_scale_bytes u = kq_q3_K_unpack_scales(x[i].scales);
        const __m128i sc8 = _mm_sub_epi8(load128(u.u), _mm_set1_epi8(32));
        const int8_t *q8 = y[i].qs;
        __m256i bias = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), load256(y[i].bsums));
        const __m256i hm = load256(x[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i qs = load256(x[i].qs + 32 * h);
            for (int sh = 0; sh < 4; sh++) {
                int k = 4 * h + sh;
                __m256i lo = _mm256_and_si256(srl16(qs, 2 * sh), m3);
                __m256i hi = _mm256_slli_epi16(_mm256_and_si256(srl16(hm, k), one), 2);
                __m256i p = _mm256_maddubs_epi16(_mm256_or_si256(lo, hi), load256(q8 + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, chunk_scales(sc8, k)));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(bias, 2));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * f16f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* Q2_K: x = d*sc_i*q - dmin*m_i over sub-blocks of 16, q in 0..3 laid out as Q3_K's low bits. */
static void vec_dot_q2_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m256i m3 = _mm256_set1_epi8(0x03);
    __m256 acc = _mm256_setzero_ps();
    float acc_m = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m128i packed = load128(x[i].scales);
        const __m128i sc8 = _mm_and_si128(packed, m4);
        const __m128i mins8 = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
        __m256i mp = _mm256_madd_epi16(_mm256_cvtepu8_epi16(mins8), load256(y[i].bsums));
        acc_m += y[i].d * f16f(x[i].dmin) * (float)hsum_epi32(mp);

        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i qs = load256(x[i].qs + 32 * h);
            for (int sh = 0; sh < 4; sh++) {
                int k = 4 * h + sh;
                __m256i q = _mm256_and_si256(srl16(qs, 2 * sh), m3);
                __m256i p = _mm256_maddubs_epi16(q, load256(q8 + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, chunk_scales(sc8, k)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * f16f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc) - acc_m;
}

/* ---- activation quantizers --------------------------------------------------------- */

/* NaN lanes -> 0, others clamped to [-lim, lim] (what the reference's rounding helpers do
 * before rounding; keeps inf and NaN from becoming 0x80000000 in the conversion). */
static inline __m256 clamp_nan0(__m256 v, float lim) {
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-lim)), _mm256_set1_ps(lim));
}

/* roundf() on 8 lanes: nearest integer, ties away from zero (the reference's rounding for
 * Q8_0/Q8_1; the hardware's nearest mode rounds ties to even).  v - trunc(v) is exact. */
static inline __m256i round_away_epi32(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 step = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(sign, v)); /* +-1 */
    __m256 adj = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, adj));
}

/* Nearest integer, ties to even (the reference's rounding for Q8_K): the hardware mode. */
static inline __m256i round_even_epi32(__m256 v) {
    return _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* max(acc, |v|) ignoring NaN lanes of v, like fmaxf: maxps returns its second operand when
 * either is NaN, and acc never holds NaN. */
static inline __m256 max_abs_acc(__m256 acc, __m256 v) {
    return _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), acc);
}

/* 4 x 8 int32 (already in -128..127) -> 32 int8 in order. */
static inline __m256i pack_i32x32_i8(__m256i i0, __m256i i1, __m256i i2, __m256i i3) {
    /* packs work per 128-bit lane, leaving the 4-element groups as i0lo i1lo i2lo i3lo |
     * i0hi i1hi i2hi i3hi; the permute puts them back in order */
    __m256i a = _mm256_packs_epi32(i0, i1);
    __m256i b = _mm256_packs_epi32(i2, i3);
    __m256i c = _mm256_packs_epi16(a, b);
    return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* max |x| over 32 floats, NaN ignored */
static inline float amax32(const float *x) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 32; j += 8) m = max_abs_acc(m, _mm256_loadu_ps(x + j));
    return hmax_ps(m);
}

/* Quantizes 32 floats with multiplier id into qs (q = roundf(x * id) clamped to +-127, NaN ->
 * 0); returns sum(q). */
static inline int quantize32(const float *x, float id, int8_t *qs) {
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++)
        q[k] = round_away_epi32(clamp_nan0(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid), 127.0f));
    _mm256_storeu_si256((__m256i *)qs, pack_i32x32_i8(q[0], q[1], q[2], q[3]));
    return hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
}

/* Q8_0: d = max|x| / 127, q = round(x / d). */
static void from_float_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        const float d = amax32(x) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f32_to_f16(d);
        quantize32(x, id, y[i].qs);
    }
}

/* Q8_1: as Q8_0 plus s = d * sum(q). */
static void from_float_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++, x += QK8_1) {
        const float d = amax32(x) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f32_to_f16(d);
        int sum = quantize32(x, id, y[i].qs);
        y[i].s = f32_to_f16((float)sum * d);
    }
}

/* Q8_K: the element of largest magnitude (the first one on ties) maps to -127, so
 * iscale = -127 / max, q = round(iscale * x) (ties to even) clamped to -128..127, NaN -> 0,
 * d = 1 / iscale; plus the sums of q over each group of 16 (bsums). */
static void from_float_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        __m256 am = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) am = max_abs_acc(am, _mm256_loadu_ps(x + j));
        const float amax = hmax_ps(am);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the signed value: first element whose magnitude equals amax */
        const __m256 vmax = _mm256_set1_ps(amax);
        float max = amax;
        for (int j = 0; j < QK_K; j += 8) {
            __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j));
            int mask = _mm256_movemask_ps(_mm256_cmp_ps(a, vmax, _CMP_EQ_OQ));
            if (mask) {
                max = x[j + __builtin_ctz((unsigned)mask)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 vis = _mm256_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                /* |iscale * x| <= 127 up to rounding, so clamping the float to [-128, 127]
                 * is the reference's integer clamp */
                __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vis);
                v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
                v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
                q[k] = round_even_epi32(v);
            }
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), pack_i32x32_i8(q[0], q[1], q[2], q[3]));
            /* bsums of the two groups of 16: lanes of q[0]+q[1] and of q[2]+q[3] */
            y[i].bsums[j / 16] = (int16_t)hsum_epi32(_mm256_add_epi32(q[0], q[1]));
            y[i].bsums[j / 16 + 1] = (int16_t)hsum_epi32(_mm256_add_epi32(q[2], q[3]));
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- the table --------------------------------------------------------------------- */

static const kern_ops ops_f32 = { .vec_dot = vec_dot_f32, .axpy = axpy_f32, .dot_f32 = vec_dot_f32 };
static const kern_ops ops_f16 = { .vec_dot = vec_dot_f16_f32, .to_float = to_float_f16, .axpy = axpy_f16, .dot_f32 = vec_dot_f16_f32 };
static const kern_ops ops_bf16 = { .vec_dot = vec_dot_bf16_f32, .to_float = to_float_bf16 };
static const kern_ops ops_q4_0 = { .vec_dot = vec_dot_q4_0_q8_0 };
static const kern_ops ops_q4_1 = { .vec_dot = vec_dot_q4_1_q8_1 };
static const kern_ops ops_q5_0 = { .vec_dot = vec_dot_q5_0_q8_0 };
static const kern_ops ops_q5_1 = { .vec_dot = vec_dot_q5_1_q8_1 };
static const kern_ops ops_q8_0 = { .vec_dot = vec_dot_q8_0_q8_0, .from_float = from_float_q8_0, .axpy = axpy_q8_0, .dot_f32 = dot_q8_0_f32 };
static const kern_ops ops_q8_1 = { .from_float = from_float_q8_1 };
static const kern_ops ops_q2_K = { .vec_dot = vec_dot_q2_K_q8_K };
static const kern_ops ops_q3_K = { .vec_dot = vec_dot_q3_K_q8_K };
static const kern_ops ops_q4_K = { .vec_dot = vec_dot_q4_K_q8_K };
static const kern_ops ops_q5_K = { .vec_dot = vec_dot_q5_K_q8_K };
static const kern_ops ops_q6_K = { .vec_dot = vec_dot_q6_K_q8_K };
static const kern_ops ops_q8_K = { .from_float = from_float_q8_K };

const kern_ops *const kern_ops_avx2[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_F32] = &ops_f32,   [GGUF_TYPE_F16] = &ops_f16,   [GGUF_TYPE_BF16] = &ops_bf16,
    [GGUF_TYPE_Q4_0] = &ops_q4_0, [GGUF_TYPE_Q4_1] = &ops_q4_1, [GGUF_TYPE_Q5_0] = &ops_q5_0,
    [GGUF_TYPE_Q5_1] = &ops_q5_1, [GGUF_TYPE_Q8_0] = &ops_q8_0, [GGUF_TYPE_Q8_1] = &ops_q8_1,
    [GGUF_TYPE_Q2_K] = &ops_q2_K, [GGUF_TYPE_Q3_K] = &ops_q3_K, [GGUF_TYPE_Q4_K] = &ops_q4_K,
    [GGUF_TYPE_Q5_K] = &ops_q5_K, [GGUF_TYPE_Q6_K] = &ops_q6_K, [GGUF_TYPE_Q8_K] = &ops_q8_K,
};
