/*
 * actq_neon.c - NEON kernels of the Q8_16 activation format: the quantizer and the dot product of
 * each quantized weight type with a Q8_16 row (semantics in actq_impl.h).
 *
 * What it is: the arm64 fast path (baseline ARMv8.0-A AdvSIMD, no dot-product extension),
 * compiled only for aarch64 targets and chosen by dispatch.c there.  The quantizer's output is
 * bit-identical to kern_quantize_q8_16_ref; the dot products compute the reference's integer
 * sums exactly and differ from it only by float rounding.  Hot spot: these dots are the engine's
 * inner loop on arm64.
 * What it is not: the matmul driver (matmul.c), or batched (gemm) kernels: arm64 has none yet,
 * so kern_matmul runs these dots per row and token.
 *
 * The shape of every dot: weights are unpacked to signed bytes in element order, 16 at a time
 * (one activation group g), and multiplied with the activation bytes by mul16 (simd_neon.h), an
 * int16x8 whose lanes sum to the group's integer dot.  Four groups (two activation blocks A, B)
 * are reduced together by hsum4_s16 to the int32 lanes [A0 A1 B0 B1], converted to float once
 * and FMA'd with [A.d0 A.d1 B.d0 B.d1] times the weight scale of each group (alpha_g).  Offsets
 * beta_g (weight minimums of Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) are FMA'd with the activation's group
 * sums [A.s0 A.s1 B.s0 B.s1]; constant offsets (Q4_0's -8, Q5_0's -16, Q3_K's -4, Q6_K's -32) are
 * subtracted from the weight bytes before the multiply, so every weight byte is in -32..31 or
 * 0..31, except Q8_0's -128..127 (mul16's bound: 2 * 128 * 127 fits int16).
 *
 * Glossary: w = weight block, a = activation blocks, p = int32 group sums, dv / sv = activation
 * scales / sums of two blocks, sf / mf = float sub-block scales (alpha) / minimums (beta).
 */
#include <arm_neon.h>
#include <string.h>

#include "actq_impl.h"
#include "quants.h"
#include "simd_neon.h"

/* ---- helpers -------------------------------------------------------------------------------- */

/* Two consecutive activation blocks a[0] = A, a[1] = B: returns [A.d0 A.d1 B.d0 B.d1] and sets
 * *sv = [A.s0 A.s1 B.s0 B.s1].  A block starts with its header d0 d1 s0 s1 (actq.h). */
static inline float32x4_t act_d2(const block_q8_16 *a, float32x4_t *sv) {
    const float64x2_t h0 = vreinterpretq_f64_f32(vld1q_f32((const float *)&a[0]));
    const float64x2_t h1 = vreinterpretq_f64_f32(vld1q_f32((const float *)&a[1]));
    *sv = vreinterpretq_f32_f64(vzip2q_f64(h0, h1));
    return vreinterpretq_f32_f64(vzip1q_f64(h0, h1));
}

/* Integer group sums [A0 A1 B0 B1] of weights (wa0 wa1 | wb0 wb1, 16 signed bytes per group)
 * against activation blocks a[0], a[1]. */
static inline int32x4_t dot2(int8x16_t wa0, int8x16_t wa1, int8x16_t wb0, int8x16_t wb1, const block_q8_16 *a) {
    return hsum4_s16(mul16(wa0, ld_s8(a[0].qs)), mul16(wa1, ld_s8(a[0].qs + 16)), mul16(wb0, ld_s8(a[1].qs)),
                     mul16(wb1, ld_s8(a[1].qs + 16)));
}

/* acc + (dv * wsc) * float(p): the scaled group sums of two activation blocks. */
static inline float32x4_t fma2(float32x4_t acc, int32x4_t p, float32x4_t dv, float32x4_t wsc) {
    return vfmaq_f32(acc, vmulq_f32(dv, wsc), vcvtq_f32_s32(p));
}

/* ---- legacy 32-weight blocks --------------------------------------------------------------- */

/* dot = sum over blocks of d * (d0 * p0 + d1 * p1) + m * (s0 + s1), two blocks per step; a last
 * odd block is finished on two lanes.  The unpackers (simd_neon.h) give each block's two groups
 * of weight integers and [d, m]. */
static inline __attribute__((always_inline)) void dot_legacy(int64_t n, float *s, const void *vw, size_t size,
                                                             const block_q8_16 *a, unpack32_fn unpack, int has_min) {
    const uint8_t *w = vw;
    const int64_t nb = n / 32;
    float32x4_t acc = vdupq_n_f32(0.f), accm = acc;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        int8x16_t xa0, xa1, xb0, xb1;
        float32x2_t dma, dmb;
        unpack(w + (size_t)i * size, &xa0, &xa1, &dma);
        unpack(w + (size_t)(i + 1) * size, &xb0, &xb1, &dmb);
        float32x4_t sv;
        const float32x4_t dv = act_d2(a + i, &sv);
        acc = fma2(acc, dot2(xa0, xa1, xb0, xb1, a + i), dv,
                   vcombine_f32(vdup_lane_f32(dma, 0), vdup_lane_f32(dmb, 0)));
        if (has_min) accm = vfmaq_f32(accm, vcombine_f32(vdup_lane_f32(dma, 1), vdup_lane_f32(dmb, 1)), sv);
    }
    float tail = 0.f;
    if (i < nb) {
        int8x16_t x0, x1;
        float32x2_t dm;
        unpack(w + (size_t)i * size, &x0, &x1, &dm);
        const int32x4_t p4 = vpaddq_s32(vpaddlq_s16(mul16(x0, ld_s8(a[i].qs))),
                                        vpaddlq_s16(mul16(x1, ld_s8(a[i].qs + 16))));
        const float32x2_t p = vcvt_f32_s32(vpadd_s32(vget_low_s32(p4), vget_high_s32(p4))); /* [p0 p1] */
        tail = vget_lane_f32(dm, 0) * vaddv_f32(vmul_f32(p, vld1_f32(a[i].d)));
        if (has_min) tail += vget_lane_f32(dm, 1) * (a[i].s[0] + a[i].s[1]);
    }
    *s = vaddvq_f32(vaddq_f32(acc, accm)) + tail;
}

static void vec_dot_q4_0(int64_t n, float *s, const void *w, const void *a) {
    dot_legacy(n, s, w, sizeof(block_q4_0), a, unpack_q4_0, 0);
}
static void vec_dot_q4_1(int64_t n, float *s, const void *w, const void *a) {
    dot_legacy(n, s, w, sizeof(block_q4_1), a, unpack_q4_1, 1);
}
static void vec_dot_q5_0(int64_t n, float *s, const void *w, const void *a) {
    dot_legacy(n, s, w, sizeof(block_q5_0), a, unpack_q5_0, 0);
}
static void vec_dot_q5_1(int64_t n, float *s, const void *w, const void *a) {
    dot_legacy(n, s, w, sizeof(block_q5_1), a, unpack_q5_1, 1);
}
static void vec_dot_q8_0(int64_t n, float *s, const void *w, const void *a) {
    dot_legacy(n, s, w, sizeof(block_q8_0), a, unpack_q8_0, 0);
}

/* ---- K types with sub-blocks of 32: Q4_K, Q5_K ------------------------------------------------ */

/*
 * The 6-bit scales and mins of Q4_K/Q5_K (layout in quants.h), unpacked with the 12 bytes read
 * as three little-endian u32 a0 a1 a2, as floats: sf[0..1] = d * sc_0..7, mf[0..1] = -dmin *
 * m_0..7 (four per vector).
 */
static inline void k4_scales(const uint8_t *scales, const f16_t *d_dmin, float32x4_t sf[2], float32x4_t mf[2]) {
    const kq_scale_bytes u = kq_k4_unpack_scales(scales);
    const uint8x16_t b = vld1q_u8((const uint8_t *)u.u);
    const uint16x8_t sc = vmovl_u8(vget_low_u8(b)), m = vmovl_high_u8(b);
    const float32x2_t dd = h2f_pair(d_dmin);
    const float d = vget_lane_f32(dd, 0), ndmin = -vget_lane_f32(dd, 1);
    sf[0] = vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(sc))), d);
    sf[1] = vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(sc)), d);
    mf[0] = vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(m))), ndmin);
    mf[1] = vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(m)), ndmin);
}

/* The values of sub-blocks 2c and 2c + 1 (chunk c), each for its two groups: [v_2c v_2c v_2c+1
 * v_2c+1], v being two vectors of the 8 per-sub-block values. */
static inline float32x4_t chunk_pairs(const float32x4_t v[2], int c) {
    return (c & 1) ? vzip2q_f32(v[c >> 1], v[c >> 1]) : vzip1q_f32(v[c >> 1], v[c >> 1]);
}

/* Chunk c of a Q4_K/Q5_K super-block: 32 bytes whose low parts (lo0 | lo1) are sub-block 2c
 * (activation block 2c) and high parts (hi0 | hi1) sub-block 2c + 1. */
static inline void k4_chunk(uint8x16_t lo0, uint8x16_t lo1, uint8x16_t hi0, uint8x16_t hi1, const block_q8_16 *ac,
                            int c, const float32x4_t sf[2], const float32x4_t mf[2], float32x4_t *acc,
                            float32x4_t *accm) {
    float32x4_t sv;
    const float32x4_t dv = act_d2(ac, &sv);
    *acc = fma2(*acc, dot2(as_s8(lo0), as_s8(lo1), as_s8(hi0), as_s8(hi1), ac), dv, chunk_pairs(sf, c));
    *accm = vfmaq_f32(*accm, chunk_pairs(mf, c), sv);
}

/* Q4_K: chunk c of qs (32 bytes) holds sub-block 2c in its low nibbles and 2c+1 in its high
 * nibbles.  Hot spot: most models' FFN weights. */
static void vec_dot_q4_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q4_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float32x4_t acc = vdupq_n_f32(0.f), accm = acc;
    for (int64_t i = 0; i < nb; i++, a += QK_K / QK8_16) {
        float32x4_t sf[2], mf[2];
        k4_scales(w[i].scales, &w[i].d, sf, mf);
        for (int c = 0; c < 4; c++) {
            const uint8x16_t b0 = ld_u8(w[i].qs + 32 * c), b1 = ld_u8(w[i].qs + 32 * c + 16);
            k4_chunk(vandq_u8(b0, m4), vandq_u8(b1, m4), vshrq_n_u8(b0, 4), vshrq_n_u8(b1, 4), a + 2 * c, c, sf, mf,
                     &acc, &accm);
        }
    }
    *s = vaddvq_f32(vaddq_f32(acc, accm));
}

/* Q5_K: Q4_K plus a fifth bit, bit 2c of qh[l] for weight 64c + l and bit 2c+1 for 64c+32+l.
 * h0 / h1 (qh bytes 0..15 / 16..31) are shifted right by 2 per chunk, so bits 0 and 1 are always
 * the current chunk's. */
static void vec_dot_q5_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q5_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    float32x4_t acc = vdupq_n_f32(0.f), accm = acc;
    for (int64_t i = 0; i < nb; i++, a += QK_K / QK8_16) {
        float32x4_t sf[2], mf[2];
        k4_scales(w[i].scales, &w[i].d, sf, mf);
        uint8x16_t h0 = ld_u8(w[i].qh), h1 = ld_u8(w[i].qh + 16);
        for (int c = 0; c < 4; c++) {
            uint8x16_t lo[2], hi[2];
            unpack_q5_K_chunk(w[i].qs + 32 * c, &h0, &h1, lo, hi);
            k4_chunk(lo[0], lo[1], hi[0], hi[1], a + 2 * c, c, sf, mf, &acc, &accm);
        }
    }
    *s = vaddvq_f32(vaddq_f32(acc, accm));
}

/* ---- K types with sub-blocks of 16: Q2_K, Q3_K, Q6_K ------------------------------------------- */

/* Here sub-block g of 16 is activation group g, so two activation blocks 2m, 2m + 1 meet the four
 * scales 4m..4m+3: one vector of the super-block's 16 float scales, sf[m]. */

/* 16 signed byte scales times d -> four vectors of 4 floats. */
static inline void scales16_s8(int8x16_t sc, float d, float32x4_t sf[4]) {
    const int16x8_t lo = vmovl_s8(vget_low_s8(sc)), hi = vmovl_high_s8(sc);
    sf[0] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d);
    sf[1] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), d);
    sf[2] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d);
    sf[3] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), d);
}

/* One half of a K-type superblock with sub-blocks of 16 (Q6_K, Q3_K, Q2_K): signed weights q[t][e]
 * (16-byte half e of activation block ab[t]) against ab[0..3], acc += the group sums scaled by
 * sf[0..1] (one float per sub-block, in sub-block order); with mf, also accm += mf * the blocks'
 * activation sums (Q2_K's minimums). */
static inline void k16_half(int8x16_t q[4][2], const block_q8_16 *ab, const float32x4_t *sf, const float32x4_t *mf,
                            float32x4_t *acc, float32x4_t *accm) {
    for (int j = 0; j < 4; j += 2) {
        float32x4_t sv;
        const float32x4_t dv = act_d2(ab + j, &sv);
        *acc = fma2(*acc, dot2(q[j][0], q[j][1], q[j + 1][0], q[j + 1][1], ab + j), dv, sf[j / 2]);
        if (mf) *accm = vfmaq_f32(*accm, mf[j / 2], sv);
    }
}

/*
 * Q6_K: q = ql nibble | 2 bits of qh << 4 in 0..63 (layout in quants.h), weight q - 32.  Half h
 * is activation blocks 4h..4h+3: with ql0 = ql[64h..], ql1 = ql[64h+32..], qh = qh[32h..] (32
 * bytes each, taken 16 at a time), block 4h+0 is ql0 low | qh bits 0-1, 4h+1 ql1 low | bits 2-3,
 * 4h+2 ql0 high | bits 4-5, 4h+3 ql1 high | bits 6-7.
 */
static void vec_dot_q6_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q6_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    float32x4_t acc = vdupq_n_f32(0.f);
    for (int64_t i = 0; i < nb; i++, a += QK_K / QK8_16) {
        float32x4_t sf[4];
        scales16_s8(vld1q_s8(w[i].scales), h2f(w[i].d), sf);
        for (int h = 0; h < 2; h++) {
            int8x16_t q[4][2]; /* [block 4h + j][16-byte half] */
            unpack_q6_K_half(w[i].ql, w[i].qh, h, q);
            k16_half(q, a + 4 * h, sf + 2 * h, NULL, &acc, NULL);
        }
    }
    *s = vaddvq_f32(acc);
}

/*
 * Q3_K: activation block k = 4h + t is bits 2t..2t+1 of qs[32h + l] and bit k of hmask[l]
 * (l = 0..31); with q' = low bits | hbit << 2 in 0..7 the weight integer is q' - 4.  Scales:
 * 6-bit, stored + 32, packed as in quants.h.
 */
static void vec_dot_q3_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q3_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    const uint8x16_t m3 = vdupq_n_u8(0x03), b2 = vdupq_n_u8(0x04);
    const int8x16_t off = vdupq_n_s8(4);
    float32x4_t acc = vdupq_n_f32(0.f);
    for (int64_t i = 0; i < nb; i++, a += QK_K / QK8_16) {
        const kq_scale_bytes u = kq_q3_K_unpack_scales(w[i].scales);
        float32x4_t sf[4];
        scales16_s8(vsubq_s8(vld1q_s8((const int8_t *)u.u), vdupq_n_s8(32)), h2f(w[i].d), sf);
        uint8x16_t hm[2] = { ld_u8(w[i].hmask), ld_u8(w[i].hmask + 16) };
        for (int h = 0; h < 2; h++) {
            uint8x16_t qs[2] = { ld_u8(w[i].qs + 32 * h), ld_u8(w[i].qs + 32 * h + 16) };
            int8x16_t q[4][2];
            for (int t = 0; t < 4; t++) {
                for (int e = 0; e < 2; e++) {
                    const uint8x16_t v = vorrq_u8(vandq_u8(qs[e], m3), vandq_u8(vshlq_n_u8(hm[e], 2), b2));
                    q[t][e] = vsubq_s8(as_s8(v), off);
                    qs[e] = vshrq_n_u8(qs[e], 2);
                    hm[e] = vshrq_n_u8(hm[e], 1);
                }
            }
            k16_half(q, a + 4 * h, sf + 2 * h, NULL, &acc, NULL);
        }
    }
    *s = vaddvq_f32(acc);
}

/* Q2_K: q in 0..3 laid out as Q3_K's low bits; scales[g] = sc | m << 4, alpha = d * sc,
 * beta = -dmin * m. */
static void vec_dot_q2_K(int64_t n, float *s, const void *vw, const void *va) {
    const block_q2_K *w = vw;
    const block_q8_16 *a = va;
    const int64_t nb = n / QK_K;
    const uint8x16_t m3 = vdupq_n_u8(0x03), m4 = vdupq_n_u8(0x0F);
    float32x4_t acc = vdupq_n_f32(0.f), accm = acc;
    for (int64_t i = 0; i < nb; i++, a += QK_K / QK8_16) {
        const uint8x16_t packed = ld_u8(w[i].scales);
        float32x4_t sf[4], mf[4];
        scales16_s8(as_s8(vandq_u8(packed, m4)), h2f(w[i].d), sf);
        scales16_s8(as_s8(vshrq_n_u8(packed, 4)), -h2f(w[i].dmin), mf);
        for (int h = 0; h < 2; h++) {
            uint8x16_t qs[2] = { ld_u8(w[i].qs + 32 * h), ld_u8(w[i].qs + 32 * h + 16) };
            int8x16_t q[4][2];
            for (int t = 0; t < 4; t++) {
                for (int e = 0; e < 2; e++) {
                    q[t][e] = as_s8(vandq_u8(qs[e], m3));
                    qs[e] = vshrq_n_u8(qs[e], 2);
                }
            }
            k16_half(q, a + 4 * h, sf + 2 * h, mf + 2 * h, &acc, &accm);
        }
    }
    *s = vaddvq_f32(vaddq_f32(acc, accm));
}

/* ---- the quantizer ----------------------------------------------------------------------------- */

/*
 * Per group of 16, exactly the reference's steps: amax = max |x| ignoring NaN (vmaxnm returns the
 * number when one operand is NaN; starting from +0 also turns an all-NaN lane into 0), d = amax /
 * 127, id = 1 / d or 0; then v = x * id clamped to [-127, 127] by vmax / vmin, which keep NaN, and
 * FCVTAS (vcvtaq_s32_f32) rounds to nearest with ties away from zero (roundf) and converts NaN to
 * 0.  s = d * (float)sum(q) as in the reference.
 */
static void quantize_q8_16(const float *x, void *vy, int64_t n) {
    block_q8_16 *y = vy;
    const int64_t nb = n / QK8_16;
    const float32x4_t lo = vdupq_n_f32(-127.f), hi = vdupq_n_f32(127.f);
    for (int64_t i = 0; i < nb; i++, x += QK8_16) {
        int16x8_t q16[4];
        for (int g = 0; g < 2; g++) {
            float32x4_t v[4];
            float32x4_t m = vdupq_n_f32(0.f);
            for (int k = 0; k < 4; k++) {
                v[k] = vld1q_f32(x + 16 * g + 4 * k);
                m = vmaxnmq_f32(m, vabsq_f32(v[k]));
            }
            const float amax = vmaxnmvq_f32(m);
            const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
            int32x4_t q[4];
            for (int k = 0; k < 4; k++) q[k] = vcvtaq_s32_f32(vminq_f32(vmaxq_f32(vmulq_n_f32(v[k], id), lo), hi));
            const int sum = vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])));
            y[i].d[g] = d;
            y[i].s[g] = d * (float)sum;
            q16[2 * g] = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
            q16[2 * g + 1] = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
        }
        vst1q_s8(y[i].qs, vcombine_s8(vmovn_s16(q16[0]), vmovn_s16(q16[1])));
        vst1q_s8(y[i].qs + 16, vcombine_s8(vmovn_s16(q16[2]), vmovn_s16(q16[3])));
    }
}

/* ---- the tables -------------------------------------------------------------------------------- */

const kern_vec_dot_fn kern_q8_16_dot_neon[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_Q4_0] = vec_dot_q4_0, [GGUF_TYPE_Q4_1] = vec_dot_q4_1, [GGUF_TYPE_Q5_0] = vec_dot_q5_0,
    [GGUF_TYPE_Q5_1] = vec_dot_q5_1, [GGUF_TYPE_Q8_0] = vec_dot_q8_0, [GGUF_TYPE_Q2_K] = vec_dot_q2_K,
    [GGUF_TYPE_Q3_K] = vec_dot_q3_K, [GGUF_TYPE_Q4_K] = vec_dot_q4_K, [GGUF_TYPE_Q5_K] = vec_dot_q5_K,
    [GGUF_TYPE_Q6_K] = vec_dot_q6_K,
};

const kern_from_float_fn kern_q8_16_quantize_neon = quantize_q8_16;
