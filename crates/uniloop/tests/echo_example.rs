//! Runs `examples/echo.rs` as a real process and talks to it over loopback.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Builds the example (a no-op when it is current: a plain `cargo test`
/// already built it) and returns its path.
fn example(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    let release = p.components().any(|c| c.as_os_str() == "release");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-q", "-p", "uniloop", "--example", name]);
    if release {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building example {name}");
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    p.pop();
    p.pop();
    p.push("examples");
    p.push(name);
    p
}

#[test]
fn echo_example_echoes_and_ticks() {
    // No --mode: readiness is the default.
    echo_example(&[], "readiness mode");
}

#[test]
fn echo_example_echoes_and_ticks_in_completion_mode() {
    echo_example(&["--mode", "completion"], "completion mode");
}

/// Starts the example with `mode_args`, checks that its first line names
/// `mode`, echoes a line and then 100,000 bytes (many reads and writes
/// through one connection, and in completion mode the same buffer posted
/// again and again), and waits for a tick, the echo and the close to be
/// printed.
#[track_caller]
fn echo_example(mode_args: &[&str], mode: &str) {
    let mut child = Command::new(example("echo"))
        .args(["--addr", "127.0.0.1:0", "--seconds", "60"])
        .args(mode_args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(
        line.contains(mode),
        "first line {line:?} should say {mode:?}"
    );

    let mut client = TcpStream::connect(&addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client.write_all(b"hello, loop\n").unwrap();
    let mut echoed = [0u8; 12];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello, loop\n");

    // More than the server's 4 KiB buffer, written from another thread so
    // that neither side waits on a full socket for the other.
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = client.try_clone().unwrap();
    let sent = payload.clone();
    let writer = std::thread::spawn(move || writer.write_all(&sent));
    let mut back = vec![0u8; payload.len()];
    client.read_exact(&mut back).unwrap();
    writer.join().unwrap().unwrap();
    assert!(back == payload, "the 100,000 bytes came back changed");
    drop(client);

    // The worker's completions arrive through the same loop.
    let mut saw = (false, false, false);
    for _ in 0..10_000 {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        saw.0 |= line.starts_with("worker tick");
        saw.1 |= line.contains("echo 12 bytes");
        saw.2 |= line.contains("closed");
        if saw == (true, true, true) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        saw,
        (true, true, true),
        "expected a tick, the echo and the close in the output"
    );
}
