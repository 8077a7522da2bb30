//! Load balancers: pick one healthy host for a request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nuncio_config::LbPolicy;

use crate::host::Host;

/// Balancer state of one cluster.
#[derive(Debug, Default)]
pub(crate) struct Balancer {
    next: AtomicUsize,
}

impl Balancer {
    /// Picks a healthy host under `policy`; `None` when no host is healthy.
    pub fn pick(&self, policy: LbPolicy, hosts: &[Arc<Host>]) -> Option<Arc<Host>> {
        let n = hosts.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        match policy {
            LbPolicy::RoundRobin => (0..n)
                .map(|i| &hosts[(start + i) % n])
                .find(|h| h.healthy())
                .cloned(),
            LbPolicy::Random => {
                let r = random(start);
                (0..n)
                    .map(|i| &hosts[(r + i) % n])
                    .find(|h| h.healthy())
                    .cloned()
            }
            LbPolicy::LeastRequest => {
                // Power of two choices on active requests.
                let a = &hosts[random(start) % n];
                let b = &hosts[random(start.wrapping_add(7919)) % n];
                let best = match (a.healthy(), b.healthy()) {
                    (true, true) => {
                        if b.stats.rq_active.get() < a.stats.rq_active.get() {
                            b
                        } else {
                            a
                        }
                    }
                    (true, false) => a,
                    (false, true) => b,
                    (false, false) => return hosts.iter().find(|h| h.healthy()).cloned(),
                };
                Some(best.clone())
            }
        }
    }
}

/// A cheap mix of a counter into a well-spread index (splitmix64).
fn random(seed: usize) -> usize {
    let mut z = (seed as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as usize
}
