//! Head rewriting for the native path, straight into bytes: the upstream
//! request head (hop-by-hop headers removed, Envoy's headers added) and the
//! downstream response head.

use std::fmt::Write as _;

use nuncio_filters::Edits;
use nuncio_h1::{RequestHead, ResponseHead};

/// Headers that never cross a hop, plus those we set ourselves. Matched
/// by length first: most headers are rejected by one comparison. `value`
/// decides for `te` (only `trailers` crosses) and `expect` (only
/// `100-continue` is the proxy's own).
pub(super) fn hop_by_hop(name: &str, te_value: &[u8]) -> bool {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    match name.len() {
        2 => is("te") && !te_value.eq_ignore_ascii_case(b"trailers"),
        // The proxy answers 100-continue itself; other expectations cross.
        6 => is("expect") && te_value.trim_ascii().eq_ignore_ascii_case(b"100-continue"),
        7 => is("upgrade"),
        10 => is("connection") || is("keep-alive"),
        14 => is("http2-settings"),
        16 => is("proxy-connection"),
        18 => is("proxy-authenticate"),
        19 => is("proxy-authorization"),
        _ => false,
    }
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Names listed in a Connection header (they are hop-by-hop too).
pub(super) fn connection_listed<'a>(headers: &'a [(&'a str, &'a [u8])]) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(|c| *c == b','))
        .map(|t| t.trim_ascii())
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case(b"close")
                && !t.eq_ignore_ascii_case(b"keep-alive")
                && !t.eq_ignore_ascii_case(b"upgrade")
        })
        .collect()
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// What the connection manager adds to a forwarded request.
pub(crate) struct RequestAdds<'a> {
    pub path: &'a str,
    /// The client connection's scheme, for `x-forwarded-proto`.
    pub scheme: &'a [u8],
    pub host_rewrite: Option<&'a [u8]>,
    /// `use_remote_address`: this proxy is the edge.
    pub use_remote_address: bool,
    /// Appended to `x-forwarded-for` at the edge (`None`: `skip_xff_append`).
    pub xff_ip: Option<&'a str>,
    /// `x-envoy-external-address` at the edge: the peer's address.
    pub external_ip: &'a str,
    /// A new `x-request-id`; `force` replaces the client's.
    pub request_id: Option<&'a [u8]>,
    pub force_request_id: bool,
    pub timeout_ms: Option<&'a [u8]>,
    /// `x-envoy-original-path`: the path before the route rewrote it.
    pub original_path: Option<&'a str>,
    /// Add `x-envoy-original-host` when `host_rewrite` replaces the Host.
    pub original_host: bool,
    pub via: &'a [u8],
    pub websocket: bool,
    /// Add `content-length: 0` (a bodyless request whose method may carry
    /// a body, as Envoy's codec does).
    pub zero_length: bool,
    /// The filters' and the route's edits (`native/filtering.rs`).
    pub edits: Option<&'a Edits>,
}

/// Writes what `edits` added, after a head's own fields.
fn push_added(out: &mut Vec<u8>, edits: Option<&Edits>) {
    for (n, v) in edits.into_iter().flat_map(Edits::added) {
        push_header(out, n, v.as_bytes());
    }
}

/// Whether `edits` removed the head's own `name` fields.
fn removed(edits: Option<&Edits>, name: &str) -> bool {
    edits.is_some_and(|e| e.removes(name))
}

/// Methods whose requests carry no body (Envoy's `requestShouldHaveNoBody`):
/// a bodyless request of any other method goes upstream with
/// `content-length: 0`.
fn has_no_body_by_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "DELETE" | "TRACE" | "CONNECT")
}

/// Writes the upstream head of `h` forwarded on route `fwd` by `hcm`
/// (`received`: the client's HTTP version, for Via; `bodyless`: the
/// request has no body; `path`: as the route rewrote it, from
/// `original_path` when the rewrite changed it).
/// Returns the `x-request-id` it generated, if any.
#[allow(clippy::too_many_arguments)]
pub(crate) fn upstream_request_on_route(
    out: &mut Vec<u8>,
    h: &RequestHead<'_>,
    hcm: &crate::Hcm,
    fwd: &nuncio_router::Forward,
    path: &str,
    peer: std::net::SocketAddr,
    secure: bool,
    received: http::Version,
    bodyless: bool,
    original_path: Option<&str>,
    edits: Option<&Edits>,
) -> Option<[u8; 36]> {
    let cfg = &hcm.config;
    let edge = cfg.use_remote_address;
    // At the edge Envoy replaces a client's x-request-id
    // (`preserve_external_request_id` keeps it).
    let force_request_id = edge && !cfg.preserve_external_request_id;
    let request_id = (cfg.generate_request_id
        && (force_request_id || h.get("x-request-id").is_none()))
    .then(crate::headers::uuid_v4_bytes);
    let (xff_ip, external_ip) = if edge {
        let xff =
            (!cfg.skip_xff_append).then(|| crate::headers::xff_address(peer.ip()).to_string());
        let client =
            crate::headers::trusted_client(h.get("x-forwarded-for"), cfg.xff_num_trusted_hops)
                .unwrap_or(peer.ip());
        (xff, client.to_string())
    } else {
        (None, String::new())
    };
    upstream_request(
        out,
        h,
        &RequestAdds {
            path,
            scheme: if secure { b"https" } else { b"http" },
            host_rewrite: fwd.host_rewrite.as_ref().map(|h| h.as_bytes()),
            use_remote_address: edge,
            xff_ip: xff_ip.as_deref(),
            external_ip: &external_ip,
            request_id: request_id.as_ref().map(|v| &v[..]),
            force_request_id: force_request_id && request_id.is_some(),
            timeout_ms: if cfg.suppress_envoy_headers {
                None
            } else {
                fwd.timeout_header.as_ref().map(|v| v.as_bytes())
            },
            original_path: original_path.filter(|_| !cfg.suppress_envoy_headers),
            original_host: !cfg.suppress_envoy_headers,
            via: hcm.via_values.get(received).as_bytes(),
            websocket: h
                .upgrade
                .is_some_and(|u| u.eq_ignore_ascii_case(b"websocket")),
            zero_length: bodyless
                && h.upgrade.is_none()
                && !has_no_body_by_method(h.method)
                && h.get("content-length").is_none(),
            edits,
        },
    );
    request_id
}

/// Writes the upstream request head.
pub(crate) fn upstream_request(out: &mut Vec<u8>, h: &RequestHead<'_>, a: &RequestAdds<'_>) {
    out.extend_from_slice(h.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(a.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let listed = connection_listed(&h.headers);
    // The Host upstream: the route's rewrite, else the request's authority
    // (an absolute-form target's replaces the Host header, as in Envoy).
    let host = a.host_rewrite.or(h.host);
    let (mut has_proto, mut has_id, mut has_host, mut xff) = (false, false, false, None);
    let edge = a.use_remote_address;
    let mut via: Vec<&[u8]> = Vec::new();
    let mut chunked = false;
    let edits = a.edits.filter(|e| !e.is_empty());
    for (n, v) in &h.headers {
        if hop_by_hop(n, v)
            || crate::headers::dropped_from_client(n, edge)
            || listed.iter().any(|l| l.eq_ignore_ascii_case(n.as_bytes()))
            || (edits.is_some()
                && removed(edits, n)
                && !n.eq_ignore_ascii_case("transfer-encoding"))
        {
            continue;
        }
        if n.len() == 17 && n.eq_ignore_ascii_case("transfer-encoding") {
            // The parser let only `chunked` through: written as Envoy
            // writes its own framing.
            chunked = true;
            continue;
        }
        if n.eq_ignore_ascii_case("host") {
            if !has_host {
                has_host = true;
                if let Some(hv) = host {
                    push_header(out, n, hv);
                }
            }
            continue;
        } else if n.eq_ignore_ascii_case("x-forwarded-proto") {
            has_proto = true;
            if edge {
                continue;
            }
        } else if n.eq_ignore_ascii_case("x-forwarded-for") && edge {
            xff = Some(*v);
            continue;
        } else if n.eq_ignore_ascii_case("x-request-id") {
            has_id = true;
            if a.force_request_id {
                continue;
            }
        } else if n.eq_ignore_ascii_case("via") {
            // Earlier hops and ours go out as one list.
            via.push(v);
            continue;
        }
        push_header(out, n, v);
    }
    if let (false, Some(hv)) = (has_host, host) {
        push_header(out, "host", hv);
    }
    if edge && !removed(edits, "x-envoy-external-address") {
        push_header(out, "x-envoy-external-address", a.external_ip.as_bytes());
    }
    if edge {
        // Envoy joins with a bare comma.
        let mut v = xff.map(<[u8]>::to_vec).unwrap_or_default();
        if let Some(ip) = a.xff_ip {
            if !v.is_empty() {
                v.push(b',');
            }
            v.extend_from_slice(ip.as_bytes());
        }
        if !v.is_empty() && !removed(edits, "x-forwarded-for") {
            push_header(out, "x-forwarded-for", &v);
        }
        if !removed(edits, "x-forwarded-proto") {
            push_header(out, "x-forwarded-proto", a.scheme);
        }
    } else if !has_proto && !removed(edits, "x-forwarded-proto") {
        push_header(out, "x-forwarded-proto", a.scheme);
    }
    if let (false, Some(id)) = (has_id && !a.force_request_id, a.request_id) {
        if !removed(edits, "x-request-id") {
            push_header(out, "x-request-id", id);
        }
    }
    if let Some(t) = a.timeout_ms {
        push_header(out, "x-envoy-expected-rq-timeout-ms", t);
    }
    if let (true, Some(_), Some(orig)) = (a.original_host, a.host_rewrite, h.host) {
        push_header(out, "x-envoy-original-host", orig);
    }
    if let Some(p) = a.original_path {
        push_header(out, "x-envoy-original-path", p.as_bytes());
    }
    if a.zero_length {
        push_header(out, "content-length", b"0");
    }
    // The buffer filter replaces a chunked body's framing with a length.
    if chunked && !removed(edits, "transfer-encoding") {
        push_header(out, "transfer-encoding", b"chunked");
    }
    out.extend_from_slice(b"via: ");
    for v in via {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(a.via);
    out.extend_from_slice(b"\r\n");
    if a.websocket {
        // The client's own spelling (`Upgrade`), as Envoy relays it; an
        // HTTP/2 client's extended CONNECT has none.
        let conn = h
            .get("connection")
            .filter(|v| v.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
            .unwrap_or(b"upgrade");
        push_header(out, "connection", conn);
        push_header(out, "upgrade", h.upgrade.unwrap_or(b"websocket"));
    }
    push_added(out, edits);
    out.extend_from_slice(b"\r\n");
}

/// How the response body goes to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyOut {
    /// Content-Length (or no body): headers as they are.
    AsIs,
    /// `transfer-encoding: chunked` to the client.
    Chunked,
    /// No framing header: the connection closes after the body.
    Close,
}

/// The client's HTTP version, as the response head needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientVersion {
    /// HTTP/1.1.
    Http11,
    /// HTTP/1.0 (answered with an HTTP/1.0 status line, as Envoy does);
    /// `keep_alive`: the connection stays open, which 1.0 must be told.
    Http10 { keep_alive: bool },
}

/// Writes the downstream response head. The status line carries Envoy's
/// reason phrase for the code, not the upstream's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn downstream_response(
    out: &mut Vec<u8>,
    r: &ResponseHead<'_>,
    server: &str,
    service_time_ms: Option<u64>,
    body: BodyOut,
    close: bool,
    version: ClientVersion,
    upgraded: bool,
    edits: Option<&Edits>,
) {
    let edits = edits.filter(|e| !e.is_empty());
    out.extend_from_slice(match version {
        ClientVersion::Http11 => b"HTTP/1.1 ",
        ClientVersion::Http10 { .. } => b"HTTP/1.0 ",
    });
    push_decimal(out, u64::from(r.status));
    out.push(b' ');
    out.extend_from_slice(super::reason(r.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    let listed = connection_listed(&r.headers);
    let (mut has_date, mut server_sent) = (false, false);
    for (n, v) in &r.headers {
        let skip = match n.len() {
            4 => {
                has_date |= n.eq_ignore_ascii_case("date");
                false
            }
            6 if n.eq_ignore_ascii_case("server") => {
                // Replaced where the upstream put it, as Envoy does.
                if !server_sent {
                    server_sent = true;
                    push_header(out, n, server.as_bytes());
                }
                true
            }
            6 => hop_by_hop(n, v),
            7 => n.eq_ignore_ascii_case("upgrade") && !upgraded,
            17 => n.eq_ignore_ascii_case("transfer-encoding"),
            // Envoy sets its own (a previous hop's is replaced).
            29 => {
                service_time_ms.is_some()
                    && !upgraded
                    && n.eq_ignore_ascii_case("x-envoy-upstream-service-time")
            }
            _ => hop_by_hop(n, v),
        } || (!listed.is_empty()
            && listed.iter().any(|l| l.eq_ignore_ascii_case(n.as_bytes())))
            || removed(edits, n);
        if !skip {
            push_header(out, n, v);
        }
    }
    // Envoy times responses, not a 101's switch to a tunnel.
    if let Some(ms) = service_time_ms.filter(|_| !upgraded) {
        out.extend_from_slice(b"x-envoy-upstream-service-time: ");
        push_decimal(out, ms);
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        super::date::push_now(out);
        out.extend_from_slice(b"\r\n");
    }
    if !server_sent {
        push_header(out, "server", server.as_bytes());
    }
    if body == BodyOut::Chunked {
        push_header(out, "transfer-encoding", b"chunked");
    }
    if upgraded {
        let conn = r
            .get("connection")
            .filter(|v| v.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
            .unwrap_or(b"upgrade");
        push_header(out, "connection", conn);
    } else if close {
        push_header(out, "connection", b"close");
    } else if version == (ClientVersion::Http10 { keep_alive: true }) {
        push_header(out, "connection", b"keep-alive");
    }
    push_added(out, edits);
    out.extend_from_slice(b"\r\n");
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A local reply `r` on HTTP/1.1: status line, Envoy's headers in
/// Envoy's order, the body.
pub(crate) fn local_reply(
    r: &crate::local_reply::LocalReply<'_>,
    server: &str,
    date: &[u8],
    close: bool,
    location: Option<&str>,
    edits: Option<&Edits>,
) -> Vec<u8> {
    let (status, body) = (r.wire_status(), r.wire_body());
    let mut out = Vec::with_capacity(160 + r.body.len());
    let _ = write!(
        VecWriter(&mut out),
        "HTTP/1.{} {status} {}\r\n",
        if r.http10 { 0 } else { 1 },
        super::reason(status)
    );
    // Envoy sets a local reply's added headers before its own.
    push_added(&mut out, edits);
    r.fields(|n, v| {
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    });
    push_header(&mut out, "date", date);
    push_header(&mut out, "server", server.as_bytes());
    if let Some(l) = location {
        push_header(&mut out, "location", l.as_bytes());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if r.trailing_zero_length() {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_h1::{parse_request, parse_response, Limits};

    #[test]
    fn request_rewrite() {
        let raw = b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nTE: gzip\r\nX-Keep: 2\r\nVia: 1.1 other\r\n\r\n";
        let h = parse_request(raw, &Limits::default()).unwrap().unwrap();
        let mut out = Vec::new();
        upstream_request(
            &mut out,
            &h,
            &RequestAdds {
                scheme: b"http",
                path: "/y",
                host_rewrite: None,
                use_remote_address: false,
                xff_ip: None,
                external_ip: "",
                request_id: Some(b"rid"),
                force_request_id: false,
                timeout_ms: Some(b"15000"),
                original_path: None,
                original_host: true,
                via: b"1.1 nuncio-x",
                websocket: false,
                zero_length: false,
                edits: None,
            },
        );
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "GET /y HTTP/1.1\r\nHost: a\r\nX-Keep: 2\r\nx-forwarded-proto: http\r\nx-request-id: rid\r\nx-envoy-expected-rq-timeout-ms: 15000\r\nvia: 1.1 other, 1.1 nuncio-x\r\n\r\n"
        );
    }

    #[test]
    fn edge_request_rewrite() {
        let raw = b"GET http://abs.example/x HTTP/1.1\r\nHost: other\r\nX-Envoy-Retry-On: 5xx\r\nx-envoy-original-path: /p\r\nx-envoy-foo: 1\r\nX-Forwarded-For: 1.2.3.4\r\nx-request-id: client\r\nx-forwarded-proto: https\r\n\r\n";
        let h = parse_request(raw, &Limits::default()).unwrap().unwrap();
        let mut out = Vec::new();
        upstream_request(
            &mut out,
            &h,
            &RequestAdds {
                scheme: b"http",
                path: "/x",
                host_rewrite: None,
                use_remote_address: true,
                xff_ip: Some("192.0.2.2"),
                external_ip: "127.0.0.1",
                request_id: Some(b"new"),
                force_request_id: true,
                timeout_ms: None,
                original_path: None,
                original_host: true,
                via: b"1.1 nuncio-x",
                websocket: false,
                zero_length: false,
                edits: None,
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /x HTTP/1.1\r\nHost: abs.example\r\nx-envoy-foo: 1\r\nx-envoy-external-address: 127.0.0.1\r\nx-forwarded-for: 1.2.3.4,192.0.2.2\r\nx-forwarded-proto: http\r\nx-request-id: new\r\nvia: 1.1 nuncio-x\r\n\r\n"
        );
        // HTTP/1.0 given a default host gets a Host line.
        let raw = b"GET / HTTP/1.0\r\nx-envoy-max-retries: 3\r\n\r\n";
        let mut h = parse_request(raw, &Limits::default()).unwrap().unwrap();
        h.host = Some(b"default.example");
        let mut out = Vec::new();
        upstream_request(
            &mut out,
            &h,
            &RequestAdds {
                scheme: b"http",
                path: "/",
                host_rewrite: None,
                use_remote_address: false,
                xff_ip: None,
                external_ip: "",
                request_id: None,
                force_request_id: false,
                timeout_ms: None,
                original_path: Some("/orig"),
                original_host: true,
                via: b"1.0 nuncio-x",
                websocket: false,
                zero_length: false,
                edits: None,
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nhost: default.example\r\nx-forwarded-proto: http\r\nx-envoy-original-path: /orig\r\nvia: 1.0 nuncio-x\r\n\r\n"
        );
    }

    #[test]
    fn bodyless_methods() {
        for m in ["GET", "HEAD", "DELETE", "TRACE", "CONNECT"] {
            assert!(has_no_body_by_method(m), "{m}");
        }
        for m in ["POST", "PUT", "OPTIONS", "PATCH", "PURGE"] {
            assert!(!has_no_body_by_method(m), "{m}");
        }
    }

    #[test]
    fn hop_by_hop_names() {
        for n in [
            "Connection",
            "KEEP-ALIVE",
            "proxy-connection",
            "Upgrade",
            "Proxy-Authenticate",
            "proxy-authorization",
            "HTTP2-Settings",
        ] {
            assert!(hop_by_hop(n, b""), "{n}");
        }
        assert!(hop_by_hop("Expect", b"100-Continue"));
        assert!(!hop_by_hop("expect", b"something-else"));
        assert!(hop_by_hop("TE", b"gzip"));
        assert!(!hop_by_hop("te", b"trailers"));
        for n in [
            "host",
            "x-te",
            "connections",
            "upgrade-insecure",
            "server",
            "exp",
        ] {
            assert!(!hop_by_hop(n, b""), "{n}");
        }
    }

    #[test]
    fn decimals() {
        for n in [0u64, 7, 10, 1234567, u64::MAX] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    /// The head as text with the date's value (which changes) as `D`.
    fn without_date(out: Vec<u8>) -> String {
        let s = String::from_utf8(out).unwrap();
        let Some(at) = s.find("date: ") else {
            return s;
        };
        let end = at + s[at..].find("\r\n").unwrap();
        format!("{}date: D{}", &s[..at], &s[end..])
    }

    #[test]
    fn response_rewrite_drops_hop_headers() {
        let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Hop\r\nX-Hop: 1\r\nX-Ok: 2\r\n\r\n";
        let r = parse_response(raw, 100, 65536).unwrap().unwrap();
        for (upgraded, want) in [
            (true, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-Ok: 2\r\ndate: D\r\nserver: s\r\nconnection: upgrade\r\n\r\n"),
            (false, "HTTP/1.1 101 Switching Protocols\r\nX-Ok: 2\r\ndate: D\r\nserver: s\r\nconnection: close\r\n\r\n"),
        ] {
            let mut out = Vec::new();
            downstream_response(
                &mut out,
                &r,
                "s",
                None,
                BodyOut::AsIs,
                !upgraded,
                ClientVersion::Http11,
                upgraded,
                None,
            );
            assert_eq!(without_date(out), want);
        }
    }

    #[test]
    fn response_rewrite() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: up\r\nDate: Tue, 15 Nov 1994 08:12:31 GMT\r\nTransfer-Encoding: chunked\r\nKeep-Alive: x\r\nX-A: 1\r\n\r\n";
        let r = parse_response(raw, 100, 65536).unwrap().unwrap();
        let mut out = Vec::new();
        downstream_response(
            &mut out,
            &r,
            "nuncio",
            Some(3),
            BodyOut::Chunked,
            false,
            ClientVersion::Http11,
            false,
            None,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: nuncio\r\nDate: Tue, 15 Nov 1994 08:12:31 GMT\r\nX-A: 1\r\nx-envoy-upstream-service-time: 3\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }
}
