//! The talker's telnet parser (`talker::telnet::Decoder`) on arbitrary
//! bytes, cut into arbitrary reads.
//!
//! Input layout: byte 0 picks the maximum line length (1..=128), byte 1
//! the seed of the cuts; the rest is what the client sent. Checked:
//! nothing panics; every line is clean (no control character, at most the
//! maximum in characters: a byte becomes at most one character); the
//! replies are whole telnet commands (three-byte negotiations, or a
//! subnegotiation `IAC SB .. IAC SE`), agreeing only to the options the
//! server supports (`DO` NAWS/TTYPE/CHARSET, `WILL` SGA/EOR/CHARSET/MSSP/
//! MCCP2) and never more than the requests that came in; and the inputs,
//! replies and NAWS state do not depend on how the stream was cut into
//! reads (the same stream pushed in one piece gives the same inputs in
//! the same order).
#![no_main]

use libfuzzer_sys::fuzz_target;
use talker::telnet::{
    Decoder, Input, CHARSET, COMPRESS2, DO, DONT, EOR, IAC, MSSP, NAWS, SB, SE, SGA, TTYPE,
    WILL, WONT,
};

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
    // Whole commands, agreeing only to what the server does.
    let mut rest = &r.replies[..];
    while !rest.is_empty() {
        assert_eq!(rest[0], IAC, "a reply not starting with IAC: {rest:?}");
        match rest.get(1) {
            Some(&SB) => {
                let end = rest
                    .windows(2)
                    .position(|w| w == [IAC, SE])
                    .expect("a subnegotiation without IAC SE");
                rest = &rest[end + 2..];
            }
            Some(&verb) => {
                let option = *rest.get(2).expect("a partial negotiation");
                match verb {
                    DO => assert!(matches!(option, NAWS | TTYPE | CHARSET), "DO {option}"),
                    WILL => assert!(
                        matches!(option, SGA | EOR | CHARSET | MSSP | COMPRESS2),
                        "WILL {option}"
                    ),
                    DONT | WONT => {}
                    _ => panic!("reply verb {verb}"),
                }
                rest = &rest[3..];
            }
            None => panic!("a lone IAC"),
        }
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
