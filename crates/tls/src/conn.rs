//! A connection's transport: plain TCP or TLS ([`Conn`]), with the
//! readiness API the HTTP/1.1 path watches idle clients with
//! ([`nuncio_stats::io::ReadyIo`]) as well as `AsyncRead`/`AsyncWrite`.
//!
//! [`TlsConn`] drives a rustls connection over a `TcpStream` itself (no
//! tokio-rustls): the handshake ([`TlsConn::handshake`]), reads that keep
//! pulling TCP until the OS says `WouldBlock` or plaintext appears (so a
//! partial record or a session ticket never leaves readiness set), and
//! writes that encrypt and send at once. TLS bytes a full socket could
//! not take are sent by the next read or readiness poll as well as by the
//! next write or flush, so a response is never left inside rustls when the
//! connection goes back to waiting for the client.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use nuncio_stats::io::{Counted, ReadyIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection's bytes: plain or TLS. The box keeps plain connections
/// small.
#[derive(Debug)]
pub enum Conn {
    /// Plain TCP (`raw_buffer`).
    Plain(TcpStream),
    /// TLS over TCP, handshake done.
    Tls(Box<TlsConn>),
}

/// A counted connection (plain or TLS): what the connection manager and
/// the upstream pools read and write. Counting is outside TLS, so
/// `*_cx_rx/tx_bytes_total` count plaintext, as Envoy's do.
pub type CountedConn = Counted<Conn>;

impl Conn {
    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(t) => t,
            Conn::Tls(t) => &t.tcp,
        }
    }

    /// The protocol ALPN chose (`h2`, `http/1.1`), if TLS negotiated one.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Conn::Plain(_) => None,
            Conn::Tls(t) => t.alpn(),
        }
    }
}

/// The rustls half of a [`TlsConn`], behind a mutex so that the readiness
/// API works through `&self` (only this connection's task takes it).
#[derive(Debug)]
struct State {
    tls: rustls::Connection,
    /// TCP said end of stream.
    eof: bool,
}

/// A TLS connection over TCP.
#[derive(Debug)]
pub struct TlsConn {
    tcp: TcpStream,
    state: Mutex<State>,
    /// What ALPN chose, once the handshake is done.
    alpn: Option<Vec<u8>>,
    /// We sent close_notify.
    closing: bool,
}

/// `io::Read` over a non-blocking socket's `try_read`.
struct TcpRead<'a>(&'a TcpStream);

impl Read for TcpRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// `io::Write` over a non-blocking socket's `try_write`.
struct TcpWrite<'a>(&'a TcpStream);

impl Write for TcpWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsConn {
    /// A server-side connection on `tcp` with `config` (handshake not done).
    pub fn server(
        tcp: TcpStream,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> io::Result<Self> {
        let tls = rustls::ServerConnection::new(config).map_err(invalid)?;
        Ok(Self::new(tcp, tls.into()))
    }

    /// A client-side connection on `tcp` to `name` (handshake not done).
    pub fn client(
        tcp: TcpStream,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> io::Result<Self> {
        let tls = rustls::ClientConnection::new(config, name).map_err(invalid)?;
        Ok(Self::new(tcp, tls.into()))
    }

    fn new(tcp: TcpStream, tls: rustls::Connection) -> Self {
        TlsConn {
            tcp,
            state: Mutex::new(State { tls, eof: false }),
            alpn: None,
            closing: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes queued TLS bytes; `Ok(false)` when the socket is full.
    fn send(&self, st: &mut State) -> io::Result<bool> {
        while st.tls.wants_write() {
            match st.tls.write_tls(&mut TcpWrite(&self.tcp)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Runs the handshake to its end (the caller bounds it in time).
    /// A failure has sent its alert (best effort) before returning.
    pub async fn handshake(&mut self) -> Result<(), HandshakeError> {
        loop {
            match self.handshake_step()? {
                Next::Writable => self.tcp.writable().await.map_err(HandshakeError::Io)?,
                Next::Readable => self.tcp.readable().await.map_err(HandshakeError::Io)?,
                Next::Done(alpn) => {
                    self.alpn = alpn;
                    return Ok(());
                }
            }
        }
    }

    /// One handshake step without waiting: send, check, read. The guard
    /// never lives across an await.
    fn handshake_step(&self) -> Result<Next, HandshakeError> {
        let mut st = self.lock();
        loop {
            if !self.send(&mut st).map_err(HandshakeError::Io)? {
                return Ok(Next::Writable);
            }
            if !st.tls.is_handshaking() {
                return Ok(Next::Done(st.tls.alpn_protocol().map(<[u8]>::to_vec)));
            }
            match st.tls.read_tls(&mut TcpRead(&self.tcp)) {
                Ok(0) => return Err(HandshakeError::Closed),
                Ok(_) => {
                    if let Err(e) = st.tls.process_new_packets() {
                        let _ = self.send(&mut st);
                        return Err(HandshakeError::Tls(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Next::Readable),
                Err(e) => return Err(HandshakeError::Io(e)),
            }
        }
    }

    /// The protocol ALPN chose, once the handshake is done.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// What the handshake agreed, for the `ssl.*` stats and logs.
    pub fn negotiated(&self) -> Negotiated {
        let st = self.lock();
        Negotiated {
            version: st.tls.protocol_version(),
            suite: st.tls.negotiated_cipher_suite().map(|s| s.suite()),
            group: st.tls.negotiated_key_exchange_group().map(|g| g.name()),
            resumed: st.tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            peer_certificate: st.tls.peer_certificates().is_some_and(|c| !c.is_empty()),
        }
    }

    /// True when plaintext or the end of the stream can be read now.
    fn readable_now(&self, st: &mut State) -> bool {
        st.eof
            || match st.tls.process_new_packets() {
                Ok(io) => io.plaintext_bytes_to_read() > 0 || io.peer_has_closed(),
                Err(_) => true,
            }
    }

    /// Reads plaintext into `buf` without waiting; keeps reading TCP
    /// until plaintext appears or the socket has nothing more.
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = self.lock();
        loop {
            match st.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP ended without close_notify: an end all the same,
                // as Envoy takes it.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if st.eof {
                return Ok(0);
            }
            match st.tls.read_tls(&mut TcpRead(&self.tcp)) {
                Ok(0) => st.eof = true,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = st.tls.process_new_packets() {
                let _ = self.send(&mut st);
                return Err(invalid(e));
            }
            // A KeyUpdate or an alert to answer.
            if st.tls.wants_write() {
                self.send(&mut st)?;
            }
        }
    }

    /// Polls read readiness; queued TLS output goes out first (waiting
    /// for room as well, if the socket is full).
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.lock();
        if st.tls.wants_write() {
            match self.send(&mut st) {
                Ok(true) => {}
                Ok(false) => {
                    let _ = self.tcp.poll_write_ready(cx);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if self.readable_now(&mut st) {
            return Poll::Ready(Ok(()));
        }
        drop(st);
        self.tcp.poll_read_ready(cx)
    }

    fn poll_send_all(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.send(&mut self.lock())? {
                return Poll::Ready(Ok(()));
            }
            ready!(self.tcp.poll_write_ready(cx))?;
        }
    }
}

/// What a handshake waits for next.
enum Next {
    /// Room in the socket for what it has to send.
    Writable,
    /// The peer's next flight.
    Readable,
    /// Done; what ALPN chose.
    Done(Option<Vec<u8>>),
}

/// What a handshake agreed.
#[derive(Debug, Clone, Copy)]
pub struct Negotiated {
    /// TLSv1_2 or TLSv1_3.
    pub version: Option<rustls::ProtocolVersion>,
    /// The cipher suite.
    pub suite: Option<rustls::CipherSuite>,
    /// The key exchange group (curve).
    pub group: Option<rustls::NamedGroup>,
    /// The session was resumed.
    pub resumed: bool,
    /// The peer presented a certificate.
    pub peer_certificate: bool,
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer closed the connection before the handshake ended.
    #[error("connection closed during the TLS handshake")]
    Closed,
    /// The peer's TLS was refused (bad record, no shared version or
    /// suite, a certificate that failed verification).
    #[error("TLS error: {0}")]
    Tls(rustls::Error),
    /// The socket failed.
    #[error("i/o error during the TLS handshake: {0}")]
    Io(io::Error),
}

impl ReadyIo for TlsConn {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(cx)
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_now(buf)
    }
    fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let room = buf.remaining_mut().min(tmp.len());
        let n = self.read_now(&mut tmp[..room])?;
        buf.put_slice(&tmp[..n]);
        Ok(n)
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            match self.read_now(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.poll_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut st = self.lock();
            // Room first: what earlier writes queued goes out before more
            // is taken.
            if !self.send(&mut st)? {
                drop(st);
                ready!(self.tcp.poll_write_ready(cx))?;
                continue;
            }
            let n = st.tls.writer().write(b)?;
            if n == 0 && !b.is_empty() {
                drop(st);
                ready!(self.tcp.poll_write_ready(cx))?;
                continue;
            }
            // Best effort now; the rest goes with the next write, flush,
            // read or readiness poll.
            self.send(&mut st)?;
            return Poll::Ready(Ok(n));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send_all(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closing {
            self.closing = true;
            self.lock().tls.send_close_notify();
        }
        ready!(self.poll_send_all(cx))?;
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl ReadyIo for Conn {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Conn::Plain(t) => t.poll_read_ready(cx),
            Conn::Tls(t) => t.poll_ready(cx),
        }
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(t) => t.try_read(buf),
            Conn::Tls(t) => t.read_now(buf),
        }
    }
    fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        match self {
            Conn::Plain(t) => t.try_read_buf(buf),
            Conn::Tls(t) => ReadyIo::try_read_buf(&**t, buf),
        }
    }
}

impl AsyncRead for Conn {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(t) => Pin::new(t).poll_read(cx, buf),
            Conn::Tls(t) => Pin::new(&mut **t).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    #[inline]
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(t) => Pin::new(t).poll_write(cx, b),
            Conn::Tls(t) => Pin::new(&mut **t).poll_write(cx, b),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(t) => Pin::new(t).poll_write_vectored(cx, b),
            Conn::Tls(t) => {
                let first = b.iter().find(|s| !s.is_empty()).map_or(&[][..], |s| &**s);
                Pin::new(&mut **t).poll_write(cx, first)
            }
        }
    }
    fn is_write_vectored(&self) -> bool {
        matches!(self, Conn::Plain(_))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(t) => Pin::new(t).poll_flush(cx),
            Conn::Tls(t) => Pin::new(&mut **t).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(t) => Pin::new(t).poll_shutdown(cx),
            Conn::Tls(t) => Pin::new(&mut **t).poll_shutdown(cx),
        }
    }
}
