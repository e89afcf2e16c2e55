/*
 * cmd_cp.c - `seek cp SRC DST`: a second name for a model (a copy of its manifest; the blobs
 * are shared).
 */
#include <stdio.h>

#include "../store/store.h"
#include "cli.h"

int cmd_cp(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: seek cp SOURCE DESTINATION\n");
        return 1;
    }
    seek_err err = { 0 };
    store_name src, dst;
    if (store_name_parse(argv[1], &src, &err) || store_name_parse(argv[2], &dst, &err)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    store *s = store_open(NULL, &err);
    int rc = s ? store_copy(s, &src, &dst, &err) : -1;
    store_close(s);
    if (rc) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    printf("copied '%s' to '%s'\n", argv[1], argv[2]);
    return 0;
}
