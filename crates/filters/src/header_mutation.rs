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

    /// The action lists that apply, in order.
    fn lists<'a>(
        &'a self,
        route: Option<&'a dyn RouteConfigs>,
        name: &str,
        pick: impl Fn(&'a HeaderMutation) -> &'a [HeaderMutationAction],
    ) -> Vec<&'a [HeaderMutationAction]> {
        let mut per_route: Vec<&[HeaderMutationAction]> = route
            .map(|r| r.overrides(name))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|o| match o {
                FilterOverride::Config(PerRouteConfig::HeaderMutation(m)) => Some(pick(m)),
                _ => None,
            })
            .collect();
        if self.cfg.most_specific_header_mutations_wins {
            per_route.reverse();
        }
        std::iter::once(pick(&self.cfg)).chain(per_route).collect()
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
        for list in self.lists(route, cx.filter_name, |m| &m.mutations.request) {
            apply_actions(list, &mut cx.headers, &|f, req| {
                format(f, &Facts::request_time(stream, req, route))
            });
        }
        Flow::Continue
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
