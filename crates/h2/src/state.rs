//! What a connection and its stream handles share: the stream table,
//! flow-control windows and the output buffer, behind one mutex that
//! only this connection's tasks ever take (never contended on a worker's
//! current-thread runtime; held for a frame's worth of work at a time).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;

use crate::frame::{self, Reason};
use crate::hpack::Block;

/// Output above this many queued bytes stops new DATA and stops the
/// connection reading (a client that does not read cannot grow it).
pub(crate) const OUT_HIGH: usize = 64 * 1024;

/// The shared half of a connection.
#[derive(Debug)]
pub(crate) struct Shared(Mutex<State>);

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        Shared(Mutex::new(state))
    }

    /// Locks the state; a panic elsewhere cannot poison it for good.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One stream's state.
#[derive(Debug)]
pub(crate) struct Stream {
    pub id: u32,
    /// Live handles (request body, response sender, response body).
    pub refs: u8,
    /// Request body bytes not yet taken by the application.
    pub data: VecDeque<Bytes>,
    /// The client ended its side (END_STREAM).
    pub recv_end: bool,
    /// The application dropped the request body: later DATA is discarded.
    pub recv_dropped: bool,
    pub trailers: Option<Block>,
    /// The stream was reset, by the client (`reset_by_peer`) or by us.
    pub reset: Option<Reason>,
    pub reset_by_peer: bool,
    /// We ended our side (END_STREAM or trailers).
    pub send_end: bool,
    pub headers_sent: bool,
    /// What we may still send (the client's window for this stream).
    pub send_window: i64,
    /// What the client may still send.
    pub recv_window: i64,
    /// Bytes taken by the application and not yet credited back.
    pub recv_release: i64,
    pub content_length: Option<u64>,
    pub received: u64,
    pub waker: Option<Waker>,
    pub wants_capacity: bool,
    /// Client streams: the response head, once received (taken by the
    /// response handle).
    pub head: Option<Block>,
    /// Client streams: a final response head arrived (later blocks are
    /// trailers).
    pub head_received: bool,
    /// Client streams: the request was HEAD, so the response's
    /// `content-length` describes no DATA.
    pub head_request: bool,
}

impl Stream {
    pub(crate) fn new(id: u32, send_window: i64, recv_window: i64) -> Self {
        Stream {
            id,
            refs: 0,
            data: VecDeque::new(),
            recv_end: false,
            recv_dropped: false,
            trailers: None,
            reset: None,
            reset_by_peer: false,
            send_end: false,
            headers_sent: false,
            send_window,
            recv_window,
            recv_release: 0,
            content_length: None,
            received: 0,
            waker: None,
            wants_capacity: false,
            head: None,
            head_received: false,
            head_request: false,
        }
    }

    /// Closed in RFC 9113's sense: it no longer counts against
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub(crate) fn is_closed(&self) -> bool {
        self.reset.is_some() || (self.send_end && self.recv_end)
    }

    pub(crate) fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// Which end of the connection this codec is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// It accepts requests (odd streams opened by the peer).
    Server,
    /// It sends requests (odd streams opened here).
    Client,
}

/// What a client learns from the server's SETTINGS and GOAWAY.
#[derive(Debug)]
pub(crate) struct PeerLimits {
    /// The server's first SETTINGS frame was applied.
    pub settings_seen: bool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until said).
    pub max_streams: u32,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441).
    pub connect_protocol: bool,
    /// The server sent GOAWAY: no new stream may open.
    pub goaway: bool,
    /// The next stream id to open.
    pub next_id: u32,
    /// Tasks waiting for the first SETTINGS.
    pub waiters: Vec<Waker>,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            settings_seen: false,
            max_streams: u32::MAX,
            connect_protocol: false,
            goaway: false,
            next_id: 1,
            waiters: Vec::new(),
        }
    }
}

/// A connection's shared state.
#[derive(Debug)]
pub(crate) struct State {
    pub role: Role,
    /// The server's limits, on a client connection.
    pub peer: PeerLimits,
    pub streams: Vec<Stream>,
    /// Frames queued for the client.
    pub out: Vec<u8>,
    /// The connection's send window.
    pub send_window: i64,
    /// The client's SETTINGS_INITIAL_WINDOW_SIZE.
    pub peer_initial_window: i64,
    /// The client's SETTINGS_MAX_FRAME_SIZE.
    pub peer_max_frame: usize,
    /// What the client may still send on the connection.
    pub recv_window: i64,
    pub recv_release: i64,
    /// Our connection and stream windows, as configured.
    pub conn_window: i64,
    pub stream_window: i64,
    pub conn_waker: Option<Waker>,
    /// The connection is gone: every stream operation fails.
    pub closed: bool,
    /// It went because the peer broke the protocol (our GOAWAY's code).
    pub conn_error: Option<Reason>,
    /// Streams waiting for window or output room.
    pub wanting: usize,
    /// Envoy's `http2.*` stats, if counted.
    pub stats: Option<Arc<nuncio_stats::Http2Stats>>,
}

impl State {
    pub(crate) fn new(role: Role, conn_window: i64, stream_window: i64) -> Self {
        State {
            role,
            peer: PeerLimits::default(),
            streams: Vec::new(),
            out: Vec::new(),
            send_window: 65_535,
            peer_initial_window: 65_535,
            peer_max_frame: frame::DEFAULT_MAX_FRAME,
            recv_window: conn_window.max(65_535),
            recv_release: 0,
            conn_window: conn_window.max(65_535),
            stream_window,
            conn_waker: None,
            closed: false,
            conn_error: None,
            wanting: 0,
            stats: None,
        }
    }

    /// The index of stream `id` in the table.
    pub(crate) fn find(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    /// Streams that count against the concurrency limit.
    pub(crate) fn active(&self) -> usize {
        self.streams.iter().filter(|s| !s.is_closed()).count()
    }

    /// Wakes the connection task when output was queued onto an empty
    /// buffer (otherwise it is already due to write).
    pub(crate) fn queued(&mut self, was_empty: bool) {
        if was_empty {
            if let Some(w) = self.conn_waker.take() {
                w.wake();
            }
        }
    }

    /// Credits `n` bytes back to the connection window.
    pub(crate) fn release_conn(&mut self, n: i64) {
        self.recv_release += n;
        if self.recv_release >= self.conn_window / 2 {
            let was_empty = self.out.is_empty();
            frame::put_window_update(&mut self.out, 0, self.recv_release as u32);
            self.recv_window += self.recv_release;
            self.recv_release = 0;
            self.queued(was_empty);
        }
    }

    /// Credits `n` bytes the application took from stream `i`.
    pub(crate) fn release_stream(&mut self, i: usize, n: i64) {
        self.release_conn(n);
        let target = self.stream_window;
        let s = &mut self.streams[i];
        if s.recv_end || s.reset.is_some() {
            return;
        }
        s.recv_release += n;
        if s.recv_release >= target / 2 {
            let (id, inc) = (s.id, s.recv_release);
            s.recv_window += inc;
            s.recv_release = 0;
            let was_empty = self.out.is_empty();
            frame::put_window_update(&mut self.out, id, inc as u32);
            self.queued(was_empty);
        }
    }

    /// Drops stream `i`'s unread body, crediting the connection window.
    pub(crate) fn discard_data(&mut self, i: usize) {
        let n: usize = self.streams[i].data.drain(..).map(|b| b.len()).sum();
        if n > 0 {
            self.release_conn(n as i64);
        }
    }

    /// Queues a RST_STREAM (counted as `http2.tx_reset`).
    pub(crate) fn put_rst(&mut self, id: u32, reason: Reason) {
        frame::put_rst(&mut self.out, id, reason);
        if let Some(s) = &self.stats {
            s.tx_reset.inc();
        }
    }

    /// Queues a GOAWAY (counted as `http2.goaway_sent`).
    pub(crate) fn put_goaway(&mut self, last: u32, reason: Reason) {
        frame::put_goaway(&mut self.out, last, reason);
        if let Some(s) = &self.stats {
            s.goaway_sent.inc();
        }
    }

    /// Opens a stream (`http2.streams_active` goes up until it is removed).
    pub(crate) fn push_stream(&mut self, s: Stream) {
        self.streams.push(s);
        if let Some(s) = &self.stats {
            s.streams_active.inc();
        }
    }

    /// Resets stream `i` from our side (RST_STREAM).
    pub(crate) fn reset_stream(&mut self, i: usize, reason: Reason) {
        if self.streams[i].reset.is_some() {
            return;
        }
        let id = self.streams[i].id;
        let was_empty = self.out.is_empty();
        self.put_rst(id, reason);
        self.queued(was_empty);
        self.discard_data(i);
        let s = &mut self.streams[i];
        s.reset = Some(reason);
        s.wake();
    }

    /// Removes stream `i` if it is closed and no handle is left.
    pub(crate) fn remove_if_done(&mut self, i: usize) {
        let s = &self.streams[i];
        if s.refs == 0 && s.is_closed() {
            if s.wants_capacity {
                self.wanting -= 1;
            }
            self.streams.swap_remove(i);
            if let Some(s) = &self.stats {
                s.streams_active.dec();
            }
            // A graceful shutdown may be waiting for the last stream.
            if self.streams.is_empty() {
                self.queued(true);
            }
        }
    }

    /// How many bytes stream `i` may send now.
    pub(crate) fn capacity(&self, i: usize) -> usize {
        let s = &self.streams[i];
        let room = OUT_HIGH.saturating_sub(self.out.len()) as i64;
        s.send_window
            .min(self.send_window)
            .min(self.peer_max_frame as i64)
            .min(room)
            .max(0) as usize
    }

    /// Wakes every stream waiting for capacity.
    pub(crate) fn wake_wanting(&mut self) {
        if self.wanting == 0 {
            return;
        }
        for s in &mut self.streams {
            if s.wants_capacity {
                s.wants_capacity = false;
                s.wake();
            }
        }
        self.wanting = 0;
    }

    /// The connection is gone: wake every stream so its handles fail.
    pub(crate) fn close_all(&mut self) {
        self.closed = true;
        for s in &mut self.streams {
            s.wake();
        }
        self.wake_waiters();
    }

    /// Wakes the tasks waiting for the server's first SETTINGS.
    pub(crate) fn wake_waiters(&mut self) {
        for w in self.peer.waiters.drain(..) {
            w.wake();
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(s) = &self.stats {
            s.streams_active.add(-(self.streams.len() as i64));
        }
    }
}
