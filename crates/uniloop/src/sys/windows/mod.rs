//! Windows backend: IOCP, with socket readiness from AFD poll requests.

use std::io;
use std::os::windows::io::{AsRawSocket, AsSocket, BorrowedSocket, RawSocket};

use crate::Backend;

mod afd;
pub(crate) mod console;
mod iocp;
mod port;

pub(crate) use self::port::Waker;

/// What [`Runtime::register`](crate::Runtime::register) accepts: anything
/// with a file descriptor (`AsFd`) on Unix, anything with a socket
/// (`AsSocket`) on Windows.
///
/// Implemented for every such type; it cannot be implemented by hand.
pub trait AsSource: private::Sealed {
    #[doc(hidden)]
    fn as_source(&self) -> Source<'_>;
}

impl<T: AsSocket + ?Sized> AsSource for T {
    fn as_source(&self) -> Source<'_> {
        self.as_socket()
    }
}

mod private {
    pub trait Sealed {}
    impl<T: std::os::windows::io::AsSocket + ?Sized> Sealed for T {}
}

pub(crate) type Source<'a> = BorrowedSocket<'a>;
pub(crate) type RawSource = RawSocket;

pub(crate) fn raw_source(source: Source<'_>) -> RawSource {
    source.as_raw_socket()
}

pub(crate) fn default_backend() -> Backend {
    Backend::Iocp
}

pub(crate) fn is_available(backend: Backend) -> bool {
    backend == Backend::Iocp
}

/// The one selector Windows has; a newtype so the runtime sees the same
/// `Selector::new(Backend)` as on Unix.
#[derive(Debug)]
pub(crate) struct Selector(iocp::Selector);

impl Selector {
    pub(crate) fn new(backend: Backend) -> io::Result<(Selector, Waker)> {
        if backend != Backend::Iocp {
            return Err(super::unsupported(&format!(
                "the {backend:?} backend is not available on this platform"
            )));
        }
        let waker = Waker::new()?;
        Ok((Selector(iocp::Selector::new(&waker)), waker))
    }

    pub(crate) fn register(
        &mut self,
        socket: Source<'_>,
        slot: u64,
        interest: crate::Interest,
        trigger: crate::Trigger,
    ) -> io::Result<()> {
        self.0.register(socket, slot, interest, trigger)
    }

    pub(crate) fn reregister(
        &mut self,
        socket: Source<'_>,
        slot: u64,
        interest: crate::Interest,
        trigger: crate::Trigger,
    ) -> io::Result<()> {
        self.0.reregister(socket, slot, interest, trigger)
    }

    pub(crate) fn deregister(&mut self, socket: Source<'_>) -> io::Result<()> {
        self.0.deregister(socket)
    }

    pub(crate) fn select(
        &mut self,
        out: &mut Vec<(u64, crate::Readiness)>,
        max: usize,
        timeout: Option<std::time::Duration>,
    ) -> io::Result<bool> {
        self.0.select(out, max, timeout)
    }
}
