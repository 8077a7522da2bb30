//! The exchange with an HTTP/2 upstream (the `h2` crate's client,
//! `nuncio_upstream::HostPool::send_h2`), for both downstream codecs.
//!
//! The connection manager composes every upstream request head once, as
//! HTTP/1.1 bytes (`head.rs`: hop-by-hop fields removed, Envoy's fields
//! added); [`request`] turns those bytes into the HTTP/2 request, so the
//! request rules have one implementation whatever the upstream speaks.
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
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use ::h2::{RecvStream, SendStream};
use bytes::{Buf, Bytes};
use http::{HeaderMap, HeaderName, HeaderValue};
use nuncio_h1::{parse_request, Limits, ResponseHead};
use nuncio_upstream::{h2_reset_reason, HostPool, StreamSlot};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::upstream::Fail;

/// The HTTP/2 request made from the upstream head nuncio wrote, and what
/// the response needs to know of it.
pub(super) struct H2Request {
    /// The request (absolute URI, no connection-specific fields).
    pub(super) req: http::Request<()>,
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
    let bad = || Fail::Stream(nuncio_upstream::ResetReason::ProtocolError);
    let websocket = h
        .upgrade
        .is_some_and(|u| u.eq_ignore_ascii_case(b"websocket"));
    let authority = std::str::from_utf8(h.host.unwrap_or(b"localhost")).map_err(|_| bad())?;
    let uri = http::Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(h.target)
        .build()
        .map_err(|_| bad())?;
    let method = if websocket {
        http::Method::CONNECT
    } else {
        http::Method::from_bytes(h.method.as_bytes()).map_err(|_| bad())?
    };
    let mut headers = HeaderMap::with_capacity(h.headers.len());
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
        if skip {
            continue;
        }
        let name = HeaderName::from_bytes(n.as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_bytes(v).map_err(|_| bad())?;
        headers.append(name, value);
    }
    // A value new on every request never goes into the HPACK dynamic
    // table (it would only churn it): encoded as never-indexed.
    if let Some(v) = headers.get_mut("x-request-id") {
        v.set_sensitive(true);
    }
    let is_head = h.method == "HEAD";
    let mut req = http::Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_2;
    *req.headers_mut() = headers;
    if websocket {
        req.extensions_mut()
            .insert(::h2::ext::Protocol::from_static("websocket"));
    }
    Ok(H2Request {
        req,
        websocket_key: websocket.then(|| websocket_key.unwrap_or_default()),
        is_head,
    })
}

/// The client's side of the response, written by its codec.
pub(super) trait Respond {
    /// Ready once the client is gone (an HTTP/2 stream reset), while the
    /// response head is awaited.
    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// Sends the response head (`end`: no body follows); returns the
    /// status the client was sent.
    fn head(
        &mut self,
        r: &ResponseHead<'_>,
        service_ms: u64,
        upgraded: bool,
        end: bool,
    ) -> impl Future<Output = Result<u16, Fail>>;
    /// Sends body bytes.
    fn data(&mut self, b: &[u8]) -> impl Future<Output = Result<(), Fail>>;
    /// Ends the response, with the upstream's trailers if any.
    fn end(&mut self, trailers: Option<&HeaderMap>) -> impl Future<Output = Result<(), Fail>>;
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
    pub(super) tunnel: Option<Tunnel>,
}

/// The request body's sender as an [`AsyncWrite`]: each write waits for
/// the stream's flow-control window; shutdown ends the stream.
pub(super) struct SendBody {
    tx: SendStream<Bytes>,
    ended: bool,
}

impl SendBody {
    fn new(tx: SendStream<Bytes>) -> Self {
        SendBody { tx, ended: false }
    }
}

impl crate::native::relay::TrailerSink for SendBody {
    fn send_trailers(&mut self, trailers: Vec<(&[u8], &[u8])>) -> io::Result<()> {
        let mut map = HeaderMap::new();
        for (n, v) in trailers {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n), HeaderValue::from_bytes(v)) {
                map.append(n, v);
            }
        }
        self.ended = true;
        self.tx.send_trailers(map).map_err(h2_io)
    }
}

fn stream_fail(e: ::h2::Error) -> Fail {
    Fail::Stream(h2_reset_reason(&e))
}

fn h2_io(e: ::h2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, e)
}

impl AsyncWrite for SendBody {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        if b.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.tx.reserve_capacity(b.len());
        while self.tx.capacity() == 0 {
            match ready!(self.tx.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(h2_io(e))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
        let n = self.tx.capacity().min(b.len());
        self.tx
            .send_data(Bytes::copy_from_slice(&b[..n]), false)
            .map_err(h2_io)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.ended {
            self.ended = true;
            self.tx.send_data(Bytes::new(), true).map_err(h2_io)?;
        }
        Poll::Ready(Ok(()))
    }
}

/// An accepted WebSocket's upstream stream, as a byte stream both ways.
pub(super) struct Tunnel {
    tx: SendBody,
    rx: RecvStream,
    pending: Bytes,
    _slot: StreamSlot,
}

impl AsyncRead for Tunnel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match ready!(self.rx.poll_data(cx)) {
                Some(Ok(b)) => {
                    let _ = self.rx.flow_control().release_capacity(b.len());
                    self.pending = b;
                }
                Some(Err(e)) => return Poll::Ready(Err(h2_io(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.pending.len().min(out.remaining());
        out.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tx).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tx).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tx).poll_shutdown(cx)
    }
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
    U: FnOnce(SendBody) -> UF,
    UF: Future<Output = Result<u64, Fail>>,
{
    let websocket = r.websocket_key.is_some();
    // A WebSocket's CONNECT stays open for the tunnel.
    let end = p.end && !websocket;
    let H2Request {
        req,
        websocket_key,
        is_head,
    } = r;
    let stream = p.pool.send_h2(req, end).await.map_err(Fail::from)?;
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
    U: FnOnce(SendBody) -> UF,
    UF: Future<Output = Result<u64, Fail>>,
{
    let websocket = r.websocket_key.is_some();
    let end = p.end && !websocket;
    let slot = stream.slot;
    let mut body = Some(SendBody::new(stream.body));
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
    let (parts, mut rx) = head.into_parts();
    let upgraded = websocket && parts.status.is_success();
    let accept;
    let mut fields: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .filter(|(n, _)| !(upgraded && *n == http::header::CONTENT_LENGTH))
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
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
        && !matches!(parts.status.as_u16(), 100..=199 | 204 | 304)
        && !parts.headers.contains_key(http::header::CONTENT_LENGTH)
    {
        fields.push(("content-length", b"0"));
    }
    let view = ResponseHead {
        status: if upgraded { 101 } else { parts.status.as_u16() },
        reason: "",
        minor: 1,
        headers: fields,
        len: 0,
        close: false,
    };
    out.resp_headers = super::capture(p.log_response, &view);
    out.status = respond
        .head(&view, service_ms, upgraded, no_body && !upgraded)
        .await?;
    out.head_sent = true;
    if upgraded {
        let Some(tx) = body else {
            return Err(Fail::Protocol);
        };
        out.tunnel = Some(Tunnel {
            tx,
            rx,
            pending: Bytes::new(),
            _slot: slot,
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
            let _ = rx.flow_control().release_capacity(d.len());
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
    drop(slot);
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

    #[test]
    fn the_upstream_head_becomes_an_http2_request() {
        let head = b"POST /a?b=1 HTTP/1.1\r\nhost: svc:80\r\nconnection: keep-alive\r\n\
transfer-encoding: chunked\r\nte: trailers\r\nx-request-id: 7\r\ncontent-type: application/grpc\r\n\r\n";
        let r = request(head).unwrap();
        assert_eq!(r.req.method(), http::Method::POST);
        assert_eq!(r.req.uri().to_string(), "http://svc:80/a?b=1");
        let h = r.req.headers();
        assert!(h.get("host").is_none() && h.get("connection").is_none());
        assert!(h.get("transfer-encoding").is_none());
        assert_eq!(h.get("te").unwrap(), "trailers");
        assert_eq!(h.get("x-request-id").unwrap(), "7");
        assert!(r.websocket_key.is_none() && !r.is_head);
    }

    #[test]
    fn a_websocket_becomes_an_extended_connect() {
        let head = b"GET /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
        let r = request(head).unwrap();
        assert_eq!(r.req.method(), http::Method::CONNECT);
        assert_eq!(
            r.req
                .extensions()
                .get::<::h2::ext::Protocol>()
                .map(|p| p.as_str()),
            Some("websocket")
        );
        assert!(r.req.headers().get("sec-websocket-key").is_none());
        assert!(r.req.headers().get("upgrade").is_none());
        assert_eq!(r.req.headers().get("sec-websocket-version").unwrap(), "13");
        assert_eq!(
            r.websocket_key.as_deref(),
            Some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..])
        );
    }
}
