//! One cluster: its settings, current hosts, balancer and stats.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use nuncio_config::Cluster as ClusterConfig;
use nuncio_config::UpstreamProtocol;
use std::time::Duration;

use nuncio_stats::io::IoStats;
use nuncio_stats::{CodeStats, Counter, Gauge, Histogram, Http2Stats, Store};
use nuncio_upstream::{ConnStats, FloodStats, PoolSettings, Protocol};

use crate::host::Host;
use crate::lb::Balancer;

/// Envoy's `cluster.<name>.*` stats.
#[derive(Debug)]
pub struct ClusterStats {
    /// `upstream_rq_total`.
    pub rq_total: Counter,
    /// `upstream_rq_active`.
    pub rq_active: Gauge,
    /// `upstream_rq_<code>`, `upstream_rq_<N>xx`, `upstream_rq_completed`,
    /// and the same under `external.` (Envoy counts a request there unless
    /// it is marked internal; nuncio has no `internal_address_config`, and
    /// with Envoy's default every request is external).
    pub rq_codes: CodeStats,
    /// `upstream_rq_timeout`.
    pub rq_timeout: Counter,
    /// `upstream_rq_retry`.
    pub rq_retry: Counter,
    /// `upstream_rq_time` and `external.upstream_rq_time`.
    pub rq_time: RqTime,
    /// `upstream_rq_rx_reset`: the upstream reset a request.
    pub rq_rx_reset: Counter,
    /// `upstream_rq_tx_reset`: we reset a request (client went away).
    pub rq_tx_reset: Counter,
    /// `upstream_cx_none_healthy`.
    pub cx_none_healthy: Counter,
    /// `membership_healthy`.
    pub membership_healthy: Gauge,
    /// `membership_total`.
    pub membership_total: Gauge,
    /// `update_attempt`.
    pub update_attempt: Counter,
    /// `update_success`.
    pub update_success: Counter,
    /// `update_failure`.
    pub update_failure: Counter,
    /// Connection stats shared with the pools.
    pub conn: ConnStats,
}

/// `upstream_rq_time`, recorded with its `external.` twin.
#[derive(Debug)]
pub struct RqTime {
    all: Histogram,
    external: Histogram,
}

impl RqTime {
    /// Records one request's time (whole milliseconds).
    pub fn record(&self, d: Duration) {
        self.all.record(d);
        self.external.record(d);
    }

    /// `upstream_rq_time`.
    pub fn histogram(&self) -> &Histogram {
        &self.all
    }
}

/// Stats Envoy always shows that stay 0 here: nuncio has no circuit
/// breakers (so none is ever open and nothing overflows), no retries, no
/// internal redirects, no zone-aware balancing.
const ZERO_COUNTERS: &[&str] = &[
    "upstream_cx_overflow",
    "upstream_cx_pool_overflow",
    "upstream_cx_max_requests",
    "upstream_cx_close_notify",
    "upstream_rq_pending_overflow",
    "upstream_rq_retry_overflow",
    "upstream_rq_retry_success",
    "upstream_rq_retry_limit_exceeded",
    "upstream_rq_per_try_timeout",
    "upstream_rq_maintenance_mode",
    "upstream_rq_max_duration_reached",
    "upstream_rq_rx_reset_no_error",
    "upstream_cx_max_duration_reached",
    "upstream_cx_connect_attempts_exceeded",
    "upstream_internal_redirect_failed_total",
    "upstream_internal_redirect_succeeded_total",
    "bind_errors",
    "membership_change",
    "update_empty",
    "retry_or_shadow_abandoned",
];

impl ClusterStats {
    fn new(store: &Arc<Store>, name: &str) -> Self {
        let s = store.scope(
            &format!("cluster.{name}."),
            "cluster.",
            &[("envoy_cluster_name", name)],
        );
        for z in ZERO_COUNTERS {
            let _ = s.counter(z);
        }
        for prio in ["default", "high"] {
            let cb = s.sub(
                &format!("circuit_breakers.{prio}."),
                &format!("circuit_breakers.{prio}."),
                &[],
            );
            for g in [
                "cx_open",
                "cx_pool_open",
                "rq_open",
                "rq_pending_open",
                "rq_retry_open",
            ] {
                let _ = cb.gauge(g);
            }
        }
        let ext = s.sub("external.", "external.", &[]);
        let rq_total = s.counter("upstream_rq_total");
        let cx_destroy = s.counter("upstream_cx_destroy");
        ClusterStats {
            rq_total: rq_total.clone(),
            rq_active: s.gauge("upstream_rq_active"),
            rq_codes: CodeStats::new(&s, "upstream_rq")
                .with_mirror(CodeStats::new(&ext, "upstream_rq")),
            rq_timeout: s.counter("upstream_rq_timeout"),
            rq_retry: s.counter("upstream_rq_retry"),
            rq_time: RqTime {
                all: s.histogram("upstream_rq_time"),
                external: ext.histogram("upstream_rq_time"),
            },
            rq_rx_reset: s.counter("upstream_rq_rx_reset"),
            rq_tx_reset: s.counter("upstream_rq_tx_reset"),
            cx_none_healthy: s.counter("upstream_cx_none_healthy"),
            membership_healthy: s.gauge("membership_healthy"),
            membership_total: s.gauge("membership_total"),
            update_attempt: s.counter("update_attempt"),
            update_success: s.counter("update_success"),
            update_failure: s.counter("update_failure"),
            conn: ConnStats {
                cx_total: s.counter("upstream_cx_total"),
                cx_active: s.gauge("upstream_cx_active"),
                cx_http1_total: s.counter("upstream_cx_http1_total"),
                cx_http2_total: s.counter("upstream_cx_http2_total"),
                cx_connect_fail: s.counter("upstream_cx_connect_fail"),
                cx_connect_timeout: s.counter("upstream_cx_connect_timeout"),
                cx_destroy: cx_destroy.clone(),
                io: Arc::new(IoStats {
                    rx: s.counter("upstream_cx_rx_bytes_total"),
                    tx: s.counter("upstream_cx_tx_bytes_total"),
                    destroy: vec![cx_destroy],
                    destroy_local: s.counter("upstream_cx_destroy_local"),
                    destroy_remote: s.counter("upstream_cx_destroy_remote"),
                    length: vec![s.histogram("upstream_cx_length_ms")],
                }),
                cx_destroy_with_active_rq: s.counter("upstream_cx_destroy_with_active_rq"),
                cx_destroy_local_with_active_rq: s
                    .counter("upstream_cx_destroy_local_with_active_rq"),
                cx_destroy_remote_with_active_rq: s
                    .counter("upstream_cx_destroy_remote_with_active_rq"),
                cx_protocol_error: s.counter("upstream_cx_protocol_error"),
                cx_idle_timeout: s.counter("upstream_cx_idle_timeout"),
                cx_connect_ms: s.histogram("upstream_cx_connect_ms"),
                rq_per_cx: s.histogram("upstream_rq_per_cx"),
                rq_total,
                rq_pending_total: s.counter("upstream_rq_pending_total"),
                rq_pending_active: s.gauge("upstream_rq_pending_active"),
                rq_pending_failure_eject: s.counter("upstream_rq_pending_failure_eject"),
                rq_cancelled: s.counter("upstream_rq_cancelled"),
                http2: Http2Stats::new(&s),
                flood: FloodStats::new(&s),
                ssl: Some(Arc::new(nuncio_tls::SslStats::new(&s))),
                ..ConnStats::default()
            },
        }
    }
}

/// A cluster at run time.
#[derive(Debug)]
pub struct Cluster {
    /// Its configuration.
    pub config: ClusterConfig,
    /// Its stats.
    pub stats: ClusterStats,
    hosts: ArcSwap<Vec<Arc<Host>>>,
    balancer: Balancer,
    pool_settings: Arc<PoolSettings>,
    workers: usize,
}

impl Cluster {
    pub(crate) fn new(
        config: ClusterConfig,
        secrets: &[nuncio_config::Secret],
        store: &Arc<Store>,
        workers: usize,
    ) -> Result<Arc<Self>, nuncio_tls::TlsError> {
        let stats = ClusterStats::new(store, &config.name);
        // Every certificate is read and checked now, so a bad one fails
        // the load (and `--mode validate`).
        let http2 = matches!(config.protocol, UpstreamProtocol::Http2(_));
        let tls = match config.transport_socket.tls() {
            None => None,
            Some(t) => Some(Arc::new(nuncio_tls::client::build_client(
                t, secrets, http2,
            )?)),
        };
        let protocol = match &config.protocol {
            UpstreamProtocol::Http1 => Protocol::Http1,
            UpstreamProtocol::Http2(o) => Protocol::Http2 {
                max_concurrent_streams: o.max_concurrent_streams,
                initial_stream_window_size: o.initial_stream_window_size,
                initial_connection_window_size: o.initial_connection_window_size,
                flood: o.flood,
            },
        };
        let pool_settings = Arc::new(PoolSettings {
            protocol,
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            max_requests_per_connection: config.max_requests_per_connection,
            tls,
        });
        Ok(Arc::new(Cluster {
            config,
            stats,
            hosts: ArcSwap::from_pointee(Vec::new()),
            balancer: Balancer::default(),
            pool_settings,
            workers,
        }))
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The current hosts.
    pub fn hosts(&self) -> Arc<Vec<Arc<Host>>> {
        self.hosts.load_full()
    }

    /// Picks a host for a request, or `None` (Envoy's "no healthy upstream").
    pub fn choose_host(&self) -> Option<Arc<Host>> {
        let hosts = self.hosts.load();
        let h = self.balancer.pick(self.config.lb_policy, &hosts);
        if h.is_none() {
            self.stats.cx_none_healthy.inc();
        }
        h
    }

    /// Replaces the host set with `addrs` (name, address) pairs, keeping the
    /// existing [`Host`] (and its pools and stats) for addresses that stay.
    pub fn set_hosts(&self, addrs: Vec<(String, SocketAddr)>) {
        let old = self.hosts.load();
        let mut new = Vec::with_capacity(addrs.len());
        for (name, addr) in addrs {
            if new.iter().any(|h: &Arc<Host>| h.addr == addr) {
                continue;
            }
            let host = old
                .iter()
                .find(|h| h.addr == addr)
                .cloned()
                .unwrap_or_else(|| {
                    Host::new(
                        addr,
                        name,
                        self.workers,
                        &self.pool_settings,
                        &self.stats.conn,
                    )
                });
            new.push(host);
        }
        let unchanged =
            new.len() == old.len() && new.iter().zip(old.iter()).all(|(a, b)| Arc::ptr_eq(a, b));
        if !unchanged {
            tracing::info!(cluster = %self.config.name, hosts = ?new.iter().map(|h| h.addr).collect::<Vec<_>>(), "cluster membership updated");
            self.stats.membership_total.set(new.len() as i64);
            self.stats
                .membership_healthy
                .set(new.iter().filter(|h| h.healthy()).count() as i64);
            self.hosts.store(Arc::new(new));
        }
    }
}
