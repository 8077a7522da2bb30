//! HTTP/2 (h2c) upstream connections of one host and worker: requests are
//! multiplexed on the first connection with a free stream slot; a new
//! connection opens when every connection is at the peer's (or our)
//! stream limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{header, Request, Response, Uri};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use nuncio_h2flood::{FloodGuard, FloodLimits};
use nuncio_stats::GaugeGuard;

use crate::body::{PooledBody, Release, UpstreamBody};
use crate::error::UpstreamError;
use crate::h2settings::{PeerSettings, SettingsWatcher};
use crate::pool::{HostPool, Protocol};

/// Streams assumed allowed until the peer's SETTINGS arrive (RFC 9113
/// recommends at least 100).
const DEFAULT_PEER_MAX_STREAMS: u32 = 100;
/// How long a WebSocket waits for a new connection's SETTINGS.
const SETTINGS_WAIT: Duration = Duration::from_secs(2);

/// One HTTP/2 connection.
#[derive(Debug)]
pub(crate) struct H2Conn {
    sender: http2::SendRequest<UpstreamBody>,
    active: Arc<AtomicUsize>,
    peer: Arc<PeerSettings>,
}

impl H2Conn {
    fn has_room(&self, local_max: u32) -> bool {
        let limit = self.peer.max_streams.load(Ordering::Relaxed).min(local_max) as usize;
        !self.sender.is_closed() && self.active.load(Ordering::Relaxed) < limit
    }
}

/// A taken stream slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct StreamSlot(Arc<AtomicUsize>);

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
        conns.retain(|c| !c.sender.is_closed());
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
        let peer = PeerSettings::new(DEFAULT_PEER_MAX_STREAMS);
        let mut b = http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new());
        let mut flood = FloodLimits::default();
        if let Protocol::Http2 {
            initial_stream_window_size,
            initial_connection_window_size,
            flood: f,
            ..
        } = self.settings.protocol
        {
            b.initial_stream_window_size(initial_stream_window_size)
                .initial_connection_window_size(initial_connection_window_size);
            flood = f;
        }
        // The server is untrusted too: its frames pass Envoy's flood limits.
        let stream = FloodGuard::client(stream, flood, &s.flood, self.addr);
        let io = TokioIo::new(SettingsWatcher::new(stream, peer.clone()));
        let (sender, conn) = b.handshake(io).await?;
        let waiter = peer.clone();
        let settings = waiter.notify.notified();
        // The connection's end is counted by its socket (see pool.rs).
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream h2 connection ended with an error");
            }
            drop(guards);
        });
        // The peer's first SETTINGS (sent right after its preface) says how
        // many streams it takes; sending before it arrives gets streams
        // refused when the limit is small.
        if !peer.received.load(Ordering::Relaxed) {
            let _ = tokio::time::timeout(SETTINGS_WAIT, settings).await;
        }
        let c = Arc::new(H2Conn {
            sender,
            active: Arc::new(AtomicUsize::new(0)),
            peer,
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
            .map(|c| c.iter().filter(|c| !c.sender.is_closed()).count())
            .unwrap_or(0)
    }

    pub(crate) async fn send_h2(
        self: &Arc<Self>,
        req: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, UpstreamError> {
        let mut req = absolute_form(req);
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
            if req.extensions().get::<hyper::ext::Protocol>().is_some() {
                // Extended CONNECT may only be sent once the peer's SETTINGS
                // allowed it (RFC 8441).
                let p = &conn.peer;
                let wait = p.notify.notified();
                if !p.received.load(Ordering::Relaxed) {
                    let _ = tokio::time::timeout(SETTINGS_WAIT, wait).await;
                }
                if !p.connect_protocol.load(Ordering::Relaxed) {
                    return Err(UpstreamError::ExtendedConnectRefused);
                }
            }
            let mut sender = conn.sender.clone();
            if let Err(e) = sender.ready().await {
                if fresh {
                    return Err(e.into());
                }
                continue;
            }
            self.count_request();
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    return Ok(Response::from_parts(
                        parts,
                        PooledBody::new(body, Release::Http2 { _slot: slot }),
                    ));
                }
                Err(mut e) => match e.take_message() {
                    // Never sent (the connection was going away): try another.
                    Some(back) if !fresh => req = back,
                    _ => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
    }
}

/// HTTP/2 needs `:scheme` and `:authority`: build them from the Host header.
fn absolute_form(req: Request<UpstreamBody>) -> Request<UpstreamBody> {
    let (mut parts, body) = req.into_parts();
    if parts.uri.scheme().is_none() {
        let authority = parts
            .headers
            .remove(header::HOST)
            .and_then(|h| h.to_str().ok().map(str::to_string))
            .unwrap_or_else(|| "localhost".into());
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        if let Ok(u) = Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query(pq)
            .build()
        {
            parts.uri = u;
        }
    } else {
        parts.headers.remove(header::HOST);
    }
    parts.version = http::Version::HTTP_2;
    Request::from_parts(parts, body)
}
