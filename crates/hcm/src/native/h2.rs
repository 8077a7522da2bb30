//! HTTP/2 downstream on the native path: the `h2` crate's server (framing,
//! HPACK, flow control, stream state) with nuncio's own request handling.
//! Each stream runs as one task that writes its HTTP/1.1 request straight
//! onto a pooled upstream socket and reads the response itself, as the
//! native HTTP/1 path does: no hyper service, no client dispatch task, no
//! channel. Used when every route reaches an HTTP/1.1 cluster (`eligible`).
//!
//! Measured (callgrind, `MIX=h2c bash bench/profile.sh`): the hyper server
//! plus hyper client path cost ~60.8k instructions per request; see
//! bench/RESULTS.md for this module's figure.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use nuncio_h1::{response_framing, Framing, RequestHead, ResponseHead};
use nuncio_h2flood::FloodGuard;
use nuncio_router::path::PathVerdict;
use nuncio_router::RouteKind;
use nuncio_stats::GaugeGuard;
use nuncio_upstream::RawConn;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::h2guard::PrematureResets;
use super::h2io::{relay_chunked, send_chunked, H2Duplex, H2Recv, H2Send};
use super::head;
use super::io::Pace;
use super::relay::{relay, Out, RelayError};
use super::upstream::{read_response_head, Fail};
use super::watch::{count_timeouts, until};
use super::{bufpool, deadline, finish, Done};
use crate::access_log::LogEntry;
use crate::headers::Underscores;
use crate::proxy::flags;
use crate::Hcm;

/// Envoy's response flag for a stream the client reset (`DR`).
const RESET_BY_CLIENT: &str = "DR";

/// What every stream of one connection shares.
struct Conn {
    hcm: Arc<Hcm>,
    peer: SocketAddr,
    worker: usize,
    resets: PrematureResets,
}

/// Serves one HTTP/2 connection (its preface may already be in `io`'s
/// prefix) until the client closes it, or a drain ends it with GOAWAY.
pub(crate) async fn serve<T>(hcm: Arc<Hcm>, io: T, peer: SocketAddr, worker: usize)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let cfg = &hcm.config;
    let mut b = h2::server::Builder::new();
    b.max_concurrent_streams(cfg.http2.max_concurrent_streams)
        .initial_window_size(cfg.http2.initial_stream_window_size)
        .initial_connection_window_size(cfg.http2.initial_connection_window_size)
        .max_header_list_size(hcm.h2_header_list_size())
        // Extended CONNECT (RFC 8441) is always offered, so that a
        // WebSocket on a route without it gets Envoy's 403, not a
        // protocol error at the previous hop.
        .enable_connect_protocol();
    // A client that never completes the handshake is bounded like an idle one.
    let io = FloodGuard::server(io, cfg.http2.flood, &hcm.stats.codec.flood, peer);
    let handshake = b.handshake::<_, Bytes>(io);
    let shook = if cfg.idle_timeout.is_zero() {
        Ok(handshake.await)
    } else {
        deadline::within(cfg.idle_timeout, handshake).await
    };
    let mut conn = match shook {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "h2 handshake failed");
            return;
        }
        Err(_) => return,
    };
    let ctx = Arc::new(Conn {
        hcm: hcm.clone(),
        peer,
        worker,
        resets: PrematureResets::default(),
    });
    let drained = async {
        hcm.drain.started().await;
        tokio::time::sleep(cfg.drain_timeout).await;
    };
    tokio::pin!(drained);
    let mut shutting = false;
    loop {
        let next = tokio::select! {
            r = conn.accept() => r,
            _ = ctx.resets.tripped() => {
                // Rapid reset: close the connection (h2guard.rs).
                tracing::warn!(%peer, "closing an HTTP/2 connection: too many streams reset by the client");
                hcm.stats.rq_too_many_premature_resets.inc();
                conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                let _ = deadline::within(
                    Duration::from_millis(500),
                    poll_fn(|cx| conn.poll_closed(cx)),
                )
                .await;
                break;
            }
            _ = &mut drained, if !shutting => {
                // GOAWAY: streams in flight finish, no new ones start.
                hcm.stats.cx_drain_close.inc();
                conn.graceful_shutdown();
                shutting = true;
                continue;
            }
        };
        match next {
            Some(Ok((req, respond))) => {
                // Boxed: the task then holds a pointer, and tokio moves
                // the stream's (large) state once instead of three times.
                tokio::spawn(Box::pin(stream(ctx.clone(), req, respond)));
            }
            Some(Err(e)) => {
                tracing::debug!(%peer, error = %e, "downstream h2 connection ended with an error");
                break;
            }
            None => break,
        }
    }
}

/// Serves one stream: stats and access log around [`handle`].
async fn stream(c: Arc<Conn>, req: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
    let hcm = &c.hcm;
    let start = Instant::now();
    hcm.stats.rq_total.inc();
    hcm.stats.rq_http2_total.inc();
    let _active = GaugeGuard::new(&hcm.stats.rq_active);
    let log = hcm.access_log.as_ref().map(|_| {
        let authority = req.uri().authority().map_or("", |a| a.as_str());
        LogEntry::new(&req, authority, "HTTP/2", c.peer)
    });
    let done = handle(&c, req, &mut respond).await;
    c.resets
        .stream_closed(start.elapsed(), done.flags == RESET_BY_CLIENT);
    finish(hcm, start, done, log);
}

/// A local reply on the stream (Envoy's `text/plain` body).
fn reply(
    hcm: &Hcm,
    respond: &mut SendResponse<Bytes>,
    status: u16,
    body: &str,
    flag: &'static str,
) -> Done {
    reply_with(hcm, respond, status, body, flag, None)
}

/// [`reply`] with a `location` header (redirects).
fn reply_with(
    hcm: &Hcm,
    respond: &mut SendResponse<Bytes>,
    status: u16,
    body: &str,
    flag: &'static str,
    location: Option<&str>,
) -> Done {
    let mut r = Response::new(());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&hcm.config.server_name) {
        h.insert(header::SERVER, v);
    }
    if !body.is_empty() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        h.insert(header::LOCATION, l);
    }
    if let Ok(mut tx) = respond.send_response(r, body.is_empty()) {
        if !body.is_empty() {
            let _ = tx.send_data(Bytes::copy_from_slice(body.as_bytes()), true);
        }
    }
    Done::local(status, flag, body.len())
}

/// Routes and forwards one request; returns what became of it.
async fn handle(c: &Conn, req: Request<RecvStream>, respond: &mut SendResponse<Bytes>) -> Done {
    let hcm = &c.hcm;
    let cfg = &hcm.config;
    let (mut parts, body) = req.into_parts();
    match crate::headers::underscores(&mut parts.headers, cfg.underscores) {
        Underscores::Keep => {}
        Underscores::Dropped(n) => hcm.stats.codec.h2_dropped_underscores.add(n as u64),
        Underscores::Reject => {
            // Envoy resets the stream (HTTP/1 gets a 400).
            hcm.stats.codec.h2_rejected_underscores.inc();
            hcm.stats.rq_rejected.inc();
            respond.send_reset(h2::Reason::PROTOCOL_ERROR);
            return Done::local(400, flags::LOCAL_REJECT, 0);
        }
    }
    let h = &parts.headers;
    // h2 has already refused uppercase names, connection-specific headers,
    // `te` other than `trailers` and malformed pseudo-headers.
    let bytes: usize = h.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    if h.len() > cfg.max_headers_count as usize || bytes > hcm.max_header_bytes {
        hcm.stats.rq_rejected.inc();
        return reply(hcm, respond, 431, "", flags::LOCAL_REJECT);
    }
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| h.get(header::HOST).and_then(|v| v.to_str().ok()));
    let (Some(authority), false) = (authority, h.get_all(header::HOST).iter().count() > 1) else {
        hcm.stats.rq_rejected.inc();
        return reply(hcm, respond, 400, "", flags::LOCAL_REJECT);
    };
    let websocket = parts.method == Method::CONNECT
        && parts
            .extensions
            .get::<h2::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    if parts.method == Method::CONNECT && !websocket {
        return reply(hcm, respond, 403, "", flags::LOCAL_REJECT);
    }
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = match nuncio_router::path::normalize(target, &cfg.path) {
        PathVerdict::Use(t) => t,
        PathVerdict::Reject => {
            hcm.stats.rq_failed_path_normalization.inc();
            return reply(hcm, respond, 400, "", flags::LOCAL_REJECT);
        }
        PathVerdict::Redirect(to) => {
            hcm.stats.rq_redirected_with_normalized_path.inc();
            return reply_with(hcm, respond, 307, "", flags::NONE, Some(&to));
        }
    };
    let Some(route) = hcm
        .routes
        .route(authority.trim_end_matches([' ', '\t']), &target)
    else {
        hcm.stats.no_route.inc();
        return reply(hcm, respond, 404, "", flags::NO_ROUTE);
    };
    hcm.stats.router_rq_total.inc();
    let fwd = match &route.kind {
        RouteKind::Direct { status, body } => {
            hcm.stats.rq_direct_response.inc();
            return reply(
                hcm,
                respond,
                *status,
                &String::from_utf8_lossy(body),
                flags::NONE,
            );
        }
        RouteKind::Forward(f) => f,
    };
    if websocket && !fwd.websocket {
        hcm.stats.ws_on_non_ws_route.inc();
        return reply(hcm, respond, 403, "", flags::NONE);
    }
    if crate::via::seen(h, &hcm.via_id) {
        hcm.stats.rq_loop_detected.inc();
        tracing::warn!(cluster = %fwd.cluster.name(), "request loop: this request already passed through this proxy ({}); check that cluster '{}' points at the service, not at proxies that route back", hcm.via_id, fwd.cluster.name());
        return reply(hcm, respond, 508, "request loop detected", flags::NONE);
    }
    let cluster = fwd.cluster.clone();
    let Some(host) = cluster.choose_host() else {
        return reply(
            hcm,
            respond,
            503,
            "no healthy upstream",
            flags::NO_HEALTHY_UPSTREAM,
        );
    };

    // The request body's framing upstream: as received when the client
    // gave a length, else chunked.
    let framing = if body.is_end_stream() || websocket {
        Framing::Empty
    } else {
        match h.get(header::CONTENT_LENGTH) {
            Some(v) => match std::str::from_utf8(v.as_bytes())
                .ok()
                .and_then(|s| s.parse().ok())
            {
                Some(n) => Framing::Length(n),
                None => return reply(hcm, respond, 400, "", flags::LOCAL_REJECT),
            },
            None => Framing::UntilClose,
        }
    };
    // The upstream head, in HTTP/1.1.
    let mut fields: Vec<(&str, &[u8])> = Vec::with_capacity(h.len() + 3);
    if !h.contains_key(header::HOST) {
        fields.push(("host", authority.as_bytes()));
    }
    fields.extend(h.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let ws_key = websocket.then(crate::upgrade::random_key);
    if let Some(k) = &ws_key {
        if !h.contains_key("sec-websocket-version") {
            fields.push(("sec-websocket-version", b"13"));
        }
        fields.push(("sec-websocket-key", k.as_bytes()));
    }
    let rh = RequestHead {
        method: if websocket {
            "GET"
        } else {
            parts.method.as_str()
        },
        target: &target,
        minor: 1,
        headers: fields,
        len: 0,
        host: Some(authority.as_bytes()),
        close: false,
        upgrade: websocket.then_some(&b"websocket"[..]),
        expect_continue: false,
    };
    let path = route.rewrite_path(&target);
    let mut up_head = bufpool::take_head(256 + bytes + 4 * h.len());
    head::upstream_request_on_route(
        &mut up_head,
        &rh,
        hcm,
        fwd,
        &path,
        c.peer,
        http::Version::HTTP_2,
    );
    if framing == Framing::UntilClose {
        up_head.truncate(up_head.len() - 2);
        up_head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    }
    drop(rh);

    cluster.stats.rq_total.inc();
    host.stats.rq_total.inc();
    let _cluster_active = GaugeGuard::new(&cluster.stats.rq_active);
    let _host_active = GaugeGuard::new(&host.stats.rq_active);
    let mut x = Exchange {
        hcm,
        src: Some(H2Recv::new(body)),
        up_head,
        framing,
        is_head: parts.method == Method::HEAD,
        websocket,
        sent_at: Instant::now(),
        pace: Pace::of(hcm),
        request_deadline: cfg.request_timeout.map(|t| Instant::now() + t),
        route_timeout: fwd.timeout,
        done: Done {
            service_ms: None,
            status: 0,
            flags: flags::NONE,
            sent: 0,
            received: 0,
            upstream: Some((cluster.clone(), host.clone(), Instant::now())),
        },
        reset_by_client: false,
    };
    let idempotent = framing == Framing::Empty
        && matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let pool = host.pool(c.worker).clone();
    let result = x.run(&pool, respond, idempotent).await;
    bufpool::give_head(std::mem::take(&mut x.up_head));
    match result {
        Ok(()) => {
            cluster.stats.rq_codes.record(x.done.status);
            x.done
        }
        Err((fail, head_sent)) => {
            let (status, flag, text) = fail.local_reply(&cluster, &host, 0);
            count_timeouts(hcm, &fail);
            if head_sent || matches!(fail, Fail::Client | Fail::BadRequestBody(_)) {
                // Too late for a local reply: the stream was reset.
                x.done.flags = if x.reset_by_client {
                    RESET_BY_CLIENT
                } else {
                    flag
                };
                if x.done.status == 0 {
                    x.done.status = status;
                }
                return x.done;
            }
            if !fail.is_downstream_timeout() {
                cluster.stats.rq_codes.record(status);
            }
            let mut d = reply(hcm, respond, status, text, flag);
            d.upstream = x.done.upstream;
            d.received = x.done.received;
            d
        }
    }
}

/// One stream's exchange with an upstream over a raw HTTP/1.1 socket.
struct Exchange<'a> {
    hcm: &'a Hcm,
    /// The client's body (taken by a WebSocket tunnel).
    src: Option<H2Recv>,
    up_head: Vec<u8>,
    framing: Framing,
    is_head: bool,
    websocket: bool,
    sent_at: Instant,
    pace: Pace,
    /// When the whole request must have arrived (`request_timeout`).
    request_deadline: Option<Instant>,
    route_timeout: Option<Duration>,
    done: Done,
    /// The client reset the stream.
    reset_by_client: bool,
}

/// A response head taken off the upstream socket.
struct UpstreamHead {
    resp: Response<()>,
    framing: Framing,
    /// The upstream will close after this response.
    up_close: bool,
    upgraded: bool,
}

impl Exchange<'_> {
    /// Sends the request and relays the response. On failure, says whether
    /// the response head had already gone to the client.
    async fn run(
        &mut self,
        pool: &Arc<nuncio_upstream::HostPool>,
        respond: &mut SendResponse<Bytes>,
        idempotent: bool,
    ) -> Result<(), (Fail, bool)> {
        let (mut conn, mut ubuf, head) = loop {
            let mut conn = pool.checkout_raw().await.map_err(|e| (e.into(), false))?;
            conn.uses += 1;
            let mut ubuf = bufpool::take();
            // Until the response head: a client reset cancels the upstream
            // request (the socket is dropped, never reused).
            let r = tokio::select! {
                r = self.send_and_head(&mut conn, &mut ubuf) => r,
                _ = poll_fn(|cx| respond.poll_reset(cx)) => {
                    self.hcm.stats.rq_rx_reset.inc();
                    self.reset_by_client = true;
                    Err(Fail::Client)
                }
            };
            match r {
                Ok(head) => break (conn, ubuf, head),
                // The upstream closed this pooled socket while it idled: the
                // request never reached it, so try the next one.
                Err(Fail::Reset) if conn.reused && idempotent && self.done.status == 0 => {
                    tracing::debug!("pooled upstream socket was closed; retrying");
                    bufpool::give(ubuf);
                    pool.discard_raw(conn);
                }
                Err(e) => {
                    bufpool::give(ubuf);
                    pool.discard_raw(conn);
                    return Err((e, false));
                }
            }
        };
        let end = head.framing == Framing::Empty && !head.upgraded;
        let tx = match respond.send_response(head.resp, end) {
            Ok(tx) => tx,
            Err(_) => {
                bufpool::give(ubuf);
                pool.discard_raw(conn);
                return Err((Fail::Client, false));
            }
        };
        let mut sink = H2Send::new(tx);
        if head.upgraded {
            self.tunnel(conn, ubuf, sink).await;
            return Ok(());
        }
        if end {
            let reusable = !head.up_close && ubuf.is_empty();
            bufpool::give(ubuf);
            if reusable {
                pool.checkin_raw(conn);
            } else {
                pool.discard_raw(conn);
            }
            return Ok(());
        }
        let remaining = self.remaining();
        let body = self.relay_body(&mut conn, &mut ubuf, &mut sink, head.framing);
        let r = match remaining {
            Some(t) => deadline::within(t, body)
                .await
                .unwrap_or(Err(Fail::Timeout)),
            None => body.await,
        };
        match r {
            Ok(()) => {
                let reusable =
                    head.framing != Framing::UntilClose && !head.up_close && ubuf.is_empty();
                bufpool::give(ubuf);
                if reusable {
                    pool.checkin_raw(conn);
                } else {
                    pool.discard_raw(conn);
                }
                Ok(())
            }
            Err(e) => {
                tracing::debug!(error = ?e, "response aborted mid-body");
                sink.abort();
                bufpool::give(ubuf);
                pool.discard_raw(conn);
                Err((e, true))
            }
        }
    }

    /// What is left of the route timeout (which started when the request
    /// ended), if there is one.
    fn remaining(&self) -> Option<Duration> {
        self.route_timeout.map(|t| {
            t.saturating_sub(self.sent_at.elapsed())
                .max(Duration::from_millis(1))
        })
    }

    /// Writes the request (head and body) and reads the response head.
    async fn send_and_head(
        &mut self,
        conn: &mut RawConn,
        ubuf: &mut BytesMut,
    ) -> Result<UpstreamHead, Fail> {
        let up = &mut conn.stream;
        up.write_all(&self.up_head).await.map_err(|_| Fail::Reset)?;
        if self.framing != Framing::Empty {
            let out = if self.framing == Framing::UntilClose {
                Out::Rechunk
            } else {
                Out::Same
            };
            let Some(src) = self.src.as_mut() else {
                return Err(Fail::Client);
            };
            if self.framing == Framing::UntilClose {
                self.done.received = {
                    let upload = std::pin::pin!(send_chunked(src, up, self.pace.idle));
                    until(self.request_deadline, upload).await??
                };
                return self.after_request(up, ubuf).await;
            }
            let mut pending = BytesMut::new();
            let upload = std::pin::pin!(relay(src, &mut pending, up, self.framing, out, self.pace));
            match until(self.request_deadline, upload).await? {
                Ok(n) => self.done.received = n,
                Err(e) => return Err(Fail::from_request_body(e)),
            }
        }
        self.after_request(up, ubuf).await
    }

    /// Reads the response head once the request is out.
    async fn after_request(
        &mut self,
        up: &mut tokio::net::TcpStream,
        ubuf: &mut BytesMut,
    ) -> Result<UpstreamHead, Fail> {
        // Envoy's route timeout runs from the end of the request.
        self.sent_at = Instant::now();
        if let Some((_, _, at)) = &mut self.done.upstream {
            *at = self.sent_at;
        }
        let timeout = self.route_timeout;
        let head = self.read_head(up, ubuf);
        match timeout {
            Some(t) => deadline::within(t, head)
                .await
                .unwrap_or(Err(Fail::Timeout)),
            None => head.await,
        }
    }

    /// Reads the response head (1xx other than 101 are skipped) and turns
    /// it into the client's HTTP/2 response.
    async fn read_head(
        &mut self,
        up: &mut tokio::net::TcpStream,
        ubuf: &mut BytesMut,
    ) -> Result<UpstreamHead, Fail> {
        read_response_head(up, ubuf, None, |r| {
            let upgraded = self.websocket && r.status == 101;
            if r.status == 101 && !upgraded {
                return Err(Fail::Protocol);
            }
            let framing = response_framing(&r, if self.is_head { "HEAD" } else { "GET" })
                .map_err(|_| Fail::Protocol)?;
            let service_ms = self.sent_at.elapsed().as_millis() as u64;
            self.done.service_ms = Some(service_ms);
            let resp = downstream_head(
                &r,
                &self.hcm.config.server_name,
                (!self.hcm.config.suppress_envoy_headers).then_some(service_ms),
                upgraded,
            );
            self.done.status = resp.status().as_u16();
            Ok(UpstreamHead {
                resp,
                framing: if upgraded { Framing::Empty } else { framing },
                up_close: r.close || framing == Framing::UntilClose,
                upgraded,
            })
        })
        .await
    }

    /// Relays the response body into DATA frames.
    async fn relay_body(
        &mut self,
        conn: &mut RawConn,
        ubuf: &mut BytesMut,
        sink: &mut H2Send,
        framing: Framing,
    ) -> Result<(), Fail> {
        // A small body already in hand goes out as one DATA frame.
        if let Framing::Length(n) = framing {
            if (ubuf.len() as u64) >= n && n <= 16 * 1024 {
                let data = Bytes::copy_from_slice(&ubuf[..n as usize]);
                ubuf.advance(n as usize);
                self.done.sent = n;
                return sink.send_last(data).map_err(|_| Fail::Client);
            }
        }
        if framing == Framing::Chunked {
            self.done.sent = relay_chunked(&mut conn.stream, ubuf, sink, self.pace).await?;
            return Ok(());
        }
        match relay(&mut conn.stream, ubuf, sink, framing, Out::Same, self.pace).await {
            Ok(n) => self.done.sent = n,
            Err(e) => {
                // The client's side failed: its stream was reset.
                self.reset_by_client = matches!(e, RelayError::Dst(_));
                return Err(Fail::from_response_body(e));
            }
        }
        sink.shutdown().await.map_err(|_| Fail::Client)
    }

    /// After a WebSocket was accepted: bytes both ways until either side
    /// ends (outside the route timeout, as Envoy does for upgrades).
    async fn tunnel(&mut self, mut conn: RawConn, leftover: BytesMut, mut tx: H2Send) {
        let hcm = self.hcm;
        hcm.stats.cx_upgrades_total.inc();
        let _active = GaugeGuard::new(&hcm.stats.cx_upgrades_active);
        if !leftover.is_empty() && tx.write_all(&leftover).await.is_err() {
            return;
        }
        let Some(src) = self.src.take() else {
            return;
        };
        let mut down = H2Duplex { rx: src, tx };
        let _ = tokio::io::copy_bidirectional(&mut down, &mut conn.stream).await;
        let _ = down.shutdown().await;
    }
}

/// The client's response head from the upstream's: hop-by-hop and
/// connection-specific headers removed (HTTP/2 forbids them), `server`
/// and `x-envoy-upstream-service-time` set.
fn downstream_head(
    r: &ResponseHead<'_>,
    server: &str,
    service_ms: Option<u64>,
    upgraded: bool,
) -> Response<()> {
    let mut resp = Response::new(());
    *resp.status_mut() = if upgraded {
        StatusCode::OK
    } else {
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY)
    };
    let listed = head::connection_listed(&r.headers);
    let h = resp.headers_mut();
    h.reserve(r.headers.len() + 2);
    for (n, v) in &r.headers {
        let skip = head::hop_by_hop(n, b"")
            || n.eq_ignore_ascii_case("transfer-encoding")
            || n.eq_ignore_ascii_case("server")
            || (upgraded && n.eq_ignore_ascii_case("sec-websocket-accept"))
            || (!listed.is_empty() && listed.iter().any(|l| l.eq_ignore_ascii_case(n.as_bytes())));
        if skip {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            h.append(n, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(server) {
        h.insert(header::SERVER, v);
    }
    if let Some(ms) = service_ms {
        h.insert(
            crate::headers::X_ENVOY_UPSTREAM_SERVICE_TIME,
            HeaderValue::from(ms),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_h1::parse_response;

    #[test]
    fn downstream_head_drops_what_http2_forbids() {
        let raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, x-hop\r\nKeep-Alive: timeout=5\r\n\
Transfer-Encoding: chunked\r\nX-Hop: 1\r\nTE: trailers\r\nServer: origin\r\nX-Kept: yes\r\nUpgrade: h2c\r\n\r\n";
        let r = parse_response(raw, 32, 4096).unwrap().unwrap();
        let resp = downstream_head(&r, "envoy", Some(7), false);
        let h = resp.headers();
        for gone in [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "x-hop",
            "te",
            "upgrade",
        ] {
            assert!(h.get(gone).is_none(), "{gone} kept");
        }
        assert_eq!(h["x-kept"], "yes");
        assert_eq!(h["server"], "envoy");
        assert_eq!(h["x-envoy-upstream-service-time"], "7");
        assert_eq!(resp.status(), 200);
    }

    #[test]
    fn an_accepted_websocket_is_a_200_without_its_h1_handshake_headers() {
        let raw =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let r = parse_response(raw, 32, 4096).unwrap().unwrap();
        let resp = downstream_head(&r, "envoy", None, true);
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("sec-websocket-accept").is_none());
        assert!(resp.headers().get("upgrade").is_none());
    }
}
