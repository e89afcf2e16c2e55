/*
 * engine_impl.h - the generation loop in pieces, shared by engine.c (one session, one sequence)
 * and sched.c (many sequences decoded in one batch).  Not a public API: only src/engine/ includes
 * it.
 *
 * engine_generate is, in these terms:
 *
 *   ids = engine_tokenize_prompt(prompt)         evaluate ids (the cached prefix skipped)
 *   engine_gen_init(g, ids)
 *   loop:  r = engine_gen_next(g, logits, n_past, n_ctx, &tok)    sample, stream, stop checks
 *          if r != 1: break
 *          evaluate tok                           (the scheduler: in the next batched pass)
 *          if engine_gen_budget(g, &bridge) == 1: the thinking budget is used up:
 *              evaluate bridge ids, then engine_gen_bridge_done(g)
 *              (or, when they do not fit the context, engine_gen_stop(g, "length"))
 *   engine_gen_end(g)
 *
 * Keeping the loop's decisions in these functions is what makes a batched sequence produce
 * exactly the text the same request produces alone.
 */
#ifndef SEEK_ENGINE_IMPL_H
#define SEEK_ENGINE_IMPL_H

#include "../chat/chat.h"
#include "engine.h"

/* Renders messages with em's template; with think == 0 and a template that opens a thought,
 * closes it at once (an empty thought: the R1 model card's way to answer without reasoning).
 * *opens: the prompt ends inside a thought.  Returns malloc'd text (caller frees) or NULL with
 * err. */
char *engine_render_chat(const engine_model *em, const json_t *messages, const json_t *tools, int think,
                         bool *opens, seek_err *err);

/* Tokenizes rendered prompt text (special-token text parsed; BOS added when the vocab wants one
 * and the text does not start with it).  SEEK_EINVAL for an empty prompt or one of n_ctx tokens
 * or more (no room to generate).  *ids is malloc'd (caller frees). */
int engine_tokenize_prompt(const engine_model *em, const char *prompt, int32_t n_ctx, int32_t **ids,
                           size_t *n_ids, seek_err *err);

/* The output pipeline: decoded text -> stop strings -> reasoning parser -> caller. */
typedef struct engine_pipe {
    const engine_params *p;
    engine_emit_fn emit;
    void *ud;
    bool cancelled;
    bool stopped;       /* a stop string matched */
    char *pending;      /* text held back because it may begin a stop string */
    size_t n_pending, cap_pending;
    reason_parser rp;
} engine_pipe;

/* One sequence's generation state after its prompt. */
typedef struct engine_gen {
    const engine_model *em;
    const engine_params *p; /* borrowed: must outlive the generation */
    engine_stats *st;       /* filled as it goes; done_reason final after engine_gen_end */
    sampler *smp;
    engine_pipe op;
    tok_decoder dec;
    char *bridge;           /* bridge text waiting for its tokens to be evaluated */
    uint64_t t0;            /* start of generation (for eval_ns) */
    bool done;
} engine_gen;

/* Starts generating after prompt ids (given to the sampler's penalty history).  Sets
 * st->done_reason to "stop"; leaves the other stats as they are.  -1 with err on allocation
 * failure (nothing to end then). */
int engine_gen_init(engine_gen *g, const engine_model *em, const engine_params *p, bool opens_think,
                    const int32_t *prompt, size_t n_prompt, engine_emit_fn emit, void *ud, engine_stats *st,
                    seek_err *err);

/* With the logits (modified) that followed the last evaluated token and the sequence's length
 * n_past in a context of n_ctx: checks num_predict and the context, samples, streams the text,
 * checks end tokens, stop strings and cancellation.  Returns 1 when *tok must be evaluated before
 * the next call, 0 when the generation is over, -1 with err (out of memory). */
int engine_gen_next(engine_gen *g, float *logits, int32_t n_past, int32_t n_ctx, int32_t *tok, seek_err *err);

/* After the token from engine_gen_next was evaluated: whether the thinking budget closes the
 * thought now.  Returns 1 with *ids (malloc'd, caller frees) to evaluate next, followed by
 * engine_gen_bridge_done; 0 when nothing is due; -1 with err. */
int engine_gen_budget(engine_gen *g, int32_t **ids, size_t *n_ids, seek_err *err);
/* The bridge tokens were evaluated: shows the bridge text as the end of the thought. */
int engine_gen_bridge_done(engine_gen *g, seek_err *err);

/* Ends generation early with a done_reason ("length" when the bridge does not fit). */
void engine_gen_stop(engine_gen *g, const char *reason);

/* Finishes: with ok, flushes held-back text to the caller; sets done_reason "cancel" if the
 * caller cancelled, and eval_ns; frees the state. */
void engine_gen_end(engine_gen *g, bool ok);

#endif
