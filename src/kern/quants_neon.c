/*
 * quants_neon.c - NEON kernels for arm64: float dot products (F32, F16, BF16), the KV cache ops
 * (axpy and dot_f32 of F32, F16, Q8_0), llama.cpp-activation dot products of the common weight
 * types, and the activation quantizers Q8_0, Q8_1, Q8_K.
 *
 * What it is: the arm64 fast path of kern_isa_ops(KERN_ISA_NEON, ...), baseline ARMv8.0-A
 * AdvSIMD (no dot-product extension), compiled only for aarch64 targets.  Each function computes
 * the same value as its scalar reference in quants_ref.c: integer parts exactly, only the order
 * of the float additions differs (and multiply-adds are fused).  The quantizers produce blocks
 * bit-identical to the reference's.  seek's default Q8_16 activations have their own file,
 * actq_neon.c.
 * What it is not: a place for matrix logic (matmul.c) or for types nobody runs hot (Q2_K and
 * Q3_K against Q8_K stay on the reference).
 *
 * Integer dots use mul16 (simd_neon.h): 16 signed bytes x 16 signed bytes -> 8 int16 lanes of
 * two products each, widened pairwise to int32 (vpaddlq / vpadalq), then scaled in float.
 *
 * Glossary: nb = blocks in the row, d = combined float scale, y = activation block(s),
 * sumi = int32 partial sums of a block or super-block.
 */
#include <arm_neon.h>
#include <string.h>

#include "kern.h"
#include "quants.h"
#include "simd_neon.h"

/* ---- float types ------------------------------------------------------------------- */

/* Loaders for the float weight types: 4 weights from index i as floats, or one weight. */
typedef float32x4_t (*load4_fn)(const void *x, int64_t i);
typedef float (*load1_fn)(const void *x, int64_t i);

static inline float32x4_t ld4_f32(const void *x, int64_t i) { return vld1q_f32((const float *)x + i); }
static inline float ld1_f32(const void *x, int64_t i) { return ((const float *)x)[i]; }
static inline float32x4_t ld4_f16(const void *x, int64_t i) { return load_f16x4((const f16_t *)x + i); }
static inline float ld1_f16(const void *x, int64_t i) { return h2f(((const f16_t *)x)[i]); }
static inline float32x4_t ld4_bf16(const void *x, int64_t i) { return load_bf16x4((const bf16_t *)x + i); }
static inline float ld1_bf16(const void *x, int64_t i) { return bf16_to_f32(((const bf16_t *)x)[i]); }

/* dot(x, y) over n elements with four independent accumulators, 16 per step, then 4, then a
 * scalar tail; x's element type is given by its loaders, which inline to plain code. */
static inline __attribute__((always_inline)) float dot_float_row(int64_t n, const void *x, const float *y,
                                                                  load4_fn ld4, load1_fn ld1) {
    float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, ld4(x, i), vld1q_f32(y + i));
        a1 = vfmaq_f32(a1, ld4(x, i + 4), vld1q_f32(y + i + 4));
        a2 = vfmaq_f32(a2, ld4(x, i + 8), vld1q_f32(y + i + 8));
        a3 = vfmaq_f32(a3, ld4(x, i + 12), vld1q_f32(y + i + 12));
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, ld4(x, i), vld1q_f32(y + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) sum += ld1(x, i) * y[i]; /* scalar tail */
    return sum;
}

static void vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_float_row(n, vx, vy, ld4_f32, ld1_f32);
}

static void vec_dot_f16_f32(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_float_row(n, vx, vy, ld4_f16, ld1_f16);
}

static void vec_dot_bf16_f32(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_float_row(n, vx, vy, ld4_bf16, ld1_bf16);
}

static void to_float_f16(const void *vx, float *y, int64_t n) {
    const f16_t *x = vx;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, load_f16x4(x + i));
    for (; i < n; i++) y[i] = h2f(x[i]);
}

static void to_float_bf16(const void *vx, float *y, int64_t n) {
    const bf16_t *x = vx;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, load_bf16x4(x + i));
    for (; i < n; i++) y[i] = bf16_to_f32(x[i]);
}

/* ---- KV cache ops ------------------------------------------------------------------ */

/* y += a * x for the KV cache types: the attention's weighted sum over cached V rows. */
static void axpy_f32(int64_t n, float *y, float a, const void *vx) {
    const float *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
        vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4), vld1q_f32(x + i + 4), a));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

static void axpy_f16(int64_t n, float *y, float a, const void *vx) {
    const f16_t *x = vx;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), load_f16x4(x + i), a));
    for (; i < n; i++) y[i] += a * h2f(x[i]);
}

/* The 16 int8 at p as four float vectors (exact). */
static inline void s8x16_to_f32(const int8_t *p, float32x4_t f[4]) {
    const int8x16_t q = vld1q_s8(p);
    const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
    f[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
    f[1] = vcvtq_f32_s32(vmovl_high_s16(lo));
    f[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
    f[3] = vcvtq_f32_s32(vmovl_high_s16(hi));
}

/* Q8_0 row: y += (a * d) * q per block, as the reference scales it. */
static void axpy_q8_0(int64_t n, float *y, float a, const void *vx) {
    const block_q8_0 *x = vx;
    for (int64_t b = 0; b < n / QK8_0; b++, y += QK8_0) {
        const float ad = a * h2f(x[b].d);
        for (int h = 0; h < 2; h++) {
            float32x4_t q[4];
            s8x16_to_f32(x[b].qs + 16 * h, q);
            for (int k = 0; k < 4; k++) {
                float *yk = y + 16 * h + 4 * k;
                vst1q_f32(yk, vfmaq_n_f32(vld1q_f32(yk), q[k], ad));
            }
        }
    }
}

/* dot of a Q8_0 row with floats (the query against a Q8_0 K cache): per block d * sum(q * y). */
static void dot_q8_0_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = vx;
    const float *y = vy;
    float32x4_t acc = vdupq_n_f32(0.f);
    for (int64_t b = 0; b < n / QK8_0; b++, y += QK8_0) {
        float32x4_t p0 = vdupq_n_f32(0.f), p1 = p0;
        for (int h = 0; h < 2; h++) {
            float32x4_t q[4];
            s8x16_to_f32(x[b].qs + 16 * h, q);
            p0 = vfmaq_f32(p0, q[0], vld1q_f32(y + 16 * h));
            p1 = vfmaq_f32(p1, q[1], vld1q_f32(y + 16 * h + 4));
            p0 = vfmaq_f32(p0, q[2], vld1q_f32(y + 16 * h + 8));
            p1 = vfmaq_f32(p1, q[3], vld1q_f32(y + 16 * h + 12));
        }
        acc = vfmaq_n_f32(acc, vaddq_f32(p0, p1), h2f(x[b].d));
    }
    *s = vaddvq_f32(acc);
}

/* ---- legacy 32-weight blocks against Q8_0 / Q8_1 ------------------------------------- */

/*
 * dot = sum over blocks of dx * dy * sum(q * y) (+ m * y.s for the types with a minimum, whose
 * activations are Q8_1: y.s = dy * sum(y)).  Q8_0 and Q8_1 blocks both start with d and end with
 * the 32 qs; Q8_1 has s between.  The unpackers are in simd_neon.h.
 */
static inline __attribute__((always_inline)) void dot_legacy_q8(int64_t n, float *s, const void *vx, size_t xsize,
                                                                const void *vy, size_t ysize, unpack32_fn unpack,
                                                                int has_min) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / 32;
    float32x4_t acc0 = vdupq_n_f32(0.f), acc1 = acc0;
    float summ = 0.f;
    for (int64_t i = 0; i < nb; i++, x += xsize, y += ysize) {
        int8x16_t q0, q1;
        float32x2_t dm;
        unpack(x, &q0, &q1, &dm);
        const int8_t *yq = (const int8_t *)(y + ysize - 32);
        const int32x4_t p = vpadalq_s16(vpaddlq_s16(mul16(q0, vld1q_s8(yq))), mul16(q1, vld1q_s8(yq + 16)));
        const float32x2_t dys = has_min ? h2f_pair(y) : vdup_n_f32(h2f(*(const f16_t *)y)); /* [d, s] or [d, d] */
        const float d = vget_lane_f32(dm, 0) * vget_lane_f32(dys, 0);
        /* two chains hide the FMA latency */
        if (i & 1) acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p), d);
        else acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p), d);
        if (has_min) summ += vget_lane_f32(dm, 1) * vget_lane_f32(dys, 1);
    }
    *s = vaddvq_f32(vaddq_f32(acc0, acc1)) + summ;
}

static void vec_dot_q4_0_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    dot_legacy_q8(n, s, vx, sizeof(block_q4_0), vy, sizeof(block_q8_0), unpack_q4_0, 0);
}
static void vec_dot_q4_1_q8_1(int64_t n, float *s, const void *vx, const void *vy) {
    dot_legacy_q8(n, s, vx, sizeof(block_q4_1), vy, sizeof(block_q8_1), unpack_q4_1, 1);
}
static void vec_dot_q5_0_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    dot_legacy_q8(n, s, vx, sizeof(block_q5_0), vy, sizeof(block_q8_0), unpack_q5_0, 0);
}
static void vec_dot_q5_1_q8_1(int64_t n, float *s, const void *vx, const void *vy) {
    dot_legacy_q8(n, s, vx, sizeof(block_q5_1), vy, sizeof(block_q8_1), unpack_q5_1, 1);
}
static void vec_dot_q8_0_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    dot_legacy_q8(n, s, vx, sizeof(block_q8_0), vy, sizeof(block_q8_0), unpack_q8_0, 0);
}

/* ---- K types against Q8_K ----------------------------------------------------------- */

/* Integer dot of 32 weight bytes (q0 | q1) with 32 activation bytes at y, as 4 int32 partials. */
static inline int32x4_t dot32(int8x16_t q0, int8x16_t q1, const int8_t *y) {
    return vpadalq_s16(vpaddlq_s16(mul16(q0, vld1q_s8(y))), mul16(q1, vld1q_s8(y + 16)));
}

/* The 6-bit scales and mins of Q4_K/Q5_K (layout in quants.h) as bytes: sm[0..7] = sc_0..7,
 * sm[8..15] = m_0..7; the 12 bytes are read as three little-endian u32 a0 a1 a2. */
static inline void k4_scales_u8(const uint8_t *scales, uint8_t sm[16]) {
    const kq_scale_bytes u = kq_k4_unpack_scales(scales);
    memcpy(sm, u.u, 16);
}

/* sum_j m_j * (bsums[2j] + bsums[2j+1]): the minimum terms of the 8 sub-blocks of 32. */
static inline int32_t mins_dot_bsums8(const uint8_t *m, const int16_t *bsums) {
    const int16x8_t pairs = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8)); /* |.| <= 2 * 16 * 128 */
    const int16x8_t m16 = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m)));
    return vaddvq_s32(vmlal_high_s16(vmull_s16(vget_low_s16(m16), vget_low_s16(pairs)), m16, pairs));
}

/*
 * Q4_K: x = d*sc_j*q - dmin*m_j over sub-blocks j of 32, so per super-block
 *   dot = yd*d * sum_j sc_j * sum(q*y) - yd*dmin * sum_j m_j * (sum of y over sub-block j),
 * the last sums being Q8_K's bsums.  Chunk c of qs (32 bytes) holds sub-block 2c in its low
 * nibbles and 2c+1 in its high nibbles.
 */
static void vec_dot_q4_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float32x4_t acc = vdupq_n_f32(0.f);
    float acc_m = 0.f;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t sm[16];
        k4_scales_u8(x[i].scales, sm);
        acc_m += y[i].d * h2f(x[i].dmin) * (float)mins_dot_bsums8(sm + 8, y[i].bsums);
        int32x4_t sumi = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            const uint8x16_t b0 = ld_u8(x[i].qs + 32 * c), b1 = ld_u8(x[i].qs + 32 * c + 16);
            const int8_t *q8 = y[i].qs + 64 * c;
            sumi = vmlaq_n_s32(sumi, dot32(as_s8(vandq_u8(b0, m4)), as_s8(vandq_u8(b1, m4)), q8), sm[2 * c]);
            sumi = vmlaq_n_s32(sumi, dot32(as_s8(vshrq_n_u8(b0, 4)), as_s8(vshrq_n_u8(b1, 4)), q8 + 32), sm[2 * c + 1]);
        }
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sumi), y[i].d * h2f(x[i].d));
    }
    *s = vaddvq_f32(acc) - acc_m;
}

/* Q5_K: Q4_K plus a fifth bit: bit 2c of qh[l] -> weight 64c+l, bit 2c+1 -> 64c+32+l; h0 / h1
 * (qh bytes 0..15 / 16..31) are shifted right by 2 per chunk. */
static void vec_dot_q5_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    float32x4_t acc = vdupq_n_f32(0.f);
    float acc_m = 0.f;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t sm[16];
        k4_scales_u8(x[i].scales, sm);
        acc_m += y[i].d * h2f(x[i].dmin) * (float)mins_dot_bsums8(sm + 8, y[i].bsums);
        uint8x16_t h0 = ld_u8(x[i].qh), h1 = ld_u8(x[i].qh + 16);
        int32x4_t sumi = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            const int8_t *q8 = y[i].qs + 64 * c;
            uint8x16_t lo[2], hi[2];
            unpack_q5_K_chunk(x[i].qs + 32 * c, &h0, &h1, lo, hi);
            sumi = vmlaq_n_s32(sumi, dot32(as_s8(lo[0]), as_s8(lo[1]), q8), sm[2 * c]);
            sumi = vmlaq_n_s32(sumi, dot32(as_s8(hi[0]), as_s8(hi[1]), q8 + 32), sm[2 * c + 1]);
        }
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sumi), y[i].d * h2f(x[i].d));
    }
    *s = vaddvq_f32(acc) - acc_m;
}

/*
 * Q6_K: x = d * sc_g * (q - 32) over sub-blocks g of 16, q in 0..63 (layout in quants.h); the
 * -32 is subtracted from the bytes (-32..31), so no bsums are needed.  Chunk k (32 weights) is
 * sub-blocks 2k and 2k+1; in half h, chunks 4h..4h+3 are ql0 low, ql1 low, ql0 high, ql1 high
 * with qh bit pairs 0-1, 2-3, 4-5, 6-7.
 */
static void vec_dot_q6_K_q8_K(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    float32x4_t acc = vdupq_n_f32(0.f);
    for (int64_t i = 0; i < nb; i++) {
        const int8_t *sc = x[i].scales;
        int32x4_t sumi = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            int8x16_t q[4][2]; /* [chunk 4h + j][16-byte half] */
            unpack_q6_K_half(x[i].ql, x[i].qh, h, q);
            for (int j = 0; j < 4; j++) {
                const int k = 4 * h + j;
                const int8_t *q8 = y[i].qs + 32 * k;
                sumi = vmlaq_n_s32(sumi, vpaddlq_s16(mul16(q[j][0], vld1q_s8(q8))), sc[2 * k]);
                sumi = vmlaq_n_s32(sumi, vpaddlq_s16(mul16(q[j][1], vld1q_s8(q8 + 16))), sc[2 * k + 1]);
            }
        }
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sumi), y[i].d * h2f(x[i].d));
    }
    *s = vaddvq_f32(acc);
}

/* ---- activation quantizers --------------------------------------------------------- */

/* max |x| over 32 floats, NaN ignored (vmaxnm prefers the number; the +0 start also clears a
 * lane that only saw NaN), as the reference's fmaxf loop. */
static inline float amax32(const float *x) {
    float32x4_t m = vdupq_n_f32(0.f);
    for (int j = 0; j < 32; j += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + j)));
    return vmaxnmvq_f32(m);
}

/* Quantizes 32 floats with multiplier id into qs: q = roundf(x * id) clamped to +-127, NaN -> 0
 * (vmax / vmin keep NaN, and FCVTAS rounds ties away from zero and converts NaN to 0); returns
 * sum(q). */
static inline int quantize32(const float *x, float id, int8_t *qs) {
    const float32x4_t lo = vdupq_n_f32(-127.f), hi = vdupq_n_f32(127.f);
    int32x4_t q[8];
    for (int k = 0; k < 8; k++)
        q[k] = vcvtaq_s32_f32(vminq_f32(vmaxq_f32(vmulq_n_f32(vld1q_f32(x + 4 * k), id), lo), hi));
    int32x4_t sum = vdupq_n_s32(0);
    for (int k = 0; k < 8; k++) sum = vaddq_s32(sum, q[k]);
    for (int h = 0; h < 2; h++) {
        const int16x8_t a = vcombine_s16(vmovn_s32(q[4 * h]), vmovn_s32(q[4 * h + 1]));
        const int16x8_t b = vcombine_s16(vmovn_s32(q[4 * h + 2]), vmovn_s32(q[4 * h + 3]));
        vst1q_s8(qs + 16 * h, vcombine_s8(vmovn_s16(a), vmovn_s16(b)));
    }
    return vaddvq_s32(sum);
}

/* Q8_0: d = max|x| / 127, q = round(x / d). */
static void from_float_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float d = amax32(x) / 127.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = f32_to_f16(d);
        quantize32(x, id, y[i].qs);
    }
}

/* Q8_1: as Q8_0 plus s = d * sum(q). */
static void from_float_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float d = amax32(x) / 127.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        const int sum = quantize32(x, id, y[i].qs);
        y[i].d = f32_to_f16(d);
        y[i].s = f32_to_f16((float)sum * d);
    }
}

/* Q8_K: the element of largest magnitude (the first one on ties) maps to -127, so
 * iscale = -127 / max, q = round(iscale * x) (ties to even: FCVTNS) clamped to -128..127, NaN ->
 * 0, d = 1 / iscale; plus the sums of q over each group of 16 (bsums). */
static void from_float_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    const float32x4_t lo = vdupq_n_f32(-128.f), hi = vdupq_n_f32(127.f);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float32x4_t am = vdupq_n_f32(0.f);
        for (int j = 0; j < QK_K; j += 4) am = vmaxnmq_f32(am, vabsq_f32(vld1q_f32(x + j)));
        const float amax = vmaxnmvq_f32(am);
        if (amax == 0.f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the signed value: the first element whose magnitude equals amax */
        float max = amax;
        for (int j = 0; j < QK_K; j++) {
            if (__builtin_fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        }
        const float iscale = -127.f / max;
        for (int g = 0; g < QK_K / 16; g++) {
            int32x4_t q[4];
            for (int k = 0; k < 4; k++)
                q[k] = vcvtnq_s32_f32(vminq_f32(vmaxq_f32(vmulq_n_f32(vld1q_f32(x + 16 * g + 4 * k), iscale), lo), hi));
            const int16x8_t a = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
            const int16x8_t b = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
            vst1q_s8(y[i].qs + 16 * g, vcombine_s8(vmovn_s16(a), vmovn_s16(b)));
            y[i].bsums[g] = (int16_t)vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])));
        }
        y[i].d = 1.f / iscale;
    }
}

/* ---- the table --------------------------------------------------------------------- */

static const kern_ops ops_f32 = { .vec_dot = vec_dot_f32, .axpy = axpy_f32, .dot_f32 = vec_dot_f32 };
static const kern_ops ops_f16 = { .vec_dot = vec_dot_f16_f32, .to_float = to_float_f16, .axpy = axpy_f16,
                                  .dot_f32 = vec_dot_f16_f32 };
static const kern_ops ops_bf16 = { .vec_dot = vec_dot_bf16_f32, .to_float = to_float_bf16 };
static const kern_ops ops_q4_0 = { .vec_dot = vec_dot_q4_0_q8_0 };
static const kern_ops ops_q4_1 = { .vec_dot = vec_dot_q4_1_q8_1 };
static const kern_ops ops_q5_0 = { .vec_dot = vec_dot_q5_0_q8_0 };
static const kern_ops ops_q5_1 = { .vec_dot = vec_dot_q5_1_q8_1 };
static const kern_ops ops_q8_0 = { .vec_dot = vec_dot_q8_0_q8_0, .from_float = from_float_q8_0, .axpy = axpy_q8_0,
                                   .dot_f32 = dot_q8_0_f32 };
static const kern_ops ops_q8_1 = { .from_float = from_float_q8_1 };
static const kern_ops ops_q4_K = { .vec_dot = vec_dot_q4_K_q8_K };
static const kern_ops ops_q5_K = { .vec_dot = vec_dot_q5_K_q8_K };
static const kern_ops ops_q6_K = { .vec_dot = vec_dot_q6_K_q8_K };
static const kern_ops ops_q8_K = { .from_float = from_float_q8_K };

const kern_ops *const kern_ops_neon[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_F32] = &ops_f32,   [GGUF_TYPE_F16] = &ops_f16,   [GGUF_TYPE_BF16] = &ops_bf16,
    [GGUF_TYPE_Q4_0] = &ops_q4_0, [GGUF_TYPE_Q4_1] = &ops_q4_1, [GGUF_TYPE_Q5_0] = &ops_q5_0,
    [GGUF_TYPE_Q5_1] = &ops_q5_1, [GGUF_TYPE_Q8_0] = &ops_q8_0, [GGUF_TYPE_Q8_1] = &ops_q8_1,
    [GGUF_TYPE_Q4_K] = &ops_q4_K, [GGUF_TYPE_Q5_K] = &ops_q5_K, [GGUF_TYPE_Q6_K] = &ops_q6_K,
    [GGUF_TYPE_Q8_K] = &ops_q8_K,
};
