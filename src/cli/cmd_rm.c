/*
 * cmd_rm.c - `seek rm NAME...`: removes models; blobs that no remaining model uses are deleted.
 */
#include <stdio.h>

#include "../store/store.h"
#include "cli.h"

int cmd_rm(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: seek rm MODEL [MODEL...]\n");
        return 1;
    }
    seek_err err = { 0 };
    store *s = store_open(NULL, &err);
    if (!s) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    int status = 0;
    for (int i = 1; i < argc; i++) {
        store_name name;
        if (store_name_parse(argv[i], &name, &err) || store_remove(s, &name, NULL, &err)) {
            fprintf(stderr, "Error: %s\n", err.msg);
            status = 1;
            continue;
        }
        printf("deleted '%s'\n", argv[i]);
    }
    store_close(s);
    return status;
}
