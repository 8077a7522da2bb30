//! Messages from frames (RFC 6455 §5.4, §5.6): fragmentation rules, RSV
//! bits, UTF-8 of text messages as the bytes arrive, and a size limit.
//!
//! [`Assembler`] is fed one frame at a time, without any I/O: the frame's
//! header ([`Assembler::begin_frame`]), its unmasked payload in as many
//! pieces as it arrives ([`Assembler::payload`]), then its end
//! ([`Assembler::end_frame`]), which hands back a whole message after its
//! final fragment. Control frames may come between a message's fragments;
//! their payloads (at most 125 bytes) are collected apart.

use thiserror::Error;

use crate::close::{self, CloseError};
use crate::frame::{FrameError, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, RSV1};
use crate::utf8::{InvalidUtf8, Utf8Validator};

/// Anything the peer did that ends the connection, with the close code
/// to answer it with ([`ProtocolError::close_code`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A header that breaks §5.2 (1002).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// RSV bits that no negotiated extension gives a meaning (1002).
    #[error("reserved bits {0:#05b} set")]
    ReservedBits(u8),
    /// A continuation frame with no message to continue (1002).
    #[error("continuation frame outside a fragmented message")]
    UnexpectedContinuation,
    /// A new text or binary frame before the last message ended (1002).
    #[error("new data frame inside a fragmented message")]
    MessageInProgress,
    /// Text that is not UTF-8 (1007).
    #[error(transparent)]
    Utf8(#[from] InvalidUtf8),
    /// A close frame payload that breaks §5.5.1 (1002, or 1007 for its
    /// reason).
    #[error(transparent)]
    Close(#[from] CloseError),
    /// A message over the limit (1009).
    #[error("message over {0} bytes")]
    TooBig(usize),
}

impl ProtocolError {
    /// The close code to send: 1007 for invalid UTF-8, 1009 for a message
    /// too big, 1002 for the rest.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::Utf8(_) => close::INVALID_PAYLOAD,
            ProtocolError::Close(e) => e.close_code(),
            ProtocolError::TooBig(_) => close::TOO_BIG,
            _ => close::PROTOCOL_ERROR,
        }
    }
}

/// A data message's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
}

impl DataKind {
    /// The opcode of the message's first frame.
    pub fn opcode(self) -> OpCode {
        match self {
            DataKind::Text => OpCode::Text,
            DataKind::Binary => OpCode::Binary,
        }
    }
}

/// A complete data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Text or binary.
    pub kind: DataKind,
    /// Whether the first frame had RSV1 set under permessage-deflate: the
    /// payload is compressed, and a text payload's UTF-8 is for the caller
    /// to check after inflating it.
    pub compressed: bool,
    /// The payload of all its frames, in order.
    pub payload: Vec<u8>,
}

/// What [`Assembler::end_frame`] has to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A non-final fragment ended: nothing to do yet.
    Fragment,
    /// A whole message.
    Message(Message),
    /// A ping, with its payload.
    Ping(Vec<u8>),
    /// A pong, with its payload.
    Pong(Vec<u8>),
    /// A close frame's code and reason (`None`: no code).
    Close(Option<(u16, String)>),
}

/// The message being received.
#[derive(Debug)]
struct Partial {
    kind: DataKind,
    compressed: bool,
    payload: Vec<u8>,
}

/// The frame being received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Current {
    None,
    Data { fin: bool },
    Control(OpCode),
}

/// Turns one direction's frames into messages, enforcing the rules.
#[derive(Debug)]
pub struct Assembler {
    max_message: usize,
    compression: bool,
    message: Option<Partial>,
    utf8: Utf8Validator,
    control: Vec<u8>,
    current: Current,
}

impl Assembler {
    /// An assembler refusing messages over `max_message` bytes (1009).
    /// `compression`: permessage-deflate was negotiated, so RSV1 may mark
    /// a message's first frame as compressed.
    pub fn new(max_message: usize, compression: bool) -> Self {
        Assembler {
            max_message,
            compression,
            message: None,
            utf8: Utf8Validator::new(),
            control: Vec::with_capacity(MAX_CONTROL_PAYLOAD),
            current: Current::None,
        }
    }

    /// Checks a frame's header against the message state and starts the
    /// frame. Header rules of §5.2 were checked by [`FrameHeader::parse`].
    pub fn begin_frame(&mut self, h: &FrameHeader) -> Result<(), ProtocolError> {
        let rsv_ok = match h.opcode {
            OpCode::Text | OpCode::Binary if self.compression => h.rsv & !RSV1 == 0,
            _ => h.rsv == 0,
        };
        if !rsv_ok {
            return Err(ProtocolError::ReservedBits(h.rsv));
        }
        match h.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                self.control.clear();
                self.current = Current::Control(h.opcode);
                return Ok(());
            }
            OpCode::Continuation => {
                let Some(m) = &self.message else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                self.check_size(m.payload.len() as u64 + h.len)?;
            }
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    return Err(ProtocolError::MessageInProgress);
                }
                self.check_size(h.len)?;
                let kind = if h.opcode == OpCode::Text {
                    DataKind::Text
                } else {
                    DataKind::Binary
                };
                self.message = Some(Partial {
                    kind,
                    compressed: h.rsv & RSV1 != 0,
                    payload: Vec::with_capacity(h.len.min(1 << 16) as usize),
                });
            }
        }
        self.current = Current::Data { fin: h.fin };
        Ok(())
    }

    fn check_size(&self, len: u64) -> Result<(), ProtocolError> {
        if len > self.max_message as u64 {
            Err(ProtocolError::TooBig(self.max_message))
        } else {
            Ok(())
        }
    }

    /// The next piece of the current frame's payload, already unmasked.
    /// Uncompressed text is checked as it comes, so invalid UTF-8 fails
    /// here, before the rest of the frame or message arrives.
    pub fn payload(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        match self.current {
            Current::Control(_) => self.control.extend_from_slice(data),
            Current::Data { .. } => {
                if let Some(m) = &mut self.message {
                    if m.kind == DataKind::Text && !m.compressed {
                        self.utf8.feed(data)?;
                    }
                    m.payload.extend_from_slice(data);
                }
            }
            Current::None => {}
        }
        Ok(())
    }

    /// Ends the current frame (all of its payload was given).
    pub fn end_frame(&mut self) -> Result<Event, ProtocolError> {
        let current = std::mem::replace(&mut self.current, Current::None);
        match current {
            Current::Control(op) => {
                let payload = std::mem::take(&mut self.control);
                Ok(match op {
                    OpCode::Ping => Event::Ping(payload),
                    OpCode::Pong => Event::Pong(payload),
                    _ => {
                        Event::Close(close::parse(&payload)?.map(|c| (c.code, c.reason.to_owned())))
                    }
                })
            }
            Current::Data { fin: true } => match self.message.take() {
                Some(m) => {
                    if m.kind == DataKind::Text && !m.compressed {
                        self.utf8.finish()?;
                    }
                    Ok(Event::Message(Message {
                        kind: m.kind,
                        compressed: m.compressed,
                        payload: m.payload,
                    }))
                }
                None => Ok(Event::Fragment),
            },
            Current::Data { fin: false } | Current::None => Ok(Event::Fragment),
        }
    }

    /// Whether a fragmented message has started and not ended.
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fin: bool, rsv: u8, opcode: OpCode, len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask: None,
            len: len as u64,
        }
    }

    /// Feeds one frame whose payload arrives in `pieces`.
    fn frame(
        a: &mut Assembler,
        fin: bool,
        rsv: u8,
        op: OpCode,
        pieces: &[&[u8]],
    ) -> Result<Event, ProtocolError> {
        let len = pieces.iter().map(|p| p.len()).sum();
        a.begin_frame(&header(fin, rsv, op, len))?;
        for p in pieces {
            a.payload(p)?;
        }
        a.end_frame()
    }

    fn text(s: &str) -> Event {
        Event::Message(Message {
            kind: DataKind::Text,
            compressed: false,
            payload: s.as_bytes().to_vec(),
        })
    }

    #[test]
    fn fragments_with_control_frames_between() {
        let mut a = Assembler::new(1 << 20, false);
        assert_eq!(
            frame(&mut a, false, 0, OpCode::Text, &[b"fra"]),
            Ok(Event::Fragment)
        );
        assert!(a.in_message());
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Ping, &[b"p"]),
            Ok(Event::Ping(b"p".to_vec()))
        );
        assert_eq!(
            frame(&mut a, false, 0, OpCode::Continuation, &[b"gm", b"en"]),
            Ok(Event::Fragment)
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Pong, &[]),
            Ok(Event::Pong(vec![]))
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Continuation, &[b"ts"]),
            Ok(text("fragments"))
        );
        assert!(!a.in_message());
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Binary, &[&[0, 255]]),
            Ok(Event::Message(Message {
                kind: DataKind::Binary,
                compressed: false,
                payload: vec![0, 255]
            }))
        );
    }

    #[test]
    fn fragmentation_errors() {
        let mut a = Assembler::new(1 << 20, false);
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Continuation, &[b"x"]),
            Err(ProtocolError::UnexpectedContinuation)
        );
        let mut a = Assembler::new(1 << 20, false);
        frame(&mut a, false, 0, OpCode::Text, &[b"x"]).unwrap();
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Text, &[b"y"]),
            Err(ProtocolError::MessageInProgress)
        );
    }

    #[test]
    fn reserved_bits() {
        let mut a = Assembler::new(1 << 20, false);
        let e = frame(&mut a, true, RSV1, OpCode::Text, &[b"x"]).unwrap_err();
        assert_eq!(
            (e.clone(), e.close_code()),
            (ProtocolError::ReservedBits(4), 1002)
        );
        // With permessage-deflate, RSV1 marks a compressed message, but
        // only on its first frame, and never on a control frame.
        let mut a = Assembler::new(1 << 20, true);
        frame(&mut a, false, RSV1, OpCode::Binary, &[b"x"]).unwrap();
        assert_eq!(
            frame(&mut a, true, RSV1, OpCode::Continuation, &[b"y"]),
            Err(ProtocolError::ReservedBits(RSV1))
        );
        let mut a = Assembler::new(1 << 20, true);
        assert_eq!(
            frame(&mut a, true, RSV1, OpCode::Ping, &[]),
            Err(ProtocolError::ReservedBits(RSV1))
        );
        assert_eq!(
            frame(&mut a, true, 0b010, OpCode::Text, &[]),
            Err(ProtocolError::ReservedBits(0b010))
        );
        let got = frame(&mut a, true, RSV1, OpCode::Text, &[b"\xff"]).unwrap();
        assert!(matches!(
            got,
            Event::Message(Message {
                compressed: true,
                ..
            })
        ));
    }

    #[test]
    fn utf8_fails_fast_across_fragments_and_pieces() {
        let mut a = Assembler::new(1 << 20, false);
        // κόσμε split inside a code point, across frames.
        let s = "κόσμε".as_bytes();
        frame(&mut a, false, 0, OpCode::Text, &[&s[..3]]).unwrap();
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Continuation, &[&s[3..]]),
            Ok(text("κόσμε"))
        );
        // The bad byte fails in its piece, before the frame ends.
        let mut a = Assembler::new(1 << 20, false);
        frame(&mut a, false, 0, OpCode::Text, &[b"\xce\xba\xf4"]).unwrap();
        a.begin_frame(&header(true, 0, OpCode::Continuation, 100))
            .unwrap();
        assert_eq!(a.payload(b"\x90"), Err(ProtocolError::Utf8(InvalidUtf8)));
        // A message may not end inside a code point.
        let mut a = Assembler::new(1 << 20, false);
        let e = frame(&mut a, true, 0, OpCode::Text, &[b"ok\xe2\x82"]).unwrap_err();
        assert_eq!(e.close_code(), 1007);
        // Binary is not checked.
        let mut a = Assembler::new(1 << 20, false);
        assert!(frame(&mut a, true, 0, OpCode::Binary, &[b"\xff"]).is_ok());
    }

    #[test]
    fn close_frames() {
        let mut a = Assembler::new(10, false);
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Close, &[]),
            Ok(Event::Close(None))
        );
        assert_eq!(
            frame(&mut a, true, 0, OpCode::Close, &[b"\x03\xe8", b"bye"]),
            Ok(Event::Close(Some((1000, "bye".into()))))
        );
        let e = frame(&mut a, true, 0, OpCode::Close, &[b"\x03\xed"]).unwrap_err();
        assert_eq!(e.close_code(), 1002);
        let e = frame(&mut a, true, 0, OpCode::Close, &[b"\x03\xe8\xff"]).unwrap_err();
        assert_eq!(e.close_code(), 1007);
    }

    #[test]
    fn size_limit_counts_all_fragments() {
        let mut a = Assembler::new(10, false);
        assert!(frame(&mut a, true, 0, OpCode::Binary, &[&[0; 10]]).is_ok());
        let e = a
            .begin_frame(&header(true, 0, OpCode::Binary, 11))
            .unwrap_err();
        assert_eq!(e.close_code(), 1009);
        let mut a = Assembler::new(10, false);
        frame(&mut a, false, 0, OpCode::Binary, &[&[0; 6]]).unwrap();
        let e = a
            .begin_frame(&header(true, 0, OpCode::Continuation, 5))
            .unwrap_err();
        assert_eq!(e, ProtocolError::TooBig(10));
    }
}
