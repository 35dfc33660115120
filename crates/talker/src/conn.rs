//! One client connection: its socket, its telnet decoder, where it is in
//! its life, and how text goes out to it.
//!
//! Output is posted I/O: `send` hands a buffer to
//! [`Runtime::post_write`], which writes what the socket takes now and the
//! rest when it becomes writable — the loop never waits for a client. Each
//! connection has a write limit ([`Runtime::set_write_limit`]): a client
//! that stops reading fills it, the next write is refused with
//! `WouldBlock`, and the caller drops that client. Nobody else waits.

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use uniloop::{OpId, Runtime, TimerId};

use crate::telnet::{self, Decoder};

/// Where a connection is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Asked for a name, not given one yet.
    Login,
    /// An account's password asked for.
    Password {
        /// The name given.
        name: String,
    },
    /// A new password asked for.
    NewPassword {
        /// The name given.
        name: String,
    },
    /// The new password asked for again.
    Confirm {
        /// The name given.
        name: String,
        /// The password typed the first time.
        first: String,
    },
    /// A password being hashed or checked (on a worker), or the wait
    /// after a wrong one.
    Waiting {
        /// The name given.
        name: String,
    },
    /// Logged in.
    Playing {
        /// The name as typed.
        name: String,
    },
    /// Logged out (or never logged in) and closing.
    Gone,
}

/// A connection being closed: its last output is flushed, then the write
/// side is shut and the peer's end of stream awaited (bounded in time).
#[derive(Debug)]
pub struct Closing {
    /// When closing began.
    pub since: Instant,
    /// The empty write that completes once everything before it is out.
    pub flush: Option<OpId>,
    /// Why it is closing, for the log.
    pub reason: String,
}

/// One client.
#[derive(Debug)]
pub struct Conn {
    /// Its token in the runtime.
    pub token: u64,
    /// The socket (non-blocking, registered).
    pub stream: TcpStream,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The peer's host name, once the resolver has answered.
    pub host: Option<String>,
    /// Telnet input.
    pub decoder: Decoder,
    /// Login, playing, gone.
    pub phase: Phase,
    /// Index of the room it is in.
    pub room: usize,
    /// When it connected.
    pub connected: Instant,
    /// When it last typed a line.
    pub last_input: Instant,
    /// Whether it was warned about being idle since its last line.
    pub idle_warned: bool,
    /// The login timeout, until it logs in.
    pub login_timer: Option<TimerId>,
    /// The posted read, if one is.
    pub read: Option<OpId>,
    /// The window size the client reported (NAWS); output is wrapped to
    /// its width.
    pub window: Option<(u16, u16)>,
    /// Bytes posted to it and not yet out (what the talker holds for it).
    pub unsent: usize,
    /// The terminal types the client reported (client, terminal, MTTS).
    pub terminal: Vec<String>,
    /// The client refused UTF-8 (RFC 2066): other characters become `?`.
    pub ascii: bool,
    /// MCCP2: everything sent is compressed from here on.
    pub compress: Option<ZlibEncoder<Vec<u8>>>,
    /// Flood control for what it says to others.
    pub flood: Bucket,
    /// Lower-case names whose words it does not want to hear.
    pub ignoring: std::collections::HashSet<String>,
    /// ANSI colour on (`colour on`).
    pub colour: bool,
    /// Set once closing has begun.
    pub closing: Option<Closing>,
}

/// A token bucket: `burst` lines at once, then `rate` a second (a rate
/// of 0: no limit).
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
    burst: f64,
    rate: f64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(now: Instant, burst: f64, rate: f64) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
            burst,
            rate,
        }
    }

    /// Takes a token if there is one (refilling for the time since the
    /// last call first).
    pub fn take(&mut self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let secs = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + secs * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Conn {
    /// A new connection in the login phase.
    pub fn new(
        token: u64,
        stream: TcpStream,
        peer: SocketAddr,
        max_line: usize,
        room: usize,
    ) -> Conn {
        let now = Instant::now();
        Conn {
            token,
            stream,
            peer,
            host: None,
            decoder: Decoder::new(max_line),
            phase: Phase::Login,
            room,
            connected: now,
            last_input: now,
            idle_warned: false,
            login_timer: None,
            read: None,
            window: None,
            unsent: 0,
            terminal: Vec::new(),
            ascii: false,
            compress: None,
            flood: Bucket::new(now, 0.0, 0.0),
            ignoring: std::collections::HashSet::new(),
            colour: false,
            closing: None,
        }
    }

    /// The name, if logged in and not closing.
    pub fn name(&self) -> Option<&str> {
        match &self.phase {
            Phase::Playing { name } if self.closing.is_none() => Some(name),
            _ => None,
        }
    }

    /// Where it connects from: the host name if known, else the address.
    pub fn from(&self) -> String {
        self.host
            .clone()
            .unwrap_or_else(|| self.peer.ip().to_string())
    }
}

/// Sends `text` plus a line end to `conn` (nothing once it is closing).
///
/// # Errors
///
/// Why the client must be dropped: its output is over the write limit (it
/// is not reading), or the socket is gone.
pub(crate) fn send(rt: &mut Runtime, conn: &mut Conn, text: &str) -> Result<(), String> {
    send_styled(rt, conn, text, Style::Plain)
}

/// How a line looks to a user who turned colour on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// As it is.
    Plain,
    /// Speech in a room (say, emote).
    Say,
    /// A private message.
    Tell,
    /// A shout.
    Shout,
    /// From the system (operator, MCP).
    System,
}

impl Style {
    fn ansi(self) -> Option<&'static str> {
        match self {
            Style::Plain => None,
            Style::Say => Some("\x1b[36m"),
            Style::Tell => Some("\x1b[1;35m"),
            Style::Shout => Some("\x1b[1;33m"),
            Style::System => Some("\x1b[1;31m"),
        }
    }
}

/// As [`send`], coloured by `style` if the user turned colour on.
///
/// # Errors
///
/// As [`send`].
pub(crate) fn send_styled(
    rt: &mut Runtime,
    conn: &mut Conn,
    text: &str,
    style: Style,
) -> Result<(), String> {
    if conn.closing.is_some() {
        return Ok(());
    }
    let mut buf = Vec::with_capacity(text.len() + 12);
    let ansi = style.ansi().filter(|_| conn.colour);
    if let Some(code) = ansi {
        buf.extend_from_slice(code.as_bytes());
    }
    encode_for(conn, text, &mut buf);
    if ansi.is_some() {
        buf.extend_from_slice(b"\x1b[0m");
    }
    buf.extend_from_slice(b"\r\n");
    send_raw(rt, conn, buf)
}

/// Sends `text` as a prompt: no line end, then `IAC GA` or `IAC EOR`
/// (nothing with SGA), so a client knows where the prompt ends.
///
/// # Errors
///
/// As [`send`].
pub(crate) fn prompt(rt: &mut Runtime, conn: &mut Conn, text: &str) -> Result<(), String> {
    if conn.closing.is_some() {
        return Ok(());
    }
    let mut buf = Vec::with_capacity(text.len() + 2);
    encode_for(conn, text, &mut buf);
    buf.extend_from_slice(conn.decoder.prompt_end());
    send_raw(rt, conn, buf)
}

/// `text` as this client takes it: wrapped to its window's width, in
/// ASCII if it refused UTF-8, telnet-encoded.
fn encode_for(conn: &Conn, text: &str, buf: &mut Vec<u8>) {
    // A window narrower than this is taken for a bad report.
    const NARROWEST: u16 = 20;
    // Every text reaching a user: no control character but the line
    // breaks the server itself puts in (whatever an operator, an MCP
    // client or a user typed).
    let cleaned: String;
    let text = if text.chars().any(|c| c.is_control() && c != '\n') {
        cleaned = text
            .chars()
            .filter(|&c| !c.is_control() || c == '\n')
            .collect();
        &cleaned
    } else {
        text
    };
    let text = match conn.window {
        Some((w, _)) if w >= NARROWEST => telnet::wrap(text, usize::from(w)),
        _ => text.into(),
    };
    if conn.ascii && !text.is_ascii() {
        let ascii: String = text
            .chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect();
        telnet::encode(&ascii, buf);
    } else {
        telnet::encode(&text, buf);
    }
}

/// Starts MCCP2: sends the start marker, then compresses everything after
/// it.
///
/// # Errors
///
/// As [`send`].
pub(crate) fn start_compression(rt: &mut Runtime, conn: &mut Conn) -> Result<(), String> {
    if conn.compress.is_some() {
        return Ok(());
    }
    send_raw(rt, conn, telnet::COMPRESS2_START.to_vec())?;
    conn.compress = Some(ZlibEncoder::new(Vec::new(), Compression::default()));
    Ok(())
}

/// Ends MCCP2: the compressed stream is finished; what follows is sent
/// as it is.
///
/// # Errors
///
/// As [`send`].
pub(crate) fn stop_compression(rt: &mut Runtime, conn: &mut Conn) -> Result<(), String> {
    let Some(z) = conn.compress.take() else {
        return Ok(());
    };
    let tail = z.finish().map_err(|e| format!("compression failed: {e}"))?;
    send_raw(rt, conn, tail)
}

/// Sends bytes as they are (telnet negotiation), compressed if MCCP2 is
/// on.
///
/// # Errors
///
/// As [`send`].
pub(crate) fn send_raw(rt: &mut Runtime, conn: &mut Conn, buf: Vec<u8>) -> Result<(), String> {
    let buf = match &mut conn.compress {
        // A sync flush per write: the client can decode everything sent
        // so far without waiting for more.
        Some(z) => {
            z.write_all(&buf)
                .and_then(|()| z.flush())
                .map_err(|e| format!("compression failed: {e}"))?;
            std::mem::take(z.get_mut())
        }
        None => buf,
    };
    let len = buf.len();
    // SAFETY: only the server calls this (crate-private), on a connection
    // of its `conns` (or the one `admit` is about to insert): the stream
    // stays there until `close_now` deregisters it, and the runtime is
    // dropped before `conns` (the order of `Server`'s fields).
    match unsafe { rt.post_write(&conn.stream, buf) } {
        Ok(_) => {
            conn.unsent += len;
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            Err("output buffer full: the client is not reading".to_string())
        }
        Err(e) => Err(format!("write refused: {}", e.error())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0, 8.0, 2.0);
        let burst = (0..20).filter(|_| b.take(t0)).count();
        assert_eq!(burst, 8);
        // Half a second refills one line at 2 a second.
        assert!(b.take(t0 + Duration::from_millis(500)));
        assert!(!b.take(t0 + Duration::from_millis(500)));
        // A long pause refills no more than the burst.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..20).filter(|_| b.take(later)).count(), 8);
        // Rate 0: no limit.
        let mut free = Bucket::new(t0, 0.0, 0.0);
        assert!((0..1000).all(|_| free.take(t0)));
    }
}
