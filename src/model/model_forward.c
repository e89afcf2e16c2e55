/*
 * model_forward.c - KV cache, scratch and the transformer forward pass (qwen2 and llama).
 *
 * For a batch of T tokens at positions pos..pos+T-1, every layer does:
 *   xn = RMSNorm(x) * attn_norm
 *   q = Wq xn (+bq), k = Wk xn (+bk), v = Wv xn (+bv)       (one matmul each, all T tokens)
 *   rotate q and k by RoPE at each token's position
 *   append k, v to the cache; each head attends causally over positions 0..p:
 *       out_h = sum_j softmax_j(q_h . k_j / sqrt(d)) v_j   (query head h reads KV head h / (H/Hkv))
 *   x += Wo out
 *   xn = RMSNorm(x) * ffn_norm;  x += Wdown (silu(Wgate xn) * (Wup xn))
 * and finally logits = Wout RMSNorm(x) * output_norm.
 *
 * Several sequences: a context may hold S sequences (model_ctx_new_multi), each with its own
 * region of C positions in the cache.  A batch then mixes tokens of different sequences at
 * different positions: the matmuls above run once over all T rows (each weight is read once per
 * pass however many sequences take part: the point of batched decoding), RoPE uses each token's
 * own position, and attention reads only the token's own sequence region, positions 0..p.  Every
 * row's arithmetic is the same whatever else is in the batch, so a sequence gets bit-identical
 * results alone or batched.
 *
 * Memory: the KV cache ([layer][sequence][position][Hkv*d] for K and for V, in F16 by default,
 * Q8_0 or F32 by $SEEK_KV_CACHE_TYPE) and all scratch are allocated once in model_ctx_new_multi;
 * the eval functions allocate nothing.  Each position's K and V vectors are converted to the cache
 * type as they are stored; attention then dots the float queries of a GQA group with each cached
 * K row and adds the weighted V rows into their outputs (kern_kv_ops: the query is not quantized,
 * so the cache's rounding is the only error added, and a cached row is converted once per group,
 * never expanded to floats in memory).  Prompt runs instead attend in tiles of consecutive tokens
 * x a GQA group (kern_attn_tile: a block of cached rows is converted to floats once per tile and
 * serves all its queries); decode tokens keep the per-token path, so a sequence's decode steps do
 * not depend on what else shares the pass.
 */
#include "model.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct model_ctx {
    const model *m;
    kern_pool *pool;
    int64_t n_ctx;   /* C: positions the cache holds per sequence */
    int64_t n_seq;   /* S: sequences */
    int64_t n_batch; /* largest T per pass */
    uint32_t kv_type;      /* cache element type (F16, Q8_0, F32) */
    uint64_t kv_row;       /* bytes of one position's Hkv*d vector */
    uint64_t kv_head;      /* bytes of one head's d values within it */
    const kern_ops *kv_ops;/* the cache type's from_float (storing K and V) */
    const kern_kv_ops *kv_group; /* attention over cached rows, a GQA group at a time */
    kern_attn_tile_fn attn_tile; /* prompt runs' tiled attention; NULL: every token per-token */
    int64_t tile_tokens;   /* query tokens per tile (tile rows = tile_tokens * G) */
    uint64_t tile_bytes;   /* tile scratch per thread */
    uint8_t *k_cache;      /* (n_layer, S, C, kv_row bytes) */
    uint8_t *v_cache;      /* (n_layer, S, C, kv_row bytes) */
    int64_t *bpos;   /* (T) position of each token of the current pass */
    int32_t *bseq;   /* (T) sequence of each token of the current pass */
    uint8_t *brole;  /* (T) 1: the token is part of a prompt run (2+ tokens of its sequence in this
                      * pass), computed with the batched kernels; 0: a lone (decode) token */
    int32_t *tile_first, *tile_len; /* (T) the pass's attention tiles: prompt-run tokens
                      * tile_first[i] .. + tile_len[i] - 1, one sequence, consecutive positions */
    int32_t *lone;   /* (T) tokens that attend one by one (decode tokens, or all without attn_tile) */
    int64_t n_tiles, n_lone;
    bool *want;      /* (T) model_eval's row selection */
    float *x;        /* (T, D) residual stream */
    float *xn;       /* (T, D) normalised input / projection output */
    float *q;        /* (T, H*d) */
    float *k;        /* (T, Hkv*d) */
    float *v;        /* (T, Hkv*d) */
    float *att;      /* (T, H*d) attention output */
    float *gate;     /* (T, F) */
    float *up;       /* (T, F) */
    float *rope_cs;  /* (T, n_rot/2, 2) cos, sin for this batch's positions */
    double *inv_freq;/* (n_rot/2) base^(-2i/n_rot) / rope_freqs[i] */
    float *scores;   /* (threads, G x C) attention weights of one GQA group, per thread */
    uint8_t *tile_scratch; /* (threads, tile_bytes) */
    void *act;       /* activation quantization scratch for kern_matmul */
    uint64_t kv_bytes, scratch_bytes;
    bool profile;                     /* model_ctx_profile_enable: time the phases below */
    uint64_t prof_ns[MODEL_PROF_COUNT];
    uint64_t prof_bytes[MODEL_PROF_COUNT]; /* weight bytes the phase's matmuls read */
    uint64_t prof_tokens;             /* tokens evaluated while profiling */
};

/* ---- phase timing (seek bench --profile) ------------------------------------------------------ */

static const char *const prof_names[MODEL_PROF_COUNT] = {
    [MODEL_PROF_EMBD] = "embedding lookup", [MODEL_PROF_NORM] = "RMSNorm",
    [MODEL_PROF_QKV] = "Q/K/V matmuls", [MODEL_PROF_ROPE] = "RoPE + KV store",
    [MODEL_PROF_ATTN] = "attention", [MODEL_PROF_WO] = "output projection (Wo)",
    [MODEL_PROF_GATE_UP] = "FFN gate + up matmuls", [MODEL_PROF_SWIGLU] = "SwiGLU",
    [MODEL_PROF_DOWN] = "FFN down matmul", [MODEL_PROF_RESID] = "residual adds + biases",
    [MODEL_PROF_LOGITS] = "output matrix (logits)",
};

const char *model_prof_name(int phase) { return phase >= 0 && phase < MODEL_PROF_COUNT ? prof_names[phase] : ""; }

void model_ctx_profile_enable(model_ctx *c, bool on) {
    c->profile = on;
    memset(c->prof_ns, 0, sizeof c->prof_ns);
    memset(c->prof_bytes, 0, sizeof c->prof_bytes);
    c->prof_tokens = 0;
}

uint64_t model_ctx_profile(const model_ctx *c, uint64_t ns[MODEL_PROF_COUNT], uint64_t bytes[MODEL_PROF_COUNT]) {
    memcpy(ns, c->prof_ns, sizeof c->prof_ns);
    memcpy(bytes, c->prof_bytes, sizeof c->prof_bytes);
    return c->prof_tokens;
}

/* Ends a phase begun at *t: charges the time since to phase and restarts the clock. */
static inline void prof_mark(model_ctx *c, uint64_t *t, int phase) {
    if (!c->profile) return;
    uint64_t now = time_now_ns();
    c->prof_ns[phase] += now - *t;
    *t = now;
}

static inline void prof_weights(model_ctx *c, int phase, const kern_mat *W) {
    if (c->profile) c->prof_bytes[phase] += W->row_bytes * (uint64_t)W->m;
}

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

uint32_t model_ctx_kv_type(const model_ctx *c) { return c->kv_type; }

/* ---- sizes ------------------------------------------------------------------------------------ */

/* What a context allocates, computed in one place for model_ctx_new_multi and
 * model_ctx_estimate_bytes so the estimate cannot drift from the allocation. */
typedef struct {
    uint64_t kv;       /* bytes of K (and as many of V) */
    uint64_t act;      /* activation quantization scratch bytes */
    uint64_t scratch;  /* all scratch bytes, act included */
} ctx_sizes;

/* Query tokens per attention tile: about KERN_ATTN_TILE_ROWS query rows of G heads each. */
static int64_t tile_tokens_of(const model *m) {
    const int64_t G = m->hp.n_head / m->hp.n_head_kv;
    return G >= KERN_ATTN_TILE_ROWS ? 1 : KERN_ATTN_TILE_ROWS / G;
}

/* Tile scratch per thread, rounded to whole 64-byte lines; 0 without a tiled kernel. */
static uint64_t tile_scratch_bytes(const model *m, uint32_t kv_type) {
    const int64_t d = m->hp.head_dim, G = m->hp.n_head / m->hp.n_head_kv;
    if (!kern_attn_tile_best(kv_type, d)) return 0;
    return (kern_attn_tile_scratch(d, tile_tokens_of(m) * G) + 63) / 64 * 64;
}

static ctx_sizes ctx_sizes_of(const model *m, int64_t n_ctx, int64_t n_seq, int64_t T, int nth) {
    const model_hparams *hp = &m->hp;
    const int64_t D = hp->n_embd, F = hp->n_ff, qd = hp->n_head * hp->head_dim,
                  kvd = hp->n_head_kv * hp->head_dim;
    ctx_sizes z;
    const uint32_t kv_type = model_kv_type(hp->head_dim);
    const uint64_t tile_bytes = tile_scratch_bytes(m, kv_type);
    z.kv = (uint64_t)hp->n_layer * (uint64_t)n_seq * (uint64_t)n_ctx * model_kv_row_bytes(kv_type, kvd);
    z.act = kern_matmul_scratch(m->output.type, D, T);
    for (int64_t i = 0; i < hp->n_layer; i++) {
        const model_layer *L = &m->layers[i];
        const kern_mat *mats[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (size_t j = 0; j < sizeof mats / sizeof mats[0]; j++)
            z.act = max_u64(z.act, kern_matmul_scratch(mats[j]->type, mats[j]->k, T));
    }
    z.scratch = sizeof(float) * (uint64_t)T * (uint64_t)(2 * D + 2 * qd + 2 * kvd + 2 * F + hp->n_rot) +
                (sizeof(int64_t) + 4 * sizeof(int32_t) + sizeof(bool)) * (uint64_t)T +
                sizeof(double) * (uint64_t)(hp->n_rot / 2) +
                sizeof(float) * (uint64_t)nth * (uint64_t)(hp->n_head / hp->n_head_kv) * (uint64_t)n_ctx +
                (uint64_t)nth * tile_bytes + z.act;
    return z;
}

/* n_batch as the context will use it: at least 1, at most every position of every sequence. */
static int64_t clamp_batch(int64_t n_batch, int64_t n_ctx, int64_t n_seq) {
    if (n_batch < 1) n_batch = 1;
    if (n_batch > n_ctx * n_seq) n_batch = n_ctx * n_seq;
    return n_batch;
}

uint64_t model_ctx_estimate_bytes(const model *m, int64_t n_ctx, int n_seq, int64_t n_batch, int n_threads) {
    if (n_ctx < 1 || n_seq < 1) return 0;
    ctx_sizes z = ctx_sizes_of(m, n_ctx, n_seq, clamp_batch(n_batch, n_ctx, n_seq), n_threads < 1 ? 1 : n_threads);
    return 2 * z.kv + z.scratch;
}

model_ctx *model_ctx_new(const model *m, int64_t n_ctx, int64_t n_batch, int n_threads, seek_err *err) {
    return model_ctx_new_multi(m, n_ctx, 1, n_batch, n_threads, err);
}

model_ctx *model_ctx_new_multi(const model *m, int64_t n_ctx, int n_seq, int64_t n_batch, int n_threads,
                               seek_err *err) {
    const model_hparams *hp = &m->hp;
    if (n_ctx < 1 || n_ctx > (1 << 22)) {
        err_set(err, SEEK_EINVAL, "context size %lld is out of range", (long long)n_ctx);
        return NULL;
    }
    if (n_seq < 1 || n_seq > MODEL_MAX_SEQ) {
        err_set(err, SEEK_EINVAL, "%d sequences is out of range (1..%d)", n_seq, MODEL_MAX_SEQ);
        return NULL;
    }
    n_batch = clamp_batch(n_batch, n_ctx, n_seq);
    model_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_seq = n_seq;
    c->n_batch = n_batch;
    c->pool = kern_pool_new(n_threads, err);
    if (!c->pool) {
        free(c);
        return NULL;
    }
    const int64_t D = hp->n_embd, F = hp->n_ff, qd = hp->n_head * hp->head_dim,
                  kvd = hp->n_head_kv * hp->head_dim, T = n_batch;
    int nth = kern_pool_size(c->pool);
    ctx_sizes z = ctx_sizes_of(m, n_ctx, n_seq, T, nth);
    c->kv_type = model_kv_type(hp->head_dim);
    c->kv_row = model_kv_row_bytes(c->kv_type, kvd);
    c->kv_head = model_kv_row_bytes(c->kv_type, hp->head_dim);
    c->kv_ops = kern_best(c->kv_type);
    /* the group kernels take whole 8-value chunks; other head sizes go head by head */
    c->kv_group = hp->head_dim % 8 == 0 ? kern_kv_best(c->kv_type) : kern_kv_portable(c->kv_type);
    c->attn_tile = kern_attn_tile_best(c->kv_type, hp->head_dim);
    c->tile_tokens = tile_tokens_of(m);
    c->tile_bytes = tile_scratch_bytes(m, c->kv_type);
    c->kv_bytes = 2 * z.kv;
    c->scratch_bytes = z.scratch;
    if (z.kv > SIZE_MAX / 2) {
        err_set(err, SEEK_ENOMEM, "a KV cache of %d x %lld positions is too large", n_seq, (long long)n_ctx);
        model_ctx_free(c);
        return NULL;
    }
    c->k_cache = mem_alloc(z.kv);
    c->v_cache = mem_alloc(z.kv);
    c->x = mem_alloc(sizeof(float) * T * D);
    c->xn = mem_alloc(sizeof(float) * T * D);
    c->q = mem_alloc(sizeof(float) * T * qd);
    c->k = mem_alloc(sizeof(float) * T * kvd);
    c->v = mem_alloc(sizeof(float) * T * kvd);
    c->att = mem_alloc(sizeof(float) * T * qd);
    c->gate = mem_alloc(sizeof(float) * T * F);
    c->up = mem_alloc(sizeof(float) * T * F);
    c->rope_cs = mem_alloc(sizeof(float) * T * hp->n_rot);
    c->bpos = mem_alloc(sizeof(int64_t) * T);
    c->bseq = mem_alloc(sizeof(int32_t) * T);
    c->brole = mem_alloc((size_t)T);
    c->tile_first = mem_alloc(sizeof(int32_t) * T);
    c->tile_len = mem_alloc(sizeof(int32_t) * T);
    c->lone = mem_alloc(sizeof(int32_t) * T);
    c->want = mem_alloc(sizeof(bool) * T);
    c->inv_freq = mem_alloc(sizeof(double) * (size_t)(hp->n_rot / 2));
    c->scores = mem_alloc(sizeof(float) * (size_t)nth * (size_t)(hp->n_head / hp->n_head_kv) * n_ctx);
    c->tile_scratch = c->tile_bytes ? mem_alloc((size_t)(nth * c->tile_bytes)) : NULL;
    c->act = z.act ? mem_alloc(z.act) : NULL;
    if (!c->k_cache || !c->v_cache || !c->x || !c->xn || !c->q || !c->k || !c->v || !c->att ||
        !c->gate || !c->up || !c->rope_cs || !c->bpos || !c->bseq || !c->brole || !c->want || !c->inv_freq ||
        !c->scores || !c->tile_first || !c->tile_len || !c->lone || (c->tile_bytes && !c->tile_scratch) ||
        (z.act && !c->act)) {
        err_set(err, SEEK_ENOMEM, "out of memory allocating %.1f MiB of KV cache and scratch",
                (double)(c->kv_bytes + c->scratch_bytes) / (1 << 20));
        model_ctx_free(c);
        return NULL;
    }
    /* theta_i = p * base^(-2i/n_rot), divided by the Llama-3.1 frequency factor when present */
    for (int64_t i = 0; i < hp->n_rot / 2; i++) {
        double f = pow((double)hp->rope_base, -2.0 * (double)i / (double)hp->n_rot);
        if (m->rope_freqs) f /= (double)m->rope_freqs[i];
        c->inv_freq[i] = f;
    }
    return c;
}

void model_ctx_free(model_ctx *c) {
    if (!c) return;
    kern_pool_free(c->pool);
    mem_free(c->k_cache);
    mem_free(c->v_cache);
    mem_free(c->x);
    mem_free(c->xn);
    mem_free(c->q);
    mem_free(c->k);
    mem_free(c->v);
    mem_free(c->att);
    mem_free(c->gate);
    mem_free(c->up);
    mem_free(c->rope_cs);
    mem_free(c->bpos);
    mem_free(c->bseq);
    mem_free(c->brole);
    mem_free(c->tile_first);
    mem_free(c->tile_len);
    mem_free(c->lone);
    mem_free(c->want);
    mem_free(c->inv_freq);
    mem_free(c->scores);
    mem_free(c->tile_scratch);
    mem_free(c->act);
    free(c);
}

uint64_t model_ctx_kv_bytes(const model_ctx *c) { return c->kv_bytes; }
uint64_t model_ctx_scratch_bytes(const model_ctx *c) { return c->scratch_bytes; }
int64_t model_ctx_n_ctx(const model_ctx *c) { return c->n_ctx; }
int model_ctx_n_seq(const model_ctx *c) { return (int)c->n_seq; }
int64_t model_ctx_n_batch(const model_ctx *c) { return c->n_batch; }

/* Rotates one head vector in place: pairs (i, i + n_rot/2) for NEOX, (2i, 2i+1) otherwise.
 * cs holds cos, sin of theta_i for i < n_rot/2. */
static void rope_apply(float *vec, const float *cs, int64_t n_rot, bool neox) {
    int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i++) {
        int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float c = cs[2 * i], s = cs[2 * i + 1];
        float x0 = vec[a], x1 = vec[b];
        vec[a] = x0 * c - x1 * s;
        vec[b] = x0 * s + x1 * c;
    }
}

typedef struct {
    model_ctx *c;
    int64_t layer;
    int64_t nsub; /* parts each lone token's GQA group is split into, so that short passes use every thread */
    atomic_int_fast64_t next; /* next work item: tiles x KV heads first, then lone tokens' items */
} attn_task_ctx;

/* Byte offset of sequence s's region of layer l in a cache: C positions of kv_row bytes. */
static uint64_t cache_off(const model_ctx *c, int64_t l, int64_t s) {
    return ((uint64_t)l * (uint64_t)c->n_seq + (uint64_t)s) * (uint64_t)c->n_ctx * c->kv_row;
}

/*
 * Attention of one lone token t for the query heads h0 .. h1 - 1 of KV head kh: its own sequence's
 * cache region, positions 0..bpos[t].  The query heads of a GQA group share each cached row, so a
 * row is converted once for the group (kern_kv_ops) rather than per head.  Scores are kept
 * position-major in s, s[j * ng + i] for head i of the ng in hand.
 */
static void attn_lone(model_ctx *c, int64_t layer, int64_t t, int64_t kh, int64_t h0, int64_t h1, float *s) {
    const model_hparams *hp = &c->m->hp;
    const int64_t d = hp->head_dim, qd = hp->n_head * d;
    const float scale = 1.0f / sqrtf((float)d);
    const uint64_t row = c->kv_row;
    const kern_kv_ops *kv = c->kv_group;
    const int64_t p_last = c->bpos[t];
    const uint8_t *kc = c->k_cache + cache_off(c, layer, c->bseq[t]) + (uint64_t)kh * c->kv_head;
    const uint8_t *vc = c->v_cache + cache_off(c, layer, c->bseq[t]) + (uint64_t)kh * c->kv_head;
    for (int64_t g0 = h0; g0 < h1; g0 += KERN_KV_GROUP) {
        const int ng = (int)(h1 - g0 < KERN_KV_GROUP ? h1 - g0 : KERN_KV_GROUP);
        const float *q = c->q + t * qd + g0 * d;
        for (int64_t j = 0; j <= p_last; j++) kv->dot_multi(d, kc + (uint64_t)j * row, q, d, ng, s + j * ng);
        for (int64_t j = 0; j < (p_last + 1) * ng; j++) s[j] *= scale;
        for (int i = 0; i < ng; i++) kern_softmax(s + i, p_last + 1, ng);
        float *out = c->att + t * qd + g0 * d;
        memset(out, 0, sizeof(float) * (size_t)(ng * d));
        for (int64_t j = 0; j <= p_last; j++) kv->axpy_multi(d, vc + (uint64_t)j * row, s + j * ng, 1, ng, out, d);
    }
}

/* Attention of prompt tile i (tokens tile_first[i] ..) for all G query heads of KV head kh. */
static void attn_tiled(model_ctx *c, int64_t layer, int64_t i, int64_t kh, void *scratch) {
    const model_hparams *hp = &c->m->hp;
    const int64_t d = hp->head_dim, qd = hp->n_head * d, G = hp->n_head / hp->n_head_kv, t0 = c->tile_first[i];
    const uint64_t off = cache_off(c, layer, c->bseq[t0]) + (uint64_t)kh * c->kv_head;
    kern_attn_tile a = {
        .d = d, .nq = c->tile_len[i], .ng = (int)G, .pos = c->bpos + t0,
        .q = c->q + t0 * qd + kh * G * d, .q_stride = qd,
        .k = c->k_cache + off, .v = c->v_cache + off, .row_bytes = c->kv_row,
        .scale = 1.0f / sqrtf((float)d),
        .out = c->att + t0 * qd + kh * G * d, .out_stride = qd,
    };
    c->attn_tile(&a, scratch);
}

/*
 * Causal attention of one layer.  Work items, taken by whichever thread is free: each (prompt
 * tile, KV head), latest tiles first since they read the most positions, then each (lone token,
 * KV head, part of its group).  Every item's arithmetic is fixed by its own tokens, so results do
 * not depend on which thread runs it.
 */
static void attn_task(void *p, int ith, int nth) {
    attn_task_ctx *a = p;
    model_ctx *c = a->c;
    const model_hparams *hp = &c->m->hp;
    const int64_t Hkv = hp->n_head_kv, G = hp->n_head / Hkv, per = (G + a->nsub - 1) / a->nsub;
    const int64_t n_tiled = c->n_tiles * Hkv, n_items = n_tiled + c->n_lone * Hkv * a->nsub;
    (void)nth;
    for (;;) {
        const int64_t idx = atomic_fetch_add(&a->next, 1);
        if (idx >= n_items) break;
        if (idx < n_tiled) {
            attn_tiled(c, a->layer, c->n_tiles - 1 - idx / Hkv, idx % Hkv, c->tile_scratch + (uint64_t)ith * c->tile_bytes);
            continue;
        }
        const int64_t r = (idx - n_tiled) % (Hkv * a->nsub), kh = r / a->nsub;
        const int64_t t = c->lone[(idx - n_tiled) / (Hkv * a->nsub)];
        const int64_t h0 = kh * G + (r % a->nsub) * per, h1 = h0 + per < (kh + 1) * G ? h0 + per : (kh + 1) * G;
        attn_lone(c, a->layer, t, kh, h0, h1, c->scores + (uint64_t)ith * (uint64_t)G * (uint64_t)c->n_ctx);
    }
}

/*
 * Splits the pass's tokens for attention: prompt-run tokens (brole) go in tiles of up to
 * tile_tokens consecutive tokens of one sequence at consecutive positions; lone tokens, and every
 * token when there is no tiled kernel, attend one by one.  A token's result does not depend on
 * the tile it lands in (kern.h), so where a run is cut into tiles does not matter.
 */
static void tiles_of(model_ctx *c, int64_t T) {
    c->n_tiles = c->n_lone = 0;
    for (int64_t t = 0; t < T; t++) {
        if (!c->attn_tile || !c->brole[t]) {
            c->lone[c->n_lone++] = (int32_t)t;
            continue;
        }
        const int64_t i = c->n_tiles - 1;
        if (i >= 0 && c->tile_first[i] + c->tile_len[i] == t && c->tile_len[i] < c->tile_tokens &&
            c->bseq[t] == c->bseq[t - 1] && c->bpos[t] == c->bpos[t - 1] + 1) {
            c->tile_len[i]++;
        } else {
            c->tile_first[c->n_tiles] = (int32_t)t;
            c->tile_len[c->n_tiles++] = 1;
        }
    }
}

static void add_bias(float *y, const float *b, int64_t T, int64_t n) {
    if (!b) return;
    for (int64_t t = 0; t < T; t++) kern_add(y + t * n, b, n);
}

/*
 * Kernel choice by role, so that a token's result never depends on what else shares its pass: the
 * batched panel kernels and the 1x1 dot sum in different orders, and a sequence decoded next to
 * three others must give exactly what it gives alone.  Prompt runs (2+ tokens of one sequence in
 * the pass) use the panel kernels, lone tokens (decode steps) the 1x1 dot; a matmul over a mixed
 * pass is done in segments of consecutive tokens with the same role (the scheduler puts decode
 * tokens first, so usually one or two segments: the weights are read once per segment).
 */
static void roles_of(model_ctx *c, int64_t T) {
    for (int64_t t = 0; t < T; t++) {
        int64_t same = 0;
        for (int64_t u = 0; u < T && same < 2; u++) same += c->bseq[u] == c->bseq[t];
        c->brole[t] = same >= 2;
    }
}

static void matmul_by_role(model_ctx *c, const kern_mat *W, const float *X, int64_t T, float *Y, int64_t ldy) {
    for (int64_t t0 = 0; t0 < T;) {
        int64_t t1 = t0 + 1;
        while (t1 < T && c->brole[t1] == c->brole[t0]) t1++;
        kern_matmul_ex(c->pool, W, X + t0 * W->k, t1 - t0, Y + t0 * ldy, ldy, c->act, c->brole[t0]);
        t0 = t1;
    }
}

/*
 * One pass over T <= n_batch tokens whose positions and sequences are in c->bpos / c->bseq.
 * Outputs, any of them NULL to skip: embd gets every row's final normed hidden state (T rows of
 * D); logits gets one row of V per token with want[t] (all tokens when want is NULL), packed in
 * token order.  Returns the number of logits rows written.
 */
static int64_t forward_batch(model_ctx *c, const int32_t *tokens, int64_t T, float *logits,
                             const bool *want, float *embd) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t D = hp->n_embd, F = hp->n_ff, H = hp->n_head, Hkv = hp->n_head_kv,
                  d = hp->head_dim, qd = H * d, kvd = Hkv * d, half = hp->n_rot / 2;
    uint64_t t_ph = c->profile ? time_now_ns() : 0;
    if (c->profile) c->prof_tokens += (uint64_t)T;

    for (int64_t t = 0; t < T; t++) kern_get_row(&m->tok_embd, tokens[t], c->x + t * D);
    roles_of(c, T);
    tiles_of(c, T);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            double theta = (double)c->bpos[t] * c->inv_freq[i];
            c->rope_cs[(t * half + i) * 2] = (float)cos(theta);
            c->rope_cs[(t * half + i) * 2 + 1] = (float)sin(theta);
        }
    prof_mark(c, &t_ph, MODEL_PROF_EMBD);

    for (int64_t l = 0; l < hp->n_layer; l++) {
        const model_layer *L = &m->layers[l];
        for (int64_t t = 0; t < T; t++) kern_rmsnorm(c->xn + t * D, c->x + t * D, L->attn_norm, D, hp->rms_eps);
        prof_mark(c, &t_ph, MODEL_PROF_NORM);
        matmul_by_role(c, &L->wq, c->xn, T, c->q, qd);
        matmul_by_role(c, &L->wk, c->xn, T, c->k, kvd);
        matmul_by_role(c, &L->wv, c->xn, T, c->v, kvd);
        prof_weights(c, MODEL_PROF_QKV, &L->wq), prof_weights(c, MODEL_PROF_QKV, &L->wk), prof_weights(c, MODEL_PROF_QKV, &L->wv);
        prof_mark(c, &t_ph, MODEL_PROF_QKV);
        add_bias(c->q, L->bq, T, qd);
        add_bias(c->k, L->bk, T, kvd);
        add_bias(c->v, L->bv, T, kvd);
        prof_mark(c, &t_ph, MODEL_PROF_RESID);
        for (int64_t t = 0; t < T; t++) {
            const float *cs = c->rope_cs + t * half * 2;
            for (int64_t h = 0; h < H; h++) rope_apply(c->q + t * qd + h * d, cs, hp->n_rot, hp->neox_rope);
            for (int64_t h = 0; h < Hkv; h++) rope_apply(c->k + t * kvd + h * d, cs, hp->n_rot, hp->neox_rope);
            uint64_t at = cache_off(c, l, c->bseq[t]) + (uint64_t)c->bpos[t] * c->kv_row;
            c->kv_ops->from_float(c->k + t * kvd, c->k_cache + at, kvd);
            c->kv_ops->from_float(c->v + t * kvd, c->v_cache + at, kvd);
        }
        prof_mark(c, &t_ph, MODEL_PROF_ROPE);
        /* every token's K/V is in the cache before any token attends, so a sequence's tokens in
         * this pass see each other (causally, by position) */
        const int64_t groups = c->n_lone * Hkv, nth = kern_pool_size(c->pool);
        attn_task_ctx a = { .c = c, .layer = l, .nsub = groups == 0 || groups >= nth ? 1 : (nth + groups - 1) / groups };
        atomic_init(&a.next, 0);
        kern_pool_run(c->pool, attn_task, &a);
        prof_mark(c, &t_ph, MODEL_PROF_ATTN);
        matmul_by_role(c, &L->wo, c->att, T, c->xn, D);
        prof_weights(c, MODEL_PROF_WO, &L->wo);
        prof_mark(c, &t_ph, MODEL_PROF_WO);
        kern_add(c->x, c->xn, T * D);
        prof_mark(c, &t_ph, MODEL_PROF_RESID);

        for (int64_t t = 0; t < T; t++) kern_rmsnorm(c->xn + t * D, c->x + t * D, L->ffn_norm, D, hp->rms_eps);
        prof_mark(c, &t_ph, MODEL_PROF_NORM);
        matmul_by_role(c, &L->w_gate, c->xn, T, c->gate, F);
        matmul_by_role(c, &L->w_up, c->xn, T, c->up, F);
        prof_weights(c, MODEL_PROF_GATE_UP, &L->w_gate), prof_weights(c, MODEL_PROF_GATE_UP, &L->w_up);
        prof_mark(c, &t_ph, MODEL_PROF_GATE_UP);
        kern_swiglu(c->gate, c->up, T * F);
        prof_mark(c, &t_ph, MODEL_PROF_SWIGLU);
        matmul_by_role(c, &L->w_down, c->gate, T, c->xn, D);
        prof_weights(c, MODEL_PROF_DOWN, &L->w_down);
        prof_mark(c, &t_ph, MODEL_PROF_DOWN);
        kern_add(c->x, c->xn, T * D);
        prof_mark(c, &t_ph, MODEL_PROF_RESID);
    }

    if (embd)
        for (int64_t t = 0; t < T; t++) kern_rmsnorm(embd + t * D, c->x + t * D, m->output_norm, D, hp->rms_eps);
    if (!logits) return 0;
    /* the wanted rows, normed and packed at the front of xn (row j <= t, read from x: no overlap) */
    int64_t rows = 0;
    for (int64_t t = 0; t < T; t++)
        if (!want || want[t]) kern_rmsnorm(c->xn + rows++ * D, c->x + t * D, m->output_norm, D, hp->rms_eps);
    prof_mark(c, &t_ph, MODEL_PROF_NORM);
    /* logits rows always with the 1x1 dot: a sequence's next-token logits must not depend on how
     * many other sequences asked for theirs in the same pass */
    if (rows) kern_matmul_ex(c->pool, &m->output, c->xn, rows, logits, hp->n_vocab, c->act, 0);
    if (rows) prof_weights(c, MODEL_PROF_LOGITS, &m->output);
    prof_mark(c, &t_ph, MODEL_PROF_LOGITS);
    return rows;
}

static int check_tokens(const model_ctx *c, const int32_t *tokens, int64_t n, seek_err *err) {
    const model_hparams *hp = &c->m->hp;
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return err_set(err, SEEK_EINVAL, "token id %d is outside the vocabulary (0..%lld)",
                           tokens[i], (long long)hp->n_vocab - 1);
    return 0;
}

int model_eval(model_ctx *c, const int32_t *tokens, int64_t n, int64_t pos, float *logits,
               bool all_logits, seek_err *err) {
    const model_hparams *hp = &c->m->hp;
    if (n < 1) return err_set(err, SEEK_EINVAL, "no tokens to evaluate");
    if (pos < 0 || pos + n > c->n_ctx)
        return err_set(err, SEEK_EINVAL, "context is full: %lld + %lld tokens exceed the context size %lld",
                       (long long)pos, (long long)n, (long long)c->n_ctx);
    if (check_tokens(c, tokens, n, err)) return -1;
    for (int64_t done = 0; done < n; done += c->n_batch) {
        int64_t T = n - done < c->n_batch ? n - done : c->n_batch;
        bool last = done + T == n;
        for (int64_t t = 0; t < T; t++) {
            c->bpos[t] = pos + done + t;
            c->bseq[t] = 0;
            c->want[t] = all_logits || (last && t == T - 1);
        }
        if (!all_logits && !last) {
            /* only the final batch's last row is wanted; earlier batches fill the cache */
            forward_batch(c, tokens + done, T, NULL, NULL, NULL);
            continue;
        }
        float *out = all_logits ? logits + done * hp->n_vocab : logits;
        forward_batch(c, tokens + done, T, out, c->want, NULL);
    }
    return 0;
}

/* Validates a multi-sequence batch and loads chunk [done, done+T) into bpos / bseq. */
static int check_batch(const model_ctx *c, const int32_t *tokens, const int32_t *pos, const int32_t *seq,
                       int64_t n, seek_err *err) {
    if (n < 1) return err_set(err, SEEK_EINVAL, "no tokens to evaluate");
    if (check_tokens(c, tokens, n, err)) return -1;
    for (int64_t i = 0; i < n; i++) {
        if (seq[i] < 0 || seq[i] >= c->n_seq)
            return err_set(err, SEEK_EINVAL, "sequence %d is out of range (0..%lld)", seq[i], (long long)c->n_seq - 1);
        if (pos[i] < 0 || pos[i] >= c->n_ctx)
            return err_set(err, SEEK_EINVAL, "context is full: position %d of sequence %d is past the context size %lld",
                           pos[i], seq[i], (long long)c->n_ctx);
    }
    return 0;
}

static void load_chunk(model_ctx *c, const int32_t *pos, const int32_t *seq, int64_t done, int64_t T) {
    for (int64_t t = 0; t < T; t++) {
        c->bpos[t] = pos[done + t];
        c->bseq[t] = seq[done + t];
    }
}

int model_eval_batch(model_ctx *c, const int32_t *tokens, const int32_t *pos, const int32_t *seq, int64_t n,
                     float *logits, const bool *want_logits, seek_err *err) {
    if (check_batch(c, tokens, pos, seq, n, err)) return -1;
    int64_t rows = 0;
    for (int64_t done = 0; done < n; done += c->n_batch) {
        int64_t T = n - done < c->n_batch ? n - done : c->n_batch;
        load_chunk(c, pos, seq, done, T);
        rows += forward_batch(c, tokens + done, T, logits ? logits + rows * c->m->hp.n_vocab : NULL,
                              want_logits ? want_logits + done : NULL, NULL);
    }
    return 0;
}

int model_eval_embd(model_ctx *c, const int32_t *tokens, const int32_t *pos, const int32_t *seq, int64_t n,
                    float *embd, seek_err *err) {
    if (check_batch(c, tokens, pos, seq, n, err)) return -1;
    for (int64_t done = 0; done < n; done += c->n_batch) {
        int64_t T = n - done < c->n_batch ? n - done : c->n_batch;
        load_chunk(c, pos, seq, done, T);
        forward_batch(c, tokens + done, T, NULL, NULL, embd + done * c->m->hp.n_embd);
    }
    return 0;
}
