/* The chat server of chat_uniloop.c on libuv, written the natural libuv
 * way: uv_read_start on every client, and every line a client sends goes
 * to every other client with one uv_write per recipient (a malloc'd copy,
 * freed in the write callback).
 *
 *   chat_libuv CLIENTS   serves on 127.0.0.1 (any port), prints "port N",
 *                        and exits 0 once CLIENTS clients have connected
 *                        and all of them have gone.
 *
 * Build: cc -O2 chat_libuv.c $(pkg-config --cflags --libs libuv) -o chat_libuv
 * (Debian: apt-get install libuv1-dev)
 */
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CLIENTS = 4096, LINE_MAX_LEN = 4096 };

struct client {
    uv_tcp_t tcp; /* first: the handle's address is the client's */
    int open;
    size_t have;
    char in[LINE_MAX_LEN];
};

struct wreq {
    uv_write_t req;
    char data[];
};

static struct client *clients[MAX_CLIENTS];
static int nclients, nopen, expected;
static uv_tcp_t listener;

static void check(int r, const char *what) {
    if (r != 0) {
        fprintf(stderr, "chat_libuv: %s failed: %s\n", what, uv_strerror(r));
        exit(1);
    }
}

static void on_listener_closed(uv_handle_t *h) { (void)h; }

static void on_client_closed(uv_handle_t *h) {
    (void)h;
    nopen--;
    if (nclients == expected && nopen == 0) uv_close((uv_handle_t *)&listener, on_listener_closed);
}

static void drop_client(struct client *c) {
    if (!c->open) return;
    c->open = 0;
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void on_written(uv_write_t *req, int status) {
    (void)status; /* an error means the peer is gone; its read sees it too */
    free(req);
}

static void broadcast(struct client *from, const char *line, size_t len) {
    for (int i = 0; i < nclients; i++) {
        struct client *to = clients[i];
        if (to == from || !to->open) continue;
        struct wreq *w = malloc(sizeof *w + len);
        if (!w) {
            fprintf(stderr, "chat_libuv: out of memory\n");
            exit(1);
        }
        memcpy(w->data, line, len);
        uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
        check(uv_write(&w->req, (uv_stream_t *)&to->tcp, &b, 1, on_written), "uv_write");
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    struct client *c = (struct client *)h;
    *buf = uv_buf_init(c->in + c->have, (unsigned)(sizeof c->in - c->have));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    (void)buf;
    struct client *c = (struct client *)s;
    if (n < 0) {
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
        fprintf(stderr, "chat_libuv: a line longer than %d bytes\n", LINE_MAX_LEN);
        exit(1);
    }
    memmove(c->in, start, c->have);
}

static void on_connection(uv_stream_t *server, int status) {
    check(status, "listen");
    if (nclients == MAX_CLIENTS) {
        fprintf(stderr, "chat_libuv: too many clients\n");
        exit(1);
    }
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "chat_libuv: out of memory\n");
        exit(1);
    }
    check(uv_tcp_init(uv_default_loop(), &c->tcp), "uv_tcp_init");
    check(uv_accept(server, (uv_stream_t *)&c->tcp), "uv_accept");
    uv_tcp_nodelay(&c->tcp, 1);
    c->open = 1;
    clients[nclients++] = c;
    nopen++;
    check(uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read), "uv_read_start");
}

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: chat_libuv CLIENTS\n");
        return 2;
    }
    expected = atoi(argv[1]);
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in a;
    check(uv_ip4_addr("127.0.0.1", 0, &a), "uv_ip4_addr");
    check(uv_tcp_init(loop, &listener), "uv_tcp_init");
    check(uv_tcp_bind(&listener, (const struct sockaddr *)&a, 0), "uv_tcp_bind");
    check(uv_listen((uv_stream_t *)&listener, 4096, on_connection), "uv_listen");
    int al = sizeof a;
    check(uv_tcp_getsockname(&listener, (struct sockaddr *)&a, &al), "uv_tcp_getsockname");
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    for (int i = 0; i < nclients; i++) free(clients[i]);
    uv_loop_close(loop);
    return 0;
}
