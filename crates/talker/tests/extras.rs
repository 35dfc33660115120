//! What talker users expect on top: ignore, a message of the day, room
//! history, last, colour; one command parser for users and the console.

mod util;

use util::Talker;

#[test]
fn ignore_review_last_colour_and_motd() {
    let dir = util::temp_dir("extras");
    std::fs::write(dir.join("motd.txt"), "Tea at five in the cafe.\n").unwrap();
    let mut t = Talker::start_in(dir, &[]);
    let mut alice = t.connect();
    alice.expect("By what name");
    alice.register("Alice");
    alice.expect("Tea at five");
    let mut bob = t.login("Bob");
    alice.expect("Bob arrives.");

    // review: the room's last lines.
    bob.send("say first");
    bob.send(":waves");
    alice.expect("Bob waves");
    alice.send("review");
    alice.expect("Lately in The Lobby:");
    alice.expect("Bob says: first");
    alice.expect("Bob waves");

    // ignore: Bob's words stop reaching Alice, then come back.
    alice.send("ignore bob");
    alice.expect("You are now ignoring bob.");
    bob.send("say unheard");
    bob.send("tell alice unheard too");
    bob.send("shout unheard shout");
    bob.expect("You shout: unheard shout");
    alice.send("ignore");
    let (before, _) = alice.expect("You are ignoring: bob.");
    assert!(before.iter().all(|l| !l.contains("unheard")), "{before:?}");
    alice.send("ignore Bob");
    alice.expect("You hear Bob again.");
    bob.send("say heard");
    alice.expect("Bob says: heard");
    alice.send("ignore alice");
    alice.expect("You cannot ignore yourself.");

    // colour: ANSI around speech for a user who asked for it only.
    alice.send("colour on");
    alice.expect("Colour is on.");
    bob.send("say in colour");
    alice.expect("Bob says: in colour");
    bob.expect("You say: in colour");
    assert!(
        alice.raw.windows(5).any(|w| w == b"\x1b[36m"),
        "no colour for Alice"
    );
    assert!(!bob.raw.contains(&0x1b), "colour for Bob, who did not ask");

    // last: both on now.
    alice.send("last");
    alice.expect("Lately:");
    let (_, a) = alice.expect("Alice");
    assert!(a.contains("on now"), "{a}");

    // The console shares the parser: say and tell as the system.
    t.console("say from the system");
    bob.expect("[SYSTEM] from the system");
    t.console("tell bob just you");
    t.expect_stdout("told bob");
    bob.expect("[SYSTEM] tells you: just you");
    t.console("last");
    t.expect_stdout("Lately:");
    t.console("go garden");
    t.expect_stdout("a user's command");
    // And users cannot give the operator's commands.
    bob.send("shutdown");
    bob.expect("Unknown command 'shutdown'");
}

#[test]
fn ignore_and_colour_are_saved() {
    let dir = util::temp_dir("extras-saved");
    {
        let mut t = Talker::start_in(dir.clone(), &[]);
        let _bob = t.login("Bob");
        let mut alice = t.login("Alice");
        alice.send("ignore bob");
        alice.expect("now ignoring");
        alice.send("colour on");
        alice.expect("Colour is on.");
        t.console("shutdown");
        assert!(t.wait_exit().success());
    }
    let t = Talker::start_in(dir, &[]);
    let mut alice = t.connect();
    alice.expect("By what name");
    alice.relogin("Alice");
    alice.send("ignore");
    alice.expect("You are ignoring: bob.");
}

/// How many users one announcement line names ("A has left.", "A, B and
/// C have left.", "A, B, C, D, E and 7 others have left.").
fn named(line: &str, verb1: &str, verbn: &str) -> usize {
    if let Some(list) = line.strip_suffix(&format!(" {verbn}.")) {
        match list.rsplit_once(" and ") {
            Some((names, rest)) => {
                let n = names.split(", ").count();
                match rest.strip_suffix(" others") {
                    Some(k) => n + k.parse::<usize>().unwrap(),
                    None => n + 1,
                }
            }
            None => panic!("{line}"),
        }
    } else if line.ends_with(&format!(" {verb1}.")) {
        1
    } else {
        0
    }
}

#[test]
fn a_crowd_arriving_and_leaving_at_once_is_announced_once_each() {
    let t = Talker::start("crowd-announce", &[]);
    let mut watcher = t.login("Watcher");
    // Thirty logins whose last line goes out at once.
    let mut crowd: Vec<util::Client> = (0..30)
        .map(|i| {
            let mut c = t.connect();
            c.expect("By what name");
            let name = format!("Crowd{i}");
            c.send(&name);
            c.expect("Choose a password:");
            c.send(&util::password_of(&name));
            c.expect("Type it again:");
            c
        })
        .collect();
    for (i, c) in crowd.iter_mut().enumerate() {
        c.send(&util::password_of(&format!("Crowd{i}")));
    }
    let mut arrived = 0;
    while arrived < 30 {
        let line = watcher
            .next_line(std::time::Instant::now() + util::DEADLINE)
            .unwrap();
        arrived += named(&line, "arrives", "arrive");
    }
    assert_eq!(arrived, 30);
    // All hang up at once.
    drop(crowd);
    let mut left = 0;
    while left < 30 {
        let line = watcher
            .next_line(std::time::Instant::now() + util::DEADLINE)
            .unwrap();
        left += named(&line, "has left", "have left");
    }
    assert_eq!(left, 30);
    watcher.send("who");
    watcher.expect("1 user(s) on:");
}
