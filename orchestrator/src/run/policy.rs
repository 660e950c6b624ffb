//! Retrying as a policy: how many times an instance may be placed again, and on which
//! node. The driver asks [`RetryPolicy::next_node`] whenever an attempt failed and
//! retries are left; it never picks a node itself, so another mode (the workshop,
//! a daemon) brings its own policy without touching the driver.
//!
//! [`GroupRetries`] is what a job file asks for: an instance of a group with
//! `retries: N` is placed again up to N times, on one of the group's selected nodes
//! that was ready when the run began: first those the instance has failed on least
//! often, then the least loaded by the job's running instances, then the cluster
//! file's order; never a node lost (or whose agent restarted) during the run, nor one
//! at the capacity. So a guest failure may be retried on the same node when it is the
//! only one left, a lost node never.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::record::Attempt;
use crate::cluster::{Cluster, Node};
use crate::job::{Job, DEFAULT_GUESTS_PER_NODE};
use crate::lab::{LabState, NodeState};

/// What a policy knows of the run when it picks a node.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    /// The instance, by index in the job.
    pub instance: usize,
    /// Its ended attempts, oldest first, the one that just failed included.
    pub attempts: &'a [Attempt],
    /// Nodes lost, or whose agent restarted, during the run.
    pub lost: &'a BTreeSet<String>,
    /// How many of the job's other instances run on, or go to, each node.
    pub load: &'a HashMap<String, usize>,
}

impl Choice<'_> {
    /// How many of the instance's attempts failed on `node`.
    pub fn failures(&self, node: &str) -> usize {
        self.attempts.iter().filter(|a| a.node == node).count()
    }

    /// How many other instances run on `node`.
    pub fn load(&self, node: &str) -> usize {
        self.load.get(node).copied().unwrap_or(0)
    }
}

/// When and where a failed instance is placed again.
pub trait RetryPolicy {
    /// How many times `instance` may be placed again in all.
    fn retries(&self, instance: usize) -> usize;

    /// The node the instance goes to next; `None` when no node fits (it then fails).
    fn next_node(&self, choice: &Choice<'_>) -> Option<String>;
}

/// No instance is placed again: a one-off run (`zerolab sandbox run`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRetries;

impl RetryPolicy for NoRetries {
    fn retries(&self, _instance: usize) -> usize {
        0
    }

    fn next_node(&self, _choice: &Choice<'_>) -> Option<String> {
        None
    }
}

/// The job file's `retries` per group (see the module doc).
#[derive(Debug, Clone)]
pub struct GroupRetries {
    /// Per instance: how many times it may be placed again.
    allowed: Vec<usize>,
    /// Per instance: the nodes it may go to, in the cluster file's order.
    nodes: Vec<Arc<[String]>>,
}

impl GroupRetries {
    /// The policy of `job` on `cluster`, whose `state` says which nodes are ready;
    /// `reachable` says which of them the run can reach.
    pub fn new(job: &Job, cluster: &Cluster, state: &LabState, reachable: impl Fn(&str) -> bool) -> GroupRetries {
        let ready = |node: &str| state.nodes.get(node).is_some_and(|r| r.state == NodeState::Ready) && reachable(node);
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
        GroupRetries { allowed, nodes }
    }
}

impl RetryPolicy for GroupRetries {
    fn retries(&self, instance: usize) -> usize {
        self.allowed[instance]
    }

    fn next_node(&self, choice: &Choice<'_>) -> Option<String> {
        spread(&self.nodes[choice.instance], choice)
    }
}

/// Of `nodes` (in the cluster file's order), those neither lost nor at the capacity:
/// the one the instance failed on least often, then the least loaded, then the first.
fn spread(nodes: &[String], choice: &Choice<'_>) -> Option<String> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| !choice.lost.contains(*node) && choice.load(node) < DEFAULT_GUESTS_PER_NODE)
        .min_by_key(|(order, node)| (choice.failures(node), choice.load(node), *order))
        .map(|(_, node)| node.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_on(nodes: &[&str]) -> Vec<Attempt> {
        nodes
            .iter()
            .map(|node| Attempt {
                node: (*node).to_owned(),
                session: None,
                exit_state: Some("ok".into()),
                return_code: Some(0),
                user_code: Some(1),
                cause: None,
            })
            .collect()
    }

    fn pick(nodes: &[&str], failed: &[&str], lost: &[&str], load: &[(&str, usize)]) -> Option<String> {
        let policy = GroupRetries {
            allowed: vec![3],
            nodes: vec![nodes.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>().into()],
        };
        let attempts = failed_on(failed);
        let lost: BTreeSet<String> = lost.iter().map(|n| (*n).to_owned()).collect();
        let load: HashMap<String, usize> = load.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect();
        policy.next_node(&Choice { instance: 0, attempts: &attempts, lost: &lost, load: &load })
    }

    #[test]
    fn group_retries_prefer_nodes_not_failed_on_then_the_least_loaded_and_never_a_lost_one() {
        let all = ["n1", "n2", "n3"];
        // Failed on n1; n2 holds another instance: n3.
        assert_eq!(pick(&all, &["n1"], &[], &[("n2", 1)]), Some("n3".into()));
        // Ties in load go to the earlier node.
        assert_eq!(pick(&all, &["n1"], &[], &[]), Some("n2".into()));
        // Failed everywhere: the node failed on least often, a guest failure may repeat.
        assert_eq!(pick(&all, &["n1", "n1", "n2", "n3", "n3"], &[], &[]), Some("n2".into()));
        // A full node is skipped; a lost one never chosen, even when it is the only one.
        assert_eq!(pick(&all, &["n1"], &[], &[("n2", DEFAULT_GUESTS_PER_NODE)]), Some("n3".into()));
        assert_eq!(pick(&["n1"], &[], &["n1"], &[]), None);
        assert_eq!(pick(&["n1"], &["n1"], &[], &[]), Some("n1".into()));
    }

    #[test]
    fn no_retries_places_nothing_again() {
        let (lost, load) = (BTreeSet::new(), HashMap::new());
        let choice = Choice { instance: 0, attempts: &[], lost: &lost, load: &load };
        assert_eq!((NoRetries.retries(0), NoRetries.next_node(&choice)), (0, None));
    }
}
