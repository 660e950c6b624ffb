//! Where a job's files are: parsing what `program` and devices are written as, resolving
//! local paths against the job file's directory, and expanding wildcard inputs.
//!
//! The forms, for every device and (local or `image:` only) for programs:
//! - `PATH` or `file://PATH`: a file on this machine, relative to the job file's
//!   directory unless absolute (`file://` is ZeroCloud's spelling);
//! - `node:/ABS/PATH`: a file already on the node;
//! - `http://…` or `https://…`: a URL the node's agent fetches;
//! - `image:PATH` (programs only): a path inside the group's `image` device.
//!
//! ZeroCloud's `swift://` object-store paths have no store to come from here and get an
//! error that says what to write instead.

use std::fmt;
use std::path::{Path, PathBuf};

use super::group::FileRef;

/// Why a program or device path was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Nothing written.
    Empty,
    /// A NUL byte, which no path can hold.
    Nul,
    /// `image:` with nothing after it.
    EmptyImagePath,
    /// `node:` followed by a relative path.
    NodeNotAbsolute,
    /// `http://` or `https://` without a host.
    UrlHost,
    /// ZeroCloud's `swift://`.
    ObjectStore,
    /// Any other `SCHEME://`.
    Scheme(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORMS: &str = "a local path, file://PATH, node:/ABS/PATH or an http:// or https:// URL";
        match self {
            PathError::Empty => write!(f, "it is empty; expected {FORMS}"),
            PathError::Nul => f.write_str("it contains a NUL byte; expected a path without one"),
            PathError::EmptyImagePath => f.write_str("no path after `image:`; expected image:PATH inside the image"),
            PathError::NodeNotAbsolute => f.write_str("a node path must be absolute; expected node:/ABS/PATH"),
            PathError::UrlHost => f.write_str("the URL has no host; expected http://HOST/PATH or https://HOST/PATH"),
            PathError::ObjectStore => f.write_str(
                "swift:// is ZeroCloud's object store, which zerolab does not have; expected file://PATH or a \
                 local path (relative to the job file's directory)",
            ),
            PathError::Scheme(scheme) => write!(f, "`{scheme}://` is not supported; expected {FORMS}"),
        }
    }
}

/// A program as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProgramRef {
    /// A local path, not yet resolved.
    Local(PathBuf),
    /// `image:PATH`.
    Image(String),
    /// A node path or URL: not a program zerolab can upload.
    Remote,
}

/// Parses a `program` (or ZeroCloud `exec.path`).
pub(crate) fn parse_program(text: &str) -> Result<ProgramRef, PathError> {
    if let Some(inside) = text.strip_prefix("image:") {
        if inside.contains('\0') {
            return Err(PathError::Nul);
        }
        if inside.is_empty() {
            return Err(PathError::EmptyImagePath);
        }
        return Ok(ProgramRef::Image(inside.to_owned()));
    }
    Ok(match parse_file(text)? {
        FileRef::Local(path) => ProgramRef::Local(path),
        FileRef::Node(_) | FileRef::Url(_) => ProgramRef::Remote,
    })
}

/// Parses a device's path; a local path is returned as written (see [`resolve`]).
pub(crate) fn parse_file(text: &str) -> Result<FileRef, PathError> {
    if text.is_empty() {
        return Err(PathError::Empty);
    }
    if text.contains('\0') {
        return Err(PathError::Nul);
    }
    if let Some(path) = text.strip_prefix("node:") {
        return match path.starts_with('/') {
            true => Ok(FileRef::Node(PathBuf::from(path))),
            false => Err(PathError::NodeNotAbsolute),
        };
    }
    let Some((scheme, rest)) = text.split_once("://").filter(|(scheme, _)| is_scheme(scheme)) else {
        return Ok(FileRef::Local(PathBuf::from(text)));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" if rest.is_empty() => Err(PathError::Empty),
        "file" => Ok(FileRef::Local(PathBuf::from(rest))),
        "http" | "https" => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            match host.is_empty() {
                true => Err(PathError::UrlHost),
                false => Ok(FileRef::Url(text.to_owned())),
            }
        }
        "swift" => Err(PathError::ObjectStore),
        _ => Err(PathError::Scheme(scheme.to_owned())),
    }
}

/// Whether `text` is a URL scheme (RFC 3986: a letter, then letters, digits, `+-.`),
/// so that a local path holding `://` further on stays a path.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `path` against the job file's directory `base`, made absolute (without resolving
/// symlinks) so that it means the same whatever directory the runner works in.
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    let joined = base.join(path);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// Whether a path holds a wildcard (`*` any run of characters, `?` one character).
pub(crate) fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// Why a wildcard input made no instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WildcardError {
    /// A wildcard before the file name.
    InDirectory,
    /// No regular file matches, in this directory.
    NoMatch(PathBuf),
}

/// The regular files whose names match the last component of `pattern` (already
/// resolved), sorted by name. As in a shell, a wildcard does not match a leading `.`.
pub(crate) fn expand_wildcard(pattern: &Path) -> Result<Vec<PathBuf>, WildcardError> {
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    if has_wildcard(&dir.to_string_lossy()) {
        return Err(WildcardError::InDirectory);
    }
    let name_pattern = pattern.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let no_match = || WildcardError::NoMatch(dir.to_owned());
    let entries = std::fs::read_dir(dir).map_err(|_| no_match())?;
    let mut matches: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { return false };
            let hidden = name.starts_with('.') && !name_pattern.starts_with('.');
            !hidden && crate::cluster::selector::glob(&name_pattern, name)
        })
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    if matches.is_empty() {
        return Err(no_match());
    }
    matches.sort();
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_of_path() {
        let local = |p: &str| Ok(FileRef::Local(PathBuf::from(p)));
        let cases: &[(&str, Result<FileRef, PathError>)] = &[
            ("data/in.txt", local("data/in.txt")),
            ("/abs/in.txt", local("/abs/in.txt")),
            ("file://data/in.txt", local("data/in.txt")),
            ("file:///abs", local("/abs")),
            ("odd/a://b", local("odd/a://b")),
            ("node:/srv/data", Ok(FileRef::Node(PathBuf::from("/srv/data")))),
            ("node:srv/data", Err(PathError::NodeNotAbsolute)),
            ("https://example.org/a?b", Ok(FileRef::Url("https://example.org/a?b".to_owned()))),
            ("HTTP://example.org", Ok(FileRef::Url("HTTP://example.org".to_owned()))),
            ("http:///path", Err(PathError::UrlHost)),
            ("swift://~/data/part-1", Err(PathError::ObjectStore)),
            ("ftp://host/x", Err(PathError::Scheme("ftp".to_owned()))),
            ("file://", Err(PathError::Empty)),
            ("", Err(PathError::Empty)),
            ("a\0b", Err(PathError::Nul)),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_file(text), want, "{text:?}");
        }
    }

    #[test]
    fn parses_programs() {
        assert_eq!(parse_program("map"), Ok(ProgramRef::Local(PathBuf::from("map"))));
        assert_eq!(parse_program("file://wordcount/map"), Ok(ProgramRef::Local(PathBuf::from("wordcount/map"))));
        assert_eq!(parse_program("image:bin/map"), Ok(ProgramRef::Image("bin/map".to_owned())));
        assert_eq!(parse_program("image:"), Err(PathError::EmptyImagePath));
        assert_eq!(parse_program("node:/bin/map"), Ok(ProgramRef::Remote));
        assert_eq!(parse_program("https://example.org/map"), Ok(ProgramRef::Remote));
        assert_eq!(parse_program("swift://~/apps/map"), Err(PathError::ObjectStore));
    }

    #[test]
    fn expands_wildcards_in_the_file_name_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["part-2", "part-1", "part-10", ".part-hidden", "other"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("part-dir")).unwrap();
        let names = |pattern: &str| -> Result<Vec<String>, WildcardError> {
            let found = expand_wildcard(&dir.path().join(pattern))?;
            Ok(found.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect())
        };
        assert_eq!(names("part-*").unwrap(), ["part-1", "part-10", "part-2"]);
        assert_eq!(names("part-?").unwrap(), ["part-1", "part-2"]);
        assert_eq!(names(".part-*").unwrap(), [".part-hidden"]);
        assert_eq!(names("none-*"), Err(WildcardError::NoMatch(dir.path().to_owned())));
        assert_eq!(names("*/x"), Err(WildcardError::InDirectory));
        assert_eq!(names("missing/part-*"), Err(WildcardError::NoMatch(dir.path().join("missing"))));
    }
}
