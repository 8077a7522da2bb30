//! HPACK (RFC 7541): the decoder for request header blocks, with the
//! dynamic table the client's encoder indexes into, and a table-free
//! encoder for responses.
//!
//! Decoded fields land in one [`Block`]: a byte arena plus ranges, so a
//! request's headers cost two allocations however many there are, and
//! nothing is hashed or parsed into typed names. The encoder writes each
//! field as a literal without indexing (name indexed from the static
//! table where it is there), straight from the upstream's header bytes;
//! it never inserts into the client's table, so it needs no state and
//! never has to follow the client's table size.

use std::collections::VecDeque;

use crate::huffman;

/// The static table (RFC 7541 Appendix A), index 1 first.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Why a header block could not be decoded: a connection error
/// (COMPRESSION_ERROR), since the two tables are now out of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// The block ended inside a representation.
    #[error("header block truncated")]
    Truncated,
    /// An integer too large for any real table or string.
    #[error("integer overflow")]
    Overflow,
    /// An index beyond both tables, or index 0.
    #[error("invalid table index {0}")]
    Index(usize),
    /// A Huffman string with bad padding or EOS.
    #[error("invalid Huffman string")]
    Huffman,
    /// A table size update above SETTINGS_HEADER_TABLE_SIZE, or after a
    /// field.
    #[error("invalid dynamic table size update")]
    SizeUpdate,
    /// The decoded list passed twice its limit: a block of one-byte
    /// references to a large table entry would otherwise make every byte
    /// received cost kilobytes of copying.
    #[error("header list far over its limit")]
    Bomb,
}

/// A decoded header list: every name and value in one arena.
#[derive(Debug, Default, Clone)]
pub struct Block {
    buf: Vec<u8>,
    fields: Vec<[u32; 3]>,
    /// RFC 7541's size of the list (name + value + 32 per field).
    size: usize,
    /// Fields were dropped because the list passed the limit.
    oversize: bool,
}

impl Block {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty list sized for a block of `encoded` bytes (indexed fields
    /// expand ~20x; growing by reallocation cost ~5 reallocs a request).
    /// Its arenas come from this thread's free list and go back to it when
    /// the block is dropped, so a busy connection allocates none.
    pub fn for_encoded(encoded: usize) -> Self {
        let (mut buf, mut fields) = POOL
            .try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        buf.reserve((encoded * 8).clamp(256, 16 * 1024));
        fields.reserve(16);
        Block {
            buf,
            fields,
            size: 0,
            oversize: false,
        }
    }

    /// Empties the list, keeping its allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
        self.size = 0;
        self.oversize = false;
    }

    fn push(&mut self, name: &[u8], value: &[u8], limit: usize) {
        self.size += name.len() + value.len() + 32;
        if self.size > limit {
            self.oversize = true;
            return;
        }
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(name);
        self.buf.extend_from_slice(value);
        self.fields
            .push([start, name.len() as u32, value.len() as u32]);
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// RFC 7541's size of the list, dropped fields included.
    pub fn list_size(&self) -> usize {
        self.size
    }

    /// True when the list passed the decoder's limit (fields were dropped).
    pub fn is_oversize(&self) -> bool {
        self.oversize
    }

    /// The `i`th field as (name, value).
    pub fn field(&self, i: usize) -> (&[u8], &[u8]) {
        let [s, n, v] = self.fields[i];
        let (s, n, v) = (s as usize, n as usize, v as usize);
        (&self.buf[s..s + n], &self.buf[s + n..s + n + v])
    }

    /// The fields in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.fields.len()).map(move |i| self.field(i))
    }

    /// The first value of `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// Drops the fields `keep` says no to, keeping the rest in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &[u8]) -> bool) {
        let buf = &self.buf;
        self.fields.retain(|&[s, n, v]| {
            let (s, n, v) = (s as usize, n as usize, v as usize);
            keep(&buf[s..s + n], &buf[s + n..s + n + v])
        });
    }
}

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// Arenas kept per thread for [`Block::for_encoded`].
const POOL_KEEP: usize = 256;
/// Larger arenas are freed, not kept.
const POOL_MAX_BYTES: usize = 16 * 1024;

/// A block's two arenas: bytes and field ranges.
type Arenas = (Vec<u8>, Vec<[u32; 3]>);

thread_local! {
    static POOL: std::cell::RefCell<Vec<Arenas>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.buf.capacity() == 0 || self.buf.capacity() > POOL_MAX_BYTES {
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let mut fields = std::mem::take(&mut self.fields);
        buf.clear();
        fields.clear();
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_KEEP {
                p.push((buf, fields));
            }
        });
    }
}

/// The decoding side of one connection's HPACK context.
#[derive(Debug)]
pub struct Decoder {
    table: VecDeque<Entry>,
    size: usize,
    /// The current maximum (changed by the encoder's size updates).
    max: usize,
    /// SETTINGS_HEADER_TABLE_SIZE as we advertised it.
    limit: usize,
    scratch_name: Vec<u8>,
    scratch_value: Vec<u8>,
}

impl Decoder {
    /// A decoder for a connection that advertised `limit` as its
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub fn new(limit: usize) -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: limit,
            limit,
            scratch_name: Vec::new(),
            scratch_value: Vec::new(),
        }
    }

    /// Decodes one complete header block into `out`, which keeps at most
    /// `list_limit` bytes of fields (RFC 7541 sizes); the rest is decoded,
    /// so the table stays in step, and dropped (`Block::is_oversize`).
    pub fn decode(
        &mut self,
        mut src: &[u8],
        out: &mut Block,
        list_limit: usize,
    ) -> Result<(), HpackError> {
        let mut first = true;
        // Past this, the block is an attack, not a large head: stop.
        let bomb = list_limit.saturating_mul(2).saturating_add(16 * 1024);
        while let Some(&b) = src.first() {
            if out.size > bomb {
                return Err(HpackError::Bomb);
            }
            if b & 0x80 != 0 {
                let i = int(&mut src, 7)?;
                let (n, v) = self.entry(i)?;
                out.push(n, v, list_limit);
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update: only before the first field.
                let n = int(&mut src, 5)?;
                if !first || n > self.limit {
                    return Err(HpackError::SizeUpdate);
                }
                self.max = n;
                self.evict(0);
                continue;
            } else {
                let (prefix, index) = if b & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let i = int(&mut src, prefix)?;
                let mut name = std::mem::take(&mut self.scratch_name);
                name.clear();
                if i == 0 {
                    string(&mut src, &mut name)?;
                } else {
                    name.extend_from_slice(self.entry(i)?.0);
                }
                let mut value = std::mem::take(&mut self.scratch_value);
                value.clear();
                string(&mut src, &mut value)?;
                out.push(&name, &value, list_limit);
                if index {
                    self.insert(&name, &value);
                }
                self.scratch_name = name;
                self.scratch_value = value;
            }
            first = false;
        }
        Ok(())
    }

    fn entry(&self, i: usize) -> Result<(&[u8], &[u8]), HpackError> {
        match i {
            0 => Err(HpackError::Index(0)),
            1..=61 => {
                let (n, v) = STATIC[i - 1];
                Ok((n.as_bytes(), v.as_bytes()))
            }
            _ => self
                .table
                .get(i - 62)
                .map(|(n, v)| (&n[..], &v[..]))
                .ok_or(HpackError::Index(i)),
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + 32;
        if size > self.max {
            // Too big for the table: it empties (RFC 7541 4.4).
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.table.push_front((name.into(), value.into()));
        self.size += size;
    }

    /// Evicts until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }
}

/// Reads an HPACK integer with an `n`-bit prefix.
fn int(src: &mut &[u8], n: u8) -> Result<usize, HpackError> {
    let (&first, rest) = src.split_first().ok_or(HpackError::Truncated)?;
    *src = rest;
    let mask = (1u16 << n) as usize - 1;
    let mut v = first as usize & mask;
    if v < mask {
        return Ok(v);
    }
    let mut shift = 0;
    loop {
        let (&b, rest) = src.split_first().ok_or(HpackError::Truncated)?;
        *src = rest;
        // Four continuation bytes (2^28) is far beyond any table or frame.
        if shift > 21 {
            return Err(HpackError::Overflow);
        }
        v += ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
}

/// Reads a string literal (Huffman-coded or raw) onto `out`.
fn string(src: &mut &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let huff = src.first().ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = int(src, 7)?;
    if len > src.len() {
        return Err(HpackError::Truncated);
    }
    let (s, rest) = src.split_at(len);
    *src = rest;
    if huff {
        huffman::decode(s, out).map_err(|_| HpackError::Huffman)
    } else {
        out.extend_from_slice(s);
        Ok(())
    }
}

/// Writes an HPACK integer with an `n`-bit prefix; `flags` are the
/// first byte's high bits.
fn put_int(out: &mut Vec<u8>, flags: u8, n: u8, mut v: usize) {
    let mask = (1usize << n) - 1;
    if v < mask {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | mask as u8);
    v -= mask;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes `:status`: fully indexed when the static table has it.
pub fn encode_status(out: &mut Vec<u8>, status: u16) {
    let i = match status {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => 0,
    };
    if i != 0 {
        out.push(0x80 | i);
        return;
    }
    // Literal without indexing, name index 8.
    out.push(0x08);
    let mut digits = [b'0'; 3];
    let s = status.min(999);
    digits[0] += (s / 100) as u8;
    digits[1] += (s / 10 % 10) as u8;
    digits[2] += (s % 10) as u8;
    out.push(3);
    out.extend_from_slice(&digits);
}

/// The static table index of a (lowercase) header name, if it has one:
/// one `match` (length, then bytes), no scan of the table.
fn static_name(name: &[u8]) -> Option<usize> {
    Some(match name {
        b"accept-charset" => 15,
        b"accept-encoding" => 16,
        b"accept-language" => 17,
        b"accept-ranges" => 18,
        b"accept" => 19,
        b"access-control-allow-origin" => 20,
        b"age" => 21,
        b"allow" => 22,
        b"authorization" => 23,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"cookie" => 32,
        b"date" => 33,
        b"etag" => 34,
        b"expect" => 35,
        b"expires" => 36,
        b"from" => 37,
        b"host" => 38,
        b"if-match" => 39,
        b"if-modified-since" => 40,
        b"if-none-match" => 41,
        b"if-range" => 42,
        b"if-unmodified-since" => 43,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"max-forwards" => 47,
        b"proxy-authenticate" => 48,
        b"proxy-authorization" => 49,
        b"range" => 50,
        b"referer" => 51,
        b"refresh" => 52,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"transfer-encoding" => 57,
        b"user-agent" => 58,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
        _ => return None,
    })
}

/// Writes one field as a literal without indexing; the name is
/// lowercased on the way (HTTP/1.1 names may have capitals).
pub fn encode_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    // Lowercase on the stack; names longer than this are written as
    // they are lowercased, without a static-table lookup.
    let mut lower = [0u8; 32];
    let index = (name.len() <= lower.len())
        .then(|| {
            let l = &mut lower[..name.len()];
            for (d, s) in l.iter_mut().zip(name) {
                *d = s.to_ascii_lowercase();
            }
            static_name(l)
        })
        .flatten();
    match index {
        Some(i) => put_int(out, 0x00, 4, i),
        None => {
            out.push(0x00);
            put_int(out, 0x00, 7, name.len());
            out.extend(name.iter().map(u8::to_ascii_lowercase));
        }
    }
    put_int(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

/// Writes a request's pseudo-header fields (RFC 9113 8.3.1), the common
/// values as one-byte static-table references: `:method` GET/POST,
/// `:scheme` http/https, `:path` `/`; `:protocol` for an extended CONNECT.
pub fn encode_request_pseudo(
    out: &mut Vec<u8>,
    method: &[u8],
    scheme: &[u8],
    authority: &[u8],
    path: &[u8],
    protocol: Option<&[u8]>,
) {
    // Static table indexes (RFC 7541 appendix A).
    match method {
        b"GET" => out.push(0x82),
        b"POST" => out.push(0x83),
        m => put_name_ref(out, 2, m),
    }
    match scheme {
        b"http" => out.push(0x86),
        b"https" => out.push(0x87),
        s => put_name_ref(out, 6, s),
    }
    put_name_ref(out, 1, authority);
    match path {
        b"/" => out.push(0x84),
        p => put_name_ref(out, 4, p),
    }
    if let Some(p) = protocol {
        out.push(0x00);
        put_int(out, 0x00, 7, b":protocol".len());
        out.extend_from_slice(b":protocol");
        put_int(out, 0x00, 7, p.len());
        out.extend_from_slice(p);
    }
}

/// A literal without indexing whose name is static-table entry `index`.
fn put_name_ref(out: &mut Vec<u8>, index: usize, value: &[u8]) {
    put_int(out, 0x00, 4, index);
    put_int(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::hex;

    fn fields(b: &Block) -> Vec<(String, String)> {
        b.iter()
            .map(|(n, v)| {
                (
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    /// RFC 7541 Appendix C.4: three requests with Huffman coding, the
    /// dynamic table carried between them.
    #[test]
    fn decodes_the_rfc_request_sequence() {
        let mut d = Decoder::new(4096);
        let mut b = Block::new();
        d.decode(
            &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
            &mut b,
            1 << 20,
        )
        .unwrap();
        assert_eq!(
            fields(&b),
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        b.clear();
        d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf"), &mut b, 1 << 20)
            .unwrap();
        assert_eq!(b.get("cache-control"), Some(&b"no-cache"[..]));
        assert_eq!(b.get(":authority"), Some(&b"www.example.com"[..]));
        b.clear();
        d.decode(
            &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
            &mut b,
            1 << 20,
        )
        .unwrap();
        assert_eq!(b.get(":scheme"), Some(&b"https"[..]));
        assert_eq!(b.get(":path"), Some(&b"/index.html"[..]));
        assert_eq!(b.get(":authority"), Some(&b"www.example.com"[..]));
        assert_eq!(b.get("custom-key"), Some(&b"custom-value"[..]));
        assert_eq!(d.size, 164);
    }

    /// RFC 7541 Appendix C.5's first response, decoded with a 256-byte
    /// table: eviction as the RFC shows it.
    #[test]
    fn evicts_oldest_first() {
        let mut d = Decoder::new(256);
        let mut b = Block::new();
        let r1 = "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 \
                  3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 \
                  7777 2e65 7861 6d70 6c65 2e63 6f6d";
        d.decode(&hex(r1), &mut b, 1 << 20).unwrap();
        assert_eq!(d.size, 222);
        b.clear();
        d.decode(&hex("4803 3330 37c1 c0bf"), &mut b, 1 << 20)
            .unwrap();
        assert_eq!(b.get(":status"), Some(&b"307"[..]));
        assert_eq!(b.get("location"), Some(&b"https://www.example.com"[..]));
        assert_eq!(d.size, 222);
        assert_eq!(d.table.len(), 4);
    }

    #[test]
    fn bad_blocks_are_errors() {
        let mut d = Decoder::new(4096);
        let mut b = Block::new();
        assert_eq!(
            d.decode(&[0x80], &mut b, 1 << 20),
            Err(HpackError::Index(0))
        );
        assert_eq!(
            d.decode(&[0xbe], &mut b, 1 << 20),
            Err(HpackError::Index(62))
        );
        assert_eq!(
            d.decode(&[0x40, 0x05, b'a'], &mut b, 1 << 20),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            d.decode(&[0x3f, 0xe2, 0x1f], &mut b, 1 << 20),
            Err(HpackError::SizeUpdate)
        );
        assert_eq!(
            d.decode(&[0x82, 0x20], &mut b, 1 << 20),
            Err(HpackError::SizeUpdate)
        );
        assert_eq!(
            d.decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], &mut b, 1 << 20),
            Err(HpackError::Overflow)
        );
        // A size update to zero at the start empties the table.
        d.decode(&[0x40, 0x01, b'a', 0x01, b'b'], &mut b, 1 << 20)
            .unwrap();
        assert_eq!(d.table.len(), 1);
        d.decode(&[0x20, 0x82], &mut b, 1 << 20).unwrap();
        assert_eq!(d.table.len(), 0);
    }

    #[test]
    fn a_block_far_over_the_limit_is_cut_short() {
        let mut d = Decoder::new(4096);
        let mut b = Block::new();
        // A 3,000-byte value in the table, then 10,000 one-byte
        // references to it: 30 MB decoded from 10 KB.
        let mut block = vec![0x40, 0x01, b'x', 0x7f];
        let mut n = 3000 - 127;
        while n >= 128 {
            block.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        block.push(n as u8);
        block.extend(std::iter::repeat_n(b'v', 3000));
        block.extend(std::iter::repeat_n(0xbe, 10_000));
        assert_eq!(d.decode(&block, &mut b, 8 * 1024), Err(HpackError::Bomb));
        // Within twice the limit it is only oversize (a 431).
        let mut small = vec![0x40, 0x01, b'x', 0x01, b'v'];
        small.extend(std::iter::repeat_n(0xbe, 300));
        let mut d = Decoder::new(4096);
        b.clear();
        d.decode(&small, &mut b, 8 * 1024).unwrap();
        assert!(b.is_oversize());
    }

    #[test]
    fn an_oversize_list_is_flagged_and_the_table_stays_in_step() {
        let mut d = Decoder::new(4096);
        let mut b = Block::new();
        // Two indexed literals of 32 + 2 bytes each; limit 40 keeps one.
        d.decode(
            &[0x40, 0x01, b'a', 0x01, b'b', 0x40, 0x01, b'c', 0x01, b'd'],
            &mut b,
            40,
        )
        .unwrap();
        assert!(b.is_oversize());
        assert_eq!(b.len(), 1);
        assert_eq!(d.table.len(), 2);
    }

    #[test]
    fn dropped_blocks_lend_their_arenas_to_the_next() {
        let mut b = Block::for_encoded(10);
        b.push(b"a", b"b", 1 << 20);
        let ptr = b.buf.as_ptr();
        drop(b);
        let c = Block::for_encoded(10);
        assert_eq!(c.buf.as_ptr(), ptr);
        assert!(c.is_empty() && c.buf.is_empty());
    }

    #[test]
    fn static_names_match_the_table() {
        for (i, (n, _)) in STATIC.iter().enumerate() {
            if n.starts_with(':') {
                continue;
            }
            assert_eq!(static_name(n.as_bytes()), Some(i + 1), "{n}");
        }
        assert_eq!(static_name(b"x-unknown"), None);
    }

    #[test]
    fn the_encoder_output_decodes_back() {
        let mut out = Vec::new();
        encode_status(&mut out, 200);
        encode_status(&mut out, 503);
        encode_field(&mut out, b"Content-Type", b"text/plain");
        encode_field(&mut out, b"x-custom-header-with-a-long-name", &[b'v'; 300]);
        encode_field(&mut out, b"X-Mixed", b"1");
        encode_field(&mut out, b"server", b"envoy");
        let mut d = Decoder::new(4096);
        let mut b = Block::new();
        d.decode(&out, &mut b, 1 << 20).unwrap();
        let f = fields(&b);
        assert_eq!(f[0], (":status".into(), "200".into()));
        assert_eq!(f[1], (":status".into(), "503".into()));
        assert_eq!(f[2], ("content-type".into(), "text/plain".into()));
        assert_eq!(f[3].1.len(), 300);
        assert_eq!(f[4], ("x-mixed".into(), "1".into()));
        assert_eq!(f[5], ("server".into(), "envoy".into()));
        // Nothing was indexed.
        assert!(d.table.is_empty());
        // Static names are indexed: "server: envoy" is 7 bytes.
        let mut s = Vec::new();
        encode_field(&mut s, b"Server", b"envoy");
        assert_eq!(s, [0x0f, 0x27, 0x05, b'e', b'n', b'v', b'o', b'y']);
    }
}
