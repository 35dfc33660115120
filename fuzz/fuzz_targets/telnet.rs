//! The talker's telnet parser (`talker::telnet::Decoder`) on arbitrary
//! bytes, cut into arbitrary reads.
//!
//! Input layout: byte 0 picks the maximum line length (1..=128), byte 1
//! the seed of the cuts; the rest is what the client sent. Checked:
//! nothing panics; every line is clean (no control character, at most the
//! maximum in characters: a byte becomes at most one character); the
//! replies are whole three-byte negotiations (`IAC DO NAWS`, or a refusal
//! `IAC DONT/WONT x`), each option answered at most once, `DO` only for
//! NAWS and only when `naws()` says so; and the inputs, replies and NAWS
//! state do not depend on how the stream was cut into reads (the same
//! stream pushed in one piece gives the same inputs in the same order).
#![no_main]

use libfuzzer_sys::fuzz_target;
use talker::telnet::{Decoder, Input, IAC, NAWS};

const DO: u8 = 253;
const DONT: u8 = 254;
const WONT: u8 = 252;

struct Run {
    inputs: Vec<Input>,
    replies: Vec<u8>,
    naws: bool,
}

fn run(max: usize, reads: &[&[u8]]) -> Run {
    let mut d = Decoder::new(max);
    let mut inputs = Vec::new();
    let mut replies = Vec::new();
    for read in reads {
        d.push(read, &mut inputs);
        let r = d.take_replies();
        assert_eq!(r.len() % 3, 0, "a partial negotiation: {r:?}");
        replies.extend_from_slice(&r);
    }
    assert!(d.take_replies().is_empty(), "take_replies takes them all");
    Run {
        inputs,
        replies,
        naws: d.naws(),
    }
}

fn check(max: usize, r: &Run) {
    for input in &r.inputs {
        if let Input::Line(s) | Input::TooLong(s) = input {
            assert!(
                !s.chars().any(char::is_control),
                "a control character in {s:?}"
            );
            assert!(s.chars().count() <= max, "a line over the maximum: {s:?}");
        }
    }
    let mut answered = [false; 256];
    for neg in r.replies.chunks(3) {
        let &[iac, verb, option] = neg else {
            unreachable!("chunks of a multiple of 3")
        };
        assert_eq!(iac, IAC, "a reply not starting with IAC: {neg:?}");
        match verb {
            DO => assert!(option == NAWS && r.naws, "DO {option} (naws {})", r.naws),
            DONT | WONT => {}
            _ => panic!("reply verb {verb}"),
        }
        let seen = &mut answered[usize::from(option)];
        assert!(!*seen, "option {option} answered twice");
        *seen = true;
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max = usize::from(data[0] % 128) + 1;
    let mut seed = u32::from(data[1]) | 1;
    let stream = &data[2..];

    // Cut the stream at pseudo-random points (1..=17 bytes apart).
    let mut reads = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed as usize % 17 + 1).min(rest.len());
        reads.push(&rest[..n]);
        rest = &rest[n..];
    }

    let cut = run(max, &reads);
    check(max, &cut);
    let whole = run(max, &[stream]);
    assert_eq!(cut.inputs, whole.inputs, "the inputs depend on the reads");
    assert_eq!(
        cut.replies, whole.replies,
        "the replies depend on the reads"
    );
    assert_eq!(cut.naws, whole.naws);
});
