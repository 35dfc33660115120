/* uniloop-test: posix-only: the POSIX spelling of socket_fd_t; layout.c checks the Windows one */
/* A program that includes the reference's port/socket_comm.h spelling
 * first and then uniloop's headers compiles: uniloop.h sees
 * INVALID_SOCKET_FD defined and leaves socket_fd_t alone. */
#include <sys/socket.h>
typedef int socket_fd_t;
#define INVALID_SOCKET_FD           -1

#include <async/async_runtime.h>
#include <async/console_worker.h>
#include <stdio.h>

int main(void) {
    socket_fd_t fd = INVALID_SOCKET_FD;
    async_runtime_t *rt = async_runtime_init();
    if (!rt) return 1;
    int r = async_runtime_add(rt, fd, EVENT_READ, NULL);
    async_runtime_deinit(rt);
    if (r != -1) return 1;
    puts("layout_socket_comm_first: ok");
    return 0;
}
