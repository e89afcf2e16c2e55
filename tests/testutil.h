/*
 * testutil.h - what several C tests share: a fixed-seed random generator and the location of the
 * llama.cpp fixtures.  Header-only (static functions): each test program has its own state.
 *
 * Random numbers: splitmix64 over rng_state, which each test seeds (rng_state = ...) before its
 * first draw, so every run of a test sees the same data.
 */
#ifndef SEEK_TEST_UTIL_H
#define SEEK_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng_state;

static inline uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double rng_uniform(void) { return (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0); }

/* Standard normal (Box-Muller). */
static inline float rng_gauss(void) {
    double u1 = rng_uniform(), u2 = rng_uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/*
 * The folder holding the llama.cpp fixture files (llama-mini-Q8_0.gguf, ...): $SEEK_FIXTURES
 * (that folder itself, or one with a gguf/ subfolder), else ../shared/fixtures/gguf or
 * ../../shared/fixtures/gguf relative to the working directory (tests run from the repo root,
 * and shared/ lies beside the checkout).  NULL if none has the files.
 */
static inline const char *test_fixture_dir(void) {
    static char found[256];
    const char *env = getenv("SEEK_FIXTURES");
    const char *cands[4];
    const char *suffix[4];
    int n = 0;
    if (env && *env) {
        cands[n] = env, suffix[n++] = "";
        cands[n] = env, suffix[n++] = "/gguf";
    }
    cands[n] = "../shared/fixtures/gguf", suffix[n++] = "";
    cands[n] = "../../shared/fixtures/gguf", suffix[n++] = "";
    for (int i = 0; i < n; i++) {
        char probe[512];
        int len = snprintf(probe, sizeof probe, "%s%s/llama-mini-Q8_0.gguf", cands[i], suffix[i]);
        if (len <= 0 || len >= (int)sizeof probe || access(probe, R_OK) != 0) continue;
        char rel[512], abs[4096];
        len = snprintf(rel, sizeof rel, "%s%s", cands[i], suffix[i]);
        /* absolute, so tests that change directory or write Modelfiles elsewhere can use it */
        if (len <= 0 || len >= (int)sizeof rel || !realpath(rel, abs) || strlen(abs) >= sizeof found) continue;
        return strcpy(found, abs);
    }
    return NULL;
}

#endif
