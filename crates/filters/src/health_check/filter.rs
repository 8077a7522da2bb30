//! The health check filter on the request path. A request matching the
//! filter's `headers` is a health check: answered here (200, or 503 when
//! the server fails health checks (admin `POST /healthcheck/fail`) or a
//! cluster is below its `cluster_min_healthy_percentages`), or with
//! `pass_through_mode` forwarded, its answer kept for `cache_time`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nuncio_config::filters::HealthCheck;
use nuncio_stats::{Counter, Scope};

use super::{answer, is_health_check, Cache, ClusterHealth, Failure, HEALTHCHECKED_CLUSTER};
use crate::chain::{Flow, HttpFilter, LocalResponse, RequestCx, ResponseCx, NO_FLAG};

static SERVER_FAILING: AtomicBool = AtomicBool::new(false);

/// Whether this process fails health checks (admin `/healthcheck/fail`).
pub fn server_failing() -> bool {
    SERVER_FAILING.load(Ordering::Relaxed)
}

/// Sets whether this process fails health checks (admin
/// `/healthcheck/fail` and `/healthcheck/ok`).
pub fn set_server_failing(failing: bool) {
    SERVER_FAILING.store(failing, Ordering::Relaxed);
}

/// How the filter learns a cluster's health.
pub type ClusterHealthFn = Arc<dyn Fn(&str) -> Option<ClusterHealth> + Send + Sync>;

/// Marks a forwarded health check, for its response phase.
struct Forwarded;

/// `envoy.filters.http.health_check`.
pub struct HealthCheckFilter {
    cfg: HealthCheck,
    clusters: ClusterHealthFn,
    /// `node.cluster` (`--service-cluster`), Envoy's
    /// `x-envoy-upstream-healthchecked-cluster` value.
    service_cluster: String,
    cache: Mutex<Cache>,
    request: Counter,
    ok: Counter,
    cached: Counter,
    failures: [Counter; 4],
}

impl std::fmt::Debug for HealthCheckFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheckFilter")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

const FAILURES: [Failure; 4] = [
    Failure::ServerFailing,
    Failure::ClusterNotFound,
    Failure::ClusterEmpty,
    Failure::ClusterUnhealthy,
];

impl HealthCheckFilter {
    /// The filter, counting under the connection manager's `http.<prefix>.`.
    pub fn new(
        cfg: HealthCheck,
        http: &Scope,
        clusters: ClusterHealthFn,
        service_cluster: &str,
    ) -> Self {
        HealthCheckFilter {
            cfg,
            clusters,
            service_cluster: service_cluster.to_string(),
            cache: Mutex::new(Cache::default()),
            request: http.counter("health_check.request"),
            ok: http.counter("health_check.ok"),
            cached: http.counter("health_check.cached_response"),
            failures: FAILURES.map(|f| http.counter(f.stat())),
        }
    }

    fn reply(&self, status: u16) -> Flow {
        Flow::Reply(LocalResponse {
            headers: vec![(
                HEALTHCHECKED_CLUSTER.to_string(),
                self.service_cluster.clone(),
            )],
            ..LocalResponse::new(status, "", NO_FLAG)
        })
    }
}

impl HttpFilter for HealthCheckFilter {
    fn on_request(&self, cx: &mut RequestCx<'_, '_>) -> Flow {
        if !is_health_check(&self.cfg, &cx.matchable()) {
            return Flow::Continue;
        }
        self.request.inc();
        cx.health_check = true;
        if self.cfg.pass_through_mode {
            let cached = self
                .cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(self.cfg.cache_time, Instant::now());
            if let Some(status) = cached {
                self.cached.inc();
                return self.reply(status);
            }
            cx.keep(Forwarded);
            return Flow::Continue;
        }
        match answer(&self.cfg, server_failing(), &*self.clusters) {
            Ok(status) => {
                self.ok.inc();
                self.reply(status)
            }
            Err((status, failure)) => {
                if let Some(i) = FAILURES.iter().position(|f| *f == failure) {
                    self.failures[i].inc();
                }
                self.reply(status)
            }
        }
    }

    fn has_response_phase(&self) -> bool {
        true
    }

    fn on_response(&self, cx: &mut ResponseCx<'_, '_>) {
        if cx.kept::<Forwarded>().is_some() {
            if self.cfg.cache_time.is_some() {
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .store(cx.status, Instant::now());
            }
            cx.headers
                .edits
                .set(HEALTHCHECKED_CLUSTER, &self.service_cluster);
        }
    }
}
