//! `talker-load`: N clients log in to a running talker and send `tell`s to
//! each other at a fixed rate; reports messages delivered per second and
//! the delivery latency (p50, p99, max). Bounded by its flags: it stops by
//! itself after `--duration` seconds plus a short drain.
//!
//! ```text
//! talker-load [--addr 127.0.0.1:4000] [--clients 100] [--rate 1] [--duration 10] [--pid PID]
//! ```
//!
//! It is a uniloop program too: one thread, every client a registered
//! socket with a posted read, every message a posted write, a 10 ms timer
//! pacing the sends. With `--pid` (Linux) the server's RSS and open
//! descriptors are read from `/proc` at the start and the end.
//!
//! A `tell` goes to exactly one other client, so the delivered rate is the
//! send rate (`clients × rate`), not a fan-out multiple of it.

#![deny(dead_code, unused_imports)]

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clap::{value_parser, Arg, Command};
use uniloop::{Event, Events, Interest, LineSplitter, OpKind, Runtime, Token};

const TICK: u64 = 1;
const TICK_EVERY: Duration = Duration::from_millis(10);
/// What every client answers when asked for a password (a new account's
/// twice). Each login hashes it on the server: for thousands of clients,
/// run the talker with a small `--argon2-memory`.
const PASSWORD: &[u8] = b"load-password\r\n";
/// Time after the last send for the last deliveries to arrive.
const DRAIN: Duration = Duration::from_secs(2);

struct Client {
    stream: TcpStream,
    lines: LineSplitter,
    logged_in: bool,
}

fn cli() -> Command {
    let num = |name: &'static str, default: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .value_parser(value_parser!(u64).range(1..))
            .default_value(default)
            .help(help)
    };
    Command::new("talker-load")
        .about("Load for a running talker: N clients telling each other messages at a rate")
        .arg(
            Arg::new("addr")
                .long("addr")
                .default_value("127.0.0.1:4000")
                .help("The talker's address"),
        )
        .arg(num("clients", "100", "Clients to connect"))
        .arg(num("rate", "1", "Messages per second per client"))
        .arg(num("duration", "10", "Seconds of sending"))
        .arg(
            Arg::new("pid")
                .long("pid")
                .value_parser(value_parser!(u32))
                .help("The server's pid: report its RSS and fds (Linux)"),
        )
}

fn main() -> io::Result<()> {
    let m = cli().get_matches();
    let addr: SocketAddr = m
        .get_one::<String>("addr")
        .expect("has a default")
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("--addr: {e}")))?;
    let n = *m.get_one::<u64>("clients").expect("has a default") as usize;
    let rate = *m.get_one::<u64>("rate").expect("has a default") as f64;
    let duration = Duration::from_secs(*m.get_one::<u64>("duration").expect("has a default"));
    let pid = m.get_one::<u32>("pid").copied();
    if n < 2 {
        eprintln!("talker-load: --clients must be at least 2 (a tell needs someone to go to)");
        std::process::exit(2);
    }
    wait_for_server(addr, Duration::from_secs(30))?;
    let before = pid.map(proc_usage);

    // Declared before the runtime, so dropped after it: a client's stream
    // stays open while the runtime may do its posted I/O.
    let mut clients: HashMap<u64, Client> = HashMap::new();
    let mut rt = Runtime::new()?;
    for i in 0..n {
        let stream = TcpStream::connect(addr)?;
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        let token = i as u64;
        rt.register(&stream, Token(token), Interest::READABLE)?;
        let c = clients.entry(token).or_insert(Client {
            stream,
            lines: LineSplitter::new(4096),
            logged_in: false,
        });
        // SAFETY: the stream is in `clients`, which it leaves only after
        // its `deregister`, and which outlives `rt`.
        unsafe { rt.post_read(&c.stream, Vec::with_capacity(16 * 1024)) }?;
        // SAFETY: as for the read.
        unsafe { rt.post_write(&c.stream, format!("load{i}\r\n").into_bytes()) }?;
    }

    let epoch = Instant::now();
    let mut events = Events::with_capacity(1024);
    // Wait until every client is in (bounded).
    let login_deadline = epoch + Duration::from_secs(30) + Duration::from_millis(30 * n as u64);
    let mut logged_in = 0;
    let mut latencies: Vec<u64> = Vec::new();
    let mut stats = Stats::default();
    while logged_in < n {
        if Instant::now() > login_deadline {
            eprintln!("talker-load: only {logged_in} of {n} clients logged in; giving up");
            std::process::exit(1);
        }
        rt.wait(&mut events, Some(Duration::from_millis(100)))?;
        for ev in &events {
            on_event(
                &mut rt,
                &mut clients,
                *ev,
                epoch,
                &mut latencies,
                &mut stats,
                &mut logged_in,
            )?;
        }
    }
    println!(
        "{n} clients logged in after {:.1} s",
        epoch.elapsed().as_secs_f64()
    );

    latencies.clear();
    let start = Instant::now();
    let stop_sending = start + duration;
    let end = stop_sending + DRAIN;
    rt.add_timer(TICK, TICK_EVERY, Some(TICK_EVERY));
    let mut sent = 0u64;
    let mut next_client = 0usize;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    while Instant::now() < end {
        rt.wait(
            &mut events,
            Some(end.saturating_duration_since(Instant::now())),
        )?;
        for ev in &events {
            if let Event::Timer { key: TICK, .. } = ev {
                let now = Instant::now().min(stop_sending);
                let due = (now.duration_since(start).as_secs_f64() * rate * n as f64) as u64;
                while sent < due {
                    let from = next_client % n;
                    next_client += 1;
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let to = (from + 1 + (seed % (n as u64 - 1)) as usize) % n;
                    let t = epoch.elapsed().as_micros();
                    let c = &clients[&(from as u64)];
                    let tell = format!("tell load{to} {t}\r\n").into_bytes();
                    // SAFETY: the stream is in `clients`, which it leaves
                    // only after its `deregister`, and which outlives `rt`.
                    match unsafe { rt.post_write(&c.stream, tell) } {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => stats.refused += 1,
                        Err(e) => return Err(e.into()),
                    }
                    sent += 1;
                }
                continue;
            }
            on_event(
                &mut rt,
                &mut clients,
                *ev,
                epoch,
                &mut latencies,
                &mut stats,
                &mut logged_in,
            )?;
        }
    }
    let secs = duration.as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i] as f64 / 1000.0
    };
    println!(
        "clients {n}, rate {rate}/s each, {secs:.0} s: sent {sent}, delivered {} ({:.0} msgs/s), lost {}, writes refused {}, disconnected {}",
        latencies.len(),
        latencies.len() as f64 / secs,
        sent.saturating_sub(latencies.len() as u64),
        stats.refused,
        stats.closed,
    );
    println!(
        "latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.99),
        latencies.last().map_or(f64::NAN, |&m| m as f64 / 1000.0)
    );
    if let (Some(pid), Some(before)) = (pid, before) {
        let loaded = proc_usage(pid);
        // Hang up, and give the server a moment (bounded) to close its side.
        for (_, c) in clients.drain() {
            let _ = rt.deregister(&c.stream);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut after = proc_usage(pid);
        while after.1 > before.1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            after = proc_usage(pid);
        }
        println!(
            "server pid {pid}: RSS {} KiB at start, {} KiB loaded, {} KiB after; fds {} at start, {} loaded, {} after",
            before.0, loaded.0, after.0, before.1, loaded.1, after.1
        );
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Stats {
    refused: u64,
    closed: u64,
}

fn on_event(
    rt: &mut Runtime,
    clients: &mut HashMap<u64, Client>,
    ev: Event,
    epoch: Instant,
    latencies: &mut Vec<u64>,
    stats: &mut Stats,
    logged_in: &mut usize,
) -> io::Result<()> {
    let Event::IoDone {
        token, op, kind, ..
    } = ev
    else {
        return Ok(());
    };
    let Some(done) = rt.take_io(op) else {
        return Ok(());
    };
    if kind == OpKind::Write {
        return Ok(());
    }
    let Some(c) = clients.get_mut(&token.0) else {
        return Ok(());
    };
    if done.error.is_some() || done.bytes == 0 {
        stats.closed += 1;
        let c = clients.remove(&token.0).expect("present");
        let _ = rt.deregister(&c.stream);
        return Ok(());
    }
    c.lines.push(&done.buf);
    while let Some(line) = c.lines.next_line() {
        let text = String::from_utf8_lossy(line.bytes());
        if let Some(rest) = text.split_once(" tells you: ").map(|(_, r)| r) {
            if let Ok(sent_at) = rest.trim().parse::<u64>() {
                let now = epoch.elapsed().as_micros() as u64;
                latencies.push(now.saturating_sub(sent_at));
            }
        } else if !c.logged_in
            && ["Choose a password:", "Type it again:", "Password:"]
                .iter()
                .any(|p| text.contains(p))
        {
            // SAFETY: as for the read below.
            unsafe { rt.post_write(&c.stream, PASSWORD.to_vec()) }?;
        } else if !c.logged_in
            && (text.contains("Welcome, load") || text.contains("Welcome back, load"))
        {
            c.logged_in = true;
            *logged_in += 1;
        }
    }
    let mut buf = done.buf;
    buf.clear();
    // SAFETY: the stream is in `clients`, which it leaves only after its
    // `deregister`, and which outlives the runtime (`main`).
    unsafe { rt.post_read(&c.stream, buf) }?;
    Ok(())
}

/// The RSS (KiB) and open descriptors of process `pid`, from `/proc`
/// (zeros where there is no `/proc`).
fn proc_usage(pid: u32) -> (u64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

/// Waits until something accepts connections on `addr`, for at most
/// `limit`: the talker may still be starting (`talker & talker-load` in one
/// line starts both at once). Any error but a refused connection, or the
/// limit, ends the wait with that error.
fn wait_for_server(addr: SocketAddr, limit: Duration) -> io::Result<()> {
    let start = Instant::now();
    let mut said = false;
    loop {
        match TcpStream::connect(addr) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && start.elapsed() < limit => {
                if !said {
                    eprintln!("talker-load: waiting for a talker on {addr}");
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("connecting to {addr}: {e}"),
                ))
            }
        }
    }
}
