/*
 * json_util.c - reading request fields the way Ollama's Go structs do (a JSON null is the same as
 * absent; a value of the wrong type is a 400), Ollama's "options" map, keep_alive durations, Go's
 * time format, and small buffer helpers.
 *
 * Every getter validates before it stores, so a handler that got 0 back holds values of the types
 * it asked for; strings point into the parsed request (which the handler keeps alive).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_impl.h"

#define MSG_CAP 256

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: case JSON_REAL: return "number";
    case JSON_TRUE: case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static int bad_type(char *msg, const char *key, const char *want, const json_t *v) {
    snprintf(msg, MSG_CAP, "invalid value for \"%s\": expected %s, got %s", key, want, type_name(v));
    return -1;
}

/* The value at key, or NULL when absent or null. */
static json_t *field(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

int server_get_str(const json_t *o, const char *key, const char **out, char *msg) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_string(v)) return bad_type(msg, key, "a string", v);
    *out = json_string_value(v);
    return 0;
}

int server_get_bool(const json_t *o, const char *key, bool *out, char *msg) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return bad_type(msg, key, "a boolean", v);
    *out = json_is_true(v);
    return 0;
}

/* Go decodes a JSON number into an int field only when it is integral; Ollama's options map
 * (FromMap) truncates floats.  Both are accepted here when in range. */
static int num_to_int(const json_t *v, const char *key, int64_t lo, int64_t hi, int64_t *out, char *msg) {
    double d;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < lo || i > hi) goto range;
        *out = i;
        return 0;
    }
    if (!json_is_real(v)) return bad_type(msg, key, "an integer", v);
    d = trunc(json_real_value(v));
    if (!(d >= (double)lo && d <= (double)hi)) goto range;
    *out = (int64_t)d;
    return 0;
range:
    snprintf(msg, MSG_CAP, "invalid value for \"%s\": must be between %lld and %lld", key, (long long)lo,
             (long long)hi);
    return -1;
}

int server_get_int(const json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, char *msg) {
    json_t *v = field(o, key);
    return v ? num_to_int(v, key, lo, hi, out, msg) : 0;
}

int server_get_num(const json_t *o, const char *key, double *out, char *msg) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_number(v)) return bad_type(msg, key, "a number", v);
    *out = json_number_value(v);
    return 0;
}

int server_get_obj(const json_t *o, const char *key, json_t **out, char *msg) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_object(v)) return bad_type(msg, key, "an object", v);
    *out = v;
    return 0;
}

int server_get_arr(const json_t *o, const char *key, json_t **out, char *msg) {
    json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_array(v)) return bad_type(msg, key, "an array", v);
    *out = v;
    return 0;
}

int server_get_model(const json_t *o, const char **out, char *msg) {
    const char *m = NULL, *n = NULL;
    if (server_get_str(o, "model", &m, msg) || server_get_str(o, "name", &n, msg)) return -1;
    if (!m || !*m) m = n;
    if (!m || !*m) {
        snprintf(msg, MSG_CAP, "model is required");
        return -1;
    }
    if (strlen(m) > 1000) {
        snprintf(msg, MSG_CAP, "model name too long");
        return -1;
    }
    *out = m;
    return 0;
}

/* ---- options ------------------------------------------------------------------------------ */

enum opt_kind { OPT_INT, OPT_FLOAT, OPT_BOOL, OPT_STOP, OPT_IGNORED_INT, OPT_IGNORED_FLOAT, OPT_IGNORED_BOOL };

enum opt_id {
    O_NONE, O_TEMPERATURE, O_TOP_K, O_TOP_P, O_MIN_P, O_REPEAT_PENALTY, O_REPEAT_LAST_N, O_PRESENCE,
    O_FREQUENCY, O_SEED, O_NUM_PREDICT, O_STOP, O_NUM_CTX, O_NUM_THREAD, O_THINK_BUDGET,
};

/* Ollama's api.Options (runner and sampling fields) plus seek's think_budget.  Options seek has no
 * use for (GPU layout, mirostat, ...) are still type-checked, as Ollama's FromMap does. */
static const struct {
    const char *name;
    enum opt_kind kind;
    enum opt_id id;
    int64_t lo, hi;
} options[] = {
    { "temperature", OPT_FLOAT, O_TEMPERATURE, 0, 0 },
    { "top_k", OPT_INT, O_TOP_K, INT32_MIN, INT32_MAX },
    { "top_p", OPT_FLOAT, O_TOP_P, 0, 0 },
    { "min_p", OPT_FLOAT, O_MIN_P, 0, 0 },
    { "repeat_penalty", OPT_FLOAT, O_REPEAT_PENALTY, 0, 0 },
    { "repeat_last_n", OPT_INT, O_REPEAT_LAST_N, -1, 65536 },
    { "presence_penalty", OPT_FLOAT, O_PRESENCE, 0, 0 },
    { "frequency_penalty", OPT_FLOAT, O_FREQUENCY, 0, 0 },
    { "seed", OPT_INT, O_SEED, INT64_MIN, INT64_MAX },
    { "num_predict", OPT_INT, O_NUM_PREDICT, INT32_MIN, INT32_MAX },
    { "stop", OPT_STOP, O_STOP, 0, 0 },
    { "num_ctx", OPT_INT, O_NUM_CTX, INT32_MIN, SERVER_MAX_NUM_CTX },
    { "num_thread", OPT_INT, O_NUM_THREAD, 0, 4096 },
    { "think_budget", OPT_INT, O_THINK_BUDGET, INT32_MIN, INT32_MAX },
    { "num_keep", OPT_IGNORED_INT, O_NONE, INT32_MIN, INT32_MAX },
    { "num_batch", OPT_IGNORED_INT, O_NONE, INT32_MIN, INT32_MAX },
    { "num_gpu", OPT_IGNORED_INT, O_NONE, INT32_MIN, INT32_MAX },
    { "main_gpu", OPT_IGNORED_INT, O_NONE, INT32_MIN, INT32_MAX },
    { "mirostat", OPT_IGNORED_INT, O_NONE, INT32_MIN, INT32_MAX },
    { "tfs_z", OPT_IGNORED_FLOAT, O_NONE, 0, 0 },
    { "typical_p", OPT_IGNORED_FLOAT, O_NONE, 0, 0 },
    { "mirostat_tau", OPT_IGNORED_FLOAT, O_NONE, 0, 0 },
    { "mirostat_eta", OPT_IGNORED_FLOAT, O_NONE, 0, 0 },
    { "numa", OPT_IGNORED_BOOL, O_NONE, 0, 0 },
    { "low_vram", OPT_IGNORED_BOOL, O_NONE, 0, 0 },
    { "f16_kv", OPT_IGNORED_BOOL, O_NONE, 0, 0 },
    { "logits_all", OPT_IGNORED_BOOL, O_NONE, 0, 0 },
    { "vocab_only", OPT_IGNORED_BOOL, O_NONE, 0, 0 },
    { "use_mmap", OPT_IGNORED_BOOL, O_NONE, 0, 0 },
    { "use_mlock", OPT_IGNORED_BOOL, O_NONE, 0, 0 },
    { "embedding_only", OPT_IGNORED_BOOL, O_NONE, 0, 0 },
    { "penalize_newline", OPT_IGNORED_BOOL, O_NONE, 0, 0 },
};

int server_set_stop(const json_t *v, engine_params *p, const char *what, char *msg) {
    if (json_is_string(v)) {
        p->n_stop = 0;
        if (*json_string_value(v)) p->stop[p->n_stop++] = json_string_value(v);
        return 0;
    }
    if (!json_is_array(v)) return bad_type(msg, what, "a string or an array of strings", v);
    if (json_array_size(v) > ENGINE_MAX_STOP) {
        snprintf(msg, MSG_CAP, "invalid value for \"%s\": at most %d stop sequences", what, ENGINE_MAX_STOP);
        return -1;
    }
    p->n_stop = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) return bad_type(msg, what, "an array of strings", v);
        if (*json_string_value(e)) p->stop[p->n_stop++] = json_string_value(e); /* "" would stop at once */
    }
    return 0;
}

int server_apply_options(const json_t *opts, engine_params *p, int32_t *num_ctx, char *msg) {
    if (!opts) return 0;
    if (!json_is_object(opts)) return bad_type(msg, "options", "an object", opts);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)opts, key, v) {
        size_t k = 0;
        while (k < sizeof options / sizeof options[0] && strcmp(options[k].name, key)) k++;
        if (k == sizeof options / sizeof options[0] || json_is_null(v)) continue; /* unknown: ignored */
        int64_t iv = 0;
        double fv = 0;
        switch (options[k].kind) {
        case OPT_INT: case OPT_IGNORED_INT:
            if (num_to_int(v, key, options[k].lo, options[k].hi, &iv, msg)) return -1;
            break;
        case OPT_FLOAT: case OPT_IGNORED_FLOAT:
            if (!json_is_number(v)) return bad_type(msg, key, "a number", v);
            fv = json_number_value(v);
            if (!isfinite(fv) || fabs(fv) > 1e30) {
                snprintf(msg, MSG_CAP, "invalid value for \"%s\": out of range", key);
                return -1;
            }
            break;
        case OPT_BOOL: case OPT_IGNORED_BOOL:
            if (!json_is_boolean(v)) return bad_type(msg, key, "a boolean", v);
            break;
        case OPT_STOP:
            if (server_set_stop(v, p, key, msg)) return -1;
            break;
        }
        switch (options[k].id) {
        case O_TEMPERATURE: p->sample.temperature = (float)fv; break;
        case O_TOP_K: p->sample.top_k = (int32_t)iv; break;
        /* probabilities: Ollama passes any float on; clamped here because a min_p above 1 would
         * leave the sampler no candidate at all */
        case O_TOP_P: p->sample.top_p = (float)(fv < 0 ? 0 : fv > 1 ? 1 : fv); break;
        case O_MIN_P: p->sample.min_p = (float)(fv < 0 ? 0 : fv > 1 ? 1 : fv); break;
        case O_REPEAT_PENALTY: p->sample.repeat_penalty = (float)fv; break;
        case O_REPEAT_LAST_N: p->sample.repeat_last_n = (int32_t)iv; break;
        case O_PRESENCE: p->sample.presence_penalty = (float)fv; break;
        case O_FREQUENCY: p->sample.frequency_penalty = (float)fv; break;
        case O_SEED: /* Ollama: a negative seed means a random one */
            p->sample.has_seed = iv >= 0;
            p->sample.seed = (uint64_t)iv;
            break;
        case O_NUM_PREDICT: p->num_predict = (int32_t)iv; break;
        case O_NUM_CTX: *num_ctx = iv > 0 ? (int32_t)iv : 0; break;
        case O_THINK_BUDGET: p->think_budget = (int32_t)iv; break;
        default: break;
        }
    }
    return 0;
}

/* ---- keep_alive ---------------------------------------------------------------------------- */

/* Go's time.ParseDuration: [-+]? then one or more <decimal><unit>, units ns us µs ms s m h; "0"
 * alone needs no unit. */
static int parse_go_duration(const char *s, double *out_ns) {
    double sign = 1, total = 0;
    if (*s == '-' || *s == '+') sign = *s++ == '-' ? -1 : 1;
    if (!strcmp(s, "0")) {
        *out_ns = 0;
        return 0;
    }
    if (!*s) return -1;
    while (*s) {
        char *end;
        if (!((*s >= '0' && *s <= '9') || *s == '.')) return -1;
        double v = strtod(s, &end);
        if (end == s) return -1;
        s = end;
        static const struct { const char *u; double ns; } units[] = {
            { "ns", 1 }, { "us", 1e3 }, { "\xc2\xb5s", 1e3 }, { "\xce\xbcs", 1e3 }, { "ms", 1e6 },
            { "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
        };
        size_t best = SIZE_MAX, blen = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].u);
            if (!strncmp(s, units[i].u, n) && n > blen) best = i, blen = n;
        }
        if (best == SIZE_MAX) return -1;
        total += v * units[best].ns;
        s += blen;
    }
    *out_ns = sign * total;
    return 0;
}

int server_keep_alive(const json_t *o, int64_t *out_ns, char *msg) {
    json_t *v = field(o, "keep_alive");
    *out_ns = INT64_MIN;
    if (!v) return 0;
    double ns;
    if (json_is_number(v)) {
        ns = trunc(json_number_value(v)) * 1e9; /* Go: int(seconds) * time.Second */
        if (json_number_value(v) < 0) ns = -1;
    } else if (json_is_string(v)) {
        if (parse_go_duration(json_string_value(v), &ns)) {
            snprintf(msg, MSG_CAP, "time: invalid duration \"%.100s\"", json_string_value(v));
            return -1;
        }
    } else {
        snprintf(msg, MSG_CAP, "Unsupported type: '%s'", type_name(v));
        return -1;
    }
    if (ns < 0) *out_ns = -1;
    else if (ns > 9.2e18) *out_ns = -1; /* longer than int64 nanoseconds: forever */
    else *out_ns = (int64_t)ns;
    return 0;
}

/* ---- time ------------------------------------------------------------------------------------ */

int64_t server_now_unix_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void server_time_rfc3339(int64_t unix_ns, bool utc, char *buf, size_t cap) {
    time_t sec = (time_t)(unix_ns / 1000000000);
    long nsec = (long)(unix_ns % 1000000000);
    if (nsec < 0) nsec += 1000000000, sec--;
    struct tm tm;
    if (utc) gmtime_r(&sec, &tm);
    else localtime_r(&sec, &tm);
    char frac[16] = "";
    if (nsec) {
        snprintf(frac, sizeof frac, ".%09ld", nsec);
        size_t n = strlen(frac);
        while (frac[n - 1] == '0') frac[--n] = 0;
    }
    char zone[16] = "Z";
    if (!utc && tm.tm_gmtoff != 0) {
        int off = (int)(tm.tm_gmtoff / 60) % (24 * 60);
        snprintf(zone, sizeof zone, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60 % 100, abs(off) % 60);
    }
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, frac, zone);
}

/* ---- text and buffers -------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

json_t *server_json_text(const char *s, size_t len) {
    json_t *j = json_stringn(s, len);
    if (j) return j;
    /* invalid UTF-8 or a NUL byte: rebuild with U+FFFD for each bad byte */
    server_buf b = { 0 };
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t k = u[i] ? utf8_valid_len(u + i, len - i) : 0;
        if (k) server_buf_add(&b, s + i, k), i += k;
        else server_buf_add(&b, "\xef\xbf\xbd", 3), i++;
    }
    j = json_stringn(b.p ? b.p : "", b.len);
    server_buf_free(&b);
    return j ? j : json_string("");
}

char *server_dump(const json_t *j, size_t *len) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (s && len) *len = strlen(s);
    return s;
}

int server_buf_add(server_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

void server_buf_free(server_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
