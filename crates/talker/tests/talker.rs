//! The talker binary, driven by scripted TCP clients and its console.

mod util;

use std::time::{Duration, Instant};

use util::{Client, Talker, DEADLINE};

#[test]
fn login_say_tell_who_emote_shout() {
    let t = Talker::start("basics", &[]);
    let mut alice = t.login("Alice");
    let mut bob = t.connect();
    bob.expect("By what name");
    for bad in ["x", "1abc", "System", "al ice"] {
        bob.send(bad);
        bob.expect("By what name");
    }
    bob.register("Bob");
    bob.expect("Here: Alice.");
    alice.expect("Bob arrives.");

    bob.send("say hello there");
    bob.expect("You say: hello there");
    alice.expect("Bob says: hello there");
    alice.send("'quick say");
    bob.expect("Alice says: quick say");
    alice.send(":waves");
    bob.expect("Alice waves");
    alice.expect("Alice waves");
    alice.send("tell bob a secret");
    alice.expect("You tell Bob: a secret");
    bob.expect("Alice tells you: a secret");
    alice.send("tell nobody hi");
    alice.expect("No one called nobody is here.");
    bob.send("shout everyone!");
    alice.expect("Bob shouts: everyone!");
    alice.send("frobnicate");
    alice.expect("Unknown command 'frobnicate'");
    alice.send("help");
    alice.expect("tell NAME TEXT");

    // `who` lists both, with idle times, and the resolved host name once
    // the reverse lookup (on a worker) has answered.
    let deadline = Instant::now() + DEADLINE;
    loop {
        alice.send("who");
        alice.expect("2 user(s) on:");
        let (_, a) = alice.expect("Alice");
        let (_, b) = alice.expect("Bob");
        assert!(a.contains("idle") && b.contains("lobby"), "{a} / {b}");
        if a.contains("from localhost") {
            break;
        }
        assert!(a.contains("from 127.0.0.1"), "{a}");
        assert!(Instant::now() < deadline, "no host name in time");
        std::thread::sleep(Duration::from_millis(50));
    }

    bob.send("quit");
    bob.expect("Goodbye, Bob!");
    bob.expect_eof();
    alice.expect("Bob has left.");
}

#[test]
fn rooms_look_and_go() {
    let t = Talker::start("rooms", &[]);
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    alice.expect("Bob arrives.");
    bob.send("look");
    bob.expect("The Lobby");
    bob.expect("Exits: garden, library, cafe.");
    bob.send("go nowhere");
    bob.expect("There is no exit 'nowhere' here.");
    bob.send("go gar");
    bob.expect("The Garden");
    bob.expect("Exits: lobby.");
    alice.expect("Bob leaves for The Garden.");
    bob.send("go cafe");
    bob.expect("There is no exit 'cafe' here.");

    // A say in the garden is not heard in the lobby; a shout is.
    bob.send("say only the garden hears this");
    bob.send("shout marker");
    let (before, _) = alice.expect("Bob shouts: marker");
    assert!(
        before.iter().all(|l| !l.contains("garden hears")),
        "{before:?}"
    );

    alice.send("go garden");
    alice.expect("Here: Bob.");
    bob.expect("Alice arrives.");
}

#[test]
fn a_returning_user_comes_back_to_their_room() {
    let dir = util::temp_dir("return");
    {
        let mut t = Talker::start_in(dir.clone(), &[]);
        let mut alice = t.login("Alice");
        alice.send("go library");
        alice.expect("The Library");
        t.console("shutdown");
        alice.expect("shutting down");
        assert!(t.wait_exit().success());
    }
    let t = Talker::start_in(dir, &[]);
    let mut alice = t.connect();
    alice.expect("By what name");
    alice.relogin("alice");
    alice.expect("The Library");
}

#[test]
fn idle_users_are_warned_then_kicked() {
    let t = Talker::start("idle", &["--idle-timeout", "5"]);
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    alice.expect("idle a while");
    alice.expect("idle too long");
    alice.expect_eof();
    t.expect_log("idle timeout");
    bob.expect("idle too long");
}

#[test]
fn login_times_out() {
    let t = Talker::start("login-timeout", &["--login-timeout", "1"]);
    let mut c = t.connect();
    c.expect("Login timed out.");
    c.expect_eof();
}

#[test]
fn telnet_negotiation_naws_and_garbage() {
    let t = Talker::start("telnet", &[]);
    let mut c = t.connect();
    c.expect("By what name");
    // WILL NAWS, the window size, DO ECHO, WILL TTYPE, NOP, a stray SE,
    // an escaped 0xFF inside the name line (dropped as invalid UTF-8 and
    // not a letter: so the name is sent clean afterwards).
    c.send_raw(
        b"\xff\xfb\x1f\xff\xfa\x1f\x00\x84\x00\x2a\xff\xf0\xff\xfd\x01\xff\xfb\x18\xff\xf1\xff\xf0",
    );
    c.send_raw(b"Al\xff\xfb\x03ice\r\n");
    c.expect("Choose a password:");
    c.send("pw-alice");
    c.send("pw-alice");
    c.expect("Welcome, Alice!");
    t.expect_log("window 132x42");
    let raw = &c.raw;
    // The server's opening DO NAWS (the client's WILL answers it), the
    // refusals of DO ECHO and WILL SGA, and the terminal type asked for
    // once the client agreed to TTYPE.
    for want in [
        &b"\xff\xfd\x1f"[..],
        b"\xff\xfc\x01",
        b"\xff\xfe\x03",
        b"\xff\xfa\x18\x01\xff\xf0",
    ] {
        assert!(
            raw.windows(want.len()).any(|w| w == want),
            "no {want:?} in the replies"
        );
    }
    // Garbage: every byte value, broken IAC sequences, an unterminated
    // subnegotiation closed later; the connection stays usable.
    let mut junk: Vec<u8> = (0..=255u8).collect();
    junk.extend_from_slice(b"\xff\xfa\x18\x01\x02\x03\xff\xf0\xff\xff\xff\r\n");
    let mut x = 12345u32;
    for _ in 0..4000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        junk.push((x >> 16) as u8);
    }
    // Whatever state the junk left, this ends it.
    junk.extend_from_slice(b"\xff\xf0\xff\xf0\r\n");
    c.send_raw(&junk);
    c.send("say still alive");
    c.expect("You say: still alive");
}

#[test]
fn line_endings_long_lines_and_invalid_utf8() {
    let t = Talker::start("lines", &[]);
    let mut alice = t.login("Alice");
    let mut bob = t.connect();
    bob.expect("By what name");
    bob.send_raw(b"Bob\r\0");
    bob.expect("Choose a password:");
    bob.send_raw(b"pw-bob\n");
    bob.expect("Type it again:");
    bob.send_raw(b"pw-bob\r");
    bob.expect("Welcome, Bob!");
    bob.send_raw(b"say cr nul\r\0say bare lf\nsay bare cr\rsay crlf\r\n");
    for want in ["cr nul", "bare lf", "bare cr", "crlf"] {
        alice.expect(&format!("Bob says: {want}"));
    }
    let long = format!("say {}\r\n", "a".repeat(2000));
    bob.send_raw(long.as_bytes());
    bob.expect("longer than 512 bytes");
    let (_, cut) = alice.expect("Bob says: aaaa");
    assert!(cut.len() < 600, "the line was cut: {} bytes", cut.len());
    bob.send_raw(b"say caf\xe9 \xff\xff ok\r\n");
    let (_, line) = alice.expect("Bob says: caf");
    assert_eq!(line, "Bob says: caf\u{fffd} \u{fffd} ok");
    bob.send_raw(b"say \x1b[2Jbell\x07\r\n");
    alice.expect("Bob says: [2Jbell");
}

#[test]
fn a_client_that_never_reads_is_dropped_and_others_carry_on() {
    use socket2::{Domain, Socket, Type};
    let t = Talker::start("slow", &["--write-limit", "65536"]);
    // The slow client: a small receive buffer, logs in, then never reads.
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&t.addr.into()).unwrap();
    let mut slow = Client::from_stream(sock.into());
    slow.expect("By what name");
    slow.register("Slow");

    let mut watcher = t.login("Watcher");
    // The speaker's own echoes are read by a thread so it stays healthy.
    let mut speaker = t.login("Speaker");
    let mut speaker_reader = Client::from_stream(speaker.stream.try_clone().unwrap());
    let reader = std::thread::spawn(move || speaker_reader.expect("You say: done"));
    let watcher_reader = std::thread::spawn(move || {
        watcher.expect("Speaker says: done");
        watcher
    });

    let text = "x".repeat(400);
    let deadline = Instant::now() + DEADLINE;
    let mut dropped = false;
    for i in 0..100_000 {
        speaker.send(&format!("say {i} {text}"));
        if i % 50 == 0 {
            while let Ok(line) = t.stderr.try_recv() {
                dropped |= line.contains("output buffer full");
            }
            if dropped {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the slow client was never dropped"
        );
    }
    if !dropped {
        t.expect_log("output buffer full");
    }
    speaker.send("say done");
    reader.join().unwrap();
    let mut watcher = watcher_reader.join().unwrap();
    watcher.send("who");
    let (_, count) = watcher.expect("user(s) on:");
    assert!(count.starts_with("2 user(s)"), "{count}");
}

#[test]
fn max_clients_turns_the_next_one_away() {
    let t = Talker::start("full", &["--max-clients", "1"]);
    let _alice = t.login("Alice");
    let mut c = t.connect();
    c.expect("the talker is full");
    c.expect_eof();
}

#[test]
fn console_who_wall_kick_stats_save() {
    let mut t = Talker::start("console", &[]);
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    t.console("who");
    t.expect_stdout("2 user(s) on:");
    t.console("wall the system speaks");
    alice.expect("[SYSTEM] the system speaks");
    bob.expect("[SYSTEM] the system speaks");
    t.console("kick bob");
    t.expect_stdout("kicked bob");
    bob.expect("kicked out by the operator");
    bob.expect_eof();
    alice.expect("Bob has left.");
    t.console("stats");
    t.expect_stdout("loop_iterations");
    t.console("save");
    let saved = t.expect_stdout("saved ");
    assert!(saved.contains("state.json"), "{saved}");
    let state = std::fs::read_to_string(t.data_dir.join("state.json")).unwrap();
    assert!(
        state.contains("\"Alice\"") && state.contains("\"Bob\""),
        "{state}"
    );
    t.console("nonsense");
    t.expect_stdout("unknown");
}

#[test]
fn a_failed_save_is_reported_and_the_previous_file_kept() {
    let mut t = Talker::start("save-fail", &[]);
    let _alice = t.login("Alice");
    t.console("save");
    t.expect_stdout("saved ");
    let before = std::fs::read(t.data_dir.join("state.json")).unwrap();
    // The temp file's name taken by a directory: the save cannot be made.
    std::fs::create_dir(t.data_dir.join("state.json.tmp")).unwrap();
    let _bob = t.login("Bob");
    t.console("save");
    t.expect_stdout("SAVE FAILED");
    assert_eq!(
        std::fs::read(t.data_dir.join("state.json")).unwrap(),
        before
    );
    std::fs::remove_dir(t.data_dir.join("state.json.tmp")).unwrap();
    t.console("save");
    t.expect_stdout("saved ");
    let after = std::fs::read_to_string(t.data_dir.join("state.json")).unwrap();
    assert!(after.contains("\"Bob\""), "{after}");
}

fn shutdown_says_goodbye_and_saves(name: &str, how: impl FnOnce(&mut Talker)) {
    let mut t = Talker::start(name, &[]);
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    bob.send("say before the end");
    alice.expect("Bob says: before the end");
    how(&mut t);
    alice.expect("The talker is shutting down. Goodbye!");
    bob.expect("The talker is shutting down. Goodbye!");
    alice.expect_eof();
    bob.expect_eof();
    let status = t.wait_exit();
    assert!(status.success(), "{status:?}");
    let state = std::fs::read_to_string(t.data_dir.join("state.json")).unwrap();
    assert!(
        state.contains("\"Alice\"") && state.contains("\"Bob\""),
        "{state}"
    );
    assert!(state.contains("\"total_messages\": 1"), "{state}");
}

#[test]
fn console_shutdown() {
    shutdown_says_goodbye_and_saves("shutdown-console", |t| t.console("shutdown"));
}

#[cfg(unix)]
#[test]
fn sigterm_shutdown() {
    shutdown_says_goodbye_and_saves("shutdown-sigterm", |t| {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &t.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    });
}

#[cfg(unix)]
#[test]
fn sigint_shutdown() {
    shutdown_says_goodbye_and_saves("shutdown-sigint", |t| {
        let status = std::process::Command::new("kill")
            .args(["-INT", &t.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    });
}

#[test]
fn the_poll_backend_serves_too() {
    if cfg!(not(unix)) {
        return;
    }
    let t = Talker::start("poll", &["--backend", "poll"]);
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    alice.send("say over poll");
    bob.expect("Alice says: over poll");
}

#[test]
fn autosave_runs_on_its_timer() {
    let t = Talker::start("autosave", &["--autosave", "1"]);
    let _alice = t.login("Alice");
    // The save is logged by the loop when the saver's result arrives.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let line = util::expect_line(&t.stderr, "saved ", "autosave log");
        let state = std::fs::read_to_string(t.data_dir.join("state.json")).unwrap();
        if state.contains("\"Alice\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no autosave with Alice in it: {line}"
        );
    }
}

#[test]
fn talker_load_reports_deliveries_and_latency() {
    let t = Talker::start("load", &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_talker-load"))
        .args([
            "--addr",
            &t.addr.to_string(),
            "--clients",
            "10",
            "--rate",
            "5",
            "--duration",
            "1",
        ])
        .args(["--pid", &t.child.id().to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("10 clients logged in"), "{stdout}");
    assert!(stdout.contains("sent 50, delivered 50"), "{stdout}");
    assert!(stdout.contains("latency: p50"), "{stdout}");
    println!("{stdout}");
}

#[test]
fn rooms_txt_in_the_data_dir_replaces_the_built_in_rooms() {
    let dir = util::temp_dir("custom-rooms");
    std::fs::write(
        dir.join("rooms.txt"),
        "[deck] The Deck\nSalt spray.\nexits: hold\n\n[hold] The Hold\nDark.\nexits: deck\n",
    )
    .unwrap();
    let t = Talker::start_in(dir, &[]);
    let mut alice = t.connect();
    alice.expect("By what name");
    alice.register("Alice");
    alice.expect("The Deck");
    alice.expect("Exits: hold.");
    alice.send("go hold");
    alice.expect("Dark.");
}

#[test]
fn a_broken_rooms_txt_stops_the_start_with_a_message() {
    let dir = util::temp_dir("bad-rooms");
    std::fs::write(dir.join("rooms.txt"), "[a] A\nexits: nowhere\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_talker"))
        .args(["--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rooms.txt") && err.contains("nowhere"),
        "{err}"
    );
}

#[test]
fn a_large_save_reports_progress() {
    let dir = util::temp_dir("large-save");
    // Enough users for several 64 KiB chunks.
    let users: serde_json::Map<String, serde_json::Value> = (0..3000)
        .map(|i| {
            let user = serde_json::json!({
                "name": format!("User{i}"), "logins": 1, "messages": 0, "last_seen": 0, "room": "lobby"
            });
            (format!("user{i}"), user)
        })
        .collect();
    let state = serde_json::json!({ "users": users, "total_logins": 3000, "total_messages": 0 });
    std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
    let mut t = Talker::start_in(dir, &[]);
    t.console("save");
    t.expect_log("saving: 65536 of");
    t.expect_stdout("saved ");
}

#[test]
fn clients_sending_random_bytes_never_bring_the_server_down() {
    let t = Talker::start("garbage", &[]);
    let mut x = 0x9e37_79b9u32;
    for round in 0..20 {
        let mut c = t.connect();
        let mut junk = Vec::new();
        let len = 1000 + round * 997;
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            junk.push(x as u8);
        }
        c.send_raw(&junk);
        // Some hang up at once, some after a partial IAC sequence.
        if round % 2 == 0 {
            c.send_raw(b"\xff\xfa\x1f\x00");
        }
    }
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    alice.send("say the server is fine");
    bob.expect("Alice says: the server is fine");
}

#[test]
fn shutdown_with_a_client_that_does_not_read_ends_in_bounded_time() {
    use socket2::{Domain, Socket, Type};
    // A limit so high the slow client is never dropped: its output is
    // still queued when shutdown comes.
    let mut t = Talker::start("shutdown-slow", &["--write-limit", "100000000"]);
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&t.addr.into()).unwrap();
    let mut slow = Client::from_stream(sock.into());
    slow.expect("By what name");
    slow.register("Slow");

    let mut speaker = t.login("Speaker");
    let mut speaker_reader = Client::from_stream(speaker.stream.try_clone().unwrap());
    let reader = std::thread::spawn(move || speaker_reader.expect("You say: done"));
    let text = "y".repeat(400);
    for i in 0..10_000 {
        speaker.send(&format!("say {i} {text}"));
    }
    speaker.send("say done");
    reader.join().unwrap();

    let started = Instant::now();
    t.console("shutdown");
    let status = t.wait_exit();
    assert!(status.success(), "{status:?}");
    t.expect_log("flush time is up");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let state = std::fs::read_to_string(t.data_dir.join("state.json")).unwrap();
    assert!(state.contains("\"Slow\""), "{state}");
    drop(slow);
}
