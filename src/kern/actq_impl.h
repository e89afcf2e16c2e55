/*
 * actq_impl.h - kernels of the Q8_16 activation format (actq.h), internal to src/kern.
 *
 * What it is: the scalar reference (actq.c), the AVX2 versions (actq_avx2.c) and the NEON
 * versions (actq_neon.c) of
 *   - the activation quantizer  float -> block_q8_16 and its inverse, and
 *   - the dot product of one row of a quantized weight type with one Q8_16 activation row,
 * plus two tables of the dot products indexed by weight type, for kern_traits()/kern_best().
 * What it is not: public API (kern.h), or the matmul driver (matmul.c).
 *
 * Semantics of every dot product (the reference computes exactly this, in double):
 * each weight type is, within every group of 16 consecutive weights g, an affine map of small
 * integers,  w[16g + l] = alpha_g * q[16g + l] + beta_g,  and the activation group g is
 * a[16g + l] ~= d_g * qs[16g + l] with s_g = d_g * sum_l qs[16g + l] (stored, float).  Then
 *
 *     dot = sum_g  alpha_g * d_g * (sum_l q[16g + l] * qs[16g + l])  +  beta_g * s_g
 *
 * with the integer sums exact.  Per type (q, alpha_g, beta_g):
 *   Q4_0  q = nibble - 8,              alpha = d,               beta = 0
 *   Q4_1  q = nibble,                  alpha = d,               beta = m
 *   Q5_0  q = 5-bit value - 16,        alpha = d,               beta = 0
 *   Q5_1  q = 5-bit value,             alpha = d,               beta = m
 *   Q8_0  q = qs,                      alpha = d,               beta = 0
 *   Q2_K  q = 2-bit value,             alpha = d * sc_g,        beta = -dmin * m_g
 *   Q3_K  q = 2-bit value - 4*!hbit,   alpha = d * (sc_g - 32), beta = 0
 *   Q4_K  q = nibble,                  alpha = d * sc_j,        beta = -dmin * m_j   (j = g / 2)
 *   Q5_K  q = 5-bit value,             alpha = d * sc_j,        beta = -dmin * m_j   (j = g / 2)
 *   Q6_K  q = 6-bit value - 32,        alpha = d * sc_g,        beta = 0
 * The fast versions compute the same integer sums (possibly as sum q*qs - offset*sum qs, which
 * is the same integer, or with an offset taken out through s_g, equal to d_g * sum qs up to one
 * float rounding) and may round the float products and additions in any order; tests compare
 * them with the reference to a relative 1e-5 of the sum of |terms|.
 *
 * Block alignment: activation block b covers elements 32b..32b+31 of the row, so a weight
 * block of 32 meets activation block i and a K super-block i meets activation blocks
 * 8i..8i+7.  n must be a multiple of the weight type's block size.
 *
 * The reference functions read f16 through f16_lut: call base_init() (kern_traits() does) before
 * using them.  The AVX2 symbols exist only on x86-64 builds (actq_avx2.c is compiled there only,
 * with -mavx2 -mfma -mf16c -mbmi2) and may only be called after kern_cpu_isas() reported
 * KERN_ISA_AVX2.
 */
#ifndef SEEK_KERN_ACTQ_IMPL_H
#define SEEK_KERN_ACTQ_IMPL_H

#include "actq.h"
#include "kern.h"

/* x (n floats, n a multiple of 32) -> n / 32 block_q8_16.  Per group of 16:
 *   amax = max |x| (NaN ignored), d = amax / 127 (float division), id = d != 0 ? 1 / d : 0,
 *   qs = roundf(x * id) (nearest, ties away from zero; NaN -> 0; clamped to -127..127),
 *   s = d * (float)sum(qs). */
void kern_quantize_q8_16_ref(const float *x, void *y, int64_t n);
/* y[i] = d_g * qs[i]. */
void kern_dequantize_q8_16_ref(const void *x, float *y, int64_t n);

/* *s = dot(w, a): w a row of n weights of the named type, a a row of n / 32 block_q8_16. */
void kern_vec_dot_q4_0_q8_16_ref(int64_t n, float *s, const void *w, const void *a);
void kern_vec_dot_q4_1_q8_16_ref(int64_t n, float *s, const void *w, const void *a);
void kern_vec_dot_q5_0_q8_16_ref(int64_t n, float *s, const void *w, const void *a);
void kern_vec_dot_q5_1_q8_16_ref(int64_t n, float *s, const void *w, const void *a);
void kern_vec_dot_q8_0_q8_16_ref(int64_t n, float *s, const void *w, const void *a);
void kern_vec_dot_q2_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a);
void kern_vec_dot_q3_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a);
void kern_vec_dot_q4_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a);
void kern_vec_dot_q5_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a);
void kern_vec_dot_q6_K_q8_16_ref(int64_t n, float *s, const void *w, const void *a);

/* Dot products against Q8_16 indexed by weight type (GGUF_TYPE_*); NULL where not supported. */
extern const kern_vec_dot_fn kern_q8_16_dot_ref[GGUF_TYPE_COUNT];

#if defined(__x86_64__)
/* AVX2 + FMA + F16C: same table layout (all ten weight types), and the quantizer, whose
 * output is bit-identical to kern_quantize_q8_16_ref. */
extern const kern_vec_dot_fn kern_q8_16_dot_avx2[GGUF_TYPE_COUNT];
extern const kern_from_float_fn kern_q8_16_quantize_avx2;
/* The batched kernels (kern.h's kern_gemm_ops) for Q8_16 activations, gemm_avx2.c: all ten
 * weight types; the Q8_0 pair is gemm_q8_0_avx2.c's. */
extern const kern_gemm_ops kern_q8_16_gemm_avx2[GGUF_TYPE_COUNT];
uint64_t kern_gemm_q8_0_panel_bytes_avx2(int64_t k);
void kern_gemm_q8_0_pack_avx2(int64_t k, const void *w, uint64_t row_bytes, int nr, void *panel);
void kern_gemm_q8_0_avx2(int64_t k, const void *panel, int nr, const void *a, uint64_t a_row_bytes, int64_t nt,
                         float *y, int64_t ldy);
#elif defined(__aarch64__)
/* NEON (actq_neon.c, arm64 builds only): the same table layout (all ten weight types) and the
 * quantizer, bit-identical to kern_quantize_q8_16_ref.  No batched kernels. */
extern const kern_vec_dot_fn kern_q8_16_dot_neon[GGUF_TYPE_COUNT];
extern const kern_from_float_fn kern_q8_16_quantize_neon;
#endif

#endif
