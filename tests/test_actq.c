/*
 * test_actq.c - tests of the Q8_16 activation format (src/kern/actq.c, actq_avx2.c, actq_neon.c).
 *
 * "The fast ISA" below is AVX2 + FMA on x86-64 (when the CPU has it) and NEON on arm64; its name
 * is printed with its results.
 *
 * 1. Quantizer: the fast ISA's quantizer writes the same bytes as the reference on random rows, on
 *    exact rounding ties (x / d = k + 0.5, where roundf goes away from zero and the hardware's
 *    nearest mode would not), on values next to ties, on zeros, on huge outliers, inf and NaN.
 *    Dequantized values are within d/2 of the input, s = d * sum(qs), NaN becomes 0.
 * 2. Reference dots: for every weight type, the reference dot equals the double-precision dot of
 *    the dequantized weight row (kern_traits(type)->to_float, written independently in
 *    quants_ref.c) with the dequantized activation row, to 1e-5 of the sum of |terms|.  This
 *    pins the semantics independently of the integer arithmetic.
 * 3. Fast ISA dots: equal to the reference dots to 1e-5 of the sum of |terms| for 1, 2, 3, 7, 8 and
 *    33 blocks, with weights from the reference quantizers and with random bytes under sane
 *    scales (Q8_0: with -128, which the quantizer never writes).  Skipped (with a message)
 *    where there is no fast ISA.
 *
 * 4. Batched kernels (gemm_avx2.c, gemm_q8_0_avx2.c, kern_ops.gemm): for every weight type,
 *    panels of 1..8 rows (pack) times 1..9, 16, 33 and 64 tokens (gemm: the 4-token
 *    micro-kernel and its 1-token remainder) equal the reference dot of every (row, token) pair
 *    to 1e-5 of its sum of |terms|, and write nothing outside their nr x nt outputs.  Skipped without AVX2.
 * 5. kern_matmul on 3 threads for n = 1..9, 16, 33, 64 tokens and odd and even row counts, for
 *    Q4_K, Q6_K, Q8_0, Q5_K and Q4_0: every output equals the reference dot of the row with the
 *    reference-quantized activation row (kern_matmul's own quantizer is bit-identical to it),
 *    to the same tolerance; the gaps of a wider output stride stay untouched.
 *
 * "Sum of |terms|" is sum_i (|w_i| + 2 |beta_g|) * |a_i| with beta_g the offset of weight i's
 * group (actq_impl.h): it bounds every term of any split of the dot into scaled integer sums.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testutil.h"
#include "kern/actq_impl.h"
#include "kern/kern.h"
#include "kern/quants.h"

/* ---- random numbers (splitmix64, Box-Muller) -------------------------------------------- */


/* Gaussian row whose scale changes every 16 elements (over four orders of magnitude). */
static void fill_row(float *x, int64_t n, float mean) {
    for (int64_t i = 0; i < n; i += 16) {
        float sigma = (float)pow(10.0, 4.0 * rng_uniform() - 2.0);
        for (int l = 0; l < 16; l++) x[i + l] = mean * sigma + sigma * rng_gauss();
    }
}

/* The Q8_16 kernels of the fast ISA of this build and CPU; name NULL if there is none. */
typedef struct {
    const char *name;
    kern_from_float_fn quantize;
    const kern_vec_dot_fn *dots; /* indexed by weight type */
} fast_isa;

static fast_isa find_fast(void) {
    fast_isa f = { NULL, NULL, NULL };
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        f = (fast_isa){ "avx2", kern_q8_16_quantize_avx2, kern_q8_16_dot_avx2 };
#elif defined(__aarch64__)
    f = (fast_isa){ "neon", kern_q8_16_quantize_neon, kern_q8_16_dot_neon };
#endif
    return f;
}

/* ---- quantizer ----------------------------------------------------------------------------- */

/* Quantizes x with the reference (and the fast ISA's quantizer when present); checks they agree
 * byte for byte and the per-element invariants.  Returns the reference blocks in out (n / 32 of
 * them). */
static void check_quantize(const char *what, const float *x, int64_t n, block_q8_16 *out, const fast_isa *fast) {
    const int64_t nb = n / QK8_16;
    kern_quantize_q8_16_ref(x, out, n);
    if (fast->quantize) {
        block_q8_16 *v = malloc((size_t)nb * sizeof *v);
        memset(v, 0x5A, (size_t)nb * sizeof *v);
        fast->quantize(x, v, n);
        int64_t bad = -1;
        for (int64_t i = 0; i < nb && bad < 0; i++)
            if (memcmp(&v[i], &out[i], sizeof *v)) bad = i;
        CHECK(bad < 0, "%s: %s quantizer differs from reference at block %lld", what, fast->name, (long long)bad);
        free(v);
    }
    float *back = malloc((size_t)n * sizeof(float));
    kern_dequantize_q8_16_ref(out, back, n);
    int64_t bad_err = -1, bad_s = -1, bad_nan = -1;
    for (int64_t i = 0; i < nb; i++) {
        for (int g = 0; g < 2; g++) {
            const float d = out[i].d[g];
            int sum = 0;
            for (int l = 0; l < 16; l++) {
                const int64_t e = QK8_16 * i + 16 * g + l;
                sum += out[i].qs[16 * g + l];
                if (x[e] != x[e]) {
                    if (out[i].qs[16 * g + l] != 0 && bad_nan < 0) bad_nan = e;
                    continue;
                }
                /* d/2 plus float rounding of x * id and of d * q */
                const double err = fabs((double)x[e] - back[e]);
                if (isfinite(d) && err > 0.5 * d * (1 + 1e-6) + 1e-6 * fabs((double)x[e]) && bad_err < 0) bad_err = e;
            }
            const float want_s = d * (float)sum; /* NaN when d is inf: compare the bits */
            if (memcmp(&want_s, &out[i].s[g], sizeof want_s) && bad_s < 0) bad_s = i;
            for (int l = 0; l < 16; l++)
                if (out[i].qs[16 * g + l] == -128 && bad_s < 0) bad_s = i;
        }
    }
    CHECK(bad_err < 0, "%s: |x - x'| > d/2 at element %lld (x %g, x' %g)", what, (long long)bad_err,
          bad_err < 0 ? 0.0 : x[bad_err], bad_err < 0 ? 0.0 : back[bad_err]);
    CHECK(bad_s < 0, "%s: s != d * sum(qs) (or -128) in block %lld", what, (long long)bad_s);
    CHECK(bad_nan < 0, "%s: NaN not quantized to 0 at element %lld", what, (long long)bad_nan);
    free(back);
}

static void test_quantizer(const fast_isa *fast) {
    enum { N = 32 * 41 };
    static float x[N];
    static block_q8_16 q[N / QK8_16];

    for (int rep = 0; rep < 300; rep++) {
        fill_row(x, N, rep % 3 == 0 ? 0.5f : 0.f);
        check_quantize("random", x, N, q, fast);
    }

    /* exact ties: amax = 31.75 gives d = 0.25 and id = 4 exactly, so x = (k + 0.5) / 4 makes
     * x * id = k + 0.5 exactly; roundf sends it away from zero */
    for (int i = 0; i < N; i++) {
        int k = (i % 16 == 0) ? 126 : (int)(rng_u64() % 253) - 126; /* -126..126 */
        x[i] = ((float)k + 0.5f) / 4.f;
        if (i % 16 == 0) x[i] = (i & 16) ? 31.75f : -31.75f;
    }
    check_quantize("ties", x, N, q, fast);
    int bad_tie = -1;
    for (int i = 0; i < N; i++) {
        const float v = x[i] * 4.f;
        const int want = (int)roundf(v);
        if (q[i / 32].qs[i % 32] != want && bad_tie < 0) bad_tie = i;
        if (q[i / 32].d[(i / 16) % 2] != 0.25f && bad_tie < 0) bad_tie = i;
    }
    CHECK(bad_tie < 0, "ties: element %d (x * id = %g) not rounded away from zero", bad_tie,
          bad_tie < 0 ? 0.0 : x[bad_tie] * 4.0);

    /* just below and above ties */
    for (int i = 0; i < N; i++) {
        float t = ((float)((int)(rng_u64() % 253) - 126) + 0.5f) / 4.f;
        x[i] = (i % 3 == 0) ? nextafterf(t, 0.f) : (i % 3 == 1) ? nextafterf(t, 100.f) : nextafterf(t, -100.f);
        if (i % 16 == 0) x[i] = 31.75f;
    }
    check_quantize("near ties", x, N, q, fast);

    /* zeros (also -0) */
    for (int i = 0; i < N; i++) x[i] = (i & 1) ? 0.f : -0.f;
    check_quantize("zeros", x, N, q, fast);
    int bad_zero = 0;
    for (int i = 0; i < N / QK8_16; i++)
        for (int g = 0; g < 2; g++) bad_zero |= q[i].d[g] != 0.f || q[i].s[g] != 0.f;
    for (int i = 0; i < N; i++) bad_zero |= q[i / 32].qs[i % 32] != 0;
    CHECK(!bad_zero, "zeros: nonzero output");

    /* a huge outlier per row segment, inf and NaN */
    fill_row(x, N, 0.f);
    x[5] = 1e30f;
    x[40] = -3e38f;
    check_quantize("outliers", x, N, q, fast);
    CHECK(q[0].qs[5] == 127 && q[1].qs[8] == -127, "outliers: extreme values not +-127");
    x[100] = INFINITY;
    x[200] = -INFINITY;
    x[300] = NAN;
    x[301] = -NAN;
    check_quantize("inf/nan", x, N, q, fast);
    CHECK(q[300 / 32].qs[300 % 32] == 0 && q[301 / 32].qs[301 % 32] == 0, "NaN not quantized to 0");
}

/* ---- dot products --------------------------------------------------------------------------- */

static const uint32_t dot_types[] = {
    GGUF_TYPE_Q4_0, GGUF_TYPE_Q4_1, GGUF_TYPE_Q5_0, GGUF_TYPE_Q5_1, GGUF_TYPE_Q8_0,
    GGUF_TYPE_Q2_K, GGUF_TYPE_Q3_K, GGUF_TYPE_Q4_K, GGUF_TYPE_Q5_K, GGUF_TYPE_Q6_K,
};
#define N_DOT_TYPES (sizeof(dot_types) / sizeof(dot_types[0]))

static float f16v(f16_t h) { return f16_to_f32(h); }

/* |beta_g| (actq_impl.h) of group g of a weight block, or an upper bound of it (Q3_K). */
static double group_beta(uint32_t type, const void *blk, int g) {
    switch (type) {
    case GGUF_TYPE_Q4_0: return 8.0 * fabs(f16v(((const block_q4_0 *)blk)->d));
    case GGUF_TYPE_Q4_1: return fabs(f16v(((const block_q4_1 *)blk)->m));
    case GGUF_TYPE_Q5_0: return 16.0 * fabs(f16v(((const block_q5_0 *)blk)->d));
    case GGUF_TYPE_Q5_1: return fabs(f16v(((const block_q5_1 *)blk)->m));
    case GGUF_TYPE_Q8_0: return 0;
    case GGUF_TYPE_Q2_K: {
        const block_q2_K *b = blk;
        return fabs(f16v(b->dmin)) * (b->scales[g] >> 4);
    }
    case GGUF_TYPE_Q3_K: return 4.0 * 32.0 * fabs(f16v(((const block_q3_K *)blk)->d));
    case GGUF_TYPE_Q4_K: case GGUF_TYPE_Q5_K: {
        const block_q4_K *b4 = blk;
        const block_q5_K *b5 = blk;
        const uint8_t *scales = type == GGUF_TYPE_Q4_K ? b4->scales : b5->scales;
        const f16_t dmin = type == GGUF_TYPE_Q4_K ? b4->dmin : b5->dmin;
        uint8_t sc, m;
        kq_get_scale_min_k4(g / 2, scales, &sc, &m);
        return fabs(f16v(dmin)) * m;
    }
    case GGUF_TYPE_Q6_K: {
        const block_q6_K *b = blk;
        return 32.0 * fabs(f16v(b->d) * b->scales[g]);
    }
    }
    return 0;
}

/* Random f16 scale: sign random, magnitude 1e-3..1e-1. */
static f16_t rand_scale(int allow_negative) {
    float v = (float)pow(10.0, -3.0 + 2.0 * rng_uniform());
    if (allow_negative && (rng_u64() & 1)) v = -v;
    return f32_to_f16(v);
}

/* Random bytes with the float fields replaced by sane scales. */
static void random_block(uint32_t type, void *blk, size_t size) {
    uint8_t *p = blk;
    for (size_t i = 0; i < size; i++) p[i] = (uint8_t)rng_u64();
    switch (type) {
    case GGUF_TYPE_Q4_0: ((block_q4_0 *)blk)->d = rand_scale(1); break;
    case GGUF_TYPE_Q4_1: ((block_q4_1 *)blk)->d = rand_scale(1); ((block_q4_1 *)blk)->m = rand_scale(1); break;
    case GGUF_TYPE_Q5_0: ((block_q5_0 *)blk)->d = rand_scale(1); break;
    case GGUF_TYPE_Q5_1: ((block_q5_1 *)blk)->d = rand_scale(1); ((block_q5_1 *)blk)->m = rand_scale(1); break;
    case GGUF_TYPE_Q8_0: {
        /* -128 is the byte the quantizer never writes: planted in every block, and a quarter
         * of the blocks all -128 (the largest integer sums of the batched kernel) */
        block_q8_0 *b = blk;
        b->d = rand_scale(1);
        b->qs[rng_u64() % QK8_0] = -128;
        if (rng_u64() % 4 == 0) memset(b->qs, 0x80, QK8_0);
        break;
    }
    case GGUF_TYPE_Q2_K: ((block_q2_K *)blk)->d = rand_scale(0); ((block_q2_K *)blk)->dmin = rand_scale(0); break;
    case GGUF_TYPE_Q3_K: ((block_q3_K *)blk)->d = rand_scale(1); break;
    case GGUF_TYPE_Q4_K: ((block_q4_K *)blk)->d = rand_scale(0); ((block_q4_K *)blk)->dmin = rand_scale(0); break;
    case GGUF_TYPE_Q5_K: ((block_q5_K *)blk)->d = rand_scale(0); ((block_q5_K *)blk)->dmin = rand_scale(0); break;
    case GGUF_TYPE_Q6_K: ((block_q6_K *)blk)->d = rand_scale(1); break;
    }
}

/* A weight row of nblk blocks: from the reference quantizer (mode 0, with a mean so that the
 * min/offset terms matter) or random bytes (mode 1). */
static void make_weights(uint32_t type, const kern_type_traits *tr, int mode, int64_t nblk, uint8_t *w, float *tmp) {
    const int64_t n = nblk * tr->blck;
    if (mode == 0) {
        fill_row(tmp, n, 0.7f * (float)(rng_uniform() - 0.5));
        tr->from_float(tmp, w, n);
    } else {
        for (int64_t i = 0; i < nblk; i++) random_block(type, w + i * tr->type_size, tr->type_size);
    }
}

/* Exact dot of the dequantized rows and the error scale sum (|w| + 2|beta|) * |a|. */
static void dequant_dot(uint32_t type, const kern_type_traits *tr, int64_t nblk, const uint8_t *w,
                        const block_q8_16 *a, float *wf, float *af, double *exact, double *mag) {
    const int64_t n = nblk * tr->blck;
    tr->to_float(w, wf, n);
    kern_dequantize_q8_16_ref(a, af, n);
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        const void *blk = w + (i / tr->blck) * tr->type_size;
        const double beta = group_beta(type, blk, (int)((i % tr->blck) / 16));
        e += (double)wf[i] * af[i];
        m += (fabs((double)wf[i]) + 2 * beta) * fabs((double)af[i]);
    }
    *exact = e;
    *mag = m;
}

static void test_dots(const fast_isa *fi) {
    static const int nblocks[] = {1, 2, 3, 7, 8, 33};
    const int64_t max_n = 33 * QK_K;
    uint8_t *w = malloc((size_t)max_n * 2); /* >= 33 blocks of any type */
    float *x = malloc((size_t)max_n * sizeof(float));
    float *wf = malloc((size_t)max_n * sizeof(float));
    float *af = malloc((size_t)max_n * sizeof(float));
    block_q8_16 *a = malloc((size_t)(max_n / QK8_16) * sizeof *a);

    for (size_t t = 0; t < N_DOT_TYPES; t++) {
        const uint32_t type = dot_types[t];
        const kern_type_traits *tr = kern_traits(type);
        const kern_vec_dot_fn ref = kern_q8_16_dot_ref[type];
        CHECK(tr && ref, "type %u: no traits or no reference dot", type);
        if (!tr || !ref) continue;
        const char *fname = fi->name ? fi->name : "fast";
        const kern_vec_dot_fn fast = fi->dots ? fi->dots[type] : NULL;
        CHECK(!fi->dots || fast, "%s: no %s dot", tr->name, fname);
        double worst_ref = 0, worst_fast = 0;
        int n_ref_bad = 0, n_fast_bad = 0, n_cases = 0;
        for (int mode = 0; mode < 2; mode++) {
            for (size_t k = 0; k < sizeof nblocks / sizeof nblocks[0]; k++) {
                for (int rep = 0; rep < 4; rep++) {
                    const int64_t nblk = nblocks[k], n = nblk * tr->blck;
                    make_weights(type, tr, mode, nblk, w, x);
                    fill_row(x, n, 0.f);
                    kern_quantize_q8_16_ref(x, a, n);
                    double exact, mag;
                    dequant_dot(type, tr, nblk, w, a, wf, af, &exact, &mag);
                    float sr = NAN;
                    ref(n, &sr, w, a);
                    const double tol = 1e-5 * mag + 1e-30;
                    const double er = fabs(sr - exact) / tol;
                    if (er > worst_ref) worst_ref = er;
                    if (!(er <= 1.0)) n_ref_bad++;
                    if (fast) {
                        float sf = NAN;
                        fast(n, &sf, w, a);
                        const double ea = fabs((double)sf - sr) / tol;
                        if (ea > worst_fast) worst_fast = ea;
                        if (!(ea <= 1.0)) {
                            if (n_fast_bad == 0)
                                printf("  %s mode %d blocks %lld: %s %.9g ref %.9g exact %.9g mag %.3g\n", tr->name,
                                       mode, (long long)nblk, fname, sf, sr, exact, mag);
                            n_fast_bad++;
                        }
                    }
                    n_cases++;
                }
            }
        }
        CHECK(n_ref_bad == 0, "%s: reference dot off the dequantized dot in %d of %d cases (worst %.3g x tol)",
              tr->name, n_ref_bad, n_cases, worst_ref);
        if (fast)
            CHECK(n_fast_bad == 0, "%s: %s dot off the reference in %d of %d cases (worst %.3g x tol)",
                  tr->name, fname, n_fast_bad, n_cases, worst_fast);
        printf("  %-5s worst error / (1e-5 sum|terms|): ref %.2e, %s %.2e\n", tr->name, worst_ref, fname, worst_fast);
    }
    free(w);
    free(x);
    free(wf);
    free(af);
    free(a);
}

/* ---- batched kernels ------------------------------------------------------------------------ */

/* nr weight rows of nblk blocks each, and nt activation rows quantized by the reference;
 * mag[r * nt + t] = the sum of |terms| of the pair, ref[...] its reference dot. */
typedef struct {
    int64_t n, nr, nt;
    uint64_t row_bytes, act_bytes;
    uint8_t *w;
    block_q8_16 *a;
    float *x;      /* nt float activation rows (kern_matmul's input) */
    double *mag;
    float *ref;
} batch_case;

static void batch_make(batch_case *bc, uint32_t type, int mode, int64_t nblk, int64_t nr, int64_t nt) {
    const kern_type_traits *tr = kern_traits(type);
    bc->n = nblk * tr->blck;
    bc->nr = nr;
    bc->nt = nt;
    bc->row_bytes = (uint64_t)nblk * tr->type_size;
    bc->act_bytes = (uint64_t)(bc->n / QK8_16) * sizeof(block_q8_16);
    bc->w = malloc(bc->row_bytes * (uint64_t)nr);
    bc->a = malloc(bc->act_bytes * (uint64_t)nt);
    bc->x = malloc(sizeof(float) * (size_t)(bc->n * nt));
    bc->mag = malloc(sizeof(double) * (size_t)(nr * nt));
    bc->ref = malloc(sizeof(float) * (size_t)(nr * nt));
    float *tmp = malloc(sizeof(float) * (size_t)bc->n), *wf = malloc(sizeof(float) * (size_t)bc->n);
    float *af = malloc(sizeof(float) * (size_t)bc->n);
    for (int64_t r = 0; r < nr; r++) make_weights(type, tr, mode, nblk, bc->w + (uint64_t)r * bc->row_bytes, tmp);
    for (int64_t t = 0; t < nt; t++) {
        float *xt = bc->x + t * bc->n;
        fill_row(xt, bc->n, t % 3 == 0 ? 0.3f : 0.f);
        kern_quantize_q8_16_ref(xt, (uint8_t *)bc->a + (uint64_t)t * bc->act_bytes, bc->n);
    }
    for (int64_t r = 0; r < nr; r++)
        for (int64_t t = 0; t < nt; t++) {
            const uint8_t *wr = bc->w + (uint64_t)r * bc->row_bytes;
            const block_q8_16 *at = (const block_q8_16 *)((const uint8_t *)bc->a + (uint64_t)t * bc->act_bytes);
            double exact;
            dequant_dot(type, tr, nblk, wr, at, wf, af, &exact, &bc->mag[r * nt + t]);
            kern_q8_16_dot_ref[type](bc->n, &bc->ref[r * nt + t], wr, at);
        }
    free(tmp);
    free(wf);
    free(af);
}

static void batch_free(batch_case *bc) {
    free(bc->w);
    free(bc->a);
    free(bc->x);
    free(bc->mag);
    free(bc->ref);
}

/* Compares y[t * ldy + r] with the reference for r < nr, t < nt and checks that the other
 * entries of each y row up to ldy still hold the sentinel; returns the failures and raises
 * *worst to the largest error / tolerance. */
static int batch_compare(const batch_case *bc, const float *y, int64_t ldy, double *worst, const char *what) {
    int bad = 0;
    for (int64_t t = 0; t < bc->nt; t++) {
        for (int64_t r = 0; r < ldy; r++) {
            const float got = y[t * ldy + r];
            if (r >= bc->nr) {
                if (got != -12345.f && bad++ == 0) printf("  %s: write outside the output at t %lld r %lld\n", what, (long long)t, (long long)r);
                continue;
            }
            const double tol = 1e-5 * bc->mag[r * bc->nt + t] + 1e-30;
            const double e = fabs((double)got - bc->ref[r * bc->nt + t]) / tol;
            if (e > *worst) *worst = e;
            if (!(e <= 1.0) && bad++ == 0)
                printf("  %s: row %lld token %lld: got %.9g ref %.9g (%.3g x tol)\n", what, (long long)r, (long long)t, got,
                       bc->ref[r * bc->nt + t], e);
        }
    }
    return bad;
}

static const int batch_tokens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 33, 64};
#define N_BATCH_TOKENS (sizeof batch_tokens / sizeof batch_tokens[0])

static void test_gemm(void) {
#if defined(__x86_64__)
    for (size_t ti = 0; ti < N_DOT_TYPES; ti++) {
        const uint32_t type = dot_types[ti];
        const kern_type_traits *tr = kern_traits(type);
        const kern_gemm_ops *g = &kern_q8_16_gemm_avx2[type];
        CHECK(g->pack && g->gemm, "%s: no avx2 gemm", tr->name);
        if (!g->pack || !g->gemm) continue;
        double worst = 0;
        int bad = 0, cases = 0;
        for (size_t ni = 0; ni < N_BATCH_TOKENS; ni++) {
            const int64_t nt = batch_tokens[ni];
            const int64_t nr = 1 + (int64_t)((ni * 3) % KERN_GEMM_ROWS);           /* 1..8, odd and even */
            const int64_t nblk = tr->blck == QK_K ? 1 + (int64_t)(ni % 3) * 2 : 1 + (int64_t)(ni % 4) * 5; /* 1, 3, 5 | 1 .. 16 */
            batch_case bc;
            batch_make(&bc, type, (int)(ni & 1), nblk, nr, nt);
            void *panel = aligned_alloc(32, g->panel_bytes(bc.n));
            const int64_t ldy = KERN_GEMM_ROWS + 3;
            float *y = malloc(sizeof(float) * (size_t)(nt * ldy));
            for (int64_t i = 0; i < nt * ldy; i++) y[i] = -12345.f;
            g->pack(bc.n, bc.w, bc.row_bytes, (int)nr, panel);
            g->gemm(bc.n, panel, (int)nr, bc.a, bc.act_bytes, nt, y, ldy);
            char what[64];
            snprintf(what, sizeof what, "%s gemm %lld rows x %lld tokens, k %lld", tr->name, (long long)nr, (long long)nt,
                     (long long)bc.n);
            /* batch_compare checks the sentinel up to ldy; rows nr..ldy-1 must be untouched */
            const int b = batch_compare(&bc, y, ldy, &worst, what);
            CHECK(b == 0, "%s: %d outputs wrong", what, b);
            bad += b != 0;
            cases++;
            free(panel);
            free(y);
            batch_free(&bc);
        }
        printf("  %-5s gemm: %d of %d shapes wrong, worst error / tol %.2e\n", tr->name, bad, cases, worst);
    }
#endif
}

static void test_matmul(void) {
    static const uint32_t types[] = { GGUF_TYPE_Q4_K, GGUF_TYPE_Q6_K, GGUF_TYPE_Q8_0, GGUF_TYPE_Q5_K, GGUF_TYPE_Q4_0 };
    static const int64_t rows[] = { 37, 40, 7, 64 };
    seek_err err = { 0 };
    kern_pool *pool = kern_pool_new(3, &err);
    CHECK(pool != NULL, "pool: %s", err.msg);
    if (!pool) return;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t type = types[ti];
        const kern_type_traits *tr = kern_traits(type);
        double worst = 0;
        int bad = 0, cases = 0;
        for (size_t ni = 0; ni < N_BATCH_TOKENS; ni++) {
            const int64_t nt = batch_tokens[ni], m = rows[ni % 4];
            const int64_t nblk = tr->blck == QK_K ? 3 : 10;
            batch_case bc;
            batch_make(&bc, type, 0, nblk, m, nt);
            const int64_t ldy = m + 5;
            float *y = malloc(sizeof(float) * (size_t)(nt * ldy));
            for (int64_t i = 0; i < nt * ldy; i++) y[i] = -12345.f;
            void *scratch = malloc(kern_matmul_scratch(type, bc.n, nt) + 64);
            const kern_mat W = { bc.w, type, bc.n, m, bc.row_bytes };
            kern_matmul(pool, &W, bc.x, nt, y, ldy, scratch);
            char what[64];
            snprintf(what, sizeof what, "%s matmul m %lld n %lld k %lld", tr->name, (long long)m, (long long)nt, (long long)bc.n);
            const int b = batch_compare(&bc, y, ldy, &worst, what);
            CHECK(b == 0, "%s: %d outputs wrong", what, b);
            bad += b != 0;
            cases++;
            free(y);
            free(scratch);
            batch_free(&bc);
        }
        printf("  %-5s matmul: %d of %d shapes wrong, worst error / tol %.2e\n", tr->name, bad, cases, worst);
    }
    kern_pool_free(pool);
}

int main(void) {
    rng_state = 0xAC7Bu;
    base_init();
    const fast_isa fast = find_fast();
    if (fast.name) printf("fast ISA: %s, testing its quantizer and dots against the reference\n", fast.name);
    else printf("no fast ISA (avx2 or neon): those checks skipped\n");
    test_quantizer(&fast);
    test_dots(&fast);
    if (fast.name && !strcmp(fast.name, "avx2")) test_gemm();
    test_matmul();
    return check_done("test_actq");
}
