//! Byte and close accounting on a connection's socket: [`Counted`] wraps
//! a stream, adds what it reads and writes to `*_cx_rx_bytes_total` and
//! `*_cx_tx_bytes_total` (one relaxed add per read or write), and when it
//! is dropped counts the connection's end as Envoy does:
//! `*_cx_destroy`, `*_cx_destroy_remote` if the peer closed it (a read saw
//! end of stream, or a read or write failed) or `*_cx_destroy_local`
//! otherwise, and its lifetime in `*_cx_length_ms`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::{Counter, Histogram};

/// The stats one side's connections count into (a connection manager's
/// downstream connections, a cluster's upstream ones).
#[derive(Debug, Default)]
pub struct IoStats {
    /// `*_cx_rx_bytes_total`.
    pub rx: Counter,
    /// `*_cx_tx_bytes_total`.
    pub tx: Counter,
    /// `*_cx_destroy` (each counter counts every close: a connection
    /// manager's and its listener's).
    pub destroy: Vec<Counter>,
    /// `*_cx_destroy_local`.
    pub destroy_local: Counter,
    /// `*_cx_destroy_remote`.
    pub destroy_remote: Counter,
    /// `*_cx_length_ms` (each records every close).
    pub length: Vec<Histogram>,
}

impl IoStats {
    /// Counts the end of a connection that lived `ms` milliseconds.
    pub fn closed(&self, remote: bool, ms: u64) {
        for d in &self.destroy {
            d.inc();
        }
        if remote {
            self.destroy_remote.inc();
        } else {
            self.destroy_local.inc();
        }
        for h in &self.length {
            h.record_value(ms);
        }
    }
}

/// A stream whose bytes and end are counted into an [`IoStats`].
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    stats: Arc<IoStats>,
    born: Instant,
    /// Atomic so that a shared reference can read (`try_read_buf`) while
    /// the socket is watched; only this connection's task touches it.
    peer_closed: AtomicBool,
}

/// A counted TCP socket.
pub type CountedTcp = Counted<TcpStream>;

impl<S> Counted<S> {
    /// Counts `inner`'s traffic and end into `stats`; its lifetime starts
    /// now.
    pub fn new(inner: S, stats: &Arc<IoStats>) -> Self {
        Counted {
            inner,
            stats: stats.clone(),
            born: Instant::now(),
            peer_closed: AtomicBool::new(false),
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably (bytes moved through it directly are
    /// not counted).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Whether the peer has closed the connection (as far as reads and
    /// writes have seen).
    pub fn peer_closed(&self) -> bool {
        self.peer_closed.load(Ordering::Relaxed)
    }

    /// Records that the peer closed the connection (seen some other way).
    pub fn set_peer_closed(&self) {
        self.peer_closed.store(true, Ordering::Relaxed);
    }

    /// When the connection was made.
    pub fn born(&self) -> Instant {
        self.born
    }

    #[inline]
    fn count_read(&self, r: Result<usize, io::ErrorKind>, room: bool) {
        match r {
            Ok(0) if room => self.set_peer_closed(),
            Ok(n) => self.stats.rx.add(n as u64),
            Err(io::ErrorKind::WouldBlock) => {}
            Err(_) => self.set_peer_closed(),
        }
    }
}

/// A stream that can say it is readable and be read without waiting,
/// through a shared reference (what the HTTP/1.1 path needs to watch an
/// idle client without holding a buffer): a plain socket, or a TLS one
/// (`nuncio_tls::Conn`) whose readiness also counts the plaintext it holds.
pub trait ReadyIo {
    /// Polls for read readiness (registering `cx`'s waker).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Reads into `buf` without waiting (`WouldBlock` when nothing is
    /// there; readiness is then cleared).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Reads into `buf`'s spare capacity without waiting.
    fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize>;
}

impl ReadyIo for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::try_read(self, buf)
    }
    fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }
}

impl<S: ReadyIo> Counted<S> {
    /// Waits until the stream is readable (or closed).
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.inner.poll_read_ready(cx)).await
    }

    /// Polls for read readiness (registering `cx`'s waker).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }

    /// Reads what is there without waiting, counting it.
    pub fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        let room = buf.has_remaining_mut();
        let r = self.inner.try_read_buf(buf);
        self.count_read(r.as_ref().map(|n| *n).map_err(io::Error::kind), room);
        r
    }

    /// Reads into `buf` without waiting, counting it.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let room = !buf.is_empty();
        let r = self.inner.try_read(buf);
        self.count_read(r.as_ref().map(|n| *n).map_err(io::Error::kind), room);
        r
    }
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.stats.closed(self.peer_closed(), ms);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    #[inline]
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(res) = &r {
            let n = res
                .as_ref()
                .map(|_| buf.filled().len() - before)
                .map_err(io::Error::kind);
            self.count_read(n, room);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    #[inline]
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, b);
        match &r {
            Poll::Ready(Ok(n)) => self.stats.tx.add(*n as u64),
            Poll::Ready(Err(_)) => self.set_peer_closed(),
            Poll::Pending => {}
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, b);
        match &r {
            Poll::Ready(Ok(n)) => self.stats.tx.add(*n as u64),
            Poll::Ready(Err(_)) => self.set_peer_closed(),
            Poll::Pending => {}
        }
        r
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn stats(s: &Arc<Store>) -> Arc<IoStats> {
        let r = s.root();
        Arc::new(IoStats {
            rx: r.counter("rx"),
            tx: r.counter("tx"),
            destroy: vec![r.counter("destroy")],
            destroy_local: r.counter("local"),
            destroy_remote: r.counter("remote"),
            length: vec![r.histogram("length")],
        })
    }

    #[tokio::test]
    async fn counts_bytes_and_who_closed() {
        let s = Store::new();
        let st = stats(&s);
        let (a, mut b) = tokio::io::duplex(64);
        let mut c = Counted::new(a, &st);
        c.write_all(b"hello").await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut got = [0u8; 8];
        let n = c.read(&mut got).await.unwrap();
        assert_eq!(n, 3);
        drop(c);
        assert_eq!(s.value("tx"), Some(5));
        assert_eq!(s.value("rx"), Some(3));
        assert_eq!(s.value("local"), Some(1));
        assert_eq!(s.value("remote"), Some(0));

        let (a, b) = tokio::io::duplex(64);
        let mut c = Counted::new(a, &st);
        drop(b);
        assert_eq!(c.read(&mut got).await.unwrap(), 0);
        assert!(c.peer_closed());
        drop(c);
        assert_eq!(s.value("remote"), Some(1));
        assert_eq!(s.value("destroy"), Some(2));
    }

    #[tokio::test]
    async fn a_full_buffer_is_not_an_end() {
        let s = Store::new();
        let st = stats(&s);
        let (a, _b) = tokio::io::duplex(64);
        let mut c = Counted::new(a, &st);
        let mut none = [0u8; 0];
        assert_eq!(c.read(&mut none).await.unwrap(), 0);
        assert!(!c.peer_closed());
    }
}
