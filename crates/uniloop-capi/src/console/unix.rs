//! POSIX: `poll(2)` on stdin and a self-pipe, `read(2)`, termios.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Lines, Shared, CONSOLE_MAX_LINE};
use crate::error::{Error, Result};
use crate::types::console_type_t;
use crate::uniloop_error_t::*;

pub(super) fn detect() -> console_type_t {
    // SAFETY: isatty and fstat only read fd 0's state; `st` is written
    // by fstat before it is read.
    unsafe {
        if libc::isatty(0) == 1 {
            return console_type_t::CONSOLE_TYPE_REAL;
        }
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(0, &mut st) == 0 {
            match st.st_mode & libc::S_IFMT {
                libc::S_IFIFO => return console_type_t::CONSOLE_TYPE_PIPE,
                libc::S_IFREG => return console_type_t::CONSOLE_TYPE_FILE,
                _ => {}
            }
        }
    }
    console_type_t::CONSOLE_TYPE_NONE
}

pub(super) fn stop_pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe writes two fds into the array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: both fds are new and ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [&r, &w] {
        // SAFETY: fcntl on our own fds; CLOEXEC so children do not
        // inherit them, NONBLOCK so a stop never blocks.
        unsafe {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    Ok((r, w))
}

pub(super) fn stop(shared: &Shared) {
    let b = 1u8;
    // SAFETY: a one-byte write from a live buffer to our pipe; a full
    // pipe (EAGAIN) already holds a stop.
    let _ = unsafe { libc::write(shared.stop_w.as_raw_fd(), (&b as *const u8).cast(), 1) };
}

/// Reads stdin until EOF (true) or a stop (false).
pub(super) fn read_loop(shared: &Shared, lines: &mut Lines) -> bool {
    let mut buf = vec![0u8; CONSOLE_MAX_LINE];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: shared.stop_r.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return true;
        }
        if fds[1].revents != 0 {
            return false;
        }
        if fds[0].revents & libc::POLLNVAL != 0 {
            return true;
        }
        if fds[0].revents == 0 {
            continue;
        }
        // SAFETY: reads into our buffer of its length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => continue,
                _ => return true,
            }
        }
        if n == 0 {
            return true;
        }
        lines.push(&buf[..n as usize], shared);
    }
}

fn termios(f: impl FnOnce(&mut libc::termios)) -> Result<()> {
    // SAFETY: tcgetattr fills `t` before it is used; tcsetattr reads it.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return Err(Error::new(
                UNILOOP_ERR_UNSUPPORTED,
                "stdin is not a terminal",
            ));
        }
        f(&mut t);
        // A terminal drops stale input (TCSAFLUSH), as the reference.
        if libc::tcsetattr(0, libc::TCSAFLUSH, &t) != 0 {
            return Err(io::Error::last_os_error().into());
        }
    }
    Ok(())
}

pub(super) fn line_mode(echo: bool) -> Result<()> {
    termios(|t| {
        t.c_lflag |= libc::ICANON;
        if echo {
            t.c_lflag |= libc::ECHO;
        } else {
            t.c_lflag &= !libc::ECHO;
        }
    })
}

pub(super) fn echo(on: bool) -> Result<()> {
    termios(|t| {
        if on {
            t.c_lflag |= libc::ECHO;
        } else {
            t.c_lflag &= !libc::ECHO;
        }
    })
}

pub(super) fn single_char() -> Result<()> {
    termios(|t| {
        t.c_lflag &= !(libc::ICANON | libc::ECHO);
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = 0;
    })
}

pub(super) fn output_ansi() -> Result<()> {
    Err(Error::new(
        UNILOOP_ERR_UNSUPPORTED,
        "POSIX terminals need no switch for ANSI output",
    ))
}
