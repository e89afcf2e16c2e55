/*
 * sample.h - the sampler chain: from a row of logits to the next token.
 *
 * Order (Ollama's and llama.cpp's common chain):
 *   1. penalties over the last repeat_last_n accepted tokens:
 *        repeat:    l > 0 ? l / repeat_penalty : l * repeat_penalty   (once per distinct token)
 *        frequency: l -= frequency_penalty * count(token)
 *        presence:  l -= presence_penalty  (if count > 0)
 *   2. temperature <= 0: greedy (argmax of the penalized logits; ties go to the lower id) - done.
 *   3. top_k (k <= 0 or k >= n_vocab: keep all), sorted by logit descending (ties: lower id first);
 *      steps 5 and 6 keep a prefix of this order, so of tokens tied at a cut the lower ids stay
 *   4. softmax of l / temperature over the kept tokens
 *   5. top_p: keep the smallest prefix whose probability sum >= top_p (at least one token; 1.0 = off)
 *   6. min_p: drop tokens with p < min_p * p_max (0 = off)
 *   7. renormalize and draw with the sampler's own PRNG (seeded: the same seed and logits give the same
 *      tokens on every machine).
 * NaN logits count as -inf; a token whose (l - l_max) / temperature is below -80 has probability 0;
 * if every logit is -inf the result is token 0.  Exact arithmetic: see sample.c.
 *
 * A sampler is per sequence (it holds the penalty window and the PRNG), not thread-safe.
 */
#ifndef SEEK_SAMPLE_H
#define SEEK_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    float temperature;       /* <= 0: greedy */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off */
    int32_t repeat_last_n;   /* window for all penalties; 0: off, -1: whole context (capped at 4096);
                              * at most 65536 */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    uint64_t seed;           /* used when has_seed, else a random seed from the OS */
    bool has_seed;
} sample_params;

/* Ollama's defaults: temperature 0.8, top_k 40, top_p 0.9, min_p 0, repeat_penalty 1.1,
 * repeat_last_n 64, presence/frequency 0, no seed. */
sample_params sample_defaults(void);

typedef struct sampler sampler;

sampler *sample_new(const sample_params *p, int32_t n_vocab);
void sample_free(sampler *s);
/* Records a token as part of the history the penalties see (prompt tokens too, if wanted). */
void sample_accept(sampler *s, int32_t token);
/* Clears history; re-seeds the PRNG from the params. */
void sample_reset(sampler *s);

/* Picks the next token from logits[n_vocab].  logits is used as scratch (modified). */
int32_t sample_next(sampler *s, float *logits);

/* The distribution sample_next would draw from (steps 1-6), for tests and for logprobs: writes up to
 * cap (id, probability) pairs sorted by probability descending and returns how many tokens have
 * non-zero probability.  Greedy gives one token with p = 1.  logits is modified. */
size_t sample_probs(sampler *s, float *logits, int32_t *ids, float *probs, size_t cap);

#endif
