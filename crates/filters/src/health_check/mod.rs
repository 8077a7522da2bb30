//! The health check filter's decisions: which requests are health checks,
//! the answer when not passing through (from cluster health given as
//! input), and the pass-through cache.
//!
//! Verified against Envoy 1.40 (`pass_through_mode: false`, `headers:
//! [{name: ":path", string_match: {exact: /healthz}}]`,
//! `cluster_min_healthy_percentages: {origin: {value: 50}}`, curl): GET and
//! POST `/healthz` are answered `200` with `content-length: 0` and
//! `x-envoy-upstream-healthchecked-cluster: ` (the node's cluster, empty
//! without `--service-cluster`); `/healthz?x=1` is forwarded (`:path`
//! includes the query); stats `http.<prefix>.health_check.request_total`
//! and `.ok` count them. The rest follows Envoy's `HealthCheckFilter`:
//! a cluster that does not exist, or is empty with a non-zero minimum, or
//! whose healthy + degraded hosts are under the minimum (an integer
//! percentage: the configured value is truncated) gives 503; a server
//! failing its health checks (draining) gives 503.

mod filter;

pub use filter::{server_failing, set_server_failing, ClusterHealthFn, HealthCheckFilter};

use std::time::{Duration, Instant};

use nuncio_config::filters::HealthCheck;

use crate::headers::HeaderLookup;

/// The header every health check answer carries.
pub const HEALTHCHECKED_CLUSTER: &str = "x-envoy-upstream-healthchecked-cluster";

/// Whether a request is a health check (all `headers` match).
pub fn is_health_check(cfg: &HealthCheck, headers: &dyn HeaderLookup) -> bool {
    cfg.headers
        .iter()
        .all(|m| m.matches(headers.get_joined(&m.name).as_deref()))
}

/// A cluster's host counts (what Envoy's `membership_*` gauges say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterHealth {
    /// All hosts.
    pub total: u64,
    /// Healthy hosts.
    pub healthy: u64,
    /// Degraded hosts (count as available).
    pub degraded: u64,
}

/// Why a health check failed (the counter under `health_check.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server is failing health checks (draining): `failed`.
    ServerFailing,
    /// `failed_cluster_not_found`.
    ClusterNotFound,
    /// `failed_cluster_empty`.
    ClusterEmpty,
    /// `failed_cluster_unhealthy`.
    ClusterUnhealthy,
}

impl Failure {
    /// The counter's name under `http.<stat_prefix>.`.
    pub fn stat(self) -> &'static str {
        match self {
            Failure::ServerFailing => "health_check.failed",
            Failure::ClusterNotFound => "health_check.failed_cluster_not_found",
            Failure::ClusterEmpty => "health_check.failed_cluster_empty",
            Failure::ClusterUnhealthy => "health_check.failed_cluster_unhealthy",
        }
    }
}

/// The answer to a health check that is not passed through: 200, or 503
/// with the reason.
pub fn answer(
    cfg: &HealthCheck,
    server_failing: bool,
    cluster: &dyn Fn(&str) -> Option<ClusterHealth>,
) -> Result<u16, (u16, Failure)> {
    if server_failing {
        return Err((503, Failure::ServerFailing));
    }
    for (name, min) in &cfg.cluster_min_healthy_percentages {
        let min = *min as u64;
        let Some(h) = cluster(name) else {
            return Err((503, Failure::ClusterNotFound));
        };
        if h.total == 0 {
            if min == 0 {
                continue;
            }
            return Err((503, Failure::ClusterEmpty));
        }
        if 100 * (h.healthy + h.degraded) < h.total * min {
            return Err((503, Failure::ClusterUnhealthy));
        }
    }
    Ok(200)
}

/// Pass-through mode's cache of the last upstream answer (`cache_time`).
#[derive(Debug, Clone, Default)]
pub struct Cache {
    last: Option<(u16, Instant)>,
}

impl Cache {
    /// Records an upstream answer's status at `now`.
    pub fn store(&mut self, status: u16, now: Instant) {
        self.last = Some((status, now));
    }

    /// The cached status, if younger than `cache_time` (counts
    /// `health_check.cached_response` when used).
    pub fn get(&self, cache_time: Option<Duration>, now: Instant) -> Option<u16> {
        let ttl = cache_time?;
        let (status, at) = self.last?;
        (now.saturating_duration_since(at) < ttl).then_some(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::HeaderList;
    use nuncio_config::filters::{decode_filter_str, HttpFilterConfig};

    fn cfg(extra: &str) -> HealthCheck {
        let text = format!("\"@type\": type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck\n{extra}");
        match decode_filter_str("h.yaml", &text).unwrap() {
            HttpFilterConfig::HealthCheck(h) => *h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn matching() {
        let c = cfg(
            "pass_through_mode: false\nheaders: [{name: ':path', string_match: {exact: /healthz}}]",
        );
        let req = |p: &str| HeaderList(vec![(":path".into(), p.into())]);
        assert!(is_health_check(&c, &req("/healthz")));
        assert!(!is_health_check(&c, &req("/healthz?x=1")));
        assert!(!is_health_check(&c, &HeaderList::default()));
    }

    #[test]
    fn cluster_health() {
        let c = cfg("pass_through_mode: false\ncluster_min_healthy_percentages: {origin: {value: 50.9}, zero: {value: 0}}");
        let hosts = |origin: ClusterHealth| {
            move |n: &str| match n {
                "origin" => Some(origin),
                "zero" => Some(ClusterHealth::default()),
                _ => None,
            }
        };
        let h = |total, healthy, degraded| ClusterHealth {
            total,
            healthy,
            degraded,
        };
        assert_eq!(
            answer(&c, false, &hosts(h(4, 2, 0))),
            Ok(200),
            "50.9 truncates to 50"
        );
        assert_eq!(
            answer(&c, false, &hosts(h(4, 1, 1))),
            Ok(200),
            "degraded hosts count"
        );
        assert_eq!(
            answer(&c, false, &hosts(h(4, 1, 0))),
            Err((503, Failure::ClusterUnhealthy))
        );
        assert_eq!(
            answer(&c, false, &hosts(h(0, 0, 0))),
            Err((503, Failure::ClusterEmpty))
        );
        assert_eq!(
            answer(&c, true, &hosts(h(4, 4, 0))),
            Err((503, Failure::ServerFailing))
        );
        let missing =
            cfg("pass_through_mode: false\ncluster_min_healthy_percentages: {gone: {value: 1}}");
        assert_eq!(
            answer(&missing, false, &|_| None),
            Err((503, Failure::ClusterNotFound))
        );
        assert_eq!(
            Failure::ClusterEmpty.stat(),
            "health_check.failed_cluster_empty"
        );
    }

    #[test]
    fn cache() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        assert_eq!(c.get(Some(Duration::from_secs(2)), t0), None);
        c.store(503, t0);
        assert_eq!(
            c.get(
                Some(Duration::from_secs(2)),
                t0 + Duration::from_millis(1999)
            ),
            Some(503)
        );
        assert_eq!(
            c.get(Some(Duration::from_secs(2)), t0 + Duration::from_secs(2)),
            None
        );
        assert_eq!(c.get(None, t0), None);
    }
}
