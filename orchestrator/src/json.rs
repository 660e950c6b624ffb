//! What `--output json` prints: one JSON document on stdout per command (`validate`,
//! `status`, `jobs`, `run`), made from the serde structs here and nowhere else.
//!
//! The field names are a contract with scripts, documented beside each command (docs/
//! cluster.md for a cluster's `validate` and `status`, docs/job.md for `run`, `jobs`
//! and a job's `validate`): fields may be added, never renamed or removed. A value that
//! is unknown is `null`, never left out, so a script reads every field of every row the
//! same way. Exit codes are the text output's; errors that stop a command before it has
//! a document (an unreadable file, a lab that is not up) stay one line on stderr.

use std::path::Path;

use serde::Serialize;

use zerolab::cluster::{Cluster, Diagnostics};
use zerolab::keeper::ServiceState;
use zerolab::run::history::RunSummary;
use zerolab::run::{InstanceResult, JobRun};
use zerolab::status::LabStatus;

use crate::ui::state_name;

/// Writes `document` to stdout as pretty JSON and a newline (a closed pipe is ignored).
pub fn print(document: &impl Serialize) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if serde_json::to_writer_pretty(&mut out, document).is_ok() {
        let _ = writeln!(out);
    }
}

/// `validate -o json` of a valid cluster file.
#[derive(Debug, Serialize)]
pub struct ValidCluster<'a> {
    pub file: String,
    pub valid: bool,
    pub kind: &'static str,
    pub lab: &'a str,
    pub provider: String,
    pub nodes: Vec<ClusterNode<'a>>,
}

/// One node of a valid cluster file.
#[derive(Debug, Serialize)]
pub struct ClusterNode<'a> {
    pub name: &'a str,
    pub address: String,
    pub labels: &'a std::collections::BTreeMap<String, String>,
}

impl<'a> ValidCluster<'a> {
    /// The document for `cluster`, read from `file`.
    pub fn new(file: &Path, cluster: &'a Cluster) -> ValidCluster<'a> {
        ValidCluster {
            file: file.display().to_string(),
            valid: true,
            kind: "cluster",
            lab: cluster.name(),
            provider: cluster.provider().to_string(),
            nodes: cluster
                .nodes()
                .iter()
                .map(|node| ClusterNode { name: &node.name, address: node.address.to_string(), labels: &node.labels })
                .collect(),
        }
    }
}

/// `validate -o json` of a valid job file, placed on a lab when `--cluster` was given.
#[derive(Debug, Serialize)]
pub struct ValidJob {
    pub file: String,
    pub valid: bool,
    pub kind: &'static str,
    pub job: String,
    pub summary: String,
    pub instances: Vec<String>,
    pub channels: Vec<Channel>,
    pub placement: Option<Vec<PlacedNode>>,
}

/// One channel of a job: writer instance to reader instance.
#[derive(Debug, Serialize)]
pub struct Channel {
    pub from: String,
    pub to: String,
}

/// The instances a lab's node gets.
#[derive(Debug, Serialize)]
pub struct PlacedNode {
    pub node: String,
    pub instances: Vec<String>,
}

impl ValidJob {
    /// The document for `job`, read from `file`, placed as `placement` says.
    pub fn new(file: &Path, job: &zerolab::job::Job, placement: Option<&zerolab::job::Placement>) -> ValidJob {
        let name = |index: usize| job.instances()[index].name.clone();
        ValidJob {
            file: file.display().to_string(),
            valid: true,
            kind: "job",
            job: job.name().to_owned(),
            summary: job.summary(),
            instances: job.instances().iter().map(|instance| instance.name.clone()).collect(),
            channels: job.edges().iter().map(|edge| Channel { from: name(edge.from), to: name(edge.to) }).collect(),
            placement: placement.map(|placement| {
                placement
                    .nodes()
                    .into_iter()
                    .map(|node| PlacedNode {
                        node: node.to_owned(),
                        instances: placement.instances_on(node).into_iter().map(name).collect(),
                    })
                    .collect()
            }),
        }
    }
}

/// `validate -o json` of an invalid file: every problem.
#[derive(Debug, Serialize)]
pub struct Invalid {
    pub valid: bool,
    pub problems: Vec<Problem>,
}

/// One problem, located.
#[derive(Debug, Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Invalid {
    /// Every problem of `diagnostics`, in their order.
    pub fn new<P: std::fmt::Display>(diagnostics: &Diagnostics<P>) -> Invalid {
        let problems = diagnostics
            .iter()
            .map(|d| Problem {
                file: d.file.clone(),
                line: d.location.line,
                column: d.location.column,
                message: d.problem.to_string(),
            })
            .collect();
        Invalid { valid: false, problems }
    }
}

/// `status -o json`.
#[derive(Debug, Serialize)]
pub struct Status<'a> {
    pub lab: &'a str,
    pub ready: bool,
    pub nodes: Vec<StatusNode<'a>>,
    pub services: Vec<Service<'a>>,
    /// Each provisioning step: on how many of its nodes it is done, failed, pending.
    pub steps: Vec<Step<'a>>,
}

/// One provisioning step's counts.
#[derive(Debug, Serialize)]
pub struct Step<'a> {
    pub step: &'a str,
    pub done: usize,
    pub failed: usize,
    pub pending: usize,
}

/// One node as `status` saw it.
#[derive(Debug, Serialize)]
pub struct StatusNode<'a> {
    pub node: &'a str,
    pub provider: &'a str,
    pub address: &'a str,
    pub state: &'static str,
    pub machine: Option<&'a str>,
    pub agent_version: Option<&'a str>,
    pub store: Option<Store>,
    pub cause: Option<&'a str>,
}

/// What a node's agent keeps.
#[derive(Debug, Serialize)]
pub struct Store {
    pub blobs: u64,
    pub blob_bytes: u64,
    pub blob_limit_bytes: u64,
    pub sessions_live: u64,
    pub sessions_finished: u64,
}

/// One service of the lab's keeper.
#[derive(Debug, Serialize)]
pub struct Service<'a> {
    pub name: &'a str,
    pub state: &'static str,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub log: String,
    pub cause: Option<&'a str>,
}

impl<'a> Status<'a> {
    /// The document for lab `lab`'s status.
    pub fn new(lab: &'a str, status: &'a LabStatus) -> Status<'a> {
        let (nodes, services) = (&status.nodes, &status.services);
        Status {
            steps: status
                .steps
                .iter()
                .map(|s| Step { step: &s.step, done: s.done, failed: s.failed, pending: s.pending })
                .collect(),
            lab,
            ready: nodes.iter().all(|node| node.state == zerolab::lab::NodeState::Ready),
            nodes: nodes
                .iter()
                .map(|node| StatusNode {
                    node: &node.node,
                    provider: &node.provider,
                    address: &node.address,
                    state: state_name(&node.state),
                    machine: node.machine.as_deref(),
                    agent_version: node.agent_version.as_deref(),
                    store: node.store.as_ref().map(|store| Store {
                        blobs: store.blobs,
                        blob_bytes: store.blob_bytes,
                        blob_limit_bytes: store.blob_limit_bytes,
                        sessions_live: store.sessions_live,
                        sessions_finished: store.sessions_finished,
                    }),
                    cause: node.cause.as_deref(),
                })
                .collect(),
            services: services
                .iter()
                .map(|service| Service {
                    name: &service.name,
                    state: service.state.name(),
                    pid: service.pid,
                    restarts: service.restarts,
                    log: service.log.display().to_string(),
                    cause: match &service.state {
                        ServiceState::Failed { cause } => Some(cause),
                        _ => None,
                    },
                })
                .collect(),
        }
    }
}

/// `jobs -o json`: every run, oldest first.
#[derive(Debug, Serialize)]
pub struct Runs<'a> {
    pub lab: &'a str,
    pub runs: Vec<RunEntry<'a>>,
}

/// One run.
#[derive(Debug, Serialize)]
pub struct RunEntry<'a> {
    pub id: &'a str,
    pub job: &'a str,
    pub file: &'a str,
    pub started: u64,
    pub done: usize,
    pub total: usize,
    pub state: &'static str,
}

impl<'a> Runs<'a> {
    /// The document for lab `lab`'s `runs`.
    pub fn new(lab: &'a str, runs: &'a [RunSummary]) -> Runs<'a> {
        let runs = runs
            .iter()
            .map(|run| RunEntry {
                id: &run.record.id,
                job: &run.record.job,
                file: &run.record.file,
                started: run.record.started,
                done: run.finished,
                total: run.record.instances.len(),
                state: run.state.name(),
            })
            .collect();
        Runs { lab, runs }
    }
}

/// `run -o json`: the run and every instance's result.
#[derive(Debug, Serialize)]
pub struct Run<'a> {
    pub id: &'a str,
    pub job: &'a str,
    pub results: String,
    pub success: bool,
    pub instances: Vec<Instance<'a>>,
}

/// How one instance ended (its last attempt, when it was placed again).
#[derive(Debug, Serialize)]
pub struct Instance<'a> {
    pub instance: &'a str,
    pub node: &'a str,
    pub success: bool,
    pub exit_state: Option<&'a str>,
    pub return_code: Option<i32>,
    pub user_code: Option<i64>,
    pub cause: Option<&'a str>,
    pub accounting: Option<Accounting>,
    pub attempts: Vec<Attempt<'a>>,
}

/// A session's accounting: CPU seconds, and traffic on local and network channels.
#[derive(Debug, Serialize)]
pub struct Accounting {
    pub sys_s: f64,
    pub user_s: f64,
    pub local: Traffic,
    pub net: Traffic,
}

/// Calls and bytes through one kind of channel.
#[derive(Debug, Serialize)]
pub struct Traffic {
    pub gets: u64,
    pub get_bytes: u64,
    pub puts: u64,
    pub put_bytes: u64,
}

impl From<[u64; 4]> for Traffic {
    fn from([gets, get_bytes, puts, put_bytes]: [u64; 4]) -> Traffic {
        Traffic { gets, get_bytes, puts, put_bytes }
    }
}

/// An earlier attempt of an instance that was placed again.
#[derive(Debug, Serialize)]
pub struct Attempt<'a> {
    pub node: &'a str,
    pub exit_state: Option<&'a str>,
    pub return_code: Option<i32>,
    pub user_code: Option<i64>,
    pub cause: Option<&'a str>,
}

impl<'a> Run<'a> {
    /// The document for `run` of job `job`.
    pub fn new(job: &'a str, run: &'a JobRun) -> Run<'a> {
        Run {
            id: &run.id,
            job,
            results: run.dir.display().to_string(),
            success: run.success(),
            instances: run.instances.iter().map(instance).collect(),
        }
    }
}

fn instance(result: &InstanceResult) -> Instance<'_> {
    let report = result.report.as_ref();
    Instance {
        instance: &result.name,
        node: &result.node,
        success: result.success(),
        exit_state: report.map(|r| r.exit_state.as_str()),
        return_code: report.map(|r| r.return_code),
        user_code: report.map(|r| r.user_code),
        cause: result.cause.as_deref(),
        accounting: report.map(|r| Accounting {
            sys_s: r.sys_s,
            user_s: r.user_s,
            local: r.local.into(),
            net: r.net.into(),
        }),
        attempts: result
            .attempts
            .iter()
            .map(|a| Attempt {
                node: &a.node,
                exit_state: a.exit_state.as_deref(),
                return_code: a.return_code,
                user_code: a.user_code,
                cause: a.cause.as_deref(),
            })
            .collect(),
    }
}
