//! Waits bounded by the request's own limits: `request_timeout` on an
//! upload, and the client's presence while the upstream works (a client
//! that leaves cancels the upstream request, as in Envoy).

use std::future::Future;
use std::task::Poll;
use std::time::Instant;

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::deadline;
use super::upstream::Fail;
use crate::Hcm;

/// Runs an upload, failing with [`Fail::RequestTimeout`] at `deadline`.
pub(super) async fn until<F: Future>(
    deadline: Option<Instant>,
    upload: F,
) -> Result<F::Output, Fail> {
    match deadline {
        Some(d) => deadline::within(d.saturating_duration_since(Instant::now()), upload)
            .await
            .map_err(|_| Fail::RequestTimeout),
        None => Ok(upload.await),
    }
}

/// Most pipelined bytes read from a client while its request waits for the
/// upstream's answer; past this the client is not watched (backpressure).
const PIPELINE_CAP: usize = 64 * 1024;

/// Runs `work` (waiting for the upstream's response head) while watching
/// the client's socket, as Envoy does: if the client closes first, the
/// result is [`Fail::Client`] and `work` is dropped with its upstream
/// socket, so the upstream sees the request cancelled. Bytes the client
/// sends meanwhile (a pipelined request) are kept in `buf`. Costs no
/// system call while the client is quiet: the socket's readiness was
/// cleared by the short read that ended the request.
pub(super) async fn unless_client_leaves<T>(
    client: &TcpStream,
    buf: &mut BytesMut,
    work: impl Future<Output = Result<T, Fail>>,
) -> Result<T, Fail> {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = work.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        while buf.len() < PIPELINE_CAP {
            match client.poll_read_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(Fail::Client)),
                Poll::Ready(Ok(())) => {
                    buf.reserve(4096);
                    match client.try_read_buf(buf) {
                        Ok(0) => return Poll::Ready(Err(Fail::Client)),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return Poll::Ready(Err(Fail::Client)),
                    }
                }
            }
        }
        Poll::Pending
    })
    .await
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
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn a_client_that_closes_ends_the_wait() {
        let (client, server) = pair().await;
        let mut buf = BytesMut::new();
        drop(client);
        let never = std::future::pending::<Result<(), Fail>>();
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            unless_client_leaves(&server, &mut buf, never),
        )
        .await
        .expect("the close was not noticed");
        assert!(matches!(r, Err(Fail::Client)));
    }

    #[tokio::test]
    async fn pipelined_bytes_are_kept_and_the_work_finishes() {
        let (mut client, server) = pair().await;
        let mut buf = BytesMut::new();
        client.write_all(b"GET /next HTTP/1.1\r\n\r\n").await.unwrap();
        let work = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, Fail>(7)
        };
        let r = unless_client_leaves(&server, &mut buf, work).await;
        assert!(matches!(r, Ok(7)));
        assert_eq!(&buf[..], b"GET /next HTTP/1.1\r\n\r\n");
        drop(client);
    }
}
