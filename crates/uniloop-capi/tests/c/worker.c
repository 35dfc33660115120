/* async_worker_*: the reference's worker suite (create/destroy, graceful
 * shutdown, join timeout, context, state), then its defects: STOPPING is
 * reported, a timed join right after create returns on time, the body's
 * return value is kept, a running worker can be destroyed, a failed
 * create returns NULL. No sleeps: bodies block on a monitor or on
 * uniloop_worker_wait_stop. */
#include <uniloop.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"

/* A gate the main thread opens for a body, and a count of bodies that have
 * reached a point. */
struct gate {
    compat_monitor_t m;
    int open;
    int arrived;
};

static void gate_init(struct gate *g) {
    compat_monitor_init(&g->m);
    g->open = 0;
    g->arrived = 0;
}

static void gate_arrive(struct gate *g) {
    compat_lock(&g->m);
    g->arrived++;
    compat_broadcast(&g->m);
    compat_unlock(&g->m);
}

static void gate_wait_arrived(struct gate *g, int n) {
    compat_lock(&g->m);
    while (g->arrived < n) compat_wait(&g->m);
    compat_unlock(&g->m);
}

static void gate_open(struct gate *g) {
    compat_lock(&g->m);
    g->open = 1;
    compat_broadcast(&g->m);
    compat_unlock(&g->m);
}

static void gate_pass(struct gate *g) {
    compat_lock(&g->m);
    while (!g->open) compat_wait(&g->m);
    compat_unlock(&g->m);
}

static void *simple_worker(void *arg) {
    int *counter = (int *)arg;
    (*counter)++;
    return NULL;
}

static void test_create_destroy(void) {
    int counter = 0;
    async_worker_t *w = async_worker_create(simple_worker, &counter, 0);
    CHECK(w != NULL);
    CHECK(async_worker_join(w, 5000));
    CHECK(counter == 1);
    CHECK(async_worker_get_state(w) == ASYNC_WORKER_STOPPED);
    /* A second join is harmless. */
    CHECK(async_worker_join(w, 0));
    async_worker_destroy(w);

    /* With a stack size. */
    counter = 0;
    w = async_worker_create(simple_worker, &counter, 256 * 1024);
    CHECK(w != NULL);
    CHECK(async_worker_join(w, -1));
    CHECK(counter == 1);
    async_worker_destroy(w);
}

struct looping {
    atomic_int iterations;
    struct gate started;
};

static void *looping_worker(void *arg) {
    struct looping *l = (struct looping *)arg;
    async_worker_t *self = async_worker_current();
    CHECK(self != NULL);
    while (!async_worker_should_stop(self)) {
        if (atomic_fetch_add(&l->iterations, 1) == 0) gate_arrive(&l->started);
        /* Sleeps until the stop, not for a fixed time. */
        uniloop_worker_wait_stop(self, 1000);
    }
    return NULL;
}

static void test_graceful_shutdown(void) {
    struct looping l;
    atomic_init(&l.iterations, 0);
    gate_init(&l.started);
    async_worker_t *w = async_worker_create(looping_worker, &l, 0);
    CHECK(w != NULL);
    gate_wait_arrived(&l.started, 1);
    CHECK(atomic_load(&l.iterations) > 0);
    async_worker_signal_stop(w);
    uint64_t start = compat_now_ms();
    CHECK(async_worker_join(w, 5000));
    /* The stop woke the body at once, not after its 1 s wait. */
    CHECK(compat_now_ms() - start < 900);
    CHECK(async_worker_get_state(w) == ASYNC_WORKER_STOPPED);
    async_worker_destroy(w);
    compat_monitor_destroy(&l.started.m);
}

/* Ignores stop until the gate opens. */
static void *stubborn_worker(void *arg) {
    struct gate *g = (struct gate *)arg;
    gate_arrive(g);
    gate_pass(g);
    return (void *)7;
}

static void test_join_timeout(void) {
    struct gate g;
    gate_init(&g);
    async_worker_t *w = async_worker_create(stubborn_worker, &g, 0);
    CHECK(w != NULL);
    /* Right after the create, before the thread may even have started. */
    uint64_t start = compat_now_ms();
    CHECK(!async_worker_join(w, 100));
    uint64_t took = compat_now_ms() - start;
    CHECK(uniloop_last_error() == UNILOOP_ERR_TIMEOUT);
    CHECK(took >= 99);
    CHECK(took < 10000);
    CHECK(!async_worker_join(w, 0));
    gate_wait_arrived(&g, 1);
    async_worker_signal_stop(w);
    CHECK(!async_worker_join(w, 50));
    CHECK(async_worker_get_state(w) == ASYNC_WORKER_STOPPING);
    void *r = NULL;
    CHECK(!uniloop_worker_result(w, &r));
    CHECK(uniloop_last_error() == UNILOOP_ERR_NOT_FOUND);
    gate_open(&g);
    CHECK(async_worker_join(w, -1));
    CHECK(uniloop_worker_result(w, &r) && r == (void *)7);
    async_worker_destroy(w);
    compat_monitor_destroy(&g.m);
}

static void *worker_with_context(void *arg) {
    const char *message = (const char *)arg;
    CHECK(strcmp(message, "test context") == 0);
    return (void *)42;
}

static void test_context_and_result(void) {
    const char *ctx = "test context";
    async_worker_t *w = async_worker_create(worker_with_context, (void *)ctx, 0);
    CHECK(w != NULL);
    CHECK(async_worker_join(w, 5000));
    void *r = NULL;
    CHECK(uniloop_worker_result(w, &r));
    CHECK(r == (void *)42);
    async_worker_destroy(w);
}

struct state_probe {
    struct gate started;
    struct gate release;
    async_worker_t *self;
    async_worker_state_t at_start, after_stop;
    int should_stop_after;
};

static void *state_checking_worker(void *arg) {
    struct state_probe *p = (struct state_probe *)arg;
    p->self = async_worker_current();
    p->at_start = async_worker_get_state(p->self);
    gate_arrive(&p->started);
    CHECK(uniloop_worker_wait_stop(p->self, -1));
    p->after_stop = async_worker_get_state(p->self);
    p->should_stop_after = async_worker_should_stop(p->self);
    gate_pass(&p->release);
    return NULL;
}

static void test_state(void) {
    struct state_probe p;
    memset(&p, 0, sizeof p);
    gate_init(&p.started);
    gate_init(&p.release);
    CHECK(async_worker_current() == NULL);
    async_worker_t *w = async_worker_create(state_checking_worker, &p, 0);
    CHECK(w != NULL);
    /* Running from the create on, whether or not the thread has started. */
    CHECK(async_worker_get_state(w) == ASYNC_WORKER_RUNNING);
    CHECK(!async_worker_should_stop(w));
    CHECK(!uniloop_worker_wait_stop(w, 20));
    gate_wait_arrived(&p.started, 1);
    CHECK(p.self == w);
    CHECK(p.at_start == ASYNC_WORKER_RUNNING);
    async_worker_signal_stop(w);
    CHECK(async_worker_get_state(w) == ASYNC_WORKER_STOPPING);
    CHECK(async_worker_should_stop(w));
    gate_open(&p.release);
    CHECK(async_worker_join(w, 5000));
    CHECK(p.after_stop == ASYNC_WORKER_STOPPING);
    CHECK(p.should_stop_after);
    CHECK(async_worker_get_state(w) == ASYNC_WORKER_STOPPED);
    async_worker_destroy(w);
    compat_monitor_destroy(&p.started.m);
    compat_monitor_destroy(&p.release.m);
}

struct detached {
    struct gate started;
    struct gate done;
    int saw_stop;
    async_worker_state_t state;
};

/* Outlives its handle: after the owner's destroy it still uses its own
 * handle through async_worker_current(). */
static void *detached_worker(void *arg) {
    struct detached *d = (struct detached *)arg;
    async_worker_t *self = async_worker_current();
    gate_arrive(&d->started);
    uniloop_worker_wait_stop(self, -1);
    d->saw_stop = async_worker_should_stop(async_worker_current());
    d->state = async_worker_get_state(self);
    gate_arrive(&d->done);
    return NULL;
}

static void test_destroy_running(void) {
    /* Static: the detached body may still be leaving gate_arrive when this
     * function returns. */
    static struct detached d;
    gate_init(&d.started);
    gate_init(&d.done);
    async_worker_t *w = async_worker_create(detached_worker, &d, 0);
    CHECK(w != NULL);
    gate_wait_arrived(&d.started, 1);
    async_worker_destroy(w);
    gate_wait_arrived(&d.done, 1);
    CHECK(d.saw_stop);
    CHECK(d.state == ASYNC_WORKER_STOPPING);
    /* The monitors stay: the detached body may still be unlocking one. */
}

static void *never_runs(void *arg) {
    (void)arg;
    CHECK(0);
    return NULL;
}

static void test_failed_create(void) {
    CHECK(async_worker_create(NULL, NULL, 0) == NULL);
    CHECK(uniloop_last_error() == UNILOOP_ERR_INVALID);
    /* A stack no system can map. */
    CHECK(async_worker_create(never_runs, NULL, (size_t)1 << 60) == NULL);
    CHECK(uniloop_last_error() == UNILOOP_ERR_OS);
}

struct native_probe {
#if defined(_WIN32)
    DWORD id;
#else
    pthread_t self;
#endif
};

static void *native_worker(void *arg) {
    struct native_probe *p = (struct native_probe *)arg;
#if defined(_WIN32)
    p->id = GetCurrentThreadId();
#else
    p->self = pthread_self();
#endif
    return NULL;
}

static void test_native_handle_and_stop_event(void) {
    struct native_probe p;
    memset(&p, 0, sizeof p);
    async_worker_t *w = async_worker_create(native_worker, &p, 0);
    CHECK(w != NULL);
#if defined(_WIN32)
    HANDLE h = async_worker_get_native_handle(w);
    CHECK(h != NULL);
    CHECK(async_worker_join(w, -1));
    CHECK(GetThreadId(h) == p.id);
#else
    pthread_t t = async_worker_get_native_handle(w);
    CHECK(async_worker_join(w, -1));
    CHECK(pthread_equal(t, p.self));
#endif
    CHECK(async_worker_get_stop_event(w) == NULL);
    CHECK(uniloop_last_error() == UNILOOP_ERR_UNSUPPORTED);
    async_worker_destroy(w);
}

static void *self_joiner(void *arg) {
    (void)arg;
    /* Would wait for itself forever; refused instead. */
    int joined = async_worker_join(async_worker_current(), -1);
    int error = uniloop_last_error();
    return (void *)(intptr_t)(!joined && error == UNILOOP_ERR_INVALID);
}

static void test_self_join(void) {
    async_worker_t *w = async_worker_create(self_joiner, NULL, 0);
    CHECK(w != NULL);
    CHECK(async_worker_join(w, -1));
    void *r = NULL;
    CHECK(uniloop_worker_result(w, &r) && r == (void *)1);
    async_worker_destroy(w);
}

int main(void) {
    test_create_destroy();
    test_graceful_shutdown();
    test_join_timeout();
    test_context_and_result();
    test_state();
    test_destroy_running();
    test_failed_create();
    test_native_handle_and_stop_event();
    test_self_join();
    puts("worker: ok");
    return 0;
}
