//! Telnet against the real binary: the server's opening negotiation,
//! timing marks, AYT, line editing, window-size wrapping, the character
//! set, MSSP, MCCP2 — and inetutils `telnet` itself in a pseudo-terminal.

mod util;

use std::io::Read;
use std::time::Instant;

use util::{Client, Talker, DEADLINE};

const IAC: u8 = 255;
const WILL: u8 = 251;
const DO: u8 = 253;
const SB: u8 = 250;
const SE: u8 = 240;

/// Reads raw bytes until `want` appears in what arrived since `from`.
#[track_caller]
fn expect_raw(c: &mut Client, from: usize, want: &[u8]) {
    let deadline = Instant::now() + DEADLINE;
    while !c.raw[from..].windows(want.len()).any(|w| w == want) {
        assert!(
            Instant::now() < deadline,
            "no {want:?} in {:?}",
            &c.raw[from..]
        );
        assert!(c.read_some(), "closed before {want:?}");
    }
}

#[test]
fn the_server_opens_the_negotiation() {
    let t = Talker::start("tn-open", &[]);
    let mut c = t.connect();
    c.expect("By what name");
    for want in [
        [IAC, DO, 31],   // NAWS
        [IAC, DO, 24],   // TTYPE
        [IAC, WILL, 25], // EOR
        [IAC, WILL, 42], // CHARSET
        [IAC, WILL, 70], // MSSP
        [IAC, WILL, 86], // MCCP2
    ] {
        assert!(c.raw.windows(3).any(|w| w == want), "no {want:?}");
    }
}

#[test]
fn timing_marks_are_answered_every_time_and_chat_goes_on() {
    let t = Talker::start("tn-tm", &[]);
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    for i in 0..3 {
        let from = alice.raw.len();
        // What inetutils telnet sends for Ctrl-C: IAC IP, IAC DO TM.
        alice.send_raw(&[IAC, 244, IAC, DO, 6]);
        expect_raw(&mut alice, from, &[IAC, WILL, 6]);
        alice.send(&format!("say round {i}"));
        alice.expect(&format!("You say: round {i}"));
        bob.expect(&format!("Alice says: round {i}"));
    }
}

#[test]
fn ayt_and_line_editing() {
    let t = Talker::start("tn-edit", &[]);
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    alice.send_raw(&[IAC, 246]);
    alice.expect("[Yes, the talker is here.]");
    // A character-mode client: DEL and BS erase, IAC EC erases, IAC EL
    // starts the line over, IAC IP drops the line typed so far.
    alice.send_raw(b"say helo\x7flo world\r\n");
    bob.expect("Alice says: hello world");
    alice.send_raw(b"say ab\x08c\xff\xf7d\r\n");
    bob.expect("Alice says: ad");
    alice.send_raw(b"say junk\xff\xf8say kept\r\n");
    bob.expect("Alice says: kept");
    alice.send_raw(b"say lost\xff\xf4say after ip\r\n");
    let (before, _) = bob.expect("Alice says: after ip");
    assert!(before.iter().all(|l| !l.contains("lost")), "{before:?}");
}

#[test]
fn prompts_end_in_ga_or_eor() {
    let t = Talker::start("tn-prompt", &[]);
    let mut ga = t.login("Gary");
    ga.send("look");
    ga.expect("Exits:");
    let from = ga.raw.len();
    ga.send("help");
    ga.expect("tell NAME TEXT");
    expect_raw(&mut ga, from, b"> \xff\xf9");

    let mut eor = t.connect();
    eor.send_raw(&[IAC, DO, 25]);
    eor.expect("By what name");
    eor.register("Eric");
    let from = eor.raw.len();
    eor.send("look");
    eor.expect("Exits:");
    expect_raw(&mut eor, from, b"> \xff\xef");
}

#[test]
fn output_is_wrapped_to_the_window_width() {
    let t = Talker::start("tn-wrap", &[]);
    let mut alice = t.connect();
    // WILL NAWS, 30 columns.
    alice.send_raw(b"\xff\xfb\x1f\xff\xfa\x1f\x00\x1e\x00\x18\xff\xf0");
    alice.expect("By what name");
    alice.register("Alice");
    let mut bob = t.login("Bob");
    bob.send("say one two three four five six seven eight nine ten");
    let (_, first) = alice.expect("Bob says:");
    let (_, second) = alice.expect("ten");
    assert_eq!(first, "Bob says: one two three four");
    assert_eq!(second, "five six seven eight nine ten");
}

#[test]
fn a_client_refusing_utf8_gets_ascii() {
    let t = Talker::start("tn-charset", &[]);
    let mut old = t.connect();
    // DO CHARSET (the server asks), then REJECTED.
    old.send_raw(&[IAC, DO, 42]);
    expect_raw(&mut old, 0, b"\xff\xfa\x2a\x01;UTF-8;US-ASCII\xff\xf0");
    old.send_raw(&[IAC, SB, 42, 3, IAC, SE]);
    old.expect("By what name");
    old.register("Olga");
    let mut bob = t.login("Bob");
    bob.send("say caf\u{e9} \u{263a}");
    let (_, line) = old.expect("Bob says:");
    assert_eq!(line, "Bob says: caf? ?");
}

#[test]
fn mssp_is_answered() {
    let t = Talker::start("tn-mssp", &[]);
    let _alice = t.login("Alice");
    let mut crawler = t.connect();
    crawler.send_raw(&[IAC, DO, 70]);
    expect_raw(&mut crawler, 0, b"\x01PLAYERS\x021");
    expect_raw(&mut crawler, 0, b"\x01NAME\x02uniloop talker");
}

#[test]
fn mccp2_compresses_everything_after_its_start() {
    let t = Talker::start("tn-mccp", &[]);
    let mut c = t.connect();
    c.send_raw(&[IAC, DO, 86]);
    expect_raw(&mut c, 0, &[IAC, SB, 86, IAC, SE]);
    let start = c
        .raw
        .windows(5)
        .position(|w| w == [IAC, SB, 86, IAC, SE])
        .unwrap()
        + 5;
    c.send("Zed");
    c.send("pw-zed");
    c.send("pw-zed");
    // Everything from the marker on is one zlib stream, sync-flushed
    // after each write: read until the welcome decompresses.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut text = Vec::new();
        let mut z = flate2::read::ZlibDecoder::new(&c.raw[start..]);
        let _ = z.read_to_end(&mut text);
        let text = String::from_utf8_lossy(&text);
        // (The welcome and the room are separate writes.)
        if text.contains("Welcome, Zed!") && text.contains("Exits:") {
            assert!(text.contains("The Lobby"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "nothing decompressed: {text:?}");
        assert!(c.read_some(), "closed");
    }
    // DONT COMPRESS2: the stream is finished, and plain text follows.
    c.send_raw(&[IAC, 254, 86]);
    c.send("say plain again");
    let deadline = Instant::now() + DEADLINE;
    loop {
        // bufread: no read-ahead, so what is left after the stream is
        // exactly what follows it.
        let mut z = flate2::bufread::ZlibDecoder::new(&c.raw[start..]);
        let mut text = Vec::new();
        if z.read_to_end(&mut text).is_ok() {
            // The zlib stream ended: everything after it is plain.
            let used = c.raw.len() - start - z.into_inner().len();
            let plain = String::from_utf8_lossy(&c.raw[start + used..]);
            if plain.contains("You say: plain again") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no plain text after DONT COMPRESS2"
        );
        assert!(c.read_some(), "closed");
    }
}

// ---- inetutils telnet in a pseudo-terminal ------------------------------

#[cfg(unix)]
mod pty {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::Talker;

    fn must_run() -> bool {
        std::env::var_os("CI").is_some()
    }

    fn skip(why: &str) {
        assert!(!must_run(), "the telnet pty test must run in CI: {why}");
        eprintln!("telnet_pty: SKIPPED: {why}");
    }

    /// A python with pexpect: the system's, or a venv under the target dir.
    fn python_with_pexpect() -> Result<PathBuf, String> {
        let has = |py: &Path| {
            Command::new(py)
                .args(["-c", "import pexpect"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if has(Path::new("python3")) {
            return Ok(PathBuf::from("python3"));
        }
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("telnet-pty-venv");
        let python = venv.join("bin").join("python");
        if !python.exists() {
            let made = Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status();
            if !made.is_ok_and(|s| s.success()) {
                return Err("python3 -m venv failed".into());
            }
        }
        if !has(&python) {
            let pip = Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "pexpect",
                ])
                .status();
            if !pip.is_ok_and(|s| s.success()) {
                return Err("pip install pexpect failed".into());
            }
        }
        Ok(python)
    }

    #[test]
    fn inetutils_telnet_survives_ctrl_c_and_chat_goes_on() {
        if !Command::new("telnet")
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("inetutils"))
        {
            return skip("no inetutils telnet (scripts/test.sh installs inetutils-telnet)");
        }
        let python = match python_with_pexpect() {
            Ok(p) => p,
            Err(why) => return skip(&why),
        };
        let t = Talker::start("tn-pty", &[]);
        let mut bob = t.login("Bob");
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("telnet_pty.py");
        let out = Command::new(&python)
            .arg(&script)
            .arg(t.addr.ip().to_string())
            .arg(t.addr.port().to_string())
            .arg("Carol")
            .output()
            .expect("python runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "telnet in a pty failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("all checks passed"), "{stdout}");
        for i in 0..3 {
            bob.expect(&format!("Carol says: after interrupt {i}"));
        }
        bob.expect("Carol has left.");
        eprintln!("telnet_pty: ran inetutils telnet in a pseudo-terminal");
    }
}
