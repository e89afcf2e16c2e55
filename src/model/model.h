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
 * (one sequence: KV cache + scratch + thread pool) borrows the model, which must outlive it.
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

/* One sequence's state: KV cache for n_ctx positions, scratch for batches of up to n_batch
 * tokens, and a pool of n_threads threads. */
typedef struct model_ctx model_ctx;

model_ctx *model_ctx_new(const model *m, int64_t n_ctx, int64_t n_batch, int n_threads, seek_err *err);
void model_ctx_free(model_ctx *c);
/* Bytes of KV cache and scratch the context allocated. */
uint64_t model_ctx_kv_bytes(const model_ctx *c);
uint64_t model_ctx_scratch_bytes(const model_ctx *c);
int64_t model_ctx_n_ctx(const model_ctx *c);

/*
 * Runs tokens[0..n) at positions pos..pos+n-1 (the KV cache must hold positions 0..pos-1 from
 * earlier calls), in batches of at most n_batch.  Writes logits: if all_logits, n rows of V
 * floats; otherwise one row (the last token's).  Token ids are validated against V.
 */
int model_eval(model_ctx *c, const int32_t *tokens, int64_t n, int64_t pos, float *logits,
               bool all_logits, seek_err *err);

#endif
