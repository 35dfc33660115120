/* A TCP echo server on libuniloop's reference API, with a worker thread
 * posting completions and a periodic timer, all through one
 * async_runtime_wait.
 *
 *   echo            self-test: serves on 127.0.0.1 (any port), a client
 *                   thread sends 200 lines and checks the echoes, then it
 *                   exits 0 (run by tests/c.rs, natively and under valgrind)
 *   echo PORT       a real server on 0.0.0.0:PORT until Ctrl-C
 *                   (try: nc 127.0.0.1 PORT)
 *
 * Build: scripts/install-c.sh PREFIX, then
 *        cc echo.c $(pkg-config --cflags --libs uniloop) -o echo
 *        (or in-tree: cc -I crates/uniloop-capi/include echo.c
 *         target/release/libuniloop.a -lpthread -ldl -lm -o echo)
 * (Windows, mingw: ... libuniloop.a -lws2_32 -lntdll -luserenv -ldbghelp)
 */
#include <uniloop.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few lines that differ between BSD sockets and winsock. */
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET sock_t;
typedef HANDLE thread_t;
#define closesock closesocket
static void set_nonblocking(sock_t s) {
    u_long one = 1;
    ioctlsocket(s, FIONBIO, &one);
}
static int would_block(void) { return WSAGetLastError() == WSAEWOULDBLOCK; }
struct start { void *(*fn)(void *); void *arg; };
static DWORD WINAPI trampoline(LPVOID p) {
    struct start st = *(struct start *)p;
    free(p);
    st.fn(st.arg);
    return 0;
}
static thread_t thread_start(void *(*fn)(void *), void *arg) {
    struct start *st = malloc(sizeof *st);
    st->fn = fn;
    st->arg = arg;
    return CreateThread(NULL, 0, trampoline, st, 0, NULL);
}
static void thread_join(thread_t t) {
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int sock_t;
typedef pthread_t thread_t;
#define closesock close
static void set_nonblocking(sock_t s) { fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK); }
static int would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }
static thread_t thread_start(void *(*fn)(void *), void *arg) {
    pthread_t t;
    return pthread_create(&t, NULL, fn, arg) == 0 ? t : 0;
}
static void thread_join(thread_t t) { pthread_join(t, NULL); }
#endif

enum {
    WORK_KEY = 1,    /* the worker's completions */
    CLIENT_KEY = 2,  /* the self-test client is done (data: failures) */
    TICK_KEY = 3,    /* the timer */
    LINES = 200,
    WORK_ITEMS = 10,
};

struct conn { sock_t fd; };
static int listener_ctx; /* the listener's context: its address tells it apart */

static void die(const char *what) {
    fprintf(stderr, "echo: %s failed: %s (uniloop: %s)\n", what, strerror(errno),
            uniloop_last_error_message());
    exit(1);
}

/* The "blocking work" a server hands to a thread: here it just reports
 * back WORK_ITEMS results through the loop. */
static void *worker(void *rt) {
    for (uintptr_t i = 0; i < WORK_ITEMS; i++)
        if (async_runtime_post_completion(rt, WORK_KEY, i * i) != 0) die("post_completion");
    return NULL;
}

struct client { async_runtime_t *rt; int port; };
static void *client(void *arg) {
    struct client *c = arg;
    sock_t s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)c->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uintptr_t failures = 0;
    if (s == INVALID_SOCKET_FD || connect(s, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
    for (int i = 0; i < LINES; i++) {
        char line[64], back[64];
        int len = snprintf(line, sizeof line, "line %d of the echo self-test\n", i);
        if (send(s, line, len, 0) != len) die("send");
        int got = 0;
        while (got < len) {
            int n = (int)recv(s, back + got, len - got, 0);
            if (n <= 0) die("recv");
            got += (int)n;
        }
        if (memcmp(line, back, (size_t)len) != 0) failures++;
    }
    closesock(s);
    if (async_runtime_post_completion(c->rt, CLIENT_KEY, failures) != 0) die("post_completion");
    return NULL;
}

int main(int argc, char **argv) {
    int self_test = argc < 2;
#ifdef _WIN32
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) die("WSAStartup");
#else
    signal(SIGPIPE, SIG_IGN);
#endif
    async_runtime_t *rt = async_runtime_init();
    if (!rt) die("async_runtime_init");

    sock_t l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(self_test ? 0 : (uint16_t)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(self_test ? INADDR_LOOPBACK : INADDR_ANY);
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 64) != 0) die("bind/listen");
    getsockname(l, (struct sockaddr *)&a, &al);
    set_nonblocking(l);
    if (async_runtime_add(rt, l, EVENT_READ, &listener_ctx) != 0) die("async_runtime_add");
    printf("echo: %s on port %d (%s backend)\n", self_test ? "self-test" : "serving",
           ntohs(a.sin_port), uniloop_runtime_backend(rt));

    uint64_t tick = uniloop_timer_add(rt, TICK_KEY, 5, 5); /* every 5 ms */
    if (!tick) die("uniloop_timer_add");
    thread_t work_thread = thread_start(worker, rt), client_thread = 0;
    struct client cl = {rt, ntohs(a.sin_port)};
    if (self_test) client_thread = thread_start(client, &cl);

    int work_done = 0, ticks = 0, client_done = 0, conns = 0;
    uintptr_t failures = 0;
    io_event_t ev[64];
    while (!(self_test && client_done && work_done == WORK_ITEMS && ticks >= 3)) {
        int n = async_runtime_wait(rt, ev, 64, NULL);
        if (n < 0) die("async_runtime_wait");
        for (int i = 0; i < n; i++) {
            io_event_t *e = &ev[i];
            if (e->context == &listener_ctx) {
                /* readable listener: accept everything pending */
                sock_t s;
                while ((s = accept(l, NULL, NULL)) != INVALID_SOCKET_FD) {
                    set_nonblocking(s);
                    struct conn *c = malloc(sizeof *c);
                    c->fd = s;
                    if (async_runtime_add(rt, s, EVENT_READ, c) != 0) die("add conn");
                    conns++;
                }
            } else if (e->context != NULL) {
                struct conn *c = e->context;
                if (e->event_type & EVENT_WRITE) continue; /* a posted write is out */
                char buf[4096];
                int got = (int)recv(c->fd, buf, sizeof buf, 0);
                if (got > 0) {
                    /* the runtime copies it and sends all of it */
                    if (async_runtime_post_write(rt, c->fd, buf, (size_t)got) != 0) die("post_write");
                } else if (got == 0 || !would_block()) {
                    async_runtime_remove(rt, c->fd);
                    closesock(c->fd);
                    free(c);
                    conns--;
                }
            } else if (e->completion_key == WORK_KEY) {
                if (e->bytes_transferred != (uintptr_t)work_done * work_done) failures++;
                work_done++;
            } else if (e->completion_key == TICK_KEY && (e->event_type & UNILOOP_EVENT_TIMER)) {
                ticks++;
            } else if (e->completion_key == CLIENT_KEY) {
                failures += e->bytes_transferred;
                client_done = 1;
            }
        }
    }
    thread_join(work_thread);
    if (self_test) thread_join(client_thread);
    /* the client has closed: let the server side see it and free it */
    while (conns > 0) {
        int n = async_runtime_wait(rt, ev, 64, NULL);
        for (int i = 0; i < n; i++) {
            struct conn *c = ev[i].context;
            if (c == NULL || ev[i].context == &listener_ctx || (ev[i].event_type & EVENT_WRITE)) continue;
            char buf[256];
            if (recv(c->fd, buf, sizeof buf, 0) <= 0) {
                async_runtime_remove(rt, c->fd);
                closesock(c->fd);
                free(c);
                conns--;
            }
        }
    }
    uniloop_runtime_stats_t st;
    uniloop_runtime_get_stats(rt, &st);
    uniloop_timer_cancel(rt, tick);
    async_runtime_remove(rt, l);
    closesock(l);
    async_runtime_deinit(rt);
#ifdef _WIN32
    WSACleanup();
#endif
    printf("echo: %d lines echoed, %d work results, %d ticks, %llu events in %llu waits, %lu failures\n",
           LINES, work_done, ticks, (unsigned long long)st.events, (unsigned long long)st.waits,
           (unsigned long)failures);
    return failures == 0 ? 0 : 1;
}
