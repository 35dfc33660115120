/* NULL and invalid arguments to every queue, worker and pool function:
 * each returns its failure value (the reference's, where it had one) and
 * records UNILOOP_ERR_INVALID; nothing crashes; a later success clears
 * the error. */
#include <uniloop.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"

#define EXPECT_INVALID(expr)                                \
    do {                                                    \
        CHECK(expr);                                        \
        CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID); \
        CHECK(uniloop_last_error_message()[0] != '\0');     \
    } while (0)

static void *body(void *arg) { return arg; }

static void queue_functions(void) {
    char buf[8];
    size_t n = 99;
    EXPECT_INVALID(async_queue_create(0, 8, (async_queue_flags_t)0) == NULL);
    EXPECT_INVALID(async_queue_create(8, 0, (async_queue_flags_t)0) == NULL);
    EXPECT_INVALID(async_queue_create(8, 8, (async_queue_flags_t)0x80) == NULL);
    EXPECT_INVALID((async_queue_destroy(NULL), 1));
    EXPECT_INVALID(!async_queue_enqueue(NULL, "x", 1));
    EXPECT_INVALID(!uniloop_queue_enqueue_timeout(NULL, "x", 1, 0));
    EXPECT_INVALID(!async_queue_dequeue(NULL, buf, sizeof buf, &n));
    EXPECT_INVALID(!uniloop_queue_dequeue_timeout(NULL, buf, sizeof buf, &n, 0));
    CHECK(n == 99);
    /* As in the reference: a NULL queue is empty and not full. */
    EXPECT_INVALID(async_queue_is_empty(NULL));
    EXPECT_INVALID(!async_queue_is_full(NULL));
    EXPECT_INVALID((async_queue_clear(NULL), 1));
    async_queue_stats_t s;
    memset(&s, 0xff, sizeof s);
    EXPECT_INVALID((async_queue_get_stats(NULL, &s), 1));
    CHECK(s.capacity == 0 && s.enqueue_count == 0);
    uniloop_queue_stats_t u;
    EXPECT_INVALID(!uniloop_queue_stats(NULL, &u));
    EXPECT_INVALID(!uniloop_queue_close(NULL));
    EXPECT_INVALID(!uniloop_queue_set_signal(NULL, NULL, 1));

    async_queue_t *q = async_queue_create(2, 8, (async_queue_flags_t)0);
    CHECK(q != NULL);
    CHECK(uniloop_last_error() == UNILOOP_OK);
    EXPECT_INVALID(!async_queue_enqueue(q, NULL, 4));
    EXPECT_INVALID(!async_queue_enqueue(q, "", 0));
    EXPECT_INVALID(!uniloop_queue_enqueue_timeout(q, NULL, 4, 0));
    CHECK(async_queue_enqueue(q, "abc", 4));
    CHECK(uniloop_last_error() == UNILOOP_OK);
    EXPECT_INVALID(!async_queue_dequeue(q, NULL, 8, &n));
    EXPECT_INVALID(!uniloop_queue_dequeue_timeout(q, NULL, 8, &n, 0));
    EXPECT_INVALID((async_queue_get_stats(q, NULL), 1));
    EXPECT_INVALID(!uniloop_queue_stats(q, NULL));
    EXPECT_INVALID(!uniloop_queue_set_signal(q, NULL, 1));
    /* A NULL out_size is allowed. */
    CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL));
    CHECK(strcmp(buf, "abc") == 0);
    async_queue_destroy(q);
    CHECK(uniloop_last_error() == UNILOOP_OK);
}

static void worker_functions(void) {
    EXPECT_INVALID(async_worker_create(NULL, NULL, 0) == NULL);
    EXPECT_INVALID((async_worker_destroy(NULL), 1));
#if defined(_WIN32)
    EXPECT_INVALID(async_worker_get_native_handle(NULL) == NULL);
#else
    EXPECT_INVALID(async_worker_get_native_handle(NULL) == 0);
#endif
    EXPECT_INVALID((async_worker_signal_stop(NULL), 1));
    EXPECT_INVALID(!async_worker_join(NULL, 0));
    EXPECT_INVALID(!async_worker_join(NULL, -1));
    EXPECT_INVALID(!async_worker_should_stop(NULL));
    EXPECT_INVALID(async_worker_get_state(NULL) == ASYNC_WORKER_STOPPED);
    EXPECT_INVALID(async_worker_get_stop_event(NULL) == NULL);
    EXPECT_INVALID(!uniloop_worker_wait_stop(NULL, 0));
    void *r = (void *)1;
    EXPECT_INVALID(!uniloop_worker_result(NULL, &r));
    CHECK(r == (void *)1);
    /* Outside a worker there is no current worker, and that is no error. */
    CHECK(async_worker_current() == NULL);
    CHECK(uniloop_last_error() == UNILOOP_OK);

    async_worker_t *w = async_worker_create(body, (void *)5, 0);
    CHECK(w != NULL);
    EXPECT_INVALID(!uniloop_worker_result(w, NULL));
    CHECK(async_worker_join(w, -1));
    CHECK(uniloop_last_error() == UNILOOP_OK);
    CHECK(uniloop_worker_result(w, &r) && r == (void *)5);
    async_worker_destroy(w);
}

static void job(void *arg) { (void)arg; }

static void pool_functions(void) {
    EXPECT_INVALID(uniloop_pool_create(NULL, 1, 0) == NULL);
    EXPECT_INVALID(uniloop_pool_submit(NULL, job, NULL) == 0);
    EXPECT_INVALID(uniloop_pool_pending(NULL) == 0);
    EXPECT_INVALID((uniloop_pool_destroy(NULL), 1));
}

int main(void) {
    queue_functions();
    worker_functions();
    pool_functions();
    puts("invalid_queue_worker: ok");
    return 0;
}
