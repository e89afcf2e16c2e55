/*
 * ops.c - the float vector operations of the forward pass (norms, activations, softmax).
 * Plain C in a fixed order; the compiler vectorizes the simple loops.  They run on vectors of
 * the model dimension, a small cost next to the matmuls.
 */
#include "kern.h"

#include <math.h>

void kern_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    /* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; accumulate in double for stability. */
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void kern_softmax(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void kern_swiglu(float *a, const float *b, int64_t n) {
#if defined(__x86_64__)
    const int isa = kern_active_isa();
    if (isa == KERN_ISA_AVX2 || isa == KERN_ISA_AVX512) {
        kern_swiglu_avx2(a, b, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        float v = a[i];
        a[i] = v / (1.0f + expf(-v)) * b[i];
    }
}

void kern_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

/* The portable loop; the engine uses the active ISA's F32 dot (kern_best) when there is one. */
static float dot_f32_ref(const float *a, const float *b, int64_t n) {
    /* four independent partial sums so the loop is not one long dependency chain */
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* Attention scores (q . k for every cached position) are the hot user: it goes through the
 * active ISA's F32 dot (the AVX2 one: 8-wide FMAs, four accumulators) when there is one. */
float kern_dot_f32(const float *a, const float *b, int64_t n) {
    const kern_ops *ops = kern_best(GGUF_TYPE_F32);
    if (!ops || !ops->vec_dot) return dot_f32_ref(a, b, n);
    float s;
    ops->vec_dot(n, &s, a, b);
    return s;
}

void kern_axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
