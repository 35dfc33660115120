//! The server loop: one thread, one [`Runtime::wait`], and everything
//! arrives through it — new connections (an [`Acceptor`]), finished reads
//! and writes (posted I/O), the heartbeat and autosave timers, reverse-DNS
//! answers and save results from worker pools, the operator's console (or
//! MCP) lines, and SIGINT/SIGTERM.
//!
//! Keys: timers and completions each have their own key space; a
//! per-connection timer carries the connection's token in its key.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uniloop::{
    Acceptor, Backend, Console, ConsoleEvent, Event, Events, Interest, JobId, OpId, OpKind,
    Overflow, Queue, Runtime, Signal, Signals, Token, WorkerPool,
};

use crate::conn::{self, Closing, Conn, Phase};
use crate::mcp::McpSession;
use crate::output::Stdout;
use crate::persist::{self, Progress, Report, Saved};
use crate::resolve;
use crate::world::Rooms;

pub mod accounts;
pub mod saving;

use self::accounts::{Failures, PwResult};
use self::saving::SaveBy;

const LISTENER: Token = Token(0);

// Timer keys.
const HEARTBEAT: u64 = 1;
const AUTOSAVE: u64 = 2;
const RESUME_ACCEPT: u64 = 3;
/// Login timeout of connection `token`: `LOGIN_TIMEOUT | token`.
const LOGIN_TIMEOUT: u64 = 1 << 62;
/// The wait after a wrong password of connection `token`.
pub(crate) const PW_RETRY: u64 = 1 << 61;

// Completion keys.
const SIGNAL: u64 = 1;
const CONSOLE: u64 = 2;
const RESOLVED: u64 = 3;
const SAVED: u64 = 4;
const SAVE_PROGRESS: u64 = 5;
const PASSWORD: u64 = 6;

/// The heartbeat, as in the reference driver.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(2);
/// How long a closing connection may take to flush and hang up.
const LINGER: Duration = Duration::from_secs(5);
/// How long shutdown waits for goodbyes to be flushed.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);
/// Idle time before TCP keepalive probes start, and between them.
const KEEPALIVE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Bytes per posted read.
const READ_BUF: usize = 4096;
/// Chat lines kept for the MCP `chat log` resource.
const CHAT_LOG: usize = 200;

/// Everything the flags decide.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub addr: String,
    /// Idle time after which a logged-in user is disconnected.
    pub idle_timeout: Option<Duration>,
    /// Time allowed to log in.
    pub login_timeout: Duration,
    /// Where the state is saved (and `rooms.txt` may override the rooms).
    pub data_dir: PathBuf,
    /// stdin/stdout speak MCP instead of the operator console.
    pub mcp: bool,
    /// Connections beyond this are turned away.
    pub max_clients: usize,
    /// The readiness backend.
    pub backend: Backend,
    /// Per-connection limit of unsent output, in bytes.
    pub write_limit: usize,
    /// Longest input line, in bytes.
    pub max_line: usize,
    /// Period of the autosave.
    pub autosave: Duration,
    /// Connections from one address beyond this are turned away.
    pub max_per_address: usize,
    /// Flood control: lines (say, emote, shout, tell) a user may send at
    /// once, and a second after that (0: no limit).
    pub flood_burst: f64,
    /// See `flood_burst`.
    pub flood_rate: f64,
    /// Argon2id memory per password hash, KiB.
    pub argon2_memory_kib: u32,
}

/// Counters for `stats`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Turns of the loop (`wait` calls).
    pub iterations: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections turned away (`--max-clients`).
    pub refused: u64,
    /// Connections turned away (`--max-per-address`).
    pub refused_per_address: u64,
    /// Lines not sent for talking too fast (flood control).
    pub flood_refused: u64,
    /// Wrong passwords.
    pub login_failures: u64,
    /// Messages since start.
    pub messages: u64,
    /// Messages per second over the last heartbeat.
    pub rate: f64,
    /// Slow clients dropped.
    pub dropped_slow: u64,
    /// Users kicked for idling.
    pub idle_kicks: u64,
    /// Saves done / failed.
    pub saves: u64,
    /// Saves that failed.
    pub save_failures: u64,
    messages_at_beat: u64,
    last_beat: Option<Instant>,
}

/// The whole talker.
#[derive(Debug)]
pub struct Server {
    /// First, so dropped before `conns`: posted I/O is done through the
    /// streams' numbers, which must stay open while the runtime lives.
    pub(crate) rt: Runtime,
    pub(crate) cfg: Config,
    pub(crate) rooms: Rooms,
    pub(crate) saved: Saved,
    acceptor: Option<Acceptor>,
    pub(crate) conns: HashMap<u64, Conn>,
    /// Logged-in users: lower-case name → token.
    pub(crate) by_name: HashMap<String, u64>,
    /// Logged-in users in each room, so a room's broadcast and `look`
    /// cost what the room holds, not every connection.
    pub(crate) members: Vec<HashSet<u64>>,
    /// Open connections per peer address (`--max-per-address`).
    per_address: HashMap<IpAddr, usize>,
    next_token: u64,
    /// The data directory's lock, held while the talker runs.
    _lock: std::fs::File,
    pub(crate) resolver: Option<WorkerPool<Option<String>>>,
    pub(crate) saver: Option<WorkerPool<Result<Report, String>>>,
    /// Password hashing and checking, off the loop.
    pub(crate) hasher: Option<WorkerPool<PwResult>>,
    /// Wrong passwords per address, recently.
    pub(crate) login_failures: HashMap<IpAddr, Failures>,
    pub(crate) save_progress: Queue<Progress>,
    pub(crate) save_job: Option<(JobId, SaveBy)>,
    pub(crate) save_again: bool,
    console: Option<Console>,
    /// Operator / MCP output, written by a worker so the loop never
    /// blocks on a reader that does not read.
    pub(crate) stdout: Stdout,
    pub(crate) mcp: Option<McpSession>,
    /// MCP log notifications not yet sent: (level, text).
    mcp_outbox: Vec<(&'static str, String)>,
    signals: Option<Signals>,
    pub(crate) chat_log: VecDeque<String>,
    /// The last lines said in each room (`review`).
    pub(crate) history: Vec<VecDeque<String>>,
    /// The message of the day (`DIR/motd.txt`), shown after login.
    pub(crate) motd: Option<String>,
    /// Logins and logouts of this turn of the loop, announced together at
    /// its end: (room, name, arrived).
    pub(crate) comings: Vec<(usize, String, bool)>,
    pub(crate) counters: Counters,
    /// Connections to drop at the end of this event, and why.
    pub(crate) doomed: Vec<(u64, String)>,
    /// Set when shutdown began: the time by which it ends.
    shutdown_deadline: Option<Instant>,
    pub(crate) started: Instant,
    local_addr: SocketAddr,
}

impl Server {
    /// Binds the listener, loads rooms and state, starts the pools, the
    /// console (or MCP) and the signal handlers.
    ///
    /// # Errors
    ///
    /// Binding, a bad rooms file or state file, or the OS refusing a
    /// thread or a registration.
    pub fn new(cfg: Config) -> io::Result<Server> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        let lock = lock_data_dir(&cfg.data_dir)?;
        let rooms_file = cfg.data_dir.join("rooms.txt");
        let rooms = match std::fs::read_to_string(&rooms_file) {
            Ok(text) => Rooms::parse(&text)
                .map_err(|e| invalid(format!("{}: {e}", rooms_file.display())))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Rooms::parse(crate::world::DEFAULT_ROOMS).map_err(|e| invalid(e.to_string()))?
            }
            Err(e) => return Err(e),
        };
        let motd = match std::fs::read_to_string(cfg.data_dir.join("motd.txt")) {
            Ok(text) => Some(text.trim_end().to_string()).filter(|t| !t.is_empty()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io::Error::new(e.kind(), format!("motd.txt: {e}"))),
        };
        let saved = persist::load(&cfg.data_dir)
            .map_err(invalid)?
            .unwrap_or_default();

        let mut rt = Runtime::builder()
            .backend(cfg.backend)
            .write_limit(cfg.write_limit)
            .build()?;
        let listener = TcpListener::bind(&cfg.addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", cfg.addr)))?;
        let local_addr = listener.local_addr()?;
        let mut acceptor = Acceptor::new(listener, LISTENER, RESUME_ACCEPT)?;
        acceptor.register(&mut rt)?;

        let poster = rt.poster();
        let mut signals = Signals::new(&poster, SIGNAL);
        signals.add(Signal::Interrupt)?;
        if Signal::Terminate.is_available() {
            signals.add(Signal::Terminate)?;
        }
        let resolver = WorkerPool::new(2, &poster, RESOLVED)?;
        let saver = WorkerPool::new(1, &poster, SAVED)?;
        let hasher = WorkerPool::new(2, &poster, PASSWORD)?;
        let save_progress = Queue::bounded(64, Overflow::DropOldest);
        save_progress.signal(&poster, SAVE_PROGRESS);
        let console = Console::spawn(&poster, CONSOLE)?;
        let stdout = Stdout::spawn()?;

        rt.add_timer(HEARTBEAT, HEARTBEAT_PERIOD, Some(HEARTBEAT_PERIOD));
        rt.add_timer(AUTOSAVE, cfg.autosave, Some(cfg.autosave));
        let mcp = cfg.mcp.then(McpSession::new);
        let room_count = rooms.iter().count();
        Ok(Server {
            rt,
            rooms,
            saved,
            acceptor: Some(acceptor),
            conns: HashMap::new(),
            by_name: HashMap::new(),
            members: vec![HashSet::new(); room_count],
            per_address: HashMap::new(),
            next_token: 1,
            _lock: lock,
            resolver: Some(resolver),
            saver: Some(saver),
            hasher: Some(hasher),
            login_failures: HashMap::new(),
            save_progress,
            save_job: None,
            save_again: false,
            console: Some(console),
            stdout,
            mcp,
            mcp_outbox: Vec::new(),
            signals: Some(signals),
            chat_log: VecDeque::new(),
            history: vec![VecDeque::new(); room_count],
            comings: Vec::new(),
            motd,
            counters: Counters::default(),
            doomed: Vec::new(),
            shutdown_deadline: None,
            started: Instant::now(),
            local_addr,
            cfg,
        })
    }

    /// The address actually bound (the port, if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until shutdown, then says goodbye, flushes (bounded), saves.
    ///
    /// # Errors
    ///
    /// Only a failing `wait` (the OS refusing the backend itself).
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = match self.shutdown_deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if self.conns.is_empty() || now >= deadline {
                        break;
                    }
                    Some(deadline - now)
                }
                None => None,
            };
            self.rt.wait(&mut events, timeout)?;
            self.counters.iterations += 1;
            for event in &events {
                self.on_event(*event);
                self.reap();
                self.flush_mcp();
            }
            self.announce_comings();
            self.reap();
        }
        self.finish();
        Ok(())
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Io {
                token: LISTENER, ..
            } => self.accept(),
            Event::IoDone {
                token, op, kind, ..
            } => self.on_io_done(token.0, op, kind),
            Event::Timer { key: HEARTBEAT, .. } => self.heartbeat(),
            Event::Timer { key: AUTOSAVE, .. } => self.request_save(SaveBy::Timer),
            Event::Timer {
                key: RESUME_ACCEPT, ..
            } => {
                if let Some(a) = self.acceptor.as_mut() {
                    if let Err(e) = a.resume(&mut self.rt) {
                        log(&format!("resuming the listener: {e}"));
                    }
                }
            }
            Event::Timer { key, .. } if key & LOGIN_TIMEOUT != 0 => {
                let token = key & !LOGIN_TIMEOUT;
                if let Some(c) = self.conns.get_mut(&token) {
                    c.login_timer = None;
                    if !matches!(c.phase, Phase::Playing { .. } | Phase::Gone) {
                        self.begin_close(token, Some("Login timed out. Goodbye."), "login timeout");
                    }
                }
            }
            Event::Completion { key: SIGNAL, data } => {
                let signal = Signal::from_raw(data as i32);
                self.begin_shutdown(&format!("signal {signal:?}"));
            }
            Event::Completion { key: CONSOLE, .. } => self.on_console(),
            Event::Completion {
                key: RESOLVED,
                data: token,
            } => {
                let answer = self.resolver.as_ref().and_then(|p| p.take_tagged(token));
                if let (Some((_, Ok(Some(host)))), Some(c)) = (answer, self.conns.get_mut(&token)) {
                    c.host = Some(host);
                }
            }
            Event::Completion { key: SAVED, data } => self.on_saved(JobId(data)),
            Event::Completion {
                key: PASSWORD,
                data: token,
            } => self.on_password_job(token),
            Event::Timer { key, .. } if key & PW_RETRY != 0 => {
                self.password_retry(key & !PW_RETRY);
            }
            Event::Completion {
                key: SAVE_PROGRESS, ..
            } => {
                while let Some(p) = self.save_progress.try_pop() {
                    if p.total > persist::CHUNK {
                        log(&format!("saving: {} of {} bytes", p.written, p.total));
                    }
                }
            }
            // Io for a connection: its readiness is consumed by the posted
            // read; nothing else is registered.
            _ => {}
        }
    }

    // ---- connections -------------------------------------------------

    fn accept(&mut self) {
        loop {
            let Some(acceptor) = self.acceptor.as_mut() else {
                return;
            };
            let (stream, peer) = match acceptor.accept(&mut self.rt) {
                Ok(Some(pair)) => pair,
                Ok(None) => return,
                Err(e) => {
                    log(&format!("accept: {e}"));
                    return;
                }
            };
            if let Err(e) = self.admit(stream, peer) {
                log(&format!("{peer}: could not be served: {e}"));
            }
        }
    }

    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
        if self.conns.len() >= self.cfg.max_clients {
            self.counters.refused += 1;
            // A best-effort line on a fresh socket (its buffer is empty).
            let _ = io::Write::write(
                &mut &stream,
                b"Sorry, the talker is full. Try again later.\r\n",
            );
            log(&format!(
                "{peer}: refused, {} clients already",
                self.conns.len()
            ));
            return Ok(());
        }
        let ip = peer.ip();
        let from_here = self.per_address.get(&ip).copied().unwrap_or(0);
        if from_here >= self.cfg.max_per_address {
            self.counters.refused_per_address += 1;
            let _ = io::Write::write(
                &mut &stream,
                b"Sorry, too many connections from your address.\r\n",
            );
            log(&format!(
                "{peer}: refused, {from_here} connections from {ip} already"
            ));
            return Ok(());
        }
        let _ = stream.set_nodelay(true);
        // A peer that vanishes (power cut, lost route) is noticed without
        // waiting for the idle timeout.
        let sock = socket2::SockRef::from(&stream);
        let _ = sock.set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(KEEPALIVE)
                .with_interval(KEEPALIVE_INTERVAL),
        );
        let token = self.next_token;
        self.next_token += 1;
        self.rt
            .register(&stream, Token(token), Interest::READABLE)?;
        let mut c = Conn::new(token, stream, peer, self.cfg.max_line, self.rooms.start());
        c.flood = conn::Bucket::new(Instant::now(), self.cfg.flood_burst, self.cfg.flood_rate);
        // SAFETY: `c` goes into `conns` below with no way out before it but
        // the error arm, which deregisters; a stream stays in `conns` until
        // `close_now` deregisters it, and `rt` is dropped before `conns`
        // (field order).
        match unsafe { self.rt.post_read(&c.stream, Vec::with_capacity(READ_BUF)) } {
            Ok(op) => c.read = Some(op),
            Err(e) => {
                let _ = self.rt.deregister(&c.stream);
                return Err(e.into());
            }
        }
        c.login_timer = Some(self.rt.add_timer(
            LOGIN_TIMEOUT | token,
            self.cfg.login_timeout,
            None,
        ));
        self.counters.accepted += 1;
        *self.per_address.entry(ip).or_insert(0) += 1;
        // The loop never waits for DNS: the answer comes as a completion.
        if let Some(pool) = &self.resolver {
            let ip = peer.ip();
            let _ = pool.submit_tagged(token, move || resolve::reverse(ip));
        }
        log(&format!("conn {token}: connected from {peer}"));
        // The server opens the negotiation: clients that wait to be asked
        // (tintin++, tf, kbtin) then report their window and terminal.
        c.decoder.open(true);
        let offers = c.decoder.take_replies();
        if let Err(why) = conn::send_raw(&mut self.rt, &mut c, offers) {
            self.doomed.push((token, why));
        }
        self.conns.insert(token, c);
        self.send(token, "Welcome to the uniloop talker!");
        self.send(token, "By what name are you known?");
        Ok(())
    }

    fn on_io_done(&mut self, token: u64, op: OpId, kind: OpKind) {
        let Some(done) = self.rt.take_io(op) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        match kind {
            OpKind::Read => {
                c.read = None;
                if let Some(e) = &done.error {
                    let reason = format!("read error: {e}");
                    return self.lost(token, &reason);
                }
                if done.bytes == 0 {
                    return self.lost(token, "closed by the client");
                }
                let mut inputs = Vec::new();
                if c.closing.is_none() {
                    c.decoder.push(&done.buf, &mut inputs);
                }
                let mut buf = done.buf;
                buf.clear();
                // SAFETY: `c` is in `conns`, which it leaves only in
                // `close_now`, after its `deregister`.
                match unsafe { self.rt.post_read(&c.stream, buf) } {
                    Ok(op) => c.read = Some(op),
                    Err(e) => return self.lost(token, &format!("cannot read: {}", e.error())),
                }
                let replies = c.decoder.take_replies();
                if !replies.is_empty() {
                    if let Err(why) = conn::send_raw(&mut self.rt, c, replies) {
                        self.doomed.push((token, why));
                    }
                }
                for input in inputs {
                    if !self.conns.get(&token).is_some_and(|c| c.closing.is_none()) {
                        break;
                    }
                    self.on_input(token, input);
                }
            }
            OpKind::Write => {
                c.unsent = c.unsent.saturating_sub(done.buf.len());
                if let Some(e) = &done.error {
                    let reason = format!("write error: {e}");
                    return self.lost(token, &reason);
                }
                if let Some(closing) = &mut c.closing {
                    if closing.flush == Some(op) {
                        closing.flush = None;
                        // Everything is out: say so with FIN, then wait for
                        // the client's end of stream (or the linger time).
                        let _ = c.stream.shutdown(Shutdown::Write);
                        if self.shutdown_deadline.is_some() {
                            self.close_now(token, "flushed at shutdown");
                        }
                    }
                }
            }
            // The talker posts only reads and writes.
            _ => {}
        }
    }

    /// The connection ended from the other side (or broke): a closing one
    /// has finished closing; an open one is gone.
    fn lost(&mut self, token: u64, why: &str) {
        let reason = match self.conns.get(&token).and_then(|c| c.closing.as_ref()) {
            Some(closing) => closing.reason.clone(),
            None => why.to_string(),
        };
        self.close_now(token, &reason);
    }

    /// Sends a line to one connection; a connection that cannot take it is
    /// dropped (at the end of this event).
    pub(crate) fn send(&mut self, token: u64, text: &str) {
        if let Some(c) = self.conns.get_mut(&token) {
            if let Err(why) = conn::send(&mut self.rt, c, text) {
                self.doomed.push((token, why));
            }
        }
    }

    /// Sends bytes as they are (telnet); as [`Server::send`] otherwise.
    pub(crate) fn send_bytes(&mut self, token: u64, bytes: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&token) {
            if c.closing.is_none() {
                if let Err(why) = conn::send_raw(&mut self.rt, c, bytes) {
                    self.doomed.push((token, why));
                }
            }
        }
    }

    /// Sends a line to everyone logged in (in `room`, if given) except
    /// `except`.
    pub(crate) fn broadcast(&mut self, room: Option<usize>, except: Option<u64>, text: &str) {
        self.broadcast_from(room, except, None, text, conn::Style::Plain);
    }

    /// As [`Server::broadcast`], for words of user `from` (lower case):
    /// those who ignore them do not get them; coloured by `style`.
    pub(crate) fn broadcast_from(
        &mut self,
        room: Option<usize>,
        except: Option<u64>,
        from: Option<&str>,
        text: &str,
        style: conn::Style,
    ) {
        let Server {
            conns,
            members,
            by_name,
            rt,
            doomed,
            ..
        } = self;
        let tokens: Box<dyn Iterator<Item = &u64>> = match room {
            Some(r) => Box::new(members[r].iter()),
            None => Box::new(by_name.values()),
        };
        for &token in tokens {
            let Some(c) = conns.get_mut(&token) else {
                continue;
            };
            if c.name().is_none() || Some(token) == except {
                continue;
            }
            if from.is_some_and(|f| c.ignoring.contains(f)) {
                continue;
            }
            if let Err(why) = conn::send_styled(rt, c, text, style) {
                doomed.push((token, why));
            }
        }
    }

    /// As [`Server::send`], coloured by `style`.
    pub(crate) fn send_styled(&mut self, token: u64, text: &str, style: conn::Style) {
        if let Some(c) = self.conns.get_mut(&token) {
            if let Err(why) = conn::send_styled(&mut self.rt, c, text, style) {
                self.doomed.push((token, why));
            }
        }
    }

    /// Starts closing a connection: an optional goodbye, then flush, FIN,
    /// and the close once the client hangs up (or [`LINGER`] passes).
    pub(crate) fn begin_close(&mut self, token: u64, goodbye: Option<&str>, reason: &str) {
        if let Some(text) = goodbye {
            self.send(token, text);
        }
        self.depart(token);
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        if c.closing.is_some() {
            return;
        }
        // SAFETY: `c` is in `conns`, which it leaves only in `close_now`,
        // after its `deregister`.
        let flush = unsafe { self.rt.post_write(&c.stream, Vec::new()) }.ok();
        log(&format!("conn {token}: closing: {reason}"));
        c.closing = Some(Closing {
            since: Instant::now(),
            flush,
            reason: reason.to_string(),
        });
    }

    /// Closes a connection at once (deregistering drops its posted I/O).
    pub(crate) fn close_now(&mut self, token: u64, reason: &str) {
        self.depart(token);
        let Some(c) = self.conns.remove(&token) else {
            return;
        };
        if let Some(t) = c.login_timer {
            self.rt.cancel_timer(t);
        }
        let _ = self.rt.deregister(&c.stream);
        let ip = c.peer.ip();
        if let Some(n) = self.per_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&ip);
            }
        }
        log(&format!("conn {token} ({}): closed: {reason}", c.peer));
        // A descriptor is free: a listener paused at the fd limit can go on.
        if let Some(a) = self.acceptor.as_mut() {
            let _ = a.resume(&mut self.rt);
        }
    }

    /// Logs a user out (once): remembered in the state, announced to the
    /// room, reported to MCP.
    fn depart(&mut self, token: u64) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        let Phase::Playing { name } = std::mem::replace(&mut c.phase, Phase::Gone) else {
            c.phase = Phase::Gone;
            return;
        };
        let room = c.room;
        self.unindex(token, &name, room);
        if let Some(u) = self.saved.users.get_mut(&name.to_ascii_lowercase()) {
            u.last_seen = unix_now();
            u.room = self.rooms.get(room).id.clone();
        }
        self.comings.push((room, name.clone(), false));
        log(&format!("{name} logged out"));
        self.mcp_log("info", &format!("{name} logged out"));
    }

    /// Announces this turn's logins and logouts, one line per room for
    /// each kind: a crowd arriving or leaving at once costs one pass over
    /// each room's members, not one per user (which made it quadratic).
    fn announce_comings(&mut self) {
        if self.comings.is_empty() {
            return;
        }
        let mut comings = std::mem::take(&mut self.comings);
        comings.sort_by_key(|c| (c.0, !c.2));
        let mut i = 0;
        while i < comings.len() {
            let (room, arrived) = (comings[i].0, comings[i].2);
            let mut j = i;
            while j < comings.len() && comings[j].0 == room && comings[j].2 == arrived {
                j += 1;
            }
            let names: Vec<&str> = comings[i..j].iter().map(|c| c.1.as_str()).collect();
            self.announce(room, &names, arrived);
            i = j;
        }
    }

    /// "NAME arrives." / "A, B and C have left." to `room`, each member
    /// told of the others only.
    fn announce(&mut self, room: usize, names: &[&str], arrived: bool) {
        let text = |names: &[&str]| -> Option<String> {
            const LISTED: usize = 5;
            let (verb1, verbn) = if arrived {
                ("arrives", "arrive")
            } else {
                ("has left", "have left")
            };
            match names {
                [] => None,
                [one] => Some(format!("{one} {verb1}.")),
                _ if names.len() <= LISTED => {
                    let (last, rest) = names.split_last().expect("two or more");
                    Some(format!("{} and {last} {verbn}.", rest.join(", ")))
                }
                _ => Some(format!(
                    "{} and {} others {verbn}.",
                    names[..LISTED].join(", "),
                    names.len() - LISTED
                )),
            }
        };
        let common = text(names);
        let among: HashSet<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let Server {
            conns,
            members,
            rt,
            doomed,
            ..
        } = self;
        for &token in &members[room] {
            let Some(c) = conns.get_mut(&token) else {
                continue;
            };
            let Some(me) = c.name() else { continue };
            let line = if among.contains(&me.to_ascii_lowercase()) {
                let others: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| !n.eq_ignore_ascii_case(me))
                    .collect();
                text(&others)
            } else {
                common.clone()
            };
            if let Some(line) = line {
                if let Err(why) = conn::send(rt, c, &line) {
                    doomed.push((token, why));
                }
            }
        }
    }

    /// `token` is logged in as `name`, in `room`.
    pub(crate) fn index(&mut self, token: u64, name: &str, room: usize) {
        self.by_name.insert(name.to_ascii_lowercase(), token);
        self.members[room].insert(token);
    }

    /// `token` (logged in as `name`, in `room`) no longer is.
    pub(crate) fn unindex(&mut self, token: u64, name: &str, room: usize) {
        let key = name.to_ascii_lowercase();
        if self.by_name.get(&key) == Some(&token) {
            self.by_name.remove(&key);
        }
        self.members[room].remove(&token);
    }

    /// Drops the connections that could not take their output.
    fn reap(&mut self) {
        while let Some((token, why)) = self.doomed.pop() {
            if self.conns.contains_key(&token) {
                self.counters.dropped_slow += 1;
                self.close_now(token, &why);
            }
        }
    }

    // ---- timers --------------------------------------------------------

    fn heartbeat(&mut self) {
        let now = Instant::now();
        if let Some(last) = self.counters.last_beat {
            let secs = now.duration_since(last).as_secs_f64().max(1e-3);
            self.counters.rate =
                (self.counters.messages - self.counters.messages_at_beat) as f64 / secs;
        }
        self.counters.last_beat = Some(now);
        self.counters.messages_at_beat = self.counters.messages;

        let mut warn = Vec::new();
        let mut kick = Vec::new();
        let mut linger = Vec::new();
        for c in self.conns.values() {
            if let Some(closing) = &c.closing {
                if now.duration_since(closing.since) >= LINGER {
                    linger.push((c.token, closing.reason.clone()));
                }
                continue;
            }
            let (Some(limit), Some(_)) = (self.cfg.idle_timeout, c.name()) else {
                continue;
            };
            let idle = now.duration_since(c.last_input);
            if idle >= limit {
                kick.push(c.token);
            } else if idle >= limit - (limit / 4).min(Duration::from_secs(60)) && !c.idle_warned {
                warn.push((c.token, limit - idle));
            }
        }
        for (token, left) in warn {
            let text = format!(
                "You have been idle a while; you will be disconnected in {} unless you type something.",
                fmt_duration(left)
            );
            self.send(token, &text);
            if let Some(c) = self.conns.get_mut(&token) {
                c.idle_warned = true;
            }
        }
        for token in kick {
            self.counters.idle_kicks += 1;
            self.begin_close(
                token,
                Some("You have been idle too long. Goodbye."),
                "idle timeout",
            );
        }
        for (token, reason) in linger {
            self.close_now(token, &format!("{reason} (client did not hang up)"));
        }
    }

    // ---- console / MCP ------------------------------------------------

    fn on_console(&mut self) {
        loop {
            let Some(event) = self.console.as_ref().and_then(Console::try_recv) else {
                return;
            };
            match event {
                ConsoleEvent::Line(line) => {
                    if let Some(mut session) = self.mcp.take() {
                        let replies = session.handle(&line, self);
                        self.mcp = Some(session);
                        for r in replies {
                            self.stdout.line(r);
                        }
                    } else {
                        let out = self.operator(&line);
                        if !out.is_empty() {
                            self.stdout.line(out);
                        }
                    }
                }
                ConsoleEvent::Eof => {
                    if self.mcp.is_some() {
                        // MCP over stdio: the client closing stdin ends the
                        // server.
                        self.begin_shutdown("MCP client closed stdin");
                    } else {
                        log("console: end of input (still serving)");
                    }
                }
            }
        }
    }

    /// Output for the operator: the console, or an MCP log message.
    pub(crate) fn operator_says(&mut self, text: &str) {
        // (An MCP client gets it as a log message.)
        if self.mcp.is_some() {
            self.mcp_log("notice", text);
        } else {
            self.stdout.line(text);
        }
    }

    /// Queues an MCP `notifications/message` (sent at the end of the
    /// event, after any response to the request that caused it).
    pub(crate) fn mcp_log(&mut self, level: &'static str, text: &str) {
        if self.cfg.mcp {
            self.mcp_outbox.push((level, text.to_string()));
        }
    }

    /// Sends the queued MCP notifications the client wants.
    fn flush_mcp(&mut self) {
        let Some(session) = &self.mcp else { return };
        for (level, text) in self.mcp_outbox.drain(..) {
            if let Some(n) = session.log_notification(level, &text) {
                self.stdout.line(n);
            }
        }
    }

    /// Pushes a line into the recent-chat log.
    pub(crate) fn chat(&mut self, line: String) {
        self.counters.messages += 1;
        self.saved.total_messages += 1;
        if self.chat_log.len() == CHAT_LOG {
            self.chat_log.pop_front();
        }
        self.chat_log.push_back(line);
    }

    // ---- shutdown ------------------------------------------------------

    /// Stops accepting and says goodbye to everyone; the loop ends when
    /// their output is flushed or [`SHUTDOWN_FLUSH`] has passed.
    pub(crate) fn begin_shutdown(&mut self, why: &str) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        log(&format!("shutting down: {why}"));
        self.shutdown_deadline = Some(Instant::now() + SHUTDOWN_FLUSH);
        if let Some(mut a) = self.acceptor.take() {
            let _ = a.deregister(&mut self.rt);
        }
        let tokens: Vec<u64> = self.conns.keys().copied().collect();
        for token in tokens {
            let open = self.conns.get(&token).is_some_and(|c| c.closing.is_none());
            if open {
                self.begin_close(
                    token,
                    Some("The talker is shutting down. Goodbye!"),
                    "shutdown",
                );
            } else {
                self.close_now(token, "shutdown");
            }
        }
        self.reap();
    }

    fn finish(&mut self) {
        let tokens: Vec<u64> = self.conns.keys().copied().collect();
        for token in tokens {
            self.close_now(token, "shutdown: flush time is up");
        }
        if let Some(pool) = self.resolver.take() {
            pool.shutdown(Duration::from_secs(1));
        }
        if let Some(pool) = self.hasher.take() {
            pool.shutdown(Duration::from_secs(1));
        }
        // A save still running finishes first: two saves never share the
        // temp file.
        if let Some(pool) = self.saver.take() {
            pool.shutdown(Duration::from_secs(10));
        }
        // The loop is over; nothing is left to keep waiting, so the last
        // save runs right here.
        match persist::save(&self.cfg.data_dir, &self.snapshot(), None) {
            Ok(r) => log(&format!(
                "final save: {} bytes to {}",
                r.bytes,
                r.path.display()
            )),
            Err(e) => log(&format!(
                "FINAL SAVE FAILED: {e} (the previous file is kept)"
            )),
        }
        self.signals.take();
        if let Some(mut c) = self.console.take() {
            c.stop(Duration::from_millis(200));
        }
        log("goodbye");
        self.stdout.finish(Duration::from_secs(2));
        crate::logging::finish(Duration::from_secs(2));
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `75s` → `1m15s`, short.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A line for the log (stderr: stdout belongs to the console or MCP),
/// written by the log thread: the loop never waits for it.
pub(crate) use crate::logging::log;

/// Locks `dir` (creating it) for this process: a second talker on the
/// same directory would overwrite this one's state.
///
/// # Errors
///
/// The directory is in use by another talker, or cannot be created.
fn lock_data_dir(dir: &std::path::Path) -> io::Result<std::fs::File> {
    let named = |e: io::Error, what: &str| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| named(e, "cannot create the data directory"))?;
    let path = dir.join("talker.lock");
    let in_use = || {
        let pid = std::fs::read_to_string(&path).unwrap_or_default();
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "the data directory {} is in use by another talker (pid {}); \
                 give each talker its own --data-dir",
                dir.display(),
                pid.trim()
            ),
        )
    };
    let mut file = match crate::sys::open_lock_file(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(in_use()),
        Err(e) => return Err(named(e, "cannot open the lock file in")),
    };
    if !crate::sys::try_lock(&file).map_err(|e| named(e, "cannot lock"))? {
        return Err(in_use());
    }
    use std::io::{Seek, Write};
    let _ = file.set_len(0);
    let _ = file.seek(io::SeekFrom::Start(0));
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
}
