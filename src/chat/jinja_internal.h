/*
 * jinja_internal.h - what the files of the Jinja engine share; not part of seek's API (chat.h is).
 *
 * The engine is split the way data flows through it:
 *   jinja_lex.c      template text -> tokens, with Jinja's whitespace control applied to the text
 *   jinja_parse.c    tokens -> a tree of jnode (statements and expressions); jinja_parse/jinja_free
 *   jinja_value.c    the arena, Python-like values (jv), str()/repr()/json.dumps, ==, <, UTF-8
 *   jinja_eval.c     expressions and statements over frames of variables; jinja_render
 *   jinja_filters.c  filters (|trim), tests (is defined), methods ("a".split()) and globals
 *
 * Memory: everything a parse or a render allocates comes from an arena with a byte budget, freed in
 * one go.  Values are immutable once built (the sandbox forbids list.append and friends), so they are
 * shared by pointer without reference counts; the one mutable object, namespace(), is shared on
 * purpose so that `ns.x = ...` inside a loop or macro is seen outside it.
 */
#ifndef SEEK_JINJA_INTERNAL_H
#define SEEK_JINJA_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat.h"

/* ---- limits: a hostile template turns into an error, never a hang or an exhausted machine ------ */

#define JINJA_MAX_OUTPUT (16u << 20)      /* bytes of rendered text (and of any one string) */
#define JINJA_MAX_ARENA (256u << 20)      /* bytes one render may allocate in total */
#define JINJA_MAX_PARSE_ARENA (64u << 20) /* bytes the parse tree of one template may take */
#define JINJA_MAX_STEPS 20000000ull       /* statements + loop iterations + calls per render */
#define JINJA_MAX_NEST 200                /* parser nesting (brackets, blocks, operators) */
#define JINJA_MAX_CALL_DEPTH 100          /* macro calls inside macro calls */
#define JINJA_MAX_EVAL_DEPTH 1000         /* nesting of evaluation (long a.b.c... chains, macros) */
#define JINJA_MAX_RANGE 100000            /* range() length, as jinja2's sandbox */

/* ---- arena ------------------------------------------------------------------------------------- */

typedef struct jarena_chunk jarena_chunk;
typedef struct {
    jarena_chunk *head;
    size_t total; /* bytes obtained from malloc so far */
    size_t limit; /* jinja_alloc fails once total would pass this */
} jarena;

/* Zeroed, 16-byte aligned memory living until jinja_arena_free; NULL when the budget is spent. */
void *jinja_alloc(jarena *a, size_t n);
void jinja_arena_free(jarena *a);

/* ---- growable byte buffer (malloc'd, with a size cap) ------------------------------------------ */

typedef struct {
    char *p;
    size_t n, cap;
    size_t limit; /* appends that would pass this fail */
    bool over;    /* an append failed (too large or out of memory) */
} jbuf;

void jinja_buf_init(jbuf *b, size_t limit);
void jinja_buf_free(jbuf *b);
bool jinja_buf_put(jbuf *b, const char *s, size_t n);
bool jinja_buf_puts(jbuf *b, const char *s);
bool jinja_buf_putc(jbuf *b, char c);
bool jinja_buf_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- values ------------------------------------------------------------------------------------- */

typedef enum {
    JV_UNDEF,  /* jinja2's default Undefined: prints "", falsy, iterates as empty, errors on use */
    JV_NONE,
    JV_BOOL,
    JV_INT,    /* Python int, limited to int64 (overflow is an error) */
    JV_FLOAT,
    JV_STR,    /* UTF-8 bytes, not NUL-terminated in general */
    JV_LIST,   /* list, tuple, generator or dict view: see jl_kind */
    JV_DICT,
    JV_NS,     /* namespace(): a mutable dict shared by reference */
    JV_FUNC,   /* a global function (sub = jinja_builtin id) */
    JV_MACRO,  /* a macro or a call block's caller */
    JV_LOOP,   /* the `loop` variable of a for */
    JV_METHOD, /* a bound method: "abc".split, d.items */
} jv_type;

/* What kind of Python sequence a JV_LIST stands for: they print, compare and serialise differently
 * (a generator from |map is not JSON-serialisable, a tuple prints with parentheses). */
typedef enum { JL_LIST, JL_TUPLE, JL_GEN, JL_KEYS, JL_VALUES, JL_ITEMS } jl_kind;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jmacro jmacro;
typedef struct jloop jloop;
typedef struct jmethod jmethod;

typedef struct jv {
    uint8_t t;   /* jv_type */
    uint8_t sub; /* JV_LIST: jl_kind; JV_FUNC: builtin id */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;              /* JV_STR; for JV_UNDEF the name in error messages (p may be NULL) */
        jlist *l;
        jdict *d;         /* JV_DICT and JV_NS */
        jmacro *m;
        jloop *loop;
        jmethod *meth;
    } u;
} jv;

struct jlist {
    size_t n, cap;
    jv *v;
    const char *err; /* a generator whose computation failed: consuming it raises this message */
};

/* Keys kept in insertion order, as Python dicts do; lookups are linear (chat data is small). */
struct jdict {
    size_t n, cap;
    jv *k, *v;
};

struct jmethod {
    jv self;
    const char *name;
};

/* The `loop` variable: the items are materialised, so length and last are known up front. */
struct jloop {
    jlist *items;
    size_t index0;
};

static inline jv jv_undef(const char *name) {
    jv v = { .t = JV_UNDEF };
    v.u.s.p = name;
    return v;
}
static inline jv jv_none(void) { return (jv){ .t = JV_NONE }; }
static inline jv jv_bool(bool b) { return (jv){ .t = JV_BOOL, .u.b = b }; }
static inline jv jv_int(int64_t i) { return (jv){ .t = JV_INT, .u.i = i }; }
static inline jv jv_float(double f) { return (jv){ .t = JV_FLOAT, .u.f = f }; }
static inline jv jv_strn(const char *p, size_t n) {
    jv v = { .t = JV_STR };
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}
static inline jv jv_list(jlist *l, jl_kind kind) { return (jv){ .t = JV_LIST, .sub = (uint8_t)kind, .u.l = l }; }
static inline jv jv_dict(jdict *d) { return (jv){ .t = JV_DICT, .u.d = d }; }

/* Containers (NULL / false when the arena budget is spent). */
jlist *jinja_list_new(jarena *a, size_t cap);
bool jinja_list_push(jarena *a, jlist *l, jv v);
jdict *jinja_dict_new(jarena *a, size_t cap);
bool jinja_dict_set(jarena *a, jdict *d, jv key, jv val); /* replaces an equal key's value */
jv *jinja_dict_get(const jdict *d, jv key);                /* NULL if absent */
jv *jinja_dict_get_str(const jdict *d, const char *key, size_t n);

/* memcpy that accepts NULL pointers when n is 0 (empty lists have no storage). */
static inline void jinja_copy(void *dst, const void *src, size_t n) {
    if (n) __builtin_memcpy(dst, src, n);
}

/* Copies bytes into the arena as a string value (NUL-terminated for convenience). */
bool jinja_str_dup(jarena *a, const char *p, size_t n, jv *out);

/* Python semantics. */
bool jinja_truthy(jv v);
bool jinja_eq(jv a, jv b);
/* a < b as Python orders them; false with *ok = false when the types cannot be ordered. */
bool jinja_lt(jv a, jv b, bool *ok);
const char *jinja_type_name(jv v); /* "str", "int", "dict", ... as Python names them */

/* str(v) and repr(v) appended to b (false when b overflows). */
bool jinja_put_str(jbuf *b, jv v);
bool jinja_put_repr(jbuf *b, jv v);
/* Python's repr() of a float: shortest round-trip digits, "1.0", "1e-05", "inf". */
void jinja_fmt_float(double d, char out[32]);

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys).  indent: NULL for none, else the
 * string each level adds.  Returns false with a message in why (static text or made in b). */
typedef struct {
    bool ensure_ascii;
    const char *indent; /* NULL: single line */
    size_t indent_n;
    const char *item_sep, *key_sep;
    size_t item_sep_n, key_sep_n;
    bool sort_keys;
} jjson_opts;
bool jinja_json_dump(jbuf *b, jv v, const jjson_opts *o, const char **why);

/* json_t -> values (strings point into the json_t, which must outlive them). */
bool jinja_from_json(jarena *a, const json_t *j, jv *out);

/* ---- UTF-8 --------------------------------------------------------------------------------------- */

/* Decodes one code point at s[0..n) (n > 0) into *cp, returning its byte length; an invalid byte is
 * taken as one code point of its own value so that garbage input never stalls a loop. */
size_t jinja_utf8_next(const char *s, size_t n, uint32_t *cp);
size_t jinja_utf8_len(const char *s, size_t n); /* code points */
size_t jinja_utf8_put(char *out, uint32_t cp);  /* writes 1..4 bytes */
/* Byte offset of code point index i (clamped to n). */
size_t jinja_utf8_offset(const char *s, size_t n, size_t i);
/* Python's str.isspace for one code point. */
bool jinja_is_space(uint32_t cp);

/* ---- tokens ------------------------------------------------------------------------------------- */

typedef enum {
    TK_EOF,
    TK_DATA,        /* template text, already whitespace-controlled */
    TK_VAR_BEGIN,   /* {{ */
    TK_VAR_END,     /* }} */
    TK_BLOCK_BEGIN, /* {% */
    TK_BLOCK_END,   /* %} */
    TK_NAME,
    TK_STRING,      /* text holds the unescaped value */
    TK_INT,
    TK_FLOAT,
    TK_OP,          /* op holds the operator text: "+", "//", "==", "(", ... */
} jtok_type;

typedef struct {
    uint8_t type;
    char op[3];
    int line, col;
    const char *text; /* TK_DATA, TK_NAME, TK_STRING: bytes (arena or source) */
    size_t n;
    int64_t i;        /* TK_INT */
    double f;         /* TK_FLOAT */
} jtok;

/* Tokenizes src (newlines normalised to "\n", one trailing newline dropped, as jinja2 does) with
 * trim_blocks and lstrip_blocks on.  Returns the token count (last is TK_EOF) or -1 with err set. */
long jinja_lex(jarena *a, const char *src, size_t len, jtok **out, seek_err *err);

/* ---- syntax tree ------------------------------------------------------------------------------- */

typedef enum {
    /* statements */
    N_DATA,        /* text: s */
    N_OUTPUT,      /* {{ a }} */
    N_IF,          /* if a: body else: body2 (elif is an if inside else) */
    N_FOR,         /* for a (target) in b [if c]: body else: body2 */
    N_SET,         /* set a (target) = b */
    N_SET_BLOCK,   /* set a (target) [| filter b]: body */
    N_MACRO,       /* macro s(params list[i] = defaults list2[i]): body */
    N_CALL_BLOCK,  /* call(params) b (a call expression): body */
    N_FILTER_BLOCK,/* filter b: body */
    N_WITH,        /* with list = list2 (targets, values): body */
    N_BREAK,
    N_CONTINUE,
    /* expressions */
    N_CONST,       /* lit */
    N_NAME,        /* s */
    N_NSREF,       /* s.s2 as an assignment target */
    N_GETATTR,     /* a.s */
    N_GETITEM,     /* a[b] */
    N_SLICE,       /* [a:b:c], each optional */
    N_CALL,        /* a(list, kw names kw / values list2, *b, **c) */
    N_FILTER,      /* a | s(list, kw, *b, **c) ; a is N_INPUT for a filter block's text */
    N_TEST,        /* a is s(list, kw, *b, **c) */
    N_NOT,
    N_NEG,
    N_POS,
    N_BINOP,       /* a op b, op one of + - * / // % ** */
    N_AND,
    N_OR,
    N_CONCAT,      /* list joined with ~ */
    N_COMPARE,     /* a, then list of N_OPERAND (op, a) */
    N_OPERAND,
    N_COND,        /* b if a else c (c may be NULL: undefined) */
    N_LIST,
    N_TUPLE,
    N_DICT,        /* keys list, values list2 */
    N_INPUT,       /* the value a filter block or set block filters */
} jnode_kind;

typedef struct jnode jnode;
struct jnode {
    uint8_t kind;
    char op[3];
    int line, col;
    const char *s, *s2; /* names (NUL-terminated) or text */
    size_t n;           /* length of s */
    jnode *a, *b, *c;
    jnode **list, **list2; /* children: body, args, items ... */
    int nlist, nlist2;
    const char **kw;       /* keyword argument names, parallel to list2 for calls and filters */
    jnode **body, **body2;
    int nbody, nbody2;
    jv lit;
};

struct jinja_tmpl {
    jarena arena;
    jnode **body;
    int nbody;
};

/* ---- evaluation (shared between jinja_eval.c and jinja_filters.c) ------------------------------- */

typedef struct jframe jframe;
struct jframe {
    jframe *parent;
    jdict vars;
};

typedef struct jctx {
    jarena arena;
    seek_err *err;
    bool failed;
    jbuf *out;        /* where output goes now (captures swap it) */
    uint64_t steps;
    int call_depth;
    int depth;        /* evaluation nesting, bounded by JINJA_MAX_EVAL_DEPTH */
    jframe *root;     /* the render context's variables */
    const jv *input;  /* value for N_INPUT while a filter block runs */
    const jnode *at;  /* node being evaluated, for error positions */
    char last_msg[400]; /* the last error's message without its position */
    bool fatal;       /* the error is a limit (memory, steps, depth): never deferred */
} jctx;

/* Sets the render error (the first one wins) at node n's position and returns false. */
bool jinja_fail(jctx *c, const jnode *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for a resource limit: such errors end the render even inside a lazy filter. */
bool jinja_fail_limit(jctx *c, const jnode *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Arena allocation that reports "out of memory" as a render error. */
void *jinja_ctx_alloc(jctx *c, size_t n);
/* str(v) as a string value. */
bool jinja_to_str(jctx *c, jv v, jv *out);
/* Counts work; false (with an error) when the budget is spent. */
bool jinja_step(jctx *c, uint64_t n);
/* An undefined value whose misuse raises the given message ("'x' is undefined", ...). */
jv jinja_undef(jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `needle in hay` as Python evaluates it. */
bool jinja_contains(jctx *c, const jnode *at, jv hay, jv needle, bool *out);
/* obj[key] as jinja2's getitem: item, then attribute for string keys; undefined when missing. */
bool jinja_getitem(jctx *c, const jnode *at, jv obj, jv key, jv *out);

/* Calls any callable value (macro, builtin, bound method, loop.cycle). */
bool jinja_call(jctx *c, const jnode *at, jv fn, jv *args, int nargs, const char **kw, jv *kwv, int nkw,
                jv *out);
/* obj.name as jinja2's getattr: attribute, then item; undefined when neither exists. */
bool jinja_getattr(jctx *c, const jnode *at, jv obj, const char *name, size_t n, jv *out);

/* Iterates v as Python's for would (dict -> keys, str -> characters); the list may be v's own, so
 * the caller must not modify it. */
bool jinja_iterate(jctx *c, const jnode *at, jv v, jlist **out);

typedef struct {
    const jv *args; /* positional */
    int nargs;
    const char **kw;
    const jv *kwv;
    int nkw;
} jargs;

bool jinja_filter_known(const char *name);
bool jinja_test_known(const char *name);
bool jinja_apply_filter(jctx *c, const jnode *at, const char *name, jv in, const jargs *a, jv *out);
bool jinja_apply_test(jctx *c, const jnode *at, const char *name, jv in, const jargs *a, bool *out);
/* A method of a str, dict or list value, or NULL: the canonical name for a bound method. */
const char *jinja_method_name(jv self, const char *name, size_t n);
bool jinja_call_method(jctx *c, const jnode *at, const jmethod *m, const jargs *a, jv *out);

/* Python's printf-style `fmt % args` (%s %r %d %i %x %o %f %e %g with flags, width, precision). */
/* mapping, when not NULL, is a right operand Python treats as a mapping (anything but a tuple or
 * str that can be subscripted): %(key)s looks keys up in it and unused arguments are no error. */
bool jinja_py_format(jctx *c, const jnode *at, jv fmt, const jv *args, size_t nargs, const jv *mapping, jv *out);

/* Global functions. */
enum { JB_NAMESPACE = 1, JB_RANGE, JB_DICT, JB_RAISE, JB_STRFTIME, JB_LOOP_CYCLE };
int jinja_builtin_id(const char *name, size_t n); /* 0 if none */
bool jinja_call_builtin(jctx *c, const jnode *at, int id, const jargs *a, jv *out);

#endif
