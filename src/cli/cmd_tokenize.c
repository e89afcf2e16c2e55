/*
 * cmd_tokenize.c - `seek tokenize MODEL [--bos] [--special]`: the token ids of stdin's text.
 *
 * All of stdin is one text (bytes as they are: no newline is stripped); the ids go to stdout on
 * one line, space separated.  By default no BOS is added and special-token text (<|im_start|>)
 * is tokenized as plain text; --bos and --special turn those on.  MODEL is a GGUF file (a
 * vocab-only one, tokenizer metadata without tensors, is enough) or a store name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../gguf/gguf.h"
#include "../tok/tok.h"
#include "cli.h"

static int usage(void) {
    fprintf(stderr, "usage: seek tokenize MODEL.gguf [--bos] [--special] < text\n");
    return 2;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    bool bos = false, special = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bos")) bos = true;
        else if (!strcmp(argv[i], "--special")) special = true;
        else if (argv[i][0] == '-' || model) return usage();
        else model = argv[i];
    }
    if (!model) return usage();
    char *path = cli_model_path("tokenize", model);
    if (!path) return 1;
    seek_err err = { 0 };
    gguf_file *g = gguf_open(path, &err);
    free(path);
    tok_vocab *v = g ? tok_load_gguf(g, &err) : NULL;
    if (g) gguf_close(g);
    if (!v) {
        fprintf(stderr, "seek tokenize: %s: %s\n", model, err.msg);
        return 1;
    }
    size_t len, n = 0;
    int32_t *ids = NULL;
    char *text = cli_read_stdin(&len);
    int rc = 1;
    if (!text) {
        fprintf(stderr, "seek tokenize: cannot read stdin\n");
    } else if (tok_encode(v, text, len, bos, special, &ids, &n, &err) < 0) {
        fprintf(stderr, "seek tokenize: %s\n", err.msg);
    } else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        rc = fflush(stdout) ? 1 : 0;
    }
    free(ids);
    free(text);
    tok_free(v);
    return rc;
}
