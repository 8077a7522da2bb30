//! The client half against nuncio's own server half (in memory), and
//! against a scripted server for what a well-behaved server never sends.

// The helpers below are test code too (the lint allows unwrap in #[test] fns only).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nuncio_h2::client::{self, ClientConfig, OpenError, RequestOptions};
use nuncio_h2::hpack::{encode_field, encode_request_pseudo};
use nuncio_h2::{Config, Reason, StreamError};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn head(method: &str, path: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    encode_request_pseudo(
        &mut b,
        method.as_bytes(),
        b"http",
        b"svc",
        path.as_bytes(),
        None,
    );
    for (n, v) in fields {
        encode_field(&mut b, n.as_bytes(), v.as_bytes());
    }
    b
}

fn opts(end: bool) -> RequestOptions {
    RequestOptions {
        end,
        ..Default::default()
    }
}

/// A server on nuncio's codec that echoes each request's body with its
/// method and path in headers, and the request's trailers back.
fn echo_server(io: DuplexStream, cfg: Config) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut conn = nuncio_h2::handshake(io, cfg).await.unwrap();
        while let Some(Ok((req, mut rx, mut tx))) = conn.accept().await {
            let method = req.method().to_string();
            let path = req.path().unwrap_or("").to_string();
            tokio::spawn(async move {
                let mut body = Vec::new();
                while let Some(d) = rx.data().await {
                    body.extend_from_slice(&d.unwrap());
                }
                let trailers = rx.trailers().await.unwrap();
                let mut out = tx
                    .send_response(200, false, |f| {
                        f.add(b"x-method", method.as_bytes());
                        f.add(b"x-path", path.as_bytes());
                    })
                    .unwrap();
                let mut rest = &body[..];
                while !rest.is_empty() {
                    let n = std::future::poll_fn(|cx| out.poll_send(cx, rest, false))
                        .await
                        .unwrap();
                    rest = &rest[n..];
                }
                match trailers {
                    Some(t) => out
                        .send_trailers(|f| {
                            for (n, v) in t.iter() {
                                f.add(n, v);
                            }
                        })
                        .unwrap(),
                    None => {
                        std::future::poll_fn(|cx| out.poll_send(cx, &[], true))
                            .await
                            .unwrap();
                    }
                }
            });
        }
    })
}

#[tokio::test]
async fn a_get_and_its_response() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let _server = echo_server(b, Config::default());
    let (send, conn) = client::handshake(a, ClientConfig::default());
    let driver = tokio::spawn(conn.run());
    send.ready().await.unwrap();
    let (resp, body) = send
        .send_request(&head("GET", "/a?b=1", &[("x-request-id", "7")]), opts(true))
        .unwrap();
    let (resp, mut rx) = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.get("x-method"), Some(&b"GET"[..]));
    assert_eq!(resp.get("x-path"), Some(&b"/a?b=1"[..]));
    assert!(rx.data().await.is_none());
    drop((rx, resp, body, send));
    // With every handle gone the client says GOAWAY and the connection ends.
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bodies_larger_than_every_window_go_both_ways_with_trailers() {
    let (a, b) = tokio::io::duplex(16 * 1024);
    let _server = echo_server(b, Config::default());
    let cfg = ClientConfig {
        initial_window_size: 20_000,
        initial_connection_window_size: 70_000,
        ..Default::default()
    };
    let (send, conn) = client::handshake(a, cfg);
    tokio::spawn(conn.run());
    send.ready().await.unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (resp, mut tx) = send
        .send_request(&head("POST", "/up", &[("te", "trailers")]), opts(false))
        .unwrap();
    let upload = {
        let body = body.clone();
        async move {
            let mut rest = &body[..];
            while !rest.is_empty() {
                let n = std::future::poll_fn(|cx| tx.poll_send(cx, rest, false))
                    .await
                    .unwrap();
                rest = &rest[n..];
            }
            tx.send_trailers(|f| f.add(b"grpc-status", b"0")).unwrap();
        }
    };
    let download = async move {
        let (resp, mut rx) = resp.await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut got = Vec::new();
        while let Some(d) = rx.data().await {
            got.extend_from_slice(&d.unwrap());
        }
        let t = rx.trailers().await.unwrap().unwrap();
        assert_eq!(t.get("grpc-status"), Some(&b"0"[..]));
        got
    };
    let ((), got) = tokio::join!(upload, download);
    assert_eq!(got.len(), body.len());
    assert!(got == body);
}

#[tokio::test]
async fn the_servers_stream_limit_is_kept() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let cfg = Config {
        max_concurrent_streams: 2,
        ..Default::default()
    };
    let _server = echo_server(b, cfg);
    let (send, conn) = client::handshake(a, ClientConfig::default());
    tokio::spawn(conn.run());
    send.ready().await.unwrap();
    assert!(send.has_room(100));
    let (r1, _t1) = send
        .send_request(&head("POST", "/1", &[]), opts(false))
        .unwrap();
    let (r2, _t2) = send
        .send_request(&head("POST", "/2", &[]), opts(false))
        .unwrap();
    assert!(!send.has_room(100));
    assert!(!send.has_room(1));
    assert_eq!(
        send.send_request(&head("GET", "/3", &[]), opts(true)).err(),
        Some(OpenError::Full)
    );
    // A finished stream frees its slot.
    drop((r1, _t1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(send.has_room(100));
    let (r3, _) = send
        .send_request(&head("GET", "/3", &[]), opts(true))
        .unwrap();
    assert_eq!(r3.await.unwrap().0.status(), 200);
    drop(r2);
}

/// A scripted server: reads the client's preface and SETTINGS, then
/// writes `script` (raw frames) and reads until the client closes.
async fn scripted(mut io: DuplexStream, script: Vec<u8>) -> Vec<u8> {
    let mut got = vec![0u8; 24];
    io.read_exact(&mut got).await.unwrap();
    assert_eq!(&got[..], &nuncio_h2::PREFACE[..]);
    io.write_all(&script).await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), io.read_to_end(&mut rest)).await;
    rest
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut f = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const SETTINGS: u8 = 4;
const HEADERS: u8 = 1;
const DATA: u8 = 0;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;

fn literal(n: &str, v: &str) -> Vec<u8> {
    let mut b = vec![0x00, n.len() as u8];
    b.extend_from_slice(n.as_bytes());
    b.push(v.len() as u8);
    b.extend_from_slice(v.as_bytes());
    b
}

#[tokio::test]
async fn an_interim_100_is_skipped_and_the_final_head_kept() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let mut script = frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 10]);
    script.extend(frame(HEADERS, END_HEADERS, 1, &literal(":status", "100")));
    let mut fin = literal(":status", "201");
    fin.extend(literal("content-length", "2"));
    script.extend(frame(HEADERS, END_HEADERS, 1, &fin));
    script.extend(frame(DATA, END_STREAM, 1, b"ok"));
    let (send, conn) = client::handshake(a, ClientConfig::default());
    tokio::spawn(conn.run());
    // Opened before the server speaks (its script answers stream 1).
    let (resp, _) = send
        .send_request(&head("PUT", "/", &[]), opts(true))
        .unwrap();
    let server = tokio::spawn(scripted(b, script));
    send.ready().await.unwrap();
    assert!(send.has_room(10));
    let (resp, mut rx) = resp.await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(&rx.data().await.unwrap().unwrap()[..], b"ok");
    assert!(rx.data().await.is_none());
    drop((rx, send));
    server.await.unwrap();
}

#[tokio::test]
async fn a_malformed_response_resets_the_stream() {
    for bad in [
        literal("x-first", "no status"),
        [literal(":status", "200"), literal("connection", "close")].concat(),
        [literal(":status", "200"), literal(":path", "/")].concat(),
        literal(":status", "101"),
        literal(":status", "2000"),
    ] {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut script = frame(SETTINGS, 0, 0, &[]);
        script.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &bad));
        let (send, conn) = client::handshake(a, ClientConfig::default());
        tokio::spawn(conn.run());
        let (resp, _t) = send
            .send_request(&head("GET", "/", &[]), opts(true))
            .unwrap();
        let server = tokio::spawn(scripted(b, script));
        let err = resp.await.err();
        assert_eq!(
            err,
            Some(StreamError::Reset {
                reason: Reason::PROTOCOL_ERROR,
                by_peer: false
            })
        );
        drop((send, _t));
        let written = server.await.unwrap();
        // Among what the client wrote: RST_STREAM(1, PROTOCOL_ERROR).
        let rst = frame(3, 0, 1, &1u32.to_be_bytes());
        assert!(written.windows(rst.len()).any(|w| w == &rst[..]));
    }
}

#[tokio::test]
async fn goaway_refuses_the_streams_it_did_not_take() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (send, conn) = client::handshake(a, ClientConfig::default());
    tokio::spawn(conn.run());
    let mut script = frame(SETTINGS, 0, 0, &[]);
    // Last stream 1: stream 3 was never processed.
    let mut goaway = 1u32.to_be_bytes().to_vec();
    goaway.extend_from_slice(&0u32.to_be_bytes());
    script.extend(frame(HEADERS, END_HEADERS, 1, &literal(":status", "200")));
    script.extend(frame(GOAWAY, 0, 0, &goaway));
    script.extend(frame(DATA, END_STREAM, 1, b"x"));
    let (r1, _t1) = send
        .send_request(&head("GET", "/1", &[]), opts(true))
        .unwrap();
    let (r3, _t3) = send
        .send_request(&head("GET", "/3", &[]), opts(true))
        .unwrap();
    let server = tokio::spawn(scripted(b, script));
    let (resp, mut rx) = r1.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(&rx.data().await.unwrap().unwrap()[..], b"x");
    assert_eq!(
        r3.await.err(),
        Some(StreamError::Reset {
            reason: Reason::REFUSED_STREAM,
            by_peer: true
        })
    );
    assert!(send.is_closed());
    assert_eq!(
        send.send_request(&head("GET", "/5", &[]), opts(true)).err(),
        Some(OpenError::Gone)
    );
    drop((rx, send, _t1, _t3));
    server.await.unwrap();
}

#[tokio::test]
async fn extended_connect_needs_the_servers_setting() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let _server = echo_server(b, Config::default());
    let (send, conn) = client::handshake(a, ClientConfig::default());
    tokio::spawn(conn.run());
    send.ready().await.unwrap();
    let o = RequestOptions {
        extended_connect: true,
        ..Default::default()
    };
    assert_eq!(
        send.send_request(&head("CONNECT", "/ws", &[]), o).err(),
        Some(OpenError::NoConnectProtocol)
    );
}

#[tokio::test]
async fn a_server_that_goes_away_fails_open_streams() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (send, conn) = client::handshake(a, ClientConfig::default());
    let driver = tokio::spawn(conn.run());
    let (resp, _t) = send
        .send_request(&head("GET", "/", &[]), opts(true))
        .unwrap();
    drop(b);
    assert_eq!(resp.await.err(), Some(StreamError::Closed));
    assert!(send.is_closed());
    assert_eq!(send.ready().await, Err(OpenError::Gone));
    let _ = driver.await.unwrap();
}
