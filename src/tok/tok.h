/*
 * tok.h - byte-level BPE tokenizer (the GPT-2 family that Qwen2 and Llama-3 use), loaded from GGUF
 * metadata, and the converter that turns a Hugging Face tokenizer.json into that metadata.
 *
 * GGUF keys read (llama.cpp's names):
 *   tokenizer.ggml.model           "gpt2" (byte-level BPE; anything else is an error naming the model)
 *   tokenizer.ggml.pre             pre-tokenizer name: "qwen2", "deepseek-r1-qwen", "llama-bpe", "llama3",
 *                                  "deepseek-v3", "gpt2", "default", ... (unknown names are an error)
 *   tokenizer.ggml.tokens          [string] token text in byte-level form (bytes mapped to printable
 *                                  code points, e.g. ' ' -> U+0120 'Ġ'); id = index
 *   tokenizer.ggml.token_type      [i32] 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
 *   tokenizer.ggml.merges          [string] "left right" pairs; rank = index (lower merges first)
 *   tokenizer.ggml.bos_token_id, eos_token_id, eot_token_id, eom_token_id, padding_token_id (u32, optional)
 *   tokenizer.ggml.add_bos_token, add_eos_token (bool, optional)
 *
 * Encoding: special tokens are split out of the text first (leftmost match, longest at a position):
 * user-defined tokens (HF added tokens with "special": false, e.g. Qwen3's <think>) always, as both
 * Hugging Face and llama.cpp do; control tokens only when parse_special is set (HF always splits
 * them; llama.cpp and seek only when asked, so user text cannot forge <|im_start|>).  Each remaining
 * fragment is pre-split by the pre-tokenizer's regexes (PCRE2, Unicode classes), each piece is mapped
 * to byte-level text and merged by BPE rank; for llama-bpe / llama3 a piece that is itself a token
 * skips the merges (tokenizer.json's "ignore_merges": true).  No Unicode normalization is done (Qwen's
 * tokenizer.json asks for NFC; llama.cpp does not apply it either): NFC text tokenizes exactly as
 * in HF.  Decoding maps byte-level text back to raw bytes; control tokens decode to their text only
 * when asked (tok_piece's `special`), user-defined tokens always.
 *
 * A tok_vocab is immutable after loading and safe to share between threads.
 */
#ifndef SEEK_TOK_H
#define SEEK_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/base.h"
#include "../gguf/gguf.h"

typedef struct tok_vocab tok_vocab;

enum tok_type {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4,
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6,
};

/* Loads the vocabulary from a GGUF file's metadata (tensors are not needed: a vocab-only GGUF works).
 * Returns NULL with err set on missing/invalid keys.  The vocab copies what it needs; g may be closed
 * afterwards.  Free with tok_free. */
tok_vocab *tok_load_gguf(const gguf_file *g, seek_err *err);
void tok_free(tok_vocab *v);

int32_t tok_n_vocab(const tok_vocab *v);
int32_t tok_bos(const tok_vocab *v);      /* -1 when the vocab has none */
int32_t tok_eos(const tok_vocab *v);      /* -1 when none */
int32_t tok_eot(const tok_vocab *v);      /* -1 when none */
bool tok_add_bos(const tok_vocab *v);     /* tokenizer.ggml.add_bos_token (default: false for gpt2) */
const char *tok_pre_name(const tok_vocab *v);
/* True for tokens that end generation: eos, eot, eom, and control tokens whose text is one of the
 * usual end markers (<|im_end|>, <|eot_id|>, <|end_of_text|>, <｜end▁of▁sentence｜>, <end_of_turn>, ...). */
bool tok_is_eog(const tok_vocab *v, int32_t id);
enum tok_type tok_get_type(const tok_vocab *v, int32_t id);
/* Token text as stored in the vocab (byte-level form), NUL-terminated; NULL for out-of-range ids. */
const char *tok_text(const tok_vocab *v, int32_t id);
/* Id of the token whose stored text is exactly `text` (byte-level form for normal tokens, literal for
 * special tokens), or -1. */
int32_t tok_find(const tok_vocab *v, const char *text);

/* Encodes len bytes of text.  add_bos prepends BOS (when the vocab has one); parse_special splits
 * special-token text out as single tokens, otherwise that text is tokenized as plain text.  Invalid
 * UTF-8 is tokenized byte by byte, never rejected.  On success *out is a malloc'd array owned by the
 * caller (free()) and *n_out its length; returns 0, or -1 with err set only on allocation failure. */
int tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special,
               int32_t **out, size_t *n_out, seek_err *err);

/* Raw bytes of one token into buf (cap bytes); returns the byte count (which may exceed cap: then
 * nothing beyond cap was written).  Control tokens give their text only if `special`, else 0 bytes. */
size_t tok_piece(const tok_vocab *v, int32_t id, bool special, char *buf, size_t cap);

/* Streaming decoder: holds back the bytes of an incomplete UTF-8 character until a later token
 * completes it, so every emitted chunk is whole characters (an invalid sequence is flushed as is
 * once it can no longer become valid).  Embedded, no allocation. */
typedef struct {
    char pending[8];
    size_t n_pending;
} tok_decoder;

void tok_decoder_init(tok_decoder *d);
/* Appends token id's bytes; writes the complete characters now available into buf (cap must be at
 * least 256 + 8) and returns their count. */
size_t tok_decoder_push(const tok_vocab *v, tok_decoder *d, int32_t id, bool special, char *buf, size_t cap);
/* Whatever is still held back (an incomplete character at the end of output). */
size_t tok_decoder_flush(tok_decoder *d, char *buf, size_t cap);

/* Detokenizes a whole sequence into a malloc'd NUL-terminated string (caller frees). */
char *tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, bool special);

/* ---- tokenizer.json -> GGUF metadata (hf_convert.c) ---- */

/* Reads a Hugging Face tokenizer.json (model type BPE, byte-level) and, when given,
 * tokenizer_config.json (bos/eos/pad tokens, add_bos_token, chat_template), and sets the tokenizer.*
 * keys above on w, plus tokenizer.chat_template.  The pre-tokenizer name is recognized from the
 * pre_tokenizer's regexes (llama.cpp's names); an unrecognized pre-tokenizer is an error that names it.
 * Added tokens become control (special: true) or user-defined (special: false) tokens.  *n_vocab_out
 * gets the vocabulary size (max id + 1). config_path may be NULL.  Returns 0, or -1 with err set. */
int tok_convert_hf(const char *tokenizer_json_path, const char *config_path, gguf_writer *w,
                   int32_t *n_vocab_out, seek_err *err);
/* The same with the token list padded by "[PAD<id>]" unused tokens up to pad_to entries (the
 * rows of the model's embedding, which may exceed the tokenizer's ids: Qwen2 has 151936 rows for
 * 151665 tokens).  pad_to <= the tokenizer's own size means no padding. */
int tok_convert_hf_padded(const char *tokenizer_json_path, const char *config_path, gguf_writer *w,
                          int32_t pad_to, int32_t *n_vocab_out, seek_err *err);

#endif
