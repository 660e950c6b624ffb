//! Shelving a `netns` node (Nova's states) and bringing it back.
//!
//! A node's processes are the ones in its network namespace (an isolated node's are
//! also all in its cgroups; a plain node has none until it is shelved frozen):
//! - [`ShelveMode::Frozen`]: every one of them is put in the node's freezer cgroup
//!   (`freezer/zerolab/<ns>`), which is set `FROZEN`: they keep their memory and stop
//!   running (sshd does not answer);
//! - [`ShelveMode::Offloaded`]: every one of them is killed (thawed first when frozen,
//!   so they can die), which frees their memory and the node's mounts; the namespace,
//!   its veth and address, the node's files, upper layer and host key stay. Stale
//!   runtime files (sshd's pid file, the agent's pid files and socket) go.
//!
//! Unshelving thaws a frozen node; an offloaded one is started again the way `up`
//! starts it (same host key, same files), and waited for until sshd listens. The agent
//! is the caller's ([`crate::machines::unshelve`]).

use std::fs;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::host::{io_err, isolated, node_dir, start_sshd, wait_for_sshd, NetnsError, NETNS_DIR};
use super::isolated::cgroup;
use super::names::Names;
use super::teardown::{alive, processes_in};
use crate::backoff::Backoff;
use crate::lab::Lab;
use crate::provider::ShelveMode;
use zerolab_config::cluster::Node;

/// How long freezing or killing a node's processes may take.
const SETTLE: Duration = Duration::from_secs(10);

/// Shelves `node` of `lab` in `mode`.
pub fn shelve(lab: &Lab, node: &Node, mode: ShelveMode) -> Result<(), NetnsError> {
    let namespace = Names::new(lab.name()).namespace(&node.name);
    require_namespace(&namespace, &node.name)?;
    match mode {
        ShelveMode::Frozen => freeze(&namespace, &node.name),
        ShelveMode::Offloaded => offload(lab, &namespace, &node.name),
    }
}

/// Brings `node` back: thawed, or started again and listening.
pub fn unshelve(lab: &Lab, node: &Node) -> Result<(), NetnsError> {
    let names = Names::new(lab.name());
    let namespace = names.namespace(&node.name);
    require_namespace(&namespace, &node.name)?;
    if !processes_in(std::slice::from_ref(&namespace)).is_empty() {
        return set_freezer(&namespace, &node.name, "THAWED");
    }
    let dir = node_dir(lab, &node.name);
    match isolated(node) {
        Some(settings) => {
            let rootfs = super::isolated::rootfs(lab)?;
            super::isolated::start(lab, &rootfs, &dir, &namespace, &node.name, settings)?;
        }
        None => start_sshd(lab, &dir, &namespace, node)?,
    }
    let mut backoff = Backoff::steady(Duration::from_millis(5), SETTLE);
    wait_for_sshd(lab, &names, node, &mut backoff).map(drop)
}

fn require_namespace(namespace: &str, node: &str) -> Result<(), NetnsError> {
    if Path::new(NETNS_DIR).join(namespace).exists() {
        Ok(())
    } else {
        let detail = format!("its namespace {namespace} is gone: run `zerolab up` to make it again");
        Err(NetnsError::Node { node: node.to_owned(), detail })
    }
}

fn freezer_dir(namespace: &str, node: &str) -> Result<std::path::PathBuf, NetnsError> {
    let dir = cgroup("freezer", namespace);
    if !Path::new("/sys/fs/cgroup/freezer/cgroup.procs").exists() {
        let detail = "the cgroup v1 freezer is not mounted at /sys/fs/cgroup/freezer: shelve --offload instead".into();
        return Err(NetnsError::Node { node: node.to_owned(), detail });
    }
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    Ok(dir)
}

/// Every process of the node into its freezer cgroup, then `FROZEN`.
fn freeze(namespace: &str, node: &str) -> Result<(), NetnsError> {
    let dir = freezer_dir(namespace, node)?;
    let procs = dir.join("cgroup.procs");
    // Twice: a process forked while the first pass moved its parent is caught by the second.
    for _ in 0..2 {
        for pid in processes_in(&[namespace.to_owned()]) {
            // A process that exited meanwhile cannot be moved: nothing to freeze.
            let _ = fs::write(&procs, pid.to_string());
        }
    }
    set_freezer(namespace, node, "FROZEN")
}

/// Sets the node's freezer state and waits until the kernel reports it.
fn set_freezer(namespace: &str, node: &str, want: &str) -> Result<(), NetnsError> {
    let dir = cgroup("freezer", namespace);
    if !dir.exists() {
        return Ok(());
    }
    let state = dir.join("freezer.state");
    fs::write(&state, want).map_err(io_err(&state))?;
    let mut backoff = Backoff::steady(Duration::from_millis(2), SETTLE);
    loop {
        let now = fs::read_to_string(&state).map_err(io_err(&state))?;
        if now.trim() == want {
            return Ok(());
        }
        if !backoff.wait_blocking() {
            let detail = format!("its processes did not become {want} (freezer says {})", now.trim());
            return Err(NetnsError::Node { node: node.to_owned(), detail });
        }
    }
}

/// Kills every process of the node and clears its stale runtime files.
fn offload(lab: &Lab, namespace: &str, node: &str) -> Result<(), NetnsError> {
    let pids = processes_in(&[namespace.to_owned()]);
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    // Frozen processes die once thawed.
    set_freezer(namespace, node, "THAWED")?;
    let mut backoff = Backoff::steady(Duration::from_millis(5), SETTLE);
    while pids.iter().any(|&pid| alive(pid)) {
        if !backoff.wait_blocking() {
            return Err(NetnsError::Node { node: node.to_owned(), detail: "its processes did not end".into() });
        }
    }
    let run = node_dir(lab, node).join("run");
    for stale in ["sshd.pid", "zerolab/agent.sock", "zerolab/agent.pid", "zerolab/supervisor.pid"] {
        let path = run.join(stale);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
            _ => {}
        }
    }
    Ok(())
}
