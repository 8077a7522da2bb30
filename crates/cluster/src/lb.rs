//! Load balancers: pick one healthy host for a request.
//!
//! - `ROUND_ROBIN`: the next host in order, skipping unhealthy ones.
//! - `RANDOM`: a host drawn from a per-thread random generator (seeded
//!   from the OS-randomised std hasher), skipping unhealthy ones.
//! - `LEAST_REQUEST`: Envoy's default choice of two (P2C): two *distinct*
//!   hosts drawn at random, the one with fewer active requests wins.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
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
        let first_healthy_from = |start: usize| {
            (0..n)
                .map(|i| &hosts[(start + i) % n])
                .find(|h| h.healthy())
                .cloned()
        };
        match policy {
            LbPolicy::RoundRobin => first_healthy_from(self.next.fetch_add(1, Ordering::Relaxed)),
            LbPolicy::Random => first_healthy_from(random() as usize % n),
            LbPolicy::LeastRequest => {
                let (i, j) = p2c_pair(n, random(), random());
                let (a, b) = (&hosts[i], &hosts[j]);
                let best = match (a.healthy(), b.healthy()) {
                    (true, true) if b.stats.rq_active.get() < a.stats.rq_active.get() => b,
                    (true, _) => a,
                    (false, true) => b,
                    (false, false) => return first_healthy_from(i),
                };
                Some(best.clone())
            }
        }
    }
}

/// Two distinct indexes below `n` (the same one when `n` is 1) from two
/// random numbers: the second is drawn from the `n - 1` others.
fn p2c_pair(n: usize, r1: u64, r2: u64) -> (usize, usize) {
    let i = (r1 % n as u64) as usize;
    if n < 2 {
        return (i, i);
    }
    let j = (i + 1 + (r2 % (n as u64 - 1)) as usize) % n;
    (i, j)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6c62_7261_6e64);
        h.finish() | 1
    });
}

/// A random number from this thread's xorshift64* generator.
fn random() -> u64 {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_upstream::{ConnStats, PoolSettings, Protocol};
    use std::time::Duration;

    fn hosts(n: usize) -> Vec<Arc<Host>> {
        let settings = Arc::new(PoolSettings {
            protocol: Protocol::Http1,
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_requests_per_connection: 0,
            tls: None,
        });
        (0..n)
            .map(|i| {
                let addr = format!("127.0.0.1:{}", 1000 + i).parse().unwrap();
                Host::new(addr, format!("h{i}"), 1, &settings, &ConnStats::default())
            })
            .collect()
    }

    fn index(hosts: &[Arc<Host>], h: &Arc<Host>) -> usize {
        hosts.iter().position(|x| Arc::ptr_eq(x, h)).unwrap()
    }

    #[test]
    fn p2c_choices_always_differ() {
        for n in 2..9 {
            for r1 in 0..50u64 {
                for r2 in 0..50u64 {
                    let (i, j) = p2c_pair(n, r1, r2);
                    assert!(i < n && j < n && i != j, "n={n} r1={r1} r2={r2}");
                }
            }
        }
        assert_eq!(p2c_pair(1, 7, 9), (0, 0));
    }

    #[test]
    fn least_request_with_two_hosts_always_takes_the_idle_one() {
        let hs = hosts(2);
        hs[0].stats.rq_active.set(5);
        let b = Balancer::default();
        for _ in 0..200 {
            let h = b.pick(LbPolicy::LeastRequest, &hs).unwrap();
            assert_eq!(index(&hs, &h), 1);
        }
    }

    #[test]
    fn least_request_spreads_equal_hosts_and_skips_unhealthy() {
        let hs = hosts(3);
        let b = Balancer::default();
        let mut seen = [0; 3];
        for _ in 0..300 {
            seen[index(&hs, &b.pick(LbPolicy::LeastRequest, &hs).unwrap())] += 1;
        }
        assert!(seen.iter().all(|c| *c > 30), "{seen:?}");
        hs[0].set_healthy(false);
        hs[1].set_healthy(false);
        for _ in 0..50 {
            assert_eq!(index(&hs, &b.pick(LbPolicy::LeastRequest, &hs).unwrap()), 2);
        }
    }

    #[test]
    fn random_is_random_and_even() {
        let hs = hosts(4);
        let (a, b) = (Balancer::default(), Balancer::default());
        let draw = |bal: &Balancer| -> Vec<usize> {
            (0..64)
                .map(|_| index(&hs, &bal.pick(LbPolicy::Random, &hs).unwrap()))
                .collect()
        };
        // Two balancers do not replay one sequence (the odds of two equal
        // runs of 64 draws are 4^-64), and no fixed order shows.
        let (sa, sb) = (draw(&a), draw(&b));
        assert_ne!(sa, sb);
        assert_ne!(sa, (0..64).map(|i| i % 4).collect::<Vec<_>>());
        let mut seen = [0; 4];
        for _ in 0..4000 {
            seen[index(&hs, &a.pick(LbPolicy::Random, &hs).unwrap())] += 1;
        }
        assert!(seen.iter().all(|c| (800..1200).contains(c)), "{seen:?}");
    }

    #[test]
    fn round_robin_cycles_in_order_and_skips_unhealthy() {
        let hs = hosts(3);
        let b = Balancer::default();
        let order: Vec<usize> = (0..6)
            .map(|_| index(&hs, &b.pick(LbPolicy::RoundRobin, &hs).unwrap()))
            .collect();
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
        hs[1].set_healthy(false);
        let order: Vec<usize> = (0..4)
            .map(|_| index(&hs, &b.pick(LbPolicy::RoundRobin, &hs).unwrap()))
            .collect();
        assert!(!order.contains(&1), "{order:?}");
        for h in &hs {
            h.set_healthy(false);
        }
        assert!(b.pick(LbPolicy::RoundRobin, &hs).is_none());
    }
}
