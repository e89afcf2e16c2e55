/*
 * jinja_eval.c - runs a parsed template: expressions, statements, scopes, macros; jinja_render.
 *
 * Scopes follow jinja2: the render context's variables at the bottom, the template's own frame
 * above it, a fresh frame for every for-loop iteration (a `set` inside a loop body is gone in the
 * next iteration and after the loop), one per macro call (whose parent is the frame the macro was
 * defined in, looked up live at call time) and one per `with`.  `if` opens no scope.
 *
 * Values follow Python: `or`/`and` return an operand, `/` always gives a float, `//` and `%` floor,
 * `+` of str and int is an error, comparisons chain, `a if c` without else gives undefined.  Undefined
 * values print as "", are false and iterate as empty, but attribute access, arithmetic and calls on
 * them raise, as jinja2's default Undefined does.
 *
 * Bounds: steps (statements, expression nodes, loop iterations, list work), evaluation depth, macro
 * call depth, output size and arena bytes all turn into errors with the template's line:column.
 */
#include "jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jmacro {
    const jnode *def; /* N_MACRO, or N_CALL_BLOCK for a caller() */
    jframe *closure;  /* frame the macro was defined in */
};

enum { X_OK, X_ERR, X_BREAK, X_CONTINUE };

static bool ev(jctx *c, const jnode *n, jframe *f, jv *out);
static int exec_body(jctx *c, jnode *const *body, int n, jframe *f);

/* ---- errors, allocation, budget ---------------------------------------------------------------- */

static bool fail_v(jctx *c, const jnode *n, const char *fmt, va_list ap) {
    if (c->failed) return false;
    c->failed = true;
    if (!n) n = c->at;
    vsnprintf(c->last_msg, sizeof c->last_msg, fmt, ap);
    if (n) err_set(c->err, SEEK_EINVAL, "%d:%d: %s", n->line, n->col, c->last_msg);
    else err_set(c->err, SEEK_EINVAL, "%s", c->last_msg);
    return false;
}

bool jinja_fail(jctx *c, const jnode *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, n, fmt, ap);
    va_end(ap);
    return false;
}

bool jinja_fail_limit(jctx *c, const jnode *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (!c->failed) c->fatal = true;
    fail_v(c, n, fmt, ap);
    va_end(ap);
    return false;
}

void *jinja_ctx_alloc(jctx *c, size_t n) {
    void *p = jinja_alloc(&c->arena, n);
    if (!p) jinja_fail_limit(c, NULL, "template used too much memory (limit %u MiB)", JINJA_MAX_ARENA >> 20);
    return p;
}

bool jinja_step(jctx *c, uint64_t n) {
    c->steps += n;
    if (c->steps > JINJA_MAX_STEPS) return jinja_fail_limit(c, NULL, "template took too many steps (limit %llu)",
                                                      (unsigned long long)JINJA_MAX_STEPS);
    return true;
}

jv jinja_undef(jctx *c, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (len < 0) len = 0;
    if ((size_t)len >= sizeof msg) len = sizeof msg - 1;
    char *p = jinja_alloc(&c->arena, (size_t)len + 1);
    if (p) jinja_copy(p, msg, (size_t)len);
    return jv_undef(p ? p : "value is undefined");
}

static bool undef_error(jctx *c, const jnode *at, jv u) {
    return jinja_fail(c, at, "%s", u.u.s.p ? u.u.s.p : "value is undefined");
}

bool jinja_to_str(jctx *c, jv v, jv *out) {
    if (v.t == JV_STR) {
        *out = v;
        return true;
    }
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    jinja_put_str(&b, v);
    bool ok = !b.over && jinja_str_dup(&c->arena, b.p ? b.p : "", b.n, out);
    jinja_buf_free(&b);
    if (!ok) return jinja_fail_limit(c, NULL, "string too large or out of memory");
    return true;
}

/* ---- frames ------------------------------------------------------------------------------------- */

static jframe *frame_new(jctx *c, jframe *parent) {
    jframe *f = jinja_ctx_alloc(c, sizeof *f);
    if (f) f->parent = parent;
    return f;
}

static jv *frame_lookup(jframe *f, const char *name, size_t n) {
    for (; f; f = f->parent) {
        jv *v = jinja_dict_get_str(&f->vars, name, n);
        if (v) return v;
    }
    return NULL;
}

static bool frame_set(jctx *c, jframe *f, const char *name, size_t n, jv v) {
    if (!jinja_dict_set(&c->arena, &f->vars, jv_strn(name, n), v))
        return jinja_fail_limit(c, NULL, "template used too much memory");
    return true;
}

/* ---- iteration and membership ------------------------------------------------------------------ */

bool jinja_iterate(jctx *c, const jnode *at, jv v, jlist **out) {
    switch (v.t) {
    case JV_LIST:
        if (v.u.l->err) return jinja_fail(c, at, "%s", v.u.l->err);
        *out = v.u.l;
        return jinja_step(c, v.u.l->n);
    case JV_UNDEF: *out = jinja_list_new(&c->arena, 0); break;
    case JV_DICT:
        *out = jinja_list_new(&c->arena, v.u.d->n);
        if (*out) {
            jinja_copy((*out)->v, v.u.d->k, v.u.d->n * sizeof(jv));
            (*out)->n = v.u.d->n;
        }
        break;
    case JV_STR: {
        /* one string per code point, pointing into the original text */
        size_t count = jinja_utf8_len(v.u.s.p, v.u.s.n);
        *out = jinja_list_new(&c->arena, count);
        if (!*out) break;
        size_t i = 0;
        while (i < v.u.s.n) {
            uint32_t cp;
            size_t len = jinja_utf8_next(v.u.s.p + i, v.u.s.n - i, &cp);
            (*out)->v[(*out)->n++] = jv_strn(v.u.s.p + i, len);
            i += len;
        }
        break;
    }
    default: return jinja_fail(c, at, "'%s' object is not iterable", jinja_type_name(v));
    }
    if (!*out) return jinja_fail_limit(c, at, "template used too much memory");
    return jinja_step(c, (*out)->n);
}

bool jinja_contains(jctx *c, const jnode *at, jv hay, jv needle, bool *out) {
    *out = false;
    switch (hay.t) {
    case JV_STR:
        if (needle.t != JV_STR)
            return jinja_fail(c, at, "'in <string>' requires string as left operand, not %s", jinja_type_name(needle));
        *out = needle.u.s.n == 0 || memmem(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n) != NULL;
        return true;
    case JV_LIST:
        if (hay.u.l->err) return jinja_fail(c, at, "%s", hay.u.l->err);
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (jinja_eq(hay.u.l->v[i], needle)) {
                *out = true;
                break;
            }
        return jinja_step(c, hay.u.l->n);
    case JV_DICT:
        if ((needle.t == JV_LIST && needle.sub != JL_TUPLE) || needle.t == JV_DICT || needle.t == JV_NS)
            return jinja_fail(c, at, "unhashable type: '%s'", jinja_type_name(needle));
        *out = jinja_dict_get(hay.u.d, needle) != NULL;
        return jinja_step(c, hay.u.d->n);
    case JV_UNDEF: return true; /* iterating an Undefined yields nothing */
    default: return jinja_fail(c, at, "argument of type '%s' is not iterable", jinja_type_name(hay));
    }
}

/* ---- attribute and item access ----------------------------------------------------------------- */

static bool make_method(jctx *c, jv self, const char *name, jv *out) {
    jmethod *m = jinja_ctx_alloc(c, sizeof *m);
    if (!m) return false;
    m->self = self;
    m->name = name;
    *out = (jv){ .t = JV_METHOD, .u.meth = m };
    return true;
}

static bool loop_attr(jctx *c, jv lv, const char *name, jv *out) {
    const jloop *l = lv.u.loop;
    size_t i = l->index0, n = l->items->n;
    if (!strcmp(name, "index")) *out = jv_int((int64_t)i + 1);
    else if (!strcmp(name, "index0")) *out = jv_int((int64_t)i);
    else if (!strcmp(name, "revindex")) *out = jv_int((int64_t)(n - i));
    else if (!strcmp(name, "revindex0")) *out = jv_int((int64_t)(n - i - 1));
    else if (!strcmp(name, "first")) *out = jv_bool(i == 0);
    else if (!strcmp(name, "last")) *out = jv_bool(i + 1 == n);
    else if (!strcmp(name, "length")) *out = jv_int((int64_t)n);
    else if (!strcmp(name, "depth")) *out = jv_int(1);
    else if (!strcmp(name, "depth0")) *out = jv_int(0);
    else if (!strcmp(name, "previtem")) *out = i > 0 ? l->items->v[i - 1] : jinja_undef(c, "there is no previous item");
    else if (!strcmp(name, "nextitem")) *out = i + 1 < n ? l->items->v[i + 1] : jinja_undef(c, "there is no next item");
    else if (!strcmp(name, "cycle")) return make_method(c, lv, "cycle", out);
    else *out = jinja_undef(c, "'LoopContext object' has no attribute '%s'", name);
    return true;
}

bool jinja_getattr(jctx *c, const jnode *at, jv obj, const char *name, size_t n, jv *out) {
    /* Undefined raises on attribute access, except for dunder names, which are merely missing */
    if (obj.t == JV_UNDEF && !(n >= 2 && name[0] == '_' && name[1] == '_')) return undef_error(c, at, obj);
    const char *method = jinja_method_name(obj, name, n);
    if (method) return make_method(c, obj, method, out);
    /* names starting with "_" are unsafe in the sandbox: always undefined */
    if (n && name[0] != '_') {
        if (obj.t == JV_DICT || obj.t == JV_NS) {
            jv *v = jinja_dict_get_str(obj.u.d, name, n);
            if (v) {
                *out = *v;
                return true;
            }
        } else if (obj.t == JV_LOOP) {
            return loop_attr(c, obj, name, out);
        }
    }
    *out = jinja_undef(c, "'%s object' has no attribute '%.*s'", obj.t == JV_NS ? "Namespace" : jinja_type_name(obj),
                       (int)(n > 100 ? 100 : n), name);
    return true;
}

static int64_t int_of_key(jv key) { return key.t == JV_INT ? key.u.i : (int64_t)key.u.b; }

bool jinja_getitem(jctx *c, const jnode *at, jv obj, jv key, jv *out) {
    if (obj.t == JV_UNDEF) return undef_error(c, at, obj);
    if (obj.t == JV_DICT) {
        jv *v = jinja_dict_get(obj.u.d, key);
        if (v) {
            *out = *v;
            return true;
        }
    } else if ((key.t == JV_INT || key.t == JV_BOOL) &&
               (obj.t == JV_STR || (obj.t == JV_LIST && (obj.sub == JL_LIST || obj.sub == JL_TUPLE)))) {
        int64_t i = key.t == JV_INT ? key.u.i : key.u.b;
        int64_t len = obj.t == JV_STR ? (int64_t)jinja_utf8_len(obj.u.s.p, obj.u.s.n) : (int64_t)obj.u.l->n;
        if (i < 0) i += len;
        if (i >= 0 && i < len) {
            if (obj.t == JV_LIST) {
                *out = obj.u.l->v[i];
            } else {
                size_t off = jinja_utf8_offset(obj.u.s.p, obj.u.s.n, (size_t)i);
                uint32_t cp;
                *out = jv_strn(obj.u.s.p + off, jinja_utf8_next(obj.u.s.p + off, obj.u.s.n - off, &cp));
            }
            return true;
        }
        *out = jinja_undef(c, "%s object has no element %lld", jinja_type_name(obj), (long long)int_of_key(key));
        return true;
    }
    /* jinja2 falls back to attribute lookup for string keys (ns['x'], "abc"['upper']) */
    if (key.t == JV_STR) return jinja_getattr(c, at, obj, key.u.s.p, key.u.s.n, out);
    if (key.t == JV_INT || key.t == JV_BOOL)
        *out = jinja_undef(c, "%s object has no element %lld", jinja_type_name(obj), (long long)int_of_key(key));
    else
        *out = jinja_undef(c, "%s object has no element of type %s", jinja_type_name(obj), jinja_type_name(key));
    return true;
}

/* Python's slice.indices(): clamps start/stop for a sequence of length len. */
static void slice_indices(int64_t len, bool has_start, int64_t start, bool has_stop, int64_t stop, int64_t step,
                          int64_t *ostart, int64_t *ostop) {
    if (!has_start) {
        start = step < 0 ? len - 1 : 0;
    } else {
        if (start < 0) start += len;
        if (start < 0) start = step < 0 ? -1 : 0;
        else if (start >= len) start = step < 0 ? len - 1 : len;
    }
    if (!has_stop) {
        stop = step < 0 ? -1 : len;
    } else {
        if (stop < 0) stop += len;
        if (stop < 0) stop = step < 0 ? -1 : 0;
        else if (stop >= len) stop = step < 0 ? len - 1 : len;
    }
    *ostart = start;
    *ostop = stop;
}

/* Evaluates one slice bound: absent/None -> not given; an int; anything else makes the slice fail. */
static bool slice_bound(jctx *c, const jnode *n, jframe *f, bool *has, int64_t *v, bool *bad) {
    *has = false;
    if (!n) return true;
    jv x;
    if (!ev(c, n, f, &x)) return false;
    if (x.t == JV_NONE) return true;
    if (x.t == JV_INT || x.t == JV_BOOL) {
        *has = true;
        *v = x.t == JV_INT ? x.u.i : x.u.b;
    } else {
        *bad = true;
    }
    return true;
}

static bool eval_slice(jctx *c, const jnode *sl, jv obj, jframe *f, jv *out) {
    bool h0, h1, h2, bad = false;
    int64_t start = 0, stop = 0, step = 1;
    if (!slice_bound(c, sl->a, f, &h0, &start, &bad) || !slice_bound(c, sl->b, f, &h1, &stop, &bad) ||
        !slice_bound(c, sl->c, f, &h2, &step, &bad))
        return false;
    if (!h2) step = 1;
    if (obj.t == JV_UNDEF) return undef_error(c, sl, obj);
    bool is_seq = obj.t == JV_STR || (obj.t == JV_LIST && (obj.sub == JL_LIST || obj.sub == JL_TUPLE));
    /* jinja2 compiles slices to plain Python subscripts: a bad slice raises instead of undefined */
    if (bad) return jinja_fail(c, sl, "slice indices must be integers or None");
    if (!is_seq) return jinja_fail(c, sl, "'%s' object is not subscriptable by a slice", jinja_type_name(obj));
    if (step == 0) return jinja_fail(c, sl, "slice step cannot be zero");
    if (step < -INT64_MAX) step = -INT64_MAX;
    /* strings are sliced by code point: index them once */
    size_t ncp = obj.t == JV_STR ? jinja_utf8_len(obj.u.s.p, obj.u.s.n) : obj.u.l->n;
    int64_t s0, s1;
    slice_indices((int64_t)ncp, h0, start, h1, stop, step, &s0, &s1);
    size_t count = 0;
    if (step > 0 && s1 > s0) count = (size_t)((s1 - s0 - 1) / step + 1);
    if (step < 0 && s0 > s1) count = (size_t)((s0 - s1 - 1) / (-step) + 1);
    if (!jinja_step(c, count)) return false;
    if (obj.t == JV_LIST) {
        jlist *l = jinja_list_new(&c->arena, count);
        if (!l) return jinja_fail_limit(c, sl, "template used too much memory");
        for (size_t k = 0; k < count; k++) l->v[k] = obj.u.l->v[s0 + (int64_t)k * step];
        l->n = count;
        *out = jv_list(l, (jl_kind)obj.sub);
        return true;
    }
    size_t *offs = malloc((ncp + 1) * sizeof *offs);
    char *buf = malloc(obj.u.s.n + 1);
    if (!offs || !buf) {
        free(offs);
        free(buf);
        return jinja_fail(c, sl, "out of memory");
    }
    size_t i = 0, k = 0;
    while (i < obj.u.s.n) {
        uint32_t cp;
        offs[k++] = i;
        i += jinja_utf8_next(obj.u.s.p + i, obj.u.s.n - i, &cp);
    }
    offs[k] = i;
    size_t o = 0;
    for (size_t j = 0; j < count; j++) {
        int64_t idx = s0 + (int64_t)j * step;
        size_t len = offs[idx + 1] - offs[idx];
        jinja_copy(buf + o, obj.u.s.p + offs[idx], len);
        o += len;
    }
    bool ok = jinja_str_dup(&c->arena, buf, o, out);
    free(offs);
    free(buf);
    return ok ? true : jinja_fail_limit(c, sl, "template used too much memory");
}

/* ---- arithmetic ---------------------------------------------------------------------------------- */

static bool is_intlike(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }
static bool is_number(jv v) { return is_intlike(v) || v.t == JV_FLOAT; }
static int64_t as_int(jv v) { return v.t == JV_INT ? v.u.i : (int64_t)v.u.b; }
static double as_f(jv v) { return v.t == JV_FLOAT ? v.u.f : (double)as_int(v); }

/* Python's float floor division and modulo (float_divmod). */
static void py_divmod(double vx, double wx, double *floordiv, double *mod) {
    double m = fmod(vx, wx);
    double div = (vx - m) / wx;
    if (m != 0) {
        if ((wx < 0) != (m < 0)) {
            m += wx;
            div -= 1.0;
        }
    } else {
        m = copysign(0.0, wx);
    }
    double fd;
    if (div != 0) {
        fd = floor(div);
        if (div - fd > 0.5) fd += 1.0;
    } else {
        fd = copysign(0.0, vx / wx);
    }
    *floordiv = fd;
    *mod = m;
}

static bool repeat_seq(jctx *c, const jnode *n, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.t == JV_STR) {
        if (seq.u.s.n && (uint64_t)times > JINJA_MAX_OUTPUT / seq.u.s.n)
            return jinja_fail_limit(c, n, "string repetition too large");
        size_t total = seq.u.s.n * (size_t)times;
        char *p = jinja_ctx_alloc(c, total + 1);
        if (!p) return false;
        for (int64_t i = 0; i < times; i++) jinja_copy(p + (size_t)i * seq.u.s.n, seq.u.s.p, seq.u.s.n);
        *out = jv_strn(p, total);
        return true;
    }
    size_t len = seq.u.l->n;
    if (len && (uint64_t)times > (JINJA_MAX_OUTPUT / sizeof(jv)) / len)
        return jinja_fail_limit(c, n, "list repetition too large");
    jlist *l = jinja_list_new(&c->arena, len * (size_t)times);
    if (!l) return jinja_fail_limit(c, n, "template used too much memory");
    for (int64_t i = 0; i < times; i++) jinja_copy(l->v + (size_t)i * len, seq.u.l->v, len * sizeof(jv));
    l->n = len * (size_t)times;
    *out = jv_list(l, (jl_kind)seq.sub);
    return jinja_step(c, l->n);
}

static bool concat_seq(jctx *c, const jnode *n, jv a, jv b, jv *out) {
    if (a.t == JV_STR) {
        if (a.u.s.n + b.u.s.n > JINJA_MAX_OUTPUT) return jinja_fail_limit(c, n, "string too large");
        char *p = jinja_ctx_alloc(c, a.u.s.n + b.u.s.n + 1);
        if (!p) return false;
        jinja_copy(p, a.u.s.p, a.u.s.n);
        jinja_copy(p + a.u.s.n, b.u.s.p, b.u.s.n);
        *out = jv_strn(p, a.u.s.n + b.u.s.n);
        return true;
    }
    jlist *l = jinja_list_new(&c->arena, a.u.l->n + b.u.l->n);
    if (!l) return jinja_fail_limit(c, n, "template used too much memory");
    jinja_copy(l->v, a.u.l->v, a.u.l->n * sizeof(jv));
    jinja_copy(l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof(jv));
    l->n = a.u.l->n + b.u.l->n;
    *out = jv_list(l, (jl_kind)a.sub);
    return jinja_step(c, l->n);
}

static bool int_op(jctx *c, const jnode *n, char op, int64_t x, int64_t y, jv *out) {
    int64_t r;
    bool ovf = false;
    switch (op) {
    case '+': ovf = __builtin_add_overflow(x, y, &r); break;
    case '-': ovf = __builtin_sub_overflow(x, y, &r); break;
    case '*': ovf = __builtin_mul_overflow(x, y, &r); break;
    case 'f': /* floor division */
    case '%':
        if (y == 0) return jinja_fail(c, n, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) {
            ovf = true;
            break;
        }
        r = op == 'f' ? x / y : x % y;
        if (op == 'f' && (x % y != 0) && ((x < 0) != (y < 0))) r--;
        if (op == '%' && r != 0 && ((r < 0) != (y < 0))) r += y;
        break;
    default: return jinja_fail(c, n, "bad integer operator");
    }
    if (ovf) return jinja_fail(c, n, "integer overflow");
    *out = jv_int(r);
    return true;
}

static bool int_pow(jctx *c, const jnode *n, int64_t base, int64_t e, jv *out) {
    if (e < 0) {
        if (base == 0) return jinja_fail(c, n, "0.0 cannot be raised to a negative power");
        *out = jv_float(pow((double)base, (double)e));
        return true;
    }
    int64_t r = 1;
    while (e > 0) {
        if (e & 1 && __builtin_mul_overflow(r, base, &r)) return jinja_fail(c, n, "integer overflow");
        e >>= 1;
        if (e && __builtin_mul_overflow(base, base, &base)) return jinja_fail(c, n, "integer overflow");
    }
    *out = jv_int(r);
    return true;
}

static bool arith(jctx *c, const jnode *n, jv a, jv b, jv *out) {
    const char *op = n->op;
    /* str % Undefined: Undefined has __getitem__, so Python takes it as a mapping and %s prints "" */
    if (!strcmp(op, "%") && a.t == JV_STR && b.t == JV_UNDEF) return jinja_py_format(c, n, a, &b, 1, &b, out);
    if (a.t == JV_UNDEF) return undef_error(c, n, a);
    if (b.t == JV_UNDEF) return undef_error(c, n, b);
    if (is_number(a) && is_number(b)) {
        bool ints = is_intlike(a) && is_intlike(b);
        if (!strcmp(op, "/")) {
            if (as_f(b) == 0) return jinja_fail(c, n, "division by zero");
            *out = jv_float(as_f(a) / as_f(b));
            return true;
        }
        if (!strcmp(op, "**")) {
            if (ints) return int_pow(c, n, as_int(a), as_int(b), out);
            if (as_f(a) == 0 && as_f(b) < 0) return jinja_fail(c, n, "0.0 cannot be raised to a negative power");
            if (as_f(a) < 0 && as_f(b) != floor(as_f(b)))
                return jinja_fail(c, n, "a negative number to a fractional power is complex (not supported)");
            *out = jv_float(pow(as_f(a), as_f(b)));
            return true;
        }
        char o = !strcmp(op, "//") ? 'f' : op[0];
        if (ints) return int_op(c, n, o, as_int(a), as_int(b), out);
        double x = as_f(a), y = as_f(b), fd, m;
        switch (o) {
        case '+': *out = jv_float(x + y); return true;
        case '-': *out = jv_float(x - y); return true;
        case '*': *out = jv_float(x * y); return true;
        default:
            if (y == 0) return jinja_fail(c, n, "float division by zero");
            py_divmod(x, y, &fd, &m);
            *out = jv_float(o == 'f' ? fd : m);
            return true;
        }
    }
    if (!strcmp(op, "%") && a.t == JV_STR) { /* printf-style formatting: a tuple spreads */
        bool spread = b.t == JV_LIST && b.sub == JL_TUPLE;
        bool mapping = b.t == JV_DICT || (b.t == JV_LIST && b.sub == JL_LIST); /* subscriptable, not a tuple */
        return jinja_py_format(c, n, a, spread ? b.u.l->v : &b, spread ? b.u.l->n : 1, mapping ? &b : NULL, out);
    }
    bool seq_a = a.t == JV_STR || (a.t == JV_LIST && (a.sub == JL_LIST || a.sub == JL_TUPLE));
    bool seq_b = b.t == JV_STR || (b.t == JV_LIST && (b.sub == JL_LIST || b.sub == JL_TUPLE));
    if (!strcmp(op, "+") && seq_a && a.t == b.t && a.sub == b.sub) return concat_seq(c, n, a, b, out);
    if (!strcmp(op, "*") && seq_a && is_intlike(b)) return repeat_seq(c, n, a, as_int(b), out);
    if (!strcmp(op, "*") && seq_b && is_intlike(a)) return repeat_seq(c, n, b, as_int(a), out);
    if (!strcmp(op, "+") && a.t == JV_STR)
        return jinja_fail(c, n, "can only concatenate str (not \"%s\") to str", jinja_type_name(b));
    return jinja_fail(c, n, "unsupported operand type(s) for %s: '%s' and '%s'", op, jinja_type_name(a),
                      jinja_type_name(b));
}

static bool compare(jctx *c, const jnode *n, const char *op, jv a, jv b, bool *out) {
    if (!strcmp(op, "==")) *out = jinja_eq(a, b);
    else if (!strcmp(op, "!=")) *out = !jinja_eq(a, b);
    else if (!strcmp(op, "in")) return jinja_contains(c, n, b, a, out);
    else if (!strcmp(op, "ni")) {
        if (!jinja_contains(c, n, b, a, out)) return false;
        *out = !*out;
    } else {
        if (a.t == JV_UNDEF) return undef_error(c, n, a);
        if (b.t == JV_UNDEF) return undef_error(c, n, b);
        bool ok, r;
        if (!strcmp(op, "<")) r = jinja_lt(a, b, &ok);
        else if (!strcmp(op, ">")) r = jinja_lt(b, a, &ok);
        else if (!strcmp(op, "<=")) r = !jinja_lt(b, a, &ok);
        else r = !jinja_lt(a, b, &ok);
        /* NaN makes both orders false; <= and >= must then be false too */
        if (ok && (!strcmp(op, "<=") || !strcmp(op, ">=")) && (a.t == JV_FLOAT || b.t == JV_FLOAT) &&
            (isnan(a.t == JV_FLOAT ? a.u.f : 0) || isnan(b.t == JV_FLOAT ? b.u.f : 0)))
            r = false;
        if (!ok)
            return jinja_fail(c, n, "'%s' not supported between instances of '%s' and '%s'", op,
                              jinja_type_name(a), jinja_type_name(b));
        *out = r;
    }
    return true;
}

/* ---- calls ----------------------------------------------------------------------------------------- */

/* Runs body with output captured into a string value. */
static bool capture(jctx *c, jnode *const *body, int n, jframe *f, jv *out) {
    jbuf buf;
    jinja_buf_init(&buf, JINJA_MAX_OUTPUT);
    jbuf *saved = c->out;
    c->out = &buf;
    int r = exec_body(c, body, n, f);
    c->out = saved;
    bool ok = r == X_OK;
    if (r == X_BREAK || r == X_CONTINUE) ok = jinja_fail(c, NULL, "'break' or 'continue' outside loop");
    if (ok && !jinja_str_dup(&c->arena, buf.p ? buf.p : "", buf.n, out))
        ok = jinja_fail_limit(c, NULL, "template used too much memory");
    jinja_buf_free(&buf);
    return ok;
}

static bool call_macro(jctx *c, const jnode *at, const jmacro *m, jv *args, int nargs, const char **kw,
                       jv *kwv, int nkw, const jmacro *caller, jv *out) {
    const jnode *d = m->def;
    const char *mname = d->kind == N_MACRO ? d->s : "caller";
    if (nargs > d->nlist)
        return jinja_fail(c, at, "macro '%s' takes not more than %d argument(s)", mname, d->nlist);
    if (c->call_depth >= JINJA_MAX_CALL_DEPTH) return jinja_fail_limit(c, at, "macro calls nested too deeply");
    jframe *f = frame_new(c, m->closure);
    if (!f) return false;
    bool given[256] = { false };
    if (d->nlist > 256) return jinja_fail(c, at, "macro has too many parameters");
    for (int i = 0; i < nargs; i++) {
        if (!frame_set(c, f, d->list[i]->s, d->list[i]->n, args[i])) return false;
        given[i] = true;
    }
    for (int k = 0; k < nkw; k++) {
        int i = 0;
        while (i < d->nlist && strcmp(d->list[i]->s, kw[k])) i++;
        if (i == d->nlist) return jinja_fail(c, at, "macro '%s' takes no keyword argument '%s'", mname, kw[k]);
        if (given[i]) return jinja_fail(c, at, "macro '%s' got multiple values for argument '%s'", mname, kw[k]);
        if (!frame_set(c, f, d->list[i]->s, d->list[i]->n, kwv[k])) return false;
        given[i] = true;
    }
    if (caller) {
        jmacro *cm = jinja_ctx_alloc(c, sizeof *cm);
        if (!cm) return false;
        *cm = *caller;
        if (!frame_set(c, f, "caller", 6, (jv){ .t = JV_MACRO, .u.m = cm })) return false;
    }
    /* defaults are evaluated in the macro's frame, in order, so later ones can use earlier ones */
    int first_default = d->nlist - d->nlist2;
    for (int i = 0; i < d->nlist; i++) {
        if (given[i]) continue;
        jv v;
        if (i >= first_default) {
            if (!ev(c, d->list2[i - first_default], f, &v)) return false;
        } else {
            v = jinja_undef(c, "parameter '%s' was not provided", d->list[i]->s);
        }
        if (!frame_set(c, f, d->list[i]->s, d->list[i]->n, v)) return false;
    }
    c->call_depth++;
    bool ok = capture(c, d->body, d->nbody, f, out);
    c->call_depth--;
    return ok;
}

static bool call_value(jctx *c, const jnode *at, jv fn, const jargs *a, const jmacro *caller, jv *out) {
    switch (fn.t) {
    case JV_MACRO:
        return call_macro(c, at, fn.u.m, (jv *)a->args, a->nargs, a->kw, (jv *)a->kwv, a->nkw, caller, out);
    case JV_FUNC: return jinja_call_builtin(c, at, fn.sub, a, out);
    case JV_METHOD: return jinja_call_method(c, at, fn.u.meth, a, out);
    case JV_UNDEF: return undef_error(c, at, fn);
    default: return jinja_fail(c, at, "'%s' object is not callable", jinja_type_name(fn));
    }
}

bool jinja_call(jctx *c, const jnode *at, jv fn, jv *args, int nargs, const char **kw, jv *kwv, int nkw,
                jv *out) {
    jargs a = { args, nargs, kw, kwv, nkw };
    return call_value(c, at, fn, &a, NULL, out);
}

/* Evaluates the positional (list) and keyword (kw, list2) arguments of a call, filter or test. */
static bool eval_args(jctx *c, const jnode *n, jframe *f, jargs *a) {
    jlist *spread = NULL;
    jv dyn_kw = jv_none();
    if (n->b) { /* *args */
        jv v;
        if (!ev(c, n->b, f, &v) || !jinja_iterate(c, n->b, v, &spread)) return false;
    }
    if (n->c) { /* **kwargs */
        if (!ev(c, n->c, f, &dyn_kw)) return false;
        if (dyn_kw.t != JV_DICT) return jinja_fail(c, n->c, "argument after ** must be a mapping, not %s",
                                                 jinja_type_name(dyn_kw));
        for (size_t i = 0; i < dyn_kw.u.d->n; i++)
            if (dyn_kw.u.d->k[i].t != JV_STR) return jinja_fail(c, n->c, "keywords must be strings");
    }
    size_t nargs = (size_t)n->nlist + (spread ? spread->n : 0);
    size_t nkw = (size_t)n->nlist2 + (dyn_kw.t == JV_DICT ? dyn_kw.u.d->n : 0);
    if (nargs > 65536 || nkw > 65536) return jinja_fail(c, n, "too many arguments");
    jv *args = NULL, *kwv = NULL;
    const char **kw = NULL;
    if (nargs && !(args = jinja_ctx_alloc(c, nargs * sizeof(jv)))) return false;
    if (nkw && (!(kwv = jinja_ctx_alloc(c, nkw * sizeof(jv))) || !(kw = jinja_ctx_alloc(c, nkw * sizeof *kw))))
        return false;
    for (int i = 0; i < n->nlist; i++)
        if (!ev(c, n->list[i], f, &args[i])) return false;
    if (spread) jinja_copy(args + n->nlist, spread->v, spread->n * sizeof(jv));
    for (int i = 0; i < n->nlist2; i++) {
        kw[i] = n->kw[i];
        if (!ev(c, n->list2[i], f, &kwv[i])) return false;
    }
    for (size_t i = (size_t)n->nlist2; i < nkw; i++) {
        jv k = dyn_kw.u.d->k[i - (size_t)n->nlist2];
        char *name = jinja_ctx_alloc(c, k.u.s.n + 1);
        if (!name) return false;
        jinja_copy(name, k.u.s.p, k.u.s.n);
        kw[i] = name;
        kwv[i] = dyn_kw.u.d->v[i - (size_t)n->nlist2];
    }
    *a = (jargs){ args, (int)nargs, kw, kwv, (int)nkw };
    return true;
}

static bool eval_call(jctx *c, const jnode *n, jframe *f, const jmacro *caller, jv *out) {
    jv fn;
    jargs a;
    if (!ev(c, n->a, f, &fn) || !eval_args(c, n, f, &a)) return false;
    return call_value(c, n, fn, &a, caller, out);
}

/* ---- expressions --------------------------------------------------------------------------------- */

static bool ev_name(jctx *c, const jnode *n, jframe *f, jv *out) {
    jv *v = frame_lookup(f, n->s, n->n);
    if (v) {
        *out = *v;
        return true;
    }
    int id = jinja_builtin_id(n->s, n->n);
    if (id) {
        *out = (jv){ .t = JV_FUNC, .sub = (uint8_t)id };
        return true;
    }
    *out = jinja_undef(c, "'%s' is undefined", n->s);
    return true;
}

static bool ev_compare(jctx *c, const jnode *n, jframe *f, jv *out) {
    jv left;
    if (!ev(c, n->a, f, &left)) return false;
    for (int i = 0; i < n->nlist; i++) {
        const jnode *o = n->list[i];
        jv right;
        bool r;
        if (!ev(c, o->a, f, &right) || !compare(c, o, o->op, left, right, &r)) return false;
        if (!r) {
            *out = jv_bool(false);
            return true;
        }
        left = right;
    }
    *out = jv_bool(true);
    return true;
}

static bool ev_concat(jctx *c, const jnode *n, jframe *f, jv *out) {
    jbuf b;
    jinja_buf_init(&b, JINJA_MAX_OUTPUT);
    bool ok = true;
    for (int i = 0; i < n->nlist && ok; i++) {
        jv v;
        ok = ev(c, n->list[i], f, &v);
        if (ok) jinja_put_str(&b, v);
    }
    if (ok && b.over) ok = jinja_fail_limit(c, n, "string too large");
    if (ok && !jinja_str_dup(&c->arena, b.p ? b.p : "", b.n, out)) ok = jinja_fail_limit(c, n, "template used too much memory");
    jinja_buf_free(&b);
    return ok;
}

static bool ev_collection(jctx *c, const jnode *n, jframe *f, jv *out) {
    if (n->kind == N_DICT) {
        jdict *d = jinja_dict_new(&c->arena, (size_t)n->nlist);
        if (!d) return jinja_fail_limit(c, n, "template used too much memory");
        for (int i = 0; i < n->nlist; i++) {
            jv k, v;
            if (!ev(c, n->list[i], f, &k) || !ev(c, n->list2[i], f, &v)) return false;
            if (k.t == JV_LIST && k.sub != JL_TUPLE) return jinja_fail(c, n, "unhashable type: 'list'");
            if (k.t == JV_DICT || k.t == JV_NS) return jinja_fail(c, n, "unhashable type: 'dict'");
            if (!jinja_dict_set(&c->arena, d, k, v)) return jinja_fail_limit(c, n, "template used too much memory");
        }
        *out = jv_dict(d);
        return true;
    }
    jlist *l = jinja_list_new(&c->arena, (size_t)n->nlist);
    if (!l) return jinja_fail_limit(c, n, "template used too much memory");
    for (int i = 0; i < n->nlist; i++)
        if (!ev(c, n->list[i], f, &l->v[i])) return false;
    l->n = (size_t)n->nlist;
    *out = jv_list(l, n->kind == N_TUPLE ? JL_TUPLE : JL_LIST);
    return true;
}

static bool ev_unary(jctx *c, const jnode *n, jframe *f, jv *out) {
    jv v;
    if (!ev(c, n->a, f, &v)) return false;
    if (v.t == JV_UNDEF) return undef_error(c, n, v);
    if (!is_number(v)) return jinja_fail(c, n, "bad operand type for unary %s: '%s'", n->kind == N_NEG ? "-" : "+",
                                         jinja_type_name(v));
    if (n->kind == N_POS) *out = v.t == JV_BOOL ? jv_int(v.u.b) : v;
    else if (v.t == JV_FLOAT) *out = jv_float(-v.u.f);
    else if (as_int(v) == INT64_MIN) return jinja_fail(c, n, "integer overflow");
    else *out = jv_int(-as_int(v));
    return true;
}

static bool ev_inner(jctx *c, const jnode *n, jframe *f, jv *out) {
    jv a, b;
    switch (n->kind) {
    case N_CONST: *out = n->lit; return true;
    case N_NAME: return ev_name(c, n, f, out);
    case N_INPUT: *out = c->input ? *c->input : jv_undef("no filter input"); return true;
    case N_GETATTR: return ev(c, n->a, f, &a) && jinja_getattr(c, n, a, n->s, n->n, out);
    case N_GETITEM:
        if (!ev(c, n->a, f, &a)) return false;
        if (n->b->kind == N_SLICE) return eval_slice(c, n->b, a, f, out);
        return ev(c, n->b, f, &b) && jinja_getitem(c, n, a, b, out);
    case N_CALL: return eval_call(c, n, f, NULL, out);
    case N_FILTER: {
        jargs args;
        if (n->a) {
            if (!ev(c, n->a, f, &a)) return false;
        } else {
            a = c->input ? *c->input : jv_undef("no filter input");
        }
        return eval_args(c, n, f, &args) && jinja_apply_filter(c, n, n->s, a, &args, out);
    }
    case N_TEST: {
        jargs args;
        bool r;
        if (!ev(c, n->a, f, &a) || !eval_args(c, n, f, &args) || !jinja_apply_test(c, n, n->s, a, &args, &r))
            return false;
        *out = jv_bool(r);
        return true;
    }
    case N_NOT:
        if (!ev(c, n->a, f, &a)) return false;
        *out = jv_bool(!jinja_truthy(a));
        return true;
    case N_NEG:
    case N_POS: return ev_unary(c, n, f, out);
    case N_BINOP: return ev(c, n->a, f, &a) && ev(c, n->b, f, &b) && arith(c, n, a, b, out);
    case N_AND:
    case N_OR:
        /* Python's and/or: the deciding operand itself, not a bool */
        if (!ev(c, n->a, f, &a)) return false;
        if (jinja_truthy(a) == (n->kind == N_OR)) {
            *out = a;
            return true;
        }
        return ev(c, n->b, f, out);
    case N_CONCAT: return ev_concat(c, n, f, out);
    case N_COMPARE: return ev_compare(c, n, f, out);
    case N_COND:
        if (!ev(c, n->a, f, &a)) return false;
        if (jinja_truthy(a)) return ev(c, n->b, f, out);
        if (n->c) return ev(c, n->c, f, out);
        *out = jinja_undef(c, "the inline if-expression evaluated to false and no else section was defined");
        return true;
    case N_LIST:
    case N_TUPLE:
    case N_DICT: return ev_collection(c, n, f, out);
    default: return jinja_fail(c, n, "unexpected node in expression");
    }
}

static bool ev(jctx *c, const jnode *n, jframe *f, jv *out) {
    if (c->failed) return false;
    if (++c->depth > JINJA_MAX_EVAL_DEPTH) {
        c->depth--;
        return jinja_fail_limit(c, n, "expression nested too deeply");
    }
    const jnode *saved = c->at;
    c->at = n;
    bool ok = jinja_step(c, 1) && ev_inner(c, n, f, out);
    c->at = saved;
    c->depth--;
    return ok;
}

/* ---- statements ---------------------------------------------------------------------------------- */

static bool assign(jctx *c, const jnode *target, jv v, jframe *f) {
    if (target->kind == N_NAME) return frame_set(c, f, target->s, target->n, v);
    if (target->kind == N_NSREF) {
        jv *ns = frame_lookup(f, target->s, target->n);
        if (!ns || ns->t != JV_NS) return jinja_fail(c, target, "cannot assign attribute on non-namespace object");
        if (!jinja_dict_set(&c->arena, ns->u.d, jv_strn(target->s2, strlen(target->s2)), v))
            return jinja_fail_limit(c, target, "template used too much memory");
        return true;
    }
    /* tuple unpacking */
    jlist *items;
    if (v.t == JV_UNDEF) return undef_error(c, target, v);
    if (!jinja_iterate(c, target, v, &items)) return false;
    if (items->n != (size_t)target->nlist)
        return jinja_fail(c, target, "%s values to unpack (expected %d, got %zu)",
                          items->n > (size_t)target->nlist ? "too many" : "not enough", target->nlist, items->n);
    for (int i = 0; i < target->nlist; i++)
        if (!assign(c, target->list[i], items->v[i], f)) return false;
    return true;
}

static int exec_for(jctx *c, const jnode *n, jframe *f) {
    jv seq;
    jlist *items;
    if (!ev(c, n->b, f, &seq) || !jinja_iterate(c, n->b, seq, &items)) return X_ERR;
    jframe *it = frame_new(c, f);
    if (!it) return X_ERR;
    if (n->c) { /* `for x in xs if cond`: filter first, so loop.index counts kept items only */
        jlist *kept = jinja_list_new(&c->arena, items->n);
        if (!kept) return jinja_fail_limit(c, n, "template used too much memory"), X_ERR;
        for (size_t i = 0; i < items->n; i++) {
            jv keep;
            it->vars.n = 0;
            if (!assign(c, n->a, items->v[i], it) || !ev(c, n->c, it, &keep)) return X_ERR;
            if (jinja_truthy(keep)) kept->v[kept->n++] = items->v[i];
        }
        items = kept;
    }
    if (items->n == 0) return exec_body(c, n->body2, n->nbody2, f);
    jloop *loop = jinja_ctx_alloc(c, sizeof *loop);
    if (!loop) return X_ERR;
    loop->items = items;
    for (size_t i = 0; i < items->n; i++) {
        if (!jinja_step(c, 1)) return X_ERR;
        /* a fresh scope per iteration: reuse the frame's storage, forget its variables */
        it->vars.n = 0;
        loop->index0 = i;
        if (!assign(c, n->a, items->v[i], it) || !frame_set(c, it, "loop", 4, (jv){ .t = JV_LOOP, .u.loop = loop }))
            return X_ERR;
        int r = exec_body(c, n->body, n->nbody, it);
        if (r == X_ERR) return X_ERR;
        if (r == X_BREAK) break;
    }
    return X_OK;
}

static bool output(jctx *c, const jnode *n, jv v) {
    jinja_put_str(c->out, v);
    if (c->out->over) return jinja_fail_limit(c, n, "output larger than %u MiB", JINJA_MAX_OUTPUT >> 20);
    return true;
}

/* {% filter f %}body{% endfilter %} and {% set x | f %}body{% endset %}: body text through filters. */
static bool filtered_body(jctx *c, const jnode *n, jframe *f, jv *out) {
    jv text;
    if (!capture(c, n->body, n->nbody, f, &text)) return false;
    if (!n->b) {
        *out = text;
        return true;
    }
    const jv *saved = c->input;
    c->input = &text;
    bool ok = ev(c, n->b, f, out);
    c->input = saved;
    return ok;
}

static int exec_stmt(jctx *c, const jnode *n, jframe *f) {
    jv v;
    switch (n->kind) {
    case N_DATA:
        if (!jinja_buf_put(c->out, n->s, n->n))
            return jinja_fail_limit(c, n, "output larger than %u MiB", JINJA_MAX_OUTPUT >> 20), X_ERR;
        return X_OK;
    case N_OUTPUT: return ev(c, n->a, f, &v) && output(c, n, v) ? X_OK : X_ERR;
    case N_IF:
        if (!ev(c, n->a, f, &v)) return X_ERR;
        return jinja_truthy(v) ? exec_body(c, n->body, n->nbody, f) : exec_body(c, n->body2, n->nbody2, f);
    case N_FOR: return exec_for(c, n, f);
    case N_SET: return ev(c, n->b, f, &v) && assign(c, n->a, v, f) ? X_OK : X_ERR;
    case N_SET_BLOCK: return filtered_body(c, n, f, &v) && assign(c, n->a, v, f) ? X_OK : X_ERR;
    case N_FILTER_BLOCK: return filtered_body(c, n, f, &v) && output(c, n, v) ? X_OK : X_ERR;
    case N_MACRO: {
        jmacro *m = jinja_ctx_alloc(c, sizeof *m);
        if (!m) return X_ERR;
        m->def = n;
        m->closure = f;
        return frame_set(c, f, n->s, n->n, (jv){ .t = JV_MACRO, .u.m = m }) ? X_OK : X_ERR;
    }
    case N_CALL_BLOCK: {
        jmacro caller = { n, f };
        return eval_call(c, n->b, f, &caller, &v) && output(c, n, v) ? X_OK : X_ERR;
    }
    case N_WITH: {
        jframe *w = frame_new(c, f);
        if (!w) return X_ERR;
        for (int i = 0; i < n->nlist; i++)
            if (!ev(c, n->list2[i], f, &v) || !assign(c, n->list[i], v, w)) return X_ERR;
        return exec_body(c, n->body, n->nbody, w);
    }
    case N_BREAK: return X_BREAK;
    case N_CONTINUE: return X_CONTINUE;
    default: return jinja_fail(c, n, "unexpected node in statement list"), X_ERR;
    }
}

static int exec_body(jctx *c, jnode *const *body, int n, jframe *f) {
    if (++c->depth > JINJA_MAX_EVAL_DEPTH) {
        c->depth--;
        return jinja_fail_limit(c, n ? body[0] : NULL, "template nested too deeply"), X_ERR;
    }
    int r = X_OK;
    for (int i = 0; i < n && r == X_OK; i++) {
        c->at = body[i];
        r = jinja_step(c, 1) ? exec_stmt(c, body[i], f) : X_ERR;
    }
    c->depth--;
    return r;
}

char *jinja_render(const jinja_tmpl *t, const json_t *ctx, seek_err *err) {
    jctx c = { .err = err };
    c.arena.limit = JINJA_MAX_ARENA;
    jbuf out;
    jinja_buf_init(&out, JINJA_MAX_OUTPUT);
    c.out = &out;
    char *result = NULL;
    jframe *root = frame_new(&c, NULL), *top = root ? frame_new(&c, root) : NULL;
    if (top && ctx && json_is_object(ctx)) {
        jv vars;
        if (!jinja_from_json(&c.arena, ctx, &vars)) jinja_fail(&c, NULL, "render context too large or too deep");
        else root->vars = *vars.u.d;
    }
    if (top && !c.failed && exec_body(&c, t->body, t->nbody, top) == X_OK) {
        result = out.p ? out.p : strdup("");
        out.p = NULL;
        if (!result) err_set(err, SEEK_ENOMEM, "out of memory");
    }
    jinja_buf_free(&out);
    jinja_arena_free(&c.arena);
    return result;
}
