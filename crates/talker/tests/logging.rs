//! The log never stalls the loop: stderr a pipe nobody reads, then a pipe
//! whose reader is gone. (Unix: the test ends with SIGTERM.)
#![cfg(unix)]

mod util;

use std::time::{Duration, Instant};

use util::{Talker, DEADLINE};

/// The `log` entry of the console's `stats`.
fn log_stats(t: &mut Talker) -> serde_json::Value {
    t.console("stats");
    let line = t.expect_stdout("  log: ");
    serde_json::from_str(line.trim().trim_start_matches("log: ")).unwrap()
}

#[test]
fn an_unread_then_closed_stderr_never_stalls_the_talker() {
    let mut t = Talker::start_stderr_unread("log-unread", &[]);
    let mut alice = t.login("Alice");

    // Every connection logs two lines: the 64 KiB pipe and the log queue
    // fill long before the end, and the log thread blocks in write.
    let mut echo = Vec::new();
    for i in 0..6000 {
        let mut c = t.connect();
        c.expect("By what name");
        drop(c);
        if i % 50 == 0 {
            let started = Instant::now();
            alice.send(&format!("say ping {i}"));
            alice.expect(&format!("You say: ping {i}"));
            echo.push(started.elapsed());
        }
    }
    echo.sort();
    eprintln!(
        "echo while stderr was stalled: {} samples, median {:?}, max {:?}",
        echo.len(),
        echo[echo.len() / 2],
        echo[echo.len() - 1]
    );
    let stats = log_stats(&mut t);
    assert!(stats["dropped"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["sink_closed"], false, "{stats}");

    // The reader goes away: the blocked write fails with EPIPE.
    drop(t.unread_stderr.take());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut c = t.connect();
        c.expect("By what name");
        drop(c);
        if log_stats(&mut t)["sink_closed"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the log never saw the closed pipe"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Still serving.
    let mut bob = t.login("Bob");
    alice.expect("Bob arrives.");
    bob.send("say still here");
    alice.expect("Bob says: still here");

    // SIGTERM still says goodbye, saves and exits 0.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &t.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    alice.expect("shutting down");
    let status = t.wait_exit();
    assert!(status.success(), "{status:?}");
    let state = std::fs::read_to_string(t.data_dir.join("state.json")).unwrap();
    assert!(
        state.contains("\"Alice\"") && state.contains("\"Bob\""),
        "{state}"
    );
}
