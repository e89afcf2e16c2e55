/*
 * sched_batch.c - a loaded model's worker thread: continuous batching of its sequences.
 *
 * Each turn of the loop:
 *   1. take queued jobs into free slots (under the scheduler's mutex).  A new generation picks the
 *      free slot whose cached tokens share the longest prefix with its prompt (a chat's next turn
 *      lands where its previous turns are) and only the rest of the prompt is evaluated; an
 *      embedding job runs at once, alone, in its slot's region;
 *   2. build one pass: the last sampled token of every decoding sequence (one row each, logits
 *      wanted), then prompt (or thinking-budget bridge) chunks of the sequences still filling
 *      their cache, up to SCHED_N_BATCH tokens, logits wanted at the last token of a finished
 *      chunk only;
 *   3. model_eval_batch: every weight matrix is read once for all of them;
 *   4. per sequence with a logits row: the same step engine_generate takes (engine_gen_next:
 *      sample, stream, stop checks; engine_gen_budget after an evaluated token), then sequences
 *      that are done give their slot back and wake their requester.
 * A sequence joins or leaves between passes; the others never wait for a whole request.
 *
 * Bit-exactness: each row of a pass is computed the same way whatever else is in it
 * (model_forward.c), and the per-sequence decisions are engine.c's own functions, so a request
 * gives the same text here as alone through engine_generate.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched_impl.h"

int sched_entry_alloc_slots(sched_entry *e, seek_err *err) {
    const int64_t V = e->em->m->hp.n_vocab;
    e->slots = calloc((size_t)e->n_par, sizeof *e->slots);
    e->logits = malloc(sizeof(float) * (size_t)V * (size_t)e->n_par);
    e->b_tok = malloc(sizeof(int32_t) * SCHED_N_BATCH);
    e->b_pos = malloc(sizeof(int32_t) * SCHED_N_BATCH);
    e->b_seq = malloc(sizeof(int32_t) * SCHED_N_BATCH);
    e->b_want = malloc(sizeof(bool) * SCHED_N_BATCH);
    e->row_slot = malloc(sizeof(int) * (size_t)e->n_par);
    if (!e->slots || !e->logits || !e->b_tok || !e->b_pos || !e->b_seq || !e->b_want || !e->row_slot)
        return err_set(err, SEEK_ENOMEM, "out of memory");
    for (int i = 0; i < e->n_par; i++) {
        e->slots[i].past = malloc(sizeof(int32_t) * (size_t)e->num_ctx);
        if (!e->slots[i].past) return err_set(err, SEEK_ENOMEM, "out of memory");
    }
    return 0;
}

void sched_entry_free_slots(sched_entry *e) {
    if (e->slots)
        for (int i = 0; i < e->n_par; i++) free(e->slots[i].past);
    free(e->slots);
    free(e->logits);
    free(e->b_tok);
    free(e->b_pos);
    free(e->b_seq);
    free(e->b_want);
    free(e->row_slot);
    mem_free(e->embd);
    e->slots = NULL;
}

/* ---- one sequence's life in a slot ------------------------------------------------------------ */

static void slot_clear_todo(sched_slot *sl) {
    if (sl->todo_owned) free(sl->todo);
    sl->todo = NULL;
    sl->n_todo = sl->i_todo = 0;
    sl->todo_owned = false;
    sl->in_prompt = false;
}

/* Ends the slot's job: flushes its text (ok), records the result.  The job is handed back by
 * the caller (worker_hand_back) under the mutex. */
static void slot_finish(sched_slot *sl, int rc, const seek_err *err) {
    sched_job *job = sl->job;
    if (sl->gen_live) engine_gen_end(&sl->g, rc == 0);
    sl->gen_live = false;
    slot_clear_todo(sl);
    sl->has_next = false;
    job->rc = rc;
    if (rc && err) job->err = *err;
}

/* Free slot for a prompt: the one whose cached ids share the longest prefix with it (at most
 * n - 1: the last prompt token is always evaluated, for its logits); ties, and jobs without a
 * prompt (ids NULL: embeddings), go to the slot with the least cached, to keep long caches. */
static int pick_slot(const sched_entry *e, const int32_t *ids, size_t n, int32_t *keep_out) {
    int best = -1;
    int32_t best_keep = -1;
    for (int i = 0; i < e->n_par; i++) {
        const sched_slot *sl = &e->slots[i];
        if (sl->job) continue;
        int32_t keep = 0;
        if (ids)
            while (keep < sl->n_past && (size_t)keep + 1 < n && sl->past[keep] == ids[keep]) keep++;
        if (keep > best_keep || (keep == best_keep && sl->n_past < e->slots[best].n_past)) best = i, best_keep = keep;
    }
    *keep_out = best_keep < 0 ? 0 : best_keep;
    return best;
}

/* Mean over each input's tokens of the final hidden state, L2-normalised, into job->out. */
static int run_embed(sched_entry *e, sched_slot *sl, int seq, seek_err *err) {
    sched_job *job = sl->job;
    const int64_t D = e->em->m->hp.n_embd;
    if (!e->embd) {
        e->embd = mem_alloc(sizeof(float) * SCHED_N_BATCH * (size_t)D);
        if (!e->embd) return err_set(err, SEEK_ENOMEM, "out of memory");
    }
    double *sum = calloc((size_t)D, sizeof *sum);
    if (!sum) return err_set(err, SEEK_ENOMEM, "out of memory");
    sl->n_past = 0; /* the region is overwritten: its cached ids are gone */
    int rc = 0;
    for (int i = 0; i < job->n_inputs && rc == 0; i++) {
        const int32_t *ids = job->in_ids[i];
        size_t n = job->in_n[i];
        memset(sum, 0, sizeof *sum * (size_t)D);
        for (size_t done = 0; done < n && rc == 0; done += SCHED_N_BATCH) {
            size_t T = n - done < SCHED_N_BATCH ? n - done : SCHED_N_BATCH;
            for (size_t t = 0; t < T; t++) {
                e->b_pos[t] = (int32_t)(done + t);
                e->b_seq[t] = seq;
            }
            rc = model_eval_embd(e->ctx, ids + done, e->b_pos, e->b_seq, (int64_t)T, e->embd, err);
            for (size_t t = 0; t < T && rc == 0; t++)
                for (int64_t j = 0; j < D; j++) sum[j] += e->embd[t * (size_t)D + (size_t)j];
        }
        if (rc) break;
        double norm = 0;
        for (int64_t j = 0; j < D; j++) {
            sum[j] /= (double)n;
            norm += sum[j] * sum[j];
        }
        norm = norm > 0 ? 1.0 / sqrt(norm) : 0.0;
        float *out = job->out + (size_t)i * (size_t)D;
        for (int64_t j = 0; j < D; j++) out[j] = (float)(sum[j] * norm);
    }
    free(sum);
    return rc;
}

/* A job just got slot i: start its generation (prompt tail queued for the next passes) or run its
 * embeddings.  Returns false when the job is already over. */
static bool slot_start(sched_entry *e, int i, int32_t keep) {
    sched_slot *sl = &e->slots[i];
    sched_job *job = sl->job;
    seek_err err = { 0 };
    sl->t_admit = time_now_ns();
    sl->has_next = false;
    if (job->kind == SCHED_JOB_EMBED) {
        slot_finish(sl, run_embed(e, sl, i, &err), &err);
        return false;
    }
    engine_stats *st = job->st;
    sl->n_past = keep;
    st->prompt_cached = keep;
    st->prompt_tokens = (int32_t)job->n_ids - keep;
    if (engine_gen_init(&sl->g, e->em, job->p, job->opens_think, job->ids, job->n_ids, job->emit, job->ud, st,
                        &err) != 0) {
        slot_finish(sl, -1, &err);
        return false;
    }
    sl->gen_live = true;
    sl->todo = (int32_t *)job->ids + keep;
    sl->n_todo = job->n_ids - (size_t)keep;
    sl->i_todo = 0;
    sl->todo_owned = false;
    sl->in_prompt = true;
    return true;
}

/* The logits that followed slot i's last evaluated token: one engine_generate loop turn.
 * after_token: the row follows a sampled token (not a prompt or bridge), so the thinking budget
 * is checked first.  Returns false when the sequence is over. */
static bool slot_step(sched_entry *e, int i, float *logits, bool after_token) {
    sched_slot *sl = &e->slots[i];
    seek_err err = { 0 };
    if (after_token) {
        int32_t *bridge;
        size_t nb;
        int r = engine_gen_budget(&sl->g, &bridge, &nb, &err);
        if (r < 0) {
            slot_finish(sl, -1, &err);
            return false;
        }
        if (r == 1) {
            if ((size_t)sl->n_past + nb > (size_t)e->num_ctx) {
                free(bridge);
                engine_gen_stop(&sl->g, "length");
                slot_finish(sl, 0, NULL);
                return false;
            }
            sl->todo = bridge;
            sl->n_todo = nb;
            sl->i_todo = 0;
            sl->todo_owned = true;
            sl->in_prompt = false;
            return true; /* this row's logits are superseded by the bridge's last token */
        }
    }
    int32_t tok;
    int r = engine_gen_next(&sl->g, logits, sl->n_past, e->num_ctx, &tok, &err);
    if (r <= 0) {
        slot_finish(sl, r, &err);
        return false;
    }
    sl->next_tok = tok;
    sl->has_next = true;
    return true;
}

/* ---- one pass ---------------------------------------------------------------------------------- */

/* Builds and runs one pass over the active slots; finished[] collects slots whose job ended. */
static void run_pass(sched_entry *e, int *finished, int *n_finished) {
    int n = 0, rows = 0;
    bool from_todo[SCHED_MAX_PARALLEL] = { false }; /* the slot's todo ends in this pass */
    bool in_pass[SCHED_MAX_PARALLEL] = { false };
    size_t todo_k[SCHED_MAX_PARALLEL] = { 0 };      /* todo tokens of the slot in this pass */
    /* decode rows first: they are at most n_par <= SCHED_N_BATCH */
    for (int i = 0; i < e->n_par; i++) {
        sched_slot *sl = &e->slots[i];
        if (!sl->job || !sl->has_next) continue;
        e->b_tok[n] = sl->next_tok;
        e->b_pos[n] = sl->n_past;
        e->b_seq[n] = i;
        e->b_want[n] = true;
        e->row_slot[rows++] = i;
        in_pass[i] = true;
        n++;
    }
    /* then prompt / bridge chunks while room is left */
    for (int i = 0; i < e->n_par && n < SCHED_N_BATCH; i++) {
        sched_slot *sl = &e->slots[i];
        if (!sl->job || sl->has_next || sl->i_todo >= sl->n_todo) continue;
        size_t k = sl->n_todo - sl->i_todo;
        if (k > (size_t)(SCHED_N_BATCH - n)) k = (size_t)(SCHED_N_BATCH - n);
        for (size_t j = 0; j < k; j++) {
            e->b_tok[n] = sl->todo[sl->i_todo + j];
            e->b_pos[n] = sl->n_past + (int32_t)j;
            e->b_seq[n] = i;
            e->b_want[n] = false;
            n++;
        }
        todo_k[i] = k;
        if (sl->i_todo + k == sl->n_todo) {
            e->b_want[n - 1] = true;
            e->row_slot[rows++] = i;
            from_todo[i] = true;
        }
        in_pass[i] = true;
    }
    if (n == 0) return;

    seek_err err = { 0 };
    uint64_t t0 = time_now_ns();
    int rc = model_eval_batch(e->ctx, e->b_tok, e->b_pos, e->b_seq, n, e->logits, e->b_want, &err);
    uint64_t t1 = time_now_ns();
    /* record what each region now holds */
    for (int t = 0; t < n && rc == 0; t++) {
        sched_slot *sl = &e->slots[e->b_seq[t]];
        sl->past[e->b_pos[t]] = e->b_tok[t];
        if (e->b_pos[t] + 1 > sl->n_past) sl->n_past = e->b_pos[t] + 1;
    }
    for (int i = 0; i < e->n_par; i++) {
        sched_slot *sl = &e->slots[i];
        if (!in_pass[i]) continue;
        if (rc) {
            sl->n_past = 0; /* the regions may be half written: forget them */
            slot_finish(sl, -1, &err);
            finished[(*n_finished)++] = i;
            continue;
        }
        if (sl->has_next) {
            sl->has_next = false;
        } else {
            sl->i_todo += todo_k[i];
            if (sl->in_prompt) sl->g.st->prompt_ns += t1 - t0;
        }
    }
    if (rc) return;
    for (int r = 0; r < rows; r++) {
        int i = e->row_slot[r];
        sched_slot *sl = &e->slots[i];
        float *row = e->logits + (size_t)r * (size_t)e->em->m->hp.n_vocab;
        bool after_token = !from_todo[i];
        if (from_todo[i]) {
            bool bridge = !sl->in_prompt;
            slot_clear_todo(sl);
            if (bridge) {
                seek_err berr = { 0 };
                if (engine_gen_bridge_done(&sl->g, &berr) != 0) {
                    slot_finish(sl, -1, &berr);
                    finished[(*n_finished)++] = i;
                    continue;
                }
            }
        }
        if (!slot_step(e, i, row, after_token)) finished[(*n_finished)++] = i;
    }
}

/* ---- the thread --------------------------------------------------------------------------------- */

/* Gives finished jobs back to their requesters (under the mutex). */
static void worker_hand_back(sched_entry *e, const int *finished, int n_finished) {
    for (int k = 0; k < n_finished; k++) {
        sched_slot *sl = &e->slots[finished[k]];
        sched_job *job = sl->job;
        sl->job = NULL;
        e->active--;
        job->finished = true;
        pthread_cond_signal(&job->done_cv);
    }
}

void *sched_worker_main(void *arg) {
    sched_entry *e = arg;
    int finished[SCHED_MAX_PARALLEL * 2];
    pthread_mutex_lock(e->mu);
    for (;;) {
        while (!e->stop && e->active == 0 && !e->q_head) pthread_cond_wait(&e->wake, e->mu);
        if (e->active == 0 && !e->q_head) break; /* stop, and nothing left to do */
        /* admit: FIFO, into the free slot with the best cached prefix */
        int admitted[SCHED_MAX_PARALLEL], n_admitted = 0;
        int32_t keeps[SCHED_MAX_PARALLEL];
        while (e->q_head && e->active < e->n_par) {
            sched_job *job = e->q_head;
            int32_t keep;
            int i = pick_slot(e, job->kind == SCHED_JOB_GENERATE ? job->ids : NULL, job->n_ids, &keep);
            e->q_head = job->next;
            if (!e->q_head) e->q_tail = NULL;
            e->n_queued--;
            e->slots[i].job = job;
            e->active++;
            keeps[n_admitted] = keep;
            admitted[n_admitted++] = i;
        }
        pthread_mutex_unlock(e->mu);

        int n_finished = 0;
        for (int k = 0; k < n_admitted; k++)
            if (!slot_start(e, admitted[k], keeps[k])) finished[n_finished++] = admitted[k];
        if (n_finished) {
            /* hand back early so a finished embedding does not wait for a pass */
            pthread_mutex_lock(e->mu);
            worker_hand_back(e, finished, n_finished);
            pthread_mutex_unlock(e->mu);
            n_finished = 0;
        }
        run_pass(e, finished, &n_finished);

        pthread_mutex_lock(e->mu);
        worker_hand_back(e, finished, n_finished);
    }
    pthread_mutex_unlock(e->mu);
    return NULL;
}
