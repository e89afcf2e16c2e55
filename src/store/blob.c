/*
 * blob.c - the store handle, SHA-256 digests, and the content-addressed blobs/ directory.
 *
 * A blob reaches its final name only by rename(2) of a temp file that was fsynced after being
 * hashed while written, so blobs/sha256-<hex> always holds exactly the bytes that hash to <hex>.
 * Temp files are ".seek-tmp-<pid>-<n>..." next to their target; store_clean_tmp removes those
 * whose process is gone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store_impl.h"

#define COPY_CHUNK (4u << 20)

/* ---- small file helpers (shared through store_impl.h) ------------------------------------- */

int store_pathf(char *buf, size_t cap, seek_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) return err_set(err, SEEK_EINVAL, "path too long");
    return 0;
}

int store_mkdirs(const char *path, seek_err *err) {
    char tmp[STORE_PATH_MAX];
    if (store_pathf(tmp, sizeof tmp, err, "%s", path)) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return err_set(err, SEEK_EIO, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return err_set(err, SEEK_EIO, "cannot create %s: %s", tmp, strerror(errno));
    return 0;
}

void store_sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* One counter for the whole process, not per store handle: the server opens several handles
 * from several threads, and two of them must never pick the same temp name. */
static _Atomic unsigned tmp_counter;

int store_tmp_in(store *s, const char *dir, const char *suffix, char *buf, size_t cap, seek_err *err) {
    (void)s;
    return store_pathf(buf, cap, err, "%s/" STORE_TMP_PREFIX "%ld-%u%s", dir, (long)getpid(),
                       atomic_fetch_add(&tmp_counter, 1) + 1, suffix ? suffix : "");
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The directory part of path into buf. */
static void dir_of(const char *path, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash && slash != buf) *slash = 0;
    else snprintf(buf, cap, "%s", slash ? "/" : ".");
}

int store_write_atomic(store *s, const char *path, const void *data, size_t len, seek_err *err) {
    char dir[STORE_PATH_MAX], tmp[STORE_PATH_MAX];
    dir_of(path, dir, sizeof dir);
    if (store_mkdirs(dir, err) || store_tmp_in(s, dir, NULL, tmp, sizeof tmp, err)) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return err_set(err, SEEK_EIO, "cannot create %s: %s", tmp, strerror(errno));
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        err_set(err, SEEK_EIO, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        err_set(err, SEEK_EIO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    store_sync_dir(dir);
    return 0;
}

/* ---- the handle ----------------------------------------------------------------------- */

store *store_open(const char *root, seek_err *err) {
    char buf[STORE_PATH_MAX];
    if (!root || !*root) root = getenv("SEEK_MODELS");
    if (!root || !*root) {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            err_set(err, SEEK_EINVAL, "neither SEEK_MODELS nor HOME is set");
            return NULL;
        }
        if (store_pathf(buf, sizeof buf, err, "%s/.seek/models", home)) return NULL;
        root = buf;
    }
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') n--;
    if (n + 200 >= STORE_PATH_MAX) {
        err_set(err, SEEK_EINVAL, "model store path too long");
        return NULL;
    }
    store *s = calloc(1, sizeof *s);
    if (s) s->root = strndup(root, n);
    if (!s || !s->root) {
        free(s);
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    return s;
}

void store_close(store *s) {
    if (!s) return;
    free(s->root);
    free(s);
}

const char *store_root(const store *s) { return s->root; }

/* ---- temp file cleanup ----------------------------------------------------------------- */

/* True if name is a temp file of a process that no longer exists. */
static bool stale_tmp(const char *name) {
    if (strncmp(name, STORE_TMP_PREFIX, strlen(STORE_TMP_PREFIX)) != 0) return false;
    char *end;
    long pid = strtol(name + strlen(STORE_TMP_PREFIX), &end, 10);
    if (end == name + strlen(STORE_TMP_PREFIX) || *end != '-' || pid <= 0) return false;
    if (pid == (long)getpid()) return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int clean_dir(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[STORE_PATH_MAX];
        if (store_pathf(path, sizeof path, NULL, "%s/%s", dir, e->d_name)) continue;
        struct stat st;
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth > 0) removed += clean_dir(path, depth - 1);
        } else if (stale_tmp(e->d_name) && unlink(path) == 0) {
            removed++;
        }
    }
    closedir(d);
    return removed;
}

int store_clean_tmp(store *s) {
    char path[STORE_PATH_MAX];
    int removed = 0;
    if (store_pathf(path, sizeof path, NULL, "%s/blobs", s->root) == 0) removed += clean_dir(path, 0);
    if (store_pathf(path, sizeof path, NULL, "%s/manifests", s->root) == 0) removed += clean_dir(path, 4);
    return removed;
}

/* ---- digests ---------------------------------------------------------------------------- */

bool store_digest_valid(const char *d) {
    if (!d || strncmp(d, "sha256:", 7) != 0) return false;
    for (int i = 0; i < 64; i++) {
        char c = d[7 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return d[71] == 0;
}

static void digest_hex(const unsigned char *md, char *digest) {
    static const char hex[] = "0123456789abcdef";
    memcpy(digest, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        digest[7 + 2 * i] = hex[md[i] >> 4];
        digest[8 + 2 * i] = hex[md[i] & 15];
    }
    digest[71] = 0;
}

void store_digest_mem(const void *data, size_t len, char *digest) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    digest_hex(md, digest);
}

/* Streams fd through SHA-256 (and, when out_fd >= 0, copies it there), reporting progress. */
static int hash_stream(int fd, int out_fd, uint64_t total, store_progress_fn progress, void *ctx,
                       char *digest, uint64_t *size, seek_err *err) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = malloc(COPY_CHUNK);
    if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        free(buf);
        return err_set(err, SEEK_ENOMEM, "out of memory");
    }
    uint64_t done = 0, next_report = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, buf, COPY_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = err_set(err, SEEK_EIO, "read failed: %s", strerror(errno));
            break;
        }
        if (r == 0) break;
        EVP_DigestUpdate(md, buf, (size_t)r);
        if (out_fd >= 0 && write_all(out_fd, buf, (size_t)r) != 0) {
            rc = err_set(err, SEEK_EIO, "write failed: %s", strerror(errno));
            break;
        }
        done += (uint64_t)r;
        if (progress && done >= next_report) {
            progress(ctx, "copying file", NULL, done, total);
            next_report = done + (total / 100 > COPY_CHUNK ? total / 100 : COPY_CHUNK);
        }
    }
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
    free(buf);
    if (rc == 0) {
        digest_hex(out, digest);
        if (size) *size = done;
    }
    return rc;
}

int store_digest_file(const char *path, char *digest, seek_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(err, SEEK_EIO, "cannot open %s: %s", path, strerror(errno));
    int rc = hash_stream(fd, -1, 0, NULL, NULL, digest, NULL, err);
    close(fd);
    if (rc) err_prefix(err, "%s", path);
    return rc;
}

/* ---- blobs -------------------------------------------------------------------------------- */

int store_blob_path(const store *s, const char *digest, char *buf, size_t cap, seek_err *err) {
    if (!store_digest_valid(digest))
        return err_set(err, SEEK_EFORMAT, "invalid digest '%s'", digest ? digest : "(null)");
    return store_pathf(buf, cap, err, "%s/blobs/sha256-%s", s->root, digest + 7);
}

bool store_blob_exists(const store *s, const char *digest, uint64_t size) {
    char path[STORE_PATH_MAX];
    struct stat st;
    if (store_blob_path(s, digest, path, sizeof path, NULL) != 0 || stat(path, &st) != 0) return false;
    return S_ISREG(st.st_mode) && (size == UINT64_MAX || (uint64_t)st.st_size == size);
}

int store_tmp_path(store *s, const char *suffix, char *buf, size_t cap, seek_err *err) {
    char dir[STORE_PATH_MAX];
    if (store_pathf(dir, sizeof dir, err, "%s/blobs", s->root) || store_mkdirs(dir, err)) return -1;
    return store_tmp_in(s, dir, suffix, buf, cap, err);
}

/* Gives the fsynced temp file tmp (holding bytes with digest, size bytes) its blob name, or
 * drops it when that blob already exists.  tmp is gone afterwards. */
static int install_tmp(store *s, const char *tmp, const char *digest, uint64_t size, bool *existed,
                       seek_err *err) {
    char path[STORE_PATH_MAX];
    if (store_blob_path(s, digest, path, sizeof path, err)) {
        unlink(tmp);
        return -1;
    }
    bool have = store_blob_exists(s, digest, size);
    if (existed) *existed = have;
    if (have) {
        unlink(tmp);
        return 0;
    }
    if (rename(tmp, path) != 0) {
        err_set(err, SEEK_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char dir[STORE_PATH_MAX];
    dir_of(path, dir, sizeof dir);
    store_sync_dir(dir);
    return 0;
}

int store_blob_put_file(store *s, const char *src, store_progress_fn progress, void *ctx,
                        char *digest, uint64_t *size, bool *existed, seek_err *err) {
    char tmp[STORE_PATH_MAX];
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return err_set(err, SEEK_EIO, "cannot open %s: %s", src, strerror(errno));
    struct stat st;
    uint64_t total = fstat(in, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (store_tmp_path(s, NULL, tmp, sizeof tmp, err)) {
        close(in);
        return -1;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return err_set(err, SEEK_EIO, "cannot create %s: %s", tmp, strerror(errno));
    }
    uint64_t n = 0;
    int rc = hash_stream(in, out, total, progress, ctx, digest, &n, err);
    close(in);
    if (rc == 0 && fsync(out) != 0) rc = err_set(err, SEEK_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (close(out) != 0 && rc == 0) rc = err_set(err, SEEK_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (rc) {
        err_prefix(err, "copying %s", src);
        unlink(tmp);
        return -1;
    }
    if (size) *size = n;
    if (install_tmp(s, tmp, digest, n, existed, err)) return -1;
    if (progress) progress(ctx, "copying file", digest, n, n);
    return 0;
}

int store_blob_put_mem(store *s, const void *data, size_t len, char *digest, bool *existed,
                       seek_err *err) {
    store_digest_mem(data, len, digest);
    if (store_blob_exists(s, digest, len)) {
        if (existed) *existed = true;
        return 0;
    }
    char path[STORE_PATH_MAX];
    if (existed) *existed = false;
    if (store_blob_path(s, digest, path, sizeof path, err)) return -1;
    return store_write_atomic(s, path, data, len, err);
}

int store_blob_adopt(store *s, const char *tmp_path, char *digest, uint64_t *size, bool *existed,
                     seek_err *err) {
    int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(err, SEEK_EIO, "cannot open %s: %s", tmp_path, strerror(errno));
        unlink(tmp_path);
        return -1;
    }
    uint64_t n = 0;
    int rc = hash_stream(fd, -1, 0, NULL, NULL, digest, &n, err);
    if (rc == 0 && fsync(fd) != 0 && errno != EINVAL && errno != EBADF)
        rc = err_set(err, SEEK_EIO, "cannot sync %s: %s", tmp_path, strerror(errno));
    close(fd);
    if (rc) {
        unlink(tmp_path);
        return -1;
    }
    if (size) *size = n;
    return install_tmp(s, tmp_path, digest, n, existed, err);
}

int store_blob_verify(const store *s, const char *digest, seek_err *err) {
    char path[STORE_PATH_MAX], got[STORE_DIGEST_LEN];
    if (store_blob_path(s, digest, path, sizeof path, err) || store_digest_file(path, got, err))
        return -1;
    if (strcmp(got, digest) != 0)
        return err_set(err, SEEK_EFORMAT, "blob %s: content hashes to %s", path, got);
    return 0;
}

char *store_blob_read(const store *s, const char *digest, size_t *len, seek_err *err) {
    char path[STORE_PATH_MAX];
    if (store_blob_path(s, digest, path, sizeof path, err)) return NULL;
    return fs_read_all(path, len, err);
}
