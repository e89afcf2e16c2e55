/*
 * attn_tile_avx2.c - AVX2 tiled attention for prompt runs (kern.h, "tiled attention"): M query
 * rows (nq tokens x ng heads of one GQA group) against the group's cached K and V rows, taken
 * BLOCK positions at a time.
 *
 * Per block of cached positions j0 .. j0 + nb - 1:
 *   Kb, Vb = the block's rows as floats (converted once, used by all M queries)
 *   S[j][m] = Kb[j] . Qt[.][m]        Qt: the queries transposed (d x Mp) and times scale, built
 *                                     once per tile; 4 positions x up to 24 queries per
 *                                     micro-kernel step, each an FMA of a broadcast K value with 8
 *                                     queries, so no dot ends in a horizontal sum
 *   S[j][m] = -inf where j > pos(m)   (causal mask; only blocks that reach past some query's pos)
 *   online softmax per query m, 8 queries per vector:
 *     mx' = max(mx, max_j S[j][m]);  alpha = e^(mx - mx');  P[j][m] = e^(S[j][m] - mx') (0 if masked)
 *     l = l alpha + sum_j P[j][m]
 *   O[m] = O[m] alpha[m] + sum_j P[j][m] Vb[j]   (3 queries x 32 values per micro-kernel step)
 * and at the end O[m] /= l[m], written straight into the caller's output rows.  Masked positions
 * add exact zeros and an unchanged maximum gives alpha = 1 exactly, so a query's result does not
 * depend on the other queries of its tile (nor on the blocks that lie wholly past its position).
 */
#include <math.h>

#include "kern.h"
#include "kv_avx2.h"

#define BLOCK 32 /* cached positions per block */

/* The micro-kernels' loops over their few rows and vectors must be unrolled for the accumulators
 * to live in registers (-O2 alone keeps them in memory). */
#define UNROLL _Pragma("GCC unroll 8")

/* Mp: query rows rounded up to whole vectors */
static int64_t padded_rows(int64_t rows) { return (rows + 7) / 8 * 8; }

/* Scratch, all pieces whole vectors (so 32-byte aligned when the base is):
 *   qt (d, Mp), kb (BLOCK, d), vb (BLOCK, d), s (BLOCK, Mp), mx / l / alpha (Mp) floats, lim (Mp) int32 */
uint64_t kern_attn_tile_scratch_avx2(int64_t d, int64_t rows) {
    const int64_t mp = padded_rows(rows);
    return sizeof(float) * (uint64_t)(d * mp + 2 * BLOCK * d + BLOCK * mp + 4 * mp);
}

typedef struct {
    float *qt, *kb, *vb, *s, *mx, *l, *alpha;
    int32_t *lim;
} tile_scratch;

/* Rows n0 .. n0 + nb - 1 of a cache (row_bytes apart) as floats: out[j * d + c] */
typedef void (*convert_fn)(const uint8_t *rows, uint64_t row_bytes, int64_t nb, int64_t d, float *out);

#define CONVERTER(name, LD)                                                                        \
    static void name(const uint8_t *rows, uint64_t row_bytes, int64_t nb, int64_t d, float *out) { \
        for (int64_t j = 0; j < nb; j++)                                                           \
            for (int64_t c = 0; c < d; c += 8) _mm256_storeu_ps(out + j * d + c, LD(rows + j * row_bytes, c)); \
    }
CONVERTER(convert_f32, kv_ld_f32)
CONVERTER(convert_f16, kv_ld_f16)
CONVERTER(convert_q8_0, kv_ld_q8_0)
#undef CONVERTER

/* s[r * mp + 8v ..] = sum_c kb[r * d + c] * qt[c * mp + 8v ..] for r < 4, v < NV (qt, s offset
 * to the first query column of the step) */
static inline __attribute__((always_inline)) void scores_step(int64_t d, const float *kb, const float *qt,
                                                              int64_t mp, float *s, int NV) {
    __m256 acc[4][3];
    UNROLL
    for (int r = 0; r < 4; r++)
        UNROLL
        for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; c++) {
        __m256 q[3];
        UNROLL
        for (int v = 0; v < NV; v++) q[v] = _mm256_loadu_ps(qt + c * mp + 8 * v);
        UNROLL
        for (int r = 0; r < 4; r++) {
            const __m256 k = _mm256_broadcast_ss(kb + r * d + c);
            UNROLL
            for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(k, q[v], acc[r][v]);
        }
    }
    UNROLL
    for (int r = 0; r < 4; r++)
        UNROLL
        for (int v = 0; v < NV; v++) _mm256_storeu_ps(s + r * mp + 8 * v, acc[r][v]);
}

/* S for nb4 (a multiple of 4) block positions and all mp query columns */
static void block_scores(int64_t d, int64_t nb4, const float *kb, const float *qt, int64_t mp, float *s) {
    for (int64_t j = 0; j < nb4; j += 4)
        for (int64_t m = 0; m < mp;) {
            const float *k = kb + j * d, *q = qt + m;
            float *sj = s + j * mp + m;
            switch (mp - m >= 24 ? 3 : (mp - m) / 8) {
            case 3: scores_step(d, k, q, mp, sj, 3), m += 24; break;
            case 2: scores_step(d, k, q, mp, sj, 2), m += 16; break;
            default: scores_step(d, k, q, mp, sj, 1), m += 8; break;
            }
        }
}

/* The online-softmax update for one block (positions j0 .. j0 + nb - 1): masks, turns S into P in
 * place, updates mx and l and leaves each query's rescale factor in alpha. */
static void block_softmax(const tile_scratch *w, int64_t mp, int64_t j0, int64_t nb, bool masked) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY), one = _mm256_set1_ps(1.0f);
    for (int64_t m = 0; m < mp; m += 8) {
        const __m256i lim = _mm256_loadu_si256((const __m256i *)(w->lim + m));
        __m256 bmax = ninf;
        for (int64_t j = 0; j < nb; j++) {
            __m256 x = _mm256_loadu_ps(w->s + j * mp + m);
            if (masked) {
                const __m256 dead = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(j0 + j)), lim));
                x = _mm256_blendv_ps(x, ninf, dead);
            }
            bmax = _mm256_max_ps(bmax, x);
        }
        const __m256 mold = _mm256_loadu_ps(w->mx + m), mnew = _mm256_max_ps(mold, bmax);
        /* e^(mold - mnew), exactly 1 when the maximum stays (also -inf == -inf before any position) */
        const __m256 alpha = _mm256_blendv_ps(exp_ps(_mm256_sub_ps(mold, mnew)), one, _mm256_cmp_ps(mold, mnew, _CMP_EQ_OQ));
        __m256 sum = _mm256_setzero_ps();
        for (int64_t j = 0; j < nb; j++) {
            __m256 p = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(w->s + j * mp + m), mnew));
            if (masked) {
                const __m256 dead = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(j0 + j)), lim));
                p = _mm256_andnot_ps(dead, p);
            }
            _mm256_storeu_ps(w->s + j * mp + m, p);
            sum = _mm256_add_ps(sum, p);
        }
        _mm256_storeu_ps(w->mx + m, mnew);
        _mm256_storeu_ps(w->l + m, _mm256_fmadd_ps(_mm256_loadu_ps(w->l + m), alpha, sum));
        _mm256_storeu_ps(w->alpha + m, alpha);
    }
}

/* o[r][8v ..] = o[r][8v ..] * alpha[r] + sum_j p[j * mp + r] * vb[j * d + 8v ..] for r < R, v < NV
 * (p, alpha offset to the step's first query, vb and o to its first column) */
static inline __attribute__((always_inline)) void pv_step(int64_t d, int64_t nb, const float *vb, const float *p,
                                                          int64_t mp, const float *alpha, float *const *o,
                                                          int64_t c0, int R, int NV) {
    __m256 acc[3][4];
    UNROLL
    for (int r = 0; r < R; r++) {
        const __m256 a = _mm256_broadcast_ss(alpha + r);
        UNROLL
        for (int v = 0; v < NV; v++) acc[r][v] = _mm256_mul_ps(_mm256_loadu_ps(o[r] + c0 + 8 * v), a);
    }
    for (int64_t j = 0; j < nb; j++) {
        __m256 x[4];
        UNROLL
        for (int v = 0; v < NV; v++) x[v] = _mm256_loadu_ps(vb + j * d + c0 + 8 * v);
        UNROLL
        for (int r = 0; r < R; r++) {
            const __m256 pj = _mm256_broadcast_ss(p + j * mp + r);
            UNROLL
            for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(pj, x[v], acc[r][v]);
        }
    }
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int v = 0; v < NV; v++) _mm256_storeu_ps(o[r] + c0 + 8 * v, acc[r][v]);
}

#define PV_CASES(R)                                                                        \
    switch (nv) {                                                                          \
    case 4: pv_step(d, nb, vb, p, mp, alpha, o, c0, R, 4); break;                          \
    case 3: pv_step(d, nb, vb, p, mp, alpha, o, c0, R, 3); break;                          \
    case 2: pv_step(d, nb, vb, p, mp, alpha, o, c0, R, 2); break;                          \
    default: pv_step(d, nb, vb, p, mp, alpha, o, c0, R, 1); break;                         \
    }

/* O += P V (after the alpha rescale) for R (1..3) query rows whose outputs are o[0 .. R) */
static void pv_rows(int64_t d, int64_t nb, const float *vb, const float *p, int64_t mp, const float *alpha,
                    float *const *o, int R) {
    for (int64_t c0 = 0; c0 < d; c0 += 32) {
        const int nv = d - c0 >= 32 ? 4 : (int)(d - c0) / 8;
        if (R == 3) PV_CASES(3) else if (R == 2) PV_CASES(2) else PV_CASES(1)
    }
}
#undef PV_CASES

static inline float *out_row(const kern_attn_tile *a, int64_t m) {
    return a->out + (m / a->ng) * a->out_stride + (m % a->ng) * a->d;
}

static void attn_tile(const kern_attn_tile *a, void *scratch, convert_fn convert) {
    const int64_t d = a->d, rows = (int64_t)a->nq * a->ng, mp = padded_rows(rows);
    float *f = scratch;
    tile_scratch w;
    w.qt = f, f += d * mp;
    w.kb = f, f += BLOCK * d;
    w.vb = f, f += BLOCK * d;
    w.s = f, f += BLOCK * mp;
    w.mx = f, f += mp;
    w.l = f, f += mp;
    w.alpha = f, f += mp;
    w.lim = (int32_t *)f;

    /* queries transposed and scaled; padding columns are zero queries that see every position */
    int64_t first = a->pos[0], last = a->pos[0];
    for (int64_t m = 0; m < mp; m++) {
        const float *q = m < rows ? a->q + (m / a->ng) * a->q_stride + (m % a->ng) * d : NULL;
        for (int64_t c = 0; c < d; c++) w.qt[c * mp + m] = q ? q[c] * a->scale : 0.0f;
        w.lim[m] = m < rows ? (int32_t)a->pos[m / a->ng] : INT32_MAX;
        w.mx[m] = -INFINITY;
        w.l[m] = 0.0f;
    }
    for (int t = 1; t < a->nq; t++) {
        if (a->pos[t] < first) first = a->pos[t];
        if (a->pos[t] > last) last = a->pos[t];
    }
    for (int64_t m = 0; m < rows; m++) memset(out_row(a, m), 0, sizeof(float) * (size_t)d);

    for (int64_t j0 = 0; j0 <= last; j0 += BLOCK) {
        const int64_t nb = last + 1 - j0 < BLOCK ? last + 1 - j0 : BLOCK, nb4 = (nb + 3) / 4 * 4;
        convert(a->k + (uint64_t)j0 * a->row_bytes, a->row_bytes, nb, d, w.kb);
        memset(w.kb + nb * d, 0, sizeof(float) * (size_t)((nb4 - nb) * d));
        convert(a->v + (uint64_t)j0 * a->row_bytes, a->row_bytes, nb, d, w.vb);
        block_scores(d, nb4, w.kb, w.qt, mp, w.s);
        block_softmax(&w, mp, j0, nb, j0 + nb - 1 > first);
        for (int64_t m = 0; m < rows; m += 3) {
            const int R = rows - m >= 3 ? 3 : (int)(rows - m);
            float *o[3];
            for (int r = 0; r < R; r++) o[r] = out_row(a, m + r);
            pv_rows(d, nb, w.vb, w.s + m, mp, w.alpha + m, o, R);
        }
    }
    for (int64_t m = 0; m < rows; m++) {
        float *o = out_row(a, m);
        const __m256 inv = _mm256_set1_ps(1.0f / w.l[m]);
        for (int64_t c = 0; c < d; c += 8) _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_loadu_ps(o + c), inv));
    }
}

static void attn_tile_f32(const kern_attn_tile *a, void *scratch) { attn_tile(a, scratch, convert_f32); }
static void attn_tile_f16(const kern_attn_tile *a, void *scratch) { attn_tile(a, scratch, convert_f16); }
static void attn_tile_q8_0(const kern_attn_tile *a, void *scratch) { attn_tile(a, scratch, convert_q8_0); }

const kern_attn_tile_fn kern_attn_tile_avx2[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_F32] = attn_tile_f32,
    [GGUF_TYPE_F16] = attn_tile_f16,
    [GGUF_TYPE_Q8_0] = attn_tile_q8_0,
};
