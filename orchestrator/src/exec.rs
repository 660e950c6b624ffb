//! `zerolab exec`: one shell command on many nodes at once.
//!
//! [`exec`] opens the lab ([`Lab::open`]: a lab that is not up is an error), picks the
//! selected nodes (all of them without a selector), runs the command
//! on each node that the lab records as ready, over the connections the lab's keeper
//! holds ([`Keeper`](crate::keeper::Keeper), started by `program` when it does not run), at most `parallel` nodes
//! at a time ([`run_parallel`]), and hands each node's
//! [`NodeRun`] to a callback as soon as that node finishes, so the caller can print its
//! output at once. A selected node that is not ready is not contacted: its run says why.
//!
//! The command's words are joined with spaces and run by the node's login shell, as
//! `ssh HOST CMD...` does, so `exec -- 'echo $HOSTNAME'` expands on the node.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use zerolab_sandbox::session::error_chain;

use crate::cluster::{Cluster, NodeSelector, SelectorError};
use crate::keeper::KeeperError;
use crate::lab::Lab;
use crate::lab_handle::OpenError;
use crate::ssh::{run_parallel, Output};

/// Commands in flight at once by default (each is one channel on a kept connection).
pub const PARALLEL: usize = 128;
/// How long a command may run on a node before it is given up on.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3600);

/// What can stop `exec` before any node is contacted.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// `--nodes` selects nothing or names an unknown node.
    #[error(transparent)]
    Selector(#[from] SelectorError),
    /// The lab is not up, or its provider or files failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The lab's connection keeper.
    #[error(transparent)]
    Keeper(#[from] KeeperError),
}

/// How the command ended on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran: its exit status (or signal) and output.
    Ran(Output),
    /// It could not be run (node not ready, unreachable, timed out), with why.
    Failed(String),
}

/// The command's run on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRun {
    /// The node.
    pub node: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl NodeRun {
    /// True when the command ran and exited 0.
    pub fn success(&self) -> bool {
        matches!(&self.outcome, Outcome::Ran(output) if output.success())
    }
}

/// Runs `command` on the nodes of `cluster` (in the lab under `root`) that `selector`
/// selects; `done` gets each node's run as it finishes. Returns every run, in file order.
/// `program` is the `zerolab` executable, to start the lab's keeper when none runs.
pub async fn exec(
    root: &Path,
    cluster: &Cluster,
    selector: Option<&NodeSelector>,
    command: &str,
    program: &Path,
    parallel: usize,
    done: impl Fn(&NodeRun) + Send + Sync + 'static,
) -> Result<Vec<NodeRun>, ExecError> {
    let selected: Vec<&str> = match selector {
        Some(selector) => cluster.select(selector)?.iter().map(|n| n.name.as_str()).collect(),
        None => cluster.nodes().iter().map(|n| n.name.as_str()).collect(),
    };
    let lab = Lab::open(root, cluster)?;
    let (ready, not_ready) = lab.ready_targets(selected);
    let done = Arc::new(done);
    let mut runs: Vec<NodeRun> = not_ready
        .iter()
        .map(|t| {
            let why = match lab.ready(&t.node) {
                Err(shelved @ OpenError::Shelved { .. }) => shelved.to_string(),
                _ => "not ready (run `zerolab up`)".to_owned(),
            };
            let run = NodeRun { node: t.node.clone(), outcome: Outcome::Failed(why) };
            done(&run);
            run
        })
        .collect();
    if !ready.is_empty() {
        let keeper = lab.keeper(program).await?;
        let command = Arc::<str>::from(command);
        let results = run_parallel(&ready, parallel, move |target| {
            let (keeper, command, done) = (keeper.clone(), command.clone(), done.clone());
            async move {
                let outcome = match keeper.exec(&target, &command, COMMAND_TIMEOUT).await {
                    Ok(Ok(output)) => Outcome::Ran(output),
                    Ok(Err(failure)) => Outcome::Failed(failure.cause),
                    Err(e) => Outcome::Failed(error_chain(&e)),
                };
                let run = NodeRun { node: target.node.clone(), outcome };
                done(&run);
                Ok(run)
            }
        })
        .await;
        runs.extend(results.into_iter().map(|(node, result)| {
            result.unwrap_or_else(|e| NodeRun { node, outcome: Outcome::Failed(error_chain(&e)) })
        }));
    }
    let order = |run: &NodeRun| cluster.nodes().iter().position(|n| n.name == run.node);
    runs.sort_by_key(order);
    Ok(runs)
}
