//! Incremental UTF-8 validation for text messages that arrive in pieces
//! (fragments, or parts of one frame's payload).
//!
//! RFC 6455 §8.1 lets an endpoint fail the connection as soon as the bytes
//! seen so far can no longer be valid UTF-8, whether or not the message is
//! complete. [`Utf8Validator::feed`] does that: a code point split across
//! pieces is kept (at most 3 bytes) until its end arrives, and a prefix
//! that no continuation could make valid (an overlong form, a surrogate,
//! a code point above U+10FFFF, a stray continuation byte) is refused at
//! once. The checks themselves are the standard library's.

use thiserror::Error;

/// Bytes that are not, and cannot become, valid UTF-8 (close code 1007).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid UTF-8 in a text message")]
pub struct InvalidUtf8;

/// Validates a byte stream piece by piece.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// The start of a code point whose remaining bytes are still to come.
    partial: [u8; 4],
    /// How many bytes of `partial` are held (0 to 3).
    held: usize,
}

/// How many bytes a code point starting with `lead` takes (for a lead byte
/// the standard library already accepted as a valid start).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next piece. Fails as soon as the bytes so far cannot be
    /// the start of valid UTF-8.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.held > 0 {
            let need = sequence_len(self.partial[0]) - self.held;
            let take = need.min(data.len());
            self.partial[self.held..self.held + take].copy_from_slice(&data[..take]);
            self.held += take;
            data = &data[take..];
            match std::str::from_utf8(&self.partial[..self.held]) {
                Ok(_) => self.held = 0,
                // Still short of its end, and `data` is used up.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.held = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Checks that the message ended on a code point boundary, and resets
    /// the validator for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let held = std::mem::take(&mut self.held);
        if held == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` and finishes; `Err(i)`: piece `i` (or `pieces.len()`
    /// for the end) was refused.
    fn check(pieces: &[&[u8]]) -> Result<(), usize> {
        let mut v = Utf8Validator::new();
        for (i, p) in pieces.iter().enumerate() {
            v.feed(p).map_err(|_| i)?;
        }
        v.finish().map_err(|_| pieces.len())
    }

    #[test]
    fn valid_text_split_at_every_byte() {
        let text = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞 \u{10ffff}".as_bytes();
        for cut in 0..=text.len() {
            assert_eq!(check(&[&text[..cut], &text[cut..]]), Ok(()), "cut {cut}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(check(&bytes), Ok(()));
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[b"", b""]), Ok(()));
    }

    #[test]
    fn fails_fast_on_the_piece_that_breaks_it() {
        // U+110000 (above the last code point) split over three pieces:
        // the second byte already rules it out.
        assert_eq!(
            check(&[b"\xce\xba", b"\xf4", b"\x90\x80\x80", b"ok"]),
            Err(2)
        );
        // A UTF-16 surrogate (ED A0 80).
        assert_eq!(check(&[b"a\xed", b"\xa0\x80"]), Err(1));
        // An overlong '/' (C0 AF) fails on its first byte.
        assert_eq!(check(&[b"\xc0", b"\xaf"]), Err(0));
        // An overlong 3-byte form (E0 80 AF).
        assert_eq!(check(&[b"\xe0", b"\x80\xaf"]), Err(1));
        // A stray continuation byte.
        assert_eq!(check(&[b"abc", b"\x80"]), Err(1));
        // Bytes never seen in UTF-8.
        assert_eq!(check(&[b"\xfe"]), Err(0));
        assert_eq!(check(&[b"\xf5\x80\x80\x80"]), Err(0));
    }

    #[test]
    fn a_message_may_not_end_inside_a_code_point() {
        assert_eq!(check(&[b"\xe2\x82"]), Err(1));
        assert_eq!(check(&[b"ok", b"\xf0\x9d\x84"]), Err(2));
        // After finish, the validator is ready for the next message.
        let mut v = Utf8Validator::new();
        v.feed(b"\xe2").unwrap();
        assert!(v.finish().is_err());
        v.feed(b"fine").unwrap();
        assert!(v.finish().is_ok());
    }

    #[test]
    fn a_completed_code_point_then_more_in_the_same_piece() {
        // The held E2 82 is completed by AC, and the rest is checked too.
        assert_eq!(check(&[b"\xe2\x82", b"\xac\xe2\x82\xac"]), Ok(()));
        assert_eq!(check(&[b"\xe2\x82", b"\xac\xff"]), Err(1));
        // Completed only partly, then again.
        assert_eq!(check(&[b"\xf0", b"\x9d", b"\x84", b"\x9e"]), Ok(()));
    }
}
