//! [`LineSplitter`]: bytes in, complete lines out, with a maximum line
//! length — the framing of a line-based protocol (telnet, SMTP, a MUD's
//! command line) and of the [`Console`](crate::Console).
//!
//! Line endings and costs are described on [`LineSplitter`].

use std::fmt;

/// What [`LineSplitter`] does with a line longer than its maximum.
///
/// # Examples
///
/// ```
/// use uniloop::{Line, LineSplitter, LongLines};
///
/// let mut split = LineSplitter::new(4).long_lines(LongLines::Split);
/// split.push(b"abcdefghij\n");
/// assert_eq!(split.next_line(), Some(Line::TooLong(b"abcd")));
/// assert_eq!(split.next_line(), Some(Line::TooLong(b"efgh")));
/// assert_eq!(split.next_line(), Some(Line::Complete(b"ij")));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LongLines {
    /// Report the first `max` bytes once as [`Line::TooLong`] and drop the
    /// rest of the line, up to and including its terminator (tokio-util's
    /// `LinesCodec` behaves the same way). What a server wants: answer
    /// "line too long" (or hang up) and carry on with the next line.
    #[default]
    Discard,
    /// Deliver the line in pieces: [`Line::TooLong`] pieces of at most `max`
    /// bytes, then the rest as a [`Line::Complete`] of at most `max` bytes.
    /// A piece is cut at a UTF-8 character boundary when one lies within the
    /// last 3 bytes (so text is not split inside a character). What the
    /// [`Console`](crate::Console) does: nothing typed is lost.
    Split,
}

/// One line from a [`LineSplitter`], borrowed from it until the next call.
///
/// # Examples
///
/// ```
/// use uniloop::{Line, LineSplitter};
///
/// let mut split = LineSplitter::new(80);
/// split.push(b"look\r\n");
/// let line = split.next_line().unwrap();
/// assert_eq!(line, Line::Complete(b"look"));
/// assert_eq!(line.bytes(), b"look");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Line<'a> {
    /// A whole line of at most `max` bytes, without its terminator.
    Complete(&'a [u8]),
    /// (Part of) a line longer than `max` bytes: see [`LongLines`] for what
    /// it holds and what follows it.
    TooLong(&'a [u8]),
}

impl<'a> Line<'a> {
    /// The line's bytes, whichever kind it is.
    pub fn bytes(self) -> &'a [u8] {
        match self {
            Line::Complete(b) | Line::TooLong(b) => b,
        }
    }

    /// Whether this is a [`Line::TooLong`].
    pub fn is_too_long(self) -> bool {
        matches!(self, Line::TooLong(_))
    }
}

/// Work counters of a [`LineSplitter`], for checking that it stays linear.
///
/// # Examples
///
/// ```
/// use uniloop::LineSplitter;
///
/// let mut split = LineSplitter::new(64 * 1024);
/// for _ in 0..100 {
///     split.push(&[b'x'; 100]); // no newline yet
///     assert_eq!(split.next_line(), None);
/// }
/// let stats = split.stats();
/// assert_eq!(stats.pushed, 10_000);
/// assert!(stats.scanned <= stats.pushed); // each byte searched once
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LineStats {
    /// Bytes given to [`push`](LineSplitter::push).
    pub pushed: u64,
    /// Bytes examined in the search for a terminator.
    pub scanned: u64,
    /// Bytes copied: into the buffer by `push`, and moved within it when it
    /// is compacted.
    pub copied: u64,
    /// [`Line::Complete`] lines returned.
    pub lines: u64,
    /// [`Line::TooLong`] lines (or pieces) returned.
    pub too_long: u64,
    /// Bytes of over-long lines dropped ([`LongLines::Discard`]),
    /// terminators included.
    pub discarded: u64,
}

/// Splits a byte stream into lines of at most `max` bytes.
///
/// Feed it what each read returned with [`push`](LineSplitter::push) and
/// take lines with [`next_line`](LineSplitter::next_line) until it returns
/// `None`; at end of input take the last, unterminated line with
/// [`finish`](LineSplitter::finish). Bytes are not interpreted: decode a
/// line as UTF-8 (or not) yourself.
///
/// Memory: what has been pushed and not yet returned as lines, which
/// `next_line` keeps below `max` + 2 bytes once it has returned `None` (in
/// [`LongLines::Discard`] mode, the bytes of a line being dropped are not
/// even buffered).
///
/// # Line endings
///
/// A line ends at LF (`\n`). A CR (`\r`) just before that LF is removed with
/// it, so LF and CR LF input give the same lines. A CR anywhere else is
/// data: `"a\rb\n"` is the line `"a\rb"`, and a lone CR does not end a line
/// (classic Mac OS endings are not recognised; telnet's `CR NUL` is left to
/// the protocol layer). The terminator never counts towards the maximum
/// length: a line of exactly `max` bytes followed by CR LF is a complete
/// line, not an over-long one.
///
/// # Linear time
///
/// A naive splitter that searches the whole buffer for a newline after each
/// read is quadratic on a flood without newlines (5 MB in 4 KB reads is
/// about 3 GB of scanning). Here every byte is searched for a terminator at
/// most once — the search resumes where the last one stopped — and the
/// buffer is compacted only when at least half of it has been consumed, so
/// moving bytes costs at most as much again as copying them in. An
/// over-long line is cut off as soon as `max + 1` bytes of it are known,
/// whatever follows. [`LineSplitter::stats`] counts this work, so tests can
/// check it without timing anything.
///
/// # Examples
///
/// Framing a connection's input (`Discard` is the default):
///
/// ```
/// use uniloop::{Line, LineSplitter};
///
/// let mut lines = LineSplitter::new(8);
/// let mut got = Vec::new();
/// // Two reads from a socket, split anywhere.
/// for chunk in [&b"say hi\r\nthis line is too lo"[..], b"ng\nquit"] {
///     lines.push(chunk);
///     while let Some(line) = lines.next_line() {
///         got.push(match line {
///             Line::Complete(text) => String::from_utf8_lossy(text).into_owned(),
///             Line::TooLong(_) => "<too long>".to_string(),
///         });
///     }
/// }
/// // The peer closed: the last line had no newline.
/// while let Some(line) = lines.finish() {
///     got.push(String::from_utf8_lossy(line.bytes()).into_owned());
/// }
/// assert_eq!(got, ["say hi", "<too long>", "quit"]);
/// ```
pub struct LineSplitter {
    max: usize,
    long: LongLines,
    buf: Vec<u8>,
    /// The first byte not yet returned.
    start: usize,
    /// `buf[start..scan]` holds no LF: the search resumes at `scan`.
    scan: usize,
    /// Dropping the rest of an over-long line up to its LF (`Discard`).
    discarding: bool,
    stats: LineStats,
}

impl LineSplitter {
    /// A splitter for lines of at most `max` bytes (terminator not
    /// counted), dropping the rest of longer ones ([`LongLines::Discard`]).
    ///
    /// # Panics
    ///
    /// If `max` is 0.
    pub fn new(max: usize) -> LineSplitter {
        assert!(max > 0, "LineSplitter: the maximum line length must be > 0");
        LineSplitter {
            max,
            long: LongLines::Discard,
            buf: Vec::new(),
            start: 0,
            scan: 0,
            discarding: false,
            stats: LineStats::default(),
        }
    }

    /// Chooses what happens to lines longer than the maximum.
    pub fn long_lines(mut self, long: LongLines) -> LineSplitter {
        self.long = long;
        self
    }

    /// The maximum line length, in bytes.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Bytes pushed and not yet returned (or dropped).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The work done so far.
    pub fn stats(&self) -> LineStats {
        self.stats
    }

    /// Appends input. Lines come out of [`next_line`](LineSplitter::next_line).
    pub fn push(&mut self, mut data: &[u8]) {
        self.stats.pushed += data.len() as u64;
        if self.discarding && self.start == self.buf.len() {
            // Nothing buffered comes before the bytes being dropped, so drop
            // them here without copying them in.
            let (n, found) = match find_lf(data) {
                Some(i) => (i + 1, true),
                None => (data.len(), false),
            };
            self.stats.scanned += n as u64;
            self.stats.discarded += n as u64;
            data = &data[n..];
            self.discarding = !found;
        }
        if data.is_empty() {
            return;
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            (self.start, self.scan) = (0, 0);
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            // Moves fewer bytes than were consumed since the last
            // compaction: amortised O(1) per byte.
            self.stats.copied += (self.buf.len() - self.start) as u64;
            self.buf.drain(..self.start);
            self.scan -= self.start;
            self.start = 0;
        }
        self.stats.copied += data.len() as u64;
        self.buf.extend_from_slice(data);
    }

    /// The next line, if a whole one (or, for an over-long line, enough of
    /// it) has been pushed. Call it until it returns `None` after each
    /// [`push`](LineSplitter::push).
    pub fn next_line(&mut self) -> Option<Line<'_>> {
        self.next(false)
    }

    /// At end of input: like [`next_line`](LineSplitter::next_line), but
    /// the end of what was pushed also ends a line (a trailing CR is
    /// removed, as before an LF). Call it until it returns `None`; the
    /// splitter is then empty and can be reused.
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Line, LineSplitter};
    /// let mut split = LineSplitter::new(64);
    /// split.push(b"one\ntwo\r");
    /// assert_eq!(split.finish(), Some(Line::Complete(b"one")));
    /// assert_eq!(split.finish(), Some(Line::Complete(b"two")));
    /// assert_eq!(split.finish(), None);
    /// ```
    pub fn finish(&mut self) -> Option<Line<'_>> {
        self.next(true)
    }

    fn next(&mut self, eof: bool) -> Option<Line<'_>> {
        loop {
            let len = self.buf.len();
            let lf = find_lf(&self.buf[self.scan..]).map(|i| self.scan + i);
            let scanned_to = lf.map_or(len, |i| i + 1);
            self.stats.scanned += scanned_to.saturating_sub(self.scan) as u64;
            if self.discarding {
                self.stats.discarded += (scanned_to - self.start) as u64;
                self.start = scanned_to;
                self.scan = scanned_to;
                if lf.is_none() {
                    // At end of input the dropped line ends too.
                    self.discarding = !eof;
                    return None;
                }
                self.discarding = false;
                continue;
            }
            // Where this line's content ends, as far as it is known: before
            // the LF (and a CR just before it); without an LF, before a
            // trailing CR that may yet turn out to be the start of CR LF.
            let terminated = lf.is_some() || (eof && self.start < len);
            let line_end = lf.unwrap_or(len);
            let trailing_cr = line_end > self.start && self.buf[line_end - 1] == b'\r';
            let content_end = line_end - usize::from(trailing_cr);
            // Keep the LF's position: the next search starts there, so bytes
            // already searched are not searched again.
            self.scan = lf.unwrap_or(len);
            let start = self.start;
            if content_end - start > self.max {
                return Some(self.too_long(lf, start));
            }
            if !terminated {
                return None;
            }
            self.start = scanned_to;
            self.scan = scanned_to;
            self.stats.lines += 1;
            return Some(Line::Complete(&self.buf[start..content_end]));
        }
    }

    /// Returns the first piece of the over-long line at `start`; `lf` is its
    /// terminator's position if it has been pushed.
    fn too_long(&mut self, lf: Option<usize>, start: usize) -> Line<'_> {
        self.stats.too_long += 1;
        let cut = match self.long {
            LongLines::Discard => {
                let head_end = start + self.max;
                // Drop what is buffered of the rest; without its LF, keep
                // dropping in later calls.
                let dropped_to = lf.map_or(self.buf.len(), |i| i + 1);
                self.stats.discarded += (dropped_to - head_end) as u64;
                self.start = dropped_to;
                self.scan = dropped_to;
                self.discarding = lf.is_none();
                head_end
            }
            LongLines::Split => {
                let cut = start + char_boundary(&self.buf[start..], self.max);
                self.start = cut;
                cut
            }
        };
        Line::TooLong(&self.buf[start..cut])
    }
}

impl fmt::Debug for LineSplitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineSplitter")
            .field("max", &self.max)
            .field("long_lines", &self.long)
            .field("pending", &self.pending())
            .field("discarding", &self.discarding)
            .finish()
    }
}

fn find_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// `at`, moved back to the start of a UTF-8 character that straddles it
/// (if its lead byte is within 3 bytes, and not at 0: a piece is never
/// empty). `bytes` is longer than `at`.
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    if !is_continuation(bytes[at]) {
        return at;
    }
    (at.saturating_sub(3)..at)
        .rev()
        .find(|&i| bytes[i] & 0xC0 == 0xC0)
        .filter(|&i| i > 0)
        .unwrap_or(at)
}
