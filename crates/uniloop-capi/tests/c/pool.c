/* uniloop_pool_*: each finished job posts (key, job id) to the runtime,
 * exactly once; destroy runs every submitted job and joins; a full job
 * queue refuses; bad arguments fail. */
#include <uniloop.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "test_runtime.h"

#define KEY ((uintptr_t)0xB001)

static void count_job(void *arg) { atomic_fetch_add((atomic_int *)arg, 1); }

struct slot {
    atomic_int ran;
    uintptr_t id;
    int seen;
};

static void slot_job(void *arg) { atomic_fetch_add(&((struct slot *)arg)->ran, 1); }

static void test_completions(async_runtime_t *rt) {
    enum { N = 300 };
    static struct slot slots[N];
    uniloop_pool_t *pool = uniloop_pool_create(rt, 3, KEY);
    CHECK(pool != NULL);
    for (int i = 0; i < N; i++) {
        atomic_init(&slots[i].ran, 0);
        slots[i].seen = 0;
        slots[i].id = uniloop_pool_submit(pool, slot_job, &slots[i]);
        CHECK(slots[i].id != 0);
    }
    for (int n = 0; n < N; n++) {
        uintptr_t key = 0, data = 0;
        CHECK(test_rt_completion(rt, 10000, &key, &data) == 1);
        CHECK(key == KEY);
        int found = 0;
        for (int i = 0; i < N; i++) {
            if (slots[i].id == data) {
                CHECK(!slots[i].seen);
                /* The completion comes after the job ran. */
                CHECK(atomic_load(&slots[i].ran) == 1);
                slots[i].seen = 1;
                found = 1;
                break;
            }
        }
        CHECK(found);
    }
    uniloop_pool_destroy(pool);
    uintptr_t key, data;
    CHECK(test_rt_completion(rt, 0, &key, &data) == 0);
}

struct gate {
    compat_monitor_t m;
    int open, arrived;
};

static void gate_job(void *arg) {
    struct gate *g = (struct gate *)arg;
    compat_lock(&g->m);
    g->arrived = 1;
    compat_broadcast(&g->m);
    while (!g->open) compat_wait(&g->m);
    compat_unlock(&g->m);
}

static void test_destroy_runs_pending_and_full(async_runtime_t *rt) {
    struct gate g;
    compat_monitor_init(&g.m);
    g.open = g.arrived = 0;
    atomic_int count;
    atomic_init(&count, 0);
    uniloop_pool_t *pool = uniloop_pool_create(rt, 1, KEY);
    CHECK(pool != NULL);
    CHECK(uniloop_pool_submit(pool, gate_job, &g) != 0);
    compat_lock(&g.m);
    while (!g.arrived) compat_wait(&g.m);
    compat_unlock(&g.m);
    /* The one thread is busy: jobs wait, up to the capacity. */
    for (int i = 0; i < UNILOOP_POOL_QUEUE_CAPACITY; i++)
        CHECK(uniloop_pool_submit(pool, count_job, &count) != 0);
    CHECK(uniloop_pool_pending(pool) == UNILOOP_POOL_QUEUE_CAPACITY);
    CHECK(uniloop_pool_submit(pool, count_job, &count) == 0);
    CHECK(uniloop_last_error() == UNILOOP_ERR_FULL);
    compat_lock(&g.m);
    g.open = 1;
    compat_broadcast(&g.m);
    compat_unlock(&g.m);
    uniloop_pool_destroy(pool);
    CHECK(atomic_load(&count) == UNILOOP_POOL_QUEUE_CAPACITY);
    int completions = 0;
    uintptr_t key, data;
    while (test_rt_completion(rt, 0, &key, &data) == 1) {
        CHECK(key == KEY);
        completions++;
    }
    CHECK(completions == UNILOOP_POOL_QUEUE_CAPACITY + 1);
    compat_monitor_destroy(&g.m);
}

static void test_invalid(async_runtime_t *rt) {
    atomic_int count;
    atomic_init(&count, 0);
    CHECK(uniloop_pool_create(NULL, 2, KEY) == NULL);
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    CHECK(uniloop_pool_create(rt, 0, KEY) == NULL);
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    CHECK(uniloop_pool_create(rt, UNILOOP_POOL_MAX_THREADS + 1, KEY) == NULL);
    CHECK(uniloop_pool_submit(NULL, count_job, &count) == 0);
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    uniloop_pool_t *pool = uniloop_pool_create(rt, 1, KEY);
    CHECK(pool != NULL);
    CHECK(uniloop_pool_submit(pool, NULL, &count) == 0);
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    CHECK(uniloop_pool_pending(NULL) == 0);
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    uniloop_pool_destroy(NULL);
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    uniloop_pool_destroy(pool);
}

struct self_destroy {
    uniloop_pool_t *pool;
    int error;
};

static void self_destroy_job(void *arg) {
    struct self_destroy *d = (struct self_destroy *)arg;
    uniloop_pool_destroy(d->pool);
    d->error = uniloop_last_error();
}

/* A job destroying its own pool would join itself; it is refused. */
static void test_destroy_from_job(async_runtime_t *rt) {
    struct self_destroy d = {NULL, -1};
    d.pool = uniloop_pool_create(rt, 1, KEY);
    CHECK(d.pool != NULL);
    uintptr_t id = uniloop_pool_submit(d.pool, self_destroy_job, &d);
    CHECK(id != 0);
    uintptr_t key = 0, data = 0;
    CHECK(test_rt_completion(rt, 10000, &key, &data) == 1);
    CHECK(key == KEY && data == id);
    CHECK(d.error == UNILOOP_ERR_INVALID);
    uniloop_pool_destroy(d.pool);
}

int main(void) {
    async_runtime_t *rt = test_rt_new();
    CHECK(rt != NULL);
    test_completions(rt);
    test_destroy_runs_pending_and_full(rt);
    test_invalid(rt);
    test_destroy_from_job(rt);
    /* A pool outliving its runtime: posts are skipped, jobs still run. */
    uniloop_pool_t *pool = uniloop_pool_create(rt, 2, KEY);
    atomic_int count;
    atomic_init(&count, 0);
    test_rt_free(rt);
    for (int i = 0; i < 10; i++) CHECK(uniloop_pool_submit(pool, count_job, &count) != 0);
    uniloop_pool_destroy(pool);
    CHECK(atomic_load(&count) == 10);
    puts("pool: ok");
    return 0;
}
