//! The HTTP connection manager (Envoy's `envoy.filters.network.http_connection_manager`)
//! with its router filter. It serves one downstream connection with hyper
//! (HTTP/1.1, or HTTP/2 for `codec_type: AUTO` when the client sends the
//! h2c preface), and runs each request through [`proxy`]'s phases:
//! validate → route → pick a host → forward → relay.

#![forbid(unsafe_code)]

pub mod access_log;
mod body;
mod counting;
pub mod drain;
mod headers;
mod local_address;
mod local_reply;
mod native;
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
use nuncio_stats::io::{Counted, CountedTcp};
use nuncio_stats::{GaugeGuard, Store};
use tokio::net::TcpStream;

pub use access_log::AccessLogger;

/// Drives a hyper connection future through a drain. While draining,
/// HTTP/1 responses carry `Connection: close` (proxy.rs), so a busy
/// connection ends after its next response with no race; after the
/// manager's `drain_timeout` the connection is asked to shut down
/// gracefully (HTTP/1: now if idle, else after the response in flight;
/// HTTP/2: GOAWAY, streams in flight finish).
macro_rules! until_drained {
    ($hcm:expr, $conn:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            _ = async {
                $hcm.drain.started().await;
                tokio::time::sleep($hcm.config.drain_timeout).await;
            } => {
                $hcm.stats.cx_drain_close.inc();
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    }};
}

/// Applies a connection manager's HTTP/2 settings to a hyper or hyper-util
/// HTTP/2 server builder (they share these method names, not a trait).
macro_rules! h2_settings {
    ($b:expr, $hcm:expr) => {{
        let h2 = &$hcm.config.http2;
        $b.max_header_list_size($hcm.h2_header_list_size())
            .max_concurrent_streams(h2.max_concurrent_streams)
            .initial_stream_window_size(h2.initial_stream_window_size)
            .initial_connection_window_size(h2.initial_connection_window_size)
            .timer(TokioTimer::new())
            .enable_connect_protocol();
    }};
}
pub use body::ProxyBody;
pub use stats::HcmStats;

use nuncio_h2flood::FloodGuard;
use sniff::{Sniffer, Verdicts};

/// Which HTTP/1 implementation serves downstream HTTP/1.1 connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum H1Engine {
    /// hyper's server and client.
    Hyper,
    /// nuncio's own path (`native`): used where every route reaches an
    /// HTTP/1.1 cluster, hyper elsewhere.
    #[default]
    Native,
}

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
    /// Serve HTTP/1.1 with the native path.
    native: bool,
    /// Serve HTTP/2 with the native path (`native::h2`).
    native_h2: bool,
    /// Its drain state.
    pub drain: drain::Drain,
}

/// The downstream socket, with or without the HTTP/1 framing tracker.
enum Io {
    Sniffed(TokioIo<Sniffer<FloodGuard<CountedTcp>>>),
    Plain(TokioIo<FloodGuard<CountedTcp>>),
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
    /// Builds a connection manager for the listener configured at
    /// `listener_address` (its stats scope, `listener.<address>.`) whose
    /// `per_connection_buffer_limit_bytes` is `buffer_limit`.
    pub fn new(
        config: &nuncio_config::HttpConnectionManager,
        listener_address: &str,
        buffer_limit: u32,
        clusters: &ClusterManager,
        store: &Arc<Store>,
        engine: H1Engine,
    ) -> Result<Arc<Self>, HcmError> {
        let routes = RouteTable::new(&config.route_config, config.websocket, clusters)?;
        let native_h2 = engine == H1Engine::Native && native::eligible(&routes);
        let native = native_h2 && config.codec_type != CodecType::Http2;
        Ok(Arc::new(Hcm {
            native,
            native_h2,
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

    fn h1_buf_size(&self) -> usize {
        (self.max_header_bytes + 16 * 1024).max(8192)
    }

    fn h2_header_list_size(&self) -> u32 {
        u32::try_from(self.max_header_bytes + 1024).unwrap_or(u32::MAX)
    }

    fn configure_h2<E>(&self, b: &mut auto::Http2Builder<'_, E>) {
        h2_settings!(b, self);
    }

    /// Whether HTTP/1.1 connections use the native path (HTTP/2 ones do
    /// whenever the routes are eligible, even with `codec_type: HTTP2`).
    pub fn is_native(&self) -> bool {
        self.native
    }

    /// Serves an h2c connection whose first bytes were already read.
    pub(crate) async fn serve_h2_prefixed(
        self: &Arc<Self>,
        io: native::PrefixedStream,
        peer: SocketAddr,
        worker: usize,
    ) {
        if self.native_h2 {
            return native::h2::serve(self.clone(), io, peer, worker).await;
        }
        // Boxed: otherwise every native HTTP/2 connection's task would be
        // as large as hyper's HTTP/2 server.
        Box::pin(self.serve_h2_prefixed_hyper(io, peer, worker)).await;
    }

    /// [`Hcm::serve_h2_prefixed`] on hyper's HTTP/2 server.
    async fn serve_h2_prefixed_hyper(
        self: &Arc<Self>,
        io: native::PrefixedStream,
        peer: SocketAddr,
        worker: usize,
    ) {
        let ctx = Arc::new(ConnCtx {
            hcm: self.clone(),
            peer,
            worker,
            verdicts: None,
            counted: AtomicBool::new(true),
        });
        let svc = service_fn(move |req| {
            let c = ctx.clone();
            async move { Ok::<_, Infallible>(proxy::handle(req, c).await) }
        });
        let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2_settings!(b, self);
        let io = FloodGuard::server(io, self.config.http2.flood, &self.stats.codec.flood, peer);
        if let Err(e) = until_drained!(self, b.serve_connection(TokioIo::new(io), svc)) {
            tracing::debug!(%peer, error = %e, "downstream h2 connection ended with an error");
        }
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
        // Its bytes, and how and when it ends, are counted by the socket.
        let stream = Counted::new(stream, &self.stats.io);
        // The HTTP/2 and hyper paths are boxed: a connection's task is as
        // large as the largest future inlined in it, and an HTTP/1.1
        // connection would otherwise carry an HTTP/2 connection's state.
        // Measured (10,000 idle keep-alive connections, bench/run.sh): the
        // h2 path inlined here cost ~7 KB per connection (8.0 KB instead
        // of ~1 KB).
        if self.native {
            native::serve(self.clone(), stream, peer, worker).await;
        } else if self.native_h2 {
            self.stats.cx_http2_total.inc();
            Box::pin(native::h2::serve(self.clone(), stream, peer, worker)).await;
        } else {
            Box::pin(self.clone().serve_hyper(stream, peer, worker)).await;
        }
    }

    async fn serve_hyper(self: Arc<Self>, stream: CountedTcp, peer: SocketAddr, worker: usize) {
        let cfg = &self.config;
        let verdicts = (cfg.codec_type != CodecType::Http2).then(|| Arc::new(Verdicts::default()));
        let result: Result<(), Box<dyn std::error::Error + Send + Sync>>;
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
        let stream = FloodGuard::server(stream, cfg.http2.flood, &self.stats.codec.flood, peer);
        let io = match verdicts {
            Some(v) => Io::Sniffed(TokioIo::new(
                Sniffer::new(
                    stream,
                    nuncio_h1::Limits {
                        max_header_bytes: self.max_header_bytes,
                        max_headers: cfg.max_headers_count as usize,
                    },
                    v,
                )
                .with_head_timeout(cfg.request_headers_timeout, &self.stats.rq_header_timeout),
            )),
            None => Io::Plain(TokioIo::new(stream)),
        };
        let idle_timeout = (!cfg.idle_timeout.is_zero()).then_some(cfg.idle_timeout);
        result = match cfg.codec_type {
            CodecType::Auto => {
                let mut b = auto::Builder::new(TokioExecutor::new());
                b.http1()
                    .max_headers(cfg.max_headers_count as usize)
                    .max_buf_size(self.h1_buf_size())
                    .timer(TokioTimer::new())
                    // hyper's header timer runs from the end of one
                    // exchange (or the accept) to the end of the next
                    // head: that is Envoy's idle_timeout. The Sniffer
                    // bounds the head itself (request_headers_timeout).
                    .header_read_timeout(idle_timeout);
                self.configure_h2(&mut b.http2());
                match io {
                    Io::Sniffed(io) => {
                        until_drained!(self, b.serve_connection_with_upgrades(io, svc))
                    }
                    Io::Plain(io) => {
                        until_drained!(self, b.serve_connection_with_upgrades(io, svc))
                    }
                }
            }
            // hyper-util's auto builder ignores http1_only/http2_only with
            // upgrades, so forced codecs use hyper's own builders.
            CodecType::Http1 => {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.max_headers(cfg.max_headers_count as usize)
                    .max_buf_size(self.h1_buf_size())
                    .timer(TokioTimer::new())
                    // hyper's header timer runs from the end of one
                    // exchange (or the accept) to the end of the next
                    // head: that is Envoy's idle_timeout. The Sniffer
                    // bounds the head itself (request_headers_timeout).
                    .header_read_timeout(idle_timeout);
                match io {
                    Io::Sniffed(io) => {
                        until_drained!(self, b.serve_connection(io, svc).with_upgrades())
                            .map_err(Into::into)
                    }
                    Io::Plain(io) => {
                        until_drained!(self, b.serve_connection(io, svc).with_upgrades())
                            .map_err(Into::into)
                    }
                }
            }
            CodecType::Http2 => {
                let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                h2_settings!(b, self);
                match io {
                    Io::Sniffed(io) => {
                        until_drained!(self, b.serve_connection(io, svc)).map_err(Into::into)
                    }
                    Io::Plain(io) => {
                        until_drained!(self, b.serve_connection(io, svc)).map_err(Into::into)
                    }
                }
            }
        };
        if let Err(e) = result {
            if e.downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_timeout)
            {
                self.stats.cx_idle_timeout.inc();
                return;
            }
            if let Some(h) = e.downcast_ref::<hyper::Error>().filter(|h| h.is_parse()) {
                // hyper answered a request it could not parse (400, or
                // 431 if too large) without the service: count it as the
                // native path and Envoy do.
                let s = &self.stats;
                s.rq_total.inc();
                s.rq_http1_total.inc();
                s.rq_rejected.inc();
                s.rq_codes
                    .record(if h.is_parse_too_large() { 431 } else { 400 });
            }
            tracing::debug!(%peer, error = %e, "downstream connection ended with an error");
        }
    }
}
