//! Header handling on the way through: hop-by-hop headers removed in both
//! directions, and the request headers Envoy's router adds
//! (`x-request-id`, `x-forwarded-proto`, `x-forwarded-for`).

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use http::header::{HeaderName, HeaderValue};

/// `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-envoy-upstream-service-time`.
pub const X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");

/// `x-envoy-*` request headers that steer a proxy (retries, timeouts,
/// tracing, tags, stats names): Envoy removes them from every request not
/// from an internal address (`cleanInternalHeaders`), and Envoy 1.40
/// trusts no address as internal unless configured, nor does nuncio. A
/// client must not set a sidecar's retry policy or timeout.
const CONTROL_HEADERS: [&str; 16] = [
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-max-retries",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-force-trace",
    "x-envoy-ip-tags",
    "x-envoy-original-url",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-retriable-status-codes",
    "x-envoy-retriable-header-names",
    "x-envoy-internal",
    "x-envoy-upstream-stream-duration-ms",
];

/// `x-envoy-*` headers that describe the downstream: removed at the edge
/// (`use_remote_address: true`), where the proxy is the first trusted hop
/// and sets `x-envoy-external-address` itself.
const EDGE_HEADERS: [&str; 6] = [
    "x-envoy-original-path",
    "x-envoy-original-host",
    "x-envoy-decorator-operation",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-external-address",
];

/// Whether request header `name` from a client is dropped before the
/// request goes upstream (`edge`: `use_remote_address`). One prefix
/// comparison for almost every header.
pub fn dropped_from_client(name: &str, edge: bool) -> bool {
    let b = name.as_bytes();
    if b.len() < 13 || !b[..8].eq_ignore_ascii_case(b"x-envoy-") {
        return false;
    }
    CONTROL_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
        || (edge && EDGE_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)))
}

/// The client address `xff_num_trusted_hops` (`hops`, above 0) makes of
/// `x-forwarded-for`: the entry `hops` from the right, if there are that
/// many and it is an IP address (else Envoy falls back to the peer).
pub fn trusted_client(xff: Option<&[u8]>, hops: u32) -> Option<std::net::IpAddr> {
    let hops = usize::try_from(hops).ok().filter(|h| *h > 0)?;
    let xff = std::str::from_utf8(xff?).ok()?;
    xff.rsplit(',').nth(hops - 1)?.trim().parse().ok()
}

/// The address Envoy appends to `x-forwarded-for` for `peer` at the edge:
/// the peer's, except for a loopback peer, where Envoy appends its own
/// local address (the host's first non-loopback address).
pub fn xff_address(peer: std::net::IpAddr) -> std::net::IpAddr {
    if peer.is_loopback() {
        crate::local_address::get(peer.is_ipv6())
    } else {
        peer
    }
}

thread_local! {
    static RNG: Cell<(u64, u64)> = Cell::new(seed());
}

fn seed() -> (u64, u64) {
    let s = std::collections::hash_map::RandomState::new();
    let mut a = s.build_hasher();
    a.write_u64(0x6e75_6e63_696f);
    let mut b = s.build_hasher();
    b.write_u64(std::process::id().into());
    (a.finish() | 1, b.finish() | 1)
}

/// A random version-4 UUID (for `x-request-id`), from a per-thread
/// xorshift128+ generator seeded by the OS-randomised std hasher.
pub fn uuid_v4() -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(&uuid_v4_bytes()))
        .unwrap_or(HeaderValue::from_static("-"))
}

/// [`uuid_v4`] as text, without allocating.
pub fn uuid_v4_bytes() -> [u8; 36] {
    let (hi, lo) = RNG.with(|r| {
        let next = || {
            let (mut s1, s0) = r.get();
            s1 ^= s1 << 23;
            s1 ^= s1 >> 17;
            s1 ^= s0 ^ (s0 >> 26);
            r.set((s0, s1));
            s0.wrapping_add(s1)
        };
        (next(), next())
    });
    // Version 4 and variant bits (RFC 9562), then two hex digits a byte
    // at fixed places around the dashes: straight-line code (the byte loop
    // with a match cost ~350 instructions a request).
    let mut b = ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const POS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = [b'-'; 36];
    for (byte, pos) in b.iter().zip(POS) {
        out[pos] = HEX[usize::from(byte >> 4)];
        out[pos + 1] = HEX[usize::from(byte & 0x0f)];
    }
    out
}

/// A random `Sec-WebSocket-Key` (16 random bytes, base64), for a
/// WebSocket whose client asked with HTTP/2's extended CONNECT and whose
/// upstream speaks HTTP/1.1.
pub fn random_key() -> String {
    let id = uuid_v4_bytes();
    let mut b = [0u8; 16];
    for (i, c) in id.iter().filter(|c| **c != b'-').enumerate().take(32) {
        let v = (*c as char).to_digit(16).unwrap_or(0) as u8;
        b[i / 2] |= if i % 2 == 0 { v << 4 } else { v };
    }
    nuncio_websocket::new_key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_hops() {
        let xff = Some(&b"1.1.1.1, 2.2.2.2,3.3.3.3"[..]);
        assert_eq!(trusted_client(xff, 1), "3.3.3.3".parse().ok());
        assert_eq!(trusted_client(xff, 3), "1.1.1.1".parse().ok());
        assert_eq!(trusted_client(xff, 4), None);
        assert_eq!(trusted_client(xff, 0), None);
        assert_eq!(trusted_client(Some(b"nope"), 1), None);
        assert_eq!(trusted_client(None, 1), None);
    }

    #[test]
    fn client_envoy_headers() {
        for n in [
            "x-envoy-retry-on",
            "X-Envoy-Max-Retries",
            "x-envoy-internal",
        ] {
            assert!(dropped_from_client(n, false), "{n}");
        }
        for n in ["x-envoy-original-path", "x-envoy-external-address"] {
            assert!(!dropped_from_client(n, false), "{n}");
            assert!(dropped_from_client(n, true), "{n}");
        }
        for n in [
            "x-envoy-foo",
            "x-envoy-attempt-count",
            "host",
            "x-envoy-",
            "retry-on",
        ] {
            assert!(!dropped_from_client(n, true), "{n}");
        }
    }

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        let s = a.to_str().unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let u = uuid_v4_bytes();
            for (i, c) in u.iter().enumerate() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    assert_eq!(*c, b'-');
                } else {
                    assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
                }
            }
            assert_eq!(u[14], b'4');
            assert!(matches!(u[19], b'8' | b'9' | b'a' | b'b'));
            assert!(seen.insert(u));
        }
    }
}
