/*
 * stream.c - answering a request from a worker thread's output: NDJSON / SSE streams and
 * long-running non-streamed jobs (generation, create, pull, push).
 *
 * Three parties share a server_stream, each holding a reference:
 *   - the worker thread runs the job; it (or the scheduler thread calling its emit callback)
 *     appends bytes with server_stream_write;
 *   - the connection's thread waits in server_stream_run until there is something to answer with
 *     (the first bytes when streaming, the end otherwise, or an error), then queues the response;
 *   - a streamed response's reader callback (also on the connection's thread) hands the buffered
 *     bytes to libmicrohttpd, blocking while the buffer is empty.
 * Why the status waits for the first bytes: errors that happen before any output (queue full,
 * prompt too long, model too big) still get their proper HTTP status, as in Ollama, where headers go
 * out with the first chunk.
 *
 * Cancellation: both waiting places peek at the socket every SERVER_POLL_MS; end-of-file or an
 * error marks the stream cancelled, the next write returns false, the emit callback returns false
 * and the scheduler drops the sequence.  libmicrohttpd destroying the response (write error,
 * timeout) does the same.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_impl.h"

struct server_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    server *srv;
    struct MHD_Connection *conn;
    server_buf buf;        /* bytes not yet handed to libmicrohttpd; off of them already were */
    size_t off;
    bool stream;
    server_framing framing;
    bool finished;         /* the worker returned */
    bool cancelled;        /* the client is gone, or the server is stopping */
    bool started;          /* the streamed response (status 200) was queued */
    unsigned fail_status;  /* an error to answer with instead (0: none) */
    char *fail_body;
    server_stream_fn fn;
    void *arg;
    void (*arg_free)(void *);
};

static void stream_release(server_stream *st) {
    pthread_mutex_lock(&st->mu);
    int left = --st->refs;
    pthread_mutex_unlock(&st->mu);
    if (left) return;
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    server_buf_free(&st->buf);
    free(st->fail_body);
    free(st);
}

static void *worker_main(void *p) {
    server_stream *st = p;
    server *srv = st->srv;
    st->fn(st, st->arg);
    if (st->arg_free) st->arg_free(st->arg);
    pthread_mutex_lock(&st->mu);
    st->finished = true;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    stream_release(st);
    atomic_fetch_sub(&srv->workers, 1);
    return NULL;
}

/* Waits on the condition for up to SERVER_POLL_MS, then checks the client and the server.  Called
 * with mu held, on the connection's thread. */
static void wait_a_little(server_stream *st) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += SERVER_POLL_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    if (pthread_cond_timedwait(&st->cv, &st->mu, &ts) == ETIMEDOUT) {
        if (atomic_load(&st->srv->stopping) || server_client_gone(st->conn)) st->cancelled = true;
    }
}

/* Back to the idle timeout once the job's waiting is over (it was lifted while the job ran). */
static void restore_timeout(server_stream *st) {
    MHD_set_connection_option(st->conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)SERVER_IDLE_TIMEOUT_S);
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max) {
    server_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    ssize_t ret;
    for (;;) {
        size_t avail = st->buf.len - st->off;
        if (avail) {
            size_t n = avail < max ? avail : max;
            memcpy(out, st->buf.p + st->off, n);
            st->off += n;
            if (st->off == st->buf.len) {
                st->off = st->buf.len = 0;
            } else if (st->off > (64u << 10) && st->off > st->buf.len / 2) {
                /* a producer that stays ahead: move the rest down so consumed bytes do not pile up */
                memmove(st->buf.p, st->buf.p + st->off, st->buf.len - st->off);
                st->buf.len -= st->off;
                st->off = 0;
            }
            ret = (ssize_t)n;
            break;
        }
        if (st->finished) {
            restore_timeout(st);
            ret = MHD_CONTENT_READER_END_OF_STREAM;
            break;
        }
        if (st->cancelled) {
            ret = MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        wait_a_little(st);
    }
    pthread_mutex_unlock(&st->mu);
    return ret;
}

/* The response is gone (sent, or the connection failed): whatever is still running is for nobody. */
static void reader_free(void *cls) {
    server_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    st->cancelled = true;
    pthread_mutex_unlock(&st->mu);
    stream_release(st);
}

enum MHD_Result server_stream_run(server_req *r, bool stream, const char *content_type,
                                  server_framing framing, server_stream_fn fn, void *arg,
                                  void (*arg_free)(void *)) {
    server_stream *st = calloc(1, sizeof *st);
    if (!st) {
        if (arg_free) arg_free(arg);
        return server_reply_error(r, 500, "out of memory");
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->refs = 2;
    st->srv = r->srv, st->conn = r->conn, st->stream = stream, st->framing = framing;
    st->fn = fn, st->arg = arg, st->arg_free = arg_free;
    /* generation can sit in a queue or a model load for longer than the idle timeout, and the
     * socket is watched here anyway */
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    atomic_fetch_add(&r->srv->workers, 1);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, worker_main, st);
    pthread_attr_destroy(&attr);
    if (rc) {
        atomic_fetch_sub(&r->srv->workers, 1);
        if (arg_free) arg_free(arg);
        st->refs = 1;
        stream_release(st);
        return server_reply_error(r, 503, "cannot start a worker thread");
    }

    pthread_mutex_lock(&st->mu);
    while (!st->cancelled && !st->finished && !st->fail_status && !(stream && st->buf.len))
        wait_a_little(st);
    enum MHD_Result ret;
    if (st->fail_status || !stream) restore_timeout(st);
    if (st->fail_status) {
        unsigned status = st->fail_status;
        char *body = st->fail_body;
        st->fail_body = NULL;
        pthread_mutex_unlock(&st->mu);
        ret = server_reply(r, status, "application/json; charset=utf-8", body ? body : "{}",
                           body ? strlen(body) : 2);
        free(body);
        stream_release(st);
        return ret;
    }
    if (st->cancelled && !st->finished) {
        pthread_mutex_unlock(&st->mu);
        stream_release(st);
        r->replied = true;
        return MHD_NO; /* the client left: close the connection */
    }
    if (!stream) {
        server_buf body = st->buf;
        memset(&st->buf, 0, sizeof st->buf);
        pthread_mutex_unlock(&st->mu);
        ret = server_reply(r, 200, content_type, body.p ? body.p : "", body.len);
        server_buf_free(&body);
        stream_release(st);
        return ret;
    }
    st->started = true;
    pthread_mutex_unlock(&st->mu);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, st, reader_free);
    if (!resp) {
        reader_free(st);
        r->replied = true;
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", content_type);
    if (framing == SERVER_SSE) MHD_add_response_header(resp, "Cache-Control", "no-cache");
    server_add_cors(r, resp);
    ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    r->replied = true;
    return ret;
}

bool server_stream_write(server_stream *st, const char *data, size_t len) {
    pthread_mutex_lock(&st->mu);
    bool ok = !st->cancelled && !atomic_load(&st->srv->stopping);
    if (ok && st->buf.len - st->off + len > SERVER_MAX_PENDING) {
        st->cancelled = true; /* a client this far behind is not reading */
        ok = false;
    }
    if (ok && server_buf_add(&st->buf, data, len)) ok = false;
    if (ok) pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return ok;
}

bool server_stream_json(server_stream *st, json_t *j) {
    size_t n = 0;
    char *s = j ? server_dump(j, &n) : NULL;
    json_decref(j);
    if (!s) return false;
    bool ok;
    if (st->framing == SERVER_SSE && st->stream) { /* a non-streamed answer is plain JSON */
        server_buf b = { 0 };
        ok = !server_buf_add(&b, "data: ", 6) && !server_buf_add(&b, s, n) && !server_buf_add(&b, "\n\n", 2) &&
             server_stream_write(st, b.p, b.len);
        server_buf_free(&b);
    } else {
        char *line = realloc(s, n + 2);
        if (!line) {
            free(s);
            return false;
        }
        s = line;
        s[n] = '\n', s[n + 1] = 0;
        ok = server_stream_write(st, s, n + 1);
    }
    free(s);
    return ok;
}

bool server_stream_cancelled(server_stream *st) {
    pthread_mutex_lock(&st->mu);
    bool c = st->cancelled || atomic_load(&st->srv->stopping);
    pthread_mutex_unlock(&st->mu);
    return c;
}

bool server_stream_is_stream(const server_stream *st) { return st->stream; }

void server_stream_fail(server_stream *st, unsigned status, json_t *body) {
    pthread_mutex_lock(&st->mu);
    bool inline_error = st->stream && (st->started || st->buf.len);
    if (!inline_error) {
        free(st->fail_body);
        st->fail_body = body ? server_dump(body, NULL) : NULL;
        st->fail_status = status;
        st->buf.len = st->off = 0;
        pthread_cond_broadcast(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
    if (inline_error) server_stream_json(st, body);
    else json_decref(body);
}
