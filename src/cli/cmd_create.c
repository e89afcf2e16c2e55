/*
 * cmd_create.c - `seek create NAME [-f Modelfile] [-q|--quantize TYPE]`: parses the Modelfile
 * and hands it to store_create, printing its status lines the way `ollama create` does
 * ("gathering model components", "copying file sha256:... 100%", ..., "success") on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../store/quantize.h"
#include "../store/store.h"
#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: seek create NAME [-f Modelfile] [-q TYPE]\n"
            "  -f FILE          the Modelfile (default: ./Modelfile)\n"
            "  -q, --quantize T quantize an F32/F16/BF16 model first (Q4_K_M, Q8_0, ...)\n"
            "  -t N             threads for quantizing and converting (default: all CPUs)\n"
            "The model store is $SEEK_MODELS (default ~/.seek/models).\n");
}

/* Status lines: one per step; the copy shows a live percentage on a terminal. */
static void progress(void *ctx, const char *status, const char *digest, uint64_t done, uint64_t total) {
    bool tty = *(bool *)ctx;
    if (strcmp(status, "copying file") == 0) {
        if (!digest) {
            if (tty && total) fprintf(stderr, "\rcopying file %3d%% ", (int)(100.0 * (double)done / (double)total));
            return;
        }
        fprintf(stderr, "%scopying file %s 100%%\n", tty ? "\r" : "", digest);
        return;
    }
    if (digest) fprintf(stderr, "%s %s\n", status, digest);
    else fprintf(stderr, "%s\n", status);
}

/* The directory part of path ("." when it has none); caller frees. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int run(const char *name_arg, const char *file, const store_create_opts *base) {
    seek_err err = { 0 };
    store_name name;
    if (store_name_parse(name_arg, &name, &err)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    size_t len;
    char *text = fs_read_all(file, &len, &err);
    if (!text) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    store_modelfile mf;
    int rc = store_modelfile_parse(text, &mf, &err);
    free(text);
    if (rc) {
        fprintf(stderr, "Error: %s: %s\n", file, err.msg);
        return 1;
    }
    for (int i = 0; i < mf.n_warnings; i++) fprintf(stderr, "warning: %s\n", mf.warnings[i]);
    store *s = store_open(NULL, &err);
    char *dir = dir_of(file);
    bool tty = isatty(2);
    store_create_opts opts = *base;
    opts.dir = dir, opts.progress = progress, opts.ctx = &tty;
    rc = s && dir ? store_create(s, &name, &mf, &opts, &err) : -1;
    if (rc) fprintf(stderr, "%sError: %s\n", tty ? "\n" : "", err.msg);
    free(dir);
    store_close(s);
    store_modelfile_free(&mf);
    return rc ? 1 : 0;
}

int cmd_create(int argc, char **argv) {
    const char *name = NULL, *file = NULL;
    store_create_opts opts = { 0 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has_val) {
            file = argv[++i];
        } else if ((!strcmp(a, "-q") || !strcmp(a, "--quantize")) && has_val) {
            opts.quantize = argv[++i];
        } else if (!strcmp(a, "-t") && has_val) {
            long n = cli_parse_count(a, argv[++i], 1024);
            if (n < 0) return 1;
            opts.n_threads = (int)n;
        } else if (a[0] == '-' || name) {
            fprintf(stderr, a[0] == '-' ? "Error: unknown option or missing value: %s\n" : "Error: unexpected argument: %s\n", a);
            usage(stderr);
            return 1;
        } else {
            name = a;
        }
    }
    if (!name) {
        usage(stderr);
        return 1;
    }
    if (opts.quantize && !store_mix_find(opts.quantize)) {
        fprintf(stderr, "Error: unknown quantization type '%s' (try Q4_K_M, Q8_0, Q6_K, ...)\n", opts.quantize);
        return 1;
    }
    if (!file) {
        if (access("Modelfile", R_OK) != 0) {
            fprintf(stderr, "Error: no Modelfile in the current directory (give one with -f FILE)\n");
            return 1;
        }
        file = "Modelfile";
    }
    return run(name, file, &opts);
}
