//! Waits bounded by the request's own limits: `request_timeout` on an
//! upload, and the client's presence while the upstream works (a client
//! that leaves cancels the upstream request, as in Envoy).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use nuncio_tls::CountedConn as CountedTcp;

use super::deadline;
use super::upstream::Fail;
use crate::Hcm;

/// Runs an upload (pinned by the caller), failing with
/// [`Fail::RequestTimeout`] at `deadline`, if any. The upload is borrowed,
/// not moved: a moved future is stored again in this one's state, and
/// that made every request's future ~1.9 KB larger (and its copy into the
/// box ~370 instructions dearer: `bash bench/profile.sh`).
pub(super) async fn until<F: Future>(
    deadline: Option<Instant>,
    upload: Pin<&mut F>,
) -> Result<F::Output, Fail> {
    match deadline {
        Some(d) => deadline::within(d.saturating_duration_since(Instant::now()), upload)
            .await
            .map_err(|_| Fail::RequestTimeout),
        None => Ok(upload.await),
    }
}

/// Awaits `f`, failing with [`Fail::StreamIdle`] after `idle`
/// (`stream_idle_timeout`), if set: one wait for one body chunk.
pub(super) async fn idle_bounded<F: Future>(
    idle: Option<std::time::Duration>,
    f: F,
) -> Result<F::Output, Fail> {
    match idle {
        Some(t) => deadline::within(t, f).await.map_err(|_| Fail::StreamIdle),
        None => Ok(f.await),
    }
}

/// Most pipelined bytes read from a client while its request waits for the
/// upstream's answer; past this the client is not watched (backpressure).
const PIPELINE_CAP: usize = 64 * 1024;

/// Watches a client while its request waits for the upstream's response
/// head, as Envoy does: [`ClientWatch::poll_left`] is ready once the
/// client has closed, and the caller then drops the upstream socket, so
/// the upstream sees the request cancelled. Bytes the client sends
/// meanwhile (a pipelined request) are kept in its read buffer. Cost: one
/// readiness registration per request and no system call while the client
/// is quiet (the short read that ended the request cleared readiness);
/// `bash bench/profile.sh` measured 15,858 instructions per small GET with
/// it, 15,841 with no watch at all.
pub(super) struct ClientWatch<'a> {
    client: &'a CountedTcp,
    buf: &'a mut BytesMut,
}

impl<'a> ClientWatch<'a> {
    /// Watches `client`, keeping what it sends in `buf`.
    pub(super) fn new(client: &'a CountedTcp, buf: &'a mut BytesMut) -> Self {
        ClientWatch { client, buf }
    }

    /// Ready when the client has gone (EOF or an error).
    pub(super) fn poll_left(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.buf.len() < PIPELINE_CAP {
            match self.client.poll_read_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    self.buf.reserve(4096);
                    match self.client.try_read_buf(self.buf) {
                        Ok(0) => return Poll::Ready(()),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return Poll::Ready(()),
                    }
                }
            }
        }
        Poll::Pending
    }
}

/// Counts the downstream timeouts Envoy counts (`downstream_rq_idle_timeout`,
/// `downstream_rq_timeout`).
pub(super) fn count_timeouts(hcm: &Hcm, fail: &Fail) {
    match fail {
        Fail::StreamIdle => hcm.stats.rq_idle_timeout.inc(),
        Fail::RequestTimeout => hcm.stats.rq_timeout.inc(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuncio_stats::io::{Counted, IoStats};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, CountedTcp) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (
            client,
            Counted::new(
                nuncio_tls::Conn::Plain(server),
                &std::sync::Arc::new(IoStats::default()),
            ),
        )
    }

    /// Polls the watch until the client leaves or `wait` passes.
    async fn left_within(w: &mut ClientWatch<'_>, wait: Duration) -> bool {
        tokio::time::timeout(wait, std::future::poll_fn(|cx| w.poll_left(cx)))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_client_that_closes_is_noticed() {
        let (client, server) = pair().await;
        let mut buf = BytesMut::new();
        drop(client);
        let mut w = ClientWatch::new(&server, &mut buf);
        assert!(left_within(&mut w, Duration::from_secs(2)).await);
        assert!(server.peer_closed(), "the end is counted as the peer's");
    }

    #[tokio::test]
    async fn pipelined_bytes_are_kept_and_a_quiet_client_has_not_left() {
        let (mut client, server) = pair().await;
        let mut buf = BytesMut::new();
        client
            .write_all(b"GET /next HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut w = ClientWatch::new(&server, &mut buf);
        assert!(!left_within(&mut w, Duration::from_millis(300)).await);
        assert_eq!(&buf[..], b"GET /next HTTP/1.1\r\n\r\n");
        drop(client);
    }
}
