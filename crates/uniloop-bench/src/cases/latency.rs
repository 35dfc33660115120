//! Wake latency: a ping-pong between two threads, each blocked in its own
//! loop. Thread A timestamps, wakes B; B wakes A back.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{check_stall, join, tokio_rt, STALL};
use crate::report::{Case, Role, Sample};
use crate::sys::{epoll_events, Epoll, EventFd};
use crate::Config;
use uniloop::Backend;

pub(crate) fn case(cfg: &Config) -> Case {
    let n: usize = cfg.pick(100_000, 10_000);
    let case = Case::new(
        "latency",
        "latency",
        "wake latency (ping-pong)",
        "round trips/s",
    )
    .method(&format!(
        "{n} round trips between two threads, each blocked in its own loop; \
             p50/p99 are round-trip times"
    ))
    .system("uniloop (wake)", Role::Subject, move || {
        uniloop_wake(n, Backend::Epoll)
    })
    .system(
        "uniloop (post, carries key + data)",
        Role::Uniloop,
        move || uniloop(n, Backend::Epoll),
    )
    .system("mio Waker", Role::Peer, move || mio_waker(n))
    .system("polling notify", Role::Peer, move || polling_notify(n))
    .system("tokio current_thread + mpsc", Role::Peer, move || {
        tokio_mpsc(n)
    })
    .system("raw eventfd + epoll", Role::Limit, move || raw(n))
    .goal_extra_at_most("raw eventfd + epoll", "p50", 1.1)
    .goal_at_least("raw eventfd + epoll", 1.0 / 1.1)
    .note(
        "goal \"within 1.1× raw eventfd\", checked two ways: p50 round-trip time ≤ 1.1× raw's, \
         and round trips/s ≥ raw ÷ 1.1 (the mean, more exposed to a noisy machine)",
    )
    .note("raw: edge-triggered eventfd, never read back: one write + one epoll_wait per hop")
    .note(
        "the uniloop row uses Poster::wake, like mio's Waker and the raw eventfd (no payload); \
         the post row carries a (key, data) completion each way through the user-space queue, \
         like tokio's mpsc",
    );
    if !Backend::Uring.is_available() {
        return case.note("no io_uring rows: io_uring is not permitted on this machine");
    }
    case.system("uniloop (wake, io_uring)", Role::Uniloop, move || {
        uniloop_wake(n, Backend::Uring)
    })
    .system("uniloop (post, io_uring)", Role::Uniloop, move || {
        uniloop(n, Backend::Uring)
    })
    .note("io_uring rows: the same loops on Backend::Uring, whose doorbell is the eventfd polled by a multishot POLL_ADD")
}

/// Round trips/s plus p50/p99 in µs from per-trip times.
fn summarize(mut rtts: Vec<Duration>, total: Duration) -> Sample {
    let n = rtts.len();
    rtts.sort_unstable();
    let p = |q: f64| rtts[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e6;
    Sample::new(n as f64 / total.as_secs_f64())
        .with("p50", p(0.50), "µs")
        .with("p99", p(0.99), "µs")
}

/// Runs `ping` n times on this thread, timing each call.
fn drive(n: usize, mut ping: impl FnMut(u64) -> io::Result<()>) -> io::Result<Sample> {
    let mut rtts = Vec::with_capacity(n);
    // A few untimed trips so both threads are running and parked.
    for i in 0..100 {
        ping(i)?;
    }
    let start = Instant::now();
    for i in 0..n as u64 {
        let t = Instant::now();
        ping(i)?;
        rtts.push(t.elapsed());
    }
    Ok(summarize(rtts, start.elapsed()))
}

const STOP: u64 = u64::MAX;

fn uniloop(n: usize, backend: Backend) -> io::Result<Sample> {
    use uniloop::{Event, Events, Runtime};
    let mut a = Runtime::builder().backend(backend).build()?;
    let mut b = Runtime::builder().backend(backend).build()?;
    let to_a = a.poster();
    let to_b = b.poster();
    let echo = thread::spawn(move || -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        loop {
            b.wait(&mut events, None)?;
            for ev in &events {
                if let Event::Completion { data, .. } = *ev {
                    if data == STOP {
                        return Ok(());
                    }
                    to_a.post(1, data)?;
                }
            }
        }
    });
    let mut events = Events::with_capacity(64);
    let start = Instant::now();
    let r = drive(n, |i| {
        to_b.post(1, i)?;
        loop {
            a.wait(&mut events, Some(Duration::from_secs(5)))?;
            if events
                .iter()
                .any(|e| matches!(e, Event::Completion { data, .. } if *data == i))
            {
                return Ok(());
            }
            check_stall(start, STALL, "uniloop")?;
        }
    });
    to_b.post(1, STOP)?;
    join(echo)?;
    r
}

fn uniloop_wake(n: usize, backend: Backend) -> io::Result<Sample> {
    use uniloop::{Event, Events, Runtime};
    let mut a = Runtime::builder().backend(backend).build()?;
    let mut b = Runtime::builder().backend(backend).build()?;
    let to_a = a.poster();
    let to_b = b.poster();
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = stop.clone();
        thread::spawn(move || -> io::Result<()> {
            let mut events = Events::with_capacity(64);
            loop {
                b.wait(&mut events, None)?;
                if stop.load(Ordering::Acquire) {
                    return Ok(());
                }
                if events.iter().any(|e| *e == Event::Wake) {
                    to_a.wake()?;
                }
            }
        })
    };
    let mut events = Events::with_capacity(64);
    let start = Instant::now();
    let r = drive(n, |_| {
        to_b.wake()?;
        loop {
            a.wait(&mut events, Some(Duration::from_secs(5)))?;
            if events.iter().any(|e| *e == Event::Wake) {
                return Ok(());
            }
            check_stall(start, STALL, "uniloop")?;
        }
    });
    stop.store(true, Ordering::Release);
    to_b.wake()?;
    join(echo)?;
    r
}

fn mio_waker(n: usize) -> io::Result<Sample> {
    const WAKE: mio::Token = mio::Token(0);
    let mut poll_a = mio::Poll::new()?;
    let mut poll_b = mio::Poll::new()?;
    let wake_a = mio::Waker::new(poll_a.registry(), WAKE)?;
    let wake_b = Arc::new(mio::Waker::new(poll_b.registry(), WAKE)?);
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = stop.clone();
        thread::spawn(move || -> io::Result<()> {
            let mut events = mio::Events::with_capacity(64);
            loop {
                poll_b.poll(&mut events, None)?;
                if stop.load(Ordering::Acquire) {
                    return Ok(());
                }
                if events.iter().any(|e| e.token() == WAKE) {
                    wake_a.wake()?;
                }
            }
        })
    };
    let mut events = mio::Events::with_capacity(64);
    let start = Instant::now();
    let r = drive(n, |_| {
        wake_b.wake()?;
        loop {
            poll_a.poll(&mut events, Some(Duration::from_secs(5)))?;
            if events.iter().any(|e| e.token() == WAKE) {
                return Ok(());
            }
            check_stall(start, STALL, "mio")?;
        }
    });
    stop.store(true, Ordering::Release);
    wake_b.wake()?;
    join(echo)?;
    r
}

fn polling_notify(n: usize) -> io::Result<Sample> {
    let pa = Arc::new(polling::Poller::new()?);
    let pb = Arc::new(polling::Poller::new()?);
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let (pa, pb, stop) = (pa.clone(), pb.clone(), stop.clone());
        thread::spawn(move || -> io::Result<()> {
            let mut events = polling::Events::new();
            loop {
                events.clear();
                pb.wait(&mut events, None)?;
                if stop.load(Ordering::Acquire) {
                    return Ok(());
                }
                pa.notify()?;
            }
        })
    };
    let mut events = polling::Events::new();
    let r = drive(n, |_| {
        pb.notify()?;
        events.clear();
        // A notification is the only thing that ends this wait.
        pa.wait(&mut events, Some(Duration::from_secs(5)))?;
        Ok(())
    });
    stop.store(true, Ordering::Release);
    pb.notify()?;
    join(echo)?;
    r
}

fn tokio_mpsc(n: usize) -> io::Result<Sample> {
    use tokio::sync::mpsc::unbounded_channel;
    let (to_b, mut b_rx) = unbounded_channel::<u64>();
    let (to_a, mut a_rx) = unbounded_channel::<u64>();
    let echo = thread::spawn(move || -> io::Result<()> {
        let rt = tokio_rt()?;
        rt.block_on(async move {
            while let Some(v) = b_rx.recv().await {
                if to_a.send(v).is_err() {
                    break;
                }
            }
        });
        Ok(())
    });
    let rt = tokio_rt()?;
    let r = rt.block_on(async {
        let mut rtts = Vec::with_capacity(n);
        for i in 0..100 {
            to_b.send(i).map_err(io::Error::other)?;
            a_rx.recv().await;
        }
        let start = Instant::now();
        for i in 0..n as u64 {
            let t = Instant::now();
            to_b.send(i).map_err(io::Error::other)?;
            if a_rx.recv().await != Some(i) {
                return Err(io::Error::other("tokio: lost a pong"));
            }
            rtts.push(t.elapsed());
        }
        Ok(summarize(rtts, start.elapsed()))
    });
    drop(to_b);
    join(echo)?;
    r
}

/// The cheapest correct hand-written form: an edge-triggered eventfd per
/// thread, never read back (each write queues a new edge), so one hop is
/// one `write` and one `epoll_wait`.
const EDGE: u32 = (libc::EPOLLIN | libc::EPOLLET) as u32;

fn raw(n: usize) -> io::Result<Sample> {
    let efd_a = EventFd::new(true)?;
    let efd_b = Arc::new(EventFd::new(true)?);
    let ep_a = Epoll::new()?;
    ep_a.add(efd_a.fd(), 0, EDGE)?;
    let efd_a = Arc::new(efd_a);
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let (efd_a, efd_b, stop) = (efd_a.clone(), efd_b.clone(), stop.clone());
        thread::spawn(move || -> io::Result<()> {
            let ep_b = Epoll::new()?;
            ep_b.add(efd_b.fd(), 0, EDGE)?;
            let mut buf = epoll_events(8);
            loop {
                ep_b.wait(&mut buf, -1)?;
                if stop.load(Ordering::Acquire) {
                    return Ok(());
                }
                efd_a.write(1)?;
            }
        })
    };
    let mut buf = epoll_events(8);
    let r = drive(n, |_| {
        efd_b.write(1)?;
        loop {
            if ep_a.wait(&mut buf, 5000)? > 0 {
                return Ok(());
            }
        }
    });
    stop.store(true, Ordering::Release);
    efd_b.write(1)?;
    join(echo)?;
    r
}
