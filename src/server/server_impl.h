/*
 * server_impl.h - what the server's .c files share: the server and request structs, reply helpers,
 * JSON field validation, the streaming machinery and the generation job.  Not a public API.
 *
 * Request lifetime: libmicrohttpd calls server.c's access handler on the connection's thread; it
 * collects the body (bounded), routes, and calls one handler.  A handler answers with exactly one
 * server_reply* call, or hands the request to server_stream_run, which answers when a worker thread
 * has produced output (see stream.c).
 */
#ifndef SEEK_SERVER_IMPL_H
#define SEEK_SERVER_IMPL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../engine/sched.h"
#include "../store/store.h"
#include "server.h"

#define SERVER_MAX_BODY (32u << 20)    /* request bodies (blob uploads excepted) */
#define SERVER_MAX_PROMPT (4u << 20)   /* bytes of prompt / message text per request */
#define SERVER_MAX_PENDING (64u << 20) /* streamed bytes waiting for a slow client */
#define SERVER_MAX_NUM_CTX (1 << 18)   /* largest num_ctx accepted (262144 tokens) */
#define SERVER_IDLE_TIMEOUT_S 300         /* idle keep-alive / stalled-upload connections */
#define SERVER_POLL_MS 50              /* how often waiting threads look for a vanished client */

struct server {
    struct MHD_Daemon *mhd;
    sched *sched;
    char *models;          /* store root or NULL (the default) */
    char *version;
    char **origins;        /* extra CORS origin patterns */
    int n_origins;
    bool loopback;         /* bound to a loopback address: check Host headers */
    char addr[300];
    int port;
    int listen_fd;
    /* Store writes (create, copy, delete, blob adoption) one at a time: the store's temp names
     * are unique per process and per handle, not per thread. */
    pthread_mutex_t store_mu;
    atomic_bool stopping;
    atomic_int workers;    /* stream worker threads alive */
};

/* One HTTP request, from its first header to the completion callback. */
typedef struct server_req {
    server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const char *arg;         /* the path after a prefix route ("/api/blobs/" -> digest) */
    const char *origin;      /* allowed Origin to echo in CORS headers, or NULL */
    bool openai;             /* errors in OpenAI's shape */
    const struct server_route *route;
    char *body;              /* NUL-terminated, len bytes */
    size_t len, cap;
    bool too_big;
    bool replied;            /* an answer was queued (or the connection dropped) */
    /* blob upload (POST /api/blobs/:digest): streamed to a temp file while hashed */
    int blob_fd;
    char blob_tmp[4200];
    void *blob_sha;          /* EVP_MD_CTX (sha256) */
    uint64_t blob_size;
    bool blob_failed;
    uint64_t t_start;        /* monotonic ns when the request arrived */
} server_req;

typedef enum MHD_Result (*server_handler)(server_req *r);

typedef struct server_route {
    const char *path;        /* exact path, or a prefix when it ends with '/' and prefix is set */
    bool prefix;
    bool openai;
    bool raw_body;           /* the body is streamed to the handler (blob upload), not buffered */
    struct { const char *method; server_handler fn; } methods[3];
} server_route;

/* ---- replies (server.c) --------------------------------------------------------------------- */

/* Queues data as the response (copied) with CORS headers.  Returns what the access handler must
 * return. */
enum MHD_Result server_reply(server_req *r, unsigned status, const char *content_type, const void *data,
                             size_t len);
/* j is consumed (decref'd). */
enum MHD_Result server_reply_json(server_req *r, unsigned status, json_t *j);
/* {"error": msg} for Ollama routes, {"error": {"message", "type", "param", "code"}} for OpenAI. */
enum MHD_Result server_reply_error(server_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The HTTP status for a seek_err code: 404 not found, 400 bad input, 503 busy, 500 otherwise. */
unsigned server_status_of(const seek_err *err);
/* The error body for a message in r's dialect (new reference). */
json_t *server_error_json(bool openai, unsigned status, const char *msg);
/* Adds the CORS headers r's Origin earned to a response. */
void server_add_cors(server_req *r, struct MHD_Response *resp);
/* True if the client's socket reports end-of-file or an error (a peek, no data consumed). */
bool server_client_gone(struct MHD_Connection *conn);

/* Parses the body as a JSON object.  NULL after replying 400 (the caller returns *ret). */
json_t *server_body_object(server_req *r, enum MHD_Result *ret);

/* ---- handlers ------------------------------------------------------------------------------- */

enum MHD_Result server_api_root(server_req *r);
enum MHD_Result server_api_version(server_req *r);
enum MHD_Result server_api_generate(server_req *r);
enum MHD_Result server_api_chat(server_req *r);
enum MHD_Result server_api_embed(server_req *r);
enum MHD_Result server_api_embeddings(server_req *r);
enum MHD_Result server_api_ps(server_req *r);
enum MHD_Result server_api_tags(server_req *r);
enum MHD_Result server_api_show(server_req *r);
enum MHD_Result server_api_copy(server_req *r);
enum MHD_Result server_api_delete(server_req *r);
enum MHD_Result server_api_create(server_req *r);
enum MHD_Result server_api_blob_head(server_req *r);
enum MHD_Result server_api_blob_post(server_req *r);
enum MHD_Result server_api_pull(server_req *r);
enum MHD_Result server_api_push(server_req *r);
enum MHD_Result server_oai_chat(server_req *r);
enum MHD_Result server_oai_completions(server_req *r);
enum MHD_Result server_oai_models(server_req *r);
enum MHD_Result server_oai_model(server_req *r);
enum MHD_Result server_oai_embeddings(server_req *r);

/* ---- JSON fields (json_util.c) --------------------------------------------------------------- */

/* Typed getters: absent or null leaves *out alone and returns 0; a value of the wrong type returns
 * -1 with msg ("invalid value for \"prompt\": expected a string").  msg has 256 bytes. */
int server_get_str(const json_t *o, const char *key, const char **out, char *msg);
int server_get_bool(const json_t *o, const char *key, bool *out, char *msg);
int server_get_int(const json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, char *msg);
int server_get_num(const json_t *o, const char *key, double *out, char *msg);
int server_get_obj(const json_t *o, const char *key, json_t **out, char *msg);
int server_get_arr(const json_t *o, const char *key, json_t **out, char *msg);
/* The model name: "model", else "name" (Ollama's legacy field).  -1 with msg when neither is a
 * non-empty string. */
int server_get_model(const json_t *o, const char **out, char *msg);

/* Ollama's "options" (and OpenAI's top-level sampler fields, translated by the caller): every
 * known option is type-checked; unknown ones are ignored, as Ollama does.  p starts from the
 * model's defaults; num_ctx gets options.num_ctx (0 when not given).  -1 with msg on a bad one. */
int server_apply_options(const json_t *opts, engine_params *p, int32_t *num_ctx, char *msg);
/* Adds stop strings from a string or an array of strings (replacing earlier ones). */
int server_set_stop(const json_t *v, engine_params *p, const char *what, char *msg);

/* keep_alive as Ollama reads it: a number of seconds or a Go duration string ("5m", "1h30m",
 * "-1"); negative means forever (-1 here), 0 unload.  Absent or null: INT64_MIN (the default). */
int server_keep_alive(const json_t *o, int64_t *out_ns, char *msg);

/* Time as Go's RFC3339Nano (trailing zeros of the fraction dropped): UTC with "Z" when utc, else
 * local time with its offset.  buf has at least 48 bytes. */
void server_time_rfc3339(int64_t unix_ns, bool utc, char *buf, size_t cap);
int64_t server_now_unix_ns(void);

/* A JSON string from possibly invalid UTF-8 (bad bytes become U+FFFD).  New reference. */
json_t *server_json_text(const char *s, size_t len);
/* Compact serialization, floats with 9 significant digits; caller frees. */
char *server_dump(const json_t *j, size_t *len);

/* A growable byte buffer. */
typedef struct server_buf {
    char *p;
    size_t len, cap;
} server_buf;
int server_buf_add(server_buf *b, const char *s, size_t n); /* keeps p NUL-terminated */
void server_buf_free(server_buf *b);

/* ---- streaming (stream.c) --------------------------------------------------------------------- */

typedef struct server_stream server_stream;
typedef void (*server_stream_fn)(server_stream *st, void *arg);

typedef enum server_framing { SERVER_NDJSON, SERVER_SSE } server_framing;

/*
 * Runs fn(st, arg) on a worker thread and answers r from what it produces:
 *   stream: the response (200, content_type, chunked) starts with the first bytes fn writes;
 *   not stream: fn's bytes become one response when fn returns.
 * If fn calls server_stream_fail before anything went out, the answer is that error instead.
 * arg_free(arg) runs when fn has returned.  The connection's thread waits meanwhile and cancels
 * the stream when the client disconnects.
 */
enum MHD_Result server_stream_run(server_req *r, bool stream, const char *content_type,
                                  server_framing framing, server_stream_fn fn, void *arg,
                                  void (*arg_free)(void *));
/* Appends bytes for the client.  False once the client is gone (or the server is stopping):
 * the producer should stop. */
bool server_stream_write(server_stream *st, const char *data, size_t len);
/* Appends a JSON value as one NDJSON line or one SSE event ("data: ...\n\n").  Consumes j. */
bool server_stream_json(server_stream *st, json_t *j);
bool server_stream_cancelled(server_stream *st);
/* Reports an error: the whole answer when nothing was sent yet (status, body), else one more
 * line/event with body.  Consumes body. */
void server_stream_fail(server_stream *st, unsigned status, json_t *body);
/* Whether the request asked for streaming. */
bool server_stream_is_stream(const server_stream *st);

/* ---- generation (gen.c) ----------------------------------------------------------------------- */

typedef struct server_gen server_gen;

/* How one API formats a generation: pieces as they come, the end, and (non-stream) the body. */
typedef struct server_gen_fmt {
    /* A piece of thinking or answer text (stream mode only).  Return false to cancel. */
    bool (*piece)(server_gen *g, bool thinking, const char *text, size_t len);
    /* After a successful generation: the final chunk(s) (stream) or the whole body (not stream). */
    void (*done)(server_gen *g);
    server_framing framing;
    const char *content_type;
} server_gen_fmt;

struct server_gen {
    server *srv;
    const server_gen_fmt *fmt;
    sched_request req;
    json_t *hold;             /* JSON that req's strings point into (owned) */
    json_t *messages;         /* built messages (owned), or NULL */
    char *prompt_buf;         /* built prompt (owned), or NULL */
    char *system_buf;         /* built system prompt (owned), or NULL */
    char model[512];          /* as the client named it */
    bool openai;              /* errors in OpenAI's shape */
    bool stream;
    bool include_usage;       /* OpenAI stream_options.include_usage */
    bool started;             /* OpenAI: the first delta (with the role) went out */
    char id[40];              /* OpenAI: "chatcmpl-..." / "cmpl-..." */
    int64_t created_unix;
    server_buf content, thinking; /* accumulated (non-stream) */
    engine_stats st;
    uint64_t t_start;
    server_stream *out;
};

/* Allocates a job for r's route; the caller fills req and the rest. */
server_gen *server_gen_new(server_req *r, const server_gen_fmt *fmt);
void server_gen_free(void *g);
/* Runs the job on a worker thread and answers from it (consumes g).  The caller has checked the
 * model with server_gen_defaults. */
enum MHD_Result server_gen_run(server_req *r, server_gen *g);
/* Fills g->req.params with the model's defaults; replies (404/400...) and returns -1 on error. */
int server_gen_defaults(server_req *r, server_gen *g, enum MHD_Result *ret);
/* Prompt tokens of a finished generation (evaluated plus reused from the cache). */
int64_t server_gen_prompt_tokens(const server_gen *g);
/* Nanoseconds since the request arrived. */
uint64_t server_gen_total_ns(const server_gen *g);

/* ---- models (api_models.c) ------------------------------------------------------------------- */

/* Ollama's "details" object for a store model (from its config blob), new reference; never NULL. */
json_t *server_model_details(const store *s, const store_manifest *m);
/* Opens the server's store, replying 500 on failure. */
store *server_store(server_req *r, enum MHD_Result *ret);
/* Opens the store and lists its models (*e: n entries, freed by the caller, as the store); NULL
 * after replying 500 on failure. */
store *server_store_list(server_req *r, store_entry **e, size_t *n, enum MHD_Result *ret);

#endif
