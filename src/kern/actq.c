/*
 * actq.c - scalar reference of the Q8_16 activation format (actq.h): quantizer, dequantizer,
 * and the dot product of each quantized weight type with a Q8_16 row.
 *
 * What it is: plain portable C that defines what the fast versions (actq_avx2.c) must compute.
 * The dot products follow the formula in actq_impl.h: every weight block is first unpacked into
 * one small integer q per weight plus, per group of 16, a scale alpha and an offset beta
 * (w = alpha * q + beta); then each group contributes alpha * d * (integer sum of q * qs) +
 * beta * s.  The unpacking restates the layouts documented in quants.h, one function per type,
 * so the arithmetic is written once for all types.  Products and the running sum are in double
 * (alpha and beta are exact there), so the reference is the formula's value to double rounding.
 * What it is not: fast.
 *
 * Glossary: n = elements in a row, g = group of 16 elements, l = index inside a group or a
 * 32-byte run, d / dmin / m / sc = scales as in quants.h, a = activation block.
 */
#include <math.h>
#include <string.h>

#include "actq_impl.h"
#include "quants.h"

/* ---- quantizer ------------------------------------------------------------------------------ */

/* roundf(v) clamped to [-127, 127], NaN -> 0. */
static inline int8_t round_q8(float v) {
    if (v != v) return 0;
    if (v > 127.f) v = 127.f;
    if (v < -127.f) v = -127.f;
    return (int8_t)roundf(v);
}

void kern_quantize_q8_16_ref(const float *x, void *vy, int64_t n) {
    block_q8_16 *y = vy;
    for (int64_t i = 0; i < n / QK8_16; i++) {
        for (int g = 0; g < 2; g++) {
            const float *xg = x + QK8_16 * i + 16 * g;
            float amax = 0.f;
            for (int l = 0; l < 16; l++) {
                float v = fabsf(xg[l]);
                if (v > amax) amax = v; /* false for NaN: ignored */
            }
            const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
            int sum = 0;
            for (int l = 0; l < 16; l++) {
                int8_t q = round_q8(xg[l] * id);
                y[i].qs[16 * g + l] = q;
                sum += q;
            }
            y[i].d[g] = d;
            y[i].s[g] = d * (float)sum;
        }
    }
}

void kern_dequantize_q8_16_ref(const void *vx, float *y, int64_t n) {
    const block_q8_16 *x = vx;
    for (int64_t i = 0; i < n / QK8_16; i++)
        for (int l = 0; l < QK8_16; l++) y[QK8_16 * i + l] = x[i].d[l / 16] * (float)x[i].qs[l];
}

/* ---- weights as integers with per-group scale and offset -------------------------------------- */

/* One weight block (32 or 256 weights) as the dot product sees it:
 * w[16g + l] = alpha[g] * q[16g + l] + beta[g]. */
typedef struct {
    int8_t q[QK_K];
    double alpha[QK_K / 16];
    double beta[QK_K / 16];
} wgroups;

/* Legacy blocks: both groups share the block's scale and offset. */
static void set_legacy(wgroups *u, double alpha, double beta) {
    u->alpha[0] = u->alpha[1] = alpha;
    u->beta[0] = u->beta[1] = beta;
}

/* Nibbles of Q4_0/Q4_1/Q5_x: byte l holds weight l (low) and weight l + 16 (high). */
static void nibbles32(const uint8_t qs[16], int off, int8_t q[32]) {
    for (int l = 0; l < 16; l++) {
        q[l] = (int8_t)((qs[l] & 0xF) - off);
        q[l + 16] = (int8_t)((qs[l] >> 4) - off);
    }
}

/* Adds the fifth bits of Q5_0/Q5_1: bit l of qh (little-endian u32) is bit 4 of weight l. */
static void fifth_bits32(const uint8_t qh[4], int8_t q[32]) {
    uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    for (int l = 0; l < 32; l++) q[l] = (int8_t)(q[l] + (int)(((h >> l) & 1) << 4));
}

static void unpack_q4_0(const void *vb, wgroups *u) {
    const block_q4_0 *b = vb;
    nibbles32(b->qs, 8, u->q);
    set_legacy(u, f16_lut(b->d), 0);
}

static void unpack_q4_1(const void *vb, wgroups *u) {
    const block_q4_1 *b = vb;
    nibbles32(b->qs, 0, u->q);
    set_legacy(u, f16_lut(b->d), f16_lut(b->m));
}

static void unpack_q5_0(const void *vb, wgroups *u) {
    const block_q5_0 *b = vb;
    nibbles32(b->qs, 0, u->q);
    fifth_bits32(b->qh, u->q);
    for (int l = 0; l < 32; l++) u->q[l] = (int8_t)(u->q[l] - 16);
    set_legacy(u, f16_lut(b->d), 0);
}

static void unpack_q5_1(const void *vb, wgroups *u) {
    const block_q5_1 *b = vb;
    nibbles32(b->qs, 0, u->q);
    fifth_bits32(b->qh, u->q);
    set_legacy(u, f16_lut(b->d), f16_lut(b->m));
}

static void unpack_q8_0(const void *vb, wgroups *u) {
    const block_q8_0 *b = vb;
    memcpy(u->q, b->qs, 32);
    set_legacy(u, f16_lut(b->d), 0);
}

/* 2-bit fields of Q2_K/Q3_K: in half h (128 weights), byte l of qs[32h..] holds weights
 * 128h + 32k + l in bit pairs 2k..2k+1, k = 0..3. */
static void two_bits256(const uint8_t qs[64], int8_t q[QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) q[128 * h + 32 * k + l] = (int8_t)((qs[32 * h + l] >> (2 * k)) & 3);
}

static void unpack_q2_K(const void *vb, wgroups *u) {
    const block_q2_K *b = vb;
    const double d = f16_lut(b->d), dmin = f16_lut(b->dmin);
    two_bits256(b->qs, u->q);
    for (int g = 0; g < 16; g++) {
        u->alpha[g] = d * (b->scales[g] & 0xF);
        u->beta[g] = -dmin * (b->scales[g] >> 4);
    }
}

static void unpack_q3_K(const void *vb, wgroups *u) {
    const block_q3_K *b = vb;
    const double d = f16_lut(b->d);
    two_bits256(b->qs, u->q);
    /* hmask bit k of byte l is the high bit of weight 32k + l; a clear bit means "minus 4" */
    for (int k = 0; k < 8; k++)
        for (int l = 0; l < 32; l++)
            if (!((b->hmask[l] >> k) & 1)) u->q[32 * k + l] = (int8_t)(u->q[32 * k + l] - 4);
    /* 6-bit scales: low nibble from bytes 0..7 (groups 0..7 low nibble, 8..15 high nibble),
     * top two bits of group g in byte 8 + g % 4 at bit 2 * (g / 4); stored + 32 */
    for (int g = 0; g < 16; g++) {
        int lo = g < 8 ? b->scales[g] & 0xF : b->scales[g - 8] >> 4;
        int hi = (b->scales[8 + g % 4] >> (2 * (g / 4))) & 3;
        u->alpha[g] = d * ((lo | hi << 4) - 32);
        u->beta[g] = 0;
    }
}

/* Q4_K/Q5_K nibbles: chunk c (32 bytes) holds weights 64c + l (low) and 64c + 32 + l (high). */
static void nibbles256(const uint8_t qs[128], int8_t q[QK_K]) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = (int8_t)(qs[32 * c + l] & 0xF);
            q[64 * c + 32 + l] = (int8_t)(qs[32 * c + l] >> 4);
        }
}

/* Scales of Q4_K/Q5_K: sub-block j of 32 weights is groups 2j and 2j + 1. */
static void k4_scales(const uint8_t scales[12], f16_t d16, f16_t dmin16, wgroups *u) {
    const double d = f16_lut(d16), dmin = f16_lut(dmin16);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        kq_get_scale_min_k4(j, scales, &sc, &m);
        u->alpha[2 * j] = u->alpha[2 * j + 1] = d * sc;
        u->beta[2 * j] = u->beta[2 * j + 1] = -dmin * m;
    }
}

static void unpack_q4_K(const void *vb, wgroups *u) {
    const block_q4_K *b = vb;
    nibbles256(b->qs, u->q);
    k4_scales(b->scales, b->d, b->dmin, u);
}

static void unpack_q5_K(const void *vb, wgroups *u) {
    const block_q5_K *b = vb;
    nibbles256(b->qs, u->q);
    /* bit 2c of qh[l]: bit 4 of weight 64c + l; bit 2c + 1: of weight 64c + 32 + l */
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            u->q[64 * c + l] = (int8_t)(u->q[64 * c + l] + (((b->qh[l] >> (2 * c)) & 1) << 4));
            u->q[64 * c + 32 + l] = (int8_t)(u->q[64 * c + 32 + l] + (((b->qh[l] >> (2 * c + 1)) & 1) << 4));
        }
    k4_scales(b->scales, b->d, b->dmin, u);
}

static void unpack_q6_K(const void *vb, wgroups *u) {
    const block_q6_K *b = vb;
    const double d = f16_lut(b->d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        int8_t *q = u->q + 128 * h;
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32);
            q[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32);
            q[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
            q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
        }
    }
    for (int g = 0; g < 16; g++) {
        u->alpha[g] = d * b->scales[g];
        u->beta[g] = 0;
    }
}

/* ---- the dot product ---------------------------------------------------------------------------- */

typedef void (*unpack_fn)(const void *block, wgroups *u);

/* The formula of actq_impl.h over a row: blocks of `blck` weights, `size` bytes each. */
static void dot_rows(int64_t n, float *s, const void *vw, const void *va, int blck, size_t size,
                     unpack_fn unpack) {
    const uint8_t *w = vw;
    const block_q8_16 *a = va;
    const int ngroups = blck / 16;
    wgroups u;
    double sum = 0;
    for (int64_t i = 0; i < n / blck; i++, w += size, a += blck / QK8_16) {
        unpack(w, &u);
        for (int g = 0; g < ngroups; g++) {
            const block_q8_16 *ab = a + g / 2;
            const int h = g & 1;
            int32_t isum = 0; /* |isum| <= 16 * 128 * 127 */
            for (int l = 0; l < 16; l++) isum += u.q[16 * g + l] * ab->qs[16 * h + l];
            sum += u.alpha[g] * ab->d[h] * isum + u.beta[g] * ab->s[h];
        }
    }
    *s = (float)sum;
}

void kern_vec_dot_q4_0_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK4_0, sizeof(block_q4_0), unpack_q4_0);
}
void kern_vec_dot_q4_1_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK4_1, sizeof(block_q4_1), unpack_q4_1);
}
void kern_vec_dot_q5_0_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK5_0, sizeof(block_q5_0), unpack_q5_0);
}
void kern_vec_dot_q5_1_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK5_1, sizeof(block_q5_1), unpack_q5_1);
}
void kern_vec_dot_q8_0_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK8_0, sizeof(block_q8_0), unpack_q8_0);
}
void kern_vec_dot_q2_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK_K, sizeof(block_q2_K), unpack_q2_K);
}
void kern_vec_dot_q3_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK_K, sizeof(block_q3_K), unpack_q3_K);
}
void kern_vec_dot_q4_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK_K, sizeof(block_q4_K), unpack_q4_K);
}
void kern_vec_dot_q5_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK_K, sizeof(block_q5_K), unpack_q5_K);
}
void kern_vec_dot_q6_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a) {
    dot_rows(n, s, w, a, QK_K, sizeof(block_q6_K), unpack_q6_K);
}

const kern_vec_dot_fn kern_q8_16_dot_ref[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_Q4_0] = kern_vec_dot_q4_0_q8_16_ref, [GGUF_TYPE_Q4_1] = kern_vec_dot_q4_1_q8_16_ref,
    [GGUF_TYPE_Q5_0] = kern_vec_dot_q5_0_q8_16_ref, [GGUF_TYPE_Q5_1] = kern_vec_dot_q5_1_q8_16_ref,
    [GGUF_TYPE_Q8_0] = kern_vec_dot_q8_0_q8_16_ref, [GGUF_TYPE_Q2_K] = kern_vec_dot_q2_K_q8_16_ref,
    [GGUF_TYPE_Q3_K] = kern_vec_dot_q3_K_q8_16_ref, [GGUF_TYPE_Q4_K] = kern_vec_dot_q4_K_q8_16_ref,
    [GGUF_TYPE_Q5_K] = kern_vec_dot_q5_K_q8_16_ref, [GGUF_TYPE_Q6_K] = kern_vec_dot_q6_K_q8_16_ref,
};
