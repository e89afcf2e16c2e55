/*
 * main.c - the seek command: dispatches to a subcommand.  The only place in seek that exits.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/base.h"
#include "../store/store.h"

#define SEEK_VERSION "0.1.0"
const char *const cli_version = SEEK_VERSION;

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    { "logits", cmd_logits, "MODEL --tokens \"1 2 3\" --out F   write float32 logits per position" },
    { "bench", cmd_bench, "MODEL [-p N] [-n N] [-t T] [-r R] [--json]  prompt and generation speed" },
    { "quantize", cmd_quantize, "IN.gguf OUT.gguf TYPE [-t T]   quantize (Q4_K_M, Q8_0, ...)" },
    { "fit", cmd_fit, "[--ctx N] [--parallel P] [MODEL...]   which model fits this machine, how fast" },
    { "run", cmd_run, "MODEL [PROMPT]   chat with a model (REPL without PROMPT)" },
    { "show", cmd_show, "MODEL|FILE.gguf [--modelfile|--parameters|--template|--system|--license]" },
    { "create", cmd_create, "NAME [-f Modelfile] [-q TYPE]   create a model in the store" },
    { "list", cmd_list, "list the models in the store ($SEEK_MODELS, default ~/.seek/models)" },
    { "ls", cmd_list, "same as list" },
    { "cp", cmd_cp, "SRC DST   copy a model" },
    { "rm", cmd_rm, "NAME...   remove models (and the blobs no other model uses)" },
    { "serve", cmd_serve, "start the HTTP API (Ollama's and OpenAI's) on $SEEK_HOST (127.0.0.1:11434)" },
    { "pull", cmd_pull, "NAME [--insecure]   download a model from a registry (resumable)" },
    { "push", cmd_push, "NAME [--insecure]   upload a model to a registry" },
    { "tokenize", cmd_tokenize, "MODEL [--bos] [--special]   token ids of stdin's text" },
    { "template", cmd_template, "MODEL|FILE.jinja   render a chat template over JSON from stdin" },
    { "convert", cmd_convert, "HF_DIR -o OUT.gguf [--vocab-only]   Hugging Face checkpoint to GGUF" },
};

static void usage(FILE *out) {
    fprintf(out, "seek %s - run DeepSeek-R1 models locally\n\nUsage: seek COMMAND [ARGS]\n\nCommands:\n", SEEK_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nEnvironment: SEEK_ISA=scalar|avx2|avx512 forces a kernel set.\n");
}

char *cli_model_path(const char *cmd, const char *arg) {
    store_model sm;
    memset(&sm, 0, sizeof sm);
    seek_err err = { 0 };
    if (store_resolve(NULL, arg, &sm, &err) != 0) {
        fprintf(stderr, "seek %s: %s\n", cmd, err.msg);
        store_model_free(&sm);
        return NULL;
    }
    char *path = sm.model_path;
    sm.model_path = NULL;
    store_model_free(&sm);
    return path;
}

char *cli_read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap) break;
        char *p = realloc(buf, (cap *= 2) + 1);
        if (!p) free(buf);
        buf = p;
    }
    if (buf && ferror(stdin)) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
}

long cli_parse_count(const char *opt, const char *val, long max) {
    if (!val) {
        fprintf(stderr, "seek: %s needs a value\n", opt);
        return -1;
    }
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || *end || end == val || v < 1 || v > max) {
        fprintf(stderr, "seek: %s: '%s' is not a number between 1 and %ld\n", opt, val, max);
        return -1;
    }
    return v;
}

int main(int argc, char **argv) {
    base_init();
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("seek version %s\n", SEEK_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) exit(commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "seek: unknown command '%s' (try 'seek --help')\n", argv[1]);
    return 2;
}
