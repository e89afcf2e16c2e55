/*
 * tool_sample.c - drives the sampler for tests/test_sample.py (built, not run as a test).
 *
 *   tool_sample probs      cases on stdin; for each prints k (tokens kept) then k lines "id prob"
 *                          (sample_probs with cap = n_vocab)
 *   tool_sample draw N     one case on stdin; N draws with sample_next from the same logits and
 *                          history (nothing accepted in between); prints "id count" per drawn id
 *
 * Input, whitespace separated (floats as C strtof reads them: hex floats, inf, -inf, nan):
 *   probs mode starts with the number of cases; each case is
 *   n_vocab temperature top_k top_p min_p repeat_penalty repeat_last_n presence frequency seed
 *   n_hist hist[0] ... hist[n_hist-1]
 *   logits[0] ... logits[n_vocab-1]
 * History tokens are passed to sample_accept in order.  Exit status 2 on malformed input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/sample.h"

static char *next_word(void) {
    static char buf[128];
    if (scanf("%127s", buf) != 1) {
        fprintf(stderr, "tool_sample: unexpected end of input\n");
        exit(2);
    }
    return buf;
}

static float read_f(void) { return strtof(next_word(), NULL); }
static long read_i(void) { return strtol(next_word(), NULL, 10); }

typedef struct {
    sampler *s;
    int32_t n;
    float *logits;
} tool_case;

static tool_case read_case(void) {
    tool_case c;
    sample_params p;
    c.n = (int32_t)read_i();
    p.temperature = read_f();
    p.top_k = (int32_t)read_i();
    p.top_p = read_f();
    p.min_p = read_f();
    p.repeat_penalty = read_f();
    p.repeat_last_n = (int32_t)read_i();
    p.presence_penalty = read_f();
    p.frequency_penalty = read_f();
    p.seed = strtoull(next_word(), NULL, 10);
    p.has_seed = true;
    c.s = sample_new(&p, c.n);
    c.logits = malloc(sizeof(float) * (size_t)(c.n > 0 ? c.n : 1));
    if (!c.s || !c.logits) {
        fprintf(stderr, "tool_sample: bad n_vocab %d\n", c.n);
        exit(2);
    }
    long nh = read_i();
    for (long i = 0; i < nh; i++) sample_accept(c.s, (int32_t)read_i());
    for (int32_t i = 0; i < c.n; i++) c.logits[i] = read_f();
    return c;
}

static void free_case(tool_case *c) {
    sample_free(c->s);
    free(c->logits);
}

static int run_probs(void) {
    long n_cases = read_i();
    for (long k = 0; k < n_cases; k++) {
        tool_case c = read_case();
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)c.n);
        float *probs = malloc(sizeof(float) * (size_t)c.n);
        size_t n = sample_probs(c.s, c.logits, ids, probs, (size_t)c.n);
        printf("%zu\n", n);
        for (size_t i = 0; i < n; i++) printf("%d %.9g\n", ids[i], probs[i]);
        free(ids);
        free(probs);
        free_case(&c);
    }
    return 0;
}

static int run_draw(long n_draws) {
    tool_case c = read_case();
    float *tmp = malloc(sizeof(float) * (size_t)c.n);
    long *count = calloc((size_t)c.n, sizeof *count);
    for (long i = 0; i < n_draws; i++) {
        memcpy(tmp, c.logits, sizeof(float) * (size_t)c.n);
        int32_t t = sample_next(c.s, tmp);
        if (t < 0 || t >= c.n) {
            fprintf(stderr, "tool_sample: token %d out of range\n", t);
            return 1;
        }
        count[t]++;
    }
    for (int32_t i = 0; i < c.n; i++)
        if (count[i]) printf("%d %ld\n", i, count[i]);
    free(tmp);
    free(count);
    free_case(&c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "probs") == 0) return run_probs();
    if (argc == 3 && strcmp(argv[1], "draw") == 0) return run_draw(strtol(argv[2], NULL, 10));
    fprintf(stderr, "usage: tool_sample probs | tool_sample draw N   (input on stdin)\n");
    return 2;
}
