//! Accounts against the real binary: a password chosen twice with the
//! client's echo off, kept as an Argon2id hash, checked on the next
//! login, wrong ones slowed and limited per address; a reconnect takes
//! over the old session; an old state file without passwords loads.

mod util;

use std::time::Instant;

use util::{password_of, Client, Talker};

const IAC: u8 = 255;
const WILL: u8 = 251;
const WONT: u8 = 252;
const DO: u8 = 253;
const ECHO: u8 = 1;

fn has(raw: &[u8], want: &[u8]) -> bool {
    raw.windows(want.len()).any(|w| w == want)
}

#[test]
fn a_new_password_is_typed_twice_with_echo_off_and_kept_hashed() {
    // The default Argon2id cost: the real parameters work end to end.
    let dir = util::temp_dir("acct-new");
    {
        let mut t = Talker::start_in(dir.clone(), &["--argon2-memory", "19456"]);
        let mut c = t.connect();
        c.expect("By what name");
        c.send("Alice");
        c.expect("A new name: welcome, Alice!");
        c.expect("Choose a password:");
        assert!(has(&c.raw, &[IAC, WILL, ECHO]), "echo not turned off");
        // The client agrees (and so will hear WONT ECHO after).
        c.send_raw(&[IAC, DO, ECHO]);
        c.send("short");
        c.expect("at least 6 characters");
        c.expect("Choose a password:");
        c.send("first-try");
        c.expect("Type it again:");
        c.send("second-try");
        c.expect("did not match");
        c.expect("Choose a password:");
        c.send("wonderland");
        c.expect("Type it again:");
        c.send("wonderland");
        c.expect("Welcome, Alice!");
        assert!(has(&c.raw, &[IAC, WONT, ECHO]), "echo not turned back on");
        t.console("shutdown");
        assert!(t.wait_exit().success());
        let state = std::fs::read_to_string(dir.join("state.json")).unwrap();
        assert!(state.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "{state}");
        assert!(!state.contains("wonderland"), "{state}");
    }
    let t = Talker::start_in(dir, &[]);
    let mut c = t.connect();
    c.expect("By what name");
    c.send("alice");
    c.expect("Password:");
    c.send("not it");
    c.expect("Wrong password.");
    c.expect("Password:");
    c.send("wonderland");
    c.expect("Welcome back, alice!");
}

#[test]
fn wrong_passwords_are_limited_per_address() {
    let mut t = Talker::start("acct-limit", &[]);
    drop(t.login("Alice"));
    let mut c = t.connect();
    c.expect("By what name");
    c.send("Alice");
    for _ in 0..4 {
        c.expect("Password:");
        c.send("guess");
        c.expect("Wrong password.");
    }
    c.expect("Password:");
    c.send("guess");
    c.expect("Too many wrong passwords");
    c.expect_eof();
    // The address is locked out for a while: even the right password is
    // not checked.
    let mut d = t.connect();
    d.expect("By what name");
    d.send("Alice");
    d.expect("Password:");
    d.send(&password_of("Alice"));
    d.expect("Too many wrong passwords");
    t.console("stats");
    let line = t.expect_stdout("login_failures");
    assert!(line.ends_with(": 5"), "{line}");
}

#[test]
fn the_right_password_takes_over_a_session() {
    let t = Talker::start("acct-takeover", &[]);
    let mut alice = t.login("Alice");
    alice.send("go garden");
    alice.expect("The Garden");
    let mut bob = t.login("Bob");
    bob.send("go garden");
    alice.expect("Bob arrives.");
    // Alice's link dies silently; she comes back on a new connection.
    let mut again = t.connect();
    again.expect("By what name");
    again.send("alice");
    again.expect("Password:");
    again.send(&password_of("Alice"));
    again.expect("You have taken over your session.");
    again.expect("The Garden");
    bob.expect("alice has reconnected.");
    alice.expect("taken over by a new login");
    alice.expect_eof();
    again.send("say back again");
    let (before, _) = bob.expect("alice says: back again");
    // A takeover is not a departure.
    assert!(before.iter().all(|l| !l.contains("has left")), "{before:?}");
}

#[test]
fn an_old_state_file_without_passwords_loads() {
    let dir = util::temp_dir("acct-old");
    std::fs::write(
        dir.join("state.json"),
        r#"{"users":{"carol":{"name":"Carol","logins":3,"messages":7,"last_seen":1700000000,"room":"library"}},"total_logins":3,"total_messages":7}"#,
    )
    .unwrap();
    let t = Talker::start_in(dir, &[]);
    let mut c = t.connect();
    c.expect("By what name");
    c.send("carol");
    c.expect("has no password yet");
    c.expect("Choose a password:");
    c.send(&password_of("carol"));
    c.expect("Type it again:");
    c.send(&password_of("carol"));
    c.expect("Welcome back, carol!");
    c.expect("The Library");
}

#[test]
fn a_login_flood_does_not_stop_chat() {
    // Hashing runs on the worker pool: 8 registrations at the default
    // cost queue there while a user's say is answered.
    let t = Talker::start("acct-flood", &["--argon2-memory", "19456"]);
    let mut alice = t.login("Alice");
    let mut crowd: Vec<Client> = (0..8)
        .map(|i| {
            let mut c = t.connect();
            c.expect("By what name");
            let name = format!("Crowd{i}");
            c.send(&name);
            c.send(&password_of(&name));
            c.send(&password_of(&name));
            c
        })
        .collect();
    let started = Instant::now();
    alice.send("say still talking");
    alice.expect("You say: still talking");
    eprintln!(
        "echo during 8 default-cost registrations: {:?}",
        started.elapsed()
    );
    for (i, c) in crowd.iter_mut().enumerate() {
        c.expect(&format!("Welcome, Crowd{i}!"));
    }
}

#[test]
fn two_registering_the_same_name_at_once_do_not_share_it() {
    let t = Talker::start("acct-race", &[]);
    let mut first = t.connect();
    let mut second = t.connect();
    for c in [&mut first, &mut second] {
        c.expect("By what name");
        c.send("Zoe");
        c.expect("Choose a password:");
    }
    first.send("first-pass");
    first.expect("Type it again:");
    second.send("second-pass");
    second.expect("Type it again:");
    first.send("first-pass");
    first.expect("Welcome, Zoe!");
    second.send("second-pass");
    second.expect("The name Zoe was just taken.");
    second.expect("By what name");
    // The first keeps the name and its password.
    let mut again = t.connect();
    again.expect("By what name");
    again.send("zoe");
    again.expect("Password:");
    again.send("second-pass");
    again.expect("Wrong password.");
}
