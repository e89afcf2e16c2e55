/*
 * test_quantize.c - store/quantize: llama.cpp's per-tensor type choice and the converter.
 *
 * Golden data, none of it computed by the code under test:
 *   - the layout of DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf as llama.cpp makes it (28 layers):
 *     output.weight Q6_K, token_embd.weight Q4_K, attn_v.weight and ffn_down.weight Q6_K in
 *     layers 0,1,2,5,8,11,14,17,20,23,24,25,26,27 and Q4_K elsewhere, every other matrix Q4_K,
 *     norms and biases F32.  (llama.cpp's use_more_bits(i, n): i < n/8 || i >= 7n/8 ||
 *     (i - n/8) % 3 == 2; with n = 28: i < 3, i >= 24, i in {5, 8, ..., 23}.)  Its tensor data
 *     adds up to about 1.11e9 bytes (the published file is 1.12 GB with its tokenizer);
 *   - the other mixes' rules as written out in the table below from llama-quant.cpp;
 *   - the llama.cpp-written fixtures (../shared/fixtures/gguf or $SEEK_FIXTURES): every tensor's
 *     type in qwen2/llama-mini-{Q4_K_M,Q6_K,Q8_0}.gguf must be what store_tensor_type picks.
 * Then end to end: a small F32 (and F16) model written here with the gguf writer is quantized
 * to every mix; the output's types must follow the rule, metadata must be copied, and the
 * dequantized weights must be close to the originals.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "check.h"
#include "testutil.h"
#include "gguf/gguf.h"
#include "kern/kern.h"
#include "store/quantize.h"

enum { Q4_0 = GGUF_TYPE_Q4_0, Q4_1 = GGUF_TYPE_Q4_1, Q5_0 = GGUF_TYPE_Q5_0, Q5_1 = GGUF_TYPE_Q5_1,
       Q8_0 = GGUF_TYPE_Q8_0, Q2_K = GGUF_TYPE_Q2_K, Q3_K = GGUF_TYPE_Q3_K, Q4_K = GGUF_TYPE_Q4_K,
       Q5_K = GGUF_TYPE_Q5_K, Q6_K = GGUF_TYPE_Q6_K, F16 = GGUF_TYPE_F16, F32 = GGUF_TYPE_F32,
       BF16 = GGUF_TYPE_BF16 };

/* The type of one tensor of a model with n_layer layers, D = dim, F = ffn, KV = kv width. */
static int pick(const store_qmodel *m, const char *mix, const char *name, int64_t ne0,
                int64_t ne1) {
    const store_mix *mx = store_mix_find(mix);
    if (!mx) return -100;
    int64_t ne[4] = { ne0, ne1 > 0 ? ne1 : 1, 1, 1 };
    seek_err err = { 0 };
    return store_tensor_type(m, mx, name, ne1 > 0 ? 2 : 1, ne, store_tensor_layer(name), NULL,
                             &err);
}

static const store_qmodel qwen15 = { "qwen2", 28, 12, 2, 0, true };

static bool in_list(int v, const int *list, int n) {
    for (int i = 0; i < n; i++)
        if (list[i] == v) return true;
    return false;
}

static void test_r1_qwen_1_5b_q4_k_m(void) {
    const store_qmodel *m = &qwen15;
    const int more[] = { 0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27 };
    const int64_t D = 1536, KV = 256, F = 8960, V = 151936;
    CHECK(pick(m, "Q4_K_M", "output.weight", D, V) == Q6_K, "output Q6_K");
    CHECK(pick(m, "Q4_K_M", "token_embd.weight", D, V) == Q4_K, "token_embd Q4_K");
    CHECK(pick(m, "Q4_K_M", "output_norm.weight", D, 0) == F32, "output_norm F32");
    uint64_t bytes = gguf_row_bytes(Q6_K, D) * V + gguf_row_bytes(Q4_K, D) * V + 4 * D;
    int n_q6 = 0;
    for (int l = 0; l < 28; l++) {
        char nm[64];
        bool mb = in_list(l, more, 14);
#define P(s, a, b) (snprintf(nm, sizeof nm, "blk.%d." s, l), pick(m, "Q4_K_M", nm, a, b))
        int tv = P("attn_v.weight", D, KV), td = P("ffn_down.weight", F, D);
        CHECK(tv == (mb ? Q6_K : Q4_K), "layer %d attn_v %s", l, gguf_type_name((uint32_t)tv));
        CHECK(td == (mb ? Q6_K : Q4_K), "layer %d ffn_down %s", l, gguf_type_name((uint32_t)td));
        n_q6 += tv == Q6_K;
        CHECK(P("attn_q.weight", D, D) == Q4_K, "layer %d attn_q", l);
        CHECK(P("attn_k.weight", D, KV) == Q4_K, "layer %d attn_k", l);
        CHECK(P("attn_output.weight", D, D) == Q4_K, "layer %d attn_output", l);
        CHECK(P("ffn_gate.weight", D, F) == Q4_K, "layer %d ffn_gate", l);
        CHECK(P("ffn_up.weight", D, F) == Q4_K, "layer %d ffn_up", l);
        CHECK(P("attn_norm.weight", D, 0) == F32, "layer %d attn_norm", l);
        CHECK(P("ffn_norm.weight", D, 0) == F32, "layer %d ffn_norm", l);
        CHECK(P("attn_q.bias", D, 0) == F32, "layer %d attn_q.bias", l);
        CHECK(P("attn_v.bias", KV, 0) == F32, "layer %d attn_v.bias", l);
#undef P
        uint32_t tvd = mb ? Q6_K : Q4_K;
        bytes += gguf_row_bytes(tvd, D) * KV + gguf_row_bytes(tvd, F) * D;
        bytes += gguf_row_bytes(Q4_K, D) * (D + KV + D + F + F);
        bytes += 4 * (D + D + D + KV + KV);
    }
    CHECK(n_q6 == 14, "14 more-bits layers, got %d", n_q6);
    CHECK(bytes > 1100000000ull && bytes < 1120000000ull, "1.5B Q4_K_M data %llu bytes",
          (unsigned long long)bytes);
}

/* Other mixes on the same 28-layer shape (n_gqa = 12 / 2 = 6). */
static void test_mix_table(void) {
    const store_qmodel *m = &qwen15;
    const int64_t D = 1536, KV = 256, F = 8960, V = 151936;
    static const struct {
        const char *mix;
        int out, embd, q, v0, v3, v5, v27, down0, down3, down5, attn_out;
    } rows[] = {
        /* mix       output embd  attn_q v@0   v@3   v@5   v@27  down@0 down@3 down@5 attn_o */
        { "Q4_K_M", Q6_K, Q4_K, Q4_K, Q6_K, Q4_K, Q6_K, Q6_K, Q6_K, Q4_K, Q6_K, Q4_K },
        { "Q5_K_M", Q6_K, Q5_K, Q5_K, Q6_K, Q5_K, Q6_K, Q6_K, Q6_K, Q5_K, Q6_K, Q5_K },
        { "Q4_K_S", Q6_K, Q4_K, Q4_K, Q5_K, Q5_K, Q4_K, Q4_K, Q5_K, Q4_K, Q4_K, Q4_K },
        { "Q5_K_S", Q6_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K },
        { "Q3_K_S", Q6_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K },
        /* Q3_K_M: attn_v Q5_K for layers 0,1; ffn_down Q5_K below 28/16 = 1; attn_output Q4_K */
        { "Q3_K_M", Q6_K, Q3_K, Q3_K, Q5_K, Q4_K, Q4_K, Q4_K, Q5_K, Q4_K, Q4_K, Q4_K },
        { "Q3_K_L", Q6_K, Q3_K, Q3_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K },
        /* Q2_K: attn_v Q4_K because n_gqa >= 4; ffn_down and attn_output Q3_K */
        { "Q2_K", Q6_K, Q2_K, Q2_K, Q4_K, Q4_K, Q4_K, Q4_K, Q3_K, Q3_K, Q3_K, Q3_K },
        { "Q6_K", Q6_K, Q6_K, Q6_K, Q6_K, Q6_K, Q6_K, Q6_K, Q6_K, Q6_K, Q6_K, Q6_K },
        { "Q8_0", Q8_0, Q8_0, Q8_0, Q8_0, Q8_0, Q8_0, Q8_0, Q8_0, Q8_0, Q8_0, Q8_0 },
        { "Q4_0", Q6_K, Q4_0, Q4_0, Q4_0, Q4_0, Q4_0, Q4_0, Q4_0, Q4_0, Q4_0, Q4_0 },
        { "Q4_1", Q6_K, Q4_1, Q4_1, Q4_1, Q4_1, Q4_1, Q4_1, Q4_1, Q4_1, Q4_1, Q4_1 },
        { "Q5_0", Q6_K, Q5_0, Q5_0, Q5_0, Q5_0, Q5_0, Q5_0, Q5_0, Q5_0, Q5_0, Q5_0 },
        { "Q5_1", Q6_K, Q5_1, Q5_1, Q5_1, Q5_1, Q5_1, Q5_1, Q5_1, Q5_1, Q5_1, Q5_1 },
        { "F16", F16, F16, F16, F16, F16, F16, F16, F16, F16, F16, F16 },
        { "BF16", BF16, BF16, BF16, BF16, BF16, BF16, BF16, BF16, BF16, BF16, BF16 },
        { "F32", F32, F32, F32, F32, F32, F32, F32, F32, F32, F32, F32 },
        /* pure single types: no exceptions, output included */
        { "Q4_K", Q4_K, Q4_K, Q4_K, Q4_K, Q4_K, Q4_K, Q4_K, Q4_K, Q4_K, Q4_K, Q4_K },
        { "Q3_K", Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K, Q3_K },
        { "Q5_K", Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K, Q5_K },
        { "Q2_K_PURE", Q2_K, Q2_K, Q2_K, Q2_K, Q2_K, Q2_K, Q2_K, Q2_K, Q2_K, Q2_K, Q2_K },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *x = rows[i].mix;
        CHECK(pick(m, x, "output.weight", D, V) == rows[i].out, "%s output", x);
        CHECK(pick(m, x, "token_embd.weight", D, V) == rows[i].embd, "%s token_embd", x);
        CHECK(pick(m, x, "blk.9.attn_q.weight", D, D) == rows[i].q, "%s attn_q", x);
        CHECK(pick(m, x, "blk.0.attn_v.weight", D, KV) == rows[i].v0, "%s attn_v 0", x);
        CHECK(pick(m, x, "blk.3.attn_v.weight", D, KV) == rows[i].v3, "%s attn_v 3", x);
        CHECK(pick(m, x, "blk.5.attn_v.weight", D, KV) == rows[i].v5, "%s attn_v 5", x);
        CHECK(pick(m, x, "blk.27.attn_v.weight", D, KV) == rows[i].v27, "%s attn_v 27", x);
        CHECK(pick(m, x, "blk.0.ffn_down.weight", F, D) == rows[i].down0, "%s ffn_down 0", x);
        CHECK(pick(m, x, "blk.3.ffn_down.weight", F, D) == rows[i].down3, "%s ffn_down 3", x);
        CHECK(pick(m, x, "blk.5.ffn_down.weight", F, D) == rows[i].down5, "%s ffn_down 5", x);
        CHECK(pick(m, x, "blk.7.attn_output.weight", D, D) == rows[i].attn_out, "%s attn_out", x);
        CHECK(pick(m, x, "blk.7.attn_norm.weight", D, 0) == F32, "%s norm", x);
        const store_mix *mx = store_mix_find(x);
        CHECK(mx && store_ftype_name(mx->file_type), "%s has an ftype name", x);
    }
    /* Q4_K_S: attn_v Q5_K for layers 0..3, ffn_down Q5_K below 28/8 = 3 */
    CHECK(pick(m, "Q4_K_S", "blk.4.attn_v.weight", D, KV) == Q4_K, "Q4_K_S attn_v 4");
    CHECK(pick(m, "Q4_K_S", "blk.2.ffn_down.weight", F, D) == Q5_K, "Q4_K_S ffn_down 2");
    /* Q3_K_M: attn_v layer 1 still Q5_K, layer 2 Q4_K */
    CHECK(pick(m, "Q3_K_M", "blk.1.attn_v.weight", D, KV) == Q5_K, "Q3_K_M attn_v 1");
    CHECK(pick(m, "Q3_K_M", "blk.2.attn_v.weight", D, KV) == Q4_K, "Q3_K_M attn_v 2");
    /* Q2_K with little GQA (n_head / n_head_kv = 2 < 4): attn_v Q3_K */
    const store_qmodel low_gqa = { "qwen2", 2, 4, 2, 0, true };
    CHECK(pick(&low_gqa, "Q2_K", "blk.0.attn_v.weight", 256, 128) == Q3_K, "Q2_K low gqa");
    /* tied embeddings: token_embd gets the output rule */
    const store_qmodel tied = { "qwen2", 28, 12, 2, 0, false };
    CHECK(pick(&tied, "Q4_K_M", "token_embd.weight", D, V) == Q6_K, "tied token_embd Q6_K");
    CHECK(pick(&tied, "Q8_0", "token_embd.weight", D, V) == Q8_0, "tied token_embd Q8_0");
    /* 8B llama (32 layers): 32/8 = 4, 7*32/8 = 28 -> more bits at 0..3, 6, 9, ..., 27, 28..31 */
    const store_qmodel l8 = { "llama", 32, 32, 8, 0, true };
    const int more8[] = { 0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31 };
    for (int l = 0; l < 32; l++) {
        char nm[64];
        snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", l);
        int t = pick(&l8, "Q4_K_M", nm, 4096, 1024);
        CHECK(t == (in_list(l, more8, 16) ? Q6_K : Q4_K), "8b layer %d attn_v %d", l, t);
    }
    /* 70B class (80 layers, GQA): Q4_K attn_v bumped to Q5_K */
    const store_qmodel l70 = { "llama", 80, 64, 8, 0, true };
    CHECK(pick(&l70, "Q4_K_M", "blk.40.attn_v.weight", 8192, 1024) == Q5_K, "70B attn_v Q5_K");
    CHECK(pick(&l70, "Q4_K_M", "blk.42.attn_v.weight", 8192, 1024) == Q6_K, "70B more bits");
    /* names and unknowns */
    CHECK(store_mix_find("q4_k_m") != NULL, "case-insensitive mix names");
    CHECK(store_mix_find("Q4_K_X") == NULL, "unknown mix");
    CHECK(store_mix_find("Q4_K_M")->file_type == 15 && store_mix_find("Q8_0")->file_type == 7 &&
              store_mix_find("Q6_K")->file_type == 18 && store_mix_find("BF16")->file_type == 32 &&
              store_mix_find("Q3_K_M")->file_type == 12 && store_mix_find("F32")->file_type == 0,
          "LLAMA_FTYPE numbers");
    CHECK(strcmp(store_ftype_name(15), "Q4_K_M") == 0, "ftype 15");
    CHECK(strcmp(store_ftype_name(1), "F16") == 0, "ftype 1");
    CHECK(strcmp(store_ftype_name(2), "Q4_0") == 0, "ftype 2");
    CHECK(store_ftype_name(4) == NULL && store_ftype_name(1000) == NULL, "unknown ftypes");
    CHECK(store_tensor_layer("blk.17.ffn_up.weight") == 17, "layer of blk.17");
    CHECK(store_tensor_layer("token_embd.weight") == -1, "layer of token_embd");
    CHECK(store_tensor_layer("blk.x.y") == -1, "layer of blk.x");
}

/* Row lengths a K block does not divide (llama.cpp's tensor_type_fallback). */
static void test_fallback(void) {
    const store_qmodel m = { "qwen2", 28, 12, 2, 0, true };
    /* 2080 = 8 * 256 + 32: a multiple of 32 only */
    CHECK(pick(&m, "Q4_K_M", "blk.3.ffn_down.weight", 2080, 64) == Q5_0, "Q4_K -> Q5_0");
    CHECK(pick(&m, "Q4_K_M", "blk.0.ffn_down.weight", 2080, 64) == Q8_0, "Q6_K -> Q8_0");
    CHECK(pick(&m, "Q5_K_S", "blk.3.ffn_up.weight", 2080, 64) == Q5_1, "Q5_K -> Q5_1");
    CHECK(pick(&m, "Q3_K_S", "blk.3.ffn_up.weight", 2080, 64) == Q4_0, "Q3_K -> Q4_0");
    CHECK(pick(&m, "Q2_K", "blk.3.ffn_up.weight", 2080, 64) == Q4_0, "Q2_K -> Q4_0");
    CHECK(pick(&m, "Q4_K", "blk.3.ffn_up.weight", 2080, 64) == Q5_0, "pure Q4_K -> Q5_0");
    CHECK(pick(&m, "Q4_K_M", "output.weight", 2080, 64) == Q8_0, "output not /256 -> Q8_0");
    /* Q4_0's output rule gives Q6_K (2080 is a multiple of Q4_0's 32), then the fallback Q8_0 */
    CHECK(pick(&m, "Q4_0", "output.weight", 2080, 64) == Q8_0, "Q4_0 output 2080 -> Q8_0");
    CHECK(pick(&m, "Q4_0", "output.weight", 2048, 64) == Q6_K, "Q4_0 output 2048 -> Q6_K");
    /* 1000 is not even a multiple of 32: F16 */
    CHECK(pick(&m, "Q4_K_M", "blk.3.ffn_up.weight", 1000, 64) == F16, "-> F16");
    bool fb = false;
    const store_mix *mx = store_mix_find("Q4_K_M");
    int64_t ne[4] = { 2080, 64, 1, 1 };
    CHECK(store_tensor_type(&m, mx, "blk.3.ffn_up.weight", 2, ne, 3, &fb, NULL) == Q5_0 && fb,
          "fell_back reported");
    ne[0] = 2048;
    CHECK(store_tensor_type(&m, mx, "blk.3.ffn_up.weight", 2, ne, 3, &fb, NULL) == Q4_K && !fb,
          "no fallback reported");
    seek_err err = { 0 };
    ne[0] = 1000;
    CHECK(store_tensor_type(&m, store_mix_find("Q4_0"), "blk.3.ffn_up.weight", 2, ne, 3, NULL,
                            &err) == -1 && err.msg[0], "Q4_0 with 1000 columns is an error");
}

/* ---- llama.cpp fixtures ----------------------------------------------------------------- */


static void test_fixtures(void) {
    const char *dir = test_fixture_dir();
    CHECK(dir != NULL, "fixtures not found (set SEEK_FIXTURES)");
    if (!dir) return;
    const char *models[] = { "qwen2-mini", "llama-mini" };
    const char *types[] = { "Q4_K_M", "Q6_K", "Q8_0" };
    for (int a = 0; a < 2; a++) {
        for (int q = 0; q < 3; q++) {
            char path[1200];
            snprintf(path, sizeof path, "%s/%s-%s.gguf", dir, models[a], types[q]);
            seek_err err = { 0 };
            gguf_file *f = gguf_open(path, &err);
            CHECK(f != NULL, "open %s: %s", path, err.msg);
            if (!f) continue;
            uint32_t ft = 0;
            CHECK(gguf_get_u32(f, "general.file_type", &ft, NULL) == 0 &&
                      store_ftype_name(ft) && strcmp(store_ftype_name(ft), types[q]) == 0,
                  "%s file_type %u", path, ft);
            store_qmodel m;
            CHECK(store_qmodel_from_file(f, &m, &err) == 0, "%s qmodel: %s", path, err.msg);
            const store_mix *mx = store_mix_find(types[q]);
            int n_q6 = 0;
            for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                char name[256];
                gguf_str_copy(t->name, name, sizeof name);
                int want = store_tensor_type(&m, mx, name, t->n_dims, t->ne,
                                             store_tensor_layer(name), NULL, NULL);
                CHECK(want == (int)t->type, "%s %s: llama.cpp chose %s, rule says %s", path, name,
                      gguf_type_name(t->type), want >= 0 ? gguf_type_name((uint32_t)want) : "?");
                n_q6 += t->type == Q6_K;
            }
            /* Q4_K_M with 2 layers: output + layer 1's attn_v and ffn_down (7*2/8 = 1) */
            if (q == 0) CHECK(n_q6 == 3, "%s has %d Q6_K tensors", path, n_q6);
            gguf_close(f);
        }
    }
}

/* ---- end to end ------------------------------------------------------------------------- */

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* uniform sum, mean 0, std ~0.02 */
    float s = 0;
    for (int i = 0; i < 4; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        s += (float)(rng >> 40) / 16777216.0f;
    }
    return (s - 2.0f) * 1.7320508f * 0.02f;
}

typedef struct ttensor {
    char name[64];
    int64_t ne0, ne1; /* ne1 = 0: 1-D */
    float *data;
} ttensor;

/* A 2-layer qwen2-shaped model: D 256, 4 heads / 1 KV head (n_gqa 4), F 288 (not a multiple of
 * 256, so ffn_down exercises the fallback), V 300.  Written with F32 or F16 storage. */
static int write_model(const char *path, uint32_t storage, ttensor *ts, int *nt) {
    const int64_t D = 256, KV = 64, F = 288, V = 300;
    int n = 0;
#define ADD(nm, a, b) (snprintf(ts[n].name, sizeof ts[n].name, "%s", nm), ts[n].ne0 = a, \
                       ts[n].ne1 = b, n++)
    ADD("token_embd.weight", D, V);
    ADD("output_norm.weight", D, 0);
    ADD("output.weight", D, V);
    for (int l = 0; l < 2; l++) {
        char nm[64];
#define ADDL(s, a, b) (snprintf(nm, sizeof nm, "blk.%d." s, l), ADD(nm, a, b))
        ADDL("attn_norm.weight", D, 0);
        ADDL("attn_q.weight", D, D);
        ADDL("attn_q.bias", D, 0);
        ADDL("attn_k.weight", D, KV);
        ADDL("attn_k.bias", KV, 0);
        ADDL("attn_v.weight", D, KV);
        ADDL("attn_v.bias", KV, 0);
        ADDL("attn_output.weight", D, D);
        ADDL("ffn_norm.weight", D, 0);
        ADDL("ffn_gate.weight", D, F);
        ADDL("ffn_up.weight", D, F);
        ADDL("ffn_down.weight", F, D);
#undef ADDL
    }
#undef ADD
    *nt = n;
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "qwen2");
    gguf_writer_set_str(w, "general.name", "quantize-test");
    gguf_writer_set_u32(w, "qwen2.block_count", 2);
    gguf_writer_set_u32(w, "qwen2.embedding_length", (uint32_t)D);
    gguf_writer_set_u32(w, "qwen2.attention.head_count", 4);
    gguf_writer_set_u32(w, "qwen2.attention.head_count_kv", 1);
    gguf_writer_set_u32(w, "qwen2.context_length", 512);
    gguf_writer_set_u32(w, "general.file_type", storage == F16 ? 1 : 0);
    const char *toks[3] = { "a", "b", "c" };
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    gguf_writer_set_str(w, "test.marker", "kept");
    void *bufs[64] = { 0 };
    seek_err err = { 0 };
    int rc = 0;
    for (int i = 0; i < n; i++) {
        ttensor *t = &ts[i];
        int64_t cnt = t->ne0 * (t->ne1 ? t->ne1 : 1);
        t->data = malloc((size_t)cnt * sizeof(float));
        bool norm = strstr(t->name, "norm") != NULL;
        for (int64_t j = 0; j < cnt; j++) t->data[j] = norm ? 1.0f + frand() : frand();
        /* norms stay F32 even in an F16 checkpoint, biases follow the storage type so the
         * converter's F16 -> F32 path for 1-D tensors is exercised */
        uint32_t ty = (storage == F16 && !norm) ? F16 : F32;
        const void *data = t->data;
        if (ty == F16) {
            f16_t *h = malloc((size_t)cnt * sizeof(f16_t));
            for (int64_t j = 0; j < cnt; j++) {
                h[j] = f32_to_f16(t->data[j]);
                t->data[j] = f16_to_f32(h[j]); /* the reference is what the file holds */
            }
            bufs[i] = h;
            data = h;
        }
        int64_t ne[2] = { t->ne0, t->ne1 };
        rc |= gguf_writer_add_tensor(w, t->name, ty, t->ne1 ? 2 : 1, ne, data,
                                     gguf_row_bytes(ty, (uint64_t)t->ne0) *
                                         (uint64_t)(t->ne1 ? t->ne1 : 1), &err);
    }
    rc |= gguf_writer_write(w, path, &err);
    if (rc) printf("write_model: %s\n", err.msg);
    gguf_writer_free(w);
    for (int i = 0; i < n; i++) free(bufs[i]);
    return rc ? -1 : 0;
}

/* Largest acceptable RMS(dequantized - original) / RMS(original) for random normal weights. */
static double max_rel_err(uint32_t type) {
    switch (type) {
    case F32: return 0.0;
    case F16: case BF16: return 0.005;
    case Q8_0: return 0.01;
    case Q6_K: return 0.03;
    case Q5_0: case Q5_1: case Q5_K: return 0.06;
    case Q4_0: case Q4_1: case Q4_K: return 0.12;
    case Q3_K: return 0.2;
    case Q2_K: return 0.4;
    default: return 0.0;
    }
}

static void check_output(const char *path, const char *mixname, const ttensor *ts, int nt) {
    seek_err err = { 0 };
    gguf_file *f = gguf_open(path, &err);
    CHECK(f != NULL, "%s: open output: %s", mixname, err.msg);
    if (!f) return;
    const store_mix *mx = store_mix_find(mixname);
    uint32_t ft = 99, qv = 0;
    CHECK(gguf_get_u32(f, "general.file_type", &ft, NULL) == 0 && ft == mx->file_type,
          "%s: file_type %u", mixname, ft);
    CHECK(gguf_get_u32(f, "general.quantization_version", &qv, NULL) == 0 && qv == 2,
          "%s: quantization_version", mixname);
    gguf_str s;
    CHECK(gguf_get_str(f, "test.marker", &s, NULL) == 0 && gguf_str_eq(s, "kept"),
          "%s: metadata copied", mixname);
    const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECK(kv && kv->arr_n == 3 && gguf_arr_str(f, kv, 2, &s) == 0 && gguf_str_eq(s, "c"),
          "%s: string array copied", mixname);
    CHECK(gguf_n_tensors(f) == (uint64_t)nt, "%s: tensor count", mixname);
    store_qmodel m;
    CHECK(store_qmodel_from_file(f, &m, &err) == 0 && m.n_head_kv == 1, "%s: qmodel", mixname);
    /* llama.cpp order: non-block tensors first, then by layer */
    const gguf_tensor *t0 = gguf_tensor_at(f, 0);
    CHECK(t0 && gguf_str_eq(t0->name, "output.weight"), "%s: first tensor is output.weight",
          mixname);
    for (int i = 0; i < nt; i++) {
        const ttensor *src = &ts[i];
        const gguf_tensor *t = gguf_find_tensor(f, src->name);
        CHECK(t != NULL, "%s: %s missing", mixname, src->name);
        if (!t) continue;
        int want = store_tensor_type(&m, mx, src->name, src->ne1 ? 2 : 1, t->ne,
                                     store_tensor_layer(src->name), NULL, NULL);
        CHECK((int)t->type == want, "%s: %s is %s, want %s", mixname, src->name,
              gguf_type_name(t->type), want >= 0 ? gguf_type_name((uint32_t)want) : "?");
        CHECK(t->ne[0] == src->ne0 && t->ne[1] == (src->ne1 ? src->ne1 : 1), "%s: %s shape",
              mixname, src->name);
        const kern_type_traits *tr = kern_traits(t->type);
        CHECK(tr && tr->to_float, "%s: no to_float for %s", mixname, gguf_type_name(t->type));
        if (!tr || !tr->to_float) continue;
        int64_t rows = src->ne1 ? src->ne1 : 1;
        float *row = malloc((size_t)src->ne0 * sizeof(float));
        double se = 0, ss = 0;
        for (int64_t r = 0; r < rows; r++) {
            tr->to_float((const uint8_t *)t->data + (uint64_t)r * t->nb[1], row, src->ne0);
            for (int64_t j = 0; j < src->ne0; j++) {
                double x = src->data[r * src->ne0 + j], d = row[j] - x;
                se += d * d;
                ss += x * x;
            }
        }
        free(row);
        double rel = sqrt(se / (ss > 0 ? ss : 1));
        CHECK(rel <= max_rel_err(t->type) + 1e-12, "%s: %s as %s: relative error %.4f > %.4f",
              mixname, src->name, gguf_type_name(t->type), rel, max_rel_err(t->type));
    }
    /* the spot checks the shapes were chosen for */
    const gguf_tensor *d0 = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    const gguf_tensor *d1 = gguf_find_tensor(f, "blk.1.ffn_down.weight");
    if (strcmp(mixname, "Q4_K_M") == 0 && d0 && d1) {
        CHECK(d0->type == Q5_0, "Q4_K_M ffn_down 0 (Q4_K, 288 cols) -> Q5_0, got %s",
              gguf_type_name(d0->type));
        CHECK(d1->type == Q8_0, "Q4_K_M ffn_down 1 (Q6_K, 288 cols) -> Q8_0, got %s",
              gguf_type_name(d1->type));
    }
    gguf_close(f);
}

static void test_end_to_end(void) {
    char dir[] = "/tmp/seek-test-quantize-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char in32[128], in16[128], out[128];
    snprintf(in32, sizeof in32, "%s/in-f32.gguf", dir);
    snprintf(in16, sizeof in16, "%s/in-f16.gguf", dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    ttensor t32[64], t16[64];
    int n32 = 0, n16 = 0;
    CHECK(write_model(in32, F32, t32, &n32) == 0, "write F32 model");
    CHECK(write_model(in16, F16, t16, &n16) == 0, "write F16 model");

    store_quantize_opts o = { .n_threads = 3, .quiet = true };
    for (int i = 0; store_mix_at(i); i++) {
        const char *mix = store_mix_at(i)->name;
        for (int src = 0; src < 2; src++) {
            seek_err err = { 0 };
            store_quantize_stats st;
            int rc = store_quantize_ex(src ? in16 : in32, out, mix, &o, &st, &err);
            CHECK(rc == 0, "quantize %s from %s: %s", mix, src ? "F16" : "F32", err.msg);
            if (rc != 0) continue;
            CHECK(st.n_tensors == (uint64_t)n32 && st.out_bytes > 0 && st.in_bytes > 0,
                  "%s stats", mix);
            check_output(out, mix, src ? t16 : t32, src ? n16 : n32);
        }
    }

    /* refusals: already-quantized input, unknown mix, missing file */
    seek_err err = { 0 };
    char q[128];
    snprintf(q, sizeof q, "%s/q.gguf", dir);
    CHECK(store_quantize_ex(in32, q, "Q4_K_M", &o, NULL, &err) == 0, "make Q4_K_M");
    err.msg[0] = 0;
    CHECK(store_quantize_ex(q, out, "Q8_0", &o, NULL, &err) == -1 &&
              strstr(err.msg, "already quantized") != NULL,
          "requantize refused: %s", err.msg);
    err.msg[0] = 0;
    CHECK(store_quantize_ex(in32, out, "Q4_K_Z", &o, NULL, &err) == -1 &&
              strstr(err.msg, "Q4_K_Z") != NULL, "unknown mix: %s", err.msg);
    CHECK(store_quantize_ex("/nonexistent/x.gguf", out, "Q8_0", &o, NULL, &err) == -1,
          "missing input");

    for (int i = 0; i < n32; i++) free(t32[i].data);
    for (int i = 0; i < n16; i++) free(t16[i].data);
    unlink(in32);
    unlink(in16);
    unlink(out);
    unlink(q);
    rmdir(dir);
}

int main(void) {
    base_init();
    test_r1_qwen_1_5b_q4_k_m();
    test_mix_table();
    test_fallback();
    test_fixtures();
    test_end_to_end();
    return check_done("test_quantize");
}
