/* The reference's semantics that uniloop used to refuse, on every backend
 * (POSIX: epoll, poll, io_uring natively; Windows: IOCP under Wine):
 * add/modify with 0 events; the event loop's handle (POSIX: a descriptor
 * readable when a wait would return something; Windows: the port). */
#include "rt_check.h"

#include <string.h>

#include "sock_compat.h"

#ifdef _WIN32
#else
#include <poll.h>
#endif

static io_event_t ev[64];

static int polled_has(async_runtime_t *rt, sock_t fd, io_event_t *out) {
    struct timeval zero = {0, 0};
    int n = async_runtime_wait(rt, ev, 64, &zero);
    CHECK(n >= 0);
    for (int i = 0; i < n; i++)
        if (ev[i].fd == fd) {
            if (out) *out = ev[i];
            return 1;
        }
    return 0;
}

static io_event_t wait_for(async_runtime_t *rt, sock_t fd) {
    for (int round = 0; round < 1000; round++) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 64, &tv);
        CHECK(n >= 0);
        for (int i = 0; i < n; i++)
            if (ev[i].fd == fd) return ev[i];
    }
    CHECK(!"no event for the socket");
    return ev[0];
}

/* A few polls: readiness of a socket with data would show in any of them. */
static int quiet(async_runtime_t *rt, sock_t fd) {
    for (int i = 0; i < 5; i++)
        if (polled_has(rt, fd, NULL)) return 0;
    return 1;
}

static void pair(sock_t *server, sock_t *client) {
    sock_t l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t al = sizeof a;
    CHECK(getsockname(l, (struct sockaddr *)&a, &al) == 0);
    CHECK(listen(l, 1) == 0);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(*client, (struct sockaddr *)&a, sizeof a) == 0);
    *server = accept(l, NULL, NULL);
    CHECK(*server != INVALID_SOCKET_FD);
    closesock(l);
    set_nonblocking(*server);
}

/* add/modify with 0 events: registered, no readiness, posted I/O works,
 * modify to EVENT_READ resumes readiness. */
static void test_zero_events(const char *backend) {
    async_runtime_t *rt = uniloop_runtime_init_backend(backend);
    CHECK(rt != NULL);
    int ctx;
    sock_t s, c;
    pair(&s, &c);
    CHECK(async_runtime_add(rt, s, 0, &ctx) == 0);
    CHECK_ERR(async_runtime_add(rt, s, 0, &ctx) == -1, UNILOOP_ERR_EXISTS);
    CHECK(send(c, "data", 4, 0) == 4);
    CHECK(quiet(rt, s)); /* readable, but no interest: nothing */

    /* posted read and write on a registration with no interest */
    CHECK(async_runtime_post_read(rt, s, NULL, 0) == 0);
    io_event_t e = wait_for(rt, s);
    CHECK(e.event_type == EVENT_READ && e.bytes_transferred == 4 && e.context == &ctx);
    CHECK(memcmp(e.buffer, "data", 4) == 0);
    CHECK(async_runtime_post_write(rt, s, "out", 3) == 0);
    e = wait_for(rt, s);
    CHECK(e.event_type == EVENT_WRITE && e.bytes_transferred == 3);
    char buf[8];
    int got = 0;
    while (got < 3) {
        int n = (int)recv(c, buf + got, 3 - got, 0);
        CHECK(n > 0);
        got += n;
    }
    CHECK(memcmp(buf, "out", 3) == 0);
    CHECK(quiet(rt, s)); /* writable, but no interest: nothing */

    /* modify to READ resumes; modify to 0 pauses again with data waiting */
    CHECK(send(c, "more", 4, 0) == 4);
    CHECK(async_runtime_modify(rt, s, EVENT_READ, &ctx) == 0);
    e = wait_for(rt, s);
    CHECK(e.event_type == EVENT_READ && e.bytes_transferred == 0 && e.buffer == NULL);
    CHECK(async_runtime_modify(rt, s, 0, &ctx) == 0);
    CHECK(quiet(rt, s));
    CHECK(async_runtime_modify(rt, s, EVENT_READ | EVENT_WRITE, &ctx) == 0);
    e = wait_for(rt, s);
    CHECK(e.event_type == (EVENT_READ | EVENT_WRITE));
    CHECK(recv(s, buf, sizeof buf, 0) == 4 && memcmp(buf, "more", 4) == 0);
    CHECK(async_runtime_remove(rt, s) == 0);
    closesock(s);
    closesock(c);
    async_runtime_deinit(rt);
    printf("zero events (%s): ok\n", backend ? backend : "default");
}

#ifndef _WIN32
/* Whether the loop's descriptor is readable within `ms` milliseconds. */
static int readable(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, ms);
    CHECK(n >= 0);
    return n == 1 && (p.revents & POLLIN);
}

static int drain(async_runtime_t *rt) {
    struct timeval zero = {0, 0};
    int total = 0, n;
    while ((n = async_runtime_wait(rt, ev, 64, &zero)) > 0) total += n;
    CHECK(n == 0);
    return total;
}

static void test_loop_handle(const char *backend) {
    async_runtime_t *rt = uniloop_runtime_init_backend(backend);
    CHECK(rt != NULL);
    int h = async_runtime_get_event_loop_handle(rt);
    if (strcmp(backend, "poll") == 0) {
        CHECK_ERR(h == -1, UNILOOP_ERR_UNSUPPORTED);
        async_runtime_deinit(rt);
        printf("loop handle (poll): unsupported, as documented\n");
        return;
    }
    CHECK(h >= 0);
    CHECK(!readable(h, 0));
    CHECK(uniloop_runtime_backend_timeout(rt) == -1);

    /* a completion makes it readable; the wait that takes it re-arms it */
    CHECK(async_runtime_post_completion(rt, 5, 6) == 0);
    CHECK(readable(h, 10000));
    CHECK(uniloop_runtime_backend_timeout(rt) == 0);
    CHECK(drain(rt) == 1 && ev[0].completion_key == 5);
    CHECK(!readable(h, 0));

    /* readiness of a registered socket */
    sock_t s, c;
    pair(&s, &c);
    CHECK(async_runtime_add(rt, s, EVENT_READ, NULL) == 0);
    CHECK(!readable(h, 0));
    CHECK(send(c, "x", 1, 0) == 1);
    CHECK(readable(h, 10000));
    io_event_t e = wait_for(rt, s);
    CHECK(e.event_type == EVENT_READ);
    char b;
    CHECK(recv(s, &b, 1, 0) == 1);
    drain(rt);
    CHECK(!readable(h, 0));

    /* a posted write that finishes at once; a posted read that finishes later */
    CHECK(async_runtime_modify(rt, s, 0, NULL) == 0);
    CHECK(async_runtime_post_write(rt, s, "y", 1) == 0);
    CHECK(readable(h, 10000));
    CHECK(drain(rt) == 1 && ev[0].event_type == EVENT_WRITE);
    CHECK(recv(c, &b, 1, 0) == 1);
    CHECK(async_runtime_post_read(rt, s, NULL, 0) == 0);
    CHECK(!readable(h, 0));
    CHECK(send(c, "z", 1, 0) == 1);
    CHECK(readable(h, 10000));
    e = wait_for(rt, s);
    CHECK(e.event_type == EVENT_READ && e.bytes_transferred == 1);
    drain(rt);
    CHECK(!readable(h, 0));

    /* timers: not on the handle, in the timeout */
    uint64_t id = uniloop_timer_add(rt, 9, 50, 0);
    int ms = uniloop_runtime_backend_timeout(rt);
    /* at most the delay (the wheel rounds deadlines up to 1 ms); 0 if it
     * already passed (a slow run, under valgrind) */
    CHECK(ms >= 0 && ms <= 51);
    CHECK(uniloop_timer_cancel(rt, id) == 0);
    drain(rt);
    CHECK(uniloop_runtime_backend_timeout(rt) == -1);

    /* a wakeup from the loop's own thread counts too (no event) */
    CHECK(async_runtime_wakeup(rt) == 0);
    CHECK(readable(h, 10000));
    CHECK(drain(rt) == 0);
    CHECK(!readable(h, 0));

    CHECK(async_runtime_remove(rt, s) == 0);
    closesock(s);
    closesock(c);
    async_runtime_deinit(rt);
    printf("loop handle (%s): ok\n", backend);
}
#endif

int main(void) {
#ifdef _WIN32
    WSADATA wsa;
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
    test_zero_events(NULL);
    {
        async_runtime_t *rt = async_runtime_init();
        CHECK(rt != NULL);
        CHECK(async_runtime_get_iocp(rt) != NULL);
        async_runtime_deinit(rt);
        CHECK_ERR(async_runtime_get_iocp(rt) == NULL, UNILOOP_ERR_CLOSED);
    }
    WSACleanup();
#else
    /* io_uring natively only (see runtime.c) */
    const char *under = getenv("UNILOOP_C_TEST_UNDER");
    int with_uring = under == NULL || strcmp(under, "native") == 0;
    test_zero_events("epoll");
    test_zero_events("poll");
    if (with_uring) test_zero_events("uring");
    test_loop_handle("epoll");
    test_loop_handle("poll");
    if (with_uring) test_loop_handle("uring");
#endif
    puts("runtime_semantics: ok");
    return 0;
}
