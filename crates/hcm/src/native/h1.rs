//! One HTTP/1.1 request on the connection manager: the head's checks
//! (underscores, framing, HTTP/1.0 and Host, CONNECT, path
//! normalisation), the route, the HTTP filters (`filtering.rs`), the
//! router's own answers (direct response, upgrades, loops, no healthy
//! host), then the upstream exchange (`exchange.rs`, or `h2up` for an
//! HTTP/2 cluster) and the router's local reply when it fails.

use super::*;

/// The connection's two addresses.
pub(super) struct Addrs {
    /// The client.
    pub(super) peer: SocketAddr,
    /// The listener side, when filters may need it.
    pub(super) local: Option<SocketAddr>,
    /// When the request began.
    pub(super) started: Instant,
    /// The connection is TLS (`x-forwarded-proto: https`).
    pub(super) secure: bool,
}

/// Handles the request whose head is the first `head_len` bytes of `buf`
/// and consumes it. Returns whether the connection may carry another
/// request.
pub(super) async fn handle(
    hcm: &Arc<Hcm>,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    head_len: usize,
    addrs: Addrs,
    worker: usize,
    start_sys: Option<SystemTime>,
) -> (bool, Done, Option<Box<LogEntry>>) {
    let peer = addrs.peer;
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
            let (ok, d) = refuse_head(hcm, stream, e).await;
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
    let mut log = hcm.access_log.as_ref().map(|_| {
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
    // Once filters ran, every reply goes back through them.
    let mut filtered: Option<filtering::Filtered> = None;
    let mut routed: Option<&nuncio_router::RouteEntry> = None;
    macro_rules! refuse {
        ($status:expr, $body:expr, $close:expr, $flag:expr) => {{
            let status: u16 = $status;
            let edits = filtered
                .as_mut()
                .map(|f| &*filtering::on_response(hcm, f, routed, status, &[], true, None));
            let l = Local {
                close: $close,
                edits,
                ..Local::new(status, $body, $flag)
            };
            let (ok, d) = reply_local(hcm, stream, kind, l).await;
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
            let l = Local {
                close: has_body || head.close,
                location: Some(&to),
                ..Local::new(307, "", flags::NONE)
            };
            let (ok, d) = reply_local(hcm, stream, kind, l).await;
            buf.advance(head_len);
            return (ok, d, log);
        }
    };
    if !target.starts_with('/') {
        // `OPTIONS *`: the connection manager routes only paths (Envoy's
        // 404, not counted as no route).
        refuse!(404, "", has_body || head.close, flags::NONE)
    }
    let route = hcm.routes.route(host, &target);
    if let (Some(l), Some(r)) = (log.as_mut(), route) {
        l.route_name.clone_from(&r.name);
    }
    if hcm.is_filtering() {
        routed = route;
        let view = filtering::RequestView {
            method: head.method,
            path: &target,
            authority: host,
            fields: &head.headers,
            protocol: if head.minor == 0 {
                ClientProtocol::Http10
            } else {
                ClientProtocol::Http11
            },
            bodyless: !has_body,
            peer,
            local: addrs.local,
            started: addrs.started,
        };
        let decision = filtering::on_request(hcm, route, view, &mut filtered).await;
        if let (Some(l), Some(f)) = (log.as_mut(), filtered.as_ref()) {
            l.flags |= f.flags;
        }
        if let (Some(filtering::Decision::Reply(r)), Some(f)) = (decision, filtered.as_mut()) {
            {
                for (n, v) in &r.headers {
                    f.response.append(n, v);
                }
                let health_check = f.health_check;
                let edits = filtering::on_response(hcm, f, route, r.status, &[], true, None);
                let l = Local {
                    close: has_body || head.close,
                    grpc_status: r.grpc_status.and_then(|g| u8::try_from(g).ok()),
                    edits: Some(edits),
                    ..Local::new(r.status, &r.body, r.flag)
                };
                let (ok, mut d) = reply_local(hcm, stream, kind, l).await;
                d.health_check = health_check;
                buf.advance(head_len);
                return (ok, d, log);
            }
        }
    }
    // A filter asked for the whole body first (the buffer filter).
    let mut framing = framing;
    let mut buffered: Option<buffering::Whole> = None;
    let limit = filtered.as_ref().and_then(|f| f.buffer_request);
    if let (Some(limit), true) = (limit, has_body) {
        if head.expect_continue && buf.len() == head_len {
            if stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
            {
                return (false, Done::local(0, flags::DOWNSTREAM_TERMINATION, 0), log);
            }
            hcm.stats.rq_codes.record(100);
        }
        let deadline = cfg.request_timeout.map(|t| Instant::now() + t);
        let pace = Pace::of(hcm);
        match buffering::read_h1(stream, &buf[head_len..], framing, limit, pace, deadline).await {
            Ok(w) => {
                if let (true, Some(f)) = (w.was_chunked, filtered.as_mut()) {
                    f.request.remove("transfer-encoding");
                    f.request.set("content-length", &w.body.len().to_string());
                    framing = Framing::Length(w.body.len() as u64);
                }
                buffered = Some(w);
            }
            Err(buffering::Refused::TooLarge) => {
                hcm.stats.rq_too_large.inc();
                refuse!(413, buffering::TOO_LARGE, true, flags::NONE)
            }
            Err(buffering::Refused::Failed(fail)) => {
                count_timeouts(hcm, &fail);
                match fail {
                    Fail::BadRequestBody(e) => {
                        hcm.stats.rq_rejected.inc();
                        refuse!(e.status(), e.body(), true, flags::LOCAL_REJECT)
                    }
                    Fail::StreamIdle => {
                        refuse!(408, "stream timeout", true, flags::STREAM_IDLE_TIMEOUT)
                    }
                    Fail::RequestTimeout => refuse!(408, "request timeout", true, flags::NONE),
                    _ => {
                        crate::counting::aborted(&hcm.stats, true, false);
                        let d = Done::local(0, flags::DOWNSTREAM_TERMINATION, 0);
                        return (false, d, log);
                    }
                }
            }
        }
    }
    let Some(route) = route else {
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
        addrs.secure,
        version,
        !has_body,
        (*path != *target).then_some(&*target),
        filtered.as_ref().map(|f| &f.request),
    );
    let is_head = head.method.eq_ignore_ascii_case("HEAD");
    let idempotent = matches!(head.method, "GET" | "HEAD" | "OPTIONS");
    let client_close = head.close;
    let client_10 = head.minor == 0;
    let expect_continue = head.expect_continue && has_body && buffered.is_none();
    drop(head);
    buf.advance(head_len);
    if let Some(w) = buffered {
        // The body read whole goes out from the buffer, then whatever the
        // client sent after it.
        buf.clear();
        buf.extend_from_slice(&w.body);
        buf.extend_from_slice(&w.rest);
    }

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
        hook: filtering::ResponseHook::of(hcm, filtered.as_mut(), route, host.addr),
        log_response: log.is_some()
            && hcm
                .access_log
                .as_ref()
                .is_some_and(|a| a.reads_response_headers()),
        resp_headers: None,
    };
    let result = x.run(&pool).await;
    bufpool::give_head(std::mem::take(&mut x.up_head));
    let upstream = Some((cluster.clone(), host.clone(), sent_at));
    let health_check = x.hook.as_ref().is_some_and(|h| h.f.health_check);
    let done = |status, flags, x: &Exchange| Done {
        service_ms: x.service_ms,
        status,
        flags,
        sent: x.sent,
        received: x.received,
        upstream: upstream.clone(),
        request_id,
        resp_headers: x.resp_headers.clone(),
        health_check,
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
                    let l = Local {
                        close: true,
                        edits: x.hook.as_mut().map(|h| h.local(e.status())),
                        ..Local::new(e.status(), e.body(), flags::LOCAL_REJECT)
                    };
                    let (_, d) = reply_local(hcm, x.stream, kind, l).await;
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
            let l = Local {
                close,
                edits: x.hook.as_mut().map(|h| h.local(status)),
                ..Local::new(status, body, flag)
            };
            let (ok, mut d) = reply_local(hcm, x.stream, kind, l).await;
            d.upstream = upstream;
            d.request_id = request_id;
            (ok, d, log)
        }
    }
}
