/*
 * test_sample.c - the sampler chain (src/sample/sample.c): greedy, top_k, seeds, the penalty window,
 * edge cases, the bucketed top_p against a plain full-sort version, and the step time for a 152k
 * vocabulary (printed, not checked: it depends on the machine and its load).
 *
 * The distribution itself is checked against an independent numpy reference by tests/test_sample.py
 * (through tests/tool_sample.c); here the references are small and written out in the test.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "check.h"
#include "sample/sample.h"
#include "testutil.h"

static sample_params plain(float temp) {
    sample_params p = sample_defaults();
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.has_seed = true;
    p.seed = 1234;
    return p;
}

/* Random logits with deliberate ties (values on a coarse grid). */
static void fill_logits(float *l, int n, bool coarse) {
    for (int i = 0; i < n; i++) l[i] = coarse ? (float)(int)(rng_gauss() * 3) : rng_gauss() * 3;
}

static int32_t argmax_low(const float *l, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static void test_greedy(void) {
    rng_state = 1;
    float l[300], tmp[300];
    bool ok = true, ok_k1 = true;
    for (int it = 0; it < 200; it++) {
        int n = 1 + (int)(rng_u64() % 300);
        fill_logits(l, n, it & 1);
        int32_t want = argmax_low(l, n);
        sample_params p = plain(it % 3 ? 0.0f : -1.0f);
        sampler *s = sample_new(&p, n);
        memcpy(tmp, l, sizeof(float) * (size_t)n);
        ok &= sample_next(s, tmp) == want;
        sample_free(s);
        /* top_k = 1 is greedy at any temperature */
        p = plain(0.05f + (float)(rng_uniform() * 5));
        p.top_k = 1;
        p.seed = rng_u64();
        s = sample_new(&p, n);
        for (int r = 0; r < 5; r++) {
            memcpy(tmp, l, sizeof(float) * (size_t)n);
            ok_k1 &= sample_next(s, tmp) == want;
        }
        sample_free(s);
    }
    CHECK(ok, "temperature <= 0 gives argmax, ties to the lower id");
    CHECK(ok_k1, "top_k = 1 gives argmax at any temperature");

    float tie[4] = { 1, 3, 3, 2 };
    sample_params p = plain(0);
    sampler *s = sample_new(&p, 4);
    int32_t id;
    float pr;
    size_t n = sample_probs(s, tie, &id, &pr, 1);
    CHECK(n == 1 && id == 1 && pr == 1.0f, "greedy probs: one token, p = 1 (n %zu id %d p %g)", n, id, pr);
    sample_free(s);
}

static void draw_seq(const sample_params *p, const float *l, int n, int32_t *out, int count) {
    sampler *s = sample_new(p, n);
    float *tmp = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < count; i++) {
        memcpy(tmp, l, sizeof(float) * (size_t)n);
        out[i] = sample_next(s, tmp);
        sample_accept(s, out[i]);
    }
    free(tmp);
    sample_free(s);
}

static void test_seeds(void) {
    rng_state = 2;
    enum { N = 1000, C = 64 };
    static float l[N];
    for (int i = 0; i < N; i++) l[i] = rng_gauss() * 0.5f;
    sample_params p = sample_defaults();
    p.top_k = 0;
    p.top_p = 1.0f;
    p.has_seed = true;
    p.seed = 42;
    int32_t a[C], b[C], c[C];
    draw_seq(&p, l, N, a, C);
    draw_seq(&p, l, N, b, C);
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, same sequence");
    p.seed = 43;
    draw_seq(&p, l, N, c, C);
    CHECK(memcmp(a, c, sizeof a) != 0, "different seeds, different sequences");
    p.has_seed = false;
    draw_seq(&p, l, N, b, C);
    draw_seq(&p, l, N, c, C);
    CHECK(memcmp(b, c, sizeof b) != 0, "unseeded samplers differ");

    /* reset clears the history and re-seeds: the same sequence again */
    p.has_seed = true;
    p.seed = 42;
    sampler *s = sample_new(&p, N);
    float tmp[N];
    int32_t d[C];
    bool same = true;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < C; i++) {
            memcpy(tmp, l, sizeof tmp);
            d[i] = sample_next(s, tmp);
            sample_accept(s, d[i]);
        }
        same &= memcmp(a, d, sizeof a) == 0;
        sample_reset(s);
    }
    CHECK(same, "sample_reset replays the seeded sequence");
    sample_free(s);
}

/* ---- penalties: recover the penalized logits from sample_probs (T = 1: log p_i - log p_j) -------------- */

static void penalized(sampler *s, const float *l, int n, float *out) {
    float tmp[64], pr[64];
    int32_t ids[64];
    memcpy(tmp, l, sizeof(float) * (size_t)n);
    size_t k = sample_probs(s, tmp, ids, pr, 64);
    for (int i = 0; i < n; i++) out[i] = NAN;
    for (size_t i = 0; i < k; i++) out[ids[i]] = logf(pr[i]);
    float shift = out[n - 1] - l[n - 1]; /* the last token is never penalized in these tests */
    for (int i = 0; i < n; i++) out[i] -= shift;
}

static bool near(float a, float b) { return fabsf(a - b) <= 1e-4f * (1 + fabsf(b)); }

static void test_penalties(void) {
    enum { N = 8 };
    const float l[N] = { 2.0f, -1.0f, 0.5f, 1.5f, -0.5f, 0.0f, 1.0f, 0.25f };
    float got[N];
    sample_params p = plain(1.0f);
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.25f;
    p.presence_penalty = 0.125f;
    p.repeat_last_n = 4;
    sampler *s = sample_new(&p, N);
    const int32_t hist[] = { 0, 0, 1, 2, 1, 1, 3 }; /* window of 4 at the end: 2, 1, 1, 3 */
    for (size_t i = 0; i < sizeof hist / sizeof hist[0]; i++) sample_accept(s, hist[i]);
    sample_accept(s, -1);        /* out of range: ignored */
    sample_accept(s, N);
    penalized(s, l, N, got);
    float want[N];
    memcpy(want, l, sizeof want);
    want[2] = 0.5f / 2 - 0.25f * 1 - 0.125f;   /* positive: divided, once */
    want[1] = -1.0f * 2 - 0.25f * 2 - 0.125f;  /* negative: multiplied once although seen twice */
    want[3] = 1.5f / 2 - 0.25f - 0.125f;
    bool ok = true;
    for (int i = 0; i < N; i++) ok &= near(got[i], want[i]);
    CHECK(ok, "window of 4: token 0 left the window, 1 counted twice, repeat applied once");
    for (int i = 0; i < N; i++)
        if (!near(got[i], want[i])) printf("  token %d: got %g want %g\n", i, got[i], want[i]);

    sample_reset(s);
    penalized(s, l, N, got);
    ok = true;
    for (int i = 0; i < N; i++) ok &= near(got[i], l[i]);
    CHECK(ok, "reset clears the history");
    sample_free(s);

    p.repeat_last_n = 0;
    s = sample_new(&p, N);
    sample_accept(s, 0);
    penalized(s, l, N, got);
    CHECK(near(got[0], l[0]), "repeat_last_n = 0: no penalties");
    sample_free(s);

    p.repeat_last_n = -1;
    s = sample_new(&p, N);
    sample_accept(s, 0);
    for (int i = 0; i < 4095; i++) sample_accept(s, 5);
    penalized(s, l, N, got);
    bool in = near(got[0], 2.0f / 2 - 0.25f - 0.125f);
    sample_accept(s, 5);
    penalized(s, l, N, got);
    CHECK(in && near(got[0], 2.0f), "repeat_last_n = -1: a window of 4096");
    sample_free(s);
    p.frequency_penalty = 0.001f;
    s = sample_new(&p, N);
    for (int i = 0; i < 3000; i++) sample_accept(s, 5);
    penalized(s, l, N, got);
    CHECK(near(got[5], 0.0f - 0.001f * 3000 - 0.125f), "frequency counts the whole window (%g)", got[5]);
    sample_free(s);

    /* penalties also steer greedy */
    float g[3] = { 5.0f, 4.9f, 0.0f };
    p = plain(0);
    p.repeat_penalty = 1.1f;
    p.repeat_last_n = 2;
    s = sample_new(&p, 3);
    sample_accept(s, 0);
    int32_t first = sample_next(s, g);
    float g2[3] = { 5.0f, 4.9f, 0.0f };
    sample_accept(s, 2);
    sample_accept(s, 2);
    int32_t second = sample_next(s, g2);
    CHECK(first == 1 && second == 0, "greedy with penalty: %d then %d after the window moved", first, second);
    sample_free(s);
}

/* ---- edge cases ---------------------------------------------------------------------------------------- */

static size_t probs_of(const sample_params *p, const float *l, int n, int32_t *ids, float *pr, size_t cap) {
    sampler *s = sample_new(p, n);
    float *tmp = malloc(sizeof(float) * (size_t)n);
    memcpy(tmp, l, sizeof(float) * (size_t)n);
    size_t k = sample_probs(s, tmp, ids, pr, cap);
    free(tmp);
    sample_free(s);
    return k;
}

static void test_edges(void) {
    int32_t ids[16];
    float pr[16];
    sample_params p = plain(1.0f);

    float one[6] = { -INFINITY, -INFINITY, -INFINITY, 3.0f, -INFINITY, -INFINITY };
    size_t k = probs_of(&p, one, 6, ids, pr, 16);
    CHECK(k == 1 && ids[0] == 3 && pr[0] == 1.0f, "all -inf but one: that one, p = 1");
    sampler *s = sample_new(&p, 6);
    bool always = true;
    for (int i = 0; i < 50; i++) {
        float t[6];
        memcpy(t, one, sizeof t);
        always &= sample_next(s, t) == 3;
    }
    CHECK(always, "all -inf but one: always drawn");
    sample_free(s);

    /* out-of-range cuts from a request (min_p 2, top_p NaN) keep the best token, never nothing */
    sample_params bad = plain(1.0f);
    bad.min_p = 2.0f;
    bad.top_p = NAN;
    float four[4] = { 0.5f, 2.0f, 1.0f, -1.0f };
    k = probs_of(&bad, four, 4, ids, pr, 16);
    CHECK(k == 1 && ids[0] == 1 && pr[0] == 1.0f, "min_p > 1 keeps only the best token");
    s = sample_new(&bad, 4);
    float t4[4];
    memcpy(t4, four, sizeof t4);
    CHECK(sample_next(s, t4) == 1, "min_p > 1 draws the best token");
    sample_free(s);

    float none[3] = { -INFINITY, NAN, -INFINITY };
    k = probs_of(&p, none, 3, ids, pr, 16);
    CHECK(k == 1 && ids[0] == 0 && pr[0] == 1.0f, "all -inf / NaN: token 0");

    float nan[4] = { NAN, 1.0f, NAN, 1.0f };
    k = probs_of(&p, nan, 4, ids, pr, 16);
    CHECK(k == 2 && ids[0] == 1 && ids[1] == 3 && fabsf(pr[0] - 0.5f) < 1e-6f && fabsf(pr[1] - 0.5f) < 1e-6f,
          "NaN logits have probability 0, ties sort by id");

    float inf[4] = { 1.0f, INFINITY, 2.0f, INFINITY };
    k = probs_of(&p, inf, 4, ids, pr, 16);
    CHECK(k == 2 && ids[0] == 1 && ids[1] == 3 && !isnan(pr[0]), "+inf logits win, NaN-free");

    float single = 0.7f;
    k = probs_of(&p, &single, 1, ids, pr, 16);
    s = sample_new(&p, 1);
    CHECK(k == 1 && ids[0] == 0 && pr[0] == 1.0f && sample_next(s, &single) == 0, "n_vocab = 1");
    sample_free(s);
    CHECK(sample_new(&p, 0) == NULL, "n_vocab = 0 rejected");

    float l[8] = { 0.1f, 2.0f, 0.3f, 1.9f, 2.0f, -1.0f, 0.0f, 1.0f };
    p.top_p = 1e-9f;
    k = probs_of(&p, l, 8, ids, pr, 16);
    CHECK(k == 1 && ids[0] == 1 && pr[0] == 1.0f, "tiny top_p keeps one token, the lower id of a tie");
    p.top_p = 0.0f;
    k = probs_of(&p, l, 8, ids, pr, 16);
    CHECK(k == 1 && ids[0] == 1, "top_p = 0 keeps one token");
    /* the two 2.0 tokens hold 2e^2 / sum; just above one of them: both kept */
    double z = 0;
    for (int i = 0; i < 8; i++) z += exp(l[i]);
    p.top_p = (float)(exp(2.0) / z * 1.01);
    k = probs_of(&p, l, 8, ids, pr, 16);
    CHECK(k == 2 && ids[0] == 1 && ids[1] == 4, "top_p just above one token keeps the tie pair");
    p.top_p = 1.0f;

    p.min_p = 0.5f; /* p_i >= 0.5 p_max: logit >= 2 - ln 2 = 1.307 */
    k = probs_of(&p, l, 8, ids, pr, 16);
    CHECK(k == 3 && ids[0] == 1 && ids[1] == 4 && ids[2] == 3, "min_p 0.5 keeps 2.0, 2.0, 1.9 (k %zu)", k);
    float sum = 0;
    for (size_t i = 0; i < k; i++) sum += pr[i];
    CHECK(fabsf(sum - 1) < 1e-6f, "min_p renormalizes");
    p.min_p = 1.0f;
    k = probs_of(&p, l, 8, ids, pr, 16);
    CHECK(k == 2 && fabsf(pr[0] - 0.5f) < 1e-6f, "min_p 1 keeps the tied best tokens");
    p.min_p = 0.0f;

    p.top_k = 3;
    k = probs_of(&p, l, 8, ids, pr, 2);
    CHECK(k == 3 && ids[0] == 1 && ids[1] == 4, "cap below the kept count: count returned, best written");
    p.top_k = 100; /* above n_vocab: off */
    k = probs_of(&p, l, 8, ids, pr, 16);
    CHECK(k == 8, "top_k >= n_vocab keeps all");

    /* huge logit range: far tokens have probability 0 */
    float far[3] = { 1e30f, 0.0f, -1e30f };
    k = probs_of(&p, far, 3, ids, pr, 16);
    CHECK(k == 1 && ids[0] == 0, "huge range: one token");
}

/* ---- bucketed top_p against a full sort ---------------------------------------------------------------- */

typedef struct {
    float l;
    int32_t id;
} ref_item;

static int ref_cmp(const void *pa, const void *pb) {
    const ref_item *a = pa, *b = pb;
    if (a->l != b->l) return a->l > b->l ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Kept ids in order, by sorting everything (no penalties, top_k off). */
static int ref_kept(const float *l, int n, float temp, float top_p, float min_p, int32_t *out) {
    ref_item *it = malloc(sizeof *it * (size_t)n);
    for (int i = 0; i < n; i++) it[i] = (ref_item){ l[i], i };
    qsort(it, (size_t)n, sizeof *it, ref_cmp);
    double z = 0;
    for (int i = 0; i < n; i++) z += exp(((double)it[i].l - it[0].l) / temp);
    double cum = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        double w = exp(((double)it[i].l - it[0].l) / temp);
        cum += w;
        if (w >= min_p) out[k++] = it[i].id;
        if (cum >= top_p * z) break;
    }
    free(it);
    return k;
}

static void test_bucket_top_p(void) {
    rng_state = 3;
    enum { N = 20000 };
    static float l[N];
    static int32_t want[N], got[N];
    static float pr[N];
    int bad = 0;
    for (int it = 0; it < 40; it++) {
        fill_logits(l, N, it % 4 == 0); /* coarse grid: thousands of ties at every level */
        sample_params p = plain(0.3f + (float)rng_uniform() * 2);
        p.top_p = (float)(0.05 + 0.9 * rng_uniform());
        p.min_p = it % 3 == 0 ? 0.05f : 0.0f;
        int nw = ref_kept(l, N, p.temperature, p.top_p, p.min_p, want);
        size_t k = probs_of(&p, l, N, got, pr, N);
        /* the cut may differ only where the running sum is within rounding of top_p; the random
         * top_p makes that unlikely, and the coarse cases tie only within one bucket */
        if ((int)k != nw || memcmp(want, got, sizeof(int32_t) * (size_t)nw) != 0) {
            if (bad++ < 3) printf("  case %d: kept %zu want %d\n", it, k, nw);
        }
    }
    CHECK(bad == 0, "bucketed top_p keeps exactly the full-sort prefix (%d of 40 differ)", bad);
}

/* ---- timing -------------------------------------------------------------------------------------------- */

static double step_ms(const sample_params *p, const float *l, float *tmp, int n, int reps) {
    sampler *s = sample_new(p, n);
    for (int i = 0; i < 64; i++) sample_accept(s, (int32_t)(rng_u64() % (uint64_t)n));
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        memcpy(tmp, l, sizeof(float) * (size_t)n);
        uint64_t t0 = time_now_ns();
        sample_next(s, tmp);
        double ms = (double)(time_now_ns() - t0) / 1e6;
        if (ms < best) best = ms;
    }
    sample_free(s);
    return best;
}

static void test_timing(void) {
    enum { N = 152064 };
    rng_state = 4;
    float *l = malloc(sizeof(float) * N), *tmp = malloc(sizeof(float) * N);
    /* LLM-like logits: a broad body and a few strong candidates */
    for (int i = 0; i < N; i++) l[i] = rng_gauss() * 2.5f;
    for (int i = 0; i < 20; i++) l[rng_u64() % N] = 12.0f + (float)i * 0.3f;
    sample_params p = sample_defaults();
    p.has_seed = true;
    p.temperature = 0.6f;
    p.top_k = 40;
    p.top_p = 0.95f;
    double k40 = step_ms(&p, l, tmp, N, 30);
    p.top_k = 0;
    double p95 = step_ms(&p, l, tmp, N, 30);
    p.top_p = 1.0f;
    double all = step_ms(&p, l, tmp, N, 30);
    p.temperature = 1.5f; /* flatter: the nucleus covers much of the vocabulary */
    p.top_p = 0.95f;
    double flat = step_ms(&p, l, tmp, N, 30);
    printf("sample step, n_vocab %d (best of 30): top_k 40 + top_p 0.95: %.3f ms; top_k off + top_p 0.95: "
           "%.3f ms (T 1.5: %.3f ms); top_k off + top_p off: %.3f ms\n", N, k40, p95, flat, all);
    CHECK(k40 < 50 && p95 < 50, "a step finishes (timing is reported above, not judged)");
    free(l);
    free(tmp);
}

int main(void) {
    base_init();
    test_greedy();
    test_seeds();
    test_penalties();
    test_edges();
    test_bucket_top_p();
    test_timing();
    return check_done("test_sample");
}
