/* The runtime the signal and pool tests post to, behind three helpers.
 *
 * Until the merge with the runtime (branch capi-a) they use the library's
 * TEMPORARY stand-in (src/runtime_standin.rs). At the merge, delete the
 * stand-in branch below and keep the other, which uses the reference API
 * (async_runtime_init / async_runtime_wait / async_runtime_deinit). */
#ifndef UNILOOP_TEST_RUNTIME_H
#define UNILOOP_TEST_RUNTIME_H

#include <stdint.h>

#if !defined(UNILOOP_TEST_REAL_RUNTIME)

static inline async_runtime_t *test_rt_new(void) { return uniloop_standin_runtime_new(); }
static inline void test_rt_free(async_runtime_t *rt) { uniloop_standin_runtime_free(rt); }
/* One completion: 1 with *key and *data set, 0 when none came within
 * timeout_ms (-1: forever), -1 on error. */
static inline int test_rt_completion(async_runtime_t *rt, int timeout_ms, uintptr_t *key,
                                     uintptr_t *data) {
    return uniloop_standin_wait_completion(rt, timeout_ms, key, data);
}

#else

static inline async_runtime_t *test_rt_new(void) { return async_runtime_init(); }
static inline void test_rt_free(async_runtime_t *rt) { async_runtime_deinit(rt); }
static inline int test_rt_completion(async_runtime_t *rt, int timeout_ms, uintptr_t *key,
                                     uintptr_t *data) {
    /* Completions come one per event; this test's runtime has no fds. */
    io_event_t ev;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int n = async_runtime_wait(rt, &ev, 1, timeout_ms < 0 ? NULL : &tv);
    if (n <= 0) return n;
    *key = ev.completion_key;
    *data = (uintptr_t)ev.bytes_transferred;
    return 1;
}

#endif

#endif /* UNILOOP_TEST_RUNTIME_H */
