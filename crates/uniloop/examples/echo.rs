//! A TCP echo server on one thread, plus a worker thread that posts a
//! completion every second and a periodic timer — all through one `wait()`.
//!
//! ```text
//! cargo run -p uniloop --example echo -- [--addr 127.0.0.1:7878] [--seconds N] [--mode readiness|completion]
//! ```
//!
//! Try it with `nc 127.0.0.1 7878`. It prints every event it handles and
//! stops after `--seconds`, or on Ctrl-C (or `SIGTERM`): the signals arrive
//! as completions of the same `wait()`, so the loop ends the normal way.
//!
//! The connections are served in one of two styles:
//!
//! * `--mode readiness` (the default): the loop is told that a socket is
//!   readable ([`Event::Io`]) and does the `read` and `write` itself, keeping
//!   what the socket would not take yet.
//! * `--mode completion`: the loop hands a buffer to the runtime with
//!   [`Runtime::post_read`] and is told when data is in it
//!   ([`Event::IoDone`]); echoing is posting that same buffer with
//!   [`Runtime::post_write`], and once it is all out the buffer is emptied and
//!   posted for the next read. One buffer per connection, no `read` or
//!   `write` calls here.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use uniloop::{Event, Events, Interest, OpId, OpKind, Runtime, Signal, Signals, Token};

const LISTENER: Token = Token(0);
const TICK: u64 = 1;
const HEARTBEAT: u64 = 2;
const SHUTDOWN: u64 = 3;

/// How the connections are served (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Readiness,
    Completion,
}

struct Conn {
    stream: TcpStream,
    /// Readiness mode: bytes read but not yet echoed because the socket was
    /// full. (In completion mode the bytes travel with the posted write.)
    pending: Vec<u8>,
}

const USAGE: &str = "usage: echo [--addr HOST:PORT] [--seconds N] [--mode readiness|completion]";

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:7878".to_string();
    let mut seconds = None;
    let mut mode = Mode::Readiness;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().expect("--addr needs a value"),
            "--seconds" => {
                seconds = Some(
                    args.next()
                        .expect("--seconds needs a value")
                        .parse::<u64>()
                        .expect("--seconds: a number"),
                )
            }
            "--mode" => {
                mode = match args.next().as_deref() {
                    Some("readiness") => Mode::Readiness,
                    Some("completion") => Mode::Completion,
                    other => {
                        eprintln!("--mode {other:?}: readiness or completion; {USAGE}");
                        std::process::exit(2);
                    }
                }
            }
            other => {
                eprintln!("unknown argument {other:?}; {USAGE}");
                std::process::exit(2);
            }
        }
    }

    let mut rt = Runtime::new()?;
    // Ctrl-C (everywhere) and SIGTERM (Unix) become `(SHUTDOWN, signo)`
    // completions. A signal never ends `wait` by itself (EINTR is retried),
    // so a flag set in a plain handler would not be seen until some other
    // event came.
    let mut signals = Signals::new(&rt.poster(), SHUTDOWN);
    signals.add(Signal::Interrupt)?;
    if Signal::Terminate.is_available() {
        signals.add(Signal::Terminate)?;
    }
    let listener = TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    rt.register(&listener, LISTENER, Interest::READABLE)?;
    println!(
        "listening on {} ({:?} backend, {} mode)",
        listener.local_addr()?,
        rt.backend(),
        match mode {
            Mode::Readiness => "readiness",
            Mode::Completion => "completion",
        }
    );

    // A worker doing "blocking work" and reporting back through the loop.
    let poster = rt.poster();
    std::thread::Builder::new()
        .name("ticker".into())
        .spawn(move || {
            let mut n = 0u64;
            // Ends when the runtime is gone and posting fails.
            while poster.post(TICK, n).is_ok() {
                n += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
        })?;
    rt.add_timer(
        HEARTBEAT,
        Duration::from_secs(2),
        Some(Duration::from_secs(2)),
    );

    let stop_at = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_token = 1u64;
    let mut events = Events::with_capacity(256);
    'run: loop {
        let timeout = match stop_at {
            Some(t) => match t.checked_duration_since(Instant::now()) {
                Some(left) => Some(left),
                None => break,
            },
            None => None,
        };
        rt.wait(&mut events, timeout)?;
        for event in &events {
            match *event {
                Event::Io {
                    token: LISTENER, ..
                } => loop {
                    match listener.accept() {
                        Ok((stream, peer)) => {
                            stream.set_nonblocking(true)?;
                            let token = next_token;
                            next_token += 1;
                            // Posted I/O needs a registered source. While a
                            // read is posted, the runtime does the reading
                            // when the socket becomes readable.
                            rt.register(&stream, Token(token), Interest::READABLE)?;
                            if mode == Mode::Completion {
                                // SAFETY: the stream stays in `conns` until after its `deregister`.
                                unsafe { rt.post_read(&stream, Vec::with_capacity(4096)) }?;
                            }
                            println!("conn {token}: accepted from {peer}");
                            conns.insert(
                                token,
                                Conn {
                                    stream,
                                    pending: Vec::new(),
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                },
                Event::Io { token, ready } if mode == Mode::Readiness => {
                    let Some(conn) = conns.get_mut(&token.0) else {
                        continue;
                    };
                    let open = serve(conn, token.0);
                    if !open {
                        let conn = conns.remove(&token.0).expect("present");
                        rt.deregister(&conn.stream)?;
                        println!("conn {}: closed ({ready:?})", token.0);
                        continue;
                    }
                    // While an echo is stuck, wait for room to send it and
                    // read nothing more: the peer has to read before it can
                    // send again. (Readable interest kept here would wake
                    // the loop on every wait for data it will not read.)
                    let interest = if conn.pending.is_empty() {
                        Interest::READABLE
                    } else {
                        Interest::WRITABLE
                    };
                    rt.reregister(&conn.stream, token, interest)?;
                }
                // Completion mode: a connection can be readable while its echo
                // is still going out (no read is posted then). Nothing to do:
                // the read posted after the write takes the data. (The
                // registration is level-triggered, so this comes on every
                // wait until then: a peer that sends without reading keeps
                // the loop busy here.)
                Event::Io { .. } => {}
                Event::IoDone { token, op, .. } => {
                    let Some(conn) = conns.get(&token.0) else {
                        continue;
                    };
                    if !on_io_done(&mut rt, &conn.stream, token, op)? {
                        // Deregistering also cancels anything still posted.
                        rt.deregister(&conn.stream)?;
                        conns.remove(&token.0);
                    }
                }
                Event::Completion { key: TICK, data } => println!("worker tick {data}"),
                Event::Completion {
                    key: SHUTDOWN,
                    data,
                } => {
                    println!("{:?}: shutting down", Signal::from_raw(data as i32));
                    break 'run;
                }
                Event::Timer { key: HEARTBEAT, .. } => {
                    println!("heartbeat: {} connection(s)", conns.len())
                }
                other => println!("{other:?}"),
            }
        }
    }
    // The previous dispositions are back: a second Ctrl-C during a long
    // shutdown would end the process at once.
    drop(signals);
    println!("stopping");
    Ok(())
}

/// Readiness mode: echoes what can be read; returns `false` when the
/// connection is done.
fn serve(conn: &mut Conn, token: u64) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        if !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        match conn.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                println!("conn {token}: echo {n} bytes");
                conn.pending.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Completion mode: one posted read or write on `stream` has finished.
/// Echoes what a read brought and reads again once the echo is out, always
/// with the same buffer. Returns `false` when the connection is done.
fn on_io_done(rt: &mut Runtime, stream: &TcpStream, token: Token, op: OpId) -> io::Result<bool> {
    // The buffer, the byte count and the full error come back together.
    let done = rt
        .take_io(op)
        .expect("a delivered operation is there to take");
    if let Some(e) = done.error {
        println!("conn {}: closed ({e})", token.0);
        return Ok(false);
    }
    match done.kind {
        OpKind::Read if done.bytes == 0 => {
            println!("conn {}: closed (end of stream)", token.0);
            return Ok(false);
        }
        OpKind::Read => {
            println!("conn {}: echo {} bytes", token.0, done.bytes);
            // The buffer holds exactly what was read: send all of it.
            // SAFETY: the stream stays in `conns` until after its `deregister`.
            unsafe { rt.post_write(stream, done.buf) }?;
        }
        OpKind::Write => {
            let mut buf = done.buf;
            buf.clear(); // keeps its capacity: the next read fills it again
                         // SAFETY: the stream stays in `conns` until after its `deregister`.
            unsafe { rt.post_read(stream, buf) }?;
        }
        _ => {} // OpKind is non-exhaustive; this example posts only reads and writes
    }
    Ok(true)
}
