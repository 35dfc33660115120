//! `Console`: runs `examples/console.rs` as a real process with stdin
//! piped (or redirected from a file) and checks what the loop received.
//! Reference defect 5: `add_console` detected the type and registered
//! nothing; here every line arrives as an event and EOF is one.
//!
//! Runs natively on Unix and under Wine for Windows (pipe, file and NUL
//! stdin; a real console is tested in `windows_console.rs`).

mod util;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;

use util::GUARD;

/// The longest line delivered whole (`Console::MAX_LINE`).
const MAX_LINE: usize = uniloop::Console::MAX_LINE;

/// The example's path. On Unix it is built first (a no-op when it is
/// current: a plain `cargo test` already built it); under Wine, cargo (a
/// Linux program) cannot be started, and `cargo test` has built it.
fn example(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    if cfg!(unix) {
        let release = p.components().any(|c| c.as_os_str() == "release");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-q", "-p", "uniloop", "--example", name]);
        if release {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success(), "building example {name}");
    }
    // target/[triple/]<profile>/deps/<this test> -> .../<profile>/examples/<name>
    p.pop();
    p.pop();
    p.push("examples");
    p.push(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    p
}

/// The child's whole stdout and its exit status, or a failure if it has
/// not exited within the guard time (then it is killed).
#[track_caller]
fn output_within_guard(mut child: Child) -> (Vec<String>, bool) {
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        let _ = tx.send(s);
    });
    let Ok(text) = rx.recv_timeout(GUARD) else {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("the example did not finish within the guard time");
    };
    let ok = child.wait().unwrap().success();
    (text.lines().map(str::to_owned).collect(), ok)
}

fn line(s: &str) -> String {
    format!("line {s:?}")
}

#[test]
fn piped_lines_crlf_invalid_utf8_long_lines_and_one_eof() {
    let mut child = Command::new(example("console"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = Vec::new();
    input.extend_from_slice(b"hello\nwindows\r\nbad \xff\xfe byte\n\n");
    input.extend_from_slice(&vec![b'x'; 2 * MAX_LINE + 10]);
    input.extend_from_slice(b"\nlast without newline");
    let mut stdin = child.stdin.take().unwrap();
    // Written from a thread: the example's output pipe must be drained at
    // the same time.
    let writer = thread::spawn(move || stdin.write_all(&input).unwrap());
    let (out, ok) = output_within_guard(child);
    writer.join().unwrap();
    assert!(ok, "the example failed: {out:?}");
    let xs = |n| line(&"x".repeat(n));
    assert_eq!(
        out,
        [
            "console: Pipe".to_string(),
            line("hello"),
            line("windows"),
            line("bad \u{fffd}\u{fffd} byte"),
            line(""),
            xs(MAX_LINE),
            xs(MAX_LINE),
            xs(10),
            line("last without newline"),
            "eof".to_string(),
            "stopped true, after eof: None".to_string(),
        ]
    );
}

#[test]
fn a_regular_file_on_stdin() {
    let path = std::env::temp_dir().join(format!("uniloop-console-{}.txt", std::process::id()));
    std::fs::write(&path, b"one\r\ntwo\n").unwrap();
    let child = Command::new(example("console"))
        .stdin(std::fs::File::open(&path).unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, ok) = output_within_guard(child);
    std::fs::remove_file(&path).unwrap();
    assert!(ok);
    assert_eq!(
        out,
        [
            "console: File",
            "line \"one\"",
            "line \"two\"",
            "eof",
            "stopped true, after eof: None"
        ]
    );
}

#[test]
fn an_empty_stdin_gives_only_eof() {
    let child = Command::new(example("console"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, ok) = output_within_guard(child);
    assert!(ok);
    assert_eq!(
        out,
        ["console: File", "eof", "stopped true, after eof: None"]
    );
}

/// `stop` returns while the reader is blocked on a pipe that is open and
/// empty: the test holds the write end open throughout.
#[test]
fn stop_unblocks_a_read_on_an_open_empty_pipe() {
    let mut child = Command::new(example("console"))
        .arg("--stop-after-first-line")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    let (out, ok) = output_within_guard(child);
    assert!(ok);
    assert_eq!(
        out,
        [
            "console: Pipe".to_string(),
            line("first"),
            "stopped true".to_string()
        ]
    );
    drop(stdin); // only now does the pipe close
}

/// A process that closes its fd 0 and then makes a runtime. The runtime must not take fd 0 for its own epoll, eventfd or
/// pipe, so the console finds no stdin and reports an immediate end of
/// input, instead of reading from whatever descriptor took the number.
/// (Rust's start-up code reopens a closed fd 0 on `/dev/null`, so the close
/// has to happen inside the process: this test runs itself as the child.)
#[cfg(unix)]
#[test]
fn a_closed_stdin_is_end_of_input_not_another_fd() {
    const CHILD: &str = "UNILOOP_TEST_CLOSED_STDIN_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return closed_stdin_child();
    }
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_closed_stdin_is_end_of_input_not_another_fd",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CHILD, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, ok) = output_within_guard(child);
    assert!(ok, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.ends_with("child: kind None")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.ends_with("child: eof")), "{lines:?}");
}

#[cfg(unix)]
fn closed_stdin_child() {
    use std::time::Duration;
    use uniloop::{Console, ConsoleEvent, Events, Runtime};
    // SAFETY: nothing in this process uses fd 0 from here on but the code
    // under test, which must find it closed.
    assert_eq!(unsafe { libc::close(0) }, 0);
    let mut rt = Runtime::new().unwrap();
    let console = Console::spawn(&rt.poster(), 1).unwrap();
    println!("child: kind {:?}", console.kind());
    let mut events = Events::with_capacity(8);
    rt.wait(&mut events, Some(Duration::from_secs(10))).unwrap();
    match console.try_recv() {
        Some(ConsoleEvent::Eof) => println!("child: eof"),
        other => println!("child: {other:?}"),
    }
}
