//! `zerolab up`, `status` and `down` run for real on a 3-node `netns` lab: the agent
//! installed and healthy on every node, a re-run that changes nothing, a killed agent
//! reported and repaired, and nothing left behind. Needs root and the release (or
//! same-profile) build of `zerolab-agent` (`cargo build --release -p zerolab-agent`,
//! which scripts/test does first); without either the test says it was skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zerolab::cluster::Cluster;
use zerolab::lab::{Lab, LabState, NodeState};
use zerolab::provider::netns::Names;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `target/<profile>/zerolab-agent`, beside this test's `target/<profile>/deps/`.
fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("zerolab-agent");
    path.is_file().then_some(path)
}

/// A temp dir holding the cluster file and the lab root, and a command builder.
struct Harness {
    dir: tempfile::TempDir,
    file: PathBuf,
    cluster: Cluster,
    agent: PathBuf,
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Harness {
    /// examples/netns-3.yaml as lab `up<x>` on subnet 10.77.<x>.0/24.
    fn new(x: u8, agent: PathBuf) -> Harness {
        let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/netns-3.yaml")).unwrap();
        assert!(text.contains("name: netns-3\n") && text.contains("10.77.0.0/24"));
        let text = text
            .replace("name: netns-3\n", &format!("name: up{x}\n"))
            .replace("10.77.0.0/24", &format!("10.77.{x}.0/24"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.yaml");
        fs::write(&file, &text).unwrap();
        let cluster = Cluster::from_str(&text, "lab.yaml").unwrap();
        Harness { dir, file, cluster, agent }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    fn lab(&self) -> Lab {
        Lab::at(self.root(), self.cluster.name()).unwrap()
    }

    fn zerolab(&self, command: &str) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zerolab"));
        cmd.arg(command).arg(&self.file).arg("--lab-root").arg(self.root());
        if command == "up" {
            cmd.arg("--agent").arg(&self.agent);
        }
        let output = cmd.output().unwrap();
        Run {
            code: output.status.code().expect("an exit code"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// A pid file of `node`'s agent, read from the host through the node's private /run.
    fn pid(&self, node: &str, file: &str) -> i32 {
        let path = self.lab().nodes_dir().join(node).join("run/zerolab").join(file);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().parse().unwrap()
    }
}

/// Takes the lab down when the test ends, also when it fails.
impl Drop for Harness {
    fn drop(&mut self) {
        if let Err(e) = zerolab::up::down(&self.root(), &self.cluster) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Running, not a zombie (a zombie holds no namespace; its parent reaps it later).
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

fn wait_dead(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} still running");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The status table's rows: node → (state, agent version).
fn status_rows(run: &Run) -> Vec<(String, String, String)> {
    let mut lines = run.stdout.lines();
    assert!(lines.next().unwrap().starts_with("NODE "), "{run:#?}");
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells[0].to_owned(), cells[3].to_owned(), cells[4].to_owned())
        })
        .collect()
}

#[test]
fn up_status_repair_and_down_on_three_nodes() {
    if !is_root() {
        eprintln!("skipped: zerolab up on a netns lab needs root (CI runs it as root)");
        return;
    }
    let Some(agent) = agent_binary() else {
        eprintln!("skipped: no zerolab-agent beside the test binaries; run `cargo build --release -p zerolab-agent`");
        return;
    };
    let lab = Harness::new(120, agent);
    let version = env!("CARGO_PKG_VERSION");

    // Cold: namespaces made, agent uploaded and started on every node.
    let started = Instant::now();
    let run = lab.zerolab("up");
    eprintln!("up, cold, 3 nodes: {:?}", started.elapsed());
    assert_eq!(run.code, 0, "{run:#?}");
    for node in ["node-1", "node-2", "node-3"] {
        let line = format!("{node}: ready (agent uploaded, started, healthy)");
        assert!(run.stdout.lines().any(|l| l == line), "{run:#?}");
    }
    assert!(run.stdout.lines().last().unwrap().starts_with("lab up120: 3 of 3 nodes ready in "), "{run:#?}");
    let state: LabState = lab.lab().load_state().unwrap();
    assert!(state.nodes.values().all(|r| r.state == NodeState::Ready), "{state:?}");

    let run = lab.zerolab("status");
    assert_eq!(run.code, 0, "{run:#?}");
    let ready = |node: &str| (node.to_owned(), "ready".to_owned(), version.to_owned());
    assert_eq!(status_rows(&run), [ready("node-1"), ready("node-2"), ready("node-3")], "{run:#?}");

    // Warm: nothing to do, quickly.
    let supervisor = lab.pid("node-1", "supervisor.pid");
    let started = Instant::now();
    let run = lab.zerolab("up");
    let warm = started.elapsed();
    eprintln!("up, warm, 3 nodes: {warm:?}");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("ready (agent unchanged, already running, healthy)").count(), 3, "{run:#?}");
    assert_eq!(lab.pid("node-1", "supervisor.pid"), supervisor);
    assert!(warm < Duration::from_secs(5), "warm up took {warm:?}");

    // node-2's agent killed (its supervisor first, so nothing restarts it).
    let (supervisor, agent) = (lab.pid("node-2", "supervisor.pid"), lab.pid("node-2", "agent.pid"));
    for pid in [supervisor, agent] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        wait_dead(pid);
    }
    let run = lab.zerolab("status");
    assert_eq!(run.code, 1, "{run:#?}");
    let rows = status_rows(&run);
    assert_eq!(rows[1].0, "node-2");
    assert_eq!((rows[1].1.as_str(), rows[1].2.as_str()), ("failed", "-"), "{run:#?}");
    assert!(run.stdout.contains("agent socket /run/zerolab/agent.sock not reachable"), "{run:#?}");
    assert_eq!([&rows[0], &rows[2]], [&ready("node-1"), &ready("node-3")]);

    // up repairs it and touches nothing else.
    let run = lab.zerolab("up");
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("node-2: ready (agent unchanged, started, healthy)"), "{run:#?}");
    assert_eq!(run.stdout.matches("already running").count(), 2, "{run:#?}");
    assert_eq!(status_rows(&lab.zerolab("status")), [ready("node-1"), ready("node-2"), ready("node-3")]);

    // The hosts gone but the lab directory kept (a reboot): up makes new hosts, whose
    // new host keys replace the old pins instead of being refused.
    zerolab::provider::netns::destroy(&lab.lab()).unwrap();
    let run = lab.zerolab("up");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("ready (agent uploaded, started, healthy)").count(), 3, "{run:#?}");

    // down leaves nothing: no namespace, link, agent process or lab directory.
    let pids: Vec<i32> = ["node-1", "node-2", "node-3"]
        .iter()
        .flat_map(|node| [lab.pid(node, "supervisor.pid"), lab.pid(node, "agent.pid")])
        .collect();
    let run = lab.zerolab("down");
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "lab up120: down\n", ""), "{run:#?}");
    for pid in pids {
        wait_dead(pid);
    }
    let names = Names::new("up120");
    let netns = String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    assert!(!netns.lines().any(|l| names.is_namespace(l.split_whitespace().next().unwrap_or(""))), "{netns}");
    assert!(!Path::new("/sys/class/net").join(names.bridge()).exists());
    assert!(!lab.lab().exists());
    let left: Vec<_> = fs::read_dir(lab.root()).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // Idempotent.
    let run = lab.zerolab("down");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(status_rows(&lab.zerolab("status")).iter().filter(|r| r.1 == "declared").count(), 3);
}

#[test]
fn up_refuses_providers_without_bring_up_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssh.yaml");
    fs::write(
        &file,
        "apiVersion: zerolab/v1\nkind: Cluster\nname: remote\nprovider: ssh\n\
         nodes:\n  - {name: a, address: 192.0.2.1, user: root, key: /nonexistent}\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_zerolab"))
        .arg("up")
        .arg(&file)
        .arg("--lab-root")
        .arg(dir.path().join("labs"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "zerolab: the ssh provider's bring-up is not implemented yet (only netns is)\n"
    );
    assert!(!dir.path().join("labs").exists());
}
