//! The `Via` header (RFC 9110 7.6.3). Every nuncio appends
//! `<received-protocol> nuncio-<id>`, `<id>` being random per process, so
//! the hops a request took are visible upstream (the blog's echo shows
//! `Via:[1.1 nuncio-…, 2.0 nuncio-…]` in the mesh: the second hop was
//! HTTP/2), and a request that comes back to the same proxy is a loop.

use std::sync::OnceLock;

use http::header::HeaderValue;
use http::Version;

/// This process's Via pseudonym.
pub fn process_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let u = crate::headers::uuid_v4();
        let hex: String = u
            .to_str()
            .unwrap_or("0")
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(12)
            .collect();
        format!("nuncio-{hex}")
    })
}

/// True if `id` is a received-by name in one Via field value.
pub(crate) fn seen_in(value: &[u8], id: &str) -> bool {
    value.split(|c| *c == b',').any(|entry| {
        entry
            .split(|c| c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .nth(1)
            == Some(id.as_bytes())
    })
}

/// A request that already passed through this proxy: counted
/// (`rq_loop_detected`) and logged, one text for both codecs; the caller
/// answers 508.
pub(crate) fn loop_detected(stats: &crate::HcmStats, via_id: &str, cluster: &str) {
    stats.rq_loop_detected.inc();
    tracing::warn!(
        cluster = %cluster,
        "request loop: this request already passed through this proxy ({via_id}); the route's cluster leads back here. \
         Check that cluster '{cluster}' points at the service, not at proxies that route back (in the blog's \
         service-envoy.yaml the sidecar's cluster is service1/service2:80, the sidecars themselves; \
         service-envoy.fixed.yaml points it at 127.0.0.1:8080)"
    );
}

/// The Via values of this process for each received protocol, built once.
#[derive(Debug)]
pub(crate) struct ViaValues {
    h10: HeaderValue,
    h11: HeaderValue,
    h2: HeaderValue,
}

impl ViaValues {
    pub fn new(id: &str) -> Self {
        let v = |p: &str| {
            HeaderValue::from_str(&format!("{p} {id}"))
                .unwrap_or(HeaderValue::from_static("1.1 nuncio"))
        };
        ViaValues {
            h10: v("1.0"),
            h11: v("1.1"),
            h2: v("2.0"),
        }
    }

    /// The prebuilt value for a received protocol.
    pub fn get(&self, received: Version) -> &HeaderValue {
        match received {
            Version::HTTP_2 => &self.h2,
            Version::HTTP_10 => &self.h10,
            _ => &self.h11,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_detection() {
        assert!(seen_in(b"1.1 squid, 2.0 nuncio-a", "nuncio-a"));
        assert!(!seen_in(b"1.1 squid, 2.0 nuncio-a", "nuncio-b"));
        assert!(!seen_in(b"1.1 squid", "squid-x"));
        assert!(process_id().starts_with("nuncio-") && process_id().len() == 19);
        let vv = ViaValues::new("nuncio-b");
        assert_eq!(vv.get(Version::HTTP_2), "2.0 nuncio-b");
        assert_eq!(vv.get(Version::HTTP_11), "1.1 nuncio-b");
    }
}
