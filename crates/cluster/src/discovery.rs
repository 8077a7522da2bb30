//! Service discovery: fills a cluster's host set from its config (STATIC)
//! or from DNS (STRICT_DNS: every address of every name; LOGICAL_DNS: the
//! first address of its one name), refreshed every `dns_refresh_rate`.

use std::net::SocketAddr;
use std::sync::Arc;

use nuncio_config::DiscoveryType;

use crate::cluster::Cluster;
use crate::resolve::Resolver;

/// The discovery state of one cluster: the last good answer per endpoint,
/// kept when a later lookup of that name fails (as Envoy does).
pub(crate) struct Discovery {
    cluster: Arc<Cluster>,
    resolver: Arc<Resolver>,
    last: Vec<Vec<SocketAddr>>,
}

impl Discovery {
    pub fn new(cluster: Arc<Cluster>, resolver: Arc<Resolver>) -> Self {
        let n = cluster.config.endpoints.len();
        Discovery {
            cluster,
            resolver,
            last: vec![Vec::new(); n],
        }
    }

    /// One resolution round; true when every endpoint resolved.
    pub async fn refresh(&mut self) -> bool {
        let c = &self.cluster;
        c.stats.update_attempt.inc();
        let mut ok = true;
        for (i, ep) in c.config.endpoints.iter().enumerate() {
            match self
                .resolver
                .resolve(&ep.address, ep.port, c.config.dns_lookup_family)
                .await
            {
                Ok(mut addrs) => {
                    if c.config.discovery == DiscoveryType::LogicalDns {
                        addrs.truncate(1);
                    }
                    self.last[i] = addrs;
                }
                Err(e) => {
                    ok = false;
                    tracing::warn!(cluster = %c.config.name, error = %e, "DNS resolution failed; keeping the previous hosts");
                }
            }
        }
        let hosts = c
            .config
            .endpoints
            .iter()
            .zip(&self.last)
            .flat_map(|(ep, addrs)| addrs.iter().map(|a| (ep.address.clone(), *a)))
            .collect();
        c.set_hosts(hosts);
        if ok {
            c.stats.update_success.inc();
        } else {
            c.stats.update_failure.inc();
        }
        ok
    }

    /// Re-resolves forever (DNS clusters only).
    pub async fn run(mut self) {
        if self.cluster.config.discovery == DiscoveryType::Static {
            return;
        }
        loop {
            tokio::time::sleep(self.cluster.config.dns_refresh_rate).await;
            if Arc::strong_count(&self.cluster) == 1 {
                // Removed by a reload and no longer used by any connection.
                tracing::debug!(cluster = %self.cluster.name(), "cluster retired; discovery stops");
                return;
            }
            self.refresh().await;
        }
    }
}
