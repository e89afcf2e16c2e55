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
 * Memory: the KV cache (F32, [layer][position][Hkv*d] for K and for V) and all scratch are
 * allocated once in model_ctx_new; model_eval allocates nothing.
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct model_ctx {
    const model *m;
    kern_pool *pool;
    int64_t n_ctx;   /* C: positions the cache holds */
    int64_t n_batch; /* largest T per pass */
    float *k_cache;  /* (n_layer, C, Hkv*d) */
    float *v_cache;  /* (n_layer, C, Hkv*d) */
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
    float *scores;   /* (threads, C) attention weights, one row per thread */
    void *act;       /* activation quantization scratch for kern_matmul */
    uint64_t kv_bytes, scratch_bytes;
};

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

model_ctx *model_ctx_new(const model *m, int64_t n_ctx, int64_t n_batch, int n_threads, seek_err *err) {
    const model_hparams *hp = &m->hp;
    if (n_ctx < 1 || n_ctx > (1 << 22)) {
        err_set(err, SEEK_EINVAL, "context size %lld is out of range", (long long)n_ctx);
        return NULL;
    }
    if (n_batch < 1) n_batch = 1;
    if (n_batch > n_ctx) n_batch = n_ctx;
    model_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    c->pool = kern_pool_new(n_threads, err);
    if (!c->pool) {
        free(c);
        return NULL;
    }
    const int64_t D = hp->n_embd, F = hp->n_ff, qd = hp->n_head * hp->head_dim,
                  kvd = hp->n_head_kv * hp->head_dim, T = n_batch;
    uint64_t kv_elems = (uint64_t)hp->n_layer * (uint64_t)n_ctx * (uint64_t)kvd;
    c->kv_bytes = 2 * kv_elems * sizeof(float);
    c->k_cache = mem_alloc(kv_elems * sizeof(float));
    c->v_cache = mem_alloc(kv_elems * sizeof(float));

    uint64_t act = kern_matmul_scratch(m->output.type, D, T);
    for (int64_t i = 0; i < hp->n_layer; i++) {
        const model_layer *L = &m->layers[i];
        const kern_mat *mats[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (size_t j = 0; j < sizeof mats / sizeof mats[0]; j++)
            act = max_u64(act, kern_matmul_scratch(mats[j]->type, mats[j]->k, T));
    }
    int nth = kern_pool_size(c->pool);
    c->x = mem_alloc(sizeof(float) * T * D);
    c->xn = mem_alloc(sizeof(float) * T * D);
    c->q = mem_alloc(sizeof(float) * T * qd);
    c->k = mem_alloc(sizeof(float) * T * kvd);
    c->v = mem_alloc(sizeof(float) * T * kvd);
    c->att = mem_alloc(sizeof(float) * T * qd);
    c->gate = mem_alloc(sizeof(float) * T * F);
    c->up = mem_alloc(sizeof(float) * T * F);
    c->rope_cs = mem_alloc(sizeof(float) * T * hp->n_rot);
    c->inv_freq = mem_alloc(sizeof(double) * (size_t)(hp->n_rot / 2));
    c->scores = mem_alloc(sizeof(float) * (size_t)nth * n_ctx);
    c->act = act ? mem_alloc(act) : NULL;
    c->scratch_bytes = sizeof(float) * (uint64_t)T * (2 * D + 2 * qd + 2 * kvd + 2 * F + hp->n_rot) +
                       sizeof(float) * (uint64_t)nth * n_ctx + act;
    if (!c->k_cache || !c->v_cache || !c->x || !c->xn || !c->q || !c->k || !c->v || !c->att ||
        !c->gate || !c->up || !c->rope_cs || !c->inv_freq || !c->scores || (act && !c->act)) {
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
    mem_free(c->inv_freq);
    mem_free(c->scores);
    mem_free(c->act);
    free(c);
}

uint64_t model_ctx_kv_bytes(const model_ctx *c) { return c->kv_bytes; }
uint64_t model_ctx_scratch_bytes(const model_ctx *c) { return c->scratch_bytes; }
int64_t model_ctx_n_ctx(const model_ctx *c) { return c->n_ctx; }

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
    int64_t layer, T, pos;
} attn_task_ctx;

/* Causal attention for (token, head) pairs split across threads. */
static void attn_task(void *p, int ith, int nth) {
    attn_task_ctx *a = p;
    model_ctx *c = a->c;
    const model_hparams *hp = &c->m->hp;
    const int64_t H = hp->n_head, d = hp->head_dim, qd = H * d, kvd = hp->n_head_kv * d;
    const int64_t group = H / hp->n_head_kv;
    const float scale = 1.0f / sqrtf((float)d);
    const float *kc = c->k_cache + (uint64_t)a->layer * c->n_ctx * kvd;
    const float *vc = c->v_cache + (uint64_t)a->layer * c->n_ctx * kvd;
    float *s = c->scores + (uint64_t)ith * c->n_ctx;
    int64_t lo, hi;
    kern_split(a->T * H, 1, ith, nth, &lo, &hi);
    for (int64_t idx = lo; idx < hi; idx++) {
        int64_t t = idx / H, h = idx % H, kh = h / group, p_last = a->pos + t;
        const float *qv = c->q + t * qd + h * d;
        for (int64_t j = 0; j <= p_last; j++) s[j] = kern_dot_f32(qv, kc + j * kvd + kh * d, d) * scale;
        kern_softmax(s, p_last + 1);
        float *out = c->att + t * qd + h * d;
        memset(out, 0, sizeof(float) * (size_t)d);
        for (int64_t j = 0; j <= p_last; j++) kern_axpy(out, s[j], vc + j * kvd + kh * d, d);
    }
}

static void add_bias(float *y, const float *b, int64_t T, int64_t n) {
    if (!b) return;
    for (int64_t t = 0; t < T; t++) kern_add(y + t * n, b, n);
}

/* One pass over T <= n_batch tokens; logits NULL skips the output layer. */
static void forward_batch(model_ctx *c, const int32_t *tokens, int64_t T, int64_t pos,
                          float *logits, bool all_logits) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int64_t D = hp->n_embd, F = hp->n_ff, H = hp->n_head, Hkv = hp->n_head_kv,
                  d = hp->head_dim, qd = H * d, kvd = Hkv * d, half = hp->n_rot / 2;

    for (int64_t t = 0; t < T; t++) kern_get_row(&m->tok_embd, tokens[t], c->x + t * D);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            double theta = (double)(pos + t) * c->inv_freq[i];
            c->rope_cs[(t * half + i) * 2] = (float)cos(theta);
            c->rope_cs[(t * half + i) * 2 + 1] = (float)sin(theta);
        }

    for (int64_t l = 0; l < hp->n_layer; l++) {
        const model_layer *L = &m->layers[l];
        for (int64_t t = 0; t < T; t++) kern_rmsnorm(c->xn + t * D, c->x + t * D, L->attn_norm, D, hp->rms_eps);
        kern_matmul(c->pool, &L->wq, c->xn, T, c->q, qd, c->act);
        kern_matmul(c->pool, &L->wk, c->xn, T, c->k, kvd, c->act);
        kern_matmul(c->pool, &L->wv, c->xn, T, c->v, kvd, c->act);
        add_bias(c->q, L->bq, T, qd);
        add_bias(c->k, L->bk, T, kvd);
        add_bias(c->v, L->bv, T, kvd);
        float *kc = c->k_cache + (uint64_t)l * c->n_ctx * kvd;
        float *vc = c->v_cache + (uint64_t)l * c->n_ctx * kvd;
        for (int64_t t = 0; t < T; t++) {
            const float *cs = c->rope_cs + t * half * 2;
            for (int64_t h = 0; h < H; h++) rope_apply(c->q + t * qd + h * d, cs, hp->n_rot, hp->neox_rope);
            for (int64_t h = 0; h < Hkv; h++) rope_apply(c->k + t * kvd + h * d, cs, hp->n_rot, hp->neox_rope);
            memcpy(kc + (pos + t) * kvd, c->k + t * kvd, sizeof(float) * (size_t)kvd);
            memcpy(vc + (pos + t) * kvd, c->v + t * kvd, sizeof(float) * (size_t)kvd);
        }
        attn_task_ctx a = { c, l, T, pos };
        kern_pool_run(c->pool, attn_task, &a);
        kern_matmul(c->pool, &L->wo, c->att, T, c->xn, D, c->act);
        kern_add(c->x, c->xn, T * D);

        for (int64_t t = 0; t < T; t++) kern_rmsnorm(c->xn + t * D, c->x + t * D, L->ffn_norm, D, hp->rms_eps);
        kern_matmul(c->pool, &L->w_gate, c->xn, T, c->gate, F, c->act);
        kern_matmul(c->pool, &L->w_up, c->xn, T, c->up, F, c->act);
        kern_swiglu(c->gate, c->up, T * F);
        kern_matmul(c->pool, &L->w_down, c->gate, T, c->xn, D, c->act);
        kern_add(c->x, c->xn, T * D);
    }

    if (!logits) return; /* an earlier batch of a long prompt: only the cache was wanted */
    int64_t first = all_logits ? 0 : T - 1;
    for (int64_t t = first; t < T; t++) kern_rmsnorm(c->xn + t * D, c->x + t * D, m->output_norm, D, hp->rms_eps);
    kern_matmul(c->pool, &m->output, c->xn + first * D, T - first, logits, hp->n_vocab, c->act);
}

int model_eval(model_ctx *c, const int32_t *tokens, int64_t n, int64_t pos, float *logits,
               bool all_logits, seek_err *err) {
    const model_hparams *hp = &c->m->hp;
    if (n < 1) return err_set(err, SEEK_EINVAL, "no tokens to evaluate");
    if (pos < 0 || pos + n > c->n_ctx)
        return err_set(err, SEEK_EINVAL, "context is full: %lld + %lld tokens exceed the context size %lld",
                       (long long)pos, (long long)n, (long long)c->n_ctx);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return err_set(err, SEEK_EINVAL, "token id %d is outside the vocabulary (0..%lld)",
                           tokens[i], (long long)hp->n_vocab - 1);
    for (int64_t done = 0; done < n; done += c->n_batch) {
        int64_t T = n - done < c->n_batch ? n - done : c->n_batch;
        bool last = done + T == n;
        if (!all_logits && !last) {
            /* only the final batch's last row is wanted; earlier batches fill the cache */
            forward_batch(c, tokens + done, T, pos + done, NULL, false);
            continue;
        }
        float *out = all_logits ? logits + done * hp->n_vocab : logits;
        forward_batch(c, tokens + done, T, pos + done, out, all_logits);
    }
    return 0;
}
