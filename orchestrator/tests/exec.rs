//! `zerolab exec` for real on a 3-node `netns` lab: per-node prefixed output, stderr
//! marked, exit codes summed up, `--nodes`, `exec -- true` timed, and the `inventory`
//! ssh-config used by the real `ssh -F`. Needs root and a
//! built `zerolab-agent` (as tests/up.rs); without either the test says it was skipped.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use zerolab::cluster::Cluster;

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

/// A temp dir holding the cluster file and the lab root; takes the lab down on drop.
struct Harness {
    dir: tempfile::TempDir,
    file: PathBuf,
    cluster: Cluster,
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Harness {
    /// examples/netns-3.yaml as lab `ex<x>` on subnet 10.77.<x>.0/24.
    fn new(x: u8) -> Harness {
        let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/netns-3.yaml")).unwrap();
        let text = text
            .replace("name: netns-3\n", &format!("name: ex{x}\n"))
            .replace("10.77.0.0/24", &format!("10.77.{x}.0/24"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.yaml");
        fs::write(&file, &text).unwrap();
        let cluster = Cluster::from_str(&text, "lab.yaml").unwrap();
        Harness { dir, file, cluster }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    fn zerolab(&self, command: &str, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_zerolab"))
            .arg(command)
            .arg(&self.file)
            .arg("--lab-root")
            .arg(self.root())
            .args(args)
            .output()
            .unwrap();
        Run {
            code: output.status.code().expect("an exit code"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Err(e) = zerolab::up::down(&self.root(), &self.cluster) {
            eprintln!("cleanup: {e}");
        }
    }
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn exec_fans_out_prefixes_output_and_sums_up_exit_codes() {
    if !is_root() {
        eprintln!("skipped: zerolab exec on a netns lab needs root (CI runs it as root)");
        return;
    }
    let Some(agent) = agent_binary() else {
        eprintln!("skipped: no zerolab-agent beside the test binaries; run `cargo build --release -p zerolab-agent`");
        return;
    };
    let lab = Harness::new(130);

    // Before `up`: nothing to run on, said in one line.
    for command in ["exec", "inventory"] {
        let args: &[&str] = if command == "exec" { &["--", "true"] } else { &["--format", "ansible"] };
        let run = lab.zerolab(command, args);
        assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:#?}");
        assert_eq!(run.stderr, "zerolab: lab ex130 is not up; run `zerolab up` first\n");
    }

    let run = lab.zerolab("up", &["--agent", agent.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:#?}");

    // Every line prefixed with its node (output order across nodes is not fixed).
    let run = lab.zerolab("exec", &["--", "echo", "out; echo err >&2; hostname -I | tr -d ' '"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let mut out = sorted_lines(&run.stdout);
    let summary = out.iter().position(|l| l.starts_with("exit 0: ")).expect("a summary");
    let summary = out.remove(summary);
    assert_eq!(
        out,
        [
            "node-1: 10.77.130.2",
            "node-1: out",
            "node-2: 10.77.130.3",
            "node-2: out",
            "node-3: 10.77.130.4",
            "node-3: out"
        ],
        "{run:#?}"
    );
    assert!(summary.starts_with("exit 0: node-1, node-2, node-3 (3 nodes in "), "{run:#?}");
    assert_eq!(sorted_lines(&run.stderr), ["node-1 (stderr): err", "node-2 (stderr): err", "node-3 (stderr): err"]);

    // One node fails: exit 1, and the summary says which code came from where.
    let run = lab.zerolab("exec", &["--", "case $(hostname -I) in *.3*) exit 7;; esac"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.starts_with("exit 0: node-1, node-3; exit 7: node-2 (3 nodes in "), "{run:#?}");

    // --nodes narrows the fan-out; an unknown node is a usage error naming the close one.
    let run = lab.zerolab("exec", &["--nodes", "node-3", "--", "echo", "hi"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.lines().next(), Some("node-3: hi"), "{run:#?}");
    assert!(run.stdout.lines().nth(1).unwrap().starts_with("exit 0: node-3 (1 node in "), "{run:#?}");
    let run = lab.zerolab("exec", &["--nodes", "node-9", "--", "true"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.starts_with("zerolab: no node named `node-9`"), "{run:#?}");

    // The ssh-config inventory works with the real OpenSSH client, host keys checked
    // strictly against zerolab's pins.
    let run = lab.zerolab("inventory", &["--format", "ssh-config"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let config = lab.dir.path().join("ssh_config");
    fs::write(&config, &run.stdout).unwrap();
    let ssh = Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args(["-o", "BatchMode=yes", "node-2", "hostname -I"])
        .output()
        .unwrap();
    assert!(ssh.status.success(), "{}\n{}", String::from_utf8_lossy(&ssh.stderr), run.stdout);
    assert_eq!(String::from_utf8_lossy(&ssh.stdout).trim(), "10.77.130.3");
    let run = lab.zerolab("inventory", &["--format", "ansible"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("\n[pool_workers]\nnode-1\nnode-2\nnode-3\n"), "{run:#?}");

    // `exec -- true` over the 3 nodes, timed through the binary (median of 5).
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let run = lab.zerolab("exec", &["--", "true"]);
            assert_eq!(run.code, 0, "{run:#?}");
            started.elapsed()
        })
        .collect();
    times.sort();
    eprintln!("exec -- true, 3 nodes, median of 5: {:?}", times[2]);
}
