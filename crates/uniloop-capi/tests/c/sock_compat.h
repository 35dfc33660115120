/* Sockets for the C tests written once for POSIX and Windows (winsock
 * under Wine): the headers, `sock_t`, `closesock` and `set_nonblocking`.
 * Include after rt_check.h (CHECK). */
#ifndef UNILOOP_TEST_SOCK_COMPAT_H
#define UNILOOP_TEST_SOCK_COMPAT_H

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
typedef SOCKET sock_t;
#define closesock closesocket
static void set_nonblocking(sock_t s) {
    u_long one = 1;
    CHECK(ioctlsocket(s, FIONBIO, &one) == 0);
}
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int sock_t;
#define closesock close
static void set_nonblocking(sock_t s) { CHECK(fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) == 0); }
#endif

#endif
