//! HPACK's Huffman code (RFC 7541 Appendix B), decoding only: nuncio
//! writes header values as plain literals, so only the client's strings
//! are ever Huffman-coded.
//!
//! The code is canonical (codes of one length are consecutive and sorted
//! by symbol), so the table below holds only each symbol's code length;
//! the codes themselves are rebuilt at compile time. A unit test checks
//! the result against the RFC's Appendix C examples.

/// Code length in bits of each symbol, 0..=255 and EOS (256), from
/// RFC 7541 Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const MAX_LEN: usize = 30;

/// The canonical decoding tables: for each length, the first code, how
/// many codes have it, and where its symbols start in `SYMBOLS`.
struct Canon {
    first: [u32; MAX_LEN + 1],
    count: [u32; MAX_LEN + 1],
    offset: [u32; MAX_LEN + 1],
    symbols: [u16; 257],
}

const fn canon() -> Canon {
    let mut c = Canon {
        first: [0; MAX_LEN + 1],
        count: [0; MAX_LEN + 1],
        offset: [0; MAX_LEN + 1],
        symbols: [0; 257],
    };
    let mut s = 0;
    while s < 257 {
        c.count[LENGTHS[s] as usize] += 1;
        s += 1;
    }
    let mut code = 0u32;
    let mut at = 0u32;
    let mut len = 1;
    while len <= MAX_LEN {
        c.first[len] = code;
        c.offset[len] = at;
        // Symbols of this length, in symbol order.
        let mut s = 0;
        while s < 257 {
            if LENGTHS[s] as usize == len {
                c.symbols[at as usize] = s as u16;
                at += 1;
            }
            s += 1;
        }
        code = (code + c.count[len]) << 1;
        len += 1;
    }
    c
}

static CANON: Canon = canon();

/// Bits looked up at once: every code this short or shorter (all the
/// letters, digits and common punctuation) decodes with one table read.
const PEEK: usize = 9;

/// For each `PEEK`-bit prefix: the symbol and code length of the code it
/// starts with, or length 0 when that code is longer than `PEEK`.
static FAST: [(u8, u8); 1 << PEEK] = fast();

const fn fast() -> [(u8, u8); 1 << PEEK] {
    let c = canon();
    let mut t = [(0u8, 0u8); 1 << PEEK];
    let mut len = 1;
    while len <= PEEK {
        let mut i = 0;
        while i < c.count[len] {
            let sym = c.symbols[(c.offset[len] + i) as usize];
            let code = (c.first[len] + i) as usize;
            let spread = 1usize << (PEEK - len);
            let mut x = 0;
            while x < spread {
                // Only octets are this short (EOS is 30 bits).
                t[(code << (PEEK - len)) | x] = (sym as u8, len as u8);
                x += 1;
            }
            i += 1;
        }
        len += 1;
    }
    t
}

/// A Huffman string that is not valid HPACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HuffmanError;

/// What the canonical walk finds at the top of the `n` bits in `acc`.
enum Walk {
    /// A symbol (EOS included) and its code length.
    Found(u16, usize),
    /// No code ends within the bits there are: more are needed.
    More,
}

/// Finds the code at the top of `acc`'s low `n` bits by walking the
/// canonical code lengths (the slow path, for long codes and the tail).
fn walk(acc: u64, n: usize) -> Result<Walk, HuffmanError> {
    let c = &CANON;
    for len in 1..=n.min(MAX_LEN) {
        let code = ((acc >> (n - len)) as u32) & ((1u32 << len) - 1);
        let i = code.wrapping_sub(c.first[len]);
        if i < c.count[len] {
            return Ok(Walk::Found(c.symbols[(c.offset[len] + i) as usize], len));
        }
    }
    if n >= MAX_LEN {
        return Err(HuffmanError);
    }
    Ok(Walk::More)
}

/// Decodes `src`, appending the octets to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    out.reserve(src.len() * 8 / 5);
    // The bits not decoded yet are the low `n` bits of `acc`.
    let mut acc = 0u64;
    let mut n = 0usize;
    for &byte in src {
        acc = (acc << 8) | u64::from(byte);
        n += 8;
        while n >= PEEK {
            let (sym, len) = FAST[((acc >> (n - PEEK)) as usize) & ((1 << PEEK) - 1)];
            if len != 0 {
                out.push(sym);
                n -= len as usize;
                continue;
            }
            match walk(acc, n)? {
                // EOS inside a string is an error (RFC 7541 5.2).
                Walk::Found(256, _) => return Err(HuffmanError),
                Walk::Found(sym, len) => {
                    out.push(sym as u8);
                    n -= len;
                }
                Walk::More => break,
            }
        }
        acc &= (1u64 << n) - 1;
    }
    // The tail: codes shorter than PEEK, then the padding.
    while n > 0 {
        match walk(acc, n)? {
            Walk::Found(256, _) => return Err(HuffmanError),
            Walk::Found(sym, len) => {
                out.push(sym as u8);
                n -= len;
                acc &= (1u64 << n) - 1;
            }
            Walk::More => break,
        }
    }
    // Padding: fewer than 8 bits, all ones (the EOS code's prefix).
    if n >= 8 || acc != (1u64 << n) - 1 {
        return Err(HuffmanError);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::hex;

    fn dec(h: &str) -> Result<String, HuffmanError> {
        let mut out = Vec::new();
        decode(&hex(h), &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    /// RFC 7541 Appendix C.4 and C.6.
    #[test]
    fn decodes_the_rfc_examples() {
        assert_eq!(
            dec("f1e3 c2e5 f23a 6ba0 ab90 f4ff").unwrap(),
            "www.example.com"
        );
        assert_eq!(dec("a8eb 1064 9cbf").unwrap(), "no-cache");
        assert_eq!(dec("25a8 49e9 5ba9 7d7f").unwrap(), "custom-key");
        assert_eq!(dec("25a8 49e9 5bb8 e8b4 bf").unwrap(), "custom-value");
        assert_eq!(dec("6402").unwrap(), "302");
        assert_eq!(dec("aec3 771a 4b").unwrap(), "private");
        assert_eq!(
            dec("d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff").unwrap(),
            "Mon, 21 Oct 2013 20:13:21 GMT"
        );
        assert_eq!(
            dec("9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3").unwrap(),
            "https://www.example.com"
        );
        assert_eq!(dec("").unwrap(), "");
    }

    #[test]
    fn bad_padding_and_eos_are_errors() {
        // '0' is 00000 (5 bits): three padding zeros are not EOS's prefix.
        assert_eq!(dec("00"), Err(HuffmanError));
        // A whole byte of padding.
        assert_eq!(dec("07ff"), Err(HuffmanError));
        // EOS itself (30 ones), padded.
        assert_eq!(dec("ffff ffff"), Err(HuffmanError));
        // '0' then three one-bits of padding is fine.
        assert_eq!(dec("07").unwrap(), "0");
    }

    /// The plain bit-at-a-time decoder the table-driven one replaced.
    fn reference(src: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let c = &CANON;
        let (mut out, mut code, mut len) = (Vec::new(), 0u32, 0usize);
        for &byte in src {
            for bit in (0..8).rev() {
                code = (code << 1) | u32::from((byte >> bit) & 1);
                len += 1;
                let i = code.wrapping_sub(c.first[len]);
                if i < c.count[len] {
                    let sym = c.symbols[(c.offset[len] + i) as usize];
                    if sym == 256 {
                        return Err(HuffmanError);
                    }
                    out.push(sym as u8);
                    (code, len) = (0, 0);
                } else if len == MAX_LEN {
                    return Err(HuffmanError);
                }
            }
        }
        if len >= 8 || code != (1u32 << len) - 1 {
            return Err(HuffmanError);
        }
        Ok(out)
    }

    #[test]
    fn the_table_decoder_agrees_with_the_bitwise_one() {
        // Random strings (mostly invalid: long codes, EOS, bad padding)
        // and strings biased to valid short codes.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let src: Vec<u8> = (0..len)
                .map(|i| {
                    let b = (x >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(31);
                    if round % 2 == 0 {
                        b
                    } else {
                        b | 0x80
                    }
                })
                .collect();
            let mut got = Vec::new();
            let r = decode(&src, &mut got).map(|()| got);
            assert_eq!(r, reference(&src), "{src:02x?}");
        }
    }

    #[test]
    fn every_octet_round_trips_through_the_canonical_codes() {
        // Encode with codes rebuilt from the same tables, then decode.
        let c = &CANON;
        let mut bits: Vec<bool> = Vec::new();
        for (sym, &len) in LENGTHS.iter().enumerate().take(256) {
            let len = len as usize;
            let rank = (0..c.count[len])
                .find(|&i| c.symbols[(c.offset[len] + i) as usize] as usize == sym)
                .unwrap();
            let code = c.first[len] + rank;
            for b in (0..len).rev() {
                bits.push((code >> b) & 1 == 1);
            }
        }
        while !bits.len().is_multiple_of(8) {
            bits.push(true);
        }
        let bytes: Vec<u8> = bits
            .chunks(8)
            .map(|ch| ch.iter().fold(0u8, |a, &b| (a << 1) | u8::from(b)))
            .collect();
        let mut out = Vec::new();
        decode(&bytes, &mut out).unwrap();
        assert_eq!(out, (0..=255u8).collect::<Vec<_>>());
    }
}
