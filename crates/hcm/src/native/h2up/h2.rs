//! An HTTP/2 client's stream to an HTTP/2 upstream: DATA frames (and the
//! client's trailers) go up as they come, the response's HEADERS, DATA
//! and trailers come back, each side paced by its own flow control. This
//! is the mesh's path (front proxy → sidecar) and gRPC's.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nuncio_h1::{Framing, ResponseHead};
use nuncio_h2::SendResponse;
use nuncio_upstream::HostPool;
use tokio::io::AsyncWriteExt;

use super::{exchange, request, Outcome, Params, Respond};
use crate::native::bufpool;
use crate::native::h2head::downstream_head;
use crate::native::h2io::{H2Duplex, H2Recv, H2Send};
use crate::native::io::Pace;
use crate::native::upstream::Fail;
use crate::native::watch::{idle_bounded, until};
use crate::Hcm;

/// The response side: the client's stream.
struct H2Respond<'a, 'h> {
    respond: &'a mut SendResponse,
    /// The filters' response phase.
    hook: Option<&'a mut crate::native::filtering::ResponseHook<'h>>,
    tx: Option<H2Send>,
    server: &'a str,
    suppress: bool,
    /// The client reset the stream.
    reset: bool,
}

impl Respond for H2Respond<'_, '_> {
    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.respond.poll_reset(cx) {
            Poll::Ready(_) => {
                self.reset = true;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    async fn head(
        &mut self,
        r: &ResponseHead<'_>,
        service_ms: u64,
        upgraded: bool,
        end: bool,
        first: &[u8],
    ) -> Result<u16, Fail> {
        let mut block = bufpool::take_head(64 + 48 * r.headers.len());
        let status = downstream_head(
            r,
            self.server,
            (!self.suppress).then_some(service_ms),
            upgraded,
            self.hook.as_mut().map(|h| h.edits(r.status, &r.headers)),
            &mut block,
        );
        let sent = self.respond.send_block(&block, end);
        bufpool::give_head(block);
        let mut tx = H2Send::new(sent.map_err(|_| Fail::Client)?);
        if !first.is_empty() {
            tx.write_all(first).await.map_err(|_| Fail::Client)?;
        }
        self.tx = Some(tx);
        Ok(status)
    }

    async fn data(&mut self, b: &[u8]) -> Result<(), Fail> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(Fail::Client);
        };
        tx.write_all(b).await.map_err(|_| Fail::Client)
    }

    async fn end(&mut self, trailers: Option<&nuncio_h2::Block>) -> Result<(), Fail> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(Fail::Client);
        };
        match trailers {
            Some(t) if !t.is_empty() => tx.send_trailers(t.iter()).map_err(|_| Fail::Client),
            _ => tx.shutdown().await.map_err(|_| Fail::Client),
        }
    }
}

/// What an HTTP/2 client's request brings to the exchange.
pub(in crate::native) struct FromH2<'a, 'h> {
    pub(in crate::native) hcm: &'a Hcm,
    /// The client's body; taken by an accepted WebSocket's tunnel.
    pub(in crate::native) src: &'a mut Option<H2Recv>,
    /// The upstream head composed by `head.rs`.
    pub(in crate::native) up_head: &'a [u8],
    pub(in crate::native) framing: Framing,
    pub(in crate::native) pace: Pace,
    pub(in crate::native) request_deadline: Option<Instant>,
    pub(in crate::native) route_timeout: Option<Duration>,
    /// The cluster's `upstream_rq_tx_reset`.
    pub(in crate::native) tx_reset: &'a nuncio_stats::Counter,
    /// The filters' response phase.
    pub(in crate::native) hook: Option<&'a mut crate::native::filtering::ResponseHook<'h>>,
    /// The access log wants the response head (`%RESP(...)%`).
    pub(in crate::native) log_response: bool,
}

/// Forwards an HTTP/2 client's request to an HTTP/2 cluster's `pool`. On
/// failure, says whether the response head had already gone out (the
/// stream is then reset, never left looking complete).
pub(in crate::native) async fn forward(
    x: FromH2<'_, '_>,
    pool: &Arc<HostPool>,
    respond: &mut SendResponse,
    out: &mut Outcome,
) -> Result<(), (Fail, bool)> {
    let r = request(x.up_head).map_err(|e| (e, false))?;
    let (pace, deadline) = (x.pace, x.request_deadline);
    let src = &mut *x.src;
    let upload = |mut tx: H2Send| async move {
        let Some(src) = src.as_mut() else {
            return Err(Fail::Client);
        };
        let body = std::pin::pin!(send_body(src, &mut tx, pace.idle));
        until(deadline, body).await?
    };
    let mut h2 = H2Respond {
        respond,
        hook: x.hook,
        tx: None,
        server: &x.hcm.config.server_name,
        suppress: x.hcm.config.suppress_envoy_headers,
        reset: false,
    };
    let params = Params {
        pool,
        end: x.framing == Framing::Empty,
        route_timeout: x.route_timeout,
        idle: pace.idle,
        tx_reset: x.tx_reset,
        log_response: x.log_response,
    };
    let result = exchange(params, r, upload, &mut h2, out).await;
    out.reset_by_client = h2.reset;
    if h2.reset {
        x.hcm.stats.rq_rx_reset.inc();
    }
    if let Err(e) = result {
        if out.head_sent {
            if let Some(tx) = h2.tx.as_mut() {
                tx.abort();
            }
        }
        return Err((e, out.head_sent));
    }
    if let (Some(mut up), Some(tx)) = (out.tunnel.take(), h2.tx.take()) {
        let hcm = x.hcm;
        hcm.stats.cx_upgrades_total.inc();
        let _active = nuncio_stats::GaugeGuard::new(&hcm.stats.cx_upgrades_active);
        if let Some(rx) = x.src.take() {
            let mut down = H2Duplex { rx, tx };
            let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            let _ = down.shutdown().await;
        }
    }
    Ok(())
}

/// Sends the client's DATA frames upstream as they come, then its
/// trailers (gRPC keeps them), or the end of the stream.
async fn send_body(src: &mut H2Recv, tx: &mut H2Send, idle: Option<Duration>) -> Result<u64, Fail> {
    loop {
        let next = idle_bounded(idle, src.data()).await?;
        match next {
            None => break,
            Some(Ok(d)) if d.is_empty() => {}
            Some(Ok(d)) => tx.write_all(&d).await.map_err(|_| Fail::Reset)?,
            Some(Err(_)) => return Err(Fail::Client),
        }
    }
    let trailers = src.trailers().await.map_err(|_| Fail::Client)?;
    let fields: Vec<(&[u8], &[u8])> = trailers.iter().flat_map(|t| t.iter()).collect();
    if fields.is_empty() {
        tx.shutdown().await.map_err(|_| Fail::Reset)?;
    } else {
        tx.send_trailers(fields).map_err(|_| Fail::Reset)?;
    }
    Ok(src.total)
}
