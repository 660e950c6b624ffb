//! Cluster files: read, check and expand a lab's description into a [`Cluster`] of
//! [`Node`]s, or into [`Diagnostics`] that say where and what is wrong.
//!
//! ```
//! use zerolab::cluster::Cluster;
//!
//! let text = "\
//! apiVersion: zerolab/v1
//! kind: Cluster
//! name: demo
//! nodes:
//!   - name: node
//!     count: 2
//! ";
//! let cluster = Cluster::from_str(text, "demo.yaml").unwrap();
//! let names: Vec<&str> = cluster.nodes().iter().map(|n| n.name.as_str()).collect();
//! assert_eq!(names, ["node-1", "node-2"]);
//! assert_eq!(cluster.nodes()[0].address.to_string(), "10.77.0.2");
//!
//! let err = Cluster::from_str("apiVersion: zerolab/v1\nkind: Cluster\nname: Demo\nnodes: []\n", "bad.yaml")
//!     .unwrap_err();
//! assert_eq!(err.len(), 2); // every semantic problem, not just the first
//! assert!(err.to_string().starts_with("bad.yaml:3:7: invalid lab name `Demo`"));
//! ```
//!
//! The pipeline, one module each: `read` (YAML and schema, through serde_yaml, stops at
//! the first error since serde cannot go on), `validate` (every semantic check,
//! reported together), `expand` (names from patterns, addresses from the subnet).
//! Semantic problems are placed by [`location`]: the file is parsed a second time into
//! a map from YAML paths to lines and columns, and checks report paths.
//!
//! Job files ([`crate::job`]) are read by the same machinery: [`document`] (the kinds
//! and the reading problems), `read`, [`location`], [`Diagnostics`] (generic over the
//! document's problem type) and the path-to-location checker in `validate`.

pub mod diagnostic;
pub mod document;
mod expand;
pub mod location;
pub mod names;
pub mod net;
pub(crate) mod read;
pub mod schema;
pub mod selector;
pub(crate) mod validate;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use self::diagnostic::{Diagnostic, Diagnostics, LoadError, Problem};
pub use self::document::{DocumentKind, ReadProblem};
pub use self::location::{Location, YamlPath};
pub use self::net::{MacAddr, NodeAddress, Subnet};
pub use self::schema::Labels;
pub use self::selector::{NodeSelector, SelectorError};
use crate::provider::{NodeSettings, ProviderKind};

/// A valid cluster file, its nodes expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    name: String,
    provider: ProviderKind,
    subnet: Option<Subnet>,
    nodes: Vec<Node>,
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
    /// Reads and checks the cluster file at `path`; diagnostics name the file as given.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Cluster, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        Ok(Cluster::from_str(&text, &path.display().to_string())?)
    }

    /// Reads and checks a cluster file's `text`; diagnostics name it `file_name`.
    pub fn from_str(text: &str, file_name: &str) -> Result<Cluster, Diagnostics> {
        // A byte-order mark is not content (serde_yaml would take it for a second
        // document), and columns on the first line count from after it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let map = location::SourceMap::parse(text);
        let file = read::read(text, &map)
            .map_err(|(location, problem)| Diagnostics::one(file_name, location, Problem::Read(problem)))?;
        validate::validate(file, &map).map_err(|problems| {
            Diagnostics::new(file_name, problems).expect("validation failed with at least one problem")
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

    /// The nodes, expanded, in file order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// The node named `name`, or an error naming the closest node name when one is close
    /// (a did-you-mean).
    pub fn find_node(&self, name: &str) -> Result<&Node, SelectorError> {
        self.node(name).ok_or_else(|| {
            let known: Vec<String> = self.nodes.iter().map(|node| node.name.clone()).collect();
            SelectorError::UnknownNode { name: name.to_owned(), suggestion: read::closest(name, &known) }
        })
    }

    /// The nodes `selector` selects, in file order.
    pub fn select(&self, selector: &NodeSelector) -> Result<Vec<&Node>, SelectorError> {
        selector.select(&self.nodes)
    }
}

#[cfg(test)]
mod tests;
