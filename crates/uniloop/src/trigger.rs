//! [`Trigger`]: how readiness is reported. A vocabulary module: it uses
//! nothing else of the crate.

/// How readiness is reported for a registration.
///
/// Not every backend can honour every mode; [`Backend::supports`] says which
/// do, and registering with an unsupported one fails with
/// [`std::io::ErrorKind::Unsupported`] instead of behaving differently.
///
/// [`Backend::supports`]: crate::Backend::supports
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Reported on every `wait` for as long as the condition holds (until the
    /// data is read, the buffer drains...). The default, as in the reference
    /// C API.
    #[default]
    Level,
    /// Reported when the condition newly arises (new data arrives, buffer
    /// space frees up); the caller must do I/O until it would block.
    Edge,
    /// Reported once, then disabled until the source is re-registered with
    /// [`Runtime::reregister`](crate::Runtime::reregister).
    Oneshot,
}
