//! Header edits over a message whose fields stay as they arrived.
//!
//! nuncio's request path never builds a header map: a request head is a
//! parsed view of the bytes it arrived in, and the upstream head is written
//! straight from that view. Filters and route header mutations therefore
//! record what they change in [`Edits`] (fields removed, fields added), and
//! the head writers apply them while they serialise: a request no filter
//! touches costs one emptiness check. [`Fields`] is the view through the
//! edits that filters read and edit (the [`HeaderEdit`] trait).

use std::borrow::Cow;

use crate::headers::{HeaderEdit, HeaderLookup};

/// What was changed in a message's headers: fields of the message removed
/// by name, and fields added (after the message's own, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    /// Lowercase names whose original fields are gone.
    removed: Vec<String>,
    /// Added fields (lowercase names), in order.
    added: Vec<(String, String)>,
}

impl Edits {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }

    /// Whether the message's own fields named `name` are removed (the head
    /// writers skip them).
    pub fn removes(&self, name: &str) -> bool {
        !self.removed.is_empty() && self.removed.iter().any(|r| r.eq_ignore_ascii_case(name))
    }

    /// The added fields, in order (written after the message's own).
    pub fn added(&self) -> impl Iterator<Item = (&str, &str)> {
        self.added.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Removes every field `name`, the message's and added ones.
    pub fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.added.retain(|(n, _)| *n != name);
        if !self.removed.contains(&name) {
            self.removed.push(name);
        }
    }

    /// Replaces every field `name` with one of `value`.
    pub fn set(&mut self, name: &str, value: &str) {
        self.remove(name);
        self.append(name, value);
    }

    /// Adds a field, keeping the others.
    pub fn append(&mut self, name: &str, value: &str) {
        self.added
            .push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// Applies `later`'s removals and additions after this one's.
    pub fn merge(&mut self, later: Edits) {
        for n in &later.removed {
            self.remove(n);
        }
        self.added.extend(later.added);
    }

    fn first_added(&self, name: &str) -> Option<&str> {
        self.added
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A message's fields as they arrived (`original`, as the codec's view
/// holds them) seen through `edits`.
#[derive(Debug)]
pub struct Fields<'a, 'b> {
    /// The message's own fields.
    pub original: &'a [(&'b str, &'b [u8])],
    /// What was changed.
    pub edits: &'a mut Edits,
}

impl Fields<'_, '_> {
    fn original_values(&self, name: &str) -> Vec<&str> {
        if self.edits.removes(name) {
            return Vec::new();
        }
        self.original
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .collect()
    }
}

impl HeaderLookup for Fields<'_, '_> {
    fn get(&self, name: &str) -> Option<&str> {
        let own = (!self.edits.removes(name))
            .then(|| {
                self.original
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| std::str::from_utf8(v).ok())
            })
            .flatten();
        own.or_else(|| self.edits.first_added(name))
    }

    fn get_joined(&self, name: &str) -> Option<Cow<'_, str>> {
        let vals: Vec<&str> = self
            .original_values(name)
            .into_iter()
            .chain(
                self.edits
                    .added
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str()),
            )
            .collect();
        match vals.len() {
            0 => None,
            1 => Some(Cow::Borrowed(vals[0])),
            _ => Some(Cow::Owned(vals.join(","))),
        }
    }
}

impl HeaderEdit for Fields<'_, '_> {
    fn append(&mut self, name: &str, value: &str) {
        self.edits.append(name, value);
    }
    fn set(&mut self, name: &str, value: &str) {
        self.edits.set(name, value);
    }
    fn remove(&mut self, name: &str) {
        self.edits.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_seen_through_the_view() {
        let original: Vec<(&str, &[u8])> = vec![("Host", b"a"), ("X-A", b"1"), ("x-a", b"2")];
        let mut e = Edits::default();
        assert!(e.is_empty());
        let mut f = Fields {
            original: &original,
            edits: &mut e,
        };
        assert_eq!(f.get("x-a"), Some("1"));
        assert_eq!(f.get_joined("x-a").as_deref(), Some("1,2"));
        f.append("x-a", "3");
        assert_eq!(f.get_joined("x-a").as_deref(), Some("1,2,3"));
        f.set("x-a", "4");
        assert_eq!(f.get_joined("x-a").as_deref(), Some("4"));
        f.remove("host");
        assert_eq!(f.get("host"), None);
        f.append("Host", "b");
        assert_eq!(f.get("host"), Some("b"));
        assert!(e.removes("X-A") && e.removes("host") && !e.removes("x-b"));
        assert_eq!(e.added().collect::<Vec<_>>(), [("x-a", "4"), ("host", "b")]);
    }
}
