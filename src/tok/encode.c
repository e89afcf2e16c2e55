/*
 * encode.c - text -> token ids: special-token splitting, then pre-tokenizer, then BPE.
 *
 * Special tokens first: the text is scanned for the stored text of special tokens, leftmost
 * match first and the longest one at that position (as Hugging Face's added-token splitter
 * does).  Which ones count:
 *   user-defined tokens (tokenizer.json added tokens with "special": false, e.g. Qwen3's
 *       <think>) always: HF splits every added token out of plain text, and llama.cpp does the
 *       same for user-defined tokens;
 *   control and unknown tokens only with parse_special (HF always; llama.cpp and seek only when
 *       asked, so a user's prompt cannot forge <|im_start|>).
 * The text between special tokens is split into valid UTF-8 runs; each run goes through the
 * pre-tokenizer and each piece through BPE.  A byte that is not part of valid UTF-8 becomes the
 * token of that byte on its own (the regexes are only defined on characters).
 */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

typedef struct {
    const tok_vocab *v;
    pcre2_match_data *md;
    tok_bpe_scratch sc;
    tok_ids out;
} enc_ctx;

static int on_piece(void *ctx, const char *s, size_t n) {
    enc_ctx *e = ctx;
    return tok_bpe_piece(e->v, &e->sc, s, n, &e->out);
}

/* Text with no special tokens in it. */
static int encode_plain(enc_ctx *e, const char *s, size_t n) {
    const tok_vocab *v = e->v;
    size_t i = 0;
    while (i < n) {
        size_t k = tok_utf8_valid_prefix((const unsigned char *)s + i, n - i);
        if (k) {
            if (tok_pretok_split(&v->pre, e->md, s + i, k, on_piece, e) < 0) return -1;
            i += k;
            continue;
        }
        int32_t id = v->byte_tok[(unsigned char)s[i++]];
        if (id >= 0 && tok_ids_push(&e->out, id) < 0) return -1;
    }
    return 0;
}

/* The longest allowed special token whose text starts s (n bytes left), or -1. */
static int32_t special_at(const tok_vocab *v, const char *s, size_t n, bool parse_special) {
    unsigned char b = (unsigned char)s[0];
    for (uint32_t k = v->sp_first[b]; k < v->sp_first[b + 1]; k++) {
        int32_t id = v->sp_ids[k];
        size_t len = v->text_len[id];
        if (!parse_special && v->type[id] != TOK_TYPE_USER_DEFINED) continue;
        if (len <= n && !memcmp(s, v->text + v->text_off[id], len)) return id;
    }
    return -1;
}

static int encode_all(enc_ctx *e, const char *text, size_t len, bool parse_special) {
    const tok_vocab *v = e->v;
    size_t frag = 0; /* start of the text not yet encoded */
    for (size_t i = 0; i < len;) {
        unsigned char b = (unsigned char)text[i];
        int32_t id = v->sp_first[b] < v->sp_first[b + 1] ? special_at(v, text + i, len - i, parse_special) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        if (encode_plain(e, text + frag, i - frag) < 0 || tok_ids_push(&e->out, id) < 0) return -1;
        i += v->text_len[id];
        frag = i;
    }
    return encode_plain(e, text + frag, len - frag);
}

int tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special,
               int32_t **out, size_t *n_out, seek_err *err) {
    enc_ctx e = { .v = v };
    *out = NULL;
    *n_out = 0;
    e.md = pcre2_match_data_create(1, NULL);
    int rc = e.md ? 0 : -1;
    if (!rc && add_bos && v->bos >= 0) rc = tok_ids_push(&e.out, v->bos);
    if (!rc && len) rc = encode_all(&e, text, len, parse_special);
    if (!rc && !e.out.ids) { /* an empty result is still a malloc'd array */
        rc = tok_ids_push(&e.out, 0);
        e.out.n = 0;
    }
    if (e.md) pcre2_match_data_free(e.md);
    tok_bpe_scratch_free(&e.sc);
    if (rc < 0) {
        free(e.out.ids);
        return err_set(err, SEEK_ENOMEM, "out of memory while tokenizing %zu bytes", len);
    }
    *out = e.out.ids;
    *n_out = e.out.n;
    return 0;
}
