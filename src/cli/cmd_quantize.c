/*
 * cmd_quantize.c - `seek quantize IN.gguf OUT.gguf TYPE [-t THREADS] [-v]`: converts an F32 /
 * F16 / BF16 GGUF model into one of llama.cpp's quantization mixes (store/quantize.h does the
 * work; this file only parses arguments and reports).
 */
#include <stdio.h>
#include <string.h>

#include "../store/quantize.h"
#include "cli.h"

static void usage(void) {
    fprintf(stderr,
            "usage: seek quantize IN.gguf OUT.gguf TYPE [-t THREADS] [-v]\n"
            "  IN.gguf   model with F32, F16 or BF16 weights\n"
            "  TYPE      one of:");
    for (int i = 0; store_mix_at(i); i++) fprintf(stderr, " %s", store_mix_at(i)->name);
    fprintf(stderr,
            "\n"
            "            (Q2_K..Q6_K mixes follow llama.cpp's per-tensor rules; Q3_K, Q4_K, Q5_K\n"
            "            and Q2_K_PURE put every weight matrix in that one type)\n"
            "  -t N      threads (default: all CPUs)\n"
            "  -v        one line per tensor\n");
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3];
    int n_pos = 0;
    store_quantize_opts opts = { 0 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "seek quantize: %s needs a value\n", a);
                return 1;
            }
            long n = cli_parse_count(a, argv[++i], 1024);
            if (n < 0) return 1;
            opts.n_threads = (int)n;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            opts.verbose = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "seek quantize: unknown option %s\n", a);
            usage();
            return 1;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "seek quantize: too many arguments\n");
            usage();
            return 1;
        }
    }
    if (n_pos != 3) {
        usage();
        return 1;
    }
    if (!store_mix_find(pos[2])) {
        fprintf(stderr, "seek quantize: unknown type '%s'\n", pos[2]);
        usage();
        return 1;
    }
    if (strcmp(pos[0], pos[1]) == 0) {
        fprintf(stderr, "seek quantize: input and output are the same file\n");
        return 1;
    }
    seek_err err = { 0 };
    if (store_quantize_ex(pos[0], pos[1], pos[2], &opts, NULL, &err) != 0) {
        fprintf(stderr, "seek quantize: %s\n", err.msg);
        return 1;
    }
    return 0;
}
