//! Moving a message body from one socket to another by its framing,
//! without buffering more than one read: Content-Length bodies and chunked
//! bodies (validated, forwarded verbatim) and close-delimited bodies
//! (re-chunked for HTTP/1.1 clients).

use std::io;

use bytes::{Buf, BytesMut};
use nuncio_h1::{ChunkedValidator, Framing, H1Error};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::io::{read_some_hint, Pace};

/// Why a relay stopped.
#[derive(Debug)]
pub(crate) enum RelayError {
    /// Reading the source failed or it closed before the body ended.
    Src(io::Error),
    /// Writing the destination failed.
    Dst(io::Error),
    /// The body is malformed.
    Framing(H1Error),
}

/// How to write the body out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    /// Bytes as they come.
    Same,
    /// Close-delimited in, chunked out (HTTP/1.1 client).
    Rechunk,
    /// Chunked in, plain out (HTTP/1.0 client, connection closes).
    Dechunk,
}

/// Relays a body framed by `framing` from `src` to `dst`. `pending` holds
/// bytes already read from `src`; whatever follows the body stays there.
/// Returns the payload bytes moved.
pub(crate) async fn relay<R, W>(
    src: &mut R,
    pending: &mut BytesMut,
    dst: &mut W,
    framing: Framing,
    out: Out,
    pace: Pace,
) -> Result<u64, RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let eof = || {
        RelayError::Src(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before the body ended",
        ))
    };
    match framing {
        Framing::Empty => Ok(0),
        Framing::Length(n) => {
            let mut left = n;
            loop {
                let take = (pending.len() as u64).min(left) as usize;
                if take > 0 {
                    dst.write_all(&pending[..take])
                        .await
                        .map_err(RelayError::Dst)?;
                    pending.advance(take);
                    left -= take as u64;
                }
                if left == 0 {
                    return Ok(n);
                }
                let want = usize::try_from(left).unwrap_or(pace.chunk).min(pace.chunk);
                if read_some_hint(src, pending, pace.idle, want)
                    .await
                    .map_err(RelayError::Src)?
                    == 0
                {
                    return Err(eof());
                }
            }
        }
        Framing::Chunked => {
            let mut v = ChunkedValidator::new();
            let mut plain = Vec::new();
            loop {
                let k = if out == Out::Dechunk {
                    plain.clear();
                    let k = v
                        .feed_with(pending, |d| plain.extend_from_slice(d))
                        .map_err(RelayError::Framing)?;
                    dst.write_all(&plain).await.map_err(RelayError::Dst)?;
                    k
                } else {
                    let k = v.feed(pending).map_err(RelayError::Framing)?;
                    dst.write_all(&pending[..k])
                        .await
                        .map_err(RelayError::Dst)?;
                    k
                };
                pending.advance(k);
                if v.is_done() {
                    return Ok(v.data_bytes());
                }
                if read_some_hint(src, pending, pace.idle, pace.chunk)
                    .await
                    .map_err(RelayError::Src)?
                    == 0
                {
                    return Err(eof());
                }
            }
        }
        Framing::UntilClose => {
            let mut total = 0u64;
            loop {
                if !pending.is_empty() {
                    total += pending.len() as u64;
                    if out == Out::Rechunk {
                        let head = format!("{:x}\r\n", pending.len());
                        dst.write_all(head.as_bytes())
                            .await
                            .map_err(RelayError::Dst)?;
                        dst.write_all(pending).await.map_err(RelayError::Dst)?;
                        dst.write_all(b"\r\n").await.map_err(RelayError::Dst)?;
                    } else {
                        dst.write_all(pending).await.map_err(RelayError::Dst)?;
                    }
                    pending.clear();
                }
                if read_some_hint(src, pending, pace.idle, pace.chunk)
                    .await
                    .map_err(RelayError::Src)?
                    == 0
                {
                    if out == Out::Rechunk {
                        dst.write_all(b"0\r\n\r\n").await.map_err(RelayError::Dst)?;
                    }
                    return Ok(total);
                }
            }
        }
    }
}

/// A body destination that can end with trailers (an HTTP/2 stream).
pub(crate) trait TrailerSink: AsyncWrite + Unpin {
    /// Ends the body with `trailers` (non-empty).
    fn send_trailers(&mut self, trailers: Vec<(&[u8], &[u8])>) -> io::Result<()>;
}

/// Relays a chunked body into a sink that frames data itself (HTTP/2
/// DATA frames): the chunks' payload, then the trailers (gRPC's status
/// crosses this way), or the end of the stream. Returns the payload bytes.
pub(crate) async fn relay_chunked<R, S>(
    src: &mut R,
    pending: &mut BytesMut,
    sink: &mut S,
    pace: Pace,
) -> Result<u64, RelayError>
where
    R: AsyncRead + Unpin,
    S: TrailerSink,
{
    let mut v = ChunkedValidator::new();
    v.keep_trailers();
    let mut plain = Vec::new();
    loop {
        plain.clear();
        let k = v
            .feed_with(pending, |d| plain.extend_from_slice(d))
            .map_err(RelayError::Framing)?;
        pending.advance(k);
        if !plain.is_empty() {
            sink.write_all(&plain).await.map_err(RelayError::Dst)?;
        }
        if v.is_done() {
            break;
        }
        if read_some_hint(src, pending, pace.idle, pace.chunk)
            .await
            .map_err(RelayError::Src)?
            == 0
        {
            return Err(RelayError::Src(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the body ended",
            )));
        }
    }
    let trailers = v.trailer_fields();
    if trailers.is_empty() {
        sink.shutdown().await.map_err(RelayError::Dst)?;
    } else {
        sink.send_trailers(trailers).map_err(RelayError::Dst)?;
    }
    Ok(v.data_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::io::MAX_READ;
    use super::*;

    const NO_IDLE: Pace = Pace {
        idle: None,
        chunk: MAX_READ,
    };

    async fn run(
        framing: Framing,
        out: Out,
        pending: &[u8],
        rest: &[u8],
    ) -> (Result<u64, String>, Vec<u8>, Vec<u8>) {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        b.write_all(rest).await.unwrap();
        drop(b);
        let mut p = BytesMut::from(pending);
        let mut dst = Vec::new();
        let r = relay(&mut a, &mut p, &mut dst, framing, out, NO_IDLE)
            .await
            .map_err(|e| format!("{e:?}"));
        (r, dst, p.to_vec())
    }

    #[tokio::test]
    async fn length_keeps_what_follows() {
        let (r, dst, left) = run(Framing::Length(5), Out::Same, b"he", b"lloGET").await;
        assert_eq!(r, Ok(5));
        assert_eq!(dst, b"hello");
        assert_eq!(left, b"GET");
    }

    #[tokio::test]
    async fn chunked_verbatim_and_dechunked() {
        let body = b"3\r\nabc\r\n0\r\n\r\nNEXT";
        let (r, dst, left) = run(Framing::Chunked, Out::Same, &body[..5], &body[5..]).await;
        assert_eq!(r, Ok(3));
        assert_eq!(dst, &body[..body.len() - 4]);
        assert_eq!(left, b"NEXT");
        let (_, dst, _) = run(Framing::Chunked, Out::Dechunk, body, b"").await;
        assert_eq!(dst, b"abc");
    }

    #[tokio::test]
    async fn close_delimited_rechunked() {
        let (r, dst, _) = run(Framing::UntilClose, Out::Rechunk, b"ab", b"cde").await;
        assert_eq!(r, Ok(5));
        assert!(dst.ends_with(b"0\r\n\r\n"));
        let mut v = ChunkedValidator::new();
        let mut plain = Vec::new();
        v.feed_with(&dst, |d| plain.extend_from_slice(d)).unwrap();
        assert_eq!(plain, b"abcde");
    }

    #[tokio::test]
    async fn a_stalled_source_times_out() {
        let (mut a, _b) = tokio::io::duplex(1024);
        let mut p = BytesMut::from(&b"ab"[..]);
        let mut dst = Vec::new();
        let t0 = std::time::Instant::now();
        let r = relay(
            &mut a,
            &mut p,
            &mut dst,
            Framing::Length(10),
            Out::Same,
            Pace {
                idle: Some(std::time::Duration::from_millis(50)),
                chunk: MAX_READ,
            },
        )
        .await;
        let Err(RelayError::Src(e)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t0.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(dst, b"ab");
    }

    /// A source that records the largest read it was offered room for.
    struct Spy<'a>(&'a [u8], usize);

    impl AsyncRead for Spy<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            self.1 = self.1.max(buf.remaining());
            let n = buf.remaining().min(self.0.len());
            buf.put_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn reads_respect_the_buffer_limit() {
        let body = vec![7u8; 200_000];
        for (chunk, most) in [(MAX_READ, MAX_READ), (16 * 1024, 16 * 1024), (10, 1024)] {
            let mut src = Spy(&body, 0);
            let mut p = BytesMut::with_capacity(256 * 1024);
            let mut dst = Vec::new();
            let pace = Pace { idle: None, chunk };
            let r = relay(
                &mut src,
                &mut p,
                &mut dst,
                Framing::Length(200_000),
                Out::Same,
                pace,
            );
            assert_eq!(r.await.unwrap(), 200_000);
            assert_eq!(dst.len(), 200_000);
            assert_eq!(src.1, most, "chunk {chunk}");
        }
    }

    #[tokio::test]
    async fn truncated_is_an_error() {
        let (r, _, _) = run(Framing::Length(10), Out::Same, b"abc", b"").await;
        assert!(r.unwrap_err().starts_with("Src"));
        let (r, _, _) = run(Framing::Chunked, Out::Same, b"5\r\nab", b"").await;
        assert!(r.is_err());
    }
}
