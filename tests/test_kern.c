/*
 * test_kern.c - every fast kernel against the scalar reference (kern_traits), and the
 * run-time dispatch.
 *
 * For each ISA the CPU can run (other than scalar) and each type its table accelerates:
 *   vec_dot    on random weight rows (quantized by the reference, and raw random bytes with
 *              finite scales) against reference-quantized random activations, for 1, 2, 3, 7,
 *              8 and 33 blocks; equal to the reference within float rounding of the sum;
 *   from_float bit-identical blocks to the reference quantizer, including rounding ties,
 *              zeros, equal +-max values, tiny and non-finite inputs;
 *   to_float   bit-identical floats;
 *   axpy, dot_f32 (the KV cache types) within float rounding of the reference.
 * The batched kernels of the float weight types (gemm_float_avx2.c, x86-64 with AVX2): pack +
 * gemm for panels of 1..8 rows x 1..9, 16, 33, 64 tokens and row lengths 1 .. 1024 (multiples
 * of 8 and not), and kern_matmul on 3 threads, against the double-precision dot of the weights
 * as stored, within the float-rounding bound of any summation order; nothing outside the
 * outputs written; kern_matmul_ex's kernel choice (use_gemm 0: the 1x1 dot bit for bit; 1: a
 * token's result independent of the tokens sharing the call).
 * ISAs that are absent (or present but without kernels in this build) are reported, not tested.
 * All data come from a fixed-seed PRNG.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testutil.h"
#include "kern/kern.h"
#include "kern/actq.h"
#include "kern/actq_impl.h"
#include "kern/quants.h"

/* ---- fixed-seed random numbers ----------------------------------------------------- */


static float rng_unit(void) { return (float)(rng_u64() >> 40) / (float)(1 << 24); } /* [0, 1) */
static float rng_sym(void) { return 2.0f * rng_unit() - 1.0f; }                    /* [-1, 1) */

/* Roughly normal values with a per-call magnitude between 1e-3 and 1e3, plus rare outliers. */
static void fill_floats(float *x, int64_t n) {
    float scale = powf(10.0f, 6.0f * rng_unit() - 3.0f);
    for (int64_t i = 0; i < n; i++) {
        float g = rng_sym() + rng_sym() + rng_sym();
        if ((rng_u64() & 63) == 0) g *= 8.0f;
        x[i] = g * scale;
    }
}

static void fill_bytes(void *p, size_t n) {
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rng_u64();
}

static f16_t rand_scale_f16(void) { return f32_to_f16(rng_sym() * 0.05f); }

/* Random bytes for every block of a weight row, then finite random f16 scale fields so the
 * integer paths see every bit pattern while the result stays finite. */
static void fill_random_blocks(uint32_t type, void *row, int64_t nblocks, uint32_t type_size) {
    fill_bytes(row, (size_t)(nblocks * type_size));
    for (int64_t b = 0; b < nblocks; b++) {
        uint8_t *blk = (uint8_t *)row + b * type_size;
        f16_t h[2] = { rand_scale_f16(), rand_scale_f16() };
        size_t off[2] = { SIZE_MAX, SIZE_MAX };
        switch (type) {
        case GGUF_TYPE_Q4_0: off[0] = offsetof(block_q4_0, d); break;
        case GGUF_TYPE_Q5_0: off[0] = offsetof(block_q5_0, d); break;
        case GGUF_TYPE_Q8_0: off[0] = offsetof(block_q8_0, d); break;
        case GGUF_TYPE_Q4_1: off[0] = offsetof(block_q4_1, d), off[1] = offsetof(block_q4_1, m); break;
        case GGUF_TYPE_Q5_1: off[0] = offsetof(block_q5_1, d), off[1] = offsetof(block_q5_1, m); break;
        case GGUF_TYPE_Q2_K: off[0] = offsetof(block_q2_K, d), off[1] = offsetof(block_q2_K, dmin); break;
        case GGUF_TYPE_Q3_K: off[0] = offsetof(block_q3_K, d); break;
        case GGUF_TYPE_Q4_K: off[0] = offsetof(block_q4_K, d), off[1] = offsetof(block_q4_K, dmin); break;
        case GGUF_TYPE_Q5_K: off[0] = offsetof(block_q5_K, d), off[1] = offsetof(block_q5_K, dmin); break;
        case GGUF_TYPE_Q6_K: off[0] = offsetof(block_q6_K, d); break;
        case GGUF_TYPE_F16: /* every element is a "scale": keep them finite */
            for (uint32_t k = 0; k < type_size / 2; k++) {
                f16_t v = f32_to_f16(rng_sym() * 4.0f);
                memcpy(blk + 2 * k, &v, 2);
            }
            break;
        case GGUF_TYPE_BF16:
            for (uint32_t k = 0; k < type_size / 2; k++) {
                bf16_t v = f32_to_bf16(rng_sym() * 4.0f);
                memcpy(blk + 2 * k, &v, 2);
            }
            break;
        case GGUF_TYPE_F32:
            for (uint32_t k = 0; k < type_size / 4; k++) {
                float v = rng_sym() * 4.0f;
                memcpy(blk + 4 * k, &v, 4);
            }
            break;
        default: break;
        }
        for (int k = 0; k < 2; k++)
            if (off[k] != SIZE_MAX) memcpy(blk + off[k], &h[k], sizeof(f16_t));
    }
}

/* ---- vec_dot ----------------------------------------------------------------------- */

/* Elements per "block" for the block counts below: the larger block of the weight and
 * activation types, and 32 for float types (so tails of 1..31 floats are tried too). */
static int64_t unit_elems(const kern_type_traits *tw, const kern_type_traits *ta) {
    int64_t u = tw->blck > ta->blck ? tw->blck : ta->blck;
    return u == 1 ? 32 : u;
}

/* sum_i |x_i * y_i| of the dequantized rows: the scale of the float rounding error. */
static double abs_dot(const kern_type_traits *tw, const void *x, const kern_type_traits *ta,
                      const void *y, int64_t n, float *fx, float *fy) {
    tw->to_float(x, fx, n);
    ta->to_float(y, fy, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)fx[i] * fy[i]);
    return s;
}

static const int block_counts[] = { 1, 2, 3, 7, 8, 33 };

static void test_vec_dot(int isa, uint32_t type, kern_vec_dot_fn fast) {
    const kern_type_traits *tw = kern_traits(type);
    const kern_type_traits *ta = kern_traits(tw->vec_dot_type);
    CHECK(ta != NULL && ta->from_float != NULL, "%s: activation type %u unusable", tw->name,
          tw->vec_dot_type);
    if (!ta || !ta->from_float) return;
    const int64_t unit = unit_elems(tw, ta);
    const int64_t nmax = 33 * unit + 31;
    float *xf = malloc((size_t)nmax * sizeof(float)), *yf = malloc((size_t)nmax * sizeof(float));
    float *t0 = malloc((size_t)nmax * sizeof(float)), *t1 = malloc((size_t)nmax * sizeof(float));
    uint8_t *x = malloc((size_t)(nmax / tw->blck + 1) * tw->type_size);
    uint8_t *y = malloc((size_t)(nmax / ta->blck + 1) * ta->type_size);
    double worst = 0;
    int fails = 0;
    for (size_t c = 0; c < sizeof block_counts / sizeof block_counts[0]; c++) {
        for (int extra = 0; extra < (unit == 32 && tw->blck == 1 ? 2 : 1); extra++) {
            /* float types: also a ragged length that is no multiple of 8 */
            const int64_t n = block_counts[c] * unit + (extra ? 1 + (int64_t)(rng_u64() % 31) : 0);
            for (int mode = 0; mode < 6; mode++) {
                /* modes 0..2: weights quantized by the reference; 3..5: random bytes */
                if (mode < 3 || !tw->from_float) {
                    fill_floats(xf, n);
                    tw->from_float(xf, x, n);
                } else {
                    fill_random_blocks(type, x, n / tw->blck, tw->type_size);
                }
                fill_floats(yf, n);
                ta->from_float(yf, y, n);
                float ref = NAN, got = NAN;
                tw->vec_dot(n, &ref, x, y);
                fast(n, &got, x, y);
                double scale = abs_dot(tw, x, ta, y, n, t0, t1);
                double err = fabs((double)got - ref);
                double tol = 1e-5 * scale + 1e-30;
                if (scale > 0 && err / scale > worst) worst = err / scale;
                if (!(err <= tol) && fails++ < 5)
                    CHECK(0, "%s %s vec_dot n=%lld mode %d: got %.9g ref %.9g (err %.3g, sum|xy| %.3g)",
                          kern_isa_name(isa), tw->name, (long long)n, mode, got, ref, err, scale);
                else if (err <= tol)
                    CHECK(1, "ok");
            }
        }
    }
    if (fails > 5) CHECK(0, "%s %s vec_dot: %d more mismatches", kern_isa_name(isa), tw->name, fails - 5);
    printf("  %-6s %-5s vec_dot: worst |err| / sum|x*y| = %.2g\n", kern_isa_name(isa), tw->name, worst);
    free(xf), free(yf), free(t0), free(t1), free(x), free(y);
}

/* ---- from_float -------------------------------------------------------------------- */

/* Inputs that exercise the quantizers' corners, one kind per call (k), for n elements. */
static void fill_quant_input(float *x, int64_t n, int64_t blck, int k) {
    switch (k) {
    case 0: fill_floats(x, n); break;
    case 1: /* all zeros, and signed zeros */
        for (int64_t i = 0; i < n; i++) x[i] = (i & 1) ? -0.0f : 0.0f;
        break;
    case 2: /* max |x| = 127 so the scale is exactly 1 (or -1): many exact .5 ties */
        for (int64_t i = 0; i < n; i++) x[i] = 0.5f * (float)((int)(rng_u64() % 509) - 254);
        for (int64_t b = 0; b < n; b += blck) x[b + (int64_t)(rng_u64() % (uint64_t)blck)] = (rng_u64() & 1) ? 127.0f : -127.0f;
        break;
    case 3: /* both +max and -max in the block, in random order */
        fill_floats(x, n);
        for (int64_t b = 0; b < n; b += blck) {
            float m = 1e4f * (1.0f + rng_unit());
            int64_t i0 = (int64_t)(rng_u64() % (uint64_t)blck), i1 = (int64_t)(rng_u64() % (uint64_t)blck);
            x[b + i0] = (rng_u64() & 1) ? m : -m;
            if (i1 != i0) x[b + i1] = -x[b + i0];
        }
        break;
    case 4: /* small integers and halves, scaled by powers of two (ties after scaling) */
        for (int64_t i = 0; i < n; i++)
            x[i] = ldexpf(0.5f * (float)((int)(rng_u64() % 65) - 32), (int)(rng_u64() % 9) - 4);
        break;
    case 5: /* tiny values: subnormal scales and overflowing inverse scales */
        for (int64_t i = 0; i < n; i++) x[i] = rng_sym() * 1e-39f;
        break;
    case 6: /* non-finite values sprinkled into normal ones */
        fill_floats(x, n);
        for (int64_t i = 0; i < n; i++) {
            uint64_t r = rng_u64() % 97;
            if (r == 0) x[i] = NAN;
            else if (r == 1) x[i] = INFINITY;
            else if (r == 2) x[i] = -INFINITY;
        }
        break;
    default: /* huge values */
        for (int64_t i = 0; i < n; i++) x[i] = rng_sym() * 3e38f;
        break;
    }
}

#define N_QUANT_KINDS 8

static void test_from_float(int isa, uint32_t type, kern_from_float_fn fast) {
    const kern_type_traits *t = kern_traits(type);
    const int64_t nmax = 33 * (int64_t)t->blck;
    float *x = malloc((size_t)nmax * sizeof(float));
    size_t bytes = (size_t)(nmax / t->blck) * t->type_size;
    uint8_t *a = malloc(bytes), *b = malloc(bytes);
    int fails = 0;
    for (size_t c = 0; c < sizeof block_counts / sizeof block_counts[0]; c++) {
        const int64_t n = block_counts[c] * (int64_t)t->blck;
        for (int k = 0; k < N_QUANT_KINDS; k++) {
            for (int rep = 0; rep < 4; rep++) {
                fill_quant_input(x, n, t->blck, k);
                size_t nbytes = (size_t)(n / t->blck) * t->type_size;
                memset(a, 0xAA, nbytes), memset(b, 0x55, nbytes);
                t->from_float(x, a, n);
                fast(x, b, n);
                bool same = memcmp(a, b, nbytes) == 0;
                if (!same && fails++ < 5) {
                    size_t i = 0;
                    while (a[i] == b[i]) i++;
                    CHECK(0, "%s %s from_float n=%lld input kind %d: first differing byte %zu "
                          "(block %zu, offset %zu): ref %02x got %02x",
                          kern_isa_name(isa), t->name, (long long)n, k, i, i / t->type_size,
                          i % t->type_size, a[i], b[i]);
                } else if (same) {
                    CHECK(1, "ok");
                }
            }
        }
    }
    if (fails > 5) CHECK(0, "%s %s from_float: %d more mismatches", kern_isa_name(isa), t->name, fails - 5);
    printf("  %-6s %-5s from_float: %d of %d inputs differ from the reference\n", kern_isa_name(isa),
           t->name, fails, (int)(sizeof block_counts / sizeof block_counts[0]) * N_QUANT_KINDS * 4);
    free(x), free(a), free(b);
}

/* ---- to_float ---------------------------------------------------------------------- */

static void test_to_float(int isa, uint32_t type, kern_to_float_fn fast) {
    const kern_type_traits *t = kern_traits(type);
    const int64_t unit = t->blck == 1 ? 32 : t->blck;
    const int64_t nmax = 33 * unit + 31;
    float *a = malloc((size_t)nmax * sizeof(float)), *b = malloc((size_t)nmax * sizeof(float));
    uint8_t *x = malloc((size_t)(nmax / t->blck + 1) * t->type_size);
    for (size_t c = 0; c < sizeof block_counts / sizeof block_counts[0]; c++) {
        for (int extra = 0; extra < 2; extra++) {
            if (extra && t->blck != 1) continue;
            const int64_t n = block_counts[c] * unit + (extra ? 1 + (int64_t)(rng_u64() % 31) : 0);
            fill_random_blocks(type, x, n / t->blck, t->type_size);
            t->to_float(x, a, n);
            fast(x, b, n);
            CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0, "%s %s to_float n=%lld differs",
                  kern_isa_name(isa), t->name, (long long)n);
        }
    }
    printf("  %-6s %-5s to_float: checked\n", kern_isa_name(isa), t->name);
    free(a), free(b), free(x);
}

/* ---- axpy (the KV cache types) ------------------------------------------------------- */

/* y += a * x: the fast kernel fuses the multiply-add (one rounding) where the reference rounds
 * twice, so each element may differ by an ulp of |a * x| + |y|; a wrong scale, block or lane
 * order is off by far more. */
static void test_axpy(int isa, uint32_t type, kern_axpy_fn fast) {
    const kern_type_traits *t = kern_traits(type);
    const int64_t unit = t->blck == 1 ? 32 : t->blck;
    const int64_t nmax = 33 * unit + 31;
    float *xf = malloc((size_t)nmax * sizeof(float)), *ya = malloc((size_t)nmax * sizeof(float)),
          *yb = malloc((size_t)nmax * sizeof(float)), *deq = malloc((size_t)nmax * sizeof(float));
    uint8_t *x = malloc((size_t)(nmax / t->blck + 1) * t->type_size);
    int worst = 0;
    for (size_t c = 0; c < sizeof block_counts / sizeof block_counts[0]; c++) {
        for (int extra = 0; extra < 2; extra++) {
            if (extra && t->blck != 1) continue;
            const int64_t n = block_counts[c] * unit + (extra ? 1 + (int64_t)(rng_u64() % 31) : 0);
            fill_floats(xf, n);
            t->from_float(xf, x, n);
            t->to_float(x, deq, n);
            fill_floats(ya, n);
            memcpy(yb, ya, (size_t)n * sizeof(float));
            const float a = rng_sym() * 3.0f;
            t->axpy(n, ya, a, x);
            fast(n, yb, a, x);
            for (int64_t i = 0; i < n; i++) {
                double tol = 4 * FLT_EPSILON * (fabs((double)a * deq[i]) + fabs((double)ya[i]) + 1e-30);
                if (fabs((double)ya[i] - yb[i]) > tol) {
                    worst++;
                    CHECK(0, "%s %s axpy n=%lld element %lld: %g vs reference %g", kern_isa_name(isa), t->name,
                          (long long)n, (long long)i, yb[i], ya[i]);
                    break;
                }
            }
        }
    }
    printf("  %-6s %-5s axpy: %d mismatching rows\n", kern_isa_name(isa), t->name, worst);
    free(xf), free(ya), free(yb), free(deq), free(x);
}

/* ---- dot_f32 (the KV cache types) ---------------------------------------------------- */

/* dot of a row of the type with floats (the query against cached K rows): equal to the
 * reference within float rounding of the sum, rows from the reference quantizer and from random
 * bytes, for the block counts above (and ragged lengths for the float types). */
static void test_dot_f32(int isa, uint32_t type, kern_vec_dot_fn fast) {
    const kern_type_traits *t = kern_traits(type);
    const int64_t unit = t->blck == 1 ? 32 : t->blck;
    const int64_t nmax = 33 * unit + 31;
    float *xf = malloc((size_t)nmax * sizeof(float)), *y = malloc((size_t)nmax * sizeof(float)),
          *deq = malloc((size_t)nmax * sizeof(float));
    uint8_t *x = malloc((size_t)(nmax / t->blck + 1) * t->type_size);
    double worst = 0;
    int fails = 0;
    for (size_t c = 0; c < sizeof block_counts / sizeof block_counts[0]; c++) {
        for (int extra = 0; extra < 2; extra++) {
            if (extra && t->blck != 1) continue;
            const int64_t n = block_counts[c] * unit + (extra ? 1 + (int64_t)(rng_u64() % 31) : 0);
            for (int mode = 0; mode < 2; mode++) {
                if (mode == 0) {
                    fill_floats(xf, n);
                    t->from_float(xf, x, n);
                } else {
                    fill_random_blocks(type, x, n / t->blck, t->type_size);
                }
                fill_floats(y, n);
                t->to_float(x, deq, n);
                double scale = 0;
                for (int64_t i = 0; i < n; i++) scale += fabs((double)deq[i] * y[i]);
                float ref = NAN, got = NAN;
                t->dot_f32(n, &ref, x, y);
                fast(n, &got, x, y);
                const double err = fabs((double)got - ref);
                if (scale > 0 && err / scale > worst) worst = err / scale;
                const bool ok = err <= 1e-5 * scale + 1e-30;
                if (!ok && fails++ < 5)
                    CHECK(0, "%s %s dot_f32 n=%lld mode %d: got %.9g ref %.9g (err %.3g, sum|xy| %.3g)",
                          kern_isa_name(isa), t->name, (long long)n, mode, got, ref, err, scale);
                else if (ok)
                    CHECK(1, "ok");
            }
        }
    }
    if (fails > 5) CHECK(0, "%s %s dot_f32: %d more mismatches", kern_isa_name(isa), t->name, fails - 5);
    printf("  %-6s %-5s dot_f32: worst |err| / sum|x*y| = %.2g\n", kern_isa_name(isa), t->name, worst);
    free(xf), free(y), free(deq), free(x);
}

/* ---- attention group kernels ------------------------------------------------------------ */

/* kern_kv_best's group kernels against the portable per-head calls, for every group size and a
 * few row lengths: scores within a few ulps of the row's |dot|, outputs within a few ulps of
 * their magnitude (the fast path converts a chunk once and fuses its multiply-adds). */
static void test_kv_group(uint32_t type) {
    const kern_type_traits *t = kern_traits(type);
    const kern_kv_ops *fast = kern_kv_best(type), *port = kern_kv_portable(type);
    CHECK(fast && port, "%s: KV group kernels exist", t->name);
    if (!fast || !port) return;
    static const int64_t lens[] = { 32, 64, 128, 256 };
    float q[KERN_KV_GROUP * 256], xf[256], deq[256], a[KERN_KV_GROUP], o1[KERN_KV_GROUP], o2[KERN_KV_GROUP];
    float y1[KERN_KV_GROUP * 256], y2[KERN_KV_GROUP * 256];
    uint8_t row[256 * 4];
    int bad = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li];
        for (int ng = 1; ng <= KERN_KV_GROUP; ng++) {
            fill_floats(xf, n);
            fill_floats(q, n * ng);
            fill_floats(y1, n * ng);
            memcpy(y2, y1, sizeof(float) * (size_t)(n * ng));
            for (int i = 0; i < ng; i++) a[i] = rng_sym();
            t->from_float(xf, row, n);
            t->to_float(row, deq, n);
            fast->dot_multi(n, row, q, n, ng, o1);
            port->dot_multi(n, row, q, n, ng, o2);
            fast->axpy_multi(n, row, a, 1, ng, y1, n);
            port->axpy_multi(n, row, a, 1, ng, y2, n);
            for (int i = 0; i < ng; i++) {
                double mag = 0;
                for (int64_t e = 0; e < n; e++) mag += fabs((double)deq[e] * q[i * n + e]);
                if (fabs((double)o1[i] - o2[i]) > 8 * FLT_EPSILON * mag + 1e-30) bad++;
                for (int64_t e = 0; e < n; e++)
                    if (fabs((double)y1[i * n + e] - y2[i * n + e]) >
                        8 * FLT_EPSILON * (fabs((double)a[i] * deq[e]) + fabs((double)y2[i * n + e])) + 1e-30)
                        bad++;
            }
        }
    }
    CHECK(bad == 0, "%s KV group kernels (%s) vs per-head calls: %d values differ", t->name,
          fast == port ? "portable" : "fast", bad);
    printf("  %-5s KV group kernels (%s): %d values differ\n", t->name, fast == port ? "portable" : "fast", bad);
}

/* ---- SwiGLU (vector exp) ---------------------------------------------------------------- */

/* The AVX2 SwiGLU against silu(a) * b computed in double: within 4 float ulps of the result's
 * magnitude, over a sweep of -100..100 and random values.  Below a -87 gate the vector exp is
 * clamped (as expf overflows to inf there and gives 0): results under 1e-30 in magnitude count
 * as equal. */
static void test_swiglu(void) {
#if defined(__x86_64__)
    if (!(kern_cpu_isas() >> KERN_ISA_AVX2 & 1)) {
        printf("  swiglu: no AVX2 on this CPU, not tested\n");
        return;
    }
    enum { N = 4003 };
    static float a[N], b[N], ref[N];
    for (int i = 0; i < N; i++) {
        a[i] = i < 2001 ? -100.0f + 0.1f * (float)i : rng_sym() * 12.0f;
        b[i] = rng_sym() * 2.0f;
        const double v = a[i];
        ref[i] = (float)(v / (1.0 + exp(-v)) * b[i]);
    }
    kern_swiglu_avx2(a, b, N);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < N; i++) {
        const double err = fabs((double)a[i] - ref[i]), tol = 4 * FLT_EPSILON * fabs((double)ref[i]) + 1e-30;
        if (fabs((double)ref[i]) > 1e-30 && err / fabs((double)ref[i]) > worst) worst = err / fabs((double)ref[i]);
        if (err > tol) bad++;
    }
    CHECK(bad == 0, "AVX2 swiglu: %d of %d values off by more than 4 ulp (worst relative %.3g)", bad, N, worst);
    printf("  swiglu avx2: %d of %d values off, worst relative error %.3g\n", bad, N, worst);
#endif
}

/* ---- batched kernels for float weights (gemm_float_avx2.c) ----------------------------- */

/* nr weight rows of one float type and nt float activation rows, k elements each, with the
 * double-precision dot of every (row, token) pair from the reference conversion (exact for F16
 * and BF16) and its sum of |terms|. */
typedef struct {
    int64_t k, m, n;
    uint64_t row_bytes;
    uint8_t *w;   /* m rows of the type */
    float *x;     /* n rows of k floats */
    double *ref;  /* ref[r * n + t] */
    double *mag;  /* sum of |w_rl * x_tl| over l */
} float_case;

static void float_case_make(float_case *fc, uint32_t type, int64_t k, int64_t m, int64_t n) {
    const kern_type_traits *tr = kern_traits(type);
    fc->k = k, fc->m = m, fc->n = n;
    fc->row_bytes = (uint64_t)k * tr->type_size;
    fc->w = malloc(fc->row_bytes * (uint64_t)m);
    fc->x = malloc(sizeof(float) * (size_t)(k * n));
    fc->ref = malloc(sizeof(double) * (size_t)(m * n));
    fc->mag = malloc(sizeof(double) * (size_t)(m * n));
    float *wf = malloc(sizeof(float) * (size_t)(k * m));
    fill_floats(wf, k * m);
    for (int64_t r = 0; r < m; r++) {
        tr->from_float(wf + r * k, fc->w + (uint64_t)r * fc->row_bytes, k);
        tr->to_float(fc->w + (uint64_t)r * fc->row_bytes, wf + r * k, k); /* the values as stored */
    }
    for (int64_t t = 0; t < n; t++) fill_floats(fc->x + t * k, k);
    for (int64_t r = 0; r < m; r++)
        for (int64_t t = 0; t < n; t++) {
            double s = 0, a = 0;
            for (int64_t l = 0; l < k; l++) {
                const double p = (double)wf[r * k + l] * fc->x[t * k + l];
                s += p;
                a += fabs(p);
            }
            fc->ref[r * n + t] = s;
            fc->mag[r * n + t] = a;
        }
    free(wf);
}

static void float_case_free(float_case *fc) {
    free(fc->w), free(fc->x), free(fc->ref), free(fc->mag);
}

/* Any order of summing k products in float (with or without FMA) is within (k + 1) * 2^-24 of
 * the sum of |terms| of the exact dot; one more 2^-24 for the result's own rounding. */
static double float_tol(int64_t k, double mag) { return (double)(k + 2) * 0x1p-24 * mag + 1e-30; }

/* y rows (n_rows of them, ldy apart) against the case for rows r0 .. r0 + nr - 1 and tokens
 * t < nt: the outputs within float_tol, every other entry still -12345 (the sentinel).  Returns
 * the failures and raises *worst to the largest error / tolerance. */
static int float_compare(const float_case *fc, int64_t r0, int64_t nr, int64_t nt, const float *y, int64_t ldy,
                         int64_t n_rows, double *worst, const char *what) {
    int bad = 0;
    for (int64_t t = 0; t < n_rows; t++)
        for (int64_t r = 0; r < ldy; r++) {
            const float got = y[t * ldy + r];
            if (t >= nt || r >= nr) {
                if (got != -12345.f && bad++ == 0)
                    printf("  %s: write outside the output at token %lld row %lld\n", what, (long long)t, (long long)r);
                continue;
            }
            const int64_t i = (r0 + r) * fc->n + t;
            const double e = fabs((double)got - fc->ref[i]) / float_tol(fc->k, fc->mag[i]);
            if (e > *worst) *worst = e;
            if (!(e <= 1.0) && bad++ == 0)
                printf("  %s: row %lld token %lld: got %.9g ref %.9g (%.3g x tol)\n", what, (long long)(r0 + r),
                       (long long)t, got, fc->ref[i], e);
        }
    return bad;
}

static const uint32_t float_types[] = { GGUF_TYPE_F32, GGUF_TYPE_F16, GGUF_TYPE_BF16 };
static const int64_t float_tokens[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 33, 64 };
#define N_FLOAT_TOKENS (sizeof float_tokens / sizeof float_tokens[0])

/* pack + gemm directly: every panel height 1..8 times every token count of float_tokens, for
 * row lengths that are and are not multiples of 8; a panel of exactly panel_bytes(k) bytes, an
 * output wider than nr (ldy = nr + 3) and one spare token row, all sentinels but the nr x nt
 * outputs. */
static void test_float_gemm(void) {
#if defined(__x86_64__)
    if (!(kern_cpu_isas() >> KERN_ISA_AVX2 & 1)) {
        printf("  float gemm: no AVX2 on this CPU, not tested\n");
        return;
    }
    static const int64_t ks[] = { 1, 5, 8, 13, 64, 259, 1024 };
    for (size_t ti = 0; ti < sizeof float_types / sizeof float_types[0]; ti++) {
        const uint32_t type = float_types[ti];
        const kern_gemm_ops *g = &kern_float_gemm_avx2[type];
        CHECK(g->panel_bytes && g->pack && g->gemm, "%s: no avx2 float gemm", kern_traits(type)->name);
        if (!g->panel_bytes || !g->pack || !g->gemm) continue;
        double worst = 0;
        int bad = 0, cases = 0;
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            const int64_t k = ks[ki];
            float_case fc;
            float_case_make(&fc, type, k, KERN_GEMM_ROWS, 64);
            CHECK(g->panel_bytes(k) % 32 == 0, "panel_bytes(%lld) = %llu, not a multiple of 32", (long long)k,
                  (unsigned long long)g->panel_bytes(k));
            void *panel = aligned_alloc(32, g->panel_bytes(k));
            for (int nr = 1; nr <= KERN_GEMM_ROWS; nr++) {
                g->pack(k, fc.w, fc.row_bytes, nr, panel);
                for (size_t ni = 0; ni < N_FLOAT_TOKENS; ni++) {
                    const int64_t nt = float_tokens[ni], ldy = nr + 3;
                    float *y = malloc(sizeof(float) * (size_t)((nt + 1) * ldy));
                    for (int64_t i = 0; i < (nt + 1) * ldy; i++) y[i] = -12345.f;
                    g->gemm(k, panel, nr, fc.x, (uint64_t)k * sizeof(float), nt, y, ldy);
                    char what[80];
                    snprintf(what, sizeof what, "%s gemm %d rows x %lld tokens, k %lld", kern_traits(type)->name, nr,
                             (long long)nt, (long long)k);
                    const int b = float_compare(&fc, 0, nr, nt, y, ldy, nt + 1, &worst, what);
                    CHECK(b == 0, "%s: %d outputs wrong", what, b);
                    bad += b != 0;
                    cases++;
                    free(y);
                }
            }
            free(panel);
            float_case_free(&fc);
        }
        printf("  %-5s float gemm: %d of %d shapes wrong, worst error / tol %.2e\n", kern_traits(type)->name, bad,
               cases, worst);
    }
#endif
}

/* kern_matmul on 3 threads for n = 1..9, 16, 33, 64 tokens and odd and even row counts (the
 * panel kernels from n = 4 where the type has them, the 1x1 dot below): every output within
 * float_tol of the exact dot, the gaps of a wider output stride untouched.  Then the kernel
 * family kern_matmul_ex promises: use_gemm = 0 gives exactly kern_best's vec_dot per pair, and
 * use_gemm = 1 gives each token exactly what it gets alone, whatever shares the call. */
static void test_float_matmul(void) {
    static const int64_t rows[] = { 37, 40, 7, 64 }, ks[] = { 67, 256 };
    seek_err err = { 0 };
    kern_pool *pool = kern_pool_new(3, &err);
    CHECK(pool != NULL, "pool: %s", err.msg);
    if (!pool) return;
    for (size_t ti = 0; ti < sizeof float_types / sizeof float_types[0]; ti++) {
        const uint32_t type = float_types[ti];
        const kern_ops *ops = kern_best(type);
        double worst = 0;
        int bad = 0, cases = 0;
        for (size_t ni = 0; ni < N_FLOAT_TOKENS; ni++) {
            const int64_t n = float_tokens[ni], m = rows[ni % 4], k = ks[ni % 2], ldy = m + 5;
            float_case fc;
            float_case_make(&fc, type, k, m, n);
            float *y = malloc(sizeof(float) * (size_t)(n * ldy));
            for (int64_t i = 0; i < n * ldy; i++) y[i] = -12345.f;
            CHECK(kern_matmul_scratch(type, k, n) == 0, "float weights need no activation scratch");
            const kern_mat W = { fc.w, type, k, m, fc.row_bytes };
            kern_matmul(pool, &W, fc.x, n, y, ldy, NULL);
            char what[80];
            snprintf(what, sizeof what, "%s matmul m %lld n %lld k %lld", kern_traits(type)->name, (long long)m,
                     (long long)n, (long long)k);
            const int b = float_compare(&fc, 0, m, n, y, ldy, n, &worst, what);
            CHECK(b == 0, "%s: %d outputs wrong", what, b);
            bad += b != 0;
            cases++;

            /* use_gemm = 0: the 1x1 dot, bit for bit */
            int diff = 0;
            kern_matmul_ex(pool, &W, fc.x, n, y, ldy, NULL, 0);
            for (int64_t t = 0; t < n; t++)
                for (int64_t r = 0; r < m; r++) {
                    float d = NAN;
                    ops->vec_dot(k, &d, fc.w + (uint64_t)r * fc.row_bytes, fc.x + t * k);
                    diff += memcmp(&d, &y[t * ldy + r], sizeof d) != 0;
                }
            CHECK(diff == 0, "%s: use_gemm 0 differs from vec_dot in %d outputs", what, diff);
            /* use_gemm = 1: each token as computed alone */
            kern_matmul_ex(pool, &W, fc.x, n, y, ldy, NULL, 1);
            float *alone = malloc(sizeof(float) * (size_t)m);
            for (int64_t t = 0; t < n; t++) {
                kern_matmul_ex(pool, &W, fc.x + t * k, 1, alone, m, NULL, 1);
                diff += memcmp(alone, y + t * ldy, sizeof(float) * (size_t)m) != 0;
            }
            CHECK(diff == 0, "%s: use_gemm 1 gives %d tokens another result than alone", what, diff);
            free(alone);
            free(y);
            float_case_free(&fc);
        }
        printf("  %-5s float matmul (%s): %d of %d shapes wrong, worst error / tol %.2e\n", kern_traits(type)->name,
               ops->gemm.gemm ? "panel kernels" : "1x1 dots", bad, cases, worst);
    }
    kern_pool_free(pool);
}

/* ---- dispatch ---------------------------------------------------------------------- */

static void test_dispatch(void) {
    unsigned isas = kern_cpu_isas();
    CHECK(isas & (1u << KERN_ISA_SCALAR), "scalar always present");
    int active = kern_active_isa();
    CHECK(active >= 0 && active < KERN_ISA_COUNT && (isas >> active & 1), "active isa %d present", active);
    printf("active ISA: %s%s\n", kern_isa_name(active), getenv("SEEK_ISA") ? " (SEEK_ISA set)" : "");
    if (!getenv("SEEK_ISA")) {
        /* the best present ISA that has kernels in this build */
        int best = KERN_ISA_SCALAR;
        const int order[] = { KERN_ISA_NEON, KERN_ISA_AVX2, KERN_ISA_AVX512 };
        for (int i = 0; i < 3; i++)
            if ((isas >> order[i] & 1) && kern_isa_ops(order[i], GGUF_TYPE_F32)) best = order[i];
        CHECK(active == best, "active %s, expected %s", kern_isa_name(active), kern_isa_name(best));
    }
    CHECK(kern_isa_ops(KERN_ISA_SCALAR, GGUF_TYPE_Q4_K) != NULL, "scalar ops exist");
    CHECK(kern_best(GGUF_TYPE_COUNT) == NULL, "out-of-range type");
    CHECK(kern_isa_ops(KERN_ISA_AVX2, GGUF_TYPE_COUNT + 5) == NULL, "out-of-range type");

    const uint32_t weights[] = { GGUF_TYPE_F32,  GGUF_TYPE_F16,  GGUF_TYPE_BF16, GGUF_TYPE_Q4_0,
                                 GGUF_TYPE_Q4_1, GGUF_TYPE_Q5_0, GGUF_TYPE_Q5_1, GGUF_TYPE_Q8_0,
                                 GGUF_TYPE_Q2_K, GGUF_TYPE_Q3_K, GGUF_TYPE_Q4_K, GGUF_TYPE_Q5_K,
                                 GGUF_TYPE_Q6_K };
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++) {
        uint32_t t = weights[i];
        const kern_ops *o = kern_best(t);
        CHECK(o && o->vec_dot && o->to_float, "kern_best(%u) incomplete", t);
        const kern_type_traits *tr = kern_traits(t);
        if (!o || !tr) continue;
        const kern_ops *act = kern_best(o->vec_dot_type);
        CHECK(act && act->from_float, "kern_best(%u) has no quantizer for activation type %u", t,
              o->vec_dot_type);
        /* quantized weights use seek's Q8_16 activations unless SEEK_ACTIVATIONS=llama */
        bool llama_act = getenv("SEEK_ACTIVATIONS") && !strcmp(getenv("SEEK_ACTIVATIONS"), "llama");
        bool fine = kern_q8_16_dot_ref[t] != NULL && !llama_act;
        CHECK(o->vec_dot_type == (fine ? KERN_TYPE_Q8_16 : tr->vec_dot_type), "kern_best(%s) activation type %u",
              tr->name, o->vec_dot_type);
        /* the merge: the active ISA's kernel, else avx2's under avx512, else the reference */
        kern_vec_dot_fn want = NULL;
        if (fine) {
            want = kern_q8_16_dot_ref[t];
#if defined(__x86_64__)
            if (active != KERN_ISA_SCALAR && kern_q8_16_dot_avx2[t]) want = kern_q8_16_dot_avx2[t];
#elif defined(__aarch64__)
            if (active == KERN_ISA_NEON && kern_q8_16_dot_neon[t]) want = kern_q8_16_dot_neon[t];
#endif
        }
        for (int isa = active; isa != KERN_ISA_SCALAR && !want;
             isa = isa == KERN_ISA_AVX512 ? KERN_ISA_AVX2 : KERN_ISA_SCALAR) {
            const kern_ops *fast = kern_isa_ops(isa, t);
            if (fast) want = fast->vec_dot;
        }
        if (!want) want = tr->vec_dot;
        CHECK(o->vec_dot == want, "kern_best(%s) is not the expected kernel", tr->name);
        /* batched kernels: Q8_16 ones for quantized weights, float ones for float weights */
        kern_gemm_fn want_gemm = NULL;
#if defined(__x86_64__)
        if (active != KERN_ISA_SCALAR && fine) want_gemm = kern_q8_16_gemm_avx2[t].gemm;
        if (active != KERN_ISA_SCALAR && o->vec_dot_type == GGUF_TYPE_F32) want_gemm = kern_float_gemm_avx2[t].gemm;
#endif
        CHECK(o->gemm.gemm == want_gemm, "kern_best(%s) has not the expected batched kernel", tr->name);
        CHECK(!o->gemm.gemm || (o->gemm.pack && o->gemm.panel_bytes), "kern_best(%s) batched kernels incomplete", tr->name);
    }
}

int main(void) {
    rng_state = 0x9e3779b97f4a7c15ull;
    base_init();
    test_dispatch();

    const unsigned isas = kern_cpu_isas();
    for (int isa = KERN_ISA_SCALAR + 1; isa < KERN_ISA_COUNT; isa++) {
        if (!(isas >> isa & 1)) {
            printf("%s: not present on this CPU, not tested\n", kern_isa_name(isa));
            continue;
        }
        if (!kern_isa_ops(isa, GGUF_TYPE_F32)) {
            printf("%s: present, but this build has no kernels for it\n", kern_isa_name(isa));
            continue;
        }
        printf("%s: present, testing against the reference\n", kern_isa_name(isa));
        int n_kernels = 0;
        for (uint32_t t = 0; t < GGUF_TYPE_COUNT; t++) {
            const kern_type_traits *tr = kern_traits(t);
            const kern_ops *o = kern_isa_ops(isa, t);
            if (!tr || !o) continue;
            if (o->vec_dot) {
                CHECK(tr->vec_dot != NULL, "%s has a fast vec_dot but no reference", tr->name);
                if (tr->vec_dot) test_vec_dot(isa, t, o->vec_dot), n_kernels++;
            }
            if (o->from_float) {
                CHECK(tr->from_float != NULL, "%s has a fast from_float but no reference", tr->name);
                if (tr->from_float) test_from_float(isa, t, o->from_float), n_kernels++;
            }
            if (o->to_float) test_to_float(isa, t, o->to_float), n_kernels++;
            if (o->axpy) {
                CHECK(tr->axpy != NULL, "%s has a fast axpy but no reference", tr->name);
                if (tr->axpy) test_axpy(isa, t, o->axpy), n_kernels++;
            }
            if (o->dot_f32) {
                CHECK(tr->dot_f32 != NULL, "%s has a fast dot_f32 but no reference", tr->name);
                if (tr->dot_f32) test_dot_f32(isa, t, o->dot_f32), n_kernels++;
            }
        }
        printf("%s: %d kernels tested\n", kern_isa_name(isa), n_kernels);
    }
    test_swiglu();
    test_kv_group(GGUF_TYPE_F32);
    test_kv_group(GGUF_TYPE_F16);
    test_kv_group(GGUF_TYPE_Q8_0);
    test_float_gemm();
    test_float_matmul();
    return check_done("test_kern");
}
