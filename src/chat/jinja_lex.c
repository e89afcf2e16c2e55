/*
 * jinja_lex.c - template text to tokens, following jinja2's lexer (3.1) rule for rule.
 *
 * Outside tags the text becomes TK_DATA tokens; {{ }} and {% %} become begin/end tokens around
 * expression tokens (names, strings, numbers, operators); {# #} comments and {% raw %} blocks are
 * handled here.  The whitespace rules are applied here too, exactly where jinja2 applies them:
 *   - "{%-", "{{-", "{#-" strip all whitespace before the tag; "-%}", "-}}", "-#}" all after it;
 *   - trim_blocks: the first newline right after "%}" or "#}" is dropped ("+%}" keeps it);
 *   - lstrip_blocks: spaces before "{%" or "{#" on a line of their own are dropped ("{%+" keeps).
 * Before that the source's \r\n and \r become \n and one trailing newline is dropped
 * (keep_trailing_newline off).  "Whitespace" is Python's (str.isspace), Unicode included.
 */
#include "jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jarena *a;
    const char *s; /* normalised source */
    size_t n, pos;
    jtok *toks;
    size_t ntok, cap;
    seek_err *err;
    /* incremental position -> line:column */
    size_t lc_pos, lc_line_start;
    int lc_line;
    char stack[JINJA_MAX_NEST]; /* closing brackets expected inside a tag */
    int depth;
} lexer;

static void where(lexer *L, size_t pos, int *line, int *col) {
    if (pos < L->lc_pos) { /* only ever asked forwards, but stay correct if not */
        L->lc_pos = 0, L->lc_line = 1, L->lc_line_start = 0;
    }
    for (; L->lc_pos < pos && L->lc_pos < L->n; L->lc_pos++)
        if (L->s[L->lc_pos] == '\n') L->lc_line++, L->lc_line_start = L->lc_pos + 1;
    *line = L->lc_line;
    *col = (int)(pos - L->lc_line_start) + 1;
}

static bool lex_fail(lexer *L, size_t pos, const char *msg) {
    int line, col;
    where(L, pos, &line, &col);
    err_set(L->err, SEEK_EFORMAT, "%d:%d: %s", line, col, msg);
    return false;
}

static jtok *push(lexer *L, int type, size_t pos) {
    if (L->ntok == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jtok *t = jinja_alloc(L->a, cap * sizeof *t);
        if (!t) {
            lex_fail(L, pos, "template too large");
            return NULL;
        }
        if (L->ntok) memcpy(t, L->toks, L->ntok * sizeof *t);
        L->toks = t;
        L->cap = cap;
    }
    jtok *t = &L->toks[L->ntok++];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    where(L, pos, &t->line, &t->col);
    return t;
}

/* ---- whitespace ---------------------------------------------------------------------------------- */

/* Length of the whitespace run at s[i..n). */
static size_t space_run(const char *s, size_t i, size_t n) {
    size_t j = i;
    while (j < n) {
        uint32_t cp;
        size_t len = jinja_utf8_next(s + j, n - j, &cp);
        if (!jinja_is_space(cp)) break;
        j += len;
    }
    return j - i;
}

/* Length of text[0..n) once trailing whitespace is removed (Python's str.rstrip()). */
static size_t rstrip_len(const char *s, size_t n) {
    while (n > 0) {
        size_t start = n - 1;
        while (start > 0 && n - start < 4 && ((unsigned char)s[start] & 0xc0) == 0x80) start--;
        uint32_t cp;
        size_t len = jinja_utf8_next(s + start, n - start, &cp);
        if (start + len != n) { /* the tail is not one well-formed character */
            start = n - 1;
            cp = (unsigned char)s[start];
        }
        if (!jinja_is_space(cp)) break;
        n = start;
    }
    return n;
}

/* Emits the text before a tag after the tag's whitespace control: sign '-' strips it on the right;
 * otherwise lstrip_blocks removes an all-whitespace last line before a block or comment tag. */
static bool emit_text(lexer *L, size_t start, size_t end, char sign, bool lstrip_ok) {
    size_t n = end - start;
    const char *text = L->s + start;
    if (sign == '-') {
        n = rstrip_len(text, n);
    } else if (sign != '+' && lstrip_ok) {
        size_t l_pos = 0;
        for (size_t i = n; i > 0; i--)
            if (text[i - 1] == '\n') {
                l_pos = i;
                break;
            }
        bool line_starting = start == 0 || L->s[start - 1] == '\n';
        if ((l_pos > 0 || line_starting) && l_pos < n && space_run(text, l_pos, n) == n - l_pos) n = l_pos;
    }
    if (n == 0) return true;
    jtok *t = push(L, TK_DATA, start);
    if (!t) return false;
    t->text = text;
    t->n = n;
    return true;
}

/* ---- literals ------------------------------------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

/* Digits with single underscores between them ((\d+_)*\d+); returns the length matched. */
static size_t digits_run(const char *s, size_t i, size_t n) {
    size_t j = i;
    if (j >= n || !is_digit(s[j])) return 0;
    while (j < n) {
        if (is_digit(s[j])) j++;
        else if (s[j] == '_' && j + 1 < n && is_digit(s[j + 1])) j++;
        else break;
    }
    return j - i;
}

/* float_re: digits then a fraction, an exponent, or both; not right after a '.'. */
static size_t match_float(const char *s, size_t i, size_t n) {
    if (i > 0 && s[i - 1] == '.') return 0;
    size_t j = i + digits_run(s, i, n);
    if (j == i) return 0;
    size_t frac = 0;
    if (j < n && s[j] == '.') frac = digits_run(s, j + 1, n);
    size_t k = frac ? j + 1 + frac : j;
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        size_t e = k + 1;
        if (e < n && (s[e] == '+' || s[e] == '-')) e++;
        size_t ed = digits_run(s, e, n);
        if (ed) return e + ed - i;
    }
    return frac ? k - i : 0;
}

static int digit_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 99;
}

/* integer_re: 0b.., 0o.., 0x.., decimal without leading zeros, or zeros. */
static size_t match_int(const char *s, size_t i, size_t n, int *base) {
    if (i >= n || !is_digit(s[i])) return 0;
    if (s[i] == '0' && i + 1 < n && strchr("bBoOxX", s[i + 1])) {
        char b = (char)(s[i + 1] | 0x20);
        *base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
        size_t j = i + 2, ndig = 0;
        while (j < n) {
            size_t u = s[j] == '_' ? 1 : 0;
            if (j + u < n && digit_val(s[j + u]) < *base) j += u + 1, ndig++;
            else break;
        }
        if (ndig) return j - i;
    }
    *base = 10;
    size_t j = i + 1;
    char first = s[i];
    while (j < n) {
        size_t u = s[j] == '_' ? 1 : 0;
        if (j + u < n && is_digit(s[j + u]) && (first != '0' || s[j + u] == '0')) j += u + 1;
        else break;
    }
    return j - i;
}

static bool lex_number(lexer *L, size_t start) {
    const char *s = L->s;
    char buf[128];
    size_t len = match_float(s, start, L->n);
    if (len) {
        size_t k = 0;
        for (size_t i = 0; i < len && k < sizeof buf - 1; i++)
            if (s[start + i] != '_') buf[k++] = s[start + i];
        buf[k] = 0;
        jtok *t = push(L, TK_FLOAT, start);
        if (!t) return false;
        t->f = strtod(buf, NULL);
        L->pos = start + len;
        return true;
    }
    int base = 10;
    len = match_int(s, start, L->n, &base);
    size_t i = start + (base == 10 ? 0 : 2);
    uint64_t v = 0;
    for (; i < start + len; i++) {
        if (s[i] == '_') continue;
        int d = digit_val(s[i]);
        if (v > (uint64_t)(INT64_MAX - d) / (uint64_t)base) return lex_fail(L, start, "integer literal too large");
        v = v * (uint64_t)base + (uint64_t)d;
    }
    jtok *t = push(L, TK_INT, start);
    if (!t) return false;
    t->i = (int64_t)v;
    L->pos = start + len;
    return true;
}

static int hex_n(const char *s, size_t n, int count, uint32_t *out) {
    uint32_t v = 0;
    if ((size_t)count > n) return -1;
    for (int i = 0; i < count; i++) {
        int d = digit_val(s[i]);
        if (d > 15) return -1;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return count;
}

/* Python's unicode-escape decoding of a string literal body into the arena. */
static bool unescape(lexer *L, size_t at, const char *s, size_t n, jtok *t) {
    char *out = jinja_alloc(L->a, n + 1); /* escapes never grow the text */
    if (!out) return lex_fail(L, at, "template too large");
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\' || i + 1 >= n) {
            out[o++] = s[i++];
            continue;
        }
        char c = s[i + 1];
        uint32_t cp = 0;
        int used = 2;
        switch (c) {
        case '\n': i += 2; continue; /* backslash-newline is a line continuation */
        case '\\': cp = '\\'; break;
        case '\'': cp = '\''; break;
        case '"': cp = '"'; break;
        case 'a': cp = 7; break;
        case 'b': cp = 8; break;
        case 'f': cp = 12; break;
        case 'n': cp = 10; break;
        case 'r': cp = 13; break;
        case 't': cp = 9; break;
        case 'v': cp = 11; break;
        case 'x':
        case 'u':
        case 'U': {
            int want = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            if (hex_n(s + i + 2, n - i - 2, want, &cp) < 0) return lex_fail(L, at, "truncated escape in string");
            used = 2 + want;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                used = 1;
                while (used < 4 && i + (size_t)used < n && s[i + used] >= '0' && s[i + used] <= '7')
                    cp = cp * 8 + (uint32_t)(s[i + used] - '0'), used++;
            } else if (c == 'N') {
                return lex_fail(L, at, "\\N{...} escapes are not supported");
            } else { /* unknown escapes stay as written */
                out[o++] = s[i++];
                continue;
            }
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return lex_fail(L, at, "invalid character escape");
        o += jinja_utf8_put(out + o, cp);
        i += (size_t)used;
    }
    out[o] = 0;
    t->text = out;
    t->n = o;
    return true;
}

static bool lex_string(lexer *L, size_t start) {
    const char *s = L->s;
    char q = s[start];
    size_t i = start + 1;
    while (i < L->n && s[i] != q) {
        if (s[i] == '\\') i++;
        i++;
    }
    if (i >= L->n) return lex_fail(L, start, "unexpected end of string literal");
    jtok *t = push(L, TK_STRING, start);
    if (!t) return false;
    L->pos = i + 1;
    return unescape(L, start, s + start + 1, i - start - 1, t);
}

static bool lex_operator(lexer *L, size_t start) {
    static const char *two[] = { "//", "**", "==", "!=", ">=", "<=" };
    const char *s = L->s + start;
    size_t left = L->n - start;
    for (size_t k = 0; k < sizeof two / sizeof two[0]; k++)
        if (left >= 2 && s[0] == two[k][0] && s[1] == two[k][1]) {
            jtok *t = push(L, TK_OP, start);
            if (!t) return false;
            memcpy(t->op, two[k], 2);
            L->pos = start + 2;
            return true;
        }
    if (s[0] == 0 || !strchr("+-/*%~[](){}><=.:|,;", s[0])) {
        char msg[64];
        uint32_t cp;
        size_t len = jinja_utf8_next(s, left, &cp); /* quote a whole character, never half of one */
        if (cp >= 0x80 && len == 1) snprintf(msg, sizeof msg, "unexpected byte 0x%02x in tag", (unsigned)cp);
        else if (cp < 0x20) snprintf(msg, sizeof msg, "unexpected char 0x%02x in tag", (unsigned)cp);
        else snprintf(msg, sizeof msg, "unexpected char '%.*s' in tag", (int)len, s);
        return lex_fail(L, start, msg);
    }
    /* bracket balance: only at depth 0 can "}}" or "%}" end the tag */
    char c = s[0];
    if (c == '(' || c == '[' || c == '{') {
        if (L->depth >= JINJA_MAX_NEST) return lex_fail(L, start, "brackets nested too deeply");
        L->stack[L->depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
    } else if (c == ')' || c == ']' || c == '}') {
        if (L->depth == 0 || L->stack[L->depth - 1] != c) {
            char msg[64];
            snprintf(msg, sizeof msg, "unexpected '%c'", c);
            return lex_fail(L, start, msg);
        }
        L->depth--;
    }
    jtok *t = push(L, TK_OP, start);
    if (!t) return false;
    t->op[0] = c;
    L->pos = start + 1;
    return true;
}

/* Tries to end a {% %} or {{ }} tag at L->pos; true if it did. */
static bool tag_end(lexer *L, char kind, bool *ended) {
    const char *s = L->s + L->pos;
    size_t left = L->n - L->pos;
    char close = kind == '%' ? '%' : '}';
    size_t at = L->pos;
    *ended = false;
    if (L->depth) return true;
    if (kind == '%' && left >= 3 && s[0] == '+' && s[1] == '%' && s[2] == '}') {
        L->pos += 3;
    } else if (left >= 3 && s[0] == '-' && s[1] == close && s[2] == '}') {
        L->pos += 3;
        L->pos += space_run(L->s, L->pos, L->n);
    } else if (left >= 2 && s[0] == close && s[1] == '}') {
        L->pos += 2;
        if (kind == '%' && L->pos < L->n && L->s[L->pos] == '\n') L->pos++; /* trim_blocks */
    } else {
        return true;
    }
    *ended = true;
    return push(L, kind == '%' ? TK_BLOCK_END : TK_VAR_END, at) != NULL;
}

static bool lex_tag(lexer *L, char kind) {
    L->depth = 0;
    for (;;) {
        if (L->pos >= L->n) return lex_fail(L, L->pos, "unexpected end of template inside a tag");
        bool ended;
        if (!tag_end(L, kind, &ended)) return false;
        if (ended) return true;
        size_t start = L->pos;
        size_t ws = space_run(L->s, start, L->n);
        char c = L->s[start];
        bool ok;
        if (ws) {
            L->pos += ws;
            ok = true;
        } else if (is_digit(c)) {
            ok = lex_number(L, start);
        } else if (is_alpha(c)) {
            size_t j = start + 1;
            while (j < L->n && (is_alpha(L->s[j]) || is_digit(L->s[j]))) j++;
            jtok *t = push(L, TK_NAME, start);
            if (!t) return false;
            t->text = L->s + start;
            t->n = j - start;
            L->pos = j;
            ok = true;
        } else if (c == '\'' || c == '"') {
            ok = lex_string(L, start);
        } else {
            ok = lex_operator(L, start);
        }
        if (!ok) return false;
    }
}

static bool lex_comment(lexer *L) {
    /* jinja2's lexer only reports a missing "#}" if something follows "{#": at the very end of the
     * source no rule matches and it stops quietly */
    if (L->pos >= L->n) return true;
    for (size_t q = L->pos; q + 1 < L->n; q++) {
        const char *s = L->s + q;
        if (q + 2 < L->n && s[0] == '+' && s[1] == '#' && s[2] == '}') {
            L->pos = q + 3;
            return true;
        }
        if (q + 2 < L->n && s[0] == '-' && s[1] == '#' && s[2] == '}') {
            L->pos = q + 3 + space_run(L->s, q + 3, L->n);
            return true;
        }
        if (s[0] == '#' && s[1] == '}') {
            L->pos = q + 2;
            if (L->pos < L->n && L->s[L->pos] == '\n') L->pos++;
            return true;
        }
    }
    return lex_fail(L, L->pos, "missing end of comment tag");
}

/* Matches "{%" [-+] \s* word \s* ("-%}" \s* | "%}" ...) at i; returns the end or 0.  For endraw the
 * plain "%}" also takes one newline (trim_blocks) and "+%}" is accepted. */
static size_t match_raw_tag(lexer *L, size_t i, const char *word, bool is_end, char *sign) {
    const char *s = L->s;
    size_t n = L->n, wl = strlen(word);
    if (i + 2 > n || s[i] != '{' || s[i + 1] != '%') return 0;
    i += 2;
    *sign = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) *sign = s[i++];
    i += space_run(s, i, n);
    if (i + wl > n || memcmp(s + i, word, wl)) return 0;
    i += wl;
    i += space_run(s, i, n);
    if (is_end && i + 3 <= n && s[i] == '+' && s[i + 1] == '%' && s[i + 2] == '}') return i + 3;
    if (i + 3 <= n && s[i] == '-' && s[i + 1] == '%' && s[i + 2] == '}') return i + 3 + space_run(s, i + 3, n);
    if (i + 2 <= n && s[i] == '%' && s[i + 1] == '}') {
        i += 2;
        if (is_end && i < n && s[i] == '\n') i++;
        return i;
    }
    return 0;
}

static bool lex_raw(lexer *L) {
    if (L->pos >= L->n) return true; /* as for comments: nothing after {% raw %} is no error */
    for (size_t q = L->pos; q + 1 < L->n; q++) {
        char sign;
        size_t end = match_raw_tag(L, q, "endraw", true, &sign);
        if (!end) continue;
        if (!emit_text(L, L->pos, q, sign, true)) return false;
        L->pos = end;
        return true;
    }
    return lex_fail(L, L->pos, "missing end of raw directive");
}

/* Copies src with \r\n and \r turned into \n and one trailing newline dropped. */
static char *normalise(jarena *a, const char *src, size_t len, size_t *out_n) {
    char *s = jinja_alloc(a, len + 1);
    if (!s) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[o++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[o++] = src[i];
        }
    }
    if (o > 0 && s[o - 1] == '\n') o--;
    s[o] = 0;
    *out_n = o;
    return s;
}

long jinja_lex(jarena *a, const char *src, size_t len, jtok **out, seek_err *err) {
    lexer L = { .a = a, .err = err, .lc_line = 1 };
    L.s = normalise(a, src, len, &L.n);
    if (!L.s) {
        err_set(err, SEEK_ENOMEM, "template too large");
        return -1;
    }
    while (L.pos < L.n) {
        size_t k = L.pos;
        while (k + 1 < L.n && !(L.s[k] == '{' && (L.s[k + 1] == '{' || L.s[k + 1] == '%' || L.s[k + 1] == '#')))
            k++;
        if (k + 1 >= L.n) { /* no more tags: the rest is text */
            if (!emit_text(&L, L.pos, L.n, 0, false)) return -1;
            break;
        }
        char kind = L.s[k + 1], sign = 0;
        size_t raw_end = kind == '%' ? match_raw_tag(&L, k, "raw", false, &sign) : 0;
        size_t after = k + 2;
        if (!raw_end && after < L.n && (L.s[after] == '-' || L.s[after] == '+')) sign = L.s[after++];
        if (!emit_text(&L, L.pos, k, sign, kind != '{')) return -1;
        if (raw_end) {
            L.pos = raw_end;
            if (!lex_raw(&L)) return -1;
        } else if (kind == '#') {
            L.pos = after;
            if (!lex_comment(&L)) return -1;
        } else {
            if (!push(&L, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, k)) return -1;
            L.pos = after;
            if (!lex_tag(&L, kind)) return -1;
        }
    }
    if (!push(&L, TK_EOF, L.n)) return -1;
    *out = L.toks;
    return (long)L.ntok;
}
