//! Checks of the connect graph between groups: every `connect` names another group of
//! the job, once; no cycles; and `retries` only where no channel would need replaying.
//!
//! Channels are one-way and blocking (a writer waits for its reader), so a cycle of
//! groups can only deadlock once any buffer fills: each is reported once, as the
//! groups around it (`a -> b -> a`), at the `connect` entry that starts it.

use std::collections::HashMap;

use crate::document::closest;
use crate::document::Checker;

use super::problem::Problem;
use super::validate::Checked;

/// Runs every check of the graph.
pub(crate) fn check(groups: &[Checked], check: &mut Checker<'_, Problem>) {
    let edges = valid_edges(groups, check);
    check_cycles(groups, &edges, check);
    check_retries(groups, &edges, check);
}

/// The edges between groups (by index) that name another group, once; reports the
/// others. Indexed by source group: `(target group, index in its connect list)`.
fn valid_edges(groups: &[Checked], check: &mut Checker<'_, Problem>) -> Vec<Vec<(usize, usize)>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, group) in groups.iter().enumerate() {
        index.entry(group.draft.name.value.as_str()).or_insert(i);
    }
    let known: Vec<String> = groups.iter().map(|group| group.draft.name.value.clone()).collect();
    let mut edges = vec![Vec::new(); groups.len()];
    for (source, group) in groups.iter().enumerate() {
        let connect = &group.draft.connect;
        for (n, target) in connect.iter().enumerate() {
            let name = &target.value;
            if let Some(first) = connect[..n].iter().find(|earlier| earlier.value == *name) {
                let first_line = check.line(&first.path);
                check.report(&target.path, Problem::DuplicateConnect { group: name.clone(), first_line });
                continue;
            }
            match index.get(name.as_str()) {
                None => {
                    let suggestion = closest(name, &known);
                    let problem = Problem::UnknownGroup { name: name.clone(), suggestion, known: known.clone() };
                    check.report(&target.path, problem);
                }
                Some(&target_index) if target_index == source || *name == group.draft.name.value => {
                    check.report(&target.path, Problem::SelfConnect { group: name.clone() });
                }
                Some(&target_index) => edges[source].push((target_index, n)),
            }
        }
    }
    edges
}

/// Reports each cycle once: for each group in file order not yet in a reported cycle,
/// a path from it back to itself, if there is one.
fn check_cycles(groups: &[Checked], edges: &[Vec<(usize, usize)>], check: &mut Checker<'_, Problem>) {
    let mut in_reported = vec![false; groups.len()];
    for start in 0..groups.len() {
        if in_reported[start] {
            continue;
        }
        let Some(cycle) = path_back(start, edges, &in_reported) else { continue };
        for &(group, _) in &cycle {
            in_reported[group] = true;
        }
        let mut names: Vec<String> = cycle.iter().map(|&(group, _)| groups[group].draft.name.value.clone()).collect();
        names.push(groups[start].draft.name.value.clone());
        let (first, entry) = cycle[0];
        check.report(&groups[first].draft.connect[entry].path, Problem::Cycle { cycle: names });
    }
}

/// A shortest path of edges from `start` back to `start` avoiding `excluded` groups, as
/// `(group, index of the connect entry taken from it)`; breadth first, so the cycle
/// reported is the smallest through `start`.
fn path_back(start: usize, edges: &[Vec<(usize, usize)>], excluded: &[bool]) -> Option<Vec<(usize, usize)>> {
    // For each group reached: the group and connect entry it was reached from.
    let mut came_from: Vec<Option<(usize, usize)>> = vec![None; edges.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(group) = queue.pop_front() {
        for &(target, entry) in &edges[group] {
            if excluded[target] || came_from[target].is_some() {
                continue;
            }
            came_from[target] = Some((group, entry));
            if target == start {
                let mut path = Vec::new();
                let mut at = start;
                while let Some((from, entry)) = came_from[at] {
                    path.push((from, entry));
                    if from == start {
                        break;
                    }
                    at = from;
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back(target);
        }
    }
    None
}

/// `retries` need a group with no channel in or out.
fn check_retries(groups: &[Checked], edges: &[Vec<(usize, usize)>], check: &mut Checker<'_, Problem>) {
    for (i, group) in groups.iter().enumerate() {
        let Some(retries) = group.draft.retries.as_ref().filter(|retries| retries.value > 0) else { continue };
        let name = &group.draft.name.value;
        let outgoing = edges[i].first().map(|&(target, _)| (target, true));
        let incoming = || (0..groups.len()).find(|&source| edges[source].iter().any(|&(t, _)| t == i));
        let Some((peer, outgoing)) = outgoing.or_else(|| incoming().map(|source| (source, false))) else { continue };
        let peer = groups[peer].draft.name.value.clone();
        check.report(&retries.path, Problem::RetriesWithChannels { group: name.clone(), peer, outgoing });
    }
}
