/*
 * cmd_bench.c - `seek bench MODEL [-p N] [-n N] [-t T] [-r R] [--ttft N] [--json]`: prompt
 * processing (pp: N tokens in one batched pass) and generation (tg: N tokens one at a time)
 * speed, in the manner of llama-bench, next to this machine's measured memory bandwidth; load
 * time, resident memory and KV cache size; with --ttft, the time to the first token of an
 * N-token prompt (evaluated in passes of 512 as `seek run` and the server do, then one greedy
 * pick from the logits).  --profile adds, for one more pp pass and one more tg run, where the
 * time goes per token: each phase of the forward pass (model_ctx_profile) with its share and,
 * for the matmuls, the weight bytes per second it streamed.
 *
 * The decode bound: generating one token reads every weight byte once (except the embedding
 * table, of which one row is read) plus the KV cache so far; bandwidth / bytes-per-token is
 * the fastest decode the memory system allows, and tg / bound is the efficiency we report.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../model/model.h"

typedef struct {
    double pp_tps, tg_tps;
    double load_ms;
} bench_result;

static void fill_tokens(int32_t *t, int64_t n, int64_t n_vocab, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (int32_t)((seed >> 33) % (uint64_t)n_vocab);
    }
}

static void human_bytes(double b, char *buf, size_t cap) {
    if (b >= 1024.0 * 1024 * 1024) snprintf(buf, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else snprintf(buf, cap, "%.2f MiB", b / (1024.0 * 1024));
}

/* Milliseconds from an empty context to the first generated token of an n-token prompt: the
 * prompt in passes of up to 512 tokens (as the engine runs prompts), then the greedy pick.  The
 * context is made before the clock starts, as a loaded model's is.  -1 with err on failure. */
/* The phase table of the last profiled run: time per token, share, and streamed GB/s for the
 * phases that read weights. */
static void print_profile(const model_ctx *c, const char *what, long n) {
    uint64_t ns[MODEL_PROF_COUNT], bytes[MODEL_PROF_COUNT];
    uint64_t toks = model_ctx_profile(c, ns, bytes), total = 0;
    for (int i = 0; i < MODEL_PROF_COUNT; i++) total += ns[i];
    if (!toks || !total) return;
    fprintf(stderr, "\nprofile of %s%ld (%.2f ms per token):\n", what, n, (double)total / 1e6 / (double)toks);
    fprintf(stderr, "| phase                   | ms/token | share | weights GB/s |\n");
    fprintf(stderr, "| ----------------------- | -------- | ----- | ------------ |\n");
    for (int i = 0; i < MODEL_PROF_COUNT; i++) {
        char gbs[32] = "";
        if (bytes[i] && ns[i]) snprintf(gbs, sizeof gbs, "%.1f", (double)bytes[i] / (double)ns[i]);
        fprintf(stderr, "| %-23s | %8.3f | %4.1f%% | %12s |\n", model_prof_name(i), (double)ns[i] / 1e6 / (double)toks,
                100.0 * (double)ns[i] / (double)total, gbs);
    }
}

static volatile int32_t first_token;

static double time_to_first_token(const model *m, long n, int threads, seek_err *err) {
    const int64_t V = m->hp.n_vocab;
    model_ctx *c = model_ctx_new(m, n + 1, n < 512 ? n : 512, threads, err);
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)V);
    double ms = -1;
    if (c && tokens && logits) {
        fill_tokens(tokens, n, V, 7);
        uint64_t t0 = time_now_ns();
        if (model_eval(c, tokens, n, 0, logits, false, err) == 0) {
            int64_t best = 0;
            for (int64_t i = 1; i < V; i++)
                if (logits[i] > logits[best]) best = i;
            ms = (double)(time_now_ns() - t0) / 1e6;
            first_token = (int32_t)best; /* kept, so the pick is not optimised away */
        }
    } else if (c) {
        err_set(err, SEEK_ENOMEM, "out of memory");
    }
    model_ctx_free(c);
    free(tokens);
    free(logits);
    return ms;
}

int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL;
    long pp = 512, tg = 128, reps = 1, ttft = 0, threads = sysconf(_SC_NPROCESSORS_ONLN);
    bool json = false, profile = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *dst = !strcmp(a, "-p") ? &pp : !strcmp(a, "-n") ? &tg : !strcmp(a, "-t") ? &threads
                  : !strcmp(a, "-r") ? &reps : !strcmp(a, "--ttft") ? &ttft : NULL;
        if (dst) {
            if ((*dst = cli_parse_count(a, v, 1 << 20)) < 0) return 2;
            i++;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--profile")) {
            profile = true;
        } else if (a[0] != '-' && !model_path) {
            model_path = a;
        } else {
            fprintf(stderr, "seek bench: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "usage: seek bench MODEL [-p N] [-n N] [-t THREADS] [-r REPS] [--ttft N] [--profile] [--json]\n");
        return 2;
    }

    seek_err err = { 0 };
    char *path = cli_model_path("bench", model_path);
    if (!path) return 1;
    uint64_t t0 = time_now_ns();
    model *m = model_open(path, &err);
    free(path);
    if (!m) {
        fprintf(stderr, "seek bench: %s\n", err.msg);
        return 1;
    }
    double load_ms = (double)(time_now_ns() - t0) / 1e6;
    const model_hparams *hp = &m->hp;
    int64_t n_ctx = pp > tg ? pp : tg;
    model_ctx *c = model_ctx_new(m, n_ctx, pp, (int)threads, &err);
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)n_ctx);
    float *logits = malloc(sizeof(float) * (size_t)hp->n_vocab);
    if (!c || !tokens || !logits) {
        fprintf(stderr, "seek bench: %s\n", c ? "out of memory" : err.msg);
        model_ctx_free(c);
        model_close(m);
        free(tokens);
        free(logits);
        return 1;
    }
    fill_tokens(tokens, n_ctx, hp->n_vocab, 42);

    /* warm-up: touches the mapped weights once so the timed runs measure compute, not disk */
    model_eval(c, tokens, 1, 0, logits, false, &err);

    double pp_best = 0, tg_best = 0;
    for (long r = 0; r < reps; r++) {
        uint64_t s = time_now_ns();
        if (model_eval(c, tokens, pp, 0, logits, false, &err) != 0) break;
        double tps = (double)pp / ((double)(time_now_ns() - s) / 1e9);
        if (tps > pp_best) pp_best = tps;
        s = time_now_ns();
        for (long i = 0; i < tg; i++)
            if (model_eval(c, tokens + i, 1, i, logits, false, &err) != 0) break;
        tps = (double)tg / ((double)(time_now_ns() - s) / 1e9);
        if (tps > tg_best) tg_best = tps;
    }
    if (err.msg[0]) {
        fprintf(stderr, "seek bench: %s\n", err.msg);
        model_ctx_free(c);
        model_close(m);
        free(tokens);
        free(logits);
        return 1;
    }

    if (profile && !err.msg[0]) {
        model_ctx_profile_enable(c, true);
        if (model_eval(c, tokens, pp, 0, logits, false, &err) == 0) print_profile(c, "pp", pp);
        model_ctx_profile_enable(c, true);
        for (long i = 0; i < tg && !err.msg[0]; i++) model_eval(c, tokens + i, 1, i, logits, false, &err);
        if (!err.msg[0]) print_profile(c, "tg", tg);
        model_ctx_profile_enable(c, false);
    }

    /* bytes one decode step reads: all weights but the embedding table (one row of it),
     * unless it doubles as the output matrix; plus the KV cache at the average position */
    uint64_t embd_bytes = (uint64_t)m->tok_embd.m * m->tok_embd.row_bytes;
    uint64_t per_token = m->tied_output ? m->weight_bytes : m->weight_bytes - embd_bytes + m->tok_embd.row_bytes;
    per_token += (uint64_t)(tg / 2) * 2 * (uint64_t)hp->n_layer *
                 model_kv_row_bytes(model_ctx_kv_type(c), hp->n_head_kv * hp->head_dim);
    kern_pool *bw_pool = kern_pool_new((int)threads, &err);
    double bw = bw_pool ? kern_measure_bandwidth(bw_pool, 1ull << 30, 5) : 0.0;
    kern_pool_free(bw_pool);
    double bound = bw > 0 ? bw * 1e9 / (double)per_token : 0;
    uint64_t rss = sys_rss_bytes();
    uint64_t kv_bytes = model_ctx_kv_bytes(c);
    const char *kv_name = kern_traits(model_ctx_kv_type(c))->name;
    model_ctx_free(c);
    double ttft_ms = ttft > 0 ? time_to_first_token(m, ttft, (int)threads, &err) : 0;
    if (ttft_ms < 0) {
        fprintf(stderr, "seek bench: --ttft %ld: %s\n", ttft, err.msg);
        model_close(m);
        free(tokens);
        free(logits);
        return 1;
    }

    if (json) {
        printf("{\"pp_tokens\":%ld,\"pp_tps\":%.3f,\"tg_tokens\":%ld,\"tg_tps\":%.3f,\"threads\":%ld,"
               "\"isa\":\"%s\",\"model_bytes\":%llu,\"bytes_per_token\":%llu,\"mem_bw_gbs\":%.2f,"
               "\"tg_bw_fraction\":%.4f,\"load_ms\":%.1f,\"rss_bytes\":%llu,\"kv_bytes\":%llu,"
               "\"kv_type\":\"%s\",\"ttft_tokens\":%ld,\"ttft_ms\":%.1f}\n",
               pp, pp_best, tg, tg_best, threads, kern_isa_name(kern_active_isa()),
               (unsigned long long)m->weight_bytes, (unsigned long long)per_token, bw,
               bound > 0 ? tg_best / bound : 0.0, load_ms, (unsigned long long)rss,
               (unsigned long long)kv_bytes, kv_name, ttft, ttft_ms);
    } else {
        char size[32];
        human_bytes((double)m->weight_bytes, size, sizeof size);
        printf("| model            | size       | threads | isa    | test   |        t/s |\n");
        printf("| ---------------- | ---------- | ------- | ------ | ------ | ---------- |\n");
        printf("| %-16s | %10s | %7ld | %-6s | pp%-4ld | %10.2f |\n", hp->arch_name, size, threads,
               kern_isa_name(kern_active_isa()), pp, pp_best);
        printf("| %-16s | %10s | %7ld | %-6s | tg%-4ld | %10.2f |\n", hp->arch_name, size, threads,
               kern_isa_name(kern_active_isa()), tg, tg_best);
        printf("\nmemory bandwidth (measured, %ld threads): %.1f GB/s\n", threads, bw);
        printf("bytes read per generated token: %.1f MB -> decode bound %.2f t/s; tg reaches %.0f%% of it\n",
               (double)per_token / 1e6, bound, bound > 0 ? 100.0 * tg_best / bound : 0.0);
        printf("load %.1f ms, resident memory %.1f MiB (KV cache %.1f MiB, %s)\n", load_ms,
               (double)rss / (1 << 20), (double)kv_bytes / (1 << 20), kv_name);
        if (ttft > 0) printf("time to first token of a %ld-token prompt: %.0f ms\n", ttft, ttft_ms);
    }
    model_close(m);
    free(tokens);
    free(logits);
    return 0;
}
