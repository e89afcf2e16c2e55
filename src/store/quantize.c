/*
 * quantize.c - the mix table, llama.cpp's per-tensor type rule, and the streaming converter
 * behind `seek quantize`.  See quantize.h for the rule in words.
 *
 * Data flow of store_quantize_ex: open (mmap) the input -> check every tensor is F32/F16/BF16
 * -> decide each tensor's output type -> set up a gguf_writer with the input's metadata plus
 * general.file_type / general.quantization_version -> add every tensor with a fill callback
 * -> gguf_writer_write() calls the callbacks one tensor at a time; each converts rows to float
 * (kern_traits(in)->to_float) and quantizes them (kern_traits(out)->from_float), rows split
 * across the threads of one kern_pool.  Only one output tensor is in memory at a time.
 */
#include "quantize.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../kern/kern.h"

/* ---- the mix table ------------------------------------------------------------------------ */

/* llama.cpp's LLAMA_FTYPE_* numbers (llama.h). */
enum {
    FT_ALL_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15,
    FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_BF16 = 32,
};

static const store_mix mixes[] = {
    { "Q4_0", FT_Q4_0, GGUF_TYPE_Q4_0, false },
    { "Q4_1", FT_Q4_1, GGUF_TYPE_Q4_1, false },
    { "Q5_0", FT_Q5_0, GGUF_TYPE_Q5_0, false },
    { "Q5_1", FT_Q5_1, GGUF_TYPE_Q5_1, false },
    { "Q8_0", FT_Q8_0, GGUF_TYPE_Q8_0, false },
    { "Q2_K", FT_Q2_K, GGUF_TYPE_Q2_K, false },
    { "Q3_K_S", FT_Q3_K_S, GGUF_TYPE_Q3_K, false },
    { "Q3_K_M", FT_Q3_K_M, GGUF_TYPE_Q3_K, false },
    { "Q3_K_L", FT_Q3_K_L, GGUF_TYPE_Q3_K, false },
    { "Q4_K_S", FT_Q4_K_S, GGUF_TYPE_Q4_K, false },
    { "Q4_K_M", FT_Q4_K_M, GGUF_TYPE_Q4_K, false },
    { "Q5_K_S", FT_Q5_K_S, GGUF_TYPE_Q5_K, false },
    { "Q5_K_M", FT_Q5_K_M, GGUF_TYPE_Q5_K, false },
    { "Q6_K", FT_Q6_K, GGUF_TYPE_Q6_K, false },
    { "F16", FT_F16, GGUF_TYPE_F16, false },
    { "BF16", FT_BF16, GGUF_TYPE_BF16, false },
    { "F32", FT_ALL_F32, GGUF_TYPE_F32, false },
    /* pure: one type for every quantizable tensor, output and token_embd included */
    { "Q2_K_PURE", FT_Q2_K, GGUF_TYPE_Q2_K, true },
    { "Q3_K", FT_Q3_K_S, GGUF_TYPE_Q3_K, true },
    { "Q4_K", FT_Q4_K_S, GGUF_TYPE_Q4_K, true },
    { "Q5_K", FT_Q5_K_S, GGUF_TYPE_Q5_K, true },
};
#define N_MIXES ((int)(sizeof mixes / sizeof mixes[0]))

const store_mix *store_mix_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_MIXES; i++)
        if (strcasecmp(mixes[i].name, name) == 0) return &mixes[i];
    return NULL;
}

const store_mix *store_mix_at(int i) {
    return i >= 0 && i < N_MIXES ? &mixes[i] : NULL;
}

const char *store_ftype_name(uint32_t file_type) {
    static const char *const names[] = {
        [0] = "F32",      [1] = "F16",     [2] = "Q4_0",    [3] = "Q4_1",    [7] = "Q8_0",
        [8] = "Q5_0",     [9] = "Q5_1",    [10] = "Q2_K",   [11] = "Q3_K_S", [12] = "Q3_K_M",
        [13] = "Q3_K_L",  [14] = "Q4_K_S", [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M",
        [18] = "Q6_K",    [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS",
        [23] = "IQ3_XXS", [24] = "IQ1_S",  [25] = "IQ4_NL", [26] = "IQ3_S",  [27] = "IQ3_M",
        [28] = "IQ2_S",   [29] = "IQ2_M",  [30] = "IQ4_XS", [31] = "IQ1_M",  [32] = "BF16",
        [36] = "TQ1_0",   [37] = "TQ2_0",  [38] = "MXFP4_MOE",
    };
    if (file_type >= sizeof names / sizeof names[0]) return NULL;
    return names[file_type];
}

/* ---- the model facts the rule needs -------------------------------------------------------- */

static int get_arch_u32(const gguf_file *f, const char *arch, const char *suffix, uint32_t *out,
                        seek_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_u32(f, key, out, err);
}

int store_qmodel_from_file(const gguf_file *f, store_qmodel *m, seek_err *err) {
    memset(m, 0, sizeof *m);
    gguf_str s;
    if (gguf_get_str(f, "general.architecture", &s, err) != 0) return -1;
    gguf_str_copy(s, m->arch, sizeof m->arch);
    uint32_t v;
    if (get_arch_u32(f, m->arch, "block_count", &v, err) != 0) return -1;
    if (v == 0 || v > 100000) return err_set(err, SEEK_EFORMAT, "%s.block_count = %u", m->arch, v);
    m->n_layer = (int)v;
    if (get_arch_u32(f, m->arch, "attention.head_count", &v, err) != 0) return -1;
    m->n_head = (int)v;
    m->n_head_kv = m->n_head;
    if (get_arch_u32(f, m->arch, "attention.head_count_kv", &v, NULL) == 0) m->n_head_kv = (int)v;
    if (get_arch_u32(f, m->arch, "expert_count", &v, NULL) == 0) m->n_expert = (int)v;
    if (m->n_head <= 0 || m->n_head_kv <= 0 || m->n_head > 1 << 20 || m->n_head_kv > m->n_head)
        return err_set(err, SEEK_EFORMAT, "bad head counts %d / %d", m->n_head, m->n_head_kv);
    m->has_output = gguf_find_tensor(f, "output.weight") != NULL;
    return 0;
}

/* ---- the per-tensor rule ------------------------------------------------------------------- */

int store_tensor_layer(const char *name) {
    if (strncmp(name, "blk.", 4) != 0 || !isdigit((unsigned char)name[4])) return -1;
    long v = 0;
    const char *p = name + 4;
    while (isdigit((unsigned char)*p) && v < 1000000) v = v * 10 + (*p++ - '0');
    return *p == '.' ? (int)v : -1;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

bool store_tensor_quantizable(const char *name, uint32_t n_dims) {
    return n_dims >= 2 && ends_with(name, "weight") && !strstr(name, "_norm.weight") &&
           !strstr(name, "ffn_gate_inp.weight");
}

static bool is_quantized(uint32_t t) {
    return t != GGUF_TYPE_F32 && t != GGUF_TYPE_F16 && t != GGUF_TYPE_BF16;
}

/* llama.cpp's "more bits" layers: the first and last eighth, and every third one between. */
static bool use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static uint32_t blck_of(uint32_t type) {
    uint32_t be = 0, bb = 0;
    if (!gguf_type_geometry(type, &be, &bb)) return 0;
    return be;
}

enum tcat { CAT_OTHER, CAT_OUTPUT, CAT_TOKEN_EMBD, CAT_ATTN_V, CAT_ATTN_QKV, CAT_ATTN_OUTPUT,
            CAT_FFN_DOWN, CAT_ATTN_K };

static enum tcat category(const char *name) {
    if (strcmp(name, "output.weight") == 0) return CAT_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0) return CAT_TOKEN_EMBD;
    if (strstr(name, "attn_qkv.weight")) return CAT_ATTN_QKV;
    if (strstr(name, "attn_v.weight") || strstr(name, "attn_kv_b.weight")) return CAT_ATTN_V;
    if (strstr(name, "attn_k.weight")) return CAT_ATTN_K;
    if (strstr(name, "attn_output.weight")) return CAT_ATTN_OUTPUT;
    if (strstr(name, "ffn_down")) return CAT_FFN_DOWN;
    return CAT_OTHER;
}

/* The mix rules proper, before the shape fallback (llama.cpp: llama_tensor_get_type_impl). */
static uint32_t mix_rule(const store_qmodel *m, const store_mix *mix, const char *name,
                         const int64_t *ne, int il) {
    const uint32_t ft = mix->file_type;
    const int n = m->n_layer;
    const int n_gqa = m->n_head_kv > 0 ? m->n_head / m->n_head_kv : 1;
    const bool falcon = strcmp(m->arch, "falcon") == 0;
    /* llama.cpp's LLM_TYPE_70B: 80 layers with grouped-query attention (llama, qwen2). */
    const bool is_70b = n == 80 && n_gqa > 1;
    uint32_t t = mix->base_type;
    enum tcat cat = category(name);
    if (il < 0) il = 0;

    if (cat == CAT_OUTPUT || (!m->has_output && cat == CAT_TOKEN_EMBD)) {
        if (falcon || ne[0] % blck_of(t) != 0) return GGUF_TYPE_Q8_0;
        return t == GGUF_TYPE_Q8_0 ? t : GGUF_TYPE_Q6_K;
    }
    switch (cat) {
    case CAT_ATTN_V:
        if (ft == FT_Q2_K) t = n_gqa >= 4 ? GGUF_TYPE_Q4_K : GGUF_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M) t = il < 2 ? GGUF_TYPE_Q5_K : GGUF_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = GGUF_TYPE_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(il, n)) t = GGUF_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && il < 4) t = GGUF_TYPE_Q5_K;
        if (is_70b && (t == GGUF_TYPE_Q3_K || t == GGUF_TYPE_Q4_K)) t = GGUF_TYPE_Q5_K;
        if (m->n_expert == 8) t = GGUF_TYPE_Q8_0;
        break;
    case CAT_ATTN_K:
        if (m->n_expert == 8) t = GGUF_TYPE_Q8_0;
        break;
    case CAT_FFN_DOWN:
        if (ft == FT_Q2_K) t = GGUF_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = il < n / 16 ? GGUF_TYPE_Q5_K
              : (!falcon || use_more_bits(il, n)) ? GGUF_TYPE_Q4_K : GGUF_TYPE_Q3_K;
        else if (ft == FT_Q3_K_L) t = falcon ? GGUF_TYPE_Q4_K : GGUF_TYPE_Q5_K;
        else if (ft == FT_Q4_K_M) {
            if (falcon)
                t = il < n / 16 ? GGUF_TYPE_Q6_K
                  : use_more_bits(il, n) ? GGUF_TYPE_Q5_K : GGUF_TYPE_Q4_K;
            else if (use_more_bits(il, n)) t = GGUF_TYPE_Q6_K;
        } else if (ft == FT_Q5_K_M && use_more_bits(il, n)) t = GGUF_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && !falcon && il < n / 8) t = GGUF_TYPE_Q5_K;
        break;
    case CAT_ATTN_OUTPUT:
        if (!falcon) {
            if (m->n_expert == 8) {
                if (ft == FT_Q2_K || ft == FT_Q3_K_S || ft == FT_Q3_K_M || ft == FT_Q4_K_S ||
                    ft == FT_Q4_K_M)
                    t = GGUF_TYPE_Q5_K;
            } else if (ft == FT_Q2_K) t = GGUF_TYPE_Q3_K;
            else if (ft == FT_Q3_K_M) t = GGUF_TYPE_Q4_K;
            else if (ft == FT_Q3_K_L) t = GGUF_TYPE_Q5_K;
        } else if (ft == FT_Q3_K_L) {
            t = GGUF_TYPE_Q4_K;
        }
        break;
    case CAT_ATTN_QKV:
        if (ft == FT_Q3_K_M || ft == FT_Q3_K_L) t = GGUF_TYPE_Q4_K;
        else if (ft == FT_Q4_K_M) t = GGUF_TYPE_Q5_K;
        else if (ft == FT_Q5_K_M) t = GGUF_TYPE_Q6_K;
        /* llama.cpp also counts fused QKV as an attn_v tensor, but applies the attn_v rules
         * only to names matching attn_v; the QKV branch above is what decides its type. */
        break;
    default:
        break;
    }
    return t;
}

int store_tensor_type(const store_qmodel *m, const store_mix *mix, const char *name,
                      uint32_t n_dims, const int64_t *ne, int i_layer, bool *fell_back,
                      seek_err *err) {
    if (fell_back) *fell_back = false;
    if (!store_tensor_quantizable(name, n_dims)) return GGUF_TYPE_F32;
    uint32_t t = mix->base_type;
    if (!is_quantized(t)) return (int)t;
    if (!mix->pure) t = mix_rule(m, mix, name, ne, i_layer);

    uint32_t blck = blck_of(t);
    if (blck == 0) return err_set(err, SEEK_EUNSUP, "%s: type %s unknown", name, gguf_type_name(t));
    if (ne[0] % blck == 0) return (int)t;

    /* Shape fallback: a row length the chosen block does not divide (llama.cpp:
     * tensor_type_fallback). */
    uint32_t fb;
    switch (t) {
    case GGUF_TYPE_Q2_K:
    case GGUF_TYPE_Q3_K: fb = GGUF_TYPE_Q4_0; break;
    case GGUF_TYPE_Q4_K: fb = GGUF_TYPE_Q5_0; break;
    case GGUF_TYPE_Q5_K: fb = GGUF_TYPE_Q5_1; break;
    case GGUF_TYPE_Q6_K: fb = GGUF_TYPE_Q8_0; break;
    default:
        return err_set(err, SEEK_EUNSUP,
                       "%s: row length %lld is not a multiple of %u (required by %s) and %s has "
                       "no fallback type", name, (long long)ne[0], blck, gguf_type_name(t),
                       gguf_type_name(t));
    }
    if (ne[0] % blck_of(fb) != 0) fb = GGUF_TYPE_F16;
    if (fell_back) *fell_back = true;
    return (int)fb;
}

/* ---- the converter ------------------------------------------------------------------------ */

/* One output tensor: where its input is and what it becomes.  The fill callback's context. */
typedef struct qjob {
    const gguf_tensor *src;
    char name[256];
    uint32_t out_type;
    bool fell_back;
    int64_t n_rows;      /* ne1 * ne2 * ne3 */
    uint64_t out_row_bytes;
    /* shared by all jobs of one run */
    kern_pool *pool;
    bool verbose;
    int index, count;
} qjob;

typedef struct qrun {
    const qjob *job;
    uint8_t *dst;
    _Atomic bool failed; /* a thread could not get its row buffer */
} qrun;

/* Hot loop of the converter, one share of the rows per pool thread: source row -> floats ->
 * output type, through the reference traits (F32/F16/BF16 in, any type with a quantizer out). */
static void qrun_task(void *arg, int ith, int nth) {
    qrun *q = arg;
    const qjob *j = q->job;
    const int64_t k = j->src->ne[0];
    int64_t r0, r1;
    kern_split(j->n_rows, 1, ith, nth, &r0, &r1);
    if (r0 >= r1) return;
    float *buf = malloc((size_t)k * sizeof(float));
    if (!buf) {
        atomic_store(&q->failed, true);
        return;
    }
    kern_to_float_fn to_float = kern_traits(j->src->type)->to_float;
    kern_from_float_fn from_float = kern_traits(j->out_type)->from_float;
    const uint8_t *src = j->src->data;
    for (int64_t r = r0; r < r1; r++) {
        to_float(src + (uint64_t)r * j->src->nb[1], buf, k);
        from_float(buf, q->dst + (uint64_t)r * j->out_row_bytes, k);
    }
    free(buf);
}

/* Drops a converted tensor's pages of the input mapping from this process, so the resident
 * size stays at about one tensor rather than growing to the whole input file.  The input comes
 * from gguf_open(), a read-only MAP_PRIVATE file mapping that is never written, so dropped pages
 * are simply read from the file again if touched; only whole pages inside the tensor are
 * released. */
static void release_source(const gguf_tensor *t) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || t->nbytes == 0) return;
    uintptr_t a = (uintptr_t)t->data, b = a + t->nbytes;
    a = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    b &= ~((uintptr_t)page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

static int qjob_fill(void *ctx, void *dst, uint64_t nbytes, seek_err *err) {
    qjob *j = ctx;
    const gguf_tensor *s = j->src;
    if (nbytes != j->out_row_bytes * (uint64_t)j->n_rows)
        return err_set(err, SEEK_EINVAL, "%s: writer asked for %llu bytes, expected %llu", j->name,
                       (unsigned long long)nbytes,
                       (unsigned long long)(j->out_row_bytes * (uint64_t)j->n_rows));
    uint64_t t0 = time_now_ns();
    if (s->type == j->out_type) {
        memcpy(dst, s->data, nbytes);
    } else {
        /* Split rows across the pool; tiny tensors are not worth waking it. */
        qrun q = { .job = j, .dst = dst };
        if (j->n_rows * s->ne[0] < (int64_t)1 << 16)
            qrun_task(&q, 0, 1);
        else
            kern_pool_run(j->pool, qrun_task, &q);
        if (atomic_load(&q.failed)) return err_set(err, SEEK_ENOMEM, "%s: out of memory", j->name);
    }
    release_source(s);
    if (j->verbose) {
        double ms = (double)(time_now_ns() - t0) / 1e6;
        char shape[96];
        int o = snprintf(shape, sizeof shape, "[%lld", (long long)s->ne[0]);
        for (uint32_t d = 1; d < s->n_dims && o < (int)sizeof shape; d++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, " x %lld", (long long)s->ne[d]);
        if (o < (int)sizeof shape - 1) snprintf(shape + o, sizeof shape - (size_t)o, "]");
        fprintf(stderr, "[%4d/%4d] %-32s %-5s %-16s -> %-5s%s %8.2f MB -> %8.2f MB (%.0f ms)\n",
                j->index + 1, j->count, j->name, gguf_type_name(s->type), shape,
                gguf_type_name(j->out_type), j->fell_back ? " (shape fallback)" : "",
                (double)s->nbytes / 1e6, (double)nbytes / 1e6, ms);
    }
    return 0;
}

/* llama.cpp's tensor order: by layer (-1 for non-block tensors, so they come first), then
 * by name. */
static int cmp_tensor_order(const void *a, const void *b) {
    const qjob *x = a, *y = b;
    int lx = store_tensor_layer(x->name), ly = store_tensor_layer(y->name);
    if (lx != ly) return lx < ly ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int store_quantize_ex(const char *in_path, const char *out_path, const char *type_name,
                      const store_quantize_opts *opts, store_quantize_stats *stats, seek_err *err) {
    store_quantize_opts o = opts ? *opts : (store_quantize_opts){ 0 };
    store_quantize_stats st = { 0 };
    uint64_t t_start = time_now_ns();
    int rc = -1;
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    qjob *jobs = NULL;
    kern_pool *pool = NULL;

    const store_mix *mix = store_mix_find(type_name);
    if (!mix) {
        char names[512];
        size_t len = 0;
        names[0] = 0;
        for (int i = 0; i < N_MIXES && len < sizeof names; i++)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? " " : "",
                                    mixes[i].name);
        return err_set(err, SEEK_EINVAL, "unknown quantization type '%s' (known: %s)",
                       type_name ? type_name : "", names);
    }
    int n_threads = o.n_threads > 0 ? o.n_threads : online_cpus();
    if (n_threads > 256) n_threads = 256;

    pool = kern_pool_new(n_threads, err);
    if (!pool) goto done;
    f = gguf_open(in_path, err);
    if (!f) {
        err_prefix(err, "%s", in_path);
        goto done;
    }
    store_qmodel m;
    if (store_qmodel_from_file(f, &m, err) != 0) {
        err_prefix(err, "%s", in_path);
        goto done;
    }

    uint64_t nt = gguf_n_tensors(f);
    jobs = calloc(nt ? nt : 1, sizeof *jobs);
    if (!jobs) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        qjob *j = &jobs[i];
        j->src = t;
        if (t->name.len >= sizeof j->name) {
            err_set(err, SEEK_EUNSUP, "%s: tensor name of %llu bytes is too long", in_path,
                    (unsigned long long)t->name.len);
            goto done;
        }
        gguf_str_copy(t->name, j->name, sizeof j->name);
        if (is_quantized(t->type)) {
            err_set(err, SEEK_EUNSUP,
                    "%s: tensor %s is already quantized (%s); requantizing loses quality and is "
                    "not supported: quantize from the F32/F16/BF16 model", in_path, j->name,
                    gguf_type_name(t->type));
            goto done;
        }
    }
    qsort(jobs, nt, sizeof *jobs, cmp_tensor_order);

    for (uint64_t i = 0; i < nt; i++) {
        qjob *j = &jobs[i];
        const gguf_tensor *t = j->src;
        int type = store_tensor_type(&m, mix, j->name, t->n_dims, t->ne,
                                     store_tensor_layer(j->name), &j->fell_back, err);
        if (type < 0) goto done;
        if (!store_tensor_quantizable(j->name, t->n_dims) && t->type != GGUF_TYPE_F32) {
            /* norms and biases of F16 checkpoints: F32 is what the engine reads */
            type = GGUF_TYPE_F32;
        }
        if (is_quantized((uint32_t)type)) {
            const kern_type_traits *tr = kern_traits((uint32_t)type);
            if (!tr || !tr->from_float) {
                err_set(err, SEEK_EUNSUP, "%s: no quantizer for %s in this build", j->name,
                        gguf_type_name((uint32_t)type));
                goto done;
            }
            st.n_quantized++;
        }
        if (j->fell_back) {
            st.n_fallback++;
            if (!o.quiet)
                log_warn("%s: row length %lld is not a multiple of the mix type's block; "
                         "using %s", j->name, (long long)t->ne[0], gguf_type_name((uint32_t)type));
        }
        j->out_type = (uint32_t)type;
        j->n_rows = t->ne[1] * t->ne[2] * t->ne[3];
        j->out_row_bytes = gguf_row_bytes(j->out_type, (uint64_t)t->ne[0]);
        if (j->out_row_bytes == 0) {
            err_set(err, SEEK_EUNSUP, "%s: %lld elements per row do not fit %s", j->name,
                    (long long)t->ne[0], gguf_type_name(j->out_type));
            goto done;
        }
        j->pool = pool;
        j->verbose = o.verbose;
        j->index = (int)i;
        j->count = (int)nt;
    }

    w = gguf_writer_new();
    if (!w) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        if (gguf_writer_copy_kv(w, f, gguf_kv_at(f, i)) != 0) {
            err_set(err, SEEK_ENOMEM, "copying metadata failed");
            goto done;
        }
    }
    if (gguf_writer_set_u32(w, "general.quantization_version", 2) != 0 ||
        gguf_writer_set_u32(w, "general.file_type", mix->file_type) != 0) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < nt; i++) {
        qjob *j = &jobs[i];
        uint64_t nbytes = j->out_row_bytes * (uint64_t)j->n_rows;
        if (gguf_writer_add_tensor_fn(w, j->name, j->out_type, j->src->n_dims, j->src->ne, nbytes,
                                      qjob_fill, j, err) != 0)
            goto done;
    }
    if (gguf_writer_write(w, out_path, err) != 0) {
        err_prefix(err, "%s", out_path);
        goto done;
    }

    struct stat sb;
    st.in_bytes = gguf_file_size(f);
    st.out_bytes = stat(out_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    st.n_tensors = nt;
    st.seconds = (double)(time_now_ns() - t_start) / 1e9;
    if (!o.quiet)
        fprintf(stderr, "quantized %s -> %s as %s: %.2f MB -> %.2f MB (%llu tensors, %llu "
                        "quantized, %llu shape fallbacks) in %.1f s with %d threads\n",
                in_path, out_path, mix->name, (double)st.in_bytes / 1e6,
                (double)st.out_bytes / 1e6, (unsigned long long)st.n_tensors,
                (unsigned long long)st.n_quantized, (unsigned long long)st.n_fallback, st.seconds,
                n_threads);
    rc = 0;
done:
    kern_pool_free(pool);
    if (w) gguf_writer_free(w);
    free(jobs);
    if (f) gguf_close(f);
    if (stats) *stats = st;
    return rc;
}

int store_quantize(const char *in_path, const char *out_path, const char *type_name, int n_threads,
                   seek_err *err) {
    store_quantize_opts o = { .n_threads = n_threads, .verbose = log_verbosity >= 1 };
    return store_quantize_ex(in_path, out_path, type_name, &o, NULL, err);
}
