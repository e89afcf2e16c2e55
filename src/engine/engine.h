/*
 * engine.h - the generation loop: a loaded model with its tokenizer and chat template, sessions
 * that keep a KV cache between turns, and one call that turns a conversation into streamed
 * thinking and answer text.
 *
 * Data flow of engine_chat:
 *   messages --chat template--> prompt text --tokenizer--> ids --(reuse the cached prefix)--> forward
 *   --> logits --sampler--> token --streaming decoder--> whole UTF-8 characters --stop strings-->
 *   --reasoning parser--> callback(thinking?, text).
 *
 * Thinking budget: when a thought has used `think_budget` sampled tokens, the engine itself appends
 * the bridge text and "</think>\n\n" to the sequence (evaluated like prompt text, shown as the end of
 * the thought) and lets the model answer.
 *
 * Ownership: engine_model owns the mapped model, the vocab and the template text.  An engine_session
 * borrows its model (which must outlive it) and owns a KV cache; one thread uses a session at a time.
 */
#ifndef SEEK_ENGINE_H
#define SEEK_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/base.h"
#include "../model/model.h"
#include "../sample/sample.h"
#include "../tok/tok.h"

typedef struct engine_model {
    model *m;
    tok_vocab *vocab;
    char *template_src;   /* tokenizer.chat_template, or a ChatML fallback when the file has none */
    bool has_template;    /* false when the fallback is used */
    bool reasoning;       /* the template opens a <think> section (the DeepSeek-R1 family) */
    uint64_t load_ns;     /* time engine_load took */
    char path[1024];
} engine_model;

engine_model *engine_load(const char *path, seek_err *err);
void engine_free(engine_model *em);
/* Replaces the chat template (a Modelfile's TEMPLATE); returns 0 or -1 (out of memory). */
int engine_set_template(engine_model *em, const char *template_src, seek_err *err);

/* Sampler defaults for this model: Ollama's, except the R1 model card's temperature 0.6 and top_p
 * 0.95 for reasoning models. */
sample_params engine_default_sampling(const engine_model *em);

#define ENGINE_MAX_STOP 16

typedef struct engine_params {
    sample_params sample;
    int32_t num_predict;              /* max sampled tokens; <= 0: until the context is full */
    const char *stop[ENGINE_MAX_STOP];/* stop strings (not included in the output) */
    int n_stop;
    int think;                        /* -1: the template decides; 0: ask the model not to think; 1: think */
    int32_t think_budget;             /* <= 0: unlimited */
    const char *think_bridge;         /* text before the forced "</think>"; NULL: the default */
} engine_params;

engine_params engine_default_params(const engine_model *em);

/* Sets one sampling or generation parameter by its Modelfile / Ollama option name (temperature,
 * top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty, top_k, repeat_last_n, seed,
 * num_predict, think_budget), checking its range (and that integer parameters get integers).
 * Returns 0; -1 with SEEK_ENOTFOUND for another name, SEEK_EINVAL for a bad value.  One table for
 * `seek run`'s /set parameter and the scheduler's Modelfile defaults. */
int engine_set_param(engine_params *p, const char *name, double value, seek_err *err);
extern const char *const ENGINE_DEFAULT_BRIDGE;

typedef struct engine_stats {
    uint64_t total_ns, load_ns, prompt_ns, eval_ns;
    int32_t prompt_tokens;   /* prompt tokens evaluated this call (cached prefix excluded) */
    int32_t prompt_cached;   /* prompt tokens reused from the session's KV cache */
    int32_t eval_tokens;     /* tokens sampled */
    int32_t thinking_tokens; /* of which inside a thought */
    bool budget_hit;         /* the thinking budget closed the thought */
    const char *done_reason; /* "stop" (end token or stop string), "length", "cancel" */
} engine_stats;

/* Streaming callback: a piece of thinking or answer text (whole UTF-8 characters).  Return false to
 * stop generating (cancellation); the call then ends with done_reason "cancel". */
typedef bool (*engine_emit_fn)(void *ud, bool thinking, const char *text, size_t len);

typedef struct engine_session engine_session;

/* n_ctx <= 0 picks min(4096, the model's training context); n_threads <= 0 picks the core count. */
engine_session *engine_session_new(engine_model *em, int32_t n_ctx, int n_threads, seek_err *err);
void engine_session_free(engine_session *s);
int32_t engine_session_n_ctx(const engine_session *s);
/* Forgets the cached sequence (the next call evaluates its whole prompt). */
void engine_session_reset(engine_session *s);

/* Renders `messages` (JSON array of {role, content}) with the model's template, asks for thinking
 * or not (params->think), and generates.  Fills *st; returns 0, or -1 with err set (prompt too long
 * for the context, template error, ...). */
int engine_chat(engine_session *s, const json_t *messages, const json_t *tools, const engine_params *p,
                engine_emit_fn emit, void *ud, engine_stats *st, seek_err *err);

/* Generates from already-rendered prompt text (special-token text is parsed; BOS is added when the
 * vocab wants one and the text does not start with it).  opens_think: the prompt ends inside a
 * thought. */
int engine_generate(engine_session *s, const char *prompt, bool opens_think, const engine_params *p,
                    engine_emit_fn emit, void *ud, engine_stats *st, seek_err *err);

#endif
