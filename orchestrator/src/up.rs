//! Bringing a lab up and down: `zerolab up` and `zerolab down`.
//!
//! [`up`] makes the nodes (netns: namespace hosts, unless the lab's bridge is already
//! there), then provisions every node in parallel ([`run_parallel`], bounded) over one
//! SSH connection each: pin the host key, upload the agent to [`AGENT_PATH`] (skipped
//! when the node has the same sha256), start it unless it runs, and wait until it
//! answers `GET /v1/health`. Each node's outcome is recorded in `state.json` and handed
//! to a progress callback as it finishes, so the caller can print it at once.
//!
//! Starting the agent (nodes without systemd): a supervisor shell started with
//! `setsid -f` (detached, so it outlives the SSH session and is never our zombie)
//! restarts the agent a second after it exits. Its pid is in
//! `/run/zerolab/supervisor.pid`, the agent's in `/run/zerolab/agent.pid`; a live
//! supervisor (that pid, with the supervisor's command line: not a zombie, not a reused
//! pid) means "already running". A new upload restarts the agent so the new build
//! serves. Nodes running systemd are refused with a clear cause for now.
//!
//! Running `up` again on a ready lab changes nothing: creation is skipped, the upload is
//! skipped by hash, the agent is found running and healthy. Nodes an earlier run
//! recorded (ready, failed, unreachable) are connected to without waiting for a boot
//! ([`ConnectOptions::known_up`]), so one that went away is reported in seconds; only
//! hosts just made get the retries a booting node needs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::agent_client::{self, AgentError};
use crate::cluster::Cluster;
use crate::lab::{Lab, LabError, NodeRecord, NodeState};
use crate::mux::{self, Mux};
use crate::provider::netns::{self, Names, NetnsError};
use crate::provider::ProviderKind;
use crate::ssh::{self, run_parallel, ConnectOptions, HostKeys, Session, Target, Upload};

/// Where the agent binary goes on every node.
pub const AGENT_PATH: &str = "/var/lib/zerolab/bin/zerolab-agent";
/// Nodes provisioned at once.
pub const PARALLEL: usize = 32;
/// How long a started agent has to answer its health check.
const HEALTH_WAIT: Duration = Duration::from_secs(5);
/// Limit for each command and the upload.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// What can stop `up`, `down` or `status` as a whole (a node's own failure does not:
/// it is in that node's [`NodeReport`]).
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// The provider cannot be brought up by zerolab yet.
    #[error("the {provider} provider's bring-up is not implemented yet (only netns is)")]
    NotImplemented { provider: ProviderKind },
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
    /// Making or removing the namespace hosts failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// A lab file.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The pinned host keys could not be read.
    #[error(transparent)]
    HostKeys(#[from] ssh::Error),
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
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The agent binary to install on every node.
    pub agent: PathBuf,
    /// Nodes provisioned at once.
    pub parallel: usize,
    /// The `zerolab` executable, to start the lab's connection keeper and have it
    /// connect to the ready nodes, so the next command finds them open (`None`: no keeper).
    pub keeper: Option<PathBuf>,
}

/// The `zerolab-agent` beside the running executable (how releases and `cargo build`
/// lay them out).
pub fn default_agent_path() -> Option<PathBuf> {
    Some(std::env::current_exe().ok()?.parent()?.join("zerolab-agent"))
}

/// Refuses providers whose bring-up does not exist yet (before anything is touched).
pub fn check_provider(cluster: &Cluster) -> Result<(), UpError> {
    match cluster.provider() {
        ProviderKind::Netns => Ok(()),
        provider => Err(UpError::NotImplemented { provider }),
    }
}

/// Whether the netns lab's hosts exist (its bridge is the first thing made).
fn netns_up(lab: &Lab) -> bool {
    Path::new("/sys/class/net").join(Names::new(lab.name()).bridge()).exists()
}

/// Brings `cluster` up in the lab under `root` and provisions every node; `progress`
/// gets each node's report as it finishes. Returns every report, in file order.
pub async fn up(
    root: &Path,
    cluster: &Cluster,
    options: &UpOptions,
    progress: impl Fn(&NodeReport) + Send + Sync + 'static,
) -> Result<Vec<NodeReport>, UpError> {
    check_provider(cluster)?;
    if !options.agent.is_file() {
        return Err(UpError::AgentMissing { path: options.agent.clone() });
    }
    let lab = Lab::open_or_create(root, cluster.name())?;
    // Made only when missing: a lab that is up is verified, not rebuilt.
    if !netns_up(&lab) {
        // New hosts get new host keys (say the machine rebooted): pins of the hosts
        // this lab made before are void, and these are made here, by us.
        // A keeper of the old hosts holds dead connections.
        mux::stop(lab.dir());
        let known_hosts = lab.known_hosts();
        std::fs::write(&known_hosts, "").map_err(|source| LabError::Io { path: known_hosts.clone(), source })?;
        let started = Instant::now();
        netns::create(&lab, cluster)?;
        tracing::debug!(nodes = cluster.nodes().len(), elapsed = ?started.elapsed(), "netns hosts made");
    }
    let host_keys = HostKeys::open(lab.known_hosts())?;
    let targets = targets(&lab, cluster);
    let agent_error = |source| UpError::AgentRead { path: options.agent.clone(), source };
    // Hashed once here, not once per node.
    let sum = ssh::sha256_file(&options.agent).await.map_err(agent_error)?;
    let agent = Arc::new((options.agent.clone(), sum));
    let progress = Arc::new(progress);
    // Nodes an earlier run left ready, failed or unreachable have long booted (hosts
    // made now are recorded `provisioning`): waiting for them as for a booting node
    // would only delay saying one went away, by most of a minute when its link is down.
    let booted: Arc<HashSet<String>> = Arc::new(
        lab.load_state()?
            .nodes
            .into_iter()
            .filter(|(_, r)| !matches!(r.state, NodeState::Declared | NodeState::Provisioning))
            .map(|(n, _)| n)
            .collect(),
    );
    let results = run_parallel(&targets, options.parallel, move |target| {
        let (host_keys, agent, progress, booted) = (host_keys.clone(), agent.clone(), progress.clone(), booted.clone());
        async move {
            let (path, sum) = &*agent;
            let connect =
                if booted.contains(&target.node) { ConnectOptions::known_up() } else { ConnectOptions::default() };
            let report = report(&target.node, provision(&target, &connect, &host_keys, path, sum).await);
            progress(&report);
            Ok(report)
        }
    })
    .await;
    let reports: Vec<NodeReport> = results
        .into_iter()
        .map(|(node, result)| {
            result.unwrap_or_else(|e| NodeReport {
                node,
                state: NodeState::Failed { cause: cause(&e) },
                detail: cause(&e),
            })
        })
        .collect();

    let mut state = lab.load_state()?;
    for (node, report) in cluster.nodes().iter().zip(&reports) {
        let record = state.nodes.entry(node.name.clone()).or_insert_with(|| NodeRecord {
            address: node.address.to_string(),
            state: NodeState::Declared,
            pid: None,
        });
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
            tracing::warn!("connection keeper: {}", cause(&e));
        }
    }
    Ok(reports)
}

async fn warm_keeper(lab: &Lab, program: &Path, ready: &[Target]) -> Result<(), mux::MuxError> {
    if ready.is_empty() {
        return Ok(());
    }
    Mux::open(lab.dir(), program).await?.warm(ready).await
}

/// Removes the lab under `root`: its hosts, then its directory. Idempotent.
pub fn down(root: &Path, cluster: &Cluster) -> Result<(), UpError> {
    check_provider(cluster)?;
    let lab = Lab::at(root, cluster.name())?;
    mux::stop(lab.dir());
    netns::destroy(&lab)?;
    lab.remove()?;
    Ok(())
}

/// One SSH target per node, logging in with the lab's key.
pub(crate) fn targets(lab: &Lab, cluster: &Cluster) -> Vec<Target> {
    cluster
        .nodes()
        .iter()
        .map(|node| Target {
            node: node.name.clone(),
            address: node.address.to_string(),
            port: node.ssh_port(),
            user: node.user.clone(),
            key: lab.private_key(),
        })
        .collect()
}

/// What went wrong on one node.
#[derive(Debug, thiserror::Error)]
enum NodeError {
    #[error(transparent)]
    Ssh(#[from] ssh::Error),
    #[error("starting the agent failed: {0}")]
    Start(String),
    #[error("agent not healthy after {0:?}")]
    Health(Duration, #[source] AgentError),
}

/// What provisioning did on a node that ended ready.
struct Done {
    upload: Upload,
    started: bool,
}

async fn provision(
    target: &Target,
    connect: &ConnectOptions,
    host_keys: &HostKeys,
    agent: &Path,
    sum: &str,
) -> Result<Done, NodeError> {
    let started = Instant::now();
    let session = Session::connect(target, host_keys, connect).await?;
    tracing::debug!(node = %target.node, elapsed = ?started.elapsed(), "connected");
    let result = provision_on(&session, agent, sum).await;
    // The node is done with either way; a failed goodbye changes nothing.
    let _ = session.close().await;
    result
}

async fn provision_on(session: &Session, agent: &Path, sum: &str) -> Result<Done, NodeError> {
    let started = Instant::now();
    let upload = session.upload_with_sum(agent, sum, AGENT_PATH, 0o755, STEP_TIMEOUT).await?;
    tracing::debug!(node = session.node(), elapsed = ?started.elapsed(), ?upload, "agent upload");
    let script = start_script(upload == Upload::Copied);
    let output = session.exec(&script, None, STEP_TIMEOUT).await?;
    tracing::debug!(node = session.node(), elapsed = ?started.elapsed(), "start script");
    if !output.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let cause = match stderr.trim().lines().last() {
            Some(line) => line.to_owned(),
            None => format!("exit status {:?}", output.status),
        };
        return Err(NodeError::Start(cause));
    }
    let started_agent = String::from_utf8_lossy(&output.stdout).trim() == "started";
    wait_healthy(session).await?;
    tracing::debug!(node = session.node(), elapsed = ?started.elapsed(), "healthy");
    Ok(Done { upload, started: started_agent })
}

/// Asks for health until the agent answers or [`HEALTH_WAIT`] has passed (a fresh agent
/// needs a moment to bind its socket; a killed one is restarted a second later).
async fn wait_healthy(session: &Session) -> Result<(), NodeError> {
    let deadline = Instant::now() + HEALTH_WAIT;
    loop {
        match agent_client::health(session, Duration::from_secs(2)).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(NodeError::Health(HEALTH_WAIT, e)),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The node-side script that starts the agent under its supervisor unless it runs;
/// prints `started` or `running`. With `restart`, a running agent is stopped so its
/// supervisor starts the new build.
fn start_script(restart: bool) -> String {
    let restart = u8::from(restart);
    format!(
        r#"set -e
if [ -d /run/systemd/system ]; then
  echo "systemd runs on this node; starting the agent as a systemd service is not implemented yet" >&2
  exit 3
fi
mkdir -p -m 0700 /run/zerolab
sup=$(cat /run/zerolab/supervisor.pid 2>/dev/null || true)
# Alive and ours: a zombie or a reused pid has another (or an empty) command line.
if [ -n "$sup" ] && grep -aqs supervisor.pid "/proc/$sup/cmdline"; then
  agent=$(cat /run/zerolab/agent.pid 2>/dev/null || true)
  if [ {restart} = 1 ] && [ -n "$agent" ]; then
    kill "$agent" 2>/dev/null || true
    i=0; while kill -0 "$agent" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  fi
  echo running
  exit 0
fi
setsid -f sh -c 'echo $$ > /run/zerolab/supervisor.pid
while :; do
  {AGENT_PATH} --socket {socket} --state-dir /var/lib/zerolab >>/var/lib/zerolab/agent.log 2>&1 &
  echo $! > /run/zerolab/agent.pid
  wait $! || true
  sleep 1
done' </dev/null >/dev/null 2>&1
echo started
"#,
        socket = agent_client::SOCKET,
    )
}

fn report(node: &str, result: Result<Done, NodeError>) -> NodeReport {
    let node = node.to_owned();
    match result {
        Ok(Done { upload, started }) => {
            let upload = match upload {
                Upload::Copied => "agent uploaded",
                Upload::Skipped => "agent unchanged",
            };
            let started = if started { "started" } else { "already running" };
            NodeReport { node, state: NodeState::Ready, detail: format!("{upload}, {started}, healthy") }
        }
        Err(NodeError::Ssh(e @ (ssh::Error::Unreachable { .. } | ssh::Error::HandshakeTimeout { .. }))) => {
            NodeReport { node, state: NodeState::Unreachable, detail: cause(&e) }
        }
        Err(e) => {
            let cause = cause(&e);
            NodeReport { node, state: NodeState::Failed { cause: cause.clone() }, detail: cause }
        }
    }
}

/// An error and its sources as one line: `a: b: c`.
pub fn cause(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        // An error may already show its source's text in its own.
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_joins_sources_in_one_line() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let err = UpError::AgentRead { path: "/a".into(), source: io };
        assert_eq!(cause(&err), "cannot read agent binary /a: permission denied");
        // Not twice when the error shows it already.
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let err = ssh::Error::Unreachable { node: "n1".into(), address: "10.0.0.2:22".into(), attempts: 6, source: io };
        assert_eq!(
            cause(&err),
            "node n1: unreachable at 10.0.0.2:22 after 6 attempts (connection refused); check that the node is up \
             and its sshd listens there"
        );
    }

    #[test]
    fn unreachable_nodes_are_unreachable_and_other_failures_failed() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = ssh::Error::Unreachable { node: "n1".into(), address: "a".into(), attempts: 1, source: io };
        assert_eq!(report("n1", Err(NodeError::Ssh(err))).state, NodeState::Unreachable);
        let failed = report("n1", Err(NodeError::Start("no shell".into())));
        assert_eq!(failed.state, NodeState::Failed { cause: "starting the agent failed: no shell".into() });
    }

    #[test]
    fn other_providers_are_refused_with_a_clear_line() {
        let text = "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nprovider: ssh\n\
                    nodes:\n  - {name: a, address: 192.0.2.1, user: root, key: /k}\n";
        let cluster = Cluster::from_str(text, "demo.yaml").unwrap();
        let err = check_provider(&cluster).unwrap_err();
        assert_eq!(err.to_string(), "the ssh provider's bring-up is not implemented yet (only netns is)");
    }

    #[test]
    fn start_script_restarts_only_after_an_upload() {
        assert!(start_script(true).contains("[ 1 = 1 ]"));
        assert!(start_script(false).contains("[ 0 = 1 ]"));
        assert!(start_script(false).contains(AGENT_PATH));
    }
}
