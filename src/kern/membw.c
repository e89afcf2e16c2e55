/*
 * membw.c - measures this machine's memory read bandwidth, the limit decode speed is judged by.
 *
 * Every pool thread streams over its own slice of a buffer much larger than the caches, XOR-ing
 * 64-bit words into eight independent accumulators (the loop vectorizes; the work per byte is
 * trivial, so the time is the time to read the bytes).  The best of several passes is reported.
 */
#include "kern.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint64_t *buf;
    int64_t n_words;
    uint64_t sink[64];
} bw_ctx;

static void bw_task(void *p, int ith, int nth) {
    bw_ctx *c = p;
    int64_t lo, hi;
    kern_split(c->n_words, 64, ith, nth, &lo, &hi);
    uint64_t a[8] = { 0 };
    for (int64_t i = lo; i + 8 <= hi; i += 8)
        for (int j = 0; j < 8; j++) a[j] ^= c->buf[i + j];
    c->sink[ith % 64] = a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
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
