//! Fuzz harnesses. The cargo-fuzz targets in `fuzz/` call these on
//! libFuzzer's inputs; `tests/replay.rs` calls them on every file of the
//! seed corpora and of `fuzz/regressions/`, so the normal test run replays
//! them (as Envoy's test suite replays its fuzz corpora).
//!
//! - [`config_load`]: YAML in, a config or a `ConfigError` out, never a
//!   panic.
//! - [`Http1Harness`]: bytes in through two real connection managers (the
//!   second with HTTP filters and route header mutations) over a
//!   loopback socket, to a fake upstream that checks
//!   every request head it receives. A panic, a hang (the connection must
//!   end within 5 s of the client's EOF) or a malformed head at the
//!   upstream is a finding.
//! - [`h2_frames`]: HTTP/2 frames into nuncio's codec over an in-memory
//!   pipe; a panic or a hang is a finding.
//! - [`client_hello()`]: bytes into the TLS inspector's ClientHello parser,
//!   checked against invariants (a prefix never answers differently, the
//!   SNI is in the input, re-fragmenting the hello changes nothing).

#![forbid(unsafe_code)]

mod client_hello;

pub use client_hello::client_hello;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nuncio_cluster::{ClusterManager, Resolver};
use nuncio_config::NetworkFilter;
use nuncio_hcm::Hcm;
use nuncio_stats::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Loads `data` as a config file: any outcome but a panic is fine.
pub fn config_load(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(b) = nuncio_config::load_str("fuzz.yaml", text) {
            // What loads must also dump (the admin's /config_dump).
            let _ = nuncio_config::dump::config_dump(&b);
        }
    }
}

/// A fake upstream, two connection managers (without and with HTTP
/// filters), and a
/// loopback listener for the downstream side, built once and reused.
pub struct Http1Harness {
    rt: tokio::runtime::Runtime,
    hcms: Vec<Arc<Hcm>>,
    downstream: TcpListener,
    /// Request heads the upstream could not parse.
    bad_heads: Arc<AtomicUsize>,
    /// Requests the upstream answered.
    answered: Arc<AtomicUsize>,
}

/// How long a connection may live after the client's EOF.
const HANG: Duration = Duration::from_secs(5);

impl Http1Harness {
    /// Builds the harness (binds two loopback ports).
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let bad_heads = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let (hcms, downstream) = rt.block_on(async {
            let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = upstream.local_addr().expect("addr").port();
            tokio::spawn(fake_upstream(upstream, bad_heads.clone(), answered.clone()));
            let mut hcms = Vec::new();
            for filtered in [false, true] {
                let text = config(port, filtered);
                let b = nuncio_config::load_str("harness.yaml", &text).expect("config");
                let store = Store::new();
                let clusters =
                    ClusterManager::new(&b.clusters, &b.secrets, &store, 1, Resolver::default())
                        .expect("clusters");
                clusters.initialize().await;
                let NetworkFilter::HttpConnectionManager(cfg) =
                    &b.listeners[0].filter_chains[0].filter;
                let limit = b.listeners[0].per_connection_buffer_limit_bytes;
                hcms.push(
                    Hcm::new(cfg, "127.0.0.1:0", limit, &clusters, &store, &b.node).expect("hcm"),
                );
            }
            let downstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            (hcms, downstream)
        });
        Http1Harness {
            rt,
            hcms,
            downstream,
            bad_heads,
            answered,
        }
    }

    /// How many requests reached the fake upstream so far.
    pub fn upstream_requests(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }

    /// Sends `data` as one client connection to each connection manager,
    /// then EOF, and
    /// reads what comes back. Panics on a hang or a malformed upstream head.
    pub fn run(&self, data: &[u8]) {
        for hcm in &self.hcms {
            self.rt.block_on(self.one(hcm.clone(), data));
        }
        assert_eq!(
            self.bad_heads.load(Ordering::Relaxed),
            0,
            "the upstream received a malformed request head"
        );
    }

    async fn one(&self, hcm: Arc<Hcm>, data: &[u8]) {
        let addr = self.downstream.local_addr().expect("addr");
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let (server, peer) = self.downstream.accept().await.expect("accept");
        let served = tokio::spawn(async move {
            hcm.serve_connection(nuncio_tls::Conn::Plain(server), peer, 0)
                .await
        });
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        let mut sink = Vec::new();
        let read = tokio::time::timeout(HANG, client.read_to_end(&mut sink)).await;
        assert!(
            read.is_ok(),
            "the proxy kept the connection open after the client's EOF"
        );
        drop(client);
        match tokio::time::timeout(HANG, served).await {
            Err(_) => panic!("the connection task did not end"),
            // A panic in the connection task is the finding: re-raise it
            // here, where libFuzzer sees it.
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(_) => {}
        }
    }
}

impl Default for Http1Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// HTTP filters and route header mutations for the second connection
/// manager, so fuzzed requests also cross the filter chain.
const FILTERED: (&str, &str) = (
    r#"            request_headers_to_add:
            - header: {key: x-fuzz, value: "%REQ(x-in)%|%DOWNSTREAM_REMOTE_ADDRESS%"}
            response_headers_to_add:
            - header: {key: x-fuzz-code, value: "%RESPONSE_CODE%"}
"#,
    r#"          - name: envoy.filters.http.cors
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
          - name: envoy.filters.http.fault
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
              abort: {header_abort: {}, percentage: {numerator: 100}}
          - name: envoy.filters.http.buffer
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
              max_request_bytes: 4096
          - name: envoy.filters.http.header_mutation
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
              mutations:
                request_mutations: [{remove: x-secret}]
                response_mutations: [{append: {header: {key: x-hm, value: "%REQ(x-in)%"}}}]
"#,
);

fn config(upstream_port: u16, filtered: bool) -> String {
    let (route_extra, filters) = if filtered { FILTERED } else { ("", "") };
    format!(
        r#"
static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: 1}}}}
    filter_chains:
    - filters:
      - name: envoy.http_connection_manager
        config:
          stat_prefix: fuzz
          request_headers_timeout: 2s
          stream_idle_timeout: 2s
          route_config:
{route_extra}            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/direct"}}
                direct_response: {{status: 200, body: {{inline_string: direct}}}}
              - match: {{prefix: "/ws"}}
                route: {{cluster: fake, use_websocket: true, timeout: 2s}}
              - match: {{prefix: "/"}}
                route: {{cluster: fake, timeout: 2s}}
          http_filters:
{filters}          - name: envoy.router
  clusters:
  - name: fake
    connect_timeout: 1s
    type: static
    hosts: [{{socket_address: {{address: 127.0.0.1, port_value: {upstream_port}}}}}]
"#
    )
}

/// Answers each connection's first request with a small response and
/// closes; counts heads that do not parse as HTTP/1.1.
async fn fake_upstream(l: TcpListener, bad: Arc<AtomicUsize>, answered: Arc<AtomicUsize>) {
    while let Ok((mut s, _)) = l.accept().await {
        let bad = bad.clone();
        let answered = answered.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let mut headers = [httparse::EMPTY_HEADER; 256];
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(&buf) {
                    Ok(httparse::Status::Complete(_)) => break,
                    Ok(httparse::Status::Partial) => {}
                    Err(_) => {
                        bad.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                match tokio::time::timeout(HANG, s.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            answered.fetch_add(1, Ordering::Relaxed);
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .await;
        });
    }
}

/// The HTTP/2 server codec (`nuncio-h2`) fed `data` as the frames after a
/// client preface and an empty SETTINGS, over an in-memory pipe. An
/// application answers every request (reading its body and trailers
/// first) while the client side reads everything the codec writes. A
/// panic, or a connection still open 5 s after the client's EOF, is a
/// finding. Returns how many requests reached the application.
pub fn h2_frames(data: &[u8]) -> usize {
    use std::sync::OnceLock;
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    });
    rt.block_on(async {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut accepted = 0;
        let serve = async {
            let cfg = nuncio_h2::Config {
                enable_connect_protocol: true,
                max_header_list_size: 8 * 1024,
                ..Default::default()
            };
            let Ok(mut conn) = nuncio_h2::handshake(server, cfg).await else {
                return;
            };
            while let Some(Ok((req, mut rx, mut tx))) = conn.accept().await {
                accepted += 1;
                tokio::spawn(async move {
                    while let Some(Ok(_)) = rx.data().await {}
                    let _ = rx.trailers().await;
                    let method = req.method().to_string();
                    if let Ok(mut body) = tx.send_response(200, false, |f| {
                        f.add(b"x-method", method.as_bytes());
                        for (n, v) in req.headers() {
                            f.add(n, v);
                        }
                    }) {
                        let _ = std::future::poll_fn(|cx| body.poll_send(cx, b"hello", true)).await;
                    }
                });
            }
        };
        let mut input = nuncio_h2::PREFACE.to_vec();
        input.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        input.extend_from_slice(data);
        let (mut rd, mut wr) = tokio::io::split(&mut client);
        let talk = async move {
            let send = async {
                let _ = wr.write_all(&input).await;
                let _ = wr.shutdown().await;
            };
            let recv = async {
                let mut sink = vec![0u8; 16 * 1024];
                while let Ok(n) = rd.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            };
            tokio::join!(send, recv);
        };
        let both = async { tokio::join!(serve, talk) };
        if tokio::time::timeout(HANG, both).await.is_err() {
            panic!("HTTP/2 connection still open {HANG:?} after the client's EOF");
        }
        accepted
    })
}
