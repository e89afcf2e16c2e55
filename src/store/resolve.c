/*
 * resolve.c - what the runtime asks the store: "deepseek-r1:1.5b" (or "model.gguf") -> the GGUF
 * to load plus the template, system prompt, parameters, messages and license the model was
 * created with.  Read-only: nothing here writes to the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "store_impl.h"

bool store_is_path(const char *arg) {
    size_t n = strlen(arg);
    struct stat st;
    if (n >= 5 && strcasecmp(arg + n - 5, ".gguf") == 0) return true;
    /* absolute and ./ ../ paths can never be model names */
    if (arg[0] == '/' || !strncmp(arg, "./", 2) || !strncmp(arg, "../", 3)) return true;
    return strchr(arg, '/') && stat(arg, &st) == 0 && S_ISREG(st.st_mode);
}

void store_model_free(store_model *m) {
    if (!m) return;
    free(m->name);
    free(m->model_path);
    free(m->template_);
    free(m->system);
    free(m->license);
    json_decref(m->params);
    json_decref(m->messages);
    memset(m, 0, sizeof *m);
}

/* True when text is an Ollama (Go text/template) template rather than Jinja: Go templates
 * refer to fields with a leading dot ("{{ .Prompt }}", "{{- range .Messages }}"), which Jinja
 * does not allow, and have no "{%" statements. */
static bool is_go_template(const char *t) {
    if (strstr(t, "{%")) return false;
    static const char *const marks[] = { "{{ .", "{{- .", "{{.", "{{ if ", "{{- if ", "{{ range ",
                                         "{{- range ", "{{ end", "{{- end" };
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (strstr(t, marks[i])) return true;
    return false;
}

/* Appends text to *dst, separated by a blank line. */
static int join(char **dst, const char *text) {
    size_t a = *dst ? strlen(*dst) : 0, b = strlen(text);
    char *p = realloc(*dst, a + b + 3);
    if (!p) return -1;
    if (a) memcpy(p + a, "\n\n", 2), a += 2;
    memcpy(p + a, text, b + 1);
    *dst = p;
    return 0;
}

/* Fills the text and JSON fields of out from one layer. */
static int apply_layer(const store *s, const store_layer *l, store_model *out, seek_err *err) {
    const char *mt = l->media_type;
    bool wanted = !strcmp(mt, STORE_MT_TEMPLATE) || !strcmp(mt, STORE_MT_SYSTEM) ||
                  !strcmp(mt, STORE_MT_LICENSE) || !strcmp(mt, STORE_MT_PARAMS) ||
                  !strcmp(mt, STORE_MT_MESSAGES);
    if (!wanted) return 0;
    size_t len;
    char *text = store_blob_read(s, l->digest, &len, err);
    if (!text) return -1;
    int rc = 0;
    if (!strcmp(mt, STORE_MT_TEMPLATE)) {
        out->template_go = is_go_template(text);
        free(out->template_);
        out->template_ = out->template_go ? NULL : text;
        if (!out->template_go) text = NULL;
    } else if (!strcmp(mt, STORE_MT_SYSTEM)) {
        free(out->system);
        out->system = text;
        text = NULL;
    } else if (!strcmp(mt, STORE_MT_LICENSE)) {
        if (join(&out->license, text)) rc = err_set(err, SEEK_ENOMEM, "out of memory");
    } else {
        bool params = !strcmp(mt, STORE_MT_PARAMS);
        json_t *j = json_loadb(text, len, 0, NULL);
        if (params ? !json_is_object(j) : !json_is_array(j)) {
            json_decref(j);
            rc = err_set(err, SEEK_EFORMAT, "layer %s: not a JSON %s", l->digest, params ? "object" : "array");
        } else {
            json_t **slot = params ? &out->params : &out->messages;
            json_decref(*slot);
            *slot = j;
        }
    }
    free(text);
    return rc;
}

static int resolve_name(store *s, const char *arg, store_model *out, seek_err *err) {
    store_name name;
    store_manifest m;
    if (store_name_parse(arg, &name, err) || store_manifest_read(s, &name, &m, err)) return -1;
    char disp[600], path[STORE_PATH_MAX];
    store_name_display(&m.name, disp, sizeof disp);
    const store_layer *model = store_manifest_layer(&m, STORE_MT_MODEL);
    int rc = -1;
    if (!model) {
        err_set(err, SEEK_EFORMAT, "model '%s' has no model layer", disp);
        goto done;
    }
    if (store_blob_path(s, model->digest, path, sizeof path, err)) goto done;
    if (!store_blob_exists(s, model->digest, UINT64_MAX)) {
        err_set(err, SEEK_ENOTFOUND, "model '%s': blob %s is missing", disp, path);
        goto done;
    }
    out->name = strdup(disp);
    out->model_path = strdup(path);
    if (!out->name || !out->model_path) {
        err_set(err, SEEK_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < m.n_layers; i++)
        if (apply_layer(s, &m.layers[i], out, err)) goto done;
    memcpy(out->digest, m.digest, sizeof out->digest);
    rc = 0;
done:
    store_manifest_free(&m);
    return rc;
}

int store_resolve(store *s, const char *arg, store_model *out, seek_err *err) {
    memset(out, 0, sizeof *out);
    out->params = json_object();
    out->messages = json_array();
    int rc;
    if (!out->params || !out->messages) {
        rc = err_set(err, SEEK_ENOMEM, "out of memory");
    } else if (store_is_path(arg)) {
        out->name = strdup(arg);
        out->model_path = strdup(arg);
        rc = out->name && out->model_path ? 0 : err_set(err, SEEK_ENOMEM, "out of memory");
    } else if (s) {
        rc = resolve_name(s, arg, out, err);
    } else {
        store *own = store_open(NULL, err);
        rc = own ? resolve_name(own, arg, out, err) : -1;
        store_close(own);
    }
    if (rc) store_model_free(out);
    return rc;
}
