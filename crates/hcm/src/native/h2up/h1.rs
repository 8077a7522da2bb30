//! An HTTP/1.1 client's request to an HTTP/2 upstream: the body is read
//! off the client's socket by its framing (chunks decoded) while the
//! response is written back as HTTP/1.1 (chunked when the upstream gave no
//! length, its trailers in the last chunk).

use std::sync::Arc;

use nuncio_h1::{Framing, ResponseHead};
use nuncio_upstream::HostPool;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{exchange, request, Outcome, Params, Respond};
use crate::native::exchange::{Exchange, UpTunnel};
use crate::native::h2io::H2Send;
use crate::native::head::{self, BodyOut, ClientVersion};
use crate::native::relay::{relay, relay_chunked, Out};
use crate::native::upstream::Fail;
use crate::native::watch::until;
use crate::native::{bufpool, h2io};

/// The response side: an HTTP/1.1 client's socket.
struct H1Respond<'a, 'h, W> {
    w: &'a mut W,
    /// The filters' response phase.
    hook: Option<&'a mut crate::native::filtering::ResponseHook<'h>>,
    server: &'a str,
    suppress: bool,
    client_close: bool,
    client_10: bool,
    websocket: bool,
    draining: bool,
    chunked: bool,
    /// The connection closes after this response.
    close: bool,
}

impl<W> H1Respond<'_, '_, W> {
    /// Appends body bytes to `out`, as a chunk when the response is chunked.
    fn put_body(&self, out: &mut Vec<u8>, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        if self.chunked {
            h2io::push_hex(out, b.len());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(b);
        }
    }
}

impl<W: AsyncWrite + Unpin> Respond for H1Respond<'_, '_, W> {
    fn poll_gone(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        // The client's socket is the upload's while the head is awaited.
        std::task::Poll::Pending
    }

    async fn head(
        &mut self,
        r: &ResponseHead<'_>,
        service_ms: u64,
        upgraded: bool,
        end: bool,
        first: &[u8],
    ) -> Result<u16, Fail> {
        let body = if end || r.get("content-length").is_some() {
            BodyOut::AsIs
        } else if self.client_10 {
            BodyOut::Close
        } else {
            BodyOut::Chunked
        };
        self.chunked = body == BodyOut::Chunked;
        self.close = self.client_close
            || body == BodyOut::Close
            || (self.websocket && !upgraded)
            || self.draining;
        let mut out = bufpool::take_head(256 + 32 * r.headers.len());
        head::downstream_response(
            &mut out,
            r,
            self.server,
            (!self.suppress).then_some(service_ms),
            body,
            self.close,
            if self.client_10 {
                ClientVersion::Http10 {
                    keep_alive: !self.close,
                }
            } else {
                ClientVersion::Http11
            },
            upgraded,
            self.hook.as_mut().map(|h| h.edits(r.status, &r.headers)),
        );
        self.put_body(&mut out, first);
        let written = self.w.write_all(&out).await;
        bufpool::give_head(out);
        written.map_err(|_| Fail::Client)?;
        Ok(r.status)
    }

    async fn data(&mut self, b: &[u8]) -> Result<(), Fail> {
        if !self.chunked {
            return self.w.write_all(b).await.map_err(|_| Fail::Client);
        }
        let mut out = Vec::with_capacity(b.len() + 16);
        self.put_body(&mut out, b);
        self.w.write_all(&out).await.map_err(|_| Fail::Client)
    }

    async fn end(&mut self, trailers: Option<&nuncio_h2::Block>) -> Result<(), Fail> {
        if !self.chunked {
            return Ok(());
        }
        let mut last = b"0\r\n".to_vec();
        for (n, v) in trailers.iter().flat_map(|t| t.iter()) {
            last.extend_from_slice(n);
            last.extend_from_slice(b": ");
            last.extend_from_slice(v);
            last.extend_from_slice(b"\r\n");
        }
        last.extend_from_slice(b"\r\n");
        self.w.write_all(&last).await.map_err(|_| Fail::Client)
    }
}

impl Exchange<'_> {
    /// [`Exchange::run`] for an HTTP/2 cluster; `Ok(keep)` says whether
    /// the client connection may go on.
    pub(in crate::native) async fn run_h2(&mut self, pool: &Arc<HostPool>) -> Result<bool, Fail> {
        let r = request(&self.up_head)?;
        let end = self.framing == Framing::Empty;
        if self.expect_continue && !end && self.buf.is_empty() {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|_| Fail::Client)?;
            self.downstream_codes.record(100);
        }
        let (framing, pace, deadline) = (self.framing, self.pace, self.request_deadline);
        let (mut rd, mut wr) = tokio::io::split(&mut *self.stream);
        let buf = &mut *self.buf;
        let rd = &mut rd;
        let upload = move |mut tx: H2Send| async move {
            // A chunked body's trailers end the stream (gRPC-style).
            if framing == Framing::Chunked {
                let body = std::pin::pin!(relay_chunked(rd, buf, &mut tx, pace));
                return until(deadline, body)
                    .await?
                    .map_err(Fail::from_request_body);
            }
            let n = {
                let body = std::pin::pin!(relay(rd, buf, &mut tx, framing, Out::Same, pace));
                until(deadline, body)
                    .await?
                    .map_err(Fail::from_request_body)?
            };
            tx.shutdown().await.map_err(|_| Fail::Reset)?;
            Ok(n)
        };
        let mut respond = H1Respond {
            w: &mut wr,
            hook: self.hook.as_mut(),
            server: self.server,
            suppress: self.suppress,
            client_close: self.client_close,
            client_10: self.client_10,
            websocket: self.websocket,
            draining: self.drain.is_draining(),
            chunked: false,
            close: false,
        };
        let mut out = Outcome::default();
        let params = Params {
            pool,
            end,
            route_timeout: self.route_timeout,
            idle: self.pace.idle,
            tx_reset: self.upstream_tx_reset,
            log_response: self.log_response,
        };
        let result = exchange(params, r, upload, &mut respond, &mut out).await;
        let close = respond.close;
        self.status = out.status;
        self.service_ms = out.service_ms;
        self.sent = out.sent;
        self.received = out.received;
        self.head_sent = out.head_sent;
        self.resp_headers = out.resp_headers.take();
        result?;
        if let Some(t) = out.tunnel {
            self.upgraded = true;
            self.tunnel = Some(UpTunnel::H2(t));
            return Ok(false);
        }
        Ok(!close && !out.request_unfinished)
    }
}
