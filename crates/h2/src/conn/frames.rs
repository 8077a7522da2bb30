//! Applying the client's frames to a connection (RFC 9113 section 6):
//! each frame type's checks, stream and connection errors, flow-control
//! accounting, and new requests handed to the ready queue.

use bytes::{Buf, BytesMut};

use super::{Connection, Error, Partial};
use crate::frame::{self, flag, kind, setting, Head, Reason, HEADER_LEN, MAX_WINDOW};
use crate::hpack::{self, Block};
use crate::request::Request;
use crate::state::{Role, State, Stream};
use crate::stream;

/// Streams a connection may make us reset for its protocol errors before
/// it is closed (the `h2` crate's `max_local_error_reset_streams`).
const MAX_LOCAL_ERROR_RESETS: u32 = 1024;

/// Counts a stream reset for the client's error; past the limit the
/// connection goes (GOAWAY ENHANCE_YOUR_CALM): each costs us a decode
/// and a frame, and a client that keeps earning them is abusive.
fn local_error(resets: &mut u32) -> Result<(), Error> {
    *resets += 1;
    if *resets > MAX_LOCAL_ERROR_RESETS {
        return Err(Error::Protocol(
            Reason::ENHANCE_YOUR_CALM,
            "too many streams reset for protocol errors",
        ));
    }
    Ok(())
}

impl<T> Connection<T> {
    /// Applies every complete frame in the read buffer.
    pub(super) fn process(&mut self) -> Result<(), Error> {
        while self.rbuf.len() >= HEADER_LEN {
            let h = Head::parse(&self.rbuf);
            if h.len > frame::DEFAULT_MAX_FRAME {
                return Err(Error::Protocol(
                    Reason::FRAME_SIZE_ERROR,
                    "frame larger than SETTINGS_MAX_FRAME_SIZE",
                ));
            }
            if self.rbuf.len() < HEADER_LEN + h.len {
                self.rbuf.reserve(HEADER_LEN + h.len - self.rbuf.len());
                break;
            }
            self.rbuf.advance(HEADER_LEN);
            let payload = self.rbuf.split_to(h.len);
            if let Some(p) = &self.partial {
                if h.kind != kind::CONTINUATION || h.stream != p.stream {
                    return Err(Error::Protocol(
                        Reason::PROTOCOL_ERROR,
                        "header block interrupted",
                    ));
                }
            }
            match h.kind {
                kind::DATA => self.on_data(h, payload)?,
                kind::HEADERS => self.on_headers(h, &payload)?,
                kind::CONTINUATION => self.on_continuation(h, &payload)?,
                kind::PRIORITY => self.on_priority(h)?,
                kind::RST_STREAM => self.on_rst(h, &payload)?,
                kind::SETTINGS => self.on_settings(h, &payload)?,
                kind::PUSH_PROMISE => {
                    // A client never sends one; as a client we disabled
                    // push in our SETTINGS.
                    return Err(Error::Protocol(
                        Reason::PROTOCOL_ERROR,
                        "PUSH_PROMISE received",
                    ));
                }
                kind::PING => self.on_ping(h, &payload)?,
                kind::GOAWAY => self.on_goaway(h, &payload)?,
                kind::WINDOW_UPDATE => self.on_window_update(h, &payload)?,
                _ => {} // Unknown frame types are ignored (RFC 9113 4.1).
            }
        }
        Ok(())
    }

    /// Strips padding (PADDED); the pad length byte and padding go.
    fn unpad(h: Head, p: &[u8]) -> Result<(usize, usize), Error> {
        if h.flags & flag::PADDED == 0 {
            return Ok((0, p.len()));
        }
        let pad = *p.first().ok_or(Error::Protocol(
            Reason::FRAME_SIZE_ERROR,
            "padded frame without pad length",
        ))? as usize;
        if pad >= p.len() {
            return Err(Error::Protocol(
                Reason::PROTOCOL_ERROR,
                "padding longer than the frame",
            ));
        }
        Ok((1, p.len() - pad))
    }

    /// A stream not opened yet (RFC 9113 5.1 "idle"): above the last the
    /// client opened for a server; for a client, any even stream (push is
    /// off) or an odd one we have not opened.
    fn idle(&self, st: &State, id: u32) -> bool {
        match st.role {
            Role::Server => id > self.last_stream,
            Role::Client => id & 1 == 0 || id >= st.peer.next_id,
        }
    }

    /// GOAWAY: no new stream; as a client, the streams above its last
    /// stream id were never processed and fail as refused (safe to retry).
    fn on_goaway(&mut self, h: Head, p: &[u8]) -> Result<(), Error> {
        if h.stream != 0 {
            return Err(Error::Protocol(
                Reason::PROTOCOL_ERROR,
                "GOAWAY on a stream",
            ));
        }
        if p.len() < 8 {
            return Err(Error::Protocol(
                Reason::FRAME_SIZE_ERROR,
                "GOAWAY too short",
            ));
        }
        self.peer_goaway = true;
        let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
        let mut st = self.shared.lock();
        if st.role == Role::Server {
            return Ok(());
        }
        st.peer.goaway = true;
        st.wake_waiters();
        let mut i = 0;
        while i < st.streams.len() {
            let s = &mut st.streams[i];
            if s.id > last && s.reset.is_none() {
                s.reset = Some(Reason::REFUSED_STREAM);
                s.reset_by_peer = true;
                s.wake();
                st.discard_data(i);
                let before = st.streams.len();
                st.remove_if_done(i);
                if st.streams.len() < before {
                    continue;
                }
            }
            i += 1;
        }
        Ok(())
    }

    fn on_data(&mut self, h: Head, mut payload: BytesMut) -> Result<(), Error> {
        if h.stream == 0 {
            return Err(Error::Protocol(Reason::PROTOCOL_ERROR, "DATA on stream 0"));
        }
        let (start, end) = Self::unpad(h, &payload)?;
        let total = h.len as i64;
        let mut st = self.shared.lock();
        st.recv_window -= total;
        if st.recv_window < 0 {
            return Err(Error::Protocol(
                Reason::FLOW_CONTROL_ERROR,
                "connection window overrun",
            ));
        }
        let Some(i) = st.find(h.stream) else {
            if self.idle(&st, h.stream) {
                return Err(Error::Protocol(
                    Reason::PROTOCOL_ERROR,
                    "DATA on an idle stream",
                ));
            }
            // A stream already gone: credit the bytes and move on.
            st.release_conn(total);
            return Ok(());
        };
        let s = &mut st.streams[i];
        if s.reset.is_some() || s.recv_dropped {
            st.release_conn(total);
            return Ok(());
        }
        if s.recv_end {
            st.release_conn(total);
            st.reset_stream(i, Reason::STREAM_CLOSED);
            return local_error(&mut self.local_resets);
        }
        s.recv_window -= total;
        if s.recv_window < 0 {
            st.release_conn(total);
            st.reset_stream(i, Reason::FLOW_CONTROL_ERROR);
            return local_error(&mut self.local_resets);
        }
        let n = (end - start) as u64;
        s.received += n;
        let fin = h.flags & flag::END_STREAM != 0;
        let bad_length = s
            .content_length
            .is_some_and(|cl| s.received > cl || (fin && s.received != cl));
        if bad_length {
            st.release_conn(total);
            st.reset_stream(i, Reason::PROTOCOL_ERROR);
            return local_error(&mut self.local_resets);
        }
        if n > 0 {
            payload.truncate(end);
            payload.advance(start);
            s.data.push_back(payload.freeze());
        }
        if fin {
            s.recv_end = true;
        }
        s.wake();
        // Padding is credited at once.
        let pad = total - n as i64;
        if pad > 0 {
            st.release_stream(i, pad);
        }
        if fin {
            st.remove_if_done(i);
        }
        Ok(())
    }

    fn on_headers(&mut self, h: Head, p: &[u8]) -> Result<(), Error> {
        if h.stream == 0 {
            return Err(Error::Protocol(
                Reason::PROTOCOL_ERROR,
                "HEADERS on stream 0",
            ));
        }
        let (mut start, end) = Self::unpad(h, p)?;
        if h.flags & flag::PRIORITY != 0 {
            start += 5;
            if start > end {
                return Err(Error::Protocol(
                    Reason::FRAME_SIZE_ERROR,
                    "HEADERS too short for its priority",
                ));
            }
        }
        self.block.clear();
        self.block.extend_from_slice(&p[start..end]);
        let end_stream = h.flags & flag::END_STREAM != 0;
        if h.flags & flag::END_HEADERS == 0 {
            self.partial = Some(Partial {
                stream: h.stream,
                end_stream,
            });
            return self.check_block_size();
        }
        self.on_block(h.stream, end_stream)
    }

    fn on_continuation(&mut self, h: Head, p: &[u8]) -> Result<(), Error> {
        let Some(part) = self.partial.as_ref() else {
            return Err(Error::Protocol(
                Reason::PROTOCOL_ERROR,
                "CONTINUATION without HEADERS",
            ));
        };
        let (stream, end_stream) = (part.stream, part.end_stream);
        self.block.extend_from_slice(p);
        if h.flags & flag::END_HEADERS == 0 {
            return self.check_block_size();
        }
        self.partial = None;
        self.on_block(stream, end_stream)
    }

    /// CVE-2024-30255: a header block may not grow without end.
    fn check_block_size(&self) -> Result<(), Error> {
        let limit = 2 * self.cfg.max_header_list_size as usize + 64 * 1024;
        if self.block.len() > limit {
            return Err(Error::Protocol(
                Reason::ENHANCE_YOUR_CALM,
                "header block too large",
            ));
        }
        Ok(())
    }

    /// A complete header block: a new request, or a stream's trailers.
    fn on_block(&mut self, id: u32, end_stream: bool) -> Result<(), Error> {
        let mut fields = Block::for_encoded(self.block.len());
        let limit = self.cfg.max_header_list_size as usize;
        let block = std::mem::take(&mut self.block);
        let decoded = self.hpack.decode(&block, &mut fields, limit);
        self.block = block;
        match decoded {
            Ok(()) => {}
            Err(hpack::HpackError::Bomb) => {
                return Err(Error::Protocol(
                    Reason::ENHANCE_YOUR_CALM,
                    "header list far over its limit",
                ))
            }
            Err(_) => {
                return Err(Error::Protocol(
                    Reason::COMPRESSION_ERROR,
                    "bad HPACK block",
                ))
            }
        }
        let mut st = self.shared.lock();
        if let Some(i) = st.find(id) {
            if st.role == Role::Client && !st.streams[i].head_received {
                return super::response::on_head(&mut st, i, end_stream, fields)
                    .or_else(|()| local_error(&mut self.local_resets));
            }
            // Trailers.
            let s = &mut st.streams[i];
            if s.reset.is_some() {
                return Ok(());
            }
            if s.recv_end {
                st.reset_stream(i, Reason::STREAM_CLOSED);
                return local_error(&mut self.local_resets);
            }
            let pseudo = fields.iter().any(|(n, _)| n.starts_with(b":"));
            let short = s.content_length.is_some_and(|cl| cl != s.received);
            if !end_stream || pseudo || short || fields.is_oversize() {
                st.reset_stream(i, Reason::PROTOCOL_ERROR);
                return local_error(&mut self.local_resets);
            }
            s.trailers = Some(fields);
            s.recv_end = true;
            if let Some(c) = &st.stats {
                c.trailers.inc();
            }
            let s = &mut st.streams[i];
            s.wake();
            st.remove_if_done(i);
            return Ok(());
        }
        if st.role == Role::Client {
            if self.idle(&st, id) {
                return Err(Error::Protocol(
                    Reason::PROTOCOL_ERROR,
                    "HEADERS on a stream we did not open",
                ));
            }
            // A stream we reset: its late block was decoded, HPACK is in step.
            return Ok(());
        }
        if id & 1 == 0 {
            return Err(Error::Protocol(
                Reason::PROTOCOL_ERROR,
                "HEADERS on a server stream",
            ));
        }
        if !self.idle(&st, id) {
            // A stream we refused or reset: its late trailers are ignored
            // (RFC 9113 5.4.2); the block was decoded, so HPACK is in step.
            return Ok(());
        }
        self.last_stream = id;
        if self.goaway.is_some_and(|last| id > last) {
            return Ok(());
        }
        let was_empty = st.out.is_empty();
        if st.active() >= self.cfg.max_concurrent_streams as usize {
            st.put_rst(id, Reason::REFUSED_STREAM);
            st.queued(was_empty);
            return Ok(());
        }
        if fields.is_oversize() {
            if let Some(c) = &st.stats {
                c.header_overflow.inc();
            }
            // As the h2 crate does: a 431 response, then the stream ends.
            let max = st.peer_max_frame;
            frame::put_headers(&mut st.out, id, true, max, |o| hpack::encode_status(o, 431));
            if !end_stream {
                st.put_rst(id, Reason::NO_ERROR);
            }
            st.queued(was_empty);
            return Ok(());
        }
        if let Some(c) = &st.stats {
            c.header_count.record_value(fields.len() as u64);
            c.header_list_size.record_value(fields.list_size() as u64);
        }
        let req = match Request::new(id, fields, end_stream, self.cfg.enable_connect_protocol) {
            Ok(r) => r,
            Err(m) => {
                tracing::debug!(stream = id, why = m.0, "malformed HTTP/2 request");
                if let Some(c) = &st.stats {
                    c.rx_messaging_error.inc();
                }
                st.put_rst(id, Reason::PROTOCOL_ERROR);
                st.queued(was_empty);
                return local_error(&mut self.local_resets);
            }
        };
        let recv_window = if self.settings_acked {
            st.stream_window
        } else {
            st.stream_window.max(65_535)
        };
        let mut s = Stream::new(id, st.peer_initial_window, recv_window);
        s.recv_end = end_stream;
        s.content_length = req.content_length();
        if end_stream && s.content_length.is_some_and(|n| n > 0) {
            st.put_rst(id, Reason::PROTOCOL_ERROR);
            st.queued(was_empty);
            return local_error(&mut self.local_resets);
        }
        st.push_stream(s);
        let i = st.streams.len() - 1;
        let (rx, tx) = stream::open(&self.shared, &mut st, i);
        drop(st);
        self.ready.push_back((req, rx, tx));
        Ok(())
    }

    fn on_priority(&mut self, h: Head) -> Result<(), Error> {
        if h.stream == 0 {
            return Err(Error::Protocol(
                Reason::PROTOCOL_ERROR,
                "PRIORITY on stream 0",
            ));
        }
        if h.len != 5 {
            let mut st = self.shared.lock();
            let was_empty = st.out.is_empty();
            st.put_rst(h.stream, Reason::FRAME_SIZE_ERROR);
            st.queued(was_empty);
        }
        Ok(())
    }

    fn on_rst(&mut self, h: Head, p: &[u8]) -> Result<(), Error> {
        if h.stream == 0 {
            return Err(Error::Protocol(
                Reason::PROTOCOL_ERROR,
                "RST_STREAM on stream 0",
            ));
        }
        if p.len() != 4 {
            return Err(Error::Protocol(
                Reason::FRAME_SIZE_ERROR,
                "RST_STREAM of the wrong size",
            ));
        }
        let mut st = self.shared.lock();
        if self.idle(&st, h.stream) {
            return Err(Error::Protocol(
                Reason::PROTOCOL_ERROR,
                "RST_STREAM on an idle stream",
            ));
        }
        let reason = Reason(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
        if let Some(c) = &st.stats {
            c.rx_reset.inc();
        }
        if let Some(i) = st.find(h.stream) {
            if st.streams[i].reset.is_none() {
                st.discard_data(i);
                let s = &mut st.streams[i];
                s.reset = Some(reason);
                s.reset_by_peer = true;
                s.wake();
                st.remove_if_done(i);
            }
        }
        Ok(())
    }

    fn on_settings(&mut self, h: Head, p: &[u8]) -> Result<(), Error> {
        if h.stream != 0 {
            return Err(Error::Protocol(
                Reason::PROTOCOL_ERROR,
                "SETTINGS on a stream",
            ));
        }
        if h.flags & flag::ACK != 0 {
            if !p.is_empty() {
                return Err(Error::Protocol(
                    Reason::FRAME_SIZE_ERROR,
                    "SETTINGS ACK with a payload",
                ));
            }
            self.settings_acked = true;
            return Ok(());
        }
        if !p.len().is_multiple_of(6) {
            return Err(Error::Protocol(
                Reason::FRAME_SIZE_ERROR,
                "SETTINGS of the wrong size",
            ));
        }
        let mut st = self.shared.lock();
        for s in p.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                setting::ENABLE_PUSH if v > 1 || (v == 1 && st.role == Role::Client) => {
                    return Err(Error::Protocol(
                        Reason::PROTOCOL_ERROR,
                        "ENABLE_PUSH not 0 or 1 (or 1 from a server)",
                    ))
                }
                setting::MAX_CONCURRENT_STREAMS => st.peer.max_streams = v,
                setting::ENABLE_CONNECT_PROTOCOL => {
                    if v > 1 {
                        return Err(Error::Protocol(
                            Reason::PROTOCOL_ERROR,
                            "ENABLE_CONNECT_PROTOCOL not 0 or 1",
                        ));
                    }
                    st.peer.connect_protocol = v == 1;
                }
                setting::INITIAL_WINDOW_SIZE => {
                    if i64::from(v) > MAX_WINDOW {
                        return Err(Error::Protocol(
                            Reason::FLOW_CONTROL_ERROR,
                            "INITIAL_WINDOW_SIZE too large",
                        ));
                    }
                    let delta = i64::from(v) - st.peer_initial_window;
                    st.peer_initial_window = i64::from(v);
                    for s in &mut st.streams {
                        s.send_window += delta;
                        if s.send_window > MAX_WINDOW {
                            return Err(Error::Protocol(
                                Reason::FLOW_CONTROL_ERROR,
                                "stream window overflow",
                            ));
                        }
                    }
                    if delta > 0 {
                        st.wake_wanting();
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&v) {
                        return Err(Error::Protocol(
                            Reason::PROTOCOL_ERROR,
                            "MAX_FRAME_SIZE out of range",
                        ));
                    }
                    // Larger DATA frames would only delay other streams.
                    st.peer_max_frame = (v as usize).min(64 * 1024);
                }
                // HEADER_TABLE_SIZE: our encoder never indexes.
                _ => {}
            }
        }
        let was_empty = st.out.is_empty();
        frame::put_head(&mut st.out, 0, kind::SETTINGS, flag::ACK, 0);
        st.queued(was_empty);
        if !st.peer.settings_seen {
            st.peer.settings_seen = true;
            st.wake_waiters();
        }
        Ok(())
    }

    fn on_ping(&mut self, h: Head, p: &[u8]) -> Result<(), Error> {
        if h.stream != 0 {
            return Err(Error::Protocol(Reason::PROTOCOL_ERROR, "PING on a stream"));
        }
        if p.len() != 8 {
            return Err(Error::Protocol(
                Reason::FRAME_SIZE_ERROR,
                "PING of the wrong size",
            ));
        }
        if h.flags & flag::ACK == 0 {
            let mut st = self.shared.lock();
            let was_empty = st.out.is_empty();
            frame::put_head(&mut st.out, 8, kind::PING, flag::ACK, 0);
            st.out.extend_from_slice(p);
            st.queued(was_empty);
        }
        Ok(())
    }

    fn on_window_update(&mut self, h: Head, p: &[u8]) -> Result<(), Error> {
        if p.len() != 4 {
            return Err(Error::Protocol(
                Reason::FRAME_SIZE_ERROR,
                "WINDOW_UPDATE of the wrong size",
            ));
        }
        let inc = i64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff);
        let mut st = self.shared.lock();
        if h.stream == 0 {
            if inc == 0 {
                return Err(Error::Protocol(
                    Reason::PROTOCOL_ERROR,
                    "WINDOW_UPDATE of 0",
                ));
            }
            st.send_window += inc;
            if st.send_window > MAX_WINDOW {
                return Err(Error::Protocol(
                    Reason::FLOW_CONTROL_ERROR,
                    "connection window overflow",
                ));
            }
            st.wake_wanting();
            return Ok(());
        }
        let Some(i) = st.find(h.stream) else {
            if self.idle(&st, h.stream) {
                return Err(Error::Protocol(
                    Reason::PROTOCOL_ERROR,
                    "WINDOW_UPDATE on an idle stream",
                ));
            }
            return Ok(());
        };
        if inc == 0 {
            st.reset_stream(i, Reason::PROTOCOL_ERROR);
            return local_error(&mut self.local_resets);
        }
        let s = &mut st.streams[i];
        s.send_window += inc;
        if s.send_window > MAX_WINDOW {
            st.reset_stream(i, Reason::FLOW_CONTROL_ERROR);
            return local_error(&mut self.local_resets);
        }
        if s.wants_capacity {
            s.wants_capacity = false;
            s.wake();
            st.wanting -= 1;
        }
        Ok(())
    }
}
