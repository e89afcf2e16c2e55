/*
 * test_reason.c - the streaming <think> parser (src/chat/reason.c) against a whole-string reference.
 *
 * ref_split() below applies the rules of reason.c's header to a complete output at once (no state
 * machine, no holding back).  Each output in the table, and a few thousand random ones built from
 * tag fragments, is fed to the parser whole, cut into every 2 and 3 pieces, and byte by byte, in both
 * start modes; the concatenated thinking and content must equal the reference's, emit must never see
 * empty text, n_thinking_bytes must count the thinking bytes, and reason_in_thinking() before the
 * flush must say whether the reference left a thought open.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "chat/chat.h"
#include "check.h"
#include "testutil.h"

#define MAXS 512

/* ---- reference: the rules on a whole string ------------------------------------------------------------ */

typedef struct {
    char thinking[MAXS], content[MAXS];
    bool open_at_end; /* a thought opened and was not closed */
} split;

static bool ws(char c) { return c && strchr(" \t\n\r\v\f", c) != NULL; }

static void ref_split(const char *s, bool start_thinking, split *out) {
    const char *open = "<think>", *close = "</think>";
    memset(out, 0, sizeof *out);
    size_t i = 0;
    if (start_thinking) {
        while (ws(s[i])) i++;
        if (strncmp(s + i, open, 7) == 0) i += 7;
    } else {
        size_t w = 0;
        while (ws(s[w])) w++;
        if (w > 8 || strncmp(s + w, open, 7) != 0) {
            strcpy(out->content, s);
            return;
        }
        i = w + 7;
    }
    while (ws(s[i])) i++;
    const char *end = strstr(s + i, close);
    if (!end) {
        strcpy(out->thinking, s + i);
        out->open_at_end = true;
        return;
    }
    memcpy(out->thinking, s + i, (size_t)(end - (s + i)));
    const char *rest = end + 8;
    while (ws(*rest)) rest++;
    strcpy(out->content, rest);
}

/* ---- streaming side ------------------------------------------------------------------------------------ */

typedef struct {
    split got;
    size_t n_think, n_content;
    int empty_emits;
    int overflow;
} collector;

static void collect(void *ud, bool thinking, const char *text, size_t len) {
    collector *c = ud;
    if (len == 0) c->empty_emits++;
    char *dst = thinking ? c->got.thinking : c->got.content;
    size_t *n = thinking ? &c->n_think : &c->n_content;
    if (*n + len >= MAXS) {
        c->overflow++;
        return;
    }
    memcpy(dst + *n, text, len);
    *n += len;
    dst[*n] = 0;
}

/* Feeds s cut at the given points (ascending, each in (0, len)); returns false on a mismatch. */
static bool run_cuts(const char *s, bool start_thinking, const size_t *cuts, int n_cuts, const split *want,
                     const char *how) {
    collector c;
    memset(&c, 0, sizeof c);
    reason_parser p;
    reason_init(&p, start_thinking);
    size_t len = strlen(s), from = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t to = i < n_cuts ? cuts[i] : len;
        reason_feed(&p, s + from, to - from, collect, &c);
        from = to;
    }
    reason_feed(&p, s, 0, collect, &c); /* empty feeds are allowed and emit nothing */
    bool open = reason_in_thinking(&p);
    reason_flush(&p, collect, &c);
    bool ok = strcmp(c.got.thinking, want->thinking) == 0 && strcmp(c.got.content, want->content) == 0 &&
              c.empty_emits == 0 && !c.overflow && p.n_thinking_bytes == c.n_think &&
              open == want->open_at_end;
    if (!ok) {
        printf("  input \"%s\" start_thinking=%d cut %s", s, start_thinking, how);
        for (int i = 0; i < n_cuts; i++) printf(" %zu", cuts[i]);
        printf("\n  got  thinking \"%s\" content \"%s\" empty_emits %d open %d n_thinking_bytes %zu\n",
               c.got.thinking, c.got.content, c.empty_emits, open, p.n_thinking_bytes);
        printf("  want thinking \"%s\" content \"%s\" open %d\n", want->thinking, want->content,
               want->open_at_end);
    }
    return ok;
}

/* Every way to feed s: whole, all 2- and 3-piece cuts, byte by byte.  One CHECK per way. */
static void check_all_splits(const char *s, bool start_thinking) {
    split want;
    ref_split(s, start_thinking, &want);
    size_t len = strlen(s);
    CHECK(run_cuts(s, start_thinking, NULL, 0, &want, "whole"), "whole \"%s\"", s);
    bool ok2 = true, ok3 = true;
    for (size_t a = 1; a < len && ok2; a++) ok2 = run_cuts(s, start_thinking, &a, 1, &want, "2");
    CHECK(ok2, "2-piece cuts of \"%s\" (start_thinking=%d)", s, start_thinking);
    for (size_t a = 1; a < len && ok3; a++)
        for (size_t b = a + 1; b < len && ok3; b++) {
            size_t cuts[2] = { a, b };
            ok3 = run_cuts(s, start_thinking, cuts, 2, &want, "3");
        }
    CHECK(ok3, "3-piece cuts of \"%s\" (start_thinking=%d)", s, start_thinking);
    size_t bytes[MAXS];
    for (size_t i = 1; i < len; i++) bytes[i - 1] = i;
    CHECK(run_cuts(s, start_thinking, bytes, len ? (int)len - 1 : 0, &want, "bytes"), "byte by byte \"%s\"",
          s);
}

/* ---- fixed expectations (the reference itself, on the cases that define the rules) --------------------- */

static void check_expect(const char *s, bool start_thinking, const char *thinking, const char *content) {
    split r;
    ref_split(s, start_thinking, &r);
    CHECK(strcmp(r.thinking, thinking) == 0 && strcmp(r.content, content) == 0,
          "reference on \"%s\": thinking \"%s\" content \"%s\"", s, r.thinking, r.content);
}

static void test_rules(void) {
    check_expect("<think>\nplan\n</think>\n\nanswer", false, "plan\n", "answer");
    check_expect("  <think>plan</think>answer", false, "plan", "answer");
    check_expect("\n\n\n\n\n\n\n\n\n<think>x</think>y", false, "", "\n\n\n\n\n\n\n\n\n<think>x</think>y");
    check_expect("hi <think>x</think>", false, "", "hi <think>x</think>");
    check_expect("\nplan</think>\n answer <think>more</think>", true, "plan", "answer <think>more</think>");
    check_expect("<think>\nplan</think>a", true, "plan", "a");
    check_expect("<think><think>plan</think>a", true, "<think>plan", "a");
    check_expect("plan <think> more", true, "plan <think> more", "");
    check_expect("", true, "", "");
    check_expect("  ", false, "", "  ");
}

static const char *cases[] = {
    "",
    "hello world",
    "  leading space",
    "<think>plan</think>answer",
    "<think>\nI should say hi.\n</think>\n\nHello!",
    "\n <think>\n\nplan\n</think>  \n answer\n",
    "<think></think>",
    "<think>\n\n</think>\n\n",
    "</think>after close",
    "plan only, no close",
    "plan</think>",
    "plan</think>   ",
    "text <think>not a thought</think> more",
    "<think>a</think>b<think>c</think>d",
    "<think><think>double</think>x",
    "<think>x <think> y</think>z",
    "</thi",
    "plan </thi",
    "<think>plan </thi",
    "<",
    "</",
    "<thi",
    "  <thi",
    "<think",
    "a < b and c > d",
    "<<think>>x</think>y",
    "<think>1 < 2 </ 3 </thinks> </think></think>",
    "</think</think>x",
    "<tHINK>caps</think>",
    "\t\r\n\v\f<think>\t x </think>\t y",
    "        <think>eight spaces</think>ok",
    "         <think>nine spaces</think>ok",
    "\xc3\xa9t\xc3\xa9 <think>\xe6\x97\xa5\xe6\x9c\xac</think>\xf0\x9f\x98\x80",
    "<think>\xe6\x80\x9d\xe8\x80\x83</think>\n\xe7\xad\x94",
    "\xe6\x80\x9d\xe8\x80\x83</think>\xe7\xad\x94<",
};

static void test_table(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_all_splits(cases[i], false);
        check_all_splits(cases[i], true);
    }
}

/* Random outputs glued from fragments that stress tag boundaries; random 1..4-piece cuts. */
static void test_random(void) {
    static const char *frag[] = { "<think>", "</think>", "<", "</", "<thi", "think>", "</th", "nk>", ">",
                                  " ", "\n", "  ", "a", "b c", "\xc3\xa9", "\xe6\x97\xa5", "<<", "/" };
    size_t nf = sizeof frag / sizeof frag[0];
    rng_state = 42;
    int bad = 0;
    for (int it = 0; it < 4000; it++) {
        char s[200] = "";
        int nparts = 1 + (int)(rng_u64() % 12);
        for (int j = 0; j < nparts; j++) strcat(s, frag[rng_u64() % nf]);
        size_t len = strlen(s);
        bool st = rng_u64() & 1;
        split want;
        ref_split(s, st, &want);
        size_t cuts[4];
        int nc = len > 1 ? (int)(rng_u64() % 4) : 0;
        for (int j = 0; j < nc; j++) cuts[j] = 1 + rng_u64() % (len - 1);
        for (int a = 0; a < nc; a++) /* sort, drop duplicates */
            for (int b = a + 1; b < nc; b++)
                if (cuts[b] < cuts[a]) {
                    size_t t = cuts[a];
                    cuts[a] = cuts[b];
                    cuts[b] = t;
                }
        int m = 0;
        for (int j = 0; j < nc; j++)
            if (m == 0 || cuts[j] != cuts[m - 1]) cuts[m++] = cuts[j];
        if (!run_cuts(s, st, cuts, m, &want, "random") && ++bad > 5) break;
    }
    CHECK(bad == 0, "random fragment outputs: %d mismatches", bad);
}

/* Long runs pass through in few emit calls and content is not copied byte by byte. */
typedef struct {
    int calls;
    size_t bytes;
} counter;

static void count_emit(void *ud, bool thinking, const char *text, size_t len) {
    counter *c = ud;
    (void)thinking, (void)text;
    c->calls++;
    c->bytes += len;
}

static void test_batching(void) {
    char big[4096];
    memset(big, 'x', sizeof big);
    reason_parser p;
    counter c = { 0, 0 };
    reason_init(&p, true);
    reason_feed(&p, big, sizeof big, count_emit, &c);
    CHECK(c.bytes == sizeof big && c.calls <= (int)(sizeof big / 128), "thinking run: %d calls", c.calls);
    reason_feed(&p, "</think>\nA", 10, count_emit, &c);
    c.calls = 0;
    reason_feed(&p, big, sizeof big, count_emit, &c);
    CHECK(c.calls == 1, "content run: %d calls", c.calls);
    CHECK(!reason_in_thinking(&p), "closed");
}

int main(void) {
    test_rules();
    test_table();
    test_random();
    test_batching();
    return check_done("test_reason");
}
