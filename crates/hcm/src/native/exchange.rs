//! One request/response exchange with an upstream on the native HTTP/1.1
//! path: send the head and body by their framing, read the response head
//! (answering `100-continue`), relay the body back, and hand a 101's
//! sockets to the tunnel.

use super::*;

/// The upstream side of an accepted WebSocket.
pub(super) enum UpTunnel {
    /// An HTTP/1.1 socket after its 101, and the bytes it sent past its head.
    H1(RawConn, BytesMut),
    /// An HTTP/2 extended CONNECT stream.
    H2(super::h2io::H2Duplex),
}

/// One request/response exchange with an upstream.
pub(super) struct Exchange<'a> {
    pub(super) stream: &'a mut TcpStream,
    pub(super) buf: &'a mut BytesMut,
    pub(super) up_head: Vec<u8>,
    pub(super) framing: Framing,
    pub(super) is_head: bool,
    pub(super) idempotent: bool,
    pub(super) expect_continue: bool,
    pub(super) websocket: bool,
    pub(super) client_close: bool,
    pub(super) client_10: bool,
    /// Once draining, the response closes the connection.
    pub(super) drain: &'a crate::drain::Drain,
    pub(super) server: &'a str,
    pub(super) suppress: bool,
    pub(super) sent_at: Instant,
    /// Body read size and `stream_idle_timeout`.
    pub(super) pace: Pace,
    /// When the whole request must have arrived (`request_timeout`).
    pub(super) request_deadline: Option<Instant>,
    /// The route timeout, from request end to response end.
    pub(super) route_timeout: Option<std::time::Duration>,
    pub(super) head_sent: bool,
    pub(super) status: u16,
    pub(super) service_ms: Option<u64>,
    pub(super) sent: u64,
    pub(super) received: u64,
    pub(super) upgraded: bool,
    /// After an accepted WebSocket: the upstream side of the tunnel.
    pub(super) tunnel: Option<UpTunnel>,
    /// The connection manager's codes (`downstream_rq_1xx` for the `100
    /// Continue` sent) and the cluster's (`upstream_rq_1xx` for the
    /// upstream's interim responses), as Envoy counts them.
    pub(super) downstream_codes: &'a nuncio_stats::CodeStats,
    pub(super) upstream_codes: &'a nuncio_stats::CodeStats,
    /// The cluster's `upstream_rq_tx_reset` (an HTTP/2 stream given up).
    pub(super) upstream_tx_reset: &'a nuncio_stats::Counter,
    /// The filters' response phase, when the connection manager has any.
    pub(super) hook: Option<super::filtering::ResponseHook<'a>>,
    /// The access log wants the response head (`%RESP(...)%`).
    pub(super) log_response: bool,
    /// The response head, kept for the access log.
    pub(super) resp_headers: super::Capture,
}

impl Exchange<'_> {
    /// Runs the exchange; `Ok(keep)` says whether the client connection may go on.
    pub(super) async fn run(
        &mut self,
        pool: &Arc<nuncio_upstream::HostPool>,
    ) -> Result<bool, Fail> {
        if let Protocol::Http2 { .. } = pool.protocol() {
            return self.run_h2(pool).await;
        }
        let idempotent = self.idempotent && self.framing == Framing::Empty;
        loop {
            let mut conn = pool.checkout_raw().await?;
            conn.uses += 1;
            let mut ubuf = bufpool::take();
            let result = self.send_and_receive(&mut conn, &mut ubuf).await;
            if !self.upgraded {
                bufpool::give(std::mem::take(&mut ubuf));
            }
            match result {
                // The upstream closed this pooled socket while it idled: the
                // request never reached it. Try the next one (each stale
                // socket is discarded, so this ends with a fresh connection).
                Err(Fail::Reset)
                    if conn.reused && idempotent && self.status == 0 && !self.head_sent =>
                {
                    tracing::debug!("pooled upstream socket was closed; retrying");
                    pool.discard_raw(conn);
                    continue;
                }
                Err(e) => {
                    pool.discard_raw_failed(conn, e.upstream_protocol_error(self.status != 0));
                    return Err(e);
                }
                Ok(_) if self.upgraded => {
                    self.tunnel = Some(UpTunnel::H1(conn, ubuf));
                    return Ok(false);
                }
                Ok((reusable, keep)) => {
                    if reusable {
                        pool.checkin_raw(conn);
                    } else {
                        pool.discard_raw(conn);
                    }
                    return Ok(keep);
                }
            }
        }
    }

    /// Returns (upstream socket reusable, client connection may go on).
    async fn send_and_receive(
        &mut self,
        conn: &mut RawConn,
        ubuf: &mut BytesMut,
    ) -> Result<(bool, bool), Fail> {
        let up = &mut conn.stream;
        // Request head, with whatever body bytes are already here.
        let mut first = std::mem::take(&mut self.up_head);
        if let Framing::Length(n) = self.framing {
            if !self.expect_continue && (self.buf.len() as u64) >= n && n <= 16 * 1024 {
                first.extend_from_slice(&self.buf[..n as usize]);
                self.buf.advance(n as usize);
                self.framing = Framing::Empty;
                self.received = n;
            }
        }
        let write = up.write_all(&first).await;
        self.up_head = first;
        write.map_err(|_| Fail::Reset)?;
        if self.framing != Framing::Empty {
            if self.expect_continue && self.buf.is_empty() {
                self.stream
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await
                    .map_err(|_| Fail::Client)?;
                self.downstream_codes.record(100);
            }
            let upload = std::pin::pin!(relay(
                self.stream,
                self.buf,
                up,
                self.framing,
                Out::Same,
                self.pace,
            ));
            match until(self.request_deadline, upload).await? {
                Ok(n) => self.received = n,
                Err(e) => return Err(Fail::from_request_body(e)),
            }
        }
        // Envoy's route timeout runs from the end of the request to the
        // end of the response (an upload is guarded by stream_idle_timeout).
        // Pinned here and borrowed by the timeout: moved into it, the
        // response future would be stored twice.
        let route_timeout = self.route_timeout;
        let receive = std::pin::pin!(self.receive(up, ubuf));
        match route_timeout {
            Some(t) => deadline::within(t, receive)
                .await
                .unwrap_or(Err(Fail::Timeout)),
            None => receive.await,
        }
    }

    /// Reads the response and relays it; returns (upstream socket reusable,
    /// client connection may go on).
    async fn receive(
        &mut self,
        up: &mut TcpStream,
        ubuf: &mut BytesMut,
    ) -> Result<(bool, bool), Fail> {
        // Response head (1xx other than 101 are skipped), rewritten.
        let mut client = ClientWatch::new(self.stream, self.buf);
        let (framing, body_out, close, up_close, upgraded, mut out) =
            read_response_head(up, ubuf, Some(&mut client), self.upstream_codes, |r| {
                let framing = response_framing(&r, if self.is_head { "HEAD" } else { "GET" })
                    .map_err(|_| Fail::Protocol)?;
                let upgraded = r.status == 101 && self.websocket;
                let body_out = match framing {
                    Framing::Chunked | Framing::UntilClose if self.client_10 => BodyOut::Close,
                    Framing::Chunked => BodyOut::Chunked,
                    Framing::UntilClose => BodyOut::Chunked,
                    _ => BodyOut::AsIs,
                };
                let close = self.client_close
                    || body_out == BodyOut::Close
                    || (self.websocket && !upgraded)
                    || self.drain.is_draining();
                let service_ms = self.sent_at.elapsed().as_millis() as u64;
                self.service_ms = Some(service_ms);
                let service = (!self.suppress).then_some(service_ms);
                let mut out = bufpool::take_head(r.len + 128);
                self.resp_headers = super::capture(self.log_response, &r);
                let edits = self.hook.as_mut().map(|h| h.edits(r.status, &r.headers));
                head::downstream_response(
                    &mut out,
                    &r,
                    self.server,
                    service,
                    body_out,
                    close,
                    if self.client_10 {
                        head::ClientVersion::Http10 { keep_alive: !close }
                    } else {
                        head::ClientVersion::Http11
                    },
                    upgraded,
                    edits,
                );
                self.status = r.status;
                let up_close = r.close || framing == Framing::UntilClose;
                Ok((framing, body_out, close, up_close, upgraded, out))
            })
            .await?;
        // Small fixed-length bodies go out with the head in one write.
        let mut framing = framing;
        if let Framing::Length(n) = framing {
            if (ubuf.len() as u64) >= n && n <= 16 * 1024 {
                out.extend_from_slice(&ubuf[..n as usize]);
                ubuf.advance(n as usize);
                self.sent = n;
                framing = Framing::Empty;
            }
        }
        let written = self.stream.write_all(&out).await;
        bufpool::give_head(out);
        written.map_err(|_| Fail::Client)?;
        self.head_sent = true;
        if upgraded {
            self.upgraded = true;
            return Ok((false, false));
        }
        let out = match body_out {
            BodyOut::Close if framing == Framing::Chunked => Out::Dechunk,
            BodyOut::Chunked if framing == Framing::UntilClose => Out::Rechunk,
            _ => Out::Same,
        };
        match relay(up, ubuf, self.stream, framing, out, self.pace).await {
            Ok(n) => self.sent += n,
            Err(e) => return Err(Fail::from_response_body(e)),
        }
        let reusable = framing != Framing::UntilClose && !up_close && ubuf.is_empty();
        Ok((reusable, !close))
    }

    /// After a 101 (and outside the route timeout): bytes both ways until
    /// either side closes.
    pub(super) async fn tunnel(&mut self) {
        let (mut conn, leftover) = match self.tunnel.take() {
            Some(UpTunnel::H1(conn, leftover)) => (conn, leftover),
            Some(UpTunnel::H2(mut t)) => {
                if !self.buf.is_empty() {
                    if t.write_all(self.buf).await.is_err() {
                        return;
                    }
                    self.buf.clear();
                }
                let _ = tokio::io::copy_bidirectional(self.stream, &mut t).await;
                return;
            }
            None => return,
        };
        let up = &mut conn.stream;
        if !leftover.is_empty() && self.stream.write_all(&leftover).await.is_err() {
            return;
        }
        if !self.buf.is_empty() {
            if up.write_all(self.buf).await.is_err() {
                return;
            }
            self.buf.clear();
        }
        let _ = tokio::io::copy_bidirectional(self.stream, up).await;
    }
}
