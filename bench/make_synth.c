/*
 * make_synth.c - writes a synthetic, random-weight model straight into a quantized GGUF file,
 * with the shapes, metadata and per-tensor types of a real one, for benchmarks that care about
 * size and layout (memory traffic, kernel choice), not about what the model says.
 *
 *   make_synth --preset 1.5b|7b|8b|14b|mini [--arch qwen2|llama] [--layers N] [--ctx N]
 *              --type Q4_K_M|Q8_0|Q6_K|F16|... [-t THREADS] [--pool ROWS] [--seed S] OUT.gguf
 *
 * Presets (the DeepSeek-R1 distill configurations; V = vocabulary, F = FFN width):
 *   1.5b  qwen2  D 1536, 28 layers, 12 heads / 2 KV, F 8960,  V 151936, theta 1e4, eps 1e-6
 *   7b    qwen2  D 3584, 28 layers, 28 heads / 4 KV, F 18944, V 152064, theta 1e4, eps 1e-6
 *   14b   qwen2  D 5120, 48 layers, 40 heads / 8 KV, F 13824, V 152064, theta 1e6, eps 1e-5
 *   8b    llama  D 4096, 32 layers, 32 heads / 8 KV, F 14336, V 128256, theta 5e5, eps 1e-5,
 *                rope_freqs.weight (Llama 3.1 scaling: factor 8, low 1, high 4, original 8192)
 *   mini  qwen2 or llama (--arch): the test fixtures' shapes, D 256, 2 layers, 4 heads, 2 KV
 *                (llama: 1 KV, F 512, theta 5e5 and rope_freqs), F 768, V 8199
 * qwen2 has Q/K/V biases; all presets have an untied output matrix; head_dim is D / heads
 * (128, or 64 for mini); context length 131072 (mini 4096).
 *
 * Weights: uniform-sum ("normal-ish") values with standard deviation 0.02, norm weights 1.0,
 * biases std 0.01, from a fixed-seed splitmix64/xorshift generator seeded per (tensor, row).
 * Each tensor's type is the one store_tensor_type() picks for the mix, so a synthetic Q4_K_M
 * has llama.cpp's layout.  Tensors are produced while the file is written
 * (gguf_writer_add_tensor_fn), rows in parallel threads; there is no F32 copy of the model.
 *
 * Speed shortcut (--pool, default 64): the reference K-quant quantizers run at roughly
 * 100-150 ns per weight, i.e. minutes for 1.5B weights on two cores.  So by default only the
 * first 64 rows of each matrix are generated and quantized; the remaining rows repeat them
 * cyclically (row r is a copy of row r % 64).  The values of a benchmark model do not matter,
 * only its size and layout do.  --pool 0 makes every row distinct (slow).
 *
 * Tokenizer metadata is a placeholder: tokenizer.ggml.model "gpt2", n_vocab tokens "<tokN>"
 * of type 1 (normal), no merges, and the distill's BOS/EOS ids.  --vocab FILE.gguf copies a real
 * tokenizer instead (every tokenizer.* key of FILE, e.g. a vocab-only GGUF from `seek convert
 * --vocab-only`); its token count must not exceed the preset's embedding rows.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "gguf/gguf.h"
#include "kern/kern.h"
#include "store/quantize.h"

/* ---- presets ------------------------------------------------------------------------------ */

typedef struct preset {
    const char *name, *arch;
    int64_t dim, n_layer, n_head, n_head_kv, n_ff, n_vocab, ctx;
    float theta, eps;
    uint32_t bos, eos;
} preset;

static const preset presets[] = {
    { "1.5b", "qwen2", 1536, 28, 12, 2, 8960, 151936, 131072, 10000.0f, 1e-6f, 151646, 151643 },
    { "7b", "qwen2", 3584, 28, 28, 4, 18944, 152064, 131072, 10000.0f, 1e-6f, 151646, 151643 },
    { "14b", "qwen2", 5120, 48, 40, 8, 13824, 152064, 131072, 1000000.0f, 1e-5f, 151646, 151643 },
    { "8b", "llama", 4096, 32, 32, 8, 14336, 128256, 131072, 500000.0f, 1e-5f, 128000, 128001 },
    { "mini", "qwen2", 256, 2, 4, 2, 768, 8199, 4096, 10000.0f, 1e-6f, 8195, 8192 },
    { "mini", "llama", 256, 2, 4, 1, 512, 8199, 4096, 500000.0f, 1e-5f, 8195, 8192 },
};

/* ---- random numbers ----------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* n values with mean 0 and standard deviation std: the sum of four uniforms on [0,1) has
 * variance 4/12, so (sum - 2) * sqrt(3) has variance 1. */
static void fill_normalish(float *x, int64_t n, float std, uint64_t seed) {
    uint64_t s = seed, st = splitmix64(&s) | 1;
    const float scale = std * 1.7320508f / 65536.0f;
    for (int64_t i = 0; i < n; i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17; /* xorshift64 */
        uint64_t r = st;
        float sum = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) +
                    (float)((r >> 32) & 0xffff) + (float)(r >> 48);
        x[i] = (sum - 2.0f * 65536.0f) * scale;
    }
}

/* ---- tensors ------------------------------------------------------------------------------ */

enum tkind { K_WEIGHT, K_NORM, K_BIAS, K_ROPE_FREQS };

typedef struct stensor {
    char name[64];
    enum tkind kind;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t row_bytes;
    uint64_t seed;
    /* run-wide settings the fill callback needs */
    const preset *p;
    kern_pool *workers;
    int64_t pool;
} stensor;

/* Llama 3.1 RoPE scaling as a per-frequency divisor (what convert_hf_to_gguf stores in
 * rope_freqs.weight): wavelengths shorter than original_ctx / high_factor keep their
 * frequency, longer than original_ctx / low_factor are divided by factor, and the band between
 * is interpolated smoothly. */
static void llama3_rope_freqs(float *out, int64_t n, float theta, int64_t head_dim) {
    const float factor = 8.0f, low = 1.0f, high = 4.0f, orig = 8192.0f;
    const float low_wavelen = orig / low, high_wavelen = orig / high;
    for (int64_t i = 0; i < n; i++) {
        float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        float wavelen = 2.0f * (float)M_PI / freq;
        if (wavelen < high_wavelen) {
            out[i] = 1.0f;
        } else if (wavelen > low_wavelen) {
            out[i] = factor;
        } else {
            float smooth = (orig / wavelen - low) / (high - low);
            out[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
}

typedef struct sphase {
    const stensor *t;
    uint8_t *dst;
    int64_t n_rows;      /* the phase covers rows [0, n_rows) */
    int phase;           /* 0: generate + quantize rows, 1: copy rows from the pool */
    _Atomic bool failed; /* a thread could not get its row buffer */
} sphase;

/* One pool thread's share of a phase. */
static void sphase_task(void *arg, int ith, int nth) {
    sphase *s = arg;
    const stensor *t = s->t;
    const int64_t k = t->ne[0];
    int64_t r0, r1;
    kern_split(s->n_rows, 1, ith, nth, &r0, &r1);
    if (s->phase == 1) {
        for (int64_t r = r0 > t->pool ? r0 : t->pool; r < r1; r++)
            memcpy(s->dst + (uint64_t)r * t->row_bytes,
                   s->dst + (uint64_t)(r % t->pool) * t->row_bytes, t->row_bytes);
        return;
    }
    if (r0 >= r1) return;
    float *buf = malloc((size_t)k * sizeof(float));
    if (!buf) {
        atomic_store(&s->failed, true);
        return;
    }
    const kern_type_traits *tr = kern_traits(t->type);
    for (int64_t r = r0; r < r1; r++) {
        fill_normalish(buf, k, 0.02f, t->seed * 0x100000001B3ull + (uint64_t)r);
        tr->from_float(buf, s->dst + (uint64_t)r * t->row_bytes, k);
    }
    free(buf);
}

/* Runs one phase over rows [0, n) on the tensor's worker pool. */
static int run_parallel(const stensor *t, uint8_t *dst, int64_t n, int phase) {
    sphase s = { .t = t, .dst = dst, .n_rows = n, .phase = phase };
    kern_pool_run(t->workers, sphase_task, &s);
    return atomic_load(&s.failed) ? -1 : 0;
}

static int stensor_fill(void *ctx, void *dst, uint64_t nbytes, seek_err *err) {
    const stensor *t = ctx;
    if (t->kind != K_WEIGHT) {
        /* 1-D F32 tensors */
        float *x = dst;
        int64_t n = t->ne[0];
        if (t->kind == K_NORM) {
            for (int64_t i = 0; i < n; i++) x[i] = 1.0f;
        } else if (t->kind == K_BIAS) {
            fill_normalish(x, n, 0.01f, t->seed);
        } else {
            llama3_rope_freqs(x, n, t->p->theta, t->p->dim / t->p->n_head);
        }
        return 0;
    }
    int64_t n_rows = t->ne[1];
    int64_t n_gen = t->pool > 0 && t->pool < n_rows ? t->pool : n_rows;
    if (run_parallel(t, dst, n_gen, 0) != 0) return err_set(err, SEEK_ENOMEM, "out of memory");
    if (n_gen < n_rows && run_parallel(t, dst, n_rows, 1) != 0)
        return err_set(err, SEEK_ENOMEM, "out of memory");
    (void)nbytes;
    return 0;
}

static int cmp_order(const void *a, const void *b) {
    const stensor *x = a, *y = b;
    int lx = store_tensor_layer(x->name), ly = store_tensor_layer(y->name);
    if (lx != ly) return lx < ly ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Appends a tensor description; returns it. */
static stensor *add(stensor *ts, int *n, const char *name, enum tkind kind, int64_t ne0,
                    int64_t ne1) {
    stensor *t = &ts[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->n_dims = ne1 > 0 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 > 0 ? ne1 : 1;
    t->ne[2] = t->ne[3] = 1;
    return t;
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: make_synth --preset 1.5b|7b|8b|14b|mini [--arch qwen2|llama] [--layers N]\n"
            "                  [--ctx N] --type TYPE [-t THREADS] [--pool ROWS] [--seed S] [--vocab V.gguf] OUT.gguf\n"
            "  TYPE: a seek quantize mix (Q4_K_M, Q8_0, Q6_K, F16, F32, ...)\n"
            "  --pool ROWS: distinct random rows per matrix, the rest repeat them (default 64,\n"
            "               0 = all rows distinct, slow with the reference K-quantizers)\n");
}

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* The placeholder vocabulary: "<tokN>" tokens, no merges, the distill's BOS/EOS ids. */
static int placeholder_tokenizer(gguf_writer *w, const preset *P, bool qwen2) {
    char **toks = calloc((size_t)P->n_vocab, sizeof *toks);
    int32_t *ttype = calloc((size_t)P->n_vocab, sizeof *ttype);
    int rc = !toks || !ttype;
    for (int64_t i = 0; !rc && i < P->n_vocab; i++) {
        char b[32];
        snprintf(b, sizeof b, "<tok%lld>", (long long)i);
        toks[i] = strdup(b);
        rc |= !toks[i];
        ttype[i] = 1;
    }
    if (!rc) {
        rc |= gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
        rc |= gguf_writer_set_str(w, "tokenizer.ggml.pre", qwen2 ? "deepseek-r1-qwen" : "llama-bpe");
        rc |= gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)P->n_vocab);
        rc |= gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, ttype, (uint64_t)P->n_vocab);
        rc |= gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", NULL, 0);
        rc |= gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", P->bos);
        rc |= gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", P->eos);
        rc |= gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    }
    for (int64_t i = 0; toks && i < P->n_vocab; i++) free(toks[i]);
    free(toks);
    free(ttype);
    return rc;
}

int main(int argc, char **argv) {
    const char *arch = NULL, *pname = NULL, *type_name = NULL, *out = NULL, *vocab_path = NULL;
    int64_t layers = 0, ctx = 0, threads = 0, pool = 64, seed = 1234;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--arch") == 0 && v) arch = v, i++;
        else if (strcmp(a, "--preset") == 0 && v) pname = v, i++;
        else if (strcmp(a, "--type") == 0 && v) type_name = v, i++;
        else if (strcmp(a, "--vocab") == 0 && v) vocab_path = v, i++;
        else if (strcmp(a, "--layers") == 0 && v) bad = parse_i64(v, 1, 1000, &layers), i++;
        else if (strcmp(a, "--ctx") == 0 && v) bad = parse_i64(v, 1, 1 << 24, &ctx), i++;
        else if (strcmp(a, "-t") == 0 && v) bad = parse_i64(v, 1, 256, &threads), i++;
        else if (strcmp(a, "--pool") == 0 && v) bad = parse_i64(v, 0, 1 << 30, &pool), i++;
        else if (strcmp(a, "--seed") == 0 && v) bad = parse_i64(v, 0, INT64_MAX, &seed), i++;
        else if (a[0] != '-' && !out) out = a;
        else bad = -1;
        if (bad) {
            fprintf(stderr, "make_synth: bad argument '%s'\n", a);
            usage();
            return 1;
        }
    }
    if (!pname || !type_name || !out) {
        usage();
        return 1;
    }
    const preset *p = NULL;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, pname) == 0 && (!arch || strcmp(presets[i].arch, arch) == 0)) {
            p = &presets[i];
            break;
        }
    if (!p) {
        fprintf(stderr, "make_synth: no preset '%s'%s%s (1.5b, 7b, 14b: qwen2; 8b: llama; mini: "
                        "both)\n", pname, arch ? " for arch " : "", arch ? arch : "");
        return 1;
    }
    const store_mix *mix = store_mix_find(type_name);
    if (!mix) {
        fprintf(stderr, "make_synth: unknown type '%s'\n", type_name);
        return 1;
    }
    base_init();
    preset P = *p;
    if (layers) P.n_layer = layers;
    if (ctx) P.ctx = ctx;
    if (!threads) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? nc : 1;
    }
    const bool qwen2 = strcmp(P.arch, "qwen2") == 0;
    const int64_t D = P.dim, hd = P.dim / P.n_head, kv = hd * P.n_head_kv;

    /* tensor list */
    int max_t = 8 + 16 * (int)P.n_layer, nt = 0;
    stensor *ts = calloc((size_t)max_t, sizeof *ts);
    if (!ts) return 1;
    add(ts, &nt, "token_embd.weight", K_WEIGHT, D, P.n_vocab);
    add(ts, &nt, "output_norm.weight", K_NORM, D, 0);
    add(ts, &nt, "output.weight", K_WEIGHT, D, P.n_vocab);
    if (!qwen2) add(ts, &nt, "rope_freqs.weight", K_ROPE_FREQS, hd / 2, 0);
    for (int64_t l = 0; l < P.n_layer; l++) {
        char nm[64];
#define T(suffix, kind, a, b) (snprintf(nm, sizeof nm, "blk.%lld." suffix, (long long)l), \
                               add(ts, &nt, nm, kind, a, b))
        T("attn_norm.weight", K_NORM, D, 0);
        T("attn_q.weight", K_WEIGHT, D, D);
        T("attn_k.weight", K_WEIGHT, D, kv);
        T("attn_v.weight", K_WEIGHT, D, kv);
        if (qwen2) {
            T("attn_q.bias", K_BIAS, D, 0);
            T("attn_k.bias", K_BIAS, kv, 0);
            T("attn_v.bias", K_BIAS, kv, 0);
        }
        T("attn_output.weight", K_WEIGHT, D, D);
        T("ffn_norm.weight", K_NORM, D, 0);
        T("ffn_gate.weight", K_WEIGHT, D, P.n_ff);
        T("ffn_up.weight", K_WEIGHT, D, P.n_ff);
        T("ffn_down.weight", K_WEIGHT, P.n_ff, D);
#undef T
    }
    qsort(ts, (size_t)nt, sizeof *ts, cmp_order);

    store_qmodel qm = { .n_layer = (int)P.n_layer, .n_head = (int)P.n_head,
                        .n_head_kv = (int)P.n_head_kv, .has_output = true };
    snprintf(qm.arch, sizeof qm.arch, "%s", P.arch);
    seek_err err = { 0 };
    kern_pool *workers = kern_pool_new((int)threads, &err);
    if (!workers) {
        fprintf(stderr, "make_synth: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < nt; i++) {
        stensor *t = &ts[i];
        int type = store_tensor_type(&qm, mix, t->name, t->n_dims, t->ne,
                                     store_tensor_layer(t->name), NULL, &err);
        if (type < 0) {
            fprintf(stderr, "make_synth: %s\n", err.msg);
            return 1;
        }
        if (type != GGUF_TYPE_F32 && (!kern_traits((uint32_t)type) ||
                                      !kern_traits((uint32_t)type)->from_float)) {
            fprintf(stderr, "make_synth: no quantizer for %s\n", gguf_type_name((uint32_t)type));
            return 1;
        }
        if (t->kind != K_WEIGHT) type = GGUF_TYPE_F32;
        t->type = (uint32_t)type;
        t->row_bytes = gguf_row_bytes(t->type, (uint64_t)t->ne[0]);
        t->seed = (uint64_t)seed * 1000003ull + (uint64_t)i * 7919ull;
        t->p = &P;
        t->workers = workers;
        t->pool = pool;
    }

    gguf_writer *w = gguf_writer_new();
    if (!w) return 1;
    char key[128], name[128];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", P.arch, suffix), key)
    int rc = 0;
    snprintf(name, sizeof name, "synthetic %s %s (random weights)", P.arch, P.name);
    rc |= gguf_writer_set_str(w, "general.architecture", P.arch);
    rc |= gguf_writer_set_str(w, "general.name", name);
    rc |= gguf_writer_set_u32(w, K("context_length"), (uint32_t)P.ctx);
    rc |= gguf_writer_set_u32(w, K("embedding_length"), (uint32_t)D);
    rc |= gguf_writer_set_u32(w, K("block_count"), (uint32_t)P.n_layer);
    rc |= gguf_writer_set_u32(w, K("feed_forward_length"), (uint32_t)P.n_ff);
    rc |= gguf_writer_set_u32(w, K("attention.head_count"), (uint32_t)P.n_head);
    rc |= gguf_writer_set_u32(w, K("attention.head_count_kv"), (uint32_t)P.n_head_kv);
    rc |= gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), P.eps);
    rc |= gguf_writer_set_f32(w, K("rope.freq_base"), P.theta);
    if (!qwen2) {
        rc |= gguf_writer_set_u32(w, K("vocab_size"), (uint32_t)P.n_vocab);
        rc |= gguf_writer_set_u32(w, K("rope.dimension_count"), (uint32_t)hd);
    }
#undef K
    gguf_file *vocab = NULL;
    if (vocab_path) {
        vocab = gguf_open(vocab_path, &err);
        const gguf_kv *toks = vocab ? gguf_find_kv(vocab, "tokenizer.ggml.tokens") : NULL;
        if (!toks || toks->arr_n > (uint64_t)P.n_vocab) {
            fprintf(stderr, "make_synth: %s: %s\n", vocab_path,
                    !vocab ? err.msg : !toks ? "no tokenizer.ggml.tokens" : "more tokens than the preset's rows");
            return 1;
        }
        for (uint64_t i = 0; i < gguf_n_kv(vocab); i++) {
            const gguf_kv *tk = gguf_kv_at(vocab, i);
            if (tk->key.len > 10 && !memcmp(tk->key.ptr, "tokenizer.", 10)) rc |= gguf_writer_copy_kv(w, vocab, tk);
        }
    } else {
        rc |= placeholder_tokenizer(w, &P, qwen2);
    }
    rc |= gguf_writer_set_u32(w, "general.quantization_version", 2);
    rc |= gguf_writer_set_u32(w, "general.file_type", mix->file_type);
    if (rc) {
        fprintf(stderr, "make_synth: out of memory building metadata\n");
        return 1;
    }

    uint64_t n_params = 0;
    for (int i = 0; i < nt; i++) {
        stensor *t = &ts[i];
        uint64_t nbytes = t->row_bytes * (uint64_t)t->ne[1];
        n_params += (uint64_t)t->ne[0] * (uint64_t)t->ne[1];
        if (gguf_writer_add_tensor_fn(w, t->name, t->type, t->n_dims, t->ne, nbytes, stensor_fill,
                                      t, &err) != 0) {
            fprintf(stderr, "make_synth: %s\n", err.msg);
            return 1;
        }
    }
    uint64_t t0 = time_now_ns();
    if (gguf_writer_write(w, out, &err) != 0) {
        fprintf(stderr, "make_synth: %s: %s\n", out, err.msg);
        return 1;
    }
    double secs = (double)(time_now_ns() - t0) / 1e9;
    gguf_writer_free(w);
    gguf_close(vocab); /* after the write: copied keys point into its mapping */
    struct stat sb;
    uint64_t size = stat(out, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    fprintf(stderr, "make_synth: wrote %s: %s %s %s, %lld layers, %.3fB parameters, %.2f MB, "
                    "%.1f s, %lld threads, pool %lld\n",
            out, P.arch, P.name, mix->name, (long long)P.n_layer, (double)n_params / 1e9,
            (double)size / 1e6, secs, (long long)threads, (long long)pool);
    kern_pool_free(workers);
    free(ts);
    return 0;
}
