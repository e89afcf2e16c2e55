/*
 * jinja_parse.c - tokens to a syntax tree, a recursive-descent copy of jinja2's parser.py.
 *
 * Operator precedence, loosest first, exactly as jinja2 has it:
 *   `a if c else b`, or, and, not, comparisons (== != < > <= >= in, not in; chained),
 *   + -, ~, * / // %, **, unary - +, then primaries with postfix . [] () and filters | / tests `is`.
 * So `'a' + x | trim` trims x alone and `not x is defined` negates the test.
 * Statements: if/elif/else, for (target tuple, inline `if`, else), set (name, tuple, ns.attr, block
 * set with optional filters), macro, call, filter, with, print, break/continue (loopcontrols).
 * Unknown filters are an error at parse time, as in jinja2; unknown tests only when evaluated.
 * Every node carries line:column for error messages.  Nesting depth is bounded so that a hostile
 * template cannot overflow the stack.
 */
#include "jinja_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jarena *a;
    jtok *t;
    long nt, i;
    seek_err *err;
    int nest;       /* recursion depth of the descent */
    int loop_depth; /* for break/continue: loops around us inside the current macro */
    bool failed;
} parser;

typedef struct {
    jnode **v;
    int n, cap;
} nvec;

/* ---- helpers ------------------------------------------------------------------------------------- */

static const jtok *cur(parser *p) { return &p->t[p->i]; }
static const jtok *peek(parser *p) { return &p->t[p->i + 1 < p->nt ? p->i + 1 : p->i]; }
static void advance(parser *p) {
    if (p->i + 1 < p->nt) p->i++;
}

static void *fail_at(parser *p, const jtok *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void *fail_at(parser *p, const jtok *t, const char *fmt, ...) {
    if (p->failed) return NULL;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set(p->err, SEEK_EFORMAT, "%d:%d: %s", t->line, t->col, msg);
    p->failed = true;
    return NULL;
}

static const char *describe(const jtok *t, char *buf, size_t cap) {
    switch (t->type) {
    case TK_EOF: return "end of template";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_END: return "end of statement block";
    case TK_VAR_BEGIN: return "begin of print statement";
    case TK_BLOCK_BEGIN: return "begin of statement block";
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    case TK_DATA: return "template data";
    case TK_NAME: snprintf(buf, cap, "%.*s", (int)(t->n > 60 ? 60 : t->n), t->text); return buf;
    default: snprintf(buf, cap, "%s", t->op); return buf;
    }
}

static void *unexpected(parser *p) {
    char buf[80];
    return fail_at(p, cur(p), "unexpected '%s'", describe(cur(p), buf, sizeof buf));
}

static bool is_op(const jtok *t, const char *op) { return t->type == TK_OP && !strcmp(t->op, op); }
static bool is_name(const jtok *t, const char *name) {
    return t->type == TK_NAME && t->n == strlen(name) && !memcmp(t->text, name, t->n);
}

static bool expect_op(parser *p, const char *op) {
    if (!is_op(cur(p), op)) {
        char buf[80];
        fail_at(p, cur(p), "expected '%s', got '%s'", op, describe(cur(p), buf, sizeof buf));
        return false;
    }
    advance(p);
    return true;
}

static bool expect_type(parser *p, int type, const char *what) {
    if (cur(p)->type != type) {
        char buf[80];
        fail_at(p, cur(p), "expected %s, got '%s'", what, describe(cur(p), buf, sizeof buf));
        return false;
    }
    advance(p);
    return true;
}

static char *pdup(parser *p, const char *s, size_t n) {
    char *d = jinja_alloc(p->a, n + 1);
    if (!d) return fail_at(p, cur(p), "template too large");
    memcpy(d, s, n);
    return d;
}

static jnode *mk(parser *p, int kind, const jtok *at) {
    jnode *n = jinja_alloc(p->a, sizeof *n);
    if (!n) return fail_at(p, at, "template too large");
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static bool vpush(parser *p, nvec *v, jnode *n) {
    if (!n) return false;
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 8;
        jnode **nv = jinja_alloc(p->a, (size_t)cap * sizeof *nv);
        if (!nv) {
            fail_at(p, cur(p), "template too large");
            return false;
        }
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = n;
    return true;
}

/* Recursion guard around every descent that can nest. */
static bool enter(parser *p) {
    if (++p->nest > JINJA_MAX_NEST) {
        fail_at(p, cur(p), "template nested too deeply");
        return false;
    }
    return true;
}
static jnode *leave(parser *p, jnode *n) {
    p->nest--;
    return n;
}

/* ---- expressions ------------------------------------------------------------------------------- */

static jnode *parse_expression(parser *p, bool with_condexpr);
static jnode *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens);
static jnode *parse_unary(parser *p, bool with_filter);
static jnode *parse_primary(parser *p);
static jnode *parse_postfix(parser *p, jnode *n);
static jnode *parse_filter(parser *p, jnode *n, bool start_inline);

/* ( args, name=value, ... ) into list / kw+list2. */
static bool parse_call_args(parser *p, jnode *call) {
    if (!expect_op(p, "(")) return false;
    nvec args = { 0 }, kwv = { 0 };
    const char *kwn[64];
    bool need_comma = false;
    while (!is_op(cur(p), ")")) {
        if (need_comma) {
            if (!expect_op(p, ",")) return false;
            if (is_op(cur(p), ")")) break;
        }
        if (is_op(cur(p), "*")) { /* *args: spread an iterable after the positional arguments */
            if (call->b || call->c) {
                fail_at(p, cur(p), "invalid syntax for function call expression");
                return false;
            }
            advance(p);
            if (!(call->b = parse_expression(p, true))) return false;
        } else if (is_op(cur(p), "**")) { /* **kwargs: a dict of keyword arguments */
            if (call->c) {
                fail_at(p, cur(p), "invalid syntax for function call expression");
                return false;
            }
            advance(p);
            if (!(call->c = parse_expression(p, true))) return false;
        } else if (cur(p)->type == TK_NAME && is_op(peek(p), "=")) {
            if (call->c) {
                fail_at(p, cur(p), "invalid syntax for function call expression");
                return false;
            }
            if (kwv.n >= 64) {
                fail_at(p, cur(p), "too many keyword arguments");
                return false;
            }
            kwn[kwv.n] = pdup(p, cur(p)->text, cur(p)->n);
            if (!kwn[kwv.n]) return false;
            advance(p);
            advance(p);
            if (!vpush(p, &kwv, parse_expression(p, true))) return false;
        } else {
            if (kwv.n || call->b || call->c) {
                fail_at(p, cur(p), "invalid syntax for function call expression");
                return false;
            }
            if (!vpush(p, &args, parse_expression(p, true))) return false;
        }
        need_comma = true;
    }
    advance(p);
    call->list = args.v, call->nlist = args.n;
    call->list2 = kwv.v, call->nlist2 = kwv.n;
    if (kwv.n) {
        call->kw = jinja_alloc(p->a, (size_t)kwv.n * sizeof *call->kw);
        if (!call->kw) return fail_at(p, cur(p), "template too large");
        memcpy(call->kw, kwn, (size_t)kwv.n * sizeof *call->kw);
    }
    return true;
}

static jnode *parse_call(parser *p, jnode *callee) {
    jnode *n = mk(p, N_CALL, cur(p));
    if (!n || !callee) return NULL;
    n->a = callee;
    n->line = callee->line, n->col = callee->col; /* errors point at the start of the call */
    return parse_call_args(p, n) ? n : NULL;
}

/* A dotted name after | or is. */
static char *parse_dotted_name(parser *p) {
    const jtok *t = cur(p);
    if (!expect_type(p, TK_NAME, "a name")) return NULL;
    char buf[128];
    size_t n = 0;
    for (;;) {
        size_t len = t->n < sizeof buf - 1 - n ? t->n : sizeof buf - 1 - n;
        memcpy(buf + n, t->text, len);
        n += len;
        if (!is_op(cur(p), ".")) break;
        advance(p);
        t = cur(p);
        if (!expect_type(p, TK_NAME, "a name")) return NULL;
        if (n < sizeof buf - 1) buf[n++] = '.';
    }
    return pdup(p, buf, n);
}

static jnode *parse_filter(parser *p, jnode *n, bool start_inline) {
    while (is_op(cur(p), "|") || start_inline) {
        if (!start_inline) advance(p);
        start_inline = false;
        const jtok *at = cur(p);
        jnode *f = mk(p, N_FILTER, at);
        if (!f) return NULL;
        f->s = parse_dotted_name(p);
        if (!f->s) return NULL;
        if (is_op(cur(p), "(") && !parse_call_args(p, f)) return NULL;
        f->a = n;
        n = f;
    }
    return n;
}

static jnode *parse_test(parser *p, jnode *n) {
    const jtok *at = cur(p);
    advance(p); /* is */
    bool negated = false;
    if (is_name(cur(p), "not")) {
        advance(p);
        negated = true;
    }
    jnode *t = mk(p, N_TEST, at);
    if (!t) return NULL;
    t->a = n;
    t->s = parse_dotted_name(p);
    if (!t->s) return NULL;
    const jtok *c = cur(p);
    if (is_op(c, "(")) {
        if (!parse_call_args(p, t)) return NULL;
    } else if ((c->type == TK_NAME || c->type == TK_STRING || c->type == TK_INT || c->type == TK_FLOAT ||
                is_op(c, "[") || is_op(c, "{")) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        /* `is divisibleby 3`, `is equalto 'x'`: one primary argument without parentheses */
        if (is_name(c, "is")) return fail_at(p, c, "you cannot chain multiple tests with is");
        jnode *arg = parse_postfix(p, parse_primary(p));
        if (!arg) return NULL;
        t->list = jinja_alloc(p->a, sizeof *t->list);
        if (!t->list) return fail_at(p, c, "template too large");
        t->list[0] = arg;
        t->nlist = 1;
    }
    if (!negated) return t;
    jnode *no = mk(p, N_NOT, at);
    if (no) no->a = t;
    return no;
}

static jnode *parse_subscribed(parser *p) {
    const jtok *at = cur(p);
    jnode *args[3] = { NULL, NULL, NULL };
    if (is_op(cur(p), ":")) {
        advance(p);
    } else {
        jnode *e = parse_expression(p, true);
        if (!e || !is_op(cur(p), ":")) return e;
        advance(p);
        args[0] = e;
    }
    if (!is_op(cur(p), ":") && !is_op(cur(p), "]") && !is_op(cur(p), ",")) {
        args[1] = parse_expression(p, true);
        if (!args[1]) return NULL;
    }
    if (is_op(cur(p), ":")) {
        advance(p);
        if (!is_op(cur(p), "]") && !is_op(cur(p), ",")) {
            args[2] = parse_expression(p, true);
            if (!args[2]) return NULL;
        }
    }
    jnode *s = mk(p, N_SLICE, at);
    if (!s) return NULL;
    s->a = args[0], s->b = args[1], s->c = args[2];
    return s;
}

static jnode *parse_subscript(parser *p, jnode *n) {
    const jtok *at = cur(p);
    if (is_op(at, ".")) {
        advance(p);
        const jtok *t = cur(p);
        if (t->type == TK_NAME) {
            advance(p);
            jnode *g = mk(p, N_GETATTR, at);
            if (!g) return NULL;
            g->a = n;
            g->s = pdup(p, t->text, t->n);
            g->n = t->n;
            return g->s ? g : NULL;
        }
        if (t->type != TK_INT) return fail_at(p, t, "expected name or number");
        advance(p);
        jnode *g = mk(p, N_GETITEM, at), *k = mk(p, N_CONST, t);
        if (!g || !k) return NULL;
        k->lit = jv_int(t->i);
        g->a = n, g->b = k;
        return g;
    }
    advance(p); /* [ */
    nvec args = { 0 };
    while (!is_op(cur(p), "]")) {
        if (args.n && !expect_op(p, ",")) return NULL;
        if (!vpush(p, &args, parse_subscribed(p))) return NULL;
    }
    advance(p);
    if (args.n == 0) return fail_at(p, at, "expected subscript expression");
    jnode *g = mk(p, N_GETITEM, at);
    if (!g) return NULL;
    g->a = n;
    if (args.n == 1) {
        g->b = args.v[0];
    } else {
        jnode *tup = mk(p, N_TUPLE, at);
        if (!tup) return NULL;
        tup->list = args.v, tup->nlist = args.n;
        g->b = tup;
    }
    return g;
}

static jnode *parse_postfix(parser *p, jnode *n) {
    while (n) {
        if (is_op(cur(p), ".") || is_op(cur(p), "[")) n = parse_subscript(p, n);
        else if (is_op(cur(p), "(")) n = parse_call(p, n);
        else break;
    }
    return n;
}

static jnode *parse_filter_expr(parser *p, jnode *n) {
    while (n) {
        if (is_op(cur(p), "|")) n = parse_filter(p, n, false);
        else if (is_name(cur(p), "is")) n = parse_test(p, n);
        else if (is_op(cur(p), "(")) n = parse_call(p, n);
        else break;
    }
    return n;
}

static jnode *parse_list(parser *p) {
    jnode *l = mk(p, N_LIST, cur(p));
    if (!l) return NULL;
    advance(p);
    nvec items = { 0 };
    while (!is_op(cur(p), "]")) {
        if (items.n && !expect_op(p, ",")) return NULL;
        if (is_op(cur(p), "]")) break;
        if (!vpush(p, &items, parse_expression(p, true))) return NULL;
    }
    advance(p);
    l->list = items.v, l->nlist = items.n;
    return l;
}

static jnode *parse_dict(parser *p) {
    jnode *d = mk(p, N_DICT, cur(p));
    if (!d) return NULL;
    advance(p);
    nvec keys = { 0 }, vals = { 0 };
    while (!is_op(cur(p), "}")) {
        if (keys.n && !expect_op(p, ",")) return NULL;
        if (is_op(cur(p), "}")) break;
        if (!vpush(p, &keys, parse_expression(p, true))) return NULL;
        if (!expect_op(p, ":")) return NULL;
        if (!vpush(p, &vals, parse_expression(p, true))) return NULL;
    }
    advance(p);
    d->list = keys.v, d->nlist = keys.n;
    d->list2 = vals.v, d->nlist2 = vals.n;
    return d;
}

static jnode *parse_primary(parser *p) {
    if (!enter(p)) return NULL;
    const jtok *t = cur(p);
    jnode *n = NULL;
    if (t->type == TK_NAME) {
        n = mk(p, N_CONST, t);
        if (!n) return leave(p, NULL);
        if (is_name(t, "true") || is_name(t, "True")) n->lit = jv_bool(true);
        else if (is_name(t, "false") || is_name(t, "False")) n->lit = jv_bool(false);
        else if (is_name(t, "none") || is_name(t, "None")) n->lit = jv_none();
        else {
            n->kind = N_NAME;
            n->s = pdup(p, t->text, t->n);
            n->n = t->n;
            if (!n->s) return leave(p, NULL);
        }
        advance(p);
    } else if (t->type == TK_STRING) {
        /* adjacent string literals are concatenated, as in Python */
        size_t total = 0;
        long j = p->i;
        for (; p->t[j].type == TK_STRING; j++) total += p->t[j].n;
        char *s = jinja_alloc(p->a, total + 1);
        n = mk(p, N_CONST, t);
        if (!s || !n) return leave(p, fail_at(p, t, "template too large"));
        size_t o = 0;
        for (; cur(p)->type == TK_STRING; advance(p)) {
            memcpy(s + o, cur(p)->text, cur(p)->n);
            o += cur(p)->n;
        }
        n->lit = jv_strn(s, o);
    } else if (t->type == TK_INT || t->type == TK_FLOAT) {
        n = mk(p, N_CONST, t);
        if (!n) return leave(p, NULL);
        n->lit = t->type == TK_INT ? jv_int(t->i) : jv_float(t->f);
        advance(p);
    } else if (is_op(t, "(")) {
        advance(p);
        n = parse_tuple(p, false, true, NULL, true);
        if (n && !expect_op(p, ")")) n = NULL;
    } else if (is_op(t, "[")) {
        n = parse_list(p);
    } else if (is_op(t, "{")) {
        n = parse_dict(p);
    } else {
        n = unexpected(p);
    }
    return leave(p, n);
}

static jnode *parse_unary(parser *p, bool with_filter) {
    if (!enter(p)) return NULL;
    const jtok *t = cur(p);
    jnode *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        advance(p);
        n = mk(p, is_op(t, "-") ? N_NEG : N_POS, t);
        if (n && !(n->a = parse_unary(p, false))) n = NULL;
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filter_expr(p, n);
    return leave(p, n);
}

static jnode *binop(parser *p, const jtok *at, const char *op, jnode *l, jnode *r) {
    if (!l || !r) return NULL;
    jnode *n = mk(p, N_BINOP, at);
    if (!n) return NULL;
    strcpy(n->op, op);
    n->a = l, n->b = r;
    return n;
}

static jnode *parse_pow(parser *p) {
    jnode *l = parse_unary(p, true);
    while (l && is_op(cur(p), "**")) {
        const jtok *at = cur(p);
        advance(p);
        l = binop(p, at, "**", l, parse_unary(p, true));
    }
    return l;
}

static jnode *parse_math2(parser *p) {
    jnode *l = parse_pow(p);
    while (l && (is_op(cur(p), "*") || is_op(cur(p), "/") || is_op(cur(p), "//") || is_op(cur(p), "%"))) {
        const jtok *at = cur(p);
        advance(p);
        l = binop(p, at, at->op, l, parse_pow(p));
    }
    return l;
}

static jnode *parse_concat(parser *p) {
    const jtok *at = cur(p);
    jnode *first = parse_math2(p);
    if (!first || !is_op(cur(p), "~")) return first;
    nvec args = { 0 };
    vpush(p, &args, first);
    while (is_op(cur(p), "~")) {
        advance(p);
        if (!vpush(p, &args, parse_math2(p))) return NULL;
    }
    jnode *n = mk(p, N_CONCAT, at);
    if (n) n->list = args.v, n->nlist = args.n;
    return n;
}

static jnode *parse_math1(parser *p) {
    jnode *l = parse_concat(p);
    while (l && (is_op(cur(p), "+") || is_op(cur(p), "-"))) {
        const jtok *at = cur(p);
        advance(p);
        l = binop(p, at, at->op, l, parse_concat(p));
    }
    return l;
}

static jnode *parse_compare(parser *p) {
    const jtok *at = cur(p);
    jnode *e = parse_math1(p);
    if (!e) return NULL;
    nvec ops = { 0 };
    for (;;) {
        const jtok *t = cur(p);
        const char *op = NULL;
        if (t->type == TK_OP && (!strcmp(t->op, "==") || !strcmp(t->op, "!=") || !strcmp(t->op, "<") ||
                                 !strcmp(t->op, ">") || !strcmp(t->op, "<=") || !strcmp(t->op, ">="))) {
            op = t->op;
            advance(p);
        } else if (is_name(t, "in")) {
            op = "in";
            advance(p);
        } else if (is_name(t, "not") && is_name(peek(p), "in")) {
            op = "ni";
            advance(p);
            advance(p);
        } else {
            break;
        }
        jnode *o = mk(p, N_OPERAND, t);
        if (!o) return NULL;
        strcpy(o->op, op);
        if (!(o->a = parse_math1(p)) || !vpush(p, &ops, o)) return NULL;
    }
    if (!ops.n) return e;
    jnode *c = mk(p, N_COMPARE, at);
    if (!c) return NULL;
    c->a = e;
    c->list = ops.v, c->nlist = ops.n;
    return c;
}

static jnode *parse_not(parser *p) {
    if (is_name(cur(p), "not")) {
        if (!enter(p)) return NULL;
        const jtok *at = cur(p);
        advance(p);
        jnode *n = mk(p, N_NOT, at);
        if (n && !(n->a = parse_not(p))) n = NULL;
        return leave(p, n);
    }
    return parse_compare(p);
}

static jnode *parse_and(parser *p) {
    jnode *l = parse_not(p);
    while (l && is_name(cur(p), "and")) {
        const jtok *at = cur(p);
        advance(p);
        jnode *n = mk(p, N_AND, at);
        if (!n || !(n->b = parse_not(p))) return NULL;
        n->a = l;
        l = n;
    }
    return l;
}

static jnode *parse_or(parser *p) {
    jnode *l = parse_and(p);
    while (l && is_name(cur(p), "or")) {
        const jtok *at = cur(p);
        advance(p);
        jnode *n = mk(p, N_OR, at);
        if (!n || !(n->b = parse_and(p))) return NULL;
        n->a = l;
        l = n;
    }
    return l;
}

static jnode *parse_condexpr(parser *p) {
    if (!enter(p)) return NULL;
    jnode *e1 = parse_or(p);
    while (e1 && is_name(cur(p), "if")) {
        const jtok *at = cur(p);
        advance(p);
        jnode *n = mk(p, N_COND, at);
        if (!n || !(n->a = parse_or(p))) return leave(p, NULL);
        n->b = e1;
        if (is_name(cur(p), "else")) {
            advance(p);
            if (!(n->c = parse_condexpr(p))) return leave(p, NULL);
        }
        e1 = n;
    }
    return leave(p, e1);
}

static jnode *parse_expression(parser *p, bool with_condexpr) {
    return with_condexpr ? parse_condexpr(p) : parse_or(p);
}

static bool is_tuple_end(parser *p, const char *extra_end) {
    const jtok *t = cur(p);
    if (t->type == TK_VAR_END || t->type == TK_BLOCK_END || is_op(t, ")")) return true;
    return extra_end && is_name(t, extra_end);
}

static jnode *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens) {
    const jtok *at = cur(p);
    nvec args = { 0 };
    bool is_tuple = false;
    for (;;) {
        if (args.n && !expect_op(p, ",")) return NULL;
        if (is_tuple_end(p, extra_end)) break;
        jnode *e = simplified ? parse_primary(p) : parse_expression(p, with_condexpr);
        if (!vpush(p, &args, e)) return NULL;
        if (is_op(cur(p), ",")) is_tuple = true;
        else break;
    }
    if (!is_tuple) {
        if (args.n) return args.v[0];
        if (!explicit_parens) {
            char buf[80];
            return fail_at(p, cur(p), "expected an expression, got '%s'", describe(cur(p), buf, sizeof buf));
        }
    }
    jnode *n = mk(p, N_TUPLE, at);
    if (n) n->list = args.v, n->nlist = args.n;
    return n;
}

/* ---- statements ---------------------------------------------------------------------------------- */

static bool subparse(parser *p, const char *const *end_names, nvec *body);

/* Parses the body after a tag's %} up to one of end_names (left as the current token). */
static bool parse_statements(parser *p, const char *const *end_names, nvec *body, bool drop_needle) {
    if (is_op(cur(p), ":")) advance(p);
    if (!expect_type(p, TK_BLOCK_END, "end of statement block")) return false;
    if (!subparse(p, end_names, body)) return false;
    if (cur(p)->type == TK_EOF) {
        fail_at(p, cur(p), "unexpected end of template, expected '%s'", end_names[0]);
        return false;
    }
    if (drop_needle) advance(p);
    return true;
}

/* Checks an assignment target: a name, a namespace attribute, or a tuple of names. */
static jnode *check_target(parser *p, jnode *t) {
    if (!t) return NULL;
    if (t->kind == N_NAME || t->kind == N_NSREF) return t;
    if (t->kind == N_TUPLE) {
        for (int i = 0; i < t->nlist; i++)
            if (t->list[i]->kind != N_NAME && !(t->list[i]->kind == N_TUPLE && check_target(p, t->list[i])))
                return fail_at(p, cur(p), "can't assign to this expression");
        return t;
    }
    return fail_at(p, cur(p), "can't assign to this expression");
}

static jnode *parse_assign_target(parser *p, bool name_only, const char *extra_end, bool with_namespace) {
    const jtok *t = cur(p);
    if (with_namespace && t->type == TK_NAME && is_op(peek(p), ".")) {
        jnode *n = mk(p, N_NSREF, t);
        if (!n) return NULL;
        n->s = pdup(p, t->text, t->n);
        n->n = t->n;
        advance(p);
        advance(p);
        const jtok *attr = cur(p);
        if (!expect_type(p, TK_NAME, "a name")) return NULL;
        n->s2 = pdup(p, attr->text, attr->n);
        return n->s && n->s2 ? n : NULL;
    }
    if (name_only) {
        if (t->type != TK_NAME) return fail_at(p, t, "expected a name");
        jnode *n = mk(p, N_NAME, t);
        if (!n) return NULL;
        n->s = pdup(p, t->text, t->n);
        n->n = t->n;
        advance(p);
        return n->s ? n : NULL;
    }
    return check_target(p, parse_tuple(p, true, true, extra_end, false));
}

static jnode *parse_for(parser *p, const jtok *at) {
    static const char *const ends[] = { "endfor", "else", NULL };
    static const char *const end_only[] = { "endfor", NULL };
    jnode *n = mk(p, N_FOR, at);
    if (!n || !(n->a = parse_assign_target(p, false, "in", false))) return NULL;
    if (!is_name(cur(p), "in")) return fail_at(p, cur(p), "expected 'in'");
    advance(p);
    if (!(n->b = parse_tuple(p, false, false, "recursive", false))) return NULL;
    if (is_name(cur(p), "if")) {
        advance(p);
        if (!(n->c = parse_expression(p, true))) return NULL;
    }
    if (is_name(cur(p), "recursive")) return fail_at(p, cur(p), "recursive loops are not supported");
    nvec body = { 0 }, body2 = { 0 };
    p->loop_depth++;
    bool ok = parse_statements(p, ends, &body, false);
    p->loop_depth--;
    if (!ok) return NULL;
    bool has_else = is_name(cur(p), "else");
    advance(p);
    if (has_else && !parse_statements(p, end_only, &body2, true)) return NULL;
    n->body = body.v, n->nbody = body.n;
    n->body2 = body2.v, n->nbody2 = body2.n;
    return n;
}

static jnode *parse_if(parser *p, const jtok *at) {
    static const char *const ends[] = { "elif", "else", "endif", NULL };
    static const char *const end_only[] = { "endif", NULL };
    jnode *n = mk(p, N_IF, at);
    if (!n || !(n->a = parse_tuple(p, false, false, NULL, false))) return NULL;
    nvec body = { 0 };
    if (!parse_statements(p, ends, &body, false)) return NULL;
    n->body = body.v, n->nbody = body.n;
    const jtok *t = cur(p);
    advance(p);
    if (is_name(t, "elif")) {
        /* elif is an if inside the else branch */
        if (!enter(p)) return NULL;
        jnode *inner = parse_if(p, t);
        leave(p, NULL);
        if (!inner) return NULL;
        n->body2 = jinja_alloc(p->a, sizeof *n->body2);
        if (!n->body2) return fail_at(p, t, "template too large");
        n->body2[0] = inner;
        n->nbody2 = 1;
    } else if (is_name(t, "else")) {
        nvec body2 = { 0 };
        if (!parse_statements(p, end_only, &body2, true)) return NULL;
        n->body2 = body2.v, n->nbody2 = body2.n;
    }
    return n;
}

static jnode *parse_set(parser *p, const jtok *at) {
    static const char *const ends[] = { "endset", NULL };
    jnode *target = parse_assign_target(p, false, NULL, true);
    if (!target) return NULL;
    if (is_op(cur(p), "=")) {
        advance(p);
        jnode *n = mk(p, N_SET, at);
        if (!n || !(n->b = parse_tuple(p, false, true, NULL, false))) return NULL;
        n->a = target;
        return n;
    }
    jnode *n = mk(p, N_SET_BLOCK, at);
    if (!n) return NULL;
    n->a = target;
    if (is_op(cur(p), "|")) {
        jnode *in = mk(p, N_INPUT, at);
        if (!in || !(n->b = parse_filter(p, in, false))) return NULL;
    }
    nvec body = { 0 };
    if (!parse_statements(p, ends, &body, true)) return NULL;
    n->body = body.v, n->nbody = body.n;
    return n;
}

/* ( name [= default], ... ) of a macro or call block. */
static bool parse_signature(parser *p, jnode *n) {
    if (!expect_op(p, "(")) return false;
    nvec names = { 0 }, defaults = { 0 };
    while (!is_op(cur(p), ")")) {
        if (names.n && !expect_op(p, ",")) return false;
        jnode *arg = parse_assign_target(p, true, NULL, false);
        if (!vpush(p, &names, arg)) return false;
        if (is_op(cur(p), "=")) {
            advance(p);
            if (!vpush(p, &defaults, parse_expression(p, true))) return false;
        } else if (defaults.n) {
            fail_at(p, cur(p), "non-default argument follows default argument");
            return false;
        }
    }
    advance(p);
    n->list = names.v, n->nlist = names.n;
    n->list2 = defaults.v, n->nlist2 = defaults.n; /* defaults belong to the last nlist2 names */
    return true;
}

static jnode *parse_macro_body(parser *p, jnode *n, const char *end) {
    const char *ends[] = { end, NULL };
    nvec body = { 0 };
    int saved = p->loop_depth;
    p->loop_depth = 0; /* a loop around the macro does not make break legal inside it */
    bool ok = parse_statements(p, ends, &body, true);
    p->loop_depth = saved;
    if (!ok) return NULL;
    n->body = body.v, n->nbody = body.n;
    return n;
}

static jnode *parse_macro(parser *p, const jtok *at) {
    jnode *n = mk(p, N_MACRO, at);
    if (!n) return NULL;
    const jtok *t = cur(p);
    if (t->type != TK_NAME) return fail_at(p, t, "expected a macro name");
    n->s = pdup(p, t->text, t->n);
    n->n = t->n;
    advance(p);
    if (!n->s || !parse_signature(p, n)) return NULL;
    return parse_macro_body(p, n, "endmacro");
}

static jnode *parse_call_block(parser *p, const jtok *at) {
    jnode *n = mk(p, N_CALL_BLOCK, at);
    if (!n) return NULL;
    if (is_op(cur(p), "(") && !parse_signature(p, n)) return NULL;
    if (!(n->b = parse_expression(p, true))) return NULL;
    if (n->b->kind != N_CALL) return fail_at(p, at, "expected call");
    return parse_macro_body(p, n, "endcall");
}

static jnode *parse_filter_block(parser *p, const jtok *at) {
    static const char *const ends[] = { "endfilter", NULL };
    jnode *n = mk(p, N_FILTER_BLOCK, at), *in = mk(p, N_INPUT, at);
    if (!n || !in || !(n->b = parse_filter(p, in, true))) return NULL;
    nvec body = { 0 };
    if (!parse_statements(p, ends, &body, true)) return NULL;
    n->body = body.v, n->nbody = body.n;
    return n;
}

static jnode *parse_with(parser *p, const jtok *at) {
    static const char *const ends[] = { "endwith", NULL };
    jnode *n = mk(p, N_WITH, at);
    if (!n) return NULL;
    nvec targets = { 0 }, values = { 0 };
    while (cur(p)->type != TK_BLOCK_END) {
        if (targets.n && !expect_op(p, ",")) return NULL;
        if (!vpush(p, &targets, parse_assign_target(p, false, NULL, false))) return NULL;
        if (!expect_op(p, "=")) return NULL;
        if (!vpush(p, &values, parse_expression(p, true))) return NULL;
    }
    n->list = targets.v, n->nlist = targets.n;
    n->list2 = values.v, n->nlist2 = values.n;
    nvec body = { 0 };
    if (!parse_statements(p, ends, &body, true)) return NULL;
    n->body = body.v, n->nbody = body.n;
    return n;
}

/* {% print a, b %}: one output node per expression. */
static bool parse_print(parser *p, nvec *body) {
    int count = 0;
    while (cur(p)->type != TK_BLOCK_END) {
        if (count++ && !expect_op(p, ",")) return false;
        const jtok *at = cur(p);
        jnode *o = mk(p, N_OUTPUT, at);
        if (!o || !(o->a = parse_expression(p, true))) return false;
        if (!vpush(p, body, o)) return false;
    }
    return true;
}

static bool parse_statement(parser *p, nvec *body) {
    const jtok *t = cur(p);
    if (t->type != TK_NAME) {
        fail_at(p, t, "tag name expected");
        return false;
    }
    if (!enter(p)) return false;
    advance(p);
    jnode *n = NULL;
    bool done = false;
    if (is_name(t, "for")) n = parse_for(p, t);
    else if (is_name(t, "if")) n = parse_if(p, t);
    else if (is_name(t, "set")) n = parse_set(p, t);
    else if (is_name(t, "macro")) n = parse_macro(p, t);
    else if (is_name(t, "call")) n = parse_call_block(p, t);
    else if (is_name(t, "filter")) n = parse_filter_block(p, t);
    else if (is_name(t, "with")) n = parse_with(p, t);
    else if (is_name(t, "print")) done = parse_print(p, body);
    else if (is_name(t, "break") || is_name(t, "continue")) {
        if (p->loop_depth == 0)
            fail_at(p, t, "'%s' outside loop", is_name(t, "break") ? "break" : "continue");
        else
            n = mk(p, is_name(t, "break") ? N_BREAK : N_CONTINUE, t);
    } else if (is_name(t, "block") || is_name(t, "extends") || is_name(t, "include") || is_name(t, "import") ||
               is_name(t, "from") || is_name(t, "autoescape")) {
        fail_at(p, t, "the '%.*s' tag is not supported", (int)t->n, t->text);
    } else {
        fail_at(p, t, "encountered unknown tag '%.*s'", (int)(t->n > 60 ? 60 : t->n), t->text);
    }
    p->nest--;
    if (done) return expect_type(p, TK_BLOCK_END, "end of statement block");
    if (!n || !vpush(p, body, n)) return false;
    return expect_type(p, TK_BLOCK_END, "end of statement block");
}

static bool is_end_name(const jtok *t, const char *const *end_names) {
    if (!end_names || t->type != TK_NAME) return false;
    for (int i = 0; end_names[i]; i++)
        if (is_name(t, end_names[i])) return true;
    return false;
}

static bool subparse(parser *p, const char *const *end_names, nvec *body) {
    while (!p->failed) {
        const jtok *t = cur(p);
        if (t->type == TK_EOF) return true;
        if (t->type == TK_DATA) {
            jnode *n = mk(p, N_DATA, t);
            if (!n) return false;
            n->s = t->text;
            n->n = t->n;
            if (!vpush(p, body, n)) return false;
            advance(p);
        } else if (t->type == TK_VAR_BEGIN) {
            advance(p);
            jnode *n = mk(p, N_OUTPUT, t);
            if (!n || !(n->a = parse_tuple(p, false, true, NULL, false))) return false;
            if (!vpush(p, body, n)) return false;
            if (!expect_type(p, TK_VAR_END, "end of print statement")) return false;
        } else if (t->type == TK_BLOCK_BEGIN) {
            advance(p);
            if (is_end_name(cur(p), end_names)) return true;
            if (!parse_statement(p, body)) return false;
        } else {
            unexpected(p);
            return false;
        }
    }
    return false;
}

/* ---- compile-time name check ---------------------------------------------------------------------- */

/* jinja2 rejects unknown filter and test names when it compiles a template, except inside an `if`
 * (condition and branches) or an `x if c else y`, whose "soft" scope defers the error to run time;
 * loops, macros, call/filter/set blocks and `with` bodies open ordinary scopes again. */
static bool check_names(parser *p, const jnode *n, bool soft, int depth);

static bool check_list(parser *p, jnode *const *v, int count, bool soft, int depth) {
    for (int i = 0; i < count; i++)
        if (!check_names(p, v[i], soft, depth + 1)) return false;
    return true;
}

static bool check_names(parser *p, const jnode *n, bool soft, int depth) {
    if (!n) return true;
    if (depth > JINJA_MAX_EVAL_DEPTH) {
        jtok at = { .line = n->line, .col = n->col };
        fail_at(p, &at, "template nested too deeply");
        return false;
    }
    bool inner = soft;
    switch (n->kind) {
    case N_IF:
    case N_COND: inner = true; break;
    case N_FOR: /* iterable and else branch in the enclosing scope, filter and body in the loop's */
        return check_names(p, n->b, soft, depth + 1) && check_list(p, n->body2, n->nbody2, soft, depth) &&
               check_names(p, n->c, false, depth + 1) && check_list(p, n->body, n->nbody, false, depth);
    case N_CALL_BLOCK:
        return check_names(p, n->b, soft, depth + 1) && check_list(p, n->list2, n->nlist2, false, depth) &&
               check_list(p, n->body, n->nbody, false, depth);
    case N_WITH: return check_list(p, n->list2, n->nlist2, soft, depth) && check_list(p, n->body, n->nbody, false, depth);
    case N_MACRO:
    case N_FILTER_BLOCK:
    case N_SET_BLOCK: inner = false; break;
    case N_FILTER:
    case N_TEST:
        if (!soft && !(n->kind == N_FILTER ? jinja_filter_known(n->s) : jinja_test_known(n->s))) {
            jtok at = { .line = n->line, .col = n->col };
            fail_at(p, &at, "no %s named '%s'", n->kind == N_FILTER ? "filter" : "test", n->s);
            return false;
        }
        break;
    default: break;
    }
    return check_names(p, n->a, inner, depth + 1) && check_names(p, n->b, inner, depth + 1) &&
           check_names(p, n->c, inner, depth + 1) && check_list(p, n->list, n->nlist, inner, depth) &&
           check_list(p, n->list2, n->nlist2, inner, depth) && check_list(p, n->body, n->nbody, inner, depth) &&
           check_list(p, n->body2, n->nbody2, inner, depth);
}

jinja_tmpl *jinja_parse(const char *src, size_t len, seek_err *err) {
    jinja_tmpl *t = calloc(1, sizeof *t);
    if (!t) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    t->arena.limit = JINJA_MAX_PARSE_ARENA;
    parser p = { .a = &t->arena, .err = err };
    p.nt = jinja_lex(&t->arena, src, len, &p.t, err);
    if (p.nt < 0) {
        jinja_free(t);
        return NULL;
    }
    nvec body = { 0 };
    if (!subparse(&p, NULL, &body) || cur(&p)->type != TK_EOF || !check_list(&p, body.v, body.n, false, 0)) {
        if (!p.failed) unexpected(&p);
        jinja_free(t);
        return NULL;
    }
    t->body = body.v;
    t->nbody = body.n;
    return t;
}

void jinja_free(jinja_tmpl *t) {
    if (!t) return;
    jinja_arena_free(&t->arena);
    free(t);
}
