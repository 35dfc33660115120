//! [`measured`]: the code `--callgrind` counts. A module of its own, used
//! by the cases and by `callgrind.rs`, which runs the cases.

/// Runs `f`; under `--callgrind`, the only code whose instructions count.
/// A plain call otherwise (it is never inlined, so callgrind can find it).
#[inline(never)]
pub(crate) fn measured<T, F: FnOnce() -> T>(f: F) -> T {
    f()
}
