/* async_queue_*: every case of the reference's queue suite (create/destroy,
 * enqueue/dequeue, multiple messages, full, drop-oldest, statistics, clear,
 * single producer/single consumer, multiple producers), then the defects
 * the reference had: a too-small buffer leaves the head, oversize
 * enqueues fail, BLOCK_WRITER writers are released by dequeue, clear,
 * close and destroy, and a blocking dequeue with a timeout. */
#include <uniloop.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"

#define NOFLAGS ((async_queue_flags_t)0)

static void test_create_destroy(void) {
    async_queue_t *q = async_queue_create(16, 128, NOFLAGS);
    CHECK(q != NULL);
    CHECK(async_queue_is_empty(q));
    CHECK(!async_queue_is_full(q));
    async_queue_destroy(q);
    CHECK(async_queue_create(0, 128, NOFLAGS) == NULL);
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    CHECK(async_queue_create(16, 0, NOFLAGS) == NULL);
    CHECK(async_queue_create(16, 8, (async_queue_flags_t)0x100) == NULL);
}

static void test_enqueue_dequeue(void) {
    async_queue_t *q = async_queue_create(16, 128, NOFLAGS);
    const char *msg = "Hello, World!";
    CHECK(async_queue_enqueue(q, msg, strlen(msg) + 1));
    CHECK(!async_queue_is_empty(q));
    char buf[128];
    size_t size = 0;
    CHECK(async_queue_dequeue(q, buf, sizeof buf, &size));
    CHECK(size == strlen(msg) + 1);
    CHECK(strcmp(buf, msg) == 0);
    CHECK(async_queue_is_empty(q));
    CHECK(!async_queue_dequeue(q, buf, sizeof buf, &size));
    CHECK(uniloop_last_error() == UNILOOP_ERR_EMPTY);
    async_queue_destroy(q);
}

static void test_multiple_messages(void) {
    async_queue_t *q = async_queue_create(8, 64, NOFLAGS);
    for (int i = 0; i < 5; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "Message %d", i);
        CHECK(async_queue_enqueue(q, msg, strlen(msg) + 1));
    }
    for (int i = 0; i < 5; i++) {
        char buf[64], expected[64];
        snprintf(expected, sizeof expected, "Message %d", i);
        size_t size = 0;
        CHECK(async_queue_dequeue(q, buf, sizeof buf, &size));
        CHECK(strcmp(buf, expected) == 0);
    }
    CHECK(async_queue_is_empty(q));
    async_queue_destroy(q);
}

static void test_full(void) {
    async_queue_t *q = async_queue_create(4, 32, NOFLAGS);
    for (int i = 0; i < 4; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "Msg%d", i);
        CHECK(async_queue_enqueue(q, msg, strlen(msg) + 1));
    }
    CHECK(async_queue_is_full(q));
    const char *overflow = "Overflow";
    CHECK(!async_queue_enqueue(q, overflow, strlen(overflow) + 1));
    CHECK(uniloop_last_error() == UNILOOP_ERR_FULL);
    /* The refused message changed nothing. */
    char buf[32];
    CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL));
    CHECK(strcmp(buf, "Msg0") == 0);
    async_queue_destroy(q);
}

static void test_drop_oldest(void) {
    async_queue_t *q = async_queue_create(4, 32, ASYNC_QUEUE_DROP_OLDEST);
    for (int i = 0; i < 4; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "Msg%d", i);
        CHECK(async_queue_enqueue(q, msg, strlen(msg) + 1));
    }
    CHECK(async_queue_enqueue(q, "Msg4", 5));
    CHECK(async_queue_is_full(q));
    char buf[32];
    CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL));
    CHECK(strcmp(buf, "Msg1") == 0);
    async_queue_stats_t s;
    async_queue_get_stats(q, &s);
    CHECK(s.dropped_count == 1);
    async_queue_destroy(q);
}

static void test_statistics(void) {
    CHECK(sizeof(async_queue_stats_t) == 3 * sizeof(size_t) + 3 * sizeof(uint64_t));
    CHECK(offsetof(async_queue_stats_t, enqueue_count) == 3 * sizeof(size_t));
    async_queue_t *q = async_queue_create(8, 64, NOFLAGS);
    async_queue_stats_t s;
    async_queue_get_stats(q, &s);
    CHECK(s.capacity == 8 && s.max_msg_size == 64 && s.current_size == 0);
    CHECK(s.enqueue_count == 0 && s.dequeue_count == 0 && s.dropped_count == 0);
    CHECK(async_queue_enqueue(q, "Test", 5));
    async_queue_get_stats(q, &s);
    CHECK(s.current_size == 1 && s.enqueue_count == 1);
    char buf[64];
    CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL));
    async_queue_get_stats(q, &s);
    CHECK(s.current_size == 0 && s.dequeue_count == 1);

    /* The extended counters. */
    for (int i = 0; i < 8; i++) CHECK(async_queue_enqueue(q, "x", 1));
    CHECK(!async_queue_enqueue(q, "x", 1));               /* full: rejected */
    char big[80] = {0};
    CHECK(!async_queue_enqueue(q, big, 65));              /* oversize: rejected */
    CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL));
    async_queue_clear(q);
    uniloop_queue_stats_t u;
    CHECK(uniloop_queue_stats(q, &u));
    CHECK(u.capacity == 8 && u.len == 0 && u.max_msg_size == 64);
    CHECK(u.high_water == 8);
    CHECK(u.enqueued == 9 && u.dequeued == 2 && u.dropped == 0 && u.cleared == 7);
    CHECK(u.rejected == 2 && u.blocked_writers == 0 && u.blocked_readers == 0);
    CHECK(u.enqueued == u.dequeued + u.dropped + u.cleared + u.len);
    async_queue_destroy(q);
}

static void test_clear(void) {
    async_queue_t *q = async_queue_create(8, 64, NOFLAGS);
    for (int i = 0; i < 5; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "Msg%d", i);
        CHECK(async_queue_enqueue(q, msg, strlen(msg) + 1));
    }
    CHECK(!async_queue_is_empty(q));
    async_queue_clear(q);
    CHECK(async_queue_is_empty(q));
    /* Still usable. */
    CHECK(async_queue_enqueue(q, "again", 6));
    char buf[64];
    CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL) && strcmp(buf, "again") == 0);
    async_queue_destroy(q);
}

struct producer {
    async_queue_t *q;
    int id;
    int count;
};

/* Writes "P<id>-M<i>" for i in 0..count; the queue's BLOCK_WRITER flag
 * (or DROP_OLDEST) means no retry loop. */
static void *producer_main(void *arg) {
    struct producer *p = (struct producer *)arg;
    for (int i = 0; i < p->count; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "P%d-M%d", p->id, i);
        CHECK(async_queue_enqueue(p->q, msg, strlen(msg) + 1));
    }
    return NULL;
}

static void test_spsc(void) {
    enum { N = 1000 };
    async_queue_t *q = async_queue_create(32, 128, ASYNC_QUEUE_BLOCK_WRITER);
    struct producer p = {q, 0, N};
    compat_thread_t t;
    CHECK(compat_thread_start(&t, producer_main, &p) == 0);
    for (int i = 0; i < N; i++) {
        char buf[128], expected[64];
        size_t size = 0;
        CHECK(uniloop_queue_dequeue_timeout(q, buf, sizeof buf, &size, -1));
        snprintf(expected, sizeof expected, "P0-M%d", i);
        CHECK(size == strlen(expected) + 1 && strcmp(buf, expected) == 0);
    }
    compat_thread_join(t);
    CHECK(async_queue_is_empty(q));
    async_queue_destroy(q);
}

static void test_multiple_producers(void) {
    enum { PRODUCERS = 4, EACH = 500 };
    /* Blocking writers: every message arrives, in order per producer. */
    async_queue_t *q = async_queue_create(64, 128, ASYNC_QUEUE_BLOCK_WRITER);
    struct producer p[PRODUCERS];
    compat_thread_t t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct producer){q, i, EACH};
        CHECK(compat_thread_start(&t[i], producer_main, &p[i]) == 0);
    }
    int next[PRODUCERS] = {0};
    for (int n = 0; n < PRODUCERS * EACH; n++) {
        char buf[128];
        CHECK(uniloop_queue_dequeue_timeout(q, buf, sizeof buf, NULL, -1));
        int id = -1, seq = -1;
        CHECK(sscanf(buf, "P%d-M%d", &id, &seq) == 2);
        CHECK(id >= 0 && id < PRODUCERS);
        CHECK(seq == next[id]);
        next[id]++;
    }
    for (int i = 0; i < PRODUCERS; i++) compat_thread_join(t[i]);
    CHECK(async_queue_is_empty(q));
    async_queue_destroy(q);

    /* Drop-oldest, as the reference's test: every enqueue succeeds and
     * what was not dropped is there to drain. */
    q = async_queue_create(256, 128, ASYNC_QUEUE_DROP_OLDEST);
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct producer){q, i, EACH};
        CHECK(compat_thread_start(&t[i], producer_main, &p[i]) == 0);
    }
    for (int i = 0; i < PRODUCERS; i++) compat_thread_join(t[i]);
    uint64_t received = 0;
    char buf[128];
    while (async_queue_dequeue(q, buf, sizeof buf, NULL)) received++;
    async_queue_stats_t s;
    async_queue_get_stats(q, &s);
    CHECK(received == 256);
    CHECK(s.enqueue_count == PRODUCERS * EACH);
    CHECK(received + s.dropped_count == PRODUCERS * EACH);
    async_queue_destroy(q);
}

static void test_small_buffer_leaves_head(void) {
    async_queue_t *q = async_queue_create(4, 64, NOFLAGS);
    CHECK(async_queue_enqueue(q, "hello world", 12));
    CHECK(async_queue_enqueue(q, "second", 7));
    char small[4];
    size_t need = 0;
    CHECK(!async_queue_dequeue(q, small, sizeof small, &need));
    CHECK(uniloop_last_error() == UNILOOP_ERR_SIZE);
    CHECK(need == 12);
    /* Asking the size with no buffer. */
    need = 0;
    CHECK(!async_queue_dequeue(q, NULL, 0, &need));
    CHECK(need == 12);
    /* A blocking dequeue does not wait on a message that is too big. */
    CHECK(!uniloop_queue_dequeue_timeout(q, small, sizeof small, &need, -1));
    CHECK(uniloop_last_error() == UNILOOP_ERR_SIZE);
    async_queue_stats_t s;
    async_queue_get_stats(q, &s);
    CHECK(s.current_size == 2 && s.dequeue_count == 0);
    /* The message is still the head and can be taken. */
    char buf[64];
    size_t size = 0;
    CHECK(async_queue_dequeue(q, buf, sizeof buf, &size));
    CHECK(size == 12 && strcmp(buf, "hello world") == 0);
    CHECK(async_queue_dequeue(q, buf, 7, &size));
    CHECK(size == 7 && strcmp(buf, "second") == 0);
    async_queue_destroy(q);
}

static void test_oversize_enqueue(void) {
    async_queue_t *q = async_queue_create(4, 8, NOFLAGS);
    char big[9] = "12345678";
    CHECK(!async_queue_enqueue(q, big, 9));
    CHECK(uniloop_last_error() == UNILOOP_ERR_SIZE);
    CHECK(async_queue_enqueue(q, big, 8));
    CHECK(!async_queue_enqueue(q, big, 0));
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    async_queue_stats_t s;
    async_queue_get_stats(q, &s);
    CHECK(s.current_size == 1 && s.enqueue_count == 1);
    async_queue_destroy(q);
}

struct blocked {
    async_queue_t *q;
    int ok;
    int error;
};

static void *blocked_writer(void *arg) {
    struct blocked *b = (struct blocked *)arg;
    b->ok = async_queue_enqueue(b->q, "late", 5);
    b->error = uniloop_last_error();
    return NULL;
}

static size_t blocked_writers(async_queue_t *q) {
    uniloop_queue_stats_t u;
    CHECK(uniloop_queue_stats(q, &u));
    return u.blocked_writers;
}

static size_t blocked_readers(async_queue_t *q) {
    uniloop_queue_stats_t u;
    CHECK(uniloop_queue_stats(q, &u));
    return u.blocked_readers;
}

enum release { BY_DEQUEUE, BY_CLEAR, BY_CLOSE, BY_DESTROY };

static void test_block_writer_released(enum release how) {
    async_queue_t *q = async_queue_create(1, 16, ASYNC_QUEUE_BLOCK_WRITER);
    CHECK(async_queue_enqueue(q, "first", 6));
    struct blocked b = {q, -1, -1};
    compat_thread_t t;
    CHECK(compat_thread_start(&t, blocked_writer, &b) == 0);
    WAIT_UNTIL(blocked_writers(q) == 1);
    char buf[16];
    switch (how) {
    case BY_DEQUEUE:
        CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL) && strcmp(buf, "first") == 0);
        break;
    case BY_CLEAR:
        async_queue_clear(q);
        break;
    case BY_CLOSE:
        CHECK(uniloop_queue_close(q));
        break;
    case BY_DESTROY:
        async_queue_destroy(q);
        break;
    }
    compat_thread_join(t);
    if (how == BY_DESTROY || how == BY_CLOSE) {
        CHECK(b.ok == 0 && b.error == UNILOOP_ERR_CLOSED);
    } else {
        CHECK(b.ok == 1 && b.error == UNILOOP_OK);
        CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL) && strcmp(buf, "late") == 0);
    }
    if (how == BY_CLOSE) {
        /* What was queued before the close can still be taken. */
        CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL) && strcmp(buf, "first") == 0);
        CHECK(!async_queue_enqueue(q, "x", 1));
        CHECK(uniloop_last_error() == UNILOOP_ERR_CLOSED);
        CHECK(!uniloop_queue_dequeue_timeout(q, buf, sizeof buf, NULL, -1));
        CHECK(uniloop_last_error() == UNILOOP_ERR_CLOSED);
    }
    if (how != BY_DESTROY) async_queue_destroy(q);
}

struct delayed {
    async_queue_t *q;
};

static void *late_producer(void *arg) {
    struct delayed *d = (struct delayed *)arg;
    CHECK(async_queue_enqueue(d->q, "wake", 5));
    return NULL;
}

static void *blocked_reader(void *arg) {
    struct blocked *b = (struct blocked *)arg;
    char buf[16];
    b->ok = uniloop_queue_dequeue_timeout(b->q, buf, sizeof buf, NULL, -1);
    b->error = uniloop_last_error();
    return NULL;
}

static void test_dequeue_timeout(void) {
    async_queue_t *q = async_queue_create(4, 16, NOFLAGS);
    char buf[16];
    size_t size = 0;
    /* 0 polls. */
    CHECK(!uniloop_queue_dequeue_timeout(q, buf, sizeof buf, &size, 0));
    CHECK(uniloop_last_error() == UNILOOP_ERR_TIMEOUT);
    /* A timeout is not cut short. */
    uint64_t start = compat_now_ms();
    CHECK(!uniloop_queue_dequeue_timeout(q, buf, sizeof buf, &size, 50));
    CHECK(uniloop_last_error() == UNILOOP_ERR_TIMEOUT);
    CHECK(compat_now_ms() - start >= 49);
    /* A message from another thread ends an infinite wait. */
    struct delayed d = {q};
    compat_thread_t t;
    CHECK(compat_thread_start(&t, late_producer, &d) == 0);
    CHECK(uniloop_queue_dequeue_timeout(q, buf, sizeof buf, &size, -1));
    CHECK(size == 5 && strcmp(buf, "wake") == 0);
    compat_thread_join(t);
    /* A reader blocked forever is released by destroy. */
    struct blocked b = {q, -1, -1};
    CHECK(compat_thread_start(&t, blocked_reader, &b) == 0);
    WAIT_UNTIL(blocked_readers(q) == 1);
    async_queue_destroy(q);
    compat_thread_join(t);
    CHECK(b.ok == 0 && b.error == UNILOOP_ERR_CLOSED);
}

struct taker {
    async_queue_t *q;
};

static void *taker_main(void *arg) {
    struct taker *t = (struct taker *)arg;
    char buf[16];
    WAIT_UNTIL(blocked_writers(t->q) == 1);
    CHECK(async_queue_dequeue(t->q, buf, sizeof buf, NULL) && strcmp(buf, "first") == 0);
    return NULL;
}

static void test_enqueue_timeout(void) {
    /* No BLOCK_WRITER: a plain enqueue refuses, a timed one waits. */
    async_queue_t *q = async_queue_create(1, 16, NOFLAGS);
    CHECK(uniloop_queue_enqueue_timeout(q, "first", 6, 0));
    CHECK(!uniloop_queue_enqueue_timeout(q, "second", 7, 0));
    CHECK(uniloop_last_error() == UNILOOP_ERR_TIMEOUT);
    uint64_t start = compat_now_ms();
    CHECK(!uniloop_queue_enqueue_timeout(q, "second", 7, 50));
    CHECK(uniloop_last_error() == UNILOOP_ERR_TIMEOUT);
    CHECK(compat_now_ms() - start >= 49);
    struct taker tk = {q};
    compat_thread_t t;
    CHECK(compat_thread_start(&t, taker_main, &tk) == 0);
    CHECK(uniloop_queue_enqueue_timeout(q, "second", 7, -1));
    compat_thread_join(t);
    char buf[16];
    CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL) && strcmp(buf, "second") == 0);
    uniloop_queue_stats_t u;
    CHECK(uniloop_queue_stats(q, &u));
    CHECK(u.rejected == 2 && u.enqueued == 2);
    async_queue_destroy(q);

    /* DROP_OLDEST never waits. */
    q = async_queue_create(1, 16, ASYNC_QUEUE_DROP_OLDEST);
    CHECK(uniloop_queue_enqueue_timeout(q, "a", 2, -1));
    CHECK(uniloop_queue_enqueue_timeout(q, "b", 2, -1));
    CHECK(async_queue_dequeue(q, buf, sizeof buf, NULL) && strcmp(buf, "b") == 0);
    async_queue_destroy(q);
}

int main(void) {
    test_create_destroy();
    test_enqueue_dequeue();
    test_multiple_messages();
    test_full();
    test_drop_oldest();
    test_statistics();
    test_clear();
    test_spsc();
    test_multiple_producers();
    test_small_buffer_leaves_head();
    test_oversize_enqueue();
    test_block_writer_released(BY_DEQUEUE);
    test_block_writer_released(BY_CLEAR);
    test_block_writer_released(BY_CLOSE);
    test_block_writer_released(BY_DESTROY);
    test_dequeue_timeout();
    test_enqueue_timeout();
    puts("queue: ok");
    return 0;
}
