//! From checked `nodes:` entries to nodes: names expanded, checks across entries
//! (duplicate names, addresses and MACs, subnet capacity), addresses allocated.
//!
//! Allocation is deterministic, so a lab's addresses follow from its file alone: the
//! host side is the subnet's `.1`; fixed addresses are reserved first; every other node,
//! in file order, takes the lowest free address from `.2` on. Adding a node at the end
//! of the file never moves the others.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use super::names;
use super::net::{MacAddr, NodeAddress};
use super::problem::Problem;
use super::provider::NodeSettings;
use super::schema::Labels;
use super::validate::LabNetwork;
use super::{Checker, Node};
use crate::document::YamlPath;

/// One `nodes:` entry after its own checks.
pub(crate) struct Entry {
    /// `nodes[i]`.
    pub path: YamlPath,
    /// `i`.
    pub index: usize,
    /// The name, or the pattern with `count`.
    pub name: String,
    pub count: Option<u32>,
    /// Whether `name` and `count` are valid, so names can be made from them.
    pub expandable: bool,
    /// The fixed address, if any and valid.
    pub address: Option<NodeAddress>,
    pub user: String,
    pub key: Option<PathBuf>,
    /// The defaults' labels with the entry's own over them.
    pub labels: Labels,
    /// The provider's settings, if valid.
    pub settings: Option<NodeSettings>,
}

/// Checks `entries` against each other and expands them into nodes with addresses.
/// Returns no nodes once anything has been reported.
pub(crate) fn expand(entries: &[Entry], network: Option<&LabNetwork>, check: &mut Checker<'_>) -> Vec<Node> {
    check_names(entries, check);
    check_unique_addresses(entries, check);
    check_unique_macs(entries, check);
    if let Some(&LabNetwork { subnet, ref written }) = network {
        let wanted: u64 = entries.iter().filter(|e| e.expandable).map(|e| u64::from(e.count.unwrap_or(1))).sum();
        if wanted > subnet.node_capacity() {
            let problem = Problem::SubnetTooSmall { nodes: wanted, subnet, capacity: subnet.node_capacity() };
            // At the subnet when written, else at `nodes:`, which asks for too many.
            match written {
                Some(path) => check.report(path, problem),
                None => check.report_key(&YamlPath::root().key("nodes"), problem),
            }
        }
    }
    if !check.is_clean() {
        return Vec::new();
    }

    let fixed: HashSet<IpAddr> = entries
        .iter()
        .filter_map(|entry| match entry.address {
            Some(NodeAddress::Ip(ip)) => Some(ip),
            _ => None,
        })
        .collect();
    let mut free = network
        .into_iter()
        .flat_map(|network| network.subnet.node_addresses())
        .map(IpAddr::V4)
        .filter(|ip| !fixed.contains(ip));
    let mut nodes = Vec::new();
    for entry in entries {
        let Some(settings) = &entry.settings else { continue };
        for name in names::expand_pattern(&entry.name, entry.count) {
            // The capacity check above guarantees a free address for every node.
            let Some(address) = entry.address.clone().or_else(|| free.next().map(NodeAddress::Ip)) else { continue };
            nodes.push(Node {
                name,
                address,
                user: entry.user.clone(),
                key: entry.key.clone(),
                labels: entry.labels.clone(),
                settings: settings.clone(),
                entry: entry.index,
            });
        }
    }
    nodes
}

/// Every expanded name once; a name met again is reported at the later entry's `name`
/// (once per entry, with how many more of its names collide).
fn check_names(entries: &[Entry], check: &mut Checker<'_>) {
    let mut seen: HashMap<String, &YamlPath> = HashMap::new();
    for entry in entries.iter().filter(|entry| entry.expandable) {
        let mut first_clash: Option<(String, usize)> = None;
        for name in names::expand_pattern(&entry.name, entry.count) {
            match seen.entry(name) {
                Slot::Vacant(slot) => {
                    slot.insert(&entry.path);
                }
                Slot::Occupied(slot) if first_clash.is_none() => {
                    first_clash = Some((slot.key().clone(), check.line(&slot.get().key("name"))));
                }
                Slot::Occupied(_) => {}
            }
        }
        if let Some((name, first_line)) = first_clash {
            check.report(&entry.path.key("name"), Problem::DuplicateName { name, first_line });
        }
    }
}

/// Fixed addresses (with the SSH port, for the ssh provider) once each.
fn check_unique_addresses(entries: &[Entry], check: &mut Checker<'_>) {
    let mut seen: HashMap<(&NodeAddress, u16), &YamlPath> = HashMap::new();
    for entry in entries {
        let Some(address) = &entry.address else { continue };
        let port = entry.settings.as_ref().map_or(0, NodeSettings::ssh_port);
        match seen.entry((address, port)) {
            Slot::Vacant(slot) => {
                slot.insert(&entry.path);
            }
            Slot::Occupied(slot) => {
                let first_line = check.line(&slot.get().key("address"));
                check.report(
                    &entry.path.key("address"),
                    Problem::DuplicateAddress { address: address.clone(), first_line },
                );
            }
        }
    }
}

/// MAC addresses once each.
fn check_unique_macs(entries: &[Entry], check: &mut Checker<'_>) {
    let mut seen: HashMap<MacAddr, &YamlPath> = HashMap::new();
    for entry in entries {
        let Some(mac) = entry.settings.as_ref().and_then(NodeSettings::mac) else { continue };
        match seen.entry(mac) {
            Slot::Vacant(slot) => {
                slot.insert(&entry.path);
            }
            Slot::Occupied(slot) => {
                let first_line = check.line(&slot.get().key("mac"));
                check.report(&entry.path.key("mac"), Problem::DuplicateMac { mac, first_line });
            }
        }
    }
}
