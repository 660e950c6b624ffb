//! Shelving a workshop's lab: every node of it, through the shelve contract
//! (`zerolab shelve|unshelve`), which this build does not have yet: until it is merged,
//! shelving says so and idle labs stay up.

use std::path::Path;

use crate::cluster::Cluster;

/// How a lab is shelved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShelveMode {
    /// Memory kept, processes stopped.
    Frozen,
    /// Processes gone, state kept on disk.
    Offloaded,
}

const NOT_YET: &str = "shelving is not in this build yet (it comes with `zerolab shelve`)";

/// Shelves every node of `cluster`'s lab under `root`.
pub async fn shelve(root: &Path, cluster: &Cluster, mode: ShelveMode) -> Result<(), String> {
    let _ = (root, cluster, mode);
    Err(NOT_YET.to_owned())
}

/// Unshelves every node of `cluster`'s lab under `root`, `agent` started as `up` does.
pub async fn unshelve(root: &Path, cluster: &Cluster, agent: &Path) -> Result<(), String> {
    let _ = (root, cluster, agent);
    Err(NOT_YET.to_owned())
}
