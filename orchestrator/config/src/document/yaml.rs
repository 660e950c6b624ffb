//! The one parse of a document: `saphyr-parser`'s events into a tree of [`Node`]s, each
//! with the place it was written, and the [`SourceMap`] of every key and item by path,
//! recorded on the way. Values (read into the schema by [`de`](super::de)) and
//! locations (for the semantic checks) come from this same parse.
//!
//! What the tree keeps is what reading needs: scalars with their text and whether they
//! are plain (only plain scalars are numbers, booleans or null), sequences, and mappings
//! as ordered key-value pairs. Aliases are resolved here by copying the anchored node,
//! every copy placed at the alias (the place a reader of the file can see). A key
//! written twice in one mapping, a second document and nesting deeper than
//! [`MAX_DEPTH`] end the parse, as a syntax error does.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput};

use super::location::{Location, SourceMap, YamlPath};

/// How deep collections may nest (serde_yaml's limit, kept).
pub(crate) const MAX_DEPTH: usize = 128;

/// One node of the document and where it starts.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// Where the node starts (for a block mapping: its first key).
    pub location: Location,
    /// What it holds.
    pub value: Value,
}

/// What a node holds.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// A scalar's text; `plain` when unquoted and untagged (only those resolve to null,
    /// booleans and numbers).
    Scalar { text: String, plain: bool },
    /// A sequence's items.
    Sequence(Vec<Node>),
    /// A mapping's entries, in file order.
    Mapping(Vec<(Node, Node)>),
}

/// Why the text is not one well-formed YAML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The parser's own message, in libyaml's words (`did not find expected ...`).
    Syntax(String),
    /// A second document follows the first.
    MultipleDocuments,
    /// A key written twice in one mapping: its path (at the second occurrence).
    DuplicateKey(YamlPath),
    /// Collections nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// The parsed document: its root (`None` when the text holds no document) and where
/// everything in it is, or why it does not parse (with what was recorded before).
pub(crate) struct Parsed {
    pub root: Result<Option<Node>, (Location, ParseError)>,
    pub map: SourceMap,
}

/// Parses `text`, once.
pub(crate) fn parse(text: &str) -> Parsed {
    let mut builder =
        Builder { events: Parser::new_from_str(text), anchors: HashMap::new(), map: SourceMap::default() };
    let root = builder.document();
    Parsed { root, map: builder.map }
}

type Fail = (Location, ParseError);

struct Builder<'t> {
    events: Parser<'t, StrInput<'t>>,
    anchors: HashMap<usize, Node>,
    map: SourceMap,
}

impl<'t> Builder<'t> {
    fn next(&mut self) -> Result<(Event<'t>, Span), Fail> {
        match self.events.next() {
            Some(Ok(event)) => Ok(event),
            Some(Err(err)) => Err(syntax(&err)),
            None => Err((Location::START, ParseError::Syntax("unexpected end of stream".to_owned()))),
        }
    }

    fn document(&mut self) -> Result<Option<Node>, Fail> {
        let mut root = None;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart(_) if root.is_some() => {
                    return Err((Location::START, ParseError::MultipleDocuments))
                }
                Event::DocumentStart(_) => {
                    self.map.has_document = true;
                    let (event, span) = self.next()?;
                    let node = self.node(event, span, Some(&YamlPath::root()), 0)?;
                    self.map.record(YamlPath::root(), node.location, node.location);
                    root = Some(node);
                }
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                _ => return Err((location(span), ParseError::Syntax("unexpected event".to_owned()))),
            }
        }
    }

    /// Builds the node that starts with `event`, recording it (and everything in it)
    /// in the source map under `path`; `None` for a mapping key's insides, which no
    /// path reaches.
    fn node(&mut self, event: Event<'t>, span: Span, path: Option<&YamlPath>, depth: usize) -> Result<Node, Fail> {
        let here = location(span);
        if depth > MAX_DEPTH {
            return Err((here, ParseError::TooDeep));
        }
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain && tag.is_none();
                (Value::Scalar { text: text.into_owned(), plain }, anchor)
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id) else {
                    return Err((here, ParseError::Syntax("found unknown anchor".to_owned())));
                };
                return Ok(relocated(node.clone(), here));
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if let Event::SequenceEnd = event {
                        break;
                    }
                    let item_path = path.map(|path| path.index(items.len()));
                    let item = self.node(event, span, item_path.as_ref(), depth + 1)?;
                    if let Some(item_path) = item_path {
                        self.map.record(item_path, item.location, item.location);
                    }
                    items.push(item);
                }
                (Value::Sequence(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                let mut seen = HashSet::new();
                loop {
                    let (event, span) = self.next()?;
                    if let Event::MappingEnd = event {
                        break;
                    }
                    let key = self.node(event, span, None, depth + 1)?;
                    let value_path = match (&key.value, path) {
                        (Value::Scalar { text, .. }, Some(path)) => {
                            let value_path = path.key(text);
                            if !seen.insert(text.clone()) {
                                return Err((key.location, ParseError::DuplicateKey(value_path)));
                            }
                            Some(value_path)
                        }
                        _ => None,
                    };
                    let (event, span) = self.next()?;
                    let value = self.node(event, span, value_path.as_ref(), depth + 1)?;
                    if let Some(value_path) = value_path {
                        self.map.record(value_path, key.location, value.location);
                    }
                    entries.push((key, value));
                }
                (Value::Mapping(entries), anchor)
            }
            _ => return Err((here, ParseError::Syntax("did not find expected node content".to_owned()))),
        };
        let node = Node { location: here, value };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }
}

/// `node` with itself and everything in it placed at `at` (an alias's copy).
fn relocated(mut node: Node, at: Location) -> Node {
    node.location = at;
    node.value = match node.value {
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(|item| relocated(item, at)).collect()),
        Value::Mapping(entries) => {
            Value::Mapping(entries.into_iter().map(|(key, value)| (relocated(key, at), relocated(value, at))).collect())
        }
        scalar => scalar,
    };
    node
}

/// A parser error in libyaml's words, which the messages have always used: the
/// `while parsing ...` context dropped, `expected` said as `did not find expected`.
fn syntax(err: &ScanError) -> Fail {
    let info = err.info();
    let problem = match info.split_once(", ") {
        Some((context, rest)) if context.starts_with("while ") => rest,
        _ => info,
    };
    let problem = match problem.strip_prefix("expected ") {
        Some(rest) => format!("did not find expected {rest}"),
        None => problem.to_owned(),
    };
    let marker = err.marker();
    (Location { line: marker.line().max(1), column: marker.col() + 1 }, ParseError::Syntax(problem))
}

fn location(span: Span) -> Location {
    Location { line: span.start.line(), column: span.start.col() + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(text: &str) -> (String, ParseError) {
        let (location, error) = parse(text).root.expect_err("fails");
        (location.to_string(), error)
    }

    #[test]
    fn says_syntax_errors_in_libyaml_words() {
        let syntax = |message: &str| ParseError::Syntax(message.to_owned());
        assert_eq!(failure("a: [b\n"), ("2:1".to_owned(), syntax("did not find expected ',' or ']'")));
        assert_eq!(
            failure("a: 1\n b: 2\n"),
            ("2:3".to_owned(), syntax("mapping values are not allowed in this context"))
        );
        assert_eq!(failure("a: *x\n").1, syntax("found unknown anchor"));
    }

    #[test]
    fn refuses_duplicate_keys_second_documents_and_deep_nesting() {
        assert_eq!(
            failure("a: 1\nb: 2\na: 3\n"),
            ("3:1".to_owned(), ParseError::DuplicateKey(YamlPath::root().key("a")))
        );
        assert_eq!(failure("a: 1\n---\nb: 2\n").1, ParseError::MultipleDocuments);
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
        assert_eq!(failure(&deep).1, ParseError::TooDeep);
    }

    #[test]
    fn copies_aliases_to_where_they_are_used() {
        let parsed = parse("a: &x {b: 1}\nc: *x\n");
        let Some(Node { value: Value::Mapping(entries), .. }) = parsed.root.unwrap() else { panic!("a mapping") };
        let Value::Mapping(copy) = &entries[1].1.value else { panic!("the alias is a mapping") };
        assert_eq!(copy[0].1.location, Location { line: 2, column: 4 });
    }

    #[test]
    fn an_empty_or_comment_only_text_has_no_document() {
        assert!(parse("").root.unwrap().is_none());
        assert!(parse("# nothing\n").root.unwrap().is_none());
        assert!(!parse("# nothing\n").map.has_document());
    }
}
