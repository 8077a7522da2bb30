//! The per-host, per-worker HTTP/1.1 connection pool.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use nuncio_stats::{Counter, Gauge, GaugeGuard};
use tokio::net::TcpStream;

use crate::body::{PooledBody, Release, UpstreamBody};
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
    /// Host-level `cx_active`.
    pub host_cx_active: Gauge,
    /// Host-level `cx_total`.
    pub host_cx_total: Counter,
    /// Host-level `cx_connect_fail`.
    pub host_cx_connect_fail: Counter,
    /// `http2.inbound_*_flood` (upstream HTTP/2 connections).
    pub flood: FloodStats,
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
}

/// An idle connection.
#[derive(Debug)]
pub(crate) struct Idle {
    sender: http1::SendRequest<UpstreamBody>,
    since: Instant,
    uses: u32,
}

/// Connections to one host, owned by one worker.
#[derive(Debug)]
pub struct HostPool {
    pub(crate) addr: SocketAddr,
    idle: Mutex<Vec<Idle>>,
    pub(crate) h2: H2Conns,
    pub(crate) raw: RawIdle,
    pub(crate) settings: Arc<PoolSettings>,
    pub(crate) stats: Arc<ConnStats>,
}

/// At most this many idle connections are kept per host and worker.
const MAX_IDLE: usize = 1024;

impl HostPool {
    /// A pool for `addr`.
    pub fn new(addr: SocketAddr, settings: Arc<PoolSettings>, stats: Arc<ConnStats>) -> Arc<Self> {
        Arc::new(HostPool {
            addr,
            idle: Mutex::new(Vec::new()),
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

    /// Number of idle connections held.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    fn take_idle(&self) -> Option<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.pop() {
            if c.sender.is_closed() || c.since.elapsed() > self.settings.idle_timeout {
                continue;
            }
            return Some(c);
        }
        None
    }

    pub(crate) fn release(&self, mut c: Idle) {
        let max = self.settings.max_requests_per_connection;
        if c.sender.is_closed() || (max > 0 && c.uses >= max) {
            return;
        }
        c.since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(c);
        }
    }

    /// The protocol this pool speaks.
    pub fn protocol(&self) -> &Protocol {
        &self.settings.protocol
    }

    /// Opens a TCP connection with the connect timeout, counting it.
    pub(crate) async fn connect_tcp(&self) -> Result<TcpStream, UpstreamError> {
        let s = &self.stats;
        let stream = match tokio::time::timeout(
            self.settings.connect_timeout,
            TcpStream::connect(self.addr),
        )
        .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                s.cx_connect_fail.inc();
                s.host_cx_connect_fail.inc();
                return Err(UpstreamError::Connect {
                    addr: self.addr,
                    source: e,
                });
            }
            Err(_) => {
                s.cx_connect_fail.inc();
                s.cx_connect_timeout.inc();
                s.host_cx_connect_fail.inc();
                return Err(UpstreamError::ConnectTimeout(self.addr));
            }
        };
        let _ = stream.set_nodelay(true);
        s.cx_total.inc();
        s.host_cx_total.inc();
        Ok(stream)
    }

    async fn connect(&self) -> Result<Idle, UpstreamError> {
        let stream = self.connect_tcp().await?;
        let s = &self.stats;
        s.cx_http1_total.inc();
        let guards = (
            GaugeGuard::new(&s.cx_active),
            GaugeGuard::new(&s.host_cx_active),
        );
        let (sender, conn) = http1::Builder::new()
            .max_headers(1000)
            .handshake(TokioIo::new(stream))
            .await?;
        let destroy = s.cx_destroy.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
            destroy.inc();
            drop(guards);
        });
        Ok(Idle {
            sender,
            since: Instant::now(),
            uses: 0,
        })
    }

    /// Sends `req` on a pooled or new connection. A request that a reused
    /// connection failed to take (it had been closed by the upstream while
    /// idle) is sent once more on a new connection: such a request never
    /// reached the upstream, so this is always safe.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, UpstreamError> {
        if let Protocol::Http2 { .. } = self.settings.protocol {
            return self.send_h2(req).await;
        }
        let mut req = req;
        let mut reused = self.take_idle();
        loop {
            let was_reused = reused.is_some();
            let mut conn = match reused.take() {
                Some(c) => c,
                None => self.connect().await?,
            };
            if let Err(e) = conn.sender.ready().await {
                if was_reused {
                    reused = self.take_idle();
                    continue;
                }
                return Err(e.into());
            }
            conn.uses += 1;
            match conn.sender.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let upgraded = parts.status == http::StatusCode::SWITCHING_PROTOCOLS;
                    let body = if upgraded {
                        PooledBody::new(body, Release::None)
                    } else if http_body::Body::is_end_stream(&body) {
                        self.release(conn);
                        PooledBody::new(body, Release::None)
                    } else {
                        PooledBody::new(body, Release::Http1(self.clone(), conn))
                    };
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if was_reused => {
                        tracing::debug!(addr = %self.addr, "reused upstream connection was closed; retrying on a new one");
                        req = back;
                        reused = self.take_idle();
                    }
                    _ => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn pool(addr: SocketAddr) -> (Arc<HostPool>, Arc<ConnStats>) {
        let stats = Arc::new(ConnStats::default());
        let settings = Arc::new(PoolSettings {
            protocol: Protocol::Http1,
            connect_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(60),
            max_requests_per_connection: 0,
        });
        (HostPool::new(addr, settings, stats.clone()), stats)
    }

    fn get() -> Request<UpstreamBody> {
        Request::builder()
            .uri("/")
            .header("host", "x")
            .body(UpstreamBody::empty())
            .unwrap()
    }

    /// A server that answers every request on a connection with `body`,
    /// closing after `per_conn` responses.
    async fn server(per_conn: usize) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..per_conn {
                        let mut got = Vec::new();
                        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                            let n = s.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn reuses_connections() {
        let addr = server(100).await;
        let (p, stats) = pool(addr);
        for _ in 0..5 {
            let r = p.send(get()).await.unwrap();
            let b = r.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&b[..], b"ok");
        }
        assert_eq!(stats.cx_total.get(), 1);
        assert_eq!(p.idle_count(), 1);
    }

    #[tokio::test]
    async fn retries_when_idle_connection_was_closed() {
        let addr = server(1).await;
        let (p, stats) = pool(addr);
        for _ in 0..3 {
            let r = p.send(get()).await.unwrap();
            r.into_body().collect().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(stats.cx_total.get(), 3);
    }

    #[tokio::test]
    async fn connect_failure_is_counted() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let (p, stats) = pool(addr);
        let e = p.send(get()).await.unwrap_err();
        assert!(e.is_connect_failure());
        assert_eq!(e.reset_reason().to_string(), "remote connection failure");
        assert_eq!(stats.cx_connect_fail.get(), 1);
    }
}
