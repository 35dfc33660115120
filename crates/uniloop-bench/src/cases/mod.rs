//! The benchmark cases. Each `build` returns one or more tables, each with
//! uniloop and its peers, every peer written the way its own docs do it.

use std::io;
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::measure::measured;
use crate::report::{Case, Sample};
use crate::sys::{SyscallCount, ThreadCpu};
use crate::Config;

pub(crate) mod accept;
mod chat;
mod completion;
pub(crate) mod echo;
mod fairness;
mod fanout;
pub(crate) mod idle;
mod latency;
mod memory;
mod pileup;
mod queue;
mod replies;
pub(crate) mod timers;

/// The tables for the command-line case `name`.
pub(crate) fn build(name: &str, cfg: &Config) -> Vec<Case> {
    match name {
        "completion" => vec![completion::case(cfg)],
        "latency" => vec![latency::case(cfg)],
        "echo" => echo::cases(cfg),
        "idle" => vec![idle::case(cfg)],
        "timers" => vec![timers::case(cfg)],
        "queue" => queue::cases(cfg),
        "memory" => memory::cases(),
        "fanout" => vec![fanout::case(cfg)],
        "pileup" => vec![pileup::case(cfg)],
        "fairness" => vec![fairness::case(cfg)],
        "chat" => vec![chat::case(cfg)],
        "accept" => vec![accept::case(cfg)],
        "replies" => replies::cases(cfg),
        _ => Vec::new(),
    }
}

/// How long a single-threaded loop runs: for a time (the timed cases) or
/// for a number of iterations (the `--callgrind` probes, which count
/// instructions per operation).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Until {
    Elapsed(Duration),
    Iterations(u64),
}

impl Until {
    /// Whether a loop that started at `start` and has done `done`
    /// iterations goes on.
    pub(crate) fn more(self, start: Instant, done: u64) -> bool {
        match self {
            Until::Elapsed(d) => start.elapsed() < d,
            Until::Iterations(n) => done < n,
        }
    }
}

/// A guard against a system that stops making progress: an error once
/// `limit` has passed since `start`, instead of a hung benchmark.
pub(crate) fn check_stall(start: Instant, limit: Duration, what: &str) -> io::Result<()> {
    if start.elapsed() > limit {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: no completion after {limit:?}"),
        ))
    } else {
        Ok(())
    }
}

/// Turns a thread's panic into an error of the run.
pub(crate) fn join<T>(h: std::thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    h.join()
        .map_err(|_| io::Error::other("benchmark thread panicked"))?
}

/// A generous bound on any one run.
pub(crate) const STALL: Duration = Duration::from_secs(120);

/// A tokio `current_thread` runtime configured the way
/// `#[tokio::main(flavor = "current_thread")]` does it: every driver
/// enabled, so it parks in epoll like the other loops (without the I/O
/// driver it would park on a futex and could not wait for sockets).
pub(crate) fn tokio_rt() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// What a server thread used: its result, its system calls (where the
/// kernel lets them be counted) and its CPU time.
pub(crate) struct Served<T> {
    pub(crate) result: T,
    pub(crate) syscalls: Option<u64>,
    pub(crate) cpu: ThreadCpu,
}

/// Runs `serve` on a thread of its own, inside [`measured`], counting
/// what that thread uses over its whole life: its CPU time
/// (`CLOCK_THREAD_CPUTIME_ID`, and the user-space part from
/// `getrusage(RUSAGE_THREAD)`) and its system calls.
pub(crate) fn spawn_server<T, F>(serve: F) -> JoinHandle<io::Result<Served<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    thread::spawn(move || {
        let count = SyscallCount::start();
        let cpu = ThreadCpu::now()?;
        let result = measured(serve)?;
        let used = ThreadCpu::now()?.since(cpu);
        Ok(Served {
            result,
            syscalls: count.and_then(|c| c.read()),
            cpu: used,
        })
    })
}

/// The names of a server's costs per operation in a [`Sample`]: its CPU
/// time (µs), the user-space part of it (ns), its system calls.
pub(crate) struct CostNames {
    pub(crate) cpu: &'static str,
    pub(crate) user: &'static str,
    pub(crate) syscalls: &'static str,
}

/// A sample of `rate`, with what the server used divided by the `ops` it
/// did (nothing when it did none).
pub(crate) fn cost_sample<T>(rate: f64, ops: u64, served: &Served<T>, names: &CostNames) -> Sample {
    let mut sample = Sample::new(rate);
    if ops == 0 {
        return sample;
    }
    let per = |d: Duration, scale: f64| d.as_secs_f64() * scale / ops as f64;
    sample = sample
        .with(names.cpu, per(served.cpu.total, 1e6), "µs")
        .with(names.user, per(served.cpu.user, 1e9), "ns");
    if let Some(calls) = served.syscalls {
        sample = sample.with(names.syscalls, calls as f64 / ops as f64, "syscalls");
    }
    sample
}

/// Runs a load generator in a process of its own (this binary again, as
/// `FLAG ADDR ARGS...`) and reads what it prints: a rate and a total.
pub(crate) fn generate_in_child(
    flag: &str,
    addr: SocketAddr,
    args: &[String],
) -> io::Result<(f64, u64)> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg(flag)
        .arg(addr.to_string())
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{flag}: {} ({})",
            out.status,
            text.trim()
        )));
    }
    let mut words = text.split_whitespace();
    match (
        words.next().and_then(|w| w.parse::<f64>().ok()),
        words.next().and_then(|w| w.parse::<u64>().ok()),
    ) {
        (Some(rate), Some(total)) => Ok((rate, total)),
        _ => Err(io::Error::other(format!(
            "{flag}: unreadable result {text:?}"
        ))),
    }
}

/// A measuring window: `duration` after a warm-up of a fifth of it.
pub(crate) struct Window {
    until: Until,
    start: Instant,
    measuring: Option<Instant>,
    /// Operations counted in the window.
    pub(crate) counted: u64,
    /// All operations, warm-up included.
    pub(crate) total: u64,
}

impl Window {
    pub(crate) fn new(until: Until) -> Window {
        Window {
            until,
            start: Instant::now(),
            measuring: None,
            counted: 0,
            total: 0,
        }
    }

    /// Counts one operation.
    pub(crate) fn count(&mut self) {
        self.counted += 1;
        self.total += 1;
    }

    /// Whether the load goes on (starts the window after the warm-up).
    pub(crate) fn more(&mut self) -> bool {
        match self.until {
            Until::Elapsed(duration) => {
                let now = Instant::now();
                match self.measuring {
                    None if now - self.start >= duration / 5 => {
                        self.measuring = Some(now);
                        self.counted = 0;
                        true
                    }
                    Some(t) => now - t < duration,
                    None => true,
                }
            }
            Until::Iterations(n) => {
                self.measuring.get_or_insert(self.start);
                self.counted < n
            }
        }
    }

    /// Operations per second in the window, and all operations.
    pub(crate) fn result(&self) -> (f64, u64) {
        let elapsed = self.measuring.map_or(Duration::ZERO, |t| t.elapsed());
        (self.counted as f64 / elapsed.as_secs_f64(), self.total)
    }
}
