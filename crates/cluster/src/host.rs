//! A host: one upstream endpoint of a cluster, its per-host stats (shown by
//! admin `/clusters`) and one connection pool per worker.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nuncio_stats::{Counter, Gauge};
use nuncio_upstream::{ConnStats, HostPool, PoolSettings};

/// Per-host counters, as Envoy's `/clusters` lists them.
#[derive(Debug, Default)]
pub struct HostStats {
    /// `rq_total`.
    pub rq_total: Counter,
    /// `rq_active`.
    pub rq_active: Gauge,
    /// `rq_success` (a response that is not 5xx).
    pub rq_success: Counter,
    /// `rq_error` (5xx or reset).
    pub rq_error: Counter,
    /// `rq_timeout`.
    pub rq_timeout: Counter,
}

/// An upstream host.
#[derive(Debug)]
pub struct Host {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The configured name it came from (`service1`), or the address.
    pub hostname: String,
    /// Request stats.
    pub stats: HostStats,
    /// Connection stats (cluster-wide counters plus this host's).
    pub conn_stats: Arc<ConnStats>,
    healthy: AtomicBool,
    pools: Vec<Arc<HostPool>>,
}

impl Host {
    /// A host with `workers` pools.
    pub(crate) fn new(
        addr: SocketAddr,
        hostname: String,
        workers: usize,
        settings: &Arc<PoolSettings>,
        cluster_conn: &ConnStats,
    ) -> Arc<Self> {
        let stats = HostStats::default();
        let conn_stats = Arc::new(ConnStats {
            host_rq_total: stats.rq_total.clone(),
            host_cx_active: Gauge::default(),
            host_cx_total: Counter::default(),
            host_cx_connect_fail: Counter::default(),
            ..cluster_conn.clone()
        });
        let pools = (0..workers.max(1))
            .map(|_| HostPool::new(addr, settings.clone(), conn_stats.clone()))
            .collect();
        Arc::new(Host {
            addr,
            hostname,
            stats,
            conn_stats,
            healthy: AtomicBool::new(true),
            pools,
        })
    }

    /// The connection pool of `worker`.
    pub fn pool(&self, worker: usize) -> &Arc<HostPool> {
        &self.pools[worker % self.pools.len()]
    }

    /// Whether the host takes traffic.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Marks the host healthy or not.
    pub fn set_healthy(&self, h: bool) {
        self.healthy.store(h, Ordering::Relaxed);
    }
}
