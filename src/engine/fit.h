/*
 * fit.h - which model fits this machine, and how fast it will run, before anything is downloaded.
 *
 * Three parts:
 *  - a catalog of the DeepSeek-R1 family (the distills' architecture shapes, from their config.json
 *    files) with the usual quantizations; file sizes are computed tensor by tensor from the block
 *    formats and llama.cpp's per-tensor type rules (store_tensor_type), not typed in;
 *  - the memory a model needs at a context size: mapped weights + KV cache + compute scratch + a
 *    fixed runtime overhead, with the same formulas model_ctx_new and engine use to allocate;
 *  - speed: this machine's read bandwidth and the engine's own kernels timed on each tensor type,
 *    turned into decode tokens/s (time per token = sum over tensors of bytes / kernel GB/s) and
 *    prompt tokens/s (flops per token / kernel GFLOP/s at batch 64).
 *
 * The same estimate serves `seek fit`, the refusal in `seek run` and the server's scheduler.
 */
#ifndef SEEK_ENGINE_FIT_H
#define SEEK_ENGINE_FIT_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/base.h"
#include "../model/model.h"

typedef struct fit_shape {
    const char *tag;      /* "1.5b" (catalog) or a file name */
    const char *arch;     /* "qwen2" or "llama" */
    const char *source;   /* "DeepSeek-R1-Distill-Qwen-1.5B" */
    int64_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    bool tied;            /* output matrix shared with the token embeddings */
} fit_shape;

/* The i-th catalog entry (1.5b, 7b, 8b, 14b, 32b, 70b); NULL past the end. */
const fit_shape *fit_catalog(int i);
/* The shape of a loaded model. */
fit_shape fit_shape_of(const model *m, const char *tag);

/* The quantizations `seek fit` lists. */
extern const char *const fit_quants[];
extern const int fit_n_quants;

/* Bytes of all tensors of shape s quantized with mix (llama.cpp's per-tensor rules), and the bytes
 * one decoded token reads (every matrix once, one row of the token embeddings unless tied).
 * Returns 0, or -1 with err for an unknown mix. */
int fit_weight_bytes(const fit_shape *s, const char *mix, uint64_t *file_bytes, uint64_t *read_bytes,
                     seek_err *err);

typedef struct fit_memory {
    uint64_t weights;  /* resident weight bytes (mapped; touched while generating) */
    uint64_t kv;       /* KV cache for n_ctx x n_parallel */
    uint64_t scratch;  /* activations, attention scores, logits, quantized activations */
    uint64_t overhead; /* vocabulary tables, code, libraries, thread stacks */
    uint64_t total;
} fit_memory;

/* resident_weights: the weight bytes that end up in memory: every tensor except the rows of the
 * token embeddings no prompt looks up (fit_weight_bytes' read_bytes; fit_resident_bytes for a
 * loaded model).  An untied 1.5B model's embeddings are 12% of its file and barely touched. */
uint64_t fit_resident_bytes(const model *m);
fit_memory fit_estimate_memory(const fit_shape *s, uint64_t resident_weights, int32_t n_ctx, int n_parallel);

/* ---- this machine ------------------------------------------------------------------------- */

typedef struct fit_machine {
    uint64_t mem_total, mem_available;
    int n_cores;
    const char *isa;      /* kernels in use: "avx512", "avx2", "scalar", "neon" */
    double bw_gbs;        /* measured read bandwidth, all threads */
    /* per-type kernel speeds with all threads: matvec GB/s (decode) and GFLOP/s at batch 64 */
    struct { uint32_t type; double gbs, gflops; } kern[8];
    int n_kern;
} fit_machine;

/* Measures the machine (about 1-2 s): bandwidth and the matvec/matmul kernels of the types the
 * catalog's quantizations use.  n_threads <= 0: all cores. */
int fit_measure(fit_machine *fm, int n_threads, seek_err *err);

typedef struct fit_speed {
    double tg_tps; /* decode tokens/s at the start of a conversation */
    double pp_tps; /* prompt tokens/s */
} fit_speed;

/* Predicted speed of shape s with mix on the measured machine. */
int fit_predict_speed(const fit_machine *fm, const fit_shape *s, const char *mix, fit_speed *out, seek_err *err);

/* Memory seek may plan with: MemAvailable, capped by $SEEK_MEM_LIMIT when set (bytes, or with a
 * unit: "8GB", "512MiB") so seek can be given a budget on a shared machine. */
uint64_t fit_available_memory(void);

/* The verdict for `need` bytes: 0 fits (with 20% headroom of available memory), 1 tight (fits in
 * available memory without headroom), 2 does not fit. */
int fit_verdict(uint64_t need, uint64_t available);

/* A one-line suggestion of the largest catalog model that fits `available` at n_ctx, e.g.
 * "deepseek-r1:7b (Q4_K_M, 5.1 GB)"; "" if none does. */
void fit_suggest(uint64_t available, int32_t n_ctx, char *buf, size_t cap);

#endif
