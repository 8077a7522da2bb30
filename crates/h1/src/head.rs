//! Message heads: httparse does the tokenising; this module adds the rules
//! a proxy needs (limits, line endings, Host, connection options).

use std::mem::MaybeUninit;

use crate::rules::{is_known_method, valid_authority};
use crate::H1Error;

/// Header slots parsed into on the stack (uninitialised, so free); more
/// than this use the heap.
const STACK_HEADERS: usize = 128;

/// Size limits for request heads.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest sum of header name and value bytes (Envoy's
    /// `max_request_headers_kb`).
    pub max_header_bytes: usize,
    /// Most header fields (Envoy's `max_headers_count`).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 60 * 1024,
            max_headers: 100,
        }
    }
}

/// A parsed request head, borrowing the buffer.
#[derive(Debug)]
pub struct RequestHead<'b> {
    /// Method.
    pub method: &'b str,
    /// Request target: as sent in origin form (or `*`, or a CONNECT's
    /// authority); the path and query of an absolute-form target.
    pub target: &'b str,
    /// The authority of an absolute-form target (`GET http://a/x`): it
    /// picks the virtual host and replaces the Host header upstream, as
    /// in Envoy.
    pub authority: Option<&'b [u8]>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Header fields in order.
    pub headers: Vec<(&'b str, &'b [u8])>,
    /// Bytes of the head, including the empty line.
    pub len: usize,
    /// The authority the request is for: an absolute-form target's, else
    /// the Host header's (trailing whitespace trimmed), if any.
    pub host: Option<&'b [u8]>,
    /// `Connection: close` (or HTTP/1.0 without keep-alive).
    pub close: bool,
    /// `Connection: upgrade` with an `Upgrade` header.
    pub upgrade: Option<&'b [u8]>,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

impl RequestHead<'_> {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A parsed response head, borrowing the buffer.
#[derive(Debug)]
pub struct ResponseHead<'b> {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'b str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Header fields in order.
    pub headers: Vec<(&'b str, &'b [u8])>,
    /// Bytes of the head, including the empty line.
    pub len: usize,
    /// The peer will close after this response.
    pub close: bool,
}

impl ResponseHead<'_> {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// The length of the head at the start of `buf` if its end (an empty
/// line, CRLF or bare LF) has arrived, scanning from `from`.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    for at in memchr::memchr_iter(b'\n', &buf[start..]) {
        let at = start + at;
        if at >= 1 && buf[at - 1] == b'\n' {
            return Some(at + 1);
        }
        if at >= 2 && buf[at - 1] == b'\r' && buf[at - 2] == b'\n' {
            return Some(at + 1);
        }
    }
    None
}

/// Every LF in a head must follow a CR. (A CR not followed by LF is
/// already refused by httparse, in every position; the `refusals` test
/// holds both cases.)
///
/// A SIMD search (a head has a handful of line ends) instead of a byte
/// loop: the loop cost 3,400 instructions per proxied request (request
/// and response head), the search about 300 (callgrind,
/// `bash bench/profile.sh`).
fn check_line_endings(head: &[u8]) -> Result<(), H1Error> {
    for at in memchr::memchr_iter(b'\n', head) {
        if at == 0 || head[at - 1] != b'\r' {
            return Err(H1Error::Bad("bare CR or LF"));
        }
    }
    Ok(())
}

fn trim(v: &[u8]) -> &[u8] {
    let end = v
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .map_or(0, |e| e + 1);
    let start = v[..end]
        .iter()
        .position(|c| *c != b' ' && *c != b'\t')
        .unwrap_or(end);
    &v[start..end]
}

fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|c| *c == b',').map(trim).filter(|t| !t.is_empty())
}

fn map_err(e: httparse::Error) -> H1Error {
    match e {
        httparse::Error::TooManyHeaders => H1Error::TooLarge,
        httparse::Error::Version => H1Error::Bad("bad HTTP version"),
        httparse::Error::Token => H1Error::Bad("bad token"),
        httparse::Error::HeaderName => H1Error::Bad("bad header name"),
        httparse::Error::HeaderValue => H1Error::Bad("bad header value"),
        httparse::Error::NewLine => H1Error::Bad("bad line ending"),
        httparse::Error::Status => H1Error::Bad("bad status"),
    }
}

/// Parses a request head at the start of `buf`. `Ok(None)` means more
/// bytes are needed (and `buf` is still within the limits).
pub fn parse_request<'b>(
    buf: &'b [u8],
    limits: &Limits,
) -> Result<Option<RequestHead<'b>>, H1Error> {
    if limits.max_headers <= STACK_HEADERS {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        parse_request_in(buf, limits, &mut slots[..limits.max_headers])
    } else {
        let mut slots = vec![MaybeUninit::<httparse::Header<'_>>::uninit(); limits.max_headers];
        parse_request_in(buf, limits, &mut slots)
    }
}

fn parse_request_in<'b>(
    buf: &'b [u8],
    limits: &Limits,
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<RequestHead<'b>>, H1Error> {
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(buf, slots).map_err(|e| {
        if e == httparse::Error::Version && names_another_version(buf) {
            H1Error::UnsupportedVersion
        } else {
            map_err(e)
        }
    });
    let len = match parsed? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            // Room for the request line and the CRLFs of every header.
            if buf.len() > limits.max_header_bytes + 8 * 1024 + 4 * limits.max_headers {
                return Err(H1Error::TooLarge);
            }
            return Ok(None);
        }
    };
    check_line_endings(&buf[..len])?;
    let method = req.method.ok_or(H1Error::Bad("no method"))?;
    let target = req.path.ok_or(H1Error::Bad("no request target"))?;
    let minor = req.version.ok_or(H1Error::Bad("no version"))?;
    if target.contains('#') {
        return Err(H1Error::Fragment);
    }
    if !is_known_method(method) {
        return Err(H1Error::Bad("unknown method"));
    }
    let (target, authority) = split_target(method, target)?;
    let mut headers = Vec::with_capacity(req.headers.len());
    // The request line counts toward the limit, as in Envoy (its :method
    // and :path are headers there).
    let (mut bytes, mut host, mut hosts) = (method.len() + target.len(), None, 0);
    let (mut close, mut keep_alive, mut conn_upgrade, mut upgrade, mut expect_continue) =
        (minor == 0, false, false, None, false);
    for h in req.headers.iter() {
        bytes += h.name.len() + h.value.len();
        let n = h.name;
        if n.eq_ignore_ascii_case("host") {
            hosts += 1;
            let v = trim(h.value);
            // An empty Host is valid (RFC 9112 3.2: no authority).
            if !v.is_empty() && !valid_authority(v) {
                return Err(H1Error::Bad("invalid Host header"));
            }
            host = Some(v);
        } else if n.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if t.eq_ignore_ascii_case(b"upgrade") {
                    conn_upgrade = true;
                }
            }
        } else if n.eq_ignore_ascii_case("upgrade") {
            upgrade = Some(trim(h.value));
        } else if n.eq_ignore_ascii_case("expect") {
            expect_continue = trim(h.value).eq_ignore_ascii_case(b"100-continue");
        }
        headers.push((h.name, h.value));
    }
    if bytes > limits.max_header_bytes {
        return Err(H1Error::TooLarge);
    }
    if hosts > 1 {
        return Err(H1Error::Bad("more than one Host header"));
    }
    if hosts == 0 && minor == 1 && authority.is_none() {
        return Err(H1Error::NoHost);
    }
    if minor == 0 && keep_alive {
        close = false;
    }
    Ok(Some(RequestHead {
        method,
        target,
        minor,
        headers,
        len,
        host: authority.or(host),
        authority,
        close,
        upgrade: if conn_upgrade && minor == 1 {
            upgrade
        } else {
            None
        },
        expect_continue,
    }))
}

/// Whether the request line at the start of `buf` ends in a version
/// other than HTTP/1.x's two, or in none (HTTP/0.9): Envoy answers those
/// with 426.
fn names_another_version(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|b| *b == b' ').filter(|p| !p.is_empty());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), None) => true,
        (Some(_), Some(_), Some(v)) => {
            // `HTTP/d.d`, but not one of the two this parser serves.
            v.len() == 8
                && v.starts_with(b"HTTP/")
                && v[5].is_ascii_digit()
                && v[6] == b'.'
                && v[7].is_ascii_digit()
                && v != b"HTTP/1.1"
                && v != b"HTTP/1.0"
        }
        _ => false,
    }
}

/// Checks what has arrived of a request head that is not complete yet,
/// so a client that can never send a valid head is answered at once, as
/// Envoy answers it, instead of when `request_headers_timeout` fires: a
/// method with a byte no method has (a TLS ClientHello on a plain port),
/// or a complete request line of another HTTP version (HTTP/0.9's
/// `GET /`, HTTP/1.2).
pub fn check_partial_request(buf: &[u8]) -> Result<(), H1Error> {
    let method_end = buf.iter().position(|b| *b == b' ').unwrap_or(buf.len());
    let is_tchar = |b: &u8| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            )
    };
    if !buf[..method_end].iter().all(is_tchar) {
        return Err(H1Error::Bad("bad method"));
    }
    if buf.contains(&b'\n') && names_another_version(buf) {
        return Err(H1Error::UnsupportedVersion);
    }
    Ok(())
}

/// Splits a request target by its form (RFC 9112 3.2): origin form as
/// it is; absolute form into its path (`/` when empty) and authority; `*`
/// only for OPTIONS and authority form only for CONNECT. Only visible
/// ASCII may appear: the target goes into an upstream's request line.
fn split_target<'b>(method: &str, target: &'b str) -> Result<(&'b str, Option<&'b [u8]>), H1Error> {
    if !target.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(H1Error::Bad("request target is not visible ASCII"));
    }
    if method == "CONNECT" {
        return if valid_authority(target.as_bytes()) {
            Ok((target, None))
        } else {
            Err(H1Error::Bad("invalid CONNECT target"))
        };
    }
    if target.starts_with('/') || (target == "*" && method == "OPTIONS") {
        return Ok((target, None));
    }
    let lower = |n: usize| target.get(..n).map(str::to_ascii_lowercase);
    let rest = if lower(7).as_deref() == Some("http://") {
        &target[7..]
    } else if lower(8).as_deref() == Some("https://") {
        &target[8..]
    } else {
        return Err(H1Error::Bad(
            "request target is not in origin or absolute form",
        ));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if !valid_authority(authority.as_bytes()) {
        return Err(H1Error::Bad("invalid authority in request target"));
    }
    // A query without a path (`http://a?q`) keeps its query; the path is
    // then `/`, which needs a byte the buffer does not have: refuse it
    // rather than allocate (no client sends it).
    match path.as_bytes().first() {
        None => Ok(("/", Some(authority.as_bytes()))),
        Some(b'/') => Ok((path, Some(authority.as_bytes()))),
        _ => Err(H1Error::Bad(
            "absolute-form target with a query but no path",
        )),
    }
}

/// Parses a response head at the start of `buf`; `Ok(None)` means more
/// bytes are needed.
pub fn parse_response<'b>(
    buf: &'b [u8],
    max_headers: usize,
    max_bytes: usize,
) -> Result<Option<ResponseHead<'b>>, H1Error> {
    if max_headers <= STACK_HEADERS {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        parse_response_in(buf, max_bytes, &mut slots[..max_headers])
    } else {
        let mut slots = vec![MaybeUninit::<httparse::Header<'_>>::uninit(); max_headers];
        parse_response_in(buf, max_bytes, &mut slots)
    }
}

fn parse_response_in<'b>(
    buf: &'b [u8],
    max_bytes: usize,
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<ResponseHead<'b>>, H1Error> {
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, slots)
        .map_err(map_err)?
    {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial if buf.len() > max_bytes => return Err(H1Error::TooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    // No line-ending check here: a response head is rebuilt line by line
    // with CRLF before it reaches the client, so a bare LF from an
    // upstream (which RFC 9112 lets a recipient accept) cannot smuggle
    // anything; a bare CR is still refused by httparse.
    let status = resp.code.ok_or(H1Error::Bad("no status"))?;
    let minor = resp.version.ok_or(H1Error::Bad("no version"))?;
    let mut close = minor == 0;
    let mut headers = Vec::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && minor == 0 {
                    close = false;
                }
            }
        }
        headers.push((h.name, h.value));
    }
    Ok(Some(ResponseHead {
        status,
        reason: resp.reason.unwrap_or(""),
        minor,
        headers,
        len,
        close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &[u8]) -> Result<Option<RequestHead<'_>>, H1Error> {
        parse_request(s, &Limits::default())
    }

    #[test]
    fn simple_get() {
        let r = req(b"GET /a?b HTTP/1.1\r\nHost: x \r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\nrest").unwrap().unwrap();
        assert_eq!((r.method, r.target, r.minor), ("GET", "/a?b", 1));
        assert_eq!(r.host, Some(&b"x"[..]));
        assert_eq!(r.upgrade, Some(&b"websocket"[..]));
        assert!(!r.close);
        assert_eq!(r.len, 84);
        assert_eq!(r.get("UPGRADE"), Some(&b"websocket"[..]));
    }

    #[test]
    fn target_forms() {
        let r = req(b"GET http://Ex.com:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.target, "/p?q");
        assert_eq!(r.authority, Some(&b"Ex.com:81"[..]));
        assert_eq!(r.host, Some(&b"Ex.com:81"[..]));
        let r = req(b"GET HTTPS://a HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!((r.target, r.host), ("/", Some(&b"a"[..])));
        let r = req(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.target, r.authority), ("*", None));
        let r = req(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.target, "a:443");
        // HTTP/1.0 may leave Host out; the connection manager decides.
        assert_eq!(req(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap().host, None);
    }

    #[test]
    fn request_line_counts_toward_the_limit() {
        let l = Limits {
            max_header_bytes: 40,
            max_headers: 10,
        };
        let long = |n: usize| {
            let mut r = b"GET /".to_vec();
            r.extend(std::iter::repeat_n(b'a', n));
            r.extend_from_slice(b" HTTP/1.1\r\nHost: ab\r\nX: 123456\r\n\r\n");
            r
        };
        // GET + /aaa.. + host + ab + x + 123456 = 3 + 1 + n + 4 + 2 + 1 + 6.
        assert!(parse_request(&long(23), &l).unwrap().is_some());
        assert_eq!(parse_request(&long(24), &l).unwrap_err(), H1Error::TooLarge);
    }

    #[test]
    fn partial_heads_that_cannot_become_requests() {
        assert!(check_partial_request(b"GET /a HT").is_ok());
        assert!(check_partial_request(b"GET / HTTP/1.1\r\nHost: a").is_ok());
        assert!(check_partial_request(b"").is_ok());
        assert_eq!(
            check_partial_request(b"\x16\x03\x01\x02\x00\x01"),
            Err(H1Error::Bad("bad method"))
        );
        assert_eq!(
            check_partial_request(b"GET /\r\n"),
            Err(H1Error::UnsupportedVersion)
        );
        assert_eq!(
            check_partial_request(b"GET / HTTP/1.2\r\n"),
            Err(H1Error::UnsupportedVersion)
        );
    }

    #[test]
    fn finds_head_end() {
        assert_eq!(
            head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 0),
            Some(27)
        );
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: a\n\n", 0), Some(24));
        let b = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(head_end(b, 25), Some(27));
    }

    #[test]
    fn partial_needs_more() {
        assert!(req(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
    }

    #[test]
    fn http10_defaults_to_close() {
        assert!(req(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap().close);
        assert!(
            !req(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap()
                .unwrap()
                .close
        );
    }

    #[test]
    fn refusals() {
        let bad = |s: &[u8]| req(s).unwrap_err();
        assert_eq!(bad(b"GET / HTTP/1.1\r\n\r\n"), H1Error::NoHost);
        assert_eq!(H1Error::NoHost.body(), "");
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n").body(),
            "Bad Request"
        );
        for target in [
            &b"abc"[..],
            b"/\xc3\xa9",
            b"*",
            b"ftp://a/b",
            b"http://a b/",
            b"http://a?q",
            b"http:///x",
        ] {
            let mut r = b"GET ".to_vec();
            r.extend_from_slice(target);
            r.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(req(&r).map(|_| ()).unwrap_err().status(), 400, "{target:?}");
        }
        assert_eq!(bad(b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n").status(), 400);
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            H1Error::Bad("more than one Host header")
        );
        assert_eq!(bad(b"GET / HTTP/1.1\nHost: a\n\n").status(), 400);
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n").status(),
            400
        );
        assert_eq!(bad(b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n").status(), 400);
        // Bare LF is tolerated in responses (the head is rebuilt with CRLF).
        let r = parse_response(b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n", 10, 1000);
        assert_eq!(r.unwrap().unwrap().headers.len(), 2);
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nA: b\rC: d\r\n\r\n", 10, 1000).is_err());
        assert!(parse_response(b"HTTP/1.1 200 O\rK\r\n\r\n", 10, 1000).is_err());
        assert_eq!(bad(b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n").status(), 400);
        assert_eq!(bad(b"GET / HTTP/1.1\rHost: a\r\n\r\n").status(), 400);
        assert_eq!(bad(b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n").status(), 400);
        assert_eq!(bad(b"GET / HTTP/1.1\r\nHo\rst: a\r\n\r\n").status(), 400);
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n").status(),
            400
        );
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n").status(),
            400
        );
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n  folded\r\n\r\n").status(),
            400
        );
        assert_eq!(bad(b"GET / HTTP/1.32\r\nHost: a\r\n\r\n").status(), 400);
        assert_eq!(bad(b"G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n").status(), 400);
        assert_eq!(
            bad(b"GET /#frag HTTP/1.1\r\nHost: a\r\n\r\n"),
            H1Error::Fragment
        );
        assert_eq!(
            bad(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
            H1Error::UnsupportedVersion
        );
        assert_eq!(bad(b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n").status(), 400);
        let empty_host = req(b"GET / HTTP/1.1\r\nHost: \r\n\r\n").unwrap().unwrap();
        assert_eq!(empty_host.host, Some(&b""[..]));
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nBad Name: x\r\nHost: a\r\n\r\n").status(),
            400
        );
    }

    #[test]
    fn limits() {
        let l = Limits {
            max_header_bytes: 20,
            max_headers: 3,
        };
        assert!(
            parse_request(b"GET / HTTP/1.1\r\nHost: a\r\nX: 1234567890\r\n\r\n", &l)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            parse_request(
                b"GET / HTTP/1.1\r\nHost: a\r\nX: 1234567890123456\r\n\r\n",
                &l
            )
            .unwrap_err(),
            H1Error::TooLarge
        );
        assert_eq!(
            parse_request(
                b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\n\r\n",
                &l
            )
            .unwrap_err(),
            H1Error::TooLarge
        );
        let endless = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 80_000]].concat();

        assert_eq!(req(&endless).unwrap_err(), H1Error::TooLarge);
    }

    #[test]
    fn responses() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            100,
            65536,
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.status, r.reason, r.close), (200, "OK", true));
        assert_eq!(r.get("content-length"), Some(&b"2"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n", 100, 65536)
            .unwrap()
            .is_none());
        assert!(parse_response(b"this is not http\r\n\r\n", 100, 65536).is_err());
    }
}
