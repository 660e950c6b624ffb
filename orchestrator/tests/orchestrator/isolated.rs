//! Isolated `netns` nodes (`rootfs: debian`, `limits:`) on this machine, attacked from
//! inside: the host's files, another node's files and processes, mounts, links,
//! addresses, modules and `/proc/sys` are out of reach of root inside; uid outside is
//! the unprivileged [`ID_BASE`]; another lab and this machine's own addresses do not
//! answer (TCP and ping); a fork bomb stops at the pids limit and a memory hog is
//! killed inside while the node lives on. The happy path: `up`, `exec`, wordcount,
//! `status`, and `down` leaving nothing (namespaces, links, mounts, cgroups, firewall
//! rules, processes, files). Shelving: frozen (state `D`, no SSH answer), offloaded (no
//! process, memory freed), unshelved (same host key, the file written before, agent
//! healthy), on an isolated and on a plain node.
//!
//! Labs `nd*` on `10.210.0.0/16` (the range reserved for these tests). The first run on a
//! machine builds the root file system (about two minutes, cached). Needs root, gcc and
//! mmdebstrap; without them each test says why it is skipped.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zerolab::provider::netns::ID_BASE;

use crate::harness::{prerequisites, zerolab, zvm_gcc, Run};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// A lab of the test's own in a temp dir; `down --force --purge` when dropped.
struct IsoLab {
    dir: tempfile::TempDir,
    name: String,
    agent: PathBuf,
}

impl IsoLab {
    /// Lab `nd<x>` on `10.210.<x>.0/24` with the node entries `nodes` (YAML list items).
    fn new(x: u8, agent: &Path, defaults: &str, nodes: &str) -> IsoLab {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("nd{x}");
        let text = format!(
            "apiVersion: zerolab/v1\nkind: Cluster\nname: {name}\nprovider: netns\n\
             network: {{subnet: 10.210.{x}.0/24}}\ndefaults: {defaults}\nnodes:\n{nodes}"
        );
        fs::write(dir.path().join("lab.yaml"), text).unwrap();
        IsoLab { dir, name, agent: agent.to_owned() }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("lab.yaml")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    fn lab_dir(&self) -> PathBuf {
        self.root().join(&self.name)
    }

    fn zerolab(&self, command: &[&str], args: &[&str]) -> Run {
        zerolab(command, &self.file(), &self.root(), &self.agent, args)
    }

    fn up(&self) {
        let run = self.zerolab(&["up"], &[]);
        assert_eq!(run.code, 0, "{run:#?}");
    }

    /// `ssh root@ADDRESS COMMAND` with the lab's key; the output.
    fn ssh(&self, address: &str, command: &str) -> std::process::Output {
        Command::new("ssh")
            .arg("-i")
            .arg(self.lab_dir().join("id_ed25519"))
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=error"])
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-F", "/dev/null"])
            .arg(format!("root@{address}"))
            .arg(command)
            .output()
            .unwrap()
    }

    fn ssh_ok(&self, address: &str, command: &str) -> String {
        let out = self.ssh(address, command);
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// The host pid of a node's first process (its sshd), from the lab state.
    fn pid(&self, node: &str) -> u32 {
        let state: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(self.lab_dir().join("state.json")).unwrap()).unwrap();
        let record = &state["nodes"][node];
        let pid = record["provider"]["pid"].as_u64().or_else(|| record["sshd"]["pid"].as_u64());
        pid.unwrap_or_else(|| panic!("no pid recorded for {node}: {record}")) as u32
    }
}

impl Drop for IsoLab {
    fn drop(&mut self) {
        let run = self.zerolab(&["down"], &["--force", "--purge"]);
        if run.code != 0 {
            eprintln!("cleanup: {run:?}");
        }
    }
}

/// The agent when the isolated tests can run here (root, mmdebstrap, a built agent).
fn ready(test: &str) -> Option<PathBuf> {
    let agent = prerequisites(test)?;
    if Command::new("mmdebstrap").arg("--version").output().is_err() {
        eprintln!("skipped: {test} needs mmdebstrap (scripts/setup installs it)");
        return None;
    }
    Some(agent)
}

fn cgroup(controller: &str, lab: &str, node: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(controller).join("zerolab").join(format!("zl-{lab}-{node}"))
}

fn status_line(pid: u32, key: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find(|l| l.starts_with(key)).unwrap().to_owned()
}

#[test]
fn isolated_nodes_keep_root_inside_and_run_wordcount() {
    let Some(agent) = ready("isolated nodes") else {
        return;
    };
    let defaults = "{rootfs: debian, limits: {memory: 128M, pids: 64, cpu: 0.5}}";
    let lab = IsoLab::new(11, &agent, defaults, "  - {name: n, count: 3}\n");
    let other = IsoLab::new(12, &agent, "{rootfs: debian}", "  - {name: o}\n");
    lab.up();
    other.up();
    // A service of this machine's on every address, which a node must not reach.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(std::net::TcpStream::connect(("10.210.11.1", port)).is_ok(), "reachable from this machine");

    // Nodes are up as root inside, the unprivileged range outside.
    let (n1, n2) = ("10.210.11.2", "10.210.11.3");
    assert_eq!(lab.ssh_ok(n1, "id -u; hostname"), "0\nn-1\n");
    let pid = lab.pid("n-1");
    assert_eq!(status_line(pid, "Uid:"), format!("Uid:\t{ID_BASE}\t{ID_BASE}\t{ID_BASE}\t{ID_BASE}"));

    // This machine's files, and another node's, are not there.
    let marker = lab.dir.path().join("host-marker");
    fs::write(&marker, "host").unwrap();
    lab.ssh_ok(n2, "echo secret > /root/n2-file");
    let upper = lab.lab_dir().join("nodes/n-2/upper");
    let probe = format!(
        "for p in {} {} /work /root/n2-file {}/root; do test -e $p && echo visible $p; done; true",
        marker.display(),
        upper.display(),
        upper.display()
    );
    assert_eq!(lab.ssh_ok(n1, &probe), "");
    // Only the node's own processes (sshd is its PID 1).
    let ps = lab.ssh_ok(n1, "ps -eo pid=,comm=");
    assert!(ps.lines().next().unwrap().trim().starts_with("1 sshd"), "{ps}");
    assert!(ps.lines().count() < 15 && !ps.contains("cargo") && !ps.contains("orchestrator"), "{ps}");

    // Root inside cannot change the machine: mounts, links, addresses, /proc/sys,
    // modules (finit_module is system call 313 on x86-64: EPERM), the host name.
    for attack in [
        "mount -t tmpfs x /mnt",
        "ip link set eth0 down",
        "ip addr add 10.210.11.99/24 dev eth0",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        "echo 1 > /proc/sys/kernel/sysrq",
        "perl -e 'syscall(313, 0, \"\", 0) == -1 && $!{EPERM} or exit 0; exit 1'",
        "hostname other",
    ] {
        let out = lab.ssh(n1, attack);
        assert!(!out.status.success(), "root inside could: {attack}");
    }
    assert_eq!(lab.ssh_ok(n1, "cat /proc/sys/net/ipv4/ip_forward; hostname").lines().nth(1), Some("n-1"));

    // Its own lab answers; this machine and another lab do not (TCP and ping).
    lab.ssh_ok(n1, "ping -c1 -W2 10.210.11.3 && timeout 3 bash -c 'echo > /dev/tcp/10.210.11.3/22'");
    for target in ["10.210.11.1", "10.210.12.1", "10.210.12.2"] {
        let out = lab.ssh(n1, &format!("ping -c1 -W1 {target}"));
        assert!(!out.status.success(), "ping {target} answered");
        let out = lab.ssh(n1, &format!("timeout 3 bash -c 'echo > /dev/tcp/{target}/{port}'"));
        assert!(!out.status.success(), "tcp {target}:{port} answered");
    }
    let out = other.ssh("10.210.12.2", "timeout 3 bash -c 'echo > /dev/tcp/10.210.11.2/22'");
    assert!(!out.status.success(), "another lab reached this one");

    // A fork bomb stops at pids.max; a memory hog is killed inside; the node lives on.
    let bomb = "perl -e 'for (1..200) { $p = fork; last unless defined $p; if (!$p) { sleep 30; exit } push @k, $p } \
                print scalar(@k), \"\\n\"; kill 9, @k'";
    let forked: u32 = lab.ssh_ok(n2, bomb).trim().parse().unwrap();
    assert!(forked > 0 && forked < 64, "{forked} processes forked under pids.max 64");
    let max = fs::read_to_string(cgroup("pids", "nd11", "n-2").join("pids.max")).unwrap();
    assert_eq!(max.trim(), "64");
    let hog = lab.ssh(n2, "head -c 300M /dev/zero | tail > /dev/null");
    assert!(!hog.status.success(), "a 300M line fit in 128M");
    let oom = fs::read_to_string(cgroup("memory", "nd11", "n-2").join("memory.oom_control")).unwrap();
    let kills = oom.lines().find_map(|l| l.strip_prefix("oom_kill ")).unwrap_or("0");
    assert!(kills.trim() != "0", "no OOM kill inside the node: {oom}");
    assert_eq!(lab.ssh_ok(n2, "cat /root/n2-file"), "secret\n");

    // The agent works inside: wordcount gives `tr | sort | uniq -c` of its input (the
    // result the plain-lab example test checks).
    let work = lab.dir.path().join("wordcount");
    fs::create_dir_all(work.join("data")).unwrap();
    fs::copy(format!("{EXAMPLES}/wordcount/job.yaml"), work.join("job.yaml")).unwrap();
    let mut parts: Vec<_> =
        fs::read_dir(format!("{EXAMPLES}/wordcount/data")).unwrap().flatten().map(|e| e.path()).collect();
    parts.sort();
    for part in &parts {
        fs::copy(part, work.join("data").join(part.file_name().unwrap())).unwrap();
    }
    for program in ["map", "reduce"] {
        zvm_gcc(Path::new(&format!("{EXAMPLES}/wordcount/{program}.c")), &work.join(program));
    }
    let run = lab.zerolab(&["run"], &[work.join("job.yaml").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:#?}");
    let counts = lab.zerolab(&["logs"], &["wordcount", "reduce"]);
    let input: Vec<u8> = parts.iter().flat_map(|p| fs::read(p).unwrap()).collect();
    fs::write(lab.dir.path().join("input.txt"), &input).unwrap();
    let expected = Command::new("sh")
        .arg("-c")
        .arg("LC_ALL=C tr -s ' ' '\\n' < input.txt | LC_ALL=C sort | uniq -c")
        .current_dir(lab.dir.path())
        .output()
        .unwrap();
    assert_eq!(counts.stdout, String::from_utf8(expected.stdout).unwrap());
    let exec = lab.zerolab(&["exec"], &["--", "cat", "/etc/debian_version"]);
    assert_eq!(exec.code, 0, "{exec:#?}");
    let status = lab.zerolab(&["status"], &[]);
    assert_eq!(status.code, 0, "{status:#?}");
    assert_eq!(status.stdout.lines().filter(|l| l.contains(" ready ")).count(), 3, "{status:#?}");

    // `down` leaves nothing of the lab.
    let pids: Vec<u32> = ["n-1", "n-2", "n-3"].iter().map(|n| lab.pid(n)).collect();
    let down = lab.zerolab(&["down"], &[]);
    assert_eq!(down.code, 0, "{down:#?}");
    for node in ["n-1", "n-2", "n-3"] {
        assert!(!Path::new(&format!("/run/netns/zl-nd11-{node}")).exists());
        for controller in ["memory", "pids", "cpu", "freezer"] {
            assert!(!cgroup(controller, "nd11", node).exists(), "{controller} cgroup of {node} left");
        }
    }
    for pid in pids {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty() || stat.contains(") Z"), "process {pid} left: {stat}");
    }
    let rules = Command::new("iptables-save").output().unwrap();
    assert!(!String::from_utf8_lossy(&rules.stdout).contains("zerolab:nd11"), "firewall rules left");
    let mut mounts = String::new();
    fs::File::open("/proc/self/mountinfo").unwrap().read_to_string(&mut mounts).unwrap();
    assert!(!mounts.contains(lab.lab_dir().to_str().unwrap()), "mounts left");
    assert!(!lab.lab_dir().join("nodes").exists() && !lab.lab_dir().join("firewall").exists());
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains("zerolab lab nd11"), "links left");
}

#[test]
fn shelved_nodes_freeze_offload_and_come_back() {
    let Some(agent) = ready("shelving isolated nodes") else {
        return;
    };
    let nodes = "  - {name: iso, rootfs: debian, limits: {memory: 128M}}\n  - {name: plain}\n";
    let lab = IsoLab::new(13, &agent, "{}", nodes);
    lab.up();
    let (iso, plain) = ("10.210.13.2", "10.210.13.3");
    let key_before = fs::read(lab.lab_dir().join("nodes/iso/etc-ssh/ssh_host_ed25519_key.pub")).unwrap();
    lab.ssh_ok(iso, "echo kept > /root/file");

    // Frozen: processes frozen (state D), SSH does not answer.
    let run = lab.zerolab(&["shelve"], &["iso", "plain"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let pid = lab.pid("iso");
    assert!(status_line(pid, "State:").contains('D'), "{}", status_line(pid, "State:"));
    assert_eq!(fs::read_to_string(cgroup("freezer", "nd13", "plain").join("freezer.state")).unwrap(), "FROZEN\n");
    for address in [iso, plain] {
        assert!(!lab.ssh(address, "true").status.success(), "{address} answered while frozen");
    }
    let run = lab.zerolab(&["unshelve"], &["iso", "plain"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(lab.ssh_ok(iso, "cat /root/file"), "kept\n");

    // Offloaded: no process left, the memory freed.
    let memory = cgroup("memory", "nd13", "iso").join("memory.usage_in_bytes");
    let used = |path: &Path| -> u64 { fs::read_to_string(path).unwrap().trim().parse().unwrap() };
    let before = used(&memory);
    let run = lab.zerolab(&["shelve"], &["--offload"]);
    assert_eq!(run.code, 0, "{run:#?}");
    for node in ["iso", "plain"] {
        let pids = Command::new("ip").args(["netns", "pids", &format!("zl-nd13-{node}")]).output().unwrap();
        assert!(pids.stdout.is_empty(), "{node} still runs {}", String::from_utf8_lossy(&pids.stdout));
    }
    assert!(used(&memory) < before, "memory not freed: {} of {before}", used(&memory));

    // Back: the same host key and files, the agent healthy, within 2 s.
    let started = Instant::now();
    let run = lab.zerolab(&["unshelve"], &["iso"]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(took < Duration::from_secs(2), "unshelve from offloaded took {took:?}");
    eprintln!("unshelve of an offloaded isolated node: {took:?}");
    assert_eq!(lab.zerolab(&["unshelve"], &["plain"]).code, 0);
    let key_after = fs::read(lab.lab_dir().join("nodes/iso/etc-ssh/ssh_host_ed25519_key.pub")).unwrap();
    assert_eq!(key_before, key_after);
    let scanned = Command::new("ssh-keyscan").args(["-t", "ed25519", iso]).output().unwrap();
    let served = String::from_utf8_lossy(&scanned.stdout);
    let pinned = String::from_utf8_lossy(&key_after);
    assert!(served.contains(pinned.split_whitespace().nth(1).unwrap()), "{served} vs {pinned}");
    assert_eq!(lab.ssh_ok(iso, "cat /root/file"), "kept\n");
    let status = lab.zerolab(&["status"], &[]);
    assert_eq!(status.stdout.lines().filter(|l| l.contains(" ready ")).count(), 2, "{status:#?}");
}

/// An isolated node added to a running plain lab by `up` (reconcile) gets the lab's
/// firewall before it runs: it cannot reach this machine; `down` removes the rules.
#[test]
fn an_isolated_node_joining_a_plain_lab_gets_its_firewall() {
    let Some(agent) = ready("isolated node joining a plain lab") else {
        return;
    };
    let lab = IsoLab::new(14, &agent, "{}", "  - {name: plain}\n");
    lab.up();
    let rules = || String::from_utf8_lossy(&Command::new("iptables-save").output().unwrap().stdout).into_owned();
    assert!(!rules().contains("zerolab:nd14"), "a plain lab has no firewall");
    let text = fs::read_to_string(lab.file()).unwrap() + "  - {name: iso, rootfs: debian}\n";
    fs::write(lab.file(), text).unwrap();
    lab.up();
    assert!(rules().contains("zerolab:nd14"), "the isolated node joined without the firewall");
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_eq!(lab.ssh_ok("10.210.14.3", "hostname"), "iso\n");
    let out = lab.ssh("10.210.14.3", &format!("timeout 3 bash -c 'echo > /dev/tcp/10.210.14.1/{port}'"));
    assert!(!out.status.success(), "the joined isolated node reached this machine");
    let down = lab.zerolab(&["down"], &[]);
    assert_eq!(down.code, 0, "{down:#?}");
    assert!(!rules().contains("zerolab:nd14"), "firewall rules left");
}

#[test]
fn rootfs_and_limits_are_checked_with_their_place() {
    let check = |text: &str| -> String {
        match zerolab::cluster::from_str(text, "lab.yaml") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let head = "apiVersion: zerolab/v1\nkind: Cluster\nname: nd9\n";
    let ok = format!("{head}nodes:\n  - {{name: n, rootfs: debian, limits: {{memory: 1G, pids: 100, cpu: 2}}}}\n");
    assert_eq!(check(&ok), "");
    for (nodes, says) in [
        ("  - {name: n, limits: {pids: 100}}\n", "limits need a root file system"),
        ("  - {name: n, rootfs: ubuntu}\n", "unknown rootfs `ubuntu`"),
        ("  - {name: n, rootfs: debian, limits: {memory: 12MB}}\n", "invalid limit `memory: 12MB`"),
        ("  - {name: n, rootfs: debian, limits: {cpu: 0}}\n", "invalid limit `cpu: 0`"),
        ("  - {name: n, rootfs: debian, limits: {pids: 2}}\n", "invalid limit `pids: 2`"),
        ("  - {name: n, rootfs: debian, limits: {disk: 1G}}\n", "disk"),
    ] {
        let error = check(&format!("{head}nodes:\n{nodes}"));
        assert!(error.contains(says), "{nodes}: {error}");
        assert!(error.contains("lab.yaml:"), "no place in: {error}");
    }
    let vagrant = check(&format!("{head}provider: vagrant\nnodes:\n  - {{name: n, rootfs: debian}}\n"));
    assert!(vagrant.contains("rootfs") && vagrant.contains("netns"), "{vagrant}");
}
