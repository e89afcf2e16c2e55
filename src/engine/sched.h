/*
 * sched.h - the scheduler behind `seek serve`: which models are loaded, which requests run, and
 * how several sequences of one model decode together.
 *
 *  - Models load on first use and unload after their keep_alive (default 5 minutes; 0 unloads
 *    right after the request; negative keeps them forever).  Several models may stay loaded while
 *    their estimated memory (weights + KV cache + scratch) fits the limit; when a new one does not
 *    fit, idle models are evicted least recently used first.  A model that cannot fit even alone is
 *    refused with SEEK_ENOMEM and a message saying how much it needs.
 *  - Each loaded model has num_parallel slots (SEEK_NUM_PARALLEL, default 4).  Active sequences of
 *    one model are decoded together: one batched forward pass per step over all of them, each with
 *    its own positions in a shared KV cache (continuous batching: a sequence joins or leaves between
 *    steps).  Requests beyond the slots wait in a queue of at most max_queue; beyond that the
 *    request fails at once with SEEK_EBUSY (HTTP 503).
 *  - Cancellation: when a request's emit callback returns false (the client went away), its
 *    sequence stops at the next step and its slot is freed.
 *
 * Threads: sched_* functions are thread-safe.  sched_generate blocks its caller until the request
 * finishes; the emit callback is called on a scheduler thread, never concurrently for one request.
 */
#ifndef SEEK_SCHED_H
#define SEEK_SCHED_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

#define SEEK_EBUSY 100 /* seek_err code: queue full (HTTP 503) */

typedef struct sched sched;

typedef struct sched_opts {
    int num_parallel;          /* slots per model; <= 0: $SEEK_NUM_PARALLEL or 4 */
    int max_queue;             /* waiting requests before 503; <= 0: $SEEK_MAX_QUEUE or 512 */
    int64_t keep_alive_ns;     /* default keep_alive; 0 means the 5 minute default here */
    uint64_t mem_limit;        /* bytes models may use; 0: available RAM at start minus 1 GiB headroom */
    int n_threads;             /* compute threads per model; <= 0: all cores */
    int max_loaded;            /* models loaded at once; <= 0: $SEEK_MAX_LOADED_MODELS or 3 */
} sched_opts;

sched *sched_new(const sched_opts *opts, seek_err *err);
void sched_free(sched *s); /* unloads everything; no request may be running */

typedef struct sched_request {
    const char *model;        /* store name or .gguf path (resolved with store_resolve) */
    /* what to generate: either chat messages, or a prompt */
    const json_t *messages;   /* array of {role, content, [images ignored]} or NULL */
    const json_t *tools;      /* array or NULL */
    const char *prompt;       /* /api/generate prompt (NULL for chat) */
    const char *system;       /* overrides the model's SYSTEM (generate; chat uses messages) */
    const char *template_src; /* overrides the model's template, or NULL */
    bool raw;                 /* prompt is sent as is, no template */
    engine_params params;     /* start from sched_default_params(); think, budget, stop, sampling */
    bool params_set[32];      /* unused by the scheduler; space for the API layer */
    int32_t num_ctx;          /* context per sequence; <= 0: model default (4096 or less) */
    int64_t keep_alive_ns;    /* < 0 forever, 0 unload after, INT64_MIN: the default */
    engine_emit_fn emit;      /* streamed pieces; return false to cancel */
    void *ud;
} sched_request;

/* Parameters with the model's defaults applied: the store model's PARAMETER values (Modelfile) over
 * engine_default_params.  Loads the model's metadata (not its weights) if needed.  Returns 0, or -1
 * with err (SEEK_ENOTFOUND for an unknown model). */
int sched_default_params(sched *s, const char *model, engine_params *out, seek_err *err);

/* Runs one request to completion (queueing if all slots are busy).  Returns 0 with *st filled, or
 * -1 with err: SEEK_ENOTFOUND (unknown model: 404), SEEK_EINVAL (bad request, prompt too long:
 * 400), SEEK_EBUSY (queue full: 503), SEEK_ENOMEM (does not fit), others (500). */
int sched_generate(sched *s, const sched_request *req, engine_stats *st, seek_err *err);

/* Loads (keep_alive_ns as in sched_request) or, with keep_alive_ns == 0, unloads a model without
 * generating: Ollama's empty-prompt requests. */
int sched_load(sched *s, const char *model, int64_t keep_alive_ns, seek_err *err);
int sched_unload(sched *s, const char *model, seek_err *err);

/* Embeddings: for each input text, the mean over its tokens of the final hidden state (after the
 * output norm), L2-normalised.  out is a malloc'd n_inputs x *dim array (caller frees);
 * *n_tokens gets the total tokens evaluated.  truncate: cut inputs longer than num_ctx instead of
 * failing. */
int sched_embed(sched *s, const char *model, const char *const *inputs, int n_inputs, bool truncate,
                int32_t num_ctx, int64_t keep_alive_ns, float **out, int *dim, int64_t *n_tokens,
                seek_err *err);

/* What /api/ps shows. */
typedef struct sched_loaded {
    char name[256];        /* as requested ("deepseek-r1:1.5b" or a path) */
    char digest[80];       /* manifest digest, "" for a path */
    uint64_t size_bytes;   /* estimated memory: weights + KV + scratch */
    int64_t expires_unix_ns; /* when it unloads; INT64_MAX when never */
    int32_t num_ctx;
    int active;            /* sequences running now */
} sched_loaded;

/* Fills up to cap entries; returns how many models are loaded. */
int sched_ps(sched *s, sched_loaded *out, int cap);

/* Memory a model would use at num_ctx x num_parallel (weights + KV cache + scratch), as the
 * scheduler estimates it; also used by `seek fit`. */
uint64_t sched_estimate_bytes(const engine_model *em, int32_t num_ctx, int num_parallel);

#endif
