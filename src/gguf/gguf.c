/*
 * gguf.c - the GGUF reader (versions 2 and 3) and the tensor type geometry table.
 *
 * What it is: a validating parser over a read-only image of the whole file (an mmap from
 * gguf_open, or the caller's buffer from gguf_open_mem).  Everything the rest of seek sees
 * (keys, values, tensor shapes, tensor data pointers) has been checked here first, so later
 * code may trust it: every string lies inside the file, every tensor's bytes lie inside the
 * data section and do not overlap another tensor's.
 * What it is not: a dequantizer (that is kern/) or a model loader (that is model/); and it does
 * not read v1 files (u32 counts), which nobody has produced since 2023.
 *
 * The file is hostile.  Every count is checked against what the remaining bytes could hold
 * before anything is allocated, so memory use is bounded by a small multiple of the file size:
 *   - a key/value pair needs at least 13 bytes (u64 key length, u32 vtype, 1 value byte),
 *   - a tensor info needs at least 32 bytes (u64 name length, u32 n_dims, one u64 ne,
 *     u32 type, u64 offset),
 *   - a string array element needs at least 8 bytes (its u64 length).
 *
 * Layout of the data section (alignment A = general.alignment, default 32):
 *   data_offset = round_up(end of tensor infos, A)
 *   tensor bytes at data_offset + offset, offset % A == 0
 *   nbytes = (ne[0] / blck_elems) * blck_bytes * ne[1] * ne[2] * ne[3]
 *
 * Internals: keys and tensor names are found through sorted indexes (binary search; also how
 * duplicates are found); every string array gets an index of the file offsets of its elements,
 * built while validating it, so gguf_arr_str is O(1).
 *
 * Byte order: GGUF is little-endian and seek only runs on little-endian hosts (x86-64, arm64);
 * numeric array data is handed out as raw pointers into the file, so this is asserted below.
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "seek's GGUF code assumes a little-endian host");

/* ---- tensor type geometry ---------------------------------------------------------- */

/* One row per ggml type id: name, elements per block, bytes per block.  blck_elems == 0 means
 * "we know the name but not (or do not support) the layout": the IQ family, the ternary types
 * and ids that ggml has retired.  Block sizes follow ggml's block_* structs, e.g. Q4_K = d, dmin
 * (2 x f16) + 12 bytes of 6-bit scales + 128 bytes of 4-bit quants = 144 bytes per 256 weights. */
static const struct type_row {
    const char *name;
    uint32_t blck_elems, blck_bytes;
} type_table[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_F32] = { "F32", 1, 4 },
    [GGUF_TYPE_F16] = { "F16", 1, 2 },
    [GGUF_TYPE_Q4_0] = { "Q4_0", 32, 18 },
    [GGUF_TYPE_Q4_1] = { "Q4_1", 32, 20 },
    [4] = { "Q4_2", 0, 0 }, /* removed from ggml in 2023 */
    [5] = { "Q4_3", 0, 0 }, /* removed from ggml in 2023 */
    [GGUF_TYPE_Q5_0] = { "Q5_0", 32, 22 },
    [GGUF_TYPE_Q5_1] = { "Q5_1", 32, 24 },
    [GGUF_TYPE_Q8_0] = { "Q8_0", 32, 34 },
    [GGUF_TYPE_Q8_1] = { "Q8_1", 32, 36 },
    [GGUF_TYPE_Q2_K] = { "Q2_K", 256, 84 },
    [GGUF_TYPE_Q3_K] = { "Q3_K", 256, 110 },
    [GGUF_TYPE_Q4_K] = { "Q4_K", 256, 144 },
    [GGUF_TYPE_Q5_K] = { "Q5_K", 256, 176 },
    [GGUF_TYPE_Q6_K] = { "Q6_K", 256, 210 },
    [GGUF_TYPE_Q8_K] = { "Q8_K", 256, 292 },
    [GGUF_TYPE_IQ2_XXS] = { "IQ2_XXS", 0, 0 },
    [GGUF_TYPE_IQ2_XS] = { "IQ2_XS", 0, 0 },
    [GGUF_TYPE_IQ3_XXS] = { "IQ3_XXS", 0, 0 },
    [GGUF_TYPE_IQ1_S] = { "IQ1_S", 0, 0 },
    [GGUF_TYPE_IQ4_NL] = { "IQ4_NL", 0, 0 },
    [GGUF_TYPE_IQ3_S] = { "IQ3_S", 0, 0 },
    [GGUF_TYPE_IQ2_S] = { "IQ2_S", 0, 0 },
    [GGUF_TYPE_IQ4_XS] = { "IQ4_XS", 0, 0 },
    [GGUF_TYPE_I8] = { "I8", 1, 1 },
    [GGUF_TYPE_I16] = { "I16", 1, 2 },
    [GGUF_TYPE_I32] = { "I32", 1, 4 },
    [GGUF_TYPE_I64] = { "I64", 1, 8 },
    [GGUF_TYPE_F64] = { "F64", 1, 8 },
    [GGUF_TYPE_IQ1_M] = { "IQ1_M", 0, 0 },
    [GGUF_TYPE_BF16] = { "BF16", 1, 2 },
    [34] = { "TQ1_0", 0, 0 },
    [35] = { "TQ2_0", 0, 0 },
    [39] = { "MXFP4", 0, 0 },
};

bool gguf_type_geometry(uint32_t type, uint32_t *blck_elems, uint32_t *blck_bytes) {
    if (type >= GGUF_TYPE_COUNT || type_table[type].blck_elems == 0) return false;
    if (blck_elems) *blck_elems = type_table[type].blck_elems;
    if (blck_bytes) *blck_bytes = type_table[type].blck_bytes;
    return true;
}

const char *gguf_type_name(uint32_t type) {
    if (type >= GGUF_TYPE_COUNT || !type_table[type].name) return "unknown";
    return type_table[type].name;
}

int gguf_type_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < GGUF_TYPE_COUNT; t++)
        if (type_table[t].name && strcasecmp(type_table[t].name, name) == 0) return t;
    return -1;
}

uint64_t gguf_row_bytes(uint32_t type, uint64_t n) {
    uint32_t be, bb;
    uint64_t out;
    if (!gguf_type_geometry(type, &be, &bb) || n % be != 0) return 0;
    if (!size_mul(n / be, bb, &out)) return 0;
    return out;
}

/* ---- strings ----------------------------------------------------------------------- */

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

char *gguf_str_copy(gguf_str s, char *buf, size_t cap) {
    if (cap == 0) return buf;
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    if (n) memcpy(buf, s.ptr, n);
    buf[n] = 0;
    return buf;
}

/* A name from the file, made safe for an error message: at most 64 bytes, control and
 * non-ASCII bytes shown as '?', "..." when cut. */
typedef struct { char s[80]; } safe_name;

static safe_name safe(gguf_str s) {
    safe_name out;
    size_t n = s.len < 64 ? (size_t)s.len : 64, j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        out.s[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s.len > 64) { memcpy(out.s + j, "...", 3); j += 3; }
    out.s[j] = 0;
    return out;
}

/* ---- value types ------------------------------------------------------------------- */

static const char *const vtype_names[GGUF_VT_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

static const char *vtype_name(uint32_t vt) { return vt < GGUF_VT_COUNT ? vtype_names[vt] : "unknown"; }

/* Size in bytes of a fixed-size value type; 0 for string, array and unknown ids. */
static uint32_t vtype_size(uint32_t vt) {
    static const uint8_t sz[GGUF_VT_COUNT] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    return vt < GGUF_VT_COUNT ? sz[vt] : 0;
}

static bool vtype_is_int(uint32_t vt) {
    return vt <= GGUF_VT_INT32 || vt == GGUF_VT_UINT64 || vt == GGUF_VT_INT64;
}

static uint64_t ld_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t ld_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Decodes an integer value of type vt at p as a sign and magnitude pair: *neg says whether it
 * is negative; *u is the value when it is not (else 0); *s is the value as int64 (saturated at
 * INT64_MAX for u64 values above it). */
static void ld_int(uint32_t vt, const uint8_t *p, uint64_t *u, bool *neg, int64_t *s) {
    int64_t sv = 0;
    uint64_t uv = 0;
    bool is_signed = false;
    switch (vt) {
    case GGUF_VT_UINT8: uv = p[0]; break;
    case GGUF_VT_INT8: sv = (int8_t)p[0]; is_signed = true; break;
    case GGUF_VT_UINT16: { uint16_t v; memcpy(&v, p, 2); uv = v; break; }
    case GGUF_VT_INT16: { int16_t v; memcpy(&v, p, 2); sv = v; is_signed = true; break; }
    case GGUF_VT_UINT32: uv = ld_u32(p); break;
    case GGUF_VT_INT32: { int32_t v; memcpy(&v, p, 4); sv = v; is_signed = true; break; }
    case GGUF_VT_UINT64: uv = ld_u64(p); break;
    case GGUF_VT_INT64: { int64_t v; memcpy(&v, p, 8); sv = v; is_signed = true; break; }
    default: break;
    }
    if (is_signed) {
        *neg = sv < 0;
        *s = sv;
        *u = sv < 0 ? 0 : (uint64_t)sv;
    } else {
        *neg = false;
        *u = uv;
        *s = uv > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)uv;
    }
}

/* ---- sorted index over names --------------------------------------------------------- */

/* Names (keys, tensor names) sorted by bytes, then length; lookups are binary searches.  Chosen
 * over a hash table because a hostile file cannot make it slow: building is O(n log n) and a
 * lookup O(log n) compares whatever the names are (an unkeyed hash can be flooded with
 * colliding names).  ~300 tensor lookups per model load are ~3000 short memcmps. */
typedef struct name_ref {
    const char *ptr;
    uint64_t len;
    uint64_t idx; /* position of the item in the file */
} name_ref;

typedef struct name_index {
    name_ref *refs;
    uint64_t n;
} name_index;

static int name_cmp3(const char *a, uint64_t alen, const char *b, uint64_t blen) {
    uint64_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, (size_t)m) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

static int ref_cmp(const void *x, const void *y) {
    const name_ref *a = x, *b = y;
    int c = name_cmp3(a->ptr, a->len, b->ptr, b->len);
    if (c) return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx; /* equal names: file order */
}

/* Sorts refs[0..n) (filled by the caller); on a repeated name (adjacent once sorted, in file
 * order) reports "duplicate <what> 'name' (#first and #second)" and returns false. */
static bool index_sort_unique(name_index *ix, const char *what, seek_err *err) {
    qsort(ix->refs, (size_t)ix->n, sizeof *ix->refs, ref_cmp);
    for (uint64_t i = 1; i < ix->n; i++) {
        const name_ref *x = &ix->refs[i - 1], *y = &ix->refs[i];
        if (name_cmp3(x->ptr, x->len, y->ptr, y->len) == 0) {
            err_set(err, SEEK_EFORMAT, "duplicate %s '%s' (#%llu and #%llu)", what,
                    safe((gguf_str){ x->ptr, x->len }).s, (unsigned long long)x->idx,
                    (unsigned long long)y->idx);
            return false;
        }
    }
    return true;
}

/* Position of the item named p[0..n), or -1. */
static int64_t index_find(const name_index *ix, const char *p, uint64_t n) {
    uint64_t lo = 0, hi = ix->n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = name_cmp3(ix->refs[mid].ptr, ix->refs[mid].len, p, n);
        if (c == 0) return (int64_t)ix->refs[mid].idx;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* ---- the file ---------------------------------------------------------------------- */

struct gguf_file {
    const uint8_t *base; /* the whole image */
    uint64_t size;
    void *map;           /* our mmap (gguf_open), or NULL (gguf_open_mem) */
    size_t map_len;

    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;

    uint64_t n_kv;
    gguf_kv *kvs;
    uint64_t **str_offs; /* [n_kv]: for string arrays, file offset of each element's length */
    name_index kv_ix;

    uint64_t n_tensors;
    gguf_tensor *tensors;
    name_index tensor_ix;
};

/* Cursor over the image. */
typedef struct reader {
    const uint8_t *b;
    uint64_t size, pos;
    seek_err *err;
} reader;

static bool rd_need(reader *r, uint64_t n, const char *what) {
    if (n > r->size - r->pos) {
        err_set(r->err, SEEK_EFORMAT, "truncated file: %s at offset %llu needs %llu bytes, only %llu left",
                what, (unsigned long long)r->pos, (unsigned long long)n, (unsigned long long)(r->size - r->pos));
        return false;
    }
    return true;
}

static bool rd_u32(reader *r, uint32_t *v, const char *what) {
    if (!rd_need(r, 4, what)) return false;
    *v = ld_u32(r->b + r->pos);
    r->pos += 4;
    return true;
}

static bool rd_u64(reader *r, uint64_t *v, const char *what) {
    if (!rd_need(r, 8, what)) return false;
    *v = ld_u64(r->b + r->pos);
    r->pos += 8;
    return true;
}

static bool rd_str(reader *r, gguf_str *s, const char *what) {
    uint64_t at = r->pos, n;
    if (!rd_u64(r, &n, what)) return false;
    if (n > r->size - r->pos) {
        err_set(r->err, SEEK_EFORMAT, "%s: string length %llu at offset %llu extends past end of file (size %llu)",
                what, (unsigned long long)n, (unsigned long long)at, (unsigned long long)r->size);
        return false;
    }
    s->ptr = (const char *)r->b + r->pos;
    s->len = n;
    r->pos += n;
    return true;
}

/* Parses the value of kv (vtype already read) and, for string arrays, builds its index. */
static bool parse_value(reader *r, gguf_kv *kv, uint64_t **str_offs) {
    char what[128];
    snprintf(what, sizeof what, "key '%s'", safe(kv->key).s);
    uint32_t vt = kv->vtype;
    if (vt >= GGUF_VT_COUNT) {
        err_set(r->err, SEEK_EFORMAT, "%s: unknown value type %u", what, vt);
        return false;
    }
    if (vt == GGUF_VT_STRING) {
        gguf_str s;
        kv->data = r->b + r->pos; /* the raw value: u64 length, then the bytes */
        if (!rd_str(r, &s, what)) return false;
        kv->nbytes = 8 + s.len;
        return true;
    }
    if (vt != GGUF_VT_ARRAY) {
        uint32_t sz = vtype_size(vt);
        if (!rd_need(r, sz, what)) return false;
        kv->data = r->b + r->pos;
        kv->nbytes = sz;
        r->pos += sz;
        return true;
    }

    if (!rd_u32(r, &kv->arr_type, what) || !rd_u64(r, &kv->arr_n, what)) return false;
    uint32_t at = kv->arr_type;
    uint64_t n = kv->arr_n, left = r->size - r->pos, need;
    if (at >= GGUF_VT_COUNT) {
        err_set(r->err, SEEK_EFORMAT, "%s: array of unknown value type %u", what, at);
        return false;
    }
    if (at == GGUF_VT_ARRAY) {
        err_set(r->err, SEEK_EUNSUP, "%s: arrays of arrays are not supported", what);
        return false;
    }
    kv->data = r->b + r->pos;
    uint64_t elem_min = at == GGUF_VT_STRING ? 8 : vtype_size(at);
    if (!size_mul(n, elem_min, &need) || need > left) {
        err_set(r->err, SEEK_EFORMAT,
                "%s: array of %llu %s elements at offset %llu cannot fit in the %llu bytes left in the file", what,
                (unsigned long long)n, vtype_name(at), (unsigned long long)r->pos, (unsigned long long)left);
        return false;
    }
    if (at != GGUF_VT_STRING) {
        kv->nbytes = need;
        r->pos += need;
        return true;
    }
    /* String array: walk and index it.  n * 8 <= bytes left, so the index is bounded. */
    uint64_t *offs = NULL;
    if (n > 0) {
        offs = malloc(n * sizeof *offs);
        if (!offs) {
            err_set(r->err, SEEK_ENOMEM, "%s: out of memory indexing %llu strings", what, (unsigned long long)n);
            return false;
        }
    }
    *str_offs = offs;
    uint64_t start = r->pos;
    for (uint64_t i = 0; i < n; i++) {
        /* Each element: u64 length, then the bytes (inlined rd_str: this runs ~150k times). */
        uint64_t len, left_now = r->size - r->pos;
        if (left_now < 8 || (len = ld_u64(r->b + r->pos)) > left_now - 8) {
            err_set(r->err, SEEK_EFORMAT, "%s: string %llu of %llu at offset %llu extends past end of file (size %llu)",
                    what, (unsigned long long)i, (unsigned long long)n, (unsigned long long)r->pos,
                    (unsigned long long)r->size);
            return false;
        }
        offs[i] = r->pos;
        r->pos += 8 + len;
    }
    kv->nbytes = r->pos - start;
    return true;
}

static bool parse_kvs(reader *r, gguf_file *f) {
    if (f->n_kv == 0) return true;
    f->kvs = calloc(f->n_kv, sizeof *f->kvs);
    f->str_offs = calloc(f->n_kv, sizeof *f->str_offs);
    f->kv_ix.refs = malloc(f->n_kv * sizeof *f->kv_ix.refs);
    if (!f->kvs || !f->str_offs || !f->kv_ix.refs) {
        err_set(r->err, SEEK_ENOMEM, "out of memory for %llu keys", (unsigned long long)f->n_kv);
        return false;
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kvs[i];
        char what[64];
        snprintf(what, sizeof what, "key #%llu", (unsigned long long)i);
        if (!rd_str(r, &kv->key, what)) return false;
        snprintf(what, sizeof what, "type of key #%llu", (unsigned long long)i);
        if (!rd_u32(r, &kv->vtype, what)) return false;
        if (!parse_value(r, kv, &f->str_offs[i])) return false;
        f->kv_ix.refs[f->kv_ix.n++] = (name_ref){ kv->key.ptr, kv->key.len, i };
    }
    return index_sort_unique(&f->kv_ix, "key", r->err);
}

/* general.alignment: optional u32, a non-zero power of two. */
static bool read_alignment(gguf_file *f, seek_err *err) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find_kv(f, "general.alignment");
    if (!kv) return true;
    if (kv->vtype != GGUF_VT_UINT32) {
        err_set(err, SEEK_EFORMAT, "general.alignment has type %s, expected u32", vtype_name(kv->vtype));
        return false;
    }
    uint32_t a = ld_u32(kv->data);
    if (a == 0 || (a & (a - 1)) != 0) {
        err_set(err, SEEK_EFORMAT, "general.alignment = %u is not a non-zero power of two", a);
        return false;
    }
    f->alignment = a;
    return true;
}

static bool parse_tensor_infos(reader *r, gguf_file *f) {
    if (f->n_tensors == 0) return true;
    f->tensors = calloc(f->n_tensors, sizeof *f->tensors);
    f->tensor_ix.refs = malloc(f->n_tensors * sizeof *f->tensor_ix.refs);
    if (!f->tensors || !f->tensor_ix.refs) {
        err_set(r->err, SEEK_ENOMEM, "out of memory for %llu tensors", (unsigned long long)f->n_tensors);
        return false;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        char what[128];
        snprintf(what, sizeof what, "name of tensor #%llu", (unsigned long long)i);
        if (!rd_str(r, &t->name, what)) return false;
        safe_name sn = safe(t->name);
        const char *nm = sn.s;
        snprintf(what, sizeof what, "tensor '%s'", nm);
        f->tensor_ix.refs[f->tensor_ix.n++] = (name_ref){ t->name.ptr, t->name.len, i };

        if (!rd_u32(r, &t->n_dims, what)) return false;
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
            err_set(r->err, SEEK_EFORMAT, "%s: n_dims = %u is out of range 1..%d", what, t->n_dims, GGUF_MAX_DIMS);
            return false;
        }
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            if (!rd_u64(r, &ne, what)) return false;
            if (ne > (uint64_t)INT64_MAX) {
                err_set(r->err, SEEK_EFORMAT, "%s: ne[%u] = %lld is negative", what, d, (long long)(int64_t)ne);
                return false;
            }
            t->ne[d] = (int64_t)ne;
        }
        uint64_t off;
        if (!rd_u32(r, &t->type, what) || !rd_u64(r, &off, what)) return false;
        t->offset = off; /* relative for now; made absolute once the data section is known */
    }
    return index_sort_unique(&f->tensor_ix, "tensor name", r->err);
}

/* Type, shape, size and strides of one tensor (everything that does not depend on where the
 * data section starts). */
static bool check_tensor_shape(gguf_tensor *t, seek_err *err) {
    safe_name sn = safe(t->name);
    const char *nm = sn.s;
    uint32_t be, bb;
    if (!gguf_type_geometry(t->type, &be, &bb)) {
        if (t->type < GGUF_TYPE_COUNT && type_table[t->type].name)
            err_set(err, SEEK_EUNSUP, "tensor '%s': type %s is not supported (type id %u)", nm,
                    gguf_type_name(t->type), t->type);
        else
            err_set(err, SEEK_EUNSUP, "tensor '%s': unknown tensor type id %u", nm, t->type);
        return false;
    }
    int64_t n = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        if (__builtin_mul_overflow(n, t->ne[d], &n)) {
            err_set(err, SEEK_EFORMAT, "tensor '%s': element count %lld x %lld x %lld x %lld overflows int64", nm,
                    (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
            return false;
        }
    }
    if (t->ne[0] % be != 0) {
        err_set(err, SEEK_EFORMAT, "tensor '%s': row length ne[0] = %lld is not a multiple of the %s block size %u",
                nm, (long long)t->ne[0], gguf_type_name(t->type), be);
        return false;
    }
    /* nb[0] = block bytes, nb[1] = row bytes, nb[d] = nb[d-1] * ne[d-1]; nbytes = nb[3] * ne[3]. */
    t->nb[0] = bb;
    bool ok = size_mul((uint64_t)t->ne[0] / be, bb, &t->nb[1]);
    for (int d = 2; d < GGUF_MAX_DIMS; d++) ok = ok && size_mul(t->nb[d - 1], (uint64_t)t->ne[d - 1], &t->nb[d]);
    ok = ok && size_mul(t->nb[3], (uint64_t)t->ne[3], &t->nbytes);
    if (!ok) {
        err_set(err, SEEK_EFORMAT, "tensor '%s': size in bytes overflows", nm);
        return false;
    }
    return true;
}

typedef struct span { uint64_t start, len, idx; } span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Places every tensor in the data section, then checks that no two (non-empty) overlap. */
static bool place_tensors(gguf_file *f, seek_err *err) {
    if (f->n_tensors > 0 && f->data_offset > f->size) {
        err_set(err, SEEK_EFORMAT, "data section would start at offset %llu, past end of file (size %llu)",
                (unsigned long long)f->data_offset, (unsigned long long)f->size);
        return false;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        safe_name sn = safe(t->name);
        const char *nm = sn.s;
        uint64_t rel = t->offset, abs, end;
        if (rel % f->alignment != 0) {
            err_set(err, SEEK_EFORMAT, "tensor '%s': offset %llu is not a multiple of the alignment %u", nm,
                    (unsigned long long)rel, f->alignment);
            return false;
        }
        if (!size_add(f->data_offset, rel, &abs) || !size_add(abs, t->nbytes, &end) || end > f->size) {
            err_set(err, SEEK_EFORMAT,
                    "tensor '%s': data [offset %llu, %llu bytes] extends past end of file (size %llu)", nm,
                    (unsigned long long)rel, (unsigned long long)t->nbytes, (unsigned long long)f->size);
            return false;
        }
        t->offset = abs;
        t->data = f->base + abs;
    }

    if (f->n_tensors < 2) return true;
    span *sp = malloc(f->n_tensors * sizeof *sp);
    if (!sp) {
        err_set(err, SEEK_ENOMEM, "out of memory checking tensor overlap");
        return false;
    }
    uint64_t m = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].nbytes > 0) sp[m++] = (span){ f->tensors[i].offset, f->tensors[i].nbytes, i };
    qsort(sp, m, sizeof *sp, span_cmp);
    bool ok = true;
    for (uint64_t k = 1; k < m && ok; k++) {
        if (sp[k - 1].start + sp[k - 1].len > sp[k].start) {
            const gguf_tensor *a = &f->tensors[sp[k - 1].idx], *b = &f->tensors[sp[k].idx];
            err_set(err, SEEK_EFORMAT,
                    "tensors '%s' [offset %llu, %llu bytes] and '%s' [offset %llu, %llu bytes] overlap",
                    safe(a->name).s, (unsigned long long)(a->offset - f->data_offset), (unsigned long long)a->nbytes,
                    safe(b->name).s, (unsigned long long)(b->offset - f->data_offset), (unsigned long long)b->nbytes);
            ok = false;
        }
    }
    free(sp);
    return ok;
}

static bool parse(gguf_file *f, seek_err *err) {
    reader r = { .b = f->base, .size = f->size, .pos = 0, .err = err };
    if (f->size >= 4 && ld_u32(f->base) != GGUF_MAGIC) {
        const uint8_t *m = f->base;
        err_set(err, SEEK_EFORMAT, "not a GGUF file (magic bytes %02x %02x %02x %02x, expected \"GGUF\")", m[0], m[1],
                m[2], m[3]);
        return false;
    }
    if (f->size < 24) {
        err_set(err, SEEK_EFORMAT, "file too small for a GGUF header (%llu bytes, need 24)",
                (unsigned long long)f->size);
        return false;
    }
    r.pos = 4;
    rd_u32(&r, &f->version, "version");
    if (f->version == 1) {
        err_set(err, SEEK_EUNSUP, "GGUF version 1 is unsupported (only versions 2 and 3 are read)");
        return false;
    }
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xffff) == 0 && (f->version >> 16) != 0)
            err_set(err, SEEK_EUNSUP, "big-endian GGUF files are unsupported (version field 0x%08x)", f->version);
        else
            err_set(err, SEEK_EUNSUP, "GGUF version %u is unsupported (only versions 2 and 3 are read)", f->version);
        return false;
    }
    rd_u64(&r, &f->n_tensors, "tensor count");
    rd_u64(&r, &f->n_kv, "key/value count");

    /* Bound the counts by the bytes left before allocating anything for them. */
    uint64_t left = f->size - r.pos, need_kv, need_t, need;
    if (!size_mul(f->n_kv, 13, &need_kv) || need_kv > left) {
        err_set(err, SEEK_EFORMAT, "n_kv = %llu key/value pairs cannot fit in a file of %llu bytes",
                (unsigned long long)f->n_kv, (unsigned long long)f->size);
        return false;
    }
    if (!size_mul(f->n_tensors, 32, &need_t) || !size_add(need_kv, need_t, &need) || need > left) {
        err_set(err, SEEK_EFORMAT, "n_tensors = %llu tensor infos cannot fit in a file of %llu bytes",
                (unsigned long long)f->n_tensors, (unsigned long long)f->size);
        return false;
    }

    if (!parse_kvs(&r, f) || !read_alignment(f, err) || !parse_tensor_infos(&r, f)) return false;

    uint64_t pad = (f->alignment - r.pos % f->alignment) % f->alignment;
    if (!size_add(r.pos, pad, &f->data_offset)) {
        err_set(err, SEEK_EFORMAT, "data section offset overflows");
        return false;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (!check_tensor_shape(&f->tensors[i], err)) return false;
    return place_tensors(f, err);
}

static gguf_file *open_image(const uint8_t *base, uint64_t size, void *map, size_t map_len, seek_err *err) {
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        if (map) munmap(map, map_len);
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    f->base = base;
    f->size = size;
    f->map = map;
    f->map_len = map_len;
    if (!parse(f, err)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open_mem(const void *buf, size_t len, seek_err *err) {
    if (!buf && len > 0) {
        err_set(err, SEEK_EINVAL, "gguf_open_mem: NULL buffer");
        return NULL;
    }
    static const uint8_t empty[1];
    return open_image(buf ? buf : empty, len, NULL, 0, err);
}

gguf_file *gguf_open(const char *path, seek_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(err, errno == ENOENT ? SEEK_ENOTFOUND : SEEK_EIO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set(err, SEEK_EIO, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < 24) {
        /* Too small to map usefully; parse a copy so the error says "bad magic" or "too small". */
        uint8_t small[24];
        ssize_t got = pread(fd, small, sizeof small, 0);
        close(fd);
        gguf_file *f = open_image(small, got > 0 ? (uint64_t)got : 0, NULL, 0, err);
        gguf_close(f); /* never reached with a non-NULL f: under 24 bytes cannot parse */
        err_prefix(err, "%s", path);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        err_set(err, SEEK_EIO, "cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    gguf_file *f = open_image(map, size, map, (size_t)size, err);
    if (!f) err_prefix(err, "%s", path);
    return f;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->str_offs)
        for (uint64_t i = 0; i < f->n_kv; i++) free(f->str_offs[i]);
    free(f->str_offs);
    free(f->kvs);
    free(f->kv_ix.refs);
    free(f->tensors);
    free(f->tensor_ix.refs);
    if (f->map) munmap(f->map, f->map_len);
    free(f);
}

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint32_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_file_size(const gguf_file *f) { return f->size; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }

/* ---- metadata ---------------------------------------------------------------------- */

uint64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }

const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i) { return i < f->n_kv ? &f->kvs[i] : NULL; }

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    if (!key) return NULL;
    int64_t i = index_find(&f->kv_ix, key, strlen(key));
    return i < 0 ? NULL : &f->kvs[i];
}

static const gguf_kv *find_or_err(const gguf_file *f, const char *key, seek_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) err_set(err, SEEK_ENOTFOUND, "key '%s' not found", key);
    return kv;
}

static int wrong_type(const char *key, const gguf_kv *kv, const char *want, seek_err *err) {
    return err_set(err, SEEK_EFORMAT, "key '%s' has type %s, expected %s", key, vtype_name(kv->vtype), want);
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, seek_err *err) {
    const gguf_kv *kv = find_or_err(f, key, err);
    if (!kv) return -1;
    if (!vtype_is_int(kv->vtype)) return wrong_type(key, kv, "an integer", err);
    uint64_t u;
    bool neg;
    int64_t s;
    ld_int(kv->vtype, kv->data, &u, &neg, &s);
    if (neg) return err_set(err, SEEK_EFORMAT, "key '%s' = %lld is negative", key, (long long)s);
    *out = u;
    return 0;
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, seek_err *err) {
    uint64_t v;
    if (gguf_get_u64(f, key, &v, err) != 0) return -1;
    if (v > UINT32_MAX) return err_set(err, SEEK_EFORMAT, "key '%s' = %llu does not fit in u32", key, (unsigned long long)v);
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, seek_err *err) {
    const gguf_kv *kv = find_or_err(f, key, err);
    if (!kv) return -1;
    if (!vtype_is_int(kv->vtype)) return wrong_type(key, kv, "an integer", err);
    uint64_t u;
    bool neg;
    int64_t s;
    ld_int(kv->vtype, kv->data, &u, &neg, &s);
    if (!neg && u > (uint64_t)INT64_MAX)
        return err_set(err, SEEK_EFORMAT, "key '%s' = %llu does not fit in i64", key, (unsigned long long)u);
    *out = s;
    return 0;
}

/* Any number as a double (integers exactly up to 2^53). */
static bool ld_number(uint32_t vt, const uint8_t *p, double *out) {
    if (vt == GGUF_VT_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        *out = v;
    } else if (vt == GGUF_VT_FLOAT64) {
        memcpy(out, p, 8);
    } else if (vtype_is_int(vt)) {
        uint64_t u;
        bool neg;
        int64_t s;
        ld_int(vt, p, &u, &neg, &s);
        *out = neg ? (double)s : (double)u;
    } else {
        return false;
    }
    return true;
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out, seek_err *err) {
    const gguf_kv *kv = find_or_err(f, key, err);
    if (!kv) return -1;
    double d;
    if (!ld_number(kv->vtype, kv->data, &d)) return wrong_type(key, kv, "a number", err);
    *out = (float)d;
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, seek_err *err) {
    const gguf_kv *kv = find_or_err(f, key, err);
    if (!kv) return -1;
    if (kv->vtype != GGUF_VT_BOOL) return wrong_type(key, kv, "bool", err);
    *out = kv->data[0] != 0;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, seek_err *err) {
    const gguf_kv *kv = find_or_err(f, key, err);
    if (!kv) return -1;
    if (kv->vtype != GGUF_VT_STRING) return wrong_type(key, kv, "string", err);
    out->len = ld_u64(kv->data);
    out->ptr = (const char *)kv->data + 8;
    return 0;
}

int gguf_arr_str(const gguf_file *f, const gguf_kv *kv, uint64_t i, gguf_str *out) {
    /* kv must be one of f's own records: its index selects the string index. */
    if (!f || !kv || f->n_kv == 0 || kv < f->kvs || kv >= f->kvs + f->n_kv) return -1;
    if (kv->vtype != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING || i >= kv->arr_n) return -1;
    uint64_t at = f->str_offs[kv - f->kvs][i];
    out->len = ld_u64(f->base + at);
    out->ptr = (const char *)f->base + at + 8;
    return 0;
}

int gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out) {
    if (!kv || kv->vtype != GGUF_VT_ARRAY || !vtype_is_int(kv->arr_type) || i >= kv->arr_n) return -1;
    uint64_t u;
    bool neg;
    int64_t s;
    ld_int(kv->arr_type, kv->data + i * vtype_size(kv->arr_type), &u, &neg, &s);
    if (!neg && u > (uint64_t)INT64_MAX) return -1;
    *out = s;
    return 0;
}

int gguf_arr_f32(const gguf_kv *kv, uint64_t i, float *out) {
    if (!kv || kv->vtype != GGUF_VT_ARRAY || i >= kv->arr_n) return -1;
    uint32_t sz = vtype_size(kv->arr_type);
    double d;
    if (sz == 0 || kv->arr_type == GGUF_VT_BOOL || !ld_number(kv->arr_type, kv->data + i * sz, &d)) return -1;
    *out = (float)d;
    return 0;
}

/* ---- tensors ----------------------------------------------------------------------- */

uint64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!name) return NULL;
    int64_t i = index_find(&f->tensor_ix, name, strlen(name));
    return i < 0 ? NULL : &f->tensors[i];
}
