/*
 * sched.c - the scheduler's registry of loaded models and its public calls (see sched.h); the
 * per-model batching loop is in sched_batch.c.
 *
 * A request goes: resolve the name (store_resolve; cached per name and digest as a sched_meta,
 * which also owns the Modelfile's stop strings handed out by sched_default_params) -> acquire
 * the loaded model (loading it, after evicting idle ones, if needed) -> render and tokenize the
 * prompt in the requesting thread -> queue a job for the model's worker and wait -> release the
 * model (its keep_alive starts when the last request is done).
 *
 * Registry key: GGUF path + template override + context per sequence.  A request whose num_ctx
 * differs from the loaded instance's gets its own instance; idle instances of the same model are
 * evicted first when it loads.
 *
 * Memory: sched_estimate_bytes (below) per model; loads wait or evict until the sum fits
 * mem_limit and fewer than max_loaded models are loaded.  Loads are serialised by load_mu, so the
 * sum only grows in one place.  Unloading happens outside the mutex: an entry is unlinked first
 * (nobody can find it), then its worker is stopped and joined and everything is freed.
 *
 * keep_alive: a reaper thread sleeps until the next idle model's expiry and unloads it;
 * keep_alive 0 unloads in the releasing request's own thread, so the model is gone when
 * sched_generate returns.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../store/store.h"
#include "fit.h"
#include "sched_impl.h"

#define KEEP_ALIVE_DEFAULT_NS (5ll * 60 * 1000000000ll)
#define NEVER UINT64_MAX

/* What a model name resolved to, kept for the scheduler's lifetime (engine_params.stop of
 * sched_default_params point into it). */
typedef struct sched_meta {
    struct sched_meta *next;
    char *key;               /* the name as requested */
    store_model sm;
    const char *tmpl;        /* the Modelfile's template, or NULL: the GGUF's own */
    bool reasoning;          /* the template that applies opens a thought */
    char *stops[ENGINE_MAX_STOP];
    int n_stop;
    int32_t num_ctx;         /* PARAMETER num_ctx, 0 when unset */
} sched_meta;

struct sched {
    sched_opts o;
    uint64_t mem_limit;
    int n_threads;
    pthread_mutex_t mu;      /* registry, queues, counters (sched_impl.h) */
    pthread_mutex_t load_mu; /* one load at a time */
    pthread_cond_t idle_cv;  /* an entry became idle or was unloaded */
    pthread_cond_t reaper_cv;/* CLOCK_MONOTONIC */
    pthread_t reaper;
    bool reaper_started, quit;
    sched_entry *models;
    sched_meta *metas;
};

/* ---- options ------------------------------------------------------------------------------- */

static int env_int(const char *name, int dflt, int lo, int hi) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    errno = 0;
    long l = strtol(v, &end, 10);
    if (errno || *end || l < lo || l > hi) {
        log_warn("%s=%s is not a number in %d..%d; using %d", name, v, lo, hi, dflt);
        return dflt;
    }
    return (int)l;
}

static int n_cores(void) {
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    return nc > 0 ? (int)nc : 1;
}

static void *reaper_main(void *arg);

sched *sched_new(const sched_opts *opts, seek_err *err) {
    sched *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    if (opts) s->o = *opts;
    if (s->o.num_parallel <= 0) s->o.num_parallel = env_int("SEEK_NUM_PARALLEL", 4, 1, SCHED_MAX_PARALLEL);
    if (s->o.num_parallel > SCHED_MAX_PARALLEL) s->o.num_parallel = SCHED_MAX_PARALLEL;
    if (s->o.max_queue <= 0) s->o.max_queue = env_int("SEEK_MAX_QUEUE", 512, 1, 1 << 20);
    if (s->o.max_loaded <= 0) s->o.max_loaded = env_int("SEEK_MAX_LOADED_MODELS", 3, 1, 1024);
    if (s->o.keep_alive_ns == 0) s->o.keep_alive_ns = KEEP_ALIVE_DEFAULT_NS;
    s->n_threads = s->o.n_threads > 0 ? s->o.n_threads : n_cores();
    s->mem_limit = s->o.mem_limit;
    if (!s->mem_limit) {
        uint64_t avail = fit_available_memory(); /* MemAvailable, capped by $SEEK_MEM_LIMIT */
        s->mem_limit = avail == 0 ? UINT64_MAX : avail > (1ull << 30) ? avail - (1ull << 30) : avail / 2;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->load_mu, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    pthread_cond_init(&s->reaper_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        err_set(err, SEEK_ENOMEM, "cannot start the scheduler's thread");
        sched_free(s);
        return NULL;
    }
    s->reaper_started = true;
    return s;
}

/* ---- memory estimate ----------------------------------------------------------------------- */

/*
 * One formula for memory, shared with `seek fit` (fit_estimate_memory): resident weights + KV
 * cache of num_parallel sequences in the cache type + one pass's scratch + per sequence a logits
 * row, a sampler and its token ids + the vocabulary and process overhead.
 */
uint64_t sched_estimate_bytes(const engine_model *em, int32_t num_ctx, int num_parallel) {
    const model *m = em->m;
    if (num_ctx <= 0) num_ctx = m->hp.n_ctx_train > 0 && m->hp.n_ctx_train < 4096 ? (int32_t)m->hp.n_ctx_train : 4096;
    fit_shape s = fit_shape_of(m, "");
    return fit_estimate_memory(&s, fit_resident_bytes(m), num_ctx, num_parallel).total;
}

/* ---- names -> metadata -------------------------------------------------------------------- */

/* Sets one Modelfile PARAMETER on p (engine_set_param's names and bounds, shared with `seek run`);
 * values out of range and other names (num_ctx, num_thread, ...) are left to the scheduler or
 * ignored. */
static void apply_param(engine_params *p, const char *key, const json_t *v) {
    if (json_is_number(v)) (void)engine_set_param(p, key, json_number_value(v), NULL);
}

static sched_meta *meta_new(const char *key, store_model *sm, seek_err *err) {
    sched_meta *mt = calloc(1, sizeof *mt);
    if (!mt || !(mt->key = strdup(key))) {
        free(mt);
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    mt->sm = *sm;
    memset(sm, 0, sizeof *sm);
    mt->tmpl = mt->sm.template_go ? NULL : mt->sm.template_;
    /* whether the template that applies opens a thought: the Modelfile's, or the GGUF's own
     * (read from the file's metadata; the weights are not touched) */
    if (mt->tmpl) {
        mt->reasoning = strstr(mt->tmpl, "<think>") != NULL;
    } else {
        gguf_file *f = gguf_open(mt->sm.model_path, err);
        if (!f) {
            err_prefix(err, "%s", mt->sm.model_path);
            goto fail;
        }
        gguf_str t;
        if (gguf_get_str(f, "tokenizer.chat_template", &t, NULL) == 0)
            mt->reasoning = memmem(t.ptr, t.len, "<think>", 7) != NULL;
        gguf_close(f);
    }
    const json_t *stop = json_object_get(mt->sm.params, "stop");
    for (size_t i = 0; json_is_array(stop) && i < json_array_size(stop) && mt->n_stop < ENGINE_MAX_STOP; i++) {
        const char *t = json_string_value(json_array_get(stop, i));
        if (t && !(mt->stops[mt->n_stop++] = strdup(t))) {
            err_set(err, SEEK_ENOMEM, "out of memory");
            goto fail;
        }
    }
    const json_t *nc = json_object_get(mt->sm.params, "num_ctx");
    if (json_is_integer(nc) && json_integer_value(nc) >= SCHED_MIN_CTX && json_integer_value(nc) <= SCHED_MAX_CTX)
        mt->num_ctx = (int32_t)json_integer_value(nc);
    return mt;
fail:
    store_model_free(&mt->sm);
    for (int i = 0; i < mt->n_stop; i++) free(mt->stops[i]);
    free(mt->key);
    free(mt);
    return NULL;
}

static void meta_free(sched_meta *mt) {
    store_model_free(&mt->sm);
    for (int i = 0; i < mt->n_stop; i++) free(mt->stops[i]);
    free(mt->key);
    free(mt);
}

static bool str_eq(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/* Resolves a model name (every call: a re-created model is picked up) and returns its cached
 * metadata; NULL with err (SEEK_ENOTFOUND for an unknown name or a missing file). */
static sched_meta *meta_get(sched *s, const char *name, seek_err *err) {
    if (!name || !*name) {
        err_set(err, SEEK_EINVAL, "model is required");
        return NULL;
    }
    store_model sm;
    if (store_resolve(NULL, name, &sm, err) != 0) return NULL;
    if (access(sm.model_path, R_OK) != 0) {
        err_set(err, SEEK_ENOTFOUND, "model '%s' not found", name);
        store_model_free(&sm);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    for (sched_meta *mt = s->metas; mt; mt = mt->next)
        if (!strcmp(mt->key, name) && !strcmp(mt->sm.digest, sm.digest) && !strcmp(mt->sm.model_path, sm.model_path) &&
            str_eq(mt->sm.template_, sm.template_) && str_eq(mt->sm.system, sm.system) &&
            json_equal(mt->sm.params, sm.params)) {
            pthread_mutex_unlock(&s->mu);
            store_model_free(&sm);
            return mt;
        }
    pthread_mutex_unlock(&s->mu);
    sched_meta *mt = meta_new(name, &sm, err);
    store_model_free(&sm);
    if (!mt) return NULL;
    /* never replaced or freed before sched_free: requests may hold its stop strings */
    pthread_mutex_lock(&s->mu);
    mt->next = s->metas;
    s->metas = mt;
    pthread_mutex_unlock(&s->mu);
    return mt;
}

int sched_default_params(sched *s, const char *name, engine_params *out, seek_err *err) {
    sched_meta *mt = meta_get(s, name, err);
    if (!mt) return -1;
    engine_model shape = { .reasoning = mt->reasoning };
    *out = engine_default_params(&shape);
    const char *key;
    json_t *v;
    json_object_foreach(mt->sm.params, key, v) apply_param(out, key, v);
    for (int i = 0; i < mt->n_stop; i++) out->stop[i] = mt->stops[i];
    out->n_stop = mt->n_stop;
    return 0;
}

/* ---- loading and unloading ------------------------------------------------------------------ */

/* Stops an unlinked entry's worker and frees it (without the mutex). */
static void entry_free(sched *s, sched_entry *e) {
    if (!e) return;
    if (e->worker_started) {
        pthread_mutex_lock(&s->mu);
        e->stop = true;
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(e->worker, NULL);
    }
    if (e->worker_started) log_info("unloaded %s", e->name);
    sched_entry_free_slots(e);
    model_ctx_free(e->ctx);
    engine_free(e->em);
    pthread_cond_destroy(&e->wake);
    free(e->path);
    free(e->tmpl);
    free(e);
}

static void entry_unlink(sched *s, sched_entry *e) {
    for (sched_entry **pp = &s->models; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    e->next = NULL;
}

/* Loaded instance for (path, tmpl, num_ctx) with a reference taken, or NULL; under mu.
 * num_ctx <= 0 matches the instance with the model's default context. */
static sched_entry *entry_find(sched *s, const char *path, const char *tmpl, int32_t num_ctx) {
    for (sched_entry *e = s->models; e; e = e->next)
        if (!strcmp(e->path, path) && str_eq(e->tmpl, tmpl) && e->num_ctx == (num_ctx > 0 ? num_ctx : e->default_ctx)) {
            e->refs++;
            e->last_used = time_now_ns();
            return e;
        }
    return NULL;
}

static double gib(uint64_t b) { return (double)b / (double)(1ull << 30); }

/* Makes room for `need` more bytes (under mu, holding load_mu): evicts idle instances of the same
 * model first, then idle models least recently used first, waiting for busy ones to go idle. */
static void make_room(sched *s, const char *path, uint64_t need) {
    for (;;) {
        uint64_t used = 0;
        int n = 0;
        sched_entry *victim = NULL;
        for (sched_entry *e = s->models; e; e = e->next) {
            used += e->size_bytes;
            n++;
            if (e->refs) continue;
            /* an idle instance of this model (another num_ctx) goes first, then the least recently used */
            bool e_same = !strcmp(e->path, path), v_same = victim && !strcmp(victim->path, path);
            if (!victim || (e_same && !v_same) || (e_same == v_same && e->last_used < victim->last_used)) victim = e;
        }
        bool stale = victim && !strcmp(victim->path, path);
        if (!stale && used + need <= s->mem_limit && n < s->o.max_loaded) return;
        if (n == 0) return;
        if (!victim) {
            pthread_cond_wait(&s->idle_cv, &s->mu);
            continue;
        }
        entry_unlink(s, victim);
        pthread_mutex_unlock(&s->mu);
        entry_free(s, victim);
        pthread_mutex_lock(&s->mu);
    }
}

/* The loaded instance of a model with a reference taken, loading it if needed.  *loaded_ns gets
 * the load time when this call loaded it (else 0). */
static sched_entry *acquire(sched *s, const sched_meta *mt, const char *tmpl, int32_t num_ctx, uint64_t *loaded_ns,
                            seek_err *err) {
    const char *path = mt->sm.model_path;
    *loaded_ns = 0;
    if (num_ctx > 0 && (num_ctx < SCHED_MIN_CTX || num_ctx > SCHED_MAX_CTX)) {
        err_set(err, SEEK_EINVAL, "num_ctx %d is out of range (%d..%d)", num_ctx, SCHED_MIN_CTX, SCHED_MAX_CTX);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    sched_entry *e = entry_find(s, path, tmpl, num_ctx);
    pthread_mutex_unlock(&s->mu);
    if (e) return e;

    pthread_mutex_lock(&s->load_mu);
    pthread_mutex_lock(&s->mu);
    e = entry_find(s, path, tmpl, num_ctx); /* loaded while this thread waited */
    pthread_mutex_unlock(&s->mu);
    if (e) {
        pthread_mutex_unlock(&s->load_mu);
        return e;
    }
    uint64_t t0 = time_now_ns();
    engine_model *em = engine_load(path, err);
    if (!em) goto fail;
    if (tmpl && engine_set_template(em, tmpl, err) != 0) goto fail;
    const model_hparams *hp = &em->m->hp;
    int32_t dflt = hp->n_ctx_train > 0 && hp->n_ctx_train < 4096 ? (int32_t)hp->n_ctx_train : 4096;
    if (dflt < SCHED_MIN_CTX) dflt = SCHED_MIN_CTX;
    int32_t ctx = num_ctx > 0 ? num_ctx : dflt;
    uint64_t need = sched_estimate_bytes(em, ctx, s->o.num_parallel);
    if (need > s->mem_limit) {
        char alt[160];
        fit_suggest(s->mem_limit, ctx, alt, sizeof alt);
        err_set(err, SEEK_ENOMEM,
                "model '%s' needs %.2f GiB (weights %.2f GiB + KV cache and scratch for %d x %d tokens) but only "
                "%.2f GiB may be used; lower num_ctx or SEEK_NUM_PARALLEL, or use a smaller model%s%s",
                mt->key, gib(need), gib(em->m->weight_bytes), s->o.num_parallel, ctx, gib(s->mem_limit),
                alt[0] ? " such as " : "", alt);
        goto fail;
    }
    pthread_mutex_lock(&s->mu);
    make_room(s, path, need);
    pthread_mutex_unlock(&s->mu);

    e = calloc(1, sizeof *e);
    if (!e) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto fail;
    }
    e->mu = &s->mu;
    pthread_cond_init(&e->wake, NULL);
    e->em = em;
    em = NULL;
    snprintf(e->name, sizeof e->name, "%s", mt->key);
    snprintf(e->digest, sizeof e->digest, "%s", mt->sm.digest);
    e->path = strdup(path);
    e->tmpl = tmpl ? strdup(tmpl) : NULL;
    e->num_ctx = ctx;
    e->default_ctx = dflt;
    e->n_par = s->o.num_parallel;
    e->size_bytes = need;
    e->keep_alive_ns = s->o.keep_alive_ns;
    e->expires = NEVER;
    if (!e->path || (tmpl && !e->tmpl)) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto fail;
    }
    e->ctx = model_ctx_new_multi(e->em->m, ctx, e->n_par, SCHED_N_BATCH, s->n_threads, err);
    if (!e->ctx || sched_entry_alloc_slots(e, err) != 0) goto fail;
    if (pthread_create(&e->worker, NULL, sched_worker_main, e) != 0) {
        err_set(err, SEEK_ENOMEM, "cannot start a worker thread");
        goto fail;
    }
    e->worker_started = true;
    *loaded_ns = time_now_ns() - t0;
    log_info("loaded %s (%.2f GiB estimated, %d x %d tokens) in %.2f s", e->name, gib(need), e->n_par, ctx,
             (double)*loaded_ns / 1e9);
    pthread_mutex_lock(&s->mu);
    e->refs = 1;
    e->last_used = time_now_ns();
    e->next = s->models;
    s->models = e;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->load_mu);
    return e;
fail:
    engine_free(em);
    entry_free(s, e);
    pthread_mutex_unlock(&s->load_mu);
    if (err && err->code == SEEK_EIO && access(path, R_OK) != 0) err->code = SEEK_ENOTFOUND;
    return NULL;
}

/* Drops a request's reference; the keep_alive of the latest request applies. */
static void release(sched *s, sched_entry *e, int64_t keep_alive_ns) {
    if (keep_alive_ns == INT64_MIN) keep_alive_ns = s->o.keep_alive_ns;
    sched_entry *gone = NULL;
    pthread_mutex_lock(&s->mu);
    e->refs--;
    e->keep_alive_ns = keep_alive_ns;
    uint64_t now = time_now_ns();
    e->last_used = now;
    if (e->refs == 0) {
        if (keep_alive_ns == 0) {
            entry_unlink(s, e);
            gone = e;
        } else {
            e->expires = keep_alive_ns < 0 ? NEVER : now + (uint64_t)keep_alive_ns;
            pthread_cond_signal(&s->reaper_cv);
        }
        pthread_cond_broadcast(&s->idle_cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (gone) {
        entry_free(s, gone);
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->idle_cv);
        pthread_mutex_unlock(&s->mu);
    }
}

static void *reaper_main(void *arg) {
    sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->quit) {
        uint64_t now = time_now_ns(), next = NEVER;
        sched_entry *expired = NULL;
        for (sched_entry *e = s->models; e; e = e->next) {
            if (e->refs || e->expires == NEVER) continue;
            if (e->expires <= now) {
                expired = e;
                break;
            }
            if (e->expires < next) next = e->expires;
        }
        if (expired) {
            entry_unlink(s, expired);
            pthread_mutex_unlock(&s->mu);
            entry_free(s, expired);
            pthread_mutex_lock(&s->mu);
            pthread_cond_broadcast(&s->idle_cv);
            continue;
        }
        if (next == NEVER) {
            pthread_cond_wait(&s->reaper_cv, &s->mu);
        } else {
            struct timespec ts = { .tv_sec = (time_t)(next / 1000000000ull), .tv_nsec = (long)(next % 1000000000ull) };
            pthread_cond_timedwait(&s->reaper_cv, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void sched_free(sched *s) {
    if (!s) return;
    if (s->reaper_started) {
        pthread_mutex_lock(&s->mu);
        s->quit = true;
        pthread_cond_signal(&s->reaper_cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->reaper, NULL);
    }
    while (s->models) {
        sched_entry *e = s->models;
        s->models = e->next;
        entry_free(s, e);
    }
    while (s->metas) {
        sched_meta *mt = s->metas;
        s->metas = mt->next;
        meta_free(mt);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->load_mu);
    pthread_cond_destroy(&s->idle_cv);
    pthread_cond_destroy(&s->reaper_cv);
    free(s);
}

/* ---- running a job -------------------------------------------------------------------------- */

/* Queues a job on e and waits for the worker to finish it.  SEEK_EBUSY when the model already
 * has num_parallel running and max_queue waiting. */
static int run_job(sched *s, sched_entry *e, sched_job *job, seek_err *err) {
    pthread_cond_init(&job->done_cv, NULL);
    pthread_mutex_lock(&s->mu);
    if (e->n_queued + e->active >= e->n_par + s->o.max_queue) {
        int q = e->n_queued;
        pthread_mutex_unlock(&s->mu);
        pthread_cond_destroy(&job->done_cv);
        return err_set(err, SEEK_EBUSY, "server busy: %d requests are waiting for '%s'; try again later", q, e->name);
    }
    job->next = NULL;
    if (e->q_tail) e->q_tail->next = job;
    else e->q_head = job;
    e->q_tail = job;
    e->n_queued++;
    pthread_cond_signal(&e->wake);
    while (!job->finished) pthread_cond_wait(&job->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&job->done_cv);
    if (job->rc && err) *err = job->err;
    return job->rc ? -1 : 0;
}

static bool valid_params(const engine_params *p, seek_err *err) {
    if (p->n_stop < 0 || p->n_stop > ENGINE_MAX_STOP)
        return !err_set(err, SEEK_EINVAL, "at most %d stop strings", ENGINE_MAX_STOP);
    for (int i = 0; i < p->n_stop; i++)
        if (!p->stop[i]) return !err_set(err, SEEK_EINVAL, "stop string %d is missing", i);
    if (p->think < -1 || p->think > 1) return !err_set(err, SEEK_EINVAL, "think must be -1, 0 or 1");
    if (p->sample.repeat_last_n < -1)
        return !err_set(err, SEEK_EINVAL, "repeat_last_n %d is out of range (-1 or more)", p->sample.repeat_last_n);
    return true;
}

static int append_message(json_t *msgs, const char *role, const char *content, seek_err *err) {
    json_t *m = json_pack("{s:s,s:s}", "role", role, "content", content);
    if (!m) return err_set(err, SEEK_EINVAL, "the %s text is not valid UTF-8", role);
    if (json_array_append_new(msgs, m)) return err_set(err, SEEK_ENOMEM, "out of memory");
    return 0;
}

/* messages for a request: the Modelfile's MESSAGEs, then for chat the request's messages (the
 * model's SYSTEM first when they have no system message), for /api/generate [system?, user]. */
static json_t *build_messages(const sched_meta *mt, const sched_request *req, seek_err *err) {
    json_t *msgs = json_array();
    if (!msgs) goto oom;
    const char *system = mt->sm.system;
    if (req->messages) {
        for (size_t i = 0; i < json_array_size(req->messages); i++) {
            const json_t *m = json_array_get(req->messages, i);
            const char *role = json_string_value(json_object_get(m, "role"));
            if (!json_is_object(m) || !role) {
                json_decref(msgs);
                err_set(err, SEEK_EINVAL, "message %zu has no role", i);
                return NULL;
            }
            if (!strcmp(role, "system")) system = NULL;
        }
    } else if (req->system) {
        system = req->system;
    }
    if (system && *system && append_message(msgs, "system", system, err)) goto fail;
    if (json_is_array(mt->sm.messages) && json_array_extend(msgs, mt->sm.messages)) goto oom;
    if (req->messages) {
        if (json_array_extend(msgs, (json_t *)req->messages)) goto oom;
    } else if (append_message(msgs, "user", req->prompt, err)) {
        goto fail;
    }
    return msgs;
fail:
    json_decref(msgs);
    return NULL;
oom:
    json_decref(msgs);
    err_set(err, SEEK_ENOMEM, "out of memory");
    return NULL;
}

int sched_generate(sched *s, const sched_request *req, engine_stats *st, seek_err *err) {
    uint64_t t_start = time_now_ns();
    memset(st, 0, sizeof *st);
    if (!req || !req->emit) return err_set(err, SEEK_EINVAL, "no request");
    if (!req->messages == !req->prompt)
        return err_set(err, SEEK_EINVAL, "a request needs either messages or a prompt");
    if (req->messages && !json_is_array(req->messages)) return err_set(err, SEEK_EINVAL, "messages must be an array");
    if (req->tools && !json_is_array(req->tools)) return err_set(err, SEEK_EINVAL, "tools must be an array");
    if (!valid_params(&req->params, err)) return -1;
    sched_meta *mt = meta_get(s, req->model, err);
    if (!mt) return -1;
    const char *tmpl = req->template_src ? req->template_src : mt->tmpl;
    uint64_t load_ns;
    sched_entry *e = acquire(s, mt, tmpl, req->num_ctx > 0 ? req->num_ctx : mt->num_ctx, &load_ns, err);
    if (!e) return -1;

    /* the prompt, rendered and tokenized here so the worker only evaluates */
    char *prompt = NULL;
    bool opens = false;
    if (req->prompt && req->raw) {
        prompt = strdup(req->prompt);
        if (!prompt) err_set(err, SEEK_ENOMEM, "out of memory");
        else opens = chat_prompt_opens_think(prompt);
    } else {
        json_t *msgs = build_messages(mt, req, err);
        if (msgs) prompt = engine_render_chat(e->em, msgs, req->tools, req->params.think, &opens, err);
        json_decref(msgs);
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = -1;
    if (prompt && engine_tokenize_prompt(e->em, prompt, e->num_ctx, &ids, &n_ids, err) == 0) {
        sched_job job = {
            .kind = SCHED_JOB_GENERATE, .ids = ids, .n_ids = n_ids, .opens_think = opens, .p = &req->params,
            .emit = req->emit, .ud = req->ud, .st = st,
        };
        rc = run_job(s, e, &job, err);
    }
    free(ids);
    free(prompt);
    release(s, e, req->keep_alive_ns);
    st->load_ns = load_ns;
    st->total_ns = time_now_ns() - t_start;
    return rc;
}

int sched_load(sched *s, const char *name, int64_t keep_alive_ns, seek_err *err) {
    if (keep_alive_ns == 0) return sched_unload(s, name, err);
    sched_meta *mt = meta_get(s, name, err);
    if (!mt) return -1;
    uint64_t load_ns;
    sched_entry *e = acquire(s, mt, mt->tmpl, mt->num_ctx, &load_ns, err);
    if (!e) return -1;
    release(s, e, keep_alive_ns);
    return 0;
}

int sched_unload(sched *s, const char *name, seek_err *err) {
    sched_meta *mt = meta_get(s, name, err);
    if (!mt) return -1;
    sched_entry *gone = NULL;
    pthread_mutex_lock(&s->mu);
    for (sched_entry *e = s->models, *next; e; e = next) {
        next = e->next;
        if (strcmp(e->path, mt->sm.model_path)) continue;
        e->keep_alive_ns = 0;
        if (e->refs) continue; /* busy: release() unloads it when its last request ends */
        entry_unlink(s, e);
        e->next = gone;
        gone = e;
    }
    pthread_mutex_unlock(&s->mu);
    while (gone) {
        sched_entry *e = gone;
        gone = e->next;
        entry_free(s, e);
    }
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---- embeddings ----------------------------------------------------------------------------- */

int sched_embed(sched *s, const char *name, const char *const *inputs, int n_inputs, bool truncate,
                int32_t num_ctx, int64_t keep_alive_ns, float **out, int *dim, int64_t *n_tokens,
                seek_err *err) {
    *out = NULL;
    *dim = 0;
    *n_tokens = 0;
    if (n_inputs < 0 || (n_inputs > 0 && !inputs)) return err_set(err, SEEK_EINVAL, "invalid input");
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i]) return err_set(err, SEEK_EINVAL, "input %d is missing", i);
    sched_meta *mt = meta_get(s, name, err);
    if (!mt) return -1;
    uint64_t load_ns;
    sched_entry *e = acquire(s, mt, mt->tmpl, num_ctx > 0 ? num_ctx : mt->num_ctx, &load_ns, err);
    if (!e) return -1;
    const tok_vocab *v = e->em->vocab;
    const int D = (int)e->em->m->hp.n_embd;
    int32_t **ids = calloc((size_t)(n_inputs ? n_inputs : 1), sizeof *ids);
    size_t *ns = calloc((size_t)(n_inputs ? n_inputs : 1), sizeof *ns);
    float *res = malloc(sizeof(float) * (size_t)D * (size_t)(n_inputs ? n_inputs : 1));
    int rc = ids && ns && res ? 0 : err_set(err, SEEK_ENOMEM, "out of memory");
    for (int i = 0; i < n_inputs && rc == 0; i++) {
        bool bos = tok_add_bos(v) && tok_bos(v) >= 0;
        rc = tok_encode(v, inputs[i], strlen(inputs[i]), bos, false, &ids[i], &ns[i], err);
        if (rc) break;
        if (ns[i] == 0) rc = err_set(err, SEEK_EINVAL, "input %d is empty", i);
        else if (ns[i] > (size_t)e->num_ctx && truncate) ns[i] = (size_t)e->num_ctx;
        else if (ns[i] > (size_t)e->num_ctx)
            rc = err_set(err, SEEK_EINVAL, "input %d is %zu tokens but the context holds %d; raise num_ctx or truncate",
                         i, ns[i], e->num_ctx);
        *n_tokens += (int64_t)ns[i];
    }
    if (rc == 0 && n_inputs > 0) {
        sched_job job = { .kind = SCHED_JOB_EMBED, .in_ids = ids, .in_n = ns, .n_inputs = n_inputs, .out = res };
        rc = run_job(s, e, &job, err);
    }
    for (int i = 0; ids && i < n_inputs; i++) free(ids[i]);
    free(ids);
    free(ns);
    release(s, e, keep_alive_ns);
    if (rc) {
        free(res);
        *n_tokens = 0;
        return -1;
    }
    *out = res;
    *dim = D;
    return 0;
}

/* ---- /api/ps -------------------------------------------------------------------------------- */

int sched_ps(sched *s, sched_loaded *out, int cap) {
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t unix_now = (int64_t)rt.tv_sec * 1000000000ll + rt.tv_nsec;
    uint64_t now = time_now_ns();
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (sched_entry *e = s->models; e; e = e->next, n++) {
        if (n >= cap || !out) continue;
        sched_loaded *l = &out[n];
        memset(l, 0, sizeof *l);
        snprintf(l->name, sizeof l->name, "%s", e->name);
        snprintf(l->digest, sizeof l->digest, "%s", e->digest);
        l->size_bytes = e->size_bytes;
        l->num_ctx = e->num_ctx;
        l->active = e->active;
        if (e->keep_alive_ns < 0 || (!e->refs && e->expires == NEVER)) l->expires_unix_ns = INT64_MAX;
        else if (e->refs) l->expires_unix_ns = unix_now + e->keep_alive_ns; /* busy: counts from the end */
        else l->expires_unix_ns = unix_now + (e->expires > now ? (int64_t)(e->expires - now) : 0);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}
