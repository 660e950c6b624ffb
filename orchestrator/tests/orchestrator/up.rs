//! `zerolab up`, `status` and `down` run for real on a 3-node `netns` lab: the agent
//! installed and healthy on every node, a re-run that changes nothing, a killed agent
//! reported and repaired, and nothing left behind. Needs root and the release (or
//! same-profile) build of `zerolab-agent` (`cargo build --release -p zerolab-agent`,
//! which scripts/test does first); without either the test says it was skipped.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{pid, prerequisites, status_rows, wait_dead, LabHarness, Subnet};
use zerolab::lab::{LabState, NodeState};
use zerolab::provider::netns::Names;

#[test]
fn up_status_repair_and_down_on_three_nodes() {
    let Some(agent) = prerequisites("zerolab up") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Up, agent.clone());
    let version = env!("CARGO_PKG_VERSION");

    // Cold: namespaces made, agent uploaded and started on every node.
    let started = Instant::now();
    let run = lab.zerolab(&["up"], &[]);
    eprintln!("up, cold, 3 nodes: {:?}", started.elapsed());
    assert_eq!(run.code, 0, "{run:#?}");
    for node in ["node-1", "node-2", "node-3"] {
        let line = format!("{node}: ready (agent uploaded, started, healthy)");
        assert!(run.stdout.lines().any(|l| l == line), "{run:#?}");
    }
    assert!(
        run.stdout.lines().last().unwrap().starts_with(&format!("lab {}: 3 of 3 nodes ready in ", Subnet::Up.name())),
        "{run:#?}"
    );
    let state: LabState = lab.lab().load_state().unwrap();
    assert!(state.nodes.values().all(|r| r.state == NodeState::Ready), "{state:?}");

    let run = lab.zerolab(&["status"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    let ready = |node: &str| (node.to_owned(), "ready".to_owned(), version.to_owned());
    assert_eq!(status_rows(&run), [ready("node-1"), ready("node-2"), ready("node-3")], "{run:#?}");

    // Warm: nothing to do, quickly.
    let supervisor = pid(&lab, "node-1", "supervisor.pid");
    let started = Instant::now();
    let run = lab.zerolab(&["up"], &[]);
    let warm = started.elapsed();
    eprintln!("up, warm, 3 nodes: {warm:?}");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("ready (agent unchanged, already running, healthy)").count(), 3, "{run:#?}");
    assert_eq!(pid(&lab, "node-1", "supervisor.pid"), supervisor);
    assert!(warm < Duration::from_secs(5), "warm up took {warm:?}");

    // node-2's agent killed (its supervisor first, so nothing restarts it).
    let (supervisor, agent) = (pid(&lab, "node-2", "supervisor.pid"), pid(&lab, "node-2", "agent.pid"));
    for pid in [supervisor, agent] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        wait_dead(pid);
    }
    let run = lab.zerolab(&["status"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    let rows = status_rows(&run);
    assert_eq!(rows[1].0, "node-2");
    assert_eq!((rows[1].1.as_str(), rows[1].2.as_str()), ("failed", "-"), "{run:#?}");
    assert!(run.stdout.contains("agent socket /run/zerolab/agent.sock not reachable"), "{run:#?}");
    assert_eq!([&rows[0], &rows[2]], [&ready("node-1"), &ready("node-3")]);

    // up repairs it and touches nothing else.
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("node-2: ready (agent unchanged, started, healthy)"), "{run:#?}");
    assert_eq!(run.stdout.matches("already running").count(), 2, "{run:#?}");
    assert_eq!(status_rows(&lab.zerolab(&["status"], &[])), [ready("node-1"), ready("node-2"), ready("node-3")]);

    // The hosts gone but the lab directory kept (a reboot): up makes new hosts, whose
    // new host keys replace the old pins instead of being refused.
    zerolab::provider::netns::destroy(&lab.lab(), None).unwrap();
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("ready (agent uploaded, started, healthy)").count(), 3, "{run:#?}");

    // down leaves nothing: no namespace, link, agent process or lab directory.
    let pids: Vec<i32> = ["node-1", "node-2", "node-3"]
        .iter()
        .flat_map(|node| [pid(&lab, node, "supervisor.pid"), pid(&lab, node, "agent.pid")])
        .collect();
    let run = lab.zerolab(&["down"], &[]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, format!("lab {}: down\n", Subnet::Up.name()).as_str(), ""),
        "{run:#?}"
    );
    for pid in pids {
        wait_dead(pid);
    }
    let names = Names::new(&Subnet::Up.name());
    let netns = String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    assert!(!netns.lines().any(|l| names.is_namespace(l.split_whitespace().next().unwrap_or(""))), "{netns}");
    assert!(!Path::new("/sys/class/net").join(names.bridge()).exists());
    assert!(!lab.lab().exists());
    let left: Vec<_> = fs::read_dir(lab.root()).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // Idempotent.
    let run = lab.zerolab(&["down"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(status_rows(&lab.zerolab(&["status"], &[])).iter().filter(|r| r.1 == "declared").count(), 3);
}

#[test]
fn a_pxe_lab_on_a_missing_boot_interface_is_refused_in_one_line_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pxe.yaml");
    let text = "apiVersion: zerolab/v1\nkind: Cluster\nname: metal\nprovider: pxe\npxe: {interface: zlnope0}\nnodes:\n  - {name: m, mac: 52:54:00:00:00:01}\n";
    fs::write(&file, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_zerolab"))
        .arg("up")
        .arg(&file)
        .arg("--lab-root")
        .arg(dir.path().join("labs"))
        .env("ZEROLAB_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "zerolab: boot interface `zlnope0` does not exist on this host; set pxe.interface to the interface on the \
         machines' network (`ip link` lists them)\n"
    );
    assert!(!dir.path().join("cache").exists(), "nothing was built");
    assert!(!dir.path().join("labs/metal/pxe").exists(), "nothing of the lab's boot services is left");
}
