/*
 * cmd_logits.c - `seek logits MODEL --tokens "1 2 3" --out F [-t T]`: runs the forward pass
 * over the tokens (one batch pass, all positions) and writes float32 little-endian logits,
 * one row of n_vocab per token position.  The tool the correctness tests drive.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../model/model.h"

static int parse_tokens(const char *s, int32_t **out, int64_t *n) {
    int64_t cap = 64, cnt = 0;
    int32_t *v = malloc(sizeof(int32_t) * (size_t)cap);
    if (!v) return -1;
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') s++;
        if (!*s) break;
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || errno || x < 0 || x > INT32_MAX) {
            fprintf(stderr, "seek logits: bad token id near '%.20s'\n", s);
            free(v);
            return -1;
        }
        if (cnt == cap) {
            cap *= 2;
            int32_t *nv = realloc(v, sizeof(int32_t) * (size_t)cap);
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[cnt++] = (int32_t)x;
        s = end;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *tokens_arg = NULL, *out_path = NULL;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens_arg = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) {
            if ((threads = cli_parse_count(argv[i], i + 1 < argc ? argv[i + 1] : NULL, 1024)) < 0) return 2;
            i++;
        } else if (argv[i][0] != '-' && !model_path) model_path = argv[i];
        else {
            fprintf(stderr, "seek logits: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!model_path || !tokens_arg || !out_path) {
        fprintf(stderr, "usage: seek logits MODEL --tokens \"1 2 3\" --out FILE [-t THREADS]\n");
        return 2;
    }
    int32_t *tokens;
    int64_t n;
    if (parse_tokens(tokens_arg, &tokens, &n) != 0) return 1;
    if (n == 0) {
        fprintf(stderr, "seek logits: no tokens given\n");
        free(tokens);
        return 1;
    }
    seek_err err = { 0 };
    char *path = cli_model_path("logits", model_path);
    model *m = path ? model_open(path, &err) : NULL;
    if (!m) {
        if (path) fprintf(stderr, "seek logits: %s\n", err.msg);
        free(path);
        free(tokens);
        return 1;
    }
    free(path);
    int rc = 1;
    float *logits = NULL;
    model_ctx *c = model_ctx_new(m, n, 512, (int)threads, &err);
    uint64_t cnt = (uint64_t)n * (uint64_t)m->hp.n_vocab;
    if (c) logits = malloc(sizeof(float) * cnt);
    if (!c) {
        fprintf(stderr, "seek logits: %s\n", err.msg);
    } else if (!logits) {
        fprintf(stderr, "seek logits: out of memory for %llu logits\n", (unsigned long long)cnt);
    } else if (model_eval(c, tokens, n, 0, logits, true, &err) != 0) {
        fprintf(stderr, "seek logits: %s\n", err.msg);
    } else if (fs_write_atomic(out_path, logits, sizeof(float) * cnt, &err) != 0) {
        fprintf(stderr, "seek logits: %s\n", err.msg);
    } else {
        rc = 0;
    }
    free(logits);
    model_ctx_free(c);
    model_close(m);
    free(tokens);
    return rc;
}
