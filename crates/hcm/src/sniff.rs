//! A byte-level tracker of HTTP/1.1 request framing on the downstream
//! socket. hyper, given both `Content-Length` and `Transfer-Encoding`,
//! drops the Content-Length and forwards the request as chunked (RFC 9112
//! allows that); nuncio instead refuses such a request with 400, like
//! Envoy, so a smuggling attempt never reaches an upstream. hyper hides
//! that the request had both headers, so this wrapper watches the bytes as
//! hyper reads them, finds each request head, and records a verdict per
//! request that the connection manager checks before routing.
//!
//! It follows message framing (Content-Length and chunked bodies) without
//! copying bodies. If it ever cannot follow the framing, it stops, and the
//! connection manager refuses the next request (fail closed).
//!
//! It also enforces `request_headers_timeout` for hyper, whose own
//! `header_read_timeout` also counts the idle wait before a keep-alive
//! request: here the timer runs from a head's first byte to its last.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use nuncio_h1::{H1Error, Limits};
use nuncio_stats::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What the tracker concluded about one request head: the same rules as
/// the native path, from the same parser (`nuncio_h1::parse_request` and
/// `request_framing`), so both HTTP/1 engines refuse the same requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing wrong.
    Ok,
    /// Refused: answer `status()` with `body()` and close.
    Refused(H1Error),
}

/// Verdicts shared between the socket wrapper and the request handler.
#[derive(Debug, Default)]
pub struct Verdicts {
    queue: Mutex<VecDeque<Verdict>>,
}

impl Verdicts {
    /// The verdict for the next request; `None` when the tracker could not
    /// follow the stream (the caller must refuse the request).
    pub fn next(&self) -> Option<Verdict> {
        self.queue.lock().ok()?.pop_front()
    }

    fn push(&self, v: Verdict) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(v);
        }
    }
}

#[derive(Debug)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd(u8),
    Trailers,
    Stopped,
}

/// The socket wrapper.
#[derive(Debug)]
pub struct Sniffer<IO> {
    io: IO,
    state: State,
    line: Vec<u8>,
    /// Trailer/chunk-size line length so far (to find the empty line).
    trailer_line_len: usize,
    limits: Limits,
    max_head: usize,
    verdicts: Arc<Verdicts>,
    /// Part of a request head has arrived, not all of it.
    head_partial: bool,
    head_timeout: Option<HeadTimeout>,
}

/// `request_headers_timeout`, armed while a head is partial.
#[derive(Debug)]
struct HeadTimeout {
    limit: Duration,
    /// Made at the first partial head, then reset for each later one.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// `downstream_rq_header_timeout`.
    expired: Counter,
}

impl<IO> Sniffer<IO> {
    /// Wraps `io`; heads are checked against `limits` (431 over them).
    pub fn new(io: IO, limits: Limits, verdicts: Arc<Verdicts>) -> Self {
        Sniffer {
            io,
            state: State::Head,
            line: Vec::new(),
            trailer_line_len: 0,
            limits,
            max_head: limits.max_header_bytes + 64 * 1024,
            verdicts,
            head_partial: false,
            head_timeout: None,
        }
    }

    /// Closes the connection (a read error) when a request head takes
    /// longer than `limit` from its first byte; counts it in `expired`.
    pub fn with_head_timeout(mut self, limit: Option<Duration>, expired: &Counter) -> Self {
        self.head_timeout = limit.map(|limit| HeadTimeout {
            limit,
            timer: None,
            armed: false,
            expired: expired.clone(),
        });
        self
    }

    fn stop(&mut self) {
        self.state = State::Stopped;
        self.line = Vec::new();
    }

    fn observe(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.state {
                State::Stopped => return,
                State::Head => {
                    // Skip the empty lines allowed before a request line.
                    if self.line.is_empty() {
                        let skip = data
                            .iter()
                            .take_while(|b| **b == b'\r' || **b == b'\n')
                            .count();
                        data = &data[skip..];
                        if data.is_empty() {
                            return;
                        }
                    }
                    // Fast path: the whole head is in this read; no copy.
                    if self.line.is_empty() {
                        if let Some(i) = find(data, b"\r\n\r\n") {
                            let (head, rest) = data.split_at(i + 4);
                            self.on_head(head);
                            data = rest;
                            continue;
                        }
                    }
                    let search_from = self.line.len().saturating_sub(3);
                    self.line.extend_from_slice(data);
                    match find(&self.line[search_from..], b"\r\n\r\n") {
                        Some(i) => {
                            let end = search_from + i + 4;
                            let consumed_from_data = data.len() - (self.line.len() - end);
                            let head = std::mem::take(&mut self.line);
                            self.on_head(&head[..end]);
                            data = &data[consumed_from_data..];
                        }
                        None => {
                            if self.line.len() > self.max_head {
                                self.stop();
                            }
                            self.head_partial = true;
                            return;
                        }
                    }
                }
                State::Body(n) => {
                    let take = (data.len() as u64).min(n);
                    data = &data[take as usize..];
                    self.state = if n == take {
                        State::Head
                    } else {
                        State::Body(n - take)
                    };
                }
                State::ChunkSize => match data.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        self.line.extend_from_slice(&data[..i]);
                        data = &data[i + 1..];
                        let line = std::mem::take(&mut self.line);
                        match parse_chunk_size(&line) {
                            Some(0) => {
                                self.trailer_line_len = 0;
                                self.state = State::Trailers;
                            }
                            Some(n) => self.state = State::ChunkData(n),
                            None => self.stop(),
                        }
                    }
                    None => {
                        self.line.extend_from_slice(data);
                        if self.line.len() > 4096 {
                            self.stop();
                        }
                        return;
                    }
                },
                State::ChunkData(n) => {
                    let take = (data.len() as u64).min(n);
                    data = &data[take as usize..];
                    self.state = if n == take {
                        State::ChunkDataEnd(2)
                    } else {
                        State::ChunkData(n - take)
                    };
                }
                State::ChunkDataEnd(left) => {
                    let take = data.len().min(usize::from(left));
                    data = &data[take..];
                    let left = left - take as u8;
                    self.state = if left == 0 {
                        State::ChunkSize
                    } else {
                        State::ChunkDataEnd(left)
                    };
                }
                State::Trailers => match data.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        let len = self.trailer_line_len + i;
                        data = &data[i + 1..];
                        self.trailer_line_len = 0;
                        // An empty line ("\r\n") ends the trailers.
                        if len <= 1 {
                            self.state = State::Head;
                        }
                    }
                    None => {
                        self.trailer_line_len += data.len();
                        if self.trailer_line_len > self.max_head {
                            self.stop();
                        }
                        return;
                    }
                },
            }
        }
    }

    fn on_head(&mut self, head: &[u8]) {
        self.head_partial = false;
        if head.starts_with(b"PRI ") {
            // The HTTP/2 preface: nothing more to follow.
            self.verdicts.push(Verdict::Ok);
            self.stop();
            return;
        }
        let parsed = nuncio_h1::parse_request(head, &self.limits).and_then(|h| {
            let h = h.ok_or(H1Error::Bad("incomplete request head"))?;
            let framing = nuncio_h1::request_framing(&h)?;
            // After an upgrade or a CONNECT the bytes are a tunnel's.
            let tunnel = h.upgrade.is_some() || h.method == "CONNECT";
            Ok((framing, tunnel))
        });
        match parsed {
            Err(e) => {
                // The connection closes after this request.
                self.verdicts.push(Verdict::Refused(e));
                self.stop();
            }
            Ok((_, true)) => {
                self.verdicts.push(Verdict::Ok);
                self.stop();
            }
            Ok((framing, false)) => {
                self.verdicts.push(Verdict::Ok);
                self.state = match framing {
                    nuncio_h1::Framing::Empty => State::Head,
                    nuncio_h1::Framing::Length(n) => State::Body(n),
                    nuncio_h1::Framing::Chunked => State::ChunkSize,
                    nuncio_h1::Framing::UntilClose => State::Stopped,
                };
            }
        }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| *c != b' ' && *c != b'\t')
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let hex = line.split(|b| *b == b';').next().map(trim)?;
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

impl<IO: AsyncRead + Unpin> AsyncRead for Sniffer<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            if !matches!(this.state, State::Stopped) {
                this.observe(&buf.filled()[before..]);
            }
        }
        let partial = this.head_partial && !matches!(this.state, State::Stopped);
        if let Some(t) = &mut this.head_timeout {
            if !partial {
                t.armed = false;
            } else {
                if !t.armed {
                    t.armed = true;
                    let at = Instant::now() + t.limit;
                    match &mut t.timer {
                        Some(timer) => timer.as_mut().reset(at),
                        None => t.timer = Some(Box::pin(tokio::time::sleep_until(at))),
                    }
                }
                // Polled on every read while armed, so the task wakes at
                // the deadline even if the client sends nothing more.
                let expired = t
                    .timer
                    .as_mut()
                    .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
                if expired {
                    t.armed = false;
                    t.expired.inc();
                    tracing::debug!("request headers not complete within request_headers_timeout");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request_headers_timeout",
                    )));
                }
            }
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Sniffer<IO> {
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads through a sniffer with a 150 ms head timeout until `wait`
    /// passes; returns whether the read failed with the timeout.
    async fn times_out(sent: &[u8], wait: Duration) -> bool {
        let (mut client, server) = tokio::io::duplex(4096);
        let expired = Counter::default();
        let limits = Limits {
            max_header_bytes: 1000,
            max_headers: 100,
        };
        let mut s = Sniffer::new(server, limits, Arc::new(Verdicts::default()))
            .with_head_timeout(Some(Duration::from_millis(150)), &expired);
        client.write_all(sent).await.unwrap();
        let mut buf = [0u8; 4096];
        let read = async {
            loop {
                if let Err(e) = s.read(&mut buf).await {
                    return e.kind() == io::ErrorKind::TimedOut;
                }
            }
        };
        let timed_out = tokio::time::timeout(wait, read).await.unwrap_or(false);
        assert_eq!(expired.get(), u64::from(timed_out));
        timed_out
    }

    #[tokio::test]
    async fn a_partial_head_times_out_a_complete_or_absent_one_does_not() {
        let wait = Duration::from_millis(400);
        assert!(times_out(b"GET / HTTP/1.1\r\nHost: a\r\n", wait).await);
        assert!(!times_out(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", wait).await);
        assert!(!times_out(b"", wait).await);
        // A finished request, then the first bytes of the next one.
        assert!(times_out(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HT", wait).await);
    }

    fn status(v: &Verdict) -> u16 {
        match v {
            Verdict::Ok => 200,
            Verdict::Refused(e) => e.status(),
        }
    }

    fn run(chunks: &[&[u8]]) -> (Vec<Verdict>, bool) {
        let v = Arc::new(Verdicts::default());
        let limits = Limits {
            max_header_bytes: 100,
            max_headers: 100,
        };
        let mut s = Sniffer::new((), limits, v.clone());
        for c in chunks {
            s.observe(c);
        }
        let mut out = Vec::new();
        while let Some(x) = v.next() {
            out.push(x);
        }
        (out, matches!(s.state, State::Stopped))
    }

    #[test]
    fn pipelined_requests_with_bodies() {
        let (v, stopped) = run(&[
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
            b"c\r\n0\r\nX-T: 1\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
        ]);
        assert_eq!(v, vec![Verdict::Ok; 4]);
        assert!(!stopped);
    }

    #[test]
    fn head_split_across_reads() {
        let (v, _) = run(&[
            b"GET / HTTP/1.1\r\nHost: a\r",
            b"\n",
            b"\r",
            b"\nGET / HTTP/1.0\r\n\r\n",
        ]);
        assert_eq!(v, vec![Verdict::Ok; 2]);
    }

    #[test]
    fn body_that_looks_like_a_request_is_not_a_head() {
        let body = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut req = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        let (v, _) = run(&[&req]);
        assert_eq!(v, vec![Verdict::Ok]);
    }

    #[test]
    fn transfer_codings_flagged() {
        let (v, _) =
            run(&[b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"]);
        assert_eq!(v.iter().map(status).collect::<Vec<_>>(), [501]);
        let (v, _) =
            run(&[b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"]);
        assert_eq!(v.iter().map(status).collect::<Vec<_>>(), [501]);
        let (v, _) = run(&[b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"]);
        assert_eq!(v.iter().map(status).collect::<Vec<_>>(), [400]);
        let (v, _) =
            run(&[b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"]);
        assert_eq!(v, vec![Verdict::Ok]);
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"[..],
            b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET abc HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
        ] {
            let (v, stopped) = run(&[bad]);
            assert_eq!(v.iter().map(status).collect::<Vec<_>>(), [400], "{bad:?}");
            assert!(stopped);
        }
    }

    #[test]
    fn cl_and_te_flagged() {
        let (v, stopped) = run(&[
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ]);
        assert_eq!(v.iter().map(status).collect::<Vec<_>>(), [400]);
        assert!(stopped);
        let (v, _) = run(&[
            b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n",
        ]);
        assert_eq!(v.iter().map(status).collect::<Vec<_>>(), [400]);
    }

    #[test]
    fn header_bytes_limit() {
        // Limit 100: GET + / + host + a + x + value.
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "a".repeat(91));
        assert_eq!(
            run(&[big.as_bytes()]).0,
            vec![Verdict::Refused(H1Error::TooLarge)]
        );
        let ok = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "a".repeat(90));
        assert_eq!(run(&[ok.as_bytes()]).0, vec![Verdict::Ok]);
    }

    #[test]
    fn h2_preface_stops() {
        let (v, stopped) = run(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"]);
        assert_eq!(v, vec![Verdict::Ok]);
        assert!(stopped);
    }

    #[test]
    fn bad_chunk_stops() {
        let (_, stopped) =
            run(&[b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]);
        assert!(stopped);
    }
}
