/*
 * tool_embed.c - drives sched_embed for tests/test_embed.py (built, not run as a test).
 *
 *   tool_embed MODEL.gguf TEXT...
 *
 * For each text prints two lines: "ids N id0 id1 ..." (the tokens the scheduler pools over: the
 * text tokenized as plain text, BOS first when the vocabulary adds one) and "embd D v0 v1 ..."
 * (the L2-normalised mean of the final hidden states, %.9g).  Exit status 1 on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sched.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tool_embed MODEL.gguf TEXT...\n");
        return 2;
    }
    base_init();
    seek_err err = { 0 };
    engine_model *em = engine_load(argv[1], &err);
    sched *s = em ? sched_new(&(sched_opts){ .num_parallel = 2, .n_threads = 2 }, &err) : NULL;
    if (!s) {
        fprintf(stderr, "tool_embed: %s\n", err.msg);
        return 1;
    }
    int n = argc - 2;
    float *e;
    int dim;
    int64_t nt;
    if (sched_embed(s, argv[1], (const char *const *)argv + 2, n, false, 0, INT64_MIN, &e, &dim, &nt, &err) != 0) {
        fprintf(stderr, "tool_embed: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int32_t *ids;
        size_t k;
        const tok_vocab *v = em->vocab;
        if (tok_encode(v, argv[2 + i], strlen(argv[2 + i]), tok_add_bos(v) && tok_bos(v) >= 0, false, &ids, &k, &err)) {
            fprintf(stderr, "tool_embed: %s\n", err.msg);
            return 1;
        }
        printf("ids %zu", k);
        for (size_t j = 0; j < k; j++) printf(" %d", ids[j]);
        printf("\nembd %d", dim);
        for (int j = 0; j < dim; j++) printf(" %.9g", e[(size_t)i * (size_t)dim + (size_t)j]);
        printf("\n");
        free(ids);
    }
    free(e);
    sched_free(s);
    engine_free(em);
    return 0;
}
