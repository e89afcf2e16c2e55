/*
 * model.h - a transformer model loaded from GGUF, and the forward pass over it.
 *
 * Supported `general.architecture` values are the two the DeepSeek-R1 distills use:
 *   qwen2 - Q/K/V projections with biases, NEOX-style RoPE (dimension i pairs with i + n_rot/2);
 *   llama - no biases, interleaved RoPE (2i pairs with 2i+1, because the converter permuted the
 *           Q/K rows), optional rope_freqs.weight dividing each frequency (Llama 3.1 scaling).
 * Both: RMSNorm, grouped-query attention, SwiGLU feed-forward, tied or untied output matrix.
 *
 * Dimension letters used in comments: D = n_embd, H = n_head, Hkv = n_head_kv, d = head_dim,
 * F = n_ff, V = n_vocab, T = tokens in a batch, C = context length of the KV cache.
 *
 * Ownership: a model owns its gguf_file (the mmap); every kern_mat points into it.  A model_ctx
 * (KV cache for one or several sequences + scratch + thread pool) borrows the model, which must
 * outlive it.  A model may have many contexts; one context is used by one thread at a time.
 */
#ifndef SEEK_MODEL_H
#define SEEK_MODEL_H

#include "../base/base.h"
#include "../gguf/gguf.h"
#include "../kern/kern.h"

enum model_arch { MODEL_ARCH_QWEN2, MODEL_ARCH_LLAMA };

typedef struct model_hparams {
    enum model_arch arch;
    char arch_name[32];
    int64_t n_vocab;     /* V, rows of token_embd */
    int64_t n_ctx_train; /* context length the model was trained for */
    int64_t n_embd;      /* D */
    int64_t n_layer;
    int64_t n_head;      /* H */
    int64_t n_head_kv;   /* Hkv; H is a multiple of it (GQA) */
    int64_t head_dim;    /* d */
    int64_t n_rot;       /* dimensions of each head that RoPE rotates (<= d, even) */
    int64_t n_ff;        /* F */
    float rope_base;     /* theta */
    float rms_eps;
    bool neox_rope;      /* qwen2: pairs (i, i + n_rot/2); llama: pairs (2i, 2i+1) */
} model_hparams;

typedef struct model_layer {
    const float *attn_norm; /* (D) */
    kern_mat wq;            /* (D -> H*d): m = H*d rows of k = D */
    kern_mat wk;            /* (D -> Hkv*d) */
    kern_mat wv;            /* (D -> Hkv*d) */
    kern_mat wo;            /* (H*d -> D) */
    const float *bq;        /* (H*d) or NULL */
    const float *bk;        /* (Hkv*d) or NULL */
    const float *bv;        /* (Hkv*d) or NULL */
    const float *ffn_norm;  /* (D) */
    kern_mat w_gate;        /* (D -> F) */
    kern_mat w_up;          /* (D -> F) */
    kern_mat w_down;        /* (F -> D) */
} model_layer;

typedef struct model {
    gguf_file *file;
    model_hparams hp;
    kern_mat tok_embd;         /* (V rows of D) */
    kern_mat output;           /* (D -> V); equals tok_embd when tied */
    bool tied_output;
    const float *output_norm;  /* (D) */
    const float *rope_freqs;   /* (n_rot/2) frequency divisors, or NULL */
    model_layer *layers;       /* n_layer */
    uint64_t weight_bytes;     /* bytes of all tensors in the file */
    float *owned;              /* float copies of small tensors stored in other types */
} model;

/* Maps and validates a GGUF model; every tensor the forward pass needs must exist with the
 * right shape and a type seek can compute with.  NULL with err filled otherwise. */
model *model_open(const char *path, seek_err *err);
void model_close(model *m);

/* Evaluation state: a KV cache for n_seq sequences of n_ctx positions each, scratch for
 * passes of up to n_batch tokens, and a pool of n_threads threads. */
typedef struct model_ctx model_ctx;

#define MODEL_MAX_SEQ 256

/* A context for one sequence (model_ctx_new_multi with n_seq = 1). */
model_ctx *model_ctx_new(const model *m, int64_t n_ctx, int64_t n_batch, int n_threads, seek_err *err);
/* A context for n_seq (1..MODEL_MAX_SEQ) sequences, each with its own region of n_ctx positions
 * in the cache (n_ctx per sequence, not shared).  n_batch is clamped to 1..n_ctx*n_seq.  Memory:
 * model_ctx_estimate_bytes.  NULL with err (SEEK_EINVAL bad sizes, SEEK_ENOMEM). */
model_ctx *model_ctx_new_multi(const model *m, int64_t n_ctx, int n_seq, int64_t n_batch, int n_threads,
                               seek_err *err);
void model_ctx_free(model_ctx *c);
/* Bytes of KV cache and scratch the context allocated. */
uint64_t model_ctx_kv_bytes(const model_ctx *c);
uint64_t model_ctx_scratch_bytes(const model_ctx *c);
int64_t model_ctx_n_ctx(const model_ctx *c); /* positions per sequence */
int model_ctx_n_seq(const model_ctx *c);
int64_t model_ctx_n_batch(const model_ctx *c);
/*
 * The KV cache's element type (a GGUF type id): $SEEK_KV_CACHE_TYPE = f16 (the default), q8_0
 * (34 bytes per 32 values, about half of f16; needs head_dim to be a multiple of 32, else f16 is
 * used) or f32.  An unknown value is warned about once and f16 used.  Read once per process.
 */
uint32_t model_kv_type(int64_t head_dim);
/* Bytes of one position's K (or V) vector of n elements in type: n / block x block bytes. */
uint64_t model_kv_row_bytes(uint32_t type, int64_t n);
uint32_t model_ctx_kv_type(const model_ctx *c);

/* Bytes model_ctx_new_multi would allocate (KV cache + scratch) with these arguments:
 *   KV      = 2 (K and V) x n_layer x n_seq x n_ctx x model_kv_row_bytes(model_kv_type, Hkv*d)
 *   scratch = n_batch x (2D + 2 H*d + 2 Hkv*d + 2F + n_rot) x 4 + n_batch x 13 (positions, ...)
 *           + n_threads x (H/Hkv) x n_ctx x 4 (a GQA group's attention scores)
 *           + quantized activations of n_batch rows
 * 0 for sizes out of range. */
uint64_t model_ctx_estimate_bytes(const model *m, int64_t n_ctx, int n_seq, int64_t n_batch, int n_threads);

/* Phase timing (`seek bench --profile`): with profiling on, each forward pass adds the wall time
 * of its phases (all layers together; a phase's time includes the thread hand-offs inside it)
 * and the weight bytes its matmuls read.  Enabling resets the counters.  model_ctx_profile copies
 * them out and returns the tokens evaluated since. */
enum {
    MODEL_PROF_EMBD, MODEL_PROF_NORM, MODEL_PROF_QKV, MODEL_PROF_ROPE, MODEL_PROF_ATTN, MODEL_PROF_WO,
    MODEL_PROF_GATE_UP, MODEL_PROF_SWIGLU, MODEL_PROF_DOWN, MODEL_PROF_RESID, MODEL_PROF_LOGITS, MODEL_PROF_COUNT
};
void model_ctx_profile_enable(model_ctx *c, bool on);
uint64_t model_ctx_profile(const model_ctx *c, uint64_t ns[MODEL_PROF_COUNT], uint64_t bytes[MODEL_PROF_COUNT]);
const char *model_prof_name(int phase);

/*
 * Runs tokens[0..n) of sequence 0 at positions pos..pos+n-1 (the KV cache must hold positions
 * 0..pos-1 from earlier calls), in batches of at most n_batch.  Writes logits: if all_logits, n
 * rows of V floats; otherwise one row (the last token's).  Token ids are validated against V.
 */
int model_eval(model_ctx *c, const int32_t *tokens, int64_t n, int64_t pos, float *logits,
               bool all_logits, seek_err *err);

/*
 * One forward pass over tokens of several sequences: token i is at position pos[i] of sequence
 * seq[i].  Each sequence's cache must hold positions 0..pos[i]-1 from earlier calls or from
 * earlier tokens of the same call (tokens of one sequence go in position order; all of a pass's
 * K/V are stored before it attends).  The weight matrices are read once per pass of up to
 * n_batch tokens, whatever the mix of sequences; each row's arithmetic does not depend on the
 * other rows, so the logits equal model_eval's for the same sequence bit for bit.
 * logits (may be NULL: only the caches are filled): one row of V floats for each token with
 * want_logits[i], packed in token order (want_logits NULL: every token, n rows).  Token ids,
 * sequences (0..n_seq-1) and positions (0..n_ctx-1) are validated: SEEK_EINVAL.
 */
int model_eval_batch(model_ctx *c, const int32_t *tokens, const int32_t *pos, const int32_t *seq, int64_t n,
                     float *logits, const bool *want_logits, seek_err *err);

/* The same pass writing, instead of logits, each token's final hidden state after the output
 * norm (RMSNorm(x) * output_norm, the output matrix's input): n rows of D floats into embd.  The
 * caches are filled as by model_eval_batch. */
int model_eval_embd(model_ctx *c, const int32_t *tokens, const int32_t *pos, const int32_t *seq, int64_t n,
                    float *embd, seek_err *err);

#endif
