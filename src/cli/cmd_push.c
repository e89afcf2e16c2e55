/*
 * cmd_push.c - `seek push NAME [--insecure]`: uploads a store model to the registry its name
 * points at ("retrieving manifest", a bar per layer "pushing <12 hex>", "pushing manifest",
 * "success"; the display is cmd_pull.c's).
 */
#include <stdio.h>
#include <string.h>

#include "../store/registry.h"
#include "../store/store.h"
#include "cli.h"

static bool on_progress(void *ud, const registry_progress *p) {
    cli_bars_update(ud, p);
    return true;
}

int cmd_push(int argc, char **argv) {
    const char *name = NULL;
    bool insecure = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--insecure")) insecure = true;
        else if (argv[i][0] == '-' || name) {
            fprintf(stderr, "usage: seek push NAME [--insecure]\n"
                            "  NAME is [host/]namespace/model[:tag]; --insecure allows plain http\n");
            return 2;
        } else {
            name = argv[i];
        }
    }
    if (!name) {
        fprintf(stderr, "usage: seek push NAME [--insecure]\n");
        return 2;
    }
    seek_err err = { 0 };
    store *s = store_open(NULL, &err);
    cli_bars *bars = cli_bars_new();
    registry_opts o = { .insecure = insecure, .progress = bars ? on_progress : NULL, .ud = bars };
    int rc = s ? registry_push(s, name, &o, &err) : -1;
    cli_bars_free(bars);
    store_close(s);
    if (rc) {
        fprintf(stderr, "Error: %s\n", err.msg);
        return 1;
    }
    return 0;
}
