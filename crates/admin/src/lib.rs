//! The admin server, Envoy's operator interface on `admin.address`. GET
//! endpoints report; POST endpoints act (a GET to one of them is refused
//! with 400, as Envoy does).

#![forbid(unsafe_code)]

mod certs;
mod clusters;

use std::convert::Infallible;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use nuncio_cluster::ClusterManager;
use nuncio_config::Bootstrap;
use nuncio_hcm::HcmStats;
use nuncio_stats::io::Counted;
use nuncio_stats::{Counter, Filter, Gauge, GaugeGuard, Store};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// A listener as the admin reports it.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    /// Its name.
    pub name: String,
    /// The address it is bound to.
    pub address: SocketAddr,
}

/// The admin interface's own stats, as Envoy keeps them: `http.admin.*`
/// and `listener.admin.*`.
#[derive(Debug)]
pub struct AdminStats {
    http: HcmStats,
    cx_total: Counter,
    cx_active: Gauge,
    main_cx_total: Counter,
    main_cx_active: Gauge,
}

impl AdminStats {
    /// Registers (or finds) them in `store`.
    pub fn new(store: &Arc<Store>) -> Self {
        let l = nuncio_stats::admin_listener_scope(store);
        let _ = l.counter("no_filter_chain_match");
        let _ = l.counter("downstream_cx_overflow");
        let main = l.sub("main_thread.", "main_thread.", &[]);
        AdminStats {
            http: HcmStats::admin(store),
            cx_total: l.counter("downstream_cx_total"),
            cx_active: l.gauge("downstream_cx_active"),
            main_cx_total: main.counter("downstream_cx_total"),
            main_cx_active: main.gauge("downstream_cx_active"),
        }
    }
}

/// Everything the admin server reports on or acts on.
#[derive(Debug)]
pub struct AdminState {
    /// The admin interface's own stats.
    pub admin_stats: AdminStats,
    /// Stats.
    pub store: Arc<Store>,
    /// What the config made: swapped whole by a reload.
    pub config: ArcSwap<Running>,
    /// Worker count.
    pub concurrency: usize,
    /// Process start.
    pub started: Instant,
    /// Signalled by POST /quitquitquit.
    pub shutdown: Arc<Notify>,
    /// POST /drain_listeners sends here (true: `?graceful`).
    pub drain_listeners: tokio::sync::mpsc::UnboundedSender<bool>,
    /// Admin access log file, if any.
    pub access_log: Option<Mutex<std::fs::File>>,
}

/// The running configuration, as the admin endpoints show it.
#[derive(Debug)]
pub struct Running {
    /// Clusters.
    pub clusters: Arc<ClusterManager>,
    /// The effective config.
    pub bootstrap: Bootstrap,
    /// Bound listeners.
    pub listeners: Vec<ListenerInfo>,
}

impl AdminState {
    /// Opens the admin access log (`/dev/null` = none).
    pub fn open_log(path: Option<&str>) -> std::io::Result<Option<Mutex<std::fs::File>>> {
        match path {
            None | Some("/dev/null") => Ok(None),
            Some(p) => Ok(Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            ))),
        }
    }
}

type Resp = Response<Full<Bytes>>;

fn reply(status: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(ctype),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        header::HeaderValue::from_static("nosniff"),
    );
    r
}

fn text(body: impl Into<Bytes>) -> Resp {
    reply(StatusCode::OK, "text/plain; charset=UTF-8", body)
}

fn json(v: &serde_json::Value) -> Resp {
    let s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    reply(StatusCode::OK, "application/json", s + "\n")
}

const HELP: &[(&str, &str, bool)] = &[
    ("/", "this help", false),
    ("/help", "this help", false),
    ("/ready", "LIVE when serving, 503 otherwise", false),
    (
        "/server_info",
        "version, state, uptime, options (JSON)",
        false,
    ),
    (
        "/stats",
        "stats (?filter=, ?usedonly, ?format=json|prometheus)",
        false,
    ),
    (
        "/stats/prometheus",
        "stats in Prometheus text format",
        false,
    ),
    (
        "/clusters",
        "upstream clusters and hosts (?format=json)",
        false,
    ),
    (
        "/config_dump",
        "the effective config as Envoy v3 JSON",
        false,
    ),
    ("/listeners", "bound listeners (?format=json)", false),
    ("/certs", "print certs on machine", false),
    ("/runtime", "runtime values (none)", false),
    ("/memory", "memory use", false),
    ("/quitquitquit", "exit the server", true),
    (
        "/drain_listeners",
        "close listeners and drain connections (?graceful: close after --drain-time-s)",
        true,
    ),
    ("/healthcheck/fail", "fail health checks", true),
    ("/healthcheck/ok", "pass health checks", true),
    ("/reset_counters", "reset all counters to zero", true),
];

fn query_param<'a>(q: &'a str, key: &str) -> Option<&'a str> {
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn memory() -> serde_json::Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    serde_json::json!({
        "allocated": (kb("RssAnon:") * 1024).to_string(),
        "heap_size": (kb("VmData:") * 1024).to_string(),
        "resident": (kb("VmRSS:") * 1024).to_string(),
    })
}

/// Answers one admin request.
pub fn handle(state: &AdminState, method: &Method, path: &str, query: &str) -> Resp {
    let post_only = HELP.iter().any(|(p, _, post)| *post && *p == path);
    if post_only && method != Method::POST {
        return reply(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=UTF-8",
            "This endpoint is only accessible via POST\n",
        );
    }
    let filter = || Filter {
        pattern: query_param(query, "filter").map(percent_decode),
        used_only: query_param(query, "usedonly").is_some(),
    };
    let format = query_param(query, "format").unwrap_or("");
    let running = state.config.load();
    match path {
        "/" | "/help" => {
            let mut s = String::from("admin commands are:\n");
            for (p, d, post) in HELP {
                s.push_str(&format!(
                    "  {}{p}: {d}\n",
                    if *post { "(POST) " } else { "" }
                ));
            }
            text(s)
        }
        "/ready" => {
            if nuncio_filters::health_check::server_failing() {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=UTF-8",
                    "DRAINING\n",
                )
            } else {
                text("LIVE\n")
            }
        }
        "/server_info" => json(&serde_json::json!({
            "version": format!("nuncio/{}", env!("CARGO_PKG_VERSION")),
            "state": if nuncio_filters::health_check::server_failing() { "DRAINING" } else { "LIVE" },
            "uptime_current_epoch": format!("{}s", state.started.elapsed().as_secs()),
            "uptime_all_epochs": format!("{}s", state.started.elapsed().as_secs()),
            "hot_restart_version": "disabled",
            "command_line_options": {
                "concurrency": state.concurrency,
                "service_cluster": running.bootstrap.node.cluster,
                "service_node": running.bootstrap.node.id,
                "mode": "Serve",
            },
            "node": {"id": running.bootstrap.node.id, "cluster": running.bootstrap.node.cluster},
        })),
        "/stats" => match format {
            "json" => json(&nuncio_stats::render_json(&state.store, &filter())),
            "prometheus" => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                nuncio_stats::render_prometheus(&state.store, &filter()),
            ),
            _ => text(nuncio_stats::render_text(&state.store, &filter())),
        },
        "/stats/prometheus" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            nuncio_stats::render_prometheus(&state.store, &filter()),
        ),
        "/clusters" => {
            if format == "json" {
                json(&clusters::json(&running.clusters))
            } else {
                text(clusters::text(&running.clusters))
            }
        }
        "/config_dump" => json(&nuncio_config::dump::config_dump(&running.bootstrap)),
        "/listeners" => {
            if format == "json" {
                json(
                    &serde_json::json!({"listener_statuses": running.listeners.iter().map(|l| serde_json::json!({
                    "name": l.name,
                    "local_address": {"socket_address": {"address": l.address.ip().to_string(), "port_value": l.address.port()}},
                })).collect::<Vec<_>>()}),
                )
            } else {
                text(
                    running
                        .listeners
                        .iter()
                        .map(|l| format!("{}::{}\n", l.name, l.address))
                        .collect::<String>(),
                )
            }
        }
        "/certs" => json(&certs::json(
            &running.bootstrap,
            std::time::SystemTime::now(),
        )),
        "/runtime" => json(&serde_json::json!({"entries": {}, "layers": []})),
        "/memory" => json(&memory()),
        "/quitquitquit" => {
            state.shutdown.notify_one();
            text("OK\n")
        }
        "/drain_listeners" => {
            let graceful = query_param(query, "graceful").is_some();
            let _ = state.drain_listeners.send(graceful);
            text("OK\n")
        }
        "/healthcheck/fail" => {
            nuncio_filters::health_check::set_server_failing(true);
            text("OK\n")
        }
        "/healthcheck/ok" => {
            nuncio_filters::health_check::set_server_failing(false);
            text("OK\n")
        }
        "/reset_counters" => {
            state.store.reset_counters();
            text("OK\n")
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=UTF-8",
            "invalid path. admin commands are listed at /help\n",
        ),
    }
}

fn log(
    state: &AdminState,
    req: &Request<Incoming>,
    status: StatusCode,
    start: SystemTime,
    started: Instant,
) {
    if let Some(f) = &state.access_log {
        let line = format!(
            "[{}] \"{} {} {:?}\" {} - 0 - {} - \"-\" \"{}\" \"-\" \"{}\" \"-\"\n",
            nuncio_hcm::access_log::iso8601(start),
            req.method(),
            req.uri(),
            req.version(),
            status.as_u16(),
            started.elapsed().as_millis(),
            req.headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
            req.headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
        );
        if let Ok(mut f) = f.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Serves the admin interface on `listener` forever.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        let a = &state.admin_stats;
        for c in [
            &a.cx_total,
            &a.main_cx_total,
            &a.http.cx_total,
            &a.http.cx_http1_total,
        ] {
            c.inc();
        }
        let active = [&a.cx_active, &a.main_cx_active, &a.http.cx_active].map(GaugeGuard::new);
        let stream = Counted::new(stream, &a.http.io);
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move {
                    let (t0, i0) = (SystemTime::now(), Instant::now());
                    let h = &state.admin_stats.http;
                    h.rq_total.inc();
                    h.rq_http1_total.inc();
                    let _rq = GaugeGuard::new(&h.rq_active);
                    let r = handle(
                        &state,
                        req.method(),
                        req.uri().path(),
                        req.uri().query().unwrap_or(""),
                    );
                    h.rq_codes.record(r.status().as_u16());
                    h.rq_time.record(i0.elapsed());
                    log(&state, &req, r.status(), t0, i0);
                    if req.uri().path() == "/drain_listeners" && req.method() == Method::POST {
                        // The drain starts on this (main-thread) runtime's
                        // server loop, woken by the send: let it run before
                        // answering, so a client that hears "OK" already
                        // meets a draining proxy (as Envoy's synchronous
                        // handler guarantees).
                        for _ in 0..4 {
                            tokio::task::yield_now().await;
                        }
                    }
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            drop(active);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        assert_eq!(percent_decode("a%2Eb+c"), "a.b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(query_param("filter=x&usedonly", "usedonly"), Some(""));
    }
}
