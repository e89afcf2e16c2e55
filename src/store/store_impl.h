/*
 * store_impl.h - what the store's .c files share and nobody else sees: the store handle and the
 * file helpers (directories, atomic writes, temp names).  Not part of the public API.
 */
#ifndef SEEK_STORE_IMPL_H
#define SEEK_STORE_IMPL_H

#include "store.h"

#define STORE_TMP_PREFIX ".seek-tmp-"
#define STORE_PATH_MAX 4096

struct store {
    char *root;            /* owned */
};

/* mkdir -p path (mode 0755). */
int store_mkdirs(const char *path, seek_err *err);
/* fsyncs a directory so a rename in it is durable; errors are ignored (not every fs allows it). */
void store_sync_dir(const char *dir);
/* "<dir>/.seek-tmp-<pid>-<n><suffix>" into buf. */
int store_tmp_in(store *s, const char *dir, const char *suffix, char *buf, size_t cap, seek_err *err);
/* Writes data to path via a temp file in the same directory (fsync, rename, fsync dir);
 * creates the directory if needed. */
int store_write_atomic(store *s, const char *path, const void *data, size_t len, seek_err *err);
/* snprintf into buf, -1 with err when it does not fit. */
int store_pathf(char *buf, size_t cap, seek_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Deletes the blobs (layers and config) of old that no manifest on disk references now;
 * returns how many files were removed. */
int store_gc_layers(store *s, const store_manifest *old);

#endif
