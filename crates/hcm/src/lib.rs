//! The HTTP connection manager (Envoy's `envoy.filters.network.http_connection_manager`)
//! with its router filter. It serves one downstream connection with hyper
//! (HTTP/1.1, or HTTP/2 for `codec_type: AUTO` when the client sends the
//! h2c preface), and runs each request through [`proxy`]'s phases:
//! validate → route → pick a host → forward → relay.

#![forbid(unsafe_code)]

pub mod access_log;
mod body;
mod headers;
mod proxy;
pub mod sniff;
mod stats;
mod tunnel;
mod upgrade;
pub mod via;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use nuncio_cluster::ClusterManager;
use nuncio_config::CodecType;
use nuncio_router::RouteTable;
use nuncio_stats::{GaugeGuard, Store};
use tokio::net::TcpStream;

pub use access_log::AccessLogger;
pub use body::ProxyBody;
pub use stats::HcmStats;

use sniff::{Sniffer, Verdicts};

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
    max_header_bytes: usize,
}

/// Per-connection context shared by the connection's requests.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    hcm: Arc<Hcm>,
    peer: SocketAddr,
    worker: usize,
    verdicts: Option<Arc<Verdicts>>,
    counted: AtomicBool,
}

impl Hcm {
    /// Builds a connection manager.
    pub fn new(
        config: &nuncio_config::HttpConnectionManager,
        clusters: &ClusterManager,
        store: &Arc<Store>,
    ) -> Result<Arc<Self>, HcmError> {
        let routes = RouteTable::new(&config.route_config, config.websocket, clusters)?;
        Ok(Arc::new(Hcm {
            config: config.clone(),
            routes,
            stats: HcmStats::new(store, &config.stat_prefix),
            access_log: AccessLogger::open(&config.access_logs)?,
            via_id: via::process_id().to_string(),
            max_header_bytes: config.max_request_headers_kb as usize * 1024,
        }))
    }

    /// Serves one accepted connection until it closes. `worker` selects the
    /// worker's upstream pools.
    pub async fn serve_connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        worker: usize,
    ) {
        let _ = stream.set_nodelay(true);
        self.stats.cx_total.inc();
        let _active = GaugeGuard::new(&self.stats.cx_active);
        let cfg = &self.config;
        let verdicts = (cfg.codec_type != CodecType::Http2).then(|| Arc::new(Verdicts::default()));
        let ctx = Arc::new(ConnCtx {
            hcm: self.clone(),
            peer,
            worker,
            verdicts: verdicts.clone(),
            counted: AtomicBool::new(false),
        });
        let svc = service_fn(move |req| {
            let c = ctx.clone();
            async move { Ok::<_, Infallible>(proxy::handle(req, c).await) }
        });
        let mut b = auto::Builder::new(TokioExecutor::new());
        b.http1()
            .max_headers(cfg.max_headers_count as usize)
            .max_buf_size((self.max_header_bytes + 16 * 1024).max(8192))
            .timer(TokioTimer::new())
            .header_read_timeout(cfg.request_headers_timeout);
        b.http2()
            .max_header_list_size(u32::try_from(self.max_header_bytes + 1024).unwrap_or(u32::MAX))
            .max_concurrent_streams(cfg.http2.max_concurrent_streams)
            .initial_stream_window_size(cfg.http2.initial_stream_window_size)
            .initial_connection_window_size(cfg.http2.initial_connection_window_size)
            .timer(TokioTimer::new())
            .enable_connect_protocol();
        let b = match cfg.codec_type {
            CodecType::Auto => b,
            CodecType::Http1 => b.http1_only(),
            CodecType::Http2 => b.http2_only(),
        };
        let result = match verdicts {
            Some(v) => {
                let io = TokioIo::new(Sniffer::new(stream, self.max_header_bytes, v));
                b.serve_connection_with_upgrades(io, svc).await
            }
            None => {
                b.serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "downstream connection ended with an error");
        }
        self.stats.cx_destroy.inc();
    }
}
