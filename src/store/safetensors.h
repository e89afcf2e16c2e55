/*
 * safetensors.h - reading Hugging Face safetensors checkpoints: one file, or a directory of
 * shards.
 *
 * The file format (all integers little-endian):
 *   u64 N                      length of the header
 *   N bytes of JSON            { "NAME": { "dtype": "BF16", "shape": [rows, cols],
 *                                          "data_offsets": [begin, end] }, ...,
 *                                "__metadata__": { "format": "pt", ... } }   (optional)
 *   the data section           tensor bytes; begin/end are relative to its start (byte 8 + N)
 * Shapes are in C order: shape[0] is the outermost dimension, the last one is contiguous, so a
 * matrix of `rows` x `cols` has GGUF ne = { cols, rows } (the reverse).
 *
 * A sharded checkpoint names each tensor's file in model.safetensors.index.json
 * ({"weight_map": {"NAME": "model-00001-of-00004.safetensors", ...}}); without an index every
 * *.safetensors file of the directory is read.
 *
 * Every file is treated as hostile: the header length must fit the file, the JSON must parse,
 * every entry must have a known dtype, non-negative dimensions, data_offsets inside the data
 * section whose span equals shape product x dtype size (no overflow), and no two tensors may
 * overlap or share a name (also across shards).  A bad file gives an error naming the file and
 * the tensor.  Tensors of dtypes other than F32/F16/BF16 (I64, F64, ...) are listed with
 * type = STORE_ST_UNSUPPORTED: whether that is an error is up to the caller (a converter may
 * skip tensors it does not use).
 *
 * Ownership: a store_st owns its mappings and every string and tensor record it hands out;
 * all stay valid until store_st_close().  Data pointers point into read-only mappings and need
 * not be aligned (read elements with memcpy).
 */
#ifndef SEEK_STORE_SAFETENSORS_H
#define SEEK_STORE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../base/base.h"

#define STORE_ST_MAX_DIMS 8
#define STORE_ST_UNSUPPORTED UINT32_MAX /* type of tensors whose dtype is not F32/F16/BF16 */

typedef struct store_st_tensor {
    const char *name;              /* NUL-terminated */
    const char *dtype;             /* as the file spells it: "F32", "BF16", "I64", ... */
    const char *file;              /* base name of the file holding it */
    uint32_t type;                 /* GGUF_TYPE_F32 / F16 / BF16, or STORE_ST_UNSUPPORTED */
    uint32_t n_dims;               /* 0 (a scalar) .. STORE_ST_MAX_DIMS */
    int64_t shape[STORE_ST_MAX_DIMS]; /* C order: shape[n_dims-1] is contiguous */
    uint64_t n_elems;
    uint64_t nbytes;
    const void *data;              /* into the mapping, possibly unaligned */
    size_t index;                  /* position in store_st_tensor_at() order */
} store_st_tensor;

typedef struct store_st store_st;

/* Maps and validates one .safetensors file.  NULL with err set on any problem. */
store_st *store_st_open_file(const char *path, seek_err *err);
/* Maps and validates the checkpoint in dir (index file, else every *.safetensors).  Also checks
 * that every tensor the index names is in the file it names.  NULL with err set. */
store_st *store_st_open_dir(const char *dir, seek_err *err);
void store_st_close(store_st *s);

size_t store_st_n_tensors(const store_st *s);
/* Tensors sorted by name. */
const store_st_tensor *store_st_tensor_at(const store_st *s, size_t i);
/* NULL if absent. */
const store_st_tensor *store_st_find(const store_st *s, const char *name);

/* Drops t's pages from this process's resident memory (they are re-read from the file if
 * touched again); keeps a streaming conversion at about one tensor of resident input. */
void store_st_release(const store_st_tensor *t);

#endif
