//! The C chat servers in `c/` (one on libuniloop, one on libuv): building
//! them, running one as a child process, and the load generator that
//! drives it and checks every line.
//!
//! Self-contained (std and libc only): `tests/chat.rs` includes this file
//! as a module too.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The C sources and the headers they include.
fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

fn capi_include() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../uniloop-capi/include")
}

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Server {
    Uniloop,
    Libuv,
}

impl Server {
    fn stem(self) -> &'static str {
        match self {
            Server::Uniloop => "chat_uniloop",
            Server::Libuv => "chat_libuv",
        }
    }
}

/// `cargo build -p uniloop-capi` for the profile whose output directory is
/// `profile_dir` (`target/release` or `target/debug`); returns the path of
/// `libuniloop.a`.
pub(crate) fn build_libuniloop(profile_dir: &Path) -> io::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // The workspace's manifest, so this works from any directory.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    cmd.args(["build", "-q", "-p", "uniloop-capi", "--manifest-path"])
        .arg(manifest);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status()?;
    if !status.success() {
        return Err(io::Error::other(
            "cargo build -p uniloop-capi failed (see above)",
        ));
    }
    let lib = profile_dir.join("libuniloop.a");
    if !lib.exists() {
        return Err(io::Error::other(format!("{} was not built", lib.display())));
    }
    Ok(lib)
}

/// libuv's compiler and linker flags from pkg-config; `Err` with the reason
/// when libuv (Debian: libuv1-dev) is not installed.
pub(crate) fn libuv_flags() -> Result<Vec<String>, String> {
    match Command::new("pkg-config")
        .args(["--cflags", "--libs", "libuv"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()),
        Ok(_) => Err("libuv is not installed (apt-get install libuv1-dev)".to_string()),
        Err(e) => Err(format!(
            "pkg-config could not run ({e}); libuv1-dev needs it"
        )),
    }
}

/// Compiles `server` into `out_dir` (optimised, warnings as errors); `lib`
/// is `libuniloop.a` for the libuniloop server.
pub(crate) fn build_server(server: Server, lib: &Path, out_dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let exe = out_dir.join(server.stem());
    let mut cc = Command::new("cc");
    cc.args([
        "-std=c11",
        "-O2",
        "-g",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-D_GNU_SOURCE",
    ])
    .arg(sources().join(format!("{}.c", server.stem())))
    .arg("-o")
    .arg(&exe);
    match server {
        Server::Uniloop => {
            cc.arg("-I")
                .arg(capi_include())
                .arg(lib)
                .args(["-lpthread", "-ldl", "-lm"]);
        }
        Server::Libuv => {
            cc.args(libuv_flags().map_err(io::Error::other)?);
        }
    }
    let out = cc.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "cc {}.c failed:\n{}",
            server.stem(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(exe)
}

/// The size of one load: `clients` clients, `rounds` rounds, in each of
/// which every client sends `lines` lines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub(crate) clients: usize,
    pub(crate) rounds: usize,
    pub(crate) lines: usize,
}

impl Load {
    /// Lines the server delivers: each line to every other client.
    pub(crate) fn deliveries(self) -> u64 {
        (self.clients * self.rounds * self.lines * (self.clients - 1)) as u64
    }
}

/// What one run of a server under a load gave.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outcome {
    /// The server process's CPU time, user + system, over its whole life.
    pub(crate) server_cpu: Duration,
    /// From the first line sent to the last line checked.
    pub(crate) wall: Duration,
    /// Lines delivered and checked.
    pub(crate) lines: u64,
}

/// Starts `exe` for `load`, drives it, checks every line, waits for it to
/// exit and reads its CPU time from `wait4`.
pub(crate) fn run(exe: &Path, load: Load, extra: &[&str]) -> io::Result<Outcome> {
    let mut child = Command::new(exe)
        .arg(load.clients.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let r = port_of(&mut child)
        .and_then(|port| generate(SocketAddr::from(([127, 0, 0, 1], port)), load));
    // Every client is closed by now (or dropped on failure): the server
    // exits; on failure it is killed instead of waited for.
    if r.is_err() {
        let _ = child.kill();
    }
    let (status, cpu) = wait4(&mut child)?;
    let (wall, lines) = r?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "{} exited with {status}",
            exe.display()
        )));
    }
    Ok(Outcome {
        server_cpu: cpu,
        wall,
        lines,
    })
}

/// Reads the server's `port N` line.
fn port_of(child: &mut Child) -> io::Result<u16> {
    let out = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("chat: no stdout"))?;
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line)?;
    line.trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::other(format!("chat: server said {line:?}, not \"port N\"")))
}

/// Waits for the child and returns its exit status and CPU time.
fn wait4(child: &mut Child) -> io::Result<(std::process::ExitStatus, Duration)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are valid out-pointers; `pid` is our
        // own child, not yet reaped (std's `Child` has not waited).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok((
        std::process::ExitStatus::from_raw(status),
        tv(ru.ru_utime) + tv(ru.ru_stime),
    ))
}

/// One client of the generator.
struct Client {
    s: TcpStream,
    /// Bytes of a line not complete yet.
    partial: Vec<u8>,
    /// Lines of this round read so far, per sender.
    from: Vec<u32>,
    got: usize,
}

/// `"c0012 r000004 l02 ...padding\n"`: the sender, the round, the line's
/// number within the round.
fn line(sender: usize, round: usize, n: usize) -> Vec<u8> {
    format!("c{sender:04} r{round:06} l{n:02} the quick brown fox jumps over\n").into_bytes()
}

/// Connects the clients and runs the rounds: in each, every client sends
/// its lines, and the round ends when every client has read the lines of
/// all the others, checked one by one (sender, round, order per sender, no
/// line of its own, none missing or repeated). Returns the rounds' wall
/// time and the lines checked.
pub(crate) fn generate(addr: SocketAddr, load: Load) -> io::Result<(Duration, u64)> {
    let mut clients = Vec::with_capacity(load.clients);
    for _ in 0..load.clients {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        clients.push(Client {
            s,
            partial: Vec::new(),
            from: vec![0; load.clients],
            got: 0,
        });
    }
    // The server must have accepted every client before the first line,
    // or it would not send that line to a client it does not know yet.
    sync(&mut clients)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pfds: Vec<libc::pollfd> = clients
        .iter()
        .map(|c| libc::pollfd {
            fd: c.s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let per_client = (load.clients - 1) * load.lines;
    let mut checked = 0u64;
    let start = Instant::now();
    for round in 0..load.rounds {
        for (i, c) in clients.iter_mut().enumerate() {
            let mut out = Vec::new();
            for n in 0..load.lines {
                out.extend_from_slice(&line(i, round, n));
            }
            write_all_nonblocking(&mut c.s, &out)?;
        }
        let mut left = load.clients * per_client;
        while left > 0 {
            poll(&mut pfds, 10_000, || {
                format!("chat: round {round}: {left} lines missing after 10 s")
            })?;
            for (i, pfd) in pfds.iter().enumerate() {
                if pfd.revents == 0 {
                    continue;
                }
                let c = &mut clients[i];
                let k = match c.s.read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("chat: server closed a connection")),
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                };
                c.partial.extend_from_slice(&buf[..k]);
                let mut used = 0;
                while let Some(nl) = c.partial[used..].iter().position(|&b| b == b'\n') {
                    let got = &c.partial[used..used + nl + 1];
                    check_line(got, i, round, &mut c.from, load)?;
                    used += nl + 1;
                    c.got += 1;
                    checked += 1;
                    left -= 1;
                }
                c.partial.drain(..used);
            }
        }
        for (i, c) in clients.iter_mut().enumerate() {
            if c.got != per_client || !c.partial.is_empty() {
                return Err(io::Error::other(format!(
                    "chat: client {i} read {} lines in round {round}, not {per_client}",
                    c.got
                )));
            }
            c.got = 0;
            c.from.iter_mut().for_each(|n| *n = 0);
        }
    }
    Ok((start.elapsed(), checked))
}

/// Checks one line client `me` read in `round`: from another client, of
/// this round, the next line from that sender.
fn check_line(got: &[u8], me: usize, round: usize, from: &mut [u32], load: Load) -> io::Result<()> {
    let bad = || {
        io::Error::other(format!(
            "chat: client {me}, round {round}: unexpected line {:?}",
            String::from_utf8_lossy(got)
        ))
    };
    let text = std::str::from_utf8(got).map_err(|_| bad())?;
    let num = |at: usize, len: usize| text.get(at..at + len).and_then(|s| s.parse::<usize>().ok());
    let (sender, r, n) = (num(1, 4), num(7, 6), num(15, 2));
    let (Some(sender), Some(r), Some(n)) = (sender, r, n) else {
        return Err(bad());
    };
    if sender >= load.clients
        || sender == me
        || r != round
        || n != from[sender] as usize
        || got != line(sender, round, n)
    {
        return Err(bad());
    }
    from[sender] += 1;
    Ok(())
}

/// Makes sure the server has accepted every client: the last client to
/// connect sends a probe line, and every other client must read it (the
/// server accepts in the order the connections were made, so once it has
/// the last one it has them all).
fn sync(clients: &mut [Client]) -> io::Result<()> {
    let probe = b"c9999 sync\n";
    let last = clients.len() - 1;
    write_all_nonblocking(&mut clients[last].s, probe)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    for c in &mut clients[..last] {
        let mut got = Vec::new();
        while got.len() < probe.len() {
            let mut b = [0u8; 64];
            match c.s.read(&mut b[..probe.len() - got.len()]) {
                Ok(0) => return Err(io::Error::other("chat: server closed a connection")),
                Ok(k) => got.extend_from_slice(&b[..k]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err(io::Error::other(
                            "chat: the server did not accept every client",
                        ));
                    }
                    let mut pfd = [libc::pollfd {
                        fd: c.s.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    poll(&mut pfd, 1000, String::new).or_else(|e| {
                        if e.kind() == io::ErrorKind::TimedOut {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })?;
                }
                Err(e) => return Err(e),
            }
        }
        if got != probe {
            return Err(io::Error::other(
                "chat: a client read something else than the probe",
            ));
        }
    }
    Ok(())
}

/// `poll(2)` on `pfds`, restarted on EINTR; a `TimedOut` error, saying
/// `what()`, if nothing is ready within `timeout_ms`.
fn poll(pfds: &mut [libc::pollfd], timeout_ms: i32, what: impl Fn() -> String) -> io::Result<()> {
    loop {
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if r > 0 {
            return Ok(());
        }
        if r == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, what()));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Writes all of `data` on a non-blocking socket, waiting for room.
fn write_all_nonblocking(s: &mut TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match s.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut pfd = [libc::pollfd {
                    fd: s.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                poll(&mut pfd, 10_000, || {
                    "chat: a client could not send for 10 s".to_string()
                })?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
