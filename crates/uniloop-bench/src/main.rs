//! Side-by-side benchmarks of uniloop against its peers (mio, polling, tokio,
//! channels) and against hand-written limits.
//!
//! ```text
//! cargo run --release -p uniloop-bench -- [--quick] [--reps N] [--out DIR] [--only SYSTEM] [CASE...]
//! cargo run --release -p uniloop-bench -- --callgrind [--out DIR] [--only PROBE]
//! ```
//!
//! Each case runs every system back to back, repetition by repetition
//! (interleaved, so a burst of noise from the machine hits all systems
//! alike), and reports the median. Results are printed as one table per
//! case and written as JSON, CSV and an SVG chart of the ratios.
//!
//! `--callgrind` instead counts user-space instructions per operation for
//! the single-threaded cases under valgrind (see `callgrind.rs`).

#![deny(dead_code, unused_imports)]

mod alloc;
mod callgrind;
mod capi;
mod cases;
mod chat;
mod measure;
mod report;
mod sys;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use report::{Case, CaseResult, SystemResult};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// Sizes and durations for one run of the suite.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) quick: bool,
    pub(crate) reps: usize,
    /// Only systems whose name contains this (for profiling one system).
    pub(crate) only: Option<String>,
}

impl Config {
    /// `full` in a full run, `quick` with `--quick`.
    pub(crate) fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

const CASES: [&str; 13] = [
    "completion",
    "latency",
    "echo",
    "idle",
    "timers",
    "queue",
    "memory",
    "fanout",
    "pileup",
    "fairness",
    "chat",
    "accept",
    "replies",
];

fn usage() -> String {
    format!(
        "usage: uniloop-bench [--quick] [--reps N] [--out DIR] [--only SYSTEM] [CASE...]\n\
         \x20      uniloop-bench --callgrind [--out DIR] [--only PROBE]   (instructions per operation, under valgrind)\n\
         cases: {} (default: all)",
        CASES.join(", ")
    )
}

fn main() -> ExitCode {
    let mut quick = false;
    let mut reps = None;
    let mut out = None;
    let mut only = None;
    let mut selected = Vec::new();
    let mut callgrind = false;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--callgrind-probe") {
        return match callgrind::child(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let generator = match argv.first().map(String::as_str) {
        Some("--echo-generator") => Some(cases::echo::generator_main as fn(&[String]) -> _),
        Some("--accept-generator") => Some(cases::accept::generator_main as fn(&[String]) -> _),
        _ => None,
    };
    if let Some(generator_main) = generator {
        return match generator_main(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut args = argv.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--callgrind" => callgrind = true,
            "--reps" => match args.next().and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if n > 0 => reps = Some(n),
                _ => return bad_usage("--reps needs a positive number"),
            },
            "--only" => match args.next() {
                Some(name) => only = Some(name),
                None => return bad_usage("--only needs part of a system's name"),
            },
            "--out" => match args.next() {
                Some(dir) => out = Some(PathBuf::from(dir)),
                None => return bad_usage("--out needs a directory"),
            },
            "-h" | "--help" => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            name if CASES.contains(&name) => selected.push(name.to_string()),
            other => return bad_usage(&format!("unknown argument {other:?}")),
        }
    }
    let named_cases = !selected.is_empty();
    if selected.is_empty() {
        selected = CASES.iter().map(|s| s.to_string()).collect();
    }
    let cfg = Config {
        quick,
        reps: reps.unwrap_or(if quick { 3 } else { 5 }),
        only,
    };
    let out = out.unwrap_or_else(|| PathBuf::from("target/bench"));
    if callgrind {
        if quick || reps.is_some() || named_cases {
            return bad_usage("--callgrind takes only --out and --only");
        }
        return match callgrind::run(&out, cfg.only.as_deref()) {
            Ok(path) => {
                println!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }

    if let Err(e) = sys::raise_fd_limit(25_000) {
        eprintln!("warning: could not raise the open-file limit: {e}");
    }
    let machine = report::Machine::detect();
    println!("{}", machine.describe());
    println!(
        "mode: {}, median of {} interleaved repetitions\n",
        if quick { "--quick" } else { "full" },
        cfg.reps
    );

    let started = Instant::now();
    let mut results = Vec::new();
    let mut failed = 0;
    for name in &selected {
        for case in cases::build(name, &cfg) {
            let result = run_case(case, &cfg);
            failed += result.errors.len();
            println!("{}", report::table(&result));
            results.push(result);
        }
    }
    let elapsed = started.elapsed();
    println!("total time: {:.1} s", elapsed.as_secs_f64());

    match report::write_all(&out, &machine, &cfg, &results) {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
        }
        Err(e) => {
            eprintln!("error: writing results under {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    }
    if failed > 0 {
        eprintln!("error: {failed} system run(s) failed (see above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn bad_usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}\n{}", usage());
    ExitCode::from(2)
}

/// Runs every system of `case`, repetition by repetition.
fn run_case(mut case: Case, cfg: &Config) -> CaseResult {
    let reps = case.reps.unwrap_or(cfg.reps);
    if let Some(only) = &cfg.only {
        case.systems.retain(|s| s.name.contains(only.as_str()));
    }
    let mut samples: Vec<Vec<report::Sample>> = vec![Vec::new(); case.systems.len()];
    let mut errors = Vec::new();
    for rep in 1..=reps {
        for (i, system) in case.systems.iter_mut().enumerate() {
            if samples[i].len() + 1 < rep {
                continue; // failed before: do not retry
            }
            let r: io::Result<report::Sample> = (system.run)();
            match r {
                Ok(s) => {
                    eprintln!(
                        "[{}] {} rep {rep}/{reps}: {}",
                        case.id,
                        system.name,
                        report::fmt_value(s.value, case.unit)
                    );
                    samples[i].push(s);
                }
                Err(e) => {
                    eprintln!("[{}] {} rep {rep}/{reps}: ERROR {e}", case.id, system.name);
                    errors.push(format!("{}: {e}", system.name));
                }
            }
        }
    }
    let systems = case
        .systems
        .iter()
        .zip(samples)
        .filter(|(_, s)| !s.is_empty())
        .map(|(sys, s)| SystemResult::new(&sys.name, sys.role, s))
        .collect();
    CaseResult::new(case, systems, errors, reps)
}
