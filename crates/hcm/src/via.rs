//! The `Via` header (RFC 9110 7.6.3). Every nuncio appends
//! `<received-protocol> nuncio-<id>`, `<id>` being random per process, so
//! the hops a request took are visible upstream (the blog's echo shows
//! `Via:[1.1 nuncio-…, 2.0 nuncio-…]` in the mesh: the second hop was
//! HTTP/2), and a request that comes back to the same proxy is a loop.

use std::sync::OnceLock;

use http::header::{HeaderMap, HeaderValue, VIA};
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

/// True if `id` is one of the Via entries' received-by names.
pub(crate) fn seen(h: &HeaderMap, id: &str) -> bool {
    h.get_all(VIA).iter().any(|v| seen_in(v.as_bytes(), id))
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

    /// Appends this hop: a prebuilt value when the request has no Via yet.
    pub fn append(&self, h: &mut HeaderMap, received: Version, id: &str) {
        if h.contains_key(VIA) {
            return append(h, received, id);
        }
        h.insert(VIA, self.get(received).clone());
    }
}

/// Appends this hop.
pub(crate) fn append(h: &mut HeaderMap, received: Version, id: &str) {
    let proto = match received {
        Version::HTTP_2 => "2.0",
        Version::HTTP_10 => "1.0",
        Version::HTTP_3 => "3.0",
        _ => "1.1",
    };
    let prev: Vec<String> = h
        .get_all(VIA)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let mut value = prev.join(", ");
    if !value.is_empty() {
        value.push_str(", ");
    }
    value.push_str(proto);
    value.push(' ');
    value.push_str(id);
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(VIA, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_and_detect() {
        let mut h = HeaderMap::new();
        h.insert(VIA, HeaderValue::from_static("1.1 squid"));
        append(&mut h, Version::HTTP_2, "nuncio-a");
        assert_eq!(h[VIA], "1.1 squid, 2.0 nuncio-a");
        assert!(seen(&h, "nuncio-a"));
        assert!(!seen(&h, "nuncio-b"));
        assert!(!seen(&h, "squid-x"));
        assert!(process_id().starts_with("nuncio-") && process_id().len() == 19);
        let vv = ViaValues::new("nuncio-b");
        let mut h = HeaderMap::new();
        vv.append(&mut h, Version::HTTP_2, "nuncio-b");
        assert_eq!(h[VIA], "2.0 nuncio-b");
        vv.append(&mut h, Version::HTTP_11, "nuncio-b");
        assert_eq!(h[VIA], "2.0 nuncio-b, 1.1 nuncio-b");
    }
}
