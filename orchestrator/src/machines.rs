//! Commands on a lab's machines themselves, through its provider: `zerolab power
//! on|off|cycle|status` (each node's power control), `zerolab reinstall` (an installed
//! machine runs its installer once more) and `zerolab render` (every file the provider
//! renders, written without starting anything). Only providers whose nodes are machines
//! they boot support them; the others say so in one line.

use std::path::{Path, PathBuf};

use crate::cluster::Cluster;
use crate::lab::{Lab, LabError};
use crate::provider::pxe::power::{PowerAction, PowerState};
use crate::provider::{self, ProviderError};

/// What a machine command could not do as a whole.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The lab could not be opened.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The provider refused or failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A node that is not in the cluster file.
    #[error("{0}")]
    UnknownNode(String),
}

/// One node's outcome: `Ok(state or what was done)` or its error's line.
pub type NodeOutcome = (String, Result<String, String>);

/// Applies `action` (or reads the state when `None`) to `nodes` (every node when
/// empty), all at once; one outcome per node, in file order.
pub async fn power(
    lab_root: &Path,
    cluster: &Cluster,
    action: Option<PowerAction>,
    nodes: &[String],
) -> Result<Vec<NodeOutcome>, MachineError> {
    let provider = provider::of(cluster)?;
    let lab = Lab::at(lab_root, cluster.name())?;
    let selected = select(cluster, nodes)?;
    let tasks = selected.into_iter().map(|node| {
        let lab = &lab;
        async move {
            let outcome = match action {
                Some(action) => provider.power(lab, cluster, node, action).await.map(|()| done(action).to_owned()),
                None => provider.power_state(lab, cluster, node).await.map(|state| state_word(state).to_owned()),
            };
            (node.name.clone(), outcome.map_err(|e| zerolab_sandbox::session::error_chain(&e)))
        }
    });
    Ok(futures_util::future::join_all(tasks).await)
}

/// Has `node` installed again on its next boot and power-cycles it.
pub async fn reinstall(lab_root: &Path, cluster: &Cluster, node: &str) -> Result<(), MachineError> {
    let provider = provider::of(cluster)?;
    let lab = Lab::at(lab_root, cluster.name())?;
    let node = cluster.find_node(node).map_err(|e| MachineError::UnknownNode(e.to_string()))?;
    Ok(provider.reinstall(&lab, cluster, node).await?)
}

/// Writes every rendered file of `cluster` into `out` (`LAB/rendered` when `None`: never
/// over the files `up` wrote and uses); returns the files written.
pub fn render(lab_root: &Path, cluster: &Cluster, out: Option<&Path>) -> Result<Vec<PathBuf>, MachineError> {
    let provider = provider::of(cluster)?;
    let lab = Lab::open_or_create(lab_root, cluster.name())?;
    let out = out.map(Path::to_owned).unwrap_or_else(|| lab.dir().join("rendered"));
    Ok(provider.render(&lab, cluster, &out)?)
}

fn select<'a>(cluster: &'a Cluster, names: &[String]) -> Result<Vec<&'a crate::cluster::Node>, MachineError> {
    if names.is_empty() {
        return Ok(cluster.nodes().iter().collect());
    }
    names.iter().map(|name| cluster.find_node(name).map_err(|e| MachineError::UnknownNode(e.to_string()))).collect()
}

fn done(action: PowerAction) -> &'static str {
    match action {
        PowerAction::On => "switched on",
        PowerAction::Off => "switched off",
        PowerAction::Cycle => "power-cycled",
    }
}

fn state_word(state: PowerState) -> &'static str {
    match state {
        PowerState::On => "on",
        PowerState::Off => "off",
        PowerState::Unknown => "unknown",
    }
}
