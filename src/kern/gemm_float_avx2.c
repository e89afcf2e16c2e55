/*
 * gemm_float_avx2.c - AVX2 prompt-processing kernels for float weights (F32, F16, BF16): 8 weight
 * rows x many float activation rows (tokens).
 *
 * What it is: the batched half of the matmul for float weights (kern.h's kern_gemm_ops; the
 * activations are the float rows themselves, vec_dot_type F32).  The 1x1 dot (quants_avx2.c)
 * loads and converts each weight once per token and ends every dot with a horizontal sum; here
 * pack converts KERN_GEMM_ROWS = 8 rows once into f32, transposed so that the vector lanes are the
 * rows, and gemm runs every token over that panel:
 *
 *   panel (32 * k bytes, 32-byte aligned): for each element l < k, 8 floats
 *       panel[8 l + r] = w[r][l]   (rows nr..7 are zero)
 *
 *   gemm, per tile of up to TILE tokens t (one ymm accumulator each, kept in registers):
 *       acc_t += panel[8 l .. 8 l + 7] * broadcast(x_t[l])     for l = 0 .. k-1
 *   and lane r of acc_t is y[t][r].  One panel load serves TILE tokens and every FMA does 8
 *   useful multiply-adds; there is no horizontal sum.
 *
 * Register budget (16 ymm): TILE = 12 accumulators, the panel vector and the broadcasts.  Twelve
 * independent accumulation chains cover the FMA latency (4 cycles x 2 FMA units = 8 in flight)
 * with room to spare, and the 13 loads per 12 FMAs stay below Zen3's 3 loads per cycle.
 *
 * Each (row, token) result is one sequential sum over l in float: the same whatever the tile
 * size, the token's position in the call or nr, so a token's result never depends on the other
 * tokens that share the call.  It differs from the 1x1 dot's (32 partial sums) by the rounding of
 * the order; tests allow (k + 1) * 2^-24 of the sum of |terms| (tests/test_actq.c).
 *
 * What it is not: the matmul driver (matmul.c) or a decode kernel: for one token the 1x1 dot
 * reads each weight once and is memory bound; packing would only add work.
 * Compiled with -mavx2 -mfma -mf16c -mbmi2; called only after dispatch.c saw those features.
 */
#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "kern.h"
#include "simd_avx2.h"

static_assert(KERN_GEMM_ROWS == 8, "one ymm lane per row");

#define TILE 12 /* tokens per micro-kernel pass; gemm_float's switch covers the remainders 1..11 */
static_assert(TILE == 12, "remainder switch");

/* Bytes of one panel: 8 floats per element of a row. */
static uint64_t float_panel_bytes(int64_t k) { return (uint64_t)k * KERN_GEMM_ROWS * sizeof(float); }

/* ---- pack: 8 rows -> transposed f32 panel --------------------------------------------------- */

/* Loaders of one weight type: 8 elements from index i as floats, or one element. */
typedef __m256 (*load8_fn)(const void *row, int64_t i);
typedef float (*load1_fn)(const void *row, int64_t i);

static inline __m256 ld8_f32(const void *row, int64_t i) { return _mm256_loadu_ps((const float *)row + i); }
static inline float ld1_f32(const void *row, int64_t i) { return ((const float *)row)[i]; }
static inline __m256 ld8_f16(const void *row, int64_t i) { return _mm256_cvtph_ps(load128((const f16_t *)row + i)); }
static inline float ld1_f16(const void *row, int64_t i) { return f16f(((const f16_t *)row)[i]); }
/* bfloat16 is the top half of a float: widen to 32 bits and shift left by 16. */
static inline __m256 ld8_bf16(const void *row, int64_t i) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128((const bf16_t *)row + i)), 16));
}
static inline float ld1_bf16(const void *row, int64_t i) { return bf16_to_f32(((const bf16_t *)row)[i]); }

/* v[r] holds elements l..l+7 of row r; stores element l + c of rows 0..7 at out + 8 c. */
static inline void transpose8_store(const __m256 v[8], float *out) {
    /* pairs of rows interleaved: a01 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5], ... */
    const __m256 a01 = _mm256_unpacklo_ps(v[0], v[1]), b01 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 a23 = _mm256_unpacklo_ps(v[2], v[3]), b23 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 a45 = _mm256_unpacklo_ps(v[4], v[5]), b45 = _mm256_unpackhi_ps(v[4], v[5]);
    const __m256 a67 = _mm256_unpacklo_ps(v[6], v[7]), b67 = _mm256_unpackhi_ps(v[6], v[7]);
    /* quads: e0 = rows 0..3 of elements 0 | 4, e1 = of elements 1 | 5, ... */
    const __m256 e0 = _mm256_shuffle_ps(a01, a23, 0x44), e1 = _mm256_shuffle_ps(a01, a23, 0xee);
    const __m256 e2 = _mm256_shuffle_ps(b01, b23, 0x44), e3 = _mm256_shuffle_ps(b01, b23, 0xee);
    const __m256 f0 = _mm256_shuffle_ps(a45, a67, 0x44), f1 = _mm256_shuffle_ps(a45, a67, 0xee);
    const __m256 f2 = _mm256_shuffle_ps(b45, b67, 0x44), f3 = _mm256_shuffle_ps(b45, b67, 0xee);
    /* low halves are elements 0..3, high halves 4..7: join rows 0..3 with rows 4..7 */
    _mm256_store_ps(out + 0, _mm256_permute2f128_ps(e0, f0, 0x20));
    _mm256_store_ps(out + 8, _mm256_permute2f128_ps(e1, f1, 0x20));
    _mm256_store_ps(out + 16, _mm256_permute2f128_ps(e2, f2, 0x20));
    _mm256_store_ps(out + 24, _mm256_permute2f128_ps(e3, f3, 0x20));
    _mm256_store_ps(out + 32, _mm256_permute2f128_ps(e0, f0, 0x31));
    _mm256_store_ps(out + 40, _mm256_permute2f128_ps(e1, f1, 0x31));
    _mm256_store_ps(out + 48, _mm256_permute2f128_ps(e2, f2, 0x31));
    _mm256_store_ps(out + 56, _mm256_permute2f128_ps(e3, f3, 0x31));
}

static inline __attribute__((always_inline)) void pack_rows(int64_t k, const void *w, uint64_t row_bytes, int nr,
                                                            float *panel, load8_fn ld8, load1_fn ld1) {
    const uint8_t *rows = w;
    int64_t l = 0;
    for (; l + 8 <= k; l += 8) {
        __m256 v[KERN_GEMM_ROWS];
        for (int r = 0; r < KERN_GEMM_ROWS; r++)
            v[r] = r < nr ? ld8(rows + (uint64_t)r * row_bytes, l) : _mm256_setzero_ps();
        transpose8_store(v, panel + 8 * l);
    }
    for (; l < k; l++) /* scalar tail: k % 8 elements */
        for (int r = 0; r < KERN_GEMM_ROWS; r++)
            panel[8 * l + r] = r < nr ? ld1(rows + (uint64_t)r * row_bytes, l) : 0.f;
}

static void pack_f32(int64_t k, const void *w, uint64_t row_bytes, int nr, void *panel) {
    pack_rows(k, w, row_bytes, nr, panel, ld8_f32, ld1_f32);
}
static void pack_f16(int64_t k, const void *w, uint64_t row_bytes, int nr, void *panel) {
    pack_rows(k, w, row_bytes, nr, panel, ld8_f16, ld1_f16);
}
static void pack_bf16(int64_t k, const void *w, uint64_t row_bytes, int nr, void *panel) {
    pack_rows(k, w, row_bytes, nr, panel, ld8_bf16, ld1_bf16);
}

/* ---- gemm: tiles of tokens over the panel --------------------------------------------------- */

/* acc[t] += w * x_t[e] for t < nt, w the 8 rows of one panel element; token t = 4 g + j is read
 * at quad[g] + j * stride bytes, which x86 encodes as base + index * scale (j = 0, 1, 2) or as
 * one more register (j = 3), so three moving pointers serve twelve tokens. */
static inline __attribute__((always_inline)) void tile_step(int nt, __m256 *acc, const float *w_panel,
                                                            const char *const *quad, int e, int64_t stride) {
    const __m256 w = _mm256_load_ps(w_panel);
#pragma GCC unroll 16
    for (int t = 0; t < nt; t++) {
        const char *q = quad[t / 4] + e * sizeof(float);
        const int j = t % 4;
        const float *xt = (const float *)(j == 3 ? q + 3 * stride : q + j * stride);
        acc[t] = _mm256_fmadd_ps(w, _mm256_broadcast_ss(xt), acc[t]);
    }
}

/* nt (1..TILE, a constant after inlining) tokens x_t = x + t * ldx over the whole panel; writes
 * y[t * ldy + r] for r < nr.  The loops over t are fully unrolled so that acc[] becomes
 * registers; nothing spills to the stack in the inner loop. */
static inline __attribute__((always_inline)) void gemm_tile(int nt, int64_t k, const float *panel, int nr,
                                                            const float *x, int64_t ldx, float *y, int64_t ldy) {
    __m256 acc[TILE];
#pragma GCC unroll 16
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    const int64_t stride = ldx * (int64_t)sizeof(float);
    const char *quad[(TILE + 3) / 4];
#pragma GCC unroll 4
    for (int g = 0; g < (nt + 3) / 4; g++) quad[g] = (const char *)(x + 4 * g * ldx);
    int64_t l = 0;
    for (; l + 2 <= k; l += 2, panel += 16) { /* hot loop: two elements per pass */
        tile_step(nt, acc, panel, quad, 0, stride);
        tile_step(nt, acc, panel + 8, quad, 1, stride);
#pragma GCC unroll 4
        for (int g = 0; g < (nt + 3) / 4; g++) quad[g] += 2 * sizeof(float);
    }
    if (l < k) tile_step(nt, acc, panel, quad, 0, stride);
#pragma GCC unroll 16
    for (int t = 0; t < nt; t++) store_lanes(y + t * ldy, acc[t], nr);
}

/* All nt tokens: TILE at a time, then one smaller tile for the rest; each case of the switch is
 * gemm_tile compiled for its own constant nt.  a_row_bytes is a multiple of 4 (rows of floats). */
static void gemm_float(int64_t k, const void *vpanel, int nr, const void *act, uint64_t a_row_bytes, int64_t nt,
                       float *y, int64_t ldy) {
    const float *panel = vpanel, *x = act;
    const int64_t ldx = (int64_t)(a_row_bytes / sizeof(float));
    int64_t t = 0;
    for (; t + TILE <= nt; t += TILE) gemm_tile(TILE, k, panel, nr, x + t * ldx, ldx, y + t * ldy, ldy);
    x += t * ldx;
    y += t * ldy;
    switch (nt - t) {
    case 0: break;
    case 1: gemm_tile(1, k, panel, nr, x, ldx, y, ldy); break;
    case 2: gemm_tile(2, k, panel, nr, x, ldx, y, ldy); break;
    case 3: gemm_tile(3, k, panel, nr, x, ldx, y, ldy); break;
    case 4: gemm_tile(4, k, panel, nr, x, ldx, y, ldy); break;
    case 5: gemm_tile(5, k, panel, nr, x, ldx, y, ldy); break;
    case 6: gemm_tile(6, k, panel, nr, x, ldx, y, ldy); break;
    case 7: gemm_tile(7, k, panel, nr, x, ldx, y, ldy); break;
    case 8: gemm_tile(8, k, panel, nr, x, ldx, y, ldy); break;
    case 9: gemm_tile(9, k, panel, nr, x, ldx, y, ldy); break;
    case 10: gemm_tile(10, k, panel, nr, x, ldx, y, ldy); break;
    default: gemm_tile(11, k, panel, nr, x, ldx, y, ldy); break;
    }
}

/* ---- the table ----------------------------------------------------------------------------- */

const kern_gemm_ops kern_float_gemm_avx2[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_F32] = { float_panel_bytes, pack_f32, gemm_float },
    [GGUF_TYPE_F16] = { float_panel_bytes, pack_f16, gemm_float },
    [GGUF_TYPE_BF16] = { float_panel_bytes, pack_bf16, gemm_float },
};
