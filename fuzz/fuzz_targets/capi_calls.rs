//! The C library's argument handling: random sequences of calls into
//! `libuniloop`'s exported functions, made the way a C program makes them
//! (through their `extern "C"` symbols, declared below from
//! `crates/uniloop-capi/include/uniloop.h`), with valid, NULL, closed and
//! foreign handles and fds, checked against a model.
//!
//! The input is a sequence of [`Op`]s (`arbitrary`). Handles and fds are
//! picked by index from what the sequence has made so far, or as NULL, or
//! as something else:
//!
//! * runtimes: live ones, deinitialised ones (their pointer is kept: the
//!   header says every runtime function refuses a runtime that is no longer
//!   live, and a second deinit does nothing), NULL, and foreign pointers
//!   (a harness object, a queue's address, a small integer) — every
//!   `async_runtime_*` / `uniloop_runtime_*` / `uniloop_timer_*` function
//!   checks its handle against the set of live runtimes;
//! * queues, workers, pools: live ones, closed ones (`uniloop_queue_close`,
//!   a worker told to stop, joined or finished) and NULL — but never a
//!   destroyed or foreign one: the header documents those handles as
//!   "NULL or a live handle; no call may start on it after [destroy]", so
//!   a destroyed one is the caller's undefined behaviour, not the
//!   library's to detect; likewise `uniloop_queue_set_signal` and
//!   `uniloop_pool_create` get only a live runtime or NULL, as documented;
//! * fds: both ends of socketpairs (non-blocking, and blocking ones, which
//!   posted I/O must refuse), TCP listeners on 127.0.0.1 (posted accepts
//!   and connects; the connections accepted join the fds), `/dev/null`, fds the sequence has closed
//!   (whose numbers a later socketpair may reuse), numbers never open, -1
//!   and other negative numbers; timer ids from any runtime, and unknown.
//!
//! Checked after every call: no call crashes, hangs or reports
//! `UNILOOP_ERR_PANIC`; a failure leaves an error code (1..=10) and a
//! message, a success of an int-returning call clears them; and what the
//! model knows: a completion arrives once, in posting order, with its full
//! key and data; a pool's job ids come back once each and every submitted
//! job has run when `uniloop_pool_destroy` returns; a timer event names a
//! pending timer of that runtime (a one-shot at most once, nothing after a
//! cancel); an fd event names an fd registered with that runtime, open,
//! with its current context; a posted write completes in order with its
//! length and pointer, a posted read with at most its length, in the
//! caller's buffer; a posted accept or connect gives one event for an
//! accept or connect posted on that fd (an accepted fd open and
//! non-blocking, a failure with its errno), and only a registered,
//! non-blocking, listening socket takes an accept; queue messages come
//! out as the model says (FIFO, the capacity, `DROP_OLDEST`, sizes,
//! close), its stats agree; a worker's
//! state follows stop and join, and its result is what its body returned.
//!
//! Not covered: `console_worker_init` (it reads the process's stdin, which
//! belongs to libFuzzer) and the `set_console_input_*` functions (they
//! change the terminal's mode; the console has its own C tests), and calls
//! from several threads at once (the pool and worker threads run, but the
//! sequence is made on one thread; the threaded C tests and TSan cover
//! concurrency). Waits never block: timeouts are zero or 1 ms.
#![no_main]

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::{self, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
// Linked for its exported symbols, which the block below declares.
use uniloop_capi as _;

type Rt = c_void;
type Queue = c_void;
type Worker = c_void;
type Pool = c_void;

/// `io_event_t` on Linux (the header's layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct IoEvent {
    fd: c_int,
    completion_key: usize,
    event_type: u32,
    context: *mut c_void,
    bytes_transferred: usize,
    buffer: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct RuntimeStats {
    registered: usize,
    timers: usize,
    pending_ops: usize,
    waits: u64,
    events: u64,
    io_events: u64,
    io_done: u64,
    completions: u64,
    timer_events: u64,
    posted: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct QueueStatsRef {
    capacity: usize,
    current_size: usize,
    max_msg_size: usize,
    enqueue_count: u64,
    dequeue_count: u64,
    dropped_count: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct QueueStats {
    capacity: usize,
    len: usize,
    max_msg_size: usize,
    high_water: usize,
    blocked_writers: usize,
    blocked_readers: usize,
    enqueued: u64,
    dequeued: u64,
    dropped: u64,
    cleared: u64,
    rejected: u64,
}

type WorkerProc = Option<unsafe extern "C" fn(*mut c_void) -> *mut c_void>;
type JobFn = Option<unsafe extern "C" fn(*mut c_void)>;

extern "C" {
    fn console_detect_type() -> c_int;
    fn console_type_str(t: c_int) -> *const c_char;
    fn console_worker_shutdown(ctx: *mut c_void, timeout_ms: c_int) -> bool;
    fn console_worker_destroy(ctx: *mut c_void);
    fn console_worker_take_eof(ctx: *mut c_void) -> bool;
    fn uniloop_last_error() -> c_int;
    fn uniloop_last_error_message() -> *const c_char;
    fn uniloop_strerror(code: c_int) -> *const c_char;

    fn async_runtime_init() -> *mut Rt;
    fn uniloop_runtime_init_backend(name: *const c_char) -> *mut Rt;
    fn async_runtime_deinit(rt: *mut Rt);
    fn async_runtime_add(rt: *mut Rt, fd: c_int, events: u32, ctx: *mut c_void) -> c_int;
    fn async_runtime_modify(rt: *mut Rt, fd: c_int, events: u32, ctx: *mut c_void) -> c_int;
    fn async_runtime_remove(rt: *mut Rt, fd: c_int) -> c_int;
    fn async_runtime_wakeup(rt: *mut Rt) -> c_int;
    fn async_runtime_wait(
        rt: *mut Rt,
        events: *mut IoEvent,
        max: c_int,
        timeout: *mut libc::timeval,
    ) -> c_int;
    fn async_runtime_post_completion(rt: *mut Rt, key: usize, data: usize) -> c_int;
    fn async_runtime_post_read(rt: *mut Rt, fd: c_int, buf: *mut c_void, len: usize) -> c_int;
    fn async_runtime_post_write(rt: *mut Rt, fd: c_int, buf: *mut c_void, len: usize) -> c_int;
    fn uniloop_runtime_post_accept(rt: *mut Rt, fd: c_int) -> c_int;
    fn uniloop_runtime_post_connect(
        rt: *mut Rt,
        fd: c_int,
        addr: *const libc::sockaddr,
        addrlen: usize,
    ) -> c_int;
    fn async_runtime_add_console(rt: *mut Rt, ctx: *mut c_void) -> c_int;
    fn async_runtime_get_console_type(rt: *mut Rt) -> c_int;
    fn async_runtime_get_event_loop_handle(rt: *mut Rt) -> c_int;
    fn uniloop_runtime_backend(rt: *mut Rt) -> *const c_char;
    fn uniloop_timer_add(rt: *mut Rt, key: usize, delay_ms: u64, period_ms: u64) -> u64;
    fn uniloop_timer_cancel(rt: *mut Rt, id: u64) -> c_int;
    fn uniloop_timer_reset(rt: *mut Rt, id: u64, delay_ms: u64) -> c_int;
    fn uniloop_runtime_get_stats(rt: *mut Rt, stats: *mut RuntimeStats) -> c_int;

    fn async_queue_create(capacity: usize, max_msg_size: usize, flags: u32) -> *mut Queue;
    fn async_queue_destroy(q: *mut Queue);
    fn async_queue_enqueue(q: *mut Queue, data: *const c_void, size: usize) -> bool;
    fn uniloop_queue_enqueue_timeout(
        q: *mut Queue,
        data: *const c_void,
        size: usize,
        timeout_ms: c_int,
    ) -> bool;
    fn async_queue_dequeue(q: *mut Queue, buf: *mut c_void, size: usize, out: *mut usize) -> bool;
    fn uniloop_queue_dequeue_timeout(
        q: *mut Queue,
        buf: *mut c_void,
        size: usize,
        out: *mut usize,
        timeout_ms: c_int,
    ) -> bool;
    fn async_queue_is_empty(q: *const Queue) -> bool;
    fn async_queue_is_full(q: *const Queue) -> bool;
    fn async_queue_clear(q: *mut Queue);
    fn async_queue_get_stats(q: *const Queue, stats: *mut QueueStatsRef);
    fn uniloop_queue_stats(q: *const Queue, stats: *mut QueueStats) -> bool;
    fn uniloop_queue_close(q: *mut Queue) -> bool;
    fn uniloop_queue_set_signal(q: *mut Queue, rt: *mut Rt, key: usize) -> bool;

    fn async_worker_create(proc_: WorkerProc, ctx: *mut c_void, stack: usize) -> *mut Worker;
    fn async_worker_destroy(w: *mut Worker);
    fn async_worker_get_native_handle(w: *mut Worker) -> libc::pthread_t;
    fn async_worker_signal_stop(w: *mut Worker);
    fn async_worker_join(w: *mut Worker, timeout_ms: c_int) -> bool;
    fn async_worker_current() -> *mut Worker;
    fn async_worker_should_stop(w: *mut Worker) -> bool;
    fn async_worker_get_state(w: *const Worker) -> c_int;
    fn async_worker_get_stop_event(w: *mut Worker) -> *mut c_void;
    fn uniloop_worker_wait_stop(w: *mut Worker, timeout_ms: c_int) -> bool;
    fn uniloop_worker_result(w: *mut Worker, out: *mut *mut c_void) -> bool;

    fn uniloop_pool_create(rt: *mut Rt, threads: usize, key: usize) -> *mut Pool;
    fn uniloop_pool_submit(p: *mut Pool, job: JobFn, arg: *mut c_void) -> usize;
    fn uniloop_pool_pending(p: *const Pool) -> usize;
    fn uniloop_pool_destroy(p: *mut Pool);
}

const EVENT_READ: u32 = 1;
const EVENT_WRITE: u32 = 2;
const EVENT_ERROR: u32 = 4;
const EVENT_CLOSE: u32 = 8;
const EVENT_TIMER: u32 = 256;
const EVENT_ACCEPT: u32 = 0x4000;
const EVENT_CONNECT: u32 = 0x8000;
const ERR_PANIC: c_int = 11;
const DROP_OLDEST: u32 = 1;
const BLOCK_WRITER: u32 = 2;
const WORKER_STOPPED: c_int = 0;
const WORKER_RUNNING: c_int = 1;
const WORKER_STOPPING: c_int = 2;
const DEFAULT_READ: usize = 4096;

// Completion keys by origin, so an event says where it came from.
const KEY_POST: usize = 0x1_0000_0000;
const KEY_POOL: usize = 0x2_0000_0000;
const KEY_QUEUE: usize = 0x3_0000_0000;
const KEY_TIMER: usize = 0x4_0000_0000;
const KEY_MASK: usize = 0xf_0000_0000;

const MAX_OPS: usize = 96;

#[derive(Arbitrary, Debug)]
enum Op {
    RtInit {
        backend: u8,
    },
    RtDeinit {
        rt: u8,
    },
    Add {
        rt: u8,
        fd: u8,
        events: u8,
        ctx: u8,
    },
    Modify {
        rt: u8,
        fd: u8,
        events: u8,
        ctx: u8,
    },
    Remove {
        rt: u8,
        fd: u8,
    },
    Wakeup {
        rt: u8,
    },
    Post {
        rt: u8,
        data: u64,
    },
    PostRead {
        rt: u8,
        fd: u8,
        own_buf: bool,
        len: u16,
    },
    PostWrite {
        rt: u8,
        fd: u8,
        null: bool,
        len: u16,
    },
    PostAccept {
        rt: u8,
        fd: u8,
    },
    PostConnect {
        rt: u8,
        fd: u8,
        addr: u8,
    },
    Wait {
        rt: u8,
        max: i8,
        null_events: bool,
        timeout: u8,
    },
    TimerAdd {
        rt: u8,
        delay: u8,
        period: u8,
    },
    TimerCancel {
        rt: u8,
        timer: u8,
    },
    TimerReset {
        rt: u8,
        timer: u8,
        delay: u8,
    },
    RtInfo {
        rt: u8,
        what: u8,
    },
    Socketpair {
        blocking: bool,
    },
    Tcp {
        blocking: bool,
        listen: bool,
    },
    Close {
        fd: u8,
    },
    Send {
        fd: u8,
        len: u8,
    },
    Shutdown {
        fd: u8,
        how: u8,
    },
    QCreate {
        cap: u8,
        size: u8,
        flags: u8,
    },
    QDestroy {
        q: u8,
    },
    QEnqueue {
        q: u8,
        len: u8,
        null: bool,
        timeout: Option<u8>,
    },
    QDequeue {
        q: u8,
        buf: u8,
        null_out: bool,
        timeout: Option<u8>,
    },
    QOther {
        q: u8,
        what: u8,
    },
    QSetSignal {
        q: u8,
        rt: u8,
    },
    WCreate {
        body: u8,
        stack: u8,
    },
    WCall {
        w: u8,
        what: u8,
        timeout: u8,
    },
    WDestroy {
        w: u8,
    },
    PCreate {
        rt: u8,
        threads: u8,
    },
    PSubmit {
        p: u8,
        null_job: bool,
    },
    PPending {
        p: u8,
    },
    PDestroy {
        p: u8,
    },
    Misc {
        what: u8,
        n: i32,
    },
}

/// What the model knows of one runtime.
struct RtModel {
    ptr: *mut Rt,
    live: bool,
    /// fd number → (slot, context, events mask).
    regs: HashMap<c_int, (usize, usize, u32)>,
    /// Successful waits so far.
    waits: u64,
    /// The poll backend (it watches numbers, not files).
    poll: bool,
    /// Registered fds closed without a remove: the `waits` count then.
    closed_at: HashMap<c_int, u64>,
    /// Registered fds whose number was reused before a wait saw the close:
    /// on poll the old entry then watches the new file and may report its
    /// readiness under the old context (a limit `Runtime::register`
    /// documents) until the number is added again or removed.
    stale: HashSet<c_int>,
    /// Completions posted by this thread, in order.
    posted: VecDeque<(usize, usize)>,
    seq: usize,
    /// Timer id → (key, periodic, fired); removed on cancel.
    timers: HashMap<u64, (usize, bool, bool)>,
    timer_ids: Vec<u64>,
    /// fd → posted writes (pointer, length) in order.
    writes: HashMap<c_int, VecDeque<(usize, usize)>>,
    /// fd → the posted read (pointer or 0, length) whose event has not
    /// been returned yet.
    reads: HashMap<c_int, (usize, usize)>,
    /// fd → posted accepts, and posted connects, whose events have not
    /// been returned yet.
    accepts: HashMap<c_int, usize>,
    connects: HashMap<c_int, usize>,
    /// Queues signalling here (their key).
    signal_keys: HashSet<usize>,
    /// Pool key → job ids not yet seen.
    pool_jobs: HashMap<usize, HashSet<usize>>,
}

struct Slot {
    fd: c_int,
    open: bool,
    nonblocking: bool,
    /// A listening TCP socket on 127.0.0.1: its address.
    listening: Option<libc::sockaddr_in>,
}

struct QModel {
    ptr: *mut Queue,
    cap: usize,
    max: usize,
    flags: u32,
    msgs: VecDeque<Vec<u8>>,
    closed: bool,
    enqueued: u64,
    dequeued: u64,
    dropped: u64,
    cleared: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Body {
    Return,
    WaitStop,
    SelfJoin,
}

struct WModel {
    ptr: *mut Worker,
    body: Body,
    ctx: usize,
    stopped: bool,
    joined: bool,
}

struct PModel {
    ptr: *mut Pool,
    key: usize,
    rt: usize,
    submitted: usize,
    ran: Box<AtomicUsize>,
}

/// The body of a worker: returns its context.
unsafe extern "C" fn body_return(ctx: *mut c_void) -> *mut c_void {
    ctx
}

/// Sleeps until told to stop (through its own handle), then returns.
unsafe extern "C" fn body_wait_stop(ctx: *mut c_void) -> *mut c_void {
    // SAFETY: called on the worker's own thread, where the handle is live.
    unsafe {
        let me = async_worker_current();
        assert!(!me.is_null(), "async_worker_current in a body");
        while !uniloop_worker_wait_stop(me, -1) {}
    }
    ctx
}

/// Tries to join itself, which must fail; returns NULL if it did not.
unsafe extern "C" fn body_self_join(ctx: *mut c_void) -> *mut c_void {
    // SAFETY: as above.
    unsafe {
        let me = async_worker_current();
        if async_worker_join(me, 0) || uniloop_last_error() != 1 {
            return null_mut();
        }
    }
    ctx
}

unsafe extern "C" fn job(arg: *mut c_void) {
    // SAFETY: `arg` is a PModel's counter, alive until the pool is destroyed.
    unsafe { &*(arg as *const AtomicUsize) }.fetch_add(1, Ordering::SeqCst);
}

fn last_error() -> c_int {
    // SAFETY: plain calls without arguments.
    unsafe {
        let code = uniloop_last_error();
        let msg = uniloop_last_error_message();
        assert!(!msg.is_null(), "uniloop_last_error_message is NULL");
        let msg = CStr::from_ptr(msg);
        assert_ne!(code, ERR_PANIC, "a panic inside the library: {msg:?}");
        assert!((0..=10).contains(&code), "error code {code}");
        assert_eq!(
            code == 0,
            msg.is_empty(),
            "code {code} with message {msg:?}"
        );
        code
    }
}

/// An int-returning call: 0 (or any value >= 0 where `nonneg`) is a
/// success and clears the error; -1 a failure that records one.
fn rc(r: c_int) -> bool {
    let code = last_error();
    if r >= 0 {
        assert_eq!(code, 0, "a success left error {code}");
        true
    } else {
        assert_eq!(r, -1, "a failure that is not -1");
        assert_ne!(code, 0, "a failure without an error code");
        false
    }
}

/// A call returning a handle, id or true on success.
fn ok_or_code(ok: bool) -> bool {
    let code = last_error();
    if ok {
        assert_eq!(code, 0, "a success left error {code}");
    } else {
        assert_ne!(code, 0, "a failure without an error code");
    }
    ok
}

struct Harness {
    rts: Vec<RtModel>,
    slots: Vec<Slot>,
    devnull: c_int,
    queues: Vec<QModel>,
    workers: Vec<WModel>,
    pools: Vec<PModel>,
    /// Buffers handed to the library: alive until the end of the input.
    arena: Vec<Box<[u8]>>,
    events: Vec<IoEvent>,
    foreign: Box<[u64; 32]>,
    /// A zeroed console context (documented as accepted by shutdown).
    zero_ctx: Box<[u64; 32]>,
    timer_keys: usize,
    pool_seq: usize,
}

impl Harness {
    fn new() -> Harness {
        // SAFETY: a plain open(2).
        let devnull = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK) };
        assert!(devnull >= 0);
        Harness {
            rts: Vec::new(),
            slots: Vec::new(),
            devnull,
            queues: Vec::new(),
            workers: Vec::new(),
            pools: Vec::new(),
            arena: Vec::new(),
            events: vec![unsafe_zeroed_event(); 64],
            foreign: Box::new([0; 32]),
            zero_ctx: Box::new([0; 32]),
            timer_keys: 0,
            pool_seq: 0,
        }
    }

    /// A runtime pointer: one made so far (live or not), NULL, or foreign.
    fn rt_ptr(&self, i: u8) -> *mut Rt {
        let n = self.rts.len();
        let i = usize::from(i) % (n + 3);
        if i < n {
            self.rts[i].ptr
        } else if i == n {
            null_mut()
        } else if i == n + 1 {
            self.foreign.as_ptr() as *mut Rt
        } else {
            match self.queues.first() {
                Some(q) => q.ptr,
                None => 8 as *mut Rt,
            }
        }
    }

    /// The live runtime a pointer names (a freed runtime's address may have
    /// been taken by a new one: the pointer then names that one).
    fn live_rt(&self, p: *mut Rt) -> Option<usize> {
        self.rts.iter().position(|r| r.live && r.ptr == p)
    }

    /// A live runtime or NULL, for the functions documented to want one.
    fn live_or_null(&self, i: u8) -> (*mut Rt, Option<usize>) {
        let live: Vec<usize> = (0..self.rts.len()).filter(|&k| self.rts[k].live).collect();
        let i = usize::from(i) % (live.len() + 1);
        match live.get(i) {
            Some(&k) => (self.rts[k].ptr, Some(k)),
            None => (null_mut(), None),
        }
    }

    /// An fd and the slot holding it now: a slot's number (open or
    /// closed), /dev/null, or one never open. `None` (the call is skipped)
    /// for a closed slot whose number the library has since taken for one
    /// of its own fds (a runtime's epoll fd or eventfd): not the caller's.
    fn fd(&self, i: u8) -> Option<(c_int, Option<usize>)> {
        let n = self.slots.len();
        let i = usize::from(i) % (n + 5);
        if i < n {
            let s = &self.slots[i];
            // The slot currently holding this number, if open.
            let holder = self.slots.iter().position(|t| t.open && t.fd == s.fd);
            // SAFETY: F_GETFD only asks whether the number is open.
            if holder.is_none() && unsafe { libc::fcntl(s.fd, libc::F_GETFD) } != -1 {
                return None;
            }
            Some((s.fd, holder))
        } else {
            Some(match i - n {
                0 => (self.devnull, None),
                1 => (-1, None),
                2 => (-7, None),
                3 => (1_000_000, None),
                _ => (c_int::MAX, None),
            })
        }
    }

    /// A socket the sequence made or was handed (an accepted one).
    fn new_slot(&mut self, fd: c_int, nonblocking: bool, listening: Option<libc::sockaddr_in>) {
        // The number is the new socket's now: no runtime's entry under it
        // is that socket's.
        self.slots.push(Slot {
            fd,
            open: true,
            nonblocking,
            listening,
        });
        for r in &mut self.rts {
            if r.closed_at.get(&fd) == Some(&r.waits) {
                r.stale.insert(fd);
            }
        }
    }

    fn buffer(&mut self, len: usize) -> *mut c_void {
        let mut b = vec![0u8; len.max(1)].into_boxed_slice();
        let p = b.as_mut_ptr().cast();
        self.arena.push(b);
        p
    }

    fn queue(&self, i: u8) -> Option<usize> {
        let i = usize::from(i) % (self.queues.len() + 1);
        (i < self.queues.len()).then_some(i)
    }

    fn qptr(&self, i: Option<usize>) -> *mut Queue {
        i.map_or(null_mut(), |i| self.queues[i].ptr)
    }

    fn op(&mut self, op: &Op) {
        // SAFETY (for every call below): the arguments are what the header
        // allows — see the module docs; buffers point to at least the
        // length passed and live in `arena` until the end of the input.
        unsafe {
            match *op {
                Op::RtInit { backend } => {
                    if self.rts.iter().filter(|r| r.live).count() >= 4 {
                        return;
                    }
                    let (p, expect) = match backend % 6 {
                        0 => (async_runtime_init(), true),
                        1 => (uniloop_runtime_init_backend(c"epoll".as_ptr()), true),
                        2 => (uniloop_runtime_init_backend(c"poll".as_ptr()), true),
                        3 => (uniloop_runtime_init_backend(ptr::null()), true),
                        4 => (uniloop_runtime_init_backend(c"kqueue".as_ptr()), false),
                        _ => (uniloop_runtime_init_backend(c"bogus".as_ptr()), false),
                    };
                    assert_eq!(ok_or_code(!p.is_null()), expect, "runtime init {backend}");
                    if !p.is_null() {
                        assert!(self.live_rt(p).is_none(), "a live runtime's address again");
                        self.rts.push(RtModel {
                            ptr: p,
                            live: true,
                            regs: HashMap::new(),
                            waits: 0,
                            poll: CStr::from_ptr(uniloop_runtime_backend(p)).to_bytes() == b"poll",
                            closed_at: HashMap::new(),
                            stale: HashSet::new(),
                            posted: VecDeque::new(),
                            seq: 0,
                            timers: HashMap::new(),
                            timer_ids: Vec::new(),
                            writes: HashMap::new(),
                            reads: HashMap::new(),
                            accepts: HashMap::new(),
                            connects: HashMap::new(),
                            signal_keys: HashSet::new(),
                            pool_jobs: HashMap::new(),
                        });
                    }
                }
                Op::RtDeinit { rt } => {
                    let p = self.rt_ptr(rt);
                    let live = self.live_rt(p);
                    // Pools post into their runtime until destroyed: the
                    // header allows the runtime to go first (posts are then
                    // skipped), so leave them.
                    async_runtime_deinit(p);
                    let code = last_error();
                    assert_eq!(code == 0, live.is_some(), "deinit of {p:?}: {code}");
                    if let Some(k) = live {
                        self.rts[k].live = false;
                    }
                }
                Op::Add {
                    rt,
                    fd,
                    events,
                    ctx,
                }
                | Op::Modify {
                    rt,
                    fd,
                    events,
                    ctx,
                } => {
                    let add = matches!(op, Op::Add { .. });
                    let p = self.rt_ptr(rt);
                    let Some((fd, holder)) = self.fd(fd) else {
                        return;
                    };
                    let events = u32::from(events) & 0x0f;
                    let context = 0x1000 + usize::from(ctx);
                    let r = if add {
                        async_runtime_add(p, fd, events, context as *mut c_void)
                    } else {
                        async_runtime_modify(p, fd, events, context as *mut c_void)
                    };
                    let ok = rc(r);
                    let Some(k) = self.live_rt(p) else {
                        assert!(!ok, "add/modify on a runtime that is not live");
                        return;
                    };
                    // Events 0: registered with no readiness interest.
                    // A modify to the readiness interest already set
                    // (`EVENT_READ`/`EVENT_WRITE`; the other bits ask
                    // nothing of the OS) makes no system call (its cost is
                    // the reference's), so on a number closed behind the
                    // runtime's back it may succeed.
                    let unchanged = !add
                        && self.rts[k]
                            .regs
                            .get(&fd)
                            .is_some_and(|&(_, _, mask)| (mask ^ events) & 3 == 0);
                    if holder.is_none() && fd != self.devnull && !unchanged {
                        assert!(!ok, "add/modify of fd {fd} with events {events:#x}");
                    }
                    let m = &mut self.rts[k];
                    if ok {
                        let slot = holder.unwrap_or(usize::MAX);
                        if add {
                            // A closed number reused: the old entry's
                            // operations went with it.
                            m.writes.remove(&fd);
                            m.reads.remove(&fd);
                            m.accepts.remove(&fd);
                            m.connects.remove(&fd);
                        } else {
                            assert!(m.regs.contains_key(&fd), "modify of an fd never added");
                        }
                        m.regs.insert(fd, (slot, context, events));
                        if add {
                            m.closed_at.remove(&fd);
                            m.stale.remove(&fd);
                        }
                    } else if !add && !m.regs.contains_key(&fd) && fd >= 0 {
                        assert_eq!(last_error(), 2, "modify of an unregistered fd");
                    }
                }
                Op::Remove { rt, fd } => {
                    let p = self.rt_ptr(rt);
                    let Some((fd, _)) = self.fd(fd) else { return };
                    let ok = rc(async_runtime_remove(p, fd));
                    if let Some(k) = self.live_rt(p) {
                        let m = &mut self.rts[k];
                        let was = m.regs.remove(&fd).is_some();
                        m.closed_at.remove(&fd);
                        m.stale.remove(&fd);
                        m.writes.remove(&fd);
                        m.reads.remove(&fd);
                        m.accepts.remove(&fd);
                        m.connects.remove(&fd);
                        if !was {
                            assert!(!ok, "remove of an unregistered fd succeeded");
                        }
                    } else {
                        assert!(!ok);
                    }
                }
                Op::Wakeup { rt } => {
                    let p = self.rt_ptr(rt);
                    assert_eq!(rc(async_runtime_wakeup(p)), self.live_rt(p).is_some());
                }
                Op::Post { rt, data } => {
                    let p = self.rt_ptr(rt);
                    let live = self.live_rt(p);
                    let key = KEY_POST | live.map_or(0, |k| self.rts[k].seq);
                    let ok = rc(async_runtime_post_completion(p, key, data as usize));
                    assert_eq!(ok, live.is_some());
                    if let Some(k) = live {
                        self.rts[k].seq += 1;
                        self.rts[k].posted.push_back((key, data as usize));
                    }
                }
                Op::PostRead {
                    rt,
                    fd,
                    own_buf,
                    len,
                } => {
                    let p = self.rt_ptr(rt);
                    let Some((fd, holder)) = self.fd(fd) else {
                        return;
                    };
                    let len = usize::from(len % 9000);
                    let buf = if own_buf {
                        self.buffer(len)
                    } else {
                        null_mut()
                    };
                    let ok = rc(async_runtime_post_read(p, fd, buf, len));
                    let Some(k) = self.live_rt(p) else {
                        assert!(!ok);
                        return;
                    };
                    let registered = self.rts[k].regs.contains_key(&fd);
                    let blocking = holder.is_some_and(|h| !self.slots[h].nonblocking);
                    if !registered || blocking || (own_buf && len == 0) {
                        assert!(!ok, "post_read accepted on fd {fd}");
                    }
                    if ok {
                        let size = if own_buf || len > 0 {
                            len
                        } else {
                            DEFAULT_READ
                        };
                        let prev = self.rts[k].reads.insert(fd, (buf as usize, size));
                        assert!(
                            prev.is_none(),
                            "a second read posted on fd {fd} before the first one's event"
                        );
                    }
                }
                Op::PostWrite { rt, fd, null, len } => {
                    let p = self.rt_ptr(rt);
                    let Some((fd, holder)) = self.fd(fd) else {
                        return;
                    };
                    let len = usize::from(len % 5000) + usize::from(null);
                    let buf = if null { null_mut() } else { self.buffer(len) };
                    let ok = rc(async_runtime_post_write(p, fd, buf, len));
                    let Some(k) = self.live_rt(p) else {
                        assert!(!ok);
                        return;
                    };
                    let registered = self.rts[k].regs.contains_key(&fd);
                    let blocking = holder.is_some_and(|h| !self.slots[h].nonblocking);
                    if !registered || blocking || null {
                        assert!(!ok, "post_write accepted on fd {fd}");
                    }
                    if ok {
                        self.rts[k]
                            .writes
                            .entry(fd)
                            .or_default()
                            .push_back((buf as usize, len));
                    }
                }
                Op::PostAccept { rt, fd } => {
                    let p = self.rt_ptr(rt);
                    let Some((fd, holder)) = self.fd(fd) else {
                        return;
                    };
                    let ok = rc(uniloop_runtime_post_accept(p, fd));
                    let Some(k) = self.live_rt(p) else {
                        assert!(!ok);
                        return;
                    };
                    let registered = self.rts[k].regs.contains_key(&fd);
                    // Only a registered, non-blocking, listening socket.
                    let fit = holder.is_some_and(|h| {
                        self.slots[h].nonblocking && self.slots[h].listening.is_some()
                    });
                    if !registered || !fit {
                        assert!(!ok, "post_accept accepted on fd {fd}");
                    }
                    if ok {
                        *self.rts[k].accepts.entry(fd).or_default() += 1;
                    }
                }
                Op::PostConnect { rt, fd, addr } => {
                    let p = self.rt_ptr(rt);
                    let Some((fd, holder)) = self.fd(fd) else {
                        return;
                    };
                    // A listener's address (or, with none, port 1: most
                    // likely refused), then bad ones.
                    let mut sin = self
                        .slots
                        .iter()
                        .filter_map(|s| s.listening)
                        .nth(usize::from(addr / 8))
                        .unwrap_or_else(|| loopback(1));
                    let mut len = std::mem::size_of::<libc::sockaddr_in>();
                    let mut null = false;
                    let valid = match addr % 8 {
                        0..=3 => true,
                        4 => {
                            null = true;
                            false
                        }
                        5 => {
                            len = 8;
                            false
                        }
                        6 => {
                            sin.sin_family = libc::AF_UNSPEC as libc::sa_family_t;
                            false
                        }
                        _ => {
                            len = 4096;
                            false
                        }
                    };
                    let ap = if null {
                        ptr::null()
                    } else {
                        // An address buffer of `len` bytes.
                        let b = self.buffer(len);
                        ptr::copy_nonoverlapping(
                            (&sin as *const libc::sockaddr_in).cast::<u8>(),
                            b.cast::<u8>(),
                            len.min(std::mem::size_of::<libc::sockaddr_in>()),
                        );
                        b.cast_const().cast()
                    };
                    let ok = rc(uniloop_runtime_post_connect(p, fd, ap, len));
                    let Some(k) = self.live_rt(p) else {
                        assert!(!ok);
                        return;
                    };
                    let registered = self.rts[k].regs.contains_key(&fd);
                    let blocking = holder.is_some_and(|h| !self.slots[h].nonblocking);
                    if !registered || blocking || !valid {
                        assert!(!ok, "post_connect accepted on fd {fd} (address {addr})");
                    }
                    if ok {
                        *self.rts[k].connects.entry(fd).or_default() += 1;
                    }
                }
                Op::Wait {
                    rt,
                    max,
                    null_events,
                    timeout,
                } => {
                    let p = self.rt_ptr(rt);
                    let max = c_int::from(max).min(64);
                    let mut tv = match timeout % 3 {
                        0 => libc::timeval {
                            tv_sec: 0,
                            tv_usec: 0,
                        },
                        1 => libc::timeval {
                            tv_sec: 0,
                            tv_usec: 1000,
                        },
                        _ => libc::timeval {
                            tv_sec: -1,
                            tv_usec: -1,
                        },
                    };
                    let events = if null_events {
                        null_mut()
                    } else {
                        self.events.as_mut_ptr()
                    };
                    let n = async_runtime_wait(p, events, max, &mut tv);
                    let ok = rc(n);
                    let live = self.live_rt(p);
                    if live.is_none() || null_events || max <= 0 {
                        assert!(!ok, "wait accepted");
                        return;
                    }
                    if ok {
                        self.rts[live.unwrap()].waits += 1;
                        assert!(n <= max, "{n} events for {max}");
                        let evs = self.events[..n as usize].to_vec();
                        for e in &evs {
                            self.check_event(live.unwrap(), e);
                        }
                        // The data of every read in the batch is readable
                        // (ASan) and is what was sent: the harness sends
                        // only b'x' (`Send`) and zeros (posted writes).
                        for e in &evs {
                            if e.fd != -1 && e.event_type == EVENT_READ && !e.buffer.is_null() {
                                let data = std::slice::from_raw_parts(
                                    e.buffer as *const u8,
                                    e.bytes_transferred,
                                );
                                assert!(
                                    data.iter().all(|&b| b == b'x' || b == 0),
                                    "read data that nobody sent: {e:?}"
                                );
                            }
                        }
                    }
                }
                Op::TimerAdd { rt, delay, period } => {
                    let p = self.rt_ptr(rt);
                    let key = KEY_TIMER | self.timer_keys;
                    self.timer_keys += 1;
                    let period = u64::from(period % 4) * 3;
                    let id = uniloop_timer_add(p, key, u64::from(delay % 8), period);
                    let ok = ok_or_code(id != 0);
                    let live = self.live_rt(p);
                    assert_eq!(ok, live.is_some(), "timer_add");
                    if let Some(k) = live {
                        let m = &mut self.rts[k];
                        assert!(
                            m.timers.insert(id, (key, period > 0, false)).is_none(),
                            "a timer id twice"
                        );
                        m.timer_ids.push(id);
                    }
                }
                Op::TimerCancel { rt, timer } | Op::TimerReset { rt, timer, .. } => {
                    let p = self.rt_ptr(rt);
                    let live = self.live_rt(p);
                    let all: Vec<u64> = self
                        .rts
                        .iter()
                        .flat_map(|r| r.timer_ids.iter().copied())
                        .collect();
                    let id = all
                        .get(usize::from(timer) % (all.len() + 2))
                        .copied()
                        .unwrap_or(u64::from(timer) << 40);
                    let (r, cancel) = match *op {
                        Op::TimerReset { delay, .. } => {
                            (uniloop_timer_reset(p, id, u64::from(delay % 8)), false)
                        }
                        _ => (uniloop_timer_cancel(p, id), true),
                    };
                    let ok = rc(r);
                    let Some(k) = live else {
                        assert!(!ok);
                        return;
                    };
                    let m = &mut self.rts[k];
                    match m.timers.get_mut(&id) {
                        // A one-shot that fired may not be reported yet:
                        // it is then still pending (or already gone).
                        Some(t) => {
                            if cancel && ok {
                                m.timers.remove(&id);
                            } else if ok {
                                t.2 = false;
                            }
                        }
                        None => assert!(!ok, "timer {id} unknown here, yet accepted"),
                    }
                }
                Op::RtInfo { rt, what } => {
                    let p = self.rt_ptr(rt);
                    let live = self.live_rt(p).is_some();
                    match what % 5 {
                        0 => {
                            let mut s = RuntimeStats::default();
                            let out = if what & 0x80 != 0 {
                                null_mut()
                            } else {
                                &mut s as *mut _
                            };
                            let ok = rc(uniloop_runtime_get_stats(p, out));
                            assert_eq!(ok, live && !out.is_null());
                            if ok {
                                let k = self.live_rt(p).unwrap();
                                assert_eq!(
                                    s.registered,
                                    self.rts[k].regs.len(),
                                    "stats.registered"
                                );
                            }
                        }
                        1 => {
                            let name = uniloop_runtime_backend(p);
                            assert_eq!(ok_or_code(!name.is_null()), live);
                            if !name.is_null() {
                                let name = CStr::from_ptr(name).to_str().unwrap();
                                assert!(["epoll", "poll"].contains(&name), "{name}");
                            }
                        }
                        2 => assert_eq!(rc(async_runtime_add_console(p, null_mut())), live),
                        3 => {
                            let t = async_runtime_get_console_type(p);
                            assert!((0..=3).contains(&t));
                        }
                        _ => {
                            // epoll: its fd; poll: none (UNSUPPORTED).
                            let name = uniloop_runtime_backend(p);
                            let epoll = !name.is_null() && CStr::from_ptr(name) == c"epoll";
                            let h = async_runtime_get_event_loop_handle(p);
                            let code = last_error();
                            assert_eq!(h >= 0, live && epoll, "get_event_loop_handle: {h}");
                            assert_eq!(code == 10, live && !epoll, "get_event_loop_handle: {code}");
                        }
                    }
                }
                Op::Socketpair { blocking } => {
                    if self.slots.iter().filter(|s| s.open).count() >= 12 {
                        return;
                    }
                    let mut fds = [0; 2];
                    let ty = libc::SOCK_STREAM
                        | libc::SOCK_CLOEXEC
                        | if blocking { 0 } else { libc::SOCK_NONBLOCK };
                    assert_eq!(libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()), 0);
                    for fd in fds {
                        self.new_slot(fd, !blocking, None);
                    }
                }
                Op::Tcp { blocking, listen } => {
                    if self.slots.iter().filter(|s| s.open).count() >= 12 {
                        return;
                    }
                    let ty = libc::SOCK_STREAM
                        | libc::SOCK_CLOEXEC
                        | if blocking { 0 } else { libc::SOCK_NONBLOCK };
                    let fd = libc::socket(libc::AF_INET, ty, 0);
                    assert!(fd >= 0);
                    if !listen {
                        // A client socket, for posted connects.
                        self.new_slot(fd, !blocking, None);
                        return;
                    }
                    let mut sin = loopback(0);
                    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                    let sa = (&mut sin as *mut libc::sockaddr_in).cast::<libc::sockaddr>();
                    assert_eq!(libc::bind(fd, sa, len), 0);
                    assert_eq!(libc::getsockname(fd, sa, &mut len), 0);
                    assert_eq!(libc::listen(fd, 8), 0);
                    self.new_slot(fd, !blocking, Some(sin));
                }
                Op::Close { fd } => {
                    let n = self.slots.len();
                    if n == 0 {
                        return;
                    }
                    let i = usize::from(fd) % n;
                    if self.slots[i].open {
                        self.slots[i].open = false;
                        let fd = self.slots[i].fd;
                        libc::close(fd);
                        for r in &mut self.rts {
                            if r.regs.get(&fd).is_some_and(|reg| reg.0 == i) {
                                r.closed_at.insert(fd, r.waits);
                            }
                        }
                        // Its entries stay (the header lets an fd closed
                        // before its removal be removed, or its number
                        // re-added); its posted operations end with it.
                    }
                }
                Op::Send { fd, len } => {
                    let n = self.slots.len();
                    if n == 0 {
                        return;
                    }
                    let s = &self.slots[usize::from(fd) % n];
                    if s.open {
                        let data = vec![b'x'; usize::from(len) + 1];
                        libc::send(
                            s.fd,
                            data.as_ptr().cast(),
                            data.len(),
                            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                        );
                    }
                }
                Op::Shutdown { fd, how } => {
                    let n = self.slots.len();
                    if n == 0 {
                        return;
                    }
                    let s = &self.slots[usize::from(fd) % n];
                    if s.open {
                        let how =
                            [libc::SHUT_RD, libc::SHUT_WR, libc::SHUT_RDWR][usize::from(how % 3)];
                        libc::shutdown(s.fd, how);
                    }
                }
                Op::QCreate { cap, size, flags } => {
                    if self.queues.len() >= 6 {
                        return;
                    }
                    let (cap, size, flags) = (
                        usize::from(cap % 6),
                        usize::from(size % 40),
                        u32::from(flags % 16),
                    );
                    let q = async_queue_create(cap, size, flags);
                    let valid = cap > 0 && size > 0 && flags < 8;
                    assert_eq!(
                        ok_or_code(!q.is_null()),
                        valid,
                        "queue_create({cap}, {size}, {flags})"
                    );
                    if !q.is_null() {
                        self.queues.push(QModel {
                            ptr: q,
                            cap,
                            max: size,
                            flags,
                            msgs: VecDeque::new(),
                            closed: false,
                            enqueued: 0,
                            dequeued: 0,
                            dropped: 0,
                            cleared: 0,
                        });
                    }
                }
                Op::QDestroy { q } => {
                    let i = self.queue(q);
                    async_queue_destroy(self.qptr(i));
                    assert_eq!(last_error() == 0, i.is_some());
                    if let Some(i) = i {
                        self.queues.remove(i);
                    }
                }
                Op::QEnqueue {
                    q,
                    len,
                    null,
                    timeout,
                } => {
                    let i = self.queue(q);
                    let p = self.qptr(i);
                    let len = usize::from(len % 48);
                    let data: Vec<u8> = (0..len).map(|b| b as u8 ^ len as u8).collect();
                    let dp = if null {
                        ptr::null()
                    } else {
                        data.as_ptr().cast()
                    };
                    let Some(i) = i else {
                        assert!(!ok_or_code(async_queue_enqueue(p, dp, len)));
                        return;
                    };
                    let m = &self.queues[i];
                    let full = m.msgs.len() >= m.cap && m.flags & DROP_OLDEST == 0;
                    let blocks = full && !m.closed && len > 0 && len <= m.max && !null;
                    let ok = match timeout {
                        Some(t) => ok_or_code(uniloop_queue_enqueue_timeout(
                            p,
                            dp,
                            len,
                            c_int::from(t % 2),
                        )),
                        // A blocking writer on a full queue would wait for
                        // a reader that never comes: not asked.
                        None if blocks && m.flags & BLOCK_WRITER != 0 => return,
                        None => ok_or_code(async_queue_enqueue(p, dp, len)),
                    };
                    let m = &mut self.queues[i];
                    let expect =
                        !m.closed && len > 0 && len <= m.max && !(null && len > 0) && !full;
                    assert_eq!(
                        ok,
                        expect,
                        "enqueue of {len} (null {null}) on cap {} max {} flags {} len {} closed {}",
                        m.cap,
                        m.max,
                        m.flags,
                        m.msgs.len(),
                        m.closed
                    );
                    if ok {
                        if m.msgs.len() >= m.cap {
                            m.msgs.pop_front();
                            m.dropped += 1;
                        }
                        m.msgs.push_back(data);
                        m.enqueued += 1;
                    }
                }
                Op::QDequeue {
                    q,
                    buf,
                    null_out,
                    timeout,
                } => {
                    let i = self.queue(q);
                    let p = self.qptr(i);
                    let size = usize::from(buf % 50);
                    let mut b = vec![0u8; size];
                    let bp = if size == 0 {
                        null_mut()
                    } else {
                        b.as_mut_ptr().cast()
                    };
                    let mut out = usize::MAX;
                    let op_ = if null_out {
                        null_mut()
                    } else {
                        &mut out as *mut usize
                    };
                    let ok = match timeout {
                        Some(t) => ok_or_code(uniloop_queue_dequeue_timeout(
                            p,
                            bp,
                            size,
                            op_,
                            c_int::from(t % 2),
                        )),
                        None => ok_or_code(async_queue_dequeue(p, bp, size, op_)),
                    };
                    let Some(i) = i else {
                        assert!(!ok);
                        return;
                    };
                    let m = &mut self.queues[i];
                    match m.msgs.front() {
                        Some(head) if head.len() <= size => {
                            assert!(ok, "dequeue failed with a message that fits");
                            assert_eq!(&b[..head.len()], &head[..], "dequeued another message");
                            if !null_out {
                                assert_eq!(out, head.len());
                            }
                            m.msgs.pop_front();
                            m.dequeued += 1;
                        }
                        Some(head) => {
                            assert!(!ok);
                            assert_eq!(last_error(), 8, "a message too big for the buffer");
                            if !null_out {
                                assert_eq!(out, head.len(), "the size it needs");
                            }
                        }
                        None => {
                            assert!(!ok);
                            let code = last_error();
                            assert!(
                                code == 5 || code == 6 || (m.closed && code == 7),
                                "empty queue: {code}"
                            );
                        }
                    }
                }
                Op::QOther { q, what } => {
                    let i = self.queue(q);
                    let p = self.qptr(i);
                    match what % 5 {
                        0 => {
                            let e = async_queue_is_empty(p);
                            if let Some(i) = i {
                                assert_eq!(e, self.queues[i].msgs.is_empty());
                            }
                        }
                        1 => {
                            let f = async_queue_is_full(p);
                            if let Some(i) = i {
                                assert_eq!(f, self.queues[i].msgs.len() >= self.queues[i].cap);
                            }
                        }
                        2 => {
                            async_queue_clear(p);
                            if let Some(i) = i {
                                let m = &mut self.queues[i];
                                m.cleared += m.msgs.len() as u64;
                                m.msgs.clear();
                            }
                        }
                        3 => {
                            assert_eq!(ok_or_code(uniloop_queue_close(p)), i.is_some());
                            if let Some(i) = i {
                                self.queues[i].closed = true;
                            }
                        }
                        _ => {
                            let mut s = QueueStats::default();
                            let mut r = QueueStatsRef::default();
                            let sp = if what & 0x80 != 0 {
                                null_mut()
                            } else {
                                &mut s as *mut _
                            };
                            let ok = ok_or_code(uniloop_queue_stats(p, sp));
                            async_queue_get_stats(p, &mut r);
                            if let Some(i) = i {
                                let m = &self.queues[i];
                                assert_eq!(ok, !sp.is_null());
                                assert_eq!(
                                    (r.capacity, r.current_size, r.max_msg_size),
                                    (m.cap, m.msgs.len(), m.max)
                                );
                                assert_eq!(
                                    (r.enqueue_count, r.dequeue_count, r.dropped_count),
                                    (m.enqueued, m.dequeued, m.dropped)
                                );
                                if ok {
                                    assert_eq!(
                                        (s.len, s.cleared, s.blocked_readers, s.blocked_writers),
                                        (m.msgs.len(), m.cleared, 0, 0)
                                    );
                                    assert_eq!(
                                        s.enqueued,
                                        s.dequeued + s.dropped + s.cleared + s.len as u64
                                    );
                                }
                            } else {
                                assert!(!ok);
                            }
                        }
                    }
                }
                Op::QSetSignal { q, rt } => {
                    let i = self.queue(q);
                    let (rp, k) = self.live_or_null(rt);
                    let key = KEY_QUEUE | i.unwrap_or(0xfff);
                    let ok = ok_or_code(uniloop_queue_set_signal(self.qptr(i), rp, key));
                    assert_eq!(ok, i.is_some() && k.is_some());
                    if let (true, Some(k)) = (ok, k) {
                        self.rts[k].signal_keys.insert(key);
                    }
                }
                Op::WCreate { body, stack } => {
                    if self.workers.iter().filter(|w| !w.joined).count() >= 4 {
                        return;
                    }
                    let (proc_, b): (WorkerProc, _) = match body % 4 {
                        0 => (Some(body_return), Body::Return),
                        1 => (Some(body_wait_stop), Body::WaitStop),
                        2 => (Some(body_self_join), Body::SelfJoin),
                        _ => (None, Body::Return),
                    };
                    let stack =
                        [0, 1, 16 << 10, 256 << 10, usize::MAX, 1 << 50][usize::from(stack % 6)];
                    let ctx = 0x5000 + self.workers.len();
                    let w = async_worker_create(proc_, ctx as *mut c_void, stack);
                    let ok = ok_or_code(!w.is_null());
                    if proc_.is_none() || stack >= 1 << 50 {
                        assert!(
                            !ok,
                            "worker created with proc {} stack {stack}",
                            proc_.is_some()
                        );
                    }
                    if ok {
                        self.workers.push(WModel {
                            ptr: w,
                            body: b,
                            ctx,
                            stopped: false,
                            joined: false,
                        });
                    }
                }
                Op::WCall { w, what, timeout } => {
                    let n = self.workers.len();
                    let i = usize::from(w) % (n + 1);
                    let p = if i < n {
                        self.workers[i].ptr
                    } else {
                        null_mut()
                    };
                    let m = self
                        .workers
                        .get(i)
                        .map(|w| (w.body, w.stopped, w.joined, w.ctx));
                    match what % 8 {
                        0 => {
                            async_worker_signal_stop(p);
                            assert_eq!(last_error() == 0, m.is_some());
                            if let Some(w) = self.workers.get_mut(i) {
                                w.stopped = true;
                            }
                        }
                        1 => {
                            let t = match timeout % 3 {
                                0 => 0,
                                1 => 1,
                                // Forever only where the body is sure to end.
                                _ if m.is_some_and(|(b, s, _, _)| b != Body::WaitStop || s) => -1,
                                _ => 2,
                            };
                            let ok = ok_or_code(async_worker_join(p, t));
                            match m {
                                None => assert!(!ok),
                                Some((_, _, joined, _)) => {
                                    if joined || t == -1 {
                                        assert!(ok, "join forever / again");
                                    }
                                    if !ok {
                                        assert_eq!(
                                            last_error(),
                                            6,
                                            "a join that failed other than on time"
                                        );
                                    }
                                    if ok {
                                        self.workers[i].joined = true;
                                        assert_eq!(async_worker_get_state(p), WORKER_STOPPED);
                                    }
                                }
                            }
                        }
                        2 => {
                            let s = async_worker_should_stop(p);
                            assert_eq!(s, m.is_some_and(|(_, stopped, _, _)| stopped));
                        }
                        3 => {
                            let s = async_worker_get_state(p);
                            match m {
                                None => assert_eq!(s, WORKER_STOPPED),
                                Some((_, _, true, _)) => assert_eq!(s, WORKER_STOPPED),
                                Some((_, true, _, _)) => {
                                    assert!(s == WORKER_STOPPING || s == WORKER_STOPPED, "{s}")
                                }
                                Some((Body::WaitStop, false, _, _)) => {
                                    assert_eq!(s, WORKER_RUNNING)
                                }
                                Some(_) => {
                                    assert!(s == WORKER_RUNNING || s == WORKER_STOPPED, "{s}")
                                }
                            }
                        }
                        4 => {
                            let mut out = 0x77 as *mut c_void;
                            let ok = ok_or_code(uniloop_worker_result(p, &mut out));
                            match m {
                                Some((_, _, true, ctx)) => {
                                    assert!(ok, "result after a join");
                                    assert_eq!(out as usize, ctx, "the body's return value");
                                }
                                _ => {
                                    assert!(!ok);
                                    assert_eq!(out as usize, 0x77, "out touched on failure");
                                }
                            }
                        }
                        5 => {
                            assert!(async_worker_get_stop_event(p).is_null());
                            assert_ne!(last_error(), 0);
                        }
                        6 => {
                            let h = async_worker_get_native_handle(p);
                            assert_eq!(h == 0, m.is_none());
                            assert!(async_worker_current().is_null(), "current() off a worker");
                        }
                        _ => {
                            let s = uniloop_worker_wait_stop(p, c_int::from(timeout % 2));
                            assert_eq!(s, m.is_some_and(|(_, stopped, _, _)| stopped));
                        }
                    }
                }
                Op::WDestroy { w } => {
                    let n = self.workers.len();
                    let i = usize::from(w) % (n + 1);
                    if i == n {
                        async_worker_destroy(null_mut());
                        assert_ne!(last_error(), 0);
                    } else {
                        let w = self.workers.remove(i);
                        if !w.joined {
                            // Join first so no thread outlives the input
                            // (destroying a running one detaches it, and a
                            // detached thread would pile up across runs).
                            async_worker_signal_stop(w.ptr);
                            assert!(async_worker_join(w.ptr, -1));
                        }
                        async_worker_destroy(w.ptr);
                        assert_eq!(last_error(), 0);
                    }
                }
                Op::PCreate { rt, threads } => {
                    if self.pools.len() >= 3 {
                        return;
                    }
                    let (rp, k) = self.live_or_null(rt);
                    let threads = [0, 1, 2, 3, 257][usize::from(threads % 5)];
                    let key = KEY_POOL | self.pool_seq;
                    self.pool_seq += 1;
                    let p = uniloop_pool_create(rp, threads, key);
                    let ok = ok_or_code(!p.is_null());
                    assert_eq!(
                        ok,
                        k.is_some() && (1..=256).contains(&threads),
                        "pool_create"
                    );
                    if let (true, Some(k)) = (ok, k) {
                        assert!(!self.pools.iter().any(|q| q.key == key));
                        self.rts[k].pool_jobs.insert(key, HashSet::new());
                        self.pools.push(PModel {
                            ptr: p,
                            key,
                            rt: k,
                            submitted: 0,
                            ran: Box::new(AtomicUsize::new(0)),
                        });
                    }
                }
                Op::PSubmit { p, null_job } => {
                    let n = self.pools.len();
                    let i = usize::from(p) % (n + 1);
                    let pp = if i < n { self.pools[i].ptr } else { null_mut() };
                    let arg = if i < n {
                        &*self.pools[i].ran as *const AtomicUsize as *mut c_void
                    } else {
                        null_mut()
                    };
                    let jf: JobFn = if null_job { None } else { Some(job) };
                    let id = uniloop_pool_submit(pp, jf, arg);
                    let ok = ok_or_code(id != 0);
                    assert_eq!(ok, i < n && !null_job, "pool_submit");
                    if ok {
                        let pm = &mut self.pools[i];
                        pm.submitted += 1;
                        let (k, key) = (pm.rt, pm.key);
                        if let Some(jobs) = self.rts[k].pool_jobs.get_mut(&key) {
                            assert!(jobs.insert(id), "a job id twice");
                        }
                    }
                }
                Op::PPending { p } => {
                    let n = self.pools.len();
                    let i = usize::from(p) % (n + 1);
                    let pp = if i < n { self.pools[i].ptr } else { null_mut() };
                    let pending = uniloop_pool_pending(pp);
                    if i < n {
                        assert!(pending <= self.pools[i].submitted);
                    } else {
                        assert_eq!(pending, 0);
                    }
                }
                Op::PDestroy { p } => {
                    let n = self.pools.len();
                    let i = usize::from(p) % (n + 1);
                    if i == n {
                        uniloop_pool_destroy(null_mut());
                        assert_ne!(last_error(), 0);
                        return;
                    }
                    let pm = self.pools.remove(i);
                    uniloop_pool_destroy(pm.ptr);
                    assert_eq!(last_error(), 0);
                    assert_eq!(
                        pm.ran.load(Ordering::SeqCst),
                        pm.submitted,
                        "jobs lost by destroy"
                    );
                }
                Op::Misc { what, n } => match what % 6 {
                    0 => {
                        let s = uniloop_strerror(n);
                        assert!(!s.is_null() && !CStr::from_ptr(s).is_empty());
                    }
                    1 => {
                        let s = CStr::from_ptr(console_type_str(n)).to_str().unwrap();
                        let expect = ["NONE", "REAL", "PIPE", "FILE"]
                            .get(n as usize)
                            .copied()
                            .unwrap_or("UNKNOWN");
                        assert_eq!(s, expect);
                    }
                    2 => assert!((0..=3).contains(&console_detect_type())),
                    3 => {
                        assert!(!console_worker_shutdown(null_mut(), n.clamp(-1, 1)));
                        assert_ne!(last_error(), 0);
                        assert!(
                            console_worker_shutdown(self.zero_ctx.as_mut_ptr().cast(), 0),
                            "a zeroed context"
                        );
                    }
                    4 => {
                        assert!(!console_worker_take_eof(null_mut()));
                        assert_ne!(last_error(), 0);
                    }
                    _ => {
                        console_worker_destroy(null_mut());
                        assert_eq!(last_error(), 0, "destroy(NULL) is ignored");
                    }
                },
            }
        }
    }

    /// One event from a wait on runtime `k`, against the model.
    fn check_event(&mut self, k: usize, e: &IoEvent) {
        let m = &mut self.rts[k];
        if e.fd == -1 {
            assert!(e.context.is_null() && e.buffer.is_null(), "{e:?}");
            let (key, data) = (e.completion_key, e.bytes_transferred);
            if e.event_type == EVENT_READ | EVENT_TIMER {
                let id = data as u64;
                let t = m
                    .timers
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("timer {id} not pending: {e:?}"));
                assert_eq!(t.0, key, "timer key");
                if !t.1 {
                    assert!(!t.2, "a one-shot fired twice");
                    m.timers.remove(&id);
                }
                return;
            }
            assert_eq!(e.event_type, EVENT_READ, "{e:?}");
            match key & KEY_MASK {
                KEY_POST => assert_eq!(
                    m.posted.pop_front(),
                    Some((key, data)),
                    "completion out of order"
                ),
                KEY_POOL => {
                    let jobs = m
                        .pool_jobs
                        .get_mut(&key)
                        .unwrap_or_else(|| panic!("a pool key not here: {e:?}"));
                    assert!(
                        jobs.remove(&data),
                        "job {data} not submitted or reported twice"
                    );
                }
                KEY_QUEUE => {
                    assert!(
                        m.signal_keys.contains(&key),
                        "queue signal {key:#x} not set here"
                    );
                    assert_eq!(data, 0);
                }
                _ => panic!("a completion nobody posted: {e:?}"),
            }
            return;
        }
        let &(slot, context, mask) = m
            .regs
            .get(&e.fd)
            .unwrap_or_else(|| panic!("an event for an fd not registered: {e:?}"));
        assert_eq!(e.context as usize, context, "{e:?}");
        if e.event_type & (EVENT_ACCEPT | EVENT_CONNECT) != 0 {
            self.accept_or_connect(k, e);
            return;
        }
        let slot_ok = slot != usize::MAX && self.slots[slot].open && self.slots[slot].fd == e.fd;
        let is_devnull = slot == usize::MAX && e.fd == self.devnull;
        let done = !e.buffer.is_null() || e.bytes_transferred != 0;
        // A failed posted operation carries its errno in the key (the
        // C header's rule); every other fd event has none.
        if !(done && e.event_type & EVENT_ERROR != 0) {
            assert_eq!(e.completion_key, 0, "{e:?}");
        }
        if !done {
            // (An operation that finished before its fd was closed is
            // still reported: checked below as any other.)
            let stale = m.poll && m.stale.contains(&e.fd);
            assert!(
                slot_ok || is_devnull || stale,
                "readiness of a closed fd: {e:?}"
            );
            // Readiness: only what was asked, plus error and close.
            assert_ne!(e.event_type, 0);
            assert_eq!(
                e.event_type & !(mask & 3) & !(EVENT_ERROR | EVENT_CLOSE),
                0,
                "{e:?} mask {mask}"
            );
            return;
        }
        // A posted operation finished: a write (the front one of this fd:
        // its pointer) or the read.
        let front = m.writes.get(&e.fd).and_then(|w| w.front().copied());
        let read = m.reads.get(&e.fd).copied();
        if front.is_some_and(|(p, _)| p == e.buffer as usize)
            && read.map(|r| r.0) != Some(e.buffer as usize)
        {
            let (_, len) = m.writes.get_mut(&e.fd).unwrap().pop_front().unwrap();
            match e.event_type {
                EVENT_WRITE => assert_eq!(e.bytes_transferred, len, "a short write reported done"),
                EVENT_ERROR => assert!(e.bytes_transferred <= len),
                t => panic!("write done with {t:#x}"),
            }
            return;
        }
        let (p, len) = m
            .reads
            .remove(&e.fd)
            .unwrap_or_else(|| panic!("an operation nobody posted: {e:?}"));
        if p != 0 {
            assert_eq!(p, e.buffer as usize, "read into another buffer");
        }
        match e.event_type {
            EVENT_READ => assert!(
                e.bytes_transferred > 0 && e.bytes_transferred <= len,
                "{e:?} len {len}"
            ),
            EVENT_CLOSE => assert_eq!(e.bytes_transferred, 0),
            EVENT_ERROR => {}
            t => panic!("read done with {t:#x}"),
        }
    }

    /// The event of a posted accept or connect on runtime `k`.
    fn accept_or_connect(&mut self, k: usize, e: &IoEvent) {
        let accept = e.event_type & EVENT_ACCEPT != 0;
        let pending = if accept {
            &mut self.rts[k].accepts
        } else {
            &mut self.rts[k].connects
        };
        let n = pending
            .get_mut(&e.fd)
            .filter(|n| **n > 0)
            .unwrap_or_else(|| panic!("an accept or connect nobody posted: {e:?}"));
        *n -= 1;
        assert!(e.buffer.is_null(), "{e:?}");
        let error = e.event_type & EVENT_ERROR != 0;
        match (accept, error) {
            (true, false) => {
                assert_eq!(e.event_type, EVENT_READ | EVENT_ACCEPT, "{e:?}");
                assert_eq!(e.completion_key, 0, "{e:?}");
                let fd = e.bytes_transferred as c_int;
                // SAFETY: F_GETFL only reads the new fd's flags.
                let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
                assert!(
                    fl != -1 && fl & libc::O_NONBLOCK != 0,
                    "accepted fd {fd}: {e:?}"
                );
                self.new_slot(fd, true, None);
            }
            (true, true) => {
                assert_eq!(e.event_type, EVENT_ERROR | EVENT_ACCEPT, "{e:?}");
                assert_eq!(e.bytes_transferred as c_int, -1, "{e:?}");
                assert_ne!(e.completion_key, 0, "{e:?}");
            }
            (false, false) => {
                assert_eq!(e.event_type, EVENT_WRITE | EVENT_CONNECT, "{e:?}");
                assert_eq!((e.completion_key, e.bytes_transferred), (0, 0), "{e:?}");
            }
            (false, true) => {
                assert_eq!(e.event_type, EVENT_ERROR | EVENT_CONNECT, "{e:?}");
                assert_eq!(e.bytes_transferred, 0, "{e:?}");
                assert_ne!(e.completion_key, 0, "{e:?}");
            }
        }
    }

    /// Ends everything the input made, checking what ending promises.
    fn finish(mut self) {
        // SAFETY: every handle below is live and destroyed once.
        unsafe {
            for w in self.workers.drain(..) {
                if !w.joined {
                    async_worker_signal_stop(w.ptr);
                    assert!(async_worker_join(w.ptr, -1), "join after stop");
                }
                let mut out = null_mut();
                assert!(uniloop_worker_result(w.ptr, &mut out));
                assert_eq!(out as usize, w.ctx);
                async_worker_destroy(w.ptr);
            }
            for p in self.pools.drain(..) {
                uniloop_pool_destroy(p.ptr);
                assert_eq!(
                    p.ran.load(Ordering::SeqCst),
                    p.submitted,
                    "jobs lost by destroy"
                );
            }
            for q in self.queues.drain(..) {
                async_queue_destroy(q.ptr);
            }
            for r in self.rts.iter().filter(|r| r.live) {
                async_runtime_deinit(r.ptr);
                assert_eq!(last_error(), 0);
            }
            for s in self.slots.iter().filter(|s| s.open) {
                libc::close(s.fd);
            }
            libc::close(self.devnull);
        }
    }
}

/// 127.0.0.1 on `port`.
fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn unsafe_zeroed_event() -> IoEvent {
    IoEvent {
        fd: 0,
        completion_key: 0,
        event_type: 0,
        context: null_mut(),
        bytes_transferred: 0,
        buffer: null_mut(),
    }
}

fuzz_target!(|ops: Vec<Op>| {
    // `UNILOOP_FUZZ_PRINT=1 cargo +nightly fuzz run capi_calls FILE` shows
    // what an input does.
    if std::env::var_os("UNILOOP_FUZZ_PRINT").is_some() {
        eprintln!("{:#?}", &ops[..ops.len().min(MAX_OPS)]);
    }
    let mut h = Harness::new();
    for op in ops.iter().take(MAX_OPS) {
        h.op(op);
    }
    h.finish();
});
