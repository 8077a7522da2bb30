//! Builds a listener's [`FilterChain`] from its `http_filters` (decoded by
//! `nuncio_config::filters`, where Envoy's names and `@type` URLs are
//! mapped): one match arm per filter. Adding a filter: its config in
//! `nuncio_config::filters`, its module here (`cors` is the worked
//! example), an arm below.

use std::sync::Arc;

use nuncio_config::filters::{HttpFilter as FilterConfig, HttpFilterConfig};
use nuncio_stats::Scope;

use crate::buffer::BufferFilter;
use crate::chain::{FilterChain, HttpFilter};
use crate::cors::CorsFilter;
use crate::fault::FaultFilter;
use crate::header_mutation::HeaderMutationFilter;
use crate::health_check::{ClusterHealthFn, HealthCheckFilter};
use crate::local_ratelimit::LocalRateLimitFilter;

/// What building filters needs from the server.
pub struct BuildContext<'a> {
    /// The connection manager's `http.<stat_prefix>.` scope.
    pub http: &'a Scope,
    /// The root scope (filters with their own `stat_prefix`).
    pub root: &'a Scope,
    /// A cluster's health, by name (the health check filter).
    pub cluster_health: ClusterHealthFn,
    /// `node.cluster` (`--service-cluster`).
    pub service_cluster: &'a str,
}

/// The chain for `filters` (the router excluded).
pub fn build_chain(filters: &[FilterConfig], cx: &BuildContext<'_>) -> FilterChain {
    let mut chain = FilterChain::new();
    for f in filters {
        let (filter, reads_request): (Arc<dyn HttpFilter>, bool) = match &f.config {
            HttpFilterConfig::Cors => (Arc::new(CorsFilter::new(cx.http)), false),
            HttpFilterConfig::LocalRateLimit(c) => (
                Arc::new(LocalRateLimitFilter::new((**c).clone(), cx.root)),
                false,
            ),
            HttpFilterConfig::Fault(c) => {
                (Arc::new(FaultFilter::new((**c).clone(), cx.http)), false)
            }
            HttpFilterConfig::Buffer(c) => (Arc::new(BufferFilter::new(*c)), false),
            HttpFilterConfig::HealthCheck(c) => (
                Arc::new(HealthCheckFilter::new(
                    (**c).clone(),
                    cx.http,
                    cx.cluster_health.clone(),
                    cx.service_cluster,
                )),
                false,
            ),
            HttpFilterConfig::HeaderMutation(c) => {
                let h = HeaderMutationFilter::new((**c).clone());
                let reads = h.reads_request_on_response();
                (Arc::new(h), reads)
            }
        };
        if reads_request {
            chain.keep_request_headers();
        }
        chain.push(&f.name, f.disabled, filter);
    }
    chain
}
