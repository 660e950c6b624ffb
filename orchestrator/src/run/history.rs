//! The runs a lab has seen, for `zerolab jobs`, `logs` and `cancel`: each is a directory
//! `LAB/jobs/<id>/` holding its [`JobRecord`] and, per finished instance, its outputs.
//!
//! A run is named by its id, or by its job's name for the latest run of that job. Its
//! state is its record's, except that a run recorded `running` whose lock nobody holds
//! was left behind (`interrupted`, or `cancelled` when it was cancelled) until `zerolab
//! wait` takes it up. An instance that has not finished has no outputs in the
//! directory yet: `logs` then asks its node's agent for what it has written so far
//! ([`follow`] reads on until the instance ends), and `cancel` kills its session (after
//! leaving a mark in the run's directory, so the run places no instance again and
//! records itself `cancelled`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::StatusCode;

use super::follow::Stream;
use super::record::{JobRecord, RunState, CANCELLED, FILE};
use super::run_dir::driven;
use super::{RunError, POLL};
use crate::agent_client::{self, AgentError, Link};
use crate::cluster::Cluster;
use crate::lab::Lab;
use crate::up::UpError;
use zerolab_sandbox::session::error_chain as cause;

/// Limit for each agent request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What `zerolab jobs` shows of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The record.
    pub record: JobRecord,
    /// Where the run is (see the module doc).
    pub state: RunState,
    /// Instances that ended.
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
        let ended = |i: &super::RecordedInstance| i.outcome.is_some() || path.join(&i.name).join("report").is_file();
        let finished = record.instances.iter().filter(|i| ended(i)).count();
        let state = state_of(&record, &path);
        runs.push(RunSummary { record, state, finished });
    }
    runs.sort_by_key(|run| (run.record.started_ms.max(run.record.started * 1000), run.record.id.clone()));
    Ok(runs)
}

/// The state of the run of `record` in `dir`: the record's, or, for a run left behind
/// (recorded `running`, nobody holding its lock), `interrupted` (`cancelled` when it was).
pub fn state_of(record: &JobRecord, dir: &Path) -> RunState {
    let behind = !record.state.is_final() && !driven(dir);
    match record.state {
        _ if behind && dir.join(CANCELLED).exists() => RunState::Cancelled,
        RunState::Running if behind => RunState::Interrupted,
        state => state,
    }
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

/// Follows run `name`'s instance `instance` (every instance when `None`) to its end:
/// `out` gets each new piece of stdout and stderr (the streams the agent keeps), read
/// from the node's agent while the instance runs, from the results directory once it
/// was collected. Returns when every followed instance ended, or the run did.
pub async fn follow(
    root: &Path,
    cluster: &Cluster,
    program: &Path,
    name: &str,
    instance: Option<&str>,
    mut out: impl FnMut(&str, Stream, &[u8]),
) -> Result<(), HistoryError> {
    let lab = Lab::at(root, cluster.name()).map_err(UpError::from).map_err(RunError::from)?;
    let (record, dir) = find(&lab, name)?;
    if let Some(instance) = instance {
        if !record.instances.iter().any(|i| i.name == instance) {
            let known: Vec<&str> = record.instances.iter().map(|i| i.name.as_str()).collect();
            let (run, name) = (record.id.clone(), instance.to_owned());
            return Err(HistoryError::UnknownInstance { run, name, known: known.join(", ") });
        }
    }
    let handle = Lab::open_any(root, cluster).map_err(RunError::from)?;
    let targets = handle.targets().to_vec();
    let mux = handle.keeper(program).await.map_err(RunError::from)?;
    let followed: Vec<String> =
        record.instances.iter().filter(|i| instance.is_none_or(|n| n == i.name)).map(|i| i.name.clone()).collect();
    // Per instance: bytes given of stdout and stderr, and whether it is done.
    let mut read: Vec<([u64; 2], bool)> = vec![([0; 2], false); followed.len()];
    loop {
        let record = JobRecord::load(&dir)?;
        let over = state_of(&record, &dir).is_final();
        for (slot, name) in followed.iter().enumerate() {
            let Some(entry) = record.instances.iter().find(|i| &i.name == name) else { continue };
            if read[slot].1 {
                continue;
            }
            let kept: Vec<Stream> =
                Stream::BOTH.into_iter().filter(|s| entry.collect.iter().any(|c| c.stream == s.name())).collect();
            // Its outcome is recorded once its outputs are whole in the results directory.
            let collected = entry.outcome.is_some() || (over && dir.join(name).join("report").is_file());
            if collected || entry.session.is_none() {
                // Collected (or never started): what is left is in the results directory.
                for stream in &kept {
                    let offset = &mut read[slot].0[*stream as usize];
                    let saved = std::fs::read(dir.join(name).join(stream.name())).unwrap_or_default();
                    let rest = saved.get(*offset as usize..).unwrap_or_default();
                    out(name, *stream, rest);
                    *offset += rest.len() as u64;
                }
                read[slot].1 = collected || over;
                continue;
            }
            let (Some(session), Some(target)) = (&entry.session, targets.iter().find(|t| t.node == entry.node)) else {
                read[slot].1 = true;
                continue;
            };
            let mut ended = true;
            for stream in &kept {
                let offset = read[slot].0[*stream as usize];
                let mut bytes = Vec::new();
                let link = Link::Keeper(&mux, target);
                match agent_client::follow_session_output(
                    link,
                    session,
                    stream.name(),
                    offset,
                    &mut bytes,
                    REQUEST_TIMEOUT,
                )
                .await
                {
                    Ok(followed) => {
                        out(name, *stream, &bytes);
                        read[slot].0[*stream as usize] += followed.bytes;
                        ended &= followed.ended;
                    }
                    // Not kept (yet) or gone from the agent: the results directory has it once collected.
                    Err(agent_client::SaveError::Agent(AgentError::Status {
                        status: StatusCode::NOT_FOUND, ..
                    })) => ended = false,
                    Err(e) => {
                        let (instance, node) = (name.clone(), entry.node.clone());
                        return Err(HistoryError::Agent { instance, node, cause: cause(&e) });
                    }
                }
            }
            read[slot].1 = ended || over;
        }
        if read.iter().all(|(_, done)| *done) {
            return Ok(());
        }
        tokio::time::sleep(POLL * 4).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::run_dir::RunDir;
    use super::*;

    fn record(id: &str, state: RunState) -> JobRecord {
        JobRecord {
            id: id.into(),
            job: "j".into(),
            file: "j.yaml".into(),
            started: 1,
            started_ms: 0,
            state,
            cause: None,
            ended: None,
            instances: Vec::new(),
        }
    }

    #[test]
    fn a_running_record_nobody_drives_reads_interrupted_or_cancelled() {
        let lab = tempfile::tempdir().unwrap();
        let run = RunDir::create(lab.path(), "j").unwrap();
        let dir = run.path.clone();
        let running = record(&run.id, RunState::Running);
        assert_eq!(state_of(&running, &dir), RunState::Running);
        drop(run);
        assert_eq!(state_of(&running, &dir), RunState::Interrupted);
        assert_eq!(state_of(&record("x", RunState::Detached), &dir), RunState::Detached);
        assert_eq!(state_of(&record("x", RunState::Ok), &dir), RunState::Ok);
        std::fs::write(dir.join(CANCELLED), b"").unwrap();
        assert_eq!(state_of(&running, &dir), RunState::Cancelled);
        assert_eq!(state_of(&record("x", RunState::Detached), &dir), RunState::Cancelled);
        assert_eq!(state_of(&record("x", RunState::Failed), &dir), RunState::Failed);
    }

    #[test]
    fn a_record_of_an_older_zerolab_reads_as_running_and_states_round_trip() {
        let old = r#"{"id":"j-1","job":"j","file":"j.yaml","started":1,"instances":[]}"#;
        assert_eq!(serde_json::from_str::<JobRecord>(old).unwrap(), record("j-1", RunState::Running));
        let mut ended = record("j-1", RunState::Running);
        ended.end(RunState::Cancelled, Some("cancelled".into()));
        let json = serde_json::to_string(&ended).unwrap();
        assert!(json.contains(r#""state":"cancelled","cause":"cancelled","ended":"#), "{json}");
        assert_eq!(serde_json::from_str::<JobRecord>(&json).unwrap(), ended);
    }
}
