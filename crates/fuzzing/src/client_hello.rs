//! The TLS inspector's ClientHello parser (`nuncio_tls::inspect`), checked
//! against invariants that hold for every input, not only "no panic":
//!
//! 1. the answer is a function of the bytes (the same twice);
//! 2. a [`Inspect::Hello`] is consistent with the input: it ends on a
//!    record boundary inside the input (`bytes`), its SNI is a non-empty,
//!    lowercase, printable ASCII name found in the handshake message, its
//!    ALPN protocols are non-empty and at most 255 characters;
//! 3. bytes arriving one at a time change nothing: every prefix of the
//!    input answers [`Inspect::NeedMore`] or the input's own answer (the
//!    listener peeks again as bytes arrive and acts on the first answer
//!    that is not `NeedMore`), and a hello's first `bytes` bytes answer the
//!    same hello;
//! 4. a smaller `max_client_hello_size` can only turn an answer into
//!    [`Inspect::TooLarge`]; the limit is on the handshake message, so a
//!    hello fits a limit of exactly its size (however its bytes arrive)
//!    and is too large for one byte less;
//! 5. the same handshake message split into records of other sizes (1, 2,
//!    5 bytes, the largest record) gives the same SNI and ALPN.
//!
//! A violation panics, which is what libFuzzer reports.

use nuncio_tls::inspect::{inspect, ClientHelloInfo, Inspect, DEFAULT_MAX_CLIENT_HELLO};

/// Inputs up to this long have every prefix checked; longer ones a sample.
const ALL_PREFIXES: usize = 1024;

/// Inspects `data` as the first bytes of a connection and checks the
/// invariants of the module doc; panics on a violation. Returns the answer
/// under Envoy's default limit.
pub fn client_hello(data: &[u8]) -> Inspect {
    let max = DEFAULT_MAX_CLIENT_HELLO;
    let full = inspect(data, max);
    assert_eq!(full, inspect(data, max), "not deterministic");
    check_prefixes(data, &full, max);
    // Invariant 4, with a limit the input's own size makes relevant and a
    // tiny one; invariant 3 under the tiny one too.
    for small in [(data.len() / 2).min(max), 64] {
        let got = inspect(data, small);
        assert!(
            got == Inspect::TooLarge || got == full,
            "limit {small} gave {got:?}, the default limit {full:?}"
        );
    }
    check_prefixes(data, &inspect(data, 64), 64);
    if let Inspect::Hello(info) = &full {
        check_hello(data, info, max);
    }
    full
}

/// Invariant 3 under limit `max`: every prefix (or a sample of them, for
/// long inputs) answers `NeedMore` or `full`.
fn check_prefixes(data: &[u8], full: &Inspect, max: usize) {
    let step = if data.len() <= ALL_PREFIXES {
        1
    } else {
        data.len() / 256
    };
    let mut n = 0;
    while n < data.len() {
        let got = inspect(&data[..n], max);
        assert!(
            got == Inspect::NeedMore || got == *full,
            "limit {max}: a prefix of {n} bytes gave {got:?}, the whole input ({} bytes) {full:?}",
            data.len()
        );
        n += step;
    }
}

/// Invariants 2, 3 (the hello's own length) and 5 for a hello.
fn check_hello(data: &[u8], info: &ClientHelloInfo, max: usize) {
    assert!(
        info.bytes > 0 && info.bytes <= data.len(),
        "hello of {} bytes in {} bytes of input",
        info.bytes,
        data.len()
    );
    assert_eq!(
        inspect(&data[..info.bytes], max),
        Inspect::Hello(info.clone()),
        "the hello's own bytes give another answer"
    );
    let message = handshake_message(&data[..info.bytes]);
    if let Some(sni) = &info.sni {
        assert!(!sni.is_empty() && sni.len() <= data.len(), "SNI {sni:?}");
        assert!(
            sni.bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()),
            "SNI not lowercase printable ASCII: {sni:?}"
        );
        assert!(
            message
                .windows(sni.len())
                .any(|w| w.eq_ignore_ascii_case(sni.as_bytes())),
            "SNI {sni:?} is not in the handshake message"
        );
    }
    assert!(
        info.alpn.len() * 2 <= data.len(),
        "{} ALPN protocols",
        info.alpn.len()
    );
    for p in &info.alpn {
        let chars = p.chars().count();
        assert!(chars > 0 && chars <= 255, "ALPN protocol {p:?}");
    }
    // Invariant 5: the message alone (without what followed it in its last
    // record), re-split into records of other sizes.
    let len = message
        .get(1..4)
        .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
        .expect("a hello has a handshake header");
    let message = message
        .get(..len + 4)
        .expect("a hello's message is complete");
    // The limit applies to the handshake message: the hello fits a limit of
    // exactly its size, at any arrival pattern, and not one byte less.
    let exact = inspect(data, len + 4);
    assert_eq!(exact, Inspect::Hello(info.clone()), "limit {}", len + 4);
    check_prefixes(data, &exact, len + 4);
    assert_eq!(
        inspect(data, len + 3),
        Inspect::TooLarge,
        "limit {}",
        len + 3
    );
    for size in [1, 2, 5, 1 << 14] {
        let records = split(message, size);
        let Inspect::Hello(again) = inspect(&records, max) else {
            panic!("the hello split into {size}-byte records is no hello");
        };
        assert_eq!(
            (&again.sni, &again.alpn, again.bytes),
            (&info.sni, &info.alpn, records.len()),
            "the hello split into {size}-byte records"
        );
    }
}

/// The payloads of the records that make up `hello` (which the inspector
/// said ends on a record boundary), joined.
fn handshake_message(hello: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    let mut rest = hello;
    while !rest.is_empty() {
        let len = rest
            .get(3..5)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .expect("a whole record header");
        let payload = rest
            .get(5..5 + len)
            .expect("the hello ends on a record boundary");
        message.extend_from_slice(payload);
        rest = &rest[5 + len..];
    }
    message
}

/// `message` as handshake records of at most `size` bytes each.
fn split(message: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / size * 5 + 5);
    for chunk in message.chunks(size) {
        out.extend_from_slice(&[22, 3, 1]);
        // Chunks are at most 2^14 bytes, so the length fits.
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}
