//! Listeners. Each worker thread gets its own socket on the listener's
//! address (SO_REUSEPORT, so the kernel spreads new connections across
//! workers and no worker shares an accept queue lock), accepts on it, and
//! hands every connection to the listener's HTTP connection manager on the
//! same worker. The connection manager sits in a [`ListenerSlot`], so a
//! config reload swaps it for new connections while the connections
//! already accepted keep the one they started with.

#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use nuncio_hcm::Hcm;
use nuncio_stats::{Counter, Gauge, GaugeGuard, Store};
use nuncio_tls::{Conn, SslStats};

mod select;

use select::SelectStats;
pub use select::{Chain, Chains, Inspector, InspectorStats};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

/// What a listener serves new connections with, shared by its sockets on
/// every worker: the current filter chains, and whether the listener has
/// been closed.
#[derive(Debug)]
pub struct ListenerSlot {
    chains: ArcSwap<Chains>,
    closed: watch::Sender<bool>,
}

impl ListenerSlot {
    /// A slot serving with `chains`.
    pub fn new(chains: Chains) -> Arc<Self> {
        Arc::new(ListenerSlot {
            chains: ArcSwap::from_pointee(chains),
            closed: watch::Sender::new(false),
        })
    }

    /// Every connection manager new connections may get.
    pub fn hcms(&self) -> Vec<Arc<Hcm>> {
        self.chains.load().hcms().cloned().collect()
    }

    /// Serves new connections with `chains` from now on; returns the
    /// previous ones (their connections carry on; the caller drains them).
    pub fn swap(&self, chains: Chains) -> Arc<Chains> {
        self.chains.swap(Arc::new(chains))
    }

    /// Closes the listener on every worker (connections already queued by
    /// the kernel are still served) and drains its connection manager.
    pub fn close(&self) {
        for h in self.hcms() {
            h.close_listener();
        }
        self.closed.send_replace(true);
    }

    async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// Envoy's `listener.<address>.*` stats.
#[derive(Debug)]
pub struct ListenerStats {
    /// `ssl.*`, shared by the listener's TLS chains as in Envoy.
    pub ssl: SslStats,
    /// `downstream_cx_transport_socket_connect_timeout`: TLS handshakes
    /// not done in time.
    pub cx_transport_socket_connect_timeout: Counter,
    /// `no_filter_chain_match`.
    pub no_filter_chain_match: Counter,
    /// `downstream_pre_cx_timeout`: listener filters not done in time.
    pub pre_cx_timeout: Counter,
    /// `tls_inspector.*` (Envoy keeps them process-wide).
    pub tls_inspector: InspectorStats,
    /// `downstream_cx_total`.
    pub cx_total: Counter,
    /// `downstream_cx_active`.
    pub cx_active: Gauge,
    /// Process-wide `server.total_connections`.
    pub server_connections: Gauge,
}

impl ListenerStats {
    /// Stats for a listener configured at `address` (Envoy names them
    /// `listener.0.0.0.0_80.`).
    pub fn new(store: &Arc<Store>, address: &str) -> Arc<Self> {
        let s = nuncio_stats::listener_scope(store, address);
        for z in [
            "no_filter_chain_match",
            "downstream_cx_overflow",
            "downstream_cx_overload_reject",
            "downstream_global_cx_overflow",
            "downstream_pre_cx_timeout",
        ] {
            let _ = s.counter(z);
        }
        Arc::new(ListenerStats {
            ssl: SslStats::new(&s),
            cx_transport_socket_connect_timeout: s
                .counter("downstream_cx_transport_socket_connect_timeout"),
            no_filter_chain_match: s.counter("no_filter_chain_match"),
            pre_cx_timeout: s.counter("downstream_pre_cx_timeout"),
            tls_inspector: InspectorStats::new(&store.root().sub(
                "tls_inspector.",
                "tls_inspector.",
                &[],
            )),
            cx_total: s.counter("downstream_cx_total"),
            cx_active: s.gauge("downstream_cx_active"),
            server_connections: store.root().gauge("server.total_connections"),
        })
    }
}

/// Binds `count` sockets to `addr` with SO_REUSEPORT. Port 0 is resolved
/// by the first bind and reused by the rest. Call inside a tokio runtime;
/// the sockets come back as std listeners for each worker to adopt.
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let s = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        s.set_reuseaddr(true)?;
        s.set_reuseport(true)?;
        s.set_nodelay(true)?;
        s.bind(addr)?;
        let l = s.listen(1024)?;
        addr = l.local_addr()?;
        out.push(l.into_std()?);
    }
    Ok(out)
}

/// Accepts connections on `listener` (a socket from [`bind`]), serving
/// each with the slot's current connection manager on this worker, until
/// the slot is closed: then the connections already queued are taken (they
/// are served, with `Connection: close`) and the socket is closed.
pub async fn run(
    listener: std::net::TcpListener,
    slot: Arc<ListenerSlot>,
    stats: Arc<ListenerStats>,
    worker: usize,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot adopt listener socket");
            return;
        }
    };
    let drained = slot.closed();
    tokio::pin!(drained);
    let mut draining = false;
    loop {
        let accepted = if draining {
            // Only what the kernel has already queued; then close.
            match std::future::poll_fn(|cx| std::task::Poll::Ready(listener.poll_accept(cx))).await
            {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => break,
            }
        } else {
            tokio::select! {
                biased;
                _ = &mut drained => {
                    draining = true;
                    continue;
                }
                r = listener.accept() => r,
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                stats.cx_total.inc();
                let guards = (
                    GaugeGuard::new(&stats.cx_active),
                    GaugeGuard::new(&stats.server_connections),
                );
                let chains = slot.chains.load_full();
                let stats = stats.clone();
                tokio::spawn(async move {
                    let select = SelectStats {
                        no_match: &stats.no_filter_chain_match,
                        pre_cx_timeout: &stats.pre_cx_timeout,
                        inspector: Some(&stats.tls_inspector),
                    };
                    let Some(chain) = chains.select(&stream, peer, &select).await else {
                        return;
                    };
                    let conn = match &chain.tls {
                        None => Conn::Plain(stream),
                        Some(tls) => match tls
                            .accept(
                                stream,
                                &stats.ssl,
                                &stats.cx_transport_socket_connect_timeout,
                            )
                            .await
                        {
                            Some(c) => Conn::Tls(Box::new(c)),
                            None => return,
                        },
                    };
                    chain.hcm.clone().serve_connection(conn, peer, worker).await;
                    drop(guards);
                });
            }
            Err(_) if draining => break,
            Err(e) => {
                // Out of file descriptors or similar: back off, keep serving
                // the connections we have.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::debug!(address = ?listener.local_addr().ok(), worker, "listener closed (draining)");
}
