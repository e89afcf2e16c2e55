/*
 * engine.c - loading a chat model and the generation loop (see engine.h for the data flow).
 *
 * What it is not: a scheduler.  One session is one sequence with its own KV cache; sched.c
 * batches many sequences into one forward pass, with the same loop in pieces (engine_impl.h).
 *
 * Prefix reuse: a session remembers the token ids its KV cache holds.  A new prompt that starts
 * with the same ids (the usual case in a chat: the previous turns) evaluates only the new tail;
 * the entries past the common prefix are simply overwritten.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../chat/chat.h"
#include "engine_impl.h"

const char *const ENGINE_DEFAULT_BRIDGE =
    "\n\nI have thought about this long enough; time to give the answer.";

/* The template used when a GGUF file carries none: ChatML, the most common format. */
static const char chatml_template[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}";

engine_model *engine_load(const char *path, seek_err *err) {
    uint64_t t0 = time_now_ns();
    engine_model *em = calloc(1, sizeof *em);
    if (!em) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(em->path, sizeof em->path, "%s", path);
    em->m = model_open(path, err);
    if (!em->m) goto fail;
    em->vocab = tok_load_gguf(em->m->file, err);
    if (!em->vocab) goto fail;
    if (tok_n_vocab(em->vocab) > em->m->hp.n_vocab) {
        err_set(err, SEEK_EFORMAT, "the vocabulary has %d tokens but the model only %lld outputs",
                tok_n_vocab(em->vocab), (long long)em->m->hp.n_vocab);
        goto fail;
    }
    gguf_str tmpl;
    em->has_template = gguf_get_str(em->m->file, "tokenizer.chat_template", &tmpl, NULL) == 0;
    if (em->has_template) {
        em->template_src = strndup(tmpl.ptr, tmpl.len);
    } else {
        em->template_src = strdup(chatml_template);
    }
    if (!em->template_src) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto fail;
    }
    em->reasoning = strstr(em->template_src, "<think>") != NULL;
    em->load_ns = time_now_ns() - t0;
    return em;
fail:
    err_prefix(err, "%s", path);
    engine_free(em);
    return NULL;
}

void engine_free(engine_model *em) {
    if (!em) return;
    tok_free(em->vocab);
    model_close(em->m);
    free(em->template_src);
    free(em);
}

int engine_set_template(engine_model *em, const char *template_src, seek_err *err) {
    char *t = strdup(template_src);
    if (!t) return err_set(err, SEEK_ENOMEM, "out of memory");
    free(em->template_src);
    em->template_src = t;
    em->has_template = true;
    em->reasoning = strstr(t, "<think>") != NULL;
    return 0;
}

sample_params engine_default_sampling(const engine_model *em) {
    sample_params p = sample_defaults();
    if (em->reasoning) {
        p.temperature = 0.6f; /* DeepSeek-R1 model card: 0.5-0.7, 0.6 recommended */
        p.top_p = 0.95f;
    }
    return p;
}

engine_params engine_default_params(const engine_model *em) {
    engine_params p;
    memset(&p, 0, sizeof p);
    p.sample = engine_default_sampling(em);
    p.num_predict = -1;
    p.think = -1;
    p.think_budget = 0;
    return p;
}

static const struct {
    const char *name;
    double lo, hi;
    bool integer;
} param_defs[] = {
    { "temperature", 0, 100, false }, { "top_p", 0, 1, false }, { "min_p", 0, 1, false },
    { "repeat_penalty", 0, 100, false }, { "presence_penalty", -100, 100, false },
    { "frequency_penalty", -100, 100, false }, { "top_k", 0, 1 << 30, true },
    { "repeat_last_n", -1, 1 << 20, true }, { "seed", -1, INT32_MAX, true },
    { "num_predict", -2, 1 << 24, true }, { "think_budget", 0, 1 << 24, true },
};

int engine_set_param(engine_params *p, const char *name, double v, seek_err *err) {
    size_t i = 0, n = sizeof param_defs / sizeof param_defs[0];
    while (i < n && strcmp(param_defs[i].name, name)) i++;
    if (i == n) return err_set(err, SEEK_ENOTFOUND, "unknown parameter '%s'", name);
    if (!(v >= param_defs[i].lo && v <= param_defs[i].hi) || (param_defs[i].integer && v != (double)(int64_t)v))
        return err_set(err, SEEK_EINVAL, "invalid value for %s: %.10g (expected %s from %.10g to %.10g)", name, v,
                       param_defs[i].integer ? "an integer" : "a number", param_defs[i].lo, param_defs[i].hi);
    sample_params *sp = &p->sample;
    switch (i) {
    case 0: sp->temperature = (float)v; break;
    case 1: sp->top_p = (float)v; break;
    case 2: sp->min_p = (float)v; break;
    case 3: sp->repeat_penalty = (float)v; break;
    case 4: sp->presence_penalty = (float)v; break;
    case 5: sp->frequency_penalty = (float)v; break;
    case 6: sp->top_k = (int32_t)v; break;
    case 7: sp->repeat_last_n = (int32_t)v; break;
    case 8:
        sp->has_seed = v >= 0;
        sp->seed = v >= 0 ? (uint64_t)v : 0;
        break;
    case 9: p->num_predict = (int32_t)v; break;
    case 10: p->think_budget = (int32_t)v; break;
    }
    return 0;
}

/* ---- sessions ------------------------------------------------------------------------------- */

struct engine_session {
    engine_model *em;
    model_ctx *ctx;
    int32_t n_ctx;
    int32_t *past;     /* ids whose K/V the cache holds, n_past of them */
    int32_t n_past;
    float *logits;     /* one row of V */
    bool load_reported;
};

engine_session *engine_session_new(engine_model *em, int32_t n_ctx, int n_threads, seek_err *err) {
    if (n_ctx <= 0) n_ctx = em->m->hp.n_ctx_train < 4096 ? (int32_t)em->m->hp.n_ctx_train : 4096;
    if (n_ctx > em->m->hp.n_ctx_train && em->m->hp.n_ctx_train > 0) {
        log_warn("context %d is longer than the model was trained for (%lld)", n_ctx,
                 (long long)em->m->hp.n_ctx_train);
    }
    if (n_threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = nc > 0 ? (int)nc : 1;
    }
    engine_session *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    s->em = em;
    s->n_ctx = n_ctx;
    s->past = malloc((size_t)n_ctx * sizeof *s->past);
    s->logits = malloc((size_t)em->m->hp.n_vocab * sizeof *s->logits);
    if (!s->past || !s->logits) {
        err_set(err, SEEK_ENOMEM, "out of memory for a context of %d tokens", n_ctx);
        engine_session_free(s);
        return NULL;
    }
    s->ctx = model_ctx_new(em->m, n_ctx, 512, n_threads, err);
    if (!s->ctx) {
        engine_session_free(s);
        return NULL;
    }
    return s;
}

void engine_session_free(engine_session *s) {
    if (!s) return;
    model_ctx_free(s->ctx);
    free(s->past);
    free(s->logits);
    free(s);
}

int32_t engine_session_n_ctx(const engine_session *s) { return s->n_ctx; }

void engine_session_reset(engine_session *s) { s->n_past = 0; }

/* Evaluates ids[0..n) after the cached sequence and records them; the last logits land in
 * s->logits. */
static int session_eval(engine_session *s, const int32_t *ids, int32_t n, seek_err *err) {
    if (s->n_past + n > s->n_ctx) {
        return err_set(err, SEEK_EINVAL, "context full (%d tokens)", s->n_ctx);
    }
    if (model_eval(s->ctx, ids, n, s->n_past, s->logits, false, err) != 0) {
        s->n_past = 0; /* the cache may be half written: forget it */
        return -1;
    }
    memcpy(s->past + s->n_past, ids, (size_t)n * sizeof *ids);
    s->n_past += n;
    return 0;
}

/* ---- output pipeline: decoded text -> stop strings -> reasoning parser -> caller ------------- */

static void pipe_reason_emit(void *ud, bool thinking, const char *text, size_t len) {
    engine_pipe *op = ud;
    if (op->cancelled || len == 0) return;
    if (!op->emit(op->ud, thinking, text, len)) op->cancelled = true;
}

/* Length of the longest suffix of buf[0..n) that is a proper prefix of some stop string. */
static size_t stop_prefix_tail(const engine_params *p, const char *buf, size_t n) {
    size_t best = 0;
    for (int i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        if (sl < 2) continue;
        for (size_t k = sl - 1 < n ? sl - 1 : n; k > best; k--)
            if (memcmp(buf + n - k, p->stop[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/* Adds decoded text; forwards what can no longer be part of a stop string. */
static int pipe_push(engine_pipe *op, const char *text, size_t len) {
    if (op->stopped || op->cancelled || len == 0) return 0;
    if (op->n_pending + len + 1 > op->cap_pending) {
        size_t cap = (op->n_pending + len + 1) * 2;
        char *np = realloc(op->pending, cap);
        if (!np) return -1;
        op->pending = np;
        op->cap_pending = cap;
    }
    memcpy(op->pending + op->n_pending, text, len);
    op->n_pending += len;
    op->pending[op->n_pending] = 0;
    /* earliest complete stop string */
    size_t cut = op->n_pending;
    for (int i = 0; i < op->p->n_stop; i++) {
        if (!op->p->stop[i][0]) continue;
        const char *hit = memmem(op->pending, op->n_pending, op->p->stop[i], strlen(op->p->stop[i]));
        if (hit && (size_t)(hit - op->pending) < cut) {
            cut = (size_t)(hit - op->pending);
            op->stopped = true;
        }
    }
    size_t out = op->stopped ? cut : op->n_pending - stop_prefix_tail(op->p, op->pending, op->n_pending);
    reason_feed(&op->rp, op->pending, out, pipe_reason_emit, op);
    memmove(op->pending, op->pending + out, op->n_pending - out);
    op->n_pending -= out;
    if (op->stopped) op->n_pending = 0;
    return 0;
}

static void pipe_finish(engine_pipe *op) {
    if (!op->stopped && op->n_pending) reason_feed(&op->rp, op->pending, op->n_pending, pipe_reason_emit, op);
    op->n_pending = 0;
    reason_flush(&op->rp, pipe_reason_emit, op);
}

/* Length of the valid UTF-8 character at s[0..n), or 0 if the bytes there are not one (overlong
 * forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
    if (s[0] < 0x80) return 1;
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (!len || s[0] > 0xF4 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (len == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (len == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return len;
}

/* Copies text to out (capacity 3n) with every byte that does not start a valid character replaced
 * by U+FFFD, as Hugging Face's decode does: streamed text is always valid UTF-8, which JSON
 * clients and terminals need.  A random or damaged model can emit byte tokens in any order. */
static size_t utf8_sanitize(const char *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_char_len((const unsigned char *)in + i, n - i);
        if (l) {
            memcpy(out + o, in + i, l);
            o += l, i += l;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        }
    }
    return o;
}

/* Decoded bytes -> valid UTF-8 -> the output pipeline. */
static int pipe_push_bytes(engine_pipe *op, const char *bytes, size_t n) {
    char clean[3 * 520];
    if (n > 520) return pipe_push_bytes(op, bytes, 520) || pipe_push_bytes(op, bytes + 520, n - 520);
    return pipe_push(op, clean, utf8_sanitize(bytes, n, clean));
}

/* ---- prompts --------------------------------------------------------------------------------- */

static bool starts_with(const char *s, const char *prefix) {
    return prefix && *prefix && strncmp(s, prefix, strlen(prefix)) == 0;
}

char *engine_render_chat(const engine_model *em, const json_t *messages, const json_t *tools, int think,
                         bool *opens, seek_err *err) {
    const tok_vocab *v = em->vocab;
    const char *bos = tok_bos(v) >= 0 ? tok_text(v, tok_bos(v)) : "";
    const char *eos = tok_eos(v) >= 0 ? tok_text(v, tok_eos(v)) : "";
    chat_input in = {
        .messages = messages, .tools = tools, .add_generation_prompt = true,
        .bos_token = bos, .eos_token = eos,
    };
    char *prompt = chat_render(em->template_src, &in, err);
    if (!prompt) {
        err_prefix(err, "chat template");
        return NULL;
    }
    *opens = chat_prompt_opens_think(prompt);
    if (think == 0 && *opens) {
        /* an empty thought: the model card's way of answering without reasoning */
        size_t n = strlen(prompt);
        char *np = realloc(prompt, n + 16);
        if (!np) {
            free(prompt);
            err_set(err, SEEK_ENOMEM, "out of memory");
            return NULL;
        }
        prompt = np;
        memcpy(prompt + n, "\n</think>\n\n", 12);
        *opens = false;
    }
    return prompt;
}

int engine_tokenize_prompt(const engine_model *em, const char *prompt, int32_t n_ctx, int32_t **ids,
                           size_t *n_ids, seek_err *err) {
    const tok_vocab *v = em->vocab;
    int32_t bos = tok_bos(v);
    bool add_bos = tok_add_bos(v) && bos >= 0 && !starts_with(prompt, tok_text(v, bos));
    *ids = NULL;
    *n_ids = 0;
    if (tok_encode(v, prompt, strlen(prompt), add_bos, true, ids, n_ids, err) != 0) return -1;
    if (*n_ids == 0) {
        free(*ids);
        *ids = NULL;
        return err_set(err, SEEK_EINVAL, "empty prompt");
    }
    if ((int64_t)*n_ids >= n_ctx) {
        size_t n = *n_ids;
        free(*ids);
        *ids = NULL;
        *n_ids = 0;
        return err_set(err, SEEK_EINVAL, "the prompt is %zu tokens but the context holds %d; "
                       "raise num_ctx or shorten the conversation", n, n_ctx);
    }
    return 0;
}

/* ---- generation, step by step ---------------------------------------------------------------- */

int engine_gen_init(engine_gen *g, const engine_model *em, const engine_params *p, bool opens_think,
                    const int32_t *prompt, size_t n_prompt, engine_emit_fn emit, void *ud, engine_stats *st,
                    seek_err *err) {
    memset(g, 0, sizeof *g);
    g->em = em;
    g->p = p;
    g->st = st;
    g->smp = sample_new(&p->sample, (int32_t)em->m->hp.n_vocab);
    if (!g->smp) return err_set(err, SEEK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_prompt; i++) sample_accept(g->smp, prompt[i]);
    g->op = (engine_pipe){ .p = p, .emit = emit, .ud = ud };
    reason_init(&g->op.rp, opens_think);
    tok_decoder_init(&g->dec);
    st->done_reason = "stop";
    g->t0 = time_now_ns();
    return 0;
}

int engine_gen_next(engine_gen *g, float *logits, int32_t n_past, int32_t n_ctx, int32_t *tok, seek_err *err) {
    engine_stats *st = g->st;
    if (g->done) return 0;
    if ((g->p->num_predict > 0 && st->eval_tokens >= g->p->num_predict) || n_past >= n_ctx) {
        st->done_reason = "length";
        g->done = true;
        return 0;
    }
    int32_t t = sample_next(g->smp, logits);
    sample_accept(g->smp, t);
    st->eval_tokens++;
    if (reason_in_thinking(&g->op.rp)) st->thinking_tokens++;
    if (tok_is_eog(g->em->vocab, t)) { /* not evaluated: the next prompt re-renders the turn's end */
        g->done = true;
        return 0;
    }
    char buf[512];
    size_t n = tok_decoder_push(g->em->vocab, &g->dec, t, true, buf, sizeof buf);
    if (pipe_push_bytes(&g->op, buf, n)) {
        g->done = true;
        return err_set(err, SEEK_ENOMEM, "out of memory");
    }
    if (g->op.stopped || g->op.cancelled) {
        g->done = true;
        return 0;
    }
    *tok = t;
    return 1;
}

int engine_gen_budget(engine_gen *g, int32_t **ids, size_t *n_ids, seek_err *err) {
    const engine_params *p = g->p;
    engine_stats *st = g->st;
    *ids = NULL;
    *n_ids = 0;
    if (g->done || p->think_budget <= 0 || !reason_in_thinking(&g->op.rp) || st->thinking_tokens < p->think_budget ||
        st->budget_hit)
        return 0;
    /* Closes the thought early: bridge + "</think>\n\n" is evaluated like prompt text and shown as
     * the end of the thought once it is in the cache. */
    st->budget_hit = true;
    char tail[16];
    size_t nt = tok_decoder_flush(&g->dec, tail, sizeof tail);
    if (pipe_push_bytes(&g->op, tail, nt)) return err_set(err, SEEK_ENOMEM, "out of memory");
    const char *bridge = p->think_bridge ? p->think_bridge : ENGINE_DEFAULT_BRIDGE;
    size_t bl = strlen(bridge);
    char *text = malloc(bl + 16);
    if (!text) return err_set(err, SEEK_ENOMEM, "out of memory");
    memcpy(text, bridge, bl);
    memcpy(text + bl, "\n</think>\n\n", 12);
    if (tok_encode(g->em->vocab, text, strlen(text), false, true, ids, n_ids, err) != 0) {
        free(text);
        return -1;
    }
    if (*n_ids == 0) { /* cannot happen: the text is not empty */
        free(*ids);
        *ids = NULL;
        free(text);
        return 0;
    }
    g->bridge = text;
    return 1;
}

int engine_gen_bridge_done(engine_gen *g, seek_err *err) {
    int rc = 0;
    if (g->bridge && pipe_push(&g->op, g->bridge, strlen(g->bridge))) rc = err_set(err, SEEK_ENOMEM, "out of memory");
    free(g->bridge);
    g->bridge = NULL;
    return rc;
}

void engine_gen_stop(engine_gen *g, const char *reason) {
    g->st->done_reason = reason;
    g->done = true;
}

void engine_gen_end(engine_gen *g, bool ok) {
    if (g->op.cancelled) g->st->done_reason = "cancel";
    if (ok) {
        char buf[64];
        size_t n = tok_decoder_flush(&g->dec, buf, sizeof buf);
        pipe_push_bytes(&g->op, buf, n);
        pipe_finish(&g->op);
    }
    g->st->eval_ns = time_now_ns() - g->t0;
    free(g->op.pending);
    free(g->bridge);
    sample_free(g->smp);
    memset(g, 0, sizeof *g);
}

/* ---- generation in a session ----------------------------------------------------------------- */

int engine_generate(engine_session *s, const char *prompt, bool opens_think, const engine_params *p,
                    engine_emit_fn emit, void *ud, engine_stats *st, seek_err *err) {
    uint64_t t_start = time_now_ns();
    memset(st, 0, sizeof *st);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (engine_tokenize_prompt(s->em, prompt, s->n_ctx, &ids, &n_ids, err) != 0) return -1;

    /* reuse the cached prefix; always evaluate at least the last prompt token for its logits */
    int32_t keep = 0;
    while (keep < s->n_past && keep < (int32_t)n_ids - 1 && s->past[keep] == ids[keep]) keep++;
    s->n_past = keep;
    st->prompt_cached = keep;
    st->prompt_tokens = (int32_t)n_ids - keep;
    uint64_t t0 = time_now_ns();
    int rc = session_eval(s, ids + keep, (int32_t)n_ids - keep, err);
    st->prompt_ns = time_now_ns() - t0;
    if (rc == 0) {
        engine_gen g;
        rc = engine_gen_init(&g, s->em, p, opens_think, ids, n_ids, emit, ud, st, err);
        int32_t tok = 0;
        while (rc == 0) {
            int r = engine_gen_next(&g, s->logits, s->n_past, s->n_ctx, &tok, err);
            if (r <= 0) {
                rc = r;
                break;
            }
            if (session_eval(s, &tok, 1, err) != 0) {
                rc = -1;
                break;
            }
            int32_t *bridge;
            size_t nb;
            r = engine_gen_budget(&g, &bridge, &nb, err);
            if (r < 0) rc = -1;
            if (r == 1) {
                if (session_eval(s, bridge, (int32_t)nb, err) == 0) {
                    rc = engine_gen_bridge_done(&g, err);
                } else {
                    if (err->code != SEEK_EINVAL) rc = -1;
                    engine_gen_stop(&g, "length");
                }
                free(bridge);
            }
        }
        if (g.smp) engine_gen_end(&g, rc == 0);
    }
    free(ids);
    if (rc) return -1;
    if (!s->load_reported) {
        s->load_reported = true;
        st->load_ns = s->em->load_ns;
    }
    st->total_ns = time_now_ns() - t_start + st->load_ns;
    return rc;
}

int engine_chat(engine_session *s, const json_t *messages, const json_t *tools, const engine_params *p,
                engine_emit_fn emit, void *ud, engine_stats *st, seek_err *err) {
    bool opens;
    char *prompt = engine_render_chat(s->em, messages, tools, p->think, &opens, err);
    if (!prompt) return -1;
    int rc = engine_generate(s, prompt, opens, p, emit, ud, st, err);
    free(prompt);
    return rc;
}
