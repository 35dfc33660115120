/* The console worker on a pipe, written once for POSIX (dup2 onto fd 0)
 * and Windows (CreatePipe + SetStdHandle; run under Wine by
 * scripts/test-windows.sh): lines arrive as messages with their '\n' and a
 * NUL, then EOF; and shutdown wakes a read waiting on a pipe that stays
 * open. */
#include "rt_check.h"

#include <string.h>

#ifdef _WIN32
#include <windows.h>
typedef HANDLE pipe_end;
static void make_stdin_pipe(pipe_end *w) {
    HANDLE r;
    CHECK(CreatePipe(&r, w, NULL, 0));
    CHECK(SetStdHandle(STD_INPUT_HANDLE, r));
}
static void put(pipe_end w, const char *s) {
    DWORD n;
    CHECK(WriteFile(w, s, (DWORD)strlen(s), &n, NULL) && n == strlen(s));
}
static void close_end(pipe_end w) { CloseHandle(w); }
#else
#include <unistd.h>
typedef int pipe_end;
static void make_stdin_pipe(pipe_end *w) {
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(dup2(p[0], 0) == 0);
    close(p[0]);
    *w = p[1];
}
static void put(pipe_end w, const char *s) { CHECK(write(w, s, strlen(s)) == (ssize_t)strlen(s)); }
static void close_end(pipe_end w) { close(w); }
#endif

#define KEY ((uintptr_t)0xC0701E)

int main(void) {
    async_runtime_t *rt = async_runtime_init();
    CHECK(rt != NULL);
    async_queue_t *q = async_queue_create(16, CONSOLE_MAX_LINE, 0);
    CHECK(q != NULL);

    pipe_end w;
    make_stdin_pipe(&w);
    CHECK(console_detect_type() == CONSOLE_TYPE_PIPE);
    put(w, "north\nsay hello\n");
    console_worker_context_t *ctx = console_worker_init(rt, q, KEY);
    CHECK(ctx != NULL && ctx->console_type == CONSOLE_TYPE_PIPE && ctx->worker != NULL);
    close_end(w);

    const char *want[] = {"north\n", "say hello\n"};
    int got = 0, eof = 0;
    io_event_t ev[8];
    while (!eof) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 8, &tv);
        CHECK(n > 0);
        for (int i = 0; i < n; i++) CHECK(ev[i].completion_key == KEY);
        char line[CONSOLE_MAX_LINE];
        size_t size;
        while (async_queue_dequeue(q, line, sizeof line, &size)) {
            CHECK(got < 2);
            CHECK(size == strlen(want[got]) + 1 && strcmp(line, want[got]) == 0);
            got++;
        }
        eof = console_worker_take_eof(ctx);
    }
    {
        char line[CONSOLE_MAX_LINE];
        size_t size;
        while (async_queue_dequeue(q, line, sizeof line, &size)) {
            CHECK(got < 2 && strcmp(line, want[got]) == 0);
            got++;
        }
    }
    CHECK(got == 2);
    CHECK(console_worker_shutdown(ctx, 5000));
    console_worker_destroy(ctx);

    /* a read waiting on an open pipe: shutdown wakes it */
    make_stdin_pipe(&w);
    ctx = console_worker_init(rt, q, KEY);
    CHECK(ctx != NULL && ctx->worker != NULL);
    CHECK(console_worker_shutdown(ctx, 10000));
    CHECK(!console_worker_take_eof(ctx));
    console_worker_destroy(ctx);
    close_end(w);

    async_queue_destroy(q);
    async_runtime_deinit(rt);
    puts("console_portable: ok");
    return 0;
}
