//! Telnet, as a pure function over bytes: no sockets here.
//!
//! [`Decoder::push`] takes whatever a read brought and returns what it
//! means, in stream order: typed lines (IAC sequences stripped, every line
//! ending a client may send — CR LF, bare LF, CR NUL, bare CR — accepted,
//! BS/DEL and `IAC EC`/`IAC EL` applied to the line being typed, invalid
//! UTF-8 replaced, control characters removed), "that line was too long"
//! (cut on a character boundary), and the events the server acts on:
//! window size (NAWS, RFC 1073), terminal type (RFC 1091, with MTTS),
//! character set (RFC 2066), `AYT`, `DO TIMING-MARK` (RFC 860: answered
//! in order, every time), an MSSP request, the start of MCCP2.
//!
//! Option negotiation follows RFC 1143's Q method, for both sides of
//! every option: each request is agreed to or refused for as long as the
//! connection lasts, and a request for the state an option is already in
//! is not answered, so no two peers can loop. The bytes to send back are
//! collected in [`Decoder::take_replies`]; [`Decoder::open`] queues the
//! server's own offers for a new connection.

use std::borrow::Cow;

/// Interpret As Command.
pub const IAC: u8 = 255;
/// Negotiation verbs.
pub const DONT: u8 = 254;
/// Negotiation verbs.
pub const DO: u8 = 253;
/// Negotiation verbs.
pub const WONT: u8 = 252;
/// Negotiation verbs.
pub const WILL: u8 = 251;
/// Subnegotiation begin.
pub const SB: u8 = 250;
/// Go ahead (ends a prompt when SGA is not agreed).
pub const GA: u8 = 249;
/// Erase line.
pub const EL: u8 = 248;
/// Erase character.
pub const EC: u8 = 247;
/// Are you there.
pub const AYT: u8 = 246;
/// Interrupt process.
pub const IP: u8 = 244;
/// Subnegotiation end.
pub const SE: u8 = 240;
/// End of record (ends a prompt when the EOR option is agreed).
pub const EOR_MARK: u8 = 239;

/// Echo (RFC 857): the server echoes, so the client does not (passwords).
pub const ECHO: u8 = 1;
/// Suppress go-ahead (RFC 858).
pub const SGA: u8 = 3;
/// Timing mark (RFC 860).
pub const TIMING_MARK: u8 = 6;
/// Terminal type (RFC 1091), asked repeatedly for MTTS.
pub const TTYPE: u8 = 24;
/// End of record (RFC 885): prompts end in `IAC EOR`.
pub const EOR: u8 = 25;
/// Negotiate About Window Size (RFC 1073).
pub const NAWS: u8 = 31;
/// Character set (RFC 2066).
pub const CHARSET: u8 = 42;
/// MUD Server Status Protocol.
pub const MSSP: u8 = 70;
/// MUD Client Compression Protocol v2 (zlib).
pub const COMPRESS2: u8 = 86;

const TTYPE_IS: u8 = 0;
const TTYPE_SEND: u8 = 1;
const CHARSET_REQUEST: u8 = 1;
const CHARSET_ACCEPTED: u8 = 2;
const CHARSET_REJECTED: u8 = 3;
const MSSP_VAR: u8 = 1;
const MSSP_VAL: u8 = 2;

/// Longest subnegotiation kept; the rest of a longer one is dropped.
const MAX_SB: usize = 256;
/// Terminal types asked for at most (client, terminal, MTTS bits).
const TTYPE_ASKS: u8 = 3;

/// The options the server does itself when asked (`DO` is agreed to).
/// `ECHO` is not among them: the server turns it on itself, for
/// passwords, and a client cannot.
fn we_offer(option: u8) -> bool {
    matches!(option, SGA | EOR | CHARSET | MSSP | COMPRESS2)
}

/// The options the server lets the client do (`WILL` is agreed to).
fn he_may(option: u8) -> bool {
    matches!(option, NAWS | TTYPE | CHARSET)
}

/// What a chunk of input meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A typed line: valid UTF-8, no control characters, no line end.
    Line(String),
    /// A line longer than the maximum was cut; its first part is given.
    TooLong(String),
    /// The client's window size (columns, rows).
    WindowSize(u16, u16),
    /// One terminal type answer (the client's name, its terminal, or
    /// `MTTS n`).
    TerminalType(String),
    /// The character set agreed: `UTF-8`, or `US-ASCII` when the client
    /// refused UTF-8.
    Charset(String),
    /// `IAC AYT`: the client asks whether the server is still there.
    AreYouThere,
    /// `IAC DO TIMING-MARK`: answer with [`TIMING_MARK_REPLY`] once everything
    /// before it is handled.
    TimingMark,
    /// The client wants the MSSP variables ([`mssp`]).
    MsspRequest,
    /// The client agreed to MCCP2: send [`COMPRESS2_START`], then compress
    /// everything after it.
    StartCompression,
    /// The client asked MCCP2 off (`DONT COMPRESS2`): end the compressed
    /// stream; what follows goes uncompressed.
    StopCompression,
}

/// The bytes after which output is compressed (MCCP2).
pub const COMPRESS2_START: [u8; 5] = [IAC, SB, COMPRESS2, IAC, SE];

/// RFC 1143's states of one side of one option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Q {
    #[default]
    No,
    Yes,
    WantNo,
    WantYes,
}

/// One side of one option: its state and the queued opposite request.
#[derive(Clone, Copy, Debug, Default)]
struct Side {
    q: Q,
    opposite: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Data,
    /// After a CR: a following LF or NUL belongs to it.
    Cr,
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the option byte comes next.
    Option(u8),
    Sb,
    SbIac,
}

/// Telnet decoder (and negotiation state) for one connection.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    max_line: usize,
    /// The line being typed.
    line: Vec<u8>,
    /// The line went over the maximum: the rest up to its end is dropped.
    discarding: bool,
    /// A subnegotiation being read (option byte first).
    sb: Vec<u8>,
    /// Negotiation answers not yet sent.
    replies: Vec<u8>,
    /// The server's side of each option (WILL/WONT).
    us: [Side; 256],
    /// The client's side of each option (DO/DONT).
    him: [Side; 256],
    ttype_asks: u8,
    last_ttype: Option<Vec<u8>>,
}

impl Decoder {
    /// A decoder cutting lines at `max_line` bytes.
    ///
    /// # Panics
    ///
    /// If `max_line` is 0.
    pub fn new(max_line: usize) -> Decoder {
        assert!(max_line > 0, "a line of at most 0 bytes");
        Decoder {
            state: State::Data,
            max_line,
            line: Vec::new(),
            discarding: false,
            sb: Vec::new(),
            replies: Vec::new(),
            us: [Side::default(); 256],
            him: [Side::default(); 256],
            ttype_asks: 0,
            last_ttype: None,
        }
    }

    /// Queues the server's opening offers: window size and terminal type
    /// asked for; end of record, character set, MSSP and (if `compress`)
    /// MCCP2 offered.
    pub fn open(&mut self, compress: bool) {
        self.ask_him(NAWS, true);
        self.ask_him(TTYPE, true);
        self.ask_us(EOR, true);
        self.ask_us(CHARSET, true);
        self.ask_us(MSSP, true);
        if compress {
            self.ask_us(COMPRESS2, true);
        }
    }

    /// Asks the client to stop (or start again) echoing what it types:
    /// `WILL ECHO` (the server "echoes", so the client does not) or
    /// `WONT ECHO`. Used around passwords.
    pub fn hide_input(&mut self, hide: bool) {
        self.ask_us(ECHO, hide);
    }

    /// Whether the client agreed to send its window size.
    pub fn naws(&self) -> bool {
        self.him[usize::from(NAWS)].q == Q::Yes
    }

    /// Whether the client's echo is off (the server agreed to `ECHO`).
    pub fn input_hidden(&self) -> bool {
        self.us[usize::from(ECHO)].q == Q::Yes
    }

    /// Whether option `option` is on for the server's side.
    pub fn we_do(&self, option: u8) -> bool {
        self.us[usize::from(option)].q == Q::Yes
    }

    /// Whether option `option` is on for the client's side.
    pub fn he_does(&self, option: u8) -> bool {
        self.him[usize::from(option)].q == Q::Yes
    }

    /// What ends a prompt: `IAC EOR` when the client agreed to EOR,
    /// nothing when go-ahead is suppressed, `IAC GA` otherwise.
    pub fn prompt_end(&self) -> &'static [u8] {
        if self.we_do(EOR) {
            &[IAC, EOR_MARK]
        } else if self.we_do(SGA) {
            &[]
        } else {
            &[IAC, GA]
        }
    }

    /// Bytes to send back to the client (negotiation).
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.replies)
    }

    /// Feeds bytes from the client; appends what they meant to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<Input>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Input>) {
        self.state = match (self.state, b) {
            (State::Cr, b'\n' | 0) => State::Data,
            (State::Data | State::Cr, IAC) => State::Iac,
            (State::Data | State::Cr, b'\r') => {
                self.end_line(out);
                State::Cr
            }
            (State::Data, b'\n') => {
                self.end_line(out);
                State::Data
            }
            (State::Data | State::Cr, 8 | 127) => {
                self.erase_char();
                State::Data
            }
            (State::Data | State::Cr, b) => {
                self.data(b, out);
                State::Data
            }
            (State::Iac, IAC) => {
                self.data(IAC, out);
                State::Data
            }
            (State::Iac, WILL | WONT | DO | DONT) => State::Option(b),
            (State::Iac, SB) => {
                self.sb.clear();
                State::Sb
            }
            (State::Iac, EC) => {
                self.erase_char();
                State::Data
            }
            (State::Iac, EL | IP) => {
                self.erase_line();
                State::Data
            }
            (State::Iac, AYT) => {
                out.push(Input::AreYouThere);
                State::Data
            }
            // NOP, GA, DM, BRK, AO, EOR, a stray SE...: nothing to do.
            (State::Iac, _) => State::Data,
            (State::Option(verb), option) => {
                self.negotiate(verb, option, out);
                State::Data
            }
            (State::Sb, IAC) => State::SbIac,
            (State::Sb, b) => {
                if self.sb.len() < MAX_SB {
                    self.sb.push(b);
                }
                State::Sb
            }
            (State::SbIac, IAC) => {
                if self.sb.len() < MAX_SB {
                    self.sb.push(IAC);
                }
                State::Sb
            }
            (State::SbIac, SE) => {
                self.subnegotiation(out);
                State::Data
            }
            // IAC followed by anything else inside SB: a broken peer; end
            // the subnegotiation and carry on.
            (State::SbIac, _) => State::Data,
        };
    }

    /// A byte of the line being typed.
    fn data(&mut self, b: u8, out: &mut Vec<Input>) {
        if self.discarding {
            return;
        }
        if self.line.len() < self.max_line {
            self.line.push(b);
            return;
        }
        // Over the maximum: cut on a character boundary, drop the rest.
        if let Err(e) = std::str::from_utf8(&self.line) {
            if e.error_len().is_none() {
                self.line.truncate(e.valid_up_to());
            }
        }
        out.push(Input::TooLong(clean(&self.line)));
        self.line.clear();
        self.discarding = true;
    }

    fn end_line(&mut self, out: &mut Vec<Input>) {
        if !std::mem::take(&mut self.discarding) {
            out.push(Input::Line(clean(&self.line)));
        }
        self.line.clear();
    }

    /// BS, DEL, `IAC EC`: the last character typed goes (a whole UTF-8
    /// sequence).
    fn erase_char(&mut self) {
        if self.discarding {
            return;
        }
        while let Some(b) = self.line.pop() {
            if b & 0xC0 != 0x80 {
                break;
            }
        }
    }

    /// `IAC EL`, `IAC IP`: the line typed so far goes.
    fn erase_line(&mut self) {
        self.line.clear();
        self.discarding = false;
    }

    fn send(&mut self, verb: u8, option: u8) {
        self.replies.extend_from_slice(&[IAC, verb, option]);
    }

    fn subneg(&mut self, option: u8, body: &[u8]) {
        self.replies.extend_from_slice(&[IAC, SB, option]);
        escape_into(body, &mut self.replies);
        self.replies.extend_from_slice(&[IAC, SE]);
    }

    /// Asks for the client's side of `option` on or off (RFC 1143).
    fn ask_him(&mut self, option: u8, on: bool) {
        if let Some(v) = ask(&mut self.him[usize::from(option)], on) {
            self.send(if v { DO } else { DONT }, option);
        }
    }

    /// Offers (or withdraws) the server's side of `option` (RFC 1143).
    fn ask_us(&mut self, option: u8, on: bool) {
        if let Some(v) = ask(&mut self.us[usize::from(option)], on) {
            self.send(if v { WILL } else { WONT }, option);
        }
    }

    fn negotiate(&mut self, verb: u8, option: u8, out: &mut Vec<Input>) {
        let i = usize::from(option);
        match verb {
            // Timing mark is not a state: every DO gets its WILL, in
            // order with the input before it.
            DO if option == TIMING_MARK => out.push(Input::TimingMark),
            DONT if option == TIMING_MARK => {}
            WILL | WONT => {
                let agree = he_may(option);
                let was = self.him[i].q == Q::Yes;
                match receive(&mut self.him[i], verb == WILL, agree) {
                    Reply::None => {}
                    Reply::Agree(on) => self.send(if on { DO } else { DONT }, option),
                    Reply::Refuse => self.send(DONT, option),
                    Reply::Send(on) => self.send(if on { DO } else { DONT }, option),
                    Reply::Quiet(_) => {}
                }
                let now = self.him[i].q == Q::Yes;
                if was != now {
                    self.him_changed(option, now);
                }
            }
            _ => {
                let agree = we_offer(option);
                let was = self.us[i].q == Q::Yes;
                match receive(&mut self.us[i], verb == DO, agree) {
                    Reply::None => {}
                    Reply::Agree(on) => self.send(if on { WILL } else { WONT }, option),
                    Reply::Refuse => self.send(WONT, option),
                    Reply::Send(on) => self.send(if on { WILL } else { WONT }, option),
                    Reply::Quiet(_) => {}
                }
                let now = self.us[i].q == Q::Yes;
                if was != now {
                    self.us_changed(option, now, out);
                }
            }
        }
    }

    /// The client's side of `option` just turned on or off.
    fn him_changed(&mut self, option: u8, on: bool) {
        if option == TTYPE && on {
            self.ttype_asks = 1;
            self.subneg(TTYPE, &[TTYPE_SEND]);
        }
    }

    /// The server's side of `option` just turned on or off.
    fn us_changed(&mut self, option: u8, on: bool, out: &mut Vec<Input>) {
        match option {
            CHARSET if on => {
                let mut body = vec![CHARSET_REQUEST];
                body.extend_from_slice(b";UTF-8;US-ASCII");
                self.subneg(CHARSET, &body);
            }
            MSSP if on => out.push(Input::MsspRequest),
            COMPRESS2 if on => out.push(Input::StartCompression),
            COMPRESS2 => out.push(Input::StopCompression),
            _ => {}
        }
    }

    fn subnegotiation(&mut self, out: &mut Vec<Input>) {
        let sb = std::mem::take(&mut self.sb);
        match sb[..] {
            [NAWS, w1, w0, h1, h0] => out.push(Input::WindowSize(
                u16::from_be_bytes([w1, w0]),
                u16::from_be_bytes([h1, h0]),
            )),
            [TTYPE, TTYPE_IS, ref name @ ..] if self.ttype_asks > 0 => {
                out.push(Input::TerminalType(clean(name)));
                // MTTS: ask again until the answer repeats (or enough).
                let repeat = self.last_ttype.as_deref() == Some(name);
                if !repeat && self.ttype_asks < TTYPE_ASKS {
                    self.ttype_asks += 1;
                    self.subneg(TTYPE, &[TTYPE_SEND]);
                }
                self.last_ttype = Some(name.to_vec());
            }
            [CHARSET, CHARSET_ACCEPTED, ref name @ ..] => {
                out.push(Input::Charset(clean(name)));
            }
            [CHARSET, CHARSET_REJECTED, ..] => {
                out.push(Input::Charset("US-ASCII".to_string()));
            }
            [CHARSET, CHARSET_REQUEST, ref body @ ..] => {
                // "[TTABLE] " and its version come first if present.
                let body = match body.strip_prefix(b"[TTABLE]") {
                    Some(rest) => rest.get(1..).unwrap_or_default(),
                    None => body,
                };
                let utf8 = match body.split_first() {
                    Some((&sep, names)) => names.split(|&b| b == sep).any(|n| {
                        n.eq_ignore_ascii_case(b"UTF-8") || n.eq_ignore_ascii_case(b"UTF8")
                    }),
                    None => false,
                };
                if utf8 {
                    let mut reply = vec![CHARSET_ACCEPTED];
                    reply.extend_from_slice(b"UTF-8");
                    self.subneg(CHARSET, &reply);
                    out.push(Input::Charset("UTF-8".to_string()));
                } else {
                    self.subneg(CHARSET, &[CHARSET_REJECTED]);
                    out.push(Input::Charset("US-ASCII".to_string()));
                }
            }
            _ => {}
        }
        self.sb = sb;
        self.sb.clear();
    }
}

/// What a received request calls for.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    None,
    /// Agree: send the matching verb; the option is now on/off.
    Agree(bool),
    /// Refuse the enabling request.
    Refuse,
    /// Send this request (the queued opposite); no change yet.
    Send(bool),
    /// No reply (it answered ours); the option is now on/off.
    Quiet(bool),
}

/// RFC 1143: one side receives WILL/DO (`on`) or WONT/DONT.
fn receive(s: &mut Side, on: bool, acceptable: bool) -> Reply {
    match (s.q, on) {
        (Q::No, true) if acceptable => {
            s.q = Q::Yes;
            Reply::Agree(true)
        }
        (Q::No, true) => Reply::Refuse,
        (Q::No, false) | (Q::Yes, true) => Reply::None,
        (Q::Yes, false) => {
            s.q = Q::No;
            Reply::Agree(false)
        }
        (Q::WantNo, false) if s.opposite => {
            s.q = Q::WantYes;
            s.opposite = false;
            // Ours was answered; ask for the queued opposite.
            Reply::Send(true)
        }
        (Q::WantNo, false) => {
            s.q = Q::No;
            Reply::Quiet(false)
        }
        (Q::WantNo, true) => {
            // Our DONT answered by WILL: an error in the peer; it is on.
            s.q = if s.opposite { Q::Yes } else { Q::No };
            let on = s.q == Q::Yes;
            s.opposite = false;
            Reply::Quiet(on)
        }
        (Q::WantYes, true) if s.opposite => {
            s.q = Q::WantNo;
            s.opposite = false;
            Reply::Send(false)
        }
        (Q::WantYes, true) => {
            s.q = Q::Yes;
            Reply::Quiet(true)
        }
        (Q::WantYes, false) => {
            s.q = Q::No;
            s.opposite = false;
            Reply::Quiet(false)
        }
    }
}

/// RFC 1143: this side asks for the option on/off; `Some(verb on)` to
/// send.
fn ask(s: &mut Side, on: bool) -> Option<bool> {
    match (s.q, on) {
        (Q::No, true) => {
            s.q = Q::WantYes;
            Some(true)
        }
        (Q::Yes, false) => {
            s.q = Q::WantNo;
            Some(false)
        }
        (Q::No, false) | (Q::Yes, true) => None,
        (Q::WantNo, true) | (Q::WantYes, false) => {
            s.opposite = true;
            None
        }
        (Q::WantNo, false) | (Q::WantYes, true) => {
            s.opposite = false;
            None
        }
    }
}

/// Text of a line: invalid UTF-8 replaced, control characters dropped
/// (a tab becomes a space), so nothing typed can move another user's
/// cursor or ring their bell.
fn clean(bytes: &[u8]) -> String {
    strip_controls(&String::from_utf8_lossy(bytes)).into_owned()
}

/// `text` without control characters (a tab becomes a space; a line
/// break goes too): what a user may say to others.
pub fn strip_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter_map(|c| match c {
                '\t' => Some(' '),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect(),
    )
}

fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if b == IAC {
            out.push(IAC);
        }
        out.push(b);
    }
}

/// Text for the wire: `\n` becomes CR LF and a 0xFF byte (never in UTF-8,
/// but cheap to be sure) is doubled.
pub fn encode(text: &str, out: &mut Vec<u8>) {
    for &b in text.as_bytes() {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            IAC => out.extend_from_slice(&[IAC, IAC]),
            b => out.push(b),
        }
    }
}

/// The answer to `IAC DO TIMING-MARK`.
pub const TIMING_MARK_REPLY: [u8; 3] = [IAC, WILL, TIMING_MARK];

/// `IAC SB MSSP (VAR name VAL value)* IAC SE`.
pub fn mssp(vars: &[(&str, String)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in vars {
        body.push(MSSP_VAR);
        body.extend(name.bytes().filter(|&b| b > MSSP_VAL));
        body.push(MSSP_VAL);
        body.extend(value.bytes().filter(|&b| b > MSSP_VAL));
    }
    let mut out = vec![IAC, SB, MSSP];
    escape_into(&body, &mut out);
    out.extend_from_slice(&[IAC, SE]);
    out
}

/// Word-wraps each line of `text` at `width` columns (characters); words
/// longer than a line are cut. `width` 0 leaves the text as it is.
pub fn wrap(text: &str, width: usize) -> Cow<'_, str> {
    if width == 0 || text.lines().all(|l| l.chars().count() <= width) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / width + 1);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut col = 0;
        for word in line.split(' ') {
            let mut word = word;
            let mut len = word.chars().count();
            if col > 0 && col + 1 + len > width {
                out.push('\n');
                col = 0;
            } else if col > 0 {
                out.push(' ');
                col += 1;
            }
            while len > width - col {
                let at = word
                    .char_indices()
                    .nth(width - col)
                    .map_or(word.len(), |(i, _)| i);
                out.push_str(&word[..at]);
                out.push('\n');
                word = &word[at..];
                len -= width - col;
                col = 0;
            }
            out.push_str(word);
            col += len;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(chunks: &[&[u8]]) -> (Vec<Input>, Decoder) {
        let mut d = Decoder::new(16);
        let mut out = Vec::new();
        for c in chunks {
            d.push(c, &mut out);
        }
        (out, d)
    }

    fn line(s: &str) -> Input {
        Input::Line(s.to_string())
    }

    #[test]
    fn every_line_ending() {
        let (out, _) = decode(&[b"a\r\nb\nc\r\0d\re\n"]);
        assert_eq!(out, [line("a"), line("b"), line("c"), line("d"), line("e")]);
    }

    #[test]
    fn cr_lf_split_across_reads_is_one_line_end() {
        let (out, _) = decode(&[b"a\r", b"\nb\r", b"\0", b"c\n"]);
        assert_eq!(out, [line("a"), line("b"), line("c")]);
    }

    #[test]
    fn iac_stripped_and_options_refused() {
        let (out, mut d) = decode(&[b"he\xff\xfb\x01llo\xff\xfd\x03\xff\xfd\x05\n"]);
        assert_eq!(out, [line("hello")]);
        // WILL ECHO refused; DO SGA agreed; DO STATUS refused.
        assert_eq!(
            d.take_replies(),
            [IAC, DONT, 1, IAC, WILL, SGA, IAC, WONT, 5]
        );
        assert!(d.take_replies().is_empty());
        assert!(d.we_do(SGA));
    }

    #[test]
    fn every_request_is_refused_for_the_whole_connection() {
        // The same unsupported request again and again: each gets its
        // refusal (RFC 1123 3.2.1), not only the first.
        let (_, mut d) = decode(&[b"\xff\xfb\x18\xff\xfb\x05\xff\xfb\x05\xff\xfd\x05\xff\xfd\x05"]);
        assert_eq!(
            d.take_replies(),
            [
                IAC, DO, TTYPE, IAC, SB, TTYPE, TTYPE_SEND, IAC, SE, IAC, DONT, 5, IAC, DONT, 5,
                IAC, WONT, 5, IAC, WONT, 5
            ]
        );
    }

    #[test]
    fn a_request_for_the_current_state_is_not_answered() {
        // NAWS agreed once; WILL again gets nothing (no loops), WONT turns
        // it off with DONT, a further WONT gets nothing.
        let (_, mut d) = decode(&[b"\xff\xfb\x1f\xff\xfb\x1f\xff\xfc\x1f\xff\xfc\x1f\xff\xfe\x03"]);
        assert_eq!(d.take_replies(), [IAC, DO, NAWS, IAC, DONT, NAWS]);
        assert!(!d.naws());
    }

    #[test]
    fn opening_offers_are_answered_without_replies() {
        let mut d = Decoder::new(64);
        d.open(true);
        assert_eq!(
            d.take_replies(),
            [
                IAC, DO, NAWS, IAC, DO, TTYPE, IAC, WILL, EOR, IAC, WILL, CHARSET, IAC, WILL, MSSP,
                IAC, WILL, COMPRESS2
            ]
        );
        let mut out = Vec::new();
        // The client agrees to NAWS and EOR, refuses the others.
        d.push(
            b"\xff\xfb\x1f\xff\xfd\x19\xff\xfc\x18\xff\xfe\x2a\xff\xfe\x46\xff\xfe\x56",
            &mut out,
        );
        assert!(d.take_replies().is_empty());
        assert!(out.is_empty());
        assert!(d.naws() && d.we_do(EOR) && !d.we_do(CHARSET));
        assert_eq!(d.prompt_end(), [IAC, EOR_MARK]);
    }

    #[test]
    fn q_method_queues_the_opposite_request() {
        let mut d = Decoder::new(8);
        d.hide_input(true);
        d.hide_input(false); // while WILL ECHO is unanswered: queued
        assert_eq!(d.take_replies(), [IAC, WILL, ECHO]);
        let mut out = Vec::new();
        d.push(&[IAC, DO, ECHO], &mut out);
        // The queued opposite goes out once the first is answered.
        assert_eq!(d.take_replies(), [IAC, WONT, ECHO]);
        d.push(&[IAC, DONT, ECHO], &mut out);
        assert!(d.take_replies().is_empty());
        assert!(!d.input_hidden());
        // An unsolicited DO ECHO is refused.
        d.push(&[IAC, DO, ECHO], &mut out);
        assert_eq!(d.take_replies(), [IAC, WONT, ECHO]);
    }

    #[test]
    fn timing_mark_every_time_in_order() {
        let (out, mut d) = decode(&[b"a\r\n\xff\xf4\xff\xfd\x06b\xff\xf4\xff\xfd\x06c\n"]);
        assert_eq!(
            out,
            [line("a"), Input::TimingMark, Input::TimingMark, line("c")]
        );
        assert!(d.take_replies().is_empty());
    }

    #[test]
    fn erase_character_and_line() {
        // "say helo", DEL, "lo world": the DEL erases the 'o'.
        let (out, _) = decode(&[b"helo\x7flo\r\n", b"ab\x08c\xff\xf7d\n", b"xyz\xff\xf8ok\n"]);
        assert_eq!(out, [line("hello"), line("ad"), line("ok")]);
        // A whole UTF-8 character goes.
        let (out, _) = decode(&["caf\u{e9}\u{7f}e\n".as_bytes()]);
        assert_eq!(out, [line("cafe")]);
    }

    #[test]
    fn ayt_is_reported() {
        let (out, _) = decode(&[b"\xff\xf6"]);
        assert_eq!(out, [Input::AreYouThere]);
    }

    #[test]
    fn naws_is_accepted_and_read() {
        // WILL NAWS, then SB NAWS 0 80 1 0xff(escaped) IAC SE, split up.
        let (out, mut d) = decode(&[
            b"\xff\xfb\x1f\xff\xfa\x1f\x00\x50",
            b"\x01\xff",
            b"\xff\xff\xf0hi\n",
        ]);
        assert_eq!(out, [Input::WindowSize(80, 0x1ff), line("hi")]);
        assert!(d.naws());
        assert_eq!(d.take_replies(), [IAC, DO, NAWS]);
    }

    #[test]
    fn terminal_types_are_asked_for_until_they_repeat() {
        let mut d = Decoder::new(64);
        d.open(false);
        d.take_replies();
        let mut out = Vec::new();
        d.push(b"\xff\xfb\x18", &mut out);
        assert_eq!(d.take_replies(), [IAC, SB, TTYPE, TTYPE_SEND, IAC, SE]);
        d.push(b"\xff\xfa\x18\x00TINTIN++\xff\xf0", &mut out);
        assert_eq!(d.take_replies(), [IAC, SB, TTYPE, TTYPE_SEND, IAC, SE]);
        d.push(b"\xff\xfa\x18\x00XTERM\xff\xf0", &mut out);
        assert_eq!(d.take_replies(), [IAC, SB, TTYPE, TTYPE_SEND, IAC, SE]);
        d.push(b"\xff\xfa\x18\x00MTTS 137\xff\xf0", &mut out);
        assert!(d.take_replies().is_empty());
        let names: Vec<_> = out
            .iter()
            .map(|i| match i {
                Input::TerminalType(t) => t.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["TINTIN++", "XTERM", "MTTS 137"]);
    }

    #[test]
    fn charset_utf8_or_ascii() {
        let mut d = Decoder::new(64);
        let mut out = Vec::new();
        d.push(&[IAC, DO, CHARSET], &mut out);
        let mut want = vec![IAC, WILL, CHARSET, IAC, SB, CHARSET, CHARSET_REQUEST];
        want.extend_from_slice(b";UTF-8;US-ASCII");
        want.extend_from_slice(&[IAC, SE]);
        assert_eq!(d.take_replies(), want);
        d.push(b"\xff\xfa\x2a\x02UTF-8\xff\xf0", &mut out);
        d.push(b"\xff\xfa\x2a\x03\xff\xf0", &mut out);
        assert_eq!(
            out,
            [
                Input::Charset("UTF-8".into()),
                Input::Charset("US-ASCII".into())
            ]
        );
        // The client's own request: UTF-8 is accepted when offered.
        let mut out = Vec::new();
        d.push(b"\xff\xfa\x2a\x01 ISO-8859-1 utf-8\xff\xf0", &mut out);
        let mut want = vec![IAC, SB, CHARSET, CHARSET_ACCEPTED];
        want.extend_from_slice(b"UTF-8");
        want.extend_from_slice(&[IAC, SE]);
        assert_eq!(d.take_replies(), want);
        assert_eq!(out, [Input::Charset("UTF-8".into())]);
    }

    #[test]
    fn mssp_and_compression_are_events() {
        let (out, mut d) = decode(&[b"\xff\xfd\x46\xff\xfd\x56"]);
        assert_eq!(out, [Input::MsspRequest, Input::StartCompression]);
        assert_eq!(d.take_replies(), [IAC, WILL, MSSP, IAC, WILL, COMPRESS2]);
        let m = mssp(&[("NAME", "t\u{1}alk".to_string()), ("PLAYERS", "3".into())]);
        assert_eq!(m, b"\xff\xfa\x46\x01NAME\x02talk\x01PLAYERS\x023\xff\xf0");
    }

    #[test]
    fn compression_stops_when_the_client_says_dont() {
        let (out, mut d) = decode(&[b"\xff\xfd\x56\xff\xfe\x56\xff\xfe\x56"]);
        assert_eq!(out, [Input::StartCompression, Input::StopCompression]);
        assert_eq!(
            d.take_replies(),
            [IAC, WILL, COMPRESS2, IAC, WONT, COMPRESS2]
        );
    }

    #[test]
    fn prompt_ends_in_ga_or_nothing_with_sga() {
        let mut d = Decoder::new(8);
        assert_eq!(d.prompt_end(), [IAC, GA]);
        d.push(&[IAC, DO, SGA], &mut Vec::new());
        assert!(d.prompt_end().is_empty());
    }

    #[test]
    fn a_window_size_comes_after_the_lines_before_it() {
        // One read or two: the same order, the stream's.
        let stream: &[u8] = b"one\r\n\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0two\n";
        let (whole, _) = decode(&[stream]);
        let (cut, _) = decode(&[&stream[..5], &stream[5..]]);
        let expected = [line("one"), Input::WindowSize(80, 24), line("two")];
        assert_eq!(whole, expected);
        assert_eq!(cut, expected);
    }

    #[test]
    fn escaped_iac_is_data_and_invalid_utf8_replaced() {
        let (out, _) = decode(&[b"a\xff\xffb\xc3\n"]);
        assert_eq!(out, [line("a\u{fffd}b\u{fffd}")]);
    }

    #[test]
    fn control_characters_removed() {
        let (out, _) = decode(&[b"a\x1b[2Jb\x07\tc\n"]);
        assert_eq!(out, [line("a[2Jb c")]);
    }

    #[test]
    fn long_line_cut_once() {
        let (out, _) = decode(&[b"0123456789abcdefXYZ\nok\n"]);
        assert_eq!(out, [Input::TooLong("0123456789abcdef".into()), line("ok")]);
    }

    #[test]
    fn a_long_line_is_cut_on_a_character_boundary() {
        // 15 ASCII bytes, then a two-byte character across the limit.
        let (out, _) = decode(&["0123456789abcde\u{e9}xyz\n".as_bytes()]);
        assert_eq!(out, [Input::TooLong("0123456789abcde".into())]);
    }

    #[test]
    fn encode_makes_crlf_and_escapes_iac() {
        let mut out = Vec::new();
        encode("a\nb", &mut out);
        assert_eq!(out, b"a\r\nb");
    }

    #[test]
    fn wrap_at_words_and_cuts_long_words() {
        assert_eq!(wrap("short", 10), "short");
        assert_eq!(wrap("one two three four", 9), "one two\nthree\nfour");
        assert_eq!(wrap("abcdefghijkl", 5), "abcde\nfghij\nkl");
        assert_eq!(wrap("a\nbb cc dd", 5), "a\nbb cc\ndd");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut d = Decoder::new(32);
            d.open(true);
            let mut out = Vec::new();
            let mut received = 0;
            let mut replied = d.take_replies().len();
            for c in &chunks {
                d.push(c, &mut out);
                received += c.len();
                replied += d.take_replies().len();
            }
            // No amplification: replies are bounded by what came in
            // (a TTYPE or CHARSET answer is the longest, per 3 bytes).
            prop_assert!(replied <= 18 + 2 + received * 22, "{replied} for {received}");
            for i in &out {
                if let Input::Line(s) | Input::TooLong(s) = i {
                    prop_assert!(s.chars().count() <= 32);
                    prop_assert!(!s.chars().any(char::is_control));
                }
            }
        }

        #[test]
        fn plain_text_survives_any_split(text in "[a-z ]{0,40}", cut in 0usize..42) {
            let input = format!("{text}\r\n");
            let cut = cut.min(input.len());
            let (a, b) = input.as_bytes().split_at(cut);
            let mut d = Decoder::new(64);
            let mut out = Vec::new();
            d.push(a, &mut out);
            d.push(b, &mut out);
            prop_assert_eq!(out, vec![Input::Line(text)]);
        }

        #[test]
        fn any_split_gives_the_same_inputs_and_replies(
            stream in proptest::collection::vec(any::<u8>(), 0..200),
            cuts in proptest::collection::vec(1usize..17, 0..30),
        ) {
            let mut whole = Decoder::new(24);
            let mut w_out = Vec::new();
            whole.push(&stream, &mut w_out);
            let mut cut = Decoder::new(24);
            let mut c_out = Vec::new();
            let mut c_replies = Vec::new();
            let mut rest = &stream[..];
            for n in cuts.iter().cycle().take(stream.len() + 1) {
                let n = (*n).min(rest.len());
                cut.push(&rest[..n], &mut c_out);
                c_replies.extend(cut.take_replies());
                rest = &rest[n..];
            }
            cut.push(rest, &mut c_out);
            c_replies.extend(cut.take_replies());
            prop_assert_eq!(w_out, c_out);
            prop_assert_eq!(whole.take_replies(), c_replies);
        }

        #[test]
        fn wrapped_lines_fit(text in "[a-z ]{0,200}", width in 1usize..40) {
            let w = wrap(&text, width);
            for l in w.lines() {
                prop_assert!(l.chars().count() <= width, "{l:?}");
            }
            let squash = |s: &str| s.split_whitespace().collect::<String>();
            prop_assert_eq!(squash(&w), squash(&text));
        }
    }
}
