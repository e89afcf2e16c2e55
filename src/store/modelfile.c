/*
 * modelfile.c - the Modelfile parser (rules in store.h, after Ollama's parser/parser.go), the
 * typing of PARAMETER values (after Ollama's api.FormatParams), and the reverse direction: the
 * Modelfile text `show --modelfile` prints for a stored model.
 *
 * Parsing is line by line.  A line is blank, a comment ('#' as its first non-blank character),
 * or "INSTRUCTION args".  An argument that starts with a quote keeps taking whole lines until
 * the accumulated text, trimmed, ends with the same quote ("""...""" or "..."); the quotes are
 * then removed and what they enclosed (newlines included) is the value.  Where Ollama's
 * messages are cryptic ("command must be one of ..."), these name the line and the problem.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_impl.h"

/* ---- parameters ----------------------------------------------------------------------------- */

/* Ollama's api.Options fields (json tag -> Go kind): i = int, f = float32, b = bool, s = []string. */
static const struct {
    const char *name;
    char type;
} param_types[] = {
    { "num_keep", 'i' },        { "seed", 'i' },           { "num_predict", 'i' },
    { "top_k", 'i' },           { "top_p", 'f' },          { "min_p", 'f' },
    { "typical_p", 'f' },       { "repeat_last_n", 'i' },  { "temperature", 'f' },
    { "repeat_penalty", 'f' },  { "presence_penalty", 'f' }, { "frequency_penalty", 'f' },
    { "stop", 's' },            { "num_ctx", 'i' },        { "num_batch", 'i' },
    { "num_gpu", 'i' },         { "main_gpu", 'i' },       { "use_mmap", 'b' },
    { "num_thread", 'i' },
};

/* Accepted by Ollama with "warning: parameter X is deprecated" and then dropped. */
static const char *const deprecated_params[] = {
    "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock",
    "mirostat", "mirostat_tau", "mirostat_eta",
};

static bool is_deprecated(const char *name) {
    for (size_t i = 0; i < sizeof deprecated_params / sizeof deprecated_params[0]; i++)
        if (strcmp(name, deprecated_params[i]) == 0) return true;
    return false;
}

/* Go's strconv.ParseBool. */
static int parse_bool(const char *v, bool *out) {
    static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
    static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False" };
    for (int i = 0; i < 6; i++) {
        if (strcmp(v, t[i]) == 0) return *out = true, 0;
        if (strcmp(v, f[i]) == 0) return *out = false, 0;
    }
    return -1;
}

json_t *store_param_value(const char *name, const char *value, seek_err *err) {
    for (size_t i = 0; i < sizeof param_types / sizeof param_types[0]; i++) {
        if (strcmp(name, param_types[i].name) != 0) continue;
        char *end;
        errno = 0;
        switch (param_types[i].type) {
        case 'i': {
            long long v = strtoll(value, &end, 10);
            if (errno || end == value || *end)
                break;
            return json_integer((json_int_t)v);
        }
        case 'f': {
            double v = strtod(value, &end);
            if (errno || end == value || *end || !isfinite(v))
                break;
            return json_real(v);
        }
        case 'b': {
            bool v;
            if (parse_bool(value, &v) != 0) break;
            return json_boolean(v);
        }
        default:
            return json_string(value);
        }
        const char *kind = param_types[i].type == 'i' ? "integer" : param_types[i].type == 'f' ? "float" : "bool";
        err_set(err, SEEK_EINVAL, "invalid %s value '%s' for parameter %s", kind, value, name);
        return NULL;
    }
    err_set(err, SEEK_EINVAL, "unknown parameter '%s'", name);
    return NULL;
}

/* ---- lines -------------------------------------------------------------------------------- */

typedef struct reader {
    const char *p;   /* next unread byte */
    int line;        /* number of the line p is on */
} reader;

/* Returns the next line (without its ending) as [*s, *s + *n); false at the end.  Accepts \n,
 * \r\n and \r endings. */
static bool next_line(reader *r, const char **s, size_t *n) {
    if (!*r->p) return false;
    *s = r->p;
    const char *e = r->p;
    while (*e && *e != '\n' && *e != '\r') e++;
    *n = (size_t)(e - r->p);
    if (*e == '\r' && e[1] == '\n') e += 2;
    else if (*e) e++;
    r->p = e;
    r->line++;
    return true;
}

static bool blank(char c) { return c == ' ' || c == '\t'; }

/* Splits the first word off [s, s+n): the word goes to *w and *wn, then s/n advance past the blanks
 * after it. */
static void cut_word(const char **s, size_t *n, const char **w, size_t *wn) {
    size_t i = 0;
    while (i < *n && !blank((*s)[i])) i++;
    *w = *s, *wn = i;
    while (i < *n && blank((*s)[i])) i++;
    *s += i, *n -= i;
}

/* ---- the value of an instruction (possibly several lines) ------------------------------------ */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* Trims blanks at both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n) {
    while (*n && (blank(**s) || **s == '\n')) (*s)++, (*n)--;
    while (*n && (blank((*s)[*n - 1]) || (*s)[*n - 1] == '\n')) (*n)--;
}

/* Ollama's unquote: 1 and the inner text if complete (or not quoted), 0 if a quote is open. */
static int unquote(const char *s, size_t n, const char **in, size_t *in_n) {
    if (n >= 3 && memcmp(s, "\"\"\"", 3) == 0) {
        if (n < 6 || memcmp(s + n - 3, "\"\"\"", 3) != 0) return 0;
        *in = s + 3, *in_n = n - 6;
        return 1;
    }
    if (n >= 1 && s[0] == '"') {
        if (n < 2 || s[n - 1] != '"') return 0;
        *in = s + 1, *in_n = n - 2;
        return 1;
    }
    *in = s, *in_n = n;
    return 1;
}

/* Reads the value starting with [s, s+n) on the current line, taking further lines while a
 * quote is open.  Returns a malloc'd string, or NULL with err. */
static char *read_value(reader *r, const char *s, size_t n, const char *instr, seek_err *err) {
    int start = r->line;
    buf b = { 0 };
    if (buf_add(&b, s, n)) goto oom;
    for (;;) {
        const char *t = b.p, *in;
        size_t tn = b.n, in_n;
        trim(&t, &tn);
        if (unquote(t, tn, &in, &in_n)) {
            char *v = strndup(in, in_n);
            free(b.p);
            if (!v) goto oom;
            return v;
        }
        const char *line;
        size_t ln;
        if (!next_line(r, &line, &ln)) {
            bool triple = tn >= 3 && memcmp(t, "\"\"\"", 3) == 0;
            free(b.p);
            if (triple)
                err_set(err, SEEK_EINVAL, "line %d: unterminated \"\"\" block: %s is never closed with \"\"\"", start, instr);
            else
                err_set(err, SEEK_EINVAL, "line %d: unterminated quoted string: %s is never closed with \"", start, instr);
            return NULL;
        }
        if (buf_add(&b, "\n", 1) || buf_add(&b, line, ln)) goto oom;
    }
oom:
    free(b.p);
    err_set(err, SEEK_ENOMEM, "out of memory");
    return NULL;
}

/* ---- instructions ------------------------------------------------------------------------------ */

static const char *const instructions[] = {
    "from", "parameter", "template", "system", "adapter", "license", "message", "requires",
    "draft", "renderer", "parser",
};

/* The lowercase instruction for word, or NULL if it is not one. */
static const char *instruction(const char *w, size_t n) {
    for (size_t i = 0; i < sizeof instructions / sizeof instructions[0]; i++)
        if (strlen(instructions[i]) == n && strncasecmp(w, instructions[i], n) == 0) return instructions[i];
    return NULL;
}

/* golang.org/x/mod/semver's IsValid after Ollama adds the 'v': vMAJOR[.MINOR[.PATCH]][-pre][+build]. */
static bool semver_valid(const char *v) {
    if (*v == 'v') v++;
    for (int part = 0; part < 3; part++) {
        if (*v < '0' || *v > '9') return false;
        if (*v == '0' && v[1] >= '0' && v[1] <= '9') return false; /* no leading zeros */
        while (*v >= '0' && *v <= '9') v++;
        if (*v != '.') break;
        if (part == 2) return false;
        v++;
    }
    if (*v == '-' || *v == '+') {
        v++;
        if (!*v) return false;
        for (; *v; v++)
            if (!((*v >= '0' && *v <= '9') || (*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
                  *v == '.' || *v == '-' || *v == '+'))
                return false;
    }
    return *v == 0;
}

static int add_warning(store_modelfile *mf, const char *fmt, const char *a, int line) {
    char msg[256];
    snprintf(msg, sizeof msg, fmt, line, a);
    char **w = realloc(mf->warnings, (size_t)(mf->n_warnings + 1) * sizeof *w);
    if (!w) return -1;
    mf->warnings = w;
    if (!(w[mf->n_warnings] = strdup(msg))) return -1;
    mf->n_warnings++;
    return 0;
}

static int add_param(store_modelfile *mf, const char *name, const char *value, int line, seek_err *err) {
    if (is_deprecated(name))
        return add_warning(mf, "line %d: parameter %s is deprecated and ignored", name, line) ? err_set(err, SEEK_ENOMEM, "out of memory") : 0;
    json_t *v = store_param_value(name, value, err);
    if (!v) {
        err_prefix(err, "line %d", line);
        return -1;
    }
    if (strcmp(name, "stop") != 0) return json_object_set_new(mf->params, name, v);
    json_t *arr = json_object_get(mf->params, "stop");
    if (!arr) {
        arr = json_array();
        json_object_set_new(mf->params, "stop", arr);
    }
    return json_array_append_new(arr, v);
}

/* Sets *slot to v (taking it), replacing an earlier value. */
static void replace(char **slot, char *v) {
    free(*slot);
    *slot = v;
}

/* Applies one complete instruction. Takes ownership of value. */
static int apply(store_modelfile *mf, const char *ins, const char *arg1, char *value, int line,
                 seek_err *err) {
    if (strcmp(ins, "from") == 0) {
        if (mf->from) {
            free(value);
            return err_set(err, SEEK_EINVAL, "line %d: more than one FROM (the first is on line %d)", line, mf->from_line);
        }
        mf->from = value, mf->from_line = line;
    } else if (strcmp(ins, "template") == 0) {
        replace(&mf->template_, value);
    } else if (strcmp(ins, "system") == 0) {
        replace(&mf->system, value);
    } else if (strcmp(ins, "license") == 0) {
        char **l = realloc(mf->licenses, (size_t)(mf->n_licenses + 1) * sizeof *l);
        if (!l) {
            free(value);
            return err_set(err, SEEK_ENOMEM, "out of memory");
        }
        mf->licenses = l;
        l[mf->n_licenses++] = value;
    } else if (strcmp(ins, "requires") == 0) {
        if (!semver_valid(value)) {
            err_set(err, SEEK_EINVAL, "line %d: REQUIRES must be a valid semantic version (e.g. 0.14.0), not '%s'", line, value);
            free(value);
            return -1;
        }
        replace(&mf->requires, strdup(value + (value[0] == 'v')));
        free(value);
    } else if (strcmp(ins, "parameter") == 0) {
        int rc = add_param(mf, arg1, value, line, err);
        free(value);
        return rc;
    } else if (strcmp(ins, "message") == 0) {
        json_t *m = json_pack("{s:s, s:s}", "role", arg1, "content", value);
        free(value);
        if (!m || json_array_append_new(mf->messages, m)) return err_set(err, SEEK_ENOMEM, "out of memory");
    } else {
        free(value);
        return err_set(err, SEEK_EINVAL, "line %d: %s is not supported yet", line, ins);
    }
    return 0;
}

static void upper(const char *s, char *out, size_t cap) {
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) out[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    out[i] = 0;
}

/* Parses one instruction line [s, s+n) (first non-blank at s). */
static int parse_instruction(store_modelfile *mf, reader *r, const char *s, size_t n, seek_err *err) {
    int line = r->line;
    const char *w;
    size_t wn;
    cut_word(&s, &n, &w, &wn);
    const char *ins = instruction(w, wn);
    if (!ins) return err_set(err, SEEK_EINVAL, "line %d: unknown instruction '%.*s'", line, (int)(wn > 60 ? 60 : wn), w);
    char INS[16], arg1[96] = "";
    upper(ins, INS, sizeof INS);
    if (strcmp(ins, "adapter") == 0) return err_set(err, SEEK_EUNSUP, "line %d: ADAPTER is not supported yet", line);
    if (!strcmp(ins, "draft") || !strcmp(ins, "renderer") || !strcmp(ins, "parser"))
        return err_set(err, SEEK_EUNSUP, "line %d: %s is not supported", line, INS);
    if (strcmp(ins, "parameter") == 0 || strcmp(ins, "message") == 0) {
        bool param = ins[0] == 'p';
        const char *a;
        size_t an;
        cut_word(&s, &n, &a, &an);
        if (an == 0 || n == 0)
            return err_set(err, SEEK_EINVAL, "line %d: %s needs %s", line, INS,
                           param ? "a name and a value" : "a role and a message");
        snprintf(arg1, sizeof arg1, "%.*s", (int)(an < sizeof arg1 - 1 ? an : sizeof arg1 - 1), a);
        for (size_t i = 0; param && i < an; i++)
            if (!(a[i] == '_' || (a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'z') || (a[i] >= 'A' && a[i] <= 'Z')))
                return err_set(err, SEEK_EINVAL, "line %d: invalid parameter name '%s'", line, arg1);
        if (!param && strcmp(arg1, "system") && strcmp(arg1, "user") && strcmp(arg1, "assistant"))
            return err_set(err, SEEK_EINVAL, "line %d: MESSAGE role must be one of \"system\", \"user\", or \"assistant\", not '%s'", line, arg1);
    } else if (n == 0) {
        return err_set(err, SEEK_EINVAL, "line %d: %s needs a value", line, INS);
    }
    char *value = read_value(r, s, n, INS, err);
    if (!value) return -1;
    if (!*value && (strcmp(ins, "from") == 0 || strcmp(ins, "requires") == 0)) {
        free(value);
        return err_set(err, SEEK_EINVAL, "line %d: %s needs a value", line, INS);
    }
    return apply(mf, ins, arg1, value, line, err);
}

int store_modelfile_parse(const char *text, store_modelfile *mf, seek_err *err) {
    memset(mf, 0, sizeof *mf);
    mf->params = json_object();
    mf->messages = json_array();
    if (!mf->params || !mf->messages) {
        store_modelfile_free(mf);
        return err_set(err, SEEK_ENOMEM, "out of memory");
    }
    reader r = { text, 0 };
    if (strncmp(r.p, "\xEF\xBB\xBF", 3) == 0) r.p += 3; /* UTF-8 byte order mark */
    const char *s;
    size_t n;
    while (next_line(&r, &s, &n)) {
        while (n && blank(*s)) s++, n--;
        if (n == 0 || *s == '#') continue;
        if (parse_instruction(mf, &r, s, n, err)) {
            store_modelfile_free(mf);
            return -1;
        }
    }
    if (!mf->from) {
        store_modelfile_free(mf);
        return err_set(err, SEEK_EINVAL, "no FROM line: a Modelfile needs FROM <model or file>");
    }
    return 0;
}

void store_modelfile_free(store_modelfile *mf) {
    if (!mf) return;
    free(mf->from);
    free(mf->template_);
    free(mf->system);
    for (int i = 0; i < mf->n_licenses; i++) free(mf->licenses[i]);
    free(mf->licenses);
    json_decref(mf->params);
    json_decref(mf->messages);
    free(mf->requires);
    for (int i = 0; i < mf->n_warnings; i++) free(mf->warnings[i]);
    free(mf->warnings);
    memset(mf, 0, sizeof *mf);
}

/* ---- writing a Modelfile back ------------------------------------------------------------------ */

/* Appends "INSTR value\n" with the value quoted so that the parser reads it back unchanged. */
static int put_quoted(buf *b, const char *prefix, const char *v) {
    size_t n = strlen(v);
    bool plain = n > 0 && !strchr(v, '\n') && !strchr(v, '\r') && !blank(v[0]) && !blank(v[n - 1]) && v[0] != '"';
    const char *q = plain ? "" : strchr(v, '"') ? "\"\"\"" : "\"";
    return buf_add(b, prefix, strlen(prefix)) || buf_add(b, q, strlen(q)) || buf_add(b, v, n) ||
           buf_add(b, q, strlen(q)) || buf_add(b, "\n", 1);
}

/* Formats a JSON scalar the way Go's %v prints it (0.6, 40, true, text). */
static void scalar_text(json_t *v, char *out, size_t cap) {
    if (json_is_string(v)) snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_integer(v)) snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(out, cap, "%.9g", json_real_value(v));
    else if (json_is_boolean(v)) snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    else snprintf(out, cap, "null");
}

static int put_params(buf *b, const char *text) {
    json_t *p = json_loads(text, 0, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        return 0;
    }
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(p, k, v) {
        char prefix[128], val[4096];
        snprintf(prefix, sizeof prefix, "PARAMETER %s ", k);
        if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                scalar_text(e, val, sizeof val);
                rc |= put_quoted(b, prefix, val);
            }
        } else {
            scalar_text(v, val, sizeof val);
            rc |= put_quoted(b, prefix, val);
        }
    }
    json_decref(p);
    return rc;
}

static int put_messages(buf *b, const char *text) {
    json_t *a = json_loads(text, 0, NULL);
    size_t i;
    json_t *m;
    int rc = 0;
    json_array_foreach(a, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        if (!role || !content) continue;
        char prefix[96];
        snprintf(prefix, sizeof prefix, "MESSAGE %s ", role);
        rc |= put_quoted(b, prefix, content);
    }
    json_decref(a);
    return rc;
}

/* Appends the layer(s) of one media type as instructions. */
static int put_layers(buf *b, const store *s, const store_manifest *m, const char *mt, seek_err *err) {
    for (int i = 0; i < m->n_layers; i++) {
        if (strcmp(m->layers[i].media_type, mt) != 0) continue;
        size_t len;
        char *text = store_blob_read(s, m->layers[i].digest, &len, err);
        if (!text) return -1;
        int rc = 0;
        if (!strcmp(mt, STORE_MT_TEMPLATE)) rc = put_quoted(b, "TEMPLATE ", text);
        else if (!strcmp(mt, STORE_MT_SYSTEM)) rc = put_quoted(b, "SYSTEM ", text);
        else if (!strcmp(mt, STORE_MT_LICENSE)) rc = put_quoted(b, "LICENSE ", text);
        else if (!strcmp(mt, STORE_MT_PARAMS)) rc = put_params(b, text);
        else if (!strcmp(mt, STORE_MT_MESSAGES)) rc = put_messages(b, text);
        free(text);
        if (rc) return err_set(err, SEEK_ENOMEM, "out of memory");
    }
    return 0;
}

char *store_modelfile_text(const store *s, const store_manifest *m, const char *display_name,
                           seek_err *err) {
    buf b = { 0 };
    char head[1024], path[STORE_PATH_MAX];
    const store_layer *model = store_manifest_layer(m, STORE_MT_MODEL);
    if (!model) {
        err_set(err, SEEK_EFORMAT, "model '%s' has no model layer", display_name);
        return NULL;
    }
    if (store_blob_path(s, model->digest, path, sizeof path, err)) return NULL;
    snprintf(head, sizeof head,
             "# Modelfile generated by \"seek show\"\n"
             "# To build a new Modelfile based on this, replace FROM with:\n"
             "# FROM %s\n\n",
             display_name);
    static const char *const order[] = { STORE_MT_TEMPLATE, STORE_MT_SYSTEM, STORE_MT_PARAMS,
                                         STORE_MT_LICENSE, STORE_MT_MESSAGES };
    if (buf_add(&b, head, strlen(head)) || put_quoted(&b, "FROM ", path)) goto oom;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (put_layers(&b, s, m, order[i], err)) {
            free(b.p);
            return NULL;
        }
    return b.p;
oom:
    free(b.p);
    err_set(err, SEEK_ENOMEM, "out of memory");
    return NULL;
}
