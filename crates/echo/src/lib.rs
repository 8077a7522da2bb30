//! The blog's echo service (`zcong/echo`), built in so the whole blog runs
//! on one machine:
//! - `GET /` and `GET /hello`: 200 `text/plain`, one line per request header
//!   in Go's `Name:[value1 value2]` form (canonical names, sorted; Go's map
//!   order was random). Like Go's `Request.Header`, `Host` is not listed.
//! - `POST /echo`: the request body back, with its content type (and any
//!   request trailers as response trailers).
//! - `GET /ws`: WebSocket (RFC 6455, with permessage-deflate, RFC 7692);
//!   every message comes back whole, as one frame of its own type, and
//!   every protocol violation closes with its code (1002, 1007, 1009).
//! - CORS for any origin.
//!
//! `--name` adds an `x-echo-name` response header so a user can see which
//! backend answered.

#![forbid(unsafe_code)]

mod body;
pub mod deflate;
pub mod session;
mod ws;

use body::EchoBody;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Largest POST /echo body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Echo service settings.
#[derive(Debug, Clone, Default)]
pub struct EchoConfig {
    /// Reported in `x-echo-name`.
    pub name: Option<String>,
}

/// Go's canonical header name: `x-request-id` → `X-Request-Id`.
pub fn canonical(name: &str) -> String {
    let mut up = true;
    name.chars()
        .map(|c| {
            let o = if up {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            up = c == '-';
            o
        })
        .collect()
}

/// The GET body: `Name:[v1 v2]` lines.
pub fn header_lines(h: &http::HeaderMap) -> String {
    let mut names: Vec<&str> = h
        .keys()
        .map(|k| k.as_str())
        .filter(|k| *k != "host")
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::new();
    for n in names {
        let vals: Vec<String> = h
            .get_all(n)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        out.push_str(&format!("{}:[{}]\n", canonical(n), vals.join(" ")));
    }
    out
}

fn respond(status: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Response<EchoBody> {
    let mut r = Response::new(EchoBody::new(body.into(), None));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

async fn serve(mut req: Request<Incoming>, cfg: Arc<EchoConfig>) -> Response<EchoBody> {
    let has_origin = req.headers().contains_key(header::ORIGIN);
    let path = req.uri().path().to_string();
    let mut resp = match (req.method().clone(), path.as_str()) {
        (Method::OPTIONS, _) if has_origin => {
            let mut r = respond(StatusCode::NO_CONTENT, "text/plain", "");
            let h = r.headers_mut();
            h.insert(
                "access-control-allow-methods",
                HeaderValue::from_static("GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"),
            );
            h.insert(
                "access-control-allow-headers",
                HeaderValue::from_static("Origin,Content-Length,Content-Type"),
            );
            h.insert("access-control-max-age", HeaderValue::from_static("43200"));
            r
        }
        (Method::GET, "/ws") if ws::is_upgrade(&req) => ws::accept(&mut req),
        (Method::GET | Method::HEAD, "/" | "/hello") => respond(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            header_lines(req.headers()),
        ),
        (Method::POST, "/echo") => {
            let ctype = req.headers().get(header::CONTENT_TYPE).cloned();
            match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => {
                    let trailers = b.trailers().cloned();
                    // HTTP/1.1 sends only trailers the head declares.
                    let declared = trailers
                        .as_ref()
                        .map(|t| t.keys().map(|k| k.as_str()).collect::<Vec<_>>().join(", "));
                    let mut r = Response::new(EchoBody::new(b.to_bytes(), trailers));
                    if let Some(v) = declared.and_then(|d| HeaderValue::from_str(&d).ok()) {
                        r.headers_mut().insert(header::TRAILER, v);
                    }
                    if let Some(c) = ctype {
                        r.headers_mut().insert(header::CONTENT_TYPE, c);
                    }
                    r
                }
                Err(e) => {
                    let too_big = e
                        .downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some();
                    if too_big {
                        respond(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "text/plain",
                            "body too large\n",
                        )
                    } else {
                        respond(StatusCode::BAD_REQUEST, "text/plain", "bad body\n")
                    }
                }
            }
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "404 page not found"),
    };
    if has_origin {
        resp.headers_mut()
            .insert("access-control-allow-origin", HeaderValue::from_static("*"));
    }
    if let Some(n) = cfg
        .name
        .as_deref()
        .and_then(|n| HeaderValue::from_str(n).ok())
    {
        resp.headers_mut().insert("x-echo-name", n);
    }
    resp
}

/// Serves the echo service on `listener` forever (HTTP/1.1 and h2c).
pub async fn run(listener: TcpListener, cfg: EchoConfig) {
    let cfg = Arc::new(cfg);
    loop {
        let (stream, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "echo accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let cfg = cfg.clone();
                async move { Ok::<_, Infallible>(serve(req, cfg).await) }
            });
            let mut b = auto::Builder::new(TokioExecutor::new());
            // Go's server (the blog's echo) limits header bytes (1 MiB),
            // not the number of headers.
            b.http1()
                .max_headers(10_000)
                .max_buf_size(1024 * 1024 + 8192);
            b.http2()
                .enable_connect_protocol()
                .max_header_list_size(1024 * 1024);
            if let Err(e) = b
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "echo connection error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_header_lines() {
        let mut h = http::HeaderMap::new();
        h.insert("user-agent", "curl/8".parse().unwrap());
        h.insert("host", "x".parse().unwrap());
        h.append("x-multi", "a".parse().unwrap());
        h.append("x-multi", "b".parse().unwrap());
        assert_eq!(header_lines(&h), "User-Agent:[curl/8]\nX-Multi:[a b]\n");
        assert_eq!(canonical("x-request-id"), "X-Request-Id");
    }
}
