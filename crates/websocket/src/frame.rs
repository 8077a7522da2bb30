//! RFC 6455 §5.2 frame headers: parsing from a byte buffer (incrementally:
//! `Ok(None)` asks for more bytes), encoding, and payload masking.
//!
//! Parsing checks what a header alone can break: reserved opcodes, control
//! frames that are fragmented or longer than 125 bytes, a 64-bit length
//! with its top bit set, and masking (clients mask, servers don't). RSV bits
//! depend on the negotiated extensions, so [`crate::message`] checks them.

use thiserror::Error;

/// Longest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame's opcode (RFC 6455 §5.2); reserved values are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: a later fragment of a data message.
    Continuation,
    /// 0x1: the first frame of a UTF-8 text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// The opcode for the low four bits of a frame's first byte.
    pub fn from_bits(bits: u8) -> Result<OpCode, FrameError> {
        Ok(match bits & 0x0f {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(FrameError::ReservedOpcode(other)),
        })
    }

    /// The opcode's four bits.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// Which end of the connection reads the frames: a server reads masked
/// frames, a client unmasked ones (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads frames from a client: every frame must be masked.
    Server,
    /// Reads frames from a server: no frame may be masked.
    Client,
}

/// A header that breaks RFC 6455 §5; each means close code 1002.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Opcodes 0x3–0x7 and 0xB–0xF are reserved.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A control frame without FIN.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame over 125 bytes.
    #[error("control frame payload over 125 bytes")]
    ControlTooLong,
    /// A 64-bit payload length whose most significant bit is set.
    #[error("payload length with its most significant bit set")]
    LengthTooLarge,
    /// A client's frame without a mask.
    #[error("unmasked frame from a client")]
    Unmasked,
    /// A server's frame with a mask.
    #[error("masked frame from a server")]
    Masked,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Whether this is a message's final frame.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the bits 0b100, 0b010, 0b001.
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub len: u64,
}

/// RSV1 in [`FrameHeader::rsv`] (permessage-deflate's "compressed" bit).
pub const RSV1: u8 = 0b100;

impl FrameHeader {
    /// Parses a header at the start of `buf`. `Ok(None)`: `buf` holds only
    /// part of it; `Ok(Some((header, n)))`: the header took `n` bytes.
    pub fn parse(buf: &[u8], role: Role) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0b111;
        let opcode = OpCode::from_bits(b0)?;
        let masked = b1 & 0x80 != 0;
        let short = b1 & 0x7f;
        if opcode.is_control() {
            if !fin {
                return Err(FrameError::FragmentedControl);
            }
            if usize::from(short) > MAX_CONTROL_PAYLOAD {
                // 126 and 127 announce longer lengths: too long either way.
                return Err(FrameError::ControlTooLong);
            }
        }
        match (role, masked) {
            (Role::Server, false) => return Err(FrameError::Unmasked),
            (Role::Client, true) => return Err(FrameError::Masked),
            _ => {}
        }
        let ext = match short {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let need = 2 + ext + if masked { 4 } else { 0 };
        if buf.len() < need {
            return Ok(None);
        }
        let len = match ext {
            2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(FrameError::LengthTooLarge);
                }
                len
            }
            _ => u64::from(short),
        };
        let mask = masked.then(|| {
            let at = 2 + ext;
            [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
        });
        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                len,
            },
            need,
        )))
    }

    /// Appends this header's bytes (with the shortest length encoding)
    /// to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.fin) << 7 | (self.rsv & 0b111) << 4 | self.opcode.bits());
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        match self.len {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        if let Some(m) = self.mask {
            out.extend_from_slice(&m);
        }
    }

    /// An unmasked final frame of `len` bytes (what a server sends).
    pub fn server(opcode: OpCode, rsv: u8, len: usize) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv,
            opcode,
            mask: None,
            len: len as u64,
        }
    }
}

/// XORs `data` with `mask`, where `data` starts `offset` bytes into the
/// frame's payload (so a payload can be unmasked in pieces as it arrives).
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: u64) {
    let shift = (offset % 4) as usize;
    let m = [
        mask[shift],
        mask[(shift + 1) % 4],
        mask[(shift + 2) % 4],
        mask[(shift + 3) % 4],
    ];
    let word = u32::from_ne_bytes(m);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(m) {
        *b ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        FrameHeader::parse(buf, Role::Server)
    }

    #[test]
    fn short_medium_and_long_lengths() {
        let (h, n) = parse(&[0x81, 0x85, 1, 2, 3, 4]).unwrap().unwrap();
        assert_eq!(n, 6);
        assert_eq!(
            h,
            FrameHeader {
                fin: true,
                rsv: 0,
                opcode: OpCode::Text,
                mask: Some([1, 2, 3, 4]),
                len: 5
            }
        );
        let (h, n) = parse(&[0x02, 0xfe, 0x01, 0x00, 9, 9, 9, 9])
            .unwrap()
            .unwrap();
        assert_eq!((h.fin, h.opcode, h.len, n), (false, OpCode::Binary, 256, 8));
        let mut long = vec![0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0];
        long.extend_from_slice(&[0; 4]);
        let (h, n) = parse(&long).unwrap().unwrap();
        assert_eq!((h.len, n), (65536, 14));
    }

    #[test]
    fn incomplete_headers_ask_for_more() {
        let full = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for end in 0..full.len() {
            assert_eq!(parse(&full[..end]), Ok(None), "{end} bytes");
        }
        assert!(parse(&full).unwrap().is_some());
    }

    #[test]
    fn header_rule_violations() {
        assert_eq!(parse(&[0x83, 0x80]), Err(FrameError::ReservedOpcode(3)));
        assert_eq!(parse(&[0x8b, 0x80]), Err(FrameError::ReservedOpcode(0xb)));
        assert_eq!(parse(&[0x09, 0x80]), Err(FrameError::FragmentedControl));
        assert_eq!(parse(&[0x89, 0xfe]), Err(FrameError::ControlTooLong));
        assert_eq!(parse(&[0x88, 0xff]), Err(FrameError::ControlTooLong));
        assert_eq!(parse(&[0x81, 0x05]), Err(FrameError::Unmasked));
        assert_eq!(
            FrameHeader::parse(&[0x81, 0x85], Role::Client),
            Err(FrameError::Masked)
        );
        let mut huge = vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0];
        huge.extend_from_slice(&[0; 4]);
        assert_eq!(parse(&huge), Err(FrameError::LengthTooLarge));
        // A 125-byte ping is fine; RSV bits are left to message rules.
        let (h, _) = parse(&[0xf9, 0x80 | 125, 0, 0, 0, 0]).unwrap().unwrap();
        assert_eq!((h.opcode, h.rsv, h.len), (OpCode::Ping, 0b111, 125));
    }

    #[test]
    fn encode_round_trips() {
        for len in [0u64, 125, 126, 65535, 65536, 1 << 40] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = FrameHeader {
                    fin: len % 2 == 0,
                    rsv: RSV1,
                    opcode: OpCode::Binary,
                    mask,
                    len,
                };
                let mut out = Vec::new();
                h.encode(&mut out);
                let role = if mask.is_some() {
                    Role::Server
                } else {
                    Role::Client
                };
                assert_eq!(
                    FrameHeader::parse(&out, role).unwrap(),
                    Some((h, out.len()))
                );
            }
        }
    }

    #[test]
    fn masking_in_pieces_matches_masking_at_once() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let plain: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let mut whole = plain.clone();
        apply_mask(&mut whole, mask, 0);
        for (i, b) in whole.iter().enumerate() {
            assert_eq!(*b, plain[i] ^ mask[i % 4]);
        }
        for split in [1usize, 2, 3, 5, 7, 500] {
            let mut pieces = plain.clone();
            let mut off = 0;
            for chunk in pieces.chunks_mut(split) {
                let n = chunk.len();
                apply_mask(chunk, mask, off);
                off += n as u64;
            }
            assert_eq!(pieces, whole, "pieces of {split}");
        }
    }
}
