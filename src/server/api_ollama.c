/*
 * api_ollama.c - Ollama's native inference endpoints: /, /api/version, /api/generate, /api/chat,
 * /api/embed, /api/embeddings and /api/ps, with Ollama's field names, defaults and omissions
 * (zero durations are left out, as Go's omitempty does).
 *
 * Deviations, all for lack of the machinery rather than by choice: "format" (json or a schema) is
 * requested by an instruction appended to the prompt, not enforced by constrained decoding;
 * "context" (the deprecated token array) is accepted and ignored and not returned; images and
 * "suffix" are refused (no vision or fill-in-the-middle models); "template" is used only when it
 * is a Jinja template (Ollama's Go templates cannot be rendered).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_impl.h"

enum MHD_Result server_api_root(server_req *r) {
    return server_reply(r, 200, "text/plain; charset=utf-8", "seek is running", 15);
}

enum MHD_Result server_api_version(server_req *r) {
    return server_reply_json(r, 200, json_pack("{s:s}", "version", r->srv->version));
}

/* ---- request pieces shared by generate and chat ------------------------------------------------ */

/* "think": a boolean, or one of Ollama's effort strings (which all mean thinking on here). */
static int parse_think(const json_t *b, int *think, char *msg) {
    json_t *v = json_object_get(b, "think");
    *think = -1;
    if (!v || json_is_null(v)) return 0;
    if (json_is_boolean(v)) {
        *think = json_is_true(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "high") || !strcmp(s, "medium") || !strcmp(s, "low")) {
            *think = 1;
            return 0;
        }
    }
    snprintf(msg, 256, "invalid value for \"think\": expected a boolean or \"high\", \"medium\", \"low\"");
    return -1;
}

/* The instruction that stands in for constrained decoding: "format" is "json" or a JSON schema. */
static int format_instruction(const json_t *b, const char *key, char **out, char *msg) {
    json_t *f = json_object_get(b, key);
    *out = NULL;
    if (!f || json_is_null(f) || (json_is_string(f) && !*json_string_value(f))) return 0;
    if (json_is_string(f) && strcmp(json_string_value(f), "json") != 0) {
        snprintf(msg, 256, "invalid format: expected \"json\" or a JSON schema object");
        return -1;
    }
    if (!json_is_string(f) && !json_is_object(f)) {
        snprintf(msg, 256, "invalid format: expected \"json\" or a JSON schema object");
        return -1;
    }
    server_buf b2 = { 0 };
    const char *head = "\n\nRespond with a single valid JSON value and nothing else.";
    server_buf_add(&b2, head, strlen(head));
    if (json_is_object(f)) {
        char *schema = server_dump(f, NULL);
        const char *mid = " It must conform to this JSON schema: ";
        server_buf_add(&b2, mid, strlen(mid));
        if (schema) server_buf_add(&b2, schema, strlen(schema));
        free(schema);
    }
    *out = b2.p;
    return 0;
}

/* Appends text to a string (malloc'd result). */
static char *concat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

/* Ollama's Go templates ("{{ .Prompt }}") cannot be rendered; only Jinja ones are passed on. */
static const char *usable_template(const char *t) {
    if (!t || !*t) return NULL;
    if (strstr(t, "{{ .") || strstr(t, "{{.") || strstr(t, "{{- .")) return NULL;
    return t;
}

static void add_metrics(json_t *j, const server_gen *g) {
    const engine_stats *st = &g->st;
    json_t *v[6];
    const char *k[6] = { "total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
                         "eval_count", "eval_duration" };
    int64_t x[6] = { (int64_t)server_gen_total_ns(g), (int64_t)st->load_ns, server_gen_prompt_tokens(g),
                     (int64_t)st->prompt_ns, st->eval_tokens, (int64_t)st->eval_ns };
    for (int i = 0; i < 6; i++) {
        if (!x[i]) continue; /* omitempty */
        v[i] = json_integer(x[i]);
        json_object_set_new(j, k[i], v[i]);
    }
}

/* Accumulated text as a JSON string. */
static json_t *buf_text(const server_buf *b) {
    return server_json_text(b->p ? b->p : "", b->len);
}

static json_t *base_obj(const server_gen *g) {
    char ts[64];
    server_time_rfc3339(server_now_unix_ns(), true, ts, sizeof ts);
    return json_pack("{s:s, s:s}", "model", g->model, "created_at", ts);
}

/* ---- /api/generate -------------------------------------------------------------------------------- */

static bool generate_piece(server_gen *g, bool thinking, const char *text, size_t len) {
    json_t *j = base_obj(g);
    if (thinking) {
        json_object_set_new(j, "response", json_string(""));
        json_object_set_new(j, "thinking", server_json_text(text, len));
    } else {
        json_object_set_new(j, "response", server_json_text(text, len));
    }
    json_object_set_new(j, "done", json_false());
    return server_stream_json(g->out, j);
}

static void generate_done(server_gen *g) {
    json_t *j = base_obj(g);
    json_object_set_new(j, "response", g->stream ? json_string("") : buf_text(&g->content));
    if (!g->stream && g->thinking.len) json_object_set_new(j, "thinking", buf_text(&g->thinking));
    json_object_set_new(j, "done", json_true());
    json_object_set_new(j, "done_reason", json_string(g->st.done_reason));
    add_metrics(j, g);
    server_stream_json(g->out, j);
}

static const server_gen_fmt generate_fmt = { generate_piece, generate_done, SERVER_NDJSON, "application/x-ndjson" };

/* Empty prompt / no messages: load the model (or unload it with keep_alive 0), Ollama's way of
 * preloading.  The model must exist. */
static enum MHD_Result load_or_unload(server_req *r, server_gen *g, bool chat) {
    enum MHD_Result ret;
    seek_err err = { 0 };
    if (server_gen_defaults(r, g, &ret)) goto out;
    bool unload = g->req.keep_alive_ns == 0;
    int rc = unload ? sched_unload(r->srv->sched, g->model, &err)
                    : sched_load(r->srv->sched, g->model, g->req.keep_alive_ns, &err);
    if (rc && !(unload && err.code == SEEK_ENOTFOUND)) { /* unloading what is not loaded is fine */
        ret = server_reply_error(r, server_status_of(&err), "%s", err.msg);
        goto out;
    }
    json_t *j = base_obj(g);
    if (chat) json_object_set_new(j, "message", json_pack("{s:s, s:s}", "role", "assistant", "content", ""));
    else json_object_set_new(j, "response", json_string(""));
    json_object_set_new(j, "done", json_true());
    json_object_set_new(j, "done_reason", json_string(unload ? "unload" : "load"));
    ret = server_reply_json(r, 200, j);
out:
    server_gen_free(g);
    return ret;
}

/* Fields generate and chat share: model, stream, options, keep_alive, think, format.  Fills g;
 * -1 with msg. */
static int common_fields(json_t *b, server_gen *g, json_t **options, char **fmt_instr, int *think, char *msg) {
    const char *name = NULL;
    if (server_get_model(b, &name, msg) || server_get_bool(b, "stream", &g->stream, msg) ||
        server_get_obj(b, "options", options, msg) || server_keep_alive(b, &g->req.keep_alive_ns, msg) ||
        parse_think(b, think, msg) || format_instruction(b, "format", fmt_instr, msg))
        return -1;
    snprintf(g->model, sizeof g->model, "%s", name);
    return 0;
}

/* Applies model defaults, options and think; replies on error. */
static int finish_params(server_req *r, server_gen *g, json_t *options, int think, enum MHD_Result *ret) {
    char msg[256];
    if (server_gen_defaults(r, g, ret)) return -1;
    if (server_apply_options(options, &g->req.params, &g->req.num_ctx, msg)) {
        *ret = server_reply_error(r, 400, "%s", msg);
        return -1;
    }
    if (think >= 0) g->req.params.think = think;
    return 0;
}

enum MHD_Result server_api_generate(server_req *r) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    server_gen *g = server_gen_new(r, &generate_fmt);
    if (!g) {
        json_decref(b);
        return server_reply_error(r, 500, "out of memory");
    }
    g->hold = b;
    char msg[256] = "", *fmt_instr = NULL;
    const char *prompt = NULL, *system = NULL, *tmpl = NULL, *suffix = NULL;
    json_t *options = NULL, *images = NULL, *context = NULL;
    int think;
    if (common_fields(b, g, &options, &fmt_instr, &think, msg) || server_get_str(b, "prompt", &prompt, msg) ||
        server_get_str(b, "system", &system, msg) || server_get_str(b, "template", &tmpl, msg) ||
        server_get_str(b, "suffix", &suffix, msg) || server_get_bool(b, "raw", &g->req.raw, msg) ||
        server_get_arr(b, "images", &images, msg) || server_get_arr(b, "context", &context, msg)) {
        ret = server_reply_error(r, 400, "%s", msg);
        goto fail;
    }
    if (images && json_array_size(images)) {
        ret = server_reply_error(r, 400, "this model does not support image input");
        goto fail;
    }
    if (suffix && *suffix) {
        ret = server_reply_error(r, 400, "\"%s\" does not support insert", g->model);
        goto fail;
    }
    if (!prompt || !*prompt) {
        free(fmt_instr);
        return load_or_unload(r, g, false);
    }
    if (strlen(prompt) + (system ? strlen(system) : 0) > SERVER_MAX_PROMPT) {
        ret = server_reply_error(r, 413, "prompt too long (the limit is %u MiB)", SERVER_MAX_PROMPT >> 20);
        goto fail;
    }
    if (finish_params(r, g, options, think, &ret)) goto fail;
    if (fmt_instr) {
        g->prompt_buf = concat(prompt, fmt_instr);
        if (!g->prompt_buf) {
            ret = server_reply_error(r, 500, "out of memory");
            goto fail;
        }
        prompt = g->prompt_buf;
    }
    free(fmt_instr);
    g->req.prompt = prompt;
    g->req.system = system;
    g->req.template_src = usable_template(tmpl);
    return server_gen_run(r, g);
fail:
    free(fmt_instr);
    server_gen_free(g);
    return ret;
}

/* ---- /api/chat ------------------------------------------------------------------------------------- */

static bool chat_piece(server_gen *g, bool thinking, const char *text, size_t len) {
    json_t *j = base_obj(g);
    json_t *m = json_pack("{s:s}", "role", "assistant");
    if (thinking) {
        json_object_set_new(m, "content", json_string(""));
        json_object_set_new(m, "thinking", server_json_text(text, len));
    } else {
        json_object_set_new(m, "content", server_json_text(text, len));
    }
    json_object_set_new(j, "message", m);
    json_object_set_new(j, "done", json_false());
    return server_stream_json(g->out, j);
}

static void chat_done(server_gen *g) {
    json_t *j = base_obj(g);
    json_t *m = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(m, "content", g->stream ? json_string("") : buf_text(&g->content));
    if (!g->stream && g->thinking.len) json_object_set_new(m, "thinking", buf_text(&g->thinking));
    json_object_set_new(j, "message", m);
    json_object_set_new(j, "done", json_true());
    json_object_set_new(j, "done_reason", json_string(g->st.done_reason));
    add_metrics(j, g);
    server_stream_json(g->out, j);
}

static const server_gen_fmt chat_fmt = { chat_piece, chat_done, SERVER_NDJSON, "application/x-ndjson" };

/* Validates Ollama chat messages and copies the fields templates use into a new array; *text gets
 * the total content bytes. */
static json_t *chat_messages(const json_t *in, size_t *text, char *msg) {
    json_t *out = json_array();
    size_t i;
    json_t *m;
    *text = 0;
    json_array_foreach(in, i, m) {
        const char *role = NULL, *content = NULL, *thinking = NULL, *tool_name = NULL;
        json_t *images = NULL, *tool_calls = NULL;
        if (!json_is_object(m)) {
            snprintf(msg, 256, "invalid message %zu: expected an object", i);
            goto bad;
        }
        if (server_get_str(m, "role", &role, msg) || server_get_str(m, "content", &content, msg) ||
            server_get_str(m, "thinking", &thinking, msg) || server_get_str(m, "tool_name", &tool_name, msg) ||
            server_get_arr(m, "images", &images, msg) || server_get_arr(m, "tool_calls", &tool_calls, msg))
            goto bad;
        if (!role || !*role) {
            snprintf(msg, 256, "invalid message %zu: role is required", i);
            goto bad;
        }
        if (images && json_array_size(images)) {
            snprintf(msg, 256, "this model does not support image input");
            goto bad;
        }
        json_t *c = json_pack("{s:s, s:s}", "role", role, "content", content ? content : "");
        if (thinking) json_object_set_new(c, "thinking", json_string(thinking));
        if (tool_name) json_object_set_new(c, "tool_name", json_string(tool_name));
        if (tool_calls) json_object_set(c, "tool_calls", tool_calls);
        json_array_append_new(out, c);
        *text += (content ? strlen(content) : 0) + (thinking ? strlen(thinking) : 0);
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

/* Appends text to the last user message's content (the format instruction). */
static void append_to_last_user(json_t *messages, const char *text) {
    for (size_t i = json_array_size(messages); i-- > 0;) {
        json_t *m = json_array_get(messages, i);
        if (strcmp(json_string_value(json_object_get(m, "role")), "user") != 0) continue;
        char *c = concat(json_string_value(json_object_get(m, "content")), text);
        if (c) json_object_set_new(m, "content", json_string(c));
        free(c);
        return;
    }
}

enum MHD_Result server_api_chat(server_req *r) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    server_gen *g = server_gen_new(r, &chat_fmt);
    if (!g) {
        json_decref(b);
        return server_reply_error(r, 500, "out of memory");
    }
    g->hold = b;
    char msg[256] = "", *fmt_instr = NULL;
    json_t *options = NULL, *messages = NULL, *tools = NULL;
    int think;
    size_t text = 0;
    if (common_fields(b, g, &options, &fmt_instr, &think, msg) || server_get_arr(b, "messages", &messages, msg) ||
        server_get_arr(b, "tools", &tools, msg) || (messages && !(g->messages = chat_messages(messages, &text, msg)))) {
        ret = server_reply_error(r, 400, "%s", msg);
        goto fail;
    }
    if (!g->messages || !json_array_size(g->messages)) {
        free(fmt_instr);
        return load_or_unload(r, g, true);
    }
    if (text > SERVER_MAX_PROMPT) {
        ret = server_reply_error(r, 413, "prompt too long (the limit is %u MiB)", SERVER_MAX_PROMPT >> 20);
        goto fail;
    }
    if (finish_params(r, g, options, think, &ret)) goto fail;
    if (fmt_instr) append_to_last_user(g->messages, fmt_instr);
    free(fmt_instr);
    g->req.messages = g->messages;
    g->req.tools = tools;
    return server_gen_run(r, g);
fail:
    free(fmt_instr);
    server_gen_free(g);
    return ret;
}

/* ---- embeddings ------------------------------------------------------------------------------------ */

/* Runs sched_embed over inputs; replies on error.  On success *out (n x *dim) is malloc'd. */
static int embed(server_req *r, const char *name, const char **inputs, int n, bool truncate, json_t *options,
                 int64_t keep, float **out, int *dim, int64_t *n_tok, enum MHD_Result *ret) {
    char msg[256];
    engine_params p;
    memset(&p, 0, sizeof p);
    int32_t num_ctx = 0;
    if (server_apply_options(options, &p, &num_ctx, msg)) {
        *ret = server_reply_error(r, 400, "%s", msg);
        return -1;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(inputs[i]);
    if (total > SERVER_MAX_PROMPT) {
        *ret = server_reply_error(r, 413, "input too long (the limit is %u MiB)", SERVER_MAX_PROMPT >> 20);
        return -1;
    }
    seek_err err = { 0 };
    if (sched_embed(r->srv->sched, name, inputs, n, truncate, num_ctx, keep, out, dim, n_tok, &err)) {
        *ret = server_reply_error(r, server_status_of(&err), "%s", err.msg);
        return -1;
    }
    return 0;
}

/* One embedding as a JSON array; dims < dim keeps the first dims values, renormalized (Matryoshka
 * truncation, what Ollama's "dimensions" does). */
static json_t *vec_json(const float *v, int dim, int dims) {
    int n = dims > 0 && dims < dim ? dims : dim;
    double norm = 1;
    if (n < dim) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)v[i] * v[i];
        norm = ss > 0 ? 1 / sqrt(ss) : 1;
    }
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_real((float)(v[i] * norm)));
    return a;
}

enum MHD_Result server_api_embed(server_req *r) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    char msg[256];
    const char *name = NULL;
    json_t *options = NULL, *input = json_object_get(b, "input");
    bool truncate = true;
    int64_t keep, dims = 0;
    if (server_get_model(b, &name, msg) || server_get_bool(b, "truncate", &truncate, msg) ||
        server_get_obj(b, "options", &options, msg) || server_keep_alive(b, &keep, msg) ||
        server_get_int(b, "dimensions", 0, 1 << 20, &dims, msg)) {
        ret = server_reply_error(r, 400, "%s", msg);
        goto out;
    }
    size_t n = json_is_array(input) ? json_array_size(input) : 1;
    const char **inputs = calloc(n ? n : 1, sizeof *inputs);
    if (!inputs) {
        ret = server_reply_error(r, 500, "out of memory");
        goto out;
    }
    if (!input || json_is_null(input)) n = 0;
    else if (json_is_string(input)) inputs[0] = json_string_value(input);
    else if (json_is_array(input)) {
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(input, i);
            if (!json_is_string(e)) {
                free(inputs);
                ret = server_reply_error(r, 400, "invalid input type: expected a string or an array of strings");
                goto out;
            }
            inputs[i] = json_string_value(e);
        }
    } else {
        free(inputs);
        ret = server_reply_error(r, 400, "invalid input type: expected a string or an array of strings");
        goto out;
    }
    if (n > 4096) {
        free(inputs);
        ret = server_reply_error(r, 400, "too many inputs (at most 4096)");
        goto out;
    }
    float *vec = NULL;
    int dim = 0;
    int64_t n_tok = 0;
    uint64_t t0 = r->t_start;
    if (n && embed(r, name, inputs, (int)n, truncate, options, keep, &vec, &dim, &n_tok, &ret)) {
        free(inputs);
        goto out;
    }
    if (!n) { /* Ollama answers an empty input with no embeddings, after checking the model */
        engine_params p;
        seek_err err = { 0 };
        if (sched_default_params(r->srv->sched, name, &p, &err)) {
            free(inputs);
            ret = server_reply_error(r, server_status_of(&err), "%s", err.msg);
            goto out;
        }
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, vec_json(vec + i * (size_t)dim, dim, (int)dims));
    json_t *j = json_pack("{s:s, s:o, s:I}", "model", name, "embeddings", arr, "total_duration",
                          (json_int_t)(time_now_ns() - t0));
    if (n_tok) json_object_set_new(j, "prompt_eval_count", json_integer(n_tok));
    free(vec);
    free(inputs);
    ret = server_reply_json(r, 200, j);
out:
    json_decref(b);
    return ret;
}

enum MHD_Result server_api_embeddings(server_req *r) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    char msg[256];
    const char *name = NULL, *prompt = NULL;
    json_t *options = NULL;
    int64_t keep;
    if (server_get_model(b, &name, msg) || server_get_str(b, "prompt", &prompt, msg) ||
        server_get_obj(b, "options", &options, msg) || server_keep_alive(b, &keep, msg)) {
        ret = server_reply_error(r, 400, "%s", msg);
        goto out;
    }
    float *vec = NULL;
    int dim = 0;
    int64_t n_tok = 0;
    if (!prompt || !*prompt) {
        engine_params p;
        seek_err err = { 0 };
        ret = sched_default_params(r->srv->sched, name, &p, &err)
                  ? server_reply_error(r, server_status_of(&err), "%s", err.msg)
                  : server_reply_json(r, 200, json_pack("{s:[]}", "embedding"));
        goto out;
    }
    if (embed(r, name, &prompt, 1, true, options, keep, &vec, &dim, &n_tok, &ret)) goto out;
    ret = server_reply_json(r, 200, json_pack("{s:o}", "embedding", vec_json(vec, dim, 0)));
    free(vec);
out:
    json_decref(b);
    return ret;
}

/* ---- /api/ps --------------------------------------------------------------------------------------- */

enum MHD_Result server_api_ps(server_req *r) {
    sched_loaded ld[64];
    int n = sched_ps(r->srv->sched, ld, 64);
    if (n > 64) n = 64;
    json_t *models = json_array();
    seek_err err = { 0 };
    store *st = store_open(r->srv->models, &err);
    for (int i = 0; i < n; i++) {
        char exp[64];
        int64_t e = ld[i].expires_unix_ns;
        server_time_rfc3339(e, false, exp, sizeof exp);
        json_t *details = NULL;
        store_name nm;
        store_manifest man = { 0 };
        if (st && !store_is_path(ld[i].name) && store_name_parse(ld[i].name, &nm, NULL) == 0 &&
            store_manifest_read(st, &nm, &man, NULL) == 0)
            details = server_model_details(st, &man);
        store_manifest_free(&man);
        if (!details) details = json_pack("{s:s, s:s}", "parent_model", "", "format", "gguf");
        const char *dg = ld[i].digest;
        if (!strncmp(dg, "sha256:", 7)) dg += 7;
        json_array_append_new(models, json_pack("{s:s, s:s, s:I, s:s, s:o, s:s, s:i, s:i}", "name", ld[i].name, "model",
                                                ld[i].name, "size", (json_int_t)ld[i].size_bytes, "digest", dg,
                                                "details", details, "expires_at", exp, "size_vram", 0,
                                                "context_length", ld[i].num_ctx));
    }
    store_close(st);
    return server_reply_json(r, 200, json_pack("{s:o}", "models", models));
}
