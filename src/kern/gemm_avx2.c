/*
 * gemm_avx2.c - AVX2 prompt-processing kernels: 8 weight rows x many Q8_16 activation rows
 * (tokens), for every quantized weight type of actq_impl.h whose integers fit in 6 bits; Q8_0's
 * signed bytes have their own kernel (gemm_q8_0_avx2.c), whose pair this file's table lists.
 *
 * What it is: the batched half of the matmul (n >= 2 tokens).  The 1x1 dots of actq_avx2.c
 * unpack each weight block once per token and then reduce each dot horizontally; here a panel of
 * KERN_GEMM_ROWS = 8 weight rows is unpacked once (gemm_pack) into a layout whose vector lanes
 * are the 8 rows, and every token then runs over it (gemm) with no horizontal sums at all:
 *
 *   panel, per group g of 16 elements (192 bytes, 32-byte aligned):
 *     4 x 32 bytes  u: vector c holds, for row r = 0..7, the four weight integers of elements
 *                   16g + 4c .. 16g + 4c + 3 in bytes 4r .. 4r + 3
 *     8 floats      alpha_g of rows 0..7
 *     8 floats      beta_g  of rows 0..7
 *   with w[16g + l] = alpha_g * u[16g + l] + beta_g (actq_impl.h's per-group affine form, the
 *   integer made unsigned by folding any offset into beta: Q6_K's u = q + 32, beta = -32 alpha).
 *
 *   gemm, per token t and group g (activation block g / 2, half g % 2, scale d, sum s):
 *     four maddubs(u vector c, broadcast of activation bytes 4c..4c+3) -> int16 pair sums per
 *     row, added and widened by madd into int32 lane r = sum_l u[r][16g + l] * qs[l] (exact),
 *     then  acc_t[r] += float(lane r) * alpha_g[r] * d + beta_g[r] * s.
 *   Four tokens share every panel load; acc_t's 8 lanes are y[t][r0 .. r0 + 7].
 *
 * int16 bounds of maddubs and of the adds before madd (activations are -127..127, never -128):
 *   u <= 31 (Q4_x, Q5_x, Q2_K, Q3_K, Q4_K, Q5_K): four pair sums 4 * 2 * 31 * 127 = 31496;
 *   u <= 63 (Q6_K): two pair sums, 2 * 2 * 63 * 127 = 32004, then madd each.
 * The float sums run in a different order than the reference's; tests compare to it with the
 * usual 1e-5 of sum |terms| (tests/test_actq.c).
 *
 * What it is not: the matmul driver (matmul.c), or a decode kernel: for one token the 1x1 dot
 * reads each weight byte once and is memory bound already.
 * Compiled with -mavx2 -mfma -mf16c -mbmi2; called only after dispatch.c saw those features.
 */
#include <immintrin.h>
#include <string.h>

#include "actq_impl.h"
#include "quants.h"
#include "simd_avx2.h"

#define GROUP_BYTES 192 /* one group of the panel: 128 weight bytes, 8 alpha, 8 beta */
static_assert(KERN_GEMM_ROWS == 8, "one ymm lane per row");

/* ---- unpacking one weight block of one row ------------------------------------------------ */

/* One weight block (32 or 256 weights) as unsigned integers in element order with the
 * per-group alpha and beta. */
typedef struct {
    _Alignas(32) uint8_t u[QK_K];
    float alpha[QK_K / 16];
    float beta[QK_K / 16];
} ublock;

static inline void store256(void *p, __m256i v) { _mm256_storeu_si256((__m256i *)p, v); }

/* Both groups of a legacy block share d and the offset. */
static inline void legacy_scales(ublock *o, float alpha, float beta) {
    o->alpha[0] = o->alpha[1] = alpha;
    o->beta[0] = o->beta[1] = beta;
}

/* Q5_0/Q5_1 fifth bits: 0x10 in byte l where bit l of qh (little-endian u32) is set. */
static inline __m256i fifth_bits(const uint8_t *qh) {
    return _mm256_and_si256(expand_bits32(qh), _mm256_set1_epi8(0x10));
}

static void unpack_q4_0(const void *vb, ublock *o) {
    const block_q4_0 *b = vb;
    const float d = f16f(b->d);
    store256(o->u, unpack_nibbles16(b->qs));
    legacy_scales(o, d, -8.f * d); /* exact: 8 * an f16 */
}

static void unpack_q4_1(const void *vb, ublock *o) {
    const block_q4_1 *b = vb;
    store256(o->u, unpack_nibbles16(b->qs));
    legacy_scales(o, f16f(b->d), f16f(b->m));
}

static void unpack_q5_0(const void *vb, ublock *o) {
    const block_q5_0 *b = vb;
    const float d = f16f(b->d);
    store256(o->u, _mm256_or_si256(unpack_nibbles16(b->qs), fifth_bits(b->qh)));
    legacy_scales(o, d, -16.f * d);
}

static void unpack_q5_1(const void *vb, ublock *o) {
    const block_q5_1 *b = vb;
    store256(o->u, _mm256_or_si256(unpack_nibbles16(b->qs), fifth_bits(b->qh)));
    legacy_scales(o, f16f(b->d), f16f(b->m));
}

/* Q2_K / Q3_K low bits: in half h, byte l of qs[32h..] holds weight 128h + 32j + l in bits
 * 2j..2j+1.  hm (Q3_K only, else NULL): bit 4h + j of hmask[l] set means "no -4"; the weight
 * integer q' - 4 becomes u = q' = low bits | hbit << 2 with beta = -4 alpha. */
static inline void two_bits(const uint8_t *qs, const uint8_t *hmask, uint8_t *u) {
    const __m256i m3 = _mm256_set1_epi8(0x03), b2 = _mm256_set1_epi8(0x04);
    __m256i hm = hmask ? load256(hmask) : _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        __m256i q = load256(qs + 32 * h);
        for (int j = 0; j < 4; j++) {
            /* 16-bit shifts bring the next byte's bits only into bits that are masked off */
            __m256i v = _mm256_and_si256(q, m3);
            if (hmask) v = _mm256_or_si256(v, _mm256_and_si256(_mm256_slli_epi16(hm, 2), b2));
            store256(u + 128 * h + 32 * j, v);
            q = _mm256_srli_epi16(q, 2);
            hm = _mm256_srli_epi16(hm, 1);
        }
    }
}

static void unpack_q2_K(const void *vb, ublock *o) {
    const block_q2_K *b = vb;
    const float d = f16f(b->d), dmin = f16f(b->dmin);
    two_bits(b->qs, NULL, o->u);
    for (int g = 0; g < 16; g++) {
        o->alpha[g] = d * (float)(b->scales[g] & 0xF);
        o->beta[g] = -dmin * (float)(b->scales[g] >> 4);
    }
}

static void unpack_q3_K(const void *vb, ublock *o) {
    const block_q3_K *b = vb;
    const float d = f16f(b->d);
    two_bits(b->qs, b->hmask, o->u);
    /* 6-bit scales (quants.h): low nibble from bytes 0..7, top two bits of group g in byte
     * 8 + g % 4 at bit 2 * (g / 4); stored + 32 */
    for (int g = 0; g < 16; g++) {
        const int lo = g < 8 ? b->scales[g] & 0xF : b->scales[g - 8] >> 4;
        const int hi = (b->scales[8 + g % 4] >> (2 * (g / 4))) & 3;
        o->alpha[g] = d * (float)((lo | hi << 4) - 32);
        o->beta[g] = -4.f * o->alpha[g];
    }
}

/* Q4_K/Q5_K scales: sub-block j (32 weights) is groups 2j and 2j + 1. */
static inline void k4_group_scales(const uint8_t *scales, f16_t d16, f16_t dmin16, ublock *o) {
    const float d = f16f(d16), dmin = f16f(dmin16);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        kq_get_scale_min_k4(j, scales, &sc, &m);
        o->alpha[2 * j] = o->alpha[2 * j + 1] = d * (float)sc;
        o->beta[2 * j] = o->beta[2 * j + 1] = -dmin * (float)m;
    }
}

/* Q4_K: chunk c of qs holds weights 64c + l (low nibbles) and 64c + 32 + l (high). */
static void unpack_q4_K(const void *vb, ublock *o) {
    const block_q4_K *b = vb;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < 4; c++) {
        const __m256i v = load256(b->qs + 32 * c);
        store256(o->u + 64 * c, _mm256_and_si256(v, m4));
        store256(o->u + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
    }
    k4_group_scales(b->scales, b->d, b->dmin, o);
}

/* Q5_K: Q4_K plus bit 2c of qh[l] for weight 64c + l and bit 2c + 1 for 64c + 32 + l; hb is
 * shifted right by 2 per chunk (16-bit shifts only pollute bits that are masked off). */
static void unpack_q5_K(const void *vb, ublock *o) {
    const block_q5_K *b = vb;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256i hb = load256(b->qh);
    for (int c = 0; c < 4; c++) {
        const __m256i v = load256(b->qs + 32 * c);
        store256(o->u + 64 * c, _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4)));
        store256(o->u + 64 * c + 32, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                                     _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4)));
        hb = _mm256_srli_epi16(hb, 2);
    }
    k4_group_scales(b->scales, b->d, b->dmin, o);
}

/* Q6_K: u = 6-bit value (0..63) in the layout of quants.h, weight d * sc_g * (u - 32). */
static void unpack_q6_K(const void *vb, ublock *o) {
    const block_q6_K *b = vb;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03), m30 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; h++) {
        const __m256i ql0 = load256(b->ql + 64 * h), ql1 = load256(b->ql + 64 * h + 32);
        const __m256i qh = load256(b->qh + 32 * h);
        uint8_t *u = o->u + 128 * h;
        store256(u, _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)));
        store256(u + 32, _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)));
        store256(u + 64, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)));
        store256(u + 96, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)));
    }
    const float d = f16f(b->d);
    for (int g = 0; g < 16; g++) {
        o->alpha[g] = d * (float)b->scales[g]; /* exact: 11-bit f16 mantissa x 8-bit integer */
        o->beta[g] = -32.f * o->alpha[g];
    }
}

/* ---- packing a panel --------------------------------------------------------------------- */

typedef void (*unpack_fn)(const void *block, ublock *o);

/*
 * Packs rows w, w + row_bytes, ... (nr <= 8 of them; missing rows are zeros) into the panel
 * layout of the file comment.  Per 32-element chunk the 8 rows' byte vectors are transposed as
 * an 8 x 8 matrix of dwords: dword v of every row (elements 4v..4v+3) becomes the panel's
 * vector c = v % 4 of group 2 * chunk + v / 4.
 */
static inline void pack_rows(int64_t k, const void *vw, uint64_t row_bytes, int nr, void *vpanel, int blck,
                             size_t bsize, unpack_fn unpack) {
    const uint8_t *w = vw;
    uint8_t *panel = vpanel;
    ublock tmp[KERN_GEMM_ROWS];
    for (int r = nr; r < KERN_GEMM_ROWS; r++) memset(&tmp[r], 0, sizeof tmp[r]);
    const int ng = blck / 16;
    for (int64_t i = 0; i < k / blck; i++) {
        for (int r = 0; r < nr; r++) unpack(w + (uint64_t)r * row_bytes + (uint64_t)i * bsize, &tmp[r]);
        uint8_t *pg = panel + (uint64_t)i * ng * GROUP_BYTES; /* first group of this block */
        for (int j = 0; j < blck / 32; j++) {
            __m256i x[8], t[8], s[8];
            for (int r = 0; r < 8; r++) x[r] = _mm256_load_si256((const __m256i *)(tmp[r].u + 32 * j));
            for (int r = 0; r < 8; r += 2) {
                t[r] = _mm256_unpacklo_epi32(x[r], x[r + 1]);     /* r0 r1 r0 r1 | ... dwords 0,1 / 4,5 */
                t[r + 1] = _mm256_unpackhi_epi32(x[r], x[r + 1]); /* dwords 2,3 / 6,7 */
            }
            for (int r = 0; r < 8; r += 4) {
                s[r] = _mm256_unpacklo_epi64(t[r], t[r + 2]);         /* dword 0 of rows r..r+3 | dword 4 */
                s[r + 1] = _mm256_unpackhi_epi64(t[r], t[r + 2]);     /* dword 1 | 5 */
                s[r + 2] = _mm256_unpacklo_epi64(t[r + 1], t[r + 3]); /* dword 2 | 6 */
                s[r + 3] = _mm256_unpackhi_epi64(t[r + 1], t[r + 3]); /* dword 3 | 7 */
            }
            uint8_t *g0 = pg + (uint64_t)(2 * j) * GROUP_BYTES, *g1 = g0 + GROUP_BYTES;
            for (int c = 0; c < 4; c++) {
                _mm256_store_si256((__m256i *)(g0 + 32 * c), _mm256_permute2x128_si256(s[c], s[c + 4], 0x20));
                _mm256_store_si256((__m256i *)(g1 + 32 * c), _mm256_permute2x128_si256(s[c], s[c + 4], 0x31));
            }
        }
        for (int g = 0; g < ng; g++) {
            float *ab = (float *)(pg + (uint64_t)g * GROUP_BYTES + 128);
            for (int r = 0; r < KERN_GEMM_ROWS; r++) {
                ab[r] = tmp[r].alpha[g];
                ab[8 + r] = tmp[r].beta[g];
            }
        }
    }
}

#define PACK_FN(name, blck, block_type)                                                                   \
    static void pack_##name(int64_t k, const void *w, uint64_t row_bytes, int nr, void *panel) {          \
        pack_rows(k, w, row_bytes, nr, panel, blck, sizeof(block_type), unpack_##name);                    \
    }
PACK_FN(q4_0, QK4_0, block_q4_0)
PACK_FN(q4_1, QK4_1, block_q4_1)
PACK_FN(q5_0, QK5_0, block_q5_0)
PACK_FN(q5_1, QK5_1, block_q5_1)
PACK_FN(q2_K, QK_K, block_q2_K)
PACK_FN(q3_K, QK_K, block_q3_K)
PACK_FN(q4_K, QK_K, block_q4_K)
PACK_FN(q5_K, QK_K, block_q5_K)
PACK_FN(q6_K, QK_K, block_q6_K)

/* ---- the multiply ------------------------------------------------------------------------- */

/* How a group's int16 pair sums are widened (bounds in the file comment). */
enum { U5 = 0, U6 = 1 };

static inline __m256i bcast32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Lane r = sum_l u[r][l] * q[l] over one group: u the group's 4 panel vectors, q the
 * activation's 16 bytes. */
static inline __m256i group_sum(int mode, const __m256i *u, const int8_t *q) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i m0 = _mm256_maddubs_epi16(u[0], bcast32(q)), m1 = _mm256_maddubs_epi16(u[1], bcast32(q + 4));
    const __m256i m2 = _mm256_maddubs_epi16(u[2], bcast32(q + 8)), m3 = _mm256_maddubs_epi16(u[3], bcast32(q + 12));
    if (mode == U5) return _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(m0, m1), _mm256_add_epi16(m2, m3)), ones);
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_add_epi16(m0, m1), ones),
                            _mm256_madd_epi16(_mm256_add_epi16(m2, m3), ones));
}

/* acc + the group's contribution for one token: float(lane sums) * alpha * d + beta * s. */
static inline __m256 token_step(int mode, const __m256i *u, __m256 alpha, __m256 beta, const block_q8_16 *a, int h,
                                __m256 acc) {
    const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(group_sum(mode, u, a->qs + 16 * h)), alpha);
    acc = _mm256_fmadd_ps(f, _mm256_broadcast_ss(&a->d[h]), acc);
    return _mm256_fmadd_ps(beta, _mm256_broadcast_ss(&a->s[h]), acc);
}

/* nt = 4 or 1 (a constant after inlining) tokens a_t = act + t * a_row_bytes over the panel;
 * y[t * ldy + r] for r < nr.  The four accumulators are named variables, not an array, so
 * that they stay in registers. */
static inline __attribute__((always_inline)) void gemm_tokens(int mode, int nt, int64_t k, const uint8_t *panel,
                                                              int nr, const uint8_t *act, uint64_t a_row_bytes,
                                                              float *y, int64_t ldy) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    const block_q8_16 *a0 = (const block_q8_16 *)act;
    const block_q8_16 *a1 = (const block_q8_16 *)(act + (nt > 1 ? a_row_bytes : 0));
    const block_q8_16 *a2 = (const block_q8_16 *)(act + (nt > 1 ? 2 * a_row_bytes : 0));
    const block_q8_16 *a3 = (const block_q8_16 *)(act + (nt > 1 ? 3 * a_row_bytes : 0));
    const int64_t nb = k / QK8_16;
    for (int64_t b = 0; b < nb; b++) {
        for (int h = 0; h < 2; h++, panel += GROUP_BYTES) {
            __m256i u[4];
            for (int c = 0; c < 4; c++) u[c] = _mm256_load_si256((const __m256i *)(panel + 32 * c));
            const __m256 alpha = _mm256_load_ps((const float *)(panel + 128));
            const __m256 beta = _mm256_load_ps((const float *)(panel + 160));
            acc0 = token_step(mode, u, alpha, beta, a0 + b, h, acc0);
            if (nt > 1) {
                acc1 = token_step(mode, u, alpha, beta, a1 + b, h, acc1);
                acc2 = token_step(mode, u, alpha, beta, a2 + b, h, acc2);
                acc3 = token_step(mode, u, alpha, beta, a3 + b, h, acc3);
            }
        }
    }
    store_lanes(y, acc0, nr);
    if (nt > 1) {
        store_lanes(y + ldy, acc1, nr);
        store_lanes(y + 2 * ldy, acc2, nr);
        store_lanes(y + 3 * ldy, acc3, nr);
    }
}

/* All nt tokens: four at a time, then the rest one by one. */
static inline __attribute__((always_inline)) void gemm_all(int mode, int64_t k, const void *vpanel, int nr,
                                                           const void *vact, uint64_t a_row_bytes, int64_t nt,
                                                           float *y, int64_t ldy) {
    const uint8_t *panel = vpanel, *act = vact;
    int64_t t = 0;
    for (; t + 4 <= nt; t += 4)
        gemm_tokens(mode, 4, k, panel, nr, act + (uint64_t)t * a_row_bytes, a_row_bytes, y + t * ldy, ldy);
    for (; t < nt; t++) gemm_tokens(mode, 1, k, panel, nr, act + (uint64_t)t * a_row_bytes, a_row_bytes, y + t * ldy, ldy);
}

static void gemm_u5(int64_t k, const void *panel, int nr, const void *act, uint64_t a_row_bytes, int64_t nt, float *y,
                    int64_t ldy) {
    gemm_all(U5, k, panel, nr, act, a_row_bytes, nt, y, ldy);
}
static void gemm_u6(int64_t k, const void *panel, int nr, const void *act, uint64_t a_row_bytes, int64_t nt, float *y,
                    int64_t ldy) {
    gemm_all(U6, k, panel, nr, act, a_row_bytes, nt, y, ldy);
}

/* Bytes of one panel: k is a multiple of 32 (the Q8_16 block), so a whole number of groups. */
static uint64_t q8_16_panel_bytes(int64_t k) { return (uint64_t)k / 16 * GROUP_BYTES; }

/* ---- the table ----------------------------------------------------------------------------- */

const kern_gemm_ops kern_q8_16_gemm_avx2[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_Q4_0] = { q8_16_panel_bytes, pack_q4_0, gemm_u5 },
    [GGUF_TYPE_Q4_1] = { q8_16_panel_bytes, pack_q4_1, gemm_u5 },
    [GGUF_TYPE_Q5_0] = { q8_16_panel_bytes, pack_q5_0, gemm_u5 },
    [GGUF_TYPE_Q5_1] = { q8_16_panel_bytes, pack_q5_1, gemm_u5 },
    [GGUF_TYPE_Q8_0] = { kern_gemm_q8_0_panel_bytes_avx2, kern_gemm_q8_0_pack_avx2, kern_gemm_q8_0_avx2 },
    [GGUF_TYPE_Q2_K] = { q8_16_panel_bytes, pack_q2_K, gemm_u5 },
    [GGUF_TYPE_Q3_K] = { q8_16_panel_bytes, pack_q3_K, gemm_u5 },
    [GGUF_TYPE_Q4_K] = { q8_16_panel_bytes, pack_q4_K, gemm_u5 },
    [GGUF_TYPE_Q5_K] = { q8_16_panel_bytes, pack_q5_K, gemm_u5 },
    [GGUF_TYPE_Q6_K] = { q8_16_panel_bytes, pack_q6_K, gemm_u6 },
};
