/*
 * cmd_run.c - `seek run MODEL [PROMPT]`: chat with a model.
 *
 *   seek run MODEL "question"        one answer, then exit
 *   echo question | seek run MODEL   the same with the prompt from stdin (appended to PROMPT if both)
 *   seek run MODEL                   interactive (run_repl.c) when stdin is a terminal
 *
 * Options: --think[=true|false] (ask the model to think or not; default: what the template does),
 * --hidethinking, --think-budget N (close the thought after N tokens), --verbose (statistics),
 * --nowordwrap, --ctx N (num_ctx), -t N (threads), --seed N, --temperature X, --num-predict N,
 * --system TEXT.  MODEL is a .gguf path or a store name; a store model's Modelfile settings
 * (TEMPLATE, SYSTEM, PARAMETER, MESSAGE) apply, and options given here override them.  A store
 * name that is not installed is pulled from its registry first, as `ollama run` does
 * (--insecure: plain http to that registry).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/fit.h"
#include "../store/store.h"
#include "cli.h"
#include "run.h"

volatile sig_atomic_t run_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    run_interrupted = 1;
}

void run_install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking read returns so the REPL can see the interrupt */
    sigaction(SIGINT, &sa, NULL);
}

/* ---- loading spinner --------------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} spinner;

static void *spin(void *arg) {
    spinner *sp = arg;
    static const char *const frames[] = { "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏" };
    pthread_mutex_lock(&sp->mu);
    for (unsigned i = 0; !sp->done; i++) {
        fprintf(stderr, "\r%s ", frames[i % 10]);
        fflush(stderr);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&sp->cv, &sp->mu, &ts);
    }
    pthread_mutex_unlock(&sp->mu);
    fputs("\r  \r", stderr);
    fflush(stderr);
    return NULL;
}

static engine_model *load_with_spinner(const char *path, seek_err *err) {
    spinner sp = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };
    pthread_t th;
    bool spinning = isatty(STDERR_FILENO) && pthread_create(&th, NULL, spin, &sp) == 0;
    engine_model *em = engine_load(path, err);
    if (spinning) {
        pthread_mutex_lock(&sp.mu);
        sp.done = true;
        pthread_cond_signal(&sp.cv);
        pthread_mutex_unlock(&sp.mu);
        pthread_join(th, NULL);
    }
    return em;
}

/* ---- parameters --------------------------------------------------------------------------------- */

static int parse_int(const char *name, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "invalid value for %s: '%s' (expected an integer from %ld to %ld)\n", name, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int new_session(run_state *rs) {
    seek_err err = { 0 };
    engine_session_free(rs->session);
    rs->session = engine_session_new(rs->em, rs->num_ctx, rs->n_threads, &err);
    if (!rs->session) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int run_set_parameter(run_state *rs, const char *name, const char *value) {
    long l;
    int rc = 0;
    if (strcmp(name, "num_thread") && strcmp(name, "num_ctx") && strcmp(name, "stop")) {
        /* a sampling or generation parameter: the engine's table checks name and range */
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        seek_err err = { 0 };
        if (errno || end == value || *end) {
            fprintf(stderr, "invalid value for %s: '%s' (expected a number)\n", name, value);
            rc = -1;
        } else if (engine_set_param(&rs->params, name, d, &err) != 0) {
            if (err.code == SEEK_ENOTFOUND) fprintf(stderr, "Unknown parameter '%s'\n", name);
            else fprintf(stderr, "%s\n", err.msg);
            rc = -1;
        }
    } else if (!strcmp(name, "num_thread")) {
        if ((rc = parse_int(name, value, 1, 1024, &l)) == 0) {
            rs->n_threads = (int)l;
            if (rs->session) rc = new_session(rs);
        }
    } else if (!strcmp(name, "num_ctx")) {
        if ((rc = parse_int(name, value, 16, 1 << 20, &l)) == 0) {
            rs->num_ctx = (int32_t)l;
            if (rs->session) rc = new_session(rs);
        }
    } else if (!strcmp(name, "stop")) {
        if (rs->params.n_stop >= ENGINE_MAX_STOP) {
            fprintf(stderr, "at most %d stop strings\n", ENGINE_MAX_STOP);
            return -1;
        }
        char *s = strdup(value);
        if (!s) return -1;
        rs->stop_store[rs->params.n_stop] = s;
        rs->params.stop[rs->params.n_stop++] = s;
    }
    if (rc == 0) {
        size_t used = strlen(rs->set_params);
        snprintf(rs->set_params + used, sizeof rs->set_params - used, "%-18s %s\n", name, value);
    }
    return rc;
}

/* ---- one turn ---------------------------------------------------------------------------------- */

static json_t *message(const char *role, const char *content) {
    return json_pack("{s:s, s:s}", "role", role, "content", content);
}

int run_turn(run_state *rs, const char *user_text) {
    if (!rs->session && new_session(rs) != 0) return 1;
    json_array_append_new(rs->history, message("user", user_text));
    json_t *msgs = json_array();
    if (rs->system) json_array_append_new(msgs, message("system", rs->system));
    json_array_extend(msgs, rs->history);

    run_printer pr;
    run_printer_init(&pr, rs);
    engine_stats st;
    seek_err err = { 0 };
    run_interrupted = 0;
    int rc = engine_chat(rs->session, msgs, NULL, &rs->params, run_printer_emit, &pr, &st, &err);
    json_decref(msgs);
    if (rc != 0) {
        run_printer_finish(&pr);
        fprintf(stderr, "Error: %s\n", err.msg);
        json_array_remove(rs->history, json_array_size(rs->history) - 1);
        free(pr.content);
        return 1;
    }
    run_printer_finish(&pr);
    json_array_append_new(rs->history, message("assistant", pr.content ? pr.content : ""));
    free(pr.content);
    if (rs->verbose) run_print_stats(&st);
    return st.done_reason && !strcmp(st.done_reason, "cancel") ? 130 : 0;
}

/* Applies a store model's PARAMETER settings (a JSON object); names seek does not use (num_gpu,
 * ...) are skipped.  They are the model's defaults, not user settings, so /show parameters lists
 * them under the defaults. */
static int apply_store_params(run_state *rs, const json_t *params) {
    static const char *const known[] = {
        "temperature", "top_p", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty",
        "top_k", "repeat_last_n", "seed", "num_predict", "think_budget", "num_thread", "num_ctx", "stop",
    };
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)params, key, val) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(key, known[i]);
        if (!ok) continue;
        size_t n = json_is_array(val) ? json_array_size(val) : 1;
        for (size_t i = 0; i < n; i++) {
            const json_t *v = json_is_array(val) ? json_array_get(val, i) : val;
            char buf[64];
            const char *text = buf;
            if (json_is_string(v)) text = json_string_value(v);
            else if (json_is_integer(v)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
            else if (json_is_number(v)) snprintf(buf, sizeof buf, "%.9g", json_number_value(v));
            else continue;
            if (run_set_parameter(rs, key, text) != 0) return -1;
        }
    }
    rs->set_params[0] = 0;
    return 0;
}

/* Refuses a model that cannot fit in the memory available now (instead of swapping the machine to
 * death), saying how much it needs and which DeepSeek-R1 size would fit. */
static bool fits_in_memory(run_state *rs) {
    int32_t n_ctx = rs->num_ctx > 0 ? rs->num_ctx
                    : rs->em->m->hp.n_ctx_train < 4096 ? (int32_t)rs->em->m->hp.n_ctx_train : 4096;
    fit_shape shape = fit_shape_of(rs->em->m, rs->em->path);
    fit_memory need = fit_estimate_memory(&shape, fit_resident_bytes(rs->em->m), n_ctx, 1);
    uint64_t avail = fit_available_memory();
    if (!avail || fit_verdict(need.total, avail) < 2) return true;
    char alt[160];
    fit_suggest(avail, n_ctx, alt, sizeof alt);
    fprintf(stderr, "Error: this model needs %.1f GB of memory at a context of %d tokens (weights %.1f GB, "
                    "KV cache %.1f GB) but only %.1f GB is available.%s%s%s\n",
            need.total / 1e9, n_ctx, need.weights / 1e9, need.kv / 1e9, avail / 1e9,
            alt[0] ? " A model that fits: " : " Try a smaller --ctx.", alt, alt[0] ? "." : "");
    return false;
}

/* ---- command ------------------------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: seek run MODEL [PROMPT] [--think[=true|false]] [--hidethinking] [--think-budget N]\n"
            "                [--verbose] [--nowordwrap] [--ctx N] [-t N] [--seed N] [--temperature X]\n"
            "                [--num-predict N] [--system TEXT] [--insecure]\n");
}

static void run_state_free(run_state *rs) {
    engine_session_free(rs->session);
    engine_free(rs->em);
    json_decref(rs->history);
    free(rs->system);
    for (int i = 0; i < ENGINE_MAX_STOP; i++) free(rs->stop_store[i]);
}

int cmd_run(int argc, char **argv) {
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.wordwrap = true;
    const char *model_arg = NULL;
    char prompt[1 << 14] = "";
    /* settings applied after loading (defaults depend on the model) */
    const char *deferred[16][2];
    int n_deferred = 0;
    int think = -1;
    int insecure = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--think") || !strcmp(a, "--think=true")) think = 1;
        else if (!strcmp(a, "--think=false")) think = 0;
        else if (!strcmp(a, "--hidethinking")) rs.hide_thinking = true;
        else if (!strcmp(a, "--verbose")) rs.verbose = true;
        else if (!strcmp(a, "--nowordwrap")) rs.wordwrap = false;
        else if (!strcmp(a, "--insecure")) insecure = 1;
        else if (!strcmp(a, "--system") && v) {
            free(rs.system);
            rs.system = strdup(v);
            i++;
        } else if (!strcmp(a, "-t") && v) {
            long t = cli_parse_count(a, v, 1024);
            if (t < 0) return 2;
            rs.n_threads = (int)t;
            i++;
        } else if ((!strcmp(a, "--ctx") || !strcmp(a, "--seed") || !strcmp(a, "--temperature") ||
                    !strcmp(a, "--num-predict") || !strcmp(a, "--think-budget") || !strcmp(a, "--stop")) && v) {
            if (n_deferred == 16) return 2;
            static const char *const names[][2] = {
                { "--ctx", "num_ctx" }, { "--seed", "seed" }, { "--temperature", "temperature" },
                { "--num-predict", "num_predict" }, { "--think-budget", "think_budget" }, { "--stop", "stop" },
            };
            for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
                if (!strcmp(a, names[k][0])) deferred[n_deferred][0] = names[k][1];
            deferred[n_deferred++][1] = v;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "seek run: unknown option '%s'\n", a);
            usage();
            return 2;
        } else if (!model_arg) {
            model_arg = a;
        } else {
            size_t used = strlen(prompt);
            snprintf(prompt + used, sizeof prompt - used, "%s%s", used ? " " : "", a);
        }
    }
    if (!model_arg) {
        usage();
        return 2;
    }
    seek_err err = { 0 };
    store_model sm;
    memset(&sm, 0, sizeof sm);
    int resolved = store_resolve(NULL, model_arg, &sm, &err);
    if (resolved != 0 && err.code == SEEK_ENOTFOUND && !store_is_path(model_arg) && store_name_valid(model_arg)) {
        store_model_free(&sm);
        memset(&sm, 0, sizeof sm);
        char why[600];
        snprintf(why, sizeof why, "model '%s' not found locally, and pulling it failed", model_arg);
        int prc = cli_pull(model_arg, insecure, 0, why);
        if (prc != 0) return prc;
        resolved = store_resolve(NULL, model_arg, &sm, &err);
    }
    if (resolved != 0) {
        fprintf(stderr, "Error: %s\n", err.msg);
        store_model_free(&sm);
        return 1;
    }
    rs.em = load_with_spinner(sm.model_path, &err);
    if (!rs.em || (sm.template_ && engine_set_template(rs.em, sm.template_, &err) != 0)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        store_model_free(&sm);
        engine_free(rs.em);
        return 1;
    }
    rs.params = engine_default_params(rs.em);
    rs.params.think = think;
    rs.history = sm.messages && json_is_array(sm.messages) ? json_deep_copy(sm.messages) : json_array();
    if (!rs.system && sm.system) rs.system = strdup(sm.system);
    rs.out_tty = isatty(STDOUT_FILENO);
    int rc = sm.params ? apply_store_params(&rs, sm.params) : 0;
    store_model_free(&sm);
    for (int i = 0; i < n_deferred && rc == 0; i++)
        if (run_set_parameter(&rs, deferred[i][0], deferred[i][1]) != 0) rc = 2;
    if (rc == 0 && !fits_in_memory(&rs)) rc = 1;
    if (rc == 0) {
        bool interactive = !prompt[0] && isatty(STDIN_FILENO);
        run_install_sigint();
        if (interactive) {
            rc = run_repl(&rs);
        } else {
            char *in = isatty(STDIN_FILENO) ? NULL : cli_read_stdin(NULL);
            size_t need = strlen(prompt) + (in ? strlen(in) : 0) + 2;
            char *text = malloc(need);
            if (!text) rc = 1;
            else {
                snprintf(text, need, "%s%s%s", prompt, prompt[0] && in && in[0] ? "\n" : "", in ? in : "");
                rc = run_turn(&rs, text);
                free(text);
            }
            free(in);
        }
    }
    run_state_free(&rs);
    return rc;
}
