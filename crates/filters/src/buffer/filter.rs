//! The buffer filter on the request path: it asks the connection manager
//! ([`RequestCx::buffer_request`]) to read the whole request body before
//! forwarding it, up to `max_request_bytes` (413 beyond); a chunked body
//! then goes upstream with a `content-length`, as Envoy sends it.

use nuncio_config::filters::{Buffer, PerRouteConfig};

use super::{plan, BufferPlan};
use crate::chain::{Flow, HttpFilter, RequestCx};

/// `envoy.filters.http.buffer`.
#[derive(Debug)]
pub struct BufferFilter {
    cfg: Buffer,
}

impl BufferFilter {
    /// The filter.
    pub fn new(cfg: Buffer) -> Self {
        BufferFilter { cfg }
    }
}

impl HttpFilter for BufferFilter {
    fn on_request(&self, cx: &mut RequestCx<'_, '_>) -> Flow {
        let per_route = cx.overrides().find_map(|c| match c {
            PerRouteConfig::Buffer(b) => Some(b),
            _ => None,
        });
        if let BufferPlan::Buffer { limit } = plan(&self.cfg, per_route, cx.bodyless) {
            cx.buffer_request = Some(cx.buffer_request.map_or(limit, |l| l.min(limit)));
        }
        Flow::Continue
    }
}
