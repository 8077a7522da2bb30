//! Plain HTTP/1.1 upstream sockets for nuncio's own HTTP/1 path: the
//! downstream connection's task writes the request and reads the response
//! itself, so there is no channel and no second task per request (hyper's
//! client has both). Idle sockets wait in the host's per-worker pool.
//!
//! An idle socket is watched, so that an upstream closing it is counted
//! at once (`upstream_cx_destroy_remote`, `upstream_cx_active` back down),
//! as Envoy's event loop does: each host pool has one watcher task, whose
//! waker every socket checked in is registered with (one readiness
//! registration, no wake-up, no system call); a close wakes the watcher,
//! which drops the closed sockets.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use nuncio_stats::{GaugeGuard, Histogram};
use nuncio_tls::CountedConn as CountedTcp;

use crate::error::UpstreamError;
use crate::pool::HostPool;

/// An upstream socket checked out of a pool.
#[derive(Debug)]
pub struct RawConn {
    /// The socket (its bytes and end are counted).
    pub stream: CountedTcp,
    /// Requests sent on it so far.
    pub uses: u32,
    /// Whether it came from the pool (a failure before any response byte
    /// may then be the upstream's idle close, safe to retry elsewhere).
    pub reused: bool,
    since: Instant,
    per_cx: Histogram,
    _active: (GaugeGuard, GaugeGuard),
}

impl Drop for RawConn {
    fn drop(&mut self) {
        self.per_cx.record_value(u64::from(self.uses));
    }
}

/// Idle raw sockets of a host pool.
#[derive(Debug, Default)]
pub(crate) struct RawIdle {
    inner: Mutex<IdleSet>,
}

#[derive(Debug, Default)]
struct IdleSet {
    conns: Vec<RawConn>,
    /// The watcher task's waker, once it runs.
    watcher: Option<Waker>,
    /// Whether the watcher task was started.
    started: bool,
}

/// At most this many idle raw sockets per host and worker.
const MAX_IDLE: usize = 1024;

/// Whether an idle socket is still usable: `false` once its peer closed
/// it or sent something unasked (counted as a protocol error). Registers
/// `cx`'s waker for the socket's next event.
fn still_idle(c: &RawConn, cx: &mut Context<'_>, protocol_error: &nuncio_stats::Counter) -> bool {
    loop {
        match c.stream.poll_read_ready(cx) {
            Poll::Pending => return true,
            Poll::Ready(Err(_)) => {
                c.stream.set_peer_closed();
                return false;
            }
            Poll::Ready(Ok(())) => match c.stream.try_read(&mut [0u8; 1]) {
                // Spurious readiness, now cleared: register again.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                // End of stream or an error: the peer closed it (counted
                // by the socket).
                Ok(0) | Err(_) => return false,
                Ok(_) => {
                    protocol_error.inc();
                    return false;
                }
            },
        }
    }
}

impl HostPool {
    /// A socket to this host: an idle pooled one, or a new connection.
    /// Either way the request is counted (`upstream_rq_total`).
    pub async fn checkout_raw(&self) -> Result<RawConn, UpstreamError> {
        let stale = {
            let mut idle = self.raw.inner.lock().unwrap_or_else(|p| p.into_inner());
            let mut stale = Vec::new();
            while let Some(mut c) = idle.conns.pop() {
                if c.since.elapsed() > self.settings.idle_timeout {
                    self.stats.cx_idle_timeout.inc();
                    stale.push(c);
                    continue;
                }
                c.reused = true;
                drop(idle);
                self.count_request();
                return Ok(c);
            }
            stale
        };
        drop(stale);
        let stream = self.connect_tcp(false).await?;
        self.count_request();
        Ok(RawConn {
            stream,
            uses: 0,
            reused: false,
            since: Instant::now(),
            per_cx: self.stats.rq_per_cx.clone(),
            _active: (
                GaugeGuard::new(&self.stats.cx_active),
                GaugeGuard::new(&self.stats.host_cx_active),
            ),
        })
    }

    /// Returns a socket whose last response was read completely and which
    /// the upstream did not ask to close.
    pub fn checkin_raw(self: &Arc<Self>, mut c: RawConn) {
        let max = self.settings.max_requests_per_connection;
        if max > 0 && c.uses >= max {
            return;
        }
        c.since = Instant::now();
        let mut idle = self.raw.inner.lock().unwrap_or_else(|p| p.into_inner());
        if idle.conns.len() >= MAX_IDLE {
            drop(idle);
            return;
        }
        match &idle.watcher {
            Some(w) => {
                let mut cx = Context::from_waker(w);
                if !still_idle(&c, &mut cx, &self.stats.cx_protocol_error) {
                    drop(idle);
                    return;
                }
            }
            None if !idle.started => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    idle.started = true;
                    rt.spawn(watch_idle(Arc::downgrade(self)));
                }
            }
            None => {}
        }
        idle.conns.push(c);
    }

    /// Drops a socket that is not reused (closed by us, or already by the
    /// upstream: its socket knows which).
    pub fn discard_raw(&self, c: RawConn) {
        drop(c);
    }

    /// Drops a socket whose request failed while in flight
    /// (`upstream_cx_destroy_with_active_rq` and its local or remote
    /// variant); `protocol_error`: the upstream broke HTTP/1.1 (a
    /// malformed or cut-short response).
    pub fn discard_raw_failed(&self, c: RawConn, protocol_error: bool) {
        let s = &self.stats;
        s.cx_destroy_with_active_rq.inc();
        if c.stream.peer_closed() {
            s.cx_destroy_remote_with_active_rq.inc();
        } else {
            s.cx_destroy_local_with_active_rq.inc();
        }
        if protocol_error {
            s.cx_protocol_error.inc();
        }
        drop(c);
    }

    /// Number of idle raw sockets held.
    pub fn idle_raw_count(&self) -> usize {
        self.raw.inner.lock().map(|i| i.conns.len()).unwrap_or(0)
    }
}

/// The watcher of a pool's idle sockets: woken when one of them becomes
/// readable (its peer closed it), it drops every socket that is no longer
/// idle. Ends when the pool is gone.
async fn watch_idle(pool: Weak<HostPool>) {
    poll_fn(|cx| {
        let Some(pool) = pool.upgrade() else {
            return Poll::Ready(());
        };
        let gone = {
            let mut idle = pool.raw.inner.lock().unwrap_or_else(|p| p.into_inner());
            if !idle
                .watcher
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                idle.watcher = Some(cx.waker().clone());
            }
            let mut gone = Vec::new();
            let mut i = 0;
            while i < idle.conns.len() {
                if still_idle(&idle.conns[i], cx, &pool.stats.cx_protocol_error) {
                    i += 1;
                } else {
                    gone.push(idle.conns.swap_remove(i));
                }
            }
            gone
        };
        // Counted (destroy, remote or local, length) as they drop.
        drop(gone);
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::ConnStats;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn pool(addr: std::net::SocketAddr) -> (Arc<HostPool>, Arc<ConnStats>) {
        crate::pool::test_pool(addr)
    }

    /// An upstream closing an idle pooled socket is counted at once, with
    /// no traffic: `upstream_cx_active` back to 0, `destroy_remote` + 1.
    #[tokio::test]
    async fn idle_close_by_the_upstream_is_counted_promptly() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (p, stats) = pool(addr);
        let c = p.checkout_raw().await.unwrap();
        let (mut server, _) = l.accept().await.unwrap();
        assert_eq!(stats.cx_active.get(), 1);
        assert_eq!(stats.rq_total.get(), 1);
        p.checkin_raw(c);
        // Let the watcher start and register.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let c = p.checkout_raw().await.unwrap();
        assert!(c.reused);
        p.checkin_raw(c);
        assert_eq!(p.idle_raw_count(), 1);
        let mut b = [0u8; 1];
        server.shutdown().await.unwrap();
        let _ = server.read(&mut b).await;
        drop(server);
        for _ in 0..100 {
            if stats.cx_active.get() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(stats.cx_active.get(), 0);
        assert_eq!(p.idle_raw_count(), 0);
        assert_eq!(stats.io.destroy_remote.get(), 1);
        assert_eq!(stats.io.destroy_local.get(), 0);
        assert_eq!(stats.rq_total.get(), 2);
        assert_eq!(stats.rq_pending_total.get(), 1);
        assert_eq!(stats.rq_per_cx.count(), 1);
    }

    #[tokio::test]
    async fn connect_failure_is_counted() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let (p, stats) = pool(addr);
        let e = p.checkout_raw().await.unwrap_err();
        assert!(e.is_connect_failure());
        assert_eq!(e.reset_reason().to_string(), "remote connection failure");
        assert_eq!(stats.cx_connect_fail.get(), 1);
        // Envoy's counts: the connection is one, the request is not.
        assert_eq!(stats.cx_total.get(), 1);
        assert_eq!(stats.cx_http1_total.get(), 1);
        assert_eq!(stats.rq_total.get(), 0);
        assert_eq!(stats.rq_pending_total.get(), 1);
        assert_eq!(stats.rq_pending_failure_eject.get(), 1);
        assert_eq!(stats.rq_pending_active.get(), 0);
        assert_eq!(stats.io.destroy_remote.get(), 1);
    }

    #[tokio::test]
    async fn a_failed_request_counts_its_connection_with_active_rq() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (p, stats) = pool(l.local_addr().unwrap());
        let mut c = p.checkout_raw().await.unwrap();
        let (mut server, _) = l.accept().await.unwrap();
        c.stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut b = [0u8; 64];
        let _ = server.read(&mut b).await;
        drop(server);
        let mut r = [0u8; 8];
        assert_eq!(c.stream.read(&mut r).await.unwrap(), 0);
        p.discard_raw_failed(c, false);
        assert_eq!(stats.cx_destroy_with_active_rq.get(), 1);
        assert_eq!(stats.cx_destroy_remote_with_active_rq.get(), 1);
        assert_eq!(stats.io.destroy_remote.get(), 1);
        assert!(stats.io.tx.get() >= 18);
    }
}
