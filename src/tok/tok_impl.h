/*
 * tok_impl.h - what the files of the tok module share and nobody else sees: the tok_vocab
 * record, the byte-level alphabet, the pre-tokenizer table and the BPE merge table.
 *
 * Files: vocab.c (loading, lookups, accessors), bytelevel.c (the GPT-2 byte <-> code point
 * alphabet), pretok.c (regex pre-tokenizers), bpe.c (merge table and the merge loop),
 * encode.c (special-token splitting, the encode driver), decode.c (pieces, streaming decoder),
 * hf_convert.c (tokenizer.json -> GGUF keys).
 */
#ifndef SEEK_TOK_IMPL_H
#define SEEK_TOK_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tok.h"

/* Limits on what a vocab file may contain (anything larger is an error, not an allocation). */
#define TOK_MAX_VOCAB (1 << 24) /* tokens */
#define TOK_MAX_PIECE 256       /* decoded bytes of one token: the decoder's buffer contract */
#define TOK_MAX_TEXT 1024       /* stored bytes of one token text */
#define TOK_MAX_REGEX 4         /* regex steps of one pre-tokenizer */

/* ---- byte-level alphabet (bytelevel.c) ---- */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order, so every byte has a visible, whitespace-free stand-in.  Writes the
 * UTF-8 form of byte b's stand-in into out (1 or 2 bytes) and returns its length. */
size_t tok_bl_encode_byte(unsigned char b, char out[2]);
/* Inverse for one code point: the byte it stands for, or -1 if cp is not in the alphabet. */
int tok_bl_byte_of(uint32_t cp);
/* Decodes one UTF-8 character at s (n bytes available): its code point into *cp and its length;
 * returns 0 for an invalid or truncated sequence. */
size_t tok_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Length of the longest valid UTF-8 prefix of s (stops at the first invalid byte). */
size_t tok_utf8_valid_prefix(const unsigned char *s, size_t n);

/* ---- pre-tokenizers (pretok.c) ---- */

typedef struct {
    const char *name;               /* canonical GGUF name ("qwen2", "llama-bpe", ...) */
    int n_regex;
    const char *regex[TOK_MAX_REGEX]; /* exactly as in tokenizer.json's Split patterns */
    bool ignore_merges;             /* a pre-token that is itself a token skips the merges */
} tok_pretok_def;

/* The definition for a GGUF pre name (aliases included), or NULL if unknown. */
const tok_pretok_def *tok_pretok_find(const char *name);
/* The definition whose regex list equals regs[0..n) (escapes compared loosely: a raw CR/LF and
 * "\r"/"\n" count as the same), or NULL. */
const tok_pretok_def *tok_pretok_match(const char *const *regs, int n);

typedef struct {
    const tok_pretok_def *def;
    int n;
    pcre2_code *re[TOK_MAX_REGEX];
} tok_pretok;

int tok_pretok_init(tok_pretok *pt, const tok_pretok_def *def, seek_err *err);
void tok_pretok_deinit(tok_pretok *pt);

/* Receives one pre-token (a byte range of valid UTF-8); returns 0, or -1 to stop. */
typedef int (*tok_piece_fn)(void *ctx, const char *s, size_t n);
/* Splits valid UTF-8 text s[0..n) by every regex step in turn (HF "Isolated" behaviour: both
 * matches and the gaps between them are pieces) and calls fn on each final piece in order.
 * md must hold at least one ovector pair. */
int tok_pretok_split(const tok_pretok *pt, pcre2_match_data *md, const char *s, size_t n,
                     tok_piece_fn fn, void *ctx);

/* ---- BPE merges (bpe.c) ---- */

typedef struct {
    uint64_t key;   /* (left id << 32) | right id; 0 marks an empty slot with rank -1 */
    int32_t rank;   /* -1: empty */
    int32_t result; /* id of the merged token */
} tok_merge_slot;

typedef struct {
    tok_merge_slot *slots;
    uint64_t mask; /* capacity - 1 (capacity is a power of two) */
    int64_t n;     /* merges stored */
} tok_merges;

/* One symbol of a word being merged: a token id, linked to its neighbours. */
typedef struct tok_sym {
    int32_t id; /* -1: a byte the vocab has no token for (dropped); -2: merged away */
    int32_t prev, next;
} tok_sym;

/* A candidate merge of symbol pos with its right neighbour, valid while both still hold the
 * ids it was made for.  Candidates pop in (rank, pos) order: lowest rank, then leftmost. */
typedef struct tok_cand {
    int32_t rank, pos;
    int32_t left, right, result;
} tok_cand;

/* Per-call scratch of the merge loop, grown as needed and reused across pieces. */
typedef struct {
    tok_sym *sym;
    tok_cand *heap;
    char *bl; /* byte-level text of the piece (for the ignore_merges lookup) */
    size_t cap_sym, cap_heap, cap_bl, n_heap;
} tok_bpe_scratch;

/* ---- the vocabulary ---- */

/* One slot of the text -> id table: the id (-1 = empty), the high half of the text's hash and
 * where the text is, so a probe rejects other texts without touching the arrays and reads the
 * arena only to confirm a hit (each of those reads is a cache miss on a big vocab). */
typedef struct {
    int32_t id;
    uint32_t tag;
    uint32_t off, len;
} tok_hash_slot;

struct tok_vocab {
    int32_t n;
    char *text;          /* all token texts, each NUL-terminated */
    uint32_t *text_off;  /* (n) offset of token i's text in text */
    uint16_t *text_len;  /* (n) */
    char *piece;         /* decoded bytes of every token (byte-level undone; literal for specials) */
    uint32_t *piece_off; /* (n) */
    uint16_t *piece_len; /* (n) */
    uint8_t *type;       /* (n) enum tok_type */
    uint8_t *eog;        /* (n) 1 for end-of-generation tokens */

    tok_hash_slot *hash; /* text -> id, open addressing (linear probing) */
    uint64_t hash_mask;

    tok_merges merges;
    int32_t byte_tok[256]; /* id of the one-byte token of each byte, -1 if the vocab lacks it */

    /* special tokens (control, unknown, user-defined) for splitting, grouped by first byte and
     * longest first within a group: ids sp_ids[sp_first[b] .. sp_first[b + 1]) */
    int32_t *sp_ids;
    uint32_t sp_first[257];

    tok_pretok pre;
    char pre_name[64];
    int32_t bos, eos, eot, eom, pad;
    bool add_bos, add_eos;
};

/* Hash of a byte string; tok_hash_more continues it, so hash(a + b) = more(hash(a), b). */
uint64_t tok_hash_more(uint64_t h, const char *s, size_t n);
#define TOK_HASH_SEED 0xcbf29ce484222325ull
/* Id of the token whose stored text is s[0..n), or -1. */
int32_t tok_find_n(const tok_vocab *v, const char *s, size_t n);
/* Same for the text a[0..na) + b[0..nb) whose hash h is known. */
int32_t tok_find_hashed(const tok_vocab *v, uint64_t h, const char *a, size_t na, const char *b, size_t nb);
/* Prefetch what a lookup of hash h reads, for the loader's batched lookups: first the slot,
 * then (once the slot is in cache) the text of the slot's token. */
void tok_find_prefetch_slot(const tok_vocab *v, uint64_t h);
void tok_find_prefetch_text(const tok_vocab *v, uint64_t h);

int tok_merges_build(tok_vocab *v, const gguf_file *g, const gguf_kv *kv, seek_err *err);
void tok_merges_free(tok_merges *m);
/* Appends the BPE tokens of one pre-token (raw bytes) to out; returns 0 or -1 on allocation. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} tok_ids;
int tok_ids_push(tok_ids *o, int32_t id);
int tok_bpe_piece(const tok_vocab *v, tok_bpe_scratch *sc, const char *s, size_t n, tok_ids *out);
void tok_bpe_scratch_free(tok_bpe_scratch *sc);

#endif
