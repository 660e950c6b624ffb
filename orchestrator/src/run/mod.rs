//! `zerolab run`: a job on the lab, from placement to results.
//!
//! The steps, in order:
//! 1. check: the lab is up, the job's instances can be placed ([`Job::check_placement`]),
//!    and every node they go to is ready;
//! 2. plan ([`plan`]): each instance's node and session request, each local file hashed
//!    once; what the runner cannot do is refused here, before any node is touched;
//! 3. drive (`driver.rs`): each instance's life is one state machine (`life.rs`:
//!    placed, uploaded, started, running, retrying, ended) that one loop moves: every
//!    node gets the blobs its instances need, once, and only those it does not already
//!    store (`HEAD`, then `PUT /v1/blobs/{sha256}`); all sessions start at once; then
//!    every [`POLL`], one `GET /v1/sessions` per node with live instances. A finished
//!    instance's report, stdout and stderr go to the results directory at once. An
//!    instance that fails stops the others (fail fast); a node whose agent cannot be
//!    reached for [`NODE_LOSS`] is lost, with its instances, and stops the others too.
//!    An instance of a group with `retries` is placed again instead, on the node a
//!    [`policy::RetryPolicy`] picks, until its retries are spent.
//!
//! The agent requests of each step are in `steps.rs`; following output as it is
//! written (`zerolab sandbox run`, [`run_followed`]) in [`follow`]. Every request goes
//! through the lab's connection keeper ([`Keeper`]), so no step pays an SSH handshake
//! (a keeper that dies mid-run is started again and the run carries on). Every session
//! carries a lease the run renews ([`lease`]): guests nobody follows any more stop by
//! themselves. The results directory is `LAB/jobs/<id>/` (a unique id, the directory
//! locked by the process driving the run: [`run_dir`]): `job.json` (the run's record:
//! its state, which instance on which node, in which session, how each ended;
//! [`JobRecord`]), then per instance `report` (ZeroVM's six lines) and the outputs its
//! agent kept: `stdout` and `stderr` (unless the job sent them to node files) and
//! `output` (when the job sends it to a local file); a failed attempt's in
//! `attempt-N/` below them. [`history`] reads them back (`jobs`, `logs`, `cancel`);
//! [`resume`] takes up a run left behind (`zerolab wait`).

mod driver;
pub mod follow;
mod hashes;
pub mod history;
pub mod lease;
mod life;
pub mod plan;
pub mod policy;
mod record;
pub mod resume;
pub mod run_dir;
mod steps;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zerolab_agent_api::Report;

use self::driver::{Driver, Setup};
use self::follow::Hook;
use self::plan::{Plan, PlanError};
use self::policy::{GroupRetries, NoRetries};
pub use self::record::{Attempt, JobRecord, Outcome, RecordedInstance, RecordedOutput, RunState};
use self::run_dir::RunDir;
use self::steps::{channel_addresses, Targets};
use crate::agent_client::AgentError;
use crate::cluster::Cluster;
use crate::job::Job;
use crate::keeper::{Keeper, KeeperError};
use crate::lab::Lab;
use crate::lab_handle::OpenError;
use crate::ssh::Target;
use crate::up::UpError;

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
/// The exit state the agent gives a guest it stopped because its lease expired.
pub const LEASE_EXPIRED: &str = "lease expired";

/// What can stop a run as a whole (an instance's own failure is in its result).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The lab is not up, or a node the job needs is not ready.
    #[error(transparent)]
    Open(#[from] OpenError),
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
    Keeper(Box<KeeperError>),
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
    /// A followed instance's output could not be read on (the others were stopped).
    #[error("node {node}: following session {session}'s output failed")]
    Follow {
        node: String,
        session: String,
        #[source]
        source: Box<AgentError>,
    },
    /// The results directory.
    #[error("cannot write the job's results in {}", path.display())]
    Results {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process drives the run (its `zerolab run` or a `zerolab wait`).
    #[error("run {id} is being followed by another zerolab process; wait for it, or `zerolab cancel` the run")]
    Driven { id: String },
}

impl From<UpError> for RunError {
    fn from(error: UpError) -> RunError {
        RunError::Up(Box::new(error))
    }
}

impl From<KeeperError> for RunError {
    fn from(error: KeeperError) -> RunError {
        RunError::Keeper(Box::new(error))
    }
}

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `zerolab` executable, to start the lab's connection keeper when none runs.
    pub program: PathBuf,
    /// Start the guests and return at once, leaving them running without leases, the
    /// run recorded `detached` for `zerolab wait` to collect.
    pub detach: bool,
    /// Becomes true on an interrupt: every guest is stopped, reports collected, and the
    /// run recorded `interrupted`.
    pub interrupt: Option<tokio::sync::watch::Receiver<bool>>,
}

impl RunOptions {
    /// A run that follows its guests to their end and is not interrupted.
    pub fn new(program: PathBuf) -> RunOptions {
        RunOptions { program, detach: false, interrupt: None }
    }
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

/// A finished run (or, detached, a started one).
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The run's id (`wordcount-20261205-021430-3fa9c1`).
    pub id: String,
    /// Its results directory.
    pub dir: PathBuf,
    /// Every instance's result, in the job's order (none for a detached run).
    pub instances: Vec<InstanceResult>,
    /// How it ended: `ok`, `failed`, `cancelled`, `interrupted`; or `detached`.
    pub state: RunState,
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
    let handle = Lab::open(root, cluster)?;
    let placement = job
        .check_placement(cluster)
        .map_err(|problems| RunError::Placement { lab: cluster.name().to_owned(), problems: problems.to_string() })?;
    for node in placement.nodes() {
        handle.ready(node)?;
    }
    let (lab, state) = (handle.lab(), handle.state());
    let targets: Targets = Arc::new(handle.targets().iter().map(|t| (t.node.clone(), t.clone())).collect());
    let mux = handle.keeper(&options.program).await?;
    let listen_at = channel_addresses(&mux, &targets, plan::listening_nodes(job, &placement)).await?;
    let run_dir = RunDir::create(lab.dir(), job.name())?;
    let (id, dir) = (run_dir.id.clone(), run_dir.path.clone());
    let plan = match plan::plan(job, &placement, &id, &listen_at, lab.dir()).await {
        Ok(plan) => plan,
        Err(error) => {
            // Refused before anything was sent: no run to keep.
            drop(run_dir);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(error.into());
        }
    };
    let record = JobRecord::new(&id, job.name(), job.file_name(), &plan);
    record.save(&dir)?;
    let policy = GroupRetries::new(job, cluster, state, |node| targets.contains_key(node));
    tracing::debug!(elapsed = ?begun.elapsed(), instances = plan.instances.len(), "planned");
    let progress = |counts: &Counts| {
        tracing::debug!(elapsed = ?begun.elapsed(), done = counts.done, failed = counts.failed, "progress");
        progress(counts);
    };
    let setup = Setup {
        mux,
        targets,
        plan,
        dir: dir.clone(),
        record,
        policy: &policy,
        follow: None,
        begun,
        keeper_start: (lab.dir().to_path_buf(), options.program.clone()),
        interrupt: options.interrupt.clone(),
        detach: options.detach,
    };
    let (instances, state) = Driver::new(setup).drive(progress).await?;
    tracing::debug!(elapsed = ?begun.elapsed(), "all instances ended, outputs collected");
    drop(run_dir);
    Ok(JobRun { id, dir, instances, state })
}

/// Runs `plan` (of job `name`, from `file`) on the lab in `lab_dir` through its keeper
/// `mux`, to `targets`, as [`run`] does, without retries, handing every piece of each
/// instance's stdout and stderr to `follow` as the guest writes it (`zerolab sandbox
/// run`). The results directory and record are a job's: `zerolab jobs` and `logs` find
/// the run. `options.program` starts the keeper again should it die.
pub async fn run_followed(
    lab_dir: &Path,
    mux: Keeper,
    targets: HashMap<String, Target>,
    plan: Plan,
    (name, file): (&str, &str),
    options: &RunOptions,
    follow: Hook<'_>,
) -> Result<JobRun, RunError> {
    let targets = Arc::new(targets);
    let run_dir = RunDir::create(lab_dir, name)?;
    let (id, dir) = (run_dir.id.clone(), run_dir.path.clone());
    let record = JobRecord::new(&id, name, file, &plan);
    record.save(&dir)?;
    let setup = Setup {
        mux,
        targets,
        plan,
        dir: dir.clone(),
        record,
        policy: &NoRetries,
        follow: Some(follow),
        begun: Instant::now(),
        keeper_start: (lab_dir.to_path_buf(), options.program.clone()),
        interrupt: options.interrupt.clone(),
        detach: false,
    };
    let (instances, state) = Driver::new(setup).drive(|_| {}).await?;
    drop(run_dir);
    Ok(JobRun { id, dir, instances, state })
}
