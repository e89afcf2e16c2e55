/*
 * cli.h - the seek command's subcommands.  Each cmd_* parses its own arguments (argv[0] is the
 * subcommand name), prints to stdout/stderr and returns the process exit status; main.c is the
 * only caller and the cli module is the only place that exits.
 */
#ifndef SEEK_CLI_H
#define SEEK_CLI_H

int cmd_logits(int argc, char **argv);   /* seek logits MODEL --tokens "1 2 3" --out F */
int cmd_bench(int argc, char **argv);    /* seek bench MODEL [-p N] [-n N] [-t T] [--json] */
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

/* MODEL argument -> the GGUF file to open: a path as given, or a store name's model blob.  Returns
 * a malloc'd path (caller frees), or NULL after printing "seek CMD: model 'x' not found". */
char *cli_model_path(const char *cmd, const char *arg);

/* Parses a positive integer option value; returns -1 (after printing why) if it is not one. */
long cli_parse_count(const char *opt, const char *val, long max);

#endif
