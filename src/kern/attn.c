/*
 * attn.c - attention over a KV cache: one cached row against the whole GQA group of query heads
 * that shares it (see kern.h, "attention over a KV cache").
 *
 * What it is: the per-type choice (kern_kv_best) between the AVX2 group kernels (attn_avx2.c) and
 * portable ones that loop over the type's single-row dot_f32 / axpy (kern_best, so they use
 * whatever ISA has those), and the choice of the tiled prompt kernel (attn_tile_avx2.c; none on
 * other ISAs, where callers keep the per-token path).  What it is not: softmax or the loop over
 * positions of the per-token path (model_forward.c).
 */
#include "kern.h"

#include <pthread.h>

/* portable: one single-row call per query head */
#define PORTABLE_PAIR(T, pre)                                                                                 \
    static void pre##_dot_multi(int64_t n, const void *row, const float *q, int64_t q_stride, int nq,         \
                                float *out) {                                                                 \
        const kern_vec_dot_fn dot = kern_best(GGUF_TYPE_##T)->dot_f32;                                        \
        for (int i = 0; i < nq; i++) dot(n, &out[i], row, q + i * q_stride);                                  \
    }                                                                                                         \
    static void pre##_axpy_multi(int64_t n, const void *row, const float *a, int64_t a_stride, int na,        \
                                 float *y, int64_t y_stride) {                                                \
        const kern_axpy_fn axpy = kern_best(GGUF_TYPE_##T)->axpy;                                             \
        for (int i = 0; i < na; i++) axpy(n, y + i * y_stride, a[i * a_stride], row);                         \
    }

PORTABLE_PAIR(F32, f32)
PORTABLE_PAIR(F16, f16)
PORTABLE_PAIR(Q8_0, q8_0)
#undef PORTABLE_PAIR

static const kern_kv_ops portable[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_F32] = { f32_dot_multi, f32_axpy_multi },
    [GGUF_TYPE_F16] = { f16_dot_multi, f16_axpy_multi },
    [GGUF_TYPE_Q8_0] = { q8_0_dot_multi, q8_0_axpy_multi },
};

const kern_kv_ops *kern_kv_portable(uint32_t type) {
    return type < GGUF_TYPE_COUNT && portable[type].dot_multi ? &portable[type] : NULL;
}

const kern_kv_ops *kern_kv_best(uint32_t type) {
    const kern_kv_ops *p = kern_kv_portable(type);
    if (!p) return NULL;
#if defined(__x86_64__)
    int isa = kern_active_isa();
    if ((isa == KERN_ISA_AVX2 || isa == KERN_ISA_AVX512) && kern_kv_avx2[type].dot_multi) return &kern_kv_avx2[type];
#endif
    return p;
}

kern_attn_tile_fn kern_attn_tile_best(uint32_t type, int64_t d) {
    if (d < 8 || d % 8 != 0 || !kern_kv_portable(type) || d % kern_traits(type)->blck != 0) return NULL;
#if defined(__x86_64__)
    int isa = kern_active_isa();
    if (isa == KERN_ISA_AVX2 || isa == KERN_ISA_AVX512) return kern_attn_tile_avx2[type];
#endif
    return NULL;
}

uint64_t kern_attn_tile_scratch(int64_t d, int64_t rows) {
#if defined(__x86_64__)
    if (d >= 8 && d % 8 == 0 && rows >= 1) return kern_attn_tile_scratch_avx2(d, rows);
#endif
    return 0;
}
