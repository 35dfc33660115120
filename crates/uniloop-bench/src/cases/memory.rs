//! Memory: heap bytes per registered socket, per pending completion and per
//! pending timer, counted by the benchmark's global allocator (user space
//! only: the kernel's own epoll entries are not counted for anyone).

use std::io;
use std::net::UdpSocket;

use super::tokio_rt;
use crate::alloc::measure;
use crate::report::{Case, Role, Sample};

const SOCKETS: usize = 10_000;
const ITEMS: usize = 100_000;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new("memory", "memory-socket", "memory per registered socket", "bytes")
            .method(&format!(
                "net heap bytes allocated while registering {SOCKETS} UDP sockets, ÷ {SOCKETS}"
            ))
            .lower_is_better()
            .reps(1)
            .system("uniloop epoll", Role::Subject, uniloop_sockets_epoll)
            .system("uniloop poll", Role::Uniloop, uniloop_sockets_poll)
            .system("mio", Role::Peer, mio_sockets)
            .system("tokio UdpSocket::from_std", Role::Peer, tokio_sockets)
            .note("mio keeps the token in the kernel's epoll entry and allocates nothing per socket")
            .note("deterministic: one repetition"),
        Case::new(
            "memory",
            "memory-completion",
            "memory per pending completion",
            "bytes",
        )
        .method(&format!(
            "net heap bytes after posting {ITEMS} (key, data) items that nobody has taken yet, ÷ {ITEMS}"
        ))
        .lower_is_better()
        .reps(1)
        .system("uniloop", Role::Subject, uniloop_completions)
        .system("crossbeam-channel unbounded", Role::Peer, crossbeam_completions)
        .system("tokio unbounded mpsc", Role::Peer, tokio_completions)
        .system("std mpsc", Role::Peer, std_completions)
        .note("deterministic: one repetition"),
        Case::new("memory", "memory-timer", "memory per pending timer", "bytes")
            .method(&format!(
                "net heap bytes after adding {ITEMS} timers due in 60 s, including the ids kept to cancel them, ÷ {ITEMS}"
            ))
            .lower_is_better()
            .reps(1)
            .system("uniloop", Role::Subject, uniloop_timers)
            .system("tokio-util DelayQueue", Role::Peer, tokio_timers)
            .system("std BinaryHeap (deadline, seq)", Role::Limit, heap_timers)
            .note("deterministic: one repetition"),
    ]
}

fn per(bytes: isize, n: usize) -> Sample {
    Sample::new(bytes as f64 / n as f64)
}

fn sockets() -> io::Result<Vec<UdpSocket>> {
    (0..SOCKETS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect()
}

fn uniloop_sockets(backend: uniloop::Backend) -> io::Result<Sample> {
    use uniloop::{Interest, Runtime, Token};
    let socks = sockets()?;
    let mut rt = Runtime::builder().backend(backend).build()?;
    let (bytes, r) = measure(|| -> io::Result<()> {
        for (i, s) in socks.iter().enumerate() {
            rt.register(s, Token(i as u64), Interest::READABLE)?;
        }
        Ok(())
    });
    r?;
    Ok(per(bytes, SOCKETS))
}

fn uniloop_sockets_epoll() -> io::Result<Sample> {
    uniloop_sockets(uniloop::Backend::Epoll)
}

fn uniloop_sockets_poll() -> io::Result<Sample> {
    uniloop_sockets(uniloop::Backend::Poll)
}

fn mio_sockets() -> io::Result<Sample> {
    let mut socks: Vec<_> = sockets()?
        .into_iter()
        .map(mio::net::UdpSocket::from_std)
        .collect();
    let poll = mio::Poll::new()?;
    let (bytes, r) = measure(|| -> io::Result<()> {
        for (i, s) in socks.iter_mut().enumerate() {
            poll.registry()
                .register(s, mio::Token(i), mio::Interest::READABLE)?;
        }
        Ok(())
    });
    r?;
    Ok(per(bytes, SOCKETS))
}

fn tokio_sockets() -> io::Result<Sample> {
    let socks = sockets()?;
    let rt = tokio_rt()?;
    let _guard = rt.enter();
    let mut registered = Vec::with_capacity(SOCKETS);
    let (bytes, r) = measure(|| -> io::Result<()> {
        for s in socks {
            registered.push(tokio::net::UdpSocket::from_std(s)?);
        }
        Ok(())
    });
    r?;
    Ok(per(bytes, SOCKETS))
}

fn uniloop_completions() -> io::Result<Sample> {
    let rt = uniloop::Runtime::new()?;
    let poster = rt.poster();
    let (bytes, r) = measure(|| -> io::Result<()> {
        for i in 0..ITEMS as u64 {
            poster.post(1, i)?;
        }
        Ok(())
    });
    r?;
    Ok(per(bytes, ITEMS))
}

fn crossbeam_completions() -> io::Result<Sample> {
    let (tx, rx) = crossbeam_channel::unbounded::<(u64, u64)>();
    let (bytes, r) = measure(|| -> io::Result<()> {
        for i in 0..ITEMS as u64 {
            tx.send((1, i)).map_err(io::Error::other)?;
        }
        Ok(())
    });
    r?;
    drop(rx);
    Ok(per(bytes, ITEMS))
}

fn tokio_completions() -> io::Result<Sample> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let (bytes, r) = measure(|| -> io::Result<()> {
        for i in 0..ITEMS as u64 {
            tx.send((1, i)).map_err(io::Error::other)?;
        }
        Ok(())
    });
    r?;
    drop(rx);
    Ok(per(bytes, ITEMS))
}

fn std_completions() -> io::Result<Sample> {
    let (tx, rx) = std::sync::mpsc::channel::<(u64, u64)>();
    let (bytes, r) = measure(|| -> io::Result<()> {
        for i in 0..ITEMS as u64 {
            tx.send((1, i)).map_err(io::Error::other)?;
        }
        Ok(())
    });
    r?;
    drop(rx);
    Ok(per(bytes, ITEMS))
}

fn uniloop_timers() -> io::Result<Sample> {
    use std::time::Duration;
    let mut rt = uniloop::Runtime::new()?;
    let (bytes, ids) = measure(|| {
        (0..ITEMS as u64)
            .map(|i| rt.add_timer(i, Duration::from_secs(60), None))
            .collect::<Vec<_>>()
    });
    drop(ids);
    Ok(per(bytes, ITEMS))
}

fn tokio_timers() -> io::Result<Sample> {
    use std::time::Duration;
    let rt = tokio_rt()?;
    let _guard = rt.enter();
    let mut queue = tokio_util::time::DelayQueue::new();
    let (bytes, keys) = measure(|| {
        (0..ITEMS as u64)
            .map(|i| queue.insert(i, Duration::from_secs(60)))
            .collect::<Vec<_>>()
    });
    drop(keys);
    Ok(per(bytes, ITEMS))
}

fn heap_timers() -> io::Result<Sample> {
    use std::cmp::Reverse;
    use std::time::{Duration, Instant};
    let now = Instant::now();
    let mut heap = std::collections::BinaryHeap::new();
    let mut cancelled: Vec<bool> = Vec::new();
    let (bytes, ()) = measure(|| {
        for i in 0..ITEMS {
            heap.push(Reverse((now + Duration::from_secs(60), i)));
            cancelled.push(false);
        }
    });
    Ok(per(bytes, ITEMS))
}
