//! The TLS inspector's parser: decides from the first bytes of a
//! connection (peeked, not consumed) whether the client speaks TLS, and
//! reads the SNI and ALPN of its ClientHello for `filter_chain_match`.
//! No I/O and no allocation beyond the result; every length is checked,
//! so no input can make it panic (fuzzed, and replayed in `cargo test`).
//!
//! A ClientHello may span several handshake records; they are joined up
//! to `max_size` bytes of handshake message (Envoy's
//! `max_client_hello_size`, 64 KiB by default).

/// Envoy's default `max_client_hello_size`.
pub const DEFAULT_MAX_CLIENT_HELLO: usize = 64 * 1024;

const RECORD_HEADER: usize = 5;
const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
/// The largest TLS record payload a client may send (RFC 8446 §5.1).
const MAX_RECORD: usize = 1 << 14;

/// What the first bytes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inspect {
    /// Not a TLS ClientHello (plain text, SSLv2, or malformed TLS):
    /// Envoy's `tls_not_found`; the transport protocol is `raw_buffer`.
    NotTls,
    /// A TLS ClientHello so far, but incomplete: peek again after more
    /// bytes arrive.
    NeedMore,
    /// The ClientHello is larger than the limit: Envoy's
    /// `client_hello_too_large`; the connection is closed.
    TooLarge,
    /// A complete ClientHello.
    Hello(ClientHelloInfo),
}

/// What a ClientHello tells the chain selection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHelloInfo {
    /// The `server_name` extension's host name, lowercased.
    pub sni: Option<String>,
    /// The ALPN protocols offered, in the client's order.
    pub alpn: Vec<String>,
    /// How many bytes of the connection the ClientHello's records take
    /// (Envoy's `bytes_processed` histogram).
    pub bytes: usize,
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a `len_bytes`-byte length prefix (1 or 2).
    fn vec(&mut self, len_bytes: usize) -> Option<Reader<'a>> {
        let n = match len_bytes {
            1 => usize::from(self.u8()?),
            _ => usize::from(self.u16()?),
        };
        self.take(n).map(|buf| Reader { buf })
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Inspects the first bytes of a connection.
pub fn inspect(data: &[u8], max_size: usize) -> Inspect {
    // The handshake message, joined from as many records as it takes.
    let mut message: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        let header = &data[pos..];
        // Decide "not TLS" as early as the bytes allow.
        if let Some(&t) = header.first() {
            if t != HANDSHAKE {
                return Inspect::NotTls;
            }
        }
        if let Some(&major) = header.get(1) {
            if major != 3 {
                return Inspect::NotTls;
            }
        }
        if header.len() < RECORD_HEADER {
            return Inspect::NeedMore;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD + 256 {
            return Inspect::NotTls;
        }
        let Some(payload) = header.get(RECORD_HEADER..RECORD_HEADER + len) else {
            // The limit is on the handshake message, whose length is known
            // once its first 4 bytes are here: judging by the bytes that
            // came instead would call a hello too large when its record
            // carries more than the message, and only when that record
            // arrives in pieces (found by the client_hello fuzz harness).
            // Not a ClientHello is decided as early, for the same answer.
            let mut known = message.iter().chain(&header[RECORD_HEADER..]);
            return match (known.next(), known.next(), known.next(), known.next()) {
                (Some(&t), ..) if t != CLIENT_HELLO => Inspect::NotTls,
                (_, Some(&a), Some(&b), Some(&c)) if message_len(a, b, c) + 4 > max_size => {
                    Inspect::TooLarge
                }
                _ => Inspect::NeedMore,
            };
        };
        message.extend_from_slice(payload);
        pos += RECORD_HEADER + len;
        if message[0] != CLIENT_HELLO {
            return Inspect::NotTls;
        }
        if message.len() < 4 {
            continue;
        }
        let body_len = message_len(message[1], message[2], message[3]);
        if body_len + 4 > max_size {
            return Inspect::TooLarge;
        }
        if message.len() < body_len + 4 {
            if message.len() > max_size {
                return Inspect::TooLarge;
            }
            continue;
        }
        return match parse_hello(&message[4..4 + body_len]) {
            Some(mut info) => {
                info.bytes = pos;
                Inspect::Hello(info)
            }
            None => Inspect::NotTls,
        };
    }
}

/// A handshake message's 24-bit body length.
fn message_len(a: u8, b: u8, c: u8) -> usize {
    (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c)
}

/// Parses a ClientHello body; `None` if malformed.
fn parse_hello(body: &[u8]) -> Option<ClientHelloInfo> {
    let mut r = Reader { buf: body };
    let version = r.u16()?;
    if version >> 8 != 3 {
        return None;
    }
    r.take(32)?; // random
    let session_id = r.vec(1)?;
    if session_id.buf.len() > 32 {
        return None;
    }
    let suites = r.vec(2)?;
    if suites.buf.is_empty() || suites.buf.len() % 2 != 0 {
        return None;
    }
    if r.vec(1)?.is_empty() {
        return None; // at least the null compression method
    }
    let mut info = ClientHelloInfo::default();
    if r.is_empty() {
        return Some(info); // no extensions at all
    }
    let mut exts = r.vec(2)?;
    if !r.is_empty() {
        return None;
    }
    let mut seen: Vec<u16> = Vec::new();
    while !exts.is_empty() {
        let ty = exts.u16()?;
        let mut data = exts.vec(2)?;
        if seen.contains(&ty) {
            return None; // RFC 8446 §4.2: no duplicate extensions
        }
        seen.push(ty);
        match ty {
            EXT_SERVER_NAME => info.sni = parse_sni(&mut data)?,
            EXT_ALPN => info.alpn = parse_alpn(&mut data)?,
            _ => {}
        }
    }
    Some(info)
}

fn parse_sni(data: &mut Reader) -> Option<Option<String>> {
    let mut list = data.vec(2)?;
    if !data.is_empty() || list.is_empty() {
        return None;
    }
    let mut sni = None;
    while !list.is_empty() {
        let kind = list.u8()?;
        let name = list.vec(2)?;
        if kind == 0 {
            if sni.is_some() || name.buf.is_empty() {
                return None; // one host_name only (RFC 6066 §3)
            }
            // Host names are ASCII; BoringSSL refuses embedded NULs.
            if !name.buf.iter().all(|b| b.is_ascii_graphic()) {
                return None;
            }
            sni = Some(String::from_utf8_lossy(name.buf).to_ascii_lowercase());
        }
    }
    Some(sni)
}

fn parse_alpn(data: &mut Reader) -> Option<Vec<String>> {
    let mut list = data.vec(2)?;
    if !data.is_empty() || list.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        let p = list.vec(1)?;
        if p.is_empty() {
            return None;
        }
        out.push(String::from_utf8_lossy(p.buf).into_owned());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> Vec<u8> {
        let p = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn hello(name: &str) -> ClientHelloInfo {
        match inspect(&data(name), DEFAULT_MAX_CLIENT_HELLO) {
            Inspect::Hello(h) => h,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn real_client_hellos() {
        let h = hello("openssl-sni-alpn.bin");
        assert_eq!(h.sni.as_deref(), Some("www.example.com"));
        assert_eq!(h.alpn, vec!["h2", "http/1.1"]);
        assert_eq!(h.bytes, data("openssl-sni-alpn.bin").len());
        let h = hello("curl-sni-alpn.bin");
        assert_eq!(h.sni.as_deref(), Some("api.example.org"));
        assert_eq!(h.alpn, vec!["h2", "http/1.1"]);
        let h = hello("openssl-tls12-nosni.bin");
        assert_eq!(h.sni, None);
        assert!(h.alpn.is_empty());
        assert_eq!(
            inspect(&data("plain-http.bin"), DEFAULT_MAX_CLIENT_HELLO),
            Inspect::NotTls
        );
    }

    #[test]
    fn rustls_client_hello() {
        let config =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(crate::provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
        let mut config = config;
        config.alpn_protocols = vec![b"h2".to_vec()];
        let mut c = rustls::ClientConnection::new(
            std::sync::Arc::new(config),
            "Mixed.Case.Example".try_into().unwrap(),
        )
        .unwrap();
        let mut out = Vec::new();
        c.write_tls(&mut out).unwrap();
        let Inspect::Hello(h) = inspect(&out, DEFAULT_MAX_CLIENT_HELLO) else {
            panic!("rustls hello")
        };
        assert_eq!(h.sni.as_deref(), Some("mixed.case.example"));
        assert_eq!(h.alpn, vec!["h2"]);
    }

    #[test]
    fn every_prefix_needs_more_and_early_rejection() {
        let full = data("curl-sni-alpn.bin");
        for n in 0..full.len() {
            assert_eq!(
                inspect(&full[..n], DEFAULT_MAX_CLIENT_HELLO),
                Inspect::NeedMore,
                "prefix {n}"
            );
        }
        assert_eq!(inspect(b"G", 1024), Inspect::NotTls);
        assert_eq!(inspect(&[0x16, 0x02], 1024), Inspect::NotTls);
        // SSLv2-style hello.
        assert_eq!(
            inspect(&[0x80, 0x2e, 0x01, 0x00, 0x02], 1024),
            Inspect::NotTls
        );
        // A handshake record that is not a ClientHello, also before the
        // record is whole and when it is larger than the limit (the whole
        // record's answer, found by the client_hello fuzz harness).
        assert_eq!(inspect(&[0x16, 3, 1, 0, 1, 2], 1024), Inspect::NotTls);
        assert_eq!(inspect(&[0x16, 3, 1, 0, 9, 2], 1024), Inspect::NotTls);
        let big = [&[0x16, 3, 1, 0, 200, 2][..], &[0xff; 99]].concat();
        assert_eq!(inspect(&big, 64), Inspect::NotTls);
    }

    /// Splits a hello's handshake message into records of `size` bytes.
    fn fragment(full: &[u8], size: usize) -> Vec<u8> {
        let msg = &full[5..];
        let mut out = Vec::new();
        for chunk in msg.chunks(size) {
            out.extend_from_slice(&[0x16, 3, 1]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn fragmented_and_size_limit() {
        let full = data("openssl-sni-alpn.bin");
        for size in [1, 3, 7, 100] {
            let frag = fragment(&full, size);
            let Inspect::Hello(h) = inspect(&frag, DEFAULT_MAX_CLIENT_HELLO) else {
                panic!("size {size}")
            };
            assert_eq!(h.sni.as_deref(), Some("www.example.com"));
            assert_eq!(h.bytes, frag.len());
            assert_eq!(
                inspect(&frag[..frag.len() - 1], DEFAULT_MAX_CLIENT_HELLO),
                Inspect::NeedMore
            );
        }
        assert_eq!(inspect(&full, 100), Inspect::TooLarge);
        // The limit is on the message, not on its record: a record that
        // carries more than the hello gives the same answer whole and in
        // pieces.
        let mut padded = full[5..].to_vec();
        let msg_len = padded.len();
        padded.extend_from_slice(b"\0junk");
        let padded = fragment(&[&[0; 5][..], &padded].concat(), 1 << 14);
        for max in [msg_len, DEFAULT_MAX_CLIENT_HELLO] {
            let Inspect::Hello(h) = inspect(&padded, max) else {
                panic!("padded, limit {max}")
            };
            assert_eq!(h.bytes, padded.len());
            for n in 0..padded.len() {
                assert_eq!(inspect(&padded[..n], max), Inspect::NeedMore, "{max} {n}");
            }
        }
        assert_eq!(inspect(&padded, msg_len - 1), Inspect::TooLarge);
        assert_eq!(inspect(&padded[..9], msg_len - 1), Inspect::TooLarge);
        // A hello claiming 16 MiB is too large before its bytes arrive.
        assert_eq!(
            inspect(&[0x16, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff], 65536),
            Inspect::TooLarge
        );
    }

    /// A minimal ClientHello record carrying `exts` (None: no extensions
    /// block), with `compression` methods.
    fn build(exts: Option<&[u8]>, compression: &[u8]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]);
        body.push(compression.len() as u8);
        body.extend_from_slice(compression);
        if let Some(e) = exts {
            body.extend_from_slice(&(e.len() as u16).to_be_bytes());
            body.extend_from_slice(e);
        }
        let mut msg = vec![1, 0];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        rec.extend_from_slice(&msg);
        rec
    }

    fn sni_ext(name: &[u8]) -> Vec<u8> {
        let mut e = vec![0, 0];
        let list_len = name.len() + 3;
        e.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
        e.extend_from_slice(&(list_len as u16).to_be_bytes());
        e.push(0);
        e.extend_from_slice(&(name.len() as u16).to_be_bytes());
        e.extend_from_slice(name);
        e
    }

    #[test]
    fn synthetic_hellos() {
        let max = DEFAULT_MAX_CLIENT_HELLO;
        assert_eq!(
            inspect(&build(None, &[0]), max),
            Inspect::Hello(ClientHelloInfo {
                bytes: build(None, &[0]).len(),
                ..Default::default()
            })
        );
        let Inspect::Hello(h) = inspect(&build(Some(&sni_ext(b"A.B")), &[0]), max) else {
            panic!("sni")
        };
        assert_eq!(h.sni.as_deref(), Some("a.b"));
        // No compression method at all.
        assert_eq!(inspect(&build(None, &[]), max), Inspect::NotTls);
        // The same extension twice.
        let twice = [sni_ext(b"a"), sni_ext(b"b")].concat();
        assert_eq!(inspect(&build(Some(&twice), &[0]), max), Inspect::NotTls);
        // A NUL inside the host name, and an empty one.
        assert_eq!(
            inspect(&build(Some(&sni_ext(b"a\0b")), &[0]), max),
            Inspect::NotTls
        );
        assert_eq!(
            inspect(&build(Some(&sni_ext(b"")), &[0]), max),
            Inspect::NotTls
        );
        // An ALPN list with an empty protocol name.
        let alpn = [0, 16, 0, 4, 0, 2, 1, b'x', 0].to_vec();
        assert_eq!(
            inspect(&build(Some(&alpn[..7]), &[0]), max),
            Inspect::NotTls
        );
        let alpn_empty = [0u8, 16, 0, 3, 0, 1, 0];
        assert_eq!(
            inspect(&build(Some(&alpn_empty), &[0]), max),
            Inspect::NotTls
        );
        // An extension longer than the block.
        assert_eq!(
            inspect(&build(Some(&[0, 16, 0, 9, 0]), &[0]), max),
            Inspect::NotTls
        );
        // A zero-length record.
        assert_eq!(inspect(&[0x16, 3, 1, 0, 0], 1024), Inspect::NotTls);
    }

    /// A small xorshift generator, so the garbage is the same on every run.
    fn noise(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn garbage_and_mutations_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let base = [
            data("openssl-sni-alpn.bin"),
            data("curl-sni-alpn.bin"),
            data("openssl-tls12-nosni.bin"),
        ];
        for i in 0..20_000 {
            let mut buf = base[i % 3].clone();
            let flips = 1 + (noise(&mut seed) % 8) as usize;
            for _ in 0..flips {
                let at = (noise(&mut seed) as usize) % buf.len();
                buf[at] = noise(&mut seed) as u8;
            }
            let cut = (noise(&mut seed) as usize) % (buf.len() + 1);
            let _ = inspect(&buf[..cut], DEFAULT_MAX_CLIENT_HELLO);
            let _ = inspect(&buf, 64);
        }
        for _ in 0..5_000 {
            let len = (noise(&mut seed) % 600) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| noise(&mut seed) as u8).collect();
            if let Some(b) = buf.first_mut() {
                *b = 0x16;
            }
            if let Some(b) = buf.get_mut(1) {
                *b = 3;
            }
            let _ = inspect(&buf, DEFAULT_MAX_CLIENT_HELLO);
        }
    }
}
