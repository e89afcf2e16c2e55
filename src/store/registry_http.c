/*
 * registry_http.c - the HTTP side of registry pulls and pushes: one libcurl exchange with the
 * registry (headers we care about, bodies to a sink or a small buffer, request bodies from memory
 * or a file range), bearer-token auth on a 401 challenge, retries with backoff for transient
 * failures, and turning a registry's error answer into a message.
 *
 * What it is not: it knows nothing about manifests or blobs (registry_pull.c, registry_push.c).
 *
 * Auth follows the distribution token spec as Ollama and docker do: a 401 carries
 *   WWW-Authenticate: Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull"
 * and GET realm?service=...&scope=... (with basic credentials when the caller has some) answers
 * {"token": "..."} or {"access_token": "..."}; the request is then repeated with
 * "Authorization: Bearer <token>".  The token is kept in the client for every later request.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "registry_impl.h"

/* Bodies kept in memory: manifests and error answers; anything bigger is not a manifest. */
#define BODY_CAP (8u << 20)

/* ---- client ---------------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int reg_client_init(reg_client *c, const store_name *n, const char *display, const registry_opts *o,
                    seek_err *err) {
    memset(c, 0, sizeof *c);
    pthread_once(&curl_once, curl_init_once);
    /* Like Ollama, --insecure means plain http; without it every registry is https. */
    bool http = o && o->insecure;
    if (store_pathf(c->base, sizeof c->base, err, "%s://%s", http ? "http" : "https", n->host) ||
        store_pathf(c->repo, sizeof c->repo, err, "%s/%s", n->ns, n->model))
        return -1;
    snprintf(c->display, sizeof c->display, "%s", display);
    c->insecure = http;
    c->username = o ? o->username : NULL;
    c->password = o ? o->password : NULL;
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->cancel, 0);
    return 0;
}

void reg_client_deinit(reg_client *c) {
    free(c->token);
    c->token = NULL;
    pthread_mutex_destroy(&c->mu);
}

int reg_url(const reg_client *c, char *buf, size_t cap, const char *kind, const char *ref, seek_err *err) {
    return store_pathf(buf, cap, err, "%s/v2/%s/%s/%s", c->base, c->repo, kind, ref);
}

void reg_resp_free(reg_resp *r) {
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

/* ---- one exchange ---------------------------------------------------------------------------- */

typedef struct xfer {
    const reg_req *q;
    reg_client *c;
    reg_resp *r;
    size_t body_cap;
    bool sink_failed;        /* the sink asked to stop (disk full, cancel, wrong range) */
    reg_body empty;          /* the body of a PUT without one */
} xfer;

/* Copies a header's value (trimmed) into dst when line is "name: value". */
static void header_value(const char *line, size_t len, const char *name, char *dst, size_t cap) {
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    size_t n = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

/* Every response (a redirect's or a 401's too) starts with its status line; the fields are
 * reset there so they describe the last response. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t len = size * nmemb;
    reg_resp *r = x->r;
    if (len > 5 && !strncmp(line, "HTTP/", 5)) {
        const char *sp = memchr(line, ' ', len);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        r->location[0] = r->www_auth[0] = r->content_range[0] = r->range[0] = 0;
        r->body_len = 0;
        return len;
    }
    header_value(line, len, "Location", r->location, sizeof r->location);
    header_value(line, len, "WWW-Authenticate", r->www_auth, sizeof r->www_auth);
    header_value(line, len, "Content-Range", r->content_range, sizeof r->content_range);
    header_value(line, len, "Range", r->range, sizeof r->range);
    return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t len = size * nmemb;
    reg_resp *r = x->r;
    bool ok2xx = r->status >= 200 && r->status < 300;
    if (ok2xx && x->q->sink) {
        if (!x->q->sink(x->q->sink_ud, data, len, r->status)) {
            x->sink_failed = true;
            return 0; /* CURLE_WRITE_ERROR */
        }
        return len;
    }
    if (r->body_len + len > BODY_CAP) return ok2xx ? 0 : len; /* error text beyond the cap is dropped */
    if (r->body_len + len + 1 > x->body_cap) {
        size_t cap = x->body_cap ? x->body_cap : 4096;
        while (cap < r->body_len + len + 1) cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb) return 0;
        r->body = nb;
        x->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = 0;
    return len;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud) {
    reg_body *b = ud;
    size_t want = size * nmemb;
    uint64_t left = b->len - b->sent;
    if (want > left) want = (size_t)left;
    if (want == 0) return 0;
    if (b->data) {
        memcpy(buf, b->data + b->sent, want);
    } else {
        ssize_t got;
        do got = pread(b->fd, buf, want, (off_t)(b->off + b->sent));
        while (got < 0 && errno == EINTR);
        if (got <= 0) return CURL_READFUNC_ABORT;
        want = (size_t)got;
    }
    b->sent += want;
    return want;
}

static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    xfer *x = ud;
    if (x->q->on_xfer && !x->q->on_xfer(x->q->xfer_ud, (uint64_t)dlnow, (uint64_t)ulnow)) return 1;
    return x->q->progress_abort && atomic_load(&x->c->cancel);
}

/* True if url is on the registry itself (scheme, host and port of c->base). */
static bool same_origin(const reg_client *c, const char *url) {
    size_t n = strlen(c->base);
    return !strncmp(url, c->base, n) && (url[n] == '/' || url[n] == '?' || url[n] == 0);
}

/* One exchange with the current token; *gen receives the token generation used. */
static CURLcode perform_once(reg_client *c, CURL *h, const reg_req *q, reg_resp *r, unsigned *gen) {
    curl_easy_reset(h);
    reg_resp_free(r);
    r->status = 0;
    r->location[0] = r->www_auth[0] = r->content_range[0] = r->range[0] = r->curl_err[0] = 0;
    xfer x = { .q = q, .c = c, .r = r };

    struct curl_slist *hl = NULL;
    char line[4096];
    pthread_mutex_lock(&c->mu);
    *gen = c->token_gen;
    if (c->token && same_origin(c, q->url)) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", c->token);
        hl = curl_slist_append(hl, line);
    }
    pthread_mutex_unlock(&c->mu);
    if (q->accept) snprintf(line, sizeof line, "Accept: %s", q->accept), hl = curl_slist_append(hl, line);
    if (q->content_type) snprintf(line, sizeof line, "Content-Type: %s", q->content_type), hl = curl_slist_append(hl, line);
    if (q->range) snprintf(line, sizeof line, "Range: %s", q->range), hl = curl_slist_append(hl, line);
    if (q->content_range) snprintf(line, sizeof line, "Content-Range: %s", q->content_range), hl = curl_slist_append(hl, line);
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip before bodies */

    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "seek/0.1 (ollama compatible)");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stall (under 1 KB/s for 30 s) ends the attempt; the caller retries from where it was. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
    if (q->follow) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    }
    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->username) curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
    if (c->password) curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);

    reg_body *b = q->body;
    if (b) b->sent = 0;
    if (!strcmp(q->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(q->method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        if (b) {
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, b);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
        } else {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        }
    } else if (!strcmp(q->method, "PUT") || !strcmp(q->method, "PATCH")) {
        reg_body *src = b ? b : &x.empty;
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, src);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)src->len);
        if (!strcmp(q->method, "PATCH")) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
    }

    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code) r->status = code;
    curl_slist_free_all(hl);
    r->cc = cc;
    return cc;
}

/* ---- bearer tokens --------------------------------------------------------------------------- */

/* The value of key in a challenge like `Bearer realm="x",service="y"` into out. */
static bool challenge_param(const char *ch, const char *key, char *out, size_t cap) {
    size_t kl = strlen(key);
    for (const char *p = ch; (p = strcasestr(p, key)) != NULL; p += kl) {
        bool at_start = p == ch || p[-1] == ' ' || p[-1] == ',';
        if (!at_start || p[kl] != '=') continue;
        const char *v = p + kl + 1;
        size_t n = 0;
        if (*v == '"') {
            v++;
            while (v[n] && v[n] != '"') n++;
        } else {
            while (v[n] && v[n] != ',' && v[n] != ' ') n++;
        }
        if (n >= cap) return false;
        memcpy(out, v, n);
        out[n] = 0;
        return true;
    }
    return false;
}

/* GET realm?service=&scope= and keep the token.  Called with c->mu held. */
static int fetch_token(reg_client *c, const char *challenge, seek_err *err) {
    char realm[1024], service[512] = "", scope[512] = "";
    if (!challenge_param(challenge, "realm", realm, sizeof realm) || !realm[0])
        return err_set(err, SEEK_EIO, "authentication: the registry's challenge has no realm");
    challenge_param(challenge, "service", service, sizeof service);
    challenge_param(challenge, "scope", scope, sizeof scope);
    CURL *h = curl_easy_init();
    if (!h) return err_set(err, SEEK_ENOMEM, "out of memory");
    char *es = curl_easy_escape(h, service, 0), *esc = curl_easy_escape(h, scope, 0);
    char url[4096];
    int rc = store_pathf(url, sizeof url, err, "%s%cservice=%s%s%s", realm, strchr(realm, '?') ? '&' : '?',
                         es ? es : "", scope[0] ? "&scope=" : "", scope[0] && esc ? esc : "");
    curl_free(es);
    curl_free(esc);
    if (rc) {
        curl_easy_cleanup(h);
        return -1;
    }
    /* The token endpoint is fetched without our (old) token: a plain client for it. */
    reg_client tc;
    memset(&tc, 0, sizeof tc);
    tc.insecure = c->insecure;
    tc.username = c->username;
    tc.password = c->password;
    atomic_init(&tc.cancel, 0);
    pthread_mutex_init(&tc.mu, NULL);
    reg_req q = { .method = "GET", .url = url, .follow = true };
    reg_resp r;
    memset(&r, 0, sizeof r);
    unsigned gen;
    CURLcode cc = perform_once(&tc, h, &q, &r, &gen);
    pthread_mutex_destroy(&tc.mu);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK) {
        rc = err_set(err, SEEK_EIO, "authentication: cannot reach %s: %s", realm, r.curl_err[0] ? r.curl_err : curl_easy_strerror(cc));
    } else if (r.status != 200) {
        rc = err_set(err, SEEK_EIO, "authentication failed: %s answered HTTP %ld", realm, r.status);
    } else {
        json_t *j = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok || !*tok) tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok || !*tok) {
            rc = err_set(err, SEEK_EIO, "authentication failed: %s sent no token", realm);
        } else {
            free(c->token);
            c->token = strdup(tok);
            c->token_gen++;
            rc = c->token ? 0 : err_set(err, SEEK_ENOMEM, "out of memory");
        }
        json_decref(j);
    }
    reg_resp_free(&r);
    return rc;
}

int reg_perform(reg_client *c, CURL *h, const reg_req *q, reg_resp *resp, seek_err *err) {
    for (int round = 0;; round++) {
        unsigned gen;
        CURLcode cc = perform_once(c, h, q, resp, &gen);
        if (cc == CURLE_ABORTED_BY_CALLBACK || (cc != CURLE_OK && atomic_load(&c->cancel)))
            return err_set(err, SEEK_EIO, "cancelled");
        if (cc != CURLE_OK && (cc != CURLE_WRITE_ERROR || resp->status == 0))
            return err_set(err, SEEK_EIO, "cannot reach %s: %s%s", c->base,
                           resp->curl_err[0] ? resp->curl_err : curl_easy_strerror(cc),
                           cc == CURLE_SSL_CONNECT_ERROR && !c->insecure
                               ? " (a plain http registry needs --insecure)" : "");
        if (cc != CURLE_OK) return 0; /* the sink stopped it; the caller knows why */
        bool bearer = !strncasecmp(resp->www_auth, "Bearer", 6);
        if (resp->status != 401 || !bearer || round > 0) return 0;
        /* One refresh for all threads: whoever locks first fetches, the others see a newer
         * generation and just repeat their request. */
        pthread_mutex_lock(&c->mu);
        int rc = c->token_gen == gen ? fetch_token(c, resp->www_auth, err) : 0;
        pthread_mutex_unlock(&c->mu);
        if (rc) return -1;
    }
}

bool reg_transient(const reg_resp *r) {
    switch (r->cc) {
    case CURLE_OK:
        return r->status == 408 || r->status == 429 || r->status >= 500;
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

bool reg_backoff(reg_client *c, int attempt) {
    uint64_t ms = 500ull << (attempt < 4 ? attempt : 4);
    for (uint64_t t = 0; t < ms; t += 50) {
        if (atomic_load(&c->cancel)) return false;
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return !atomic_load(&c->cancel);
}

int reg_request(reg_client *c, CURL *h, const reg_req *q, reg_resp *resp, seek_err *err) {
    for (int attempt = 0;; attempt++) {
        int rc = reg_perform(c, h, q, resp, err);
        if (atomic_load(&c->cancel)) return err_set(err, SEEK_EIO, "cancelled");
        bool again = (rc == 0 || resp->cc != CURLE_OK) && reg_transient(resp);
        if (!again || attempt + 1 >= REG_MAX_ATTEMPTS) {
            if (rc && again && err) {
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err->msg);
                err_set(err, err->code, "%s (after %d attempts)", msg, attempt + 1);
            }
            return rc;
        }
        log_info("registry: %s %s: %s, retrying", q->method, q->url,
                 rc ? err->msg : "server error");
        if (!reg_backoff(c, attempt)) return err_set(err, SEEK_EIO, "cancelled");
    }
}

/* ---- error answers --------------------------------------------------------------------------- */

int reg_fail(const reg_resp *r, seek_err *err, const char *what) {
    char msg[300] = "";
    json_t *j = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    const char *m = json_string_value(json_object_get(e0, "message"));
    const char *code = json_string_value(json_object_get(e0, "code"));
    if (m) snprintf(msg, sizeof msg, ": %s%s%s", code ? code : "", code ? ": " : "", m);
    json_decref(j);
    int kind = r->status == 404 ? SEEK_ENOTFOUND : SEEK_EIO;
    if (r->status == 401 || r->status == 403)
        return err_set(err, kind, "%s: unauthorized (HTTP %ld)%s", what, r->status, msg);
    if (r->status >= 500)
        return err_set(err, kind, "%s: the registry failed (HTTP %ld, after %d attempts)%s", what, r->status,
                       REG_MAX_ATTEMPTS, msg);
    return err_set(err, kind, "%s: the registry answered HTTP %ld%s", what, r->status, msg);
}
