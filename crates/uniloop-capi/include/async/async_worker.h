/* Compatibility header: code written for the reference lib/async includes
 * "async/async_worker.h"; with -I crates/uniloop-capi/include it gets uniloop's
 * single header, which declares the whole API. */
#ifndef UNILOOP_ASYNC_ASYNC_WORKER_H
#define UNILOOP_ASYNC_ASYNC_WORKER_H
#include "../uniloop.h"
#endif
