//! Reading a zerolab document into its schema (a cluster file's, a job file's): the
//! parsed tree, the version header, then the typed schema, each stage turning what it
//! finds into a located [`ReadProblem`]. Every document shares it; [`DocumentKind`] is
//! all that differs.
//!
//! The stages, in order, and why:
//! 1. the one parse ([`Document`]): syntax errors, a second document, a key written
//!    twice, and an empty file stop here;
//! 2. [`TypeMeta`] alone, so a file for another `apiVersion` or `kind` gets that one
//!    error instead of a list of unknown fields;
//! 3. the typed schema, which stops at the first error (serde cannot go on after one);
//!    semantic checks run only on a file that reads.
//!
//! serde's findings come as data (`de`): an unknown field or value gets a did-you-mean
//! from the names serde lists, a missing field a hint; other messages are serde's,
//! reshaped (`, expected` becomes `; expected`, Rust type names become words, the path
//! goes in front).

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::de::{self, ErrorKind};
use super::yaml::{Node, ParseError, Value};
use super::{closest, Document, DocumentKind, Location, ReadProblem, SourceMap, YamlPath, API_VERSION};
use crate::document::Segment;

/// The version header every zerolab document starts with, read before the rest.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a zerolab document (a mapping with apiVersion and kind)")]
pub struct TypeMeta {
    /// `apiVersion`: `zerolab/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: Option<String>,
    /// `kind`: `Cluster` or `Job`.
    pub kind: Option<String>,
}

/// Reads `document` into the schema `T` of a `kind` with the zerolab header
/// (`apiVersion`, `kind`): the three stages above.
pub(crate) fn read_document<T: DeserializeOwned>(
    document: &Document,
    kind: DocumentKind,
) -> Result<T, (Location, ReadProblem)> {
    let root = root(document, kind)?;
    // Only a mapping can hold the header; anything else gets the schema's own
    // "expected a cluster file (a mapping ...)" (or job file) from stage 3.
    if let Value::Mapping(_) = root.value {
        check_header(root, document.map(), kind)?;
    }
    typed(root, document.map(), kind)
}

/// Stages 1 and 3 only: for a job's ZeroCloud JSON, which YAML reads too and which has
/// no header.
pub(crate) fn read_typed<T: DeserializeOwned>(
    document: &Document,
    kind: DocumentKind,
) -> Result<T, (Location, ReadProblem)> {
    typed(root(document, kind)?, document.map(), kind)
}

/// The `kind:` of a document's header, if it has one: which document a file is,
/// before reading it as one.
pub(crate) fn kind_of(text: &str) -> Option<String> {
    let parsed = Document::parse(text);
    let root = parsed.parsed.root.ok()??;
    de::from_node::<TypeMeta>(&root, YamlPath::root()).ok()?.kind
}

/// Stage 1: the document's root, or why there is none.
fn root(document: &Document, kind: DocumentKind) -> Result<&Node, (Location, ReadProblem)> {
    match &document.parsed.root {
        Ok(Some(root)) => Ok(root),
        Ok(None) => Err((Location::START, ReadProblem::EmptyFile { document: kind })),
        Err((location, error)) => Err((*location, parse_problem(error, kind))),
    }
}

fn parse_problem(error: &ParseError, kind: DocumentKind) -> ReadProblem {
    match error {
        ParseError::Syntax(message) => ReadProblem::Syntax { message: message.clone() },
        ParseError::MultipleDocuments => ReadProblem::MultipleDocuments { document: kind },
        ParseError::TooDeep => ReadProblem::Syntax { message: "recursion limit exceeded".to_owned() },
        ParseError::DuplicateKey(path) => {
            let field = path.segments().last().map(ToString::to_string).unwrap_or_default();
            ReadProblem::DuplicateField { field, within: within(&path.parent().unwrap_or_default(), kind) }
        }
    }
}

/// Stage 2: `apiVersion` and `kind`, before anything else is looked at.
fn check_header(root: &Node, map: &SourceMap, document: DocumentKind) -> Result<(), (Location, ReadProblem)> {
    let meta: TypeMeta = typed(root, map, document)?;
    let root = YamlPath::root();
    let missing = |field: &str| {
        let within = within(&root, document);
        (Location::START, ReadProblem::MissingField { field: field.to_owned(), within, document })
    };
    match meta.api_version {
        None => return Err(missing("apiVersion")),
        Some(found) if found != API_VERSION => {
            return Err((map.value(&root.key("apiVersion")), ReadProblem::UnsupportedApiVersion { found }))
        }
        Some(_) => {}
    }
    match meta.kind {
        None => Err(missing("kind")),
        Some(found) if found != document.kind() => {
            Err((map.value(&root.key("kind")), ReadProblem::UnsupportedKind { found, document }))
        }
        Some(_) => Ok(()),
    }
}

/// Stage 3: the typed schema.
fn typed<T: DeserializeOwned>(
    root: &Node,
    map: &SourceMap,
    document: DocumentKind,
) -> Result<T, (Location, ReadProblem)> {
    de::from_node(root, YamlPath::root()).map_err(|err| schema_problem(err, map, document))
}

/// What reading into the typed schema found, placed and worded.
fn schema_problem(err: de::Error, map: &SourceMap, document: DocumentKind) -> (Location, ReadProblem) {
    let (path, location) = err.place.unwrap_or_else(|| (YamlPath::root(), map.value(&YamlPath::root())));
    let problem = match err.kind {
        ErrorKind::UnknownField { field, known } => {
            let suggestion = closest(&field, &known);
            ReadProblem::UnknownField { field, within: within(&path, document), suggestion, known }
        }
        ErrorKind::UnknownVariant { found, known } => {
            let suggestion = closest(&found, &known);
            // Named by its field (`unknown strategy`), the location saying which one.
            let what = match path.segments().last() {
                Some(Segment::Key(field)) => field.clone(),
                _ => within(&path, document),
            };
            ReadProblem::UnknownValue { what, found, suggestion, known }
        }
        ErrorKind::MissingField { field } => {
            ReadProblem::MissingField { field, within: within(&path, document), document }
        }
        ErrorKind::Message(message) => {
            let message = plain_types(&message.replacen(", expected ", "; expected ", 1));
            let message = if path.segments().is_empty() { message } else { format!("{path}: {message}") };
            ReadProblem::Invalid { message }
        }
    };
    (location, problem)
}

/// How messages name the mapping a field is in.
fn within(path: &YamlPath, document: DocumentKind) -> String {
    if path.segments().is_empty() {
        format!("the {}", document.noun())
    } else {
        path.to_string()
    }
}

/// Replaces Rust integer type names in serde's "expected" with words.
fn plain_types(message: &str) -> String {
    const TYPES: [(&str, &str); 3] = [
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number from 0 to 4294967295"),
        ("expected u64", "expected a whole number"),
    ];
    for (rust, words) in TYPES {
        if let Some(head) = message.strip_suffix(rust) {
            return format!("{head}{words}");
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        match read_document::<crate::cluster::schema::ClusterFile>(&Document::parse(text), DocumentKind::Cluster) {
            Ok(_) => "ok".to_owned(),
            Err((location, problem)) => format!("{location}: {problem}"),
        }
    }

    const HEAD: &str = "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\n";

    #[test]
    fn places_and_explains_what_serde_rejects() {
        let cases: &[(&str, String, &str)] = &[
            ("empty file", String::new(), "1:1: the file is empty; expected a cluster file starting with `apiVersion: zerolab/v1`"),
            ("only comments", "# nothing\n".into(), "1:1: the file is empty; expected a cluster file starting with `apiVersion: zerolab/v1`"),
            (
                "bad indentation",
                "apiVersion: zerolab/v1\n name: x\n".into(),
                "2:6: malformed YAML: mapping values are not allowed in this context; expected well-formed YAML (check indentation, `:` and quotes)",
            ),
            (
                "two documents",
                format!("{HEAD}nodes: [{{name: a}}]\n---\n{HEAD}"),
                "1:1: the file holds more than one YAML document; expected a single cluster document",
            ),
            (
                "not a mapping",
                "- a\n".into(),
                "1:1: invalid type: sequence; expected a cluster file (a mapping with apiVersion, kind, name, provider and nodes)",
            ),
            ("missing apiVersion", "kind: Cluster\n".into(), "1:1: missing field `apiVersion` in the cluster file; expected `apiVersion: zerolab/v1`"),
            ("wrong apiVersion", "apiVersion: zerolab/v2\nkind: Cluster\n".into(), "1:13: unsupported apiVersion `zerolab/v2`; expected `zerolab/v1`"),
            ("wrong kind", "apiVersion: zerolab/v1\nkind: Lab\n".into(), "2:7: unsupported kind `Lab`; expected `Cluster`"),
            ("missing kind", "apiVersion: zerolab/v1\n".into(), "1:1: missing field `kind` in the cluster file; expected `kind: Cluster`"),
            (
                "unknown field with a close match",
                format!("{HEAD}nodes:\n  - name: a\n    nmae: b\n"),
                "6:5: unknown field `nmae` in nodes[0]; did you mean `name`?",
            ),
            (
                "unknown field without a close match",
                format!("{HEAD}network:\n  flavour: x\nnodes: []\n"),
                "5:3: unknown field `flavour` in network; expected one of `subnet`",
            ),
            (
                "unknown top-level field",
                format!("{HEAD}provder: ssh\nnodes: []\n"),
                "4:1: unknown field `provder` in the cluster file; did you mean `provider`?",
            ),
            (
                "wrong type",
                format!("{HEAD}nodes:\n  - name: a\n    count: three\n"),
                "6:12: nodes[0].count: invalid type: string \"three\"; expected a whole number from 0 to 4294967295",
            ),
            (
                "port out of range",
                format!("{HEAD}defaults:\n  port: 70000\nnodes: []\n"),
                "5:9: defaults.port: invalid value: integer `70000`; expected a whole number from 0 to 65535",
            ),
            ("missing node name", format!("{HEAD}nodes:\n  - count: 2\n"), "5:5: missing field `name` in nodes[0]; expected `name:` here"),
            (
                "missing nodes",
                HEAD.into(),
                "1:1: missing field `nodes` in the cluster file; expected a `nodes:` list with at least one node",
            ),
            ("duplicate field", format!("{HEAD}nodes: []\nname: again\n"), "5:1: duplicate field `name` in the cluster file; expected each field once"),
            (
                "duplicate nested field",
                format!("{HEAD}nodes:\n  - name: a\n    count: 2\n    name: b\n"),
                "7:5: duplicate field `name` in nodes[0]; expected each field once",
            ),
        ];
        for (what, text, want) in cases {
            assert_eq!(problem(text), *want, "{what}");
        }
    }

    #[test]
    fn suggests_only_close_names() {
        let known: Vec<String> = ["name", "count", "address", "memory_mb"].map(String::from).to_vec();
        assert_eq!(closest("nmae", &known).as_deref(), Some("name"));
        assert_eq!(closest("adress", &known).as_deref(), Some("address"));
        assert_eq!(closest("memory", &known).as_deref(), Some("memory_mb"));
        assert_eq!(closest("zone", &known), None);
    }
}
