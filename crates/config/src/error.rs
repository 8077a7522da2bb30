//! The one error type of the config crate: a one-line message that says
//! where (file:line:column), which field (its path) and what was expected.

use std::fmt;

/// A config error a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file the config came from (`<config-yaml>` for `--config-yaml`).
    pub file: String,
    /// 1-based line, 0 when the error is not tied to a place.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Field path such as `static_resources.clusters[0].lb_policy`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where a value was written: kept in the model for the checks that run
/// after decoding (certificate files, secret references), so their errors
/// still point at the config line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The config file.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Field path such as `static_resources.secrets[0].tls_certificate`.
    pub path: String,
}

impl Origin {
    /// A [`ConfigError`] at this place.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
            path: self.path.clone(),
            message: message.into(),
        }
    }
}

/// Edit distance, for did-you-mean hints.
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let w = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (levenshtein(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line() {
        let e = ConfigError {
            file: "a.yaml".into(),
            line: 3,
            col: 5,
            path: "admin.address".into(),
            message: "expected a map".into(),
        };
        assert_eq!(e.to_string(), "a.yaml:3:5: admin.address: expected a map");
    }

    #[test]
    fn suggestions() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(
            did_you_mean("lb_polcy", ["name", "lb_policy", "type"]),
            Some("lb_policy")
        );
        assert_eq!(did_you_mean("zzzzzz", ["name", "type"]), None);
    }
}
