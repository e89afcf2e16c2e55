/*
 * cmd_serve.c - `seek serve`: runs the HTTP API (Ollama's and the OpenAI-compatible one) until
 * SIGINT or SIGTERM.  Configuration comes from the environment, as with `ollama serve`:
 *   SEEK_HOST          address to listen on (default 127.0.0.1:11434)
 *   SEEK_MODELS        model store (default ~/.seek/models)
 *   SEEK_ORIGINS       extra allowed CORS origins, comma separated
 *   SEEK_KEEP_ALIVE    default keep_alive in seconds or a duration ("5m", "-1")
 *   SEEK_NUM_PARALLEL, SEEK_MAX_QUEUE, SEEK_MAX_LOADED_MODELS  read by the scheduler
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../server/server.h"
#include "cli.h"

static void usage(FILE *out) {
    fprintf(out, "usage: seek serve [-v]\n"
                 "Environment: SEEK_HOST (default 127.0.0.1:11434), SEEK_MODELS, SEEK_ORIGINS,\n"
                 "SEEK_KEEP_ALIVE, SEEK_NUM_PARALLEL, SEEK_MAX_QUEUE, SEEK_MAX_LOADED_MODELS.\n");
}

/* SEEK_KEEP_ALIVE: seconds, or a number with a unit s/m/h; negative keeps models forever. */
static int parse_keep_alive(const char *s, int64_t *ns) {
    char *end;
    double v = strtod(s, &end);
    if (end == s) return -1;
    double unit = 1e9;
    if (!strcmp(end, "m")) unit = 60e9;
    else if (!strcmp(end, "h")) unit = 3600e9;
    else if (*end && strcmp(end, "s")) return -1;
    *ns = v < 0 ? -1 : (int64_t)(v * unit);
    return 0;
}

int cmd_serve(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
            log_verbosity = 2;
            continue;
        }
        usage(stderr);
        return 1;
    }
    server_opts o = { .version = cli_version };
    const char *ka = getenv("SEEK_KEEP_ALIVE");
    if (ka && *ka && parse_keep_alive(ka, &o.sched.keep_alive_ns)) {
        fprintf(stderr, "Error: SEEK_KEEP_ALIVE: '%s' is not a duration\n", ka);
        return 1;
    }
    /* signals are taken with sigwait below; threads started from here inherit the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    seek_err err = { 0 };
    server *s = server_start(&o, &err);
    if (!s) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "Listening on %s (version %s)\n", server_addr(s), cli_version);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "\nShutting down\n");
    server_stop(s);
    return 0;
}
