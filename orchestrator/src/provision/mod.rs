//! Provisioning steps: what `zerolab up` runs on the nodes once every node is ready (the
//! cluster file's `provision:` list, checked by [`crate::cluster::provision`]).
//!
//! [`provision`] runs the steps in file order, each on all its nodes at once, over the
//! connections the lab's keeper holds (as `exec` does), as root (`sudo -n` when the login
//! user is not root). A step starts only when the step before it has finished on all its
//! nodes, so an `after:` (which may name only earlier steps) always holds: node-1's
//! bootstrap is done everywhere it runs before any join starts. After a step a node's
//! `ready:` command is retried until it exits 0 or its deadline passes.
//!
//! A step whose content did not change since it last succeeded on a node is not run
//! there again ([`record`]), unless it is `always: true` or [`Reprovision`] asks for it.
//! The first failure stops: the step's other nodes finish, later steps do not start, and
//! the error names node, step and the end of its output (kept whole in
//! `LAB/provision/<node>/<step>.log`).

pub mod record;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zerolab_sandbox::session::error_chain;

use self::record::{content_hash, StepRecord};
use crate::backoff::Backoff;
use crate::cluster::provision::{Action, Ready};
use crate::cluster::{Cluster, Step};
use crate::keeper::{Keeper, KeeperError};
use crate::ssh::{run_parallel, Output, Target, PARALLEL};

/// How long one run of a step's script (or one piece of an upload) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(3600);
/// Lines of a failed step's output its error shows.
pub const TAIL_LINES: usize = 10;

/// Which steps run even though their content did not change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Reprovision {
    /// Only changed, failed, new and `always` steps.
    #[default]
    Changed,
    /// Every step (`up --reprovision`).
    All,
    /// This step too (`up --reprovision STEP`).
    Step(String),
}

/// What stops provisioning.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// `--reprovision STEP` names no step of the cluster file.
    #[error("no provisioning step named `{name}`; expected one of: {known}")]
    UnknownStep { name: String, known: String },
    /// A step failed on a node: later steps did not run.
    #[error(
        "step `{step}` failed on {node}: {cause}; later steps did not run (full output: {}); fix it and run \
         `zerolab up` again",
        log.display()
    )]
    Failed { step: String, node: String, cause: String, tail: Vec<String>, log: PathBuf },
    /// The lab's connection keeper.
    #[error(transparent)]
    Keeper(#[from] KeeperError),
    /// A record or log in the lab directory.
    #[error("cannot write {}; check the lab directory's permissions", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How one step ended on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// It ran and succeeded (its readiness check too).
    Ran,
    /// Its content succeeded there before: not run.
    Unchanged,
    /// It failed: why, as one line, and the end of its output.
    Failed { cause: String, tail: Vec<String> },
}

/// One step on one node, handed to the progress callback as it finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The step.
    pub step: String,
    /// The node.
    pub node: String,
    /// How it ended.
    pub outcome: StepOutcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// Checks `reprovision` against the steps of `cluster` (before anything is done).
pub fn check(cluster: &Cluster, reprovision: &Reprovision) -> Result<(), ProvisionError> {
    let Reprovision::Step(name) = reprovision else { return Ok(()) };
    if cluster.provision().iter().any(|step| &step.name == name) {
        return Ok(());
    }
    let known: Vec<&str> = cluster.provision().iter().map(|s| s.name.as_str()).collect();
    let known =
        if known.is_empty() { "none (the cluster file has no `provision`)".to_owned() } else { known.join(", ") };
    Err(ProvisionError::UnknownStep { name: name.clone(), known })
}

/// Runs the steps of `cluster` on `targets` (every node, ready) through `keeper`,
/// recording each in `lab_dir`; `progress` gets each step's report per node as it
/// finishes. Returns every report, step by step.
pub async fn provision(
    lab_dir: &Path,
    cluster: &Cluster,
    targets: &[Target],
    keeper: &Keeper,
    reprovision: &Reprovision,
    progress: Arc<dyn Fn(&StepReport) + Send + Sync>,
) -> Result<Vec<StepReport>, ProvisionError> {
    check(cluster, reprovision)?;
    let mut reports = Vec::new();
    for step in cluster.provision() {
        let forced = step.always
            || match reprovision {
                Reprovision::Changed => false,
                Reprovision::All => true,
                Reprovision::Step(name) => *name == step.name,
            };
        let hash = content_hash(step);
        let nodes: Vec<Target> = targets.iter().filter(|t| step.nodes.contains(&t.node)).cloned().collect();
        let shared = Arc::new((step.clone(), hash, lab_dir.to_path_buf(), keeper.clone(), progress.clone()));
        let results = run_parallel(&nodes, PARALLEL, move |target| {
            let shared = shared.clone();
            async move {
                let (step, hash, lab_dir, keeper, progress) = &*shared;
                let report = on_node(step, hash, lab_dir, keeper, &target, forced).await;
                if let Ok(report) = &report {
                    progress(report);
                }
                Ok(report)
            }
        })
        .await;
        let mut failure = None;
        for (node, result) in results {
            let report = result.unwrap_or_else(|e| {
                let outcome = StepOutcome::Failed { cause: error_chain(&e), tail: Vec::new() };
                Ok(StepReport { step: step.name.clone(), node: node.clone(), outcome, elapsed: Duration::ZERO })
            })?;
            if let (StepOutcome::Failed { cause, tail }, None) = (&report.outcome, &failure) {
                let log = record::log_path(lab_dir, &node, &step.name);
                failure = Some(ProvisionError::Failed {
                    step: step.name.clone(),
                    node,
                    cause: cause.clone(),
                    tail: tail.clone(),
                    log,
                });
            }
            reports.push(report);
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
    }
    Ok(reports)
}

/// Runs `step` on one node unless its content already succeeded there, and records it.
async fn on_node(
    step: &Step,
    hash: &str,
    lab_dir: &Path,
    keeper: &Keeper,
    target: &Target,
    forced: bool,
) -> Result<StepReport, ProvisionError> {
    let started = Instant::now();
    let report = |outcome| StepReport {
        step: step.name.clone(),
        node: target.node.clone(),
        outcome,
        elapsed: started.elapsed(),
    };
    let previous = record::load(lab_dir, &target.node, &step.name);
    if !forced && previous.is_some_and(|r| r.ok && r.hash == hash) {
        return Ok(report(StepOutcome::Unchanged));
    }
    let mut log = Vec::new();
    let result = match run(step, keeper, target, &mut log).await {
        Ok(()) => match &step.ready {
            Some(ready) => wait_ready(ready, keeper, target, &mut log).await,
            None => Ok(()),
        },
        Err(cause) => Err(cause),
    };
    let record = StepRecord { hash: hash.to_owned(), ok: result.is_ok() };
    record::save(lab_dir, &target.node, &step.name, &record, &log).map_err(|source| ProvisionError::Record {
        path: record::record_path(lab_dir, &target.node, &step.name),
        source,
    })?;
    Ok(report(match result {
        Ok(()) => StepOutcome::Ran,
        Err(cause) => StepOutcome::Failed { cause, tail: tail(&log) },
    }))
}

/// Runs the step's action; its output goes to `log`; `Err` says why it failed.
async fn run(step: &Step, keeper: &Keeper, target: &Target, log: &mut Vec<u8>) -> Result<(), String> {
    let commands = match &step.action {
        Action::Script(script) => vec![script.clone()],
        Action::Files(files) => files.iter().flat_map(upload::commands).collect(),
    };
    for command in commands {
        let output = exec(keeper, target, &command, STEP_TIMEOUT).await?;
        log.extend_from_slice(&output.stdout);
        log.extend_from_slice(&output.stderr);
        if !output.success() {
            return Err(ended(&output));
        }
    }
    Ok(())
}

/// Retries `ready` until it exits 0 or its timeout passes; each try's output goes to `log`.
async fn wait_ready(ready: &Ready, keeper: &Keeper, target: &Target, log: &mut Vec<u8>) -> Result<(), String> {
    let deadline = Instant::now() + ready.timeout;
    let mut backoff = Backoff::steady(Duration::from_millis(200), ready.timeout);
    let last = loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        match exec(keeper, target, &ready.command, left).await {
            Ok(output) if output.success() => return Ok(()),
            Ok(output) => {
                log.extend_from_slice(format!("ready check: {}\n", ended(&output)).as_bytes());
                log.extend_from_slice(&output.stdout);
                log.extend_from_slice(&output.stderr);
                let last = ended(&output);
                match backoff.next_wait() {
                    Some(delay) if Instant::now() + delay < deadline => tokio::time::sleep(delay).await,
                    _ => break last,
                }
            }
            Err(cause) => match backoff.next_wait() {
                Some(delay) if Instant::now() + delay < deadline => tokio::time::sleep(delay).await,
                _ => break cause,
            },
        }
    };
    Err(format!("ready check `{}` did not pass within {}s (last: {last})", ready.command, ready.timeout.as_secs()))
}

/// Runs `command` as root on `target` through the keeper; `Err` when it could not run.
async fn exec(keeper: &Keeper, target: &Target, command: &str, timeout: Duration) -> Result<Output, String> {
    let sudo = if target.user == "root" { "" } else { "sudo -n " };
    let command = format!("{sudo}sh -c {}", upload::quote(command));
    match keeper.exec(target, &command, timeout).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(failure)) => Err(failure.cause),
        Err(e) => Err(error_chain(&e)),
    }
}

/// How a command ended, as words: `exit status 3`, `killed by signal KILL`.
fn ended(output: &Output) -> String {
    match (&output.status, &output.signal) {
        (Some(status), _) => format!("exit status {status}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended without a status".to_owned(),
    }
}

/// The last [`TAIL_LINES`] non-empty lines of `log`.
fn tail(log: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(log);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].iter().map(|l| (*l).to_owned()).collect()
}
