//! Clusters: where a routed request goes next. A [`ClusterManager`] holds
//! every cluster; a [`Cluster`] discovers its hosts (from the config, or by
//! DNS re-resolved every `dns_refresh_rate`), picks one per request with
//! its load-balancing policy, and counts Envoy's `cluster.<name>.*` stats.
//! Each [`Host`] owns one upstream connection pool per worker.

#![forbid(unsafe_code)]

mod cluster;
mod discovery;
mod host;
mod lb;
mod manager;
mod resolve;

pub use cluster::{Cluster, ClusterStats};
pub use host::{Host, HostStats};
pub use manager::ClusterManager;
pub use resolve::{AddressMap, HostsFile, ResolveError, Resolver};
