//! One HTTP/2 stream's exchange with an HTTP/1.1 upstream over a raw
//! pooled socket: the request head and body (DATA frames, re-chunked when
//! no length was given), the response head HPACK-encoded from the
//! upstream's bytes, the body as DATA frames, a WebSocket's tunnel; an
//! HTTP/2 cluster goes through `h2up` instead.

use super::*;

/// One stream's exchange with an upstream over a raw HTTP/1.1 socket.
pub(super) struct Exchange<'a> {
    pub(super) hcm: &'a Hcm,
    /// The cluster's codes: `upstream_rq_1xx` for interim responses.
    pub(super) upstream_codes: &'a nuncio_stats::CodeStats,
    /// The cluster's `upstream_rq_tx_reset` (an HTTP/2 stream given up).
    pub(super) upstream_tx_reset: &'a nuncio_stats::Counter,
    /// The filters' response phase, when the connection manager has any.
    pub(super) hook: Option<filtering::ResponseHook<'a>>,
    /// The access log wants the response head (`%RESP(...)%`).
    pub(super) log_response: bool,
    /// The client's body (taken by a WebSocket tunnel).
    pub(super) src: Option<H2Recv>,
    pub(super) up_head: Vec<u8>,
    pub(super) framing: Framing,
    pub(super) is_head: bool,
    pub(super) websocket: bool,
    pub(super) sent_at: Instant,
    pub(super) pace: Pace,
    /// When the whole request must have arrived (`request_timeout`).
    pub(super) request_deadline: Option<Instant>,
    pub(super) route_timeout: Option<Duration>,
    pub(super) done: Done,
    /// The client reset the stream.
    pub(super) reset_by_client: bool,
}

/// A response head taken off the upstream socket.
struct UpstreamHead {
    /// The client's response head, HPACK-encoded (bufpool head buffer).
    block: Vec<u8>,
    framing: Framing,
    /// The upstream will close after this response.
    up_close: bool,
    upgraded: bool,
}

impl Exchange<'_> {
    /// Sends the request and relays the response. On failure, says whether
    /// the response head had already gone to the client.
    pub(super) async fn run(
        &mut self,
        pool: &Arc<nuncio_upstream::HostPool>,
        respond: &mut SendResponse,
        idempotent: bool,
    ) -> Result<(), (Fail, bool)> {
        if let nuncio_upstream::Protocol::Http2 { .. } = pool.protocol() {
            return self.run_h2(pool, respond).await;
        }
        let (mut conn, mut ubuf, head) = loop {
            let mut conn = pool.checkout_raw().await.map_err(|e| (e.into(), false))?;
            conn.uses += 1;
            let mut ubuf = bufpool::take();
            // Until the response head: a client reset cancels the upstream
            // request (the socket is dropped, never reused).
            let r = tokio::select! {
                r = self.send_and_head(&mut conn, &mut ubuf) => r,
                _ = poll_fn(|cx| respond.poll_reset(cx)) => {
                    self.hcm.stats.rq_rx_reset.inc();
                    self.reset_by_client = true;
                    Err(Fail::Client)
                }
            };
            match r {
                Ok(head) => break (conn, ubuf, head),
                // The upstream closed this pooled socket while it idled: the
                // request never reached it, so try the next one.
                Err(Fail::Reset) if conn.reused && idempotent && self.done.status == 0 => {
                    tracing::debug!("pooled upstream socket was closed; retrying");
                    bufpool::give(ubuf);
                    pool.discard_raw(conn);
                }
                Err(e) => {
                    bufpool::give(ubuf);
                    pool.discard_raw_failed(conn, e.upstream_protocol_error(false));
                    return Err((e, false));
                }
            }
        };
        let end = head.framing == Framing::Empty && !head.upgraded;
        let sent = respond.send_block(&head.block, end);
        bufpool::give_head(head.block);
        let tx = match sent {
            Ok(tx) => tx,
            Err(_) => {
                bufpool::give(ubuf);
                pool.discard_raw(conn);
                return Err((Fail::Client, false));
            }
        };
        let mut sink = H2Send::new(tx);
        if head.upgraded {
            self.tunnel(conn, ubuf, sink).await;
            return Ok(());
        }
        if end {
            let reusable = !head.up_close && ubuf.is_empty();
            bufpool::give(ubuf);
            if reusable {
                pool.checkin_raw(conn);
            } else {
                pool.discard_raw(conn);
            }
            return Ok(());
        }
        let remaining = self.remaining();
        // Pinned here and borrowed by the timeout: moved into it, the
        // body future would be stored (and copied) twice.
        let r = {
            let mut body =
                std::pin::pin!(self.relay_body(&mut conn, &mut ubuf, &mut sink, head.framing));
            match remaining {
                Some(t) => deadline::within(t, body.as_mut())
                    .await
                    .unwrap_or(Err(Fail::Timeout)),
                None => body.await,
            }
        };
        match r {
            Ok(()) => {
                let reusable =
                    head.framing != Framing::UntilClose && !head.up_close && ubuf.is_empty();
                bufpool::give(ubuf);
                if reusable {
                    pool.checkin_raw(conn);
                } else {
                    pool.discard_raw(conn);
                }
                Ok(())
            }
            Err(e) => {
                tracing::debug!(error = ?e, "response aborted mid-body");
                sink.abort();
                bufpool::give(ubuf);
                pool.discard_raw_failed(conn, e.upstream_protocol_error(true));
                Err((e, true))
            }
        }
    }

    /// [`Exchange::run`] for an HTTP/2 cluster.
    async fn run_h2(
        &mut self,
        pool: &Arc<nuncio_upstream::HostPool>,
        respond: &mut SendResponse,
    ) -> Result<(), (Fail, bool)> {
        let mut out = crate::native::h2up::Outcome::default();
        let from = crate::native::h2up::FromH2 {
            hcm: self.hcm,
            src: &mut self.src,
            up_head: &self.up_head,
            framing: self.framing,
            pace: self.pace,
            request_deadline: self.request_deadline,
            route_timeout: self.route_timeout,
            tx_reset: self.upstream_tx_reset,
            hook: self.hook.as_mut(),
            log_response: self.log_response,
        };
        let r = crate::native::h2up::forward_h2(from, pool, respond, &mut out).await;
        self.done.status = out.status;
        self.done.service_ms = out.service_ms;
        self.done.sent = out.sent;
        self.done.received = out.received;
        self.done.resp_headers = out.resp_headers.take();
        self.reset_by_client = out.reset_by_client;
        r
    }

    /// What is left of the route timeout (which started when the request
    /// ended), if there is one.
    fn remaining(&self) -> Option<Duration> {
        self.route_timeout.map(|t| {
            t.saturating_sub(self.sent_at.elapsed())
                .max(Duration::from_millis(1))
        })
    }

    /// Writes the request (head and body) and reads the response head.
    async fn send_and_head(
        &mut self,
        conn: &mut RawConn,
        ubuf: &mut BytesMut,
    ) -> Result<UpstreamHead, Fail> {
        let up = &mut conn.stream;
        // The head, with the whole body when it is already here (one
        // write, as the HTTP/1.1 client path does).
        let mut first = std::mem::take(&mut self.up_head);
        if let (Framing::Length(n), Some(src)) = (self.framing, self.src.as_mut()) {
            if let Some(d) = src.try_now() {
                if d.len() as u64 == n {
                    first.extend_from_slice(&d);
                    self.framing = Framing::Empty;
                    self.done.received = n;
                } else {
                    src.put_back(d);
                }
            }
        }
        let written = up.write_all(&first).await;
        self.up_head = first;
        written.map_err(|_| Fail::Reset)?;
        if self.framing != Framing::Empty {
            let out = if self.framing == Framing::UntilClose {
                Out::Rechunk
            } else {
                Out::Same
            };
            let Some(src) = self.src.as_mut() else {
                return Err(Fail::Client);
            };
            if self.framing == Framing::UntilClose {
                self.done.received = {
                    let upload = std::pin::pin!(send_chunked(src, up, self.pace.idle));
                    until(self.request_deadline, upload).await??
                };
                return self.after_request(up, ubuf).await;
            }
            let mut pending = BytesMut::new();
            let upload = std::pin::pin!(relay(src, &mut pending, up, self.framing, out, self.pace));
            match until(self.request_deadline, upload).await? {
                Ok(n) => self.done.received = n,
                Err(e) => return Err(Fail::from_request_body(e)),
            }
        }
        self.after_request(up, ubuf).await
    }

    /// Reads the response head once the request is out.
    async fn after_request(
        &mut self,
        up: &mut nuncio_tls::CountedConn,
        ubuf: &mut BytesMut,
    ) -> Result<UpstreamHead, Fail> {
        // Envoy's route timeout runs from the end of the request.
        self.sent_at = Instant::now();
        if let Some((_, _, at)) = &mut self.done.upstream {
            *at = self.sent_at;
        }
        let timeout = self.route_timeout;
        let mut head = std::pin::pin!(self.read_head(up, ubuf));
        match timeout {
            Some(t) => deadline::within(t, head.as_mut())
                .await
                .unwrap_or(Err(Fail::Timeout)),
            None => head.await,
        }
    }

    /// Reads the response head (1xx other than 101 are skipped) and turns
    /// it into the client's HTTP/2 response.
    async fn read_head(
        &mut self,
        up: &mut nuncio_tls::CountedConn,
        ubuf: &mut BytesMut,
    ) -> Result<UpstreamHead, Fail> {
        read_response_head(up, ubuf, None, self.upstream_codes, |r| {
            let upgraded = self.websocket && r.status == 101;
            if r.status == 101 && !upgraded {
                return Err(Fail::Protocol);
            }
            let framing = response_framing(&r, if self.is_head { "HEAD" } else { "GET" })
                .map_err(|_| Fail::Protocol)?;
            let service_ms = self.sent_at.elapsed().as_millis() as u64;
            self.done.service_ms = Some(service_ms);
            let mut block = bufpool::take_head(64 + r.len);
            self.done.resp_headers = crate::native::capture(self.log_response, &r);
            let edits = self.hook.as_mut().map(|h| h.edits(r.status, &r.headers));
            self.done.status = downstream_head(
                &r,
                &self.hcm.config.server_name,
                (!self.hcm.config.suppress_envoy_headers).then_some(service_ms),
                upgraded,
                edits,
                &mut block,
            );
            Ok(UpstreamHead {
                block,
                framing: if upgraded { Framing::Empty } else { framing },
                up_close: r.close || framing == Framing::UntilClose,
                upgraded,
            })
        })
        .await
    }

    /// Relays the response body into DATA frames.
    async fn relay_body(
        &mut self,
        conn: &mut RawConn,
        ubuf: &mut BytesMut,
        sink: &mut H2Send,
        framing: Framing,
    ) -> Result<(), Fail> {
        // A small body already in hand goes out as one DATA frame.
        if let Framing::Length(n) = framing {
            if (ubuf.len() as u64) >= n && n <= 16 * 1024 {
                let sent = sink.send_last(&ubuf[..n as usize]).await;
                ubuf.advance(n as usize);
                self.done.sent = n;
                return sent.map_err(|_| Fail::Client);
            }
        }
        if framing == Framing::Chunked {
            self.done.sent =
                crate::native::relay::relay_chunked(&mut conn.stream, ubuf, sink, self.pace)
                    .await
                    .map_err(Fail::from_response_body)?;
            return Ok(());
        }
        match relay(&mut conn.stream, ubuf, sink, framing, Out::Same, self.pace).await {
            Ok(n) => self.done.sent = n,
            Err(e) => {
                // The client's side failed: its stream was reset.
                self.reset_by_client = matches!(e, RelayError::Dst(_));
                return Err(Fail::from_response_body(e));
            }
        }
        sink.shutdown().await.map_err(|_| Fail::Client)
    }

    /// After a WebSocket was accepted: bytes both ways until either side
    /// ends (outside the route timeout, as Envoy does for upgrades).
    async fn tunnel(&mut self, mut conn: RawConn, leftover: BytesMut, mut tx: H2Send) {
        let hcm = self.hcm;
        hcm.stats.cx_upgrades_total.inc();
        let _active = GaugeGuard::new(&hcm.stats.cx_upgrades_active);
        if !leftover.is_empty() && tx.write_all(&leftover).await.is_err() {
            return;
        }
        let Some(src) = self.src.take() else {
            return;
        };
        let mut down = H2Duplex { rx: src, tx };
        let _ = tokio::io::copy_bidirectional(&mut down, &mut conn.stream).await;
        let _ = down.shutdown().await;
    }
}
