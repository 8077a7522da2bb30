//! `envoy.filters.http.buffer`: `Buffer` (`max_request_bytes`, required,
//! greater than 0, checked with `envoy --mode validate`) and its per-route override
//! `BufferPerRoute` (`disabled: true` or its own `buffer`).

use crate::decode::{Result, Val};

/// The filter's `@type`.
pub const BUFFER_TYPE: &str = "envoy.extensions.filters.http.buffer.v3.Buffer";
/// The per-route `@type`.
pub const BUFFER_PER_ROUTE_TYPE: &str = "envoy.extensions.filters.http.buffer.v3.BufferPerRoute";

/// `Buffer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    /// A request body larger than this is answered 413.
    pub max_request_bytes: u32,
}

/// `BufferPerRoute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferPerRoute {
    /// `disabled: true`: no buffering on this route.
    Disabled,
    /// `buffer`: these settings on this route.
    Buffer(Buffer),
}

/// Decodes the filter's `typed_config`.
pub(crate) fn decode(v: &Val) -> Result<Buffer> {
    let o = v.obj()?;
    o.ignore("@type");
    let mv = o.req("max_request_bytes")?;
    let max_request_bytes = match mv.node.kind {
        crate::yaml::NodeKind::Map(_) => {
            let mo = mv.obj()?;
            let n = mo.req("value")?.u32()?;
            mo.finish()?;
            n
        }
        _ => mv.u32()?,
    };
    if max_request_bytes == 0 {
        return Err(mv.err("max_request_bytes must be greater than 0"));
    }
    o.finish()?;
    Ok(Buffer { max_request_bytes })
}

/// Decodes a `BufferPerRoute`.
pub(crate) fn decode_per_route(v: &Val) -> Result<BufferPerRoute> {
    let o = v.obj()?;
    o.ignore("@type");
    let disabled = o.get("disabled");
    let buffer = o.get("buffer");
    o.finish()?;
    match (disabled, buffer) {
        (Some(d), None) => {
            if !d.bool()? {
                return Err(d.err("'disabled' may only be true"));
            }
            Ok(BufferPerRoute::Disabled)
        }
        (None, Some(b)) => Ok(BufferPerRoute::Buffer(decode(&b)?)),
        (Some(_), Some(b)) => Err(b.err("give one of 'disabled' and 'buffer'")),
        (None, None) => Err(o.err("BufferPerRoute needs 'disabled: true' or 'buffer'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    #[test]
    fn decodes() {
        let b = decode_str("t", "max_request_bytes: 10", decode).unwrap();
        assert_eq!(b.max_request_bytes, 10);
        let b = decode_str("t", "max_request_bytes: {value: '11'}", decode).unwrap();
        assert_eq!(b.max_request_bytes, 11);
        let p = decode_str("t", "disabled: true", decode_per_route).unwrap();
        assert_eq!(p, BufferPerRoute::Disabled);
        let p = decode_str("t", "buffer: {max_request_bytes: 5}", |v| {
            decode_per_route(v)
        })
        .unwrap();
        assert_eq!(
            p,
            BufferPerRoute::Buffer(Buffer {
                max_request_bytes: 5
            })
        );
    }

    #[test]
    fn refused() {
        for (t, want) in [
            ("max_request_bytes: 0", "greater than 0"),
            ("{}", "'max_request_bytes'"),
            (
                "max_request_bytes: 1\nmax_request_time: 1s",
                "unknown field",
            ),
        ] {
            let e = decode_str("t", t, decode).unwrap_err();
            assert!(e.message.contains(want), "{t}: {e}");
        }
        for (t, want) in [
            ("disabled: false", "only be true"),
            ("{}", "needs"),
            ("disabled: true\nbuffer: {max_request_bytes: 1}", "one of"),
        ] {
            let e = decode_str("t", t, decode_per_route).unwrap_err();
            assert!(e.message.contains(want), "{t}: {e}");
        }
    }
}
