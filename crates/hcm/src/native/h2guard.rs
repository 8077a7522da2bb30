//! Envoy's guard against HTTP/2 rapid reset (CVE-2023-44487): a client
//! that resets most of its streams within a second of opening them loses
//! its connection. Each reset stream may already have started an upstream
//! request, so without the guard one connection can keep the proxy and its
//! upstreams busy at no cost to itself. nuncio's codec (`crates/h2`)
//! hands over streams the client reset before they were taken up; they
//! do no upstream work and count here too, so one rule covers both.
//!
//! Envoy's rule (runtime `overload.premature_reset_total_stream_count`,
//! 500, and `overload.premature_reset_min_stream_lifetime_seconds`, 1):
//! a reset is premature when the client resets a stream younger than 1 s;
//! the connection is closed once premature resets reach half of 500, or,
//! after 500 closed streams, half of all closed streams.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// `overload.premature_reset_total_stream_count`.
pub(crate) const TOTAL_STREAM_COUNT: u64 = 500;
/// `overload.premature_reset_min_stream_lifetime_seconds`.
pub(crate) const MIN_STREAM_LIFETIME: Duration = Duration::from_secs(1);

/// One connection's count of closed and prematurely reset streams.
#[derive(Debug, Default)]
pub(crate) struct PrematureResets {
    closed: AtomicU64,
    premature: AtomicU64,
    fired: AtomicBool,
    tripped: Notify,
}

impl PrematureResets {
    /// Records a closed stream; returns true the first time the connection
    /// must be closed.
    pub(crate) fn stream_closed(&self, lifetime: Duration, reset_by_client: bool) -> bool {
        let closed = self.closed.fetch_add(1, Ordering::Relaxed) + 1;
        let premature = if reset_by_client && lifetime < MIN_STREAM_LIFETIME {
            self.premature.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.premature.load(Ordering::Relaxed)
        };
        let trip = if closed < TOTAL_STREAM_COUNT {
            premature * 2 >= TOTAL_STREAM_COUNT
        } else {
            premature * 2 >= closed
        };
        if trip && !self.fired.swap(true, Ordering::Relaxed) {
            self.tripped.notify_one();
            return true;
        }
        false
    }

    /// Resolves once the connection must be closed.
    pub(crate) async fn tripped(&self) {
        self.tripped.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Duration = Duration::from_millis(10);

    #[test]
    fn half_of_the_limit_in_premature_resets_trips_early() {
        let g = PrematureResets::default();
        for _ in 0..249 {
            assert!(!g.stream_closed(FAST, true));
        }
        assert!(g.stream_closed(FAST, true));
        // Only once.
        assert!(!g.stream_closed(FAST, true));
    }

    #[test]
    fn slow_resets_and_completed_streams_do_not_count() {
        let g = PrematureResets::default();
        for _ in 0..10_000 {
            assert!(!g.stream_closed(Duration::from_secs(2), true));
            assert!(!g.stream_closed(FAST, false));
        }
    }

    #[test]
    fn after_the_limit_half_of_all_streams() {
        let g = PrematureResets::default();
        for _ in 0..600 {
            assert!(!g.stream_closed(FAST, false));
        }
        // 600 good, then premature resets until they are half of all.
        let mut n = 0;
        while !g.stream_closed(FAST, true) {
            n += 1;
            assert!(n < 1000);
        }
        assert_eq!(n + 1, 600);
    }
}
