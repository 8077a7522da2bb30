//! The extension point: Envoy's HTTP filter chain, as a phase trait.
//!
//! A filter implements [`HttpFilter`]: [`HttpFilter::on_request`] sees the
//! routed request head (and may edit it, add headers to the response, or
//! answer locally), [`HttpFilter::on_response`] sees the response head on
//! its way back (the upstream's, or a local reply's). The connection
//! manager builds one [`FilterChain`] per listener from `http_filters`
//! (`crate::registry`), runs the request phase in order and the response
//! phase in reverse, as Envoy's `FilterManager` does, and the router is
//! what follows the chain. A local reply from filter `k` passes back
//! through the filters before `k` only (Envoy: CORS headers reach a rate
//! limiter's 429).
//!
//! Filters are shared by every request of the listener (`Arc`), so what a
//! filter knows at request time and wants on the response it records then,
//! in [`RequestCx::response_headers`].
//!
//! `typed_per_filter_config` and `disabled`: a filter's per-route settings
//! are found by its configured name ([`RequestCx::overrides`]); a filter
//! `disabled` in `http_filters` runs only where a route enables it, and a
//! route may disable any filter.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use nuncio_config::filters::{CorsPolicy, FilterOverride, PerRouteConfig};
use nuncio_config::Endpoint;

use crate::edits::{Edits, Fields};
use crate::formatter::{FormatContext, Protocol};
use crate::headers::HeaderLookup;

/// One HTTP filter. Both phases default to doing nothing.
pub trait HttpFilter: Send + Sync + std::fmt::Debug {
    /// The routed request head.
    fn on_request(&self, _cx: &mut RequestCx<'_, '_>) -> Flow {
        Flow::Continue
    }
    /// The response head (`cx.local`: a local reply).
    fn on_response(&self, _cx: &mut ResponseCx<'_, '_>) {}
    /// Whether [`HttpFilter::on_response`] does anything: when no filter's
    /// does, the chain skips the response phase.
    fn has_response_phase(&self) -> bool {
        false
    }
}

/// What a filter's request phase decided.
pub enum Flow {
    /// Go on with the next filter (then the router).
    Continue,
    /// Answer now; the filters before this one see the reply.
    Reply(LocalResponse),
    /// Wait for the future (a fault's delay), then do what it says.
    Pause(Pin<Box<dyn Future<Output = Flow> + Send>>),
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flow::Continue => f.write_str("Continue"),
            Flow::Reply(r) => f.debug_tuple("Reply").field(r).finish(),
            Flow::Pause(_) => f.write_str("Pause"),
        }
    }
}

/// The response flag of a reply that is no failure (`-`).
pub const NO_FLAG: crate::flags::ResponseFlags = crate::flags::ResponseFlags::NONE;

/// A local reply a filter sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// Status code.
    pub status: u16,
    /// Body (`text/plain`; none when empty).
    pub body: String,
    /// Headers added to the reply, in order.
    pub headers: Vec<(String, String)>,
    /// Envoy's response flags for the access log (`FI`, `RL`, none).
    pub flag: crate::flags::ResponseFlags,
    /// For a gRPC request: the `grpc-status` to answer with (HTTP 200).
    pub grpc_status: Option<u32>,
    /// Sent as Envoy's `sendLocalReply` (true), which adds the route's
    /// response headers, or encoded by the filter itself (a CORS
    /// preflight), which does not.
    pub local_reply: bool,
}

impl LocalResponse {
    /// A reply of `status` with `body` and no extra header.
    pub fn new(status: u16, body: impl Into<String>, flag: crate::flags::ResponseFlags) -> Self {
        LocalResponse {
            status,
            body: body.into(),
            headers: Vec::new(),
            flag,
            grpc_status: None,
            local_reply: true,
        }
    }
}

/// What a route says about filters: implemented by the router's route
/// entries.
pub trait RouteConfigs: Send + Sync {
    /// The route's name.
    fn name(&self) -> &str;
    /// The cluster the route forwards to, if it does.
    fn cluster(&self) -> Option<&str>;
    /// The `typed_per_filter_config` entries for filter `name`: the
    /// route's, the virtual host's, the route configuration's.
    fn overrides(&self, name: &str) -> [Option<&FilterOverride>; 3];
    /// The older `cors` fields: the route's, the virtual host's.
    fn cors_fields(&self) -> [Option<&CorsPolicy>; 2];
    /// Whether any level has a `typed_per_filter_config` entry (when not,
    /// every filter runs with its own settings: no lookup).
    fn has_overrides(&self) -> bool {
        true
    }
}

/// Facts about the stream that format strings and filters read.
#[derive(Debug, Clone)]
pub struct StreamFacts {
    /// The client (the socket's peer).
    pub peer: SocketAddr,
    /// The listener side of the socket, if known.
    pub local: Option<SocketAddr>,
    /// When the request began (the wall clock is read only if a format
    /// string prints it).
    pub started: Instant,
    /// The request's HTTP version.
    pub protocol: Protocol,
}

/// The machine's host name (`%HOSTNAME%`), read once.
pub fn hostname() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// A [`FormatContext`] over the stream's facts and the message headers
/// at hand.
pub struct Facts<'a> {
    /// The stream.
    pub stream: &'a StreamFacts,
    /// The request's headers, if still at hand.
    pub request: Option<&'a dyn HeaderLookup>,
    /// The response's headers, once there is a response.
    pub response: Option<&'a dyn HeaderLookup>,
    /// The response code, once there is one.
    pub response_code: Option<u16>,
    /// The upstream host, once chosen.
    pub upstream: Option<SocketAddr>,
    /// The route.
    pub route: Option<&'a dyn RouteConfigs>,
}

impl<'a> Facts<'a> {
    /// A context for request headers (`request`: the headers being
    /// formatted into, as they are now).
    pub fn request_time(
        stream: &'a StreamFacts,
        request: &'a dyn HeaderLookup,
        route: Option<&'a dyn RouteConfigs>,
    ) -> Self {
        Facts {
            stream,
            request: Some(request),
            response: None,
            response_code: None,
            upstream: None,
            route,
        }
    }
}

impl FormatContext for Facts<'_> {
    fn address(&self, of: Endpoint) -> Option<SocketAddr> {
        match of {
            Endpoint::DownstreamRemote | Endpoint::DownstreamDirectRemote => Some(self.stream.peer),
            Endpoint::DownstreamLocal => self.stream.local,
            Endpoint::UpstreamRemote => self.upstream,
            Endpoint::UpstreamLocal => None,
        }
    }
    fn start_time(&self) -> SystemTime {
        SystemTime::now() - self.stream.started.elapsed()
    }
    fn request_header(&self, name: &str) -> Option<&str> {
        self.request?.get(name)
    }
    fn response_header(&self, name: &str) -> Option<&str> {
        self.response?.get(name)
    }
    fn protocol(&self) -> Option<Protocol> {
        Some(self.stream.protocol)
    }
    fn hostname(&self) -> Option<&str> {
        hostname()
    }
    fn response_code(&self) -> Option<u16> {
        self.response_code
    }
    fn upstream_cluster(&self) -> Option<&str> {
        self.route?.cluster()
    }
    fn route_name(&self) -> Option<&str> {
        self.route.map(|r| r.name()).filter(|n| !n.is_empty())
    }
}

/// A filter's view of the request.
pub struct RequestCx<'a, 'b> {
    /// `:method`.
    pub method: &'a str,
    /// The path as routed (normalised), with its query.
    pub path: &'a str,
    /// The authority (Host).
    pub authority: &'a str,
    /// The request's headers, editable.
    pub headers: Fields<'a, 'b>,
    /// Headers for the response, whatever it will be (a local reply's
    /// too), recorded at request time.
    pub response_headers: &'a mut Edits,
    /// The matched route (`None`: no route; the router will answer 404).
    pub route: Option<&'a dyn RouteConfigs>,
    /// The stream.
    pub stream: &'a StreamFacts,
    /// The running filter's configured name (set by the chain).
    pub filter_name: &'a str,
    /// What filters keep for the rest of the request.
    pub state: &'a mut StreamState,
    /// The running filter's index (set by the chain).
    pub filter_index: usize,
    /// The request has no body.
    pub bodyless: bool,
    /// Set by a filter that needs the whole body before the request goes
    /// on (the buffer filter): read it first, up to this many bytes
    /// (413 beyond).
    pub buffer_request: Option<u32>,
    /// Response flags a filter sets without replying (`DI`).
    pub flags: crate::flags::ResponseFlags,
    /// The request is a health check (Envoy's `StreamInfo::healthCheck`):
    /// its response is not counted in `downstream_rq_*`.
    pub health_check: bool,
}

/// The request's headers with Envoy's pseudo-headers (`:path`,
/// `:method`, `:authority`, `:scheme`), as header matchers see them.
pub struct WithPseudo<'c> {
    method: &'c str,
    path: &'c str,
    authority: &'c str,
    headers: &'c dyn HeaderLookup,
}

impl HeaderLookup for WithPseudo<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            ":path" => Some(self.path),
            ":method" => Some(self.method),
            ":authority" | "host" => Some(self.authority),
            ":scheme" => Some("http"),
            _ => self.headers.get(name),
        }
    }
    fn get_joined(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        match name {
            ":path" | ":method" | ":authority" | "host" | ":scheme" => {
                self.get(name).map(std::borrow::Cow::Borrowed)
            }
            _ => self.headers.get_joined(name),
        }
    }
}

/// The per-route settings of filter `name`, most specific first.
fn configs<'r>(
    route: Option<&'r dyn RouteConfigs>,
    name: &str,
) -> impl Iterator<Item = &'r PerRouteConfig> {
    route
        .filter(|r| r.has_overrides())
        .map(|r| r.overrides(name))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|o| match o {
            FilterOverride::Config(c) => Some(c),
            _ => None,
        })
}

impl<'a> RequestCx<'a, '_> {
    /// The running filter's per-route settings, most specific first
    /// (route, virtual host, route configuration); they outlive the
    /// context's borrow.
    pub fn overrides(&self) -> impl Iterator<Item = &'a PerRouteConfig> + 'a {
        configs(self.route, self.filter_name)
    }
}

impl RequestCx<'_, '_> {
    /// The headers with the pseudo-headers, for matchers.
    pub fn matchable(&self) -> WithPseudo<'_> {
        WithPseudo {
            method: self.method,
            path: self.path,
            authority: self.authority,
            headers: &self.headers,
        }
    }

    /// Keeps `v` for this filter's response phase.
    pub fn keep<T: Any + Send + Sync>(&mut self, v: T) {
        self.state.put(self.filter_index, Box::new(v));
    }

    /// Holds `v` until the request ends (a gauge guard, a slot).
    pub fn hold<T: Send + Sync + 'static>(&mut self, v: T) {
        self.state.held.push(Box::new(v));
    }

    /// A format context for request-time values (request headers read
    /// from `headers`).
    pub fn facts<'s>(&'s self, request: &'s dyn HeaderLookup) -> Facts<'s> {
        Facts::request_time(self.stream, request, self.route)
    }
}

/// A filter's view of the response.
pub struct ResponseCx<'a, 'b> {
    /// The status sent.
    pub status: u16,
    /// The response's headers, editable.
    pub headers: Fields<'a, 'b>,
    /// A local reply (not the upstream's).
    pub local: bool,
    /// The request's headers, when the chain keeps them for the response
    /// phase ([`FilterChain::needs_request_headers`]).
    pub request: Option<&'a dyn HeaderLookup>,
    /// The route.
    pub route: Option<&'a dyn RouteConfigs>,
    /// The upstream host that answered.
    pub upstream: Option<SocketAddr>,
    /// The stream.
    pub stream: &'a StreamFacts,
    /// The running filter's configured name (set by the chain).
    pub filter_name: &'a str,
    /// What filters kept at request time.
    pub state: &'a mut StreamState,
    /// The running filter's index (set by the chain).
    pub filter_index: usize,
}

impl ResponseCx<'_, '_> {
    /// What this filter kept at request time ([`RequestCx::keep`]).
    pub fn kept<T: Any>(&self) -> Option<&T> {
        self.state.get(self.filter_index)?.downcast_ref()
    }

    /// The running filter's per-route settings, most specific first.
    pub fn overrides(&self) -> impl Iterator<Item = &PerRouteConfig> {
        configs(self.route, self.filter_name)
    }
}

/// What a request's filters keep until it ends: one slot per filter
/// (allocated on first use), and things merely held (dropped at the end).
#[derive(Default)]
pub struct StreamState {
    slots: Vec<Option<Box<dyn Any + Send + Sync>>>,
    held: Vec<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for StreamState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamState")
            .field("slots", &self.slots.len())
            .field("held", &self.held.len())
            .finish()
    }
}

impl StreamState {
    fn put(&mut self, at: usize, v: Box<dyn Any + Send + Sync>) {
        if self.slots.len() <= at {
            self.slots.resize_with(at + 1, || None);
        }
        self.slots[at] = Some(v);
    }

    fn get(&self, at: usize) -> Option<&(dyn Any + Send + Sync)> {
        self.slots.get(at)?.as_deref()
    }
}

/// One filter of a chain, with its configured name.
#[derive(Debug)]
struct Entry {
    name: String,
    disabled: bool,
    filter: Arc<dyn HttpFilter>,
}

/// A listener's HTTP filters before the router, in order.
#[derive(Debug, Default)]
pub struct FilterChain {
    entries: Vec<Entry>,
    needs_request_headers: bool,
    /// Some filter has response-phase work.
    response_phase: bool,
    /// Some route has `typed_per_filter_config`: whether a filter runs
    /// depends on the route (else only on `disabled`).
    route_overrides: bool,
}

/// How the request phase ended.
#[derive(Debug)]
pub enum Verdict {
    /// Every filter let the request through: the router goes on.
    Continue,
    /// Filter `at` answered.
    Reply {
        /// The index of the filter that answered (the response phase runs
        /// over the filters before it).
        at: usize,
        /// The reply.
        response: LocalResponse,
    },
}

impl FilterChain {
    /// An empty chain (no filter but the router).
    pub fn new() -> Self {
        FilterChain::default()
    }

    /// Appends a filter configured as `name` (`disabled`: off unless a
    /// route enables it).
    pub fn push(&mut self, name: &str, disabled: bool, filter: Arc<dyn HttpFilter>) {
        self.response_phase |= filter.has_response_phase();
        self.entries.push(Entry {
            name: name.to_string(),
            disabled,
            filter,
        });
    }

    /// Marks the chain as reading request headers in its response phase.
    pub fn keep_request_headers(&mut self) {
        self.needs_request_headers = true;
    }

    /// No filter.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of filters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Routes carry per-route settings: the response phase runs even if
    /// no filter says it has work (the settings may give them some), and
    /// whether a filter runs is asked of the route.
    pub fn keep_response_phase(&mut self) {
        self.response_phase = true;
        self.route_overrides = true;
    }

    /// Whether some filter has response-phase work.
    pub fn has_response_phase(&self) -> bool {
        self.response_phase
    }

    /// Whether the response phase reads the request's headers.
    pub fn needs_request_headers(&self) -> bool {
        self.needs_request_headers
    }

    fn runs(&self, e: &Entry, route: Option<&dyn RouteConfigs>) -> bool {
        if !self.route_overrides {
            return !e.disabled;
        }
        let Some(r) = route.filter(|r| r.has_overrides()) else {
            return !e.disabled;
        };
        let route = Some(r);
        let said = route
            .map(|r| r.overrides(&e.name))
            .into_iter()
            .flatten()
            .flatten()
            .find(|o| !matches!(o, FilterOverride::Config(_)));
        match said {
            Some(FilterOverride::Disabled) => false,
            Some(FilterOverride::Enabled) => true,
            _ => {
                !e.disabled
                    || route.is_some_and(|r| r.overrides(&e.name).iter().any(Option::is_some))
            }
        }
    }

    /// Runs the request phase.
    pub async fn on_request<'a>(&'a self, cx: &mut RequestCx<'a, '_>) -> Verdict {
        for (at, e) in self.entries.iter().enumerate() {
            if !self.runs(e, cx.route) {
                continue;
            }
            cx.filter_name = &e.name;
            cx.filter_index = at;
            let mut flow = e.filter.on_request(cx);
            loop {
                match flow {
                    Flow::Continue => break,
                    Flow::Reply(response) => return Verdict::Reply { at, response },
                    Flow::Pause(f) => flow = f.await,
                }
            }
        }
        Verdict::Continue
    }

    /// Runs the response phase over the first `upto` filters, in reverse
    /// (`upto`: [`FilterChain::len`] for a response the router produced).
    pub fn on_response<'a>(&'a self, upto: usize, cx: &mut ResponseCx<'a, '_>) {
        let upto = upto.min(self.entries.len());
        for (at, e) in self.entries[..upto].iter().enumerate().rev() {
            if !self.runs(e, cx.route) {
                continue;
            }
            cx.filter_name = &e.name;
            cx.filter_index = at;
            e.filter.on_response(cx);
        }
    }
}
