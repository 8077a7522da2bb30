//! A request's header block checked against RFC 9113 section 8: the
//! pseudo-headers a request must and may have, lowercase names, no
//! connection-specific fields, `te` only as `trailers`, values without
//! control characters, and one agreed `content-length`. A block that
//! fails is a malformed request: the stream is reset and the request
//! never reaches the application.

use crate::hpack::Block;

/// A request head as the client sent it.
#[derive(Debug)]
pub struct Request {
    stream_id: u32,
    block: Block,
    /// Indices of :method, :scheme, :authority, :path, :protocol.
    pseudo: [Option<u16>; 5],
    /// Where the regular fields start.
    regular: usize,
    content_length: Option<u64>,
    end_stream: bool,
}

const METHOD: usize = 0;
const SCHEME: usize = 1;
const AUTHORITY: usize = 2;
const PATH: usize = 3;
const PROTOCOL: usize = 4;

/// Why a request is malformed (a stream error, PROTOCOL_ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed(pub &'static str);

/// A token character (RFC 9110 5.6.2) other than an uppercase letter.
fn is_tchar(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\''
        | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

/// Token characters allowed in a field name, lowercase only.
/// RFC 9113 8.2 for one regular field of a request or a response: a
/// lowercase token name, no control characters in the value, no
/// connection-specific field, one `content-length` (kept in
/// `content_length`).
pub(crate) fn check_field(
    n: &[u8],
    v: &[u8],
    content_length: &mut Option<u64>,
) -> Result<(), Malformed> {
    if !name_ok(n) {
        return Err(Malformed("invalid or uppercase field name"));
    }
    if !value_ok(v) {
        return Err(Malformed("control character in a field value"));
    }
    match n {
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade" => {
            Err(Malformed("connection-specific field"))
        }
        b"content-length" => {
            let n = parse_length(v).ok_or(Malformed("invalid content-length"))?;
            if content_length.replace(n).is_some_and(|old| old != n) {
                return Err(Malformed("conflicting content-length"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn name_ok(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|&b| is_tchar(b))
}

/// Field values: no control characters but tab, no DEL.
fn value_ok(v: &[u8]) -> bool {
    v.iter().all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')))
}

impl Request {
    /// Checks a decoded block; `connect_protocol` says whether we offered
    /// extended CONNECT (RFC 8441).
    pub(crate) fn new(
        stream_id: u32,
        block: Block,
        end_stream: bool,
        connect_protocol: bool,
    ) -> Result<Request, Malformed> {
        let mut pseudo = [None; 5];
        let mut regular = block.len();
        let mut content_length = None;
        for (i, (n, v)) in block.iter().enumerate() {
            if let Some(p) = n.strip_prefix(b":") {
                if regular != block.len() {
                    return Err(Malformed("pseudo-header after a regular field"));
                }
                let slot = match p {
                    b"method" => METHOD,
                    b"scheme" => SCHEME,
                    b"authority" => AUTHORITY,
                    b"path" => PATH,
                    b"protocol" if connect_protocol => PROTOCOL,
                    _ => return Err(Malformed("unknown pseudo-header")),
                };
                if pseudo[slot].replace(i as u16).is_some() {
                    return Err(Malformed("repeated pseudo-header"));
                }
                if !value_ok(v) {
                    return Err(Malformed("control character in a pseudo-header"));
                }
                continue;
            }
            if regular == block.len() {
                regular = i;
            }
            if n == b"te" && v != b"trailers" {
                return Err(Malformed("te other than trailers"));
            }
            check_field(n, v, &mut content_length)?;
        }
        let r = Request {
            stream_id,
            block,
            pseudo,
            regular,
            content_length,
            end_stream,
        };
        let Some(method) = r.pseudo_value(METHOD) else {
            return Err(Malformed("no :method"));
        };
        if !method
            .iter()
            .all(|&b| b.is_ascii_uppercase() || is_tchar(b))
            || method.is_empty()
        {
            return Err(Malformed("invalid :method"));
        }
        let connect = method == b"CONNECT";
        if connect && r.pseudo[PROTOCOL].is_none() {
            // Plain CONNECT: authority only (RFC 9113 8.5).
            if r.pseudo[AUTHORITY].is_none()
                || r.pseudo[SCHEME].is_some()
                || r.pseudo[PATH].is_some()
            {
                return Err(Malformed(
                    "CONNECT needs :authority and no :scheme or :path",
                ));
            }
        } else {
            if r.pseudo[PROTOCOL].is_some() && !connect {
                return Err(Malformed(":protocol without CONNECT"));
            }
            if r.pseudo[SCHEME].is_none() || r.pseudo_value(PATH).is_none_or(<[u8]>::is_empty) {
                return Err(Malformed("no :scheme or :path"));
            }
            // The path goes into an HTTP/1.1 request line: visible ASCII
            // only (a space would split the line), origin form or `*`.
            let path = r.pseudo_value(PATH).unwrap_or_default();
            let form_ok = path.starts_with(b"/") || (path == b"*" && method == b"OPTIONS");
            if !form_ok || !path.iter().all(|b| (0x21..=0x7e).contains(b)) {
                return Err(Malformed("invalid :path"));
            }
        }
        if let Some(a) = r.pseudo_value(AUTHORITY) {
            if !nuncio_h1::valid_authority(a) {
                return Err(Malformed("invalid :authority"));
            }
        }
        Ok(r)
    }

    fn pseudo_value(&self, slot: usize) -> Option<&[u8]> {
        self.pseudo[slot].map(|i| self.block.field(i as usize).1)
    }

    fn pseudo_str(&self, slot: usize) -> Option<&str> {
        self.pseudo_value(slot)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The stream the request came on.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// `:method`.
    pub fn method(&self) -> &str {
        self.pseudo_str(METHOD).unwrap_or("")
    }

    /// `:scheme`.
    pub fn scheme(&self) -> Option<&str> {
        self.pseudo_str(SCHEME)
    }

    /// `:authority`, when the client sent one.
    pub fn authority(&self) -> Option<&str> {
        self.pseudo_str(AUTHORITY)
    }

    /// `:path` (absent on a plain CONNECT).
    pub fn path(&self) -> Option<&str> {
        self.pseudo_str(PATH)
    }

    /// `:protocol` (extended CONNECT).
    pub fn protocol(&self) -> Option<&str> {
        self.pseudo_str(PROTOCOL)
    }

    /// The regular fields in order, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        (self.regular..self.block.len()).map(move |i| self.block.field(i))
    }

    /// The number of regular fields.
    pub fn header_count(&self) -> usize {
        self.block.len() - self.regular
    }

    /// The first value of a regular field (lowercase name).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// The declared body length.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// True when the HEADERS frame ended the stream (no body).
    pub fn is_end_stream(&self) -> bool {
        self.end_stream
    }

    /// Drops regular fields `keep` says no to.
    pub fn retain_headers(&mut self, mut keep: impl FnMut(&[u8], &[u8]) -> bool) {
        // Pseudo-headers come first and are always kept.
        let mut i = 0usize;
        let regular = self.regular;
        self.block.retain(|n, v| {
            let k = i < regular || keep(n, v);
            i += 1;
            k
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpack::{encode_field, Decoder};

    fn block(fields: &[(&str, &str)]) -> Block {
        let mut raw = Vec::new();
        for (n, v) in fields {
            // encode_field lowercases names; write uppercase ones raw.
            if n.bytes().any(|b| b.is_ascii_uppercase()) {
                raw.push(0x00);
                raw.push(n.len() as u8);
                raw.extend_from_slice(n.as_bytes());
                raw.push(v.len() as u8);
                raw.extend_from_slice(v.as_bytes());
            } else {
                encode_field(&mut raw, n.as_bytes(), v.as_bytes());
            }
        }
        let mut b = Block::new();
        Decoder::new(4096).decode(&raw, &mut b, 1 << 20).unwrap();
        b
    }

    const GET: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/x"),
        (":authority", "a"),
    ];

    fn check(extra: &[(&str, &str)]) -> Result<Request, Malformed> {
        let mut f = GET.to_vec();
        f.extend_from_slice(extra);
        Request::new(1, block(&f), true, true)
    }

    #[test]
    fn a_plain_get_is_accepted() {
        let r = check(&[("accept", "*/*"), ("content-length", "0")]).unwrap();
        assert_eq!(r.method(), "GET");
        assert_eq!(r.path(), Some("/x"));
        assert_eq!(r.authority(), Some("a"));
        assert_eq!(r.header("accept"), Some(&b"*/*"[..]));
        assert_eq!(r.header_count(), 2);
        assert_eq!(r.content_length(), Some(0));
    }

    #[test]
    fn malformed_requests_are_refused() {
        for bad in [
            vec![("X-Upper", "1")],
            vec![("connection", "keep-alive")],
            vec![("keep-alive", "1")],
            vec![("proxy-connection", "1")],
            vec![("upgrade", "h2c")],
            vec![("transfer-encoding", "chunked")],
            vec![("te", "gzip")],
            vec![("x", "a\nb")],
            vec![("x", "a\0b")],
            vec![(":path", "/again")],
            vec![(":status", "200")],
            vec![("content-length", "1"), ("content-length", "2")],
            vec![("content-length", "-1")],
            vec![(":path", "/a b")],
        ] {
            assert!(check(&bad).is_err(), "{bad:?} accepted");
        }
        assert!(check(&[("te", "trailers")]).is_ok());
        // A space in :path would split the upstream's request line.
        for (name, bad) in [
            (":path", "/a b"),
            (":path", "a"),
            (":path", "/\u{e9}"),
            (":authority", "a b"),
            (":authority", "a/b"),
        ] {
            let f: Vec<(&str, &str)> = GET
                .iter()
                .map(|&(n, v)| if n == name { (n, bad) } else { (n, v) })
                .collect();
            assert!(
                Request::new(1, block(&f), true, true).is_err(),
                "{name}: {bad:?} accepted"
            );
        }
        let f = [
            (":method", "OPTIONS"),
            (":scheme", "http"),
            (":path", "*"),
            (":authority", "a"),
        ];
        assert!(Request::new(1, block(&f), true, true).is_ok());
        // A pseudo-header after a regular field.
        let f = [
            (":method", "GET"),
            (":scheme", "http"),
            ("x", "1"),
            (":path", "/"),
        ];
        assert!(Request::new(1, block(&f), true, true).is_err());
        // No :path.
        let f = [(":method", "GET"), (":scheme", "http")];
        assert!(Request::new(1, block(&f), true, true).is_err());
    }

    #[test]
    fn connect_forms() {
        let plain = [(":method", "CONNECT"), (":authority", "h:443")];
        assert!(Request::new(1, block(&plain), false, true).is_ok());
        let ws = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", "/ws"),
            (":authority", "h"),
        ];
        let r = Request::new(1, block(&ws), false, true).unwrap();
        assert_eq!(r.protocol(), Some("websocket"));
        // :protocol is unknown unless extended CONNECT was offered.
        assert!(Request::new(1, block(&ws), false, false).is_err());
        let bad = [(":method", "CONNECT"), (":authority", "h"), (":path", "/")];
        assert!(Request::new(1, block(&bad), false, true).is_err());
    }

    #[test]
    fn retain_keeps_pseudo_headers() {
        let mut r = check(&[("a_b", "1"), ("c", "2")]).unwrap();
        r.retain_headers(|n, _| !n.contains(&b'_'));
        assert_eq!(r.header_count(), 1);
        assert_eq!(r.path(), Some("/x"));
        assert_eq!(r.header("c"), Some(&b"2"[..]));
    }
}
