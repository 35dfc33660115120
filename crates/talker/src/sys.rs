//! What the talker does differently per platform, kept in one place as
//! uniloop keeps its own in `sys/`: reverse DNS (`getnameinfo(3)` on Unix),
//! making a rename durable (syncing its directory, which Windows cannot
//! open as a file), and locking a file for as long as the process runs.

use std::net::IpAddr;
use std::path::Path;

/// The host name of `ip`, or `None` if it has none (or the lookup failed).
/// Blocks for as long as the resolver takes.
#[cfg(unix)]
pub(crate) fn reverse_dns(ip: IpAddr) -> Option<String> {
    use std::ffi::CStr;
    use std::net::SocketAddr;

    let addr = SocketAddr::new(ip, 0);
    // SAFETY: sockaddr_storage is plain data for which all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                // SAFETY: all-zero is a valid value of this plain C struct
                // (it also zeroes the BSDs' `sin_len` and `sin_zero`).
                ..unsafe { std::mem::zeroed() }
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in; the write stays inside `storage`.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                // SAFETY: as above.
                ..unsafe { std::mem::zeroed() }
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` holds a valid address of `len` bytes; `host` is a
    // writable buffer of the length passed; no service is asked for.
    let rc = unsafe {
        libc::getnameinfo(
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into
    // `host`.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// The host name of `ip`: not looked up on this platform.
#[cfg(not(unix))]
pub(crate) fn reverse_dns(_ip: IpAddr) -> Option<String> {
    None
}

/// Makes a rename inside `dir` durable: syncs the directory (Unix). A
/// failure is ignored: the file itself is already synced.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Windows cannot open a directory as a file; NTFS makes the rename durable
/// with the file's metadata.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) {}

/// Takes an exclusive lock on `file` without waiting: `Ok(false)` if
/// another process holds it. The lock lasts as long as the file is open
/// (the OS drops it when the process ends, however it ends).
#[cfg(unix)]
pub(crate) fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor this `File` owns and keeps open.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Windows: the lock file is opened without sharing (see
/// [`open_lock_file`]), which is the lock.
#[cfg(not(unix))]
pub(crate) fn try_lock(_file: &std::fs::File) -> std::io::Result<bool> {
    Ok(true)
}

/// Opens (creating) the lock file.
#[cfg(unix)]
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Opens (creating) the lock file with no sharing: a second opener gets
/// a sharing violation, reported as "in use".
#[cfg(windows)]
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::windows::fs::OpenOptionsExt;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .share_mode(0)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION) {
                std::io::Error::from(std::io::ErrorKind::WouldBlock)
            } else {
                e
            }
        })
}

/// Opens (creating) the lock file.
#[cfg(not(any(unix, windows)))]
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}
