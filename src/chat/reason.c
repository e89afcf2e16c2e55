/*
 * reason.c - streaming split of generated text into thinking and content ("<think>" ... "</think>").
 *
 * What it is: a byte-at-a-time state machine that is fed decoded text in arbitrary pieces and calls
 * emit() with runs marked thinking or content.  The result does not depend on how the text was cut
 * into pieces: every rule below is a rule on the whole output string.  What it is not: a tool-call
 * parser, or a parser for other reasoning formats (gpt-oss channels).
 *
 * Rules (whitespace = the ASCII bytes space, \t, \n, \r, \v, \f; tags = p->open_tag, p->close_tag):
 *   started in content (reason_init(p, false)):
 *     - if the output starts with at most REASON_MAX_LEAD_WS whitespace bytes followed by the open
 *       tag, that whitespace and the tag are dropped and a thought begins;
 *     - otherwise the whole output is content, verbatim (leading whitespace kept, as Ollama does when
 *       no thought opens; a longer run of leading whitespace means no thought, so the parser never
 *       has to hold back more than a few bytes).
 *   started in thinking (reason_init(p, true), the prompt ended by opening a thought):
 *     - leading whitespace is dropped; if the open tag follows it is dropped too (once: models such
 *       as R1 sometimes repeat the tag the prompt already holds), and so is the whitespace after it.
 *   inside a thought:
 *     - whitespace right after the thought opens is dropped (Ollama trims the start of thinking);
 *     - everything up to the close tag is thinking, verbatim (trailing whitespace kept: trimming it
 *       would mean holding back an unbounded run);
 *     - a second open tag inside a thought is thinking text;
 *     - output that ends inside a thought leaves everything in the thinking channel.
 *   after the close tag:
 *     - the whitespace right after it is dropped; everything else is content, verbatim, tags included.
 * Tag text is never emitted.  A possible partial tag at the end of a piece is held back in p->hold
 * until it completes or cannot become a tag; reason_flush() emits what is held as text of the current
 * channel (leading whitespace and a partial open tag count as content when started in content).
 * emit() is never called with empty text.
 */
#include <assert.h>
#include <string.h>

#include "chat.h"

/* Longest run of leading whitespace that may precede the open tag when started in content. */
#define REASON_MAX_LEAD_WS 8
/* Longest tag the hold buffer takes together with that whitespace (a caller may point open_tag and
 * close_tag at other tags after reason_init, up to this length). */
#define REASON_MAX_TAG 8
_Static_assert(REASON_MAX_LEAD_WS + REASON_MAX_TAG <= sizeof((reason_parser *)0)->hold, "hold too small");

enum {
    RS_LEAD_CONTENT, /* started in content: holding leading whitespace and a partial open tag */
    RS_LEAD_THINK,   /* started in thinking: dropping whitespace, may swallow one open tag */
    RS_THINK_WS,     /* a thought just opened: dropping whitespace */
    RS_THINK,        /* inside a thought */
    RS_AFTER_CLOSE,  /* right after the close tag: dropping whitespace */
    RS_CONTENT,      /* content to the end */
};

/* Output batched per feed() call so emit sees runs rather than single bytes. */
typedef struct {
    reason_parser *p;
    reason_emit_fn emit;
    void *ud;
    bool thinking;
    size_t n;
    char buf[256];
} reason_sink;

static void sink_flush(reason_sink *k) {
    if (k->n == 0) return;
    if (k->thinking) k->p->n_thinking_bytes += k->n;
    k->emit(k->ud, k->thinking, k->buf, k->n);
    k->n = 0;
}

static void sink_put(reason_sink *k, bool thinking, const char *s, size_t len) {
    if (len && thinking != k->thinking) {
        sink_flush(k);
        k->thinking = thinking;
    }
    while (len) {
        if (k->n == sizeof k->buf) sink_flush(k);
        size_t m = sizeof k->buf - k->n < len ? sizeof k->buf - k->n : len;
        memcpy(k->buf + k->n, s, m);
        k->n += m;
        s += m;
        len -= m;
    }
}

static bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Whether s[0..n) is a prefix of tag (n may equal the tag's length). */
static bool is_prefix(const char *s, size_t n, const char *tag) {
    return n <= strlen(tag) && memcmp(s, tag, n) == 0;
}

static bool is_tag(const char *s, size_t n, const char *tag) {
    return n == strlen(tag) && memcmp(s, tag, n) == 0;
}

static void step(reason_parser *p, char c, reason_sink *k);

/* Moves to state st and re-feeds the held bytes through it (they were held for a tag that did not come). */
static void refeed_hold(reason_parser *p, int st, reason_sink *k) {
    char tmp[sizeof p->hold];
    size_t n = p->n_hold;
    memcpy(tmp, p->hold, n);
    p->n_hold = 0;
    p->state = st;
    for (size_t i = 0; i < n; i++) step(p, tmp[i], k);
}

/* Inside a thought: the hold is a proper prefix of the close tag. */
static void step_think(reason_parser *p, char c, reason_sink *k) {
    p->hold[p->n_hold++] = c;
    if (is_tag(p->hold, p->n_hold, p->close_tag)) {
        p->n_hold = 0;
        p->state = RS_AFTER_CLOSE;
        return;
    }
    /* emit the shortest head after which the rest can still start the close tag */
    size_t j = 0;
    while (j < p->n_hold && !is_prefix(p->hold + j, p->n_hold - j, p->close_tag)) j++;
    sink_put(k, true, p->hold, j);
    memmove(p->hold, p->hold + j, p->n_hold - j);
    p->n_hold -= j;
}

/* Start of a thought (and, with swallow, the start of output in thinking mode): drop whitespace,
 * close at once on the close tag, swallow one open tag when allowed. */
static void step_think_ws(reason_parser *p, char c, reason_sink *k, bool swallow) {
    if (p->n_hold == 0 && is_ws(c)) return;
    p->hold[p->n_hold++] = c;
    if (is_tag(p->hold, p->n_hold, p->close_tag)) {
        p->n_hold = 0;
        p->state = RS_AFTER_CLOSE;
    } else if (swallow && is_tag(p->hold, p->n_hold, p->open_tag)) {
        p->n_hold = 0;
        p->state = RS_THINK_WS;
    } else if (!is_prefix(p->hold, p->n_hold, p->close_tag) &&
               !(swallow && is_prefix(p->hold, p->n_hold, p->open_tag))) {
        refeed_hold(p, RS_THINK, k);
    }
}

/* Start of output in content mode: the hold is whitespace, then a partial open tag. */
static void step_lead_content(reason_parser *p, char c, reason_sink *k) {
    size_t ws = 0;
    while (ws < p->n_hold && is_ws(p->hold[ws])) ws++;
    bool all_ws = ws == p->n_hold;
    if (all_ws && is_ws(c) && ws == REASON_MAX_LEAD_WS) {
        /* too much leading whitespace for a thought: content from here on */
        p->state = RS_CONTENT;
        sink_put(k, false, p->hold, p->n_hold);
        sink_put(k, false, &c, 1);
        p->n_hold = 0;
        return;
    }
    p->hold[p->n_hold++] = c;
    if (all_ws && is_ws(c)) return;
    if (is_tag(p->hold + ws, p->n_hold - ws, p->open_tag)) {
        p->n_hold = 0;
        p->state = RS_THINK_WS;
    } else if (!is_prefix(p->hold + ws, p->n_hold - ws, p->open_tag)) {
        p->state = RS_CONTENT;
        sink_put(k, false, p->hold, p->n_hold);
        p->n_hold = 0;
    }
}

static void step(reason_parser *p, char c, reason_sink *k) {
    switch (p->state) {
    case RS_LEAD_CONTENT: step_lead_content(p, c, k); break;
    case RS_LEAD_THINK: step_think_ws(p, c, k, true); break;
    case RS_THINK_WS: step_think_ws(p, c, k, false); break;
    case RS_THINK: step_think(p, c, k); break;
    case RS_AFTER_CLOSE:
        if (is_ws(c)) break;
        p->state = RS_CONTENT;
        sink_put(k, false, &c, 1);
        break;
    default: sink_put(k, false, &c, 1); break;
    }
}

void reason_init(reason_parser *p, bool start_in_thinking) {
    memset(p, 0, sizeof *p);
    p->state = start_in_thinking ? RS_LEAD_THINK : RS_LEAD_CONTENT;
    p->open_tag = "<think>";
    p->close_tag = "</think>";
}

void reason_feed(reason_parser *p, const char *text, size_t len, reason_emit_fn emit, void *ud) {
    assert(strlen(p->open_tag) <= REASON_MAX_TAG && strlen(p->close_tag) <= REASON_MAX_TAG);
    reason_sink k = { .p = p, .emit = emit, .ud = ud };
    size_t i = 0;
    while (i < len && p->state != RS_CONTENT) step(p, text[i++], &k);
    sink_flush(&k);
    /* content to the end (the common case once the answer runs): passed through without copying */
    if (i < len) emit(ud, false, text + i, len - i);
}

void reason_flush(reason_parser *p, reason_emit_fn emit, void *ud) {
    reason_sink k = { .p = p, .emit = emit, .ud = ud };
    bool thinking = p->state == RS_LEAD_THINK || p->state == RS_THINK_WS || p->state == RS_THINK;
    sink_put(&k, thinking, p->hold, p->n_hold);
    p->n_hold = 0;
    if (p->state == RS_LEAD_CONTENT) p->state = RS_CONTENT;
    sink_flush(&k);
}

bool reason_in_thinking(const reason_parser *p) {
    return p->state == RS_LEAD_THINK || p->state == RS_THINK_WS || p->state == RS_THINK;
}
