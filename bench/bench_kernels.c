/*
 * bench_kernels.c - per-type matmul speed against this machine's measured limits.
 *
 * For each weight type, a matrix far larger than the caches (so decode-style matvecs stream it
 * from memory) is filled with random weights quantized by the reference quantizer, then:
 *   matvec (n = 1):   GB/s of weight bytes read, and that as a fraction of measured bandwidth
 *                     (the decode case: memory bound when the kernel is good);
 *   batched (n = 64): GFLOP/s (2 flops per weight per token; the prompt-processing case) for
 *                     k = 1536, m = 8960 (a 1.5B model's FFN up/gate shape), best of --reps
 *                     runs; the matrix (8-13 MB for the quantized types) is read from memory.
 * Usage: bench_kernels [-t THREADS] [--mb MATRIX_MB] [--reps N] [--type NAME]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kern/kern.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

int main(int argc, char **argv) {
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    long mb = 256, reps = 5;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "-t")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mb")) mb = atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps")) reps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--type")) only = argv[++i];
    }
    if (reps < 1) reps = 1;
    base_init();
    seek_err err = { 0 };
    kern_pool *pool = kern_pool_new(threads, &err);
    if (!pool) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double bw = kern_measure_bandwidth(pool, 1ull << 30, 5);
    printf("isa %s, %d threads, measured read bandwidth %.1f GB/s\n\n", kern_isa_name(kern_active_isa()), threads, bw);
    printf("| type   | matvec GB/s | of bandwidth | batch-64 GFLOP/s |\n");
    printf("| ------ | ----------- | ------------ | ---------------- |\n");
    const uint32_t types[] = { GGUF_TYPE_F32, GGUF_TYPE_F16, GGUF_TYPE_BF16, GGUF_TYPE_Q8_0, GGUF_TYPE_Q6_K,
                               GGUF_TYPE_Q5_K, GGUF_TYPE_Q4_K, GGUF_TYPE_Q4_0, GGUF_TYPE_Q3_K, GGUF_TYPE_Q2_K };
    const int64_t k = 1536, n_batch = 64, m_batch = 8960;
    float *src = malloc(sizeof(float) * k);
    float *X = malloc(sizeof(float) * k * n_batch);
    for (int64_t i = 0; i < k * n_batch; i++) X[i] = frand();
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const kern_type_traits *tr = kern_traits(types[ti]);
        if (!tr || !tr->from_float || (only && strcmp(only, tr->name))) continue;
        uint64_t row_bytes = (uint64_t)(k / tr->blck) * tr->type_size;
        int64_t m = (int64_t)((uint64_t)mb * (1 << 20) / row_bytes);
        if (m < m_batch) m = m_batch;
        uint8_t *w = mem_alloc(row_bytes * (uint64_t)m);
        float *Y = mem_alloc(sizeof(float) * (uint64_t)m * n_batch);
        void *scratch = mem_alloc(kern_matmul_scratch(types[ti], k, n_batch) + 64);
        if (!w || !Y) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        /* 64 distinct random rows, repeated: the values do not matter for speed */
        for (int64_t r = 0; r < m; r++) {
            if (r < 64) {
                for (int64_t i = 0; i < k; i++) src[i] = frand() * 0.05f;
                tr->from_float(src, w + r * row_bytes, k);
            } else {
                memcpy(w + r * row_bytes, w + (r % 64) * row_bytes, row_bytes);
            }
        }
        kern_mat W = { w, types[ti], k, m, row_bytes };
        kern_matmul(pool, &W, X, 1, Y, m, scratch); /* warm-up */
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            uint64_t t0 = time_now_ns();
            kern_matmul(pool, &W, X, 1, Y, m, scratch);
            double s = (double)(time_now_ns() - t0) / 1e9;
            if (s < best) best = s;
        }
        double gbs = (double)(row_bytes * (uint64_t)m) / best / 1e9;
        /* batched: the first m_batch rows, best of reps */
        kern_mat Wb = W;
        Wb.m = m_batch;
        double sb = 1e30;
        for (long rep = 0; rep < reps; rep++) {
            uint64_t t0 = time_now_ns();
            kern_matmul(pool, &Wb, X, n_batch, Y, Wb.m, scratch);
            double s = (double)(time_now_ns() - t0) / 1e9;
            if (s < sb) sb = s;
        }
        double gflops = 2.0 * (double)k * (double)Wb.m * (double)n_batch / sb / 1e9;
        printf("| %-6s | %11.1f | %11.0f%% | %16.1f |\n", tr->name, gbs, bw > 0 ? 100.0 * gbs / bw : 0, gflops);
        mem_free(w);
        mem_free(Y);
        mem_free(scratch);
    }
    free(src);
    free(X);
    kern_pool_free(pool);
    return 0;
}
