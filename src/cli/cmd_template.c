/* cmd_template.c - placeholder until the module lands. */
#include <stdio.h>
#include "cli.h"
int cmd_template(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "seek template: not built yet\n"); return 1; }
