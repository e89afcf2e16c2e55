/*
 * manifest.c - manifests/<host>/<namespace>/<model>/<tag>: reading (with case-insensitive
 * lookup), writing (atomic, after the blobs), listing, copying and removing models, and the
 * collection of blobs no manifest references any more.
 *
 * A manifest file is the OCI image manifest Ollama writes (store.h); its own SHA-256 is the
 * model's ID.  Files under manifests/ whose path components are not valid name parts (temp files
 * start with '.') are not models and are skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_impl.h"

/* ---- paths and case-insensitive lookup -------------------------------------------------- */

/* Finds the entry of dir whose name equals want ignoring case (exact match first) into
 * found.  False if there is none. */
static bool find_fold(const char *dir, const char *want, char *found, size_t cap) {
    char path[STORE_PATH_MAX];
    struct stat st;
    if (store_pathf(path, sizeof path, NULL, "%s/%s", dir, want) == 0 && stat(path, &st) == 0) {
        snprintf(found, cap, "%s", want);
        return true;
    }
    DIR *d = opendir(dir);
    if (!d) return false;
    bool ok = false;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcasecmp(e->d_name, want) == 0 && strlen(e->d_name) < cap) {
            snprintf(found, cap, "%s", e->d_name);
            ok = true;
            break;
        }
    closedir(d);
    return ok;
}

/* The path of an existing manifest for name (any case) into path, and the stored spelling into
 * stored (may be NULL).  False if none exists. */
static bool manifest_locate(const store *s, const store_name *name, char *path, size_t cap,
                            store_name *stored) {
    const char *want[4] = { name->host, name->ns, name->model, name->tag };
    store_name got;
    char *parts[4] = { got.host, got.ns, got.model, got.tag };
    size_t sizes[4] = { sizeof got.host, sizeof got.ns, sizeof got.model, sizeof got.tag };
    char dir[STORE_PATH_MAX];
    if (store_pathf(dir, sizeof dir, NULL, "%s/manifests", s->root)) return false;
    for (int i = 0; i < 4; i++) {
        if (!find_fold(dir, want[i], parts[i], sizes[i])) return false;
        size_t n = strlen(dir);
        if (store_pathf(dir + n, sizeof dir - n, NULL, "/%s", parts[i])) return false;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISREG(st.st_mode) || strlen(dir) >= cap) return false;
    snprintf(path, cap, "%s", dir);
    if (stored) *stored = got;
    return true;
}

static int manifest_path(const store *s, const store_name *n, char *path, size_t cap, seek_err *err) {
    return store_pathf(path, cap, err, "%s/manifests/%s/%s/%s/%s", s->root, n->host, n->ns,
                       n->model, n->tag);
}

/* ---- parsing ------------------------------------------------------------------------------ */

static int parse_layer(json_t *j, store_layer *l, const char *what, seek_err *err) {
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    const char *dg = json_string_value(json_object_get(j, "digest"));
    json_t *sz = json_object_get(j, "size");
    if (!json_is_object(j) || !mt || !dg || !json_is_integer(sz) || json_integer_value(sz) < 0)
        return err_set(err, SEEK_EFORMAT, "%s: needs mediaType, digest and size", what);
    if (!store_digest_valid(dg)) return err_set(err, SEEK_EFORMAT, "%s: invalid digest '%s'", what, dg);
    snprintf(l->media_type, sizeof l->media_type, "%s", mt);
    snprintf(l->digest, sizeof l->digest, "%s", dg);
    l->size = (uint64_t)json_integer_value(sz);
    return 0;
}

/* Parses manifest bytes into m (name, digest and mtime are the caller's). */
static int parse_manifest(const char *text, size_t len, store_manifest *m, seek_err *err) {
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root) return err_set(err, SEEK_EFORMAT, "bad JSON: %s (line %d)", je.text, je.line);
    int rc = -1;
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_object(root) || !json_is_array(layers)) {
        err_set(err, SEEK_EFORMAT, "not an image manifest (no layers)");
        goto done;
    }
    if (parse_layer(json_object_get(root, "config"), &m->config, "config", err)) goto done;
    size_t n = json_array_size(layers);
    m->layers = calloc(n ? n : 1, sizeof *m->layers);
    if (!m->layers) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "layer %zu", i);
        if (parse_layer(json_array_get(layers, i), &m->layers[i], what, err)) goto done;
        m->n_layers++;
    }
    rc = 0;
done:
    json_decref(root);
    if (rc) store_manifest_free(m);
    return rc;
}

static int read_manifest_file(const char *path, store_manifest *m, seek_err *err) {
    size_t len;
    char *text = fs_read_all(path, &len, err);
    if (!text) return -1;
    int rc = parse_manifest(text, len, m, err);
    if (rc == 0) {
        store_digest_mem(text, len, m->digest);
        struct stat st;
        m->mtime = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    } else {
        err_prefix(err, "%s", path);
    }
    free(text);
    return rc;
}

int store_manifest_read(const store *s, const store_name *name, store_manifest *m, seek_err *err) {
    memset(m, 0, sizeof *m);
    char path[STORE_PATH_MAX], disp[600];
    store_name stored;
    if (!manifest_locate(s, name, path, sizeof path, &stored)) {
        store_name_display(name, disp, sizeof disp);
        return err_set(err, SEEK_ENOTFOUND, "model '%s' not found", disp);
    }
    if (read_manifest_file(path, m, err)) return -1;
    m->name = stored;
    return 0;
}

void store_manifest_free(store_manifest *m) {
    if (!m) return;
    free(m->layers);
    m->layers = NULL;
    m->n_layers = 0;
}

uint64_t store_manifest_size(const store_manifest *m) {
    uint64_t total = m->config.size;
    for (int i = 0; i < m->n_layers; i++) total += m->layers[i].size;
    return total;
}

const store_layer *store_manifest_layer(const store_manifest *m, const char *media_type) {
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].media_type, media_type) == 0) return &m->layers[i];
    return NULL;
}

/* ---- writing ------------------------------------------------------------------------------ */

static json_t *layer_json(const store_layer *l) {
    return json_pack("{s:s, s:s, s:I}", "mediaType", l->media_type, "digest", l->digest, "size",
                     (json_int_t)l->size);
}

/* The manifest JSON text of m (compact, as Go's json.Marshal writes it); caller frees. */
static char *manifest_text(const store_manifest *m) {
    json_t *layers = json_array();
    for (int i = 0; layers && i < m->n_layers; i++) json_array_append_new(layers, layer_json(&m->layers[i]));
    json_t *root = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType", STORE_MT_MANIFEST,
                             "config", layer_json(&m->config), "layers", layers);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

/* Writes text as name's manifest (reusing the path of a same-name-but-case manifest). */
static int write_manifest_text(store *s, const store_name *name, const char *text, seek_err *err) {
    char path[STORE_PATH_MAX];
    if (!manifest_locate(s, name, path, sizeof path, NULL) && manifest_path(s, name, path, sizeof path, err))
        return -1;
    return store_write_atomic(s, path, text, strlen(text), err);
}

int store_manifest_write(store *s, const store_name *name, store_manifest *m, seek_err *err) {
    if (!store_blob_exists(s, m->config.digest, m->config.size))
        return err_set(err, SEEK_EIO, "config blob %s is missing", m->config.digest);
    for (int i = 0; i < m->n_layers; i++)
        if (!store_blob_exists(s, m->layers[i].digest, m->layers[i].size))
            return err_set(err, SEEK_EIO, "layer blob %s is missing", m->layers[i].digest);
    char *text = manifest_text(m);
    if (!text) return err_set(err, SEEK_ENOMEM, "out of memory");
    int rc = write_manifest_text(s, name, text, err);
    if (rc == 0) {
        store_digest_mem(text, strlen(text), m->digest);
        char path[STORE_PATH_MAX];
        struct stat st;
        if (manifest_locate(s, name, path, sizeof path, &m->name) && stat(path, &st) == 0)
            m->mtime = (int64_t)st.st_mtime;
    }
    free(text);
    return rc;
}

/* ---- walking every manifest ----------------------------------------------------------------- */

typedef int (*walk_fn)(void *ctx, const store_name *name, const char *path);

/* Calls fn for every file manifests/<host>/<ns>/<model>/<tag> whose components are valid name
 * parts.  Stops early when fn returns non-zero (and returns that). */
static int walk_level(const char *dir, int level, store_name *n, walk_fn fn, void *ctx) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int rc = 0;
    struct dirent *e;
    char *parts[4] = { n->host, n->ns, n->model, n->tag };
    size_t sizes[4] = { sizeof n->host, sizeof n->ns, sizeof n->model, sizeof n->tag };
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizes[level]) continue;
        char path[STORE_PATH_MAX];
        struct stat st;
        if (store_pathf(path, sizeof path, NULL, "%s/%s", dir, e->d_name) || stat(path, &st) != 0) continue;
        snprintf(parts[level], sizes[level], "%s", e->d_name);
        if (level < 3 && S_ISDIR(st.st_mode)) {
            rc = walk_level(path, level + 1, n, fn, ctx);
        } else if (level == 3 && S_ISREG(st.st_mode)) {
            char full[1024];
            store_name check;
            store_name_full(n, full, sizeof full);
            if (store_name_parse(full, &check, NULL) == 0) rc = fn(ctx, n, path);
        }
    }
    closedir(d);
    return rc;
}

static int walk_manifests(const store *s, walk_fn fn, void *ctx) {
    char dir[STORE_PATH_MAX];
    store_name n;
    memset(&n, 0, sizeof n);
    if (store_pathf(dir, sizeof dir, NULL, "%s/manifests", s->root)) return 0;
    return walk_level(dir, 0, &n, fn, ctx);
}

/* ---- list ----------------------------------------------------------------------------------- */

typedef struct list_ctx {
    store_entry *v;
    size_t n, cap;
} list_ctx;

static int list_one(void *ctx, const store_name *name, const char *path) {
    list_ctx *l = ctx;
    store_manifest m;
    memset(&m, 0, sizeof m);
    if (read_manifest_file(path, &m, NULL) != 0) return 0; /* not a manifest: not a model */
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        store_entry *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            store_manifest_free(&m);
            return -1;
        }
        l->v = v, l->cap = cap;
    }
    store_entry *e = &l->v[l->n++];
    e->name = *name;
    memcpy(e->digest, m.digest, sizeof e->digest);
    e->size = store_manifest_size(&m);
    e->mtime = m.mtime;
    store_manifest_free(&m);
    return 0;
}

static int newest_first(const void *a, const void *b) {
    const store_entry *x = a, *y = b;
    if (x->mtime != y->mtime) return x->mtime > y->mtime ? -1 : 1;
    char fx[600], fy[600];
    store_name_full(&x->name, fx, sizeof fx);
    store_name_full(&y->name, fy, sizeof fy);
    return strcmp(fx, fy);
}

int store_list(const store *s, store_entry **out, size_t *n, seek_err *err) {
    list_ctx l = { 0 };
    if (walk_manifests(s, list_one, &l) != 0) {
        free(l.v);
        return err_set(err, SEEK_ENOMEM, "out of memory");
    }
    if (l.n) qsort(l.v, l.n, sizeof *l.v, newest_first);
    *out = l.v;
    *n = l.n;
    return 0;
}

/* ---- copy ----------------------------------------------------------------------------------- */

int store_copy(store *s, const store_name *src, const store_name *dst, seek_err *err) {
    char path[STORE_PATH_MAX], disp[600];
    if (!manifest_locate(s, src, path, sizeof path, NULL)) {
        store_name_display(src, disp, sizeof disp);
        return err_set(err, SEEK_ENOTFOUND, "model '%s' not found", disp);
    }
    size_t len;
    char *text = fs_read_all(path, &len, err);
    if (!text) return -1;
    store_manifest m;
    memset(&m, 0, sizeof m);
    int rc = parse_manifest(text, len, &m, err);
    if (rc == 0) {
        store_manifest_free(&m);
        char dpath[STORE_PATH_MAX];
        if (!manifest_locate(s, dst, dpath, sizeof dpath, NULL))
            rc = manifest_path(s, dst, dpath, sizeof dpath, err);
        if (rc == 0 && strcmp(dpath, path) != 0) rc = store_write_atomic(s, dpath, text, len, err);
    }
    free(text);
    return rc;
}

/* ---- remove and blob collection ---------------------------------------------------------------- */

typedef struct refs_ctx {
    const store_manifest *cand; /* the layers that may go */
    bool *used;                 /* cand->n_layers + 1 flags (last: config) */
} refs_ctx;

static void mark(refs_ctx *r, const char *digest) {
    for (int i = 0; i < r->cand->n_layers; i++)
        if (strcmp(r->cand->layers[i].digest, digest) == 0) r->used[i] = true;
    if (strcmp(r->cand->config.digest, digest) == 0) r->used[r->cand->n_layers] = true;
}

static int refs_one(void *ctx, const store_name *name, const char *path) {
    refs_ctx *r = ctx;
    store_manifest m;
    memset(&m, 0, sizeof m);
    if (read_manifest_file(path, &m, NULL) != 0) return 0;
    mark(r, m.config.digest);
    for (int i = 0; i < m.n_layers; i++) mark(r, m.layers[i].digest);
    store_manifest_free(&m);
    return 0;
}

static int unlink_blob(const store *s, const char *digest) {
    char path[STORE_PATH_MAX];
    if (store_blob_path(s, digest, path, sizeof path, NULL) != 0) return 0;
    return unlink(path) == 0 ? 1 : 0;
}

int store_gc_layers(store *s, const store_manifest *old) {
    bool *used = calloc((size_t)old->n_layers + 1, sizeof *used);
    if (!used) return 0;
    refs_ctx r = { old, used };
    walk_manifests(s, refs_one, &r);
    int removed = 0;
    for (int i = 0; i < old->n_layers; i++) {
        bool dup = false; /* the same digest twice in old: delete once */
        for (int j = 0; j < i; j++) dup |= strcmp(old->layers[j].digest, old->layers[i].digest) == 0;
        if (!used[i] && !dup) removed += unlink_blob(s, old->layers[i].digest);
    }
    if (!used[old->n_layers]) removed += unlink_blob(s, old->config.digest);
    free(used);
    return removed;
}

/* Removes the now empty directories above a deleted manifest, up to manifests/. */
static void prune_dirs(const store *s, const char *path) {
    char top[STORE_PATH_MAX], dir[STORE_PATH_MAX];
    if (store_pathf(top, sizeof top, NULL, "%s/manifests", s->root)) return;
    snprintf(dir, sizeof dir, "%s", path);
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(dir, '/');
        if (!slash) return;
        *slash = 0;
        if (strcmp(dir, top) == 0 || rmdir(dir) != 0) return;
    }
}

int store_remove(store *s, const store_name *name, int *n_blobs, seek_err *err) {
    char path[STORE_PATH_MAX];
    store_manifest m;
    if (n_blobs) *n_blobs = 0;
    if (store_manifest_read(s, name, &m, err)) return -1;
    if (!manifest_locate(s, name, path, sizeof path, NULL) || unlink(path) != 0) {
        store_manifest_free(&m);
        return err_set(err, SEEK_EIO, "cannot remove %s: %s", path, strerror(errno));
    }
    prune_dirs(s, path);
    int removed = store_gc_layers(s, &m);
    if (n_blobs) *n_blobs = removed;
    store_manifest_free(&m);
    return 0;
}
