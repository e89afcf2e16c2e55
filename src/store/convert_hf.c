/*
 * convert_hf.c - a Hugging Face checkpoint directory -> a GGUF file, as llama.cpp's
 * convert_hf_to_gguf.py writes it for the two architectures seek runs (see convert.h).
 *
 * Data flow of store_convert_hf:
 *   config.json -> hf_config (architecture, dimensions, RoPE)
 *   *.safetensors -> store_st (mmapped, validated)
 *   plan: one job per output tensor, in the converter's order (rope_freqs, token_embd, blocks by
 *         layer, output_norm, output); every source tensor looked up by its HF name and checked
 *         for dtype and shape before anything is written
 *   metadata: general.*, <arch>.* hyperparameters, tokenizer.* (tok_convert_hf_padded)
 *   write: gguf_writer_write calls each job's fill callback in turn; it converts the source rows
 *          (F32/F16/BF16 -> F32/F16/BF16, round to nearest even) split across a kern_pool, then
 *          drops the source pages, so memory stays at about one tensor.
 *
 * Names (HF -> GGUF): model.embed_tokens -> token_embd, model.norm -> output_norm, lm_head ->
 * output, model.layers.N.{input_layernorm -> blk.N.attn_norm, self_attn.{q,k,v,o}_proj ->
 * attn_{q,k,v,output}, post_attention_layernorm -> ffn_norm, mlp.{gate,up,down}_proj ->
 * ffn_{gate,up,down}}.  Tensors not listed (rotary_emb.inv_freq, ...) are skipped.
 *
 * Llama's Q/K rows: transformers rotates the two halves of each head (dimension i with
 * i + d/2, "rotate_half"); llama.cpp's llama architecture rotates adjacent pairs (2i, 2i+1).
 * The converter reorders the rows of q_proj and k_proj (weights and biases) within each head so
 * that GGUF row 2i + j is HF row j*d/2 + i (LlamaModel.permute: reshape(heads, 2, d/2, ...),
 * swap axes 1 and 2).  Qwen2 keeps HF's order: llama.cpp rotates it NEOX-style.
 *
 * Llama-3.1 RoPE scaling (rope_scaling.rope_type "llama3") becomes rope_freqs.weight: per RoPE
 * pair i, with frequency f = theta^(-2i/d) and wavelength 2 pi / f, the divisor of f is 1 for
 * wavelengths below orig_ctx / high_freq_factor, `factor` above orig_ctx / low_freq_factor, and
 * 1 / ((1 - s) / factor + s) between, s = (orig_ctx / wavelength - low) / (high - low).
 */
#include "convert.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../gguf/gguf.h"
#include "../kern/kern.h"
#include "../tok/tok.h"
#include "safetensors.h"

/* ---- config.json ---------------------------------------------------------------------------- */

/* llama.cpp's LLAMA_FTYPE_* for float files. */
enum { FTYPE_ALL_F32 = 0, FTYPE_F16 = 1, FTYPE_BF16 = 32 };

typedef struct hf_config {
    char hf_arch[96];      /* config.json architectures[0] */
    const char *arch;      /* "qwen2" or "llama" */
    bool is_llama;
    int64_t n_embd;        /* hidden_size */
    int64_t n_layer;       /* num_hidden_layers */
    int64_t n_head;        /* num_attention_heads */
    int64_t n_head_kv;     /* num_key_value_heads (default n_head) */
    int64_t head_dim;      /* head_dim (default n_embd / n_head) */
    bool has_head_dim;     /* config.json gives head_dim */
    int64_t n_ff;          /* intermediate_size */
    int64_t n_ctx;         /* max_position_embeddings */
    int64_t vocab_size;    /* vocab_size, -1 when absent */
    double rms_eps;        /* rms_norm_eps */
    double rope_theta;     /* rope_theta (default 10000) */
    bool tied;             /* tie_word_embeddings */
    bool llama3_rope;      /* rope_scaling.rope_type == "llama3" */
    double rs_factor, rs_low, rs_high, rs_orig_ctx;
} hf_config;

/* An integer key in [lo, hi]; absent or null keys give dflt, or an error if required. */
static int cfg_int(const json_t *root, const char *key, bool required, int64_t dflt, int64_t lo,
                   int64_t hi, int64_t *out, seek_err *err) {
    const json_t *j = json_object_get(root, key);
    if (!j || json_is_null(j)) {
        if (required) return err_set(err, SEEK_EFORMAT, "config.json: '%s' is missing", key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(j)) return err_set(err, SEEK_EFORMAT, "config.json: '%s' is not an integer", key);
    json_int_t v = json_integer_value(j);
    if (v < lo || v > hi)
        return err_set(err, SEEK_EFORMAT, "config.json: '%s' = %lld is out of range [%lld, %lld]", key,
                       (long long)v, (long long)lo, (long long)hi);
    *out = (int64_t)v;
    return 0;
}

static int cfg_num(const json_t *root, const char *key, bool required, double dflt, double *out, seek_err *err) {
    const json_t *j = json_object_get(root, key);
    if (!j || json_is_null(j)) {
        if (required) return err_set(err, SEEK_EFORMAT, "config.json: '%s' is missing", key);
        *out = dflt;
        return 0;
    }
    if (!json_is_number(j)) return err_set(err, SEEK_EFORMAT, "config.json: '%s' is not a number", key);
    *out = json_number_value(j);
    if (!isfinite(*out)) return err_set(err, SEEK_EFORMAT, "config.json: '%s' is not finite", key);
    return 0;
}

static int read_rope_scaling(const json_t *root, hf_config *c, seek_err *err) {
    const json_t *rs = json_object_get(root, "rope_scaling");
    if (!rs || json_is_null(rs)) return 0;
    if (!json_is_object(rs)) return err_set(err, SEEK_EFORMAT, "config.json: rope_scaling is not an object");
    const char *kind = json_string_value(json_object_get(rs, "rope_type"));
    if (!kind) kind = json_string_value(json_object_get(rs, "type"));
    if (!kind || strcmp(kind, "default") == 0) return 0;
    if (strcmp(kind, "llama3") != 0 || !c->is_llama)
        return err_set(err, SEEK_EUNSUP, "config.json: rope_scaling type '%s' is not supported for %s "
                       "(only 'llama3' for LlamaForCausalLM)", kind, c->hf_arch);
    c->llama3_rope = true;
    int64_t orig;
    if (cfg_num(rs, "factor", false, 8.0, &c->rs_factor, err) ||
        cfg_num(rs, "low_freq_factor", false, 1.0, &c->rs_low, err) ||
        cfg_num(rs, "high_freq_factor", false, 4.0, &c->rs_high, err) ||
        cfg_int(rs, "original_max_position_embeddings", false, 8192, 1, 1ll << 32, &orig, err))
        return -1;
    c->rs_orig_ctx = (double)orig;
    if (!(c->rs_factor > 0) || !(c->rs_low > 0) || !(c->rs_high > c->rs_low))
        return err_set(err, SEEK_EFORMAT, "config.json: rope_scaling needs factor > 0 and "
                       "high_freq_factor > low_freq_factor > 0");
    return 0;
}

static int read_config(const char *dir, hf_config *c, seek_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (access(path, F_OK) != 0) return err_set(err, SEEK_ENOTFOUND, "config.json not found");
        return err_set(err, SEEK_EFORMAT, "config.json: %s (line %d)", jerr.text, jerr.line);
    }
    int rc = -1;
    memset(c, 0, sizeof *c);
    const json_t *archs = json_object_get(root, "architectures");
    const char *a = json_string_value(json_array_get(archs, 0));
    if (!json_is_object(root) || !a) {
        err_set(err, SEEK_EFORMAT, "config.json: no \"architectures\" list");
        goto done;
    }
    snprintf(c->hf_arch, sizeof c->hf_arch, "%s", a);
    if (strcmp(a, "Qwen2ForCausalLM") == 0) {
        c->arch = "qwen2";
    } else if (strcmp(a, "LlamaForCausalLM") == 0) {
        c->arch = "llama";
        c->is_llama = true;
    } else {
        err_set(err, SEEK_EUNSUP, "architecture '%s' is not supported (seek converts Qwen2ForCausalLM "
                "and LlamaForCausalLM)", c->hf_arch);
        goto done;
    }
    const int64_t big = 1ll << 31;
    if (cfg_int(root, "hidden_size", true, 0, 1, big, &c->n_embd, err) ||
        cfg_int(root, "num_hidden_layers", true, 0, 1, 100000, &c->n_layer, err) ||
        cfg_int(root, "num_attention_heads", true, 0, 1, 100000, &c->n_head, err) ||
        cfg_int(root, "num_key_value_heads", false, c->n_head, 1, 100000, &c->n_head_kv, err) ||
        cfg_int(root, "intermediate_size", true, 0, 1, big, &c->n_ff, err) ||
        cfg_int(root, "max_position_embeddings", true, 0, 1, big, &c->n_ctx, err) ||
        cfg_int(root, "vocab_size", false, -1, 1, big, &c->vocab_size, err) ||
        cfg_num(root, "rms_norm_eps", true, 0, &c->rms_eps, err) ||
        cfg_num(root, "rope_theta", false, 10000.0, &c->rope_theta, err))
        goto done;
    const json_t *hd = json_object_get(root, "head_dim");
    c->has_head_dim = hd && !json_is_null(hd);
    if (cfg_int(root, "head_dim", false, c->n_embd / c->n_head, 1, 100000, &c->head_dim, err)) goto done;
    if (!c->has_head_dim && c->n_embd % c->n_head != 0) {
        err_set(err, SEEK_EFORMAT, "config.json: hidden_size %lld is not a multiple of num_attention_heads %lld",
                (long long)c->n_embd, (long long)c->n_head);
        goto done;
    }
    if (c->n_head % c->n_head_kv != 0 || c->head_dim % 2 != 0) {
        err_set(err, SEEK_EFORMAT, "config.json: num_attention_heads %lld must be a multiple of "
                "num_key_value_heads %lld and head_dim %lld even", (long long)c->n_head,
                (long long)c->n_head_kv, (long long)c->head_dim);
        goto done;
    }
    if (!(c->rms_eps >= 0 && c->rms_eps < 1) || !(c->rope_theta > 0)) {
        err_set(err, SEEK_EFORMAT, "config.json: rms_norm_eps %g or rope_theta %g out of range", c->rms_eps,
                c->rope_theta);
        goto done;
    }
    const json_t *tie = json_object_get(root, "tie_word_embeddings");
    c->tied = json_is_true(tie);
    if (read_rope_scaling(root, c, err) != 0) goto done;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* ---- the plan: one job per output tensor ------------------------------------------------------ */

/* One output tensor and where its bytes come from.  The fill callback's context. */
typedef struct conv_job {
    char name[64];                /* GGUF name */
    const store_st_tensor *src;   /* NULL for generated tensors */
    const float *gen;             /* generated F32 data (rope_freqs), or NULL */
    uint32_t out_type;            /* enum gguf_type: F32, F16 or BF16 */
    uint32_t n_dims;              /* 1 or 2 */
    int64_t ne[2];                /* GGUF order: ne[0] = columns (contiguous), ne[1] = rows */
    int64_t perm_heads;           /* > 0: llama Q/K row order, this many heads; 0: rows as is */
    int64_t n_rows, row_len;      /* what the fill loop walks: ne[1] rows of ne[0] elements, or
                                   * for a permuted 1-D tensor (a bias) ne[0] rows of 1 */
    kern_pool *pool;              /* shared */
    int index, count;             /* for progress lines */
} conv_job;

typedef struct conv_plan {
    conv_job *jobs;
    int n, cap;
    uint32_t mat_type;            /* type of 2-D weights */
    int64_t n_vocab;              /* rows of token_embd */
    float *rope_freqs;            /* (head_dim / 2), owned */
    bool *used;                   /* per store_st tensor index: consumed by a job */
} conv_plan;

static const char *type_label(uint32_t t) {
    return t == STORE_ST_UNSUPPORTED ? "?" : gguf_type_name(t);
}

static int plan_add(conv_plan *p, const char *gguf_name, seek_err *err) {
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        conv_job *j = realloc(p->jobs, (size_t)cap * sizeof *j);
        if (!j) return err_set(err, SEEK_ENOMEM, "out of memory");
        p->jobs = j;
        p->cap = cap;
    }
    conv_job *j = &p->jobs[p->n++];
    memset(j, 0, sizeof *j);
    snprintf(j->name, sizeof j->name, "%s", gguf_name);
    return 0;
}

static void shape_str(const store_st_tensor *t, char *buf, size_t cap) {
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->n_dims && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* Adds the job for HF tensor hf_name -> gguf_name.  rows/cols: the expected HF shape (cols < 0
 * for a 1-D tensor of `rows` elements; rows < 0: any row count, the embedding's).  A missing
 * tensor is an error unless optional (then no job is added). */
static int plan_tensor(conv_plan *p, const store_st *st, const char *hf_name, const char *gguf_name,
                       int64_t rows, int64_t cols, int64_t perm_heads, bool optional, seek_err *err) {
    const store_st_tensor *t = store_st_find(st, hf_name);
    if (!t) {
        if (optional) return 0;
        return err_set(err, SEEK_ENOTFOUND, "tensor '%s' is missing (needed for %s)", hf_name, gguf_name);
    }
    if (t->type == STORE_ST_UNSUPPORTED)
        return err_set(err, SEEK_EUNSUP, "tensor '%s' has dtype %s; only F32, F16 and BF16 can be converted",
                       hf_name, t->dtype);
    bool is_mat = cols >= 0;
    bool ok = is_mat ? t->n_dims == 2 && (rows < 0 || t->shape[0] == rows) && t->shape[1] == cols && t->shape[0] > 0
                     : t->n_dims == 1 && t->shape[0] == rows;
    if (!ok) {
        char got[128];
        shape_str(t, got, sizeof got);
        if (is_mat && rows < 0)
            return err_set(err, SEEK_EFORMAT, "tensor '%s' has shape %s, expected [n, %lld]", hf_name, got, (long long)cols);
        if (is_mat)
            return err_set(err, SEEK_EFORMAT, "tensor '%s' has shape %s, expected [%lld, %lld]", hf_name, got,
                           (long long)rows, (long long)cols);
        return err_set(err, SEEK_EFORMAT, "tensor '%s' has shape %s, expected [%lld]", hf_name, got, (long long)rows);
    }
    if (plan_add(p, gguf_name, err) != 0) return -1;
    conv_job *j = &p->jobs[p->n - 1];
    j->src = t;
    j->n_dims = is_mat ? 2 : 1;
    j->ne[0] = is_mat ? t->shape[1] : t->shape[0];
    j->ne[1] = is_mat ? t->shape[0] : 1;
    j->out_type = is_mat ? p->mat_type : GGUF_TYPE_F32;
    j->perm_heads = perm_heads;
    j->n_rows = is_mat || !perm_heads ? j->ne[1] : j->ne[0];
    j->row_len = is_mat || !perm_heads ? j->ne[0] : 1;
    p->used[t->index] = true;
    return 0;
}

/* rope_freqs.weight for Llama-3.1 scaling (formula in the file header), in llama.cpp's
 * precision: frequencies in float32, the band arithmetic in double. */
static float *llama3_rope_freqs(const hf_config *c) {
    int64_t n = c->head_dim / 2;
    float *out = malloc((size_t)n * sizeof *out);
    if (!out) return NULL;
    const double low_wavelen = c->rs_orig_ctx / c->rs_low, high_wavelen = c->rs_orig_ctx / c->rs_high;
    for (int64_t i = 0; i < n; i++) {
        float freq = 1.0f / powf((float)c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        double wavelen = 2 * M_PI / (double)freq;
        double div;
        if (wavelen < high_wavelen) {
            div = 1.0;
        } else if (wavelen > low_wavelen) {
            div = c->rs_factor;
        } else {
            double smooth = (c->rs_orig_ctx / wavelen - c->rs_low) / (c->rs_high - c->rs_low);
            div = 1.0 / ((1 - smooth) / c->rs_factor + smooth);
        }
        out[i] = (float)div;
    }
    return out;
}

/* Picks the matrices' type: the requested one, or auto (BF16 if the embedding is BF16, else F16,
 * like llama.cpp's --outtype auto). */
static int pick_mat_type(const char *req, const store_st *st, uint32_t *out, seek_err *err) {
    if (!req || strcasecmp(req, "auto") == 0) {
        const store_st_tensor *e = store_st_find(st, "model.embed_tokens.weight");
        *out = e && e->type == GGUF_TYPE_BF16 ? GGUF_TYPE_BF16 : GGUF_TYPE_F16;
        return 0;
    }
    if (strcasecmp(req, "f32") == 0) *out = GGUF_TYPE_F32;
    else if (strcasecmp(req, "f16") == 0) *out = GGUF_TYPE_F16;
    else if (strcasecmp(req, "bf16") == 0) *out = GGUF_TYPE_BF16;
    else
        return err_set(err, SEEK_EINVAL, "output type '%s' is not one of F32, F16, BF16, auto "
                       "(quantize the result with seek quantize)", req);
    return 0;
}

static int build_plan(const hf_config *c, const store_st *st, conv_plan *p, seek_err *err) {
    const int64_t D = c->n_embd, F = c->n_ff, qd = c->n_head * c->head_dim, kvd = c->n_head_kv * c->head_dim;
    p->used = calloc(store_st_n_tensors(st) + 1, sizeof *p->used);
    if (!p->used) return err_set(err, SEEK_ENOMEM, "out of memory");

    if (c->llama3_rope) {
        if (!(p->rope_freqs = llama3_rope_freqs(c))) return err_set(err, SEEK_ENOMEM, "out of memory");
        if (plan_add(p, "rope_freqs.weight", err) != 0) return -1;
        conv_job *j = &p->jobs[p->n - 1];
        j->gen = p->rope_freqs;
        j->out_type = GGUF_TYPE_F32;
        j->n_dims = 1;
        j->ne[0] = c->head_dim / 2;
        j->ne[1] = 1;
    }
    int64_t V = c->vocab_size > 0 ? c->vocab_size : -1;
    if (plan_tensor(p, st, "model.embed_tokens.weight", "token_embd.weight", V, D, 0, false, err)) return -1;
    p->n_vocab = p->jobs[p->n - 1].ne[1];

    /* per layer: HF suffix, GGUF suffix, rows, cols (-1: 1-D), Q/K heads to permute by */
    const int64_t q_perm = c->is_llama ? c->n_head : 0, k_perm = c->is_llama ? c->n_head_kv : 0;
    const struct {
        const char *hf, *gg;
        int64_t rows, cols, perm;
        bool bias;
    } layer[] = {
        { "input_layernorm.weight", "attn_norm.weight", D, -1, 0, false },
        { "self_attn.q_proj.weight", "attn_q.weight", qd, D, q_perm, false },
        { "self_attn.q_proj.bias", "attn_q.bias", qd, -1, q_perm, true },
        { "self_attn.k_proj.weight", "attn_k.weight", kvd, D, k_perm, false },
        { "self_attn.k_proj.bias", "attn_k.bias", kvd, -1, k_perm, true },
        { "self_attn.v_proj.weight", "attn_v.weight", kvd, D, 0, false },
        { "self_attn.v_proj.bias", "attn_v.bias", kvd, -1, 0, true },
        { "self_attn.o_proj.weight", "attn_output.weight", D, qd, 0, false },
        { "post_attention_layernorm.weight", "ffn_norm.weight", D, -1, 0, false },
        { "mlp.gate_proj.weight", "ffn_gate.weight", F, D, 0, false },
        { "mlp.up_proj.weight", "ffn_up.weight", F, D, 0, false },
        { "mlp.down_proj.weight", "ffn_down.weight", D, F, 0, false },
    };
    for (int64_t il = 0; il < c->n_layer; il++) {
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            char hf[160], gg[64];
            snprintf(hf, sizeof hf, "model.layers.%lld.%s", (long long)il, layer[k].hf);
            snprintf(gg, sizeof gg, "blk.%lld.%s", (long long)il, layer[k].gg);
            /* Qwen2 always has Q/K/V biases; Llama has them only with attention_bias. */
            bool optional = layer[k].bias && c->is_llama;
            if (plan_tensor(p, st, hf, gg, layer[k].rows, layer[k].cols, layer[k].perm, optional, err))
                return -1;
        }
    }
    if (plan_tensor(p, st, "model.norm.weight", "output_norm.weight", D, -1, 0, false, err)) return -1;
    /* A checkpoint with tied embeddings usually has no lm_head; if it has one anyway it is written,
     * as llama.cpp does.  Without tying, lm_head is required. */
    return plan_tensor(p, st, "lm_head.weight", "output.weight", p->n_vocab, D, 0, c->tied, err);
}

/* ---- the fill callback: source rows -> output rows ------------------------------------------- */

/* Row r of the output comes from this source row: for llama Q/K, output row 2i + j of a head
 * (i < d/2, j in {0, 1}) is HF row j*d/2 + i of that head; otherwise r itself. */
static int64_t source_row(const conv_job *j, int64_t r) {
    if (j->perm_heads <= 0) return r;
    int64_t hd = j->n_rows / j->perm_heads, h = r / hd, w = r % hd;
    return h * hd + (w % 2) * (hd / 2) + w / 2;
}

/* n elements from src (type st) to dst (type dt), through float; src may be unaligned. */
static void convert_elems(const uint8_t *src, uint32_t st, uint8_t *dst, uint32_t dt, int64_t n) {
    float buf[256];
    for (int64_t i0 = 0; i0 < n; i0 += 256) {
        int64_t m = n - i0 < 256 ? n - i0 : 256;
        if (st == GGUF_TYPE_F32) {
            memcpy(buf, src + i0 * 4, (size_t)m * 4);
        } else {
            for (int64_t i = 0; i < m; i++) {
                uint16_t h;
                memcpy(&h, src + (i0 + i) * 2, 2);
                buf[i] = st == GGUF_TYPE_F16 ? f16_to_f32(h) : bf16_to_f32(h);
            }
        }
        if (dt == GGUF_TYPE_F32) {
            memcpy(dst + i0 * 4, buf, (size_t)m * 4);
        } else {
            for (int64_t i = 0; i < m; i++) {
                uint16_t h = dt == GGUF_TYPE_F16 ? f32_to_f16(buf[i]) : f32_to_bf16(buf[i]);
                memcpy(dst + (i0 + i) * 2, &h, 2);
            }
        }
    }
}

typedef struct conv_run {
    const conv_job *job;
    uint8_t *dst;
} conv_run;

/* Hot loop: one share of the output rows per pool thread. */
static void conv_task(void *arg, int ith, int nth) {
    const conv_run *q = arg;
    const conv_job *j = q->job;
    const int64_t k = j->row_len;
    const uint64_t src_row = (uint64_t)k * (j->src->type == GGUF_TYPE_F32 ? 4 : 2);
    const uint64_t dst_row = (uint64_t)k * (j->out_type == GGUF_TYPE_F32 ? 4 : 2);
    const uint8_t *src = j->src->data;
    int64_t r0, r1;
    kern_split(j->n_rows, 1, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *s = src + (uint64_t)source_row(j, r) * src_row;
        uint8_t *d = q->dst + (uint64_t)r * dst_row;
        if (j->src->type == j->out_type) memcpy(d, s, dst_row);
        else convert_elems(s, j->src->type, d, j->out_type, k);
    }
}

static int conv_fill(void *ctx, void *dst, uint64_t nbytes, seek_err *err) {
    const conv_job *j = ctx;
    uint64_t want = (uint64_t)j->ne[0] * (uint64_t)j->ne[1] * (j->out_type == GGUF_TYPE_F32 ? 4 : 2);
    if (nbytes != want)
        return err_set(err, SEEK_EINVAL, "%s: writer asked for %llu bytes, expected %llu", j->name,
                       (unsigned long long)nbytes, (unsigned long long)want);
    uint64_t t0 = time_now_ns();
    if (j->gen) {
        memcpy(dst, j->gen, nbytes);
    } else {
        conv_run q = { .job = j, .dst = dst };
        if (j->ne[0] * j->ne[1] < ((int64_t)1 << 16)) conv_task(&q, 0, 1);
        else kern_pool_run(j->pool, conv_task, &q);
        store_st_release(j->src);
    }
    if (log_verbosity >= 1)
        log_info("[%4d/%4d] %-28s %-5s -> %-5s [%lld x %lld]%s (%.0f ms)", j->index + 1, j->count, j->name,
                 j->src ? type_label(j->src->type) : "gen", gguf_type_name(j->out_type), (long long)j->ne[0],
                 (long long)j->ne[1], j->perm_heads ? " rows permuted" : "",
                 (double)(time_now_ns() - t0) / 1e6);
    return 0;
}

/* ---- metadata ----------------------------------------------------------------------------------- */

static void base_name_of(const char *dir, char *buf, size_t cap) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && dir[b - 1] != '/') b--;
    size_t n = len - b < cap - 1 ? len - b : cap - 1;
    memcpy(buf, dir + b, n);
    buf[n] = 0;
    if (!buf[0] || strcmp(buf, ".") == 0) snprintf(buf, cap, "model");
}

static int set_arch_u32(gguf_writer *w, const char *arch, const char *key, int64_t v) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return gguf_writer_set_u32(w, k, (uint32_t)v);
}

static int set_arch_f32(gguf_writer *w, const char *arch, const char *key, double v) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return gguf_writer_set_f32(w, k, (float)v);
}

/* The keys llama.cpp's converter writes before the tokenizer's, in its order. */
static int set_model_keys(gguf_writer *w, const hf_config *c, uint32_t mat_type, int64_t n_vocab) {
    const char *a = c->arch;
    uint32_t ftype = mat_type == GGUF_TYPE_F32 ? FTYPE_ALL_F32 : mat_type == GGUF_TYPE_F16 ? FTYPE_F16 : FTYPE_BF16;
    int rc = gguf_writer_set_str(w, "general.type", "model");
    rc |= set_arch_u32(w, a, "block_count", c->n_layer);
    rc |= set_arch_u32(w, a, "context_length", c->n_ctx);
    rc |= set_arch_u32(w, a, "embedding_length", c->n_embd);
    rc |= set_arch_u32(w, a, "feed_forward_length", c->n_ff);
    rc |= set_arch_u32(w, a, "attention.head_count", c->n_head);
    rc |= set_arch_u32(w, a, "attention.head_count_kv", c->n_head_kv);
    rc |= set_arch_f32(w, a, "rope.freq_base", c->rope_theta);
    rc |= set_arch_f32(w, a, "attention.layer_norm_rms_epsilon", c->rms_eps);
    if (c->has_head_dim) {
        rc |= set_arch_u32(w, a, "attention.key_length", c->head_dim);
        rc |= set_arch_u32(w, a, "attention.value_length", c->head_dim);
    }
    rc |= gguf_writer_set_u32(w, "general.file_type", ftype);
    if (c->is_llama) {
        rc |= set_arch_u32(w, a, "vocab_size", n_vocab);
        rc |= set_arch_u32(w, a, "rope.dimension_count", c->head_dim);
    }
    rc |= gguf_writer_set_u32(w, "general.quantization_version", 2);
    return rc ? -1 : 0;
}

/* tokenizer.* keys, the token list padded with [PAD<id>] tokens up to pad_to (the embedding's
 * rows; 0: no padding).  *n_vocab gets the token count.  A chat_template.jinja file (where newer
 * checkpoints keep the template) replaces tokenizer_config.json's template, as llama.cpp's
 * converter does. */
static int set_tokenizer_keys(const char *dir, gguf_writer *w, int64_t pad_to, int32_t *n_vocab, seek_err *err) {
    char tj[4096], tc[4096], ct[4096];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(tc, sizeof tc, "%s/tokenizer_config.json", dir);
    snprintf(ct, sizeof ct, "%s/chat_template.jinja", dir);
    if (access(tj, F_OK) != 0) return err_set(err, SEEK_ENOTFOUND, "tokenizer.json not found");
    if (pad_to > INT32_MAX) return err_set(err, SEEK_EFORMAT, "vocabulary of %lld tokens is too large", (long long)pad_to);
    if (tok_convert_hf_padded(tj, access(tc, F_OK) == 0 ? tc : NULL, w, (int32_t)pad_to, n_vocab, err) != 0) return -1;
    if (access(ct, F_OK) != 0) return 0;
    size_t len;
    char *tmpl = fs_read_all(ct, &len, err);
    if (!tmpl) return -1;
    int rc = gguf_writer_set_str(w, "tokenizer.chat_template", tmpl);
    free(tmpl);
    return rc ? err_set(err, SEEK_ENOMEM, "out of memory") : 0;
}

/* ---- store_convert_hf ---------------------------------------------------------------------------- */

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Logs the source tensors no job uses (up to a few names). */
static void log_skipped(const store_st *st, const bool *used) {
    size_t n = store_st_n_tensors(st), skipped = 0;
    for (size_t i = 0; i < n; i++) {
        if (used[i]) continue;
        if (skipped < 8) log_info("skipping tensor '%s' (not used by the model)", store_st_tensor_at(st, i)->name);
        skipped++;
    }
    if (skipped > 8) log_info("skipping %zu more tensors", skipped - 8);
}

int store_convert_hf(const char *dir, const char *out_path, const store_convert_opts *opts, seek_err *err) {
    store_convert_opts o = opts ? *opts : (store_convert_opts){ 0 };
    hf_config c;
    store_st *st = NULL;
    gguf_writer *w = NULL;
    kern_pool *pool = NULL;
    conv_plan p = { 0 };
    int rc = -1;
    bool named = false; /* err already names the directory or file */
    char name[256];

    base_init();
    if (read_config(dir, &c, err) != 0) goto done;
    if (!(w = gguf_writer_new())) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto done;
    }
    base_name_of(dir, name, sizeof name);
    if (gguf_writer_set_str(w, "general.architecture", c.arch) || gguf_writer_set_str(w, "general.name", name)) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto done;
    }

    int32_t n_tok = 0;
    if (o.vocab_only) {
        if (set_tokenizer_keys(dir, w, c.vocab_size > 0 ? c.vocab_size : 0, &n_tok, err) != 0) goto done;
    } else {
        if (!(st = store_st_open_dir(dir, err))) {
            named = true; /* the reader's messages name the files */
            goto done;
        }
        if (pick_mat_type(o.out_type, st, &p.mat_type, err) != 0 || build_plan(&c, st, &p, err) != 0) goto done;
        if (set_model_keys(w, &c, p.mat_type, p.n_vocab) != 0) {
            err_set(err, SEEK_ENOMEM, "out of memory");
            goto done;
        }
        if (set_tokenizer_keys(dir, w, p.n_vocab, &n_tok, err) != 0) goto done;
        if (n_tok != p.n_vocab) {
            err_set(err, SEEK_EFORMAT, "tokenizer.json has %d tokens but model.embed_tokens.weight has %lld rows",
                    (int)n_tok, (long long)p.n_vocab);
            goto done;
        }
        log_skipped(st, p.used);
        int n_threads = o.n_threads > 0 ? o.n_threads : online_cpus();
        if (n_threads > 256) n_threads = 256;
        if (!(pool = kern_pool_new(n_threads, err))) goto done;
        for (int i = 0; i < p.n; i++) {
            conv_job *j = &p.jobs[i];
            j->pool = pool;
            j->index = i;
            j->count = p.n;
            uint64_t nbytes = (uint64_t)j->ne[0] * (uint64_t)j->ne[1] * (j->out_type == GGUF_TYPE_F32 ? 4 : 2);
            if (gguf_writer_add_tensor_fn(w, j->name, j->out_type, j->n_dims, j->ne, nbytes, conv_fill, j, err) != 0)
                goto done;
        }
    }
    if (gguf_writer_write(w, out_path, err) != 0) goto done;
    rc = 0;
done:
    if (rc != 0 && !named) err_prefix(err, "%s", dir);
    gguf_writer_free(w);
    kern_pool_free(pool);
    store_st_close(st);
    free(p.jobs);
    free(p.used);
    free(p.rope_freqs);
    return rc;
}
