//! The C chat servers of `c/` under a small load: every line a client
//! sends must reach every other client, in order per sender, exactly once
//! (the load generator checks each line). The libuniloop server is built
//! against this profile's `libuniloop.a`; the libuv one needs libuv1-dev
//! (scripts/test.sh installs it) and is skipped, with the reason printed,
//! where it is missing outside CI.

#[path = "../src/chat.rs"]
mod chat;

use std::path::PathBuf;

use chat::{Load, Server};

/// `target/<profile>`: tests run from `target/<profile>/deps/chat-HASH`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

const LOAD: Load = Load {
    clients: 10,
    rounds: 5,
    lines: 3,
};

/// The same with `uniloop_runtime_set_hold_writes`: a turn's lines to one
/// client go out together at the next wait, and still every line arrives.
#[test]
fn libuniloop_chat_server_holding_writes_delivers_every_line() {
    let dir = profile_dir();
    let lib = chat::build_libuniloop(&dir).expect("build libuniloop.a");
    let exe = chat::build_server(Server::Uniloop, &lib, &dir.join("chat-tests-hold"))
        .expect("compile chat_uniloop.c");
    let out = chat::run(&exe, LOAD, &["hold"]).expect("run the load");
    assert_eq!(out.lines, LOAD.deliveries());
}

#[test]
fn libuniloop_chat_server_delivers_every_line() {
    let dir = profile_dir();
    let lib = chat::build_libuniloop(&dir).expect("build libuniloop.a");
    let exe = chat::build_server(Server::Uniloop, &lib, &dir.join("chat-tests"))
        .expect("compile chat_uniloop.c");
    let out = chat::run(&exe, LOAD, &[]).expect("run the load");
    assert_eq!(out.lines, LOAD.deliveries());
    println!(
        "{} lines checked in {:?}; server CPU {:?}",
        out.lines, out.wall, out.server_cpu
    );
}

#[test]
fn libuv_chat_server_delivers_every_line() {
    if let Err(why) = chat::libuv_flags() {
        assert!(
            std::env::var_os("CI").is_none(),
            "libuv is required in CI: {why}"
        );
        println!("SKIPPED: {why}");
        return;
    }
    let dir = profile_dir();
    let exe = chat::build_server(Server::Libuv, &dir, &dir.join("chat-tests"))
        .expect("compile chat_libuv.c");
    let out = chat::run(&exe, LOAD, &[]).expect("run the load");
    assert_eq!(out.lines, LOAD.deliveries());
    println!(
        "{} lines checked in {:?}; server CPU {:?}",
        out.lines, out.wall, out.server_cpu
    );
}
