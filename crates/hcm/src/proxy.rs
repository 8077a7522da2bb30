//! One request through the connection manager and the router filter, in
//! phases: validate the request, find the route, pick a host, forward, and
//! relay the response. Every failure becomes Envoy's local reply.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use nuncio_router::path::PathVerdict;
use nuncio_router::{Forward, RouteKind};
use nuncio_stats::GaugeGuard;
use nuncio_upstream::{BodyProgress, ResetReason, UpstreamBody};

use crate::access_log::LogEntry;
use crate::body::{Completion, ProxyBody, UpstreamDone};
use crate::headers::{
    strip_client_envoy_headers, strip_hop_by_hop, underscores, uuid_v4, Underscores,
    X_ENVOY_EXPECTED_RQ_TIMEOUT_MS, X_ENVOY_EXTERNAL_ADDRESS, X_ENVOY_UPSTREAM_SERVICE_TIME,
    X_FORWARDED_FOR, X_FORWARDED_PROTO, X_REQUEST_ID,
};
use crate::local_reply::{is_grpc, LocalReply};
use crate::sniff::Verdict;
use crate::upgrade::{self, Downstream};
use crate::{via, ConnCtx};
use nuncio_config::UpstreamProtocol;

/// Envoy's response flags, for the access log.
pub(crate) mod flags {
    pub const NONE: &str = "-";
    pub const NO_ROUTE: &str = "NR";
    pub const NO_HEALTHY_UPSTREAM: &str = "UH";
    pub const UPSTREAM_CONNECT_FAILURE: &str = "UF";
    pub const UPSTREAM_TIMEOUT: &str = "UT";
    pub const UPSTREAM_RESET: &str = "UR";
    pub const UPSTREAM_TERMINATION: &str = "UC";
    pub const LOCAL_REJECT: &str = "LR";
    pub const STREAM_IDLE_TIMEOUT: &str = "SI";
}

/// What the request turned into, beyond the response itself.
#[derive(Default)]
struct Outcome {
    flags: &'static str,
    upstream: Option<UpstreamDone>,
    route_name: String,
    /// The `x-request-id` nuncio generated (for the access log).
    request_id: Option<HeaderValue>,
    /// The path before the route rewrote it (`x-envoy-original-path`).
    original_path: Option<String>,
}

/// Marks a response as a local reply, with its text, so a gRPC request's
/// reply can be turned into the gRPC form at the end of [`handle`].
#[derive(Clone)]
struct LocalText(String);

/// A local reply: `text/plain` body, Envoy's wording.
fn local_reply(status: StatusCode, body: &'static str, close: bool) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(body));
    *r.status_mut() = status;
    if !body.is_empty() {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    if close {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r.extensions_mut().insert(LocalText(body.to_string()));
    r
}

/// The gRPC form of local reply `r` (whose text is `text`): Envoy's
/// trailers-only answer, built from the shared [`LocalReply`] description.
fn grpc_local_reply(r: &Response<ProxyBody>, text: &str) -> Response<ProxyBody> {
    let grpc = crate::local_reply::RequestKind {
        grpc: true,
        ..Default::default()
    };
    let reply = LocalReply::new(r.status().as_u16(), text, grpc);
    let mut out = Response::new(ProxyBody::full(""));
    *out.status_mut() = StatusCode::OK;
    reply.fields(|n, v| {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(n),
            HeaderValue::from_bytes(v),
        ) {
            out.headers_mut().insert(n, v);
        }
    });
    if let Some(c) = r.headers().get(header::CONNECTION) {
        out.headers_mut().insert(header::CONNECTION, c.clone());
    }
    out
}

/// Serves one request.
pub(crate) async fn handle(mut req: Request<Incoming>, c: Arc<ConnCtx>) -> Response<ProxyBody> {
    let hcm = c.hcm.clone();
    let start = Instant::now();
    let active = GaugeGuard::new(&hcm.stats.rq_active);
    hcm.stats.rq_total.inc();
    let is_h2 = req.version() == Version::HTTP_2;
    if !c.counted.swap(true, Ordering::Relaxed) {
        if is_h2 {
            hcm.stats.cx_http2_total.inc();
        } else {
            hcm.stats.cx_http1_total.inc();
        }
    }
    if is_h2 {
        hcm.stats.rq_http2_total.inc();
    } else {
        hcm.stats.rq_http1_total.inc();
    }
    let log = hcm.access_log.as_ref().map(|_| {
        let protocol = match req.version() {
            Version::HTTP_2 => "HTTP/2",
            Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let mut l = LogEntry::new(
            &req,
            authority(&req, &hcm.config).unwrap_or_default(),
            protocol,
            c.peer,
        );
        l.bytes_received = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        l
    });
    let mut out = Outcome {
        flags: flags::NONE,
        ..Default::default()
    };
    let grpc = is_grpc(
        req.headers()
            .get(header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes),
    );
    let mut resp = match validate(&req, &c) {
        Some(reply) => {
            hcm.stats.rq_rejected.inc();
            out.flags = flags::LOCAL_REJECT;
            reply
        }
        None => match underscores(req.headers_mut(), hcm.config.underscores) {
            Underscores::Reject => {
                // hyper cannot reset one stream from a service, so HTTP/2
                // gets the 400 too (the native path resets, as Envoy does).
                let codec = &hcm.stats.codec;
                let counter = if is_h2 {
                    &codec.h2_rejected_underscores
                } else {
                    &codec.h1_rejected_underscores
                };
                counter.inc();
                hcm.stats.rq_rejected.inc();
                out.flags = flags::LOCAL_REJECT;
                local_reply(StatusCode::BAD_REQUEST, "Bad Request", !is_h2)
            }
            u => {
                if let Underscores::Dropped(n) = u {
                    let codec = &hcm.stats.codec;
                    let counter = if is_h2 {
                        &codec.h2_dropped_underscores
                    } else {
                        &codec.h1_dropped_underscores
                    };
                    counter.add(n as u64);
                }
                route(req, &c, &mut out).await
            }
        },
    };
    if let Some(LocalText(text)) = resp.extensions_mut().remove::<LocalText>() {
        if grpc {
            resp = grpc_local_reply(&resp, &text);
        }
    }
    let status = resp.status().as_u16();
    hcm.stats.rq_codes.record(status);
    if let Ok(v) = HeaderValue::from_str(&hcm.config.server_name) {
        resp.headers_mut().insert(header::SERVER, v);
    }
    // Draining: an HTTP/1 response closes its connection (hyper then
    // closes after it); HTTP/2 connections get GOAWAY instead.
    if !is_h2 && hcm.drain.is_draining() && resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let log = log.map(|mut l| {
        l.code = status;
        l.flags = out.flags;
        l.resp_headers = resp.headers().clone();
        l.route_name = std::mem::take(&mut out.route_name);
        if let Some(u) = &out.upstream {
            l.upstream_host = Some(u.host.addr);
            l.upstream_cluster = Some(u.cluster.name().to_string());
        }
        if let Some(id) = out.request_id.take() {
            l.req_headers.insert(X_REQUEST_ID, id);
        }
        l
    });
    resp.body_mut().set_completion(Completion {
        hcm,
        start,
        _active: active,
        upstream: out.upstream,
        log,
    });
    resp
}

/// The authority a request is for: the URI's (`:authority`, an
/// absolute-form target), else the Host header. Routing and the upstream's
/// Host both use it (RFC 9113 8.3.1, as Envoy).
fn authority<'r>(
    req: &'r Request<Incoming>,
    cfg: &'r nuncio_config::HttpConnectionManager,
) -> Option<&'r str> {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .or_else(|| {
            (req.version() == Version::HTTP_10)
                .then_some(cfg.default_host_for_http_10.as_deref())
                .flatten()
        })
}

/// Checks a request before routing; `Some` is the refusal.
fn validate(req: &Request<Incoming>, c: &ConnCtx) -> Option<Response<ProxyBody>> {
    let cfg = &c.hcm.config;
    if req.version() != Version::HTTP_2 {
        if let Some(v) = &c.verdicts {
            match v.next() {
                Some(Verdict::Ok) => {}
                Some(Verdict::Refused(e)) => {
                    let status =
                        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                    return Some(local_reply(status, e.body(), true));
                }
                // The framing tracker lost the stream: refuse (fail closed).
                None => return Some(local_reply(StatusCode::BAD_REQUEST, "Bad Request", true)),
            }
        }
        // HTTP/1.0 without Host (and no `default_host_for_http_10`) gets
        // Envoy's 426 too: it must not become HTTP/1.1 without Host.
        let no_host = !req.headers().contains_key(header::HOST) && req.uri().authority().is_none();
        let default_host = no_host && cfg.default_host_for_http_10.is_some();
        if req.version() == Version::HTTP_10 && (!cfg.accept_http_10 || (no_host && !default_host))
        {
            return Some(local_reply(
                StatusCode::UPGRADE_REQUIRED,
                "Upgrade Required",
                true,
            ));
        }
    } else {
        let h = req.headers();
        if h.len() > cfg.max_headers_count as usize {
            return Some(local_reply(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "",
                false,
            ));
        }
        let bytes: usize = h.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
        if bytes > c.hcm.max_header_bytes {
            return Some(local_reply(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "",
                false,
            ));
        }
    }
    let hosts = req.headers().get_all(header::HOST).iter().count();
    if hosts > 1
        || (hosts == 0 && req.version() == Version::HTTP_11 && req.uri().authority().is_none())
    {
        return Some(local_reply(StatusCode::BAD_REQUEST, "", true));
    }
    // HTTP/1 Host values were checked by the parser; an HTTP/2 `host`
    // without `:authority` is checked here.
    if req.uri().authority().is_none() {
        if let Some(h) = req.headers().get(header::HOST) {
            if !h.is_empty() && !nuncio_h1::valid_authority(h.as_bytes()) {
                return Some(local_reply(StatusCode::BAD_REQUEST, "", true));
            }
        }
    }
    None
}

fn is_extended_connect(req: &Request<Incoming>) -> bool {
    req.extensions().get::<hyper::ext::Protocol>().is_some()
}

async fn route(req: Request<Incoming>, c: &ConnCtx, out: &mut Outcome) -> Response<ProxyBody> {
    let hcm = &c.hcm;
    if req.method() == Method::CONNECT && !is_extended_connect(&req) {
        // No route matches CONNECT (nuncio has no connect_matcher): Envoy's 404.
        hcm.stats.no_route.inc();
        out.flags = flags::NO_ROUTE;
        return local_reply(StatusCode::NOT_FOUND, "", true);
    }
    let host = authority(&req, &hcm.config)
        .unwrap_or("")
        .trim_end_matches([' ', '\t'])
        .to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let path = match nuncio_router::path::normalize(path, &hcm.config.path) {
        PathVerdict::Use(p) => p,
        PathVerdict::Reject => {
            hcm.stats.rq_failed_path_normalization.inc();
            out.flags = flags::LOCAL_REJECT;
            return local_reply(StatusCode::BAD_REQUEST, "", true);
        }
        PathVerdict::Redirect(to) => {
            hcm.stats.rq_redirected_with_normalized_path.inc();
            let mut r = local_reply(StatusCode::TEMPORARY_REDIRECT, "", false);
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
    };
    if !path.starts_with('/') {
        // `OPTIONS *`: only paths are routed (Envoy's 404, not a no_route).
        return local_reply(StatusCode::NOT_FOUND, "", false);
    }
    let Some(route) = hcm.routes.route(&host, &path) else {
        hcm.stats.no_route.inc();
        out.flags = flags::NO_ROUTE;
        return local_reply(StatusCode::NOT_FOUND, "", false);
    };
    out.route_name.clone_from(&route.name);
    hcm.stats.router_rq_total.inc();
    let fwd = match &route.kind {
        RouteKind::Direct { status, body } => {
            hcm.stats.rq_direct_response.inc();
            let mut r = Response::new(ProxyBody::full(body.clone()));
            *r.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            if !body.is_empty() {
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            }
            r.extensions_mut()
                .insert(LocalText(String::from_utf8_lossy(body).into_owned()));
            return r;
        }
        RouteKind::Forward(f) => f,
    };
    let ws = upgrade::websocket_kind(&req);
    if ws.is_some() && !fwd.websocket {
        hcm.stats.ws_on_non_ws_route.inc();
        return local_reply(StatusCode::FORBIDDEN, "", true);
    }
    if via::seen(req.headers(), &hcm.via_id) {
        hcm.stats.rq_loop_detected.inc();
        tracing::warn!(
            cluster = %fwd.cluster.name(),
            "request loop: this request already passed through this proxy ({}); the route's cluster leads back here. \
             Check that cluster '{}' points at the service, not at proxies that route back (in the blog's \
             service-envoy.yaml the sidecar's cluster is service1/service2:80, the sidecars themselves; \
             service-envoy.fixed.yaml points it at 127.0.0.1:8080)",
            hcm.via_id,
            fwd.cluster.name()
        );
        return local_reply(StatusCode::LOOP_DETECTED, "request loop detected", true);
    }
    let new_path = route.rewrite_path(&path).into_owned();
    if new_path != *path && !hcm.config.suppress_envoy_headers {
        out.original_path = Some(path.into_owned());
    } else {
        drop(path);
    }
    forward(req, c, fwd, new_path, ws, out).await
}

/// Which timer ended the wait for the upstream response.
enum Timer {
    /// The route timeout (504).
    Route,
    /// `stream_idle_timeout` during the upload (408).
    StreamIdle,
    /// `request_timeout` (408).
    Request,
}

async fn forward(
    mut req: Request<Incoming>,
    c: &ConnCtx,
    fwd: &Forward,
    path: String,
    ws: Option<Downstream>,
    out: &mut Outcome,
) -> Response<ProxyBody> {
    let upgrade = ws.is_some();
    let upstream_h2 = matches!(fwd.cluster.config.protocol, UpstreamProtocol::Http2(_));
    let hcm = &c.hcm;
    let cluster = &fwd.cluster;
    let Some(host) = cluster.choose_host() else {
        out.flags = flags::NO_HEALTHY_UPSTREAM;
        return local_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "no healthy upstream",
            false,
        );
    };
    let suppress = hcm.config.suppress_envoy_headers;
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    // Build the upstream request.
    let authority = authority(&req, &hcm.config).map(str::to_string);
    let (mut parts, body) = req.into_parts();
    parts.uri = match Uri::builder().path_and_query(path.as_str()).build() {
        Ok(u) => u,
        Err(_) => return local_reply(StatusCode::BAD_REQUEST, "", true),
    };
    let received = parts.version;
    parts.version = Version::HTTP_11;
    let h = &mut parts.headers;
    strip_hop_by_hop(h, upgrade);
    let cfg = &hcm.config;
    let edge = cfg.use_remote_address;
    strip_client_envoy_headers(h, edge);
    hcm.via_values.append(h, received, &hcm.via_id);
    if received == Version::HTTP_2 && !upstream_h2 {
        crate::headers::join_cookies(h);
    }
    // The upstream's Host is the authority the request was routed on.
    if let Some(v) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
        h.insert(header::HOST, v);
    }
    if let Some(hr) = &fwd.host_rewrite {
        if let Some(orig) = h.insert(header::HOST, hr.clone()) {
            if !hcm.config.suppress_envoy_headers {
                h.insert(
                    http::header::HeaderName::from_static("x-envoy-original-host"),
                    orig,
                );
            }
        }
    }
    if edge {
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        let client = crate::headers::trusted_client(
            h.get(X_FORWARDED_FOR).map(HeaderValue::as_bytes),
            cfg.xff_num_trusted_hops,
        )
        .unwrap_or(c.peer.ip());
        if let Ok(v) = HeaderValue::from_str(&client.to_string()) {
            h.insert(X_ENVOY_EXTERNAL_ADDRESS, v);
        }
        if !cfg.skip_xff_append {
            let ip = crate::headers::xff_address(c.peer.ip()).to_string();
            // Envoy joins with a bare comma.
            let xff = match h.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
                Some(prev) => format!("{prev},{ip}"),
                None => ip,
            };
            if let Ok(v) = HeaderValue::from_str(&xff) {
                h.insert(X_FORWARDED_FOR, v);
            }
        }
    } else if !h.contains_key(X_FORWARDED_PROTO) {
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    let force_id = edge && !cfg.preserve_external_request_id;
    if cfg.generate_request_id && (force_id || !h.contains_key(X_REQUEST_ID)) {
        let id = uuid_v4();
        out.request_id = Some(id.clone());
        h.insert(X_REQUEST_ID, id);
    }
    if let Some(v) = out
        .original_path
        .take()
        .and_then(|p| HeaderValue::from_str(&p).ok())
    {
        h.insert(
            http::header::HeaderName::from_static("x-envoy-original-path"),
            v,
        );
    }
    if !suppress {
        if let Some(t) = &fwd.timeout_header {
            h.insert(X_ENVOY_EXPECTED_RQ_TIMEOUT_MS, t.clone());
        }
    }
    if let Some(down) = &ws {
        upgrade::prepare_upstream(&mut parts, down, upstream_h2);
    }
    // Envoy's route timeout counts from the end of the request; its
    // stream idle timeout from the last body bytes.
    let progress = Arc::new(BodyProgress::default());
    if http_body::Body::is_end_stream(&body) {
        progress.ended();
    }
    let upstream_req =
        Request::from_parts(parts, UpstreamBody::Incoming(body, Some(progress.clone())));
    let cfg = &hcm.config;
    let idle = (!cfg.stream_idle_timeout.is_zero()).then_some(cfg.stream_idle_timeout);

    // Send it.
    let done = UpstreamDone {
        cluster: cluster.clone(),
        host: host.clone(),
        sent_at: Instant::now(),
        _cluster_active: GaugeGuard::new(&cluster.stats.rq_active),
        _host_active: GaugeGuard::new(&host.stats.rq_active),
    };
    let pool = host.pool(c.worker);
    let route_timer = async {
        match fwd.timeout {
            Some(t) => {
                progress.until_ended().await;
                let end = progress
                    .ended_at()
                    .unwrap_or_else(tokio::time::Instant::now);
                tokio::time::sleep_until(end + t).await;
            }
            None => std::future::pending().await,
        }
    };
    let idle_timer = async {
        match idle {
            Some(i) => progress.until_idle(i).await,
            None => std::future::pending().await,
        }
    };
    let request_timer = async {
        match cfg.request_timeout {
            Some(t) => {
                tokio::select! {
                    _ = progress.until_ended() => std::future::pending::<()>().await,
                    _ = tokio::time::sleep(t) => {}
                }
            }
            None => std::future::pending().await,
        }
    };
    // hyper drops this future when the client goes away: the upstream
    // request is then cancelled with it, and counted as Envoy counts it.
    let cancelled = crate::counting::Cancelled {
        hcm: &hcm.stats,
        cluster: &cluster.stats,
        downstream_h2: received == Version::HTTP_2,
        upstream_h2,
    };
    let sent = tokio::select! {
        r = pool.send(upstream_req) => Ok(r),
        _ = route_timer => Err(Timer::Route),
        _ = idle_timer => Err(Timer::StreamIdle),
        _ = request_timer => Err(Timer::Request),
    };
    std::mem::forget(cancelled);
    let resp = match sent {
        Ok(Ok(r)) => r,
        Err(Timer::StreamIdle) => {
            // The client stopped sending its body (Envoy's 408).
            tracing::debug!("client stalled while sending the body (stream_idle_timeout)");
            hcm.stats.rq_idle_timeout.inc();
            out.flags = flags::STREAM_IDLE_TIMEOUT;
            out.upstream = Some(done);
            return local_reply(StatusCode::REQUEST_TIMEOUT, "stream timeout", true);
        }
        Err(Timer::Request) => {
            tracing::debug!("the request did not arrive within request_timeout");
            hcm.stats.rq_timeout.inc();
            out.upstream = Some(done);
            return local_reply(StatusCode::REQUEST_TIMEOUT, "request timeout", true);
        }
        Ok(Err(e)) => {
            tracing::debug!(cluster = %cluster.name(), host = %host.addr, error = %e, "upstream request failed");
            host.stats.rq_error.inc();
            cluster.stats.rq_codes.record(503);
            let reason = e.reset_reason();
            out.flags = match reason {
                ResetReason::ConnectionFailure | ResetReason::ConnectionTimeout => {
                    flags::UPSTREAM_CONNECT_FAILURE
                }
                ResetReason::ConnectionTermination => flags::UPSTREAM_TERMINATION,
                _ => flags::UPSTREAM_RESET,
            };
            // A stream reset; an HTTP/1.1 upstream's close is not one.
            if !reason.is_connect_failure() && upstream_h2 {
                cluster.stats.rq_rx_reset.inc();
            }
            out.upstream = Some(done);
            let status = if reason == ResetReason::ProtocolError {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return local_reply(status, reason.local_reply_body(), false);
        }
        Err(Timer::Route) => {
            if upstream_h2 {
                // The timed-out stream is reset (Envoy's count).
                cluster.stats.rq_tx_reset.inc();
            }
            cluster.stats.rq_timeout.inc();
            host.stats.rq_timeout.inc();
            host.stats.rq_error.inc();
            cluster.stats.rq_codes.record(504);
            out.flags = flags::UPSTREAM_TIMEOUT;
            out.upstream = Some(done);
            return local_reply(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream request timeout",
                false,
            );
        }
    };
    let service_time = done.sent_at.elapsed();
    let (mut parts, body) = resp.into_parts();
    let status = parts.status;
    cluster.stats.rq_codes.record(status.as_u16());
    if status.is_server_error() {
        host.stats.rq_error.inc();
    } else {
        host.stats.rq_success.inc();
    }
    let switching = upgrade && upgrade::accepted(status, upstream_h2);
    strip_hop_by_hop(&mut parts.headers, switching && !upstream_h2);
    parts.version = Version::HTTP_11;
    if !suppress {
        parts.headers.insert(
            X_ENVOY_UPSTREAM_SERVICE_TIME,
            HeaderValue::from(service_time.as_millis() as u64),
        );
    }
    if upgrade && !switching {
        // An upgrade refused by the upstream is an ordinary response, and
        // this connection will not become a tunnel.
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    out.upstream = Some(done);
    if let (true, Some(down), Some(down_io)) = (switching, &ws, downstream_upgrade) {
        upgrade::prepare_downstream(&mut parts, down);
        let mut upstream_resp = Response::from_parts(parts, body);
        let up_io = hyper::upgrade::on(&mut upstream_resp);
        crate::tunnel::spawn(down_io, up_io, hcm.clone());
        let (parts, body) = upstream_resp.into_parts();
        return Response::from_parts(parts, ProxyBody::upstream(body, None, None));
    }
    let deadline = fwd.timeout.map(|t| {
        progress
            .ended_at()
            .unwrap_or_else(tokio::time::Instant::now)
            + t
    });
    Response::from_parts(parts, ProxyBody::upstream(body, deadline, idle))
}
