/*
 * test_gguf.c - tests of the GGUF reader and writer (src/gguf).
 *
 * What it covers:
 *   - the type geometry table (block sizes from ggml's block_* layouts),
 *   - a hand-assembled image with every scalar value type and every numeric array type, read
 *     back through the typed getters (the bytes are laid out here by hand, independently of
 *     the writer),
 *   - writer round trip: keys copied from that image plus the typed setters, tensors of
 *     several types and ranks (one produced by a fill callback), custom alignment, writer
 *     argument errors, failure of a fill callback leaving no file behind,
 *   - a v2 header,
 *   - the llama.cpp-written fixtures in ../shared/fixtures/gguf (or $SEEK_FIXTURES): known
 *     facts, and re-writing each through the writer must reproduce the file byte for byte,
 *   - a table of hand-crafted bad files, each of which must fail with a given message, and
 *     every truncation of a valid file.
 * What it does not cover: random mutations (tests/fuzz_gguf.c does that).
 */
#include "gguf/gguf.h"

#include "check.h"
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a little byte builder for hand-made images --------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void b_put(bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) abort();
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void b_u8(bytes *b, uint8_t v) { b_put(b, &v, 1); }
static void b_u16(bytes *b, uint16_t v) { b_put(b, &v, 2); }
static void b_u32(bytes *b, uint32_t v) { b_put(b, &v, 4); }
static void b_u64(bytes *b, uint64_t v) { b_put(b, &v, 8); }
static void b_f32(bytes *b, float v) { b_put(b, &v, 4); }
static void b_f64(bytes *b, double v) { b_put(b, &v, 8); }
static void b_str(bytes *b, const char *s) {
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}
static void b_pad(bytes *b, size_t align) {
    while (b->n % align) b_u8(b, 0);
}
static void b_zeros(bytes *b, size_t n) {
    for (size_t i = 0; i < n; i++) b_u8(b, 0);
}
static void b_header(bytes *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_u32(b, GGUF_MAGIC);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_kv_u32(bytes *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, GGUF_VT_UINT32);
    b_u32(b, v);
}
/* Tensor info with up to 4 dims. */
static void b_tinfo(bytes *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) b_u64(b, ne[d]);
    b_u32(b, type);
    b_u64(b, off);
}

/* Opens a copy of the image in an exactly sized heap block (so ASan sees any over-read). */
static gguf_file *open_copy(const bytes *b, uint8_t **copy, seek_err *err) {
    *copy = malloc(b->n ? b->n : 1);
    if (b->n) memcpy(*copy, b->p, b->n);
    return gguf_open_mem(*copy, b->n, err);
}

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void fill_random(void *p, size_t n) {
    for (size_t i = 0; i < n; i++) ((uint8_t *)p)[i] = (uint8_t)rng_u64();
}

/* ---- type table ---------------------------------------------------------------------- */

static void test_types(void) {
    static const struct { uint32_t type; const char *name; uint32_t be, bb; } rows[] = {
        { GGUF_TYPE_F32, "F32", 1, 4 },      { GGUF_TYPE_F16, "F16", 1, 2 },      { GGUF_TYPE_BF16, "BF16", 1, 2 },
        { GGUF_TYPE_Q4_0, "Q4_0", 32, 18 },  { GGUF_TYPE_Q4_1, "Q4_1", 32, 20 },  { GGUF_TYPE_Q5_0, "Q5_0", 32, 22 },
        { GGUF_TYPE_Q5_1, "Q5_1", 32, 24 },  { GGUF_TYPE_Q8_0, "Q8_0", 32, 34 },  { GGUF_TYPE_Q8_1, "Q8_1", 32, 36 },
        { GGUF_TYPE_Q2_K, "Q2_K", 256, 84 }, { GGUF_TYPE_Q3_K, "Q3_K", 256, 110 }, { GGUF_TYPE_Q4_K, "Q4_K", 256, 144 },
        { GGUF_TYPE_Q5_K, "Q5_K", 256, 176 }, { GGUF_TYPE_Q6_K, "Q6_K", 256, 210 }, { GGUF_TYPE_Q8_K, "Q8_K", 256, 292 },
        { GGUF_TYPE_I8, "I8", 1, 1 },        { GGUF_TYPE_I16, "I16", 1, 2 },      { GGUF_TYPE_I32, "I32", 1, 4 },
        { GGUF_TYPE_I64, "I64", 1, 8 },      { GGUF_TYPE_F64, "F64", 1, 8 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint32_t be = 0, bb = 0;
        CHECK(gguf_type_geometry(rows[i].type, &be, &bb), "geometry of %s", rows[i].name);
        CHECK(be == rows[i].be && bb == rows[i].bb, "%s: %u/%u, want %u/%u", rows[i].name, be, bb, rows[i].be,
              rows[i].bb);
        CHECK(strcmp(gguf_type_name(rows[i].type), rows[i].name) == 0, "name of %u", rows[i].type);
        CHECK(gguf_type_from_name(rows[i].name) == (int)rows[i].type, "from_name %s", rows[i].name);
    }
    static const struct { uint32_t type; const char *name; } iq[] = {
        { GGUF_TYPE_IQ2_XXS, "IQ2_XXS" }, { GGUF_TYPE_IQ2_XS, "IQ2_XS" }, { GGUF_TYPE_IQ3_XXS, "IQ3_XXS" },
        { GGUF_TYPE_IQ1_S, "IQ1_S" },     { GGUF_TYPE_IQ4_NL, "IQ4_NL" }, { GGUF_TYPE_IQ3_S, "IQ3_S" },
        { GGUF_TYPE_IQ2_S, "IQ2_S" },     { GGUF_TYPE_IQ4_XS, "IQ4_XS" }, { GGUF_TYPE_IQ1_M, "IQ1_M" },
    };
    for (size_t i = 0; i < sizeof iq / sizeof iq[0]; i++) {
        CHECK(!gguf_type_geometry(iq[i].type, NULL, NULL), "%s must not have a geometry", iq[i].name);
        CHECK(strcmp(gguf_type_name(iq[i].type), iq[i].name) == 0, "name of %s", iq[i].name);
    }
    CHECK(gguf_type_from_name("q4_k") == GGUF_TYPE_Q4_K, "case-insensitive from_name");
    CHECK(gguf_type_from_name("Q9_Z") == -1, "unknown from_name");
    CHECK(strcmp(gguf_type_name(4), "Q4_2") == 0 && !gguf_type_geometry(4, NULL, NULL), "retired Q4_2");
    CHECK(strcmp(gguf_type_name(1000), "unknown") == 0, "unknown id name");
    CHECK(strcmp(gguf_type_name(33), "unknown") == 0, "unnamed id in range");
    CHECK(!gguf_type_geometry(GGUF_TYPE_COUNT, NULL, NULL) && !gguf_type_geometry(UINT32_MAX, NULL, NULL), "out of range");
    CHECK(gguf_row_bytes(GGUF_TYPE_Q4_K, 512) == 288, "Q4_K row bytes");
    CHECK(gguf_row_bytes(GGUF_TYPE_Q8_0, 33) == 0, "row not multiple of block");
    CHECK(gguf_row_bytes(GGUF_TYPE_F32, 10) == 40, "F32 row bytes");
    CHECK(gguf_row_bytes(GGUF_TYPE_F64, UINT64_MAX / 4) == 0, "row bytes overflow");
    CHECK(gguf_row_bytes(GGUF_TYPE_IQ2_XS, 256) == 0, "IQ row bytes");
}

/* ---- every value type, hand-assembled -------------------------------------------------- */

static const char *const arr_strs[] = { "alpha", "", "g\xc3\xa4mma", "a longer string with spaces" };

/* An image with one key per scalar vtype, one per numeric array type, a string array and an
 * empty array; no tensors. */
static void build_all_types(bytes *b, uint32_t version) {
    b_header(b, version, 0, 12 + 11 + 2);
    b_str(b, "t.u8");   b_u32(b, GGUF_VT_UINT8);   b_u8(b, 200);
    b_str(b, "t.i8");   b_u32(b, GGUF_VT_INT8);    b_u8(b, (uint8_t)-100);
    b_str(b, "t.u16");  b_u32(b, GGUF_VT_UINT16);  b_u16(b, 60000);
    b_str(b, "t.i16");  b_u32(b, GGUF_VT_INT16);   b_u16(b, (uint16_t)-30000);
    b_str(b, "t.u32");  b_u32(b, GGUF_VT_UINT32);  b_u32(b, 4000000000u);
    b_str(b, "t.i32");  b_u32(b, GGUF_VT_INT32);   b_u32(b, (uint32_t)-2000000000);
    b_str(b, "t.f32");  b_u32(b, GGUF_VT_FLOAT32); b_f32(b, 1.5f);
    b_str(b, "t.bool"); b_u32(b, GGUF_VT_BOOL);    b_u8(b, 1);
    b_str(b, "t.str");  b_u32(b, GGUF_VT_STRING);  b_str(b, "hello, gguf");
    b_str(b, "t.u64");  b_u32(b, GGUF_VT_UINT64);  b_u64(b, 18000000000000000000ull);
    b_str(b, "t.i64");  b_u32(b, GGUF_VT_INT64);   b_u64(b, (uint64_t)-9000000000000000000ll);
    b_str(b, "t.f64");  b_u32(b, GGUF_VT_FLOAT64); b_f64(b, -2.25);
    /* numeric arrays: 3 elements each, values 1, 2, 3 (bool: 1, 0, 1) */
    static const uint32_t num_types[] = { GGUF_VT_UINT8, GGUF_VT_INT8, GGUF_VT_UINT16, GGUF_VT_INT16,
                                          GGUF_VT_UINT32, GGUF_VT_INT32, GGUF_VT_FLOAT32, GGUF_VT_BOOL,
                                          GGUF_VT_UINT64, GGUF_VT_INT64, GGUF_VT_FLOAT64 };
    for (size_t i = 0; i < 11; i++) {
        uint32_t t = num_types[i];
        char key[32];
        snprintf(key, sizeof key, "a.%u", t);
        b_str(b, key);
        b_u32(b, GGUF_VT_ARRAY);
        b_u32(b, t);
        b_u64(b, 3);
        for (int k = 1; k <= 3; k++) {
            switch (t) {
            case GGUF_VT_UINT8: case GGUF_VT_INT8: b_u8(b, (uint8_t)k); break;
            case GGUF_VT_BOOL: b_u8(b, (uint8_t)(k & 1)); break;
            case GGUF_VT_UINT16: case GGUF_VT_INT16: b_u16(b, (uint16_t)k); break;
            case GGUF_VT_UINT32: case GGUF_VT_INT32: b_u32(b, (uint32_t)k); break;
            case GGUF_VT_FLOAT32: b_f32(b, (float)k); break;
            case GGUF_VT_FLOAT64: b_f64(b, (double)k); break;
            default: b_u64(b, (uint64_t)k); break;
            }
        }
    }
    b_str(b, "a.strs");
    b_u32(b, GGUF_VT_ARRAY);
    b_u32(b, GGUF_VT_STRING);
    b_u64(b, 4);
    for (int k = 0; k < 4; k++) b_str(b, arr_strs[k]);
    b_str(b, "a.empty");
    b_u32(b, GGUF_VT_ARRAY);
    b_u32(b, GGUF_VT_INT32);
    b_u64(b, 0);
}

/* Checks every value of build_all_types through the public getters. */
static void check_all_types(const gguf_file *f, const char *what) {
    seek_err err = { 0 };
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    float f32;
    bool bl;
    gguf_str s;
    CHECK(gguf_get_u32(f, "t.u8", &u32, &err) == 0 && u32 == 200, "%s: u8", what);
    CHECK(gguf_get_i64(f, "t.i8", &i64, &err) == 0 && i64 == -100, "%s: i8", what);
    CHECK(gguf_get_u32(f, "t.i8", &u32, &err) == -1 && strstr(err.msg, "negative"), "%s: i8 as u32: %s", what, err.msg);
    CHECK(gguf_get_u32(f, "t.u16", &u32, &err) == 0 && u32 == 60000, "%s: u16", what);
    CHECK(gguf_get_i64(f, "t.i16", &i64, &err) == 0 && i64 == -30000, "%s: i16", what);
    CHECK(gguf_get_u32(f, "t.u32", &u32, &err) == 0 && u32 == 4000000000u, "%s: u32", what);
    CHECK(gguf_get_i64(f, "t.i32", &i64, &err) == 0 && i64 == -2000000000, "%s: i32", what);
    CHECK(gguf_get_f32(f, "t.f32", &f32, &err) == 0 && f32 == 1.5f, "%s: f32", what);
    CHECK(gguf_get_bool(f, "t.bool", &bl, &err) == 0 && bl, "%s: bool", what);
    CHECK(gguf_get_str(f, "t.str", &s, &err) == 0 && gguf_str_eq(s, "hello, gguf"), "%s: str", what);
    CHECK(gguf_get_u64(f, "t.u64", &u64, &err) == 0 && u64 == 18000000000000000000ull, "%s: u64", what);
    CHECK(gguf_get_u32(f, "t.u64", &u32, &err) == -1 && strstr(err.msg, "does not fit"), "%s: u64 as u32", what);
    CHECK(gguf_get_i64(f, "t.u64", &i64, &err) == -1, "%s: big u64 as i64", what);
    CHECK(gguf_get_i64(f, "t.i64", &i64, &err) == 0 && i64 == -9000000000000000000ll, "%s: i64", what);
    CHECK(gguf_get_f32(f, "t.f64", &f32, &err) == 0 && f32 == -2.25f, "%s: f64", what);
    CHECK(gguf_get_f32(f, "t.u32", &f32, &err) == 0 && f32 == 4e9f, "%s: int as f32", what);
    CHECK(gguf_get_str(f, "t.u32", &s, &err) == -1 && err.code == SEEK_EFORMAT && strstr(err.msg, "t.u32") &&
              strstr(err.msg, "expected string"), "%s: type mismatch message: %s", what, err.msg);
    CHECK(gguf_get_bool(f, "t.u8", &bl, &err) == -1, "%s: u8 as bool", what);
    CHECK(gguf_get_u32(f, "t.f32", &u32, &err) == -1, "%s: f32 as u32", what);
    CHECK(gguf_get_u32(f, "no.such.key", &u32, &err) == -1 && err.code == SEEK_ENOTFOUND &&
              strstr(err.msg, "no.such.key"), "%s: absent key", what);
    CHECK(gguf_get_u32(f, "t.u8", &u32, NULL) == 0, "%s: NULL err", what);

    for (uint32_t t = 0; t < GGUF_VT_COUNT; t++) {
        if (t == GGUF_VT_STRING || t == GGUF_VT_ARRAY) continue;
        char key[32];
        snprintf(key, sizeof key, "a.%u", t);
        const gguf_kv *kv = gguf_find_kv(f, key);
        CHECK(kv && kv->vtype == GGUF_VT_ARRAY && kv->arr_type == t && kv->arr_n == 3, "%s: array %s", what, key);
        if (!kv) continue;
        for (uint64_t k = 0; k < 3; k++) {
            int64_t iv;
            float fv;
            if (t == GGUF_VT_BOOL) {
                CHECK(kv->data[k] == ((k + 1) & 1), "%s: bool array", what);
                CHECK(gguf_arr_i64(kv, k, &iv) == -1 && gguf_arr_f32(kv, k, &fv) == -1, "%s: bool array getters", what);
            } else if (t == GGUF_VT_FLOAT32 || t == GGUF_VT_FLOAT64) {
                CHECK(gguf_arr_f32(kv, k, &fv) == 0 && fv == (float)(k + 1), "%s: %s[%llu]", what, key,
                      (unsigned long long)k);
                CHECK(gguf_arr_i64(kv, k, &iv) == -1, "%s: float array as int", what);
            } else {
                CHECK(gguf_arr_i64(kv, k, &iv) == 0 && iv == (int64_t)(k + 1), "%s: %s[%llu]", what, key,
                      (unsigned long long)k);
                CHECK(gguf_arr_f32(kv, k, &fv) == 0 && fv == (float)(k + 1), "%s: %s[%llu] as f32", what, key,
                      (unsigned long long)k);
            }
        }
        int64_t iv;
        CHECK(gguf_arr_i64(kv, 3, &iv) == -1, "%s: array index out of range", what);
        gguf_str es;
        CHECK(gguf_arr_str(f, kv, 0, &es) == -1, "%s: numeric array as strings", what);
    }
    const gguf_kv *kv = gguf_find_kv(f, "a.strs");
    CHECK(kv && kv->arr_type == GGUF_VT_STRING && kv->arr_n == 4, "%s: string array", what);
    if (kv) {
        for (uint64_t k = 0; k < 4; k++)
            CHECK(gguf_arr_str(f, kv, k, &s) == 0 && gguf_str_eq(s, arr_strs[k]), "%s: strs[%llu]", what,
                  (unsigned long long)k);
        CHECK(gguf_arr_str(f, kv, 4, &s) == -1, "%s: string index out of range", what);
        int64_t iv;
        CHECK(gguf_arr_i64(kv, 0, &iv) == -1, "%s: strings as ints", what);
        gguf_kv fake = *kv; /* a record that is not the file's own */
        CHECK(gguf_arr_str(f, &fake, 0, &s) == -1, "%s: foreign kv record", what);
    }
    kv = gguf_find_kv(f, "a.empty");
    CHECK(kv && kv->arr_n == 0 && kv->nbytes == 0, "%s: empty array", what);
    char buf[8];
    CHECK(gguf_get_str(f, "t.str", &s, &err) == 0 && strcmp(gguf_str_copy(s, buf, sizeof buf), "hello, ") == 0,
          "%s: gguf_str_copy truncates", what);
}

static void test_all_types(void) {
    bytes b = { 0 };
    build_all_types(&b, 3);
    uint8_t *copy;
    seek_err err = { 0 };
    gguf_file *f = open_copy(&b, &copy, &err);
    CHECK(f != NULL, "all-types image: %s", err.msg);
    if (f) {
        CHECK(gguf_version(f) == 3 && gguf_n_kv(f) == 25 && gguf_n_tensors(f) == 0, "all-types header");
        CHECK(gguf_alignment(f) == 32, "default alignment");
        CHECK(gguf_kv_at(f, 0) && gguf_str_eq(gguf_kv_at(f, 0)->key, "t.u8") && gguf_kv_at(f, 25) == NULL, "kv_at");
        check_all_types(f, "mem");
        gguf_close(f);
    }
    free(copy);

    /* The same image as version 2: v2 has the same layout as v3 (64-bit counts). */
    bytes b2 = { 0 };
    build_all_types(&b2, 2);
    f = open_copy(&b2, &copy, &err);
    CHECK(f != NULL && gguf_version(f) == 2, "v2 image: %s", f ? "" : err.msg);
    if (f) {
        check_all_types(f, "v2");
        gguf_close(f);
    }
    free(copy);
    free(b.p);
    free(b2.p);
}

/* A v2 file with tensors. */
static void test_v2_tensors(void) {
    bytes b = { 0 };
    b_header(&b, 2, 2, 1);
    b_kv_u32(&b, "general.alignment", 16);
    uint64_t ne_a[2] = { 4, 2 }, ne_b[1] = { 32 };
    b_tinfo(&b, "a", 2, ne_a, GGUF_TYPE_F32, 0);
    b_tinfo(&b, "b", 1, ne_b, GGUF_TYPE_Q8_0, 32);
    b_pad(&b, 16);
    size_t data = b.n;
    for (int i = 0; i < 8; i++) b_f32(&b, (float)i);
    for (int i = 0; i < 34; i++) b_u8(&b, (uint8_t)(100 + i));
    uint8_t *copy;
    seek_err err = { 0 };
    gguf_file *f = open_copy(&b, &copy, &err);
    CHECK(f != NULL, "v2 tensors: %s", err.msg);
    if (f) {
        CHECK(gguf_version(f) == 2 && gguf_alignment(f) == 16 && gguf_data_offset(f) == data, "v2 layout");
        const gguf_tensor *a = gguf_find_tensor(f, "a"), *bt = gguf_find_tensor(f, "b");
        CHECK(a && a->ne[0] == 4 && a->ne[1] == 2 && a->ne[2] == 1 && a->nbytes == 32 && a->offset == data, "v2 a");
        CHECK(a && a->nb[0] == 4 && a->nb[1] == 16 && a->nb[2] == 32 && a->nb[3] == 32, "v2 a strides");
        CHECK(a && ((const float *)a->data)[7] == 7.0f, "v2 a data");
        CHECK(bt && bt->nbytes == 34 && bt->offset == data + 32 && ((const uint8_t *)bt->data)[33] == 133, "v2 b");
        CHECK(gguf_find_tensor(f, "c") == NULL && gguf_tensor_at(f, 2) == NULL, "v2 absent tensor");
        gguf_close(f);
    }
    free(copy);
    free(b.p);
}

/* ---- writer round trip --------------------------------------------------------------- */

typedef struct tspec {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint8_t *data;
    uint64_t nbytes;
    bool use_fill;
} tspec;

static int fill_copy(void *ctx, void *dst, uint64_t nbytes, seek_err *err) {
    const tspec *t = ctx;
    if (nbytes != t->nbytes) return err_set(err, SEEK_EINVAL, "fill: wrong size");
    memcpy(dst, t->data, nbytes);
    return 0;
}

static int fill_fail(void *ctx, void *dst, uint64_t nbytes, seek_err *err) {
    return err_set(err, SEEK_EIO, "fill refused");
}

static uint64_t tspec_bytes(const tspec *t) {
    uint32_t be, bb;
    gguf_type_geometry(t->type, &be, &bb);
    uint64_t n = (uint64_t)t->ne[0] / be * bb;
    for (uint32_t d = 1; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
    return n;
}

static void check_written(const char *path, tspec *ts, int nt, uint32_t align, const char *what) {
    seek_err err = { 0 };
    gguf_file *f = gguf_open(path, &err);
    CHECK(f != NULL, "%s: reopen: %s", what, err.msg);
    if (!f) return;
    CHECK(gguf_version(f) == 3 && gguf_alignment(f) == align, "%s: version %u alignment %u", what, gguf_version(f),
          gguf_alignment(f));
    CHECK(gguf_data_offset(f) % align == 0, "%s: data offset aligned", what);
    CHECK(gguf_n_tensors(f) == (uint64_t)nt, "%s: tensor count", what);
    for (int i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, (uint64_t)i);
        CHECK(t && gguf_str_eq(t->name, ts[i].name), "%s: tensor %d in insertion order", what, i);
        CHECK(gguf_find_tensor(f, ts[i].name) == t, "%s: find %s", what, ts[i].name);
        if (!t) continue;
        CHECK(t->type == ts[i].type && t->n_dims == ts[i].n_dims, "%s: %s type/dims", what, ts[i].name);
        for (uint32_t d = 0; d < 4; d++)
            CHECK(t->ne[d] == (d < ts[i].n_dims ? ts[i].ne[d] : 1), "%s: %s ne[%u]", what, ts[i].name, d);
        uint32_t be, bb;
        gguf_type_geometry(t->type, &be, &bb);
        CHECK(t->nb[0] == bb && t->nb[1] == (uint64_t)t->ne[0] / be * bb && t->nb[2] == t->nb[1] * (uint64_t)t->ne[1] &&
                  t->nb[3] == t->nb[2] * (uint64_t)t->ne[2], "%s: %s strides", what, ts[i].name);
        CHECK(t->nbytes == ts[i].nbytes && t->nbytes == t->nb[3] * (uint64_t)t->ne[3], "%s: %s nbytes", what, ts[i].name);
        CHECK((t->offset - gguf_data_offset(f)) % align == 0, "%s: %s offset aligned", what, ts[i].name);
        CHECK(t->nbytes == 0 || memcmp(t->data, ts[i].data, t->nbytes) == 0, "%s: %s data", what, ts[i].name);
    }
    gguf_close(f);
}

static void test_writer(void) {
    seek_err err = { 0 };
    bytes b = { 0 };
    build_all_types(&b, 3);
    uint8_t *copy;
    gguf_file *src = open_copy(&b, &copy, &err);
    CHECK(src != NULL, "all-types source: %s", err.msg);
    if (!src) return;

    gguf_writer *w = gguf_writer_new();
    CHECK(gguf_writer_set_str(w, "general.architecture", "testarch") == 0, "set_str");
    CHECK(gguf_writer_set_u32(w, "w.u32", 7) == 0, "set_u32");
    for (uint64_t i = 0; i < gguf_n_kv(src); i++)
        CHECK(gguf_writer_copy_kv(w, src, gguf_kv_at(src, i)) == 0, "copy_kv %llu", (unsigned long long)i);
    CHECK(gguf_writer_set_i32(w, "w.i32", -5) == 0, "set_i32");
    CHECK(gguf_writer_set_u64(w, "w.u64", 1ull << 40) == 0, "set_u64");
    CHECK(gguf_writer_set_f32(w, "w.f32", 0.25f) == 0, "set_f32");
    CHECK(gguf_writer_set_bool(w, "w.bool", false) == 0, "set_bool");
    const float farr[5] = { 1, -2, 3.5f, 0, 1e30f };
    CHECK(gguf_writer_set_arr(w, "w.farr", GGUF_VT_FLOAT32, farr, 5) == 0, "set_arr");
    CHECK(gguf_writer_set_arr(w, "w.bad", GGUF_VT_STRING, farr, 1) == -1, "set_arr rejects strings");
    CHECK(gguf_writer_set_arr(w, "w.bad", GGUF_VT_ARRAY, farr, 1) == -1, "set_arr rejects arrays");
    CHECK(gguf_writer_set_arr(w, "w.bad", 99, farr, 1) == -1, "set_arr rejects unknown types");
    const char *toks[3] = { "<s>", "x", "\xe2\x96\x81y" };
    CHECK(gguf_writer_set_arr_str(w, "w.toks", toks, 3) == 0, "set_arr_str");
    CHECK(gguf_writer_set_arr_str(w, "w.none", toks, 0) == 0, "set_arr_str empty");
    CHECK(gguf_writer_set_u32(w, "w.u32", 8) == 0, "replace keeps position");
    CHECK(gguf_writer_set_str(w, "w.gone", "x") == 0 && gguf_writer_remove(w, "w.gone") == 0, "remove");
    CHECK(gguf_writer_remove(w, "w.gone") == -1, "remove absent");

    /* Tensors of several types and ranks; sizes chosen so padding is needed between them. */
#define T(nm, ty, nd, ...) { .name = nm, .type = ty, .n_dims = nd, .ne = { __VA_ARGS__ } }
    tspec ts[] = {
        T("f32.2d", GGUF_TYPE_F32, 2, 8, 3),       T("f16.1d", GGUF_TYPE_F16, 1, 17),
        T("q4_0", GGUF_TYPE_Q4_0, 2, 64, 2),       T("q8_0.3d", GGUF_TYPE_Q8_0, 3, 32, 3, 2),
        T("q4_k", GGUF_TYPE_Q4_K, 2, 256, 2),      T("q6_k", GGUF_TYPE_Q6_K, 1, 256),
        T("i32", GGUF_TYPE_I32, 1, 5),             T("bf16.4d", GGUF_TYPE_BF16, 4, 7, 1, 3, 2),
        T("q5_k.fill", GGUF_TYPE_Q5_K, 2, 512, 3), T("empty", GGUF_TYPE_F32, 2, 4, 0),
        T("f64.last", GGUF_TYPE_F64, 1, 3),
    };
#undef T
    ts[8].use_fill = true;
    int nt = (int)(sizeof ts / sizeof ts[0]);
    for (int i = 0; i < nt; i++) {
        ts[i].nbytes = tspec_bytes(&ts[i]);
        ts[i].data = malloc(ts[i].nbytes + 1);
        fill_random(ts[i].data, ts[i].nbytes);
        int rc = ts[i].use_fill ? gguf_writer_add_tensor_fn(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne,
                                                            ts[i].nbytes, fill_copy, &ts[i], &err)
                                : gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne,
                                                         ts[i].data, ts[i].nbytes, &err);
        CHECK(rc == 0, "add %s: %s", ts[i].name, err.msg);
    }

    /* Argument errors. */
    int64_t ne[4] = { 32, 2, 1, 1 };
    uint8_t tiny[1024] = { 0 };
    CHECK(gguf_writer_add_tensor(w, "f32.2d", GGUF_TYPE_F32, 2, ne, tiny, 256, &err) == -1 &&
              strstr(err.msg, "added twice"), "duplicate tensor name: %s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "x", GGUF_TYPE_F32, 2, ne, tiny, 255, &err) == -1 &&
              strstr(err.msg, "255 bytes given"), "wrong nbytes: %s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "x", GGUF_TYPE_Q4_K, 2, ne, tiny, 144, &err) == -1 &&
              strstr(err.msg, "block size 256"), "ne0 not multiple: %s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "x", GGUF_TYPE_IQ2_XXS, 1, ne, tiny, 66, &err) == -1 &&
              strstr(err.msg, "IQ2_XXS is not supported"), "IQ type: %s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "x", GGUF_TYPE_F32, 0, ne, tiny, 0, &err) == -1 &&
              strstr(err.msg, "n_dims"), "n_dims 0: %s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "x", GGUF_TYPE_F32, 5, ne, tiny, 0, &err) == -1, "n_dims 5");
    int64_t neg[2] = { 4, -1 };
    CHECK(gguf_writer_add_tensor(w, "x", GGUF_TYPE_F32, 2, neg, tiny, 0, &err) == -1 &&
              strstr(err.msg, "negative"), "negative ne: %s", err.msg);
    int64_t huge[3] = { 1ll << 32, 1ll << 32, 4 };
    CHECK(gguf_writer_add_tensor(w, "x", GGUF_TYPE_F32, 3, huge, tiny, 0, &err) == -1 &&
              strstr(err.msg, "overflow"), "overflowing ne: %s", err.msg);
    CHECK(gguf_writer_add_tensor(w, "x", GGUF_TYPE_F32, 1, ne, NULL, 128, &err) == -1, "NULL data");

    char path[512], path64[512];
    snprintf(path, sizeof path, "%s", tmp_path("rt.gguf"));
    snprintf(path64, sizeof path64, "%s", tmp_path("rt64.gguf"));
    CHECK(gguf_writer_write(w, path, &err) == 0, "write: %s", err.msg);
    check_written(path, ts, nt, 32, "rt");

    /* Keys: order, types and values. */
    gguf_file *f = gguf_open(path, &err);
    if (f) {
        CHECK(gguf_n_kv(f) == 2 + gguf_n_kv(src) + 7, "key count %llu", (unsigned long long)gguf_n_kv(f));
        CHECK(gguf_str_eq(gguf_kv_at(f, 0)->key, "general.architecture") && gguf_str_eq(gguf_kv_at(f, 1)->key, "w.u32"),
              "key order");
        for (uint64_t i = 0; i < gguf_n_kv(src); i++) {
            const gguf_kv *a = gguf_kv_at(src, i), *c = gguf_kv_at(f, i + 2);
            CHECK(c && a->key.len == c->key.len && memcmp(a->key.ptr, c->key.ptr, a->key.len) == 0 &&
                      a->vtype == c->vtype && a->arr_type == c->arr_type && a->arr_n == c->arr_n &&
                      a->nbytes == c->nbytes && (a->nbytes == 0 || memcmp(a->data, c->data, a->nbytes) == 0),
                  "copied key %llu identical", (unsigned long long)i);
        }
        check_all_types(f, "written");
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
        float f32;
        bool bl = true;
        gguf_str s;
        CHECK(gguf_get_u32(f, "w.u32", &u32, &err) == 0 && u32 == 8, "replaced u32");
        CHECK(gguf_get_i64(f, "w.i32", &i64, &err) == 0 && i64 == -5, "w.i32");
        CHECK(gguf_get_u64(f, "w.u64", &u64, &err) == 0 && u64 == (1ull << 40), "w.u64");
        CHECK(gguf_get_f32(f, "w.f32", &f32, &err) == 0 && f32 == 0.25f, "w.f32");
        CHECK(gguf_get_bool(f, "w.bool", &bl, &err) == 0 && !bl, "w.bool");
        CHECK(gguf_get_str(f, "general.architecture", &s, &err) == 0 && gguf_str_eq(s, "testarch"), "arch");
        CHECK(gguf_find_kv(f, "w.gone") == NULL, "removed key absent");
        const gguf_kv *kv = gguf_find_kv(f, "w.farr");
        CHECK(kv && kv->arr_type == GGUF_VT_FLOAT32 && kv->arr_n == 5 && memcmp(kv->data, farr, sizeof farr) == 0,
              "w.farr");
        kv = gguf_find_kv(f, "w.toks");
        for (uint64_t i = 0; i < 3; i++)
            CHECK(kv && gguf_arr_str(f, kv, i, &s) == 0 && gguf_str_eq(s, toks[i]), "w.toks[%llu]",
                  (unsigned long long)i);
        kv = gguf_find_kv(f, "w.none");
        CHECK(kv && kv->arr_type == GGUF_VT_STRING && kv->arr_n == 0 && gguf_arr_str(f, kv, 0, &s) == -1, "w.none");
        gguf_close(f);
    }

    /* A larger alignment. */
    CHECK(gguf_writer_set_u32(w, "general.alignment", 64) == 0, "set alignment");
    CHECK(gguf_writer_write(w, path64, &err) == 0, "write align 64: %s", err.msg);
    check_written(path64, ts, nt, 64, "rt64");

    /* Bad alignments are refused at write time. */
    gguf_writer_set_u32(w, "general.alignment", 48);
    CHECK(gguf_writer_write(w, tmp_path("bad.gguf"), &err) == -1 && strstr(err.msg, "power of two"),
          "writer alignment 48: %s", err.msg);
    gguf_writer_set_u64(w, "general.alignment", 64);
    CHECK(gguf_writer_write(w, tmp_path("bad.gguf"), &err) == -1 && strstr(err.msg, "u32"),
          "writer alignment u64: %s", err.msg);
    CHECK(access(tmp_path("bad.gguf"), F_OK) != 0, "no file after refused write");
    gguf_writer_remove(w, "general.alignment");

    /* A failing fill callback: error passed up, target untouched, no temp file left. */
    int64_t ne1[1] = { 32 };
    CHECK(gguf_writer_add_tensor_fn(w, "fails", GGUF_TYPE_F32, 1, ne1, 128, fill_fail, NULL, &err) == 0, "add fails");
    CHECK(gguf_writer_write(w, path, &err) == -1 && strstr(err.msg, "fill refused") && strstr(err.msg, "fails"),
          "fill failure: %s", err.msg);
    check_written(path, ts, nt, 32, "rt after failed rewrite");
    DIR *dir = opendir(tmpdir);
    int n_tmp = 0;
    struct dirent *de;
    while (dir && (de = readdir(dir)))
        if (strstr(de->d_name, ".tmp-")) n_tmp++;
    if (dir) closedir(dir);
    CHECK(n_tmp == 0, "temporary files left behind: %d", n_tmp);

    CHECK(gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err) == -1 && err.code == SEEK_EIO, "unwritable path");
    gguf_writer_free(w);

    /* Every truncation of the written file must be rejected cleanly. */
    size_t len;
    char *whole = fs_read_all(path, &len, &err);
    CHECK(whole != NULL, "read back: %s", err.msg);
    int bad = 0;
    for (size_t n = 0; whole && n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, whole, n);
        gguf_file *g = gguf_open_mem(cut, n, &err);
        if (g || err.msg[0] == 0) bad++;
        gguf_close(g);
        free(cut);
    }
    CHECK(bad == 0, "%d truncations of a %zu-byte file were accepted", bad, len);
    free(whole);

    for (int i = 0; i < nt; i++) free(ts[i].data);
    gguf_close(src);
    free(copy);
    free(b.p);
}

/* ---- llama.cpp fixtures ------------------------------------------------------------- */


/* Re-writes src through the writer (all keys, all tensors, in order) to path. */
static int rewrite(const gguf_file *src, const char *path, seek_err *err) {
    gguf_writer *w = gguf_writer_new();
    int rc = 0;
    for (uint64_t i = 0; i < gguf_n_kv(src) && rc == 0; i++) rc = gguf_writer_copy_kv(w, src, gguf_kv_at(src, i));
    for (uint64_t i = 0; i < gguf_n_tensors(src) && rc == 0; i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        char name[256];
        gguf_str_copy(t->name, name, sizeof name);
        rc = gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes, err);
    }
    if (rc == 0) rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    return rc;
}

static void test_fixtures(void) {
    const char *dir = test_fixture_dir();
    CHECK(dir != NULL, "fixture directory not found (set SEEK_FIXTURES)");
    if (!dir) return;
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot list %s", dir);
    if (!d) return;
    int n_files = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 5, ".gguf") != 0) continue;
        n_files++;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        const char *arch = strncmp(de->d_name, "qwen2", 5) == 0 ? "qwen2" : "llama";
        seek_err err = { 0 };
        gguf_file *f = gguf_open(path, &err);
        CHECK(f != NULL, "%s: %s", de->d_name, err.msg);
        if (!f) continue;
        gguf_str s;
        uint32_t u32;
        CHECK(gguf_version(f) == 3 && gguf_alignment(f) == 32, "%s: version/alignment", de->d_name);
        CHECK(gguf_get_str(f, "general.architecture", &s, &err) == 0 && gguf_str_eq(s, arch), "%s: architecture",
              de->d_name);
        CHECK(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &u32, &err) == 0 && u32 == 8195, "%s: bos", de->d_name);
        char key[128];
        snprintf(key, sizeof key, "%s.embedding_length", arch);
        CHECK(gguf_get_u32(f, key, &u32, &err) == 0 && u32 == 256, "%s: %s", de->d_name, key);
        const gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
        CHECK(tok && tok->vtype == GGUF_VT_ARRAY && tok->arr_type == GGUF_VT_STRING && tok->arr_n == 8199,
              "%s: tokens array of 8199", de->d_name);
        if (tok) {
            CHECK(gguf_arr_str(f, tok, 0, &s) == 0 && gguf_str_eq(s, "!"), "%s: token 0", de->d_name);
            CHECK(gguf_arr_str(f, tok, 8192, &s) == 0 &&
                      gguf_str_eq(s, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"),
                  "%s: token 8192", de->d_name);
            CHECK(gguf_arr_str(f, tok, 8198, &s) == 0 && gguf_str_eq(s, "</think>"), "%s: token 8198", de->d_name);
            CHECK(gguf_arr_str(f, tok, 8199, &s) == -1, "%s: token 8199 out of range", de->d_name);
        }
        const gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
        int64_t ty;
        CHECK(tt && tt->arr_n == 8199 && gguf_arr_i64(tt, 0, &ty) == 0 && ty == 1, "%s: token_type", de->d_name);
        const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
        CHECK(emb && emb->ne[0] == 256 && emb->ne[1] == 8199 && emb->n_dims == 2, "%s: token_embd.weight shape",
              de->d_name);
        CHECK(gguf_find_tensor(f, "blk.1.ffn_down.weight") != NULL, "%s: blk.1.ffn_down.weight", de->d_name);
        CHECK(gguf_find_tensor(f, "blk.2.ffn_down.weight") == NULL, "%s: no blk.2", de->d_name);
        uint64_t end = 0;
        for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            CHECK(gguf_type_geometry(t->type, NULL, NULL), "%s: tensor type", de->d_name);
            if (t->offset + t->nbytes > end) end = t->offset + t->nbytes;
        }
        CHECK(end == gguf_file_size(f), "%s: last tensor ends at the end of the file", de->d_name);

        /* Our writer must reproduce what llama.cpp wrote, byte for byte. */
        const char *out = tmp_path("fixture-copy.gguf");
        CHECK(rewrite(f, out, &err) == 0, "%s: rewrite: %s", de->d_name, err.msg);
        size_t la, lb;
        char *a = fs_read_all(path, &la, &err), *b = fs_read_all(out, &lb, &err);
        CHECK(a && b && la == lb && memcmp(a, b, la) == 0, "%s: rewritten file differs from the original", de->d_name);
        free(a);
        free(b);
        unlink(out);
        gguf_close(f);
    }
    closedir(d);
    CHECK(n_files >= 6, "expected 6 fixture files in %s, found %d", dir, n_files);
}

/* ---- bad files --------------------------------------------------------------------- */

/* Each builder makes one malformed image; the table says what the error must mention. */
static void bad_magic(bytes *b) { b_u32(b, 0x58554747u); b_u32(b, 3); b_u64(b, 0); b_u64(b, 0); }
static void bad_v1(bytes *b) { b_header(b, 1, 0, 0); }
static void bad_v4(bytes *b) { b_header(b, 4, 0, 0); }
static void bad_big_endian(bytes *b) { b_header(b, 0x03000000u, 0, 0); }
static void bad_empty(bytes *b) { (void)b; }
static void bad_short(bytes *b) { b_u32(b, GGUF_MAGIC); b_u32(b, 3); b_u16(b, 0); }
static void bad_trunc_kv(bytes *b) { b_header(b, 3, 0, 1); b_str(b, "general.name"); b_u32(b, GGUF_VT_STRING); b_u32(b, 0); }
static void bad_strlen(bytes *b) { b_header(b, 3, 0, 1); b_u64(b, 1000); b_put(b, "abcdefghijklmnop", 16); }
static void bad_huge_nkv(bytes *b) { b_header(b, 3, 0, 1ull << 62); b_zeros(b, 64); }
static void bad_huge_nt(bytes *b) { b_header(b, 3, UINT64_MAX, 0); b_zeros(b, 64); }
static void bad_huge_arr(bytes *b) {
    b_header(b, 3, 0, 1); b_str(b, "arr"); b_u32(b, GGUF_VT_ARRAY); b_u32(b, GGUF_VT_UINT32); b_u64(b, 1ull << 61);
    b_zeros(b, 64);
}
static void bad_arr_overflow(bytes *b) { /* count * 8 wraps to 0 in 64 bits */
    b_header(b, 3, 0, 1); b_str(b, "arr"); b_u32(b, GGUF_VT_ARRAY); b_u32(b, GGUF_VT_UINT64); b_u64(b, 1ull << 61);
}
static void bad_huge_strarr(bytes *b) {
    b_header(b, 3, 0, 1); b_str(b, "toks"); b_u32(b, GGUF_VT_ARRAY); b_u32(b, GGUF_VT_STRING); b_u64(b, 1ull << 40);
    b_str(b, "a"); b_str(b, "b");
}
static void bad_strarr_elem(bytes *b) {
    b_header(b, 3, 0, 1); b_str(b, "toks"); b_u32(b, GGUF_VT_ARRAY); b_u32(b, GGUF_VT_STRING); b_u64(b, 3);
    b_str(b, "a"); b_u64(b, 99); b_str(b, "c");
}
static void bad_vtype(bytes *b) { b_header(b, 3, 0, 1); b_str(b, "k"); b_u32(b, 13); b_u64(b, 0); }
static void bad_arr_vtype(bytes *b) {
    b_header(b, 3, 0, 1); b_str(b, "k"); b_u32(b, GGUF_VT_ARRAY); b_u32(b, 77); b_u64(b, 0);
}
static void bad_arr_arr(bytes *b) {
    b_header(b, 3, 0, 1); b_str(b, "k"); b_u32(b, GGUF_VT_ARRAY); b_u32(b, GGUF_VT_ARRAY); b_u64(b, 1);
    b_u32(b, GGUF_VT_UINT8); b_u64(b, 1); b_u8(b, 0);
}
static void bad_dup_key(bytes *b) { b_header(b, 3, 0, 3); b_kv_u32(b, "a", 1); b_kv_u32(b, "b", 2); b_kv_u32(b, "a", 3); }

/* One tensor named "w" with the given shape/type/offset, default alignment, and `data` bytes
 * of data section. */
static void one_tensor(bytes *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off, size_t data) {
    b_header(b, 3, 1, 0);
    b_tinfo(b, "w", n_dims, ne, type, off);
    b_pad(b, 32);
    b_zeros(b, data);
}
static void bad_dup_tensor(bytes *b) {
    uint64_t ne[1] = { 8 };
    b_header(b, 3, 2, 0);
    b_tinfo(b, "w", 1, ne, GGUF_TYPE_F32, 0);
    b_tinfo(b, "w", 1, ne, GGUF_TYPE_F32, 32);
    b_pad(b, 32);
    b_zeros(b, 64);
}
static void bad_ndims0(bytes *b) { uint64_t ne[1] = { 8 }; one_tensor(b, 0, ne, GGUF_TYPE_F32, 0, 32); }
static void bad_ndims5(bytes *b) { uint64_t ne[5] = { 8, 1, 1, 1, 1 }; one_tensor(b, 5, ne, GGUF_TYPE_F32, 0, 32); }
static void bad_neg_ne(bytes *b) { uint64_t ne[2] = { 8, (uint64_t)-2 }; one_tensor(b, 2, ne, GGUF_TYPE_F32, 0, 32); }
static void bad_block(bytes *b) { uint64_t ne[2] = { 33, 1 }; one_tensor(b, 2, ne, GGUF_TYPE_Q4_0, 0, 64); }
static void bad_type_id(bytes *b) { uint64_t ne[1] = { 8 }; one_tensor(b, 1, ne, 99, 0, 32); }
static void bad_iq(bytes *b) { uint64_t ne[1] = { 256 }; one_tensor(b, 1, ne, GGUF_TYPE_IQ2_XXS, 0, 66); }
static void bad_misaligned(bytes *b) { uint64_t ne[1] = { 4 }; one_tensor(b, 1, ne, GGUF_TYPE_F32, 4, 64); }
static void bad_past_eof(bytes *b) { uint64_t ne[1] = { 8 }; one_tensor(b, 1, ne, GGUF_TYPE_F32, 32, 32); }
static void bad_size_past_eof(bytes *b) { uint64_t ne[1] = { 9 }; one_tensor(b, 1, ne, GGUF_TYPE_F32, 0, 32); }
static void bad_offset_wrap(bytes *b) { uint64_t ne[1] = { 8 }; one_tensor(b, 1, ne, GGUF_TYPE_F32, (uint64_t)-32, 32); }
static void bad_product(bytes *b) {
    uint64_t ne[3] = { 1ull << 32, 1ull << 32, 4 };
    one_tensor(b, 3, ne, GGUF_TYPE_F32, 0, 32);
}
static void bad_bytes_overflow(bytes *b) { /* 2^62 elements fit int64, 2^62 * 8 bytes do not fit u64 */
    uint64_t ne[2] = { 1ull << 31, 1ull << 31 };
    one_tensor(b, 2, ne, GGUF_TYPE_F64, 0, 32);
}
static void bad_overlap(bytes *b) {
    uint64_t ne_a[1] = { 16 }, ne_b[1] = { 8 };
    b_header(b, 3, 2, 0);
    b_tinfo(b, "first", 1, ne_a, GGUF_TYPE_F32, 0); /* bytes [0, 64) */
    b_tinfo(b, "second", 1, ne_b, GGUF_TYPE_F32, 32); /* bytes [32, 64) */
    b_pad(b, 32);
    b_zeros(b, 64);
}
static void with_alignment(bytes *b, uint32_t vtype, uint64_t a) {
    b_header(b, 3, 0, 1);
    b_str(b, "general.alignment");
    b_u32(b, vtype);
    if (vtype == GGUF_VT_UINT64) b_u64(b, a); else b_u32(b, (uint32_t)a);
}
static void bad_align0(bytes *b) { with_alignment(b, GGUF_VT_UINT32, 0); }
static void bad_align48(bytes *b) { with_alignment(b, GGUF_VT_UINT32, 48); }
static void bad_align_type(bytes *b) { with_alignment(b, GGUF_VT_UINT64, 64); }
static void bad_data_start(bytes *b) { /* zero-size tensor, but the data section would start past EOF */
    uint64_t ne[1] = { 0 };
    b_header(b, 3, 1, 0);
    b_tinfo(b, "w", 1, ne, GGUF_TYPE_F32, 0);
}
static void bad_tinfo_trunc(bytes *b) {
    b_header(b, 3, 1, 0);
    b_str(b, "w");
    b_u32(b, 2);
    b_u64(b, 8);
    b_zeros(b, 12); /* room for the count check, but ne[1], type and offset are missing */
}

static void test_bad_files(void) {
    static const struct {
        const char *what;
        void (*build)(bytes *);
        int code;
        const char *msg1, *msg2;
    } cases[] = {
        { "bad magic", bad_magic, SEEK_EFORMAT, "not a GGUF file", "47 47 55 58" },
        { "version 1", bad_v1, SEEK_EUNSUP, "version 1", "unsupported" },
        { "version 4", bad_v4, SEEK_EUNSUP, "version 4", "unsupported" },
        { "big-endian", bad_big_endian, SEEK_EUNSUP, "big-endian", "" },
        { "empty file", bad_empty, SEEK_EFORMAT, "too small", "0 bytes" },
        { "truncated header", bad_short, SEEK_EFORMAT, "too small", "10 bytes" },
        { "truncated kv", bad_trunc_kv, SEEK_EFORMAT, "truncated", "general.name" },
        { "string past EOF", bad_strlen, SEEK_EFORMAT, "string length 1000", "past end of file" },
        { "huge n_kv", bad_huge_nkv, SEEK_EFORMAT, "n_kv = 4611686018427387904", "cannot fit" },
        { "huge n_tensors", bad_huge_nt, SEEK_EFORMAT, "n_tensors = 18446744073709551615", "cannot fit" },
        { "huge array", bad_huge_arr, SEEK_EFORMAT, "key 'arr': array of 2305843009213693952 u32", "cannot fit" },
        { "array size wraps", bad_arr_overflow, SEEK_EFORMAT, "array of 2305843009213693952 u64", "cannot fit" },
        { "huge string array", bad_huge_strarr, SEEK_EFORMAT, "array of 1099511627776 string", "cannot fit" },
        { "string element past EOF", bad_strarr_elem, SEEK_EFORMAT, "key 'toks': string 1 of 3", "past end of file" },
        { "unknown vtype", bad_vtype, SEEK_EFORMAT, "key 'k'", "unknown value type 13" },
        { "unknown array vtype", bad_arr_vtype, SEEK_EFORMAT, "key 'k'", "array of unknown value type 77" },
        { "array of arrays", bad_arr_arr, SEEK_EUNSUP, "key 'k'", "arrays of arrays" },
        { "duplicate key", bad_dup_key, SEEK_EFORMAT, "duplicate key 'a'", "#0 and #2" },
        { "duplicate tensor", bad_dup_tensor, SEEK_EFORMAT, "duplicate tensor name 'w'", "#0 and #1" },
        { "n_dims 0", bad_ndims0, SEEK_EFORMAT, "tensor 'w'", "n_dims = 0 is out of range" },
        { "n_dims 5", bad_ndims5, SEEK_EFORMAT, "tensor 'w'", "n_dims = 5 is out of range" },
        { "negative ne", bad_neg_ne, SEEK_EFORMAT, "ne[1] = -2", "negative" },
        { "ne0 not multiple of block", bad_block, SEEK_EFORMAT, "ne[0] = 33", "Q4_0 block size 32" },
        { "unknown type id", bad_type_id, SEEK_EUNSUP, "tensor 'w'", "unknown tensor type id 99" },
        { "IQ type", bad_iq, SEEK_EUNSUP, "tensor 'w'", "type IQ2_XXS is not supported" },
        { "misaligned offset", bad_misaligned, SEEK_EFORMAT, "offset 4", "not a multiple of the alignment 32" },
        { "offset past EOF", bad_past_eof, SEEK_EFORMAT, "tensor 'w': data [offset 32, 32 bytes]", "past end of file" },
        { "size past EOF", bad_size_past_eof, SEEK_EFORMAT, "[offset 0, 36 bytes]", "past end of file" },
        { "offset wraps", bad_offset_wrap, SEEK_EFORMAT, "offset 18446744073709551584", "past end of file" },
        { "element count overflow", bad_product, SEEK_EFORMAT, "tensor 'w'", "overflows int64" },
        { "byte size overflow", bad_bytes_overflow, SEEK_EFORMAT, "tensor 'w'", "overflows" },
        { "overlapping tensors", bad_overlap, SEEK_EFORMAT, "'first'", "'second' [offset 32, 32 bytes] overlap" },
        { "alignment 0", bad_align0, SEEK_EFORMAT, "general.alignment = 0", "power of two" },
        { "alignment 48", bad_align48, SEEK_EFORMAT, "general.alignment = 48", "power of two" },
        { "alignment not u32", bad_align_type, SEEK_EFORMAT, "general.alignment", "expected u32" },
        { "data section past EOF", bad_data_start, SEEK_EFORMAT, "data section", "past end of file" },
        { "truncated tensor info", bad_tinfo_trunc, SEEK_EFORMAT, "truncated", "tensor 'w'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes b = { 0 };
        cases[i].build(&b);
        uint8_t *copy;
        seek_err err = { 0 };
        gguf_file *f = open_copy(&b, &copy, &err);
        CHECK(f == NULL, "%s: accepted", cases[i].what);
        gguf_close(f);
        CHECK(err.code == cases[i].code, "%s: code %d, want %d (%s)", cases[i].what, err.code, cases[i].code, err.msg);
        CHECK(strstr(err.msg, cases[i].msg1) && strstr(err.msg, cases[i].msg2), "%s: message \"%s\" lacks \"%s\"/\"%s\"",
              cases[i].what, err.msg, cases[i].msg1, cases[i].msg2);
        free(copy);
        free(b.p);
    }

    /* Things that look odd but are valid: zero-size tensors, a file with nothing after the
     * header, a hostile-looking but legal name. */
    bytes b = { 0 };
    uint64_t ne0[2] = { 0, 5 }, ne1[1] = { 8 };
    b_header(&b, 3, 2, 0);
    b_tinfo(&b, "zero", 2, ne0, GGUF_TYPE_Q4_K, 0);
    b_tinfo(&b, "\x01\xff\n", 1, ne1, GGUF_TYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 32);
    uint8_t *copy;
    seek_err err = { 0 };
    gguf_file *f = open_copy(&b, &copy, &err);
    CHECK(f != NULL, "zero-size tensor sharing an offset: %s", err.msg);
    if (f) {
        const gguf_tensor *z = gguf_find_tensor(f, "zero");
        CHECK(z && z->nbytes == 0 && z->ne[1] == 5, "zero-size tensor");
        CHECK(gguf_find_tensor(f, "\x01\xff\n") != NULL, "odd name");
        gguf_close(f);
    }
    free(copy);
    free(b.p);

    bytes e = { 0 };
    b_header(&e, 3, 0, 0);
    f = open_copy(&e, &copy, &err);
    CHECK(f != NULL && gguf_n_kv(f) == 0 && gguf_find_kv(f, "x") == NULL && gguf_find_tensor(f, "x") == NULL,
          "header-only file");
    gguf_close(f);
    free(copy);
    free(e.p);

    /* gguf_open error paths: missing file, directory, short file; the path is in the message. */
    CHECK(gguf_open(tmp_path("missing.gguf"), &err) == NULL && err.code == SEEK_ENOTFOUND &&
              strstr(err.msg, "missing.gguf"), "missing file: %s", err.msg);
    CHECK(gguf_open(tmpdir, &err) == NULL && err.code == SEEK_EIO, "directory: %s", err.msg);
    seek_err werr;
    CHECK(fs_write_atomic(tmp_path("short.gguf"), "GGUF\3\0\0\0", 8, &werr) == 0, "write short file");
    CHECK(gguf_open(tmp_path("short.gguf"), &err) == NULL && strstr(err.msg, "short.gguf") &&
              strstr(err.msg, "too small"), "short file: %s", err.msg);
    CHECK(fs_write_atomic(tmp_path("short.gguf"), "PK\3\4", 4, &werr) == 0, "write short file");
    CHECK(gguf_open(tmp_path("short.gguf"), &err) == NULL && strstr(err.msg, "not a GGUF file"), "zip: %s", err.msg);
    unlink(tmp_path("short.gguf"));
}

/* Removes the files this test wrote, then the directory. */
static void cleanup(void) {
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') unlink(tmp_path(de->d_name));
    if (d) closedir(d);
    rmdir(tmpdir);
}

int main(void) {
    rng_state = 0x9e3779b97f4a7c15ull;
    base_init();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/seek-test-gguf-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_types();
    test_all_types();
    test_v2_tensors();
    test_writer();
    test_fixtures();
    test_bad_files();
    cleanup();
    return check_done("test_gguf");
}
