/* The runtime on loopback TCP, written once for POSIX and Windows (winsock,
 * Win32 threads; run under Wine by scripts/test-windows.sh): a listener's
 * readiness (Windows too: no accept thread), a connection's readiness,
 * posted reads (NULL/0 internal buffer) and writes, modify, remove;
 * completions from two threads with full-width keys, FIFO; a wakeup from
 * a thread gives no event; a timer; NULL and deinitialised handles. */
#include "rt_check.h"

#include <stdatomic.h>
#include <string.h>

#include "sock_compat.h"

#ifdef _WIN32
typedef HANDLE thread_t;
static void set_blocking(sock_t s) {
    u_long zero = 0;
    CHECK(ioctlsocket(s, FIONBIO, &zero) == 0);
}
struct tramp { void *(*fn)(void *); void *arg; };
static DWORD WINAPI run_tramp(LPVOID p) {
    struct tramp t = *(struct tramp *)p;
    free(p);
    t.fn(t.arg);
    return 0;
}
static thread_t thread_start(void *(*fn)(void *), void *arg) {
    struct tramp *t = malloc(sizeof *t);
    t->fn = fn;
    t->arg = arg;
    HANDLE h = CreateThread(NULL, 0, run_tramp, t, 0, NULL);
    CHECK(h != NULL);
    return h;
}
static void thread_join(thread_t t) {
    CHECK(WaitForSingleObject(t, INFINITE) == WAIT_OBJECT_0);
    CloseHandle(t);
}
#else
#include <pthread.h>
typedef pthread_t thread_t;
static void set_blocking(sock_t s) { CHECK(fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK) == 0); }
static thread_t thread_start(void *(*fn)(void *), void *arg) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, arg) == 0);
    return t;
}
static void thread_join(thread_t t) { CHECK(pthread_join(t, NULL) == 0); }
#endif

static io_event_t ev[64];

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

static int polled_has(async_runtime_t *rt, sock_t fd) {
    struct timeval zero = {0, 0};
    int n = async_runtime_wait(rt, ev, 64, &zero);
    CHECK(n >= 0);
    for (int i = 0; i < n; i++)
        if (ev[i].fd == fd) return 1;
    return 0;
}

static void recv_exact(sock_t s, char *buf, int len) {
    int got = 0;
    while (got < len) {
        int n = (int)recv(s, buf + got, len - got, 0);
        CHECK(n > 0);
        got += n;
    }
}

static void test_tcp(void) {
    async_runtime_t *rt = async_runtime_init();
    CHECK(rt != NULL);
    int lctx, cctx;
    sock_t l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t al = sizeof a;
    CHECK(getsockname(l, (struct sockaddr *)&a, &al) == 0);
    CHECK(listen(l, 16) == 0);
    set_nonblocking(l);
    CHECK(async_runtime_add(rt, l, EVENT_READ, &lctx) == 0);
    CHECK(!polled_has(rt, l));

    sock_t c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    io_event_t e = wait_for(rt, l);
    CHECK(e.context == &lctx && (e.event_type & EVENT_READ) && e.buffer == NULL);
    sock_t s = accept(l, NULL, NULL);
    CHECK(s != INVALID_SOCKET_FD);
    set_nonblocking(s);
    CHECK(async_runtime_add(rt, s, EVENT_READ, &cctx) == 0);

    CHECK(send(c, "ping", 4, 0) == 4);
    e = wait_for(rt, s);
    CHECK(e.context == &cctx && e.event_type == EVENT_READ && e.buffer == NULL);
    CHECK(e.bytes_transferred == 0 && e.completion_key == 0);
    char buf[16];
    CHECK(recv(s, buf, sizeof buf, 0) == 4 && memcmp(buf, "ping", 4) == 0);

    /* posted read into the runtime's buffer, as Neolith calls it */
    CHECK(async_runtime_post_read(rt, s, NULL, 0) == 0);
    CHECK(send(c, "pong", 4, 0) == 4);
    e = wait_for(rt, s);
    CHECK(e.event_type == EVENT_READ && e.bytes_transferred == 4 && e.buffer != NULL);
    CHECK(memcmp(e.buffer, "pong", 4) == 0 && e.context == &cctx);

    /* posted write: complete when all is out */
    char out[] = "hello";
    CHECK(async_runtime_post_write(rt, s, out, 5) == 0);
    e = wait_for(rt, s);
    CHECK(e.event_type == EVENT_WRITE && e.bytes_transferred == 5 && e.buffer == out);
    recv_exact(c, buf, 5);
    CHECK(memcmp(buf, "hello", 5) == 0);

    /* modify: writable */
    CHECK(async_runtime_modify(rt, s, EVENT_READ | EVENT_WRITE, &lctx) == 0);
    e = wait_for(rt, s);
    CHECK((e.event_type & EVENT_WRITE) && e.context == &lctx);

    /* remove: a posted read is cancelled, nothing more for the socket */
    CHECK(async_runtime_modify(rt, s, EVENT_READ, &cctx) == 0);
    CHECK(async_runtime_post_read(rt, s, NULL, 0) == 0);
    CHECK(async_runtime_remove(rt, s) == 0);
    CHECK(send(c, "late", 4, 0) == 4);
    CHECK(!polled_has(rt, s));
    CHECK_ERR(async_runtime_remove(rt, s) == -1, UNILOOP_ERR_NOT_FOUND);

    /* peer close ends a posted read with EVENT_CLOSE */
    set_blocking(s);
    recv_exact(s, buf, 4);
    set_nonblocking(s);
    CHECK(async_runtime_add(rt, s, EVENT_READ, &cctx) == 0);
    CHECK(async_runtime_post_read(rt, s, NULL, 0) == 0);
    closesock(c);
    e = wait_for(rt, s);
    CHECK(e.event_type == EVENT_CLOSE && e.bytes_transferred == 0);
    CHECK(async_runtime_remove(rt, s) == 0);
    CHECK(async_runtime_remove(rt, l) == 0);
    closesock(s);
    closesock(l);
    async_runtime_deinit(rt);
}

#define POSTS 5000
struct poster { async_runtime_t *rt; uintptr_t t; };
static void *post_many(void *arg) {
    struct poster *p = arg;
    for (uintptr_t i = 0; i < POSTS; i++) {
        uint64_t key = ((uint64_t)7 << 36) | p->t;
        CHECK(async_runtime_post_completion(p->rt, (uintptr_t)key, i) == 0);
    }
    return NULL;
}

static atomic_int stop;
static void *wake_until_stopped(void *rt) {
    while (!atomic_load(&stop)) CHECK(async_runtime_wakeup(rt) == 0);
    return NULL;
}

static void test_threads(void) {
    async_runtime_t *rt = async_runtime_init();
    CHECK(rt != NULL);
    struct poster ps[2] = {{rt, 0}, {rt, 1}};
    thread_t th[2] = {thread_start(post_many, &ps[0]), thread_start(post_many, &ps[1])};
    uintptr_t next[2] = {0, 0};
    int got = 0;
    while (got < 2 * POSTS) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 5, &tv);
        CHECK(n > 0 && n <= 5);
        for (int i = 0; i < n; i++) {
            uint64_t key = (uint64_t)ev[i].completion_key;
            CHECK(sizeof(uintptr_t) < 8 || (key >> 36) == 7);
            uintptr_t t = (uintptr_t)(key & 1);
            CHECK(ev[i].fd == INVALID_SOCKET_FD && ev[i].event_type == EVENT_READ);
            CHECK(ev[i].bytes_transferred == next[t]);
            next[t]++;
            got++;
        }
    }
    thread_join(th[0]);
    thread_join(th[1]);

    atomic_store(&stop, 0);
    thread_t w = thread_start(wake_until_stopped, rt);
    CHECK(async_runtime_wait(rt, ev, 64, NULL) == 0); /* woken, no event */
    atomic_store(&stop, 1);
    thread_join(w);

    uint64_t id = uniloop_timer_add(rt, 99, 5, 0);
    CHECK(id != 0);
    /* (a wakeup the thread made after the wait returned may end one more
     * wait with 0 events) */
    int n;
    while ((n = async_runtime_wait(rt, ev, 64, NULL)) == 0) {
    }
    CHECK(n == 1);
    CHECK(ev[0].completion_key == 99 && (ev[0].event_type & UNILOOP_EVENT_TIMER));
    CHECK(ev[0].bytes_transferred == id);

    /* more than max_events: nothing dropped, order kept */
    for (uintptr_t i = 0; i < 50; i++) CHECK(async_runtime_post_completion(rt, 3, i) == 0);
    uintptr_t next3 = 0;
    while (next3 < 50) {
        struct timeval zero = {0, 0};
        n = async_runtime_wait(rt, ev, 4, &zero);
        CHECK(n > 0 && n <= 4);
        for (int i = 0; i < n; i++) CHECK(ev[i].completion_key == 3 && ev[i].bytes_transferred == next3++);
    }

    /* a periodic timer, then cancelled */
    uint64_t every = uniloop_timer_add(rt, 98, 1, 1);
    for (int fired = 0; fired < 3;) {
        n = async_runtime_wait(rt, ev, 64, NULL);
        for (int i = 0; i < n; i++)
            if (ev[i].completion_key == 98 && ev[i].bytes_transferred == every) fired++;
    }
    CHECK(uniloop_timer_cancel(rt, every) == 0);
    CHECK_ERR(uniloop_timer_cancel(rt, every) == -1, UNILOOP_ERR_NOT_FOUND);

    uniloop_runtime_stats_t st;
    CHECK(uniloop_runtime_get_stats(rt, &st) == 0);
    CHECK(st.completions == 2 * POSTS + 50 && st.timer_events >= 4 && st.posted == 2 * POSTS + 50);
    CHECK(st.timers == 0);
    async_runtime_deinit(rt);

    /* deinitialised and NULL handles */
    CHECK_ERR(async_runtime_post_completion(rt, 1, 1) == -1, UNILOOP_ERR_CLOSED);
    CHECK_ERR(async_runtime_wakeup(rt) == -1, UNILOOP_ERR_CLOSED);
    CHECK_ERR(async_runtime_wait(rt, ev, 64, NULL) == -1, UNILOOP_ERR_CLOSED);
    async_runtime_deinit(rt);
    CHECK(uniloop_last_error() == UNILOOP_ERR_CLOSED);
    CHECK_ERR(async_runtime_post_completion(NULL, 1, 1) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_add(NULL, 0, EVENT_READ, NULL) == -1, UNILOOP_ERR_INVALID);
    CHECK_ERR(async_runtime_wait(NULL, ev, 1, NULL) == -1, UNILOOP_ERR_INVALID);
    CHECK(async_runtime_get_console_type(NULL) == CONSOLE_TYPE_NONE);
}

int main(void) {
#ifdef _WIN32
    WSADATA wsa;
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
#endif
    test_tcp();
    test_threads();
#ifdef _WIN32
    WSACleanup();
#endif
    puts("runtime_portable: ok");
    return 0;
}
