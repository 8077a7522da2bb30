//! WebSocket across protocol versions. A client may ask with an HTTP/1.1
//! `Upgrade: websocket` or an HTTP/2 extended CONNECT (RFC 8441,
//! `:protocol websocket`); the upstream may speak either. The request and
//! the response are rewritten for the other side, so the blog's mesh
//! (HTTP/1.1 client → front proxy → h2c → sidecar → HTTP/1.1 echo) carries
//! `/ws` with no extra config.

use http::header::{self, HeaderValue};
use http::{request, response, Method, StatusCode, Version};
use nuncio_websocket::{accept_key, is_h1_websocket, is_h2_websocket, new_key};

/// How the client asked for the WebSocket.
#[derive(Debug, Clone)]
pub(crate) enum Downstream {
    /// HTTP/1.1 Upgrade, with its `Sec-WebSocket-Key`.
    H1 { key: Option<HeaderValue> },
    /// HTTP/2 extended CONNECT.
    H2,
}

/// The client's WebSocket request kind, if it is one.
pub(crate) fn websocket_kind<B>(req: &http::Request<B>) -> Option<Downstream> {
    let protocol = req
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(|p| p.as_str());
    if is_h2_websocket(req, protocol) {
        return Some(Downstream::H2);
    }
    if is_h1_websocket(req) {
        return Some(Downstream::H1 {
            key: req.headers().get("sec-websocket-key").cloned(),
        });
    }
    None
}

pub(crate) fn random_key() -> String {
    let id = crate::headers::uuid_v4();
    let mut b = [0u8; 16];
    for (i, c) in id
        .as_bytes()
        .iter()
        .filter(|c| **c != b'-')
        .enumerate()
        .take(32)
    {
        let v = (*c as char).to_digit(16).unwrap_or(0) as u8;
        b[i / 2] |= if i % 2 == 0 { v << 4 } else { v };
    }
    new_key(b)
}

/// Rewrites the upstream request for the upstream's protocol.
pub(crate) fn prepare_upstream(parts: &mut request::Parts, down: &Downstream, upstream_h2: bool) {
    let h = &mut parts.headers;
    h.remove(header::UPGRADE);
    h.remove(header::CONNECTION);
    if !h.contains_key("sec-websocket-version") {
        h.insert("sec-websocket-version", HeaderValue::from_static("13"));
    }
    if upstream_h2 {
        parts.method = Method::CONNECT;
        parts
            .extensions
            .insert(hyper::ext::Protocol::from_static("websocket"));
        h.remove("sec-websocket-key");
    } else {
        parts.method = Method::GET;
        parts.version = Version::HTTP_11;
        parts.extensions.remove::<hyper::ext::Protocol>();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        let key = match down {
            Downstream::H1 { key: Some(k) } => k.clone(),
            _ => HeaderValue::from_str(&random_key())
                .unwrap_or(HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA==")),
        };
        h.insert("sec-websocket-key", key);
    }
}

/// Whether the upstream accepted the WebSocket.
pub(crate) fn accepted(status: StatusCode, upstream_h2: bool) -> bool {
    if upstream_h2 {
        status.is_success()
    } else {
        status == StatusCode::SWITCHING_PROTOCOLS
    }
}

/// Rewrites an accepting response for the client's protocol.
pub(crate) fn prepare_downstream(parts: &mut response::Parts, down: &Downstream) {
    let h = &mut parts.headers;
    match down {
        Downstream::H1 { key } => {
            parts.status = StatusCode::SWITCHING_PROTOCOLS;
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Some(k) = key {
                if let Ok(v) = HeaderValue::from_str(&accept_key(k.as_bytes())) {
                    h.insert("sec-websocket-accept", v);
                }
            }
            h.remove(header::CONTENT_LENGTH);
        }
        Downstream::H2 => {
            parts.status = StatusCode::OK;
            h.remove(header::UPGRADE);
            h.remove(header::CONNECTION);
            h.remove("sec-websocket-accept");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h1_to_h2_and_back() {
        let req = http::Request::get("/ws")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        let down = websocket_kind(&req).unwrap();
        let (mut parts, _) = req.into_parts();
        prepare_upstream(&mut parts, &down, true);
        assert_eq!(parts.method, Method::CONNECT);
        assert!(parts.headers.get("sec-websocket-key").is_none());
        assert_eq!(
            parts
                .extensions
                .get::<hyper::ext::Protocol>()
                .unwrap()
                .as_str(),
            "websocket"
        );
        let (mut resp, _) = http::Response::new(()).into_parts();
        assert!(accepted(StatusCode::OK, true));
        prepare_downstream(&mut resp, &down);
        assert_eq!(resp.status, StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            resp.headers["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn h2_to_h1() {
        let mut req = http::Request::connect("http://a/ws").body(()).unwrap();
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let down = websocket_kind(&req).unwrap();
        let (mut parts, _) = req.into_parts();
        prepare_upstream(&mut parts, &down, false);
        assert_eq!(parts.method, Method::GET);
        assert_eq!(parts.headers["upgrade"], "websocket");
        assert_eq!(parts.headers["sec-websocket-key"].len(), 24);
        assert!(!accepted(StatusCode::OK, false));
        let (mut resp, _) = http::Response::new(()).into_parts();
        prepare_downstream(&mut resp, &down);
        assert_eq!(resp.status, StatusCode::OK);
    }
}
