//! The connection manager's side of the HTTP filter chain, for both
//! codecs: after the connection manager's own checks and the route
//! lookup, [`on_request`] runs the listener's filters (`nuncio_filters`),
//! then the route's request header mutations (Envoy's router applies
//! them, route → virtual host → route configuration); [`on_response`] runs
//! the route's response mutations and the filters' response phase in
//! reverse on every response head, the upstream's and local replies
//! alike. What they change is kept as [`Edits`] that the head writers
//! apply while serialising (`head.rs`, `h2head.rs`, local replies).
//!
//! A connection manager with no filter and no header mutation skips all
//! of it: [`on_request`] returns `None` at once.

use std::net::SocketAddr;
use std::time::Instant;

use nuncio_filters::chain::{Facts, RouteConfigs};
use nuncio_filters::formatter::{format, Protocol};
use nuncio_filters::headers::{apply_formatted, HeaderList, HeaderLookup};
use nuncio_filters::{
    Edits, Fields, LocalResponse, RequestCx, ResponseCx, StreamFacts, StreamState,
};
use nuncio_router::RouteEntry;

use crate::Hcm;

/// What the filters and the route's header rules made of one request.
#[derive(Debug)]
pub(crate) struct Filtered {
    /// Edits to the request head (applied to the upstream head).
    pub(crate) request: Edits,
    /// Edits to the response head, whatever the response.
    pub(crate) response: Edits,
    state: StreamState,
    facts: StreamFacts,
    /// The response phase runs over the filters before this index.
    upto: usize,
    /// The request's headers as forwarded, for response-side `%REQ()%`.
    snapshot: Option<HeaderList>,
    /// A filter asked for the whole body first, up to this many bytes.
    pub(crate) buffer_request: Option<u32>,
    /// The route's response mutations apply (not to a response a filter
    /// encoded itself).
    route_headers: bool,
    /// Response flags the filters set (`DI`), for the access log.
    pub(crate) flags: nuncio_filters::ResponseFlags,
    /// A health check: its response is not counted (as Envoy).
    pub(crate) health_check: bool,
}

/// The request, as the filters see it.
pub(crate) struct RequestView<'a, 'b> {
    pub(crate) method: &'a str,
    /// The path as routed.
    pub(crate) path: &'a str,
    pub(crate) authority: &'a str,
    /// The fields as they arrived.
    pub(crate) fields: &'a [(&'b str, &'b [u8])],
    pub(crate) protocol: Protocol,
    pub(crate) bodyless: bool,
    pub(crate) peer: SocketAddr,
    pub(crate) local: Option<SocketAddr>,
    /// When the request began.
    pub(crate) started: Instant,
}

/// How the request phase ended.
pub(crate) enum Decision {
    /// On to the router.
    Continue,
    /// A filter answered.
    Reply(LocalResponse),
}

fn route_cfg(route: Option<&RouteEntry>) -> Option<&dyn RouteConfigs> {
    route.map(|r| r as &dyn RouteConfigs)
}

/// Runs the filters and the route's request mutations, keeping what they
/// made in `slot` (built there, not moved); `None` when this connection
/// manager has neither.
pub(crate) async fn on_request(
    hcm: &Hcm,
    route: Option<&RouteEntry>,
    v: RequestView<'_, '_>,
    slot: &mut Option<Filtered>,
) -> Option<Decision> {
    if !hcm.filtering {
        return None;
    }
    let f = slot.insert(Filtered {
        request: Edits::default(),
        response: Edits::default(),
        state: StreamState::default(),
        facts: StreamFacts {
            peer: v.peer,
            local: v.local,
            started: v.started,
            protocol: v.protocol,
        },
        upto: hcm.chain.len(),
        snapshot: None,
        buffer_request: None,
        route_headers: true,
        flags: nuncio_filters::ResponseFlags::NONE,
        health_check: false,
    });
    if !hcm.chain.is_empty() {
        let Filtered {
            request,
            response,
            state,
            facts,
            ..
        } = &mut *f;
        let mut cx = RequestCx {
            method: v.method,
            path: v.path,
            authority: v.authority,
            headers: Fields {
                original: v.fields,
                edits: request,
            },
            response_headers: response,
            route: route_cfg(route),
            stream: facts,
            filter_name: "",
            state,
            filter_index: 0,
            bodyless: v.bodyless,
            buffer_request: None,
            flags: nuncio_filters::ResponseFlags::NONE,
            health_check: false,
        };
        let verdict = hcm.chain.on_request(&mut cx).await;
        let (buffer, flags, hc) = (cx.buffer_request, cx.flags, cx.health_check);
        f.buffer_request = buffer;
        f.flags = flags;
        f.health_check = hc;
        if let nuncio_filters::Verdict::Reply { at, response } = verdict {
            f.upto = at;
            f.route_headers = response.local_reply;
            return Some(Decision::Reply(response));
        }
    }
    if let Some(r) = route.filter(|r| r.mutates_headers()) {
        let Filtered { request, facts, .. } = &mut *f;
        let mut fields = Fields {
            original: v.fields,
            edits: request,
        };
        for m in r.header_levels() {
            apply_formatted(
                &m.request_headers_to_add,
                &m.request_headers_to_remove,
                &mut fields,
                &|fs, req| format(fs, &Facts::request_time(facts, req, route_cfg(route))),
            );
        }
    }
    if hcm.keep_request_headers {
        f.snapshot = Some(snapshot(v.fields, &mut f.request));
    }
    Some(Decision::Continue)
}

/// The request's fields as forwarded (edits applied), owned.
fn snapshot(original: &[(&str, &[u8])], edits: &mut Edits) -> HeaderList {
    let mut out = Vec::new();
    for (n, v) in original {
        if !edits.removes(n) {
            if let Ok(v) = std::str::from_utf8(v) {
                out.push((n.to_ascii_lowercase(), v.to_string()));
            }
        }
    }
    out.extend(edits.added().map(|(n, v)| (n.to_string(), v.to_string())));
    HeaderList(out)
}

/// The response phase for a response of `status` whose own fields are
/// `fields` (empty for a local reply's); returns the edits the head
/// writer applies.
pub(crate) fn on_response<'f>(
    hcm: &Hcm,
    f: &'f mut Filtered,
    route: Option<&RouteEntry>,
    status: u16,
    fields: &[(&str, &[u8])],
    local: bool,
    upstream: Option<SocketAddr>,
) -> &'f Edits {
    let Filtered {
        response,
        state,
        facts,
        upto,
        snapshot,
        route_headers,
        ..
    } = f;
    let request = snapshot.as_ref().map(|s| s as &dyn HeaderLookup);
    // What filters recorded at request time comes after the route's
    // mutations, as Envoy's encoders run after the router's.
    let recorded = std::mem::take(response);
    // The route's response mutations apply to every response once a route
    // matched, local replies too; Envoy formats %RESPONSE_CODE% as 0 there.
    let code = (!local).then_some(status);
    if *route_headers {
        if let Some(r) = route.filter(|r| r.mutates_headers()) {
            let mut headers = Fields {
                original: fields,
                edits: response,
            };
            for m in r.header_levels() {
                apply_formatted(
                    &m.response_headers_to_add,
                    &m.response_headers_to_remove,
                    &mut headers,
                    &|fs, resp| {
                        format(
                            fs,
                            &Facts {
                                stream: facts,
                                request,
                                response: Some(resp),
                                response_code: code,
                                upstream,
                                route: route_cfg(route),
                            },
                        )
                    },
                );
            }
        }
    }
    response.merge(recorded);
    if *upto > 0 && hcm.chain.has_response_phase() {
        let mut cx = ResponseCx {
            status,
            headers: Fields {
                original: fields,
                edits: response,
            },
            local,
            request,
            route: route_cfg(route),
            upstream,
            stream: facts,
            filter_name: "",
            state,
            filter_index: 0,
        };
        hcm.chain.on_response(*upto, &mut cx);
    }
    &f.response
}

/// The response phase as an upstream exchange calls it, once the
/// response head (or the router's local reply) is known.
pub(crate) struct ResponseHook<'a> {
    pub(crate) hcm: &'a Hcm,
    pub(crate) f: &'a mut Filtered,
    pub(crate) route: &'a RouteEntry,
    pub(crate) upstream: SocketAddr,
}

impl<'a> ResponseHook<'a> {
    /// The hook for a request routed on `route` to `upstream`, if it was
    /// filtered and something may change its response (edits recorded at
    /// request time, the route's mutations, a filter's response phase).
    pub(crate) fn of(
        hcm: &'a Hcm,
        f: Option<&'a mut Filtered>,
        route: &'a RouteEntry,
        upstream: SocketAddr,
    ) -> Option<Self> {
        let idle = |f: &Filtered| {
            f.response.is_empty() && !route.mutates_headers() && !hcm.chain.has_response_phase()
        };
        f.filter(|f| !idle(f) || f.health_check)
            .map(|f| ResponseHook {
                hcm,
                f,
                route,
                upstream,
            })
    }

    /// The edits for the upstream's response head.
    pub(crate) fn edits(&mut self, status: u16, fields: &[(&str, &[u8])]) -> &Edits {
        on_response(
            self.hcm,
            self.f,
            Some(self.route),
            status,
            fields,
            false,
            Some(self.upstream),
        )
    }

    /// The edits for a local reply the router sends instead.
    pub(crate) fn local(&mut self, status: u16) -> &Edits {
        on_response(
            self.hcm,
            self.f,
            Some(self.route),
            status,
            &[],
            true,
            Some(self.upstream),
        )
    }
}
