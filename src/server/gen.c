/*
 * gen.c - one generation request, whichever API it came from: the job that calls sched_generate on
 * a worker thread, routes the streamed pieces to the API's formatter (stream) or collects them
 * (not stream), and turns scheduler errors into HTTP statuses.
 *
 * The API files (api_ollama.c, api_openai.c) validate the request, fill g->req and pick a
 * formatter; nothing here knows about field names on the wire.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_impl.h"

server_gen *server_gen_new(server_req *r, const server_gen_fmt *fmt) {
    server_gen *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->srv = r->srv;
    g->fmt = fmt;
    g->openai = r->openai;
    g->t_start = r->t_start;
    g->created_unix = server_now_unix_ns() / 1000000000;
    g->req.keep_alive_ns = INT64_MIN;
    g->stream = true;
    return g;
}

void server_gen_free(void *p) {
    server_gen *g = p;
    if (!g) return;
    json_decref(g->hold);
    json_decref(g->messages);
    free(g->prompt_buf);
    free(g->system_buf);
    server_buf_free(&g->content);
    server_buf_free(&g->thinking);
    free(g);
}

int server_gen_defaults(server_req *r, server_gen *g, enum MHD_Result *ret) {
    seek_err err = { 0 };
    if (sched_default_params(r->srv->sched, g->model, &g->req.params, &err) == 0) return 0;
    *ret = server_reply_error(r, server_status_of(&err), "%s", err.msg);
    return -1;
}

int64_t server_gen_prompt_tokens(const server_gen *g) {
    return (int64_t)g->st.prompt_tokens + g->st.prompt_cached;
}

uint64_t server_gen_total_ns(const server_gen *g) {
    uint64_t t = time_now_ns() - g->t_start;
    return t > g->st.total_ns ? t : g->st.total_ns;
}

/* The scheduler's emit callback (on a scheduler thread). */
static bool gen_emit(void *ud, bool thinking, const char *text, size_t len) {
    server_gen *g = ud;
    if (!g->stream) {
        if (server_buf_add(thinking ? &g->thinking : &g->content, text, len)) return false;
        return !server_stream_cancelled(g->out);
    }
    return g->fmt->piece(g, thinking, text, len);
}

static void gen_work(server_stream *st, void *arg) {
    server_gen *g = arg;
    g->out = st;
    g->req.emit = gen_emit;
    g->req.ud = g;
    g->req.model = g->model;
    seek_err err = { 0 };
    if (sched_generate(g->srv->sched, &g->req, &g->st, &err) != 0) {
        unsigned status = server_status_of(&err);
        const char *msg = err.msg[0] ? err.msg : "generation failed";
        server_stream_fail(st, status, server_error_json(g->openai, status, msg));
        return;
    }
    if (server_stream_cancelled(st)) return; /* nobody to tell */
    if (!g->st.done_reason || !strcmp(g->st.done_reason, "cancel")) g->st.done_reason = "stop";
    g->fmt->done(g);
}

enum MHD_Result server_gen_run(server_req *r, server_gen *g) {
    const char *ctype = g->stream ? g->fmt->content_type : "application/json; charset=utf-8";
    return server_stream_run(r, g->stream, ctype, g->fmt->framing, gen_work, g, server_gen_free);
}
