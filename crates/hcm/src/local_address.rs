//! The host's own address, as Envoy finds it at startup (its
//! `local_info.address()`): the first non-loopback address of the wanted
//! family, else loopback. Envoy appends it to `x-forwarded-for` in place
//! of a loopback peer's address at the edge. Read once from the kernel's
//! tables (`/proc/net/fib_trie`, `/proc/net/if_inet6`): no system call
//! wrapper, no unsafe code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

static V4: OnceLock<IpAddr> = OnceLock::new();
static V6: OnceLock<IpAddr> = OnceLock::new();

/// The host's address of the family (`v6`), computed on first use.
pub fn get(v6: bool) -> IpAddr {
    if v6 {
        *V6.get_or_init(|| {
            std::fs::read_to_string("/proc/net/if_inet6")
                .ok()
                .and_then(|t| first_v6(&t))
                .map_or(IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V6)
        })
    } else {
        *V4.get_or_init(|| {
            std::fs::read_to_string("/proc/net/fib_trie")
                .ok()
                .and_then(|t| first_v4(&t))
                .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4)
        })
    }
}

/// The first address the trie lists as a local host address (`/32 host
/// LOCAL` under it) that is not loopback.
fn first_v4(trie: &str) -> Option<Ipv4Addr> {
    let mut last: Option<Ipv4Addr> = None;
    for line in trie.lines() {
        let line = line.trim();
        if let Some(a) = line.strip_prefix("|-- ") {
            last = a.parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(a) = last.filter(|a| !a.is_loopback()) {
                return Some(a);
            }
        }
    }
    None
}

/// The first global (not loopback, not link-local) address in
/// `if_inet6`'s table: 32 hex digits, then index, prefix, scope, flags.
fn first_v6(table: &str) -> Option<Ipv6Addr> {
    table.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let hex = f.next()?;
        let scope = f.nth(2)?;
        if hex.len() != 32 || scope != "00" {
            return None;
        }
        let n = u128::from_str_radix(hex, 16).ok()?;
        let a = Ipv6Addr::from(n);
        (!a.is_loopback()).then_some(a)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tables() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- 192.0.2.0\n        /24 link UNICAST\n     |-- 192.0.2.2\n        /32 host LOCAL\n";
        assert_eq!(first_v4(trie), Some(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(first_v4("|-- 127.0.0.1\n /32 host LOCAL\n"), None);
        let t6 = "00000000000000000000000000000001 01 80 10 80 lo\nfe8000000000000000fc00fffe000001 04 40 20 80 eth0\nfd000000000000000000000000000002 04 40 00 82 eth0\n";
        assert_eq!(
            first_v6(t6),
            Some("fd00::2".parse().unwrap_or(Ipv6Addr::LOCALHOST))
        );
        // Whatever the host, the answer is of the asked family.
        assert!(get(false).is_ipv4());
        assert!(get(true).is_ipv6());
    }
}
