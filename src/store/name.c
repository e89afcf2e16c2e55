/*
 * name.c - model names: [host/][namespace/]model[:tag], parsed, validated and displayed the way
 * Ollama's types/model package does it (see store.h for the rules).  Pure string work: nothing
 * here touches the file system.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "store.h"

enum part { PART_HOST, PART_NS, PART_MODEL, PART_TAG };

static const char *const part_names[] = { "host", "namespace", "model", "tag" };

static bool is_alnum_us(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* NULL if s (len bytes) is a valid part of kind k, else why not. */
static const char *part_problem(enum part k, const char *s, size_t len) {
    size_t max = k == PART_HOST ? 350 : 80;
    if (len == 0) return "is empty";
    if (len > max) return k == PART_HOST ? "is longer than 350 characters" : "is longer than 80 characters";
    if (!is_alnum_us(s[0])) return "must start with a letter, digit or '_'";
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (is_alnum_us(c) || c == '-') continue;
        if (c == '.' && k != PART_NS) continue;
        if (c == ':' && k == PART_HOST) continue;
        if (c == '.') return "may not contain '.'";
        return k == PART_HOST ? "may only contain letters, digits, '_', '-', '.' and ':'"
                              : "may only contain letters, digits, '_', '-' and '.'";
    }
    return NULL;
}

static int set_part(enum part k, const char *s, size_t len, char *dst, size_t cap,
                    const char *whole, seek_err *err) {
    const char *why = part_problem(k, s, len);
    if (why)
        return err_set(err, SEEK_EINVAL, "invalid model name '%s': the %s %s", whole, part_names[k], why);
    if (len >= cap) return err_set(err, SEEK_EINVAL, "invalid model name '%s'", whole);
    memcpy(dst, s, len);
    dst[len] = 0;
    return 0;
}

/* Last occurrence of c in s[0..len), or -1. */
static long last_index(const char *s, size_t len, char c) {
    for (size_t i = len; i > 0; i--)
        if (s[i - 1] == c) return (long)(i - 1);
    return -1;
}

int store_name_parse(const char *whole, store_name *out, seek_err *err) {
    memset(out, 0, sizeof *out);
    if (!whole || !*whole) return err_set(err, SEEK_EINVAL, "invalid model name '': the name is empty");
    const char *s = whole;
    if (strncmp(s, "https://", 8) == 0) s += 8;
    else if (strncmp(s, "http://", 7) == 0) s += 7;
    size_t len = strlen(s);
    if (memchr(s, '@', len))
        return err_set(err, SEEK_EINVAL, "invalid model name '%s': digests (@sha256-...) are not supported", whole);

    /* the tag: after the last ':' when that comes after the last '/' ("/" is not a tag char) */
    long colon = last_index(s, len, ':'), slash = last_index(s, len, '/');
    if (colon > slash) {
        if (set_part(PART_TAG, s + colon + 1, len - (size_t)colon - 1, out->tag, sizeof out->tag, whole, err))
            return -1;
        len = (size_t)colon;
    } else {
        strcpy(out->tag, STORE_DEFAULT_TAG);
    }
    slash = last_index(s, len, '/');
    if (slash < 0) {
        strcpy(out->host, STORE_DEFAULT_HOST);
        strcpy(out->ns, STORE_DEFAULT_NAMESPACE);
        return set_part(PART_MODEL, s, len, out->model, sizeof out->model, whole, err);
    }
    if (set_part(PART_MODEL, s + slash + 1, len - (size_t)slash - 1, out->model, sizeof out->model, whole, err))
        return -1;
    len = (size_t)slash;
    slash = last_index(s, len, '/');
    if (slash < 0) {
        strcpy(out->host, STORE_DEFAULT_HOST);
        return set_part(PART_NS, s, len, out->ns, sizeof out->ns, whole, err);
    }
    if (set_part(PART_NS, s + slash + 1, len - (size_t)slash - 1, out->ns, sizeof out->ns, whole, err))
        return -1;
    return set_part(PART_HOST, s, (size_t)slash, out->host, sizeof out->host, whole, err);
}

bool store_name_valid(const char *s) {
    store_name n;
    return store_name_parse(s, &n, NULL) == 0;
}

void store_name_display(const store_name *n, char *buf, size_t cap) {
    if (strcasecmp(n->host, STORE_DEFAULT_HOST) != 0)
        snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
    else if (strcasecmp(n->ns, STORE_DEFAULT_NAMESPACE) != 0)
        snprintf(buf, cap, "%s/%s:%s", n->ns, n->model, n->tag);
    else
        snprintf(buf, cap, "%s:%s", n->model, n->tag);
}

void store_name_full(const store_name *n, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
}

bool store_name_eq(const store_name *a, const store_name *b) {
    return strcasecmp(a->host, b->host) == 0 && strcasecmp(a->ns, b->ns) == 0 &&
           strcasecmp(a->model, b->model) == 0 && strcasecmp(a->tag, b->tag) == 0;
}
