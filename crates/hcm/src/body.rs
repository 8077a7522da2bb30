//! The response body sent downstream: a local reply held in memory or an
//! upstream body streamed through with the route's deadline. When it ends,
//! fails or is dropped (client gone), it records the request's timings and
//! writes the access log line.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use nuncio_cluster::{Cluster, Host};
use nuncio_stats::GaugeGuard;
use nuncio_upstream::PooledBody;
use tokio::time::Sleep;

use crate::access_log::LogEntry;
use crate::Hcm;

/// Error type of [`ProxyBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The upstream side of a request, for stats when it completes.
#[derive(Debug)]
pub(crate) struct UpstreamDone {
    pub cluster: Arc<Cluster>,
    pub host: Arc<Host>,
    pub sent_at: Instant,
    pub _cluster_active: GaugeGuard,
    pub _host_active: GaugeGuard,
}

/// What to record when the response is over.
#[derive(Debug)]
pub(crate) struct Completion {
    pub hcm: Arc<Hcm>,
    pub start: Instant,
    pub _active: GaugeGuard,
    pub upstream: Option<UpstreamDone>,
    pub log: Option<Box<LogEntry>>,
}

impl Completion {
    fn finish(self, sent: u64, complete: bool) {
        let now = Instant::now();
        // Envoy records the times of requests that completed.
        if complete {
            self.hcm.stats.rq_time.record(now - self.start);
        }
        if let Some(u) = &self.upstream {
            if complete {
                u.cluster.stats.rq_time.record(now - u.sent_at);
            }
            // An unfinished HTTP/2 upstream stream is reset (Envoy counts
            // no reset for an HTTP/1.1 one: its connection just closes).
            let h2 = matches!(
                u.cluster.config.protocol,
                nuncio_config::UpstreamProtocol::Http2(_)
            );
            if !complete && h2 {
                u.cluster.stats.rq_tx_reset.inc();
            }
        }
        if !complete {
            self.hcm.stats.rq_rx_reset.inc();
        }
        if let (Some(mut log), Some(logger)) = (self.log, self.hcm.access_log.as_ref()) {
            log.bytes_sent = sent;
            log.duration = now - self.start;
            if !complete && log.flags == "-" {
                log.flags = "DC";
            }
            logger.log(&log);
        }
    }
}

enum Kind {
    Full(Option<Bytes>),
    Upstream {
        body: PooledBody,
        deadline: Option<Pin<Box<Sleep>>>,
        /// `stream_idle_timeout` and its timer, pushed back by each frame.
        idle: Option<(Duration, Pin<Box<Sleep>>)>,
    },
}

/// The downstream response body.
pub struct ProxyBody {
    kind: Kind,
    sent: u64,
    ended: bool,
    done: Option<Completion>,
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyBody")
            .field("sent", &self.sent)
            .finish()
    }
}

impl ProxyBody {
    /// A body held in memory.
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        ProxyBody {
            kind: Kind::Full(if b.is_empty() { None } else { Some(b) }),
            sent: 0,
            ended: false,
            done: None,
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        ProxyBody {
            kind: Kind::Full(None),
            sent: 0,
            ended: false,
            done: None,
        }
    }

    /// An upstream body, ended early at the route's `deadline` or after
    /// `idle` without a frame.
    pub(crate) fn upstream(
        body: PooledBody,
        deadline: Option<tokio::time::Instant>,
        idle: Option<Duration>,
    ) -> Self {
        ProxyBody {
            kind: Kind::Upstream {
                body,
                deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
                idle: idle.map(|i| (i, Box::pin(tokio::time::sleep(i)))),
            },
            sent: 0,
            ended: false,
            done: None,
        }
    }

    pub(crate) fn set_completion(&mut self, c: Completion) {
        self.done = Some(c);
    }

    fn end(&mut self, complete: bool) {
        self.ended = true;
        if let Some(c) = self.done.take() {
            c.finish(self.sent, complete);
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        let complete = self.ended || self.is_end_stream();
        if let Some(c) = self.done.take() {
            c.finish(self.sent, complete);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let r: Poll<Option<Result<Frame<Bytes>, BoxError>>> = match &mut this.kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
            Kind::Upstream {
                body,
                deadline,
                idle,
            } => {
                if let Some((_, t)) = idle {
                    if t.as_mut().poll(cx).is_ready() {
                        tracing::debug!("upstream stalled mid-body (stream_idle_timeout)");
                        if let Some(c) = this.done.as_ref() {
                            c.hcm.stats.rq_idle_timeout.inc();
                        }
                        this.end(false);
                        return Poll::Ready(Some(Err("stream idle timeout".into())));
                    }
                }
                if let Some(d) = deadline {
                    if d.as_mut().poll(cx).is_ready() {
                        if let Some(u) = this.done.as_ref().and_then(|c| c.upstream.as_ref()) {
                            u.cluster.stats.rq_timeout.inc();
                            u.host.stats.rq_timeout.inc();
                        }
                        this.end(false);
                        return Poll::Ready(Some(Err("upstream request timeout".into())));
                    }
                }
                match Pin::new(body).poll_frame(cx) {
                    Poll::Ready(Some(Err(e))) => {
                        if let Some(u) = this.done.as_ref().and_then(|c| c.upstream.as_ref()) {
                            // A stream reset; an HTTP/1.1 upstream's close
                            // is not one (Envoy's count).
                            if matches!(
                                u.cluster.config.protocol,
                                nuncio_config::UpstreamProtocol::Http2(_)
                            ) {
                                u.cluster.stats.rq_rx_reset.inc();
                            }
                        }
                        if let Some(c) = this.done.as_ref() {
                            // The response is aborted (and `end(false)`
                            // below counts the reset that comes back).
                            c.hcm.stats.rq_tx_reset.inc();
                        }
                        this.end(false);
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    Poll::Ready(Some(Ok(f))) => {
                        if let Some((i, t)) = idle {
                            t.as_mut().reset(tokio::time::Instant::now() + *i);
                        }
                        Poll::Ready(Some(Ok(f)))
                    }
                    other => other.map(|o| o.map(|r| r.map_err(Into::into))),
                }
            }
        };
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.sent += d.len() as u64;
                }
                if this.is_end_stream() {
                    this.end(true);
                }
            }
            Poll::Ready(None) => this.end(true),
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Upstream { body, .. } => body.size_hint(),
        }
    }
}
