//! The C API's millisecond timeouts, shared by the queue, worker and pool.

use std::ffi::c_int;
use std::time::{Duration, Instant};

/// A C timeout in milliseconds as a deadline: negative (the reference's
/// `-1`) waits forever (`None`), `0` polls, a positive value is that many
/// milliseconds from now.
/// A deadline too far to represent is as good as forever.
pub(crate) fn deadline(timeout_ms: c_int) -> Option<Instant> {
    let ms = u64::try_from(timeout_ms).ok()?;
    Instant::now().checked_add(Duration::from_millis(ms))
}

/// What is left until `deadline`: `Some(None)` when it has passed,
/// `None` when there is no deadline.
pub(crate) fn left(deadline: Option<Instant>) -> Option<Option<Duration>> {
    deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    })
}
