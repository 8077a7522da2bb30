//! `envoy.config.route.v3.HeaderMatcher`: a rule on one request header, as
//! the fault filter's `headers` and the health check filter's `headers`
//! use it. A header sent more than once is matched as its values joined
//! with `,` (Envoy's `getAllOfHeaderAsString`).

use crate::decode::{Result, Val};
use crate::headers::valid_header_name;
use crate::matcher::{decode_regex_matcher, decode_string_matcher, StringMatcher, StringPattern};

/// What a [`HeaderMatcher`] asks of the value.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderMatch {
    /// `present_match` (and a matcher with only a name: present).
    Present(bool),
    /// `range_match`: the value is an integer in `start..end`.
    Range {
        /// Inclusive start.
        start: i64,
        /// Exclusive end.
        end: i64,
    },
    /// `string_match`, or the older `exact_match`, `prefix_match`,
    /// `suffix_match`, `contains_match`, `safe_regex_match` (v2-era
    /// `regex_match`).
    String(StringMatcher),
}

/// `envoy.config.route.v3.HeaderMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatcher {
    /// The header name, lowercased.
    pub name: String,
    /// The rule.
    pub rule: HeaderMatch,
    /// `invert_match`.
    pub invert: bool,
    /// `treat_missing_header_as_empty`.
    pub treat_missing_as_empty: bool,
}

impl HeaderMatcher {
    /// Whether a request whose header `name` has `value` (all its values
    /// joined with `,`; `None` when absent) matches.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let value = match value {
            Some(v) => v,
            None if self.treat_missing_as_empty => "",
            None => {
                // Envoy: a missing header matches only `present_match: false`
                // (or, inverted, `present_match: true`).
                return match self.rule {
                    HeaderMatch::Present(p) => p == self.invert,
                    _ => false,
                };
            }
        };
        let m = match &self.rule {
            HeaderMatch::Present(p) => *p,
            HeaderMatch::Range { start, end } => {
                value.parse::<i64>().is_ok_and(|n| *start <= n && n < *end)
            }
            HeaderMatch::String(s) => s.matches(value),
        };
        m != self.invert
    }
}

/// Decodes a `HeaderMatcher`.
pub(crate) fn decode_header_matcher(v: &Val) -> Result<HeaderMatcher> {
    let o = v.obj()?;
    let nv = o.req("name")?;
    let name = nv.non_empty_str()?;
    if !valid_header_name(name.strip_prefix(':').unwrap_or(&name)) {
        return Err(nv.err(format!("'{name}' is not a valid header name")));
    }
    let mut rules: Vec<(&'static str, HeaderMatch)> = Vec::new();
    let s = |p: StringPattern| {
        HeaderMatch::String(StringMatcher {
            pattern: p,
            ignore_case: false,
        })
    };
    if let Some(x) = o.get("exact_match") {
        rules.push(("exact_match", s(StringPattern::Exact(x.str()?))));
    }
    for (k, re) in [("safe_regex_match", true), ("regex_match", false)] {
        if let Some(x) = o.get(k) {
            let r = if re {
                decode_regex_matcher(&x)?
            } else {
                let p = x.str()?;
                crate::matcher::SafeRegex::new(&p)
                    .map_err(|e| x.err(format!("invalid regex '{p}': {e}")))?
            };
            rules.push((k, s(StringPattern::SafeRegex(r))));
        }
    }
    if let Some(x) = o.get("range_match") {
        let ro = x.obj()?;
        let int = |k: &'static str| -> Result<i64> {
            let v = ro.req(k)?;
            let t = v.str()?;
            t.trim()
                .parse::<i64>()
                .map_err(|_| v.err(format!("expected an integer, got '{t}'")))
        };
        let (start, end) = (int("start")?, int("end")?);
        ro.finish()?;
        if start >= end {
            return Err(x.err("range_match needs start < end"));
        }
        rules.push(("range_match", HeaderMatch::Range { start, end }));
    }
    if let Some(x) = o.get("present_match") {
        rules.push(("present_match", HeaderMatch::Present(x.bool()?)));
    }
    for (k, f) in [
        (
            "prefix_match",
            StringPattern::Prefix as fn(String) -> StringPattern,
        ),
        ("suffix_match", StringPattern::Suffix),
        ("contains_match", StringPattern::Contains),
    ] {
        if let Some(x) = o.get(k) {
            rules.push((k, s(f(x.non_empty_str()?))));
        }
    }
    if let Some(x) = o.get("string_match") {
        rules.push((
            "string_match",
            HeaderMatch::String(decode_string_matcher(&x)?),
        ));
    }
    let invert = o
        .get("invert_match")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    let treat_missing_as_empty = o
        .get("treat_missing_header_as_empty")
        .map(|b| b.bool())
        .transpose()?
        .unwrap_or(false);
    o.finish()?;
    if rules.len() > 1 {
        let names: Vec<&str> = rules.iter().map(|(k, _)| *k).collect();
        return Err(o.err(format!(
            "a header matcher takes one match kind; got {}",
            names.join(" and ")
        )));
    }
    let rule = rules
        .pop()
        .map(|(_, r)| r)
        .unwrap_or(HeaderMatch::Present(true));
    Ok(HeaderMatcher {
        name: name.to_ascii_lowercase(),
        rule,
        invert,
        treat_missing_as_empty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    fn hm(text: &str) -> Result<HeaderMatcher> {
        decode_str("t", text, decode_header_matcher)
    }

    #[test]
    fn rules() {
        let p = hm("name: X-A").unwrap();
        assert_eq!(p.name, "x-a");
        assert!(p.matches(Some("")) && !p.matches(None));
        let e = hm("{name: x, exact_match: v}").unwrap();
        assert!(e.matches(Some("v")) && !e.matches(Some("w")) && !e.matches(None));
        let r = hm("{name: x, range_match: {start: -10, end: '10'}}").unwrap();
        assert!(r.matches(Some("-10")) && r.matches(Some("9")) && !r.matches(Some("10")));
        assert!(!r.matches(Some("a")));
        let s = hm("{name: x, string_match: {prefix: ab, ignore_case: true}}").unwrap();
        assert!(s.matches(Some("ABc")));
        let re = hm("{name: x, safe_regex_match: {regex: 'a+'}}").unwrap();
        assert!(re.matches(Some("aaa")) && !re.matches(Some("aab")));
        let v2 = hm("{name: x, regex_match: 'b.'}").unwrap();
        assert!(v2.matches(Some("bc")));
    }

    #[test]
    fn missing_and_inverted() {
        let absent = hm("{name: x, present_match: false}").unwrap();
        assert!(absent.matches(None) && !absent.matches(Some("v")));
        let inv = hm("{name: x, exact_match: v, invert_match: true}").unwrap();
        assert!(inv.matches(Some("w")) && !inv.matches(Some("v")));
        assert!(
            !inv.matches(None),
            "a missing header never matches a value rule"
        );
        let inv_present = hm("{name: x, present_match: true, invert_match: true}").unwrap();
        assert!(inv_present.matches(None));
        let empty = hm("{name: x, exact_match: '', treat_missing_header_as_empty: true}").unwrap();
        assert!(empty.matches(None));
    }

    #[test]
    fn refused() {
        assert!(hm("{name: x, exact_match: a, prefix_match: b}")
            .unwrap_err()
            .message
            .contains("one match kind"));
        assert!(hm("{name: 'a b'}")
            .unwrap_err()
            .message
            .contains("valid header name"));
        assert!(hm("{name: x, range_match: {start: 5, end: 5}}").is_err());
        assert!(hm("{name: x, prefix_match: ''}").is_err());
        assert!(hm("{exact_match: a}")
            .unwrap_err()
            .message
            .contains("'name'"));
    }
}
