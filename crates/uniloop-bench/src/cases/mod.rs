//! The benchmark cases. Each `build` returns one or more tables, each with
//! uniloop and its peers, every peer written the way its own docs do it.

use std::io;
use std::time::{Duration, Instant};

use crate::report::Case;
use crate::Config;

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
