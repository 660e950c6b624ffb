//! `zerolab run`: a job on the lab, from placement to results.
//!
//! The steps, in order, each finished for every node or instance before the next:
//! 1. check: the lab is up, the job's instances can be placed ([`Job::check_placement`]),
//!    and every node they go to is ready;
//! 2. plan ([`plan`]): each instance's node and session request, each local file hashed
//!    once; what the runner cannot do is refused here, before any node is touched;
//! 3. upload: every node gets the programs and inputs its instances need, once, and only
//!    the blobs it does not already store (`HEAD`, then `PUT /v1/blobs/{sha256}`);
//! 4. start: one session per instance through its node's agent, all at once;
//! 5. watch: every [`POLL`], one `GET /v1/sessions` per node with running instances. A
//!    finished instance's report, stdout and stderr go to the results directory at once.
//!    An instance that fails stops the others (fail fast); a node whose agent cannot be
//!    reached for [`NODE_LOSS`] is lost, with its instances, and stops the others too.
//!    An instance of a group with `retries` is placed again on another node instead,
//!    until its retries are spent (`retry.rs`).
//!
//! Every request goes through the lab's connection keeper ([`Mux`]), so no step pays an
//! SSH handshake. The results directory is `LAB/jobs/<id>/`: `job.json` (the run: which
//! instance on which node, in which session; written once the sessions started), then
//! per instance `report` (ZeroVM's six lines) and the outputs its agent kept: `stdout`
//! and `stderr` (unless the job sent them to node files) and `output` (when the job
//! sends it to a local file); a failed attempt's in `attempt-N/` below them. [`history`]
//! reads them back (`jobs`, `logs`, `cancel`).

mod hashes;
pub mod history;
pub mod plan;
mod record;
mod retry;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use zerolab_agent_api::{Report, SessionState};

use self::plan::{Blob, Plan, PlanError};
pub use self::record::{Attempt, JobRecord, RecordedInstance};
use self::retry::Retries;
use crate::agent_client::{self, AgentError, Link};
use crate::cluster::Cluster;
use crate::job::Job;
use crate::lab::{Lab, NodeState};
use crate::mux::{Mux, MuxError};
use crate::provider;
use crate::ssh::Target;
use crate::up::{cause, targets, UpError};

/// How often running instances are looked at.
pub const POLL: Duration = Duration::from_millis(50);
/// How long a node's agent may fail to answer before the node counts as lost.
pub const NODE_LOSS: Duration = Duration::from_secs(3);
/// Limit for each request but uploads and listings.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for a listing: an agent that takes longer is as good as gone this round.
const LIST_TIMEOUT: Duration = Duration::from_secs(2);
/// Limit for one blob's upload.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// How long stopped instances have to end after a failure.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What can stop a run as a whole (an instance's own failure is in its result).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The lab has not been brought up.
    #[error("lab {lab} is not up; run `zerolab up` first")]
    NotUp { lab: String },
    /// A node the job needs is not ready.
    #[error("node {node} is not ready ({state}); run `zerolab up` to repair it, or place the job elsewhere")]
    NotReady { node: String, state: String },
    /// The instances cannot be placed on the lab.
    #[error("the job cannot be placed on lab {lab}:\n{problems}")]
    Placement { lab: String, problems: String },
    /// The plan.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The lab or its provider.
    #[error(transparent)]
    Up(Box<UpError>),
    /// The lab's connection keeper.
    #[error(transparent)]
    Mux(Box<MuxError>),
    /// A node did not take the job's programs or inputs.
    #[error("node {node}: uploading {} failed", path.display())]
    Upload {
        node: String,
        path: PathBuf,
        #[source]
        source: Box<AgentError>,
    },
    /// An instance could not be started (the others were stopped).
    #[error("instance {instance} on {node} could not be started: {cause}")]
    Start { instance: String, node: String, cause: String },
    /// The results directory.
    #[error("cannot write the job's results in {}", path.display())]
    Results {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<UpError> for RunError {
    fn from(error: UpError) -> RunError {
        RunError::Up(Box::new(error))
    }
}

impl From<MuxError> for RunError {
    fn from(error: MuxError) -> RunError {
        RunError::Mux(Box::new(error))
    }
}

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `zerolab` executable, to start the lab's connection keeper when none runs.
    pub program: PathBuf,
}

/// How many instances are where, for progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Not started yet: the agent prepares its devices or waits for its channels, or
    /// it is being placed again.
    pub pending: usize,
    /// Running.
    pub running: usize,
    /// Ended well.
    pub done: usize,
    /// Failed, stopped or lost.
    pub failed: usize,
    /// How many times instances were placed again (`retries`); those being placed now
    /// are pending.
    pub retried: usize,
}

/// How one instance ended.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceResult {
    /// The instance.
    pub name: String,
    /// Its node.
    pub node: String,
    /// Its report, when its session ended on a node that answered.
    pub report: Option<Report>,
    /// Why it has no report or was stopped (`stopped: map-2 failed`, `node-2 lost: ...`).
    pub cause: Option<String>,
    /// Its earlier attempts, oldest first, when it was placed again; empty otherwise.
    pub attempts: Vec<Attempt>,
}

impl InstanceResult {
    /// True when the guest ran and exited 0 by itself.
    pub fn success(&self) -> bool {
        self.cause.is_none()
            && self.report.as_ref().is_some_and(|r| r.return_code == 0 && r.user_code == 0 && r.exit_state == "ok")
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The run's id (`wordcount-1763941234567`).
    pub id: String,
    /// Its results directory.
    pub dir: PathBuf,
    /// Every instance's result, in the job's order.
    pub instances: Vec<InstanceResult>,
}

impl JobRun {
    /// True when every instance succeeded.
    pub fn success(&self) -> bool {
        self.instances.iter().all(InstanceResult::success)
    }
}

/// Runs `job` on the lab of `cluster` under `root`; `progress` gets the counts whenever
/// they change. Returns every instance's result once all have ended.
pub async fn run(
    root: &Path,
    cluster: &Cluster,
    job: &Job,
    options: &RunOptions,
    progress: impl Fn(&Counts),
) -> Result<JobRun, RunError> {
    let begun = Instant::now();
    let provider = provider::of(cluster).map_err(UpError::from)?;
    let lab = Lab::at(root, cluster.name()).map_err(UpError::from)?;
    if !lab.exists() {
        return Err(RunError::NotUp { lab: cluster.name().to_owned() });
    }
    let placement = job
        .check_placement(cluster)
        .map_err(|problems| RunError::Placement { lab: cluster.name().to_owned(), problems: problems.to_string() })?;
    let state = lab.load_state().map_err(UpError::from)?;
    for node in placement.nodes() {
        let node_state = state.nodes.get(node).map(|r| r.state.clone()).unwrap_or(NodeState::Declared);
        if node_state != NodeState::Ready {
            return Err(RunError::NotReady { node: node.to_owned(), state: format!("{node_state:?}").to_lowercase() });
        }
    }
    let targets: HashMap<String, Target> =
        targets(&lab, cluster, provider).map_err(UpError::from)?.into_iter().map(|t| (t.node.clone(), t)).collect();
    let targets = Arc::new(targets);
    let mux = Mux::open(lab.dir(), &options.program).await?;
    let listen_at = channel_addresses(&mux, &targets, plan::listening_nodes(job, &placement)).await?;
    let id = format!("{}-{}", job.name(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis());
    let mut plan = plan::plan(job, &placement, &id, &listen_at, lab.dir()).await?;
    let dir = lab.dir().join("jobs").join(&id);
    let mut record = JobRecord::new(&id, job, &plan);

    tracing::debug!(elapsed = ?begun.elapsed(), instances = plan.instances.len(), "planned");
    upload(&mux, &targets, &plan).await?;
    tracing::debug!(elapsed = ?begun.elapsed(), "uploaded");
    let sessions = start(&mux, &targets, &plan).await;
    tracing::debug!(elapsed = ?begun.elapsed(), "all sessions started");
    for (instance, session) in record.instances.iter_mut().zip(&sessions) {
        instance.session = session.as_ref().ok().cloned();
    }
    record.save(&dir)?;
    if let Some((index, error)) = sessions.iter().enumerate().find_map(|(i, s)| s.as_ref().err().map(|e| (i, e))) {
        let started: Vec<(usize, String)> =
            sessions.iter().enumerate().filter_map(|(i, s)| s.as_ref().ok().map(|id| (i, id.clone()))).collect();
        stop(&mux, &targets, &plan, &started).await;
        let instance = &plan.instances[index];
        return Err(RunError::Start {
            instance: instance.name.clone(),
            node: instance.node.clone(),
            cause: error.clone(),
        });
    }
    let mut ids: Vec<String> = sessions.into_iter().map(|s| s.unwrap_or_default()).collect();
    let mut retries = Retries::new(job, cluster, &state, record, dir.clone(), mux.clone(), targets.clone());
    let progress = |counts: &Counts| {
        tracing::debug!(elapsed = ?begun.elapsed(), done = counts.done, failed = counts.failed, "progress");
        progress(counts);
    };
    let instances = watch(&mux, &targets, &mut plan, &mut ids, &dir, &mut retries, progress).await?;
    tracing::debug!(elapsed = ?begun.elapsed(), "all instances ended, outputs collected");
    Ok(JobRun { id, dir, instances })
}

/// Where each of `nodes` accepts channel connections (`IP:PORT`), asked of their agents
/// at once; a node whose agent has no channel port is left out (the plan says so).
async fn channel_addresses(
    mux: &Mux,
    targets: &Arc<HashMap<String, Target>>,
    nodes: std::collections::BTreeSet<String>,
) -> Result<BTreeMap<String, String>, RunError> {
    let mut asks = JoinSet::new();
    for node in nodes {
        let (mux, targets) = (mux.clone(), targets.clone());
        asks.spawn(async move {
            let target = &targets[&node];
            let facts =
                agent_client::get::<zerolab_agent_api::Facts>(Link::Keeper(&mux, target), "/v1/facts", REQUEST_TIMEOUT)
                    .await
                    .map_err(|e| RunError::Start {
                        instance: format!("(channels to {node})"),
                        node: node.clone(),
                        cause: cause(&e),
                    })?;
            let address = facts.channel_port.map(|port| match target.address.parse::<std::net::Ipv6Addr>() {
                Ok(_) => format!("[{}]:{port}", target.address),
                Err(_) => format!("{}:{port}", target.address),
            });
            Ok::<_, RunError>((node, address))
        });
    }
    let mut addresses = BTreeMap::new();
    while let Some(joined) = asks.join_next().await {
        if let Ok(result) = joined {
            let (node, address) = result?;
            if let Some(address) = address {
                addresses.insert(node, address);
            }
        }
    }
    Ok(addresses)
}

/// Stores on every node the blobs it lacks, all nodes at once.
async fn upload(mux: &Mux, targets: &Arc<HashMap<String, Target>>, plan: &Plan) -> Result<(), RunError> {
    let mut uploads: JoinSet<Result<(), RunError>> = JoinSet::new();
    for (node, blobs) in plan.blobs.clone() {
        let (mux, targets) = (mux.clone(), targets.clone());
        uploads.spawn(async move { upload_to(&mux, &targets[&node], &blobs).await });
    }
    while let Some(result) = uploads.join_next().await {
        result.unwrap_or(Ok(()))?;
    }
    Ok(())
}

/// Stores on `target`'s node those of `blobs` it lacks.
async fn upload_to(mux: &Mux, target: &Target, blobs: &[Blob]) -> Result<(), RunError> {
    for blob in blobs {
        let failed =
            |source| RunError::Upload { node: target.node.clone(), path: blob.path.clone(), source: Box::new(source) };
        let link = Link::Keeper(mux, target);
        if agent_client::blob_stored(link, &blob.sha256, REQUEST_TIMEOUT).await.map_err(failed)? {
            continue;
        }
        let file = tokio::fs::File::open(&blob.path)
            .await
            .map_err(|source| PlanError::Read { path: blob.path.clone(), source })?;
        agent_client::put_blob_file(link, &blob.sha256, file, UPLOAD_TIMEOUT).await.map_err(failed)?;
    }
    Ok(())
}

/// Starts every instance's session at once; each instance's session id or why not.
async fn start(mux: &Mux, targets: &Arc<HashMap<String, Target>>, plan: &Plan) -> Vec<Result<String, String>> {
    let mut starts = JoinSet::new();
    for (index, instance) in plan.instances.iter().enumerate() {
        let (mux, targets, instance) = (mux.clone(), targets.clone(), instance.clone());
        starts.spawn(async move {
            let link = Link::Keeper(&mux, &targets[&instance.node]);
            let started = agent_client::start_session(link, &instance.request, REQUEST_TIMEOUT).await;
            (index, started.map(|created| created.id).map_err(|e| cause(&e)))
        });
    }
    let mut sessions: Vec<Result<String, String>> =
        (0..plan.instances.len()).map(|_| Err("its start request was lost".to_owned())).collect();
    while let Some(joined) = starts.join_next().await {
        if let Ok((index, result)) = joined {
            sessions[index] = result;
        }
    }
    sessions
}

/// Kills the sessions `(instance, session id)` (those already ended are left as they are).
async fn stop(mux: &Mux, targets: &Arc<HashMap<String, Target>>, plan: &Plan, sessions: &[(usize, String)]) {
    let mut kills = JoinSet::new();
    for (index, id) in sessions.iter().cloned() {
        let (mux, targets, node) = (mux.clone(), targets.clone(), plan.instances[index].node.clone());
        kills.spawn(async move {
            let _ = agent_client::kill_session(Link::Keeper(&mux, &targets[&node]), &id, REQUEST_TIMEOUT).await;
        });
    }
    while kills.join_next().await.is_some() {}
}

/// Watches the running sessions `ids` (by instance) until every one has ended; see the
/// module doc for failures and lost nodes. An instance placed again gets its new node
/// in `plan` and its new session in `ids`.
async fn watch(
    mux: &Mux,
    targets: &Arc<HashMap<String, Target>>,
    plan: &mut Plan,
    ids: &mut [String],
    dir: &Path,
    retries: &mut Retries,
    progress: impl Fn(&Counts),
) -> Result<Vec<InstanceResult>, RunError> {
    let mut results: Vec<Option<InstanceResult>> = vec![None; plan.instances.len()];
    let mut lost_since: BTreeMap<String, Instant> = BTreeMap::new();
    let mut stopping: Option<(String, Instant)> = None;
    let mut shown = None;
    // Instances whose guest has not been seen running yet: all, until their node's first
    // listing, then those listed as waiting (devices being prepared, channels connecting).
    let mut waiting: HashSet<usize> = (0..plan.instances.len()).collect();
    loop {
        let mut failure: Option<String> = retries.poll(plan, ids, &mut results).await?;
        let counts = count(&results, retries, &waiting);
        if shown != Some(counts) {
            progress(&counts);
            shown = Some(counts);
        }
        if counts.running + counts.pending == 0 {
            break;
        }
        // One listing per node that still runs something.
        let mut running_on: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, result) in results.iter().enumerate() {
            if result.is_none() && !retries.placing(index) {
                running_on.entry(plan.instances[index].node.clone()).or_default().push(index);
            }
        }
        let mut listings = JoinSet::new();
        for node in running_on.keys().cloned() {
            let (mux, targets) = (mux.clone(), targets.clone());
            listings.spawn(async move {
                let listed = agent_client::sessions(Link::Keeper(&mux, &targets[&node]), LIST_TIMEOUT).await;
                (node, listed)
            });
        }
        while let Some(Ok((node, listed))) = listings.join_next().await {
            let list = match listed {
                Ok(list) => {
                    lost_since.remove(&node);
                    list
                }
                Err(e) => {
                    let since = *lost_since.entry(node.clone()).or_insert_with(Instant::now);
                    if since.elapsed() >= NODE_LOSS {
                        let lost = format!("node {node} lost: {}", cause(&e));
                        for &index in &running_on[&node] {
                            let result = ended(plan, index, None, Some(lost.clone()));
                            let session = Some(ids[index].as_str());
                            if let Some(result) = retries.replace(index, result, true, session, plan, &results) {
                                results[index] = Some(result);
                                failure.get_or_insert(lost.clone());
                            }
                        }
                    }
                    continue;
                }
            };
            let listed: HashMap<&str, SessionState> = list.sessions.iter().map(|s| (s.id.as_str(), s.state)).collect();
            for &index in &running_on[&node] {
                let state = listed.get(ids[index].as_str());
                match state == Some(&SessionState::Waiting) {
                    true => waiting.insert(index),
                    false => waiting.remove(&index),
                };
                match state {
                    Some(SessionState::Running | SessionState::Waiting) => continue,
                    Some(SessionState::Done) => {}
                    // The agent restarted (it died, and its guests with it).
                    None => {
                        let gone = format!("the agent on {node} restarted and its guest is gone");
                        let result = ended(plan, index, None, Some(gone.clone()));
                        let session = Some(ids[index].as_str());
                        if let Some(result) = retries.replace(index, result, true, session, plan, &results) {
                            failure.get_or_insert(format!("{} lost: {gone}{}", result.name, retries.after(index)));
                            results[index] = Some(result);
                        }
                        continue;
                    }
                }
                if retries.replaced_if_failed(index, plan, ids, &results).await? {
                    continue;
                }
                let result = collect(mux, &targets[&node], plan, index, &ids[index], dir).await?;
                if !result.success() && stopping.is_none() {
                    let how = match &result.report {
                        Some(r) if r.exit_state == "ok" => format!("exited {}", r.user_code),
                        Some(r) => r.exit_state.clone(),
                        None => "failed".to_owned(),
                    };
                    failure.get_or_insert(format!("{} {how}{}", result.name, retries.after(index)));
                }
                results[index] = Some(result);
            }
        }
        if let (Some(why), None) = (&failure, &stopping) {
            retries.stop();
            let running: Vec<(usize, String)> = (0..results.len())
                .filter(|&i| results[i].is_none() && !retries.placing(i))
                .map(|i| (i, ids[i].clone()))
                .collect();
            stop(mux, targets, plan, &running).await;
            stopping = Some((why.clone(), Instant::now()));
        }
        if let Some((why, since)) = &stopping {
            // Instances stopped because another failed carry that reason, not their own.
            if since.elapsed() >= STOP_WAIT {
                for (index, result) in results.iter_mut().enumerate() {
                    if result.is_none() && !retries.placing(index) {
                        *result = Some(ended(plan, index, None, Some(format!("stopped: {why}; it did not end"))));
                    }
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let why = stopping.map(|(why, _)| why);
    let mut results: Vec<InstanceResult> = results
        .into_iter()
        .enumerate()
        .map(|(index, result)| {
            let mut result = result.unwrap_or_else(|| ended(plan, index, None, None));
            if let (Some(why), Some(report)) = (&why, &result.report) {
                if report.exit_state == "killed" && result.cause.is_none() {
                    result.cause = Some(format!("stopped: {why}"));
                }
            }
            result
        })
        .collect();
    retries.finish(&mut results, ids).await?;
    Ok(results)
}

fn ended(plan: &Plan, index: usize, report: Option<Report>, cause: Option<String>) -> InstanceResult {
    let instance = &plan.instances[index];
    InstanceResult { name: instance.name.clone(), node: instance.node.clone(), report, cause, attempts: Vec::new() }
}

fn count(results: &[Option<InstanceResult>], retries: &Retries, waiting: &HashSet<usize>) -> Counts {
    let mut counts = Counts { retried: retries.made(), ..Counts::default() };
    for (index, result) in results.iter().enumerate() {
        match result {
            None if retries.placing(index) || waiting.contains(&index) => counts.pending += 1,
            None => counts.running += 1,
            Some(r) if r.success() => counts.done += 1,
            Some(_) => counts.failed += 1,
        }
    }
    counts
}

/// Reads a finished instance's report and outputs into `dir/<instance>/`, and copies
/// its outputs where the job asked for them.
async fn collect(
    mux: &Mux,
    target: &Target,
    plan: &Plan,
    index: usize,
    id: &str,
    dir: &Path,
) -> Result<InstanceResult, RunError> {
    let instance = &plan.instances[index];
    let link = Link::Keeper(mux, target);
    let status = match agent_client::session_status(link, id, REQUEST_TIMEOUT).await {
        Ok(status) => status,
        Err(e) => return Ok(ended(plan, index, None, Some(format!("its report could not be read: {}", cause(&e))))),
    };
    let out = dir.join(&instance.name);
    write(&out, "report", status.report.as_ref().map_or(&b""[..], |r| r.text.as_bytes())).await?;
    for plan::Collected { stream, copy_to } in &instance.collect {
        let file = match save(link, id, &out, stream).await? {
            Ok(file) => file,
            Err(e) => {
                return Ok(ended(
                    plan,
                    index,
                    status.report,
                    Some(format!("its {stream} could not be read: {}", cause(&e))),
                ))
            }
        };
        if let Some(path) = copy_to {
            // A kernel-side copy of the saved file: the output never sits in memory.
            tokio::fs::copy(&file, path).await.map_err(|source| RunError::Results { path: path.clone(), source })?;
        }
    }
    Ok(ended(plan, index, status.report, None))
}

/// Streams session `id`'s `stream` into `dir/<stream>` (see
/// [`agent_client::save_session_output`]); the file's path. An agent that fails is the
/// `Err` to report against the instance; a file that cannot be written ends the run.
async fn save(link: Link<'_>, id: &str, dir: &Path, stream: &str) -> Result<Result<PathBuf, AgentError>, RunError> {
    let path = dir.join(stream);
    let results = |source| RunError::Results { path: path.clone(), source };
    tokio::fs::create_dir_all(dir).await.map_err(|source| RunError::Results { path: dir.to_path_buf(), source })?;
    let mut file = tokio::fs::File::create(&path).await.map_err(results)?;
    match agent_client::save_session_output(link, id, stream, &mut file, REQUEST_TIMEOUT).await {
        Ok(_) => Ok(Ok(path)),
        Err(agent_client::SaveError::Agent(e)) => {
            // No partial output left behind as if it were the whole.
            drop(file);
            let _ = tokio::fs::remove_file(&path).await;
            Ok(Err(e))
        }
        Err(agent_client::SaveError::Write(source)) => Err(results(source)),
    }
}

async fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RunError> {
    let results = |source| RunError::Results { path: dir.to_path_buf(), source };
    tokio::fs::create_dir_all(dir).await.map_err(results)?;
    tokio::fs::write(dir.join(name), bytes).await.map_err(results)
}
