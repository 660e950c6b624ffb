//! Commands on a lab's machines themselves, through its provider: `zerolab power
//! on|off|cycle|status` (each node's power control), `zerolab reinstall` (an installed
//! machine runs its installer once more), `zerolab render` (every file the provider
//! renders, written without starting anything), and `zerolab shelve|unshelve` (Nova's
//! shelving, [`shelve`], [`unshelve`]). Only providers whose nodes are machines they boot
//! or run support them; the others say so in one line.
//!
//! Shelving, under the lab's lock: [`shelve`] has the provider stop each ready node in a
//! [`ShelveMode`] and records `shelved` or `shelved_offloaded` in `state.json`;
//! [`unshelve`] has the provider bring each shelved node back (same address, host key,
//! files), then starts and health-checks its agent as `up` does
//! (`up`'s `start_agents`), and records it ready. A node already in the state asked
//! for is left alone (a success); a node that is neither ready nor shelved is refused.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::cluster::{Cluster, Node};
use crate::lab::{Lab, LabError, LockError, LockWait, NodeState};
use crate::lab_handle::OpenError;
use crate::provider::pxe::power::{PowerAction, PowerState};
use crate::provider::{self, ProviderError, ShelveMode};
use crate::ssh::{Target, PARALLEL};
use crate::up::{self, UpError};
use zerolab_sandbox::session::error_chain;

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
    /// The lab is not up.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Another command is changing the lab.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The agent binary or the host keys could not be read (boxed: `up`'s error is large).
    #[error(transparent)]
    Agent(Box<UpError>),
}

impl From<UpError> for MachineError {
    fn from(error: UpError) -> MachineError {
        MachineError::Agent(Box::new(error))
    }
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

/// Shelves `nodes` (every node when empty) of the lab of `cluster` under `lab_root` in
/// `mode`, all at once, and records their state; one outcome per node, in file order
/// (`shelved`, `shelved_offloaded`, or `already ...`).
pub async fn shelve(
    lab_root: &Path,
    cluster: &Cluster,
    nodes: &[String],
    mode: ShelveMode,
) -> Result<Vec<NodeOutcome>, MachineError> {
    let selected = select(cluster, nodes)?;
    let handle = Lab::open(lab_root, cluster)?;
    let _lock = handle.lock("zerolab shelve", &LockWait::default()).await?;
    let (lab, provider) = (handle.lab(), handle.provider());
    let mut state = lab.load_state()?;
    let tasks = selected.into_iter().map(|node| {
        let current = state.nodes.get(&node.name).map(|r| r.state.clone()).unwrap_or_default();
        async move {
            let wanted = NodeState::shelved(mode);
            let outcome = match &current {
                NodeState::ShelvedOffloaded => Ok(None),
                NodeState::Shelved if mode == ShelveMode::Frozen => Ok(None),
                NodeState::Ready | NodeState::Shelved => {
                    provider.shelve(lab, cluster, node, mode).await.map(|()| Some(wanted)).map_err(|e| error_chain(&e))
                }
                other => Err(format!("not ready ({}); only a ready node is shelved", other.name())),
            };
            (node, current, outcome)
        }
    });
    let mut outcomes = Vec::new();
    for (node, current, outcome) in futures_util::future::join_all(tasks).await {
        outcomes.push((
            node.name.clone(),
            outcome.map(|changed| match changed {
                Some(new) => {
                    let word = new.name().to_owned();
                    if let Some(record) = state.nodes.get_mut(&node.name) {
                        record.state = new;
                    }
                    word
                }
                None => format!("already {}", current.name()),
            }),
        ));
    }
    lab.save_state(&state)?;
    Ok(outcomes)
}

/// Unshelves `nodes` (every node when empty) of the lab of `cluster` under `lab_root`:
/// the provider brings each shelved node back, then its agent (`agent`, uploaded if it
/// changed) is started and health-checked as `up` does, and its state recorded; one
/// outcome per node, in file order. A ready node is left alone.
pub async fn unshelve(
    lab_root: &Path,
    cluster: &Cluster,
    nodes: &[String],
    agent: &Path,
) -> Result<Vec<NodeOutcome>, MachineError> {
    if !agent.is_file() {
        return Err(UpError::AgentMissing { path: agent.to_owned() }.into());
    }
    let selected = select(cluster, nodes)?;
    let handle = Lab::open(lab_root, cluster)?;
    let _lock = handle.lock("zerolab unshelve", &LockWait::default()).await?;
    let (lab, provider) = (handle.lab(), handle.provider());
    let mut state = lab.load_state()?;
    let tasks = selected.into_iter().map(|node| {
        let current = state.nodes.get(&node.name).map(|r| r.state.clone()).unwrap_or_default();
        async move {
            let outcome = match &current {
                NodeState::Ready => Ok(false),
                NodeState::Shelved | NodeState::ShelvedOffloaded => {
                    provider.unshelve(lab, cluster, node).await.map(|()| true).map_err(|e| error_chain(&e))
                }
                other => Err(format!("not shelved ({}); run `zerolab up`", other.name())),
            };
            (node, outcome)
        }
    });
    let back: Vec<(&Node, Result<bool, String>)> = futures_util::future::join_all(tasks).await;
    // The agents of the nodes brought back, started as `up` starts them, all at once.
    let targets: Vec<Target> = back
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Ok(true)))
        .map(|(node, _)| provider.address(lab, node))
        .collect::<Result<_, _>>()?;
    let reports = up::start_agents(lab, provider, &targets, agent, PARALLEL, HashSet::new(), |_| {}).await?;
    let mut outcomes = Vec::new();
    for (node, outcome) in back {
        let outcome = match outcome {
            Ok(false) => Ok("ready (was not shelved)".to_owned()),
            Err(line) => Err(line),
            Ok(true) => {
                let Some(report) = reports.iter().find(|r| r.node == node.name).cloned() else {
                    outcomes.push((node.name.clone(), Err("brought back, but its agent was not started".to_owned())));
                    continue;
                };
                let line = (report.state == NodeState::Ready)
                    .then(|| format!("unshelved ({})", report.detail))
                    .ok_or_else(|| report.detail.clone());
                if let Some(record) = state.nodes.get_mut(&node.name) {
                    record.state = report.state;
                }
                line
            }
        };
        outcomes.push((node.name.clone(), outcome));
    }
    lab.save_state(&state)?;
    Ok(outcomes)
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

#[cfg(test)]
mod tests;
