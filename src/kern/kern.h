/*
 * kern.h - compute kernels: per-type traits (dequantize, quantize, dot product), run-time ISA
 * selection, the thread pool, the quantized matrix multiply, and the float vector ops the forward
 * pass needs.
 *
 * Layers: kern depends on gguf (type ids) and base only.
 *
 * Each tensor type has one row in the reference traits table (kern_traits): a scalar dequantizer,
 * a scalar reference quantizer and a scalar dot product against the type's activation format
 * (vec_dot_type).  Fast versions for an ISA live in their own files (quants_avx2.c, ...) and are
 * compiled with their own -m flags; kern_best() returns the best set for the CPU at run time, and
 * every fast kernel is tested against the scalar reference (tests/test_kern.c).
 *
 * Glossary for matrix shapes: a weight matrix W has m rows of k elements (GGUF ne0 = k,
 * ne1 = m); activations X are n rows (tokens) of k floats; the result Y is n rows of m floats.
 */
#ifndef SEEK_KERN_H
#define SEEK_KERN_H

#include "../base/base.h"
#include "../gguf/gguf.h"

/* vec_dot: *s = dot(x, y) over n elements, x a row of the weight type, y a row of the
 * activation type (vec_dot_type).  n is a multiple of both block sizes. */
typedef void (*kern_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);
/* to_float: dequantize n elements (a multiple of the block size). */
typedef void (*kern_to_float_fn)(const void *x, float *y, int64_t n);
/* from_float: quantize n floats (a multiple of the block size). */
typedef void (*kern_from_float_fn)(const float *x, void *y, int64_t n);
/* axpy: y[i] += a * x[i] over n elements of a row x of the type (n a multiple of the block
 * size): the attention's weighted sum over cached V rows. */
typedef void (*kern_axpy_fn)(int64_t n, float *y, float a, const void *x);

/*
 * The prompt-processing (batched matmul) kernel pair, optional per type and ISA.  A "panel" is
 * KERN_GEMM_ROWS weight rows unpacked once into a kernel-private layout (panel_bytes(k) bytes,
 * 32-byte aligned; the layout and so the size depend on the kernel), which then serves any
 * number of tokens, so each weight is unpacked once per matmul instead of once per token.
 *   panel_bytes: the panel's size for rows of k elements (a multiple of 32, so that
 *         aligned_alloc(32, size) is valid);
 *   pack: rows w, w + row_bytes, ..., nr (1..KERN_GEMM_ROWS) of them, k elements each -> panel;
 *   gemm: y[t * ldy + r] = dot(row r, activation row t) for r < nr, t < nt, the activation rows
 *         (in the vec_dot_type the kernels were chosen for) a_row_bytes apart; nothing else of
 *         y is written.
 * Results equal vec_dot's within float rounding (the sums run in another order).
 */
#define KERN_GEMM_ROWS 8
typedef uint64_t (*kern_gemm_panel_bytes_fn)(int64_t k);
typedef void (*kern_gemm_pack_fn)(int64_t k, const void *w, uint64_t row_bytes, int nr, void *panel);
typedef void (*kern_gemm_fn)(int64_t k, const void *panel, int nr, const void *a, uint64_t a_row_bytes,
                             int64_t nt, float *y, int64_t ldy);
typedef struct kern_gemm_ops {
    kern_gemm_panel_bytes_fn panel_bytes;
    kern_gemm_pack_fn pack;
    kern_gemm_fn gemm;
} kern_gemm_ops;

typedef struct kern_type_traits {
    const char *name;
    uint32_t blck;      /* elements per block */
    uint32_t type_size; /* bytes per block */
    kern_to_float_fn to_float;     /* scalar reference */
    kern_from_float_fn from_float; /* scalar reference quantizer; NULL if unsupported */
    kern_vec_dot_fn vec_dot;       /* scalar reference; NULL for activation-only types */
    uint32_t vec_dot_type;         /* activation format for vec_dot */
    /* the KV cache types (F32, F16, Q8_0) only, NULL elsewhere; scalar references: */
    kern_axpy_fn axpy;       /* y += a * row */
    kern_vec_dot_fn dot_f32; /* dot of a row with floats (vec_dot itself where vec_dot_type is F32) */
} kern_type_traits;

/* The reference (scalar) traits of a type; NULL if seek cannot compute with it. */
const kern_type_traits *kern_traits(uint32_t type);

/* ---- run-time ISA selection -------------------------------------------------------- */

enum kern_isa { KERN_ISA_SCALAR = 0, KERN_ISA_AVX2, KERN_ISA_AVX512, KERN_ISA_NEON, KERN_ISA_COUNT };

/* Fast operations for one type on one ISA.  A NULL member means "use the reference". */
typedef struct kern_ops {
    kern_vec_dot_fn vec_dot;
    /* kern_best() only: the activation format vec_dot expects.  By default the quantized weight
     * types use seek's finer Q8_16 activations (actq.h); $SEEK_ACTIVATIONS=llama selects
     * llama.cpp's Q8_0/Q8_1/Q8_K activations and kernels (kern_traits' vec_dot_type) instead. */
    uint32_t vec_dot_type;
    kern_from_float_fn from_float; /* for activation types (Q8_0, Q8_1, Q8_K) */
    kern_to_float_fn to_float;
    kern_axpy_fn axpy;       /* KV cache types: y += a * row */
    kern_vec_dot_fn dot_f32; /* KV cache types: dot of a row with floats */
    /* kern_best() only: the batched kernels for vec_dot_type activations; all NULL where
     * absent (then kern_matmul runs vec_dot per row and token). */
    kern_gemm_ops gemm;
} kern_ops;

/* Bit set of ISAs this CPU (and OS) can run, (1 << KERN_ISA_x). */
unsigned kern_cpu_isas(void);
const char *kern_isa_name(int isa);
/* The ISA kern_best() uses: the best present, or the one named by $SEEK_ISA if present. */
int kern_active_isa(void);
/* Ops of one ISA for a type (members NULL where that ISA has no kernel); NULL if the ISA is not
 * compiled in.  Tests use this to compare each ISA with the reference. */
const kern_ops *kern_isa_ops(int isa, uint32_t type);
/* The ops the engine uses: for each member, the active ISA's kernel if it has one, else the
 * next ISA down that has one (avx512 -> avx2; safe because every fast quantizer is bit-identical
 * to the reference), else the reference.  Never NULL for a type kern_traits() knows; members are never NULL except
 * vec_dot for activation-only types and from_float where no quantizer exists. */
const kern_ops *kern_best(uint32_t type);

/* Per-ISA tables, defined in the ISA files (NULL entries for types they do not accelerate). */
extern const kern_ops *const kern_ops_avx2[GGUF_TYPE_COUNT];
extern const kern_ops *const kern_ops_avx512[GGUF_TYPE_COUNT];
extern const kern_ops *const kern_ops_neon[GGUF_TYPE_COUNT]; /* arm64 builds only (quants_neon.c) */
/* Batched kernels for the float weight types (F32, F16, BF16; float activations), all-zero
 * entries elsewhere: gemm_float_avx2.c, x86-64 builds only.  kern_best() uses them under the
 * AVX2 and AVX-512 ISAs. */
extern const kern_gemm_ops kern_float_gemm_avx2[GGUF_TYPE_COUNT];

/* ---- thread pool ------------------------------------------------------------------- */

/*
 * A fixed set of worker threads that run one task at a time.  kern_pool_run() calls
 * fn(ctx, ith, nth) once on every thread (the calling thread is thread 0) and returns when all
 * have returned.  Workers spin briefly and then sleep between tasks.
 */
typedef struct kern_pool kern_pool;
typedef void (*kern_task_fn)(void *ctx, int ith, int nth);

kern_pool *kern_pool_new(int n_threads, seek_err *err);
void kern_pool_free(kern_pool *pool);
int kern_pool_size(const kern_pool *pool);
void kern_pool_run(kern_pool *pool, kern_task_fn fn, void *ctx);

/* Splits [0, n) into nth nearly equal parts aligned to `align`; returns part ith in [*lo, *hi). */
void kern_split(int64_t n, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi);

/* ---- matrix multiply --------------------------------------------------------------- */

typedef struct kern_mat {
    const void *data;   /* m rows of row_bytes each */
    uint32_t type;      /* enum gguf_type */
    int64_t k;          /* elements per row (ne0) */
    int64_t m;          /* rows (ne1) */
    uint64_t row_bytes; /* nb1 */
} kern_mat;

/* Bytes of scratch kern_matmul needs for n activation rows of length k against type. */
uint64_t kern_matmul_scratch(uint32_t type, int64_t k, int64_t n);

/* Y[t*ldy + r] = dot(W row r, X row t) for t < n, r < W->m.  X rows are k floats apart.
 * The activations are converted once to the type's vec_dot_type (in scratch), then rows are
 * split across the pool's threads.  Hot spot of the whole engine. */
void kern_matmul(kern_pool *pool, const kern_mat *W, const float *X, int64_t n, float *Y,
                 int64_t ldy, void *scratch);
/* The same with the kernel family chosen by the caller: use_gemm > 0 uses the batched panel
 * kernels whenever the type has them (any n), 0 never (the 1x1 dot), < 0 when n is large enough
 * to pay (kern_matmul).  The two families sum in different orders, so a caller that needs a
 * token's result not to depend on which other tokens share the call picks the family by the
 * token's role, not by n. */
void kern_matmul_ex(kern_pool *pool, const kern_mat *W, const float *X, int64_t n, float *Y,
                    int64_t ldy, void *scratch, int use_gemm);

/* Dequantizes row r of W into out (k floats). */
void kern_get_row(const kern_mat *W, int64_t r, float *out);

/* ---- attention over a KV cache (attn.c) -------------------------------------------- */

/*
 * The query heads of a GQA group read the same cached K and V rows; these kernels take one row
 * (n values of a KV cache type: F32, F16 or Q8_0; n a multiple of 8 and of the block size) and
 * the whole group, so the row is loaded and converted once per group instead of once per head.
 *   dot_multi:  out[i] = dot(row, q + i * q_stride)             for i < nq
 *   axpy_multi: y + i * y_stride += a[i * a_stride] * row        for i < na
 * nq, na: 1..KERN_KV_GROUP (larger groups are split by the caller).
 */
#define KERN_KV_GROUP 8
typedef struct kern_kv_ops {
    void (*dot_multi)(int64_t n, const void *row, const float *q, int64_t q_stride, int nq, float *out);
    void (*axpy_multi)(int64_t n, const void *row, const float *a, int64_t a_stride, int na, float *y,
                       int64_t y_stride);
} kern_kv_ops;
/* The fastest group kernels for a cache type on this CPU; NULL if the type is not a KV type. */
const kern_kv_ops *kern_kv_best(uint32_t type);
/* The portable ones (per-head calls of kern_best's dot_f32 / axpy): what tests compare with. */
const kern_kv_ops *kern_kv_portable(uint32_t type);
extern const kern_kv_ops kern_kv_avx2[GGUF_TYPE_COUNT];

/* ---- tiled attention for prompt runs (attn_tile_avx2.c) ------------------------------ */

/*
 * A tile is nq query tokens of one sequence times the ng query heads that share one KV head.  Token
 * t (at cache position pos[t]) and head i:
 *   out(t, i) = sum_{j <= pos[t]} softmax_j(scale * q(t, i) . k_j) v_j
 * with q(t, i) = q + t * q_stride + i * d and out(t, i) = out + t * out_stride + i * d (d floats
 * each), and cached K / V row j at k + j * row_bytes / v + j * row_bytes (d values of the cache
 * type).  The cached rows are taken in blocks; each block is converted to floats once and serves
 * every query of the tile (S = Q K^T and O += P V as small matrix products, no horizontal sums),
 * and the softmax is online: a running maximum and sum per query, earlier partial outputs rescaled
 * when the maximum grows.  A query's result depends only on its own q and pos, not on which other
 * queries share the tile.  It equals the per-token path (kern_kv_ops + kern_softmax) within float
 * rounding.  scratch: kern_attn_tile_scratch(d, nq * ng) bytes, 32-byte aligned, per thread.
 */
#define KERN_ATTN_TILE_ROWS 48 /* query rows (nq * ng) a caller should aim for */
typedef struct kern_attn_tile {
    int64_t d;            /* head size, a multiple of 8 */
    int nq, ng;           /* query tokens, query heads of the group */
    const int64_t *pos;   /* (nq) each token's last visible position */
    const float *q;       /* query token t, head i at q + t * q_stride + i * d */
    int64_t q_stride;
    const uint8_t *k, *v; /* cached row j at k + j * row_bytes (and v + j * row_bytes) */
    uint64_t row_bytes;
    float scale;          /* 1 / sqrt(d) */
    float *out;           /* token t, head i at out + t * out_stride + i * d; overwritten */
    int64_t out_stride;
} kern_attn_tile;
typedef void (*kern_attn_tile_fn)(const kern_attn_tile *a, void *scratch);
/* Scratch bytes per thread for a tile of `rows` query rows; 0 where there is no tiled kernel. */
uint64_t kern_attn_tile_scratch(int64_t d, int64_t rows);
/* The tiled kernel for a KV cache type and head size on this CPU; NULL where there is none (no
 * AVX2, d not a multiple of 8, not a KV type): then the caller runs the per-token path. */
kern_attn_tile_fn kern_attn_tile_best(uint32_t type, int64_t d);
extern const kern_attn_tile_fn kern_attn_tile_avx2[GGUF_TYPE_COUNT]; /* x86-64 builds only */
uint64_t kern_attn_tile_scratch_avx2(int64_t d, int64_t rows);

/* ---- float vector ops (ops.c) ------------------------------------------------------ */

/* out = x / sqrt(mean(x^2) + eps) * w  (RMSNorm); out may alias x. */
void kern_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
/* In-place softmax over n values stride floats apart (attention keeps a GQA group's scores
 * position-major, so one head's are a stride apart). */
void kern_softmax(float *x, int64_t n, int64_t stride);
/* a[i] = silu(a[i]) * b[i], silu(v) = v / (1 + exp(-v)) (the SwiGLU gate); the AVX2 version
 * (ops_avx2.c, a vector exp within ~2 ulp) when the active ISA has it. */
void kern_swiglu(float *a, const float *b, int64_t n);
void kern_swiglu_avx2(float *a, const float *b, int64_t n); /* x86-64 builds only */
/* y[i] += x[i] */
void kern_add(float *y, const float *x, int64_t n);

/* ---- machine limits (membw.c) -------------------------------------------------------- */

/* Read bandwidth in GB/s (1e9 bytes/s) streaming `bytes` with every pool thread, best of
 * `passes`; 0 if the buffer cannot be allocated. */
double kern_measure_bandwidth(kern_pool *pool, uint64_t bytes, int passes);

#endif
