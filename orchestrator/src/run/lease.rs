//! Keeping a run's guests alive only while the run cares about them.
//!
//! Every session a run starts carries a lease of [`LEASE`]; the agent stops a guest
//! whose lease ran out (exit state `lease expired`). [`Leases`] renews them: a task
//! beside the driver that every [`RENEW_EVERY`] sends one `POST /v1/leases` per node
//! with all the run's live sessions there, whatever the driver is busy with (an upload,
//! a large output being collected). The driver says which sessions are live
//! ([`Leases::set`]) once per round. So the guests of a `zerolab run` that was killed,
//! or of a node the run gave up as lost, stop by themselves within [`LEASE`]; a renewal
//! that fails (a node silent, the keeper restarting) is simply tried again next time,
//! and the lease outlasts a few of those.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use super::steps::Targets;
use super::LIST_TIMEOUT;
use crate::agent_client::{self, Link};
use crate::keeper::Keeper;

/// How long a guest runs on without its lease renewed.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often leases are renewed: four times within a lease.
pub const RENEW_EVERY: Duration = Duration::from_millis(2500);

/// Live sessions by node.
type Live = BTreeMap<String, Vec<String>>;

/// The renewing task of one run; it stops when this is dropped.
#[derive(Debug)]
pub struct Leases {
    live: Arc<Mutex<Live>>,
    task: JoinHandle<()>,
}

impl Leases {
    /// Starts renewing, through `mux`, the sessions [`Leases::set`] names.
    pub fn start(mux: Keeper, targets: Targets) -> Leases {
        let live: Arc<Mutex<Live>> = Arc::default();
        let shared = live.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let now: Live = shared.lock().map(|live| live.clone()).unwrap_or_default();
                renew(&mux, &targets, now).await;
            }
        });
        Leases { live, task }
    }

    /// The run's live sessions now, as `(node, session id)`.
    pub fn set(&self, sessions: Vec<(String, String)>) {
        let mut by_node = Live::new();
        for (node, id) in sessions {
            by_node.entry(node).or_default().push(id);
        }
        if let Ok(mut live) = self.live.lock() {
            *live = by_node;
        }
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One renewal per node of `live`, all at once; failures wait for the next round.
async fn renew(mux: &Keeper, targets: &Targets, live: Live) {
    let mut renewals = JoinSet::new();
    for (node, sessions) in live {
        let Some(target) = targets.get(&node).cloned() else { continue };
        let mux = mux.clone();
        renewals.spawn(async move {
            if let Err(e) = agent_client::renew_leases(Link::Keeper(&mux, &target), sessions, LIST_TIMEOUT).await {
                tracing::debug!(node = %node, error = %e, "lease renewal failed");
            }
        });
    }
    while renewals.join_next().await.is_some() {}
}
