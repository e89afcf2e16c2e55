/*
 * fuzz_gguf.c - a deterministic mutation fuzzer for the GGUF reader.
 *
 * Usage: fuzz_gguf [iterations (default 300)] [seed (default 1)]
 * With FUZZ_GGUF_VERBOSE set in the environment it prints every rejection message.
 *
 * Seed images: the llama.cpp-written fixtures ($SEEK_FIXTURES, else ../shared/fixtures/gguf
 * relative to the working directory, i.e. the repository root) when readable, plus a small file
 * written here with the GGUF writer (every value kind, several tensor types, alignment 64).
 *
 * Each iteration takes a seed, applies 1 to 4 mutations (fewer more often) and calls gguf_open_mem on the result,
 * which is placed in an exactly sized heap block so that ASan flags any read past its end:
 *   - truncate at a random point (half of the time inside the header/metadata region),
 *   - flip random bits (mostly in the header region, where the structure is),
 *   - overwrite a structural field (a count, a string length, a vtype, an array count, n_dims,
 *     an ne, a tensor type or offset; their positions are taken from parsing the seed) with an
 *     "interesting" value: 0, 1, huge, negative as u64, the file size, off by one, random,
 *   - overwrite 8 random bytes with such a value,
 *   - change bytes inside contents (key text, values, string elements, tensor names), which
 *     often leaves a valid file, so the accessors get exercised on odd data too,
 *   - splice in bytes from another seed, duplicate a region (insert a copy), delete a region.
 * When the mutated image loads, every key is touched through the getters and array accessors
 * (every element of every array), and the first and last byte of every tensor are read, and the
 * layout invariants are re-checked (data inside the file, aligned, nbytes = nb[3] * ne[3]).
 *
 * One CHECK per iteration: the call returned, with either a file whose invariants hold or a
 * non-empty error message.  A crash, hang or sanitizer report is the real failure signal.
 * The PRNG is splitmix64 with a fixed seed, so a run is reproducible.
 */
#include "gguf/gguf.h"

#include "check.h"
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- PRNG ---------------------------------------------------------------------------- */

/* Uniform in [0, n); n > 0. */
static uint64_t rnd(uint64_t n) { return rng_u64() % n; }

/* ---- seeds -------------------------------------------------------------------------- */

typedef struct field {
    uint64_t pos;
    uint32_t width; /* 4 or 8 */
} field;

typedef struct seed {
    char name[64];
    uint8_t *data;
    size_t len;
    uint64_t meta_end; /* end of the header + metadata + tensor infos (= data section start) */
    field *fields;     /* positions of structural fields, from parsing the seed */
    size_t n_fields, cap_fields;
    field *payloads;   /* byte ranges of contents (key text, values, names): pos + length */
    size_t n_payloads, cap_payloads;
} seed;

#define MAX_SEEDS 16
static seed seeds[MAX_SEEDS];
static int n_seeds;

static void add_field(seed *s, uint64_t pos, uint32_t width) {
    if (pos + width > s->len) return;
    if (s->n_fields == s->cap_fields) {
        s->cap_fields = s->cap_fields ? s->cap_fields * 2 : 256;
        s->fields = realloc(s->fields, s->cap_fields * sizeof *s->fields);
        if (!s->fields) abort();
    }
    s->fields[s->n_fields++] = (field){ pos, width };
}

static void add_payload(seed *s, const void *p, uint64_t len) {
    uint64_t pos = (uint64_t)((const uint8_t *)p - s->data);
    if (len == 0 || len > UINT32_MAX || pos + len > s->len) return;
    if (s->n_payloads == s->cap_payloads) {
        s->cap_payloads = s->cap_payloads ? s->cap_payloads * 2 : 256;
        s->payloads = realloc(s->payloads, s->cap_payloads * sizeof *s->payloads);
        if (!s->payloads) abort();
    }
    s->payloads[s->n_payloads++] = (field){ pos, (uint32_t)len };
}

/* Parses the seed and records where its structural fields and contents are. */
static bool index_seed(seed *s) {
    seek_err err = { 0 };
    gguf_file *f = gguf_open_mem(s->data, s->len, &err);
    if (!f) {
        printf("seed %s does not load: %s\n", s->name, err.msg);
        return false;
    }
    const uint8_t *b = s->data;
    s->meta_end = gguf_data_offset(f);
    add_field(s, 4, 4);  /* version */
    add_field(s, 8, 8);  /* n_tensors */
    add_field(s, 16, 8); /* n_kv */
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        uint64_t key_at = (uint64_t)((const uint8_t *)kv->key.ptr - b);
        add_field(s, key_at - 8, 8);           /* key length */
        add_payload(s, kv->key.ptr, kv->key.len);
        add_field(s, key_at + kv->key.len, 4); /* vtype */
        uint64_t val = (uint64_t)(kv->data - b);
        if (kv->vtype == GGUF_VT_STRING) {
            add_field(s, val, 8);
            add_payload(s, kv->data + 8, kv->nbytes - 8);
        } else if (kv->vtype != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING) {
            add_payload(s, kv->data, kv->nbytes);
        }
        if (kv->vtype == GGUF_VT_ARRAY) {
            add_field(s, val - 12, 4); /* element type */
            add_field(s, val - 8, 8);  /* count */
            if (kv->arr_type == GGUF_VT_STRING) {
                for (uint64_t k = 0; k < kv->arr_n; k++) {
                    if (k >= 4 && k + 4 < kv->arr_n && rnd(256) != 0) continue; /* ends + a sample */
                    gguf_str e;
                    if (gguf_arr_str(f, kv, k, &e) != 0) continue;
                    add_field(s, (uint64_t)((const uint8_t *)e.ptr - b) - 8, 8);
                    add_payload(s, e.ptr, e.len);
                }
            }
        }
    }
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t name_at = (uint64_t)((const uint8_t *)t->name.ptr - b);
        uint64_t p = name_at + t->name.len;
        add_field(s, name_at - 8, 8); /* name length */
        add_payload(s, t->name.ptr, t->name.len);
        add_field(s, p, 4);           /* n_dims */
        for (uint32_t d = 0; d < t->n_dims; d++) add_field(s, p + 4 + 8 * d, 8);
        add_field(s, p + 4 + 8 * t->n_dims, 4);     /* type */
        add_field(s, p + 4 + 8 * t->n_dims + 4, 8); /* offset */
    }
    gguf_close(f);
    return true;
}

static void add_seed(const char *name, uint8_t *data, size_t len) {
    if (n_seeds == MAX_SEEDS) {
        free(data);
        return;
    }
    seed *s = &seeds[n_seeds];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->data = data;
    s->len = len;
    if (index_seed(s)) {
        n_seeds++;
    } else {
        free(s->fields);
        free(s->payloads);
        free(data);
    }
}


static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

static void load_fixture_seeds(void) {
    const char *dir = test_fixture_dir();
    if (!dir) {
        printf("fuzz_gguf: no fixture directory; using the built-in seed only\n");
        return;
    }
    DIR *d = opendir(dir);
    if (!d) return;
    /* Sorted names keep the run deterministic whatever order readdir returns. */
    char names[MAX_SEEDS][256];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < MAX_SEEDS - 1) {
        size_t nl = strlen(de->d_name);
        if (nl > 5 && nl < 256 && strcmp(de->d_name + nl - 5, ".gguf") == 0) snprintf(names[n++], 256, "%s", de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_name);
    for (int i = 0; i < n; i++) {
        char path[1024];
        if (snprintf(path, sizeof path, "%.500s/%.255s", dir, names[i]) >= (int)sizeof path) continue;
        size_t len;
        seek_err err;
        char *data = fs_read_all(path, &len, &err);
        if (data) add_seed(names[i], (uint8_t *)data, len);
    }
}

static int fill_pattern(void *ctx, void *dst, uint64_t nbytes, seek_err *err) {
    for (uint64_t i = 0; i < nbytes; i++) ((uint8_t *)dst)[i] = (uint8_t)(i * 7 + 3);
    return 0;
}

/* A small image with every kind of value and several tensor types, written by our writer. */
static void make_own_seed(void) {
    char dir[] = "/tmp/seek-fuzz-gguf-XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[256];
    snprintf(path, sizeof path, "%s/seed.gguf", dir);
    gguf_writer *w = gguf_writer_new();
    seek_err err = { 0 };
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "general.alignment", 64);
    gguf_writer_set_u32(w, "llama.block_count", 2);
    gguf_writer_set_i32(w, "x.i32", -7);
    gguf_writer_set_u64(w, "x.u64", 1ull << 50);
    gguf_writer_set_f32(w, "x.f32", 1e-5f);
    gguf_writer_set_bool(w, "x.bool", true);
    const char *toks[12] = { "a", "bb", "", "<s>", "</s>", "\xc4\xa0the", "x", "yy", "zzz", "0", "1", "end" };
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 12);
    int32_t types[12] = { 1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1 };
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, 12);
    float scores[5] = { 0.5f, -1, 2, 3, 4 };
    gguf_writer_set_arr(w, "x.scores", GGUF_VT_FLOAT32, scores, 5);
    uint8_t u8s[3] = { 1, 2, 3 };
    gguf_writer_set_arr(w, "x.u8s", GGUF_VT_UINT8, u8s, 3);
    double f64s[2] = { 1.0, -2.0 };
    gguf_writer_set_arr(w, "x.f64s", GGUF_VT_FLOAT64, f64s, 2);
    static const struct { const char *name; uint32_t type, n_dims; int64_t ne[4]; } ts[] = {
        { "token_embd.weight", GGUF_TYPE_Q8_0, 2, { 64, 12, 1, 1 } },
        { "norm.weight", GGUF_TYPE_F32, 1, { 64, 1, 1, 1 } },
        { "blk.0.q4_0", GGUF_TYPE_Q4_0, 2, { 64, 3, 1, 1 } },
        { "blk.0.q4_k", GGUF_TYPE_Q4_K, 2, { 256, 2, 1, 1 } },
        { "blk.0.f16", GGUF_TYPE_F16, 3, { 5, 2, 2, 1 } },
        { "blk.0.q6_k", GGUF_TYPE_Q6_K, 4, { 256, 1, 1, 2 } },
    };
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        uint64_t nbytes = gguf_row_bytes(ts[i].type, (uint64_t)ts[i].ne[0]) * (uint64_t)(ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3]);
        if (gguf_writer_add_tensor_fn(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, nbytes, fill_pattern, NULL,
                                      &err) != 0)
            printf("fuzz_gguf: own seed: %s\n", err.msg);
    }
    if (gguf_writer_write(w, path, &err) == 0) {
        size_t len;
        char *data = fs_read_all(path, &len, &err);
        if (data) add_seed("own", (uint8_t *)data, len);
    } else {
        printf("fuzz_gguf: own seed: %s\n", err.msg);
    }
    gguf_writer_free(w);
    unlink(path);
    rmdir(dir);
}

/* ---- mutations ---------------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void buf_reserve(buf *b, size_t n) {
    if (n <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < n) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) abort();
    b->cap = cap;
}

static uint64_t interesting_u64(uint64_t old, uint64_t size) {
    switch (rnd(14)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return UINT64_MAX;
    case 3: return 1ull << 63;
    case 4: return (uint64_t)INT64_MAX;
    case 5: return size;
    case 6: return size - 1;
    case 7: return size + 1;
    case 8: return old + 1;
    case 9: return old - 1;
    case 10: return 1ull << 32;
    case 11: return (uint64_t)-(int64_t)(rnd(64) + 1);
    case 12: return old * 2;
    default: return rng_u64() >> rnd(64);
    }
}

static uint32_t interesting_u32(uint32_t old) {
    switch (rnd(12)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return UINT32_MAX;
    case 3: return old + 1;
    case 4: return old - 1;
    case 5: return GGUF_VT_ARRAY;
    case 6: return GGUF_VT_STRING;
    case 7: return GGUF_VT_COUNT;
    case 8: return 5; /* n_dims 5 */
    case 9: return (uint32_t)rnd(GGUF_TYPE_COUNT + 2); /* some tensor type id */
    case 10: return 1u << 31;
    default: return (uint32_t)rng_u64();
    }
}

/* A position, biased towards the metadata region where the structure is. */
static size_t pick_pos(const buf *b, const seed *s) {
    if (b->n == 0) return 0;
    uint64_t meta = s->meta_end < b->n ? s->meta_end : b->n;
    if (meta > 0 && rnd(4) != 0) return (size_t)rnd(meta);
    return (size_t)rnd(b->n);
}

static void mutate(buf *b, const seed *s) {
    switch (rnd(10)) {
    case 8:
    case 9: { /* change content bytes (text, numbers): often still a valid file */
        if (s->n_payloads == 0) break;
        field pl = s->payloads[rnd(s->n_payloads)];
        int k = 1 + (int)rnd(3);
        for (int i = 0; i < k; i++) {
            uint64_t at = pl.pos + rnd(pl.width);
            static const uint8_t vals[] = { 0, 0xff, 0x80, '.', 'a', 0x7f, 1 };
            if (at < b->n) b->p[at] = rnd(2) ? vals[rnd(sizeof vals)] : (uint8_t)rng_u64();
        }
        break;
    }
    case 0: /* truncate */
        if (b->n) b->n = pick_pos(b, s);
        break;
    case 1: { /* flip bits */
        int k = 1 + (int)rnd(8);
        for (int i = 0; i < k && b->n; i++) b->p[pick_pos(b, s)] ^= (uint8_t)(1u << rnd(8));
        break;
    }
    case 2:
    case 3: { /* overwrite a structural field (twice as likely: it is the most productive) */
        if (s->n_fields == 0) break;
        field fl = s->fields[rnd(s->n_fields)];
        if (fl.pos + fl.width > b->n) break;
        if (fl.width == 8) {
            uint64_t old;
            memcpy(&old, b->p + fl.pos, 8);
            uint64_t v = interesting_u64(old, b->n);
            memcpy(b->p + fl.pos, &v, 8);
        } else {
            uint32_t old;
            memcpy(&old, b->p + fl.pos, 4);
            uint32_t v = interesting_u32(old);
            memcpy(b->p + fl.pos, &v, 4);
        }
        break;
    }
    case 4: { /* overwrite 8 random bytes with an interesting value */
        if (b->n < 8) break;
        size_t at = pick_pos(b, s);
        if (at > b->n - 8) at = b->n - 8;
        uint64_t old;
        memcpy(&old, b->p + at, 8);
        uint64_t v = interesting_u64(old, b->n);
        memcpy(b->p + at, &v, 8);
        break;
    }
    case 5: { /* splice: overwrite with bytes from another seed */
        const seed *o = &seeds[rnd((uint64_t)n_seeds)];
        if (!b->n || !o->len) break;
        size_t from = (size_t)rnd(o->meta_end ? o->meta_end : o->len), at = pick_pos(b, s);
        size_t n = 1 + (size_t)rnd(64);
        if (from + n > o->len) n = o->len - from;
        if (at + n > b->n) n = b->n - at;
        memcpy(b->p + at, o->data + from, n);
        break;
    }
    case 6: { /* duplicate a region: insert a copy of [from, from + n) at `at` */
        if (!b->n) break;
        size_t from = pick_pos(b, s), at = pick_pos(b, s);
        size_t n = 1 + (size_t)rnd(rnd(2) ? 16 : 256);
        if (from + n > b->n) n = b->n - from;
        buf_reserve(b, b->n + n);
        uint8_t tmp[256];
        memcpy(tmp, b->p + from, n);
        memmove(b->p + at + n, b->p + at, b->n - at);
        memcpy(b->p + at, tmp, n);
        b->n += n;
        break;
    }
    default: { /* delete a region */
        if (!b->n) break;
        size_t at = pick_pos(b, s);
        size_t n = 1 + (size_t)rnd(rnd(2) ? 16 : 256);
        if (at + n > b->n) n = b->n - at;
        memmove(b->p + at, b->p + at + n, b->n - at - n);
        b->n -= n;
        break;
    }
    }
}

/* ---- using a loaded file ------------------------------------------------------------- */

static volatile uint64_t sink; /* keeps the reads from being optimized away */

/* Touches everything the API hands out; returns false if an invariant does not hold. */
static bool exercise(const gguf_file *f, const uint8_t *img, size_t len) {
    bool ok = true;
    uint64_t acc = 0;
    seek_err err;
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (kv->key.len) acc += (uint8_t)kv->key.ptr[0] + (uint8_t)kv->key.ptr[kv->key.len - 1];
        if (kv->nbytes) acc += kv->data[0] + kv->data[kv->nbytes - 1];
        ok = ok && (const uint8_t *)kv->key.ptr >= img && (const uint8_t *)kv->key.ptr + kv->key.len <= img + len;
        ok = ok && kv->data >= img && kv->data + kv->nbytes <= img + len;
        char key[256];
        if (kv->key.len < sizeof key && memchr(kv->key.ptr, 0, (size_t)kv->key.len) == NULL) {
            gguf_str_copy(kv->key, key, sizeof key);
            ok = ok && gguf_find_kv(f, key) == kv;
            uint32_t u32;
            uint64_t u64;
            int64_t i64;
            float f32;
            bool bl;
            gguf_str s;
            acc += (uint64_t)gguf_get_u32(f, key, &u32, &err) + (uint64_t)gguf_get_u64(f, key, &u64, &err);
            acc += (uint64_t)gguf_get_i64(f, key, &i64, &err) + (uint64_t)gguf_get_f32(f, key, &f32, &err);
            acc += (uint64_t)gguf_get_bool(f, key, &bl, &err);
            if (gguf_get_str(f, key, &s, &err) == 0 && s.len) acc += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
        }
        if (kv->vtype != GGUF_VT_ARRAY) continue;
        for (uint64_t k = 0; k < kv->arr_n; k++) {
            gguf_str s;
            int64_t iv;
            float fv;
            if (kv->arr_type == GGUF_VT_STRING) {
                if (gguf_arr_str(f, kv, k, &s) != 0) {
                    ok = false;
                } else if (s.len) {
                    ok = ok && (const uint8_t *)s.ptr >= img && (const uint8_t *)s.ptr + s.len <= img + len;
                    acc += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
                }
            } else {
                acc += (uint64_t)gguf_arr_i64(kv, k, &iv) + (uint64_t)gguf_arr_f32(kv, k, &fv);
            }
        }
        gguf_str s;
        int64_t iv;
        ok = ok && gguf_arr_str(f, kv, kv->arr_n, &s) == -1 && gguf_arr_i64(kv, kv->arr_n, &iv) == -1;
    }
    uint64_t data0 = gguf_data_offset(f), align = gguf_alignment(f);
    ok = ok && align != 0 && (align & (align - 1)) == 0 && data0 % align == 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        ok = ok && t->offset >= data0 && t->offset <= len && t->nbytes <= len - t->offset;
        ok = ok && (t->offset - data0) % align == 0 && t->nbytes == t->nb[3] * (uint64_t)t->ne[3];
        ok = ok && t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS && (const uint8_t *)t->data == img + t->offset;
        if (t->nbytes) {
            const uint8_t *d = t->data;
            acc += d[0] + d[t->nbytes - 1];
        }
        char name[256];
        if (t->name.len < sizeof name && memchr(t->name.ptr, 0, (size_t)t->name.len) == NULL) {
            gguf_str_copy(t->name, name, sizeof name);
            ok = ok && gguf_find_tensor(f, name) == t;
        }
    }
    sink += acc;
    return ok;
}

int main(int argc, char **argv) {
    base_init();
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 300;
    uint64_t seed0 = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    if (iters < 0) iters = 0;
    rng_state = seed0 * 0x2545f4914f6cdd1dull;

    load_fixture_seeds();
    make_own_seed();
    CHECK(n_seeds > 0, "no seed image could be loaded");
    if (n_seeds == 0) return check_done("fuzz_gguf");
    printf("fuzz_gguf: %d seed images:", n_seeds);
    for (int i = 0; i < n_seeds; i++) printf(" %s(%zu fields)", seeds[i].name, seeds[i].n_fields);
    printf("\n");

    bool verbose = getenv("FUZZ_GGUF_VERBOSE") != NULL; /* print every rejection message */
    buf b = { 0 };
    long loaded = 0, rejected = 0;
    for (long it = 0; it < iters; it++) {
        /* The small own seed is cheap and dense in structure: use it half of the time. */
        const seed *s = rnd(2) ? &seeds[n_seeds - 1] : &seeds[rnd((uint64_t)n_seeds)];
        buf_reserve(&b, s->len);
        memcpy(b.p, s->data, s->len);
        b.n = s->len;
        int n_mut = 1; /* 1 to 4 mutations, fewer more often */
        while (n_mut < 4 && rnd(2)) n_mut++;
        for (int m = 0; m < n_mut; m++) mutate(&b, s);

        uint8_t *img = malloc(b.n ? b.n : 1); /* exactly sized, so over-reads are caught */
        if (!img) abort();
        memcpy(img, b.p, b.n);
        seek_err err = { 0 };
        gguf_file *f = gguf_open_mem(img, b.n, &err);
        bool ok;
        if (f) {
            loaded++;
            ok = exercise(f, img, b.n);
            gguf_close(f);
        } else {
            rejected++;
            ok = err.msg[0] != 0 && err.code != SEEK_OK;
            if (verbose) printf("iteration %ld: %s\n", it, err.msg);
        }
        CHECK(ok, "iteration %ld (seed %s, %zu bytes): %s", it, s->name, b.n,
              f ? "loaded file breaks an invariant" : "rejected without a message");
        free(img);
    }
    printf("fuzz_gguf: %ld mutated images: %ld loaded, %ld rejected\n", iters, loaded, rejected);

    free(b.p);
    for (int i = 0; i < n_seeds; i++) {
        free(seeds[i].data);
        free(seeds[i].fields);
        free(seeds[i].payloads);
    }
    return check_done("fuzz_gguf");
}
