//! Reads the peer's `SETTINGS_MAX_CONCURRENT_STREAMS` off an HTTP/2 client
//! connection as frames arrive. hyper keeps that value private; the pool
//! needs it to open another connection when one is full (as Envoy does).
//! Frames are length-prefixed, so following them costs a few comparisons
//! per read and no copies.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const SETTINGS: u8 = 0x4;
const ACK: u8 = 0x1;
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

/// What the peer's SETTINGS said.
#[derive(Debug)]
pub(crate) struct PeerSettings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS (100 until told).
    pub max_streams: AtomicU32,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441).
    pub connect_protocol: AtomicBool,
    /// The first SETTINGS frame has arrived.
    pub received: AtomicBool,
    /// Woken when the first SETTINGS frame arrives.
    pub notify: tokio::sync::Notify,
}

impl PeerSettings {
    pub fn new(default_max_streams: u32) -> Arc<Self> {
        Arc::new(PeerSettings {
            max_streams: AtomicU32::new(default_max_streams),
            connect_protocol: AtomicBool::new(false),
            received: AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
        })
    }
}

/// The socket wrapper.
#[derive(Debug)]
pub(crate) struct SettingsWatcher<IO> {
    io: IO,
    header: [u8; 9],
    header_len: usize,
    /// Bytes of the current frame's payload still to come.
    remaining: usize,
    /// Whether the current payload is a SETTINGS frame being collected.
    collecting: bool,
    settings: Vec<u8>,
    peer: Arc<PeerSettings>,
}

impl<IO> SettingsWatcher<IO> {
    pub fn new(io: IO, peer: Arc<PeerSettings>) -> Self {
        SettingsWatcher {
            io,
            header: [0; 9],
            header_len: 0,
            remaining: 0,
            collecting: false,
            settings: Vec::new(),
            peer,
        }
    }

    fn observe(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining == 0 && !self.collecting {
                let take = (9 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                data = &data[take..];
                if self.header_len < 9 {
                    return;
                }
                self.header_len = 0;
                let len = usize::from(self.header[0]) << 16
                    | usize::from(self.header[1]) << 8
                    | usize::from(self.header[2]);
                let settings = self.header[3] == SETTINGS && self.header[4] & ACK == 0;
                self.remaining = len;
                self.collecting = settings;
                if settings && len == 0 {
                    self.collecting = false;
                    self.settings_done();
                }
                continue;
            }
            let take = self.remaining.min(data.len());
            if self.collecting && self.settings.len() + take <= 6 * 64 {
                self.settings.extend_from_slice(&data[..take]);
            }
            self.remaining -= take;
            data = &data[take..];
            if self.remaining == 0 && self.collecting {
                self.collecting = false;
                for e in self.settings.chunks_exact(6) {
                    let value = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
                    match u16::from_be_bytes([e[0], e[1]]) {
                        MAX_CONCURRENT_STREAMS => {
                            self.peer.max_streams.store(value, Ordering::Relaxed)
                        }
                        ENABLE_CONNECT_PROTOCOL => self
                            .peer
                            .connect_protocol
                            .store(value == 1, Ordering::Relaxed),
                        _ => {}
                    }
                }
                self.settings.clear();
                self.settings_done();
            }
        }
    }
}

impl<IO> SettingsWatcher<IO> {
    fn settings_done(&self) {
        if !self.peer.received.swap(true, Ordering::Relaxed) {
            self.peer.notify.notify_waiters();
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for SettingsWatcher<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            this.observe(&buf.filled()[before..]);
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for SettingsWatcher<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ty: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let l = payload.len();
        let mut f = vec![
            (l >> 16) as u8,
            (l >> 8) as u8,
            l as u8,
            ty,
            flags,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn finds_max_concurrent_streams_across_reads() {
        let peer = PeerSettings::new(100);
        let mut w = SettingsWatcher::new((), peer.clone());
        let mut bytes = frame(0x0, 0, b"data-frame");
        bytes.extend(frame(
            SETTINGS,
            0,
            &[0, 4, 0, 0, 0xff, 0xff, 0, 3, 0, 0, 0, 7, 0, 8, 0, 0, 0, 1],
        ));
        bytes.extend(frame(SETTINGS, ACK, &[]));
        assert!(!peer.received.load(Ordering::Relaxed));
        for chunk in bytes.chunks(5) {
            w.observe(chunk);
        }
        assert!(peer.received.load(Ordering::Relaxed));
        assert!(peer.connect_protocol.load(Ordering::Relaxed));
        assert_eq!(peer.max_streams.load(Ordering::Relaxed), 7);
        w.observe(&frame(SETTINGS, 0, &[0, 3, 0, 0, 0, 2]));
        assert_eq!(peer.max_streams.load(Ordering::Relaxed), 2);
    }
}
