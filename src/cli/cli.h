/*
 * cli.h - the seek command's subcommands.  Each cmd_* parses its own arguments (argv[0] is the
 * subcommand name), prints to stdout/stderr and returns the process exit status; main.c is the
 * only caller and the cli module is the only place that exits.
 */
#ifndef SEEK_CLI_H
#define SEEK_CLI_H

#include <stddef.h>

int cmd_logits(int argc, char **argv);   /* seek logits MODEL --tokens "1 2 3" --out F */
int cmd_bench(int argc, char **argv);    /* seek bench MODEL [-p N] [-n N] [-t T] [--ttft N] [--profile] [--json] */
int cmd_quantize(int argc, char **argv); /* seek quantize IN.gguf OUT.gguf TYPE */
int cmd_show(int argc, char **argv);     /* seek show MODEL|FILE.gguf [--modelfile|--parameters|...] */
int cmd_tokenize(int argc, char **argv); /* seek tokenize MODEL [--bos] [--special] < text */
int cmd_convert(int argc, char **argv);  /* seek convert HF_DIR -o OUT.gguf [--vocab-only] */
int cmd_template(int argc, char **argv); /* seek template MODEL|FILE.jinja < context.json */
int cmd_run(int argc, char **argv);      /* seek run MODEL [PROMPT] */
int cmd_fit(int argc, char **argv);      /* seek fit [--ctx N] [--parallel P] */
int cmd_create(int argc, char **argv);   /* seek create NAME [-f Modelfile] [-q TYPE] */
int cmd_list(int argc, char **argv);     /* seek list */
int cmd_cp(int argc, char **argv);       /* seek cp SRC DST */
int cmd_rm(int argc, char **argv);       /* seek rm NAME... */
int cmd_serve(int argc, char **argv);    /* seek serve (SEEK_HOST, default 127.0.0.1:11434) */
int cmd_pull(int argc, char **argv);     /* seek pull NAME [--insecure] [--parts N] */
int cmd_push(int argc, char **argv);     /* seek push NAME [--insecure] */

/* Pulls name into the default store with progress bars on stderr (seek pull, and seek run for a
 * missing model); n_parts <= 0 means the default.  Returns an exit status after printing any
 * error as "Error: <why>: <reason>" (why may be NULL; 130 when interrupted, and the partial
 * download is kept for a resume). */
int cli_pull(const char *name, int insecure, int n_parts, const char *why);

/* Ollama-style progress display for pull and push (cmd_pull.c): status lines and one bar per
 * layer, redrawn in place on a terminal, plain lines otherwise. */
typedef struct cli_bars cli_bars;
struct registry_progress;
cli_bars *cli_bars_new(void);
void cli_bars_free(cli_bars *b);
/* Draws one progress event; always returns true (the signature of registry_progress_fn). */
_Bool cli_bars_update(cli_bars *b, const struct registry_progress *p);

/* The version string `seek --version` prints (and /api/version reports). */
extern const char *const cli_version;

/* MODEL argument -> the GGUF file to open: a path as given, or a store name's model blob.  Returns
 * a malloc'd path (caller frees), or NULL after printing "seek CMD: model 'x' not found". */
char *cli_model_path(const char *cmd, const char *arg);

/* Parses a positive integer option value; returns -1 (after printing why) if it is not one. */
long cli_parse_count(const char *opt, const char *val, long max);

/* All of stdin, NUL-terminated (it may also hold NUL bytes: *len, if len is not NULL, counts every
 * byte read); NULL on a read error or out of memory. */
char *cli_read_stdin(size_t *len);

#endif
