//! Reading a zerolab document's text into its schema (a [`ClusterFile`], or a job
//! file's): YAML syntax, the version header, then the typed schema, each stage turning
//! serde_yaml's error into a located [`ReadProblem`]. Cluster and job files share it;
//! [`DocumentKind`] is all that differs.
//!
//! The stages, in order, and why:
//! 1. the text as an untyped YAML value, so a syntax error is told from a schema error
//!    by which stage failed rather than by guessing from the message;
//! 2. [`TypeMeta`] alone, so a file for another `apiVersion` or `kind` gets that one
//!    error instead of a list of unknown fields;
//! 3. the typed schema, which stops at the first error (serde cannot go on
//!    after one); semantic checks run only on a file that reads.
//!
//! serde_yaml's messages are kept but reshaped: the path prefix and the trailing
//! `at line L column C` move out (the location is printed in front), `, expected` becomes
//! `; expected`, Rust type names become words, and an unknown field or value gets a
//! did-you-mean from the list serde gives.

use serde::de::DeserializeOwned;

use super::document::{DocumentKind, ReadProblem};
use super::location::{Location, Segment, SourceMap};
use super::schema::{ClusterFile, TypeMeta, API_VERSION};
use super::YamlPath;

/// Reads `text` into a [`ClusterFile`], or says where and why it cannot.
pub(crate) fn read(text: &str, map: &SourceMap) -> Result<ClusterFile, (Location, ReadProblem)> {
    read_document(text, map, DocumentKind::Cluster)
}

/// Reads `text` into the schema `T` of a `document` with the zerolab header
/// (`apiVersion`, `kind`): the three stages above.
pub(crate) fn read_document<T: DeserializeOwned>(
    text: &str,
    map: &SourceMap,
    document: DocumentKind,
) -> Result<T, (Location, ReadProblem)> {
    let value = read_value(text, map, document)?;
    // Only a mapping can hold the header; anything else gets the schema's own
    // "expected a cluster file (a mapping ...)" (or job file) from stage 3.
    if value.is_mapping() {
        check_header(text, map, document)?;
    }
    read_typed(text, map, document)
}

/// Stage 1: the text as an untyped YAML value, refusing syntax errors and empty files.
fn read_value(
    text: &str,
    map: &SourceMap,
    document: DocumentKind,
) -> Result<serde_yaml::Value, (Location, ReadProblem)> {
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Err(err) => Err(syntax_problem(&err, map, document)),
        Ok(serde_yaml::Value::Null) if !map.has_document() || text.trim().is_empty() => {
            Err((Location::START, ReadProblem::EmptyFile { document }))
        }
        Ok(value) => Ok(value),
    }
}

/// Stage 2: `apiVersion` and `kind`, before anything else is looked at.
fn check_header(text: &str, map: &SourceMap, document: DocumentKind) -> Result<(), (Location, ReadProblem)> {
    let meta: TypeMeta = serde_yaml::from_str(text).map_err(|err| schema_problem(&err, map, document))?;
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

/// Stage 3: the typed schema. Also reads JSON, which is YAML here (a job file's
/// ZeroCloud form), with the same messages and locations.
pub(crate) fn read_typed<T: DeserializeOwned>(
    text: &str,
    map: &SourceMap,
    document: DocumentKind,
) -> Result<T, (Location, ReadProblem)> {
    serde_yaml::from_str(text).map_err(|err| schema_problem(&err, map, document))
}

/// The `kind:` of a document's header, if it has one: which document a file is,
/// before reading it as one.
pub(crate) fn kind_of(text: &str) -> Option<String> {
    serde_yaml::from_str::<TypeMeta>(text).ok()?.kind
}

fn location_of(err: &serde_yaml::Error) -> Location {
    err.location().map_or(Location::START, |l| Location { line: l.line(), column: l.column() })
}

/// An error from reading the text as YAML at all.
fn syntax_problem(err: &serde_yaml::Error, map: &SourceMap, document: DocumentKind) -> (Location, ReadProblem) {
    let message = err.to_string();
    if message.starts_with("deserializing from YAML containing more than one document") {
        return (location_of(err), ReadProblem::MultipleDocuments { document });
    }
    // serde_yaml names a duplicate key without its place; the source map has it.
    if message.contains("duplicate entry with key") {
        if let Some((path, location)) = map.first_duplicate() {
            let field = path.segments().last().map(ToString::to_string).unwrap_or_default();
            let within = within(&path.parent().unwrap_or_default(), document);
            return (location, ReadProblem::DuplicateField { field, within });
        }
    }
    // libyaml's message is `PROBLEM at line L column C[, while parsing CONTEXT at line ...]`.
    let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
    (location_of(err), ReadProblem::Syntax { message })
}

/// serde's own message shapes, which are stable: they come from `serde::de::Error`'s
/// provided methods.
const SERDE_PHRASES: [&str; 6] =
    ["unknown field `", "unknown variant `", "missing field `", "invalid type: ", "invalid value: ", "invalid length "];

/// An error from reading YAML into the typed schema.
fn schema_problem(err: &serde_yaml::Error, map: &SourceMap, document: DocumentKind) -> (Location, ReadProblem) {
    let mut location = location_of(err);
    let full = err.to_string();
    let message = match err.location() {
        Some(l) => full.strip_suffix(&format!(" at line {} column {}", l.line(), l.column())).unwrap_or(&full),
        None => &full,
    };
    let (path, message) = split_path(message);
    let within = within(&YamlPath::parse(path), document);
    let problem = if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, known) = name_and_expected(rest);
        let suggestion = closest(&field, &known);
        // serde_yaml places no location on an unknown field of the root mapping.
        if err.location().is_none() {
            location = map.key(&YamlPath::parse(path).key(&field));
        }
        ReadProblem::UnknownField { field, within, suggestion, known }
    } else if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (found, known) = name_and_expected(rest);
        let suggestion = closest(&found, &known);
        // Named by its field (`unknown strategy`), the location saying which one.
        let what = match YamlPath::parse(path).segments().last() {
            Some(Segment::Key(field)) => field.clone(),
            _ => within,
        };
        ReadProblem::UnknownValue { what, found, suggestion, known }
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        ReadProblem::MissingField { field: rest.trim_end_matches('`').to_owned(), within, document }
    } else {
        let message = plain_types(&message.replacen(", expected ", "; expected ", 1));
        let message = if path.is_empty() { message } else { format!("{path}: {message}") };
        ReadProblem::Invalid { message }
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

/// Splits serde_yaml's `PATH: MESSAGE` into its parts (the path is empty at the root).
fn split_path(message: &str) -> (&str, &str) {
    if SERDE_PHRASES.iter().any(|phrase| message.starts_with(phrase)) {
        return ("", message);
    }
    match message.split_once(": ") {
        Some((path, rest)) if SERDE_PHRASES.iter().any(|phrase| rest.starts_with(phrase)) => (path, rest),
        _ => ("", message),
    }
}

/// From ``NAME`, expected one of `a`, `b` `` takes NAME and the names expected.
fn name_and_expected(rest: &str) -> (String, Vec<String>) {
    let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
    let known = expected.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    (name.to_owned(), known)
}

/// The known name closest to `name`, when close enough to be a likely typo.
pub(crate) fn closest(name: &str, known: &[String]) -> Option<String> {
    let name = name.to_ascii_lowercase();
    known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(&name, &candidate.to_ascii_lowercase()), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.clone())
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
        let map = SourceMap::parse(text);
        match read(text, &map) {
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
                "unknown provider",
                format!("{HEAD}provider: netn\nnodes: []\n"),
                "4:11: unknown provider `netn`; expected one of `netns`, `ssh`, `vagrant`, `pxe` (did you mean `netns`?)",
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
