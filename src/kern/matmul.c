/*
 * matmul.c - Y = X * W^T for a quantized (or float) weight matrix W used in place from the mmap.
 *
 * Two steps, both parallel over the pool:
 *   1. convert the n activation rows once to the format the dot kernel expects (Q8_16 for
 *      quantized weights, see actq.h; nothing for float weights), into caller-provided scratch;
 *   2. split W's m rows across threads, and then
 *      - prompt processing (n >= GEMM_MIN_TOKENS) where the type has batched kernels
 *        (kern_ops.gemm): each thread unpacks KERN_GEMM_ROWS rows at a time into a panel in its
 *        own buffer (kern_gemm_ops.panel_bytes: 12 bytes per element of a row for the
 *        quantized types, 32 for the float ones, whose panel holds f32; L2 sized for the
 *        model shapes) and multiplies every token with it, so each weight block is read and
 *        unpacked once per matmul;
 *      - otherwise each thread walks its rows in tiles of ROW_TILE rows x TOK_TILE tokens with
 *        the 1x1 dot, so a tile of weights is read from memory once and reused from cache for
 *        every token in the tile, while for a single token (decode) this degenerates to one
 *        pass over the thread's rows: one read of each weight byte.
 * Never dequantizes the matrix into memory: dot products run on the packed blocks or on panels
 * of a few rows.
 */
#include "kern.h"

#include <stdint.h>

#include <stdlib.h>
#include <string.h>

#define ROW_TILE 16
#define TOK_TILE 32
/* Fewest tokens for the panel kernels: packing a panel costs about one 1x1 dot per row, so
 * below this the 1x1 path is as fast. */
#define GEMM_MIN_TOKENS 4

/* Bytes of one activation row of k elements in the format vec_dot expects for `type`. */
static uint64_t act_row_bytes(uint32_t type, int64_t k) {
    const kern_type_traits *at = kern_traits(kern_best(type)->vec_dot_type);
    return (uint64_t)(k / at->blck) * at->type_size;
}

uint64_t kern_matmul_scratch(uint32_t type, int64_t k, int64_t n) {
    const kern_ops *ops = kern_best(type);
    if (!ops || ops->vec_dot_type == GGUF_TYPE_F32) return 0;
    return (uint64_t)n * act_row_bytes(type, k);
}

typedef struct {
    const kern_mat *W;
    const float *X;
    int64_t n;
    float *Y;
    int64_t ldy;
    const uint8_t *act;      /* activations in vec_dot_type, or X itself for float weights */
    uint64_t act_row_bytes;
    kern_vec_dot_fn dot;
    kern_gemm_ops gemm;      /* NULL members: no batched kernels for this type */
    int64_t min_gemm;        /* fewest tokens for the batched kernels */
    kern_from_float_fn quant;
    uint8_t *act_out;
} matmul_ctx;

static void quantize_task(void *p, int ith, int nth) {
    matmul_ctx *c = p;
    int64_t lo, hi;
    kern_split(c->n, 1, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        c->quant(c->X + t * c->W->k, c->act_out + (uint64_t)t * c->act_row_bytes, c->W->k);
}

/* Rows [lo, hi) with the panel kernels; false (nothing done) if the panel buffer cannot be
 * allocated, so the caller falls back to the 1x1 dots. */
static bool gemm_rows(const matmul_ctx *c, int64_t lo, int64_t hi) {
    const kern_mat *W = c->W;
    void *panel = aligned_alloc(32, c->gemm.panel_bytes(W->k)); /* size: a multiple of 32 */
    if (!panel) return false;
    const uint8_t *wdata = W->data;
    for (int64_t r0 = lo; r0 < hi; r0 += KERN_GEMM_ROWS) {
        const int nr = (int)(hi - r0 < KERN_GEMM_ROWS ? hi - r0 : KERN_GEMM_ROWS);
        c->gemm.pack(W->k, wdata + (uint64_t)r0 * W->row_bytes, W->row_bytes, nr, panel);
        c->gemm.gemm(W->k, panel, nr, c->act, c->act_row_bytes, c->n, c->Y + r0, c->ldy);
    }
    free(panel);
    return true;
}

static void dot_task(void *p, int ith, int nth) {
    matmul_ctx *c = p;
    const kern_mat *W = c->W;
    int64_t lo, hi;
    kern_split(W->m, ROW_TILE, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    if (c->gemm.gemm && c->n >= c->min_gemm && gemm_rows(c, lo, hi)) return;
    const uint8_t *wdata = W->data;
    for (int64_t r0 = lo; r0 < hi; r0 += ROW_TILE) {
        int64_t r1 = r0 + ROW_TILE < hi ? r0 + ROW_TILE : hi;
        for (int64_t t0 = 0; t0 < c->n; t0 += TOK_TILE) {
            int64_t t1 = t0 + TOK_TILE < c->n ? t0 + TOK_TILE : c->n;
            for (int64_t r = r0; r < r1; r++) {
                const uint8_t *wrow = wdata + (uint64_t)r * W->row_bytes;
                for (int64_t t = t0; t < t1; t++)
                    c->dot(W->k, &c->Y[t * c->ldy + r], wrow, c->act + (uint64_t)t * c->act_row_bytes);
            }
        }
    }
}

void kern_matmul(kern_pool *pool, const kern_mat *W, const float *X, int64_t n, float *Y,
                 int64_t ldy, void *scratch) {
    kern_matmul_ex(pool, W, X, n, Y, ldy, scratch, -1);
}

void kern_matmul_ex(kern_pool *pool, const kern_mat *W, const float *X, int64_t n, float *Y,
                    int64_t ldy, void *scratch, int use_gemm) {
    const kern_ops *ops = kern_best(W->type);
    matmul_ctx c = { .W = W, .X = X, .n = n, .Y = Y, .ldy = ldy, .dot = ops->vec_dot, .gemm = ops->gemm };
    c.min_gemm = use_gemm < 0 ? GEMM_MIN_TOKENS : use_gemm > 0 ? 1 : INT64_MAX;
    if (ops->vec_dot_type == GGUF_TYPE_F32) {
        c.act = (const uint8_t *)X;
        c.act_row_bytes = (uint64_t)W->k * sizeof(float);
    } else {
        c.quant = kern_best(ops->vec_dot_type)->from_float;
        c.act_out = scratch;
        c.act = scratch;
        c.act_row_bytes = act_row_bytes(W->type, W->k);
        if (n == 1)
            quantize_task(&c, 0, 1);
        else
            kern_pool_run(pool, quantize_task, &c);
    }
    kern_pool_run(pool, dot_task, &c);
}

void kern_get_row(const kern_mat *W, int64_t r, float *out) {
    const uint8_t *row = (const uint8_t *)W->data + (uint64_t)r * W->row_bytes;
    kern_best(W->type)->to_float(row, out, W->k);
}
