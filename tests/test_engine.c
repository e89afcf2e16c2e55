/*
 * test_engine.c - the generation loop on a llama.cpp-made fixture (random weights, real R1
 * vocabulary and template): BOS not doubled, the cached prefix gives the same tokens as a fresh
 * session, stop strings cut output exactly (also across token boundaries), num_predict and the
 * context bound, the thinking budget, think=false, cancellation from the callback, and the
 * streamed text is valid UTF-8.
 *
 * Expected outputs come from the same engine run without the feature under test (a fresh session
 * instead of a cached one, no stop string instead of one), so each check isolates one mechanism;
 * the forward pass itself is checked against numpy and llama.cpp elsewhere.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "chat/chat.h"
#include "engine/engine.h"
#include "testutil.h"

typedef struct {
    char text[65536];
    size_t n;
    char thinking[65536];
    size_t n_thinking;
    int calls;
    int cancel_after; /* stop after this many calls (0: never) */
    bool empty_piece;
} sink;

static bool collect(void *ud, bool thinking, const char *text, size_t len) {
    sink *s = ud;
    if (len == 0) s->empty_piece = true;
    char *dst = thinking ? s->thinking : s->text;
    size_t *n = thinking ? &s->n_thinking : &s->n;
    if (*n + len < sizeof s->text) {
        memcpy(dst + *n, text, len);
        *n += len;
        dst[*n] = 0;
    }
    s->calls++;
    return !(s->cancel_after && s->calls >= s->cancel_after);
}

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (!l || i + l > n) return false;
        for (size_t k = 1; k < l; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return false;
        i += l;
    }
    return true;
}

static engine_params greedy(const engine_model *em, int num_predict) {
    engine_params p = engine_default_params(em);
    p.sample.temperature = 0;
    p.num_predict = num_predict;
    return p;
}

static void gen(engine_session *s, const char *prompt, bool opens, const engine_params *p, sink *out,
                engine_stats *st) {
    memset(out, 0, sizeof *out);
    seek_err err = { 0 };
    int rc = engine_generate(s, prompt, opens, p, collect, out, st, &err);
    CHECK(rc == 0, "engine_generate: %s", err.msg);
}

static void test_bos_and_cache(engine_model *em) {
    seek_err err = { 0 };
    engine_session *s = engine_session_new(em, 512, 2, &err);
    CHECK(s != NULL, "session: %s", err.msg);
    if (!s) return;
    const char *bos = tok_text(em->vocab, tok_bos(em->vocab));
    char prompt[512];
    snprintf(prompt, sizeof prompt, "%s<｜User｜>Hello there<｜Assistant｜><think>\n", bos);
    int32_t *ids;
    size_t n;
    tok_encode(em->vocab, prompt, strlen(prompt), false, true, &ids, &n, &err);
    CHECK(n > 3 && ids[0] == tok_bos(em->vocab) && ids[1] != tok_bos(em->vocab), "the template's BOS is one token");
    engine_params p = greedy(em, 12);
    sink a, b, c;
    engine_stats st;
    gen(s, prompt, true, &p, &a, &st);
    CHECK(st.prompt_tokens == (int32_t)n, "prompt starting with BOS text: %d tokens evaluated, want %zu (no doubled BOS)",
          st.prompt_tokens, n);
    CHECK(st.eval_tokens <= 12 && st.eval_tokens >= 1, "num_predict bounds output: %d", st.eval_tokens);
    CHECK(!a.empty_piece, "no empty pieces");
    CHECK(valid_utf8(a.text, a.n) && valid_utf8(a.thinking, a.n_thinking), "streamed text is valid UTF-8");

    /* without the BOS text, the vocab's add_bos adds one */
    const char *nobos = prompt + strlen(bos);
    engine_session_reset(s);
    gen(s, nobos, true, &p, &b, &st);
    CHECK(st.prompt_tokens == (int32_t)n, "BOS added when the text lacks it: %d vs %zu", st.prompt_tokens, n);
    CHECK(b.n_thinking == a.n_thinking && !memcmp(a.thinking, b.thinking, a.n_thinking),
          "same tokens either way");

    /* a longer prompt with the same prefix reuses the cache and gives what a fresh session gives */
    char longer[1024];
    snprintf(longer, sizeof longer, "%s<｜User｜>Hello there<｜Assistant｜>Hi!<｜end▁of▁sentence｜><｜User｜>And again?"
             "<｜Assistant｜><think>\n", bos);
    gen(s, longer, true, &p, &b, &st);
    CHECK(st.prompt_cached >= 3, "cached prefix reused: %d tokens", st.prompt_cached);
    engine_session *fresh = engine_session_new(em, 512, 2, &err);
    engine_stats st2;
    gen(fresh, longer, true, &p, &c, &st2);
    CHECK(st2.prompt_cached == 0, "fresh session has no cache");
    CHECK(b.n_thinking == c.n_thinking && !memcmp(b.thinking, c.thinking, b.n_thinking) && b.n == c.n &&
          !memcmp(b.text, c.text, b.n), "cached and fresh sessions generate the same text");
    CHECK(st.prompt_cached + st.prompt_tokens == st2.prompt_tokens, "token accounting: %d + %d vs %d",
          st.prompt_cached, st.prompt_tokens, st2.prompt_tokens);
    engine_session_free(fresh);
    free(ids);
    engine_session_free(s);
}

static void test_stop_strings(engine_model *em) {
    seek_err err = { 0 };
    engine_session *s = engine_session_new(em, 512, 2, &err);
    if (!s) return;
    const char *prompt = "<｜User｜>Tell me something<｜Assistant｜>";
    engine_params p = greedy(em, 40);
    sink full, cut;
    engine_stats st;
    gen(s, prompt, false, &p, &full, &st);
    CHECK(full.n > 20, "greedy content to cut: %zu bytes", full.n);
    /* every stop string taken from the text at several offsets and lengths */
    int tried = 0;
    for (size_t at = 1; at + 6 < full.n && tried < 12; at += full.n / 10 + 1) {
        for (size_t len = 2; len <= 6; len += 4) {
            char stop[16];
            memcpy(stop, full.text + at, len);
            stop[len] = 0;
            if (!valid_utf8(stop, len)) continue;
            const char *first = strstr(full.text, stop);
            size_t expect = (size_t)(first - full.text);
            engine_params q = p;
            q.stop[0] = stop;
            q.n_stop = 1;
            gen(s, prompt, false, &q, &cut, &st);
            CHECK(cut.n == expect && !memcmp(cut.text, full.text, expect) && !strcmp(st.done_reason, "stop"),
                  "stop %s at %zu: got %zu bytes, want %zu", stop, at, cut.n, expect);
            tried++;
        }
    }
    CHECK(tried >= 4, "enough stop cases: %d", tried);
    /* a stop string that never appears changes nothing, and a prefix of it at the end is released */
    engine_params q = p;
    q.stop[0] = "\x01never\x02";
    q.n_stop = 1;
    gen(s, prompt, false, &q, &cut, &st);
    CHECK(cut.n == full.n && !memcmp(cut.text, full.text, full.n), "absent stop string: same output");
    CHECK(!strcmp(st.done_reason, "length"), "num_predict ends with done_reason length: %s", st.done_reason);
    engine_session_free(s);
}

static void test_budget_and_think(engine_model *em) {
    seek_err err = { 0 };
    engine_session *s = engine_session_new(em, 512, 2, &err);
    if (!s) return;
    const char *prompt = "<｜User｜>Think hard<｜Assistant｜><think>\n";
    engine_params p = greedy(em, 30);
    p.think_budget = 5;
    p.think_bridge = "\nEnough.";
    sink out;
    engine_stats st;
    gen(s, prompt, true, &p, &out, &st);
    CHECK(st.budget_hit, "the budget closed the thought");
    CHECK(st.thinking_tokens == 5, "thinking tokens counted up to the budget: %d", st.thinking_tokens);
    CHECK(out.n_thinking >= 8 && strstr(out.thinking, "\nEnough.") != NULL, "bridge shown at the end of the thought: %s",
          out.thinking);
    CHECK(strstr(out.thinking, "</think>") == NULL && strstr(out.text, "</think>") == NULL, "tag text not emitted");
    CHECK(st.eval_tokens > 5, "the model answers after the budget: %d tokens", st.eval_tokens);

    /* think=false through engine_chat: the template's open thought is closed before generation */
    json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", "Hi");
    engine_params q = greedy(em, 10);
    q.think = 0;
    memset(&out, 0, sizeof out);
    int rc = engine_chat(s, msgs, NULL, &q, collect, &out, &st, &err);
    CHECK(rc == 0 && out.n_thinking == 0, "think=false: no thinking text (%zu bytes)", out.n_thinking);
    q.think = -1;
    memset(&out, 0, sizeof out);
    rc = engine_chat(s, msgs, NULL, &q, collect, &out, &st, &err);
    CHECK(rc == 0 && out.n_thinking > 0, "default: the R1 template opens a thought");

    /* cancellation */
    engine_params r = greedy(em, 200);
    memset(&out, 0, sizeof out);
    out.cancel_after = 3;
    rc = engine_chat(s, msgs, NULL, &r, collect, &out, &st, &err);
    CHECK(rc == 0 && !strcmp(st.done_reason, "cancel") && out.calls == 3 && st.eval_tokens < 20,
          "callback cancels: reason %s, %d calls, %d tokens", st.done_reason, out.calls, st.eval_tokens);
    json_decref(msgs);
    engine_session_free(s);
}

static void test_context_bound(engine_model *em) {
    seek_err err = { 0 };
    engine_session *s = engine_session_new(em, 32, 2, &err);
    if (!s) return;
    engine_params p = greedy(em, 0); /* until the context is full */
    sink out;
    engine_stats st;
    gen(s, "<｜User｜>Hi<｜Assistant｜>", false, &p, &out, &st);
    CHECK(!strcmp(st.done_reason, "length") || !strcmp(st.done_reason, "stop"), "ends at the context: %s",
          st.done_reason);
    CHECK(st.prompt_tokens + st.eval_tokens <= 33, "never past the context: %d + %d", st.prompt_tokens,
          st.eval_tokens);
    char big[4096] = "";
    for (int i = 0; i < 100; i++) strcat(big, "word ");
    memset(&out, 0, sizeof out);
    int rc = engine_generate(s, big, false, &p, collect, &out, &st, &err);
    CHECK(rc != 0 && strstr(err.msg, "context") != NULL, "too long a prompt is an error: %s", err.msg);
    engine_session_free(s);
}

int main(void) {
    base_init();
    char path[512];
    snprintf(path, sizeof path, "%s/qwen2-mini-Q8_0.gguf", test_fixture_dir());
    seek_err err = { 0 };
    engine_model *em = engine_load(path, &err);
    CHECK(em != NULL, "load %s: %s", path, err.msg);
    if (!em) return check_done("test_engine");
    CHECK(em->reasoning && em->has_template, "the fixture's R1 template is recognised");
    sample_params sp = engine_default_sampling(em);
    CHECK(sp.temperature == 0.6f && sp.top_p == 0.95f, "R1 defaults: temperature 0.6, top_p 0.95");
    test_bos_and_cache(em);
    test_stop_strings(em);
    test_budget_and_think(em);
    test_context_bound(em);
    engine_free(em);
    return check_done("test_engine");
}
