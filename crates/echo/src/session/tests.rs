//! The echo session over an in-memory socket: what it echoes, and the
//! close code each broken rule gets.

use super::*;
use crate::deflate::{negotiate, Codec};
use nuncio_websocket::frame::MAX_HEADER_LEN;
use tokio::io::DuplexStream;

const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// A masked client frame; `first` is the first byte (FIN, RSV, opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let h = FrameHeader {
        fin: first & 0x80 != 0,
        rsv: (first >> 4) & 0b111,
        opcode: OpCode::from_bits(first).unwrap_or(OpCode::Binary),
        mask: Some(MASK),
        len: payload.len() as u64,
    };
    let mut out = Vec::new();
    h.encode(&mut out);
    // Keep reserved opcodes as given.
    out[0] = first;
    let mut p = payload.to_vec();
    apply_mask(&mut p, MASK, 0);
    out.extend_from_slice(&p);
    out
}

fn start(codec: Option<Codec>) -> DuplexStream {
    let (client, server) = tokio::io::duplex(1 << 20);
    tokio::spawn(serve(server, codec));
    client
}

/// Reads one server frame: (first byte, payload).
async fn read_frame(c: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut buf = Vec::new();
    loop {
        if let Some((h, n)) = FrameHeader::parse(&buf, Role::Client).unwrap() {
            let mut payload = vec![0u8; h.len as usize];
            let have = (buf.len() - n).min(payload.len());
            payload[..have].copy_from_slice(&buf[n..n + have]);
            c.read_exact(&mut payload[have..]).await.unwrap();
            return (buf[0], payload);
        }
        assert!(buf.len() < MAX_HEADER_LEN);
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await.unwrap();
        buf.push(b[0]);
    }
}

/// Sends `bytes` and expects a close frame with `code`, then EOF.
async fn expect_close(bytes: &[u8], code: u16) {
    let mut c = start(None);
    c.write_all(bytes).await.unwrap();
    assert_closed_with(&mut c, code).await;
}

async fn assert_closed_with(c: &mut DuplexStream, code: u16) {
    let (first, payload) = read_frame(c).await;
    assert_eq!(first, 0x88, "a close frame");
    assert_eq!(
        u16::from_be_bytes([payload[0], payload[1]]),
        code,
        "{payload:?}"
    );
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "nothing after the close frame");
}

#[tokio::test]
async fn echoes_text_binary_and_fragmented_messages_whole() {
    let mut c = start(None);
    c.write_all(&frame(0x81, b"hi")).await.unwrap();
    assert_eq!(read_frame(&mut c).await, (0x81, b"hi".to_vec()));
    c.write_all(&frame(0x82, &[0, 1, 255])).await.unwrap();
    assert_eq!(read_frame(&mut c).await, (0x82, vec![0, 1, 255]));
    // "κόσμε" in three fragments split inside code points, a ping between.
    let s = "κόσμε".as_bytes();
    let mut msg = frame(0x01, &s[..1]);
    msg.extend(frame(0x89, b"between"));
    msg.extend(frame(0x00, &s[1..5]));
    msg.extend(frame(0x80, &s[5..]));
    c.write_all(&msg).await.unwrap();
    assert_eq!(read_frame(&mut c).await, (0x8a, b"between".to_vec()));
    assert_eq!(read_frame(&mut c).await, (0x81, s.to_vec()));
    // Empty messages, and a large one.
    c.write_all(&frame(0x81, b"")).await.unwrap();
    assert_eq!(read_frame(&mut c).await, (0x81, vec![]));
    let big = vec![7u8; 200_000];
    c.write_all(&frame(0x82, &big)).await.unwrap();
    assert_eq!(read_frame(&mut c).await, (0x82, big));
}

#[tokio::test]
async fn frames_split_at_every_byte_still_echo() {
    let mut c = start(None);
    let f = frame(0x81, "héllo".as_bytes());
    for b in &f {
        c.write_all(&[*b]).await.unwrap();
    }
    assert_eq!(
        read_frame(&mut c).await,
        (0x81, "héllo".as_bytes().to_vec())
    );
}

#[tokio::test]
async fn pings_are_answered_and_pongs_ignored() {
    let mut c = start(None);
    let mut msg = frame(0x8a, b"unsolicited");
    msg.extend(frame(0x89, &[9; 125]));
    c.write_all(&msg).await.unwrap();
    assert_eq!(read_frame(&mut c).await, (0x8a, vec![9; 125]));
}

#[tokio::test]
async fn close_is_echoed_and_the_server_closes_first() {
    let mut c = start(None);
    c.write_all(&frame(0x88, b"\x03\xe8bye")).await.unwrap();
    assert_closed_with(&mut c, 1000).await;
    let mut c = start(None);
    c.write_all(&frame(0x88, b"")).await.unwrap();
    assert_eq!(read_frame(&mut c).await, (0x88, vec![]));
    // Frames after the close are not answered.
    let mut c = start(None);
    let mut msg = frame(0x88, &4001u16.to_be_bytes());
    msg.extend(frame(0x81, b"late"));
    c.write_all(&msg).await.unwrap();
    assert_closed_with(&mut c, 4001).await;
}

#[tokio::test]
async fn invalid_utf8_closes_1007_without_waiting_for_the_frame_end() {
    expect_close(&frame(0x81, b"ok\xed\xa0\x80"), 1007).await;
    expect_close(&frame(0x81, b"ends inside \xe2\x82"), 1007).await;
    // Only the start of a 100-byte frame is sent: the bad byte is enough.
    let mut c = start(None);
    let f = frame(
        0x81,
        &[b"\xce\xba\xf4\x90".as_slice(), &[b'x'; 96]].concat(),
    );
    c.write_all(&f[..10]).await.unwrap();
    assert_closed_with(&mut c, 1007).await;
    // And across fragments.
    let mut msg = frame(0x01, b"\xce\xba\xf4");
    msg.extend(frame(0x80, b"\x90\x80\x80"));
    expect_close(&msg, 1007).await;
    // A close reason that is not UTF-8.
    expect_close(&frame(0x88, b"\x03\xe8\xff"), 1007).await;
}

#[tokio::test]
async fn protocol_errors_close_1002() {
    // RSV bits with no extension negotiated.
    expect_close(&frame(0xc1, b"x"), 1002).await;
    expect_close(&frame(0xa2, b"x"), 1002).await;
    // Reserved opcodes.
    expect_close(&frame(0x83, b""), 1002).await;
    expect_close(&frame(0x8b, b""), 1002).await;
    // Control frames: fragmented, or over 125 bytes.
    expect_close(&frame(0x09, b""), 1002).await;
    expect_close(&frame(0x89, &[0; 126]), 1002).await;
    // Continuation without a message, a new message inside one.
    expect_close(&frame(0x80, b"x"), 1002).await;
    let mut msg = frame(0x01, b"a");
    msg.extend(frame(0x81, b"b"));
    expect_close(&msg, 1002).await;
    // Close codes that may not be sent, and a one-byte close payload.
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
        expect_close(&frame(0x88, &code.to_be_bytes()), 1002).await;
    }
    expect_close(&frame(0x88, b"\x03"), 1002).await;
    // An unmasked frame.
    expect_close(&[0x81, 0x01, b'x'], 1002).await;
}

#[tokio::test]
async fn messages_over_the_limit_close_1009() {
    // The header alone says it is too big.
    let mut h = Vec::new();
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask: Some(MASK),
        len: MAX_MESSAGE as u64 + 1,
    }
    .encode(&mut h);
    expect_close(&h, 1009).await;
}

#[tokio::test]
async fn permessage_deflate_round_trip() {
    let agreed = negotiate([&b"permessage-deflate"[..]]).unwrap();
    let mut client_codec = Codec::new(&agreed);
    let mut c = start(Some(Codec::new(&agreed)));
    for text in ["compress me, compress me, compress me", ""] {
        let z = client_codec.deflate(text.as_bytes()).unwrap();
        // Compressed, in two fragments: RSV1 on the first only.
        let (a, b) = z.split_at(z.len() / 2);
        let mut msg = frame(0x41, a);
        msg.extend(frame(0x80, b));
        c.write_all(&msg).await.unwrap();
        let (first, payload) = read_frame(&mut c).await;
        assert_eq!(first, 0xc1, "RSV1 and text");
        assert_eq!(
            client_codec.inflate(&payload, 1 << 20).unwrap(),
            text.as_bytes()
        );
    }
    // An uncompressed message is fine too.
    c.write_all(&frame(0x82, b"raw")).await.unwrap();
    let (first, payload) = read_frame(&mut c).await;
    assert_eq!(first, 0xc2);
    assert_eq!(client_codec.inflate(&payload, 1 << 20).unwrap(), b"raw");
    // RSV1 on a continuation frame.
    let mut msg = frame(0x02, b"x");
    msg.extend(frame(0xc0, b"y"));
    c.write_all(&msg).await.unwrap();
    assert_closed_with(&mut c, 1002).await;
}

#[tokio::test]
async fn compressed_invalid_utf8_closes_1007() {
    let agreed = negotiate([&b"permessage-deflate"[..]]).unwrap();
    let mut client_codec = Codec::new(&agreed);
    let mut c = start(Some(Codec::new(&agreed)));
    let z = client_codec.deflate(b"bad \xff text").unwrap();
    c.write_all(&frame(0xc1, &z)).await.unwrap();
    assert_closed_with(&mut c, 1007).await;
}
