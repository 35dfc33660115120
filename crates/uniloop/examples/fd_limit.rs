//! A server at its file-descriptor limit, measured: does it spin, and are
//! the clients that had to wait served once descriptors are free?
//!
//! ```text
//! cargo run --release -p uniloop --example fd_limit -- \
//!     [--mode acceptor|naive] [--limit 48] [--clients 60] [--window-ms 1000]
//! ```
//!
//! The program starts itself again as the server with `RLIMIT_NOFILE`
//! lowered to `--limit`, connects `--clients` clients, and waits until the
//! server has greeted all it could and is stuck at the limit. It then
//! watches for `--window-ms` while the others wait (the server reports its
//! own CPU time, `getrusage`), closes the greeted clients, checks that every
//! waiting client gets its greeting, and stops the server. The last line is
//! a summary; the child's CPU time over the whole run is from `wait4`.
//!
//! * `--mode acceptor`: [`uniloop::Acceptor`] — pauses the listener at the
//!   limit and resumes on a timer (or when a connection closes).
//! * `--mode naive`: the accept loop most servers start with — on an error,
//!   log and go back to `wait`, where the level-triggered listener is
//!   readable again at once.
//!
//! Unix only (it lowers a resource limit).

#[cfg(unix)]
fn main() -> std::io::Result<()> {
    unix::main()
}

#[cfg(not(unix))]
fn main() {
    eprintln!("fd_limit lowers RLIMIT_NOFILE: Unix only");
}

#[cfg(unix)]
mod unix {
    use std::collections::HashMap;
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use uniloop::{Acceptor, Event, Events, Interest, Runtime, Token};

    const LISTENER: Token = Token(u64::MAX);
    const RESUME: u64 = 1;
    const LINE: u64 = 2;
    /// Failure guard for each phase of the driver.
    const GUARD: Duration = Duration::from_secs(30);
    const GREETING: &[u8] = b"hello\n";

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Mode {
        Acceptor,
        Naive,
    }

    struct Args {
        mode: Mode,
        limit: u64,
        clients: usize,
        window: Duration,
        server: bool,
    }

    fn args() -> Args {
        let mut a = Args {
            mode: Mode::Acceptor,
            limit: 48,
            clients: 60,
            window: Duration::from_millis(1000),
            server: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = || it.next().unwrap_or_else(|| usage(&arg));
            match arg.as_str() {
                "--mode" => {
                    a.mode = match value().as_str() {
                        "acceptor" => Mode::Acceptor,
                        "naive" => Mode::Naive,
                        _ => usage("--mode"),
                    }
                }
                "--limit" => a.limit = value().parse().unwrap_or_else(|_| usage("--limit")),
                "--clients" => a.clients = value().parse().unwrap_or_else(|_| usage("--clients")),
                "--window-ms" => {
                    a.window = Duration::from_millis(
                        value().parse().unwrap_or_else(|_| usage("--window-ms")),
                    )
                }
                "--server" => a.server = true,
                _ => usage(&arg),
            }
        }
        a
    }

    fn usage(bad: &str) -> ! {
        eprintln!(
            "bad argument {bad:?}; usage: fd_limit [--mode acceptor|naive] [--limit N] \
             [--clients N] [--window-ms N]"
        );
        std::process::exit(2);
    }

    pub(crate) fn main() -> io::Result<()> {
        let args = args();
        if args.server {
            server(args.mode, args.limit)
        } else {
            drive(&args)
        }
    }

    /// This process's CPU time (user + system), in microseconds.
    fn cpu_us(who: libc::c_int) -> u64 {
        // SAFETY: `usage` is a valid out-pointer; getrusage only writes it.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(who, &mut usage);
            usage
        };
        tv_us(usage.ru_utime) + tv_us(usage.ru_stime)
    }

    fn tv_us(tv: libc::timeval) -> u64 {
        tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64
    }

    // ---- the server (the child) ------------------------------------------

    fn server(mode: Mode, limit: u64) -> io::Result<()> {
        let lim = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: limit as libc::rlim_t,
        };
        // SAFETY: `lim` is a valid rlimit; lowering our own limit is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut rt = Runtime::new()?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        println!("port {}", listener.local_addr()?.port());

        let mut acceptor = None;
        let mut naive = None;
        match mode {
            Mode::Acceptor => {
                let mut a = Acceptor::new(listener, LISTENER, RESUME)?;
                a.register(&mut rt)?;
                acceptor = Some(a);
            }
            Mode::Naive => {
                listener.set_nonblocking(true)?;
                rt.register(&listener, LISTENER, Interest::READABLE)?;
                naive = Some(listener);
            }
        }

        let mut conns: HashMap<u64, TcpStream> = HashMap::new();
        let mut next = 0u64;
        let mut accepted = 0u64;
        let mut naive_errors = 0u64;
        let mut waits = 0u64;
        let mut last_status: Option<Instant> = None;
        let mut events = Events::with_capacity(256);
        loop {
            rt.wait(&mut events, None)?;
            waits += 1;
            for event in &events {
                match *event {
                    Event::Io {
                        token: LISTENER, ..
                    } => {
                        if let Some(a) = acceptor.as_mut() {
                            a.accept_all(&mut rt, |rt, mut stream, _| {
                                stream.write_all(GREETING)?;
                                rt.register(&stream, Token(next), Interest::READABLE)?;
                                conns.insert(next, stream);
                                next += 1;
                                Ok(())
                            })?;
                            accepted = a.stats().accepted;
                            if a.is_paused() {
                                status(accepted, a.stats().pauses, waits);
                            }
                        } else if let Some(l) = naive.as_ref() {
                            loop {
                                match l.accept() {
                                    Ok((mut stream, _)) => {
                                        stream.set_nonblocking(true)?;
                                        stream.write_all(GREETING)?;
                                        rt.register(&stream, Token(next), Interest::READABLE)?;
                                        conns.insert(next, stream);
                                        next += 1;
                                        accepted += 1;
                                    }
                                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                    Err(_) => {
                                        // "log it and carry on"
                                        naive_errors += 1;
                                        if last_status.map_or(true, |t| {
                                            t.elapsed() >= Duration::from_millis(100)
                                        }) {
                                            status(accepted, naive_errors, waits);
                                            last_status = Some(Instant::now());
                                        }
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Event::Timer { key: RESUME, .. } => {
                        if let Some(a) = acceptor.as_mut() {
                            a.resume(&mut rt)?;
                        }
                    }
                    Event::Io { token, .. } => {
                        let Some(stream) = conns.get_mut(&token.0) else {
                            continue;
                        };
                        let mut buf = [0u8; 64];
                        let open = loop {
                            match stream.read(&mut buf) {
                                Ok(0) => break false,
                                Ok(n) if buf[..n].windows(4).any(|w| w == b"quit") => {
                                    let failed = acceptor
                                        .as_ref()
                                        .map_or(naive_errors, |a| a.stats().pauses);
                                    println!(
                                        "done accepted={accepted} exhausted={failed} \
                                         waits={waits} cpu_us={}",
                                        cpu_us(libc::RUSAGE_SELF)
                                    );
                                    return Ok(());
                                }
                                Ok(_) => {}
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(_) => break false,
                            }
                        };
                        if !open {
                            let stream = conns.remove(&token.0).expect("present");
                            rt.deregister(&stream)?;
                            drop(stream);
                            // A descriptor is free: no need to wait for the
                            // timer.
                            if let Some(a) = acceptor.as_mut() {
                                a.resume(&mut rt)?;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn status(accepted: u64, exhausted: u64, waits: u64) {
        println!(
            "status accepted={accepted} exhausted={exhausted} waits={waits} cpu_us={}",
            cpu_us(libc::RUSAGE_SELF)
        );
    }

    // ---- the driver (the parent) ------------------------------------------

    /// `key=value` fields of a status line.
    fn field(line: &str, key: &str) -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    }

    struct Client {
        stream: TcpStream,
        got: Vec<u8>,
        open: bool,
    }

    enum Phase {
        /// Until the server is stuck at the limit and its greetings are in.
        Filling,
        /// Watching the stuck server: first status seen at `t0`, `cpu0`.
        Window {
            t0: Instant,
            cpu0: u64,
            exhausted0: u64,
        },
        /// The greeted clients are gone; waiting for the rest to be served.
        Draining,
        /// Asked the server to stop.
        Quitting,
    }

    fn drive(args: &Args) -> io::Result<()> {
        let mode = match args.mode {
            Mode::Acceptor => "acceptor",
            Mode::Naive => "naive",
        };
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "--server",
                "--mode",
                mode,
                "--limit",
                &args.limit.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = lines.next().expect("the server's first line")?;
        let port = first
            .strip_prefix("port ")
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));

        let mut rt = Runtime::new()?;
        // The server's lines come through a thread that wakes the loop.
        let (tx, rx) = mpsc::channel();
        let poster = rt.poster();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if tx.send(line).is_err() || poster.post(LINE, 0).is_err() {
                    return;
                }
            }
        });

        let mut clients = Vec::new();
        for i in 0..args.clients {
            let stream = TcpStream::connect(("127.0.0.1", port))?;
            stream.set_nonblocking(true)?;
            rt.register(&stream, Token(i as u64), Interest::READABLE)?;
            clients.push(Client {
                stream,
                got: Vec::new(),
                open: true,
            });
        }

        let mut phase = Phase::Filling;
        let mut stuck_at = 0u64;
        let mut first_batch = None;
        let mut window = None;
        let mut done_line = None;
        let mut events = Events::with_capacity(256);
        let mut phase_start = Instant::now();
        while done_line.is_none() {
            assert!(
                phase_start.elapsed() < GUARD,
                "stuck (greeted {} of {})",
                greeted(&clients),
                clients.len()
            );
            rt.wait(&mut events, Some(GUARD))?;
            let mut status = None;
            for event in &events {
                match *event {
                    Event::Io { token, .. } => read_greeting(&mut clients[token.0 as usize]),
                    Event::Completion { key: LINE, .. } => {
                        while let Ok(line) = rx.try_recv() {
                            if line.starts_with("status ") {
                                status = Some(line);
                            } else if line.starts_with("done ") {
                                done_line = Some(line);
                            }
                        }
                    }
                    _ => {}
                }
            }
            let greeted = greeted(&clients) as u64;
            if let Some(line) = &status {
                stuck_at = field(line, "accepted");
            }
            match phase {
                Phase::Filling => {
                    if let Some(line) = &status {
                        if stuck_at > 0 && greeted == stuck_at {
                            first_batch = Some(greeted);
                            phase = Phase::Window {
                                t0: Instant::now(),
                                cpu0: field(line, "cpu_us"),
                                exhausted0: field(line, "exhausted"),
                            };
                        }
                    }
                }
                Phase::Window {
                    t0,
                    cpu0,
                    exhausted0,
                } => {
                    if let (Some(line), true) = (&status, t0.elapsed() >= args.window) {
                        window = Some((
                            t0.elapsed(),
                            field(line, "cpu_us") - cpu0,
                            field(line, "exhausted") - exhausted0,
                        ));
                        // Free the server's descriptors: close the greeted.
                        for c in clients.iter_mut().filter(|c| c.got == GREETING) {
                            rt.deregister(&c.stream)?;
                            c.stream.shutdown(std::net::Shutdown::Both)?;
                            c.open = false;
                        }
                        phase = Phase::Draining;
                        phase_start = Instant::now();
                    }
                }
                Phase::Draining => {
                    if greeted == clients.len() as u64 {
                        for c in clients.iter_mut().filter(|c| c.open) {
                            rt.deregister(&c.stream)?;
                            c.stream.shutdown(std::net::Shutdown::Both)?;
                            c.open = false;
                        }
                        let mut quit = TcpStream::connect(("127.0.0.1", port))?;
                        quit.write_all(b"quit\n")?;
                        clients.push(Client {
                            stream: quit,
                            got: GREETING.to_vec(),
                            open: false,
                        });
                        phase = Phase::Quitting;
                        phase_start = Instant::now();
                    }
                }
                Phase::Quitting => {}
            }
        }

        // The child's own account of its CPU time, whole run.
        let mut wstatus = 0;
        // SAFETY: waits for our own child; both out-pointers are valid.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::wait4(child.id() as libc::pid_t, &mut wstatus, 0, &mut usage);
            usage
        };
        let run = started.elapsed();
        let run_cpu = tv_us(usage.ru_utime) + tv_us(usage.ru_stime);
        let exited_ok = libc::WIFEXITED(wstatus) && libc::WEXITSTATUS(wstatus) == 0;
        let (window_wall, window_cpu, window_exhausted) = window.expect("the window was watched");
        let done = done_line.expect("loop ends on it");
        let pct = |cpu_us: u64, wall: Duration| cpu_us as f64 / 1e4 / wall.as_secs_f64();
        println!(
            "summary mode={mode} limit={} clients={} first_batch={} served={} exited_ok={exited_ok} \
             window_ms={} window_cpu_us={window_cpu} window_cpu_pct={:.2} window_failed_accepts={window_exhausted} \
             run_ms={} run_cpu_us={run_cpu} run_cpu_pct={:.2} failed_accepts={} server_waits={}",
            args.limit,
            args.clients,
            first_batch.unwrap_or(0),
            // The quit client counts as greeted; it is not a client.
            greeted(&clients) - 1,
            window_wall.as_millis(),
            pct(window_cpu, window_wall),
            run.as_millis(),
            pct(run_cpu, run),
            field(&done, "exhausted"),
            field(&done, "waits"),
        );
        Ok(())
    }

    fn greeted(clients: &[Client]) -> usize {
        clients.iter().filter(|c| c.got == GREETING).count()
    }

    fn read_greeting(c: &mut Client) {
        let mut buf = [0u8; 64];
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    c.got.extend_from_slice(&buf[..n]);
                    assert!(c.got.len() <= GREETING.len(), "greeted twice: {:?}", c.got);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("client read: {e}"),
            }
        }
    }
}
