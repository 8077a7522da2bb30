//! Header handling on the way through: hop-by-hop headers removed in both
//! directions, and the request headers Envoy's router adds
//! (`x-request-id`, `x-forwarded-proto`, `x-forwarded-for`).

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use nuncio_config::UnderscoresAction;

/// `keep-alive` (parsed once, at compile time).
pub const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// `proxy-connection`.
pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-forwarded-proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `x-forwarded-for`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-envoy-expected-rq-timeout-ms`.
pub const X_ENVOY_EXPECTED_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
/// `x-envoy-external-address`.
pub const X_ENVOY_EXTERNAL_ADDRESS: HeaderName =
    HeaderName::from_static("x-envoy-external-address");
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

/// Removes what [`dropped_from_client`] drops from a header map.
pub fn strip_client_envoy_headers(h: &mut HeaderMap, edge: bool) {
    if !h.keys().any(|n| dropped_from_client(n.as_str(), edge)) {
        return;
    }
    let names: Vec<HeaderName> = h
        .keys()
        .filter(|n| dropped_from_client(n.as_str(), edge))
        .cloned()
        .collect();
    for n in names {
        h.remove(n);
    }
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

/// Joins several `cookie` fields (HTTP/2 splits them) into the one an
/// HTTP/1.1 upstream expects, separated by "; " (RFC 9113 8.2.3).
pub fn join_cookies(h: &mut HeaderMap) {
    if h.get_all(header::COOKIE).iter().nth(1).is_none() {
        return;
    }
    let mut joined = Vec::new();
    for v in h.get_all(header::COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(v.as_bytes());
    }
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        h.insert(header::COOKIE, v);
    }
}

/// What `headers_with_underscores_action` made of a request's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Underscores {
    /// Nothing to do (`ALLOW`, or no name with `_`).
    Keep,
    /// `DROP_HEADER` removed this many fields.
    Dropped(usize),
    /// `REJECT_REQUEST`: refuse the request.
    Reject,
}

/// Applies `headers_with_underscores_action` to request headers.
pub fn underscores(h: &mut HeaderMap, action: UnderscoresAction) -> Underscores {
    if action == UnderscoresAction::Allow || !h.keys().any(|n| n.as_str().contains('_')) {
        return Underscores::Keep;
    }
    if action == UnderscoresAction::Reject {
        return Underscores::Reject;
    }
    let names: Vec<HeaderName> = h
        .keys()
        .filter(|n| n.as_str().contains('_'))
        .cloned()
        .collect();
    let mut dropped = 0;
    for n in names {
        if let header::Entry::Occupied(e) = h.entry(n) {
            dropped += e.remove_entry_mult().1.count();
        }
    }
    Underscores::Dropped(dropped)
}

/// Headers that describe one hop and never cross a proxy (RFC 9110 7.6.1).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

fn is_hop_by_hop(n: &HeaderName) -> bool {
    HOP_BY_HOP.contains(n) || *n == KEEP_ALIVE || *n == PROXY_CONNECTION
}

/// Removes hop-by-hop headers, including every header the `Connection`
/// header names. `keep_upgrade` keeps `Upgrade`/`Connection: upgrade` for a
/// WebSocket handshake.
pub fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one scan instead of eight map lookups.
    if !keep_upgrade && !h.keys().any(is_hop_by_hop) {
        return;
    }
    if let Some(conn) = h.get(header::CONNECTION) {
        if conn.as_bytes() != b"keep-alive" && conn.as_bytes() != b"close" {
            let listed: Vec<HeaderName> = h
                .get_all(header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
                .filter(|n| !(keep_upgrade && n == header::UPGRADE))
                .collect();
            for n in listed {
                h.remove(n);
            }
        }
    }
    for n in HOP_BY_HOP {
        if keep_upgrade && (n == header::UPGRADE || n == header::CONNECTION) {
            continue;
        }
        if n == header::TE {
            // `te: trailers` may cross (gRPC needs it); nothing else may.
            let trailers_only = h
                .get(header::TE)
                .map(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"))
                .unwrap_or(true);
            if trailers_only {
                continue;
            }
        }
        h.remove(n);
    }
    h.remove(KEEP_ALIVE);
    h.remove(PROXY_CONNECTION);
    if keep_upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
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
    fn cookies_joined() {
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("cookie", HeaderValue::from_static("b=2"));
        join_cookies(&mut h);
        assert_eq!(h.get_all("cookie").iter().count(), 1);
        assert_eq!(h["cookie"], "a=1; b=2");
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
        let mut h = HeaderMap::new();
        h.insert("x-envoy-retry-on", HeaderValue::from_static("5xx"));
        h.insert("x-envoy-original-path", HeaderValue::from_static("/a"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_client_envoy_headers(&mut h, false);
        assert_eq!(h.len(), 2);
        strip_client_envoy_headers(&mut h, true);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn underscores_action() {
        let mut h = HeaderMap::new();
        h.append("x_user", HeaderValue::from_static("a"));
        h.append("x_user", HeaderValue::from_static("b"));
        h.append("x-user", HeaderValue::from_static("c"));
        let mut allow = h.clone();
        assert_eq!(
            underscores(&mut allow, UnderscoresAction::Allow),
            Underscores::Keep
        );
        assert_eq!(allow.len(), 3);
        let mut reject = h.clone();
        assert_eq!(
            underscores(&mut reject, UnderscoresAction::Reject),
            Underscores::Reject
        );
        assert_eq!(
            underscores(&mut h, UnderscoresAction::Drop),
            Underscores::Dropped(2)
        );
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-user"], "c");
        let mut clean = h.clone();
        assert_eq!(
            underscores(&mut clean, UnderscoresAction::Reject),
            Underscores::Keep
        );
    }

    #[test]
    fn hop_by_hop_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("gzip"));
        h.insert("proxy-connection", HeaderValue::from_static("x"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-keep"));
        let mut h = HeaderMap::new();
        h.insert("te", HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut h, false);
        assert!(h.contains_key("te"));
    }

    #[test]
    fn upgrade_kept_when_asked() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
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
