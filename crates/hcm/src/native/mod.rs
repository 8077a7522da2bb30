//! nuncio's HTTP/1.1 request path (issue #4): one task per downstream
//! connection parses each request head with `nuncio_h1` in place, writes
//! the rewritten head to an upstream socket it checks out of this worker's
//! pool, relays the bodies by their framing and returns the socket. There
//! is no header map, no channel and no second task per request, and no
//! buffer while the connection is idle. A route to an HTTP/2 cluster sends
//! the same head through `h2up` instead. A client that opens with the h2c
//! preface is handed to the HTTP/2 path (`h2`) with the bytes already read.

mod bufpool;
mod date;
pub(crate) mod deadline;
mod exchange;
pub(crate) mod h2;
mod h2guard;
pub(crate) mod h2head;
mod h2io;
mod h2up;
mod head;
mod io;
mod relay;
mod upstream;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use nuncio_config::UnderscoresAction;
use nuncio_h1::{parse_request, request_framing, response_framing, Framing, H1Error, Limits};
use nuncio_router::path::PathVerdict;
use nuncio_router::RouteKind;
use nuncio_stats::GaugeGuard;
use nuncio_upstream::{Protocol, RawConn};
use tokio::io::AsyncWriteExt;
// Sockets count their bytes and ends into the stats (`nuncio_stats::io`).
use nuncio_stats::io::CountedTcp as TcpStream;

use crate::access_log::LogEntry;
use crate::flags;
use crate::local_reply::{LocalReply, RequestKind};
use crate::Hcm;
use exchange::Exchange;
use head::BodyOut;
use io::{read_some, Pace, Prefixed};
use relay::{relay, Out};
use upstream::{read_response_head, Fail};
use watch::{count_timeouts, until, ClientWatch};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A downstream socket with the bytes already read in front.
pub(crate) type PrefixedStream = Prefixed<TcpStream>;

/// Envoy's reason phrase for `status` (`Unknown` for codes without one).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        599 => "Last Unassigned Server Error Code",
        _ => http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Unknown"),
    }
}

/// What one request turned into, for stats and the access log.
struct Done {
    service_ms: Option<u64>,
    status: u16,
    flags: &'static str,
    sent: u64,
    received: u64,
    upstream: Option<(
        Arc<nuncio_cluster::Cluster>,
        Arc<nuncio_cluster::Host>,
        Instant,
    )>,
    /// The `x-request-id` nuncio generated for the upstream request, for
    /// the access log's `%REQ(X-REQUEST-ID)%`.
    request_id: Option<[u8; 36]>,
}

impl Done {
    /// A local reply of `status` with a body of `len` bytes.
    fn local(status: u16, flags: &'static str, len: usize) -> Done {
        Done {
            service_ms: None,
            status,
            flags,
            sent: len as u64,
            received: 0,
            upstream: None,
            request_id: None,
        }
    }
}

/// Serves one downstream connection.
pub(crate) async fn serve(hcm: Arc<Hcm>, mut stream: TcpStream, peer: SocketAddr, worker: usize) {
    let cfg = &hcm.config;
    let limits = Limits {
        max_header_bytes: hcm.max_header_bytes,
        max_headers: cfg.max_headers_count as usize,
    };
    let idle = (!cfg.idle_timeout.is_zero()).then_some(cfg.idle_timeout);
    // Request line, header bytes and their CRLFs.
    let max_head = limits.max_header_bytes + 8 * 1024 + 4 * limits.max_headers;
    let mut buf = BytesMut::new();
    let mut first = true;
    let mut counted = false;
    loop {
        // An idle connection holds no buffer: it goes back to this
        // worker's pool until bytes arrive.
        if buf.is_empty() && buf.capacity() > 0 {
            bufpool::give(std::mem::take(&mut buf));
        }

        // 1. A complete request head (found by its end; parsed once, below).
        let mut scanned = 0;
        // `request_headers_timeout` runs from the head's first byte to its
        // last (Envoy's rule), however the bytes are spread over reads.
        let mut head_deadline: Option<Instant> = None;
        let parsed: Result<usize, H1Error> = loop {
            if first
                && cfg.codec_type == nuncio_config::CodecType::Auto
                && buf.len() >= 3
                && buf.starts_with(b"PRI")
            {
                if buf.len() < H2_PREFACE.len() {
                    if !matches!(read_some(&mut stream, &mut buf, cfg.request_headers_timeout).await, Ok(n) if n > 0)
                    {
                        return;
                    }
                    continue;
                }
                if buf.starts_with(H2_PREFACE) {
                    hcm.stats.cx_http2_total.inc();
                    // The prefix is copied out so the pooled buffer goes
                    // back (kept, it pinned 8 KiB per HTTP/2 connection).
                    let io = Prefixed::new(Bytes::copy_from_slice(&buf), stream);
                    bufpool::give(std::mem::take(&mut buf));
                    Box::pin(hcm.serve_h2_prefixed(io, peer, worker)).await;
                    return;
                }
            }
            if let Some(end) = nuncio_h1::head_end(&buf, scanned) {
                break Ok(end);
            }
            // A head that can never become a request is answered now,
            // not when the header timer fires.
            if let Err(e) = nuncio_h1::check_partial_request(&buf) {
                break Err(e);
            }
            scanned = buf.len();
            if buf.len() > max_head {
                break Err(H1Error::TooLarge);
            }
            let wait = if buf.is_empty() {
                idle
            } else {
                cfg.request_headers_timeout.map(|t| {
                    let d = *head_deadline.get_or_insert_with(|| Instant::now() + t);
                    d.saturating_duration_since(Instant::now())
                })
            };
            if buf.is_empty() {
                // Between requests: a drain ends this wait after its grace.
                if io::wait_readable(&stream, wait, hcm.drain.group)
                    .await
                    .is_err()
                {
                    if hcm.drain.is_draining() {
                        hcm.stats.cx_drain_close.inc();
                    } else {
                        hcm.stats.cx_idle_timeout.inc();
                    }
                    return;
                }
                if buf.capacity() == 0 {
                    buf = bufpool::take();
                }
            }
            match read_some(&mut stream, &mut buf, wait).await {
                Ok(0) => return,
                Err(e) => {
                    if e.kind() == std::io::ErrorKind::TimedOut && !buf.is_empty() {
                        tracing::debug!(%peer, "request headers not complete within request_headers_timeout");
                        hcm.stats.rq_header_timeout.inc();
                        // Envoy answers the request it had begun, and counts it.
                        hcm.stats.rq_total.inc();
                        hcm.stats.rq_http1_total.inc();
                        let start = Instant::now();
                        let (_, d) = reply(
                            &hcm,
                            &mut stream,
                            RequestKind::default(),
                            408,
                            "request header timeout",
                            true,
                            flags::NONE,
                        )
                        .await;
                        finish(&hcm, start, d, None);
                    }
                    return;
                }
                Ok(_) => {}
            }
        };
        first = false;
        if !counted {
            counted = true;
            hcm.stats.cx_http1_total.inc();
        }
        let start = Instant::now();
        // Wall-clock time only for the access log (a clock read saved).
        let start_sys = hcm.access_log.is_some().then(SystemTime::now);
        hcm.stats.rq_total.inc();
        hcm.stats.rq_http1_total.inc();
        let _active = GaugeGuard::new(&hcm.stats.rq_active);
        let (keep_going, done, log) = match parsed {
            Err(e) => {
                hcm.stats.rq_rejected.inc();
                count_parse_error(&hcm, e);
                let (ok, d) = reply(
                    &hcm,
                    &mut stream,
                    RequestKind::default(),
                    e.status(),
                    e.body(),
                    true,
                    flags::LOCAL_REJECT,
                )
                .await;
                let _ = ok;
                (false, d, None)
            }
            Ok(len) => {
                // Boxed: an idle connection's task then holds only the
                // small loop state, not the whole request path. Measured:
                // unboxed saves ~0.7k instructions per request but costs
                // ~1.8 KB per idle connection (2.8 KB instead of 1 KB).
                Box::pin(handle(
                    &hcm,
                    &mut stream,
                    &mut buf,
                    len,
                    peer,
                    worker,
                    start_sys,
                ))
                .await
            }
        };
        finish(&hcm, start, done, log);
        if !keep_going {
            if hcm.drain.is_draining() {
                hcm.stats.cx_drain_close.inc();
            }
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Counts what a refused head counts beyond `rq_rejected`.
fn count_parse_error(hcm: &Hcm, e: H1Error) {
    if e == H1Error::Fragment {
        hcm.stats.rq_failed_path_normalization.inc();
    }
}

/// Writes a local reply (in gRPC form for gRPC, head only for HEAD); returns (connection
/// still usable, outcome).
async fn reply(
    hcm: &Hcm,
    stream: &mut TcpStream,
    kind: RequestKind,
    status: u16,
    body: &str,
    close: bool,
    flag: &'static str,
) -> (bool, Done) {
    reply_with(hcm, stream, kind, status, body, close, flag, None).await
}

/// [`reply`] with a `location` header (redirects).
#[allow(clippy::too_many_arguments)]
async fn reply_with(
    hcm: &Hcm,
    stream: &mut TcpStream,
    kind: RequestKind,
    status: u16,
    body: &str,
    close: bool,
    flag: &'static str,
    location: Option<&str>,
) -> (bool, Done) {
    let close = close || hcm.drain.is_draining();
    let r = LocalReply::new(status, body, kind);
    let bytes = head::local_reply(&r, &hcm.config.server_name, &date::now(), close, location);
    let ok = stream.write_all(&bytes).await.is_ok();
    (
        ok && !close,
        Done::local(r.wire_status(), flag, r.wire_body().len()),
    )
}

fn finish(hcm: &Hcm, start: Instant, d: Done, log: Option<Box<LogEntry>>) {
    let now = Instant::now();
    crate::counting::finished(&hcm.stats, d.status, now - start);
    if let Some((cluster, host, sent_at)) = &d.upstream {
        if d.service_ms.is_some() {
            cluster.stats.rq_time.record(now - *sent_at);
        }
        if d.status >= 500 {
            host.stats.rq_error.inc();
        } else {
            host.stats.rq_success.inc();
        }
    }
    if let (Some(mut l), Some(logger)) = (log, hcm.access_log.as_ref()) {
        l.code = d.status;
        l.flags = d.flags;
        l.bytes_sent = d.sent;
        l.bytes_received = d.received;
        l.duration = now - start;
        if let Some(ms) = d.service_ms {
            l.resp_headers.insert(
                crate::headers::X_ENVOY_UPSTREAM_SERVICE_TIME,
                http::HeaderValue::from(ms),
            );
        }
        if let Some((c, h, _)) = &d.upstream {
            l.upstream_host = Some(h.addr);
            l.upstream_cluster = Some(c.name().to_string());
        }
        if let Some(v) = d
            .request_id
            .and_then(|id| http::HeaderValue::from_bytes(&id).ok())
        {
            l.req_headers.insert(crate::headers::X_REQUEST_ID, v);
        }
        logger.log(&l);
    }
}

/// Handles the request whose head is the first `head_len` bytes of `buf`
/// and consumes it. Returns whether the connection may carry another
/// request.
#[allow(clippy::too_many_arguments)]
async fn handle(
    hcm: &Arc<Hcm>,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    head_len: usize,
    peer: SocketAddr,
    worker: usize,
    start_sys: Option<SystemTime>,
) -> (bool, Done, Option<Box<LogEntry>>) {
    let cfg = &hcm.config;
    let limits = Limits {
        max_header_bytes: hcm.max_header_bytes,
        max_headers: cfg.max_headers_count as usize,
    };
    let mut head = match parse_request(&buf[..head_len], &limits) {
        Ok(Some(h)) => h,
        Ok(None) => {
            let (ok, d) = reply(
                hcm,
                stream,
                RequestKind::default(),
                400,
                "",
                true,
                flags::LOCAL_REJECT,
            )
            .await;
            return (ok, d, None);
        }
        Err(e) => {
            crate::counting::head_refused(&hcm.stats, e);
            count_parse_error(hcm, e);
            let (ok, d) = reply(
                hcm,
                stream,
                RequestKind::default(),
                e.status(),
                e.body(),
                true,
                flags::LOCAL_REJECT,
            )
            .await;
            return (ok, d, None);
        }
    };
    let mut kind = RequestKind {
        grpc: crate::local_reply::is_grpc(head.get("content-type")),
        head: head.method == "HEAD",
        http10: false,
    };
    if cfg.underscores != UnderscoresAction::Allow
        && head.headers.iter().any(|(n, _)| n.contains('_'))
    {
        if cfg.underscores == UnderscoresAction::Reject {
            hcm.stats.codec.h1_rejected_underscores.inc();
            hcm.stats.rq_rejected.inc();
            let (ok, d) = reply(
                hcm,
                stream,
                kind,
                400,
                "Bad Request",
                true,
                flags::LOCAL_REJECT,
            )
            .await;
            return (ok, d, None);
        }
        let before = head.headers.len();
        head.headers.retain(|(n, _)| !n.contains('_'));
        let dropped = (before - head.headers.len()) as u64;
        hcm.stats.codec.h1_dropped_underscores.add(dropped);
    }
    let log = hcm.access_log.as_ref().map(|_| {
        LogEntry::from_fields(
            start_sys.unwrap_or_else(SystemTime::now),
            head.method,
            head.target,
            &head
                .host
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .unwrap_or_default(),
            if head.minor == 0 {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            },
            head.headers.iter().map(|(n, v)| (n.as_bytes(), *v)),
            peer,
        )
    });
    macro_rules! refuse {
        ($status:expr, $body:expr, $close:expr, $flag:expr) => {{
            let (ok, d) = reply(hcm, stream, kind, $status, $body, $close, $flag).await;
            buf.advance(head_len);
            return (ok, d, log);
        }};
    }
    let framing = match request_framing(&head) {
        Ok(f) => f,
        Err(e) => {
            hcm.stats.rq_rejected.inc();
            refuse!(e.status(), e.body(), true, flags::LOCAL_REJECT)
        }
    };
    let has_body = framing != Framing::Empty;
    // Chunk framing that arrived with the head is checked before any
    // upstream sees the head: a malformed body in the first packet (the
    // smuggling attempt's shape) gets a 400 and reaches no one. Framing
    // errors that arrive later abort the upstream request mid-body.
    if framing == Framing::Chunked {
        if let Err(e) = nuncio_h1::ChunkedValidator::new().feed(&buf[head_len..]) {
            hcm.stats.rq_rejected.inc();
            refuse!(e.status(), e.body(), true, flags::LOCAL_REJECT)
        }
    }
    if head.minor == 0 {
        // HTTP/1.0 without Host takes `default_host_for_http_10`; with
        // neither, Envoy's 426 (it never reaches an HTTP/1.1 upstream
        // without Host).
        if head.host.is_none() {
            head.host = cfg.default_host_for_http_10.as_deref().map(str::as_bytes);
        }
        if !cfg.accept_http_10 || head.host.is_none() {
            refuse!(426, "Upgrade Required", true, flags::LOCAL_REJECT)
        }
        // An accepted HTTP/1.0 request is answered in HTTP/1.0.
        kind.http10 = true;
    }
    if head.method == "CONNECT" {
        // No route matches CONNECT (nuncio has no connect_matcher): Envoy's 404.
        hcm.stats.no_route.inc();
        refuse!(404, "", true, flags::NO_ROUTE)
    }
    let Ok(host) = std::str::from_utf8(head.host.unwrap_or_default()) else {
        refuse!(400, "", true, flags::LOCAL_REJECT)
    };
    // The path as routed and forwarded: normalised (normalize_path,
    // merge_slashes, path_with_escaped_slashes_action).
    let target = match nuncio_router::path::normalize(head.target, &cfg.path) {
        PathVerdict::Use(t) => t,
        PathVerdict::Reject => {
            hcm.stats.rq_failed_path_normalization.inc();
            refuse!(400, "", true, flags::LOCAL_REJECT)
        }
        PathVerdict::Redirect(to) => {
            hcm.stats.rq_redirected_with_normalized_path.inc();
            let (ok, d) = reply_with(
                hcm,
                stream,
                kind,
                307,
                "",
                has_body || head.close,
                flags::NONE,
                Some(&to),
            )
            .await;
            buf.advance(head_len);
            return (ok, d, log);
        }
    };
    if !target.starts_with('/') {
        // `OPTIONS *`: the connection manager routes only paths (Envoy's
        // 404, not counted as no route).
        refuse!(404, "", has_body || head.close, flags::NONE)
    }
    let Some(route) = hcm.routes.route(host, &target) else {
        hcm.stats.no_route.inc();
        refuse!(404, "", has_body || head.close, flags::NO_ROUTE)
    };
    hcm.stats.router_rq_total.inc();
    let fwd = match &route.kind {
        RouteKind::Direct { status, body } => {
            hcm.stats.rq_direct_response.inc();
            let text = String::from_utf8_lossy(body).into_owned();
            refuse!(*status, &text, has_body || head.close, flags::NONE)
        }
        RouteKind::Forward(f) => f,
    };
    let websocket = head
        .upgrade
        .is_some_and(|u| u.eq_ignore_ascii_case(b"websocket"));
    // An upgrade the route does not allow (nuncio's upgrade_configs know
    // only websocket; h2c's is dropped as hop-by-hop): Envoy's 403.
    let other_upgrade = head
        .upgrade
        .is_some_and(|u| !u.eq_ignore_ascii_case(b"websocket") && !u.eq_ignore_ascii_case(b"h2c"));
    if (websocket && !fwd.websocket) || other_upgrade {
        hcm.stats.ws_on_non_ws_route.inc();
        refuse!(403, "", true, flags::NONE)
    }
    if head
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("via") && crate::via::seen_in(v, &hcm.via_id))
    {
        crate::via::loop_detected(&hcm.stats, &hcm.via_id, fwd.cluster.name());
        refuse!(508, "request loop detected", true, flags::NONE)
    }
    let cluster = fwd.cluster.clone();
    let Some(host) = cluster.choose_host() else {
        refuse!(
            503,
            "no healthy upstream",
            has_body || head.close,
            flags::NO_HEALTHY_UPSTREAM
        )
    };
    // The upstream head, written while the request head is borrowed.
    let path = route.rewrite_path(&target);
    let mut up_head = bufpool::take_head(head.len + 256);
    let version = if head.minor == 0 {
        http::Version::HTTP_10
    } else {
        http::Version::HTTP_11
    };
    let request_id = head::upstream_request_on_route(
        &mut up_head,
        &head,
        hcm,
        fwd,
        &path,
        peer,
        version,
        !has_body,
        (*path != *target).then_some(&*target),
    );
    let is_head = head.method.eq_ignore_ascii_case("HEAD");
    let idempotent = matches!(head.method, "GET" | "HEAD" | "OPTIONS");
    let client_close = head.close;
    let client_10 = head.minor == 0;
    let expect_continue = head.expect_continue && has_body;
    drop(head);
    buf.advance(head_len);

    let _cluster_active = GaugeGuard::new(&cluster.stats.rq_active);
    let _host_active = GaugeGuard::new(&host.stats.rq_active);
    let sent_at = Instant::now();
    let pool = host.pool(worker).clone();
    let mut x = Exchange {
        stream,
        buf,
        up_head,
        framing,
        is_head,
        idempotent,
        expect_continue,
        websocket,
        client_close,
        client_10,
        drain: &hcm.drain,
        server: &cfg.server_name,
        suppress: cfg.suppress_envoy_headers,
        sent_at,
        pace: Pace::of(hcm),
        request_deadline: cfg.request_timeout.map(|t| Instant::now() + t),
        route_timeout: fwd.timeout,
        head_sent: false,
        status: 0,
        service_ms: None,
        tunnel: None,
        sent: 0,
        received: 0,
        upgraded: false,
        downstream_codes: &hcm.stats.rq_codes,
        upstream_codes: &cluster.stats.rq_codes,
        upstream_tx_reset: &cluster.stats.rq_tx_reset,
    };
    let result = x.run(&pool).await;
    bufpool::give_head(std::mem::take(&mut x.up_head));
    let upstream = Some((cluster.clone(), host.clone(), sent_at));
    let done = |status, flags, x: &Exchange| Done {
        service_ms: x.service_ms,
        status,
        flags,
        sent: x.sent,
        received: x.received,
        upstream: upstream.clone(),
        request_id,
    };
    match result {
        Ok(keep) => {
            cluster.stats.rq_codes.record(x.status);
            if x.upgraded {
                hcm.stats.cx_upgrades_total.inc();
                let _active = GaugeGuard::new(&hcm.stats.cx_upgrades_active);
                x.tunnel().await;
            }
            (keep && !x.upgraded, done(x.status, flags::NONE, &x), log)
        }
        Err(fail) => {
            let (status, flag, body) = fail.local_reply(&cluster, &host, x.status);
            count_timeouts(hcm, &fail);
            if let Fail::BadRequestBody(e) = fail {
                if !x.head_sent {
                    let (_, d) = reply(
                        hcm,
                        x.stream,
                        kind,
                        e.status(),
                        e.body(),
                        true,
                        flags::LOCAL_REJECT,
                    )
                    .await;
                    return (false, d, log);
                }
            }
            crate::counting::aborted(&hcm.stats, matches!(fail, Fail::Client), x.head_sent);
            if x.status != 0 {
                // Envoy counts the upstream's code when its head arrives.
                cluster.stats.rq_codes.record(x.status);
            }
            if x.head_sent || matches!(fail, Fail::Client) {
                // Too late for a local reply: abort the response.
                return (
                    false,
                    // No response yet: no code, as Envoy (0 in the log).
                    done(x.status, flag, &x),
                    log,
                );
            }
            if !fail.is_downstream_timeout() {
                cluster.stats.rq_codes.record(status);
            }
            // A request without a body has been read whole: the
            // connection can carry the next one, as in Envoy.
            let close = x.framing != Framing::Empty || x.client_close || x.client_10;
            let (ok, mut d) = reply(hcm, x.stream, kind, status, body, close, flag).await;
            d.upstream = upstream;
            d.request_id = request_id;
            (ok, d, log)
        }
    }
}
