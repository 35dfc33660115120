//! Piled-up completions: what it costs to deliver and take back each of
//! many finished posted writes on one source, with 1,000 piled up and with
//! 64,000. The cost per event should not depend on how many are waiting.
//!
//! The writes (8 bytes each) go to a loopback TCP connection with a large
//! send buffer whose peer a thread drains, so a runtime that writes at once
//! finishes nearly all of them inside `post_write` itself; then the timed
//! part: `wait` calls and `take_io` until every write's `IoDone` has been
//! delivered and taken (what was not written yet is written there).

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;
use uniloop::{Backend, Event, Events, Interest, Runtime, Token};

use super::join;
use crate::report::{Case, Role, Sample};
use crate::sys::thread_cpu_time;
use crate::Config;

const WRITE: usize = 8;

fn name(n: usize) -> String {
    format!("uniloop, {} piled up", thousands(n))
}

fn thousands(n: usize) -> String {
    if n >= 1000 && n % 1000 == 0 {
        format!("{},000", n / 1000)
    } else {
        n.to_string()
    }
}

pub(crate) fn case(cfg: &Config) -> Case {
    let small = 1000;
    let large = cfg.pick(64_000, 16_000);
    let small_name = name(small);
    Case::new(
        "pileup",
        "pileup",
        &format!(
            "piled-up completions, {} vs {} on one source",
            thousands(small),
            thousands(large)
        ),
        "ns CPU/event",
    )
    .method(&format!(
        "N {WRITE}-byte post_writes on one loopback TCP socket (send buffer enlarged, peer drained by a thread), \
         then wait (Events of 1024) + take_io until all N IoDones are delivered and taken (writes that did not \
         go out inside post_write go out during these waits); figure: the loop thread's CPU time for that \
         drain ÷ N. The {small} row repeats post-and-drain {} times per repetition \
         (same event count as the {large} row). ratio = {large} ÷ {small} per event.",
        large / small
    ))
    .lower_is_better()
    .system(&name(large), Role::Subject, move || {
        drain(large, 1, Backend::Epoll)
    })
    .system(&small_name, Role::Uniloop, move || {
        drain(small, large / small, Backend::Epoll)
    })
    .goal_at_most(&small_name, 1.5)
}

/// Posts `n` writes and drains their completions, `times` times over;
/// the drains' CPU time ÷ events.
fn drain(n: usize, times: usize, backend: Backend) -> io::Result<Sample> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut peer = TcpStream::connect(listener.local_addr()?)?;
    let (conn, _) = listener.accept()?;
    conn.set_nonblocking(true)?;
    let sock = SockRef::from(&conn);
    sock.set_send_buffer_size(n * WRITE * 4)?;
    let total = n * times * WRITE;
    let reader = thread::spawn(move || -> io::Result<usize> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        loop {
            match peer.read(&mut buf)? {
                0 => return Ok(got),
                k => got += k,
            }
        }
    });
    let r = (|| -> io::Result<(Duration, Duration)> {
        let mut rt = Runtime::builder()
            .backend(backend)
            // Far above what the writes cost, whatever the runtime
            // counts per operation besides the payload.
            .write_limit(1 << 30)
            .build()?;
        rt.register(&conn, Token(1), Interest::READABLE)?;
        let mut events = Events::with_capacity(1024);
        let (mut cpu, mut wall) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..times {
            for _ in 0..n {
                // SAFETY: `conn` outlives the runtime.
                unsafe { rt.post_write(&conn, vec![0x5a; WRITE]) }?;
            }
            let (c0, t0) = (thread_cpu_time(), Instant::now());
            let mut left = n;
            while left > 0 {
                if rt.wait(&mut events, Some(Duration::from_secs(30)))? == 0 {
                    return Err(io::Error::other(format!(
                        "pileup: {left} of {n} writes not delivered after 30 s"
                    )));
                }
                for ev in &events {
                    if let Event::IoDone { op, .. } = *ev {
                        let done = rt
                            .take_io(op)
                            .ok_or_else(|| io::Error::other("pileup: IoDone without a result"))?;
                        if let Some(e) = done.error {
                            return Err(e);
                        }
                        if done.bytes != WRITE {
                            return Err(io::Error::other("pileup: short write completion"));
                        }
                        left -= 1;
                    }
                }
            }
            cpu += thread_cpu_time() - c0;
            wall += t0.elapsed();
        }
        rt.deregister(&conn)?;
        Ok((cpu, wall))
    })();
    drop(conn);
    let got = join(reader)?;
    let (cpu, wall) = r?;
    if got != total {
        return Err(io::Error::other(format!(
            "pileup: the peer read {got} bytes, not {total}"
        )));
    }
    let events = (n * times) as f64;
    Ok(Sample::new(cpu.as_nanos() as f64 / events).with(
        "wall/event",
        wall.as_nanos() as f64 / events,
        "ns",
    ))
}
