//! `SocketAddress`: where a listener binds or an endpoint lives.

use std::fmt;

use crate::decode::{Result, Val};

/// An address and port as written in the config (the address may be a
/// DNS name for DNS-discovered clusters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SocketAddress {
    /// IP address or host name.
    pub address: String,
    /// TCP port.
    pub port: u16,
}

impl SocketAddress {
    /// The IP address, if the address is a literal IP.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.address.trim_matches(['[', ']']).parse().ok()
    }
}

impl fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.address.contains(':') {
            write!(f, "[{}]:{}", self.address, self.port)
        } else {
            write!(f, "{}:{}", self.address, self.port)
        }
    }
}

/// Decodes an `Address` message: `{socket_address: {address, port_value}}`.
pub(crate) fn decode_address(v: &Val) -> Result<SocketAddress> {
    let o = v.obj()?;
    let sa = o.req("socket_address")?;
    o.finish_with(&["pipe", "envoy_internal_address"])?;
    decode_socket_address(&sa)
}

/// Decodes a `SocketAddress` message.
pub(crate) fn decode_socket_address(v: &Val) -> Result<SocketAddress> {
    let o = v.obj()?;
    let address = o.req("address")?.str()?;
    let port = o.req("port_value")?.uint(0, 65535)? as u16;
    if let Some(p) = o.get("protocol") {
        p.enumeration(&[("TCP", ())])?;
    }
    o.ignore("ipv4_compat");
    if address.trim().is_empty() {
        return Err(v.err("socket_address.address must not be empty"));
    }
    o.finish_with(&["named_port", "resolver_name", "network_namespace_filepath"])?;
    Ok(SocketAddress { address, port })
}
