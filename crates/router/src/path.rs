//! Request path normalisation before routing (Envoy's `normalize_path`,
//! `merge_slashes`, `path_with_escaped_slashes_action`), in Envoy's
//! order: escaped slashes first, then RFC 3986 normalisation, then slash
//! merging. The normal form is what routes see and what the upstream
//! receives, so `/a/../admin`, `/%2e%2e/admin` and `//admin` cannot slip
//! past a route that guards `/admin`. The query is left as it is.

use std::borrow::Cow;

use nuncio_config::{EscapedSlashes, PathOptions};

/// What to do with a request after normalising its path.
#[derive(Debug, PartialEq, Eq)]
pub enum PathVerdict<'a> {
    /// Route (and forward) this path.
    Use(Cow<'a, str>),
    /// 307 to this path (`UNESCAPE_AND_REDIRECT` found escaped slashes).
    Redirect(String),
    /// 400 (`REJECT_REQUEST` found escaped slashes, or the path does not
    /// start with `/`).
    Reject,
}

/// Normalises the path of `target` (path and query) by `opts`.
pub fn normalize<'a>(target: &'a str, opts: &PathOptions) -> PathVerdict<'a> {
    let (path, query) = match target.find('?') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    // Only origin-form paths are normalised (`*` for OPTIONS, and
    // absolute-form targets, are routed as they are).
    if !path.starts_with('/') {
        return PathVerdict::Use(Cow::Borrowed(target));
    }
    // A dot segment always follows a slash; `.` elsewhere (`/app.js`)
    // needs no work, so common paths take no allocation.
    let untouched = !(path.contains(['%', '\\'])
        || path.contains("/.")
        || opts.merge_slashes && path.contains("//"));
    if untouched {
        return PathVerdict::Use(Cow::Borrowed(target));
    }
    let mut p = Cow::Borrowed(path);
    let escaped = has_escaped_slash(path);
    if escaped {
        match opts.escaped_slashes {
            EscapedSlashes::Keep => {}
            EscapedSlashes::Reject => return PathVerdict::Reject,
            EscapedSlashes::UnescapeAndRedirect | EscapedSlashes::UnescapeAndForward => {
                p = Cow::Owned(unescape_slashes(path));
            }
        }
    }
    if opts.normalize {
        p = Cow::Owned(remove_dot_segments(
            &decode_unreserved(&p).replace('\\', "/"),
        ));
    }
    if opts.merge_slashes && p.contains("//") {
        let mut out = String::with_capacity(p.len());
        for c in p.chars() {
            if !(c == '/' && out.ends_with('/')) {
                out.push(c);
            }
        }
        p = Cow::Owned(out);
    }
    let changed = p != path;
    if escaped && opts.escaped_slashes == EscapedSlashes::UnescapeAndRedirect && changed {
        return PathVerdict::Redirect(format!("{p}{query}"));
    }
    if !changed {
        return PathVerdict::Use(Cow::Borrowed(target));
    }
    PathVerdict::Use(Cow::Owned(format!("{p}{query}")))
}

fn has_escaped_slash(p: &str) -> bool {
    let b = p.as_bytes();
    b.windows(3).any(|w| {
        w[0] == b'%' && (w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f'))
            || (w[0] == b'%' && w[1] == b'5' && w[2].eq_ignore_ascii_case(&b'c'))
    })
}

fn unescape_slashes(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            match (b[i + 1], b[i + 2].to_ascii_lowercase()) {
                (b'2', b'f') => {
                    out.push('/');
                    i += 3;
                    continue;
                }
                (b'5', b'c') => {
                    out.push('\\');
                    i += 3;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Decodes `%XX` of unreserved characters (ALPHA, DIGIT, `-._~`) and
/// upper-cases the hex digits of every other escape (RFC 3986 6.2.2).
fn decode_unreserved(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let c = h * 16 + l;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(c as char);
                } else {
                    out.push('%');
                    out.push(b[i + 1].to_ascii_uppercase() as char);
                    out.push(b[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                continue;
            }
        }
        // Paths are ASCII here (the HTTP/1 parser and h2 refuse others),
        // but keep any byte sequence intact.
        let ch_len = p[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&p[i..i + ch_len]);
        i += ch_len;
    }
    out
}

/// RFC 3986 section 5.2.4, on a path starting with `/`.
fn remove_dot_segments(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = p[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (i, s) in segments.iter().enumerate() {
        match *s {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut r = String::with_capacity(p.len());
    for s in &out {
        r.push('/');
        r.push_str(s);
    }
    if trailing_slash || r.is_empty() {
        r.push('/');
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(normalize: bool, merge: bool, esc: EscapedSlashes) -> PathOptions {
        PathOptions {
            normalize,
            merge_slashes: merge,
            escaped_slashes: esc,
        }
    }

    fn use_(target: &str, o: &PathOptions) -> String {
        match normalize(target, o) {
            PathVerdict::Use(p) => p.into_owned(),
            v => panic!("{target}: {v:?}"),
        }
    }

    #[test]
    fn dot_segments_and_encoded_dots() {
        let o = PathOptions::default();
        for (from, to) in [
            ("/a/../admin", "/admin"),
            ("/%2e%2e/admin", "/admin"),
            ("/a/%2E%2e/admin?x=/../y", "/admin?x=/../y"),
            ("/a/./b/.", "/a/b/"),
            ("/..", "/"),
            ("/../../x", "/x"),
            ("/a/b/..", "/a/"),
            ("/%7euser/%41", "/~user/A"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%3fb", "/a%3Fb"),
            ("/a\\..\\admin", "/admin"),
            ("//x", "/x"),
            ("/a//b///c", "/a/b/c"),
            ("/plain/path?q=1", "/plain/path?q=1"),
            ("/bad%zzescape", "/bad%zzescape"),
            ("/trailing%", "/trailing%"),
        ] {
            assert_eq!(use_(from, &o), to, "{from}");
        }
    }

    #[test]
    fn off_means_untouched() {
        let o = opts(false, false, EscapedSlashes::Keep);
        for p in ["/a/../admin", "//x", "/%2e%2e/a"] {
            assert_eq!(use_(p, &o), p);
        }
        assert!(matches!(
            normalize("/a/b", &o),
            PathVerdict::Use(Cow::Borrowed(_))
        ));
        // Common paths cost no allocation with normalisation on.
        let on = PathOptions::default();
        for p in ["/static/app.js?v=1.2", "/", "/a/b.c/d"] {
            assert!(
                matches!(normalize(p, &on), PathVerdict::Use(Cow::Borrowed(_))),
                "{p}"
            );
        }
    }

    #[test]
    fn escaped_slash_actions() {
        let reject = opts(true, true, EscapedSlashes::Reject);
        assert_eq!(normalize("/a%2Fb", &reject), PathVerdict::Reject);
        assert_eq!(normalize("/a%5cb", &reject), PathVerdict::Reject);
        assert_eq!(use_("/a/b", &reject), "/a/b");
        let fwd = opts(true, true, EscapedSlashes::UnescapeAndForward);
        assert_eq!(use_("/a%2F..%2Fadmin?q", &fwd), "/admin?q");
        assert_eq!(use_("/a%5Cb", &fwd), "/a/b");
        let redirect = opts(true, true, EscapedSlashes::UnescapeAndRedirect);
        assert_eq!(
            normalize("/a%2fb?x=1", &redirect),
            PathVerdict::Redirect("/a/b?x=1".into())
        );
    }

    #[test]
    fn non_origin_forms_are_left_alone() {
        let o = PathOptions::default();
        assert_eq!(use_("*", &o), "*");
        assert_eq!(use_("http://a/../b", &o), "http://a/../b");
    }
}
