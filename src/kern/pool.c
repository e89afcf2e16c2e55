/*
 * pool.c - the thread pool behind every parallel kernel.
 *
 * kern_pool_run(fn, ctx) publishes a task by bumping a generation counter; each worker spins on
 * that counter for a short while (tasks come back to back during a forward pass: one per matmul,
 * dozens per token) and then sleeps on a condition variable.  The caller runs part 0 itself and
 * then waits for a count of finished workers.  No allocation per task.
 */
#include "kern.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Iterations a worker spins before sleeping (about 50-100 us on a modern core). */
#define POOL_SPIN 20000

struct kern_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    _Atomic uint64_t generation; /* bumped once per task */
    _Atomic int n_done;          /* workers finished with the current task */
    _Atomic int n_sleeping;      /* workers waiting (or about to wait) on `wake` */
    _Atomic bool stop;
    kern_task_fn fn;
    void *ctx;
};

typedef struct {
    kern_pool *pool;
    int ith;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg *a = p;
    kern_pool *pool = a->pool;
    int ith = a->ith;
    free(a);
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load(&pool->stop)) {
            if (++spins < POOL_SPIN) {
                cpu_relax();
                if ((spins & 1023) == 0) sched_yield(); /* let a starved thread run */
                continue;
            }
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->n_sleeping, 1);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->mu);
            atomic_fetch_sub(&pool->n_sleeping, 1);
            pthread_mutex_unlock(&pool->mu);
            spins = 0;
        }
        if (atomic_load(&pool->stop)) break;
        seen = gen;
        pool->fn(pool->ctx, ith, pool->n_threads);
        atomic_fetch_add_explicit(&pool->n_done, 1, memory_order_release);
    }
    return NULL;
}

kern_pool *kern_pool_new(int n_threads, seek_err *err) {
    if (n_threads < 1) n_threads = 1;
    kern_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        err_set(err, SEEK_ENOMEM, "out of memory creating thread pool");
        return NULL;
    }
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->wake, NULL);
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
        if (!pool->threads) {
            free(pool);
            err_set(err, SEEK_ENOMEM, "out of memory creating thread pool");
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (a) {
            a->pool = pool;
            a->ith = i;
        }
        if (!a || pthread_create(&pool->threads[i], NULL, worker_main, a) != 0) {
            free(a);
            pool->n_threads = i; /* shut down the ones that started */
            kern_pool_free(pool);
            err_set(err, SEEK_EIO, "cannot start worker thread %d", i);
            return NULL;
        }
    }
    return pool;
}

void kern_pool_free(kern_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n_threads; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->wake);
    free(pool->threads);
    free(pool);
}

int kern_pool_size(const kern_pool *pool) { return pool ? pool->n_threads : 1; }

void kern_pool_run(kern_pool *pool, kern_task_fn fn, void *ctx) {
    if (!pool || pool->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->n_done, 0, memory_order_relaxed);
    atomic_fetch_add(&pool->generation, 1); /* seq_cst: pairs with n_sleeping below */
    if (atomic_load(&pool->n_sleeping) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mu);
    }
    fn(ctx, 0, pool->n_threads);
    /* spin, then yield: with more threads than free cores a pure spin starves the workers */
    for (int spins = 0; atomic_load_explicit(&pool->n_done, memory_order_acquire) < pool->n_threads - 1; spins++) {
        if (spins < POOL_SPIN) cpu_relax();
        else sched_yield();
    }
}

void kern_split(int64_t n, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi) {
    if (align < 1) align = 1;
    int64_t units = (n + align - 1) / align;
    int64_t per = units / nth, extra = units % nth;
    int64_t start = ith * per + (ith < extra ? ith : extra);
    int64_t len = per + (ith < extra ? 1 : 0);
    *lo = start * align;
    *hi = (start + len) * align;
    if (*lo > n) *lo = n;
    if (*hi > n) *hi = n;
}
