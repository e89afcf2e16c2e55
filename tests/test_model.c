/*
 * test_model.c - properties of the forward pass that need no reference implementation, and its
 * error paths.  (Agreement with an independent float64 reference is checked by
 * tests/test_numpy_ref.py and tests/test_fixtures.py.)
 *
 *   - a prompt evaluated in one batch, in batches of 3, and token by token through the KV cache
 *     gives the same logits (the cache and the batching are consistent);
 *   - 1, 2 and 3 threads give bit-identical logits (work splitting does not change arithmetic);
 *   - bad files and bad calls fail with messages that name the problem.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gguf/gguf.h"
#include "model/model.h"

enum { D = 64, F = 96, H = 4, HKV = 2, HD = 16, NL = 2, V = 300 };

static uint64_t rng = 12345;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

typedef struct {
    float *bufs[64];
    int n;
} pool_of_bufs;

static float *rand_buf(pool_of_bufs *p, int64_t n, float scale, float offset) {
    float *b = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) b[i] = offset + scale * frand();
    p->bufs[p->n++] = b;
    return b;
}

static void add(gguf_writer *w, pool_of_bufs *p, const char *name, int64_t ne0, int64_t ne1,
                float scale, float offset) {
    int64_t ne[2] = { ne0, ne1 };
    float *b = rand_buf(p, ne0 * ne1, scale, offset);
    gguf_writer_add_tensor(w, name, GGUF_TYPE_F32, ne1 > 1 ? 2 : 1, ne, b, sizeof(float) * (uint64_t)(ne0 * ne1), NULL);
}

/* Writes a small random F32 model; `skip` names a tensor to leave out, `arch` the architecture. */
static int write_model(const char *path, const char *arch, const char *skip) {
    pool_of_bufs p = { 0 };
    gguf_writer *w = gguf_writer_new();
    char key[128];
    gguf_writer_set_str(w, "general.architecture", arch);
#define KEY(s) (snprintf(key, sizeof key, "%s." s, arch), key)
    gguf_writer_set_u32(w, KEY("block_count"), NL);
    gguf_writer_set_u32(w, KEY("embedding_length"), D);
    gguf_writer_set_u32(w, KEY("feed_forward_length"), F);
    gguf_writer_set_u32(w, KEY("attention.head_count"), H);
    gguf_writer_set_u32(w, KEY("attention.head_count_kv"), HKV);
    gguf_writer_set_u32(w, KEY("context_length"), 256);
    gguf_writer_set_f32(w, KEY("rope.freq_base"), 10000.0f);
    gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
#undef KEY
    const bool qwen = !strcmp(arch, "qwen2");
    add(w, &p, "token_embd.weight", D, V, 0.5f, 0);
    for (int l = 0; l < NL; l++) {
        char n[64];
#define T(s) (snprintf(n, sizeof n, "blk.%d." s, l), (skip && !strcmp(n, skip)) ? "skipped.tensor" : n)
        add(w, &p, T("attn_norm.weight"), D, 1, 0.1f, 1.0f);
        add(w, &p, T("attn_q.weight"), D, H * HD, 0.2f, 0);
        add(w, &p, T("attn_k.weight"), D, HKV * HD, 0.2f, 0);
        add(w, &p, T("attn_v.weight"), D, HKV * HD, 0.2f, 0);
        if (qwen) {
            add(w, &p, T("attn_q.bias"), H * HD, 1, 0.1f, 0);
            add(w, &p, T("attn_k.bias"), HKV * HD, 1, 0.1f, 0);
            add(w, &p, T("attn_v.bias"), HKV * HD, 1, 0.1f, 0);
        }
        add(w, &p, T("attn_output.weight"), H * HD, D, 0.2f, 0);
        add(w, &p, T("ffn_norm.weight"), D, 1, 0.1f, 1.0f);
        add(w, &p, T("ffn_gate.weight"), D, F, 0.2f, 0);
        add(w, &p, T("ffn_up.weight"), D, F, 0.2f, 0);
        add(w, &p, T("ffn_down.weight"), F, D, 0.2f, 0);
#undef T
    }
    add(w, &p, "output_norm.weight", D, 1, 0.1f, 1.0f);
    if (!qwen) add(w, &p, "output.weight", D, V, 0.3f, 0);
    seek_err err = { 0 };
    int rc = gguf_writer_write(w, path, &err);
    if (rc) printf("write failed: %s\n", err.msg);
    gguf_writer_free(w);
    for (int i = 0; i < p.n; i++) free(p.bufs[i]);
    return rc;
}

static double max_rel_diff(const float *a, const float *b, int64_t n) {
    double maxd = 0, maxa = 1e-9;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > maxd || isnan(d)) maxd = isnan(d) ? INFINITY : d;
        if (fabs(a[i]) > maxa) maxa = fabs(a[i]);
    }
    return maxd / maxa;
}

/* Logits for all positions, evaluating in chunks of `chunk` tokens with n_batch = chunk. */
static float *eval_chunks(model *m, const int32_t *toks, int n, int chunk, int threads) {
    seek_err err = { 0 };
    model_ctx *c = model_ctx_new(m, 64, chunk, threads, &err);
    if (!c) return NULL;
    float *out = malloc(sizeof(float) * (size_t)n * V);
    for (int done = 0; done < n; done += chunk) {
        int k = n - done < chunk ? n - done : chunk;
        if (model_eval(c, toks + done, k, done, out + (size_t)done * V, true, &err) != 0) {
            printf("eval failed: %s\n", err.msg);
            free(out);
            model_ctx_free(c);
            return NULL;
        }
    }
    model_ctx_free(c);
    return out;
}

static void check_arch(const char *arch, const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, arch);
    CHECK(write_model(path, arch, NULL) == 0, "write %s model", arch);
    seek_err err = { 0 };
    model *m = model_open(path, &err);
    CHECK(m != NULL, "open %s: %s", arch, err.msg);
    if (!m) return;
    CHECK(m->hp.n_vocab == V && m->hp.head_dim == HD && m->tied_output == !strcmp(arch, "qwen2"),
          "%s hparams: vocab %lld head_dim %lld tied %d", arch, (long long)m->hp.n_vocab,
          (long long)m->hp.head_dim, m->tied_output);
    int32_t toks[20];
    for (int i = 0; i < 20; i++) toks[i] = (i * 37 + 11) % V;
    float *all = eval_chunks(m, toks, 20, 20, 1);
    float *by3 = eval_chunks(m, toks, 20, 3, 1);
    float *by1 = eval_chunks(m, toks, 20, 1, 1);
    float *t2 = eval_chunks(m, toks, 20, 20, 2);
    float *t3 = eval_chunks(m, toks, 20, 7, 3);
    CHECK(all && by3 && by1 && t2 && t3, "%s evals ran", arch);
    if (all && by3 && by1 && t2 && t3) {
        bool finite = true;
        for (int i = 0; i < 20 * V; i++) finite &= isfinite(all[i]);
        CHECK(finite, "%s logits finite", arch);
        double d3 = max_rel_diff(all, by3, 20 * V), d1 = max_rel_diff(all, by1, 20 * V);
        CHECK(d3 < 1e-5, "%s: batch of 20 vs batches of 3: rel diff %g", arch, d3);
        CHECK(d1 < 1e-5, "%s: batch of 20 vs token by token: rel diff %g", arch, d1);
        CHECK(memcmp(all, t2, sizeof(float) * 20 * V) == 0, "%s: 1 vs 2 threads bit-identical", arch);
        double dt3 = max_rel_diff(all, t3, 20 * V);
        CHECK(dt3 < 1e-5, "%s: 3 threads, batches of 7: rel diff %g", arch, dt3);
        /* the last-row-only mode returns the same row as all_logits */
        model_ctx *c = model_ctx_new(m, 64, 8, 2, &err);
        float last[V];
        CHECK(c && model_eval(c, toks, 20, 0, last, false, &err) == 0, "%s last-only eval: %s", arch, err.msg);
        CHECK(max_rel_diff(all + 19 * V, last, V) < 1e-5, "%s last-only row equals row 19", arch);
        /* errors: token out of range, context full */
        int32_t bad = V;
        CHECK(model_eval(c, &bad, 1, 0, last, false, &err) != 0 && strstr(err.msg, "outside the vocabulary"),
              "%s out-of-range token rejected: %s", arch, err.msg);
        CHECK(model_eval(c, toks, 20, 50, last, false, &err) != 0 && strstr(err.msg, "context is full"),
              "%s context overflow rejected: %s", arch, err.msg);
        model_ctx_free(c);
    }
    free(all);
    free(by3);
    free(by1);
    free(t2);
    free(t3);
    model_close(m);
    unlink(path);
}

int main(void) {
    char dir[] = "/tmp/seek-test-model-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    check_arch("qwen2", dir);
    check_arch("llama", dir);

    char path[512];
    seek_err err = { 0 };
    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    write_model(path, "qwen2", "blk.1.ffn_up.weight");
    model *m = model_open(path, &err);
    CHECK(!m && strstr(err.msg, "blk.1.ffn_up.weight") && strstr(err.msg, "missing"),
          "missing tensor named: %s", err.msg);
    model_close(m);
    unlink(path);

    snprintf(path, sizeof path, "%s/gpt.gguf", dir);
    write_model(path, "gpt2", NULL);
    m = model_open(path, &err);
    CHECK(!m && strstr(err.msg, "gpt2") && strstr(err.msg, "not supported"), "unknown architecture: %s", err.msg);
    model_close(m);
    unlink(path);

    m = model_open("/nonexistent/model.gguf", &err);
    CHECK(!m && err.msg[0], "nonexistent file: %s", err.msg);
    rmdir(dir);
    return check_done("test_model");
}
