/*
 * convert.h - Hugging Face checkpoint directory -> GGUF, the way the ecosystem's converter does it.
 *
 * Input: config.json, tokenizer.json, tokenizer_config.json (optional), and *.safetensors (one file
 * or shards listed by model.safetensors.index.json), tensors in F32, F16 or BF16, for the
 * architectures Qwen2ForCausalLM and LlamaForCausalLM (the DeepSeek-R1 distills).
 * Output: a GGUF with llama.cpp's tensor names and metadata keys (general.*, <arch>.*,
 * tokenizer.* via tok_convert_hf), Q/K rows permuted for llama (interleaved RoPE), rope_freqs.weight
 * for Llama-3.1-style rope_scaling, norms and biases in F32, matrices in out_type.
 */
#ifndef SEEK_STORE_CONVERT_H
#define SEEK_STORE_CONVERT_H

#include <stdbool.h>

#include "../base/base.h"

typedef struct store_convert_opts {
    const char *out_type; /* "F32", "F16", "BF16", or NULL/"auto": BF16 if the checkpoint is BF16, else F16 */
    bool vocab_only;      /* only the tokenizer metadata (and general.architecture), no tensors */
    int n_threads;        /* <= 0: all cores */
} store_convert_opts;

/* Writes out_path atomically (temp file + rename).  Returns 0, or -1 with err naming the file and
 * what is wrong (unsupported architecture, missing tensor, shape mismatch, bad dtype, ...). */
int store_convert_hf(const char *dir, const char *out_path, const store_convert_opts *opts, seek_err *err);

#endif
