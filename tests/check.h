/*
 * check.h - the minimal test harness every C test program uses.
 *
 * CHECK(cond, fmt, ...) counts a pass or prints "FAIL file:line: message" and counts a failure.
 * check_done(name) prints "name: N passed, M failed" as the program's last line and returns the
 * exit status (non-zero on any failure).  tests/run.sh adds these lines up; a program that dies
 * before printing its line counts as one failure.
 */
#ifndef SEEK_TEST_CHECK_H
#define SEEK_TEST_CHECK_H

#include <stdio.h>

static int check_n_pass, check_n_fail;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            check_n_pass++;                                                  \
        } else {                                                             \
            check_n_fail++;                                                  \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                      \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
            fflush(stdout);                                                  \
        }                                                                    \
    } while (0)

static inline int check_done(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_n_pass, check_n_fail);
    fflush(stdout);
    return check_n_fail ? 1 : 0;
}

#endif
