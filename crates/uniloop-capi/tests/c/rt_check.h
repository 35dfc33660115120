/* Shared by the runtime, console and layout C tests. */
#ifndef RT_CHECK_H
#define RT_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <uniloop.h>

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error %d: %s)\n",     \
                    __FILE__, __LINE__, #cond, uniloop_last_error(),             \
                    uniloop_last_error_message());                               \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

#define CHECK_ERR(cond, code)                                                    \
    do {                                                                         \
        CHECK(cond);                                                             \
        if (uniloop_last_error() != (code)) {                                    \
            fprintf(stderr, "%s:%d: expected error %d, got %d (%s)\n", __FILE__,  \
                    __LINE__, (int)(code), uniloop_last_error(),                 \
                    uniloop_last_error_message());                               \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

#endif
