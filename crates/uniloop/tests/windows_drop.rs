//! Dropping a runtime with AFD polls in flight cancels them, waits for
//! their packets and closes every handle. The only test in this binary: it
//! counts the process's handles, which concurrent tests would disturb.
#![cfg(windows)]

mod util;

use std::io;
use std::net::UdpSocket;
use std::os::windows::io::AsRawSocket;

use uniloop::{Events, Interest, Runtime, Token};
use util::*;

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

#[test]
fn drop_runtime_with_polls_pending_leaks_no_handles() {
    fn round() {
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
    }
    // The first round warms up whatever Winsock and the test harness keep.
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
