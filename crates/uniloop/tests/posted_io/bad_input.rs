//! Refused posts (the buffer handed back), write limits, a closed fd.

use std::io::{self, ErrorKind};
use std::net::TcpStream;

use uniloop::{Backend, Events, Interest, OpId, Runtime, Token};

use crate::support::*;
use crate::util::*;

/// Posting on a source that is not registered: `NotFound`, and the buffer
/// comes back whole. `OpError` converts into `io::Error` for `?`, and its
/// `Debug` does not print the buffer.
pub(crate) fn post_on_an_unregistered_source(b: Backend) {
    fn via_question_mark(rt: &mut Runtime, s: &TcpStream) -> io::Result<OpId> {
        Ok(rt.post_read_kept(s, Vec::with_capacity(1))?)
    }
    let mut rt = rt(b);
    let (_client, server) = tcp_pair();
    let err = rt
        .post_read_kept(&server, read_buf(b"mine", 64))
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.error().kind()),
        (ErrorKind::NotFound, ErrorKind::NotFound)
    );
    let back = err.into_buf();
    assert_eq!(back, b"mine");
    assert!(back.capacity() >= 68);

    let err = rt.post_write_kept(&server, vec![7; 1 << 20]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!err.to_string().is_empty());
    let debug = format!("{err:?}");
    assert!(
        debug.len() < 500,
        "Debug prints the buffer: {} chars",
        debug.len()
    );
    let (e, back) = err.into_parts();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(back == vec![7; 1 << 20]);

    assert_eq!(
        via_question_mark(&mut rt, &server).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        rt.set_write_limit(&server, 10).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Deregistered is unregistered.
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    rt.deregister(&server).unwrap();
    let err = rt.post_write_kept(&server, b"w".to_vec()).unwrap_err();
    assert_eq!(
        (err.kind(), err.into_buf()),
        (ErrorKind::NotFound, b"w".to_vec())
    );
    let mut events = Events::with_capacity(16);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// One read at a time per source: a second is `AlreadyExists` (buffer
/// back), the first is unaffected, and once it has completed the next read
/// is accepted. Writes are not limited by a posted read.
pub(crate) fn second_read_while_one_is_posted(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let first = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    let err = rt
        .post_read_kept(&server, read_buf(b"second", 64))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.into_buf(), b"second");
    let w1 = rt.post_write_kept(&server, b"a".to_vec()).unwrap();
    let w2 = rt.post_write_kept(&server, b"b".to_vec()).unwrap();

    send(&client, b"x");
    let mut events = Events::with_capacity(16);
    let (d, seen) = wait_done(&mut rt, &mut events, first);
    assert_eq!((d.bytes, d.error), (1, None));
    assert_eq!(rt.take_io(first).unwrap().buf, b"x");
    let writes = wait_all(&mut rt, &mut events, &[w1, w2], &seen);
    assert_eq!(
        writes.iter().map(|d| d.op).collect::<Vec<_>>(),
        vec![w1, w2]
    );

    let next = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    assert_eq!(rt.cancel_io(next).unwrap().buf, b"");
    let again = rt.post_read_kept(&server, read_buf(b"", 64));
    assert!(again.is_ok(), "a cancelled read leaves room for the next");
}

/// A read buffer with no spare capacity: `InvalidInput`, the buffer comes
/// back as it was, and no read is left posted.
pub(crate) fn read_buffer_without_spare_capacity(b: Backend) {
    let mut rt = rt(b);
    let (_client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut full = read_buf(b"12345678", 0);
    while full.len() < full.capacity() {
        full.push(b'x');
    }
    for buf in [Vec::new(), full] {
        let before = buf.clone();
        let err = rt.post_read_kept(&server, buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.into_buf(), before);
    }
    assert!(rt.post_read_kept(&server, read_buf(b"", 8)).is_ok());
}

/// The write limit: a write is refused with `WouldBlock` (buffer back) when
/// what is queued and unwritten plus it would pass the limit; a write on a
/// source with nothing queued is accepted whatever its size. The limit is
/// set per source, or for new registrations through the builder.
pub(crate) fn write_limit_is_would_block(b: Backend) {
    const LEN: usize = 4 << 20;
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    rt.set_write_limit(&server, 1000).unwrap();
    let big = rt
        .post_write_kept(&server, payload(10, LEN))
        .expect("nothing queued: accepted over the limit");
    let err = rt.post_write_kept(&server, vec![1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert_eq!(err.into_buf(), vec![1]);
    // An empty write holds no data: the limit never refuses it, so "tell me
    // when everything is out" works behind a write over the limit too.
    let marker = rt
        .post_write_kept(&server, Vec::new())
        .expect("an empty write is never over the limit");
    let peer = reader(client, LEN + 1000);
    let mut events = Events::with_capacity(16);
    let done = wait_all(&mut rt, &mut events, &[big, marker], &[]);
    let got: Vec<_> = done.iter().map(|d| (d.op, d.bytes, d.error)).collect();
    assert_eq!(got, vec![(big, LEN, None), (marker, 0, None)], "in order");
    let up_to = rt.post_write_kept(&server, vec![2; 1000]).unwrap();
    wait_done(&mut rt, &mut events, up_to);
    let got = peer.join().unwrap();
    assert!(got[..LEN] == payload(10, LEN)[..] && got[LEN..] == [2; 1000]);

    // The builder's limit applies to new registrations.
    let mut rt = Runtime::builder()
        .backend(b)
        .write_limit(16)
        .build()
        .unwrap();
    let (_client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    rt.post_write_kept(&server, payload(11, LEN)).unwrap();
    let err = rt.post_write_kept(&server, vec![3; 17]).unwrap_err();
    assert_eq!(
        (err.kind(), err.into_buf()),
        (ErrorKind::WouldBlock, vec![3; 17])
    );
    rt.set_write_limit(&server, 2 * LEN).unwrap();
    assert!(
        rt.post_write_kept(&server, vec![3; 17]).is_ok(),
        "raised limit"
    );
}

/// A registered fd closed behind the runtime's back (a dup registered, then
/// closed without deregistering). As `post_read` documents, the OS's error
/// (`EBADF`) is not a refusal: the post is taken and the op completes with
/// the error, for a read and for a (non-empty) write alike.
#[cfg(unix)]
pub(crate) fn post_on_a_closed_fd(b: Backend) {
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
    let mut rt = rt(b);
    let (_client, server) = tcp_pair();
    let dup = server.as_fd().try_clone_to_owned().unwrap();
    let raw = dup.as_raw_fd();
    rt.register(&dup, Token(1), Interest::READABLE).unwrap();
    drop(dup);
    // SAFETY: `raw` is closed, against `borrow_raw`'s rule that it stay
    // open (and so against `post_read`'s); that is the point of the test.
    // The runtime only hands the number to syscalls, which fail with EBADF.
    // The number cannot be given to anything else meanwhile: this test runs
    // alone (`exclusive`, main.rs), so no other test in the process opens a
    // descriptor.
    let closed = unsafe { BorrowedFd::borrow_raw(raw) };
    let mut events = Events::with_capacity(16);
    // SAFETY: as for `closed`: the runtime's I/O through the closed number
    // fails with EBADF, and no other file can get it meanwhile.
    let read = unsafe { rt.post_read(&closed, read_buf(b"", 16)) }.unwrap();
    // SAFETY: as for the read.
    let write = unsafe { rt.post_write(&closed, b"data".to_vec()) }.unwrap();
    let got = wait_all(&mut rt, &mut events, &[read, write], &[]);
    for d in got {
        assert_eq!(d.token, Token(1));
        assert_eq!(d.bytes, 0, "{d:?}");
        assert!(d.error.is_some(), "no error on a closed fd: {d:?}");
        let f = rt.take_io(d.op).unwrap();
        assert_eq!(
            f.error.as_ref().and_then(io::Error::raw_os_error),
            Some(libc::EBADF)
        );
    }
    let _ = rt.deregister(&closed); // the OS may complain; it is gone anyway
    assert_eq!(rt.registered(), 0);
}
