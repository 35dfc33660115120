/* Layouts and constants match the reference lib/async headers byte for
 * byte (measured there on x86_64 Linux), and uniloop.h may be followed by
 * the reference's own socket_fd_t spelling (port/socket_comm.h): identical,
 * legal redefinitions. The header is also clean under -Wpedantic. */
#pragma GCC diagnostic error "-Wpedantic"
#include <uniloop.h>
#include <async/async_runtime.h>
#include <async/async_queue.h>
#include <async/async_worker.h>
#include <async/console_worker.h>
#include <async/console_mode.h>

/* port/socket_comm.h, as the reference spells it */
#ifdef _WIN32
typedef SOCKET socket_fd_t;
#define INVALID_SOCKET_FD           INVALID_SOCKET
#else
typedef int socket_fd_t;
#define INVALID_SOCKET_FD           -1
#endif

#include <stddef.h>
#include <stdio.h>

_Static_assert(EVENT_READ == 0x01 && EVENT_WRITE == 0x02, "EVENT_*");
_Static_assert(EVENT_ERROR == 0x04 && EVENT_CLOSE == 0x08, "EVENT_*");
_Static_assert(CONSOLE_TYPE_NONE == 0 && CONSOLE_TYPE_REAL == 1, "console_type_t");
_Static_assert(CONSOLE_TYPE_PIPE == 2 && CONSOLE_TYPE_FILE == 3, "console_type_t");
_Static_assert(CONSOLE_COMPLETION_KEY == 0xC0701E, "CONSOLE_COMPLETION_KEY");
_Static_assert(CONSOLE_MAX_LINE == 4096, "CONSOLE_MAX_LINE");
_Static_assert(sizeof(console_type_t) == 4, "enums are 4 bytes");
#ifndef _WIN32
_Static_assert(INVALID_SOCKET_FD == -1, "INVALID_SOCKET_FD");
#endif

#if defined(__x86_64__) && defined(__linux__)
_Static_assert(sizeof(io_event_t) == 48, "io_event_t size");
_Static_assert(offsetof(io_event_t, fd) == 0, "fd");
_Static_assert(offsetof(io_event_t, completion_key) == 8, "completion_key");
_Static_assert(offsetof(io_event_t, event_type) == 16, "event_type");
_Static_assert(offsetof(io_event_t, context) == 24, "context");
_Static_assert(offsetof(io_event_t, bytes_transferred) == 32, "bytes_transferred");
_Static_assert(offsetof(io_event_t, buffer) == 40, "buffer");

_Static_assert(sizeof(console_worker_context_t) == 136, "console_worker_context_t size");
_Static_assert(offsetof(console_worker_context_t, line_queue) == 0, "line_queue");
_Static_assert(offsetof(console_worker_context_t, runtime) == 8, "runtime");
_Static_assert(offsetof(console_worker_context_t, worker) == 16, "worker");
_Static_assert(offsetof(console_worker_context_t, console_type) == 24, "console_type");
_Static_assert(offsetof(console_worker_context_t, completion_key) == 32, "completion_key");
_Static_assert(offsetof(console_worker_context_t, state_mutex) == 40, "state_mutex");
_Static_assert(sizeof(((console_worker_context_t *)0)->state_mutex) == 80, "state_mutex size");
_Static_assert(offsetof(console_worker_context_t, eof_detected) == 120, "eof_detected");
_Static_assert(offsetof(console_worker_context_t, stop_pipe_fds) == 124, "stop_pipe_fds");
#endif

#if defined(_WIN64)
/* The reference's Windows layout: SOCKET fd, then HANDLE handle. */
_Static_assert(sizeof(io_event_t) == 56, "io_event_t size (Windows)");
_Static_assert(offsetof(io_event_t, handle) == 8, "handle");
_Static_assert(offsetof(io_event_t, completion_key) == 16, "completion_key");
_Static_assert(offsetof(io_event_t, event_type) == 24, "event_type");
_Static_assert(offsetof(io_event_t, context) == 32, "context");
_Static_assert(offsetof(io_event_t, bytes_transferred) == 40, "bytes_transferred");
_Static_assert(offsetof(io_event_t, buffer) == 48, "buffer");
_Static_assert(sizeof(console_worker_context_t) == 128, "console_worker_context_t (Windows)");
_Static_assert(offsetof(console_worker_context_t, eof_detected) == 120, "eof_detected");
_Static_assert(offsetof(console_worker_context_t, desired_console_mode) == 124, "desired_console_mode");
#endif

/* The reference's struct tags. */
struct async_runtime_s;
struct console_worker_context_s;
static struct async_runtime_s *as_tagged(async_runtime_t *rt) { return rt; }
static struct console_worker_context_s *ctx_tagged(console_worker_context_t *c) { return c; }

int main(void) {
    socket_fd_t fd = INVALID_SOCKET_FD;
    io_event_t ev = {0};
    ev.fd = fd;
    if (as_tagged(NULL) != NULL || ctx_tagged(NULL) != NULL) return 1;
    printf("layout: ok (io_event_t %u bytes, console_worker_context_t %u bytes, fd %d)\n",
           (unsigned)sizeof(io_event_t), (unsigned)sizeof(console_worker_context_t), (int)ev.fd);
    return 0;
}
