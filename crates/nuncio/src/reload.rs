//! The running configuration, and swapping in a new one (SIGHUP, or
//! `--watch-config` seeing the file change) without dropping anything.
//!
//! A reload builds every cluster and connection manager of the new config
//! and binds any new listener address before it changes anything; if any
//! step fails, the old configuration keeps serving and the error is
//! logged. Then, as Envoy's listener manager does:
//! - clusters whose config is unchanged are kept (hosts, pools, health);
//!   changed and added ones are resolved before traffic reaches them;
//! - a listener on the same address gets the new connection manager for
//!   new connections; its existing connections finish on the old one,
//!   which drains them (`Connection: close` / GOAWAY, idle ones closed
//!   after `drain_timeout`) when the listener or any cluster changed;
//! - new listeners start on every worker; removed ones close and drain.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use nuncio_admin::{ListenerInfo, Running};
use nuncio_cluster::{AddressMap, ClusterManager};
use nuncio_config::{Bootstrap, Listener, NetworkFilter, SocketAddress};
use nuncio_hcm::Hcm;
use nuncio_listener::{Chain, Chains, Inspector};
use nuncio_listener::{ListenerSlot, ListenerStats};
use nuncio_stats::{Counter, Store};

use crate::workers::Workers;

/// One listener that is serving.
pub(crate) struct LiveListener {
    config: Listener,
    addr: SocketAddr,
    slot: Arc<ListenerSlot>,
    info: ListenerInfo,
}

/// Envoy's listener and cluster manager stats for config updates.
struct ReloadStats {
    update_success: Counter,
    update_rejected: Counter,
    listener_added: Counter,
    listener_modified: Counter,
    listener_removed: Counter,
    cluster_added: Counter,
    cluster_modified: Counter,
    cluster_removed: Counter,
}

impl ReloadStats {
    fn new(store: &Arc<Store>) -> Self {
        let r = store.root();
        ReloadStats {
            update_success: r.counter("listener_manager.lds.update_success"),
            update_rejected: r.counter("listener_manager.lds.update_rejected"),
            listener_added: r.counter("listener_manager.listener_added"),
            listener_modified: r.counter("listener_manager.listener_modified"),
            listener_removed: r.counter("listener_manager.listener_removed"),
            cluster_added: r.counter("cluster_manager.cluster_added"),
            cluster_modified: r.counter("cluster_manager.cluster_modified"),
            cluster_removed: r.counter("cluster_manager.cluster_removed"),
        }
    }
}

/// A config with its clusters and connection managers built, not yet
/// serving.
pub(crate) struct Built {
    /// The config.
    pub bootstrap: Bootstrap,
    /// Its clusters (not yet resolved).
    pub clusters: Arc<ClusterManager>,
    /// Each listener's filter chains (transport and connection manager),
    /// in order.
    pub hcms: Vec<Chains>,
}

/// Everything the config made that a reload may replace.
pub(crate) struct Live {
    store: Arc<Store>,
    remap: AddressMap,
    workers: Workers,
    pools: usize,
    stats: ReloadStats,
    /// The clusters.
    pub clusters: Arc<ClusterManager>,
    /// The config in force.
    pub bootstrap: Bootstrap,
    listeners: Vec<LiveListener>,
}

/// Where a listener binds (after `--remap`).
pub(crate) fn socket_addr(a: &SocketAddress, remap: &AddressMap) -> Result<SocketAddr> {
    let ip = a
        .ip()
        .ok_or_else(|| anyhow!("listener address '{}' must be an IP address", a.address))?;
    Ok(remap.apply(SocketAddr::new(ip, a.port)))
}

/// The connection managers of `b`'s listeners, routing to `clusters`.
pub(crate) fn build_hcms(
    b: &Bootstrap,
    clusters: &ClusterManager,
    store: &Arc<Store>,
) -> Result<Vec<Chains>> {
    b.listeners
        .iter()
        .map(|l| {
            build_chains(b, l, clusters, store).with_context(|| format!("listener '{}'", l.name))
        })
        .collect()
}

/// A listener's filter chains, built: a connection manager and (for TLS)
/// a checked rustls config each, how connections are told apart, and the
/// TLS inspector when the listener has one or a chain matches on what only
/// a ClientHello tells (Envoy then adds the inspector itself).
fn build_chains(
    b: &Bootstrap,
    l: &Listener,
    clusters: &ClusterManager,
    store: &Arc<Store>,
) -> Result<Chains> {
    let build = |fc: &nuncio_config::FilterChain| -> Result<Chain> {
        let NetworkFilter::HttpConnectionManager(cfg) = &fc.filter;
        let hcm = Hcm::new(
            cfg,
            &l.address.to_string(),
            l.per_connection_buffer_limit_bytes,
            clusters,
            store,
            &b.node,
        )?;
        // Every certificate is read and checked now, so a bad one fails
        // the load (and `--mode validate`).
        let tls = match fc.transport_socket.tls() {
            None => None,
            Some(t) => Some(Arc::new(
                nuncio_tls::ServerTransport::new(
                    t,
                    &b.secrets,
                    fc.transport_socket_connect_timeout,
                )
                .map_err(|e| anyhow::Error::from(nuncio_config::ConfigError::from(e)))?,
            )),
        };
        Ok(Chain { hcm, tls })
    };
    let chains = l
        .filter_chains
        .iter()
        .map(build)
        .collect::<Result<Vec<_>>>()?;
    let default = l.default_filter_chain.as_ref().map(build).transpose()?;
    // The TLS inspector is the one listener filter nuncio knows.
    let configured = l.listener_filters.first().map(|f| match f {
        nuncio_config::ListenerFilter::TlsInspector(t) => t.max_client_hello_size,
    });
    let needs_hello = l.filter_chains.iter().any(|fc| {
        let m = &fc.chain_match;
        !m.server_names.is_empty()
            || m.transport_protocol.is_some()
            || !m.application_protocols.is_empty()
    });
    let inspector = (configured.is_some() || needs_hello).then(|| Inspector {
        max_client_hello: configured
            .flatten()
            .map_or(nuncio_tls::inspect::DEFAULT_MAX_CLIENT_HELLO, |m| {
                m as usize
            }),
        timeout: l.listener_filters_timeout,
    });
    let single = chains.len() == 1 && default.is_none() && inspector.is_none();
    if single && l.filter_chains[0].chain_match.is_empty() {
        return Ok(Chains::one(
            chains
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("no chain"))?,
        ));
    }
    let matches: Vec<_> = l
        .filter_chains
        .iter()
        .map(|fc| fc.chain_match.clone())
        .collect();
    Ok(Chains::new(
        nuncio_tls::chain_match::ChainTable::new(&matches),
        chains,
        default,
        inspector,
    ))
}

impl Live {
    /// Starts serving `bootstrap`: warms its clusters, binds every
    /// listener (one socket per worker) and hands them to the workers.
    pub(crate) async fn start(
        built: Built,
        store: Arc<Store>,
        remap: AddressMap,
        workers: Workers,
        pools: usize,
    ) -> Result<Self> {
        let Built {
            bootstrap,
            clusters,
            hcms,
        } = built;
        clusters.initialize().await;
        let mut live = Live {
            stats: ReloadStats::new(&store),
            store,
            remap,
            workers,
            pools,
            clusters,
            bootstrap: bootstrap.clone(),
            listeners: Vec::new(),
        };
        // Bind everything before serving anything, so a bind error stops
        // the process with a clear message.
        let mut bound = Vec::new();
        for (l, hcm) in bootstrap.listeners.iter().zip(hcms) {
            bound.push((l, live.bind(l)?, hcm));
        }
        for (l, (addr, socks), hcm) in bound {
            let ll = live.serve(l, addr, socks, hcm)?;
            live.listeners.push(ll);
        }
        Ok(live)
    }

    fn bind(&self, l: &Listener) -> Result<(SocketAddr, Vec<std::net::TcpListener>)> {
        let addr = socket_addr(&l.address, &self.remap)
            .with_context(|| format!("listener '{}'", l.name))?;
        let socks = nuncio_listener::bind(addr, self.workers.sockets())
            .with_context(|| format!("cannot bind listener '{}' to {addr}", l.name))?;
        Ok((addr, socks))
    }

    fn serve(
        &self,
        l: &Listener,
        addr: SocketAddr,
        socks: Vec<std::net::TcpListener>,
        hcm: Chains,
    ) -> Result<LiveListener> {
        let actual = socks
            .first()
            .ok_or_else(|| anyhow!("listener '{}': no socket", l.name))?
            .local_addr()?;
        tracing::info!(listener = %l.name, address = %actual, "listening");
        let stats = ListenerStats::new(&self.store, &l.address.to_string());
        let slot = ListenerSlot::new(hcm);
        self.workers.serve(socks, &slot, &stats);
        Ok(LiveListener {
            config: l.clone(),
            addr,
            slot,
            info: ListenerInfo {
                name: l.name.clone(),
                address: actual,
            },
        })
    }

    /// What the admin endpoints show.
    pub(crate) fn running(&self) -> Running {
        Running {
            clusters: self.clusters.clone(),
            bootstrap: self.bootstrap.clone(),
            listeners: self.listeners.iter().map(|l| l.info.clone()).collect(),
        }
    }

    /// Every listener's slot (for drains).
    pub(crate) fn slots(&self) -> Vec<Arc<ListenerSlot>> {
        self.listeners.iter().map(|l| l.slot.clone()).collect()
    }

    /// Swaps in `new`; on error nothing has changed. Returns a one-line
    /// summary of what changed.
    pub(crate) async fn reload(&mut self, new: Bootstrap) -> Result<String> {
        let r = self.try_reload(new).await;
        match &r {
            Ok(_) => self.stats.update_success.inc(),
            Err(_) => self.stats.update_rejected.inc(),
        }
        r
    }

    /// Counts a reload refused before it reached [`Live::reload`] (the
    /// file did not load).
    pub(crate) fn rejected(&self) {
        self.stats.update_rejected.inc();
    }

    async fn try_reload(&mut self, new: Bootstrap) -> Result<String> {
        if new.admin != self.bootstrap.admin {
            tracing::warn!("the admin section changed; it takes effect at the next restart");
        }
        // 1. Build everything new; nothing is touched yet.
        let (clusters, fresh) = self
            .clusters
            .update(&new.clusters, &new.secrets, &self.store, self.pools)
            .map_err(|e| anyhow::Error::from(nuncio_config::ConfigError::from(e)))?;
        let hcms = build_hcms(&new, &clusters, &self.store)?;
        let mut binds = Vec::new();
        for l in &new.listeners {
            let addr = socket_addr(&l.address, &self.remap)
                .with_context(|| format!("listener '{}'", l.name))?;
            let same = self
                .listeners
                .iter()
                .any(|o| o.config.name == l.name && o.addr == addr);
            binds.push(if same { None } else { Some(self.bind(l)?) });
        }
        // 2. Resolve new and changed clusters before traffic reaches them.
        clusters.warm(&fresh).await;
        let removed_clusters = self
            .clusters
            .clusters()
            .iter()
            .filter(|c| clusters.get(c.name()).is_none())
            .count();
        let modified_clusters = fresh
            .iter()
            .filter(|c| self.clusters.get(c.name()).is_some())
            .count();
        let clusters_changed = !fresh.is_empty() || removed_clusters > 0;

        // 3. Swap.
        let mut old: Vec<LiveListener> = std::mem::take(&mut self.listeners);
        let (mut added, mut modified, mut kept) = (0, 0, 0);
        for ((l, hcm), bind) in new.listeners.iter().zip(hcms).zip(binds) {
            match bind {
                None => {
                    let i = old
                        .iter()
                        .position(|o| o.config.name == l.name)
                        .ok_or_else(|| anyhow!("listener '{}' vanished during reload", l.name))?;
                    let mut ll = old.swap_remove(i);
                    let previous = ll.slot.swap(hcm);
                    if ll.config != *l || clusters_changed {
                        previous.hcms().for_each(|h| h.start_drain());
                        modified += 1;
                    } else {
                        kept += 1;
                    }
                    ll.config = l.clone();
                    self.listeners.push(ll);
                }
                Some((addr, socks)) => {
                    self.listeners.push(self.serve(l, addr, socks, hcm)?);
                    added += 1;
                }
            }
        }
        // Whatever is left was removed (or moved to another address).
        let removed = old.len();
        for o in old {
            tracing::info!(listener = %o.config.name, address = %o.info.address, "listener removed; draining");
            o.slot.close();
        }
        self.stats.listener_added.add(added);
        self.stats.listener_modified.add(modified);
        self.stats.listener_removed.add(removed as u64);
        self.stats
            .cluster_added
            .add((fresh.len() - modified_clusters) as u64);
        self.stats.cluster_modified.add(modified_clusters as u64);
        self.stats.cluster_removed.add(removed_clusters as u64);
        self.clusters = Arc::new(clusters);
        self.bootstrap = new;
        Ok(format!(
            "listeners: {added} added, {modified} modified, {kept} unchanged, {removed} removed; \
             clusters: {} added, {modified_clusters} modified, {removed_clusters} removed",
            fresh.len() - modified_clusters
        ))
    }
}
