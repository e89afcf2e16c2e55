/*
 * run_print.c - how `seek run` shows a streamed answer, Ollama's way:
 *
 *   Thinking...                 (dim on a terminal; hidden with --hidethinking)
 *   <the model's reasoning>
 *   ...done thinking.
 *
 *   <the answer>
 *
 * On a terminal the text is word-wrapped at its width: a word is held until the space or newline
 * that ends it, then moved to the next line if it would cross the edge.  Piped output is written
 * exactly as generated.  --verbose adds Ollama's statistics block on stderr.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "run.h"

#define DIM "\x1b[2m"
#define RESET "\x1b[0m"

void run_printer_init(run_printer *pr, run_state *rs) {
    memset(pr, 0, sizeof *pr);
    pr->rs = rs;
    if (rs->out_tty && rs->wordwrap) {
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) pr->width = ws.ws_col - 1;
    }
}

static void flush_word(run_printer *pr) {
    if (!pr->n_word) return;
    if (pr->width && pr->col > 0 && pr->col + pr->word_cols > pr->width) {
        fputc('\n', stdout);
        pr->col = 0;
    }
    fwrite(pr->word, 1, pr->n_word, stdout);
    pr->col += pr->word_cols;
    pr->n_word = 0;
    pr->word_cols = 0;
}

/* Writes text, wrapping words at the terminal width when there is one. */
static void wrap_write(run_printer *pr, const char *s, size_t n) {
    if (!pr->width) {
        fwrite(s, 1, n, stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            flush_word(pr);
            fputc('\n', stdout);
            pr->col = 0;
        } else if (c == ' ') {
            flush_word(pr);
            if (pr->col + 1 > pr->width) {
                fputc('\n', stdout);
                pr->col = 0;
            } else if (pr->col > 0) {
                fputc(' ', stdout);
                pr->col++;
            }
        } else {
            if (pr->n_word == sizeof pr->word) flush_word(pr); /* a very long "word": break it */
            pr->word[pr->n_word++] = (char)c;
            if ((c & 0xC0) != 0x80) pr->word_cols++; /* count characters, not bytes */
        }
    }
}

static void keep_content(run_printer *pr, const char *text, size_t len) {
    if (pr->content_len + len + 1 > pr->content_cap) {
        size_t cap = (pr->content_len + len + 1) * 2;
        char *p = realloc(pr->content, cap);
        if (!p) return;
        pr->content = p;
        pr->content_cap = cap;
    }
    memcpy(pr->content + pr->content_len, text, len);
    pr->content_len += len;
    pr->content[pr->content_len] = 0;
}

bool run_printer_emit(void *ud, bool thinking, const char *text, size_t len) {
    run_printer *pr = ud;
    bool tty = pr->rs->out_tty;
    if (thinking) {
        if (!pr->rs->hide_thinking) {
            if (!pr->in_thinking) {
                fputs(tty ? DIM "Thinking...\n" : "Thinking...\n", stdout);
                pr->col = 0;
            }
            wrap_write(pr, text, len);
        }
        pr->in_thinking = true;
    } else {
        if (pr->in_thinking) {
            if (!pr->rs->hide_thinking) {
                flush_word(pr);
                fputs(tty ? "\n...done thinking.\n\n" RESET : "\n...done thinking.\n\n", stdout);
            }
            pr->col = 0;
            pr->in_thinking = false;
        }
        wrap_write(pr, text, len);
        keep_content(pr, text, len);
    }
    pr->any_output = true;
    fflush(stdout);
    return !run_interrupted;
}

void run_printer_finish(run_printer *pr) {
    flush_word(pr);
    if (pr->in_thinking && !pr->rs->hide_thinking) fputs(pr->rs->out_tty ? "\n" RESET : "\n", stdout);
    fputs("\n", stdout);
    if (pr->rs->out_tty) fputs("\n", stdout); /* a blank line before the next prompt */
    fflush(stdout);
}

/* Go's time.Duration formatting, as Ollama prints its statistics: 1.5s, 12.3456ms, 980µs. */
static void fmt_duration(char *out, size_t cap, uint64_t ns) {
    const char *unit = "s";
    double v = (double)ns / 1e9;
    if (ns < 1000) {
        snprintf(out, cap, "%lluns", (unsigned long long)ns);
        return;
    } else if (ns < 1000000) {
        v = (double)ns / 1e3, unit = "µs";
    } else if (ns < 1000000000) {
        v = (double)ns / 1e6, unit = "ms";
    }
    snprintf(out, cap, "%.9f", v);
    char *e = out + strlen(out) - 1; /* trim trailing zeros and a bare point */
    while (e > out && *e == '0') *e-- = 0;
    if (*e == '.') *e = 0;
    strncat(out, unit, cap - strlen(out) - 1);
}

void run_print_stats(const engine_stats *st) {
    char b[64];
    fmt_duration(b, sizeof b, st->total_ns);
    fprintf(stderr, "total duration:       %s\n", b);
    fmt_duration(b, sizeof b, st->load_ns);
    fprintf(stderr, "load duration:        %s\n", b);
    fprintf(stderr, "prompt eval count:    %d token(s)\n", st->prompt_tokens);
    fmt_duration(b, sizeof b, st->prompt_ns);
    fprintf(stderr, "prompt eval duration: %s\n", b);
    if (st->prompt_ns)
        fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", st->prompt_tokens / (st->prompt_ns / 1e9));
    fprintf(stderr, "eval count:           %d token(s)\n", st->eval_tokens);
    fmt_duration(b, sizeof b, st->eval_ns);
    fprintf(stderr, "eval duration:        %s\n", b);
    if (st->eval_ns) fprintf(stderr, "eval rate:            %.2f tokens/s\n", st->eval_tokens / (st->eval_ns / 1e9));
}
