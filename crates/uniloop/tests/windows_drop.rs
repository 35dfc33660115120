//! Dropping a runtime with AFD polls in flight cancels them, waits for
//! their packets and closes every handle; so does dropping it (or
//! deregistering sources) with posted reads and writes in flight. The tests
//! count the process's handles, which concurrent tests would disturb: they
//! take turns through [`ALONE`].
#![cfg(windows)]

mod util;

use std::io;
use std::net::UdpSocket;
use std::os::windows::io::AsRawSocket;
use std::sync::{Mutex, MutexGuard, PoisonError};

use uniloop::{Event, Events, Interest, Runtime, Token};
use util::*;

/// Held by each test for its whole run, so no two count handles at once.
static ALONE: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Handles open in this process (sockets and AFD handles are handles).
/// Wine answers 0; see [`handle_high_water`].
fn handle_count() -> u32 {
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};
    let mut n = 0;
    // SAFETY: the pseudo-handle needs no closing; `n` is a valid out-pointer.
    let ok = unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut n) };
    assert_ne!(
        ok,
        0,
        "GetProcessHandleCount: {}",
        io::Error::last_os_error()
    );
    n
}

/// The largest of 256 fresh handle values. Wine hands out the lowest free
/// handle slot, so every handle leaked below the probe pushes this up by
/// one slot (4); it is the leak check that works under Wine.
fn handle_high_water() -> u64 {
    let probes: Vec<UdpSocket> = (0..256)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    probes.iter().map(|s| s.as_raw_socket()).max().unwrap()
}

/// Runs `round` once to warm up whatever Winsock and the test harness keep,
/// then 20 times, and checks that the handles did not grow with them.
fn assert_no_handle_leak(round: fn()) {
    round();
    let (before, before_high) = (handle_count(), handle_high_water());
    for _ in 0..20 {
        round();
    }
    let (after, after_high) = (handle_count(), handle_high_water());
    assert!(
        after <= before + 8,
        "handles grew from {before} to {after} over 20 runtimes"
    );
    assert!(
        after_high <= before_high + 4 * 8,
        "handle values grew from {before_high} to {after_high} over 20 runtimes"
    );
}

#[test]
fn drop_runtime_with_polls_pending_leaks_no_handles() {
    let _alone = alone();
    assert_no_handle_leak(|| {
        let mut rt = Runtime::new().unwrap();
        let pairs: Vec<_> = (0..40).map(|_| tcp_pair()).collect();
        for (i, (_, server)) in pairs.iter().enumerate() {
            rt.register(server, Token(i as u64), Interest::READABLE)
                .unwrap();
        }
        let mut events = Events::with_capacity(64);
        // Issue every poll; nothing is readable, so all stay in flight.
        assert_eq!(poll_now(&mut rt, &mut events), vec![]);
        // Some deregistered with their poll in flight, some data arriving.
        for (_, server) in &pairs[..10] {
            rt.deregister(server).unwrap();
        }
        send(&pairs[20].0, b"x");
        let poster = rt.poster();
        drop(rt);
        // The doorbell outlives the runtime: ringing it is harmless.
        assert!(poster.wake().is_err());
        drop(pairs);
    });
}

/// Posted reads on every source and writes that cannot finish (1 MiB to
/// peers that read nothing, through small kernel buffers, with another
/// write queued behind), then: some sources deregistered with all that in
/// flight, one op cancelled, one read completed and left untaken, and the
/// runtime dropped with the rest.
#[test]
fn drop_runtime_with_posted_io_in_flight_leaks_no_handles() {
    let _alone = alone();
    assert_no_handle_leak(|| {
        const BIG: usize = 1 << 20;
        let mut rt = Runtime::new().unwrap();
        let pairs: Vec<_> = (0..20).map(|_| tcp_pair()).collect();
        let mut reads = Vec::new();
        for (i, (client, server)) in pairs.iter().enumerate() {
            for s in [client, server] {
                let s = socket2::SockRef::from(s);
                s.set_send_buffer_size(64 << 10).unwrap();
                s.set_recv_buffer_size(64 << 10).unwrap();
            }
            rt.register(server, Token(i as u64), Interest::READABLE)
                .unwrap();
            // SAFETY: `pairs` is dropped after the runtime.
            reads.push(unsafe { rt.post_read(server, Vec::with_capacity(4096)) }.unwrap());
        }
        for (_, server) in &pairs[..10] {
            rt.set_write_limit(server, 2 * BIG).unwrap();
            // SAFETY: `pairs` is dropped after the runtime.
            unsafe { rt.post_write(server, vec![0x5a; BIG]) }.unwrap();
            // SAFETY: `pairs` is dropped after the runtime.
            unsafe { rt.post_write(server, b"queued".to_vec()) }.unwrap();
        }
        let mut events = Events::with_capacity(64);
        // Every source's poll is issued; one read completes.
        assert_eq!(poll_now(&mut rt, &mut events), vec![]);
        send(&pairs[15].0, b"x");
        let done = reads[15];
        wait_until(
            &mut rt,
            &mut events,
            |e| matches!(e, Event::IoDone { op, .. } if *op == done),
        );
        for (_, server) in pairs[..5].iter().chain(&pairs[10..13]) {
            rt.deregister(server).unwrap();
        }
        assert!(rt.cancel_io(reads[16]).is_some());
        let poster = rt.poster();
        drop(rt);
        assert!(poster.wake().is_err());
        drop(pairs);
    });
}
