//! `filter_chain_match`: the criteria that pick a listener's filter chain
//! for a connection, decoded and checked as Envoy's listener manager does
//! (no partial wildcards, no two chains with overlapping rules). The
//! selection itself is `nuncio-tls`'s `chain_match`.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::decode::{Result, Val};

/// An address range (`CidrRange`), with the address masked to its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address (host bits zero).
    pub addr: IpAddr,
    /// Prefix length, at most 32 (IPv4) or 128 (IPv6).
    pub len: u8,
}

impl Cidr {
    /// The range `addr/len` (len clamped to the family's width, as Envoy
    /// does), with the host bits of `addr` cleared.
    pub fn new(addr: IpAddr, len: u32) -> Cidr {
        match addr {
            IpAddr::V4(a) => {
                let len = len.min(32) as u8;
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                Cidr {
                    addr: IpAddr::V4((u32::from(a) & mask).into()),
                    len,
                }
            }
            IpAddr::V6(a) => {
                let len = len.min(128) as u8;
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                Cidr {
                    addr: IpAddr::V6((u128::from(a) & mask).into()),
                    len,
                }
            }
        }
    }

    /// Whether `ip` is inside the range (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                Cidr::new(ip, u32::from(self.len)).addr == self.addr
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// `source_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SourceType {
    /// `ANY`.
    #[default]
    Any,
    /// `SAME_IP_OR_LOOPBACK`: the peer is this host.
    SameIpOrLoopback,
    /// `EXTERNAL`: the peer is another host.
    External,
}

impl SourceType {
    /// Envoy's enum name.
    pub fn name(self) -> &'static str {
        match self {
            SourceType::Any => "ANY",
            SourceType::SameIpOrLoopback => "SAME_IP_OR_LOOPBACK",
            SourceType::External => "EXTERNAL",
        }
    }
}

/// A `FilterChainMatch`. Empty lists and `None` match anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterChainMatch {
    /// `destination_port`.
    pub destination_port: Option<u16>,
    /// `prefix_ranges`: the destination address.
    pub prefix_ranges: Vec<Cidr>,
    /// `server_names`: exact names or `*.suffix`, as written (matched
    /// case-insensitively).
    pub server_names: Vec<String>,
    /// `transport_protocol`: `tls` or `raw_buffer`.
    pub transport_protocol: Option<String>,
    /// `application_protocols` (ALPN).
    pub application_protocols: Vec<String>,
    /// `direct_source_prefix_ranges`.
    pub direct_source_prefix_ranges: Vec<Cidr>,
    /// `source_type`.
    pub source_type: SourceType,
    /// `source_prefix_ranges`.
    pub source_prefix_ranges: Vec<Cidr>,
    /// `source_ports`.
    pub source_ports: Vec<u16>,
}

impl FilterChainMatch {
    /// Whether there are no criteria at all.
    pub fn is_empty(&self) -> bool {
        *self == FilterChainMatch::default()
    }
}

fn decode_cidr(v: &Val) -> Result<Cidr> {
    let o = v.obj()?;
    let av = o.req("address_prefix")?;
    let a = av.str()?;
    let len = o.get("prefix_len").map(|l| l.uint(0, 128)).transpose()?;
    o.finish()?;
    let addr: IpAddr = a
        .parse()
        .map_err(|_| av.err(format!("malformed IP address: {a}")))?;
    Ok(Cidr::new(addr, len.unwrap_or(0) as u32))
}

fn cidrs(v: Option<Val>) -> Result<Vec<Cidr>> {
    let mut out = Vec::new();
    for c in v.map(|l| l.list()).transpose()?.unwrap_or_default() {
        out.push(decode_cidr(&c)?);
    }
    Ok(out)
}

pub(crate) fn decode_chain_match(v: &Val) -> Result<FilterChainMatch> {
    let o = v.obj()?;
    let destination_port = o
        .get("destination_port")
        .map(|p| p.uint(1, 65535).map(|p| p as u16))
        .transpose()?;
    let prefix_ranges = cidrs(o.get("prefix_ranges"))?;
    let server_names = o
        .get("server_names")
        .map(|s| s.str_list())
        .transpose()?
        .unwrap_or_default();
    for n in &server_names {
        if n.contains('*') && !n.starts_with("*.") {
            return Err(o
                .get("server_names")
                .map(|s| s.err("partial wildcards are not supported in \"server_names\""))
                .unwrap_or_else(|| o.err("partial wildcards")));
        }
    }
    let transport_protocol = o
        .get("transport_protocol")
        .map(|t| t.str())
        .transpose()?
        .filter(|t| !t.is_empty());
    let application_protocols = o
        .get("application_protocols")
        .map(|s| s.str_list())
        .transpose()?
        .unwrap_or_default();
    let direct_source_prefix_ranges = cidrs(o.get("direct_source_prefix_ranges"))?;
    let source_type = match o.get("source_type") {
        None => SourceType::Any,
        Some(t) => t.enumeration(&[
            ("ANY", SourceType::Any),
            ("SAME_IP_OR_LOOPBACK", SourceType::SameIpOrLoopback),
            ("EXTERNAL", SourceType::External),
        ])?,
    };
    let source_prefix_ranges = cidrs(o.get("source_prefix_ranges"))?;
    let mut source_ports = Vec::new();
    for p in o
        .get("source_ports")
        .map(|l| l.list())
        .transpose()?
        .unwrap_or_default()
    {
        source_ports.push(p.uint(1, 65535)? as u16);
    }
    o.finish_with(&["address_suffix", "suffix_len"])?;
    Ok(FilterChainMatch {
        destination_port,
        prefix_ranges,
        server_names,
        transport_protocol,
        application_protocols,
        direct_source_prefix_ranges,
        source_type,
        source_prefix_ranges,
        source_ports,
    })
}

/// One combination of criteria a chain claims (Envoy's filter chain
/// manager expands each chain into these; two chains may not share one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MatchLeaf {
    destination_port: Option<u16>,
    prefix: Option<Cidr>,
    server_name: Option<String>,
    transport_protocol: Option<String>,
    application_protocol: Option<String>,
    direct_source: Option<Cidr>,
    source_type: SourceType,
    source: Option<Cidr>,
    source_port: Option<u16>,
}

fn each<T: Clone>(v: &[T]) -> Vec<Option<T>> {
    if v.is_empty() {
        vec![None]
    } else {
        v.iter().cloned().map(Some).collect()
    }
}

fn leaves(m: &FilterChainMatch) -> Vec<MatchLeaf> {
    let names: Vec<String> = m
        .server_names
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    for prefix in each(&m.prefix_ranges) {
        for server_name in each(&names) {
            for application_protocol in each(&m.application_protocols) {
                for direct_source in each(&m.direct_source_prefix_ranges) {
                    for source in each(&m.source_prefix_ranges) {
                        for source_port in each(&m.source_ports) {
                            out.push(MatchLeaf {
                                destination_port: m.destination_port,
                                prefix,
                                server_name: server_name.clone(),
                                transport_protocol: m.transport_protocol.clone(),
                                application_protocol: application_protocol.clone(),
                                direct_source,
                                source_type: m.source_type,
                                source,
                                source_port,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Envoy's listener checks on a set of chains (`names` for messages):
/// identical matches, then overlapping ones.
pub(crate) fn check_chains(v: &Val, chains: &[(&str, &FilterChainMatch)]) -> Result<()> {
    for (i, (a, ma)) in chains.iter().enumerate() {
        if let Some((b, _)) = chains[..i].iter().find(|(_, mb)| mb == ma) {
            return Err(v.err(format!(
                "filter chain '{a}' has the same matching rules defined as '{b}'"
            )));
        }
    }
    let mut seen: HashMap<MatchLeaf, usize> = HashMap::new();
    for (i, (_, m)) in chains.iter().enumerate() {
        for leaf in leaves(m) {
            if let Some(j) = seen.insert(leaf, i) {
                if j != i {
                    return Err(v.err(
                        "multiple filter chains with overlapping matching rules are defined",
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    fn m(text: &str) -> Result<FilterChainMatch> {
        decode_str("t.yaml", text, decode_chain_match)
    }

    #[test]
    fn all_fields() {
        let f = m("{destination_port: 443, prefix_ranges: [{address_prefix: 10.1.2.3, prefix_len: 8}], server_names: [a.com, '*.b.com'], transport_protocol: tls, application_protocols: [h2], direct_source_prefix_ranges: [{address_prefix: '::1', prefix_len: 128}], source_type: SAME_IP_OR_LOOPBACK, source_prefix_ranges: [{address_prefix: 192.168.0.0, prefix_len: 33}], source_ports: [1234]}").unwrap();
        assert_eq!(f.destination_port, Some(443));
        assert_eq!(f.prefix_ranges[0].to_string(), "10.0.0.0/8");
        assert_eq!(f.source_prefix_ranges[0].to_string(), "192.168.0.0/32");
        assert_eq!(f.direct_source_prefix_ranges[0].to_string(), "::1/128");
        assert_eq!(f.source_type, SourceType::SameIpOrLoopback);
        assert!(m("{}").unwrap().is_empty());
        assert!(m("{transport_protocol: ''}").unwrap().is_empty());
    }

    #[test]
    fn envoys_errors() {
        for bad in ["'*'", "'a*.b'", "'*b.c'"] {
            let e = m(&format!("server_names: [{bad}]")).unwrap_err();
            assert_eq!(
                e.message,
                "partial wildcards are not supported in \"server_names\""
            );
        }
        let e = m("prefix_ranges: [{address_prefix: 10.0.0.300, prefix_len: 8}]").unwrap_err();
        assert_eq!(e.message, "malformed IP address: 10.0.0.300");
        assert!(m("destination_port: 0").is_err());
        assert!(m("source_ports: [70000]").is_err());
        assert!(m("source_type: NEARBY").is_err());
    }

    #[test]
    fn cidr_contains() {
        let c = Cidr::new("10.0.0.0".parse().unwrap(), 8);
        assert!(c.contains("10.9.9.9".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(Cidr::new("1.2.3.4".parse().unwrap(), 0).contains("9.9.9.9".parse().unwrap()));
    }

    fn check(a: &str, b: &str) -> std::result::Result<(), String> {
        let (ma, mb) = (m(a).unwrap(), m(b).unwrap());
        decode_str("t.yaml", "{}", |v| {
            check_chains(v, &[("x", &ma), ("y", &mb)])
        })
        .map_err(|e| e.message)
    }

    #[test]
    fn overlaps_as_envoy() {
        assert_eq!(
            check("{}", "{}").unwrap_err(),
            "filter chain 'y' has the same matching rules defined as 'x'"
        );
        let overlap = "multiple filter chains with overlapping matching rules are defined";
        assert_eq!(
            check("{server_names: [a]}", "{server_names: [A]}").unwrap_err(),
            overlap
        );
        // Envoy says "overlapping" here (it compares the ranges as
        // written); nuncio masks them first, so they are the same rules.
        assert!(check(
            "{prefix_ranges: [{address_prefix: 10.0.0.1, prefix_len: 8}]}",
            "{prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}"
        )
        .is_err());
        assert_eq!(
            check("{server_names: [a, b]}", "{server_names: [c, b]}").unwrap_err(),
            overlap
        );
        check("{server_names: [a]}", "{server_names: [b]}").unwrap();
        check("{server_names: [a]}", "{}").unwrap();
        check(
            "{transport_protocol: tls}",
            "{transport_protocol: raw_buffer}",
        )
        .unwrap();
    }
}
