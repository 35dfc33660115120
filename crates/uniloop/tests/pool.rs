//! `WorkerPool`: jobs run on the pool's threads and come back to the loop
//! as completions `(key, job_id)`; full queues hand the job back; shutdown
//! reports what happened to every job.

mod util;

use std::collections::HashSet;
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
    assert_eq!((report.cancelled, report.unfinished), (0, 0));
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
