//! Reverse DNS of a client's address: a real, blocking `getnameinfo(3)`,
//! so it runs on a [`WorkerPool`](uniloop::WorkerPool) thread and its
//! answer comes back to the loop as a completion.

use std::net::IpAddr;

/// The host name of `ip`, or `None` if it has none (or the lookup failed,
/// or the platform has no lookup). Blocks for as long as the resolver takes.
pub fn reverse(ip: IpAddr) -> Option<String> {
    crate::sys::reverse_dns(ip)
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
