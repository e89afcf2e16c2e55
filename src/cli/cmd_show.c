/*
 * cmd_show.c - `seek show FILE.gguf`: what a model file is, Ollama-style.  Three sections:
 *   Model     architecture, parameter count (summed tensor element counts), context and
 *             embedding length, layers, heads / KV heads, quantization (general.file_type's
 *             name, else the most common type among the weight matrices);
 *   Metadata  every key with its value; arrays as "[N x type]" and their first elements;
 *   Tensors   name, type, shape (ne0 x ne1 ...), size.
 * `seek show NAME` (a store model) prints what `ollama show` does instead: Model (from the model
 * blob), Capabilities, Parameters, System and License (first lines); --modelfile, --parameters,
 * --template, --system and --license print just that part, as `ollama show --X` does.  A model
 * without a template layer uses its GGUF's chat template, so --template prints that one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../gguf/gguf.h"
#include "../store/quantize.h"
#include "../store/store.h"
#include "cli.h"

static const char *vtype_name(uint32_t vt) {
    static const char *const names[GGUF_VT_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
        "f64",
    };
    return vt < GGUF_VT_COUNT ? names[vt] : "?";
}

/* Prints a string value quoted, escaping control characters, at most max bytes of it. */
static void print_str(gguf_str s, uint64_t max) {
    putchar('"');
    uint64_t n = s.len < max ? s.len : max;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (n < s.len) printf("... (%llu bytes)", (unsigned long long)s.len);
}

/* Prints one scalar of numeric type vt stored at p (little-endian, as in the file). */
static void print_scalar(uint32_t vt, const uint8_t *p) {
    switch (vt) {
    case GGUF_VT_UINT8: printf("%u", p[0]); break;
    case GGUF_VT_INT8: printf("%d", (int8_t)p[0]); break;
    case GGUF_VT_BOOL: printf("%s", p[0] ? "true" : "false"); break;
    case GGUF_VT_UINT16: { uint16_t v; memcpy(&v, p, 2); printf("%u", v); break; }
    case GGUF_VT_INT16: { int16_t v; memcpy(&v, p, 2); printf("%d", v); break; }
    case GGUF_VT_UINT32: { uint32_t v; memcpy(&v, p, 4); printf("%u", v); break; }
    case GGUF_VT_INT32: { int32_t v; memcpy(&v, p, 4); printf("%d", v); break; }
    case GGUF_VT_FLOAT32: { float v; memcpy(&v, p, 4); printf("%g", v); break; }
    case GGUF_VT_UINT64: { uint64_t v; memcpy(&v, p, 8); printf("%llu", (unsigned long long)v); break; }
    case GGUF_VT_INT64: { int64_t v; memcpy(&v, p, 8); printf("%lld", (long long)v); break; }
    case GGUF_VT_FLOAT64: { double v; memcpy(&v, p, 8); printf("%g", v); break; }
    default: printf("?"); break;
    }
}

static uint32_t scalar_size(uint32_t vt) {
    switch (vt) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
    case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
    default: return 0;
    }
}

static void print_value(const gguf_file *f, const gguf_kv *kv) {
    if (kv->vtype == GGUF_VT_STRING) {
        /* kv->data's layout is the reader's business; ask it for the string by key */
        char key[1024];
        gguf_str s;
        if (kv->key.len < sizeof key && gguf_get_str(f, gguf_str_copy(kv->key, key, sizeof key),
                                                     &s, NULL) == 0)
            print_str(s, 120);
        else
            fputs("?", stdout);
        return;
    }
    if (kv->vtype != GGUF_VT_ARRAY) {
        print_scalar(kv->vtype, kv->data);
        return;
    }
    const uint64_t show = 4;
    printf("[%llu x %s]", (unsigned long long)kv->arr_n, vtype_name(kv->arr_type));
    for (uint64_t i = 0; i < kv->arr_n && i < show; i++) {
        fputs(i ? ", " : " ", stdout);
        if (kv->arr_type == GGUF_VT_STRING) {
            gguf_str s;
            if (gguf_arr_str(f, kv, i, &s) == 0) print_str(s, 40);
            else fputs("?", stdout);
        } else {
            uint32_t sz = scalar_size(kv->arr_type);
            if (sz == 0 || (i + 1) * sz > kv->nbytes) break;
            print_scalar(kv->arr_type, kv->data + i * sz);
        }
    }
    if (kv->arr_n > show) fputs(", ...", stdout);
}

/* "1.78B", "494.03M", "12.29K". */
static void human_count(uint64_t n, char *buf, size_t cap) {
    if (n >= 1000000000ull) snprintf(buf, cap, "%.2fB", (double)n / 1e9);
    else if (n >= 1000000ull) snprintf(buf, cap, "%.2fM", (double)n / 1e6);
    else if (n >= 1000ull) snprintf(buf, cap, "%.2fK", (double)n / 1e3);
    else snprintf(buf, cap, "%llu", (unsigned long long)n);
}

static void human_bytes(uint64_t n, char *buf, size_t cap) {
    if (n >= 1000000ull) snprintf(buf, cap, "%.2f MB", (double)n / 1e6);
    else if (n >= 1000ull) snprintf(buf, cap, "%.2f KB", (double)n / 1e3);
    else snprintf(buf, cap, "%llu B", (unsigned long long)n);
}

static void row(const char *label, const char *value) {
    printf("    %-20s%s\n", label, value);
}

/* An {arch}.suffix integer as text into buf; false if absent. */
static bool arch_u64(const gguf_file *f, const char *arch, const char *suffix, uint64_t *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_u64(f, key, out, NULL) == 0;
}

static void print_model(const gguf_file *f) {
    char arch[64] = "unknown", buf[128];
    gguf_str s;
    if (gguf_get_str(f, "general.architecture", &s, NULL) == 0) gguf_str_copy(s, arch, sizeof arch);

    uint64_t n_params = 0, type_count[GGUF_TYPE_COUNT] = { 0 };
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) ne *= (uint64_t)t->ne[d];
        n_params += ne;
        if (t->n_dims >= 2 && t->type < GGUF_TYPE_COUNT) type_count[t->type]++;
    }

    printf("  Model\n");
    row("architecture", arch);
    human_count(n_params, buf, sizeof buf);
    row("parameters", buf);
    uint64_t v, v2;
    if (arch_u64(f, arch, "context_length", &v)) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        row("context length", buf);
    }
    if (arch_u64(f, arch, "embedding_length", &v)) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        row("embedding length", buf);
    }
    if (arch_u64(f, arch, "block_count", &v)) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        row("layers", buf);
    }
    if (arch_u64(f, arch, "attention.head_count", &v)) {
        if (!arch_u64(f, arch, "attention.head_count_kv", &v2)) v2 = v;
        snprintf(buf, sizeof buf, "%llu / %llu", (unsigned long long)v, (unsigned long long)v2);
        row("heads / KV heads", buf);
    }
    uint32_t ft;
    const char *qname = NULL;
    if (gguf_get_u32(f, "general.file_type", &ft, NULL) == 0) qname = store_ftype_name(ft);
    if (!qname) {
        uint32_t best = GGUF_TYPE_COUNT;
        for (uint32_t t = 0; t < GGUF_TYPE_COUNT; t++)
            if (type_count[t] && (best == GGUF_TYPE_COUNT || type_count[t] > type_count[best]))
                best = t;
        if (best != GGUF_TYPE_COUNT) qname = gguf_type_name(best);
    }
    row("quantization", qname ? qname : "unknown");
    human_bytes(gguf_file_size(f), buf, sizeof buf);
    row("file size", buf);
}

static void print_metadata(const gguf_file *f) {
    printf("\n  Metadata\n");
    size_t width = 0;
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (kv->key.len > width && kv->key.len < 60) width = (size_t)kv->key.len;
    }
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        printf("    %.*s%*s  ", (int)kv->key.len, kv->key.ptr,
               (int)(kv->key.len < width ? width - kv->key.len : 0), "");
        print_value(f, kv);
        if (gguf_str_eq(kv->key, "general.file_type") && kv->vtype == GGUF_VT_UINT32) {
            uint32_t ft;
            memcpy(&ft, kv->data, 4);
            if (store_ftype_name(ft)) printf(" (%s)", store_ftype_name(ft));
        }
        putchar('\n');
    }
}

static void print_tensors(const gguf_file *f) {
    printf("\n  Tensors (%llu)\n", (unsigned long long)gguf_n_tensors(f));
    size_t width = 4;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->name.len > width && t->name.len < 80) width = (size_t)t->name.len;
    }
    printf("    %-*s  %-6s  %-22s  %12s  %s\n", (int)width, "name", "type", "shape", "bytes", "size");
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[96], size[32];
        int o = snprintf(shape, sizeof shape, "%lld", (long long)t->ne[0]);
        for (uint32_t d = 1; d < t->n_dims && o < (int)sizeof shape; d++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, " x %lld", (long long)t->ne[d]);
        human_bytes(t->nbytes, size, sizeof size);
        printf("    %-*.*s  %-6s  %-22s  %12llu  %s\n", (int)width, (int)t->name.len, t->name.ptr,
               gguf_type_name(t->type), shape, (unsigned long long)t->nbytes, size);
    }
}

/* ---- store models ------------------------------------------------------------------------ */

enum show_part { SHOW_ALL, SHOW_MODELFILE, SHOW_PARAMETERS, SHOW_TEMPLATE, SHOW_SYSTEM, SHOW_LICENSE };

/* The GGUF's chat template as a malloc'd string, or NULL. */
static char *gguf_template(const gguf_file *f) {
    gguf_str s;
    if (gguf_get_str(f, "tokenizer.chat_template", &s, NULL) != 0) return NULL;
    return strndup(s.ptr, (size_t)s.len);
}

/* The Model section of `ollama show` for the model blob. */
static void print_store_model(const gguf_file *f) {
    char arch[64] = "unknown", buf[128];
    gguf_str s;
    if (gguf_get_str(f, "general.architecture", &s, NULL) == 0) gguf_str_copy(s, arch, sizeof arch);
    uint64_t n_params = 0, v;
    uint32_t type_count[GGUF_TYPE_COUNT] = { 0 };
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) ne *= (uint64_t)t->ne[d];
        n_params += ne;
        if (t->n_dims >= 2 && t->type < GGUF_TYPE_COUNT) type_count[t->type]++;
    }
    printf("  Model\n");
    row("architecture", arch);
    store_human_number(n_params, buf, sizeof buf);
    row("parameters", buf);
    if (arch_u64(f, arch, "context_length", &v)) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        row("context length", buf);
    }
    if (arch_u64(f, arch, "embedding_length", &v)) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        row("embedding length", buf);
    }
    uint32_t ft;
    const char *q = gguf_get_u32(f, "general.file_type", &ft, NULL) == 0 ? store_ftype_name(ft) : NULL;
    if (!q) { /* no general.file_type: the most common type of the weight matrices */
        uint32_t best = 0;
        for (uint32_t u = 1; u < GGUF_TYPE_COUNT; u++)
            if (type_count[u] > type_count[best]) best = u;
        if (type_count[best]) q = gguf_type_name(best);
    }
    row("quantization", q ? q : "unknown");
}

/* A JSON scalar the way Go's %#v prints the decoded value: strings quoted, numbers short. */
static void print_param_value(json_t *v) {
    if (json_is_string(v)) {
        const char *p = json_string_value(v);
        putchar('"');
        for (; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\') printf("\\%c", c);
            else if (c == '\n') fputs("\\n", stdout);
            else if (c == '\t') fputs("\\t", stdout);
            else if (c < 0x20) printf("\\x%02x", c);
            else putchar(c);
        }
        putchar('"');
    } else if (json_is_integer(v)) {
        printf("%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        printf("%.9g", json_real_value(v));
    } else {
        fputs(json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null", stdout);
    }
}

/* One "key value" line per parameter (one per element of an array), key padded to width. */
static void print_params(json_t *params, const char *indent, int width) {
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v) {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            printf("%s%-*s ", indent, width, k);
            print_param_value(json_is_array(v) ? json_array_get(v, i) : v);
            putchar('\n');
        }
    }
}

/* A text section showing at most two lines, as `ollama show` does for System and License. */
static void print_text_section(const char *title, const char *text) {
    printf("\n  %s\n", title);
    for (int i = 0; text && *text; i++) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t)(nl - text) : strlen(text);
        if (i == 2) {
            printf("    ...\n");
            break;
        }
        while (n && (text[0] == ' ' || text[0] == '\t')) text++, n--;
        printf("    %.*s\n", (int)n, text);
        text = nl ? nl + 1 : text + n;
    }
}

static void print_store_all(const store_model *m, const gguf_file *f) {
    print_store_model(f);
    char *gt = m->template_ ? NULL : gguf_template(f);
    const char *tmpl = m->template_ ? m->template_ : gt;
    printf("\n  Capabilities\n    completion\n");
    if (tmpl && strstr(tmpl, "<think>")) printf("    thinking\n");
    free(gt);
    if (json_object_size(m->params)) {
        int width = 0;
        const char *k;
        json_t *v;
        json_object_foreach(m->params, k, v) if ((int)strlen(k) > width) width = (int)strlen(k);
        printf("\n  Parameters\n");
        print_params(m->params, "    ", width + 3);
    }
    if (m->system) print_text_section("System", m->system);
    if (m->license) print_text_section("License", m->license);
}

/* The raw text of the layer(s) of one media type; caller frees (NULL when there is none). */
static char *layer_text(const store *s, const store_manifest *man, const char *mt) {
    char *out = NULL;
    for (int i = 0; i < man->n_layers; i++) {
        if (strcmp(man->layers[i].media_type, mt) != 0) continue;
        char *t = store_blob_read(s, man->layers[i].digest, NULL, NULL);
        if (!t) continue;
        if (!out) {
            out = t;
            continue;
        }
        char *j = malloc(strlen(out) + strlen(t) + 3);
        if (j) sprintf(j, "%s\n\n%s", out, t);
        free(out);
        free(t);
        out = j;
    }
    return out;
}

static int show_store(const char *arg, enum show_part part) {
    seek_err err = { 0 };
    store *s = store_open(NULL, &err);
    store_model m = { 0 };
    store_manifest man = { 0 };
    store_name name;
    gguf_file *f = NULL;
    char *text = NULL;
    int rc = 1;
    if (!s || store_resolve(s, arg, &m, &err) || store_name_parse(arg, &name, &err) ||
        store_manifest_read(s, &name, &man, &err) || !(f = gguf_open(m.model_path, &err))) {
        fprintf(stderr, "Error: %s\n", err.msg);
        goto done;
    }
    rc = 0;
    switch (part) {
    case SHOW_ALL: print_store_all(&m, f); break;
    case SHOW_PARAMETERS: print_params(m.params, "", 30); break;
    case SHOW_SYSTEM: if (m.system) printf("%s\n", m.system); break;
    case SHOW_LICENSE: if (m.license) printf("%s\n", m.license); break;
    case SHOW_TEMPLATE:
        text = layer_text(s, &man, STORE_MT_TEMPLATE);
        if (!text) text = gguf_template(f);
        if (text) printf("%s\n", text);
        break;
    case SHOW_MODELFILE:
        text = store_modelfile_text(s, &man, m.name, &err);
        if (text) fputs(text, stdout);
        else fprintf(stderr, "Error: %s\n", err.msg), rc = 1;
        break;
    }
done:
    free(text);
    if (f) gguf_close(f);
    store_manifest_free(&man);
    store_model_free(&m);
    store_close(s);
    return rc;
}

/* ---- .gguf files --------------------------------------------------------------------------- */

static int show_file(const char *path, enum show_part part) {
    seek_err err = { 0 };
    gguf_file *f = gguf_open(path, &err);
    if (!f) {
        fprintf(stderr, "seek show: %s: %s\n", path, err.msg);
        return 1;
    }
    char *t = NULL;
    switch (part) {
    case SHOW_ALL:
        print_model(f);
        print_metadata(f);
        print_tensors(f);
        break;
    case SHOW_TEMPLATE:
        if ((t = gguf_template(f))) printf("%s\n", t);
        break;
    case SHOW_MODELFILE: {
        char *abs = realpath(path, NULL);
        printf("FROM %s\n", abs ? abs : path);
        free(abs);
        break;
    }
    default: break; /* a bare GGUF has no parameters, system prompt or license layers */
    }
    free(t);
    gguf_close(f);
    return 0;
}

static const char *const usage_text =
    "usage: seek show MODEL|FILE.gguf [--modelfile|--parameters|--template|--system|--license]\n";

int cmd_show(int argc, char **argv) {
    static const struct { const char *flag; enum show_part part; } flags[] = {
        { "--modelfile", SHOW_MODELFILE }, { "--parameters", SHOW_PARAMETERS },
        { "--template", SHOW_TEMPLATE },   { "--system", SHOW_SYSTEM },
        { "--license", SHOW_LICENSE },
    };
    const char *arg = NULL;
    enum show_part part = SHOW_ALL;
    for (int i = 1; i < argc; i++) {
        bool matched = false;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strcmp(argv[i], flags[k].flag) == 0) part = flags[k].part, matched = true;
        if (matched || strcmp(argv[i], "--tensors") == 0) continue; /* the table is always printed */
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (argv[i][0] == '-' || arg) {
            fputs(usage_text, stderr);
            return 1;
        }
        arg = argv[i];
    }
    if (!arg) {
        fputs(usage_text, stderr);
        return 1;
    }
    return store_is_path(arg) ? show_file(arg, part) : show_store(arg, part);
}
