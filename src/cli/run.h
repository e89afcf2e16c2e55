/*
 * run.h - state shared by `seek run`'s pieces: cmd_run.c (arguments, loading, one-shot),
 * run_repl.c (the interactive loop and its /commands) and run_print.c (how a streamed answer
 * looks on a terminal: the thinking block, word wrap, the --verbose statistics).
 */
#ifndef SEEK_CLI_RUN_H
#define SEEK_CLI_RUN_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "../engine/engine.h"

typedef struct run_state {
    engine_model *em;
    engine_session *session;
    engine_params params;
    char *stop_store[ENGINE_MAX_STOP]; /* owned copies behind params.stop */
    int n_threads;
    int32_t num_ctx;       /* 0: engine default */
    json_t *history;       /* messages of the conversation so far (without the system prompt) */
    char *system;          /* system prompt or NULL */
    bool verbose;
    bool hide_thinking;
    bool wordwrap;
    bool out_tty;          /* stdout is a terminal: colours and wrapping */
    char set_params[2048]; /* "name value" lines the user set, for /show parameters */
} run_state;

/* Set by the SIGINT handler; a running answer stops at the next token. */
extern volatile sig_atomic_t run_interrupted;
void run_install_sigint(void);

/* One user turn: appends the message, streams the answer, appends the assistant's reply to
 * history.  Returns 0, 1 on a model/engine error (printed), 130 if interrupted. */
int run_turn(run_state *rs, const char *user_text);

/* Applies "/set parameter NAME VALUE"-style settings; returns 0, or -1 after printing why. */
int run_set_parameter(run_state *rs, const char *name, const char *value);

/* The interactive loop; returns the exit status. */
int run_repl(run_state *rs);

/* ---- printing (run_print.c) ---- */
typedef struct run_printer {
    run_state *rs;
    bool in_thinking;   /* inside the "Thinking..." block */
    bool any_output;
    int col;            /* current column for word wrap */
    int width;          /* terminal width (0: no wrapping) */
    char word[256];     /* the word being wrapped */
    size_t n_word;
    int word_cols;
    size_t content_len; /* answer text collected for history */
    char *content;
    size_t content_cap;
} run_printer;

void run_printer_init(run_printer *pr, run_state *rs);
bool run_printer_emit(void *ud, bool thinking, const char *text, size_t len); /* engine_emit_fn */
void run_printer_finish(run_printer *pr);
void run_print_stats(const engine_stats *st);

#endif
