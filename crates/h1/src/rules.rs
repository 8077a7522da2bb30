//! Character and token rules shared by both HTTP versions: what a valid
//! authority (Host, `:authority`, an absolute-form target's host) and a
//! method Envoy's codec accepts look like.

/// RFC 3986 authority characters (userinfo, host, port, IP literals and
/// percent-escapes), non-empty. The value becomes an upstream's `Host` and
/// picks the virtual host, so anything else (a space, `/`, a control
/// byte, non-ASCII) is refused, as Envoy refuses it.
pub fn valid_authority(a: &[u8]) -> bool {
    !a.is_empty()
        && a.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                        | b'['
                        | b']'
                        | b'%'
                )
        })
}

/// The methods Envoy's HTTP/1 codec knows (it answers any other with 400
/// unless custom methods are allowed): the registered methods its parser
/// has always accepted.
const KNOWN_METHODS: [&str; 38] = [
    "ACL",
    "BIND",
    "CHECKOUT",
    "CONNECT",
    "COPY",
    "DELETE",
    "GET",
    "HEAD",
    "LINK",
    "LOCK",
    "M-SEARCH",
    "MERGE",
    "MKACTIVITY",
    "MKCALENDAR",
    "MKCOL",
    "MOVE",
    "MSEARCH",
    "NOTIFY",
    "OPTIONS",
    "PATCH",
    "POST",
    "PROPFIND",
    "PROPPATCH",
    "PURGE",
    "PUT",
    "REBIND",
    "REPORT",
    "SEARCH",
    "SOURCE",
    "SUBSCRIBE",
    "TRACE",
    "UNBIND",
    "UNLINK",
    "UNLOCK",
    "UNSUBSCRIBE",
    "PRI",
    "BASELINE-CONTROL",
    "VERSION-CONTROL",
];

/// Whether `m` is a method Envoy's HTTP/1 codec accepts (case-sensitive,
/// as methods are).
pub fn is_known_method(m: &str) -> bool {
    match m {
        // The common ones without a scan.
        "GET" | "POST" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "PATCH" => true,
        _ => KNOWN_METHODS.contains(&m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for ok in [
            &b"a"[..],
            b"example.com:8080",
            b"X.COM.",
            b"[::1]:80",
            b"u@h",
            b"a%20b",
        ] {
            assert!(valid_authority(ok), "{ok:?}");
        }
        for bad in [
            &b""[..],
            b"a b",
            b"a/b",
            b"a\x00b",
            b"\xc3\xa9",
            b"a\tb",
            b"a?b",
            b"a#b",
        ] {
            assert!(!valid_authority(bad), "{bad:?}");
        }
    }

    #[test]
    fn methods() {
        for m in ["GET", "PROPFIND", "M-SEARCH", "PURGE", "CONNECT"] {
            assert!(is_known_method(m), "{m}");
        }
        for m in ["FOO", "get", "G@T", ""] {
            assert!(!is_known_method(m), "{m}");
        }
    }
}
