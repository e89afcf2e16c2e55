/*
 * test_store.c - the model store's library API: the name table (valid/invalid, defaults, display
 * form), every Modelfile error message, PARAMETER typing, blobs (hash-named, deduplicated),
 * manifests (case-insensitive lookup), create / list / copy / remove round trips over the
 * llama.cpp fixtures, and store_resolve.  The CLI and crash behaviour are in test_store.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"
#include "testutil.h"

/* ---- names ---------------------------------------------------------------------------------- */

static void test_names(void) {
    static const struct {
        const char *in, *host, *ns, *model, *tag, *display;
    } ok[] = {
        { "deepseek-r1", "registry.ollama.ai", "library", "deepseek-r1", "latest", "deepseek-r1:latest" },
        { "deepseek-r1:1.5b", "registry.ollama.ai", "library", "deepseek-r1", "1.5b", "deepseek-r1:1.5b" },
        { "me/my_model:v2", "registry.ollama.ai", "me", "my_model", "v2", "me/my_model:v2" },
        { "example.com/me/m:t", "example.com", "me", "m", "t", "example.com/me/m:t" },
        { "localhost:5000/me/m", "localhost:5000", "me", "m", "latest", "localhost:5000/me/m:latest" },
        { "https://example.com/ns/m:1", "example.com", "ns", "m", "1", "example.com/ns/m:1" },
        { "Registry.Ollama.AI/Library/Qwen:Latest", "Registry.Ollama.AI", "Library", "Qwen", "Latest", "Qwen:Latest" },
        { "_x", "registry.ollama.ai", "library", "_x", "latest", "_x:latest" },
        { "a", "registry.ollama.ai", "library", "a", "latest", "a:latest" },
        { "m:Q4_K_M-v1.2", "registry.ollama.ai", "library", "m", "Q4_K_M-v1.2", "m:Q4_K_M-v1.2" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        store_name n;
        seek_err err = { 0 };
        int rc = store_name_parse(ok[i].in, &n, &err);
        CHECK(rc == 0, "'%s' should parse: %s", ok[i].in, err.msg);
        if (rc) continue;
        CHECK(!strcmp(n.host, ok[i].host) && !strcmp(n.ns, ok[i].ns) && !strcmp(n.model, ok[i].model) &&
                  !strcmp(n.tag, ok[i].tag),
              "'%s' -> %s/%s/%s:%s", ok[i].in, n.host, n.ns, n.model, n.tag);
        char d[600];
        store_name_display(&n, d, sizeof d);
        CHECK(!strcmp(d, ok[i].display), "display of '%s' = '%s', want '%s'", ok[i].in, d, ok[i].display);
    }
    char long_model[100], long_tag[100], long_host[400], long_ok[100];
    memset(long_model, 'm', 81), long_model[81] = 0;
    snprintf(long_tag, sizeof long_tag, "m:%.*s", 81, long_model);
    memset(long_host, 'h', 351), long_host[351] = 0;
    strcat(long_host, "/n/m");
    memset(long_ok, 'm', 80), long_ok[80] = 0;
    CHECK(store_name_valid(long_ok), "an 80-character model part is valid");
    const char *bad[] = {
        "", ":tag", "model:", "/m", "ns/", "a/b/c/d", "-model", ".model", "mo del", "m!", "m:t/x",
        "ns.x/m", "m:t:u", "m@sha256-00", "a//m", long_model, long_tag, long_host, "m:-t", "m:t!",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        seek_err err = { 0 };
        store_name n;
        CHECK(store_name_parse(bad[i], &n, &err) != 0, "'%.40s' should be invalid", bad[i]);
        CHECK(strstr(err.msg, "invalid model name") != NULL, "message for '%.40s': %s", bad[i], err.msg);
    }
    store_name a, b;
    store_name_parse("DeepSeek-R1:1.5B", &a, NULL);
    store_name_parse("registry.ollama.ai/library/deepseek-r1:1.5b", &b, NULL);
    CHECK(store_name_eq(&a, &b), "names compare case-insensitively");
    char full[600];
    store_name_full(&b, full, sizeof full);
    CHECK(!strcmp(full, "registry.ollama.ai/library/deepseek-r1:1.5b"), "full name %s", full);
}

/* ---- Modelfile -------------------------------------------------------------------------------- */

static void expect_error(const char *text, const char *want) {
    store_modelfile mf;
    seek_err err = { 0 };
    int rc = store_modelfile_parse(text, &mf, &err);
    CHECK(rc != 0, "should fail (%s): %s", want, text);
    CHECK(strstr(err.msg, want) != NULL, "message '%s' should contain '%s'", err.msg, want);
    store_modelfile_free(&mf);
}

static void test_modelfile_errors(void) {
    expect_error("FROM x\n\nFORM y\n", "line 3: unknown instruction 'FORM'");
    expect_error("FROM x\n\n\n\nPARAMETER temperature\n", "line 5: PARAMETER needs a name and a value");
    expect_error("FROM x\nPARAMETER\n", "line 2: PARAMETER needs a name and a value");
    expect_error("FROM x\nTEMPLATE \"\"\"{{ .Prompt }}\nmore\n", "line 2: unterminated \"\"\" block");
    expect_error("FROM x\nSYSTEM \"hello\nworld\n", "line 2: unterminated quoted string");
    expect_error("# only a comment\nSYSTEM hi\n", "no FROM line");
    expect_error("", "no FROM line");
    expect_error("FROM x\nADAPTER ./lora.gguf\n", "line 2: ADAPTER is not supported yet");
    expect_error("FROM x\nDRAFT ./d.gguf\n", "line 2: DRAFT is not supported");
    expect_error("FROM x\nPARAMETER foo 1\n", "line 2: unknown parameter 'foo'");
    expect_error("FROM x\nPARAMETER temperature hot\n", "line 2: invalid float value 'hot' for parameter temperature");
    expect_error("FROM x\nPARAMETER num_ctx 4k\n", "line 2: invalid integer value '4k' for parameter num_ctx");
    expect_error("FROM x\nPARAMETER use_mmap maybe\n", "line 2: invalid bool value 'maybe'");
    expect_error("FROM x\nPARAMETER top-k 5\n", "line 2: invalid parameter name 'top-k'");
    expect_error("FROM x\nMESSAGE robot hi\n", "line 2: MESSAGE role must be one of");
    expect_error("FROM x\nMESSAGE user\n", "line 2: MESSAGE needs a role and a message");
    expect_error("FROM x\nFROM y\n", "line 2: more than one FROM (the first is on line 1)");
    expect_error("FROM\n", "line 1: FROM needs a value");
    expect_error("FROM \"\"\n", "line 1: FROM needs a value");
    expect_error("FROM x\nREQUIRES soon\n", "line 2: REQUIRES must be a valid semantic version");
    expect_error("FROM x\nFROM: y\n", "line 2: unknown instruction 'FROM:'");
    expect_error("FROM x\r\nSYSTEM ok\r\nBOGUS 1\r\n", "line 3: unknown instruction 'BOGUS'");
}

static void test_modelfile_parse(void) {
    const char *text =
        "\xEF\xBB\xBF# a comment\n"
        "from ./model.gguf\n"
        "  Parameter temperature 0.7\n"
        "PARAMETER stop \"<|im_end|>\"\n"
        "PARAMETER stop <|user|>\n"
        "PARAMETER num_ctx 8192\n"
        "PARAMETER use_mmap false\n"
        "PARAMETER mirostat 1\n"
        "TEMPLATE \"\"\"{% for m in messages %}\n{{ m.content }}\n{% endfor %}\"\"\"\n"
        "SYSTEM \"\"\"\nYou are \"careful\".\n\"\"\"\n"
        "SYSTEM   last one wins  \n"
        "LICENSE MIT\n"
        "LICENSE \"two\nlines\"\n"
        "MESSAGE user Hi there\n"
        "MESSAGE assistant \"Hello\"\n"
        "REQUIRES v0.6.1\n";
    store_modelfile mf;
    seek_err err = { 0 };
    int rc = store_modelfile_parse(text, &mf, &err);
    CHECK(rc == 0, "parse: %s", err.msg);
    if (rc) return;
    CHECK(mf.from && !strcmp(mf.from, "./model.gguf") && mf.from_line == 2, "FROM %s line %d", mf.from, mf.from_line);
    json_t *t = json_object_get(mf.params, "temperature");
    CHECK(json_is_real(t) && json_real_value(t) > 0.69 && json_real_value(t) < 0.71, "temperature typed float");
    json_t *stop = json_object_get(mf.params, "stop");
    CHECK(json_array_size(stop) == 2 && !strcmp(json_string_value(json_array_get(stop, 0)), "<|im_end|>") &&
              !strcmp(json_string_value(json_array_get(stop, 1)), "<|user|>"),
          "stop accumulates, quotes removed");
    CHECK(json_integer_value(json_object_get(mf.params, "num_ctx")) == 8192, "num_ctx typed int");
    CHECK(json_is_false(json_object_get(mf.params, "use_mmap")), "use_mmap typed bool");
    CHECK(!json_object_get(mf.params, "mirostat") && mf.n_warnings == 1 && strstr(mf.warnings[0], "mirostat"),
          "deprecated parameter dropped with a warning");
    CHECK(mf.template_ && !strcmp(mf.template_, "{% for m in messages %}\n{{ m.content }}\n{% endfor %}"),
          "multi-line template: [%s]", mf.template_);
    CHECK(mf.system && !strcmp(mf.system, "last one wins"), "system: last wins, trimmed: [%s]", mf.system);
    CHECK(mf.n_licenses == 2 && !strcmp(mf.licenses[0], "MIT") && !strcmp(mf.licenses[1], "two\nlines"),
          "licenses accumulate");
    CHECK(json_array_size(mf.messages) == 2 &&
              !strcmp(json_string_value(json_object_get(json_array_get(mf.messages, 0), "content")), "Hi there") &&
              !strcmp(json_string_value(json_object_get(json_array_get(mf.messages, 1), "content")), "Hello"),
          "messages");
    CHECK(mf.requires && !strcmp(mf.requires, "0.6.1"), "requires %s", mf.requires);
    store_modelfile_free(&mf);

    /* a """ block keeps its inner newlines, as Ollama's does */
    rc = store_modelfile_parse("FROM x\nSYSTEM \"\"\"\nline\n\"\"\"\n", &mf, &err);
    CHECK(rc == 0 && mf.system && !strcmp(mf.system, "\nline\n"), "inner newlines kept: [%s]", mf.system);
    store_modelfile_free(&mf);

    /* typing */
    json_t *v = store_param_value("top_k", "40", NULL);
    CHECK(json_is_integer(v) && json_integer_value(v) == 40, "top_k int");
    json_decref(v);
    v = store_param_value("use_mmap", "True", NULL);
    CHECK(json_is_true(v), "bool like Go's ParseBool");
    json_decref(v);
    v = store_param_value("seed", "1.5", NULL);
    CHECK(v == NULL, "seed 1.5 is not an int");
}

/* ---- store fixtures ------------------------------------------------------------------------- */

static char tmp_root[256];
static int n_progress;

static void count_progress(void *ctx, const char *status, const char *digest, uint64_t d, uint64_t t) {
    (void)ctx, (void)status, (void)digest, (void)d, (void)t;
    n_progress++;
}

static int count_blobs(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s/blobs 2>/dev/null | grep -c '^sha256-'", tmp_root);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

static int create_from_text(store *s, const char *name, const char *text, seek_err *err) {
    store_modelfile mf;
    store_name n;
    if (store_name_parse(name, &n, err) || store_modelfile_parse(text, &mf, err)) return -1;
    store_create_opts opts = { .dir = "/", .progress = count_progress };
    int rc = store_create(s, &n, &mf, &opts, err);
    store_modelfile_free(&mf);
    return rc;
}

static void test_blobs(store *s) {
    char d1[STORE_DIGEST_LEN], d2[STORE_DIGEST_LEN];
    bool existed = true;
    seek_err err = { 0 };
    CHECK(store_blob_put_mem(s, "abc", 3, d1, &existed, &err) == 0 && !existed, "put: %s", err.msg);
    CHECK(!strcmp(d1, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
          "sha256(abc) = %s", d1);
    CHECK(store_blob_put_mem(s, "abc", 3, d2, &existed, &err) == 0 && existed, "second put deduplicates");
    CHECK(store_blob_verify(s, d1, &err) == 0, "blob content matches its name");
    char path[1024];
    store_blob_path(s, d1, path, sizeof path, NULL);
    CHECK(strstr(path, "/blobs/sha256-ba7816bf") != NULL, "blob file name uses a dash: %s", path);
    CHECK(!store_digest_valid("sha256:ABC") && !store_digest_valid("sha256-ba78") && store_digest_valid(d1),
          "digest validation");
    FILE *f = fopen(path, "wb");
    if (f) fputs("tampered", f), fclose(f);
    CHECK(store_blob_verify(s, d1, &err) != 0, "a tampered blob fails verification");
    unlink(path);
}

static void test_create_list_rm(store *s, const char *fix) {
    char text[2048];
    seek_err err = { 0 };
    snprintf(text, sizeof text, "FROM %s/qwen2-mini-Q8_0.gguf\nSYSTEM be brief\n", fix);
    n_progress = 0;
    CHECK(create_from_text(s, "first:a", text, &err) == 0, "create: %s", err.msg);
    CHECK(n_progress >= 6, "progress lines reported (%d)", n_progress);
    int blobs1 = count_blobs();
    snprintf(text, sizeof text, "FROM %s/qwen2-mini-Q8_0.gguf\nSYSTEM be verbose\nPARAMETER temperature 1.2\n", fix);
    CHECK(create_from_text(s, "second", text, &err) == 0, "create second: %s", err.msg);
    int blobs2 = count_blobs();
    /* new: system, params, config; the model blob is shared */
    CHECK(blobs2 == blobs1 + 3, "same GGUF stored once: %d then %d blobs", blobs1, blobs2);

    store_name n;
    store_manifest m;
    store_name_parse("FIRST:A", &n, NULL);
    CHECK(store_manifest_read(s, &n, &m, &err) == 0, "case-insensitive lookup: %s", err.msg);
    CHECK(!strcmp(m.name.model, "first") && !strcmp(m.name.tag, "a"), "stored spelling returned");
    const store_layer *model = store_manifest_layer(&m, STORE_MT_MODEL);
    CHECK(model && store_blob_verify(s, model->digest, NULL) == 0, "model layer blob verifies");
    CHECK(store_manifest_layer(&m, STORE_MT_TEMPLATE) == NULL, "no template layer without TEMPLATE");
    CHECK(store_manifest_layer(&m, STORE_MT_PARAMS) != NULL, "R1 fixture gets a params layer");
    store_manifest_free(&m);

    /* resolve: R1 defaults + Modelfile values */
    store_model r;
    CHECK(store_resolve(s, "second", &r, &err) == 0, "resolve: %s", err.msg);
    CHECK(r.model_path && strstr(r.model_path, "/blobs/sha256-"), "model path is the blob");
    CHECK(r.template_ == NULL && !r.template_go, "no template: use the GGUF's");
    CHECK(r.system && !strcmp(r.system, "be verbose"), "system");
    double temp = json_real_value(json_object_get(r.params, "temperature"));
    CHECK(temp > 1.19 && temp < 1.21, "Modelfile temperature wins over the R1 default (%g)", temp);
    CHECK(json_real_value(json_object_get(r.params, "top_p")) > 0.94, "R1 top_p default added");
    CHECK(json_array_size(json_object_get(r.params, "stop")) == 4, "R1 stop strings added");
    store_model_free(&r);
    CHECK(store_resolve(s, "nosuch", &r, &err) != 0 && err.code == SEEK_ENOTFOUND &&
              strstr(err.msg, "model 'nosuch:latest' not found"),
          "unknown model: %s", err.msg);

    /* FROM a store model inherits, overriding what the Modelfile sets */
    CHECK(create_from_text(s, "third", "FROM second\nSYSTEM new\n", &err) == 0, "create FROM store model: %s", err.msg);
    CHECK(store_resolve(s, "third", &r, &err) == 0 && r.system && !strcmp(r.system, "new") &&
              json_real_value(json_object_get(r.params, "temperature")) > 1.19,
          "inherits params, overrides system");
    store_model_free(&r);

    /* list, copy, remove */
    store_entry *e;
    size_t ne;
    CHECK(store_list(s, &e, &ne, &err) == 0 && ne == 3, "list has 3 models (%zu)", ne);
    free(e);
    store_name src, dst;
    store_name_parse("second", &src, NULL);
    store_name_parse("me/copy:x", &dst, NULL);
    CHECK(store_copy(s, &src, &dst, &err) == 0, "copy: %s", err.msg);
    int before = count_blobs(), removed = -1;
    CHECK(store_remove(s, &src, &removed, &err) == 0 && removed == 0, "rm keeps blobs the copy uses (%d)", removed);
    CHECK(count_blobs() == before, "blob count unchanged");
    CHECK(store_remove(s, &dst, &removed, &err) == 0 && removed > 0, "rm of the last user removes blobs (%d)", removed);
    store_name_parse("first:a", &n, NULL);
    CHECK(store_remove(s, &n, &removed, &err) == 0, "rm first");
    store_name_parse("third", &n, NULL);
    CHECK(store_remove(s, &n, &removed, &err) == 0, "rm third");
    CHECK(count_blobs() == 0, "empty store has no blobs (%d)", count_blobs());
    CHECK(store_remove(s, &n, &removed, &err) != 0 && err.code == SEEK_ENOTFOUND, "rm twice fails");
}

static void test_create_errors(store *s, const char *fix) {
    seek_err err = { 0 };
    CHECK(create_from_text(s, "bad", "FROM /no/such/file.gguf\n", &err) != 0 && strstr(err.msg, "no such file"),
          "missing file: %s", err.msg);
    CHECK(create_from_text(s, "bad", "FROM nosuchmodel\n", &err) != 0 && strstr(err.msg, "not found"),
          "missing model: %s", err.msg);
    char text[1024];
    snprintf(text, sizeof text, "FROM %s/README.md\n", fix);
    CHECK(create_from_text(s, "bad", text, &err) != 0, "not a GGUF: %s", err.msg);
    store_entry *e;
    size_t ne;
    CHECK(store_list(s, &e, &ne, NULL) == 0 && ne == 0, "failed creates leave no manifest");
    free(e);
    CHECK(count_blobs() <= 0, "failed creates leave no blobs (%d)", count_blobs());
}

int main(void) {
    test_names();
    test_modelfile_errors();
    test_modelfile_parse();

    snprintf(tmp_root, sizeof tmp_root, "/tmp/seek-test-store-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        CHECK(0, "mkdtemp");
        return check_done("test_store");
    }
    store *s = store_open(tmp_root, NULL);
    CHECK(s != NULL, "store_open");
    test_blobs(s);
    const char *fix = test_fixture_dir();
    if (fix) {
        test_create_list_rm(s, fix);
        test_create_errors(s, fix);
    } else {
        printf("SKIP create tests: no fixtures (set SEEK_FIXTURES)\n");
    }
    store_close(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd) != 0) printf("could not remove %s\n", tmp_root);
    return check_done("test_store");
}
