//! Close frames (RFC 6455 §5.5.1, §7.4): status codes, which of them may
//! appear on the wire, and parsing a close frame's payload.

use thiserror::Error;

/// 1000: normal closure.
pub const NORMAL: u16 = 1000;
/// 1002: the peer broke the protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1007: a message's data was inconsistent with its type (invalid UTF-8).
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1009: a message too big to process.
pub const TOO_BIG: u16 = 1009;
/// 1011: the server met an unexpected condition.
pub const INTERNAL_ERROR: u16 = 1011;

/// Whether `code` may be sent in a close frame: the codes RFC 6455 §7.4.1
/// defines for the wire (1000–1003, 1007–1011), those registered with IANA
/// since (1012–1014), and the ranges for libraries and applications
/// (3000–4999). 1004 is reserved, and 1005, 1006 and 1015 only report
/// what happened locally; they must never be sent.
pub fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A close frame payload that breaks the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CloseError {
    /// One byte: too short for a code, too long for none.
    #[error("close payload of one byte")]
    OneByte,
    /// A code that may not be sent.
    #[error("close code {0} may not be sent")]
    InvalidCode(u16),
    /// A reason that is not UTF-8.
    #[error("close reason is not UTF-8")]
    InvalidReason,
}

impl CloseError {
    /// The code to close with in answer: 1007 for a bad reason, else 1002.
    pub fn close_code(self) -> u16 {
        match self {
            CloseError::InvalidReason => INVALID_PAYLOAD,
            _ => PROTOCOL_ERROR,
        }
    }
}

/// A close frame's status code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close<'a> {
    /// The status code.
    pub code: u16,
    /// The reason, possibly empty.
    pub reason: &'a str,
}

/// Parses a close frame's (unmasked) payload: `None` when it is empty
/// (no status code).
pub fn parse(payload: &[u8]) -> Result<Option<Close<'_>>, CloseError> {
    match payload {
        [] => Ok(None),
        [_] => Err(CloseError::OneByte),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_code(code) {
                return Err(CloseError::InvalidCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| CloseError::InvalidReason)?;
            Ok(Some(Close { code, reason }))
        }
    }
}

/// A close frame's payload: `code` then `reason`.
pub fn payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(2 + reason.len());
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(reason.as_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(is_valid_code(ok), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_code(bad), "{bad}");
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"\x03"), Err(CloseError::OneByte));
        assert_eq!(
            parse(b"\x03\xe8"),
            Ok(Some(Close {
                code: 1000,
                reason: ""
            }))
        );
        assert_eq!(
            parse(&[&[0x0f, 0xa1][..], "bye κόσμε".as_bytes()].concat()),
            Ok(Some(Close {
                code: 4001,
                reason: "bye κόσμε"
            }))
        );
        assert_eq!(parse(b"\x03\xed"), Err(CloseError::InvalidCode(1005)));
        assert_eq!(parse(b"\x03\xe7"), Err(CloseError::InvalidCode(999)));
        assert_eq!(
            parse(b"\x03\xe8\xce\xba\xe1\xbd"),
            Err(CloseError::InvalidReason)
        );
        assert_eq!(CloseError::InvalidReason.close_code(), 1007);
        assert_eq!(CloseError::InvalidCode(1005).close_code(), 1002);
        assert_eq!(payload(1000, "ok"), b"\x03\xe8ok");
    }
}
