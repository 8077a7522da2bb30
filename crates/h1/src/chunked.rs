//! Follows a chunked body byte by byte without copying it, so a proxy can
//! forward the bytes verbatim once they are known to be well framed. Any
//! deviation (bad size, missing CRLF, bare LF, oversize line) is an error.

use crate::H1Error;

/// Where the validator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedState {
    /// Reading a chunk size.
    Size,
    /// Reading chunk extensions.
    Ext,
    /// Expecting the LF after a size line.
    SizeLf,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// Expecting the LF after a trailer line.
    TrailerLf,
    /// Expecting the final LF.
    EndLf,
    /// The body is complete.
    Done,
}

/// Longest chunk-size line (with extensions) or trailer section accepted.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;

/// The validator.
#[derive(Debug, Clone)]
pub struct ChunkedValidator {
    state: ChunkedState,
    size: u64,
    digits: usize,
    line: usize,
    trailers: usize,
    data_bytes: u64,
    /// The trailer section's bytes, when asked for (`keep_trailers`).
    kept: Option<Vec<u8>>,
}

impl Default for ChunkedValidator {
    fn default() -> Self {
        ChunkedValidator {
            state: ChunkedState::Size,
            size: 0,
            digits: 0,
            line: 0,
            trailers: 0,
            data_bytes: 0,
            kept: None,
        }
    }
}

impl ChunkedValidator {
    /// A validator at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the final CRLF has been seen.
    pub fn is_done(&self) -> bool {
        self.state == ChunkedState::Done
    }

    /// Decoded payload bytes seen so far.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Keeps the trailer section's lines (to re-encode them for HTTP/2).
    pub fn keep_trailers(&mut self) {
        self.kept = Some(Vec::new());
    }

    /// The trailer fields seen, as `(name, value)` pairs (values trimmed);
    /// empty unless [`ChunkedValidator::keep_trailers`] was called.
    pub fn trailer_fields(&self) -> Vec<(&[u8], &[u8])> {
        let Some(k) = &self.kept else {
            return Vec::new();
        };
        k.split(|b| *b == b'\n')
            .filter_map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let colon = line.iter().position(|b| *b == b':')?;
                Some((&line[..colon], line[colon + 1..].trim_ascii()))
            })
            .collect()
    }

    /// The current state.
    pub fn state(&self) -> ChunkedState {
        self.state
    }

    /// Consumes body bytes from the start of `input`; returns how many
    /// belong to the body (less than `input.len()` only when the body ended).
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, H1Error> {
        self.feed_with(input, |_| {})
    }

    /// Like [`ChunkedValidator::feed`], calling `data` with each span of
    /// chunk payload (to de-chunk a body for an HTTP/1.0 peer).
    pub fn feed_with(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, H1Error> {
        use ChunkedState::*;
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                Done => return Ok(i),
                Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err(H1Error::Bad("chunk size too large"));
                        }
                        self.size =
                            self.size * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => {
                        self.state = Ext;
                        self.line = 0;
                    }
                    b'\r' if self.digits > 0 => self.state = SizeLf,
                    _ => return Err(H1Error::Bad("bad chunk size")),
                },
                Ext => match b {
                    b'\r' => self.state = SizeLf,
                    b'\n' => return Err(H1Error::Bad("bare LF in chunk extension")),
                    _ => {
                        self.line += 1;
                        if self.line > MAX_LINE {
                            return Err(H1Error::Bad("chunk extension too long"));
                        }
                    }
                },
                SizeLf => {
                    if b != b'\n' {
                        return Err(H1Error::Bad("bad chunk size line ending"));
                    }
                    self.state = if self.size == 0 {
                        TrailerStart
                    } else {
                        Data(self.size)
                    };
                    self.size = 0;
                    self.digits = 0;
                }
                Data(n) => {
                    let take = (input.len() - i).min(usize::try_from(n).unwrap_or(usize::MAX));
                    data(&input[i..i + take]);
                    i += take;
                    self.data_bytes += take as u64;
                    let left = n - take as u64;
                    self.state = if left == 0 { DataCr } else { Data(left) };
                    continue;
                }
                DataCr => {
                    if b != b'\r' {
                        return Err(H1Error::Bad("chunk data longer than its size"));
                    }
                    self.state = DataLf;
                }
                DataLf => {
                    if b != b'\n' {
                        return Err(H1Error::Bad("bad chunk data line ending"));
                    }
                    self.state = Size;
                }
                TrailerStart => {
                    self.state = if b == b'\r' { EndLf } else { Trailer };
                    if let (Some(k), true) = (&mut self.kept, b != b'\r') {
                        k.push(b);
                    }
                    if b == b'\n' {
                        return Err(H1Error::Bad("bare LF in trailers"));
                    }
                    self.trailers += 1;
                }
                Trailer => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(H1Error::TooLarge);
                    }
                    if let Some(k) = &mut self.kept {
                        k.push(b);
                    }
                    match b {
                        b'\r' => self.state = TrailerLf,
                        b'\n' => return Err(H1Error::Bad("bare LF in trailers")),
                        _ => {}
                    }
                }
                TrailerLf => {
                    if b != b'\n' {
                        return Err(H1Error::Bad("bad trailer line ending"));
                    }
                    if let Some(k) = &mut self.kept {
                        k.push(b'\n');
                    }
                    self.state = TrailerStart;
                }
                EndLf => {
                    if b != b'\n' {
                        return Err(H1Error::Bad("bad final line ending"));
                    }
                    self.state = Done;
                    return Ok(i + 1);
                }
            }
            i += 1;
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Result<(usize, bool, u64), H1Error> {
        let mut v = ChunkedValidator::new();
        let mut total = 0;
        for c in chunks {
            total += v.feed(c)?;
        }
        Ok((total, v.is_done(), v.data_bytes()))
    }

    #[test]
    fn well_formed_across_any_split() {
        let body = b"5\r\nhello\r\na;ext=1\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for split in 0..body.len() {
            let (a, b) = body.split_at(split);
            let (n, done, data) = run(&[a, b]).unwrap();
            assert!(done, "split {split}");
            assert_eq!(n, body.len() - 4, "split {split}");
            assert_eq!(data, 15);
        }
    }

    #[test]
    fn bytewise() {
        let body = b"3\r\nabc\r\n0\r\n\r\n";
        let mut v = ChunkedValidator::new();
        for b in body.iter() {
            assert_eq!(v.feed(&[*b]).unwrap(), 1);
        }
        assert!(v.is_done());
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"zz\r\n"[..],
            b"5\nhello\r\n",
            b"3\r\nabcd\r\n",
            b"3\r\nabc\n",
            b"0\r\nX: 1\n\r\n",
            b"ffffffffffffffff\r\n",
            b"\r\n",
            b"-1\r\n",
            b"0x5\r\n",
        ] {
            assert!(run(&[bad]).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn dechunks() {
        let mut v = ChunkedValidator::new();
        let mut out = Vec::new();
        let body = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        for c in body.chunks(4) {
            v.feed_with(c, |d| out.extend_from_slice(d)).unwrap();
        }
        assert!(v.is_done());
        assert_eq!(out, b"abcde");
    }

    #[test]
    fn incomplete_is_not_done() {
        let (_, done, _) = run(&[b"5\r\nhel"]).unwrap();
        assert!(!done);
    }

    #[test]
    fn kept_trailers_come_back_as_fields() {
        let mut v = ChunkedValidator::new();
        v.keep_trailers();
        let body = b"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\ngrpc-status:0\r\n\r\n";
        for b in body.iter() {
            assert_eq!(v.feed(std::slice::from_ref(b)).unwrap(), 1);
        }
        assert!(v.is_done());
        assert_eq!(
            v.trailer_fields(),
            vec![
                (&b"X-Checksum"[..], &b"abc123"[..]),
                (&b"grpc-status"[..], &b"0"[..])
            ]
        );
        let mut plain = ChunkedValidator::new();
        plain.feed(body).unwrap();
        assert!(plain.trailer_fields().is_empty());
    }
}
