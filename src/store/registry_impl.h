/*
 * registry_impl.h - what registry_http.c, registry_pull.c and registry_push.c share: a client
 * for one repository on one registry (base URL, bearer token) and a request function that does
 * one HTTP exchange with libcurl, answering a 401 bearer challenge on the way.  Not public API.
 *
 * Threads: a reg_client is shared by the pull's worker threads (the token is behind a mutex);
 * each thread brings its own CURL easy handle so connections are reused per thread.
 */
#ifndef SEEK_STORE_REGISTRY_IMPL_H
#define SEEK_STORE_REGISTRY_IMPL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "registry.h"
#include "store_impl.h"

/* Consecutive failed attempts (without progress) before a transfer gives up; the waits between
 * them grow 0.5 s, 1 s, 2 s, 4 s, 8 s. */
#define REG_MAX_ATTEMPTS 6

typedef struct reg_client {
    char base[400];          /* "https://host[:port]" */
    char repo[170];          /* "namespace/model" */
    char display[600];       /* the name as the user wrote it, for messages */
    bool insecure;
    const char *username, *password; /* basic credentials for the token endpoint, or NULL */
    pthread_mutex_t mu;      /* guards token and token_gen */
    char *token;             /* bearer token (owned) or NULL */
    unsigned token_gen;      /* bumped on every refresh, so parallel 401s fetch one token */
    atomic_int cancel;       /* set when the progress callback asked to stop */
} reg_client;

/* Fills c from a parsed name.  Plain http only with opts->insecure. */
int reg_client_init(reg_client *c, const store_name *n, const char *display, const registry_opts *o,
                    seek_err *err);
void reg_client_deinit(reg_client *c);

/* A request body: len bytes from memory (data) or from file fd at off (data NULL). */
typedef struct reg_body {
    const char *data;
    int fd;
    uint64_t off, len;
    uint64_t sent;           /* bytes read by curl so far (for push progress) */
} reg_body;

/* Receives response body bytes of a 2xx answer; returns false to abort the transfer. */
typedef bool (*reg_sink_fn)(void *ud, const char *data, size_t len, long status);

/* What came back.  Header values are the last response's (after redirects). */
typedef struct reg_resp {
    long status;             /* HTTP status, 0 when no answer arrived */
    CURLcode cc;             /* curl's result */
    char location[2048];
    char www_auth[1024];
    char content_range[128];
    char range[128];         /* "Range" of an upload status answer */
    char curl_err[CURL_ERROR_SIZE];
    char *body;              /* non-2xx bodies and 2xx bodies without a sink, capped (owned) */
    size_t body_len;
} reg_resp;

void reg_resp_free(reg_resp *r);

typedef struct reg_req {
    const char *method;      /* "GET", "HEAD", "POST", "PATCH", "PUT" */
    const char *url;         /* absolute */
    const char *accept;      /* Accept header or NULL */
    const char *content_type;
    const char *range;       /* "bytes=a-b" (GET) or NULL */
    const char *content_range; /* "a-b" (PATCH) or NULL */
    reg_body *body;          /* NULL: no body */
    reg_sink_fn sink;        /* NULL: collect the body into resp->body */
    void *sink_ud;
    bool (*on_xfer)(void *ud, uint64_t now_down, uint64_t now_up); /* progress; false aborts */
    void *xfer_ud;
    bool follow;             /* follow redirects (GETs of blobs: to blob storage) */
    bool progress_abort;     /* abort when c->cancel is set (long transfers) */
} reg_req;

/* Does one exchange on h (reset first).  On 401 with a Bearer challenge it fetches a token and
 * repeats the request once.  Returns 0 when an HTTP answer arrived (any status: look at
 * resp->status) and -1 with err for transport failures (resp->cc says which) and token errors.
 * The Authorization header goes only to the registry: it is added only to URLs under c->base, and
 * curl does not send a custom Authorization header to another host (or port or scheme) when it
 * follows a redirect (CURLOPT_UNRESTRICTED_AUTH is off). */
int reg_perform(reg_client *c, CURL *h, const reg_req *q, reg_resp *resp, seek_err *err);

/* True for answers and transport errors worth another attempt: 408, 429, 5xx, connection
 * failures, resets, timeouts and stalls.  Not a failed DNS lookup: before anything was fetched that
 * means no network or a mistyped host, and `seek run typo` should not wait 15 s to say so (blob
 * downloads, which follow a successful manifest fetch, do retry it). */
bool reg_transient(const reg_resp *resp);

/* A request with retries on transient failures (backoff as above); for small requests whose
 * body can be sent again.  Same return convention as reg_perform. */
int reg_request(reg_client *c, CURL *h, const reg_req *q, reg_resp *resp, seek_err *err);

/* Sets err from a failed answer: the registry's {"errors":[{"message":...}]} text when there
 * is one.  what names the step ("pulling manifest").  Returns -1. */
int reg_fail(const reg_resp *resp, seek_err *err, const char *what);

/* Sleeps the backoff for attempt (0-based) unless c->cancel is set; false if cancelled. */
bool reg_backoff(reg_client *c, int attempt);

/* "https://host/v2/<repo>/<kind>/<ref>" into buf. */
int reg_url(const reg_client *c, char *buf, size_t cap, const char *kind, const char *ref, seek_err *err);

#endif
