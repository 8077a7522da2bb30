//! Envoy's `server.*` stats, with Envoy's meanings:
//!
//! - `server.live` 1 while serving, 0 once draining; `server.state` 0
//!   (LIVE) or 1 (DRAINING);
//! - `server.concurrency`: worker threads; `server.hot_restart_epoch`:
//!   `--restart-epoch` (0 unless given; nuncio has no hot restart);
//! - `server.uptime`: whole seconds since start;
//! - `server.version`: the first six hex digits of the build's git
//!   revision as an integer (Envoy: of its SCM revision), 0 if unknown;
//! - `server.memory_allocated`, `server.memory_heap_size`,
//!   `server.memory_physical_size`: Envoy reads them from its allocator
//!   (tcmalloc/jemalloc); nuncio runs on the system allocator and reads
//!   `/proc/self/status`: resident anonymous memory (`RssAnon`: the live
//!   heap and stacks, an upper bound of what is allocated), the data
//!   segment's size (`VmData`: what the allocator has reserved), and the
//!   resident set (`VmRSS`). `/memory` reports the same figures;
//! - `server.initialization_time_ms`: one sample, from start to serving;
//! - `server.days_until_first_cert_expiring`: Envoy's value without
//!   certificates (2^32 - 1): nuncio has no TLS.
//!
//! [`ServerStats::tick`] runs every second on the main thread: uptime and
//! memory, and every `FLUSH` seconds the histograms' flush interval.

use std::sync::Arc;
use std::time::Instant;

use nuncio_stats::{Gauge, Histogram, Store};

/// Envoy's default `stats_flush_interval`, in seconds.
const FLUSH: u64 = 5;

/// The `server.*` gauges that change.
#[derive(Debug)]
pub(crate) struct ServerStats {
    store: Arc<Store>,
    started: Instant,
    live: Gauge,
    state: Gauge,
    uptime: Gauge,
    allocated: Gauge,
    heap_size: Gauge,
    physical_size: Gauge,
    init_time: Histogram,
}

/// The build's git revision as Envoy's `server.version` integer.
fn version() -> i64 {
    option_env!("NUNCIO_GIT_REVISION")
        .and_then(|r| r.get(..6))
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// `key:  1234 kB` of /proc/self/status, in bytes.
fn status_bytes(status: &str, key: &str) -> i64 {
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        * 1024
}

impl ServerStats {
    /// Registers the `server.*` stats of a process that started at
    /// `started` with `workers` worker threads and `--restart-epoch`
    /// `epoch`.
    pub(crate) fn new(store: &Arc<Store>, started: Instant, workers: usize, epoch: u32) -> Self {
        let r = store.root();
        r.gauge("server.concurrency").set(workers as i64);
        r.gauge("server.hot_restart_epoch").set(i64::from(epoch));
        r.gauge("server.version").set(version());
        r.gauge("server.parent_connections").set(0);
        r.gauge("server.days_until_first_cert_expiring")
            .set(i64::from(u32::MAX));
        r.gauge("server.seconds_until_first_ocsp_response_expiring")
            .set(0);
        let s = ServerStats {
            store: store.clone(),
            started,
            live: r.gauge("server.live"),
            state: r.gauge("server.state"),
            uptime: r.gauge("server.uptime"),
            allocated: r.gauge("server.memory_allocated"),
            heap_size: r.gauge("server.memory_heap_size"),
            physical_size: r.gauge("server.memory_physical_size"),
            init_time: r.histogram("server.initialization_time_ms"),
        };
        s.live.set(1);
        s.state.set(0);
        s.tick();
        s
    }

    /// Listeners are serving: records `server.initialization_time_ms`.
    pub(crate) fn initialized(&self) {
        self.init_time.record(self.started.elapsed());
    }

    /// The server is draining.
    pub(crate) fn draining(&self) {
        self.live.set(0);
        self.state.set(1);
    }

    /// Uptime and memory now; the histograms' flush every `FLUSH` s.
    pub(crate) fn tick(&self) {
        let up = self.started.elapsed().as_secs();
        self.uptime.set(up as i64);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        self.allocated.set(status_bytes(&status, "RssAnon:"));
        self.heap_size.set(status_bytes(&status, "VmData:"));
        self.physical_size.set(status_bytes(&status, "VmRSS:"));
        if up > 0 && up.is_multiple_of(FLUSH) {
            self.store.flush();
        }
    }

    /// Ticks every second, forever.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut t = tokio::time::interval(std::time::Duration::from_secs(1));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            self.tick();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoys_server_gauges() {
        let store = Store::new();
        let s = ServerStats::new(&store, Instant::now(), 3, 0);
        assert_eq!(store.value("server.live"), Some(1));
        assert_eq!(store.value("server.concurrency"), Some(3));
        assert_eq!(store.value("server.hot_restart_epoch"), Some(0));
        assert!(store.value("server.memory_allocated").unwrap_or(0) > 0);
        assert!(store.value("server.memory_heap_size").unwrap_or(0) > 0);
        s.initialized();
        s.draining();
        assert_eq!(store.value("server.live"), Some(0));
        assert_eq!(store.value("server.state"), Some(1));
        let txt = nuncio_stats::render_text(&store, &Default::default());
        assert!(txt.contains("server.initialization_time_ms: P0("), "{txt}");
    }

    #[test]
    fn status_lines() {
        let st = "VmRSS:\t    2048 kB\nRssAnon:\t  1024 kB\n";
        assert_eq!(status_bytes(st, "RssAnon:"), 1024 * 1024);
        assert_eq!(status_bytes(st, "VmData:"), 0);
    }
}
