//! Header mutations as route configuration carries them:
//! `request_headers_to_add` / `response_headers_to_add` (lists of
//! `HeaderValueOption`) and `request_headers_to_remove` /
//! `response_headers_to_remove`, on a route configuration, virtual host,
//! route or weighted-cluster entry ([`HeaderMutations`]).
//!
//! Validated as Envoy 1.40 validates them (each checked with `envoy --mode
//! validate`): a `:`-prefixed name or `host` may not be added ("-prefixed or
//! host headers may not be modified") nor removed ("may not be removed"),
//! in requests and responses alike; `append` together with an
//! `append_action` other than `APPEND_IF_EXISTS_OR_ADD` is "Both append and
//! append_action are set and it's not allowed"; a value may not hold CR, LF
//! or NUL; names may not be empty. The value is a format string
//! ([`crate::FormatString`]), so a bad `%` is a config error here.
//!
//! One deliberate difference: Envoy accepts a name such as `a b` that is
//! not an HTTP token, which no HTTP/1.1 peer could parse; nuncio refuses it.

use crate::decode::{Obj, Result, Val};
use crate::format::FormatString;

/// `HeaderValueOption.HeaderAppendAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppendAction {
    /// `APPEND_IF_EXISTS_OR_ADD` (the default; `append: true`): add another
    /// value.
    #[default]
    AppendIfExistsOrAdd,
    /// `ADD_IF_ABSENT`: add only if the header is absent.
    AddIfAbsent,
    /// `OVERWRITE_IF_EXISTS_OR_ADD` (`append: false`): replace every value.
    OverwriteIfExistsOrAdd,
    /// `OVERWRITE_IF_EXISTS`: replace only if present.
    OverwriteIfExists,
}

/// `envoy.config.core.v3.HeaderValueOption`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderValueOption {
    /// The header name, lowercased.
    pub name: String,
    /// The value, compiled.
    pub value: FormatString,
    /// What to do when the header exists.
    pub append_action: AppendAction,
    /// Add the header even when the value formats to the empty string.
    pub keep_empty_value: bool,
}

/// The four header lists of one level of route configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderMutations {
    /// `request_headers_to_add`.
    pub request_headers_to_add: Vec<HeaderValueOption>,
    /// `request_headers_to_remove` (lowercased).
    pub request_headers_to_remove: Vec<String>,
    /// `response_headers_to_add`.
    pub response_headers_to_add: Vec<HeaderValueOption>,
    /// `response_headers_to_remove` (lowercased).
    pub response_headers_to_remove: Vec<String>,
}

impl HeaderMutations {
    /// Whether the four lists are empty.
    pub fn is_empty(&self) -> bool {
        self.request_headers_to_add.is_empty()
            && self.request_headers_to_remove.is_empty()
            && self.response_headers_to_add.is_empty()
            && self.response_headers_to_remove.is_empty()
    }
}

/// Whether `name` is an HTTP token (RFC 9110 `tchar`s, at least one).
pub fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Envoy's `isModifiableHeader` / `isRemovableHeader`: not `:`-prefixed and
/// not `host`.
fn is_protected(name: &str) -> bool {
    name.starts_with(':') || name.eq_ignore_ascii_case("host")
}

/// Reads the four lists from the object that holds them (a route
/// configuration, virtual host, route or weighted-cluster entry). The
/// caller must not also read those keys.
pub(crate) fn decode_header_mutations(o: &Obj) -> Result<HeaderMutations> {
    let adds = |k: &'static str| -> Result<Vec<HeaderValueOption>> {
        o.get(k)
            .map(|v| decode_header_value_options(&v))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let removes = |k: &'static str| -> Result<Vec<String>> {
        o.get(k)
            .map(|v| decode_headers_to_remove(&v))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(HeaderMutations {
        request_headers_to_add: adds("request_headers_to_add")?,
        request_headers_to_remove: removes("request_headers_to_remove")?,
        response_headers_to_add: adds("response_headers_to_add")?,
        response_headers_to_remove: removes("response_headers_to_remove")?,
    })
}

/// Decodes a list of `HeaderValueOption`s.
pub(crate) fn decode_header_value_options(v: &Val) -> Result<Vec<HeaderValueOption>> {
    let items = v.list()?;
    if items.len() > 1000 {
        return Err(v.err("at most 1000 headers may be added here"));
    }
    items.iter().map(decode_header_value_option).collect()
}

/// Decodes one `HeaderValueOption`.
pub(crate) fn decode_header_value_option(v: &Val) -> Result<HeaderValueOption> {
    let o = v.obj()?;
    let hv = o.req("header")?;
    let (name, value) = decode_header_value(&hv)?;
    let append = o.get("append").map(|b| b.bool()).transpose()?;
    let action = o
        .get("append_action")
        .map(|a| {
            a.enumeration(&[
                ("APPEND_IF_EXISTS_OR_ADD", AppendAction::AppendIfExistsOrAdd),
                ("ADD_IF_ABSENT", AppendAction::AddIfAbsent),
                (
                    "OVERWRITE_IF_EXISTS_OR_ADD",
                    AppendAction::OverwriteIfExistsOrAdd,
                ),
                ("OVERWRITE_IF_EXISTS", AppendAction::OverwriteIfExists),
            ])
        })
        .transpose()?;
    let keep_empty_value = o
        .get("keep_empty_value")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    o.finish()?;
    let append_action = match (append, action) {
        (Some(_), Some(a)) if a != AppendAction::AppendIfExistsOrAdd => {
            return Err(o.err("Both append and append_action are set and it's not allowed"))
        }
        (Some(true), _) => AppendAction::AppendIfExistsOrAdd,
        (Some(false), _) => AppendAction::OverwriteIfExistsOrAdd,
        (None, a) => a.unwrap_or_default(),
    };
    Ok(HeaderValueOption {
        name,
        value,
        append_action,
        keep_empty_value,
    })
}

/// Decodes a `HeaderValue` to add (`{key, value}`): the name lowercased,
/// the value compiled.
pub(crate) fn decode_header_value(v: &Val) -> Result<(String, FormatString)> {
    let o = v.obj()?;
    let kv = o.req("key")?;
    let key = kv.non_empty_str()?;
    if is_protected(&key) {
        return Err(kv.err(":-prefixed or host headers may not be modified"));
    }
    if !valid_header_name(&key) {
        return Err(kv.err(format!("'{key}' is not a valid header name")));
    }
    let raw = o
        .get("value")
        .map(|s| s.str())
        .transpose()?
        .unwrap_or_default();
    o.finish_with(&["raw_value"])?;
    let vv = o.get("value");
    let at = |m: String| match &vv {
        Some(x) => x.err(m),
        None => o.err(m),
    };
    if raw.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(at("a header value may not contain CR, LF or NUL".into()));
    }
    if raw.len() > 16384 {
        return Err(at("a header value may be at most 16384 bytes".into()));
    }
    let value = FormatString::parse(&raw).map_err(|e| at(e.0))?;
    Ok((key.to_ascii_lowercase(), value))
}

/// Decodes a `*_headers_to_remove` list.
pub(crate) fn decode_headers_to_remove(v: &Val) -> Result<Vec<String>> {
    let items = v.list()?;
    if items.len() > 1000 {
        return Err(v.err("at most 1000 headers may be removed here"));
    }
    items.iter().map(decode_header_to_remove).collect()
}

/// Decodes one header name to remove.
pub(crate) fn decode_header_to_remove(v: &Val) -> Result<String> {
    let name = v.non_empty_str()?;
    if is_protected(&name) {
        return Err(v.err(":-prefixed or host headers may not be removed"));
    }
    if !valid_header_name(&name) {
        return Err(v.err(format!("'{name}' is not a valid header name")));
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    fn hm(text: &str) -> Result<HeaderMutations> {
        decode_str("t.yaml", text, |v| {
            let o = v.obj()?;
            let m = decode_header_mutations(&o)?;
            o.finish()?;
            Ok(m)
        })
    }

    #[test]
    fn all_four_lists() {
        let m = hm(r#"
request_headers_to_add:
- header: {key: X-Client, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}
- header: {key: x-a, value: "1"}
  append: false
- header: {key: x-b, value: ""}
  append_action: ADD_IF_ABSENT
  keep_empty_value: true
request_headers_to_remove: [X-Remove]
response_headers_to_add:
- {header: {key: x-c, value: "100%%"}, append_action: OVERWRITE_IF_EXISTS}
response_headers_to_remove: x-single
"#)
        .unwrap();
        let r = &m.request_headers_to_add;
        assert_eq!(r[0].name, "x-client");
        assert_eq!(r[0].append_action, AppendAction::AppendIfExistsOrAdd);
        assert_eq!(r[1].append_action, AppendAction::OverwriteIfExistsOrAdd);
        assert_eq!(r[2].append_action, AppendAction::AddIfAbsent);
        assert!(r[2].keep_empty_value);
        assert_eq!(m.request_headers_to_remove, vec!["x-remove"]);
        let c = &m.response_headers_to_add[0];
        assert_eq!(c.value.constant().as_deref(), Some("100%"));
        assert_eq!(c.append_action, AppendAction::OverwriteIfExists);
        assert_eq!(m.response_headers_to_remove, vec!["x-single"]);
        assert!(hm("{}").unwrap().is_empty());
        let a = hm("request_headers_to_add: [{header: {key: x}, append: true, append_action: APPEND_IF_EXISTS_OR_ADD}]").unwrap();
        assert_eq!(
            a.request_headers_to_add[0].value.constant().as_deref(),
            Some("")
        );
    }

    #[test]
    fn refused_as_envoy_refuses() {
        let e = hm("request_headers_to_add: [{header: {key: Host, value: v}}]").unwrap_err();
        assert_eq!(e.path, "request_headers_to_add[0].header.key");
        assert!(e.message.contains("may not be modified"), "{e}");
        let e = hm("response_headers_to_add: [{header: {key: ':status', value: v}}]").unwrap_err();
        assert!(e.message.contains("may not be modified"), "{e}");
        let e = hm("request_headers_to_remove: [HOST]").unwrap_err();
        assert_eq!(e.path, "request_headers_to_remove[0]");
        assert!(e.message.contains("may not be removed"), "{e}");
        let e = hm("response_headers_to_remove: [':path']").unwrap_err();
        assert!(e.message.contains("may not be removed"), "{e}");
        let e = hm("request_headers_to_add: [{header: {key: x, value: v}, append: true, append_action: ADD_IF_ABSENT}]").unwrap_err();
        assert!(e.message.contains("Both append and append_action"), "{e}");
        let e = hm("request_headers_to_add: [{header: {key: x, value: \"a\\nb\"}}]").unwrap_err();
        assert!(e.message.contains("CR, LF"), "{e}");
        let e = hm("request_headers_to_add: [{header: {key: x, value: \"50%\"}}]").unwrap_err();
        assert_eq!(e.path, "request_headers_to_add[0].header.value");
        assert!(
            e.message
                .contains("Couldn't find valid command at position 2"),
            "{e}"
        );
        assert_eq!((e.line, e.col), (1, 51));
        let e = hm("request_headers_to_add: [{header: {key: '', value: v}}]").unwrap_err();
        assert!(e.message.contains("must not be empty"), "{e}");
        let e = hm("request_headers_to_add: [{header: {key: 'a b', value: v}}]").unwrap_err();
        assert!(e.message.contains("not a valid header name"), "{e}");
        let e = hm("request_headers_to_remove: ['']").unwrap_err();
        assert!(e.message.contains("must not be empty"), "{e}");
        let e = hm("request_headers_to_add: [{header: {key: x, raw_value: YWI=}}]").unwrap_err();
        assert!(e.message.contains("does not support yet"), "{e}");
        let e = hm("request_headers_to_add: [{header: {key: x, valu: v}}]").unwrap_err();
        assert!(e.message.contains("did you mean 'value'"), "{e}");
        let e =
            hm("request_headers_to_add: [{header: {key: x}, append_action: APPEND}]").unwrap_err();
        assert!(e.message.contains("APPEND_IF_EXISTS_OR_ADD"), "{e}");
    }
}
