/*
 * gguf_writer.c - builds GGUF v3 files.
 *
 * What it is: an in-memory list of key/value pairs (copied in, already serialized to their file
 * form) and of tensor records (name, type, shape and either a data pointer the caller keeps
 * alive or a fill callback), written out in insertion order by gguf_writer_write().
 * What it is not: a quantizer or a converter; it writes exactly the bytes it is given.
 *
 * Output layout (see gguf.h for the field formats):
 *   header "GGUF", 3, n_tensors, n_kv
 *   key/value pairs, in insertion order (a replaced key keeps its original position)
 *   tensor infos, in insertion order; offset_i = round_up(offset_{i-1} + nbytes_{i-1}, A)
 *   zero padding to A, then each tensor's bytes, zero padded to A between tensors
 * where A = general.alignment if set (must be a u32 power of two), else 32.
 *
 * The file is streamed: only one tensor's bytes (for fill-callback tensors) are held in memory
 * at a time.  It is written to a temporary file in the target's directory, fsync'ed, then
 * renamed over the target, so readers never see a half-written model.
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct wkv {
    char *key;
    uint32_t vtype;
    uint32_t arr_type;
    uint64_t arr_n;
    uint8_t *data; /* the value exactly as stored in the file (strings: u64 length + bytes) */
    uint64_t nbytes;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    const void *data;  /* caller's bytes, or NULL when fill is set */
    gguf_fill_fn fill;
    void *ctx;
} wtensor;

struct gguf_writer {
    wkv *kvs;
    uint64_t n_kv, cap_kv;
    wtensor *tensors;
    uint64_t n_tensors, cap_tensors;
};

gguf_writer *gguf_writer_new(void) { return calloc(1, sizeof(gguf_writer)); }

static void wkv_clear(wkv *kv) {
    free(kv->key);
    free(kv->data);
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) wkv_clear(&w->kvs[i]);
    for (uint64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

static wkv *find_key(gguf_writer *w, const char *key) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) return &w->kvs[i];
    return NULL;
}

/* Stores a value; takes ownership of data (freed here on failure). */
static int set_value(gguf_writer *w, const char *key, uint32_t vtype, uint32_t arr_type, uint64_t arr_n,
                     uint8_t *data, uint64_t nbytes) {
    if (!w || !key) {
        free(data);
        return -1;
    }
    wkv *kv = find_key(w, key);
    if (!kv) {
        if (w->n_kv == w->cap_kv) {
            uint64_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
            wkv *nk = realloc(w->kvs, cap * sizeof *nk);
            if (!nk) {
                free(data);
                return -1;
            }
            w->kvs = nk;
            w->cap_kv = cap;
        }
        char *k = strdup(key);
        if (!k) {
            free(data);
            return -1;
        }
        kv = &w->kvs[w->n_kv++];
        kv->key = k;
    } else {
        free(kv->data);
    }
    kv->vtype = vtype;
    kv->arr_type = arr_type;
    kv->arr_n = arr_n;
    kv->data = data;
    kv->nbytes = nbytes;
    return 0;
}

/* Copies n bytes into a fresh heap block (a 1-byte block for n == 0, so NULL means failure). */
static uint8_t *dup_bytes(const void *p, uint64_t n) {
    if (n > SIZE_MAX) return NULL;
    uint8_t *d = malloc(n ? (size_t)n : 1);
    if (d && n) memcpy(d, p, (size_t)n);
    return d;
}

static int set_scalar(gguf_writer *w, const char *key, uint32_t vtype, const void *v, uint64_t n) {
    uint8_t *d = dup_bytes(v, n);
    if (!d) return -1;
    return set_value(w, key, vtype, 0, 0, d, n);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, GGUF_VT_UINT32, &v, 4); }
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, GGUF_VT_INT32, &v, 4); }
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, GGUF_VT_UINT64, &v, 8); }
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) { return set_scalar(w, key, GGUF_VT_FLOAT32, &v, 4); }

int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, GGUF_VT_BOOL, &b, 1);
}

/* Serializes strs[0..n) as consecutive gguf strings (u64 length + bytes). */
static uint8_t *pack_strings(const char *const *strs, uint64_t n, uint64_t *nbytes) {
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i] || !size_add(total, 8 + (uint64_t)strlen(strs[i]), &total)) return NULL;
    }
    uint8_t *d = total <= SIZE_MAX ? malloc(total ? (size_t)total : 1) : NULL;
    if (!d) return NULL;
    uint8_t *p = d;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = strlen(strs[i]);
        memcpy(p, &len, 8);
        memcpy(p + 8, strs[i], len);
        p += 8 + len;
    }
    *nbytes = total;
    return d;
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!v) return -1;
    uint64_t nbytes;
    uint8_t *d = pack_strings(&v, 1, &nbytes);
    if (!d) return -1;
    return set_value(w, key, GGUF_VT_STRING, 0, 0, d, nbytes);
}

static uint32_t elem_size(uint32_t vt) {
    static const uint8_t sz[GGUF_VT_COUNT] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    return vt < GGUF_VT_COUNT ? sz[vt] : 0;
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n) {
    uint32_t es = elem_size(elem_type);
    uint64_t nbytes;
    if (es == 0 || !size_mul(n, es, &nbytes) || (!data && n > 0)) return -1;
    uint8_t *d = dup_bytes(data, nbytes);
    if (!d) return -1;
    return set_value(w, key, GGUF_VT_ARRAY, elem_type, n, d, nbytes);
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if (!strs && n > 0) return -1;
    uint64_t nbytes = 0;
    uint8_t *d = pack_strings(strs, n, &nbytes);
    if (!d) return -1;
    return set_value(w, key, GGUF_VT_ARRAY, GGUF_VT_STRING, n, d, nbytes);
}

/* The reader's kv->data/nbytes are the value's raw file bytes, which is also our stored form. */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, const gguf_kv *kv) {
    if (!kv || kv->key.len >= SIZE_MAX) return -1;
    char *key = malloc((size_t)kv->key.len + 1);
    if (!key) return -1;
    gguf_str_copy(kv->key, key, (size_t)kv->key.len + 1);
    if (strlen(key) != kv->key.len) { /* keys with NUL bytes cannot be addressed by name */
        free(key);
        return -1;
    }
    uint8_t *d = dup_bytes(kv->data, kv->nbytes);
    int rc = d ? set_value(w, key, kv->vtype, kv->arr_type, kv->arr_n, d, kv->nbytes) : -1;
    free(key);
    return rc;
}

int gguf_writer_remove(gguf_writer *w, const char *key) {
    wkv *kv = w && key ? find_key(w, key) : NULL;
    if (!kv) return -1;
    uint64_t i = (uint64_t)(kv - w->kvs);
    wkv_clear(kv);
    memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *kv);
    w->n_kv--;
    return 0;
}

/* ---- tensors ----------------------------------------------------------------------- */

/* Checks name, type and shape and computes the byte size that type and ne imply. */
static int tensor_size(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                       uint64_t *nbytes, seek_err *err) {
    if (!w || !name || !ne) return err_set(err, SEEK_EINVAL, "gguf writer: NULL argument");
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return err_set(err, SEEK_EINVAL, "tensor '%s' added twice", name);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return err_set(err, SEEK_EINVAL, "tensor '%s': n_dims = %u is out of range 1..%d", name, n_dims, GGUF_MAX_DIMS);
    uint32_t be, bb;
    if (!gguf_type_geometry(type, &be, &bb))
        return err_set(err, SEEK_EUNSUP, "tensor '%s': type %s is not supported (type id %u)", name,
                       gguf_type_name(type), type);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return err_set(err, SEEK_EINVAL, "tensor '%s': ne[%u] = %lld is negative", name, d, (long long)ne[d]);
        if (!size_mul(n, (uint64_t)ne[d], &n) || n > (uint64_t)INT64_MAX)
            return err_set(err, SEEK_EINVAL, "tensor '%s': element count overflows", name);
    }
    if (ne[0] % be != 0)
        return err_set(err, SEEK_EINVAL, "tensor '%s': ne[0] = %lld is not a multiple of the %s block size %u", name,
                       (long long)ne[0], gguf_type_name(type), be);
    if (!size_mul(n / be, bb, nbytes)) return err_set(err, SEEK_EINVAL, "tensor '%s': size overflows", name);
    return 0;
}

static int add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                      const void *data, uint64_t nbytes, gguf_fill_fn fill, void *ctx, seek_err *err) {
    uint64_t want = 0;
    if (tensor_size(w, name, type, n_dims, ne, &want, err) != 0) return -1;
    if (nbytes != want)
        return err_set(err, SEEK_EINVAL, "tensor '%s': %llu bytes given, but %s with this shape needs %llu", name,
                       (unsigned long long)nbytes, gguf_type_name(type), (unsigned long long)want);
    if (!fill && !data && nbytes > 0) return err_set(err, SEEK_EINVAL, "tensor '%s': NULL data", name);
    if (w->n_tensors == w->cap_tensors) {
        uint64_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *nt = realloc(w->tensors, cap * sizeof *nt);
        if (!nt) return err_set(err, SEEK_ENOMEM, "out of memory");
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    wtensor t = { .name = strdup(name), .type = type, .n_dims = n_dims, .nbytes = nbytes,
                  .data = data, .fill = fill, .ctx = ctx };
    if (!t.name) return err_set(err, SEEK_ENOMEM, "out of memory");
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    w->tensors[w->n_tensors++] = t;
    return 0;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                           const void *data, uint64_t nbytes, seek_err *err) {
    return add_tensor(w, name, type, n_dims, ne, data, nbytes, NULL, NULL, err);
}

int gguf_writer_add_tensor_fn(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                              uint64_t nbytes, gguf_fill_fn fill, void *ctx, seek_err *err) {
    if (!fill) return err_set(err, SEEK_EINVAL, "tensor '%s': NULL fill callback", name ? name : "?");
    return add_tensor(w, name, type, n_dims, ne, NULL, nbytes, fill, ctx, err);
}

/* ---- writing ----------------------------------------------------------------------- */

typedef struct out {
    FILE *fp;
    uint64_t pos;
    bool failed;
} out;

static void put(out *o, const void *p, uint64_t n) {
    if (o->failed || n == 0) return;
    if (fwrite(p, 1, (size_t)n, o->fp) != n) o->failed = true;
    o->pos += n;
}
static void put_u32(out *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(out *o, uint64_t v) { put(o, &v, 8); }
static void put_str(out *o, const char *s) {
    uint64_t n = strlen(s);
    put_u64(o, n);
    put(o, s, n);
}
static void pad_to(out *o, uint64_t align) {
    static const uint8_t zeros[256];
    uint64_t n = (align - o->pos % align) % align;
    while (n > 0) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        put(o, zeros, k);
        n -= k;
    }
}

static int alignment_of(gguf_writer *w, uint32_t *align, seek_err *err) {
    *align = GGUF_DEFAULT_ALIGNMENT;
    wkv *kv = find_key(w, "general.alignment");
    if (!kv) return 0;
    if (kv->vtype != GGUF_VT_UINT32) return err_set(err, SEEK_EINVAL, "general.alignment must be a u32");
    uint32_t a;
    memcpy(&a, kv->data, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return err_set(err, SEEK_EINVAL, "general.alignment = %u is not a non-zero power of two", a);
    *align = a;
    return 0;
}

/* Writes everything to o; returns 0 or -1 with err set. */
static int write_body(gguf_writer *w, out *o, uint32_t align, seek_err *err) {
    put_u32(o, GGUF_MAGIC);
    put_u32(o, 3);
    put_u64(o, w->n_tensors);
    put_u64(o, w->n_kv);
    for (uint64_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kvs[i];
        put_str(o, kv->key);
        put_u32(o, kv->vtype);
        if (kv->vtype == GGUF_VT_ARRAY) {
            put_u32(o, kv->arr_type);
            put_u64(o, kv->arr_n);
        }
        put(o, kv->data, kv->nbytes);
    }
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        put_str(o, t->name);
        put_u32(o, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(o, (uint64_t)t->ne[d]);
        put_u32(o, t->type);
        put_u64(o, off);
        if (!size_add(off, t->nbytes, &off) || !size_add(off, (align - off % align) % align, &off))
            return err_set(err, SEEK_EINVAL, "tensor data offsets overflow");
    }
    pad_to(o, align); /* the data section starts here; offsets above are relative to it */

    void *buf = NULL;
    uint64_t buf_cap = 0;
    int rc = 0;
    for (uint64_t i = 0; i < w->n_tensors && rc == 0 && !o->failed; i++) {
        const wtensor *t = &w->tensors[i];
        pad_to(o, align);
        if (!t->fill) {
            put(o, t->data, t->nbytes);
            continue;
        }
        if (t->nbytes > buf_cap) {
            mem_free(buf);
            buf = t->nbytes <= SIZE_MAX ? mem_alloc((size_t)t->nbytes) : NULL;
            buf_cap = buf ? t->nbytes : 0;
            if (!buf) {
                rc = err_set(err, SEEK_ENOMEM, "tensor '%s': cannot allocate %llu bytes", t->name,
                             (unsigned long long)t->nbytes);
                break;
            }
        }
        if (t->fill(t->ctx, buf, t->nbytes, err) != 0) {
            err_prefix(err, "tensor '%s'", t->name);
            rc = -1;
            break;
        }
        put(o, buf, t->nbytes);
    }
    mem_free(buf);
    return rc;
}

int gguf_writer_write(gguf_writer *w, const char *path, seek_err *err) {
    if (!w || !path) return err_set(err, SEEK_EINVAL, "gguf writer: NULL argument");
    uint32_t align;
    if (alignment_of(w, &align, err) != 0) return -1;

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return err_set(err, SEEK_ENOMEM, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        err_set(err, SEEK_EIO, "cannot create a temporary file next to %s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        err_set(err, SEEK_EIO, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    out o = { .fp = fp };
    int rc = write_body(w, &o, align, err);
    if (rc == 0 && (o.failed || fflush(fp) != 0))
        rc = err_set(err, SEEK_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
        rc = err_set(err, SEEK_EIO, "cannot sync %s: %s", tmp, strerror(errno));
    if (fclose(fp) != 0 && rc == 0) rc = err_set(err, SEEK_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = err_set(err, SEEK_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc != 0) {
        unlink(tmp);
    } else {
        /* Make the rename itself durable. */
        char *dirbuf = strdup(path);
        if (dirbuf) {
            int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(dirbuf);
        }
    }
    free(tmp);
    return rc;
}
