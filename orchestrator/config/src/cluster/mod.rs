//! Cluster files: read, check and expand a lab's description into a [`Cluster`] of
//! [`Node`]s, or into [`Diagnostics`] that say where and what is wrong.
//!
//! ```
//! use zerolab_config::cluster::provider::{ProviderKind, Registry, BASE};
//! use zerolab_config::cluster::{Checker, Cluster, EntryView, NodeSettings, ProviderConfig, ProviderSettings, ProviderSpec};
//!
//! // The orchestrator registers its providers; a lab of one kind needs only this.
//! #[derive(Debug, PartialEq)]
//! struct NoSettings;
//! impl ProviderSettings for NoSettings {}
//! struct Local;
//! impl ProviderConfig for Local {
//!     fn name(&self) -> &'static str { "local" }
//!     fn spec(&self) -> &'static ProviderSpec { &BASE }
//!     fn node_settings(&self, _: &EntryView<'_>, _: &mut Checker<'_>) -> Option<NodeSettings> {
//!         Some(NodeSettings::new(ProviderKind::new(&Local), NoSettings))
//!     }
//! }
//! static REGISTRY: Registry = Registry::new(&[ProviderKind::new(&Local)]);
//!
//! let text = "\
//! apiVersion: zerolab/v1
//! kind: Cluster
//! name: demo
//! nodes:
//!   - name: node
//!     count: 2
//! ";
//! let cluster = Cluster::from_str(text, "demo.yaml", &REGISTRY).unwrap();
//! let names: Vec<&str> = cluster.nodes().iter().map(|n| n.name.as_str()).collect();
//! assert_eq!(names, ["node-1", "node-2"]);
//! assert_eq!(cluster.nodes()[0].address.to_string(), "10.77.0.2");
//!
//! let err = Cluster::from_str("apiVersion: zerolab/v1\nkind: Cluster\nname: Demo\nnodes: []\n", "bad.yaml", &REGISTRY)
//!     .unwrap_err();
//! assert_eq!(err.len(), 2); // every semantic problem, not just the first
//! assert!(err.to_string().starts_with("bad.yaml:3:7: invalid lab name `Demo`"));
//! ```
//!
//! The pipeline, one module each: reading (the [`document`](crate::document) stages:
//! YAML, header, [`schema`]; stops at the first error since serde cannot go on),
//! `validate` (every semantic check, reported together; each node's provider checks
//! its own fields through the [`Registry`]), `expand` (names from patterns, addresses
//! from the subnet). The checks speak in YAML paths, placed through the document's
//! [`SourceMap`](crate::document::SourceMap). A cluster built in code ([`ClusterBuilder`])
//! goes through the same checks, its problems placed by path.

mod build;
mod expand;
pub mod names;
pub mod net;
mod problem;
pub mod provider;
pub mod provision;
pub mod schema;
pub mod selector;
mod validate;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use self::build::{BuildError, ClusterBuilder, Invalid};
pub use self::net::{MacAddr, NodeAddress, Subnet};
pub use self::problem::{Problem, MAX_COUNT};
pub use self::provider::{
    Addressing, LabSettings, NodeSettings, ProviderConfig, ProviderKind, ProviderSettings, ProviderSpec, Registry,
};
pub use self::provision::Step;
pub use self::schema::Labels;
pub use self::selector::{NodeSelector, SelectorError};
pub use self::validate::{EntryView, LabView};
use crate::document::{read, Document};
pub use crate::document::{DocumentKind, Location, ReadProblem, YamlPath};

/// Every problem of one document: a cluster file's unless `P` says otherwise.
pub type Diagnostics<P = Problem> = crate::document::Diagnostics<P>;
/// One problem of a document, placed: a cluster file's unless `P` says otherwise.
pub type Diagnostic<P = Problem> = crate::document::Diagnostic<P>;
/// Why a document could not be loaded: a cluster file unless `P` says otherwise.
pub type LoadError<P = Problem> = crate::document::LoadError<P>;
/// The checker a cluster file's checks (and each provider's settings reader) report to.
pub type Checker<'a> = crate::document::Checker<'a, Problem>;

/// A valid cluster file, its nodes expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    name: String,
    provider: ProviderKind,
    subnet: Option<Subnet>,
    lab: Option<LabSettings>,
    nodes: Vec<Node>,
    provision: Vec<Step>,
}

/// One node of a lab, every default applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its unique name (a pattern's expansion: `node-2`).
    pub name: String,
    /// Where it is reached: fixed or allocated from the lab subnet, or (ssh) as written.
    pub address: NodeAddress,
    /// The login user.
    pub user: String,
    /// The private key to log in with, as written (`~` not expanded): set for providers
    /// that reach machines zerolab did not make (ssh); the others use the lab's key pair.
    pub key: Option<PathBuf>,
    /// Its labels: the defaults' with its own over them.
    pub labels: Labels,
    /// Its provider's settings.
    pub settings: NodeSettings,
    /// The index of the `nodes:` entry it comes from.
    pub entry: usize,
}

impl Node {
    /// The port its sshd listens on.
    pub fn ssh_port(&self) -> u16 {
        self.settings.ssh_port()
    }
}

impl Cluster {
    /// Reads and checks the cluster file at `path` with the providers of `registry`;
    /// diagnostics name the file as given.
    pub fn from_path(path: impl AsRef<Path>, registry: &Registry) -> Result<Cluster, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        Ok(Cluster::from_str(&text, &path.display().to_string(), registry)?)
    }

    /// Reads and checks a cluster file's `text` with the providers of `registry`;
    /// diagnostics name it `file_name`.
    pub fn from_str(text: &str, file_name: &str, registry: &Registry) -> Result<Cluster, Diagnostics> {
        let document = parse(text);
        let file = read_file(&document)
            .map_err(|(location, problem)| Diagnostics::one(file_name, location, Problem::Read(problem)))?;
        let mut check = Checker::new(document.map());
        // Script files and uploads are named relative to the cluster file.
        let base = Path::new(file_name).parent().unwrap_or(Path::new(""));
        let base = if base.as_os_str().is_empty() { Path::new(".") } else { base };
        validate::validate(file, registry, base, &mut check).ok_or_else(|| {
            Diagnostics::new(file_name, check.into_problems()).expect("validation failed with at least one problem")
        })
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The provider that makes its nodes.
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// The lab subnet, for providers that have one.
    pub fn subnet(&self) -> Option<Subnet> {
        self.subnet
    }

    /// The host side of the lab subnet (its `.1`), for providers that have one.
    pub fn host_address(&self) -> Option<Ipv4Addr> {
        self.subnet.map(Subnet::host_address)
    }

    /// The lab's settings from its provider's own sections (`pxe:`), as type `S`.
    pub fn lab_settings<S: provider::LabSettingsValue>(&self) -> Option<&S> {
        self.lab.as_ref().and_then(LabSettings::get)
    }

    /// The nodes, expanded, in file order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The provisioning steps, in file order.
    pub fn provision(&self) -> &[Step] {
        &self.provision
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// The node named `name`, or an error naming the closest node name when one is close
    /// (a did-you-mean).
    pub fn find_node(&self, name: &str) -> Result<&Node, SelectorError> {
        self.node(name).ok_or_else(|| selector::unknown_node(name, &self.nodes))
    }

    /// The nodes `selector` selects, in file order.
    pub fn select(&self, selector: &NodeSelector) -> Result<Vec<&Node>, SelectorError> {
        selector.select(&self.nodes)
    }
}

/// A cluster file's text, parsed once. A byte-order mark is not content, and columns on
/// the first line count from after it.
fn parse(text: &str) -> Document {
    Document::parse(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Reads a parsed cluster file into its schema (stops at the first problem).
fn read_file(document: &Document) -> Result<schema::ClusterFile, (Location, ReadProblem)> {
    read::read_document(document, DocumentKind::Cluster)
}

#[cfg(test)]
pub(crate) mod testing;
