//! Bringing a lab up: `zerolab up` (taking it down is [`crate::down`]).
//!
//! It holds the lab's lock ([`LabLock`]) from start to end, so two commands never
//! change one lab at once.
//!
//! [`up`] has the cluster's provider make its nodes ([`Provider::create`]: `netns` makes
//! namespace hosts unless the lab's bridge is there, `ssh` has nothing to make; each
//! node's steps go to [`UpOptions::create_progress`]); when the nodes were made anew, a
//! keeper of the old ones is stopped (it holds dead connections); then
//! provisions every node in parallel ([`run_parallel`], bounded) over one SSH connection
//! each, at the address the provider gives ([`Provider::address`]): pin the host key,
//! then [`install::install`] (upload the agent unless the node has the same sha256, start
//! it as a systemd service or under a supervisor unless it runs, wait until it answers
//! `GET /v1/health`). Each node's outcome is recorded in `state.json` and handed to a
//! progress callback as it finishes, so the caller can print it at once.
//!
//! `up` records the lab's identity (`LAB/lab.json`, with the cluster file it came from)
//! and refuses another cluster file with the same lab name while the lab is up. On a lab
//! that is up, it follows the cluster file: what changed is said first through
//! [`UpOptions::notice`] (`lab demo: adding n4; removing n2`), then the provider makes
//! the added nodes and removes the removed ones (netns; ssh forgets them), and their
//! records follow.
//!
//! Running `up` again on a ready lab changes nothing: creation finds the nodes, the
//! upload is skipped by hash, the agent is found running and healthy. Nodes an earlier
//! run recorded (ready, failed, unreachable) are connected to without waiting for a boot
//! ([`ConnectOptions::known_up`]), so one that went away is reported in seconds; only
//! hosts just made get the retries a booting node needs. At the end, the lab's
//! connection keeper ([`crate::keeper`]) is started and connects to the ready nodes, so the
//! next command finds their connections open. When every node is ready, the cluster
//! file's provisioning steps run through that keeper ([`crate::provision`]): a failed
//! step is `up`'s error ([`UpError::Provision`]), the nodes stay ready.
//!
//! Shelved nodes (`zerolab shelve`) are unshelved first, through the provider: `up`
//! leaves every node ready. `start_agents` is also what `unshelve` starts agents with.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::install::{self, Claim, InstallError, Installed, Owner, Start};
use crate::keeper::{self, Keeper};
use crate::lab::{Identity, Lab, LabError, LabLock, LabState, LockError, LockWait, NodeRecord, NodeState};
use crate::provider::{self, CreateProgress, Created, Provider, ProviderError};
use crate::provision::{self, ProvisionError, Reprovision, StepReport};
use crate::ssh::{self, run_parallel, ConnectOptions, HostKeys, Session, Target, Upload};
use zerolab_agent_api::Sha256;
use zerolab_sandbox::session::error_chain;

/// What can stop `up` or `status` as a whole (a node's own failure does not:
/// it is in that node's [`NodeReport`]).
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// The agent binary to install is missing.
    #[error(
        "agent binary {} not found: build it (cargo build --release -p zerolab-agent) or pass --agent PATH",
        path.display()
    )]
    AgentMissing { path: PathBuf },
    /// The agent binary could not be read.
    #[error("cannot read agent binary {}", path.display())]
    AgentRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The provider refused, or failed to make or remove the nodes.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A lab file.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The pinned host keys could not be read.
    #[error(transparent)]
    HostKeys(#[from] ssh::Error),
    /// Another command is changing the lab.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A provisioning step failed, or `--reprovision` names no step.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
}

/// What `up` did on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// The node.
    pub node: String,
    /// Its state now (also saved in `state.json`).
    pub state: NodeState,
    /// What was done (`ready`) or why not, as one line.
    pub detail: String,
}

/// Options of [`up`].
#[derive(Clone)]
pub struct UpOptions {
    /// The agent binary to install on every node.
    pub agent: PathBuf,
    /// Nodes provisioned at once.
    pub parallel: usize,
    /// The `zerolab` executable, to start the lab's connection keeper and have it
    /// connect to the ready nodes, so the next command finds them open (`None`: no keeper).
    pub keeper: Option<PathBuf>,
    /// Where each node's steps in the making go.
    pub create_progress: CreateProgress,
    /// How long to wait for another command on the lab.
    pub lock: LockWait,
    /// The cluster file, absolute: recorded in the lab's identity (`LAB/lab.json`), and
    /// `up` from another file with the same lab name is refused (`None`: neither).
    pub cluster_file: Option<PathBuf>,
    /// Where `up` says what it changes before it does (`lab demo: adding n4; removing n2`).
    pub notice: Notice,
    /// Which provisioning steps run even though their content did not change.
    pub reprovision: Reprovision,
    /// Where each provisioning step's report goes, per node, as it finishes.
    pub step_progress: Arc<dyn Fn(&StepReport) + Send + Sync>,
}

impl UpOptions {
    /// Options for an `up` nobody watches (a workshop's labs): the defaults, every
    /// report and notice dropped, `keeper` started for the lab.
    pub fn quiet(agent: PathBuf, keeper: PathBuf) -> UpOptions {
        UpOptions {
            agent,
            parallel: crate::ssh::PARALLEL,
            keeper: Some(keeper),
            create_progress: Arc::new(|_: &str, _| {}),
            lock: LockWait::default(),
            cluster_file: None,
            notice: Arc::new(|_: &str| {}),
            reprovision: Reprovision::Changed,
            step_progress: Arc::new(|_: &StepReport| {}),
        }
    }
}

/// A sink for lines `up` says before it acts.
pub type Notice = Arc<dyn Fn(&str) + Send + Sync>;

/// The `zerolab-agent` beside the running executable (how releases and `cargo build`
/// lay them out).
pub fn default_agent_path() -> Option<PathBuf> {
    Some(std::env::current_exe().ok()?.parent()?.join("zerolab-agent"))
}

/// Brings `cluster` up in the lab under `root` and provisions every node; `progress`
/// gets each node's report as it finishes. Returns every report, in file order.
pub async fn up(
    root: &Path,
    cluster: &Cluster,
    options: &UpOptions,
    progress: impl Fn(&NodeReport) + Send + Sync + 'static,
) -> Result<Vec<NodeReport>, UpError> {
    let provider = provider::of(cluster)?;
    provision::check(cluster, &options.reprovision)?;
    if !options.agent.is_file() {
        return Err(UpError::AgentMissing { path: options.agent.clone() });
    }
    let lab = Lab::at(root, cluster.name())?;
    // Refused before anything is made: another cluster file's lab of this name, or
    // hosts of this lab's names that another lab directory made.
    check_identity(&lab, options.cluster_file.as_deref())?;
    provider.is_up(&lab)?;
    let _lock = LabLock::acquire(&lab, "zerolab up", &options.lock).await?;
    check_identity(&lab, options.cluster_file.as_deref())?;
    // Making a lab runs `ssh-keygen` for its key pair: blocking work, off the runtime.
    let (dir, name) = (root.to_path_buf(), cluster.name().to_owned());
    let lab = match tokio::task::spawn_blocking(move || Lab::open_or_create(dir, &name)).await {
        Ok(lab) => lab?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    save_identity(&lab, cluster, options.cluster_file.as_deref())?;
    if let Some(line) = changes(&lab.load_state()?, cluster, provider) {
        (options.notice)(&line);
    }
    // Isolated netns nodes get this agent bound read-only into their file system.
    provider::netns::record_agent(&lab, &options.agent).map_err(ProviderError::from)?;
    bring_back_shelved(&lab, cluster, provider).await?;
    if provider.create(&lab, cluster, options.create_progress.clone()).await? == Created::Made {
        // New hosts: a keeper of the old ones holds dead connections.
        keeper::stop(lab.dir()).await;
    }
    let targets = targets(&lab, cluster, provider)?;
    // Nodes an earlier run left ready, failed or unreachable have long booted (hosts
    // made now are recorded `provisioning`): waiting for them as for a booting node
    // would only delay saying one went away, by most of a minute when its link is down.
    let booted: HashSet<String> = lab
        .load_state()?
        .nodes
        .into_iter()
        .filter(|(_, r)| !matches!(r.state, NodeState::Declared | NodeState::Provisioning))
        .map(|(n, _)| n)
        .collect();
    let reports = start_agents(&lab, provider, &targets, &options.agent, options.parallel, booted, progress).await?;

    let mut state = lab.load_state()?;
    // Nodes no longer in the file are forgotten (netns removed their hosts already).
    state.nodes.retain(|node, _| cluster.node(node).is_some());
    for (node, report) in cluster.nodes().iter().zip(&reports) {
        let record = state
            .nodes
            .entry(node.name.clone())
            .or_insert_with(|| NodeRecord::new(node.address.to_string(), NodeState::Declared));
        record.state = report.state.clone();
    }
    lab.save_state(&state)?;
    if let Some(program) = &options.keeper {
        let ready: Vec<Target> = targets
            .iter()
            .zip(&reports)
            .filter(|(_, report)| report.state == NodeState::Ready)
            .map(|(target, _)| target.clone())
            .collect();
        // `up` is done either way: without a keeper the next command starts one.
        if let Err(e) = warm_keeper(&lab, program, &ready).await {
            tracing::warn!("connection keeper: {}", error_chain(&e));
        }
        // Steps run once every node is ready, over the keeper's connections.
        if !cluster.provision().is_empty() && ready.len() == targets.len() {
            let keeper = Keeper::open(lab.dir(), program).await.map_err(ProvisionError::Keeper)?;
            let progress = options.step_progress.clone();
            provision::provision(lab.dir(), cluster, &targets, &keeper, &options.reprovision, progress).await?;
        }
    }
    Ok(reports)
}

/// Unshelves the lab's shelved nodes (`up` leaves every node ready), all at once, and
/// records them `provisioning`, so the agents are then started with a boot's patience.
/// One that cannot be brought back stays shelved, and is `up`'s error.
async fn bring_back_shelved(lab: &Lab, cluster: &Cluster, provider: &dyn Provider) -> Result<(), UpError> {
    let mut state = lab.load_state()?;
    let shelved =
        cluster.nodes().iter().filter(|n| state.nodes.get(&n.name).is_some_and(|r| r.state.shelve_mode().is_some()));
    let back = shelved.map(|node| async move { (node, provider.unshelve(lab, cluster, node).await) });
    let mut failed = None;
    for (node, result) in futures_util::future::join_all(back).await {
        match result {
            Ok(()) => {
                if let Some(record) = state.nodes.get_mut(&node.name) {
                    record.state = NodeState::Provisioning;
                }
            }
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    lab.save_state(&state)?;
    failed.map_or(Ok(()), |e| Err(e.into()))
}

/// Refuses `up` from `file` when the lab is up from another cluster file.
fn check_identity(lab: &Lab, file: Option<&Path>) -> Result<(), LabError> {
    let (Some(file), true) = (file, lab.state_path().exists()) else { return Ok(()) };
    match lab.identity()? {
        Some(identity) => identity.check_file(lab, file),
        None => Ok(()),
    }
}

/// Writes the lab's identity: a new one for a lab made now (no node state yet), the
/// file brought up from now for one whose file moved.
fn save_identity(lab: &Lab, cluster: &Cluster, file: Option<&Path>) -> Result<(), LabError> {
    let provider = cluster.provider().to_string();
    let identity = match lab.identity()? {
        Some(mut identity) if lab.state_path().exists() => {
            if file.is_none() || identity.cluster_file.as_deref() == file {
                return Ok(());
            }
            identity.cluster_file = file.map(Path::to_owned);
            identity
        }
        _ => Identity::new(cluster.name(), file, &provider),
    };
    lab.save_identity(&identity)
}

/// What `up` changes in a lab that has node records: `lab demo: adding n4; removing n2`
/// (`None` when nothing, or the lab is made now).
fn changes(state: &LabState, cluster: &Cluster, provider: &dyn Provider) -> Option<String> {
    if state.nodes.is_empty() {
        return None;
    }
    let added: Vec<&str> =
        cluster.nodes().iter().map(|n| n.name.as_str()).filter(|n| !state.nodes.contains_key(*n)).collect();
    let removed: Vec<&str> = state.nodes.keys().map(String::as_str).filter(|n| cluster.node(n).is_none()).collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("adding {}", added.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(match provider.removes_nodes() {
            true => format!("removing {}", removed.join(", ")),
            false => format!(
                "forgetting {} (no longer in the cluster file; what zerolab installed there stays)",
                removed.join(", ")
            ),
        });
    }
    (!parts.is_empty()).then(|| format!("lab {}: {}", cluster.name(), parts.join("; ")))
}

async fn warm_keeper(lab: &Lab, program: &Path, ready: &[Target]) -> Result<(), keeper::KeeperError> {
    if ready.is_empty() {
        return Ok(());
    }
    Keeper::open(lab.dir(), program).await?.warm(ready).await
}

/// One SSH target per node, in file order, where `provider` says it is reached.
pub(crate) fn targets(lab: &Lab, cluster: &Cluster, provider: &dyn Provider) -> Result<Vec<Target>, ProviderError> {
    cluster.nodes().iter().map(|node| provider.address(lab, node)).collect()
}

async fn provision(
    target: &Target,
    connect: &ConnectOptions,
    host_keys: &HostKeys,
    agent: &Path,
    sum: &Sha256,
    claim: &Claim<'_>,
) -> Result<Installed, InstallError> {
    let session = Session::connect(target, host_keys, connect).await?;
    let result = install::install(&session, agent, sum, claim).await;
    // The node is done with either way; a failed goodbye changes nothing.
    let _ = session.close().await;
    result
}

/// Starts this lab's agent on each of `targets` (`parallel` at a time) as `up` does: pin
/// the host key, [`install::install`] (upload unless the node has the same sha256, start
/// unless it runs, wait until healthy). Nodes in `booted` answered before and get no
/// patience for a boot. Each node's report goes to `progress` as it finishes; returns
/// every report, in the order of `targets`. Used by `up` and by `unshelve`.
pub(crate) async fn start_agents(
    lab: &Lab,
    provider: &'static dyn Provider,
    targets: &[Target],
    agent: &Path,
    parallel: usize,
    booted: HashSet<String>,
    progress: impl Fn(&NodeReport) + Send + Sync + 'static,
) -> Result<Vec<NodeReport>, UpError> {
    let host_keys = HostKeys::open(lab.known_hosts())?;
    let agent_error = |source| UpError::AgentRead { path: agent.to_owned(), source };
    // Hashed once here, not once per node.
    let sum = ssh::sha256_file(agent).await.map_err(agent_error)?;
    let agent = Arc::new((agent.to_owned(), sum));
    // Each node's agent is this lab's: another lab's is left alone (install::owner).
    let owner = Arc::new(Owner::of(lab.name(), lab.dir()));
    let (progress, booted) = (Arc::new(progress), Arc::new(booted));
    let lab_dir = Arc::new(lab.dir().to_owned());
    let results = run_parallel(targets, parallel, move |target| {
        let (host_keys, agent, progress, booted) = (host_keys.clone(), agent.clone(), progress.clone(), booted.clone());
        let (owner, lab_dir) = (owner.clone(), lab_dir.clone());
        async move {
            let (path, sum) = &*agent;
            let connect =
                if booted.contains(&target.node) { ConnectOptions::known_up() } else { ConnectOptions::default() };
            // Logged into before: an agent without an owner file is this lab's (an older zerolab's).
            let claim = Claim { owner: &owner, adopt: host_keys.pinned(&target.node).is_some() };
            let report = report(&target.node, provision(&target, &connect, &host_keys, path, sum, &claim).await);
            if report.state == NodeState::Ready {
                provider.node_ready(&lab_dir, &target.node);
            }
            progress(&report);
            Ok(report)
        }
    })
    .await;
    Ok(results
        .into_iter()
        .map(|(node, result)| {
            result.unwrap_or_else(|e| NodeReport {
                node,
                state: NodeState::Failed { cause: error_chain(&e) },
                detail: error_chain(&e),
            })
        })
        .collect())
}

fn report(node: &str, result: Result<Installed, InstallError>) -> NodeReport {
    let node = node.to_owned();
    match result {
        Ok(Installed { upload, start }) => {
            let upload = match upload {
                Upload::Copied => "agent uploaded",
                Upload::Skipped => "agent unchanged",
            };
            let start = match start {
                Start::Started => "started",
                Start::Restarted => "restarted",
                Start::Running => "already running",
            };
            NodeReport { node, state: NodeState::Ready, detail: format!("{upload}, {start}, healthy") }
        }
        Err(InstallError::Ssh(e @ (ssh::Error::Unreachable { .. } | ssh::Error::HandshakeTimeout { .. }))) => {
            NodeReport { node, state: NodeState::Unreachable, detail: error_chain(&e) }
        }
        Err(e) => {
            let cause = error_chain(&e);
            NodeReport { node, state: NodeState::Failed { cause: cause.clone() }, detail: cause }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_joins_sources_in_one_line_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let err = UpError::AgentRead { path: "/a".into(), source: io };
        assert_eq!(error_chain(&err), "cannot read agent binary /a: permission denied");
        // Not twice when the error shows it already.
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let err = ssh::Error::Unreachable { node: "n1".into(), address: "10.0.0.2:22".into(), attempts: 6, source: io };
        assert_eq!(
            error_chain(&err),
            "node n1: unreachable at 10.0.0.2:22 after 6 attempts (connection refused); check that the node is up \
             and its sshd listens there"
        );
    }

    #[test]
    fn unreachable_nodes_are_unreachable_and_other_failures_failed() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = ssh::Error::Unreachable { node: "n1".into(), address: "a".into(), attempts: 1, source: io };
        assert_eq!(report("n1", Err(InstallError::Ssh(err))).state, NodeState::Unreachable);
        let failed = report("n1", Err(InstallError::Start("no shell".into())));
        assert_eq!(failed.state, NodeState::Failed { cause: "starting the agent failed: no shell".into() });
    }

    #[test]
    fn a_ready_node_says_what_was_done() {
        let ready = report("n1", Ok(Installed { upload: Upload::Copied, start: Start::Restarted }));
        assert_eq!((ready.state, ready.detail.as_str()), (NodeState::Ready, "agent uploaded, restarted, healthy"));
    }

    #[test]
    fn what_up_changes_is_said_per_provider() {
        let mut state = LabState::default();
        for node in ["n1", "n2"] {
            state.nodes.insert(node.into(), NodeRecord::new("10.77.0.2", NodeState::Ready));
        }
        let netns = "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nnodes:\n  - {name: n1}\n  - {name: n4}\n";
        let cluster = crate::cluster::from_str(netns, "demo.yaml").unwrap();
        let provider = provider::of(&cluster).unwrap();
        assert_eq!(changes(&state, &cluster, provider).unwrap(), "lab demo: adding n4; removing n2");
        assert_eq!(changes(&LabState::default(), &cluster, provider), None, "a lab made now changes nothing");
        let ssh =
            "apiVersion: zerolab/v1\nkind: Cluster\nname: far\nprovider: ssh\ndefaults: {key: /k, user: u}\nnodes:\n  \
                   - {name: n1, address: 192.0.2.1}\n  - {name: n2, address: 192.0.2.2}\n";
        let cluster = crate::cluster::from_str(ssh, "far.yaml").unwrap();
        assert_eq!(changes(&state, &cluster, provider::of(&cluster).unwrap()), None);
        state.nodes.insert("n3".into(), NodeRecord::new("192.0.2.3", NodeState::Ready));
        assert_eq!(
            changes(&state, &cluster, provider::of(&cluster).unwrap()).unwrap(),
            "lab far: forgetting n3 (no longer in the cluster file; what zerolab installed there stays)"
        );
    }
}
