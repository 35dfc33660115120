//! Thin libc wrappers for the hand-written peers (raw epoll, eventfd) and
//! for measuring: thread CPU time, syscalls made by a thread, a seeded RNG,
//! the open-file limit.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Raises the soft open-file limit to `want` (or the hard limit).
pub(crate) fn raise_fd_limit(want: u64) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    if lim.rlim_cur >= want as libc::rlim_t {
        return Ok(());
    }
    lim.rlim_cur = (want as libc::rlim_t).min(lim.rlim_max);
    // SAFETY: `lim` is a valid, initialised rlimit.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    Ok(())
}

/// CPU time (user + system) consumed by the calling thread so far.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Counts the system calls the calling thread makes from `start` on: a
/// perf counter on the `raw_syscalls:sys_enter` tracepoint for this thread
/// only. `None` where the kernel has no tracefs or perf refuses (an
/// unprivileged user with `perf_event_paranoid` > 1): the figure is then
/// left out, not guessed. Work io_uring does for the thread without a
/// syscall (submissions taken by an `io_uring_enter` it made anyway,
/// completions posted by task work) is not counted, which is the point.
#[derive(Debug)]
pub(crate) struct SyscallCount(OwnedFd);

/// The first 64 bytes of `struct perf_event_attr` (`PERF_ATTR_SIZE_VER0`),
/// all a counting tracepoint needs; the kernel takes the older size.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const PERF_TYPE_TRACEPOINT: u32 = 2;

impl SyscallCount {
    pub(crate) fn start() -> Option<SyscallCount> {
        let id = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .iter()
            .find_map(|dir| {
                std::fs::read_to_string(format!("{dir}/events/raw_syscalls/sys_enter/id")).ok()
            })?
            .trim()
            .parse::<u64>()
            .ok()?;
        let attr = PerfEventAttr {
            type_: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: id,
            ..PerfEventAttr::default()
        };
        // SAFETY: `attr` is a valid, initialised perf_event_attr of the
        // size it states; pid 0 / cpu -1 is "this thread, any CPU"; no
        // group, no flags.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                0,
                -1,
                -1,
                0,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: perf_event_open returned a new fd that nothing else owns.
        Some(SyscallCount(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// The count so far (the `read` doing the reading included).
    pub(crate) fn read(&self) -> Option<u64> {
        let mut n = 0u64;
        // SAFETY: reads 8 bytes into `n`, which has room for them.
        let r = unsafe {
            libc::read(
                self.0.as_raw_fd(),
                (&mut n as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        (r == 8).then_some(n)
    }
}

/// xorshift64*: deterministic, so every system gets the same inputs.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, n)` (n > 0), close enough for benchmarks.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// An epoll instance driven by hand, the way a C program would.
#[derive(Debug)]
pub(crate) struct Epoll(OwnedFd);

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; a valid fd is owned below.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is ours.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn add(&self, fd: RawFd, data: u64, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: data };
        // SAFETY: `ev` is valid for the call; the kernel copies it.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })?;
        Ok(())
    }

    /// `epoll_wait`, restarted on EINTR. `timeout_ms < 0` blocks.
    pub(crate) fn wait(&self, buf: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is valid for `buf.len()` events.
            let r = unsafe {
                libc::epoll_wait(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len() as libc::c_int,
                    timeout_ms,
                )
            };
            match cvt(r) {
                Ok(n) => return Ok(n as usize),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// An empty epoll event buffer of `n` entries.
pub(crate) fn epoll_events(n: usize) -> Vec<libc::epoll_event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; n]
}

/// A Linux eventfd.
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new(nonblocking: bool) -> io::Result<EventFd> {
        let mut flags = libc::EFD_CLOEXEC;
        if nonblocking {
            flags |= libc::EFD_NONBLOCK;
        }
        // SAFETY: plain syscall; a valid fd is owned below.
        let fd = cvt(unsafe { libc::eventfd(0, flags) })?;
        // SAFETY: `fd` was just returned by the kernel and is ours.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Adds `v` to the counter.
    pub(crate) fn write(&self, v: u64) -> io::Result<()> {
        let buf = v.to_ne_bytes();
        // SAFETY: `buf` is 8 valid bytes.
        let r = unsafe { libc::write(self.fd(), buf.as_ptr().cast(), 8) };
        if r == 8 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Takes the counter (`None` if it was zero on a non-blocking eventfd).
    pub(crate) fn read(&self) -> io::Result<Option<u64>> {
        let mut buf = [0u8; 8];
        // SAFETY: `buf` is 8 writable bytes.
        let r = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), 8) };
        if r == 8 {
            return Ok(Some(u64::from_ne_bytes(buf)));
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            Ok(None)
        } else {
            Err(e)
        }
    }
}

/// The calling thread's CPU time so far: the total
/// (`CLOCK_THREAD_CPUTIME_ID`, exact) and its user-space part
/// (`getrusage(RUSAGE_THREAD)`, which splits the total by the ticks
/// sampled in each mode, so it is a sample over a run of seconds, not an
/// exact count).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ThreadCpu {
    pub(crate) total: Duration,
    pub(crate) user: Duration,
}

impl ThreadCpu {
    pub(crate) fn now() -> io::Result<ThreadCpu> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec for the kernel to fill.
        cvt(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) })?;
        // SAFETY: all-zero is a valid `rusage` (plain integers).
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid rusage for the kernel to fill.
        cvt(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) })?;
        Ok(ThreadCpu {
            total: Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
            user: Duration::new(ru.ru_utime.tv_sec as u64, ru.ru_utime.tv_usec as u32 * 1000),
        })
    }

    /// The CPU time used since `earlier`.
    pub(crate) fn since(self, earlier: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            total: self.total.saturating_sub(earlier.total),
            user: self.user.saturating_sub(earlier.user),
        }
    }
}
