/* pool.c - persistent thread pool.
 *
 * A job is published by bumping `generation`; workers spin on it for a short
 * while (decode runs hundreds of sub-millisecond matmuls per token, and a
 * futex wake-up per matmul would cost more than the matmul) and then fall
 * back to sleeping on a condition variable. The caller runs share 0 itself
 * and then waits for `pending` to reach zero. */
#include "hive/core.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* How long an idle worker polls for the next job before sleeping. Decode
 * posts a job every few microseconds, so polling saves a futex wake-up per
 * job; but on an oversubscribed machine (several nodes on one box) a polling
 * worker steals the core from the thread that would post the next job, so
 * the window is kept short and measured in time, not iterations (PAUSE costs
 * from 10 to 150 cycles depending on the CPU). */
#define POOL_SPIN_US 100
/* The poster waiting for the last worker yields the CPU after this many
 * polls, in case that worker is waiting for the core the poster holds. */
#define POOL_WAIT_POLLS_BEFORE_YIELD 4096

struct hive_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint generation; /* bumped once per job */
    atomic_int pending;     /* workers still running the current job */
    atomic_int stop;
    hive_task_fn fn;
    void *arg;
};

struct worker_arg {
    hive_pool *pool;
    int ith;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *worker_main(void *p) {
    struct worker_arg wa = *(struct worker_arg *)p;
    free(p);
    hive_pool *pool = wa.pool;
    unsigned seen = 0; /* the generation at creation; a job may already be posted */
    for (;;) {
        unsigned gen;
        unsigned spins = 0;
        uint64_t spin_start = hive_now_us();
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load(&pool->stop)) {
            /* read the clock only every 64 polls: it costs more than a poll */
            if (++spins % 64 || hive_now_us() - spin_start < POOL_SPIN_US) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool->mu);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = gen;
        pool->fn(pool->arg, wa.ith, pool->n_threads);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel);
    }
}

hive_pool *hive_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    hive_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->wake, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->stop, 0);
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads - 1, sizeof *pool->threads);
        if (!pool->threads) goto err;
        for (int i = 1; i < n_threads; i++) {
            struct worker_arg *wa = malloc(sizeof *wa);
            if (!wa) goto err_threads;
            wa->pool = pool;
            wa->ith = i;
            if (pthread_create(&pool->threads[i - 1], NULL, worker_main, wa)) {
                free(wa);
                goto err_threads;
            }
            continue;
        err_threads:
            pool->n_threads = i; /* only i-1 workers exist */
            hive_pool_free(pool);
            return NULL;
        }
    }
    return pool;
err:
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->wake);
    free(pool);
    return NULL;
}

void hive_pool_free(hive_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n_threads; i++) pthread_join(pool->threads[i - 1], NULL);
    free(pool->threads);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->wake);
    free(pool);
}

int hive_pool_size(const hive_pool *pool) { return pool ? pool->n_threads : 1; }

void hive_pool_run(hive_pool *pool, hive_task_fn fn, void *arg) {
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store(&pool->pending, pool->n_threads - 1);
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    fn(arg, 0, pool->n_threads);
    for (unsigned polls = 1; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; polls++) {
        if (polls % POOL_WAIT_POLLS_BEFORE_YIELD == 0) sched_yield();
        else cpu_relax();
    }
}
