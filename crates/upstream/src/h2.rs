//! HTTP/2 (h2c) upstream connections of one host and worker, on
//! nuncio's own codec (`nuncio_h2::client`): requests are multiplexed on
//! the first connection with a free stream slot; a new connection opens
//! when every connection is at the peer's `SETTINGS_MAX_CONCURRENT_STREAMS`
//! or at our own cap (`max_concurrent_streams`).
//!
//! A new connection takes its first stream once the peer's SETTINGS have
//! been applied (or after [`SETTINGS_WAIT`]): sending earlier gets
//! streams refused when the peer's limit is small, and an extended
//! CONNECT (RFC 8441) refused because `SETTINGS_ENABLE_CONNECT_PROTOCOL`
//! is not known yet.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nuncio_h2::client::{
    self, ClientConfig, OpenError, RequestOptions, ResponseFuture, SendRequest,
};
use nuncio_h2::{SendStream, StreamError};
use nuncio_stats::GaugeGuard;

use crate::error::{ResetReason, UpstreamError};
use crate::pool::{HostPool, Protocol};

/// How long a new connection waits for the peer's SETTINGS.
const SETTINGS_WAIT: Duration = Duration::from_secs(2);

/// An HTTP/2 stream opened to the upstream: the response to wait for and
/// the request body's sender.
#[derive(Debug)]
pub struct H2Stream {
    /// Resolves to the response head and its body.
    pub response: ResponseFuture,
    /// The request body (already ended when the request had none).
    pub body: SendStream,
}

/// The HTTP/2 connections of a host pool.
#[derive(Debug, Default)]
pub(crate) struct H2Conns {
    conns: Mutex<Vec<SendRequest>>,
    /// Held while a connection is being made, so a burst of requests opens
    /// one connection, not one each.
    connecting: tokio::sync::Mutex<()>,
}

impl HostPool {
    fn h2_local_max(&self) -> u32 {
        match self.settings.protocol {
            Protocol::Http2 {
                max_concurrent_streams,
                ..
            } => max_concurrent_streams.max(1),
            Protocol::Http1 => 1,
        }
    }

    /// A connection with a free slot, if any (closed ones are dropped).
    fn h2_pick(&self) -> Option<SendRequest> {
        let local_max = self.h2_local_max();
        let mut conns = self.h2.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|c| !c.is_closed());
        conns.iter().find(|c| c.has_room(local_max)).cloned()
    }

    async fn h2_connect(&self) -> Result<SendRequest, UpstreamError> {
        let stream = self.connect_tcp(true).await?;
        let s = &self.stats;
        let guards = (
            GaugeGuard::new(&s.cx_active),
            GaugeGuard::new(&s.host_cx_active),
        );
        let mut cfg = ClientConfig::default();
        let mut flood = nuncio_h2flood::FloodLimits::default();
        if let Protocol::Http2 {
            initial_stream_window_size,
            initial_connection_window_size,
            flood: f,
            ..
        } = self.settings.protocol
        {
            cfg.initial_window_size = initial_stream_window_size;
            cfg.initial_connection_window_size = initial_connection_window_size;
            flood = f;
        }
        // The server is untrusted too: its frames pass Envoy's flood limits.
        let stream = nuncio_h2flood::FloodGuard::client(stream, flood, &s.flood, self.addr);
        let (sender, conn) = client::handshake(stream, cfg);
        // The connection's end is counted by its socket (see pool.rs).
        tokio::spawn(async move {
            if let Err(e) = conn.run().await {
                tracing::debug!(error = %e, "upstream h2 connection ended with an error");
            }
            drop(guards);
        });
        if let Ok(Err(e)) = tokio::time::timeout(SETTINGS_WAIT, sender.ready()).await {
            return Err(UpstreamError::H2Open(e));
        }
        self.h2
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sender.clone());
        Ok(sender)
    }

    /// Number of open HTTP/2 connections.
    pub fn h2_connections(&self) -> usize {
        self.h2
            .conns
            .lock()
            .map(|c| c.iter().filter(|c| !c.is_closed()).count())
            .unwrap_or(0)
    }

    /// Opens a stream with `block` (the request head, HPACK-encoded) on a
    /// connection with room, or on a new one. The request is counted
    /// (`upstream_rq_total`) once a connection takes it.
    pub async fn send_h2(
        self: &Arc<Self>,
        block: &[u8],
        opts: RequestOptions,
    ) -> Result<H2Stream, UpstreamError> {
        loop {
            let (fresh, conn) = match self.h2_pick() {
                Some(c) => (false, c),
                None => {
                    let _connecting = self.h2.connecting.lock().await;
                    match self.h2_pick() {
                        Some(c) => (false, c),
                        None => (true, self.h2_connect().await?),
                    }
                }
            };
            match conn.send_request(block, opts) {
                Ok((response, body)) => {
                    self.count_request();
                    return Ok(H2Stream { response, body });
                }
                // A connection going away or full takes no new stream:
                // the request was never sent, so another one may take it.
                Err(OpenError::Gone | OpenError::Full) if !fresh => continue,
                Err(e) => return Err(UpstreamError::H2Open(e)),
            }
        }
    }
}

/// The reason behind an HTTP/2 stream error: a RST_STREAM from the peer
/// is a remote reset (refused, if it said REFUSED_STREAM); a response
/// that broke the protocol is a protocol error; anything else on the
/// connection (GOAWAY, EOF, a socket error) is a connection termination.
pub fn h2_reset_reason(e: &StreamError) -> ResetReason {
    match e {
        StreamError::Reset {
            reason,
            by_peer: true,
        } if *reason == nuncio_h2::Reason::REFUSED_STREAM => ResetReason::RemoteRefusedStreamReset,
        StreamError::Reset { by_peer: true, .. } => ResetReason::RemoteReset,
        StreamError::Reset { by_peer: false, .. } | StreamError::Protocol(_) => {
            ResetReason::ProtocolError
        }
        StreamError::Closed => ResetReason::ConnectionTermination,
    }
}
