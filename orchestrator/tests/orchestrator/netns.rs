//! The `netns` provider on this machine: a real lab of namespace hosts, each with its
//! own OpenSSH sshd, reached with the real OpenSSH client. Needs root; without root the
//! tests say they were skipped.
//!
//! Each test uses its own lab name and subnet (a row of the harness's [`Subnet`] table),
//! so they run in parallel with each other and with the suite's other labs.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use zerolab::cluster::Cluster;
use zerolab::lab::{Lab, NodeState};
use zerolab::provider::netns::{self, Names};
use zerolab::provider::CreateStep;

use crate::harness::{is_root, Subnet};

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: the netns tests need root (CI runs them as root)");
            return;
        }
    };
}

/// examples/netns-3.yaml as lab `subnet`, with `count` nodes.
fn example_cluster(subnet: Subnet, count: usize) -> Cluster {
    example_cluster_with(subnet, &format!("count: {count}"))
}

/// The same, with its node entry's `count: 3` replaced by `entry`.
fn example_cluster_with(subnet: Subnet, entry: &str) -> Cluster {
    let text = subnet.example();
    assert!(text.contains("count: 3"));
    zerolab::cluster::from_str(&text.replace("count: 3", entry), "netns-3.yaml").unwrap()
}

fn ssh(lab: &Lab, address: &str, command: &str) -> std::process::Output {
    ssh_with(lab, &[], address, command)
}

fn ssh_with(lab: &Lab, options: &[&str], address: &str, command: &str) -> std::process::Output {
    Command::new("ssh")
        .args(options)
        .arg("-i")
        .arg(lab.private_key())
        .args(["-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
        .arg("-o")
        // OpenSSH's own format, kept apart from the lab's known_hosts (zerolab's format).
        .arg(format!("UserKnownHostsFile={}", lab.dir().join("openssh_known_hosts").display()))
        .args(["-F", "/dev/null"])
        .arg(format!("root@{address}"))
        .arg(command)
        .output()
        .unwrap()
}

fn ssh_ok(lab: &Lab, address: &str, command: &str) -> String {
    let out = ssh(lab, address, command);
    assert!(out.status.success(), "ssh {address} {command}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn text_of(command: &mut Command) -> String {
    String::from_utf8(command.output().unwrap().stdout).unwrap()
}

/// Destroys the lab when a test ends, also when it fails, so a failure leaves no lab.
struct Up<'a>(&'a Lab);

impl Drop for Up<'_> {
    fn drop(&mut self) {
        if let Err(e) = netns::destroy(self.0, None) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Asserts nothing of the lab is on the machine: namespace, link, mount, process.
fn assert_nothing_left(lab: &Lab) {
    let names = Names::new(lab.name());
    let netns = text_of(Command::new("ip").args(["netns", "list"]));
    assert!(!netns.lines().any(|l| names.is_namespace(l.split_whitespace().next().unwrap_or(""))), "{netns}");
    let links = text_of(Command::new("ip").args(["-o", "link"]));
    let alias = names.bridge_alias();
    let ours =
        |line: &str| line.contains(&names.bridge()) || line.ends_with(&alias) || line.contains(&format!("{alias} "));
    assert!(!links.lines().any(ours), "links left: {links}");
    let prefix = &names.namespace("");
    let dir = lab.dir().to_string_lossy().into_owned();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&cmdline).contains(&dir), "process {name} left: {cmdline:?}");
        let mounts = fs::read_to_string(entry.path().join("mountinfo")).unwrap_or_default();
        assert!(!mounts.contains(&dir) && !mounts.contains(prefix), "process {name} sees a lab mount");
    }
    assert!(!lab.nodes_dir().exists() && !lab.state_path().exists());
}

#[test]
fn three_node_lab_is_reachable_isolated_and_leaves_nothing_behind() {
    require_root!();
    let cluster = example_cluster(Subnet::NetnsThree, 3);
    let root = tempfile::tempdir().unwrap();
    let lab = Lab::open_or_create(root.path(), cluster.name()).unwrap();
    let host_had_var_lib_zerolab = Path::new("/var/lib/zerolab").exists();

    let up = Up(&lab);
    let started = Instant::now();
    let steps = std::sync::Mutex::new(Vec::new());
    let state =
        netns::create(&lab, &cluster, &|node: &str, step| steps.lock().unwrap().push((node.to_owned(), step))).unwrap();
    eprintln!("created 3 nodes in {:?}", started.elapsed());
    // Each node's progress, in order: made, its sshd started, then listening.
    let steps = steps.into_inner().unwrap();
    for node in cluster.nodes() {
        let of_node: Vec<&CreateStep> = steps.iter().filter(|(n, _)| *n == node.name).map(|(_, s)| s).collect();
        assert_eq!(of_node, [&CreateStep::Making, &CreateStep::Booting, &CreateStep::Made], "{}", node.name);
    }
    assert_eq!(lab.load_state().unwrap(), state);
    assert_eq!(state.nodes.len(), 3);
    for node in cluster.nodes() {
        let record = &state.nodes[&node.name];
        assert_eq!(record.address, node.address.to_string());
        assert_eq!(record.state, NodeState::Provisioning);
        assert!(Path::new(&format!("/proc/{}", record.provider_record::<netns::Sshd>().unwrap().pid)).exists());
    }
    assert!(matches!(netns::create(&lab, &cluster, &|_: &str, _| {}), Err(netns::NetnsError::AlreadyUp { .. })));

    // The real OpenSSH client, host keys pinned on first contact.
    let node_1 = Subnet::NetnsThree.address(2);
    assert_eq!(ssh_ok(&lab, &node_1, "hostname"), "node-1\n");
    let mut host_names = BTreeSet::new();
    for node in cluster.nodes() {
        host_names.insert(ssh_ok(&lab, &node.address.to_string(), "hostname; echo $HOME; ls -A ~").trim().to_owned());
    }
    assert_eq!(host_names, ["node-1\n/root", "node-2\n/root", "node-3\n/root"].map(String::from).into());
    let known_hosts = fs::read_to_string(lab.dir().join("openssh_known_hosts")).unwrap();
    let keys: BTreeSet<&str> = known_hosts.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(keys.len(), 3, "{known_hosts}");

    // curve25519 key exchange (3x faster cold logins than OpenSSH 9.2's default here).
    let verbose = ssh_with(&lab, &["-v"], &Subnet::NetnsThree.address(4), "true");
    assert!(String::from_utf8_lossy(&verbose.stderr).contains("kex: algorithm: curve25519-sha256\r"));
    // Private directories: what node-1 writes, node-2 and the host do not see.
    ssh_ok(&lab, &node_1, "echo one > /var/lib/zerolab/probe && echo one > /run/zerolab/probe");
    assert_eq!(ssh_ok(&lab, &node_1, "cat /var/lib/zerolab/probe"), "one\n");
    assert_eq!(
        ssh_ok(&lab, &Subnet::NetnsThree.address(3), "ls -A /var/lib/zerolab /run/zerolab"),
        "/run/zerolab:\n\n/var/lib/zerolab:\n"
    );
    assert_eq!(Path::new("/var/lib/zerolab").exists(), host_had_var_lib_zerolab);
    // Traffic stays on the bridge: nodes have no route out.
    assert_eq!(ssh_ok(&lab, &node_1, "ip -4 route show default"), "");

    let started = Instant::now();
    netns::destroy(&lab, None).unwrap();
    eprintln!("destroyed 3 nodes in {:?}", started.elapsed());
    assert_nothing_left(&lab);
    netns::destroy(&lab, None).unwrap();
    drop(up);
    let dir = lab.dir().to_owned();
    lab.remove().unwrap();
    assert!(!dir.exists());
}

#[test]
fn failed_create_leaves_nothing_behind() {
    require_root!();
    // Two labs on one subnet: the second is refused before anything is made.
    let cluster = example_cluster(Subnet::NetnsRefused, 1);
    let root = tempfile::tempdir().unwrap();
    let lab = Lab::open_or_create(root.path(), cluster.name()).unwrap();
    let _up = Up(&lab);
    netns::create(&lab, &cluster, &|_: &str, _| {}).unwrap();
    let other = Lab::open_or_create(root.path(), "other").unwrap();
    let err = netns::create(&other, &cluster, &|_: &str, _| {}).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("subnet 10.77.{}.0/24 is already used by", Subnet::NetnsRefused.x())),
        "{err}"
    );
    netns::destroy(&lab, None).unwrap();
    assert_nothing_left(&lab);

    // A node that cannot start (its user's home, /nonexistent, cannot be mounted over):
    // create fails naming the node and the cause, and removes what it made.
    let cluster = example_cluster_with(Subnet::NetnsFailing, "count: 2\n    user: nobody");
    let lab = Lab::open_or_create(root.path(), cluster.name()).unwrap();
    let _up2 = Up(&lab);
    let started = Instant::now();
    let err = netns::create(&lab, &cluster, &|_: &str, _| {}).unwrap_err().to_string();
    assert!(err.starts_with("node node-1: sshd did not start: ") && err.contains("/nonexistent"), "{err}");
    assert!(started.elapsed().as_secs() < 5, "failure took {:?}", started.elapsed());
    assert_nothing_left(&lab);
}

#[test]
fn refuses_without_root_naming_the_fix() {
    if is_root() {
        eprintln!("skipped: runs only without root (the other tests cover root)");
        return;
    }
    let cluster = example_cluster(Subnet::NetnsNotRoot, 1);
    let root = tempfile::tempdir().unwrap();
    let lab = Lab::open_or_create(root.path(), cluster.name()).unwrap();
    let err = netns::create(&lab, &cluster, &|_: &str, _| {}).unwrap_err();
    assert_eq!(err.to_string(), "the netns provider needs root: run zerolab as root (sudo)");
    assert!(matches!(netns::destroy(&lab, None), Err(netns::NetnsError::NotRoot)));
}

/// Timing for many nodes (`ZEROLAB_NETNS_NODES`, default 50, at most 253):
/// `cargo test --release -p zerolab --test orchestrator -- netns::many_node_lab_times --ignored --nocapture`.
#[test]
#[ignore = "slow: creates 50 namespace hosts"]
fn many_node_lab_times() {
    require_root!();
    let count: usize = std::env::var("ZEROLAB_NETNS_NODES").ok().and_then(|n| n.parse().ok()).unwrap_or(50);
    let cluster = example_cluster(Subnet::NetnsMany, count);
    let root = tempfile::tempdir().unwrap();
    let lab = Lab::open_or_create(root.path(), cluster.name()).unwrap();
    let _up = Up(&lab);
    let started = Instant::now();
    netns::create(&lab, &cluster, &|_: &str, _| {}).unwrap();
    eprintln!("created {count} nodes in {:?}", started.elapsed());
    let last = cluster.nodes().last().unwrap();
    assert_eq!(ssh_ok(&lab, &last.address.to_string(), "hostname"), format!("{}\n", last.name));
    let started = Instant::now();
    netns::destroy(&lab, None).unwrap();
    eprintln!("destroyed {count} nodes in {:?}", started.elapsed());
    assert_nothing_left(&lab);
}
