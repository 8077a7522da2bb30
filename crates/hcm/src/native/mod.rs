//! nuncio's HTTP/1.1 request path (issue #4): one task per downstream
//! connection parses each request head with `nuncio_h1` in place, writes
//! the rewritten head to an upstream socket it checks out of this worker's
//! pool, relays the bodies by their framing and returns the socket. There
//! is no header map, no channel and no second task per request, and no
//! buffer while the connection is idle. A route to an HTTP/2 cluster sends
//! the same head through `h2up` instead. A client that opens with the h2c
//! preface is handed to the HTTP/2 path (`h2`) with the bytes already read.

mod buffering;
mod bufpool;
mod date;
pub(crate) mod deadline;
mod exchange;
pub(crate) mod filtering;
mod h1;
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
use nuncio_tls::CountedConn as TcpStream;

use crate::access_log::LogEntry;
use crate::flags;
use crate::local_reply::{LocalReply, RequestKind};
use crate::Hcm;
use exchange::Exchange;
use head::BodyOut;
use io::{read_some, Pace, Prefixed};
use nuncio_filters::formatter::Protocol as ClientProtocol;
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
    flags: crate::flags::ResponseFlags,
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
    /// The upstream's response head, kept when the access log prints
    /// `%RESP(...)%` ([`Capture`]).
    resp_headers: Capture,
    /// A health check (the health check filter said so): not counted in
    /// `downstream_rq_*`, as Envoy.
    health_check: bool,
}

/// A response head kept for the access log: `None` when no format prints
/// one of its fields.
pub(super) type Capture = Option<Vec<(String, Vec<u8>)>>;

/// The fields of `r` when the access log wants them.
pub(super) fn capture(wanted: bool, r: &nuncio_h1::ResponseHead<'_>) -> Capture {
    wanted.then(|| {
        r.headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .collect()
    })
}

impl Done {
    /// A local reply of `status` with a body of `len` bytes.
    fn local(status: u16, flags: crate::flags::ResponseFlags, len: usize) -> Done {
        Done {
            service_ms: None,
            status,
            flags,
            sent: len as u64,
            received: 0,
            upstream: None,
            request_id: None,
            resp_headers: None,
            health_check: false,
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
    let mut local: Option<Option<SocketAddr>> = None;
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
                        // The client may still be trickling its head. Read
                        // past the counters: nuncio closed it (`_local`).
                        // Boxed: its scratch buffer would otherwise be in
                        // every idle connection's task.
                        Box::pin(io::delayed_close(stream.get_mut())).await;
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
                let (_, d) = refuse_head(&hcm, &mut stream, e).await;
                (false, d, None)
            }
            Ok(len) => {
                // Boxed: an idle connection's task then holds only the
                // small loop state, not the whole request path. Measured:
                // unboxed saves ~0.7k instructions per request but costs
                // ~1.8 KB per idle connection (2.8 KB instead of 1 KB).
                // The listener side of the socket, read once a connection
                // and only when filters may format it.
                if local.is_none() && hcm.filtering {
                    local = Some(stream.get_ref().local_addr().ok());
                }
                let addrs = h1::Addrs {
                    peer,
                    local: local.flatten(),
                    started: start,
                    secure: matches!(stream.get_ref(), nuncio_tls::Conn::Tls(_)),
                };
                Box::pin(h1::handle(
                    &hcm,
                    &mut stream,
                    &mut buf,
                    len,
                    addrs,
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

/// Answers a head the parser refused (Envoy's status and body), closing.
async fn refuse_head(hcm: &Hcm, stream: &mut TcpStream, e: H1Error) -> (bool, Done) {
    count_parse_error(hcm, e);
    let l = Local {
        close: true,
        ..Local::new(e.status(), e.body(), flags::LOCAL_REJECT)
    };
    reply_local(hcm, stream, RequestKind::default(), l).await
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
    flag: crate::flags::ResponseFlags,
) -> (bool, Done) {
    let l = Local {
        close,
        ..Local::new(status, body, flag)
    };
    reply_local(hcm, stream, kind, l).await
}

/// A local reply to write on HTTP/1.1.
struct Local<'a> {
    status: u16,
    body: &'a str,
    /// Close the connection after it.
    close: bool,
    flag: crate::flags::ResponseFlags,
    /// A redirect's `location`.
    location: Option<&'a str>,
    /// A filter's `grpc-status` for a gRPC request.
    grpc_status: Option<u8>,
    /// The filters' and route's response edits.
    edits: Option<&'a nuncio_filters::Edits>,
}

impl<'a> Local<'a> {
    fn new(status: u16, body: &'a str, flag: crate::flags::ResponseFlags) -> Self {
        Local {
            status,
            body,
            close: false,
            flag,
            location: None,
            grpc_status: None,
            edits: None,
        }
    }
}

/// Writes a local reply; returns (connection still usable, outcome).
async fn reply_local(
    hcm: &Hcm,
    stream: &mut TcpStream,
    kind: RequestKind,
    l: Local<'_>,
) -> (bool, Done) {
    let (status, body, flag) = (l.status, l.body, l.flag);
    let close = l.close || hcm.drain.is_draining();
    let mut r = LocalReply::new(status, body, kind);
    r.grpc_status = l.grpc_status;
    let bytes = head::local_reply(
        &r,
        &hcm.config.server_name,
        &date::now(),
        close,
        l.location,
        l.edits,
    );
    let ok = stream.write_all(&bytes).await.is_ok();
    (
        ok && !close,
        Done::local(r.wire_status(), flag, r.wire_body().len()),
    )
}

fn finish(hcm: &Hcm, start: Instant, d: Done, log: Option<Box<LogEntry>>) {
    let now = Instant::now();
    if !d.health_check {
        crate::counting::finished(&hcm.stats, d.status, now - start);
    }
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
        // Flags the filters set beside the outcome's (`DI`).
        l.flags |= d.flags;
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
        for (n, v) in d.resp_headers.into_iter().flatten() {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(n.as_bytes()),
                http::HeaderValue::from_bytes(&v),
            ) {
                l.resp_headers.append(n, v);
            }
        }
        logger.log(&l);
    }
}
