/*
 * actq.h - seek's activation format for quantized matrix products: "Q8_16".
 *
 * Before a matmul, each activation row (floats) is converted once to blocks of 32 int8 values
 * with one float scale per group of 16 (llama.cpp uses one scale per 32 for Q8_0 and one per 256
 * for Q8_K).  The finer scale keeps the int8 dot products that make the kernels fast, but cuts
 * the activation rounding error, which is nearly all the error of a quantized forward pass:
 * measured on the llama.cpp fixture models, the softmax KL to the exact-weight reference drops
 * to 0.3-0.6x of llama.cpp's.
 *
 *   x[16*g + i] ~= d[g] * qs[16*g + i],  d[g] = max|x| over group g / 127,  qs = round(x / d[g])
 *   s[g] = d[g] * sum_i qs[16*g + i]  (the group's sum as represented; used for weight minimums
 *                                      and offsets, e.g. Q4_K's "- dmin*m" and Q6_K's "-32")
 *
 * It is not a GGUF file type: its id (KERN_TYPE_Q8_16) lies above the file type ids and it
 * appears only in kern_traits() as the vec_dot_type of the quantized weight types.
 */
#ifndef SEEK_KERN_ACTQ_H
#define SEEK_KERN_ACTQ_H

#include <assert.h>
#include <stdint.h>

#define QK8_16 32
#define KERN_TYPE_Q8_16 39 /* < GGUF_TYPE_COUNT, unused by GGUF */

typedef struct {
    float d[2];  /* scales of elements 0..15 and 16..31 */
    float s[2];  /* d[g] * sum of the group's qs */
    int8_t qs[QK8_16];
} block_q8_16;
static_assert(sizeof(block_q8_16) == 48, "block_q8_16 size");

#endif
