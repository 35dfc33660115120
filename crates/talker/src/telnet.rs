//! Telnet input, as a pure function over bytes: no sockets here.
//!
//! [`Decoder::push`] takes whatever a read brought and returns what it
//! means: typed lines (IAC sequences stripped, every line ending a client
//! may send — CR LF, bare LF, CR NUL, bare CR — accepted, invalid UTF-8
//! replaced, control characters removed), "that line was too long", and
//! the window size if the client offers NAWS (RFC 1073). The bytes to send
//! back — refusals of every option the talker does not do — are collected
//! in [`Decoder::take_replies`].
//!
//! Line framing is uniloop's [`LineSplitter`]: this module turns the telnet
//! stream into plain text with `\n` line ends and lets the splitter cut it
//! into bounded lines.

use uniloop::{Line, LineSplitter};

/// Interpret As Command.
pub const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
/// Negotiate About Window Size (RFC 1073).
pub const NAWS: u8 = 31;

/// Longest subnegotiation kept; the rest of a longer one is dropped.
const MAX_SB: usize = 64;

/// What a chunk of input meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A typed line: valid UTF-8, no control characters, no line end.
    Line(String),
    /// A line longer than the maximum was cut; its first part is given.
    TooLong(String),
    /// The client's window size (columns, rows).
    WindowSize(u16, u16),
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

/// Telnet decoder for one connection.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// Text with `\n` line ends, cut into lines.
    lines: LineSplitter,
    /// A subnegotiation being read (option byte first).
    sb: Vec<u8>,
    /// Negotiation answers not yet sent.
    replies: Vec<u8>,
    /// Options already answered, so a chatty peer never starts a loop
    /// (RFC 1143: do not answer a request for the state one is in).
    answered: [bool; 256],
    naws: bool,
}

impl Decoder {
    /// A decoder cutting lines at `max_line` bytes.
    ///
    /// # Panics
    ///
    /// If `max_line` is 0.
    pub fn new(max_line: usize) -> Decoder {
        Decoder {
            state: State::Data,
            lines: LineSplitter::new(max_line),
            sb: Vec::new(),
            replies: Vec::new(),
            answered: [false; 256],
            naws: false,
        }
    }

    /// Whether the client agreed to send its window size.
    pub fn naws(&self) -> bool {
        self.naws
    }

    /// Bytes to send back to the client (option refusals and agreements).
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.replies)
    }

    /// Feeds bytes from the client; appends what they meant to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<Input>) {
        let mut text = Vec::with_capacity(input.len());
        for &b in input {
            self.byte(b, &mut text, out);
        }
        self.flush(&mut text, out);
    }

    /// Hands `text` to the line splitter and appends the lines it
    /// completes to `out`.
    fn flush(&mut self, text: &mut Vec<u8>, out: &mut Vec<Input>) {
        self.lines.push(text);
        text.clear();
        while let Some(line) = self.lines.next_line() {
            out.push(match line {
                Line::Complete(bytes) => Input::Line(clean(bytes)),
                Line::TooLong(bytes) => Input::TooLong(clean(bytes)),
            });
        }
    }

    fn byte(&mut self, b: u8, text: &mut Vec<u8>, out: &mut Vec<Input>) {
        self.state = match (self.state, b) {
            (State::Cr, b'\n' | 0) => State::Data,
            (State::Data | State::Cr, IAC) => State::Iac,
            (State::Data | State::Cr, b'\r') => {
                text.push(b'\n');
                State::Cr
            }
            (State::Data | State::Cr, b) => {
                text.push(b);
                State::Data
            }
            (State::Iac, IAC) => {
                text.push(IAC);
                State::Data
            }
            (State::Iac, WILL | WONT | DO | DONT) => State::Option(b),
            (State::Iac, SB) => {
                self.sb.clear();
                State::Sb
            }
            // NOP, GA, AYT, IP, a stray SE...: nothing the talker acts on.
            (State::Iac, _) => State::Data,
            (State::Option(verb), option) => {
                self.negotiate(verb, option);
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
                self.subnegotiation(text, out);
                State::Data
            }
            // IAC followed by anything else inside SB: a broken peer; end
            // the subnegotiation and carry on.
            (State::SbIac, _) => State::Data,
        };
    }

    fn negotiate(&mut self, verb: u8, option: u8) {
        let answer = match verb {
            WILL if option == NAWS => {
                self.naws = true;
                DO
            }
            WILL => DONT,
            DO => WONT,
            // The peer turns something off: it is off here already.
            _ => return,
        };
        let seen = &mut self.answered[usize::from(option)];
        if !*seen {
            *seen = true;
            self.replies.extend_from_slice(&[IAC, answer, option]);
        }
    }

    fn subnegotiation(&mut self, text: &mut Vec<u8>, out: &mut Vec<Input>) {
        if let [NAWS, w1, w0, h1, h0] = self.sb[..] {
            // The lines typed before the report come before it, however
            // the reads cut the stream (fuzz/fuzz_targets/telnet.rs checks it).
            self.flush(text, out);
            out.push(Input::WindowSize(
                u16::from_be_bytes([w1, w0]),
                u16::from_be_bytes([h1, h0]),
            ));
        }
    }
}

/// Text of a line: invalid UTF-8 replaced, control characters dropped
/// (a tab becomes a space), so nothing typed can move another user's
/// cursor or ring their bell.
fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
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
        let (out, mut d) = decode(&[b"he\xff\xfb\x01llo\xff\xfd\x03\n"]);
        assert_eq!(out, [line("hello")]);
        assert_eq!(d.take_replies(), [IAC, DONT, 1, IAC, WONT, 3]);
        assert!(d.take_replies().is_empty());
    }

    #[test]
    fn a_repeated_request_is_answered_once() {
        let (_, mut d) = decode(&[b"\xff\xfb\x18\xff\xfb\x18"]);
        assert_eq!(d.take_replies(), [IAC, DONT, 0x18]);
    }

    #[test]
    fn wont_and_dont_need_no_answer() {
        let (out, mut d) = decode(&[b"\xff\xfc\x01\xff\xfe\x01x\n"]);
        assert_eq!(out, [line("x")]);
        assert!(d.take_replies().is_empty());
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
    fn encode_makes_crlf_and_escapes_iac() {
        let mut out = Vec::new();
        encode("a\nb", &mut out);
        assert_eq!(out, b"a\r\nb");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut d = Decoder::new(32);
            let mut out = Vec::new();
            for c in &chunks {
                d.push(c, &mut out);
                let replies = d.take_replies();
                prop_assert!(replies.len() % 3 == 0);
            }
            for i in &out {
                match i {
                    Input::Line(s) | Input::TooLong(s) => {
                        prop_assert!(s.len() <= 32 * 3);
                        prop_assert!(!s.chars().any(char::is_control));
                    }
                    Input::WindowSize(..) => {}
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
    }
}
