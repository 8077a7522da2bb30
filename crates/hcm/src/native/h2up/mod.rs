//! The exchange with an HTTP/2 upstream (nuncio's own client codec,
//! `nuncio_h2::client`, through `nuncio_upstream::HostPool::send_h2`), for
//! both downstream codecs.
//!
//! The connection manager composes every upstream request head once, as
//! HTTP/1.1 bytes (`head.rs`: hop-by-hop fields removed, Envoy's fields
//! added); [`request`] HPACK-encodes those bytes straight into the HTTP/2
//! request's header block (no header map in between), so the request
//! rules have one implementation whatever the upstream speaks.
//! The upstream's response head is handed to the client's codec as the
//! same view an HTTP/1.1 upstream's head gives (`nuncio_h1::ResponseHead`),
//! so the response rules (hop-by-hop, `server`, `date`, service time) have
//! one implementation too ([`Respond`]).
//!
//! The request body and the response move at the same time (gRPC
//! streams), each direction paced by HTTP/2 flow control. Envoy's route
//! timeout runs from the end of the request to the end of the response.
//! A WebSocket goes upstream as an extended CONNECT (RFC 8441) and, once
//! accepted, becomes a tunnel ([`Tunnel`]).
//!
//! `h1.rs` and `h2.rs` are the two client sides: the exchange called from
//! each codec's request path, and its [`Respond`].

mod h1;
mod h2;

pub(super) use h2::{forward as forward_h2, FromH2};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nuncio_h1::{parse_request, Limits, ResponseHead};
use nuncio_h2::client::RequestOptions;
use nuncio_h2::hpack::{encode_field, encode_request_pseudo};
use nuncio_h2::{Block, RecvStream, StreamError};
use nuncio_upstream::{h2_reset_reason, HostPool};

use super::h2io::{H2Duplex, H2Recv, H2Send};
use super::upstream::Fail;

/// The HTTP/2 request made from the upstream head nuncio wrote, and what
/// the response needs to know of it.
pub(super) struct H2Request {
    /// The request head, HPACK-encoded (pseudo fields first).
    pub(super) block: Vec<u8>,
    /// A WebSocket: the client's `Sec-WebSocket-Key`, for the accept
    /// value of the client's 101.
    pub(super) websocket_key: Option<Vec<u8>>,
    /// A HEAD request (its response has no body whatever it says).
    pub(super) is_head: bool,
}

/// Builds the HTTP/2 request from `up_head`, the HTTP/1.1 head composed
/// for the upstream: the Host field becomes `:authority`; fields HTTP/2
/// forbids (connection-specific ones, framing) are left out; an
/// `Upgrade: websocket` becomes an extended CONNECT.
pub(super) fn request(up_head: &[u8]) -> Result<H2Request, Fail> {
    let limits = Limits {
        max_header_bytes: usize::MAX,
        max_headers: 4096,
    };
    let h = match parse_request(up_head, &limits) {
        Ok(Some(h)) => h,
        _ => return Err(Fail::Stream(nuncio_upstream::ResetReason::ProtocolError)),
    };
    let websocket = h
        .upgrade
        .is_some_and(|u| u.eq_ignore_ascii_case(b"websocket"));
    let mut block = Vec::with_capacity(up_head.len());
    let (method, protocol) = if websocket {
        (&b"CONNECT"[..], Some(&b"websocket"[..]))
    } else {
        (h.method.as_bytes(), None)
    };
    encode_request_pseudo(
        &mut block,
        method,
        b"http",
        h.host.unwrap_or(b"localhost"),
        h.target.as_bytes(),
        protocol,
    );
    let mut websocket_key = None;
    for (n, v) in &h.headers {
        // The one hop-by-hop set (head.rs), plus what HTTP/2 carries
        // elsewhere: Host as `:authority`, framing in its frames, the
        // WebSocket key (an extended CONNECT has none).
        if websocket && n.eq_ignore_ascii_case("sec-websocket-key") {
            websocket_key = Some(v.to_vec());
            continue;
        }
        let skip = crate::native::head::hop_by_hop(n, v)
            || n.eq_ignore_ascii_case("host")
            || n.eq_ignore_ascii_case("transfer-encoding");
        if !skip {
            encode_field(&mut block, n.as_bytes(), v);
        }
    }
    Ok(H2Request {
        block,
        websocket_key: websocket.then(|| websocket_key.unwrap_or_default()),
        is_head: h.method == "HEAD",
    })
}

/// The client's side of the response, written by its codec.
pub(super) trait Respond {
    /// Ready once the client is gone (an HTTP/2 stream reset), while the
    /// response head is awaited.
    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// Sends the response head (`end`: no body follows) with `first`, the
    /// start of the body when it came with the head (one write for both);
    /// returns the status the client was sent.
    fn head(
        &mut self,
        r: &ResponseHead<'_>,
        service_ms: u64,
        upgraded: bool,
        end: bool,
        first: &[u8],
    ) -> impl Future<Output = Result<u16, Fail>>;
    /// Sends body bytes.
    fn data(&mut self, b: &[u8]) -> impl Future<Output = Result<(), Fail>>;
    /// Ends the response, with the upstream's trailers if any.
    fn end(&mut self, trailers: Option<&Block>) -> impl Future<Output = Result<(), Fail>>;
}

/// What the exchange needs beyond the request.
pub(super) struct Params<'a> {
    pub(super) pool: &'a Arc<HostPool>,
    /// The request has no body.
    pub(super) end: bool,
    pub(super) route_timeout: Option<Duration>,
    /// `stream_idle_timeout` on the response body.
    pub(super) idle: Option<Duration>,
    /// The cluster's `upstream_rq_tx_reset`.
    pub(super) tx_reset: &'a nuncio_stats::Counter,
    /// The access log wants the response head (`%RESP(...)%`).
    pub(super) log_response: bool,
}

/// What became of an exchange, for stats and the access log.
#[derive(Default)]
pub(super) struct Outcome {
    /// The response code sent (0: none).
    pub(super) status: u16,
    pub(super) service_ms: Option<u64>,
    /// Response body bytes sent to the client.
    pub(super) sent: u64,
    /// Request body bytes sent upstream.
    pub(super) received: u64,
    /// The response head went to the client.
    pub(super) head_sent: bool,
    /// The response ended before the whole request was read.
    pub(super) request_unfinished: bool,
    /// The client reset its stream (HTTP/2).
    pub(super) reset_by_client: bool,
    /// The response head, kept for the access log.
    pub(super) resp_headers: super::Capture,
    /// An accepted WebSocket's upstream stream.
    pub(super) tunnel: Option<H2Duplex>,
}

fn stream_fail(e: StreamError) -> Fail {
    Fail::Stream(h2_reset_reason(&e))
}

/// Runs one exchange: opens the stream, sends the request body with
/// `upload` (given the body's sender; it returns the bytes it sent) while
/// the response is awaited and relayed to `respond`.
/// A stream nuncio gives up (route timeout, the client left or stalled)
/// is reset (dropped), and Envoy counts `upstream_rq_tx_reset` for it.
pub(super) async fn exchange<R, U, UF>(
    p: Params<'_>,
    r: H2Request,
    upload: U,
    respond: &mut R,
    out: &mut Outcome,
) -> Result<(), Fail>
where
    R: Respond,
    U: FnOnce(H2Send) -> UF,
    UF: Future<Output = Result<u64, Fail>>,
{
    let websocket = r.websocket_key.is_some();
    // A WebSocket's CONNECT stays open for the tunnel.
    let end = p.end && !websocket;
    let H2Request {
        block,
        websocket_key,
        is_head,
    } = r;
    let opts = RequestOptions {
        end,
        head_request: is_head,
        extended_connect: websocket,
    };
    let stream = p.pool.send_h2(&block, opts).await.map_err(Fail::from)?;
    drop(block);
    let tx_reset = p.tx_reset;
    let meta = Meta {
        websocket_key,
        is_head,
    };
    let result = drive(p, meta, stream, upload, respond, out).await;
    if let Err(
        Fail::Timeout
        | Fail::Client
        | Fail::StreamIdle
        | Fail::RequestTimeout
        | Fail::BadRequestBody(_),
    ) = &result
    {
        tx_reset.inc();
    }
    result
}

/// What the response needs to know of the request.
struct Meta {
    websocket_key: Option<Vec<u8>>,
    is_head: bool,
}

/// [`exchange`] once the stream is open.
async fn drive<R, U, UF>(
    p: Params<'_>,
    r: Meta,
    stream: nuncio_upstream::H2Stream,
    upload: U,
    respond: &mut R,
    out: &mut Outcome,
) -> Result<(), Fail>
where
    R: Respond,
    U: FnOnce(H2Send) -> UF,
    UF: Future<Output = Result<u64, Fail>>,
{
    let websocket = r.websocket_key.is_some();
    let end = p.end && !websocket;
    let mut body = Some(H2Send::new(stream.body));
    let mut sent_at = Instant::now();
    let mut uploading = if end || websocket {
        None
    } else {
        body.take().map(|b| Box::pin(upload(b)))
    };
    let mut response = std::pin::pin!(stream.response);
    // Until the response head: the route timer starts once the request
    // has ended.
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = if uploading.is_none() {
        p.route_timeout.map(|t| Box::pin(tokio::time::sleep(t)))
    } else {
        None
    };
    let head = loop {
        tokio::select! {
            r = maybe(uploading.as_mut()), if uploading.is_some() => {
                uploading = None;
                match r {
                    Ok(n) => out.received = n,
                    // The upstream stopped taking the body: its answer
                    // (or its reset) says why.
                    Err(Fail::Stream(_) | Fail::Reset) => {}
                    Err(e) => return Err(e),
                }
                sent_at = Instant::now();
                timer = p.route_timeout.map(|t| Box::pin(tokio::time::sleep(t)));
            }
            r = response.as_mut() => break r.map_err(stream_fail)?,
            _ = std::future::poll_fn(|cx| respond.poll_gone(cx)) => return Err(Fail::Client),
            _ = maybe(timer.as_mut()), if timer.is_some() => {
                return Err(Fail::Timeout);
            }
        }
    };
    let service_ms = sent_at.elapsed().as_millis() as u64;
    out.service_ms = Some(service_ms);
    let (resp, mut rx) = head;
    let status = resp.status();
    let upgraded = websocket && (200..300).contains(&status);
    let accept;
    // Names are checked lowercase tokens (the codec resets a stream
    // whose head has others), so always UTF-8.
    let mut fields: Vec<(&str, &[u8])> = resp
        .fields()
        .filter(|(n, _)| !(upgraded && *n == b"content-length"))
        .filter_map(|(n, v)| Some((std::str::from_utf8(n).ok()?, v)))
        .collect();
    if upgraded {
        fields.push(("upgrade", b"websocket"));
        accept = nuncio_websocket::accept_key(r.websocket_key.as_deref().unwrap_or_default());
        fields.push(("sec-websocket-accept", accept.as_bytes()));
    }
    let no_body = r.is_head || rx.is_end_stream();
    // An HTTP/1.1 client needs framing for an empty body (Envoy's
    // `content-length: 0`).
    if no_body
        && !r.is_head
        && !upgraded
        && !matches!(status, 100..=199 | 204 | 304)
        && resp.get("content-length").is_none()
    {
        fields.push(("content-length", b"0"));
    }
    let view = ResponseHead {
        status: if upgraded { 101 } else { status },
        reason: "",
        minor: 1,
        headers: fields,
        len: 0,
        close: false,
    };
    out.resp_headers = super::capture(p.log_response, &view);
    // Body bytes that arrived with the head go out with it.
    let first = if no_body || upgraded {
        None
    } else {
        rx.try_data()
    };
    let first = first.as_deref().unwrap_or_default();
    out.sent += first.len() as u64;
    out.status = respond
        .head(&view, service_ms, upgraded, no_body && !upgraded, first)
        .await?;
    out.head_sent = true;
    if upgraded {
        let Some(tx) = body else {
            return Err(Fail::Protocol);
        };
        out.tunnel = Some(H2Duplex {
            rx: H2Recv::new(rx),
            tx,
        });
        return Ok(());
    }
    if no_body {
        out.request_unfinished = uploading.is_some();
        return Ok(());
    }
    // The body, while the upload may still run.
    let relay = async {
        while let Some(d) = next_data(&mut rx, p.idle).await? {
            out.sent += d.len() as u64;
            respond.data(&d).await?;
        }
        let trailers = rx.trailers().await.map_err(stream_fail)?;
        respond.end(trailers.as_ref()).await
    };
    let mut relay = std::pin::pin!(relay);
    loop {
        tokio::select! {
            r = maybe(uploading.as_mut()), if uploading.is_some() => {
                uploading = None;
                match r {
                    Ok(_) | Err(Fail::Stream(_) | Fail::Reset) => {}
                    Err(e) => return Err(e),
                }
                timer = p.route_timeout.map(|t| Box::pin(tokio::time::sleep(t)));
            }
            r = relay.as_mut() => {
                r?;
                break;
            }
            _ = maybe(timer.as_mut()), if timer.is_some() => {
                return Err(Fail::Timeout);
            }
        }
    }
    out.request_unfinished = uploading.is_some();
    Ok(())
}

/// Awaits `f` if there is one (a `select!` branch guarded by its presence).
async fn maybe<F: Future + ?Sized>(f: Option<&mut Pin<Box<F>>>) -> F::Output {
    match f {
        Some(f) => f.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The next DATA payload (`None` at the end), within `idle` if set.
async fn next_data(rx: &mut RecvStream, idle: Option<Duration>) -> Result<Option<Bytes>, Fail> {
    match super::watch::idle_bounded(idle, rx.data()).await? {
        None => Ok(None),
        Some(Ok(d)) => Ok(Some(d)),
        Some(Err(e)) => Err(stream_fail(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request's fields as the upstream decodes them.
    fn decoded(r: &H2Request) -> Vec<(String, String)> {
        let mut b = Block::new();
        nuncio_h2::hpack::Decoder::new(4096)
            .decode(&r.block, &mut b, 1 << 20)
            .unwrap();
        b.iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn get<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
        f.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_upstream_head_becomes_an_http2_request() {
        let head = b"POST /a?b=1 HTTP/1.1\r\nhost: svc:80\r\nconnection: keep-alive\r\n\
transfer-encoding: chunked\r\nte: trailers\r\nX-Request-Id: 7\r\ncontent-type: application/grpc\r\n\r\n";
        let r = request(head).unwrap();
        let f = decoded(&r);
        let pseudo: Vec<_> = f.iter().take(4).map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            pseudo,
            [
                ":method=POST",
                ":scheme=http",
                ":authority=svc:80",
                ":path=/a?b=1"
            ]
        );
        for gone in ["host", "connection", "transfer-encoding"] {
            assert!(get(&f, gone).is_none(), "{gone}");
        }
        assert_eq!(get(&f, "te"), Some("trailers"));
        // Names are lowercased on the way.
        assert_eq!(get(&f, "x-request-id"), Some("7"));
        assert_eq!(get(&f, "content-type"), Some("application/grpc"));
        assert!(r.websocket_key.is_none() && !r.is_head);
    }

    #[test]
    fn a_head_request_is_marked() {
        let r = request(b"HEAD / HTTP/1.1\r\nhost: a\r\n\r\n").unwrap();
        assert!(r.is_head);
        assert_eq!(get(&decoded(&r), ":method"), Some("HEAD"));
        assert_eq!(get(&decoded(&r), ":path"), Some("/"));
    }

    #[test]
    fn a_websocket_becomes_an_extended_connect() {
        let head = b"GET /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
        let r = request(head).unwrap();
        let f = decoded(&r);
        assert_eq!(get(&f, ":method"), Some("CONNECT"));
        assert_eq!(get(&f, ":protocol"), Some("websocket"));
        assert_eq!(get(&f, ":path"), Some("/ws"));
        assert!(get(&f, "sec-websocket-key").is_none());
        assert!(get(&f, "upgrade").is_none());
        assert_eq!(get(&f, "sec-websocket-version"), Some("13"));
        assert_eq!(
            r.websocket_key.as_deref(),
            Some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..])
        );
    }
}
