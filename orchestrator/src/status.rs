//! `zerolab status`: every node as it is now, checked live.
//!
//! Each node is reached over SSH where its provider says it is (in parallel, as in `up`)
//! and asked for its agent's version (`GET /v1/version`) and store (`GET /v1/health`). The state shown is what was
//! observed: `ready` when the agent answers, `unreachable` when SSH cannot reach the
//! node, `failed` with the cause otherwise, and `declared` for every node of a lab that
//! is not up. Nothing on the nodes or in the lab is changed (`up` records and repairs).
//!
//! Unlike `exec`, status does not use the lab's keeper: it makes a new connection to
//! every node, as `up` does, so it sees what a new login sees (a changed host key, an
//! sshd that no longer listens) rather than what a connection made earlier still can.

use std::path::Path;
use std::time::Duration;

use crate::agent_client;
use crate::cluster::Cluster;
use crate::lab::{Lab, NodeState};
use crate::provider;
use crate::ssh::{self, run_parallel, ConnectOptions, HostKeys, Session};
use crate::up::{cause, targets, UpError};

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
    /// The agent's version, when it answered.
    pub agent_version: Option<String>,
    /// What its agent keeps (blobs, sessions), when it answered and reports it.
    pub store: Option<zerolab_agent_api::StoreStats>,
    /// Why it is not ready, as one line (also for `unreachable`).
    pub cause: Option<String>,
}

/// The status of every node of `cluster` in the lab under `root`, in file order.
pub async fn status(root: &Path, cluster: &Cluster) -> Result<Vec<NodeStatus>, UpError> {
    let provider = provider::of(cluster)?;
    let lab = Lab::at(root, cluster.name())?;
    let row = |node: &crate::cluster::Node, state, agent_version, cause| NodeStatus {
        node: node.name.clone(),
        provider: cluster.provider().to_string(),
        address: node.address.to_string(),
        state,
        agent_version,
        store: None,
        cause,
    };
    if !lab.exists() || !provider.is_up(&lab)? {
        return Ok(cluster.nodes().iter().map(|node| row(node, NodeState::Declared, None, None)).collect());
    }
    let host_keys = HostKeys::open(lab.known_hosts())?;
    // Status should be quick to say a node is down: no waiting for a boot.
    let options = ConnectOptions::known_up();
    let results = run_parallel(&targets(&lab, cluster, provider)?, crate::up::PARALLEL, move |target| {
        let (host_keys, options) = (host_keys.clone(), options.clone());
        async move {
            let session = Session::connect(&target, &host_keys, &options).await?;
            let version = agent_client::version(&session, Duration::from_secs(5)).await;
            let health = agent_client::health_report(&session, Duration::from_secs(5)).await;
            let _ = session.close().await;
            Ok(version.map(|version| (version, health.ok().and_then(|h| h.store))))
        }
    })
    .await;
    Ok(cluster
        .nodes()
        .iter()
        .zip(results)
        .map(|(node, (_, result))| match result {
            Ok(Ok((version, store))) => {
                NodeStatus { store, ..row(node, NodeState::Ready, Some(version.version), None) }
            }
            Ok(Err(e)) => row(node, NodeState::Failed { cause: cause(&e) }, None, Some(cause(&e))),
            Err(e @ (ssh::Error::Unreachable { .. } | ssh::Error::HandshakeTimeout { .. })) => {
                row(node, NodeState::Unreachable, None, Some(cause(&e)))
            }
            Err(e) => row(node, NodeState::Failed { cause: cause(&e) }, None, Some(cause(&e))),
        })
        .collect())
}
