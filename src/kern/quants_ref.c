/*
 * quants_ref.c - the scalar reference for every tensor type seek computes with: dequantize
 * (to_float), quantize (from_float), the dot product of a weight row with an activation row
 * (vec_dot), and the table kern_traits() that indexes them by GGUF type id.
 *
 * What it is: plain portable C (no intrinsics) that defines what each format means.  The
 * quantizers follow the algorithms of llama.cpp's reference quantizers (no importance matrix),
 * so that `seek quantize` writes files of the same quality as llama-quantize: a least-squares
 * search for each sub-block's scale (and min), then the sub-block scales quantized against the
 * super-block scale.  The dot products keep integer sums inside a (sub-)block and multiply by the
 * scales once per (sub-)block, as ggml's generic kernels do.
 * What it is not: fast.  SIMD versions live in their own files and are tested against these.
 *
 * The bit layouts are documented in quants.h.  Each block type has an "unpack" helper that
 * turns the packed bits into one small integer per weight, in element order; the dequantizer
 * and the dot product are both written on top of it, so the layout is spelled out only once.
 *
 * Glossary: n = elements in a row, nb = blocks in a row, x = float weights, q or L = the small
 * integer stored per weight, d = scale, m / dmin = minimum, sc = sub-block scale.
 *
 * Every function here may use f16_lut: kern_traits() calls base_init() before handing any of
 * them out.
 */
#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kern.h"
#include "quants.h"
#include "actq.h"
#include "actq_impl.h"

/* A group whose largest |x| is below this quantizes to all zeros. */
#define KQ_GROUP_EPS 1e-15f

/* ---- rounding helpers ------------------------------------------------------------------ */

/* Nearest integer, ties to even.  |v| is clamped to 2^22 - 1 first (adding 1.5 * 2^23 then
 * leaves the integer in the low mantissa bits), so inf and NaN (-> 0) give defined results. */
static inline int kq_nearest(float v) {
    if (v != v) return 0;
    if (v > 4194303.f) v = 4194303.f;
    if (v < -4194303.f) v = -4194303.f;
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

static inline int kq_clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Re-rounds the 16 weights of a sub-block with the scale d and min dm actually stored in the
 * block: L = clamp(round((x + dm) / d), lo, hi) + off.  L is left as it is when d is 0. */
static void kq_requant16(const float *x, float d, float dm, int lo, int hi, int off, uint8_t *L) {
    if (d == 0.f) return;
    for (int l = 0; l < 16; l++) L[l] = (uint8_t)(kq_clamp(kq_nearest((x[l] + dm) / d), lo, hi) + off);
}

/* floor(v) clamped to [0, hi], NaN -> 0.  The legacy quantizers compute q = floor(v + 0.5)
 * (round half up) on a value already shifted to be >= 0. */
static inline int kq_floor_clamp(float v, int hi) {
    if (!(v >= 0.f)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* roundf (half away from zero) clamped to [-lim, lim], NaN -> 0. */
static inline int kq_round_away(float v, int lim) {
    if (v != v) return 0;
    if (v > (float)lim) return lim;
    if (v < (float)-lim) return -lim;
    return (int)roundf(v);
}

/* ---- F32, F16, BF16 ---------------------------------------------------------------------
 * Float weights dot float activations (vec_dot_type F32), accumulated in double in element
 * order. */

static void f32_to_float(const void *vx, float *y, int64_t n) { memcpy(y, vx, (size_t)n * sizeof(float)); }
static void f32_from_float(const float *x, void *vy, int64_t n) { memcpy(vy, x, (size_t)n * sizeof(float)); }
static void f32_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * y[i];
    *s = (float)sum;
}

static void f16_to_float(const void *vx, float *y, int64_t n) {
    const f16_t *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = f16_lut(x[i]);
}
static void f16_from_float(const float *x, void *vy, int64_t n) {
    f16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = f32_to_f16(x[i]);
}
static void f16_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const f16_t *x = vx;
    const float *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)f16_lut(x[i]) * y[i];
    *s = (float)sum;
}

/* y += a * x for the KV cache types (the attention's sum over cached V rows) */
static void f32_axpy(int64_t n, float *y, float a, const void *vx) {
    const float *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
static void f16_axpy(int64_t n, float *y, float a, const void *vx) {
    const f16_t *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] += a * f16_lut(x[i]);
}

static void bf16_to_float(const void *vx, float *y, int64_t n) {
    const bf16_t *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = bf16_to_f32(x[i]);
}
static void bf16_from_float(const float *x, void *vy, int64_t n) {
    bf16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = f32_to_bf16(x[i]);
}
static void bf16_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const bf16_t *x = vx;
    const float *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)bf16_to_f32(x[i]) * y[i];
    *s = (float)sum;
}

/* ---- legacy 32-weight blocks: unpacking --------------------------------------------------- */

/* Nibbles of a Q4_0/Q4_1 block: byte j holds weight j (low) and weight j + 16 (high). */
static void q4_unpack(const uint8_t qs[16], uint8_t q[32]) {
    for (int j = 0; j < 16; j++) {
        q[j] = qs[j] & 0xF;
        q[j + 16] = qs[j] >> 4;
    }
}

/* 5-bit values of a Q5_0/Q5_1 block: nibbles as Q4, bit 4 of weight j = bit j of qh (LE u32). */
static void q5_unpack(const uint8_t qh[4], const uint8_t qs[16], uint8_t q[32]) {
    uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    q4_unpack(qs, q);
    for (int j = 0; j < 32; j++) q[j] |= (uint8_t)(((h >> j) & 1) << 4);
}

/* Packs 32 values (0..31) the way q5_unpack reads them. */
static void q5_pack(const uint8_t q[32], uint8_t qh[4], uint8_t qs[16]) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0xF) | (q[j + 16] & 0xF) << 4);
    for (int j = 0; j < 32; j++) h |= (uint32_t)(q[j] >> 4) << j;
    for (int b = 0; b < 4; b++) qh[b] = (uint8_t)(h >> (8 * b));
}

/* ---- Q4_0: x = d * (q - 8) ---------------------------------------------------------------- */

static void q4_0_to_float(const void *vx, float *y, int64_t n) {
    const block_q4_0 *x = vx;
    uint8_t q[32];
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        float d = f16_lut(x[i].d);
        q4_unpack(x[i].qs, q);
        for (int j = 0; j < 32; j++) y[j] = d * (float)(q[j] - 8);
    }
}

/* d = (the value of largest magnitude, with its sign) / -8, so that value becomes q = 0 exactly
 * and the other side of zero gets the full range up to q = 15. */
static void q4_0_from_float(const float *x, void *vy, int64_t n) {
    block_q4_0 *y = vy;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        }
        float d = max / -8.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int q0 = kq_floor_clamp(x[j] * id + 8.5f, 15);
            int q1 = kq_floor_clamp(x[j + 16] * id + 8.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

static void q4_0_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    uint8_t q[32];
    float sum = 0;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        q4_unpack(x[i].qs, q);
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += (q[j] - 8) * y[i].qs[j];
        sum += f16_lut(x[i].d) * f16_lut(y[i].d) * (float)isum;
    }
    *s = sum;
}

/* ---- Q4_1: x = d * q + m ------------------------------------------------------------------ */

static void q4_1_to_float(const void *vx, float *y, int64_t n) {
    const block_q4_1 *x = vx;
    uint8_t q[32];
    for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
        float d = f16_lut(x[i].d), m = f16_lut(x[i].m);
        q4_unpack(x[i].qs, q);
        for (int j = 0; j < 32; j++) y[j] = d * (float)q[j] + m;
    }
}

/* m = min, d = (max - min) / 15, q = round-half-up((x - m) / d). */
static void q4_1_from_float(const float *x, void *vy, int64_t n) {
    block_q4_1 *y = vy;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float min = x[0], max = x[0];
        for (int j = 1; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        float d = (max - min) / 15.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = f32_to_f16(d);
        y[i].m = f32_to_f16(min);
        for (int j = 0; j < 16; j++) {
            int q0 = kq_floor_clamp((x[j] - min) * id + 0.5f, 15);
            int q1 = kq_floor_clamp((x[j + 16] - min) * id + 0.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* sum_j (d q_j + m) * dy qy_j = d dy sum_j q_j qy_j + m * s, with s = dy * sum_j qy_j. */
static void q4_1_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    uint8_t q[32];
    float sum = 0;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        q4_unpack(x[i].qs, q);
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += q[j] * y[i].qs[j];
        sum += f16_lut(x[i].d) * f16_lut(y[i].d) * (float)isum + f16_lut(x[i].m) * f16_lut(y[i].s);
    }
    *s = sum;
}

/* ---- Q5_0: x = d * (q - 16) --------------------------------------------------------------- */

static void q5_0_to_float(const void *vx, float *y, int64_t n) {
    const block_q5_0 *x = vx;
    uint8_t q[32];
    for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
        float d = f16_lut(x[i].d);
        q5_unpack(x[i].qh, x[i].qs, q);
        for (int j = 0; j < 32; j++) y[j] = d * (float)(q[j] - 16);
    }
}

/* As Q4_0 with 32 levels: d = (signed value of largest magnitude) / -16. */
static void q5_0_from_float(const float *x, void *vy, int64_t n) {
    block_q5_0 *y = vy;
    uint8_t q[32];
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        }
        float d = max / -16.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = f32_to_f16(d);
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)kq_floor_clamp(x[j] * id + 16.5f, 31);
        q5_pack(q, y[i].qh, y[i].qs);
    }
}

static void q5_0_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    uint8_t q[32];
    float sum = 0;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        q5_unpack(x[i].qh, x[i].qs, q);
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += (q[j] - 16) * y[i].qs[j];
        sum += f16_lut(x[i].d) * f16_lut(y[i].d) * (float)isum;
    }
    *s = sum;
}

/* ---- Q5_1: x = d * q + m ------------------------------------------------------------------ */

static void q5_1_to_float(const void *vx, float *y, int64_t n) {
    const block_q5_1 *x = vx;
    uint8_t q[32];
    for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
        float d = f16_lut(x[i].d), m = f16_lut(x[i].m);
        q5_unpack(x[i].qh, x[i].qs, q);
        for (int j = 0; j < 32; j++) y[j] = d * (float)q[j] + m;
    }
}

static void q5_1_from_float(const float *x, void *vy, int64_t n) {
    block_q5_1 *y = vy;
    uint8_t q[32];
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float min = x[0], max = x[0];
        for (int j = 1; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        float d = (max - min) / 31.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = f32_to_f16(d);
        y[i].m = f32_to_f16(min);
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)kq_floor_clamp((x[j] - min) * id + 0.5f, 31);
        q5_pack(q, y[i].qh, y[i].qs);
    }
}

static void q5_1_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    uint8_t q[32];
    float sum = 0;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        q5_unpack(x[i].qh, x[i].qs, q);
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += q[j] * y[i].qs[j];
        sum += f16_lut(x[i].d) * f16_lut(y[i].d) * (float)isum + f16_lut(x[i].m) * f16_lut(y[i].s);
    }
    *s = sum;
}

/* ---- Q8_0: x = d * q; Q8_1 adds s = d * sum(q) ------------------------------------------- */

static void q8_0_to_float(const void *vx, float *y, int64_t n) {
    const block_q8_0 *x = vx;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        float d = f16_lut(x[i].d);
        for (int j = 0; j < 32; j++) y[j] = d * (float)x[i].qs[j];
    }
}

/* d = amax / 127, q = round(x / d) (half away from zero). */
static void q8_0_from_float(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = f32_to_f16(d);
        for (int j = 0; j < 32; j++) y[i].qs[j] = (int8_t)kq_round_away(x[j] * id, 127);
    }
}

static void q8_0_axpy(int64_t n, float *y, float a, const void *vx) {
    const block_q8_0 *x = vx;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        float ad = a * f16_lut(x[i].d);
        for (int j = 0; j < 32; j++) y[j] += ad * (float)x[i].qs[j];
    }
}

/* A Q8_0 row against float values (the query of attention over a Q8_0 K cache): the query is not
 * quantized, so the cache's rounding is the only error added. */
static void q8_0_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = vx;
    const float *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        double b = 0;
        for (int j = 0; j < 32; j++) b += (double)x[i].qs[j] * y[j];
        sum += (double)f16_lut(x[i].d) * b;
    }
    *s = (float)sum;
}

static void q8_0_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += x[i].qs[j] * y[i].qs[j];
        sum += f16_lut(x[i].d) * f16_lut(y[i].d) * (float)isum;
    }
    *s = sum;
}

static void q8_1_to_float(const void *vx, float *y, int64_t n) {
    const block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
        float d = f16_lut(x[i].d);
        for (int j = 0; j < 32; j++) y[j] = d * (float)x[i].qs[j];
    }
}

static void q8_1_from_float(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[i].qs[j] = (int8_t)kq_round_away(x[j] * id, 127);
            sum += y[i].qs[j];
        }
        y[i].d = f32_to_f16(d);
        y[i].s = f32_to_f16((float)sum * d);
    }
}

/* ---- K-quant search helpers ------------------------------------------------------------------ */

/*
 * Fits x[i] ~ scale * L[i] - neg_min with L[i] in 0..nmax, minimising sum_i w[i] * err_i where
 * err is |diff| (use_mad) or diff^2.  (llama.cpp's make_qkx2_quants.)
 *
 * The first guess maps [min(x, 0), max(x)] onto 0..nmax.  Then for nstep + 1 trial inverse
 * scales (nmax + rmin + rdelta * k) / (max - min), k = 0..nstep, the weights are rounded and
 * the scale and min that minimise the weighted squared error for those L are solved in closed
 * form (2x2 normal equations; the min is kept <= 0, i.e. neg_min >= 0).  The trial with the
 * lowest error wins.  Returns the scale; *neg_min receives -min (>= 0).
 */
static float kq_fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *neg_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *neg_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1.f / iscale;
    float best_err = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)kq_clamp(kq_nearest(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        best_err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
    }
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * (float)k + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = kq_clamp(kq_nearest(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)(l * l);
            sum_xl += w[i] * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) { /* a positive offset cannot be stored: refit the scale alone */
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * Laux[i] + this_min - x[i];
            err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
        }
        if (err < best_err) {
            memcpy(L, Laux, (size_t)n);
            best_err = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

/* Weighted sums of x*l and l*l for L = round(iscale * x) clamped to -nmax..nmax-1, with the
 * weight x^2 (errors on large weights matter most). */
static void kq_sym_sums(int n, int nmax, const float *x, float iscale, float *sumlx, float *suml2) {
    float slx = 0, sl2 = 0;
    for (int i = 0; i < n; i++) {
        int l = kq_clamp(kq_nearest(iscale * x[i]), -nmax, nmax - 1);
        float w = x[i] * x[i];
        slx += w * x[i] * (float)l;
        sl2 += w * (float)(l * l);
    }
    *sumlx = slx;
    *suml2 = sl2;
}

/*
 * Fits x[i] ~ scale * (L[i] - nmax) with L[i] - nmax in -nmax..nmax-1 (signed symmetric),
 * minimising sum_i x[i]^2 * err_i^2.  (llama.cpp's make_qx_quants with rmse_type 1.)
 *
 * For a fixed rounding the best scale is sumlx / suml2 and the error falls as sumlx^2 / suml2
 * grows; the first guess maps the value of largest magnitude to -nmax, then 18 nearby inverse
 * scales -(nmax + 0.1 k) / max, k = -9..9, are tried and the best rounding kept.  The sign of
 * the returned scale is that of -max.  L receives l + nmax.  A group of zeros returns scale 0
 * (and L = 0, which any scale of 0 turns into zeros).
 */
static float kq_fit_scale_sym(int n, int nmax, const float *x, uint8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    }
    if (amax < KQ_GROUP_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -(float)nmax / max;
    float sumlx, suml2;
    kq_sym_sums(n, nmax, x, iscale, &sumlx, &suml2);
    for (int i = 0; i < n; i++) L[i] = (uint8_t)(kq_clamp(kq_nearest(iscale * x[i]), -nmax, nmax - 1) + nmax);
    float scale = suml2 > 0 ? sumlx / suml2 : 0.f;
    float best = scale * sumlx;
    for (int k = -9; k <= 9; k++) {
        if (k == 0) continue;
        float is = -((float)nmax + 0.1f * (float)k) / max;
        kq_sym_sums(n, nmax, x, is, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (uint8_t)(kq_clamp(kq_nearest(is * x[i]), -nmax, nmax - 1) + nmax);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/*
 * The Q3_K variant of the symmetric fit (llama.cpp's make_q3_quants with do_rmse): start from
 * the rounding that maps the value of largest magnitude to -nmax, then, up to 5 passes, move
 * single weights to the level that the current best scale suggests, keeping a move when it
 * raises sumlx^2 / suml2 (weights x^2).  L receives l + nmax; returns the scale.
 */
static float kq_fit_scale_q3(int n, int nmax, const float *x, uint8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    }
    if (amax < KQ_GROUP_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -(float)nmax / max;
    int l_signed[QK_K];
    assert(n <= QK_K);
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = kq_clamp(kq_nearest(iscale * x[i]), -nmax, nmax - 1);
        l_signed[i] = l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)(l * l);
    }
    for (int pass = 0; pass < 5; pass++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)l_signed[i];
            if (!(slx > 0)) continue;
            float sl2 = suml2 - w * (float)(l_signed[i] * l_signed[i]);
            int new_l = kq_clamp(kq_nearest(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (new_l == l_signed[i]) continue;
            slx += w * x[i] * (float)new_l;
            sl2 += w * (float)(new_l * new_l);
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                l_signed[i] = new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (uint8_t)(l_signed[i] + nmax);
    return suml2 > 0 ? sumlx / suml2 : 0.f;
}

/* ---- Q2_K: 16 sub-blocks of 16, x = d * sc * q - dmin * m, q in 0..3 ------------------------ */

/* 2-bit fields shared by Q2_K and Q3_K: two halves of 128; in a half, byte l (0..31) holds
 * weights l, l+32, l+64, l+96 in bit pairs 0-1, 2-3, 4-5, 6-7. */
static void k2bit_unpack(const uint8_t qs[QK_K / 4], uint8_t q[QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++)
            for (int k = 0; k < 4; k++) q[128 * h + 32 * k + l] = (qs[32 * h + l] >> (2 * k)) & 3;
}

static void k2bit_pack(const uint8_t q[QK_K], uint8_t qs[QK_K / 4]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = q + 128 * h + l;
            qs[32 * h + l] = (uint8_t)((p[0] & 3) | (p[32] & 3) << 2 | (p[64] & 3) << 4 | (p[96] & 3) << 6);
        }
}

static void q2_K_to_float(const void *vx, float *y, int64_t n) {
    const block_q2_K *x = vx;
    uint8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16_lut(x[i].d), dmin = f16_lut(x[i].dmin);
        k2bit_unpack(x[i].qs, q);
        for (int j = 0; j < 16; j++) {
            float dl = d * (float)(x[i].scales[j] & 0xF), ml = dmin * (float)(x[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++) y[16 * j + l] = dl * (float)q[16 * j + l] - ml;
        }
    }
}

/*
 * Per sub-block: fit scale and min with weights |x| and an absolute-error criterion; then the
 * 16 scales are quantized to 4 bits against d = max scale / 15 and the 16 mins against
 * dmin = max min / 15, and every weight is re-rounded with the scale and min actually stored.
 */
static void q2_K_from_float(const float *x, void *vy, int64_t n) {
    block_q2_K *y = vy;
    uint8_t L[QK_K], Laux[16];
    float w[16], scales[16], mins[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = kq_fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(y[i].scales, 0, sizeof(y[i].scales));
        if (max_scale > 0) {
            float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; j++) y[i].scales[j] = (uint8_t)kq_clamp(kq_nearest(iscale * scales[j]), 0, 15);
            y[i].d = f32_to_f16(max_scale / 15.f);
        } else {
            y[i].d = f32_to_f16(0.f);
        }
        if (max_min > 0) {
            float iscale = 15.f / max_min;
            for (int j = 0; j < 16; j++) y[i].scales[j] |= (uint8_t)(kq_clamp(kq_nearest(iscale * mins[j]), 0, 15) << 4);
            y[i].dmin = f32_to_f16(max_min / 15.f);
        } else {
            y[i].dmin = f32_to_f16(0.f);
        }
        for (int j = 0; j < 16; j++)
            kq_requant16(x + 16 * j, f16_lut(y[i].d) * (float)(y[i].scales[j] & 0xF),
                         f16_lut(y[i].dmin) * (float)(y[i].scales[j] >> 4), 0, 3, 0, L + 16 * j);
        k2bit_pack(L, y[i].qs);
    }
}

/* sum = d dy sum_j sc_j (sum of q * qy over sub-block j) - dmin dy sum_j m_j bsums_j. */
static void q2_K_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    uint8_t q[QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        k2bit_unpack(x[i].qs, q);
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 16; j++) {
            int32_t isum = 0;
            for (int l = 0; l < 16; l++) isum += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += (x[i].scales[j] & 0xF) * isum;
            summ += (x[i].scales[j] >> 4) * y[i].bsums[j];
        }
        sum += y[i].d * (f16_lut(x[i].d) * (float)sumi - f16_lut(x[i].dmin) * (float)summ);
    }
    *s = sum;
}

/* ---- Q3_K: 16 sub-blocks of 16, x = d * (sc - 32) * q, q in -4..3 ---------------------------- */

/* The 16 6-bit scales (still +32): low nibbles in bytes 0..7 (sub-blocks 0..7 low nibble,
 * 8..15 high nibble), high bit pairs in bytes 8..11: sub-block j's in byte 8 + j % 4 at bit
 * 2 * (j / 4). */
static void q3_K_scales(const uint8_t s[12], int8_t sc[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        sc[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

/* Signed 3-bit values: low 2 bits as Q2_K, hmask bit (w / 32) of byte (w % 32) set = no -4. */
static void q3_K_unpack(const block_q3_K *b, int8_t q[QK_K]) {
    uint8_t lo[QK_K];
    k2bit_unpack(b->qs, lo);
    for (int w = 0; w < QK_K; w++) q[w] = (int8_t)(lo[w] - ((b->hmask[w % 32] >> (w / 32)) & 1 ? 0 : 4));
}

static void q3_K_to_float(const void *vx, float *y, int64_t n) {
    const block_q3_K *x = vx;
    int8_t q[QK_K], sc[16];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16_lut(x[i].d);
        q3_K_scales(x[i].scales, sc);
        q3_K_unpack(&x[i], q);
        for (int j = 0; j < 16; j++) {
            float dl = d * (float)sc[j];
            for (int l = 0; l < 16; l++) y[16 * j + l] = dl * (float)q[16 * j + l];
        }
    }
}

/*
 * Per sub-block a signed scale (kq_fit_scale_q3, levels -4..3); the 16 scales are quantized to
 * 6 signed bits against d = -(scale of largest magnitude) / 32, and every weight is re-rounded
 * with the stored scale.
 */
static void q3_K_from_float(const float *x, void *vy, int64_t n) {
    block_q3_K *y = vy;
    uint8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = kq_fit_scale_q3(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) { amax = fabsf(scales[j]); max_scale = scales[j]; }
        }
        memset(y[i].scales, 0, sizeof(y[i].scales));
        if (max_scale != 0.f) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                int l = kq_clamp(kq_nearest(iscale * scales[j]), -32, 31) + 32;
                if (j < 8) y[i].scales[j] |= (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = f32_to_f16(1.f / iscale);
        } else {
            y[i].d = f32_to_f16(0.f);
        }
        int8_t sc[16];
        q3_K_scales(y[i].scales, sc);
        for (int j = 0; j < 16; j++) kq_requant16(x + 16 * j, f16_lut(y[i].d) * (float)sc[j], 0.f, -4, 3, 4, L + 16 * j);
        /* L in 0..7: bit 2 goes to hmask, bits 0-1 to qs */
        memset(y[i].hmask, 0, sizeof(y[i].hmask));
        for (int w = 0; w < QK_K; w++) {
            if (L[w] > 3) {
                y[i].hmask[w % 32] |= (uint8_t)(1 << (w / 32));
                L[w] -= 4;
            }
        }
        k2bit_pack(L, y[i].qs);
    }
}

static void q3_K_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    int8_t q[QK_K], sc[16];
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q3_K_scales(x[i].scales, sc);
        q3_K_unpack(&x[i], q);
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++) {
            int32_t isum = 0;
            for (int l = 0; l < 16; l++) isum += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += sc[j] * isum;
        }
        sum += f16_lut(x[i].d) * y[i].d * (float)sumi;
    }
    *s = sum;
}

/* ---- Q4_K and Q5_K: 8 sub-blocks of 32, x = d * sc * q - dmin * m ----------------------------- */

/* Packs 8 6-bit scales and mins the way kq_get_scale_min_k4 (quants.h) reads them. */
static void k4_pack_scales(const uint8_t ls[8], const uint8_t lm[8], uint8_t s[12]) {
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] |= ls[j] & 63;
            s[j + 4] |= lm[j] & 63;
        } else {
            s[j + 4] |= (uint8_t)((ls[j] & 0xF) | (lm[j] & 0xF) << 4);
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/*
 * Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per sub-block of 32, fit scale and min with
 * weights sqrt(mean x^2) + |x| (squared error); quantize the 8 scales and 8 mins to 6 bits
 * against d = max scale / 63 and dmin = max min / 63; re-round every weight with the stored
 * values.  Writes d, dmin, scales[12] and L (0..nmax per weight, element order).
 */
static void k4_quantize_superblock(const float *x, int nmax, float rmin, int nstep, f16_t *d_out,
                                   f16_t *dmin_out, uint8_t scales_out[12], uint8_t L[QK_K]) {
    uint8_t Laux[32], ls[8], lm[8];
    float w[32], scales[8], mins[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xs[l]);
        scales[j] = kq_fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)kq_clamp(kq_nearest(inv_scale * scales[j]), 0, 63);
        lm[j] = (uint8_t)kq_clamp(kq_nearest(inv_min * mins[j]), 0, 63);
    }
    k4_pack_scales(ls, lm, scales_out);
    *d_out = f32_to_f16(max_scale / 63.f);
    *dmin_out = f32_to_f16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        kq_get_scale_min_k4(j, scales_out, &sc, &m);
        float d = f16_lut(*d_out) * (float)sc;
        if (d == 0.f) continue;
        float dm = f16_lut(*dmin_out) * (float)m;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)kq_clamp(kq_nearest((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

/* Q4_K nibbles: four chunks of 64 weights, 32 bytes each; byte l of chunk c holds weight
 * 64c + l (low) and 64c + 32 + l (high). */
static void q4_K_unpack(const uint8_t qs[QK_K / 2], uint8_t q[QK_K]) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = qs[32 * c + l] & 0xF;
            q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
        }
}

static void q4_K_to_float(const void *vx, float *y, int64_t n) {
    const block_q4_K *x = vx;
    uint8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16_lut(x[i].d), dmin = f16_lut(x[i].dmin);
        q4_K_unpack(x[i].qs, q);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            kq_get_scale_min_k4(j, x[i].scales, &sc, &m);
            float dl = d * (float)sc, ml = dmin * (float)m;
            for (int l = 0; l < 32; l++) y[32 * j + l] = dl * (float)q[32 * j + l] - ml;
        }
    }
}

static void q4_K_from_float(const float *x, void *vy, int64_t n) {
    block_q4_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        k4_quantize_superblock(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

/* Dot of 8 sub-blocks of 32 unsigned values q (0..nmax) with a Q8_K block; the min term uses
 * the activation's bsums (two groups of 16 per sub-block).  Shared by Q4_K and Q5_K. */
static float k4_dot_superblock(const uint8_t q[QK_K], f16_t d, f16_t dmin, const uint8_t scales[12],
                               const block_q8_K *y) {
    int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        kq_get_scale_min_k4(j, scales, &sc, &m);
        int32_t isum = 0;
        for (int l = 0; l < 32; l++) isum += q[32 * j + l] * y->qs[32 * j + l];
        sumi += sc * isum;
        summ += m * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
    }
    return y->d * (f16_lut(d) * (float)sumi - f16_lut(dmin) * (float)summ);
}

static void q4_K_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    uint8_t q[QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q4_K_unpack(x[i].qs, q);
        sum += k4_dot_superblock(q, x[i].d, x[i].dmin, x[i].scales, &y[i]);
    }
    *s = sum;
}

/* Q5_K: nibbles as Q4_K; bit 2c of qh[l] = bit 4 of weight 64c + l, bit 2c+1 that of 64c+32+l. */
static void q5_K_unpack(const block_q5_K *b, uint8_t q[QK_K]) {
    q4_K_unpack(b->qs, q);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] |= (uint8_t)(((b->qh[l] >> (2 * c)) & 1) << 4);
            q[64 * c + 32 + l] |= (uint8_t)(((b->qh[l] >> (2 * c + 1)) & 1) << 4);
        }
}

static void q5_K_to_float(const void *vx, float *y, int64_t n) {
    const block_q5_K *x = vx;
    uint8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16_lut(x[i].d), dmin = f16_lut(x[i].dmin);
        q5_K_unpack(&x[i], q);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            kq_get_scale_min_k4(j, x[i].scales, &sc, &m);
            float dl = d * (float)sc, ml = dmin * (float)m;
            for (int l = 0; l < 32; l++) y[32 * j + l] = dl * (float)q[32 * j + l] - ml;
        }
    }
}

static void q5_K_from_float(const float *x, void *vy, int64_t n) {
    block_q5_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        k4_quantize_superblock(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof(y[i].qh));
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                uint8_t a = L[64 * c + l], b = L[64 * c + 32 + l];
                y[i].qs[32 * c + l] = (uint8_t)((a & 0xF) | (b & 0xF) << 4);
                y[i].qh[l] |= (uint8_t)((a >> 4) << (2 * c) | (b >> 4) << (2 * c + 1));
            }
    }
}

static void q5_K_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    uint8_t q[QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q5_K_unpack(&x[i], q);
        sum += k4_dot_superblock(q, x[i].d, x[i].dmin, x[i].scales, &y[i]);
    }
    *s = sum;
}

/* ---- Q6_K: 16 sub-blocks of 16, x = d * sc * (q - 32), q in 0..63 --------------------------- */

/* Two halves of 128; in a half, for l in 0..31 (see quants.h):
 *   l: ql[l] low, qh[l] bits 0-1;  l+32: ql[l+32] low, bits 2-3;
 *   l+64: ql[l] high, bits 4-5;    l+96: ql[l+32] high, bits 6-7.  Returns q - 32. */
static void q6_K_unpack(const block_q6_K *b, int8_t q[QK_K]) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        int8_t *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32);
            o[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32);
            o[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
            o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
        }
    }
}

static void q6_K_to_float(const void *vx, float *y, int64_t n) {
    const block_q6_K *x = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16_lut(x[i].d);
        q6_K_unpack(&x[i], q);
        for (int j = 0; j < 16; j++) {
            float dl = d * (float)x[i].scales[j];
            for (int l = 0; l < 16; l++) y[16 * j + l] = dl * (float)q[16 * j + l];
        }
    }
}

/*
 * Per sub-block a signed scale (kq_fit_scale_sym, levels -32..31, weights x^2); the 16 scales
 * are quantized to int8 against d = -(scale of largest magnitude) / 128 and every weight is
 * re-rounded with the stored scale.
 */
static void q6_K_from_float(const float *x, void *vy, int64_t n) {
    block_q6_K *y = vy;
    uint8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_abs = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = kq_fit_scale_sym(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs) { max_abs = fabsf(scales[j]); max_scale = scales[j]; }
        }
        if (max_abs < KQ_GROUP_EPS) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = f32_to_f16(1.f / iscale);
        for (int j = 0; j < 16; j++) y[i].scales[j] = (int8_t)kq_clamp(kq_nearest(iscale * scales[j]), -128, 127);
        for (int j = 0; j < 16; j++)
            kq_requant16(x + 16 * j, f16_lut(y[i].d) * (float)y[i].scales[j], 0.f, -32, 31, 32, L + 16 * j);
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = y[i].ql + 64 * h, *qh = y[i].qh + 32 * h;
            const uint8_t *p = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((p[l] & 0xF) | (p[l + 64] & 0xF) << 4);
                ql[l + 32] = (uint8_t)((p[l + 32] & 0xF) | (p[l + 96] & 0xF) << 4);
                qh[l] = (uint8_t)((p[l] >> 4) | (p[l + 32] >> 4) << 2 | (p[l + 64] >> 4) << 4 | (p[l + 96] >> 4) << 6);
            }
        }
    }
}

static void q6_K_vec_dot(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    int8_t q[QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q6_K_unpack(&x[i], q);
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++) {
            int32_t isum = 0;
            for (int l = 0; l < 16; l++) isum += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += x[i].scales[j] * isum;
        }
        sum += f16_lut(x[i].d) * y[i].d * (float)sumi;
    }
    *s = sum;
}

/* ---- Q8_K: float d, q = round(x / d) in -127..127, bsums per 16 ----------------------------- */

static void q8_K_to_float(const void *vx, float *y, int64_t n) {
    const block_q8_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++) y[j] = x[i].d * (float)x[i].qs[j];
}

/* iscale = -127 / max with max the signed value of largest magnitude, so that value becomes
 * q = -127; d = 1 / iscale is kept as a float (its sign is the opposite of max's); the other
 * values round to nearest (ties to even), at most 127. */
static void q8_K_from_float(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        }
        if (amax == 0.f) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)kq_clamp(kq_nearest(iscale * x[j]), -128, 127);
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * g + l];
            y[i].bsums[g] = (int16_t)sum;
        }
        y[i].d = 1.f / iscale;
    }
}

/* ---- the table ------------------------------------------------------------------------------- */

#define ROW(T, nm, blk, size, pre, dot, dot_type)                                                   \
    [GGUF_TYPE_##T] = { .name = nm, .blck = blk, .type_size = size, .to_float = pre##_to_float,     \
                        .from_float = pre##_from_float, .vec_dot = dot, .vec_dot_type = GGUF_TYPE_##dot_type }

/* a KV cache type: a row with axpy and dot_f32 as well */
#define KV_ROW(T, nm, blk, size, pre, dot, dot_type, kv_dot)                                                \
    [GGUF_TYPE_##T] = { .name = nm, .blck = blk, .type_size = size, .to_float = pre##_to_float,     \
                        .from_float = pre##_from_float, .vec_dot = dot, .vec_dot_type = GGUF_TYPE_##dot_type, \
                        .axpy = pre##_axpy, .dot_f32 = kv_dot }

static const kern_type_traits kq_traits[GGUF_TYPE_COUNT] = {
    KV_ROW(F32, "f32", 1, sizeof(float), f32, f32_vec_dot, F32, f32_vec_dot),
    KV_ROW(F16, "f16", 1, sizeof(f16_t), f16, f16_vec_dot, F32, f16_vec_dot),
    ROW(BF16, "bf16", 1, sizeof(bf16_t), bf16, bf16_vec_dot, F32),
    ROW(Q4_0, "q4_0", QK4_0, sizeof(block_q4_0), q4_0, q4_0_vec_dot, Q8_0),
    ROW(Q4_1, "q4_1", QK4_1, sizeof(block_q4_1), q4_1, q4_1_vec_dot, Q8_1),
    ROW(Q5_0, "q5_0", QK5_0, sizeof(block_q5_0), q5_0, q5_0_vec_dot, Q8_0),
    ROW(Q5_1, "q5_1", QK5_1, sizeof(block_q5_1), q5_1, q5_1_vec_dot, Q8_1),
    KV_ROW(Q8_0, "q8_0", QK8_0, sizeof(block_q8_0), q8_0, q8_0_vec_dot, Q8_0, q8_0_dot_f32),
    ROW(Q8_1, "q8_1", QK8_1, sizeof(block_q8_1), q8_1, NULL, Q8_1),
    ROW(Q2_K, "q2_K", QK_K, sizeof(block_q2_K), q2_K, q2_K_vec_dot, Q8_K),
    ROW(Q3_K, "q3_K", QK_K, sizeof(block_q3_K), q3_K, q3_K_vec_dot, Q8_K),
    ROW(Q4_K, "q4_K", QK_K, sizeof(block_q4_K), q4_K, q4_K_vec_dot, Q8_K),
    ROW(Q5_K, "q5_K", QK_K, sizeof(block_q5_K), q5_K, q5_K_vec_dot, Q8_K),
    ROW(Q6_K, "q6_K", QK_K, sizeof(block_q6_K), q6_K, q6_K_vec_dot, Q8_K),
    ROW(Q8_K, "q8_K", QK_K, sizeof(block_q8_K), q8_K, NULL, Q8_K),
    /* seek's own activation format (actq.h), not a file type */
    [KERN_TYPE_Q8_16] = { .name = "q8_16", .blck = QK8_16, .type_size = sizeof(block_q8_16),
                          .to_float = kern_dequantize_q8_16_ref, .from_float = kern_quantize_q8_16_ref,
                          .vec_dot = NULL, .vec_dot_type = KERN_TYPE_Q8_16 },
};

#undef ROW
#undef KV_ROW

const kern_type_traits *kern_traits(uint32_t type) {
    if (type >= GGUF_TYPE_COUNT || kq_traits[type].name == NULL) return NULL;
    base_init(); /* the functions read f16 through f16_lut */
    return &kq_traits[type];
}
