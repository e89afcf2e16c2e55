/*
 * cmd_list.c - `seek list` (alias `ls`): the installed models as `ollama list` shows them:
 * NAME, ID (12 hex of the manifest digest), SIZE (decimal units, "1.1 GB"), MODIFIED ("2
 * minutes ago"), newest first, columns separated by at least four spaces.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../store/store.h"
#include "cli.h"

/* Ollama's format.HumanBytes: decimal units, no decimals from 10 up, one below unless whole. */
static void human_bytes(uint64_t b, char *buf, size_t cap) {
    static const char *const units[] = { "TB", "GB", "MB", "KB" };
    static const double scale[] = { 1e12, 1e9, 1e6, 1e3 };
    for (int i = 0; i < 4; i++) {
        if ((double)b < scale[i]) continue;
        double v = (double)b / scale[i];
        if (v >= 10 || v == trunc(v)) snprintf(buf, cap, "%d %s", (int)v, units[i]);
        else snprintf(buf, cap, "%.1f %s", v, units[i]);
        return;
    }
    snprintf(buf, cap, "%llu B", (unsigned long long)b);
}

/* Ollama's format.HumanTime ("Less than a second ago", "About a minute ago", "3 days ago"). */
static void human_ago(int64_t then, char *buf, size_t cap) {
    double d = difftime(time(NULL), (time_t)then);
    const char *suffix = " ago";
    if (d < 0) d = -d, suffix = " from now";
    long s = (long)d, m = (long)(d / 60), h = lround(d / 3600);
    if (s < 1) snprintf(buf, cap, "Less than a second%s", suffix);
    else if (s == 1) snprintf(buf, cap, "1 second%s", suffix);
    else if (s < 60) snprintf(buf, cap, "%ld seconds%s", s, suffix);
    else if (m == 1) snprintf(buf, cap, "About a minute%s", suffix);
    else if (m < 60) snprintf(buf, cap, "%ld minutes%s", m, suffix);
    else if (h == 1) snprintf(buf, cap, "About an hour%s", suffix);
    else if (h < 48) snprintf(buf, cap, "%ld hours%s", h, suffix);
    else if (h < 24 * 7 * 2) snprintf(buf, cap, "%ld days%s", h / 24, suffix);
    else if (h < 24 * 30 * 2) snprintf(buf, cap, "%ld weeks%s", h / 24 / 7, suffix);
    else if (h < 24 * 365 * 2) snprintf(buf, cap, "%ld months%s", h / 24 / 30, suffix);
    else snprintf(buf, cap, "%ld years%s", (long)(d / 3600) / 24 / 365, suffix);
}

typedef struct row {
    char name[600], id[16], size[32], modified[64];
} row;

int cmd_list(int argc, char **argv) {
    if (argc > 1) {
        fprintf(stderr, "usage: seek list\n");
        return 1;
    }
    seek_err err = { 0 };
    store *s = store_open(NULL, &err);
    store_entry *e = NULL;
    size_t n = 0;
    if (!s || store_list(s, &e, &n, &err)) {
        fprintf(stderr, "Error: %s\n", err.msg);
        store_close(s);
        return 1;
    }
    row *rows = calloc(n + 1, sizeof *rows);
    if (!rows) {
        free(e);
        store_close(s);
        return 1;
    }
    snprintf(rows[0].name, sizeof rows[0].name, "NAME");
    snprintf(rows[0].id, sizeof rows[0].id, "ID");
    snprintf(rows[0].size, sizeof rows[0].size, "SIZE");
    snprintf(rows[0].modified, sizeof rows[0].modified, "MODIFIED");
    int w[3] = { 4, 2, 4 };
    for (size_t i = 0; i < n; i++) {
        row *r = &rows[i + 1];
        store_name_display(&e[i].name, r->name, sizeof r->name);
        snprintf(r->id, sizeof r->id, "%.12s", e[i].digest + 7);
        human_bytes(e[i].size, r->size, sizeof r->size);
        human_ago(e[i].mtime, r->modified, sizeof r->modified);
    }
    for (size_t i = 0; i <= n; i++) {
        int l[3] = { (int)strlen(rows[i].name), (int)strlen(rows[i].id), (int)strlen(rows[i].size) };
        for (int k = 0; k < 3; k++) if (l[k] > w[k]) w[k] = l[k];
    }
    for (size_t i = 0; i <= n; i++)
        printf("%-*s    %-*s    %-*s    %s\n", w[0], rows[i].name, w[1], rows[i].id, w[2], rows[i].size,
               rows[i].modified);
    free(rows);
    free(e);
    store_close(s);
    return 0;
}
