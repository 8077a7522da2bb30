//! HTTP/2 (h2c) upstream connections of one host and worker, on the `h2`
//! crate's client directly: requests are multiplexed on the first
//! connection with a free stream slot; a new connection opens when every
//! connection is at the peer's `SETTINGS_MAX_CONCURRENT_STREAMS` (read
//! with `current_max_send_streams()`) or at our own cap.
//!
//! A new connection is used once the peer's first SETTINGS have been
//! applied: the handshake is followed by one PING, and a server sends its
//! SETTINGS before it can answer a PING (RFC 9113 §3.4), so the PONG
//! proves them read. Sending earlier gets streams refused when the peer's
//! limit is small, and an extended CONNECT (RFC 8441) refused because
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL` is not known yet.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::SendStream;
use nuncio_h2flood::FloodGuard;
use nuncio_stats::GaugeGuard;

use crate::error::UpstreamError;
use crate::pool::{HostPool, Protocol};

/// How long a new connection waits for the peer's SETTINGS (its PONG).
const SETTINGS_WAIT: Duration = Duration::from_secs(2);

/// One HTTP/2 connection.
#[derive(Debug)]
pub(crate) struct H2Conn {
    sender: SendRequest<Bytes>,
    active: Arc<AtomicUsize>,
    /// Set when the connection's task ended (closed by either side).
    closed: Arc<AtomicBool>,
}

impl H2Conn {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn has_room(&self, local_max: u32) -> bool {
        let limit = self
            .sender
            .current_max_send_streams()
            .min(local_max as usize);
        !self.is_closed() && self.active.load(Ordering::Relaxed) < limit
    }
}

/// A taken stream slot of a connection; dropping it frees the slot. Keep
/// it for as long as the stream is open.
#[derive(Debug)]
pub struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    fn take(c: &H2Conn) -> Self {
        c.active.fetch_add(1, Ordering::Relaxed);
        StreamSlot(c.active.clone())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An HTTP/2 stream opened to the upstream: the response to wait for, the
/// request body's sender, and the stream's slot in its connection.
#[derive(Debug)]
pub struct H2Stream {
    /// Resolves to the response head and its body.
    pub response: ResponseFuture,
    /// The request body (unused when the request was sent with its end).
    pub body: SendStream<Bytes>,
    /// The slot; dropped when the exchange is over.
    pub slot: StreamSlot,
}

/// The HTTP/2 connections of a host pool.
#[derive(Debug, Default)]
pub(crate) struct H2Conns {
    conns: Mutex<Vec<Arc<H2Conn>>>,
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
    fn h2_pick(&self) -> Option<(Arc<H2Conn>, StreamSlot)> {
        let local_max = self.h2_local_max();
        let mut conns = self.h2.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|c| !c.is_closed());
        let c = conns.iter().find(|c| c.has_room(local_max))?.clone();
        let slot = StreamSlot::take(&c);
        Some((c, slot))
    }

    async fn h2_connect(&self) -> Result<(Arc<H2Conn>, StreamSlot), UpstreamError> {
        let stream = self.connect_tcp(true).await?;
        let s = &self.stats;
        let guards = (
            GaugeGuard::new(&s.cx_active),
            GaugeGuard::new(&s.host_cx_active),
        );
        let mut b = h2::client::Builder::new();
        // Until the peer's SETTINGS say otherwise (they arrive before the
        // PONG awaited below).
        b.initial_max_send_streams(100);
        let mut flood = nuncio_h2flood::FloodLimits::default();
        if let Protocol::Http2 {
            initial_stream_window_size,
            initial_connection_window_size,
            flood: f,
            ..
        } = self.settings.protocol
        {
            b.initial_window_size(initial_stream_window_size)
                .initial_connection_window_size(initial_connection_window_size);
            flood = f;
        }
        // The server is untrusted too: its frames pass Envoy's flood limits.
        let stream = FloodGuard::client(stream, flood, &s.flood, self.addr);
        let (sender, mut conn) = b.handshake::<_, Bytes>(stream).await?;
        let ping = conn.ping_pong();
        let closed = Arc::new(AtomicBool::new(false));
        let ended = closed.clone();
        // The connection's end is counted by its socket (see pool.rs).
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream h2 connection ended with an error");
            }
            ended.store(true, Ordering::Relaxed);
            drop(guards);
        });
        if let Some(mut ping) = ping {
            let pong = ping.ping(h2::Ping::opaque());
            let _ = tokio::time::timeout(SETTINGS_WAIT, pong).await;
        }
        let c = Arc::new(H2Conn {
            sender,
            active: Arc::new(AtomicUsize::new(0)),
            closed,
        });
        let slot = StreamSlot::take(&c);
        self.h2
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c.clone());
        Ok((c, slot))
    }

    /// Number of open HTTP/2 connections.
    pub fn h2_connections(&self) -> usize {
        self.h2
            .conns
            .lock()
            .map(|c| c.iter().filter(|c| !c.is_closed()).count())
            .unwrap_or(0)
    }

    /// Opens a stream for `req` (its URI absolute: scheme, authority,
    /// path) on a connection with room, or on a new one; `end`: the
    /// request has no body. A WebSocket (`h2::ext::Protocol` in the
    /// extensions) needs a peer that allows extended CONNECT. The request
    /// is counted (`upstream_rq_total`) once a connection takes it.
    pub async fn send_h2(
        self: &Arc<Self>,
        req: http::Request<()>,
        end: bool,
    ) -> Result<H2Stream, UpstreamError> {
        let extended_connect = req.extensions().get::<h2::ext::Protocol>().is_some();
        let mut req = Some(req);
        loop {
            let (fresh, (conn, slot)) = match self.h2_pick() {
                Some(c) => (false, c),
                None => {
                    let _connecting = self.h2.connecting.lock().await;
                    match self.h2_pick() {
                        Some(c) => (false, c),
                        None => (true, self.h2_connect().await?),
                    }
                }
            };
            let mut sender = match conn.sender.clone().ready().await {
                Ok(s) => s,
                Err(e) => {
                    // A connection going away takes no new stream: the
                    // request was never sent, so another one may take it.
                    conn.closed.store(true, Ordering::Relaxed);
                    if fresh {
                        return Err(e.into());
                    }
                    continue;
                }
            };
            if extended_connect && !sender.is_extended_connect_protocol_enabled() {
                return Err(UpstreamError::ExtendedConnectRefused);
            }
            let Some(r) = req.take() else {
                return Err(UpstreamError::ExtendedConnectRefused);
            };
            self.count_request();
            let (response, body) = sender.send_request(r, end)?;
            return Ok(H2Stream {
                response,
                body,
                slot,
            });
        }
    }
}
