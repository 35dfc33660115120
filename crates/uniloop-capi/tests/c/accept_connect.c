/* uniloop_runtime_post_accept / _post_connect over loopback TCP, on every
 * backend (POSIX: epoll or kqueue, poll, io_uring natively; Windows: IOCP
 * under Wine): a server and its clients on completions alone (no
 * readiness interest anywhere), a refused connect, an accept cancelled by
 * removing its listener, one pending at deinit, and bad input. */
#include "rt_check.h"

#include <errno.h>
#include <string.h>

#include "sock_compat.h"

#ifdef _WIN32
#define REFUSED WSAECONNREFUSED
#else
#define REFUSED ECONNREFUSED
#endif

#define CLIENTS 4

static io_event_t ev[64];

static sock_t tcp_socket(void) {
    sock_t s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s != INVALID_SOCKET_FD);
    return s;
}

/* A socket bound to 127.0.0.1 on a free port; listening if `backlog` > 0. */
static sock_t bound(int backlog, struct sockaddr_in *addr) {
    sock_t s = tcp_socket();
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(s, (struct sockaddr *)addr, sizeof *addr) == 0);
    socklen_t len = sizeof *addr;
    CHECK(getsockname(s, (struct sockaddr *)addr, &len) == 0);
    if (backlog > 0) CHECK(listen(s, backlog) == 0);
    return s;
}

static unsigned short local_port(sock_t s) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0);
    return ntohs(a.sin_port);
}

static unsigned short peer_port(sock_t s) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    CHECK(getpeername(s, (struct sockaddr *)&a, &len) == 0);
    return ntohs(a.sin_port);
}

/* Waits (10 s per round, a guard) until an event for `fd` comes. */
static io_event_t wait_for(async_runtime_t *rt, sock_t fd) {
    for (int round = 0; round < 100; round++) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 1, &tv);
        CHECK(n >= 0);
        if (n == 1 && ev[0].fd == fd) return ev[0];
        CHECK(n == 0);
    }
    CHECK(!"no event for the socket");
    return ev[0];
}

/* A few polls with nothing from them. */
static void quiet(async_runtime_t *rt) {
    for (int i = 0; i < 5; i++) {
        struct timeval tv = {0, 20000};
        int n = async_runtime_wait(rt, ev, 64, &tv);
        if (n != 0)
            fprintf(stderr, "unexpected: fd %d type %#x key %lu bytes %lu\n", (int)ev[0].fd,
                    (unsigned)ev[0].event_type, (unsigned long)ev[0].completion_key,
                    (unsigned long)ev[0].bytes_transferred);
        CHECK(n == 0);
    }
}

struct conn {
    sock_t fd;
    int connected; /* a client: its connect event came */
    int got;       /* a server side: its read event came */
};

/* CLIENTS clients connect with posted connects to a listener taking them
 * with posted accepts; every socket is added with no readiness interest.
 * Each client then posts a write, which the accepted side's posted read
 * gets. Nothing but posted-operation events comes. */
static void serve_on_completions(async_runtime_t *rt) {
    struct sockaddr_in addr;
    sock_t l = bound(16, &addr);
    set_nonblocking(l);
    int lctx = 0;
    CHECK(async_runtime_add(rt, l, 0, &lctx) == 0);
    CHECK(uniloop_runtime_post_accept(rt, l) == 0);
    CHECK_ERR(uniloop_runtime_post_accept(rt, l) == -1, UNILOOP_ERR_EXISTS);

    struct conn clients[CLIENTS], served[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i].fd = tcp_socket();
        clients[i].connected = 0;
        set_nonblocking(clients[i].fd);
        CHECK(async_runtime_add(rt, clients[i].fd, 0, &clients[i]) == 0);
        CHECK(uniloop_runtime_post_connect(rt, clients[i].fd, (const struct sockaddr *)&addr,
                                           sizeof addr) == 0);
    }
    int accepted = 0, connected = 0, written = 0, read = 0;
    for (int round = 0; round < 1000 && (read < CLIENTS || written < CLIENTS); round++) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 64, &tv);
        CHECK(n > 0);
        for (int i = 0; i < n; i++) {
            io_event_t e = ev[i];
            CHECK((e.event_type & UNILOOP_EVENT_KIND_MASK) == UNILOOP_EVENT_POSTED);
            CHECK(!(e.event_type & EVENT_ERROR));
            if (e.event_type & UNILOOP_EVENT_ACCEPT) {
                CHECK(e.fd == l && e.context == &lctx);
                CHECK(e.event_type == (EVENT_READ | UNILOOP_EVENT_ACCEPT | UNILOOP_EVENT_POSTED));
                CHECK(e.completion_key == 0 && e.buffer == NULL);
                sock_t c = (sock_t)e.bytes_transferred;
                CHECK(c != INVALID_SOCKET_FD && c != l);
                CHECK(accepted < CLIENTS);
                struct conn *s = &served[accepted++];
                s->fd = c;
                s->got = 0;
                CHECK(async_runtime_add(rt, c, 0, s) == 0);
                /* non-blocking as handed over: the post checks O_NONBLOCK */
                CHECK(async_runtime_post_read(rt, c, NULL, 0) == 0);
                if (accepted < CLIENTS) CHECK(uniloop_runtime_post_accept(rt, l) == 0);
            } else if (e.event_type & UNILOOP_EVENT_CONNECT) {
                struct conn *c = e.context;
                CHECK(c >= clients && c < clients + CLIENTS && e.fd == c->fd && !c->connected);
                CHECK(e.event_type == (EVENT_WRITE | UNILOOP_EVENT_CONNECT | UNILOOP_EVENT_POSTED));
                CHECK(e.completion_key == 0 && e.bytes_transferred == 0);
                c->connected = 1;
                connected++;
                CHECK(async_runtime_post_write(rt, c->fd, "hello", 5) == 0);
            } else if (e.event_type & EVENT_WRITE) {
                CHECK(e.bytes_transferred == 5);
                written++;
            } else {
                struct conn *s = e.context;
                CHECK(s >= served && s < served + accepted && e.fd == s->fd && !s->got);
                CHECK(e.event_type == (EVENT_READ | UNILOOP_EVENT_POSTED));
                CHECK(e.bytes_transferred == 5 && memcmp(e.buffer, "hello", 5) == 0);
                s->got = 1;
                read++;
            }
        }
    }
    CHECK(accepted == CLIENTS && connected == CLIENTS && written == CLIENTS && read == CLIENTS);
    /* Each accepted connection is one client's. */
    for (int i = 0; i < CLIENTS; i++) {
        int found = 0;
        for (int j = 0; j < CLIENTS; j++)
            if (peer_port(served[i].fd) == local_port(clients[j].fd)) found++;
        CHECK(found == 1);
    }
    for (int i = 0; i < CLIENTS; i++) {
        CHECK(async_runtime_remove(rt, clients[i].fd) == 0);
        CHECK(async_runtime_remove(rt, served[i].fd) == 0);
        closesock(clients[i].fd);
        closesock(served[i].fd);
    }
    CHECK(async_runtime_remove(rt, l) == 0);
    closesock(l);
}

/* A connect to a port bound but not listening fails with ECONNREFUSED. */
static void connect_refused(async_runtime_t *rt) {
    struct sockaddr_in addr;
    sock_t closed = bound(0, &addr);
    sock_t s = tcp_socket();
    set_nonblocking(s);
    CHECK(async_runtime_add(rt, s, 0, NULL) == 0);
    CHECK(uniloop_runtime_post_connect(rt, s, (const struct sockaddr *)&addr, sizeof addr) == 0);
    io_event_t e = wait_for(rt, s);
    CHECK(e.event_type == (EVENT_ERROR | UNILOOP_EVENT_CONNECT | UNILOOP_EVENT_POSTED));
    CHECK(e.completion_key == (uintptr_t)REFUSED);
    CHECK(e.bytes_transferred == 0);
    CHECK(async_runtime_remove(rt, s) == 0);
    closesock(s);
    closesock(closed);
}

/* Removing a listener cancels its pending accept: no event; added again,
 * a new accept takes the connection made meanwhile. Removed with an
 * accept pending and closed, nothing comes either. */
static void accept_cancelled(async_runtime_t *rt) {
    struct sockaddr_in addr;
    sock_t l = bound(16, &addr);
    set_nonblocking(l);
    CHECK(async_runtime_add(rt, l, 0, NULL) == 0);
    CHECK(uniloop_runtime_post_accept(rt, l) == 0);
    CHECK(async_runtime_remove(rt, l) == 0);
    quiet(rt);
    /* A blocking connect: the kernel completes it into the backlog. */
    sock_t c = tcp_socket();
    CHECK(connect(c, (struct sockaddr *)&addr, sizeof addr) == 0);
    quiet(rt);
    int ctx = 0;
    CHECK(async_runtime_add(rt, l, 0, &ctx) == 0);
    CHECK(uniloop_runtime_post_accept(rt, l) == 0);
    io_event_t e = wait_for(rt, l);
    CHECK(e.event_type == (EVENT_READ | UNILOOP_EVENT_ACCEPT | UNILOOP_EVENT_POSTED));
    CHECK(e.context == &ctx);
    sock_t a = (sock_t)e.bytes_transferred;
    CHECK(peer_port(a) == local_port(c));
    closesock(a);
    closesock(c);
    /* Pending at removal, then the listener closed: no event. */
    CHECK(uniloop_runtime_post_accept(rt, l) == 0);
    CHECK(async_runtime_remove(rt, l) == 0);
    closesock(l);
    quiet(rt);
}

/* Bad input: clear errors, and the runtime goes on. */
static void bad_input(async_runtime_t *rt) {
    struct sockaddr_in addr;
    sock_t l = bound(16, &addr);
    sock_t s = tcp_socket();
    CHECK_ERR(uniloop_runtime_post_accept(NULL, l) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(uniloop_runtime_post_accept(rt, INVALID_SOCKET_FD) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(uniloop_runtime_post_accept(rt, l) == -1, UNILOOP_ERR_NOT_FOUND);
    CHECK_ERR(uniloop_runtime_post_connect(rt, INVALID_SOCKET_FD, (const struct sockaddr *)&addr,
                                           sizeof addr) == -1,
              UNILOOP_ERR_INVALID);
    CHECK_ERR(uniloop_runtime_post_connect(rt, s, (const struct sockaddr *)&addr, sizeof addr) == -1,
              UNILOOP_ERR_NOT_FOUND);
#ifndef _WIN32
    /* Blocking sockets: an accept or a connect would block the loop. */
    CHECK(async_runtime_add(rt, l, 0, NULL) == 0);
    CHECK_ERR(uniloop_runtime_post_accept(rt, l) == -1, UNILOOP_ERR_INVALID);
    CHECK(async_runtime_add(rt, s, 0, NULL) == 0);
    CHECK_ERR(uniloop_runtime_post_connect(rt, s, (const struct sockaddr *)&addr, sizeof addr) == -1,
              UNILOOP_ERR_INVALID);
    CHECK(async_runtime_remove(rt, l) == 0);
    CHECK(async_runtime_remove(rt, s) == 0);
#endif
    set_nonblocking(l);
    set_nonblocking(s);
    CHECK(async_runtime_add(rt, l, 0, NULL) == 0);
    CHECK(async_runtime_add(rt, s, 0, NULL) == 0);
    /* Not listening. */
    CHECK_ERR(uniloop_runtime_post_accept(rt, s) == -1, UNILOOP_ERR_INVALID);
    /* Addresses. */
    CHECK_ERR(uniloop_runtime_post_connect(rt, s, NULL, sizeof addr) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(uniloop_runtime_post_connect(rt, s, (const struct sockaddr *)&addr, 1) == -1,
              UNILOOP_ERR_INVALID);
    CHECK_ERR(uniloop_runtime_post_connect(rt, s, (const struct sockaddr *)&addr, 8) == -1,
              UNILOOP_ERR_INVALID);
    CHECK_ERR(uniloop_runtime_post_connect(rt, s, (const struct sockaddr *)&addr, 100000) == -1,
              UNILOOP_ERR_INVALID);
    struct sockaddr_in other = addr;
    other.sin_family = AF_UNSPEC;
    CHECK_ERR(uniloop_runtime_post_connect(rt, s, (const struct sockaddr *)&other, sizeof other) == -1,
              UNILOOP_ERR_INVALID);
    /* All of that refused, both still work. (Before its connect, the
     * unconnected socket may report a hang-up as readiness: EVENT_CLOSE
     * comes whatever the interest.) */
    CHECK(uniloop_runtime_post_accept(rt, l) == 0);
    CHECK(uniloop_runtime_post_connect(rt, s, (const struct sockaddr *)&addr, sizeof addr) == 0);
    int got = 0;
    for (int round = 0; round < 100 && got != 3; round++) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 64, &tv);
        CHECK(n >= 0);
        for (int i = 0; i < n; i++) {
            if (ev[i].event_type & UNILOOP_EVENT_READINESS) continue;
            CHECK(!(ev[i].event_type & EVENT_ERROR));
            if (ev[i].fd == l) {
                CHECK(ev[i].event_type & UNILOOP_EVENT_ACCEPT);
                got |= 1;
                closesock((sock_t)ev[i].bytes_transferred);
            } else {
                CHECK(ev[i].fd == s && (ev[i].event_type & UNILOOP_EVENT_CONNECT));
                got |= 2;
            }
        }
    }
    CHECK(got == 3);
    CHECK(async_runtime_remove(rt, l) == 0);
    CHECK(async_runtime_remove(rt, s) == 0);
    closesock(l);
    closesock(s);
}

/* An accept pending, and one finished but not returned by a wait, at
 * deinit: nothing leaks (valgrind), nothing is reported. */
static void pending_at_deinit(const char *backend) {
    async_runtime_t *rt = uniloop_runtime_init_backend(backend);
    CHECK(rt != NULL);
    struct sockaddr_in addr;
    sock_t l = bound(16, &addr), l2 = bound(16, &addr);
    set_nonblocking(l);
    set_nonblocking(l2);
    sock_t c = tcp_socket();
    CHECK(connect(c, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(async_runtime_add(rt, l, 0, NULL) == 0);
    CHECK(async_runtime_add(rt, l2, 0, NULL) == 0);
    CHECK(uniloop_runtime_post_accept(rt, l) == 0);
    CHECK(uniloop_runtime_post_accept(rt, l2) == 0);
    async_runtime_deinit(rt);
    closesock(c);
    closesock(l);
    closesock(l2);
}

static void run(const char *backend) {
    async_runtime_t *rt = uniloop_runtime_init_backend(backend);
    CHECK(rt != NULL);
    CHECK(uniloop_runtime_set_event_kinds(rt, true) == 0);
    serve_on_completions(rt);
    connect_refused(rt);
    accept_cancelled(rt);
    bad_input(rt);
    uniloop_runtime_stats_t st;
    CHECK(uniloop_runtime_get_stats(rt, &st) == 0);
    CHECK(st.registered == 0 && st.pending_ops == 0);
    async_runtime_deinit(rt);
    pending_at_deinit(backend);
    printf("accept and connect (%s): ok\n", backend ? backend : "default");
}

int main(void) {
#ifdef _WIN32
    WSADATA wsa;
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
    run(NULL);
    WSACleanup();
#else
    run(NULL);
    run("poll");
#ifdef __linux__
    /* io_uring natively only (see runtime.c) */
    const char *under = getenv("UNILOOP_C_TEST_UNDER");
    if (under == NULL || strcmp(under, "native") == 0) run("uring");
#endif
#endif
    puts("accept_connect: ok");
    return 0;
}
