/*
 * actq_avx2.c - AVX2 + FMA + F16C kernels of the Q8_16 activation format: the quantizer and the
 * dot product of each quantized weight type with a Q8_16 row (semantics in actq_impl.h).
 *
 * What it is: the x86-64 fast path, compiled with -mavx2 -mfma -mf16c -mbmi2 and called only
 * after dispatch.c saw those features.  The quantizer's output is bit-identical to
 * kern_quantize_q8_16_ref; the dot products compute the reference's integer sums exactly and
 * differ from it only by float rounding.  Hot spot: these dots are the engine's inner loop.
 * What it is not: the matmul driver (matmul.c).
 *
 * The shape of every dot: per 32 weights (one activation block), unpack the weights to 32
 * bytes in element order, then
 *     maddubs(u8 weights, i8 activations) -> 16 int16 pair sums,
 *     madd(pairs, multiplier)             ->  8 int32 lanes,
 * both of which work inside each 128-bit half on consecutive elements, so int32 lanes 0-3 hold
 * the sums of elements 0-15 (activation group 0) and lanes 4-7 those of elements 16-31 (group
 * 1).  The lanes become floats and are FMA'd with the scale vector [d0 x4 | d1 x4] of the
 * activation block times the weight scale.  The multiplier of madd is 1, or the weight's integer
 * sub-block scale for the K types (constant over each 16-element half, so it can be applied
 * before the lanes are summed).  Q4_K, Q5_K and Q6_K go further and finish four activation
 * blocks' group sums in the integer domain (reduce4), so that they convert and FMA once per 128
 * weights.  Weight offsets Q4_0's -8, Q5_0's -16 and Q3_K's -4 are subtracted as integers,
 * maddubs(q, y) - maddubs(offset, y); Q6_K's -32 and the weight minimums (Q4_1, Q5_1, Q2_K,
 * Q4_K, Q5_K) use the activation's float group sums s.
 *
 * maddubs saturates its int16 pair sums; every use keeps them below 32767: unsigned weights are
 * at most 63 (2 * 63 * 127), Q8_0's signed weights go through the sign trick (|w|, y * sign(w)),
 * at most 2 * 128 * 127, because activations never hold -128.
 *
 * Glossary: w = weight block, a / y = activation block(s), p = integer lane sums, acc = float
 * accumulators, mf = float minimum multipliers, sc = integer sub-block scales.
 */
#include <immintrin.h>
#include <string.h>

#include "actq_impl.h"
#include "quants.h"
#include "simd_avx2.h"

/* Q5_0/Q5_1 fifth bits: 0x10 in byte l where bit l of qh (little-endian u32) is set. */
static inline __m256i fifth_bits32(const uint8_t *qh) {
    return _mm256_and_si256(expand_bits32(qh), _mm256_set1_epi8(0x10));
}

/* ---- helpers ----------------------------------------------------------------------------- */


/* Asks for the weight bytes PREFETCH_AHEAD bytes past p, `lines` cache lines of them (enough to
 * cover one loop step's blocks).  A decode matvec streams the matrix from memory while the dot
 * keeps the core busy, and the hardware prefetcher alone does not keep enough reads in flight:
 * 2-thread matvecs over 256 MiB, old and new kernel interleaved in one process (medians of 41
 * rounds), went Q4_K 8.4 -> 9.2, Q6_K 9.1 -> 10.6, Q8_0 6.9 -> 8.5 GB/s on a loaded machine, and
 * Q4_K 15.4 -> 17.2 on a quiet one (distances of 0.4-3 KiB all helped, 1.5 KiB most).  A
 * prefetch never faults, so asking past the end of the matrix is harmless. */
#define PREFETCH_AHEAD 1536
static inline void prefetch_ahead(const void *p, int lines) {
    const char *c = (const char *)p + PREFETCH_AHEAD;
    for (int l = 0; l < lines; l++) _mm_prefetch(c + 64 * l, _MM_HINT_T0);
}

/* Lanes 2 + 3 of an offset accumulator (see act_hdr). */
static inline float sum_s_lanes(__m128 v) {
    __m128 h = _mm_movehl_ps(v, v); /* v2 v3 . . */
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* The activation block's group scales as [d0 x4 | d1 x4], matching the int32 lane groups. */
static inline __m256 act_d(const block_q8_16 *a) {
    return _mm256_blend_ps(_mm256_broadcast_ss(&a->d[0]), _mm256_broadcast_ss(&a->d[1]), 0xF0);
}

/* The block's header [d0, d1, s0, s1].  An offset term beta_g * s_g is accumulated as
 * fma([., ., beta_0, beta_1], header, accm); only lanes 2 and 3 are read at the end. */
static inline __m128 act_hdr(const block_q8_16 *a) { return _mm_loadu_ps(a->d); }

/* int16 pair sums -> int32 sums of 4 consecutive elements. */
static inline __m256i sum_pairs(__m256i p16) { return _mm256_madd_epi16(p16, _mm256_set1_epi16(1)); }

/* acc + (wd * [d0 x4 | d1 x4]) * float(p): one 32-weight block with a single weight scale. */
static inline __m256 fma_block(__m256i p, __m256 wd, const block_q8_16 *a, __m256 acc) {
    return _mm256_fmadd_ps(_mm256_mul_ps(wd, act_d(a)), _mm256_cvtepi32_ps(p), acc);
}



/* The block's f16 pair (d, m) at p as floats in lanes 0 and 1. */
static inline __m128 load_f16x2(const void *p) {
    uint32_t u;
    memcpy(&u, p, 4);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)u));
}

/* ---- legacy 32-weight blocks --------------------------------------------------------------- */

/* Q4_0: (q - 8) . y = q . y - 8 * sum(y), per int16 pair. */
static inline __m256 q4_0_block(const block_q4_0 *w, const block_q8_16 *a, __m256 acc) {
    const __m256i y = load256(a->qs);
    __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(unpack_nibbles16(w->qs), y),
                                   _mm256_maddubs_epi16(_mm256_set1_epi8(8), y));
    return fma_block(sum_pairs(p16), _mm256_set1_ps(f16f(w->d)), a, acc);
}

static void vec_dot_q4_0(int64_t n, float *s, const void *vw, const void *va) {
    const block_q4_0 *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK4_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) { /* two chains hide the FMA latency */
        acc0 = q4_0_block(&w[i], &a[i], acc0);
        acc1 = q4_0_block(&w[i + 1], &a[i + 1], acc1);
    }
    if (i < nb) acc0 = q4_0_block(&w[i], &a[i], acc0);
    *s = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* Q5_0: q = nibble | bit4, (q - 16) . y = q . y - 16 * sum(y). */
static inline __m256 q5_0_block(const block_q5_0 *w, const block_q8_16 *a, __m256 acc) {
    const __m256i y = load256(a->qs);
    __m256i q = _mm256_or_si256(unpack_nibbles16(w->qs), fifth_bits32(w->qh));
    __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), _mm256_maddubs_epi16(_mm256_set1_epi8(16), y));
    return fma_block(sum_pairs(p16), _mm256_set1_ps(f16f(w->d)), a, acc);
}

static void vec_dot_q5_0(int64_t n, float *s, const void *vw, const void *va) {
    const block_q5_0 *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK5_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = q5_0_block(&w[i], &a[i], acc0);
        acc1 = q5_0_block(&w[i + 1], &a[i + 1], acc1);
    }
    if (i < nb) acc0 = q5_0_block(&w[i], &a[i], acc0);
    *s = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* Q4_1 / Q5_1: w = d*q + m, so dot = d * sum_g d_g * (q . y)_g + m * (s_0 + s_1).  q holds the
 * unsigned weight bytes, dm the f16 pair (d, m) as floats. */
static inline __m256 q_1_block(__m256i q, __m128 dm, const block_q8_16 *a, __m256 acc, __m128 *accm) {
    __m256i p = sum_pairs(_mm256_maddubs_epi16(q, load256(a->qs)));
    *accm = _mm_fmadd_ps(_mm_permute_ps(dm, 0x55), act_hdr(a), *accm);
    return fma_block(p, _mm256_broadcastss_ps(dm), a, acc);
}

static void vec_dot_q4_1(int64_t n, float *s, const void *vw, const void *va) {
    const block_q4_1 *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK4_1;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    __m128 accm0 = _mm_setzero_ps(), accm1 = accm0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        acc0 = q_1_block(unpack_nibbles16(w[i].qs), load_f16x2(&w[i].d), &a[i], acc0, &accm0);
        acc1 = q_1_block(unpack_nibbles16(w[i + 1].qs), load_f16x2(&w[i + 1].d), &a[i + 1], acc1, &accm1);
    }
    if (i < nb) acc0 = q_1_block(unpack_nibbles16(w[i].qs), load_f16x2(&w[i].d), &a[i], acc0, &accm0);
    *s = hsum_ps(_mm256_add_ps(acc0, acc1)) + sum_s_lanes(_mm_add_ps(accm0, accm1));
}

static void vec_dot_q5_1(int64_t n, float *s, const void *vw, const void *va) {
    const block_q5_1 *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK5_1;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    __m128 accm0 = _mm_setzero_ps(), accm1 = accm0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256i q0 = _mm256_or_si256(unpack_nibbles16(w[i].qs), fifth_bits32(w[i].qh));
        __m256i q1 = _mm256_or_si256(unpack_nibbles16(w[i + 1].qs), fifth_bits32(w[i + 1].qh));
        acc0 = q_1_block(q0, load_f16x2(&w[i].d), &a[i], acc0, &accm0);
        acc1 = q_1_block(q1, load_f16x2(&w[i + 1].d), &a[i + 1], acc1, &accm1);
    }
    if (i < nb) {
        __m256i q0 = _mm256_or_si256(unpack_nibbles16(w[i].qs), fifth_bits32(w[i].qh));
        acc0 = q_1_block(q0, load_f16x2(&w[i].d), &a[i], acc0, &accm0);
    }
    *s = hsum_ps(_mm256_add_ps(acc0, acc1)) + sum_s_lanes(_mm_add_ps(accm0, accm1));
}

/* Q8_0: signed x signed bytes via |w| * (y * sign(w)). */
static inline __m256 q8_0_block(const block_q8_0 *w, const block_q8_16 *a, __m256 acc) {
    const __m256i x = load256(w->qs), y = load256(a->qs);
    __m256i p = sum_pairs(_mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)));
    return fma_block(p, _mm256_set1_ps(f16f(w->d)), a, acc);
}

static void vec_dot_q8_0(int64_t n, float *s, const void *vw, const void *va) {
    const block_q8_0 *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK8_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        prefetch_ahead(&w[i], 2);
        acc0 = q8_0_block(&w[i], &a[i], acc0);
        acc1 = q8_0_block(&w[i + 1], &a[i + 1], acc1);
    }
    if (i < nb) acc0 = q8_0_block(&w[i], &a[i], acc0);
    *s = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- four activation blocks at a time ------------------------------------------------------------- */

/*
 * The K-type kernels below work on 128 weights (four activation blocks A, B, C, D) at a time, so
 * that the int -> float conversion and the float FMA happen once per 128 weights instead of once
 * per 32: reduce4 finishes the group sums in the integer domain and act_quad gathers the four
 * blocks' scales into the matching lane order.
 */

/* p_X = int32 lanes [X0 x4 | X1 x4] (partial sums of block X's groups 0 and 1) ->
 * [A0 B0 C0 D0 | A1 B1 C1 D1], the full group sums. */
static inline __m256i reduce4(__m256i pa, __m256i pb, __m256i pc, __m256i pd) {
    const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(pa, pb), _mm256_unpackhi_epi32(pa, pb));
    const __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(pc, pd), _mm256_unpackhi_epi32(pc, pd));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
}

/* Scales of the activation blocks a[0..3] = A..D in reduce4's order,
 * [A.d0 B.d0 C.d0 D.d0 | A.d1 B.d1 C.d1 D.d1]; and their sums in the cheaper order
 * *sv = [A.s0 B.s0 A.s1 B.s1 | C.s0 D.s0 C.s1 D.s1] (offset vectors are permuted to match). */
static inline __m256 act_quad(const block_q8_16 *a, __m256 *sv) {
    const __m256 x = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(a[0].d)), _mm_loadu_ps(a[2].d), 1);
    const __m256 y = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(a[1].d)), _mm_loadu_ps(a[3].d), 1);
    *sv = _mm256_unpackhi_ps(x, y);
    const __m256 lo = _mm256_unpacklo_ps(x, y); /* A.d0 B.d0 A.d1 B.d1 | C.d0 D.d0 C.d1 D.d1 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(lo), _MM_SHUFFLE(3, 1, 2, 0)));
}

static inline __m256 permf(__m256 v, int i0, int i1, int i2, int i3, int i4, int i5, int i6, int i7) {
    return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(i0, i1, i2, i3, i4, i5, i6, i7));
}

/* ---- K types with sub-blocks of 32: Q4_K, Q5_K ------------------------------------------------ */

/*
 * Unpacks the 6-bit scales and mins (layout in quants.h), working on the 12 bytes as three
 * little-endian u32, into floats sf[j] = d * sc_j and mf[j] = -dmin * m_j, j = 0..7.
 */
static inline void k4_scales(const uint8_t *scales, const f16_t *d_dmin, __m256 *sf, __m256 *mf) {
    const __m128i b = k4_scale_bytes(scales);
    const __m128 dd = load_f16x2(d_dmin); /* d, dmin */
    *sf = _mm256_mul_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)));
    const __m256 ndmin = _mm256_broadcastss_ps(_mm_sub_ps(_mm_setzero_ps(), _mm_movehdup_ps(dd)));
    *mf = _mm256_mul_ps(ndmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8))));
}

/* Sub-blocks 4k..4k+3 (weight bytes qa..qd) against activation blocks a[0..3]:
 * acc += [d0 scales] * (d * sc) * group sums, accm += (-dmin * m) * [s]. */
static inline void k4_quad(__m256i qa, __m256i qb, __m256i qc, __m256i qd, const block_q8_16 *a, int k,
                           __m256 sf, __m256 mf, __m256 *acc, __m256 *accm) {
    const __m256i p = reduce4(sum_pairs(_mm256_maddubs_epi16(qa, load256(a[0].qs))),
                              sum_pairs(_mm256_maddubs_epi16(qb, load256(a[1].qs))),
                              sum_pairs(_mm256_maddubs_epi16(qc, load256(a[2].qs))),
                              sum_pairs(_mm256_maddubs_epi16(qd, load256(a[3].qs))));
    __m256 sv;
    const __m256 dv = act_quad(a, &sv);
    /* sub-block scales in reduce4's order [A B C D | A B C D], mins in act_quad's s order */
    const __m256 wsc = k ? permf(sf, 4, 5, 6, 7, 4, 5, 6, 7) : permf(sf, 0, 1, 2, 3, 0, 1, 2, 3);
    const __m256 wm = k ? permf(mf, 4, 5, 4, 5, 6, 7, 6, 7) : permf(mf, 0, 1, 0, 1, 2, 3, 2, 3);
    *acc = _mm256_fmadd_ps(_mm256_mul_ps(dv, wsc), _mm256_cvtepi32_ps(p), *acc);
    *accm = _mm256_fmadd_ps(wm, sv, *accm);
}

/* Q4_K: chunk c of qs (32 bytes) holds sub-block 2c in its low nibbles and 2c+1 in its high
 * nibbles.  Hot spot: most models' FFN weights. */
static void vec_dot_q4_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q4_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int64_t i = 0; i < nb; i++, a += QK_K / QK8_16) {
        prefetch_ahead(&w[i], 3); /* 144 bytes */
        __m256 sf, mf;
        k4_scales(w[i].scales, &w[i].d, &sf, &mf);
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            const __m256i b0 = load256(w[i].qs + 64 * k), b1 = load256(w[i].qs + 64 * k + 32);
            k4_quad(_mm256_and_si256(b0, m4), _mm256_and_si256(_mm256_srli_epi16(b0, 4), m4),
                    _mm256_and_si256(b1, m4), _mm256_and_si256(_mm256_srli_epi16(b1, 4), m4), a + 4 * k, k, sf,
                    mf, &acc, &accm);
        }
    }
    *s = hsum_ps(_mm256_add_ps(acc, accm));
}

/* Q5_K: Q4_K plus a fifth bit, bit 2c of qh[l] for weight 64c + l and bit 2c+1 for 64c+32+l.
 * hb is shifted right by 2 per chunk, so bits 0 and 1 of each byte are always the current
 * chunk's (16-bit shifts carry the next byte's bits only into bits that are never read). */
static inline void q5_K_chunk(const uint8_t *qs, __m256i *hb, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    const __m256i b = load256(qs);
    *lo = _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_slli_epi16(*hb, 4), b4));
    *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), _mm256_and_si256(_mm256_slli_epi16(*hb, 3), b4));
    *hb = _mm256_srli_epi16(*hb, 2);
}

static void vec_dot_q5_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q5_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int64_t i = 0; i < nb; i++, a += QK_K / QK8_16) {
        prefetch_ahead(&w[i], 3); /* 176 bytes */
        __m256 sf, mf;
        k4_scales(w[i].scales, &w[i].d, &sf, &mf);
        __m256i hb = load256(w[i].qh);
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            __m256i qa, qb, qc, qd;
            q5_K_chunk(w[i].qs + 64 * k, &hb, &qa, &qb);
            q5_K_chunk(w[i].qs + 64 * k + 32, &hb, &qc, &qd);
            k4_quad(qa, qb, qc, qd, a + 4 * k, k, sf, mf, &acc, &accm);
        }
    }
    *s = hsum_ps(_mm256_add_ps(acc, accm));
}

/* ---- K types with sub-blocks of 16: Q2_K, Q3_K, Q6_K ------------------------------------------- */

/*
 * Here a 32-weight chunk k (activation block k of the super-block) spans sub-blocks 2k and
 * 2k+1, one per 128-bit half, so the madd multiplier is [sc_2k x8 int16 | sc_2k+1 x8 int16].
 * It is cut out of T[k / 4] = the int16 scales of sub-blocks 8(k/4)..8(k/4)+7 in both halves
 * by a byte shuffle whose index (scale_pick) depends only on k % 4.
 */
static inline void k16_scale_tables(__m128i sc8, int is_signed, __m256i T[2]) {
    const __m256i sc16 = is_signed ? _mm256_cvtepi8_epi16(sc8) : _mm256_cvtepu8_epi16(sc8);
    T[0] = _mm256_permute2x128_si256(sc16, sc16, 0x00);
    T[1] = _mm256_permute2x128_si256(sc16, sc16, 0x11);
}

/* Shuffle index for k % 4 = j: int16 element 2j in the low half, 2j + 1 in the high half. */
static inline __m256i scale_pick(int j) {
    return _mm256_set_m128i(_mm_set1_epi16((short)((4 * j + 2) | (4 * j + 3) << 8)),
                            _mm_set1_epi16((short)((4 * j) | (4 * j + 1) << 8)));
}

/* acc += [d0 x4 | d1 x4] * float(madd(p16, scales)). */
static inline __m256 k16_chunk(__m256i p16, __m256i scales, const block_q8_16 *a, __m256 acc) {
    return _mm256_fmadd_ps(act_d(a), _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, scales)), acc);
}

/*
 * Q6_K: q = ql nibble | 2 bits of qh << 4 in 0..63 (layout in quants.h), weight q - 32.  Half h
 * of the super-block is four activation blocks; their group sums come out of reduce4 as
 * sub-blocks [8h+0 8h+2 8h+4 8h+6 | 8h+1 8h+3 8h+5 8h+7].  The -32 is taken out with the
 * activation sums: sum_g d sc_g (q - 32) . y = sum_g d sc_g (q . y) - 32 sum_g d sc_g s_g.
 */
static void vec_dot_q6_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q6_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int64_t i = 0; i < nb; i++, a += QK_K / QK8_16) {
        prefetch_ahead(&w[i], 4); /* 210 bytes */
        const __m128i sc8 = load128(w[i].scales);
        const __m256 d = _mm256_set1_ps(f16f(w[i].d));
        const __m256 sf[2] = { _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8))),
                               _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8)))) };
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = load256(w[i].ql + 64 * h), ql1 = load256(w[i].ql + 64 * h + 32);
            const __m256i qh = load256(w[i].qh + 32 * h);
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            const block_q8_16 *ah = a + 4 * h;
            const __m256i p = reduce4(sum_pairs(_mm256_maddubs_epi16(q0, load256(ah[0].qs))),
                                      sum_pairs(_mm256_maddubs_epi16(q1, load256(ah[1].qs))),
                                      sum_pairs(_mm256_maddubs_epi16(q2, load256(ah[2].qs))),
                                      sum_pairs(_mm256_maddubs_epi16(q3, load256(ah[3].qs))));
            __m256 sv;
            const __m256 dv = act_quad(ah, &sv);
            acc = _mm256_fmadd_ps(_mm256_mul_ps(dv, permf(sf[h], 0, 2, 4, 6, 1, 3, 5, 7)), _mm256_cvtepi32_ps(p), acc);
            accm = _mm256_fmadd_ps(permf(sf[h], 0, 2, 1, 3, 4, 6, 5, 7), sv, accm);
        }
    }
    *s = hsum_ps(_mm256_fnmadd_ps(_mm256_set1_ps(32.0f), accm, acc));
}

/* The 16 6-bit scales of Q3_K minus 32 (layout in quants.h), as signed bytes. */
static inline __m128i q3_K_scales(const uint8_t *scales) {
    const kq_scale_bytes u = kq_q3_K_unpack_scales(scales);
    return _mm_sub_epi8(load128(u.u), _mm_set1_epi8(32));
}

/*
 * Q3_K: chunk k = 4h + t is bits 2t..2t+1 of qs[32h + l] and bit k of hmask[l].  With
 * q' = low bits | hbit << 2 in 0..7 the weight integer is q' - 4.  qs and hmask are shifted
 * right as the chunks advance; the 16-bit shifts bring the next byte's bits only into bits
 * that are masked off.
 */
static void vec_dot_q3_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q3_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(0x03), b2 = _mm256_set1_epi8(0x04);
    const __m256i off = _mm256_set1_epi8(4);
    const __m256i pick[4] = { scale_pick(0), scale_pick(1), scale_pick(2), scale_pick(3) };
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i T[2];
        k16_scale_tables(q3_K_scales(w[i].scales), 1, T);
        __m256i hm = load256(w[i].hmask);
        __m256 s0 = _mm256_setzero_ps(), s1 = s0;
        for (int h = 0; h < 2; h++) {
            __m256i qs = load256(w[i].qs + 32 * h);
            const block_q8_16 *ah = a + 8 * i + 4 * h;
            for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_or_si256(_mm256_and_si256(qs, m3), _mm256_and_si256(_mm256_slli_epi16(hm, 2), b2));
                qs = _mm256_srli_epi16(qs, 2);
                hm = _mm256_srli_epi16(hm, 1);
                const __m256i y = load256(ah[j].qs);
                __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), _mm256_maddubs_epi16(off, y));
                __m256i sc = _mm256_shuffle_epi8(T[h], pick[j]);
                if (j & 1) s1 = k16_chunk(p16, sc, &ah[j], s1);
                else s0 = k16_chunk(p16, sc, &ah[j], s0);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16f(w[i].d)), _mm256_add_ps(s0, s1), acc);
    }
    *s = hsum_ps(acc);
}

/* Q2_K: q in 0..3 laid out as Q3_K's low bits; scales[g] = sc | m << 4.  The minimum term
 * -dmin * m_g * s_g is accumulated from a float table mf of the super-block. */
static void vec_dot_q2_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q2_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(0x03);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m256i pick[4] = { scale_pick(0), scale_pick(1), scale_pick(2), scale_pick(3) };
    __m256 acc = _mm256_setzero_ps();
    __m128 accm0 = _mm_setzero_ps(), accm1 = accm0;
    for (int64_t i = 0; i < nb; i++) {
        const __m128i packed = load128(w[i].scales);
        __m256i T[2];
        k16_scale_tables(_mm_and_si128(packed, m4), 0, T);
        /* mf[g] = -dmin * m_g */
        float mf[16];
        const __m128i m8 = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
        const __m256 ndmin = _mm256_set1_ps(-f16f(w[i].dmin));
        _mm256_storeu_ps(mf, _mm256_mul_ps(ndmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m8))));
        _mm256_storeu_ps(mf + 8, _mm256_mul_ps(ndmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(m8, 8)))));
        __m256 s0 = _mm256_setzero_ps(), s1 = s0;
        for (int h = 0; h < 2; h++) {
            __m256i qs = load256(w[i].qs + 32 * h);
            const block_q8_16 *ah = a + 8 * i + 4 * h;
            for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_and_si256(qs, m3);
                qs = _mm256_srli_epi16(qs, 2);
                const __m256i p16 = _mm256_maddubs_epi16(q, load256(ah[j].qs));
                const __m256i sc = _mm256_shuffle_epi8(T[h], pick[j]);
                /* [m_2k, m_2k+1, m_2k, m_2k+1] * [d0, d1, s0, s1]: lanes 2, 3 are the terms */
                const __m128 mpair = _mm_castpd_ps(_mm_loaddup_pd((const double *)(mf + 8 * h + 2 * j)));
                if (j & 1) {
                    s1 = k16_chunk(p16, sc, &ah[j], s1);
                    accm1 = _mm_fmadd_ps(mpair, act_hdr(&ah[j]), accm1);
                } else {
                    s0 = k16_chunk(p16, sc, &ah[j], s0);
                    accm0 = _mm_fmadd_ps(mpair, act_hdr(&ah[j]), accm0);
                }
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16f(w[i].d)), _mm256_add_ps(s0, s1), acc);
    }
    *s = hsum_ps(acc) + sum_s_lanes(_mm_add_ps(accm0, accm1));
}

/* ---- the quantizer ----------------------------------------------------------------------------- */

/* roundf() on 8 lanes already clamped to +-127 and free of NaN: nearest, ties away from zero
 * (the hardware's nearest mode is ties-to-even).  v - trunc(v) is exact for |v| < 2^23. */
static inline __m256i round_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 step = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(sign, v)); /* +-1 */
    const __m256 adj = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, adj));
}

/* x * id with NaN -> 0 and clamped to [-127, 127], then rounded as the reference does. */
static inline __m256i quant8(__m256 x, __m256 id) {
    __m256 v = _mm256_mul_ps(x, id);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    return round_away(v);
}

/* max(acc, |v|) skipping NaN lanes of v: maxps returns its second operand if either is NaN. */
static inline __m256 max_abs(__m256 acc, __m256 v) {
    return _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), acc);
}

static void quantize_q8_16(const float *x, void *vy, int64_t n) {
    block_q8_16 *y = vy;
    const int64_t nb = n / QK8_16;
    for (int64_t i = 0; i < nb; i++, x += QK8_16) {
        __m256i q[4];
        for (int g = 0; g < 2; g++) {
            const __m256 v0 = _mm256_loadu_ps(x + 16 * g), v1 = _mm256_loadu_ps(x + 16 * g + 8);
            const float amax = hmax_ps(max_abs(max_abs(_mm256_setzero_ps(), v0), v1));
            const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
            const __m256 vid = _mm256_set1_ps(id);
            q[2 * g] = quant8(v0, vid);
            q[2 * g + 1] = quant8(v1, vid);
            y[i].d[g] = d;
            y[i].s[g] = d * (float)hsum_epi32(_mm256_add_epi32(q[2 * g], q[2 * g + 1]));
        }
        /* packs work per 128-bit half, leaving 4-element runs in the order 0 2 4 6 | 1 3 5 7
         * (run r = elements 4r..4r+3); the permute restores element order */
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)y[i].qs, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
}

/* ---- the tables -------------------------------------------------------------------------------- */

const kern_vec_dot_fn kern_q8_16_dot_avx2[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_Q4_0] = vec_dot_q4_0, [GGUF_TYPE_Q4_1] = vec_dot_q4_1, [GGUF_TYPE_Q5_0] = vec_dot_q5_0,
    [GGUF_TYPE_Q5_1] = vec_dot_q5_1, [GGUF_TYPE_Q8_0] = vec_dot_q8_0, [GGUF_TYPE_Q2_K] = vec_dot_q2_K,
    [GGUF_TYPE_Q3_K] = vec_dot_q3_K, [GGUF_TYPE_Q4_K] = vec_dot_q4_K, [GGUF_TYPE_Q5_K] = vec_dot_q5_K,
    [GGUF_TYPE_Q6_K] = vec_dot_q6_K,
};

const kern_from_float_fn kern_q8_16_quantize_avx2 = quantize_q8_16;
