//! `LineSplitter` on arbitrary bytes, cut into arbitrary chunks.
//!
//! Input layout: byte 0 picks the maximum line length (1..=64), byte 1 the
//! long-line mode and the chunk seed; the rest is the stream. Checked:
//! nothing panics; no line is longer than the maximum and none holds a LF;
//! the lines do not depend on how the stream was cut (the same stream pushed
//! in one piece gives the same lines); in `Split` mode no byte is lost (the
//! pieces plus the terminators, and a CR ending the stream, which `finish`
//! removes, account for the whole stream).
#![no_main]

use libfuzzer_sys::fuzz_target;
use uniloop::{Line, LineSplitter, LongLines};

#[derive(Debug, PartialEq)]
enum Out {
    Complete(Vec<u8>),
    TooLong(Vec<u8>),
}

fn own(line: Line<'_>, max: usize) -> Out {
    assert!(line.bytes().len() <= max, "a line longer than the maximum");
    assert!(!line.bytes().contains(&b'\n'), "a LF inside a line");
    match line {
        Line::Complete(b) => Out::Complete(b.to_vec()),
        Line::TooLong(b) => Out::TooLong(b.to_vec()),
    }
}

fn run(max: usize, mode: LongLines, chunks: &[&[u8]]) -> Vec<Out> {
    let mut split = LineSplitter::new(max).long_lines(mode);
    let mut out = Vec::new();
    for chunk in chunks {
        split.push(chunk);
        while let Some(line) = split.next_line() {
            out.push(own(line, max));
        }
    }
    while let Some(line) = split.finish() {
        out.push(own(line, max));
    }
    assert_eq!(split.pending(), 0, "finish leaves nothing behind");
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max = usize::from(data[0] % 64) + 1;
    let mode = if data[1] & 1 == 0 {
        LongLines::Discard
    } else {
        LongLines::Split
    };
    let mut seed = u32::from(data[1] >> 1) | 1;
    let stream = &data[2..];

    // Cut the stream at pseudo-random points (1..=17 bytes apart).
    let mut chunks = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed as usize % 17 + 1).min(rest.len());
        chunks.push(&rest[..n]);
        rest = &rest[n..];
    }

    let cut = run(max, mode, &chunks);
    let whole = run(max, mode, &[stream]);
    assert_eq!(cut, whole, "the lines depend on where the stream was cut");

    if mode == LongLines::Split {
        // Every byte is in a piece, except each LF, the CR of a CRLF, and
        // a CR that ends the stream (`finish` removes it, as before a LF).
        let kept: usize = cut
            .iter()
            .map(|o| match o {
                Out::Complete(b) | Out::TooLong(b) => b.len(),
            })
            .sum();
        let lfs = stream.iter().filter(|&&b| b == b'\n').count();
        let crlfs = stream.windows(2).filter(|w| w == b"\r\n").count();
        let last_cr = usize::from(stream.last() == Some(&b'\r'));
        assert_eq!(
            kept + lfs + crlfs + last_cr,
            stream.len(),
            "Split mode lost bytes"
        );
    }
});
