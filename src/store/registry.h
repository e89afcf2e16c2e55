/*
 * registry.h - pulling models from and pushing them to an OCI distribution v2 registry, the way
 * Ollama talks to registry.ollama.ai (and hf.co for `hf.co/<user>/<repo>[:quant]` names).
 *
 * Pull: GET /v2/<namespace>/<model>/manifests/<tag> (Accept: the docker v2 manifest type), then
 * every blob the store lacks: GET /v2/<namespace>/<model>/blobs/<digest>, in parallel ranged parts,
 * resumable (partial data survives an interrupted pull and a restart), retried with backoff on
 * stalls and 5xx, following redirects to blob storage, with bearer-token auth on 401
 * (WWW-Authenticate realm/service/scope); each blob is hashed while it downloads and enters the
 * store only if its SHA-256 matches; the manifest is written last.
 * Push: HEAD each blob (skip existing), POST /v2/.../blobs/uploads/, PATCH chunks, PUT ?digest=,
 * then PUT the manifest.
 *
 * Progress is reported through a callback with Ollama's status objects, so `seek pull` can draw
 * bars and /api/pull can stream them unchanged.
 */
#ifndef SEEK_STORE_REGISTRY_H
#define SEEK_STORE_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/base.h"
#include "store.h"

/* One progress event, shaped like Ollama's /api/pull and /api/push status objects
 * ({"status", "digest", "total", "completed"}; leave out digest/total/completed when digest is
 * NULL).  status is e.g. "pulling manifest", "pulling <12 hex>", "verifying sha256 digest",
 * "writing manifest", "success", "retrieving manifest", "pushing <12 hex>", "pushing manifest".
 * digest, total and completed are set for per-layer events (digest NULL and total 0 otherwise).
 * Order of a pull: "pulling manifest"; one "pulling <hex>" event per layer (layers in manifest
 * order, then the config; completed == total for blobs already present) so a client can lay out
 * its bars; then updates of the layer being downloaded about ten times a second; "verifying sha256
 * digest", "writing manifest", "success".  A push: "retrieving manifest", per blob "pushing <hex>"
 * events, "pushing manifest", "success".  The last event before a failure is not special: the
 * failure is the function's return value. */
typedef struct registry_progress {
    const char *status;
    const char *digest;  /* "sha256:<hex>" or NULL */
    uint64_t total;      /* bytes of the layer */
    uint64_t completed;  /* bytes present so far */
} registry_progress;

/* Return false to cancel the transfer (the pull/push then fails with "cancelled", keeping partial
 * data for a later resume).  Always called from the thread that called registry_pull/push (the
 * download threads never call it), so it may write to that thread's connection. */
typedef bool (*registry_progress_fn)(void *ud, const registry_progress *p);

typedef struct registry_opts {
    bool insecure;               /* allow http:// (and self-signed TLS) */
    int n_parts;                 /* parallel ranged parts per blob; <= 0: 8 */
    registry_progress_fn progress;
    void *ud;
    const char *username;        /* basic credentials for the token endpoint, or NULL */
    const char *password;
} registry_opts;

/* Pulls name into s.  The registry host comes from the name (default registry.ollama.ai, https;
 * a host with an explicit port on loopback may be plain http only with insecure).  Returns 0, or -1
 * with err: SEEK_ENOTFOUND "model 'x' not found in the registry" (404), SEEK_EIO for network
 * failures after retries, SEEK_EFORMAT for a digest mismatch ("digest mismatch for sha256:...:
 * the blob was deleted"), and the store's own errors (disk full).  The store is unchanged on
 * failure except for partial downloads kept for resume: blobs/.seek-partial-sha256-<hex> and its
 * ".state" file (registry_pull.c), which store_clean_tmp leaves alone.  Blobs enter blobs/ only
 * after every downloaded blob of the model matched its digest.  Two pulls of one blob (two
 * processes, or two /api/pull requests) are serialized by an flock on the partial file. */
int registry_pull(store *s, const char *name, const registry_opts *opts, seek_err *err);

/* Pushes a model from s to the registry its name points at (the local name must carry that
 * host, e.g. after `seek cp`).  Blobs the registry has (HEAD 200) are skipped; the manifest is
 * sent as the bytes on disk, so the registry's digest equals the local model ID.  Errors as for
 * registry_pull; SEEK_ENOTFOUND when the model is not in the store. */
int registry_push(store *s, const char *name, const registry_opts *opts, seek_err *err);

#endif
