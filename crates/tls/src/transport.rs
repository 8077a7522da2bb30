//! A filter chain's downstream transport socket: the TLS handshake on an
//! accepted connection, bounded in time, counted in the listener's
//! `ssl.*` stats, logged once at debug level when it fails.

use std::sync::Arc;
use std::time::Duration;

use nuncio_config::{DownstreamTls, Secret};
use tokio::net::TcpStream;

use crate::conn::{HandshakeError, TlsConn};
use crate::error::TlsError;
use crate::stats::SslStats;

/// nuncio's handshake limit when `transport_socket_connect_timeout` is
/// unset (Envoy has none; a ClientHello that never ends would hold the
/// connection for ever: docs/envoy-differences.md).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS side of a listener's filter chain.
#[derive(Debug)]
pub struct ServerTransport {
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
}

impl ServerTransport {
    /// Builds the chain's TLS from its `DownstreamTlsContext` (every
    /// certificate is read and checked now).
    pub fn new(
        tls: &DownstreamTls,
        secrets: &[Secret],
        connect_timeout: Option<Duration>,
    ) -> Result<Self, TlsError> {
        Ok(ServerTransport {
            config: crate::server::build_server(tls, secrets)?,
            timeout: connect_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
        })
    }

    /// Runs the server handshake on `tcp`. `None`: it failed (a TLS error
    /// counts `ssl.connection_error`; a peer that closed counts nothing, as
    /// in Envoy) or timed out (counted in `timeouts`, the listener's
    /// `downstream_cx_transport_socket_connect_timeout`).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        stats: &SslStats,
        timeouts: &nuncio_stats::Counter,
    ) -> Option<TlsConn> {
        let peer = tcp.peer_addr().ok();
        let mut conn = match TlsConn::server(tcp, Arc::clone(&self.config)) {
            Ok(c) => c,
            Err(e) => {
                stats.connection_error.inc();
                tracing::debug!(error = %e, "TLS connection not created");
                return None;
            }
        };
        let why = match tokio::time::timeout(self.timeout, conn.handshake()).await {
            Ok(Ok(())) => {
                stats.handshake_done(&conn.negotiated());
                return Some(conn);
            }
            Ok(Err(HandshakeError::Tls(e))) => {
                crate::stats::count_failure(stats, &e);
                e.to_string()
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => {
                timeouts.inc();
                format!("handshake not done within {:?}", self.timeout)
            }
        };
        tracing::debug!(?peer, error = %why, "TLS handshake failed");
        None
    }
}
