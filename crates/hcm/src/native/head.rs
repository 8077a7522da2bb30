//! Head rewriting for the native path, straight into bytes: the upstream
//! request head (hop-by-hop headers removed, Envoy's headers added) and the
//! downstream response head.

use std::fmt::Write as _;

use nuncio_h1::{RequestHead, ResponseHead};

/// Headers that never cross a hop, plus those we set ourselves.
fn hop_by_hop(name: &str, te_value: &[u8]) -> bool {
    const NAMES: [&str; 8] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "expect",
        "http2-settings",
    ];
    if name.eq_ignore_ascii_case("te") {
        return !te_value.eq_ignore_ascii_case(b"trailers");
    }
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Names listed in a Connection header (they are hop-by-hop too).
fn connection_listed<'a>(headers: &'a [(&'a str, &'a [u8])]) -> Vec<&'a [u8]> {
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
    pub host_rewrite: Option<&'a [u8]>,
    pub use_remote_address: bool,
    pub peer_ip: &'a str,
    pub request_id: Option<&'a [u8]>,
    pub timeout_ms: Option<&'a [u8]>,
    pub via: &'a [u8],
    pub websocket: bool,
}

/// Writes the upstream request head.
pub(crate) fn upstream_request(out: &mut Vec<u8>, h: &RequestHead<'_>, a: &RequestAdds<'_>) {
    out.extend_from_slice(h.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(a.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let listed = connection_listed(&h.headers);
    let (mut has_proto, mut has_id, mut xff) = (false, false, None);
    for (n, v) in &h.headers {
        if hop_by_hop(n, v) || listed.iter().any(|l| l.eq_ignore_ascii_case(n.as_bytes())) {
            continue;
        }
        if n.eq_ignore_ascii_case("host") {
            if let Some(r) = a.host_rewrite {
                push_header(out, "host", r);
                continue;
            }
        } else if n.eq_ignore_ascii_case("x-forwarded-proto") {
            has_proto = true;
            if a.use_remote_address {
                continue;
            }
        } else if n.eq_ignore_ascii_case("x-forwarded-for") && a.use_remote_address {
            xff = Some(*v);
            continue;
        } else if n.eq_ignore_ascii_case("x-request-id") {
            has_id = true;
        } else if n.eq_ignore_ascii_case("x-envoy-expected-rq-timeout-ms") && a.timeout_ms.is_some()
        {
            continue;
        }
        push_header(out, n, v);
    }
    if h.host.is_none() {
        if let Some(r) = a.host_rewrite {
            push_header(out, "host", r);
        }
    }
    if a.use_remote_address {
        push_header(out, "x-forwarded-proto", b"http");
        let mut v = xff.map(<[u8]>::to_vec).unwrap_or_default();
        if !v.is_empty() {
            v.extend_from_slice(b", ");
        }
        v.extend_from_slice(a.peer_ip.as_bytes());
        push_header(out, "x-forwarded-for", &v);
    } else if !has_proto {
        push_header(out, "x-forwarded-proto", b"http");
    }
    if let (false, Some(id)) = (has_id, a.request_id) {
        push_header(out, "x-request-id", id);
    }
    if let Some(t) = a.timeout_ms {
        push_header(out, "x-envoy-expected-rq-timeout-ms", t);
    }
    push_header(out, "via", a.via);
    if a.websocket {
        push_header(out, "connection", b"upgrade");
        push_header(out, "upgrade", h.upgrade.unwrap_or(b"websocket"));
    }
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

/// Writes the downstream response head.
#[allow(clippy::too_many_arguments)]
pub(crate) fn downstream_response(
    out: &mut Vec<u8>,
    r: &ResponseHead<'_>,
    server: &str,
    service_time_ms: Option<u64>,
    body: BodyOut,
    close: bool,
    http10_keep_alive: bool,
    upgraded: bool,
) {
    let _ = write!(
        VecWriter(out),
        "HTTP/1.1 {} {}\r\n",
        r.status,
        if r.reason.is_empty() {
            "Unknown"
        } else {
            r.reason
        }
    );
    let listed = connection_listed(&r.headers);
    for (n, v) in &r.headers {
        let skip = n.eq_ignore_ascii_case("transfer-encoding")
            || n.eq_ignore_ascii_case("server")
            || (n.eq_ignore_ascii_case("upgrade") && !upgraded)
            || (hop_by_hop(n, v) && !n.eq_ignore_ascii_case("upgrade"))
            || listed.iter().any(|l| l.eq_ignore_ascii_case(n.as_bytes()));
        if !skip {
            push_header(out, n, v);
        }
    }
    push_header(out, "server", server.as_bytes());
    if let Some(ms) = service_time_ms {
        push_header(
            out,
            "x-envoy-upstream-service-time",
            ms.to_string().as_bytes(),
        );
    }
    if body == BodyOut::Chunked {
        push_header(out, "transfer-encoding", b"chunked");
    }
    if upgraded {
        push_header(out, "connection", b"upgrade");
    } else if close {
        push_header(out, "connection", b"close");
    } else if http10_keep_alive {
        push_header(out, "connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A local reply: status line, text body, our headers.
pub(crate) fn local_reply(
    status: u16,
    reason: &str,
    body: &str,
    server: &str,
    date: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + body.len());
    let _ = write!(
        VecWriter(&mut out),
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        out.extend_from_slice(b"content-type: text/plain\r\n");
    }
    push_header(&mut out, "server", server.as_bytes());
    push_header(&mut out, "date", date);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
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
                path: "/y",
                host_rewrite: None,
                use_remote_address: false,
                peer_ip: "127.0.0.1",
                request_id: Some(b"rid"),
                timeout_ms: Some(b"15000"),
                via: b"1.1 nuncio-x",
                websocket: false,
            },
        );
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "GET /y HTTP/1.1\r\nHost: a\r\nX-Keep: 2\r\nVia: 1.1 other\r\nx-forwarded-proto: http\r\nx-request-id: rid\r\nx-envoy-expected-rq-timeout-ms: 15000\r\nvia: 1.1 nuncio-x\r\n\r\n"
        );
    }

    #[test]
    fn response_rewrite() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: up\r\nTransfer-Encoding: chunked\r\nKeep-Alive: x\r\nX-A: 1\r\n\r\n";
        let r = parse_response(raw, 100, 65536).unwrap().unwrap();
        let mut out = Vec::new();
        downstream_response(
            &mut out,
            &r,
            "nuncio",
            Some(3),
            BodyOut::Chunked,
            false,
            false,
            false,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nserver: nuncio\r\nx-envoy-upstream-service-time: 3\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }
}
