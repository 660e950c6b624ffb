//! Placing a job's instances on a lab's nodes: which node runs each instance, or why
//! a group cannot be placed (its selector selects nothing, or its instances do not fit).
//!
//! Groups are placed in file order, each over the nodes its `placement.nodes` selects
//! (every node when omitted), in the cluster file's order:
//! - `spread` puts each instance on the selected node holding the fewest of the job's
//!   instances so far, ties going to the earlier node: round-robin over the nodes, and
//!   consecutive groups of a pipeline land on different nodes;
//! - `pack` fills the selected nodes in order, each up to the capacity.
//!
//! Capacity is a number of guests per node ([`DEFAULT_GUESTS_PER_NODE`] unless given),
//! not a resource model: guests of a job mostly wait on their channels, and the lab's
//! nodes are alike. The runner may choose a tighter one from the nodes' facts.

use crate::cluster::Cluster;
use crate::document::{Diagnostics, Location};

use super::group::Strategy;
use super::problem::Problem;
use super::{Edge, Job};

/// The guests one node takes when no capacity is given.
pub const DEFAULT_GUESTS_PER_NODE: usize = 64;

/// Which node runs each instance of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// For each instance, by index in [`Job::instances`], its node's name.
    nodes: Vec<String>,
}

impl Placement {
    /// The node of instance `instance` (an index into [`Job::instances`]).
    pub fn node(&self, instance: usize) -> Option<&str> {
        self.nodes.get(instance).map(String::as_str)
    }

    /// Every instance index with its node, in instance order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str)> {
        self.nodes.iter().map(String::as_str).enumerate()
    }

    /// The instances on `node`, in instance order.
    pub fn instances_on(&self, node: &str) -> Vec<usize> {
        self.iter().filter(|(_, on)| *on == node).map(|(instance, _)| instance).collect()
    }

    /// The nodes used, each once, in the order first used.
    pub fn nodes(&self) -> Vec<&str> {
        let mut used: Vec<&str> = Vec::new();
        for node in &self.nodes {
            if !used.contains(&node.as_str()) {
                used.push(node);
            }
        }
        used
    }

    /// Whether both ends of `edge` are on one node (a direct channel, no network).
    pub fn is_local(&self, edge: &Edge) -> bool {
        self.node(edge.from).is_some() && self.node(edge.from) == self.node(edge.to)
    }
}

/// Places every instance of `job` on `cluster`'s nodes, at most `capacity` per node.
pub(crate) fn place(job: &Job, cluster: &Cluster, capacity: usize) -> Result<Placement, Diagnostics<Problem>> {
    let all = cluster.nodes();
    let mut load = vec![0usize; all.len()];
    let mut nodes = Vec::with_capacity(job.instances().len());
    let mut problems: Vec<(Location, Problem)> = Vec::new();
    for group in job.groups() {
        // Indices into the cluster's nodes, in its order.
        let selected: Vec<usize> = match &group.placement.nodes {
            None => (0..all.len()).collect(),
            Some(selector) => match cluster.select(selector) {
                Ok(chosen) => (0..all.len()).filter(|&i| chosen.iter().any(|node| node.name == all[i].name)).collect(),
                Err(error) => {
                    problems.push((group.nodes_at, Problem::NoNodes { group: group.name.clone(), error }));
                    continue;
                }
            },
        };
        let room: u64 = selected.iter().map(|&i| capacity.saturating_sub(load[i]) as u64).sum();
        if u64::from(group.count) > room {
            let names = selected.iter().map(|&i| all[i].name.clone()).collect();
            let problem =
                Problem::DoesNotFit { group: group.name.clone(), needed: group.count, room, nodes: names, capacity };
            problems.push((group.at, problem));
            continue;
        }
        for _ in 0..group.count {
            let mut free = selected.iter().copied().filter(|&i| load[i] < capacity);
            let chosen = match group.placement.strategy {
                // `min_by_key` keeps the first of equal keys: ties go to the earlier node.
                Strategy::Spread => free.min_by_key(|&i| load[i]),
                Strategy::Pack => free.next(),
            };
            // The room check above leaves a free node for every instance.
            let Some(i) = chosen else { break };
            load[i] += 1;
            nodes.push(all[i].name.clone());
        }
    }
    match Diagnostics::new(job.file_name(), problems) {
        Some(diagnostics) => Err(diagnostics),
        None => Ok(Placement { nodes }),
    }
}
