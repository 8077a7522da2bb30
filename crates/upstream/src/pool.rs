//! The per-host, per-worker HTTP/1.1 connection pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nuncio_stats::io::{Counted, IoStats};
use nuncio_stats::{Counter, Gauge, GaugeGuard, Histogram, Http2Stats};
use nuncio_tls::{Conn, CountedConn as CountedTcp};
use tokio::net::TcpStream;

use crate::error::UpstreamError;
use crate::h2::H2Conns;
use crate::raw::RawIdle;
use nuncio_h2flood::{FloodLimits, FloodStats};

/// Connection stats of one cluster (Envoy's `cluster.<name>.upstream_cx_*`)
/// and of one host.
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    /// `upstream_cx_total`.
    pub cx_total: Counter,
    /// `upstream_cx_active`.
    pub cx_active: Gauge,
    /// `upstream_cx_http1_total`.
    pub cx_http1_total: Counter,
    /// `upstream_cx_http2_total`.
    pub cx_http2_total: Counter,
    /// `upstream_cx_connect_fail`.
    pub cx_connect_fail: Counter,
    /// `upstream_cx_connect_timeout`.
    pub cx_connect_timeout: Counter,
    /// `upstream_cx_destroy`.
    pub cx_destroy: Counter,
    /// Bytes and closes of the upstream sockets: `upstream_cx_rx_bytes_total`,
    /// `upstream_cx_tx_bytes_total`, `upstream_cx_destroy`,
    /// `upstream_cx_destroy_local` / `_remote`, `upstream_cx_length_ms`.
    pub io: Arc<IoStats>,
    /// `upstream_cx_destroy_with_active_rq`.
    pub cx_destroy_with_active_rq: Counter,
    /// `upstream_cx_destroy_local_with_active_rq`.
    pub cx_destroy_local_with_active_rq: Counter,
    /// `upstream_cx_destroy_remote_with_active_rq`.
    pub cx_destroy_remote_with_active_rq: Counter,
    /// `upstream_cx_protocol_error`.
    pub cx_protocol_error: Counter,
    /// `upstream_cx_idle_timeout`.
    pub cx_idle_timeout: Counter,
    /// `upstream_cx_connect_ms`.
    pub cx_connect_ms: Histogram,
    /// `upstream_rq_per_cx`: requests a connection carried, at its close.
    pub rq_per_cx: Histogram,
    /// `upstream_rq_total`: requests given a connection (Envoy counts a
    /// request here once a connection takes it, so a failed connect is
    /// not one).
    pub rq_total: Counter,
    /// `upstream_rq_pending_total`: requests that waited for a new connection.
    pub rq_pending_total: Counter,
    /// `upstream_rq_pending_active`.
    pub rq_pending_active: Gauge,
    /// `upstream_rq_pending_failure_eject`: requests whose connection failed.
    pub rq_pending_failure_eject: Counter,
    /// `upstream_rq_cancelled`: requests given up while waiting for a
    /// connection.
    pub rq_cancelled: Counter,
    /// `http2.*` of the upstream HTTP/2 connections.
    pub http2: Http2Stats,
    /// Host-level `rq_total`.
    pub host_rq_total: Counter,
    /// Host-level `cx_active`.
    pub host_cx_active: Gauge,
    /// Host-level `cx_total`.
    pub host_cx_total: Counter,
    /// Host-level `cx_connect_fail`.
    pub host_cx_connect_fail: Counter,
    /// `http2.inbound_*_flood` (upstream HTTP/2 connections).
    pub flood: FloodStats,
    /// `ssl.*` of the cluster's TLS connections.
    pub ssl: Option<Arc<nuncio_tls::SslStats>>,
}

/// The protocol a pool speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1, one request at a time per connection.
    Http1,
    /// HTTP/2 with prior knowledge (h2c), multiplexed.
    Http2 {
        /// Our cap on streams per connection (the peer's SETTINGS may lower it).
        max_concurrent_streams: u32,
        /// Initial stream window.
        initial_stream_window_size: u32,
        /// Initial connection window.
        initial_connection_window_size: u32,
        /// Envoy's inbound flood limits, applied to the server's frames.
        flood: FloodLimits,
    },
}

/// How a pool connects and reuses connections.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// The protocol.
    pub protocol: Protocol,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// An idle connection older than this is closed instead of reused.
    pub idle_timeout: Duration,
    /// Requests per connection before it is closed (0 = unlimited).
    pub max_requests_per_connection: u32,
    /// The cluster's `UpstreamTlsContext`, built; `None`: plain TCP.
    pub tls: Option<Arc<nuncio_tls::client::ClientTls>>,
}

/// Connections to one host, owned by one worker.
#[derive(Debug)]
pub struct HostPool {
    pub(crate) addr: SocketAddr,
    pub(crate) h2: H2Conns,
    pub(crate) raw: RawIdle,
    pub(crate) settings: Arc<PoolSettings>,
    pub(crate) stats: Arc<ConnStats>,
}

/// A request waiting for a new connection (`upstream_rq_pending_active`);
/// dropped before the connection is made, it was cancelled.
struct Pending<'a> {
    _active: GaugeGuard,
    cancelled: Option<&'a Counter>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.cancelled {
            c.inc();
        }
    }
}

impl HostPool {
    /// A pool for `addr`.
    pub fn new(addr: SocketAddr, settings: Arc<PoolSettings>, stats: Arc<ConnStats>) -> Arc<Self> {
        Arc::new(HostPool {
            addr,
            h2: H2Conns::default(),
            raw: RawIdle::default(),
            settings,
            stats,
        })
    }

    /// The address this pool connects to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The protocol this pool speaks.
    pub fn protocol(&self) -> &Protocol {
        &self.settings.protocol
    }

    /// Counts a request given a connection (`upstream_rq_total`).
    pub(crate) fn count_request(&self) {
        self.stats.rq_total.inc();
        self.stats.host_rq_total.inc();
    }

    /// TCP, then the TLS handshake if the cluster has TLS.
    async fn connect_transport(&self) -> Result<Conn, UpstreamError> {
        let t = TcpStream::connect(self.addr)
            .await
            .map_err(|e| UpstreamError::Connect {
                addr: self.addr,
                source: e,
            })?;
        let _ = t.set_nodelay(true);
        let Some(tls) = &self.settings.tls else {
            return Ok(Conn::Plain(t));
        };
        // Without `sni` no SNI is sent (Envoy's default): the name is the
        // endpoint's address, which rustls never sends as SNI.
        let name = tls
            .sni
            .clone()
            .unwrap_or_else(|| rustls::pki_types::ServerName::IpAddress(self.addr.ip().into()));
        let fail = |reason: String| UpstreamError::Tls {
            addr: self.addr,
            reason,
        };
        let mut conn = nuncio_tls::TlsConn::client(t, Arc::clone(&tls.config), name)
            .map_err(|e| fail(e.to_string()))?;
        let ssl = self.stats.ssl.as_deref();
        match conn.handshake().await {
            Ok(()) => {
                if let Some(ssl) = ssl {
                    ssl.handshake_done(&conn.negotiated());
                }
                Ok(Conn::Tls(Box::new(conn)))
            }
            Err(e) => {
                if let (Some(ssl), nuncio_tls::HandshakeError::Tls(te)) = (ssl, &e) {
                    nuncio_tls::stats::count_failure(ssl, te);
                }
                tracing::debug!(upstream = %self.addr, error = %e, "upstream TLS handshake failed");
                Err(fail(e.to_string()))
            }
        }
    }

    /// Opens a TCP connection with the connect timeout for a request that
    /// waits for it, counting both as Envoy does: the connection in
    /// `upstream_cx_total` and `upstream_cx_http{1,2}_total` even if it
    /// fails (then also `upstream_cx_connect_fail`, `upstream_cx_destroy`,
    /// `_remote` for a refusal, `_local` for a timeout), the request in
    /// `upstream_rq_pending_*` (`upstream_rq_cancelled` if it is given up
    /// while connecting).
    pub(crate) async fn connect_tcp(&self, http2: bool) -> Result<CountedTcp, UpstreamError> {
        let s = &self.stats;
        s.cx_total.inc();
        s.host_cx_total.inc();
        if http2 {
            s.cx_http2_total.inc();
        } else {
            s.cx_http1_total.inc();
        }
        s.rq_pending_total.inc();
        let mut pending = Pending {
            _active: GaugeGuard::new(&s.rq_pending_active),
            cancelled: Some(&s.rq_cancelled),
        };
        let t0 = Instant::now();
        // Envoy's connect timer ends when the transport is connected: for
        // TLS, after the handshake.
        let r = tokio::time::timeout(self.settings.connect_timeout, self.connect_transport()).await;
        pending.cancelled = None;
        let ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (err, remote) = match r {
            Ok(Ok(conn)) => {
                s.cx_connect_ms.record_value(ms);
                return Ok(Counted::new(conn, &s.io));
            }
            Ok(Err(e)) => (e, true),
            Err(_) => {
                s.cx_connect_timeout.inc();
                (UpstreamError::ConnectTimeout(self.addr), false)
            }
        };
        s.cx_connect_fail.inc();
        s.host_cx_connect_fail.inc();
        s.rq_pending_failure_eject.inc();
        s.io.closed(remote, ms);
        Err(err)
    }
}

/// An HTTP/1.1 pool to `addr` with counted stats, for this crate's tests.
#[cfg(test)]
pub(crate) fn test_pool(addr: SocketAddr) -> (Arc<HostPool>, Arc<ConnStats>) {
    let stats = Arc::new(ConnStats {
        io: Arc::new(IoStats {
            destroy: vec![nuncio_stats::Counter::default()],
            ..IoStats::default()
        }),
        ..ConnStats::default()
    });
    let settings = Arc::new(PoolSettings {
        protocol: Protocol::Http1,
        connect_timeout: std::time::Duration::from_millis(500),
        idle_timeout: std::time::Duration::from_secs(60),
        max_requests_per_connection: 0,
        tls: None,
    });
    (HostPool::new(addr, settings, stats.clone()), stats)
}
