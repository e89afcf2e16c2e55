/*
 * registry_push.c - `seek push`: a store model's blobs and manifest to an OCI distribution v2
 * registry, the way Ollama pushes to registry.ollama.ai.
 *
 * Progress events: "retrieving manifest"; per blob "pushing <12 hex>" with bytes sent; then
 * "pushing manifest", "success".  Per blob (layers in manifest order, then the config):
 *   HEAD /v2/<repo>/blobs/<digest>        200: the registry has it, nothing to send
 *   POST /v2/<repo>/blobs/uploads/        202, Location: the upload session
 *   PATCH <location>  Content-Range a-b   one 64 MB chunk at a time; each 202 gives the next
 *                                         Location
 *   PUT <location>?digest=<digest>        201: the registry checked the digest and has the blob
 * and at the end PUT /v2/<repo>/manifests/<tag> with the manifest file's bytes as they are on
 * disk, so the registry's manifest digest is the local model's ID.
 *
 * A transient failure (5xx, connection lost) in the middle of a blob starts that blob's upload
 * over with a new session, at most REG_MAX_ATTEMPTS times; the registry discards the old one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry_impl.h"

#define PUSH_CHUNK (64ull << 20)

typedef struct pusher {
    store *s;
    reg_client c;
    const registry_opts *o;
    CURL *h;
    /* the blob being sent, for progress */
    char status[40];
    const char *digest;
    uint64_t total, base;     /* base: bytes acknowledged before the current PATCH */
    uint64_t last_ns;
} pusher;

static bool report(pusher *p, const char *status, const char *digest, uint64_t total, uint64_t completed) {
    if (!p->o || !p->o->progress) return true;
    registry_progress ev = { status, digest, total, completed };
    if (p->o->progress(p->o->ud, &ev)) return true;
    atomic_store(&p->c.cancel, 1);
    return false;
}

/* curl progress during a PATCH: at most ten events a second. */
static bool on_xfer(void *ud, uint64_t down, uint64_t up) {
    pusher *p = ud;
    uint64_t now = time_now_ns();
    if (now - p->last_ns < 100000000ull) return true;
    p->last_ns = now;
    return report(p, p->status, p->digest, p->total, p->base + up);
}

/* An upload Location made absolute. */
static int absolute(const pusher *p, const char *loc, char *buf, size_t cap, seek_err *err) {
    if (!loc[0]) return err_set(err, SEEK_EIO, "the registry's upload answer has no Location");
    if (!strncmp(loc, "http://", 7) || !strncmp(loc, "https://", 8)) return store_pathf(buf, cap, err, "%s", loc);
    return store_pathf(buf, cap, err, "%s%s%s", p->c.base, loc[0] == '/' ? "" : "/", loc);
}

/* Status-checked request: 0 when the answer is `want`, else -1 with the registry's message.
 * *transient tells whether another attempt may help. */
static int expect(pusher *p, const reg_req *q, reg_resp *r, long want, const char *what, bool *transient,
                  seek_err *err) {
    int rc = reg_perform(&p->c, p->h, q, r, err);
    *transient = (rc == 0 || r->cc != CURLE_OK) && reg_transient(r) && !atomic_load(&p->c.cancel);
    if (rc) return -1;
    if (r->status != want) return reg_fail(r, err, what);
    return 0;
}

/* One upload session for the blob in fd (size bytes).  *transient as for expect. */
static int upload_once(pusher *p, const store_layer *l, int fd, bool *transient, seek_err *err) {
    char url[4096], loc[4096];
    reg_resp r;
    memset(&r, 0, sizeof r);
    if (reg_url(&p->c, url, sizeof url, "blobs", "uploads/", err)) return -1;
    reg_req q = { .method = "POST", .url = url, .progress_abort = true };
    if (expect(p, &q, &r, 202, "starting upload", transient, err) || absolute(p, r.location, loc, sizeof loc, err)) {
        reg_resp_free(&r);
        return -1;
    }
    p->base = 0;
    for (uint64_t off = 0; off < l->size;) {
        uint64_t n = l->size - off < PUSH_CHUNK ? l->size - off : PUSH_CHUNK;
        char cr[64];
        snprintf(cr, sizeof cr, "%llu-%llu", (unsigned long long)off, (unsigned long long)(off + n - 1));
        reg_body body = { .fd = fd, .off = off, .len = n };
        reg_req pq = { .method = "PATCH", .url = loc, .content_type = "application/octet-stream",
                       .content_range = cr, .body = &body, .on_xfer = on_xfer, .xfer_ud = p, .progress_abort = true };
        if (expect(p, &pq, &r, 202, "uploading", transient, err) || absolute(p, r.location, loc, sizeof loc, err)) {
            reg_resp_free(&r);
            return -1;
        }
        off += n;
        p->base = off;
        report(p, p->status, l->digest, l->size, off);
    }
    char *esc = curl_easy_escape(p->h, l->digest, 0);
    int rc = store_pathf(url, sizeof url, err, "%s%cdigest=%s", loc, strchr(loc, '?') ? '&' : '?', esc ? esc : "");
    curl_free(esc);
    reg_req fq = { .method = "PUT", .url = url, .progress_abort = true };
    if (rc == 0) rc = expect(p, &fq, &r, 201, "finishing upload", transient, err);
    reg_resp_free(&r);
    return rc;
}

static int push_blob(pusher *p, const store_layer *l, seek_err *err) {
    snprintf(p->status, sizeof p->status, "pushing %.12s", l->digest + 7);
    p->digest = l->digest;
    p->total = l->size;
    report(p, p->status, l->digest, l->size, 0);

    char url[2600];
    reg_resp r;
    memset(&r, 0, sizeof r);
    if (reg_url(&p->c, url, sizeof url, "blobs", l->digest, err)) return -1;
    reg_req hq = { .method = "HEAD", .url = url, .follow = true, .progress_abort = true };
    int rc = reg_request(&p->c, p->h, &hq, &r, err);
    long status = r.status;
    reg_resp_free(&r);
    if (rc) return -1;
    if (status == 200) {
        report(p, p->status, l->digest, l->size, l->size);
        return 0;
    }

    char path[STORE_PATH_MAX];
    if (store_blob_path(p->s, l->digest, path, sizeof path, err)) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size != l->size) {
        if (fd >= 0) close(fd);
        return err_set(err, SEEK_EIO, "blob %s is missing or has the wrong size", path);
    }
    for (int attempt = 0;; attempt++) {
        bool transient = false;
        rc = upload_once(p, l, fd, &transient, err);
        if (rc == 0 || !transient || attempt + 1 >= REG_MAX_ATTEMPTS) break;
        log_info("push: %s: %s, starting the upload over", l->digest, err->msg);
        if (!reg_backoff(&p->c, attempt)) {
            rc = err_set(err, SEEK_EIO, "cancelled");
            break;
        }
    }
    close(fd);
    if (rc == 0) report(p, p->status, l->digest, l->size, l->size);
    else err_prefix(err, "pushing %s", l->digest);
    return rc;
}

/* The manifest file's bytes (as `create` or `pull` wrote them). */
static char *manifest_bytes(pusher *p, const store_manifest *m, size_t *len, seek_err *err) {
    char path[STORE_PATH_MAX], dg[STORE_DIGEST_LEN];
    const store_name *n = &m->name;
    if (store_pathf(path, sizeof path, err, "%s/manifests/%s/%s/%s/%s", store_root(p->s), n->host, n->ns, n->model, n->tag))
        return NULL;
    char *text = fs_read_all(path, len, err);
    if (!text) return NULL;
    store_digest_mem(text, *len, dg);
    if (strcmp(dg, m->digest) != 0) {
        free(text);
        err_set(err, SEEK_EIO, "the manifest %s changed while pushing", path);
        return NULL;
    }
    return text;
}

int registry_push(store *s, const char *name, const registry_opts *opts, seek_err *err) {
    store_name n;
    if (store_name_parse(name, &n, err)) return -1;
    pusher p;
    memset(&p, 0, sizeof p);
    p.s = s;
    p.o = opts;
    char disp[600];
    store_name_display(&n, disp, sizeof disp);
    store_manifest m;
    if (store_manifest_read(s, &n, &m, err)) return -1;
    if (reg_client_init(&p.c, &n, disp, opts, err)) {
        store_manifest_free(&m);
        return -1;
    }
    p.h = curl_easy_init();
    char *text = NULL;
    size_t len = 0;
    int rc = -1;
    if (!p.h) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto out;
    }
    if (!report(&p, "retrieving manifest", NULL, 0, 0) || !(text = manifest_bytes(&p, &m, &len, err))) {
        if (!text && atomic_load(&p.c.cancel)) err_set(err, SEEK_EIO, "cancelled");
        goto out;
    }
    for (int i = 0; i <= m.n_layers; i++) {
        const store_layer *l = i < m.n_layers ? &m.layers[i] : &m.config;
        bool dup = false;
        for (int j = 0; j < i && j < m.n_layers; j++) dup |= !strcmp(m.layers[j].digest, l->digest);
        if (!dup && push_blob(&p, l, err)) goto out;
    }
    if (!report(&p, "pushing manifest", NULL, 0, 0)) {
        err_set(err, SEEK_EIO, "cancelled");
        goto out;
    }
    char url[2600];
    if (reg_url(&p.c, url, sizeof url, "manifests", n.tag, err)) goto out;
    reg_body body = { .data = text, .len = len };
    reg_req q = { .method = "PUT", .url = url, .content_type = STORE_MT_MANIFEST, .body = &body, .progress_abort = true };
    reg_resp r;
    memset(&r, 0, sizeof r);
    if (reg_request(&p.c, p.h, &q, &r, err) == 0) {
        if (r.status == 201 || r.status == 200) rc = 0;
        else reg_fail(&r, err, "pushing manifest");
    }
    reg_resp_free(&r);
    if (rc == 0) report(&p, "success", NULL, 0, 0);
out:
    free(text);
    if (p.h) curl_easy_cleanup(p.h);
    reg_client_deinit(&p.c);
    store_manifest_free(&m);
    return rc;
}
