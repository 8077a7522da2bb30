//! Name resolution for DNS clusters, with two user-visible overrides that
//! let the blog's docker-compose setups run on one machine:
//! - [`HostsFile`] (`--hosts FILE`, /etc/hosts format) answers names before
//!   the system resolver (docker's network aliases `service1`, `service2`);
//! - [`AddressMap`] (`--remap FROM=TO`) rewrites a socket address wherever
//!   nuncio binds or connects (docker's `-p 9000:80` port publishing).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use nuncio_config::DnsLookupFamily;

/// A resolution failure.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The hosts file could not be read or parsed.
    #[error("{file}:{line}: {message}")]
    HostsFile {
        /// File name.
        file: String,
        /// 1-based line (0 for read errors).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A `--remap` rule is malformed.
    #[error(
        "--remap '{0}': expected FROM=TO with socket addresses, e.g. 0.0.0.0:80=127.0.0.1:9000"
    )]
    Remap(String),
    /// The lookup failed.
    #[error("resolving '{name}' failed: {message}")]
    Lookup {
        /// The name.
        name: String,
        /// Why.
        message: String,
    },
}

/// Names from a hosts file.
#[derive(Debug, Clone, Default)]
pub struct HostsFile {
    map: HashMap<String, Vec<IpAddr>>,
}

impl HostsFile {
    /// Parses /etc/hosts-format text.
    pub fn parse(file: &str, text: &str) -> Result<Self, ResolveError> {
        let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let ip_text = words.next().unwrap_or("");
            let ip: IpAddr = ip_text.parse().map_err(|_| ResolveError::HostsFile {
                file: file.into(),
                line: i + 1,
                message: format!("'{ip_text}' is not an IP address (expected: ADDRESS NAME...)"),
            })?;
            let mut any = false;
            for name in words {
                any = true;
                let v = map.entry(name.to_ascii_lowercase()).or_default();
                if !v.contains(&ip) {
                    v.push(ip);
                }
            }
            if !any {
                return Err(ResolveError::HostsFile {
                    file: file.into(),
                    line: i + 1,
                    message: "no name after the address".into(),
                });
            }
        }
        Ok(HostsFile { map })
    }

    /// Reads a hosts file.
    pub fn load(path: &str) -> Result<Self, ResolveError> {
        let text = std::fs::read_to_string(path).map_err(|e| ResolveError::HostsFile {
            file: path.into(),
            line: 0,
            message: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// The addresses of `name`, if listed.
    pub fn get(&self, name: &str) -> Option<&[IpAddr]> {
        self.map.get(&name.to_ascii_lowercase()).map(Vec::as_slice)
    }
}

/// Socket-address rewrite rules.
#[derive(Debug, Clone, Default)]
pub struct AddressMap {
    rules: Vec<(SocketAddr, SocketAddr)>,
}

impl AddressMap {
    /// Parses `FROM=TO` rules.
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<Self, ResolveError> {
        let mut out = Vec::new();
        for r in rules {
            let r = r.as_ref();
            let (a, b) = r
                .split_once('=')
                .ok_or_else(|| ResolveError::Remap(r.into()))?;
            let a: SocketAddr = a
                .trim()
                .parse()
                .map_err(|_| ResolveError::Remap(r.into()))?;
            let b: SocketAddr = b
                .trim()
                .parse()
                .map_err(|_| ResolveError::Remap(r.into()))?;
            out.push((a, b));
        }
        Ok(AddressMap { rules: out })
    }

    /// The address after rewriting.
    pub fn apply(&self, addr: SocketAddr) -> SocketAddr {
        self.rules
            .iter()
            .find(|(from, _)| *from == addr)
            .map(|(_, to)| *to)
            .unwrap_or(addr)
    }
}

/// A hosts file that is read again when it changes (by modification time),
/// as the system resolver re-reads /etc/hosts.
#[derive(Debug, Default)]
struct HostsSource {
    path: Option<String>,
    cache: std::sync::Mutex<(Option<std::time::SystemTime>, HostsFile)>,
}

impl HostsSource {
    fn current(&self) -> HostsFile {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = &self.path {
            let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if mtime != cache.0 {
                match HostsFile::load(path) {
                    Ok(h) => *cache = (mtime, h),
                    Err(e) => {
                        tracing::warn!(error = %e, "hosts file not reloaded; keeping the previous one")
                    }
                }
            }
        }
        cache.1.clone()
    }
}

/// Resolves endpoint names.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    hosts: std::sync::Arc<HostsSource>,
    remap: AddressMap,
}

const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

impl Resolver {
    /// A resolver with fixed overrides.
    pub fn new(hosts: HostsFile, remap: AddressMap) -> Self {
        let src = HostsSource {
            path: None,
            cache: std::sync::Mutex::new((None, hosts)),
        };
        Resolver {
            hosts: std::sync::Arc::new(src),
            remap,
        }
    }

    /// A resolver whose hosts file (checked now) is re-read when it changes.
    pub fn with_hosts_file(path: &str, remap: AddressMap) -> Result<Self, ResolveError> {
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let hosts = HostsFile::load(path)?;
        let src = HostsSource {
            path: Some(path.to_string()),
            cache: std::sync::Mutex::new((mtime, hosts)),
        };
        Ok(Resolver {
            hosts: std::sync::Arc::new(src),
            remap,
        })
    }

    /// The address rewrite rules.
    pub fn remap(&self) -> &AddressMap {
        &self.remap
    }

    /// Every address `name:port` resolves to (hosts file first, then the
    /// system resolver), filtered by `family`, with `--remap` applied.
    pub async fn resolve(
        &self,
        name: &str,
        port: u16,
        family: DnsLookupFamily,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        let ips: Vec<IpAddr> = if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
            vec![ip]
        } else if let Some(ips) = self.hosts.current().get(name) {
            ips.to_vec()
        } else {
            let lookup = tokio::net::lookup_host((name.to_string(), port));
            match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(it)) => it.map(|sa| sa.ip()).collect(),
                Ok(Err(e)) => {
                    return Err(ResolveError::Lookup {
                        name: name.into(),
                        message: e.to_string(),
                    })
                }
                Err(_) => {
                    return Err(ResolveError::Lookup {
                        name: name.into(),
                        message: "timed out".into(),
                    })
                }
            }
        };
        let mut out: Vec<SocketAddr> = Vec::new();
        for ip in filter_family(ips, family) {
            let sa = self.remap.apply(SocketAddr::new(ip, port));
            if !out.contains(&sa) {
                out.push(sa);
            }
        }
        if out.is_empty() {
            return Err(ResolveError::Lookup {
                name: name.into(),
                message: "no address of the requested family".into(),
            });
        }
        Ok(out)
    }
}

fn filter_family(ips: Vec<IpAddr>, family: DnsLookupFamily) -> Vec<IpAddr> {
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = ips.into_iter().partition(IpAddr::is_ipv4);
    match family {
        DnsLookupFamily::V4Only => v4,
        DnsLookupFamily::V6Only => v6,
        DnsLookupFamily::V4Preferred => {
            if v4.is_empty() {
                v6
            } else {
                v4
            }
        }
        DnsLookupFamily::V6Preferred => {
            if v6.is_empty() {
                v4
            } else {
                v6
            }
        }
        DnsLookupFamily::All => v4.into_iter().chain(v6).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file() {
        let h = HostsFile::parse(
            "h",
            "# c\n127.0.0.2 service1 s1\n127.0.0.3 service2\n127.0.0.4 service2\n",
        )
        .unwrap();
        assert_eq!(
            h.get("SERVICE1").unwrap(),
            &["127.0.0.2".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(h.get("s1").unwrap().len(), 1);
        assert_eq!(h.get("service2").unwrap().len(), 2);
        let e = HostsFile::parse("h", "\nnot-an-ip x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "h:2: 'not-an-ip' is not an IP address (expected: ADDRESS NAME...)"
        );
    }

    #[test]
    fn remap_rules() {
        let m = AddressMap::parse(&["0.0.0.0:80=127.0.0.1:9000"]).unwrap();
        assert_eq!(
            m.apply("0.0.0.0:80".parse().unwrap()),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(
            m.apply("0.0.0.0:81".parse().unwrap()),
            "0.0.0.0:81".parse().unwrap()
        );
        assert!(AddressMap::parse(&["80=9000"]).is_err());
    }

    #[tokio::test]
    async fn resolves_through_overrides() {
        let h = HostsFile::parse("h", "127.0.0.2 service1\n::1 six\n").unwrap();
        let m = AddressMap::parse(&["127.0.0.2:80=127.0.0.2:10080"]).unwrap();
        let r = Resolver::new(h, m);
        let a = r
            .resolve("service1", 80, DnsLookupFamily::V4Preferred)
            .await
            .unwrap();
        assert_eq!(a, vec!["127.0.0.2:10080".parse().unwrap()]);
        let a = r
            .resolve("six", 1, DnsLookupFamily::V4Preferred)
            .await
            .unwrap();
        assert_eq!(a, vec!["[::1]:1".parse().unwrap()]);
        assert!(r.resolve("six", 1, DnsLookupFamily::V4Only).await.is_err());
        let a = r
            .resolve("localhost", 5, DnsLookupFamily::V4Only)
            .await
            .unwrap();
        assert_eq!(a[0].ip().to_string(), "127.0.0.1");
    }
}
