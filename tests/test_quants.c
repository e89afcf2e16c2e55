/*
 * test_quants.c - tests of the scalar reference traits (src/kern/quants_ref.c).
 *
 * 1. Bit layouts: hand-built blocks with known values, plus random blocks dequantized by an
 *    independent per-weight restatement of the layout comments in quants.h (written here from
 *    the comments, not from the implementation).
 * 2. Round trips: every type quantizes random gaussian rows, a row with a large outlier, an
 *    all-zero row and constant rows; the normalized RMSE sqrt(sum (x - x')^2 / sum x^2) must be
 *    below a per-type bound, and quantizing twice must give the same bytes.
 * 3. vec_dot of every weight type against its activation type equals the double-precision dot
 *    product of the dequantized rows, for 1, 3 and 8 blocks.
 * 4. Files made by llama.cpp (shared fixtures, skipped if absent): the same model quantized to
 *    Q8_0, Q6_K and Q4_K_M must dequantize to nearly the same weights, tensor by tensor.  A
 *    wrong reading of any of these layouts would make them disagree completely.  The fixtures
 *    are read with a tiny parser in this file so this test does not depend on src/gguf.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testutil.h"
#include "kern/kern.h"
#include "kern/quants.h"

/* ---- random numbers (splitmix64, Box-Muller) -------------------------------------------- */


static void fill_gauss(float *x, int64_t n, float sigma) {
    for (int64_t i = 0; i < n; i++) x[i] = sigma * rng_gauss();
}

static f16_t half_of(float f) { return f32_to_f16(f); }

/* ---- helpers ------------------------------------------------------------------------------ */

/* The quantized types under test (all have from_float and to_float). */
static const uint32_t all_types[] = {
    GGUF_TYPE_F32,  GGUF_TYPE_F16,  GGUF_TYPE_BF16, GGUF_TYPE_Q4_0, GGUF_TYPE_Q4_1,
    GGUF_TYPE_Q5_0, GGUF_TYPE_Q5_1, GGUF_TYPE_Q8_0, GGUF_TYPE_Q8_1, GGUF_TYPE_Q2_K,
    GGUF_TYPE_Q3_K, GGUF_TYPE_Q4_K, GGUF_TYPE_Q5_K, GGUF_TYPE_Q6_K, GGUF_TYPE_Q8_K,
};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static size_t row_bytes(const kern_type_traits *t, int64_t n) { return (size_t)(n / t->blck) * t->type_size; }

static double rel_rmse(const float *x, const float *y, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - y[i];
        num += d * d;
        den += (double)x[i] * x[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static bool all_finite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

/* Dequantizes one block of `type` given as raw bytes into out. */
static void deq(uint32_t type, const void *blk, float *out) {
    const kern_type_traits *t = kern_traits(type);
    t->to_float(blk, out, t->blck);
}

/* ---- 1. bit layouts ------------------------------------------------------------------------ */

static void test_traits_table(void) {
    for (size_t k = 0; k < N_TYPES; k++) {
        const kern_type_traits *t = kern_traits(all_types[k]);
        CHECK(t != NULL, "type %u has traits", all_types[k]);
        if (!t) continue;
        CHECK(t->name && t->blck > 0 && t->type_size > 0 && t->to_float && t->from_float,
              "type %u row filled", all_types[k]);
    }
    CHECK(kern_traits(GGUF_TYPE_Q4_0)->type_size == 18 && kern_traits(GGUF_TYPE_Q4_K)->type_size == 144 &&
              kern_traits(GGUF_TYPE_Q6_K)->type_size == 210 && kern_traits(GGUF_TYPE_Q2_K)->blck == 256,
          "block geometry");
    CHECK(kern_traits(GGUF_TYPE_Q8_1)->vec_dot == NULL && kern_traits(GGUF_TYPE_Q8_K)->vec_dot == NULL,
          "activation-only types have no vec_dot");
    CHECK(kern_traits(GGUF_TYPE_Q8_0)->vec_dot_type == GGUF_TYPE_Q8_0 &&
              kern_traits(GGUF_TYPE_Q4_1)->vec_dot_type == GGUF_TYPE_Q8_1 &&
              kern_traits(GGUF_TYPE_Q5_K)->vec_dot_type == GGUF_TYPE_Q8_K &&
              kern_traits(GGUF_TYPE_F16)->vec_dot_type == GGUF_TYPE_F32,
          "vec_dot types");
    CHECK(kern_traits(GGUF_TYPE_IQ2_XXS) == NULL && kern_traits(GGUF_TYPE_I32) == NULL &&
              kern_traits(GGUF_TYPE_COUNT) == NULL && kern_traits(0xFFFFFFFFu) == NULL,
          "unsupported ids give NULL");
}

static void test_layout_legacy(void) {
    float y[32];

    /* Q4_0, d = 1: byte j = nibble j (low) | nibble 15 - j (high) -> weight j = j - 8,
     * weight j + 16 = 7 - j. */
    block_q4_0 b40 = { .d = half_of(1.f) };
    for (int j = 0; j < 16; j++) b40.qs[j] = (uint8_t)(j | (15 - j) << 4);
    deq(GGUF_TYPE_Q4_0, &b40, y);
    int ok = 1;
    for (int j = 0; j < 16; j++) ok &= y[j] == (float)(j - 8) && y[j + 16] == (float)(7 - j);
    CHECK(ok && y[0] == -8.f && y[15] == 7.f && y[16] == 7.f && y[31] == -8.f, "q4_0 nibble order");

    /* Q4_1, d = 0.5, m = -1 */
    block_q4_1 b41 = { .d = half_of(0.5f), .m = half_of(-1.f) };
    memcpy(b41.qs, b40.qs, 16);
    deq(GGUF_TYPE_Q4_1, &b41, y);
    ok = 1;
    for (int j = 0; j < 16; j++) ok &= y[j] == 0.5f * j - 1.f && y[j + 16] == 0.5f * (15 - j) - 1.f;
    CHECK(ok, "q4_1 = d * q + m");

    /* Q5_0: qh = 01 80 00 F0 is the LE u32 0xF0008001, so weights 0, 15, 28..31 get bit 4. */
    block_q5_0 b50 = { .d = half_of(1.f), .qh = { 0x01, 0x80, 0x00, 0xF0 } };
    memcpy(b50.qs, b40.qs, 16);
    deq(GGUF_TYPE_Q5_0, &b50, y);
    CHECK(y[0] == 0.f && y[1] == -15.f && y[15] == 15.f && y[16] == -1.f && y[27] == -12.f && y[28] == 3.f &&
              y[31] == 0.f,
          "q5_0 fifth bit: %g %g %g %g %g %g %g", y[0], y[1], y[15], y[16], y[27], y[28], y[31]);

    block_q5_1 b51 = { .d = half_of(2.f), .m = half_of(1.f), .qh = { 0x01, 0x80, 0x00, 0xF0 } };
    memcpy(b51.qs, b40.qs, 16);
    deq(GGUF_TYPE_Q5_1, &b51, y);
    CHECK(y[0] == 33.f && y[1] == 3.f && y[15] == 63.f && y[16] == 31.f && y[28] == 39.f,
          "q5_1: %g %g %g %g %g", y[0], y[1], y[15], y[16], y[28]);

    block_q8_0 b80 = { .d = half_of(0.25f) };
    for (int j = 0; j < 32; j++) b80.qs[j] = (int8_t)(j * 8 - 128);
    deq(GGUF_TYPE_Q8_0, &b80, y);
    ok = 1;
    for (int j = 0; j < 32; j++) ok &= y[j] == 0.25f * (float)(j * 8 - 128);
    CHECK(ok, "q8_0 = d * q");

    /* Random Q5_0 blocks against the comment's formula. */
    for (int r = 0; r < 20; r++) {
        block_q5_0 b;
        for (size_t k = 0; k < sizeof(b); k++) ((uint8_t *)&b)[k] = (uint8_t)rng_u64();
        b.d = half_of(0.125f);
        uint32_t qh = (uint32_t)b.qh[0] | (uint32_t)b.qh[1] << 8 | (uint32_t)b.qh[2] << 16 | (uint32_t)b.qh[3] << 24;
        deq(GGUF_TYPE_Q5_0, &b, y);
        ok = 1;
        for (int w = 0; w < 32; w++) {
            int nib = w < 16 ? b.qs[w] & 15 : b.qs[w - 16] >> 4;
            int q = nib | (int)((qh >> w) & 1) << 4;
            ok &= y[w] == 0.125f * (float)(q - 16);
        }
        CHECK(ok, "q5_0 random block %d", r);
    }
}

/* Independent per-weight readings of the K layouts, straight from the quants.h comments. */
static int ref_2bit(const uint8_t *qs, int w) { return (qs[32 * (w / 128) + w % 32] >> (2 * ((w % 128) / 32))) & 3; }

static float ref_q2_K(const block_q2_K *b, int w) {
    int s = w / 16;
    return f16_to_f32(b->d) * (float)(b->scales[s] & 15) * (float)ref_2bit(b->qs, w) -
           f16_to_f32(b->dmin) * (float)(b->scales[s] >> 4);
}

static float ref_q3_K(const block_q3_K *b, int w) {
    uint32_t a[3];
    for (int k = 0; k < 3; k++)
        a[k] = (uint32_t)b->scales[4 * k] | (uint32_t)b->scales[4 * k + 1] << 8 |
               (uint32_t)b->scales[4 * k + 2] << 16 | (uint32_t)b->scales[4 * k + 3] << 24;
    const uint32_t km1 = 0x03030303, km2 = 0x0f0f0f0f;
    uint32_t s4[4] = {
        (a[0] & km2) | ((a[2] >> 0 & km1) << 4),
        (a[1] & km2) | ((a[2] >> 2 & km1) << 4),
        (a[0] >> 4 & km2) | ((a[2] >> 4 & km1) << 4),
        (a[1] >> 4 & km2) | ((a[2] >> 6 & km1) << 4),
    };
    int s = w / 16;
    int sc = (int)((s4[s / 4] >> (8 * (s % 4))) & 0xFF) - 32;
    int hbit = (b->hmask[w % 32] >> (w / 32)) & 1;
    int q = ref_2bit(b->qs, w) - (hbit ? 0 : 4);
    return f16_to_f32(b->d) * (float)sc * (float)q;
}

static void ref_scale_min_k4(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static int ref_4bit_k(const uint8_t *qs, int w) {
    int c = w / 64, r = w % 64;
    return r < 32 ? qs[32 * c + r] & 15 : qs[32 * c + r - 32] >> 4;
}

static float ref_q4_K(const block_q4_K *b, int w) {
    int sc, m;
    ref_scale_min_k4(b->scales, w / 32, &sc, &m);
    return f16_to_f32(b->d) * (float)sc * (float)ref_4bit_k(b->qs, w) - f16_to_f32(b->dmin) * (float)m;
}

static float ref_q5_K(const block_q5_K *b, int w) {
    int sc, m;
    ref_scale_min_k4(b->scales, w / 32, &sc, &m);
    int c = w / 64, r = w % 64;
    int bit = r < 32 ? (b->qh[r] >> (2 * c)) & 1 : (b->qh[r - 32] >> (2 * c + 1)) & 1;
    int q = ref_4bit_k(b->qs, w) + 16 * bit;
    return f16_to_f32(b->d) * (float)sc * (float)q - f16_to_f32(b->dmin) * (float)m;
}

static float ref_q6_K(const block_q6_K *b, int w) {
    int half = w / 128, r = w % 128, l = r % 32, k = r / 32;
    const uint8_t *ql = b->ql + 64 * half, *qh = b->qh + 32 * half;
    int lo = k == 0 ? ql[l] & 15 : k == 1 ? ql[l + 32] & 15 : k == 2 ? ql[l] >> 4 : ql[l + 32] >> 4;
    int q = lo | ((qh[l] >> (2 * k)) & 3) << 4;
    return f16_to_f32(b->d) * (float)b->scales[w / 16] * (float)(q - 32);
}

static void random_bytes(void *p, size_t n) {
    for (size_t i = 0; i < n; i++) ((uint8_t *)p)[i] = (uint8_t)rng_u64();
}

static void test_layout_k(void) {
    float y[QK_K];
    int ok;

    /* Q2_K: every sub-block sc = 1, m = 0, d = 1; only byte 33 (second half, l = 1) has bits
     * 6-7 set, which is weight 128 + 96 + 1 = 225 -> 3. */
    block_q2_K b2;
    memset(&b2, 0, sizeof(b2));
    memset(b2.scales, 0x01, sizeof(b2.scales));
    b2.d = half_of(1.f);
    b2.dmin = half_of(1.f);
    b2.qs[33] = 0xC0;
    deq(GGUF_TYPE_Q2_K, &b2, y);
    ok = 1;
    for (int w = 0; w < QK_K; w++) ok &= y[w] == (w == 225 ? 3.f : 0.f);
    CHECK(ok, "q2_K bit-pair order (weight 225)");
    /* sub-block 14 (weights 224..239) gets sc = 2 and m = 5 with dmin = 0.5 */
    b2.scales[14] = 0x52;
    b2.dmin = half_of(0.5f);
    deq(GGUF_TYPE_Q2_K, &b2, y);
    CHECK(y[225] == 3.5f && y[224] == -2.5f && y[239] == -2.5f && y[223] == 0.f && y[240] == 0.f,
          "q2_K scale/min nibbles: %g %g %g", y[225], y[224], y[223]);

    /* Q3_K: all scales 33 (-> +1): low nibble 1 in bytes 0..7, high pairs 2 in bytes 8..11;
     * all hmask bits set (no -4), qs = 0; weight 225 -> 3, and clearing bit 0 of hmask[7]
     * makes weight 7 equal to -4. */
    block_q3_K b3;
    memset(&b3, 0, sizeof(b3));
    memset(b3.scales, 0x11, 8);
    memset(b3.scales + 8, 0xAA, 4);
    memset(b3.hmask, 0xFF, sizeof(b3.hmask));
    b3.d = half_of(1.f);
    b3.qs[33] = 0xC0;
    b3.hmask[7] = 0xFE;
    deq(GGUF_TYPE_Q3_K, &b3, y);
    ok = 1;
    for (int w = 0; w < QK_K; w++) ok &= y[w] == (w == 225 ? 3.f : w == 7 ? -4.f : 0.f);
    CHECK(ok, "q3_K hmask and bit pairs (y[225] = %g, y[7] = %g)", y[225], y[7]);
    /* sub-block 5 scale 25 (-> -7): low nibble 9 in byte 5 (low), high pair 1 in byte 9 bits 2-3;
     * sub-block 13 scale 52 (-> +20): low nibble 4 in byte 5 (high), high pair 3 in byte 9 bits 6-7. */
    b3.scales[5] = 0x49;
    b3.scales[9] = (uint8_t)((0xAA & ~0x0C & ~0xC0) | 1 << 2 | 3 << 6);
    memset(b3.qs, 0x55, sizeof(b3.qs)); /* q = 1 everywhere */
    b3.hmask[7] = 0xFF;
    deq(GGUF_TYPE_Q3_K, &b3, y);
    ok = 1;
    for (int w = 0; w < QK_K; w++) ok &= y[w] == (w / 16 == 5 ? -7.f : w / 16 == 13 ? 20.f : 1.f);
    CHECK(ok, "q3_K 6-bit scale packing (y[80] = %g, y[208] = %g)", y[80], y[208]);

    /* Q4_K: d = dmin = 1; sub-block 1 sc 3 m 2 (bytes 1 and 5), sub-block 5 sc 42 m 23 (low
     * nibbles in byte 9, top bits in bytes 1 and 5 bits 6-7); qs low nibbles 1, high 2.
     * Sub-block 1 = weights 32..63 = high nibbles of chunk 0 -> 3*2-2 = 4; sub-block 5 =
     * weights 160..191 = high nibbles of chunk 2 -> 42*2-23 = 61; all else 0. */
    block_q4_K b4;
    memset(&b4, 0, sizeof(b4));
    b4.d = half_of(1.f);
    b4.dmin = half_of(1.f);
    b4.scales[1] = 0x80 | 3;
    b4.scales[5] = 0x40 | 2;
    b4.scales[9] = 0x7A;
    memset(b4.qs, 0x21, sizeof(b4.qs));
    deq(GGUF_TYPE_Q4_K, &b4, y);
    ok = 1;
    for (int w = 0; w < QK_K; w++) ok &= y[w] == (w / 32 == 1 ? 4.f : w / 32 == 5 ? 61.f : 0.f);
    CHECK(ok, "q4_K scale packing (y[40] = %g, y[170] = %g)", y[40], y[170]);

    /* Q5_K: all sc 1, m 0, d 1, qs 0; qh[3] bits 2 and 5: weight 64*1 + 3 = 67 and
     * 64*2 + 32 + 3 = 163 get 16. */
    block_q5_K b5;
    memset(&b5, 0, sizeof(b5));
    b5.d = half_of(1.f);
    memset(b5.scales, 0x01, 4);
    memset(b5.scales + 8, 0x01, 4);
    b5.qh[3] = 0x24;
    deq(GGUF_TYPE_Q5_K, &b5, y);
    ok = 1;
    for (int w = 0; w < QK_K; w++) ok &= y[w] == (w == 67 || w == 163 ? 16.f : 0.f);
    CHECK(ok, "q5_K high bits (y[67] = %g, y[163] = %g)", y[67], y[163]);

    /* Q6_K: qh = 0xAA and ql = 0 make q = 32 (zero) everywhere; scales[j] = j + 1 except
     * scales[6] = -3.  ql[40] = 0x35: weight 40 (low nibble of ql[l + 32], l = 8) -> 5 * 3,
     * weight 104 (its high nibble) -> 3 * -3.  qh[33] bits 4-5 = 3: second half, l = 1,
     * weight 128 + 64 + 1 = 193 -> q = 48 -> 16 * 13. */
    block_q6_K b6;
    memset(&b6, 0, sizeof(b6));
    memset(b6.qh, 0xAA, sizeof(b6.qh));
    for (int j = 0; j < 16; j++) b6.scales[j] = (int8_t)(j + 1);
    b6.scales[6] = -3;
    b6.d = half_of(1.f);
    b6.ql[40] = 0x35;
    b6.qh[33] = 0xBA;
    deq(GGUF_TYPE_Q6_K, &b6, y);
    ok = 1;
    for (int w = 0; w < QK_K; w++) ok &= y[w] == (w == 40 ? 15.f : w == 104 ? -9.f : w == 193 ? 208.f : 0.f);
    CHECK(ok, "q6_K layout (y[40] = %g, y[104] = %g, y[193] = %g)", y[40], y[104], y[193]);

    /* Q8_K */
    block_q8_K b8;
    memset(&b8, 0, sizeof(b8));
    b8.d = 0.5f;
    for (int w = 0; w < QK_K; w++) b8.qs[w] = (int8_t)(w - 128);
    deq(GGUF_TYPE_Q8_K, &b8, y);
    ok = 1;
    for (int w = 0; w < QK_K; w++) ok &= y[w] == 0.5f * (float)(w - 128);
    CHECK(ok, "q8_K = d * q");

    /* Random blocks against the independent readings (scales kept finite and small). */
    for (int r = 0; r < 20; r++) {
        int e2 = 0, e3 = 0, e4 = 0, e5 = 0, e6 = 0;
        random_bytes(&b2, sizeof(b2));
        b2.d = half_of(0.01f * (float)(r + 1));
        b2.dmin = half_of(0.003f * (float)(r + 1));
        deq(GGUF_TYPE_Q2_K, &b2, y);
        for (int w = 0; w < QK_K; w++) e2 += y[w] != ref_q2_K(&b2, w);
        random_bytes(&b3, sizeof(b3));
        b3.d = half_of(-0.01f * (float)(r + 1));
        deq(GGUF_TYPE_Q3_K, &b3, y);
        for (int w = 0; w < QK_K; w++) e3 += y[w] != ref_q3_K(&b3, w);
        random_bytes(&b4, sizeof(b4));
        b4.d = half_of(0.01f);
        b4.dmin = half_of(0.02f);
        deq(GGUF_TYPE_Q4_K, &b4, y);
        for (int w = 0; w < QK_K; w++) e4 += y[w] != ref_q4_K(&b4, w);
        random_bytes(&b5, sizeof(b5));
        b5.d = half_of(0.01f);
        b5.dmin = half_of(0.02f);
        deq(GGUF_TYPE_Q5_K, &b5, y);
        for (int w = 0; w < QK_K; w++) e5 += y[w] != ref_q5_K(&b5, w);
        random_bytes(&b6, sizeof(b6));
        b6.d = half_of(0.001f);
        deq(GGUF_TYPE_Q6_K, &b6, y);
        for (int w = 0; w < QK_K; w++) e6 += y[w] != ref_q6_K(&b6, w);
        CHECK(e2 + e3 + e4 + e5 + e6 == 0, "random K blocks %d: mismatches q2 %d q3 %d q4 %d q5 %d q6 %d", r, e2,
              e3, e4, e5, e6);
    }
}

/* ---- 2. round trips ------------------------------------------------------------------------- */

typedef struct {
    uint32_t type;
    double gauss;    /* bound on the normalized RMSE of gaussian rows */
    double outlier;  /* ... of a gaussian row with one value at 60 sigma */
    double constant; /* ... of constant rows */
} rmse_bound;

/* The gaussian bounds sit about 3% above what this reference measures (the test prints the
 * values), on purpose: the data and the code are deterministic (and -std=c11 keeps the compiler
 * from contracting a*b+c), and a looser bound would not notice a quantizer that lost its scale
 * search (without it Q6_K measures 3%, Q5_K 6%, Q4_K 10%, Q2_K 9% worse).  The outlier and
 * constant rows have looser bounds.  For scale: the optimal 4- and 8-level quantizers of a
 * gaussian (Lloyd-Max) reach 0.34 and 0.19; per-block scales do better.  Q8 is limited by
 * amax / 127 steps (amax of 32 gaussians is about 2.1 sigma, of 256 about 2.8 sigma). */
static const rmse_bound bounds[] = {
    { GGUF_TYPE_F32, 0.0, 0.0, 0.0 },            { GGUF_TYPE_F16, 0.0003, 0.0003, 0.0004 },
    { GGUF_TYPE_BF16, 0.0021, 0.0021, 0.003 },   { GGUF_TYPE_Q4_0, 0.0900, 0.095, 0.001 },
    { GGUF_TYPE_Q4_1, 0.0815, 0.105, 0.001 },    { GGUF_TYPE_Q5_0, 0.0445, 0.068, 0.001 },
    { GGUF_TYPE_Q5_1, 0.0400, 0.049, 0.001 },    { GGUF_TYPE_Q8_0, 0.0057, 0.0099, 0.001 },
    { GGUF_TYPE_Q8_1, 0.0058, 0.0095, 0.001 },   { GGUF_TYPE_Q2_K, 0.312, 0.310, 0.001 },
    { GGUF_TYPE_Q3_K, 0.157, 0.143, 0.001 },     { GGUF_TYPE_Q4_K, 0.0745, 0.101, 0.001 },
    { GGUF_TYPE_Q5_K, 0.0376, 0.044, 0.001 },    { GGUF_TYPE_Q6_K, 0.0184, 0.0215, 0.001 },
    { GGUF_TYPE_Q8_K, 0.0073, 0.023, 0.001 },
};

#define RT_N 8192 /* elements per test row: 32 super-blocks */

static void test_round_trip(void) {
    float *x = malloc(RT_N * sizeof(float)), *y = malloc(RT_N * sizeof(float));
    uint8_t *q1 = malloc(RT_N * 4), *q2 = malloc(RT_N * 4);
    printf("%-6s %10s %10s %10s %10s %10s\n", "type", "gauss", "outlier", "const+", "const-", "gauss bound");
    for (size_t k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
        const rmse_bound *b = &bounds[k];
        const kern_type_traits *t = kern_traits(b->type);
        size_t nbytes = row_bytes(t, RT_N);
        double worst_gauss = 0, outlier = 0, cpos = 0, cneg = 0;

        /* gaussian rows at several scales */
        const float sigmas[] = { 1.f, 0.02f, 300.f };
        for (int s = 0; s < 3; s++) {
            fill_gauss(x, RT_N, sigmas[s]);
            t->from_float(x, q1, RT_N);
            t->from_float(x, q2, RT_N);
            CHECK(memcmp(q1, q2, nbytes) == 0, "%s: quantization is deterministic", t->name);
            t->to_float(q1, y, RT_N);
            CHECK(all_finite(y, RT_N), "%s: finite output", t->name);
            double e = rel_rmse(x, y, RT_N);
            if (e > worst_gauss) worst_gauss = e;
        }
        CHECK(worst_gauss <= b->gauss, "%s: gaussian rmse %.5f > %.5f", t->name, worst_gauss, b->gauss);

        /* one large outlier: the row as a whole stays within the gaussian bound */
        fill_gauss(x, RT_N, 1.f);
        x[1234] = 60.f;
        t->from_float(x, q1, RT_N);
        t->to_float(q1, y, RT_N);
        outlier = rel_rmse(x, y, RT_N);
        CHECK(outlier <= b->outlier && fabsf(y[1234] - 60.f) < 0.1f * 60.f + 1e-3f,
              "%s: outlier row rmse %.5f, outlier -> %g", t->name, outlier, y[1234]);

        /* zeros stay exactly zero */
        memset(x, 0, RT_N * sizeof(float));
        t->from_float(x, q1, RT_N);
        t->to_float(q1, y, RT_N);
        int nz = 0;
        for (int i = 0; i < RT_N; i++) nz += y[i] != 0.f;
        CHECK(nz == 0, "%s: zero row gives %d non-zeros", t->name, nz);

        /* constant rows */
        for (int i = 0; i < RT_N; i++) x[i] = 0.37f;
        t->from_float(x, q1, RT_N);
        t->to_float(q1, y, RT_N);
        cpos = rel_rmse(x, y, RT_N);
        for (int i = 0; i < RT_N; i++) x[i] = -2.5f;
        t->from_float(x, q1, RT_N);
        t->to_float(q1, y, RT_N);
        cneg = rel_rmse(x, y, RT_N);
        CHECK(cpos <= b->constant && cneg <= b->constant, "%s: constant rows rmse %.5f %.5f > %.5f", t->name,
              cpos, cneg, b->constant);

        printf("%-6s %10.5f %10.5f %10.5f %10.5f %10.5f\n", t->name, worst_gauss, outlier, cpos, cneg, b->gauss);
        fflush(stdout);
    }

    /* Q8_0 of values that are already Q8_0 reproduces the same bytes. */
    const kern_type_traits *t8 = kern_traits(GGUF_TYPE_Q8_0);
    fill_gauss(x, RT_N, 1.f);
    t8->from_float(x, q1, RT_N);
    t8->to_float(q1, y, RT_N);
    t8->from_float(y, q2, RT_N);
    CHECK(memcmp(q1, q2, row_bytes(t8, RT_N)) == 0, "q8_0 re-quantization is the identity");

    free(x);
    free(y);
    free(q1);
    free(q2);
}

/* Q4_0 hand case for the quantizer: the value of largest magnitude maps to q = 0 exactly. */
static void test_quantizer_cases(void) {
    float x[32], y[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j % 8) - 3.f; /* -3..4 */
    x[5] = -8.f;                                                /* largest magnitude, negative */
    block_q4_0 b;
    kern_traits(GGUF_TYPE_Q4_0)->from_float(x, &b, 32);
    kern_traits(GGUF_TYPE_Q4_0)->to_float(&b, y, 32);
    CHECK(f16_to_f32(b.d) == 1.f && (b.qs[5] & 15) == 0, "q4_0: d = max / -8 (d = %g)", f16_to_f32(b.d));
    /* d = -8 / -8 = 1, so the integers -8..4 come back exactly */
    int ok = 1;
    for (int j = 0; j < 32; j++) ok &= y[j] == x[j];
    CHECK(ok, "q4_0 integers reproduce exactly");

    /* Q8_K: the value of largest magnitude becomes -127 * d exactly and bsums add up */
    float xk[QK_K];
    fill_gauss(xk, QK_K, 1.f);
    xk[77] = 9.f;
    block_q8_K bk;
    kern_traits(GGUF_TYPE_Q8_K)->from_float(xk, &bk, QK_K);
    int bs_ok = 1;
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int l = 0; l < 16; l++) s += bk.qs[16 * g + l];
        bs_ok &= s == bk.bsums[g];
    }
    CHECK(bk.qs[77] == -127 && fabsf(bk.d * -127.f - 9.f) < 1e-5f && bs_ok, "q8_K max and bsums");

    /* Q8_1: s = d * sum(q) */
    block_q8_1 b81;
    kern_traits(GGUF_TYPE_Q8_1)->from_float(xk, &b81, 32);
    int sum = 0;
    for (int j = 0; j < 32; j++) sum += b81.qs[j];
    CHECK(fabsf(f16_to_f32(b81.s) - f16_to_f32(b81.d) * (float)sum) <= 1e-3f * (fabsf(f16_to_f32(b81.s)) + 1e-3f),
          "q8_1 s field");
}

/* Non-finite and extreme inputs must not crash or hit undefined conversions (run under UBSan
 * with -fsanitize=float-cast-overflow to see the latter); tiny values give finite output. */
static void test_extreme_inputs(void) {
    enum { N = 2 * QK_K };
    float x[N], y[N];
    uint8_t q[N * 4];
    for (size_t k = 0; k < N_TYPES; k++) {
        const kern_type_traits *t = kern_traits(all_types[k]);
        for (int kind = 0; kind < 5; kind++) {
            fill_gauss(x, N, 1.f);
            if (kind == 0) x[17] = NAN;
            if (kind == 1) x[300] = INFINITY;
            if (kind == 2) x[5] = -INFINITY;
            if (kind == 3)
                for (int i = 0; i < N; i++) x[i] *= 1e30f;
            if (kind == 4)
                for (int i = 0; i < N; i++) x[i] *= 1e-30f;
            t->from_float(x, q, N);
            t->to_float(q, y, N);
            if (kind == 4) {
                int ok = 1;
                for (int i = 0; i < N; i++) ok &= isfinite(y[i]) && fabsf(y[i]) < 1e-20f;
                CHECK(ok, "%s: tiny values stay tiny and finite", t->name);
            }
        }
    }
    CHECK(1, "extreme inputs did not crash");
}

static_assert(offsetof(block_q4_1, m) == offsetof(block_q5_1, m), "m at the same offset");

/* ---- 3. dot products ------------------------------------------------------------------------ */

static void test_vec_dot(void) {
    const uint32_t wtypes[] = { GGUF_TYPE_F32,  GGUF_TYPE_F16,  GGUF_TYPE_BF16, GGUF_TYPE_Q4_0,
                                GGUF_TYPE_Q4_1, GGUF_TYPE_Q5_0, GGUF_TYPE_Q5_1, GGUF_TYPE_Q8_0,
                                GGUF_TYPE_Q2_K, GGUF_TYPE_Q3_K, GGUF_TYPE_Q4_K, GGUF_TYPE_Q5_K,
                                GGUF_TYPE_Q6_K };
    const int nblocks[] = { 1, 3, 8 };
    enum { MAXN = 8 * QK_K };
    float *xw = malloc(MAXN * sizeof(float)), *xa = malloc(MAXN * sizeof(float));
    float *dw = malloc(MAXN * sizeof(float)), *da = malloc(MAXN * sizeof(float));
    uint8_t *qw = malloc(MAXN * 4), *qa = malloc(MAXN * 4);
    for (size_t k = 0; k < sizeof(wtypes) / sizeof(wtypes[0]); k++) {
        const kern_type_traits *tw = kern_traits(wtypes[k]);
        const kern_type_traits *ta = kern_traits(tw->vec_dot_type);
        CHECK(tw->vec_dot != NULL && ta != NULL, "%s has a vec_dot", tw->name);
        if (!tw->vec_dot || !ta) continue;
        int64_t unit = tw->blck > ta->blck ? tw->blck : ta->blck;
        if (unit < 32) unit = 32;
        double worst = 0;
        for (int nbi = 0; nbi < 3; nbi++) {
            for (int rep = 0; rep < 4; rep++) {
                int64_t n = unit * nblocks[nbi];
                fill_gauss(xw, n, 0.05f);
                fill_gauss(xa, n, 2.f);
                if (rep == 1)
                    for (int64_t i = 0; i < n; i++) xw[i] += 0.08f; /* offset: exercises the min terms */
                if (rep == 2)
                    for (int64_t i = 0; i < n; i++) xa[i] = fabsf(xa[i]);
                tw->from_float(xw, qw, n);
                ta->from_float(xa, qa, n);
                tw->to_float(qw, dw, n);
                ta->to_float(qa, da, n);
                double ref = 0, mag = 0;
                for (int64_t i = 0; i < n; i++) {
                    ref += (double)dw[i] * da[i];
                    mag += fabs((double)dw[i] * da[i]);
                }
                /* The Q8_1 s field is stored as f16: allow its rounding on the min term. */
                double slack = 0;
                if (ta == kern_traits(GGUF_TYPE_Q8_1)) {
                    for (int64_t b = 0; b < n / 32; b++) {
                        const uint8_t *blk = qw + (size_t)b * tw->type_size;
                        f16_t m;
                        memcpy(&m, blk + offsetof(block_q4_1, m), sizeof(m));
                        double asum = 0;
                        for (int j = 0; j < 32; j++) asum += fabs(da[32 * b + j]);
                        slack += fabs(f16_to_f32(m)) * asum * (1.0 / 1024);
                    }
                }
                float got = 0;
                tw->vec_dot(n, &got, qw, qa);
                double err = fabs(got - ref);
                double tol = 2e-6 * mag + slack + 1e-30;
                if (mag > 0 && err / mag > worst) worst = err / mag;
                CHECK(err <= tol, "%s x %s, n = %lld: vec_dot %.9g, dequantized dot %.9g (tol %.3g)", tw->name,
                      ta->name, (long long)n, (double)got, ref, tol);
            }
        }
        printf("vec_dot %-5s x %-5s worst |err| / sum|w*a| = %.2e\n", tw->name, ta->name, worst);
    }
    free(xw);
    free(xa);
    free(dw);
    free(da);
    free(qw);
    free(qa);
}

/* ---- 4. llama.cpp-made files ---------------------------------------------------------------- */

/* A minimal GGUF walker: enough to list tensors (name, type, dims, data). */
typedef struct {
    char name[96];
    uint32_t type;
    int64_t ne[4];
    const uint8_t *data;
} fx_tensor;

typedef struct {
    uint8_t *buf;
    size_t len;
    int n;
    fx_tensor t[64];
} fx_file;

typedef struct {
    const uint8_t *p, *end;
    bool ok;
} fx_rd;

static uint64_t fx_u(fx_rd *r, int nbytes) {
    if (!r->ok || r->end - r->p < nbytes) {
        r->ok = false;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += nbytes;
    return v;
}

static void fx_skip(fx_rd *r, uint64_t n) {
    if (!r->ok || (uint64_t)(r->end - r->p) < n) {
        r->ok = false;
        return;
    }
    r->p += n;
}

static const int fx_vsize[] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

static void fx_skip_value(fx_rd *r, uint32_t vt, uint32_t *u32_out) {
    if (vt == 8) {
        fx_skip(r, fx_u(r, 8));
    } else if (vt == 9) {
        uint32_t et = (uint32_t)fx_u(r, 4);
        uint64_t cnt = fx_u(r, 8);
        if (et == 8)
            for (uint64_t i = 0; i < cnt && r->ok; i++) fx_skip(r, fx_u(r, 8));
        else if (et < 13 && fx_vsize[et])
            fx_skip(r, cnt * (uint64_t)fx_vsize[et]);
        else
            r->ok = false;
    } else if (vt < 13 && fx_vsize[vt]) {
        uint64_t v = fx_u(r, fx_vsize[vt]);
        if (u32_out) *u32_out = (uint32_t)v;
    } else {
        r->ok = false;
    }
}

static bool fx_open(const char *path, fx_file *f) {
    memset(f, 0, sizeof(*f));
    f->buf = (uint8_t *)fs_read_all(path, &f->len, NULL);
    if (!f->buf) return false;
    fx_rd r = { f->buf, f->buf + f->len, true };
    if (fx_u(&r, 4) != GGUF_MAGIC || fx_u(&r, 4) != 3) return false;
    uint64_t nt = fx_u(&r, 8), nkv = fx_u(&r, 8);
    uint32_t align = 32;
    for (uint64_t i = 0; i < nkv && r.ok; i++) {
        uint64_t kl = fx_u(&r, 8);
        bool is_align = r.ok && kl == 17 && (uint64_t)(r.end - r.p) >= 17 && memcmp(r.p, "general.alignment", 17) == 0;
        fx_skip(&r, kl);
        uint32_t vt = (uint32_t)fx_u(&r, 4);
        fx_skip_value(&r, vt, is_align ? &align : NULL);
    }
    uint64_t offs[64];
    for (uint64_t i = 0; i < nt && r.ok; i++) {
        if (f->n == 64) return false;
        fx_tensor *t = &f->t[f->n];
        uint64_t nl = fx_u(&r, 8);
        if (nl >= sizeof(t->name) || (uint64_t)(r.end - r.p) < nl) return false;
        memcpy(t->name, r.p, nl);
        fx_skip(&r, nl);
        uint32_t nd = (uint32_t)fx_u(&r, 4);
        if (nd < 1 || nd > 4) return false;
        for (int d = 0; d < 4; d++) t->ne[d] = d < (int)nd ? (int64_t)fx_u(&r, 8) : 1;
        t->type = (uint32_t)fx_u(&r, 4);
        offs[f->n++] = fx_u(&r, 8);
    }
    if (!r.ok || align == 0) return false;
    uint64_t data = ((uint64_t)(r.p - f->buf) + align - 1) / align * align;
    for (int i = 0; i < f->n; i++) {
        fx_tensor *t = &f->t[i];
        const kern_type_traits *tr = kern_traits(t->type);
        uint64_t nel = (uint64_t)t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        if (!tr || t->ne[0] % tr->blck) return false;
        if (data + offs[i] + nel / tr->blck * tr->type_size > f->len) return false;
        t->data = f->buf + data + offs[i];
    }
    return true;
}

static const fx_tensor *fx_find(const fx_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

static float *fx_dequant(const fx_tensor *t) {
    const kern_type_traits *tr = kern_traits(t->type);
    int64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    float *out = malloc((size_t)nel * sizeof(float));
    tr->to_float(t->data, out, nel);
    return out;
}


static void test_fixtures(void) {
    const char *dir = test_fixture_dir();
    if (!dir) {
        printf("fixtures: not found, skipped\n");
        return;
    }
    const char *models[] = { "llama-mini", "qwen2-mini" };
    const char *others[] = { "Q6_K", "Q4_K_M" };
    for (int mi = 0; mi < 2; mi++) {
        char path[600];
        fx_file f8;
        snprintf(path, sizeof(path), "%s/%s-Q8_0.gguf", dir, models[mi]);
        bool ok8 = fx_open(path, &f8);
        CHECK(ok8, "parse %s", path);
        if (!ok8) {
            free(f8.buf);
            continue;
        }
        /* statistics of the Q8_0 weights themselves */
        int n_q8 = 0;
        for (int i = 0; i < f8.n; i++) {
            if (f8.t[i].type != GGUF_TYPE_Q8_0) continue;
            int64_t nel = f8.t[i].ne[0] * f8.t[i].ne[1];
            float *w = fx_dequant(&f8.t[i]);
            double s = 0, s2 = 0;
            for (int64_t j = 0; j < nel; j++) {
                s += w[j];
                s2 += (double)w[j] * w[j];
            }
            double sd = sqrt(s2 / nel - (s / nel) * (s / nel));
            CHECK(all_finite(w, nel) && sd > 1e-4 && sd < 10, "%s %s: std %g", models[mi], f8.t[i].name, sd);
            free(w);
            n_q8++;
        }
        CHECK(n_q8 > 0, "%s: has Q8_0 tensors", models[mi]);

        for (int oi = 0; oi < 2; oi++) {
            fx_file fo;
            snprintf(path, sizeof(path), "%s/%s-%s.gguf", dir, models[mi], others[oi]);
            bool oko = fx_open(path, &fo);
            CHECK(oko, "parse %s", path);
            if (!oko) {
                free(fo.buf);
                continue;
            }
            double worst[GGUF_TYPE_COUNT] = { 0 }, err_ours[GGUF_TYPE_COUNT] = { 0 }, err_theirs[GGUF_TYPE_COUNT] = { 0 };
            int count[GGUF_TYPE_COUNT] = { 0 };
            for (int i = 0; i < fo.n; i++) {
                const fx_tensor *to = &fo.t[i], *t8 = fx_find(&f8, to->name);
                if (!t8 || to->type == GGUF_TYPE_F32 || t8->type != GGUF_TYPE_Q8_0) continue;
                int64_t nel = to->ne[0] * to->ne[1] * to->ne[2] * to->ne[3];
                float *a = fx_dequant(t8), *b = fx_dequant(to);
                double e = rel_rmse(a, b, nel);
                CHECK(all_finite(b, nel), "%s %s finite", path, to->name);
                /* Our quantizer on the Q8_0 file's weights (the best stand-in for the originals
                 * we have) must do as well as llama.cpp did on the originals.  llama.cpp's error
                 * measured this way also contains the Q8_0 noise, sqrt(ours^2 + q8^2) ~ theirs
                 * when the algorithms match. */
                const kern_type_traits *tr = kern_traits(to->type);
                uint8_t *rq = malloc((size_t)(nel / tr->blck) * tr->type_size);
                float *c = malloc((size_t)nel * sizeof(float));
                tr->from_float(a, rq, nel);
                tr->to_float(rq, c, nel);
                err_ours[to->type] += rel_rmse(a, c, nel);
                err_theirs[to->type] += e;
                free(rq);
                free(c);
                if (e > worst[to->type]) worst[to->type] = e;
                count[to->type]++;
                free(a);
                free(b);
            }
            for (uint32_t ty = 0; ty < GGUF_TYPE_COUNT; ty++) {
                if (!count[ty]) continue;
                /* the quantization noise of both files; a misread layout gives ~1 */
                double bound = ty == GGUF_TYPE_Q6_K ? 0.03 : ty == GGUF_TYPE_Q4_K ? 0.12 : 0.2;
                double ours = err_ours[ty] / count[ty], theirs = err_theirs[ty] / count[ty];
                printf("fixtures %s-%s: %d %s tensors, worst rmse vs Q8_0 file %.4f; mean rmse of llama.cpp's "
                       "%.4f, of ours %.4f\n",
                       models[mi], others[oi], count[ty], kern_traits(ty)->name, worst[ty], theirs, ours);
                CHECK(worst[ty] < bound, "%s-%s %s vs Q8_0: %.4f >= %.3f", models[mi], others[oi],
                      kern_traits(ty)->name, worst[ty], bound);
                CHECK(ours <= theirs, "%s-%s %s: our quantizer %.5f worse than llama.cpp's %.5f", models[mi],
                      others[oi], kern_traits(ty)->name, ours, theirs);
            }
            free(fo.buf);
        }
        free(f8.buf);
    }
}

int main(void) {
    rng_state = 0x5EEDu;
    base_init();
    test_traits_table();
    test_layout_legacy();
    test_layout_k();
    test_quantizer_cases();
    test_round_trip();
    test_extreme_inputs();
    test_vec_dot();
    test_fixtures();
    return check_done("test_quants");
}
