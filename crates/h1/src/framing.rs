//! Where a message body ends (RFC 9112 section 6.3), decided strictly.

use crate::head::{RequestHead, ResponseHead};
use crate::H1Error;

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// How many Content-Length values a message may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lengths {
    /// One value (requests: Envoy refuses `5, 5` and repeated fields).
    One,
    /// Any number of equal values (responses, as RFC 9110 8.6 allows).
    Equal,
}

/// Parses every Content-Length field: plain decimal numbers (no sign, no
/// hex, no spaces inside), one or several equal ones as `rule` says.
fn parse_lengths(headers: &[(&str, &[u8])], rule: Lengths) -> Result<Option<u64>, H1Error> {
    let mut found: Option<u64> = None;
    for (n, v) in headers {
        if n.len() != 14 || !n.eq_ignore_ascii_case("content-length") {
            continue;
        }
        for part in v.split(|c| *c == b',') {
            let p = part.trim_ascii();
            // Digits only (no sign, no hex), at most 19 (fits u64).
            if p.is_empty() || p.len() > 19 {
                return Err(H1Error::Bad("malformed Content-Length"));
            }
            let mut n = 0u64;
            for c in p {
                if !c.is_ascii_digit() {
                    return Err(H1Error::Bad("malformed Content-Length"));
                }
                n = n * 10 + u64::from(c - b'0');
            }
            match found {
                Some(_) if rule == Lengths::One => {
                    return Err(H1Error::Bad("more than one Content-Length value"))
                }
                Some(f) if f != n => return Err(H1Error::Bad("differing Content-Length values")),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// A Transfer-Encoding field, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Te {
    /// Just `chunked`.
    Chunked,
    /// Ends in `chunked` after other codings (which we do not implement).
    OtherThenChunked,
    /// Does not end in `chunked`.
    NotChunked,
}

fn transfer_encoding(headers: &[(&str, &[u8])]) -> Option<Te> {
    let mut codings: Vec<&[u8]> = Vec::new();
    let mut seen = false;
    for (n, v) in headers {
        if n.len() == 17 && n.eq_ignore_ascii_case("transfer-encoding") {
            seen = true;
            codings.extend(
                v.split(|c| *c == b',')
                    .map(|t| t.trim_ascii())
                    .filter(|t| !t.is_empty()),
            );
        }
    }
    if !seen {
        return None;
    }
    Some(match codings.split_last() {
        Some((last, rest)) if last.eq_ignore_ascii_case(b"chunked") => {
            if rest.is_empty() {
                Te::Chunked
            } else {
                Te::OtherThenChunked
            }
        }
        _ => Te::NotChunked,
    })
}

/// The framing of a request body.
pub fn request_framing(h: &RequestHead<'_>) -> Result<Framing, H1Error> {
    let te = transfer_encoding(&h.headers);
    let cl = parse_lengths(&h.headers, Lengths::One)?;
    match (te, cl) {
        (Some(_), Some(_)) => Err(H1Error::Bad("both Content-Length and Transfer-Encoding")),
        (Some(_), None) if h.minor == 0 => Err(H1Error::Bad("Transfer-Encoding in HTTP/1.0")),
        (Some(Te::Chunked), None) => Ok(Framing::Chunked),
        // A coding other than chunked: Envoy answers 501 (RFC 9112 6.1),
        // as for codings before chunked.
        (Some(Te::NotChunked), None) => Err(H1Error::NotImplemented(
            "Transfer-Encoding does not end with chunked",
        )),
        // RFC 9112 6.1: a coding we do not understand: 501.
        (Some(Te::OtherThenChunked), None) => Err(H1Error::NotImplemented(
            "transfer coding other than chunked",
        )),
        (None, Some(0)) | (None, None) => Ok(Framing::Empty),
        (None, Some(n)) => Ok(Framing::Length(n)),
    }
}

/// The framing of a response body to a request with `method`.
pub fn response_framing(h: &ResponseHead<'_>, method: &str) -> Result<Framing, H1Error> {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&h.status)
        || h.status == 204
        || h.status == 304
    {
        return Ok(Framing::Empty);
    }
    let te = transfer_encoding(&h.headers);
    let cl = parse_lengths(&h.headers, Lengths::Equal)?;
    match (te, cl) {
        (Some(_), Some(_)) => Err(H1Error::Bad(
            "response with both Content-Length and Transfer-Encoding",
        )),
        (Some(Te::Chunked | Te::OtherThenChunked), None) => Ok(Framing::Chunked),
        (Some(Te::NotChunked), None) => Ok(Framing::UntilClose),
        (None, Some(0)) => Ok(Framing::Empty),
        (None, Some(n)) => Ok(Framing::Length(n)),
        (None, None) => Ok(Framing::UntilClose),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{parse_request, parse_response, Limits};

    fn rf(s: &str) -> Result<Framing, H1Error> {
        let buf = s.replace('\n', "\r\n");
        let h = parse_request(buf.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap();
        request_framing(&h)
    }

    #[test]
    fn request_rules() {
        assert_eq!(rf("GET / HTTP/1.1\nHost: a\n\n"), Ok(Framing::Empty));
        assert_eq!(
            rf("POST / HTTP/1.1\nHost: a\nContent-Length: 5\n\n"),
            Ok(Framing::Length(5))
        );
        // Envoy refuses a repeated or listed Content-Length, even equal.
        for twice in [
            "Content-Length: 5\nContent-Length: 5",
            "Content-Length: 5, 5",
            "Content-Length: 5,5",
        ] {
            let r = rf(&format!("POST / HTTP/1.1\nHost: a\n{twice}\n\n"));
            assert_eq!(r.map_err(|e| e.status()), Err(400), "{twice}");
        }
        assert_eq!(
            rf("POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n"),
            Ok(Framing::Chunked)
        );
        let te = |v: &str| {
            rf(&format!(
                "POST / HTTP/1.1\nHost: a\nTransfer-Encoding: {v}\n\n"
            ))
            .map_err(|e| e.status())
        };
        assert_eq!(te("gzip, chunked"), Err(501));
        assert_eq!(te("gzip"), Err(501));
        assert_eq!(te("identity"), Err(501));
        assert_eq!(te("chunked, gzip"), Err(501));
        for bad in ["+5", "-1", "0x10", "5 5", "", "1e3", "99999999999999999999"] {
            let r = rf(&format!(
                "POST / HTTP/1.1\nHost: a\nContent-Length: {bad}\n\n"
            ));
            assert_eq!(r.map_err(|e| e.status()), Err(400), "{bad}");
        }
        assert_eq!(
            rf("POST / HTTP/1.1\nHost: a\nContent-Length: 1\nContent-Length: 2\n\n")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            rf("POST / HTTP/1.1\nHost: a\nContent-Length: 1\nTransfer-Encoding: chunked\n\n")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            rf("POST / HTTP/1.0\nTransfer-Encoding: chunked\n\n")
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn response_rules() {
        let f = |s: &str, m: &str| {
            let buf = s.replace('\n', "\r\n");
            let h = parse_response(buf.as_bytes(), 100, 65536).unwrap().unwrap();
            response_framing(&h, m)
        };
        assert_eq!(
            f("HTTP/1.1 200 OK\nContent-Length: 3\n\n", "GET"),
            Ok(Framing::Length(3))
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\nContent-Length: 3\n\n", "HEAD"),
            Ok(Framing::Empty)
        );
        assert_eq!(f("HTTP/1.1 204 No Content\n\n", "GET"), Ok(Framing::Empty));
        assert_eq!(
            f("HTTP/1.1 304 Not Modified\nContent-Length: 9\n\n", "GET"),
            Ok(Framing::Empty)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", "GET"),
            Ok(Framing::Chunked)
        );
        assert_eq!(f("HTTP/1.1 200 OK\n\n", "GET"), Ok(Framing::UntilClose));
        // Equal repeated lengths are one length in a response.
        assert_eq!(
            f(
                "HTTP/1.1 200 OK\nContent-Length: 3\nContent-Length: 3\n\n",
                "GET"
            ),
            Ok(Framing::Length(3))
        );
        assert!(f(
            "HTTP/1.1 200 OK\nContent-Length: 3\nTransfer-Encoding: chunked\n\n",
            "GET"
        )
        .is_err());
    }
}
