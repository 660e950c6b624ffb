//! `zerolab down` for real: labs over the same hosts keep apart (an `ssh` lab over a
//! `netns` lab's hosts is refused there, and its `down` leaves that lab's agents alone);
//! `down` finishes, bounded, past a node that never let zerolab in and one that does not
//! answer, listing both; the changed-host-key hint, followed, works; `down` during a live
//! run asks for `--force`; collected results outlive the lab until `--purge`. The lab
//! tests need root and a built `zerolab-agent` (as `up`); the live-run test needs neither.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{alive, job, pid, prerequisites, program, wait_dead, zerolab, zvm_gcc, LabHarness, Run, Subnet};
use zerolab::provider::netns::Names;

/// An `ssh` cluster file `<netns lab>-ssh` whose nodes are `nodes`' hosts.
struct SshLab<'a> {
    nodes: &'a LabHarness,
    name: String,
    file: PathBuf,
    root: PathBuf,
    agent: PathBuf,
}

impl<'a> SshLab<'a> {
    /// Each `(name, netns node, key)` becomes a node at that host's address, logging in as
    /// root with `key` (the netns lab's own key when `None`).
    fn new(nodes: &'a LabHarness, agent: &Path, hosts: &[(&str, &str, Option<&Path>)]) -> SshLab<'a> {
        let name = format!("{}-ssh", nodes.cluster.name());
        let lab_key = nodes.lab().private_key();
        let mut text = format!("apiVersion: zerolab/v1\nkind: Cluster\nname: {name}\nprovider: ssh\nnodes:\n");
        for (host, node, key) in hosts {
            let address = &nodes.cluster.node(node).unwrap().address;
            let key = key.unwrap_or(&lab_key).display();
            text.push_str(&format!("  - {{name: {host}, address: {address}, user: root, key: {key}}}\n"));
        }
        let file = nodes.path(&format!("{name}.yaml"));
        fs::write(&file, text).unwrap();
        SshLab { nodes, file, root: nodes.path("ssh-labs"), name, agent: agent.into() }
    }

    fn zerolab(&self, command: &[&str], args: &[&str]) -> Run {
        zerolab(command, &self.file, &self.root, &self.agent, args)
    }

    fn dir(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    /// The ssh lab's agent on `node` (a host of the netns lab).
    fn agent_pid(&self, node: &str) -> i32 {
        pid(self.nodes, node, "agent.pid")
    }
}

/// This machine's host name, as owner files record it.
fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned()
}

fn keygen(path: &Path) -> PathBuf {
    let status = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).status().unwrap();
    assert!(status.success());
    path.to_owned()
}

/// The line `up` printed for `node`.
fn line<'a>(run: &'a Run, node: &str) -> &'a str {
    let prefix = format!("{node}: ");
    run.stdout.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no line for {node}: {run:#?}"))
}

const BY_HAND: &str = "; to clean it by hand, as root on the node: `systemctl disable --now zerolab-agent.service` \
                       (without systemd: `kill -TERM -$(cat /run/zerolab/supervisor.pid)`), then \
                       `rm -rf /var/lib/zerolab /run/zerolab /etc/systemd/system/zerolab-agent.service`";

#[test]
fn an_ssh_lab_over_another_labs_hosts_is_refused_and_its_down_leaves_them_alone() {
    let Some(agent) = prerequisites("down: two labs on the same hosts") else {
        return;
    };
    let nodes = LabHarness::new(Subnet::DownShared, agent.clone());
    assert_eq!(nodes.zerolab(&["up"], &[]).code, 0);
    let agents = || ["node-1", "node-2"].map(|node| pid(&nodes, node, "agent.pid"));
    let before = agents();

    let ssh = SshLab::new(&nodes, &agent, &[("web-1", "node-1", None), ("web-2", "node-2", None)]);
    let run = ssh.zerolab(&["up"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    let owner = format!("lab {} ({} on {})", nodes.cluster.name(), nodes.lab().dir().display(), hostname());
    for web in ["web-1", "web-2"] {
        let refused =
            format!("{web}: failed: node {web} is provisioned by {owner}; take that lab down first, or use it");
        assert_eq!(line(&run, web), refused, "{run:#?}");
    }
    assert_eq!(agents(), before, "the ssh lab's up changed the netns lab's agents");
    // Its status says so too, though an agent answers there.
    let run = ssh.zerolab(&["status"], &[]);
    assert_eq!((run.code, run.stdout.matches(" failed ").count()), (1, 2), "{run:#?}");
    assert_eq!(run.stdout.matches(&format!("is provisioned by {owner}")).count(), 2, "{run:#?}");

    // Its down names whose agents they are, and touches none.
    let run = ssh.zerolab(&["down"], &[]);
    let left = |web: &str| format!("warning: left alone: {web}, its agent belongs to {owner}\n");
    run.expect(0, &format!("lab {}: down\n", ssh.name), &(left("web-1") + &left("web-2")));
    assert!(!ssh.dir().exists());
    assert!(before.iter().all(|&pid| alive(pid)) && agents() == before);
    let run = nodes.zerolab(&["status"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    let run = nodes.zerolab(&["up"], &[]);
    assert_eq!(run.stdout.matches("ready (agent unchanged, already running, healthy)").count(), 3, "{run:#?}");
}

#[test]
fn down_finishes_bounded_past_a_node_never_let_in_and_one_unreachable() {
    let Some(agent) = prerequisites("down: nodes it cannot clean") else {
        return;
    };
    let nodes = LabHarness::new(Subnet::DownUnclean, agent.clone());
    nodes.create_nodes();
    let stranger = keygen(&nodes.path("stranger"));
    let hosts = [("a", "node-1", None), ("b", "node-2", Some(stranger.as_path())), ("c", "node-3", None)];
    let ssh = SshLab::new(&nodes, &agent, &hosts);
    let run = ssh.zerolab(&["up"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(line(&run, "b").starts_with("b: failed: authentication as root with key "), "{run:#?}");
    let (agent_a, agent_c) = (ssh.agent_pid("node-1"), ssh.agent_pid("node-3"));

    // b pinned but never authenticated; c's link cut: down lists both, and finishes.
    let veth = Names::new(nodes.cluster.name()).veth("node-3");
    ip_link(&veth, "down");
    let started = Instant::now();
    let run = ssh.zerolab(&["down"], &["--strict"]);
    let took = started.elapsed();
    eprintln!("down with c unreachable and b never let in: {took:?}\n{}", run.stderr);
    ip_link(&veth, "up");
    assert_eq!((run.code, run.stdout.as_str()), (1, format!("lab {}: down\n", ssh.name).as_str()), "{run:#?}");
    let warnings: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{run:#?}");
    let key = stranger.display();
    assert!(
        warnings[0].starts_with(&format!("warning: not cleaned: b: authentication as root with key {key} rejected"))
    );
    let c = nodes.cluster.node("node-3").unwrap().address.to_string();
    assert!(warnings[1].starts_with(&format!("warning: not cleaned: c: unreachable at {c}:22 after 2 attempts")));
    assert!(warnings.iter().all(|w| w.ends_with(BY_HAND)), "{run:#?}");
    assert!(took < Duration::from_secs(6), "down took {took:?}");
    assert!(!ssh.dir().exists());
    wait_dead(agent_a);
    assert!(alive(agent_c));

    // Up again: c's agent is this lab's (its owner file says so), so it is used as it is.
    let run = ssh.zerolab(&["up"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(line(&run, "a"), "a: ready (agent uploaded, started, healthy)");
    assert_eq!(line(&run, "c"), "c: ready (agent unchanged, already running, healthy)");
    assert_eq!(ssh.agent_pid("node-3"), agent_c);
    // Without --strict a node not cleaned is a warning.
    let run = ssh.zerolab(&["down"], &[]);
    assert_eq!((run.code, run.stderr.lines().count()), (0, 1), "{run:#?}");
    assert!(run.stderr.starts_with("warning: not cleaned: b: "), "{run:#?}");
    wait_dead(agent_c);
}

fn ip_link(veth: &str, up_or_down: &str) {
    let status = Command::new("ip").args(["link", "set", veth, up_or_down]).status().unwrap();
    assert!(status.success(), "ip link set {veth} {up_or_down}");
}

#[test]
fn the_changed_host_key_hint_followed_works() {
    let Some(agent) = prerequisites("down: the changed host key hint") else {
        return;
    };
    let nodes = LabHarness::new(Subnet::DownHostKey, agent.clone());
    nodes.create_nodes();
    let ssh = SshLab::new(&nodes, &agent, &[("w1", "node-1", None), ("w2", "node-2", None)]);
    assert_eq!(ssh.zerolab(&["up"], &[]).code, 0);
    let agent_w2 = ssh.agent_pid("node-2");

    // w2's pin replaced by another key: its host key "changed".
    let stranger = fs::read_to_string(keygen(&nodes.path("stranger")).with_extension("pub")).unwrap();
    let stranger: Vec<&str> = stranger.split_whitespace().take(2).collect();
    let known_hosts = ssh.dir().join("known_hosts");
    let pinned = fs::read_to_string(&known_hosts).unwrap();
    let edited: String = pinned
        .lines()
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            ["w2", address, ..] => format!("w2 {address} {}\n", stranger.join(" ")),
            _ => format!("{l}\n"),
        })
        .collect();
    fs::write(&known_hosts, edited).unwrap();
    let run = ssh.zerolab(&["up"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    let hint = line(&run, "w2");
    assert!(hint.starts_with("w2: failed: host key changed: "), "{run:#?}");
    assert!(hint.ends_with("(or `zerolab down`, then `zerolab up`, to start the lab over)"), "{hint}");

    // The hint followed: down finishes (w2 listed, its agent untouched), up pins anew.
    let run = ssh.zerolab(&["down"], &[]);
    assert_eq!((run.code, run.stdout.as_str()), (0, format!("lab {}: down\n", ssh.name).as_str()), "{run:#?}");
    assert!(run.stderr.starts_with("warning: not cleaned: w2: host key changed: "), "{run:#?}");
    assert!(alive(agent_w2));
    let run = ssh.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(line(&run, "w1"), "w1: ready (agent uploaded, started, healthy)");
    assert_eq!(line(&run, "w2"), "w2: ready (agent unchanged, already running, healthy)");
    ssh.zerolab(&["down"], &[]).expect(0, &format!("lab {}: down\n", ssh.name), "");
    wait_dead(agent_w2);
}

#[test]
fn down_during_a_live_run_asks_for_force() {
    let Some(flock) = program("down: a live run", "flock", "util-linux") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.yaml");
    let text = "apiVersion: zerolab/v1\nkind: Cluster\nname: dn-live\nprovider: ssh\n\
                nodes:\n  - {name: a, address: 192.0.2.1, user: root, key: /nonexistent}\n";
    fs::write(&file, text).unwrap();
    let root = dir.path().join("labs");
    let lab = zerolab::lab::Lab::open_or_create(&root, "dn-live").unwrap();
    let run_dir = lab.dir().join("jobs/hello-1");
    fs::create_dir_all(&run_dir).unwrap();
    let record = r#"{"id": "hello-1", "job": "hello", "file": "hello.yaml", "started": 1, "instances": []}"#;
    fs::write(run_dir.join("job.json"), record).unwrap();

    // A run's driver holds its lock for the run's life: here, a child process does (`-o`:
    // it alone, not the `sleep` it runs).
    let lock = run_dir.join("driver.lock");
    let mut driver =
        Command::new(flock).args(["-x", "-o"]).arg(&lock).args(["sleep", "60"]).stdin(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while zerolab::down::live_runs(&lab.dir().join("jobs")).is_empty() {
        assert!(Instant::now() < deadline, "flock did not take the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let down = |args: &[&str]| zerolab(&["down"], &file, &root, Path::new("unused"), args);
    down(&[]).expect(
        2,
        "",
        &format!(
            "zerolab: run hello-1 of job hello is running (pid {}); wait for it, cancel it (`zerolab cancel FILE RUN`), \
             or `zerolab down --force`\n",
            driver.id()
        ),
    );
    assert!(lab.private_key().is_file(), "a refused down changed the lab");

    // Forced: down, the run's record kept (and listed by `jobs`).
    let jobs = lab.dir().join("jobs");
    let kept = format!("lab dn-live: down (1 run kept in {}; `zerolab down --purge` removes them)\n", jobs.display());
    let forced = format!(
        "warning: run hello-1 of job hello is running (pid {}); its guests stop with the lab (--force)\n",
        driver.id()
    );
    down(&["--force"]).expect(0, &kept, &forced);
    let left: Vec<_> = fs::read_dir(lab.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["jobs"]);
    let run = zerolab(&["jobs"], &file, &root, Path::new("unused"), &[]);
    assert!(run.code == 0 && run.stdout.contains("hello-1"), "{run:#?}");

    // Once the run is over, --purge removes the results too.
    driver.kill().unwrap();
    driver.wait().unwrap();
    down(&["--purge"]).expect(0, "lab dn-live: down\n", "");
    assert!(!lab.dir().exists());
}

#[test]
fn collected_results_outlive_the_lab_until_purged() {
    let Some(agent) = prerequisites("down: results kept") else {
        return;
    };
    let lab = LabHarness::new(Subnet::DownRuns, agent);
    zvm_gcc(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/examples/hello.c")), &lab.path("hello"));
    let hello =
        job(&lab, "hello", "apiVersion: zerolab/v1\nkind: Job\nname: hello\ngroups:\n  - {name: hi, program: hello}\n");
    assert_eq!(lab.zerolab(&["up"], &[]).code, 0);
    assert_eq!(lab.zerolab(&["run"], &[&hello]).code, 0);

    let jobs = lab.lab().dir().join("jobs");
    let kept = |n: &str| {
        format!(
            "lab {}: down ({n} kept in {}; `zerolab down --purge` removes them)\n",
            lab.cluster.name(),
            jobs.display()
        )
    };
    lab.zerolab(&["down"], &[]).expect(0, &kept("1 run"), "");
    let left: Vec<_> = fs::read_dir(lab.lab().dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["jobs"]);
    // Read while the lab is down.
    let run = lab.zerolab(&["jobs"], &[]);
    assert!(run.code == 0 && run.stdout.lines().any(|l| l.contains(" hello ") && l.ends_with("1/1")), "{run:#?}");
    lab.zerolab(&["logs"], &["hello"]).expect(0, "hi: Hello, World!\n", "");
    let run = lab.zerolab(&["status"], &[]);
    assert_eq!((run.code, run.stdout.matches(" declared ").count()), (1, 3), "{run:#?}");

    // Up again over the kept runs: a lab like new, its old runs still there.
    assert_eq!(lab.zerolab(&["up"], &[]).code, 0);
    assert_eq!(lab.zerolab(&["run"], &[&hello]).code, 0);
    let run = lab.zerolab(&["jobs"], &[]);
    assert_eq!(run.stdout.lines().filter(|l| l.contains(" hello ")).count(), 2, "{run:#?}");
    lab.zerolab(&["down"], &[]).expect(0, &kept("2 runs"), "");
    lab.zerolab(&["down"], &["--purge"]).expect(0, &format!("lab {}: down\n", lab.cluster.name()), "");
    assert!(!lab.lab().dir().exists());
}
