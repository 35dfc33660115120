/* A tiny portable shim for the C tests: threads, a mutex with a condition
 * variable, a yield, a monotonic clock in milliseconds, and CHECK.
 * POSIX threads on Unix, Win32 on Windows (mingw), so the same test files
 * run natively, under valgrind and under Wine. Include after uniloop.h.
 *
 * scripts/test-windows.sh builds every C file in tests/c and examples with
 * mingw and runs it under Wine. A file that cannot be made portable says
 * why in one line, and is then skipped there with that reason:
 *     / * uniloop-test: posix-only: <reason> * /     (without the spaces) */
#ifndef UNILOOP_TEST_COMPAT_H
#define UNILOOP_TEST_COMPAT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(_WIN32)
#include <windows.h>
#else
#include <pthread.h>
#include <sched.h>
#include <time.h>
#endif

/* Fails the test with the location, the expression and the library's last
 * error on this thread. */
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error %d: %s)\n", \
                    __FILE__, __LINE__, #cond, uniloop_last_error(),         \
                    uniloop_last_error_message());                           \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

typedef void *(*compat_thread_fn)(void *);

#if defined(_WIN32)

typedef struct compat_thread_s {
    HANDLE handle;
    compat_thread_fn fn;
    void *arg;
    void *result;
} *compat_thread_t;

static DWORD WINAPI compat_thread_trampoline(LPVOID p) {
    compat_thread_t t = (compat_thread_t)p;
    t->result = t->fn(t->arg);
    return 0;
}

static inline int compat_thread_start(compat_thread_t *out, compat_thread_fn fn, void *arg) {
    compat_thread_t t = (compat_thread_t)calloc(1, sizeof *t);
    if (!t) return -1;
    t->fn = fn;
    t->arg = arg;
    t->handle = CreateThread(NULL, 0, compat_thread_trampoline, t, 0, NULL);
    if (!t->handle) {
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static inline void *compat_thread_join(compat_thread_t t) {
    WaitForSingleObject(t->handle, INFINITE);
    CloseHandle(t->handle);
    void *r = t->result;
    free(t);
    return r;
}

typedef struct {
    SRWLOCK lock;
    CONDITION_VARIABLE cond;
} compat_monitor_t;

static inline void compat_monitor_init(compat_monitor_t *m) {
    InitializeSRWLock(&m->lock);
    InitializeConditionVariable(&m->cond);
}
static inline void compat_monitor_destroy(compat_monitor_t *m) { (void)m; }
static inline void compat_lock(compat_monitor_t *m) { AcquireSRWLockExclusive(&m->lock); }
static inline void compat_unlock(compat_monitor_t *m) { ReleaseSRWLockExclusive(&m->lock); }
static inline void compat_wait(compat_monitor_t *m) {
    SleepConditionVariableSRW(&m->cond, &m->lock, INFINITE, 0);
}
static inline void compat_broadcast(compat_monitor_t *m) { WakeAllConditionVariable(&m->cond); }
static inline void compat_yield(void) { SwitchToThread(); }

static inline uint64_t compat_now_ms(void) {
    LARGE_INTEGER freq, now;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (uint64_t)(now.QuadPart / (freq.QuadPart / 1000));
}

#else

typedef pthread_t compat_thread_t;

static inline int compat_thread_start(compat_thread_t *out, compat_thread_fn fn, void *arg) {
    return pthread_create(out, NULL, fn, arg) == 0 ? 0 : -1;
}

static inline void *compat_thread_join(compat_thread_t t) {
    void *r = NULL;
    pthread_join(t, &r);
    return r;
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
} compat_monitor_t;

static inline void compat_monitor_init(compat_monitor_t *m) {
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
}
static inline void compat_monitor_destroy(compat_monitor_t *m) {
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
}
static inline void compat_lock(compat_monitor_t *m) { pthread_mutex_lock(&m->lock); }
static inline void compat_unlock(compat_monitor_t *m) { pthread_mutex_unlock(&m->lock); }
static inline void compat_wait(compat_monitor_t *m) { pthread_cond_wait(&m->cond, &m->lock); }
static inline void compat_broadcast(compat_monitor_t *m) { pthread_cond_broadcast(&m->cond); }
static inline void compat_yield(void) { sched_yield(); }

static inline uint64_t compat_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif

/* Yields until `cond` holds; fails the test after 30 s (a guard against a
 * hang, never a synchronisation by time). */
#define WAIT_UNTIL(cond)                                                     \
    do {                                                                     \
        uint64_t wait_until_start_ = compat_now_ms();                        \
        while (!(cond)) {                                                    \
            if (compat_now_ms() - wait_until_start_ > 30000) {               \
                fprintf(stderr, "%s:%d: timed out waiting for %s\n",         \
                        __FILE__, __LINE__, #cond);                          \
                exit(1);                                                     \
            }                                                                \
            compat_yield();                                                  \
        }                                                                    \
    } while (0)

#endif /* UNILOOP_TEST_COMPAT_H */
