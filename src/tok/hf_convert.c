/*
 * hf_convert.c - a Hugging Face tokenizer.json (+ tokenizer_config.json) -> tokenizer.* GGUF keys.
 *
 * What it reads:
 *   tokenizer.json     model (type BPE): vocab {text: id}, merges ("a b" strings or [a, b] pairs),
 *                      ignore_merges; added_tokens [{id, content, special}]; pre_tokenizer (a
 *                      Sequence of Split + ByteLevel, or ByteLevel with use_regex), recognized by
 *                      its regexes (pretok.c has the known ones); normalizer (none, or NFC, which
 *                      seek does not apply, like llama.cpp); post_processor (does it add BOS?).
 *   tokenizer_config   bos/eos/pad tokens (strings or {content: ...}), add_bos_token,
 *                      add_eos_token, chat_template (a string, or [{name, template}]: "default").
 * What it writes is what vocab.c reads (tok.h lists the keys), the way llama.cpp's converter
 * does it: the vocab has max id + 1 entries (or more when the model's embedding has more rows:
 * tok_convert_hf_padded), holes become "[PAD<id>]" tokens of type unused;
 * added tokens are control (special) or user-defined (not special) tokens with their literal
 * text; all others are normal tokens in byte-level form.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

#define R1_BOS "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"

typedef struct {
    const char *path; /* tokenizer.json, for messages */
    json_t *tj, *cfg;
    json_t *vocab, *added;
    int32_t n;
    const char **text; /* (n) token text: into tj, or into owned */
    int32_t *type;     /* (n) */
    char **owned;      /* strings this converter made ([PAD..] texts, joined merges) */
    size_t n_owned, cap_owned;
    const char **merges;
    size_t n_merges;
    const char *pre;
} conv;

static char *own(conv *c, char *s) {
    if (!s) return NULL;
    if (c->n_owned == c->cap_owned) {
        size_t cap = c->cap_owned ? 2 * c->cap_owned : 1024;
        char **p = realloc(c->owned, cap * sizeof *p);
        if (!p) {
            free(s);
            return NULL;
        }
        c->owned = p, c->cap_owned = cap;
    }
    return c->owned[c->n_owned++] = s;
}

static void conv_free(conv *c) {
    for (size_t i = 0; i < c->n_owned; i++) free(c->owned[i]);
    free(c->owned);
    free(c->text);
    free(c->type);
    free(c->merges);
    if (c->tj) json_decref(c->tj);
    if (c->cfg) json_decref(c->cfg);
}

/* flags: JSON_DECODE_INT_AS_REAL for tokenizer_config.json, whose model_max_length may be
 * 1e30 (we read no integer from it) */
static json_t *load_json(const char *path, size_t flags, seek_err *err) {
    json_error_t je;
    json_t *j = json_load_file(path, flags, &je);
    if (!j) err_set(err, SEEK_EFORMAT, "%s:%d: %s", path, je.line, je.text);
    else if (!json_is_object(j)) {
        json_decref(j);
        j = NULL;
        err_set(err, SEEK_EFORMAT, "%s: not a JSON object", path);
    }
    return j;
}

/* A JSON string usable as a C string (no embedded NUL), or NULL. */
static const char *json_cstr(const json_t *j) {
    if (!json_is_string(j)) return NULL;
    const char *s = json_string_value(j);
    return strlen(s) == json_string_length(j) ? s : NULL;
}

/* ---- vocabulary ---- */

static int check_id(conv *c, json_int_t id, const char *what, seek_err *err) {
    if (id < 0 || id >= TOK_MAX_VOCAB)
        return err_set(err, SEEK_EFORMAT, "%s: %s has id %lld (0..%d allowed)", c->path, what, (long long)id,
                       TOK_MAX_VOCAB - 1);
    return 0;
}

static int read_model(conv *c, seek_err *err) {
    json_t *model = json_object_get(c->tj, "model");
    if (!json_is_object(model)) return err_set(err, SEEK_EFORMAT, "%s: no \"model\" object", c->path);
    const char *type = json_cstr(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE"))
        return err_set(err, SEEK_EUNSUP, "%s: model type %s is not supported (only byte-level BPE)", c->path, type);
    if (json_is_true(json_object_get(model, "byte_fallback")))
        return err_set(err, SEEK_EUNSUP, "%s: BPE with byte_fallback (SentencePiece style) is not supported", c->path);
    c->vocab = json_object_get(model, "vocab");
    if (!json_is_object(c->vocab)) return err_set(err, SEEK_EFORMAT, "%s: model.vocab is not an object", c->path);
    c->added = json_object_get(c->tj, "added_tokens");
    if (c->added && !json_is_array(c->added) && !json_is_null(c->added))
        return err_set(err, SEEK_EFORMAT, "%s: added_tokens is not an array", c->path);
    return 0;
}

/* Vocabulary size: max id + 1 over the vocab and the added tokens. */
static int count_ids(conv *c, seek_err *err) {
    json_int_t max = -1;
    const char *key;
    json_t *val;
    json_object_foreach(c->vocab, key, val) {
        if (!json_is_integer(val))
            return err_set(err, SEEK_EFORMAT, "%s: vocab entry '%s' has no integer id", c->path, key);
        if (check_id(c, json_integer_value(val), key, err) < 0) return -1;
        if (json_integer_value(val) > max) max = json_integer_value(val);
    }
    size_t i;
    json_t *a;
    json_array_foreach(c->added, i, a) {
        json_t *id = json_object_get(a, "id");
        if (!json_is_integer(id) || !json_cstr(json_object_get(a, "content")))
            return err_set(err, SEEK_EFORMAT, "%s: added_tokens[%zu] needs an integer id and a string content",
                           c->path, i);
        if (check_id(c, json_integer_value(id), "an added token", err) < 0) return -1;
        if (json_integer_value(id) > max) max = json_integer_value(id);
    }
    if (max < 0) return err_set(err, SEEK_EFORMAT, "%s: the vocabulary is empty", c->path);
    if (c->n < (int32_t)max + 1) c->n = (int32_t)max + 1; /* c->n holds the padded size, if larger */
    return 0;
}

static int set_token(conv *c, int32_t id, const char *text, int32_t type, seek_err *err) {
    if (strlen(text) > TOK_MAX_TEXT)
        return err_set(err, SEEK_EFORMAT, "%s: token %d is longer than %d bytes", c->path, id, TOK_MAX_TEXT);
    c->text[id] = text;
    c->type[id] = type;
    return 0;
}

static int fill_tokens(conv *c, seek_err *err) {
    c->text = calloc((size_t)c->n, sizeof *c->text);
    c->type = calloc((size_t)c->n, sizeof *c->type);
    if (!c->text || !c->type) return err_set(err, SEEK_ENOMEM, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(c->vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        if (c->text[id])
            return err_set(err, SEEK_EFORMAT, "%s: id %d is used by '%s' and '%s'", c->path, id, c->text[id], key);
        if (set_token(c, id, key, TOK_TYPE_NORMAL, err) < 0) return -1;
    }
    /* added tokens take their id over from a vocab entry (HF does the same) */
    bool *seen = calloc((size_t)c->n, 1);
    if (!seen) return err_set(err, SEEK_ENOMEM, "out of memory");
    size_t i;
    json_t *a;
    json_array_foreach(c->added, i, a) {
        int32_t id = (int32_t)json_integer_value(json_object_get(a, "id"));
        bool special = json_is_true(json_object_get(a, "special"));
        if (seen[id]) {
            free(seen);
            return err_set(err, SEEK_EFORMAT, "%s: two added tokens have id %d", c->path, id);
        }
        seen[id] = true;
        if (set_token(c, id, json_cstr(json_object_get(a, "content")),
                      special ? TOK_TYPE_CONTROL : TOK_TYPE_USER_DEFINED, err) < 0) {
            free(seen);
            return -1;
        }
    }
    free(seen);
    for (int32_t id = 0; id < c->n; id++) {
        if (c->text[id]) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "[PAD%d]", id);
        const char *t = own(c, strdup(buf));
        if (!t) return err_set(err, SEEK_ENOMEM, "out of memory");
        set_token(c, id, t, TOK_TYPE_UNUSED, err);
    }
    return 0;
}

static int read_merges(conv *c, seek_err *err) {
    json_t *m = json_object_get(json_object_get(c->tj, "model"), "merges");
    if (!json_is_array(m)) return err_set(err, SEEK_EFORMAT, "%s: model.merges is not an array", c->path);
    c->n_merges = json_array_size(m);
    c->merges = malloc((c->n_merges ? c->n_merges : 1) * sizeof *c->merges);
    if (!c->merges) return err_set(err, SEEK_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->n_merges; i++) {
        json_t *e = json_array_get(m, i);
        const char *s = json_cstr(e);
        if (!s && json_is_array(e) && json_array_size(e) == 2) { /* newer files: ["a", "b"] */
            const char *l = json_cstr(json_array_get(e, 0)), *r = json_cstr(json_array_get(e, 1));
            if (l && r) {
                size_t nl = strlen(l), nr = strlen(r);
                char *j = own(c, malloc(nl + nr + 2));
                if (!j) return err_set(err, SEEK_ENOMEM, "out of memory");
                memcpy(j, l, nl);
                j[nl] = ' ';
                memcpy(j + nl + 1, r, nr + 1);
                s = j;
            }
        }
        if (!s || !strchr(s, ' '))
            return err_set(err, SEEK_EFORMAT, "%s: merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", c->path, i);
        c->merges[i] = s;
    }
    return 0;
}

static int32_t find_text(const conv *c, const char *s);

/* ---- pre-tokenizer ---- */

static int check_normalizer(conv *c, seek_err *err) {
    json_t *nz = json_object_get(c->tj, "normalizer");
    if (!nz || json_is_null(nz)) return 0;
    const char *t = json_cstr(json_object_get(nz, "type"));
    if (t && !strcmp(t, "NFC")) {
        log_info("%s: NFC normalization is not applied by seek (nor by llama.cpp)", c->path);
        return 0;
    }
    return err_set(err, SEEK_EUNSUP, "%s: normalizer %s is not supported", c->path, t ? t : "(unnamed)");
}

/* Adds the regexes of one pre-tokenizer step to regs (ByteLevel with use_regex adds GPT-2's). */
static int collect_step(conv *c, json_t *st, const char **regs, int *n, seek_err *err) {
    const char *t = json_cstr(json_object_get(st, "type"));
    if (!t) return err_set(err, SEEK_EFORMAT, "%s: a pre-tokenizer step has no type", c->path);
    if (!strcmp(t, "ByteLevel")) {
        if (json_is_true(json_object_get(st, "add_prefix_space")))
            return err_set(err, SEEK_EUNSUP, "%s: ByteLevel add_prefix_space is not supported", c->path);
        json_t *ur = json_object_get(st, "use_regex");
        if (ur && !json_is_true(ur)) return 0;
        if (*n == TOK_MAX_REGEX) return err_set(err, SEEK_EUNSUP, "%s: too many pre-tokenizer steps", c->path);
        regs[(*n)++] = tok_pretok_find("gpt2")->regex[0];
        return 0;
    }
    if (strcmp(t, "Split")) return err_set(err, SEEK_EUNSUP, "%s: pre-tokenizer %s is not supported", c->path, t);
    const char *re = json_cstr(json_object_get(json_object_get(st, "pattern"), "Regex"));
    const char *beh = json_cstr(json_object_get(st, "behavior"));
    if (!re)
        return err_set(err, SEEK_EUNSUP, "%s: a Split pre-tokenizer without a Regex pattern is not supported", c->path);
    if (!beh || strcmp(beh, "Isolated") || json_is_true(json_object_get(st, "invert")))
        return err_set(err, SEEK_EUNSUP, "%s: Split behavior %s (or invert) is not supported", c->path,
                       beh ? beh : "?");
    if (*n == TOK_MAX_REGEX) return err_set(err, SEEK_EUNSUP, "%s: too many pre-tokenizer steps", c->path);
    regs[(*n)++] = re;
    return 0;
}

static int detect_pre(conv *c, seek_err *err) {
    json_t *pt = json_object_get(c->tj, "pre_tokenizer");
    const char *t = json_cstr(json_object_get(pt, "type"));
    if (!t) return err_set(err, SEEK_EUNSUP, "%s: no pre_tokenizer (not a byte-level BPE tokenizer)", c->path);
    const char *regs[TOK_MAX_REGEX];
    int n = 0;
    if (!strcmp(t, "Sequence")) {
        size_t i;
        json_t *st;
        json_array_foreach(json_object_get(pt, "pretokenizers"), i, st)
            if (collect_step(c, st, regs, &n, err) < 0) return -1;
    } else if (collect_step(c, pt, regs, &n, err) < 0) {
        return -1;
    }
    if (n == 0) return err_set(err, SEEK_EUNSUP, "%s: the pre-tokenizer has no regex", c->path);
    const tok_pretok_def *d = tok_pretok_match(regs, n);
    if (!d) {
        return err_set(err, SEEK_EUNSUP, "%s: unrecognized pre-tokenizer (%d regex step%s, first: %.200s)", c->path,
                       n, n > 1 ? "s" : "", regs[0]);
    }
    c->pre = d->name;
    /* the DeepSeek-R1 distills of Qwen keep Qwen's regex; llama.cpp names them apart */
    if (!strcmp(d->name, "qwen2") && find_text(c, R1_BOS) >= 0) c->pre = "deepseek-r1-qwen";
    bool im = json_is_true(json_object_get(json_object_get(c->tj, "model"), "ignore_merges"));
    if (im != d->ignore_merges)
        log_warn("%s: ignore_merges is %s but seek's %s pre-tokenizer %s it", c->path, im ? "true" : "false",
                 d->name, d->ignore_merges ? "applies" : "does not apply");
    return 0;
}

/* ---- special tokens and tokenizer_config.json ---- */

static int32_t find_text(const conv *c, const char *s) {
    for (int32_t id = c->n - 1; id >= 0; id--) /* added tokens sit at the end */
        if (c->type[id] != TOK_TYPE_NORMAL && !strcmp(c->text[id], s)) return id;
    json_t *id = json_object_get(c->vocab, s);
    return json_is_integer(id) ? (int32_t)json_integer_value(id) : -1;
}

/* Text of a config token entry: "text" or {"content": "text"}; NULL when absent or null. */
static const char *cfg_token(const conv *c, const char *key) {
    json_t *j = c->cfg ? json_object_get(c->cfg, key) : NULL;
    if (json_is_object(j)) j = json_object_get(j, "content");
    return json_cstr(j);
}

static int set_id(gguf_writer *w, const conv *c, const char *key, const char *text) {
    if (!text) return 0;
    int32_t id = find_text(c, text);
    if (id < 0) {
        log_warn("%s: %s '%s' is not in the vocabulary; not set", c->path, key, text);
        return 0;
    }
    return gguf_writer_set_u32(w, key, (uint32_t)id);
}

/* Whether the post_processor's TemplateProcessing for single sequences starts with (first) or
 * ends with (!first) a special token of text tok. */
static bool template_adds(const json_t *pp, const char *tok, bool first) {
    if (!tok || !json_is_object(pp)) return false;
    const char *t = json_cstr(json_object_get(pp, "type"));
    if (t && !strcmp(t, "Sequence")) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(pp, "processors"), i, p)
            if (template_adds(p, tok, first)) return true;
        return false;
    }
    if (!t || strcmp(t, "TemplateProcessing")) return false;
    json_t *single = json_object_get(pp, "single");
    size_t n = json_array_size(single);
    if (!n) return false;
    json_t *e = json_object_get(json_array_get(single, first ? 0 : n - 1), "SpecialToken");
    const char *id = json_cstr(json_object_get(e, "id"));
    return id && !strcmp(id, tok);
}

static int add_flag(gguf_writer *w, const conv *c, const char *key, const char *cfg_key, const char *tok, bool first) {
    json_t *j = c->cfg ? json_object_get(c->cfg, cfg_key) : NULL;
    bool v = json_is_boolean(j) ? json_is_true(j) : template_adds(json_object_get(c->tj, "post_processor"), tok, first);
    return gguf_writer_set_bool(w, key, v);
}

static const char *chat_template(const conv *c) {
    json_t *t = c->cfg ? json_object_get(c->cfg, "chat_template") : NULL;
    if (json_is_string(t)) return json_cstr(t);
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e) {
        const char *name = json_cstr(json_object_get(e, "name"));
        if (name && !strcmp(name, "default")) return json_cstr(json_object_get(e, "template"));
    }
    if (json_is_object(t)) return json_cstr(json_object_get(t, "default"));
    if (t && !json_is_null(t)) log_warn("%s: chat_template has no \"default\" entry; none written", c->path);
    return NULL;
}

static int write_keys(conv *c, gguf_writer *w, seek_err *err) {
    const char *bos = cfg_token(c, "bos_token"), *eos = cfg_token(c, "eos_token");
    const char *eot = find_text(c, "<|eot_id|>") >= 0 ? "<|eot_id|>"
                      : find_text(c, "<|im_end|>") >= 0 ? "<|im_end|>" : NULL;
    const char *eom = find_text(c, "<|eom_id|>") >= 0 ? "<|eom_id|>" : NULL;
    const char *tmpl = chat_template(c);
    int rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    rc |= gguf_writer_set_str(w, "tokenizer.ggml.pre", c->pre);
    rc |= gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", c->text, (uint64_t)c->n);
    rc |= gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, c->type, (uint64_t)c->n);
    rc |= gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", c->merges, c->n_merges);
    rc |= set_id(w, c, "tokenizer.ggml.bos_token_id", bos);
    rc |= set_id(w, c, "tokenizer.ggml.eos_token_id", eos);
    rc |= set_id(w, c, "tokenizer.ggml.eot_token_id", eot);
    rc |= set_id(w, c, "tokenizer.ggml.eom_token_id", eom);
    rc |= set_id(w, c, "tokenizer.ggml.padding_token_id", cfg_token(c, "pad_token"));
    rc |= add_flag(w, c, "tokenizer.ggml.add_bos_token", "add_bos_token", bos, true);
    rc |= add_flag(w, c, "tokenizer.ggml.add_eos_token", "add_eos_token", eos, false);
    if (tmpl) rc |= gguf_writer_set_str(w, "tokenizer.chat_template", tmpl);
    return rc ? err_set(err, SEEK_ENOMEM, "out of memory") : 0;
}

int tok_convert_hf(const char *tokenizer_json_path, const char *config_path, gguf_writer *w,
                   int32_t *n_vocab_out, seek_err *err) {
    return tok_convert_hf_padded(tokenizer_json_path, config_path, w, 0, n_vocab_out, err);
}

int tok_convert_hf_padded(const char *tokenizer_json_path, const char *config_path, gguf_writer *w,
                          int32_t pad_to, int32_t *n_vocab_out, seek_err *err) {
    conv c = { .path = tokenizer_json_path };
    int rc = -1;
    if (pad_to > TOK_MAX_VOCAB)
        return err_set(err, SEEK_EINVAL, "%s: cannot pad the vocabulary to %d tokens (limit %d)",
                       tokenizer_json_path, pad_to, TOK_MAX_VOCAB);
    c.n = pad_to > 0 ? pad_to : 0;
    c.tj = load_json(tokenizer_json_path, 0, err);
    if (!c.tj) goto done;
    if (config_path && !(c.cfg = load_json(config_path, JSON_DECODE_INT_AS_REAL, err))) goto done;
    if (read_model(&c, err) < 0 || check_normalizer(&c, err) < 0 || count_ids(&c, err) < 0 ||
        fill_tokens(&c, err) < 0 || read_merges(&c, err) < 0 || detect_pre(&c, err) < 0 || write_keys(&c, w, err) < 0)
        goto done;
    if (n_vocab_out) *n_vocab_out = c.n;
    rc = 0;
done:
    conv_free(&c);
    return rc;
}
