//! Local replies as Envoy sends them, described once and written by each
//! codec: the status, the text body, and, for a gRPC request, the gRPC
//! form (HTTP 200, `grpc-status` from Envoy's HTTP-to-gRPC table and the
//! text as `grpc-message`), so a gRPC client learns why its call failed.

use std::borrow::Cow;

/// Whether a request with this `content-type` is gRPC for local replies
/// (`application/grpc`, `application/grpc+proto`, ...; not gRPC-Web,
/// which Envoy answers in plain HTTP).
pub fn is_grpc(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let base = b"application/grpc";
    ct.len() >= base.len()
        && ct[..base.len()].eq_ignore_ascii_case(base)
        && matches!(ct.get(base.len()), None | Some(b'+' | b';'))
}

/// Envoy's map from a local reply's HTTP status to a gRPC status
/// (`Grpc::Utility::httpToGrpcStatus`).
pub fn grpc_status(http: u16) -> u8 {
    match http {
        400 => 13,                   // INTERNAL
        401 => 16,                   // UNAUTHENTICATED
        403 => 7,                    // PERMISSION_DENIED
        404 => 12,                   // UNIMPLEMENTED
        429 | 502 | 503 | 504 => 14, // UNAVAILABLE
        _ => 2,                      // UNKNOWN
    }
}

/// `grpc-message` percent-encoding (the gRPC HTTP/2 spec): bytes outside
/// visible ASCII and space, and `%`, become `%XX`.
pub fn grpc_message(text: &str) -> Cow<'_, str> {
    let plain = |b: u8| (0x20..=0x7e).contains(&b) && b != b'%';
    if text.bytes().all(plain) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

/// What a local reply must know of the request it answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestKind {
    /// gRPC ([`is_grpc`]): answer in gRPC form.
    pub grpc: bool,
    /// HEAD: the head only, never a body.
    pub head: bool,
    /// An accepted HTTP/1.0 request: an HTTP/1.0 status line.
    pub http10: bool,
}

/// One local reply: what each codec writes, in Envoy's header order.
#[derive(Debug, Clone, Copy)]
pub struct LocalReply<'a> {
    /// The HTTP status Envoy's router or connection manager chose.
    pub status: u16,
    /// The text body (`text/plain`), or the `grpc-message`.
    pub body: &'a str,
    /// The request was gRPC: answer in gRPC form.
    pub grpc: bool,
    /// The request was HEAD: no body goes out (its length still does).
    pub head: bool,
    /// Answer with an HTTP/1.0 status line.
    pub http10: bool,
    /// The `grpc-status` a filter chose (a fault's `grpc_status`), instead
    /// of the one Envoy's table gives the HTTP status.
    pub grpc_status: Option<u8>,
}

impl<'a> LocalReply<'a> {
    /// A reply of `status` with text `body` to a request of `kind`.
    pub fn new(status: u16, body: &'a str, kind: RequestKind) -> Self {
        LocalReply {
            status,
            body,
            grpc: kind.grpc,
            head: kind.head,
            http10: kind.http10,
            grpc_status: None,
        }
    }

    /// The status on the wire: 200 for gRPC (the error is in grpc-status).
    pub fn wire_status(&self) -> u16 {
        if self.grpc {
            200
        } else {
            self.status
        }
    }

    /// The body on the wire: none for gRPC (a trailers-only response) or
    /// for HEAD.
    pub fn wire_body(&self) -> &'a str {
        if self.grpc || self.head {
            ""
        } else {
            self.body
        }
    }

    /// Whether an HTTP/1.1 writer must end the head with `content-length:
    /// 0` (Envoy's codec adds it last when the reply has no length of its
    /// own: an empty body, or gRPC's trailers-only form).
    pub fn trailing_zero_length(&self) -> bool {
        self.grpc || self.body.is_empty()
    }

    /// The fields that come before `date` and `server`, in Envoy's order:
    /// `content-length` and `content-type` for a body, or for gRPC
    /// `content-type`, `grpc-status` and `grpc-message`.
    pub fn fields(&self, mut add: impl FnMut(&[u8], &[u8])) {
        if self.grpc {
            add(b"content-type", b"application/grpc");
            let status = self.grpc_status.unwrap_or_else(|| grpc_status(self.status));
            let mut digits = [0u8; 2];
            let n = if status >= 10 {
                digits = [b'0' + status / 10, b'0' + status % 10];
                2
            } else {
                digits[0] = b'0' + status;
                1
            };
            add(b"grpc-status", &digits[..n]);
            if !self.body.is_empty() {
                add(b"grpc-message", grpc_message(self.body).as_bytes());
            }
        } else if !self.body.is_empty() {
            let mut buf = crate::native::h2head::itoa_buf();
            add(
                b"content-length",
                crate::native::h2head::fmt_u64(&mut buf, self.body.len() as u64),
            );
            add(b"content-type", b"text/plain");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_requests() {
        for ct in [
            &b"application/grpc"[..],
            b"application/grpc+proto",
            b"Application/GRPC; x=1",
        ] {
            assert!(is_grpc(Some(ct)), "{ct:?}");
        }
        for ct in [
            &b"application/grpc-web"[..],
            b"application/grpcx",
            b"text/plain",
            b"",
        ] {
            assert!(!is_grpc(Some(ct)), "{ct:?}");
        }
        assert!(!is_grpc(None));
    }

    #[test]
    fn envoys_status_table() {
        assert_eq!(grpc_status(503), 14);
        assert_eq!(grpc_status(504), 14);
        assert_eq!(grpc_status(404), 12);
        assert_eq!(grpc_status(403), 7);
        assert_eq!(grpc_status(400), 13);
        assert_eq!(grpc_status(500), 2);
    }

    fn collect(r: &LocalReply<'_>) -> Vec<(String, String)> {
        let mut v = Vec::new();
        r.fields(|n, val| {
            v.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(val).into_owned(),
            ))
        });
        v
    }

    #[test]
    fn fields_in_envoys_order() {
        let plain = LocalReply::new(503, "no healthy upstream", RequestKind::default());
        assert_eq!(plain.wire_status(), 503);
        assert_eq!(
            collect(&plain),
            [
                ("content-length".into(), "19".into()),
                ("content-type".into(), "text/plain".into())
            ]
        );
        let g = RequestKind {
            grpc: true,
            ..RequestKind::default()
        };
        let grpc = LocalReply::new(503, "no healthy upstream", g);
        assert_eq!((grpc.wire_status(), grpc.wire_body()), (200, ""));
        assert_eq!(
            collect(&grpc),
            [
                ("content-type".into(), "application/grpc".into()),
                ("grpc-status".into(), "14".into()),
                ("grpc-message".into(), "no healthy upstream".into())
            ]
        );
        let not_found = LocalReply::new(404, "", g);
        assert_eq!(collect(&not_found)[1].1, "12");
        assert_eq!(collect(&not_found).len(), 2);
        assert_eq!(collect(&LocalReply::new(500, "", g))[1].1, "2");
        // An empty plain reply has no length field of its own.
        let empty = LocalReply::new(404, "", RequestKind::default());
        assert!(collect(&empty).is_empty() && empty.trailing_zero_length());
        // HEAD: the length of the body that is not sent.
        let head = RequestKind {
            head: true,
            ..RequestKind::default()
        };
        let r = LocalReply::new(200, "abc", head);
        assert_eq!((r.wire_body(), collect(&r)[0].1.as_str()), ("", "3"));
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(grpc_message("plain text"), "plain text");
        assert_eq!(grpc_message("50%\né"), "50%25%0A%C3%A9");
    }
}
