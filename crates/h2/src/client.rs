//! The client half: nuncio's HTTP/2 connections to upstreams. The same
//! connection driver, stream table and handles as the server
//! ([`crate::Connection`], `state`, `stream`), with the roles turned:
//! streams are opened here ([`SendRequest::send_request`], odd ids), the
//! server's SETTINGS and GOAWAY bound what may be opened, and a header
//! block on an open stream is its response ([`ResponseFuture`]).
//!
//! The request head arrives already HPACK-encoded (the connection
//! manager writes it straight from the head it composed, with
//! [`crate::hpack::encode_request_pseudo`] and
//! [`crate::hpack::encode_field`]), so no header map is built on the way.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::conn::{Config, Connection};
use crate::frame::{self, setting};
use crate::hpack::Block;
use crate::state::{Role, Shared, State, Stream};
use crate::stream::{failed, park, Ref};
use crate::{RecvStream, SendStream, StreamError};

/// A client connection's settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// SETTINGS_INITIAL_WINDOW_SIZE (each response's receive window).
    pub initial_window_size: u32,
    /// The connection's receive window.
    pub initial_connection_window_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: larger response heads reset the
    /// stream.
    pub max_header_list_size: u32,
    /// Envoy's `http2.*` codec stats to count into, if any.
    pub stats: Option<Arc<nuncio_stats::Http2Stats>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            initial_window_size: 65_536,
            initial_connection_window_size: 1 << 20,
            max_header_list_size: 60 * 1024,
            stats: None,
        }
    }
}

/// Why a stream could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The connection is closed or going away (GOAWAY either way).
    #[error("connection closed or going away")]
    Gone,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS is reached.
    #[error("no stream slot left")]
    Full,
    /// An extended CONNECT the server did not allow (RFC 8441).
    #[error("extended CONNECT not enabled by the server")]
    NoConnectProtocol,
}

/// Starts a client connection over `io`: the preface and our SETTINGS
/// are queued; drive the returned [`Connection`] with
/// [`Connection::run`] (in its own task) and open streams with the
/// [`SendRequest`].
pub fn handshake<T>(io: T, cfg: ClientConfig) -> (SendRequest, Connection<T>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut st = State::new(
        Role::Client,
        i64::from(cfg.initial_connection_window_size),
        i64::from(cfg.initial_window_size),
    );
    st.stats = cfg.stats.clone();
    st.out.extend_from_slice(frame::PREFACE);
    frame::put_settings(
        &mut st.out,
        &[
            (setting::ENABLE_PUSH, 0),
            (setting::INITIAL_WINDOW_SIZE, cfg.initial_window_size),
            (setting::MAX_HEADER_LIST_SIZE, cfg.max_header_list_size),
        ],
    );
    if st.conn_window > 65_535 {
        frame::put_window_update(&mut st.out, 0, (st.conn_window - 65_535) as u32);
    }
    let shared = Arc::new(Shared::new(st));
    let server_cfg = Config {
        max_concurrent_streams: 0,
        initial_window_size: cfg.initial_window_size,
        initial_connection_window_size: cfg.initial_connection_window_size,
        max_header_list_size: cfg.max_header_list_size,
        enable_connect_protocol: false,
        idle_timeout: None,
        stats: cfg.stats,
    };
    let conn = Connection::with_shared(io, shared.clone(), server_cfg);
    (SendRequest { shared }, conn)
}

/// Opens streams on one connection; clones share it. The connection
/// closes (GOAWAY) once every `SendRequest` and stream handle is gone.
#[derive(Debug, Clone)]
pub struct SendRequest {
    shared: Arc<Shared>,
}

impl SendRequest {
    /// Ready once the server's first SETTINGS are applied (its stream
    /// limit and extended CONNECT are known), or with an error once the
    /// connection is gone.
    pub fn poll_ready(&self, cx: &Context<'_>) -> Poll<Result<(), OpenError>> {
        let mut st = self.shared.lock();
        if st.closed || st.peer.goaway {
            return Poll::Ready(Err(OpenError::Gone));
        }
        if st.peer.settings_seen {
            return Poll::Ready(Ok(()));
        }
        st.peer.waiters.push(cx.waker().clone());
        Poll::Pending
    }

    /// [`SendRequest::poll_ready`], awaited.
    pub async fn ready(&self) -> Result<(), OpenError> {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await
    }

    /// True once the connection is closed or going away.
    pub fn is_closed(&self) -> bool {
        let st = self.shared.lock();
        st.closed || st.peer.goaway
    }

    /// True if a stream may open now, within `local_max` streams of ours.
    pub fn has_room(&self, local_max: u32) -> bool {
        let st = self.shared.lock();
        !st.closed && !st.peer.goaway && st.active() < st.peer.max_streams.min(local_max) as usize
    }

    /// Streams open on the connection.
    pub fn active_streams(&self) -> usize {
        self.shared.lock().active()
    }

    /// Opens a stream with `block`, the request head HPACK-encoded
    /// (pseudo fields first). `end`: no body follows. `head_request`: a
    /// HEAD, whose response has no body whatever its `content-length`.
    /// `extended_connect`: the block carries `:protocol` (RFC 8441).
    pub fn send_request(
        &self,
        block: &[u8],
        opts: RequestOptions,
    ) -> Result<(ResponseFuture, SendStream), OpenError> {
        let mut st = self.shared.lock();
        if st.closed || st.peer.goaway || st.peer.next_id > frame::MAX_STREAM_ID {
            return Err(OpenError::Gone);
        }
        if opts.extended_connect && !st.peer.connect_protocol {
            return Err(OpenError::NoConnectProtocol);
        }
        if st.active() >= st.peer.max_streams as usize {
            return Err(OpenError::Full);
        }
        let id = st.peer.next_id;
        st.peer.next_id += 2;
        let mut s = Stream::new(id, st.peer_initial_window, st.stream_window);
        s.head_request = opts.head_request;
        s.headers_sent = true;
        s.send_end = opts.end;
        st.push_stream(s);
        let i = st.streams.len() - 1;
        let was_empty = st.out.is_empty();
        let max = st.peer_max_frame;
        frame::put_headers(&mut st.out, id, opts.end, max, |out| {
            out.extend_from_slice(block)
        });
        st.queued(was_empty);
        let response = ResponseFuture {
            r: Ref::new(&self.shared, &mut st, i),
        };
        let body = SendStream::on(&self.shared, &mut st, i);
        Ok((response, body))
    }
}

impl Drop for SendRequest {
    fn drop(&mut self) {
        // The connection ends once nothing else holds it: let it look.
        let mut st = self.shared.lock();
        if let Some(w) = st.conn_waker.take() {
            w.wake();
        }
    }
}

/// How a request's stream opens.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestOptions {
    /// The head ends the stream (no body).
    pub end: bool,
    /// The method is HEAD.
    pub head_request: bool,
    /// An extended CONNECT (`:protocol` in the head).
    pub extended_connect: bool,
}

/// The response to a request: resolves to its head and body.
#[derive(Debug)]
pub struct ResponseFuture {
    r: Ref,
}

impl Future for ResponseFuture {
    type Output = Result<(Response, RecvStream), StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let shared = self.r.shared.clone();
        let r = self.r.with(|st, i| {
            if let Some(block) = st.streams[i].head.take() {
                let body = RecvStream::on(&shared, st, i);
                return Ok(Poll::Ready((block, body)));
            }
            if let Some(e) = failed(st, i) {
                return Err(e);
            }
            park(st, i, cx);
            Ok(Poll::Pending)
        });
        match r {
            Ok(Poll::Ready((block, body))) => Poll::Ready(Ok((Response::new(block), body))),
            Ok(Poll::Pending) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// A final response head (checked: `:status` first, lowercase names, no
/// connection-specific fields).
#[derive(Debug)]
pub struct Response {
    status: u16,
    block: Block,
}

impl Response {
    fn new(block: Block) -> Self {
        let status = block
            .iter()
            .next()
            .and_then(|(_, v)| crate::conn::status_code(v))
            .unwrap_or(0);
        Response { status, block }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The regular fields, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.block.iter().skip(1)
    }

    /// The first value of `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }
}
