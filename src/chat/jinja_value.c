/*
 * jinja_value.c - the values a Jinja template computes with, behaving as Python's do.
 *
 * What it is: the arena every parse and render allocates from, a capped byte buffer, lists and
 * dicts, truthiness, == and <, str() and repr() (so "{{ [1, 'a'] }}" prints "[1, 'a']" as
 * python3-jinja2 does), the float formatting of Python's repr, json.dumps with its default
 * separators and indent rules, conversion from jansson, and the UTF-8 helpers that let lengths and
 * slices count code points the way Python strings do.
 * What it is not: evaluation (jinja_eval.c) or filters (jinja_filters.c).
 */
#include "jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------------------------- */

struct jarena_chunk {
    jarena_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

#define JARENA_CHUNK (64u << 10)

void *jinja_alloc(jarena *a, size_t n) {
    if (n > a->limit) return NULL; /* also keeps the rounding below from wrapping */
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    jarena_chunk *h = a->head;
    if (!h || h->cap - h->used < n) {
        /* Big requests get a chunk of their own so they do not strand the rest of a chunk. */
        size_t cap = n > JARENA_CHUNK / 4 ? n : JARENA_CHUNK;
        if (n > a->limit || a->total + cap + sizeof *h > a->limit) return NULL;
        jarena_chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        a->total += cap + sizeof *c;
        c->cap = cap;
        c->used = 0;
        if (h && cap != JARENA_CHUNK) {
            /* keep filling the current small chunk: put the big one behind it */
            c->next = h->next;
            h->next = c;
        } else {
            c->next = h;
            a->head = c;
        }
        h = c;
    }
    void *p = h->data + h->used;
    h->used += n;
    memset(p, 0, n);
    return p;
}

void jinja_arena_free(jarena *a) {
    jarena_chunk *c = a->head;
    while (c) {
        jarena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- byte buffer ------------------------------------------------------------------------------- */

void jinja_buf_init(jbuf *b, size_t limit) {
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void jinja_buf_free(jbuf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

bool jinja_buf_put(jbuf *b, const char *s, size_t n) {
    if (b->over) return false;
    if (n > b->limit || b->n > b->limit - n) {
        b->over = true;
        return false;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->over = true;
            return false;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

bool jinja_buf_puts(jbuf *b, const char *s) { return jinja_buf_put(b, s, strlen(s)); }
bool jinja_buf_putc(jbuf *b, char c) { return jinja_buf_put(b, &c, 1); }

bool jinja_buf_printf(jbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    bool ok = n >= 0;
    if (ok && (size_t)n < sizeof tmp) {
        ok = jinja_buf_put(b, tmp, (size_t)n);
    } else if (ok) { /* long output (a wide %-format): measure, then print in place */
        char *big = (size_t)n <= b->limit ? malloc((size_t)n + 1) : NULL;
        ok = big && vsnprintf(big, (size_t)n + 1, fmt, ap2) == n && jinja_buf_put(b, big, (size_t)n);
        if (!ok) b->over = true;
        free(big);
    }
    va_end(ap2);
    return ok;
}

/* ---- containers -------------------------------------------------------------------------------- */

jlist *jinja_list_new(jarena *a, size_t cap) {
    jlist *l = jinja_alloc(a, sizeof *l);
    if (!l) return NULL;
    if (cap) {
        if (cap > JINJA_MAX_ARENA / sizeof(jv)) return NULL;
        l->v = jinja_alloc(a, cap * sizeof(jv));
        if (!l->v) return NULL;
        l->cap = cap;
    }
    return l;
}

bool jinja_list_push(jarena *a, jlist *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        if (cap > JINJA_MAX_ARENA / sizeof(jv)) return false;
        jv *nv = jinja_alloc(a, cap * sizeof(jv));
        if (!nv) return false;
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return true;
}

jdict *jinja_dict_new(jarena *a, size_t cap) {
    jdict *d = jinja_alloc(a, sizeof *d);
    if (!d) return NULL;
    if (cap) {
        if (cap > JINJA_MAX_ARENA / sizeof(jv)) return NULL;
        d->k = jinja_alloc(a, cap * sizeof(jv));
        d->v = jinja_alloc(a, cap * sizeof(jv));
        if (!d->k || !d->v) return NULL;
        d->cap = cap;
    }
    return d;
}

jv *jinja_dict_get(const jdict *d, jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (jinja_eq(d->k[i], key)) return &d->v[i];
    return NULL;
}

jv *jinja_dict_get_str(const jdict *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].u.s.n == n && !memcmp(d->k[i].u.s.p, key, n)) return &d->v[i];
    return NULL;
}

bool jinja_dict_set(jarena *a, jdict *d, jv key, jv val) {
    jv *slot = jinja_dict_get(d, key);
    if (slot) {
        *slot = val;
        return true;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        if (cap > JINJA_MAX_ARENA / sizeof(jv)) return false;
        jv *nk = jinja_alloc(a, cap * sizeof(jv)), *nv = jinja_alloc(a, cap * sizeof(jv));
        if (!nk || !nv) return false;
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(jv));
            memcpy(nv, d->v, d->n * sizeof(jv));
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n] = val;
    d->n++;
    return true;
}

bool jinja_str_dup(jarena *a, const char *p, size_t n, jv *out) {
    char *s = jinja_alloc(a, n + 1);
    if (!s) return false;
    if (n) memcpy(s, p, n);
    *out = jv_strn(s, n);
    return true;
}

/* ---- UTF-8 ------------------------------------------------------------------------------------- */

size_t jinja_utf8_next(const char *str, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c < 0xe0) {
        len = 2, v = c & 0x1f;
    } else if (c >= 0xe0 && c < 0xf0) {
        len = 3, v = c & 0x0f;
    } else if (c >= 0xf0 && c < 0xf5) {
        len = 4, v = c & 0x07;
    } else {
        *cp = c;
        return 1;
    }
    if (len > n) {
        *cp = c;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = c;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    /* overlong 3/4-byte forms and values past U+10FFFF are invalid: take the lead byte alone */
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff))) {
        *cp = c;
        return 1;
    }
    *cp = v;
    return len;
}

size_t jinja_utf8_len(const char *s, size_t n) {
    size_t count = 0, i = 0;
    uint32_t cp;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
        } else {
            i += jinja_utf8_next(s + i, n - i, &cp);
        }
        count++;
    }
    return count;
}

size_t jinja_utf8_offset(const char *s, size_t n, size_t idx) {
    size_t i = 0;
    uint32_t cp;
    while (idx > 0 && i < n) {
        i += jinja_utf8_next(s + i, n - i, &cp);
        idx--;
    }
    return i;
}

size_t jinja_utf8_put(char *out, uint32_t cp) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | ((cp >> 18) & 0x07));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

bool jinja_is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}

/* Code points repr() escapes because str.isprintable() is false for them (control, format,
 * separator and private-use characters; unassigned ones are not tracked). */
static bool is_unprintable(uint32_t c) {
    return c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad || c == 0x61c || c == 0x1680 || c == 0x180e ||
           (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) || (c >= 0x205f && c <= 0x206f) ||
           c == 0x3000 || (c >= 0xd800 && c <= 0xf8ff) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) ||
           c == 0xfffe || c == 0xffff || (c >= 0xe0000 && c <= 0xe007f) || c >= 0xf0000;
}

/* ---- Python semantics ---------------------------------------------------------------------------- */

bool jinja_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0;
    case JV_STR: return v.u.s.n > 0;
    case JV_LIST: return v.sub == JL_GEN || v.u.l->n > 0; /* a generator object is always true */
    case JV_DICT: return v.u.d->n > 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT; }
static double num_f(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b; }
static int64_t num_i(jv v) { return v.t == JV_INT ? v.u.i : (int64_t)v.u.b; }

#define JV_MAX_DEPTH 100 /* recursion guard for self-containing namespaces */

static bool eq_depth(jv a, jv b, int depth) {
    if (depth > JV_MAX_DEPTH) return false;
    if (is_num(a) && is_num(b)) {
        if (a.t == JV_FLOAT || b.t == JV_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
    case JV_LIST:
        if (a.sub != b.sub) return false;
        if (a.sub == JL_GEN) return a.u.l == b.u.l;
        if (a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!eq_depth(a.u.l->v[i], b.u.l->v[i], depth + 1)) return false;
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jinja_dict_get(b.u.d, a.u.d->k[i]);
            if (!o || !eq_depth(a.u.d->v[i], *o, depth + 1)) return false;
        }
        return true;
    case JV_NS: return a.u.d == b.u.d;
    case JV_FUNC: return a.sub == b.sub;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_LOOP: return a.u.loop == b.u.loop;
    case JV_METHOD: return a.u.meth == b.u.meth;
    default: return false;
    }
}

bool jinja_eq(jv a, jv b) { return eq_depth(a, b, 0); }

bool jinja_lt(jv a, jv b, bool *ok) {
    *ok = true;
    if (is_num(a) && is_num(b)) {
        if (a.t == JV_FLOAT || b.t == JV_FLOAT) return num_f(a) < num_f(b);
        return num_i(a) < num_i(b);
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        /* UTF-8 byte order is code point order, which is how Python orders str */
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int r = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        return r < 0 || (r == 0 && a.u.s.n < b.u.s.n);
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.sub == b.sub && (a.sub == JL_LIST || a.sub == JL_TUPLE)) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++)
            if (!jinja_eq(a.u.l->v[i], b.u.l->v[i])) return jinja_lt(a.u.l->v[i], b.u.l->v[i], ok);
        return a.u.l->n < b.u.l->n;
    }
    *ok = false;
    return false;
}

const char *jinja_type_name(jv v) {
    switch (v.t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: {
        static const char *names[] = { "list", "tuple", "generator", "dict_keys", "dict_values", "dict_items" };
        return v.sub < 6 ? names[v.sub] : "list";
    }
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_FUNC: return "function";
    case JV_MACRO: return "Macro";
    case JV_LOOP: return "LoopContext";
    case JV_METHOD: return "builtin_function_or_method";
    default: return "object";
    }
}

/* ---- str() and repr() -------------------------------------------------------------------------- */

void jinja_fmt_float(double d, char out[32]) {
    if (isnan(d)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(d)) {
        strcpy(out, d < 0 ? "-inf" : "inf");
        return;
    }
    if (d == 0) {
        strcpy(out, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    /* shortest digit string that reads back as the same double, as Python's repr */
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    char digits[24];
    int nd = 0;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 20) digits[nd++] = *p;
    int e = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int decpt = e + 1; /* value = 0.DIGITS x 10^decpt */
    char *o = out;
    if (neg) *o++ = '-';
    if (decpt > 16 || decpt < -3) {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        snprintf(o, 8, "e%c%02d", e < 0 ? '-' : '+', (e < 0 ? -e : e) % 1000); /* |e| <= 324 */
        return;
    }
    if (decpt <= 0) {
        *o++ = '0', *o++ = '.';
        for (int i = 0; i < -decpt; i++) *o++ = '0';
        memcpy(o, digits, (size_t)nd);
        o += nd;
    } else if (decpt >= nd) {
        memcpy(o, digits, (size_t)nd);
        o += nd;
        for (int i = nd; i < decpt; i++) *o++ = '0';
        *o++ = '.', *o++ = '0';
    } else {
        memcpy(o, digits, (size_t)decpt);
        o += decpt;
        *o++ = '.';
        memcpy(o, digits + decpt, (size_t)(nd - decpt));
        o += nd - decpt;
    }
    *o = 0;
}

static bool put_repr_str(jbuf *b, const char *s, size_t n) {
    /* Python picks single quotes unless the text has ' and no " */
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jinja_buf_putc(b, q);
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = jinja_utf8_next(s + i, n - i, &cp);
        if (cp == (uint32_t)q || cp == '\\') {
            jinja_buf_putc(b, '\\');
            jinja_buf_putc(b, (char)cp);
        } else if (cp == '\n') {
            jinja_buf_puts(b, "\\n");
        } else if (cp == '\r') {
            jinja_buf_puts(b, "\\r");
        } else if (cp == '\t') {
            jinja_buf_puts(b, "\\t");
        } else if (is_unprintable(cp)) {
            if (cp <= 0xff) jinja_buf_printf(b, "\\x%02x", cp);
            else if (cp <= 0xffff) jinja_buf_printf(b, "\\u%04x", cp);
            else jinja_buf_printf(b, "\\U%08x", cp);
        } else {
            jinja_buf_put(b, s + i, len);
        }
        i += len;
    }
    return jinja_buf_putc(b, q);
}

static bool put_value(jbuf *b, jv v, bool repr, int depth);

static bool put_items(jbuf *b, const jlist *l, int depth) {
    for (size_t i = 0; i < l->n; i++) {
        if (i) jinja_buf_puts(b, ", ");
        put_value(b, l->v[i], true, depth + 1);
    }
    return !b->over;
}

static bool put_dict(jbuf *b, const jdict *d, int depth) {
    jinja_buf_putc(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) jinja_buf_puts(b, ", ");
        put_value(b, d->k[i], true, depth + 1);
        jinja_buf_puts(b, ": ");
        put_value(b, d->v[i], true, depth + 1);
    }
    return jinja_buf_putc(b, '}');
}

static bool put_list(jbuf *b, jv v, int depth) {
    const jlist *l = v.u.l;
    switch (v.sub) {
    case JL_TUPLE:
        jinja_buf_putc(b, '(');
        put_items(b, l, depth);
        if (l->n == 1) jinja_buf_putc(b, ',');
        return jinja_buf_putc(b, ')');
    case JL_GEN: return jinja_buf_puts(b, "<generator object>");
    case JL_KEYS:
    case JL_VALUES:
    case JL_ITEMS:
        jinja_buf_puts(b, jinja_type_name(v));
        jinja_buf_puts(b, "([");
        put_items(b, l, depth);
        return jinja_buf_puts(b, "])");
    default:
        jinja_buf_putc(b, '[');
        put_items(b, l, depth);
        return jinja_buf_putc(b, ']');
    }
}

static bool put_value(jbuf *b, jv v, bool repr, int depth) {
    char tmp[32];
    if (depth > JV_MAX_DEPTH) return jinja_buf_puts(b, "...");
    switch (v.t) {
    case JV_UNDEF: return repr ? jinja_buf_puts(b, "Undefined") : true;
    case JV_NONE: return jinja_buf_puts(b, "None");
    case JV_BOOL: return jinja_buf_puts(b, v.u.b ? "True" : "False");
    case JV_INT: return jinja_buf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT: jinja_fmt_float(v.u.f, tmp); return jinja_buf_puts(b, tmp);
    case JV_STR: return repr ? put_repr_str(b, v.u.s.p, v.u.s.n) : jinja_buf_put(b, v.u.s.p, v.u.s.n);
    case JV_LIST: return put_list(b, v, depth);
    case JV_DICT: return put_dict(b, v.u.d, depth);
    case JV_NS:
        jinja_buf_puts(b, "<Namespace ");
        put_dict(b, v.u.d, depth);
        return jinja_buf_putc(b, '>');
    case JV_LOOP: return jinja_buf_printf(b, "<LoopContext %zu/%zu>", v.u.loop->index0 + 1, v.u.loop->items->n);
    default: return jinja_buf_printf(b, "<%s>", jinja_type_name(v));
    }
}

bool jinja_put_str(jbuf *b, jv v) { return put_value(b, v, false, 0); }
bool jinja_put_repr(jbuf *b, jv v) { return put_value(b, v, true, 0); }

/* ---- json.dumps -------------------------------------------------------------------------------- */

static bool json_str(jbuf *b, const char *s, size_t n, bool ascii) {
    jinja_buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = jinja_utf8_next(s + i, n - i, &cp);
        switch (cp) {
        case '"': jinja_buf_puts(b, "\\\""); break;
        case '\\': jinja_buf_puts(b, "\\\\"); break;
        case '\n': jinja_buf_puts(b, "\\n"); break;
        case '\r': jinja_buf_puts(b, "\\r"); break;
        case '\t': jinja_buf_puts(b, "\\t"); break;
        case '\b': jinja_buf_puts(b, "\\b"); break;
        case '\f': jinja_buf_puts(b, "\\f"); break;
        default:
            if (cp < 0x20) {
                jinja_buf_printf(b, "\\u%04x", cp);
            } else if (ascii && cp >= 0x7f) {
                /* ensure_ascii escapes everything outside ' '..'~', astral planes as surrogates */
                if (cp >= 0x10000) {
                    uint32_t v = cp - 0x10000;
                    jinja_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
                } else {
                    jinja_buf_printf(b, "\\u%04x", cp);
                }
            } else {
                jinja_buf_put(b, s + i, len);
            }
        }
        i += len;
    }
    return jinja_buf_putc(b, '"');
}

static bool json_newline(jbuf *b, const jjson_opts *o, int level) {
    jinja_buf_putc(b, '\n');
    for (int i = 0; i < level; i++) jinja_buf_put(b, o->indent, o->indent_n);
    return !b->over;
}

static bool json_value(jbuf *b, jv v, const jjson_opts *o, int level, const char **why);

/* A dict key as json.dumps converts it: str as is, numbers/bools/None to their JSON text. */
static bool json_key(jbuf *b, jv k, const jjson_opts *o, const char **why) {
    char tmp[32];
    switch (k.t) {
    case JV_STR: return json_str(b, k.u.s.p, k.u.s.n, o->ensure_ascii);
    case JV_BOOL: return jinja_buf_puts(b, k.u.b ? "\"true\"" : "\"false\"");
    case JV_NONE: return jinja_buf_puts(b, "\"null\"");
    case JV_INT: return jinja_buf_printf(b, "\"%lld\"", (long long)k.u.i);
    case JV_FLOAT:
        if (isinf(k.u.f)) strcpy(tmp, k.u.f < 0 ? "-Infinity" : "Infinity");
        else if (isnan(k.u.f)) strcpy(tmp, "NaN");
        else jinja_fmt_float(k.u.f, tmp);
        return jinja_buf_printf(b, "\"%s\"", tmp);
    default: *why = "keys must be str, int, float, bool or None"; return false;
    }
}

static bool json_dict(jbuf *b, const jdict *d, const jjson_opts *o, int level, const char **why) {
    if (d->n == 0) return jinja_buf_puts(b, "{}");
    size_t order_buf[64];
    size_t *order = d->n <= 64 ? order_buf : malloc(d->n * sizeof *order);
    if (!order) {
        *why = "out of memory";
        return false;
    }
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    bool ok = true;
    if (o->sort_keys) {
        /* insertion sort keeps equal keys stable; Python refuses to order mixed key types */
        for (size_t i = 1; i < d->n && ok; i++) {
            size_t x = order[i], j = i;
            while (j > 0) {
                bool cmp_ok;
                bool lt = jinja_lt(d->k[x], d->k[order[j - 1]], &cmp_ok);
                if (!cmp_ok) {
                    *why = "'<' not supported between dict keys of different types";
                    ok = false;
                    break;
                }
                if (!lt) break;
                order[j] = order[j - 1];
                j--;
            }
            order[j] = x;
        }
    }
    jinja_buf_putc(b, '{');
    for (size_t i = 0; i < d->n && ok; i++) {
        if (i) jinja_buf_put(b, o->item_sep, o->item_sep_n);
        if (o->indent) json_newline(b, o, level + 1);
        ok = json_key(b, d->k[order[i]], o, why) && jinja_buf_put(b, o->key_sep, o->key_sep_n) &&
             json_value(b, d->v[order[i]], o, level + 1, why);
    }
    if (order != order_buf) free(order);
    if (!ok) return false;
    if (o->indent) json_newline(b, o, level);
    return jinja_buf_putc(b, '}');
}

static bool json_value(jbuf *b, jv v, const jjson_opts *o, int level, const char **why) {
    char tmp[32];
    if (level > JV_MAX_DEPTH) {
        *why = "Circular reference detected";
        return false;
    }
    if (b->over) {
        *why = "output too large";
        return false;
    }
    switch (v.t) {
    case JV_NONE: return jinja_buf_puts(b, "null");
    case JV_BOOL: return jinja_buf_puts(b, v.u.b ? "true" : "false");
    case JV_INT: return jinja_buf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT:
        if (isinf(v.u.f)) return jinja_buf_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        if (isnan(v.u.f)) return jinja_buf_puts(b, "NaN");
        jinja_fmt_float(v.u.f, tmp);
        return jinja_buf_puts(b, tmp);
    case JV_STR: return json_str(b, v.u.s.p, v.u.s.n, o->ensure_ascii);
    case JV_DICT: return json_dict(b, v.u.d, o, level, why);
    case JV_LIST:
        if (v.sub == JL_LIST || v.sub == JL_TUPLE) {
            const jlist *l = v.u.l;
            if (l->n == 0) return jinja_buf_puts(b, "[]");
            jinja_buf_putc(b, '[');
            for (size_t i = 0; i < l->n; i++) {
                if (i) jinja_buf_put(b, o->item_sep, o->item_sep_n);
                if (o->indent) json_newline(b, o, level + 1);
                if (!json_value(b, l->v[i], o, level + 1, why)) return false;
            }
            if (o->indent) json_newline(b, o, level);
            return jinja_buf_putc(b, ']');
        }
        break;
    default: break;
    }
    *why = NULL; /* the caller names the type */
    return false;
}

bool jinja_json_dump(jbuf *b, jv v, const jjson_opts *o, const char **why) {
    *why = NULL;
    bool ok = json_value(b, v, o, 0, why);
    if (ok && b->over) {
        *why = "output too large";
        return false;
    }
    return ok;
}

/* ---- from jansson -------------------------------------------------------------------------------- */

static bool from_json_depth(jarena *a, const json_t *j, jv *out, int depth) {
    if (depth > JV_MAX_DEPTH * 10) return false;
    switch (json_typeof(j)) {
    case JSON_NULL: *out = jv_none(); return true;
    case JSON_TRUE: *out = jv_bool(true); return true;
    case JSON_FALSE: *out = jv_bool(false); return true;
    case JSON_INTEGER: *out = jv_int((int64_t)json_integer_value(j)); return true;
    case JSON_REAL: *out = jv_float(json_real_value(j)); return true;
    case JSON_STRING: *out = jv_strn(json_string_value(j), json_string_length(j)); return true;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jlist *l = jinja_list_new(a, n);
        if (!l) return false;
        for (size_t i = 0; i < n; i++)
            if (!from_json_depth(a, json_array_get(j, i), &l->v[i], depth + 1)) return false;
        l->n = n;
        *out = jv_list(l, JL_LIST);
        return true;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j);
        jdict *d = jinja_dict_new(a, n);
        if (!d) return false;
        /* jansson iterates objects in insertion order, which is what Python's dicts keep */
        for (void *it = json_object_iter((json_t *)j); it; it = json_object_iter_next((json_t *)j, it)) {
            if (d->n >= n) break;
            d->k[d->n] = jv_strn(json_object_iter_key(it), json_object_iter_key_len(it));
            if (!from_json_depth(a, json_object_iter_value(it), &d->v[d->n], depth + 1)) return false;
            d->n++;
        }
        *out = jv_dict(d);
        return true;
    }
    }
    return false;
}

bool jinja_from_json(jarena *a, const json_t *j, jv *out) { return from_json_depth(a, j, out, 0); }
