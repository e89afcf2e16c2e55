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

void kern_softmax(float *x, int64_t n, int64_t stride) {
    float max = -INFINITY;
    for (int64_t j = 0; j < n; j++)
        if (x[j * stride] > max) max = x[j * stride];
    double sum = 0.0;
    for (int64_t j = 0; j < n; j++) {
        x[j * stride] = expf(x[j * stride] - max);
        sum += x[j * stride];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < n; j++) x[j * stride] *= inv;
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
