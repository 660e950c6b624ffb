//! Where things are in a zerolab document (a cluster file, a job file, or a job's
//! ZeroCloud JSON, which YAML reads too): a map from YAML paths (`nodes[2].address`) to
//! line and column, for the errors serde cannot place.
//!
//! serde_yaml reports a location for what it rejects itself (syntax, types, unknown and
//! missing fields), but a typed [`ClusterFile`](super::schema::ClusterFile) carries no
//! spans, so the semantic checks (a duplicate node name, an address outside the subnet)
//! would have nothing to point at. Rather than guessing from the text (searching for
//! `name:` lines breaks on flow mappings, quoting, comments and anchors), the file is
//! parsed once more by a real YAML parser (`saphyr-parser`, pure Rust, events with spans)
//! and every mapping key and sequence item is recorded under its path. The checks then
//! speak in paths only, and [`SourceMap::value`] turns a path into a location.
//!
//! Robustness: a lookup that misses (the value came from an alias, or the two parsers
//! disagree on an exotic document) falls back to the nearest recorded ancestor, and
//! finally to the start of the file; a location is always produced and is never worse
//! than the enclosing node. Lines and columns are 1-based and count characters, like
//! serde_yaml's.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, Span};

/// A 1-based line and column (in characters) in a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, counted in characters.
    pub column: usize,
}

impl Location {
    /// The start of the file, where errors about the whole document point.
    pub const START: Location = Location { line: 1, column: 1 };
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One step of a [`YamlPath`]: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A key of a mapping.
    Key(String),
    /// An index into a sequence, from 0.
    Index(usize),
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Key(key) => f.write_str(key),
            Segment::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path to a node of the document, written as serde_yaml writes them:
/// `nodes[2].labels.zone`. The empty path is the document itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    /// The document root.
    pub fn root() -> YamlPath {
        YamlPath(Vec::new())
    }

    /// This path followed by the mapping key `key`.
    pub fn key(&self, key: &str) -> YamlPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        YamlPath(segments)
    }

    /// This path followed by the sequence index `index`.
    pub fn index(&self, index: usize) -> YamlPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        YamlPath(segments)
    }

    /// Parses a path as [`Display`](fmt::Display) writes it (`nodes[2].labels`); the
    /// empty string and `.` are the root. Keys holding `.` or `[` cannot be told apart
    /// and come out split, which at worst makes a lookup fall back to an ancestor.
    pub fn parse(text: &str) -> YamlPath {
        let mut segments = Vec::new();
        for part in text.split('.').filter(|part| !part.is_empty()) {
            let mut pieces = part.split('[');
            if let Some(key) = pieces.next().filter(|key| !key.is_empty()) {
                segments.push(Segment::Key(key.to_owned()));
            }
            for piece in pieces {
                match piece.strip_suffix(']').and_then(|index| index.parse().ok()) {
                    Some(index) => segments.push(Segment::Index(index)),
                    None => segments.push(Segment::Key(piece.to_owned())),
                }
            }
        }
        YamlPath(segments)
    }

    /// The enclosing path, or `None` for the root.
    pub fn parent(&self) -> Option<YamlPath> {
        let (_, rest) = self.0.split_last()?;
        Some(YamlPath(rest.to_vec()))
    }

    /// The steps of the path, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(".");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Where one path's key and value were written.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The mapping key (`address:`), or the value itself for sequence items.
    key: Location,
    /// The value (`10.77.0.5`), or the first key of a block mapping.
    value: Location,
}

/// Locations of every key and sequence item of a YAML document, by path.
#[derive(Debug, Default)]
pub struct SourceMap {
    entries: HashMap<YamlPath, Entry>,
    /// Keys written twice in one mapping (the second occurrence), in document order.
    duplicates: Vec<(YamlPath, Location)>,
    /// Whether the file holds a document at all (not empty, not only comments).
    has_document: bool,
}

/// The parser's state for one open collection.
enum Frame {
    Mapping {
        path: YamlPath,
        pending_key: Option<(String, Location)>,
    },
    Sequence {
        path: YamlPath,
        next: usize,
    },
    /// A collection used as a mapping key: skipped, nothing inside it is addressable.
    Skipped,
}

impl SourceMap {
    /// Records the locations in `text`'s first document. A parse error ends the map
    /// where it occurred: what was recorded before stays usable.
    pub fn parse(text: &str) -> SourceMap {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            match event {
                Event::DocumentStart(_) if map.has_document => break,
                Event::DocumentStart(_) => map.has_document = true,
                Event::Scalar(value, ..) => {
                    map.node(&mut stack, span, Some(value.into_owned()));
                }
                Event::Alias(_) => {
                    map.node(&mut stack, span, None);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = map.node(&mut stack, span, None);
                    stack.push(match (path, event) {
                        (Some(path), Event::MappingStart(..)) => Frame::Mapping { path, pending_key: None },
                        (Some(path), _) => Frame::Sequence { path, next: 0 },
                        (None, _) => Frame::Skipped,
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        map
    }

    /// Handles one node (scalar, alias or collection start) at `span`: records it as a
    /// value, or as a pending key when the enclosing mapping expects one. Returns the
    /// node's path when it is a value (`None` for keys and skipped nodes).
    fn node(&mut self, stack: &mut [Frame], span: Span, scalar: Option<String>) -> Option<YamlPath> {
        let here = location(span);
        match stack.last_mut() {
            None => {
                self.entries.entry(YamlPath::root()).or_insert(Entry { key: here, value: here });
                Some(YamlPath::root())
            }
            Some(Frame::Skipped) => None,
            Some(Frame::Sequence { path, next }) => {
                let item = path.index(*next);
                *next += 1;
                self.entries.insert(item.clone(), Entry { key: here, value: here });
                Some(item)
            }
            Some(Frame::Mapping { path, pending_key }) => match pending_key.take() {
                Some((key, key_location)) => {
                    let item = path.key(&key);
                    if self.entries.contains_key(&item) {
                        self.duplicates.push((item.clone(), key_location));
                        return None;
                    }
                    self.entries.insert(item.clone(), Entry { key: key_location, value: here });
                    Some(item)
                }
                None => {
                    // A complex key (a collection) gets a placeholder name nothing refers to.
                    *pending_key = Some((scalar.unwrap_or_else(|| "?".to_owned()), here));
                    None
                }
            },
        }
    }

    /// Whether the text holds a YAML document (an empty file or one with only comments
    /// holds none).
    pub fn has_document(&self) -> bool {
        self.has_document
    }

    /// Where the value at `path` starts, or its nearest recorded ancestor's.
    pub fn value(&self, path: &YamlPath) -> Location {
        self.lookup(path).map_or(Location::START, |entry| entry.value)
    }

    /// Where the key of `path` is written (for a sequence item: the item), or its
    /// nearest recorded ancestor's.
    pub fn key(&self, path: &YamlPath) -> Location {
        self.lookup(path).map_or(Location::START, |entry| entry.key)
    }

    /// The first key written twice in one mapping: its path and its second occurrence.
    pub fn first_duplicate(&self) -> Option<(&YamlPath, Location)> {
        self.duplicates.first().map(|(path, location)| (path, *location))
    }

    fn lookup(&self, path: &YamlPath) -> Option<&Entry> {
        let mut path = path.clone();
        loop {
            if let Some(entry) = self.entries.get(&path) {
                return Some(entry);
            }
            path = path.parent()?;
        }
    }
}

fn location(span: Span) -> Location {
    Location { line: span.start.line(), column: span.start.col() + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
name: demo   # a comment
nodes:
  - name: a
    labels: {zone: \"x\", rack: 2}
  - &second
    name: b
    address: 10.0.0.5
  - *second
";

    fn path(steps: &[&str]) -> YamlPath {
        steps.iter().fold(YamlPath::root(), |path, step| match step.parse() {
            Ok(index) => path.index(index),
            Err(_) => path.key(step),
        })
    }

    #[test]
    fn finds_keys_and_values_of_block_and_flow_nodes() {
        let map = SourceMap::parse(TEXT);
        // (path, key line:col, value line:col)
        type Case = (&'static [&'static str], (usize, usize), (usize, usize));
        let cases: &[Case] = &[
            (&["name"], (1, 1), (1, 7)),
            (&["nodes", "0", "name"], (3, 5), (3, 11)),
            (&["nodes", "0", "labels", "zone"], (4, 14), (4, 20)),
            (&["nodes", "0", "labels", "rack"], (4, 25), (4, 31)),
            (&["nodes", "1", "address"], (7, 5), (7, 14)),
            (&["nodes", "2"], (8, 5), (8, 5)),
        ];
        for (steps, key, value) in cases {
            let path = path(steps);
            let loc = |(line, column): (usize, usize)| Location { line, column };
            assert_eq!(map.key(&path), loc(*key), "key of {path}");
            assert_eq!(map.value(&path), loc(*value), "value of {path}");
        }
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let map = SourceMap::parse(TEXT);
        // nodes[2] is an alias: nothing inside it is recorded, the alias is.
        assert_eq!(map.value(&path(&["nodes", "2", "address"])), Location { line: 8, column: 5 });
        assert_eq!(map.value(&path(&["missing", "deeper"])), Location { line: 1, column: 1 });
    }

    #[test]
    fn keeps_what_was_recorded_before_a_syntax_error() {
        let map = SourceMap::parse("name: demo\nnodes: [a\n");
        assert_eq!(map.value(&path(&["name"])), Location { line: 1, column: 7 });
        assert_eq!(map.value(&path(&["nodes", "0"])), Location { line: 2, column: 9 });
    }

    #[test]
    fn records_duplicate_keys() {
        let map = SourceMap::parse("name: a\nnodes: []\nname: b\n");
        let (path, location) = map.first_duplicate().expect("duplicate recorded");
        assert_eq!((path.to_string(), location), ("name".to_owned(), Location { line: 3, column: 1 }));
    }

    #[test]
    fn an_empty_or_comment_only_file_has_no_document() {
        assert!(!SourceMap::parse("").has_document());
        assert!(!SourceMap::parse("# nothing\n").has_document());
        assert!(SourceMap::parse("a: 1\n").has_document());
    }

    #[test]
    fn displays_paths_like_serde_yaml() {
        assert_eq!(path(&["nodes", "2", "labels", "zone"]).to_string(), "nodes[2].labels.zone");
        assert_eq!(YamlPath::root().to_string(), ".");
    }

    #[test]
    fn parses_paths_it_displays() {
        for text in ["nodes[2].labels.zone", "name", "nodes[0]", "a[1][2].b"] {
            assert_eq!(YamlPath::parse(text).to_string(), text);
        }
        assert_eq!(YamlPath::parse(""), YamlPath::root());
        assert_eq!(YamlPath::parse("."), YamlPath::root());
    }
}
