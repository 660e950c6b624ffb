//! Where things are in a zerolab document (a cluster file, a job file, or a job's
//! ZeroCloud JSON, which YAML reads too): a map from YAML paths (`nodes[2].address`) to
//! line and column.
//!
//! A typed schema (a [`ClusterFile`](crate::cluster::schema::ClusterFile)) carries no
//! spans, so the semantic checks (a duplicate node name, an address outside the subnet)
//! would have nothing to point at. Rather than guessing from the text, the one parse
//! of the document (`yaml`) records every mapping key and sequence item under its
//! path as it builds the tree the schema is read from. The checks then speak in paths
//! only, and [`SourceMap::value`] turns a path into a location.
//!
//! Robustness: a lookup that misses (a path the checks made up, or a key that is not a
//! plain string) falls back to the nearest recorded ancestor, and finally to the start
//! of the file; a location is always produced and is never worse than the enclosing
//! node. Lines and columns are 1-based and count characters.

use std::collections::HashMap;
use std::fmt;

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

/// A path to a node of the document, written as the messages write them:
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

/// Locations of every key and sequence item of a YAML document, by path; recorded by
/// the one parse ([`Document::parse`](super::Document::parse)).
#[derive(Debug, Default)]
pub struct SourceMap {
    entries: HashMap<YamlPath, Entry>,
    /// Whether the text holds a document at all (not empty, not only comments).
    pub(crate) has_document: bool,
}

impl SourceMap {
    /// Records that `path`'s key is at `key` and its value at `value`.
    pub(crate) fn record(&mut self, path: YamlPath, key: Location, value: Location) {
        self.entries.insert(path, Entry { key, value });
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

    fn map(text: &str) -> SourceMap {
        super::super::yaml::parse(text).map
    }

    fn path(steps: &[&str]) -> YamlPath {
        steps.iter().fold(YamlPath::root(), |path, step| match step.parse() {
            Ok(index) => path.index(index),
            Err(_) => path.key(step),
        })
    }

    #[test]
    fn finds_keys_and_values_of_block_and_flow_nodes() {
        let map = map(TEXT);
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
        let map = map(TEXT);
        // nodes[2] is an alias: what is inside it is placed at the alias.
        assert_eq!(map.value(&path(&["nodes", "2", "address"])), Location { line: 8, column: 5 });
        assert_eq!(map.value(&path(&["missing", "deeper"])), Location { line: 1, column: 1 });
    }

    #[test]
    fn displays_paths_as_messages_write_them() {
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
