/*
 * quants.h - block layouts of the quantized tensor types, bit-compatible with the GGUF files
 * that llama.cpp and Ollama distribute.
 *
 * Every type stores a row of weights as consecutive blocks; a row's length must be a multiple
 * of the block's element count.  Notation used in the comments: d = scale, m / dmin = minimum
 * (offset), q = the small integer stored per weight, x = the reconstructed weight.
 *
 * "Legacy" types, 32 weights per block:
 *   Q4_0: x = d * (q - 8),    q in 0..15.  qs[j] holds weight j (low nibble) and j+16 (high).
 *   Q4_1: x = d * q + m,      q in 0..15.  Same nibble order.
 *   Q5_0: x = d * (q - 16),   q in 0..31.  Low 4 bits as Q4_0; bit 4 of weight j is bit j of qh
 *                                          (qh read as a little-endian u32).
 *   Q5_1: x = d * q + m,      q in 0..31.  As Q5_0 for the bits.
 *   Q8_0: x = d * q,          q in -128..127 (quantizers produce -127..127).
 *   Q8_1: as Q8_0 plus s = d * sum(q); used only for activations (dot with Q4_1/Q5_1).
 *
 * "K" types, super-blocks of QK_K = 256 weights split into sub-blocks:
 *   Q2_K: 16 sub-blocks of 16.  scales[i]: low nibble = scale, high nibble = min (4 bits each).
 *         x = d * sc * q - dmin * m, q in 0..3.  qs: 2 bits per weight, in two halves of 128
 *         weights; within a half, byte l (0..31) holds weights l, l+32, l+64, l+96 in bit
 *         pairs 0-1, 2-3, 4-5, 6-7.
 *   Q3_K: 16 sub-blocks of 16, 6-bit signed scales (stored +32 in 12 bytes), x = d * (sc - 32) *
 *         (q - 4 * !hbit), q in 0..3 low bits as Q2_K; hmask bit j of byte l is the high bit of
 *         weight 32*j + l (a set bit means "no -4").
 *   Q4_K: 8 sub-blocks of 32, 6-bit scale and 6-bit min each packed into scales[12].
 *         x = d * sc * q - dmin * m, q in 0..15.  qs: four chunks of 64 weights, 32 bytes each:
 *         low nibbles are the first 32 weights of the chunk, high nibbles the next 32.
 *   Q5_K: as Q4_K with a fifth bit from qh: bit (2*c) of qh[l] is the high bit of weight
 *         64*c + l, bit (2*c+1) of qh[l] that of weight 64*c + 32 + l.
 *   Q6_K: 16 sub-blocks of 16 with int8 scales, x = d * sc * (q - 32), q in 0..63: low 4 bits
 *         in ql, high 2 bits in qh.  Two halves of 128 weights; in a half, for l in 0..31:
 *         weight l     = ql[l]    low  | ((qh[l] >> 0) & 3) << 4
 *         weight l+32  = ql[l+32] low  | ((qh[l] >> 2) & 3) << 4
 *         weight l+64  = ql[l]    high | ((qh[l] >> 4) & 3) << 4
 *         weight l+96  = ql[l+32] high | ((qh[l] >> 6) & 3) << 4
 *   Q8_K: float d, int8 q[256], bsums[16] = sums of q over each group of 16; activations only.
 *
 * The 6-bit scale/min packing of Q4_K and Q5_K (scales[12]) for sub-block j in 0..7:
 *   j < 4:  sc = scales[j] & 63,                           m = scales[j+4] & 63
 *   j >= 4: sc = (scales[j+4] & 15) | ((scales[j-4] >> 6) << 4),
 *           m  = (scales[j+4] >> 4) | ((scales[j]   >> 6) << 4)
 *
 * The Q3_K scale packing (scales[12] -> 16 6-bit values, then minus 32): with the 12 bytes read
 * as three little-endian u32 a0,a1,a2 (kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f):
 *   s[0..3]   = (a0 & kmask2)        | ((a2 >> 0 & kmask1) << 4)
 *   s[4..7]   = (a1 & kmask2)        | ((a2 >> 2 & kmask1) << 4)
 *   s[8..11]  = (a0 >> 4 & kmask2)   | ((a2 >> 4 & kmask1) << 4)
 *   s[12..15] = (a1 >> 4 & kmask2)   | ((a2 >> 6 & kmask1) << 4)
 * (each u32 viewed as 4 bytes gives 4 scales, in byte order).
 */
#ifndef SEEK_KERN_QUANTS_H
#define SEEK_KERN_QUANTS_H

#include <assert.h>
#include <stdint.h>
#include <string.h>
#include "../base/base.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct {
    f16_t d;             /* scale */
    uint8_t qs[QK4_0 / 2]; /* nibbles */
} block_q4_0;
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");

typedef struct {
    f16_t d;               /* scale */
    f16_t m;               /* minimum */
    uint8_t qs[QK4_1 / 2]; /* nibbles */
} block_q4_1;
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");

typedef struct {
    f16_t d;
    uint8_t qh[4];         /* fifth bits */
    uint8_t qs[QK5_0 / 2]; /* low nibbles */
} block_q5_0;
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");

typedef struct {
    f16_t d;
    f16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");

typedef struct {
    f16_t d;
    int8_t qs[QK8_0];
} block_q8_0;
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");

typedef struct {
    f16_t d;
    f16_t s; /* d * sum(qs) */
    int8_t qs[QK8_1];
} block_q8_1;
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");

typedef struct {
    uint8_t scales[QK_K / 16]; /* 4-bit scale | 4-bit min << 4 */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    f16_t d;                   /* super-block scale for scales */
    f16_t dmin;                /* super-block scale for mins */
} block_q2_K;
static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");

typedef struct {
    uint8_t hmask[QK_K / 8]; /* high bit of each quant */
    uint8_t qs[QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];      /* 16 x 6-bit scales */
    f16_t d;
} block_q3_K;
static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");

typedef struct {
    f16_t d;
    f16_t dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min) */
    uint8_t qs[QK_K / 2];
} block_q4_K;
static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");

typedef struct {
    f16_t d;
    f16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");

typedef struct {
    uint8_t ql[QK_K / 2];     /* low 4 bits */
    uint8_t qh[QK_K / 4];     /* high 2 bits */
    int8_t scales[QK_K / 16]; /* 8-bit sub-block scales */
    f16_t d;
} block_q6_K;
static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");

typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;
static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

/* The 6-bit scales and mins of a Q4_K/Q5_K superblock as bytes, four to a u32 (little-endian):
 * u[0] = sc 0..3, u[1] = sc 4..7, u[2] = m 0..3, u[3] = m 4..7, computed on the 12 bytes read as
 * three little-endian u32 a0 a1 a2.  Shared by the SIMD kernels, which load the 16 bytes into a
 * vector (returned by value so that, inlined, it stays in registers). */
typedef struct {
    uint32_t u[4];
} kq_scale_bytes;
static inline kq_scale_bytes kq_k4_unpack_scales(const uint8_t *scales) {
    uint32_t a[3];
    memcpy(a, scales, 12);
    kq_scale_bytes r = { {
        a[0] & 0x3f3f3f3f,                                              /* sc 0..3 */
        (a[2] & 0x0f0f0f0f) | (((a[0] >> 6) & 0x03030303) << 4),        /* sc 4..7 */
        a[1] & 0x3f3f3f3f,                                              /* m 0..3 */
        ((a[2] >> 4) & 0x0f0f0f0f) | (((a[1] >> 6) & 0x03030303) << 4), /* m 4..7 */
    } };
    return r;
}

/* The 16 6-bit scales of a Q3_K superblock as bytes 0..63 (stored + 32), four to a u32: u[0] =
 * scales 0..3, ..., u[3] = 12..15 (layout above); the SIMD kernels subtract 32 in a vector. */
static inline kq_scale_bytes kq_q3_K_unpack_scales(const uint8_t *scales) {
    uint32_t a[3];
    memcpy(a, scales, 12);
    kq_scale_bytes r = { {
        (a[0] & 0x0f0f0f0f) | (((a[2] >> 0) & 0x03030303) << 4),
        (a[1] & 0x0f0f0f0f) | (((a[2] >> 2) & 0x03030303) << 4),
        ((a[0] >> 4) & 0x0f0f0f0f) | (((a[2] >> 4) & 0x03030303) << 4),
        ((a[1] >> 4) & 0x0f0f0f0f) | (((a[2] >> 6) & 0x03030303) << 4),
    } };
    return r;
}

/* Unpacks the 6-bit scale and min of sub-block j of a Q4_K/Q5_K scales[12] array. */
static inline void kq_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
