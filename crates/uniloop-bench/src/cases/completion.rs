//! Completion throughput: one producer thread posts N `(key, data)` items and
//! the loop thread takes them through its blocking wait.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use super::{check_stall, join, tokio_rt, STALL};
use crate::report::{Case, Role, Sample};
use crate::sys::{epoll_events, Epoll, EventFd};
use crate::Config;

const KEY: u64 = 7;

pub(crate) fn case(cfg: &Config) -> Case {
    let n: u64 = cfg.pick(5_000_000, 500_000);
    Case::new("completion", "completion", "completion throughput", "items/s")
        .method(&format!(
            "one producer thread posts {n} (key, data) items; the loop thread takes them through its blocking wait \
             (time from the first post to the last item taken)"
        ))
        .system("uniloop", Role::Subject, move || uniloop(n))
        .system("mio Waker + crossbeam (wake per msg)", Role::Peer, move || {
            mio_crossbeam(n, false)
        })
        .system("mio Waker + crossbeam (wake if empty)", Role::Peer, move || {
            mio_crossbeam(n, true)
        })
        .system("polling notify + concurrent-queue", Role::Peer, move || {
            polling_cq(n)
        })
        .system("tokio current_thread + unbounded mpsc", Role::Peer, move || {
            tokio_mpsc(n)
        })
        .system("std mpsc + eventfd", Role::Peer, move || std_eventfd(n))
        .system("reference C design (eventfd per post)", Role::Peer, move || {
            reference_c(n)
        })
        .system("crossbeam SegQueue, no wake", Role::Limit, move || {
            segqueue(n)
        })
        .goal_at_least("mio Waker + crossbeam (wake per msg)", 2.0)
        .goal_at_least("mio Waker + crossbeam (wake if empty)", 2.0)
        .goal_at_least("tokio current_thread + unbounded mpsc", 1.0)
        .goal_at_least("crossbeam SegQueue, no wake", 1.0)
        .note(
            "\"wake if empty\": the producer wakes only when its send made the channel length 1 \
             (single producer, so no wake-up is lost).",
        )
        .note(
            "reference C design: each post writes (key<<32)|data into one eventfd and the loop reads \
             once per epoll event, so posts are summed — it loses items by design; \
             'delivered' counts the events the loop actually saw.",
        )
}

fn rate(n: u64, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

fn uniloop(n: u64) -> io::Result<Sample> {
    use uniloop::{Event, Events, Runtime};
    let mut rt = Runtime::new()?;
    let poster = rt.poster();
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    let producer = thread::spawn(move || -> io::Result<()> {
        for i in 0..n {
            poster.post(KEY, i)?;
        }
        Ok(())
    });
    let mut next = 0;
    while next < n {
        rt.wait(&mut events, Some(Duration::from_secs(1)))?;
        for ev in &events {
            if let Event::Completion { key: KEY, data } = *ev {
                if data != next {
                    return Err(io::Error::other(format!("got {data}, expected {next}")));
                }
                next += 1;
            }
        }
        check_stall(start, STALL, "uniloop")?;
    }
    let r = rate(n, start);
    join(producer)?;
    Ok(Sample::new(r))
}

const WAKE: mio::Token = mio::Token(0);

fn mio_crossbeam(n: u64, only_if_empty: bool) -> io::Result<Sample> {
    let mut poll = mio::Poll::new()?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
    let (tx, rx) = crossbeam_channel::unbounded::<(u64, u64)>();
    let mut events = mio::Events::with_capacity(1024);
    let start = Instant::now();
    let producer = thread::spawn(move || -> io::Result<()> {
        for i in 0..n {
            tx.send((KEY, i)).map_err(io::Error::other)?;
            if !only_if_empty || tx.len() == 1 {
                waker.wake()?;
            }
        }
        Ok(())
    });
    let mut got = 0;
    loop {
        while let Ok((_key, _data)) = rx.try_recv() {
            got += 1;
        }
        if got == n {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_secs(1)))?;
        check_stall(start, STALL, "mio")?;
    }
    let r = rate(n, start);
    join(producer)?;
    Ok(Sample::new(r))
}

fn polling_cq(n: u64) -> io::Result<Sample> {
    let poller = Arc::new(polling::Poller::new()?);
    let queue = Arc::new(concurrent_queue::ConcurrentQueue::<(u64, u64)>::unbounded());
    let mut events = polling::Events::new();
    let start = Instant::now();
    let producer = {
        let poller = poller.clone();
        let queue = queue.clone();
        thread::spawn(move || -> io::Result<()> {
            for i in 0..n {
                queue.push((KEY, i)).map_err(io::Error::other)?;
                poller.notify()?;
            }
            Ok(())
        })
    };
    let mut got = 0;
    loop {
        while let Ok((_key, _data)) = queue.pop() {
            got += 1;
        }
        if got == n {
            break;
        }
        events.clear();
        poller.wait(&mut events, Some(Duration::from_secs(1)))?;
        check_stall(start, STALL, "polling")?;
    }
    let r = rate(n, start);
    join(producer)?;
    Ok(Sample::new(r))
}

fn tokio_mpsc(n: u64) -> io::Result<Sample> {
    let rt = tokio_rt()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let start = Instant::now();
    let producer = thread::spawn(move || -> io::Result<()> {
        for i in 0..n {
            tx.send((KEY, i)).map_err(io::Error::other)?;
        }
        Ok(())
    });
    let got = rt.block_on(async {
        let mut got = 0;
        while let Some((_key, _data)) = rx.recv().await {
            got += 1;
        }
        got
    });
    let r = rate(n, start);
    join(producer)?;
    if got != n {
        return Err(io::Error::other(format!("tokio: got {got} of {n}")));
    }
    Ok(Sample::new(r))
}

fn std_eventfd(n: u64) -> io::Result<Sample> {
    let efd = Arc::new(EventFd::new(true)?);
    let ep = Epoll::new()?;
    ep.add(efd.fd(), 0, libc::EPOLLIN as u32)?;
    let (tx, rx) = mpsc::channel::<(u64, u64)>();
    let mut buf = epoll_events(64);
    let start = Instant::now();
    let producer = {
        let efd = efd.clone();
        thread::spawn(move || -> io::Result<()> {
            for i in 0..n {
                tx.send((KEY, i)).map_err(io::Error::other)?;
                efd.write(1)?;
            }
            Ok(())
        })
    };
    let mut got = 0;
    loop {
        while let Ok((_key, _data)) = rx.try_recv() {
            got += 1;
        }
        if got == n {
            break;
        }
        ep.wait(&mut buf, 1000)?;
        efd.read()?;
        check_stall(start, STALL, "std mpsc")?;
    }
    let r = rate(n, start);
    join(producer)?;
    Ok(Sample::new(r))
}

fn reference_c(n: u64) -> io::Result<Sample> {
    // A blocking eventfd, as the C runtime used: a full counter blocks the
    // poster rather than failing.
    let efd = Arc::new(EventFd::new(false)?);
    let ep = Epoll::new()?;
    ep.add(efd.fd(), 0, libc::EPOLLIN as u32)?;
    let done = Arc::new(AtomicBool::new(false));
    let mut buf = epoll_events(64);
    let start = Instant::now();
    let producer = {
        let efd = efd.clone();
        let done = done.clone();
        thread::spawn(move || -> io::Result<()> {
            for i in 0..n {
                efd.write((KEY << 32) | (i & 0xffff_ffff))?;
            }
            done.store(true, Ordering::Release);
            Ok(())
        })
    };
    let mut delivered = 0u64;
    loop {
        let finished = done.load(Ordering::Acquire);
        let ready = ep.wait(&mut buf, if finished { 0 } else { 10 })?;
        for _ in 0..ready {
            efd.read()?;
            delivered += 1;
        }
        if finished && ready == 0 {
            break;
        }
        check_stall(start, STALL, "reference C")?;
    }
    let r = rate(n, start);
    join(producer)?;
    Ok(Sample::new(r).with("delivered", delivered as f64, "events"))
}

fn segqueue(n: u64) -> io::Result<Sample> {
    let queue = Arc::new(crossbeam_queue::SegQueue::<(u64, u64)>::new());
    let start = Instant::now();
    let producer = {
        let queue = queue.clone();
        thread::spawn(move || -> io::Result<()> {
            for i in 0..n {
                queue.push((KEY, i));
            }
            Ok(())
        })
    };
    let mut got = 0;
    let mut spins = 0u64;
    while got < n {
        match queue.pop() {
            Some(_) => got += 1,
            None => {
                spins += 1;
                if spins % 4096 == 0 {
                    check_stall(start, STALL, "SegQueue")?;
                }
                std::hint::spin_loop();
            }
        }
    }
    let r = rate(n, start);
    join(producer)?;
    Ok(Sample::new(r))
}
