/*
 * jinja_filters.c - the library a template calls into: filters (x | trim), tests (x is defined),
 * methods of str/dict/list values ("a,b".split(",")), and the globals range(), namespace(), dict(),
 * raise_exception() and strftime_now().
 *
 * Each filter follows jinja2 3.1's filters.py: same parameter names and order (positional or by
 * keyword), the same laziness where it shows (map/select/reject/items/unique give generators that
 * tojson refuses, as in Python), and the same str() of non-strings.  tojson is Hugging Face's
 * override: json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...).
 * Methods follow Python's str/dict/list methods; only the non-mutating ones exist (the sandbox is
 * immutable).  Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic.
 */
#include "jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- small helpers ----------------------------------------------------------------------------- */

static bool oom(jctx *c, const jnode *at) { return jinja_fail_limit(c, at, "template used too much memory"); }

/* Finishes a jbuf into a string value (and frees the buffer). */
static bool buf_done(jctx *c, const jnode *at, jbuf *b, jv *out) {
    bool ok = !b->over && jinja_str_dup(&c->arena, b->p ? b->p : "", b->n, out);
    if (!ok) {
        if (b->over) jinja_fail_limit(c, at, "string larger than %u MiB", JINJA_MAX_OUTPUT >> 20);
        else oom(c, at);
    }
    jinja_buf_free(b);
    return ok;
}

static bool new_list(jctx *c, const jnode *at, size_t cap, jlist **out) {
    *out = jinja_list_new(&c->arena, cap);
    return *out ? true : oom(c, at);
}

static bool push(jctx *c, const jnode *at, jlist *l, jv v) {
    return jinja_list_push(&c->arena, l, v) ? true : oom(c, at);
}

static bool make_tuple2(jctx *c, const jnode *at, jv a, jv b, jv *out) {
    jlist *t;
    if (!new_list(c, at, 2, &t)) return false;
    t->v[0] = a, t->v[1] = b, t->n = 2;
    *out = jv_list(t, JL_TUPLE);
    return true;
}

static bool is_int(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }
static int64_t int_of(jv v) { return v.t == JV_INT ? v.u.i : (int64_t)v.u.b; }

/* ---- case mapping -------------------------------------------------------------------------------- */

static uint32_t to_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
    if (c == 0xff) return 0x178;
    if (c == 0xb5) return 0x39c;
    if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x178) {
        bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
        if (odd_lower ? (c % 2 == 0) : (c % 2 == 1)) return c - 1;
        if (c == 0x17f) return 'S';
        return c;
    }
    if (c == 0x131) return 'I';
    if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) return c - 32;
    if (c == 0x3c2) return 0x3a3;
    if (c >= 0x3ac && c <= 0x3af) return c == 0x3ac ? 0x386 : c - 37;
    if (c >= 0x430 && c <= 0x44f) return c - 32;
    if (c >= 0x450 && c <= 0x45f) return c - 80;
    return c;
}

static uint32_t to_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 32;
    if (c == 0x178) return 0xff;
    if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17f) {
        bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
        if (odd_lower ? (c % 2 == 1) : (c % 2 == 0)) return c + 1;
        return c;
    }
    if (c == 0x130) return 'i';
    if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
    if (c == 0x386) return 0x3ac;
    if (c >= 0x388 && c <= 0x38a) return c + 37;
    if (c >= 0x410 && c <= 0x42f) return c + 32;
    if (c >= 0x400 && c <= 0x40f) return c + 80;
    return c;
}

static bool is_cased(uint32_t c) { return to_upper(c) != c || to_lower(c) != c; }
static bool is_alpha_cp(uint32_t c) {
    return (c < 0x80) ? ((c | 32) >= 'a' && (c | 32) <= 'z') : (is_cased(c) || (c >= 0x4e00 && c <= 0x9fff));
}
static bool is_digit_cp(uint32_t c) { return c >= '0' && c <= '9'; }

enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE };

/* str.upper/lower/capitalize/title over code points. */
static bool map_case(jctx *c, const jnode *at, jv s, int mode, jv *out) {
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp;
        size_t len = jinja_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
        uint32_t o = cp;
        switch (mode) {
        case CASE_UPPER: o = to_upper(cp); break;
        case CASE_LOWER: o = to_lower(cp); break;
        case CASE_CAPITALIZE: o = first ? to_upper(cp) : to_lower(cp); break;
        default: o = prev_cased ? to_lower(cp) : to_upper(cp); break;
        }
        prev_cased = is_cased(cp);
        first = false;
        if (o == cp) {
            jinja_buf_put(&b, s.u.s.p + i, len);
        } else {
            char enc[4];
            jinja_buf_put(&b, enc, jinja_utf8_put(enc, o));
        }
        i += len;
    }
    return buf_done(c, at, &b, out);
}

/* ---- strip / split / replace ----------------------------------------------------------------- */

static bool in_chars(uint32_t cp, jv chars) {
    if (chars.t != JV_STR) return jinja_is_space(cp);
    for (size_t i = 0; i < chars.u.s.n;) {
        uint32_t x;
        i += jinja_utf8_next(chars.u.s.p + i, chars.u.s.n - i, &x);
        if (x == cp) return true;
    }
    return false;
}

/* str.strip/lstrip/rstrip: chars is a string, or anything else for whitespace. */
static jv strip_str(jv s, jv chars, bool left, bool right) {
    size_t a = 0, b = s.u.s.n;
    while (left && a < b) {
        uint32_t cp;
        size_t len = jinja_utf8_next(s.u.s.p + a, b - a, &cp);
        if (!in_chars(cp, chars)) break;
        a += len;
    }
    while (right && b > a) {
        size_t st = b - 1;
        while (st > a && b - st < 4 && ((unsigned char)s.u.s.p[st] & 0xc0) == 0x80) st--;
        uint32_t cp;
        size_t len = jinja_utf8_next(s.u.s.p + st, b - st, &cp);
        if (st + len != b) st = b - 1, cp = (unsigned char)s.u.s.p[st];
        if (!in_chars(cp, chars)) break;
        b = st;
    }
    return jv_strn(s.u.s.p + a, b - a);
}

/* str.split / str.rsplit.  sep: a string or none (runs of whitespace). */
static bool split_str(jctx *c, const jnode *at, jv s, jv sep, int64_t maxsplit, bool from_right, jv *out) {
    jlist *l;
    if (!new_list(c, at, 0, &l)) return false;
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (sep.t == JV_STR) {
        if (sep.u.s.n == 0) return jinja_fail(c, at, "empty separator");
        size_t k = sep.u.s.n;
        if (!from_right) {
            size_t start = 0;
            while (maxsplit != 0) {
                const char *hit = memmem(p + start, n - start, sep.u.s.p, k);
                if (!hit) break;
                if (!push(c, at, l, jv_strn(p + start, (size_t)(hit - (p + start))))) return false;
                start = (size_t)(hit - p) + k;
                if (maxsplit > 0) maxsplit--;
            }
            if (!push(c, at, l, jv_strn(p + start, n - start))) return false;
        } else {
            size_t end = n;
            while (maxsplit != 0 && end >= k) {
                size_t i = end - k + 1;
                bool found = false;
                while (i-- > 0)
                    if (!memcmp(p + i, sep.u.s.p, k)) {
                        found = true;
                        break;
                    }
                if (!found) break;
                if (!push(c, at, l, jv_strn(p + i + k, end - i - k))) return false;
                end = i;
                if (maxsplit > 0) maxsplit--;
            }
            if (!push(c, at, l, jv_strn(p, end))) return false;
            for (size_t i = 0; i < l->n / 2; i++) {
                jv t = l->v[i];
                l->v[i] = l->v[l->n - 1 - i];
                l->v[l->n - 1 - i] = t;
            }
        }
        *out = jv_list(l, JL_LIST);
        return jinja_step(c, l->n);
    }
    /* whitespace split: words between runs of whitespace, ends ignored */
    size_t i = 0;
    if (from_right) {
        /* collect all word boundaries, then keep the last maxsplit splits */
        jlist *all;
        if (!new_list(c, at, 0, &all)) return false;
        jv rest = strip_str(s, jv_none(), true, true);
        size_t count_words = 0;
        while (i < rest.u.s.n) {
            size_t st = i;
            uint32_t cp;
            while (i < rest.u.s.n) {
                size_t len = jinja_utf8_next(rest.u.s.p + i, rest.u.s.n - i, &cp);
                if (jinja_is_space(cp)) break;
                i += len;
            }
            if (!push(c, at, all, jv_strn(rest.u.s.p + st, i - st))) return false;
            count_words++;
            while (i < rest.u.s.n) {
                size_t len = jinja_utf8_next(rest.u.s.p + i, rest.u.s.n - i, &cp);
                if (!jinja_is_space(cp)) break;
                i += len;
            }
        }
        if (maxsplit < 0 || (size_t)maxsplit + 1 >= count_words) {
            *out = jv_list(all, JL_LIST);
            return true;
        }
        size_t keep = (size_t)maxsplit; /* words split off the right */
        size_t head_words = count_words - keep;
        const jv last_head = all->v[head_words - 1];
        /* the unsplit head keeps its leading whitespace, as Python's rsplit does */
        jv head = jv_strn(s.u.s.p, (size_t)(last_head.u.s.p + last_head.u.s.n - s.u.s.p));
        if (!push(c, at, l, head)) return false;
        for (size_t w = head_words; w < count_words; w++)
            if (!push(c, at, l, all->v[w])) return false;
        *out = jv_list(l, JL_LIST);
        return true;
    }
    while (i < n) {
        uint32_t cp;
        while (i < n) { /* skip whitespace */
            size_t len = jinja_utf8_next(p + i, n - i, &cp);
            if (!jinja_is_space(cp)) break;
            i += len;
        }
        if (i >= n) break;
        if (maxsplit == 0) { /* the rest, minus trailing whitespace */
            jv rest = strip_str(jv_strn(p + i, n - i), jv_none(), false, true);
            if (!push(c, at, l, rest)) return false;
            break;
        }
        size_t st = i;
        while (i < n) {
            size_t len = jinja_utf8_next(p + i, n - i, &cp);
            if (jinja_is_space(cp)) break;
            i += len;
        }
        if (!push(c, at, l, jv_strn(p + st, i - st))) return false;
        if (maxsplit > 0) maxsplit--;
    }
    *out = jv_list(l, JL_LIST);
    return jinja_step(c, l->n);
}

/* str.replace(old, new, count): an empty old inserts new between every character, as Python. */
static bool replace_str(jctx *c, const jnode *at, jv s, jv old, jv rep, int64_t count, jv *out) {
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    if (old.u.s.n == 0) {
        while (i <= n) {
            if (count != 0) {
                jinja_buf_put(&b, rep.u.s.p, rep.u.s.n);
                if (count > 0) count--;
            }
            if (i == n) break;
            uint32_t cp;
            size_t len = jinja_utf8_next(p + i, n - i, &cp);
            jinja_buf_put(&b, p + i, len);
            i += len;
            if (b.over) break;
        }
        return buf_done(c, at, &b, out);
    }
    while (i < n && count != 0) {
        const char *hit = memmem(p + i, n - i, old.u.s.p, old.u.s.n);
        if (!hit) break;
        jinja_buf_put(&b, p + i, (size_t)(hit - (p + i)));
        jinja_buf_put(&b, rep.u.s.p, rep.u.s.n);
        i = (size_t)(hit - p) + old.u.s.n;
        if (count > 0) count--;
        if (b.over) break;
    }
    jinja_buf_put(&b, p + i, n - i);
    return buf_done(c, at, &b, out);
}

/* Python's str.splitlines line boundaries. */
static size_t line_break_len(const char *p, size_t n, size_t i) {
    uint32_t cp;
    size_t len = jinja_utf8_next(p + i, n - i, &cp);
    if (cp == '\r') return i + 1 < n && p[i + 1] == '\n' ? 2 : 1;
    if (cp == '\n' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 || cp == 0x2028 ||
        cp == 0x2029)
        return len;
    return 0;
}

static bool splitlines(jctx *c, const jnode *at, jv s, bool keepends, jlist **out) {
    if (!new_list(c, at, 0, out)) return false;
    size_t i = 0, st = 0, n = s.u.s.n;
    while (i < n) {
        size_t bl = line_break_len(s.u.s.p, n, i);
        if (bl) {
            if (!push(c, at, *out, jv_strn(s.u.s.p + st, i - st + (keepends ? bl : 0)))) return false;
            i += bl;
            st = i;
        } else {
            uint32_t cp;
            i += jinja_utf8_next(s.u.s.p + i, n - i, &cp);
        }
    }
    if (st < n && !push(c, at, *out, jv_strn(s.u.s.p + st, n - st))) return false;
    return true;
}

/* ---- %-formatting (str % args and the format filter) ---------------------------------------- */

bool jinja_py_format(jctx *c, const jnode *at, jv fmt, const jv *args, size_t nargs, const jv *mapping, jv *out) {
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    size_t ai = 0;
    if (mapping) { /* `fmt % dict`: %(key)s looks up, a plain %s formats the whole dict */
        args = mapping;
        nargs = 1;
    }
    const char *p = fmt.u.s.p, *end = p + fmt.u.s.n;
    while (p < end) {
        if (*p != '%') {
            jinja_buf_putc(&b, *p++);
            continue;
        }
        p++;
        if (p < end && *p == '%') {
            jinja_buf_putc(&b, '%');
            p++;
            continue;
        }
        jv keyed = jv_none();
        bool has_key = false;
        if (p < end && *p == '(' && mapping && mapping->t == JV_UNDEF) {
            jinja_buf_free(&b);
            return jinja_fail(c, at, "%s", mapping->u.s.p ? mapping->u.s.p : "value is undefined");
        }
        if (p < end && *p == '(' && mapping && mapping->t != JV_DICT) {
            jinja_buf_free(&b);
            return jinja_fail(c, at, "%s indices must be integers or slices, not str", jinja_type_name(*mapping));
        }
        if (p < end && *p == '(' && mapping) {
            const char *close = memchr(p, ')', (size_t)(end - p));
            if (!close) {
                jinja_buf_free(&b);
                return jinja_fail(c, at, "incomplete format key");
            }
            jv *v = jinja_dict_get_str(mapping->u.d, p + 1, (size_t)(close - p - 1));
            if (!v) {
                jinja_buf_free(&b);
                return jinja_fail(c, at, "format key '%.*s' not found", (int)(close - p - 1), p + 1);
            }
            keyed = *v;
            has_key = true;
            p = close + 1;
        }
        char spec[32] = "%";
        size_t k = 1;
        while (p < end && *p && strchr("-+ 0#", *p) && k < 8) spec[k++] = *p++;
        while (p < end && *p >= '0' && *p <= '9' && k < 16) spec[k++] = *p++;
        if (p < end && *p == '.') {
            spec[k++] = *p++;
            while (p < end && *p >= '0' && *p <= '9' && k < 24) spec[k++] = *p++;
        }
        if (p >= end) {
            jinja_buf_free(&b);
            return jinja_fail(c, at, "incomplete format");
        }
        /* widths and precisions past 5 digits only serve to blow up the output */
        for (const char *q = spec; *q; q++)
            if (strspn(q, "0123456789") > 5) {
                jinja_buf_free(&b);
                return jinja_fail(c, at, "format width or precision too large");
            }
        char conv = *p++;
        if (!has_key && ai >= nargs) {
            jinja_buf_free(&b);
            return jinja_fail(c, at, "not enough arguments for format string");
        }
        jv a = has_key ? keyed : args[ai++];
        if (conv == 's' || conv == 'r') {
            /* width and precision count code points, as Python's do */
            jbuf t;
            jinja_buf_init(&t, JINJA_MAX_OUTPUT);
            if (conv == 's') jinja_put_str(&t, a);
            else jinja_put_repr(&t, a);
            spec[k] = 0;
            bool left = strchr(spec, '-') != NULL;
            const char *dot = strchr(spec, '.');
            const char *w = spec + 1;
            while (*w && strchr("-+ 0#", *w)) w++;
            long width = atol(w), prec = dot ? atol(dot + 1) : -1;
            size_t len = t.n, ncp = jinja_utf8_len(t.p ? t.p : "", t.n);
            if (prec >= 0 && (size_t)prec < ncp) {
                len = jinja_utf8_offset(t.p, t.n, (size_t)prec);
                ncp = (size_t)prec;
            }
            long pad = width > (long)ncp ? width - (long)ncp : 0;
            for (long i = 0; !left && i < pad; i++) jinja_buf_putc(&b, ' ');
            jinja_buf_put(&b, t.p ? t.p : "", len);
            for (long i = 0; left && i < pad; i++) jinja_buf_putc(&b, ' ');
            jinja_buf_free(&t);
        } else if (strchr("dixXo", conv)) {
            if (!is_int(a) && a.t != JV_FLOAT) {
                jinja_buf_free(&b);
                return jinja_fail(c, at, "%%%c format: a number is required, not %s", conv, jinja_type_name(a));
            }
            long long v = a.t == JV_FLOAT ? (long long)a.u.f : (long long)int_of(a);
            spec[k++] = 'l', spec[k++] = 'l', spec[k++] = conv == 'i' ? 'd' : conv, spec[k] = 0;
            jinja_buf_printf(&b, spec, v);
        } else if (strchr("feEgG", conv)) {
            if (!is_int(a) && a.t != JV_FLOAT) {
                jinja_buf_free(&b);
                return jinja_fail(c, at, "must be real number, not %s", jinja_type_name(a));
            }
            spec[k++] = conv, spec[k] = 0;
            jinja_buf_printf(&b, spec, a.t == JV_FLOAT ? a.u.f : (double)int_of(a));
        } else {
            jinja_buf_free(&b);
            return jinja_fail(c, at, "unsupported format character '%c'", conv);
        }
    }
    if (ai < nargs && !mapping) {
        jinja_buf_free(&b);
        return jinja_fail(c, at, "not all arguments converted during string formatting");
    }
    return buf_done(c, at, &b, out);
}

/* ---- sorting ------------------------------------------------------------------------------------ */

typedef struct {
    jctx *c;
    const jnode *at;
    bool failed;
} sort_env;

static bool key_lt(sort_env *e, jv a, jv b) {
    bool ok;
    bool r = jinja_lt(a, b, &ok);
    if (!ok && !e->failed) {
        e->failed = true;
        jinja_fail(e->c, e->at, "'<' not supported between instances of '%s' and '%s'", jinja_type_name(a),
                   jinja_type_name(b));
    }
    return r;
}

/* Stable merge sort of idx[] by keys[] (Python's sorted is stable; reverse keeps stability too). */
static void merge_sort(sort_env *e, size_t *idx, size_t *tmp, size_t n, const jv *keys, bool reverse) {
    if (n < 2 || e->failed) return;
    size_t h = n / 2;
    merge_sort(e, idx, tmp, h, keys, reverse);
    merge_sort(e, idx + h, tmp, n - h, keys, reverse);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        bool take_right = reverse ? key_lt(e, keys[idx[i]], keys[idx[j]]) : key_lt(e, keys[idx[j]], keys[idx[i]]);
        tmp[k++] = take_right ? idx[j++] : idx[i++];
    }
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    jinja_copy(idx, tmp, n * sizeof *idx);
}

/* ---- attribute getter (map(attribute=), sort(attribute=), ...) --------------------------------- */

/* jinja2's make_attrgetter: "a.b.0" looks up item by item. */
static bool get_path(jctx *c, const jnode *at, jv item, jv attr, jv *out) {
    if (attr.t == JV_INT) return jinja_getitem(c, at, item, attr, out);
    if (attr.t != JV_STR) return jinja_getitem(c, at, item, attr, out);
    const char *p = attr.u.s.p, *end = p + attr.u.s.n;
    jv cur = item;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *pe = dot ? dot : end;
        jv key = jv_strn(p, (size_t)(pe - p));
        bool digits = pe > p;
        int64_t num = 0;
        for (const char *q = p; q < pe; q++) {
            if (*q < '0' || *q > '9' || num > INT64_MAX / 10 - 10) {
                digits = false;
                break;
            }
            num = num * 10 + (*q - '0');
        }
        if (digits) key = jv_int(num);
        if (!jinja_getitem(c, at, cur, key, &cur)) return false;
        if (!dot) break;
        p = dot + 1;
    }
    *out = cur;
    return true;
}

/* Sort/unique/min/max key: the attribute if given, lower-cased when not case sensitive. */
static bool sort_key(jctx *c, const jnode *at, jv item, const jv *attribute, bool case_sensitive, jv *out) {
    jv k = item;
    if (attribute && attribute->t != JV_NONE && !get_path(c, at, item, *attribute, &k)) return false;
    if (!case_sensitive && k.t == JV_STR) return map_case(c, at, k, CASE_LOWER, out);
    *out = k;
    return true;
}

/* ---- filters ------------------------------------------------------------------------------------- */

typedef struct {
    jctx *c;
    const jnode *at;
    jv in;
    const jargs *a;
    const jv *p[6]; /* bound parameters, NULL when not given */
} fcall;

typedef bool (*filter_fn)(fcall *f, jv *out);

static jv param(const fcall *f, int i, jv dflt) { return f->p[i] ? *f->p[i] : dflt; }

static bool str_in(fcall *f, jv *s) { return jinja_to_str(f->c, f->in, s); }

static bool f_abs(fcall *f, jv *out) {
    jv v = f->in;
    if (v.t == JV_FLOAT) *out = jv_float(fabs(v.u.f));
    else if (is_int(v) && int_of(v) != INT64_MIN) *out = jv_int(int_of(v) < 0 ? -int_of(v) : int_of(v));
    else return jinja_fail(f->c, f->at, "bad operand type for abs(): '%s'", jinja_type_name(v));
    return true;
}

static bool f_attr(fcall *f, jv *out) {
    jv name = param(f, 0, jv_none());
    if (name.t != JV_STR) return jinja_fail(f->c, f->at, "attribute name must be a string");
    /* the sandboxed getattr: attributes only, no item fallback */
    if (f->in.t == JV_DICT) {
        const char *m = jinja_method_name(f->in, name.u.s.p, name.u.s.n);
        if (!m) {
            *out = jinja_undef(f->c, "'dict object' has no attribute '%.*s'", (int)name.u.s.n, name.u.s.p);
            return true;
        }
    }
    return jinja_getattr(f->c, f->at, f->in, name.u.s.p, name.u.s.n, out);
}

static bool f_batch(fcall *f, jv *out) {
    jv count = param(f, 0, jv_none());
    if (!is_int(count) || int_of(count) <= 0) return jinja_fail(f->c, f->at, "batch needs a positive count");
    jlist *items, *res, *cur = NULL;
    if (!jinja_iterate(f->c, f->at, f->in, &items) || !new_list(f->c, f->at, 0, &res)) return false;
    for (size_t i = 0; i < items->n; i++) {
        if (!cur && !new_list(f->c, f->at, 0, &cur)) return false;
        if (!push(f->c, f->at, cur, items->v[i])) return false;
        if ((int64_t)cur->n == int_of(count)) {
            if (!push(f->c, f->at, res, jv_list(cur, JL_LIST))) return false;
            cur = NULL;
        }
    }
    if (cur) {
        if (f->p[1])
            while ((int64_t)cur->n < int_of(count))
                if (!push(f->c, f->at, cur, *f->p[1])) return false;
        if (!push(f->c, f->at, res, jv_list(cur, JL_LIST))) return false;
    }
    *out = jv_list(res, JL_GEN);
    return true;
}

static bool f_capitalize(fcall *f, jv *out) {
    jv s;
    return str_in(f, &s) && map_case(f->c, f->at, s, CASE_CAPITALIZE, out);
}

static bool f_center(fcall *f, jv *out) {
    jv s, w = param(f, 0, jv_int(80));
    if (!str_in(f, &s)) return false;
    if (!is_int(w)) return jinja_fail(f->c, f->at, "center width must be an integer");
    int64_t width = int_of(w), len = (int64_t)jinja_utf8_len(s.u.s.p, s.u.s.n);
    if (width <= len) {
        *out = s;
        return true;
    }
    if (width > JINJA_MAX_OUTPUT) return jinja_fail(f->c, f->at, "center width too large");
    int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    for (int64_t i = 0; i < left; i++) jinja_buf_putc(&b, ' ');
    jinja_buf_put(&b, s.u.s.p, s.u.s.n);
    for (int64_t i = 0; i < marg - left; i++) jinja_buf_putc(&b, ' ');
    return buf_done(f->c, f->at, &b, out);
}

static bool length_of(jctx *c, const jnode *at, jv v, int64_t *n) {
    switch (v.t) {
    case JV_STR: *n = (int64_t)jinja_utf8_len(v.u.s.p, v.u.s.n); return true;
    case JV_LIST:
        if (v.sub == JL_GEN) return jinja_fail(c, at, "object of type 'generator' has no len()");
        *n = (int64_t)v.u.l->n;
        return true;
    case JV_DICT: *n = (int64_t)v.u.d->n; return true;
    case JV_UNDEF: *n = 0; return true;
    case JV_LOOP: *n = (int64_t)v.u.loop->items->n; return true;
    default: return jinja_fail(c, at, "object of type '%s' has no len()", jinja_type_name(v));
    }
}

static bool f_length(fcall *f, jv *out) {
    int64_t n = 0;
    if (!length_of(f->c, f->at, f->in, &n)) return false;
    *out = jv_int(n);
    return true;
}

static bool f_default(fcall *f, jv *out) {
    bool boolean = f->p[1] && jinja_truthy(*f->p[1]);
    if (f->in.t == JV_UNDEF || (boolean && !jinja_truthy(f->in))) *out = param(f, 0, jv_strn("", 0));
    else *out = f->in;
    return true;
}

static bool f_dictsort(fcall *f, jv *out) {
    if (f->in.t != JV_DICT) return jinja_fail(f->c, f->at, "dictsort needs a mapping");
    bool cs = f->p[0] && jinja_truthy(*f->p[0]), rev = f->p[2] && jinja_truthy(*f->p[2]);
    jv by = param(f, 1, jv_strn("key", 3));
    bool by_value = by.t == JV_STR && by.u.s.n == 5 && !memcmp(by.u.s.p, "value", 5);
    if (by.t != JV_STR || (!by_value && !(by.u.s.n == 3 && !memcmp(by.u.s.p, "key", 3))))
        return jinja_fail(f->c, f->at, "You can only sort by either 'key' or 'value'");
    const jdict *d = f->in.u.d;
    size_t n = d->n;
    jv *keys = jinja_ctx_alloc(f->c, (n + 1) * sizeof *keys);
    size_t *idx = jinja_ctx_alloc(f->c, (n + 1) * sizeof *idx), *tmp = jinja_ctx_alloc(f->c, (n + 1) * sizeof *tmp);
    jlist *l;
    if (!keys || !idx || !tmp || !new_list(f->c, f->at, n, &l)) return false;
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        if (!sort_key(f->c, f->at, by_value ? d->v[i] : d->k[i], NULL, cs, &keys[i])) return false;
    }
    sort_env e = { f->c, f->at, false };
    merge_sort(&e, idx, tmp, n, keys, rev);
    if (e.failed || !jinja_step(f->c, n * 8)) return false;
    for (size_t i = 0; i < n; i++)
        if (!make_tuple2(f->c, f->at, d->k[idx[i]], d->v[idx[i]], &l->v[i])) return false;
    l->n = n;
    *out = jv_list(l, JL_LIST);
    return true;
}

static bool f_escape(fcall *f, jv *out) {
    jv s;
    if (!str_in(f, &s)) return false;
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    for (size_t i = 0; i < s.u.s.n; i++) {
        switch (s.u.s.p[i]) {
        case '&': jinja_buf_puts(&b, "&amp;"); break;
        case '<': jinja_buf_puts(&b, "&lt;"); break;
        case '>': jinja_buf_puts(&b, "&gt;"); break;
        case '"': jinja_buf_puts(&b, "&#34;"); break;
        case '\'': jinja_buf_puts(&b, "&#39;"); break;
        default: jinja_buf_putc(&b, s.u.s.p[i]);
        }
    }
    return buf_done(f->c, f->at, &b, out);
}

static bool f_first(fcall *f, jv *out) {
    jlist *items;
    if (!jinja_iterate(f->c, f->at, f->in, &items)) return false;
    *out = items->n ? items->v[0] : jinja_undef(f->c, "No first item, sequence was empty.");
    return true;
}

static bool f_last(fcall *f, jv *out) {
    if (f->in.t == JV_LIST && f->in.sub == JL_GEN)
        return jinja_fail(f->c, f->at, "'generator' object is not reversible");
    jlist *items;
    if (!jinja_iterate(f->c, f->at, f->in, &items)) return false;
    *out = items->n ? items->v[items->n - 1] : jinja_undef(f->c, "No last item, sequence was empty.");
    return true;
}

/* Python's float(str): optional whitespace, a decimal literal with optional underscores, inf, nan. */
static bool parse_float(jv s, double *out) {
    jv t = strip_str(s, jv_none(), true, true);
    char buf[128];
    if (t.u.s.n == 0 || t.u.s.n >= sizeof buf) return false;
    size_t k = 0;
    for (size_t i = 0; i < t.u.s.n; i++) {
        char ch = t.u.s.p[i];
        if (ch == '_') {
            if (i == 0 || i + 1 == t.u.s.n || !is_digit_cp((unsigned char)t.u.s.p[i - 1]) ||
                !is_digit_cp((unsigned char)t.u.s.p[i + 1]))
                return false;
            continue;
        }
        if (!strchr("0123456789+-.eEinfatyINFATY", ch)) return false;
        buf[k++] = ch;
    }
    buf[k] = 0;
    if (strchr(buf, 'x') || strchr(buf, 'X')) return false;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0 && end != buf;
}

/* Python's int(str, base): whitespace, sign, digits with single underscores. */
static bool parse_int(jv s, int base, int64_t *out) {
    jv t = strip_str(s, jv_none(), true, true);
    const char *p = t.u.s.p, *end = p + t.u.s.n;
    bool neg = false;
    if (p < end && (*p == '+' || *p == '-')) neg = *p++ == '-';
    if (base == 16 && end - p > 2 && p[0] == '0' && (p[1] | 32) == 'x') p += 2;
    if (p >= end) return false;
    uint64_t v = 0;
    bool prev_us = true;
    for (; p < end; p++) {
        if (*p == '_') {
            if (prev_us) return false;
            prev_us = true;
            continue;
        }
        int d = *p >= '0' && *p <= '9' ? *p - '0' : (*p | 32) >= 'a' && (*p | 32) <= 'z' ? (*p | 32) - 'a' + 10 : 99;
        if (d >= base) return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return false;
        v = v * (uint64_t)base + (uint64_t)d;
        prev_us = false;
    }
    if (prev_us || v > (uint64_t)INT64_MAX + (neg ? 1 : 0)) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* int() and float() of an Undefined raise, unlike str() */
static bool undef_number(fcall *f) {
    return jinja_fail(f->c, f->at, "%s", f->in.u.s.p ? f->in.u.s.p : "value is undefined");
}

static bool f_float(fcall *f, jv *out) {
    jv v = f->in;
    double d;
    if (v.t == JV_UNDEF) return undef_number(f);
    if (v.t == JV_FLOAT) *out = v;
    else if (is_int(v)) *out = jv_float((double)int_of(v));
    else if (v.t == JV_STR && parse_float(v, &d)) *out = jv_float(d);
    else *out = param(f, 0, jv_float(0.0));
    return true;
}

static bool f_int(fcall *f, jv *out) {
    jv v = f->in, base = param(f, 1, jv_int(10));
    int64_t i;
    double d;
    if (v.t == JV_UNDEF) return undef_number(f);
    if (!is_int(base) || int_of(base) < 2 || int_of(base) > 36) return jinja_fail(f->c, f->at, "int base must be 2..36");
    if (is_int(v)) *out = jv_int(int_of(v));
    else if (v.t == JV_FLOAT && isfinite(v.u.f) && fabs(v.u.f) < 9.2e18) *out = jv_int((int64_t)v.u.f);
    else if (v.t == JV_STR && parse_int(v, (int)int_of(base), &i)) *out = jv_int(i);
    /* the jinja2 quirk: "42.23"|int is 42 through float() */
    else if (v.t == JV_STR && parse_float(v, &d) && isfinite(d) && fabs(d) < 9.2e18) *out = jv_int((int64_t)d);
    else *out = param(f, 0, jv_int(0));
    return true;
}

static bool f_indent(fcall *f, jv *out) {
    jv s, w = param(f, 0, jv_int(4));
    bool first = f->p[1] && jinja_truthy(*f->p[1]), blank = f->p[2] && jinja_truthy(*f->p[2]);
    /* jinja2 does `s += "\n"`, which only a string survives */
    if (f->in.t == JV_UNDEF) return jinja_fail(f->c, f->at, "%s", f->in.u.s.p ? f->in.u.s.p : "value is undefined");
    if (f->in.t != JV_STR)
        return jinja_fail(f->c, f->at, "unsupported operand type(s) for +=: '%s' and 'str'", jinja_type_name(f->in));
    s = f->in;
    jv ind;
    if (w.t == JV_STR) {
        ind = w;
    } else if (is_int(w)) {
        int64_t k = int_of(w) < 0 ? 0 : int_of(w);
        if (k > 4096) return jinja_fail(f->c, f->at, "indent width too large");
        char *sp = jinja_ctx_alloc(f->c, (size_t)k + 1);
        if (!sp) return false;
        memset(sp, ' ', (size_t)k);
        ind = jv_strn(sp, (size_t)k);
    } else {
        return jinja_fail(f->c, f->at, "indent width must be an integer or string");
    }
    /* s += "\n" then splitlines(): the added newline only ends the last line */
    jv sn;
    jbuf tmp;
    jinja_buf_init(&tmp, JINJA_MAX_OUTPUT);
    jinja_buf_put(&tmp, s.u.s.p, s.u.s.n);
    jinja_buf_putc(&tmp, '\n');
    jlist *lines;
    if (!buf_done(f->c, f->at, &tmp, &sn) || !splitlines(f->c, f->at, sn, false, &lines)) return false;
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    if (first) jinja_buf_put(&b, ind.u.s.p, ind.u.s.n);
    for (size_t i = 0; i < lines->n; i++) {
        jv line = lines->v[i];
        if (i) {
            jinja_buf_putc(&b, '\n');
            if (blank || line.u.s.n) jinja_buf_put(&b, ind.u.s.p, ind.u.s.n);
        }
        jinja_buf_put(&b, line.u.s.p, line.u.s.n);
    }
    return buf_done(f->c, f->at, &b, out);
}

static bool dict_items(jctx *c, const jnode *at, const jdict *d, jl_kind kind, jv *out) {
    jlist *l;
    if (!new_list(c, at, d->n, &l)) return false;
    for (size_t i = 0; i < d->n; i++)
        if (!make_tuple2(c, at, d->k[i], d->v[i], &l->v[i])) return false;
    l->n = d->n;
    *out = jv_list(l, kind);
    return jinja_step(c, d->n);
}

static bool f_items(fcall *f, jv *out) {
    if (f->in.t == JV_UNDEF) {
        jlist *l;
        if (!new_list(f->c, f->at, 0, &l)) return false;
        *out = jv_list(l, JL_GEN);
        return true;
    }
    if (f->in.t != JV_DICT) return jinja_fail(f->c, f->at, "Can only get item pairs from a mapping.");
    return dict_items(f->c, f->at, f->in.u.d, JL_GEN, out);
}

static bool f_join(fcall *f, jv *out) {
    jv sep, d = param(f, 0, jv_strn("", 0));
    jlist *items;
    if (!jinja_to_str(f->c, d, &sep) || !jinja_iterate(f->c, f->at, f->in, &items)) return false;
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    for (size_t i = 0; i < items->n; i++) {
        jv item = items->v[i];
        if (f->p[1] && f->p[1]->t != JV_NONE && !get_path(f->c, f->at, item, *f->p[1], &item)) {
            jinja_buf_free(&b);
            return false;
        }
        if (i) jinja_buf_put(&b, sep.u.s.p, sep.u.s.n);
        jinja_put_str(&b, item);
    }
    return buf_done(f->c, f->at, &b, out);
}

static bool f_list(fcall *f, jv *out) {
    jlist *items, *l;
    if (!jinja_iterate(f->c, f->at, f->in, &items) || !new_list(f->c, f->at, items->n, &l)) return false;
    jinja_copy(l->v, items->v, items->n * sizeof(jv));
    l->n = items->n;
    *out = jv_list(l, JL_LIST);
    return true;
}

static bool f_lower(fcall *f, jv *out) {
    jv s;
    return str_in(f, &s) && map_case(f->c, f->at, s, CASE_LOWER, out);
}

static bool f_upper(fcall *f, jv *out) {
    jv s;
    return str_in(f, &s) && map_case(f->c, f->at, s, CASE_UPPER, out);
}

static bool f_map(fcall *f, jv *out) {
    const jargs *a = f->a;
    jlist *res;
    if (!new_list(f->c, f->at, 0, &res)) return false;
    *out = jv_list(res, JL_GEN);
    const jv *attribute = NULL, *dflt = NULL;
    for (int k = 0; k < a->nkw; k++) {
        if (!strcmp(a->kw[k], "attribute")) attribute = &a->kwv[k];
        else if (!strcmp(a->kw[k], "default")) dflt = &a->kwv[k];
    }
    bool by_attr = a->nargs == 0 && attribute;
    if (by_attr && a->nkw > (dflt ? 2 : 1)) return jinja_fail(f->c, f->at, "Unexpected keyword argument");
    if (!by_attr && (a->nargs == 0 || a->args[0].t != JV_STR))
        return jinja_fail(f->c, f->at, "map requires a filter argument");
    if (!jinja_truthy(f->in)) return true;
    jlist *items;
    if (!jinja_iterate(f->c, f->at, f->in, &items)) return false;
    for (size_t i = 0; i < items->n; i++) {
        jv v;
        if (by_attr) {
            if (!get_path(f->c, f->at, items->v[i], *attribute, &v)) return false;
            if (v.t == JV_UNDEF && dflt) v = *dflt;
        } else {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)a->args[0].u.s.n, a->args[0].u.s.p);
            if (!jinja_filter_known(name)) return jinja_fail(f->c, f->at, "no filter named '%s'", name);
            jargs sub = { a->args + 1, a->nargs - 1, a->kw, a->kwv, a->nkw };
            if (!jinja_apply_filter(f->c, f->at, name, items->v[i], &sub, &v)) return false;
        }
        if (!push(f->c, f->at, res, v)) return false;
    }
    return true;
}

/* select/reject (attr = false) and selectattr/rejectattr (attr = true). */
static bool select_common(fcall *f, bool attr, bool keep_if, jv *out) {
    const jargs *a = f->a;
    jlist *res;
    if (!new_list(f->c, f->at, 0, &res)) return false;
    *out = jv_list(res, JL_GEN);
    if (!jinja_truthy(f->in)) return true;
    int off = attr ? 1 : 0;
    if (attr && a->nargs < 1) return jinja_fail(f->c, f->at, "Missing parameter for attribute name");
    char test[64] = "";
    if (a->nargs > off) {
        if (a->args[off].t != JV_STR) return jinja_fail(f->c, f->at, "test name must be a string");
        snprintf(test, sizeof test, "%.*s", (int)a->args[off].u.s.n, a->args[off].u.s.p);
    }
    jargs sub = { a->args + off + 1, a->nargs > off + 1 ? a->nargs - off - 1 : 0, a->kw, a->kwv, a->nkw };
    jlist *items;
    if (!jinja_iterate(f->c, f->at, f->in, &items)) return false;
    for (size_t i = 0; i < items->n; i++) {
        jv v = items->v[i];
        bool r;
        if (attr && !get_path(f->c, f->at, v, a->args[0], &v)) return false;
        if (test[0]) {
            if (!jinja_apply_test(f->c, f->at, test, v, &sub, &r)) return false;
        } else {
            r = jinja_truthy(v);
        }
        if (r == keep_if && !push(f->c, f->at, res, items->v[i])) return false;
    }
    return true;
}

static bool f_select(fcall *f, jv *out) { return select_common(f, false, true, out); }
static bool f_reject(fcall *f, jv *out) { return select_common(f, false, false, out); }
static bool f_selectattr(fcall *f, jv *out) { return select_common(f, true, true, out); }
static bool f_rejectattr(fcall *f, jv *out) { return select_common(f, true, false, out); }

static bool minmax(fcall *f, bool want_max, jv *out) {
    jlist *items;
    if (!jinja_iterate(f->c, f->at, f->in, &items)) return false;
    bool cs = f->p[0] && jinja_truthy(*f->p[0]);
    if (items->n == 0) {
        *out = jinja_undef(f->c, "No aggregated item, sequence was empty.");
        return true;
    }
    sort_env e = { f->c, f->at, false };
    size_t best = 0;
    jv best_key;
    if (!sort_key(f->c, f->at, items->v[0], f->p[1], cs, &best_key)) return false;
    for (size_t i = 1; i < items->n; i++) {
        jv k;
        if (!sort_key(f->c, f->at, items->v[i], f->p[1], cs, &k)) return false;
        if (want_max ? key_lt(&e, best_key, k) : key_lt(&e, k, best_key)) best = i, best_key = k;
        if (e.failed) return false;
    }
    *out = items->v[best];
    return true;
}

static bool f_max(fcall *f, jv *out) { return minmax(f, true, out); }
static bool f_min(fcall *f, jv *out) { return minmax(f, false, out); }

static bool f_replace(fcall *f, jv *out) {
    jv s, old, rep, count = param(f, 2, jv_none());
    if (!str_in(f, &s) || !jinja_to_str(f->c, param(f, 0, jv_strn("", 0)), &old) ||
        !jinja_to_str(f->c, param(f, 1, jv_strn("", 0)), &rep))
        return false;
    if (!f->p[0] || !f->p[1]) return jinja_fail(f->c, f->at, "replace() needs old and new");
    if (count.t != JV_NONE && !is_int(count)) return jinja_fail(f->c, f->at, "replace count must be an integer");
    return replace_str(f->c, f->at, s, old, rep, count.t == JV_NONE ? -1 : int_of(count), out);
}

static bool f_reverse(fcall *f, jv *out) {
    if (f->in.t == JV_STR) {
        jv s = f->in;
        char *p = jinja_ctx_alloc(f->c, s.u.s.n + 1);
        if (!p) return false;
        size_t i = 0;
        while (i < s.u.s.n) { /* reverse by code point */
            uint32_t cp;
            size_t len = jinja_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
            jinja_copy(p + s.u.s.n - i - len, s.u.s.p + i, len);
            i += len;
        }
        *out = jv_strn(p, s.u.s.n);
        return true;
    }
    jlist *items, *l;
    if (!jinja_iterate(f->c, f->at, f->in, &items) || !new_list(f->c, f->at, items->n, &l)) return false;
    for (size_t i = 0; i < items->n; i++) l->v[i] = items->v[items->n - 1 - i];
    l->n = items->n;
    *out = jv_list(l, JL_GEN);
    return true;
}

static bool f_round(fcall *f, jv *out) {
    jv v = f->in, prec = param(f, 0, jv_int(0)), method = param(f, 1, jv_strn("common", 6));
    if (!is_int(prec)) return jinja_fail(f->c, f->at, "round precision must be an integer");
    if (method.t != JV_STR) return jinja_fail(f->c, f->at, "method must be a string");
    bool common = method.u.s.n == 6 && !memcmp(method.u.s.p, "common", 6);
    bool floor_m = method.u.s.n == 5 && !memcmp(method.u.s.p, "floor", 5);
    bool ceil_m = method.u.s.n == 4 && !memcmp(method.u.s.p, "ceil", 4);
    if (!common && !floor_m && !ceil_m) return jinja_fail(f->c, f->at, "method must be common, ceil or floor");
    if (!is_int(v) && v.t != JV_FLOAT) return jinja_fail(f->c, f->at, "round needs a number");
    int64_t p = int_of(prec);
    if (common && is_int(v)) { /* round(int, n) stays an int */
        *out = jv_int(int_of(v));
        return true;
    }
    double d = v.t == JV_FLOAT ? v.u.f : (double)int_of(v);
    if (p > 300) p = 300;
    if (p < -300) p = -300;
    if (common) {
        /* correctly rounded decimal, half to even on the exact binary value, as Python's round */
        char buf[400];
        if (p >= 0) {
            snprintf(buf, sizeof buf, "%.*f", (int)p, d);
            *out = jv_float(strtod(buf, NULL));
        } else {
            double scale = pow(10.0, (double)-p);
            *out = jv_float(nearbyint(d / scale) * scale);
        }
        return true;
    }
    double scale = pow(10.0, (double)p);
    *out = jv_float((floor_m ? floor(d * scale) : ceil(d * scale)) / scale);
    return true;
}

static bool f_safe(fcall *f, jv *out) { return str_in(f, out); }

static bool f_sort(fcall *f, jv *out) {
    jlist *items, *l;
    if (!jinja_iterate(f->c, f->at, f->in, &items)) return false;
    bool rev = f->p[0] && jinja_truthy(*f->p[0]), cs = f->p[1] && jinja_truthy(*f->p[1]);
    size_t n = items->n;
    jv *keys = jinja_ctx_alloc(f->c, (n + 1) * sizeof *keys);
    size_t *idx = jinja_ctx_alloc(f->c, (n + 1) * sizeof *idx), *tmp = jinja_ctx_alloc(f->c, (n + 1) * sizeof *tmp);
    if (!keys || !idx || !tmp || !new_list(f->c, f->at, n, &l)) return false;
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        if (!sort_key(f->c, f->at, items->v[i], f->p[2], cs, &keys[i])) return false;
    }
    sort_env e = { f->c, f->at, false };
    merge_sort(&e, idx, tmp, n, keys, rev);
    if (e.failed || !jinja_step(f->c, n * 8)) return false;
    for (size_t i = 0; i < n; i++) l->v[i] = items->v[idx[i]];
    l->n = n;
    *out = jv_list(l, JL_LIST);
    return true;
}

static bool f_string(fcall *f, jv *out) { return str_in(f, out); }

static bool f_sum(fcall *f, jv *out) {
    jlist *items;
    if (!jinja_iterate(f->c, f->at, f->in, &items)) return false;
    jv acc = param(f, 1, jv_int(0));
    for (size_t i = 0; i < items->n; i++) {
        jv v = items->v[i];
        if (f->p[0] && f->p[0]->t != JV_NONE && !get_path(f->c, f->at, v, *f->p[0], &v)) return false;
        bool ai = is_int(acc), vi = is_int(v);
        if ((ai || acc.t == JV_FLOAT) && (vi || v.t == JV_FLOAT)) {
            if (ai && vi) {
                int64_t r;
                if (__builtin_add_overflow(int_of(acc), int_of(v), &r)) return jinja_fail(f->c, f->at, "integer overflow");
                acc = jv_int(r);
            } else {
                acc = jv_float((ai ? (double)int_of(acc) : acc.u.f) + (vi ? (double)int_of(v) : v.u.f));
            }
        } else {
            return jinja_fail(f->c, f->at, "unsupported operand type(s) for +: '%s' and '%s'", jinja_type_name(acc),
                              jinja_type_name(v));
        }
    }
    *out = acc;
    return true;
}

/* jinja2's title filter: capitalise each piece after a run of [-\s({[<]. */
static bool f_title(fcall *f, jv *out) {
    jv s;
    if (!str_in(f, &s)) return false;
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    bool word_start = true;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp;
        size_t len = jinja_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
        bool delim = jinja_is_space(cp) || (cp < 0x80 && strchr("-({[<", (int)cp));
        uint32_t o = delim ? cp : word_start ? to_upper(cp) : to_lower(cp);
        char enc[4];
        if (o == cp) jinja_buf_put(&b, s.u.s.p + i, len);
        else jinja_buf_put(&b, enc, jinja_utf8_put(enc, o));
        word_start = delim;
        i += len;
    }
    return buf_done(f->c, f->at, &b, out);
}

static bool f_tojson(fcall *f, jv *out) {
    jjson_opts o = { .ensure_ascii = f->p[0] && jinja_truthy(*f->p[0]), .sort_keys = f->p[3] && jinja_truthy(*f->p[3]) };
    jv indent = param(f, 1, jv_none());
    if (is_int(indent)) {
        int64_t k = int_of(indent);
        if (k > 4096) return jinja_fail(f->c, f->at, "tojson indent too large");
        if (k < 0) k = 0;
        char *spaces = jinja_ctx_alloc(f->c, (size_t)k + 1);
        if (!spaces) return false;
        memset(spaces, ' ', (size_t)k);
        o.indent = spaces, o.indent_n = (size_t)k;
    } else if (indent.t == JV_STR) {
        o.indent = indent.u.s.p, o.indent_n = indent.u.s.n;
    } else if (indent.t != JV_NONE) {
        return jinja_fail(f->c, f->at, "tojson indent must be an integer, a string or none");
    }
    /* json.dumps' default separators depend on whether it indents */
    o.item_sep = o.indent ? "," : ", ", o.item_sep_n = o.indent ? 1 : 2;
    o.key_sep = ": ", o.key_sep_n = 2;
    jv seps = param(f, 2, jv_none());
    if (seps.t == JV_LIST && (seps.sub == JL_LIST || seps.sub == JL_TUPLE) && seps.u.l->n == 2 &&
        seps.u.l->v[0].t == JV_STR && seps.u.l->v[1].t == JV_STR) {
        o.item_sep = seps.u.l->v[0].u.s.p, o.item_sep_n = seps.u.l->v[0].u.s.n;
        o.key_sep = seps.u.l->v[1].u.s.p, o.key_sep_n = seps.u.l->v[1].u.s.n;
    } else if (seps.t != JV_NONE) {
        return jinja_fail(f->c, f->at, "tojson separators must be a pair of strings");
    }
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    const char *why;
    if (!jinja_json_dump(&b, f->in, &o, &why)) {
        jinja_buf_free(&b);
        if (why) return jinja_fail(f->c, f->at, "%s", why);
        return jinja_fail(f->c, f->at, "Object of type %s is not JSON serializable", jinja_type_name(f->in));
    }
    return buf_done(f->c, f->at, &b, out);
}

static bool f_trim(fcall *f, jv *out) {
    jv s, chars = param(f, 0, jv_none());
    if (!str_in(f, &s)) return false;
    if (chars.t != JV_NONE && chars.t != JV_STR) return jinja_fail(f->c, f->at, "strip arg must be None or str");
    *out = strip_str(s, chars, true, true);
    return true;
}

static bool f_unique(fcall *f, jv *out) {
    jlist *items, *res, *seen;
    bool cs = f->p[0] && jinja_truthy(*f->p[0]);
    if (!jinja_iterate(f->c, f->at, f->in, &items) || !new_list(f->c, f->at, 0, &res) ||
        !new_list(f->c, f->at, 0, &seen))
        return false;
    for (size_t i = 0; i < items->n; i++) {
        jv k;
        if (!sort_key(f->c, f->at, items->v[i], f->p[1], cs, &k)) return false;
        if ((k.t == JV_LIST && k.sub != JL_TUPLE) || k.t == JV_DICT || k.t == JV_NS)
            return jinja_fail(f->c, f->at, "unhashable type: '%s'", jinja_type_name(k));
        bool dup = false;
        if (!jinja_step(f->c, seen->n)) return false; /* quadratic: charge the comparisons */
        for (size_t j = 0; j < seen->n && !dup; j++) dup = jinja_eq(seen->v[j], k);
        if (!dup && (!push(f->c, f->at, seen, k) || !push(f->c, f->at, res, items->v[i]))) return false;
    }
    *out = jv_list(res, JL_GEN);
    return true;
}

static bool f_wordcount(fcall *f, jv *out) {
    jv s;
    if (!str_in(f, &s)) return false;
    int64_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp;
        i += jinja_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
        bool w = is_alpha_cp(cp) || is_digit_cp(cp) || cp == '_' || (cp >= 0x80 && !jinja_is_space(cp));
        if (w && !in_word) words++;
        in_word = w;
    }
    *out = jv_int(words);
    return true;
}

static bool f_format(fcall *f, jv *out) {
    jv s;
    if (!str_in(f, &s)) return false;
    if (f->a->nkw) return jinja_fail(f->c, f->at, "format with keyword arguments is not supported");
    return jinja_py_format(f->c, f->at, s, f->a->args, (size_t)f->a->nargs, NULL, out);
}

typedef struct {
    const char *name;
    filter_fn fn;
    const char *params[5]; /* NULL-terminated; varargs filters take f->a as it is */
    bool varargs;
    bool lazy; /* a generator in jinja2: its errors only surface when it is consumed */
} filter_def;

static const filter_def filters[] = {
    { "abs", f_abs, { NULL }, false, false },
    { "attr", f_attr, { "name", NULL }, false, false },
    { "batch", f_batch, { "linecount", "fill_with", NULL }, false, true },
    { "capitalize", f_capitalize, { NULL }, false, false },
    { "center", f_center, { "width", NULL }, false, false },
    { "count", f_length, { NULL }, false, false },
    { "d", f_default, { "default_value", "boolean", NULL }, false, false },
    { "default", f_default, { "default_value", "boolean", NULL }, false, false },
    { "dictsort", f_dictsort, { "case_sensitive", "by", "reverse", NULL }, false, false },
    { "e", f_escape, { NULL }, false, false },
    { "escape", f_escape, { NULL }, false, false },
    { "first", f_first, { NULL }, false, false },
    { "float", f_float, { "default", NULL }, false, false },
    { "format", f_format, { NULL }, true, false },
    { "indent", f_indent, { "width", "first", "blank", NULL }, false, false },
    { "int", f_int, { "default", "base", NULL }, false, false },
    { "items", f_items, { NULL }, false, true },
    { "join", f_join, { "d", "attribute", NULL }, false, false },
    { "last", f_last, { NULL }, false, false },
    { "length", f_length, { NULL }, false, false },
    { "list", f_list, { NULL }, false, false },
    { "lower", f_lower, { NULL }, false, false },
    { "map", f_map, { NULL }, true, true },
    { "max", f_max, { "case_sensitive", "attribute", NULL }, false, false },
    { "min", f_min, { "case_sensitive", "attribute", NULL }, false, false },
    { "reject", f_reject, { NULL }, true, true },
    { "rejectattr", f_rejectattr, { NULL }, true, true },
    { "replace", f_replace, { "old", "new", "count", NULL }, false, false },
    { "reverse", f_reverse, { NULL }, false, false },
    { "round", f_round, { "precision", "method", NULL }, false, false },
    { "safe", f_safe, { NULL }, false, false },
    { "select", f_select, { NULL }, true, true },
    { "selectattr", f_selectattr, { NULL }, true, true },
    { "sort", f_sort, { "reverse", "case_sensitive", "attribute", NULL }, false, false },
    { "string", f_string, { NULL }, false, false },
    { "sum", f_sum, { "attribute", "start", NULL }, false, false },
    { "title", f_title, { NULL }, false, false },
    { "tojson", f_tojson, { "ensure_ascii", "indent", "separators", "sort_keys", NULL }, false, false },
    { "trim", f_trim, { "chars", NULL }, false, false },
    { "unique", f_unique, { "case_sensitive", "attribute", NULL }, false, true },
    { "upper", f_upper, { NULL }, false, false },
    { "wordcount", f_wordcount, { NULL }, false, false },
};

static const filter_def *find_filter(const char *name) {
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (!strcmp(filters[i].name, name)) return &filters[i];
    return NULL;
}

bool jinja_filter_known(const char *name) { return find_filter(name) != NULL; }

/* Binds positional and keyword arguments to a parameter list as Python would, or fails. */
static bool bind(jctx *c, const jnode *at, const char *fname, const char *const *params, const jargs *a,
                 const jv **p) {
    int np = 0;
    while (np < 5 && params[np]) np++;
    if (a->nargs > np)
        return jinja_fail(c, at, "%s() takes at most %d argument(s) after the value (%d given)", fname, np, a->nargs);
    for (int i = 0; i < a->nargs; i++) p[i] = &a->args[i];
    for (int k = 0; k < a->nkw; k++) {
        int i = 0;
        while (i < np && strcmp(params[i], a->kw[k])) i++;
        if (i == np) return jinja_fail(c, at, "%s() got an unexpected keyword argument '%s'", fname, a->kw[k]);
        if (p[i]) return jinja_fail(c, at, "%s() got multiple values for argument '%s'", fname, a->kw[k]);
        p[i] = &a->kwv[k];
    }
    return true;
}

bool jinja_apply_filter(jctx *c, const jnode *at, const char *name, jv in, const jargs *a, jv *out) {
    const filter_def *d = find_filter(name);
    if (!d) return jinja_fail(c, at, "no filter named '%s'", name);
    fcall f = { c, at, in, a, { NULL } };
    if (!d->varargs && !bind(c, at, name, d->params, a, f.p)) return false;
    if (d->fn(&f, out)) return true;
    if (!d->lazy || c->fatal) return false;
    /* jinja2 would only fail once the generator is iterated (`x|map(...) and y` never is):
     * take the error back and hand out a generator that raises it when consumed */
    jlist *l = jinja_list_new(&c->arena, 0);
    char *msg = jinja_alloc(&c->arena, strlen(c->last_msg) + 1);
    if (!l || !msg) return false;
    strcpy(msg, c->last_msg);
    l->err = msg;
    c->failed = false;
    *out = jv_list(l, JL_GEN);
    return true;
}

/* ---- tests ----------------------------------------------------------------------------------------- */

static bool cmp_test(jctx *c, const jnode *at, const char *op, jv a, jv b, bool *out) {
    bool ok;
    if (!strcmp(op, "eq")) *out = jinja_eq(a, b);
    else if (!strcmp(op, "ne")) *out = !jinja_eq(a, b);
    else {
        bool lt = !strcmp(op, "lt") || !strcmp(op, "ge") ? jinja_lt(a, b, &ok) : jinja_lt(b, a, &ok);
        if (!ok)
            return jinja_fail(c, at, "'%s' not supported between instances of '%s' and '%s'", op, jinja_type_name(a),
                              jinja_type_name(b));
        *out = !strcmp(op, "lt") || !strcmp(op, "gt") ? lt : !lt;
    }
    return true;
}

static const char *cmp_alias(const char *name) {
    static const char *const map[][2] = {
        { "==", "eq" }, { "eq", "eq" }, { "equalto", "eq" }, { "!=", "ne" }, { "ne", "ne" },
        { "<", "lt" },  { "lt", "lt" }, { "lessthan", "lt" }, { "<=", "le" }, { "le", "le" },
        { ">", "gt" },  { "gt", "gt" }, { "greaterthan", "gt" }, { ">=", "ge" }, { "ge", "ge" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], name)) return map[i][1];
    return NULL;
}

static bool str_all(jv s, bool upper) {
    bool any_cased = false;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp;
        i += jinja_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
        if (!is_cased(cp)) continue;
        any_cased = true;
        if (upper ? to_upper(cp) != cp : to_lower(cp) != cp) return false;
    }
    return any_cased;
}


bool jinja_apply_test(jctx *c, const jnode *at, const char *name, jv v, const jargs *a, bool *out) {
    const jv *arg = a->nargs ? &a->args[0] : a->nkw ? &a->kwv[0] : NULL;
    const char *cmp = cmp_alias(name);
    jv s;
    if (cmp) {
        if (!arg) return jinja_fail(c, at, "test '%s' needs an argument", name);
        return cmp_test(c, at, cmp, v, *arg, out);
    }
    if (!strcmp(name, "defined")) *out = v.t != JV_UNDEF;
    else if (!strcmp(name, "undefined")) *out = v.t == JV_UNDEF;
    else if (!strcmp(name, "none")) *out = v.t == JV_NONE;
    else if (!strcmp(name, "boolean")) *out = v.t == JV_BOOL;
    else if (!strcmp(name, "true")) *out = v.t == JV_BOOL && v.u.b;
    else if (!strcmp(name, "false")) *out = v.t == JV_BOOL && !v.u.b;
    else if (!strcmp(name, "integer")) *out = v.t == JV_INT;
    else if (!strcmp(name, "float")) *out = v.t == JV_FLOAT;
    else if (!strcmp(name, "number")) *out = v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
    else if (!strcmp(name, "string")) *out = v.t == JV_STR;
    else if (!strcmp(name, "mapping")) *out = v.t == JV_DICT;
    else if (!strcmp(name, "iterable")) *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF || v.t == JV_LOOP;
    else if (!strcmp(name, "sequence"))
        *out = v.t == JV_STR || v.t == JV_DICT || v.t == JV_UNDEF || (v.t == JV_LIST && (v.sub == JL_LIST || v.sub == JL_TUPLE));
    else if (!strcmp(name, "callable")) *out = v.t == JV_MACRO || v.t == JV_FUNC || v.t == JV_METHOD || v.t == JV_UNDEF;
    else if (!strcmp(name, "escaped")) *out = false;
    else if (!strcmp(name, "odd") || !strcmp(name, "even") || !strcmp(name, "divisibleby")) {
        jv by = !strcmp(name, "divisibleby") ? (arg ? *arg : jv_none()) : jv_int(2);
        if (v.t == JV_UNDEF) return jinja_fail(c, at, "%s", v.u.s.p ? v.u.s.p : "value is undefined");
        if (!(is_int(v) || v.t == JV_FLOAT) || !(is_int(by) || by.t == JV_FLOAT))
            return jinja_fail(c, at, "test '%s' needs numbers", name);
        double x = v.t == JV_FLOAT ? v.u.f : (double)int_of(v), y = by.t == JV_FLOAT ? by.u.f : (double)int_of(by);
        if (y == 0) return jinja_fail(c, at, "integer division or modulo by zero");
        double m = fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        *out = !strcmp(name, "odd") ? m == 1 : m == 0;
    } else if (!strcmp(name, "in")) {
        if (!arg) return jinja_fail(c, at, "test 'in' needs an argument");
        return jinja_contains(c, at, *arg, v, out);
    } else if (!strcmp(name, "sameas")) {
        if (!arg) return jinja_fail(c, at, "test 'sameas' needs an argument");
        jv o = *arg;
        if (v.t != o.t) *out = false;
        else if (v.t == JV_LIST || v.t == JV_DICT || v.t == JV_NS) *out = v.u.l == o.u.l;
        else *out = jinja_eq(v, o);
    } else if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (!jinja_to_str(c, v, &s)) return false;
        *out = str_all(s, !strcmp(name, "upper"));
    } else if (!strcmp(name, "filter") || !strcmp(name, "test")) {
        char buf[64] = "";
        if (v.t == JV_STR) snprintf(buf, sizeof buf, "%.*s", (int)v.u.s.n, v.u.s.p);
        *out = v.t == JV_STR && (!strcmp(name, "filter") ? jinja_filter_known(buf) : jinja_test_known(buf));
    } else {
        return jinja_fail(c, at, "no test named '%s'", name);
    }
    return true;
}

bool jinja_test_known(const char *name) {
    static const char *const names[] = { "defined", "undefined", "none", "boolean", "true", "false", "integer", "float",
                                         "number", "string", "mapping", "iterable", "sequence", "callable", "escaped",
                                         "odd", "even", "divisibleby", "in", "sameas", "lower", "upper", "filter",
                                         "test" };
    if (cmp_alias(name)) return true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i], name)) return true;
    return false;
}

/* ---- methods ------------------------------------------------------------------------------------- */

static const char *const str_methods[] = { "capitalize", "count", "endswith", "find", "isalnum", "isalpha",
                                           "isdigit", "islower", "isspace", "isupper", "join", "lower", "lstrip",
                                           "removeprefix", "removesuffix", "replace", "rfind", "rsplit", "rstrip",
                                           "split", "splitlines", "startswith", "strip", "title", "upper", NULL };
static const char *const dict_methods[] = { "get", "items", "keys", "values", NULL };
static const char *const list_methods[] = { "count", "index", NULL };

const char *jinja_method_name(jv self, const char *name, size_t n) {
    const char *const *set = self.t == JV_STR   ? str_methods
                             : self.t == JV_DICT ? dict_methods
                             : self.t == JV_LIST && (self.sub == JL_LIST || self.sub == JL_TUPLE) ? list_methods
                                                                                                  : NULL;
    if (!set) return NULL;
    for (int i = 0; set[i]; i++)
        if (strlen(set[i]) == n && !memcmp(set[i], name, n)) return set[i];
    return NULL;
}

/* Method arguments: up to 3 positional, keywords by the given names. */
static bool margs(jctx *c, const jnode *at, const jmethod *m, const jargs *a, const char *const *params, const jv **p) {
    return bind(c, at, m->name, params, a, p);
}

static bool need_str(jctx *c, const jnode *at, const jmethod *m, const jv *v, int i) {
    if (v && v->t == JV_STR) return true;
    return jinja_fail(c, at, "%s() argument %d must be str", m->name, i + 1);
}

/* Code point index of a byte offset. */
static int64_t cp_index(jv s, size_t byte_off) { return (int64_t)jinja_utf8_len(s.u.s.p, byte_off); }

static bool affix_match(jv s, jv affix, bool prefix) {
    if (affix.u.s.n > s.u.s.n) return false;
    const char *at = prefix ? s.u.s.p : s.u.s.p + s.u.s.n - affix.u.s.n;
    return !memcmp(at, affix.u.s.p, affix.u.s.n);
}

static bool str_method(jctx *c, const jnode *at, const jmethod *m, const jargs *a, jv *out) {
    jv s = m->self;
    const char *n = m->name;
    const jv *p[6] = { NULL };
    if (!strcmp(n, "split") || !strcmp(n, "rsplit")) {
        static const char *const ps[] = { "sep", "maxsplit", NULL };
        if (!margs(c, at, m, a, ps, p)) return false;
        jv sep = p[0] ? *p[0] : jv_none(), mx = p[1] ? *p[1] : jv_int(-1);
        if (sep.t != JV_NONE && sep.t != JV_STR) return jinja_fail(c, at, "must be str or None");
        if (!is_int(mx)) return jinja_fail(c, at, "maxsplit must be an integer");
        return split_str(c, at, s, sep, int_of(mx), n[0] == 'r', out);
    }
    if (!strcmp(n, "strip") || !strcmp(n, "lstrip") || !strcmp(n, "rstrip")) {
        static const char *const ps[] = { "chars", NULL };
        if (!margs(c, at, m, a, ps, p)) return false;
        jv chars = p[0] ? *p[0] : jv_none();
        if (chars.t != JV_NONE && chars.t != JV_STR) return jinja_fail(c, at, "strip arg must be None or str");
        *out = strip_str(s, chars, n[0] != 'r', n[0] != 'l');
        return true;
    }
    if (!strcmp(n, "startswith") || !strcmp(n, "endswith")) {
        static const char *const ps[] = { "prefix", NULL };
        if (!margs(c, at, m, a, ps, p)) return false;
        if (!p[0]) return jinja_fail(c, at, "%s() takes at least 1 argument", n);
        bool prefix = n[0] == 's';
        if (p[0]->t == JV_LIST && p[0]->sub == JL_TUPLE) {
            *out = jv_bool(false);
            for (size_t i = 0; i < p[0]->u.l->n; i++) {
                if (p[0]->u.l->v[i].t != JV_STR) return jinja_fail(c, at, "tuple for %s must only contain str", n);
                if (affix_match(s, p[0]->u.l->v[i], prefix)) *out = jv_bool(true);
            }
            return true;
        }
        if (p[0]->t != JV_STR) return jinja_fail(c, at, "%s first arg must be str or a tuple of str", n);
        *out = jv_bool(affix_match(s, *p[0], prefix));
        return true;
    }
    if (!strcmp(n, "upper") || !strcmp(n, "lower") || !strcmp(n, "title") || !strcmp(n, "capitalize")) {
        static const char *const ps[] = { NULL };
        if (!margs(c, at, m, a, ps, p)) return false;
        int mode = n[0] == 'u' ? CASE_UPPER : n[0] == 'l' ? CASE_LOWER : n[0] == 't' ? CASE_TITLE : CASE_CAPITALIZE;
        return map_case(c, at, s, mode, out);
    }
    if (!strcmp(n, "replace")) {
        static const char *const ps[] = { "old", "new", "count", NULL };
        if (!margs(c, at, m, a, ps, p)) return false;
        if (!need_str(c, at, m, p[0], 0) || !need_str(c, at, m, p[1], 1)) return false;
        jv count = p[2] ? *p[2] : jv_int(-1);
        if (!is_int(count)) return jinja_fail(c, at, "replace count must be an integer");
        return replace_str(c, at, s, *p[0], *p[1], int_of(count), out);
    }
    if (!strcmp(n, "find") || !strcmp(n, "rfind") || !strcmp(n, "count")) {
        static const char *const ps[] = { "sub", NULL };
        if (!margs(c, at, m, a, ps, p) || !need_str(c, at, m, p[0], 0)) return false;
        jv sub = *p[0];
        if (n[0] == 'c') {
            int64_t count = 0;
            if (sub.u.s.n == 0) {
                count = (int64_t)jinja_utf8_len(s.u.s.p, s.u.s.n) + 1;
            } else {
                size_t i = 0;
                const char *hit;
                while ((hit = memmem(s.u.s.p + i, s.u.s.n - i, sub.u.s.p, sub.u.s.n))) {
                    count++;
                    i = (size_t)(hit - s.u.s.p) + sub.u.s.n;
                }
            }
            *out = jv_int(count);
            return true;
        }
        int64_t pos = -1;
        if (n[0] == 'f') {
            const char *hit = sub.u.s.n ? memmem(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n) : s.u.s.p;
            if (hit) pos = cp_index(s, (size_t)(hit - s.u.s.p));
        } else if (sub.u.s.n <= s.u.s.n) {
            for (size_t i = s.u.s.n - sub.u.s.n + 1; i-- > 0;)
                if (!memcmp(s.u.s.p + i, sub.u.s.p, sub.u.s.n)) {
                    pos = cp_index(s, i);
                    break;
                }
        }
        *out = jv_int(pos);
        return true;
    }
    if (!strcmp(n, "removeprefix") || !strcmp(n, "removesuffix")) {
        static const char *const ps[] = { "affix", NULL };
        if (!margs(c, at, m, a, ps, p) || !need_str(c, at, m, p[0], 0)) return false;
        bool prefix = n[6] == 'p';
        *out = s;
        if (affix_match(s, *p[0], prefix))
            *out = jv_strn(prefix ? s.u.s.p + p[0]->u.s.n : s.u.s.p, s.u.s.n - p[0]->u.s.n);
        return true;
    }
    if (!strcmp(n, "join")) {
        static const char *const ps[] = { "iterable", NULL };
        jlist *items;
        if (!margs(c, at, m, a, ps, p)) return false;
        if (!p[0]) return jinja_fail(c, at, "join() takes exactly one argument");
        if (!jinja_iterate(c, at, *p[0], &items)) return false;
        jbuf b;
        jinja_buf_init(&b, JINJA_MAX_OUTPUT);
        for (size_t i = 0; i < items->n; i++) {
            if (items->v[i].t != JV_STR) {
                jinja_buf_free(&b);
                return jinja_fail(c, at, "sequence item %zu: expected str instance, %s found", i,
                                  jinja_type_name(items->v[i]));
            }
            if (i) jinja_buf_put(&b, s.u.s.p, s.u.s.n);
            jinja_buf_put(&b, items->v[i].u.s.p, items->v[i].u.s.n);
        }
        return buf_done(c, at, &b, out);
    }
    if (!strcmp(n, "splitlines")) {
        static const char *const ps[] = { "keepends", NULL };
        jlist *l;
        if (!margs(c, at, m, a, ps, p) || !splitlines(c, at, s, p[0] && jinja_truthy(*p[0]), &l)) return false;
        *out = jv_list(l, JL_LIST);
        return true;
    }
    /* the is* predicates */
    static const char *const ps[] = { NULL };
    if (!margs(c, at, m, a, ps, p)) return false;
    if (!strcmp(n, "islower") || !strcmp(n, "isupper")) {
        *out = jv_bool(str_all(s, n[2] == 'u'));
        return true;
    }
    bool all = s.u.s.n > 0;
    for (size_t i = 0; i < s.u.s.n && all;) {
        uint32_t cp;
        i += jinja_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
        if (!strcmp(n, "isalnum")) all = is_alpha_cp(cp) || is_digit_cp(cp);
        else if (!strcmp(n, "isalpha")) all = is_alpha_cp(cp);
        else if (!strcmp(n, "isdigit")) all = is_digit_cp(cp);
        else all = jinja_is_space(cp);
    }
    *out = jv_bool(all);
    return true;
}

bool jinja_call_method(jctx *c, const jnode *at, const jmethod *m, const jargs *a, jv *out) {
    const jv *p[6] = { NULL };
    jv self = m->self;
    if (self.t == JV_STR) return str_method(c, at, m, a, out);
    if (self.t == JV_LOOP) { /* loop.cycle(a, b, ...) */
        if (a->nargs == 0) return jinja_fail(c, at, "no items for cycling given");
        *out = a->args[self.u.loop->index0 % (size_t)a->nargs];
        return true;
    }
    if (self.t == JV_DICT) {
        const jdict *d = self.u.d;
        if (!strcmp(m->name, "get")) {
            static const char *const ps[] = { "key", "default", NULL };
            if (!margs(c, at, m, a, ps, p)) return false;
            if (!p[0]) return jinja_fail(c, at, "get expected at least 1 argument, got 0");
            jv *v = jinja_dict_get(d, *p[0]);
            *out = v ? *v : p[1] ? *p[1] : jv_none();
            return true;
        }
        static const char *const ps[] = { NULL };
        if (!margs(c, at, m, a, ps, p)) return false;
        if (!strcmp(m->name, "items")) return dict_items(c, at, d, JL_ITEMS, out);
        jlist *l;
        if (!new_list(c, at, d->n, &l)) return false;
        jinja_copy(l->v, m->name[0] == 'k' ? d->k : d->v, d->n * sizeof(jv));
        l->n = d->n;
        *out = jv_list(l, m->name[0] == 'k' ? JL_KEYS : JL_VALUES);
        return true;
    }
    if (self.t == JV_LIST) {
        static const char *const ps[] = { "value", NULL };
        if (!margs(c, at, m, a, ps, p)) return false;
        if (!p[0]) return jinja_fail(c, at, "%s() takes exactly one argument", m->name);
        const jlist *l = self.u.l;
        int64_t count = 0, first = -1;
        for (size_t i = 0; i < l->n; i++)
            if (jinja_eq(l->v[i], *p[0])) {
                if (first < 0) first = (int64_t)i;
                count++;
            }
        if (!jinja_step(c, l->n)) return false;
        if (m->name[0] == 'c') *out = jv_int(count);
        else if (first < 0) return jinja_fail(c, at, "value is not in list");
        else *out = jv_int(first);
        return true;
    }
    return jinja_fail(c, at, "'%s' object has no method '%s'", jinja_type_name(self), m->name);
}

/* ---- globals ----------------------------------------------------------------------------------------- */

int jinja_builtin_id(const char *name, size_t n) {
    static const struct {
        const char *name;
        int id;
    } map[] = { { "namespace", JB_NAMESPACE }, { "range", JB_RANGE }, { "dict", JB_DICT },
                { "raise_exception", JB_RAISE }, { "strftime_now", JB_STRFTIME } };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i].name) == n && !memcmp(map[i].name, name, n)) return map[i].id;
    return 0;
}

/* dict(mapping-or-pairs, **kw) as the namespace() and dict() constructors take it. */
static bool build_dict(jctx *c, const jnode *at, const jargs *a, jdict **out) {
    jdict *d = jinja_dict_new(&c->arena, 0);
    if (!d) return oom(c, at);
    if (a->nargs > 1) return jinja_fail(c, at, "expected at most 1 positional argument, got %d", a->nargs);
    if (a->nargs == 1) {
        jv src = a->args[0];
        if (src.t == JV_DICT || src.t == JV_NS) {
            for (size_t i = 0; i < src.u.d->n; i++)
                if (!jinja_dict_set(&c->arena, d, src.u.d->k[i], src.u.d->v[i])) return oom(c, at);
        } else {
            jlist *items;
            if (!jinja_iterate(c, at, src, &items)) return false;
            for (size_t i = 0; i < items->n; i++) {
                jv pair = items->v[i];
                if (pair.t != JV_LIST || pair.u.l->n != 2)
                    return jinja_fail(c, at, "dictionary update sequence element #%zu has the wrong length", i);
                if (!jinja_dict_set(&c->arena, d, pair.u.l->v[0], pair.u.l->v[1])) return oom(c, at);
            }
        }
    }
    for (int k = 0; k < a->nkw; k++)
        if (!jinja_dict_set(&c->arena, d, jv_strn(a->kw[k], strlen(a->kw[k])), a->kwv[k])) return oom(c, at);
    *out = d;
    return true;
}

static bool builtin_range(jctx *c, const jnode *at, const jargs *a, jv *out) {
    if (a->nkw) return jinja_fail(c, at, "range() takes no keyword arguments");
    if (a->nargs < 1 || a->nargs > 3) return jinja_fail(c, at, "range expected 1 to 3 arguments, got %d", a->nargs);
    for (int i = 0; i < a->nargs; i++)
        if (!is_int(a->args[i]))
            return jinja_fail(c, at, "'%s' object cannot be interpreted as an integer", jinja_type_name(a->args[i]));
    int64_t start = 0, stop, step = 1;
    if (a->nargs == 1) {
        stop = int_of(a->args[0]);
    } else {
        start = int_of(a->args[0]);
        stop = int_of(a->args[1]);
        if (a->nargs == 3) step = int_of(a->args[2]);
    }
    if (step == 0) return jinja_fail(c, at, "range() arg 3 must not be zero");
    /* count in floating point first: the bounds may be anywhere in int64 */
    double span = step > 0 ? (double)stop - (double)start : (double)start - (double)stop;
    double count = span <= 0 ? 0 : ceil(span / fabs((double)step));
    if (count > JINJA_MAX_RANGE)
        return jinja_fail(c, at, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", JINJA_MAX_RANGE);
    jlist *l;
    if (!new_list(c, at, (size_t)count, &l)) return false;
    for (size_t i = 0; i < (size_t)count; i++) l->v[i] = jv_int(start + (int64_t)i * step);
    l->n = (size_t)count;
    *out = jv_list(l, JL_LIST);
    return jinja_step(c, l->n);
}

bool jinja_call_builtin(jctx *c, const jnode *at, int id, const jargs *a, jv *out) {
    jdict *d = NULL;
    switch (id) {
    case JB_NAMESPACE:
    case JB_DICT:
        if (!build_dict(c, at, a, &d)) return false;
        *out = (jv){ .t = id == JB_NAMESPACE ? JV_NS : JV_DICT, .u.d = d };
        return true;
    case JB_RANGE: return builtin_range(c, at, a, out);
    case JB_RAISE: {
        jv msg = a->nargs ? a->args[0] : a->nkw ? a->kwv[0] : jv_strn("", 0);
        jv s;
        if (!jinja_to_str(c, msg, &s)) return false;
        return jinja_fail(c, at, "%.*s", (int)(s.u.s.n > 380 ? 380 : s.u.s.n), s.u.s.p);
    }
    case JB_STRFTIME: {
        if (a->nargs != 1 || a->args[0].t != JV_STR) return jinja_fail(c, at, "strftime_now() takes one string");
        char fmt[256], buf[512];
        snprintf(fmt, sizeof fmt, "%.*s", (int)a->args[0].u.s.n, a->args[0].u.s.p);
        time_t now = time(NULL);
        struct tm tm;
        if (!localtime_r(&now, &tm)) return jinja_fail(c, at, "cannot read the local time");
        size_t n = fmt[0] ? strftime(buf, sizeof buf, fmt, &tm) : 0;
        if (!jinja_str_dup(&c->arena, buf, n, out)) return oom(c, at);
        return true;
    }
    default: return jinja_fail(c, at, "unknown function");
    }
}
