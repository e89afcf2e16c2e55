/*
 * create.c - `seek create`: from a parsed Modelfile to blobs and a manifest.
 *
 * Data flow:
 *   FROM  -> a GGUF file (copied into blobs/ while hashed), an HF checkpoint directory (converted
 *            by store_convert_hf into a temp GGUF first), or a store model (its layers reused);
 *   --quantize -> the F32/F16/BF16 GGUF is quantized by store_quantize into a temp file, which
 *            becomes the model blob (the float original is not copied into the store);
 *   layers -> template, system, licenses, params, messages: the Modelfile's, else the base
 *            model's; params are merged key by key (the Modelfile wins) and DeepSeek-R1 models
 *            get their recommended sampling parameters where neither sets them;
 *   config -> Ollama's ConfigV2 JSON (format, family, parameter size, file type, rootfs);
 *   manifest, written last; blobs only the replaced manifest used are then removed.
 * Templates: no template layer is made from the GGUF's own tokenizer.chat_template -- seek
 * renders that Jinja template straight from the model blob (Ollama would need a Go template
 * here; seek cannot run those, see store.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../gguf/gguf.h"
#include "convert.h"
#include "quantize.h"
#include "store_impl.h"

/* What create needs to know about the model GGUF. */
typedef struct model_info {
    char arch[64];
    char file_type[32];   /* "Q4_K_M", "F16", ... */
    char src_type[16];    /* "F16", "F32", "BF16" when every weight matrix is float, else "" */
    uint64_t n_params;
    bool is_r1;
} model_info;

/* What one create works on; freed by ctx_free. */
typedef struct create_ctx {
    store *s;
    const store_modelfile *mf;
    const store_create_opts *opts;
    store_manifest base;        /* FROM a store model: its manifest (else zeroed) */
    bool have_base;
    store_layer *layers;        /* the new manifest's layers */
    int n_layers;
    char tmp[3][STORE_PATH_MAX]; /* temp files to remove at the end ("" when none) */
} create_ctx;

static void status(create_ctx *c, const char *msg, const char *digest) {
    if (c->opts->progress) c->opts->progress(c->opts->ctx, msg, digest, 0, 0);
}

static void ctx_free(create_ctx *c) {
    store_manifest_free(&c->base);
    free(c->layers);
    for (int i = 0; i < 3; i++)
        if (c->tmp[i][0]) unlink(c->tmp[i]);
}

static int add_layer(create_ctx *c, const char *media_type, const char *digest, uint64_t size,
                     seek_err *err) {
    store_layer *l = realloc(c->layers, (size_t)(c->n_layers + 1) * sizeof *l);
    if (!l) return err_set(err, SEEK_ENOMEM, "out of memory");
    c->layers = l;
    l += c->n_layers++;
    memset(l, 0, sizeof *l);
    snprintf(l->media_type, sizeof l->media_type, "%s", media_type);
    snprintf(l->digest, sizeof l->digest, "%s", digest);
    l->size = size;
    return 0;
}

/* Stores bytes as a layer of media_type, reporting "using existing"/"creating new layer". */
static int add_bytes_layer(create_ctx *c, const char *media_type, const char *data, size_t len,
                           seek_err *err) {
    char digest[STORE_DIGEST_LEN];
    bool existed;
    if (store_blob_put_mem(c->s, data, len, digest, &existed, err)) return -1;
    status(c, existed ? "using existing layer" : "creating new layer", digest);
    return add_layer(c, media_type, digest, len, err);
}

/* ---- the source of the model -------------------------------------------------------------- */

/* FROM's argument as a path: absolute, "~/..." under $HOME, else relative to dir. */
static int expand_path(const char *from, const char *dir, char *out, size_t cap, seek_err *err) {
    if (from[0] == '/') return store_pathf(out, cap, err, "%s", from);
    if (from[0] == '~' && (from[1] == '/' || from[1] == 0)) {
        const char *home = getenv("HOME");
        return store_pathf(out, cap, err, "%s%s", home ? home : "", from + 1);
    }
    return store_pathf(out, cap, err, "%s/%s", dir && *dir ? dir : ".", from);
}

static bool looks_like_path(const char *from) {
    size_t n = strlen(from);
    return from[0] == '/' || from[0] == '~' || strncmp(from, "./", 2) == 0 ||
           strncmp(from, "../", 3) == 0 || (n > 5 && strcasecmp(from + n - 5, ".gguf") == 0);
}

/* Reads what create needs from the GGUF at path. */
static int read_info(const char *path, model_info *info, seek_err *err) {
    memset(info, 0, sizeof *info);
    gguf_file *f = gguf_open(path, err);
    if (!f) return -1;
    gguf_str s;
    if (gguf_get_str(f, "general.architecture", &s, NULL) == 0) gguf_str_copy(s, info->arch, sizeof info->arch);
    uint64_t counts[GGUF_TYPE_COUNT] = { 0 };
    bool all_float = true;
    int float_type = -1;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) ne *= (uint64_t)t->ne[d];
        info->n_params += ne;
        if (t->n_dims < 2 || t->type >= GGUF_TYPE_COUNT) continue;
        counts[t->type]++;
        bool is_float = t->type == GGUF_TYPE_F32 || t->type == GGUF_TYPE_F16 || t->type == GGUF_TYPE_BF16;
        all_float &= is_float;
        if (is_float && (float_type < 0 || t->type != GGUF_TYPE_F32)) float_type = (int)t->type;
    }
    if (all_float && float_type >= 0) snprintf(info->src_type, sizeof info->src_type, "%s", gguf_type_name((uint32_t)float_type));
    uint32_t ft;
    const char *ftn = gguf_get_u32(f, "general.file_type", &ft, NULL) == 0 ? store_ftype_name(ft) : NULL;
    if (!ftn) {
        int best = -1;
        for (int t = 0; t < GGUF_TYPE_COUNT; t++)
            if (counts[t] && (best < 0 || counts[t] > counts[best])) best = t;
        ftn = best >= 0 ? gguf_type_name((uint32_t)best) : "unknown";
    }
    snprintf(info->file_type, sizeof info->file_type, "%s", ftn);
    char name[256] = "";
    if (gguf_get_str(f, "general.name", &s, NULL) == 0) gguf_str_copy(s, name, sizeof name);
    bool tmpl_r1 = false;
    if (gguf_get_str(f, "tokenizer.chat_template", &s, NULL) == 0 && s.len < (64u << 20)) {
        char *t = strndup(s.ptr, (size_t)s.len);
        tmpl_r1 = t && strstr(t, "<｜Assistant｜>") && strstr(t, "<think>");
        free(t);
    }
    info->is_r1 = tmpl_r1 || strstr(name, "DeepSeek-R1") != NULL;
    gguf_close(f);
    return 0;
}

/* Quantizes the float GGUF at src into a temp file that becomes the model blob. */
static int quantize_into_store(create_ctx *c, const char *src, char *digest, uint64_t *size,
                               bool *existed, seek_err *err) {
    model_info info;
    if (read_info(src, &info, err)) return -1;
    if (!info.src_type[0])
        return err_set(err, SEEK_EINVAL, "quantization is only supported for F16, BF16 and F32 models "
                       "(this one is already %s)", info.file_type);
    char msg[96];
    const store_mix *mix = store_mix_find(c->opts->quantize);
    snprintf(msg, sizeof msg, "quantizing %s model to %s", info.src_type, mix->name);
    status(c, msg, NULL);
    if (store_tmp_path(c->s, ".gguf", c->tmp[1], sizeof c->tmp[1], err)) return -1;
    store_quantize_opts qo = { .n_threads = c->opts->n_threads, .quiet = true };
    if (store_quantize_ex(src, c->tmp[1], mix->name, &qo, NULL, err)) return -1;
    int rc = store_blob_adopt(c->s, c->tmp[1], digest, size, existed, err);
    c->tmp[1][0] = 0; /* adopted or removed */
    return rc;
}

/* Converts the HF checkpoint in dir into a temp GGUF (path into c->tmp[0]). */
static int convert_hf(create_ctx *c, const char *dir, seek_err *err) {
    status(c, "converting model", NULL);
    if (store_tmp_path(c->s, ".gguf", c->tmp[0], sizeof c->tmp[0], err)) return -1;
    store_convert_opts co = { .n_threads = c->opts->n_threads };
    if (store_convert_hf(dir, c->tmp[0], &co, err)) {
        err_prefix(err, "converting %s", dir);
        return -1;
    }
    return 0;
}

/* Puts a GGUF file into the store as the model layer (quantizing it on the way when asked). */
static int import_gguf(create_ctx *c, const char *path, bool is_tmp, seek_err *err) {
    char digest[STORE_DIGEST_LEN];
    uint64_t size = 0;
    bool existed = false;
    gguf_file *f = gguf_open(path, err); /* fail before copying anything that is not a GGUF */
    if (!f) return -1;
    gguf_close(f);
    if (c->opts->quantize) {
        status(c, "parsing GGUF", NULL);
        if (quantize_into_store(c, path, digest, &size, &existed, err)) return -1;
    } else if (is_tmp) {
        if (store_blob_adopt(c->s, path, digest, &size, &existed, err)) return -1;
        c->tmp[0][0] = 0;
        status(c, "parsing GGUF", NULL);
    } else {
        if (store_blob_put_file(c->s, path, c->opts->progress, c->opts->ctx, digest, &size, &existed, err))
            return -1;
        status(c, "parsing GGUF", NULL);
        existed = true; /* as in Ollama: the copy was the upload, the layer then exists */
    }
    status(c, existed ? "using existing layer" : "creating new layer", digest);
    return add_layer(c, STORE_MT_MODEL, digest, size, err);
}

/* FROM a store model: reuse (or quantize) its model layer and remember its other layers. */
static int from_store(create_ctx *c, const store_name *base, seek_err *err) {
    if (store_manifest_read(c->s, base, &c->base, err)) return -1;
    c->have_base = true;
    const store_layer *m = store_manifest_layer(&c->base, STORE_MT_MODEL);
    if (!m) return err_set(err, SEEK_EFORMAT, "FROM %s: the model has no model layer", c->mf->from);
    if (!c->opts->quantize) {
        status(c, "using existing layer", m->digest);
        return add_layer(c, STORE_MT_MODEL, m->digest, m->size, err);
    }
    char path[STORE_PATH_MAX], digest[STORE_DIGEST_LEN];
    uint64_t size;
    bool existed;
    if (store_blob_path(c->s, m->digest, path, sizeof path, err)) return -1;
    status(c, "parsing GGUF", NULL);
    if (quantize_into_store(c, path, digest, &size, &existed, err)) return -1;
    status(c, existed ? "using existing layer" : "creating new layer", digest);
    return add_layer(c, STORE_MT_MODEL, digest, size, err);
}

static int gather_model(create_ctx *c, seek_err *err) {
    const char *from = c->mf->from;
    char path[STORE_PATH_MAX];
    struct stat st;
    if (expand_path(from, c->opts->dir, path, sizeof path, err)) return -1;
    if (stat(path, &st) == 0) {
        if (S_ISREG(st.st_mode)) return import_gguf(c, path, false, err);
        char cfg[STORE_PATH_MAX];
        if (!S_ISDIR(st.st_mode) || store_pathf(cfg, sizeof cfg, err, "%s/config.json", path) ||
            access(cfg, R_OK) != 0)
            return err_set(err, SEEK_EINVAL, "FROM %s: not a GGUF file or a Hugging Face checkpoint "
                           "directory (no config.json)", from);
        if (convert_hf(c, path, err)) return -1;
        return import_gguf(c, c->tmp[0], true, err);
    }
    if (looks_like_path(from)) return err_set(err, SEEK_ENOTFOUND, "FROM %s: no such file (looked at %s)", from, path);
    store_name base;
    if (store_name_parse(from, &base, NULL) != 0)
        return err_set(err, SEEK_EINVAL, "FROM %s: neither a file nor a valid model name", from);
    if (from_store(c, &base, err)) {
        if (err && err->code == SEEK_ENOTFOUND)
            err_prefix(err, "FROM %s: no such file, and", from);
        return -1;
    }
    return 0;
}

/* ---- layers besides the model -------------------------------------------------------------- */

/* Reuses the base model's layers of media_type (when the Modelfile did not set them). */
static int inherit(create_ctx *c, const char *media_type, seek_err *err) {
    for (int i = 0; c->have_base && i < c->base.n_layers; i++) {
        const store_layer *l = &c->base.layers[i];
        if (strcmp(l->media_type, media_type) != 0) continue;
        status(c, "using existing layer", l->digest);
        if (add_layer(c, media_type, l->digest, l->size, err)) return -1;
    }
    return 0;
}

static int text_layer(create_ctx *c, const char *media_type, const char *text, seek_err *err) {
    if (!text) return inherit(c, media_type, err);
    return add_bytes_layer(c, media_type, text, strlen(text), err);
}

/* The base model's params object (empty if none); caller decrefs. */
static json_t *base_params(create_ctx *c) {
    const store_layer *l = c->have_base ? store_manifest_layer(&c->base, STORE_MT_PARAMS) : NULL;
    json_t *p = NULL;
    if (l) {
        char *text = store_blob_read(c->s, l->digest, NULL, NULL);
        if (text) p = json_loads(text, 0, NULL);
        free(text);
    }
    if (!json_is_object(p)) {
        json_decref(p);
        p = json_object();
    }
    return p;
}

/* DeepSeek-R1's recommended sampling (from its model card) and its special tokens as stops. */
static void add_r1_defaults(json_t *p) {
    static const char *const stops[] = { "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
                                         "<｜User｜>", "<｜Assistant｜>" };
    if (!json_object_get(p, "temperature")) json_object_set_new(p, "temperature", json_real(0.6));
    if (!json_object_get(p, "top_p")) json_object_set_new(p, "top_p", json_real(0.95));
    if (!json_object_get(p, "stop")) {
        json_t *a = json_array();
        for (int i = 0; i < 4; i++) json_array_append_new(a, json_string(stops[i]));
        json_object_set_new(p, "stop", a);
    }
}

static char *dump(json_t *j) { return json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)); }

static int params_layer(create_ctx *c, bool is_r1, seek_err *err) {
    json_t *p = base_params(c);
    json_object_update(p, c->mf->params);
    if (is_r1) add_r1_defaults(p);
    int rc = 0;
    if (json_object_size(p) > 0) {
        char *text = dump(p);
        rc = text ? add_bytes_layer(c, STORE_MT_PARAMS, text, strlen(text), err) : err_set(err, SEEK_ENOMEM, "out of memory");
        free(text);
    }
    json_decref(p);
    return rc;
}

static int messages_layer(create_ctx *c, seek_err *err) {
    if (json_array_size(c->mf->messages) == 0) return inherit(c, STORE_MT_MESSAGES, err);
    char *text = dump(c->mf->messages);
    int rc = text ? add_bytes_layer(c, STORE_MT_MESSAGES, text, strlen(text), err) : err_set(err, SEEK_ENOMEM, "out of memory");
    free(text);
    return rc;
}

void store_human_number(uint64_t n, char *buf, size_t cap) {
    double v;
    if (n >= 1000000000ull) {
        v = (double)n / 1e9;
        snprintf(buf, cap, v == (double)(uint64_t)v ? "%.0fB" : "%.1fB", v);
    } else if (n >= 1000000ull) {
        v = (double)n / 1e6;
        snprintf(buf, cap, v == (double)(uint64_t)v ? "%.0fM" : "%.2fM", v);
    } else if (n >= 1000ull) {
        snprintf(buf, cap, "%.0fK", (double)n / 1e3);
    } else {
        snprintf(buf, cap, "%llu", (unsigned long long)n);
    }
}

static const char *go_arch(void) {
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#else
    return "unknown";
#endif
}

/* Ollama's ConfigV2, in its field order. */
static int config_blob(create_ctx *c, const model_info *info, store_layer *out, seek_err *err) {
    char mtype[32];
    store_human_number(info->n_params, mtype, sizeof mtype);
    json_t *diff = json_array();
    for (int i = 0; i < c->n_layers; i++) json_array_append_new(diff, json_string(c->layers[i].digest));
    json_t *cfg = json_pack("{s:s, s:s, s:[s], s:s, s:s}", "model_format", "gguf", "model_family",
                            info->arch, "model_families", info->arch, "model_type", mtype, "file_type",
                            info->file_type);
    if (cfg && c->mf->requires) json_object_set_new(cfg, "requires", json_string(c->mf->requires));
    if (cfg) {
        json_object_set_new(cfg, "architecture", json_string(go_arch()));
        json_object_set_new(cfg, "os", json_string("linux"));
        json_object_set_new(cfg, "rootfs", json_pack("{s:s, s:o}", "type", "layers", "diff_ids", diff));
    } else {
        json_decref(diff);
    }
    char *text = cfg ? dump(cfg) : NULL;
    json_decref(cfg);
    if (!text) return err_set(err, SEEK_ENOMEM, "out of memory");
    memset(out, 0, sizeof *out);
    snprintf(out->media_type, sizeof out->media_type, "%s", STORE_MT_CONFIG);
    out->size = strlen(text);
    int rc = store_blob_put_mem(c->s, text, strlen(text), out->digest, NULL, err);
    free(text);
    return rc;
}

/* ---- create ---------------------------------------------------------------------------------- */

static int build(create_ctx *c, const store_name *name, seek_err *err) {
    if (c->opts->quantize && !store_mix_find(c->opts->quantize))
        return err_set(err, SEEK_EINVAL, "unknown quantization type '%s'", c->opts->quantize);
    store_clean_tmp(c->s);
    status(c, "gathering model components", NULL);
    if (gather_model(c, err)) return -1;

    char model_path[STORE_PATH_MAX];
    model_info info;
    if (store_blob_path(c->s, c->layers[0].digest, model_path, sizeof model_path, err) ||
        read_info(model_path, &info, err))
        return -1;
    if (text_layer(c, STORE_MT_TEMPLATE, c->mf->template_, err) ||
        text_layer(c, STORE_MT_SYSTEM, c->mf->system, err))
        return -1;
    if (c->mf->n_licenses == 0 && inherit(c, STORE_MT_LICENSE, err)) return -1;
    for (int i = 0; i < c->mf->n_licenses; i++)
        if (add_bytes_layer(c, STORE_MT_LICENSE, c->mf->licenses[i], strlen(c->mf->licenses[i]), err)) return -1;
    if (params_layer(c, info.is_r1, err) || messages_layer(c, err)) return -1;

    store_manifest m = { .layers = c->layers, .n_layers = c->n_layers };
    if (config_blob(c, &info, &m.config, err)) return -1;
    store_manifest old;
    bool had_old = store_manifest_read(c->s, name, &old, NULL) == 0;
    status(c, "writing manifest", NULL);
    int rc = store_manifest_write(c->s, name, &m, err);
    if (had_old) {
        if (rc == 0) store_gc_layers(c->s, &old);
        store_manifest_free(&old);
    }
    if (rc == 0) status(c, "success", NULL);
    return rc;
}

int store_create(store *s, const store_name *name, const store_modelfile *mf,
                 const store_create_opts *opts, seek_err *err) {
    store_create_opts none = { 0 };
    create_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s, c.mf = mf, c.opts = opts ? opts : &none;
    int rc = build(&c, name, err);
    ctx_free(&c);
    return rc;
}
