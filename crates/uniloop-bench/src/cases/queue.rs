//! Bounded queue throughput, capacity 1,024: one or two producer threads
//! push N messages in total, one consumer thread pops them, both blocking
//! when they must wait.

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use super::{check_stall, join, STALL};
use crate::report::{Case, Role, Sample};
use crate::Config;

const CAP: usize = 1024;

pub(crate) fn cases(cfg: &Config) -> Vec<Case> {
    let n: u64 = cfg.pick(10_000_000, 1_000_000);
    [1usize, 2]
        .into_iter()
        .map(|producers| {
            let (key, title) = if producers == 1 {
                ("queue-spsc", "bounded queue, 1 producer / 1 consumer")
            } else {
                ("queue-2p1c", "bounded queue, 2 producers / 1 consumer")
            };
            let mut case = Case::new("queue", key, title, "msgs/s").method(&format!(
                "capacity {CAP}, {n} u64 messages in total from {producers} producer thread(s) \
                 to one consumer; blocking push and pop"
            ));
            case = case.system("uniloop::Queue (Block)", Role::Subject, move || {
                uniloop(producers, n)
            });
            case.system("crossbeam-channel bounded", Role::Peer, move || {
                crossbeam(producers, n)
            })
            .system("flume bounded", Role::Peer, move || {
                flume_bounded(producers, n)
            })
            .system("std sync_channel", Role::Peer, move || {
                std_sync(producers, n)
            })
            .system("crossbeam ArrayQueue, spinning", Role::Limit, move || {
                array_queue(producers, n)
            })
            // The goal: at least the best blocking channel, and within 0.8×
            // of the spinning ring (no parking at all).
            .goal_at_least("crossbeam-channel bounded", 1.0)
            .goal_at_least("flume bounded", 1.0)
            .goal_at_least("std sync_channel", 1.0)
            .goal_at_least("crossbeam ArrayQueue, spinning", 0.8)
        })
        .collect()
}

/// The uniloop row: `Queue` with the `Block` policy (push waits for room).
fn uniloop(producers: usize, n: u64) -> io::Result<Sample> {
    let q = uniloop::Queue::<u64>::bounded(CAP, uniloop::Overflow::Block);
    let rx = q.clone();
    run(
        producers,
        n,
        move || {
            let q = q.clone();
            move |v| q.push(v).map_err(|e| io::Error::other(e.to_string()))
        },
        move || rx.pop().map_err(|e| io::Error::other(e.to_string())),
    )
}

/// Spawns `producers` threads, each sending its share of `0..n` through
/// `send`, and drains `n` items with `recv` on this thread.
fn run<S, R>(producers: usize, n: u64, make_send: impl Fn() -> S, mut recv: R) -> io::Result<Sample>
where
    S: FnMut(u64) -> io::Result<()> + Send + 'static,
    R: FnMut() -> io::Result<u64>,
{
    let per = n / producers as u64;
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let mut send = make_send();
            thread::spawn(move || -> io::Result<()> {
                for i in 0..per {
                    send(i)?;
                }
                Ok(())
            })
        })
        .collect();
    let total = per * producers as u64;
    let mut sum = 0u64;
    for _ in 0..total {
        sum = sum.wrapping_add(recv()?);
    }
    let elapsed = start.elapsed();
    for h in handles {
        join(h)?;
    }
    let expect = producers as u64 * (per * per.saturating_sub(1) / 2);
    if sum != expect {
        return Err(io::Error::other("queue: lost or duplicated messages"));
    }
    Ok(Sample::new(total as f64 / elapsed.as_secs_f64()))
}

fn crossbeam(producers: usize, n: u64) -> io::Result<Sample> {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
    run(
        producers,
        n,
        move || {
            let tx = tx.clone();
            move |v| tx.send(v).map_err(io::Error::other)
        },
        move || rx.recv().map_err(io::Error::other),
    )
}

fn flume_bounded(producers: usize, n: u64) -> io::Result<Sample> {
    let (tx, rx) = flume::bounded::<u64>(CAP);
    run(
        producers,
        n,
        move || {
            let tx = tx.clone();
            move |v| tx.send(v).map_err(io::Error::other)
        },
        move || rx.recv().map_err(io::Error::other),
    )
}

fn std_sync(producers: usize, n: u64) -> io::Result<Sample> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAP);
    run(
        producers,
        n,
        move || {
            let tx = tx.clone();
            move |v| tx.send(v).map_err(io::Error::other)
        },
        move || rx.recv().map_err(io::Error::other),
    )
}

fn array_queue(producers: usize, n: u64) -> io::Result<Sample> {
    let q = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(CAP));
    let start = Instant::now();
    let qp = q.clone();
    run(
        producers,
        n,
        move || {
            let q = qp.clone();
            move |mut v| {
                let mut spins = 0u32;
                loop {
                    match q.push(v) {
                        Ok(()) => return Ok(()),
                        Err(back) => {
                            v = back;
                            spin(&mut spins);
                        }
                    }
                }
            }
        },
        move || {
            let mut spins = 0u32;
            loop {
                if let Some(v) = q.pop() {
                    return Ok(v);
                }
                spin(&mut spins);
                if spins % 65_536 == 0 {
                    check_stall(start, STALL, "ArrayQueue")?;
                }
            }
        },
    )
}

/// Spins, yielding the core now and then: three spinning threads share two
/// cores in the 2-producer case.
fn spin(spins: &mut u32) {
    *spins = spins.wrapping_add(1);
    if *spins % 64 == 0 {
        thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}
