//! `--callgrind`: user-space instructions per operation for the
//! single-threaded cases, counted by `valgrind --tool=callgrind` — figures
//! that, unlike times, do not drift between machines or with what else the
//! machine is doing.
//!
//! The parent runs this binary under callgrind once per probe, system and
//! size, as `--callgrind-probe PROBE SYSTEM OPS`. Only what runs inside
//! [`measured`] is counted (`--collect-atstart=no --toggle-collect`), and
//! each system runs at `n` and `2n` operations: the figure is
//! `(Ir(2n) − Ir(n)) / n`, so setup and one-time costs (a first allocation,
//! a runtime's creation) cancel out. Counts are of the process's user-space
//! instructions on every thread; the kernel's work in a syscall is not
//! counted, for anyone.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::capi;
use crate::cases::{echo, idle, timers, Until};
use crate::measure::measured;

/// The symbol pattern that `--toggle-collect` matches [`measured`] by.
const MEASURED: &str = "*uniloop_bench::measure::measured*";

type RunOps = fn(u64) -> io::Result<()>;

/// One single-threaded operation, timed for uniloop and its peer.
struct Probe {
    key: &'static str,
    what: &'static str,
    /// Operations in the smaller run (the larger has twice as many).
    ops: u64,
    /// uniloop, then the peer.
    systems: [(&'static str, RunOps); 2],
}

/// Timers per run of the timer probe: each is inserted, and half are
/// cancelled and half fire, so there are two operations per timer.
fn timer_ops(ops: u64) -> io::Result<()> {
    timers::uniloop(ops as usize / 2, Duration::from_millis(20)).map(drop)
}

/// `ops` echo round trips over 64 connections; only the server thread
/// runs inside [`measured`].
fn echo_ops(ops: u64, serve: echo::Serve) -> io::Result<()> {
    echo::run(64, Until::Iterations(ops), serve).map(drop)
}

fn delay_queue_ops(ops: u64) -> io::Result<()> {
    timers::tokio_delay_queue(ops as usize / 2, Duration::from_millis(20)).map(drop)
}

fn probes() -> Vec<Probe> {
    vec![
        Probe {
            key: "wait",
            what: "a wait with a zero timeout, nothing ready (one idle socket registered)",
            ops: 1_000,
            systems: [("uniloop epoll", uniloop_wait), ("mio", mio_wait)],
        },
        Probe {
            key: "idle-10",
            what: "one idle-case iteration (wait + read + write), 10 idle sockets",
            ops: 640,
            systems: [
                ("uniloop epoll", |ops| {
                    idle::uniloop(10, uniloop::Backend::Epoll, Until::Iterations(ops)).map(drop)
                }),
                ("mio", |ops| {
                    idle::mio_loop(10, Until::Iterations(ops)).map(drop)
                }),
            ],
        },
        Probe {
            key: "idle-10000",
            what: "one idle-case iteration (wait + read + write), 10,000 idle sockets",
            ops: 640,
            systems: [
                ("uniloop epoll", |ops| {
                    idle::uniloop(10_000, uniloop::Backend::Epoll, Until::Iterations(ops)).map(drop)
                }),
                ("mio", |ops| {
                    idle::mio_loop(10_000, Until::Iterations(ops)).map(drop)
                }),
            ],
        },
        Probe {
            key: "echo-64",
            what: "one echo round trip, 64 connections (the server thread: wait, read, write)",
            ops: 6_400,
            systems: [
                ("uniloop readiness", |ops| {
                    echo_ops(ops, echo::UNILOOP_READINESS)
                }),
                ("mio", |ops| echo_ops(ops, echo::MIO)),
            ],
        },
        Probe {
            key: "echo-1000",
            what: "one echo round trip, 1,000 connections (the server thread)",
            ops: 10_000,
            systems: [
                ("uniloop readiness", |ops| {
                    echo::run(1000, Until::Iterations(ops), echo::UNILOOP_READINESS).map(drop)
                }),
                ("mio", |ops| {
                    echo::run(1000, Until::Iterations(ops), echo::MIO).map(drop)
                }),
            ],
        },
        Probe {
            key: "echo-64-completion",
            what: "one echo round trip, 64 connections, posted reads and writes against readiness",
            ops: 6_400,
            systems: [
                ("uniloop completion", |ops| {
                    echo_ops(ops, echo::UNILOOP_COMPLETION)
                }),
                ("uniloop readiness", |ops| {
                    echo_ops(ops, echo::UNILOOP_READINESS)
                }),
            ],
        },
        Probe {
            key: "echo-1000-completion",
            what:
                "one echo round trip, 1,000 connections, posted reads and writes against readiness",
            ops: 10_000,
            systems: [
                ("uniloop completion", |ops| {
                    echo::run(1000, Until::Iterations(ops), echo::UNILOOP_COMPLETION).map(drop)
                }),
                ("uniloop readiness", |ops| {
                    echo::run(1000, Until::Iterations(ops), echo::UNILOOP_READINESS).map(drop)
                }),
            ],
        },
        Probe {
            key: "queue",
            what: "one message through a bounded queue of 1,024 (push then pop, one thread: the work per message without the cross-core traffic)",
            ops: 20_000,
            systems: [
                ("uniloop::Queue (Block)", uniloop_queue),
                ("std sync_channel", std_sync_channel),
            ],
        },
        Probe {
            key: "capi-wait",
            what: "`async_runtime_wait`, zero timeout, one ready fd (the C library against the Rust call)",
            ops: 1_000,
            systems: [
                ("C async_runtime_wait", capi::c_wait),
                ("Rust Runtime::wait", capi::rust_wait),
            ],
        },
        Probe {
            key: "capi-modify",
            what: "`async_runtime_modify`, the interest changed (read ↔ read + write: one `epoll_ctl`)",
            ops: 1_000,
            systems: [
                ("C async_runtime_modify", capi::c_modify_change),
                ("Rust Runtime::reregister", capi::rust_modify_change),
            ],
        },
        Probe {
            key: "capi-same",
            what: "`async_runtime_modify` to the interest already set",
            ops: 1_000,
            systems: [
                ("C async_runtime_modify", capi::c_modify_same),
                ("Rust Runtime::reregister", capi::rust_modify_same),
            ],
        },
        Probe {
            key: "capi-dequeue",
            what: "`async_queue_dequeue` on an empty queue",
            ops: 1_000,
            systems: [
                ("C async_queue_dequeue", capi::c_dequeue_empty),
                ("Rust Queue::try_pop", capi::rust_dequeue_empty),
            ],
        },
        Probe {
            key: "timers",
            what: "one timer operation (insert, cancel or fire; the timers case at 20 ms)",
            ops: 20_000,
            systems: [
                ("uniloop", timer_ops),
                ("tokio-util DelayQueue", delay_queue_ops),
            ],
        },
    ]
}

fn uniloop_wait(ops: u64) -> io::Result<()> {
    use uniloop::{Events, Interest, Runtime, Token};
    let mut rt = Runtime::new()?;
    let idle = std::net::UdpSocket::bind("127.0.0.1:0")?;
    idle.set_nonblocking(true)?;
    rt.register(&idle, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(64);
    measured(|| {
        for _ in 0..ops {
            if rt.wait(&mut events, Some(Duration::ZERO))? != 0 {
                return Err(io::Error::other("wait probe: an idle socket reported"));
            }
        }
        Ok(())
    })
}

fn mio_wait(ops: u64) -> io::Result<()> {
    use mio::{Events, Interest, Poll, Token};
    let mut poll = Poll::new()?;
    let idle = std::net::UdpSocket::bind("127.0.0.1:0")?;
    idle.set_nonblocking(true)?;
    let mut idle = mio::net::UdpSocket::from_std(idle);
    poll.registry()
        .register(&mut idle, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(64);
    measured(|| {
        for _ in 0..ops {
            poll.poll(&mut events, Some(Duration::ZERO))?;
            if !events.is_empty() {
                return Err(io::Error::other("wait probe: an idle socket reported"));
            }
        }
        Ok(())
    })
}

/// Messages pushed before they are popped in the queue probes: a few at a
/// time, so the ring's slots and both ends move as in a stream.
const QUEUE_BATCH: u64 = 8;

/// `ops` messages through a queue, pushed and popped in batches of
/// [`QUEUE_BATCH`] on this thread; only the loop is measured.
fn queue_ops(
    ops: u64,
    mut push: impl FnMut(u64) -> bool,
    mut pop: impl FnMut() -> Option<u64>,
) -> io::Result<()> {
    measured(|| {
        let mut sum = 0u64;
        for i in (0..ops).step_by(QUEUE_BATCH as usize) {
            for j in 0..QUEUE_BATCH {
                if !push(i + j) {
                    return Err(io::Error::other("queue probe: push failed"));
                }
            }
            for _ in 0..QUEUE_BATCH {
                sum += pop().ok_or_else(|| io::Error::other("queue probe: pop failed"))?;
            }
        }
        std::hint::black_box(sum);
        Ok(())
    })
}

fn uniloop_queue(ops: u64) -> io::Result<()> {
    let q = uniloop::Queue::<u64>::bounded(1024, uniloop::Overflow::Block);
    queue_ops(ops, |v| q.push(v).is_ok(), || q.pop().ok())
}

fn std_sync_channel(ops: u64) -> io::Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1024);
    queue_ops(ops, |v| tx.send(v).is_ok(), || rx.recv().ok())
}

/// The child's side: `--callgrind-probe PROBE SYSTEM OPS`.
pub(crate) fn child(args: &[String]) -> io::Result<()> {
    let [probe, system, ops] = args else {
        return Err(bad("--callgrind-probe needs PROBE SYSTEM OPS"));
    };
    let probe = probes()
        .into_iter()
        .find(|p| p.key == probe.as_str())
        .ok_or_else(|| bad(&format!("no probe {probe:?}")))?;
    let (_, run) = system
        .parse::<usize>()
        .ok()
        .and_then(|i| probe.systems.get(i).copied())
        .ok_or_else(|| bad(&format!("no system {system:?}")))?;
    let ops = ops
        .parse::<u64>()
        .map_err(|_| bad(&format!("bad OPS {ops:?}")))?;
    run(ops)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// One probe's result: instructions per operation, uniloop then the peer.
struct Row {
    what: &'static str,
    names: [&'static str; 2],
    per_op: [f64; 2],
}

/// The parent's side: runs every probe under callgrind, prints the table
/// and writes it to `out/callgrind.md`. `only` keeps the probes whose key
/// contains it.
pub(crate) fn run(out: &Path, only: Option<&str>) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut rows = Vec::new();
    for probe in probes() {
        if only.is_some_and(|o| !probe.key.contains(o)) {
            continue;
        }
        let mut per_op = [0.0; 2];
        for (i, (name, _)) in probe.systems.iter().enumerate() {
            let small = count(&exe, probe.key, i, probe.ops, out)?;
            let large = count(&exe, probe.key, i, 2 * probe.ops, out)?;
            per_op[i] = large.saturating_sub(small) as f64 / probe.ops as f64;
            eprintln!(
                "[callgrind] {} / {name}: {:.0} instructions per operation",
                probe.key, per_op[i]
            );
        }
        rows.push(Row {
            what: probe.what,
            names: [probe.systems[0].0, probe.systems[1].0],
            per_op,
        });
    }
    let table = render(&rows);
    println!("{table}");
    println!(
        "callgrind: {} probes in {:.0} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(out)?;
    let path = out.join("callgrind.md");
    std::fs::write(&path, table)?;
    Ok(path)
}

fn render(rows: &[Row]) -> String {
    let mut s = String::from(
        "User-space instructions per operation (`valgrind --tool=callgrind`, \
         (Ir(2n) − Ir(n)) / n inside the measured loop; kernel work not counted):\n\n\
         | operation | uniloop | peer | uniloop ÷ peer |\n|---|---|---|---|\n",
    );
    for r in rows {
        let ratio = if r.per_op[1] > 0.0 {
            format!("{:.2}×", r.per_op[0] / r.per_op[1])
        } else {
            "n/a".to_string()
        };
        s.push_str(&format!(
            "| {} | {} {:.0} | {} {:.0} | {ratio} |\n",
            r.what, r.names[0], r.per_op[0], r.names[1], r.per_op[1]
        ));
    }
    s
}

/// Instructions counted inside [`measured`] for one child run.
fn count(exe: &Path, probe: &str, system: usize, ops: u64, out: &Path) -> io::Result<u64> {
    std::fs::create_dir_all(out)?;
    let file = out.join(format!(
        "callgrind.{probe}.{system}.{ops}.{}",
        std::process::id()
    ));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={MEASURED}"))
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(exe)
        .args([
            "--callgrind-probe",
            probe,
            &system.to_string(),
            &ops.to_string(),
        ])
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("running valgrind ({e}): --callgrind needs it (apt-get install valgrind)"),
            )
        })?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "callgrind run of {probe}/{system} with {ops} ops failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        )));
    }
    let text = std::fs::read_to_string(&file)?;
    // Best effort: the figures are in hand, the file is scratch.
    let _ = std::fs::remove_file(&file);
    total(&text).ok_or_else(|| io::Error::other(format!("no totals in {}", file.display())))
}

/// The first event's total (`Ir`) of a callgrind output file.
fn total(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toggle_pattern_names_measured() {
        let name = std::any::type_name_of_val(&measured::<(), fn()>);
        let pattern = MEASURED.trim_matches('*');
        assert!(name.contains(pattern), "{name} does not match {MEASURED}");
    }

    #[test]
    fn totals_are_read_from_a_callgrind_file() {
        let text = "version: 1\nevents: Ir\nfn=main\n3 10\nsummary: 1234\ntotals: 5678 9\n";
        assert_eq!(total(text), Some(5678));
        assert_eq!(total("summary: 42\n"), Some(42));
        assert_eq!(total("events: Ir\n"), None);
    }

    #[test]
    fn the_table_has_a_row_per_probe_and_a_ratio() {
        let rows = [Row {
            what: "op",
            names: ["uniloop", "mio"],
            per_op: [150.0, 100.0],
        }];
        let t = render(&rows);
        assert!(t.contains("| op | uniloop 150 | mio 100 | 1.50× |"), "{t}");
    }
}
