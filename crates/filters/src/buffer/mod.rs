//! The buffer filter's decisions: whether a request's body is buffered,
//! and when it is too large.
//!
//! Verified against Envoy 1.40 (`max_request_bytes: 10`, curl): a 10-byte
//! body is forwarded; an 11-byte body is answered `413 Payload Too Large`
//! (body `Payload Too Large`, `connection: close`); a chunked 4-byte body
//! reaches the upstream with `content-length: 4` added (after the other
//! request headers); a chunked 12-byte body gets 413. A `Content-Length`
//! above the limit is not refused up front: Envoy waits for the bytes.

mod filter;

pub use filter::BufferFilter;

use nuncio_config::filters::{Buffer, BufferPerRoute};

/// What to do with a request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferPlan {
    /// Stream it (no body, or buffering is off for this route).
    Stream,
    /// Buffer the whole body, up to `limit` bytes, before forwarding.
    Buffer {
        /// `max_request_bytes`.
        limit: u32,
    },
}

/// Decides when the request's headers arrive. `end_stream`: the headers
/// end the request (no body).
pub fn plan(filter: &Buffer, per_route: Option<&BufferPerRoute>, end_stream: bool) -> BufferPlan {
    if end_stream {
        return BufferPlan::Stream;
    }
    match per_route {
        Some(BufferPerRoute::Disabled) => BufferPlan::Stream,
        Some(BufferPerRoute::Buffer(b)) => BufferPlan::Buffer {
            limit: b.max_request_bytes,
        },
        None => BufferPlan::Buffer {
            limit: filter.max_request_bytes,
        },
    }
}

/// The answer when the body outgrows the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl TooLarge {
    /// `413`.
    pub const STATUS: u16 = 413;
    /// The body Envoy sends.
    pub const BODY: &'static str = "Payload Too Large";
}

/// After `buffered` bytes have arrived in all: refuse once over `limit`.
pub fn on_body(plan: BufferPlan, buffered: u64) -> Result<(), TooLarge> {
    match plan {
        BufferPlan::Buffer { limit } if buffered > u64::from(limit) => Err(TooLarge),
        _ => Ok(()),
    }
}

/// At the body's end: the `content-length` to add when the request had
/// none (it was chunked), as Envoy does before forwarding.
pub fn content_length_to_add(
    plan: BufferPlan,
    had_content_length: bool,
    buffered: u64,
) -> Option<u64> {
    match plan {
        BufferPlan::Buffer { .. } if !had_content_length => Some(buffered),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_envoy_did() {
        let f = Buffer {
            max_request_bytes: 10,
        };
        let p = plan(&f, None, false);
        assert_eq!(p, BufferPlan::Buffer { limit: 10 });
        assert_eq!(on_body(p, 10), Ok(()));
        assert_eq!(on_body(p, 11), Err(TooLarge));
        assert_eq!(
            (TooLarge::STATUS, TooLarge::BODY),
            (413, "Payload Too Large")
        );
        assert_eq!(content_length_to_add(p, false, 4), Some(4));
        assert_eq!(content_length_to_add(p, true, 4), None);
    }

    #[test]
    fn per_route_and_no_body() {
        let f = Buffer {
            max_request_bytes: 10,
        };
        assert_eq!(plan(&f, None, true), BufferPlan::Stream);
        assert_eq!(
            plan(&f, Some(&BufferPerRoute::Disabled), false),
            BufferPlan::Stream
        );
        let own = BufferPerRoute::Buffer(Buffer {
            max_request_bytes: 3,
        });
        assert_eq!(plan(&f, Some(&own), false), BufferPlan::Buffer { limit: 3 });
        assert_eq!(on_body(BufferPlan::Stream, 1 << 40), Ok(()));
        assert_eq!(content_length_to_add(BufferPlan::Stream, false, 4), None);
    }
}
