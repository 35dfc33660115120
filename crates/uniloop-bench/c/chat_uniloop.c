/* A chat server on libuniloop, written the natural way: every line a
 * client sends goes to every other client with one async_runtime_post_write
 * per recipient; reads are done on readiness, one recv per event.
 *
 *   chat_uniloop CLIENTS   serves on 127.0.0.1 (any port), prints "port N",
 *                          and exits 0 once CLIENTS clients have connected
 *                          and all of them have gone.
 *
 * The same server on libuv is chat_libuv.c; uniloop-bench's "chat" case
 * runs both under the same load, and its tests/chat.rs checks every line.
 *
 * Build: cargo build --release -p uniloop-capi
 *        cc -O2 -I crates/uniloop-capi/include chat_uniloop.c \
 *           target/release/libuniloop.a -lpthread -ldl -lm -o chat_uniloop
 */
#include <uniloop.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MAX_CLIENTS = 4096, LINE_MAX_LEN = 4096 };

struct client {
    int fd;
    int open;
    size_t have;
    char in[LINE_MAX_LEN];
};

static struct client *clients[MAX_CLIENTS];
static int nclients, nopen;
static async_runtime_t *rt;
static int listener_ctx; /* the listener's context: its address tells it apart */

static void die(const char *what) {
    fprintf(stderr, "chat_uniloop: %s failed: %s (uniloop: %s)\n", what, strerror(errno),
            uniloop_last_error_message());
    exit(1);
}

static void drop_client(struct client *c) {
    if (!c->open) return;
    async_runtime_remove(rt, c->fd);
    close(c->fd);
    c->open = 0;
    nopen--;
}

static void broadcast(struct client *from, const char *line, size_t len) {
    for (int i = 0; i < nclients; i++) {
        struct client *to = clients[i];
        if (to == from || !to->open) continue;
        if (async_runtime_post_write(rt, to->fd, (void *)line, len) != 0) die("async_runtime_post_write");
    }
}

static void on_readable(struct client *c) {
    ssize_t n = recv(c->fd, c->in + c->have, sizeof c->in - c->have, 0);
    if (n == 0) {
        drop_client(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        drop_client(c);
        return;
    }
    c->have += (size_t)n;
    char *start = c->in, *end = c->in + c->have, *nl;
    while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
        broadcast(c, start, (size_t)(nl + 1 - start));
        start = nl + 1;
    }
    c->have = (size_t)(end - start);
    if (c->have == sizeof c->in) {
        fprintf(stderr, "chat_uniloop: a line longer than %d bytes\n", LINE_MAX_LEN);
        exit(1);
    }
    memmove(c->in, start, c->have);
}

static void on_accept(int l) {
    for (;;) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            die("accept");
        }
        if (nclients == MAX_CLIENTS) {
            fprintf(stderr, "chat_uniloop: too many clients\n");
            exit(1);
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        struct client *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd = fd;
        c->open = 1;
        clients[nclients++] = c;
        nopen++;
        if (async_runtime_add(rt, fd, EVENT_READ, c) != 0) die("async_runtime_add");
    }
}

int main(int argc, char **argv) {
    int hold = argc == 3 && strcmp(argv[2], "hold") == 0;
    if ((argc != 2 && !hold) || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: chat_uniloop CLIENTS [hold]\n");
        return 2;
    }
    int expected = atoi(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    rt = async_runtime_init();
    if (!rt) die("async_runtime_init");
    /* "hold": a turn's lines to one client go out in one writev at the next wait */
    if (hold && uniloop_runtime_set_hold_writes(rt, true) != 0) die("uniloop_runtime_set_hold_writes");

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4096) != 0) die("bind/listen");
    getsockname(l, (struct sockaddr *)&a, &al);
    fcntl(l, F_SETFL, fcntl(l, F_GETFL) | O_NONBLOCK);
    if (async_runtime_add(rt, l, EVENT_READ, &listener_ctx) != 0) die("async_runtime_add");
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);

    io_event_t events[256];
    while (nclients < expected || nopen > 0) {
        int n = async_runtime_wait(rt, events, 256, NULL);
        if (n < 0) die("async_runtime_wait");
        for (int i = 0; i < n; i++) {
            io_event_t *ev = &events[i];
            if (ev->fd == INVALID_SOCKET_FD) continue;
            if (ev->context == &listener_ctx) {
                on_accept(l);
                continue;
            }
            struct client *c = ev->context;
            if (!c->open) continue;
            if (ev->buffer) {
                /* A posted write finished; on error the peer is gone. */
                if (ev->event_type & EVENT_ERROR) drop_client(c);
                continue;
            }
            on_readable(c);
        }
    }
    async_runtime_remove(rt, l);
    close(l);
    async_runtime_deinit(rt);
    for (int i = 0; i < nclients; i++) free(clients[i]);
    return 0;
}
