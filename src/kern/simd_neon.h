/*
 * simd_neon.h - small NEON building blocks shared by the arm64 kernel files (quants_neon.c,
 * actq_neon.c): f16 conversion, loads of f16/bf16 runs, the int8 x int8 product chain and the
 * reduction of per-group integer sums to one int32 lane per group.
 *
 * Also the unpacking of the legacy 32-weight blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) into signed
 * bytes, which both files' dot products use.
 *
 * What it is: baseline ARMv8.0-A AdvSIMD only (every arm64 CPU has it), no dot-product
 * extension.  Include only from files the Makefile compiles for aarch64 targets.
 *
 * The integer dot of a group of 16 bytes: vmull_s8 on the low 8 and vmlal_high_s8 on the high 8
 * give 8 int16 lanes, lane l = w[l]*y[l] + w[l+8]*y[l+8].  Two products must fit in int16: every
 * caller keeps |w| <= 128 and |y| <= 127 (activation quantizers never write -128 into Q8_0 and
 * Q8_16; Q8_K activations may hold -128, and are only met by weights of magnitude <= 32), so
 * |lane| <= 2 * 128 * 127 = 32512.  Then vpaddlq_s16 widens pairs to int32.
 */
#ifndef SEEK_KERN_SIMD_NEON_H
#define SEEK_KERN_SIMD_NEON_H

#include <arm_neon.h>
#include <string.h>

#include "../base/base.h"
#include "quants.h"

/* One f16 (IEEE half, as stored in GGUF) as a float, by the hardware conversion (exact). */
static inline float h2f(f16_t h) {
    __fp16 v;
    memcpy(&v, &h, sizeof v);
    return (float)v;
}

/* Two consecutive f16 at p (a block's d and m, or d and dmin) as floats in lanes 0 and 1. */
static inline float32x2_t h2f_pair(const void *p) {
    uint32_t u;
    memcpy(&u, p, 4);
    return vget_low_f32(vcvt_f32_f16(vreinterpret_f16_u32(vdup_n_u32(u))));
}

/* 4 f16 -> floats (exact). */
static inline float32x4_t load_f16x4(const f16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

/* bfloat16 is the top half of a float: widen each to 32 bits shifted left by 16. */
static inline float32x4_t load_bf16x4(const bf16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }

/* 16 int8 x 16 int8 -> 8 int16 lanes, lane l = w[l]*y[l] + w[l+8]*y[l+8] (bounds above). */
static inline int16x8_t mul16(int8x16_t w, int8x16_t y) {
    return vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(y)), w, y);
}

/* Four int16 vectors -> [sum p0, sum p1, sum p2, sum p3] in int32 (exact). */
static inline int32x4_t hsum4_s16(int16x8_t p0, int16x8_t p1, int16x8_t p2, int16x8_t p3) {
    const int32x4_t a = vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1));
    const int32x4_t b = vpaddq_s32(vpaddlq_s16(p2), vpaddlq_s16(p3));
    return vpaddq_s32(a, b);
}

/* The 16 bytes at p as signed / unsigned. */
static inline int8x16_t ld_s8(const void *p) { return vld1q_s8((const int8_t *)p); }
static inline uint8x16_t ld_u8(const void *p) { return vld1q_u8((const uint8_t *)p); }

/* Reinterpret unsigned weight bytes (all <= 127 after unpacking) as signed. */
static inline int8x16_t as_s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

/* The 16 nibble bytes of a legacy 32-weight block (Q4_x, Q5_x): weights 0..15 are the low
 * nibbles, 16..31 the high nibbles. */
static inline void nibbles16(const uint8_t *qs, uint8x16_t *lo, uint8x16_t *hi) {
    const uint8x16_t b = ld_u8(qs);
    *lo = vandq_u8(b, vdupq_n_u8(0x0F));
    *hi = vshrq_n_u8(b, 4);
}

/* Q5_0/Q5_1 fifth bits: byte l of (h0 | h1) is 0x10 where bit l of qh (a little-endian u32) is
 * set; h0 covers weights 0..15, h1 weights 16..31. */
static inline void fifth_bits16(const uint8_t *qh, uint8x16_t *h0, uint8x16_t *h1) {
    uint32_t u;
    memcpy(&u, qh, 4);
    const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(u)); /* qh bytes 0 1 2 3 0 1 2 3 */
    const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ULL));
    const uint8x16_t b4 = vdupq_n_u8(0x10);
    /* weight l takes byte l / 8 of qh and tests its bit l % 8 */
    *h0 = vandq_u8(vtstq_u8(vcombine_u8(vdup_lane_u8(b, 0), vdup_lane_u8(b, 1)), bit), b4);
    *h1 = vandq_u8(vtstq_u8(vcombine_u8(vdup_lane_u8(b, 2), vdup_lane_u8(b, 3)), bit), b4);
}

/* ---- legacy 32-weight blocks as signed bytes ----------------------------------------------
 * A legacy block as a dot product sees it: its 32 weight integers as two groups of 16 signed
 * bytes (weights 0..15, 16..31) and its scale and minimum, dm = [d, m] (m = 0 for the types
 * without one).  The integers are q - 8 (Q4_0), q (Q4_1), q - 16 (Q5_0), q (Q5_1), qs (Q8_0).
 * The unpackers inline into the callers' per-type loops. */
typedef void (*unpack32_fn)(const void *blk, int8x16_t *q0, int8x16_t *q1, float32x2_t *dm);

static inline void unpack_q4_0(const void *vb, int8x16_t *q0, int8x16_t *q1, float32x2_t *dm) {
    const block_q4_0 *b = vb;
    uint8x16_t lo, hi;
    nibbles16(b->qs, &lo, &hi);
    *q0 = vsubq_s8(as_s8(lo), vdupq_n_s8(8));
    *q1 = vsubq_s8(as_s8(hi), vdupq_n_s8(8));
    *dm = vset_lane_f32(h2f(b->d), vdup_n_f32(0.f), 0);
}

static inline void unpack_q4_1(const void *vb, int8x16_t *q0, int8x16_t *q1, float32x2_t *dm) {
    const block_q4_1 *b = vb;
    uint8x16_t lo, hi;
    nibbles16(b->qs, &lo, &hi);
    *q0 = as_s8(lo);
    *q1 = as_s8(hi);
    *dm = h2f_pair(&b->d);
}

static inline void unpack_q5_0(const void *vb, int8x16_t *q0, int8x16_t *q1, float32x2_t *dm) {
    const block_q5_0 *b = vb;
    uint8x16_t lo, hi, h0, h1;
    nibbles16(b->qs, &lo, &hi);
    fifth_bits16(b->qh, &h0, &h1);
    *q0 = vsubq_s8(as_s8(vorrq_u8(lo, h0)), vdupq_n_s8(16));
    *q1 = vsubq_s8(as_s8(vorrq_u8(hi, h1)), vdupq_n_s8(16));
    *dm = vset_lane_f32(h2f(b->d), vdup_n_f32(0.f), 0);
}

static inline void unpack_q5_1(const void *vb, int8x16_t *q0, int8x16_t *q1, float32x2_t *dm) {
    const block_q5_1 *b = vb;
    uint8x16_t lo, hi, h0, h1;
    nibbles16(b->qs, &lo, &hi);
    fifth_bits16(b->qh, &h0, &h1);
    *q0 = as_s8(vorrq_u8(lo, h0));
    *q1 = as_s8(vorrq_u8(hi, h1));
    *dm = h2f_pair(&b->d);
}

static inline void unpack_q8_0(const void *vb, int8x16_t *q0, int8x16_t *q1, float32x2_t *dm) {
    const block_q8_0 *b = vb;
    *q0 = ld_s8(b->qs);
    *q1 = ld_s8(b->qs + 16);
    *dm = vset_lane_f32(h2f(b->d), vdup_n_f32(0.f), 0);
}

/* Half h of a Q6_K superblock (ql, qh: the block's arrays) as signed weights q - 32:
 * q[j][e] = 16-byte half e of the 32 weights 128h + 32j .. 128h + 32j + 31 (layout in quants.h). */
static inline void unpack_q6_K_half(const uint8_t *ql, const uint8_t *qh, int h, int8x16_t q[4][2]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
    const int8x16_t off = vdupq_n_s8(32);
    for (int e = 0; e < 2; e++) {
        const uint8x16_t l0 = ld_u8(ql + 64 * h + 16 * e), l1 = ld_u8(ql + 64 * h + 32 + 16 * e);
        const uint8x16_t hb = ld_u8(qh + 32 * h + 16 * e);
        q[0][e] = vsubq_s8(as_s8(vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8(hb, 4), m30))), off);
        q[1][e] = vsubq_s8(as_s8(vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8(hb, 2), m30))), off);
        q[2][e] = vsubq_s8(as_s8(vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, m30))), off);
        q[3][e] = vsubq_s8(as_s8(vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hb, 2), m30))), off);
    }
}

/* Chunk c of a Q5_K superblock (weights 64c .. 64c + 63) as 5-bit integers: qs = the chunk's
 * 32 nibble bytes, *h0 / *h1 = qh bytes 0..15 / 16..31 already shifted right by 2c (and shifted
 * again here for the next chunk).  lo[e] = 16-byte half e of weights 64c .. 64c + 31 (low
 * nibbles, fifth bit = bit 0), hi[e] the same for 64c + 32 .. 64c + 63 (high nibbles, bit 1). */
static inline void unpack_q5_K_chunk(const uint8_t *qs, uint8x16_t *h0, uint8x16_t *h1, uint8x16_t lo[2],
                                     uint8x16_t hi[2]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F), b4 = vdupq_n_u8(0x10);
    const uint8x16_t b0 = ld_u8(qs), b1 = ld_u8(qs + 16);
    lo[0] = vorrq_u8(vandq_u8(b0, m4), vandq_u8(vshlq_n_u8(*h0, 4), b4));
    lo[1] = vorrq_u8(vandq_u8(b1, m4), vandq_u8(vshlq_n_u8(*h1, 4), b4));
    hi[0] = vorrq_u8(vshrq_n_u8(b0, 4), vandq_u8(vshlq_n_u8(*h0, 3), b4));
    hi[1] = vorrq_u8(vshrq_n_u8(b1, 4), vandq_u8(vshlq_n_u8(*h1, 3), b4));
    *h0 = vshrq_n_u8(*h0, 2);
    *h1 = vshrq_n_u8(*h1, 2);
}

#endif
