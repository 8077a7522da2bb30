//! `envoy.type.matcher.v3.StringMatcher`: exact, prefix, suffix, contains
//! or `safe_regex` (RE2 syntax, whole-value match), with `ignore_case`.
//! Validated as Envoy 1.40 validates it (checked with `envoy --mode
//! validate`): prefix/suffix/contains need at least one byte, `exact` may be
//! empty, only one kind per matcher, `ignore_case` is refused with
//! `safe_regex` ("ignore_case has no effect for safe_regex."), and a regex
//! that does not compile is an error.

use crate::decode::{Result, Val};

/// A compiled `safe_regex` (`RegexMatcher`): matches the whole value, as
/// Envoy's RE2 `FullMatch`.
#[derive(Debug, Clone)]
pub struct SafeRegex {
    /// The pattern as written.
    pub pattern: String,
    regex: regex::Regex,
}

impl PartialEq for SafeRegex {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl SafeRegex {
    /// Compiles `pattern` for whole-value matching.
    pub fn new(pattern: &str) -> std::result::Result<SafeRegex, String> {
        let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            let text = e.to_string();
            text.lines()
                .last()
                .unwrap_or("invalid regex")
                .trim()
                .to_string()
        })?;
        Ok(SafeRegex {
            pattern: pattern.to_string(),
            regex,
        })
    }

    /// Whether the whole of `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

/// What a [`StringMatcher`] compares.
#[derive(Debug, Clone, PartialEq)]
pub enum StringPattern {
    /// `exact`.
    Exact(String),
    /// `prefix`.
    Prefix(String),
    /// `suffix`.
    Suffix(String),
    /// `contains`.
    Contains(String),
    /// `safe_regex`.
    SafeRegex(SafeRegex),
}

/// `envoy.type.matcher.v3.StringMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct StringMatcher {
    /// The comparison.
    pub pattern: StringPattern,
    /// ASCII case-insensitive comparison (not with `safe_regex`).
    pub ignore_case: bool,
}

impl StringMatcher {
    /// An exact, case-sensitive matcher.
    pub fn exact(s: &str) -> Self {
        StringMatcher {
            pattern: StringPattern::Exact(s.to_string()),
            ignore_case: false,
        }
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        let ic = self.ignore_case;
        match &self.pattern {
            StringPattern::Exact(e) if ic => e.eq_ignore_ascii_case(value),
            StringPattern::Exact(e) => e == value,
            StringPattern::Prefix(p) => value.get(..p.len()).is_some_and(|h| {
                if ic {
                    h.eq_ignore_ascii_case(p)
                } else {
                    h == p
                }
            }),
            StringPattern::Suffix(s) => value
                .len()
                .checked_sub(s.len())
                .and_then(|at| value.get(at..))
                .is_some_and(|t| {
                    if ic {
                        t.eq_ignore_ascii_case(s)
                    } else {
                        t == s
                    }
                }),
            StringPattern::Contains(c) if ic => {
                value.to_ascii_lowercase().contains(&c.to_ascii_lowercase())
            }
            StringPattern::Contains(c) => value.contains(c.as_str()),
            StringPattern::SafeRegex(r) => r.is_match(value),
        }
    }
}

/// Decodes a `RegexMatcher` (`{regex, google_re2?}`).
pub(crate) fn decode_regex_matcher(v: &Val) -> Result<SafeRegex> {
    let o = v.obj()?;
    let rv = o.req("regex")?;
    let pattern = rv.str()?;
    if let Some(g) = o.get("google_re2") {
        // Deprecated; its max_program_size is RE2's and has no meaning here.
        let go = g.obj()?;
        go.only_if(
            "max_program_size",
            |_| Ok(false),
            "nuncio's regex engine has no RE2 program size limit",
        )?;
        go.finish()?;
    }
    o.finish()?;
    SafeRegex::new(&pattern).map_err(|e| rv.err(format!("invalid regex '{pattern}': {e}")))
}

/// Decodes a `StringMatcher`.
pub(crate) fn decode_string_matcher(v: &Val) -> Result<StringMatcher> {
    let o = v.obj()?;
    let mut found: Vec<(&'static str, Val)> = Vec::new();
    for k in ["exact", "prefix", "suffix", "contains", "safe_regex"] {
        if let Some(x) = o.get(k) {
            found.push((k, x));
        }
    }
    let ignore_case = o
        .get("ignore_case")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    o.finish_with(&["custom"])?;
    let (kind, val) = match found.len() {
        1 => found.remove(0),
        0 => return Err(o.err(
            "a string matcher needs one of 'exact', 'prefix', 'suffix', 'contains', 'safe_regex'",
        )),
        _ => {
            let names: Vec<&str> = found.iter().map(|(k, _)| *k).collect();
            return Err(found[1].1.err(format!(
                "a string matcher takes one of 'exact', 'prefix', 'suffix', 'contains', 'safe_regex'; got {}",
                names.join(" and ")
            )));
        }
    };
    let pattern = match kind {
        "exact" => StringPattern::Exact(val.str()?),
        "prefix" => StringPattern::Prefix(val.non_empty_str()?),
        "suffix" => StringPattern::Suffix(val.non_empty_str()?),
        "contains" => StringPattern::Contains(val.non_empty_str()?),
        _ => {
            if ignore_case {
                return Err(o.err("ignore_case has no effect for safe_regex"));
            }
            StringPattern::SafeRegex(decode_regex_matcher(&val)?)
        }
    };
    Ok(StringMatcher {
        pattern,
        ignore_case,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    fn m(text: &str) -> crate::decode::Result<StringMatcher> {
        decode_str("t.yaml", text, decode_string_matcher)
    }

    #[test]
    fn kinds() {
        let e = m("exact: https://a.example").unwrap();
        assert!(e.matches("https://a.example") && !e.matches("https://A.example"));
        let ei = m("{exact: https://a.example, ignore_case: true}").unwrap();
        assert!(ei.matches("https://A.EXAMPLE"));
        let p = m("prefix: ab").unwrap();
        assert!(p.matches("abc") && !p.matches("a") && !p.matches("xab"));
        let s = m("{suffix: .Example, ignore_case: true}").unwrap();
        assert!(s.matches("x.b.example") && !s.matches("example"));
        let c = m("{contains: MID, ignore_case: true}").unwrap();
        assert!(c.matches("a-mid-b") && !c.matches("mi"));
        let r = m(r#"safe_regex: {regex: "https://c[0-9]+\\.example"}"#).unwrap();
        assert!(r.matches("https://c12.example"));
        assert!(!r.matches("https://c12.example.evil"), "whole value only");
        assert!(m("safe_regex: {google_re2: {}, regex: a}")
            .unwrap()
            .matches("a"));
        assert!(m("exact: ''").unwrap().matches(""));
        // Multi-byte text never panics on a byte boundary.
        assert!(!m("prefix: ab").unwrap().matches("é"));
        assert!(!m("suffix: ab").unwrap().matches("é"));
    }

    #[test]
    fn refused() {
        let e = m("{exact: a, prefix: b}").unwrap_err();
        assert!(e.message.contains("takes one of"), "{e}");
        let e = m("prefix: ''").unwrap_err();
        assert_eq!(e.path, "prefix");
        assert!(e.message.contains("must not be empty"), "{e}");
        let e = m("{safe_regex: {regex: a}, ignore_case: true}").unwrap_err();
        assert!(e.message.contains("ignore_case has no effect"), "{e}");
        let e = m("safe_regex: {regex: '(('}").unwrap_err();
        assert_eq!(e.path, "safe_regex.regex");
        assert!(e.message.contains("invalid regex"), "{e}");
        let e = m("ignore_case: true").unwrap_err();
        assert!(e.message.contains("needs one of"), "{e}");
        let e = m("custom: {}").unwrap_err();
        assert!(e.message.contains("does not support yet"), "{e}");
        let e = m("exakt: a").unwrap_err();
        assert!(e.message.contains("did you mean 'exact'"), "{e}");
        assert_eq!((e.line, e.col), (1, 1));
    }
}
