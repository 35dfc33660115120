//! Contract rules that need Unix facilities to provoke: signals (EINTR) and
//! raw file descriptors. Run against every Unix backend.
#![cfg(unix)]

mod util;

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use uniloop::{Backend, Events, Interest, Runtime, Token};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// `O_NONBLOCK` on a pipe end (std has no `set_nonblocking` for pipes).
fn set_nonblocking(fd: &impl std::os::fd::AsRawFd) {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on an fd the caller owns; no memory involved.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
    }
}

fn backends() -> impl Iterator<Item = Backend> {
    Backend::ALL.into_iter().filter(|b| b.is_available())
}

/// A signal interrupts the OS wait; `wait` must resume with the remaining
/// time instead of returning early.
#[test]
fn eintr_resumes_with_remaining_time() {
    // SAFETY: installs a handler that only touches an atomic; no SA_RESTART,
    // so epoll_wait/poll really fail with EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    for b in backends() {
        let before = SIGNALS.load(Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let done2 = done.clone();
        let waiter = std::thread::spawn(move || {
            let mut rt = Runtime::builder().backend(b).build().unwrap();
            let mut events = Events::with_capacity(4);
            // SAFETY: pthread_self has no preconditions.
            tx.send(unsafe { libc::pthread_self() } as usize).unwrap();
            let start = Instant::now();
            let n = rt
                .wait(&mut events, Some(Duration::from_millis(300)))
                .unwrap();
            done2.store(true, Ordering::Release);
            (n, start.elapsed())
        });
        let thread = rx.recv().unwrap() as libc::pthread_t;
        let mut sent = 0u32;
        while !done.load(Ordering::Acquire) && sent < 100_000 {
            // SAFETY: the waiter thread is alive until `done` is set, and it
            // sets `done` before exiting.
            unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
            sent += 1;
            std::thread::yield_now();
        }
        let (n, elapsed) = waiter.join().unwrap();
        assert_eq!(n, 0, "{b:?}");
        assert!(
            elapsed >= Duration::from_millis(300),
            "{b:?}: returned after {elapsed:?}"
        );
        assert!(
            SIGNALS.load(Ordering::Relaxed) > before,
            "{b:?}: no signal was delivered"
        );
    }
}

#[test]
fn bad_fd_is_an_error_not_a_panic() {
    for b in backends() {
        let mut rt = Runtime::builder().backend(b).build().unwrap();
        // SAFETY: nothing reads or closes through this fd; the number is far
        // above the fd limit, so no other test can have it open.
        let bogus = unsafe { BorrowedFd::borrow_raw(999_999) };
        let err = rt
            .register(&bogus, Token(1), Interest::READABLE)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{b:?}: {err}");
        assert_eq!(
            rt.registered(),
            0,
            "{b:?}: a failed registration leaves nothing behind"
        );
    }
}

#[test]
fn stdin_pipe_is_registrable() {
    for b in backends() {
        let mut rt = Runtime::builder().backend(b).build().unwrap();
        let (r, w) = std::io::pipe().unwrap();
        set_nonblocking(&r);
        rt.register(&r, Token(4), Interest::READABLE).unwrap();
        use std::io::Write;
        (&w).write_all(b"line\n").unwrap();
        let mut events = Events::with_capacity(4);
        util::wait_until(&mut rt, &mut events, |e| {
            matches!(
                e,
                uniloop::Event::Io {
                    token: Token(4),
                    ..
                }
            )
        });
        drop(w);
    }
}

/// A blocking socket (what `TcpListener::accept` returns) is refused:
/// accepted, the first read past the data would stall the loop.
#[test]
fn a_blocking_socket_is_refused_with_advice() {
    for b in backends() {
        let mut rt = Runtime::builder().backend(b).build().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let err = rt
            .register(&conn, Token(1), Interest::READABLE)
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{b:?}: {err}");
        assert!(
            err.to_string().contains("set_nonblocking(true)"),
            "{b:?}: {err}"
        );
        assert_eq!(rt.registered(), 0, "{b:?}");
        conn.set_nonblocking(true).unwrap();
        rt.register(&conn, Token(1), Interest::READABLE).unwrap();
    }
}

/// `Builder::return_on_signal` (the C API's reference semantics): a signal
/// ends a wait that would block forever, with no events.
#[test]
fn return_on_signal_ends_the_wait() {
    // SAFETY: as in eintr_resumes_with_remaining_time.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
    }
    for b in backends() {
        let (tx, rx) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let done2 = done.clone();
        let waiter = std::thread::spawn(move || {
            let mut rt = Runtime::builder()
                .backend(b)
                .return_on_signal(true)
                .build()
                .unwrap();
            let mut events = Events::with_capacity(4);
            // SAFETY: pthread_self has no preconditions.
            tx.send(unsafe { libc::pthread_self() } as usize).unwrap();
            let n = rt.wait(&mut events, None).unwrap();
            done2.store(true, Ordering::Release);
            n
        });
        let thread = rx.recv().unwrap() as libc::pthread_t;
        while !done.load(Ordering::Acquire) {
            // SAFETY: the waiter thread is alive until `done` is set.
            unsafe { libc::pthread_kill(thread, libc::SIGUSR2) };
            std::thread::yield_now();
        }
        assert_eq!(waiter.join().unwrap(), 0, "{b:?}");
    }
}

/// `Builder::blocking_sources` (the C API: the reference took any fd): a
/// blocking socket registers and reports readiness.
#[test]
fn blocking_sources_accepts_a_blocking_socket() {
    use std::io::Write;
    for b in backends() {
        let mut rt = Runtime::builder()
            .backend(b)
            .blocking_sources(true)
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        rt.register(&conn, Token(1), Interest::READABLE).unwrap();
        client.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(4);
        rt.wait(&mut events, Some(Duration::from_secs(10))).unwrap();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, uniloop::Event::Io { token: Token(1), ready } if ready.is_readable())),
            "{b:?}: {events:?}"
        );
    }
}
