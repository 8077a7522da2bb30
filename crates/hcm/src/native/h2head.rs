//! The client's HTTP/2 response head, HPACK-encoded straight from the
//! upstream's HTTP/1.1 header bytes (no `HeaderMap` in between), and the
//! decimal formatting it needs.

use nuncio_h1::ResponseHead;
use nuncio_h2::hpack;

use super::head;

/// A buffer for [`fmt_u64`].
pub(crate) fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// Formats `n` in decimal into `buf`.
pub(crate) fn fmt_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The client's response head from the upstream's, HPACK-encoded onto
/// `out` straight from the upstream's header bytes: hop-by-hop and
/// connection-specific headers removed (HTTP/2 forbids them), `server`
/// and `x-envoy-upstream-service-time` set. Returns the status sent.
pub(super) fn downstream_head(
    r: &ResponseHead<'_>,
    server: &str,
    service_ms: Option<u64>,
    upgraded: bool,
    edits: Option<&nuncio_filters::Edits>,
    out: &mut Vec<u8>,
) -> u16 {
    let edits = edits.filter(|e| !e.is_empty());
    let status = if upgraded { 200 } else { r.status };
    hpack::encode_status(out, status);
    let listed = head::connection_listed(&r.headers);
    let (mut has_date, mut server_sent) = (false, false);
    for (n, v) in &r.headers {
        has_date |= n.eq_ignore_ascii_case("date");
        if n.eq_ignore_ascii_case("server") {
            // Replaced where the upstream put it, as Envoy does.
            if !server_sent {
                server_sent = true;
                hpack::encode_field(out, b"server", server.as_bytes());
            }
            continue;
        }
        let skip = head::hop_by_hop(n, b"")
            || n.eq_ignore_ascii_case("transfer-encoding")
            || (upgraded && n.eq_ignore_ascii_case("sec-websocket-accept"))
            // Envoy sets its own (a previous hop's is replaced).
            || (service_ms.is_some() && n.eq_ignore_ascii_case("x-envoy-upstream-service-time"))
            || edits.is_some_and(|e| e.removes(n))
            || (!listed.is_empty() && listed.iter().any(|l| l.eq_ignore_ascii_case(n.as_bytes())));
        if !skip {
            hpack::encode_field(out, n.as_bytes(), v);
        }
    }
    if let Some(ms) = service_ms {
        let mut buf = itoa_buf();
        hpack::encode_field(out, b"x-envoy-upstream-service-time", fmt_u64(&mut buf, ms));
    }
    if !has_date {
        let mut d = Vec::with_capacity(29);
        super::date::push_now(&mut d);
        hpack::encode_field(out, b"date", &d);
    }
    if !server_sent {
        hpack::encode_field(out, b"server", server.as_bytes());
    }
    for (n, v) in edits.into_iter().flat_map(nuncio_filters::Edits::added) {
        hpack::encode_field(out, n.as_bytes(), v.as_bytes());
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_h1::parse_response;

    fn decode(block: &[u8]) -> nuncio_h2::Block {
        let mut b = nuncio_h2::Block::new();
        hpack::Decoder::new(4096)
            .decode(block, &mut b, 1 << 20)
            .unwrap();
        b
    }

    #[test]
    fn downstream_head_drops_what_http2_forbids() {
        let raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, x-hop\r\nKeep-Alive: timeout=5\r\n\
Transfer-Encoding: chunked\r\nX-Hop: 1\r\nTE: trailers\r\nServer: origin\r\nX-Kept: yes\r\nUpgrade: h2c\r\n\r\n";
        let r = parse_response(raw, 32, 4096).unwrap().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            downstream_head(&r, "envoy", Some(7), false, None, &mut out),
            200
        );
        let h = decode(&out);
        for gone in [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "x-hop",
            "te",
            "upgrade",
        ] {
            assert!(h.get(gone).is_none(), "{gone} kept");
        }
        assert_eq!(h.get(":status"), Some(&b"200"[..]));
        assert_eq!(h.get("x-kept"), Some(&b"yes"[..]));
        assert_eq!(h.get("server"), Some(&b"envoy"[..]));
        assert_eq!(h.iter().filter(|(n, _)| *n == b"server").count(), 1);
        assert_eq!(h.get("x-envoy-upstream-service-time"), Some(&b"7"[..]));
    }

    #[test]
    fn an_accepted_websocket_is_a_200_without_its_h1_handshake_headers() {
        let raw =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let r = parse_response(raw, 32, 4096).unwrap().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            downstream_head(&r, "envoy", None, true, None, &mut out),
            200
        );
        let h = decode(&out);
        assert_eq!(h.get(":status"), Some(&b"200"[..]));
        assert!(h.get("sec-websocket-accept").is_none());
        assert!(h.get("upgrade").is_none());
        assert!(h.get("x-envoy-upstream-service-time").is_none());
    }

    #[test]
    fn decimal_formatting() {
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, 0), b"0");
        assert_eq!(fmt_u64(&mut b, 1234567), b"1234567");
        assert_eq!(fmt_u64(&mut b, u64::MAX), b"18446744073709551615");
    }
}
