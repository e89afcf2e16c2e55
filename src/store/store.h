/*
 * store.h - the model store: names, content-addressed blobs, OCI manifests, the Modelfile
 * parser, `create`, and the resolver the runtime uses to turn "deepseek-r1:1.5b" (or a .gguf
 * path) into a GGUF file plus its template, system prompt, parameters and messages.
 *
 * On-disk layout (Ollama's, so SEEK_MODELS=~/.ollama/models reads an Ollama store as it is):
 *
 *   <root>/blobs/sha256-<64 hex>                 content-addressed files (dash in the file name)
 *   <root>/manifests/<host>/<namespace>/<model>/<tag>
 *       {"schemaVersion":2,
 *        "mediaType":"application/vnd.docker.distribution.manifest.v2+json",
 *        "config":{"mediaType":"application/vnd.docker.container.image.v1+json",
 *                  "digest":"sha256:<hex>","size":N},
 *        "layers":[{"mediaType":"application/vnd.ollama.image.model","digest":...,"size":N},...]}
 *
 * Digests are written "sha256:<hex>" (colon) in JSON and "sha256-<hex>" (dash) in file names.
 * Layer media types: STORE_MT_MODEL (the GGUF), _TEMPLATE (text), _SYSTEM (text), _PARAMS (JSON
 * object, "stop" an array of strings), _LICENSE (text, one layer per LICENSE), _MESSAGES (JSON
 * array of {"role","content"}).  The config blob is Ollama's ConfigV2: model_format, model_family,
 * model_families, model_type (parameter count, "1.8B"), file_type ("Q4_K_M"), requires (when a
 * Modelfile has REQUIRES), architecture ("amd64"), os ("linux"), rootfs {type, diff_ids}.
 *
 * Crash safety: every file is written to a temp name ".seek-tmp-<pid>-<n>..." in its target
 * directory, fsynced and renamed; blobs are hashed while they are written and renamed to their
 * digest, and a manifest is written only after all its blobs exist.  A crash or a full disk thus
 * leaves at most temp files, which store_clean_tmp() removes once their process is gone (list and
 * lookup never see them: a leading dot is not a valid name part).  A blob file never holds bytes
 * that do not hash to its name, and no manifest points at a missing blob.
 *
 * Templates: seek renders Jinja chat templates (the GGUF's tokenizer.chat_template), not Ollama's
 * Go templates.  `create` stores a template layer only when the Modelfile (or the model it
 * builds FROM) has TEMPLATE; otherwise the runtime uses the GGUF's own template, which stays in
 * the model blob.  Template layers that look like Go templates ("{{ .Prompt }}", as Ollama's
 * library models have) are reported by store_resolve as unusable (template_go) so the runtime can
 * fall back to the GGUF's template.
 *
 * Concurrency: creates may run side by side (temp names carry the pid).  rm removes only blobs no
 * manifest references at the moment it looks; a create that is between writing a shared blob and
 * writing its manifest can race with it (as in Ollama).
 *
 * Errors: every function returns 0 (or a pointer) on success and -1 (or NULL) with err filled.
 * Ownership is stated per function; "caller frees" means with the matching *_free, or free().
 */
#ifndef SEEK_STORE_H
#define SEEK_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/base.h"

#define STORE_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define STORE_MT_CONFIG "application/vnd.docker.container.image.v1+json"
#define STORE_MT_MODEL "application/vnd.ollama.image.model"
#define STORE_MT_TEMPLATE "application/vnd.ollama.image.template"
#define STORE_MT_SYSTEM "application/vnd.ollama.image.system"
#define STORE_MT_PARAMS "application/vnd.ollama.image.params"
#define STORE_MT_LICENSE "application/vnd.ollama.image.license"
#define STORE_MT_MESSAGES "application/vnd.ollama.image.messages"
#define STORE_MT_ADAPTER "application/vnd.ollama.image.adapter"

#define STORE_DEFAULT_HOST "registry.ollama.ai"
#define STORE_DEFAULT_NAMESPACE "library"
#define STORE_DEFAULT_TAG "latest"

/* "sha256:" + 64 hex + NUL */
#define STORE_DIGEST_LEN 72

/* ---- names --------------------------------------------------------------------------- */

/*
 * A model name [host/][namespace/]model[:tag], parsed the way Ollama's types/model does:
 * the tag is what follows the last ':' if that comes after the last '/'; then the model is the
 * last '/' part, the namespace the one before, and the host everything before that (an
 * "http(s)://" scheme is dropped).  Missing parts get registry.ollama.ai, library, latest.
 * Each part: 1..80 bytes (host 1..350), first byte [A-Za-z0-9_], the rest [A-Za-z0-9_.-];
 * no '.' in the namespace; ':' only in the host (a port).  Case is kept but comparisons and
 * lookups ignore it.
 */
typedef struct store_name {
    char host[352];
    char ns[82];
    char model[82];
    char tag[82];
} store_name;

/* Parses s into out (defaults filled in).  -1 with err "invalid model name 'x': ..." if any
 * part is empty, too long or has a bad character. */
int store_name_parse(const char *s, store_name *out, seek_err *err);
/* True if s parses. */
bool store_name_valid(const char *s);
/* The short form `ollama list` shows: "deepseek-r1:1.5b" for the default host and namespace,
 * "ns/model:tag" for another namespace, "host/ns/model:tag" for another host; the tag is
 * always shown. */
void store_name_display(const store_name *n, char *buf, size_t cap);
/* The full form "host/namespace/model:tag". */
void store_name_full(const store_name *n, char *buf, size_t cap);
/* Case-insensitive equality of all four parts. */
bool store_name_eq(const store_name *a, const store_name *b);

/* ---- the store ------------------------------------------------------------------------- */

typedef struct store store;

/* A handle on the store at root; NULL root means $SEEK_MODELS, else ~/.seek/models.  Creates
 * nothing on disk (writers create directories as they need them).  Caller frees with
 * store_close. */
store *store_open(const char *root, seek_err *err);
void store_close(store *s);
/* The root directory (owned by s). */
const char *store_root(const store *s);

/* Removes temp files (".seek-tmp-<pid>-*") left in blobs/ and under manifests/ by processes
 * that no longer run.  Returns how many were removed. */
int store_clean_tmp(store *s);

/* ---- digests and blobs ----------------------------------------------------------------- */

/* True for "sha256:" followed by exactly 64 lowercase hex digits. */
bool store_digest_valid(const char *digest);
/* SHA-256 of data as "sha256:<hex>" into digest (STORE_DIGEST_LEN bytes). */
void store_digest_mem(const void *data, size_t len, char *digest);
/* SHA-256 of a file's contents.  -1 with err if it cannot be read. */
int store_digest_file(const char *path, char *digest, seek_err *err);

/* The path of the blob with digest: <root>/blobs/sha256-<hex>.  -1 if digest is malformed or
 * the path does not fit cap.  The file need not exist. */
int store_blob_path(const store *s, const char *digest, char *buf, size_t cap, seek_err *err);
/* True if the blob file exists (and, when size is not UINT64_MAX, has that size). */
bool store_blob_exists(const store *s, const char *digest, uint64_t size);

/* Progress of a long step: status is the Ollama-style line ("copying file"), digest the blob's
 * digest once known (else NULL), done/total bytes (total 0 when unknown). */
typedef void (*store_progress_fn)(void *ctx, const char *status, const char *digest,
                                  uint64_t done, uint64_t total);

/* Copies the file at path into the store as a blob: written to a temp file while hashed, then
 * renamed to its digest (or dropped if that blob already exists).  digest (STORE_DIGEST_LEN)
 * and size receive the result; *existed (may be NULL) whether the blob was there already.
 * progress may be NULL. */
int store_blob_put_file(store *s, const char *path, store_progress_fn progress, void *ctx,
                        char *digest, uint64_t *size, bool *existed, seek_err *err);
/* Same for bytes in memory. */
int store_blob_put_mem(store *s, const void *data, size_t len, char *digest, bool *existed,
                       seek_err *err);
/* A path for a temp file in blobs/ that store_clean_tmp recognizes (suffix, e.g. ".gguf", is
 * appended).  Creates blobs/ if needed.  The caller creates and removes the file. */
int store_tmp_path(store *s, const char *suffix, char *buf, size_t cap, seek_err *err);
/* Moves a finished temp file (from store_tmp_path) into the store: hashes it, renames it to
 * its digest (or removes it when the blob exists).  The temp path is gone afterwards in every
 * case, also on error. */
int store_blob_adopt(store *s, const char *tmp_path, char *digest, uint64_t *size, bool *existed,
                     seek_err *err);
/* Hashes a blob and compares with its name: 0 if it matches, -1 with err otherwise. */
int store_blob_verify(const store *s, const char *digest, seek_err *err);
/* Reads a whole (small) blob into a NUL-terminated malloc'd buffer; caller frees. */
char *store_blob_read(const store *s, const char *digest, size_t *len, seek_err *err);

/* ---- manifests ------------------------------------------------------------------------- */

typedef struct store_layer {
    char media_type[128];
    char digest[STORE_DIGEST_LEN];
    uint64_t size;
} store_layer;

typedef struct store_manifest {
    store_name name;         /* the name as stored on disk (its case) */
    store_layer config;
    store_layer *layers;     /* n_layers entries, owned */
    int n_layers;
    char digest[STORE_DIGEST_LEN]; /* sha256 of the manifest file's bytes (ID = 12 hex of it) */
    int64_t mtime;           /* manifest file modification time, unix seconds */
} store_manifest;

/* Reads the manifest of name, matching each path component case-insensitively when the exact
 * path does not exist.  SEEK_ENOTFOUND when there is none.  Caller frees with
 * store_manifest_free. */
int store_manifest_read(const store *s, const store_name *name, store_manifest *m, seek_err *err);
void store_manifest_free(store_manifest *m);
/* Writes m (config + layers) as name's manifest, atomically; every blob must exist.  When a
 * manifest exists whose name differs only in case, that file is replaced (the stored case is
 * kept).  m->digest and m->mtime are set. */
int store_manifest_write(store *s, const store_name *name, store_manifest *m, seek_err *err);
/* Sum of the config and layer sizes (what `list` shows). */
uint64_t store_manifest_size(const store_manifest *m);
/* The first layer of a media type, or NULL.  Points into m. */
const store_layer *store_manifest_layer(const store_manifest *m, const char *media_type);

/* One installed model, for list. */
typedef struct store_entry {
    store_name name;
    char digest[STORE_DIGEST_LEN]; /* manifest digest */
    uint64_t size;
    int64_t mtime;
} store_entry;

/* Every readable manifest, newest first.  *out is malloc'd (caller frees with free()); files
 * that are not valid names or manifests are skipped. */
int store_list(const store *s, store_entry **out, size_t *n, seek_err *err);

/* Copies src's manifest to dst (blobs are shared). */
int store_copy(store *s, const store_name *src, const store_name *dst, seek_err *err);
/* Removes name's manifest, then every blob it referenced that no remaining manifest references;
 * *n_blobs (may be NULL) gets how many blob files were deleted.  Empty manifest directories are
 * removed too. */
int store_remove(store *s, const store_name *name, int *n_blobs, seek_err *err);

/* ---- Modelfile ------------------------------------------------------------------------- */

/*
 * The Modelfile, parsed like Ollama's parser/parser.go: one instruction per line (names are
 * case-insensitive), '#' starts a comment line, values run to the end of the line unless they
 * open a quote: "..." or """...""" may span lines and end at a line ending with the closing
 * quote(s); the quotes are removed and the outer whitespace of the value is trimmed.
 *   FROM x             a .gguf file, an HF checkpoint directory (relative paths: the Modelfile's
 *                      directory; "~" = $HOME) or a store model
 *   PARAMETER k v      typed by name (ints, floats, bools; "stop" repeats and accumulates);
 *                      unknown names are errors, deprecated ones are dropped with a warning
 *   TEMPLATE/SYSTEM    text (the last one wins);  LICENSE text (each adds a license)
 *   MESSAGE role text  role is system, user or assistant
 *   REQUIRES version   a semantic version ("0.6.0"), stored in the config blob
 *   ADAPTER, DRAFT, RENDERER, PARSER: recognized, rejected as not supported
 * Errors name the line: "line 3: unknown instruction 'FORM'".
 */
typedef struct store_modelfile {
    char *from;          /* the FROM argument as written */
    int from_line;
    char *template_;     /* NULL if no TEMPLATE */
    char *system;        /* NULL if no SYSTEM */
    char **licenses;     /* n_licenses strings */
    int n_licenses;
    json_t *params;      /* object, typed values; never NULL after a successful parse */
    json_t *messages;    /* array of {"role","content"}; never NULL after a successful parse */
    char *requires;      /* NULL if no REQUIRES (else without a leading 'v') */
    char **warnings;     /* n_warnings messages for the user ("line 4: parameter ... deprecated") */
    int n_warnings;
} store_modelfile;

/* Parses text.  On success mf owns everything (free with store_modelfile_free); on error mf is
 * left empty (safe to free). */
int store_modelfile_parse(const char *text, store_modelfile *mf, seek_err *err);
void store_modelfile_free(store_modelfile *mf);

/* Converts one PARAMETER value to its JSON type (json_integer/json_real/json_true/json_false,
 * or a json_string for stop).  -1 with err "unknown parameter 'x'" or "invalid ... value". */
json_t *store_param_value(const char *name, const char *value, seek_err *err);

/* A Modelfile that rebuilds the model (what `show --modelfile` prints); blob paths for FROM.
 * Caller frees. */
char *store_modelfile_text(const store *s, const store_manifest *m, const char *display_name,
                           seek_err *err);

/* ---- create ---------------------------------------------------------------------------- */

typedef struct store_create_opts {
    const char *dir;       /* directory relative FROM paths are resolved against ("." if NULL) */
    const char *quantize;  /* mix name ("Q4_K_M") or NULL: quantize an F32/F16/BF16 model first */
    int n_threads;         /* for quantize / convert; <= 0: all CPUs */
    store_progress_fn progress; /* status lines; may be NULL */
    void *ctx;
} store_create_opts;

/*
 * Builds name from mf and writes its manifest (replacing an existing one; blobs only the old
 * manifest used are then removed).  Status lines go to opts->progress in Ollama's order:
 * "gathering model components", "copying file" (with digest and byte counts), "converting
 * model", "parsing GGUF", "quantizing F16 model to Q4_K_M", "using existing layer" / "creating new
 * layer" (digest), "writing manifest", "success".
 * DeepSeek-R1 models (chat template with "<｜Assistant｜>" and "<think>", or general.name
 * containing "DeepSeek-R1") get temperature 0.6, top_p 0.95 and the R1 stop strings in their
 * params unless the Modelfile (or the base model) sets those keys.
 */
int store_create(store *s, const store_name *name, const store_modelfile *mf,
                 const store_create_opts *opts, seek_err *err);

/* A parameter count the way Ollama shows it (format.HumanNumber): "1.8B", "494.03M", "12K";
 * the config blob's model_type and `show`'s "parameters". */
void store_human_number(uint64_t n, char *buf, size_t cap);

/* ---- resolve (for the runtime) ---------------------------------------------------------- */

typedef struct store_model {
    char *name;        /* display name ("deepseek-r1:1.5b"), or the path given */
    char *model_path;  /* the GGUF to load: the model blob, or the .gguf path given */
    char *template_;   /* Jinja template text to use, or NULL: use the GGUF's chat template */
    bool template_go;  /* the model has a template layer in Ollama's Go syntax (left out) */
    char *system;      /* default system prompt, or NULL */
    char *license;     /* license text(s), joined by blank lines, or NULL */
    json_t *params;    /* object (empty when none); owned: json_decref via store_model_free */
    json_t *messages;  /* array of {"role","content"} (empty when none); owned */
    char digest[STORE_DIGEST_LEN]; /* manifest digest; "" for a plain .gguf path */
} store_model;

/* True if arg should be treated as a file path rather than a store name: it ends in ".gguf", starts
 * with "/", "./" or "../", or has a '/' and names an existing regular file ("models/m.bin"). */
bool store_is_path(const char *arg);

/* Fills out for a store name or a .gguf path.  s may be NULL (the default store is opened for
 * names).  SEEK_ENOTFOUND: "model 'x' not found".  Everything in out is owned by out: free with
 * store_model_free (safe on a zeroed struct). */
int store_resolve(store *s, const char *name_or_path, store_model *out, seek_err *err);
void store_model_free(store_model *m);

#endif
