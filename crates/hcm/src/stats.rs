//! Envoy's `http.<stat_prefix>.*` stats of one connection manager, and
//! the `listener.<address>.` ones it counts into (`downstream_cx_destroy`,
//! `downstream_cx_length_ms`, `http.<stat_prefix>.downstream_rq_<N>xx`).

use std::sync::Arc;

use nuncio_h2flood::FloodStats;
use nuncio_stats::io::IoStats;
use nuncio_stats::{CodeStats, Counter, Gauge, Histogram, Http2Stats, Scope, Store};

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
    /// `downstream_cx_ssl_total`: TLS connections.
    pub cx_ssl_total: Counter,
    /// `downstream_cx_ssl_active`.
    pub cx_ssl_active: Gauge,
    /// `downstream_cx_destroy`.
    pub cx_destroy: Counter,
    /// Bytes and closes of the downstream sockets: `downstream_cx_rx_bytes_total`,
    /// `downstream_cx_tx_bytes_total`, `downstream_cx_destroy_local` /
    /// `_remote`, `downstream_cx_length_ms` (and the listener's
    /// `downstream_cx_destroy` and `downstream_cx_length_ms`).
    pub io: Arc<IoStats>,
    /// `downstream_cx_destroy_active_rq`.
    pub cx_destroy_active_rq: Counter,
    /// `downstream_cx_destroy_local_active_rq`.
    pub cx_destroy_local_active_rq: Counter,
    /// `downstream_cx_destroy_remote_active_rq`.
    pub cx_destroy_remote_active_rq: Counter,
    /// `downstream_cx_protocol_error`: connections closed for a malformed
    /// request (Envoy's codec error).
    pub cx_protocol_error: Counter,
    /// `downstream_rq_tx_reset`: responses we aborted (the upstream failed
    /// after the response started).
    pub rq_tx_reset: Counter,
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
    /// `downstream_rq_<N>xx` and `downstream_rq_completed`, here and
    /// under `listener.<address>.http.<prefix>.`.
    pub rq_codes: CodeStats,
    /// `downstream_rq_time`.
    pub rq_time: Histogram,
    /// Refusals of malformed requests (see [`Rejected`]).
    pub rq_rejected: Rejected,
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
    /// `downstream_rq_too_large`: 413s for a body over the buffer limit.
    pub rq_too_large: Counter,
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
    /// Creates the stats under `http.<prefix>.`, for a connection manager
    /// on the listener whose scope is `listener` (see
    /// `nuncio_stats::listener_scope`).
    pub fn new(store: &Arc<Store>, prefix: &str, listener: &Scope) -> Self {
        Self::build(store, prefix, listener, true)
    }

    /// The admin interface's `http.admin.*` (Envoy's: the connection
    /// manager's stats without the router's) on `listener.admin.`.
    pub fn admin(store: &Arc<Store>) -> Self {
        let l = nuncio_stats::admin_listener_scope(store);
        Self::build(store, "admin", &l, false)
    }

    fn build(store: &Arc<Store>, prefix: &str, listener: &Scope, router: bool) -> Self {
        let s = store.scope(
            &format!("http.{prefix}."),
            "http.",
            &[("envoy_http_conn_manager_prefix", prefix)],
        );
        let lh = listener.sub(
            &format!("http.{prefix}."),
            "http.",
            &[("envoy_http_conn_manager_prefix", prefix)],
        );
        // Router stats: an unregistered counter where there is no router.
        let r = |name: &str| {
            if router {
                s.counter(name)
            } else {
                Counter::default()
            }
        };
        for z in [
            "downstream_cx_delayed_close_timeout",
            "downstream_cx_max_duration_reached",
            "downstream_cx_max_requests_reached",
            "downstream_cx_overload_disable_keepalive",
            "downstream_rq_max_duration_reached",
            "downstream_rq_non_relative_path",
            "downstream_rq_overload_close",
            "downstream_rq_response_before_rq_complete",
            "rs_too_large",
        ] {
            let _ = s.counter(z);
        }
        let cx_destroy = s.counter("downstream_cx_destroy");
        let io = Arc::new(IoStats {
            rx: s.counter("downstream_cx_rx_bytes_total"),
            tx: s.counter("downstream_cx_tx_bytes_total"),
            destroy: vec![
                cx_destroy.clone(),
                listener.counter("downstream_cx_destroy"),
            ],
            destroy_local: s.counter("downstream_cx_destroy_local"),
            destroy_remote: s.counter("downstream_cx_destroy_remote"),
            length: vec![
                s.histogram("downstream_cx_length_ms"),
                listener.histogram("downstream_cx_length_ms"),
            ],
        });
        HcmStats {
            cx_total: s.counter("downstream_cx_total"),
            cx_active: s.gauge("downstream_cx_active"),
            cx_http1_total: s.counter("downstream_cx_http1_total"),
            cx_http2_total: s.counter("downstream_cx_http2_total"),
            cx_ssl_total: s.counter("downstream_cx_ssl_total"),
            cx_ssl_active: s.gauge("downstream_cx_ssl_active"),
            cx_destroy,
            io,
            cx_destroy_active_rq: s.counter("downstream_cx_destroy_active_rq"),
            cx_destroy_local_active_rq: s.counter("downstream_cx_destroy_local_active_rq"),
            cx_destroy_remote_active_rq: s.counter("downstream_cx_destroy_remote_active_rq"),
            cx_protocol_error: s.counter("downstream_cx_protocol_error"),
            rq_tx_reset: s.counter("downstream_rq_tx_reset"),
            cx_drain_close: s.counter("downstream_cx_drain_close"),
            cx_idle_timeout: s.counter("downstream_cx_idle_timeout"),
            rq_total: s.counter("downstream_rq_total"),
            rq_active: s.gauge("downstream_rq_active"),
            rq_http1_total: s.counter("downstream_rq_http1_total"),
            rq_http2_total: s.counter("downstream_rq_http2_total"),
            rq_codes: CodeStats::classes_only(&s, "downstream_rq")
                .with_mirror(CodeStats::classes_only(&lh, "downstream_rq")),
            rq_time: s.histogram("downstream_rq_time"),
            rq_rejected: Rejected {
                rejected: s.counter("downstream_rq_rejected"),
                protocol_error: s.counter("downstream_cx_protocol_error"),
                rx_reset: s.counter("downstream_rq_rx_reset"),
            },
            rq_rx_reset: s.counter("downstream_rq_rx_reset"),
            no_route: r("no_route"),
            no_cluster: r("no_cluster"),
            router_rq_total: r("rq_total"),
            rq_direct_response: r("rq_direct_response"),
            ws_on_non_ws_route: s.counter("downstream_rq_ws_on_non_ws_route"),
            cx_upgrades_total: s.counter("downstream_cx_upgrades_total"),
            cx_upgrades_active: s.gauge("downstream_cx_upgrades_active"),
            rq_loop_detected: r("rq_loop_detected"),
            rq_redirected_with_normalized_path: s
                .counter("downstream_rq_redirected_with_normalized_path"),
            rq_failed_path_normalization: s.counter("downstream_rq_failed_path_normalization"),
            rq_too_large: s.counter("downstream_rq_too_large"),
            rq_too_many_premature_resets: s.counter("downstream_rq_too_many_premature_resets"),
            rq_idle_timeout: s.counter("downstream_rq_idle_timeout"),
            rq_timeout: s.counter("downstream_rq_timeout"),
            rq_header_timeout: s.counter("downstream_rq_header_timeout"),
            codec: CodecStats::new(store),
        }
    }
}

/// A malformed request refused: nuncio's `downstream_rq_rejected`, and
/// what Envoy counts when its codec refuses one (a protocol error on the
/// connection, and the request's stream reset).
#[derive(Debug)]
pub struct Rejected {
    /// `downstream_rq_rejected` (nuncio's).
    pub rejected: Counter,
    /// `downstream_cx_protocol_error`.
    pub protocol_error: Counter,
    /// `downstream_rq_rx_reset`.
    pub rx_reset: Counter,
}

impl Rejected {
    /// Counts one refusal by the codec (a request that is not HTTP).
    pub fn inc(&self) {
        self.rejected.inc();
        self.protocol_error.inc();
        self.rx_reset.inc();
    }

    /// Counts one refusal of a well-formed request that the connection
    /// manager refuses (Envoy's: no codec error, no reset).
    pub fn inc_not_codec(&self) {
        self.rejected.inc();
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
    /// The rest of `http2.*`.
    pub h2: Arc<Http2Stats>,
}

impl CodecStats {
    /// Registers (or finds) the codec stats in `store`.
    pub fn new(store: &Arc<Store>) -> Self {
        let h1 = store.scope("http1.", "http1.", &[]);
        let h2 = store.scope("http2.", "http2.", &[]);
        let _ = h1.counter("metadata_not_supported_error");
        let _ = h1.counter("response_flood");
        CodecStats {
            h1_rejected_underscores: h1.counter("requests_rejected_with_underscores_in_headers"),
            h1_dropped_underscores: h1.counter("dropped_headers_with_underscores"),
            h2_rejected_underscores: h2.counter("requests_rejected_with_underscores_in_headers"),
            h2_dropped_underscores: h2.counter("dropped_headers_with_underscores"),
            flood: FloodStats::new(&store.root()),
            h2: Arc::new(Http2Stats::new(&store.root())),
        }
    }
}
