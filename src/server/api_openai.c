/*
 * api_openai.c - the OpenAI-compatible endpoints, shaped like Ollama's compatibility layer:
 * /v1/chat/completions, /v1/completions (SSE "data: {...}" events ending with "data: [DONE]"),
 * /v1/models, /v1/models/{model} and /v1/embeddings (float or base64).
 *
 * Reasoning: the thought goes in both "reasoning_content" (DeepSeek's API field, which most
 * OpenAI-client apps read) and "reasoning" (Ollama's), in messages and stream deltas alike.
 * "reasoning_effort": "none" (or reasoning.effort) turns thinking off; any other effort turns it on.
 * Not supported: n > 1, logprobs (ignored), tool-call parsing of the output, image parts, and
 * token-array inputs to completions and embeddings (400).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_impl.h"

static json_t *usage_json(const server_gen *g) {
    int64_t p = server_gen_prompt_tokens(g), c = g->st.eval_tokens;
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)p, "completion_tokens", (json_int_t)c,
                     "total_tokens", (json_int_t)(p + c));
}

static const char *finish_reason(const server_gen *g) {
    return !strcmp(g->st.done_reason, "length") ? "length" : "stop";
}

/* Accumulated text as a JSON string. */
static json_t *buf_text(const server_buf *b) {
    return server_json_text(b->p ? b->p : "", b->len);
}

static json_t *envelope(const server_gen *g, const char *object) {
    return json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", g->id, "object", object, "created",
                     (json_int_t)g->created_unix, "model", g->model, "system_fingerprint", "fp_ollama");
}

/* ---- chat completions -------------------------------------------------------------------------- */

static bool chat_piece(server_gen *g, bool thinking, const char *text, size_t len) {
    json_t *delta = json_pack("{s:s}", "role", "assistant");
    if (thinking) {
        json_object_set_new(delta, "content", json_string(""));
        json_object_set_new(delta, "reasoning", server_json_text(text, len));
        json_object_set_new(delta, "reasoning_content", server_json_text(text, len));
    } else {
        json_object_set_new(delta, "content", server_json_text(text, len));
    }
    json_t *j = envelope(g, "chat.completion.chunk");
    json_object_set_new(j, "choices", json_pack("[{s:i, s:o, s:n}]", "index", 0, "delta", delta, "finish_reason"));
    return server_stream_json(g->out, j);
}

static void chat_done(server_gen *g) {
    if (g->stream) {
        json_t *j = envelope(g, "chat.completion.chunk");
        json_object_set_new(j, "choices", json_pack("[{s:i, s:{s:s, s:s}, s:s}]", "index", 0, "delta", "role",
                                                    "assistant", "content", "", "finish_reason", finish_reason(g)));
        server_stream_json(g->out, j);
        if (g->include_usage) {
            j = envelope(g, "chat.completion.chunk");
            json_object_set_new(j, "choices", json_array());
            json_object_set_new(j, "usage", usage_json(g));
            server_stream_json(g->out, j);
        }
        server_stream_write(g->out, "data: [DONE]\n\n", 14);
        return;
    }
    json_t *m = json_pack("{s:s, s:o}", "role", "assistant", "content", buf_text(&g->content));
    if (g->thinking.len) {
        json_object_set_new(m, "reasoning", buf_text(&g->thinking));
        json_object_set_new(m, "reasoning_content", buf_text(&g->thinking));
    }
    json_t *j = envelope(g, "chat.completion");
    json_object_set_new(j, "choices", json_pack("[{s:i, s:o, s:s}]", "index", 0, "message", m, "finish_reason",
                                                finish_reason(g)));
    json_object_set_new(j, "usage", usage_json(g));
    server_stream_json(g->out, j);
}

static const server_gen_fmt chat_fmt = { chat_piece, chat_done, SERVER_SSE, "text/event-stream" };

/* Message content: a string, null, or an array of parts of which the text ones are joined. */
static int content_text(const json_t *c, server_buf *out, size_t i, char *msg) {
    if (!c || json_is_null(c)) return 0;
    if (json_is_string(c)) return server_buf_add(out, json_string_value(c), json_string_length(c));
    if (!json_is_array(c)) {
        snprintf(msg, 256, "invalid message %zu content: expected a string or an array of parts", i);
        return -1;
    }
    size_t k;
    json_t *part;
    json_array_foreach(c, k, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *text = json_string_value(json_object_get(part, "text"));
        if (!type || strcmp(type, "text") != 0 || !text) {
            snprintf(msg, 256, "invalid message %zu content part %zu: only text parts are supported", i, k);
            return -1;
        }
        server_buf_add(out, text, strlen(text));
    }
    return 0;
}

static json_t *oai_messages(const json_t *in, size_t *text, char *msg) {
    json_t *out = json_array();
    size_t i;
    json_t *m;
    *text = 0;
    json_array_foreach(in, i, m) {
        const char *role = NULL, *reasoning = NULL, *rc = NULL;
        json_t *tool_calls = NULL;
        server_buf content = { 0 };
        if (!json_is_object(m)) {
            snprintf(msg, 256, "invalid message %zu: expected an object", i);
            goto bad;
        }
        if (server_get_str(m, "role", &role, msg) || server_get_str(m, "reasoning", &reasoning, msg) ||
            server_get_str(m, "reasoning_content", &rc, msg) || server_get_arr(m, "tool_calls", &tool_calls, msg) ||
            content_text(json_object_get(m, "content"), &content, i, msg)) {
            server_buf_free(&content);
            goto bad;
        }
        if (!role || !*role) {
            server_buf_free(&content);
            snprintf(msg, 256, "invalid message %zu: role is required", i);
            goto bad;
        }
        if (!strcmp(role, "developer")) role = "system";
        json_t *c = json_pack("{s:s, s:o}", "role", role, "content",
                              server_json_text(content.p ? content.p : "", content.len));
        if (rc || reasoning) json_object_set_new(c, "thinking", json_string(rc ? rc : reasoning));
        if (tool_calls) json_object_set(c, "tool_calls", tool_calls);
        json_array_append_new(out, c);
        *text += content.len;
        server_buf_free(&content);
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

/* The sampler fields OpenAI puts at the top level.  -1 with msg. */
static int oai_params(const json_t *b, server_gen *g, char *msg) {
    engine_params *p = &g->req.params;
    double v;
    int64_t iv;
    struct { const char *key; float *dst; } nums[] = {
        { "temperature", &p->sample.temperature }, { "top_p", &p->sample.top_p },
        { "frequency_penalty", &p->sample.frequency_penalty }, { "presence_penalty", &p->sample.presence_penalty },
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        v = NAN;
        if (server_get_num(b, nums[i].key, &v, msg)) return -1;
        if (v == v) {
            if (v < -1e6 || v > 1e6) {
                snprintf(msg, 256, "invalid value for \"%s\": out of range", nums[i].key);
                return -1;
            }
            if (nums[i].dst == &p->sample.top_p) v = v < 0 ? 0 : v > 1 ? 1 : v; /* a probability */
            *nums[i].dst = (float)v;
        }
    }
    iv = INT64_MIN;
    if (server_get_int(b, "seed", INT64_MIN + 1, INT64_MAX, &iv, msg)) return -1;
    if (iv != INT64_MIN) p->sample.has_seed = true, p->sample.seed = (uint64_t)iv;
    const char *keys[] = { "max_tokens", "max_completion_tokens" };
    for (int i = 0; i < 2; i++) {
        iv = INT64_MIN;
        if (server_get_int(b, keys[i], INT32_MIN + 1, INT32_MAX, &iv, msg)) return -1;
        if (iv != INT64_MIN) p->num_predict = (int32_t)iv;
    }
    iv = 1;
    if (server_get_int(b, "n", 1, 1, &iv, msg)) return -1;
    json_t *stop = json_object_get(b, "stop");
    if (stop && !json_is_null(stop) && server_set_stop(stop, p, "stop", msg)) return -1;
    json_t *so = NULL;
    if (server_get_obj(b, "stream_options", &so, msg) || server_get_bool(b, "stream", &g->stream, msg) ||
        (so && server_get_bool(so, "include_usage", &g->include_usage, msg)))
        return -1;
    /* keep_alive and options are Ollama extensions some clients send through the OpenAI API */
    if (server_keep_alive(b, &g->req.keep_alive_ns, msg)) return -1;
    json_t *opts = NULL;
    if (server_get_obj(b, "options", &opts, msg) || server_apply_options(opts, p, &g->req.num_ctx, msg)) return -1;
    return 0;
}

/* response_format: json_object / json_schema become the prompt instruction (no constrained decoding). */
static int oai_format(const json_t *b, char **instr, char *msg) {
    json_t *rf = NULL;
    *instr = NULL;
    if (server_get_obj(b, "response_format", &rf, msg)) return -1;
    if (!rf) return 0;
    const char *type = NULL;
    if (server_get_str(rf, "type", &type, msg)) return -1;
    if (!type || !strcmp(type, "text")) return 0;
    server_buf s = { 0 };
    const char *head = "\n\nRespond with a single valid JSON value and nothing else.";
    server_buf_add(&s, head, strlen(head));
    if (!strcmp(type, "json_schema")) {
        json_t *js = json_object_get(rf, "json_schema");
        json_t *schema = json_is_object(js) ? json_object_get(js, "schema") : NULL;
        char *d = schema ? server_dump(schema, NULL) : NULL;
        if (d) {
            const char *mid = " It must conform to this JSON schema: ";
            server_buf_add(&s, mid, strlen(mid));
            server_buf_add(&s, d, strlen(d));
        }
        free(d);
    } else if (strcmp(type, "json_object") != 0) {
        server_buf_free(&s);
        snprintf(msg, 256, "invalid response_format type \"%.60s\"", type);
        return -1;
    }
    *instr = s.p;
    return 0;
}

static int oai_think(const json_t *b, int *think, char *msg) {
    const char *effort = NULL;
    json_t *reasoning = NULL;
    *think = -1;
    if (server_get_str(b, "reasoning_effort", &effort, msg) || server_get_obj(b, "reasoning", &reasoning, msg) ||
        (reasoning && !effort && server_get_str(reasoning, "effort", &effort, msg)))
        return -1;
    if (effort) *think = strcmp(effort, "none") != 0;
    return 0;
}

static void make_id(server_gen *g, const char *prefix) {
    static atomic_uint counter;
    unsigned n = atomic_fetch_add(&counter, 1);
    snprintf(g->id, sizeof g->id, "%s%u%03u", prefix, (unsigned)(g->created_unix % 1000000), n % 1000);
}

/* Shared start of chat and completions: body, job, model, defaults, parameters. */
static server_gen *oai_start(server_req *r, const server_gen_fmt *fmt, json_t **body, int *think, char **instr,
                             enum MHD_Result *ret) {
    json_t *b = server_body_object(r, ret);
    if (!b) return NULL;
    server_gen *g = server_gen_new(r, fmt);
    if (!g) {
        json_decref(b);
        *ret = server_reply_error(r, 500, "out of memory");
        return NULL;
    }
    g->hold = b;
    g->stream = false; /* OpenAI's default */
    char msg[256] = "";
    const char *name = NULL;
    if (server_get_model(b, &name, msg) || oai_think(b, think, msg) || oai_format(b, instr, msg)) {
        *ret = server_reply_error(r, 400, "%s", msg);
        server_gen_free(g);
        return NULL;
    }
    snprintf(g->model, sizeof g->model, "%s", name);
    if (server_gen_defaults(r, g, ret)) {
        free(*instr);
        server_gen_free(g);
        return NULL;
    }
    if (oai_params(b, g, msg)) {
        free(*instr);
        *ret = server_reply_error(r, 400, "%s", msg);
        server_gen_free(g);
        return NULL;
    }
    if (*think >= 0) g->req.params.think = *think;
    *body = b;
    return g;
}

enum MHD_Result server_oai_chat(server_req *r) {
    enum MHD_Result ret;
    json_t *b;
    int think;
    char *instr = NULL, msg[256] = "";
    server_gen *g = oai_start(r, &chat_fmt, &b, &think, &instr, &ret);
    if (!g) return ret;
    make_id(g, "chatcmpl-");
    json_t *messages = NULL, *tools = NULL;
    size_t text = 0;
    if (server_get_arr(b, "messages", &messages, msg) || server_get_arr(b, "tools", &tools, msg)) goto bad;
    if (!messages || !json_array_size(messages)) {
        snprintf(msg, sizeof msg, "invalid request: messages must be a non-empty array");
        goto bad;
    }
    if (!(g->messages = oai_messages(messages, &text, msg))) goto bad;
    if (text > SERVER_MAX_PROMPT) {
        free(instr);
        ret = server_reply_error(r, 413, "prompt too long (the limit is %u MiB)", SERVER_MAX_PROMPT >> 20);
        server_gen_free(g);
        return ret;
    }
    if (instr) {
        json_t *last = NULL;
        for (size_t i = json_array_size(g->messages); i-- > 0 && !last;)
            if (!strcmp(json_string_value(json_object_get(json_array_get(g->messages, i), "role")), "user"))
                last = json_array_get(g->messages, i);
        if (last) {
            server_buf c = { 0 };
            const char *old = json_string_value(json_object_get(last, "content"));
            server_buf_add(&c, old, strlen(old));
            server_buf_add(&c, instr, strlen(instr));
            json_object_set_new(last, "content", json_string(c.p));
            server_buf_free(&c);
        }
    }
    free(instr);
    g->req.messages = g->messages;
    g->req.tools = json_array_size(tools) ? tools : NULL;
    return server_gen_run(r, g);
bad:
    free(instr);
    ret = server_reply_error(r, 400, "%s", msg);
    server_gen_free(g);
    return ret;
}

/* ---- completions --------------------------------------------------------------------------------- */

static bool completion_piece(server_gen *g, bool thinking, const char *text, size_t len) {
    json_t *choice = json_pack("{s:s, s:i, s:n}", "text", "", "index", 0, "finish_reason");
    if (thinking) json_object_set_new(choice, "reasoning", server_json_text(text, len));
    else json_object_set_new(choice, "text", server_json_text(text, len));
    json_t *j = envelope(g, "text_completion");
    json_object_set_new(j, "choices", json_pack("[o]", choice));
    return server_stream_json(g->out, j);
}

static void completion_done(server_gen *g) {
    json_t *j = envelope(g, "text_completion");
    json_t *choice = json_pack("{s:o, s:i, s:n, s:s}", "text", g->stream ? json_string("") : buf_text(&g->content),
                               "index", 0, "logprobs", "finish_reason", finish_reason(g));
    if (!g->stream && g->thinking.len) json_object_set_new(choice, "reasoning", buf_text(&g->thinking));
    json_object_set_new(j, "choices", json_pack("[o]", choice));
    if (!g->stream || g->include_usage) json_object_set_new(j, "usage", usage_json(g));
    server_stream_json(g->out, j);
    if (g->stream) server_stream_write(g->out, "data: [DONE]\n\n", 14);
}

static const server_gen_fmt completion_fmt = { completion_piece, completion_done, SERVER_SSE, "text/event-stream" };

enum MHD_Result server_oai_completions(server_req *r) {
    enum MHD_Result ret;
    json_t *b;
    int think;
    char *instr = NULL, msg[256] = "";
    server_gen *g = oai_start(r, &completion_fmt, &b, &think, &instr, &ret);
    if (!g) return ret;
    make_id(g, "cmpl-");
    json_t *p = json_object_get(b, "prompt");
    const char *suffix = NULL;
    if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
    if (!json_is_string(p)) {
        snprintf(msg, sizeof msg, "invalid value for \"prompt\": expected a string (token arrays and several "
                                  "prompts are not supported)");
        goto bad;
    }
    if (server_get_str(b, "suffix", &suffix, msg)) goto bad;
    if (suffix && *suffix) {
        snprintf(msg, sizeof msg, "\"%.200s\" does not support insert", g->model);
        goto bad;
    }
    if (json_string_length(p) > SERVER_MAX_PROMPT) {
        free(instr);
        ret = server_reply_error(r, 413, "prompt too long (the limit is %u MiB)", SERVER_MAX_PROMPT >> 20);
        server_gen_free(g);
        return ret;
    }
    if (!json_string_length(p)) {
        snprintf(msg, sizeof msg, "invalid value for \"prompt\": must not be empty");
        goto bad;
    }
    if (instr) {
        server_buf c = { 0 };
        server_buf_add(&c, json_string_value(p), json_string_length(p));
        server_buf_add(&c, instr, strlen(instr));
        g->prompt_buf = c.p;
        g->req.prompt = g->prompt_buf;
    } else {
        g->req.prompt = json_string_value(p);
    }
    free(instr);
    return server_gen_run(r, g);
bad:
    free(instr);
    ret = server_reply_error(r, 400, "%s", msg);
    server_gen_free(g);
    return ret;
}

/* ---- models -------------------------------------------------------------------------------------- */

static json_t *model_obj(const store_name *n, int64_t mtime) {
    char name[600];
    store_name_display(n, name, sizeof name);
    return json_pack("{s:s, s:s, s:I, s:s}", "id", name, "object", "model", "created", (json_int_t)mtime, "owned_by",
                     n->ns);
}

enum MHD_Result server_oai_models(server_req *r) {
    enum MHD_Result ret;
    store_entry *e;
    size_t n;
    store *s = server_store_list(r, &e, &n, &ret);
    if (!s) return ret;
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(data, model_obj(&e[i].name, e[i].mtime));
    free(e);
    store_close(s);
    return server_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

enum MHD_Result server_oai_model(server_req *r) {
    store_name nm;
    if (store_name_parse(r->arg, &nm, NULL)) return server_reply_error(r, 404, "model \"%s\" not found", r->arg);
    enum MHD_Result ret;
    store *s = server_store(r, &ret);
    if (!s) return ret;
    store_manifest m = { 0 };
    int rc = store_manifest_read(s, &nm, &m, NULL);
    store_close(s);
    if (rc) return server_reply_error(r, 404, "model \"%s\" not found", r->arg);
    json_t *j = model_obj(&nm, m.mtime);
    store_manifest_free(&m);
    return server_reply_json(r, 200, j);
}

/* ---- embeddings ---------------------------------------------------------------------------------- */

static char *base64_floats(const float *v, int n) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)v; /* little-endian float32, as OpenAI sends */
    size_t len = (size_t)n * 4, o = 0;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
        out[o++] = tbl[x >> 18 & 63];
        out[o++] = tbl[x >> 12 & 63];
        out[o++] = i + 1 < len ? tbl[x >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tbl[x & 63] : '=';
    }
    out[o] = 0;
    return out;
}

enum MHD_Result server_oai_embeddings(server_req *r) {
    enum MHD_Result ret;
    json_t *b = server_body_object(r, &ret);
    if (!b) return ret;
    char msg[256];
    const char *name = NULL, *enc = NULL;
    int64_t dims = 0;
    const char **inputs = NULL;
    float *vec = NULL;
    json_t *input = json_object_get(b, "input");
    if (server_get_model(b, &name, msg) || server_get_str(b, "encoding_format", &enc, msg) ||
        server_get_int(b, "dimensions", 1, 1 << 20, &dims, msg))
        goto bad;
    if (enc && strcmp(enc, "float") && strcmp(enc, "base64")) {
        snprintf(msg, sizeof msg, "invalid encoding_format \"%.40s\": expected float or base64", enc);
        goto bad;
    }
    size_t n = json_is_array(input) ? json_array_size(input) : 1;
    if (!input || json_is_null(input) || (json_is_array(input) && !n) ||
        (json_is_string(input) && !json_string_length(input))) {
        snprintf(msg, sizeof msg, "invalid input: must be a non-empty string or array of strings");
        goto bad;
    }
    if (n > 4096) {
        snprintf(msg, sizeof msg, "too many inputs (at most 4096)");
        goto bad;
    }
    inputs = calloc(n, sizeof *inputs);
    size_t total = 0;
    for (size_t i = 0; inputs && i < n; i++) {
        json_t *e = json_is_array(input) ? json_array_get(input, i) : input;
        if (!json_is_string(e)) {
            snprintf(msg, sizeof msg, "invalid input: expected a string or an array of strings "
                                      "(token arrays are not supported)");
            goto bad;
        }
        inputs[i] = json_string_value(e);
        total += json_string_length(e);
    }
    if (!inputs) {
        ret = server_reply_error(r, 500, "out of memory");
        goto out;
    }
    if (total > SERVER_MAX_PROMPT) {
        ret = server_reply_error(r, 413, "input too long (the limit is %u MiB)", SERVER_MAX_PROMPT >> 20);
        goto out;
    }
    int dim = 0;
    int64_t n_tok = 0;
    seek_err err = { 0 };
    if (sched_embed(r->srv->sched, name, inputs, (int)n, true, 0, INT64_MIN, &vec, &dim, &n_tok, &err)) {
        ret = server_reply_error(r, server_status_of(&err), "%s", err.msg);
        goto out;
    }
    int keep = dims > 0 && dims < dim ? (int)dims : dim;
    json_t *data = json_array();
    float *tmp = malloc((size_t)keep * sizeof *tmp);
    for (size_t i = 0; tmp && i < n; i++) {
        const float *v = vec + i * (size_t)dim;
        double ss = 0;
        for (int k = 0; k < keep; k++) ss += (double)v[k] * v[k];
        double scale = keep < dim && ss > 0 ? 1 / sqrt(ss) : 1; /* truncated: renormalize */
        for (int k = 0; k < keep; k++) tmp[k] = (float)(v[k] * scale);
        json_t *emb;
        if (enc && !strcmp(enc, "base64")) {
            char *s64 = base64_floats(tmp, keep);
            emb = json_string(s64 ? s64 : "");
            free(s64);
        } else {
            emb = json_array();
            for (int k = 0; k < keep; k++) json_array_append_new(emb, json_real(tmp[k]));
        }
        json_array_append_new(data, json_pack("{s:s, s:o, s:I}", "object", "embedding", "embedding", emb, "index",
                                              (json_int_t)i));
    }
    free(tmp);
    ret = server_reply_json(r, 200, json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data, "model",
                                              name, "usage", "prompt_tokens", (json_int_t)n_tok, "total_tokens",
                                              (json_int_t)n_tok));
    goto out;
bad:
    ret = server_reply_error(r, 400, "%s", msg);
out:
    free(vec);
    free(inputs);
    json_decref(b);
    return ret;
}
