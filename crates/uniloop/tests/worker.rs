//! `Worker`: the reference C worker suite ported (CreateDestroy,
//! GracefulShutdown, JoinTimeout, WorkerContext, WorkerState) and tests
//! for the reference worker's defects (`STOPPING` never set, a timed join
//! that could block forever, the body's result lost, a failed create that
//! leaked).

mod util;

use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use uniloop::{JoinError, Worker, WorkerState};
use util::GUARD;

/// Runs `f` on a thread; its result, or a failure if it takes longer than
/// the guard.
#[track_caller]
fn within_guard<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(GUARD)
        .expect("did not return within the guard time")
}

#[test]
fn create_destroy() {
    let w = Worker::spawn(|_stop| 5).unwrap();
    assert_eq!(w.name(), None);
    assert_eq!(w.join(), Ok(5));
}

#[test]
fn builder_sets_name_and_stack_size() {
    let w = Worker::builder()
        .name("dns")
        .stack_size(256 * 1024)
        .spawn(|_stop| thread::current().name().map(str::to_owned))
        .unwrap();
    assert_eq!(w.name(), Some("dns"));
    assert_eq!(w.join().unwrap().as_deref(), Some("dns"));
}

#[test]
fn graceful_shutdown() {
    let (started_tx, started) = mpsc::channel();
    let mut w = Worker::spawn(move |stop| {
        started_tx.send(()).unwrap();
        let mut rounds = 0u64;
        while !stop.wait(Duration::from_secs(60)) {
            rounds += 1;
        }
        assert!(stop.should_stop());
        rounds
    })
    .unwrap();
    started.recv_timeout(GUARD).unwrap();
    w.signal_stop();
    assert!(w.join_timeout(GUARD).is_ok());
    assert_eq!(w.state(), WorkerState::Finished);
}

/// A worker that ignores stop: the timed join fails (and keeps the handle
/// joinable), and the test still cleans up after it.
#[test]
fn join_timeout_on_a_worker_that_ignores_stop() {
    let (release, released) = mpsc::channel::<()>();
    let mut w = Worker::spawn(move |_stop| {
        // Ignores the stop token; only the channel ends it.
        let _ = released.recv();
        "done"
    })
    .unwrap();
    w.signal_stop();
    assert_eq!(
        w.join_timeout(Duration::from_millis(100)),
        Err(JoinError::Timeout)
    );
    assert_eq!(w.state(), WorkerState::Stopping);
    drop(release);
    assert_eq!(w.join_timeout(GUARD), Ok("done"));
    assert_eq!(w.join_timeout(GUARD), Err(JoinError::Joined));
}

/// Defect 7: the body's return value was lost. Context goes in through the
/// closure, the result comes back from the join.
#[test]
fn worker_context() {
    struct Ctx {
        requests: Vec<String>,
        log: Arc<Mutex<Vec<String>>>,
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let ctx = Ctx {
        requests: vec!["a.example".into(), "b.example".into()],
        log: log.clone(),
    };
    let w = Worker::spawn(move |_stop| {
        for r in &ctx.requests {
            ctx.log.lock().unwrap().push(format!("resolved {r}"));
        }
        ctx.requests.len()
    })
    .unwrap();
    assert_eq!(w.join(), Ok(2));
    assert_eq!(
        *log.lock().unwrap(),
        ["resolved a.example", "resolved b.example"]
    );
}

/// Defect 7: `STOPPING` was never set. Starting → Running → Stopping →
/// Finished, each observed at a point where it is certain.
#[test]
fn worker_state() {
    let (started_tx, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let mut w = Worker::spawn(move |stop| {
        started_tx.send(()).unwrap();
        let _ = released.recv();
        stop.should_stop()
    })
    .unwrap();
    assert!(matches!(
        w.state(),
        WorkerState::Starting | WorkerState::Running
    ));
    started.recv_timeout(GUARD).unwrap();
    assert_eq!(w.state(), WorkerState::Running);
    w.signal_stop();
    assert_eq!(w.state(), WorkerState::Stopping);
    w.signal_stop(); // twice is harmless
    assert_eq!(w.state(), WorkerState::Stopping);
    drop(release);
    assert_eq!(w.join_timeout(GUARD), Ok(true));
    assert_eq!(w.state(), WorkerState::Finished);
}

#[test]
fn stop_before_the_body_starts_is_seen_by_the_body() {
    let w = Worker::spawn(|stop| stop.should_stop() || stop.wait(GUARD)).unwrap();
    w.signal_stop();
    assert_ne!(w.state(), WorkerState::Running);
    assert_eq!(w.join(), Ok(true));
}

#[test]
fn a_panic_is_captured_and_reported() {
    let mut w = Worker::spawn(|_stop| -> u32 { panic!("boom {}", 42) }).unwrap();
    assert_eq!(
        w.join_timeout(GUARD),
        Err(JoinError::Panicked("boom 42".into()))
    );
    assert_eq!(w.state(), WorkerState::Panicked);
    let w = Worker::spawn(|_stop| std::panic::panic_any(7u8)).unwrap();
    assert!(matches!(w.join(), Err(JoinError::Panicked(_))));
}

/// Defect 7: a timed join right after create could block forever.
#[test]
fn a_timed_join_right_after_spawn_returns() {
    let (release, released) = mpsc::channel::<()>();
    let mut w = Worker::spawn(move |_stop| {
        let _ = released.recv();
    })
    .unwrap();
    let w = within_guard(move || {
        assert_eq!(w.join_timeout(Duration::ZERO), Err(JoinError::Timeout));
        assert_eq!(
            w.join_timeout(Duration::from_millis(10)),
            Err(JoinError::Timeout)
        );
        w
    });
    drop(release);
    assert_eq!(w.join(), Ok(()));
}

/// Dropping an unjoined worker signals stop and does not wait for it.
#[test]
fn drop_signals_stop_and_does_not_block() {
    let (saw_stop_tx, saw_stop) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let w = Worker::spawn(move |stop| {
        while !stop.wait(Duration::from_secs(60)) {}
        saw_stop_tx.send(()).unwrap();
        // Still busy after the stop: the drop must not wait for this.
        let _ = released.recv();
    })
    .unwrap();
    within_guard(move || drop(w));
    saw_stop.recv_timeout(GUARD).unwrap();
    drop(release);
}

/// Defect 7: a failed create leaked. A spawn that the OS refuses returns
/// the error, and the body (with everything it captured) is dropped.
#[test]
fn a_failed_spawn_returns_the_error_and_leaks_nothing() {
    let captured = Arc::new(());
    let held = captured.clone();
    // Larger than any address space: the stack cannot be mapped.
    let r = Worker::builder()
        .stack_size(1 << 50)
        .spawn(move |_stop| drop(held));
    assert!(r.is_err(), "a 1 PiB stack was granted");
    assert_eq!(Arc::strong_count(&captured), 1);
}
