//! Placing failed instances again: an instance of a group with `retries` that fails
//! (non-zero exit, killed, timed out, its node lost or its agent restarted) is started
//! again on another node instead of failing the run, up to `retries` times.
//!
//! The new node is one of the group's selected nodes that was ready when the run began:
//! first those the instance has failed on least often, then the least loaded by the
//! job's running instances, then the cluster file's order; never a node lost (or whose
//! agent restarted) during the run, nor one at the capacity. So a guest failure may be
//! retried on the same node when it is the only one left, a lost node never.
//!
//! Placing again happens beside the watch ([`Retries::replace`] spawns it and
//! [`Retries::poll`] takes what finished): the node gets the blobs it lacks, then the
//! session is started, and the run's record is saved with the new node and session
//! before the `cancel` marker is looked at, so `zerolab cancel` always reaches it. When
//! the run stops (fail fast) or was cancelled nothing more is placed; a start already
//! under way is killed once it answers. A failed attempt's report, stdout and stderr go
//! to `<instance>/attempt-N/` in the results directory; the last attempt's go where an
//! instance's always go.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch::{self, Receiver, Sender};
use tokio::task::{Id, JoinSet};
use zerolab_agent_api::SessionRequest;

use super::plan::{Blob, Plan};
use super::record::{Attempt, JobRecord, CANCELLED};
use super::{ended, save, upload_to, write, InstanceResult, RunError, LIST_TIMEOUT, REQUEST_TIMEOUT};
use crate::agent_client::{self, Link};
use crate::cluster::{Cluster, Node};
use crate::job::{Job, DEFAULT_GUESTS_PER_NODE};
use crate::lab::{LabState, NodeState};
use crate::mux::Mux;
use crate::ssh::Target;
use crate::up::cause;

/// How a placement under way ended.
enum Placed {
    /// Its session was started: its id.
    Started(String),
    /// The run stopped first; nothing was started.
    Stopped,
    /// The node did not take the blobs or the session: why.
    Failed(String),
}

/// The retry state of one run.
pub(super) struct Retries {
    mux: Mux,
    targets: Arc<HashMap<String, Target>>,
    /// The results directory.
    dir: PathBuf,
    /// The run's record, saved whenever an instance starts again.
    record: JobRecord,
    /// Per instance: how many times it may be placed again.
    allowed: Vec<usize>,
    /// Per instance: the nodes it may go to, in the cluster file's order.
    nodes: Vec<Arc<[String]>>,
    /// Per instance: its ended attempts, oldest first (the current one not included).
    attempts: Vec<Vec<Attempt>>,
    /// Instances being placed again: the node each goes to, and the failed attempt's
    /// result (its result again if the run stops before the new one starts).
    placing: HashMap<usize, (String, InstanceResult)>,
    tasks: JoinSet<(usize, Placed)>,
    task_of: HashMap<Id, usize>,
    /// Nodes lost, or whose agent restarted, during the run.
    lost: BTreeSet<String>,
    stop: Sender<bool>,
    /// How many times instances were placed again.
    made: usize,
}

impl Retries {
    /// The retry state of a run of `job` on `cluster`, recorded as `record` in `dir`;
    /// `state` says which nodes are ready.
    pub(super) fn new(
        job: &Job,
        cluster: &Cluster,
        state: &LabState,
        record: JobRecord,
        dir: PathBuf,
        mux: Mux,
        targets: Arc<HashMap<String, Target>>,
    ) -> Retries {
        let ready = |node: &str| {
            state.nodes.get(node).is_some_and(|r| r.state == NodeState::Ready) && targets.contains_key(node)
        };
        let group_nodes: Vec<Arc<[String]>> = job
            .groups()
            .iter()
            .map(|group| {
                let selected = |node: &Node| group.placement.nodes.as_ref().is_none_or(|s| s.matches(node));
                let nodes = cluster.nodes().iter().filter(|node| group.retries > 0 && selected(node));
                nodes.filter(|node| ready(&node.name)).map(|node| node.name.clone()).collect()
            })
            .collect();
        let (allowed, nodes) = job
            .instances()
            .iter()
            .map(|i| (job.groups()[i.group].retries as usize, group_nodes[i.group].clone()))
            .unzip();
        Retries {
            mux,
            targets,
            dir,
            record,
            allowed,
            nodes,
            attempts: vec![Vec::new(); job.instances().len()],
            placing: HashMap::new(),
            tasks: JoinSet::new(),
            task_of: HashMap::new(),
            lost: BTreeSet::new(),
            stop: watch::channel(false).0,
            made: 0,
        }
    }

    /// How many times instances were placed again so far.
    pub(super) fn made(&self) -> usize {
        self.made
    }

    /// Whether instance `index` is being placed again (it has no session to watch).
    pub(super) fn placing(&self, index: usize) -> bool {
        self.placing.contains_key(&index)
    }

    /// ` after N attempts` for an instance placed again, else nothing: for messages.
    pub(super) fn after(&self, index: usize) -> String {
        match self.attempts[index].len() {
            0 => String::new(),
            n => format!(" after {} attempts", n + 1),
        }
    }

    /// The run stops: nothing more is placed, and starts under way are given up.
    pub(super) fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn cancelled(&self) -> bool {
        self.dir.join(CANCELLED).exists()
    }

    fn may_retry(&self, index: usize) -> bool {
        self.attempts[index].len() < self.allowed[index] && !self.stopped() && !self.cancelled()
    }

    /// Instance `index`, whose session `plan` and `ids` give, has ended: when it may be
    /// placed again and failed, saves that attempt's outputs (those its agent gives) and
    /// places it again (true); false when it succeeded or is not placed again (it is then
    /// collected as usual).
    pub(super) async fn replaced_if_failed(
        &mut self,
        index: usize,
        plan: &Plan,
        ids: &[String],
        results: &[Option<InstanceResult>],
    ) -> Result<bool, RunError> {
        if !self.may_retry(index) {
            return Ok(false);
        }
        let instance = &plan.instances[index];
        let link = Link::Keeper(&self.mux, &self.targets[&instance.node]);
        let Ok(status) = agent_client::session_status(link, &ids[index], REQUEST_TIMEOUT).await else {
            return Ok(false);
        };
        let failed = ended(plan, index, status.report, None);
        if failed.success() || self.choose(index, &failed.node, plan, results).is_none() {
            return Ok(false);
        }
        let out = self.dir.join(&instance.name).join(format!("attempt-{}", self.attempts[index].len() + 1));
        write(&out, "report", failed.report.as_ref().map_or(&b""[..], |r| r.text.as_bytes())).await?;
        for stream in instance.collect.iter().map(|c| c.stream) {
            // An output the agent cannot give is left out of the attempt's record.
            let _ = save(link, &ids[index], &out, stream).await?;
        }
        Ok(self.replace(index, failed, false, Some(&ids[index]), plan, results).is_none())
    }

    /// Places instance `index` again after its attempt ended as `failed` (in session
    /// `session`; `node_lost` when its node was lost or its agent restarted, which rules
    /// that node out for the rest of the run). Returns `failed` when the instance is not
    /// placed again: no retries left, the run stopping or cancelled, or no node to go to.
    pub(super) fn replace(
        &mut self,
        index: usize,
        failed: InstanceResult,
        node_lost: bool,
        session: Option<&str>,
        plan: &Plan,
        results: &[Option<InstanceResult>],
    ) -> Option<InstanceResult> {
        if node_lost {
            self.lost.insert(failed.node.clone());
        }
        if !self.may_retry(index) {
            return Some(failed);
        }
        let Some(to) = self.choose(index, &failed.node, plan, results) else { return Some(failed) };
        self.attempts[index].push(Attempt::of(&failed, session));
        let old = match (node_lost, session) {
            (true, Some(id)) => Some((self.targets[&failed.node].clone(), id.to_owned())),
            _ => None,
        };
        let task = place(
            self.mux.clone(),
            self.targets[&to].clone(),
            plan.instance_blobs[index].clone(),
            plan.instances[index].request.clone(),
            self.stop.subscribe(),
            old,
        );
        let handle = self.tasks.spawn(async move { (index, task.await) });
        self.task_of.insert(handle.id(), index);
        self.placing.insert(index, (to, failed));
        self.made += 1;
        None
    }

    /// The node instance `index` goes to next, its last attempt having been on `last`.
    fn choose(&self, index: usize, last: &str, plan: &Plan, results: &[Option<InstanceResult>]) -> Option<String> {
        let mut load: HashMap<&str, usize> = HashMap::new();
        for (i, instance) in plan.instances.iter().enumerate() {
            if i != index && results[i].is_none() && !self.placing(i) {
                *load.entry(&instance.node).or_default() += 1;
            }
        }
        for (to, _) in self.placing.values() {
            *load.entry(to).or_default() += 1;
        }
        let load = |node: &str| load.get(node).copied().unwrap_or(0);
        let failures =
            |node: &str| self.attempts[index].iter().filter(|a| a.node == node).count() + usize::from(node == last);
        next_node(&self.nodes[index], &self.lost, failures, load)
    }

    /// Takes the placements that finished: a started instance gets its new node and
    /// session (in `plan`, `ids` and the record); one whose node did not take it is
    /// placed again or fails. Returns why the run must stop, when one failed for good.
    pub(super) async fn poll(
        &mut self,
        plan: &mut Plan,
        ids: &mut [String],
        results: &mut [Option<InstanceResult>],
    ) -> Result<Option<String>, RunError> {
        let mut failure = None;
        while let Some(joined) = self.tasks.try_join_next_with_id() {
            let (index, placed) = match joined {
                Ok((id, (index, placed))) => {
                    self.task_of.remove(&id);
                    (index, placed)
                }
                Err(error) => match self.task_of.remove(&error.id()) {
                    Some(index) => (index, Placed::Failed(format!("its start was lost: {error}"))),
                    None => continue,
                },
            };
            let Some((to, last)) = self.placing.remove(&index) else { continue };
            match placed {
                Placed::Started(session) => {
                    plan.instances[index].node = to.clone();
                    ids[index] = session.clone();
                    let entry = &mut self.record.instances[index];
                    entry.node = to.clone();
                    entry.session = Some(session.clone());
                    entry.attempts = self.attempts[index].clone();
                    self.record.save(&self.dir)?;
                    // Saved before looking: a `cancel` that came later reads the new session.
                    if results[index].is_some() || self.stopped() || self.cancelled() {
                        self.kill(&to, &session).await;
                    }
                }
                Placed::Stopped if results[index].is_none() => {
                    self.attempts[index].pop();
                    self.made -= 1;
                    self.restore(plan, index).await?;
                    results[index] = Some(last);
                }
                Placed::Failed(why) if results[index].is_none() => {
                    plan.instances[index].node = to.clone();
                    ids[index] = String::new();
                    let failed = ended(plan, index, None, Some(format!("could not be started on {to}: {why}")));
                    if let Some(result) = self.replace(index, failed, false, None, plan, results) {
                        failure.get_or_insert(format!("{} could not be started{}", result.name, self.after(index)));
                        results[index] = Some(result);
                    }
                }
                Placed::Stopped | Placed::Failed(_) => {}
            }
        }
        Ok(failure)
    }

    /// The end of the run: waits for placements still under way (killing what they
    /// started), gives each result its earlier attempts, and saves the record with
    /// every attempt when any instance was placed again.
    pub(super) async fn finish(&mut self, results: &mut [InstanceResult], ids: &[String]) -> Result<(), RunError> {
        self.stop();
        while let Some(joined) = self.tasks.join_next().await {
            if let Ok((index, Placed::Started(session))) = joined {
                if let Some((to, _)) = self.placing.get(&index) {
                    self.kill(to, &session).await;
                }
            }
        }
        if self.made == 0 {
            return Ok(());
        }
        for (index, result) in results.iter_mut().enumerate() {
            if self.attempts[index].is_empty() {
                continue;
            }
            result.attempts = std::mem::take(&mut self.attempts[index]);
            let session = ids.get(index).map(String::as_str).filter(|id| !id.is_empty());
            let entry = &mut self.record.instances[index];
            entry.node = result.node.clone();
            entry.session = session.map(str::to_owned);
            entry.attempts = result.attempts.clone();
            entry.attempts.push(Attempt::of(result, session));
        }
        self.record.save(&self.dir)
    }

    /// Makes the outputs saved of instance `index`'s last ended attempt its final ones
    /// again (its next attempt never started), copies included.
    async fn restore(&self, plan: &Plan, index: usize) -> Result<(), RunError> {
        let instance = &plan.instances[index];
        let out = self.dir.join(&instance.name);
        let saved = out.join(format!("attempt-{}", self.attempts[index].len() + 1));
        let failed = |source| RunError::Results { path: saved.clone(), source };
        let kept = instance.collect.iter().map(|c| (c.stream, c.copy_to.as_ref()));
        for (name, copy_to) in std::iter::once(("report", None)).chain(kept) {
            match tokio::fs::rename(saved.join(name), out.join(name)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(failed(e)),
            }
            if let Some(path) = copy_to {
                let copied = tokio::fs::copy(out.join(name), path).await;
                copied.map_err(|source| RunError::Results { path: path.clone(), source })?;
            }
        }
        match tokio::fs::remove_dir(&saved).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        }
    }

    async fn kill(&self, node: &str, session: &str) {
        let _ =
            agent_client::kill_session(Link::Keeper(&self.mux, &self.targets[node]), session, REQUEST_TIMEOUT).await;
    }
}

/// Of `nodes` (in the cluster file's order), those neither `lost` nor at the capacity by
/// `load`: the one with the fewest `failures` of the instance, then the least `load`,
/// then the first.
fn next_node(
    nodes: &[String],
    lost: &BTreeSet<String>,
    failures: impl Fn(&str) -> usize,
    load: impl Fn(&str) -> usize,
) -> Option<String> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| !lost.contains(*node) && load(node) < DEFAULT_GUESTS_PER_NODE)
        .min_by_key(|(order, node)| (failures(node), load(node), *order))
        .map(|(_, node)| node.clone())
}

/// Gives the node of `target` the `blobs` it lacks, then starts `request` there, unless
/// `stop` comes first; meanwhile kills `old` (the session left on a lost node, should
/// that node answer again).
async fn place(
    mux: Mux,
    target: Target,
    blobs: Vec<Blob>,
    request: SessionRequest,
    mut stop: Receiver<bool>,
    old: Option<(Target, String)>,
) -> Placed {
    let kill_old = async {
        if let Some((node, id)) = &old {
            let _ = agent_client::kill_session(Link::Keeper(&mux, node), id, LIST_TIMEOUT).await;
        }
    };
    let start = async {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => return Placed::Stopped,
            uploaded = upload_to(&mux, &target, &blobs) => if let Err(e) = uploaded {
                return Placed::Failed(cause(&e));
            },
        }
        if *stop.borrow() {
            return Placed::Stopped;
        }
        match agent_client::start_session(Link::Keeper(&mux, &target), &request, REQUEST_TIMEOUT).await {
            Ok(created) => Placed::Started(created.id),
            Err(e) => Placed::Failed(cause(&e)),
        }
    };
    tokio::join!(kill_old, start).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_node_prefers_nodes_not_failed_on_then_the_least_loaded_and_never_a_lost_one() {
        let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let count = |pairs: &'static [(&'static str, usize)]| {
            move |node: &str| pairs.iter().find(|(n, _)| *n == node).map_or(0, |(_, c)| *c)
        };
        let none = BTreeSet::new();
        // Failed on n1; n2 holds another instance: n3.
        assert_eq!(next_node(&nodes, &none, count(&[("n1", 1)]), count(&[("n2", 1)])), Some("n3".into()));
        // Ties in load go to the earlier node.
        assert_eq!(next_node(&nodes, &none, count(&[("n1", 1)]), count(&[])), Some("n2".into()));
        // Failed everywhere: the node failed on least often, a guest failure may repeat.
        let failures = count(&[("n1", 2), ("n2", 1), ("n3", 2)]);
        assert_eq!(next_node(&nodes, &none, failures, count(&[])), Some("n2".into()));
        // A full node is skipped; a lost one never chosen, even when it is the only one.
        let full = count(&[("n2", DEFAULT_GUESTS_PER_NODE)]);
        assert_eq!(next_node(&nodes, &none, count(&[("n1", 1)]), full), Some("n3".into()));
        let lost: BTreeSet<String> = ["n1".to_owned()].into();
        assert_eq!(next_node(&nodes[..1], &lost, count(&[]), count(&[])), None);
        assert_eq!(next_node(&nodes[..1], &none, count(&[("n1", 1)]), count(&[])), Some("n1".into()));
    }
}
