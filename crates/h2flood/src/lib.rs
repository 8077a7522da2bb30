//! Envoy's HTTP/2 inbound flood limits (CVE-2019-9511..9518), enforced
//! on the bytes of an HTTP/2 connection before the `h2` codec sees them:
//! a downstream client's (the connection manager) and an upstream server's
//! (the cluster's pool), since Envoy trusts neither.
//!
//! The `h2` crate silently absorbs frames that cost the sender nothing
//! and the proxy CPU: empty DATA frames, PRIORITY frames, WINDOW_UPDATEs.
//! [`FloodGuard`] wraps the connection's socket, follows frame boundaries
//! in both directions (9-byte headers; payloads are skipped, never
//! copied) and closes the connection as Envoy does:
//!
//! - more than `max_consecutive_inbound_frames_with_empty_payload` (1)
//!   HEADERS/CONTINUATION/DATA frames in a row with no payload and no
//!   END_STREAM → `http2.inbound_empty_frames_flood` (downstream; per
//!   cluster `cluster.<name>.http2.*` upstream);
//! - more than `max_inbound_priority_frames_per_stream` (100) x (1 +
//!   streams opened) PRIORITY frames → `http2.inbound_priority_frames_flood`;
//! - more than 1 + 2 x (streams opened + `max_inbound_window_update_frames_
//!   per_data_frame_sent` (10) x DATA frames sent) WINDOW_UPDATEs →
//!   `http2.inbound_window_update_frames_flood`.
//!
//! Envoy's outbound limits (`max_outbound_frames`, `max_outbound_control_
//! frames`) bound a queue that neither codec lets grow: nuncio's own
//! (`crates/h2`, downstream on the native path) stops reading while more
//! than 64 KiB of its output is unwritten, and the `h2` crate (upstream
//! and the echo service) while a PING or SETTINGS acknowledgement is unsent,
//! so a peer that floods PINGs and never reads only fills socket buffers.
//! docs/hardening.md has the test that shows it.
//!
//! Cost (callgrind, `MIX=h2c bash bench/profile.sh`): ~0.3k instructions
//! per h2c request of ~40k.
//!
//! A connection that does not start with the client preface (HTTP/1.1 on
//! an `AUTO` listener) is passed through untouched after its first bytes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

pub use nuncio_config::FloodLimits;
use nuncio_stats::{Counter, Scope};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Envoy's flood counters: `http2.inbound_*_flood` under a scope.
#[derive(Debug, Clone, Default)]
pub struct FloodStats {
    /// `http2.inbound_empty_frames_flood`.
    pub empty_frames: Counter,
    /// `http2.inbound_priority_frames_flood`.
    pub priority: Counter,
    /// `http2.inbound_window_update_frames_flood`.
    pub window_update: Counter,
}

impl FloodStats {
    /// Registers (or finds) the counters under `scope` (the root for
    /// downstream connections, `cluster.<name>.` for upstream ones).
    pub fn new(scope: &Scope) -> Self {
        FloodStats {
            empty_frames: scope.counter("http2.inbound_empty_frames_flood"),
            priority: scope.counter("http2.inbound_priority_frames_flood"),
            window_update: scope.counter("http2.inbound_window_update_frames_flood"),
        }
    }
}

/// The client connection preface (RFC 9113 section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;

/// One frame header, with its padding once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    kind: u8,
    flags: u8,
    len: u32,
    /// Padding bytes including the pad-length byte (0 when not padded).
    pad: u32,
}

/// Follows frame boundaries in one direction of a connection.
#[derive(Debug, Default)]
struct Framer {
    /// Bytes of the client preface still expected.
    preface_left: u8,
    /// Not HTTP/2: pass everything through.
    off: bool,
    head: [u8; 9],
    have: u8,
    /// Payload bytes still to skip.
    skip: u32,
    /// A padded frame waiting for its pad-length byte.
    pad_wait: Option<Frame>,
}

impl Framer {
    fn expecting_preface() -> Self {
        Framer {
            preface_left: PREFACE.len() as u8,
            ..Framer::default()
        }
    }

    /// Feeds the next bytes; `on` sees each frame header once complete.
    fn feed<E>(
        &mut self,
        mut data: &[u8],
        mut on: impl FnMut(Frame) -> Result<(), E>,
    ) -> Result<(), E> {
        while !data.is_empty() && !self.off {
            if self.preface_left > 0 {
                let at = PREFACE.len() - self.preface_left as usize;
                let n = data.len().min(self.preface_left as usize);
                if data[..n] != PREFACE[at..at + n] {
                    self.off = true;
                    return Ok(());
                }
                self.preface_left -= n as u8;
                data = &data[n..];
            } else if self.skip > 0 {
                let n = data.len().min(self.skip as usize);
                self.skip -= n as u32;
                data = &data[n..];
            } else if let Some(f) = self.pad_wait.take() {
                let pad = u32::from(data[0]) + 1;
                self.skip = f.len - 1;
                data = &data[1..];
                on(Frame { pad, ..f })?;
            } else {
                let n = data.len().min(9 - self.have as usize);
                self.head[self.have as usize..self.have as usize + n].copy_from_slice(&data[..n]);
                self.have += n as u8;
                data = &data[n..];
                if self.have == 9 {
                    self.have = 0;
                    let h = &self.head;
                    let f = Frame {
                        len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
                        kind: h[3],
                        flags: h[4],
                        pad: 0,
                    };
                    if f.flags & PADDED != 0 && matches!(f.kind, DATA | HEADERS) && f.len > 0 {
                        self.pad_wait = Some(f);
                    } else {
                        self.skip = f.len;
                        on(f)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Which limit a connection broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    EmptyFrames,
    Priority,
    WindowUpdate,
}

impl Flood {
    fn message(self) -> &'static str {
        match self {
            Flood::EmptyFrames => "too many consecutive frames with an empty payload",
            Flood::Priority => "too many PRIORITY frames",
            Flood::WindowUpdate => "too many WINDOW_UPDATE frames",
        }
    }
}

/// The per-connection counts Envoy's limits are stated in.
#[derive(Debug, Default)]
struct Counts {
    streams: u64,
    consecutive_empty: u64,
    priority: u64,
    window_updates: u64,
    data_sent: u64,
}

impl Counts {
    fn inbound(&mut self, f: Frame, l: &FloodLimits) -> Result<(), Flood> {
        match f.kind {
            HEADERS | CONTINUATION | DATA => {
                if f.kind != DATA && f.flags & END_HEADERS != 0 {
                    self.streams += 1;
                }
                if f.len.saturating_sub(f.pad) == 0 && f.flags & END_STREAM == 0 {
                    self.consecutive_empty += 1;
                } else {
                    self.consecutive_empty = 0;
                }
            }
            PRIORITY => self.priority += 1,
            WINDOW_UPDATE => self.window_updates += 1,
            _ => {}
        }
        if self.consecutive_empty > u64::from(l.max_consecutive_empty_frames) {
            return Err(Flood::EmptyFrames);
        }
        if self.priority > u64::from(l.max_priority_frames_per_stream) * (1 + self.streams) {
            return Err(Flood::Priority);
        }
        let per_data = u64::from(l.max_window_update_frames_per_data_frame);
        if self.window_updates > 1 + 2 * (self.streams + per_data * self.data_sent) {
            return Err(Flood::WindowUpdate);
        }
        Ok(())
    }
}

/// An HTTP/2 connection's socket with Envoy's inbound flood limits
/// applied (see the module docs).
#[derive(Debug)]
pub struct FloodGuard<T> {
    io: T,
    inbound: Framer,
    outbound: Framer,
    counts: Counts,
    limits: FloodLimits,
    stats: FloodStats,
    peer: SocketAddr,
    failed: Option<Flood>,
}

impl<T> FloodGuard<T> {
    /// Guards the server side of a connection whose first inbound bytes
    /// are (or should be) the client preface.
    pub fn server(io: T, limits: FloodLimits, stats: &FloodStats, peer: SocketAddr) -> Self {
        Self::new(
            io,
            Framer::expecting_preface(),
            Framer::default(),
            limits,
            stats,
            peer,
        )
    }

    /// Guards the client side of a connection to an HTTP/2 server: the
    /// preface is ours, outbound.
    pub fn client(io: T, limits: FloodLimits, stats: &FloodStats, peer: SocketAddr) -> Self {
        Self::new(
            io,
            Framer::default(),
            Framer::expecting_preface(),
            limits,
            stats,
            peer,
        )
    }

    fn new(
        io: T,
        inbound: Framer,
        outbound: Framer,
        limits: FloodLimits,
        stats: &FloodStats,
        peer: SocketAddr,
    ) -> Self {
        FloodGuard {
            io,
            inbound,
            outbound,
            counts: Counts::default(),
            limits,
            stats: stats.clone(),
            peer,
            failed: None,
        }
    }

    /// The guarded socket.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    fn trip(&mut self, f: Flood) -> io::Error {
        if self.failed.is_none() {
            self.failed = Some(f);
            match f {
                Flood::EmptyFrames => self.stats.empty_frames.inc(),
                Flood::Priority => self.stats.priority.inc(),
                Flood::WindowUpdate => self.stats.window_update.inc(),
            }
            tracing::warn!(peer = %self.peer, "closing an HTTP/2 connection: {}", f.message());
        }
        io::Error::new(io::ErrorKind::InvalidData, f.message())
    }

    fn sent(&mut self, bytes: &[u8]) {
        let counts = &mut self.counts;
        let _ = self.outbound.feed(bytes, |f| {
            if f.kind == DATA {
                counts.data_sent += 1;
            }
            Ok::<(), ()>(())
        });
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FloodGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(f) = this.failed {
            return Poll::Ready(Err(this.trip(f)));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let (counts, limits) = (&mut this.counts, &this.limits);
        if let Err(f) = this
            .inbound
            .feed(&buf.filled()[before..], |fr| counts.inbound(fr, limits))
        {
            return Poll::Ready(Err(this.trip(f)));
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FloodGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.sent(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for b in bufs {
            if left == 0 {
                break;
            }
            let k = left.min(b.len());
            this.sent(&b[..k]);
            left -= k;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = len.to_be_bytes()[1..].to_vec();
        v.extend_from_slice(&[kind, flags, 0, 0, 0, 1]);
        v.extend_from_slice(payload);
        v
    }

    /// Feeds `bytes` to a server-side framer in pieces of `step` bytes.
    fn frames(bytes: &[u8], step: usize) -> Vec<Frame> {
        let mut f = Framer::expecting_preface();
        let mut seen = Vec::new();
        for piece in bytes.chunks(step) {
            f.feed(piece, |fr| {
                seen.push(fr);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        seen
    }

    #[test]
    fn frame_boundaries_survive_any_split() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x4, 0, &[0; 6]));
        bytes.extend(frame(HEADERS, END_HEADERS, b"abc"));
        bytes.extend(frame(DATA, PADDED, &[3, b'x', 0, 0, 0]));
        bytes.extend(frame(DATA, END_STREAM, b""));
        let want = vec![
            Frame {
                kind: 0x4,
                flags: 0,
                len: 6,
                pad: 0,
            },
            Frame {
                kind: HEADERS,
                flags: END_HEADERS,
                len: 3,
                pad: 0,
            },
            Frame {
                kind: DATA,
                flags: PADDED,
                len: 5,
                pad: 4,
            },
            Frame {
                kind: DATA,
                flags: END_STREAM,
                len: 0,
                pad: 0,
            },
        ];
        for step in 1..=bytes.len() {
            assert_eq!(frames(&bytes, step), want, "split every {step} bytes");
        }
    }

    #[test]
    fn http1_is_passed_through() {
        assert!(frames(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", 3).is_empty());
        assert!(frames(b"PRI * HTTP/1.1\r\n\r\n\0\0\0\x04\0\0\0\0\0", 4).is_empty());
    }

    fn run(frames: &[Frame], l: &FloodLimits) -> Result<(), Flood> {
        let mut c = Counts::default();
        frames.iter().try_for_each(|f| c.inbound(*f, l))
    }

    fn f(kind: u8, flags: u8, len: u32) -> Frame {
        Frame {
            kind,
            flags,
            len,
            pad: 0,
        }
    }

    #[test]
    fn envoys_empty_frame_rule() {
        let l = FloodLimits::default();
        let empty = f(DATA, 0, 0);
        assert_eq!(run(&[empty, f(DATA, 0, 5), empty], &l), Ok(()));
        assert_eq!(
            run(&[empty, f(0x6, 0, 8), empty], &l),
            Err(Flood::EmptyFrames)
        );
        assert_eq!(run(&[empty, f(DATA, END_STREAM, 0)], &l), Ok(()));
        let padded_empty = Frame {
            kind: DATA,
            flags: PADDED,
            len: 4,
            pad: 4,
        };
        assert_eq!(
            run(&[padded_empty, padded_empty], &l),
            Err(Flood::EmptyFrames)
        );
    }

    #[test]
    fn envoys_priority_rule() {
        let l = FloodLimits::default();
        let p = f(PRIORITY, 0, 5);
        assert_eq!(run(&vec![p; 100], &l), Ok(()));
        assert_eq!(run(&vec![p; 101], &l), Err(Flood::Priority));
        let mut with_stream = vec![f(HEADERS, END_HEADERS | END_STREAM, 10)];
        with_stream.extend(vec![p; 200]);
        assert_eq!(run(&with_stream, &l), Ok(()));
        with_stream.push(p);
        assert_eq!(run(&with_stream, &l), Err(Flood::Priority));
    }

    #[test]
    fn envoys_window_update_rule() {
        let l = FloodLimits::default();
        let w = f(WINDOW_UPDATE, 0, 4);
        assert_eq!(run(&[w], &l), Ok(()));
        assert_eq!(run(&[w, w], &l), Err(Flood::WindowUpdate));
        let mut c = Counts {
            data_sent: 3,
            ..Counts::default()
        };
        // 1 + 2 * (0 + 10 * 3) = 61 allowed.
        for _ in 0..61 {
            assert_eq!(c.inbound(w, &l), Ok(()));
        }
        assert_eq!(c.inbound(w, &l), Err(Flood::WindowUpdate));
    }
}
