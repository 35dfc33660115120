//! A small multi-user talker (a chat MUD) on uniloop: the program behind
//! the `talker` binary, as a library so each piece can be read, tested and
//! copied on its own.
//!
//! One thread serves everything through one [`uniloop::Runtime::wait`]:
//!
//! * [`server`] — the loop: accepting, posted reads and writes, timers,
//!   worker results, console lines, signals, shutdown.
//! * [`telnet`] — the input parser, a pure function over bytes.
//! * [`command`] — every command, parsed once for users, the console
//!   and MCP; [`commands`] — what users type; [`world`] — rooms and names;
//!   [`server::accounts`] — passwords (Argon2id on a worker pool).
//! * [`conn`] — one connection, its output and its backpressure.
//! * [`persist`] — saving on a worker (temp file, fsync, rename), and
//!   [`server::saving`], the loop's side of it;
//!   [`resolve`] — reverse DNS on a worker.
//! * [`operator`] — the console's commands; [`mcp`] — the same over the
//!   Model Context Protocol; [`output`] — stdout written by a worker;
//!   [`logging`] — the log (stderr), written by a worker too.

#![deny(dead_code, unused_imports)]

pub mod command;
pub mod commands;
pub mod conn;
pub mod logging;
pub mod mcp;
pub mod operator;
pub mod output;
pub mod persist;
pub mod resolve;
pub mod server;
mod sys;
pub mod telnet;
pub mod world;
