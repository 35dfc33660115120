//! Reverse DNS of a client's address: a real, blocking `getnameinfo(3)`,
//! so it runs on a [`WorkerPool`](uniloop::WorkerPool) thread and its
//! answer comes back to the loop as a completion.

use std::net::IpAddr;

/// The host name of `ip`, or `None` if it has none (or the lookup failed).
/// Blocks for as long as the resolver takes.
#[cfg(unix)]
pub fn reverse(ip: IpAddr) -> Option<String> {
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
pub fn reverse(_ip: IpAddr) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_has_a_name_or_none_but_never_panics() {
        let name = super::reverse("127.0.0.1".parse().unwrap());
        if let Some(n) = name {
            assert!(!n.is_empty());
        }
        let _ = super::reverse("::1".parse().unwrap());
    }
}
