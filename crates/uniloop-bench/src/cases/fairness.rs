//! Fairness: how soon a completion posted from another thread is delivered
//! while the loop is flooded with finished posted writes.
//!
//! The loop posts `FLOOD` one-byte writes per turn on a loopback TCP socket
//! (its peer drained by a thread), takes each write's `IoDone` back, and
//! waits with an `Events` of `CAPACITY` — more writes finish per turn than
//! one `wait` can return, the load that starves whatever `wait` puts after
//! finished I/O. After a warm-up, another thread posts one completion; the
//! figure is how many `wait` calls the loop makes from then until the
//! completion is among the events (1 is the goal: the next wait). The flood
//! stops after a bounded number of turns; a completion still not delivered
//! by then is reported as the waits made so far, with "delivered during
//! flood" 0.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use uniloop::{Backend, Event, Events, Interest, Runtime, Token};

use super::join;
use crate::report::{Case, Role, Sample};
use crate::Config;

const FLOOD: usize = 1000;
const CAPACITY: usize = 256;
const WARMUP: usize = 10;
const KEY: u64 = 0xFA1E;

pub(crate) fn case(cfg: &Config) -> Case {
    let turns = cfg.pick(100, 30);
    Case::new(
        "fairness",
        "fairness",
        "completion delivery during a flood of posted writes",
        "waits",
    )
    .method(&format!(
        "each turn the loop posts {FLOOD} one-byte writes on a loopback TCP socket (peer drained by a thread), \
         waits with Events of {CAPACITY} and takes every IoDone back; after {WARMUP} turns another thread posts \
         one completion; figure: wait calls from that post until the completion is delivered (flood capped at \
         {turns} further turns: a completion not delivered by then counts the waits made, with \"delivered\" 0); \
         latency: time from the post to the delivering wait's return"
    ))
    .lower_is_better()
    .system("uniloop epoll", Role::Subject, move || {
        run(Backend::Epoll, turns)
    })
    .system("uniloop poll", Role::Uniloop, move || run(Backend::Poll, turns))
    .goal_value_at_most("uniloop epoll", 1.0)
    .goal_value_at_most("uniloop poll", 1.0)
}

fn run(backend: Backend, turns: usize) -> io::Result<Sample> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut peer = TcpStream::connect(listener.local_addr()?)?;
    let (conn, _) = listener.accept()?;
    conn.set_nonblocking(true)?;
    let reader = thread::spawn(move || -> io::Result<usize> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        loop {
            match peer.read(&mut buf)? {
                0 => return Ok(got),
                k => got += k,
            }
        }
    });
    let r = flood(&conn, backend, turns);
    drop(conn);
    join(reader)?;
    let (waits, latency, delivered, io_done) = r?;
    Ok(Sample::new(waits as f64)
        .with("latency", latency.as_secs_f64() * 1e3, "ms")
        .with("delivered during flood", f64::from(u8::from(delivered)), "")
        .with("IoDones before it", io_done as f64, ""))
}

/// Returns (waits from the post to the delivery, latency, whether it was
/// delivered, IoDone events delivered after the post before it).
fn flood(
    conn: &TcpStream,
    backend: Backend,
    turns: usize,
) -> io::Result<(usize, Duration, bool, u64)> {
    let mut rt = Runtime::builder().backend(backend).build()?;
    rt.register(conn, Token(1), Interest::READABLE)?;
    let poster = rt.poster();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (posted_tx, posted_rx) = mpsc::channel::<Instant>();
    let other = thread::spawn(move || -> io::Result<()> {
        if go_rx.recv().is_ok() {
            let t0 = Instant::now();
            poster.post(KEY, 1)?;
            let _ = posted_tx.send(t0);
        }
        Ok(())
    });
    let mut events = Events::with_capacity(CAPACITY);
    let mut posted: Option<Instant> = None;
    let mut waits = 0;
    let mut io_done = 0u64;
    let one = [0x5au8];
    let mut turn = 0;
    loop {
        turn += 1;
        for _ in 0..FLOOD {
            // SAFETY: `conn` is deregistered before the runtime is dropped, and
            // outlives both.
            match unsafe { rt.post_write(conn, one.to_vec()) } {
                Ok(_) => {}
                // The socket is full and the write limit reached: the rest
                // of this turn's flood waits for the next turn.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        if turn == WARMUP + 1 {
            // The other thread posts; the loop goes on once it has.
            go_tx
                .send(())
                .map_err(|_| io::Error::other("fairness: poster thread gone"))?;
            posted = Some(
                posted_rx
                    .recv()
                    .map_err(|_| io::Error::other("fairness: the post failed"))?,
            );
        }
        if posted.is_some() {
            waits += 1;
        }
        rt.wait(&mut events, Some(Duration::from_secs(10)))?;
        let mut delivered = false;
        for ev in &events {
            match *ev {
                Event::IoDone { op, .. } => {
                    if posted.is_some() {
                        io_done += 1;
                    }
                    let done = rt
                        .take_io(op)
                        .ok_or_else(|| io::Error::other("fairness: IoDone without a result"))?;
                    if let Some(e) = done.error {
                        return Err(e);
                    }
                }
                Event::Completion { key: KEY, .. } => delivered = true,
                _ => {}
            }
        }
        if let (true, Some(t0)) = (delivered, posted) {
            let latency = t0.elapsed();
            rt.deregister(conn)?;
            drop(rt);
            join(other)?;
            return Ok((waits, latency, true, io_done));
        }
        if turn > WARMUP + turns {
            let latency = posted.map_or(Duration::ZERO, |t0| t0.elapsed());
            rt.deregister(conn)?;
            drop(rt);
            join(other)?;
            return Ok((waits, latency, false, io_done));
        }
    }
}
