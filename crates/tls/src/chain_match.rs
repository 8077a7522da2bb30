//! Envoy's filter chain selection (listener_components.proto): the
//! criteria are applied level by level, in this order: destination port,
//! destination IP, server name, transport protocol, application
//! protocols, directly connected source IP, source type, source IP,
//! source port. At each level only the chains that survived the levels
//! before are considered; among those that match, the most specific
//! survive (an exact port over any port, the longest prefix, an exact
//! name over the longest `*.suffix` over no `server_names`, ...). There is
//! no backtracking: if the survivors of one level all fail the next, no
//! chain matches and the listener's default chain (if any) takes the
//! connection. Pure: no I/O; the listener fills a [`ConnInfo`].

use std::net::{IpAddr, SocketAddr};

use nuncio_config::{Cidr, FilterChainMatch, SourceType};

/// What is known about a connection when its chain is chosen.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo<'a> {
    /// The local address the client connected to.
    pub destination: SocketAddr,
    /// The client's address (as the listener filters leave it).
    pub source: SocketAddr,
    /// The address of the directly connected peer.
    pub direct_source: IpAddr,
    /// The SNI from the TLS inspector, if any.
    pub server_name: Option<&'a str>,
    /// `tls` when the inspector found a ClientHello, else `raw_buffer`.
    pub transport_protocol: &'a str,
    /// The client's ALPN list, in its order.
    pub application_protocols: &'a [String],
}

/// The chains' criteria, prepared for selection at config load.
#[derive(Debug, Clone)]
pub struct ChainTable {
    chains: Vec<Prepared>,
}

/// One chain's criteria with server names lowercased.
#[derive(Debug, Clone)]
struct Prepared {
    m: FilterChainMatch,
    names: Vec<String>,
}

/// How well a chain matches at one level: `None` is no match; a larger
/// value is more specific.
type Score = Option<u32>;

impl ChainTable {
    /// A table over the chains' matches, in the listener's order.
    pub fn new(matches: &[FilterChainMatch]) -> ChainTable {
        ChainTable {
            chains: matches
                .iter()
                .map(|m| Prepared {
                    names: m
                        .server_names
                        .iter()
                        .map(|n| n.to_ascii_lowercase())
                        .collect(),
                    m: m.clone(),
                })
                .collect(),
        }
    }

    /// The index of the chain for `c`, or `None` (use the default chain).
    pub fn select(&self, c: &ConnInfo) -> Option<usize> {
        let mut alive: Vec<usize> = (0..self.chains.len()).collect();
        let sni = c.server_name.map(str::to_ascii_lowercase);
        let local = is_local(c);
        let levels: [&dyn Fn(&Prepared) -> Score; 9] = [
            &|p| exact_or_any(p.m.destination_port, c.destination.port()),
            &|p| longest_prefix(&p.m.prefix_ranges, c.destination.ip()),
            &|p| server_name(&p.names, sni.as_deref()),
            &|p| match &p.m.transport_protocol {
                None => Some(0),
                Some(t) => (t == c.transport_protocol).then_some(1),
            },
            &|p| application_protocol(&p.m.application_protocols, c.application_protocols),
            &|p| longest_prefix(&p.m.direct_source_prefix_ranges, c.direct_source),
            &|p| match (p.m.source_type, local) {
                (SourceType::Any, _) => Some(0),
                (SourceType::SameIpOrLoopback, true) | (SourceType::External, false) => Some(1),
                _ => None,
            },
            &|p| longest_prefix(&p.m.source_prefix_ranges, c.source.ip()),
            &|p| {
                if p.m.source_ports.is_empty() {
                    Some(0)
                } else {
                    p.m.source_ports.contains(&c.source.port()).then_some(1)
                }
            },
        ];
        for level in levels {
            let scores: Vec<(usize, u32)> = alive
                .iter()
                .filter_map(|&i| level(&self.chains[i]).map(|s| (i, s)))
                .collect();
            let best = scores.iter().map(|(_, s)| *s).max()?;
            alive = scores
                .into_iter()
                .filter(|(_, s)| *s == best)
                .map(|(i, _)| i)
                .collect();
        }
        // The config loader refuses overlapping chains, so one is left.
        alive.first().copied()
    }
}

fn exact_or_any(want: Option<u16>, got: u16) -> Score {
    match want {
        None => Some(0),
        Some(p) => (p == got).then_some(1),
    }
}

/// No ranges: any address (score 0); else 1 + the longest matching prefix.
fn longest_prefix(ranges: &[Cidr], ip: IpAddr) -> Score {
    if ranges.is_empty() {
        return Some(0);
    }
    let ip = canonical(ip);
    ranges
        .iter()
        .filter(|r| r.contains(ip))
        .map(|r| 1 + u32::from(r.len))
        .max()
}

/// IPv4-mapped IPv6 addresses match IPv4 ranges, as Envoy's dual-stack
/// sockets report them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// No names: 0. An exact name: above every wildcard. `*.suffix`: the
/// longer the suffix, the more specific (`*.com` matches `a.b.com` too).
fn server_name(names: &[String], sni: Option<&str>) -> Score {
    if names.is_empty() {
        return Some(0);
    }
    let sni = sni?;
    names
        .iter()
        .filter_map(|n| {
            if n == sni {
                Some(u32::MAX)
            } else {
                let suffix = n.strip_prefix('*')?;
                (sni.len() > suffix.len() && sni.ends_with(suffix)).then_some(suffix.len() as u32)
            }
        })
        .max()
}

/// No protocols: 0. Otherwise the client's protocols are tried in its
/// order, and the earlier one a chain lists scores higher.
fn application_protocol(wanted: &[String], offered: &[String]) -> Score {
    if wanted.is_empty() {
        return Some(0);
    }
    let n = offered.len() as u32;
    offered
        .iter()
        .position(|p| wanted.contains(p))
        .map(|i| n - i as u32)
}

/// Envoy's SAME_IP_OR_LOOPBACK: the peer is loopback or has our address.
fn is_local(c: &ConnInfo) -> bool {
    let src = canonical(c.source.ip());
    src.is_loopback() || src == canonical(c.destination.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        Cidr::new(a.parse().unwrap(), l.parse().unwrap())
    }

    /// A match from a compact spec: `port=443 dst=10.0.0.0/8 sni=a,*.b
    /// tp=tls alpn=h2 direct=... type=local|external src=... sport=1,2`.
    fn m(spec: &str) -> FilterChainMatch {
        let mut f = FilterChainMatch::default();
        for item in spec.split_whitespace() {
            let (k, v) = item.split_once('=').unwrap();
            let list = || v.split(',').map(str::to_string).collect::<Vec<_>>();
            match k {
                "port" => f.destination_port = Some(v.parse().unwrap()),
                "dst" => f.prefix_ranges = v.split(',').map(cidr).collect(),
                "sni" => f.server_names = list(),
                "tp" => f.transport_protocol = Some(v.into()),
                "alpn" => f.application_protocols = list(),
                "direct" => f.direct_source_prefix_ranges = v.split(',').map(cidr).collect(),
                "type" => {
                    f.source_type = if v == "local" {
                        SourceType::SameIpOrLoopback
                    } else {
                        SourceType::External
                    }
                }
                "src" => f.source_prefix_ranges = v.split(',').map(cidr).collect(),
                "sport" => f.source_ports = v.split(',').map(|p| p.parse().unwrap()).collect(),
                _ => panic!("{k}"),
            }
        }
        f
    }

    /// A connection from a compact spec: `dst=1.2.3.4:443 src=5.6.7.8:1000
    /// sni=x tp=tls alpn=h2,http/1.1` (defaults: 10.0.0.1:443 from
    /// 192.168.1.1:5000, raw_buffer, no SNI/ALPN).
    fn pick(table: &ChainTable, spec: &str) -> Option<usize> {
        let mut dst: SocketAddr = "10.0.0.1:443".parse().unwrap();
        let mut src: SocketAddr = "192.168.1.1:5000".parse().unwrap();
        let mut sni = None;
        let mut tp = "raw_buffer".to_string();
        let mut alpn = Vec::new();
        for item in spec.split_whitespace() {
            let (k, v) = item.split_once('=').unwrap();
            match k {
                "dst" => dst = v.parse().unwrap(),
                "src" => src = v.parse().unwrap(),
                "sni" => sni = Some(v.to_string()),
                "tp" => tp = v.into(),
                "alpn" => alpn = v.split(',').map(str::to_string).collect(),
                _ => panic!("{k}"),
            }
        }
        table.select(&ConnInfo {
            destination: dst,
            source: src,
            direct_source: src.ip(),
            server_name: sni.as_deref(),
            transport_protocol: &tp,
            application_protocols: &alpn,
        })
    }

    /// (chains, [(connection, expected chain)]).
    type Case = (
        &'static [&'static str],
        &'static [(&'static str, Option<usize>)],
    );

    const CASES: &[Case] = &[
        // One chain without criteria takes everything.
        (&[""], &[("", Some(0)), ("sni=x tp=tls", Some(0))]),
        // Destination port: exact beats any.
        (
            &["port=8080", ""],
            &[("dst=10.0.0.1:8080", Some(0)), ("dst=10.0.0.1:80", Some(1))],
        ),
        (&["port=8080"], &[("dst=10.0.0.1:80", None)]),
        // Destination IP: the longest prefix wins.
        (
            &["dst=10.0.0.0/8", "dst=10.0.0.0/24", ""],
            &[
                ("dst=10.0.0.9:1", Some(1)),
                ("dst=10.9.0.9:1", Some(0)),
                ("dst=11.0.0.1:1", Some(2)),
                ("dst=[::ffff:10.0.0.9]:1", Some(1)),
            ],
        ),
        // Server names: exact, then the longest wildcard, then none.
        (
            &["sni=www.example.com", "sni=*.example.com", "sni=*.com", ""],
            &[
                ("sni=www.example.com", Some(0)),
                ("sni=WWW.Example.COM", Some(0)),
                ("sni=api.example.com", Some(1)),
                ("sni=a.b.example.com", Some(1)),
                ("sni=example.com", Some(2)),
                ("sni=example.org", Some(3)),
                ("", Some(3)),
            ],
        ),
        // A wildcard does not cover its own suffix; without a catch-all,
        // no SNI (or another name) matches nothing.
        (
            &["sni=*.example.com"],
            &[
                ("sni=example.com", None),
                ("", None),
                ("sni=x.example.com", Some(0)),
            ],
        ),
        // No backtracking: the exact SNI chain wins the server name level,
        // then fails on transport protocol; the wildcard chain is not tried.
        (
            &["sni=a.example.com tp=raw_buffer", "sni=*.example.com"],
            &[
                ("sni=a.example.com tp=tls", None),
                ("sni=b.example.com tp=tls", Some(1)),
                ("sni=a.example.com tp=raw_buffer", Some(0)),
            ],
        ),
        // Transport protocol: TLS chain and a plain chain (tls_inspector).
        (
            &["tp=tls", ""],
            &[("tp=tls sni=x", Some(0)), ("tp=raw_buffer", Some(1))],
        ),
        // Application protocols: the client's order decides.
        (
            &["alpn=h2", "alpn=http/1.1", ""],
            &[
                ("alpn=h2,http/1.1", Some(0)),
                ("alpn=http/1.1,h2", Some(1)),
                ("alpn=spdy/3", Some(2)),
                ("", Some(2)),
            ],
        ),
        // Source type.
        (
            &["type=local", "type=external"],
            &[
                ("src=127.0.0.1:5", Some(0)),
                ("src=10.0.0.1:5 dst=10.0.0.1:443", Some(0)),
                ("src=8.8.8.8:5", Some(1)),
            ],
        ),
        (&["type=local"], &[("src=8.8.8.8:5", None)]),
        // Source IP and port.
        (
            &[
                "src=192.168.0.0/16",
                "src=192.168.1.0/24 sport=5000",
                "src=192.168.1.0/24",
            ],
            &[
                ("src=192.168.1.1:5000", Some(1)),
                ("src=192.168.1.1:6000", Some(2)),
                ("src=192.168.9.1:5000", Some(0)),
                ("src=10.0.0.1:5000", None),
            ],
        ),
        // Earlier levels prune first: the port decides before the SNI.
        (
            &["port=443 sni=*.example.com", "sni=www.example.com"],
            &[
                ("dst=10.0.0.1:443 sni=www.example.com", Some(0)),
                ("dst=10.0.0.1:80 sni=www.example.com", Some(1)),
            ],
        ),
        // Direct source is its own level.
        (
            &["direct=192.168.0.0/16", ""],
            &[
                ("src=192.168.3.3:1", Some(0)),
                ("src=172.16.0.1:1", Some(1)),
            ],
        ),
    ];

    #[test]
    fn envoys_selection_order() {
        for (i, (chains, conns)) in CASES.iter().enumerate() {
            let matches: Vec<FilterChainMatch> = chains.iter().map(|s| m(s)).collect();
            let table = ChainTable::new(&matches);
            for (conn, want) in conns.iter() {
                assert_eq!(
                    pick(&table, conn),
                    *want,
                    "case {i} {chains:?}, connection '{conn}'"
                );
            }
        }
    }

    #[test]
    fn empty_table_selects_nothing() {
        assert_eq!(pick(&ChainTable::new(&[]), ""), None);
    }
}
