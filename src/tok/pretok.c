/*
 * pretok.c - pre-tokenizers: the regexes that cut text into pieces before BPE merges them.
 *
 * Each pre-tokenizer is the list of Split regexes of a Hugging Face tokenizer.json (kept here
 * byte for byte as they appear there, so the converter can recognize them), applied in order:
 * every regex splits each piece left by the previous one, and both its matches and the text
 * between matches become pieces (HF's "Isolated" split behaviour).
 *
 * The regexes are written for Oniguruma (the Rust tokenizers crate); two constructs mean
 * something slightly different in PCRE2, so they are rewritten before compiling:
 *   \s, \S     Oniguruma's \s is Unicode White_Space (it includes U+0085, which PCRE2's UCP \s
 *              does not): spelled out as an explicit class;
 *   (?i:...)   HF implementations fold ASCII letters only; PCRE2's Unicode caseless mode would
 *              also let 's' match U+017F 'ſ' and 'k' match U+212A: letters become [xX] classes.
 * Everything else (\p{L}, lookahead (?!\S), {1,3}) PCRE2 handles natively, JIT-compiled when
 * the library has a JIT.
 *
 * What this is not: normalization.  Qwen's tokenizer.json also asks for NFC normalization;
 * seek, like llama.cpp, tokenizes the text as given.
 */
#include <stdio.h>
#include <string.h>

#include "tok_impl.h"

#define RE_CONTRACTIONS_CI "(?i:'s|'t|'re|'ve|'m|'ll|'d)"

static const tok_pretok_def pretok_defs[] = {
    /* GPT-2: the regex built into ByteLevel(use_regex: true) */
    { "gpt2", 1,
      { "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+" },
      false },
    /* Qwen2 / Qwen2.5 / Qwen3 / DeepSeek-R1-Distill-Qwen: digits one by one */
    { "qwen2", 1,
      { RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
        "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
      false },
    /* Llama-3: digits in runs of 1-3; its tokenizer.json sets "ignore_merges": true */
    { "llama-bpe", 1,
      { RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
        "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
      true },
    /* DeepSeek-V3 / R1: three Split steps (digit runs, CJK/kana runs, then the rest) */
    { "deepseek-v3", 3,
      { "\\p{N}{1,3}",
        "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
        "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+" },
      false },
};

static const struct {
    const char *alias;
    const char *name;
} pretok_aliases[] = {
    { "default", "gpt2" },
    { "deepseek-r1-qwen", "qwen2" },
    { "llama3", "llama-bpe" },
    { "llama-v3", "llama-bpe" },
};

#define N_DEFS (sizeof pretok_defs / sizeof pretok_defs[0])
#define N_ALIASES (sizeof pretok_aliases / sizeof pretok_aliases[0])

const tok_pretok_def *tok_pretok_find(const char *name) {
    for (size_t i = 0; i < N_ALIASES; i++)
        if (!strcmp(name, pretok_aliases[i].alias)) name = pretok_aliases[i].name;
    for (size_t i = 0; i < N_DEFS; i++)
        if (!strcmp(name, pretok_defs[i].name)) return &pretok_defs[i];
    return NULL;
}

/* Writes src with raw CR, LF and tab replaced by their escapes: JSON files write either "\r"
 * (a raw CR reaches the regex) or "\\r" (the regex sees an escape), which match the same. */
static bool regex_canon(const char *src, char *out, size_t cap) {
    size_t n = 0;
    for (; *src; src++) {
        const char *esc = *src == '\r' ? "\\r" : *src == '\n' ? "\\n" : *src == '\t' ? "\\t" : NULL;
        size_t k = esc ? 2 : 1;
        if (n + k >= cap) return false;
        if (esc) memcpy(out + n, esc, 2);
        else out[n] = *src;
        n += k;
    }
    out[n] = 0;
    return true;
}

static bool regex_equal(const char *a, const char *b) {
    char ca[1024], cb[1024];
    return regex_canon(a, ca, sizeof ca) && regex_canon(b, cb, sizeof cb) && !strcmp(ca, cb);
}

const tok_pretok_def *tok_pretok_match(const char *const *regs, int n) {
    for (size_t i = 0; i < N_DEFS; i++) {
        const tok_pretok_def *d = &pretok_defs[i];
        if (d->n_regex != n) continue;
        int k = 0;
        while (k < n && regex_equal(regs[k], d->regex[k])) k++;
        if (k == n) return d;
    }
    return NULL;
}

/* ---- Oniguruma -> PCRE2 rewriting ---- */

/* Unicode White_Space (PropList.txt), for use inside a character class. */
#define WS_CLASS_BODY "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}" \
                      "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

typedef struct {
    char *buf;
    size_t n, cap;
    bool overflow;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n >= b->cap) {
        b->overflow = true;
        return;
    }
    memcpy(b->buf + b->n, s, n);
    b->n += n;
    b->buf[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Rewrites an HF regex for PCRE2 (see the file comment).  Returns 0, or -1 if it does not fit
 * or uses \S inside a class (no regex of the table does; it has no simple class form). */
static int rewrite_regex(const char *src, char *out, size_t cap) {
    sbuf b = { out, 0, cap, false };
    out[0] = 0;
    int depth = 0, ci_depth = -1; /* paren depth, and the depth of an open (?i: group */
    bool in_class = false;
    for (const char *p = src; *p; p++) {
        if (*p == '\\' && p[1]) {
            char e = p[1];
            p++;
            if (e == 's') sb_puts(&b, in_class ? WS_CLASS_BODY : "[" WS_CLASS_BODY "]");
            else if (e == 'S' && !in_class) sb_puts(&b, "[^" WS_CLASS_BODY "]");
            else if (e == 'S') return -1;
            else sb_put(&b, p - 1, 2);
            continue;
        }
        if (in_class) {
            if (*p == ']') in_class = false;
            sb_put(&b, p, 1);
            continue;
        }
        if (*p == '[') {
            in_class = true;
            sb_put(&b, p, 1);
            if (p[1] == '^') sb_put(&b, ++p, 1);
            if (p[1] == ']') sb_put(&b, ++p, 1); /* a leading ']' is literal */
            continue;
        }
        if (!strncmp(p, "(?i:", 4)) {
            ci_depth = depth++;
            sb_puts(&b, "(?:");
            p += 3;
            continue;
        }
        if (*p == '(') depth++;
        if (*p == ')' && --depth == ci_depth) ci_depth = -1;
        if (ci_depth >= 0 && is_ascii_letter(*p)) {
            char cls[5] = { '[', (char)(*p | 0x20), (char)(*p & ~0x20), ']', 0 };
            sb_puts(&b, cls);
            continue;
        }
        sb_put(&b, p, 1);
    }
    return b.overflow ? -1 : 0;
}

int tok_pretok_init(tok_pretok *pt, const tok_pretok_def *def, seek_err *err) {
    memset(pt, 0, sizeof *pt);
    pt->def = def;
    for (int i = 0; i < def->n_regex; i++) {
        char pat[2048];
        if (rewrite_regex(def->regex[i], pat, sizeof pat) < 0) {
            tok_pretok_deinit(pt);
            return err_set(err, SEEK_EUNSUP, "pre-tokenizer %s: cannot rewrite regex %d", def->name, i);
        }
        int ecode;
        PCRE2_SIZE eoff;
        pt->re[i] = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                  &ecode, &eoff, NULL);
        if (!pt->re[i]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            tok_pretok_deinit(pt);
            return err_set(err, SEEK_EUNSUP, "pre-tokenizer %s: regex %d at %zu: %s", def->name, i,
                           (size_t)eoff, (const char *)msg);
        }
        pt->n = i + 1;
        /* JIT is an optimization: without it (no JIT in this build, or W^X memory) the
         * interpreter gives the same matches */
        pcre2_jit_compile(pt->re[i], PCRE2_JIT_COMPLETE);
    }
    return 0;
}

void tok_pretok_deinit(tok_pretok *pt) {
    for (int i = 0; i < TOK_MAX_REGEX; i++) {
        if (pt->re[i]) pcre2_code_free(pt->re[i]);
        pt->re[i] = NULL;
    }
    pt->n = 0;
}

/* Byte length of the UTF-8 character starting at s (valid text: the lead byte says). */
static size_t utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Splits s[0..n) by regex `level` and passes each match and each gap on to the next level; past
 * the last level the piece goes to fn. */
static int split_level(const tok_pretok *pt, pcre2_match_data *md, int level, const char *s,
                       size_t n, tok_piece_fn fn, void *ctx) {
    if (n == 0) return 0;
    if (level == pt->n) return fn(ctx, s, n);
    size_t pos = 0, gap = 0; /* next search start; start of the text not yet passed on */
    while (pos < n) {
        int rc = pcre2_match(pt->re[level], (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) {
            /* no match, or a resource limit on pathological input: the rest is one gap */
            if (rc != PCRE2_ERROR_NOMATCH) log_debug("tok: regex error %d; rest kept whole", rc);
            break;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) { /* an empty match cuts nothing: search again one character on */
            pos = ms + utf8_len((unsigned char)s[ms]);
            continue;
        }
        if (ms > gap && split_level(pt, md, level + 1, s + gap, ms - gap, fn, ctx) < 0) return -1;
        if (split_level(pt, md, level + 1, s + ms, me - ms, fn, ctx) < 0) return -1;
        gap = pos = me;
    }
    return gap < n ? split_level(pt, md, level + 1, s + gap, n - gap, fn, ctx) : 0;
}

int tok_pretok_split(const tok_pretok *pt, pcre2_match_data *md, const char *s, size_t n,
                     tok_piece_fn fn, void *ctx) {
    return split_level(pt, md, 0, s, n, fn, ctx);
}
