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

mod exchange;

use exchange::Exchange;
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

use crate::access_log::LogEntry;
use crate::flags;
use crate::local_reply::{LocalReply, RequestKind};
use crate::native::filtering::{self, Decision, RequestView};
use crate::native::h2guard::PrematureResets;
use crate::native::h2head::downstream_head;
use crate::native::h2io::{send_chunked, H2Duplex, H2Recv, H2Send};
use crate::native::head;
use crate::native::io::Pace;
use crate::native::relay::{relay, Out, RelayError};
use crate::native::upstream::{read_response_head, Fail};
use crate::native::watch::{count_timeouts, until};
use crate::native::{bufpool, deadline, finish, Done, Local};
use crate::Hcm;
use nuncio_config::UnderscoresAction;

/// Envoy's response flag for a stream the client reset (`DR`).
const RESET_BY_CLIENT: flags::ResponseFlags = flags::DOWNSTREAM_RESET;

/// What every stream of one connection shares.
struct Conn {
    hcm: Arc<Hcm>,
    peer: SocketAddr,
    /// The listener side of the socket (read only when filters need it).
    local: Option<SocketAddr>,
    /// The connection is TLS (`x-forwarded-proto: https`).
    secure: bool,
    worker: usize,
    resets: PrematureResets,
}

/// Serves one HTTP/2 connection (its preface may already be in `io`'s
/// prefix) until the client closes it, or a drain ends it with GOAWAY.
pub(crate) async fn serve<T>(
    hcm: Arc<Hcm>,
    io: T,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    secure: bool,
    worker: usize,
) where
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
        local,
        secure,
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
    let mut log = hcm.access_log.as_ref().map(|_| {
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
        handle(&c, req, rx, &mut respond, &mut log, start).await
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
    flag: crate::flags::ResponseFlags,
) -> Done {
    reply_local(hcm, respond, kind, Local::new(status, body, flag)).await
}

/// Writes a local reply on the stream.
async fn reply_local(
    hcm: &Hcm,
    respond: &mut SendResponse,
    kind: RequestKind,
    l: Local<'_>,
) -> Done {
    let flag = l.flag;
    let mut r = LocalReply::new(l.status, l.body, kind);
    r.grpc_status = l.grpc_status;
    let body = r.wire_body();
    let sent = respond.send_response(r.wire_status(), body.is_empty(), |f| {
        // Envoy sets a local reply's added headers before its own.
        for (n, v) in l.edits.into_iter().flat_map(nuncio_filters::Edits::added) {
            f.add(n.as_bytes(), v.as_bytes());
        }
        r.fields(|n, v| f.add(n, v));
        f.add(b"date", &super::date::now());
        f.add(b"server", hcm.config.server_name.as_bytes());
        if let Some(loc) = l.location {
            f.add(b"location", loc.as_bytes());
        }
    });
    if let (Ok(tx), false) = (sent, body.is_empty()) {
        let _ = H2Send::new(tx).send_last(body.as_bytes()).await;
    }
    Done::local(r.wire_status(), flag, body.len())
}

/// Routes and forwards one request; returns what became of it.
async fn handle(
    c: &Conn,
    mut req: Request,
    body: RecvStream,
    respond: &mut SendResponse,
    log: &mut Option<Box<LogEntry>>,
    started: Instant,
) -> Done {
    let mut src = H2Recv::new(body);
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
            let l = Local {
                location: Some(&to),
                ..Local::new(307, "", flags::NONE)
            };
            return reply_local(hcm, respond, kind, l).await;
        }
    };
    let route = hcm
        .routes
        .route(authority.trim_end_matches([' ', '\t']), &target);
    if let (Some(l), Some(r)) = (log.as_mut(), route) {
        l.route_name.clone_from(&r.name);
    }
    // Once filters ran, every reply goes back through them.
    let mut filtered: Option<filtering::Filtered> = None;
    if hcm.is_filtering() {
        let view_fields: Vec<(&str, &[u8])> = req
            .headers()
            .filter_map(|(n, v)| Some((std::str::from_utf8(n).ok()?, v)))
            .collect();
        let view = RequestView {
            method,
            path: &target,
            authority,
            fields: &view_fields,
            protocol: nuncio_filters::formatter::Protocol::Http2,
            bodyless: req.is_end_stream(),
            peer: c.peer,
            local: c.local,
            started,
        };
        let decision = filtering::on_request(hcm, route, view, &mut filtered).await;
        if let (Some(l), Some(f)) = (log.as_mut(), filtered.as_ref()) {
            l.flags |= f.flags;
        }
        if let (Some(Decision::Reply(r)), Some(f)) = (decision, filtered.as_mut()) {
            {
                for (n, v) in &r.headers {
                    f.response.append(n, v);
                }
                let health_check = f.health_check;
                let edits = filtering::on_response(hcm, f, route, r.status, &[], true, None);
                let l = Local {
                    grpc_status: r.grpc_status.and_then(|g| u8::try_from(g).ok()),
                    edits: Some(edits),
                    ..Local::new(r.status, &r.body, r.flag)
                };
                let mut d = reply_local(hcm, respond, kind, l).await;
                d.health_check = health_check;
                return d;
            }
        }
    }
    macro_rules! refuse {
        ($status:expr, $body:expr, $flag:expr) => {{
            let status: u16 = $status;
            let edits = filtered
                .as_mut()
                .map(|f| &*filtering::on_response(hcm, f, route, status, &[], true, None));
            let l = Local {
                edits,
                ..Local::new(status, $body, $flag)
            };
            return reply_local(hcm, respond, kind, l).await;
        }};
    }
    // A filter asked for the whole body first (the buffer filter).
    let mut buffered: Option<u64> = None;
    let limit = filtered.as_ref().and_then(|f| f.buffer_request);
    if let (Some(limit), false) = (limit, req.is_end_stream()) {
        let deadline = cfg.request_timeout.map(|t| Instant::now() + t);
        match crate::native::buffering::read_h2(&mut src, limit, Pace::of(hcm), deadline).await {
            Ok(n) => {
                if let Some(f) = filtered.as_mut() {
                    f.request.set("content-length", &n.to_string());
                }
                buffered = Some(n);
            }
            Err(crate::native::buffering::Refused::TooLarge) => {
                hcm.stats.rq_too_large.inc();
                refuse!(413, crate::native::buffering::TOO_LARGE, flags::NONE)
            }
            Err(crate::native::buffering::Refused::Failed(fail)) => {
                count_timeouts(hcm, &fail);
                match fail {
                    Fail::StreamIdle => refuse!(408, "stream timeout", flags::STREAM_IDLE_TIMEOUT),
                    Fail::RequestTimeout => refuse!(408, "request timeout", flags::NONE),
                    _ => {
                        hcm.stats.rq_rx_reset.inc();
                        return Done::local(0, RESET_BY_CLIENT, 0);
                    }
                }
            }
        }
    }
    let Some(route) = route else {
        hcm.stats.no_route.inc();
        refuse!(404, "", flags::NO_ROUTE)
    };
    hcm.stats.router_rq_total.inc();
    let fwd = match &route.kind {
        RouteKind::Direct { status, body } => {
            hcm.stats.rq_direct_response.inc();
            let text = String::from_utf8_lossy(body);
            refuse!(*status, &text, flags::NONE)
        }
        RouteKind::Forward(f) => f,
    };
    if websocket && !fwd.websocket {
        hcm.stats.ws_on_non_ws_route.inc();
        refuse!(403, "", flags::NONE)
    }
    if req
        .headers()
        .any(|(n, v)| n == b"via" && crate::via::seen_in(v, &hcm.via_id))
    {
        crate::via::loop_detected(&hcm.stats, &hcm.via_id, fwd.cluster.name());
        refuse!(508, "request loop detected", flags::NONE)
    }
    let cluster = fwd.cluster.clone();
    let Some(host) = cluster.choose_host() else {
        refuse!(503, "no healthy upstream", flags::NO_HEALTHY_UPSTREAM)
    };

    // The request body's framing upstream: as received when the client
    // gave a length, else chunked.
    let framing = if req.is_end_stream() || websocket {
        Framing::Empty
    } else if let Some(n) = buffered {
        Framing::Length(n)
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
        c.secure,
        http::Version::HTTP_2,
        framing == Framing::Empty,
        (*path != *target).then_some(&*target),
        filtered.as_ref().map(|f| &f.request),
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
        src: Some(src),
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
            resp_headers: None,
            health_check: filtered.as_ref().is_some_and(|f| f.health_check),
        },
        log_response: log.is_some()
            && hcm
                .access_log
                .as_ref()
                .is_some_and(|a| a.reads_response_headers()),
        reset_by_client: false,
        upstream_codes: &cluster.stats.rq_codes,
        upstream_tx_reset: &cluster.stats.rq_tx_reset,
        hook: filtering::ResponseHook::of(hcm, filtered.as_mut(), route, host.addr),
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
            let l = Local {
                edits: x.hook.as_mut().map(|h| h.local(status)),
                ..Local::new(status, text, flag)
            };
            let mut d = reply_local(hcm, respond, kind, l).await;
            d.upstream = x.done.upstream;
            d.request_id = x.done.request_id;
            d.received = x.done.received;
            d
        }
    }
}
