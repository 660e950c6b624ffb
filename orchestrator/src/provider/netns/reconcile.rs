//! `up` on a `netns` lab that is up: the lab follows its cluster file.
//!
//! The nodes the file has and the lab has not (no namespace of theirs exists) are made;
//! the nodes the lab has (its state records them, or its owner records hold their
//! namespaces) and the file no longer has are removed; the first isolated (`rootfs:`)
//! node to join gets the lab its firewall first (`firewall.rs`); a node whose address changed is
//! refused before anything changes ([`NetnsError::Changed`]), since its link, its sshd's
//! address and its host key pin would all have to follow. A node made or removed here
//! loses its host key pin: it is a new host the next time it is reached.

use std::collections::BTreeSet;
use std::path::Path;

use super::firewall;
use super::host::{isolated, make_nodes, node_dir, NetnsError, NETNS_DIR};
use super::names::Names;
use super::teardown::remove_nodes;
use crate::lab::{io_error, Lab, Owners};
use crate::provider::CreateStep;
use zerolab_config::cluster::{Cluster, Node};

/// What [`reconcile`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Nodes made.
    pub added: Vec<String>,
    /// Nodes removed.
    pub removed: Vec<String>,
}

/// Makes `lab`'s hosts those of `cluster`: the added nodes made, the removed ones gone;
/// saves the state. The lab's bridge exists.
pub fn reconcile(
    lab: &Lab,
    cluster: &Cluster,
    progress: &(dyn Fn(&str, CreateStep) + Send + Sync),
) -> Result<Changes, NetnsError> {
    super::host::preflight(lab, cluster)?;
    let names = Names::new(lab.name());
    let owners = Owners::machine();
    owners.check("link", &names.bridge(), lab.dir())?;
    let mut state = lab.load_state()?;

    let mut added: Vec<&Node> = Vec::new();
    for node in cluster.nodes() {
        let namespace = names.namespace(&node.name);
        owners.check("netns", &namespace, lab.dir())?;
        if !Path::new(NETNS_DIR).join(&namespace).exists() {
            added.push(node);
            continue;
        }
        if let Some(record) = state.nodes.get(&node.name) {
            let now = node.address.to_string();
            if record.address != now {
                return Err(NetnsError::Changed { node: node.name.clone(), was: record.address.clone(), now });
            }
        }
    }
    let wanted: BTreeSet<&str> = cluster.nodes().iter().map(|node| node.name.as_str()).collect();
    let prefix = names.namespace("");
    let mut removed: BTreeSet<String> = state.nodes.keys().filter(|n| !wanted.contains(n.as_str())).cloned().collect();
    removed.extend(
        owners
            .owned_by("netns", lab.dir())
            .iter()
            .filter_map(|ns| ns.strip_prefix(&prefix))
            .filter(|node| !wanted.contains(node))
            .map(str::to_owned),
    );
    let removed: Vec<String> = removed.into_iter().collect();
    let changes = Changes { added: added.iter().map(|node| node.name.clone()).collect(), removed: removed.clone() };
    if added.is_empty() && removed.is_empty() {
        return Ok(changes);
    }

    let stale: Vec<String> = changes.added.iter().chain(&removed).cloned().collect();
    forget_pins(lab, &stale)?;
    remove_nodes(lab, &names, &removed)?;
    for node in &removed {
        state.nodes.remove(node);
    }
    // An added node the state records (its namespace vanished) is made anew.
    let again: Vec<String> = changes.added.iter().filter(|n| node_dir(lab, n).exists()).cloned().collect();
    remove_nodes(lab, &names, &again)?;
    lab.save_state(&state)?;

    // An isolated node joining a lab that had none gets the lab's firewall before it
    // runs, as `up` gives it to a lab made with one.
    let firewall = added.iter().any(|node| isolated(node).is_some()) && !firewall::exists(lab);
    if firewall {
        firewall::apply(lab, &names.bridge())?;
    }
    let subnet = cluster.subnet().expect("a netns cluster has a lab subnet");
    if let Err(e) = make_nodes(lab, &names, &added, subnet.prefix(), progress, &mut state) {
        // No half-made node stays: those made here go again, and the firewall added for them.
        let _ = remove_nodes(lab, &names, &changes.added);
        if firewall {
            let _ = firewall::remove(lab);
        }
        return Err(e);
    }
    lab.save_state(&state)?;
    Ok(changes)
}

/// Drops the host key pins of `nodes` from the lab's `known_hosts`.
fn forget_pins(lab: &Lab, nodes: &[String]) -> Result<(), NetnsError> {
    let path = lab.known_hosts();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(&path)(e).into()),
    };
    let kept: String = text
        .lines()
        .filter(|line| !line.split_whitespace().next().is_some_and(|node| nodes.iter().any(|n| n == node)))
        .map(|line| format!("{line}\n"))
        .collect();
    Ok(crate::lab::write_private(&path, kept.as_bytes())?)
}
