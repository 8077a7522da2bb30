//! The echo's WebSocket handshake on `GET /ws` (RFC 6455 §4.2): checks the
//! request, offers permessage-deflate when the client does (RFC 7692), and
//! hands the upgraded connection to [`crate::session`].

use crate::deflate::{self, Codec};
use crate::{session, EchoBody};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use nuncio_websocket::accept_key;

/// Whether `req` asks for a WebSocket upgrade.
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    nuncio_websocket::is_h1_websocket(req)
}

fn refuse(status: StatusCode, why: &'static str) -> Response<EchoBody> {
    let mut r = Response::new(EchoBody::new(Bytes::from_static(why.as_bytes()), None));
    *r.status_mut() = status;
    r
}

/// Answers the handshake and spawns the echo session.
pub fn accept(req: &mut Request<Incoming>) -> Response<EchoBody> {
    let h = req.headers();
    let Some(key) = h.get("sec-websocket-key").map(|k| k.as_bytes().to_vec()) else {
        return refuse(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
    };
    if h.get("sec-websocket-version").map(HeaderValue::as_bytes) != Some(b"13") {
        let mut r = refuse(
            StatusCode::UPGRADE_REQUIRED,
            "Sec-WebSocket-Version must be 13\n",
        );
        r.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("13"));
        return r;
    }
    let agreed = deflate::negotiate(
        h.get_all("sec-websocket-extensions")
            .iter()
            .map(HeaderValue::as_bytes),
    );
    let codec = agreed.as_ref().map(Codec::new);
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                if let Err(e) = session::serve(TokioIo::new(up), codec).await {
                    tracing::debug!(error = %e, "websocket echo ended");
                }
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut r = Response::new(EchoBody::new(Bytes::new(), None));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept_key(&key)) {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(v) = agreed.and_then(|a| HeaderValue::from_str(&a.response()).ok()) {
        h.insert("sec-websocket-extensions", v);
    }
    r
}
