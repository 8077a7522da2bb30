//! Bodies crossing the upstream side: [`UpstreamBody`] is what we send,
//! [`PooledBody`] what we receive, and it gives its connection back to the
//! pool when it reaches its end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::h2::StreamSlot;
use crate::pool::{HostPool, Idle};
use crate::progress::BodyProgress;

/// A request body sent upstream.
#[derive(Debug)]
pub enum UpstreamBody {
    /// The downstream request's body, streamed through, reporting its
    /// progress (for the route and stream idle timeouts).
    Incoming(Incoming, Option<Arc<BodyProgress>>),
    /// A body held in memory.
    Full(Option<Bytes>),
}

impl UpstreamBody {
    /// An empty body.
    pub fn empty() -> Self {
        UpstreamBody::Full(None)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Incoming(b, None) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Incoming(b, Some(p)) => {
                let r = Pin::new(&mut *b).poll_frame(cx);
                match &r {
                    Poll::Ready(Some(Ok(_))) if b.is_end_stream() => p.ended(),
                    Poll::Ready(Some(Ok(_))) => p.moved(),
                    Poll::Ready(None) => p.ended(),
                    _ => {}
                }
                r
            }
            UpstreamBody::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Incoming(b, _) => b.is_end_stream(),
            UpstreamBody::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Incoming(b, _) => b.size_hint(),
            UpstreamBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            UpstreamBody::Full(None) => SizeHint::with_exact(0),
        }
    }
}

/// What a response body gives back when it ends.
#[derive(Debug)]
pub(crate) enum Release {
    /// Nothing (the connection is not reused).
    None,
    /// An HTTP/1.1 connection, back to its pool.
    Http1(Arc<HostPool>, Idle),
    /// A stream slot on an HTTP/2 connection, freed when dropped.
    Http2 {
        /// The slot.
        _slot: StreamSlot,
    },
}

/// A response body from a pooled connection.
#[derive(Debug)]
pub struct PooledBody {
    inner: Incoming,
    release: Release,
}

impl PooledBody {
    pub(crate) fn new(inner: Incoming, release: Release) -> Self {
        PooledBody { inner, release }
    }
}

impl PooledBody {
    fn release(&mut self) {
        if let Release::Http1(pool, idle) = std::mem::replace(&mut self.release, Release::None) {
            pool.release(idle);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            // Servers stop polling once `is_end_stream` is true, so the
            // connection goes back as soon as the last frame is out.
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.release = Release::None,
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
