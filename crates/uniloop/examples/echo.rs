//! A TCP echo server on one thread, plus a worker thread that posts a
//! completion every second and a periodic timer — all through one `wait()`.
//!
//! ```text
//! cargo run -p uniloop --example echo -- [--addr 127.0.0.1:7878] [--seconds N]
//! ```
//!
//! Try it with `nc 127.0.0.1 7878`. It prints every event it handles and
//! stops after `--seconds` (default: run until killed).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use uniloop::{Event, Events, Interest, Runtime, Token};

const LISTENER: Token = Token(0);
const TICK: u64 = 1;
const HEARTBEAT: u64 = 2;

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet echoed because the socket was full.
    pending: Vec<u8>,
}

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:7878".to_string();
    let mut seconds = None;
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
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: echo [--addr HOST:PORT] [--seconds N]"
                );
                std::process::exit(2);
            }
        }
    }

    let mut rt = Runtime::new()?;
    let listener = TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    rt.register(&listener, LISTENER, Interest::READABLE)?;
    println!(
        "listening on {} ({:?} backend)",
        listener.local_addr()?,
        rt.backend()
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
    loop {
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
                            rt.register(&stream, Token(token), Interest::READABLE)?;
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
                Event::Io { token, ready } => {
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
                Event::Completion { key: TICK, data } => println!("worker tick {data}"),
                Event::Timer { key: HEARTBEAT, .. } => {
                    println!("heartbeat: {} connection(s)", conns.len())
                }
                other => println!("{other:?}"),
            }
        }
    }
    println!("stopping");
    Ok(())
}

/// Echoes what can be read; returns `false` when the connection is done.
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
