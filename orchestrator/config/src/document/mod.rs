//! What every zerolab document shares, so that cluster files, job files and
//! `kind: Workshop` are siblings over one machinery: the one parse of the text
//! ([`Document`]: its tree and [`SourceMap`]), reading it into a schema through the
//! stages in `read`, the [`Checker`] semantic checks report to, and [`Diagnostics`]
//! that print `FILE:LINE:COL: what is wrong; what is expected`.
//!
//! The kinds this build reads are [`DocumentKind`]; what can go wrong before a
//! document's own checks run is [`ReadProblem`], which each document's own `Problem`
//! wraps. The only thing that differs between documents while reading is how messages
//! name them (`the cluster file`, `kind: Job`), which [`DocumentKind`] supplies.

mod check;
mod de;
mod diagnostic;
mod location;
pub(crate) mod read;
mod yaml;

pub use self::check::Checker;
pub use self::diagnostic::{Diagnostic, Diagnostics, LoadError};
pub use self::location::{Location, Segment, SourceMap, YamlPath};
pub use self::read::TypeMeta;

/// The one `apiVersion` this build reads.
pub const API_VERSION: &str = "zerolab/v1";

/// A document's text, parsed once: the tree its schema is read from and where
/// everything in it is.
pub struct Document {
    parsed: yaml::Parsed,
}

impl Document {
    /// Parses `text` (a byte-order mark is not content: strip it first).
    pub fn parse(text: &str) -> Document {
        Document { parsed: yaml::parse(text) }
    }

    /// Where every key and item is, for the semantic checks.
    pub fn map(&self) -> &SourceMap {
        &self.parsed.map
    }
}

/// The known name closest to `name`, when close enough to be a likely typo.
pub fn closest(name: &str, known: &[String]) -> Option<String> {
    let name = name.to_ascii_lowercase();
    known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(&name, &candidate.to_ascii_lowercase()), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.clone())
}

use std::fmt;

/// A kind of zerolab document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// `kind: Cluster`: a lab ([`Cluster`](crate::cluster::Cluster)).
    Cluster,
    /// `kind: Job`: guest groups to run on a lab ([`Job`](crate::job::Job)).
    Job,
    /// `kind: Workshop`: a lab per attendee ([`Workshop`](crate::workshop::Workshop)).
    Workshop,
}

impl DocumentKind {
    /// The `kind:` value that selects it.
    pub fn kind(self) -> &'static str {
        match self {
            DocumentKind::Cluster => crate::cluster::schema::KIND,
            DocumentKind::Job => crate::job::schema::KIND,
            DocumentKind::Workshop => crate::workshop::schema::KIND,
        }
    }

    /// How messages name a file of this kind.
    pub fn noun(self) -> &'static str {
        match self {
            DocumentKind::Cluster => "cluster file",
            DocumentKind::Job => "job file",
            DocumentKind::Workshop => "workshop file",
        }
    }

    /// What to write for a missing required top-level `field`, when more than `field:`
    /// can be said.
    fn missing_hint(self, field: &str) -> Option<String> {
        match (self, field) {
            (_, "apiVersion") => Some(format!("`apiVersion: {API_VERSION}`")),
            (_, "kind") => Some(format!("`kind: {}`", self.kind())),
            (DocumentKind::Cluster, "nodes") => Some("a `nodes:` list with at least one node".to_owned()),
            (DocumentKind::Job, "groups") => Some("a `groups:` list with at least one group".to_owned()),
            (DocumentKind::Workshop, "lab") => Some("`lab: FILE` (a cluster file) or the lab inline".to_owned()),
            (DocumentKind::Workshop, "steps") => Some("a `steps:` list with at least one step".to_owned()),
            _ => None,
        }
    }
}

/// Prints as messages name it: `cluster file`, `job file`.
impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

/// Something wrong found while reading a document's text into its schema: syntax, the
/// version header, or what serde rejects. Reading stops at the first one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadProblem {
    /// The file holds no YAML document.
    #[error("the file is empty; expected a {document} starting with `apiVersion: {API_VERSION}`")]
    EmptyFile { document: DocumentKind },
    /// The file holds several YAML documents.
    #[error("the file holds more than one YAML document; expected a single {} document", document.kind().to_lowercase())]
    MultipleDocuments { document: DocumentKind },
    /// The YAML parser refused the text.
    #[error("malformed YAML: {message}; expected well-formed YAML (check indentation, `:` and quotes)")]
    Syntax { message: String },
    /// `apiVersion` names a version this build does not read.
    #[error("unsupported apiVersion `{found}`; expected `{API_VERSION}`")]
    UnsupportedApiVersion { found: String },
    /// `kind` names a document this build does not read here.
    #[error("unsupported kind `{found}`; expected `{}`", document.kind())]
    UnsupportedKind { found: String, document: DocumentKind },
    /// A field no schema has.
    #[error("unknown field `{field}` in {within}; {}", unknown_field_hint(suggestion.as_deref(), known))]
    UnknownField { field: String, within: String, suggestion: Option<String>, known: Vec<String> },
    /// A value outside a fixed list (the provider, a placement strategy).
    #[error("unknown {what} `{found}`; expected one of {}{}", list(known), did_you_mean(suggestion.as_deref()))]
    UnknownValue { what: String, found: String, suggestion: Option<String>, known: Vec<String> },
    /// A required field is absent.
    #[error("missing field `{field}` in {within}; expected {}", missing_field_hint(*document, field))]
    MissingField { field: String, within: String, document: DocumentKind },
    /// A field written twice in one mapping.
    #[error("duplicate field `{field}` in {within}; expected each field once")]
    DuplicateField { field: String, within: String },
    /// A value of the wrong type (serde's message, already in `what; expected` form).
    #[error("{message}")]
    Invalid { message: String },
}

/// `` `a`, `b`, `c` ``.
pub(crate) fn list(items: &[String]) -> String {
    items.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ")
}

/// ``  (did you mean `x`?)`` or nothing.
pub(crate) fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

fn unknown_field_hint(suggestion: Option<&str>, known: &[String]) -> String {
    match (suggestion, known) {
        (Some(suggestion), _) => format!("did you mean `{suggestion}`?"),
        (None, []) => "expected no fields here".to_owned(),
        (None, known) => format!("expected one of {}", list(known)),
    }
}

fn missing_field_hint(document: DocumentKind, field: &str) -> String {
    document.missing_hint(field).unwrap_or_else(|| format!("`{field}:` here"))
}
