//! The upstream side of an exchange, shared by the HTTP/1 and HTTP/2
//! downstream paths: why forwarding failed (and Envoy's local reply for
//! it), and reading a response head off an upstream socket.

use std::future::Future;
use std::task::Poll;

use bytes::{Buf, BytesMut};
use nuncio_h1::{parse_response, H1Error};
use nuncio_tls::CountedConn as TcpStream;
use nuncio_upstream::{ResetReason, UpstreamError};

use super::io::read_some;
use super::relay::RelayError;
use super::watch::ClientWatch;
use crate::flags;

/// Why forwarding failed.
#[derive(Debug)]
pub(super) enum Fail {
    Timeout,
    /// The connection was not made: `ConnectionFailure` or `ConnectionTimeout`.
    Connect(ResetReason),
    Reset,
    /// An HTTP/2 upstream stream failed (reset, or its connection ended
    /// or broke the protocol).
    Stream(ResetReason),
    Protocol,
    Client,
    /// No body bytes moved for `stream_idle_timeout` (the client's
    /// upload, or the upstream's response).
    StreamIdle,
    /// The whole request did not arrive within `request_timeout`.
    RequestTimeout,
    BadRequestBody(H1Error),
}

impl Fail {
    /// The client was too slow (`stream_idle_timeout` on its upload,
    /// `request_timeout`): a downstream timeout, not an upstream response
    /// code.
    pub(super) fn is_downstream_timeout(&self) -> bool {
        matches!(self, Fail::StreamIdle | Fail::RequestTimeout)
    }

    /// Whether the upstream broke HTTP/1.1 (Envoy's
    /// `upstream_cx_protocol_error`): a malformed response, or one cut
    /// short after it started.
    pub(super) fn upstream_protocol_error(&self, response_started: bool) -> bool {
        matches!(
            self,
            Fail::Protocol | Fail::Stream(ResetReason::ProtocolError)
        ) || (response_started && matches!(self, Fail::Reset))
    }

    /// The failure of relaying the request body (client → upstream).
    pub(super) fn from_request_body(e: RelayError) -> Fail {
        match e {
            RelayError::Src(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                tracing::debug!("client stalled while sending the body (stream_idle_timeout)");
                Fail::StreamIdle
            }
            RelayError::Src(e) => {
                tracing::debug!(error = %e, "client went away while sending the body");
                Fail::Client
            }
            RelayError::Dst(e) => {
                tracing::debug!(error = %e, "upstream stopped taking the body");
                Fail::Reset
            }
            RelayError::Framing(e) => Fail::BadRequestBody(e),
        }
    }

    /// The failure of relaying the response body (upstream → client).
    pub(super) fn from_response_body(e: RelayError) -> Fail {
        match e {
            RelayError::Dst(e) => {
                tracing::debug!(error = %e, "client went away during the response");
                Fail::Client
            }
            RelayError::Src(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                tracing::debug!("upstream stalled mid-body (stream_idle_timeout)");
                Fail::StreamIdle
            }
            RelayError::Src(e) => {
                tracing::debug!(error = %e, "upstream failed mid-body");
                Fail::Reset
            }
            RelayError::Framing(e) => {
                tracing::debug!(error = %e, "upstream sent a malformed body");
                Fail::Protocol
            }
        }
    }

    /// Envoy's local reply for this failure (status, response flag, body),
    /// counting the cluster's and host's stats for it. `status` is what the
    /// client was already sent, if anything (0 if not).
    pub(super) fn local_reply(
        &self,
        cluster: &nuncio_cluster::Cluster,
        host: &nuncio_cluster::Host,
        status: u16,
    ) -> (u16, flags::ResponseFlags, &'static str) {
        match self {
            Fail::Timeout => {
                cluster.stats.rq_timeout.inc();
                host.stats.rq_timeout.inc();
                (504, flags::UPSTREAM_TIMEOUT, "upstream request timeout")
            }
            Fail::Connect(reason) => (
                503,
                flags::UPSTREAM_CONNECT_FAILURE,
                reason.local_reply_body(),
            ),
            // An HTTP/1.1 upstream that closes is no stream reset: Envoy
            // counts its connection's end, not `upstream_rq_rx_reset`.
            Fail::Reset => (
                503,
                flags::UPSTREAM_TERMINATION,
                ResetReason::ConnectionTermination.local_reply_body(),
            ),
            Fail::Stream(reason) => {
                // A stream reset (an HTTP/2 connection's end is none).
                if *reason != ResetReason::ConnectionTermination {
                    cluster.stats.rq_rx_reset.inc();
                }
                let (status, flag) = match reason {
                    ResetReason::ProtocolError => (502, flags::UPSTREAM_RESET),
                    ResetReason::ConnectionTermination => (503, flags::UPSTREAM_TERMINATION),
                    _ => (503, flags::UPSTREAM_RESET),
                };
                (status, flag, reason.local_reply_body())
            }
            Fail::Protocol => (
                502,
                flags::UPSTREAM_RESET,
                ResetReason::ProtocolError.local_reply_body(),
            ),
            Fail::StreamIdle => (408, flags::STREAM_IDLE_TIMEOUT, "stream timeout"),
            Fail::RequestTimeout => (408, flags::NONE, "request timeout"),
            Fail::Client | Fail::BadRequestBody(_) => {
                (status.max(400), flags::DOWNSTREAM_TERMINATION, "")
            }
        }
    }
}

/// Reads an upstream response head into `ubuf`, skipping 1xx responses
/// other than 101, and hands it to `take`, which returns what the caller
/// keeps; the head's bytes are then consumed.
/// Each interim response skipped is counted in `interim` (the cluster's
/// `upstream_rq_1xx`, as Envoy counts it).
pub(super) async fn read_response_head<T>(
    up: &mut TcpStream,
    ubuf: &mut BytesMut,
    mut client: Option<&mut ClientWatch<'_>>,
    interim: &nuncio_stats::CodeStats,
    take: impl FnOnce(nuncio_h1::ResponseHead<'_>) -> Result<T, Fail>,
) -> Result<T, Fail> {
    loop {
        if ubuf.is_empty() {
            // The wait for the upstream's answer: a client that leaves
            // meanwhile cancels it ([`Fail::Client`]).
            let mut read = std::pin::pin!(read_some(up, ubuf, None));
            let got = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = read.as_mut().poll(cx) {
                    return Poll::Ready(Ok(r));
                }
                match client.as_mut().map(|w| w.poll_left(cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(Err(Fail::Client)),
                    _ => Poll::Pending,
                }
            })
            .await?;
            match got {
                Ok(0) | Err(_) => return Err(Fail::Reset),
                Ok(_) => {}
            }
        }
        // Most responses fit 128 header slots on the stack; a larger one
        // is parsed again with room for 1,000.
        let parsed = match parse_response(ubuf, 128, 256 * 1024) {
            Err(H1Error::TooLarge) => parse_response(ubuf, 1000, 256 * 1024),
            other => other,
        }
        .map_err(|_| Fail::Protocol)?;
        let Some(r) = parsed else {
            match read_some(up, ubuf, None).await {
                Ok(0) | Err(_) => return Err(Fail::Reset),
                Ok(_) => continue,
            }
        };
        if (100..200).contains(&r.status) && r.status != 101 {
            interim.record(r.status);
            let n = r.len;
            ubuf.advance(n);
            continue;
        }
        let len = r.len;
        let kept = take(r)?;
        ubuf.advance(len);
        return Ok(kept);
    }
}

impl From<UpstreamError> for Fail {
    fn from(e: UpstreamError) -> Self {
        let reason = e.reset_reason();
        match e {
            _ if reason.is_connect_failure() => Fail::Connect(reason),
            UpstreamError::H2Open(_) => Fail::Stream(reason),
            _ => Fail::Reset,
        }
    }
}
