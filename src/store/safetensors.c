/*
 * safetensors.c - the safetensors reader: mmap each file, validate its JSON header against the
 * file (see safetensors.h for the format and the checks), and index every tensor of every shard
 * by name.
 *
 * Data flow: store_st_open_dir -> list the shard files (index.json's weight_map, else the
 * directory listing) -> st_add_file per shard (mmap, parse header, validate entries, check
 * overlaps within the file) -> sort all tensors by name, reject duplicates -> cross-check the
 * index.
 */
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../gguf/gguf.h"

/* Headers larger than this are refused (the reference implementation's limit is 100 MB). */
#define ST_MAX_HEADER (100ull << 20)

typedef struct st_map {
    char *path;
    const char *base_name; /* into path */
    void *addr;
    size_t size;
} st_map;

/* A tensor record plus what only the reader needs. */
typedef struct st_entry {
    store_st_tensor t;
    uint64_t begin, end; /* data_offsets, for the overlap check */
} st_entry;

struct store_st {
    st_map *maps;
    size_t n_maps;
    st_entry *ents;
    size_t n_ents, cap_ents;
};

/* dtype name -> element size and GGUF type (STORE_ST_UNSUPPORTED for dtypes seek cannot
 * convert).  The names are the ones the safetensors format defines. */
static const struct {
    const char *name;
    uint32_t size;
    uint32_t type;
} st_dtypes[] = {
    { "F32", 4, GGUF_TYPE_F32 },  { "F16", 2, GGUF_TYPE_F16 },
    { "BF16", 2, GGUF_TYPE_BF16 }, { "F64", 8, STORE_ST_UNSUPPORTED },
    { "I64", 8, STORE_ST_UNSUPPORTED }, { "U64", 8, STORE_ST_UNSUPPORTED },
    { "I32", 4, STORE_ST_UNSUPPORTED }, { "U32", 4, STORE_ST_UNSUPPORTED },
    { "I16", 2, STORE_ST_UNSUPPORTED }, { "U16", 2, STORE_ST_UNSUPPORTED },
    { "I8", 1, STORE_ST_UNSUPPORTED },  { "U8", 1, STORE_ST_UNSUPPORTED },
    { "BOOL", 1, STORE_ST_UNSUPPORTED }, { "F8_E4M3", 1, STORE_ST_UNSUPPORTED },
    { "F8_E5M2", 1, STORE_ST_UNSUPPORTED },
};
#define N_DTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A JSON integer in [0, 2^62]; false otherwise. */
static bool json_u64(const json_t *j, uint64_t *out) {
    if (!json_is_integer(j)) return false;
    json_int_t v = json_integer_value(j);
    if (v < 0 || (uint64_t)v > (1ull << 62)) return false;
    *out = (uint64_t)v;
    return true;
}

static int add_entry(store_st *s, const st_entry *e, seek_err *err) {
    if (s->n_ents == s->cap_ents) {
        size_t cap = s->cap_ents ? s->cap_ents * 2 : 256;
        st_entry *p = realloc(s->ents, cap * sizeof *p);
        if (!p) return err_set(err, SEEK_ENOMEM, "out of memory");
        s->ents = p;
        s->cap_ents = cap;
    }
    s->ents[s->n_ents++] = *e;
    return 0;
}

/* Parses one header entry `name` (val) of file m into e. */
static int parse_entry(const st_map *m, const char *name, const json_t *val, const uint8_t *data,
                       uint64_t data_size, st_entry *e, seek_err *err) {
    memset(e, 0, sizeof *e);
    if (!json_is_object(val)) return err_set(err, SEEK_EFORMAT, "tensor '%s': header entry is not an object", name);
    const json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
                 *jo = json_object_get(val, "data_offsets");
    if (!json_is_string(jd)) return err_set(err, SEEK_EFORMAT, "tensor '%s': no dtype", name);
    const char *dtype = json_string_value(jd);
    size_t di = 0;
    while (di < N_DTYPES && strcmp(st_dtypes[di].name, dtype) != 0) di++;
    if (di == N_DTYPES) return err_set(err, SEEK_EFORMAT, "tensor '%s': unknown dtype '%.32s'", name, dtype);
    if (!json_is_array(js)) return err_set(err, SEEK_EFORMAT, "tensor '%s': no shape", name);
    size_t nd = json_array_size(js);
    if (nd > STORE_ST_MAX_DIMS)
        return err_set(err, SEEK_EUNSUP, "tensor '%s': %zu dimensions (at most %d supported)", name, nd, STORE_ST_MAX_DIMS);
    uint64_t n = 1;
    for (size_t d = 0; d < nd; d++) {
        uint64_t v;
        if (!json_u64(json_array_get(js, d), &v))
            return err_set(err, SEEK_EFORMAT, "tensor '%s': shape[%zu] is not a non-negative integer", name, d);
        if (!size_mul(n, v, &n)) return err_set(err, SEEK_EFORMAT, "tensor '%s': shape overflows", name);
        e->t.shape[d] = (int64_t)v;
    }
    uint64_t nbytes, begin, end;
    if (!size_mul(n, st_dtypes[di].size, &nbytes) || nbytes > (1ull << 62))
        return err_set(err, SEEK_EFORMAT, "tensor '%s': shape overflows", name);
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_u64(json_array_get(jo, 0), &begin) ||
        !json_u64(json_array_get(jo, 1), &end) || end < begin)
        return err_set(err, SEEK_EFORMAT, "tensor '%s': data_offsets is not [begin, end] with begin <= end", name);
    if (end - begin != nbytes)
        return err_set(err, SEEK_EFORMAT, "tensor '%s': %llu elements of %s need %llu bytes but data_offsets span %llu",
                       name, (unsigned long long)n, dtype, (unsigned long long)nbytes,
                       (unsigned long long)(end - begin));
    if (end > data_size)
        return err_set(err, SEEK_EFORMAT, "tensor '%s': data_offsets [%llu, %llu) run past the end of the "
                       "data section (%llu bytes; truncated file?)", name, (unsigned long long)begin,
                       (unsigned long long)end, (unsigned long long)data_size);
    e->t.name = strdup(name);
    e->t.dtype = st_dtypes[di].name;
    if (!e->t.name) return err_set(err, SEEK_ENOMEM, "out of memory");
    e->t.file = m->base_name;
    e->t.type = st_dtypes[di].type;
    e->t.n_dims = (uint32_t)nd;
    e->t.n_elems = n;
    e->t.nbytes = nbytes;
    e->t.data = data + begin;
    e->begin = begin;
    e->end = end;
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Maps path, validates its header and appends its tensors to s. */
static int st_add_file(store_st *s, const char *path, seek_err *err) {
    st_map *maps = realloc(s->maps, (s->n_maps + 1) * sizeof *maps);
    if (!maps) return err_set(err, SEEK_ENOMEM, "out of memory");
    s->maps = maps;
    st_map *m = &s->maps[s->n_maps];
    memset(m, 0, sizeof *m);
    m->path = strdup(path);
    if (!m->path) return err_set(err, SEEK_ENOMEM, "out of memory");
    s->n_maps++; /* from here on store_st_close frees it */
    const char *slash = strrchr(m->path, '/');
    m->base_name = slash ? slash + 1 : m->path;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(err, SEEK_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return err_set(err, SEEK_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 8) {
        close(fd);
        return err_set(err, SEEK_EFORMAT, "%s: %lld bytes is too small for a safetensors file", path,
                       (long long)st.st_size);
    }
    void *addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (addr == MAP_FAILED) return err_set(err, SEEK_EIO, "%s: cannot map: %s", path, strerror(errno));
    m->addr = addr;
    m->size = (size_t)st.st_size;

    const uint8_t *base = addr;
    uint64_t hlen = le64(base);
    if (hlen > m->size - 8)
        return err_set(err, SEEK_EFORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                       path, (unsigned long long)hlen, m->size);
    if (hlen > ST_MAX_HEADER)
        return err_set(err, SEEK_EFORMAT, "%s: header length %llu is over the %llu-byte limit", path,
                       (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return err_set(err, SEEK_EFORMAT, "%s: header is not valid JSON: %s", path, jerr.text);
    int rc = 0;
    size_t first = s->n_ents;
    if (!json_is_object(root)) {
        rc = err_set(err, SEEK_EFORMAT, "%s: header is not a JSON object", path);
    } else {
        const uint8_t *data = base + 8 + hlen;
        uint64_t data_size = m->size - 8 - hlen;
        const char *key;
        json_t *val;
        json_object_foreach(root, key, val) {
            if (strcmp(key, "__metadata__") == 0) {
                if (!json_is_object(val)) {
                    rc = err_set(err, SEEK_EFORMAT, "%s: __metadata__ is not an object", path);
                    break;
                }
                continue;
            }
            st_entry e;
            if (parse_entry(m, key, val, data, data_size, &e, err) != 0 || add_entry(s, &e, err) != 0) {
                free((char *)e.t.name);
                err_prefix(err, "%s", path);
                rc = -1;
                break;
            }
        }
    }
    json_decref(root);
    if (rc != 0) return rc;

    /* No two tensors of this file may share bytes (zero-length ones share nothing). */
    size_t n = s->n_ents - first;
    st_entry *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) return err_set(err, SEEK_ENOMEM, "out of memory");
    memcpy(tmp, s->ents + first, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_begin);
    uint64_t prev_end = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        if (tmp[i].begin == tmp[i].end) continue;
        if (prev && tmp[i].begin < prev_end) {
            rc = err_set(err, SEEK_EFORMAT, "%s: tensors '%s' and '%s' overlap", path, prev, tmp[i].t.name);
            break;
        }
        prev_end = tmp[i].end;
        prev = tmp[i].t.name;
    }
    free(tmp);
    return rc;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->t.name, ((const st_entry *)b)->t.name);
}

/* Sorts the tensors by name and rejects duplicates. */
static int st_finish(store_st *s, seek_err *err) {
    if (s->n_ents) qsort(s->ents, s->n_ents, sizeof *s->ents, cmp_name);
    for (size_t i = 0; i < s->n_ents; i++) s->ents[i].t.index = i;
    for (size_t i = 1; i < s->n_ents; i++)
        if (strcmp(s->ents[i - 1].t.name, s->ents[i].t.name) == 0)
            return err_set(err, SEEK_EFORMAT, "tensor '%s' appears twice (in %s and %s)", s->ents[i].t.name,
                           s->ents[i - 1].t.file, s->ents[i].t.file);
    return 0;
}

store_st *store_st_open_file(const char *path, seek_err *err) {
    store_st *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    if (st_add_file(s, path, err) != 0 || st_finish(s, err) != 0) {
        store_st_close(s);
        return NULL;
    }
    return s;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A shard name from the index must be a plain file name inside the directory. */
static bool plain_file_name(const char *s) {
    return s[0] && s[0] != '.' && !strchr(s, '/') && strlen(s) < 1024;
}

/* Shard names of dir: from the index (weight_map values, deduplicated) if there is one, else the
 * directory's *.safetensors.  *names is a sorted malloc'd array of malloc'd strings. *index gets
 * the parsed index (or NULL). */
static int list_shards(const char *dir, char ***names, size_t *n_names, json_t **index, seek_err *err) {
    char path[4096];
    *names = NULL;
    *n_names = 0;
    *index = NULL;
    size_t cap = 0;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK) == 0) {
        json_error_t jerr;
        json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) return err_set(err, SEEK_EFORMAT, "%s: not valid JSON: %s (line %d)", path, jerr.text, jerr.line);
        *index = root;
        json_t *wm = json_object_get(root, "weight_map");
        if (!json_is_object(wm)) return err_set(err, SEEK_EFORMAT, "%s: no weight_map object", path);
        const char *key;
        json_t *val;
        json_object_foreach(wm, key, val) {
            const char *f = json_string_value(val);
            if (!f || !plain_file_name(f))
                return err_set(err, SEEK_EFORMAT, "%s: weight_map puts '%s' in '%.200s', which is not a file name "
                               "in the directory", path, key, f ? f : "(not a string)");
            bool seen = false;
            for (size_t i = 0; i < *n_names && !seen; i++) seen = strcmp((*names)[i], f) == 0;
            if (seen) continue;
            if (*n_names == cap) {
                cap = cap ? cap * 2 : 16;
                char **p = realloc(*names, cap * sizeof *p);
                if (!p) return err_set(err, SEEK_ENOMEM, "out of memory");
                *names = p;
            }
            if (!((*names)[*n_names] = strdup(f))) return err_set(err, SEEK_ENOMEM, "out of memory");
            (*n_names)++;
        }
        if (*n_names == 0) return err_set(err, SEEK_EFORMAT, "%s: weight_map is empty", path);
    } else {
        DIR *d = opendir(dir);
        if (!d) return err_set(err, SEEK_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t len = strlen(de->d_name);
            if (len <= 12 || strcmp(de->d_name + len - 12, ".safetensors") != 0 || de->d_name[0] == '.') continue;
            if (*n_names == cap) {
                cap = cap ? cap * 2 : 16;
                char **p = realloc(*names, cap * sizeof *p);
                if (!p) {
                    closedir(d);
                    return err_set(err, SEEK_ENOMEM, "out of memory");
                }
                *names = p;
            }
            if (!((*names)[*n_names] = strdup(de->d_name))) {
                closedir(d);
                return err_set(err, SEEK_ENOMEM, "out of memory");
            }
            (*n_names)++;
        }
        closedir(d);
        if (*n_names == 0) return err_set(err, SEEK_ENOTFOUND, "%s: no *.safetensors files", dir);
    }
    qsort(*names, *n_names, sizeof **names, cmp_str);
    return 0;
}

store_st *store_st_open_dir(const char *dir, seek_err *err) {
    store_st *s = calloc(1, sizeof *s);
    char **names = NULL;
    size_t n_names = 0;
    json_t *index = NULL;
    int rc = -1;
    if (!s) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    if (list_shards(dir, &names, &n_names, &index, err) != 0) goto done;
    for (size_t i = 0; i < n_names; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
            err_set(err, SEEK_EINVAL, "%s: path too long", dir);
            goto done;
        }
        if (st_add_file(s, path, err) != 0) goto done;
    }
    if (st_finish(s, err) != 0) {
        err_prefix(err, "%s", dir);
        goto done;
    }
    if (index) {
        const char *key;
        json_t *val;
        json_object_foreach(json_object_get(index, "weight_map"), key, val) {
            const store_st_tensor *t = store_st_find(s, key);
            if (!t || strcmp(t->file, json_string_value(val)) != 0) {
                err_set(err, SEEK_EFORMAT, "%s/model.safetensors.index.json puts tensor '%s' in %s, but %s",
                        dir, key, json_string_value(val), t ? "it is in another file" : "no file has it");
                goto done;
            }
        }
    }
    rc = 0;
done:
    for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    json_decref(index);
    if (rc != 0) {
        store_st_close(s);
        return NULL;
    }
    return s;
}

void store_st_close(store_st *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_ents; i++) free((char *)s->ents[i].t.name);
    free(s->ents);
    for (size_t i = 0; i < s->n_maps; i++) {
        if (s->maps[i].addr) munmap(s->maps[i].addr, s->maps[i].size);
        free(s->maps[i].path);
    }
    free(s->maps);
    free(s);
}

size_t store_st_n_tensors(const store_st *s) { return s->n_ents; }

const store_st_tensor *store_st_tensor_at(const store_st *s, size_t i) {
    return i < s->n_ents ? &s->ents[i].t : NULL;
}

const store_st_tensor *store_st_find(const store_st *s, const char *name) {
    size_t lo = 0, hi = s->n_ents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->ents[mid].t.name, name);
        if (c == 0) return &s->ents[mid].t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

void store_st_release(const store_st_tensor *t) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || t->nbytes == 0) return;
    uintptr_t a = (uintptr_t)t->data, b = a + t->nbytes;
    a = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    b &= ~((uintptr_t)page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}
