//! An open lab that is up: what every command on a lab starts with.
//!
//! [`Lab::open`] reads what a command needs before it touches a node, in one place: the
//! cluster's provider (checked), the lab directory, whether the lab is up (the directory
//! exists and the provider says its nodes do), the node states in `state.json`, and where
//! each node is reached. A lab that is not up is one error, [`OpenError::NotUp`]; a node
//! that is not ready is one error too, [`OpenError::NotReady`], with what the lab records
//! instead; a shelved node is [`OpenError::Shelved`], saying how to unshelve it. `exec`,
//! `status`, `ssh`, `run` and `sandbox run` start here.
//!
//! ```no_run
//! # async fn demo(cluster: &zerolab::cluster::Cluster, zerolab_exe: &std::path::Path)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! use zerolab::lab::{Lab, LockWait};
//!
//! let root = zerolab::lab::default_root();
//! let lab = Lab::open(&root, cluster)?;                   // NotUp unless `up` ran
//! let target = lab.ready("node-1")?;                      // NotReady with the why
//! let keeper = lab.keeper(zerolab_exe).await?;            // started when none runs
//! let _lock = lab.lock("zerolab run", &LockWait::default()).await?; // for changes
//! let output = keeper.exec(target, "uname -r", std::time::Duration::from_secs(5)).await?;
//! # let _ = output; Ok(()) }
//! ```
//!
//! API, for converting a command: [`Lab::open`] (or [`Lab::open_any`] for `status`, which
//! reports a lab that is not up instead of refusing it), then [`LabHandle::ready`] for
//! one node or [`LabHandle::ready_targets`] for many, [`LabHandle::keeper`] for the
//! lab's connection keeper, and [`LabHandle::lock`] around anything that changes the lab
//! (see [`crate::lab::lock`]). [`LabHandle::lab`], [`cluster`](LabHandle::cluster),
//! [`provider`](LabHandle::provider), [`state`](LabHandle::state) and
//! [`targets`](LabHandle::targets) give the parts.

use std::path::Path;

use crate::cluster::Cluster;
use crate::keeper::{Keeper, KeeperError};
use crate::lab::{Lab, LabError, LabLock, LabState, LockError, LockWait, NodeState};
use crate::provider::{self, Provider, ProviderError};
use crate::ssh::Target;

/// Why a lab or one of its nodes cannot be worked on.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The lab has not been brought up (or was taken down).
    #[error("lab {lab} is not up; run `zerolab up` first")]
    NotUp {
        /// The lab's name.
        lab: String,
    },
    /// The lab does not record the node as ready.
    #[error("node {node} is not ready ({why}); run `zerolab up` first")]
    NotReady {
        /// The node.
        node: String,
        /// What the lab records instead (`failed: CAUSE`, `not provisioned`...).
        why: String,
    },
    /// The node is shelved: nothing runs there until it is unshelved.
    #[error("{node} is shelved: zerolab unshelve {file} {node}")]
    Shelved {
        /// The node.
        node: String,
        /// The cluster file the lab was brought up from (as `up` recorded it).
        file: String,
    },
    /// No node of the cluster has that name.
    #[error("no node named `{node}` in lab {lab}")]
    UnknownNode {
        /// The name as given.
        node: String,
        /// The lab's name.
        lab: String,
    },
    /// The provider refused, or cannot say where a node is.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A lab file.
    #[error(transparent)]
    Lab(#[from] LabError),
}

/// A lab as a command sees it: its directory, provider, node states and SSH targets.
pub struct LabHandle<'c> {
    cluster: &'c Cluster,
    lab: Lab,
    provider: &'static dyn Provider,
    up: bool,
    state: LabState,
    targets: Vec<Target>,
}

impl Lab {
    /// Opens the lab of `cluster` under `root` for a command on its nodes; a lab that is
    /// not up is [`OpenError::NotUp`].
    pub fn open<'c>(root: &Path, cluster: &'c Cluster) -> Result<LabHandle<'c>, OpenError> {
        let handle = Lab::open_any(root, cluster)?;
        if !handle.is_up() {
            return Err(OpenError::NotUp { lab: cluster.name().to_owned() });
        }
        Ok(handle)
    }

    /// Opens the lab of `cluster` under `root` whether it is up or not
    /// ([`LabHandle::is_up`] says which); for commands that report rather than act.
    pub fn open_any<'c>(root: &Path, cluster: &'c Cluster) -> Result<LabHandle<'c>, OpenError> {
        let provider = provider::of(cluster)?;
        let lab = Lab::at(root, cluster.name())?;
        // Asked first, also with no lab directory: hosts of this lab's names that another
        // lab directory made are refused, naming it, not taken for a lab that is down.
        let up = provider.is_up(&lab)? && lab.exists();
        let state = if up { lab.load_state()? } else { LabState::default() };
        let targets = cluster.nodes().iter().map(|node| provider.address(&lab, node)).collect::<Result<_, _>>()?;
        Ok(LabHandle { cluster, lab, provider, up, state, targets })
    }
}

impl<'c> LabHandle<'c> {
    /// The lab directory.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The cluster file the lab was opened with.
    pub fn cluster(&self) -> &'c Cluster {
        self.cluster
    }

    /// The cluster's provider.
    pub fn provider(&self) -> &'static dyn Provider {
        self.provider
    }

    /// Whether the lab is up: its directory exists and its provider's nodes do.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The node states as `state.json` records them (empty for a lab that is not up).
    pub fn state(&self) -> &LabState {
        &self.state
    }

    /// Every node's SSH target, in file order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// `node`'s SSH target when the lab records it as ready; otherwise why not.
    pub fn ready(&self, node: &str) -> Result<&Target, OpenError> {
        let target = self
            .targets
            .iter()
            .find(|t| t.node == node)
            .ok_or_else(|| OpenError::UnknownNode { node: node.to_owned(), lab: self.cluster.name().to_owned() })?;
        let why = match self.state.nodes.get(node).map(|record| &record.state) {
            Some(NodeState::Ready) => return Ok(target),
            Some(NodeState::Failed { cause }) => format!("failed: {cause}"),
            Some(NodeState::Unreachable) => "unreachable when last tried".to_owned(),
            Some(NodeState::Declared | NodeState::Provisioning) | None => "not provisioned".to_owned(),
            Some(NodeState::Shelved | NodeState::ShelvedOffloaded) => {
                return Err(OpenError::Shelved { node: node.to_owned(), file: self.cluster_file() })
            }
        };
        Err(OpenError::NotReady { node: node.to_owned(), why })
    }

    /// The cluster file the lab was brought up from, as `up` recorded it (`FILE` when it
    /// recorded none): what a hint to the user names.
    pub fn cluster_file(&self) -> String {
        let identity = self.lab.identity().ok().flatten();
        identity.and_then(|i| i.cluster_file).map_or_else(|| "FILE".to_owned(), |f| f.display().to_string())
    }

    /// The targets of `nodes` (in file order), split into those the lab records as ready
    /// and those it does not ([`ready`](Self::ready) says why).
    pub fn ready_targets<'n>(&self, nodes: impl IntoIterator<Item = &'n str>) -> (Vec<Target>, Vec<Target>) {
        let nodes: Vec<&str> = nodes.into_iter().collect();
        self.targets
            .iter()
            .filter(|t| nodes.contains(&t.node.as_str()))
            .cloned()
            .partition(|t| self.ready(&t.node).is_ok())
    }

    /// The lab's connection keeper, started with `program` (the `zerolab` executable)
    /// when none runs.
    pub async fn keeper(&self, program: &Path) -> Result<Keeper, KeeperError> {
        Keeper::open(self.lab.dir(), program).await
    }

    /// Takes the lab's lock for `command` (see [`crate::lab::lock`]): held until dropped.
    pub async fn lock(&self, command: &str, wait: &LockWait) -> Result<LabLock, LockError> {
        LabLock::acquire(&self.lab, command, wait).await
    }
}
