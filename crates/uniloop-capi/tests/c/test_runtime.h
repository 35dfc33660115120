/* The runtime the signal and pool tests post to, behind three helpers
 * (async_runtime_init / async_runtime_wait / async_runtime_deinit). */
#ifndef UNILOOP_TEST_RUNTIME_H
#define UNILOOP_TEST_RUNTIME_H

#include <stdint.h>


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


#endif /* UNILOOP_TEST_RUNTIME_H */
