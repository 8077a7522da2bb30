//! Socket helpers for the native HTTP/1 path: bounded reads into a buffer
//! that exists only while a message is in flight, and the byte-for-byte
//! hand-off of an h2c connection to the HTTP/2 path.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::deadline::{within, within_group};

/// Reads once into `buf`, growing it by at least 8 KiB of room. `Ok(0)` is
/// end of stream. `timeout` (if any) bounds the wait.
pub(crate) async fn read_some<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    timeout: Option<Duration>,
) -> io::Result<usize> {
    read_some_hint(s, buf, timeout, 8192).await
}

/// How a body moves: at most `chunk` bytes a read, and an error after
/// `idle` without bytes (Envoy's `stream_idle_timeout`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// `stream_idle_timeout` (None: off).
    pub(crate) idle: Option<Duration>,
    /// Largest read: the listener's `per_connection_buffer_limit_bytes`,
    /// at most [`MAX_READ`].
    pub(crate) chunk: usize,
}

/// The largest body read (and so the most body bytes a connection holds
/// in user space per direction).
pub(crate) const MAX_READ: usize = 64 * 1024;

impl Pace {
    /// The pace of bodies on `hcm`'s connections.
    pub(crate) fn of(hcm: &crate::Hcm) -> Pace {
        let idle = hcm.config.stream_idle_timeout;
        Pace {
            idle: (!idle.is_zero()).then_some(idle),
            chunk: hcm.buffer_limit.clamp(1024, MAX_READ),
        }
    }
}

/// Like [`read_some`], with room for up to `want` bytes (1 KiB to 64 KiB):
/// bodies move in few large reads instead of many small ones.
pub(crate) async fn read_some_hint<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    timeout: Option<Duration>,
    want: usize,
) -> io::Result<usize> {
    let want = want.clamp(1024, MAX_READ);
    if buf.capacity() - buf.len() < want / 2 {
        buf.reserve(want);
    }
    // At most `want` bytes: the per-connection buffer limit holds even
    // when the buffer has grown larger.
    let mut room = bytes::BufMut::limit(&mut *buf, want);
    match timeout {
        Some(t) => match within(t, s.read_buf(&mut room)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out")),
        },
        None => s.read_buf(&mut room).await,
    }
}

/// Waits until `s` has bytes (or is closed) without holding a buffer, so an
/// idle keep-alive connection costs no buffer memory. Ends with an error
/// after `timeout`, or after the grace of a drain of `drain_group`.
pub(crate) async fn wait_readable(
    s: &nuncio_tls::CountedConn,
    timeout: Option<Duration>,
    drain_group: u64,
) -> io::Result<()> {
    // No idle timeout: still armed, so that a drain can end the wait.
    let t = timeout.unwrap_or(Duration::from_secs(u32::MAX.into()));
    match within_group(t, drain_group, s.readable()).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
    }
}

/// A socket with bytes already read in front of it (the h2c preface the
/// HTTP/1.1 path saw before handing the connection to the HTTP/2 path).
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Prefixed { prefix, inner }
    }

    /// The socket behind the prefix.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(out.remaining());
            out.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // An advanced Bytes still holds its whole allocation.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, b)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How long a connection closed after a local reply waits for the client
/// to finish sending (Envoy's `delayed_close_timeout` default).
pub(crate) const DELAYED_CLOSE: Duration = Duration::from_secs(1);

/// Closes a connection after a local reply without losing the reply:
/// our side ends (FIN, or TLS's close_notify), then what the client still
/// sends is read and dropped until it closes or [`DELAYED_CLOSE`] passes.
/// Closing with unread bytes would make the kernel answer with a reset,
/// which can destroy the reply before the client reads it.
pub(crate) async fn delayed_close<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) {
    use tokio::io::AsyncWriteExt;
    let drain = async {
        if s.shutdown().await.is_err() {
            return;
        }
        let mut scratch = [0u8; 4096];
        while let Ok(n) = s.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DELAYED_CLOSE, drain).await;
}
