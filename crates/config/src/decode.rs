//! Typed reads from the marked YAML tree. Every read knows its field path
//! and position, so a wrong value becomes a [`ConfigError`] that names both.
//! Maps remember which keys the decoder asked for; [`Obj::finish`] turns any
//! other key into an "unknown field" error with a did-you-mean hint, which is
//! how Envoy's strict proto parsing behaves. A lenient [`Ctx`] (Envoy's
//! `--allow-unknown-static-fields`) records those errors instead.

use std::cell::RefCell;
use std::time::Duration;

use crate::error::{did_you_mean, ConfigError};
use crate::yaml::{Entry, Mark, Node, NodeKind};

/// What one decoding run shares: the source names (for error places) and
/// what to do with unknown fields.
pub(crate) struct Ctx {
    files: Vec<String>,
    /// Unknown fields are recorded in `unknown` instead of failing.
    lenient: bool,
    unknown: RefCell<Vec<ConfigError>>,
    /// What was decoded but is not served yet (see [`Val::not_served_yet`]).
    unserved: RefCell<Vec<ConfigError>>,
}

impl Ctx {
    /// A run over `files`; `lenient` records unknown fields instead of
    /// failing on the first.
    pub fn new(files: Vec<String>, lenient: bool) -> Self {
        Ctx {
            files,
            lenient,
            unknown: RefCell::new(Vec::new()),
            unserved: RefCell::new(Vec::new()),
        }
    }

    /// The unknown fields recorded (lenient runs only).
    pub fn into_unknown(self) -> Vec<ConfigError> {
        self.unknown.into_inner()
    }

    /// The first feature that was decoded but is not served yet.
    pub fn first_unserved(&self) -> Option<ConfigError> {
        self.unserved.borrow().first().cloned()
    }
}

/// A value in the document, with its path.
#[derive(Clone)]
pub(crate) struct Val<'a> {
    pub ctx: &'a Ctx,
    pub node: &'a Node,
    pub path: String,
}

pub(crate) type Result<T> = std::result::Result<T, ConfigError>;

impl<'a> Val<'a> {
    pub fn new(ctx: &'a Ctx, node: &'a Node) -> Self {
        Val {
            ctx,
            node,
            path: String::new(),
        }
    }

    /// An error at this value.
    pub fn err(&self, message: impl Into<String>) -> ConfigError {
        error_at(&self.ctx.files, self.node.mark, &self.path, message)
    }

    /// Records that this value was decoded into the model but that the
    /// server does not serve it yet. [`crate::load_with`] refuses the config
    /// with the first such record: this is the one gate that the TLS work
    /// (issue 14) removes piece by piece as the runtime learns each feature.
    pub fn not_served_yet(&self, what: &str) {
        let e = self.err(format!(
            "{what} is decoded but not served yet: nuncio does not serve TLS or filter chain matching yet (issue 14), and without it this traffic would go in clear text or to the wrong chain"
        ));
        self.ctx.unserved.borrow_mut().push(e);
    }

    /// Where this value is, for checks that run after decoding.
    pub fn origin(&self) -> crate::error::Origin {
        let e = self.err("");
        crate::error::Origin {
            file: e.file,
            line: e.line,
            col: e.col,
            path: e.path,
        }
    }

    fn expected(&self, what: &str) -> ConfigError {
        self.err(format!("expected {what}, got {}", self.node.type_name()))
    }

    fn scalar(&self) -> Option<&'a str> {
        match &self.node.kind {
            NodeKind::Scalar { value, .. } if !self.node.is_null() => Some(value),
            _ => None,
        }
    }

    /// A string.
    pub fn str(&self) -> Result<String> {
        self.scalar()
            .map(str::to_string)
            .ok_or_else(|| self.expected("a string"))
    }

    /// An unsigned integer in `min..=max` (quoted or not, as protobuf JSON allows).
    pub fn uint(&self, min: u64, max: u64) -> Result<u64> {
        let s = self.scalar().ok_or_else(|| self.expected("an integer"))?;
        let v: u64 = s
            .trim()
            .parse()
            .map_err(|_| self.err(format!("expected an integer, got '{s}'")))?;
        if v < min || v > max {
            return Err(self.err(format!("expected an integer from {min} to {max}, got {v}")));
        }
        Ok(v)
    }

    /// A u32.
    pub fn u32(&self) -> Result<u32> {
        self.uint(0, u64::from(u32::MAX)).map(|v| v as u32)
    }

    /// A floating-point number (quoted or not, as protobuf JSON allows).
    pub fn f64(&self) -> Result<f64> {
        let s = self.scalar().ok_or_else(|| self.expected("a number"))?;
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| self.err(format!("expected a number, got '{s}'")))
    }

    /// A string of at least one byte (Envoy's `min_len: 1`).
    pub fn non_empty_str(&self) -> Result<String> {
        let s = self.str()?;
        if s.is_empty() {
            return Err(self.err("must not be empty"));
        }
        Ok(s)
    }

    /// A boolean (`true`/`false`, any case).
    pub fn bool(&self) -> Result<bool> {
        match self.scalar().map(str::to_ascii_lowercase).as_deref() {
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            _ => Err(self.err(format!(
                "expected true or false, got {}",
                self.scalar()
                    .map(|s| format!("'{s}'"))
                    .unwrap_or_else(|| self.node.type_name().into())
            ))),
        }
    }

    /// A protobuf Duration: `"0.25s"` or `{seconds: 1, nanos: 0}`.
    pub fn duration(&self) -> Result<Duration> {
        if let NodeKind::Map(_) = self.node.kind {
            let o = self.obj()?;
            let secs = o
                .get("seconds")
                .map(|v| v.uint(0, 315_576_000_000))
                .transpose()?;
            let nanos = o.get("nanos").map(|v| v.uint(0, 999_999_999)).transpose()?;
            o.finish()?;
            return Ok(Duration::new(secs.unwrap_or(0), nanos.unwrap_or(0) as u32));
        }
        let s = self
            .scalar()
            .ok_or_else(|| self.expected("a duration such as \"0.25s\""))?;
        parse_duration(s).ok_or_else(|| {
            self.err(format!(
                "expected a duration in seconds with an 's' suffix such as \"0.25s\" or \"5s\", got '{s}'"
            ))
        })
    }

    /// One of `options` (case-insensitive, as Envoy reads enums from YAML).
    pub fn enumeration<T: Copy>(&self, options: &[(&'static str, T)]) -> Result<T> {
        let s = self.scalar().ok_or_else(|| self.expected("a name"))?;
        if let Some((_, v)) = options.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            return Ok(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let hint = did_you_mean(s, names.iter().copied())
            .map(|c| format!(" (did you mean {c}?)"))
            .unwrap_or_default();
        Err(self.err(format!(
            "unknown value '{s}', expected one of {}{hint}",
            names.join(", ")
        )))
    }

    /// A map.
    pub fn obj(&self) -> Result<Obj<'a>> {
        match &self.node.kind {
            NodeKind::Map(entries) => Ok(Obj {
                ctx: self.ctx,
                entries,
                mark: self.node.mark,
                path: self.path.clone(),
                asked: RefCell::new(Vec::new()),
            }),
            _ if self.node.is_null() => Ok(Obj {
                ctx: self.ctx,
                entries: &[],
                mark: self.node.mark,
                path: self.path.clone(),
                asked: RefCell::new(Vec::new()),
            }),
            _ => Err(self.expected("a map")),
        }
    }

    /// A list (null is the empty list). A single value where a list is
    /// expected is a list of one, as Envoy's config loader reads it.
    pub fn list(&self) -> Result<Vec<Val<'a>>> {
        match &self.node.kind {
            NodeKind::Seq(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, n)| Val {
                    ctx: self.ctx,
                    node: n,
                    path: format!("{}[{i}]", self.path),
                })
                .collect()),
            _ if self.node.is_null() => Ok(Vec::new()),
            _ => Ok(vec![Val {
                ctx: self.ctx,
                node: self.node,
                path: format!("{}[0]", self.path),
            }]),
        }
    }

    /// The entries of a map whose keys are data (protobuf `map<string, _>`),
    /// in document order, each with its path `<path>.<key>`; null is empty.
    pub fn entries(&self) -> Result<Vec<(String, Val<'a>)>> {
        match &self.node.kind {
            NodeKind::Map(entries) => Ok(entries
                .iter()
                .map(|e| {
                    let v = Val {
                        ctx: self.ctx,
                        node: &e.value,
                        path: if self.path.is_empty() {
                            e.key.clone()
                        } else {
                            format!("{}.{}", self.path, e.key)
                        },
                    };
                    (e.key.clone(), v)
                })
                .collect()),
            _ if self.node.is_null() => Ok(Vec::new()),
            _ => Err(self.expected("a map")),
        }
    }

    /// Whether this is an empty map (`{}`) or null.
    pub fn is_empty_map(&self) -> bool {
        match &self.node.kind {
            NodeKind::Map(entries) => entries.is_empty(),
            _ => self.node.is_null(),
        }
    }

    /// A list of strings.
    pub fn str_list(&self) -> Result<Vec<String>> {
        self.list()?.iter().map(Val::str).collect()
    }

    /// The node as JSON (metadata values; tests compare merged trees with it).
    pub fn to_json(&self) -> serde_json::Value {
        to_json(self.node)
    }
}

/// Decodes `text` (YAML or JSON) with `f`, as source `name` (unit tests of
/// the decoders, and [`crate::filters::decode_filter_str`]).
pub(crate) fn decode_str<T>(
    name: &str,
    text: &str,
    f: impl FnOnce(&Val) -> Result<T>,
) -> Result<T> {
    let node = crate::yaml::parse(text).map_err(|e| ConfigError {
        file: name.to_string(),
        line: e.mark.line,
        col: e.mark.col,
        path: String::new(),
        message: format!("invalid YAML/JSON: {}", e.message),
    })?;
    let ctx = Ctx::new(vec![name.to_string()], false);
    f(&Val::new(&ctx, &node))
}

/// A map being decoded.
pub(crate) struct Obj<'a> {
    ctx: &'a Ctx,
    entries: &'a [Entry],
    mark: Mark,
    path: String,
    asked: RefCell<Vec<&'static str>>,
}

impl<'a> Obj<'a> {
    /// An error at the map itself.
    pub fn err(&self, message: impl Into<String>) -> ConfigError {
        error_at(&self.ctx.files, self.mark, &self.path, message)
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn find(&self, key: &'static str) -> Option<&'a Entry> {
        self.asked.borrow_mut().push(key);
        self.entries
            .iter()
            .find(|e| e.key == key || (key.contains('_') && e.key == camel_case(key)))
    }

    /// The field `key`, if present and not null. Also accepts the
    /// lowerCamelCase spelling, as protobuf JSON does.
    pub fn get(&self, key: &'static str) -> Option<Val<'a>> {
        self.find(key).filter(|e| !e.value.is_null()).map(|e| Val {
            ctx: self.ctx,
            node: &e.value,
            path: self.child_path(key),
        })
    }

    /// The field `key`, or an error saying it is required.
    pub fn req(&self, key: &'static str) -> Result<Val<'a>> {
        self.get(key)
            .ok_or_else(|| self.err(format!("missing required field '{key}'")))
    }

    /// Whether a key (asked for or not) is present.
    pub fn has(&self, key: &'static str) -> bool {
        self.get(key).is_some()
    }

    /// Accepts field `key` only with a value for which `implemented` says
    /// nuncio does what it asks; any other value is an error that says
    /// what nuncio does instead (`does`), never silently ignored.
    pub fn only_if(
        &self,
        key: &'static str,
        implemented: impl Fn(&Val<'a>) -> Result<bool>,
        does: &str,
    ) -> Result<()> {
        match self.get(key) {
            Some(v) if !implemented(&v)? => Err(v.err(format!(
                "'{key}' with this value is not supported yet: {does}"
            ))),
            _ => Ok(()),
        }
    }

    /// Accepts a field nuncio reads but ignores on purpose.
    pub fn ignore(&self, key: &'static str) {
        self.asked.borrow_mut().push(key);
    }

    /// Ends decoding: any key never asked for is an unknown field (an
    /// error, or in a lenient run a record, and decoding goes on).
    pub fn finish(&self) -> Result<()> {
        self.finish_with(&[])
    }

    /// Like [`Obj::finish`], naming fields that are valid in Envoy but not
    /// (yet) implemented by nuncio, so the message tells the two apart.
    pub fn finish_with(&self, envoy_only: &[&str]) -> Result<()> {
        let asked = self.asked.borrow();
        for e in self.entries {
            let known = asked.iter().any(|k| *k == e.key || camel_case(k) == e.key);
            if known {
                continue;
            }
            let path = self.child_path(&e.key);
            if envoy_only.contains(&e.key.as_str()) {
                return Err(error_at(
                    &self.ctx.files,
                    e.key_mark,
                    &path,
                    format!(
                        "'{}' is an Envoy field that nuncio does not support yet, so this config cannot run as written{}",
                        e.key,
                        unsupported_consequence(&e.key)
                    ),
                ));
            }
            let hint = did_you_mean(&e.key, asked.iter().copied())
                .map(|c| format!(", did you mean '{c}'?"))
                .unwrap_or_else(|| {
                    let mut v: Vec<&str> = asked.to_vec();
                    v.sort_unstable();
                    v.dedup();
                    format!("; expected one of: {}", v.join(", "))
                });
            let err = error_at(
                &self.ctx.files,
                e.key_mark,
                &path,
                format!("unknown field '{}'{hint}", e.key),
            );
            if !self.ctx.lenient {
                return Err(err);
            }
            self.ctx.unknown.borrow_mut().push(err);
        }
        Ok(())
    }
}

pub(crate) fn error_at(
    files: &[String],
    mark: Mark,
    path: &str,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError {
        file: files.get(mark.src).cloned().unwrap_or_default(),
        line: mark.line,
        col: mark.col,
        path: path.to_string(),
        message: message.into(),
    }
}

fn camel_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut up = false;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `"1.5s"`, `"0.250s"`, `"5s"`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let num = s.trim().strip_suffix('s')?;
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
    {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(Duration::new(secs, nanos))
}

fn to_json(n: &Node) -> serde_json::Value {
    use serde_json::Value;
    match &n.kind {
        _ if n.is_null() => Value::Null,
        NodeKind::Scalar { value, plain } => {
            if *plain {
                if let Ok(i) = value.parse::<i64>() {
                    return Value::from(i);
                }
                if let Ok(f) = value.parse::<f64>() {
                    return Value::from(f);
                }
                match value.as_str() {
                    "true" => return Value::Bool(true),
                    "false" => return Value::Bool(false),
                    _ => {}
                }
            }
            Value::String(value.clone())
        }
        NodeKind::Seq(v) => Value::Array(v.iter().map(to_json).collect()),
        NodeKind::Map(e) => Value::Object(
            e.iter()
                .map(|e| (e.key.clone(), to_json(&e.value)))
                .collect(),
        ),
    }
}

/// What dropping an unsupported field would cost, for the fields where
/// "just remove it" would be dangerous advice.
fn unsupported_consequence(key: &str) -> &'static str {
    match key {
        "tls_context" => {
            ": it is TLS (v2-era; use transport_socket envoy.transport_sockets.tls), and without it this traffic would go in clear text"
        }
        "rbac" | "jwt_authn" | "ext_authz" | "require_client_certificate" => {
            ": it controls access, and without it every request would be let through"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn strict() -> Ctx {
        Ctx::new(Vec::new(), false)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0.25s"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5ms"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn unknown_fields_hint() {
        let n = parse("name: x\nlb_polcy: ROUND_ROBIN\n").unwrap();
        let ctx = strict();
        let v = Val::new(&ctx, &n);
        let o = v.obj().unwrap();
        o.get("name");
        o.get("lb_policy");
        let e = o.finish().unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.col, 1);
        assert_eq!(e.path, "lb_polcy");
        assert!(e.message.contains("did you mean 'lb_policy'"), "{e}");
    }

    #[test]
    fn camel_case_accepted() {
        let n = parse("statPrefix: x\n").unwrap();
        let ctx = strict();
        let v = Val::new(&ctx, &n);
        let o = v.obj().unwrap();
        assert_eq!(o.req("stat_prefix").unwrap().str().unwrap(), "x");
        o.finish().unwrap();
    }

    #[test]
    fn enums_any_case() {
        let n = parse("a: strict_dns\nb: STRICT_DNZ\n").unwrap();
        let ctx = strict();
        let v = Val::new(&ctx, &n);
        let o = v.obj().unwrap();
        let opts = [("STATIC", 0), ("STRICT_DNS", 1)];
        assert_eq!(o.req("a").unwrap().enumeration(&opts).unwrap(), 1);
        let e = o.req("b").unwrap().enumeration(&opts).unwrap_err();
        assert!(e.message.contains("did you mean STRICT_DNS"), "{e}");
        assert_eq!(e.path, "b");
    }

    #[test]
    fn integers_checked() {
        let n = parse("p: 70000\nq: '80'\nr: x\n").unwrap();
        let ctx = strict();
        let v = Val::new(&ctx, &n);
        let o = v.obj().unwrap();
        assert!(o.req("p").unwrap().uint(0, 65535).is_err());
        assert_eq!(o.req("q").unwrap().uint(0, 65535).unwrap(), 80);
        assert!(o.req("r").unwrap().u32().is_err());
    }
}
