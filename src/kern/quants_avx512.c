/*
 * quants_avx512.c - AVX-512 (F, BW, VL, DQ) + VNNI kernels for the hottest types: dot products
 * of Q8_0, Q4_0 (x Q8_0), Q4_K, Q5_K, Q6_K (x Q8_K), F16 and F32 (x F32), and the Q8_0, Q8_1
 * and Q8_K activation quantizers.
 *
 * What it is: the same algorithms as quants_avx2.c on 512-bit vectors, compiled with the
 * AVX-512 -m flags and called only when dispatch.c saw every one of those features.  Types
 * without a kernel here fall back to the AVX2 kernels (dispatch.c), then to the reference.
 * Results equal the scalar reference up to float rounding; the quantizers are bit-identical.
 * What it is not: tuned for one microarchitecture.
 *
 * VNNI: dpbusd(acc, u8 a, i8 b) adds a0*b0+..+a3*b3 to each int32 lane without saturation;
 * dpwssd(acc, i16 a, i16 b) adds a0*b0 + a1*b1.  Signed x signed bytes use
 *     sum(x * y) = sum((x + 128) * y) - sum(128 * y),
 * with x + 128 = x ^ 0x80 as an unsigned byte, which is exact for every byte value.
 * The K types keep the AVX2 chain maddubs(u8 q, i8 y) -> i16 (no saturation: q <= 63) and
 * fold the sub-block scales in with dpwssd.
 *
 * Legacy types take two 32-weight blocks per 512-bit vector (low 256 bits = block i, high =
 * block i+1); an odd last block is paired with itself and a zero scale.
 */
#include <immintrin.h>
#include <string.h>

#include "kern.h"
#include "quants.h"

/* ---- helpers ----------------------------------------------------------------------- */

static inline float f16f(f16_t h) { return _cvtsh_ss(h); }

static inline __m512i load512(const void *p) { return _mm512_loadu_si512(p); }
static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/* [a | b]: a in the low 256 bits, b in the high 256 bits. */
static inline __m512i cat256(__m256i a, __m256i b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

/* Low 8 lanes a, high 8 lanes b. */
static inline __m512 scale2(float a, float b) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

static inline int hsum_epi32_128(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

/* Signed x signed bytes, summed in groups of 4 into 16 int32 lanes (exact for all bytes). */
static inline __m512i dot_i8i8(__m512i x, __m512i y) {
    const __m512i off = _mm512_set1_epi8((char)0x80);
    __m512i a = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(x, off), y);
    __m512i b = _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, y);
    return _mm512_sub_epi32(a, b);
}

/* Nibbles of two Q4 blocks (16 bytes each) -> 64 bytes 0..15 in weight order:
 * [block a weights 0..31 | block b weights 0..31]. */
static inline __m512i unpack_nibbles2(const uint8_t *qa, const uint8_t *qb) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i t = _mm256_set_m128i(load128(qb), load128(qa));
    __m256i lo = _mm256_and_si256(t, m4);                        /* [lo a | lo b] */
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(t, 4), m4);  /* [hi a | hi b] */
    __m512i z = cat256(lo, hi);                                  /* lo a, lo b, hi a, hi b */
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));  /* lo a, hi a, lo b, hi b */
}

/* ---- float types ------------------------------------------------------------------- */

static void vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i]; /* scalar tail */
    *s = sum;
}

static inline __m512 load_f16x16(const f16_t *p) { return _mm512_cvtph_ps(load256(p)); }

static void vec_dot_f16_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const f16_t *x = vx;
    const float *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(load_f16x16(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(load_f16x16(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(load_f16x16(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(load_f16x16(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load_f16x16(x + i), _mm512_loadu_ps(y + i), a0);
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++) sum += f16f(x[i]) * y[i];
    *s = sum;
}

static void to_float_f16(const void *vx, float *y, int64_t n) {
    const f16_t *x = vx;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, load_f16x16(x + i));
    for (; i < n; i++) y[i] = f16f(x[i]);
}

/* ---- legacy 32-weight blocks, two per vector --------------------------------------- */

/* Q8_0 x Q8_0. */
static void vec_dot_q8_0_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i += 2) {
        const int64_t j = i + 1 < nb ? i + 1 : i; /* odd tail: block i twice, second scale 0 */
        __m512i p = dot_i8i8(cat256(load256(x[i].qs), load256(x[j].qs)),
                             cat256(load256(y[i].qs), load256(y[j].qs)));
        __m512 d = scale2(f16f(x[i].d) * f16f(y[i].d), j != i ? f16f(x[j].d) * f16f(y[j].d) : 0.0f);
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

/* Q4_0: sum((q - 8) * y) = dpbusd(q, y) - dpbusd(8, y), q unsigned 0..15. */
static void vec_dot_q4_0_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    const __m512i eight = _mm512_set1_epi8(8);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i += 2) {
        const int64_t j = i + 1 < nb ? i + 1 : i;
        __m512i q = unpack_nibbles2(x[i].qs, x[j].qs);
        __m512i qy = cat256(load256(y[i].qs), load256(y[j].qs));
        __m512i p = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, qy),
                                     _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, qy));
        __m512 d = scale2(f16f(x[i].d) * f16f(y[i].d), j != i ? f16f(x[j].d) * f16f(y[j].d) : 0.0f);
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

/* ---- K types (x Q8_K) -------------------------------------------------------------- */

/* Q4_K/Q5_K scales[12] -> bytes 0..7 = 6-bit scales, 8..15 = 6-bit mins (as quants.h), kept
 * in a register (see the AVX2 file on store forwarding). */
static inline __m128i unpack_scales_k4(const uint8_t *scales) {
    const kq_scale_bytes u = kq_k4_unpack_scales(scales);
    return _mm_set_epi32((int)u.u[3], (int)u.u[2], (int)u.u[1], (int)u.u[0]); /* m 4..7, m 0..3, sc 4..7, sc 0..3 */
}

/* sum_j mins[j] * (bsums[2j] + bsums[2j+1]) over the 8 sub-blocks of 32. */
static inline int mins_dot_bsums8(__m128i sm, const int16_t *bsums) {
    __m128i m = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
    __m128i pairs = _mm_hadd_epi16(load128(bsums), load128(bsums + 8));
    return hsum_epi32_128(_mm_madd_epi16(m, pairs));
}

/* int16 scale vector for 64 weights: word a of sc16 (the 8 scales as words, in every 128-bit
 * lane) for the low 32 weights, word b for the high 32. */
static inline __m512i scales16_2(__m512i sc16, int a, int b) {
    __m512i idx = cat256(_mm256_set1_epi16((short)(0x0100 + 0x0202 * a)),
                         _mm256_set1_epi16((short)(0x0100 + 0x0202 * b)));
    return _mm512_shuffle_epi8(sc16, idx);
}

/* Q4_K: chunk c of qs gives 64 weights [low nibbles: sub-block 2c | high: 2c+1], which is
 * exactly the 64 activations at 64c.  Same math as the AVX2 kernel. */
static void vec_dot_q4_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m512 acc = _mm512_setzero_ps();
    float acc_m = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sm = unpack_scales_k4(x[i].scales);
        const __m512i sc16 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm));
        const float d = y[i].d * f16f(x[i].d);
        const float dmin = y[i].d * f16f(x[i].dmin);
        acc_m += dmin * (float)mins_dot_bsums8(sm, y[i].bsums);

        __m512i sumi = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            __m256i b = load256(x[i].qs + 32 * c);
            __m512i q = cat256(_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_srli_epi16(b, 4), m4));
            __m512i p = _mm512_maddubs_epi16(q, load512(y[i].qs + 64 * c));
            sumi = _mm512_dpwssd_epi32(sumi, p, scales16_2(sc16, 2 * c, 2 * c + 1));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    *s = _mm512_reduce_add_ps(acc) - acc_m;
}

/* Q5_K: Q4_K plus bit 2c / 2c+1 of qh[l] as bit 4 of weight 64c+l / 64c+32+l. */
static void vec_dot_q5_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i one = _mm256_set1_epi8(1);
    __m512 acc = _mm512_setzero_ps();
    float acc_m = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sm = unpack_scales_k4(x[i].scales);
        const __m512i sc16 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm));
        const float d = y[i].d * f16f(x[i].d);
        const float dmin = y[i].d * f16f(x[i].dmin);
        acc_m += dmin * (float)mins_dot_bsums8(sm, y[i].bsums);

        __m256i hb = load256(x[i].qh);
        __m512i sumi = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            /* hb has been shifted right by 2c: bits 0 and 1 of each byte are this chunk's */
            __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, one), 4);
            __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4);
            hb = _mm256_srli_epi16(hb, 2);
            __m256i b = load256(x[i].qs + 32 * c);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(b, m4), h0);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), h1);
            __m512i p = _mm512_maddubs_epi16(cat256(lo, hi), load512(y[i].qs + 64 * c));
            sumi = _mm512_dpwssd_epi32(sumi, p, scales16_2(sc16, 2 * c, 2 * c + 1));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    *s = _mm512_reduce_add_ps(acc) - acc_m;
}

/* Bytes 0..7 = sc[2k], bytes 8..15 = sc[2k+1] of the 16 signed byte scales sc8. */
static inline __m128i pair_scales8(__m128i sc8, int k) {
    const __m128i half = _mm_set_epi64x(0x0101010101010101LL, 0);
    return _mm_shuffle_epi8(sc8, _mm_add_epi8(_mm_set1_epi8((char)(2 * k)), half));
}

/* Q6_K: x = d * sc_i * (q - 32) over sub-blocks of 16; the -32 comes out through the bsums
 * as in the AVX2 kernel.  Vector m (64 weights) covers sub-blocks 4m..4m+3. */
static void vec_dot_q6_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m3 = _mm256_set1_epi8(0x03);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sc8 = load128(x[i].scales);
        /* sum_i sc_i * bsums[i] (8 lanes), times 32 below */
        __m256i bias = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), load256(y[i].bsums));
        __m512i sumi = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = load256(x[i].ql + 64 * h);
            __m256i ql1 = load256(x[i].ql + 64 * h + 32);
            __m256i qh = load256(x[i].qh + 32 * h);
            __m256i q0 = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                         _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            __m256i q1 = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                         _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                         _mm256_and_si256(qh, m30));
            __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            for (int v = 0; v < 2; v++) {
                int m = 2 * h + v; /* weights 64m..64m+63 */
                __m512i q = v ? cat256(q2, q3) : cat256(q0, q1);
                __m512i p = _mm512_maddubs_epi16(q, load512(y[i].qs + 64 * m));
                __m512i sc = _mm512_cvtepi8_epi16(
                    _mm256_set_m128i(pair_scales8(sc8, 2 * m + 1), pair_scales8(sc8, 2 * m)));
                sumi = _mm512_dpwssd_epi32(sumi, p, sc);
            }
        }
        __m512i bias32 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_slli_epi32(bias, 5), 0);
        sumi = _mm512_sub_epi32(sumi, bias32);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(y[i].d * f16f(x[i].d)), _mm512_cvtepi32_ps(sumi), acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

/* ---- activation quantizers (bit-identical to the reference) ------------------------ */

/* max(acc, |v|) ignoring NaN lanes of v (maxps returns its second operand on NaN). */
static inline __m512 max_abs_acc(__m512 acc, __m512 v) {
    return _mm512_max_ps(_mm512_andnot_ps(_mm512_set1_ps(-0.0f), v), acc);
}

/* NaN lanes -> 0, others clamped to [lo, hi]. */
static inline __m512 clamp_nan0(__m512 v, float lo, float hi) {
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
    return _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
}

/* roundf(): nearest, ties away from zero, as trunc(v) +- (|v - trunc(v)| >= 0.5). */
static inline __m512i round_away_epi32(__m512 v) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    __m512 t = _mm512_roundscale_ps(v, (_MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
    __m512 frac = _mm512_andnot_ps(sign, _mm512_sub_ps(v, t));
    __m512 step = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(sign, v));
    __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, step));
}

/* Nearest, ties to even (Q8_K's rounding). */
static inline __m512i round_even_epi32(__m512 v) {
    return _mm512_cvttps_epi32(_mm512_roundscale_ps(v, (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
}

/* One Q8_0/Q8_1 block: d = max|x| / 127, q = roundf(x / d) clamped to +-127; returns sum(q). */
static inline int quantize_block32(const float *x, f16_t *dout, int8_t *qs, float *dval) {
    __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(max_abs_acc(max_abs_acc(_mm512_setzero_ps(), v0), v1));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    __m512i q0 = round_away_epi32(clamp_nan0(_mm512_mul_ps(v0, vid), -127.0f, 127.0f));
    __m512i q1 = round_away_epi32(clamp_nan0(_mm512_mul_ps(v1, vid), -127.0f, 127.0f));
    _mm_storeu_si128((__m128i *)qs, _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(qs + 16), _mm512_cvtsepi32_epi8(q1));
    *dout = f32_to_f16(d);
    *dval = d;
    return _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
}

static void from_float_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    float d;
    for (int64_t i = 0; i < n / QK8_0; i++) quantize_block32(x + QK8_0 * i, &y[i].d, y[i].qs, &d);
}

static void from_float_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        float d;
        int sum = quantize_block32(x + QK8_1 * i, &y[i].d, y[i].qs, &d);
        y[i].s = f32_to_f16((float)sum * d);
    }
}

/* Q8_K: iscale = -127 / max with max the first element of largest magnitude, q = round(iscale
 * * x) (ties to even) clamped to -128..127, NaN -> 0, d = 1 / iscale, bsums per 16. */
static void from_float_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 am = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16) am = max_abs_acc(am, _mm512_loadu_ps(x + j));
        const float amax = _mm512_reduce_max_ps(am);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const __m512 vmax = _mm512_set1_ps(amax);
        float max = amax;
        for (int j = 0; j < QK_K; j += 16) {
            __m512 a = _mm512_andnot_ps(sign, _mm512_loadu_ps(x + j));
            __mmask16 hit = _mm512_cmp_ps_mask(a, vmax, _CMP_EQ_OQ);
            if (hit) {
                max = x[j + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m512 vis = _mm512_set1_ps(iscale);
        for (int g = 0; g < QK_K / 16; g++) {
            __m512 v = clamp_nan0(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), vis), -128.0f, 127.0f);
            __m512i q = round_even_epi32(v);
            _mm_storeu_si128((__m128i *)(y[i].qs + 16 * g), _mm512_cvtsepi32_epi8(q));
            y[i].bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- the table --------------------------------------------------------------------- */

static const kern_ops ops_f32 = { .vec_dot = vec_dot_f32 };
static const kern_ops ops_f16 = { .vec_dot = vec_dot_f16_f32, .to_float = to_float_f16 };
static const kern_ops ops_q4_0 = { .vec_dot = vec_dot_q4_0_q8_0 };
static const kern_ops ops_q8_0 = { .vec_dot = vec_dot_q8_0_q8_0, .from_float = from_float_q8_0 };
static const kern_ops ops_q8_1 = { .from_float = from_float_q8_1 };
static const kern_ops ops_q4_K = { .vec_dot = vec_dot_q4_K_q8_K };
static const kern_ops ops_q5_K = { .vec_dot = vec_dot_q5_K_q8_K };
static const kern_ops ops_q6_K = { .vec_dot = vec_dot_q6_K_q8_K };
static const kern_ops ops_q8_K = { .from_float = from_float_q8_K };

const kern_ops *const kern_ops_avx512[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_F32] = &ops_f32,   [GGUF_TYPE_F16] = &ops_f16,   [GGUF_TYPE_Q4_0] = &ops_q4_0,
    [GGUF_TYPE_Q8_0] = &ops_q8_0, [GGUF_TYPE_Q8_1] = &ops_q8_1, [GGUF_TYPE_Q4_K] = &ops_q4_K,
    [GGUF_TYPE_Q5_K] = &ops_q5_K, [GGUF_TYPE_Q6_K] = &ops_q6_K, [GGUF_TYPE_Q8_K] = &ops_q8_K,
};
