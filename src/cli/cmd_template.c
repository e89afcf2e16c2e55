/*
 * cmd_template.c - `seek template MODEL|FILE.jinja [--messages FILE]`: renders a chat template
 * over a JSON context object (messages, tools, add_generation_prompt, bos_token, ...) read from stdin
 * or FILE, and prints the result exactly, with no newline added.  For a .gguf the template is its
 * tokenizer.chat_template, and bos_token/eos_token default to the model's own tokens when the
 * context does not give them.  Errors: "seek template: <message>" and exit status 1.
 */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/base.h"
#include "../chat/chat.h"
#include "../gguf/gguf.h"
#include "../store/store.h"

static int fail(const char *msg) {
    fprintf(stderr, "seek template: %s\n", msg);
    return 1;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Sets ctx[key] to the text of token id_key's token, unless ctx already has key. */
static void default_token(const gguf_file *g, json_t *ctx, const char *key, const char *id_key) {
    if (json_object_get(ctx, key)) return;
    uint32_t id;
    const gguf_kv *tokens = gguf_find_kv(g, "tokenizer.ggml.tokens");
    gguf_str s;
    if (!tokens || gguf_get_u32(g, id_key, &id, NULL) != 0 || gguf_arr_str(g, tokens, id, &s) != 0) return;
    json_object_set_new(ctx, key, json_stringn(s.ptr, (size_t)s.len));
}

/* The template text (malloc'd) of a .gguf or a template file. */
/* The chat template of a GGUF file, with its BOS/EOS texts as defaults in ctx. */
static char *gguf_template(const char *path, json_t *ctx, seek_err *err) {
    gguf_file *g = gguf_open(path, err);
    if (!g) return NULL;
    gguf_str s;
    char *src = NULL;
    if (gguf_get_str(g, "tokenizer.chat_template", &s, err) == 0) {
        src = malloc((size_t)s.len + 1);
        if (src) {
            memcpy(src, s.ptr, (size_t)s.len);
            src[s.len] = 0;
        } else {
            err_set(err, SEEK_ENOMEM, "out of memory");
        }
        default_token(g, ctx, "bos_token", "tokenizer.ggml.bos_token_id");
        default_token(g, ctx, "eos_token", "tokenizer.ggml.eos_token_id");
    }
    gguf_close(g);
    return src;
}

/* A template file, a .gguf file's template, or a store model's (its TEMPLATE layer, else its GGUF's). */
static char *load_template(const char *path, json_t *ctx, seek_err *err) {
    struct stat st;
    if (!ends_with(path, ".gguf") && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        size_t len;
        char *src = fs_read_all(path, &len, err);
        if (src && strlen(src) != len) {
            free(src);
            err_set(err, SEEK_EFORMAT, "%s: template contains a NUL byte", path);
            return NULL;
        }
        return src;
    }
    store_model sm;
    memset(&sm, 0, sizeof sm);
    char *src = NULL;
    if (store_resolve(NULL, path, &sm, err) == 0) {
        src = gguf_template(sm.model_path, ctx, err);
        if (src && sm.template_) {
            free(src);
            src = strdup(sm.template_);
            if (!src) err_set(err, SEEK_ENOMEM, "out of memory");
        }
    }
    store_model_free(&sm);
    return src;
}

int cmd_template(int argc, char **argv) {
    const char *path = NULL, *messages = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--messages")) {
            if (++i >= argc) return fail("--messages needs a file");
            messages = argv[i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: seek template MODEL.gguf|FILE.jinja [--messages FILE]\n"
                   "Renders the chat template over a JSON context object read from stdin (or FILE).\n");
            return 0;
        } else if (!path) {
            path = argv[i];
        } else {
            return fail("too many arguments (usage: seek template MODEL.gguf|FILE.jinja [--messages FILE])");
        }
    }
    if (!path) return fail("usage: seek template MODEL|FILE.jinja [--messages FILE]");

    json_error_t jerr;
    /* JSON_ALLOW_NUL: Python's json accepts "\u0000" inside strings, so the context may carry it */
    json_t *ctx = messages ? json_load_file(messages, JSON_ALLOW_NUL, &jerr) : json_loadf(stdin, JSON_ALLOW_NUL, &jerr);
    if (!ctx) {
        char msg[400];
        snprintf(msg, sizeof msg, "bad JSON context: %s (line %d)", jerr.text, jerr.line);
        return fail(msg);
    }
    if (!json_is_object(ctx)) {
        json_decref(ctx);
        return fail("the JSON context must be an object");
    }
    seek_err err = { 0 };
    char *src = load_template(path, ctx, &err);
    if (!src) {
        json_decref(ctx);
        return fail(err.msg);
    }
    char *out = NULL;
    jinja_tmpl *t = jinja_parse(src, strlen(src), &err);
    if (t) out = jinja_render(t, ctx, &err);
    jinja_free(t);
    free(src);
    json_decref(ctx);
    if (!out) return fail(err.msg);
    size_t n = strlen(out);
    bool ok = fwrite(out, 1, n, stdout) == n && fflush(stdout) == 0;
    free(out);
    return ok ? 0 : fail("cannot write the output");
}
