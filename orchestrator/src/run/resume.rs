//! `zerolab wait RUN`: taking up a run left behind and following it to its end.
//!
//! A run is left behind when its `zerolab run` was started with `--detach`, or was
//! killed: its record says `detached` or `running` while nobody holds its lock
//! ([`super::run_dir`]). [`wait`] takes the lock, rebuilds the run from its record (each
//! instance's node, session, outputs to collect and, once ended, its outcome) and drives
//! it on with the same loop as `zerolab run` (the driver's `Driver::resume`): the
//! sessions still running are followed and renewed, those that ended are collected, and
//! the record is finished with the run's state. Guests the agents stopped because
//! nobody renewed their leases end as `lease expired`, and the run as `interrupted`. A
//! run that is over already is read back from its record, nothing asked of the nodes.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use zerolab_agent_api::{ProgramRef, SessionRequest};

use super::driver::{Driver, Setup};
use super::history::{self, HistoryError};
use super::plan::{Plan, PlannedInstance};
use super::policy::NoRetries;
use super::record::{JobRecord, RunState};
use super::run_dir::RunDir;
use super::steps::Targets;
use super::{Counts, InstanceResult, JobRun, RunError, RunOptions};
use crate::cluster::Cluster;
use crate::lab::Lab;
use crate::up::UpError;

/// Follows run `name` (an id, or a job's name for its latest run) of the lab of
/// `cluster` under `root` to its end, collecting what its instances left; `progress`
/// gets the counts whenever they change.
pub async fn wait(
    root: &Path,
    cluster: &Cluster,
    name: &str,
    options: &RunOptions,
    progress: impl Fn(&Counts),
) -> Result<JobRun, HistoryError> {
    let lab = Lab::at(root, cluster.name()).map_err(UpError::from).map_err(RunError::from)?;
    let (record, dir) = history::find(&lab, name)?;
    if record.state.is_final() {
        let instances = (0..record.instances.len()).map(|i| recorded_result(&record, i)).collect();
        return Ok(JobRun { id: record.id.clone(), dir, instances, state: record.state });
    }
    let run_dir = RunDir::attach(&dir, &record.id)?;
    let handle = Lab::open_any(root, cluster).map_err(RunError::from)?;
    let targets: Targets = Arc::new(handle.targets().iter().map(|t| (t.node.clone(), t.clone())).collect());
    let mux = handle.keeper(&options.program).await.map_err(RunError::from)?;
    let plan = plan_of(&record);
    let results = (0..record.instances.len())
        .map(|index| {
            let entry = &record.instances[index];
            match targets.contains_key(&entry.node) {
                true => entry.outcome.as_ref().map(|_| recorded_result(&record, index)),
                false => Some(InstanceResult {
                    name: entry.name.clone(),
                    node: entry.node.clone(),
                    report: None,
                    cause: Some(format!("node {} is not in the lab any more", entry.node)),
                    attempts: Vec::new(),
                }),
            }
        })
        .collect();
    let mut record = record;
    record.state = RunState::Running;
    record.save(&dir)?;
    let id = record.id.clone();
    let setup = Setup {
        mux,
        targets,
        plan,
        dir: dir.clone(),
        record,
        policy: &NoRetries,
        follow: None,
        begun: Instant::now(),
        keeper_start: (lab.dir().to_path_buf(), options.program.clone()),
        interrupt: options.interrupt.clone(),
        detach: false,
    };
    let (instances, state) = Driver::resume(setup, results).drive(progress).await?;
    drop(run_dir);
    Ok(JobRun { id, dir, instances, state })
}

/// Instance `index` of `record` as its outcome says it ended (no report and no cause
/// when it has none yet).
fn recorded_result(record: &JobRecord, index: usize) -> InstanceResult {
    let entry = &record.instances[index];
    let outcome = entry.outcome.clone();
    InstanceResult {
        name: entry.name.clone(),
        node: entry.node.clone(),
        report: outcome.as_ref().and_then(|o| o.report.clone()),
        cause: outcome.and_then(|o| o.cause),
        // A finished record lists the last attempt too; a running one only the earlier.
        attempts: match record.state.is_final() {
            true => entry.attempts.iter().take(entry.attempts.len().saturating_sub(1)).cloned().collect(),
            false => entry.attempts.clone(),
        },
    }
}

/// What driving the recorded run on needs of a plan: each instance's name, node and
/// outputs to collect. Nothing is placed again when a run is taken up, so nothing is
/// uploaded and no request is sent: the request is left empty.
fn plan_of(record: &JobRecord) -> Plan {
    let instances = record
        .instances
        .iter()
        .map(|entry| PlannedInstance {
            name: entry.name.clone(),
            node: entry.node.clone(),
            request: SessionRequest::new(ProgramRef::Image(String::new())),
            collect: entry.collect.iter().filter_map(|output| output.collected()).collect(),
        })
        .collect();
    Plan { instances, blobs: Default::default(), instance_blobs: vec![Vec::new(); record.instances.len()] }
}
