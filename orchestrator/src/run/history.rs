//! The runs a lab has seen, for `zerolab jobs`, `logs` and `cancel`: each is a directory
//! `LAB/jobs/<id>/` holding its [`JobRecord`] and, per finished instance, its outputs.
//!
//! A run is named by its id, or by its job's name for the latest run of that job. An
//! instance that has not finished has no outputs in the directory yet: `logs` then asks
//! its node's agent for what it has written so far, and `cancel` kills its session
//! (after leaving a mark in the run's directory, so the run places no instance again).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::StatusCode;

use super::record::{JobRecord, CANCELLED, FILE};
use super::RunError;
use crate::agent_client::{self, AgentError, Link};
use crate::cluster::Cluster;
use crate::lab::Lab;
use crate::up::UpError;
use zerolab_sandbox::session::error_chain as cause;

/// Limit for each agent request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What `zerolab jobs` shows of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The record.
    pub record: JobRecord,
    /// Instances whose report is in the directory.
    pub finished: usize,
}

/// Why a run could not be found or acted on.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No run by that name or id.
    #[error("lab {lab} has no run `{name}`; `zerolab jobs` lists them")]
    Unknown { lab: String, name: String },
    /// No instance by that name in the run.
    #[error("run {run} has no instance `{name}`; it has {known}")]
    UnknownInstance { run: String, name: String, known: String },
    /// The instance's agent did not give its output.
    #[error("instance {instance} on {node}: {cause}")]
    Agent { instance: String, node: String, cause: String },
    /// The run's files.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Every run of the lab, oldest first.
pub fn runs(lab: &Lab) -> Result<Vec<RunSummary>, HistoryError> {
    let dir = lab.dir().join("jobs");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut runs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.join(FILE).is_file() {
            continue;
        }
        let record = JobRecord::load(&path)?;
        let finished = record.instances.iter().filter(|i| path.join(&i.name).join("report").is_file()).count();
        runs.push(RunSummary { record, finished });
    }
    runs.sort_by(|a, b| (a.record.started, &a.record.id).cmp(&(b.record.started, &b.record.id)));
    Ok(runs)
}

/// The run `name` (an id, or a job's name for its latest run) and its directory.
pub fn find(lab: &Lab, name: &str) -> Result<(JobRecord, PathBuf), HistoryError> {
    let found = runs(lab)?.into_iter().rev().find(|r| r.record.id == name || r.record.job == name);
    match found {
        Some(run) => {
            let dir = lab.dir().join("jobs").join(&run.record.id);
            Ok((run.record, dir))
        }
        None => Err(HistoryError::Unknown { lab: lab.name().to_owned(), name: name.to_owned() }),
    }
}

/// One instance's output: from the results directory once it finished, else what its
/// agent has so far (`stream` is `stdout` or `stderr`).
pub async fn output(
    root: &Path,
    cluster: &Cluster,
    program: &Path,
    run: &str,
    instance: &str,
    stream: &str,
) -> Result<Vec<u8>, HistoryError> {
    let lab = Lab::at(root, cluster.name()).map_err(UpError::from).map_err(RunError::from)?;
    let (record, dir) = find(&lab, run)?;
    let Some(entry) = record.instances.iter().find(|i| i.name == instance) else {
        let known: Vec<&str> = record.instances.iter().map(|i| i.name.as_str()).collect();
        return Err(HistoryError::UnknownInstance {
            run: record.id,
            name: instance.to_owned(),
            known: known.join(", "),
        });
    };
    let saved = dir.join(instance).join(stream);
    if saved.is_file() {
        return std::fs::read(&saved).map_err(|source| RunError::Results { path: saved, source }.into());
    }
    let Some(session) = &entry.session else { return Ok(Vec::new()) };
    let handle = Lab::open_any(root, cluster).map_err(RunError::from)?;
    let Some(target) = handle.targets().iter().find(|t| t.node == entry.node).cloned() else { return Ok(Vec::new()) };
    let mux = handle.keeper(program).await.map_err(RunError::from)?;
    match agent_client::session_output(Link::Keeper(&mux, &target), session, stream, REQUEST_TIMEOUT).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        // Not kept (yet): the session is still preparing, or the job sent it to a node file.
        Err(AgentError::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(Vec::new()),
        Err(e) => {
            Err(HistoryError::Agent { instance: instance.to_owned(), node: entry.node.clone(), cause: cause(&e) })
        }
    }
}

/// Kills every session of run `name` that is still running; returns the instances
/// asked to stop, with the error for those whose node did not answer. The run's
/// directory is marked first, and its record read after: an instance the run places
/// again is either in the record read here or sees the mark and is killed by the run.
pub async fn cancel(
    root: &Path,
    cluster: &Cluster,
    program: &Path,
    name: &str,
) -> Result<Vec<(String, Result<(), String>)>, HistoryError> {
    let lab = Lab::at(root, cluster.name()).map_err(UpError::from).map_err(RunError::from)?;
    let (_, dir) = find(&lab, name)?;
    let marked = |source| RunError::Results { path: dir.clone(), source };
    std::fs::write(dir.join(CANCELLED), b"").map_err(marked)?;
    let record = JobRecord::load(&dir)?;
    let handle = Lab::open_any(root, cluster).map_err(RunError::from)?;
    let targets = handle.targets();
    let mux = handle.keeper(program).await.map_err(RunError::from)?;
    let mut stopped = Vec::new();
    for instance in &record.instances {
        let (Some(session), false) = (&instance.session, dir.join(&instance.name).join("report").is_file()) else {
            continue;
        };
        let Some(target) = targets.iter().find(|t| t.node == instance.node) else { continue };
        let result = agent_client::kill_session(Link::Keeper(&mux, target), session, REQUEST_TIMEOUT).await;
        stopped.push((instance.name.clone(), result.map(drop).map_err(|e| cause(&e))));
    }
    Ok(stopped)
}
