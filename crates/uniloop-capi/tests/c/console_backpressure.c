/* uniloop-test: posix-only: replaces stdin with dup2 of pipes */
/* The console worker never loses a line: with a small queue and the
 * default flags (0), 1,001 piped lines and a "quit" after them all come
 * through, in order, while the loop dequeues at its own pace (the worker
 * waits for room); a shutdown releases a worker waiting on a full queue
 * (flags 0 and BLOCK_WRITER) at once; DROP_OLDEST, chosen explicitly,
 * still drops. stdin is replaced with dup2 before console_worker_init. */
#include "rt_check.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define KEY ((uintptr_t)0xC0701E)
#define LINES 1001

static void set_stdin(int fd) {
    CHECK(dup2(fd, 0) == 0);
    close(fd);
}

/* A pipe on stdin holding `n` numbered lines (and "quit"); its write end,
 * or -1 once closed. */
static int pipe_lines(int n, int quit, int keep_open) {
    int p[2];
    CHECK(pipe(p) == 0);
    char line[32];
    for (int i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line, "line %d\n", i);
        CHECK(write(p[1], line, (size_t)len) == len);
    }
    if (quit) CHECK(write(p[1], "quit\n", 5) == 5);
    set_stdin(p[0]);
    if (keep_open) return p[1];
    close(p[1]);
    return -1;
}

static void test_nothing_lost(async_runtime_t *rt) {
    pipe_lines(LINES, 1, 0);
    async_queue_t *q = async_queue_create(4, CONSOLE_MAX_LINE, 0);
    CHECK(q != NULL);
    console_worker_context_t *ctx = console_worker_init(rt, q, KEY);
    CHECK(ctx != NULL && ctx->worker != NULL);
    int got = 0, quit = 0, eof = 0;
    unsigned completions = 0;
    io_event_t ev[16];
    char buf[CONSOLE_MAX_LINE], want[32];
    while (!eof) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 3, &tv);
        CHECK(n > 0);
        completions += (unsigned)n;
        /* one message per completion, a small batch at a time: the loop
         * is slower than the reader */
        for (int i = 0; i < n; i++) {
            size_t size;
            if (!async_queue_dequeue(q, buf, sizeof buf, &size)) continue; /* EOF's */
            if (got < LINES) {
                int len = snprintf(want, sizeof want, "line %d\n", got);
                CHECK(size == (size_t)len + 1 && memcmp(buf, want, (size_t)len + 1) == 0);
                got++;
            } else {
                CHECK(!quit && size == 6 && strcmp(buf, "quit\n") == 0);
                quit = 1;
            }
        }
        if (got == LINES && quit && console_worker_take_eof(ctx)) eof = 1;
    }
    uniloop_queue_stats_t st;
    CHECK(uniloop_queue_stats(q, &st));
    CHECK(st.rejected == 0 && st.dropped == 0 && st.enqueued == LINES + 1);
    CHECK(st.high_water <= 4);
    /* a completion per delivered line, and one for EOF */
    while (completions < LINES + 2) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 16, &tv);
        CHECK(n > 0);
        completions += (unsigned)n;
    }
    CHECK(completions == LINES + 2);
    CHECK(console_worker_shutdown(ctx, 10000));
    console_worker_destroy(ctx);
    async_queue_destroy(q);
}

/* The worker waits on a full queue; shutdown releases it (a 60 s timeout:
 * returning true at all means it did not sit out the timeout). */
static void test_shutdown_releases(async_runtime_t *rt, async_queue_flags_t flags) {
    int w = pipe_lines(5, 0, 1);
    async_queue_t *q = async_queue_create(1, CONSOLE_MAX_LINE, flags);
    CHECK(q != NULL);
    console_worker_context_t *ctx = console_worker_init(rt, q, KEY);
    CHECK(ctx != NULL);
    uniloop_queue_stats_t st;
    for (int i = 0;; i++) {
        CHECK(i < 100000); /* failure guard */
        CHECK(uniloop_queue_stats(q, &st));
        if (st.blocked_writers == 1) break;
        usleep(100);
    }
    CHECK(st.len == 1 && st.rejected == 0);
    CHECK(console_worker_shutdown(ctx, 60000));
    console_worker_destroy(ctx);
    async_queue_destroy(q);
    close(w);
    io_event_t ev[16];
    struct timeval zero = {0, 0};
    while (async_runtime_wait(rt, ev, 16, &zero) > 0) {
    }
}

/* DROP_OLDEST, chosen explicitly, keeps the newest lines. */
static void test_drop_oldest(async_runtime_t *rt) {
    pipe_lines(10, 0, 0);
    async_queue_t *q = async_queue_create(2, CONSOLE_MAX_LINE, ASYNC_QUEUE_DROP_OLDEST);
    console_worker_context_t *ctx = console_worker_init(rt, q, KEY);
    CHECK(ctx != NULL);
    io_event_t ev[16];
    while (!console_worker_take_eof(ctx)) {
        struct timeval tv = {10, 0};
        CHECK(async_runtime_wait(rt, ev, 16, &tv) > 0);
    }
    uniloop_queue_stats_t st;
    CHECK(uniloop_queue_stats(q, &st));
    CHECK(st.dropped == 8 && st.len == 2);
    char buf[64];
    size_t size;
    CHECK(async_queue_dequeue(q, buf, sizeof buf, &size) && strcmp(buf, "line 8\n") == 0);
    CHECK(console_worker_shutdown(ctx, 10000));
    console_worker_destroy(ctx);
    async_queue_destroy(q);
    struct timeval zero = {0, 0};
    while (async_runtime_wait(rt, ev, 16, &zero) > 0) {
    }
}

int main(void) {
    async_runtime_t *rt = async_runtime_init();
    CHECK(rt != NULL);
    test_nothing_lost(rt);
    test_shutdown_releases(rt, 0);
    test_shutdown_releases(rt, ASYNC_QUEUE_BLOCK_WRITER);
    test_drop_oldest(rt);
    async_runtime_deinit(rt);
    puts("console_backpressure: ok");
    return 0;
}
