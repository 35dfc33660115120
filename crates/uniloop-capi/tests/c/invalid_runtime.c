/* uniloop-test: posix-only: socketpair and POSIX fds; the NULL/stale-handle half runs in runtime_portable.c */
/* NULL and invalid arguments to every async_runtime_* / uniloop_runtime_* /
 * uniloop_timer_* function: each returns its failure value with a last
 * error, never crashes; a handle that was deinitialised, or never was one,
 * is refused. (Console functions: tests/c/console.c.) */
#include "rt_check.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void all_refuse(async_runtime_t *rt, int code) {
    io_event_t ev[4];
    struct timeval zero = {0, 0};
    uniloop_runtime_stats_t st;
    char buf[8];
    async_runtime_deinit(rt);
    CHECK(uniloop_last_error() == code);
    CHECK_ERR(async_runtime_add(rt, 0, EVENT_READ, NULL) == -1, code);
    CHECK_ERR(async_runtime_modify(rt, 0, EVENT_READ, NULL) == -1, code);
    CHECK_ERR(async_runtime_remove(rt, 0) == -1, code);
    CHECK_ERR(async_runtime_wakeup(rt) == -1, code);
    CHECK_ERR(async_runtime_wait(rt, ev, 4, &zero) == -1, code);
    CHECK_ERR(async_runtime_post_completion(rt, 1, 1) == -1, code);
    CHECK_ERR(async_runtime_post_read(rt, 0, NULL, 0) == -1, code);
    CHECK_ERR(async_runtime_post_write(rt, 0, buf, 1) == -1, code);
    CHECK_ERR(async_runtime_add_console(rt, NULL) == -1, code);
    CHECK_ERR(async_runtime_get_console_type(rt) == CONSOLE_TYPE_NONE, code);
    CHECK_ERR(async_runtime_get_event_loop_handle(rt) == -1, code);
    CHECK_ERR(uniloop_runtime_backend(rt) == NULL, code);
    CHECK_ERR(uniloop_timer_add(rt, 1, 1, 0) == 0, code);
    CHECK_ERR(uniloop_timer_cancel(rt, 1) == -1, code);
    CHECK_ERR(uniloop_timer_reset(rt, 1, 1) == -1, code);
    CHECK_ERR(uniloop_runtime_get_stats(rt, &st) == -1, code);
    CHECK_ERR(console_worker_init(rt, (async_queue_t *)buf, 1) == NULL,
              rt ? UNILOOP_ERR_CLOSED : UNILOOP_ERR_INVALID);
}

int main(void) {
    /* NULL handle */
    all_refuse(NULL, UNILOOP_ERR_INVALID);

    /* a pointer that never was a runtime */
    long not_a_runtime[16] = {0};
    all_refuse((async_runtime_t *)not_a_runtime, UNILOOP_ERR_CLOSED);

    /* a deinitialised runtime */
    async_runtime_t *gone = async_runtime_init();
    CHECK(gone != NULL);
    async_runtime_deinit(gone);
    CHECK(uniloop_last_error() == UNILOOP_OK);
    all_refuse(gone, UNILOOP_ERR_CLOSED);

    /* bad arguments on a live runtime */
    async_runtime_t *rt = async_runtime_init();
    CHECK(rt != NULL);
    io_event_t ev[4];
    struct timeval zero = {0, 0};
    char buf[8];
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

    CHECK_ERR(async_runtime_add(rt, -1, EVENT_READ, NULL) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_add(rt, 100000, EVENT_READ, NULL) == -1, UNILOOP_ERR_OS);
    CHECK_ERR(async_runtime_modify(rt, -1, EVENT_READ, NULL) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_modify(rt, sv[0], EVENT_READ, NULL) == -1, UNILOOP_ERR_NOT_FOUND);
    CHECK_ERR(async_runtime_remove(rt, -1) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_remove(rt, sv[0]) == -1, UNILOOP_ERR_NOT_FOUND);
    CHECK_ERR(async_runtime_wait(rt, NULL, 4, &zero) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_wait(rt, ev, 0, &zero) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_wait(rt, ev, -5, &zero) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_post_read(rt, -1, NULL, 0) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_post_read(rt, sv[0], NULL, 0) == -1, UNILOOP_ERR_NOT_FOUND);
    CHECK_ERR(async_runtime_post_write(rt, sv[0], buf, 1) == -1, UNILOOP_ERR_NOT_FOUND);
    CHECK(async_runtime_add(rt, sv[0], EVENT_READ, NULL) == 0);
    CHECK(uniloop_last_error() == UNILOOP_OK);
    /* 0 events: paused, still registered (runtime_semantics.c) */
    CHECK(async_runtime_modify(rt, sv[0], 0, NULL) == 0);
    CHECK(async_runtime_modify(rt, sv[0], EVENT_READ, NULL) == 0);
    CHECK_ERR(async_runtime_post_read(rt, sv[0], buf, 0) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_post_write(rt, sv[0], NULL, 3) == -1, UNILOOP_ERR_INVALID);
    /* sv[0] is blocking: readiness yes, posted I/O no */
    CHECK_ERR(async_runtime_post_read(rt, sv[0], NULL, 0) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_post_write(rt, sv[0], buf, 1) == -1, UNILOOP_ERR_INVALID);
    CHECK(async_runtime_wait(rt, ev, 4, &zero) == 0);
    CHECK(async_runtime_get_event_loop_handle(rt) >= 0); /* epoll: runtime_semantics.c */
    CHECK_ERR(uniloop_timer_cancel(rt, 0) == -1, UNILOOP_ERR_NOT_FOUND);
    CHECK_ERR(uniloop_timer_cancel(rt, 12345) == -1, UNILOOP_ERR_NOT_FOUND);
    CHECK_ERR(uniloop_timer_reset(rt, 0, 5) == -1, UNILOOP_ERR_NOT_FOUND);
    CHECK_ERR(uniloop_runtime_get_stats(rt, NULL) == -1, UNILOOP_ERR_INVALID);
    CHECK(async_runtime_remove(rt, sv[0]) == 0);
    /* an fd closed before its removal: an OS error, and it is forgotten */
    CHECK(async_runtime_add(rt, sv[1], EVENT_READ, NULL) == 0);
    close(sv[1]);
    async_runtime_remove(rt, sv[1]);
    CHECK_ERR(async_runtime_remove(rt, sv[1]) == -1, UNILOOP_ERR_NOT_FOUND);
    close(sv[0]);

    CHECK_ERR(uniloop_runtime_init_backend("nope") == NULL, UNILOOP_ERR_INVALID);
#if defined(__linux__)
    CHECK_ERR(uniloop_runtime_init_backend("kqueue") == NULL, UNILOOP_ERR_UNSUPPORTED);
    CHECK_ERR(uniloop_runtime_init_backend("iocp") == NULL, UNILOOP_ERR_UNSUPPORTED);
#endif
    async_runtime_t *dflt = uniloop_runtime_init_backend(NULL);
    CHECK(dflt != NULL && uniloop_runtime_backend(dflt) != NULL);
    async_runtime_deinit(dflt);
    CHECK(strlen(uniloop_last_error_message()) == 0);

    async_runtime_deinit(rt);
    async_runtime_deinit(rt); /* twice: refused, harmless */
    CHECK(uniloop_last_error() == UNILOOP_ERR_CLOSED);
    CHECK(strlen(uniloop_last_error_message()) > 0);
    puts("invalid_runtime: ok");
    return 0;
}
