//! Timers: insert N timers with random deadlines, cancel half, and wait the
//! rest out, firing each. No system can fake its clock here (uniloop has no
//! test clock), so the deadline range is compressed from the 10 s to
//! `range`, every system waits in real time, and the figure is operations
//! per second of the loop thread's *CPU time* (user + system): sleeping
//! between deadlines costs nothing, every insert, cancel, wake-up and fire
//! does.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::time::{Duration, Instant};

use super::{check_stall, tokio_rt, STALL};
use crate::measure::measured;
use crate::report::{Case, Role, Sample};
use crate::sys::{thread_cpu_time, Rng};
use crate::Config;

pub(crate) fn case(cfg: &Config) -> Case {
    let n: usize = cfg.pick(1_000_000, 100_000);
    let range = Duration::from_millis(cfg.pick(1000, 200));
    Case::new("timers", "timers", "timers (insert, cancel half, fire the rest)", "ops/s")
        .method(&format!(
            "{n} timers with random deadlines in [0, {range:?}) (the issue's [0, 10 s) compressed 10× so a run \
             takes about 1 s), cancel every other one, then run the loop until the rest have fired; \
             ops = inserts + cancels + fires = {} per run, divided by the loop thread's CPU time",
            2 * n
        ))
        .system("uniloop", Role::Subject, move || uniloop(n, range))
        .system("tokio-util DelayQueue (current_thread)", Role::Peer, move || {
            tokio_delay_queue(n, range)
        })
        .system("std BinaryHeap + sleep", Role::Limit, move || heap(n, range))
        .goal_at_least("tokio-util DelayQueue (current_thread)", 2.0)
        .note(
            "CPU time, not wall time: wall time is ~the deadline range for every system. \
             'insert+cancel' is the wall-clock rate of the first phase alone.",
        )
}

fn deadlines(n: usize, range: Duration) -> Vec<Duration> {
    let mut rng = Rng::new(0x5eed);
    let r = range.as_nanos() as u64;
    (0..n).map(|_| Duration::from_nanos(rng.below(r))).collect()
}

fn sample(n: usize, cpu: Duration, insert_cancel: Duration) -> Sample {
    let ops = (n + n / 2 + (n - n / 2)) as f64;
    Sample::new(ops / cpu.as_secs_f64()).with(
        "insert+cancel",
        (n + n / 2) as f64 / insert_cancel.as_secs_f64(),
        "ops/s",
    )
}

pub(crate) fn uniloop(n: usize, range: Duration) -> io::Result<Sample> {
    use uniloop::{Event, Events, Runtime};
    let ds = deadlines(n, range);
    let mut rt = Runtime::new()?;
    let mut events = Events::with_capacity(1024);
    measured(|| {
        let cpu0 = thread_cpu_time();
        let start = Instant::now();
        let ids: Vec<_> = ds
            .iter()
            .enumerate()
            .map(|(i, d)| rt.add_timer(i as u64, *d, None))
            .collect();
        for id in ids.iter().skip(1).step_by(2) {
            rt.cancel_timer(*id);
        }
        let insert_cancel = start.elapsed();
        let mut fired = 0;
        while fired < n - n / 2 {
            rt.wait(&mut events, Some(Duration::from_secs(1)))?;
            for ev in &events {
                if let Event::Timer { key, .. } = *ev {
                    if key % 2 == 1 {
                        return Err(io::Error::other("uniloop: a cancelled timer fired"));
                    }
                    fired += 1;
                }
            }
            check_stall(start, STALL, "uniloop timers")?;
        }
        Ok(sample(n, thread_cpu_time() - cpu0, insert_cancel))
    })
}

pub(crate) fn tokio_delay_queue(n: usize, range: Duration) -> io::Result<Sample> {
    use tokio_util::time::DelayQueue;
    let ds = deadlines(n, range);
    let rt = tokio_rt()?;
    measured(|| {
        rt.block_on(async move {
            let cpu0 = thread_cpu_time();
            let start = Instant::now();
            let mut queue = DelayQueue::new();
            let keys: Vec<_> = ds
                .iter()
                .enumerate()
                .map(|(i, d)| queue.insert(i as u64, *d))
                .collect();
            for key in keys.iter().skip(1).step_by(2) {
                queue.remove(key);
            }
            let insert_cancel = start.elapsed();
            let mut fired = 0;
            while fired < n - n / 2 {
                match std::future::poll_fn(|cx| queue.poll_expired(cx)).await {
                    Some(expired) => {
                        if expired.into_inner() % 2 == 1 {
                            return Err(io::Error::other("tokio: a cancelled timer fired"));
                        }
                        fired += 1;
                    }
                    None => return Err(io::Error::other("tokio: DelayQueue ran dry")),
                }
            }
            Ok(sample(n, thread_cpu_time() - cpu0, insert_cancel))
        })
    })
}

/// The textbook baseline: a heap of `(deadline, seq)`, lazy cancellation by
/// flag, `thread::sleep` until the earliest deadline.
fn heap(n: usize, range: Duration) -> io::Result<Sample> {
    let ds = deadlines(n, range);
    let cpu0 = thread_cpu_time();
    let start = Instant::now();
    let mut heap = BinaryHeap::new();
    let mut cancelled = Vec::new();
    for (i, d) in ds.iter().enumerate() {
        heap.push(Reverse((start + *d, i)));
        cancelled.push(false);
    }
    for i in (1..n).step_by(2) {
        cancelled[i] = true;
    }
    let insert_cancel = start.elapsed();
    let mut fired = 0;
    while let Some(&Reverse((deadline, i))) = heap.peek() {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
            continue;
        }
        heap.pop();
        if !cancelled[i] {
            fired += 1;
        }
    }
    if fired != n - n / 2 {
        return Err(io::Error::other("heap: wrong number fired"));
    }
    Ok(sample(n, thread_cpu_time() - cpu0, insert_cancel))
}
