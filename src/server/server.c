/*
 * server.c - the HTTP side of `seek serve`: binding the address, libmicrohttpd's access handler
 * (body collection with limits, routing, CORS and Host checks) and the reply helpers every API
 * file uses.
 *
 * Limits, so that no request can take the process down: bodies are capped at SERVER_MAX_BODY (413;
 * a declared Content-Length over it is refused before reading), headers at the connection memory
 * limit (libmicrohttpd answers 431), connections at max_connections, idle connections time out.
 * Blob uploads are the one unbounded body: they go to a temp file in the store while hashed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_impl.h"

#define SERVER_HEADER_MEMORY (64u << 10)

static const server_route routes[] = {
    { "/", false, false, false, { { "GET", server_api_root }, { "HEAD", server_api_root } } },
    { "/api/version", false, false, false, { { "GET", server_api_version }, { "HEAD", server_api_version } } },
    { "/api/generate", false, false, false, { { "POST", server_api_generate } } },
    { "/api/chat", false, false, false, { { "POST", server_api_chat } } },
    { "/api/embed", false, false, false, { { "POST", server_api_embed } } },
    { "/api/embeddings", false, false, false, { { "POST", server_api_embeddings } } },
    { "/api/tags", false, false, false, { { "GET", server_api_tags }, { "HEAD", server_api_tags } } },
    { "/api/ps", false, false, false, { { "GET", server_api_ps }, { "HEAD", server_api_ps } } },
    { "/api/show", false, false, false, { { "POST", server_api_show } } },
    { "/api/copy", false, false, false, { { "POST", server_api_copy } } },
    { "/api/delete", false, false, false, { { "DELETE", server_api_delete } } },
    { "/api/create", false, false, false, { { "POST", server_api_create } } },
    { "/api/pull", false, false, false, { { "POST", server_api_pull } } },
    { "/api/push", false, false, false, { { "POST", server_api_push } } },
    { "/api/blobs/", true, false, true, { { "HEAD", server_api_blob_head }, { "POST", server_api_blob_post } } },
    { "/v1/chat/completions", false, true, false, { { "POST", server_oai_chat } } },
    { "/v1/completions", false, true, false, { { "POST", server_oai_completions } } },
    { "/v1/embeddings", false, true, false, { { "POST", server_oai_embeddings } } },
    { "/v1/models", false, true, false, { { "GET", server_oai_models } } },
    { "/v1/models/", true, true, false, { { "GET", server_oai_model } } },
};

/* ---- addresses ------------------------------------------------------------------------------ */

int server_parse_host(const char *in, char *host, size_t cap, int *port, seek_err *err) {
    int def_port = 11434;
    while (*in == ' ' || *in == '\t') in++;
    const char *sep = strstr(in, "://");
    if (sep) {
        if (!strncasecmp(in, "http://", 7)) def_port = 80;
        else if (!strncasecmp(in, "https://", 8)) def_port = 443;
        else return err_set(err, SEEK_EINVAL, "unsupported scheme in '%s'", in);
        in = sep + 3;
    }
    size_t n = strcspn(in, "/ \t\r\n");
    char hp[400];
    if (n >= sizeof hp) return err_set(err, SEEK_EINVAL, "host too long");
    memcpy(hp, in, n);
    hp[n] = 0;
    const char *h = hp, *p = NULL;
    char *colon;
    if (hp[0] == '[') { /* [v6]:port */
        char *close = strchr(hp, ']');
        if (!close) return err_set(err, SEEK_EINVAL, "bad IPv6 address in '%s'", in);
        *close = 0;
        h = hp + 1;
        if (close[1] == ':') p = close + 2;
        else if (close[1]) return err_set(err, SEEK_EINVAL, "bad address '%s'", in);
    } else if ((colon = strrchr(hp, ':')) && strchr(hp, ':') == colon) {
        *colon = 0;
        p = colon + 1;
    }
    if (!*h) h = "127.0.0.1";
    if (strlen(h) >= cap) return err_set(err, SEEK_EINVAL, "host too long");
    strcpy(host, h);
    *port = def_port;
    if (p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (!*p || *end || v < 0 || v > 65535) return err_set(err, SEEK_EINVAL, "bad port '%s'", p);
        *port = (int)v;
    }
    return 0;
}

static int bind_listen(server *s, const char *host, int port, seek_err *err) {
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) return err_set(err, SEEK_EINVAL, "cannot resolve '%s': %s", host, gai_strerror(rc));
    int fd = -1, e = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) { e = errno; continue; }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1024) == 0) break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return err_set(err, SEEK_EIO, "listen on %s:%d: %s", host, port, strerror(e));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof ip);
        s->port = ntohs(a6->sin6_port);
        s->loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
        snprintf(s->addr, sizeof s->addr, "[%s]:%d", ip, s->port);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof ip);
        s->port = ntohs(a4->sin_port);
        s->loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
        snprintf(s->addr, sizeof s->addr, "%s:%d", ip, s->port);
    }
    s->listen_fd = fd;
    return 0;
}

/* ---- CORS and Host ---------------------------------------------------------------------------- */

/* Ollama's default allowed origins (envconfig.AllowedOrigins): local pages and app shells. */
static const char *const default_origins[] = {
    "http://localhost", "https://localhost", "http://localhost:*", "https://localhost:*",
    "http://127.0.0.1", "https://127.0.0.1", "http://127.0.0.1:*", "https://127.0.0.1:*",
    "http://0.0.0.0", "https://0.0.0.0", "http://0.0.0.0:*", "https://0.0.0.0:*",
    "app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*",
};

/* Glob with '*' matching any run of characters (gin-contrib/cors' wildcard origins). */
static bool glob_match(const char *pat, const char *s) {
    if (*pat == 0) return *s == 0;
    if (*pat == '*') {
        for (;; s++) {
            if (glob_match(pat + 1, s)) return true;
            if (!*s) return false;
        }
    }
    return tolower((unsigned char)*pat) == tolower((unsigned char)*s) && glob_match(pat + 1, s + 1);
}

static bool origin_allowed(const server *s, const char *origin) {
    if (strlen(origin) > 1024) return false;
    for (size_t i = 0; i < sizeof default_origins / sizeof default_origins[0]; i++)
        if (glob_match(default_origins[i], origin)) return true;
    for (int i = 0; i < s->n_origins; i++)
        if (glob_match(s->origins[i], origin)) return true;
    return false;
}

/* Ollama's allowedHostsMiddleware: on a loopback bind, a request whose Host names another machine
 * is refused, which defeats DNS rebinding (a web page on evil.com resolving to 127.0.0.1). */
static bool host_allowed(const char *host) {
    if (!host || !*host) return true;
    char h[300];
    size_t n = strlen(host);
    if (n >= sizeof h) return false;
    strcpy(h, host);
    if (h[0] == '[') { /* [::1]:port */
        char *close = strchr(h, ']');
        if (!close) return false;
        *close = 0;
        memmove(h, h + 1, strlen(h + 1) + 1);
    } else {
        char *colon = strrchr(h, ':');
        if (colon && strchr(h, ':') == colon) *colon = 0;
    }
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1) return true; /* Ollama allows any IP literal */
    if (inet_pton(AF_INET6, h, &a6) == 1) return true;
    if (!strcasecmp(h, "localhost")) return true;
    char me[256];
    if (gethostname(me, sizeof me) == 0 && !strcasecmp(h, me)) return true;
    static const char *const suffixes[] = { ".localhost", ".local", ".internal" };
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(suffixes[i]), hl = strlen(h);
        if (hl > k && !strcasecmp(h + hl - k, suffixes[i])) return true;
    }
    return false;
}

void server_add_cors(server_req *r, struct MHD_Response *resp) {
    if (!r->origin) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
    MHD_add_response_header(resp, "Vary", "Origin");
}

/* ---- replies ----------------------------------------------------------------------------------- */

unsigned server_status_of(const seek_err *err) {
    switch (err->code) {
    case SEEK_ENOTFOUND: return 404;
    case SEEK_EINVAL: case SEEK_EFORMAT: case SEEK_EUNSUP: return 400;
    case SEEK_EBUSY: return 503;
    default: return 500;
    }
}

enum MHD_Result server_reply(server_req *r, unsigned status, const char *content_type, const void *data,
                             size_t len) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    if (content_type) MHD_add_response_header(resp, "Content-Type", content_type);
    server_add_cors(r, resp);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->replied = true;
    return ret;
}

enum MHD_Result server_reply_json(server_req *r, unsigned status, json_t *j) {
    size_t len = 0;
    char *s = j ? server_dump(j, &len) : NULL;
    json_decref(j);
    if (!s) return server_reply(r, 500, "application/json; charset=utf-8", "{\"error\":\"out of memory\"}", 25);
    enum MHD_Result ret = server_reply(r, status, "application/json; charset=utf-8", s, len);
    free(s);
    return ret;
}

json_t *server_error_json(bool openai, unsigned status, const char *msg) {
    json_t *m = server_json_text(msg, strlen(msg));
    if (!openai) return json_pack("{s:o}", "error", m);
    /* Ollama's openai middleware: the type follows the status */
    const char *type = status == 400 ? "invalid_request_error" : status == 404 ? "not_found_error" : "api_error";
    return json_pack("{s:{s:o, s:s, s:n, s:n}}", "error", "message", m, "type", type, "param", "code");
}

enum MHD_Result server_reply_error(server_req *r, unsigned status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return server_reply_json(r, status, server_error_json(r->openai, status, msg));
}

bool server_client_gone(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return true;
    char c;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return false; /* a pipelined next request: still there */
    if (n == 0) return true;  /* orderly shutdown by the peer */
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

json_t *server_body_object(server_req *r, enum MHD_Result *ret) {
    if (r->len == 0) {
        *ret = server_reply_error(r, 400, "missing request body");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, 0, &je);
    if (!j) {
        *ret = server_reply_error(r, 400, "invalid JSON: %s (at byte %d)", je.text, je.position);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *ret = server_reply_error(r, 400, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---- the access handler ------------------------------------------------------------------------ */

static const server_route *find_route(const char *url, const char **arg) {
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const server_route *rt = &routes[i];
        size_t n = strlen(rt->path);
        if (rt->prefix ? (strncmp(url, rt->path, n) == 0 && url[n]) : strcmp(url, rt->path) == 0) {
            *arg = url + (rt->prefix ? n : strlen(url));
            return rt;
        }
    }
    return NULL;
}

static server_handler find_method(const server_route *rt, const char *method) {
    for (int i = 0; i < 3 && rt->methods[i].method; i++)
        if (!strcmp(rt->methods[i].method, method)) return rt->methods[i].fn;
    return NULL;
}

static enum MHD_Result reply_preflight(server_req *r) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    server_add_cors(r, resp);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, "
                            "X-Stainless-Lang, X-Stainless-Package-Version, X-Stainless-Os, "
                            "X-Stainless-Arch, X-Stainless-Retry-Count, X-Stainless-Runtime, "
                            "X-Stainless-Runtime-Version, X-Stainless-Async, X-Stainless-Helper-Method, "
                            "X-Stainless-Poll-Helper, X-Stainless-Custom-Poll-Interval, X-Stainless-Timeout, "
                            "OpenAI-Organization, OpenAI-Project");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "43200");
    enum MHD_Result ret = MHD_queue_response(r->conn, 204, resp);
    MHD_destroy_response(resp);
    r->replied = true;
    return ret;
}

/* The first call for a request: checks that can answer before any body is read. */
static enum MHD_Result on_headers(server_req *r) {
    server *s = r->srv;
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (origin) {
        if (!origin_allowed(s, origin)) return server_reply(r, 403, "text/plain", "", 0);
        r->origin = origin;
    }
    if (s->loopback && !host_allowed(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host")))
        return server_reply(r, 403, "text/plain", "", 0);
    if (!strcmp(r->method, "OPTIONS")) return reply_preflight(r);
    r->route = find_route(r->url, &r->arg);
    if (r->route) r->openai = r->route->openai;
    else r->openai = !strncmp(r->url, "/v1/", 4);
    if (!r->route) return server_reply_error(r, 404, "404 page not found");
    if (!find_method(r->route, r->method)) return server_reply_error(r, 405, "405 method not allowed");
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && !r->route->raw_body) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end || v > SERVER_MAX_BODY)
            return server_reply_error(r, 413, "request body too large (the limit is %u MiB)", SERVER_MAX_BODY >> 20);
    }
    if (r->route->raw_body && !strcmp(r->method, "POST")) {
        /* blob upload: a temp file in the store, hashed as it arrives */
        if (!store_digest_valid(r->arg)) return server_reply_error(r, 400, "invalid digest '%s'", r->arg);
        static atomic_uint uploads;
        char suffix[48];
        snprintf(suffix, sizeof suffix, ".upload-%u", atomic_fetch_add(&uploads, 1));
        seek_err err = { 0 };
        store *st = store_open(s->models, &err);
        int rc = st ? store_tmp_path(st, suffix, r->blob_tmp, sizeof r->blob_tmp, &err) : -1;
        store_close(st);
        if (rc) return server_reply_error(r, 500, "%s", err.msg);
        r->blob_fd = open(r->blob_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        r->blob_sha = EVP_MD_CTX_new();
        if (r->blob_fd < 0 || !r->blob_sha || !EVP_DigestInit_ex(r->blob_sha, EVP_sha256(), NULL))
            return server_reply_error(r, 500, "cannot create %s", r->blob_tmp);
    }
    return MHD_YES;
}

/* Body bytes: buffered (bounded) or, for blob uploads, written to the temp file. */
static void on_body(server_req *r, const char *data, size_t n) {
    if (r->blob_fd >= 0) {
        if (r->blob_failed) return;
        EVP_DigestUpdate(r->blob_sha, data, n);
        r->blob_size += n;
        while (n) {
            ssize_t w = write(r->blob_fd, data, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                r->blob_failed = true;
                return;
            }
            data += w, n -= (size_t)w;
        }
        return;
    }
    if (r->too_big || r->len + n > SERVER_MAX_BODY) {
        r->too_big = true;
        return;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1) cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p) {
            r->too_big = true;
            return;
        }
        r->body = p, r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls) {
    server *s = cls;
    server_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->srv = s, r->conn = conn, r->url = url, r->method = method, r->blob_fd = -1;
        r->t_start = time_now_ns();
        *con_cls = r;
        return on_headers(r);
    }
    if (r->replied) { /* answered from the headers alone: discard what the client still sends */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        on_body(r, upload_data, *upload_size);
        *upload_size = 0;
        /* a chunked body past the limit: no Content-Length to refuse up front, so drop the connection */
        return r->too_big ? MHD_NO : MHD_YES;
    }
    if (s->stopping) return server_reply_error(r, 503, "server is shutting down");
    return find_method(r->route, method)(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    server_req *r = *con_cls;
    if (!r) return;
    if (r->blob_fd >= 0) close(r->blob_fd);
    if (r->blob_tmp[0]) unlink(r->blob_tmp); /* adopted uploads were renamed away already */
    EVP_MD_CTX_free(r->blob_sha);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* libmicrohttpd's own diagnostics: only at -v, they are mostly about clients misbehaving. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    if (log_verbosity < 2) return;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    log_debug("http: %s", buf);
}

/* ---- start and stop ------------------------------------------------------------------------------ */

static void parse_origins(server *s, const char *list) {
    if (!list || !*list) return;
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    s->origins = calloc((size_t)n, sizeof *s->origins);
    if (!s->origins) return;
    const char *p = list;
    while (*p) {
        size_t k = strcspn(p, ",");
        const char *b = p, *e = p + k;
        while (b < e && (*b == ' ' || *b == '\t')) b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if (e > b && s->n_origins < n) s->origins[s->n_origins++] = strndup(b, (size_t)(e - b));
        p += k + (p[k] == ',');
    }
}

server *server_start(const server_opts *o, seek_err *err) {
    /* Request bodies of up to 32 MiB come and go on many threads; with glibc's sliding mmap
     * threshold they would end up in per-thread heaps that never shrink.  A fixed threshold keeps
     * big buffers in mmap, returned to the system when freed. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    server *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    s->listen_fd = -1;
    pthread_mutex_init(&s->store_mu, NULL);
    s->version = strdup(o->version ? o->version : "0.0.0");
    const char *models = o->models ? o->models : getenv("SEEK_MODELS");
    if (models && *models) s->models = strdup(models);
    parse_origins(s, o->origins ? o->origins : getenv("SEEK_ORIGINS"));
    const char *h = o->host ? o->host : getenv("SEEK_HOST");
    char host[300];
    int port;
    if (server_parse_host(h && *h ? h : "127.0.0.1:11434", host, sizeof host, &port, err) ||
        bind_listen(s, host, port, err))
        goto fail;
    s->sched = sched_new(&o->sched, err);
    if (!s->sched) goto fail;
    unsigned max_conn = o->max_connections > 0 ? (unsigned)o->max_connections : 1024;
    s->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                                  MHD_USE_ERROR_LOG,
                              0, NULL, NULL, on_request, s,
                              MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
                              MHD_OPTION_CONNECTION_LIMIT, max_conn,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVER_IDLE_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_HEADER_MEMORY,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                              MHD_OPTION_END);
    if (!s->mhd) {
        err_set(err, SEEK_EIO, "cannot start the HTTP server on %s", s->addr);
        goto fail;
    }
    return s;
fail:
    server_stop(s);
    return NULL;
}

const char *server_addr(const server *s) { return s->addr; }
int server_port(const server *s) { return s->port; }

void server_stop(server *s) {
    if (!s) return;
    s->stopping = true;
    /* workers see the flag through their streams' cancellation and finish their current step */
    for (int i = 0; i < 200 && atomic_load(&s->workers) > 0; i++) usleep(50000);
    if (s->mhd) MHD_stop_daemon(s->mhd);
    if (s->listen_fd >= 0 && !s->mhd) close(s->listen_fd);
    if (atomic_load(&s->workers) == 0) sched_free(s->sched); /* else leave it: a worker still uses it */
    for (int i = 0; i < s->n_origins; i++) free(s->origins[i]);
    free(s->origins);
    free(s->models);
    free(s->version);
    if (atomic_load(&s->workers) == 0) {
        pthread_mutex_destroy(&s->store_mu);
        free(s);
    }
}
