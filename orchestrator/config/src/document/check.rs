//! The checker every document's semantic checks report to: problems by YAML path,
//! placed through the [`SourceMap`] when reported, so a check cannot get a location
//! wrong, only pick the wrong path.

use super::location::{Location, SourceMap, YamlPath};

/// Collects problems, each placed at the location of a path. `P` is the document's
/// problem type.
pub struct Checker<'a, P> {
    map: &'a SourceMap,
    problems: Vec<(Location, YamlPath, P)>,
}

impl<'a, P> Checker<'a, P> {
    /// A checker placing problems through `map`.
    pub fn new(map: &'a SourceMap) -> Checker<'a, P> {
        Checker { map, problems: Vec::new() }
    }

    /// Reports `problem` at the value of `path` (for a sequence item: the item).
    pub fn report(&mut self, path: &YamlPath, problem: P) {
        self.problems.push((self.map.value(path), path.clone(), problem));
    }

    /// Reports `problem` at the key of `path` (for a field that should not be there).
    pub fn report_key(&mut self, path: &YamlPath, problem: P) {
        self.problems.push((self.map.key(path), path.clone(), problem));
    }

    /// Where `path`'s value is, for problems kept to be reported later.
    pub fn location(&self, path: &YamlPath) -> Location {
        self.map.value(path)
    }

    /// The line of `path`'s value, for messages that point at a first occurrence.
    pub fn line(&self, path: &YamlPath) -> usize {
        self.map.value(path).line
    }

    /// Whether nothing was reported.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems reported, in the order they were.
    pub fn into_problems(self) -> Vec<(Location, P)> {
        self.problems.into_iter().map(|(location, _, problem)| (location, problem)).collect()
    }

    /// The problems reported, each with the path it was reported at (for documents
    /// built in code, which have no text to point into).
    pub fn into_placed(self) -> Vec<(YamlPath, P)> {
        self.problems.into_iter().map(|(_, path, problem)| (path, problem)).collect()
    }
}
