//! permessage-deflate (RFC 7692): choosing an offer from the client's
//! `Sec-WebSocket-Extensions`, and the per-connection codec.
//!
//! The codec is flate2 on miniz_oxide (pure Rust, no unsafe code). It
//! inflates whatever window the client compresses with (miniz_oxide always
//! keeps 32 KiB of history, enough for every `client_max_window_bits`), and
//! it compresses echoes with the full 32 KiB window. miniz_oxide cannot
//! compress with a smaller window, so when a client asks for
//! `server_max_window_bits` below 15 the offer is still accepted and the
//! echoes go out uncompressed (RSV1 clear), which RFC 7692 §6.1 lets a
//! sender do for any message and which uses no window at all.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use thiserror::Error;

/// The extension's name in `Sec-WebSocket-Extensions`.
const NAME: &str = "permessage-deflate";

/// The bytes a sync flush ends with; RFC 7692 §7.2.1 strips them from each
/// message and §7.2.2 puts them back before inflating.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What the server agreed to for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    /// The client asked the server not to keep its compression context
    /// between messages.
    pub server_no_context_takeover: bool,
    /// The largest window the server may compress with (8–15), if limited.
    pub server_max_window_bits: Option<u8>,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` response value.
    pub fn response(&self) -> String {
        let mut r = String::from(NAME);
        if self.server_no_context_takeover {
            r.push_str("; server_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            r.push_str(&format!("; server_max_window_bits={bits}"));
        }
        r
    }
}

/// Splits `s` at `sep`, except inside a quoted string.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A window-bits value: 8 to 15, plain digits (optionally quoted).
fn window_bits(v: &str) -> Option<u8> {
    let v = v.trim_matches('"');
    if v.is_empty() || v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// Reads one permessage-deflate offer's parameters; `None` when the offer
/// must be declined (an unknown or repeated parameter, a bad value).
fn read_offer(params: &[&str]) -> Option<Agreed> {
    let mut agreed = Agreed {
        server_no_context_takeover: false,
        server_max_window_bits: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    for p in params {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if seen.contains(&name) {
            return None;
        }
        seen.push(name);
        match (name, value) {
            ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
            // The server keeps its inflate context whatever the client
            // does, so this needs no answer.
            ("client_no_context_takeover", None) => {}
            ("server_max_window_bits", Some(v)) => {
                agreed.server_max_window_bits = Some(window_bits(v)?)
            }
            // miniz_oxide inflates any window up to 15 bits, so the
            // server need not limit the client's.
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) => {
                window_bits(v)?;
            }
            _ => return None,
        }
    }
    Some(agreed)
}

/// The first acceptable permessage-deflate offer among the client's
/// `Sec-WebSocket-Extensions` values, if any.
pub fn negotiate<'a>(headers: impl IntoIterator<Item = &'a [u8]>) -> Option<Agreed> {
    for value in headers {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        for ext in split_unquoted(value, ',') {
            let mut parts = split_unquoted(ext, ';').into_iter();
            if parts.next().map(str::trim) != Some(NAME) {
                continue;
            }
            let params: Vec<&str> = parts.collect();
            if let Some(a) = read_offer(&params) {
                return Some(a);
            }
        }
    }
    None
}

/// A compressed message that cannot be taken.
#[derive(Debug, Error)]
pub enum InflateError {
    /// It inflates to more than the message limit (close 1009).
    #[error("inflated message over {0} bytes")]
    TooBig(usize),
    /// It is not a valid DEFLATE stream (close 1007).
    #[error("invalid compressed data: {0}")]
    Corrupt(#[from] flate2::DecompressError),
    /// The inflater made no progress on its input (close 1007).
    #[error("compressed data stalled the inflater")]
    Stalled,
}

/// One connection's compression state.
pub struct Codec {
    /// `None` when echoes go out uncompressed (a window under 15 bits was
    /// asked for, or compression failed once).
    deflater: Option<Compress>,
    reset_deflater: bool,
    inflater: Decompress,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("compressing", &self.deflater.is_some())
            .field("reset_deflater", &self.reset_deflater)
            .finish()
    }
}

impl Codec {
    /// The codec for what was agreed.
    pub fn new(agreed: &Agreed) -> Self {
        let full_window = agreed.server_max_window_bits.is_none_or(|b| b == 15);
        Codec {
            deflater: full_window.then(|| Compress::new(Compression::fast(), false)),
            reset_deflater: agreed.server_no_context_takeover,
            inflater: Decompress::new(false),
        }
    }

    /// Inflates one message's payload (RFC 7692 §7.2.2), refusing output
    /// over `limit` bytes.
    pub fn inflate(&mut self, data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::with_capacity(
            data.len()
                .saturating_mul(2)
                .clamp(64, limit.saturating_add(1)),
        );
        let mut ended = false;
        'parts: for part in [data, &SYNC_TAIL[..]] {
            let mut pos = 0;
            loop {
                if out.len() == out.capacity() {
                    let room = limit.saturating_add(1).saturating_sub(out.len());
                    if room == 0 {
                        return Err(InflateError::TooBig(limit));
                    }
                    out.reserve_exact(out.capacity().clamp(1, room));
                }
                let (in0, out0) = (self.inflater.total_in(), self.inflater.total_out());
                let status =
                    self.inflater
                        .decompress_vec(&part[pos..], &mut out, FlushDecompress::Sync)?;
                pos += (self.inflater.total_in() - in0) as usize;
                if out.len() > limit {
                    return Err(InflateError::TooBig(limit));
                }
                if status == Status::StreamEnd {
                    // A final block: this stream is over, whatever follows.
                    ended = true;
                    break 'parts;
                }
                let room_left = out.len() < out.capacity();
                if pos == part.len() && room_left {
                    break;
                }
                let moved = self.inflater.total_in() != in0 || self.inflater.total_out() != out0;
                if !moved && room_left {
                    return Err(InflateError::Stalled);
                }
            }
        }
        if ended {
            self.inflater.reset(false);
        }
        Ok(out)
    }

    /// Compresses one message's payload (RFC 7692 §7.2.1); `None`: send it
    /// uncompressed.
    pub fn deflate(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let c = self.deflater.as_mut()?;
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut pos = 0;
        let ok = loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let in0 = c.total_in();
            if c.compress_vec(&data[pos..], &mut out, FlushCompress::Sync)
                .is_err()
            {
                break false;
            }
            pos += (c.total_in() - in0) as usize;
            if pos == data.len() && out.len() < out.capacity() {
                break out.ends_with(&SYNC_TAIL);
            }
        };
        if !ok {
            // The context is in an unknown state: stop compressing.
            self.deflater = None;
            return None;
        }
        out.truncate(out.len() - SYNC_TAIL.len());
        if self.reset_deflater {
            c.reset();
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(v: &str) -> Option<Agreed> {
        negotiate([v.as_bytes()])
    }

    #[test]
    fn offers() {
        let plain = Agreed {
            server_no_context_takeover: false,
            server_max_window_bits: None,
        };
        assert_eq!(offer("permessage-deflate"), Some(plain.clone()));
        assert_eq!(
            offer("permessage-deflate; client_no_context_takeover; client_max_window_bits"),
            Some(plain.clone())
        );
        let a =
            offer("permessage-deflate; server_no_context_takeover; server_max_window_bits=\"9\"")
                .unwrap();
        assert_eq!(
            a.response(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        );
        // The first acceptable offer wins, across values and lists.
        let a = negotiate([
            &b"x-webkit-deflate-frame"[..],
            b"permessage-deflate; server_max_window_bits=7, permessage-deflate; server_no_context_takeover",
        ]);
        assert_eq!(
            a.map(|a| a.response()).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown",
            "deflate-frame",
        ] {
            assert_eq!(offer(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trip_with_and_without_context_takeover() {
        for reset in [false, true] {
            let agreed = Agreed {
                server_no_context_takeover: reset,
                server_max_window_bits: None,
            };
            let (mut tx, mut rx) = (Codec::new(&agreed), Codec::new(&agreed));
            let text = "Hello, hello, hello, permessage-deflate! ".repeat(50);
            for msg in [text.as_bytes(), b"", text.as_bytes(), &[7u8; 100_000][..]] {
                let z = tx.deflate(msg).unwrap();
                assert!(!z.ends_with(&SYNC_TAIL));
                assert_eq!(rx.inflate(&z, 1 << 20).unwrap(), msg);
            }
        }
    }

    #[test]
    fn empty_message_and_known_bytes() {
        let mut c = Codec::new(&offer("permessage-deflate").unwrap());
        // RFC 7692 §7.2.3.1: "Hello" as one compressed block.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(c.inflate(&hello, 100).unwrap(), b"Hello");
        // §7.2.3.6: an empty message may be one 0x00 byte.
        assert_eq!(c.inflate(&[0x00], 100).unwrap(), b"");
        // A message with a final block (BFINAL) ends that stream.
        assert_eq!(
            c.inflate(&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100)
                .unwrap(),
            b"Hello"
        );
        assert_eq!(c.inflate(&hello, 100).unwrap(), b"Hello");
    }

    #[test]
    fn limits_and_corruption() {
        let agreed = offer("permessage-deflate").unwrap();
        let z = Codec::new(&agreed).deflate(&[0u8; 1 << 20]).unwrap();
        assert!(z.len() < 10_000);
        assert!(matches!(
            Codec::new(&agreed).inflate(&z, 1 << 19),
            Err(InflateError::TooBig(_))
        ));
        assert_eq!(
            Codec::new(&agreed).inflate(&z, 1 << 20).unwrap().len(),
            1 << 20
        );
        assert!(Codec::new(&agreed)
            .inflate(&[0xff, 0xff, 0xff], 100)
            .is_err());
    }

    #[test]
    fn small_server_window_means_uncompressed_echoes() {
        let mut c = Codec::new(&offer("permessage-deflate; server_max_window_bits=9").unwrap());
        assert_eq!(c.deflate(b"abc"), None);
        let mut c = Codec::new(&offer("permessage-deflate; server_max_window_bits=15").unwrap());
        assert!(c.deflate(b"abc").is_some());
    }
}
