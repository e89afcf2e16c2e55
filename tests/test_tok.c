/*
 * test_tok.c - unit tests of the tokenizer (src/tok) on small hand-made vocabularies.
 *
 * Each vocab is written with gguf_writer to a temporary file and loaded back: the 256 byte
 * tokens (GPT-2 byte-level alphabet, computed here independently of src/tok) at ids 0..255,
 * then the test's own tokens and merges.  Covered: merges applied in rank order (and leftmost
 * on ties), every single byte alone, pre-tokenizer choice by name (digit splitting of qwen2 /
 * llama-bpe / deepseek-v3 / gpt2), ignore_merges, special-token splitting (longest match,
 * control vs user-defined), invalid UTF-8, the streaming decoder over every way of cutting
 * multi-byte characters into tokens, hostile metadata (wrong types, bad ids, missing keys),
 * and tok_convert_hf on a small tokenizer.json.
 * The comparison against the real Hugging Face tokenizers is tests/test_tokenizer.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "check.h"
#include "gguf/gguf.h"
#include "tok/tok.h"

static char tmpdir[] = "/tmp/seek-test-tok-XXXXXX";

/* ---- GPT-2 byte-level alphabet, written out here so the test does not trust src/tok ---- */

static char bl_text[256][3]; /* byte -> its stand-in character, UTF-8, NUL-terminated */

static void bl_init(void) {
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        int cp = self ? b : 256 + extra++;
        if (cp < 0x80) {
            bl_text[b][0] = (char)cp;
        } else {
            bl_text[b][0] = (char)(0xC0 | (cp >> 6));
            bl_text[b][1] = (char)(0x80 | (cp & 0x3F));
        }
    }
}

/* Byte-level form of raw text s into out. */
static char *bl_of(const char *s, size_t n, char *out) {
    out[0] = 0;
    for (size_t i = 0; i < n; i++) strcat(out, bl_text[(unsigned char)s[i]]);
    return out;
}

/* ---- vocab builder ---- */

#define MAX_EXTRA 128

typedef struct {
    const char *model, *pre; /* NULL: key left out */
    const char *extra[MAX_EXTRA]; /* raw text of extra tokens (ids 256, 257, ...) */
    int extra_type[MAX_EXTRA];    /* 0 = normal */
    int n_extra;
    const char *merges[MAX_EXTRA]; /* "left right" in raw text, converted to byte-level */
    int n_merges;
    int bos, eos; /* -1: left out */
} vspec;

static void vspec_init(vspec *s, const char *pre) {
    memset(s, 0, sizeof *s);
    s->model = "gpt2";
    s->pre = pre;
    s->bos = s->eos = -1;
}

static int add_tok(vspec *s, const char *text, int type) {
    s->extra[s->n_extra] = text;
    s->extra_type[s->n_extra] = type;
    return 256 + s->n_extra++;
}

static void add_merge(vspec *s, const char *m) { s->merges[s->n_merges++] = m; }

/* Special and user-defined tokens keep their literal text; others are stored byte-level. */
static gguf_writer *vspec_writer(const vspec *s) {
    static char texts[256 + MAX_EXTRA][64], merges[MAX_EXTRA][128];
    const char *tok[256 + MAX_EXTRA], *mer[MAX_EXTRA];
    int32_t type[256 + MAX_EXTRA];
    int n = 256 + s->n_extra;
    for (int i = 0; i < n; i++) {
        int t = i < 256 ? 0 : s->extra_type[i - 256];
        if (i < 256) bl_of((const char *)&(unsigned char){ (unsigned char)i }, 1, texts[i]);
        else if (t) snprintf(texts[i], sizeof texts[i], "%s", s->extra[i - 256]);
        else bl_of(s->extra[i - 256], strlen(s->extra[i - 256]), texts[i]);
        tok[i] = texts[i];
        type[i] = t ? t : TOK_TYPE_NORMAL;
    }
    for (int i = 0; i < s->n_merges; i++) {
        const char *sp = strchr(s->merges[i], ' ');
        char l[64], r[64];
        bl_of(s->merges[i], (size_t)(sp - s->merges[i]), l);
        bl_of(sp + 1, strlen(sp + 1), r);
        snprintf(merges[i], sizeof merges[i], "%s %s", l, r);
        mer[i] = merges[i];
    }
    gguf_writer *w = gguf_writer_new();
    if (s->model) gguf_writer_set_str(w, "tokenizer.ggml.model", s->model);
    if (s->pre) gguf_writer_set_str(w, "tokenizer.ggml.pre", s->pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, (uint64_t)n);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, type, (uint64_t)n);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", mer, (uint64_t)s->n_merges);
    if (s->bos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
    if (s->eos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)s->eos);
    return w;
}

/* Writes w (and frees it), loads the vocab; NULL with err filled on failure. */
static tok_vocab *load_writer(gguf_writer *w, seek_err *err) {
    char path[128];
    snprintf(path, sizeof path, "%s/v.gguf", tmpdir);
    int rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    if (rc < 0) return NULL;
    gguf_file *g = gguf_open(path, err);
    if (!g) return NULL;
    tok_vocab *v = tok_load_gguf(g, err);
    gguf_close(g);
    return v;
}

static tok_vocab *load_spec(const vspec *s) {
    seek_err err = { 0 };
    tok_vocab *v = load_writer(vspec_writer(s), &err);
    CHECK(v != NULL, "loading a valid test vocab: %s", err.msg);
    return v;
}

/* Encodes text and compares with want[0..n_want). */
static bool enc_is(const tok_vocab *v, const char *text, size_t len, bool special, const int32_t *want, size_t n_want) {
    int32_t *ids;
    size_t n;
    seek_err err = { 0 };
    if (tok_encode(v, text, len, false, special, &ids, &n, &err) < 0) return false;
    bool ok = n == n_want && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
    if (!ok) {
        printf("  encoded '%.*s' to", (int)len, text);
        for (size_t i = 0; i < n; i++) printf(" %d", ids[i]);
        printf("\n");
    }
    free(ids);
    return ok;
}

#define ENC_IS(v, text, special, ...)                                                                   \
    do {                                                                                                \
        const int32_t want_[] = { __VA_ARGS__ };                                                        \
        CHECK(enc_is(v, text, strlen(text), special, want_, sizeof want_ / sizeof want_[0]), "encode %s", \
              #text);                                                                                   \
    } while (0)

/* Decoding ids gives back exactly text[0..len). */
static bool roundtrip(const tok_vocab *v, const char *text, size_t len, bool special) {
    int32_t *ids;
    size_t n;
    if (tok_encode(v, text, len, false, special, &ids, &n, NULL) < 0) return false;
    char *d = tok_decode(v, ids, n, special);
    size_t dlen = 0; /* not strlen: the text may hold NUL bytes */
    for (size_t i = 0; i < n; i++) dlen += tok_piece(v, ids[i], special, NULL, 0);
    bool ok = d && dlen == len && !memcmp(d, text, len);
    free(d);
    free(ids);
    return ok;
}

/* ---- tests ---- */

static void test_merge_order(void) {
    vspec s;
    vspec_init(&s, "gpt2");
    int ab = add_tok(&s, "ab", 0), bc = add_tok(&s, "bc", 0), abc = add_tok(&s, "abc", 0);
    int aa = add_tok(&s, "aa", 0), aaaa = add_tok(&s, "aaaa", 0);
    add_merge(&s, "b c");  /* rank 0: wins over "a b" */
    add_merge(&s, "a b");
    add_merge(&s, "a bc");
    add_merge(&s, "a a");
    add_merge(&s, "aa aa");
    tok_vocab *v = load_spec(&s);
    if (!v) return;
    ENC_IS(v, "abc", false, abc);
    ENC_IS(v, "ab", false, ab);
    ENC_IS(v, "bca", false, bc, 'a');
    ENC_IS(v, "aaa", false, aa, 'a'); /* ties go to the leftmost pair */
    ENC_IS(v, "aaaa", false, aaaa);
    ENC_IS(v, "aaaaa", false, aaaa, 'a');
    tok_free(v);

    /* the same tokens with "a b" first: "abc" becomes ab + c, as no merge joins them */
    vspec_init(&s, "gpt2");
    ab = add_tok(&s, "ab", 0);
    bc = add_tok(&s, "bc", 0);
    abc = add_tok(&s, "abc", 0);
    add_merge(&s, "a b");
    add_merge(&s, "b c");
    add_merge(&s, "a bc");
    v = load_spec(&s);
    if (!v) return;
    ENC_IS(v, "abc", false, ab, 'c');
    tok_free(v);
}

static void test_single_bytes(void) {
    vspec s;
    vspec_init(&s, "qwen2");
    tok_vocab *v = load_spec(&s);
    if (!v) return;
    CHECK(tok_n_vocab(v) == 256, "n_vocab %d", tok_n_vocab(v));
    int bad = 0;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int32_t want = b; /* the byte tokens are ids 0..255 in byte order */
        if (!enc_is(v, &c, 1, false, &want, 1) || !roundtrip(v, &c, 1, false)) bad++;
        char buf[4];
        if (tok_piece(v, b, false, buf, sizeof buf) != 1 || buf[0] != c) bad++;
    }
    CHECK(bad == 0, "%d of 256 single bytes did not encode to / decode from their byte token", bad);
    ENC_IS(v, "\xc3\xa9", false, 0xC3, 0xA9); /* no merges: a character is its bytes */
    tok_free(v);
}

static void test_pretokenizers(void) {
    static const struct {
        const char *pre;
        int n;      /* tokens for "1234" */
    } cases[] = {
        { "qwen2", 4 }, { "deepseek-r1-qwen", 4 }, { "llama-bpe", 2 }, { "llama3", 2 },
        { "deepseek-v3", 2 }, { "gpt2", 1 }, { "default", 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vspec s;
        vspec_init(&s, cases[i].pre);
        add_tok(&s, "12", 0);
        add_tok(&s, "123", 0);
        add_tok(&s, "1234", 0);
        add_merge(&s, "1 2");
        add_merge(&s, "12 3");
        add_merge(&s, "123 4");
        tok_vocab *v = load_spec(&s);
        if (!v) continue;
        int32_t *ids;
        size_t n;
        tok_encode(v, "1234", 4, false, false, &ids, &n, NULL);
        CHECK((int)n == cases[i].n, "pre %s: \"1234\" gave %zu tokens, want %d", cases[i].pre, n, cases[i].n);
        CHECK(!strcmp(tok_pre_name(v), cases[i].pre), "pre name %s", tok_pre_name(v));
        CHECK(roundtrip(v, "1234 x  y\n\n", 11, false), "round trip with %s", cases[i].pre);
        free(ids);
        tok_free(v);
    }
    /* "a   b": \s+(?!\S) leaves the last space to join the word: a, "  ", " b".  Merges with a
     * space on either side cannot be written "l r" in raw text: the merges key is set directly */
    vspec s;
    vspec_init(&s, "qwen2");
    int sp2 = add_tok(&s, "  ", 0), spb = add_tok(&s, " b", 0);
    gguf_writer *w = vspec_writer(&s);
    char m1[32], m2[32];
    snprintf(m1, sizeof m1, "%s %s", bl_text[' '], bl_text[' ']);
    snprintf(m2, sizeof m2, "%s %s", bl_text[' '], "b");
    const char *mer[] = { m1, m2 };
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", mer, 2);
    seek_err err = { 0 };
    tok_vocab *v = load_writer(w, &err);
    CHECK(v != NULL, "space vocab: %s", err.msg);
    if (v) {
        ENC_IS(v, "a   b", false, 'a', sp2, spb);
        ENC_IS(v, "a  ", false, 'a', sp2); /* trailing whitespace stays one piece */
        tok_free(v);
    }
}

static void test_ignore_merges(void) {
    for (int k = 0; k < 2; k++) {
        vspec s;
        vspec_init(&s, k ? "llama-bpe" : "qwen2");
        int ab = add_tok(&s, "ab", 0), abc = add_tok(&s, "abc", 0);
        add_merge(&s, "a b"); /* nothing merges into "abc" */
        tok_vocab *v = load_spec(&s);
        if (!v) continue;
        if (k) ENC_IS(v, "abc", false, abc); /* Llama-3: a pre-token that is a token stays whole */
        else ENC_IS(v, "abc", false, ab, 'c');
        tok_free(v);
    }
}

static void test_specials(void) {
    vspec s;
    vspec_init(&s, "qwen2");
    int im = add_tok(&s, "<|im|>", TOK_TYPE_CONTROL);
    int ims = add_tok(&s, "<|im|>start", TOK_TYPE_CONTROL);
    int think = add_tok(&s, "<think>", TOK_TYPE_USER_DEFINED);
    int end = add_tok(&s, "<|im_end|>", TOK_TYPE_CONTROL);
    int unused = add_tok(&s, "[PAD300]", TOK_TYPE_UNUSED);
    s.bos = im;
    s.eos = ims;
    tok_vocab *v = load_spec(&s);
    if (!v) return;
    ENC_IS(v, "<|im|>start", true, ims); /* longest match */
    ENC_IS(v, "<|im|>star", true, im, 's', 't', 'a', 'r');
    ENC_IS(v, "x<|im|><|im|>y", true, 'x', im, im, 'y');
    ENC_IS(v, "<think>", false, think); /* user-defined: always */
    ENC_IS(v, "a<think>b", true, 'a', think, 'b');
    ENC_IS(v, "<|im|>", false, '<', '|', 'i', 'm', '|', '>'); /* control: only when parsing special */
    CHECK(roundtrip(v, "<|im|>start<think><|im_end|>", 28, true), "special round trip");
    CHECK(roundtrip(v, "<|im|>start<think><|im_end|>", 28, false), "plain round trip");
    char buf[64];
    CHECK(tok_piece(v, im, false, buf, sizeof buf) == 0, "control piece hidden without special");
    CHECK(tok_piece(v, im, true, buf, sizeof buf) == 6 && !memcmp(buf, "<|im|>", 6), "control piece text");
    CHECK(tok_piece(v, think, false, buf, sizeof buf) == 7, "user-defined piece always shown");
    CHECK(tok_piece(v, unused, true, buf, sizeof buf) == 0, "unused piece empty");
    CHECK(tok_piece(v, -1, true, buf, sizeof buf) == 0 && tok_piece(v, 100000, true, buf, sizeof buf) == 0,
          "out-of-range piece empty");
    CHECK(tok_bos(v) == im && tok_eos(v) == ims && !tok_add_bos(v), "bos/eos/add_bos");
    CHECK(tok_eot(v) == end, "eot found by its text: %d", tok_eot(v));
    CHECK(tok_is_eog(v, ims) && tok_is_eog(v, end) && !tok_is_eog(v, think) && !tok_is_eog(v, -5), "eog");
    CHECK(tok_get_type(v, think) == TOK_TYPE_USER_DEFINED && tok_get_type(v, 'a') == TOK_TYPE_NORMAL &&
          tok_get_type(v, 99999) == TOK_TYPE_UNDEFINED, "types");
    CHECK(tok_find(v, "<think>") == think && tok_find(v, "nope!") == -1 && tok_find(v, bl_text[' ']) == ' ', "find");
    CHECK(tok_text(v, -1) == NULL && !strcmp(tok_text(v, im), "<|im|>"), "text");
    int32_t *ids;
    size_t n;
    tok_encode(v, "a", 1, true, false, &ids, &n, NULL);
    CHECK(n == 2 && ids[0] == im && ids[1] == 'a', "add_bos prepends bos");
    free(ids);
    tok_encode(v, "", 0, false, false, &ids, &n, NULL);
    CHECK(n == 0 && ids != NULL, "empty text: empty array");
    free(ids);
    tok_free(v);
}

static void test_invalid_utf8(void) {
    vspec s;
    vspec_init(&s, "llama-bpe");
    add_tok(&s, "ab", 0);
    add_merge(&s, "a b");
    tok_vocab *v = load_spec(&s);
    if (!v) return;
    static const char *const texts[] = {
        "a\xff b", "\xc3", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe4\xb8", "\x80\x80" "ab",
        "ok \xf0\x9f\x98 truncated emoji",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        CHECK(roundtrip(v, texts[i], strlen(texts[i]), false), "invalid UTF-8 round trip %zu", i);
    ENC_IS(v, "ab\xff" "ab", false, 256, 0xFF, 256);
    tok_free(v);
}

/* Whether s[0..n) is whole, valid UTF-8 characters. */
static bool whole_utf8(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = u[i] < 0x80 ? 1 : u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : u[i] >= 0xC2 ? 2 : 0;
        if (!len || i + len > n) return false;
        for (size_t k = 1; k < len; k++)
            if ((u[i + k] & 0xC0) != 0x80) return false;
        i += len;
    }
    return true;
}

/* Pushes ids through the streaming decoder: every chunk must be whole characters and all
 * chunks together the text. */
static bool stream_ok(const tok_vocab *v, const int32_t *ids, size_t n, const char *want, size_t want_len) {
    tok_decoder d;
    tok_decoder_init(&d);
    char out[256], buf[300];
    size_t len = 0;
    bool whole = true;
    for (size_t i = 0; i <= n; i++) {
        size_t k = i < n ? tok_decoder_push(v, &d, ids[i], false, buf, sizeof buf) : tok_decoder_flush(&d, buf, sizeof buf);
        whole = whole && whole_utf8(buf, k);
        memcpy(out + len, buf, k);
        len += k;
    }
    return whole && len == want_len && !memcmp(out, want, len);
}

static void test_stream_decoder(void) {
    /* every contiguous byte range of the text is a token, so every cut can be expressed */
    static const char text[] = "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"; /* é 中 😀: 2 + 3 + 4 bytes */
    const int nb = (int)sizeof text - 1;
    vspec s;
    vspec_init(&s, "qwen2");
    static char sub[64][16];
    int id_of[16][16] = { { 0 } }, n_sub = 0;
    for (int a = 0; a < nb; a++)
        for (int b = a + 2; b <= nb; b++) {
            memcpy(sub[n_sub], text + a, (size_t)(b - a));
            sub[n_sub][b - a] = 0;
            id_of[a][b] = add_tok(&s, sub[n_sub++], 0);
        }
    for (int a = 0; a < nb; a++) id_of[a][a + 1] = (unsigned char)text[a];
    tok_vocab *v = load_spec(&s);
    if (!v) return;
    int bad = 0;
    for (unsigned cuts = 0; cuts < (1u << (nb - 1)); cuts++) { /* bit i: a token ends after byte i */
        int32_t ids[16];
        size_t n = 0;
        int start = 0;
        for (int i = 0; i < nb; i++)
            if (i == nb - 1 || (cuts >> i & 1)) {
                ids[n++] = id_of[start][i + 1];
                start = i + 1;
            }
        if (!stream_ok(v, ids, n, text, (size_t)nb)) bad++;
    }
    CHECK(bad == 0, "%d of %u token cuts of a 2/3/4-byte text streamed wrongly", bad, 1u << (nb - 1));

    /* invalid bytes are not held back forever */
    tok_decoder d;
    tok_decoder_init(&d);
    char buf[300];
    CHECK(tok_decoder_push(v, &d, 0xFF, false, buf, sizeof buf) == 1, "0xFF goes out at once");
    CHECK(tok_decoder_push(v, &d, 0xF0, false, buf, sizeof buf) == 0, "a lead byte is held");
    CHECK(tok_decoder_push(v, &d, 'a', false, buf, sizeof buf) == 2 && buf[0] == '\xf0' && buf[1] == 'a',
          "a held byte that cannot complete goes out");
    CHECK(tok_decoder_push(v, &d, 0xE0, false, buf, sizeof buf) == 0 &&
          tok_decoder_push(v, &d, 0x80, false, buf, sizeof buf) == 2, "E0 80 can never be valid: flushed");
    CHECK(tok_decoder_push(v, &d, 0xE4, false, buf, sizeof buf) == 0 && tok_decoder_flush(&d, buf, sizeof buf) == 1 &&
          tok_decoder_flush(&d, buf, sizeof buf) == 0, "flush gives the held tail once");
    tok_free(v);
}

/* ---- hostile metadata: every case must fail to load with a message, never crash ---- */

typedef void (*spoil_fn)(gguf_writer *w);

static void spoil_no_model(gguf_writer *w) { gguf_writer_remove(w, "tokenizer.ggml.model"); }
static void spoil_spm(gguf_writer *w) { gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"); }
static void spoil_model_type(gguf_writer *w) { gguf_writer_set_u32(w, "tokenizer.ggml.model", 2); }
static void spoil_pre(gguf_writer *w) { gguf_writer_set_str(w, "tokenizer.ggml.pre", "no-such-pre"); }
static void spoil_pre_type(gguf_writer *w) { gguf_writer_set_bool(w, "tokenizer.ggml.pre", true); }
static void spoil_no_tokens(gguf_writer *w) { gguf_writer_remove(w, "tokenizer.ggml.tokens"); }
static void spoil_tokens_type(gguf_writer *w) { gguf_writer_set_u32(w, "tokenizer.ggml.tokens", 5); }
static void spoil_tokens_empty(gguf_writer *w) { gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", NULL, 0); }
static void spoil_types_len(gguf_writer *w) {
    int32_t t[3] = { 1, 1, 1 };
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, t, 3);
}
static void spoil_types_value(gguf_writer *w) {
    int32_t t[256];
    for (int i = 0; i < 256; i++) t[i] = i == 7 ? 42 : 1;
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, t, 256);
}
static void spoil_types_float(gguf_writer *w) {
    float t[256] = { 0 };
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_FLOAT32, t, 256);
}
static void spoil_bos_range(gguf_writer *w) { gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1000); }
static void spoil_eos_neg(gguf_writer *w) { gguf_writer_set_i32(w, "tokenizer.ggml.eos_token_id", -3); }
static void spoil_eot_str(gguf_writer *w) { gguf_writer_set_str(w, "tokenizer.ggml.eot_token_id", "7"); }
static void spoil_add_bos(gguf_writer *w) { gguf_writer_set_str(w, "tokenizer.ggml.add_bos_token", "yes"); }
static void spoil_no_merges(gguf_writer *w) { gguf_writer_remove(w, "tokenizer.ggml.merges"); }
static void spoil_merge_nospace(gguf_writer *w) {
    const char *m[] = { "ab" };
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, 1);
}
static void spoil_merges_type(gguf_writer *w) {
    int32_t m[2] = { 1, 2 };
    gguf_writer_set_arr(w, "tokenizer.ggml.merges", GGUF_VT_INT32, m, 2);
}
static void spoil_long_token(gguf_writer *w) {
    static char big[3000];
    memset(big, 'x', sizeof big - 1);
    const char *t[256];
    for (int i = 0; i < 256; i++) t[i] = bl_text[i];
    t[100] = big;
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", t, 256);
}

static void test_hostile(void) {
    static const struct {
        const char *name;
        spoil_fn fn;
    } cases[] = {
        { "no model", spoil_no_model }, { "spm model", spoil_spm }, { "model is a number", spoil_model_type },
        { "unknown pre", spoil_pre }, { "pre is a bool", spoil_pre_type }, { "no tokens", spoil_no_tokens },
        { "tokens is a number", spoil_tokens_type }, { "no tokens in array", spoil_tokens_empty },
        { "token_type length", spoil_types_len }, { "token_type value", spoil_types_value },
        { "token_type floats", spoil_types_float }, { "bos out of range", spoil_bos_range },
        { "eos negative", spoil_eos_neg }, { "eot is a string", spoil_eot_str }, { "add_bos is a string", spoil_add_bos },
        { "no merges", spoil_no_merges }, { "merge without space", spoil_merge_nospace },
        { "merges are numbers", spoil_merges_type }, { "3000-byte token", spoil_long_token },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vspec s;
        vspec_init(&s, "qwen2");
        add_tok(&s, "ab", 0);
        add_merge(&s, "a b");
        gguf_writer *w = vspec_writer(&s);
        cases[i].fn(w);
        seek_err err = { 0 };
        tok_vocab *v = load_writer(w, &err);
        CHECK(v == NULL && err.msg[0], "hostile vocab (%s) must not load; err '%s'", cases[i].name, err.msg);
        if (v) tok_free(v);
    }
    /* merges naming unknown tokens are skipped, not fatal (as llama.cpp does) */
    vspec s;
    vspec_init(&s, "qwen2");
    int ab = add_tok(&s, "ab", 0);
    add_merge(&s, "x yz");
    add_merge(&s, "a c"); /* "ac" is no token */
    add_merge(&s, "a b");
    tok_vocab *v = load_spec(&s);
    if (v) {
        ENC_IS(v, "abc", false, ab, 'c');
        tok_free(v);
    }
    /* no pre key: "default" (gpt2) */
    vspec_init(&s, NULL);
    v = load_spec(&s);
    if (v) {
        CHECK(!strcmp(tok_pre_name(v), "default"), "missing pre -> default, got %s", tok_pre_name(v));
        tok_free(v);
    }
}

/* Random damage to a valid vocab file, then load, encode and decode random bytes: whatever
 * loads must work, nothing may crash (run under ASan by make asan to catch what does not). */
static void test_fuzz(void) {
    vspec s;
    vspec_init(&s, "llama-bpe");
    add_tok(&s, "ab", 0);
    add_tok(&s, "<|x|>", TOK_TYPE_CONTROL);
    add_tok(&s, "<u>", TOK_TYPE_USER_DEFINED);
    add_merge(&s, "a b");
    char path[128];
    snprintf(path, sizeof path, "%s/f.gguf", tmpdir);
    gguf_writer *w = vspec_writer(&s);
    seek_err err = { 0 };
    gguf_writer_write(w, path, &err);
    gguf_writer_free(w);
    size_t len;
    char *img = fs_read_all(path, &len, &err);
    CHECK(img != NULL, "read fuzz seed: %s", err.msg);
    if (!img) return;
    char *buf = malloc(len);
    uint64_t rng = 12345;
    int loaded = 0, bad = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, img, len);
        int n_flip = it & 1 ? 1 : 1 + (int)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 61);
        for (int k = 0; k < n_flip; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            buf[(rng >> 33) % len] = (char)(rng >> 13);
        }
        gguf_file *g = gguf_open_mem(buf, len, NULL);
        tok_vocab *v = g ? tok_load_gguf(g, NULL) : NULL;
        if (g) gguf_close(g);
        if (!v) continue;
        loaded++;
        char text[64];
        for (size_t i = 0; i < sizeof text; i++) text[i] = "ab <|x|><u>\xc3\xa9\xff\n1"[(rng >> (i % 50)) % 16];
        int32_t *ids;
        size_t n;
        if (tok_encode(v, text, sizeof text, true, it & 1, &ids, &n, NULL) < 0) bad++;
        else {
            char *d = tok_decode(v, ids, n, true);
            if (!d) bad++;
            free(d);
            free(ids);
        }
        tok_free(v);
    }
    CHECK(bad == 0, "%d damaged-but-loadable vocabs failed to encode", bad);
    printf("fuzz: %d of 3000 damaged vocab files loaded\n", loaded);
    free(buf);
    free(img);
}

/* ---- tok_convert_hf on a small tokenizer.json ---- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static const char tj_template[] =
    "{\"added_tokens\": [{\"id\": 9, \"content\": \"<|im_end|>\", \"special\": true},"
    "                    {\"id\": 7, \"content\": \"<think>\", \"special\": false}],"
    " \"normalizer\": null,"
    " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\":"
    "   \"%s\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
    "   \"trim_offsets\": false, \"use_regex\": false}]},"
    " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"c\": 3, \"abc\": 5},"
    "   \"merges\": [\"a b\", [\"ab\", \"c\"]]}}";
#define QWEN2_RE_JSON "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"

static void test_convert(void) {
    char tj[256], cfg[256], out[256], json[4096];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", tmpdir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", tmpdir);
    snprintf(out, sizeof out, "%s/c.gguf", tmpdir);
    snprintf(json, sizeof json, tj_template, QWEN2_RE_JSON);
    write_file(tj, json);
    write_file(cfg, "{\"eos_token\": {\"content\": \"<|im_end|>\"}, \"bos_token\": null, \"model_max_length\": "
                    "1000000000000000019884624838656, \"chat_template\": [{\"name\": \"tool\", \"template\": \"T\"},"
                    " {\"name\": \"default\", \"template\": \"D\"}]}");
    gguf_writer *w = gguf_writer_new();
    seek_err err = { 0 };
    int32_t n = 0;
    int rc = tok_convert_hf(tj, cfg, w, &n, &err);
    CHECK(rc == 0 && n == 10, "convert small tokenizer.json: rc %d n %d (%s)", rc, n, err.msg);
    tok_vocab *v = rc == 0 ? load_writer(w, &err) : (gguf_writer_free(w), NULL);
    CHECK(v != NULL, "load converted vocab: %s", err.msg);
    if (v) {
        CHECK(tok_get_type(v, 4) == TOK_TYPE_UNUSED && !strcmp(tok_text(v, 4), "[PAD4]"), "hole -> [PAD4] unused");
        CHECK(tok_get_type(v, 9) == TOK_TYPE_CONTROL && tok_get_type(v, 7) == TOK_TYPE_USER_DEFINED &&
              tok_get_type(v, 2) == TOK_TYPE_NORMAL, "added token types");
        CHECK(tok_eos(v) == 9 && tok_bos(v) == -1 && tok_eot(v) == 9 && !strcmp(tok_pre_name(v), "qwen2"),
              "ids and pre: eos %d bos %d eot %d pre %s", tok_eos(v), tok_bos(v), tok_eot(v), tok_pre_name(v));
        ENC_IS(v, "abc<think>ab<|im_end|>", true, 5, 7, 2, 9); /* both merge forms were read */
        tok_free(v);
    }
    /* chat_template: the "default" entry of a list */
    char path[256];
    snprintf(path, sizeof path, "%s/t.gguf", tmpdir);
    w = gguf_writer_new();
    tok_convert_hf(tj, cfg, w, NULL, &err);
    gguf_writer_write(w, path, &err);
    gguf_writer_free(w);
    gguf_file *g = gguf_open(path, &err);
    gguf_str t = { 0 };
    CHECK(g && gguf_get_str(g, "tokenizer.chat_template", &t, &err) == 0 && gguf_str_eq(t, "D"), "chat_template default");
    if (g) gguf_close(g);

    /* a Qwen2 regex with DeepSeek-R1's BOS among the added tokens: llama.cpp's deepseek-r1-qwen */
    char r1[4096];
    snprintf(json, sizeof json, tj_template, QWEN2_RE_JSON);
    char *at = strstr(json, "{\"id\": 7");
    snprintf(r1, sizeof r1, "%.*s{\"id\": 8, \"content\": \"<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81"
             "sentence\xef\xbd\x9c>\", \"special\": true}, %s", (int)(at - json), json, at);
    write_file(tj, r1);
    w = gguf_writer_new();
    rc = tok_convert_hf(tj, NULL, w, &n, &err);
    v = rc == 0 ? load_writer(w, &err) : (gguf_writer_free(w), NULL);
    CHECK(v && !strcmp(tok_pre_name(v), "deepseek-r1-qwen"), "R1 distill recognized: %s", v ? tok_pre_name(v) : err.msg);
    if (v) tok_free(v);
    snprintf(json, sizeof json, tj_template, QWEN2_RE_JSON);
    write_file(tj, json);

    /* padding to the embedding's rows */
    w = gguf_writer_new();
    rc = tok_convert_hf_padded(tj, NULL, w, 16, &n, &err);
    CHECK(rc == 0 && n == 16, "padded convert: n %d", n);
    gguf_writer_free(w);

    /* an unknown regex is an error naming the pre-tokenizer */
    snprintf(json, sizeof json, tj_template, "\\\\p{L}+|\\\\p{N}{1,7}");
    write_file(tj, json);
    w = gguf_writer_new();
    rc = tok_convert_hf(tj, NULL, w, &n, &err);
    CHECK(rc < 0 && strstr(err.msg, "pre-tokenizer"), "unknown pre-tokenizer: %s", err.msg);
    gguf_writer_free(w);
    /* broken JSON and missing files are errors, not crashes */
    write_file(tj, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}");
    w = gguf_writer_new();
    CHECK(tok_convert_hf(tj, NULL, w, &n, &err) < 0, "negative id rejected");
    CHECK(tok_convert_hf("/nonexistent/tokenizer.json", NULL, w, &n, &err) < 0, "missing file rejected");
    write_file(tj, "{\"model\": ");
    CHECK(tok_convert_hf(tj, NULL, w, &n, &err) < 0, "truncated JSON rejected");
    gguf_writer_free(w);
}

int main(void) {
    base_init();
    bl_init();
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_merge_order();
    test_single_bytes();
    test_pretokenizers();
    test_ignore_merges();
    test_specials();
    test_invalid_utf8();
    test_stream_decoder();
    test_hostile();
    test_fuzz();
    test_convert();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return check_done("test_tok");
}
