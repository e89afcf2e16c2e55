/*
 * fit.c - the DeepSeek-R1 catalog, memory estimates and speed predictions (see fit.h).
 *
 * Catalog shapes are the distills' config.json values (hidden_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads, intermediate_size, vocab_size,
 * max_position_embeddings); head_dim = hidden_size / heads = 128 for all six.
 */
#include "fit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../kern/kern.h"
#include "../store/quantize.h"

static const fit_shape catalog[] = {
    { "1.5b", "qwen2", "DeepSeek-R1-Distill-Qwen-1.5B", 151936, 131072, 1536, 28, 12, 2, 128, 8960, false },
    { "7b", "qwen2", "DeepSeek-R1-Distill-Qwen-7B", 152064, 131072, 3584, 28, 28, 4, 128, 18944, false },
    { "8b", "llama", "DeepSeek-R1-Distill-Llama-8B", 128256, 131072, 4096, 32, 32, 8, 128, 14336, false },
    { "14b", "qwen2", "DeepSeek-R1-Distill-Qwen-14B", 152064, 131072, 5120, 48, 40, 8, 128, 13824, false },
    { "32b", "qwen2", "DeepSeek-R1-Distill-Qwen-32B", 152064, 131072, 5120, 64, 40, 8, 128, 27648, false },
    { "70b", "llama", "DeepSeek-R1-Distill-Llama-70B", 128256, 131072, 8192, 80, 64, 8, 128, 28672, false },
};

const char *const fit_quants[] = { "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16" };
const int fit_n_quants = sizeof fit_quants / sizeof fit_quants[0];

const fit_shape *fit_catalog(int i) {
    return i >= 0 && i < (int)(sizeof catalog / sizeof catalog[0]) ? &catalog[i] : NULL;
}

fit_shape fit_shape_of(const model *m, const char *tag) {
    const model_hparams *hp = &m->hp;
    fit_shape s = {
        .tag = tag, .arch = hp->arch == MODEL_ARCH_LLAMA ? "llama" : "qwen2", .source = tag,
        .n_vocab = hp->n_vocab, .n_ctx_train = hp->n_ctx_train, .n_embd = hp->n_embd, .n_layer = hp->n_layer,
        .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .n_ff = hp->n_ff,
        .tied = m->tied_output,
    };
    return s;
}

/* ---- the tensor list of a shape ----------------------------------------------------------------- */

typedef struct {
    char name[48];
    uint32_t n_dims;
    int64_t ne[2];
    int layer;
} shape_tensor;

/* Calls fn for every tensor a GGUF of this shape holds, in llama.cpp's names. */
static int for_each_tensor(const fit_shape *s, int (*fn)(void *, const shape_tensor *), void *ud) {
    const int64_t D = s->n_embd, qd = s->n_head * s->head_dim, kvd = s->n_head_kv * s->head_dim, F = s->n_ff;
    const bool qwen2 = strcmp(s->arch, "qwen2") == 0;
    shape_tensor t;
#define EMIT(nm, dims, a, b, l)                                       \
    do {                                                              \
        snprintf(t.name, sizeof t.name, "%s", nm);                     \
        t.n_dims = dims, t.ne[0] = a, t.ne[1] = b, t.layer = l;      \
        if (fn(ud, &t)) return -1;                                    \
    } while (0)
    EMIT("token_embd.weight", 2, D, s->n_vocab, -1);
    EMIT("output_norm.weight", 1, D, 1, -1);
    if (!s->tied) EMIT("output.weight", 2, D, s->n_vocab, -1);
    if (!qwen2) EMIT("rope_freqs.weight", 1, s->head_dim / 2, 1, -1);
    for (int l = 0; l < s->n_layer; l++) {
        static const struct { const char *suffix; int kind; } per_layer[] = {
            { "attn_norm.weight", 0 }, { "attn_q.weight", 1 }, { "attn_k.weight", 2 }, { "attn_v.weight", 2 },
            { "attn_output.weight", 3 }, { "attn_q.bias", 4 }, { "attn_k.bias", 5 }, { "attn_v.bias", 5 },
            { "ffn_norm.weight", 0 }, { "ffn_gate.weight", 6 }, { "ffn_up.weight", 6 }, { "ffn_down.weight", 7 },
        };
        for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++) {
            char nm[48];
            snprintf(nm, sizeof nm, "blk.%d.%s", l, per_layer[i].suffix);
            switch (per_layer[i].kind) {
            case 0: EMIT(nm, 1, D, 1, l); break;
            case 1: EMIT(nm, 2, D, qd, l); break;
            case 2: EMIT(nm, 2, D, kvd, l); break;
            case 3: EMIT(nm, 2, qd, D, l); break;
            case 4: if (qwen2) EMIT(nm, 1, qd, 1, l); break;
            case 5: if (qwen2) EMIT(nm, 1, kvd, 1, l); break;
            case 6: EMIT(nm, 2, D, F, l); break;
            case 7: EMIT(nm, 2, F, D, l); break;
            }
        }
    }
#undef EMIT
    return 0;
}

typedef struct {
    const fit_shape *s;
    const store_mix *mix;
    store_qmodel qm;
    seek_err *err;
    uint64_t file_bytes, read_bytes;
    /* per type: bytes read per token and multiply-adds per token */
    uint64_t type_read[64];
    double type_macs[64];
} tally;

static int tally_tensor(void *ud, const shape_tensor *t) {
    tally *ty = ud;
    int type = store_tensor_type(&ty->qm, ty->mix, t->name, t->n_dims, t->ne, t->layer, NULL, ty->err);
    if (type < 0) return -1;
    const kern_type_traits *tr = kern_traits((uint32_t)type);
    if (!tr) return err_set(ty->err, SEEK_EUNSUP, "%s: type %d has no kernels", t->name, type);
    uint64_t row = (uint64_t)(t->ne[0] / tr->blck) * tr->type_size;
    uint64_t bytes = row * (uint64_t)t->ne[1];
    ty->file_bytes += bytes;
    bool embd = !strcmp(t->name, "token_embd.weight");
    /* decode reads one embedding row; the output matrix (the embeddings when tied) is read whole */
    uint64_t read = embd ? (ty->s->tied ? bytes : row) : bytes;
    ty->read_bytes += read;
    if (t->n_dims == 2 && (!embd || ty->s->tied)) {
        ty->type_read[type & 63] += bytes;
        ty->type_macs[type & 63] += (double)t->ne[0] * (double)t->ne[1];
    }
    return 0;
}

static int tally_shape(const fit_shape *s, const char *mix_name, tally *ty, seek_err *err) {
    memset(ty, 0, sizeof *ty);
    ty->s = s;
    ty->err = err;
    ty->mix = store_mix_find(mix_name);
    if (!ty->mix) return err_set(err, SEEK_EINVAL, "unknown quantization '%s'", mix_name);
    snprintf(ty->qm.arch, sizeof ty->qm.arch, "%s", s->arch);
    ty->qm.n_layer = (int)s->n_layer;
    ty->qm.n_head = (int)s->n_head;
    ty->qm.n_head_kv = (int)s->n_head_kv;
    ty->qm.has_output = !s->tied;
    return for_each_tensor(s, tally_tensor, ty);
}

int fit_weight_bytes(const fit_shape *s, const char *mix, uint64_t *file_bytes, uint64_t *read_bytes,
                     seek_err *err) {
    tally ty;
    if (tally_shape(s, mix, &ty, err) != 0) return -1;
    if (file_bytes) *file_bytes = ty.file_bytes;
    if (read_bytes) *read_bytes = ty.read_bytes;
    return 0;
}

/* ---- memory ---------------------------------------------------------------------------------- */

uint64_t fit_resident_bytes(const model *m) {
    uint64_t embd = m->tok_embd.row_bytes * (uint64_t)m->tok_embd.m;
    return m->tied_output ? m->weight_bytes : m->weight_bytes - embd + m->tok_embd.row_bytes;
}

fit_memory fit_estimate_memory(const fit_shape *s, uint64_t resident_weights, int32_t n_ctx, int n_parallel) {
    fit_memory fm = { 0 };
    if (n_parallel < 1) n_parallel = 1;
    const uint64_t D = (uint64_t)s->n_embd, qd = (uint64_t)(s->n_head * s->head_dim),
                   kvd = (uint64_t)(s->n_head_kv * s->head_dim), F = (uint64_t)s->n_ff, V = (uint64_t)s->n_vocab;
    const uint64_t C = (uint64_t)n_ctx, P = (uint64_t)n_parallel, T = C * P < 512 ? C * P : 512;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t nth = nc > 0 ? (uint64_t)nc : 1;
    fm.weights = resident_weights;
    /* K and V in the cache type, every layer, every position of every sequence (model_ctx_new_multi) */
    const uint32_t kv_type = model_kv_type(s->head_dim);
    fm.kv = 2 * (uint64_t)s->n_layer * C * model_kv_row_bytes(kv_type, (int64_t)kvd) * P;
    /* one context's activation buffers for a pass of T tokens, per-thread attention scores of a
     * GQA group, per-thread prompt attention tiles (at most KERN_ATTN_TILE_ROWS rows or one
     * group) and the activation-quantization buffer; per sequence: a logits row (4V), a sampler
     * (24V) and the cached token ids (4C), as the engine and the scheduler hold them */
    const uint64_t G = (uint64_t)(s->n_head / s->n_head_kv);
    uint64_t act = kern_matmul_scratch(GGUF_TYPE_Q8_0, (int64_t)(F > D ? F : D), (int64_t)T);
    uint64_t tile = kern_attn_tile_scratch(s->head_dim, (int64_t)(G > KERN_ATTN_TILE_ROWS ? G : KERN_ATTN_TILE_ROWS));
    fm.scratch = sizeof(float) * T * (2 * D + 2 * qd + 2 * kvd + 2 * F + (uint64_t)s->head_dim) +
                 sizeof(float) * nth * G * C + nth * tile + act + T * D * sizeof(float) + P * (28 * V + 4 * C);
    /* vocabulary (token strings, hash tables, merge ranks: about 160 bytes a token) plus the
     * process itself (code, libraries, stacks): measured on the fixtures and synthetic models */
    fm.overhead = 160 * V + (24u << 20);
    fm.total = fm.weights + fm.kv + fm.scratch + fm.overhead;
    return fm;
}

uint64_t fit_available_memory(void) {
    uint64_t avail = sys_mem_available();
    const char *lim = getenv("SEEK_MEM_LIMIT");
    if (lim && *lim) {
        char *end;
        double v = strtod(lim, &end);
        double mul = 1;
        if (!strcasecmp(end, "k") || !strcasecmp(end, "kb")) mul = 1e3;
        else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb")) mul = 1e6;
        else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb")) mul = 1e9;
        else if (!strcasecmp(end, "kib")) mul = 1024.0;
        else if (!strcasecmp(end, "mib")) mul = 1048576.0;
        else if (!strcasecmp(end, "gib")) mul = 1073741824.0;
        else if (*end) v = -1; /* not a size: ignored */
        if (v > 0 && v * mul < (double)avail) avail = (uint64_t)(v * mul);
    }
    return avail;
}

int fit_verdict(uint64_t need, uint64_t available) {
    if ((double)need <= 0.8 * (double)available) return 0;
    if (need <= available) return 1;
    return 2;
}

void fit_suggest(uint64_t available, int32_t n_ctx, char *buf, size_t cap) {
    buf[0] = 0;
    for (int i = 0; fit_catalog(i); i++) {
        const fit_shape *s = fit_catalog(i);
        uint64_t resident;
        if (fit_weight_bytes(s, "Q4_K_M", NULL, &resident, NULL) != 0) continue;
        fit_memory m = fit_estimate_memory(s, resident, n_ctx, 1);
        if (fit_verdict(m.total, available) == 0)
            snprintf(buf, cap, "deepseek-r1:%s (Q4_K_M, needs %.1f GB)", s->tag, m.total / 1e9);
    }
}

/* ---- measuring the machine -------------------------------------------------------------------- */

/* A matrix of `type` big enough to stream from memory, filled with a few quantized random rows
 * repeated (the values do not matter for speed, only the layout). */
static void *make_matrix(uint32_t type, int64_t k, int64_t m, uint64_t *row_bytes) {
    const kern_type_traits *tr = kern_traits(type);
    if (!tr || !tr->from_float) return NULL;
    *row_bytes = (uint64_t)(k / tr->blck) * tr->type_size;
    uint8_t *data = mem_alloc(*row_bytes * (uint64_t)m);
    float *row = malloc(sizeof(float) * (size_t)k);
    if (!data || !row) {
        mem_free(data);
        free(row);
        return NULL;
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    const int pool = 16;
    for (int r = 0; r < pool && r < m; r++) {
        for (int64_t i = 0; i < k; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            row[i] = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5) * 0.04f;
        }
        tr->from_float(row, data + (uint64_t)r * *row_bytes, k);
    }
    for (int64_t r = pool; r < m; r++) memcpy(data + (uint64_t)r * *row_bytes, data + (uint64_t)(r % pool) * *row_bytes, *row_bytes);
    free(row);
    return data;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One kernel under test: a k-wide matrix of `type` over 192 MiB of rows (far larger than any
 * cache, as a model's matrices are, so cache hits do not flatter it). */
typedef struct {
    uint32_t type;
    kern_mat W;
    void *data, *scratch; /* W's rows (owned) and the kernel's scratch */
    double t1[9];
} bench_mat;

enum { FIT_K = 4096, FIT_NB = 64, FIT_M_PP = 8192, FIT_ROUNDS = 9 };

/* Times the decode kernel (kern_matmul at batch 1, GB/s) of every type in rounds, one pass of
 * each type per round, and keeps each type's median: a slow spell of a shared machine then hits
 * every type alike, and `seek bench`, which averages over seconds of decoding, is matched by a
 * middle reading rather than the luckiest 20 ms burst (the best of 4 over-predicted it by up to
 * 1.35x).  The prompt kernel (batch 64 over 8192 rows, GFLOP/s) is compute bound: best of 2. */
static void time_kernels(kern_pool *pool, const uint32_t *types, int n_types, fit_machine *fm) {
    bench_mat bm[8];
    int n = 0;
    float *x = mem_alloc(sizeof(float) * FIT_K * FIT_NB);
    float *y = NULL;
    int64_t y_len = (int64_t)FIT_M_PP * FIT_NB;
    for (int i = 0; i < n_types && n < 8 && x; i++) {
        const kern_type_traits *tr = kern_traits(types[i]);
        if (!tr) continue;
        int64_t m = (int64_t)((192ull << 20) / ((uint64_t)(FIT_K / tr->blck) * tr->type_size));
        uint64_t row_bytes;
        void *w = make_matrix(types[i], FIT_K, m, &row_bytes);
        void *scratch = w ? mem_alloc(kern_matmul_scratch(types[i], FIT_K, FIT_NB) + 64) : NULL;
        if (!scratch) {
            mem_free(w);
            continue;
        }
        bm[n].type = types[i];
        bm[n].W = (kern_mat){ .data = w, .type = types[i], .k = FIT_K, .m = m, .row_bytes = row_bytes };
        bm[n].data = w;
        bm[n].scratch = scratch;
        if (m > y_len) y_len = m;
        n++;
    }
    if (x) y = mem_alloc(sizeof(float) * (size_t)y_len);
    if (x && y) {
        for (int64_t i = 0; i < (int64_t)FIT_K * FIT_NB; i++) x[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
        for (int i = 0; i < n; i++) /* warm-up: page faults, thread start */
            kern_matmul(pool, &bm[i].W, x, 1, y, bm[i].W.m, bm[i].scratch);
        for (int r = 0; r < FIT_ROUNDS; r++)
            for (int i = 0; i < n; i++) {
                uint64_t t0 = time_now_ns();
                kern_matmul(pool, &bm[i].W, x, 1, y, bm[i].W.m, bm[i].scratch);
                bm[i].t1[r] = (double)(time_now_ns() - t0) / 1e9;
            }
        for (int i = 0; i < n; i++) {
            qsort(bm[i].t1, FIT_ROUNDS, sizeof(double), cmp_double);
            kern_mat Wpp = bm[i].W;
            Wpp.m = FIT_M_PP;
            double best64 = 1e30;
            for (int rep = 0; rep < 2; rep++) {
                uint64_t t0 = time_now_ns();
                kern_matmul_ex(pool, &Wpp, x, FIT_NB, y, FIT_M_PP, bm[i].scratch, 1); /* as prompts run */
                double t = (double)(time_now_ns() - t0) / 1e9;
                if (t < best64) best64 = t;
            }
            fm->kern[fm->n_kern].type = bm[i].type;
            fm->kern[fm->n_kern].gbs = (double)bm[i].W.row_bytes * (double)bm[i].W.m / bm[i].t1[FIT_ROUNDS / 2] / 1e9;
            fm->kern[fm->n_kern].gflops = 2.0 * FIT_K * (double)FIT_M_PP * FIT_NB / best64 / 1e9;
            fm->n_kern++;
        }
    }
    for (int i = 0; i < n; i++) mem_free(bm[i].data), mem_free(bm[i].scratch);
    mem_free(x);
    mem_free(y);
}

int fit_measure(fit_machine *fm, int n_threads, seek_err *err) {
    memset(fm, 0, sizeof *fm);
    fm->mem_total = sys_mem_total();
    fm->mem_available = fit_available_memory();
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    fm->n_cores = nc > 0 ? (int)nc : 1;
    if (n_threads <= 0) n_threads = fm->n_cores;
    fm->isa = kern_isa_name(kern_active_isa());
    kern_pool *pool = kern_pool_new(n_threads, err);
    if (!pool) return -1;
    fm->bw_gbs = kern_measure_bandwidth(pool, 512ull << 20, 3);
    static const uint32_t types[] = { GGUF_TYPE_Q4_K, GGUF_TYPE_Q5_K, GGUF_TYPE_Q6_K, GGUF_TYPE_Q8_0, GGUF_TYPE_F16 };
    time_kernels(pool, types, (int)(sizeof types / sizeof types[0]), fm);
    kern_pool_free(pool);
    return 0;
}

/* The measured kernel speed for a type; types not measured borrow the nearest measured one. */
static void kern_speed(const fit_machine *fm, uint32_t type, double *gbs, double *gflops) {
    *gbs = fm->bw_gbs * 0.6, *gflops = 10;
    for (int i = 0; i < fm->n_kern; i++)
        if (fm->kern[i].type == type || (i == 0 && fm->n_kern)) *gbs = fm->kern[i].gbs, *gflops = fm->kern[i].gflops;
    for (int i = 0; i < fm->n_kern; i++)
        if (fm->kern[i].type == type) *gbs = fm->kern[i].gbs, *gflops = fm->kern[i].gflops;
}

int fit_predict_speed(const fit_machine *fm, const fit_shape *s, const char *mix, fit_speed *out, seek_err *err) {
    tally ty;
    if (tally_shape(s, mix, &ty, err) != 0) return -1;
    double t_tok = 0, t_pp = 0;
    for (uint32_t type = 0; type < 64; type++) {
        if (!ty.type_read[type]) continue;
        double gbs, gflops;
        kern_speed(fm, type, &gbs, &gflops);
        t_tok += (double)ty.type_read[type] / (gbs * 1e9);
        t_pp += 2.0 * ty.type_macs[type] / (gflops * 1e9);
    }
    /* norms, RoPE, attention over a short context and thread hand-offs: measured at about 8% of
     * a decode step on the synthetic models (docs/performance.md) */
    t_tok *= 1.08;
    t_pp *= 1.08;
    out->tg_tps = t_tok > 0 ? 1.0 / t_tok : 0;
    out->pp_tps = t_pp > 0 ? 1.0 / t_pp : 0;
    return 0;
}
