//! One WebSocket connection of the echo: read frames, echo each whole
//! message back as one frame with its type, answer pings, ignore pongs,
//! and close with the right code.
//!
//! Payloads are unmasked and checked as they arrive, so a text message
//! with invalid UTF-8 is refused (1007) at the byte that breaks it, not at
//! the end of its frame or message. Every violation of RFC 6455 closes with
//! the code [`ProtocolError::close_code`] gives (1002, 1007, 1009). After
//! any close frame the echo sends, it closes its side of the TCP connection
//! first (RFC 6455 §7.1.1) and then reads until the client closes too, so
//! unread client bytes never turn the close into a reset.

use std::time::Duration;

use bytes::BytesMut;
use nuncio_websocket::close;
use nuncio_websocket::frame::{apply_mask, FrameHeader, OpCode, Role, RSV1};
use nuncio_websocket::message::{Assembler, DataKind, Event, Message, ProtocolError};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::deflate::{Codec, InflateError};

/// Largest message accepted, compressed or inflated (close 1009 beyond).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// How long the echo waits for the client to close its side after the
/// echo's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Payloads up to this size go out in one write with their header.
const COALESCE: usize = 16 * 1024;

/// Why a connection ended other than by a close handshake.
#[derive(Debug, Error)]
pub enum SessionError {
    /// Reading or writing the socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Where a connection stands after a message or frame.
enum Next {
    /// Keep reading.
    Continue,
    /// Send a close frame with this payload, then close.
    Close(Vec<u8>),
}

/// A rule broken by the client: the close payload that answers it.
fn refusal(code: u16, why: &dyn std::fmt::Display) -> Next {
    let mut reason = why.to_string();
    // A close frame carries at most 123 bytes of reason.
    while reason.len() > 123 {
        reason.pop();
    }
    tracing::debug!(code, %reason, "websocket echo closes");
    Next::Close(close::payload(code, &reason))
}

impl From<ProtocolError> for Next {
    fn from(e: ProtocolError) -> Self {
        refusal(e.close_code(), &e)
    }
}

/// Serves one upgraded connection until it closes. `codec`: the
/// permessage-deflate state, when it was negotiated.
pub async fn serve<S>(mut io: S, mut codec: Option<Codec>) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut asm = Assembler::new(MAX_MESSAGE, codec.is_some());
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // The frame whose payload is being read, and how much of it was.
    let mut frame: Option<(FrameHeader, u64)> = None;
    loop {
        let next = loop {
            match &mut frame {
                None => match FrameHeader::parse(&buf, Role::Server) {
                    Err(e) => break ProtocolError::from(e).into(),
                    Ok(None) => break Next::Continue,
                    Ok(Some((h, n))) => {
                        let _ = buf.split_to(n);
                        if let Err(e) = asm.begin_frame(&h) {
                            break e.into();
                        }
                        frame = Some((h, 0));
                    }
                },
                Some((h, done)) => {
                    let take = (h.len - *done).min(buf.len() as u64) as usize;
                    let mut piece = buf.split_to(take);
                    if let Some(mask) = h.mask {
                        apply_mask(&mut piece, mask, *done);
                    }
                    *done += take as u64;
                    if let Err(e) = asm.payload(&piece) {
                        break e.into();
                    }
                    if *done < h.len {
                        break Next::Continue;
                    }
                    frame = None;
                    match asm.end_frame() {
                        Err(e) => break e.into(),
                        Ok(event) => match on_event(&mut io, event, &mut codec).await? {
                            Next::Continue => {}
                            close @ Next::Close(_) => break close,
                        },
                    }
                }
            }
        };
        if let Next::Close(payload) = next {
            return close_connection(&mut io, &payload).await;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        if io.read_buf(&mut buf).await? == 0 {
            // The client went away without a close frame.
            return Ok(());
        }
    }
}

/// Acts on a frame or message the assembler completed.
async fn on_event<S>(
    io: &mut S,
    event: Event,
    codec: &mut Option<Codec>,
) -> Result<Next, SessionError>
where
    S: AsyncWrite + Unpin,
{
    match event {
        Event::Fragment | Event::Pong(_) => Ok(Next::Continue),
        Event::Ping(payload) => {
            write_frame(io, OpCode::Pong, 0, &payload).await?;
            Ok(Next::Continue)
        }
        // Echo the client's code (none for none), then close.
        Event::Close(code) => Ok(Next::Close(
            code.map(|(c, _)| c.to_be_bytes().to_vec())
                .unwrap_or_default(),
        )),
        Event::Message(m) => echo(io, m, codec).await,
    }
}

/// Sends a message back: inflated and checked if it came compressed, and
/// compressed again when the codec compresses.
async fn echo<S>(io: &mut S, m: Message, codec: &mut Option<Codec>) -> Result<Next, SessionError>
where
    S: AsyncWrite + Unpin,
{
    let payload = match (m.compressed, codec.as_mut()) {
        (true, Some(c)) => match c.inflate(&m.payload, MAX_MESSAGE) {
            Ok(p) => p,
            Err(e @ InflateError::TooBig(_)) => return Ok(refusal(close::TOO_BIG, &e)),
            Err(e) => return Ok(refusal(close::INVALID_PAYLOAD, &e)),
        },
        // The assembler allows RSV1 only when a codec exists.
        (true, None) => return Ok(refusal(close::PROTOCOL_ERROR, &"RSV1 without an extension")),
        (false, _) => m.payload,
    };
    if m.compressed && m.kind == DataKind::Text && std::str::from_utf8(&payload).is_err() {
        return Ok(refusal(
            close::INVALID_PAYLOAD,
            &"invalid UTF-8 in a text message",
        ));
    }
    let opcode = m.kind.opcode();
    match codec.as_mut().and_then(|c| c.deflate(&payload)) {
        Some(z) => write_frame(io, opcode, RSV1, &z).await?,
        None => write_frame(io, opcode, 0, &payload).await?,
    }
    Ok(Next::Continue)
}

/// Writes one unmasked final frame.
async fn write_frame<S>(io: &mut S, opcode: OpCode, rsv: u8, payload: &[u8]) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let mut out = Vec::with_capacity(14 + payload.len().min(COALESCE));
    FrameHeader::server(opcode, rsv, payload.len()).encode(&mut out);
    if payload.len() <= COALESCE {
        out.extend_from_slice(payload);
        io.write_all(&out).await?;
    } else {
        io.write_all(&out).await?;
        io.write_all(payload).await?;
    }
    io.flush().await
}

/// Sends the close frame, closes the echo's side, and waits (bounded) for
/// the client to close its own, discarding what it still sends.
async fn close_connection<S>(io: &mut S, payload: &[u8]) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    write_frame(io, OpCode::Close, 0, payload).await?;
    io.shutdown().await?;
    let drain = async {
        let mut sink = vec![0u8; 4096];
        while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
    Ok(())
}

#[cfg(test)]
mod tests;
