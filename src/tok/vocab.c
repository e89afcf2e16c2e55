/*
 * vocab.c - loading a byte-level BPE vocabulary from GGUF metadata, and the lookups on it.
 *
 * Everything read from the file is checked before use: key types, array lengths that must
 * agree (tokens / token_type), token ids of bos/eos/... in range, token lengths within
 * TOK_MAX_TEXT / TOK_MAX_PIECE.  A bad file gives an error naming the key, never a crash.
 *
 * Layout after loading: all token texts in one arena (text/text_off/text_len), their decoded
 * bytes in another (piece/...: byte-level undone for normal tokens, literal text for control
 * and user-defined ones, empty for unused ones), so decoding is a copy.  Token text -> id is an
 * open-addressing hash table (load factor <= 1/2); the merge table lives in bpe.c.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

#define R1_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>" /* <｜end▁of▁sentence｜> */

/* End-of-turn markers, in the order they are tried when the file names no eot token. */
static const char *const eot_names[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", R1_EOS };
/* Texts of control tokens that end generation (besides the eos/eot/eom ids). */
static const char *const eog_names[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
    R1_EOS,
};

/* FNV-1a, 64-bit: short keys (tokens average ~7 bytes), where it is as fast as anything. */
uint64_t tok_hash_more(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

int32_t tok_find_hashed(const tok_vocab *v, uint64_t h, const char *a, size_t na, const char *b, size_t nb) {
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & v->hash_mask;; i = (i + 1) & v->hash_mask) {
        const tok_hash_slot *e = &v->hash[i];
        if (e->id < 0) return -1;
        if (e->tag != tag || e->len != na + nb) continue;
        const char *t = v->text + e->off;
        if (!memcmp(t, a, na) && (nb == 0 || !memcmp(t + na, b, nb))) return e->id;
    }
}

int32_t tok_find_n(const tok_vocab *v, const char *s, size_t n) {
    return tok_find_hashed(v, tok_hash_more(TOK_HASH_SEED, s, n), s, n, NULL, 0);
}

void tok_find_prefetch_slot(const tok_vocab *v, uint64_t h) { __builtin_prefetch(&v->hash[h & v->hash_mask]); }

void tok_find_prefetch_text(const tok_vocab *v, uint64_t h) {
    const tok_hash_slot *e = &v->hash[h & v->hash_mask];
    /* a hit is almost always the first slot probed */
    if (e->id >= 0 && e->tag == (uint32_t)(h >> 32)) __builtin_prefetch(v->text + e->off);
}

/* ---- loading, step by step ---- */

static int load_model_and_pre(tok_vocab *v, const gguf_file *g, seek_err *err) {
    gguf_str s = { "default", 7 };
    if (!gguf_find_kv(g, "tokenizer.ggml.model"))
        return err_set(err, SEEK_ENOTFOUND, "tokenizer.ggml.model is missing (no tokenizer in this file)");
    if (gguf_get_str(g, "tokenizer.ggml.model", &s, err) < 0) return -1;
    if (!gguf_str_eq(s, "gpt2")) {
        char name[64];
        return err_set(err, SEEK_EUNSUP, "tokenizer model '%s' is not supported (only gpt2: byte-level BPE)",
                       gguf_str_copy(s, name, sizeof name));
    }
    strcpy(v->pre_name, "default");
    if (gguf_find_kv(g, "tokenizer.ggml.pre")) {
        if (gguf_get_str(g, "tokenizer.ggml.pre", &s, err) < 0) return -1;
        gguf_str_copy(s, v->pre_name, sizeof v->pre_name);
        if (s.len >= sizeof v->pre_name || memchr(s.ptr, 0, s.len)) v->pre_name[0] = 0;
    }
    const tok_pretok_def *def = tok_pretok_find(v->pre_name);
    if (!def) {
        char name[64];
        return err_set(err, SEEK_EUNSUP, "unknown pre-tokenizer '%s' (tokenizer.ggml.pre)",
                       gguf_str_copy(s, name, sizeof name));
    }
    return tok_pretok_init(&v->pre, def, err);
}

/* Copies the token texts into one arena. */
static int load_tokens(tok_vocab *v, const gguf_file *g, seek_err *err) {
    const gguf_kv *kv = gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!kv) return err_set(err, SEEK_ENOTFOUND, "tokenizer.ggml.tokens is missing");
    if (kv->vtype != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING)
        return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.tokens is not an array of strings");
    if (kv->arr_n == 0 || kv->arr_n > TOK_MAX_VOCAB)
        return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.tokens has %llu entries (1..%d allowed)",
                       (unsigned long long)kv->arr_n, TOK_MAX_VOCAB);
    v->n = (int32_t)kv->arr_n;
    uint64_t total = 0;
    for (int32_t i = 0; i < v->n; i++) {
        gguf_str s;
        if (gguf_arr_str(g, kv, (uint64_t)i, &s) < 0)
            return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.tokens[%d] is unreadable", i);
        if (s.len > TOK_MAX_TEXT)
            return err_set(err, SEEK_EFORMAT, "token %d is %llu bytes long (limit %d)", i,
                           (unsigned long long)s.len, TOK_MAX_TEXT);
        total += s.len + 1;
    }
    if (total > UINT32_MAX) return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.tokens: %llu bytes of text is too much",
                                           (unsigned long long)total);
    v->text = malloc(total);
    v->text_off = malloc((size_t)v->n * sizeof *v->text_off);
    v->text_len = malloc((size_t)v->n * sizeof *v->text_len);
    if (!v->text || !v->text_off || !v->text_len) return err_set(err, SEEK_ENOMEM, "out of memory");
    uint64_t off = 0;
    for (int32_t i = 0; i < v->n; i++) {
        gguf_str s;
        gguf_arr_str(g, kv, (uint64_t)i, &s);
        memcpy(v->text + off, s.ptr, s.len);
        v->text[off + s.len] = 0;
        v->text_off[i] = (uint32_t)off;
        v->text_len[i] = (uint16_t)s.len;
        off += s.len + 1;
    }
    return 0;
}

/* Token types; a file without tokenizer.ggml.token_type has only normal tokens. */
static int load_types(tok_vocab *v, const gguf_file *g, seek_err *err) {
    v->type = malloc((size_t)v->n);
    v->eog = calloc((size_t)v->n, 1);
    if (!v->type || !v->eog) return err_set(err, SEEK_ENOMEM, "out of memory");
    memset(v->type, TOK_TYPE_NORMAL, (size_t)v->n);
    const gguf_kv *kv = gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (!kv) return 0;
    if (kv->vtype != GGUF_VT_ARRAY || kv->arr_n != (uint64_t)v->n)
        return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.token_type is not an array of %d types", v->n);
    for (int32_t i = 0; i < v->n; i++) {
        int64_t t;
        if (gguf_arr_i64(kv, (uint64_t)i, &t) < 0)
            return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.token_type is not an integer array");
        if (t < TOK_TYPE_UNDEFINED || t > TOK_TYPE_BYTE)
            return err_set(err, SEEK_EFORMAT, "token %d has unknown type %lld", i, (long long)t);
        v->type[i] = (uint8_t)t;
    }
    return 0;
}

/* Decoded bytes of token id into out (at least its text length): byte-level stand-ins become
 * their bytes; a code point outside the alphabet (not a byte-level vocab) is kept as UTF-8. */
static size_t decode_text(const tok_vocab *v, int32_t id, char *out) {
    const unsigned char *s = (const unsigned char *)v->text + v->text_off[id];
    size_t n = v->text_len[id], o = 0;
    switch (v->type[id]) {
    case TOK_TYPE_UNUSED: return 0;
    case TOK_TYPE_CONTROL:
    case TOK_TYPE_UNKNOWN:
    case TOK_TYPE_USER_DEFINED: memcpy(out, s, n); return n;
    default: break;
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = tok_utf8_decode(s + i, n - i, &cp);
        int b = len ? tok_bl_byte_of(cp) : -1;
        if (b >= 0) {
            out[o++] = (char)b;
            i += len;
        } else { /* not a stand-in: copy the character (or the bad byte) unchanged */
            size_t k = len ? len : 1;
            memcpy(out + o, s + i, k);
            o += k, i += k;
        }
    }
    return o;
}

static int build_pieces(tok_vocab *v, seek_err *err) {
    size_t total = (size_t)v->text_off[v->n - 1] + v->text_len[v->n - 1] + 1;
    v->piece = malloc(total);
    v->piece_off = malloc((size_t)v->n * sizeof *v->piece_off);
    v->piece_len = malloc((size_t)v->n * sizeof *v->piece_len);
    if (!v->piece || !v->piece_off || !v->piece_len) return err_set(err, SEEK_ENOMEM, "out of memory");
    size_t off = 0;
    for (int32_t i = 0; i < v->n; i++) {
        size_t len = decode_text(v, i, v->piece + off);
        if (len > TOK_MAX_PIECE)
            return err_set(err, SEEK_EFORMAT, "token %d decodes to %zu bytes (limit %d)", i, len, TOK_MAX_PIECE);
        v->piece_off[i] = (uint32_t)off;
        v->piece_len[i] = (uint16_t)len;
        off += len;
    }
    return 0;
}

static int build_hash(tok_vocab *v, seek_err *err) {
    uint64_t cap = 1024;
    while (cap < 2 * (uint64_t)v->n) cap *= 2;
    v->hash = malloc(cap * sizeof *v->hash);
    if (!v->hash) return err_set(err, SEEK_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < cap; i++) v->hash[i].id = -1;
    v->hash_mask = cap - 1;
    for (int32_t id = 0; id < v->n; id++) {
        const char *s = v->text + v->text_off[id];
        size_t n = v->text_len[id];
        uint64_t h = tok_hash_more(TOK_HASH_SEED, s, n);
        /* a duplicate text keeps its first id, so lookups are deterministic */
        if (tok_find_hashed(v, h, s, n, NULL, 0) >= 0) continue;
        uint64_t i = h & v->hash_mask;
        while (v->hash[i].id >= 0) i = (i + 1) & v->hash_mask;
        v->hash[i] = (tok_hash_slot){ id, (uint32_t)(h >> 32), v->text_off[id], (uint32_t)n };
    }
    return 0;
}

/* Special tokens to split out of text, grouped by first byte, longest first (so the first one
 * that matches at a position is the longest). */
static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const tok_vocab *v = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (v->text_len[x] != v->text_len[y]) return v->text_len[x] > v->text_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static bool is_special_type(uint8_t t) {
    return t == TOK_TYPE_CONTROL || t == TOK_TYPE_UNKNOWN || t == TOK_TYPE_USER_DEFINED;
}

static int build_specials(tok_vocab *v, seek_err *err) {
    uint32_t count[257] = { 0 };
    for (int32_t i = 0; i < v->n; i++)
        if (is_special_type(v->type[i]) && v->text_len[i] > 0)
            count[(unsigned char)v->text[v->text_off[i]]]++;
    uint32_t total = 0;
    for (int b = 0; b < 256; b++) {
        v->sp_first[b] = total;
        total += count[b];
    }
    v->sp_first[256] = total;
    v->sp_ids = malloc((total ? total : 1) * sizeof *v->sp_ids);
    if (!v->sp_ids) return err_set(err, SEEK_ENOMEM, "out of memory");
    uint32_t fill[256];
    memcpy(fill, v->sp_first, sizeof fill);
    for (int32_t i = 0; i < v->n; i++)
        if (is_special_type(v->type[i]) && v->text_len[i] > 0)
            v->sp_ids[fill[(unsigned char)v->text[v->text_off[i]]]++] = i;
    for (int b = 0; b < 256; b++)
        qsort_r(v->sp_ids + v->sp_first[b], v->sp_first[b + 1] - v->sp_first[b], sizeof *v->sp_ids,
                cmp_len_desc, v);
    return 0;
}

/* Optional token id key: -1 when absent; an error when of the wrong type or out of range. */
static int load_id(const tok_vocab *v, const gguf_file *g, const char *key, int32_t *out, seek_err *err) {
    *out = -1;
    if (!gguf_find_kv(g, key)) return 0;
    uint32_t id;
    if (gguf_get_u32(g, key, &id, err) < 0) return -1;
    if (id >= (uint32_t)v->n)
        return err_set(err, SEEK_EFORMAT, "%s = %u is not a token id (vocab has %d)", key, id, v->n);
    *out = (int32_t)id;
    return 0;
}

static int load_bool(const gguf_file *g, const char *key, bool *out, seek_err *err) {
    *out = false;
    return gguf_find_kv(g, key) ? gguf_get_bool(g, key, out, err) : 0;
}

static int load_special_ids(tok_vocab *v, const gguf_file *g, seek_err *err) {
    if (load_id(v, g, "tokenizer.ggml.bos_token_id", &v->bos, err) < 0 ||
        load_id(v, g, "tokenizer.ggml.eos_token_id", &v->eos, err) < 0 ||
        load_id(v, g, "tokenizer.ggml.eot_token_id", &v->eot, err) < 0 ||
        load_id(v, g, "tokenizer.ggml.eom_token_id", &v->eom, err) < 0 ||
        load_id(v, g, "tokenizer.ggml.padding_token_id", &v->pad, err) < 0 ||
        load_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos, err) < 0 ||
        load_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos, err) < 0)
        return -1;
    for (size_t i = 0; v->eot < 0 && i < sizeof eot_names / sizeof eot_names[0]; i++) {
        int32_t id = tok_find(v, eot_names[i]);
        if (id >= 0 && v->type[id] == TOK_TYPE_CONTROL) v->eot = id;
    }
    for (size_t i = 0; i < sizeof eog_names / sizeof eog_names[0]; i++) {
        int32_t id = tok_find(v, eog_names[i]);
        if (id >= 0 && v->type[id] == TOK_TYPE_CONTROL) v->eog[id] = 1;
    }
    if (v->eos >= 0) v->eog[v->eos] = 1;
    if (v->eot >= 0) v->eog[v->eot] = 1;
    if (v->eom >= 0) v->eog[v->eom] = 1;
    return 0;
}

static void build_byte_tokens(tok_vocab *v) {
    for (int b = 0; b < 256; b++) {
        char s[2];
        size_t n = tok_bl_encode_byte((unsigned char)b, s);
        v->byte_tok[b] = tok_find_n(v, s, n);
    }
}

tok_vocab *tok_load_gguf(const gguf_file *g, seek_err *err) {
    tok_vocab *v = calloc(1, sizeof *v);
    if (!v) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        return NULL;
    }
    if (load_model_and_pre(v, g, err) < 0 || load_tokens(v, g, err) < 0 || load_types(v, g, err) < 0 ||
        build_pieces(v, err) < 0 || build_hash(v, err) < 0 || build_specials(v, err) < 0 ||
        load_special_ids(v, g, err) < 0) {
        tok_free(v);
        return NULL;
    }
    build_byte_tokens(v);
    const gguf_kv *merges = gguf_find_kv(g, "tokenizer.ggml.merges");
    if (!merges) {
        err_set(err, SEEK_ENOTFOUND, "tokenizer.ggml.merges is missing");
        tok_free(v);
        return NULL;
    }
    if (tok_merges_build(v, g, merges, err) < 0) {
        tok_free(v);
        return NULL;
    }
    return v;
}

void tok_free(tok_vocab *v) {
    if (!v) return;
    tok_pretok_deinit(&v->pre);
    tok_merges_free(&v->merges);
    free(v->text);
    free(v->text_off);
    free(v->text_len);
    free(v->piece);
    free(v->piece_off);
    free(v->piece_len);
    free(v->type);
    free(v->eog);
    free(v->hash);
    free(v->sp_ids);
    free(v);
}

/* ---- accessors ---- */

int32_t tok_n_vocab(const tok_vocab *v) { return v->n; }
int32_t tok_bos(const tok_vocab *v) { return v->bos; }
int32_t tok_eos(const tok_vocab *v) { return v->eos; }
int32_t tok_eot(const tok_vocab *v) { return v->eot; }
bool tok_add_bos(const tok_vocab *v) { return v->add_bos; }
const char *tok_pre_name(const tok_vocab *v) { return v->pre_name; }

bool tok_is_eog(const tok_vocab *v, int32_t id) { return id >= 0 && id < v->n && v->eog[id]; }

enum tok_type tok_get_type(const tok_vocab *v, int32_t id) {
    return id >= 0 && id < v->n ? (enum tok_type)v->type[id] : TOK_TYPE_UNDEFINED;
}

const char *tok_text(const tok_vocab *v, int32_t id) {
    return id >= 0 && id < v->n ? v->text + v->text_off[id] : NULL;
}

int32_t tok_find(const tok_vocab *v, const char *text) { return tok_find_n(v, text, strlen(text)); }
