//! From C: the chat server of `c/chat_uniloop.c` (libuniloop, one
//! `async_runtime_post_write` per line per recipient) against the same
//! server on libuv (`c/chat_libuv.c`, one `uv_write` per line per
//! recipient), each a child process under the same load from
//! [`crate::chat::generate`], which checks every line.

use std::io;
use std::path::PathBuf;

use crate::chat::{self, Load, Server};
use crate::report::{Case, Role, Sample};
use crate::Config;

const UNILOOP: &str = "libuniloop (C), post_write per line per recipient";
const HELD: &str = "libuniloop (C), post_write per line per recipient, hold_writes";
const LIBUV: &str = "libuv (C), uv_write per line per recipient";
const WALL: &str = "load wall time";

pub(crate) fn case(cfg: &Config) -> Case {
    let load = Load {
        clients: cfg.pick(40, 20),
        rounds: cfg.pick(3, 2),
        lines: cfg.pick(40, 10),
    };
    let mut case = Case::new(
        "chat",
        "chat",
        &format!("C chat server, {} clients", load.clients),
        "ns CPU/line",
    )
    .method(&format!(
        "{clients} loopback clients; {rounds} rounds, in each every client sends {lines} lines of 52 bytes and \
         the server sends each to the {others} others ({total} deliveries, each line checked by the reading \
         client: sender, round, order); the round ends when all have arrived. Figure: the server process's \
         CPU time (wait4 rusage, user + system, its whole life) ÷ lines delivered; load wall time: first line \
         sent to last line checked. Both servers are built with cc -O2; libuniloop from cargo build --release.",
        clients = load.clients,
        rounds = load.rounds,
        lines = load.lines,
        others = load.clients - 1,
        total = load.deliveries(),
    ))
    .lower_is_better();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from));
    let Some(profile_dir) = exe_dir else {
        return case.note("no rows: the benchmark's own directory is unknown");
    };
    let out_dir = profile_dir.join("chat-bench");
    let uniloop = chat::build_libuniloop(&profile_dir)
        .and_then(|lib| chat::build_server(Server::Uniloop, &lib, &out_dir));
    let held = uniloop
        .as_ref()
        .map(PathBuf::clone)
        .map_err(|e| io::Error::new(e.kind(), e.to_string()));
    case = case.system(UNILOOP, Role::Subject, run(uniloop, load, &[]));
    case = case.system(HELD, Role::Uniloop, run(held, load, &["hold"]));
    match chat::libuv_flags() {
        Ok(_) => {
            let libuv = chat::build_server(Server::Libuv, PathBuf::new().as_path(), &out_dir);
            case = case
                .system(LIBUV, Role::Peer, run(libuv, load, &[]))
                .goal_at_most(LIBUV, 1.0)
                .goal_extra_at_most(LIBUV, WALL, 1.1);
        }
        Err(why) => {
            eprintln!("chat: no libuv row: {why}");
            case = case.note(&format!("no libuv row: {why}"));
        }
    }
    case
}

/// One repetition of a server built as `exe` (or the error building it).
fn run(
    exe: io::Result<PathBuf>,
    load: Load,
    extra: &'static [&'static str],
) -> impl FnMut() -> io::Result<Sample> + 'static {
    let exe = exe.map_err(|e| e.to_string());
    move || {
        let exe = exe.as_ref().map_err(|e| io::Error::other(e.clone()))?;
        let out = chat::run(exe, load, extra)?;
        if out.lines != load.deliveries() {
            return Err(io::Error::other(format!(
                "chat: {} lines checked, not {}",
                out.lines,
                load.deliveries()
            )));
        }
        Ok(
            Sample::new(out.server_cpu.as_nanos() as f64 / out.lines as f64)
                .with(WALL, out.wall.as_secs_f64() * 1e3, "ms")
                .with("server CPU", out.server_cpu.as_secs_f64() * 1e3, "ms"),
        )
    }
}
