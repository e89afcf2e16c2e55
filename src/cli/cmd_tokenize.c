/* cmd_tokenize.c - placeholder until the module lands. */
#include <stdio.h>
#include "cli.h"
int cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "seek tokenize: not built yet\n"); return 1; }
