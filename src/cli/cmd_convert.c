/*
 * cmd_convert.c - `seek convert HF_DIR -o OUT.gguf [--outtype F16|BF16|F32|auto] [--vocab-only]
 * [-t N]`: a Hugging Face checkpoint folder to GGUF.  A checkpoint (config.json + safetensors) goes
 * through store_convert_hf.  A folder with only tokenizer files and --vocab-only gives a vocab-only
 * GGUF: tokenizer.json and tokenizer_config.json become the tokenizer.* keys (tok_convert_hf),
 * chat_template.jinja (newer checkpoints keep the template there) overrides the config's
 * template, and config.json's model_type, when present, gives general.architecture.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../gguf/gguf.h"
#include "../store/convert.h"
#include "../tok/tok.h"
#include "cli.h"

/* HF model_type -> GGUF general.architecture (llama.cpp's names). */
static const char *const arch_map[][2] = {
    { "qwen2", "qwen2" }, { "qwen3", "qwen3" }, { "llama", "llama" }, { "mistral", "llama" },
    { "deepseek_v3", "deepseek2" },
};

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int usage(void) {
    fprintf(stderr, "usage: seek convert HF_DIR -o OUT.gguf [--outtype F16|BF16|F32|auto] [--vocab-only] [-t N]\n");
    return 2;
}

/* general.architecture and general.name; a config.json that is missing is fine. */
static int set_general(gguf_writer *w, const char *dir, const char *config) {
    char name[256];
    const char *base = strrchr(dir, '/');
    snprintf(name, sizeof name, "%s", base && base[1] ? base + 1 : dir);
    int rc = gguf_writer_set_str(w, "general.name", name);
    if (!is_file(config)) return rc;
    json_error_t je;
    json_t *cfg = json_load_file(config, JSON_DECODE_INT_AS_REAL, &je); /* no integer is read */
    if (!cfg) fprintf(stderr, "seek convert: warning: %s:%d: %s\n", config, je.line, je.text);
    const char *mt = json_string_value(json_object_get(cfg, "model_type"));
    const char *arch = NULL;
    for (size_t i = 0; mt && i < sizeof arch_map / sizeof arch_map[0]; i++)
        if (!strcmp(mt, arch_map[i][0])) arch = arch_map[i][1];
    if (arch) rc |= gguf_writer_set_str(w, "general.architecture", arch);
    else fprintf(stderr, "seek convert: warning: %s: model_type %s is not known; no architecture written\n", config,
                 mt ? mt : "(missing)");
    json_decref(cfg);
    return rc;
}

static int set_template_file(gguf_writer *w, const char *path) {
    if (!is_file(path)) return 0;
    seek_err err = { 0 };
    size_t len;
    char *t = fs_read_all(path, &len, &err);
    if (!t) {
        fprintf(stderr, "seek convert: %s\n", err.msg);
        return -1;
    }
    int rc = gguf_writer_set_str(w, "tokenizer.chat_template", t);
    free(t);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    store_convert_opts opts = { 0 };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab-only")) opts.vocab_only = true;
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--outtype") && i + 1 < argc) opts.out_type = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            long t = cli_parse_count("-t", argv[++i], 1024);
            if (t < 0) return 2;
            opts.n_threads = (int)t;
        } else if (argv[i][0] == '-' || dir) return usage();
        else dir = argv[i];
    }
    if (!dir || !out) return usage();
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/config.json", dir);
    if (!opts.vocab_only || is_file(probe)) {
        seek_err err = { 0 };
        uint64_t t0 = time_now_ns();
        if (store_convert_hf(dir, out, &opts, &err) != 0) {
            fprintf(stderr, "seek convert: %s\n", err.msg);
            return 1;
        }
        printf("%s: written in %.1f s\n", out, (double)(time_now_ns() - t0) / 1e9);
        return 0;
    }
    char tj[PATH_MAX], tc[PATH_MAX], cfg[PATH_MAX], jinja[PATH_MAX];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(tc, sizeof tc, "%s/tokenizer_config.json", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(jinja, sizeof jinja, "%s/chat_template.jinja", dir);
    if (!is_file(tj)) {
        fprintf(stderr, "seek convert: %s: no such file (HF_DIR must hold tokenizer.json)\n", tj);
        return 1;
    }
    seek_err err = { 0 };
    gguf_writer *w = gguf_writer_new();
    int32_t n_vocab = 0;
    int rc = 1;
    if (!w || set_general(w, dir, cfg) < 0) {
        fprintf(stderr, "seek convert: out of memory\n");
    } else if (tok_convert_hf(tj, is_file(tc) ? tc : NULL, w, &n_vocab, &err) < 0) {
        fprintf(stderr, "seek convert: %s\n", err.msg);
    } else if (set_template_file(w, jinja) == 0) {
        if (gguf_writer_write(w, out, &err) < 0) {
            fprintf(stderr, "seek convert: %s: %s\n", out, err.msg);
        } else {
            printf("%s: %d tokens (vocab only)\n", out, n_vocab);
            rc = 0;
        }
    }
    gguf_writer_free(w);
    return rc;
}
