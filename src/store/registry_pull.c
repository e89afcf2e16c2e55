/*
 * registry_pull.c - `seek pull`: a model's manifest and missing blobs from an OCI distribution
 * v2 registry into the store, the way Ollama pulls from registry.ollama.ai.
 *
 * Order of work (and of the progress events):
 *   "pulling manifest"            GET /v2/<ns>/<model>/manifests/<tag>
 *   "pulling <12 hex>" per blob   every blob the store lacks, one after the other, each in
 *                                 parallel ranged parts (below); blobs present are reported done
 *   "verifying sha256 digest"     every downloaded blob's SHA-256 is compared with its name; only
 *                                 when all match are they renamed into blobs/
 *   "writing manifest", "success" the manifest last, so no manifest points at a missing blob
 *
 * One blob's download.  The blob is cut into chunks (at least 4 MB, about 8 per worker) and
 * n_parts worker threads take the lowest unfinished chunk each, so the chunks finish roughly in
 * order; each worker GETs its chunk with "Range: bytes=a-b" and pwrite()s it into a partial file.
 * A hasher thread follows the contiguous prefix that is on disk (reading it back from the page
 * cache) so hashing overlaps the download and at the end only the last few chunks are left to
 * hash.  The first request goes out alone: a 206 answer lets the other workers start, a 200 (the
 * server ignores Range) turns the download into one stream from byte 0.
 *
 * Resume.  The partial data lives in blobs/.seek-partial-sha256-<hex> (allocated to full size up
 * front, so a full disk is reported before anything is downloaded) and its progress in
 * blobs/.seek-partial-sha256-<hex>.state, a small text file rewritten (write + rename) twice a
 * second:
 *     seek-partial 1
 *     digest sha256:<hex>
 *     size <bytes>
 *     chunk <bytes>
 *     done <bytes present from the start of chunk 0> <... chunk 1> ...
 * The state only ever under-claims after a crash of seek (it lists bytes already written), so a
 * resumed pull fetches just the rest.  After a power loss it could claim bytes that never reached
 * the disk; the SHA-256 check then rejects the blob (deleted, the next pull starts it over).
 * store_clean_tmp leaves these names alone (they do not start with ".seek-tmp-"), and list and
 * lookup ignore dot files.  An flock on the partial file keeps two pulls of one blob apart.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "registry_impl.h"

#define MIN_CHUNK (4ull << 20)
#define MAX_CHUNK (256ull << 20)
#define MAX_BLOB (1ull << 44)   /* 16 TB: keeps the chunk count an int */
#define HASH_BUF (4u << 20)
#define STATE_SAVE_NS 500000000ull
#define PROGRESS_NS 100000000ull

enum { MODE_UNKNOWN, MODE_RANGES, MODE_SINGLE };

/* One blob being downloaded.  Fields under mu unless noted. */
typedef struct blob_dl {
    reg_client *c;               /* shared, not owned */
    char digest[STORE_DIGEST_LEN];
    uint64_t size;
    char url[2600];              /* GET target (read-only while workers run) */
    char data_path[STORE_PATH_MAX], state_path[STORE_PATH_MAX];
    int fd;                      /* the partial file, flock'ed; -1 when closed */
    uint64_t chunk;              /* chunk size */
    int n_chunks;
    uint64_t *done;              /* n_chunks: bytes present from each chunk's start */
    bool *busy;                  /* n_chunks: a worker is fetching the chunk */
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* mode decided, data written, a worker finished */
    int mode;
    bool first_exited;           /* the probing worker is gone (others stop waiting for mode) */
    int workers_left;
    bool failed;
    seek_err err;                /* the first fatal error */
    bool hash_reset;             /* data restarts from 0 (the server ignored Range) */
    uint64_t hashed;             /* bytes hashed so far (hasher thread) */
    bool hash_ok;                /* the hasher got to the end */
    char got[STORE_DIGEST_LEN];  /* the digest of the data, when hash_ok */
    uint64_t received;           /* bytes downloaded in this run */
    uint64_t start_done;         /* bytes present when this run started */
    double hash_cpu_s;           /* CPU time of the hasher thread */
} blob_dl;

static uint64_t chunk_len(const blob_dl *b, int k) {
    uint64_t start = (uint64_t)k * b->chunk;
    return b->size - start < b->chunk ? b->size - start : b->chunk;
}

/* Bytes present from offset 0 without a gap.  Under mu. */
static uint64_t frontier(const blob_dl *b) {
    uint64_t f = 0;
    for (int k = 0; k < b->n_chunks; k++) {
        f += b->done[k];
        if (b->done[k] < chunk_len(b, k)) break;
    }
    return f;
}

static uint64_t done_total(const blob_dl *b) {
    uint64_t t = 0;
    for (int k = 0; k < b->n_chunks; k++) t += b->done[k];
    return t;
}

/* Records the first fatal error and wakes everyone.  Under mu. */
static void fail_locked(blob_dl *b, const seek_err *e) {
    if (!b->failed) {
        b->err = *e;
        __atomic_store_n(&b->failed, true, __ATOMIC_RELAXED); /* part_alive reads it unlocked */
    }
    pthread_cond_broadcast(&b->cv);
}

/* ---- the state file -------------------------------------------------------------------------- */

/* Sets the chunk size and allocates the per-chunk arrays (zeroed). */
static int set_chunk(blob_dl *b, uint64_t chunk) {
    free(b->done);
    free(b->busy);
    b->chunk = chunk;
    b->n_chunks = (int)((b->size + chunk - 1) / chunk);
    b->done = calloc((size_t)b->n_chunks + 1, sizeof *b->done);
    b->busy = calloc((size_t)b->n_chunks + 1, sizeof *b->busy);
    return b->done && b->busy ? 0 : -1;
}

/* Loads the state if it describes this blob and the partial file has the right size (its chunk
 * size wins over ours, so a pull with another --parts still resumes); otherwise leaves done[] at
 * zero.  Before any thread runs.  -1 only when out of memory. */
static int state_load(blob_dl *b) {
    size_t len;
    char *text = fs_read_all(b->state_path, &len, NULL);
    struct stat st;
    if (!text || fstat(b->fd, &st) != 0 || (uint64_t)st.st_size != b->size) {
        free(text);
        return 0;
    }
    char digest[STORE_DIGEST_LEN + 8];
    unsigned long long size, chunk;
    int pos = 0;
    if (sscanf(text, "seek-partial 1 digest %79s size %llu chunk %llu done%n", digest, &size, &chunk, &pos) != 3 ||
        !pos || strcmp(digest, b->digest) != 0 || size != b->size || chunk < MIN_CHUNK || chunk > MAX_CHUNK) {
        free(text);
        return 0;
    }
    if (chunk != b->chunk && set_chunk(b, chunk) != 0) {
        free(text);
        return -1;
    }
    uint64_t *done = calloc((size_t)b->n_chunks, sizeof *done);
    const char *p = text + pos;
    bool ok = done != NULL;
    for (int k = 0; ok && k < b->n_chunks; k++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        ok = end != p && errno == 0 && v <= chunk_len(b, k);
        done[k] = v;
        p = end;
    }
    if (ok) memcpy(b->done, done, (size_t)b->n_chunks * sizeof *done);
    free(done);
    free(text);
    return 0;
}

/* Writes the state (write + rename, no fsync: see the file comment).  Main thread only, because
 * temp names come from the store's counter. */
static void state_save(store *s, blob_dl *b) {
    size_t cap = 256 + (size_t)b->n_chunks * 21;
    char *text = malloc(cap);
    if (!text) return;
    pthread_mutex_lock(&b->mu);
    int n = snprintf(text, cap, "seek-partial 1\ndigest %s\nsize %llu\nchunk %llu\ndone", b->digest,
                     (unsigned long long)b->size, (unsigned long long)b->chunk);
    for (int k = 0; k < b->n_chunks; k++)
        n += snprintf(text + n, cap - (size_t)n, " %llu", (unsigned long long)b->done[k]);
    pthread_mutex_unlock(&b->mu);
    n += snprintf(text + n, cap - (size_t)n, "\n");
    char dir[STORE_PATH_MAX], tmp[STORE_PATH_MAX];
    if (store_pathf(dir, sizeof dir, NULL, "%s/blobs", store_root(s)) == 0 &&
        store_tmp_in(s, dir, NULL, tmp, sizeof tmp, NULL) == 0) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        bool ok = fd >= 0 && write(fd, text, (size_t)n) == n;
        if (fd >= 0 && close(fd) != 0) ok = false;
        if (!ok || rename(tmp, b->state_path) != 0) unlink(tmp);
    }
    free(text);
}

/* ---- workers --------------------------------------------------------------------------------- */

/* Where one response's body goes. */
typedef struct part {
    blob_dl *b;
    reg_resp *resp;
    uint64_t want;       /* the first byte asked for */
    uint64_t end;        /* one past the last byte asked for */
    uint64_t off;        /* where the next byte goes */
    uint64_t got;        /* bytes received in this answer */
    bool started;
    seek_err err;        /* why the sink stopped */
    bool fatal;
} part;

/* Marks [from, to) as present (contiguous within each chunk it touches).  Under mu. */
static void mark_written(blob_dl *b, uint64_t from, uint64_t to) {
    for (uint64_t k = from / b->chunk; k < (uint64_t)b->n_chunks && k * b->chunk < to; k++) {
        uint64_t start = k * b->chunk, end = start + chunk_len(b, (int)k);
        uint64_t upto = to < end ? to : end;
        if (upto - start > b->done[k]) b->done[k] = upto - start;
    }
}

/* Checks the first bytes of an answer: a 206 must start where we asked, a 200 is the whole blob
 * (the server ignored Range). */
static bool part_start(part *p, long status) {
    blob_dl *b = p->b;
    p->started = true;
    pthread_mutex_lock(&b->mu);
    if (status == 206) {
        unsigned long long a = 0, e = 0;
        if (sscanf(p->resp->content_range, "bytes %llu-%llu", &a, &e) != 2 || a != p->want) {
            pthread_mutex_unlock(&b->mu);
            p->fatal = true;
            err_set(&p->err, SEEK_EIO, "the registry sent range '%s' for bytes %llu-",
                    p->resp->content_range, (unsigned long long)p->want);
            return false;
        }
        if (b->mode == MODE_UNKNOWN) b->mode = MODE_RANGES;
    } else if (b->mode == MODE_RANGES) {
        /* Other parts are in flight: a 200 is acceptable only where it is the same answer (the
         * whole blob was asked for). */
        if (p->want != 0 || p->end != b->size) {
            pthread_mutex_unlock(&b->mu);
            p->fatal = true;
            err_set(&p->err, SEEK_EIO, "the registry stopped honouring Range requests");
            return false;
        }
    } else {
        /* The first answer, or a retry of the single stream, ignored Range: start over from
         * byte 0 as one stream; what was there is rewritten and hashed again. */
        if (done_total(b) > 0) {
            memset(b->done, 0, (size_t)b->n_chunks * sizeof *b->done);
            b->hash_reset = true;
        }
        b->mode = MODE_SINGLE;
        p->off = 0;
        p->end = b->size;
    }
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return true;
}

static bool part_sink(void *ud, const char *data, size_t len, long status) {
    part *p = ud;
    blob_dl *b = p->b;
    if (!p->started && !part_start(p, status)) return false;
    if (p->off + len > p->end) {
        p->fatal = true;
        err_set(&p->err, SEEK_EIO, "the registry sent more than the %llu bytes asked for",
                (unsigned long long)(p->end - p->want));
        return false;
    }
    for (size_t w = 0; w < len;) {
        ssize_t n = pwrite(b->fd, data + w, len - w, (off_t)(p->off + w));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            p->fatal = true;
            if (errno == ENOSPC || errno == EDQUOT)
                err_set(&p->err, SEEK_EIO, "disk full writing %s", b->data_path);
            else
                err_set(&p->err, SEEK_EIO, "cannot write %s: %s", b->data_path, strerror(errno));
            return false;
        }
        w += (size_t)n;
    }
    pthread_mutex_lock(&b->mu);
    mark_written(b, p->off, p->off + len);
    b->received += len;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    p->off += len;
    p->got += len;
    return true;
}

/* curl progress of a part: stop as soon as another part failed (a full disk, a bad answer). */
static bool part_alive(void *ud, uint64_t down, uint64_t up) {
    part *p = ud;
    return !__atomic_load_n(&p->b->failed, __ATOMIC_RELAXED);
}

/* Fetches chunk k (or, in single-stream mode, the rest of the blob) until it is complete,
 * retrying transient failures.  0, or -1 with err. */
static int fetch(blob_dl *b, CURL *h, int k, seek_err *err) {
    int attempt = 0;
    for (;;) {
        uint64_t a, e;
        pthread_mutex_lock(&b->mu);
        bool single = b->mode == MODE_SINGLE;
        if (single) {
            a = frontier(b);
            e = b->size - 1;
        } else {
            a = (uint64_t)k * b->chunk + b->done[k];
            e = (uint64_t)k * b->chunk + chunk_len(b, k) - 1;
        }
        bool stop = b->failed;
        pthread_mutex_unlock(&b->mu);
        if (stop) return -1;
        if (a > e) return 0;
        if (atomic_load(&b->c->cancel)) return err_set(err, SEEK_EIO, "cancelled");

        char range[64];
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)a, (unsigned long long)e);
        reg_resp resp;
        memset(&resp, 0, sizeof resp);
        part p = { .b = b, .resp = &resp, .want = a, .end = e + 1, .off = a };
        reg_req q = { .method = "GET", .url = b->url, .range = range, .sink = part_sink, .sink_ud = &p,
                      .on_xfer = part_alive, .xfer_ud = &p, .follow = true, .progress_abort = true };
        int rc = reg_perform(b->c, h, &q, &resp, err);
        bool progressed = p.got > 0;
        if (progressed) attempt = 0;
        if (p.fatal) {
            *err = p.err;
            reg_resp_free(&resp);
            return -1;
        }
        if (atomic_load(&b->c->cancel)) {
            reg_resp_free(&resp);
            return err_set(err, SEEK_EIO, "cancelled");
        }
        bool ok_answer = rc == 0 && (resp.status == 200 || resp.status == 206);
        bool transient = reg_transient(&resp) || resp.cc == CURLE_COULDNT_RESOLVE_HOST;
        if (!ok_answer && !(transient && (rc == 0 || resp.cc != CURLE_OK))) {
            if (rc == 0) {
                char what[128];
                snprintf(what, sizeof what, "pulling %.19s", b->digest);
                reg_fail(&resp, err, what);
            }
            reg_resp_free(&resp);
            return -1;
        }
        reg_resp_free(&resp);
        /* Complete, or the server ended early: ask for the rest. */
        if (ok_answer && resp.cc == CURLE_OK && progressed) continue;
        if (++attempt >= REG_MAX_ATTEMPTS) {
            if (ok_answer && resp.cc == CURLE_OK)
                return err_set(err, SEEK_EIO, "pulling %s: the registry keeps sending empty answers", b->digest);
            if (rc == 0) return reg_fail(&resp, err, "pulling blob");
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return err_set(err, err->code, "pulling %.19s: %s (after %d attempts)", b->digest, msg, attempt);
        }
        log_info("pull: %s bytes %llu-: %s, retrying", b->digest, (unsigned long long)a,
                 rc ? err->msg : "server error");
        if (!reg_backoff(b->c, attempt - 1)) return err_set(err, SEEK_EIO, "cancelled");
    }
}

typedef struct worker {
    blob_dl *b;
    bool first;          /* sends the first request alone, to learn whether Range works */
    pthread_t th;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    blob_dl *b = w->b;
    CURL *h = curl_easy_init();
    seek_err err = { 0 };
    pthread_mutex_lock(&b->mu);
    if (!h) {
        err_set(&err, SEEK_ENOMEM, "out of memory");
        fail_locked(b, &err);
    }
    while (h && !b->failed) {
        while (!w->first && b->mode == MODE_UNKNOWN && !b->first_exited && !b->failed) pthread_cond_wait(&b->cv, &b->mu);
        if (b->failed || (!w->first && b->mode != MODE_RANGES)) break;
        int k = -1;
        if (b->mode != MODE_SINGLE)
            for (int i = 0; i < b->n_chunks && k < 0; i++)
                if (!b->busy[i] && b->done[i] < chunk_len(b, i)) k = i;
        if (k < 0 && (b->mode != MODE_SINGLE || frontier(b) == b->size)) break;
        if (k >= 0) b->busy[k] = true;
        pthread_mutex_unlock(&b->mu);
        int rc = fetch(b, h, k < 0 ? 0 : k, &err);
        pthread_mutex_lock(&b->mu);
        if (k >= 0) b->busy[k] = false;
        if (rc) fail_locked(b, &err);
    }
    if (w->first) b->first_exited = true;
    b->workers_left--;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (h) curl_easy_cleanup(h);
    return NULL;
}

/* ---- the hasher ------------------------------------------------------------------------------ */

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Hashes the contiguous prefix as it grows; ends when the workers are gone and the prefix stops
 * growing.  Sets hash_ok and got when it hashed the whole blob. */
static void *hasher_main(void *arg) {
    blob_dl *b = arg;
    double cpu0 = thread_cpu_s();
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = malloc(HASH_BUF);
    pthread_mutex_lock(&b->mu);
    if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        seek_err e;
        err_set(&e, SEEK_ENOMEM, "out of memory");
        fail_locked(b, &e);
    }
    b->hashed = 0;
    while (md && buf && !b->failed) {
        if (b->hash_reset) {
            b->hash_reset = false;
            b->hashed = 0;
            EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        }
        uint64_t f = frontier(b);
        if (f > b->hashed) {
            uint64_t from = b->hashed, n = f - from < HASH_BUF ? f - from : HASH_BUF;
            pthread_mutex_unlock(&b->mu);
            ssize_t got = pread(b->fd, buf, (size_t)n, (off_t)from);
            if (got > 0) EVP_DigestUpdate(md, buf, (size_t)got);
            pthread_mutex_lock(&b->mu);
            if (got <= 0) {
                seek_err e;
                err_set(&e, SEEK_EIO, "cannot read %s: %s", b->data_path, got < 0 ? strerror(errno) : "short file");
                fail_locked(b, &e);
                break;
            }
            if (!b->hash_reset) b->hashed += (uint64_t)got;
            continue;
        }
        if (b->workers_left == 0) break;
        pthread_cond_wait(&b->cv, &b->mu);
    }
    if (!b->failed && md && b->hashed == b->size) {
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_DigestFinal_ex(md, out, &n);
        static const char hex[] = "0123456789abcdef";
        memcpy(b->got, "sha256:", 7);
        for (int i = 0; i < 32; i++) {
            b->got[7 + 2 * i] = hex[out[i] >> 4];
            b->got[8 + 2 * i] = hex[out[i] & 15];
        }
        b->got[71] = 0;
        b->hash_ok = true;
    }
    b->hash_cpu_s = thread_cpu_s() - cpu0;
    pthread_mutex_unlock(&b->mu);
    EVP_MD_CTX_free(md);
    free(buf);
    return NULL;
}

/* ---- one blob ---------------------------------------------------------------------------------- */

typedef struct puller {
    store *s;
    reg_client c;
    const registry_opts *o;
    pthread_mutex_t progress_mu; /* the callback is serialized */
    bool cancelled;
} puller;

static bool report(puller *p, const char *status, const char *digest, uint64_t total, uint64_t completed) {
    if (!p->o || !p->o->progress) return true;
    registry_progress ev = { status, digest, total, completed };
    pthread_mutex_lock(&p->progress_mu);
    bool go = p->o->progress(p->o->ud, &ev);
    pthread_mutex_unlock(&p->progress_mu);
    if (!go) atomic_store(&p->c.cancel, 1);
    return go;
}

static void layer_status(const char *digest, char *buf, size_t cap) {
    snprintf(buf, cap, "pulling %.12s", digest + 7);
}

static void blob_close(blob_dl *b) {
    if (b->fd >= 0) close(b->fd);
    b->fd = -1;
    free(b->done);
    free(b->busy);
    b->done = NULL;
    b->busy = NULL;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

/* Opens and locks the partial file (waiting while another pull holds it).  *have is set when
 * the blob reached the store meanwhile. */
static int blob_lock(puller *p, blob_dl *b, bool *have, seek_err *err) {
    bool said = false;
    for (;;) {
        int fd = open(b->data_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return err_set(err, SEEK_EIO, "cannot create %s: %s", b->data_path, strerror(errno));
        while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK && errno != EINTR) {
                close(fd);
                return err_set(err, SEEK_EIO, "cannot lock %s: %s", b->data_path, strerror(errno));
            }
            if (!said) log_warn("waiting for another pull of %s", b->digest);
            said = true;
            if (atomic_load(&p->c.cancel)) {
                close(fd);
                return err_set(err, SEEK_EIO, "cancelled");
            }
            struct timespec ts = { 0, 100 * 1000000L };
            nanosleep(&ts, NULL);
        }
        /* The holder may have finished and renamed the file into the store: lock what the
         * path names now. */
        struct stat a, c;
        if (fstat(fd, &a) == 0 && stat(b->data_path, &c) == 0 && a.st_ino == c.st_ino && a.st_dev == c.st_dev) {
            b->fd = fd;
            break;
        }
        close(fd);
    }
    *have = store_blob_exists(p->s, b->digest, b->size);
    if (*have) {
        unlink(b->data_path);
        unlink(b->state_path);
    }
    return 0;
}

/* Prepares b for a download of digest/size: partial file locked, sized, state loaded. */
static int blob_open(puller *p, blob_dl *b, const store_layer *l, bool *have, seek_err *err) {
    memset(b, 0, sizeof *b);
    b->fd = -1;
    b->c = &p->c;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    snprintf(b->digest, sizeof b->digest, "%s", l->digest);
    b->size = l->size;
    const char *root = store_root(p->s);
    char dir[STORE_PATH_MAX];
    if (store_pathf(dir, sizeof dir, err, "%s/blobs", root) || store_mkdirs(dir, err) ||
        store_pathf(b->data_path, sizeof b->data_path, err, "%s/.seek-partial-sha256-%s", dir, b->digest + 7) ||
        store_pathf(b->state_path, sizeof b->state_path, err, "%s.state", b->data_path) ||
        reg_url(&p->c, b->url, sizeof b->url, "blobs", b->digest, err))
        return -1;
    int parts = p->o && p->o->n_parts > 0 ? p->o->n_parts : 8;
    uint64_t chunk = (b->size + (uint64_t)parts * 8 - 1) / ((uint64_t)parts * 8);
    chunk = (chunk + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
    if (set_chunk(b, chunk < MIN_CHUNK ? MIN_CHUNK : chunk > MAX_CHUNK ? MAX_CHUNK : chunk))
        return err_set(err, SEEK_ENOMEM, "out of memory");
    if (blob_lock(p, b, have, err)) return -1;
    if (*have) return 0;
    if (state_load(b)) return err_set(err, SEEK_ENOMEM, "out of memory");
    if (done_total(b) > 0) return 0;
    /* A fresh download: reserve the whole size now so a full disk shows before the transfer. */
    if (ftruncate(b->fd, 0) != 0) return err_set(err, SEEK_EIO, "cannot truncate %s: %s", b->data_path, strerror(errno));
    if (b->size && fallocate(b->fd, 0, 0, (off_t)b->size) != 0) {
        if (errno == ENOSPC || errno == EDQUOT) {
            char hs[32];
            if (b->size >= 1000000000ull) snprintf(hs, sizeof hs, "%.1f GB", (double)b->size / 1e9);
            else snprintf(hs, sizeof hs, "%.1f MB", (double)b->size / 1e6);
            unlink(b->data_path);
            return err_set(err, SEEK_EIO, "disk full: %s needs %s (%llu bytes) in %s", b->digest, hs,
                           (unsigned long long)b->size, dir);
        }
        if (ftruncate(b->fd, (off_t)b->size) != 0)
            return err_set(err, SEEK_EIO, "cannot size %s: %s", b->data_path, strerror(errno));
    }
    return 0;
}

/* Downloads b (already open) with n_parts workers and the hasher; reports progress. */
static int blob_download(puller *p, blob_dl *b, seek_err *err) {
    char status[40];
    layer_status(b->digest, status, sizeof status);
    int parts = p->o && p->o->n_parts > 0 ? p->o->n_parts : 8;
    pthread_mutex_lock(&b->mu);
    b->start_done = done_total(b);
    int todo = 0;
    for (int k = 0; k < b->n_chunks; k++) todo += b->done[k] < chunk_len(b, k);
    pthread_mutex_unlock(&b->mu);
    int n_workers = todo < parts ? todo : parts;
    if (n_workers < 1) n_workers = 1;
    worker *ws = calloc((size_t)n_workers, sizeof *ws);
    if (!ws) return err_set(err, SEEK_ENOMEM, "out of memory");
    uint64_t t0 = time_now_ns();
    pthread_t hasher;
    b->workers_left = n_workers;
    bool hasher_ok = pthread_create(&hasher, NULL, hasher_main, b) == 0;
    int started = 0;
    for (int i = 0; i < n_workers; i++) {
        ws[i].b = b;
        ws[i].first = i == 0;
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) break;
        started++;
    }
    pthread_mutex_lock(&b->mu);
    b->workers_left -= n_workers - started;
    if (!hasher_ok || started == 0) {
        seek_err e;
        err_set(&e, SEEK_ENOMEM, "cannot start threads");
        fail_locked(b, &e);
        if (started == 0) b->first_exited = true;
    }
    uint64_t last_save = time_now_ns(), last_report = 0, last_saved_done = b->start_done;
    while (b->workers_left > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)PROGRESS_NS;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&b->cv, &b->mu, &ts);
        uint64_t now = time_now_ns(), done = done_total(b);
        if (now - last_report >= PROGRESS_NS) {
            last_report = now;
            pthread_mutex_unlock(&b->mu);
            report(p, status, b->digest, b->size, done);
            if (now - last_save >= STATE_SAVE_NS && done != last_saved_done) {
                state_save(p->s, b);
                last_save = now;
                last_saved_done = done;
            }
            pthread_mutex_lock(&b->mu);
        }
    }
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < started; i++) pthread_join(ws[i].th, NULL);
    free(ws);
    uint64_t t_recv = time_now_ns();
    state_save(p->s, b);
    if (hasher_ok) pthread_join(hasher, NULL);
    double secs = (double)(t_recv - t0) * 1e-9, tail = (double)(time_now_ns() - t_recv) * 1e-9;
    log_info("pull: %s: %llu bytes in %.2f s (%.0f MB/s), %s; hashing %.2f s CPU, done %.2f s after the last byte",
             b->digest, (unsigned long long)b->received, secs, secs > 0 ? (double)b->received / 1e6 / secs : 0.0,
             b->mode == MODE_SINGLE ? "one stream" : "ranged parts", b->hash_cpu_s, tail);
    if (b->failed) {
        *err = b->err;
        return -1;
    }
    report(p, status, b->digest, b->size, done_total(b));
    if (!b->hash_ok) return err_set(err, SEEK_EIO, "pulling %s: download incomplete", b->digest);
    return 0;
}

/* ---- the manifest ------------------------------------------------------------------------------ */

static int parse_layer(json_t *j, store_layer *l, seek_err *err) {
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    const char *dg = json_string_value(json_object_get(j, "digest"));
    json_t *sz = json_object_get(j, "size");
    if (!mt || !dg || !json_is_integer(sz) || json_integer_value(sz) < 0)
        return err_set(err, SEEK_EFORMAT, "the registry's manifest has a layer without mediaType, digest or size");
    if (!store_digest_valid(dg)) return err_set(err, SEEK_EFORMAT, "the registry's manifest has a bad digest '%s'", dg);
    if ((uint64_t)json_integer_value(sz) > MAX_BLOB)
        return err_set(err, SEEK_EFORMAT, "the registry's manifest has a blob of %lld bytes", (long long)json_integer_value(sz));
    if (strlen(mt) >= sizeof l->media_type)
        return err_set(err, SEEK_EFORMAT, "the registry's manifest has a media type too long");
    snprintf(l->media_type, sizeof l->media_type, "%s", mt);
    snprintf(l->digest, sizeof l->digest, "%s", dg);
    l->size = (uint64_t)json_integer_value(sz);
    return 0;
}

static int fetch_manifest(puller *p, const store_name *n, store_manifest *m, seek_err *err) {
    char url[2600];
    if (reg_url(&p->c, url, sizeof url, "manifests", n->tag, err)) return -1;
    CURL *h = curl_easy_init();
    if (!h) return err_set(err, SEEK_ENOMEM, "out of memory");
    reg_resp r;
    memset(&r, 0, sizeof r);
    reg_req q = { .method = "GET", .url = url, .accept = STORE_MT_MANIFEST, .follow = true, .progress_abort = true };
    int rc = reg_request(&p->c, h, &q, &r, err);
    curl_easy_cleanup(h);
    if (rc) {
        err_prefix(err, "pull model manifest");
        reg_resp_free(&r);
        return -1;
    }
    if (r.status == 404) {
        reg_resp_free(&r);
        return err_set(err, SEEK_ENOTFOUND, "model '%s' not found: the registry %s has no %s/%s:%s", p->c.display,
                       n->host, n->ns, n->model, n->tag);
    }
    if (r.status != 200) {
        rc = reg_fail(&r, err, "pull model manifest");
        reg_resp_free(&r);
        return rc;
    }
    json_error_t je;
    json_t *j = json_loadb(r.body ? r.body : "", r.body_len, 0, &je);
    reg_resp_free(&r);
    json_t *layers = json_object_get(j, "layers");
    memset(m, 0, sizeof *m);
    if (!j || json_integer_value(json_object_get(j, "schemaVersion")) != 2 || !json_is_array(layers) ||
        !json_is_object(json_object_get(j, "config"))) {
        json_decref(j);
        return err_set(err, SEEK_EFORMAT, "pull model manifest: the registry sent no v2 image manifest%s%s",
                       j ? "" : ": ", j ? "" : je.text);
    }
    m->name = *n;
    size_t nl = json_array_size(layers);
    m->layers = calloc(nl ? nl : 1, sizeof *m->layers);
    rc = m->layers ? parse_layer(json_object_get(j, "config"), &m->config, err) : err_set(err, SEEK_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < nl; i++) {
        rc = parse_layer(json_array_get(layers, i), &m->layers[i], err);
        m->n_layers = (int)i + 1;
    }
    json_decref(j);
    if (rc) store_manifest_free(m);
    return rc;
}

/* ---- pull ---------------------------------------------------------------------------------------- */

/* Moves verified partial files into blobs/ under their digest (fsynced first). */
static int blob_install(puller *p, blob_dl *b, seek_err *err) {
    char path[STORE_PATH_MAX];
    if (store_blob_path(p->s, b->digest, path, sizeof path, err)) return -1;
    if (fsync(b->fd) != 0 && errno != EINVAL)
        return err_set(err, SEEK_EIO, "cannot sync %s: %s", b->data_path, strerror(errno));
    if (rename(b->data_path, path) != 0)
        return err_set(err, SEEK_EIO, "cannot rename %s to %s: %s", b->data_path, path, strerror(errno));
    unlink(b->state_path);
    return 0;
}

int registry_pull(store *s, const char *name, const registry_opts *opts, seek_err *err) {
    store_name n;
    if (store_name_parse(name, &n, err)) return -1;
    puller p;
    memset(&p, 0, sizeof p);
    p.s = s;
    p.o = opts;
    pthread_mutex_init(&p.progress_mu, NULL);
    char disp[600];
    store_name_display(&n, disp, sizeof disp);
    if (reg_client_init(&p.c, &n, disp, opts, err)) {
        pthread_mutex_destroy(&p.progress_mu);
        return -1;
    }
    store_manifest m;
    memset(&m, 0, sizeof m);
    blob_dl *dl = NULL;
    int n_dl = 0, rc = -1;
    if (!report(&p, "pulling manifest", NULL, 0, 0)) {
        err_set(err, SEEK_EIO, "cancelled");
        goto out;
    }
    if (fetch_manifest(&p, &n, &m, err)) goto out;

    /* Every distinct blob: the layers in manifest order, then the config (Ollama's order). */
    int n_all = m.n_layers + 1;
    const store_layer **all = calloc((size_t)n_all, sizeof *all);
    dl = calloc((size_t)n_all, sizeof *dl);
    if (!all || !dl) {
        free(all);
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto out;
    }
    int n_uniq = 0;
    for (int i = 0; i < n_all; i++) {
        const store_layer *l = i < m.n_layers ? &m.layers[i] : &m.config;
        bool dup = false;
        for (int j = 0; j < n_uniq; j++) dup |= !strcmp(all[j]->digest, l->digest);
        if (!dup) all[n_uniq++] = l;
    }
    /* One event per layer first, so a client draws every bar in manifest order. */
    for (int i = 0; i < n_uniq; i++) {
        char st[40];
        layer_status(all[i]->digest, st, sizeof st);
        bool have = store_blob_exists(s, all[i]->digest, all[i]->size);
        report(&p, st, all[i]->digest, all[i]->size, have ? all[i]->size : 0);
    }
    rc = 0;
    for (int i = 0; i < n_uniq && rc == 0; i++) {
        const store_layer *l = all[i];
        if (store_blob_exists(s, l->digest, l->size)) continue;
        bool have = false;
        blob_dl *b = &dl[n_dl++];
        rc = blob_open(&p, b, l, &have, err);
        if (rc == 0 && !have) rc = blob_download(&p, b, err);
        if (rc == 0 && have) {
            blob_close(b);
            n_dl--;
        }
    }
    free(all);
    if (rc) goto out;

    rc = -1;
    if (!report(&p, "verifying sha256 digest", NULL, 0, 0)) {
        err_set(err, SEEK_EIO, "cancelled");
        goto out;
    }
    for (int i = 0; i < n_dl; i++) {
        blob_dl *b = &dl[i];
        if (strcmp(b->got, b->digest) != 0) {
            unlink(b->data_path);
            unlink(b->state_path);
            err_set(err, SEEK_EFORMAT, "digest mismatch for %s: the download hashes to %s; the blob was deleted",
                    b->digest, b->got);
            goto out;
        }
    }
    for (int i = 0; i < n_dl; i++)
        if (blob_install(&p, &dl[i], err)) goto out;
    char dir[STORE_PATH_MAX];
    if (n_dl && store_pathf(dir, sizeof dir, NULL, "%s/blobs", store_root(s)) == 0) store_sync_dir(dir);

    if (!report(&p, "writing manifest", NULL, 0, 0)) {
        err_set(err, SEEK_EIO, "cancelled");
        goto out;
    }
    if (store_manifest_write(s, &n, &m, err)) goto out;
    report(&p, "success", NULL, 0, 0);
    rc = 0;
out:
    for (int i = 0; i < n_dl; i++) blob_close(&dl[i]);
    free(dl);
    store_manifest_free(&m);
    reg_client_deinit(&p.c);
    pthread_mutex_destroy(&p.progress_mu);
    return rc;
}
