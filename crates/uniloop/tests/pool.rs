//! `WorkerPool`: jobs run on the pool's threads and come back to the loop
//! as completions `(key, job_id)` — or `(key, tag)` for a job submitted
//! with a tag of the caller's; full queues hand the job back; shutdown
//! reports what happened to every job and to every result never taken.

mod util;

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::sync::mpsc;
use std::time::Duration;

use uniloop::{Event, Events, JobId, JobPanicked, Runtime, SubmitError, WorkerPool};
use util::*;

const KEY: u64 = 40;

/// Waits in the loop until `n` job completions arrived; returns their ids.
#[track_caller]
fn completions(rt: &mut Runtime, n: usize) -> Vec<JobId> {
    let mut events = Events::with_capacity(64);
    let mut ids = Vec::new();
    while ids.len() < n {
        for ev in wait_until(rt, &mut events, |e| matches!(e, Event::Completion { .. })) {
            if let Event::Completion { key, data } = ev {
                assert_eq!(key, KEY);
                ids.push(JobId(data));
            }
        }
    }
    assert_eq!(ids.len(), n, "more completions than jobs");
    ids
}

#[test]
fn every_job_posts_one_completion_and_leaves_its_result() {
    let mut rt = Runtime::new().unwrap();
    let pool = WorkerPool::new(4, &rt.poster(), KEY).unwrap();
    assert_eq!(pool.threads(), 4);
    let submitted: Vec<(JobId, u64)> = (0..200u64)
        .map(|i| (pool.submit(move || i * 2).unwrap(), i * 2))
        .collect();
    let done = completions(&mut rt, submitted.len());
    let unique: HashSet<_> = done.iter().collect();
    assert_eq!(unique.len(), submitted.len(), "a job completed twice");
    for (id, want) in submitted {
        assert_eq!(pool.take_result(id), Some(Ok(want)));
        assert_eq!(pool.take_result(id), None, "a result was handed out twice");
    }
    let report = pool.shutdown(GUARD);
    assert_eq!(report.completed, 200);
    assert_eq!(
        (report.cancelled, report.unfinished, report.untaken),
        (0, 0, 0)
    );
}

#[test]
fn a_panicking_job_is_reported_and_the_pool_goes_on() {
    let mut rt = Runtime::new().unwrap();
    let pool = WorkerPool::new(1, &rt.poster(), KEY).unwrap();
    let bad = pool.submit(|| -> u32 { panic!("job failed") }).unwrap();
    assert_eq!(completions(&mut rt, 1), [bad]);
    assert_eq!(
        pool.take_result(bad),
        Some(Err(JobPanicked("job failed".into())))
    );
    let good = pool.submit(|| 1).unwrap();
    assert_eq!(completions(&mut rt, 1), [good]);
    assert_eq!(pool.take_result(good), Some(Ok(1)));
}

#[test]
fn a_full_job_queue_hands_the_job_back() {
    let rt = Runtime::new().unwrap();
    let pool = WorkerPool::with_capacity(1, 1, &rt.poster(), KEY).unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        let _ = released.recv();
        0
    })
    .unwrap();
    started.recv_timeout(GUARD).unwrap(); // the only thread is busy
    pool.submit(|| 1).unwrap(); // fills the queue
    match pool.submit(|| 2) {
        Err(SubmitError::Full(job)) => assert_eq!(job(), 2),
        other => panic!("expected Full, got {other:?}"),
    }
    drop(release);
    // The queued job may start before the shutdown cancels it, or not.
    let report = pool.shutdown(GUARD);
    assert_eq!(report.completed + report.cancelled, 2);
    assert_eq!(report.unfinished, 0);
}

#[test]
fn shutdown_cancels_queued_jobs_and_reports_unfinished_ones() {
    let rt = Runtime::new().unwrap();
    let pool = WorkerPool::with_capacity(1, 8, &rt.poster(), KEY).unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        let _ = released.recv();
        0
    })
    .unwrap();
    started.recv_timeout(GUARD).unwrap();
    for i in 1..=3 {
        pool.submit(move || i).unwrap();
    }
    assert_eq!(pool.queued(), 3);
    // The running job cannot finish before it is released, whatever the
    // timeout, so this is not a timing test.
    let report = pool.shutdown(Duration::from_millis(10));
    assert_eq!(report.completed, 0);
    assert_eq!(report.cancelled, 3);
    assert_eq!(report.unfinished, 1);
    drop(release); // lets the detached thread end
}

#[test]
fn jobs_can_be_submitted_from_many_threads() {
    let mut rt = Runtime::new().unwrap();
    let pool = std::sync::Arc::new(WorkerPool::new(2, &rt.poster(), KEY).unwrap());
    let submitters: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| pool.submit(move || t * 100 + i).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<JobId> = submitters
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    let done: HashSet<_> = completions(&mut rt, 200).into_iter().collect();
    assert_eq!(done, ids.iter().copied().collect());
    for id in ids {
        assert!(matches!(pool.take_result(id), Some(Ok(_))));
    }
}

#[test]
fn zero_threads_is_invalid_input() {
    let rt = Runtime::new().unwrap();
    let err = WorkerPool::<()>::new(0, &rt.poster(), KEY).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = WorkerPool::<()>::with_capacity(1, 0, &rt.poster(), KEY).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_dropped_runtime_does_not_break_the_pool() {
    let rt = Runtime::new().unwrap();
    let pool = WorkerPool::new(1, &rt.poster(), KEY).unwrap();
    drop(rt);
    let id = pool.submit(|| 3).unwrap();
    let report = pool.shutdown(GUARD);
    assert_eq!(
        report.completed + report.cancelled,
        1,
        "job {id:?} vanished"
    );
}

/// Waits in the loop until `n` completions arrived; returns their `data`.
#[track_caller]
fn completion_data(rt: &mut Runtime, n: usize) -> Vec<u64> {
    completions(rt, n).into_iter().map(|id| id.0).collect()
}

/// Each tagged job's completion carries its tag, and the tag alone finds
/// its result: 20 "connections" with 5 jobs each, results routed by the
/// completion's data, every one exactly once.
#[test]
fn tagged_jobs_come_back_under_their_tag() {
    let mut rt = Runtime::new().unwrap();
    let pool = WorkerPool::new(4, &rt.poster(), KEY).unwrap();
    let mut ids = HashSet::new();
    for job in 0..5u64 {
        for conn in 0..20u64 {
            // Tags far from the job ids, to show they are the caller's.
            let tag = 1_000_000 + conn;
            ids.insert(pool.submit_tagged(tag, move || (conn, job)).unwrap());
        }
    }
    let mut per_conn: HashMap<u64, Vec<u64>> = HashMap::new();
    for tag in completion_data(&mut rt, 100) {
        let (id, result) = pool.take_tagged(tag).expect("a result for each completion");
        assert!(ids.remove(&id), "{id:?} taken twice");
        let (conn, job) = result.unwrap();
        assert_eq!(
            tag,
            1_000_000 + conn,
            "a result came back under another tag"
        );
        per_conn.entry(conn).or_default().push(job);
    }
    assert!(ids.is_empty());
    assert_eq!(per_conn.len(), 20);
    for (conn, mut jobs) in per_conn {
        jobs.sort_unstable();
        assert_eq!(jobs, [0, 1, 2, 3, 4], "connection {conn}");
    }
    assert_eq!(pool.take_tagged(1_000_000), None);
    assert_eq!(pool.untaken(), 0);
    assert_eq!(pool.shutdown(GUARD).untaken, 0);
}

/// A tagged job's result is not found by id, nor an untagged one's by tag.
#[test]
fn tagged_and_untagged_results_are_taken_their_own_way() {
    let mut rt = Runtime::new().unwrap();
    let pool = WorkerPool::new(1, &rt.poster(), KEY).unwrap();
    let tagged = pool.submit_tagged(77, || "tagged").unwrap();
    let untagged = pool.submit(|| "untagged").unwrap();
    let mut got = completion_data(&mut rt, 2);
    got.sort_unstable();
    let mut want = vec![77, untagged.0];
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(pool.take_result(tagged), None);
    assert_eq!(pool.take_tagged(untagged.0), None);
    assert_eq!(pool.take_tagged(77), Some((tagged, Ok("tagged"))));
    assert_eq!(pool.take_result(untagged), Some(Ok("untagged")));
}

/// A tagged job that panics comes back under its tag with the panic.
#[test]
fn a_panicking_tagged_job_reports_under_its_tag() {
    let mut rt = Runtime::new().unwrap();
    let pool = WorkerPool::new(1, &rt.poster(), KEY).unwrap();
    let id = pool
        .submit_tagged(9, || -> u8 { panic!("lookup failed") })
        .unwrap();
    assert_eq!(completion_data(&mut rt, 1), [9]);
    assert_eq!(
        pool.take_tagged(9),
        Some((id, Err(JobPanicked("lookup failed".into()))))
    );
}

/// Results never taken are dropped at shutdown, and counted: tagged and
/// untagged alike. The values really are dropped (their `Drop` runs).
#[test]
fn shutdown_drops_and_counts_results_never_taken() {
    struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut rt = Runtime::new().unwrap();
    let pool = WorkerPool::new(2, &rt.poster(), KEY).unwrap();
    let mut untagged = Vec::new();
    for i in 0..4u64 {
        let d = drops.clone();
        pool.submit_tagged(i % 2, move || Counted(d)).unwrap();
        let d = drops.clone();
        untagged.push(pool.submit(move || Counted(d)).unwrap());
    }
    completions(&mut rt, 8);
    assert_eq!(pool.untaken(), 8);
    // Take one of each kind; the other six stay.
    drop(pool.take_tagged(0).unwrap());
    drop(pool.take_result(untagged[0]).unwrap());
    assert_eq!(pool.untaken(), 6);
    assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 2);
    let report = pool.shutdown(GUARD);
    assert_eq!(report.completed, 8);
    assert_eq!(report.untaken, 6);
    assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 8);
}

#[test]
fn running_and_completed_count_the_pools_work() {
    let mut rt = Runtime::new().unwrap();
    let pool = WorkerPool::new(1, &rt.poster(), KEY).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        go_rx.recv().unwrap();
    })
    .unwrap();
    pool.submit(|| panic!("counted too")).unwrap();
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((pool.running(), pool.queued(), pool.completed()), (1, 1, 0));
    go_tx.send(()).unwrap();
    completions(&mut rt, 2);
    assert_eq!((pool.running(), pool.queued(), pool.completed()), (0, 0, 2));
}
