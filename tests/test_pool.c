/*
 * test_pool.c - the thread pool and work splitting: every part runs exactly once per task,
 * back-to-back tasks (spinning workers) and tasks after idle periods (sleeping workers) both
 * complete, and kern_split covers a range exactly with aligned, disjoint parts.
 */
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kern/kern.h"

typedef struct {
    _Atomic int calls[16];
    _Atomic long sum;
} count_ctx;

static void count_task(void *p, int ith, int nth) {
    count_ctx *c = p;
    atomic_fetch_add(&c->calls[ith], 1);
    atomic_fetch_add(&c->sum, (long)nth);
}

int main(void) {
    for (int nth = 1; nth <= 4; nth++) {
        seek_err err = { 0 };
        kern_pool *pool = kern_pool_new(nth, &err);
        CHECK(pool != NULL, "pool of %d: %s", nth, err.msg);
        if (!pool) continue;
        CHECK(kern_pool_size(pool) == nth, "size %d", kern_pool_size(pool));
        count_ctx c;
        memset(&c, 0, sizeof c);
        const int rounds = nth <= 2 ? 20000 : 4000; /* fewer when threads outnumber the 2 cores */
        for (int r = 0; r < rounds; r++) {
            kern_pool_run(pool, count_task, &c);
            if (r % 5000 == 0) usleep(20000); /* let workers fall asleep */
        }
        bool exact = true;
        for (int i = 0; i < nth; i++) exact &= atomic_load(&c.calls[i]) == rounds;
        CHECK(exact, "each of %d threads ran each of %d tasks once", nth, rounds);
        CHECK(atomic_load(&c.sum) == (long)rounds * nth * nth, "nth passed to every call");
        kern_pool_free(pool);
    }

    /* kern_split: disjoint, covering, aligned */
    const int64_t ns[] = { 0, 1, 7, 16, 100, 151936, 8960 };
    const int64_t aligns[] = { 1, 16, 32 };
    for (size_t a = 0; a < 3; a++)
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            for (int nth = 1; nth <= 5; nth++) {
                int64_t expect = 0;
                bool ok = true;
                for (int ith = 0; ith < nth; ith++) {
                    int64_t lo, hi;
                    kern_split(ns[i], aligns[a], ith, nth, &lo, &hi);
                    ok &= lo == expect && hi >= lo && (lo % aligns[a] == 0 || lo == ns[i]);
                    expect = hi;
                }
                ok &= expect == ns[i];
                CHECK(ok, "split n=%lld align=%lld nth=%d", (long long)ns[i], (long long)aligns[a], nth);
            }
    return check_done("test_pool");
}
