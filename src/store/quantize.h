/*
 * quantize.h - converting a float GGUF model (F32, F16 or BF16 weights) into a quantized one,
 * choosing each tensor's type the way llama.cpp's llama-quantize does, so a "Q4_K_M" made by
 * seek has the same per-tensor types and the same size as the Q4_K_M files users download.
 *
 * What it is: the mix table (Q4_K_M, Q6_K, ...), the per-tensor type rule, and a streaming
 * converter: the input is mmapped, each output tensor is produced while the file is written
 * (rows quantized in parallel by n_threads pthreads), so memory use is one tensor, not a model.
 * What it is not: a requantizer (inputs that are already quantized are refused, as llama.cpp
 * does without --allow-requantize), nor an importance-matrix (imatrix) quantizer, nor IQ types.
 *
 * The per-tensor rule, from llama.cpp's llama_tensor_get_type (src/llama-quant.cpp):
 *   - Only tensors with 2+ dimensions whose name ends in "weight" and is not a norm
 *     ("_norm.weight") or an expert router ("ffn_gate_inp.weight") are quantized.  Everything
 *     else (norms, biases, rope_freqs) is written as F32.
 *   - Each mix has a base type (Q4_K for Q4_K_M); tensors get the base type unless a rule says
 *     otherwise.  The rules only apply when the base type is quantized (not F32/F16/BF16) and
 *     the mix is not "pure".
 *   - output.weight (and token_embd.weight when there is no output.weight, i.e. tied
 *     embeddings) -> Q6_K, except Q8_0 stays Q8_0, and Q8_0 when ne0 is not a multiple of the
 *     base type's block size (or the architecture is falcon).
 *   - "use more bits" layers: i < n/8, i >= 7n/8, or (i - n/8) % 3 == 2 (integer division).
 *     For 28 layers that is layers 0,1,2, 5,8,11,14,17,20,23, 24,25,26,27.
 *   - attn_v.weight (also attn_qkv / attn_kv_b):
 *       Q2_K: Q4_K if n_head/n_head_kv >= 4 else Q3_K;   Q3_K_M: Q5_K for layers 0,1 else Q4_K;
 *       Q3_K_L: Q5_K;   Q4_K_M, Q5_K_M: Q6_K on use-more-bits layers;   Q4_K_S: Q5_K for
 *       layers 0..3;   then 70B-class models (80 layers, GQA) bump Q3_K/Q4_K to Q5_K, and
 *       8-expert models use Q8_0.
 *   - ffn_down.weight: Q2_K: Q3_K;   Q3_K_M: Q5_K for i < n/16 else Q4_K;   Q3_K_L: Q5_K;
 *       Q4_K_M, Q5_K_M: Q6_K on use-more-bits layers;   Q4_K_S: Q5_K for i < n/8.
 *   - attn_output.weight: Q2_K: Q3_K;  Q3_K_M: Q4_K;  Q3_K_L: Q5_K (8-expert models: Q5_K).
 *   - attn_qkv.weight (fused): Q3_K_M/Q3_K_L: Q4_K;  Q4_K_M: Q5_K;  Q5_K_M: Q6_K.
 *   - Shape fallback (also for pure mixes): when ne0 is not a multiple of the chosen type's
 *     block (256 for K types), current llama.cpp falls back Q2_K/Q3_K -> Q4_0 (older builds
 *     used IQ4_NL, which seek does not support), Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and
 *     to F16 if even that block (32) does not divide ne0.  A 32-block type that does not fit
 *     is an error, as in llama.cpp.
 * The layer index of a tensor is the N of "blk.N."; llama.cpp counts attn_v/ffn_down tensors
 * in the order it visits them, which is sorted by layer, so the two agree.
 *
 * Ownership: nothing returned here needs freeing; names are static strings.
 */
#ifndef SEEK_STORE_QUANTIZE_H
#define SEEK_STORE_QUANTIZE_H

#include "../base/base.h"
#include "../gguf/gguf.h"

/* A named quantization mix, as the user types it. */
typedef struct store_mix {
    const char *name;   /* "Q4_K_M" */
    uint32_t file_type; /* llama.cpp LLAMA_FTYPE_* number written to general.file_type */
    uint32_t base_type; /* enum gguf_type most tensors get */
    bool pure;          /* every quantizable tensor gets base_type (no per-tensor rules) */
} store_mix;

/* The mix called name (case-insensitive), or NULL.  Names: Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K
 * Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K F16 BF16 F32, and the pure single-type
 * mixes Q3_K Q4_K Q5_K Q2_K_PURE ("Q2_K" alone means llama.cpp's Q2_K mix).  A pure mix writes
 * the file_type of the matching "mostly" ftype (Q4_K -> 14, Q4_K_S). */
const store_mix *store_mix_find(const char *name);
/* The i-th mix of the table (for usage messages); NULL past the end. */
const store_mix *store_mix_at(int i);

/* What the type rule needs to know about the model (from its metadata and tensor list). */
typedef struct store_qmodel {
    char arch[32];    /* general.architecture ("qwen2", "llama", ...) */
    int n_layer;      /* {arch}.block_count */
    int n_head;       /* {arch}.attention.head_count */
    int n_head_kv;    /* {arch}.attention.head_count_kv (= n_head when absent) */
    int n_expert;     /* {arch}.expert_count (0 when absent) */
    bool has_output;  /* the file has output.weight (false: tied embeddings) */
} store_qmodel;

/* Fills m from an open file.  -1 with err if block_count or the head counts are missing. */
int store_qmodel_from_file(const gguf_file *f, store_qmodel *m, seek_err *err);

/* The N of a "blk.N." tensor name; -1 for tensors outside the blocks. */
int store_tensor_layer(const char *name);

/* True if llama.cpp would quantize this tensor at all (see the rule above). */
bool store_tensor_quantizable(const char *name, uint32_t n_dims);

/* The type tensor `name` (n_dims dims, element counts ne, block i_layer of m->n_layer, -1 if
 * not in a block) gets in `mix`.  Returns an enum gguf_type, or -1 with err when no type fits
 * the shape.  If fell_back is not NULL it is set to whether the shape fallback changed the
 * type.  Tensors that are not quantizable get GGUF_TYPE_F32. */
int store_tensor_type(const store_qmodel *m, const store_mix *mix, const char *name,
                      uint32_t n_dims, const int64_t *ne, int i_layer, bool *fell_back,
                      seek_err *err);

/* The mix name for a general.file_type value ("Q4_K_M" for 15, "F16" for 1, ...), including
 * llama.cpp ftypes seek cannot produce (IQ*); NULL for unknown values. */
const char *store_ftype_name(uint32_t file_type);

/* ---- the converter ---------------------------------------------------------------------- */

typedef struct store_quantize_opts {
    int n_threads; /* <= 0: number of online CPUs */
    bool verbose;  /* one progress line per tensor on stderr */
    bool quiet;    /* no summary line */
} store_quantize_opts;

typedef struct store_quantize_stats {
    uint64_t in_bytes, out_bytes; /* file sizes */
    uint64_t n_tensors, n_quantized, n_fallback;
    double seconds;
} store_quantize_stats;

/* Converts in_path into out_path (written atomically) with the mix type_name.  Copies every
 * metadata key, sets general.file_type and general.quantization_version = 2, writes tensors in
 * llama.cpp's order (non-block tensors by name, then blocks by layer, then by name).  Prints a
 * summary line ("in MB -> out MB") to stderr unless opts->quiet.  stats may be NULL. */
int store_quantize_ex(const char *in_path, const char *out_path, const char *type_name,
                      const store_quantize_opts *opts, store_quantize_stats *stats, seek_err *err);

/* store_quantize_ex with n_threads, progress lines when log_verbosity >= 1, and the summary. */
int store_quantize(const char *in_path, const char *out_path, const char *type_name, int n_threads,
                   seek_err *err);

#endif
