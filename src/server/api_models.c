/*
 * api_models.c - the model store over HTTP, as Ollama serves it: /api/tags, /api/show, /api/copy,
 * /api/delete, /api/create (the new structured form and the legacy "modelfile" string),
 * /api/blobs/:digest (HEAD / upload) and /api/pull, /api/push (registry transfers streamed as
 * Ollama progress objects).
 *
 * Everything here reuses the store module (store.h) the CLI uses, so `seek list` and /api/tags,
 * `seek show` and /api/show read the same data the same way.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../gguf/gguf.h"
#include "../store/quantize.h"
#include "../store/registry.h"
#include "server_impl.h"

store *server_store(server_req *r, enum MHD_Result *ret) {
    seek_err err = { 0 };
    store *s = store_open(r->srv->models, &err);
    if (!s) *ret = server_reply_error(r, 500, "%s", err.msg);
    return s;
}

store *server_store_list(server_req *r, store_entry **e, size_t *n, enum MHD_Result *ret) {
    store *s = server_store(r, ret);
    if (!s) return NULL;
    seek_err err = { 0 };
    *e = NULL;
    *n = 0;
    if (store_list(s, e, n, &err)) {
        store_close(s);
        *ret = server_reply_error(r, 500, "%s", err.msg);
        return NULL;
    }
    return s;
}

json_t *server_model_details(const store *s, const store_manifest *m) {
    char *cfg_text = store_blob_read(s, m->config.digest, NULL, NULL);
    json_t *cfg = cfg_text ? json_loads(cfg_text, 0, NULL) : NULL;
    free(cfg_text);
    const char *format = json_string_value(json_object_get(cfg, "model_format"));
    const char *family = json_string_value(json_object_get(cfg, "model_family"));
    const char *size = json_string_value(json_object_get(cfg, "model_type"));
    const char *quant = json_string_value(json_object_get(cfg, "file_type"));
    json_t *families = json_object_get(cfg, "model_families");
    json_t *d = json_pack("{s:s, s:s, s:s}", "parent_model", "", "format", format ? format : "gguf", "family",
                          family ? family : "");
    json_object_set_new(d, "families", json_is_array(families) ? json_deep_copy(families) : json_null());
    json_object_set_new(d, "parameter_size", json_string(size ? size : ""));
    json_object_set_new(d, "quantization_level", json_string(quant ? quant : ""));
    json_decref(cfg);
    return d;
}

/* Parses a model name from the body, replying 400 on a bad one. */
static int body_name(server_req *r, const json_t *b, const char *key, store_name *out, enum MHD_Result *ret) {
    char msg[256];
    const char *name = NULL;
    int rc = key ? server_get_str(b, key, &name, msg) : server_get_model(b, &name, msg);
    if (!rc && key && (!name || !*name)) {
        snprintf(msg, sizeof msg, "%s is required", key);
        rc = -1;
    }
    seek_err err = { 0 };
    if (!rc && store_name_parse(name, out, &err)) {
        snprintf(msg, sizeof msg, "%.240s", err.msg);
        rc = -1;
    }
    if (rc) *ret = server_reply_error(r, 400, "%s", msg);
    return rc;
}

/* ---- /api/tags ------------------------------------------------------------------------------------ */

enum MHD_Result server_api_tags(server_req *r) {
    enum MHD_Result ret;
    store_entry *e;
    size_t n;
    store *s = server_store_list(r, &e, &n, &ret);
    if (!s) return ret;
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++) {
        char name[600], ts[64];
        store_name_display(&e[i].name, name, sizeof name);
        server_time_rfc3339(e[i].mtime * 1000000000LL, false, ts, sizeof ts);
        store_manifest m = { 0 };
        json_t *details = store_manifest_read(s, &e[i].name, &m, NULL) == 0 ? server_model_details(s, &m) : NULL;
        store_manifest_free(&m);
        if (!details) details = json_pack("{s:s, s:s}", "parent_model", "", "format", "gguf");
        json_array_append_new(models, json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "name", name, "model", name,
                                                "modified_at", ts, "size", (json_int_t)e[i].size, "digest",
                                                e[i].digest + 7, "details", details));
    }
    free(e);
    store_close(s);
    return server_reply_json(r, 200, json_pack("{s:o}", "models", models));
}

/* ---- /api/show ------------------------------------------------------------------------------------ */

/* One GGUF metadata value as JSON.  Big token tables are null unless verbose, as in Ollama. */
static json_t *kv_json(const gguf_file *f, const gguf_kv *kv, const char *key, bool verbose) {
    gguf_str str;
    switch (kv->vtype) {
    case GGUF_VT_STRING:
        return gguf_get_str(f, key, &str, NULL) == 0 ? server_json_text(str.ptr, (size_t)str.len) : json_null();
    case GGUF_VT_BOOL: { bool b; return gguf_get_bool(f, key, &b, NULL) == 0 ? json_boolean(b) : json_null(); }
    case GGUF_VT_FLOAT32: case GGUF_VT_FLOAT64: {
        float v;
        return gguf_get_f32(f, key, &v, NULL) == 0 ? json_real(v) : json_null();
    }
    case GGUF_VT_ARRAY: break;
    default: {
        int64_t v;
        uint64_t u;
        if (kv->vtype == GGUF_VT_UINT64 && gguf_get_u64(f, key, &u, NULL) == 0) return json_integer((json_int_t)u);
        return gguf_get_i64(f, key, &v, NULL) == 0 ? json_integer(v) : json_null();
    }
    }
    if (!verbose && (!strncmp(key, "tokenizer.ggml.", 15) || kv->arr_n > 1024)) return json_null();
    if (kv->arr_n > (1u << 20)) return json_null();
    json_t *a = json_array();
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        if (kv->arr_type == GGUF_VT_STRING) {
            json_array_append_new(a, gguf_arr_str(f, kv, i, &str) == 0 ? server_json_text(str.ptr, (size_t)str.len)
                                                                        : json_null());
        } else if (kv->arr_type == GGUF_VT_FLOAT32 || kv->arr_type == GGUF_VT_FLOAT64) {
            float v;
            json_array_append_new(a, gguf_arr_f32(kv, i, &v) == 0 ? json_real(v) : json_null());
        } else {
            int64_t v;
            json_array_append_new(a, gguf_arr_i64(kv, i, &v) == 0 ? json_integer(v) : json_null());
        }
    }
    return a;
}

static json_t *model_info(const gguf_file *f, bool verbose) {
    json_t *o = json_object();
    uint64_t n_params = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) ne *= (uint64_t)t->ne[d];
        n_params += ne;
    }
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        char key[512];
        if (kv->key.len >= sizeof key) continue;
        gguf_str_copy(kv->key, key, sizeof key);
        json_object_set_new(o, key, kv_json(f, kv, key, verbose));
    }
    json_object_set_new(o, "general.parameter_count", json_integer((json_int_t)n_params));
    return o;
}

/* The "parameters" text of `ollama show`: "%-30s %v" per value (arrays one line per element). */
static char *params_text(const json_t *params) {
    server_buf b = { 0 };
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v) {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            char line[1200];
            if (json_is_string(e)) {
                char *q = json_dumps(e, JSON_ENCODE_ANY); /* Go's %#v quotes like JSON for plain text */
                snprintf(line, sizeof line, "%-30s %s", k, q ? q : "\"\"");
                free(q);
            } else if (json_is_integer(e)) {
                snprintf(line, sizeof line, "%-30s %lld", k, (long long)json_integer_value(e));
            } else if (json_is_real(e)) {
                snprintf(line, sizeof line, "%-30s %g", k, json_real_value(e));
            } else {
                snprintf(line, sizeof line, "%-30s %s", k, json_is_true(e) ? "true" : "false");
            }
            if (b.len) server_buf_add(&b, "\n", 1);
            server_buf_add(&b, line, strlen(line));
        }
    }
    return b.p ? b.p : strdup("");
}

enum MHD_Result server_api_show(server_req *r) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    char msg[256];
    const char *name = NULL;
    bool verbose = false;
    store *s = NULL;
    store_model m = { 0 };
    store_manifest man = { 0 };
    gguf_file *f = NULL;
    store_name nm;
    seek_err err = { 0 };
    if (server_get_model(b, &name, msg) || server_get_bool(b, "verbose", &verbose, msg)) {
        ret = server_reply_error(r, 400, "%s", msg);
        goto out;
    }
    if (store_is_path(name) || store_name_parse(name, &nm, NULL)) {
        ret = server_reply_error(r, 404, "model '%s' not found", name);
        goto out;
    }
    if (!(s = server_store(r, &ret))) goto out;
    if (store_resolve(s, name, &m, &err) || store_manifest_read(s, &nm, &man, &err) ||
        !(f = gguf_open(m.model_path, &err))) {
        ret = server_reply_error(r, server_status_of(&err), "%s", err.msg);
        goto out;
    }
    gguf_str gt = { 0 };
    char *tmpl = m.template_ ? strdup(m.template_)
               : gguf_get_str(f, "tokenizer.chat_template", &gt, NULL) == 0 ? strndup(gt.ptr, (size_t)gt.len)
                                                                           : strdup("");
    char *modelfile = store_modelfile_text(s, &man, m.name, &err);
    char *params = params_text(m.params);
    char ts[64];
    server_time_rfc3339(man.mtime * 1000000000LL, false, ts, sizeof ts);
    json_t *caps = json_pack("[s]", "completion");
    if (tmpl && strstr(tmpl, "<think>")) json_array_append_new(caps, json_string("thinking"));
    json_t *j = json_object();
    if (m.license) json_object_set_new(j, "license", server_json_text(m.license, strlen(m.license)));
    json_object_set_new(j, "modelfile", modelfile ? server_json_text(modelfile, strlen(modelfile)) : json_string(""));
    json_object_set_new(j, "parameters", server_json_text(params, strlen(params)));
    json_object_set_new(j, "template", tmpl ? server_json_text(tmpl, strlen(tmpl)) : json_string(""));
    if (m.system) json_object_set_new(j, "system", server_json_text(m.system, strlen(m.system)));
    json_object_set_new(j, "details", server_model_details(s, &man));
    if (json_array_size(m.messages)) json_object_set(j, "messages", m.messages);
    json_object_set_new(j, "model_info", model_info(f, verbose));
    json_object_set_new(j, "capabilities", caps);
    json_object_set_new(j, "modified_at", json_string(ts));
    free(tmpl);
    free(modelfile);
    free(params);
    ret = server_reply_json(r, 200, j);
out:
    if (f) gguf_close(f);
    store_manifest_free(&man);
    store_model_free(&m);
    store_close(s);
    json_decref(b);
    return ret;
}

/* ---- /api/copy, /api/delete ---------------------------------------------------------------------- */

enum MHD_Result server_api_copy(server_req *r) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    store_name src, dst;
    store *s = NULL;
    if (!body_name(r, b, "source", &src, &ret) && !body_name(r, b, "destination", &dst, &ret) &&
        (s = server_store(r, &ret))) {
        seek_err err = { 0 };
        pthread_mutex_lock(&r->srv->store_mu);
        int rc = store_copy(s, &src, &dst, &err);
        pthread_mutex_unlock(&r->srv->store_mu);
        if (rc) ret = server_reply_error(r, server_status_of(&err), "%s", err.msg);
        else ret = server_reply(r, 200, NULL, "", 0);
    }
    store_close(s);
    json_decref(b);
    return ret;
}

enum MHD_Result server_api_delete(server_req *r) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    store_name nm;
    store *s = NULL;
    if (!body_name(r, b, NULL, &nm, &ret) && (s = server_store(r, &ret))) {
        seek_err err = { 0 };
        pthread_mutex_lock(&r->srv->store_mu);
        int rc = store_remove(s, &nm, NULL, &err);
        pthread_mutex_unlock(&r->srv->store_mu);
        if (rc) ret = server_reply_error(r, server_status_of(&err), "%s", err.msg);
        else ret = server_reply(r, 200, NULL, "", 0);
    }
    store_close(s);
    json_decref(b);
    return ret;
}

/* ---- /api/blobs/:digest ------------------------------------------------------------------------- */

enum MHD_Result server_api_blob_head(server_req *r) {
    if (!store_digest_valid(r->arg)) return server_reply_error(r, 400, "invalid digest '%s'", r->arg);
    enum MHD_Result ret;
    store *s = server_store(r, &ret);
    if (!s) return ret;
    bool ok = store_blob_exists(s, r->arg, UINT64_MAX);
    store_close(s);
    return ok ? server_reply(r, 200, NULL, "", 0) : server_reply_error(r, 404, "blob %s not found", r->arg);
}

enum MHD_Result server_api_blob_post(server_req *r) {
    if (!store_digest_valid(r->arg)) return server_reply_error(r, 400, "invalid digest '%s'", r->arg);
    if (r->blob_fd < 0 || r->blob_failed) return server_reply_error(r, 500, "could not write the upload");
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned hn = 0;
    EVP_DigestFinal_ex(r->blob_sha, h, &hn);
    char digest[STORE_DIGEST_LEN] = "sha256:";
    for (unsigned i = 0; i < hn && i < 32; i++) snprintf(digest + 7 + 2 * i, 3, "%02x", h[i]);
    if (strcmp(digest, r->arg) != 0)
        return server_reply_error(r, 400, "digest mismatch, expected \"%s\", got \"%s\"", r->arg, digest);
    if (fsync(r->blob_fd) != 0 || close(r->blob_fd) != 0) {
        r->blob_fd = -1;
        return server_reply_error(r, 500, "could not write the upload");
    }
    r->blob_fd = -1;
    enum MHD_Result ret;
    store *s = server_store(r, &ret);
    if (!s) return ret;
    seek_err err = { 0 };
    char got[STORE_DIGEST_LEN];
    uint64_t size;
    pthread_mutex_lock(&r->srv->store_mu);
    int rc = store_blob_adopt(s, r->blob_tmp, got, &size, NULL, &err);
    pthread_mutex_unlock(&r->srv->store_mu);
    r->blob_tmp[0] = 0; /* adopt removed or renamed it */
    store_close(s);
    if (rc) return server_reply_error(r, 500, "%s", err.msg);
    return server_reply(r, 201, NULL, "", 0);
}

/* ---- /api/create --------------------------------------------------------------------------------- */

typedef struct create_job {
    server *srv;
    store_name name;
    store_modelfile mf;
    char *quantize;
    server_stream *out;
    uint64_t last_pct;
} create_job;

static void create_job_free(void *p) {
    create_job *c = p;
    store_modelfile_free(&c->mf);
    free(c->quantize);
    free(c);
}

static void create_progress(void *ctx, const char *status, const char *digest, uint64_t done, uint64_t total) {
    create_job *c = ctx;
    if (!server_stream_is_stream(c->out)) return;
    json_t *j;
    if (!digest && total) { /* byte progress: one line per percent */
        uint64_t pct = done * 100 / total;
        if (pct == c->last_pct && done != total) return;
        c->last_pct = pct;
        j = json_pack("{s:s, s:I, s:I}", "status", status, "total", (json_int_t)total, "completed", (json_int_t)done);
    } else if (digest) {
        char line[300];
        snprintf(line, sizeof line, "%s %s", status, digest);
        j = json_pack("{s:s}", "status", line);
    } else {
        j = json_pack("{s:s}", "status", status);
    }
    server_stream_json(c->out, j);
}

static void create_work(server_stream *st, void *arg) {
    create_job *c = arg;
    c->out = st;
    c->last_pct = UINT64_MAX;
    seek_err err = { 0 };
    store *s = store_open(c->srv->models, &err);
    store_create_opts o = { .dir = ".", .quantize = c->quantize, .progress = create_progress, .ctx = c };
    pthread_mutex_lock(&c->srv->store_mu);
    int rc = s ? store_create(s, &c->name, &c->mf, &o, &err) : -1;
    pthread_mutex_unlock(&c->srv->store_mu);
    if (rc) {
        unsigned status = server_status_of(&err);
        server_stream_fail(st, status, server_error_json(false, status, err.msg));
    } else if (!server_stream_is_stream(st)) {
        server_stream_json(st, json_pack("{s:s}", "status", "success"));
    }
    store_close(s);
}

/* A JSON parameter value as Modelfile text, then typed by the store's own rules. */
static int add_param(json_t *params, const char *key, const json_t *v, char *msg) {
    char text[64];
    const char *t = text;
    if (json_is_string(v)) t = json_string_value(v);
    else if (json_is_integer(v)) snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(text, sizeof text, "%.17g", json_real_value(v));
    else if (json_is_boolean(v)) snprintf(text, sizeof text, "%s", json_is_true(v) ? "true" : "false");
    else {
        snprintf(msg, 256, "invalid value for parameter \"%s\"", key);
        return -1;
    }
    seek_err err = { 0 };
    json_t *typed = store_param_value(key, t, &err);
    if (!typed) {
        snprintf(msg, 256, "%.240s", err.msg);
        return -1;
    }
    if (!strcmp(key, "stop")) {
        json_t *arr = json_object_get(params, "stop");
        if (!arr) json_object_set_new(params, "stop", arr = json_array());
        json_array_append_new(arr, typed);
    } else {
        json_object_set_new(params, key, typed);
    }
    return 0;
}

/* The new structured create request into a store_modelfile (all fields malloc'd, as the parser's). */
static int create_from_fields(server_req *r, const json_t *b, store_modelfile *mf, char *msg) {
    const char *from = NULL, *tmpl = NULL, *system = NULL;
    json_t *files = NULL, *params = NULL, *messages = NULL, *license = json_object_get(b, "license");
    if (server_get_str(b, "from", &from, msg) || server_get_obj(b, "files", &files, msg) ||
        server_get_str(b, "template", &tmpl, msg) || server_get_str(b, "system", &system, msg) ||
        server_get_obj(b, "parameters", &params, msg) || server_get_arr(b, "messages", &messages, msg))
        return -1;
    mf->params = json_object();
    mf->messages = json_array();
    if (files && json_object_size(files)) {
        if (json_object_size(files) != 1) {
            snprintf(msg, 256, "only one GGUF file is supported in \"files\"");
            return -1;
        }
        const char *fname;
        json_t *dg;
        json_object_foreach(files, fname, dg) {
            if (!json_is_string(dg) || !store_digest_valid(json_string_value(dg))) {
                snprintf(msg, 256, "invalid digest for file \"%.100s\"", fname);
                return -1;
            }
            char path[4200];
            seek_err err = { 0 };
            store *s = store_open(r->srv->models, &err);
            bool ok = s && store_blob_path(s, json_string_value(dg), path, sizeof path, &err) == 0 &&
                      store_blob_exists(s, json_string_value(dg), UINT64_MAX);
            store_close(s);
            if (!ok) {
                snprintf(msg, 256, "blob %s not found: upload it with POST /api/blobs/%s first",
                         json_string_value(dg), json_string_value(dg));
                return -1;
            }
            mf->from = strdup(path);
        }
    } else if (from && *from) {
        mf->from = strdup(from);
    } else {
        snprintf(msg, 256, "neither 'from' or 'files' was specified");
        return -1;
    }
    if (tmpl) mf->template_ = strdup(tmpl);
    if (system) mf->system = strdup(system);
    if (license && !json_is_null(license)) {
        size_t n = json_is_array(license) ? json_array_size(license) : 1;
        mf->licenses = calloc(n ? n : 1, sizeof *mf->licenses);
        for (size_t i = 0; mf->licenses && i < n; i++) {
            json_t *l = json_is_array(license) ? json_array_get(license, i) : license;
            if (!json_is_string(l)) {
                snprintf(msg, 256, "invalid value for \"license\": expected a string or an array of strings");
                return -1;
            }
            mf->licenses[mf->n_licenses++] = strdup(json_string_value(l));
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v) {
        if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) if (add_param(mf->params, k, e, msg)) return -1;
        } else if (add_param(mf->params, k, v, msg)) {
            return -1;
        }
    }
    size_t i;
    json_array_foreach(messages, i, v) {
        const char *role = NULL, *content = NULL;
        if (!json_is_object(v) || server_get_str(v, "role", &role, msg) || server_get_str(v, "content", &content, msg))
            return -1;
        if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))) {
            snprintf(msg, 256, "invalid message role: expected system, user or assistant");
            return -1;
        }
        json_array_append_new(mf->messages, json_pack("{s:s, s:s}", "role", role, "content", content ? content : ""));
    }
    return 0;
}

enum MHD_Result server_api_create(server_req *r) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    char msg[256] = "";
    create_job *c = calloc(1, sizeof *c);
    const char *modelfile = NULL, *quantize = NULL;
    bool stream = true;
    if (!c) {
        ret = server_reply_error(r, 500, "out of memory");
        goto out;
    }
    c->srv = r->srv;
    if (body_name(r, b, NULL, &c->name, &ret)) goto fail;
    if (server_get_str(b, "modelfile", &modelfile, msg) || server_get_str(b, "quantize", &quantize, msg) ||
        server_get_str(b, "quantization", &quantize, msg) || server_get_bool(b, "stream", &stream, msg))
        goto bad;
    if (quantize && *quantize) {
        if (!store_mix_find(quantize)) {
            snprintf(msg, sizeof msg, "unsupported quantization type %s", quantize);
            goto bad;
        }
        c->quantize = strdup(quantize);
    }
    if (modelfile && *modelfile) { /* the legacy form: a whole Modelfile */
        seek_err err = { 0 };
        if (store_modelfile_parse(modelfile, &c->mf, &err)) {
            snprintf(msg, sizeof msg, "%.240s", err.msg);
            goto bad;
        }
    } else if (create_from_fields(r, b, &c->mf, msg)) {
        goto bad;
    }
    json_decref(b);
    return server_stream_run(r, stream, "application/x-ndjson", SERVER_NDJSON, create_work, c, create_job_free);
bad:
    ret = server_reply_error(r, 400, "%s", msg);
fail:
    if (c) create_job_free(c);
out:
    json_decref(b);
    return ret;
}

/* ---- /api/pull, /api/push ------------------------------------------------------------------------- */

typedef struct transfer_job {
    server *srv;
    char name[1024];
    bool push;
    bool insecure;
    server_stream *out;
} transfer_job;

static bool transfer_progress(void *ud, const registry_progress *p) {
    transfer_job *t = ud;
    if (!server_stream_is_stream(t->out)) return !server_stream_cancelled(t->out);
    json_t *j = json_pack("{s:s}", "status", p->status ? p->status : "");
    if (p->digest) json_object_set_new(j, "digest", json_string(p->digest));
    if (p->total) json_object_set_new(j, "total", json_integer((json_int_t)p->total));
    if (p->completed) json_object_set_new(j, "completed", json_integer((json_int_t)p->completed));
    return server_stream_json(t->out, j);
}

static void transfer_work(server_stream *st, void *arg) {
    transfer_job *t = arg;
    t->out = st;
    seek_err err = { 0 };
    store *s = store_open(t->srv->models, &err);
    registry_opts o = { .insecure = t->insecure, .progress = transfer_progress, .ud = t };
    /* not under store_mu: pulls run side by side (the registry code locks each blob's partial
     * file), and a push only reads */
    int rc = !s ? -1 : t->push ? registry_push(s, t->name, &o, &err) : registry_pull(s, t->name, &o, &err);
    store_close(s);
    if (rc) {
        unsigned status = server_status_of(&err);
        server_stream_fail(st, status, server_error_json(false, status, err.msg[0] ? err.msg : "transfer failed"));
    } else if (!server_stream_is_stream(st)) {
        server_stream_json(st, json_pack("{s:s}", "status", "success"));
    }
}

static enum MHD_Result transfer(server_req *r, bool push) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    char msg[256];
    const char *name = NULL;
    bool stream = true, insecure = false;
    store_name nm;
    if (server_get_model(b, &name, msg) || server_get_bool(b, "stream", &stream, msg) ||
        server_get_bool(b, "insecure", &insecure, msg)) {
        ret = server_reply_error(r, 400, "%s", msg);
        goto out;
    }
    seek_err err = { 0 };
    if (store_name_parse(name, &nm, &err)) {
        ret = server_reply_error(r, 400, "%s", err.msg);
        goto out;
    }
    transfer_job *t = calloc(1, sizeof *t);
    if (!t) {
        ret = server_reply_error(r, 500, "out of memory");
        goto out;
    }
    t->srv = r->srv, t->push = push, t->insecure = insecure;
    snprintf(t->name, sizeof t->name, "%s", name);
    ret = server_stream_run(r, stream, "application/x-ndjson", SERVER_NDJSON, transfer_work, t, free);
out:
    json_decref(b);
    return ret;
}

enum MHD_Result server_api_pull(server_req *r) { return transfer(r, false); }
enum MHD_Result server_api_push(server_req *r) { return transfer(r, true); }
