//! A YAML (and therefore JSON) document as a tree of nodes that remember
//! where in the file they came from, so every later error can point at a
//! line and column.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Upper bound on nodes after alias expansion: stops "billion laughs".
const MAX_NODES: usize = 1_000_000;
/// Upper bound on nesting depth.
const MAX_DEPTH: usize = 128;

/// A position in the source: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Which source the node came from (index into the file-name table).
    pub src: usize,
}

impl Mark {
    fn from_span(s: Span, src: usize) -> Self {
        Mark {
            line: s.start.line(),
            col: s.start.col() + 1,
            src,
        }
    }
}

/// One node of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where it starts.
    pub mark: Mark,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false for quoted and block scalars.
    Scalar {
        /// The text.
        value: String,
        /// Unquoted (so `null`, `true`, `80` take their YAML meaning).
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with scalar keys, in document order.
    Map(Vec<Entry>),
}

/// A mapping entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key text.
    pub key: String,
    /// Where the key stands.
    pub key_mark: Mark,
    /// The value.
    pub value: Node,
}

impl Node {
    /// True for `~`, `null`, `Null`, `NULL` and the empty plain scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, plain: true }
            if value.is_empty() || value == "~" || value.eq_ignore_ascii_case("null"))
    }

    /// A short name of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a map",
        }
    }
}

/// A syntax error in the document.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where.
    pub mark: Mark,
    /// What.
    pub message: String,
}

/// Parses the first document of `text`. An empty document is an empty map.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    parse_source(text, 0)
}

/// Like [`parse`], tagging every mark with source index `src`.
pub fn parse_source(text: &str, src: usize) -> Result<Node, SyntaxError> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        anchors: Vec::new(),
        nodes: 0,
        src,
    };
    b.document()
}

/// Merges `over` into `base` the way protobuf's MergeFrom does (Envoy's
/// `--config-yaml`): maps merge key by key, lists append, scalars replace.
pub fn merge(base: &mut Node, over: Node) {
    match (&mut base.kind, over.kind) {
        (NodeKind::Map(b), NodeKind::Map(o)) => {
            for e in o {
                match b.iter_mut().find(|x| x.key == e.key) {
                    Some(x) => merge(&mut x.value, e.value),
                    None => b.push(e),
                }
            }
        }
        (NodeKind::Seq(b), NodeKind::Seq(o)) => b.extend(o),
        (_, kind) => {
            base.kind = kind;
            base.mark = over.mark;
        }
    }
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: Vec<(usize, Node)>,
    nodes: usize,
    src: usize,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Mark), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok((ev, span))) => Ok((ev, Mark::from_span(span, self.src))),
            Some(Err(e)) => Err(SyntaxError {
                mark: Mark {
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                    src: self.src,
                },
                message: e.info().to_string(),
            }),
            None => Err(SyntaxError {
                mark: Mark::default(),
                message: "unexpected end of input".into(),
            }),
        }
    }

    fn document(&mut self) -> Result<Node, SyntaxError> {
        loop {
            let (ev, mark) = self.next()?;
            match ev {
                Event::StreamStart | Event::Nothing => continue,
                Event::DocumentStart(_) => break,
                Event::StreamEnd => {
                    return Ok(Node {
                        kind: NodeKind::Map(Vec::new()),
                        mark,
                    })
                }
                _ => continue,
            }
        }
        let (ev, mark) = self.next()?;
        if matches!(ev, Event::DocumentEnd) {
            return Ok(Node {
                kind: NodeKind::Map(Vec::new()),
                mark,
            });
        }
        self.node(ev, mark, 0)
    }

    fn count(&mut self, mark: Mark) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                mark,
                message: format!("document too large (more than {MAX_NODES} nodes)"),
            });
        }
        Ok(())
    }

    fn node(&mut self, ev: Event<'a>, mark: Mark, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                mark,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        self.count(mark)?;
        let (node, anchor) = match ev {
            Event::Scalar(value, style, anchor, _tag) => (
                Node {
                    kind: NodeKind::Scalar {
                        value: value.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    mark,
                },
                anchor,
            ),
            Event::Alias(id) => {
                let Some((_, n)) = self.anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(SyntaxError {
                        mark,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                let mut n = n.clone();
                self.nodes += count_nodes(&n);
                self.count(mark)?;
                n.mark = mark;
                return Ok(n);
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, m) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, m, depth + 1)?);
                }
                (
                    Node {
                        kind: NodeKind::Seq(items),
                        mark,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<Entry> = Vec::new();
                loop {
                    let (ev, key_mark) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(ev, key_mark, depth + 1)?;
                    let NodeKind::Scalar { value: key, .. } = key.kind else {
                        return Err(SyntaxError {
                            mark: key_mark,
                            message: "a map key must be a scalar".into(),
                        });
                    };
                    // A repeated key: the last one wins, as in Envoy's loader.
                    entries.retain(|e| e.key != key);
                    let (ev, m) = self.next()?;
                    let value = self.node(ev, m, depth + 1)?;
                    entries.push(Entry {
                        key,
                        key_mark,
                        value,
                    });
                }
                (
                    Node {
                        kind: NodeKind::Map(entries),
                        mark,
                    },
                    anchor,
                )
            }
            other => {
                return Err(SyntaxError {
                    mark,
                    message: format!("unexpected YAML event {other:?}"),
                })
            }
        };
        if anchor != 0 {
            self.anchors.push((anchor, node.clone()));
        }
        Ok(node)
    }
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(v) => 1 + v.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(v) => 1 + v.iter().map(|e| count_nodes(&e.value)).sum::<usize>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_one_based() {
        let n = parse("a:\n  b: 1\n").unwrap();
        let NodeKind::Map(e) = &n.kind else { panic!() };
        let NodeKind::Map(inner) = &e[0].value.kind else {
            panic!()
        };
        assert_eq!(
            inner[0].key_mark,
            Mark {
                line: 2,
                col: 3,
                src: 0
            }
        );
    }

    #[test]
    fn json_is_yaml() {
        let n = parse(r#"{"a": [1, "x"], "b": null}"#).unwrap();
        let NodeKind::Map(e) = &n.kind else { panic!() };
        assert_eq!(e.len(), 2);
        assert!(e[1].value.is_null());
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let n = parse("a: 1\nb: 0\na: 2\n").unwrap();
        let NodeKind::Map(e) = &n.kind else { panic!() };
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].key, "a");
        assert_eq!(e[1].key_mark.line, 3);
        let NodeKind::Scalar { value, .. } = &e[1].value.kind else {
            panic!()
        };
        assert_eq!(value, "2");
    }

    #[test]
    fn aliases_expand_and_are_bounded() {
        let n = parse("x: &a {k: 1}\ny: *a\n").unwrap();
        let NodeKind::Map(e) = &n.kind else { panic!() };
        assert_eq!(e[0].value.kind, e[1].value.kind);
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&bomb).unwrap_err().message.contains("too large"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.mark.line >= 1, "{e:?}");
    }

    #[test]
    fn merge_like_protobuf() {
        let mut a = parse("a: {x: 1, l: [1]}\nb: 2\n").unwrap();
        merge(
            &mut a,
            parse_source("a: {y: 3, l: [2]}\nb: 4\n", 1).unwrap(),
        );
        let ctx = crate::decode::Ctx::new(vec!["f".into(), "g".into()], false);
        let j = crate::decode::Val::new(&ctx, &a).to_json();
        assert_eq!(
            j,
            serde_json::json!({"a": {"x": 1, "l": [1, 2], "y": 3}, "b": 4})
        );
    }

    #[test]
    fn empty_is_empty_map() {
        assert_eq!(parse("").unwrap().kind, NodeKind::Map(vec![]));
    }
}
