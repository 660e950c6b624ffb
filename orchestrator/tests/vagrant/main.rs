//! `provider: vagrant` end to end, on real Vagrant, vagrant-libvirt and QEMU: labs of
//! virtual machines made by `zerolab up`, used, broken behind zerolab's back, repaired
//! shelved and unshelved, and taken down, with nothing of them left in libvirt, the
//! firewall or the process table.
//!
//! These tests boot virtual machines (under software emulation where there is no KVM:
//! about a minute each), so they run only when `ZEROLAB_VM_TESTS=1`, which `scripts/test`
//! sets after `vagrant/setup` and `vagrant/build-box` have made the tools and the box
//! (CI runs them; without it each test says why it is skipped). They run one at a time
//! ([`VM_TESTS`]): two cores boot few machines at once.
//!
//! Lab names `vgt`, `vga`, `vgb`, `vgc`; subnets 10.78.31-33.0/24.
//!
//! All of it: `ZEROLAB_VM_TESTS=1 cargo test --release -p zerolab --test vagrant`.

mod faults;
mod harness;
mod shelve;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use harness::{leftovers, prerequisites, VmLab};

/// A 2-node lab with ordered provisioning steps: n1 bootstraps, n2 joins once n1 has,
/// checking it reaches n1 over the lab network (its agent's channel port).
const LAB: &str = "apiVersion: zerolab/v1
kind: Cluster
name: vgt
provider: vagrant
network: {subnet: 10.78.31.0/24}
defaults: {memory_mb: 512}
nodes:
  - {name: n1, labels: {role: primary}}
  - {name: n2}
provision:
  - name: bootstrap
    nodes: role=primary
    script: echo primary > /etc/zerolab-role
  - name: join
    nodes: n2
    after: [bootstrap]
    ready: timeout 5 bash -c 'echo > /dev/tcp/10.78.31.2/7700'
    script: echo joined > /etc/zerolab-role
";

#[test]
fn a_vagrant_lab_comes_up_runs_jobs_and_repairs_a_machine_removed_behind_its_back() {
    let Some(_turn) = prerequisites("a vagrant lab's life") else {
        return;
    };
    let lab = VmLab::new("vgt", LAB);
    let up = lab.zerolab(&["up"], &[]);
    assert_eq!(up.code, 0, "{up:#?}");
    assert!(up.stdout.contains("lab vgt: 2 of 2 nodes ready"), "{up:#?}");

    // The steps ran in order, on their nodes.
    let roles = lab.zerolab(&["exec"], &["--", "cat", "/etc/zerolab-role"]);
    assert_eq!(roles.code, 0, "{roles:#?}");
    assert!(roles.stdout.contains("n1: primary") && roles.stdout.contains("n2: joined"), "{roles:#?}");

    // Every address is the cluster file's, reserved before boot; the network is isolated.
    let network = lab.virsh(&["net-dumpxml", "zl-vgt_net"]);
    assert!(network.contains("ip='10.78.31.2'") && network.contains("ip='10.78.31.3'"), "{network}");
    assert!(!network.contains("<range") && !network.contains("<forward"), "{network}");
    // Host keys were pinned from the consoles before the first login: one per node.
    let pins = fs::read_to_string(lab.lab_dir().join("known_hosts")).unwrap();
    assert_eq!(pins.lines().filter(|l| l.contains("ssh-ed25519")).count(), 2, "{pins}");

    // From here on no command runs Vagrant: status, exec, run, ssh, and `up` again.
    lab.shim_calls_reset();
    let status = lab.zerolab(&["status"], &[]);
    assert_eq!(status.code, 0, "{status:#?}");
    let rows: Vec<&str> = status.stdout.lines().filter(|l| l.starts_with('n')).collect();
    assert_eq!(rows.len(), 2, "{status:#?}");
    for row in rows {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((cells[1], cells[2], cells[4]), ("vagrant", "running", "ready"), "{status:#?}");
    }
    let units = lab.zerolab(&["exec"], &["--", "systemctl", "is-active", "zerolab-agent.service"]);
    assert!(units.stdout.contains("n1: active") && units.stdout.contains("n2: active"), "a systemd unit: {units:#?}");
    let names = lab.zerolab(&["exec"], &["--", "hostname"]);
    assert!(names.stdout.contains("n1: n1") && names.stdout.contains("n2: n2"), "{names:#?}");
    assert_eq!(lab.zerolab(&["ssh"], &["n1", "--", "true"]).code, 0);
    let built = Command::new(Path::new(harness::EXAMPLES).join("build-guests")).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let run = lab.zerolab(&["run"], &[&format!("{}/wordcount/job.yaml", harness::EXAMPLES)]);
    assert_eq!(run.code, 0, "{run:#?}");
    let nodes: std::collections::BTreeSet<&str> =
        run.stdout.lines().filter(|l| l.starts_with("map-")).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(nodes.len(), 2, "the maps ran on both machines: {run:#?}");
    let started = Instant::now();
    let again = lab.zerolab(&["up"], &[]);
    let took = started.elapsed();
    assert_eq!(again.code, 0, "{again:#?}");
    eprintln!("a no-change `up` of a 2-machine lab took {:.2}s", took.as_secs_f64());
    assert!(took.as_secs() < 10, "a no-change up makes nothing: {took:?}");
    assert_eq!(lab.shim_calls(), "", "no vagrant call after up");

    // n2 undefined behind Vagrant's back: status says so, `up` makes it again (a new
    // machine, a new pinned key), and only that machine is Vagrant's work.
    let old_pin = pin(&lab, "n2");
    lab.virsh(&["destroy", "zl-vgt_n2"]);
    lab.virsh(&["undefine", "zl-vgt_n2"]);
    let status = lab.zerolab(&["status"], &[]);
    assert!(status.stdout.lines().any(|l| l.starts_with("n2") && l.contains(" missing ")), "{status:#?}");
    let repaired = lab.zerolab(&["up"], &[]);
    assert_eq!(repaired.code, 0, "{repaired:#?}");
    assert!(repaired.stderr.contains("node n2: its machine zl-vgt_n2 is gone"), "{repaired:#?}");
    assert!(repaired.stdout.contains("lab vgt: 2 of 2 nodes ready"), "{repaired:#?}");
    let calls = lab.shim_calls();
    assert!(calls.lines().all(|c| c.ends_with(" n2")), "only n2 went through Vagrant: {calls}");
    assert_ne!(pin(&lab, "n2"), old_pin, "the new machine's key is pinned, the old one forgotten");
    let roles = lab.zerolab(&["exec"], &["--nodes", "n2", "--", "cat", "/etc/zerolab-role"]);
    assert!(roles.stdout.contains("n2: joined"), "its steps ran again on the new machine: {roles:#?}");

    // n1 shelved (suspended, then halted) and back, through Vagrant on that machine only.
    lab.shim_calls_reset();
    shelve::suspend_and_halt_come_back(&lab);
    let calls = lab.shim_calls();
    assert!(calls.lines().all(|c| c.ends_with(" n1")), "only n1 went through Vagrant: {calls}");

    lab.shim_calls_reset();
    let down = lab.zerolab(&["down"], &[]);
    assert_eq!(down.code, 0, "{down:#?}");
    assert_eq!(lab.shim_calls(), "", "down runs no vagrant");
    assert_eq!(leftovers("zl-vgt_", "zv-vgt-"), Vec::<String>::new());
    assert!(!lab.lab_dir().join("vagrant").exists());
}

/// Node `node`'s pinned host key line.
fn pin(lab: &VmLab, node: &str) -> String {
    let pins = fs::read_to_string(lab.lab_dir().join("known_hosts")).unwrap();
    pins.lines().find(|l| l.starts_with(&format!("{node} "))).unwrap_or_default().to_owned()
}
