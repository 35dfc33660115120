/* uniloop-test: posix-only: the README example uses pthreads */
/* The example of README.md's "Using uniloop from C", verbatim: it must
 * compile and run (tests/c.rs runs it natively and under valgrind). */
#include <uniloop.h>   /* or "async/async_runtime.h" */
#include <pthread.h>
#include <stdio.h>

enum { WORK = 1, TICK = 2 };

static void *worker(void *rt) {          /* any thread may post */
    async_runtime_post_completion(rt, WORK, 42);
    return NULL;
}

int main(void) {
    async_runtime_t *rt = async_runtime_init();
    if (!rt) { fprintf(stderr, "%s\n", uniloop_last_error_message()); return 1; }
    uniloop_timer_add(rt, TICK, 10, 0);  /* a one-shot timer, 10 ms */
    pthread_t t;
    pthread_create(&t, NULL, worker, rt);
    /* async_runtime_add(rt, fd, EVENT_READ, ctx) for sockets: readiness,
       with ctx back in each event */
    io_event_t ev[64];
    for (int seen = 0; seen < 2;) {
        int n = async_runtime_wait(rt, ev, 64, NULL);   /* NULL: block */
        for (int i = 0; i < n; i++, seen++)
            printf("key %lu data %lu%s\n", (unsigned long)ev[i].completion_key,
                   (unsigned long)ev[i].bytes_transferred,
                   ev[i].event_type & UNILOOP_EVENT_TIMER ? " (timer)" : "");
    }
    pthread_join(t, NULL);
    async_runtime_deinit(rt);
    return 0;
}
