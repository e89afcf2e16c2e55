/*
 * test_attn.c - the tiled prompt attention kernel (kern_attn_tile_best) against a double-precision
 * reference, for each KV cache type (F32, F16, Q8_0).
 *
 * Shapes: head size 64 and 128; 1..8 query heads per KV head; 1..37 query tokens at consecutive
 * positions after a prefix of 0..100 cached positions (so tiles start inside, at and past the
 * kernel's block boundaries), plus tiles whose positions are not consecutive.  The cache holds two
 * KV heads per row and the kernel reads the second, and queries / outputs sit inside wider rows,
 * so every stride is exercised.
 *
 * Reference: the cached rows dequantized by the type's scalar to_float (the cache's own rounding
 * is not the kernel's error), scores, softmax and weighted sum in double.  A kernel output must be
 * within 1e-5 of the largest |v| of its head (float rounding of scores near 1 and of sums of up to
 * 137 terms is some 1e-6).  Also: each query's output is bit-identical whether it shares its tile
 * with other tokens or runs alone, the property the engine relies on for batch independence.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testutil.h"
#include "kern/kern.h"

#define KV_HEADS 2 /* per cached row; the kernel reads the second */
#define MAX_POS 160

typedef struct {
    uint32_t type;
    int64_t d, row_bytes, head_bytes;
    uint8_t *k, *v;   /* (MAX_POS, row_bytes) */
    double *kf, *vf;  /* (MAX_POS, d) the second head dequantized */
} cache;

static void cache_fill(cache *c, uint32_t type, int64_t d) {
    const kern_type_traits *tr = kern_traits(type);
    c->type = type, c->d = d;
    c->head_bytes = d / tr->blck * tr->type_size;
    c->row_bytes = KV_HEADS * c->head_bytes;
    c->k = malloc((size_t)(MAX_POS * c->row_bytes));
    c->v = malloc((size_t)(MAX_POS * c->row_bytes));
    c->kf = malloc(sizeof(double) * (size_t)(MAX_POS * d));
    c->vf = malloc(sizeof(double) * (size_t)(MAX_POS * d));
    float *x = malloc(sizeof(float) * (size_t)(KV_HEADS * d)), *y = malloc(sizeof(float) * (size_t)d);
    for (int64_t j = 0; j < MAX_POS; j++)
        for (int kv = 0; kv < 2; kv++) {
            uint8_t *row = (kv ? c->v : c->k) + j * c->row_bytes;
            for (int64_t e = 0; e < KV_HEADS * d; e++) x[e] = rng_gauss() * (kv ? 2.0f : 1.0f);
            for (int h = 0; h < KV_HEADS; h++) tr->from_float(x + h * d, row + h * c->head_bytes, d);
            tr->to_float(row + c->head_bytes, y, d);
            for (int64_t e = 0; e < d; e++) (kv ? c->vf : c->kf)[j * d + e] = y[e];
        }
    free(x), free(y);
}

static void cache_free(cache *c) { free(c->k), free(c->v), free(c->kf), free(c->vf); }

/* out = sum_{j <= pos} softmax_j(scale q . k_j) v_j in double */
static void reference(const cache *c, const float *q, int64_t pos, float scale, double *out) {
    const int64_t d = c->d;
    double *s = malloc(sizeof(double) * (size_t)(pos + 1)), mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j <= pos; j++) {
        double dot = 0;
        for (int64_t e = 0; e < d; e++) dot += (double)q[e] * c->kf[j * d + e];
        s[j] = dot * scale;
        if (s[j] > mx) mx = s[j];
    }
    for (int64_t j = 0; j <= pos; j++) sum += s[j] = exp(s[j] - mx);
    for (int64_t e = 0; e < d; e++) out[e] = 0;
    for (int64_t j = 0; j <= pos; j++)
        for (int64_t e = 0; e < d; e++) out[e] += s[j] / sum * c->vf[j * d + e];
    free(s);
}

/* Runs one tile of nq tokens (positions pos[]) x ng heads; returns the number of output values
 * off the reference, and checks that each token alone gives bit-identical outputs. */
static int check_tile(kern_attn_tile_fn fn, const cache *c, int nq, int ng, const int64_t *pos, float qmag,
                      int *not_alone) {
    const int64_t d = c->d, q_stride = (ng + 1) * d, out_stride = (ng + 2) * d;
    float *q = malloc(sizeof(float) * (size_t)(nq * q_stride)), *out = malloc(sizeof(float) * (size_t)(nq * out_stride));
    float *one = malloc(sizeof(float) * (size_t)out_stride);
    double *ref = malloc(sizeof(double) * (size_t)d), vmax = 0;
    for (int64_t e = 0; e < nq * q_stride; e++) q[e] = rng_gauss() * qmag;
    for (int64_t e = 0; e < nq * out_stride; e++) out[e] = NAN; /* the kernel must overwrite */
    for (int64_t e = 0; e < MAX_POS * d; e++) vmax = fmax(vmax, fabs(c->vf[e]));
    const float scale = 1.0f / sqrtf((float)d);
    void *scratch = aligned_alloc(32, (size_t)(kern_attn_tile_scratch(d, (int64_t)nq * ng) + 31) / 32 * 32);
    kern_attn_tile a = { d, nq, ng, pos, q, q_stride, c->k + c->head_bytes, c->v + c->head_bytes,
                         (uint64_t)c->row_bytes, scale, out, out_stride };
    fn(&a, scratch);
    int bad = 0;
    for (int t = 0; t < nq; t++)
        for (int i = 0; i < ng; i++) {
            reference(c, q + t * q_stride + i * d, pos[t], scale, ref);
            for (int64_t e = 0; e < d; e++) {
                const double got = out[t * out_stride + i * d + e];
                if (!(fabs(got - ref[e]) <= 1e-5 * vmax)) {
                    if (bad < 3)
                        printf("  %s d=%lld nq=%d ng=%d token %d (pos %lld) head %d [%lld]: %.7g, want %.7g\n",
                               kern_traits(c->type)->name, (long long)d, nq, ng, t, (long long)pos[t], i,
                               (long long)e, got, ref[e]);
                    bad++;
                }
            }
        }
    for (int t = 0; t < nq; t++) {
        kern_attn_tile alone = a;
        alone.nq = 1, alone.pos = pos + t, alone.q = q + t * q_stride, alone.out = one;
        fn(&alone, scratch);
        if (memcmp(one, out + t * out_stride, sizeof(float) * (size_t)(ng * d))) (*not_alone)++;
    }
    free(q), free(out), free(one), free(ref), free(scratch);
    return bad;
}

static void test_type(uint32_t type) {
    const char *name = kern_traits(type)->name;
    static const int64_t ds[] = { 64, 128 };
    static const int64_t prefixes[] = { 0, 3, 31, 32, 61, 100 };
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        const int64_t d = ds[di];
        kern_attn_tile_fn fn = kern_attn_tile_best(type, d);
        if (!fn) {
            printf("  %s d=%lld: no tiled kernel on this CPU (%s), skipped\n", name, (long long)d,
                   kern_isa_name(kern_active_isa()));
            continue;
        }
        cache c;
        cache_fill(&c, type, d);
        int bad = 0, not_alone = 0, tiles = 0;
        int64_t pos[40];
        for (int ng = 1; ng <= 8; ng++)
            for (size_t pi = 0; pi < sizeof prefixes / sizeof prefixes[0]; pi++)
                for (int nq = 1; nq <= 37; nq += (ng <= 2 ? 3 : 7)) {
                    for (int t = 0; t < nq; t++) pos[t] = prefixes[pi] + t;
                    bad += check_tile(fn, &c, nq, ng, pos, ng == 3 ? 4.0f : 1.0f, &not_alone), tiles++;
                }
        /* positions out of order and with gaps */
        for (int nq = 2; nq <= 9; nq++) {
            for (int t = 0; t < nq; t++) pos[t] = (int64_t)(rng_u64() % MAX_POS);
            bad += check_tile(fn, &c, nq, 6, pos, 1.0f, &not_alone), tiles++;
        }
        CHECK(bad == 0, "%s d=%lld tiled attention vs double reference: %d values off", name, (long long)d, bad);
        CHECK(not_alone == 0, "%s d=%lld: %d tokens differ between their tile and a tile of their own", name,
              (long long)d, not_alone);
        printf("  %-4s d=%-3lld %d tiles: %d values off, %d tokens differ alone\n", name, (long long)d, tiles, bad,
               not_alone);
        cache_free(&c);
    }
}

int main(void) {
    rng_state = 0x5eeda77e;
#if defined(__x86_64__)
    const int isa = kern_active_isa();
    if (isa == KERN_ISA_AVX2 || isa == KERN_ISA_AVX512)
        CHECK(kern_attn_tile_best(GGUF_TYPE_F16, 128) != NULL, "an AVX2 CPU has the tiled attention kernel");
#endif
    CHECK(kern_attn_tile_best(GGUF_TYPE_F16, 100) == NULL, "no tiled kernel for a head size not a multiple of 8");
    CHECK(kern_attn_tile_best(GGUF_TYPE_Q4_K, 128) == NULL, "no tiled kernel for a non-KV type");
    test_type(GGUF_TYPE_F32);
    test_type(GGUF_TYPE_F16);
    test_type(GGUF_TYPE_Q8_0);
    return check_done("test_attn");
}
