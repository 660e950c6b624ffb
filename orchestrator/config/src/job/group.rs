//! A checked group and what it is made of: its [`Program`], its [`Device`]s (each a
//! [`DeviceName`] and a [`FileRef`]) and its placement rule. These are the types the
//! runner reads; every value here has passed the job's checks and has its default
//! applied.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use zerolab_agent_api::Sha256;

use crate::cluster::NodeSelector;
use crate::document::Location;

/// One group of a job: a program run as `count` instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Its name, unique in the job; instances are named after it.
    pub name: String,
    /// How many instances: `count`, or the number of files a wildcard input matched.
    pub count: u32,
    /// The guest program.
    pub program: Program,
    /// The guest's arguments after `argv[0]`, in order.
    pub args: Vec<String>,
    /// The guest's environment.
    pub env: BTreeMap<String, String>,
    /// Guest memory in bytes (the manifest's `Memory`).
    pub memory: u64,
    /// Session timeout in whole seconds (the manifest's `Timeout`).
    pub timeout: u64,
    /// Its devices as written (paths resolved against the job file's directory; a
    /// wildcard input and `*` in outputs still unexpanded: each
    /// [`Instance`](super::Instance) has its own).
    pub devices: Vec<Device>,
    /// The groups each of its instances writes to, in file order.
    pub connect: Vec<String>,
    /// Where its instances may go.
    pub placement: PlacementRule,
    /// How many times a failed instance is placed again (0 for any group with channels).
    pub retries: u32,
    /// `warm: true`: each instance runs as a copy of a warm daemon its node's agent
    /// keeps for the group's program, arguments, environment, memory and `image` and
    /// `input` devices (ZeroVM's daemon mode: the program initialises once and calls
    /// `zvm_fork`, or `os.fork()` in Python).
    pub warm: bool,
    /// Where the group is written in the job file, for placement errors.
    pub(crate) at: Location,
    /// Where its `placement.nodes` is written (else the group), for placement errors.
    pub(crate) nodes_at: Location,
}

/// The guest binary of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A local file, resolved against the job file's directory; checked to exist.
    Local(PathBuf),
    /// `image:PATH`: a path inside the group's `image` device.
    Image(String),
}

/// The six devices a job can attach, as ZeroVM names them: the agent's own type, so
/// both sides name them alike by construction.
pub use zerolab_agent_api::DeviceName;

/// A device: where its data comes from or goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Which device.
    pub name: DeviceName,
    /// The file.
    pub file: FileRef,
    /// The input's expected SHA-256 (lowercase hex), to be checked where it is read.
    pub sha256: Option<Sha256>,
}

/// A file a device reads or writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRef {
    /// A file on this machine, resolved against the job file's directory: an input is
    /// uploaded to the node, an output is brought back.
    Local(PathBuf),
    /// `node:/ABS/PATH`: a file on the node the instance runs on.
    Node(PathBuf),
    /// An `http://` or `https://` URL the node's agent fetches (inputs only).
    Url(String),
}

impl fmt::Display for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileRef::Local(path) => write!(f, "{}", path.display()),
            FileRef::Node(path) => write!(f, "node:{}", path.display()),
            FileRef::Url(url) => f.write_str(url),
        }
    }
}

/// A group's `placement`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PlacementRule {
    /// The nodes its instances may go to; every node of the lab when `None`.
    pub nodes: Option<NodeSelector>,
    /// How instances are spread over them.
    pub strategy: Strategy,
}

/// How a group's instances are assigned to its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Each instance to the selected node with the fewest of the job's instances so far
    /// (ties in file order): round-robin over the nodes.
    #[default]
    Spread,
    /// Fill the selected nodes in file order, each up to the per-node capacity.
    Pack,
}
