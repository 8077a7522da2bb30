//! The whole request path in process: a real `Hcm` built from a config,
//! serving loopback sockets inside the test's runtime, with upstreams and
//! clients written here (raw HTTP/1.1 bytes, and the `h2` crate for
//! HTTP/2), as linkerd2-proxy tests its inbound stack. Each test drives
//! one slice of the path end to end: codec → connection manager checks →
//! filters → router → upstream exchange (HTTP/1.1 socket or HTTP/2
//! stream) → response phase.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nuncio_cluster::{ClusterManager, Resolver};
use nuncio_config::NetworkFilter;
use nuncio_hcm::Hcm;
use nuncio_stats::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running connection manager and its stats.
struct Proxy {
    addr: SocketAddr,
    store: Arc<Store>,
}

impl Proxy {
    fn stat(&self, name: &str) -> i64 {
        self.store.value(name).unwrap_or(-1)
    }
}

/// Serves `yaml` (one listener; `$UP` is replaced by the upstream port)
/// on a loopback port of this runtime.
async fn proxy(yaml: &str, up: u16) -> Proxy {
    let text = yaml.replace("$UP", &up.to_string());
    let b = nuncio_config::load_str("test.yaml", &text).expect("config");
    let store = Store::new();
    let clusters =
        ClusterManager::new(&b.clusters, &[], &store, 1, Resolver::default()).expect("clusters");
    clusters.initialize().await;
    let NetworkFilter::HttpConnectionManager(cfg) = &b.listeners[0].filter_chains[0].filter;
    let hcm = Hcm::new(cfg, "127.0.0.1:0", 1 << 20, &clusters, &store, &b.node).expect("hcm");
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _clusters = clusters;
        while let Ok((s, peer)) = l.accept().await {
            tokio::spawn(
                hcm.clone()
                    .serve_connection(nuncio_tls::Conn::Plain(s), peer, 0),
            );
        }
    });
    Proxy { addr, store }
}

/// An HTTP/1.1 upstream that answers every request with `response` and
/// records the request heads it got.
async fn h1_upstream(response: &'static [u8]) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = find(&buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(str::to_string)
                            })
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            break;
                        }
                        buf.drain(..end + 4 + len);
                        seen.lock().expect("lock").push(head);
                        if s.write_all(response).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (port, heads)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `request` on a new connection and reads until the peer closes or
/// `until` is in what came back.
async fn exchange(addr: SocketAddr, request: &[u8], until: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(5);
    while find(&out, until).is_none() && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const CONFIG: &str = r#"
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: 1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          route_config:
            response_headers_to_add:
            - header: {key: x-code, value: "%RESPONSE_CODE%"}
            virtual_hosts:
            - name: vh
              domains: ["*"]
              typed_per_filter_config:
                envoy.filters.http.cors:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                  allow_origin_string_match: [{exact: "http://ok.test"}]
                  allow_methods: "GET"
              routes:
              - match: {prefix: "/rl"}
                route: {cluster: up}
                typed_per_filter_config:
                  envoy.filters.http.local_ratelimit:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    stat_prefix: rl
                    token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 3600s}
                    filter_enabled: {default_value: {numerator: 100}}
                    filter_enforced: {default_value: {numerator: 100}}
              - match: {prefix: "/"}
                route: {cluster: up}
                request_headers_to_add:
                - header: {key: x-added, value: "%REQ(x-in)%|%PROTOCOL%"}
                request_headers_to_remove: [x-secret]
          http_filters:
          - name: envoy.filters.http.cors
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
          - name: envoy.filters.http.fault
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
              delay: {header_delay: {}, percentage: {numerator: 100}}
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: off
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: up
    connect_timeout: 1s
$H2
    load_assignment:
      cluster_name: up
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP}}}}]}]
"#;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

fn h1_config() -> String {
    CONFIG.replace("$H2\n", "")
}

#[tokio::test]
async fn http1_request_goes_through_filters_and_route_mutations() {
    let (up, heads) = h1_upstream(OK).await;
    let p = proxy(&h1_config(), up).await;
    let out = exchange(
        p.addr,
        b"GET /a HTTP/1.1\r\nHost: x\r\nX-In: v\r\nX-Secret: s\r\nOrigin: http://ok.test\r\nConnection: close\r\n\r\n",
        b"\r\n\r\nok",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("x-code: 200\r\n"), "{out}");
    assert!(
        out.contains("access-control-allow-origin: http://ok.test\r\n"),
        "{out}"
    );
    let head = heads.lock().expect("lock")[0].clone().to_ascii_lowercase();
    assert!(head.contains("x-added: v|http/1.1"), "{head}");
    assert!(!head.contains("x-secret"), "{head}");
    assert_eq!(p.stat("http.t.cors.origin_valid"), 1);
}

#[tokio::test]
async fn a_filter_reply_passes_back_through_earlier_filters() {
    let (up, heads) = h1_upstream(OK).await;
    let p = proxy(&h1_config(), up).await;
    let get = b"GET /rl HTTP/1.1\r\nHost: x\r\nOrigin: http://ok.test\r\nConnection: close\r\n\r\n";
    assert!(exchange(p.addr, get, b"\r\n\r\nok")
        .await
        .starts_with("HTTP/1.1 200"));
    let out = exchange(p.addr, get, b"local_rate_limited").await;
    assert!(
        out.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{out}"
    );
    // cors runs before the rate limiter: its header is on the 429; the
    // route's response header too (%RESPONSE_CODE% is 0 on local replies).
    assert!(
        out.contains("access-control-allow-origin: http://ok.test\r\n"),
        "{out}"
    );
    assert!(out.contains("x-code: 0\r\n"), "{out}");
    assert_eq!(heads.lock().expect("lock").len(), 1);
    assert_eq!(p.stat("rl.http_local_rate_limit.rate_limited"), 1);
    assert_eq!(p.stat("http.t.downstream_rq_4xx"), 1);
}

#[tokio::test]
async fn a_fault_delay_holds_the_request() {
    let (up, _) = h1_upstream(OK).await;
    let p = proxy(&h1_config(), up).await;
    let t0 = Instant::now();
    let out = exchange(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nx-envoy-fault-delay-request: 200\r\nConnection: close\r\n\r\n",
        b"\r\n\r\nok",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert_eq!(p.stat("http.t.fault.delays_injected"), 1);
    assert_eq!(p.stat("http.t.fault.active_faults"), 0);
}

/// An h2c upstream (the `h2` crate's server) answering every stream with
/// its request body, its `x-added` header and trailers.
async fn h2_upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(s).await else {
                    return;
                };
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    tokio::spawn(async move {
                        let added = req.headers().get("x-added").cloned();
                        let mut body = req.into_body();
                        let mut got = Vec::new();
                        while let Some(Ok(d)) = body.data().await {
                            let _ = body.flow_control().release_capacity(d.len());
                            got.extend_from_slice(&d);
                        }
                        let mut resp = http::Response::builder().status(200);
                        if let Some(a) = added {
                            resp = resp.header("x-added-seen", a);
                        }
                        let Ok(resp) = resp.body(()) else { return };
                        let Ok(mut tx) = respond.send_response(resp, false) else {
                            return;
                        };
                        let _ = tx.send_data(Bytes::from(got), false);
                        let mut t = http::HeaderMap::new();
                        t.insert("grpc-status", http::HeaderValue::from_static("0"));
                        let _ = tx.send_trailers(t);
                    });
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn http1_client_to_an_http2_cluster() {
    let up = h2_upstream().await;
    let cfg = CONFIG.replace(
        "$H2\n",
        "    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: {http2_protocol_options: {}}\n",
    );
    let p = proxy(&cfg, up).await;
    let out = exchange(
        p.addr,
        b"POST /a HTTP/1.1\r\nHost: x\r\nX-In: h\r\nContent-Length: 5\r\nTE: trailers\r\nConnection: close\r\n\r\nhello",
        b"\r\n0\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    // The route's request header reached the HTTP/2 upstream; its body
    // came back chunked (no length from the upstream), trailers last.
    assert!(out.contains("x-added-seen: h|HTTP/1.1\r\n"), "{out}");
    assert!(out.contains("transfer-encoding: chunked\r\n"), "{out}");
    assert!(out.contains("5\r\nhello\r\n"), "{out}");
    assert!(out.contains("0\r\ngrpc-status: 0\r\n"), "{out}");
    assert_eq!(p.stat("cluster.up.upstream_cx_http2_total"), 1);
}

#[tokio::test]
async fn http2_client_through_the_same_path() {
    let (up, heads) = h1_upstream(OK).await;
    let p = proxy(&h1_config(), up).await;
    let s = TcpStream::connect(p.addr).await.expect("connect");
    let (client, conn) = h2::client::handshake(s).await.expect("handshake");
    tokio::spawn(conn);
    let mut client = client.ready().await.expect("ready");
    let req = http::Request::builder()
        .uri("http://x/a")
        .header("x-in", "two")
        .body(())
        .expect("request");
    let (resp, _) = client.send_request(req, true).expect("send");
    let resp = resp.await.expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-code"], "200");
    let mut body = resp.into_body();
    let mut got = Vec::new();
    while let Some(Ok(d)) = body.data().await {
        got.extend_from_slice(&d);
    }
    assert_eq!(got, b"ok");
    let head = heads.lock().expect("lock")[0].clone().to_ascii_lowercase();
    assert!(head.contains("x-added: two|http/2"), "{head}");
}

#[tokio::test]
async fn an_upstream_that_closes_gets_envoys_503() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let up = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await;
        }
    });
    let p = proxy(&h1_config(), up).await;
    let out = exchange(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"termination",
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{out}"
    );
    assert!(
        out.ends_with("upstream connect error or disconnect/reset before headers. reset reason: connection termination"),
        "{out}"
    );
    assert!(out.contains("x-code: 0\r\n"), "{out}");
    assert_eq!(p.stat("cluster.up.upstream_rq_503"), 1);
}

const MORE_FILTERS: &str = r#"
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: 1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          route_config:
            virtual_hosts:
            - name: vh
              domains: ["*"]
              routes:
              - match: {prefix: "/small"}
                route: {cluster: up}
                typed_per_filter_config:
                  envoy.filters.http.buffer:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                    buffer: {max_request_bytes: 4}
              - match: {prefix: "/"}
                route: {cluster: up}
          http_filters:
          - name: envoy.filters.http.health_check
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck
              pass_through_mode: false
              headers: [{name: ":path", string_match: {exact: "/healthz"}}]
          - name: envoy.filters.http.buffer
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
              max_request_bytes: 1024
          - name: envoy.filters.http.header_mutation
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
              mutations:
                request_mutations:
                - remove: x-secret
                - append: {header: {key: x-hm, value: "%REQ(x-in)%"}}
                response_mutations:
                - append: {header: {key: x-hm-resp, value: "%REQ(x-in)%-%RESPONSE_CODE%"}}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: up
    connect_timeout: 1s
    load_assignment:
      cluster_name: up
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP}}}}]}]
"#;

#[tokio::test]
async fn header_mutation_buffer_and_health_check_in_process() {
    let (up, heads) = h1_upstream(OK).await;
    let p = proxy(MORE_FILTERS, up).await;
    // header_mutation: request side seen by the upstream, response side
    // formatted with the request's header and the code.
    let out = exchange(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-In: m\r\nX-Secret: s\r\nConnection: close\r\n\r\n",
        b"\r\n\r\nok",
    )
    .await;
    assert!(out.contains("x-hm-resp: m-200\r\n"), "{out}");
    let head = heads.lock().expect("lock")[0].clone().to_ascii_lowercase();
    assert!(
        head.contains("x-hm: m") && !head.contains("x-secret"),
        "{head}"
    );
    // buffer: a chunked body goes up with its length; one over the
    // route's limit gets 413 and reaches no one.
    let out = exchange(
        p.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"\r\n\r\nok",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let head = heads.lock().expect("lock")[1].clone().to_ascii_lowercase();
    assert!(
        head.contains("content-length: 3") && !head.contains("transfer-encoding"),
        "{head}"
    );
    let out = exchange(
        p.addr,
        b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"Payload Too Large",
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{out}"
    );
    assert_eq!(p.stat("http.t.downstream_rq_too_large"), 1);
    // health_check: answered here, and not counted as a response (Envoy).
    let before = p.stat("http.t.downstream_rq_2xx");
    let out = exchange(
        p.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains("x-envoy-upstream-healthchecked-cluster:"),
        "{out}"
    );
    assert_eq!(p.stat("http.t.health_check.request"), 1);
    assert_eq!(p.stat("http.t.downstream_rq_2xx"), before);
    assert_eq!(heads.lock().expect("lock").len(), 2);
}
