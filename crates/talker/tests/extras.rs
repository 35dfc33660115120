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
