//! `zerolab exec`: one shell command on many nodes at once.
//!
//! [`exec`] picks the selected nodes (all of them without a selector), runs the command
//! on each node that the lab records as ready, over the connections the lab's keeper
//! holds ([`Mux`], started by `program` when it does not run), at most `parallel` nodes
//! at a time ([`run_parallel`]), and hands each node's
//! [`NodeRun`] to a callback as soon as that node finishes, so the caller can print its
//! output at once. A selected node that is not ready is not contacted: its run says why.
//!
//! The command's words are joined with spaces and run by the node's login shell, as
//! `ssh HOST CMD...` does, so `exec -- 'echo $HOSTNAME'` expands on the node.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{Cluster, NodeSelector, SelectorError};
use crate::lab::{Lab, NodeState};
use crate::mux::{Mux, MuxError};
use crate::provider::{self, ProviderError};
use crate::ssh::{run_parallel, Output};
use crate::up::{cause, targets, UpError};

/// Commands in flight at once by default (each is one channel on a kept connection).
pub const PARALLEL: usize = 128;
/// How long a command may run on a node before it is given up on.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3600);

/// What can stop `exec` before any node is contacted.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The lab has not been brought up.
    #[error("lab {lab} is not up; run `zerolab up` first")]
    NotUp {
        /// The lab's name.
        lab: String,
    },
    /// `--nodes` selects nothing or names an unknown node.
    #[error(transparent)]
    Selector(#[from] SelectorError),
    /// The lab or its provider.
    #[error(transparent)]
    Up(#[from] UpError),
    /// The lab's connection keeper.
    #[error(transparent)]
    Mux(#[from] MuxError),
}

impl From<ProviderError> for ExecError {
    fn from(error: ProviderError) -> ExecError {
        ExecError::Up(UpError::Provider(error))
    }
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
    let provider = provider::of(cluster)?;
    let selected: Vec<&str> = match selector {
        Some(selector) => cluster.select(selector)?.iter().map(|n| n.name.as_str()).collect(),
        None => cluster.nodes().iter().map(|n| n.name.as_str()).collect(),
    };
    let lab = Lab::at(root, cluster.name()).map_err(UpError::from)?;
    if !lab.exists() {
        return Err(ExecError::NotUp { lab: cluster.name().to_owned() });
    }
    let state = lab.load_state().map_err(UpError::from)?;
    let (ready, not_ready): (Vec<_>, Vec<_>) = targets(&lab, cluster, provider)?
        .into_iter()
        .filter(|t| selected.contains(&t.node.as_str()))
        .partition(|t| state.nodes.get(&t.node).is_some_and(|r| r.state == NodeState::Ready));
    let done = Arc::new(done);
    let mut runs: Vec<NodeRun> = not_ready
        .iter()
        .map(|t| {
            let run = NodeRun { node: t.node.clone(), outcome: Outcome::Failed("not ready (run `zerolab up`)".into()) };
            done(&run);
            run
        })
        .collect();
    if !ready.is_empty() {
        let mux = Mux::open(lab.dir(), program).await?;
        let command = Arc::<str>::from(command);
        let results = run_parallel(&ready, parallel, move |target| {
            let (mux, command, done) = (mux.clone(), command.clone(), done.clone());
            async move {
                let outcome = match mux.exec(&target, &command, COMMAND_TIMEOUT).await {
                    Ok(Ok(output)) => Outcome::Ran(output),
                    Ok(Err(failure)) => Outcome::Failed(failure.cause),
                    Err(e) => Outcome::Failed(cause(&e)),
                };
                let run = NodeRun { node: target.node.clone(), outcome };
                done(&run);
                Ok(run)
            }
        })
        .await;
        runs.extend(
            results
                .into_iter()
                .map(|(node, result)| result.unwrap_or_else(|e| NodeRun { node, outcome: Outcome::Failed(cause(&e)) })),
        );
    }
    let order = |run: &NodeRun| cluster.nodes().iter().position(|n| n.name == run.node);
    runs.sort_by_key(order);
    Ok(runs)
}
