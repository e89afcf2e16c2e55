/*
 * cmd_fit.c - `seek fit [--ctx N] [--parallel P] [-t T] [--json] [MODEL...]`: which DeepSeek-R1
 * model this machine can run, and how fast, before downloading anything.
 *
 * Measures the machine (RAM, bandwidth, the engine's kernels: about two seconds), then prints one
 * row per catalog model and quantization: download size, memory needed at the context, the
 * verdict, and predicted decode and prompt speed; then recommends the largest model that fits with
 * headroom and runs at a usable speed, in one line.  MODEL arguments (a .gguf path or a store name)
 * are assessed the same way.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/fit.h"
#include "../store/quantize.h"
#include "../store/store.h"
#include "cli.h"

static const char *verdict_name[] = { "fits", "tight", "no" };

static void human(uint64_t b, char *buf, size_t cap) {
    if (b >= 1000000000ull) snprintf(buf, cap, "%.1f GB", b / 1e9);
    else snprintf(buf, cap, "%.0f MB", b / 1e6);
}

typedef struct {
    char name[96], quant[16];
    uint64_t size, need;
    int verdict;
    fit_speed sp;
    int64_t n_params;
} fit_row;

static int64_t shape_params(const fit_shape *s) {
    int64_t D = s->n_embd, qd = s->n_head * s->head_dim, kvd = s->n_head_kv * s->head_dim;
    int64_t per_layer = D * qd * 2 + D * kvd * 2 + 3 * D * s->n_ff;
    return per_layer * s->n_layer + D * s->n_vocab * (s->tied ? 1 : 2);
}

/* file_bytes and resident 0: computed from the shape and quantization. */
static int add_row(fit_row *r, const fit_machine *fm, const fit_shape *s, const char *name, const char *quant,
                   uint64_t file_bytes, uint64_t resident, int32_t ctx, int par) {
    seek_err err = { 0 };
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->quant, sizeof r->quant, "%s", quant);
    if (!file_bytes && fit_weight_bytes(s, quant, &file_bytes, &resident, &err) != 0) return -1;
    r->size = file_bytes;
    fit_memory m = fit_estimate_memory(s, resident, ctx, par);
    r->need = m.total;
    r->verdict = fit_verdict(m.total, fm->mem_available);
    r->n_params = shape_params(s);
    if (fit_predict_speed(fm, s, quant, &r->sp, &err) != 0) r->sp.tg_tps = r->sp.pp_tps = 0;
    return 0;
}

/* A local model: its own shape, its own file size, quantization from general.file_type. */
static int local_row(fit_row *r, const fit_machine *fm, const char *arg, int32_t ctx, int par) {
    char *path = cli_model_path("fit", arg);
    if (!path) return -1;
    seek_err err = { 0 };
    model *m = model_open(path, &err);
    free(path);
    if (!m) {
        fprintf(stderr, "seek fit: %s\n", err.msg);
        return -1;
    }
    fit_shape s = fit_shape_of(m, arg);
    uint32_t ft = 0;
    const char *q = gguf_get_u32(m->file, "general.file_type", &ft, NULL) == 0 ? store_ftype_name(ft) : NULL;
    int rc = add_row(r, fm, &s, arg, q ? q : "F16", m->weight_bytes, fit_resident_bytes(m), ctx, par);
    model_close(m);
    return rc;
}

int cmd_fit(int argc, char **argv) {
    long ctx = 4096, par = 1, threads = 0;
    bool json = false;
    const char *models[16];
    int n_models = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--ctx")) {
            if ((ctx = cli_parse_count(a, v, 1 << 22)) < 0) return 2;
            i++;
        } else if (!strcmp(a, "--parallel")) {
            if ((par = cli_parse_count(a, v, 256)) < 0) return 2;
            i++;
        } else if (!strcmp(a, "-t")) {
            if ((threads = cli_parse_count(a, v, 1024)) < 0) return 2;
            i++;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] != '-' && n_models < 16) {
            models[n_models++] = a;
        } else {
            fprintf(stderr, "usage: seek fit [--ctx N] [--parallel P] [-t T] [--json] [MODEL...]\n");
            return 2;
        }
    }
    fit_machine fm;
    seek_err err = { 0 };
    bool tty = isatty(STDERR_FILENO);
    if (!json && tty) fprintf(stderr, "measuring this machine...");
    if (fit_measure(&fm, (int)threads, &err) != 0) {
        fprintf(stderr, "seek fit: %s\n", err.msg);
        return 1;
    }
    if (!json && tty) fprintf(stderr, "\r                          \r");
    fit_row rows[64];
    int n = 0;
    for (int i = 0; i < n_models && n < 64; i++)
        if (local_row(&rows[n], &fm, models[i], (int32_t)ctx, (int)par) == 0) n++;
        else return 1;
    if (!n_models) {
        for (int i = 0; fit_catalog(i); i++)
            for (int q = 0; q < fit_n_quants && n < 64; q++) {
                char name[64];
                snprintf(name, sizeof name, "deepseek-r1:%s", fit_catalog(i)->tag);
                if (add_row(&rows[n], &fm, fit_catalog(i), name, fit_quants[q], 0, 0, (int32_t)ctx, (int)par) == 0) n++;
            }
    }
    /* the recommendation: the most parameters among rows that fit with headroom and decode at a
     * readable speed (5 tokens/s); among those, prefer Q4_K_M (Ollama's default), then faster */
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (rows[i].verdict != 0 || rows[i].sp.tg_tps < 5) continue;
        if (best < 0 || rows[i].n_params > rows[best].n_params ||
            (rows[i].n_params == rows[best].n_params && !strcmp(rows[i].quant, "Q4_K_M") && strcmp(rows[best].quant, "Q4_K_M")))
            best = i;
    }
    if (json) {
        json_t *o = json_pack("{s:I,s:I,s:i,s:s,s:f,s:i,s:i,s:[]}", "mem_total", (json_int_t)fm.mem_total,
                              "mem_available", (json_int_t)fm.mem_available, "cores", fm.n_cores, "isa", fm.isa,
                              "bandwidth_gbs", fm.bw_gbs, "ctx", (int)ctx, "parallel", (int)par, "models");
        json_t *kerns = json_array();
        for (int i = 0; i < fm.n_kern; i++)
            json_array_append_new(kerns, json_pack("{s:s,s:f,s:f}", "type", gguf_type_name(fm.kern[i].type),
                                                   "matvec_gbs", fm.kern[i].gbs, "batch64_gflops", fm.kern[i].gflops));
        json_object_set_new(o, "kernels", kerns);
        json_t *arr = json_object_get(o, "models");
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,s:s,s:f,s:f}", "name", rows[i].name, "quant",
                                                 rows[i].quant, "size", (json_int_t)rows[i].size, "memory",
                                                 (json_int_t)rows[i].need, "verdict", verdict_name[rows[i].verdict],
                                                 "tg_tps", rows[i].sp.tg_tps, "pp_tps", rows[i].sp.pp_tps));
        if (best >= 0) json_object_set_new(o, "recommended", json_pack("{s:s,s:s}", "name", rows[best].name, "quant", rows[best].quant));
        char *s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(o);
        return 0;
    }
    char b1[32], b2[32];
    human(fm.mem_total, b1, sizeof b1);
    human(fm.mem_available, b2, sizeof b2);
    printf("This machine: %s RAM (%s available), %d cores, %s kernels, %.1f GB/s memory bandwidth\n", b1, b2,
           fm.n_cores, fm.isa, fm.bw_gbs);
    printf("Context %ld tokens%s\n\n", ctx, par > 1 ? ", several sequences" : "");
    printf("%-24s %-7s %9s %10s  %-6s %10s %10s\n", "MODEL", "QUANT", "DOWNLOAD", "MEMORY", "FITS", "DECODE", "PROMPT");
    for (int i = 0; i < n; i++) {
        human(rows[i].size, b1, sizeof b1);
        human(rows[i].need, b2, sizeof b2);
        printf("%-24s %-7s %9s %10s  %-6s %6.1f t/s %6.0f t/s%s\n", rows[i].name, rows[i].quant, b1, b2,
               verdict_name[rows[i].verdict], rows[i].sp.tg_tps, rows[i].sp.pp_tps, i == best ? "  <-" : "");
    }
    printf("\n");
    if (best >= 0) {
        human(rows[best].need, b1, sizeof b1);
        printf("Recommended: %s (%s): the largest model that needs %s, under 80%% of the available memory, "
               "and still decodes at a readable speed (%.0f tokens/s; 5 at least).\n", rows[best].name, rows[best].quant, b1, rows[best].sp.tg_tps);
    } else {
        printf("Nothing fits with headroom at a usable speed; try a smaller --ctx or free some memory.\n");
    }
    return 0;
}
