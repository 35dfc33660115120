//! `libuniloop`: uniloop's C library.
//!
//! It exports the reference `lib/async` API of the Neolith driver under its
//! own names, signatures, struct layouts and constants (`async_runtime_*`,
//! `async_queue_*`, `async_worker_*`, `console_worker_*`), so a C program
//! written for the reference compiles and links against it unchanged, with
//! the reference's defects fixed (see `shared/DESIGN.md`). uniloop's extras
//! (timers, a blocking dequeue, the worker pool, errors, statistics) are
//! exported under a `uniloop_` prefix.
//!
//! The header is `include/uniloop.h`, generated from this crate by cbindgen
//! and checked to be current by `tests/header.rs`; `include/async/*.h` are
//! thin compatibility headers that include it.
//!
//! Conventions of every exported function:
//!
//! * Failure is `-1`, `false` or `NULL`, as in the reference, and the reason
//!   is kept per thread: `uniloop_last_error()` (a `uniloop_error_t`) and
//!   `uniloop_last_error_message()`. A success clears it.
//! * NULL handles and NULL buffers with nonzero sizes are errors, never a
//!   crash. A Rust panic never crosses the boundary (it becomes
//!   `UNILOOP_ERR_PANIC`).

#![deny(dead_code, unused_imports)]

mod console;
mod error;
mod live;
mod pool;
mod queue;
mod runtime;
mod timeout;
mod types;
mod version;
mod worker;

pub use error::*;
pub use version::*;
