/*
 * sample.c - the sampler chain of sample.h: penalties, greedy, top_k, softmax with temperature, top_p,
 * min_p, and a seeded draw.
 *
 * What it is: one sampler per sequence holding the penalty window (a ring of the last tokens plus a
 * per-token count array, so a step touches only the window's tokens) and a xoshiro256** PRNG.  What it
 * is not: grammar-constrained sampling, mirostat, typical-p or DRY.
 *
 * Precise rules (the numpy reference in tests/test_sample.py implements the same):
 *   - Arithmetic: penalties in float in the order repeat, frequency, presence; NaN logits count as -inf
 *     and +inf as FLT_MAX.  The scaled logit of token i is s_i = (l_i - l_max) / temperature (float), its
 *     weight w_i = e^s_i (exp_neg below, ~1 ulp, the same bits on every machine), so the best token has
 *     weight exactly 1; sums are in double.
 *   - Tokens with s_i < -80 (weight below e^-80 = 1.8e-35 of the best token's) have probability 0: they
 *     are never candidates.  If every logit is -inf the result is token 0 (greedy's answer).
 *   - Order: by penalized logit descending, ties to the lower id.  top_k keeps the first k in this order;
 *     top_p keeps the shortest prefix of this order whose weight sum reaches top_p * (sum of the
 *     top_k set's weights), so of tokens tied at the cut the lower ids are kept; min_p then drops tokens
 *     with w_i < min_p (= p_i < min_p * p_max).
 *   - Invalid parameters are neutralized rather than rejected: NaN temperature means greedy, NaN or
 *     non-positive repeat_penalty means 1, non-finite presence/frequency penalties mean 0,
 *     repeat_last_n < 0 means 4096 and larger windows are capped at 65536.
 *
 * Hot spot: a step over a 152k vocabulary with top_k off.  Sorting it would cost several times the
 * rest of the step, so top_p does not sort: one vectorized pass computes every weight, a second adds
 * each to one of 4096 buckets (32 per octave of weight, read off the float's bits); the bucket where
 * the running sum reaches top_p is found from the bucket sums, only that bucket's tokens are sorted,
 * and everything in better buckets is kept unsorted.  top_k uses a k-element heap.  The draw walks the
 * kept tokens in the order they were kept (deterministic for given inputs; sample_probs sorts them).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "../base/base.h"
#include "sample.h"

#define SAMPLE_S_MIN (-80.0f)          /* scaled logits below this have probability 0 */
#define SAMPLE_N_BUCKETS 4096          /* top_p buckets: 32 per octave of weight, down to e^-80 */
#define SAMPLE_SORT_MAX 512            /* candidate sets up to this size are simply sorted */
#define SAMPLE_WINDOW_WHOLE 4096       /* repeat_last_n = -1 */
#define SAMPLE_WINDOW_MAX 65536        /* cap on an explicit repeat_last_n */

/* One candidate token: penalized logit, weight e^s, id. */
typedef struct {
    float l;
    float w;
    int32_t id;
} sample_cand;

struct sampler {
    sample_params p; /* neutralized copy (see the file header) */
    int32_t n_vocab;
    uint64_t rng[4];    /* xoshiro256** state */
    int32_t window;     /* penalty window length; 0: no history kept */
    int32_t *hist;      /* (window) ring of the last accepted tokens */
    int32_t n_hist;     /* valid entries: hist[0..n_hist) */
    int32_t hist_pos;   /* next slot to write */
    int32_t *count;     /* (n_vocab) occurrences of each token in the window */
    sample_cand *cand;  /* (n_vocab) candidates of the current step */
    sample_cand *edge;  /* (n_vocab) scratch: the top_p bucket being cut, the sample_probs heap */
    float *wt;          /* (n_vocab) weight of every token (0: not a candidate) */
    double bucket_w[SAMPLE_N_BUCKETS]; /* weight sum per bucket of the current step */
};

sample_params sample_defaults(void) {
    sample_params p = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.9f,
        .min_p = 0.0f,
        .repeat_penalty = 1.1f,
        .repeat_last_n = 64,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .seed = 0,
        .has_seed = false,
    };
    return p;
}

/* ---- PRNG: splitmix64 expands the seed into xoshiro256** state ----------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t st[4]) {
    uint64_t r = rotl(st[1] * 5, 7) * 9, t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t st[4]) { return (double)(rng_next(st) >> 11) * 0x1.0p-53; }

static void rng_seed(sampler *s) {
    uint64_t x = s->p.seed;
    if (!s->p.has_seed && getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x)
        x = time_now_ns() ^ (uint64_t)(uintptr_t)s; /* no entropy source: still differs per run */
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* ---- lifetime and history ------------------------------------------------------------------------------ */

static sample_params neutralize(const sample_params *in) {
    sample_params p = *in;
    if (!(p.repeat_penalty > 0) || !isfinite(p.repeat_penalty)) p.repeat_penalty = 1.0f;
    if (!isfinite(p.presence_penalty)) p.presence_penalty = 0.0f;
    if (!isfinite(p.frequency_penalty)) p.frequency_penalty = 0.0f;
    /* min_p above 1 would drop even the best token (w = 1); NaN cuts would compare false */
    if (!(p.min_p >= 0.0f)) p.min_p = 0.0f;
    if (p.min_p > 1.0f) p.min_p = 1.0f;
    if (!(p.top_p <= 1.0f)) p.top_p = 1.0f;
    return p;
}

sampler *sample_new(const sample_params *p, int32_t n_vocab) {
    if (n_vocab <= 0) return NULL;
    sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = neutralize(p);
    s->n_vocab = n_vocab;
    int32_t n = s->p.repeat_last_n;
    s->window = n < 0 ? SAMPLE_WINDOW_WHOLE : n > SAMPLE_WINDOW_MAX ? SAMPLE_WINDOW_MAX : n;
    s->hist = malloc(sizeof *s->hist * (size_t)(s->window ? s->window : 1));
    s->count = calloc((size_t)n_vocab, sizeof *s->count);
    s->cand = malloc(sizeof *s->cand * (size_t)n_vocab);
    s->edge = malloc(sizeof *s->edge * (size_t)n_vocab);
    s->wt = malloc(sizeof *s->wt * (size_t)n_vocab);
    if (!s->hist || !s->count || !s->cand || !s->edge || !s->wt) {
        sample_free(s);
        return NULL;
    }
    rng_seed(s);
    return s;
}

void sample_free(sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->count);
    free(s->cand);
    free(s->edge);
    free(s->wt);
    free(s);
}

void sample_accept(sampler *s, int32_t token) {
    if (s->window == 0 || token < 0 || token >= s->n_vocab) return;
    if (s->n_hist == s->window) s->count[s->hist[s->hist_pos]]--; /* oldest leaves the window */
    else s->n_hist++;
    s->hist[s->hist_pos] = token;
    s->count[token]++;
    s->hist_pos = s->hist_pos + 1 == s->window ? 0 : s->hist_pos + 1;
}

void sample_reset(sampler *s) {
    for (int32_t i = 0; i < s->n_hist; i++) s->count[s->hist[i]] = 0;
    s->n_hist = 0;
    s->hist_pos = 0;
    rng_seed(s);
}

/* ---- step 1: penalties --------------------------------------------------------------------------------- */

/* Each distinct token of the window once: l = l > 0 ? l / repeat : l * repeat; l -= frequency * count;
 * l -= presence.  count[t] is negated while t is done, then restored. */
static void apply_penalties(sampler *s, float *logits) {
    const sample_params *p = &s->p;
    if (s->n_hist == 0 ||
        (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f))
        return;
    for (int32_t i = 0; i < s->n_hist; i++) {
        int32_t t = s->hist[i], c = s->count[t];
        if (c <= 0) continue;
        float l = logits[t];
        l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= p->frequency_penalty * (float)c;
        l -= p->presence_penalty;
        logits[t] = l;
        s->count[t] = -c;
    }
    for (int32_t i = 0; i < s->n_hist; i++) {
        int32_t t = s->hist[i];
        if (s->count[t] < 0) s->count[t] = -s->count[t];
    }
}

/* ---- step 2: max / greedy ------------------------------------------------------------------------------ */

/* Replaces NaN by -inf and +inf by FLT_MAX; returns the argmax (ties: lower id) and its logit in *max. */
static int32_t scan_max(float *logits, int32_t n, float *max) {
    int32_t best = 0;
    float m = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        float v = logits[i];
        if (v != v) v = logits[i] = -INFINITY;
        else if (v == INFINITY) v = logits[i] = FLT_MAX;
        if (v > m) m = v, best = i;
    }
    *max = m;
    return best;
}

/* ---- order and selection ------------------------------------------------------------------------------- */

/* The chain's order: logit descending, ties to the lower id. */
static inline bool better(const sample_cand *a, const sample_cand *b) {
    return a->l > b->l || (a->l == b->l && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb) {
    const sample_cand *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* Min-heap in the chain's order: h[0] is the worst of the n kept. */
static void sift_down(sample_cand *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t w = i, a = 2 * i + 1, b = a + 1;
        if (a < n && better(&h[w], &h[a])) w = a;
        if (b < n && better(&h[w], &h[b])) w = b;
        if (w == i) return;
        sample_cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heapify(sample_cand *h, int32_t n) {
    for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(h, n, i);
}

/* The k best tokens of logits[n] (0 < k < n) into h[0..k), unordered.  Ids arrive ascending, so a
 * logit equal to the heap's worst never displaces it. */
static void heap_top_logits(const float *logits, int32_t n, int32_t k, sample_cand *h) {
    for (int32_t i = 0; i < k; i++) h[i] = (sample_cand){ .l = logits[i], .id = i };
    heapify(h, k);
    for (int32_t i = k; i < n; i++) {
        if (logits[i] <= h[0].l) continue;
        h[0] = (sample_cand){ .l = logits[i], .id = i };
        sift_down(h, k, 0);
    }
}

/* The k best of c[n] (0 < k < n) into h[0..k), sorted. */
static void heap_top_sorted(const sample_cand *c, int32_t n, int32_t k, sample_cand *h) {
    memcpy(h, c, sizeof *h * (size_t)k);
    heapify(h, k);
    for (int32_t i = k; i < n; i++) {
        if (!better(&c[i], &h[0])) continue;
        h[0] = c[i];
        sift_down(h, k, 0);
    }
    qsort(h, (size_t)k, sizeof *h, cand_cmp);
}

/* ---- steps 3-6: the kept set --------------------------------------------------------------------------- */

/* e^x for x in [-80, 0] (Cephes expf's method, ~1 ulp): x = k ln2 + r with |r| <= ln2/2, e^r by a
 * degree-6 polynomial, 2^k built in the exponent bits.  Plain float arithmetic, so it gives the same
 * bits on every machine (and in weights_sse2 below); exp(0) is exactly 1. */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_ROUND 0x1.8p23f        /* adding and subtracting it rounds to an integer (|x| < 2^22) */
#define EXP_LN2_HI 0.693359375f    /* Cody-Waite split of ln 2 */
#define EXP_LN2_LO -2.12194440e-4f
static const float exp_poly[6] = { 1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                   4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f };

static inline float exp_neg(float x) {
    float kf = (x * EXP_LOG2E + EXP_ROUND) - EXP_ROUND; /* round(x / ln2) */
    float r = x - kf * EXP_LN2_HI - kf * EXP_LN2_LO;
    float q = exp_poly[0];
    for (int j = 1; j < 6; j++) q = q * r + exp_poly[j];
    q = q * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)kf + 127) << 23; /* kf in [-116, 0]: a normal 2^kf */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return q * scale;
}

/* Weight of a logit: e^s with s = (l - max) / temp, or 0 when s < -80 (or NaN). */
static inline float weight(float l, float max, float temp) {
    float sc = (l - max) / temp;
    float live = (float)(sc >= SAMPLE_S_MIN);
    return exp_neg(sc > SAMPLE_S_MIN ? sc : SAMPLE_S_MIN) * live;
}

#ifdef __SSE2__
/* weight() four at a time (SSE2 is part of x86-64): the same operations in the same order, so the
 * same bits.  Returns how many it did (a multiple of 4); the caller finishes the tail. */
static int32_t weights_sse2(const float *logits, float *wt, int32_t n, float max, float temp) {
    const __m128 vmax = _mm_set1_ps(max), vtemp = _mm_set1_ps(temp), vmin = _mm_set1_ps(SAMPLE_S_MIN);
    const __m128 vround = _mm_set1_ps(EXP_ROUND), one = _mm_set1_ps(1.0f);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m128 sc = _mm_div_ps(_mm_sub_ps(_mm_loadu_ps(logits + i), vmax), vtemp);
        __m128 live = _mm_cmpge_ps(sc, vmin);
        __m128 x = _mm_max_ps(sc, vmin); /* maxps(a, b) is a > b ? a : b, NaN -> b */
        __m128 kf = _mm_sub_ps(_mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(EXP_LOG2E)), vround), vround);
        __m128 r = _mm_sub_ps(_mm_sub_ps(x, _mm_mul_ps(kf, _mm_set1_ps(EXP_LN2_HI))),
                              _mm_mul_ps(kf, _mm_set1_ps(EXP_LN2_LO)));
        __m128 q = _mm_set1_ps(exp_poly[0]);
        for (int j = 1; j < 6; j++) q = _mm_add_ps(_mm_mul_ps(q, r), _mm_set1_ps(exp_poly[j]));
        q = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(q, r), r), r), one);
        __m128i e = _mm_slli_epi32(_mm_add_epi32(_mm_cvttps_epi32(kf), _mm_set1_epi32(127)), 23);
        __m128 w = _mm_mul_ps(q, _mm_castsi128_ps(e));
        _mm_storeu_ps(wt + i, _mm_and_ps(live, w));
    }
    return i;
}
#endif

/* wt[i] = weight(logits[i]) for the whole vocabulary (hot loop). */
static void weights_all(const float *logits, float *wt, int32_t n, float max, float temp) {
    int32_t i = 0;
#ifdef __SSE2__
    i = weights_sse2(logits, wt, n, max, temp);
#endif
    for (; i < n; i++) wt[i] = weight(logits[i], max, temp);
}

/* top_p bucket of a weight in (0, 1]: 32 buckets per octave, read off the float's bits (which order
 * positive floats like their values), best first.  e^-80 lands in bucket 3715. */
static inline int32_t bucket_of(float w) {
    uint32_t bits;
    memcpy(&bits, &w, sizeof bits);
    return (int32_t)((0x3f800000u - bits) >> 18);
}

/* Sorts c[0..nc), then top_p (shortest prefix reaching top_p of the weight) and min_p. */
static int32_t finish_sorted(sampler *s, int32_t nc) {
    sample_cand *c = s->cand;
    qsort(c, (size_t)nc, sizeof *c, cand_cmp);
    if (s->p.top_p < 1.0f) {
        double z = 0, cum = 0;
        for (int32_t i = 0; i < nc; i++) z += c[i].w;
        double target = (double)s->p.top_p * z;
        for (int32_t i = 0; i < nc; i++) {
            cum += c[i].w;
            if (cum >= target) {
                nc = i + 1;
                break;
            }
        }
    }
    int32_t nk = 0; /* min_p: the best token has w = 1 and stays */
    for (int32_t i = 0; i < nc; i++)
        if (c[i].w >= s->p.min_p) c[nk++] = c[i];
    return nk;
}

/* The same on the whole vocabulary's weights s->wt[n] (0 = not a candidate) without sorting it: the
 * weight sum per bucket locates the bucket where the running sum reaches top_p; better buckets are
 * kept whole (unsorted), and only that bucket is sorted and cut. */
static int32_t finish_buckets(sampler *s, const float *logits) {
    const float *wt = s->wt;
    const float min_p = s->p.min_p;
    int32_t n = s->n_vocab, nk = 0, ne = 0, cb = SAMPLE_N_BUCKETS;
    sample_cand *c = s->cand;
    double cum = 0, target = 0;
    if (s->p.top_p < 1.0f) {
        memset(s->bucket_w, 0, sizeof s->bucket_w);
        for (int32_t i = 0; i < n; i++) s->bucket_w[bucket_of(wt[i])] += wt[i]; /* w = 0: adds nothing */
        double z = 0;
        for (int32_t b = 0; b < SAMPLE_N_BUCKETS; b++) z += s->bucket_w[b];
        target = (double)s->p.top_p * z;
        for (cb = 0; cb < SAMPLE_N_BUCKETS && cum + s->bucket_w[cb] < target; cb++) cum += s->bucket_w[cb];
    }
    for (int32_t i = 0; i < n; i++) {
        float w = wt[i];
        if (w == 0) continue;
        int32_t b = bucket_of(w);
        if (b < cb) {
            if (w >= min_p) c[nk++] = (sample_cand){ .l = logits[i], .w = w, .id = i };
        } else if (b == cb) {
            s->edge[ne++] = (sample_cand){ .l = logits[i], .w = w, .id = i };
        }
    }
    qsort(s->edge, (size_t)ne, sizeof *s->edge, cand_cmp);
    for (int32_t i = 0; i < ne; i++) { /* at least one: top_p <= 0 keeps the best token */
        cum += s->edge[i].w;
        if (s->edge[i].w >= min_p) c[nk++] = s->edge[i];
        if (cum >= target) break;
    }
    return nk;
}

/* Steps 3-6 with temperature > 0 and a finite max: fills s->cand with the kept tokens and returns
 * how many (at least 1: the best token has weight 1 and survives every cut). */
static int32_t kept_set(sampler *s, const float *logits, float max) {
    const float temp = s->p.temperature;
    int32_t n = s->n_vocab, k = s->p.top_k, nc = 0;
    bool use_k = k > 0 && k < n;
    if (use_k && k <= SAMPLE_SORT_MAX) {
        heap_top_logits(logits, n, k, s->cand);
        for (int32_t i = 0; i < k; i++) {
            sample_cand ci = s->cand[i];
            ci.w = weight(ci.l, max, temp);
            if (ci.w > 0) s->cand[nc++] = ci;
        }
        return finish_sorted(s, nc);
    }
    float *wt = s->wt;
    if (use_k) {
        heap_top_logits(logits, n, k, s->cand);
        memset(wt, 0, sizeof *wt * (size_t)n);
        for (int32_t i = 0; i < k; i++) wt[s->cand[i].id] = weight(s->cand[i].l, max, temp);
    } else {
        weights_all(logits, wt, n, max, temp);
    }
    if (n > SAMPLE_SORT_MAX) return finish_buckets(s, logits);
    for (int32_t i = 0; i < n; i++)
        if (wt[i] > 0) s->cand[nc++] = (sample_cand){ .l = logits[i], .w = wt[i], .id = i };
    return finish_sorted(s, nc);
}

/* ---- step 7 and the public calls ----------------------------------------------------------------------- */

/* Penalties and greedy; returns the greedy token, or -1 when the chain must sample (*max set). */
static int32_t prepare(sampler *s, float *logits, float *max) {
    apply_penalties(s, logits);
    int32_t best = scan_max(logits, s->n_vocab, max);
    if (!(s->p.temperature > 0) || *max == -INFINITY) return best;
    return -1;
}

static double kept_weight(const sample_cand *c, int32_t nc) {
    double z = 0;
    for (int32_t i = 0; i < nc; i++) z += c[i].w;
    return z;
}

int32_t sample_next(sampler *s, float *logits) {
    float max;
    int32_t best = prepare(s, logits, &max);
    if (best >= 0) return best;
    int32_t nc = kept_set(s, logits, max);
    double r = rng_uniform(s->rng) * kept_weight(s->cand, nc), cum = 0;
    for (int32_t i = 0; i < nc; i++) {
        cum += s->cand[i].w;
        if (r < cum) return s->cand[i].id;
    }
    return s->cand[nc - 1].id; /* r within rounding of the total */
}

size_t sample_probs(sampler *s, float *logits, int32_t *ids, float *probs, size_t cap) {
    float max;
    int32_t best = prepare(s, logits, &max);
    if (best >= 0) {
        if (cap) ids[0] = best, probs[0] = 1.0f;
        return 1;
    }
    int32_t nc = kept_set(s, logits, max);
    double sum = kept_weight(s->cand, nc);
    const sample_cand *out = s->cand;
    int32_t n_out = nc;
    if (cap < (size_t)nc) {
        n_out = (int32_t)cap;
        if (n_out) heap_top_sorted(s->cand, nc, n_out, s->edge);
        out = s->edge;
    } else {
        qsort(s->cand, (size_t)nc, sizeof *s->cand, cand_cmp);
    }
    for (int32_t i = 0; i < n_out; i++) {
        ids[i] = out[i].id;
        probs[i] = (float)(out[i].w / sum);
    }
    return (size_t)nc;
}
