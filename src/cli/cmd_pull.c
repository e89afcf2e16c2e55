/*
 * cmd_pull.c - `seek pull NAME [--insecure]`: fetches a model from its registry into the store,
 * and the progress display `seek push` and `seek run` (pulling a missing model) share.
 *
 * The display is Ollama's: one line per status ("pulling manifest", "verifying sha256 digest",
 * "writing manifest", "success") and one bar per layer,
 *   pulling 6e4c38e1172f:  45% ▕█████████           ▏ 490 MB/1.1 GB   35 MB/s  14s
 * redrawn in place (cursor up, clear line) on a terminal at most ten times a second.  When
 * stderr is not a terminal every line is printed once, and a layer's line again at each quarter
 * and at the end, so logs stay short.  Ctrl+C stops the pull cleanly: the partial download and
 * its state are kept and the same command resumes it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../store/registry.h"
#include "../store/store.h"
#include "cli.h"

#define BAR_CELLS 20
#define RATE_SAMPLES 8

typedef struct bar_line {
    char text[64];          /* a status line, or the layer's "pulling <12 hex>" */
    char digest[STORE_DIGEST_LEN]; /* "" for status lines */
    uint64_t total, completed;
    uint64_t t_ns[RATE_SAMPLES], c[RATE_SAMPLES]; /* recent (time, completed) for the rate */
    int n_samples;
    int quarter;            /* last quarter printed (not a tty) */
} bar_line;

struct cli_bars {
    bool tty;
    bar_line *lines;
    int n, cap;
    int drawn;              /* lines on screen below the cursor's home (tty) */
    uint64_t last_draw_ns;
};

cli_bars *cli_bars_new(void) {
    cli_bars *b = calloc(1, sizeof *b);
    if (b) b->tty = isatty(STDERR_FILENO);
    return b;
}

void cli_bars_free(cli_bars *b) {
    if (!b) return;
    free(b->lines);
    free(b);
}

/* Ollama's format.HumanBytes: decimal units, no decimals from 10 up. */
static void human_bytes(uint64_t n, char *buf, size_t cap) {
    static const char *const units[] = { "KB", "MB", "GB", "TB" };
    if (n < 1000) {
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
        return;
    }
    double v = (double)n;
    int u = -1;
    while (v >= 1000 && u < 3) v /= 1000, u++;
    if (v >= 10 || v == (double)(uint64_t)v) snprintf(buf, cap, "%d %s", (int)v, units[u]);
    else snprintf(buf, cap, "%.1f %s", v, units[u]);
}

/* A duration the way Go prints a rounded one: "14s", "2m5s", "1h2m3s". */
static void human_eta(double s, char *buf, size_t cap) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%ldm%lds", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

/* Bytes per second over the recent samples, 0 when unknown. */
static double rate(const bar_line *l) {
    if (l->n_samples < 2) return 0;
    int last = (l->n_samples - 1) % RATE_SAMPLES;
    int first = l->n_samples > RATE_SAMPLES ? l->n_samples % RATE_SAMPLES : 0;
    double dt = (double)(l->t_ns[last] - l->t_ns[first]) * 1e-9;
    return dt > 0.2 ? (double)(l->c[last] - l->c[first]) / dt : 0;
}

static void format_line(const bar_line *l, bool tty, char *out, size_t cap) {
    if (!l->digest[0]) {
        snprintf(out, cap, "%s", l->text);
        return;
    }
    char tot[32], done[32];
    human_bytes(l->total, tot, sizeof tot);
    human_bytes(l->completed, done, sizeof done);
    int pct = l->total ? (int)(100.0 * (double)l->completed / (double)l->total) : 100;
    bool complete = l->completed >= l->total;
    if (!tty) {
        if (complete) snprintf(out, cap, "%s: 100%% %s", l->text, tot);
        else snprintf(out, cap, "%s: %3d%% %s/%s", l->text, pct, done, tot);
        return;
    }
    char cells[BAR_CELLS * 3 + 1];
    int full = l->total ? (int)((double)BAR_CELLS * (double)l->completed / (double)l->total) : BAR_CELLS;
    size_t k = 0;
    for (int i = 0; i < BAR_CELLS; i++) {
        const char *cell = i < full ? "█" : " ";
        size_t cl = strlen(cell);
        memcpy(cells + k, cell, cl);
        k += cl;
    }
    cells[k] = 0;
    if (complete) {
        snprintf(out, cap, "%s: 100%% ▕%s▏ %s", l->text, cells, tot);
        return;
    }
    double r = rate(l);
    char rs[32] = "", eta[32] = "";
    if (r > 0) {
        human_bytes((uint64_t)r, rs, sizeof rs);
        strcat(rs, "/s");
        human_eta((double)(l->total - l->completed) / r, eta, sizeof eta);
    }
    snprintf(out, cap, "%s: %3d%% ▕%s▏ %s/%s  %8s %6s", l->text, pct, cells, done, tot, rs, eta);
}

static void redraw(cli_bars *b) {
    if (b->drawn) fprintf(stderr, "\x1b[%dA", b->drawn);
    char line[512];
    for (int i = 0; i < b->n; i++) {
        format_line(&b->lines[i], true, line, sizeof line);
        fprintf(stderr, "\r\x1b[2K%s\n", line);
    }
    b->drawn = b->n;
    fflush(stderr);
}

static bar_line *add_line(cli_bars *b) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 16;
        bar_line *nl = realloc(b->lines, (size_t)cap * sizeof *nl);
        if (!nl) return NULL;
        b->lines = nl;
        b->cap = cap;
    }
    bar_line *l = &b->lines[b->n++];
    memset(l, 0, sizeof *l);
    l->quarter = -1;
    return l;
}

bool cli_bars_update(cli_bars *b, const registry_progress *p) {
    uint64_t now = time_now_ns();
    bar_line *l = NULL;
    bool changed = false;
    if (p->digest) {
        for (int i = 0; i < b->n && !l; i++)
            if (!strcmp(b->lines[i].digest, p->digest)) l = &b->lines[i];
        if (!l && (l = add_line(b))) {
            snprintf(l->text, sizeof l->text, "%s", p->status);
            snprintf(l->digest, sizeof l->digest, "%s", p->digest);
            changed = true;
        }
        if (!l) return true;
        bool was_complete = l->completed >= l->total && l->n_samples > 0;
        l->total = p->total;
        l->completed = p->completed;
        int slot = l->n_samples % RATE_SAMPLES;
        int prev = (l->n_samples + RATE_SAMPLES - 1) % RATE_SAMPLES;
        /* one sample per quarter second, so the rate spans about two seconds */
        if (l->n_samples == 0 || now - l->t_ns[prev] >= 250000000ull) {
            l->t_ns[slot] = now;
            l->c[slot] = p->completed;
            l->n_samples++;
        }
        if (!b->tty) {
            int q = l->total ? (int)(4 * l->completed / l->total) : 4;
            bool complete = l->completed >= l->total;
            if (q != l->quarter && !(complete && was_complete)) {
                char line[512];
                format_line(l, false, line, sizeof line);
                fprintf(stderr, "%s\n", line);
                l->quarter = q;
            }
            return true;
        }
        changed |= l->completed >= l->total;
    } else {
        if (!b->tty) {
            fprintf(stderr, "%s\n", p->status);
            return true;
        }
        if ((l = add_line(b))) snprintf(l->text, sizeof l->text, "%s", p->status);
        changed = true;
    }
    if (changed || now - b->last_draw_ns >= 100000000ull) {
        b->last_draw_ns = now;
        redraw(b);
    }
    return true;
}

/* ---- seek pull ---------------------------------------------------------------------------- */

static volatile sig_atomic_t pull_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    pull_interrupted = 1;
}

typedef struct pull_ui {
    cli_bars *bars;
} pull_ui;

static bool on_progress(void *ud, const registry_progress *p) {
    pull_ui *ui = ud;
    if (ui->bars) cli_bars_update(ui->bars, p);
    return !pull_interrupted;
}

int cli_pull(const char *name, int insecure, int n_parts, const char *why) {
    seek_err err = { 0 };
    store *s = store_open(NULL, &err);
    if (!s) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    store_clean_tmp(s);
    pull_ui ui = { cli_bars_new() };
    registry_opts o = { .insecure = insecure != 0, .n_parts = n_parts, .progress = on_progress, .ud = &ui };
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    pull_interrupted = 0;
    sigaction(SIGINT, &sa, &old);
    int rc = registry_pull(s, name, &o, &err);
    sigaction(SIGINT, &old, NULL);
    cli_bars_free(ui.bars);
    store_close(s);
    if (rc == 0) return 0;
    if (pull_interrupted) {
        fprintf(stderr, "pull interrupted; run the same command again to resume\n");
        return 130;
    }
    fprintf(stderr, "Error: %s%s%s\n", why ? why : "", why ? ": " : "", err.msg);
    return 1;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: seek pull NAME [--insecure] [--parts N] [--verbose]\n"
            "  NAME        [host/][namespace/]model[:tag], e.g. deepseek-r1:1.5b or hf.co/user/repo:Q4_K_M\n"
            "  --insecure  allow plain http (a local registry such as 127.0.0.1:5000/library/m)\n"
            "  --parts N   parallel ranged downloads per blob (default 8)\n"
            "  --verbose   per-blob throughput and hashing time\n"
            "An interrupted pull resumes where it stopped.  The model store is $SEEK_MODELS.\n");
}

int cmd_pull(int argc, char **argv) {
    const char *name = NULL;
    int insecure = 0, parts = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--insecure")) insecure = 1;
        else if (!strcmp(argv[i], "--verbose")) log_verbosity = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--parts")) {
            long v = cli_parse_count("--parts", i + 1 < argc ? argv[++i] : NULL, 64);
            if (v < 0) return 2;
            parts = (int)v;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "seek pull: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!name) {
            name = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!name) {
        usage(stderr);
        return 2;
    }
    return cli_pull(name, insecure, parts, NULL);
}
