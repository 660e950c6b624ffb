//! Clusters built in code: a [`ClusterBuilder`] holds a cluster file's fields (the
//! [`schema`](super::schema) types, all public), usually a template read from a file
//! and then changed (the workshop's one lab per attendee: its name, its subnet, its node
//! counts), and [`build`](ClusterBuilder::build) runs the very checks a file goes
//! through. There is no text to point into, so each problem is placed by its YAML path
//! ([`Invalid`]): `nodes[0].count: count is 0; ...`.

use std::fmt;
use std::path::{Path, PathBuf};

use super::schema::{ClusterFile, NetworkSpec, NodeSpec};
use super::{parse, read_file, validate, Checker, Cluster, Diagnostics, Problem, Registry};
use crate::document::{SourceMap, YamlPath, API_VERSION};

/// A cluster file's fields, to change in code and check into a [`Cluster`].
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    file: ClusterFile,
    /// The directory the file's relative paths (scripts, uploaded files) are read from.
    base: PathBuf,
}

/// One problem of a cluster built in code, at the path of the field it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The field (`nodes[0].count`); the root for the cluster as a whole.
    pub path: YamlPath,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Every problem of a cluster built in code, in the order the checks found them;
/// prints one a line. Never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct BuildError(pub Vec<Invalid>);

impl ClusterBuilder {
    /// A lab named `name` with no nodes yet, of the registry's default provider.
    pub fn new(name: &str) -> ClusterBuilder {
        let file = ClusterFile {
            api_version: API_VERSION.to_owned(),
            kind: super::schema::KIND.to_owned(),
            name: name.to_owned(),
            ..ClusterFile::default()
        };
        ClusterBuilder { file, base: PathBuf::from(".") }
    }

    /// A template: a cluster file's `text`, read (syntax, header, schema) but not yet
    /// checked; its problems name it `file_name`, and its relative paths are read from
    /// the directory `file_name` is in.
    pub fn from_template(text: &str, file_name: &str) -> Result<ClusterBuilder, Diagnostics> {
        let document = parse(text);
        let file = read_file(&document)
            .map_err(|(location, problem)| Diagnostics::one(file_name, location, Problem::Read(problem)))?;
        let base = Path::new(file_name).parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Ok(ClusterBuilder { file, base: base.to_path_buf() })
    }

    /// Reads the cluster's relative paths (scripts, uploaded files) from `dir`.
    pub fn base(mut self, dir: &Path) -> ClusterBuilder {
        self.base = dir.to_path_buf();
        self
    }

    /// A template from a cluster file's fields as read (a workshop's inline `lab:`).
    pub fn from_file(file: ClusterFile) -> ClusterBuilder {
        ClusterBuilder { file, base: PathBuf::from(".") }
    }

    /// Sets the lab's name.
    pub fn name(mut self, name: &str) -> ClusterBuilder {
        self.file.name = name.to_owned();
        self
    }

    /// Sets the provider, by its registered name.
    pub fn provider(mut self, name: &str) -> ClusterBuilder {
        self.file.provider = Some(name.to_owned());
        self
    }

    /// Sets the lab subnet (CIDR, as written in `network.subnet`).
    pub fn subnet(mut self, subnet: &str) -> ClusterBuilder {
        self.file.network = Some(NetworkSpec { subnet: Some(subnet.to_owned()) });
        self
    }

    /// Adds a `nodes:` entry.
    pub fn node(mut self, node: NodeSpec) -> ClusterBuilder {
        self.file.nodes.push(node);
        self
    }

    /// Sets the `count` of the entry named `name` (its name or pattern as written);
    /// entries named otherwise are kept as they are.
    pub fn count(mut self, name: &str, count: u32) -> ClusterBuilder {
        for node in self.file.nodes.iter_mut().filter(|node| node.name == name) {
            node.count = Some(count);
        }
        self
    }

    /// Sets the fixed `address` of the entry named `name`.
    pub fn address(mut self, name: &str, address: &str) -> ClusterBuilder {
        for node in self.file.nodes.iter_mut().filter(|node| node.name == name) {
            node.address = Some(address.to_owned());
        }
        self
    }

    /// The fields, for any other change.
    pub fn file_mut(&mut self) -> &mut ClusterFile {
        &mut self.file
    }

    /// Checks the cluster with the providers of `registry`, as a file is checked.
    pub fn build(&self, registry: &Registry) -> Result<Cluster, BuildError> {
        let map = SourceMap::default();
        let mut check = Checker::new(&map);
        validate::validate(self.file.clone(), registry, &self.base, &mut check).ok_or_else(|| {
            let problems = check.into_placed().into_iter().map(|(path, problem)| Invalid { path, problem });
            BuildError(problems.collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::testing::REGISTRY;
    use crate::document::ReadProblem;

    const TEMPLATE: &str = "apiVersion: zerolab/v1\nkind: Cluster\nname: template\n\
                            nodes:\n  - {name: node, count: 2, labels: {role: worker}}\n  - {name: gateway}\n";

    fn template() -> ClusterBuilder {
        ClusterBuilder::from_template(TEMPLATE, "template.yaml").unwrap()
    }

    #[test]
    fn makes_one_lab_per_attendee_from_a_template() {
        let labs: Vec<Cluster> = (1..=3)
            .map(|i| {
                let lab = template().name(&format!("lab-{i}")).subnet(&format!("10.90.{i}.0/24")).count("node", i);
                lab.build(&REGISTRY).unwrap()
            })
            .collect();
        let third = &labs[2];
        assert_eq!(third.name(), "lab-3");
        let nodes: Vec<String> = third.nodes().iter().map(|n| format!("{} {}", n.name, n.address)).collect();
        assert_eq!(nodes, ["node-1 10.90.3.2", "node-2 10.90.3.3", "node-3 10.90.3.4", "gateway 10.90.3.5"]);
        assert_eq!(labs[0].nodes().len(), 2);
        assert_eq!(third.nodes()[0].labels.get("role").map(String::as_str), Some("worker"));
    }

    #[test]
    fn a_built_cluster_equals_the_file_that_says_the_same() {
        let built = ClusterBuilder::new("demo")
            .node(NodeSpec { name: "web".into(), count: Some(2), ..NodeSpec::default() })
            .node(NodeSpec { name: "db".into(), ..NodeSpec::default() })
            .address("db", "10.77.0.40")
            .build(&REGISTRY)
            .unwrap();
        let text = "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\n\
                    nodes: [{name: web, count: 2}, {name: db, address: 10.77.0.40}]\n";
        assert_eq!(built, Cluster::from_str(text, "demo.yaml", &REGISTRY).unwrap());
    }

    #[test]
    fn reports_the_same_typed_problems_as_a_file_placed_by_path() {
        let err = template().name("Lab_1").subnet("8.8.8.0/24").count("node", 0).build(&REGISTRY).unwrap_err();
        let paths: Vec<String> = err.0.iter().map(|invalid| invalid.path.to_string()).collect();
        assert_eq!(paths, ["name", "network.subnet", "nodes[0].count"]);
        assert!(matches!(err.0[0].problem, Problem::LabName { .. }));
        assert!(matches!(err.0[2].problem, Problem::ZeroCount));
        assert_eq!(
            err.to_string().lines().last(),
            Some("nodes[0].count: count is 0; expected at least 1 (omit count for a single node)")
        );
    }

    #[test]
    fn an_unknown_provider_lists_the_registered_ones() {
        let err = template().provider("remot").build(&REGISTRY).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].path.to_string(), "provider");
        let Problem::Read(ReadProblem::UnknownValue { known, suggestion, .. }) = &err.0[0].problem else {
            panic!("{err}")
        };
        assert_eq!(
            (known.as_slice(), suggestion.as_deref()),
            (["local".to_owned(), "remote".to_owned()].as_slice(), Some("remote"))
        );
    }

    #[test]
    fn a_template_that_does_not_read_is_a_located_diagnostic() {
        let err =
            ClusterBuilder::from_template("apiVersion: zerolab/v1\nkind: Cluster\nnmae: x\n", "t.yaml").unwrap_err();
        assert_eq!(err.to_string(), "t.yaml:3:1: unknown field `nmae` in the cluster file; did you mean `name`?");
    }
}
