/* ASYNC_QUEUE_SIGNAL_ON_DATA with uniloop_queue_set_signal: a message
 * landing in an empty queue posts one completion (key, 0); a burst posts
 * one; after a drain the next message posts again; no message is left
 * without a completion; a queue outliving its runtime still works. */
#include <uniloop.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "test_runtime.h"

#define KEY ((uintptr_t)0xC0FFEE)

static int drain(async_queue_t *q) {
    char buf[32];
    int n = 0;
    while (async_queue_dequeue(q, buf, sizeof buf, NULL)) n++;
    CHECK(uniloop_last_error() == UNILOOP_ERR_EMPTY);
    return n;
}

static void test_one_completion_per_burst(async_runtime_t *rt) {
    async_queue_t *q = async_queue_create(16, 32, ASYNC_QUEUE_SIGNAL_ON_DATA);
    CHECK(uniloop_queue_set_signal(q, rt, KEY));
    uintptr_t key = 0, data = 1;
    CHECK(test_rt_completion(rt, 0, &key, &data) == 0);
    for (int i = 0; i < 3; i++) CHECK(async_queue_enqueue(q, "m", 2));
    CHECK(test_rt_completion(rt, 10000, &key, &data) == 1);
    CHECK(key == KEY && data == 0);
    CHECK(test_rt_completion(rt, 0, &key, &data) == 0);
    CHECK(drain(q) == 3);
    /* Drained: the next message posts again. */
    CHECK(async_queue_enqueue(q, "m", 2));
    CHECK(test_rt_completion(rt, 10000, &key, &data) == 1 && key == KEY);
    CHECK(test_rt_completion(rt, 0, &key, &data) == 0);
    CHECK(drain(q) == 1);
    async_queue_destroy(q);

    /* Messages already queued when the signal is set are announced. */
    q = async_queue_create(16, 32, ASYNC_QUEUE_SIGNAL_ON_DATA);
    CHECK(async_queue_enqueue(q, "early", 6));
    CHECK(uniloop_queue_set_signal(q, rt, KEY + 1));
    CHECK(test_rt_completion(rt, 10000, &key, &data) == 1 && key == KEY + 1);
    CHECK(drain(q) == 1);
    async_queue_destroy(q);
}

struct producer {
    async_queue_t *q;
    int count;
};

static void *producer_main(void *arg) {
    struct producer *p = (struct producer *)arg;
    for (int i = 0; i < p->count; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "%d", i);
        CHECK(async_queue_enqueue(p->q, msg, strlen(msg) + 1));
    }
    return NULL;
}

/* The loop's pattern: on each completion, drain. Every message is seen,
 * in order, and the loop never waits on a completion that is not coming
 * (the 10 s wait would fail the test). */
static void test_no_lost_signal(async_runtime_t *rt) {
    enum { N = 5000 };
    async_queue_t *q = async_queue_create(8, 16, ASYNC_QUEUE_BLOCK_WRITER | ASYNC_QUEUE_SIGNAL_ON_DATA);
    CHECK(uniloop_queue_set_signal(q, rt, KEY));
    struct producer p = {q, N};
    compat_thread_t t;
    CHECK(compat_thread_start(&t, producer_main, &p) == 0);
    int next = 0;
    while (next < N) {
        uintptr_t key = 0, data = 0;
        CHECK(test_rt_completion(rt, 10000, &key, &data) == 1);
        CHECK(key == KEY);
        char buf[16];
        while (async_queue_dequeue(q, buf, sizeof buf, NULL)) {
            CHECK(atoi(buf) == next);
            next++;
        }
    }
    compat_thread_join(t);
    /* Leftover completions (one per drain at most) find an empty queue. */
    uintptr_t key, data;
    while (test_rt_completion(rt, 0, &key, &data) == 1) CHECK(key == KEY);
    async_queue_destroy(q);
}

int main(void) {
    async_runtime_t *rt = test_rt_new();
    CHECK(rt != NULL);
    test_one_completion_per_burst(rt);
    test_no_lost_signal(rt);

    /* Invalid arguments. */
    async_queue_t *q = async_queue_create(4, 8, ASYNC_QUEUE_SIGNAL_ON_DATA);
    CHECK(!uniloop_queue_set_signal(NULL, rt, KEY));
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    CHECK(!uniloop_queue_set_signal(q, NULL, KEY));
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);

    /* The queue outlives its runtime: the post is skipped. */
    CHECK(uniloop_queue_set_signal(q, rt, KEY));
    test_rt_free(rt);
    CHECK(async_queue_enqueue(q, "late", 5));
    CHECK(drain(q) == 1);
    async_queue_destroy(q);
    puts("queue_signal: ok");
    return 0;
}
