//! Limits and hygiene against the real binary: flood control, the
//! per-address cap, the data directory lock, a bind error that names the
//! address, `save` reported once.

mod util;

use std::process::{Command, Stdio};
use std::time::Instant;

use util::{Client, Talker, DEADLINE};

#[test]
fn flood_control_refuses_lines_past_the_burst() {
    let mut t = Talker::start("flood", &["--flood-rate", "1", "--flood-burst", "3"]);
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    let lines: String = (0..20).map(|i| format!("say flood {i}\r\n")).collect();
    alice.send_raw(lines.as_bytes());
    let mut said = 0;
    let mut refused = 0;
    while said + refused < 20 {
        let deadline = Instant::now() + DEADLINE;
        let line = alice.next_line(deadline).expect("open");
        if line.contains("You say: flood") {
            said += 1;
        } else if line.contains("talking too fast") {
            refused += 1;
        }
    }
    assert!((3..20).contains(&said), "{said} said, {refused} refused");
    let (_, first) = bob.expect("Alice says: flood 0");
    assert!(first.ends_with("flood 0"));
    t.console("stats");
    let stats = t.expect_stdout("flood_refused");
    assert!(!stats.ends_with(": 0"), "{stats}");
}

#[test]
fn connections_past_the_per_address_cap_are_turned_away() {
    let t = Talker::start("per-address", &["--max-per-address", "2"]);
    let mut a = t.connect();
    a.expect("By what name");
    let mut b = t.connect();
    b.expect("By what name");
    let mut c = t.connect();
    c.expect("too many connections from your address");
    c.expect_eof();
    t.expect_log("connections from 127.0.0.1 already");
    // One leaves: a place is free again (once the talker saw it go).
    a.send("quit");
    drop(a);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut d = Client::connect(t.addr);
        let (_, line) = d.expect("");
        if line.contains("Welcome") || line.contains("By what name") {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed: {line}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    b.register("Bob");
}

#[test]
fn a_second_talker_on_the_same_data_dir_refuses_to_start() {
    let t = Talker::start("lock", &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_talker"))
        .args(["--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&t.data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is in use by another talker") && err.contains(&t.child.id().to_string()),
        "{err}"
    );
}

#[test]
fn a_busy_address_is_named() {
    let t = Talker::start("busy", &[]);
    let other = util::temp_dir("busy-2");
    let addr = t.addr.to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_talker"))
        .args(["--addr", &addr, "--data-dir"])
        .arg(&other)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[test]
fn an_operator_save_is_reported_once() {
    let mut t = Talker::start("save-once", &[]);
    let _alice = t.login("Alice");
    t.console("save");
    t.expect_stdout("saved ");
    t.console("shutdown");
    assert!(t.wait_exit().success());
    // The whole log, up to its last line.
    let mut log = Vec::new();
    loop {
        let line = t
            .stderr
            .recv_timeout(DEADLINE)
            .expect("the log ends with goodbye");
        if line.contains("goodbye") {
            break;
        }
        log.push(line);
    }
    assert!(log.iter().all(|l| !l.contains("saved ")), "{log:#?}");
}
