//! Shelving a workshop's lab: every node of it at once, through the shelve contract
//! ([`crate::machines::shelve`] and [`crate::machines::unshelve`], as `zerolab
//! shelve|unshelve` do), one line for the whole lab when a node failed.

use std::path::Path;

use zerolab_sandbox::session::error_chain;

use crate::cluster::Cluster;
use crate::machines::{self, NodeOutcome};
pub use crate::provider::ShelveMode;

/// Shelves every node of `cluster`'s lab under `root`.
pub async fn shelve(root: &Path, cluster: &Cluster, mode: ShelveMode) -> Result<(), String> {
    let outcomes = machines::shelve(root, cluster, &[], mode).await.map_err(|e| error_chain(&e))?;
    failed(&outcomes)
}

/// Unshelves every node of `cluster`'s lab under `root`, `agent` started as `up` does.
pub async fn unshelve(root: &Path, cluster: &Cluster, agent: &Path) -> Result<(), String> {
    let outcomes = machines::unshelve(root, cluster, &[], agent).await.map_err(|e| error_chain(&e))?;
    failed(&outcomes)
}

fn failed(outcomes: &[NodeOutcome]) -> Result<(), String> {
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|(node, outcome)| outcome.as_ref().err().map(|why| format!("{node}: {why}")))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
