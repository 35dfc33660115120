//! Helpers for the talker's integration tests: start the built binary on a
//! free port, talk to it over TCP and over its stdin/stdout. Every wait is
//! "until this line arrives", bounded by a generous deadline.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long any expected thing may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running talker.
pub struct Talker {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Receiver<String>,
    pub stderr: Receiver<String>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The stdout pipe when nobody reads it ([`Talker::start_unread`]).
    pub unread_stdout: Option<ChildStdout>,
    /// The stderr pipe when nobody reads it ([`Talker::start_stderr_unread`]).
    pub unread_stderr: Option<ChildStderr>,
}

fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if std::env::var_os("TALKER_TEST_ECHO").is_some() {
                eprintln!("| {line}");
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The password the tests give `name`.
pub fn password_of(name: &str) -> String {
    format!("pw-{}", name.to_ascii_lowercase())
}

/// A fresh, empty directory for one test.
#[track_caller]
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("talker-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits for a line containing `want` on `rx`; returns it.
#[track_caller]
pub fn expect_line(rx: &Receiver<String>, want: &str, what: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(want) => return line,
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Timeout) => {
                panic!("{what}: no line with {want:?} in time; saw {seen:#?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{what}: closed before {want:?}; saw {seen:#?}")
            }
        }
    }
}

impl Talker {
    /// Starts the talker on 127.0.0.1:0 with `args`, in a fresh data dir.
    #[track_caller]
    pub fn start(name: &str, args: &[&str]) -> Talker {
        Talker::start_in(temp_dir(name), args)
    }

    /// As [`start`], with a given data dir.
    #[track_caller]
    pub fn start_in(data_dir: PathBuf, args: &[&str]) -> Talker {
        Talker::spawn(data_dir, args, true, true)
    }

    /// As [`start`], but nothing ever reads the talker's stdout (it must
    /// be `--mcp`, whose banner goes to stderr).
    #[track_caller]
    pub fn start_unread(name: &str, args: &[&str]) -> Talker {
        Talker::spawn(temp_dir(name), args, false, true)
    }

    /// As [`start`], but nothing reads the talker's stderr (its log) until
    /// the test drops [`Talker::unread_stderr`].
    #[track_caller]
    pub fn start_stderr_unread(name: &str, args: &[&str]) -> Talker {
        Talker::spawn(temp_dir(name), args, true, false)
    }

    #[track_caller]
    fn spawn(data_dir: PathBuf, args: &[&str], read_stdout: bool, read_stderr: bool) -> Talker {
        // Every test client comes from 127.0.0.1 and many type fast: the
        // per-address cap and flood control are off unless a test sets
        // them.
        let mut defaults = Vec::new();
        // Password hashes are cheap too (a debug build is slow at the
        // default 19 MiB).
        for (flag, value) in [
            ("--max-per-address", "100000"),
            ("--flood-rate", "0"),
            ("--argon2-memory", "64"),
        ] {
            if !args.contains(&flag) {
                defaults.extend([flag, value]);
            }
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_talker"))
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(defaults)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the talker binary starts");
        let stdin = child.stdin.take();
        let (stdout, unread_stdout) = if read_stdout {
            (lines_of(child.stdout.take().unwrap()), None)
        } else {
            (mpsc::channel().1, child.stdout.take())
        };
        let (stderr, unread_stderr) = if read_stderr {
            (lines_of(child.stderr.take().unwrap()), None)
        } else {
            (mpsc::channel().1, child.stderr.take())
        };
        let mcp = args.contains(&"--mcp");
        let banner = expect_line(
            if mcp { &stderr } else { &stdout },
            "listening on",
            "banner",
        );
        let addr = banner
            .split_whitespace()
            .find_map(|w| w.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {banner:?}"));
        assert_ne!(addr.port(), 0, "the real port is printed");
        Talker {
            child,
            stdin,
            stdout,
            stderr,
            addr,
            data_dir,
            unread_stdout,
            unread_stderr,
        }
    }

    /// Writes a line to the talker's stdin.
    #[track_caller]
    pub fn console(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for a stdout line containing `want`.
    #[track_caller]
    pub fn expect_stdout(&self, want: &str) -> String {
        expect_line(&self.stdout, want, "stdout")
    }

    /// Waits for a stderr (log) line containing `want`.
    #[track_caller]
    pub fn expect_log(&self, want: &str) -> String {
        expect_line(&self.stderr, want, "log")
    }

    /// A new client.
    #[track_caller]
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A new client, logged in as `name` (a new account, whose password
    /// is [`password_of`]).
    #[track_caller]
    pub fn login(&self, name: &str) -> Client {
        let mut c = self.connect();
        c.expect("By what name");
        c.register(name);
        c.expect("Exits:");
        c
    }

    /// Waits for the process to exit.
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the talker did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where [`Client`] is in the server's telnet commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tn {
    Data,
    Iac,
    Option,
    Sb,
    SbIac,
}

/// A scripted telnet client. Lines are the text the server sent with its
/// telnet commands taken out, and a prompt (text ended by `IAC GA` or
/// `IAC EOR`) dropped; [`Client::raw`] keeps every byte.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Every byte received, for checks on raw telnet bytes.
    pub raw: Vec<u8>,
    /// Prompts seen (`IAC GA` / `IAC EOR`).
    pub prompts: usize,
    tn: Tn,
}

impl Client {
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        Client::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
            raw: Vec::new(),
            prompts: 0,
            tn: Tn::Data,
        }
    }

    /// After "By what name": gives a new `name`, chooses its password
    /// ([`password_of`]) twice, waits for the welcome.
    #[track_caller]
    pub fn register(&mut self, name: &str) {
        self.send(name);
        self.expect("Choose a password:");
        self.send(&password_of(name));
        self.expect("Type it again:");
        self.send(&password_of(name));
        self.expect(&format!("Welcome, {name}!"));
    }

    /// After "By what name": gives a known `name` and its password; waits
    /// for the welcome back.
    #[track_caller]
    pub fn relogin(&mut self, name: &str) {
        self.send(name);
        self.expect("Password:");
        self.send(&password_of(name));
        self.expect(&format!("Welcome back, {name}!"));
    }

    /// Sends a line (with CR LF).
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads more; `false` at end of stream.
    fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.raw.extend_from_slice(&chunk[..n]);
                for &b in &chunk[..n] {
                    self.telnet_byte(b);
                }
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    fn telnet_byte(&mut self, b: u8) {
        self.tn = match (self.tn, b) {
            (Tn::Data, 255) => Tn::Iac,
            (Tn::Data, b) => {
                self.buf.push(b);
                Tn::Data
            }
            (Tn::Iac, 255) => {
                self.buf.push(255);
                Tn::Data
            }
            (Tn::Iac, 251..=254) => Tn::Option,
            (Tn::Iac, 250) => Tn::Sb,
            // GA or EOR: what came since the last line end was a prompt.
            (Tn::Iac, 249 | 239) => {
                self.prompts += 1;
                let keep = self
                    .buf
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                self.buf.truncate(keep);
                Tn::Data
            }
            (Tn::Iac | Tn::Option, _) | (Tn::SbIac, 240) => Tn::Data,
            (Tn::Sb | Tn::SbIac, 255) => Tn::SbIac,
            (Tn::Sb | Tn::SbIac, _) => Tn::Sb,
        };
    }

    /// One read (waiting up to 200 ms); `false` at end of stream.
    pub fn read_some(&mut self) -> bool {
        self.fill().unwrap_or(false)
    }

    /// The next line, or `None` at end of stream.
    #[track_caller]
    pub fn next_line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).collect();
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                return Some(text);
            }
            assert!(
                Instant::now() < deadline,
                "no line in time; pending {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            match self.fill() {
                Ok(true) => {}
                Ok(false) | Err(_) => return None,
            }
        }
    }

    /// Reads lines until one contains `want`; returns the lines before it
    /// and the line.
    #[track_caller]
    pub fn expect(&mut self, want: &str) -> (Vec<String>, String) {
        let deadline = Instant::now() + DEADLINE;
        let mut before = Vec::new();
        loop {
            match self.next_line(deadline) {
                Some(line) if line.contains(want) => return (before, line),
                Some(line) => before.push(line),
                None => panic!("connection closed before {want:?}; saw {before:#?}"),
            }
        }
    }

    /// Reads until the server closes the connection; returns the lines.
    #[track_caller]
    pub fn expect_eof(&mut self) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        let mut lines = Vec::new();
        while let Some(line) = self.next_line(deadline) {
            lines.push(line);
        }
        lines
    }
}
