//! `talker`: a small multi-user talker (a chat MUD) on uniloop.
//!
//! ```text
//! cargo run --release -p talker -- [--addr 127.0.0.1:4000] [--idle-timeout SECS]
//!     [--data-dir DIR] [--mcp] [--max-clients N] [--max-per-address N]
//!     [--flood-rate N] [--flood-burst N] [--argon2-memory KIB]
//!     [--backend epoll|poll|kqueue|iocp|uring|native]
//! ```
//!
//! Connect with `telnet 127.0.0.1 4000`. stdin is the operator's console
//! (`help` lists its commands), or with `--mcp` an MCP server over stdio.
//!
//! The pieces are in the `talker` library crate.

#![deny(dead_code, unused_imports)]

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{value_parser, Arg, ArgAction, Command};
use uniloop::Backend;

use talker::server::{Config, Server};

fn cli() -> Command {
    Command::new("talker")
        .about("A small multi-user talker on uniloop. Connect with telnet; stdin is the operator console (or MCP with --mcp).")
        .arg(Arg::new("addr").long("addr").default_value("127.0.0.1:4000").help("Address to listen on (port 0: any free port)"))
        .arg(
            Arg::new("idle-timeout")
                .long("idle-timeout")
                .value_parser(value_parser!(u64))
                .default_value("1800")
                .help("Seconds of idling before a user is disconnected (0: never)"),
        )
        .arg(
            Arg::new("login-timeout")
                .long("login-timeout")
                .value_parser(value_parser!(u64).range(1..))
                .default_value("60")
                .help("Seconds allowed to give a name"),
        )
        .arg(Arg::new("data-dir").long("data-dir").default_value("talker-data").help("Where state is saved; a rooms.txt here replaces the built-in rooms"))
        .arg(Arg::new("mcp").long("mcp").action(ArgAction::SetTrue).help("Speak MCP (JSON-RPC) on stdin/stdout instead of the operator console"))
        .arg(
            Arg::new("max-clients")
                .long("max-clients")
                .value_parser(value_parser!(usize))
                .default_value("1000")
                .help("Connections beyond this are turned away"),
        )
        .arg(
            Arg::new("max-per-address")
                .long("max-per-address")
                .value_parser(value_parser!(u64).range(1..))
                .default_value("20")
                .help("Connections from one address beyond this are turned away"),
        )
        .arg(
            Arg::new("flood-rate")
                .long("flood-rate")
                .value_parser(value_parser!(f64))
                .default_value("2")
                .help("Lines (say, emote, shout, tell) a second a user may send after a burst (0: no limit)"),
        )
        .arg(
            Arg::new("flood-burst")
                .long("flood-burst")
                .value_parser(value_parser!(f64))
                .default_value("8")
                .help("Lines a user may send at once before --flood-rate applies"),
        )
        .arg(
            Arg::new("argon2-memory")
                .long("argon2-memory")
                .value_parser(value_parser!(u32).range(8..))
                .default_value("19456")
                .help("KiB of memory per Argon2id password hash (2 passes, 1 lane)"),
        )
        .arg(
            Arg::new("backend")
                .long("backend")
                .value_parser(parse_backend)
                .default_value("native")
                .help("The uniloop backend: epoll, poll, kqueue, iocp, uring, or native (the platform's default)"),
        )
        .arg(
            Arg::new("write-limit")
                .long("write-limit")
                .value_parser(value_parser!(usize))
                .default_value("262144")
                .help("Bytes of unsent output per client before a slow client is dropped"),
        )
        .arg(
            Arg::new("autosave")
                .long("autosave")
                .value_parser(value_parser!(u64).range(1..))
                .default_value("300")
                .help("Seconds between autosaves"),
        )
}

/// `--backend`: a backend's name, or `native`.
fn parse_backend(s: &str) -> Result<Backend, uniloop::UnknownBackend> {
    if s == "native" {
        Ok(Backend::native())
    } else {
        s.parse()
    }
}

fn main() -> ExitCode {
    let m = cli().get_matches();
    let backend = *m.get_one::<Backend>("backend").expect("has a default");
    if !backend.is_available() {
        eprintln!("talker: the {backend} backend is not available here");
        return ExitCode::from(2);
    }
    let secs = |name: &str| Duration::from_secs(*m.get_one::<u64>(name).expect("has a default"));
    let idle = secs("idle-timeout");
    let cfg = Config {
        addr: m.get_one::<String>("addr").expect("has a default").clone(),
        idle_timeout: (!idle.is_zero()).then_some(idle),
        login_timeout: secs("login-timeout"),
        data_dir: PathBuf::from(m.get_one::<String>("data-dir").expect("has a default")),
        mcp: m.get_flag("mcp"),
        max_clients: *m.get_one::<usize>("max-clients").expect("has a default"),
        backend,
        write_limit: *m.get_one::<usize>("write-limit").expect("has a default"),
        max_line: 512,
        autosave: secs("autosave"),
        max_per_address: usize::try_from(
            *m.get_one::<u64>("max-per-address").expect("has a default"),
        )
        .unwrap_or(usize::MAX),
        flood_rate: m
            .get_one::<f64>("flood-rate")
            .expect("has a default")
            .max(0.0),
        argon2_memory_kib: *m.get_one::<u32>("argon2-memory").expect("has a default"),
        flood_burst: m
            .get_one::<f64>("flood-burst")
            .expect("has a default")
            .max(1.0),
    };
    let mcp = cfg.mcp;
    let server = match Server::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("talker: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Where to connect; tests read the port from this line. With --mcp
    // stdout belongs to the protocol, so it goes to stderr.
    let banner = format!(
        "talker listening on {} — connect with: telnet {} {}",
        server.local_addr(),
        server.local_addr().ip(),
        server.local_addr().port()
    );
    // Written directly (the log thread may queue): a closed stream is
    // ignored rather than a panic.
    if mcp {
        let _ = writeln!(io::stderr(), "{banner}");
    } else {
        let _ = writeln!(
            io::stdout(),
            "{banner}\nconsole ready: type 'help' for the operator commands"
        );
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "talker: {e}");
            ExitCode::FAILURE
        }
    }
}
