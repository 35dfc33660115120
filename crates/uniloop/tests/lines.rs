//! `LineSplitter`: LF / CR LF framing, over-long lines in both modes, any
//! chunking of the input gives the same lines (against a plain reference
//! model), and the work stays linear on a flood without newlines (counted,
//! not timed).

use proptest::prelude::*;
use uniloop::{Line, LineSplitter, LongLines};

/// An owned [`Line`], to compare whole outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Complete(Vec<u8>),
    TooLong(Vec<u8>),
}

fn own(line: Line<'_>) -> Out {
    match line {
        Line::Complete(b) => Out::Complete(b.to_vec()),
        Line::TooLong(b) => Out::TooLong(b.to_vec()),
    }
}

fn c(s: &[u8]) -> Out {
    Out::Complete(s.to_vec())
}

fn long(s: &[u8]) -> Out {
    Out::TooLong(s.to_vec())
}

/// Pushes `chunks` one at a time, taking lines after each, then finishes.
fn run(max: usize, mode: LongLines, chunks: &[&[u8]]) -> Vec<Out> {
    let mut split = LineSplitter::new(max).long_lines(mode);
    let mut out = Vec::new();
    for chunk in chunks {
        split.push(chunk);
        while let Some(line) = split.next_line() {
            out.push(own(line));
        }
        // Once `next_line` has said "nothing more", what is kept is less
        // than one maximal line plus a CR.
        assert!(split.pending() <= max + 1, "{} pending", split.pending());
    }
    while let Some(line) = split.finish() {
        out.push(own(line));
    }
    assert_eq!(split.pending(), 0);
    out
}

/// The same rules written the obvious way, over the whole input at once.
fn reference(max: usize, mode: LongLines, input: &[u8]) -> Vec<Out> {
    let mut out = Vec::new();
    let mut segments: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if segments.last().is_some_and(|s| s.is_empty()) {
        segments.pop(); // input ended with LF (or was empty)
    }
    for seg in segments {
        let mut content = seg.strip_suffix(b"\r").unwrap_or(seg);
        if content.len() <= max {
            out.push(c(content));
            continue;
        }
        match mode {
            LongLines::Discard => out.push(long(&content[..max])),
            LongLines::Split => {
                while content.len() > max {
                    let mut cut = max;
                    if content[cut] & 0xC0 == 0x80 {
                        if let Some(lead) = (cut.saturating_sub(3)..cut)
                            .rev()
                            .find(|&i| content[i] & 0xC0 == 0xC0)
                            .filter(|&i| i > 0)
                        {
                            cut = lead;
                        }
                    }
                    out.push(long(&content[..cut]));
                    content = &content[cut..];
                }
                out.push(c(content));
            }
        }
    }
    out
}

#[test]
fn lf_and_crlf_end_lines_and_a_lone_cr_is_data() {
    let out = run(
        64,
        LongLines::Discard,
        &[b"unix\nwindows\r\nmid\rcr\n\n\r\nlast\r"],
    );
    assert_eq!(
        out,
        [
            c(b"unix"),
            c(b"windows"),
            c(b"mid\rcr"),
            c(b""),
            c(b""),
            c(b"last")
        ]
    );
}

#[test]
fn a_crlf_split_across_pushes_is_one_terminator() {
    assert_eq!(
        run(64, LongLines::Discard, &[b"a\r", b"\nb\r", b"", b"\n"]),
        [c(b"a"), c(b"b")]
    );
}

#[test]
fn the_terminator_does_not_count_towards_the_maximum() {
    // Exactly `max` bytes, then CR LF: whole, even when the CR arrives
    // alone at the end of a read.
    assert_eq!(
        run(4, LongLines::Discard, &[b"abcd\r", b"\nefgh\n"]),
        [c(b"abcd"), c(b"efgh")]
    );
    // One byte more is too long, and a CR that is not before an LF counts.
    assert_eq!(
        run(4, LongLines::Discard, &[b"abcde\n", b"abcd\rx\n", b"ok\n"]),
        [long(b"abcd"), long(b"abcd"), c(b"ok")]
    );
}

#[test]
fn discard_reports_an_over_long_line_once_and_drops_the_rest() {
    let out = run(
        3,
        LongLines::Discard,
        &[b"ok\nlonger", b" still the same line", b"\r\nnext\nyes\n"],
    );
    assert_eq!(out, [c(b"ok"), long(b"lon"), long(b"nex"), c(b"yes")]);
}

#[test]
fn an_over_long_line_is_reported_before_its_end_arrives() {
    let mut split = LineSplitter::new(4);
    split.push(b"abcdef");
    assert_eq!(split.next_line(), Some(Line::TooLong(b"abcd")));
    assert_eq!(split.next_line(), None);
    split.push(b"still going");
    assert_eq!(split.next_line(), None);
    split.push(b"\nfine\n");
    assert_eq!(split.next_line(), Some(Line::Complete(b"fine")));
    let stats = split.stats();
    assert_eq!((stats.lines, stats.too_long), (1, 1));
    assert_eq!(stats.discarded, 2 + 11 + 1);
}

#[test]
fn split_delivers_every_byte_in_pieces_at_char_boundaries() {
    let mut input = b"xx".to_vec();
    input.extend_from_slice("é".as_bytes()); // bytes 2..4 straddle max = 3
    input.extend_from_slice(b"yzw\n");
    assert_eq!(
        run(3, LongLines::Split, &[&input]),
        [long(b"xx"), long("éy".as_bytes()), c(b"zw")]
    );
}

#[test]
fn finish_ends_the_last_line_and_the_splitter_can_be_reused() {
    let mut split = LineSplitter::new(8);
    split.push(b"one\ntwo");
    assert_eq!(split.finish(), Some(Line::Complete(b"one")));
    assert_eq!(split.finish(), Some(Line::Complete(b"two")));
    assert_eq!(split.finish(), None);
    split.push(b"three\n");
    assert_eq!(split.next_line(), Some(Line::Complete(b"three")));
    // A line being dropped at end of input ends there too.
    split.push(b"far too long for this");
    assert!(split.next_line().unwrap().is_too_long());
    assert_eq!(split.finish(), None);
    split.push(b"four\n");
    assert_eq!(split.next_line(), Some(Line::Complete(b"four")));
}

#[test]
#[should_panic(expected = "must be > 0")]
fn a_zero_maximum_is_refused() {
    let _ = LineSplitter::new(0);
}

/// Every way of cutting the input into two reads gives the same lines.
#[test]
fn every_cut_point_gives_the_same_lines() {
    let input: &[u8] = b"alpha\r\nbeta\n\r\ngamma-is-long\rdelta\nend\r";
    for mode in [LongLines::Discard, LongLines::Split] {
        let want = reference(6, mode, input);
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(run(6, mode, &[a, b]), want, "{mode:?}, cut at {cut}");
        }
    }
}

/// 5 MB without a newline, in 4 KB reads as from a socket: each byte is
/// searched once, and (dropping) nothing is copied beyond one line; then
/// the next line comes through. Counted work, not time.
#[test]
fn a_5_mb_flood_without_newlines_costs_linear_work() {
    const FLOOD: usize = 5 * 1024 * 1024;
    const READ: usize = 4096;
    const MAX: usize = 1024;
    let chunk = vec![b'x'; READ];
    for mode in [LongLines::Discard, LongLines::Split] {
        let mut split = LineSplitter::new(MAX).long_lines(mode);
        let mut too_long = 0u64;
        for _ in 0..FLOOD / READ {
            split.push(&chunk);
            while let Some(line) = split.next_line() {
                assert!(line.is_too_long());
                too_long += 1;
            }
            assert!(split.pending() <= MAX + 1, "{mode:?}: memory grows");
        }
        split.push(b"\nquit\r\n");
        let mut rest = Vec::new();
        while let Some(line) = split.next_line() {
            rest.push(own(line));
        }
        let stats = split.stats();
        let pushed = stats.pushed;
        assert_eq!(pushed, (FLOOD + 7) as u64);
        assert!(stats.scanned <= pushed, "{mode:?}: {stats:?}");
        match mode {
            LongLines::Discard => {
                assert_eq!(too_long, 1);
                assert_eq!(rest, [c(b"quit")]);
                // Only the first read (before the line was known to be too
                // long) and the last were copied in.
                assert!(stats.copied <= 2 * READ as u64, "{stats:?}");
            }
            LongLines::Split => {
                // The last `MAX` bytes end at the LF: a whole line.
                assert_eq!(too_long, (FLOOD / MAX - 1) as u64);
                assert_eq!(rest, [c(&[b'x'; MAX]), c(b"quit")]);
                assert!(stats.copied <= 2 * pushed, "{stats:?}");
            }
        }
        eprintln!("{mode:?}: {stats:?}");
    }
}

/// Many short lines in reads that cut them anywhere: copying stays
/// linear (compaction moves less than was consumed).
#[test]
fn short_lines_in_odd_reads_cost_linear_work() {
    let input: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {i}\r\n").into_bytes())
        .collect();
    let mut split = LineSplitter::new(64);
    let mut n = 0u32;
    for chunk in input.chunks(1000) {
        split.push(chunk);
        while let Some(line) = split.next_line() {
            assert_eq!(line, Line::Complete(format!("line {n}").as_bytes()));
            n += 1;
        }
    }
    assert_eq!(n, 200_000);
    let stats = split.stats();
    assert!(stats.scanned <= stats.pushed, "{stats:?}");
    assert!(stats.copied <= 2 * stats.pushed, "{stats:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any input, any maximum, any chunking, both modes: the lines the
    /// reference model gives.
    #[test]
    fn any_chunking_matches_the_reference(
        input in proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b'\r'), Just(b'\n'), Just(0xC3), Just(0xA9), Just(0xF0), Just(0x9F)],
            0..200,
        ),
        cuts in proptest::collection::vec(0usize..200, 0..8),
        max in 1usize..12,
        split in any::<bool>(),
    ) {
        let mode = if split { LongLines::Split } else { LongLines::Discard };
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for cut in cuts {
            chunks.push(&input[at..cut]);
            at = cut;
        }
        chunks.push(&input[at..]);
        prop_assert_eq!(run(max, mode, &chunks), reference(max, mode, &input));
    }
}
