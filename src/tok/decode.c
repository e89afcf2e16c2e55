/*
 * decode.c - token ids -> bytes: single pieces, whole sequences, and the streaming decoder.
 *
 * Each token's bytes were computed when the vocab was loaded (vocab.c), so a piece is a copy.
 * Control and unknown tokens give their text only when `special` is set; user-defined tokens
 * (literal text such as <think>) always give it, like llama.cpp and HF's decode; unused tokens
 * give nothing.
 *
 * Streaming: one token may end in the middle of a UTF-8 character (byte-level BPE splits
 * characters freely: an emoji is often two or three tokens).  The decoder holds back such a
 * trailing partial character until the next token completes it.  Only a tail that can still
 * become a valid character is held back; anything else is invalid and goes out as is.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

size_t tok_piece(const tok_vocab *v, int32_t id, bool special, char *buf, size_t cap) {
    if (id < 0 || id >= v->n) return 0;
    uint8_t t = v->type[id];
    if (!special && (t == TOK_TYPE_CONTROL || t == TOK_TYPE_UNKNOWN)) return 0;
    size_t n = v->piece_len[id];
    if (cap) memcpy(buf, v->piece + v->piece_off[id], n < cap ? n : cap);
    return n;
}

void tok_decoder_init(tok_decoder *d) { d->n_pending = 0; }

/* Whether s[0..k) (a lead byte and k - 1 continuation bytes) can still grow into a valid
 * character: the second byte's range depends on the lead (no overlongs, surrogates or values
 * past U+10FFFF). */
static bool valid_partial(const unsigned char *s, size_t k) {
    if (k < 2) return true;
    unsigned lo = 0x80, hi = 0xBF;
    if (s[0] == 0xE0) lo = 0xA0;
    else if (s[0] == 0xED) hi = 0x9F;
    else if (s[0] == 0xF0) lo = 0x90;
    else if (s[0] == 0xF4) hi = 0x8F;
    return s[1] >= lo && s[1] <= hi;
}

/* Number of bytes at the end of s[0..n) that are an incomplete but still valid character. */
static size_t incomplete_tail(const unsigned char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned c = s[n - k];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: the lead is further back */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
        return need > k && valid_partial(s + n - k, k) ? k : 0;
    }
    return 0;
}

size_t tok_decoder_push(const tok_vocab *v, tok_decoder *d, int32_t id, bool special, char *buf, size_t cap) {
    unsigned char tmp[sizeof d->pending + TOK_MAX_PIECE];
    size_t n = d->n_pending;
    memcpy(tmp, d->pending, n);
    n += tok_piece(v, id, special, (char *)tmp + n, TOK_MAX_PIECE);
    size_t keep = incomplete_tail(tmp, n), emit = n - keep;
    memcpy(buf, tmp, emit < cap ? emit : cap);
    memcpy(d->pending, tmp + emit, keep);
    d->n_pending = keep;
    return emit;
}

size_t tok_decoder_flush(tok_decoder *d, char *buf, size_t cap) {
    size_t n = d->n_pending;
    if (cap) memcpy(buf, d->pending, n < cap ? n : cap);
    d->n_pending = 0;
    return n;
}

char *tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, bool special) {
    size_t total = 1;
    for (size_t i = 0; i < n; i++) total += tok_piece(v, ids[i], special, NULL, 0);
    char *out = malloc(total);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += tok_piece(v, ids[i], special, out + o, total - o);
    out[o] = 0;
    return out;
}
