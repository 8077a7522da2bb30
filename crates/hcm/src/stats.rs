//! Envoy's `http.<stat_prefix>.*` stats of one connection manager.

use std::sync::Arc;

use nuncio_h2flood::FloodStats;
use nuncio_stats::{CodeStats, Counter, Gauge, Histogram, Store};

/// Connection-manager and router stats.
#[derive(Debug)]
pub struct HcmStats {
    /// `downstream_cx_total`.
    pub cx_total: Counter,
    /// `downstream_cx_active`.
    pub cx_active: Gauge,
    /// `downstream_cx_http1_total`.
    pub cx_http1_total: Counter,
    /// `downstream_cx_http2_total`.
    pub cx_http2_total: Counter,
    /// `downstream_cx_destroy`.
    pub cx_destroy: Counter,
    /// `downstream_cx_drain_close`: connections closed because of a drain.
    pub cx_drain_close: Counter,
    /// `downstream_cx_idle_timeout`: connections closed by `idle_timeout`.
    pub cx_idle_timeout: Counter,
    /// `downstream_rq_total`.
    pub rq_total: Counter,
    /// `downstream_rq_active`.
    pub rq_active: Gauge,
    /// `downstream_rq_http1_total`.
    pub rq_http1_total: Counter,
    /// `downstream_rq_http2_total`.
    pub rq_http2_total: Counter,
    /// `downstream_rq_<N>xx` (and per code).
    pub rq_codes: CodeStats,
    /// `downstream_rq_time`.
    pub rq_time: Histogram,
    /// `downstream_rq_too_large`-style refusals of malformed requests.
    pub rq_rejected: Counter,
    /// `downstream_rq_rx_reset`: the client went away mid-request.
    pub rq_rx_reset: Counter,
    /// Router: `no_route`.
    pub no_route: Counter,
    /// Router: `no_cluster`.
    pub no_cluster: Counter,
    /// Router: `rq_total`.
    pub router_rq_total: Counter,
    /// Router: `rq_direct_response`.
    pub rq_direct_response: Counter,
    /// `downstream_rq_ws_on_non_ws_route`.
    pub ws_on_non_ws_route: Counter,
    /// `downstream_cx_upgrades_total`.
    pub cx_upgrades_total: Counter,
    /// `downstream_cx_upgrades_active`.
    pub cx_upgrades_active: Gauge,
    /// `rq_loop_detected` (nuncio): requests refused with 508.
    pub rq_loop_detected: Counter,
    /// `downstream_rq_redirected_with_normalized_path`.
    pub rq_redirected_with_normalized_path: Counter,
    /// `downstream_rq_failed_path_normalization`.
    pub rq_failed_path_normalization: Counter,
    /// `downstream_rq_too_many_premature_resets` (HTTP/2 rapid reset).
    pub rq_too_many_premature_resets: Counter,
    /// `downstream_rq_idle_timeout`: streams ended by `stream_idle_timeout`.
    pub rq_idle_timeout: Counter,
    /// `downstream_rq_timeout`: requests not received within `request_timeout`.
    pub rq_timeout: Counter,
    /// `downstream_rq_header_timeout`: connections closed because a request
    /// head did not arrive within `request_headers_timeout`.
    pub rq_header_timeout: Counter,
    /// Codec stats, rooted at `http1.` and `http2.` as in Envoy.
    pub codec: CodecStats,
}

impl HcmStats {
    /// Creates the stats under `http.<prefix>.`.
    pub fn new(store: &Arc<Store>, prefix: &str) -> Self {
        let s = store.scope(
            &format!("http.{prefix}."),
            "http.",
            &[("envoy_http_conn_manager_prefix", prefix)],
        );
        HcmStats {
            cx_total: s.counter("downstream_cx_total"),
            cx_active: s.gauge("downstream_cx_active"),
            cx_http1_total: s.counter("downstream_cx_http1_total"),
            cx_http2_total: s.counter("downstream_cx_http2_total"),
            cx_destroy: s.counter("downstream_cx_destroy"),
            cx_drain_close: s.counter("downstream_cx_drain_close"),
            cx_idle_timeout: s.counter("downstream_cx_idle_timeout"),
            rq_total: s.counter("downstream_rq_total"),
            rq_active: s.gauge("downstream_rq_active"),
            rq_http1_total: s.counter("downstream_rq_http1_total"),
            rq_http2_total: s.counter("downstream_rq_http2_total"),
            rq_codes: CodeStats::new(&s, "downstream_rq"),
            rq_time: s.histogram("downstream_rq_time"),
            rq_rejected: s.counter("downstream_rq_rejected"),
            rq_rx_reset: s.counter("downstream_rq_rx_reset"),
            no_route: s.counter("no_route"),
            no_cluster: s.counter("no_cluster"),
            router_rq_total: s.counter("rq_total"),
            rq_direct_response: s.counter("rq_direct_response"),
            ws_on_non_ws_route: s.counter("downstream_rq_ws_on_non_ws_route"),
            cx_upgrades_total: s.counter("downstream_cx_upgrades_total"),
            cx_upgrades_active: s.gauge("downstream_cx_upgrades_active"),
            rq_loop_detected: s.counter("rq_loop_detected"),
            rq_redirected_with_normalized_path: s
                .counter("downstream_rq_redirected_with_normalized_path"),
            rq_failed_path_normalization: s.counter("downstream_rq_failed_path_normalization"),
            rq_too_many_premature_resets: s.counter("downstream_rq_too_many_premature_resets"),
            rq_idle_timeout: s.counter("downstream_rq_idle_timeout"),
            rq_timeout: s.counter("downstream_rq_timeout"),
            rq_header_timeout: s.counter("downstream_rq_header_timeout"),
            codec: CodecStats::new(store),
        }
    }
}

/// Envoy's codec stats (`http1.*`, `http2.*`), shared by every listener.
#[derive(Debug, Clone)]
pub struct CodecStats {
    /// `http1.requests_rejected_with_underscores_in_headers`.
    pub h1_rejected_underscores: Counter,
    /// `http1.dropped_headers_with_underscores`.
    pub h1_dropped_underscores: Counter,
    /// `http2.requests_rejected_with_underscores_in_headers`.
    pub h2_rejected_underscores: Counter,
    /// `http2.dropped_headers_with_underscores`.
    pub h2_dropped_underscores: Counter,
    /// `http2.inbound_*_flood`.
    pub flood: FloodStats,
}

impl CodecStats {
    /// Registers (or finds) the codec stats in `store`.
    pub fn new(store: &Arc<Store>) -> Self {
        let h1 = store.scope("http1.", "http1.", &[]);
        let h2 = store.scope("http2.", "http2.", &[]);
        CodecStats {
            h1_rejected_underscores: h1.counter("requests_rejected_with_underscores_in_headers"),
            h1_dropped_underscores: h1.counter("dropped_headers_with_underscores"),
            h2_rejected_underscores: h2.counter("requests_rejected_with_underscores_in_headers"),
            h2_dropped_underscores: h2.counter("dropped_headers_with_underscores"),
            flood: FloodStats::new(&store.root()),
        }
    }
}
