/* uniloop-test: posix-only: replaces stdin with dup2 of pipes and files */
/* console_worker_*: lines from a pipe and from a file (each a message with
 * its '\n' and a NUL, long lines split, a partial last line kept), EOF as a
 * completion plus take_eof once, shutdown waking a read that waits on an
 * open pipe, no console on /dev/null, a zeroed context, NULL arguments.
 * stdin is replaced with dup2 in this process before console_worker_init. */
#include "rt_check.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define KEY ((uintptr_t)0xC0701E)

static void set_stdin(int fd) {
    CHECK(dup2(fd, 0) == 0);
    close(fd);
}

struct msg { size_t size; char text[CONSOLE_MAX_LINE]; };
static struct msg msgs[64];
static int nmsgs;

/* Runs the loop until EOF; collects every message. */
static void collect(async_runtime_t *rt, async_queue_t *q, console_worker_context_t *ctx) {
    io_event_t ev[16];
    int eof = 0, completions = 0;
    nmsgs = 0;
    while (!eof) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 16, &tv);
        CHECK(n > 0);
        for (int i = 0; i < n; i++) {
            CHECK(ev[i].completion_key == KEY && ev[i].event_type == EVENT_READ);
            completions++;
        }
        size_t size;
        while (nmsgs < 64 && async_queue_dequeue(q, msgs[nmsgs].text, CONSOLE_MAX_LINE, &size)) {
            msgs[nmsgs++].size = size;
        }
        if (console_worker_take_eof(ctx)) eof = 1;
    }
    /* lines queued just before EOF was seen */
    size_t size;
    while (nmsgs < 64 && async_queue_dequeue(q, msgs[nmsgs].text, CONSOLE_MAX_LINE, &size))
        msgs[nmsgs++].size = size;
    CHECK(!console_worker_take_eof(ctx)); /* once */
    /* one completion per message and one for EOF (posted after the flag) */
    while (completions < nmsgs + 1) {
        struct timeval tv = {10, 0};
        int n = async_runtime_wait(rt, ev, 16, &tv);
        CHECK(n > 0);
        for (int i = 0; i < n; i++) CHECK(ev[i].completion_key == KEY);
        completions += n;
    }
    struct timeval zero = {0, 0};
    CHECK(async_runtime_wait(rt, ev, 16, &zero) == 0);
    CHECK(completions == nmsgs + 1);
}

static void expect(int i, const char *text) {
    size_t len = strlen(text);
    CHECK(i < nmsgs);
    CHECK(msgs[i].size == len + 1);
    CHECK(memcmp(msgs[i].text, text, len) == 0 && msgs[i].text[len] == '\0');
}

static void test_pipe(async_runtime_t *rt) {
    int p[2];
    CHECK(pipe(p) == 0);
    static char longline[5002];
    memset(longline, 'x', 5000);
    longline[5000] = '\n';
    CHECK(write(p[1], "first\nsecond line\n", 18) == 18);
    CHECK(write(p[1], longline, 5001) == 5001);
    CHECK(write(p[1], "partial", 7) == 7);
    set_stdin(p[0]);
    CHECK(console_detect_type() == CONSOLE_TYPE_PIPE);
    CHECK(async_runtime_add_console(rt, NULL) == 0);
    CHECK(async_runtime_get_console_type(rt) == CONSOLE_TYPE_PIPE);

    async_queue_t *q = async_queue_create(64, CONSOLE_MAX_LINE, 0);
    CHECK(q != NULL);
    console_worker_context_t *ctx = console_worker_init(rt, q, KEY);
    CHECK(ctx != NULL);
    CHECK(ctx->console_type == CONSOLE_TYPE_PIPE && ctx->worker != NULL);
    CHECK(ctx->line_queue == q && ctx->runtime == rt && ctx->completion_key == KEY);
    CHECK(!console_worker_take_eof(ctx));
    close(p[1]); /* end of input after what was written */
    collect(rt, q, ctx);
    CHECK(nmsgs == 5);
    expect(0, "first\n");
    expect(1, "second line\n");
    CHECK(msgs[2].size == CONSOLE_MAX_LINE && msgs[2].text[CONSOLE_MAX_LINE - 1] == '\0');
    CHECK(msgs[3].size == 5001 - (CONSOLE_MAX_LINE - 1) + 1);
    CHECK(msgs[3].text[msgs[3].size - 2] == '\n');
    expect(4, "partial");
    CHECK(console_worker_shutdown(ctx, 5000));
    CHECK(console_worker_shutdown(ctx, 5000)); /* again: still stopped */
    console_worker_destroy(ctx);
    async_queue_destroy(q);
}

static void test_file(async_runtime_t *rt) {
    char path[] = "/tmp/uniloop-console-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "look\r\nsay hi\n", 13) == 13);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    unlink(path);
    set_stdin(fd);
    CHECK(console_detect_type() == CONSOLE_TYPE_FILE);
    async_queue_t *q = async_queue_create(8, CONSOLE_MAX_LINE, 0);
    console_worker_context_t *ctx = console_worker_init(rt, q, KEY);
    CHECK(ctx != NULL && ctx->console_type == CONSOLE_TYPE_FILE);
    collect(rt, q, ctx);
    CHECK(nmsgs == 2);
    expect(0, "look\r\n");
    expect(1, "say hi\n");
    CHECK(console_worker_shutdown(ctx, 5000));
    console_worker_destroy(ctx);
    async_queue_destroy(q);
}

/* A read waiting on a pipe that stays open: shutdown wakes it. */
static void test_shutdown_unblocks(async_runtime_t *rt) {
    int p[2];
    CHECK(pipe(p) == 0);
    set_stdin(p[0]);
    async_queue_t *q = async_queue_create(8, CONSOLE_MAX_LINE, 0);
    console_worker_context_t *ctx = console_worker_init(rt, q, KEY);
    CHECK(ctx != NULL && ctx->worker != NULL);
    CHECK(console_worker_shutdown(ctx, 10000));
    CHECK(!console_worker_take_eof(ctx)); /* stopped, not EOF */
    console_worker_destroy(ctx);
    async_queue_destroy(q);
    /* nothing posted for it */
    io_event_t ev[4];
    struct timeval zero = {0, 0};
    CHECK(async_runtime_wait(rt, ev, 4, &zero) == 0);
    close(p[1]);
}

static void test_none_and_invalid(async_runtime_t *rt) {
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    set_stdin(fd);
    CHECK(console_detect_type() == CONSOLE_TYPE_NONE);
    CHECK(async_runtime_add_console(rt, NULL) == 0);
    CHECK(async_runtime_get_console_type(rt) == CONSOLE_TYPE_NONE);
    async_queue_t *q = async_queue_create(8, CONSOLE_MAX_LINE, 0);
    console_worker_context_t *ctx = console_worker_init(rt, q, KEY);
    CHECK(ctx != NULL && ctx->console_type == CONSOLE_TYPE_NONE && ctx->worker == NULL);
    CHECK(console_worker_shutdown(ctx, 1000));
    CHECK(!console_worker_take_eof(ctx));
    console_worker_destroy(ctx);

    /* a zeroed context on the stack: nothing to shut down */
    console_worker_context_t zero;
    memset(&zero, 0, sizeof zero);
    CHECK(console_worker_shutdown(&zero, 1000));

    CHECK_ERR(console_worker_init(NULL, q, KEY) == NULL, UNILOOP_ERR_INVALID);
    CHECK_ERR(console_worker_init(rt, NULL, KEY) == NULL, UNILOOP_ERR_INVALID);
    CHECK_ERR(!console_worker_shutdown(NULL, 0), UNILOOP_ERR_INVALID);
    CHECK_ERR(!console_worker_take_eof(NULL), UNILOOP_ERR_INVALID);
    console_worker_destroy(NULL);
    /* not a context from init (and not zeroed) */
    zero.worker = (async_worker_t *)&zero;
    CHECK_ERR(!console_worker_shutdown(&zero, 0), UNILOOP_ERR_INVALID);
    CHECK_ERR(!console_worker_take_eof(&zero), UNILOOP_ERR_INVALID);
    console_worker_destroy(&zero);
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    async_queue_destroy(q);

    CHECK(strcmp(console_type_str(CONSOLE_TYPE_NONE), "NONE") == 0);
    CHECK(strcmp(console_type_str(CONSOLE_TYPE_REAL), "REAL") == 0);
    CHECK(strcmp(console_type_str(CONSOLE_TYPE_PIPE), "PIPE") == 0);
    CHECK(strcmp(console_type_str(CONSOLE_TYPE_FILE), "FILE") == 0);
    CHECK(strcmp(console_type_str(42), "UNKNOWN") == 0);
    CHECK(strcmp(console_type_str(-1), "UNKNOWN") == 0);
    CHECK(async_runtime_get_console_type(NULL) == CONSOLE_TYPE_NONE);
    CHECK(async_runtime_add_console(NULL, NULL) == -1);

    /* stdin is not a terminal: the mode helpers change nothing and say 0 */
    CHECK(set_console_input_echo(NULL, 1) == 0);
    CHECK(set_console_input_single_char(NULL, 1) == 0);
    CHECK(set_console_input_single_char(NULL, 0) == 0);
    CHECK(set_console_input_line_mode(NULL, 1) == 0);
    CHECK(enable_console_output_ansi() == 0);
}

int main(void) {
    async_runtime_t *rt = async_runtime_init();
    CHECK(rt != NULL);
    CHECK(async_runtime_get_console_type(rt) == CONSOLE_TYPE_NONE);
    test_pipe(rt);
    test_file(rt);
    test_shutdown_unblocks(rt);
    test_none_and_invalid(rt);
    async_runtime_deinit(rt);
    puts("console: ok");
    return 0;
}
