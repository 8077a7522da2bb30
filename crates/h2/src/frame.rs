//! HTTP/2 framing (RFC 9113 section 4 and 6): frame headers, error codes,
//! settings, and writers that append frames to an output buffer.

/// Frame types.
pub(crate) mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub(crate) mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Settings identifiers.
pub(crate) mod setting {
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
}

/// The client connection preface (RFC 9113 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The frame header's length.
pub(crate) const HEADER_LEN: usize = 9;

/// The default SETTINGS_MAX_FRAME_SIZE, and the most we ever accept.
pub(crate) const DEFAULT_MAX_FRAME: usize = 16_384;

/// The largest stream identifier (2^31 - 1).
pub(crate) const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// The largest flow-control window (2^31 - 1).
pub(crate) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// An HTTP/2 error code (RFC 9113 section 7).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason(pub u32);

impl Reason {
    /// Graceful shutdown, or a stream no longer needed.
    pub const NO_ERROR: Reason = Reason(0x0);
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    /// A failure of our own.
    pub const INTERNAL_ERROR: Reason = Reason(0x2);
    /// The peer overran a flow-control window.
    pub const FLOW_CONTROL_ERROR: Reason = Reason(0x3);
    /// A frame on a closed stream.
    pub const STREAM_CLOSED: Reason = Reason(0x5);
    /// A frame of the wrong size.
    pub const FRAME_SIZE_ERROR: Reason = Reason(0x6);
    /// A stream refused before any processing (safe to retry).
    pub const REFUSED_STREAM: Reason = Reason(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: Reason = Reason(0x8);
    /// The HPACK contexts are out of step.
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
    /// The peer is abusive (floods, rapid reset).
    pub const ENHANCE_YOUR_CALM: Reason = Reason(0xb);

    /// The code's name in RFC 9113.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => "unknown",
        }
    }
}

impl std::fmt::Debug for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name())
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Parses the 9-byte header at the start of `b` (which must hold it).
    pub fn parse(b: &[u8]) -> Head {
        Head {
            len: (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize,
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// Appends a frame header.
pub(crate) fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// Patches the length of the frame whose header starts at `at`.
pub(crate) fn patch_len(out: &mut [u8], at: usize, len: usize) {
    out[at] = (len >> 16) as u8;
    out[at + 1] = (len >> 8) as u8;
    out[at + 2] = len as u8;
}

/// Appends a SETTINGS frame.
pub(crate) fn put_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * 6, kind::SETTINGS, 0, 0);
    for (id, v) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a WINDOW_UPDATE frame.
pub(crate) fn put_window_update(out: &mut Vec<u8>, stream: u32, inc: u32) {
    put_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&inc.to_be_bytes());
}

/// Appends a RST_STREAM frame.
pub(crate) fn put_rst(out: &mut Vec<u8>, stream: u32, reason: Reason) {
    put_head(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&reason.0.to_be_bytes());
}

/// Appends a GOAWAY frame.
pub(crate) fn put_goaway(out: &mut Vec<u8>, last: u32, reason: Reason) {
    put_head(out, 8, kind::GOAWAY, 0, 0);
    out.extend_from_slice(&last.to_be_bytes());
    out.extend_from_slice(&reason.0.to_be_bytes());
}

/// Appends a header block as HEADERS plus as many CONTINUATION frames as
/// `max_frame` requires. `encode` writes the block onto the buffer.
pub(crate) fn put_headers(
    out: &mut Vec<u8>,
    stream: u32,
    end_stream: bool,
    max_frame: usize,
    encode: impl FnOnce(&mut Vec<u8>),
) {
    let at = out.len();
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    put_head(out, 0, kind::HEADERS, flags | flag::END_HEADERS, stream);
    encode(out);
    let len = out.len() - at - HEADER_LEN;
    if len <= max_frame {
        patch_len(out, at, len);
        return;
    }
    // Split: HEADERS without END_HEADERS, then CONTINUATIONs.
    let block = out.split_off(at + HEADER_LEN);
    out.truncate(at);
    let mut chunks = block.chunks(max_frame).peekable();
    let mut first = true;
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none();
        let end = if last { flag::END_HEADERS } else { 0 };
        if first {
            put_head(out, c.len(), kind::HEADERS, flags | end, stream);
            first = false;
        } else {
            put_head(out, c.len(), kind::CONTINUATION, end, stream);
        }
        out.extend_from_slice(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_larger_than_a_frame_are_split_into_continuations() {
        let mut out = Vec::new();
        put_headers(&mut out, 3, true, 16_384, |o| {
            o.extend_from_slice(&[7u8; 40_000])
        });
        let h1 = Head::parse(&out);
        assert_eq!(
            (h1.len, h1.kind, h1.flags, h1.stream),
            (16_384, kind::HEADERS, flag::END_STREAM, 3)
        );
        let h2 = Head::parse(&out[9 + 16_384..]);
        assert_eq!((h2.len, h2.kind, h2.flags), (16_384, kind::CONTINUATION, 0));
        let h3 = Head::parse(&out[2 * (9 + 16_384)..]);
        assert_eq!(
            (h3.len, h3.kind, h3.flags),
            (40_000 - 2 * 16_384, kind::CONTINUATION, flag::END_HEADERS)
        );
        assert_eq!(out.len(), 3 * 9 + 40_000);

        let mut small = Vec::new();
        put_headers(&mut small, 1, false, 16_384, |o| o.push(0x88));
        assert_eq!(small, [0, 0, 1, 1, flag::END_HEADERS, 0, 0, 0, 1, 0x88]);
    }

    #[test]
    fn the_reserved_bit_is_ignored() {
        let h = Head::parse(&[0, 0, 4, 8, 0, 0x80, 0, 0, 5]);
        assert_eq!(h.stream, 5);
        assert_eq!(h.len, 4);
    }
}
