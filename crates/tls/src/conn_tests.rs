//! [`crate::conn`] over real loopback sockets, rustls on both ends.

use std::sync::Arc;
use std::time::Duration;

use nuncio_config::tls::{decode_downstream_str, decode_upstream_str};
use nuncio_stats::io::ReadyIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::build_client;
use crate::conn::{HandshakeError, TlsConn};
use crate::server::build_server;
use crate::testcerts::{CertKind, TestCerts};

struct Pair {
    server: TlsConn,
    client: TlsConn,
    _certs: TestCerts,
}

fn configs(
    alpn: &str,
) -> (
    Arc<rustls::ServerConfig>,
    crate::client::ClientTls,
    TestCerts,
) {
    let t = TestCerts::new();
    let (c, k) = t.leaf(CertKind::EcdsaP256, "localhost");
    let ds = decode_downstream_str(
        "t.yaml",
        &format!(
            "common_tls_context: {{tls_certificates: [{{certificate_chain: {{filename: '{}'}}, private_key: {{filename: '{}'}}}}], alpn_protocols: ['{alpn}']}}",
            c.describe(),
            k.describe()
        ),
    )
    .unwrap();
    let us = decode_upstream_str(
        "t.yaml",
        &format!(
            // TLS 1.3 (a client's default maximum is 1.2, as in Envoy).
            "{{sni: localhost, common_tls_context: {{tls_params: {{tls_maximum_protocol_version: TLSv1_3}}, validation_context: {{trusted_ca: {{filename: '{}'}}}}, alpn_protocols: ['{alpn}']}}}}",
            t.ca().describe()
        ),
    )
    .unwrap();
    (
        build_server(&ds, &[]).unwrap(),
        build_client(&us, &[], false).unwrap(),
        t,
    )
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (b, _) = l.accept().await.unwrap();
    (b, a)
}

async fn pair(alpn: &str) -> Pair {
    let (server_cfg, client_cfg, certs) = configs(alpn);
    let (s, c) = tcp_pair().await;
    let mut server = TlsConn::server(s, server_cfg).unwrap();
    let name = client_cfg.sni.clone().unwrap();
    let mut client = TlsConn::client(c, client_cfg.config, name).unwrap();
    let (a, b) = tokio::join!(server.handshake(), client.handshake());
    a.unwrap();
    b.unwrap();
    Pair {
        server,
        client,
        _certs: certs,
    }
}

#[tokio::test]
async fn handshake_alpn_and_bytes_both_ways() {
    let mut p = pair("h2").await;
    assert_eq!(
        p.server.negotiated().version,
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    // Larger than a record and than the socket buffers, both ways at once.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let (mut sr, mut sw) = tokio::io::split(p.server);
    let (mut cr, mut cw) = tokio::io::split(p.client);
    let up = async {
        cw.write_all(&big).await.unwrap();
        cw.shutdown().await.unwrap();
    };
    let down = async {
        let mut got = Vec::new();
        sr.read_to_end(&mut got).await.unwrap();
        sw.write_all(&got).await.unwrap();
        sw.shutdown().await.unwrap();
        got.len()
    };
    let back = async {
        let mut got = Vec::new();
        cr.read_to_end(&mut got).await.unwrap();
        got
    };
    let ((), n, got) = tokio::join!(up, down, back);
    assert_eq!(n, big.len());
    assert!(got == big);
    p.client = cr.unsplit(cw);
    assert_eq!(p.client.alpn(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn readiness_is_cleared_by_a_ticket_with_no_data() {
    let p = pair("http/1.1").await;
    // TLS 1.3 servers send session tickets after the handshake: records
    // with no application data. Once they are read, the client must not
    // look readable (an idle watcher would spin).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut buf = [0u8; 64];
    let r = p.client.try_read(&mut buf);
    assert_eq!(
        r.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::WouldBlock)
    );
    let polled = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(p.client.poll_read_ready(cx).is_pending())
    })
    .await;
    assert!(polled, "readiness left set after the ticket was read");
    // Data then makes it readable, and try_read returns it.
    let mut server = p.server;
    server.write_all(b"hello").await.unwrap();
    std::future::poll_fn(|cx| p.client.poll_read_ready(cx))
        .await
        .unwrap();
    let n = loop {
        match p.client.try_read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::future::poll_fn(|cx| p.client.poll_read_ready(cx))
                    .await
                    .unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(&buf[..n], b"hello");
}

#[tokio::test]
async fn a_written_response_leaves_without_a_flush() {
    // The HTTP/1.1 path writes a response and goes back to waiting for
    // the client; the TLS bytes must not stay inside rustls.
    let p = pair("http/1.1").await;
    let mut server = p.server;
    let mut client = p.client;
    let body = vec![7u8; 300_000];
    let writer = async {
        server.write_all(&body).await.unwrap();
        // No flush: the readiness wait for the next request sends the rest.
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            std::future::poll_fn(|cx| server.poll_read_ready(cx)),
        )
        .await;
    };
    let reader = async {
        let mut got = vec![0u8; body.len()];
        client.read_exact(&mut got).await.unwrap();
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    assert_eq!(got.len(), body.len());
}

#[tokio::test]
async fn end_without_close_notify_is_an_end() {
    let p = pair("http/1.1").await;
    let mut server = p.server;
    // The client reads the session tickets (unread data would make its
    // close a reset), then its socket closes without TLS's goodbye.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = p.client.try_read(&mut [0u8; 16]);
    drop(p.client);
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), server.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn plain_http_to_a_tls_server_fails_the_handshake() {
    let (server_cfg, _client, _certs) = configs("http/1.1");
    let (s, mut c) = tcp_pair().await;
    let mut server = TlsConn::server(s, server_cfg).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(2), server.handshake())
        .await
        .unwrap();
    assert!(matches!(r, Err(HandshakeError::Tls(_))), "{r:?}");
    // An alert went back, then the server side is done.
    let mut back = Vec::new();
    drop(server);
    let _ = c.read_to_end(&mut back).await;
    assert_eq!(back.first(), Some(&0x15), "a TLS alert record");
}

#[tokio::test]
async fn a_client_that_stops_mid_hello_never_finishes() {
    let (server_cfg, _client, _certs) = configs("http/1.1");
    let (s, mut c) = tcp_pair().await;
    let mut server = TlsConn::server(s, server_cfg).unwrap();
    // A record header promising 512 bytes, then 3 of them.
    c.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_millis(300), server.handshake()).await;
    assert!(r.is_err(), "the caller's timeout ends it");
    drop(c);
}
