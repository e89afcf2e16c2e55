/*
 * sched_impl.h - what sched.c (registry, loading, keep_alive, the public calls) and sched_batch.c
 * (a loaded model's worker thread: continuous batching) share.  Not a public API.
 *
 * Locking: one mutex per scheduler (*mu below) guards the registry, every entry's queue, slot
 * ownership (slot.job), counters and the job's `finished` flag.  A worker holds it only to take
 * jobs from its queue and to hand finished ones back; it evaluates, samples and calls emit
 * without it, so a slow client never blocks other models or new requests.  Everything else in a
 * slot belongs to the worker alone.
 */
#ifndef SEEK_SCHED_IMPL_H
#define SEEK_SCHED_IMPL_H

#include <pthread.h>

#include "engine_impl.h"
#include "sched.h"

#define SCHED_N_BATCH 512   /* tokens per forward pass: decode tokens + prompt chunks */
#define SCHED_MAX_PARALLEL 64
#define SCHED_MIN_CTX 16
#define SCHED_MAX_CTX (1 << 20)

typedef enum { SCHED_JOB_GENERATE, SCHED_JOB_EMBED } sched_job_kind;

/* One request on its way through a worker.  Lives in the requesting thread (sched_generate /
 * sched_embed), which waits on done_cv until `finished`; the worker never touches it after
 * setting `finished`. */
typedef struct sched_job {
    sched_job_kind kind;
    struct sched_job *next;      /* queue link */
    /* generate: the tokenized prompt, how to sample and where the text goes */
    const int32_t *ids;
    size_t n_ids;
    bool opens_think;
    const engine_params *p;
    engine_emit_fn emit;
    void *ud;
    engine_stats *st;            /* filled by the worker */
    /* embed: n_inputs tokenized inputs; out gets n_inputs rows of D floats */
    int32_t *const *in_ids;
    const size_t *in_n;
    int n_inputs;
    float *out;
    /* result */
    int rc;
    seek_err err;
    bool finished;               /* under *mu */
    pthread_cond_t done_cv;
} sched_job;

/* One sequence of a loaded model: a region of the shared KV cache and what runs in it. */
typedef struct sched_slot {
    sched_job *job;      /* NULL when free (under *mu) */
    int32_t *past;       /* (n_ctx) ids whose K/V the region holds, n_past of them */
    int32_t n_past;
    /* tokens to evaluate before the next sample: the prompt's uncached tail or a thinking-budget
     * bridge; todo[i_todo..n_todo) remain */
    int32_t *todo;
    size_t n_todo, i_todo;
    bool todo_owned;     /* todo is malloc'd (the bridge), else it points into job->ids */
    bool in_prompt;      /* todo is the prompt */
    int32_t next_tok;    /* sampled, to evaluate in the next pass */
    bool has_next;
    engine_gen g;
    bool gen_live;       /* g initialised */
    uint64_t t_admit;
} sched_slot;

/* A loaded model: the registry's entry and its worker. */
typedef struct sched_entry {
    struct sched_entry *next;      /* registry link */
    pthread_mutex_t *mu;           /* the scheduler's */
    char name[256];                /* as first requested */
    char digest[80];
    char *path;                    /* key: GGUF path ... */
    char *tmpl;                    /* ... template override (NULL: the model's own) ... */
    int32_t num_ctx;               /* ... and context per sequence */
    int32_t default_ctx;           /* what num_ctx <= 0 means for this model */
    engine_model *em;
    model_ctx *ctx;                /* n_par sequences of num_ctx */
    int n_par;
    sched_slot *slots;             /* n_par */
    float *logits;                 /* (n_par, V): one row per sequence that samples this pass */
    int32_t *b_tok, *b_pos, *b_seq;/* (SCHED_N_BATCH) the pass being built */
    bool *b_want;
    int *row_slot;                 /* (n_par) slot of each logits row */
    float *embd;                   /* (SCHED_N_BATCH, D) for embeddings, allocated on first use */
    uint64_t size_bytes;           /* sched_estimate_bytes */
    /* under *mu: */
    sched_job *q_head, *q_tail;
    int n_queued;
    int active;                    /* slots with a job */
    int refs;                      /* requests between acquire and release */
    bool stop;                     /* the worker exits once idle */
    int64_t keep_alive_ns;         /* from the latest request: < 0 forever, 0 unload when idle */
    uint64_t expires;              /* monotonic ns when idle; UINT64_MAX never */
    uint64_t last_used;
    pthread_cond_t wake;           /* work for the worker */
    pthread_t worker;
    bool worker_started;
} sched_entry;

/* The worker thread of an entry (sched_batch.c). */
void *sched_worker_main(void *arg);

/* Buffers the worker needs besides the model context; 0 or -1 with err (sched_batch.c). */
int sched_entry_alloc_slots(sched_entry *e, seek_err *err);
void sched_entry_free_slots(sched_entry *e);

#endif
