//! `zerolab status`: every node as it is now, checked live.
//!
//! Each node is reached over SSH where its provider says it is (in parallel, as in `up`)
//! and asked for its agent's version (`GET /v1/version`) and store (`GET /v1/health`). The state shown is what was
//! observed: `ready` when the agent answers (and is this lab's: an agent whose owner
//! file names another lab is `failed`, naming it), `unreachable` when SSH cannot reach the
//! node, `failed` with the cause otherwise, and `declared` for every node of a lab that
//! is not up. A node the lab records as shelved (`shelved`, `shelved_offloaded`) is not
//! contacted: its state is the recorded one. Nothing on the nodes or in the lab is changed
//! (`up` records and repairs).
//! Where the provider runs the nodes' machines (`vagrant`), each row also has the
//! machine's state as the hypervisor sees it, asked of libvirt, not of Vagrant.
//!
//! Unlike `exec`, status does not reach nodes through the lab's keeper: it makes a new
//! connection to every node, as `up` does, so it sees what a new login sees (a changed
//! host key, an sshd that no longer listens) rather than what a connection made earlier
//! still can. It does ask a running keeper (never starting one) what the lab's services
//! are doing, and lists them after the nodes, with the provisioning steps' counts as the
//! lab's records have them.

use std::path::Path;
use std::time::Duration;

use zerolab_sandbox::session::error_chain;

use crate::agent_client;
use crate::cluster::Cluster;
use crate::install::{self, InstallError, Owner};
use crate::keeper::{Keeper, KeeperError, ServiceStatus};
use crate::lab::{Lab, NodeState};
use crate::lab_handle::OpenError;
use crate::provision::record::{self, StepCounts};
use crate::ssh::{self, run_parallel, ConnectOptions, HostKeys, Session};

/// What can stop `status` as a whole (a node's own failure is in its row).
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The lab's provider or files.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The pinned host keys could not be read.
    #[error(transparent)]
    HostKeys(#[from] ssh::Error),
    /// The lab's keeper runs but did not say what its services do.
    #[error(transparent)]
    Keeper(#[from] KeeperError),
}

/// What `zerolab status` shows: every node, then the lab's services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabStatus {
    /// Every node, in file order.
    pub nodes: Vec<NodeStatus>,
    /// The services the lab's keeper runs, by name (none when no keeper runs).
    pub services: Vec<ServiceStatus>,
    /// Each provisioning step, with its done, failed and pending node counts (from the
    /// lab's records: what `up` last did, not checked live).
    pub steps: Vec<StepCounts>,
}

/// One row of `zerolab status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node.
    pub node: String,
    /// Its provider.
    pub provider: String,
    /// Where it is reached.
    pub address: String,
    /// What was observed.
    pub state: NodeState,
    /// Its machine as the hypervisor sees it (`running`, `shut off`, `missing`), for
    /// providers whose nodes are machines they run (`vagrant`); `None` for the others.
    pub machine: Option<String>,
    /// The agent's version, when it answered.
    pub agent_version: Option<String>,
    /// What its agent keeps (blobs, sessions), when it answered and reports it.
    pub store: Option<zerolab_agent_api::StoreStats>,
    /// Why it is not ready, as one line (also for `unreachable`).
    pub cause: Option<String>,
}

/// The status of every node of `cluster` in the lab under `root` (in file order), and of
/// its services.
pub async fn status(root: &Path, cluster: &Cluster) -> Result<LabStatus, StatusError> {
    let lab = Lab::open_any(root, cluster)?;
    let services = match Keeper::running(lab.lab().dir()).await {
        Some(keeper) => keeper.services().await?,
        None => Vec::new(),
    };
    let steps = record::counts(lab.lab().dir(), cluster);
    let mut nodes = nodes(&lab, cluster).await?;
    if lab.is_up() {
        if let Some(machines) = lab.provider().machine_states(lab.lab(), cluster).await {
            for (node, machine) in nodes.iter_mut().zip(machines) {
                node.machine = Some(machine);
            }
        }
    }
    Ok(LabStatus { nodes, services, steps })
}

async fn nodes(lab: &crate::lab_handle::LabHandle<'_>, cluster: &Cluster) -> Result<Vec<NodeStatus>, StatusError> {
    let row = |node: &crate::cluster::Node, state, agent_version, cause| NodeStatus {
        node: node.name.clone(),
        provider: cluster.provider().to_string(),
        address: node.address.to_string(),
        state,
        machine: None,
        agent_version,
        store: None,
        cause,
    };
    if !lab.is_up() {
        return Ok(cluster.nodes().iter().map(|node| row(node, NodeState::Declared, None, None)).collect());
    }
    let host_keys = HostKeys::open(lab.lab().known_hosts())?;
    // Status should be quick to say a node is down: no waiting for a boot.
    let options = ConnectOptions::known_up();
    // A shelved node would not answer (or, frozen, would hang the connection): not asked.
    let shelved = |node: &str| lab.state().nodes.get(node).map(|r| &r.state).filter(|s| s.shelve_mode().is_some());
    let asked: Vec<_> = lab.targets().iter().filter(|t| shelved(&t.node).is_none()).cloned().collect();
    let results = run_parallel(&asked, ssh::PARALLEL, move |target| {
        let (host_keys, options) = (host_keys.clone(), options.clone());
        async move {
            let session = Session::connect(&target, &host_keys, &options).await?;
            let owner = install::agent_owner(&session).await;
            let version = agent_client::version(&session, Duration::from_secs(5)).await;
            let health = agent_client::health_report(&session, Duration::from_secs(5)).await;
            let _ = session.close().await;
            Ok((owner, version.map(|version| (version, health.ok().and_then(|h| h.store)))))
        }
    })
    .await;
    let ours = Owner::of(lab.lab().name(), lab.lab().dir());
    // The asked nodes' results come in file order; a shelved node's row is its record.
    let mut results = results.into_iter().map(|(_, result)| result);
    let mut rows = Vec::with_capacity(cluster.nodes().len());
    for node in cluster.nodes() {
        if let Some(state) = shelved(&node.name) {
            rows.push(row(node, state.clone(), None, None));
            continue;
        }
        let Some(result) = results.next() else { break };
        rows.push(match result {
            // Another lab's agent answers there: not this lab's node to use.
            Ok((Some(owner), _)) if owner != ours => {
                let cause = InstallError::Owned { node: node.name.clone(), owner }.to_string();
                row(node, NodeState::Failed { cause: cause.clone() }, None, Some(cause))
            }
            Ok((_, Ok((version, store)))) => {
                NodeStatus { store, ..row(node, NodeState::Ready, Some(version.version), None) }
            }
            Ok((_, Err(e))) => row(node, NodeState::Failed { cause: error_chain(&e) }, None, Some(error_chain(&e))),
            Err(e @ (ssh::Error::Unreachable { .. } | ssh::Error::HandshakeTimeout { .. })) => {
                row(node, NodeState::Unreachable, None, Some(error_chain(&e)))
            }
            Err(e) => row(node, NodeState::Failed { cause: error_chain(&e) }, None, Some(error_chain(&e))),
        });
    }
    Ok(rows)
}
