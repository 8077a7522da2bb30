//! `envoy.filters.http.header_mutation`
//! (`envoy.extensions.filters.http.header_mutation.v3.HeaderMutation`) and
//! its per-route form (`HeaderMutationPerRoute`): ordered lists of
//! `remove` / `append` mutations for requests and responses.
//!
//! Checked with `envoy --mode validate`: an `append` of a `:`-prefixed
//! name or `host` is refused ("may not be modified"); one mutation takes
//! one action. Envoy accepts `remove: host`, `remove: ":path"` and an
//! empty name; nuncio refuses them (removing them breaks the request).
//! `remove_on_match`, query parameter and trailer mutations are refused.

use crate::decode::{Result, Val};
use crate::headers::{decode_header_to_remove, decode_header_value_option, HeaderValueOption};

/// The filter's `@type`.
pub const HEADER_MUTATION_TYPE: &str =
    "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";
/// The per-route `@type`.
pub const HEADER_MUTATION_PER_ROUTE_TYPE: &str =
    "envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute";

/// One mutation (`config.common.mutation_rules.v3.HeaderMutation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderMutationAction {
    /// `remove`: drop every value of this header (lowercased).
    Remove(String),
    /// `append`: add or set a header.
    Append(HeaderValueOption),
}

/// `Mutations`: applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mutations {
    /// `request_mutations`.
    pub request: Vec<HeaderMutationAction>,
    /// `response_mutations`.
    pub response: Vec<HeaderMutationAction>,
}

/// `HeaderMutation` (the filter) or `HeaderMutationPerRoute`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderMutation {
    /// The mutations.
    pub mutations: Mutations,
    /// `most_specific_header_mutations_wins` (filter config only).
    pub most_specific_header_mutations_wins: bool,
}

/// Decodes the filter's `typed_config`.
pub(crate) fn decode(v: &Val) -> Result<HeaderMutation> {
    decode_any(v, false)
}

/// Decodes a `HeaderMutationPerRoute`.
pub(crate) fn decode_per_route(v: &Val) -> Result<HeaderMutation> {
    decode_any(v, true)
}

fn decode_any(v: &Val, per_route: bool) -> Result<HeaderMutation> {
    let o = v.obj()?;
    o.ignore("@type");
    let mutations = o
        .get("mutations")
        .map(|m| decode_mutations(&m))
        .transpose()?
        .unwrap_or_default();
    let most_specific_header_mutations_wins = if per_route {
        false
    } else {
        o.get("most_specific_header_mutations_wins")
            .map(|b| b.bool())
            .transpose()?
            .unwrap_or(false)
    };
    o.finish()?;
    Ok(HeaderMutation {
        mutations,
        most_specific_header_mutations_wins,
    })
}

fn decode_mutations(v: &Val) -> Result<Mutations> {
    let o = v.obj()?;
    let list = |k: &'static str| -> Result<Vec<HeaderMutationAction>> {
        let Some(l) = o.get(k) else {
            return Ok(Vec::new());
        };
        l.list()?.iter().map(decode_action).collect()
    };
    let request = list("request_mutations")?;
    let response = list("response_mutations")?;
    o.finish_with(&[
        "query_parameter_mutations",
        "request_trailers_mutations",
        "response_trailers_mutations",
    ])?;
    Ok(Mutations { request, response })
}

fn decode_action(v: &Val) -> Result<HeaderMutationAction> {
    let o = v.obj()?;
    let remove = o.get("remove");
    let append = o.get("append");
    o.finish_with(&["remove_on_match"])?;
    match (remove, append) {
        (Some(r), None) => Ok(HeaderMutationAction::Remove(decode_header_to_remove(&r)?)),
        (None, Some(a)) => Ok(HeaderMutationAction::Append(decode_header_value_option(
            &a,
        )?)),
        (Some(_), Some(a)) => Err(a.err("a mutation takes one of 'remove' and 'append'")),
        (None, None) => Err(o.err("a mutation needs 'remove' or 'append'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;
    use crate::headers::AppendAction;

    #[test]
    fn decodes() {
        let m = decode_str(
            "t",
            r#"
mutations:
  request_mutations:
  - remove: X-Drop
  - append: {header: {key: x-add, value: "%REQ(x-in)%"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
  response_mutations:
  - append: {header: {key: x-resp, value: v}}
most_specific_header_mutations_wins: true
"#,
            decode,
        )
        .unwrap();
        assert_eq!(
            m.mutations.request[0],
            HeaderMutationAction::Remove("x-drop".into())
        );
        let HeaderMutationAction::Append(a) = &m.mutations.request[1] else {
            panic!()
        };
        assert_eq!(a.append_action, AppendAction::OverwriteIfExistsOrAdd);
        assert_eq!(m.mutations.response.len(), 1);
        assert!(m.most_specific_header_mutations_wins);
        let p = decode_str("t", "mutations: {request_mutations: [{remove: x}]}", |v| {
            decode_per_route(v)
        })
        .unwrap();
        assert_eq!(p.mutations.request.len(), 1);
    }

    #[test]
    fn refused() {
        for (t, want) in [
            ("mutations: {request_mutations: [{append: {header: {key: host, value: x}}}]}", "may not be modified"),
            ("mutations: {request_mutations: [{remove: ':path'}]}", "may not be removed"),
            ("mutations: {request_mutations: [{remove: x, append: {header: {key: y, value: z}}}]}", "one of"),
            ("mutations: {request_mutations: [{}]}", "needs 'remove' or 'append'"),
            ("mutations: {request_mutations: [{remove_on_match: {}}]}", "does not support yet"),
            ("mutations: {query_parameter_mutations: []}", "does not support yet"),
        ] {
            let e = decode_str("t", t, decode).unwrap_err();
            assert!(e.message.contains(want), "{t}: {e}");
        }
        let e = decode_str("t", "most_specific_header_mutations_wins: true", |v| {
            decode_per_route(v)
        })
        .unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }
}
