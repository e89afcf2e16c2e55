/* cmd_convert.c - placeholder until the module lands. */
#include <stdio.h>
#include "cli.h"
int cmd_convert(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "seek convert: not built yet\n"); return 1; }
