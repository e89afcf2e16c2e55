/*
 * run_repl.c - `seek run`'s interactive loop, with Ollama's commands:
 *
 *   /set parameter NAME VALUE   sampler and context settings (temperature, top_k, num_ctx, stop, ...)
 *   /set system TEXT            system prompt;  /set think | nothink;  /set verbose | quiet
 *   /set hidethinking | showthinking;  /set wordwrap | nowordwrap
 *   /show info | template | parameters | system
 *   /clear                      forget the conversation
 *   /bye                        exit (Ctrl+D too)
 *   /? or /help                 this list
 *   """ ... """                 multi-line input
 *
 * Line editing and history (~/.seek/history) come from libedit.  Ctrl+C while an answer streams
 * stops that answer only; at the prompt it clears the line.
 */
#include <editline/readline.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../store/quantize.h"
#include "run.h"

static void help(void) {
    printf("Available Commands:\n"
           "  /set            Set session variables\n"
           "  /show           Show model information\n"
           "  /clear          Clear session context\n"
           "  /bye            Exit\n"
           "  /?, /help       Help for a command\n"
           "\n"
           "Use \"\"\" to begin a multi-line message.\n\n");
}

static void help_set(void) {
    printf("Available Commands:\n"
           "  /set parameter ...     Set a parameter\n"
           "  /set system <string>   Set system message\n"
           "  /set think             Enable thinking\n"
           "  /set nothink           Disable thinking\n"
           "  /set hidethinking      Hide the thinking text\n"
           "  /set showthinking      Show the thinking text\n"
           "  /set wordwrap          Enable wordwrap\n"
           "  /set nowordwrap        Disable wordwrap\n"
           "  /set verbose           Show LLM stats\n"
           "  /set quiet             Disable LLM stats\n\n"
           "Parameters:\n"
           "  /set parameter seed <int>             Random number seed\n"
           "  /set parameter num_predict <int>      Max number of tokens to predict\n"
           "  /set parameter top_k <int>            Pick from top k num of tokens\n"
           "  /set parameter top_p <float>          Pick token based on sum of probabilities\n"
           "  /set parameter min_p <float>          Pick token based on top token probability * min_p\n"
           "  /set parameter num_ctx <int>          Set the context size\n"
           "  /set parameter temperature <float>    Set creativity level\n"
           "  /set parameter repeat_penalty <float> How strongly to penalize repetitions\n"
           "  /set parameter repeat_last_n <int>    Set how far back to look for repetitions\n"
           "  /set parameter num_thread <int>       Threads\n"
           "  /set parameter stop <string> ...      Set the stop parameters\n"
           "  /set parameter think_budget <int>     Close the thought after this many tokens\n\n");
}

static void show_info(run_state *rs) {
    const model_hparams *hp = &rs->em->m->hp;
    uint64_t n_params = 0;
    const gguf_file *g = rs->em->m->file;
    for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) ne *= t->ne[d];
        n_params += ne;
    }
    uint32_t ftype = 0;
    const char *quant = gguf_get_u32(g, "general.file_type", &ftype, NULL) == 0 ? store_ftype_name(ftype) : NULL;
    printf("  Model\n");
    printf("    %-20s%s\n", "architecture", hp->arch_name);
    if (n_params >= 1000000000) printf("    %-20s%.1fB\n", "parameters", n_params / 1e9);
    else printf("    %-20s%.1fM\n", "parameters", n_params / 1e6);
    printf("    %-20s%lld\n", "context length", (long long)hp->n_ctx_train);
    printf("    %-20s%lld\n", "embedding length", (long long)hp->n_embd);
    printf("    %-20s%s\n", "quantization", quant ? quant : "unknown");
    printf("\n  Capabilities\n    completion\n%s\n", rs->em->reasoning ? "    thinking\n" : "");
}

static void show_parameters(run_state *rs) {
    const sample_params *p = &rs->params.sample;
    printf("Model defaults:\n");
    printf("%-18s %g\n%-18s %d\n%-18s %g\n%-18s %g\n%-18s %g\n%-18s %d\n", "temperature", p->temperature,
           "top_k", p->top_k, "top_p", p->top_p, "min_p", p->min_p, "repeat_penalty", p->repeat_penalty,
           "repeat_last_n", p->repeat_last_n);
    if (rs->set_params[0]) printf("\nUser defined parameters:\n%s", rs->set_params);
    printf("\n");
}

/* Splits "word rest" in place: returns rest (or "" when there is none). */
static char *split_word(char *s) {
    while (*s && *s != ' ') s++;
    if (!*s) return s;
    *s++ = 0;
    while (*s == ' ') s++;
    return s;
}

static void cmd_set(run_state *rs, char *args) {
    char *rest = split_word(args);
    if (!strcmp(args, "parameter")) {
        char *value = split_word(rest);
        if (!*rest || !*value) {
            help_set();
            return;
        }
        if (!strcmp(rest, "stop")) { /* several stop strings, space separated */
            for (char *w = value, *next; *w; w = next) {
                next = split_word(w);
                if (run_set_parameter(rs, "stop", w) != 0) return;
            }
        } else if (run_set_parameter(rs, rest, value) != 0) {
            return;
        }
        printf("Set parameter '%s' to '%s'\n", rest, value);
    } else if (!strcmp(args, "system")) {
        free(rs->system);
        rs->system = *rest ? strdup(rest) : NULL;
        printf("Set system message.\n");
    } else if (!strcmp(args, "think")) {
        rs->params.think = 1;
        printf("Set 'think' mode.\n");
    } else if (!strcmp(args, "nothink")) {
        rs->params.think = 0;
        printf("Set 'nothink' mode.\n");
    } else if (!strcmp(args, "verbose")) {
        rs->verbose = true;
        printf("Set 'verbose' mode.\n");
    } else if (!strcmp(args, "quiet")) {
        rs->verbose = false;
        printf("Set 'quiet' mode.\n");
    } else if (!strcmp(args, "hidethinking") || !strcmp(args, "showthinking")) {
        rs->hide_thinking = args[0] == 'h';
        printf("Set '%s' mode.\n", args);
    } else if (!strcmp(args, "wordwrap") || !strcmp(args, "nowordwrap")) {
        rs->wordwrap = args[0] == 'w';
        printf("Set '%s' mode.\n", args);
    } else {
        help_set();
    }
}

static void cmd_show(run_state *rs, char *args) {
    if (!strcmp(args, "info")) show_info(rs);
    else if (!strcmp(args, "template")) printf("%s\n", rs->em->template_src);
    else if (!strcmp(args, "parameters")) show_parameters(rs);
    else if (!strcmp(args, "system")) printf("%s\n", rs->system ? rs->system : "No system message was specified for this model.");
    else printf("Available Commands:\n  /show info\n  /show template\n  /show parameters\n  /show system\n\n");
}

/* Handles a /command; returns 1 to exit the loop. */
static int slash_command(run_state *rs, char *line) {
    char *args = split_word(line);
    if (!strcmp(line, "/bye") || !strcmp(line, "/exit")) return 1;
    if (!strcmp(line, "/?") || !strcmp(line, "/help")) {
        if (!strcmp(args, "set")) help_set();
        else help();
    } else if (!strcmp(line, "/set")) {
        cmd_set(rs, args);
    } else if (!strcmp(line, "/show")) {
        cmd_show(rs, args);
    } else if (!strcmp(line, "/clear")) {
        json_array_clear(rs->history);
        if (rs->session) engine_session_reset(rs->session);
        printf("Cleared session context\n");
    } else {
        printf("Unknown command '%s'. Type /? for help\n", line);
    }
    return 0;
}

static char history_path[1024];

static void history_open(void) {
    const char *home = getenv("HOME");
    if (!home || !*home) return;
    snprintf(history_path, sizeof history_path, "%s/.seek", home);
    mkdir(history_path, 0755);
    snprintf(history_path, sizeof history_path, "%s/.seek/history", home);
    using_history();
    stifle_history(1000);
    read_history(history_path);
}

static bool ends_with_quotes(const char *s) {
    size_t n = strlen(s);
    return n >= 3 && !strcmp(s + n - 3, "\"\"\"");
}

/* Appends "\n" (unless buf is empty) and s[0..n) to a growing buffer; false on allocation failure. */
static bool append_line(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 2 > *cap) {
        size_t nc = (*len + n + 2) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb) return false;
        *buf = nb;
        *cap = nc;
    }
    if (*len) (*buf)[(*len)++] = '\n';
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return true;
}

/* Reads one message: a line, or the lines between """ and """.  NULL on end of input. */
static char *read_message(bool *interrupted) {
    *interrupted = false;
    run_interrupted = 0;
    char *line = readline(">>> ");
    if (!line) {
        *interrupted = run_interrupted != 0;
        return NULL;
    }
    if (strncmp(line, "\"\"\"", 3) != 0) return line;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    const char *first = line + 3;
    bool closed = ends_with_quotes(first);
    if (!append_line(&buf, &len, &cap, first, strlen(first) - (closed ? 3 : 0))) closed = true;
    free(line);
    while (!closed && (line = readline("... ")) != NULL) {
        closed = ends_with_quotes(line);
        if (!append_line(&buf, &len, &cap, line, strlen(line) - (closed ? 3 : 0))) closed = true;
        free(line);
    }
    return buf ? buf : strdup("");
}

int run_repl(run_state *rs) {
    history_open();
    int rc = 0;
    for (;;) {
        bool interrupted;
        char *line = read_message(&interrupted);
        if (!line) {
            if (interrupted) {
                printf("\nUse Ctrl + d or /bye to exit.\n");
                continue;
            }
            printf("\n");
            break;
        }
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) {
            free(line);
            continue;
        }
        add_history(line);
        if (history_path[0]) write_history(history_path);
        if (p[0] == '/' && p[1] != '/') {
            int done = slash_command(rs, p);
            free(line);
            if (done) break;
            continue;
        }
        int r = run_turn(rs, p);
        free(line);
        if (r == 1) rc = 0; /* errors were printed; keep the session going */
    }
    return rc;
}
