//! HTTP/2 clients: nuncio's own codec (`crates/h2`: framing, HPACK, flow
//! control, stream state) with the connection manager's request handling.
//! Each stream runs as one task. To an HTTP/1.1 cluster it writes its
//! HTTP/1.1 request straight onto a pooled upstream socket, reads the
//! response itself and HPACK-encodes the response head straight from the
//! upstream's header bytes: no `HeaderMap` on either side, no client
//! dispatch task, no channel. To an HTTP/2 cluster the same head goes
//! through `h2up` (the `h2` crate's client).
//!
//! Measured (callgrind, `MIX=h2c bash bench/profile.sh`): the hyper server
//! plus hyper client path cost ~60.8k instructions per request, this path
//! on the `h2` crate ~41k; see bench/RESULTS.md for this module's figure.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use nuncio_h1::{response_framing, Framing, RequestHead};
use nuncio_h2::{Reason, RecvStream, Request, SendResponse};
use nuncio_h2flood::FloodGuard;
use nuncio_router::path::PathVerdict;
use nuncio_router::RouteKind;
use nuncio_stats::GaugeGuard;
use nuncio_upstream::RawConn;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::h2guard::PrematureResets;
use super::h2head::downstream_head;
use super::h2io::{send_chunked, H2Duplex, H2Recv, H2Send};
use super::head;
use super::io::Pace;
use super::relay::{relay, Out, RelayError};
use super::upstream::{read_response_head, Fail};
use super::watch::{count_timeouts, until};
use super::{bufpool, deadline, finish, Done};
use crate::access_log::LogEntry;
use crate::flags;
use crate::local_reply::{LocalReply, RequestKind};
use crate::Hcm;
use nuncio_config::UnderscoresAction;

/// Envoy's response flag for a stream the client reset (`DR`).
const RESET_BY_CLIENT: &str = flags::DOWNSTREAM_RESET;

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
    let settings = nuncio_h2::Config {
        max_concurrent_streams: cfg.http2.max_concurrent_streams,
        initial_window_size: cfg.http2.initial_stream_window_size,
        initial_connection_window_size: cfg.http2.initial_connection_window_size,
        max_header_list_size: hcm.h2_header_list_size(),
        // Extended CONNECT (RFC 8441) is always offered, so that a
        // WebSocket on a route without it gets Envoy's 403, not a
        // protocol error at the previous hop.
        enable_connect_protocol: true,
        idle_timeout: (!cfg.idle_timeout.is_zero()).then_some(cfg.idle_timeout),
        stats: Some(hcm.stats.codec.h2.clone()),
    };
    // Boxed: freed once the handshake is done, so an open connection's
    // task is only as large as its loop (1.3 KB instead of 2.4 KB).
    let Some(mut conn) = Box::pin(open(&hcm, io, settings, peer)).await else {
        return;
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
                conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                let _ = deadline::within(Duration::from_millis(500), conn.closed()).await;
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
            Some(Ok((req, rx, respond))) => {
                // Boxed: the task then holds a pointer, and tokio moves
                // the stream's (large) state once instead of three times.
                tokio::spawn(Box::pin(stream(ctx.clone(), req, rx, respond)));
            }
            Some(Err(nuncio_h2::Error::IdleTimeout)) => {
                hcm.stats.cx_idle_timeout.inc();
                break;
            }
            Some(Err(e)) => {
                tracing::debug!(%peer, error = %e, "downstream h2 connection ended with an error");
                break;
            }
            None => break,
        }
    }
}

/// The flood guard and the codec's handshake, bounded like an idle
/// connection. A separate future: the task then keeps the connection
/// alone, not the finished handshake beside it.
async fn open<T>(
    hcm: &Hcm,
    io: T,
    settings: nuncio_h2::Config,
    peer: SocketAddr,
) -> Option<nuncio_h2::Connection<FloodGuard<T>>>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let cfg = &hcm.config;
    let io = FloodGuard::server(io, cfg.http2.flood, &hcm.stats.codec.flood, peer);
    // Pinned and borrowed by the timeout: moved into it, the handshake
    // would be stored again in each layer of the wrapper.
    let mut handshake = std::pin::pin!(nuncio_h2::handshake(io, settings));
    let shook = if cfg.idle_timeout.is_zero() {
        Ok(handshake.await)
    } else {
        deadline::within(cfg.idle_timeout, handshake.as_mut()).await
    };
    match shook {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "h2 handshake failed");
            None
        }
        Err(_) => None,
    }
}

/// Serves one stream: stats and access log around [`handle`].
async fn stream(c: Arc<Conn>, req: Request, rx: RecvStream, mut respond: SendResponse) {
    let hcm = &c.hcm;
    let start = Instant::now();
    hcm.stats.rq_total.inc();
    hcm.stats.rq_http2_total.inc();
    let _active = GaugeGuard::new(&hcm.stats.rq_active);
    let log = hcm.access_log.as_ref().map(|_| {
        let authority = req
            .authority()
            .or_else(|| req.header("host").and_then(|h| std::str::from_utf8(h).ok()))
            .unwrap_or("");
        LogEntry::from_fields(
            SystemTime::now(),
            req.method(),
            req.path().unwrap_or(""),
            authority,
            "HTTP/2",
            req.headers(),
            c.peer,
        )
    });
    let done = if respond.is_reset() {
        // Reset before it was taken up (rapid reset): no upstream work,
        // and the premature-reset guard counts it.
        hcm.stats.rq_rx_reset.inc();
        Done::local(0, RESET_BY_CLIENT, 0)
    } else {
        handle(&c, req, rx, &mut respond).await
    };
    c.resets
        .stream_closed(start.elapsed(), done.flags == RESET_BY_CLIENT);
    finish(hcm, start, done, log);
}

/// A local reply on the stream (Envoy's `text/plain` body, or the gRPC
/// form for gRPC, head only for HEAD).
async fn reply(
    hcm: &Hcm,
    respond: &mut SendResponse,
    kind: RequestKind,
    status: u16,
    body: &str,
    flag: &'static str,
) -> Done {
    reply_with(hcm, respond, kind, status, body, flag, None).await
}

/// [`reply`] with a `location` header (redirects).
async fn reply_with(
    hcm: &Hcm,
    respond: &mut SendResponse,
    kind: RequestKind,
    status: u16,
    body: &str,
    flag: &'static str,
    location: Option<&str>,
) -> Done {
    let r = LocalReply::new(status, body, kind);
    let body = r.wire_body();
    let sent = respond.send_response(r.wire_status(), body.is_empty(), |f| {
        r.fields(|n, v| f.add(n, v));
        f.add(b"date", &super::date::now());
        f.add(b"server", hcm.config.server_name.as_bytes());
        if let Some(l) = location {
            f.add(b"location", l.as_bytes());
        }
    });
    if let (Ok(tx), false) = (sent, body.is_empty()) {
        let _ = H2Send::new(tx).send_last(body.as_bytes()).await;
    }
    Done::local(r.wire_status(), flag, body.len())
}

/// Routes and forwards one request; returns what became of it.
async fn handle(c: &Conn, mut req: Request, body: RecvStream, respond: &mut SendResponse) -> Done {
    let hcm = &c.hcm;
    let cfg = &hcm.config;
    let kind = RequestKind {
        grpc: crate::local_reply::is_grpc(req.header("content-type")),
        head: req.method() == "HEAD",
        http10: false,
    };
    if cfg.underscores != UnderscoresAction::Allow && req.headers().any(|(n, _)| n.contains(&b'_'))
    {
        if cfg.underscores == UnderscoresAction::Reject {
            // Envoy resets the stream (HTTP/1 gets a 400).
            hcm.stats.codec.h2_rejected_underscores.inc();
            hcm.stats.rq_rejected.inc_not_codec();
            respond.send_reset(Reason::PROTOCOL_ERROR);
            return Done::local(400, flags::LOCAL_REJECT, 0);
        }
        let before = req.header_count();
        req.retain_headers(|n, _| !n.contains(&b'_'));
        let dropped = before - req.header_count();
        hcm.stats.codec.h2_dropped_underscores.add(dropped as u64);
    }
    // The codec has already refused uppercase names, connection-specific
    // headers, `te` other than `trailers` and malformed pseudo-headers.
    let bytes: usize = req.headers().map(|(n, v)| n.len() + v.len()).sum();
    if req.header_count() > cfg.max_headers_count as usize || bytes > hcm.max_header_bytes {
        hcm.stats.rq_rejected.inc_not_codec();
        return reply(hcm, respond, kind, 431, "", flags::LOCAL_REJECT).await;
    }
    // Route and forward on `:authority` (RFC 9113 8.3.1, as Envoy): a
    // `host` field beside it is dropped, never forwarded.
    let host_fields = req.headers().filter(|(n, _)| *n == b"host").count();
    let authority = match req.authority() {
        Some(a) => Some(a),
        None if host_fields == 1 => req
            .header("host")
            .filter(|v| nuncio_h1::valid_authority(v))
            .and_then(|v| std::str::from_utf8(v).ok()),
        None => None,
    };
    let Some(authority) = authority else {
        hcm.stats.rq_rejected.inc_not_codec();
        return reply(hcm, respond, kind, 400, "", flags::LOCAL_REJECT).await;
    };
    let method = req.method();
    let websocket = method == "CONNECT"
        && req
            .protocol()
            .is_some_and(|p| p.eq_ignore_ascii_case("websocket"));
    if method == "CONNECT" && !websocket {
        // No route matches CONNECT (nuncio has no connect_matcher): Envoy's 404.
        hcm.stats.no_route.inc();
        return reply(hcm, respond, kind, 404, "", flags::NO_ROUTE).await;
    }
    let target = req.path().unwrap_or("/");
    let target = match nuncio_router::path::normalize(target, &cfg.path) {
        PathVerdict::Use(t) => t,
        PathVerdict::Reject => {
            hcm.stats.rq_failed_path_normalization.inc();
            return reply(hcm, respond, kind, 400, "", flags::LOCAL_REJECT).await;
        }
        PathVerdict::Redirect(to) => {
            hcm.stats.rq_redirected_with_normalized_path.inc();
            return reply_with(hcm, respond, kind, 307, "", flags::NONE, Some(&to)).await;
        }
    };
    let Some(route) = hcm
        .routes
        .route(authority.trim_end_matches([' ', '\t']), &target)
    else {
        hcm.stats.no_route.inc();
        return reply(hcm, respond, kind, 404, "", flags::NO_ROUTE).await;
    };
    hcm.stats.router_rq_total.inc();
    let fwd = match &route.kind {
        RouteKind::Direct { status, body } => {
            hcm.stats.rq_direct_response.inc();
            let text = String::from_utf8_lossy(body);
            return reply(hcm, respond, kind, *status, &text, flags::NONE).await;
        }
        RouteKind::Forward(f) => f,
    };
    if websocket && !fwd.websocket {
        hcm.stats.ws_on_non_ws_route.inc();
        return reply(hcm, respond, kind, 403, "", flags::NONE).await;
    }
    if req
        .headers()
        .any(|(n, v)| n == b"via" && crate::via::seen_in(v, &hcm.via_id))
    {
        crate::via::loop_detected(&hcm.stats, &hcm.via_id, fwd.cluster.name());
        return reply(
            hcm,
            respond,
            kind,
            508,
            "request loop detected",
            flags::NONE,
        )
        .await;
    }
    let cluster = fwd.cluster.clone();
    let Some(host) = cluster.choose_host() else {
        return reply(
            hcm,
            respond,
            kind,
            503,
            "no healthy upstream",
            flags::NO_HEALTHY_UPSTREAM,
        )
        .await;
    };

    // The request body's framing upstream: as received when the client
    // gave a length, else chunked.
    let framing = if req.is_end_stream() || websocket {
        Framing::Empty
    } else {
        match req.content_length() {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    // The upstream head, in HTTP/1.1. Names are lowercase tokens (the
    // codec checked them), so they are valid UTF-8.
    // HTTP/2 may split `cookie` into several fields; HTTP/1.1 allows one
    // (RFC 9113 8.2.3): they are joined with "; ".
    let cookies = req.headers().filter(|(n, _)| *n == b"cookie").count();
    let joined_cookie: Vec<u8> = if cookies > 1 {
        let mut j = Vec::new();
        for (_, v) in req.headers().filter(|(n, _)| *n == b"cookie") {
            if !j.is_empty() {
                j.extend_from_slice(b"; ");
            }
            j.extend_from_slice(v);
        }
        j
    } else {
        Vec::new()
    };
    let mut fields: Vec<(&str, &[u8])> = Vec::with_capacity(req.header_count() + 3);
    fields.push(("host", authority.as_bytes()));
    let mut has_ws_version = false;
    let mut cookie_done = false;
    for (n, v) in req.headers() {
        let Ok(n) = std::str::from_utf8(n) else {
            continue;
        };
        if n == "host" {
            continue;
        }
        if n == "cookie" && cookies > 1 {
            if !cookie_done {
                cookie_done = true;
                fields.push(("cookie", &joined_cookie));
            }
            continue;
        }
        has_ws_version |= n == "sec-websocket-version";
        fields.push((n, v));
    }
    let ws_key = websocket.then(crate::headers::random_key);
    if let Some(k) = &ws_key {
        if !has_ws_version {
            fields.push(("sec-websocket-version", b"13"));
        }
        fields.push(("sec-websocket-key", k.as_bytes()));
    }
    let n_fields = fields.len();
    let rh = RequestHead {
        method: if websocket { "GET" } else { method },
        target: &target,
        authority: None,
        minor: 1,
        headers: fields,
        len: 0,
        host: Some(authority.as_bytes()),
        close: false,
        upgrade: websocket.then_some(&b"websocket"[..]),
        expect_continue: false,
    };
    let path = route.rewrite_path(&target);
    let mut up_head = bufpool::take_head(256 + bytes + 4 * n_fields);
    let request_id = head::upstream_request_on_route(
        &mut up_head,
        &rh,
        hcm,
        fwd,
        &path,
        c.peer,
        http::Version::HTTP_2,
        framing == Framing::Empty,
        (*path != *target).then_some(&*target),
    );
    if framing == Framing::UntilClose {
        up_head.truncate(up_head.len() - 2);
        up_head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    }
    drop(rh);

    let _cluster_active = GaugeGuard::new(&cluster.stats.rq_active);
    let _host_active = GaugeGuard::new(&host.stats.rq_active);
    let is_head = method == "HEAD";
    let idempotent = framing == Framing::Empty && matches!(method, "GET" | "HEAD" | "OPTIONS");
    let mut x = Exchange {
        hcm,
        src: Some(H2Recv::new(body)),
        up_head,
        framing,
        is_head,
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
            request_id,
        },
        reset_by_client: false,
        upstream_codes: &cluster.stats.rq_codes,
        upstream_tx_reset: &cluster.stats.rq_tx_reset,
    };
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
                // No response went out: like Envoy, no response code is
                // counted or logged (0) for a reset stream.
                if head_sent && !matches!(fail, Fail::Client) {
                    crate::counting::aborted(&hcm.stats, false, true);
                }
                if x.done.status != 0 {
                    // Envoy counts the upstream's code when its head arrives.
                    cluster.stats.rq_codes.record(x.done.status);
                }
                return x.done;
            }
            if !fail.is_downstream_timeout() {
                cluster.stats.rq_codes.record(status);
            }
            let mut d = reply(hcm, respond, kind, status, text, flag).await;
            d.upstream = x.done.upstream;
            d.request_id = x.done.request_id;
            d.received = x.done.received;
            d
        }
    }
}

/// One stream's exchange with an upstream over a raw HTTP/1.1 socket.
struct Exchange<'a> {
    hcm: &'a Hcm,
    /// The cluster's codes: `upstream_rq_1xx` for interim responses.
    upstream_codes: &'a nuncio_stats::CodeStats,
    /// The cluster's `upstream_rq_tx_reset` (an HTTP/2 stream given up).
    upstream_tx_reset: &'a nuncio_stats::Counter,
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
    /// The client's response head, HPACK-encoded (bufpool head buffer).
    block: Vec<u8>,
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
        respond: &mut SendResponse,
        idempotent: bool,
    ) -> Result<(), (Fail, bool)> {
        if let nuncio_upstream::Protocol::Http2 { .. } = pool.protocol() {
            return self.run_h2(pool, respond).await;
        }
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
                    pool.discard_raw_failed(conn, e.upstream_protocol_error(false));
                    return Err((e, false));
                }
            }
        };
        let end = head.framing == Framing::Empty && !head.upgraded;
        let sent = respond.send_block(&head.block, end);
        bufpool::give_head(head.block);
        let tx = match sent {
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
        // Pinned here and borrowed by the timeout: moved into it, the
        // body future would be stored (and copied) twice.
        let r = {
            let mut body =
                std::pin::pin!(self.relay_body(&mut conn, &mut ubuf, &mut sink, head.framing));
            match remaining {
                Some(t) => deadline::within(t, body.as_mut())
                    .await
                    .unwrap_or(Err(Fail::Timeout)),
                None => body.await,
            }
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
                pool.discard_raw_failed(conn, e.upstream_protocol_error(true));
                Err((e, true))
            }
        }
    }

    /// [`Exchange::run`] for an HTTP/2 cluster.
    async fn run_h2(
        &mut self,
        pool: &Arc<nuncio_upstream::HostPool>,
        respond: &mut SendResponse,
    ) -> Result<(), (Fail, bool)> {
        let mut out = super::h2up::Outcome::default();
        let from = super::h2up::FromH2 {
            hcm: self.hcm,
            src: &mut self.src,
            up_head: &self.up_head,
            framing: self.framing,
            pace: self.pace,
            request_deadline: self.request_deadline,
            route_timeout: self.route_timeout,
            tx_reset: self.upstream_tx_reset,
        };
        let r = super::h2up::forward_h2(from, pool, respond, &mut out).await;
        self.done.status = out.status;
        self.done.service_ms = out.service_ms;
        self.done.sent = out.sent;
        self.done.received = out.received;
        self.reset_by_client = out.reset_by_client;
        r
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
        up: &mut nuncio_stats::io::CountedTcp,
        ubuf: &mut BytesMut,
    ) -> Result<UpstreamHead, Fail> {
        // Envoy's route timeout runs from the end of the request.
        self.sent_at = Instant::now();
        if let Some((_, _, at)) = &mut self.done.upstream {
            *at = self.sent_at;
        }
        let timeout = self.route_timeout;
        let mut head = std::pin::pin!(self.read_head(up, ubuf));
        match timeout {
            Some(t) => deadline::within(t, head.as_mut())
                .await
                .unwrap_or(Err(Fail::Timeout)),
            None => head.await,
        }
    }

    /// Reads the response head (1xx other than 101 are skipped) and turns
    /// it into the client's HTTP/2 response.
    async fn read_head(
        &mut self,
        up: &mut nuncio_stats::io::CountedTcp,
        ubuf: &mut BytesMut,
    ) -> Result<UpstreamHead, Fail> {
        read_response_head(up, ubuf, None, self.upstream_codes, |r| {
            let upgraded = self.websocket && r.status == 101;
            if r.status == 101 && !upgraded {
                return Err(Fail::Protocol);
            }
            let framing = response_framing(&r, if self.is_head { "HEAD" } else { "GET" })
                .map_err(|_| Fail::Protocol)?;
            let service_ms = self.sent_at.elapsed().as_millis() as u64;
            self.done.service_ms = Some(service_ms);
            let mut block = bufpool::take_head(64 + r.len);
            self.done.status = downstream_head(
                &r,
                &self.hcm.config.server_name,
                (!self.hcm.config.suppress_envoy_headers).then_some(service_ms),
                upgraded,
                &mut block,
            );
            Ok(UpstreamHead {
                block,
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
                let sent = sink.send_last(&ubuf[..n as usize]).await;
                ubuf.advance(n as usize);
                self.done.sent = n;
                return sent.map_err(|_| Fail::Client);
            }
        }
        if framing == Framing::Chunked {
            self.done.sent = super::relay::relay_chunked(&mut conn.stream, ubuf, sink, self.pace)
                .await
                .map_err(Fail::from_response_body)?;
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
