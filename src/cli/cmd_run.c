/* cmd_run.c - placeholder until the module lands. */
#include <stdio.h>
#include "cli.h"
int cmd_run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "seek run: not built yet\n"); return 1; }
