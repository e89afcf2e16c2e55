/*
 * attn_avx2.c - AVX2 attention group kernels (kern.h, "attention over a KV cache"): one cached K
 * or V row against up to KERN_KV_GROUP query heads at once.  Each 8-value chunk of the row is
 * loaded and converted (kv_avx2.h: F16 -> F32, or Q8_0's int8 times its block scale) once and
 * then serves every head of the group, where per-head calls would convert it once per head.
 *
 * The group size is a compile-time constant inside (one instantiation per size 1..8) and the
 * loops over the group are unrolled, so the accumulators stay in registers (without the unroll
 * pragmas GCC -O2 kept them on the stack: 75 FMAs with a stack operand).
 */
#include "kern.h"
#include "kv_avx2.h"

#define GROUP_KERNELS(pre, LD)                                                                              \
    static inline __attribute__((always_inline)) void pre##_dot_n(int64_t n, const void *row, const float *q, \
                                                                  int64_t qs, int NQ, float *out) {        \
        __m256 acc[KERN_KV_GROUP];                                                                          \
        _Pragma("GCC unroll 8") for (int i = 0; i < NQ; i++) acc[i] = _mm256_setzero_ps();                  \
        for (int64_t c = 0; c < n; c += 8) {                                                                \
            const __m256 k = LD(row, c);                                                                    \
            _Pragma("GCC unroll 8") for (int i = 0; i < NQ; i++) acc[i] = _mm256_fmadd_ps(k, _mm256_loadu_ps(q + i * qs + c), acc[i]); \
        }                                                                                                   \
        _Pragma("GCC unroll 8") for (int i = 0; i < NQ; i++) out[i] = hsum_ps(acc[i]);                      \
    }                                                                                                       \
    static inline __attribute__((always_inline)) void pre##_axpy_n(int64_t n, const void *row, const float *a, \
                                                                   int64_t as, int NA, float *y, int64_t ys) { \
        __m256 av[KERN_KV_GROUP];                                                                           \
        _Pragma("GCC unroll 8") for (int i = 0; i < NA; i++) av[i] = _mm256_set1_ps(a[i * as]);             \
        for (int64_t c = 0; c < n; c += 8) {                                                                \
            const __m256 v = LD(row, c);                                                                    \
            _Pragma("GCC unroll 8") for (int i = 0; i < NA; i++)                                                                    \
                _mm256_storeu_ps(y + i * ys + c, _mm256_fmadd_ps(av[i], v, _mm256_loadu_ps(y + i * ys + c))); \
        }                                                                                                   \
    }                                                                                                       \
    static void pre##_dot_multi(int64_t n, const void *row, const float *q, int64_t qs, int nq, float *out) { \
        switch (nq) {                                                                                       \
        case 1: pre##_dot_n(n, row, q, qs, 1, out); break;                                                  \
        case 2: pre##_dot_n(n, row, q, qs, 2, out); break;                                                  \
        case 3: pre##_dot_n(n, row, q, qs, 3, out); break;                                                  \
        case 4: pre##_dot_n(n, row, q, qs, 4, out); break;                                                  \
        case 5: pre##_dot_n(n, row, q, qs, 5, out); break;                                                  \
        case 6: pre##_dot_n(n, row, q, qs, 6, out); break;                                                  \
        case 7: pre##_dot_n(n, row, q, qs, 7, out); break;                                                  \
        default: pre##_dot_n(n, row, q, qs, 8, out); break;                                                 \
        }                                                                                                   \
    }                                                                                                       \
    static void pre##_axpy_multi(int64_t n, const void *row, const float *a, int64_t as, int na, float *y,  \
                                 int64_t ys) {                                                              \
        switch (na) {                                                                                       \
        case 1: pre##_axpy_n(n, row, a, as, 1, y, ys); break;                                               \
        case 2: pre##_axpy_n(n, row, a, as, 2, y, ys); break;                                               \
        case 3: pre##_axpy_n(n, row, a, as, 3, y, ys); break;                                               \
        case 4: pre##_axpy_n(n, row, a, as, 4, y, ys); break;                                               \
        case 5: pre##_axpy_n(n, row, a, as, 5, y, ys); break;                                               \
        case 6: pre##_axpy_n(n, row, a, as, 6, y, ys); break;                                               \
        case 7: pre##_axpy_n(n, row, a, as, 7, y, ys); break;                                               \
        default: pre##_axpy_n(n, row, a, as, 8, y, ys); break;                                              \
        }                                                                                                   \
    }

GROUP_KERNELS(f32, kv_ld_f32)
GROUP_KERNELS(f16, kv_ld_f16)
GROUP_KERNELS(q8_0, kv_ld_q8_0)
#undef GROUP_KERNELS

const kern_kv_ops kern_kv_avx2[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_F32] = { f32_dot_multi, f32_axpy_multi },
    [GGUF_TYPE_F16] = { f16_dot_multi, f16_axpy_multi },
    [GGUF_TYPE_Q8_0] = { q8_0_dot_multi, q8_0_axpy_multi },
};
