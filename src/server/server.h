/*
 * server.h - `seek serve`: the HTTP API in front of the scheduler.
 *
 * Two dialects on one port:
 *   - Ollama's native API (/api/generate, /api/chat, /api/tags, /api/show, /api/create, ...), with
 *     the same fields, defaults, NDJSON streaming and error bodies {"error": "..."};
 *   - the OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models,
 *     /v1/embeddings), with SSE streaming and OpenAI's error shape.
 *
 * Threads: libmicrohttpd runs one thread per connection; a streamed answer is produced by a worker
 * thread (the scheduler's emit callback writes into a per-request buffer) and drained by the
 * connection's thread, which also watches the socket so that a client that goes away cancels its
 * generation within ~50 ms.
 *
 * What it is not: an authentication layer.  Like Ollama, it trusts whoever can reach the port and
 * only guards browsers (CORS origins) and DNS rebinding (Host header on a loopback bind).
 */
#ifndef SEEK_SERVER_H
#define SEEK_SERVER_H

#include <stdint.h>

#include "../base/base.h"
#include "../engine/sched.h"

typedef struct server_opts {
    const char *host;        /* "host:port", ":port", "http://host:port"; NULL: $SEEK_HOST or
                              * 127.0.0.1:11434.  Port 0 picks a free one (see server_port). */
    const char *models;      /* model store root; NULL: $SEEK_MODELS or ~/.seek/models */
    const char *origins;     /* extra allowed CORS origins, comma separated ("*" wildcards);
                              * NULL: $SEEK_ORIGINS */
    const char *version;     /* what /api/version reports */
    sched_opts sched;        /* passed to sched_new */
    int max_connections;     /* <= 0: 1024 */
} server_opts;

typedef struct server server;

/* Binds, starts the scheduler and the HTTP threads, and returns at once.  NULL with err on
 * failure (address in use, bad host).  Caller stops it with server_stop. */
server *server_start(const server_opts *opts, seek_err *err);

/* The bound address ("127.0.0.1:11434") and port; owned by the server. */
const char *server_addr(const server *s);
int server_port(const server *s);

/* Cancels running requests, waits (up to a few seconds) for them to end, closes the listener and
 * unloads every model.  NULL is allowed. */
void server_stop(server *s);

/* Parses a SEEK_HOST value into host and port: "1.2.3.4:80", ":8080" (127.0.0.1), "[::1]:80",
 * "http://host:port" or "https://host" (scheme dropped; default port 11434, or 80/443 when a
 * scheme is given without a port).  Returns 0, or -1 with err. */
int server_parse_host(const char *in, char *host, size_t cap, int *port, seek_err *err);

#endif
