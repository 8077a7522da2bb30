//! The cluster manager: every cluster by name, their initial discovery and
//! the background refresh tasks.

use std::collections::HashMap;
use std::sync::Arc;

use nuncio_config::Cluster as ClusterConfig;
use nuncio_stats::Store;

use crate::cluster::Cluster;
use crate::discovery::Discovery;
use crate::resolve::Resolver;

/// Every cluster.
#[derive(Debug)]
pub struct ClusterManager {
    clusters: HashMap<String, Arc<Cluster>>,
    order: Vec<Arc<Cluster>>,
    resolver: Arc<Resolver>,
}

impl ClusterManager {
    /// Builds the clusters; hosts are empty until [`ClusterManager::initialize`].
    /// Fails if a cluster's TLS cannot be built (a certificate or key that
    /// does not load; `secrets` are the bootstrap's static secrets).
    pub fn new(
        configs: &[ClusterConfig],
        secrets: &[nuncio_config::Secret],
        store: &Arc<Store>,
        workers: usize,
        resolver: Resolver,
    ) -> Result<Self, nuncio_tls::TlsError> {
        let order: Vec<Arc<Cluster>> = configs
            .iter()
            .map(|c| Cluster::new(c.clone(), secrets, store, workers))
            .collect::<Result<_, _>>()?;
        let clusters = order
            .iter()
            .map(|c| (c.name().to_string(), c.clone()))
            .collect();
        Ok(ClusterManager {
            clusters,
            order,
            resolver: Arc::new(resolver),
        })
    }

    /// The cluster called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.clusters.get(name)
    }

    /// Every cluster, in config order.
    pub fn clusters(&self) -> &[Arc<Cluster>] {
        &self.order
    }

    /// Resolves every cluster once (Envoy warms clusters before listeners
    /// open) and spawns the refresh tasks on the current runtime.
    pub async fn initialize(&self) {
        self.warm(&self.order).await;
    }

    /// The cluster manager for a new config (a reload): a cluster whose
    /// config did not change is kept as it is (hosts, pools, health and
    /// its discovery task); the others are built afresh. Returns the new
    /// manager and the clusters that still need [`ClusterManager::warm`].
    /// Stats keep their values: they are looked up by name.
    pub fn update(
        &self,
        configs: &[ClusterConfig],
        secrets: &[nuncio_config::Secret],
        store: &Arc<Store>,
        workers: usize,
    ) -> Result<(Self, Vec<Arc<Cluster>>), nuncio_tls::TlsError> {
        let mut fresh = Vec::new();
        let mut order: Vec<Arc<Cluster>> = Vec::with_capacity(configs.len());
        for c in configs {
            match self.clusters.get(&c.name) {
                Some(old) if old.config == *c => order.push(old.clone()),
                _ => {
                    let n = Cluster::new(c.clone(), secrets, store, workers)?;
                    fresh.push(n.clone());
                    order.push(n);
                }
            }
        }
        let clusters = order
            .iter()
            .map(|c| (c.name().to_string(), c.clone()))
            .collect();
        let m = ClusterManager {
            clusters,
            order,
            resolver: self.resolver.clone(),
        };
        Ok((m, fresh))
    }

    /// Resolves `clusters` once and spawns their refresh tasks. A refresh
    /// task ends once nothing but itself holds its cluster (the cluster
    /// was removed or replaced by a reload, and the last connection that
    /// used it has closed).
    pub async fn warm(&self, clusters: &[Arc<Cluster>]) {
        for c in clusters {
            let mut d = Discovery::new(c.clone(), self.resolver.clone());
            d.refresh().await;
            tokio::spawn(d.run());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{AddressMap, HostsFile};

    fn load(text: &str) -> nuncio_config::Bootstrap {
        nuncio_config::load_str("t", text).unwrap()
    }

    #[tokio::test]
    async fn strict_dns_round_robin_through_hosts_file() {
        let b = load(
            "static_resources:\n  clusters:\n  - name: c\n    type: strict_dns\n    hosts:\n    - socket_address: {address: service1, port_value: 8080}\n    - socket_address: {address: service2, port_value: 8080}\n",
        );
        let hosts = HostsFile::parse("h", "127.0.0.2 service1\n127.0.0.3 service2\n").unwrap();
        let store = Store::new();
        let m = ClusterManager::new(
            &b.clusters,
            &[],
            &store,
            2,
            Resolver::new(hosts, AddressMap::default()),
        )
        .unwrap();
        m.initialize().await;
        let c = m.get("c").unwrap();
        let picks: Vec<String> = (0..4)
            .map(|_| c.choose_host().unwrap().addr.to_string())
            .collect();
        assert_eq!(
            picks,
            [
                "127.0.0.2:8080",
                "127.0.0.3:8080",
                "127.0.0.2:8080",
                "127.0.0.3:8080"
            ]
        );
        assert_eq!(store.value("cluster.c.membership_total"), Some(2));
        assert_eq!(store.value("cluster.c.update_success"), Some(1));
        c.hosts()[0].set_healthy(false);
        assert!((0..4).all(|_| c.choose_host().unwrap().addr.to_string() == "127.0.0.3:8080"));
    }

    #[tokio::test]
    async fn update_keeps_unchanged_clusters_and_rebuilds_changed_ones() {
        let b = load(
            "static_resources:\n  clusters:\n  - name: same\n    type: static\n    hosts: [{socket_address: {address: 127.0.0.1, port_value: 1}}]\n  - name: changed\n    type: static\n    hosts: [{socket_address: {address: 127.0.0.1, port_value: 2}}]\n  - name: removed\n    type: static\n    hosts: [{socket_address: {address: 127.0.0.1, port_value: 3}}]\n",
        );
        let store = Store::new();
        let m = ClusterManager::new(&b.clusters, &[], &store, 1, Resolver::default()).unwrap();
        m.initialize().await;
        let b2 = load(
            "static_resources:\n  clusters:\n  - name: same\n    type: static\n    hosts: [{socket_address: {address: 127.0.0.1, port_value: 1}}]\n  - name: changed\n    type: static\n    hosts: [{socket_address: {address: 127.0.0.1, port_value: 4}}]\n  - name: added\n    type: static\n    hosts: [{socket_address: {address: 127.0.0.1, port_value: 5}}]\n",
        );
        let (m2, fresh) = m.update(&b2.clusters, &[], &store, 1).unwrap();
        assert!(Arc::ptr_eq(m.get("same").unwrap(), m2.get("same").unwrap()));
        assert!(!Arc::ptr_eq(
            m.get("changed").unwrap(),
            m2.get("changed").unwrap()
        ));
        assert!(m2.get("removed").is_none());
        let names: Vec<&str> = fresh.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["changed", "added"]);
        m2.warm(&fresh).await;
        let port = m2
            .get("changed")
            .unwrap()
            .choose_host()
            .unwrap()
            .addr
            .port();
        assert_eq!(port, 4);
        // Stats are the same counters across the reload.
        assert_eq!(store.value("cluster.changed.update_success"), Some(2));
    }

    #[tokio::test]
    async fn failed_lookup_leaves_no_host() {
        let b = load(
            "static_resources:\n  clusters:\n  - name: c\n    type: strict_dns\n    hosts:\n    - socket_address: {address: no-such-host.invalid, port_value: 80}\n",
        );
        let store = Store::new();
        let m = ClusterManager::new(&b.clusters, &[], &store, 1, Resolver::default()).unwrap();
        m.initialize().await;
        assert!(m.get("c").unwrap().choose_host().is_none());
        assert_eq!(store.value("cluster.c.update_failure"), Some(1));
        assert_eq!(store.value("cluster.c.upstream_cx_none_healthy"), Some(1));
    }
}
