//! The header mutation filter (`envoy.filters.http.header_mutation`): its
//! own `request_mutations` / `response_mutations`, then every route
//! level's `HeaderMutationPerRoute` (route entry first, then virtual host,
//! route configuration; the reverse with `most_specific_header_mutations_wins`),
//! each `remove` or `append` in order. Values are formatted with Envoy's
//! header formatter; a response-side `%REQ(...)%` reads the request's
//! headers (the chain keeps them for the response when asked).

use nuncio_config::filters::{
    FilterOverride, HeaderMutation, HeaderMutationAction, PerRouteConfig,
};
use nuncio_config::{Command, FormatString, Segment};

use crate::chain::{Facts, Flow, HttpFilter, RequestCx, ResponseCx, RouteConfigs};
use crate::formatter::format;
use crate::headers::apply_actions;

/// `envoy.filters.http.header_mutation`.
#[derive(Debug)]
pub struct HeaderMutationFilter {
    cfg: HeaderMutation,
}

impl HeaderMutationFilter {
    /// The filter.
    pub fn new(cfg: HeaderMutation) -> Self {
        HeaderMutationFilter { cfg }
    }

    /// Whether the response side formats a request header (the chain must
    /// then keep them).
    pub fn reads_request_on_response(&self) -> bool {
        actions_read_request(&self.cfg.mutations.response)
    }

    /// The action lists that apply, in order: the filter's own, then the
    /// route levels' (route entry first; the reverse with
    /// `most_specific_header_mutations_wins`). Empty ones are left out;
    /// nothing is allocated.
    fn lists<'a>(
        &'a self,
        route: Option<&'a dyn RouteConfigs>,
        name: &str,
        pick: impl Fn(&'a HeaderMutation) -> &'a [HeaderMutationAction] + Copy + 'a,
    ) -> impl Iterator<Item = &'a [HeaderMutationAction]> + 'a {
        let mut levels = route
            .filter(|r| r.has_overrides())
            .map(|r| r.overrides(name))
            .unwrap_or([None; 3]);
        if self.cfg.most_specific_header_mutations_wins {
            levels.reverse();
        }
        let per_route = levels.into_iter().flatten().filter_map(move |o| match o {
            FilterOverride::Config(PerRouteConfig::HeaderMutation(m)) => Some(pick(m)),
            _ => None,
        });
        std::iter::once(pick(&self.cfg))
            .chain(per_route)
            .filter(|l| !l.is_empty())
    }
}

/// Whether any action's value reads a request header.
pub fn actions_read_request(actions: &[HeaderMutationAction]) -> bool {
    actions.iter().any(|a| match a {
        HeaderMutationAction::Append(h) => reads_request(&h.value),
        HeaderMutationAction::Remove(_) => false,
    })
}

/// Whether a format string reads a request header (`%REQ(...)%`).
pub fn reads_request(f: &FormatString) -> bool {
    f.segments
        .iter()
        .any(|s| matches!(s, Segment::Command(Command::RequestHeader(_))))
}

impl HttpFilter for HeaderMutationFilter {
    fn on_request(&self, cx: &mut RequestCx<'_, '_>) -> Flow {
        let (stream, route) = (cx.stream, cx.route);
        if self.cfg.mutations.request.is_empty() && !route.is_some_and(|r| r.has_overrides()) {
            return Flow::Continue;
        }
        for list in self.lists(route, cx.filter_name, |m| &m.mutations.request) {
            apply_actions(list, &mut cx.headers, &|f, req| {
                format(f, &Facts::request_time(stream, req, route))
            });
        }
        Flow::Continue
    }

    fn has_response_phase(&self) -> bool {
        // Per-route response mutations turn the phase on through the
        // chain (`FilterChain::keep_response_phase`).
        !self.cfg.mutations.response.is_empty()
    }

    fn on_response(&self, cx: &mut ResponseCx<'_, '_>) {
        let (stream, route, request, status, upstream) =
            (cx.stream, cx.route, cx.request, cx.status, cx.upstream);
        for list in self.lists(route, cx.filter_name, |m| &m.mutations.response) {
            apply_actions(list, &mut cx.headers, &|f, resp| {
                format(
                    f,
                    &Facts {
                        stream,
                        request,
                        response: Some(resp),
                        response_code: Some(status),
                        upstream,
                        route,
                    },
                )
            });
        }
    }
}
