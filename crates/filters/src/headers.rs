//! Applying header mutations to a message's headers, through the small
//! [`HeaderEdit`] trait that both the HTTP/1 head writer and the HTTP/2
//! header block can implement.
//!
//! Envoy's `HeaderParser::evaluateHeaders`, which this follows: removals
//! first; then every value is formatted (against the headers as they are
//! after the removals) and classified before any is written; an empty value
//! is skipped unless `keep_empty_value`; `ADD_IF_ABSENT` and
//! `OVERWRITE_IF_EXISTS` look at the headers before this batch's writes;
//! then all overwrites, then all appends. Levels apply weighted cluster
//! first, then route, virtual host, route configuration (the reverse of the
//! last three with `most_specific_header_mutations_wins`), so by default the
//! least specific level's overwrite is the one left standing.

use std::borrow::Cow;

use nuncio_config::filters::HeaderMutationAction;
use nuncio_config::{AppendAction, FormatString, HeaderMutations, HeaderValueOption};

use crate::formatter::{format, FormatContext};

/// Read access to a message's headers (names are lowercase).
pub trait HeaderLookup {
    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&str>;
    /// Every value of `name` joined with `,` (what Envoy's header matchers
    /// see); the default is the first value.
    fn get_joined(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(Cow::Borrowed)
    }
}

/// Edits to a message's headers.
pub trait HeaderEdit: HeaderLookup {
    /// Adds a value, keeping existing ones.
    fn append(&mut self, name: &str, value: &str);
    /// Replaces every value with this one (adds it when absent).
    fn set(&mut self, name: &str, value: &str);
    /// Removes every value.
    fn remove(&mut self, name: &str);
}

/// A plain ordered header list (tests, and local replies built in memory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList(pub Vec<(String, String)>);

impl HeaderLookup for HeaderList {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn get_joined(&self, name: &str) -> Option<Cow<'_, str>> {
        let vals: Vec<&str> = self
            .0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        match vals.len() {
            0 => None,
            1 => Some(Cow::Borrowed(vals[0])),
            _ => Some(Cow::Owned(vals.join(","))),
        }
    }
}

impl HeaderEdit for HeaderList {
    fn append(&mut self, name: &str, value: &str) {
        self.0.push((name.to_string(), value.to_string()));
    }
    fn set(&mut self, name: &str, value: &str) {
        match self.0.iter().position(|(n, _)| n == name) {
            Some(i) => {
                self.0[i].1 = value.to_string();
                let mut j = 0;
                self.0.retain(|(n, _)| {
                    j += 1;
                    j - 1 == i || n != name
                });
            }
            None => self.append(name, value),
        }
    }
    fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| n != name);
    }
}

/// Removes `remove`, then adds `add` (Envoy's `evaluateHeaders`), values
/// formatted against `ctx`.
pub fn apply(
    add: &[HeaderValueOption],
    remove: &[String],
    headers: &mut dyn HeaderEdit,
    ctx: &dyn FormatContext,
) {
    apply_formatted(add, remove, headers, &|f, _| format(f, ctx));
}

/// [`apply`] where a value's formatting may read the headers being edited
/// (as they are after the removals): `format` is given each value and the
/// headers, and builds its context from them (request headers formatted
/// with `%REQ(...)%` of the request itself).
pub fn apply_formatted(
    add: &[HeaderValueOption],
    remove: &[String],
    headers: &mut dyn HeaderEdit,
    format: &dyn Fn(&FormatString, &dyn HeaderLookup) -> String,
) {
    for name in remove {
        headers.remove(name);
    }
    if add.is_empty() {
        return;
    }
    let mut overwrite: Vec<(&str, String)> = Vec::new();
    let mut append: Vec<(&str, String)> = Vec::new();
    for h in add {
        let value = format(&h.value, &*headers);
        if value.is_empty() && !h.keep_empty_value {
            continue;
        }
        let present = headers.get(&h.name).is_some();
        match h.append_action {
            AppendAction::AppendIfExistsOrAdd => append.push((&h.name, value)),
            AppendAction::AddIfAbsent if !present => append.push((&h.name, value)),
            AppendAction::AddIfAbsent => {}
            AppendAction::OverwriteIfExists if !present => {}
            AppendAction::OverwriteIfExists | AppendAction::OverwriteIfExistsOrAdd => {
                overwrite.push((&h.name, value))
            }
        }
    }
    for (n, v) in &overwrite {
        headers.set(n, v);
    }
    for (n, v) in &append {
        headers.append(n, v);
    }
}

/// Applies one level's request lists.
pub fn apply_request(m: &HeaderMutations, headers: &mut dyn HeaderEdit, ctx: &dyn FormatContext) {
    apply(
        &m.request_headers_to_add,
        &m.request_headers_to_remove,
        headers,
        ctx,
    );
}

/// Applies one level's response lists.
pub fn apply_response(m: &HeaderMutations, headers: &mut dyn HeaderEdit, ctx: &dyn FormatContext) {
    apply(
        &m.response_headers_to_add,
        &m.response_headers_to_remove,
        headers,
        ctx,
    );
}

/// Applies the header mutation filter's ordered `request_mutations` or
/// `response_mutations`: each `remove` or `append` in turn (`format` as in
/// [`apply_formatted`]).
pub fn apply_actions(
    actions: &[HeaderMutationAction],
    headers: &mut dyn HeaderEdit,
    format: &dyn Fn(&FormatString, &dyn HeaderLookup) -> String,
) {
    for a in actions {
        match a {
            HeaderMutationAction::Remove(name) => headers.remove(name),
            HeaderMutationAction::Append(h) => {
                apply_formatted(std::slice::from_ref(h), &[], headers, format)
            }
        }
    }
}

/// The levels of route configuration that carry header mutations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Levels<'a> {
    /// The chosen weighted-cluster entry's.
    pub weighted_cluster: Option<&'a HeaderMutations>,
    /// The route's.
    pub route: Option<&'a HeaderMutations>,
    /// The virtual host's.
    pub virtual_host: Option<&'a HeaderMutations>,
    /// The route configuration's.
    pub route_config: Option<&'a HeaderMutations>,
}

/// The order the levels are applied in: weighted cluster, then route,
/// virtual host, route configuration; the last three reversed when
/// `most_specific_wins` (`most_specific_header_mutations_wins`).
pub fn in_order<'a>(levels: &Levels<'a>, most_specific_wins: bool) -> Vec<&'a HeaderMutations> {
    let mut three = [levels.route, levels.virtual_host, levels.route_config];
    if most_specific_wins {
        three.reverse();
    }
    std::iter::once(levels.weighted_cluster)
        .chain(three)
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formatter::tests::Facts;
    use nuncio_config::FormatString;

    fn opt(name: &str, value: &str, action: AppendAction, keep: bool) -> HeaderValueOption {
        HeaderValueOption {
            name: name.into(),
            value: FormatString::parse(value).unwrap(),
            append_action: action,
            keep_empty_value: keep,
        }
    }

    fn list(pairs: &[(&str, &str)]) -> HeaderList {
        HeaderList(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn append_actions() {
        use AppendAction::*;
        let mut h = list(&[("a", "1"), ("b", "1"), ("c", "1"), ("c", "2")]);
        let adds = [
            opt("a", "2", AppendIfExistsOrAdd, false),
            opt("b", "2", AddIfAbsent, false),
            opt("n", "new", AddIfAbsent, false),
            opt("c", "3", OverwriteIfExistsOrAdd, false),
            opt("m", "x", OverwriteIfExists, false),
            opt("b", "9", OverwriteIfExists, false),
        ];
        apply(&adds, &[], &mut h, &Facts::default());
        assert_eq!(
            h,
            list(&[("a", "1"), ("b", "9"), ("c", "3"), ("a", "2"), ("n", "new")])
        );
    }

    #[test]
    fn remove_first_and_empty_values() {
        use AppendAction::*;
        let mut h = list(&[("x-old", "1"), ("keep", "k")]);
        let adds = [
            opt("x-old", "fresh", AddIfAbsent, false),
            opt("x-empty", "%REQ(x-missing)%", AppendIfExistsOrAdd, false),
            opt("x-kept", "%REQ(x-missing)%", AppendIfExistsOrAdd, true),
        ];
        apply(&adds, &["x-old".into()], &mut h, &Facts::default());
        assert_eq!(
            h,
            list(&[("keep", "k"), ("x-old", "fresh"), ("x-kept", "")])
        );
    }

    #[test]
    fn batch_sees_headers_before_its_own_writes() {
        use AppendAction::*;
        let mut h = HeaderList::default();
        let adds = [
            opt("x", "1", AddIfAbsent, false),
            opt("x", "2", AddIfAbsent, false),
        ];
        apply(&adds, &[], &mut h, &Facts::default());
        assert_eq!(
            h,
            list(&[("x", "1"), ("x", "2")]),
            "both were absent when classified"
        );
    }

    #[test]
    fn formatted_values() {
        let ctx = Facts {
            remote: Some("10.0.0.7:5555".parse().unwrap()),
            ..Facts::default()
        };
        let m = HeaderMutations {
            request_headers_to_add: vec![opt(
                "x-client",
                "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                AppendAction::OverwriteIfExistsOrAdd,
                false,
            )],
            response_headers_to_remove: vec!["server".into()],
            ..HeaderMutations::default()
        };
        let mut req = list(&[("x-client", "spoofed")]);
        apply_request(&m, &mut req, &ctx);
        assert_eq!(req, list(&[("x-client", "10.0.0.7")]));
        let mut resp = list(&[("server", "up"), ("x", "y")]);
        apply_response(&m, &mut resp, &ctx);
        assert_eq!(resp, list(&[("x", "y")]));
    }

    #[test]
    fn header_mutation_filter_actions() {
        let actions = [
            HeaderMutationAction::Append(opt("x", "1", AppendAction::AppendIfExistsOrAdd, false)),
            HeaderMutationAction::Remove("x".into()),
            HeaderMutationAction::Append(opt("x", "2", AppendAction::AddIfAbsent, false)),
        ];
        let mut h = list(&[("x", "0")]);
        let facts = Facts::default();
        apply_actions(&actions, &mut h, &|f, _| format(f, &facts));
        assert_eq!(h, list(&[("x", "2")]), "applied one after another");
    }

    #[test]
    fn level_order() {
        let set = |v: &str| HeaderMutations {
            request_headers_to_add: vec![opt("x", v, AppendAction::OverwriteIfExistsOrAdd, false)],
            ..HeaderMutations::default()
        };
        let (wc, r, vh, rc) = (set("wc"), set("route"), set("vhost"), set("rc"));
        let levels = Levels {
            weighted_cluster: Some(&wc),
            route: Some(&r),
            virtual_host: Some(&vh),
            route_config: Some(&rc),
        };
        let run = |most_specific_wins: bool| {
            let mut h = HeaderList::default();
            for m in in_order(&levels, most_specific_wins) {
                apply_request(m, &mut h, &Facts::default());
            }
            h.get("x").map(str::to_string)
        };
        assert_eq!(
            run(false).as_deref(),
            Some("rc"),
            "least specific applied last"
        );
        assert_eq!(run(true).as_deref(), Some("route"));
        let only_vh = Levels {
            virtual_host: Some(&vh),
            ..Levels::default()
        };
        assert_eq!(in_order(&only_vh, false).len(), 1);
        let h = list(&[("a", "1"), ("a", "2")]);
        assert_eq!(h.get_joined("a").as_deref(), Some("1,2"));
    }
}
