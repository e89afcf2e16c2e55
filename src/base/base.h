/*
 * base.h - the bottom layer every other module of seek uses.
 *
 * What it is: error reporting (seek_err), half/bfloat16 conversion, a monotonic clock,
 * checked arithmetic for sizes that come from files or requests, and small file helpers.
 * What it is not: a place for anything that knows about models, tensors or the network.
 *
 * Errors by layer: library code returns -1 (or NULL) and fills a seek_err the caller
 * passed in; only src/cli calls exit().  A NULL seek_err pointer is allowed everywhere
 * and means "the caller does not want the message".
 */
#ifndef SEEK_BASE_H
#define SEEK_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* ---- errors ---------------------------------------------------------------------- */

enum {
    SEEK_OK = 0,
    SEEK_EIO,       /* file system or network I/O failed */
    SEEK_EFORMAT,   /* input is malformed (bad GGUF, bad JSON, ...) */
    SEEK_ENOMEM,    /* allocation failed or a size is too large to allocate */
    SEEK_EINVAL,    /* bad argument from the user */
    SEEK_EUNSUP,    /* well-formed but not supported (unknown tensor type, architecture) */
    SEEK_ENOTFOUND, /* a named thing (key, tensor, model) does not exist */
};

typedef struct seek_err {
    int code;
    char msg[512];
} seek_err;

/* Formats a message into err (if not NULL) and returns -1, so callers can write
 * `return err_set(err, SEEK_EFORMAT, "bad %s", what);`. */
int err_set(seek_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (for adding context on the way up). */
void err_prefix(seek_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- logging (stderr) ------------------------------------------------------------ */

extern int log_verbosity; /* 0 = errors and warnings, 1 = info, 2 = debug */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- checked size arithmetic: return false on overflow ------------------------------- */

static inline bool size_mul(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool size_add(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* ---- half precision (IEEE binary16) and bfloat16 -------------------------------------- */

typedef uint16_t f16_t;
typedef uint16_t bf16_t;

float f16_to_f32(f16_t h);
f16_t f32_to_f16(float f); /* round to nearest even, overflow to inf, NaN kept */

static inline float bf16_to_f32(bf16_t h) {
    union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
    return v.f;
}
bf16_t f32_to_bf16(float f); /* round to nearest even, NaN kept quiet */

/* Lookup-table version of f16_to_f32 for hot scalar loops (table filled by base_init). */
extern float f16_table[65536];
static inline float f16_lut(f16_t h) { return f16_table[h]; }

/* Fills tables; called once at start-up (idempotent, thread-safe after the first call). */
void base_init(void);

/* ---- time ------------------------------------------------------------------------ */

uint64_t time_now_ns(void); /* CLOCK_MONOTONIC */

/* ---- memory ---------------------------------------------------------------------- */

/* Aligned allocation (64 bytes, cache line / AVX-512), zeroed. NULL on failure or size 0. */
void *mem_alloc(size_t size);
void mem_free(void *p);

/* ---- files ----------------------------------------------------------------------- */

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience; *len excludes
 * the NUL).  Caller frees with free(). */
char *fs_read_all(const char *path, size_t *len, seek_err *err);

/* Writes data to path atomically: a temp file in the same directory, fsync, rename. */
int fs_write_atomic(const char *path, const void *data, size_t len, seek_err *err);

/* Total and available physical memory in bytes (from /proc/meminfo); 0 if unknown. */
uint64_t sys_mem_total(void);
uint64_t sys_mem_available(void);
/* Current resident set size of this process in bytes (from /proc/self/statm). */
uint64_t sys_rss_bytes(void);
/* Peak resident set size (VmHWM) in bytes. */
uint64_t sys_rss_peak_bytes(void);

#endif
