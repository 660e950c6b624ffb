//! Faults on a real 3-node `netns` lab, driven through the `zerolab` CLI: a changed
//! host key, a rejected login key, an unreachable node and an agent killed while it
//! runs a guest. Each must end in a clear error naming node-2 and the fix, with the
//! other nodes left ready and untouched, the exit code saying so, and nothing lost:
//! the lab recovers once the fault is undone. Needs root, gcc and a built
//! `zerolab-agent` (as `up`); without them each test says it was skipped.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{alive, pid, prerequisites, status_rows, wait_dead, zvm_gcc, LabHarness, Run, Subnet};
use zerolab::lab::{LabState, NodeState};
use zerolab::provider::netns::Names;

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

/// Everything `up` could change on a node but must not when it only verifies: the
/// agent's supervisor and agent processes.
fn agent_pids(lab: &LabHarness) -> Vec<(i32, i32)> {
    NODES.iter().map(|node| (pid(lab, node, "supervisor.pid"), pid(lab, node, "agent.pid"))).collect()
}

fn state(lab: &LabHarness) -> LabState {
    lab.lab().load_state().unwrap()
}

/// The line `up` printed for `node`.
fn up_line<'a>(run: &'a Run, node: &str) -> &'a str {
    let prefix = format!("{node}: ");
    run.stdout.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no line for {node}: {run:#?}"))
}

/// state.json records node-2 failed with the cause `line` (its `up` line) shows.
fn assert_failed_with(lab: &LabHarness, line: &str) {
    let NodeState::Failed { cause } = &state(lab).nodes["node-2"].state else {
        panic!("node-2 not failed: {:?}", state(lab));
    };
    let shown = line.strip_prefix("node-2: failed: ").unwrap();
    assert!(cause.ends_with(shown) && cause.starts_with("node node-2: "), "{cause}\n{line}");
}

/// `up` left node-1 and node-3 as they were and ready, and reports one node not ready.
fn assert_only_node_2_failed(lab: &LabHarness, run: &Run, pids: &[(i32, i32)]) {
    assert_eq!(run.code, 1, "{run:#?}");
    for node in ["node-1", "node-3"] {
        assert_eq!(up_line(run, node), format!("{node}: ready (agent unchanged, already running, healthy)"));
    }
    let summary = run.stdout.lines().last().unwrap();
    let expected = format!("lab {}: 2 of 3 nodes ready, 1 not ready in ", lab.cluster.name());
    assert!(summary.starts_with(&expected), "{run:#?}");
    assert_eq!(agent_pids(lab), pids, "up changed a node's agent");
    let state = state(lab);
    assert_eq!(state.nodes["node-1"].state, NodeState::Ready);
    assert_eq!(state.nodes["node-3"].state, NodeState::Ready);
}

/// `status` shows node-1 and node-3 ready, node-2 in `state` with a cause holding
/// every piece of `cause`; returns node-2's row.
fn assert_status_of_node_2(lab: &LabHarness, state: &str, cause: &[&str]) -> String {
    let run = lab.zerolab(&["status"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    let rows = status_rows(&run);
    let version = env!("CARGO_PKG_VERSION");
    for i in [0, 2] {
        assert_eq!((rows[i].1.as_str(), rows[i].2.as_str()), ("ready", version), "{run:#?}");
    }
    assert_eq!((rows[1].0.as_str(), rows[1].1.as_str()), ("node-2", state), "{run:#?}");
    let row = run.stdout.lines().find(|l| l.starts_with("node-2 ")).unwrap().to_owned();
    for piece in cause {
        assert!(row.contains(piece), "`{piece}` not in the status row: {run:#?}");
    }
    row
}

fn keygen(path: &Path) -> String {
    let status = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).status().unwrap();
    assert!(status.success());
    fs::read_to_string(path.with_extension("pub")).unwrap()
}

fn lines(text: &str) -> BTreeSet<&str> {
    text.lines().collect()
}

#[test]
fn a_changed_host_key_or_a_rejected_key_fails_only_that_node() {
    let Some(agent) = prerequisites("faults: host key and login key") else {
        return;
    };
    let lab = LabHarness::new(Subnet::FaultsKeys, agent);
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    let pids = agent_pids(&lab);
    let known_hosts = lab.lab().known_hosts();
    let pinned = fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(pinned.lines().count(), 3, "{pinned}");
    let stranger = keygen(&lab.path("stranger"));
    let stranger_key: Vec<&str> = stranger.split_whitespace().take(2).collect();

    // node-2's pin replaced by another valid ed25519 key: its host key "changed".
    let edited: String = pinned
        .lines()
        .map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["node-2", address, ..] => format!("node-2 {address} {}\n", stranger_key.join(" ")),
            _ => format!("{line}\n"),
        })
        .collect();
    assert_ne!(edited, pinned);
    fs::write(&known_hosts, &edited).unwrap();
    let run = lab.zerolab(&["up"], &[]);
    eprintln!("up with node-2's host key changed:\n{}", run.stdout);
    assert_only_node_2_failed(&lab, &run, &pids);
    let line = up_line(&run, "node-2");
    let file = known_hosts.display().to_string();
    assert!(
        line.starts_with(&format!(
            "node-2: failed: host key changed: {} now presents SHA256:",
            Subnet::FaultsKeys.address(3)
        )),
        "{line}"
    );
    for piece in [&file, "remove its line", "zerolab up"] {
        assert!(line.contains(piece), "`{piece}` not in: {line}");
    }
    assert_failed_with(&lab, line);
    // The presented key was refused, not pinned.
    assert_eq!(fs::read_to_string(&known_hosts).unwrap(), edited);
    let row = assert_status_of_node_2(&lab, "failed", &["host key changed", &file]);
    eprintln!("status row: {row}");

    // The fix the message names: remove the line, and up pins the node's real key again.
    let without: String = edited.lines().filter(|l| !l.starts_with("node-2 ")).map(|l| format!("{l}\n")).collect();
    fs::write(&known_hosts, without).unwrap();
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(lines(&fs::read_to_string(&known_hosts).unwrap()), lines(&pinned));
    assert_eq!(agent_pids(&lab), pids);

    // node-2 no longer authorizes the lab's key.
    let authorized = lab.lab().nodes_dir().join("node-2/etc-ssh/authorized_keys");
    let key = fs::read(&authorized).unwrap();
    fs::write(&authorized, &stranger).unwrap();
    let run = lab.zerolab(&["up"], &[]);
    eprintln!("up with node-2's authorized key replaced:\n{}", run.stdout);
    assert_only_node_2_failed(&lab, &run, &pids);
    let line = up_line(&run, "node-2");
    let private_key = lab.lab().private_key().display().to_string();
    assert!(line.starts_with(&format!("node-2: failed: authentication as root with key {private_key} rejected; ")));
    assert!(line.contains(&format!("{private_key}.pub")) && line.contains("authorized_keys"), "{line}");
    assert_failed_with(&lab, line);
    assert_status_of_node_2(&lab, "failed", &["authentication as root", &private_key]);

    fs::write(&authorized, key).unwrap();
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(agent_pids(&lab), pids);
    assert!(state(&lab).nodes.values().all(|r| r.state == NodeState::Ready));
}

/// Runs `zerolab ARGS` and returns the run and how long it took.
fn timed(lab: &LabHarness, command: &[&str]) -> (Run, Duration) {
    let started = Instant::now();
    let run = lab.zerolab(command, &[]);
    (run, started.elapsed())
}

fn ip_link(veth: &str, up_or_down: &str) {
    let status = Command::new("ip").args(["link", "set", veth, up_or_down]).status().unwrap();
    assert!(status.success(), "ip link set {veth} {up_or_down}");
}

#[test]
fn an_unreachable_node_is_reported_quickly_and_the_others_stay_ready() {
    let Some(agent) = prerequisites("faults: unreachable node") else {
        return;
    };
    let lab = LabHarness::new(Subnet::FaultsUnreachable, agent);
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    let pids = agent_pids(&lab);

    // node-2's link cut: its packets go nowhere.
    let veth = Names::new(lab.cluster.name()).veth("node-2");
    ip_link(&veth, "down");
    let (run, took) = timed(&lab, &["up"]);
    eprintln!("up with node-2's link down: {took:?}\n{}", run.stdout);
    assert_only_node_2_failed(&lab, &run, &pids);
    let line = up_line(&run, "node-2");
    assert!(
        line.starts_with(&format!(
            "node-2: unreachable: unreachable at {}:22 after 2 attempts",
            Subnet::FaultsUnreachable.address(3)
        )),
        "{line}"
    );
    assert_eq!(state(&lab).nodes["node-2"].state, NodeState::Unreachable);
    let (_, status_took) = timed(&lab, &["status"]);
    let row = assert_status_of_node_2(&lab, "unreachable", &["unreachable at"]);
    eprintln!("status with node-2's link down: {status_took:?}\n{row}");
    assert!(took < Duration::from_secs(10) && status_took < Duration::from_secs(10), "{took:?}, {status_took:?}");
    // Again, now that the lab records it unreachable: as quick, nothing else changed.
    let (run, took) = timed(&lab, &["up"]);
    eprintln!("up again with node-2's link down: {took:?}");
    assert_only_node_2_failed(&lab, &run, &pids);
    assert!(up_line(&run, "node-2").starts_with("node-2: unreachable: "), "{run:#?}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // The link back: up finds node-2 as it was.
    ip_link(&veth, "up");
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(agent_pids(&lab), pids);

    // node-2's sshd killed: its port refuses.
    let sshd = state(&lab).nodes["node-2"]
        .provider_record::<zerolab::provider::netns::Sshd>()
        .expect("node-2's sshd in state.json")
        .pid as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sshd), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_dead(sshd);
    let (run, took) = timed(&lab, &["up"]);
    eprintln!("up with node-2's sshd killed: {took:?}\n{}", run.stdout);
    assert_only_node_2_failed(&lab, &run, &pids);
    assert!(up_line(&run, "node-2").contains("refused"), "{run:#?}");
    assert_eq!(state(&lab).nodes["node-2"].state, NodeState::Unreachable);
    let (_, status_took) = timed(&lab, &["status"]);
    let row = assert_status_of_node_2(&lab, "unreachable", &["refused"]);
    eprintln!("status with node-2's sshd killed: {status_took:?}\n{row}");
    assert!(took < Duration::from_secs(5) && status_took < Duration::from_secs(5), "{took:?}, {status_took:?}");
}

/// The processes in `node`'s network namespace, as (pid, uid).
fn processes_of(lab: &LabHarness, node: &str) -> Vec<(i32, u32)> {
    let namespace = Path::new("/run/netns").join(Names::new(lab.cluster.name()).namespace(node));
    let namespace = fs::metadata(namespace).unwrap();
    let in_namespace = |pid: i32| {
        fs::metadata(format!("/proc/{pid}/ns/net"))
            .is_ok_and(|m| (m.dev(), m.ino()) == (namespace.dev(), namespace.ino()))
    };
    let uid = |pid: i32| -> Option<u32> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()
    };
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| in_namespace(pid) && alive(pid))
        .filter_map(|pid| Some((pid, uid(pid)?)))
        .collect()
}

/// The guests running on `node`: its processes as `nobody`.
fn guests_on(lab: &LabHarness, node: &str) -> Vec<i32> {
    processes_of(lab, node).into_iter().filter(|&(_, uid)| uid == 65534).map(|(pid, _)| pid).collect()
}

#[test]
fn an_agent_killed_during_a_guest_ends_the_run_with_a_clear_error() {
    let Some(agent) = prerequisites("faults: agent killed mid-request") else {
        return;
    };
    let lab = LabHarness::new(Subnet::FaultsAgentKilled, agent);
    let spin = lab.path("spin");
    zvm_gcc(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/tests/guests/loop.c")), &spin);
    let hello = lab.path("hello");
    zvm_gcc(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/examples/hello.c")), &hello);
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(guests_on(&lab, "node-2").is_empty());

    // A guest that spins until its 50 s timeout, started on node-2.
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerolab"))
        .args(["sandbox", "run"])
        .arg(&lab.file)
        .args(["node-2"])
        .arg(&spin)
        .arg("--lab-root")
        .arg(lab.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).expect("the guest never printed");
    assert_eq!(first, "started=1");
    let guests = guests_on(&lab, "node-2");
    assert_eq!(guests.len(), 1, "one guest running as nobody on node-2: {:?}", processes_of(&lab, "node-2"));
    let (supervisor, killed) = (pid(&lab, "node-2", "supervisor.pid"), pid(&lab, "node-2", "agent.pid"));

    // Its agent killed, the way an operator would.
    let run = lab.zerolab(&["exec"], &["--nodes", "node-2", "--", "kill -9 $(cat /run/zerolab/agent.pid)"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let killed_at = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if killed_at.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("sandbox run still running 20 s after its agent died");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let ended = killed_at.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    eprintln!("sandbox run ended {ended:?} after its agent was killed: {status:?}\n{stderr}");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for piece in ["zerolab: node node-2: ", "agent", "zerolab up"] {
        assert!(stderr.contains(piece), "`{piece}` not in: {stderr}");
    }
    for raw in ["hyper", "connection closed before message completed", "Channel"] {
        assert!(!stderr.contains(raw), "raw `{raw}` in: {stderr}");
    }
    assert!(ended < Duration::from_secs(5), "{ended:?}");

    // The guest died with its agent (its parent-death signal), nothing else on node-2 did.
    wait_dead(killed);
    for guest in guests {
        wait_dead(guest);
    }
    assert!(guests_on(&lab, "node-2").is_empty(), "{:?}", processes_of(&lab, "node-2"));
    assert!(alive(supervisor));

    // The supervisor starts a new agent within about a second; status finds it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = lab.zerolab(&["status"], &[]);
        if run.code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "node-2's agent not back: {run:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(pid(&lab, "node-2", "agent.pid"), killed);
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("ready (agent unchanged, already running, healthy)").count(), 3, "{run:#?}");
    let run = lab.zerolab(&["sandbox", "run"], &["node-2", hello.to_str().unwrap()]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "Hello, World!\n"), "{run:#?}");
}
