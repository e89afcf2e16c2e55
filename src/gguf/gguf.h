/*
 * gguf.h - reading and writing GGUF files (versions 2 and 3).
 *
 * The file format, as this module understands it (all integers little-endian):
 *
 *   header:   magic "GGUF" (u32 0x46554747), version u32 (2 or 3),
 *             n_tensors u64, n_kv u64
 *   n_kv key/value pairs:
 *             key   = gguf string (u64 length, then that many bytes, no NUL)
 *             vtype = u32 (enum gguf_vtype)
 *             value = scalar of that type, a gguf string, or an array:
 *                     elem vtype u32, count u64, then count elements (arrays of
 *                     strings are allowed, arrays of arrays are not supported)
 *   n_tensors tensor infos:
 *             name   = gguf string
 *             n_dims = u32 (1..4)
 *             ne     = n_dims x u64 element counts, ne[0] is the contiguous (row) dimension
 *             type   = u32 (enum gguf_type)
 *             offset = u64, relative to the start of the data section, a multiple of the alignment
 *   padding to `general.alignment` (u32 key, default 32, must be a power of two)
 *   data section: tensor bytes.
 *
 * Version 1 used u32 counts and is not supported.
 *
 * The reader treats the file as hostile: it validates every length, count, offset, type id and
 * dimension (overflow, alignment, offset + nbytes <= file size, duplicate keys and tensor names,
 * row length divisible by the block size, string lengths inside the file) before anyone sees the
 * data.  A bad file gives a clear error naming the problem.
 *
 * Ownership: a gguf_file owns its mapping.  Every pointer it hands out (strings, array data,
 * tensor data) points into the mapping and stays valid until gguf_close().  Strings are NOT
 * NUL-terminated: use gguf_str's length.
 */
#ifndef SEEK_GGUF_H
#define SEEK_GGUF_H

#include "../base/base.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

/* Value types of metadata. */
enum gguf_vtype {
    GGUF_VT_UINT8 = 0,
    GGUF_VT_INT8 = 1,
    GGUF_VT_UINT16 = 2,
    GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4,
    GGUF_VT_INT32 = 5,
    GGUF_VT_FLOAT32 = 6,
    GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8,
    GGUF_VT_ARRAY = 9,
    GGUF_VT_UINT64 = 10,
    GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
    GGUF_VT_COUNT
};

/* Tensor element types: the ggml type ids, as stored in files. */
enum gguf_type {
    GGUF_TYPE_F32 = 0,
    GGUF_TYPE_F16 = 1,
    GGUF_TYPE_Q4_0 = 2,
    GGUF_TYPE_Q4_1 = 3,
    GGUF_TYPE_Q5_0 = 6,
    GGUF_TYPE_Q5_1 = 7,
    GGUF_TYPE_Q8_0 = 8,
    GGUF_TYPE_Q8_1 = 9,
    GGUF_TYPE_Q2_K = 10,
    GGUF_TYPE_Q3_K = 11,
    GGUF_TYPE_Q4_K = 12,
    GGUF_TYPE_Q5_K = 13,
    GGUF_TYPE_Q6_K = 14,
    GGUF_TYPE_Q8_K = 15,
    GGUF_TYPE_IQ2_XXS = 16,
    GGUF_TYPE_IQ2_XS = 17,
    GGUF_TYPE_IQ3_XXS = 18,
    GGUF_TYPE_IQ1_S = 19,
    GGUF_TYPE_IQ4_NL = 20,
    GGUF_TYPE_IQ3_S = 21,
    GGUF_TYPE_IQ2_S = 22,
    GGUF_TYPE_IQ4_XS = 23,
    GGUF_TYPE_I8 = 24,
    GGUF_TYPE_I16 = 25,
    GGUF_TYPE_I32 = 26,
    GGUF_TYPE_I64 = 27,
    GGUF_TYPE_F64 = 28,
    GGUF_TYPE_IQ1_M = 29,
    GGUF_TYPE_BF16 = 30,
    GGUF_TYPE_COUNT = 40 /* upper bound for tables indexed by type */
};

/* Block geometry of a tensor type: elements per block and bytes per block.
 * Returns false for ids that are unknown (or whose layout this build does not know). */
bool gguf_type_geometry(uint32_t type, uint32_t *blck_elems, uint32_t *blck_bytes);
/* Short name ("Q4_K", "F16"); "unknown" for unknown ids. */
const char *gguf_type_name(uint32_t type);
/* Parses a name back to an id (case-insensitive); -1 if unknown. */
int gguf_type_from_name(const char *name);
/* Bytes of a row of n elements of type (n must be a multiple of the block size); 0 if not. */
uint64_t gguf_row_bytes(uint32_t type, uint64_t n);

typedef struct gguf_str {
    const char *ptr; /* into the mapping (or the caller's memory for the writer); not NUL-terminated */
    uint64_t len;
} gguf_str;

/* True if s equals the NUL-terminated c string. */
bool gguf_str_eq(gguf_str s, const char *c);
/* Copies s into buf as a NUL-terminated string, truncating to cap-1 bytes. Returns buf. */
char *gguf_str_copy(gguf_str s, char *buf, size_t cap);

typedef struct gguf_kv {
    gguf_str key;
    uint32_t vtype;      /* enum gguf_vtype */
    uint32_t arr_type;   /* element type if vtype == GGUF_VT_ARRAY */
    uint64_t arr_n;      /* element count if vtype == GGUF_VT_ARRAY */
    const uint8_t *data; /* the raw value bytes in the mapping (for arrays: the first element;
                          * for a STRING: its u64 length, then the bytes -- use gguf_get_str) */
    uint64_t nbytes;     /* size of the raw value bytes */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint32_t type;              /* enum gguf_type */
    int64_t ne[GGUF_MAX_DIMS];  /* element counts, unused dims are 1 */
    uint64_t nb[GGUF_MAX_DIMS]; /* byte strides: nb[0] = block bytes, nb[1] = row bytes, ... */
    uint64_t offset;            /* absolute offset of the data in the file */
    uint64_t nbytes;            /* total bytes of the tensor */
    const void *data;           /* into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Maps and validates path.  NULL with err filled on any problem. */
gguf_file *gguf_open(const char *path, seek_err *err);
/* Validates a GGUF image already in memory (the caller keeps buf alive and owns it);
 * used by tests and the fuzzer.  gguf_close() does not free buf. */
gguf_file *gguf_open_mem(const void *buf, size_t len, seek_err *err);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
uint64_t gguf_file_size(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* start of the data section */

/* Metadata access.  Index-based iteration plus typed getters by key. */
uint64_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key); /* NULL if absent */

/* Typed getters: return 0 on success; -1 if the key is absent or of an incompatible type
 * (err says which).  Integer getters accept any integer vtype whose value fits the output;
 * gguf_get_f32 accepts FLOAT32, FLOAT64 and integers. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, seek_err *err);
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, seek_err *err);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, seek_err *err);
int gguf_get_f32(const gguf_file *f, const char *key, float *out, seek_err *err);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, seek_err *err);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, seek_err *err);

/* Array element access (bounds checked: returns -1 when i >= n or the type mismatches).
 * Numeric arrays are stored packed, so kv->data can also be used directly after checking
 * kv->arr_type.  String arrays are variable length: gguf_arr_str walks them through an index
 * the reader builds on open, so access is O(1); kv must be a record f handed out (gguf_kv_at,
 * gguf_find_kv), not a copy. */
int gguf_arr_str(const gguf_file *f, const gguf_kv *kv, uint64_t i, gguf_str *out);
int gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out);  /* any integer elem type */
int gguf_arr_f32(const gguf_kv *kv, uint64_t i, float *out);   /* FLOAT32/FLOAT64/ints */

/* Tensors. */
uint64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */

/* ---- writer ------------------------------------------------------------------------ */

/*
 * Builds a GGUF v3 file.  Keys and tensors are written in the order they were added.
 * Values are copied into the writer; tensor data is NOT copied: the caller keeps each data
 * pointer alive until gguf_writer_write() returns (or passes a callback that produces it).
 * The file is written atomically (temp file + fsync + rename).
 */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);

/* Setting a key that already exists replaces its value. Return 0, or -1 on allocation failure. */
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Numeric array of n elements of vtype elem_type, packed little-endian in data. */
int gguf_writer_set_arr(gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n);
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copies one key/value (any type, including string arrays) from an open file. */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, const gguf_kv *kv);
int gguf_writer_remove(gguf_writer *w, const char *key);

/* Adds a tensor whose bytes are at data (nbytes must equal what type and ne imply). */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t nbytes, seek_err *err);

/* Adds a tensor whose bytes are produced at write time by fill(ctx, dst) into a buffer of
 * nbytes; lets the quantizer stream large models without holding them all in memory. */
typedef int (*gguf_fill_fn)(void *ctx, void *dst, uint64_t nbytes, seek_err *err);
int gguf_writer_add_tensor_fn(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                              const int64_t *ne, uint64_t nbytes, gguf_fill_fn fill, void *ctx,
                              seek_err *err);

int gguf_writer_write(gguf_writer *w, const char *path, seek_err *err);

#endif
