//! Plain HTTP/1.1 upstream sockets for nuncio's own HTTP/1 path: the
//! downstream connection's task writes the request and reads the response
//! itself, so there is no channel and no second task per request (hyper's
//! client has both). Idle sockets wait in the host's per-worker pool.

use std::sync::Mutex;
use std::time::Instant;

use nuncio_stats::GaugeGuard;
use tokio::net::TcpStream;

use crate::error::UpstreamError;
use crate::pool::HostPool;

/// An upstream socket checked out of a pool.
#[derive(Debug)]
pub struct RawConn {
    /// The socket.
    pub stream: TcpStream,
    /// Requests sent on it so far.
    pub uses: u32,
    /// Whether it came from the pool (a failure before any response byte
    /// may then be the upstream's idle close, safe to retry elsewhere).
    pub reused: bool,
    since: Instant,
    _active: (GaugeGuard, GaugeGuard),
}

/// Idle raw sockets of a host pool.
#[derive(Debug, Default)]
pub(crate) struct RawIdle {
    conns: Mutex<Vec<RawConn>>,
}

/// At most this many idle raw sockets per host and worker.
const MAX_IDLE: usize = 1024;

impl HostPool {
    /// A socket to this host: an idle pooled one, or a new connection.
    pub async fn checkout_raw(&self) -> Result<RawConn, UpstreamError> {
        {
            let mut idle = self.raw.conns.lock().unwrap_or_else(|p| p.into_inner());
            while let Some(mut c) = idle.pop() {
                if c.since.elapsed() > self.settings.idle_timeout {
                    continue;
                }
                c.reused = true;
                return Ok(c);
            }
        }
        let stream = self.connect_tcp().await?;
        self.stats.cx_http1_total.inc();
        Ok(RawConn {
            stream,
            uses: 0,
            reused: false,
            since: Instant::now(),
            _active: (
                GaugeGuard::new(&self.stats.cx_active),
                GaugeGuard::new(&self.stats.host_cx_active),
            ),
        })
    }

    /// Returns a socket whose last response was read completely and which
    /// the upstream did not ask to close.
    pub fn checkin_raw(&self, mut c: RawConn) {
        let max = self.settings.max_requests_per_connection;
        if max > 0 && c.uses >= max {
            self.stats.cx_destroy.inc();
            return;
        }
        c.since = Instant::now();
        let mut idle = self.raw.conns.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(c);
        } else {
            self.stats.cx_destroy.inc();
        }
    }

    /// Counts a socket dropped without being returned.
    pub fn discard_raw(&self, c: RawConn) {
        self.stats.cx_destroy.inc();
        drop(c);
    }
}
