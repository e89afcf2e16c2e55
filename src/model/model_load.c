/*
 * model_load.c - reads hyperparameters from GGUF metadata and binds weight tensors.
 *
 * Metadata keys are prefixed with the architecture name ("qwen2.block_count", ...).  Each tensor
 * the forward pass touches is looked up by its llama.cpp name, checked for shape and type, and
 * bound in place (a pointer into the mmap); nothing is copied except 1-D tensors stored in a
 * type other than F32, which are converted once.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_int(const gguf_file *f, const char *arch, const char *suffix, int64_t *out,
                   bool required, int64_t dflt, seek_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!gguf_find_kv(f, key)) {
        if (required) return err_set(err, SEEK_EFORMAT, "missing metadata key %s", key);
        *out = dflt;
        return 0;
    }
    int64_t v;
    if (gguf_get_i64(f, key, &v, err) != 0) return -1;
    if (v < 0 || v > (1ll << 40)) return err_set(err, SEEK_EFORMAT, "metadata %s = %lld is out of range", key, (long long)v);
    *out = v;
    return 0;
}

static int get_float(const gguf_file *f, const char *arch, const char *suffix, float *out,
                     float dflt, seek_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!gguf_find_kv(f, key)) {
        *out = dflt;
        return 0;
    }
    return gguf_get_f32(f, key, out, err);
}

static int read_hparams(const gguf_file *f, model_hparams *hp, seek_err *err) {
    gguf_str arch;
    if (gguf_get_str(f, "general.architecture", &arch, err) != 0) return -1;
    gguf_str_copy(arch, hp->arch_name, sizeof hp->arch_name);
    if (strcmp(hp->arch_name, "qwen2") == 0) {
        hp->arch = MODEL_ARCH_QWEN2;
        hp->neox_rope = true;
    } else if (strcmp(hp->arch_name, "llama") == 0) {
        hp->arch = MODEL_ARCH_LLAMA;
        hp->neox_rope = false;
    } else {
        return err_set(err, SEEK_EUNSUP, "architecture '%s' is not supported (seek runs qwen2 and llama)", hp->arch_name);
    }
    const char *a = hp->arch_name;
    if (get_int(f, a, "block_count", &hp->n_layer, true, 0, err) ||
        get_int(f, a, "embedding_length", &hp->n_embd, true, 0, err) ||
        get_int(f, a, "feed_forward_length", &hp->n_ff, true, 0, err) ||
        get_int(f, a, "attention.head_count", &hp->n_head, true, 0, err) ||
        get_int(f, a, "attention.head_count_kv", &hp->n_head_kv, false, hp->n_head, err) ||
        get_int(f, a, "context_length", &hp->n_ctx_train, false, 2048, err))
        return -1;
    if (hp->n_layer < 1 || hp->n_embd < 1 || hp->n_ff < 1 || hp->n_head < 1 || hp->n_head_kv < 1)
        return err_set(err, SEEK_EFORMAT, "hyperparameters must be positive (layers %lld, embd %lld, ff %lld, heads %lld/%lld)",
                       (long long)hp->n_layer, (long long)hp->n_embd, (long long)hp->n_ff,
                       (long long)hp->n_head, (long long)hp->n_head_kv);
    if (hp->n_head % hp->n_head_kv != 0)
        return err_set(err, SEEK_EFORMAT, "head_count %lld is not a multiple of head_count_kv %lld",
                       (long long)hp->n_head, (long long)hp->n_head_kv);
    if (get_int(f, a, "attention.key_length", &hp->head_dim, false, hp->n_embd / hp->n_head, err)) return -1;
    if (hp->head_dim < 2 || hp->head_dim % 2 != 0 || hp->head_dim > 1024)
        return err_set(err, SEEK_EFORMAT, "head dimension %lld is not a small even number", (long long)hp->head_dim);
    int64_t vlen;
    if (get_int(f, a, "attention.value_length", &vlen, false, hp->head_dim, err)) return -1;
    if (vlen != hp->head_dim)
        return err_set(err, SEEK_EUNSUP, "value_length %lld differs from key_length %lld", (long long)vlen, (long long)hp->head_dim);
    if (get_int(f, a, "rope.dimension_count", &hp->n_rot, false, hp->head_dim, err)) return -1;
    if (hp->n_rot < 2 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
        return err_set(err, SEEK_EFORMAT, "rope.dimension_count %lld is invalid for head dimension %lld",
                       (long long)hp->n_rot, (long long)hp->head_dim);
    if (get_float(f, a, "rope.freq_base", &hp->rope_base, 10000.0f, err) ||
        get_float(f, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps, 1e-6f, err))
        return -1;
    if (!(hp->rope_base > 0) || !(hp->rms_eps >= 0) || hp->rms_eps > 1)
        return err_set(err, SEEK_EFORMAT, "invalid rope.freq_base %g or rms epsilon %g", hp->rope_base, hp->rms_eps);
    return 0;
}

/* Binds a 2-D weight "k columns x m rows" (GGUF ne0 = k, ne1 = m). */
static int bind_mat(const gguf_file *f, const char *name, int64_t k, int64_t m, kern_mat *out,
                    bool optional, seek_err *err) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        if (optional) {
            memset(out, 0, sizeof *out);
            return 0;
        }
        return err_set(err, SEEK_EFORMAT, "tensor '%s' is missing", name);
    }
    if (t->ne[0] != k || (m >= 0 && t->ne[1] != m) || t->ne[2] != 1 || t->ne[3] != 1)
        return err_set(err, SEEK_EFORMAT, "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                       name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3], (long long)k, (long long)m);
    const kern_type_traits *tr = kern_traits(t->type);
    if (!tr || !tr->vec_dot)
        return err_set(err, SEEK_EUNSUP, "tensor '%s' has type %s, which seek cannot compute with",
                       name, gguf_type_name(t->type));
    out->data = t->data;
    out->type = t->type;
    out->k = t->ne[0];
    out->m = t->ne[1];
    out->row_bytes = t->nb[1];
    return 0;
}

/* Binds a 1-D tensor of n floats; converts it to F32 in model-owned memory if stored otherwise. */
static int bind_vec(model *mdl, const char *name, int64_t n, const float **out, bool optional,
                    float **owned_cursor, seek_err *err) {
    const gguf_tensor *t = gguf_find_tensor(mdl->file, name);
    if (!t) {
        *out = NULL;
        if (optional) return 0;
        return err_set(err, SEEK_EFORMAT, "tensor '%s' is missing", name);
    }
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return err_set(err, SEEK_EFORMAT, "tensor '%s' has %lld x %lld elements, expected %lld",
                       name, (long long)t->ne[0], (long long)t->ne[1], (long long)n);
    if (t->type == GGUF_TYPE_F32) {
        *out = t->data;
        return 0;
    }
    const kern_type_traits *tr = kern_traits(t->type);
    if (!tr) return err_set(err, SEEK_EUNSUP, "tensor '%s' has unsupported type %s", name, gguf_type_name(t->type));
    tr->to_float(t->data, *owned_cursor, n);
    *out = *owned_cursor;
    *owned_cursor += n;
    return 0;
}

static int bind_weights(model *mdl, seek_err *err) {
    const gguf_file *f = mdl->file;
    model_hparams *hp = &mdl->hp;
    const int64_t D = hp->n_embd, F = hp->n_ff, qd = hp->n_head * hp->head_dim,
                  kvd = hp->n_head_kv * hp->head_dim;

    /* Float copies for 1-D tensors not stored as F32 (rare): reserve the worst case. */
    int64_t per_layer = 2 * D + qd + 2 * kvd;
    mdl->owned = malloc(sizeof(float) * (size_t)(per_layer * hp->n_layer + D + hp->n_rot));
    if (!mdl->owned) return err_set(err, SEEK_ENOMEM, "out of memory");
    float *cur = mdl->owned;

    if (bind_mat(f, "token_embd.weight", D, -1, &mdl->tok_embd, false, err)) return -1;
    hp->n_vocab = mdl->tok_embd.m;
    if (hp->n_vocab < 1) return err_set(err, SEEK_EFORMAT, "token_embd.weight has no rows");
    if (bind_mat(f, "output.weight", D, hp->n_vocab, &mdl->output, true, err)) return -1;
    mdl->tied_output = mdl->output.data == NULL;
    if (mdl->tied_output) mdl->output = mdl->tok_embd;
    if (bind_vec(mdl, "output_norm.weight", D, &mdl->output_norm, false, &cur, err)) return -1;
    if (bind_vec(mdl, "rope_freqs.weight", hp->n_rot / 2, &mdl->rope_freqs, true, &cur, err)) return -1;

    mdl->layers = calloc((size_t)hp->n_layer, sizeof(model_layer));
    if (!mdl->layers) return err_set(err, SEEK_ENOMEM, "out of memory");
    for (int64_t i = 0; i < hp->n_layer; i++) {
        model_layer *L = &mdl->layers[i];
        char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%lld." s, (long long)i), name)
        if (bind_vec(mdl, NAME("attn_norm.weight"), D, &L->attn_norm, false, &cur, err) ||
            bind_mat(f, NAME("attn_q.weight"), D, qd, &L->wq, false, err) ||
            bind_mat(f, NAME("attn_k.weight"), D, kvd, &L->wk, false, err) ||
            bind_mat(f, NAME("attn_v.weight"), D, kvd, &L->wv, false, err) ||
            bind_mat(f, NAME("attn_output.weight"), qd, D, &L->wo, false, err) ||
            bind_vec(mdl, NAME("attn_q.bias"), qd, &L->bq, true, &cur, err) ||
            bind_vec(mdl, NAME("attn_k.bias"), kvd, &L->bk, true, &cur, err) ||
            bind_vec(mdl, NAME("attn_v.bias"), kvd, &L->bv, true, &cur, err) ||
            bind_vec(mdl, NAME("ffn_norm.weight"), D, &L->ffn_norm, false, &cur, err) ||
            bind_mat(f, NAME("ffn_gate.weight"), D, F, &L->w_gate, false, err) ||
            bind_mat(f, NAME("ffn_up.weight"), D, F, &L->w_up, false, err) ||
            bind_mat(f, NAME("ffn_down.weight"), F, D, &L->w_down, false, err))
            return -1;
#undef NAME
    }
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) mdl->weight_bytes += gguf_tensor_at(f, i)->nbytes;
    return 0;
}

model *model_open(const char *path, seek_err *err) {
    base_init();
    model *mdl = calloc(1, sizeof *mdl);
    if (!mdl) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    mdl->file = gguf_open(path, err);
    if (!mdl->file || read_hparams(mdl->file, &mdl->hp, err) != 0 || bind_weights(mdl, err) != 0) {
        err_prefix(err, "%s", path);
        model_close(mdl);
        return NULL;
    }
    return mdl;
}

void model_close(model *mdl) {
    if (!mdl) return;
    gguf_close(mdl->file);
    free(mdl->layers);
    free(mdl->owned);
    free(mdl);
}
