//! An HTTP/2 stream seen as a byte stream, so the native path's body
//! relay (`relay.rs`) and WebSocket tunnel work unchanged on HTTP/2:
//! [`H2Recv`] reads a request body's DATA frames, returning their flow
//! control window as the bytes are taken; [`H2Send`] writes DATA frames no
//! larger than the window the peer has granted, so a slow reader pushes
//! back instead of growing a buffer.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use std::time::Duration;

use bytes::{Buf, Bytes};
use nuncio_h2::{Block, RecvStream, SendStream, StreamError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::upstream::Fail;
use super::watch::idle_bounded;

fn h2_io(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, e),
        StreamError::Reset { .. } | StreamError::Protocol(_) => {
            io::Error::new(io::ErrorKind::ConnectionReset, e)
        }
    }
}

/// The receiving half of a stream as an [`AsyncRead`]; end of stream is EOF.
pub(crate) struct H2Recv {
    rx: RecvStream,
    pending: Bytes,
    /// Payload bytes read so far.
    pub(crate) total: u64,
}

impl H2Recv {
    /// Wraps a stream's receiving half.
    pub(crate) fn new(rx: RecvStream) -> Self {
        H2Recv {
            rx,
            pending: Bytes::new(),
            total: 0,
        }
    }

    /// The next DATA frame's payload (`None` at end of stream), its window
    /// returned at once.
    pub(crate) async fn data(&mut self) -> Option<io::Result<Bytes>> {
        if !self.pending.is_empty() {
            self.total += self.pending.len() as u64;
            return Some(Ok(std::mem::take(&mut self.pending)));
        }
        let r = self.rx.data().await?;
        Some(r.map_err(h2_io).inspect(|b| self.total += b.len() as u64))
    }

    /// The next DATA payload if one is already here (never waits).
    pub(crate) fn try_now(&mut self) -> Option<Bytes> {
        let b = if self.pending.is_empty() {
            self.rx.try_data()?
        } else {
            std::mem::take(&mut self.pending)
        };
        self.total += b.len() as u64;
        Some(b)
    }

    /// Puts `data` back in front of what is still to be read (a body
    /// read whole by the buffer filter).
    pub(crate) fn put_back(&mut self, data: Bytes) {
        self.total = self.total.saturating_sub(data.len() as u64);
        self.pending = data;
    }

    /// The trailers, after the last DATA frame.
    pub(crate) async fn trailers(&mut self) -> io::Result<Option<Block>> {
        self.rx.trailers().await.map_err(h2_io)
    }
}

impl AsyncRead for H2Recv {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.pending.is_empty() {
            match ready!(this.rx.poll_data(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(h2_io(e))),
                Some(Ok(b)) => {
                    // The codec returned the window as the frame was
                    // taken: at most one frame waits here.
                    this.total += b.len() as u64;
                    this.pending = b;
                }
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// The sending half of a stream as an [`AsyncWrite`]; shutdown ends the
/// stream (an empty DATA frame with END_STREAM).
pub(crate) struct H2Send {
    tx: SendStream,
    ended: bool,
}

impl H2Send {
    /// Wraps a stream's sending half.
    pub(crate) fn new(tx: SendStream) -> Self {
        H2Send { tx, ended: false }
    }

    /// Sends `data` as the last DATA frame: at once when the windows
    /// allow (small bodies already in hand), else as the windows open.
    pub(crate) async fn send_last(&mut self, data: &[u8]) -> io::Result<()> {
        if self.tx.try_send_all(data, true).map_err(h2_io)? {
            self.ended = true;
            return Ok(());
        }
        self.write_all(data).await?;
        self.shutdown().await
    }

    /// Ends the stream with trailers.
    pub(crate) fn send_trailers<'a>(
        &mut self,
        trailers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> io::Result<()> {
        self.ended = true;
        self.tx
            .send_trailers(|f| {
                for (n, v) in trailers {
                    f.add(n, v);
                }
            })
            .map_err(h2_io)
    }

    /// Aborts the stream (RST_STREAM): the client sees a reset, never a
    /// silently truncated response.
    pub(crate) fn abort(&mut self) {
        if !self.ended {
            self.ended = true;
            self.tx.send_reset(nuncio_h2::Reason::INTERNAL_ERROR);
        }
    }
}

impl AsyncWrite for H2Send {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.tx.poll_send(cx, buf, false).map_err(h2_io)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.ended {
            ready!(self.tx.poll_send(cx, &[], true)).map_err(h2_io)?;
            self.ended = true;
        }
        Poll::Ready(Ok(()))
    }
}

/// Both halves of an HTTP/2 stream, for a WebSocket tunnel.
pub(crate) struct H2Duplex {
    /// What the client sends.
    pub(crate) rx: H2Recv,
    /// What goes to the client.
    pub(crate) tx: H2Send,
}

impl AsyncRead for H2Duplex {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.rx).poll_read(cx, buf)
    }
}

impl AsyncWrite for H2Duplex {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tx).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tx).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tx).poll_shutdown(cx)
    }
}

/// Sends a request body of unknown length upstream as chunks, one per DATA
/// frame, ending with the client's trailers (gRPC-style messages keep
/// them across the HTTP/1.1 hop).
pub(crate) async fn send_chunked(
    src: &mut H2Recv,
    up: &mut nuncio_tls::CountedConn,
    idle: Option<Duration>,
) -> Result<u64, Fail> {
    let mut out = Vec::new();
    loop {
        let next = idle_bounded(idle, src.data()).await?;
        let data = match next {
            None => break,
            Some(Ok(d)) if d.is_empty() => continue,
            Some(Ok(d)) => d,
            Some(Err(_)) => return Err(Fail::Client),
        };
        out.clear();
        push_hex(&mut out, data.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\r\n");
        up.write_all(&out).await.map_err(|_| Fail::Reset)?;
    }
    let trailers = src.trailers().await.map_err(|_| Fail::Client)?;
    out.clear();
    out.extend_from_slice(b"0\r\n");
    for (n, v) in trailers.iter().flat_map(|t| t.iter()) {
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    up.write_all(&out).await.map_err(|_| Fail::Reset)?;
    Ok(src.total)
}

pub(crate) fn push_hex(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

impl super::relay::TrailerSink for H2Send {
    fn send_trailers(&mut self, trailers: Vec<(&[u8], &[u8])>) -> io::Result<()> {
        H2Send::send_trailers(self, trailers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A body larger than both windows goes through the adapters intact,
    /// in both directions (the writer waits for window updates): nuncio's
    /// codec serving, the `h2` crate as the client.
    #[tokio::test]
    async fn bodies_larger_than_the_window_cross_intact() {
        let (a, b) = tokio::io::duplex(16 * 1024);
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let expect = body.clone();
        let server = tokio::spawn(async move {
            let mut conn = nuncio_h2::handshake(b, nuncio_h2::Config::default())
                .await
                .unwrap();
            let (req, rx, mut respond) = conn.accept().await.unwrap().unwrap();
            assert_eq!(req.method(), "POST");
            let driver = tokio::spawn(async move { while conn.accept().await.is_some() {} });
            let mut rx = H2Recv::new(rx);
            let mut got = Vec::new();
            rx.read_to_end(&mut got).await.unwrap();
            assert_eq!(rx.total, got.len() as u64);
            let tx = respond.send_response(200, false, |_| {}).unwrap();
            let mut tx = H2Send::new(tx);
            tx.write_all(&got).await.unwrap();
            tx.shutdown().await.unwrap();
            drop((rx, tx, respond));
            driver.await.unwrap();
        });
        let (mut client, conn) = h2::client::handshake(a).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let (resp, tx) = client
            .send_request(http::Request::post("http://x/").body(()).unwrap(), false)
            .unwrap();
        let mut tx = tx;
        let mut rest = &body[..];
        while !rest.is_empty() {
            tx.reserve_capacity(rest.len().min(16 * 1024));
            let cap = std::future::poll_fn(|cx| tx.poll_capacity(cx))
                .await
                .unwrap()
                .unwrap();
            let (now, later) = rest.split_at(cap.min(rest.len()));
            tx.send_data(Bytes::copy_from_slice(now), false).unwrap();
            rest = later;
        }
        tx.send_data(Bytes::new(), true).unwrap();
        let resp = resp.await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut rx = resp.into_body();
        let mut back = Vec::new();
        while let Some(d) = rx.data().await {
            let d = d.unwrap();
            let _ = rx.flow_control().release_capacity(d.len());
            back.extend_from_slice(&d);
        }
        // The server's connection ends once the client goes.
        drop((rx, tx, client));
        assert_eq!(back, expect);
        server.await.unwrap();
    }
}
