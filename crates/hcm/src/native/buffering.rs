//! Reading a whole request body before forwarding it, when a filter asks
//! (the buffer filter: `RequestCx::buffer_request`): up to a limit (413
//! beyond, `downstream_rq_too_large`), within `request_timeout` and
//! `stream_idle_timeout`. A chunked HTTP/1.1 body is decoded and goes
//! upstream with a `content-length`, as Envoy sends a buffered body.

use std::time::Instant;

use bytes::{Buf, BytesMut};
use nuncio_h1::{ChunkedValidator, Framing};

use super::h2io::H2Recv;
use super::io::{read_some_hint, Pace};
use super::upstream::Fail;
use super::watch::{idle_bounded, until};
use nuncio_tls::CountedConn as TcpStream;

/// Why a body could not be buffered.
#[derive(Debug)]
pub(super) enum Refused {
    /// Over the limit: Envoy's 413.
    TooLarge,
    /// The client left, stalled, or sent a malformed body.
    Failed(Fail),
}

/// A buffered HTTP/1.1 body.
#[derive(Debug)]
pub(super) struct Whole {
    /// The body (decoded when it came chunked).
    pub(super) body: BytesMut,
    /// Bytes the client sent after it (a pipelined request).
    pub(super) rest: BytesMut,
    /// It came chunked: the upstream gets `content-length` instead.
    pub(super) was_chunked: bool,
}

/// The 413's body, as Envoy's buffer filter sends it.
pub(super) const TOO_LARGE: &str = "Payload Too Large";

/// Reads an HTTP/1.1 body framed by `framing`, `already` being the bytes
/// read past the head.
pub(super) async fn read_h1(
    stream: &mut TcpStream,
    already: &[u8],
    framing: Framing,
    limit: u32,
    pace: Pace,
    deadline: Option<Instant>,
) -> Result<Whole, Refused> {
    let limit = u64::from(limit);
    let mut got = BytesMut::from(already);
    let read = async {
        match framing {
            Framing::Length(n) if n > limit => Err(Refused::TooLarge),
            Framing::Length(n) => {
                while (got.len() as u64) < n {
                    let want = usize::try_from(n - got.len() as u64).unwrap_or(pace.chunk);
                    match read_some_hint(stream, &mut got, pace.idle, want).await {
                        Ok(0) => return Err(Refused::Failed(Fail::Client)),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                            return Err(Refused::Failed(Fail::StreamIdle))
                        }
                        Err(_) => return Err(Refused::Failed(Fail::Client)),
                    }
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                let rest = got.split_off(n);
                Ok(Whole {
                    body: std::mem::take(&mut got),
                    rest,
                    was_chunked: false,
                })
            }
            Framing::Chunked => {
                let mut v = ChunkedValidator::new();
                let mut plain = BytesMut::new();
                loop {
                    let k = v
                        .feed_with(&got, |d| plain.extend_from_slice(d))
                        .map_err(|e| Refused::Failed(Fail::BadRequestBody(e)))?;
                    got.advance(k);
                    if plain.len() as u64 > limit {
                        return Err(Refused::TooLarge);
                    }
                    if v.is_done() {
                        return Ok(Whole {
                            body: plain,
                            rest: std::mem::take(&mut got),
                            was_chunked: true,
                        });
                    }
                    match read_some_hint(stream, &mut got, pace.idle, pace.chunk).await {
                        Ok(0) => return Err(Refused::Failed(Fail::Client)),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                            return Err(Refused::Failed(Fail::StreamIdle))
                        }
                        Err(_) => return Err(Refused::Failed(Fail::Client)),
                    }
                }
            }
            // A body without framing does not reach here (HTTP/1.1
            // requests have none, or one of the two).
            Framing::Empty | Framing::UntilClose => Ok(Whole {
                body: BytesMut::new(),
                rest: std::mem::take(&mut got),
                was_chunked: false,
            }),
        }
    };
    let read = std::pin::pin!(read);
    until(deadline, read).await.map_err(Refused::Failed)?
}

/// Reads an HTTP/2 request's DATA frames whole; they are put back in
/// front of `src`, so the exchange reads them as if they had just come.
/// Returns the body's length.
pub(super) async fn read_h2(
    src: &mut H2Recv,
    limit: u32,
    pace: Pace,
    deadline: Option<Instant>,
) -> Result<u64, Refused> {
    let limit = u64::from(limit);
    let read = async {
        let mut body = BytesMut::new();
        while let Some(d) = idle_bounded(pace.idle, src.data())
            .await
            .map_err(Refused::Failed)?
        {
            let d = d.map_err(|_| Refused::Failed(Fail::Client))?;
            body.extend_from_slice(&d);
            if body.len() as u64 > limit {
                return Err(Refused::TooLarge);
            }
        }
        let n = body.len() as u64;
        src.put_back(body.freeze());
        Ok(n)
    };
    let read = std::pin::pin!(read);
    until(deadline, read).await.map_err(Refused::Failed)?
}
