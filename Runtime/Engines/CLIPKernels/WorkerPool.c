#include "CLIPKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

// How long an idle helper spins before it sleeps (pause instructions: roughly 100-200 µs), so that
// the hand-offs between the many short parallel steps of one inference never wait for a wake-up.
enum { SPIN_LIMIT = 4096, CALLER_SPINS_BEFORE_YIELD = 1 << 14 };

struct clipk_pool {
    int workers;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint generation;
    atomic_int remaining;
    atomic_int sleepers;
    atomic_int busy;
    atomic_int stopping;
    atomic_int next_part;
    clipk_task task;
    void *context;
    int count;
};

// Takes parts one at a time until none is left: a worker that runs faster (or a core that other
// work does not interrupt) takes more of them.
static void run_parts(clipk_pool *pool) {
    for (;;) {
        int part = atomic_fetch_add_explicit(&pool->next_part, 1, memory_order_relaxed);
        if (part >= pool->count) return;
        pool->task(pool->context, part);
    }
}

static void *helper_main(void *argument) {
    clipk_pool *pool = argument;
    unsigned seen = 0;
    for (;;) {
        unsigned current = atomic_load_explicit(&pool->generation, memory_order_acquire);
        for (int spins = 0; current == seen && spins < SPIN_LIMIT; spins++) {
            CPU_RELAX();
            current = atomic_load_explicit(&pool->generation, memory_order_acquire);
        }
        if (current == seen) {
            pthread_mutex_lock(&pool->lock);
            atomic_fetch_add(&pool->sleepers, 1);
            while ((current = atomic_load(&pool->generation)) == seen) pthread_cond_wait(&pool->wake, &pool->lock);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->lock);
        }
        seen = current;
        if (atomic_load_explicit(&pool->stopping, memory_order_acquire)) return NULL;
        run_parts(pool);
        // Every helper answers every run, so none can lag behind into the next one.
        atomic_fetch_sub_explicit(&pool->remaining, 1, memory_order_release);
    }
}

clipk_pool *clipk_pool_create(int workers) {
    if (workers < 1) workers = 1;
    clipk_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->workers = workers;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = calloc((size_t)workers, sizeof(pthread_t));
    int started = 1;
    for (int index = 1; index < workers && pool->threads; index++, started++) {
        if (pthread_create(&pool->threads[index], NULL, helper_main, pool) != 0) break;
    }
    // With fewer helpers than asked (no memory, no threads), the pool runs what it has.
    pool->workers = started;
    return pool;
}

int clipk_pool_workers(const clipk_pool *pool) { return pool ? pool->workers : 1; }

void clipk_pool_destroy(clipk_pool *pool) {
    if (!pool) return;
    atomic_store(&pool->stopping, 1);
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add(&pool->generation, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int index = 1; index < pool->workers; index++) pthread_join(pool->threads[index], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}

void clipk_pool_run(clipk_pool *pool, int count, clipk_task task, void *context) {
    if (count <= 0) return;
    // One run at a time: a caller that finds the pool busy (another inference on another thread)
    // runs every part itself. The parts are fixed by their index, so the results are the same.
    if (!pool || count == 1 || pool->workers == 1 || atomic_exchange_explicit(&pool->busy, 1, memory_order_acquire)) {
        for (int index = 0; index < count; index++) task(context, index);
        return;
    }
    pool->task = task;
    pool->context = context;
    pool->count = count;
    atomic_store_explicit(&pool->next_part, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->remaining, pool->workers - 1, memory_order_relaxed);
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);
    }
    run_parts(pool);
    for (int spins = 0; atomic_load_explicit(&pool->remaining, memory_order_acquire) > 0; spins++) {
        if (spins < CALLER_SPINS_BEFORE_YIELD) CPU_RELAX();
        else sched_yield();
    }
    atomic_store_explicit(&pool->busy, 0, memory_order_release);
}
