//! Choosing a connection's filter chain, as Envoy does: the TLS inspector
//! (when the listener has one, or a chain matches on what only a
//! ClientHello tells) peeks at the first bytes without taking them, then
//! `nuncio_tls::chain_match` picks the chain by destination, server name,
//! transport protocol, ALPN and source; no match falls to the default
//! chain, or the connection is closed (`no_filter_chain_match`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use nuncio_hcm::Hcm;
use nuncio_stats::Counter;
use nuncio_tls::chain_match::{ChainTable, ConnInfo};
use nuncio_tls::inspect::{inspect, Inspect};
use nuncio_tls::ServerTransport;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// A listener's filter chain as served: its transport socket (plain, or
/// TLS with its handshake) and its connection manager.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The HTTP connection manager.
    pub hcm: Arc<Hcm>,
    /// `transport_socket` TLS; `None`: plain TCP.
    pub tls: Option<Arc<ServerTransport>>,
}

/// The TLS inspector's settings.
#[derive(Debug, Clone, Copy)]
pub struct Inspector {
    /// `max_client_hello_size`.
    pub max_client_hello: usize,
    /// `listener_filters_timeout`.
    pub timeout: Duration,
}

/// Everything a listener serves connections with: its chains, how they
/// are told apart, and its default chain.
#[derive(Debug)]
pub struct Chains {
    table: ChainTable,
    chains: Vec<Chain>,
    default: Option<Chain>,
    inspector: Option<Inspector>,
}

impl Chains {
    /// One chain for every connection (no criteria).
    pub fn one(chain: Chain) -> Self {
        Chains {
            table: ChainTable::new(&[Default::default()]),
            chains: vec![chain],
            default: None,
            inspector: None,
        }
    }

    /// Chains chosen by `table` (in the same order), with a default; the
    /// inspector runs first when given.
    pub fn new(
        table: ChainTable,
        chains: Vec<Chain>,
        default: Option<Chain>,
        inspector: Option<Inspector>,
    ) -> Self {
        Chains {
            table,
            chains,
            default,
            inspector,
        }
    }

    /// Every connection manager (to drain or close them all).
    pub fn hcms(&self) -> impl Iterator<Item = &Arc<Hcm>> {
        self.chains.iter().chain(&self.default).map(|c| &c.hcm)
    }

    /// The chain for a new connection, or `None` (closed, counted).
    pub(crate) async fn select(
        &self,
        tcp: &TcpStream,
        peer: std::net::SocketAddr,
        stats: &SelectStats<'_>,
    ) -> Option<&Chain> {
        if self.chains.len() == 1 && self.default.is_none() && self.inspector.is_none() {
            return self.chains.first();
        }
        let hello = match self.inspector {
            None => Peeked::Skipped,
            Some(i) => {
                match tokio::time::timeout(i.timeout, peek_hello(tcp, i.max_client_hello)).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return None,
                    Err(_) => {
                        stats.pre_cx_timeout.inc();
                        return None;
                    }
                }
            }
        };
        if let Some(s) = stats.inspector {
            s.count(&hello);
        }
        let (sni, alpn, transport) = match &hello {
            Peeked::Hello(h) => (h.sni.as_deref(), h.alpn.as_slice(), "tls"),
            Peeked::TooLarge => return None,
            Peeked::NotTls | Peeked::Skipped => (None, &[][..], "raw_buffer"),
        };
        let destination = tcp.local_addr().ok()?;
        let info = ConnInfo {
            destination,
            source: peer,
            direct_source: peer.ip(),
            server_name: sni,
            transport_protocol: transport,
            application_protocols: alpn,
        };
        match self.table.select(&info) {
            Some(i) => self.chains.get(i),
            None => {
                if self.default.is_none() {
                    stats.no_match.inc();
                    tracing::debug!(%peer, ?sni, "no filter chain matched; connection closed");
                }
                self.default.as_ref()
            }
        }
    }
}

/// What the inspector saw.
#[derive(Debug)]
pub(crate) enum Peeked {
    /// No inspector on this listener.
    Skipped,
    /// Not TLS.
    NotTls,
    /// A ClientHello over the size limit (the connection is closed).
    TooLarge,
    /// A ClientHello.
    Hello(nuncio_tls::inspect::ClientHelloInfo),
}

/// The counters selection touches.
pub(crate) struct SelectStats<'a> {
    pub(crate) no_match: &'a Counter,
    pub(crate) pre_cx_timeout: &'a Counter,
    pub(crate) inspector: Option<&'a InspectorStats>,
}

/// Envoy's `tls_inspector.*` stats.
#[derive(Debug)]
pub struct InspectorStats {
    tls_found: Counter,
    tls_not_found: Counter,
    sni_found: Counter,
    sni_not_found: Counter,
    alpn_found: Counter,
    alpn_not_found: Counter,
    client_hello_too_large: Counter,
    bytes_processed: nuncio_stats::Histogram,
}

impl InspectorStats {
    /// The counters under `scope` (`tls_inspector.`).
    pub fn new(scope: &nuncio_stats::Scope) -> Self {
        InspectorStats {
            tls_found: scope.counter("tls_found"),
            tls_not_found: scope.counter("tls_not_found"),
            sni_found: scope.counter("sni_found"),
            sni_not_found: scope.counter("sni_not_found"),
            alpn_found: scope.counter("alpn_found"),
            alpn_not_found: scope.counter("alpn_not_found"),
            client_hello_too_large: scope.counter("client_hello_too_large"),
            bytes_processed: scope.histogram("bytes_processed"),
        }
    }

    fn count(&self, p: &Peeked) {
        match p {
            Peeked::Skipped => {}
            Peeked::NotTls => self.tls_not_found.inc(),
            Peeked::TooLarge => self.client_hello_too_large.inc(),
            Peeked::Hello(h) => {
                self.tls_found.inc();
                self.bytes_processed.record_value(h.bytes as u64);
                if h.sni.is_some() {
                    self.sni_found.inc();
                } else {
                    self.sni_not_found.inc();
                }
                if h.alpn.is_empty() {
                    self.alpn_not_found.inc();
                } else {
                    self.alpn_found.inc();
                }
            }
        }
    }
}

/// Peeks at the connection's first bytes until they say whether (and
/// which) ClientHello it is. Nothing is taken from the socket. An
/// incomplete hello clears the socket's readiness and waits for more.
async fn peek_hello(tcp: &TcpStream, max: usize) -> io::Result<Peeked> {
    let mut buf = vec![0u8; 2048];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match inspect(&buf[..n], max) {
            Inspect::Hello(h) => return Ok(Peeked::Hello(h)),
            Inspect::NotTls => return Ok(Peeked::NotTls),
            Inspect::TooLarge => return Ok(Peeked::TooLarge),
            Inspect::NeedMore => {
                if n == buf.len() {
                    // Room for the largest hello allowed, record headers
                    // and all; a full buffer of that size is too large.
                    let cap = max + 5 * (max / 16384 + 2);
                    if buf.len() >= cap {
                        return Ok(Peeked::TooLarge);
                    }
                    buf.resize((buf.len() * 4).min(cap), 0);
                    continue;
                }
                // peek leaves readiness set: clear it, then wait for more.
                let _ = tcp.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
                });
                tcp.readable().await?;
            }
        }
    }
}
