/* Compatibility header: code written for the reference lib/async includes
 * "async/async_runtime.h"; with -I crates/uniloop-capi/include it gets uniloop's
 * single header, which declares the whole API. */
#ifndef UNILOOP_ASYNC_ASYNC_RUNTIME_H
#define UNILOOP_ASYNC_ASYNC_RUNTIME_H
#include "../uniloop.h"
#endif
