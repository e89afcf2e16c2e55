/*
 * membw.c - measures this machine's memory read bandwidth, the limit decode speed is judged by.
 *
 * Every pool thread streams over its own slice of a buffer much larger than the caches, XOR-ing
 * it into four independent register accumulators (SSE2 on x86-64, which every x86-64 CPU has;
 * 64-bit words elsewhere).  The work per byte is trivial, so the time is the time to read the
 * bytes.  The best of several passes is reported.  (A first version kept its accumulators in a
 * stack array; the stores throttled the stream to about 22 GB/s on a machine where this loop and
 * the matvec kernels read 27-30 GB/s, so the probe must stay at least as fast as any kernel.)
 */
#include "kern.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

typedef struct {
    const uint64_t *buf;
    int64_t n_words;
    uint64_t sink[64];
} bw_ctx;

static void bw_task(void *p, int ith, int nth) {
    bw_ctx *c = p;
    int64_t lo, hi;
    kern_split(c->n_words, 64, ith, nth, &lo, &hi); /* 64 words = 512 bytes, keeps slices aligned */
#if defined(__x86_64__)
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = lo; i + 8 <= hi; i += 8) {
        const __m128i *v = (const __m128i *)(c->buf + i);
        a0 = _mm_xor_si128(a0, _mm_load_si128(v));
        a1 = _mm_xor_si128(a1, _mm_load_si128(v + 1));
        a2 = _mm_xor_si128(a2, _mm_load_si128(v + 2));
        a3 = _mm_xor_si128(a3, _mm_load_si128(v + 3));
    }
    __m128i a = _mm_xor_si128(_mm_xor_si128(a0, a1), _mm_xor_si128(a2, a3));
    c->sink[ith % 64] = (uint64_t)_mm_cvtsi128_si64(a) ^ (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(a, a));
#else
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int64_t i = lo; i + 4 <= hi; i += 4) {
        a0 ^= c->buf[i];
        a1 ^= c->buf[i + 1];
        a2 ^= c->buf[i + 2];
        a3 ^= c->buf[i + 3];
    }
    c->sink[ith % 64] = a0 ^ a1 ^ a2 ^ a3;
#endif
}

double kern_measure_bandwidth(kern_pool *pool, uint64_t bytes, int passes) {
    if (bytes < (1 << 20)) bytes = 1 << 20;
    uint64_t *buf = mem_alloc(bytes);
    if (!buf) return 0.0;
    bw_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        mem_free(buf);
        return 0.0;
    }
    /* touch every page with non-zero data so the reads hit real memory */
    memset(buf, 0x5a, bytes);
    c->buf = buf;
    c->n_words = (int64_t)(bytes / 8);
    kern_pool_run(pool, bw_task, c); /* warm-up: page tables, thread wake-up */
    double best = 0.0;
    for (int i = 0; i < passes; i++) {
        uint64_t t0 = time_now_ns();
        kern_pool_run(pool, bw_task, c);
        uint64_t dt = time_now_ns() - t0;
        double gbs = (double)bytes / (double)dt;
        if (gbs > best) best = gbs;
    }
    free(c);
    mem_free(buf);
    return best; /* bytes per ns = GB/s */
}
