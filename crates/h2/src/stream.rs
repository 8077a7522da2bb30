//! The application's handles on one stream: [`RecvStream`] (the request
//! body), [`SendResponse`] (the response head) and [`SendStream`] (the
//! response body). Each operation locks the connection's state briefly
//! and either queues frames onto its output or parks this task's waker.
//! When the last handle goes, an unfinished stream is reset for the
//! client (CANCEL, or NO_ERROR once the response is complete).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::frame::{self, Reason};
use crate::hpack::{self, Block};
use crate::state::{Shared, State};

/// Why a stream operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The stream was reset: by the client (`by_peer`) or by the codec
    /// because the client broke the protocol on it.
    #[error("stream reset ({reason})")]
    Reset {
        /// The RST_STREAM error code.
        reason: Reason,
        /// The client sent the reset.
        by_peer: bool,
    },
    /// The connection is gone.
    #[error("connection closed")]
    Closed,
    /// The connection ended because the peer broke the protocol (we sent
    /// GOAWAY with this code).
    #[error("connection error ({0})")]
    Protocol(Reason),
}

/// One handle's reference to its stream.
#[derive(Debug)]
pub(crate) struct Ref {
    pub(crate) shared: Arc<Shared>,
    id: u32,
}

impl Ref {
    pub(crate) fn new(shared: &Arc<Shared>, st: &mut State, i: usize) -> Ref {
        st.streams[i].refs += 1;
        Ref {
            shared: shared.clone(),
            id: st.streams[i].id,
        }
    }

    /// Runs `f` on the stream, or fails if it or the connection is gone.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut State, usize) -> Result<R, StreamError>,
    ) -> Result<R, StreamError> {
        let mut st = self.shared.lock();
        let i = st.find(self.id).ok_or(StreamError::Closed)?;
        f(&mut st, i)
    }
}

impl Drop for Ref {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let Some(i) = st.find(self.id) else { return };
        st.streams[i].refs -= 1;
        if st.streams[i].refs > 0 {
            return;
        }
        if !st.streams[i].is_closed() && !st.closed {
            let s = &st.streams[i];
            // A server's complete response leaves only the request body
            // unread (NO_ERROR); anything else is abandoned.
            let reason = if s.send_end && st.role == crate::state::Role::Server {
                Reason::NO_ERROR
            } else {
                Reason::CANCEL
            };
            st.reset_stream(i, reason);
        }
        st.discard_data(i);
        st.remove_if_done(i);
    }
}

pub(crate) fn failed(st: &State, i: usize) -> Option<StreamError> {
    let s = &st.streams[i];
    if let Some(reason) = s.reset {
        return Some(StreamError::Reset {
            reason,
            by_peer: s.reset_by_peer,
        });
    }
    st.closed.then_some(
        st.conn_error
            .map_or(StreamError::Closed, StreamError::Protocol),
    )
}

pub(crate) fn park(st: &mut State, i: usize, cx: &Context<'_>) {
    let s = &mut st.streams[i];
    match &s.waker {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => s.waker = Some(cx.waker().clone()),
    }
}

/// Queues `data` as one DATA frame on stream `i` (the caller checked the
/// windows); `fin` ends the stream.
fn put_data(st: &mut State, i: usize, data: &[u8], fin: bool) {
    let id = st.streams[i].id;
    let was_empty = st.out.is_empty();
    let flags = if fin { frame::flag::END_STREAM } else { 0 };
    frame::put_head(&mut st.out, data.len(), frame::kind::DATA, flags, id);
    st.out.extend_from_slice(data);
    st.queued(was_empty);
    st.send_window -= data.len() as i64;
    let s = &mut st.streams[i];
    s.send_window -= data.len() as i64;
    s.send_end |= fin;
}

/// The request body.
#[derive(Debug)]
pub struct RecvStream {
    r: Ref,
}

/// Sends the response head.
#[derive(Debug)]
pub struct SendResponse {
    r: Ref,
}

/// Sends the response body and trailers.
#[derive(Debug)]
pub struct SendStream {
    r: Ref,
}

/// A header block being written: fields are HPACK-encoded as added.
pub struct Fields<'a> {
    out: &'a mut Vec<u8>,
}

impl Fields<'_> {
    /// Adds a field; the name is lowercased on the way.
    pub fn add(&mut self, name: &[u8], value: &[u8]) {
        hpack::encode_field(self.out, name, value);
    }
}

/// Handles for a new stream: its body and its response sender.
pub(crate) fn open(shared: &Arc<Shared>, st: &mut State, i: usize) -> (RecvStream, SendResponse) {
    (
        RecvStream {
            r: Ref::new(shared, st, i),
        },
        SendResponse {
            r: Ref::new(shared, st, i),
        },
    )
}

impl RecvStream {
    /// A handle on stream `i`'s incoming body.
    pub(crate) fn on(shared: &Arc<Shared>, st: &mut State, i: usize) -> Self {
        RecvStream {
            r: Ref::new(shared, st, i),
        }
    }

    /// The next piece of the body (`None` at its end); its flow-control
    /// window goes back to the client as it is taken.
    pub fn poll_data(&mut self, cx: &Context<'_>) -> Poll<Option<Result<Bytes, StreamError>>> {
        let r = self.r.with(|st, i| {
            if let Some(b) = st.streams[i].data.pop_front() {
                st.release_stream(i, b.len() as i64);
                return Ok(Poll::Ready(Some(b)));
            }
            if let Some(e) = failed(st, i) {
                return Err(e);
            }
            if st.streams[i].recv_end {
                return Ok(Poll::Ready(None));
            }
            park(st, i, cx);
            Ok(Poll::Pending)
        });
        match r {
            Ok(Poll::Ready(b)) => Poll::Ready(b.map(Ok)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    /// The next piece of the body if one is already here (its window goes
    /// back as it is taken); never parks.
    pub fn try_data(&mut self) -> Option<Bytes> {
        self.r
            .with(|st, i| {
                let b = st.streams[i].data.pop_front();
                if let Some(b) = &b {
                    st.release_stream(i, b.len() as i64);
                }
                Ok(b)
            })
            .ok()
            .flatten()
    }

    /// The next piece of the body, awaited.
    pub async fn data(&mut self) -> Option<Result<Bytes, StreamError>> {
        std::future::poll_fn(|cx| self.poll_data(cx)).await
    }

    /// The trailers, once the body has ended (`None` if there were none).
    pub async fn trailers(&mut self) -> Result<Option<Block>, StreamError> {
        std::future::poll_fn(|cx| {
            let r = self.r.with(|st, i| {
                if let Some(e) = failed(st, i) {
                    return Err(e);
                }
                let s = &mut st.streams[i];
                if s.recv_end && s.data.is_empty() {
                    return Ok(Poll::Ready(s.trailers.take()));
                }
                park(st, i, cx);
                Ok(Poll::Pending)
            });
            match r {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(t)) => Poll::Ready(Ok(t)),
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await
    }

    /// True when the body has ended and nothing is left to read.
    pub fn is_end_stream(&self) -> bool {
        self.r
            .with(|st, i| Ok(st.streams[i].recv_end && st.streams[i].data.is_empty()))
            .unwrap_or(true)
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        let _ = self.r.with(|st, i| {
            st.streams[i].recv_dropped = true;
            st.discard_data(i);
            Ok(())
        });
    }
}

impl SendResponse {
    /// Resolves when the client resets the stream or the connection goes.
    pub fn poll_reset(&mut self, cx: &Context<'_>) -> Poll<Reason> {
        match self.r.with(|st, i| {
            if let Some(e) = failed(st, i) {
                return Err(e);
            }
            park(st, i, cx);
            Ok(())
        }) {
            Ok(()) => Poll::Pending,
            Err(StreamError::Reset { reason, .. }) => Poll::Ready(reason),
            Err(StreamError::Closed | StreamError::Protocol(_)) => Poll::Ready(Reason::CANCEL),
        }
    }

    /// True if the client has already reset the stream.
    pub fn is_reset(&self) -> bool {
        self.r
            .with(|st, i| Ok(failed(st, i).is_some()))
            .unwrap_or(true)
    }

    /// Sends the response head; `fields` adds the regular fields. With
    /// `end`, the response has no body.
    pub fn send_response(
        &mut self,
        status: u16,
        end: bool,
        fields: impl FnOnce(&mut Fields<'_>),
    ) -> Result<SendStream, StreamError> {
        self.send_head(end, |out| {
            hpack::encode_status(out, status);
            fields(&mut Fields { out });
        })
    }

    /// Sends a response head already HPACK-encoded (`:status` first),
    /// as [`hpack::encode_status`] and [`hpack::encode_field`] write it.
    pub fn send_block(&mut self, block: &[u8], end: bool) -> Result<SendStream, StreamError> {
        self.send_head(end, |out| out.extend_from_slice(block))
    }

    fn send_head(
        &mut self,
        end: bool,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<SendStream, StreamError> {
        self.r.with(|st, i| {
            if let Some(e) = failed(st, i) {
                return Err(e);
            }
            if st.streams[i].headers_sent {
                return Err(StreamError::Closed);
            }
            let (id, max) = (st.streams[i].id, st.peer_max_frame);
            let was_empty = st.out.is_empty();
            frame::put_headers(&mut st.out, id, end, max, encode);
            st.queued(was_empty);
            let s = &mut st.streams[i];
            s.headers_sent = true;
            s.send_end = end;
            Ok(SendStream {
                r: Ref::new(&self.r.shared, st, i),
            })
        })
    }

    /// Resets the stream.
    pub fn send_reset(&mut self, reason: Reason) {
        let _ = self.r.with(|st, i| {
            st.reset_stream(i, reason);
            Ok(())
        });
    }
}

impl SendStream {
    /// A handle on stream `i`'s outgoing body.
    pub(crate) fn on(shared: &Arc<Shared>, st: &mut State, i: usize) -> Self {
        SendStream {
            r: Ref::new(shared, st, i),
        }
    }

    /// Sends up to `data.len()` bytes as one DATA frame, as many as the
    /// windows and the output buffer allow; `end` ends the stream if all
    /// of `data` went. Pending (waker parked) when nothing can go.
    pub fn poll_send(
        &mut self,
        cx: &Context<'_>,
        data: &[u8],
        end: bool,
    ) -> Poll<Result<usize, StreamError>> {
        let r = self.r.with(|st, i| {
            if let Some(e) = failed(st, i) {
                return Err(e);
            }
            if st.streams[i].send_end {
                return Err(StreamError::Closed);
            }
            let n = st.capacity(i).min(data.len());
            if n == 0 && !data.is_empty() {
                let s = &mut st.streams[i];
                if !s.wants_capacity {
                    s.wants_capacity = true;
                    st.wanting += 1;
                }
                park(st, i, cx);
                return Ok(Poll::Pending);
            }
            put_data(st, i, &data[..n], end && n == data.len());
            Ok(Poll::Ready(n))
        });
        match r {
            Ok(Poll::Ready(n)) => Poll::Ready(Ok(n)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Sends all of `data` now if the windows allow it (returns false,
    /// sending nothing, if they do not).
    pub fn try_send_all(&mut self, data: &[u8], end: bool) -> Result<bool, StreamError> {
        // One lock for the check and the frame: this is every small body.
        self.r.with(|st, i| {
            if let Some(e) = failed(st, i) {
                return Err(e);
            }
            if st.streams[i].send_end {
                return Err(StreamError::Closed);
            }
            if st.capacity(i) < data.len() && !data.is_empty() {
                return Ok(false);
            }
            put_data(st, i, data, end);
            Ok(true)
        })
    }

    /// Ends the stream with trailers.
    pub fn send_trailers(
        &mut self,
        fields: impl FnOnce(&mut Fields<'_>),
    ) -> Result<(), StreamError> {
        self.r.with(|st, i| {
            if let Some(e) = failed(st, i) {
                return Err(e);
            }
            if st.streams[i].send_end {
                return Err(StreamError::Closed);
            }
            let (id, max) = (st.streams[i].id, st.peer_max_frame);
            let was_empty = st.out.is_empty();
            frame::put_headers(&mut st.out, id, true, max, |out| {
                fields(&mut Fields { out })
            });
            st.queued(was_empty);
            st.streams[i].send_end = true;
            Ok(())
        })
    }

    /// Resets the stream.
    pub fn send_reset(&mut self, reason: Reason) {
        let _ = self.r.with(|st, i| {
            st.reset_stream(i, reason);
            Ok(())
        });
    }

    /// True once our side has ended.
    pub fn is_ended(&self) -> bool {
        self.r
            .with(|st, i| Ok(st.streams[i].send_end || st.streams[i].reset.is_some()))
            .unwrap_or(true)
    }
}
