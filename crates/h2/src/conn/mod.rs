//! The server connection: reads frames off the socket and applies them
//! to the shared state, hands complete requests to the application
//! ([`Connection::accept`]), and writes whatever the stream handles
//! queued. One task drives it; the handles may live in other tasks.
//! `frames.rs` holds what each received frame does.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use std::future::Future;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

mod frames;
mod response;

pub(crate) use response::status_code;

use crate::frame::{self, setting, Reason};
use crate::hpack::Decoder;
use crate::request::Request;
use crate::state::{Role, Shared, State, OUT_HIGH};
use crate::stream::{RecvStream, SendResponse};

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE (each stream's receive window).
    pub initial_window_size: u32,
    /// The connection's receive window.
    pub initial_connection_window_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: larger request heads get a 431.
    pub max_header_list_size: u32,
    /// Offer extended CONNECT (RFC 8441, WebSocket over HTTP/2).
    pub enable_connect_protocol: bool,
    /// Close the connection (GOAWAY, then [`Error::IdleTimeout`]) after
    /// this long without a stream (Envoy's `idle_timeout`).
    pub idle_timeout: Option<std::time::Duration>,
    /// Envoy's `http2.*` codec stats to count into (RST_STREAM and GOAWAY
    /// frames, trailers, malformed requests, oversize header lists, open
    /// streams), if any.
    pub stats: Option<std::sync::Arc<nuncio_stats::Http2Stats>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_concurrent_streams: 100,
            initial_window_size: 65_536,
            initial_connection_window_size: 1 << 20,
            max_header_list_size: 60 * 1024,
            enable_connect_protocol: false,
            idle_timeout: None,
            stats: None,
        }
    }
}

/// Why the connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The client broke the protocol; we sent GOAWAY with this code.
    #[error("connection error {0}: {1}")]
    Protocol(Reason, &'static str),
    /// The client did not open with the HTTP/2 preface.
    #[error("not an HTTP/2 connection preface")]
    Preface,
    /// No stream for `idle_timeout`: we sent GOAWAY and closed.
    #[error("idle timeout")]
    IdleTimeout,
}

/// A request and its stream handles.
pub type Accepted = (Request, RecvStream, SendResponse);

/// A header block being collected from HEADERS and CONTINUATION frames.
#[derive(Debug)]
struct Partial {
    stream: u32,
    end_stream: bool,
}

/// One server connection.
pub struct Connection<T> {
    io: T,
    role: Role,
    shared: Arc<Shared>,
    cfg: Config,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    wpos: usize,
    hpack: Decoder,
    block: Vec<u8>,
    partial: Option<Partial>,
    ready: std::collections::VecDeque<Accepted>,
    /// The highest stream the client opened.
    last_stream: u32,
    /// We sent GOAWAY (graceful): streams above this id are ignored.
    goaway: Option<u32>,
    /// The client sent GOAWAY.
    peer_goaway: bool,
    settings_acked: bool,
    read_closed: bool,
    /// A connection error waiting to be reported after its GOAWAY is out.
    failed: Option<Error>,
    done: bool,
    /// Armed while the connection has no stream (`Config::idle_timeout`).
    idle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Streams we reset because the client broke the protocol on them.
    local_resets: u32,
    /// A client's output held back until the runtime's turn ends.
    defer: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// Opens a server connection: queues our SETTINGS and reads the client's
/// preface (which may be in `io` already).
pub async fn handshake<T>(io: T, cfg: Config) -> Result<Connection<T>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut st = State::new(
        crate::state::Role::Server,
        i64::from(cfg.initial_connection_window_size),
        i64::from(cfg.initial_window_size),
    );
    st.stats = cfg.stats.clone();
    let mut settings = vec![
        (setting::MAX_CONCURRENT_STREAMS, cfg.max_concurrent_streams),
        (setting::INITIAL_WINDOW_SIZE, cfg.initial_window_size),
        (setting::MAX_HEADER_LIST_SIZE, cfg.max_header_list_size),
    ];
    if cfg.enable_connect_protocol {
        settings.push((setting::ENABLE_CONNECT_PROTOCOL, 1));
    }
    frame::put_settings(&mut st.out, &settings);
    if st.conn_window > 65_535 {
        frame::put_window_update(&mut st.out, 0, (st.conn_window - 65_535) as u32);
    }
    let mut c = Connection::with_shared(io, Arc::new(Shared::new(st)), cfg);
    poll_fn(|cx| c.poll_preface(cx)).await?;
    // Frames that came in the preface's read.
    if let Err(e) = c.process() {
        c.fail(e);
    }
    Ok(c)
}

impl<T> Connection<T> {
    /// A connection over `io` whose state (and queued first frames) is
    /// `shared`; its role is the state's.
    pub(crate) fn with_shared(io: T, shared: Arc<Shared>, cfg: Config) -> Self {
        let role = shared.lock().role;
        Connection {
            io,
            role,
            shared,
            cfg,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            wpos: 0,
            hpack: Decoder::new(4096),
            block: Vec::new(),
            partial: None,
            ready: Default::default(),
            last_stream: 0,
            goaway: None,
            peer_goaway: false,
            settings_acked: false,
            read_closed: false,
            failed: None,
            done: false,
            idle_timer: None,
            local_resets: 0,
            defer: None,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Connection<T> {
    /// Drives a client connection ([`crate::client::handshake`]) until it
    /// ends: the server closed it, it failed, or every handle on it is
    /// gone (then it says GOAWAY and closes).
    pub async fn run(mut self) -> Result<(), Error> {
        loop {
            match self.accept().await {
                None => return Ok(()),
                Some(Err(e)) => return Err(e),
                // A client is never handed requests.
                Some(Ok(_)) => {}
            }
        }
    }

    fn poll_preface(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let _ = self.poll_write(cx)?;
        while self.rbuf.len() < frame::PREFACE.len() {
            if !self.rbuf.is_empty() && !frame::PREFACE.starts_with(&self.rbuf) {
                return Poll::Ready(Err(Error::Preface));
            }
            match self.poll_read(cx)? {
                Poll::Ready(0) => return Poll::Ready(Err(Error::Preface)),
                Poll::Ready(_) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
        if &self.rbuf[..frame::PREFACE.len()] != frame::PREFACE {
            return Poll::Ready(Err(Error::Preface));
        }
        self.rbuf.advance(frame::PREFACE.len());
        Poll::Ready(Ok(()))
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.rbuf.capacity() == 0 {
            self.rbuf = crate::bufpool::take();
        }
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(crate::bufpool::SIZE);
        }
        // tokio's read_buf fills the spare capacity without zeroing it
        // first (zeroing 16 KiB per read was 12% of all instructions);
        // the future holds no state, so polling a fresh one is fine.
        let read = self.io.read_buf(&mut self.rbuf);
        std::pin::pin!(read).poll(cx)
    }

    /// Writes queued output; Ready once all of it is out.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.wpos == self.wbuf.len() {
                self.wbuf.clear();
                self.wpos = 0;
                let mut st = self.shared.lock();
                if st.out.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                std::mem::swap(&mut self.wbuf, &mut st.out);
                st.wake_wanting();
            }
            match Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.wpos += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The next request. `None` once the connection has ended cleanly
    /// (client closed, or our graceful shutdown finished); an error after
    /// a connection error (its GOAWAY is sent first).
    pub async fn accept(&mut self) -> Option<Result<Accepted, Error>> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next request (see [`Connection::accept`]).
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Accepted, Error>>> {
        loop {
            if let Some(a) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(a)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            let flushed = if self.poll_defer(cx) {
                false
            } else {
                match self.poll_write(cx) {
                    Poll::Ready(Ok(())) => true,
                    Poll::Ready(Err(e)) => return Poll::Ready(self.end(Some(e.into()))),
                    Poll::Pending => false,
                }
            };
            if flushed {
                if let Some(e) = self.failed.take() {
                    return Poll::Ready(self.end(Some(e)));
                }
                if self.read_closed {
                    return Poll::Ready(self.end(None));
                }
                if (self.goaway.is_some() || self.peer_goaway)
                    && self.shared.lock().streams.is_empty()
                {
                    return Poll::Ready(self.end(None));
                }
                // A client nobody holds any more: say goodbye.
                if self.role == Role::Client
                    && self.goaway.is_none()
                    && Arc::strong_count(&self.shared) == 1
                {
                    self.graceful_shutdown();
                    continue;
                }
            }
            if self.failed.is_none() && !self.read_closed {
                let backlog = self.wbuf.len() - self.wpos + self.shared.lock().out.len();
                if backlog < OUT_HIGH {
                    match self.poll_read(cx) {
                        Poll::Ready(Ok(0)) => {
                            self.read_closed = true;
                            continue;
                        }
                        Poll::Ready(Ok(_)) => {
                            if let Err(e) = self.process() {
                                self.fail(e);
                            }
                            continue;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(self.end(Some(e.into()))),
                        Poll::Pending => {}
                    }
                }
            }
            // Park; unless output arrived meanwhile and can be written.
            let mut st = self.shared.lock();
            if flushed && !st.out.is_empty() {
                continue;
            }
            if flushed && (self.goaway.is_some() || self.peer_goaway) && st.streams.is_empty() {
                continue;
            }
            st.conn_waker = Some(cx.waker().clone());
            let idle = st.streams.is_empty();
            // An idle connection (no stream, nothing to write, no partial
            // frame) gives its buffers back: ~19 KB each otherwise.
            if flushed && idle && st.out.is_empty() {
                st.out = Vec::new();
                st.streams = Vec::new();
                drop(st);
                self.wbuf = Vec::new();
                self.wpos = 0;
                if self.partial.is_none() {
                    self.block = Vec::new();
                }
                self.ready = Default::default();
                if self.rbuf.is_empty() {
                    crate::bufpool::give(std::mem::take(&mut self.rbuf));
                }
            } else {
                drop(st);
            }
            if self.poll_idle(cx, idle) {
                continue;
            }
            return Poll::Pending;
        }
    }

    /// A client holds new output back for one turn of the runtime (its
    /// tasks, then a look at the sockets), so the requests of every
    /// connection woken together leave in one write: true while held.
    /// HAProxy and Envoy write once per event-loop turn the same way.
    fn poll_defer(&mut self, cx: &mut Context<'_>) -> bool {
        if self.role != Role::Client || self.wpos < self.wbuf.len() {
            return false;
        }
        if let Some(y) = self.defer.as_mut() {
            if y.as_mut().poll(cx).is_pending() {
                return true;
            }
            self.defer = None;
            return false;
        }
        if self.shared.lock().out.is_empty() {
            return false;
        }
        let mut y: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(tokio::task::yield_now());
        if y.as_mut().poll(cx).is_pending() {
            self.defer = Some(y);
            return true;
        }
        false
    }

    /// Runs the idle timer while there is no stream; true once it fired
    /// (GOAWAY queued, [`Error::IdleTimeout`] to report).
    fn poll_idle(&mut self, cx: &mut Context<'_>, idle: bool) -> bool {
        let Some(t) = self
            .cfg
            .idle_timeout
            .filter(|_| idle && self.goaway.is_none())
        else {
            self.idle_timer = None;
            return false;
        };
        let timer = self
            .idle_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(t)));
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.idle_timer = None;
        self.graceful_shutdown();
        self.failed = Some(Error::IdleTimeout);
        true
    }

    /// Ends the connection: every stream's handles fail from now on.
    fn end(&mut self, e: Option<Error>) -> Option<Result<Accepted, Error>> {
        self.done = true;
        self.shared.lock().close_all();
        e.map(Err)
    }

    /// A connection error: GOAWAY, then the error once it is written.
    fn fail(&mut self, e: Error) {
        if let Error::Protocol(reason, why) = &e {
            tracing::debug!(%reason, why, "HTTP/2 connection error");
            let mut st = self.shared.lock();
            st.put_goaway(self.last_stream, *reason);
            st.conn_error = Some(*reason);
            st.close_all();
        }
        self.failed = Some(e);
    }

    /// Starts a graceful shutdown: GOAWAY with the last stream taken;
    /// streams in flight finish, then `accept` returns `None`.
    pub fn graceful_shutdown(&mut self) {
        if self.goaway.is_some() {
            return;
        }
        self.goaway = Some(self.last_stream);
        let mut st = self.shared.lock();
        let was_empty = st.out.is_empty();
        st.put_goaway(self.last_stream, Reason::NO_ERROR);
        st.queued(was_empty);
    }

    /// Ends the connection at once with GOAWAY(`reason`); every stream
    /// fails. Follow with [`Connection::closed`] to write the GOAWAY.
    pub fn abrupt_shutdown(&mut self, reason: Reason) {
        let mut st = self.shared.lock();
        st.put_goaway(self.last_stream, reason);
        st.close_all();
        drop(st);
        self.done = true;
    }

    /// Resolves once queued output is written (or the socket failed).
    pub async fn closed(&mut self) {
        let _ = poll_fn(|cx| self.poll_write(cx)).await;
    }
}

impl<T> Drop for Connection<T> {
    fn drop(&mut self) {
        // Handles still held by stream tasks fail from now on.
        self.shared.lock().close_all();
    }
}
