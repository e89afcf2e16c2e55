/*
 * test_fit.c - `seek fit`'s arithmetic against independent numbers:
 *   - tensor bytes computed from a shape and a quantization name equal the bytes llama.cpp wrote
 *     into each fixture file (its own quantizer, its own type rules);
 *   - the catalog's Q4_K_M download sizes agree with the sizes Ollama's library lists for
 *     deepseek-r1 (1.1, 4.7, 4.9, 9.0, 20 and 43 GB) within the rounding of those figures;
 *   - the memory estimate grows with the context by exactly the KV cache formula, and the verdicts
 *     and suggestions follow their thresholds.
 * The measured side (predicted memory vs peak RSS, predicted vs measured speed) is bench/fit_check.py.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/fit.h"
#include "store/quantize.h"
#include "testutil.h"

static void test_fixture_sizes(void) {
    static const char *const files[] = {
        "qwen2-mini-Q4_K_M.gguf", "qwen2-mini-Q6_K.gguf", "qwen2-mini-Q8_0.gguf",
        "llama-mini-Q4_K_M.gguf", "llama-mini-Q6_K.gguf", "llama-mini-Q8_0.gguf",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", test_fixture_dir(), files[i]);
        seek_err err = { 0 };
        model *m = model_open(path, &err);
        CHECK(m != NULL, "%s: %s", files[i], err.msg);
        if (!m) continue;
        uint32_t ft = 0;
        gguf_get_u32(m->file, "general.file_type", &ft, NULL);
        fit_shape s = fit_shape_of(m, files[i]);
        uint64_t bytes = 0, read = 0;
        int rc = fit_weight_bytes(&s, store_ftype_name(ft), &bytes, &read, &err);
        CHECK(rc == 0 && bytes == m->weight_bytes, "%s (%s): computed %llu bytes, llama.cpp wrote %llu", files[i],
              store_ftype_name(ft), (unsigned long long)bytes, (unsigned long long)m->weight_bytes);
        CHECK(read == fit_resident_bytes(m), "%s: resident bytes %llu vs %llu", files[i], (unsigned long long)read,
              (unsigned long long)fit_resident_bytes(m));
        model_close(m);
    }
}

static void test_catalog_sizes(void) {
    /* ollama.com/library/deepseek-r1 tags (Q4_K_M): sizes as listed */
    static const struct { const char *tag; double gb; } published[] = {
        { "1.5b", 1.1 }, { "7b", 4.7 }, { "8b", 4.9 }, { "14b", 9.0 }, { "32b", 20 }, { "70b", 43 },
    };
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++) {
        const fit_shape *s = NULL;
        for (int k = 0; fit_catalog(k); k++)
            if (!strcmp(fit_catalog(k)->tag, published[i].tag)) s = fit_catalog(k);
        CHECK(s != NULL, "catalog has %s", published[i].tag);
        if (!s) continue;
        uint64_t bytes;
        seek_err err = { 0 };
        CHECK(fit_weight_bytes(s, "Q4_K_M", &bytes, NULL, &err) == 0, "%s: %s", s->tag, err.msg);
        double gb = bytes / 1e9, tol = published[i].gb < 10 ? 0.06 : 0.6; /* one shown digit */
        CHECK(fabs(gb - published[i].gb) <= tol, "%s Q4_K_M: computed %.2f GB, Ollama lists %.1f GB", s->tag, gb,
              published[i].gb);
        /* more bits, more bytes */
        uint64_t q8, f16;
        fit_weight_bytes(s, "Q8_0", &q8, NULL, &err);
        fit_weight_bytes(s, "F16", &f16, NULL, &err);
        CHECK(bytes < q8 && q8 < f16, "%s: Q4_K_M < Q8_0 < F16", s->tag);
    }
    seek_err err = { 0 };
    uint64_t b;
    CHECK(fit_weight_bytes(fit_catalog(0), "Q9_X", &b, NULL, &err) != 0 && strstr(err.msg, "Q9_X"),
          "unknown quantization is an error: %s", err.msg);
}

static void test_memory_formula(void) {
    const fit_shape *s = fit_catalog(0); /* 1.5b: 28 layers, 2 KV heads of 128 */
    fit_memory a = fit_estimate_memory(s, 1000000000ull, 2048, 1);
    fit_memory b = fit_estimate_memory(s, 1000000000ull, 4096, 1);
    uint64_t kv_per_pos = 2ull * 28 * 2 * 128 * 2; /* K and V, layers, KV width, F16 (the default) */
    CHECK(b.kv - a.kv == kv_per_pos * 2048, "KV grows by %llu bytes a position", (unsigned long long)kv_per_pos);
    CHECK(a.total == a.weights + a.kv + a.scratch + a.overhead, "total is the sum of its parts");
    fit_memory p = fit_estimate_memory(s, 1000000000ull, 2048, 4);
    CHECK(p.kv == 4 * a.kv, "four sequences, four KV caches");
    CHECK(fit_verdict(70, 100) == 0 && fit_verdict(90, 100) == 1 && fit_verdict(101, 100) == 2, "verdict thresholds");
    char buf[128];
    fit_suggest(100ull << 30, 4096, buf, sizeof buf);
    CHECK(strstr(buf, "deepseek-r1:70b") != NULL, "100 GiB suggests the 70b: %s", buf);
    fit_suggest(30ull << 30, 4096, buf, sizeof buf);
    CHECK(strstr(buf, "deepseek-r1:32b") != NULL, "30 GiB suggests the 32b: %s", buf);
    fit_suggest(2ull << 30, 4096, buf, sizeof buf);
    CHECK(strstr(buf, "deepseek-r1:1.5b") != NULL, "2 GiB suggests the 1.5b: %s", buf);
    fit_suggest(100ull << 20, 4096, buf, sizeof buf);
    CHECK(buf[0] == 0, "100 MiB suggests nothing");
}

int main(void) {
    unsetenv("SEEK_KV_CACHE_TYPE"); /* the default cache type, F16 */
    base_init();
    test_fixture_sizes();
    test_catalog_sizes();
    test_memory_formula();
    return check_done("test_fit");
}
