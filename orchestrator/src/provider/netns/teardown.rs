//! Removing a `netns` lab, or some of its nodes, from this machine.
//!
//! What is removed is what this lab directory made, never a name that merely looks like
//! the lab's: the objects its owner records list ([`Owners::owned_by`]), the names of the
//! nodes its state and its cluster file hold, and (for a lab directory an older build
//! made, which has no `lab.json`) the old build's names ([`Legacy`]). Every one of them
//! that exists is checked against its owner record first: one made by another lab
//! directory stops the removal before anything is touched ([`crate::lab::Foreign`]).
//!
//! Then, in order: every process in the namespaces is killed (a namespace is only gone
//! when nothing runs in it, and a node's mounts go with its last process), the
//! namespaces and links are deleted, and once they are gone their owner records, the
//! nodes' cgroups, the lab's firewall rules, the nodes' runtime files and (for the
//! whole lab) `state.json`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::host::{io_err, ip_batch_forced, node_dir, require_root, NetnsError, NETNS_DIR};
use super::names::{Legacy, Names};
use crate::backoff::Backoff;
use crate::lab::{Lab, Owners};
use zerolab_config::cluster::Cluster;

/// Kernel objects of one lab: namespaces and host links, by name.
#[derive(Debug, Default)]
pub(super) struct Objects {
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
}

impl Objects {
    /// The objects of `nodes` of `lab` (their namespaces and veths), without the bridge.
    pub fn of_nodes<'n>(names: &Names, nodes: impl IntoIterator<Item = &'n str>) -> Objects {
        let mut objects = Objects::default();
        for node in nodes {
            objects.namespaces.push(names.namespace(node));
            objects.links.push(names.veth(node));
        }
        objects
    }

    /// Keeps those that exist, each once, sorted.
    fn existing(mut self) -> Objects {
        self.namespaces.sort();
        self.namespaces.dedup();
        self.namespaces.retain(|ns| Path::new(NETNS_DIR).join(ns).exists());
        self.links.sort();
        self.links.dedup();
        self.links.retain(|link| link_exists(link));
        self
    }
}

fn link_exists(link: &str) -> bool {
    Path::new("/sys/class/net").join(link).exists()
}

/// Removes everything of `lab` from this machine: its processes, namespaces (and with
/// them their mounts), veths, bridge and runtime files, then its state. `cluster` (when
/// given) adds its nodes' names to what the lab's records hold. Idempotent; keeps the lab
/// directory's keys (see [`Lab::remove`]); refuses, touching nothing, when an object of
/// its names belongs to another lab directory.
pub fn destroy(lab: &Lab, cluster: Option<&Cluster>) -> Result<(), NetnsError> {
    require_root()?;
    let names = Names::new(lab.name());
    let owners = Owners::machine();
    let mut nodes: Vec<String> = lab.load_state().map(|state| state.nodes.into_keys().collect()).unwrap_or_default();
    nodes.extend(cluster.into_iter().flat_map(|c| c.nodes().iter().map(|node| node.name.clone())));
    let mut objects = Objects::of_nodes(&names, nodes.iter().map(String::as_str));
    objects.namespaces.extend(owners.owned_by("netns", lab.dir()));
    objects.links.extend(owners.owned_by("link", lab.dir()));
    objects.links.push(names.bridge());
    // A lab directory without an identity was made by the build before owner records:
    // its objects have the old names, found by their prefix.
    if lab.exists() && lab.identity().ok().flatten().is_none() {
        let legacy = Legacy::new(lab.name());
        objects.namespaces.extend(listed(NETNS_DIR).into_iter().filter(|ns| legacy.is_namespace(ns)));
        objects.links.extend(listed("/sys/class/net").into_iter().filter(|link| legacy.is_veth(link)));
        objects.links.push(legacy.bridge());
    }
    let namespaces = objects.namespaces.clone();
    remove(lab, &owners, objects)?;
    for namespace in &namespaces {
        super::isolated::remove_cgroups(namespace);
    }
    super::firewall::remove(lab)?;

    let nodes_dir = lab.nodes_dir();
    if nodes_dir.exists() {
        fs::remove_dir_all(&nodes_dir).map_err(io_err(&nodes_dir))?;
    }
    let state = lab.state_path();
    if state.exists() {
        fs::remove_file(&state).map_err(io_err(&state))?;
    }
    Ok(())
}

/// Removes `nodes` of `lab` (reconciling with a cluster file that no longer has them):
/// their processes, namespaces, veths, owner records and runtime files.
pub(super) fn remove_nodes(lab: &Lab, names: &Names, nodes: &[String]) -> Result<(), NetnsError> {
    remove(lab, &Owners::machine(), Objects::of_nodes(names, nodes.iter().map(String::as_str)))?;
    for node in nodes {
        super::isolated::remove_cgroups(&names.namespace(node));
        let dir = node_dir(lab, node);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
    }
    Ok(())
}

/// Removes `objects` that exist, once none of them belongs to another lab directory,
/// and forgets their owner records.
fn remove(lab: &Lab, owners: &Owners, objects: Objects) -> Result<(), NetnsError> {
    let recorded = objects.namespaces.iter().map(|ns| ("netns", ns)).chain(objects.links.iter().map(|l| ("link", l)));
    let recorded: Vec<(&str, String)> = recorded.map(|(kind, name)| (kind, name.clone())).collect();
    let objects = objects.existing();
    for ns in &objects.namespaces {
        owners.check("netns", ns, lab.dir())?;
    }
    for link in &objects.links {
        owners.check("link", link, lab.dir())?;
    }

    // Processes first: a namespace is only gone when nothing runs in it, and the node's
    // mounts go with its last process.
    let pids = processes_in(&objects.namespaces);
    for &pid in &pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    wait_until(|| pids.iter().all(|&pid| !alive(pid)));

    let mut commands: Vec<String> = objects.namespaces.iter().map(|ns| format!("netns del {ns}")).collect();
    // Veths before the bridge (they are its ports); most went with their namespace.
    let (bridges, veths): (Vec<&String>, Vec<&String>) =
        objects.links.iter().partition(|link| Path::new("/sys/class/net").join(link).join("bridge").exists());
    commands.extend(veths.into_iter().chain(bridges).map(|link| format!("link del {link}")));
    if !commands.is_empty() {
        // -force: go on past an object that vanished meanwhile; what is left is checked below.
        let _ = ip_batch_forced(&commands);
    }
    // A deleted namespace takes its veth pairs with it asynchronously.
    let left = || -> Vec<String> {
        let namespaces = objects.namespaces.iter().filter(|ns| Path::new(NETNS_DIR).join(ns).exists());
        let links = objects.links.iter().filter(|link| link_exists(link));
        namespaces.map(|ns| format!("namespace {ns}")).chain(links.map(|link| format!("link {link}"))).collect()
    };
    wait_until(|| left().is_empty());
    let mut left = left();
    left.extend(pids.iter().filter(|&&pid| alive(pid)).map(|pid| format!("process {pid}")));
    if !left.is_empty() {
        return Err(NetnsError::Leftover { lab: lab.name().to_owned(), left: left.join(", ") });
    }
    for (kind, name) in recorded {
        if owners.get(kind, &name)?.is_some_and(|owner| owner.is(lab.dir())) {
            owners.remove(kind, &name)?;
        }
    }
    Ok(())
}

fn wait_until(mut done: impl FnMut() -> bool) {
    let mut backoff = Backoff::steady(Duration::from_millis(10), Duration::from_secs(10));
    while !done() && backoff.wait_blocking() {}
}

/// The entries of `dir`, by name.
fn listed(dir: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect()
}

/// Every process whose network namespace is one of `namespaces`.
pub(super) fn processes_in(namespaces: &[String]) -> Vec<i32> {
    let inodes: Vec<(u64, u64)> = namespaces
        .iter()
        .filter_map(|ns| fs::metadata(Path::new(NETNS_DIR).join(ns)).ok())
        .map(|meta| (meta.dev(), meta.ino()))
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|meta| inodes.contains(&(meta.dev(), meta.ino())))
        })
        .collect()
}

/// Whether `pid` runs (a zombie does not: it holds no namespace or mount).
pub(super) fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
