/*
 * test_sched.c - the scheduler (src/engine/sched*.c) and the batched forward pass under it, on the
 * llama.cpp-made fixtures (random weights, real R1 vocabulary and template).
 *
 *   batch     model_eval_batch over interleaved sequences (prompt chunks and one-token decode
 *             rows, some rows' logits not wanted) gives bit-identical logits to model_eval of
 *             each sequence alone; bad sequences and positions are refused.
 *   parallel  16 requests from 16 threads with num_parallel 4 (chat, generate with a system
 *             prompt, raw prompts; greedy and seeded sampling; stop strings, a thinking budget,
 *             think=false, a context that fills up) each stream exactly the text, token counts
 *             and done_reason of the same request run alone through engine_chat /
 *             engine_generate.  The reference is the sequential engine, so the check isolates
 *             batching, slot reuse and the prefix cache.
 *   queue     num_parallel 1 and max_queue 1: with one request running and one waiting, the next
 *             is refused with SEEK_EBUSY; the others then complete.
 *   cancel    a request cancelled from its callback ends with "cancel" and frees its slot.
 *   memory    keep_alive 0 unloads, a short keep_alive expires, sched_load / sched_unload;
 *             with room for one model the qwen2 and llama fixtures evict each other; max_loaded 2
 *             evicts the least recently used; a model that cannot fit is SEEK_ENOMEM with its size.
 *   embed     sched_embed: dimension D, unit norm, equal to the mean of model_eval_embd rows
 *             computed here from a separate model (the numpy check is tests/test_embed.py);
 *             truncate.
 *   errors    unknown models (SEEK_ENOTFOUND), bad requests (SEEK_EINVAL).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "chat/chat.h"
#include "engine/engine.h"
#include "engine/sched.h"
#include "testutil.h"

static char qwen_path[512], llama_path[512], qwen4_path[512];

/* ---- output collection ------------------------------------------------------------------------ */

typedef struct {
    char text[16384];
    size_t n;
    char thinking[16384];
    size_t n_thinking;
    int calls;
    int cancel_after;          /* return false at this call (0: never) */
    /* blocking: the first call signals `started` and waits until `release` */
    bool block;
    atomic_bool started, release;
} sink;

static bool collect(void *ud, bool thinking, const char *text, size_t len) {
    sink *s = ud;
    char *dst = thinking ? s->thinking : s->text;
    size_t *n = thinking ? &s->n_thinking : &s->n;
    if (*n + len < sizeof s->text) {
        memcpy(dst + *n, text, len);
        *n += len;
        dst[*n] = 0;
    }
    s->calls++;
    if (s->block && !s->started) {
        s->started = true;
        while (!s->release) usleep(1000);
    }
    return !(s->cancel_after && s->calls >= s->cancel_after);
}

static bool same_output(const sink *a, const sink *b) {
    return a->n == b->n && a->n_thinking == b->n_thinking && !memcmp(a->text, b->text, a->n) &&
           !memcmp(a->thinking, b->thinking, a->n_thinking);
}

/* ---- model_eval_batch == model_eval ------------------------------------------------------------- */

enum { NS = 3, MAXN = 12 };
static const int lens[NS] = { 9, 10, 12 };
/* pass 1 evaluates [0, a), pass 2 [a, b), pass 3 [b, len): 17 and 9 tokens, then one per sequence */
static const int cut[NS][2] = { { 6, 8 }, { 5, 9 }, { 6, 11 } };

/* The three passes over sequences placed in slots seq_of[] of a multi-sequence context, tokens
 * interleaved in the order given by `order` (one token of each sequence in turn).  Wanted rows go
 * to rows[s][i] (V floats each); in pass 2 only even positions are wanted (packing). */
static int run_passes(model_ctx *cm, int32_t toks[NS][MAXN], const int seq_of[NS], const int order[NS], int64_t V,
                      float *rows[NS][MAXN], seek_err *err) {
    float *out = malloc(sizeof(float) * (size_t)(V * 64));
    int32_t bt[64], bp[64], bs[64], who[64], at[64];
    bool want[64];
    for (int pass = 0; pass < 3; pass++) {
        int n = 0;
        for (int k = 0; k < MAXN; k++)
            for (int o = 0; o < NS; o++) {
                int s = order[o];
                int lo = pass == 0 ? 0 : cut[s][pass - 1], hi = pass == 2 ? lens[s] : cut[s][pass];
                int i = lo + k;
                if (i >= hi) continue;
                bt[n] = toks[s][i], bp[n] = i, bs[n] = seq_of[s], who[n] = s, at[n] = i;
                want[n] = pass == 1 ? (i % 2 == 0) : true;
                n++;
            }
        if (model_eval_batch(cm, bt, bp, bs, n, out, want, err) != 0) {
            free(out);
            return -1;
        }
        int r = 0;
        for (int t = 0; t < n; t++)
            if (want[t]) {
                rows[who[t]][at[t]] = malloc(sizeof(float) * (size_t)V);
                memcpy(rows[who[t]][at[t]], out + (size_t)r++ * (size_t)V, sizeof(float) * (size_t)V);
            }
    }
    free(out);
    return 0;
}

/*
 * Bit-exactness holds between evaluations that put a row through the same matmul kernel.  The
 * kernels may depend on how many tokens share a pass (kern_matmul's batched panel kernels sum in
 * another order than the 1x1 dot), so: passes of 8 or more tokens are compared bit for bit with
 * the whole-prompt reference, two batched runs with the same pass sizes but other slots and
 * token order bit for bit with each other, and the three-token pass within 2% of the logit
 * range (a row attending to the wrong sequence or position is off by the whole range).
 */
static void test_batch_logits(void) {
    seek_err err = { 0 };
    model *m = model_open(qwen_path, &err);
    CHECK(m != NULL, "open: %s", err.msg);
    if (!m) return;
    const int64_t V = m->hp.n_vocab, D = m->hp.n_embd;
    int32_t toks[NS][MAXN];
    rng_state = 7;
    for (int s = 0; s < NS; s++)
        for (int i = 0; i < lens[s]; i++) toks[s][i] = (int32_t)(rng_u64() % (uint64_t)V);
    float *ref[NS];
    model_ctx *c1 = model_ctx_new(m, 64, 64, 2, &err);
    CHECK(c1 != NULL, "ctx: %s", err.msg);
    for (int s = 0; s < NS; s++) {
        ref[s] = malloc(sizeof(float) * (size_t)(V * lens[s]));
        CHECK(model_eval(c1, toks[s], lens[s], 0, ref[s], true, &err) == 0, "model_eval: %s", err.msg);
    }
    model_ctx_free(c1);

    model_ctx *ca = model_ctx_new_multi(m, 64, NS, 64, 2, &err), *cb = model_ctx_new_multi(m, 32, 4, 64, 1, &err);
    CHECK(ca && cb && model_ctx_n_seq(ca) == NS, "multi ctx: %s", err.msg);
    if (!ca || !cb) return;
    float *ra[NS][MAXN] = { { 0 } }, *rb[NS][MAXN] = { { 0 } };
    const int seq_a[NS] = { 2, 0, 1 }, order_a[NS] = { 0, 1, 2 };
    const int seq_b[NS] = { 1, 3, 0 }, order_b[NS] = { 2, 0, 1 };
    CHECK(run_passes(ca, toks, seq_a, order_a, V, ra, &err) == 0, "eval_batch: %s", err.msg);
    CHECK(run_passes(cb, toks, seq_b, order_b, V, rb, &err) == 0, "eval_batch: %s", err.msg);
    int big_rows = 0, big_bad = 0, same_bad = 0, small_rows = 0, n_rows = 0;
    double small_rel = 0;
    for (int s = 0; s < NS; s++)
        for (int i = 0; i < lens[s]; i++) {
            if (!ra[s][i]) continue;
            n_rows++;
            const float *b = ref[s] + (size_t)i * (size_t)V;
            same_bad += !rb[s][i] || memcmp(ra[s][i], rb[s][i], sizeof(float) * (size_t)V) != 0;
            if (i < cut[s][1]) {
                big_rows++;
                big_bad += memcmp(ra[s][i], b, sizeof(float) * (size_t)V) != 0;
            } else {
                double md = 0, mx = 0;
                for (int64_t j = 0; j < V; j++) md = fmax(md, fabs(ra[s][i][j] - b[j])), mx = fmax(mx, fabs(b[j]));
                small_rel = fmax(small_rel, md / mx);
                small_rows++;
            }
        }
    CHECK(big_bad == 0 && big_rows >= 17, "rows of large passes bit-identical to model_eval: %d of %d differ", big_bad,
          big_rows);
    CHECK(same_bad == 0 && n_rows >= 20, "same passes in other slots and order: bit-identical (%d of %d differ)",
          same_bad, n_rows);
    CHECK(small_rows == NS && small_rel < 2e-2, "one-token rows within %g of the logit range", small_rel);

    /* embeddings: finite, non-zero final hidden states */
    float *embd = malloc(sizeof(float) * (size_t)(D * lens[0]));
    int32_t pos[MAXN], seq[MAXN];
    for (int i = 0; i < lens[0]; i++) pos[i] = i, seq[i] = 1;
    CHECK(model_eval_embd(ca, toks[0], pos, seq, lens[0], embd, &err) == 0, "eval_embd: %s", err.msg);
    double nrm = 0;
    for (int64_t j = 0; j < D; j++) nrm += (double)embd[j] * embd[j];
    CHECK(isfinite(nrm) && nrm > 0, "hidden states are finite and non-zero");

    /* refusals */
    float *out = malloc(sizeof(float) * (size_t)V);
    int32_t tk = 1, p0 = 0, sbad = NS, pbad = 64;
    CHECK(model_eval_batch(ca, &tk, &p0, &sbad, 1, out, NULL, &err) != 0 && err.code == SEEK_EINVAL &&
          strstr(err.msg, "sequence"), "sequence out of range: %s", err.msg);
    CHECK(model_eval_batch(ca, &tk, &pbad, &p0, 1, out, NULL, &err) != 0 && strstr(err.msg, "context is full"),
          "position past the context: %s", err.msg);
    int32_t vbad = (int32_t)V;
    CHECK(model_eval_batch(ca, &vbad, &p0, &p0, 1, out, NULL, &err) != 0 && strstr(err.msg, "vocabulary"),
          "token outside the vocabulary: %s", err.msg);
    CHECK(model_ctx_new_multi(m, 64, 0, 8, 1, &err) == NULL && err.code == SEEK_EINVAL, "0 sequences refused");
    CHECK(model_ctx_estimate_bytes(m, 64, NS, 64, 2) == model_ctx_kv_bytes(ca) + model_ctx_scratch_bytes(ca),
          "estimate equals the allocation");
    free(out);
    free(embd);
    for (int s = 0; s < NS; s++) {
        free(ref[s]);
        for (int i = 0; i < MAXN; i++) free(ra[s][i]), free(rb[s][i]);
    }
    model_ctx_free(ca);
    model_ctx_free(cb);
    model_close(m);
}

/* ---- 16 concurrent requests == each alone ------------------------------------------------------ */

typedef struct {
    /* the request */
    int kind;              /* 0 chat, 1 generate (template, system), 2 raw */
    const char *user, *system;
    char raw[512];
    engine_params p;
    int32_t num_ctx;
    /* results */
    sink got, want;
    engine_stats st, st_want;
    int rc;
    seek_err err;
    sched *s;
} job;

static json_t *job_messages(const job *j) {
    json_t *m = json_array();
    if (j->system) json_array_append_new(m, json_pack("{s:s,s:s}", "role", "system", "content", j->system));
    json_array_append_new(m, json_pack("{s:s,s:s}", "role", "user", "content", j->user));
    return m;
}

static void *job_thread(void *arg) {
    job *j = arg;
    sched_request rq;
    memset(&rq, 0, sizeof rq);
    rq.model = qwen_path;
    json_t *msgs = NULL;
    if (j->kind == 0) {
        msgs = job_messages(j);
        rq.messages = msgs;
    } else if (j->kind == 1) {
        rq.prompt = j->user;
        rq.system = j->system;
    } else {
        rq.prompt = j->raw;
        rq.raw = true;
    }
    rq.params = j->p;
    rq.num_ctx = j->num_ctx;
    rq.keep_alive_ns = INT64_MIN;
    rq.emit = collect;
    rq.ud = &j->got;
    j->rc = sched_generate(j->s, &rq, &j->st, &j->err);
    json_decref(msgs);
    return NULL;
}

/* The same request through a fresh engine session, one at a time. */
static void run_alone(engine_model *em, job *j) {
    seek_err err = { 0 };
    engine_session *ss = engine_session_new(em, j->num_ctx, 2, &err);
    CHECK(ss != NULL, "session: %s", err.msg);
    if (!ss) return;
    int rc;
    if (j->kind == 2) {
        rc = engine_generate(ss, j->raw, chat_prompt_opens_think(j->raw), &j->p, collect, &j->want, &j->st_want, &err);
    } else {
        json_t *msgs = job_messages(j);
        rc = engine_chat(ss, msgs, NULL, &j->p, collect, &j->want, &j->st_want, &err);
        json_decref(msgs);
    }
    CHECK(rc == 0, "reference run: %s", err.msg);
    engine_session_free(ss);
}

static void test_parallel(engine_model *em) {
    static const char *users[] = {
        "Hello there", "What is 2+2?", "Tell me a story about a fox", "Why is the sky blue?",
        "List three colours", "Hi", "Translate 'cat' to French", "Write a haiku about rain",
    };
    enum { NJ = 16 };
    static job jobs[NJ];
    memset(jobs, 0, sizeof jobs);
    const char *bos = tok_text(em->vocab, tok_bos(em->vocab));
    for (int i = 0; i < NJ; i++) {
        job *j = &jobs[i];
        j->kind = i % 3;
        j->user = users[i % 8];
        j->system = i % 4 == 1 ? "You are terse." : NULL;
        snprintf(j->raw, sizeof j->raw, "%s<｜User｜>%s<｜Assistant｜>%s", bos, j->user, i % 2 ? "<think>\n" : "");
        j->p = engine_default_params(em);
        j->p.sample.temperature = 0;
        j->p.num_predict = 8 + (i * 7) % 40;
        j->num_ctx = 256;
        if (i % 5 == 3) { /* seeded sampling: the same logits bit for bit give the same draws */
            j->p.sample.temperature = 0.9f;
            j->p.sample.has_seed = true;
            j->p.sample.seed = 1000 + (uint64_t)i;
        }
        if (i == 4) j->p.think_budget = 4, j->p.think_bridge = "\nDone.";
        if (i == 6) j->p.think = 0;
        if (i == 9 || i == 10) {
            j->p.num_predict = 0; /* until the 64-token context is full (its own model instance) */
            j->num_ctx = 64;
        }
        if (i == 11) j->p.think_budget = 3;
    }
    /* stop strings taken from each request's own unstopped output */
    for (int i = 0; i < NJ; i++) run_alone(em, &jobs[i]);
    for (int i = 2; i < NJ; i += 4) {
        job *j = &jobs[i];
        const char *src = j->want.n > 8 ? j->want.text : j->want.thinking;
        size_t n = j->want.n > 8 ? j->want.n : j->want.n_thinking;
        if (n < 8) continue;
        static char stops[NJ][8];
        memcpy(stops[i], src + n / 2, 3);
        stops[i][3] = 0;
        j->p.stop[0] = stops[i];
        j->p.n_stop = 1;
        memset(&j->want, 0, sizeof j->want);
        run_alone(em, j);
    }

    seek_err err = { 0 };
    sched_opts o = { .num_parallel = 4, .max_queue = 64, .n_threads = 2 };
    sched *s = sched_new(&o, &err);
    CHECK(s != NULL, "sched_new: %s", err.msg);
    if (!s) return;
    pthread_t th[NJ];
    uint64_t t0 = time_now_ns();
    for (int i = 0; i < NJ; i++) {
        jobs[i].s = s;
        pthread_create(&th[i], NULL, job_thread, &jobs[i]);
    }
    for (int i = 0; i < NJ; i++) pthread_join(th[i], NULL);
    double secs = (double)(time_now_ns() - t0) / 1e9;
    int same = 0, cached = 0, budget = 0, lengths = 0, stops = 0;
    for (int i = 0; i < NJ; i++) {
        job *j = &jobs[i];
        CHECK(j->rc == 0, "request %d: %s", i, j->err.msg);
        bool ok = same_output(&j->got, &j->want) && j->st.eval_tokens == j->st_want.eval_tokens &&
                  j->st.thinking_tokens == j->st_want.thinking_tokens && j->st.budget_hit == j->st_want.budget_hit &&
                  !strcmp(j->st.done_reason, j->st_want.done_reason) &&
                  j->st.prompt_tokens + j->st.prompt_cached == j->st_want.prompt_tokens;
        CHECK(ok, "request %d (kind %d) batched == alone: %zu+%zu bytes vs %zu+%zu, %d vs %d tokens, %s vs %s", i,
              j->kind, j->got.n_thinking, j->got.n, j->want.n_thinking, j->want.n, j->st.eval_tokens,
              j->st_want.eval_tokens, j->st.done_reason, j->st_want.done_reason);
        same += ok;
        cached += j->st.prompt_cached > 0;
        budget += j->st.budget_hit;
        lengths += !strcmp(j->st.done_reason, "length");
        stops += j->p.n_stop > 0 && !strcmp(j->st.done_reason, "stop");
    }
    printf("  16 requests, 4 slots: %d identical to the sequential engine, %d reused a cached prefix, %d hit the "
           "budget, %d ended by length, %d by a stop string (%.2f s)\n", same, cached, budget, lengths, stops, secs);
    CHECK(cached > 0, "later requests reuse cached prefixes");
    CHECK(budget >= 1 && lengths >= 2 && stops >= 1, "the mix covers the budget, length and stop paths");
    sched_loaded ps[4];
    int n = sched_ps(s, ps, 4);
    CHECK(n == 2, "two instances loaded (num_ctx 256 and 64): %d", n);
    sched_free(s);
}

/* ---- queue bound, cancellation -------------------------------------------------------------------- */

typedef struct {
    sched *s;
    sink out;
    int num_predict;
    engine_stats st;
    seek_err err;
    int rc;
    atomic_bool done;
} simple_req;

static void *simple_thread(void *arg) {
    simple_req *r = arg;
    sched_request rq;
    memset(&rq, 0, sizeof rq);
    rq.model = qwen_path;
    rq.prompt = "Hello";
    sched_default_params(r->s, qwen_path, &rq.params, NULL);
    rq.params.sample.temperature = 0;
    rq.params.num_predict = r->num_predict;
    rq.num_ctx = 128;
    rq.keep_alive_ns = INT64_MIN;
    rq.emit = collect;
    rq.ud = &r->out;
    r->rc = sched_generate(r->s, &rq, &r->st, &r->err);
    r->done = true;
    return NULL;
}

static void test_queue_and_cancel(void) {
    seek_err err = { 0 };
    sched_opts o = { .num_parallel = 1, .max_queue = 1, .n_threads = 2 };
    sched *s = sched_new(&o, &err);
    if (!s) return;
    static simple_req a, b, c;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&c, 0, sizeof c);
    a.s = b.s = c.s = s;
    a.num_predict = b.num_predict = c.num_predict = 10;
    a.out.block = true; /* holds the only slot until released */
    pthread_t ta, tb, tc;
    pthread_create(&ta, NULL, simple_thread, &a);
    for (int i = 0; i < 20000 && !a.out.started; i++) usleep(1000);
    CHECK(a.out.started, "the first request is running");
    pthread_create(&tb, NULL, simple_thread, &b);
    pthread_create(&tc, NULL, simple_thread, &c);
    /* one of b and c waits in the queue, the other finds it full */
    for (int i = 0; i < 20000 && !b.done && !c.done; i++) usleep(1000);
    a.out.release = true;
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_join(tc, NULL);
    int busy = (b.rc != 0 && b.err.code == SEEK_EBUSY) + (c.rc != 0 && c.err.code == SEEK_EBUSY);
    CHECK(a.rc == 0 && busy == 1 && (b.rc == 0 || c.rc == 0), "queue full: one SEEK_EBUSY (a %d, b %d/%d, c %d/%d)",
          a.rc, b.rc, b.err.code, c.rc, c.err.code);
    CHECK(strstr(b.rc ? b.err.msg : c.err.msg, "busy") != NULL, "busy message: %s", b.rc ? b.err.msg : c.err.msg);
    CHECK(same_output(b.rc ? &c.out : &b.out, &a.out), "the queued request ran normally");

    /* cancellation: the callback stops a long request; the slot serves the next ones */
    simple_req x;
    memset(&x, 0, sizeof x);
    x.s = s;
    x.num_predict = 200;
    x.out.cancel_after = 3;
    simple_thread(&x);
    CHECK(x.rc == 0 && !strcmp(x.st.done_reason, "cancel") && x.out.calls == 3 && x.st.eval_tokens < 20,
          "cancelled: %s after %d calls, %d tokens", x.st.done_reason, x.out.calls, x.st.eval_tokens);
    simple_req y;
    memset(&y, 0, sizeof y);
    y.s = s;
    y.num_predict = 10;
    simple_thread(&y);
    CHECK(y.rc == 0 && same_output(&y.out, &a.out) && !strcmp(y.st.done_reason, "length"),
          "the next request after a cancel completes normally: %s", y.err.msg);
    CHECK(y.st.prompt_cached > 0, "and reuses the cancelled request's cached prompt: %d", y.st.prompt_cached);
    sched_loaded ps[2];
    CHECK(sched_ps(s, ps, 2) == 1 && ps[0].active == 0, "no sequence left running");
    sched_free(s);
}

/* ---- loading, keep_alive, eviction ----------------------------------------------------------- */

static int gen_short(sched *s, const char *path, int64_t keep_alive, seek_err *err) {
    sink out;
    memset(&out, 0, sizeof out);
    sched_request rq;
    memset(&rq, 0, sizeof rq);
    rq.model = path;
    rq.prompt = "Hi";
    if (sched_default_params(s, path, &rq.params, err) != 0) return -1;
    rq.params.num_predict = 3;
    rq.num_ctx = 64;
    rq.keep_alive_ns = keep_alive;
    rq.emit = collect;
    rq.ud = &out;
    engine_stats st;
    return sched_generate(s, &rq, &st, err);
}

static bool loaded(sched *s, const char *path) {
    sched_loaded ps[8];
    int n = sched_ps(s, ps, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (!strcmp(ps[i].name, path)) return true;
    return false;
}

static void test_memory(void) {
    seek_err err = { 0 };
    sched_opts o = { .num_parallel = 2, .n_threads = 1 };
    sched *s = sched_new(&o, &err);
    if (!s) return;
    CHECK(gen_short(s, qwen_path, 0, &err) == 0, "generate: %s", err.msg);
    CHECK(sched_ps(s, NULL, 0) == 0, "keep_alive 0 unloads at the end of the request");
    CHECK(gen_short(s, qwen_path, 300 * 1000000ll, &err) == 0, "generate: %s", err.msg);
    sched_loaded ps[4];
    int n = sched_ps(s, ps, 4);
    CHECK(n == 1 && !strcmp(ps[0].name, qwen_path) && ps[0].num_ctx == 64 && ps[0].size_bytes > 0 &&
          ps[0].expires_unix_ns < INT64_MAX, "sched_ps: %d models, num_ctx %d", n, n ? ps[0].num_ctx : 0);
    for (int i = 0; i < 300 && sched_ps(s, NULL, 0); i++) usleep(10000);
    CHECK(sched_ps(s, NULL, 0) == 0, "a 300 ms keep_alive expires");
    CHECK(sched_load(s, qwen_path, -1, &err) == 0 && sched_ps(s, ps, 4) == 1 && ps[0].expires_unix_ns == INT64_MAX,
          "sched_load with keep_alive < 0: loaded forever");
    CHECK(sched_unload(s, qwen_path, &err) == 0 && sched_ps(s, NULL, 0) == 0, "sched_unload");
    CHECK(sched_load(s, qwen_path, INT64_MIN, &err) == 0 && sched_load(s, qwen_path, 0, &err) == 0 &&
          sched_ps(s, NULL, 0) == 0, "sched_load with keep_alive 0 unloads");
    sched_free(s);

    /* memory for one model only: qwen2 and llama evict each other */
    engine_model *eq = engine_load(qwen_path, &err), *el = engine_load(llama_path, &err);
    CHECK(eq && el, "load: %s", err.msg);
    if (!eq || !el) return;
    uint64_t bq = sched_estimate_bytes(eq, 64, 2), bl = sched_estimate_bytes(el, 64, 2);
    CHECK(bq > eq->m->weight_bytes && sched_estimate_bytes(eq, 128, 2) > bq && sched_estimate_bytes(eq, 64, 4) > bq,
          "estimate grows with num_ctx and num_parallel");
    o.mem_limit = (bq > bl ? bq : bl) + (bq < bl ? bq : bl) / 2;
    s = sched_new(&o, &err);
    for (int round = 0; round < 2; round++) {
        CHECK(gen_short(s, qwen_path, -1, &err) == 0 && loaded(s, qwen_path) && sched_ps(s, NULL, 0) == 1,
              "qwen2 alone: %s", err.msg);
        CHECK(gen_short(s, llama_path, -1, &err) == 0 && loaded(s, llama_path) && sched_ps(s, NULL, 0) == 1,
              "llama evicted qwen2: %s", err.msg);
    }
    sched_free(s);

    /* max_loaded 2: the least recently used goes */
    o.mem_limit = 0;
    o.max_loaded = 2;
    s = sched_new(&o, &err);
    gen_short(s, qwen_path, -1, &err);
    gen_short(s, llama_path, -1, &err);
    gen_short(s, qwen_path, -1, &err);
    CHECK(gen_short(s, qwen4_path, -1, &err) == 0, "third model: %s", err.msg);
    CHECK(sched_ps(s, NULL, 0) == 2 && loaded(s, qwen_path) && loaded(s, qwen4_path) && !loaded(s, llama_path),
          "max_loaded 2 evicted the least recently used (llama)");
    sched_free(s);

    /* too big for the limit even alone */
    o.max_loaded = 0;
    o.mem_limit = bq / 2;
    s = sched_new(&o, &err);
    int rc = gen_short(s, qwen_path, -1, &err);
    CHECK(rc != 0 && err.code == SEEK_ENOMEM && strstr(err.msg, "GiB") && strstr(err.msg, "needs"),
          "cannot fit: SEEK_ENOMEM: %s", err.msg);
    CHECK(sched_ps(s, NULL, 0) == 0, "nothing loaded");
    sched_free(s);
    engine_free(eq);
    engine_free(el);
}

/* ---- embeddings ----------------------------------------------------------------------------------- */

static void test_embed(void) {
    seek_err err = { 0 };
    sched_opts o = { .num_parallel = 2, .n_threads = 2 };
    sched *s = sched_new(&o, &err);
    if (!s) return;
    const char *inputs[] = { "The quick brown fox", "jumps over the lazy dog. Twice!", "The quick brown fox" };
    float *e = NULL;
    int dim = 0;
    int64_t nt = 0;
    int rc = sched_embed(s, qwen_path, inputs, 3, false, 0, INT64_MIN, &e, &dim, &nt, &err);
    CHECK(rc == 0 && e && dim > 0, "sched_embed: %s", err.msg);
    if (rc) {
        sched_free(s);
        return;
    }
    /* independent: tokens and model_eval_embd on a model opened here, mean and norm in double */
    engine_model *em = engine_load(qwen_path, &err);
    model_ctx *c = model_ctx_new_multi(em->m, 256, 1, 64, 1, &err);
    CHECK(dim == em->m->hp.n_embd, "dimension D = %d", dim);
    int64_t total = 0;
    for (int i = 0; i < 3; i++) {
        int32_t *ids;
        size_t n;
        tok_encode(em->vocab, inputs[i], strlen(inputs[i]), tok_add_bos(em->vocab), false, &ids, &n, &err);
        total += (int64_t)n;
        float *h = malloc(sizeof(float) * n * (size_t)dim);
        int32_t pos[256], seq[256];
        for (size_t t = 0; t < n; t++) pos[t] = (int32_t)t, seq[t] = 0;
        CHECK(model_eval_embd(c, ids, pos, seq, (int64_t)n, h, &err) == 0, "eval_embd: %s", err.msg);
        double norm = 0, mine = 0, maxd = 0;
        double *mean = calloc((size_t)dim, sizeof *mean);
        for (int j = 0; j < dim; j++) {
            for (size_t t = 0; t < n; t++) mean[j] += h[t * (size_t)dim + (size_t)j];
            mean[j] /= (double)n;
            norm += mean[j] * mean[j];
        }
        for (int j = 0; j < dim; j++) {
            double want = mean[j] / sqrt(norm), got = e[i * dim + j];
            mine += got * got;
            maxd = fmax(maxd, fabs(want - got));
        }
        CHECK(fabs(sqrt(mine) - 1) < 1e-5, "input %d: unit norm (%g)", i, sqrt(mine));
        CHECK(maxd < 1e-6, "input %d: equals the mean of the hidden states, normalised (max diff %g)", i, maxd);
        free(mean);
        free(h);
        free(ids);
    }
    CHECK(nt == total, "token count %lld vs %lld", (long long)nt, (long long)total);
    CHECK(!memcmp(e, e + 2 * dim, sizeof(float) * (size_t)dim), "the same input gives the same embedding");
    free(e);
    model_ctx_free(c);
    engine_free(em);

    /* longer than the context: refused, or cut with truncate */
    char big[2048] = "";
    for (int i = 0; i < 60; i++) strcat(big, "word ");
    const char *one[] = { big };
    rc = sched_embed(s, qwen_path, one, 1, false, 32, INT64_MIN, &e, &dim, &nt, &err);
    CHECK(rc != 0 && err.code == SEEK_EINVAL && e == NULL, "too long without truncate: %s", err.msg);
    rc = sched_embed(s, qwen_path, one, 1, true, 32, INT64_MIN, &e, &dim, &nt, &err);
    CHECK(rc == 0 && nt == 32, "truncated to num_ctx: %lld tokens", (long long)nt);
    free(e);
    const char *empty[] = { "" };
    rc = sched_embed(s, qwen_path, empty, 1, false, 0, INT64_MIN, &e, &dim, &nt, &err);
    CHECK(rc == 0 || err.code == SEEK_EINVAL, "empty input: embedding of BOS or SEEK_EINVAL: %s", err.msg);
    if (rc == 0) free(e);
    sched_free(s);
}

/* ---- errors and defaults --------------------------------------------------------------------------- */

static void test_errors(void) {
    seek_err err = { 0 };
    sched *s = sched_new(&(sched_opts){ .num_parallel = 1, .n_threads = 1 }, &err);
    if (!s) return;
    engine_params p;
    CHECK(sched_default_params(s, "no-such-model:7b", &p, &err) != 0 && err.code == SEEK_ENOTFOUND,
          "unknown name: %s", err.msg);
    CHECK(sched_default_params(s, "/nonexistent/x.gguf", &p, &err) != 0 && err.code == SEEK_ENOTFOUND,
          "missing file: %s", err.msg);
    CHECK(sched_default_params(s, qwen_path, &p, &err) == 0 && p.sample.temperature == 0.6f &&
          p.sample.top_p == 0.95f && p.n_stop == 0, "defaults of an R1 model: temperature 0.6, top_p 0.95");
    sink out;
    memset(&out, 0, sizeof out);
    sched_request rq;
    memset(&rq, 0, sizeof rq);
    rq.model = "no-such-model";
    rq.prompt = "Hi";
    rq.params = p;
    rq.emit = collect;
    rq.ud = &out;
    rq.keep_alive_ns = INT64_MIN;
    engine_stats st;
    CHECK(sched_generate(s, &rq, &st, &err) != 0 && err.code == SEEK_ENOTFOUND, "generate, unknown model: %s", err.msg);
    CHECK(sched_load(s, "no-such-model", INT64_MIN, &err) != 0 && err.code == SEEK_ENOTFOUND, "load, unknown model");
    const char *in[] = { "x" };
    float *e;
    int dim;
    int64_t nt;
    CHECK(sched_embed(s, "no-such-model", in, 1, false, 0, INT64_MIN, &e, &dim, &nt, &err) != 0 &&
          err.code == SEEK_ENOTFOUND, "embed, unknown model");
    rq.model = qwen_path;
    rq.num_ctx = 5;
    CHECK(sched_generate(s, &rq, &st, &err) != 0 && err.code == SEEK_EINVAL, "num_ctx 5: %s", err.msg);
    rq.num_ctx = 32;
    char big[4096] = "";
    for (int i = 0; i < 100; i++) strcat(big, "word ");
    rq.prompt = big;
    CHECK(sched_generate(s, &rq, &st, &err) != 0 && err.code == SEEK_EINVAL && strstr(err.msg, "context"),
          "prompt longer than the context: %s", err.msg);
    rq.prompt = "Hi";
    rq.params.n_stop = 99;
    CHECK(sched_generate(s, &rq, &st, &err) != 0 && err.code == SEEK_EINVAL, "99 stop strings: %s", err.msg);
    rq.params.n_stop = 0;
    json_t *msgs = json_pack("[{s:s}]", "content", "no role");
    rq.messages = msgs;
    CHECK(sched_generate(s, &rq, &st, &err) != 0 && err.code == SEEK_EINVAL, "both prompt and messages");
    rq.prompt = NULL;
    CHECK(sched_generate(s, &rq, &st, &err) != 0 && err.code == SEEK_EINVAL, "a message without a role: %s", err.msg);
    json_decref(msgs);
    rq.messages = NULL;
    rq.prompt = "Hi";
    rq.template_src = "{% for m in messages %}{{ m.content }}{% endfor %}{{ raise_exception('no') }}";
    CHECK(sched_generate(s, &rq, &st, &err) != 0 && strstr(err.msg, "template"), "template error: %s", err.msg);
    rq.template_src = NULL;
    rq.params.num_predict = 4;
    CHECK(sched_generate(s, &rq, &st, &err) == 0 && st.eval_tokens <= 4, "and then a good request: %s", err.msg);
    sched_free(s);
}

/* argv[1], if given, runs only the part of that name (batch, parallel, queue, memory, embed,
 * errors). */
static bool want_part(int argc, char **argv, const char *name) { return argc < 2 || !strcmp(argv[1], name); }

int main(int argc, char **argv) {
    base_init();
    const char *dir = test_fixture_dir();
    if (!dir) {
        CHECK(false, "fixtures not found (SEEK_FIXTURES)");
        return check_done("test_sched");
    }
    snprintf(qwen_path, sizeof qwen_path, "%s/qwen2-mini-Q8_0.gguf", dir);
    snprintf(llama_path, sizeof llama_path, "%s/llama-mini-Q8_0.gguf", dir);
    snprintf(qwen4_path, sizeof qwen4_path, "%s/qwen2-mini-Q4_K_M.gguf", dir);
    /* names resolve in an empty store of our own, not the user's */
    char store_dir[] = "/tmp/seek-test-sched-XXXXXX";
    if (mkdtemp(store_dir)) setenv("SEEK_MODELS", store_dir, 1);
    seek_err err = { 0 };
    engine_model *em = engine_load(qwen_path, &err);
    CHECK(em != NULL, "load %s: %s", qwen_path, err.msg);
    if (!em) return check_done("test_sched");
    if (want_part(argc, argv, "batch")) test_batch_logits();
    if (want_part(argc, argv, "parallel")) test_parallel(em);
    if (want_part(argc, argv, "queue")) test_queue_and_cancel();
    if (want_part(argc, argv, "memory")) test_memory();
    if (want_part(argc, argv, "embed")) test_embed();
    if (want_part(argc, argv, "errors")) test_errors();
    engine_free(em);
    rmdir(store_dir);
    return check_done("test_sched");
}
