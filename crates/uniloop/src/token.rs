//! [`Token`]: the caller's name for a registered source. A vocabulary
//! module: it uses nothing else of the crate.

/// The caller's 64-bit name for a registered source, returned unchanged in
/// [`Event::Io`](crate::Event::Io).
///
/// Every value is usable, `u64::MAX` included: the runtime never mixes a
/// token with a file descriptor or with its own bookkeeping.
///
/// # Examples
///
/// ```
/// use uniloop::Token;
/// let t = Token(u64::MAX);
/// assert_eq!(t.0, u64::MAX);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);
