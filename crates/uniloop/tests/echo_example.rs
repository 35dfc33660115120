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
    let mut child = Command::new(example("echo"))
        .args(["--addr", "127.0.0.1:0", "--seconds", "60"])
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

    let mut client = TcpStream::connect(&addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client.write_all(b"hello, loop\n").unwrap();
    let mut echoed = [0u8; 12];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello, loop\n");
    drop(client);

    // The worker's completions arrive through the same loop.
    let mut saw = (false, false, false);
    for _ in 0..200 {
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
