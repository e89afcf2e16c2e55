/*
 * gemm_q8_0_avx2.c - AVX2 prompt-processing kernel for Q8_0 weights: 8 weight rows x many Q8_16
 * activation rows (tokens), the Q8_0 row of gemm_avx2.c's table.
 *
 * What it is: the same panel scheme as gemm_avx2.c (KERN_GEMM_ROWS = 8 rows unpacked once, the
 * vector lanes are the rows, every token runs over the panel), but with int16 products instead
 * of maddubs.  Q8_0's weights are signed bytes (-128..127 in a hostile file) and the activations
 * signed too, so maddubs (unsigned x signed) needs the sign trick |w| * (a * sign(w)): a sign op
 * per multiply, and maddubs, madd and sign all compete for the same two vector-multiply ports
 * (measured on Zen3: sign + madd pairs run at half the rate of shift + madd pairs).  Here both
 * operands are sign-extended to int16 and one madd per 16 products does multiply, pair sum and
 * widening at once: 8 multiply-port ops per group and token instead of 12.
 *
 *   panel, per weight block i (32 elements, 288 bytes, 32-byte aligned):
 *     8 x 32 bytes  vector j: low 16 bytes = rows 0..7's element pair (2j, 2j + 1) of group 0
 *                   (elements 32i + 2j, 32i + 2j + 1) as bytes 2r, 2r + 1; high 16 bytes the same
 *                   for group 1 (elements 32i + 16 + 2j, + 1)
 *     8 floats      d of rows 0..7 (alpha; Q8_0 has no offset)
 *   9 bytes per element and row set (kern_gemm_q8_0_panel_bytes_avx2).
 *
 *   gemm, per token t and block i: the activation block's 32 bytes are sign-extended to int16
 *   into a small stack buffer one block ahead of use (a wide store read back at once by narrow
 *   loads cannot be forwarded and stalls: measured 20% slower); then per group h and pair j,
 *     lane r += madd(sign-extended panel half h of vector j, broadcast of the pair's two int16)
 *   = w[r][2j] * a[2j] + w[r][2j + 1] * a[2j + 1], and per block
 *     acc_t[r] += alpha[r] * (d_0 * float(lane sum of group 0) + d_1 * float(lane sum of group 1)).
 *   Four tokens share every panel load; acc_t's 8 lanes are y[t][r0 .. r0 + 7].
 *
 * Exactness: |w| <= 128, |a| <= 127 (the activation quantizer never makes -128), so a product is
 * at most 16256, a madd pair sum at most 32512 (madd saturates nothing: its int32 lanes only
 * overflow for two -32768 * -32768 products) and a group's lane sum at most 16 * 16256 = 260096
 * < 2^24: the int32 sums and their float conversion are exact.  The float sums run in a
 * different order than the reference's (tests/test_actq.c allows 1e-5 of sum |terms|).
 *
 * What it is not: the driver (matmul.c) or the other types' kernels (gemm_avx2.c).
 * Compiled with -mavx2 -mfma -mf16c -mbmi2; called only after dispatch.c saw those features.
 */
#include <immintrin.h>
#include <string.h>

#include "actq_impl.h"
#include "quants.h"
#include "simd_avx2.h"

#define PAIR_BYTES 256                /* the 8 vectors of element pairs of one block */
#define BLOCK_BYTES (PAIR_BYTES + 32) /* and the 8 row scales */
static_assert(QK8_0 == QK8_16 && KERN_GEMM_ROWS == 8, "one activation block per weight block, one lane per row");

uint64_t kern_gemm_q8_0_panel_bytes_avx2(int64_t k) { return (uint64_t)k / QK8_0 * BLOCK_BYTES; }

/*
 * Rows w, w + row_bytes, ... (nr <= 8; missing rows are zeros) -> the panel of the file comment.
 * Per block the 8 rows' 32 bytes are transposed as an 8 x 16 matrix of 16-bit pairs, each
 * 128-bit lane (group) on its own: pair j of every row becomes vector j.
 */
void kern_gemm_q8_0_pack_avx2(int64_t k, const void *vw, uint64_t row_bytes, int nr, void *vpanel) {
    const uint8_t *w = vw;
    uint8_t *panel = vpanel;
    for (int64_t i = 0; i < k / QK8_0; i++) {
        uint8_t *pb = panel + (uint64_t)i * BLOCK_BYTES;
        float *alpha = (float *)(pb + PAIR_BYTES);
        __m256i x[8], t[8], u[8];
        for (int r = 0; r < 8; r++) {
            if (r < nr) {
                const block_q8_0 *b = (const block_q8_0 *)(w + (uint64_t)r * row_bytes) + i;
                x[r] = load256(b->qs);
                alpha[r] = f16f(b->d);
            } else {
                x[r] = _mm256_setzero_si256();
                alpha[r] = 0.f;
            }
        }
        for (int r = 0; r < 8; r += 2) {
            t[r] = _mm256_unpacklo_epi16(x[r], x[r + 1]);     /* pairs 0..3 of rows r, r + 1 interleaved */
            t[r + 1] = _mm256_unpackhi_epi16(x[r], x[r + 1]); /* pairs 4..7 */
        }
        for (int r = 0; r < 8; r += 4) {
            u[r] = _mm256_unpacklo_epi32(t[r], t[r + 2]);         /* pairs 0, 1 of rows r .. r + 3 */
            u[r + 1] = _mm256_unpackhi_epi32(t[r], t[r + 2]);     /* pairs 2, 3 */
            u[r + 2] = _mm256_unpacklo_epi32(t[r + 1], t[r + 3]); /* pairs 4, 5 */
            u[r + 3] = _mm256_unpackhi_epi32(t[r + 1], t[r + 3]); /* pairs 6, 7 */
        }
        for (int c = 0; c < 4; c++) {
            _mm256_store_si256((__m256i *)(pb + 64 * c), _mm256_unpacklo_epi64(u[c], u[c + 4]));      /* pair 2c */
            _mm256_store_si256((__m256i *)(pb + 64 * c + 32), _mm256_unpackhi_epi64(u[c], u[c + 4])); /* 2c + 1 */
        }
    }
}

/* The int16 pair at p (two activation values) in every 32-bit lane. */
static inline __m256i bcast_pair(const int16_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* One activation block as 32 int16 (the stack buffer of the file comment). */
static inline void widen_block(const block_q8_16 *a, int16_t *out) {
    _mm256_store_si256((__m256i *)out, _mm256_cvtepi8_epi16(load128(a->qs)));
    _mm256_store_si256((__m256i *)(out + 16), _mm256_cvtepi8_epi16(load128(a->qs + 16)));
}

/* Lane r = sum over the group's 8 pairs of w[r][pair] . a[pair]: vector j of the block's panel,
 * half h, against the widened activation group aw. */
static inline __m256i pair_dot(const uint8_t *pb, int h, int j, const int16_t *aw) {
    const __m256i wv = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(pb + 32 * j + 16 * h)));
    return _mm256_madd_epi16(wv, bcast_pair(aw + 2 * j));
}

/* nt = 4 or 1 (a constant after inlining) tokens a_t = act + t * a_row_bytes over the panel;
 * y[t * ldy + r] for r < nr.  The loops over t are unrolled so that the per-token arrays stay
 * in registers. */
static inline __attribute__((always_inline)) void gemm_tokens(int nt, int64_t k, const uint8_t *panel, int nr,
                                                              const uint8_t *act, uint64_t a_row_bytes, float *y,
                                                              int64_t ldy) {
    const block_q8_16 *a[4];
    __m256 acc[4];
    _Alignas(32) int16_t wide[2][4][QK8_16]; /* [block parity][token]: block b + 1 is widened during b */
    _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
        a[t] = (const block_q8_16 *)(act + (uint64_t)t * a_row_bytes);
        acc[t] = _mm256_setzero_ps();
        widen_block(&a[t][0], wide[0][t]);
    }
    const int64_t nb = k / QK8_0;
    for (int64_t b = 0; b < nb; b++, panel += BLOCK_BYTES) {
        if (b + 1 < nb) {
            _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) widen_block(&a[t][b + 1], wide[(b + 1) & 1][t]);
        }
        const int16_t(*aw)[QK8_16] = wide[b & 1];
        __m256 f[4]; /* d_0 * group 0 sum + d_1 * group 1 sum, per token */
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            __m256i s[4];
            _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) s[t] = _mm256_setzero_si256();
            _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
                _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++)
                    s[t] = _mm256_add_epi32(s[t], pair_dot(panel, h, j, aw[t] + 16 * h));
            }
            _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
                const __m256 sf = _mm256_cvtepi32_ps(s[t]), d = _mm256_broadcast_ss(&a[t][b].d[h]);
                f[t] = h == 0 ? _mm256_mul_ps(sf, d) : _mm256_fmadd_ps(sf, d, f[t]);
            }
        }
        const __m256 alpha = _mm256_load_ps((const float *)(panel + PAIR_BYTES));
        _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) acc[t] = _mm256_fmadd_ps(f[t], alpha, acc[t]);
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) store_lanes(y + t * ldy, acc[t], nr);
}

/* All nt tokens: four at a time, then the rest one by one. */
void kern_gemm_q8_0_avx2(int64_t k, const void *vpanel, int nr, const void *vact, uint64_t a_row_bytes, int64_t nt,
                         float *y, int64_t ldy) {
    const uint8_t *panel = vpanel, *act = vact;
    int64_t t = 0;
    for (; t + 4 <= nt; t += 4) gemm_tokens(4, k, panel, nr, act + (uint64_t)t * a_row_bytes, a_row_bytes, y + t * ldy, ldy);
    for (; t < nt; t++) gemm_tokens(1, k, panel, nr, act + (uint64_t)t * a_row_bytes, a_row_bytes, y + t * ldy, ldy);
}
