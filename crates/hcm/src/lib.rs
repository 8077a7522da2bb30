//! The HTTP connection manager (Envoy's `envoy.filters.network.http_connection_manager`)
//! with its router filter. It serves one downstream connection with
//! nuncio's own codecs: HTTP/1.1 (`native`), and HTTP/2 (`native::h2`)
//! for `codec_type: HTTP2` or, on `AUTO`, when the client opens with the
//! h2c preface. Upstreams speak HTTP/1.1 (raw pooled sockets) or HTTP/2
//! (the `h2` crate's client, `native::h2up`).

#![forbid(unsafe_code)]

pub mod access_log;
mod counting;
pub mod drain;
pub mod flags;
mod headers;
mod local_address;
mod local_reply;
mod native;
mod stats;
pub mod via;

use std::net::SocketAddr;
use std::sync::Arc;

use nuncio_cluster::ClusterManager;
use nuncio_config::CodecType;
use nuncio_router::RouteTable;
use nuncio_stats::io::Counted;
use nuncio_stats::{GaugeGuard, Store};

pub use access_log::AccessLogger;
pub use stats::HcmStats;

/// A connection manager could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HcmError {
    /// The route table is invalid.
    #[error(transparent)]
    Router(#[from] nuncio_router::RouterError),
    /// An access log could not be opened.
    #[error("access log: {0}")]
    AccessLog(#[from] std::io::Error),
}

/// One configured connection manager, shared by all its connections.
#[derive(Debug)]
pub struct Hcm {
    /// Its settings.
    pub config: nuncio_config::HttpConnectionManager,
    /// Its routes.
    pub routes: RouteTable,
    /// Its stats.
    pub stats: HcmStats,
    /// Its access logs, if any.
    pub access_log: Option<AccessLogger>,
    /// This process's `Via` pseudonym (loop detection).
    pub via_id: String,
    via_values: via::ViaValues,
    max_header_bytes: usize,
    /// The listener's `per_connection_buffer_limit_bytes`.
    buffer_limit: usize,
    /// The HTTP filters before the router.
    chain: nuncio_filters::FilterChain,
    /// Filters or route header mutations exist: requests go through
    /// `native::filtering`.
    filtering: bool,
    /// The response phase formats request headers: keep them.
    keep_request_headers: bool,
    /// Its drain state.
    pub drain: drain::Drain,
}

impl Hcm {
    /// Builds a connection manager for the listener configured at
    /// `listener_address` (its stats scope, `listener.<address>.`) whose
    /// `per_connection_buffer_limit_bytes` is `buffer_limit`.
    pub fn new(
        config: &nuncio_config::HttpConnectionManager,
        listener_address: &str,
        buffer_limit: u32,
        clusters: &ClusterManager,
        store: &Arc<Store>,
        node: &nuncio_config::NodeInfo,
    ) -> Result<Arc<Self>, HcmError> {
        let routes = RouteTable::new(&config.route_config, config.websocket, clusters)?;
        let mut chain = build_chain(config, clusters, store, node);
        if has_per_filter_config(&config.route_config) {
            chain.keep_response_phase();
        }
        let keep_request_headers =
            chain.needs_request_headers() || response_mutations_read_request(&config.route_config);
        let filtering = !chain.is_empty() || mutates_headers(&config.route_config);
        Ok(Arc::new(Hcm {
            chain,
            filtering,
            keep_request_headers,
            config: config.clone(),
            routes,
            stats: HcmStats::new(
                store,
                &config.stat_prefix,
                &nuncio_stats::listener_scope(store, listener_address),
            ),
            access_log: AccessLogger::open(&config.access_logs)?,
            via_id: via::process_id().to_string(),
            via_values: via::ViaValues::new(via::process_id()),
            max_header_bytes: config.max_request_headers_kb as usize * 1024,
            buffer_limit: buffer_limit as usize,
            drain: drain::Drain::default(),
        }))
    }

    /// Whether requests go through the filter chain or route header
    /// mutations.
    pub fn is_filtering(&self) -> bool {
        self.filtering
    }

    /// Starts draining this connection manager (see [`drain`]); idle
    /// connections get the configured `drain_timeout`.
    pub fn start_drain(&self) {
        if self.drain.start(self.config.drain_timeout) {
            tracing::info!(stat_prefix = %self.config.stat_prefix, "draining");
        }
    }

    /// Closes this manager's listener and drains its connections.
    pub fn close_listener(&self) {
        self.start_drain();
        self.drain.close_listener(self.config.drain_timeout);
    }

    fn h2_header_list_size(&self) -> u32 {
        u32::try_from(self.max_header_bytes + 1024).unwrap_or(u32::MAX)
    }

    /// Serves an h2c connection whose first bytes were already read.
    pub(crate) async fn serve_h2_prefixed(
        self: &Arc<Self>,
        io: native::PrefixedStream,
        peer: SocketAddr,
        worker: usize,
    ) {
        let local = self
            .filtering
            .then(|| io.get_ref().get_ref().local_addr().ok())
            .flatten();
        let secure = matches!(io.get_ref().get_ref(), nuncio_tls::Conn::Tls(_));
        native::h2::serve(self.clone(), io, peer, local, secure, worker).await;
    }

    /// Serves one accepted connection until it closes. `worker` selects the
    /// worker's upstream pools.
    pub async fn serve_connection(
        self: Arc<Self>,
        stream: nuncio_tls::Conn,
        peer: SocketAddr,
        worker: usize,
    ) {
        let _ = stream.tcp().set_nodelay(true);
        // ALPN's choice over TLS; the listener's codec setting otherwise.
        let http2 = match stream.alpn() {
            Some(p) => p == b"h2",
            None => self.config.codec_type == CodecType::Http2,
        };
        self.stats.cx_total.inc();
        let _active = GaugeGuard::new(&self.stats.cx_active);
        let _ssl_active = matches!(stream, nuncio_tls::Conn::Tls(_)).then(|| {
            self.stats.cx_ssl_total.inc();
            GaugeGuard::new(&self.stats.cx_ssl_active)
        });
        // Its bytes, and how and when it ends, are counted by the socket.
        let stream = Counted::new(stream, &self.stats.io);
        // The HTTP/2 path is boxed: a connection's task is as
        // large as the largest future inlined in it, and an HTTP/1.1
        // connection would otherwise carry an HTTP/2 connection's state.
        // Measured (10,000 idle keep-alive connections, bench/run.sh): the
        // h2 path inlined here cost ~7 KB per connection (8.0 KB instead
        // of ~1 KB).
        if http2 {
            self.stats.cx_http2_total.inc();
            let local = self
                .filtering
                .then(|| stream.get_ref().local_addr().ok())
                .flatten();
            let secure = matches!(stream.get_ref(), nuncio_tls::Conn::Tls(_));
            Box::pin(native::h2::serve(
                self.clone(),
                stream,
                peer,
                local,
                secure,
                worker,
            ))
            .await;
        } else {
            native::serve(self.clone(), stream, peer, worker).await;
        }
    }
}

/// The listener's filter chain, built from `http_filters`.
fn build_chain(
    config: &nuncio_config::HttpConnectionManager,
    clusters: &ClusterManager,
    store: &Arc<Store>,
    node: &nuncio_config::NodeInfo,
) -> nuncio_filters::FilterChain {
    let prefix = &config.stat_prefix;
    let http = store.scope(
        &format!("http.{prefix}."),
        "http.",
        &[("envoy_http_conn_manager_prefix", prefix)],
    );
    // The clusters a health check filter watches, resolved now.
    let watched: Vec<(String, Arc<nuncio_cluster::Cluster>)> = clusters
        .clusters()
        .iter()
        .map(|c| (c.name().to_string(), c.clone()))
        .collect();
    let cluster_health: nuncio_filters::health_check::ClusterHealthFn = Arc::new(move |name| {
        let (_, c) = watched.iter().find(|(n, _)| n == name)?;
        let hosts = c.hosts();
        let healthy = hosts.iter().filter(|h| h.healthy()).count() as u64;
        Some(nuncio_filters::health_check::ClusterHealth {
            total: hosts.len() as u64,
            healthy,
            degraded: 0,
        })
    });
    nuncio_filters::registry::build_chain(
        &config.http_filters,
        &nuncio_filters::registry::BuildContext {
            http: &http,
            root: &store.root(),
            cluster_health,
            service_cluster: &node.cluster,
        },
    )
}

/// Every level of a route configuration's header mutations.
fn levels(
    rc: &nuncio_config::RouteConfig,
) -> impl Iterator<Item = &nuncio_config::HeaderMutations> {
    std::iter::once(&rc.headers).chain(
        rc.virtual_hosts
            .iter()
            .flat_map(|v| std::iter::once(&v.headers).chain(v.routes.iter().map(|r| &r.headers))),
    )
}

/// Whether any level of `rc` has `typed_per_filter_config`.
fn has_per_filter_config(rc: &nuncio_config::RouteConfig) -> bool {
    !rc.per_filter.is_empty()
        || rc
            .virtual_hosts
            .iter()
            .any(|v| !v.per_filter.is_empty() || v.routes.iter().any(|r| !r.per_filter.is_empty()))
}

/// Whether any level of `rc` mutates headers.
fn mutates_headers(rc: &nuncio_config::RouteConfig) -> bool {
    levels(rc).any(|h| !h.is_empty())
}

/// Whether a response-side header value formats a request header.
fn response_mutations_read_request(rc: &nuncio_config::RouteConfig) -> bool {
    levels(rc).any(|h| {
        h.response_headers_to_add
            .iter()
            .any(|o| nuncio_filters::header_mutation::reads_request(&o.value))
    })
}
